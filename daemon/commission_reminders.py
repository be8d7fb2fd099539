"""Commission (约稿) reminders before the deadline and overdue notices after it, run by the scheduler.

Each reminder and notice has a Reminder row with a unique key, so a run that comes again, or catches
up after downtime, sends nothing twice. Mail to units waits for working hours.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from daemon.commissions import describe_commission, queue_unit_mail
from daemon.context import RegisterContext
from daemon.models import Commission, CommissionState, OutboxMail, Reminder
from daemon.notices import build_mail
from daemon.outbound import queue_mail
from daemon.templating import render

log = logging.getLogger(__name__)
audit = logging.getLogger("zwxx.audit")


@dataclass(frozen=True)
class ReminderCounts:
    """Counts of the mails one run of ``run_commission_reminders`` queued or decided against."""

    reminders: int = 0
    skipped: int = 0  # reminders decided against: the notice went out on or after that reminder's day
    overdue_units: int = 0
    overdue_office: int = 0
    closed: int = 0


def working_days_before(ctx: RegisterContext, day: date, count: int) -> date:
    """Return the working day ``count`` working days before ``day`` (``day`` itself not counted)."""
    candidate = day
    for _ in range(count):
        candidate -= timedelta(days=1)
        while not ctx.calendar.is_working_day(candidate):
            candidate -= timedelta(days=1)
    return candidate


def run_commission_reminders(session: Session, ctx: RegisterContext) -> ReminderCounts:
    """Queue the reminders and overdue notices that are due; the caller commits.

    Outside working hours nothing is queued, because units are notified only then: the next run
    inside working hours does the work. Each reminder offset (``commissions.reminder_days``, in
    working days before the deadline) goes once to each unit that has not answered. After the
    deadline each such unit gets one overdue notice, the office one list of them, and the
    commission is closed.
    """
    now = ctx.clock.now()
    if not ctx.calendar.is_within_working_hours(now):
        return ReminderCounts()
    totals = {"reminders": 0, "skipped": 0, "overdue_units": 0, "overdue_office": 0, "closed": 0}
    commissions = session.scalars(
        select(Commission).where(Commission.state == CommissionState.OPEN).order_by(Commission.id)
    )
    for commission in commissions:
        if now >= commission.deadline_at:
            _close_overdue(session, ctx, commission, totals)
        else:
            _remind(session, ctx, commission, totals)
    counts = ReminderCounts(**totals)
    if any(totals.values()):
        log.info(
            "commissions: %d reminder(s), %d skipped, %d overdue notice(s) to units, %d to the office, %d closed",
            counts.reminders, counts.skipped, counts.overdue_units, counts.overdue_office, counts.closed,
        )  # fmt: skip
    return counts


def _remind(session: Session, ctx: RegisterContext, commission: Commission, totals: dict[str, int]) -> None:
    now = ctx.clock.now()
    today = now.astimezone(ctx.settings.tz).date()
    deadline_day = commission.deadline_at.astimezone(ctx.settings.tz).date()
    # Nearest offset first: when several are due at once (the daemon was down), only the nearest is sent.
    offsets = sorted(set(ctx.settings.commissions.reminder_days))
    for row in commission.units:
        if row.answered_item_id is not None or row.notified_at is None:
            continue
        notified_day = row.notified_at.astimezone(ctx.settings.tz).date()
        sent_one = False
        for days in offsets:
            remind_day = working_days_before(ctx, deadline_day, days)
            key = f"commission:{commission.id}:{row.unit_code}:{days}d"
            if today < remind_day or session.scalar(select(Reminder.id).where(Reminder.key == key)) is not None:
                continue
            reminder = Reminder(key=key, kind="commission", unit_code=row.unit_code, created_at=now)
            if sent_one or notified_day >= remind_day:
                totals["skipped"] += 1
            else:
                outbox = queue_unit_mail(
                    session, ctx, commission, row, purpose="commission_reminder", send_at=now,
                    days_left=days, reminder_days=days,
                )  # fmt: skip
                reminder.outbox_id = outbox.id if outbox else None
                totals["reminders"] += outbox is not None
            sent_one = True
            session.add(reminder)
            session.flush()


def _close_overdue(session: Session, ctx: RegisterContext, commission: Commission, totals: dict[str, int]) -> None:
    now = ctx.clock.now()
    missing = [row for row in commission.units if row.answered_item_id is None]
    for row in missing:
        if row.overdue_notified_at is not None:
            continue
        outbox = queue_unit_mail(session, ctx, commission, row, purpose="commission_overdue", send_at=now)
        row.overdue_notified_at = now
        key = f"commission:{commission.id}:{row.unit_code}:overdue"
        session.add(
            Reminder(
                key=key, kind="overdue", unit_code=row.unit_code, created_at=now,
                outbox_id=outbox.id if outbox else None,
            )
        )  # fmt: skip
        totals["overdue_units"] += outbox is not None
    if missing and ctx.settings.office.addresses:
        outbox = _queue_office_overdue(session, ctx, commission)
        session.add(
            Reminder(
                key=f"commission:{commission.id}:office:overdue", kind="overdue", unit_code=None, created_at=now,
                outbox_id=outbox.id if outbox else None,
            )
        )  # fmt: skip
        totals["overdue_office"] += outbox is not None
    commission.state = CommissionState.CLOSED
    totals["closed"] += 1
    session.flush()
    audit.info("commission %s closed at its deadline, %d unit(s) had not answered", commission.code, len(missing))


def _queue_office_overdue(session: Session, ctx: RegisterContext, commission: Commission) -> OutboxMail | None:
    settings = ctx.settings
    now = ctx.clock.now()
    described = describe_commission(session, ctx, commission)
    body = render(
        "office/commission_overdue.txt.j2",
        commission=described,
        office_name=settings.office.name,
    )
    key = f"commission-overdue-office:{commission.id}"
    missing = described["missing"]
    assert isinstance(missing, list)
    mail = build_mail(
        settings,
        to=list(settings.office.addresses),
        subject=f"【约稿逾期】{commission.code} {commission.topic}：{len(missing)} 个单位未报送",
        body=body,
        key=key,
        kind="commission-overdue-office",
        now=now,
    )
    return queue_mail(
        session, key=key, purpose="commission_overdue_office", mail=mail, recipients=list(settings.office.addresses),
        now=now,
    )  # fmt: skip
