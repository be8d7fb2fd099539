"""Commissions (约稿): created by office mail or CLI, notices with tokens, answers, reminders, overdue, digest."""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path

import pytest
from sqlalchemy import select

from daemon.app import App, build_app
from daemon.cli_commissions import add_commands
from daemon.clock import FrozenClock
from daemon.commission_reminders import ReminderCounts, run_commission_reminders
from daemon.commissions import sign_unit_token
from daemon.config import Settings
from daemon.db import upgrade_database
from daemon.digest import send_digest
from daemon.embedded import ReceivedMail, SmtpSink
from daemon.models import Commission, CommissionState, Item, Message, MessageState, OutboxMail, Reminder
from daemon.outbound import send_due
from daemon.units import UnitKind
from tests.daemon.conftest import APPROVAL_SECRET
from tests.daemon.test_pipeline import poll_once
from tests.daemon.test_register import CD, DOCX_TYPE, LZ, Mailbox, build_mail, item_docx
from tests.servers.handle import ImapServerHandle

OFFICE = "xxb@tourism.example.gov.cn"
MAILBOX = "zwxx@tourism.example.gov.cn"
LS = "lsly@example.gov.cn"
# Tuesday 1 December 2026, 09:00 in Asia/Shanghai. The deadline 12月10日 is Thursday 10 December, 17:30;
# 3 working days before it is Monday 7 December, 1 working day before it Wednesday 9 December.
TUESDAY_0900 = datetime(2026, 12, 1, 1, 0, tzinfo=UTC)
COMMISSION_MAIL = "约稿：冬季旅游消费情况\n单位：成都市、乐山市\n截止：12月10日\n要求：800字以内，\n附现场图片2张。"


def local(day: int, hour: int, minute: int = 0) -> datetime:
    """December 2026, Asia/Shanghai wall time, as UTC."""
    return datetime(2026, 12, day, hour, minute, tzinfo=UTC) - timedelta(hours=8)


@pytest.fixture
def app(settings: Settings) -> Iterator[App]:
    application = build_app(settings, clock=FrozenClock(TUESDAY_0900))
    upgrade_database(application.engine)
    application.context.archive.ensure()
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


def header(raw: bytes, name: str) -> str:
    return str(message_from_bytes(raw, policy=policy.default)[name] or "")


def plain_text(raw: bytes) -> str:
    body = message_from_bytes(raw, policy=policy.default).get_body(preferencelist=("plain",))
    assert body is not None
    return str(body.get_content())


def mails_to(sink: SmtpSink, address: str, subject_prefix: str) -> list[ReceivedMail]:
    return [
        mail
        for mail in sink.received
        if address in mail.rcpt_tos and header(mail.data, "Subject").startswith(subject_prefix)
    ]


def unit_mail(
    sender: str,
    subject: str,
    *,
    to: str = MAILBOX,
    title: str = "成都冬季旅游消费持续升温",
    extra_headers: dict[str, str] | None = None,
    sent: datetime = TUESDAY_0900,
) -> bytes:
    """A unit's mail with one .docx item."""
    mail = EmailMessage()
    mail["From"] = sender
    mail["To"] = to
    mail["Subject"] = subject
    mail["Date"] = format_datetime(sent)
    mail["Message-ID"] = make_msgid(domain="example.gov.cn")
    for name, value in (extra_headers or {}).items():
        mail[name] = value
    mail.set_content("请审阅。")
    document = item_docx(title, "12月以来，全市冰雪游、温泉游订单同比增长三成。")
    mail.add_attachment(document, maintype=DOCX_TYPE[0], subtype=DOCX_TYPE[1], filename="约稿.docx")
    return mail.as_bytes(policy=policy.SMTP)


def create_by_mail(mailbox: Mailbox, text: str = COMMISSION_MAIL) -> Message:
    return mailbox.deliver(build_mail(OFFICE, "约稿", [], text=text), mailbox.app.clock.now())


def commission_of(app: App) -> Commission:
    with app.session_factory() as session:
        commission = session.scalar(select(Commission).order_by(Commission.id.desc()).limit(1))
        assert commission is not None
        session.expunge_all()
        return commission


def answered_units(app: App) -> dict[str, str | None]:
    """Unit code → serial of its answer (None while unanswered), of the newest commission."""
    with app.session_factory() as session:
        commission = session.scalar(select(Commission).order_by(Commission.id.desc()).limit(1))
        assert commission is not None
        answers: dict[str, str | None] = {}
        for row in commission.units:
            item = session.get(Item, row.answered_item_id) if row.answered_item_id else None
            answers[row.unit_code] = item.serial if item else None
        return answers


def only_item(app: App, message: Message) -> Item:
    with app.session_factory() as session:
        (item,) = session.scalars(select(Item).where(Item.message_db_id == message.id))
        session.expunge_all()
        return item


def outbox(app: App, purpose: str) -> list[OutboxMail]:
    with app.session_factory() as session:
        rows = list(session.scalars(select(OutboxMail).where(OutboxMail.purpose == purpose).order_by(OutboxMail.id)))
        session.expunge_all()
        return rows


def run_reminders(app: App, at: datetime) -> ReminderCounts:
    clock_of(app).advance(at - app.clock.now())
    with app.session_factory.begin() as session:
        return run_commission_reminders(session, app.context)


# -- creation and answers on the real IMAP server and SMTP sink -----------------------------------


def test_commission_mail_notifies_units_and_token_reply_links(
    app: App, imap: ImapServerHandle, smtp_sink: SmtpSink
) -> None:
    imap.append(build_mail(OFFICE, "约稿", [], text=COMMISSION_MAIL), msg_time=TUESDAY_0900)
    poll_once(app)

    (reply,) = mails_to(smtp_sink, OFFICE, "【约稿已发出】约稿2026-001 冬季旅游消费情况")
    reply_text = plain_text(reply.data)
    assert "约稿编号：约稿2026-001" in reply_text
    assert "截止时间：2026年12月10日 17:30" in reply_text
    assert "约稿单位（2 个）：成都市文旅局、乐山市文旅局" in reply_text
    assert "约稿通知已发给以上单位。" in reply_text
    with app.session_factory() as session:
        (command,) = session.scalars(select(Message).where(Message.sender == OFFICE))
        assert command.state == MessageState.COMMAND

    (notice,) = mails_to(smtp_sink, CD, "【约稿】约稿2026-001 冬季旅游消费情况")
    token = sign_unit_token(APPROVAL_SECRET.encode(), commission_of(app).id, "cd")
    assert token.startswith("yg1-cd-")
    assert f"〔回复码 {token}〕" in header(notice.data, "Subject")
    assert header(notice.data, "Reply-To") == f"zwxx+{token}@tourism.example.gov.cn"
    notice_text = plain_text(notice.data)
    assert notice_text.startswith("成都市文化广电旅游局：")
    assert "800字以内，\n附现场图片2张。" in notice_text
    assert len(mails_to(smtp_sink, LS, "【约稿】约稿2026-001")) == 1
    with app.session_factory() as session:
        commission = session.scalar(select(Commission))
        assert commission is not None
        assert commission.deadline_at == local(10, 17, 30)
        assert [(row.unit_code, row.notified_at) for row in commission.units] == [
            ("cd", TUESDAY_0900),
            ("ls", TUESDAY_0900),
        ]

    # 成都 replies to the notice: the token comes back in To and in the subject.
    clock_of(app).advance(timedelta(days=1))
    reply_mail = unit_mail(CD, "回复：" + header(notice.data, "Subject"), to=header(notice.data, "Reply-To"))
    imap.append(reply_mail, msg_time=app.clock.now())
    poll_once(app)

    assert answered_units(app) == {"cd": "2026-0001", "ls": None}
    with app.session_factory() as session:
        item = session.scalar(select(Item).where(Item.serial == "2026-0001"))
        assert item is not None
        assert item.commission_id == commission.id
        assert item.category == "约稿信息"
        assert item.deadline_at == local(10, 17, 30)
    assert len(mails_to(smtp_sink, CD, "【回执】2026-0001")) == 1


# -- linking an item to a commission -------------------------------------------------------------


def test_token_in_delivered_to_only_links(app: App, mailbox: Mailbox) -> None:
    create_by_mail(mailbox)
    token = sign_unit_token(APPROVAL_SECRET.encode(), commission_of(app).id, "cd")

    message = mailbox.deliver(
        unit_mail(CD, "冬季消费情况", extra_headers={"Delivered-To": f"zwxx+{token}@tourism.example.gov.cn"}),
        app.clock.now(),
    )

    assert only_item(app, message).category == "约稿信息"
    assert answered_units(app)["cd"] == "2026-0001"


def test_reply_threaded_to_notice_links(app: App, mailbox: Mailbox) -> None:
    create_by_mail(mailbox)
    (notice, _) = outbox(app, "commission_notice")

    message = mailbox.deliver(
        unit_mail(CD, "冬季消费情况", extra_headers={"In-Reply-To": notice.message_id}), app.clock.now()
    )

    assert only_item(app, message).commission_id == commission_of(app).id


def test_new_mail_naming_code_links(app: App, mailbox: Mailbox) -> None:
    create_by_mail(mailbox)

    message = mailbox.deliver(unit_mail(LS, "报送约稿２０２６－１：乐山冬季旅游"), app.clock.now())

    assert only_item(app, message).commission_id == commission_of(app).id
    assert answered_units(app) == {"cd": None, "ls": "2026-0001"}


def test_code_from_unit_not_asked_not_linked(app: App, mailbox: Mailbox) -> None:
    create_by_mail(mailbox)

    message = mailbox.deliver(unit_mail(LZ, "约稿2026-001 泸州冬季旅游"), app.clock.now())

    assert only_item(app, message).commission_id is None
    assert answered_units(app) == {"cd": None, "ls": None}


def test_other_units_token_not_linked(app: App, mailbox: Mailbox) -> None:
    create_by_mail(mailbox)
    token = sign_unit_token(APPROVAL_SECRET.encode(), commission_of(app).id, "cd")

    message = mailbox.deliver(unit_mail(LS, f"乐山冬季旅游 〔回复码 {token}〕"), app.clock.now())

    assert only_item(app, message).commission_id is None


def test_forged_token_not_linked(app: App, mailbox: Mailbox) -> None:
    create_by_mail(mailbox)
    forged = f"yg{commission_of(app).id}-cd-{'a' * 20}"

    message = mailbox.deliver(unit_mail(CD, f"冬季旅游 〔回复码 {forged}〕"), app.clock.now())

    assert only_item(app, message).commission_id is None


def test_second_answer_keeps_first(app: App, mailbox: Mailbox) -> None:
    create_by_mail(mailbox)
    mailbox.deliver(unit_mail(CD, "约稿2026-001 第一篇", title="成都冰雪游升温"), app.clock.now())

    second = mailbox.deliver(unit_mail(CD, "约稿2026-001 第二篇", title="成都温泉游升温"), app.clock.now())

    assert only_item(app, second).commission_id == commission_of(app).id
    assert answered_units(app)["cd"] == "2026-0001"


# -- creation errors and unit selection ------------------------------------------------------------


def test_unknown_unit_rejected_with_reply(app: App, mailbox: Mailbox) -> None:
    message = create_by_mail(mailbox, "约稿：冬季旅游\n单位：成都市、火星市\n截止：12月10日")

    with app.session_factory() as session:
        assert session.scalar(select(Commission)) is None
        stored = session.get_one(Message, message.id)
        assert stored.state == MessageState.COMMAND
    (reply,) = outbox(app, "command_reply")
    assert header(reply.raw, "Subject").startswith("【约稿未创建】")
    assert "单位名录中没有“火星市”" in plain_text(reply.raw)
    assert outbox(app, "commission_notice") == []


def test_bad_date_and_missing_units_reported(app: App, mailbox: Mailbox) -> None:
    create_by_mail(mailbox, "约稿：冬季旅游\n截止：下个月")

    (reply,) = outbox(app, "command_reply")
    text = plain_text(reply.raw)
    assert "缺少约稿单位" in text
    assert "无法识别截止时间“下个月”" in text


def test_past_deadline_rejected(app: App, mailbox: Mailbox) -> None:
    create_by_mail(mailbox, "约稿：冬季旅游\n单位：成都市\n截止时间：2026年11月30日17:00")

    (reply,) = outbox(app, "command_reply")
    assert "已过，请写一个以后的时间" in plain_text(reply.raw)


def test_all_prefectures_notified(app: App, mailbox: Mailbox) -> None:
    create_by_mail(mailbox, "约稿：冬季旅游\n单位：全部市州、产业处\n期限：3个工作日")

    prefectures = [unit.code for unit in app.context.units.units.values() if unit.kind is UnitKind.PREFECTURE]
    assert len(prefectures) == 21
    assert sorted(answered_units(app)) == sorted([*prefectures, "cyc"])
    assert len(outbox(app, "commission_notice")) == 22
    assert commission_of(app).deadline_at == local(4, 17, 30)  # Friday: 3 working days after Tuesday


def test_default_deadline_days(app: App, mailbox: Mailbox) -> None:
    create_by_mail(mailbox, "约稿：冬季旅游\n单位：成都市")

    assert commission_of(app).deadline_at == local(8, 17, 30)  # 5 working days after Tuesday 1 December


def test_notice_held_until_working_hours(app: App, mailbox: Mailbox) -> None:
    clock_of(app).advance(local(5, 10) - app.clock.now())  # Saturday

    create_by_mail(mailbox, "约稿：冬季旅游\n单位：成都市\n截止：12月10日")

    (notice,) = outbox(app, "commission_notice")
    assert notice.next_attempt_at == local(7, 8, 30)
    (reply,) = outbox(app, "command_reply")
    assert "通知将于 2026年12月07日 08:30 发出" in plain_text(reply.raw)


# -- reminders and overdue notices -------------------------------------------------------------------


def test_reminders_only_to_unanswered_units_once_each(app: App, mailbox: Mailbox, smtp_sink: SmtpSink) -> None:
    create_by_mail(mailbox)
    mailbox.deliver(unit_mail(CD, "约稿2026-001 成都冬季旅游"), local(2, 10))

    assert run_reminders(app, local(4, 10)) == ReminderCounts()  # Friday: no offset is due yet
    assert run_reminders(app, local(7, 7)) == ReminderCounts()  # Monday before working hours
    assert run_reminders(app, local(7, 10)) == ReminderCounts(reminders=1)
    assert run_reminders(app, local(7, 15)) == ReminderCounts()
    assert run_reminders(app, local(8, 10)) == ReminderCounts()
    assert run_reminders(app, local(9, 10)) == ReminderCounts(reminders=1)
    assert run_reminders(app, local(9, 10, 30)) == ReminderCounts()

    rows = outbox(app, "commission_reminder")
    assert [row.recipient_list for row in rows] == [[LS], [LS]]
    with app.session_factory() as session:
        keys = list(session.scalars(select(Reminder.key).order_by(Reminder.id)))
    commission_id = commission_of(app).id
    assert keys == [f"commission:{commission_id}:ls:3d", f"commission:{commission_id}:ls:1d"]

    send_due(app.session_factory, app.settings, app.clock, limit=100)
    reminders = mails_to(smtp_sink, LS, "【约稿提醒】约稿2026-001")
    assert len(reminders) == 2
    assert "距截止还有 3 个工作日" in plain_text(reminders[0].data)
    assert "距截止还有 1 个工作日" in plain_text(reminders[1].data)
    assert header(reminders[0].data, "Reply-To").startswith("zwxx+yg")
    assert mails_to(smtp_sink, CD, "【约稿提醒】") == []


def test_reminder_day_before_notice_skipped(app: App, mailbox: Mailbox) -> None:
    clock_of(app).advance(local(8, 9) - app.clock.now())  # Tuesday 8 December, after the 3-day reminder day
    create_by_mail(mailbox)

    assert run_reminders(app, local(8, 10)) == ReminderCounts(skipped=2)  # the 3-day reminder, both units
    assert run_reminders(app, local(9, 10)) == ReminderCounts(reminders=2)  # 1 day before, both units
    assert len(outbox(app, "commission_reminder")) == 2


def test_overdue_notices_and_closing(app: App, mailbox: Mailbox, smtp_sink: SmtpSink) -> None:
    create_by_mail(mailbox)
    mailbox.deliver(unit_mail(CD, "约稿2026-001 成都冬季旅游"), local(2, 10))
    run_reminders(app, local(7, 10))
    run_reminders(app, local(9, 10))

    assert run_reminders(app, local(10, 17)) == ReminderCounts()  # before the deadline: nothing new
    assert run_reminders(app, local(10, 18)) == ReminderCounts()  # after it, but outside working hours
    assert commission_of(app).state == CommissionState.OPEN
    assert run_reminders(app, local(11, 9)) == ReminderCounts(overdue_units=1, overdue_office=1, closed=1)
    assert run_reminders(app, local(11, 10)) == ReminderCounts()
    assert commission_of(app).state == CommissionState.CLOSED

    send_due(app.session_factory, app.settings, app.clock, limit=100)
    (unit_notice,) = mails_to(smtp_sink, LS, "【约稿逾期】约稿2026-001")
    assert "至今未收到你单位的来稿" in plain_text(unit_notice.data)
    assert mails_to(smtp_sink, CD, "【约稿逾期】") == []
    (office_notice,) = mails_to(smtp_sink, OFFICE, "【约稿逾期】约稿2026-001 冬季旅游消费情况：1 个单位未报送")
    office_text = plain_text(office_notice.data)
    assert "1. 乐山市文旅局（lsly@example.gov.cn）" in office_text
    assert "已报送的单位（1 个）" in office_text
    assert "成都市文旅局　2026-0001" in office_text

    # A late answer still links, and is marked late.
    late = mailbox.deliver(unit_mail(LS, "约稿2026-001 乐山冬季旅游", title="乐山冬季旅游持续升温"), local(11, 11))
    assert only_item(app, late).commission_id == commission_of(app).id


def test_commission_all_answered_closes_quietly(app: App, mailbox: Mailbox) -> None:
    create_by_mail(mailbox, "约稿：冬季旅游\n单位：成都市\n截止：12月10日")
    mailbox.deliver(unit_mail(CD, "约稿2026-001 成都冬季旅游"), local(2, 10))

    assert run_reminders(app, local(11, 9)) == ReminderCounts(closed=1)
    assert outbox(app, "commission_overdue_office") == []


# -- the digest ------------------------------------------------------------------------------------


def test_digest_lists_open_commissions(app: App, mailbox: Mailbox) -> None:
    create_by_mail(mailbox)
    mailbox.deliver(unit_mail(CD, "约稿2026-001 成都冬季旅游"), local(2, 10))
    clock_of(app).advance(local(2, 16) - app.clock.now())
    with app.session_factory.begin() as session:
        send_digest(session, app.context, slot="2026-12-02 16:00")

    clock_of(app).advance(local(3, 9) - app.clock.now())
    with app.session_factory.begin() as session:
        digest = send_digest(session, app.context, slot="2026-12-03 09:00")

    assert digest.sent  # nothing new, but the open commission is pending
    with app.session_factory() as session:
        row = session.get_one(OutboxMail, digest.outbox_id)
        text = plain_text(row.raw)
    assert "五、进行中的约稿（1 项）" in text
    assert "1. 约稿2026-001　冬季旅游消费情况　截止 2026年12月10日 17:30" in text
    assert "已报送（1）：成都市文旅局 2026-0001" in text
    assert "未报送（1）：乐山市文旅局" in text

    run_reminders(app, local(11, 9))
    with app.session_factory.begin() as session:
        closed = send_digest(session, app.context, slot="2026-12-11 16:00")
    # The commission is closed, but its answer passed the deadline without being submitted to 两办.
    assert closed.sent
    with app.session_factory() as session:
        text = plain_text(session.get_one(OutboxMail, closed.outbox_id).raw)
    assert "进行中的约稿" not in text
    assert "超过报送时限、尚未报送两办（1 条）" in text
    assert "2026-0001　成都市文旅局" in text


# -- the CLI ------------------------------------------------------------------------------------------


def run_cli(settings: Settings, *argv: str) -> int:
    parser = argparse.ArgumentParser(prog="zwxx")
    parser.add_argument("--config", type=Path)
    parser.add_argument("--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True)
    add_commands(sub)
    assert settings.path is not None
    args = parser.parse_args(["--config", str(settings.path), *argv])
    return int(args.func(args))


def test_cli_new_list_show(app: App, settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    status = run_cli(
        settings, "commission", "new", "--topic", "冬季旅游", "--units", "成都市,乐山市",
        "--deadline", "10个工作日", "--requirements", "800字以内",
    )  # fmt: skip

    output = capsys.readouterr().out
    assert status == 0
    assert "约稿编号：约稿" in output
    assert "约稿要求：800字以内" in output
    assert "成都市文旅局：未报送，通知于" in output
    assert len(outbox(app, "commission_notice")) == 2

    assert run_cli(settings, "commission", "list") == 0
    listing = capsys.readouterr().out
    assert "进行中" in listing
    assert "已报送 0/2" in listing

    code = commission_of(app).code
    assert run_cli(settings, "commission", "show", code) == 0
    assert f"约稿编号：{code}（进行中）" in capsys.readouterr().out

    assert run_cli(settings, "commission", "show", "约稿1999-001") == 1
    assert "没有编号为 约稿1999-001 的约稿" in capsys.readouterr().out


def test_cli_unknown_unit_fails(app: App, settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    status = run_cli(
        settings, "commission", "new", "--topic", "冬季旅游", "--units", "火星市", "--deadline", "3个工作日"
    )

    assert status == 1
    assert "单位名录中没有“火星市”" in capsys.readouterr().out
    with app.session_factory() as session:
        assert session.scalar(select(Commission)) is None


def test_deadline_before_notice_rejected(app: App, mailbox: Mailbox) -> None:
    # Friday 4 December 2026, 20:00: the notice would go out on Monday 7 December at 08:30.
    clock_of(app).advance(local(4, 20) - app.clock.now())
    create_by_mail(mailbox, "约稿：冬季旅游\n单位：成都市\n截止：12月6日")

    (reply,) = outbox(app, "command_reply")
    text = plain_text(reply.raw)
    assert "早于约稿通知发出的时间（2026年12月07日 08:30" in text
    assert outbox(app, "commission_notice") == []
