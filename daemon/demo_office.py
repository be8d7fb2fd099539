"""The second part of `zwxx demo`: the office and the leader work an item by mail.

The office sends 送审 and 登记 command mails, the leader approves by replying to the approval
request, and the office then sends 报送 and 采用. Every mail goes through the local IMAP server
and SMTP sink like the sample mail does, and the daemon that is already running handles it.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

from sqlalchemy import func, select

from daemon.app import App
from daemon.embedded import ReceivedMail, SmtpSink
from daemon.errors import DaemonError
from daemon.models import Item, Message
from daemon.views import COMMAND_LABELS, ITEM_STATE_LABELS, label

OFFICE = "xxb@tourism.example.gov.cn"
LEADER = "leader@tourism.example.gov.cn"
MAILBOX = "zwxx@tourism.example.gov.cn"

Append = Callable[[bytes], None]
Wait = Callable[[int], bool]


def _mail(sender: str, subject: str, text: str, *, to: str = MAILBOX, in_reply_to: str = "") -> bytes:
    mail = EmailMessage()
    mail["From"] = sender
    mail["To"] = to
    mail["Subject"] = subject
    mail["Date"] = format_datetime(_now())
    mail["Message-ID"] = make_msgid(domain="tourism.example.gov.cn")
    if in_reply_to:
        mail["In-Reply-To"] = in_reply_to
        mail["References"] = in_reply_to
    mail.set_content(text)
    return mail.as_bytes(policy=policy.SMTP)


def _now() -> datetime:
    return datetime.now(UTC)


def _text(mail: ReceivedMail) -> str:
    body = message_from_bytes(mail.data, policy=policy.default).get_body(preferencelist=("plain",))
    return str(body.get_content()).rstrip() if body is not None else ""


def _subject(mail: ReceivedMail) -> str:
    return str(message_from_bytes(mail.data, policy=policy.default)["Subject"] or "")


def _show_new(sink: SmtpSink, seen: int) -> int:
    for mail in sink.received[seen:]:
        print(f"\n  → 发给 {', '.join(mail.rcpt_tos)}：{_subject(mail)}")
        for line in _text(mail).splitlines()[:12]:
            print(f"    {line}")
    return len(sink.received)


def walk_item(app: App, sink: SmtpSink, append: Append, wait: Wait, serial: str) -> None:
    """Send an item through 送审, the leader's 同意, 报送 and 采用, printing each mail exchanged."""
    seen = len(sink.received)
    stored = _count_messages(app)

    print(f"\n== 办公室发送命令邮件：送审 {serial}；把未知发件人登记到乐山市 ==")
    append(_mail(OFFICE, "命令", f"送审 {serial}\n登记 mxwhly2026@126.example.com 乐山市"))
    stored += 1
    _wait(wait, stored)
    seen = _show_new(sink, seen)

    request = next((m for m in sink.received if LEADER in m.rcpt_tos and "请审批" in _subject(m)), None)
    if request is None:
        raise DaemonError("演示中没有收到发给领导的审批请求")
    original = message_from_bytes(request.data, policy=policy.default)
    print("\n== 领导直接回复审批请求：同意 ==")
    quoted = "\n".join("> " + line for line in _text(request).splitlines())
    append(
        _mail(
            LEADER,
            "回复：" + str(original["Subject"]),
            f"同意。\n\n在 {format_datetime(_now())}，政务信息报送邮箱 写道：\n{quoted}",
            to=str(original["Reply-To"]),
            in_reply_to=str(original["Message-ID"]),
        )
    )
    stored += 1
    _wait(wait, stored)
    seen = _show_new(sink, seen)

    print(f"\n== 办公室发送命令邮件：报送、采用 {serial} ==")
    append(_mail(OFFICE, "命令", f"报送 {serial}\n采用 {serial} 省委办公厅 《四川信息》第45期"))
    stored += 1
    _wait(wait, stored)
    _show_new(sink, seen)
    _print_history(app, serial)


def _count_messages(app: App) -> int:
    with app.session_factory() as session:
        return session.scalar(select(func.count(Message.id))) or 0


def _wait(wait: Wait, stored: int) -> None:
    if not wait(stored):
        raise DaemonError("守护进程未能及时处理演示中的命令邮件，请加 --verbose 查看日志")


def _print_history(app: App, serial: str) -> None:
    tz = app.settings.tz
    with app.session_factory() as session:
        item = session.scalar(select(Item).where(Item.serial == serial))
        if item is None:
            return
        print(f"\n== {serial} 的办理记录（当前状态：{label(ITEM_STATE_LABELS, item.state)}）==")
        for event in item.events:
            who = "系统" if event.actor == "zwxx" else event.actor
            what = COMMAND_LABELS.get(event.command or "", event.command or "")
            print(f"  {event.at.astimezone(tz):%m-%d %H:%M:%S}  {who}  {what}")
        for adoption in item.adoptions:
            print(f"  采用：{adoption.outlet}《{adoption.publication}》{adoption.issue}，{adoption.explanation}")
