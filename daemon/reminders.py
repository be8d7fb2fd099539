"""Reminders that go out on their own: units behind their yearly targets, and the 假日综述 on a holiday's last day.

Each reminder has a Reminder row with a unique key, written in the same transaction as its outbox
mail, so a job that runs again (or catches up after downtime) sends nothing twice.
"""

from __future__ import annotations

import logging
from datetime import date
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from daemon.bulletins import MONTHLY, UnitRow, compute_bulletin
from daemon.context import RegisterContext
from daemon.models import Reminder
from daemon.notices import build_mail
from daemon.outbound import queue_mail
from daemon.targets import Targets
from daemon.templating import render
from daemon.units import Unit

log = logging.getLogger(__name__)


def _sent(session: Session, key: str) -> bool:
    return session.scalar(select(Reminder.id).where(Reminder.key == key)) is not None


def _send(session: Session, ctx: RegisterContext, unit: Unit, *, key: str, kind: str, subject: str, body: str) -> bool:
    """Queue one reminder to the unit's first address and record it; False when the unit has no address."""
    if not unit.addresses:
        log.warning("reminder %s skipped: unit %s has no address", key, unit.code)
        return False
    now = ctx.clock.now()
    mail = build_mail(ctx.settings, to=[unit.addresses[0]], subject=subject, body=body, key=key, kind=kind, now=now)
    row = queue_mail(session, key=key, purpose=kind, mail=mail, recipients=[unit.addresses[0]], now=now)
    session.add(Reminder(key=key, kind=kind, unit_code=unit.code, created_at=now, outbox_id=row.id if row else None))
    session.flush()
    return True


def year_fraction(day: date) -> Decimal:
    """Return how much of ``day``'s year has passed at the end of ``day`` (1 on 31 December)."""
    days_in_year = (date(day.year + 1, 1, 1) - date(day.year, 1, 1)).days
    return Decimal(day.timetuple().tm_yday) / Decimal(days_in_year)


def behind_target(row: UnitRow, fraction: Decimal) -> list[str]:
    """Return one Chinese line per figure in which ``row`` is behind its pro-rata yearly target."""
    target = row.target
    if target is None:
        return []
    done = row.year_to_date
    lines = []
    for label, have, goal, unit in (
        ("报送两办", Decimal(done.submitted), target.submitted, "条"),
        ("被采用", Decimal(done.adopted), target.adopted, "条"),
        ("采用得分", done.points, target.points, "分"),
    ):
        if goal is None or goal == 0:
            continue
        due = (Decimal(goal) * fraction).quantize(Decimal("0.1"))
        if have < due:
            lines.append(
                f"{label}：已完成 {have.normalize()} {unit}，全年目标 {goal} {unit}，按时间进度应达 {due} {unit}"
            )
    return lines


def run_target_reminders(session: Session, ctx: RegisterContext, targets: Targets | None) -> int:
    """Remind the units behind their pro-rata targets, once a month, from the configured day on.

    Only within working hours. A daemon that was down on the reminder day sends them later in the
    same month. Returns the number of reminders queued; the caller commits.
    """
    now = ctx.clock.now()
    local = now.astimezone(ctx.settings.tz)
    if targets is None or local.day < ctx.settings.targets.reminder_day:
        return 0
    if not ctx.calendar.is_within_working_hours(now):
        return 0
    period = f"{local.year}-{local.month:02d}"
    figures = compute_bulletin(session, ctx, MONTHLY, period, targets=targets)
    fraction = year_fraction(local.date())
    sent = 0
    for row in figures.rows:
        unit = ctx.units.get(row.unit_code)
        key = f"target:{period}:{row.unit_code}"
        lines = behind_target(row, fraction)
        if unit is None or not lines or _sent(session, key):
            continue
        body = render(
            "unit/target_reminder.txt.j2",
            unit_name=unit.name,
            as_of=local.strftime("%Y年%m月%d日"),
            year=local.year,
            elapsed=f"{(fraction * 100).quantize(Decimal('1'))}%",
            lines=lines,
            office_name=ctx.settings.office.name,
            sent_on=local.strftime("%Y年%m月%d日"),
        )
        subject = f"【进度提醒】{unit.short_name}{local.year}年政务信息工作进度"
        sent += _send(session, ctx, unit, key=key, kind="target_reminder", subject=subject, body=body)
    log.info("target reminders %s: %d queued", period, sent)
    return sent


def run_holiday_reminders(session: Session, ctx: RegisterContext) -> int:
    """On the last day of a statutory holiday, remind every unit that the 假日综述 is due today.

    Holiday reminders go out whatever the hour (it is a holiday), once per unit and holiday.
    Returns the number of reminders queued; the caller commits.
    """
    local = ctx.clock.now().astimezone(ctx.settings.tz)
    block = ctx.calendar.holiday_block(local.date())
    if block is None or block.end != local.date():
        return 0
    sent = 0
    for unit in ctx.units.units.values():
        key = f"holiday:{block.end.isoformat()}:{unit.code}"
        if _sent(session, key):
            continue
        body = render(
            "unit/holiday_reminder.txt.j2",
            unit_name=unit.name,
            today=local.strftime("%m月%d日"),
            holiday=block.name,
            office_name=ctx.settings.office.name,
            sent_on=local.strftime("%Y年%m月%d日"),
        )
        subject = f"【提醒】今天请报送{block.name}假日综述"
        sent += _send(session, ctx, unit, key=key, kind="holiday_reminder", subject=subject, body=body)
    log.info("holiday summary reminders for %s: %d queued", block.name, sent)
    return sent
