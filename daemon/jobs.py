"""The job schedule (APScheduler 3): scheduled work reads the database and writes to the outbox."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger

from daemon.app import App
from daemon.digest import send_digest
from daemon.errors import SendError
from daemon.outbound import send_due

log = logging.getLogger(__name__)

SEND_OUTBOX_JOB = "outbox.send"
DIGEST_GRACE_SECONDS = 2 * 3600  # a digest may still go out this long after its time


class OutboxSender:
    """The sender job; logs an SMTP outage once when it begins and once when it ends."""

    def __init__(self, app: App) -> None:
        self.app = app
        self.outage_since: datetime | None = None

    def __call__(self) -> None:
        try:
            summary = send_due(self.app.session_factory, self.app.settings, self.app.clock)
        except SendError as exc:
            if self.outage_since is None:
                self.outage_since = self.app.clock.now()
                log.error("SMTP outage began: %s", exc)
            return
        if self.outage_since is not None:
            log.info("SMTP outage ended (began %s)", self.outage_since.isoformat())
            self.outage_since = None
        if summary.sent or summary.failed:
            log.info("outbox run: sent=%d retried=%d failed=%d", summary.sent, summary.retried, summary.failed)


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


def build_scheduler(app: App) -> BackgroundScheduler:
    """Create the scheduler with the daemon's jobs (not started)."""
    scheduler = BackgroundScheduler(timezone=app.settings.tz)
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
    now = app.clock.now().astimezone(app.settings.tz)
    for at in app.settings.digest.times:
        hour, minute = (int(part) for part in at.split(":"))
        trigger = CronTrigger(hour=hour, minute=minute, timezone=app.settings.tz)
        # The job store is in memory, so a digest missed while the daemon was down is caught up here:
        # started within the grace time after a slot, the first run is now. The slot key keeps a
        # digest from going out twice.
        slot_today = now.replace(hour=hour, minute=minute, second=0, microsecond=0)
        missed = slot_today <= now < slot_today + timedelta(seconds=DIGEST_GRACE_SECONDS)
        scheduler.add_job(
            DigestSender(app, at),
            trigger,
            id=digest_job_id(at),
            max_instances=1,
            coalesce=True,
            misfire_grace_time=DIGEST_GRACE_SECONDS,
            replace_existing=True,
            **({"next_run_time": now} if missed else {}),
        )
    return scheduler


def wake_job(scheduler: BackgroundScheduler, job_id: str) -> None:
    """Run a job as soon as possible (e.g. the sender after new receipts were queued)."""
    job = scheduler.get_job(job_id)
    if job is not None:
        job.modify(next_run_time=datetime.now(scheduler.timezone))
