"""An item's whole path by mail, on the real IMAP and SMTP servers: 送审, the leader's reply, 报送, 采用."""

from __future__ import annotations

from decimal import Decimal
from email import message_from_bytes, policy
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path

import pytest
from sqlalchemy import select

from daemon.app import App
from daemon.embedded import ReceivedMail, SmtpSink
from daemon.models import Adoption, ApprovalRequest, ApprovalState, Item, ItemState, Message, MessageState
from tests.daemon.conftest import WriteConfig
from tests.daemon.test_pipeline import poll_once
from tests.daemon.test_register import CD, START, build_mail, item_docx
from tests.servers.handle import ImapServerHandle

OFFICE = "xxb@tourism.example.gov.cn"
LEADER = "leader@tourism.example.gov.cn"
MAILBOX = "zwxx@tourism.example.gov.cn"
REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def settings(write_config: WriteConfig):  # type: ignore[no-untyped-def]
    from daemon.config import load_settings

    scoring = (REPO_ROOT / "examples" / "scoring.toml").as_posix()
    return load_settings(write_config(extra=f'[scoring]\nfile = "{scoring}"\n\n[notices]\nunit_on_adopt = true\n'))


def plain_text(raw: bytes) -> str:
    mail = message_from_bytes(raw, policy=policy.default)
    body = mail.get_body(preferencelist=("plain",))
    assert body is not None
    return str(body.get_content())


def header(raw: bytes, name: str) -> str:
    return str(message_from_bytes(raw, policy=policy.default)[name] or "")


def office_mail(text: str, *, subject: str = "命令", documents: list[tuple[str, bytes]] | None = None) -> bytes:
    return build_mail(OFFICE, subject, documents or [], text=text)


def reply_to(request: ReceivedMail, words: str, *, sender: str = LEADER, keep_token: bool = True) -> bytes:
    """A leader's reply as QQ Mail writes it: new words on top, the whole request quoted below."""
    original = message_from_bytes(request.data, policy=policy.default)
    mail = EmailMessage()
    mail["From"] = sender
    mail["To"] = str(original["Reply-To"]) if keep_token else MAILBOX
    subject = str(original["Subject"])
    mail["Subject"] = "回复：" + (subject if keep_token else subject.split("〔")[0])
    mail["Date"] = format_datetime(START)
    mail["Message-ID"] = make_msgid(domain="tourism.example.gov.cn")
    mail["In-Reply-To"] = str(original["Message-ID"])
    mail["References"] = str(original["Message-ID"])
    quoted = plain_text(request.data)
    mail.set_content(
        f"{words}\n\n------------------ 原始邮件 ------------------\n"
        f'发件人: "政务信息报送邮箱" <{MAILBOX}>;\n发送时间: 2026年11月2日(星期一) 上午9:13\n'
        f"收件人: <{LEADER}>;\n主题: {subject}\n\n{quoted}"
    )
    return mail.as_bytes(policy=policy.SMTP)


def mails_to(sink: SmtpSink, address: str, subject_prefix: str) -> list[ReceivedMail]:
    return [
        mail
        for mail in sink.received
        if address in mail.rcpt_tos and header(mail.data, "Subject").startswith(subject_prefix)
    ]


def item_state(app: App, serial: str) -> ItemState:
    with app.session_factory() as session:
        item = session.scalar(select(Item).where(Item.serial == serial))
        assert item is not None
        return ItemState(item.state)


def events(app: App, serial: str) -> list[tuple[str, str | None, str, str | None]]:
    with app.session_factory() as session:
        item = session.scalar(select(Item).where(Item.serial == serial))
        assert item is not None
        return [(e.actor, e.command, e.new_state, e.via_message_id) for e in item.events]


def register_one_item(app: App, imap: ImapServerHandle, sink: SmtpSink) -> str:
    imap.append(
        build_mail(
            CD,
            "【工作动态】成都启动冬季消费季",
            [("消费季.docx", item_docx("成都启动冬季消费季", "10月27日举行启动仪式。"))],
        )
    )
    poll_once(app)
    assert len(mails_to(sink, CD, "【回执】")) == 1
    return "2026-0001"


def test_item_walks_from_registration_to_adoption(app: App, imap: ImapServerHandle, smtp_sink: SmtpSink) -> None:
    serial = register_one_item(app, imap, smtp_sink)

    # 送审 by the office: the item waits for the leader, who gets a request with a token.
    imap.append(office_mail(f"送审：{serial}"))
    poll_once(app)
    assert item_state(app, serial) == ItemState.PENDING_APPROVAL
    (command_reply,) = mails_to(smtp_sink, OFFICE, "【命令执行结果】")
    assert "√ 已送审" in plain_text(command_reply.data)
    (request,) = mails_to(smtp_sink, LEADER, "【请审批】")
    reply_address = header(request.data, "Reply-To")
    assert reply_address.startswith("zwxx+zw")
    assert reply_address.endswith("@tourism.example.gov.cn")
    assert "〔审批码 zw" in header(request.data, "Subject")
    request_text = plain_text(request.data)
    assert "成都启动冬季消费季" in request_text
    assert "请审批" in request_text
    assert header(request.data, "Auto-Submitted") == "auto-generated"
    attachments = [p.get_filename() for p in message_from_bytes(request.data, policy=policy.default).iter_attachments()]
    assert attachments == [f"{serial}-消费季.docx"]

    # The leader approves; the quote contains the request's own instruction words, which must not count.
    imap.append(reply_to(request, "同意，请尽快报送。"))
    poll_once(app)
    assert item_state(app, serial) == ItemState.APPROVED
    (notice,) = mails_to(smtp_sink, OFFICE, "【审批结果】")
    notice_text = plain_text(notice.data)
    assert f"{serial} 成都启动冬季消费季：同意" in notice_text
    assert "请尽快报送" in notice_text
    with app.session_factory() as session:
        (row,) = session.scalars(select(ApprovalRequest))
        assert row.state == ApprovalState.USED

    # 报送 and 采用, in one command mail of two lines.
    imap.append(office_mail(f"报送 {serial}\n采用 {serial} 省委办公厅 《四川信息》第45期 批示 省领导"))
    poll_once(app)
    assert item_state(app, serial) == ItemState.ADOPTED
    replies = mails_to(smtp_sink, OFFICE, "【命令执行结果】")
    assert len(replies) == 2
    text = plain_text(replies[-1].data)
    assert "第 1 行：报送" in text
    assert "第 2 行：采用" in text
    assert "×" not in text
    with app.session_factory() as session:
        (adoption,) = session.scalars(select(Adoption))
        assert (adoption.outlet, adoption.publication, adoption.issue) == ("省委办公厅", "四川信息", "第45期")
        assert adoption.points == Decimal(8)  # 5 for 省委办公厅 + 3 for a 省领导's 批示 (examples/scoring.toml)
        assert adoption.rules_name == "2026"
    (adopt_notice,) = mails_to(smtp_sink, CD, "【已被采用】")
    assert "四川信息" in plain_text(adopt_notice.data)

    history = events(app, serial)
    assert [(actor, command, state) for actor, command, state, _ in history] == [
        ("zwxx", "register", "registered"),
        (OFFICE, "送审", "pending_approval"),
        (LEADER, "approve", "approved"),
        (OFFICE, "报送", "submitted"),
        (OFFICE, "采用", "adopted"),
    ]
    assert all(via for _, command, _, via in history if command != "register")
    # Every mail the flow sent: receipt, 3 command replies... counted by purpose.
    assert len(smtp_sink.received) == 1 + 1 + 1 + 1 + 1 + 1  # receipt, reply, request, notice, reply, adoption notice


def test_return_notifies_unit_and_resend_is_a_revision(app: App, imap: ImapServerHandle, smtp_sink: SmtpSink) -> None:
    serial = register_one_item(app, imap, smtp_sink)

    imap.append(office_mail(f"退回 {serial} 意见：请补充游客人次和消费额数据。"))
    poll_once(app)
    assert item_state(app, serial) == ItemState.RETURNED
    (notice,) = mails_to(smtp_sink, CD, "【退回修改】")
    assert "请补充游客人次和消费额数据" in plain_text(notice.data)
    assert header(notice.data, "In-Reply-To")

    imap.append(
        build_mail(
            CD,
            "【修改稿】成都启动冬季消费季",
            [("消费季修改稿.docx", item_docx("成都启动冬季消费季", "10月27日举行启动仪式，预计接待游客120万人次。"))],
        )
    )
    poll_once(app)
    assert item_state(app, serial) == ItemState.SUPERSEDED
    with app.session_factory() as session:
        revision = session.scalar(select(Item).where(Item.serial == "2026-0002"))
        assert revision is not None and revision.revises_id is not None


def test_undo_voids_request(app: App, imap: ImapServerHandle, smtp_sink: SmtpSink) -> None:
    serial = register_one_item(app, imap, smtp_sink)
    imap.append(office_mail(f"送审 {serial}"))
    poll_once(app)
    (request,) = mails_to(smtp_sink, LEADER, "【请审批】")

    imap.append(office_mail(f"撤销 {serial}"))
    poll_once(app)
    assert item_state(app, serial) == ItemState.REGISTERED
    text = plain_text(mails_to(smtp_sink, OFFICE, "【命令执行结果】")[-1].data)
    assert "已撤销" in text
    assert "审批请求已作废" in text

    imap.append(reply_to(request, "同意"))
    poll_once(app)
    assert item_state(app, serial) == ItemState.REGISTERED
    with app.session_factory() as session:
        reply = session.scalars(select(Message).order_by(Message.id.desc())).first()
        assert reply is not None and reply.state == MessageState.UNDECIDED
        assert "已作废" in (reply.reason or "")


def test_batch_reply_asks_back_rest(app: App, imap: ImapServerHandle, smtp_sink: SmtpSink) -> None:
    imap.append(
        build_mail(
            CD,
            "信息三则",
            [
                ("a.docx", item_docx("成都启动冬季消费季", "10月27日举行启动仪式。")),
                ("b.docx", item_docx("成都举办导游培训班", "11月3日培训班开班。")),
                ("c.docx", item_docx("成都发布冰雪旅游线路", "发布十条线路。")),
            ],
        )
    )
    poll_once(app)
    imap.append(office_mail("送审 2026-0001 2026-0002 2026-0003"))
    poll_once(app)
    (request,) = mails_to(smtp_sink, LEADER, "【请审批】")
    assert "【第 3 条】" in plain_text(request.data)

    imap.append(reply_to(request, "1同意，2不报"))
    poll_once(app)
    assert [item_state(app, s) for s in ("2026-0001", "2026-0002", "2026-0003")] == [
        ItemState.APPROVED,
        ItemState.NOT_SENT,
        ItemState.PENDING_APPROVAL,
    ]
    (ask_back,) = mails_to(smtp_sink, LEADER, "【请再次审批】")
    ask_text = plain_text(ask_back.data)
    assert "2026-0003" in ask_text
    assert "2026-0001" not in ask_text

    imap.append(reply_to(ask_back, "同意"))
    poll_once(app)
    assert item_state(app, "2026-0003") == ItemState.APPROVED


def test_register_sender_command_registers_held_mail(app: App, imap: ImapServerHandle, smtp_sink: SmtpSink) -> None:
    stranger = "chengdu_xc@qq.com"
    imap.append(build_mail(stranger, "成都市冬季旅游信息", [("x.docx", item_docx("成都冰雪季开幕", "12月1日开幕。"))]))
    poll_once(app)
    assert smtp_sink.received == []
    with app.session_factory() as session:
        (held,) = session.scalars(select(Message))
        assert held.state == MessageState.HELD

    imap.append(office_mail(f"登记：{stranger}，成都市"))
    poll_once(app)
    (receipt,) = mails_to(smtp_sink, stranger, "【回执】")
    assert "成都冰雪季开幕" in plain_text(receipt.data)
    reply_text = plain_text(mails_to(smtp_sink, OFFICE, "【命令执行结果】")[0].data)
    assert f"{stranger} 已登记为 成都市文化广电旅游局 的发件地址" in reply_text
    assert "此前暂存的 1 封来信已处理，登记为 2026-0001" in reply_text
    with app.session_factory() as session:
        item = session.scalar(select(Item))
        assert item is not None and item.unit_code == "cd"

    # Later mail from the address is registered at once.
    imap.append(build_mail(stranger, "成都市信息", [("y.docx", item_docx("成都发布冰雪线路", "发布线路。"))]))
    poll_once(app)
    assert len(mails_to(smtp_sink, stranger, "【回执】")) == 2


def test_failed_lines_explained(app: App, imap: ImapServerHandle, smtp_sink: SmtpSink) -> None:
    serial = register_one_item(app, imap, smtp_sink)
    imap.append(office_mail(f"报送 {serial}\n查询 {serial}\n采用 2026-9999 省委办公厅\n退回 {serial}"))
    poll_once(app)
    text = plain_text(mails_to(smtp_sink, OFFICE, "【命令执行结果】")[0].data)
    assert "3 行未执行" in text
    assert "不能改为“已报送两办”" in text  # 报送 before approval
    assert "已登记" in text  # 查询 still runs
    assert "没有编号为 2026-9999 的信息" in text
    assert "缺少退回意见" in text
    assert "写法：退回 2026-0012 修改意见" in text
    assert item_state(app, serial) == ItemState.REGISTERED


def test_reply_to_return_notice_revises(app: App, imap: ImapServerHandle, smtp_sink: SmtpSink) -> None:
    serial = register_one_item(app, imap, smtp_sink)
    imap.append(office_mail(f"退回 {serial} 标题过长，请精简并补充数据。"))
    poll_once(app)
    (notice,) = mails_to(smtp_sink, CD, "【退回修改】")

    resend = EmailMessage()
    resend["From"] = CD
    resend["To"] = MAILBOX
    resend["Subject"] = "回复：" + header(notice.data, "Subject")
    resend["Date"] = format_datetime(START)
    resend["Message-ID"] = make_msgid(domain="example.gov.cn")
    resend["In-Reply-To"] = header(notice.data, "Message-ID")
    resend.set_content("已按意见修改，请审阅。")
    docx = item_docx("冬季消费季启动 接待游客120万人次", "10月27日启动。")
    resend.add_attachment(docx, maintype="application", subtype="octet-stream", filename="改.docx")
    imap.append(resend.as_bytes(policy=policy.SMTP))
    poll_once(app)

    assert item_state(app, serial) == ItemState.SUPERSEDED
    with app.session_factory() as session:
        revision = session.scalar(select(Item).where(Item.serial == "2026-0002"))
        assert revision is not None
        original = session.scalar(select(Item).where(Item.serial == serial))
        assert original is not None and revision.revises_id == original.id


def test_reparse_leaves_office_commands_and_decisions_alone(
    app: App, imap: ImapServerHandle, smtp_sink: SmtpSink
) -> None:
    from daemon.reparse import reparse_messages, select_message_ids

    serial = register_one_item(app, imap, smtp_sink)
    imap.append(office_mail(f"送审 {serial}"))
    poll_once(app)
    (request,) = mails_to(smtp_sink, LEADER, "【请审批】")
    imap.append(reply_to(request, "同意"))
    poll_once(app)
    imap.append(office_mail(f"报送 {serial}\n采用 {serial} 省委办公厅 《四川信息》第45期"))
    poll_once(app)

    with app.session_factory() as session:
        ids = select_message_ids(session, since=None, message_db_id=None)
    summary = reparse_messages(app.session_factory, app.context, ids, dry_run=False)

    assert summary.messages == 1  # only the unit's mail; the office's and the leader's are done
    with app.session_factory() as session:
        assert len(list(session.scalars(select(Adoption)))) == 1
        states = [m.state for m in session.scalars(select(Message).order_by(Message.id))]
    assert states == [MessageState.REGISTERED, MessageState.COMMAND, MessageState.DECISION, MessageState.COMMAND]
    assert item_state(app, serial) == ItemState.ADOPTED


def test_repeated_adoption_and_repeated_send_are_refused(app: App, imap: ImapServerHandle, smtp_sink: SmtpSink) -> None:
    serial = register_one_item(app, imap, smtp_sink)
    imap.append(office_mail(f"送审 {serial}\n送审 {serial}"))
    poll_once(app)
    text = plain_text(mails_to(smtp_sink, OFFICE, "【命令执行结果】")[-1].data)
    assert "已在待领导审批" in text
    assert len(mails_to(smtp_sink, LEADER, "【请审批】")) == 1

    (request,) = mails_to(smtp_sink, LEADER, "【请审批】")
    imap.append(reply_to(request, "同意"))
    poll_once(app)
    line = f"采用 {serial} 省委办公厅 《四川信息》第45期"
    imap.append(office_mail(f"报送 {serial}\n{line}\n{line}"))
    poll_once(app)
    text = plain_text(mails_to(smtp_sink, OFFICE, "【命令执行结果】")[-1].data)
    assert "登记过同一次采用" in text
    with app.session_factory() as session:
        assert len(list(session.scalars(select(Adoption)))) == 1


def test_undo_before_sending_cancels_the_request_mail(app: App, imap: ImapServerHandle, smtp_sink: SmtpSink) -> None:
    from daemon.models import OutboxMail, OutboxState

    serial = register_one_item(app, imap, smtp_sink)
    # 送审 and 撤销 in one mail: the request is queued and withdrawn before the outbox runs.
    imap.append(office_mail(f"送审 {serial}\n撤销 {serial}"))
    poll_once(app)

    assert mails_to(smtp_sink, LEADER, "【请审批】") == []
    with app.session_factory() as session:
        (row,) = session.scalars(select(OutboxMail).where(OutboxMail.purpose == "approval_request"))
        assert row.state == OutboxState.CANCELLED
    assert item_state(app, serial) == ItemState.REGISTERED


def test_edit_after_approval_keeps_long_first_line(app: App, imap: ImapServerHandle, smtp_sink: SmtpSink) -> None:
    from daemon.workflow import current_text

    serial = register_one_item(app, imap, smtp_sink)
    imap.append(office_mail(f"送审 {serial}"))
    poll_once(app)
    (request,) = mails_to(smtp_sink, LEADER, "【请审批】")
    imap.append(reply_to(request, "同意，第二段删去最后一句后报送。"))
    poll_once(app)
    assert item_state(app, serial) == ItemState.APPROVED

    # A first paragraph too long to be a title stays in the body; the title is kept.
    opening = (
        "10月27日，成都市在春熙路举行冬季文旅消费季启动仪式，推出冰雪、温泉、夜游等八大主题一百余项活动，"
        "向市民和游客发放文旅消费券五千万元。"
    )
    assert len(opening) > 60
    docx = item_docx(opening, "预计带动消费十亿元。")
    imap.append(office_mail(f"修改 {serial}", documents=[(f"{serial}.docx", docx)]))
    poll_once(app)

    with app.session_factory() as session:
        item = session.scalar(select(Item).where(Item.serial == serial))
        assert item is not None
        text = current_text(item)
        assert item.edit_pending is None
    assert text.version == 2
    assert text.title == "成都启动冬季消费季"
    assert opening in text.body_text
