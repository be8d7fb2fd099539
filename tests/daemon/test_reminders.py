"""Reminders on their own: units behind their pro-rata targets, and the 假日综述 on a holiday's last day."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from email import message_from_bytes, policy
from pathlib import Path

import pytest
from sqlalchemy import select

from daemon.app import App, build_app
from daemon.clock import FrozenClock
from daemon.config import Settings
from daemon.db import upgrade_database
from daemon.models import OutboxMail, Reminder
from daemon.reminders import run_holiday_reminders, run_target_reminders, year_fraction
from daemon.targets import Targets, targets_from_dict
from tests.daemon.test_register import CD, Mailbox, build_mail, item_docx


def open_app(settings: Settings, at: datetime) -> App:
    application = build_app(settings, clock=FrozenClock(at))
    upgrade_database(application.engine)
    application.context.archive.ensure()
    return application


def targets(app: App) -> Targets:
    data = {
        "targets": [
            {"year": 2026, "unit": "cd", "submitted": 10, "adopted": 2, "points": 5},
            {"year": 2026, "unit": "lz", "submitted": 0, "adopted": 0},
        ]
    }
    return targets_from_dict(data, app.context.units)


def reminders(app: App) -> list[tuple[str, str]]:
    with app.session_factory() as session:
        return [(row.key, row.kind) for row in session.scalars(select(Reminder).order_by(Reminder.id))]


def outbox_text(app: App, purpose: str) -> list[str]:
    with app.session_factory() as session:
        rows = session.scalars(select(OutboxMail).where(OutboxMail.purpose == purpose).order_by(OutboxMail.id))
        texts = []
        for row in rows:
            body = message_from_bytes(row.raw, policy=policy.default).get_body(preferencelist=("plain",))
            assert body is not None
            texts.append(str(body.get_content()))
        return texts


def test_year_fraction() -> None:
    assert year_fraction(date(2026, 12, 31)) == 1
    assert year_fraction(date(2026, 1, 1)) == Decimal(1) / Decimal(365)


# Friday 20 November 2026, 10:00 in Asia/Shanghai: a working day, the default reminder day.
REMINDER_DAY = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)


def test_unit_behind_target_is_reminded_once(settings: Settings) -> None:
    app = open_app(settings, REMINDER_DAY)
    try:
        Mailbox(app).deliver(
            build_mail(CD, "信息", [("a.docx", item_docx("成都启动冬季消费季", "启动。"))]), REMINDER_DAY
        )
        with app.session_factory.begin() as session:
            assert run_target_reminders(session, app.context, targets(app)) == 1
        with app.session_factory.begin() as session:
            assert run_target_reminders(session, app.context, targets(app)) == 0
        sent = reminders(app)
        (text,) = outbox_text(app, "target_reminder")
    finally:
        app.close()

    assert sent == [("target:2026-11:cd", "target_reminder")]
    assert "成都市文化广电旅游局：" in text
    # 324 of 365 days have passed: 10 × 324/365 = 8.9 items submitted by now; none were.
    assert "报送两办：已完成 0 条，全年目标 10 条，按时间进度应达 8.9 条" in text
    assert "被采用：已完成 0 条，全年目标 2 条，按时间进度应达 1.8 条" in text


@pytest.mark.parametrize(
    "at",
    [
        datetime(2026, 11, 19, 2, 0, tzinfo=UTC),  # the day before the reminder day
        datetime(2026, 11, 21, 2, 0, tzinfo=UTC),  # Saturday: outside working hours
        datetime(2026, 11, 20, 12, 0, tzinfo=UTC),  # 20:00: after working hours
    ],
)
def test_no_target_reminder_outside_its_time(settings: Settings, at: datetime) -> None:
    app = open_app(settings, at)
    try:
        with app.session_factory.begin() as session:
            assert run_target_reminders(session, app.context, targets(app)) == 0
        assert reminders(app) == []
    finally:
        app.close()


def test_no_target_file_means_no_reminders(settings: Settings) -> None:
    app = open_app(settings, REMINDER_DAY)
    try:
        with app.session_factory.begin() as session:
            assert run_target_reminders(session, app.context, None) == 0
    finally:
        app.close()


def test_holiday_summary_reminder_on_last_day(settings: Settings) -> None:
    # 7 October 2026, 08:00: the last day of the 国庆节 holiday (1-7 October).
    app = open_app(settings, datetime(2026, 10, 7, 0, 0, tzinfo=UTC))
    try:
        with app.session_factory.begin() as session:
            first = run_holiday_reminders(session, app.context)
        with app.session_factory.begin() as session:
            again = run_holiday_reminders(session, app.context)
        units = len(app.context.units.units)
        keys = [key for key, _ in reminders(app)]
        texts = outbox_text(app, "holiday_reminder")
    finally:
        app.close()

    assert first == units
    assert again == 0
    assert "holiday:2026-10-07:cd" in keys
    assert len(texts) == units
    assert "国庆节假期最后一天" in texts[0]


@pytest.mark.parametrize("day", [date(2026, 10, 6), date(2026, 10, 8), date(2026, 11, 20)])
def test_no_holiday_reminder_on_other_days(settings: Settings, day: date) -> None:
    app = open_app(settings, datetime(day.year, day.month, day.day, 0, 0, tzinfo=UTC))
    try:
        with app.session_factory.begin() as session:
            assert run_holiday_reminders(session, app.context) == 0
    finally:
        app.close()


def test_example_targets_file_loads(settings: Settings) -> None:
    from daemon.targets import load_targets

    app = open_app(settings, REMINDER_DAY)
    try:
        loaded = load_targets(Path(__file__).resolve().parents[2] / "examples" / "targets.toml", app.context.units)
    finally:
        app.close()
    assert loaded.for_year(2026)
