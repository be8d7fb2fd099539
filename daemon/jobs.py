"""The job schedule (APScheduler 3): scheduled work reads the database and writes to the outbox."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, tzinfo

from apscheduler.jobstores.memory import MemoryJobStore
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from sqlalchemy.exc import SQLAlchemyError

from daemon.app import App
from daemon.commission_reminders import run_commission_reminders
from daemon.digest import send_digest
from daemon.errors import SendError
from daemon.models import SCHEDULED_JOBS_TABLE
from daemon.ops import send_ops_digest
from daemon.outbound import send_due
from daemon.reminders import run_holiday_reminders, run_target_reminders
from daemon.targets import load_targets

log = logging.getLogger(__name__)

SEND_OUTBOX_JOB = "outbox.send"
DATABASE_STORE = "database"  # job store alias of the jobs kept in the database
DIGEST_GRACE_SECONDS = 2 * 3600  # a digest may still go out this long after its time
HOUR = 3600
DAY = 24 * 3600


class OutboxSender:
    """The sender job; logs an SMTP outage once when it begins and once when it ends."""

    def __init__(self, app: App) -> None:
        self.app = app
        self.outage_since: datetime | None = None

    def __call__(self) -> None:
        try:
            summary = send_due(self.app.session_factory, self.app.settings, self.app.clock)
        except SendError as exc:
            self._began(str(exc))
            return
        except SQLAlchemyError as exc:
            # The database is down too; the runner logs that outage, so one line here is enough.
            log.warning("outbox run skipped: database unavailable: %s", exc.__class__.__name__)
            return
        if summary.sent:
            self._ended()
        elif summary.retried and not summary.failed:
            # Every mail tried was refused for now (e.g. 451): the server takes no mail, an outage too.
            self._began(f"the server refused all {summary.retried} mail(s) for now")
        # A run with nothing due does not contact the server, so it neither begins nor ends an outage.
        if summary.sent or summary.failed:
            log.info("outbox run: sent=%d retried=%d failed=%d", summary.sent, summary.retried, summary.failed)

    def _began(self, reason: str) -> None:
        if self.outage_since is None:
            self.outage_since = self.app.clock.now()
            log.error("SMTP outage began: %s", reason)

    def _ended(self) -> None:
        if self.outage_since is not None:
            log.info("SMTP outage ended (began %s)", self.outage_since.isoformat())
            self.outage_since = None


class DigestSender:
    """The digest job of one configured time; sends nothing on non-working days when so configured."""

    def __init__(self, app: App, at: str) -> None:
        self.app = app
        self.at = at

    def __call__(self) -> None:
        ctx = self.app.context
        today = ctx.clock.now().astimezone(self.app.settings.tz).date()
        if self.app.settings.digest.working_days_only and not ctx.calendar.is_working_day(today):
            log.info("digest %s skipped: %s is not a working day", self.at, today)
            return
        slot = f"{today.isoformat()} {self.at}"
        with self.app.session_factory.begin() as session:
            send_digest(session, ctx, slot=slot, warning=ctx.calendar.next_year_warning(today))


def digest_job_id(at: str) -> str:
    return f"digest.{at.replace(':', '')}"


# Jobs in the database job store are stored by reference, so they all call ``run_task`` with the name
# of a task and plain arguments; the task finds the running App here.
_current_app: App | None = None


def run_task(name: str, *args: str) -> None:
    """Run the scheduled task ``name`` on the running daemon's App (the entry point of persisted jobs)."""
    app = _current_app
    if app is None:
        log.error("scheduled task %s skipped: no daemon is running in this process", name)
        return
    TASKS[name](app, *args)


def _digest_task(app: App, at: str) -> None:
    DigestSender(app, at)()


def _bulletins_task(app: App) -> None:
    from daemon.bulletins import send_due_bulletins  # matplotlib and friends load only when needed

    with app.session_factory.begin() as session:
        send_due_bulletins(session, app.context)


def _target_reminders_task(app: App) -> None:
    ctx = app.context
    targets = load_targets(ctx.settings.targets.file, ctx.units) if ctx.settings.targets.file else None
    with app.session_factory.begin() as session:
        run_target_reminders(session, ctx, targets)


def _holiday_reminders_task(app: App) -> None:
    with app.session_factory.begin() as session:
        run_holiday_reminders(session, app.context)


def _commission_reminders_task(app: App) -> None:
    with app.session_factory.begin() as session:
        run_commission_reminders(session, app.context)


def _ops_digest_task(app: App) -> None:
    with app.session_factory.begin() as session:
        send_ops_digest(session, app)


TASKS: dict[str, Callable[..., None]] = {
    "ops_digest": _ops_digest_task,
    "commission_reminders": _commission_reminders_task,
    "digest": _digest_task,
    "bulletins": _bulletins_task,
    "target_reminders": _target_reminders_task,
    "holiday_reminders": _holiday_reminders_task,
}


@dataclass(frozen=True)
class ScheduledJob:
    """A job of the database job store: its stable id, trigger, task and how late it may still run."""

    id: str
    trigger: BaseTrigger
    task: str
    args: tuple[str, ...]
    misfire_grace_time: int


def _daily(at: str, tz: tzinfo) -> CronTrigger:
    hour, minute = (int(part) for part in at.split(":"))
    return CronTrigger(hour=hour, minute=minute, timezone=tz)


def scheduled_jobs(app: App) -> list[ScheduledJob]:
    """Return the jobs the configuration sets up, each with a stable id."""
    tz = app.settings.tz
    jobs = []
    for at in app.settings.digest.times:
        hour, minute = (int(part) for part in at.split(":"))
        jobs.append(
            ScheduledJob(
                id=digest_job_id(at),
                trigger=CronTrigger(hour=hour, minute=minute, timezone=tz),
                task="digest",
                args=(at,),
                misfire_grace_time=DIGEST_GRACE_SECONDS,
            )
        )
    hour, minute = (int(part) for part in app.settings.bulletins.time.split(":"))
    # Each task below finds out itself what is due and skips what was sent, so a daily or hourly
    # run that is late, or missed and caught up, sends everything once.
    jobs += [
        ScheduledJob("bulletins", CronTrigger(hour=hour, minute=minute, timezone=tz), "bulletins", (), DAY),
        ScheduledJob(
            "reminders.targets", CronTrigger(hour="8-17", minute=40, timezone=tz), "target_reminders", (), HOUR
        ),
        ScheduledJob(
            "reminders.commissions", CronTrigger(minute="*/20", timezone=tz), "commission_reminders", (), HOUR
        ),
        ScheduledJob("ops.digest", _daily(app.settings.ops.time, tz), "ops_digest", (), DAY),
        ScheduledJob("reminders.holiday", CronTrigger(hour=8, minute=0, timezone=tz), "holiday_reminders", (), DAY),
    ]
    return jobs


def build_scheduler(app: App) -> BackgroundScheduler:
    """Create the scheduler (not started): the outbox sender in memory, the rest in the database."""
    scheduler = BackgroundScheduler(
        timezone=app.settings.tz,
        jobstores={
            "default": MemoryJobStore(),
            DATABASE_STORE: SQLAlchemyJobStore(engine=app.engine, tablename=SCHEDULED_JOBS_TABLE),
        },
    )
    # The outbox is drained every few seconds, and a missed run is simply the next one. So runs are
    # coalesced, two senders never run at once, and a late run may still start within a minute.
    scheduler.add_job(
        OutboxSender(app),
        "interval",
        seconds=app.settings.outbox.send_interval,
        id=SEND_OUTBOX_JOB,
        max_instances=1,
        coalesce=True,
        misfire_grace_time=60,
        replace_existing=True,
    )
    return scheduler


def start_scheduler(app: App) -> BackgroundScheduler:
    """Start the scheduler and bring the database job store in line with the configuration.

    A stored job whose trigger and task are unchanged keeps its next run time, so a run missed while
    the daemon was down happens once when it is back (within the job's grace time, runs coalesced).
    Changed jobs are replaced, and jobs no longer configured are removed.

    NOTE: APScheduler 3 looks for due jobs once more while it shuts down, and a job that falls due
    in that instant is marked as run without running. Digests, bulletins and the target and
    commission reminders catch up on their next run. A 假日综述 reminder lost this way is not sent,
    because its next run falls after the holiday.
    """
    global _current_app
    _current_app = app
    scheduler = build_scheduler(app)
    scheduler.start(paused=True)
    wanted = {job.id: job for job in scheduled_jobs(app)}
    for stored in scheduler.get_jobs(jobstore=DATABASE_STORE):
        job = wanted.get(stored.id)
        if job is None:
            scheduler.remove_job(stored.id, jobstore=DATABASE_STORE)
            log.info("scheduled job %s removed: no longer configured", stored.id)
        elif str(stored.trigger) == str(job.trigger) and tuple(stored.args) == (job.task, *job.args):
            del wanted[stored.id]
    for job in wanted.values():
        scheduler.add_job(
            run_task,
            job.trigger,
            args=(job.task, *job.args),
            id=job.id,
            jobstore=DATABASE_STORE,
            max_instances=1,
            coalesce=True,
            misfire_grace_time=job.misfire_grace_time,
            replace_existing=True,
        )
        log.info("scheduled job %s installed: %s", job.id, job.trigger)
    scheduler.resume()
    return scheduler


def wake_job(scheduler: BackgroundScheduler, job_id: str) -> None:
    """Run a job as soon as possible (e.g. the sender after new receipts were queued)."""
    job = scheduler.get_job(job_id)
    if job is not None:
        job.modify(next_run_time=datetime.now(scheduler.timezone))
