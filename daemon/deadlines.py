"""Time limits per category: each item's deadline, its rule in words, the on-time verdict and the emergency alert.

The clock starts at the server's receipt time (``Item.received_at``). Working days come from the
app's calendar (daemon.workdays), so weekends, statutory holidays and weekend days worked in lieu
(调休) count as the State Council's notice sets them. The limits per category:

- 工作动态: submitted within ``time_limits.news_working_days`` working days after the receipt
  day, by the end of working hours (WorkCalendar.add_working_days).
- 新闻通气会: reaches the two general offices ``press_conference_days_before`` working days
  before the conference, by the end of working hours of that day. The conference date is read
  from the item's text (parsers.eventdate) or set by the office's 通气会 command. Without it the
  item has no deadline, and the rule text states that the date is missing.
- 假日综述: due on the last day of the holiday, by 23:59 of that day, because the last day is a day
  off and working hours do not apply. The holiday is the block containing the receipt date, else
  the latest block that ended in the ``HOLIDAY_LOOKBACK_DAYS`` before it (a summary sent after
  the holiday is late for that holiday).
- 约稿信息: the deadline of the commission (约稿) the item answers; none without a commission.
- 经济运行分析: day ``economic_analysis_day`` of a month, by the end of working hours, moved to the
  next working day when that day is off (顺延). The due day is the first one on or after the
  receipt date.
- 重大突发事件: immediately. The deadline is ``EMERGENCY_WINDOW`` after receipt, at any hour, and
  the office and the leaders get an alert mail as soon as the item is registered.
"""

from __future__ import annotations

import enum
import logging
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy.orm import Session

from daemon.config import Settings
from daemon.context import RegisterContext
from daemon.models import Commission, Item, ItemState, Reminder
from daemon.notices import build_mail, local_time
from daemon.outbound import queue_mail
from daemon.templating import render
from daemon.workdays import WorkCalendar
from parsers.eventdate import find_event_date

log = logging.getLogger(__name__)
audit = logging.getLogger("zwxx.audit")

NEWS = "工作动态"
PRESS_CONFERENCE = "新闻通气会"
HOLIDAY_SUMMARY = "假日综述"
COMMISSIONED = "约稿信息"
ECONOMIC_ANALYSIS = "经济运行分析"
EMERGENCY = "重大突发事件"

# NOTE: "immediately" has no configuration key yet. One hour is an estimate of what the office can
# meet at night, and a deadline equal to the receipt time would make every emergency late.
EMERGENCY_WINDOW = timedelta(hours=1)

# A holiday summary received this many days after a holiday ended is still taken as that holiday's
# summary. Holiday blocks are weeks or months apart, so the window keeps an unrelated older
# holiday from becoming the deadline.
HOLIDAY_LOOKBACK_DAYS = 14

# The holiday summary is due on a day off, so the deadline is the end of that day, not of working hours.
END_OF_DAY = time(23, 59)

# Item.deadline_rule is a String(200) column.
RULE_MAX_CHARS = 200

# Items the office will never submit: no deadline is counted against them.
_CLOSED_STATES = (ItemState.NOT_SENT, ItemState.SUPERSEDED)

# Body characters quoted in the emergency alert, so a leader can judge it from the mail alone.
ALERT_EXCERPT_CHARS = 500


class Verdict(enum.StrEnum):
    """Whether an item met its time limit. The values are the words the register shows."""

    ON_TIME = "按时"
    LATE = "超时"
    NOT_DUE = "未到期"
    NO_LIMIT = "无时限"


@dataclass(frozen=True)
class Deadline:
    """An item's deadline (aware UTC, None when the category has none) and its rule in Chinese."""

    deadline_at: datetime | None
    rule: str


def compute_deadline(
    item: Item, *, settings: Settings, calendar: WorkCalendar, commission_deadline: datetime | None = None
) -> Deadline:
    """Return the deadline of ``item`` by its category, receipt time and event date.

    ``commission_deadline`` is the deadline of the commission a 约稿信息 item was written for. A category
    this module does not know has no deadline.
    """
    limits = settings.time_limits
    received = item.received_at
    if item.category == NEWS:
        due = calendar.add_working_days(received, limits.news_working_days)
        return _deadline(due, f"{NEWS}：收到后 {limits.news_working_days} 个工作日内报送", calendar, received)
    if item.category == PRESS_CONFERENCE:
        return _press_conference(item, limits.press_conference_days_before, calendar, received)
    if item.category == HOLIDAY_SUMMARY:
        return _holiday_summary(calendar, received)
    if item.category == COMMISSIONED:
        if commission_deadline is None:
            return Deadline(None, f"{COMMISSIONED}：未关联约稿，没有约稿截止时间")
        return _deadline(commission_deadline, f"{COMMISSIONED}：按约稿截止时间报送", calendar, received)
    if item.category == ECONOMIC_ANALYSIS:
        due = economic_analysis_due(calendar, received, limits.economic_analysis_day)
        rule = f"{ECONOMIC_ANALYSIS}：每月 {limits.economic_analysis_day} 日前报送，遇休息日顺延"
        return _deadline(due, rule, calendar, received)
    if item.category == EMERGENCY:
        minutes = int(EMERGENCY_WINDOW.total_seconds() // 60)
        rule = f"{EMERGENCY}：收到后立即报送，不分昼夜，最迟 {minutes} 分钟"
        return _deadline(received + EMERGENCY_WINDOW, rule, calendar, received)
    return Deadline(None, f"{item.category}：无报送时限")


def _deadline(due: datetime, rule: str, calendar: WorkCalendar, received: datetime) -> Deadline:
    text = f"{rule}（{format_moment(due, calendar, received)} 前）"
    return Deadline(due.astimezone(UTC), text[:RULE_MAX_CHARS])


def _press_conference(item: Item, days_before: int, calendar: WorkCalendar, received: datetime) -> Deadline:
    if item.event_date is None:
        return Deadline(
            None,
            f"{PRESS_CONFERENCE}：正文中未找到通气会日期（如“通气会时间：12月10日”），暂无时限",
        )
    due_day = working_days_before(calendar, item.event_date, days_before)
    when = format_day(item.event_date, calendar, received)
    rule = f"{PRESS_CONFERENCE}：通气会（{when}）前 {days_before} 个工作日报送两办"
    return _deadline(calendar.end_of_working_hours(due_day), rule, calendar, received)


def _holiday_summary(calendar: WorkCalendar, received: datetime) -> Deadline:
    received_on = received.astimezone(calendar.tz).date()
    for back in range(HOLIDAY_LOOKBACK_DAYS + 1):
        block = calendar.holiday_block(received_on - timedelta(days=back))
        if block is not None:
            due = datetime.combine(block.end, END_OF_DAY, tzinfo=calendar.tz)
            return _deadline(due, f"{HOLIDAY_SUMMARY}：{block.name}假期最后一天当天报送", calendar, received)
    rule = f"{HOLIDAY_SUMMARY}：收到时不在假期中，此前 {HOLIDAY_LOOKBACK_DAYS} 天内也没有结束的假期，无法确定时限"
    return Deadline(None, rule)


def working_days_before(calendar: WorkCalendar, day: date, count: int) -> date:
    """Return the ``count``-th working day before ``day``, not counting ``day`` itself.

    Raises ValueError when ``count`` is below 1.
    """
    if count < 1:
        raise ValueError(f"working_days_before needs count >= 1, got {count}")
    found = 0
    candidate = day
    while found < count:
        candidate -= timedelta(days=1)
        if calendar.is_working_day(candidate):
            found += 1
    return candidate


def economic_analysis_due(calendar: WorkCalendar, received: datetime, day_of_month: int) -> datetime:
    """Return the end of working hours of the first due day on or after the receipt date.

    The due day is ``day_of_month`` of the receipt month, or of the next month when the receipt
    date is later. A due day that is off moves to the next working day, and the first moved day on
    or after the receipt date counts: received on Saturday 10 January, the due day is Monday 12th.
    """
    received_on = received.astimezone(calendar.tz).date()
    year, month = received_on.year, received_on.month
    while True:
        due_day = date(year, month, day_of_month)
        if not calendar.is_working_day(due_day):
            due_day = calendar.next_working_day(due_day)
        if due_day >= received_on:
            return calendar.end_of_working_hours(due_day)
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)


def format_moment(moment: datetime, calendar: WorkCalendar, received: datetime) -> str:
    """Format a deadline as 12月7日 17:30, with the year when it is not the receipt year."""
    local = moment.astimezone(calendar.tz)
    return f"{format_day(local.date(), calendar, received)} {local:%H:%M}"


def format_day(day: date, calendar: WorkCalendar, received: datetime) -> str:
    """Format a date as 12月10日, with the year when it is not the receipt year."""
    year = f"{day.year}年" if day.year != received.astimezone(calendar.tz).year else ""
    return f"{year}{day.month}月{day.day}日"


def assign_deadline(session: Session, ctx: RegisterContext, item: Item) -> Deadline:
    """Set ``item.deadline_at`` and ``item.deadline_rule``, reading the conference date first when missing.

    A 新闻通气会 item without ``event_date`` gets the date named in its title or body, when there
    is one. A 约稿信息 item takes the deadline of its commission. Returns the deadline set.
    """
    if item.category == PRESS_CONFERENCE and item.event_date is None:
        received_on = item.received_at.astimezone(ctx.calendar.tz).date()
        item.event_date = find_event_date(f"{item.title}\n{item.body_text}", received_on=received_on)

    commission_deadline = None
    if item.commission_id is not None:
        commission = session.get(Commission, item.commission_id)
        commission_deadline = commission.deadline_at if commission is not None else None

    deadline = compute_deadline(
        item, settings=ctx.settings, calendar=ctx.calendar, commission_deadline=commission_deadline
    )
    item.deadline_at = deadline.deadline_at
    item.deadline_rule = deadline.rule
    return deadline


def start_time_limit(session: Session, ctx: RegisterContext, item: Item) -> Deadline:
    """Assign the deadline of a newly registered item, and alert at once about a 重大突发事件.

    The alert goes out when ``time_limits.emergency_alert`` is on, at any hour. Returns the deadline set.
    """
    deadline = assign_deadline(session, ctx, item)
    if item.category == EMERGENCY and ctx.settings.time_limits.emergency_alert:
        queue_emergency_alert(session, ctx, item)
    return deadline


def queue_emergency_alert(session: Session, ctx: RegisterContext, item: Item) -> bool:
    """Queue the alert mail about ``item`` to the office addresses and the leaders.

    Records a Reminder of kind ``emergency``. Returns False when no address is configured or the
    alert for this item is queued already.
    """
    settings = ctx.settings
    recipients = list(dict.fromkeys([*settings.office.addresses, *settings.office.leaders]))
    if not recipients:
        log.warning("item %s is a major emergency but office.addresses and office.leaders are empty", item.serial)
        return False

    now = ctx.clock.now()
    unit = ctx.units.get(item.unit_code)
    excerpt = item.body_text.strip()
    if len(excerpt) > ALERT_EXCERPT_CHARS:
        excerpt = excerpt[:ALERT_EXCERPT_CHARS] + "……"
    body = render(
        "office/emergency_alert.txt.j2",
        serial=item.serial,
        title=item.title,
        unit_name=unit.name if unit else item.unit_code,
        received_at=local_time(item.received_at, settings),
        deadline_rule=item.deadline_rule or "",
        contact=item.contact or "",
        phone=item.phone or "",
        excerpt=excerpt,
        office_name=settings.office.name,
        sent_at=local_time(now, settings),
    )
    key = f"emergency:{item.id}"
    mail = build_mail(
        settings,
        to=recipients,
        subject=f"【重大突发事件】{item.serial} {item.title}",
        body=body,
        key=key,
        kind="emergency",
        now=now,
    )
    row = queue_mail(
        session,
        key=key,
        purpose="emergency_alert",
        mail=mail,
        recipients=recipients,
        now=now,
        item_id=item.id,
        message_db_id=item.message_db_id,
    )
    if row is None:
        return False
    session.add(Reminder(key=key, kind="emergency", unit_code=item.unit_code, created_at=now, outbox_id=row.id))
    session.flush()
    audit.info("item %s: emergency alert queued to %d addresses", item.serial, len(recipients))
    return True


def verdict(item: Item, now: datetime) -> Verdict:
    """Return whether ``item`` met its deadline, as of ``now``.

    按时: submitted by the deadline. 超时: submitted after it, or not submitted and ``now`` is past
    it. 未到期: not submitted and the deadline is still ahead. 无时限: no deadline, or the item
    will never be submitted (not to be sent, or replaced by a revision).
    """
    if item.deadline_at is None or item.state in _CLOSED_STATES:
        return Verdict.NO_LIMIT
    if item.submitted_at is not None:
        return Verdict.ON_TIME if item.submitted_at <= item.deadline_at else Verdict.LATE
    return Verdict.LATE if now > item.deadline_at else Verdict.NOT_DUE
