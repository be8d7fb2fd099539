"""Hostile and mistaken replies to approval requests, on the real IMAP server and SMTP sink.

Every hostile case sets up an item pending approval, delivers the reply and polls. It then checks
that nothing was approved: the item's state is unchanged and no ``approve`` event exists anywhere in
the database. The reply is stored UNDECIDED with a reason naming the cause, and no mail went to its
sender. Replies are written in the quoting layouts of the clients leaders use (QQ Mail,
Foxmail, 163, Outlook, iPhone, Huawei, Coremail), each with a positive control that approves.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.header import Header
from email.mime.multipart import MIMEMultipart
from email.mime.nonmultipart import MIMENonMultipart
from email.mime.text import MIMEText
from email.utils import format_datetime, formataddr, make_msgid

import pytest
from sqlalchemy import func, select

from daemon.app import App, build_app
from daemon.clock import Clock, FrozenClock, SystemClock
from daemon.config import Settings, load_settings
from daemon.db import upgrade_database
from daemon.embedded import ReceivedMail, SmtpSink
from daemon.models import (
    ApprovalEntry,
    ApprovalRequest,
    ApprovalState,
    Item,
    ItemEvent,
    ItemState,
    Message,
    MessageState,
)
from tests.daemon.conftest import WriteConfig
from tests.daemon.test_office_flow import LEADER, MAILBOX, OFFICE, header, item_state, mails_to, plain_text
from tests.daemon.test_pipeline import poll_once
from tests.daemon.test_register import CD, START, build_mail, item_docx
from tests.servers.handle import ImapServerHandle

FORGER = "zhangwei1988@qq.example.com"
AUTHSERV_ID = "mx.tourism.example.gov.cn"
AUTH_CONFIG = f'check_authentication = true\nauthserv_id = "{AUTHSERV_ID}"\nrequired_methods = ["dmarc"]'
DMARC_PASS = f"{AUTHSERV_ID}; dmarc=pass (p=reject dis=none) header.from=tourism.example.gov.cn"
# The item's own text contains a bare 同意, so a reader that looked at the quoted request would approve.
ITEM_TITLE = "成都启动冬季消费季"
ITEM_BODY = "经市政府同意，10月27日举行启动仪式，发放消费券5000万元。"
DOCX_TYPE = "vnd.openxmlformats-officedocument.wordprocessingml.document"


# ---------------------------------------------------------------------------------------------
# Applications: the default one, one with a clock the test moves, one that checks authentication


def open_app(settings: Settings, clock: Clock) -> App:
    application = build_app(settings, clock=clock)
    upgrade_database(application.engine)
    application.context.archive.ensure()
    return application


@pytest.fixture
def app(settings: Settings) -> Iterator[App]:
    application = open_app(settings, SystemClock())
    try:
        yield application
    finally:
        application.close()


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(datetime.now(UTC).replace(microsecond=0))


@pytest.fixture
def frozen_app(settings: Settings, clock: FrozenClock) -> Iterator[App]:
    application = open_app(settings, clock)
    try:
        yield application
    finally:
        application.close()


@pytest.fixture
def auth_app(write_config: WriteConfig) -> Iterator[App]:
    """An App that requires an aligned DMARC pass from the receiving server for replies and commands."""
    settings = load_settings(write_config(approval_extra=AUTH_CONFIG))
    assert settings.approval.check_authentication
    application = open_app(settings, SystemClock())
    try:
        yield application
    finally:
        application.close()


# ---------------------------------------------------------------------------------------------
# Setting up items pending approval


@dataclass(frozen=True)
class Pending:
    serial: str
    request: ReceivedMail

    @property
    def subject(self) -> str:
        return header(self.request.data, "Subject")

    @property
    def reply_address(self) -> str:
        return header(self.request.data, "Reply-To")

    @property
    def message_id(self) -> str:
        return header(self.request.data, "Message-ID")

    @property
    def token(self) -> str:
        return self.subject.rpartition("审批码 ")[2].rstrip("〕").strip()


def office_mail(text: str, *, subject: str = "命令", documents: Sequence[tuple[str, bytes]] = ()) -> bytes:
    """An office command mail that passes the receiving server's DMARC check (ignored when the check is off)."""
    raw = build_mail(OFFICE, subject, list(documents), text=text)
    return f"Authentication-Results: {DMARC_PASS}\r\n".encode() + raw


def register_item(app: App, imap: ImapServerHandle, title: str = ITEM_TITLE, body: str = ITEM_BODY) -> str:
    with app.session_factory() as session:
        before = session.scalar(select(func.count(Item.id))) or 0
    imap.append(build_mail(CD, f"【工作动态】{title}", [(f"{title}.docx", item_docx(title, body))]))
    poll_once(app)
    with app.session_factory() as session:
        item = session.scalars(select(Item).order_by(Item.id.desc())).first()
        assert item is not None and session.scalar(select(func.count(Item.id))) == before + 1
        return item.serial


def send_for_approval(
    app: App,
    imap: ImapServerHandle,
    sink: SmtpSink,
    serial: str,
    *,
    subject: str = "命令",
    documents: Sequence[tuple[str, bytes]] = (),
) -> Pending:
    """Send 送审 by an office mail and return the request the leader got."""
    already = len(mails_to(sink, LEADER, "【请审批】"))
    imap.append(office_mail(f"送审 {serial}", subject=subject, documents=documents))
    poll_once(app)
    requests = mails_to(sink, LEADER, "【请审批】")
    assert len(requests) == already + 1, [header(mail.data, "Subject") for mail in sink.received]
    assert item_state(app, serial) == ItemState.PENDING_APPROVAL
    return Pending(serial, requests[-1])


def pending_item(
    app: App, imap: ImapServerHandle, sink: SmtpSink, title: str = ITEM_TITLE, body: str = ITEM_BODY
) -> Pending:
    return send_for_approval(app, imap, sink, register_item(app, imap, title, body))


# ---------------------------------------------------------------------------------------------
# Replies in the layouts of real clients


@dataclass(frozen=True)
class Quote:
    """The request being replied to, as a client shows it when quoting."""

    subject: str
    lines: list[str]

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


@dataclass(frozen=True)
class ClientStyle:
    name: str
    subject_prefix: str
    charset: str
    layout: Callable[[str, Quote], str]
    in_reply_to: bool = True  # Foxmail writes References only
    html_alternative: bool = False
    html_only: bool = False


def _qq_web(words: str, quote: Quote) -> str:
    return (
        f"{words}\n\n\n\n------------------ 原始邮件 ------------------\n"
        f'发件人: "政务信息"<{MAILBOX}>;\n发送时间: 2026年11月2日(星期一) 上午9:13\n'
        f'收件人: "邓雪梅"<{LEADER}>;\n\n主题: {quote.subject}\n\n\n\n{quote.text}'
    )


def _foxmail(words: str, quote: Quote) -> str:
    return (
        f"{words}\n\n--------------\n邓雪梅\n \n发件人： 政务信息\n发送时间： 2026-11-02 09:13\n"
        f"收件人： 邓雪梅\n主题： {quote.subject}\n{quote.text}"
    )


def _foxmail_plain(words: str, quote: Quote) -> str:
    quoted = "\n".join(f">{line}" for line in quote.lines)
    return f"\n\n--------------\n许文涛\n{quoted}\n\n{words}\n"


def _netease(words: str, quote: Quote) -> str:
    quoted = "\n".join(f">{line}" for line in quote.lines)
    return f'{words}\n\n\n\n\n\n\n在 2026-11-02 09:13:45，"政务信息" <{MAILBOX}> 写道：\n{quoted}'


OUTLOOK_SIGNATURE = "罗建国\n省旅游局\n本邮件及其附件可能含有内部工作信息，未经发件人同意，请勿转发或公开。"


def _outlook_2016(words: str, quote: Quote) -> str:
    return (
        f"{words}\n \n{OUTLOOK_SIGNATURE}\n \n发件人: 政务信息 <{MAILBOX}> \n发送时间: 2026年11月2日 9:13\n"
        f"收件人: 罗建国 <{LEADER}>\n主题: {quote.subject}\n \n{quote.text}"
    )


def _outlook_plain(words: str, quote: Quote) -> str:
    return (
        f"{words}\n\n{OUTLOOK_SIGNATURE}\n\n-----邮件原件-----\n发件人: 政务信息 [mailto:{MAILBOX}] \n"
        f"发送时间: 2026年11月2日 9:13\n收件人: 罗建国 <{LEADER}>\n主题: {quote.subject}\n\n{quote.text}"
    )


def _outlook_web_html(words: str, quote: Quote) -> str:
    style = "font-family: 等线, Calibri, Helvetica, sans-serif; font-size: 12pt; color: rgb(0, 0, 0);"
    signature = "<br>".join(html.escape(line) for line in OUTLOOK_SIGNATURE.splitlines())
    quoted = "".join(f"<div>{html.escape(line) or '<br>'}</div>" for line in quote.lines)
    return (
        '<html><head><meta http-equiv="Content-Type" content="text/html; charset=utf-8"></head><body dir="ltr">'
        f'<div class="elementToProof" style="{style}">{html.escape(words)}</div>'
        f'<div class="elementToProof" style="{style}"><br></div>'
        f'<div id="Signature"><div style="{style}">{signature}</div></div><div id="appendonsend"></div>'
        '<hr style="display:inline-block;width:98%" tabindex="-1"><div id="divRplyFwdMsg" dir="ltr">'
        '<font face="Calibri, sans-serif" style="font-size:11pt" color="#000000">'
        f"<b>发件人:</b> 政务信息 &lt;{MAILBOX}&gt;<br><b>发送时间:</b> 2026年11月2日 9:13<br>"
        f"<b>收件人:</b> 罗建国 &lt;{LEADER}&gt;<br><b>主题:</b> {html.escape(quote.subject)}</font>"
        f"<div>&nbsp;</div></div><div>{quoted}</div></body></html>"
    )


def _iphone(words: str, quote: Quote) -> str:
    first, *rest = quote.lines
    quoted = "\n".join(f"> {line}" if line else ">" for line in ["\ufeff" + first, *rest])
    return f"{words}\n\n发自我的iPhone\n\n> 在 2026年11月2日，上午9:13，政务信息 <{MAILBOX}> 写道：\n> \n{quoted}\n\n"


def _huawei(words: str, quote: Quote) -> str:
    return (
        f"{words}\n\n从我的华为手机发送\n\n\n-------- 原始邮件 --------\n发件人：政务信息 <{MAILBOX}>\n"
        f"日期：2026年11月2日周一 上午9:13\n收件人：罗建国 <{LEADER}>\n主题：{quote.subject}\n\n{quote.text}"
    )


def _coremail(words: str, quote: Quote) -> str:
    quoted = "\n".join(f"> {line}" if line else ">" for line in quote.lines)
    return (
        f"{words}\n\n韩立峰\n省旅游局\n好山好水好风光　文旅融合谱新篇\n\n\n\n> -----原始邮件-----\n"
        f'> 发件人: "政务信息" <{MAILBOX}>\n> 发送时间: 2026-11-02 09:13:42 (星期一)\n'
        f'> 收件人: "韩立峰" <{LEADER}>\n> 主题: {quote.subject}\n>\n{quoted}'
    )


QQ_WEB = ClientStyle("qqmail", "回复：", "gb18030", _qq_web, html_alternative=True)
FOXMAIL = ClientStyle("foxmail", "Re: ", "utf-8", _foxmail, in_reply_to=False, html_alternative=True)
FOXMAIL_PLAIN = ClientStyle("foxmail-plain", "Re: ", "gb18030", _foxmail_plain, in_reply_to=False)
NETEASE_163 = ClientStyle("163", "Re:", "gbk", _netease, html_alternative=True)
OUTLOOK_2016 = ClientStyle("outlook2016", "答复: ", "gb18030", _outlook_2016, html_alternative=True)
OUTLOOK_PLAIN = ClientStyle("outlook2010", "答复: ", "gb18030", _outlook_plain)
OUTLOOK_WEB = ClientStyle("outlook-web", "回复: ", "utf-8", _outlook_web_html, html_only=True)
IPHONE = ClientStyle("iphone", "Re: ", "utf-8", _iphone)
HUAWEI = ClientStyle("huawei", "回复: ", "utf-8", _huawei)
COREMAIL = ClientStyle("coremail", "Re: ", "utf-8", _coremail)
STYLES = [QQ_WEB, FOXMAIL, FOXMAIL_PLAIN, NETEASE_163, OUTLOOK_2016, OUTLOOK_PLAIN, OUTLOOK_WEB, IPHONE, HUAWEI]
STYLES.append(COREMAIL)


def _as_html(body: str) -> str:
    lines = "".join(f"<div>{html.escape(line) or '<br>'}</div>" for line in body.splitlines())
    return f'<html><head><meta charset="utf-8"></head><body>{lines}</body></html>'


def build_reply(
    pending: Pending,
    words: str,
    *,
    style: ClientStyle = QQ_WEB,
    sender: str = LEADER,
    sender_name: str = "韩立峰",
    subject: str | None = None,
    to: str | None = None,
    thread_to: str | None = "",
    headers: Sequence[tuple[str, str]] = (),
) -> bytes:
    """Build a reply to ``pending``'s request in ``style``'s layout.

    ``subject`` and ``to`` default to the usual ones, which carry the token. ``thread_to`` is the
    Message-ID put in In-Reply-To and References: "" for the request's own, None for no headers.
    """
    quote = Quote(pending.subject, plain_text(pending.request.data).splitlines())
    body = style.layout(words, quote)
    mail: MIMEMultipart | MIMENonMultipart
    if style.html_only:
        mail = MIMEText(body, "html", style.charset)
    elif style.html_alternative:
        mail = MIMEMultipart("alternative")
        mail.attach(MIMEText(body, "plain", style.charset))
        mail.attach(MIMEText(_as_html(body), "html", style.charset))
    else:
        mail = MIMEText(body, "plain", style.charset)
    for name, value in headers:
        mail[name] = value
    mail["From"] = formataddr((sender_name, sender), charset=style.charset)
    mail["To"] = to if to is not None else pending.reply_address
    subject_text = subject if subject is not None else style.subject_prefix + pending.subject
    mail["Subject"] = Header(subject_text, style.charset).encode()  # encoded in the client's charset, as 163 does
    mail["Date"] = format_datetime(START)
    mail["Message-ID"] = make_msgid(domain="tourism.example.gov.cn")
    thread = pending.message_id if thread_to == "" else thread_to
    if thread is not None:
        if style.in_reply_to:
            mail["In-Reply-To"] = thread
        mail["References"] = thread
    return mail.as_bytes()


def without_token(subject: str) -> str:
    return subject.split("〔")[0].rstrip()


# ---------------------------------------------------------------------------------------------
# Checks


def approve_events(app: App) -> int:
    with app.session_factory() as session:
        events = session.scalar(select(func.count(ItemEvent.id)).where(ItemEvent.command == "approve")) or 0
        entries = session.scalar(select(func.count(ApprovalEntry.id)).where(ApprovalEntry.decision == "approve"))
        return events + (entries or 0)


def last_message(app: App) -> Message:
    with app.session_factory() as session:
        message = session.scalars(select(Message).order_by(Message.id.desc())).first()
        assert message is not None
        session.expunge(message)
        return message


def deliver(app: App, imap: ImapServerHandle, sink: SmtpSink, raw: bytes) -> list[ReceivedMail]:
    """Deliver ``raw``, poll once, and return the mails sent because of it."""
    before = len(sink.received)
    imap.append(raw)
    poll_once(app)
    return sink.received[before:]


def assert_refused(
    app: App,
    sent: list[ReceivedMail],
    *,
    words: Sequence[str],
    serials: Sequence[str],
    state: ItemState = ItemState.PENDING_APPROVAL,
    sender: str = LEADER,
) -> Message:
    """Check that the last reply decided nothing, was stored UNDECIDED for ``words``, and sent no mail."""
    for serial in serials:
        assert item_state(app, serial) == state
    assert approve_events(app) == 0
    message = last_message(app)
    assert message.state == MessageState.UNDECIDED
    for word in words:
        assert word in (message.reason or ""), message.reason
    assert [mail.rcpt_tos for mail in sent] == []
    assert not [mail for mail in sent if sender in mail.rcpt_tos]
    return message


def assert_asked_back(app: App, sent: list[ReceivedMail], serial: str, *, cause: str) -> None:
    """Check that an unclear reply from the leader decided nothing and asked the leader again."""
    assert item_state(app, serial) == ItemState.PENDING_APPROVAL
    assert approve_events(app) == 0
    message = last_message(app)
    assert message.state == MessageState.UNDECIDED
    assert "未能确定审批意见" in (message.reason or ""), message.reason
    assert cause in (message.reason or ""), message.reason
    ask_backs = [mail for mail in sent if header(mail.data, "Subject").startswith("【请再次审批】")]
    assert [mail.rcpt_tos for mail in ask_backs] == [[LEADER]]
    assert serial in header(ask_backs[0].data, "Subject")
    assert {address for mail in sent for address in mail.rcpt_tos} <= {LEADER, OFFICE}


def approval_states(app: App) -> list[ApprovalState]:
    with app.session_factory() as session:
        return [
            ApprovalState(row.state) for row in session.scalars(select(ApprovalRequest).order_by(ApprovalRequest.id))
        ]


# ---------------------------------------------------------------------------------------------
# Forged From without a token


def test_forged_leader_without_token_or_thread(app: App, imap: ImapServerHandle, smtp_sink: SmtpSink) -> None:
    pending = pending_item(app, imap, smtp_sink)

    raw = build_reply(pending, "同意", subject="回复：" + without_token(pending.subject), to=MAILBOX, thread_to=None)
    sent = deliver(app, imap, smtp_sink, raw)

    assert_refused(app, sent, words=["没有审批码", "不作为审批意见"], serials=[pending.serial])
    assert approval_states(app) == [ApprovalState.OPEN]


def test_forged_leader_threaded_without_token(app: App, imap: ImapServerHandle, smtp_sink: SmtpSink) -> None:
    pending = pending_item(app, imap, smtp_sink)

    raw = build_reply(pending, "同意", subject="回复：" + without_token(pending.subject), to=MAILBOX)
    sent = deliver(app, imap, smtp_sink, raw)

    assert_refused(app, sent, words=["没有审批码"], serials=[pending.serial])
    assert approval_states(app) == [ApprovalState.OPEN]


# ---------------------------------------------------------------------------------------------
# A token of another item or of another version


def test_token_of_other_item_threaded_to_its_request(app: App, imap: ImapServerHandle, smtp_sink: SmtpSink) -> None:
    first = pending_item(app, imap, smtp_sink)
    second = pending_item(app, imap, smtp_sink, "成都举办导游培训班", "11月3日培训班开班，经研究同意扩大规模。")

    # A reply to the second request, with the first request's token put into its subject and address.
    subject = f"回复：{without_token(second.subject)} 〔审批码 {first.token}〕"
    raw = build_reply(second, "同意", subject=subject, to=first.reply_address)
    sent = deliver(app, imap, smtp_sink, raw)

    assert_refused(app, sent, words=["不一致"], serials=[first.serial, second.serial])
    assert approval_states(app) == [ApprovalState.OPEN, ApprovalState.OPEN]


def test_token_of_other_item_unthreaded(app: App, imap: ImapServerHandle, smtp_sink: SmtpSink) -> None:
    first = pending_item(app, imap, smtp_sink)
    second = pending_item(app, imap, smtp_sink, "成都举办导游培训班", "11月3日培训班开班。")

    # No In-Reply-To or References (as an Exchange reply or a hand-written mail has none).
    subject = f"回复：{without_token(second.subject)} 〔审批码 {first.token}〕"
    raw = build_reply(second, "同意", subject=subject, to=first.reply_address, thread_to=None)
    sent = deliver(app, imap, smtp_sink, raw)

    assert_refused(app, sent, words=[second.serial], serials=[first.serial, second.serial])


def test_token_of_old_version_after_edit(app: App, imap: ImapServerHandle, smtp_sink: SmtpSink) -> None:
    pending = pending_item(app, imap, smtp_sink)
    edited = item_docx(ITEM_TITLE, "10月27日举行启动仪式，发放消费券6000万元。")
    imap.append(office_mail(f"修改 {pending.serial}", subject="修改", documents=[(f"{pending.serial}.docx", edited)]))
    poll_once(app)
    assert item_state(app, pending.serial) == ItemState.EDITED
    with app.session_factory() as session:
        item = session.scalar(select(Item).where(Item.serial == pending.serial))
        assert item is not None and item.version == 2

    sent = deliver(app, imap, smtp_sink, build_reply(pending, "同意"))

    assert_refused(app, sent, words=["新版本", "第 2 稿", "第 1 稿", "重新送审"], serials=[], state=ItemState.EDITED)
    assert item_state(app, pending.serial) == ItemState.EDITED


def test_token_of_old_version_after_resend_with_document(app: App, imap: ImapServerHandle, smtp_sink: SmtpSink) -> None:
    old = pending_item(app, imap, smtp_sink)
    edited = item_docx(ITEM_TITLE, "10月27日举行启动仪式，发放消费券6000万元。")
    new = send_for_approval(
        app,
        imap,
        smtp_sink,
        old.serial,
        subject="再次送审",
        documents=[(f"{old.serial}.docx", edited)],
    )
    assert new.token != old.token
    assert approval_states(app) == [ApprovalState.VOID, ApprovalState.OPEN]

    sent = deliver(app, imap, smtp_sink, build_reply(old, "同意"))

    assert_refused(app, sent, words=["已作废"], serials=[old.serial])
    assert approval_states(app) == [ApprovalState.VOID, ApprovalState.OPEN]


def test_signature_changed_by_one_character(app: App, imap: ImapServerHandle, smtp_sink: SmtpSink) -> None:
    pending = pending_item(app, imap, smtp_sink)
    last = pending.token[-1]
    forged = pending.token[:-1] + ("b" if last == "a" else "a")

    raw = build_reply(
        pending,
        "同意",
        subject=f"回复：{without_token(pending.subject)} 〔审批码 {forged}〕",
        to=pending.reply_address.replace(pending.token, forged),
    )
    assert pending.token not in raw.decode("ascii", errors="replace")
    sent = deliver(app, imap, smtp_sink, raw)

    assert_refused(app, sent, words=["审批码无效"], serials=[pending.serial])


@pytest.mark.parametrize("request_id", ["next", "other", "zero"])
def test_signature_under_other_request_id(
    app: App, imap: ImapServerHandle, smtp_sink: SmtpSink, request_id: str
) -> None:
    first = pending_item(app, imap, smtp_sink)
    second = pending_item(app, imap, smtp_sink, "成都举办导游培训班", "11月3日培训班开班。")
    first_id, signature = first.token.removeprefix("zw").split("-")
    second_id = second.token.removeprefix("zw").split("-")[0]
    moved_id = {"next": str(int(second_id) + 1), "other": second_id, "zero": "0"}[request_id]
    forged = f"zw{moved_id}-{signature}"
    assert moved_id != first_id

    raw = build_reply(
        first,
        "同意",
        subject=f"回复：{without_token(first.subject)} 〔审批码 {forged}〕",
        to=first.reply_address.replace(first.token, forged),
        thread_to=None,
    )
    sent = deliver(app, imap, smtp_sink, raw)

    assert_refused(app, sent, words=["审批码无效"], serials=[first.serial, second.serial])


def test_two_different_tokens(app: App, imap: ImapServerHandle, smtp_sink: SmtpSink) -> None:
    first = pending_item(app, imap, smtp_sink)
    second = pending_item(app, imap, smtp_sink, "成都举办导游培训班", "11月3日培训班开班。")

    raw = build_reply(first, "同意", to=second.reply_address, thread_to=None)
    sent = deliver(app, imap, smtp_sink, raw)

    assert_refused(app, sent, words=["多个不同的审批码"], serials=[first.serial, second.serial])


# ---------------------------------------------------------------------------------------------
# Replayed tokens


def test_used_token_replayed_after_resend(app: App, imap: ImapServerHandle, smtp_sink: SmtpSink) -> None:
    pending = pending_item(app, imap, smtp_sink)
    deliver(app, imap, smtp_sink, build_reply(pending, "退回，补充游客人次数据"))
    assert item_state(app, pending.serial) == ItemState.RETURNED
    again = send_for_approval(app, imap, smtp_sink, pending.serial, subject="再次送审")
    assert approval_states(app) == [ApprovalState.USED, ApprovalState.OPEN]

    # The first request's token again, in a reply of 同意 this time.
    sent = deliver(app, imap, smtp_sink, build_reply(pending, "同意", style=COREMAIL))

    assert_refused(app, sent, words=["已经使用过", "只能作出一次决定"], serials=[again.serial])
    assert approval_states(app) == [ApprovalState.USED, ApprovalState.OPEN]


def test_used_token_replayed_while_decided(app: App, imap: ImapServerHandle, smtp_sink: SmtpSink) -> None:
    pending = pending_item(app, imap, smtp_sink)
    deliver(app, imap, smtp_sink, build_reply(pending, "不同意"))
    assert item_state(app, pending.serial) == ItemState.NOT_SENT

    sent = deliver(app, imap, smtp_sink, build_reply(pending, "同意，请尽快报送。", style=IPHONE))

    assert_refused(app, sent, words=["已经使用过"], serials=[pending.serial], state=ItemState.NOT_SENT)


def test_voided_token_replayed_after_ask_back(app: App, imap: ImapServerHandle, smtp_sink: SmtpSink) -> None:
    pending = pending_item(app, imap, smtp_sink)
    asked = deliver(app, imap, smtp_sink, build_reply(pending, "收到"))
    assert_asked_back(app, asked, pending.serial, cause="没有找到")
    assert approval_states(app) == [ApprovalState.VOID, ApprovalState.OPEN]

    sent = deliver(app, imap, smtp_sink, build_reply(pending, "同意"))

    assert_refused(app, sent, words=["已作废"], serials=[pending.serial])


# ---------------------------------------------------------------------------------------------
# A valid token from an address that is not the leader's


@pytest.mark.parametrize(
    ("sender", "name"),
    [
        (FORGER, "韩立峰"),
        (OFFICE, "政务信息科"),
        (CD, "成都市文化广电旅游局"),
        (FORGER, LEADER),  # the leader's address as the display name only
        ("leader@tourism.example.gov.cn.evil.example", "韩立峰"),
        ("leader@tourism-example.gov.cn", "韩立峰"),
    ],
)
def test_valid_token_from_other_address(
    app: App, imap: ImapServerHandle, smtp_sink: SmtpSink, sender: str, name: str
) -> None:
    pending = pending_item(app, imap, smtp_sink)

    sent = deliver(app, imap, smtp_sink, build_reply(pending, "同意", sender=sender, sender_name=name))

    message = assert_refused(app, sent, words=["不是该审批请求的审批领导"], serials=[pending.serial], sender=sender)
    assert sender in (message.reason or "")
    assert approval_states(app) == [ApprovalState.OPEN]


def test_leader_still_decides_after_forgery(app: App, imap: ImapServerHandle, smtp_sink: SmtpSink) -> None:
    pending = pending_item(app, imap, smtp_sink)
    deliver(app, imap, smtp_sink, build_reply(pending, "同意", sender=FORGER))
    assert item_state(app, pending.serial) == ItemState.PENDING_APPROVAL

    deliver(app, imap, smtp_sink, build_reply(pending, "同意", style=HUAWEI))

    assert item_state(app, pending.serial) == ItemState.APPROVED
    assert last_message(app).state == MessageState.DECISION


# ---------------------------------------------------------------------------------------------
# 不同意 and its variants reject, never approve


@pytest.mark.parametrize(
    ("words", "style"),
    [
        ("不同意", QQ_WEB),
        ("不予同意。", OUTLOOK_2016),
        ("暂不同意，等统计局正式数据出来再说。", IPHONE),
        ("不同意报送", NETEASE_163),
        ("暂不同意", COREMAIL),
        ("不予同意", FOXMAIL),
    ],
    ids=lambda value: value.name if isinstance(value, ClientStyle) else None,
)
def test_refusal_rejects(app: App, imap: ImapServerHandle, smtp_sink: SmtpSink, words: str, style: ClientStyle) -> None:
    pending = pending_item(app, imap, smtp_sink)

    sent = deliver(app, imap, smtp_sink, build_reply(pending, words, style=style))

    assert item_state(app, pending.serial) == ItemState.NOT_SENT
    assert approve_events(app) == 0
    with app.session_factory() as session:
        (entry,) = session.scalars(select(ApprovalEntry))
        assert entry.decision == "reject"
        commands = [event.command for event in session.scalars(select(ItemEvent).order_by(ItemEvent.id))]
        assert commands[-1] == "reject"
    message = last_message(app)
    assert message.state == MessageState.DECISION
    assert "不同意报送" in (message.reason or "")
    assert [mail.rcpt_tos for mail in sent] == [[OFFICE]]  # the decision notice only
    assert not mails_to(smtp_sink, LEADER, "【请再次审批】")


# ---------------------------------------------------------------------------------------------
# Expired tokens


def test_expired_token(frozen_app: App, clock: FrozenClock, imap: ImapServerHandle, smtp_sink: SmtpSink) -> None:
    pending = pending_item(frozen_app, imap, smtp_sink)
    clock.advance(timedelta(days=frozen_app.settings.approval.token_days, minutes=1))

    sent = deliver(frozen_app, imap, smtp_sink, build_reply(pending, "同意"))

    assert_refused(frozen_app, sent, words=["审批码已于", "过期"], serials=[pending.serial])
    assert approval_states(frozen_app) == [ApprovalState.OPEN]


def test_token_valid_until_expiry(
    frozen_app: App, clock: FrozenClock, imap: ImapServerHandle, smtp_sink: SmtpSink
) -> None:
    pending = pending_item(frozen_app, imap, smtp_sink)
    clock.advance(timedelta(days=frozen_app.settings.approval.token_days, minutes=-1))

    deliver(frozen_app, imap, smtp_sink, build_reply(pending, "同意"))

    assert item_state(frozen_app, pending.serial) == ItemState.APPROVED
    assert approval_states(frozen_app) == [ApprovalState.USED]


# ---------------------------------------------------------------------------------------------
# Authentication-Results when the check is on


@pytest.mark.parametrize(
    ("results", "words"),
    [
        ([f"{AUTHSERV_ID}; dmarc=fail (p=reject) header.from=tourism.example.gov.cn"], ["DMARC", "未通过"]),
        ([f"{AUTHSERV_ID}; dmarc=none header.from=tourism.example.gov.cn"], ["DMARC", "未通过"]),
        (["mx.attacker.example; dmarc=pass header.from=tourism.example.gov.cn"], ["没有本邮件服务器", AUTHSERV_ID]),
        ([], ["没有本邮件服务器"]),
        ([f"{AUTHSERV_ID}; dkim=pass header.d=tourism.example.gov.cn"], ["没有 DMARC 结果"]),
        ([f"{AUTHSERV_ID}; dmarc=pass header.from=qq.example.com"], ["DMARC", "不一致"]),
        # Our server's own result on top is a fail. The pass below it was added before our server.
        ([f"{AUTHSERV_ID}; dmarc=fail header.from=tourism.example.gov.cn", DMARC_PASS], ["未通过"]),
    ],
    ids=["fail", "none", "other-authserv-id", "no-header", "no-dmarc", "unaligned", "forged-below"],
)
def test_failing_authentication(
    auth_app: App, imap: ImapServerHandle, smtp_sink: SmtpSink, results: list[str], words: list[str]
) -> None:
    pending = pending_item(auth_app, imap, smtp_sink)

    headers = [("Authentication-Results", value) for value in results]
    sent = deliver(auth_app, imap, smtp_sink, build_reply(pending, "同意", headers=headers))

    assert_refused(auth_app, sent, words=words, serials=[pending.serial])
    assert approval_states(auth_app) == [ApprovalState.OPEN]


def test_aligned_dmarc_pass_accepted(auth_app: App, imap: ImapServerHandle, smtp_sink: SmtpSink) -> None:
    pending = pending_item(auth_app, imap, smtp_sink)

    headers = [("Authentication-Results", DMARC_PASS)]
    deliver(auth_app, imap, smtp_sink, build_reply(pending, "同意", headers=headers))

    assert item_state(auth_app, pending.serial) == ItemState.APPROVED
    assert last_message(auth_app).state == MessageState.DECISION
    assert approval_states(auth_app) == [ApprovalState.USED]


def test_office_command_without_authentication_refused(
    auth_app: App, imap: ImapServerHandle, smtp_sink: SmtpSink
) -> None:
    pending = pending_item(auth_app, imap, smtp_sink)

    # A forged office mail that would undo the 送审: without our server's pass it is not carried out.
    sent = deliver(auth_app, imap, smtp_sink, build_mail(OFFICE, "命令", [], text=f"撤销 {pending.serial}"))

    assert item_state(auth_app, pending.serial) == ItemState.PENDING_APPROVAL
    message = last_message(auth_app)
    assert message.state == MessageState.UNDECIDED
    assert "办公室命令未执行" in (message.reason or "")
    assert sent == []


# ---------------------------------------------------------------------------------------------
# Real clients' quoting layouts: the only 同意 is in the quoted request


NEUTRAL_WORDS = [("收到", "没有找到"), ("这个数据准确吗？", "问题")]


@pytest.mark.parametrize("style", STYLES, ids=lambda style: style.name)
@pytest.mark.parametrize(("words", "cause"), NEUTRAL_WORDS, ids=["ack", "question"])
def test_quoted_approval_does_not_count(
    app: App, imap: ImapServerHandle, smtp_sink: SmtpSink, style: ClientStyle, words: str, cause: str
) -> None:
    pending = pending_item(app, imap, smtp_sink)
    assert "经市政府同意" in plain_text(pending.request.data)
    raw = build_reply(pending, words, style=style)

    sent = deliver(app, imap, smtp_sink, raw)

    assert_asked_back(app, sent, pending.serial, cause=cause)
    assert approval_states(app) == [ApprovalState.VOID, ApprovalState.OPEN]


@pytest.mark.parametrize("style", STYLES, ids=lambda style: style.name)
def test_approval_in_client_layout_counts(
    app: App, imap: ImapServerHandle, smtp_sink: SmtpSink, style: ClientStyle
) -> None:
    pending = pending_item(app, imap, smtp_sink)

    sent = deliver(app, imap, smtp_sink, build_reply(pending, "同意", style=style))

    assert item_state(app, pending.serial) == ItemState.APPROVED
    message = last_message(app)
    assert message.state == MessageState.DECISION
    assert f"{pending.serial} {ITEM_TITLE}：同意" in (message.reason or "")
    assert [mail.rcpt_tos for mail in sent] == [[OFFICE]]


def test_auto_reply_quoting_request_decides_nothing(app: App, imap: ImapServerHandle, smtp_sink: SmtpSink) -> None:
    pending = pending_item(app, imap, smtp_sink)

    words = "您好！我于11月2日至11月6日参加集中培训，期间不能及时查看邮件，急事请联系局办公室。"
    raw = build_reply(
        pending,
        words,
        style=COREMAIL,
        subject="自动回复: " + pending.subject,
        headers=[("Auto-Submitted", "auto-replied")],
    )
    sent = deliver(app, imap, smtp_sink, raw)

    assert item_state(app, pending.serial) == ItemState.PENDING_APPROVAL
    assert approve_events(app) == 0
    # An auto-reply is classified before approval replies are read, so it is stored as one and asked nothing.
    assert last_message(app).state == MessageState.AUTO_REPLY
    assert sent == []
    assert approval_states(app) == [ApprovalState.OPEN]




def exchange_out_of_office(pending: Pending, words: str) -> bytes:
    """An Exchange zh-CN out-of-office reply: 自动答复 subject, X-Auto-Response-Suppress, no thread headers."""
    return build_reply(
        pending,
        words,
        style=OUTLOOK_PLAIN,
        subject="自动答复: " + pending.subject,
        thread_to=None,
        headers=[("X-Auto-Response-Suppress", "All")],
    )


def test_exchange_out_of_office_gets_no_ask_back(app: App, imap: ImapServerHandle, smtp_sink: SmtpSink) -> None:
    pending = pending_item(app, imap, smtp_sink)

    words = "您好！我于11月2日至11月6日休假，期间邮件可能无法及时回复，急事请联系局办公室。"
    sent = deliver(app, imap, smtp_sink, exchange_out_of_office(pending, words))

    assert item_state(app, pending.serial) == ItemState.PENDING_APPROVAL
    assert approve_events(app) == 0
    assert last_message(app).state == MessageState.AUTO_REPLY
    assert sent == []


def test_exchange_out_of_office_never_approves(app: App, imap: ImapServerHandle, smtp_sink: SmtpSink) -> None:
    pending = pending_item(app, imap, smtp_sink)

    words = "您好！我于11月2日至11月6日休假，需我同意的事项请联系办公室主任代办。"
    deliver(app, imap, smtp_sink, exchange_out_of_office(pending, words))

    assert item_state(app, pending.serial) == ItemState.PENDING_APPROVAL
    assert approve_events(app) == 0
