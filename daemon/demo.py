"""`zwxx demo`: the daemon's main job on local servers with the sample mail in ``examples/``.

Starts an embedded IMAP server (pymap) and an SMTP sink (aiosmtpd) on 127.0.0.1, appends the
sample mail, runs the daemon until every message is processed and every receipt is sent, then
prints the register and the receipts. Then the office and the leader work one item by mail
(daemon.demo_office). Nothing leaves the machine.
"""

from __future__ import annotations

import logging
import tempfile
import threading
import time
from email import message_from_bytes, policy
from email.utils import parsedate_to_datetime
from pathlib import Path

from imapclient import IMAPClient
from sqlalchemy import func, select

from daemon.app import build_app
from daemon.config import load_settings
from daemon.db import upgrade_database
from daemon.demo_office import walk_item
from daemon.embedded import EmbeddedImapServer, SmtpSink
from daemon.errors import DaemonError
from daemon.models import Item, Message, OutboxMail, OutboxState
from daemon.runner import Runner
from daemon.views import MESSAGE_STATE_LABELS, format_register, item_summary, label, pad

log = logging.getLogger(__name__)

EXAMPLES_DIR = Path(__file__).resolve().parent.parent / "examples"
DEMO_USER = "zwxx"
DEMO_PASSWORD = "zwxx-demo"
# Upper bound on how long the daemon may take to process the sample mail.
PROCESS_TIMEOUT = 120.0

_CONFIG_TEMPLATE = """\
# Written by `zwxx demo`: local servers on 127.0.0.1 only.
[general]
timezone = "Asia/Shanghai"
log_level = "WARNING"

[imap]
host = "127.0.0.1"
port = {imap_port}
security = "plain"
username = "{user}"
password = "{password}"
after_store = "move"
move_to = "已登记"
idle_timeout = 60

[smtp]
host = "127.0.0.1"
port = {smtp_port}
security = "plain"
from_address = "zwxx@tourism.example.gov.cn"

[database]
url = "sqlite:///var/zwxx.db"

[archive]
dir = "var/archive"

[office]
name = "省旅游局政务信息工作组办公室"
addresses = ["xxb@tourism.example.gov.cn"]
leaders = ["leader@tourism.example.gov.cn"]

[approval]
# A fixed key is fine for a demo on loopback; a real installation takes it from the environment.
secret = "zwxx-demo-approval-key-not-for-production"

[scoring]
file = "{scoring_file}"

[units]
file = "{units_file}"

[outbox]
send_interval = 1
"""


def _append_raw(host: str, port: int, raw: bytes) -> None:
    client = IMAPClient(host, port=port, ssl=False)
    try:
        client.login(DEMO_USER, DEMO_PASSWORD)
        client.append("INBOX", raw)
    finally:
        client.logout()


def _append_samples(host: str, port: int, mails: list[Path]) -> None:
    client = IMAPClient(host, port=port, ssl=False)
    try:
        client.login(DEMO_USER, DEMO_PASSWORD)
        for path in mails:
            raw = path.read_bytes()
            header = message_from_bytes(raw, policy=policy.compat32)
            try:
                sent = parsedate_to_datetime(header["Date"]) if header["Date"] else None
            except (TypeError, ValueError):
                sent = None
            client.append("INBOX", raw, msg_time=sent)
    finally:
        client.logout()


def _wait_until_processed(session_factory, expected: int, runner_thread: threading.Thread) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + PROCESS_TIMEOUT
    while time.monotonic() < deadline and runner_thread.is_alive():
        with session_factory() as session:
            stored = session.scalar(select(func.count(Message.id))) or 0
            unsent = (
                session.scalar(
                    select(func.count(OutboxMail.id)).where(
                        OutboxMail.state.in_([OutboxState.PENDING, OutboxState.SENDING])
                    )
                )
                or 0
            )
        if stored >= expected and unsent == 0:
            return True
        time.sleep(0.2)
    return False


def run_demo(workdir: Path | None = None) -> int:
    """Run the demo and print what happened; return the exit status."""
    started = time.monotonic()
    mails = sorted((EXAMPLES_DIR / "mail").glob("*.eml"))
    units_file = EXAMPLES_DIR / "units.toml"
    if not mails or not units_file.exists():
        raise DaemonError(f"找不到示例邮件或单位名录：{EXAMPLES_DIR}")
    workdir = workdir or Path(tempfile.mkdtemp(prefix="zwxx-demo-"))
    workdir.mkdir(parents=True, exist_ok=True)

    with (
        EmbeddedImapServer(user=DEMO_USER, password=DEMO_PASSWORD) as imap,
        SmtpSink(spool_dir=workdir / "sent") as sink,
    ):
        config_path = workdir / "config.toml"
        config_path.write_text(
            _CONFIG_TEMPLATE.format(
                imap_port=imap.port,
                smtp_port=sink.port,
                user=DEMO_USER,
                password=DEMO_PASSWORD,
                units_file=units_file.as_posix(),
                scoring_file=(EXAMPLES_DIR / "scoring.toml").as_posix(),
            ),
            encoding="utf-8",
        )
        print(f"演示目录：{workdir}")
        print(f"本机 IMAP 服务器 127.0.0.1:{imap.port}，SMTP 接收端 127.0.0.1:{sink.port}")
        _append_samples(imap.host, imap.port or 0, mails)
        print(f"已投递 {len(mails)} 封示例邮件到收件箱，守护进程开始处理……\n")

        app = build_app(load_settings(config_path))
        try:
            upgrade_database(app.engine)
            app.context.archive.ensure()
            runner = Runner(app)
            thread = threading.Thread(target=runner.run, name="zwxx-demo-runner", daemon=True)
            thread.start()
            try:
                if not _wait_until_processed(app.session_factory, len(mails), thread):
                    raise DaemonError(
                        f"守护进程未能在 {PROCESS_TIMEOUT:.0f} 秒内处理完示例邮件，请加 --verbose 查看日志"
                    )
                _print_results(app, sink)
                walk_item(
                    app,
                    sink,
                    lambda raw: _append_raw(imap.host, imap.port or 0, raw),
                    lambda count: _wait_until_processed(app.session_factory, count, thread),
                    "2026-0001",
                )
            finally:
                runner.stop_event.set()
                thread.join(timeout=30)
        finally:
            app.close()
    print(
        f"\n演示完成，用时 {time.monotonic() - started:.1f} 秒。数据库和归档在 {workdir / 'var'}，"
        f"发出的回执在 {workdir / 'sent'}。"
    )
    return 0


def _print_results(app, sink: SmtpSink) -> None:  # type: ignore[no-untyped-def]
    tz = app.settings.tz
    with app.session_factory() as session:
        items = list(session.scalars(select(Item).order_by(Item.year, Item.seq)))
        rows = [item_summary(item, app.context.units, tz, now=app.clock.now()) for item in items]
        messages = list(session.scalars(select(Message).order_by(Message.uid)))
        print("== 登记簿 ==")
        print(format_register(rows))
        print("\n== 收到的邮件 ==")
        for message in messages:
            print(
                f"UID {message.uid:<4} {pad(label(MESSAGE_STATE_LABELS, message.state), 20)} "
                f"{pad(message.sender or '—', 40)} {message.reason or ''}"
            )
    received = sink.received
    print(f"\n== 已发出的回执（{len(received)} 封）==")
    for mail in received:
        parsed = message_from_bytes(mail.data, policy=policy.default)
        print(f"\n收件人：{', '.join(mail.rcpt_tos)}")
        print(f"主题：{parsed['Subject']}")
        body = parsed.get_body(preferencelist=("plain",))
        print(body.get_content().rstrip() if body is not None else "")
