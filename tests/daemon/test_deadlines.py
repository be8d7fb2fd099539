"""Time limits per category around the 2026 holidays, verdicts, the emergency alert, receipts and the register."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from email import message_from_bytes, policy
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from daemon.app import App, build_app
from daemon.clock import FrozenClock
from daemon.config import ImapSettings, Settings, SmtpSettings, TimeLimitSettings, load_settings
from daemon.db import upgrade_database
from daemon.deadlines import (
    Deadline,
    Verdict,
    assign_deadline,
    compute_deadline,
    economic_analysis_due,
    verdict,
    working_days_before,
)
from daemon.embedded import SmtpSink
from daemon.models import Commission, Item, ItemEvent, ItemState, Message, OutboxMail, Reminder
from daemon.outbound import send_due
from daemon.views import format_register, item_summary
from daemon.workdays import WorkCalendar
from tests.daemon.conftest import WriteConfig
from tests.daemon.test_cli import run_zwxx
from tests.daemon.test_register import CD, Mailbox, build_mail, item_docx, plain_text

TZ = ZoneInfo("Asia/Shanghai")
OFFICE = "xxb@tourism.example.gov.cn"
LEADER = "leader@tourism.example.gov.cn"
CALENDAR = WorkCalendar()
SETTINGS = Settings(
    imap=ImapSettings(host="127.0.0.1", username="zwxx"),
    smtp=SmtpSettings(host="127.0.0.1", from_address="zwxx@tourism.example.gov.cn"),
)


def beijing(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    """An aware datetime in Beijing time, as the office reads times."""
    return datetime(year, month, day, hour, minute, tzinfo=TZ)


def item_of(category: str, received: datetime, *, event_date: date | None = None, body: str = "") -> Item:
    return Item(
        serial="2026-0001",
        category=category,
        received_at=received.astimezone(UTC),
        title="测试信息",
        body_text=body,
        state=ItemState.REGISTERED,
        event_date=event_date,
    )


def deadline_of(item: Item, *, settings: Settings = SETTINGS, commission_deadline: datetime | None = None) -> Deadline:
    return compute_deadline(item, settings=settings, calendar=CALENDAR, commission_deadline=commission_deadline)


# ---------------------------------------------------------------------------------------------
# compute_deadline per category


def test_news_friday_afternoon_due_monday() -> None:
    deadline = deadline_of(item_of("工作动态", beijing(2026, 12, 4, 15, 0)))

    assert deadline.deadline_at == beijing(2026, 12, 7, 17, 30)
    assert deadline.deadline_at is not None
    assert deadline.deadline_at.tzinfo == UTC
    assert deadline.rule == "工作动态：收到后 1 个工作日内报送（12月7日 17:30 前）"


def test_news_after_hours_counts_like_same_day() -> None:
    deadline = deadline_of(item_of("工作动态", beijing(2026, 12, 4, 22, 40)))

    assert deadline.deadline_at == beijing(2026, 12, 7, 17, 30)


def test_news_received_on_national_day_holiday() -> None:
    deadline = deadline_of(item_of("工作动态", beijing(2026, 10, 3, 10, 0)))

    assert deadline.deadline_at == beijing(2026, 10, 8, 17, 30)


def test_news_saturday_worked_in_lieu_counts() -> None:
    # Saturday 10 October 2026 is a working day in lieu after the National Day holiday.
    deadline = deadline_of(item_of("工作动态", beijing(2026, 10, 9, 16, 0)))

    assert deadline.deadline_at == beijing(2026, 10, 10, 17, 30)


def test_news_working_days_configurable() -> None:
    settings = dataclasses.replace(SETTINGS, time_limits=TimeLimitSettings(news_working_days=2))

    deadline = deadline_of(item_of("工作动态", beijing(2026, 10, 9, 16, 0)), settings=settings)

    assert deadline.deadline_at == beijing(2026, 10, 12, 17, 30)
    assert "收到后 2 个工作日内报送" in deadline.rule


def test_press_conference_two_working_days_before() -> None:
    item = item_of("新闻通气会", beijing(2026, 12, 4, 9, 0), event_date=date(2026, 12, 10))

    deadline = deadline_of(item)

    assert deadline.deadline_at == beijing(2026, 12, 8, 17, 30)
    assert deadline.rule == "新闻通气会：通气会（12月10日）前 2 个工作日报送两办（12月8日 17:30 前）"


def test_press_conference_counts_saturday_in_lieu() -> None:
    # Monday 12 October: Saturday 10 October (worked in lieu) is 1 day before, Friday 9 October is 2.
    item = item_of("新闻通气会", beijing(2026, 9, 28, 9, 0), event_date=date(2026, 10, 12))

    assert deadline_of(item).deadline_at == beijing(2026, 10, 9, 17, 30)


def test_press_conference_skips_holiday_block() -> None:
    # Friday 9 October: Thursday 8 October is 1 day before, and 1-7 October are off, so day 2 is 30 September.
    item = item_of("新闻通气会", beijing(2026, 9, 28, 9, 0), event_date=date(2026, 10, 9))

    assert deadline_of(item).deadline_at == beijing(2026, 9, 30, 17, 30)


def test_press_conference_next_year_shows_year() -> None:
    item = item_of("新闻通气会", beijing(2026, 12, 4, 9, 0), event_date=date(2027, 1, 6))

    deadline = deadline_of(item)

    assert deadline.deadline_at == beijing(2027, 1, 4, 17, 30)
    assert "通气会（2027年1月6日）" in deadline.rule
    assert "2027年1月4日 17:30 前" in deadline.rule


def test_press_conference_without_date_has_no_deadline() -> None:
    deadline = deadline_of(item_of("新闻通气会", beijing(2026, 12, 4, 9, 0)))

    assert deadline.deadline_at is None
    assert "未找到通气会日期" in deadline.rule


def test_holiday_summary_during_national_day() -> None:
    deadline = deadline_of(item_of("假日综述", beijing(2026, 10, 5, 11, 0)))

    assert deadline.deadline_at == beijing(2026, 10, 7, 23, 59)
    assert deadline.rule == "假日综述：国庆节假期最后一天当天报送（10月7日 23:59 前）"


def test_holiday_summary_after_holiday_is_already_due() -> None:
    deadline = deadline_of(item_of("假日综述", beijing(2026, 10, 8, 9, 0)))

    assert deadline.deadline_at == beijing(2026, 10, 7, 23, 59)


def test_holiday_summary_mid_autumn_block() -> None:
    deadline = deadline_of(item_of("假日综述", beijing(2026, 9, 25, 9, 0)))

    assert deadline.deadline_at == beijing(2026, 9, 27, 23, 59)
    assert "中秋节" in deadline.rule


def test_holiday_summary_far_from_holiday_has_none() -> None:
    deadline = deadline_of(item_of("假日综述", beijing(2026, 11, 20, 9, 0)))

    assert deadline.deadline_at is None
    assert "无法确定时限" in deadline.rule


def test_commissioned_uses_commission_deadline() -> None:
    due = beijing(2026, 12, 9, 17, 30)

    deadline = deadline_of(item_of("约稿信息", beijing(2026, 12, 4, 9, 0)), commission_deadline=due)

    assert deadline.deadline_at == due
    assert deadline.rule == "约稿信息：按约稿截止时间报送（12月9日 17:30 前）"


def test_commissioned_without_commission_has_none() -> None:
    deadline = deadline_of(item_of("约稿信息", beijing(2026, 12, 4, 9, 0)))

    assert deadline.deadline_at is None
    assert "未关联约稿" in deadline.rule


@pytest.mark.parametrize(
    ("received", "due"),
    [
        (beijing(2026, 12, 4, 9, 0), beijing(2026, 12, 10, 17, 30)),
        # Saturday 10 October is worked in lieu, so it stays the due day.
        (beijing(2026, 9, 28, 9, 0), beijing(2026, 10, 10, 17, 30)),
        (beijing(2026, 10, 5, 9, 0), beijing(2026, 10, 10, 17, 30)),
        # Saturday 10 January is off, so the due day moves to Monday 12 January.
        (beijing(2026, 1, 5, 9, 0), beijing(2026, 1, 12, 17, 30)),
        (beijing(2026, 1, 11, 9, 0), beijing(2026, 1, 12, 17, 30)),
        (beijing(2026, 1, 13, 9, 0), beijing(2026, 2, 10, 17, 30)),
        # Received after working hours on the due day: the deadline has passed already.
        (beijing(2026, 12, 10, 18, 0), beijing(2026, 12, 10, 17, 30)),
    ],
)
def test_economic_analysis_due_day(received: datetime, due: datetime) -> None:
    deadline = deadline_of(item_of("经济运行分析", received))

    assert deadline.deadline_at == due
    assert "每月 10 日前报送，遇休息日顺延" in deadline.rule


def test_economic_analysis_day_configurable() -> None:
    assert economic_analysis_due(CALENDAR, beijing(2026, 12, 4, 9, 0), 20) == beijing(2026, 12, 21, 17, 30)


def test_emergency_immediate_any_hour() -> None:
    received = beijing(2026, 12, 6, 2, 0)  # Sunday 02:00

    deadline = deadline_of(item_of("重大突发事件", received))

    assert deadline.deadline_at == received + timedelta(hours=1)
    assert deadline.rule == "重大突发事件：收到后立即报送，不分昼夜，最迟 60 分钟（12月6日 03:00 前）"


def test_unknown_category_has_none() -> None:
    deadline = deadline_of(item_of("其他", beijing(2026, 12, 4, 9, 0)))

    assert deadline == Deadline(None, "其他：无报送时限")


def test_working_days_before_rejects_zero() -> None:
    with pytest.raises(ValueError, match="count >= 1"):
        working_days_before(CALENDAR, date(2026, 12, 10), 0)


# ---------------------------------------------------------------------------------------------
# verdict


def judged(*, deadline_at: datetime | None, submitted_at: datetime | None, state: ItemState) -> Item:
    item = item_of("工作动态", beijing(2026, 12, 4, 9, 0))
    item.deadline_at = deadline_at
    item.submitted_at = submitted_at
    item.state = state
    return item


DUE = beijing(2026, 12, 7, 17, 30)


@pytest.mark.parametrize(
    ("submitted_at", "state", "now", "expected"),
    [
        (DUE - timedelta(hours=3), ItemState.SUBMITTED, DUE + timedelta(days=5), Verdict.ON_TIME),
        (DUE, ItemState.SUBMITTED, DUE + timedelta(days=5), Verdict.ON_TIME),
        (DUE + timedelta(minutes=1), ItemState.ADOPTED, DUE + timedelta(days=5), Verdict.LATE),
        (None, ItemState.PENDING_APPROVAL, DUE + timedelta(minutes=1), Verdict.LATE),
        (None, ItemState.REGISTERED, DUE - timedelta(minutes=1), Verdict.NOT_DUE),
        (None, ItemState.NOT_SENT, DUE + timedelta(days=5), Verdict.NO_LIMIT),
        (None, ItemState.SUPERSEDED, DUE + timedelta(days=5), Verdict.NO_LIMIT),
    ],
)
def test_verdict_labels(submitted_at: datetime | None, state: ItemState, now: datetime, expected: Verdict) -> None:
    item = judged(deadline_at=DUE, submitted_at=submitted_at, state=state)

    assert verdict(item, now) == expected


def test_verdict_without_deadline() -> None:
    item = judged(deadline_at=None, submitted_at=None, state=ItemState.REGISTERED)

    assert verdict(item, DUE) == "无时限"


# ---------------------------------------------------------------------------------------------
# Registering, alerting and showing, on a real database with a frozen clock

SUNDAY_0200 = beijing(2026, 12, 6, 2, 0)
FRIDAY_1500 = beijing(2026, 12, 4, 15, 0)


def frozen_app(settings: Settings, at: datetime) -> App:
    application = build_app(settings, clock=FrozenClock(at.astimezone(UTC)))
    upgrade_database(application.engine)
    application.context.archive.ensure()
    return application


@pytest.fixture
def app(settings: Settings) -> Iterator[App]:
    application = frozen_app(settings, FRIDAY_1500)
    try:
        yield application
    finally:
        application.close()


@pytest.fixture
def mailbox(app: App) -> Mailbox:
    return Mailbox(app)


def clock_of(app: App) -> FrozenClock:
    clock = app.clock
    assert isinstance(clock, FrozenClock)
    return clock


def move_clock(app: App, at: datetime) -> None:
    clock = clock_of(app)
    clock.advance(at - clock.now())


def deliver_item(mailbox: Mailbox, subject: str, title: str, body: str, at: datetime) -> Message:
    move_clock(mailbox.app, at)
    raw = build_mail(CD, subject, [("a.docx", item_docx(title, body))], sent=at.astimezone(UTC))
    return mailbox.deliver(raw, at.astimezone(UTC))


def only_item(app: App, message: Message) -> Item:
    with app.session_factory() as session:
        (item,) = session.scalars(select(Item).where(Item.message_db_id == message.id))
        session.expunge(item)
    return item


def outbox(app: App, purpose: str) -> list[OutboxMail]:
    with app.session_factory() as session:
        return list(session.scalars(select(OutboxMail).where(OutboxMail.purpose == purpose).order_by(OutboxMail.id)))


def test_news_item_deadline_in_receipt(app: App, mailbox: Mailbox) -> None:
    message = deliver_item(
        mailbox, "【工作动态】成都冬季消费季", "成都启动冬季消费季", "12月3日举行启动仪式。", FRIDAY_1500
    )

    item = only_item(app, message)
    assert item.deadline_at == beijing(2026, 12, 7, 17, 30)
    assert item.deadline_rule == "工作动态：收到后 1 个工作日内报送（12月7日 17:30 前）"
    (receipt,) = outbox(app, "receipt")
    assert "报送时限：工作动态：收到后 1 个工作日内报送（12月7日 17:30 前）" in plain_text(receipt.raw)
    assert outbox(app, "emergency_alert") == []


def test_press_conference_date_read_from_body(app: App, mailbox: Mailbox) -> None:
    message = deliver_item(
        mailbox,
        "【新闻通气会】冬季旅游新闻通气会",
        "全省冬季旅游新闻通气会有关情况",
        "省文化和旅游厅定于12月10日上午召开全省冬季旅游新闻通气会。",
        FRIDAY_1500,
    )

    item = only_item(app, message)
    assert item.category == "新闻通气会"
    assert item.event_date == date(2026, 12, 10)
    assert item.deadline_at == beijing(2026, 12, 8, 17, 30)
    (receipt,) = outbox(app, "receipt")
    assert "报送时限：新闻通气会：通气会（12月10日）前 2 个工作日报送两办（12月8日 17:30 前）" in plain_text(
        receipt.raw
    )


def test_commission_deadline_assigned(app: App, mailbox: Mailbox) -> None:
    message = deliver_item(mailbox, "【约稿信息】冬季旅游", "成都冬季旅游亮点", "推出冬季线路20条。", FRIDAY_1500)
    item = only_item(app, message)
    due = beijing(2026, 12, 9, 17, 30)

    with app.session_factory.begin() as session:
        commission = Commission(
            code="约稿2026-901",
            year=2026,
            seq=901,
            topic="冬季旅游",
            deadline_at=due.astimezone(UTC),
            created_at=FRIDAY_1500.astimezone(UTC),
            created_by=OFFICE,
        )
        session.add(commission)
        session.flush()
        row = session.get(Item, item.id)
        assert row is not None
        row.commission_id = commission.id
        deadline = assign_deadline(session, app.context, row)

    assert deadline.deadline_at == due
    updated = only_item(app, message)
    assert updated.deadline_at == due
    assert updated.deadline_rule == "约稿信息：按约稿截止时间报送（12月9日 17:30 前）"


def test_emergency_alert_sunday_night(app: App, mailbox: Mailbox, smtp_sink: SmtpSink) -> None:
    message = deliver_item(
        mailbox,
        "【重大突发事件】关于景区游客被困的紧急报告",
        "关于景区游客被困的紧急报告",
        "12月6日凌晨1时，某景区因降雪有12名游客被困，已全部转移至安全地带。",
        SUNDAY_0200,
    )

    item = only_item(app, message)
    assert item.deadline_at == SUNDAY_0200 + timedelta(hours=1)
    (alert,) = outbox(app, "emergency_alert")
    assert alert.key == f"emergency:{item.id}"
    assert alert.recipient_list == [OFFICE, LEADER]
    assert alert.created_at == SUNDAY_0200
    assert alert.next_attempt_at == SUNDAY_0200
    assert alert.item_id == item.id
    with app.session_factory() as session:
        (reminder,) = session.scalars(select(Reminder))
    assert reminder.key == f"emergency:{item.id}"
    assert reminder.kind == "emergency"
    assert reminder.outbox_id == alert.id

    summary = send_due(app.session_factory, app.settings, app.clock)

    assert summary.sent == 2  # the receipt and the alert, both at 02:00 on a Sunday
    (delivered,) = [mail for mail in smtp_sink.wait_for(2) if LEADER in mail.rcpt_tos]
    assert sorted(delivered.rcpt_tos) == sorted([OFFICE, LEADER])
    headers = message_from_bytes(delivered.data, policy=policy.default)
    assert str(headers["Subject"]) == f"【重大突发事件】{item.serial} 关于景区游客被困的紧急报告"
    assert str(headers["Auto-Submitted"]) == "auto-generated"
    body = plain_text(delivered.data)
    assert f"登记编号：{item.serial}" in body
    assert "收到时间：2026年12月06日 02:00" in body
    assert "时　　限：重大突发事件：收到后立即报送" in body
    assert "12名游客被困" in body


def test_emergency_alert_can_be_turned_off(write_config: WriteConfig) -> None:
    settings = load_settings(write_config(extra="[time_limits]\nemergency_alert = false\n"))
    application = frozen_app(settings, SUNDAY_0200)
    try:
        message = deliver_item(
            Mailbox(application), "【重大突发事件】游客被困", "关于游客被困的报告", "有游客被困。", SUNDAY_0200
        )

        item = only_item(application, message)
        assert item.deadline_at == SUNDAY_0200 + timedelta(hours=1)
        assert outbox(application, "emergency_alert") == []
        assert len(outbox(application, "receipt")) == 1
    finally:
        application.close()


def office_command(mailbox: Mailbox, text: str) -> str:
    """Deliver an office command mail now; return the command reply's text."""
    message = mailbox.deliver(build_mail(OFFICE, "命令", [], text=text), mailbox.app.clock.now())
    with mailbox.app.session_factory() as session:
        (reply,) = session.scalars(select(OutboxMail).where(OutboxMail.message_db_id == message.id))
    return plain_text(reply.raw)


def test_conference_command_sets_date_and_deadline(app: App, mailbox: Mailbox) -> None:
    message = deliver_item(
        mailbox, "【新闻通气会】冬季旅游", "全省冬季旅游新闻通气会有关情况", "通气会日期另行通知。", FRIDAY_1500
    )
    item = only_item(app, message)
    assert item.event_date is None
    assert item.deadline_at is None
    clock_of(app).advance(timedelta(hours=1))

    reply = office_command(mailbox, f"通气会 {item.serial} 12月10日")

    assert f"{item.serial} 的通气会日期已设为 2026年12月10日" in reply
    assert "12月8日 17:30 前" in reply
    updated = only_item(app, message)
    assert updated.event_date == date(2026, 12, 10)
    assert updated.deadline_at == beijing(2026, 12, 8, 17, 30)
    assert updated.deadline_rule == "新闻通气会：通气会（12月10日）前 2 个工作日报送两办（12月8日 17:30 前）"
    with app.session_factory() as session:
        event = session.scalars(select(ItemEvent).where(ItemEvent.item_id == item.id).order_by(ItemEvent.id)).all()[-1]
    assert event.command == "通气会"
    assert event.actor == OFFICE
    assert event.comment == "通气会日期 2026-12-10（原为 未填写）"


def test_conference_command_rejects_other_category(app: App, mailbox: Mailbox) -> None:
    message = deliver_item(mailbox, "【工作动态】消费季", "成都启动冬季消费季", "启动仪式举行。", FRIDAY_1500)
    item = only_item(app, message)

    reply = office_command(mailbox, f"通气会 {item.serial} 12月10日")

    assert "不是新闻通气会，不能设置通气会日期" in reply
    assert only_item(app, message).event_date is None


def test_register_row_shows_deadline_and_verdict(app: App, mailbox: Mailbox) -> None:
    message = deliver_item(mailbox, "【工作动态】消费季", "成都启动冬季消费季", "启动仪式举行。", FRIDAY_1500)
    item = only_item(app, message)

    before = item_summary(item, app.context.units, TZ, now=beijing(2026, 12, 7, 17, 0))
    after = item_summary(item, app.context.units, TZ, now=beijing(2026, 12, 7, 17, 31))
    unjudged = item_summary(item, app.context.units, TZ)

    assert before["deadline_at"] == "2026-12-07T17:30:00+08:00"
    assert before["deadline_rule"] == "工作动态：收到后 1 个工作日内报送（12月7日 17:30 前）"
    assert before["verdict"] == "未到期"
    assert after["verdict"] == "超时"
    assert unjudged["verdict"] is None
    table = format_register([before]).splitlines()
    assert "时限" in table[0].split()
    assert "12-07 17:30 未到期" in table[1]


def test_register_row_submitted_on_time(app: App, mailbox: Mailbox) -> None:
    message = deliver_item(mailbox, "【工作动态】消费季", "成都启动冬季消费季", "启动仪式举行。", FRIDAY_1500)
    item = only_item(app, message)
    move_clock(app, beijing(2026, 12, 7, 10, 0))
    with app.session_factory.begin() as session:
        row = session.get(Item, item.id)
        assert row is not None
        row.state = ItemState.APPROVED  # approval by the leader's reply has its own tests
    office_command(mailbox, f"报送 {item.serial}")

    submitted = only_item(app, message)
    row_values = item_summary(submitted, app.context.units, TZ, now=beijing(2026, 12, 20, 9, 0))

    assert submitted.submitted_at == beijing(2026, 12, 7, 10, 0)
    assert row_values["verdict"] == "按时"


def test_show_prints_deadline_and_verdict(settings: Settings, app: App, mailbox: Mailbox) -> None:
    # Received in January, so the deadline has passed on any real clock the CLI reads.
    message = deliver_item(
        mailbox, "【工作动态】消费季", "成都启动冬季消费季", "启动仪式举行。", beijing(2026, 1, 9, 15, 0)
    )
    item = only_item(app, message)
    assert settings.path is not None

    result = run_zwxx("show", item.serial, config=settings.path)

    assert result.returncode == 0, result.stderr
    assert "时限：工作动态：收到后 1 个工作日内报送（1月12日 17:30 前）" in result.stdout
    assert "是否按时：超时" in result.stdout
