"""The scheduler's database job store: stable ids, and a run missed while the daemon was down happens once."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy import func, select

from daemon.app import App, build_app
from daemon.clock import FrozenClock
from daemon.config import Settings, load_settings
from daemon.db import upgrade_database
from daemon.jobs import DATABASE_STORE, start_scheduler
from daemon.models import SCHEDULED_JOBS_TABLE, Digest, OutboxMail
from tests.daemon.conftest import WriteConfig
from tests.daemon.test_register import CD, Mailbox, build_mail, item_docx

MONDAY_0930 = datetime(2026, 11, 2, 1, 30, tzinfo=UTC)  # Monday 09:30 in Asia/Shanghai, a working day


def open_app(settings: Settings) -> App:
    application = build_app(settings, clock=FrozenClock(MONDAY_0930))
    upgrade_database(application.engine)
    application.context.archive.ensure()
    return application


def digest_count(app: App) -> tuple[int, int]:
    with app.session_factory() as session:
        rows = session.scalar(select(func.count(Digest.id))) or 0
        mails = session.scalar(select(func.count(OutboxMail.id)).where(OutboxMail.purpose == "digest")) or 0
    return rows, mails


def wait_for_digest(app: App, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if digest_count(app)[0]:
            return
        time.sleep(0.1)


def set_next_run_time(app: App, job_id: str, when: datetime) -> None:
    """Change a stored job's next run time through the job store, with no scheduler running."""
    store = SQLAlchemyJobStore(engine=app.engine, tablename=SCHEDULED_JOBS_TABLE)
    store.start(BackgroundScheduler(timezone=app.settings.tz), DATABASE_STORE)
    job = store.lookup_job(job_id)
    assert job is not None
    job.next_run_time = when
    store.update_job(job)


def test_missed_digest_runs_once_after_restart(settings: Settings) -> None:
    app = open_app(settings)
    try:
        Mailbox(app).deliver(
            build_mail(CD, "信息", [("a.docx", item_docx("成都启动冬季消费季", "启动。"))]), MONDAY_0930
        )
        start_scheduler(app).shutdown(wait=True)
        # While the daemon is down, its 09:00 run falls due: the store keeps that next run time.
        set_next_run_time(app, "digest.0900", datetime.now(UTC) - timedelta(minutes=30))
        assert digest_count(app) == (0, 0)

        scheduler = start_scheduler(app)
        wait_for_digest(app)
        scheduler.shutdown(wait=True)
        assert digest_count(app) == (1, 1)
        with app.session_factory() as session:
            assert session.scalar(select(Digest.slot)) == "2026-11-02 09:00"

        # A second restart finds the job's next run tomorrow: nothing is sent again.
        scheduler = start_scheduler(app)
        time.sleep(1.0)
        job = scheduler.get_job("digest.0900", jobstore=DATABASE_STORE)
        scheduler.shutdown(wait=True)
        assert job is not None
        assert job.next_run_time > datetime.now(UTC)
        assert digest_count(app) == (1, 1)
    finally:
        app.close()


def test_changed_times_replace_and_remove_jobs(write_config: WriteConfig) -> None:
    app = open_app(load_settings(write_config(extra='[digest]\ntimes = ["09:00", "16:00"]\n')))
    try:
        start_scheduler(app).shutdown(wait=True)
    finally:
        app.close()

    app = open_app(load_settings(write_config(name="changed.toml", extra='[digest]\ntimes = ["08:30"]\n')))
    try:
        scheduler = start_scheduler(app)
        ids = sorted(job.id for job in scheduler.get_jobs(jobstore=DATABASE_STORE) if job.id.startswith("digest."))
        scheduler.shutdown(wait=True)
    finally:
        app.close()
    assert ids == ["digest.0830"]


def test_every_job_has_a_stable_id_and_limits(settings: Settings) -> None:
    app = open_app(settings)
    try:
        scheduler = start_scheduler(app)
        jobs = {job.id: job for job in scheduler.get_jobs(jobstore=DATABASE_STORE)}
        scheduler.shutdown(wait=True)
    finally:
        app.close()

    assert set(jobs) == {
        "digest.0900",
        "digest.1600",
        "bulletins",
        "reminders.targets",
        "ops.digest",
        "reminders.holiday",
        "reminders.commissions",
    }
    for job in jobs.values():
        assert job.max_instances == 1
        assert job.coalesce is True
        assert job.misfire_grace_time >= 3600
