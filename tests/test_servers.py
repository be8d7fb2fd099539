"""Checks that the test servers and databases behave as the other tests rely on."""

from __future__ import annotations

import datetime as dt
import smtplib
import socket
import time
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from pathlib import Path

import pytest
import sqlalchemy as sa
from imapclient import IMAPClient
from imapclient.exceptions import LoginError

from daemon.embedded import EmbeddedImapServer, SmtpSink
from tests.servers.handle import ImapServerHandle, ImapServerKind


def build_message(
    subject: str = "关于报送十一月旅游接待数据的通知", body: str = "各处室：请于周五前报送。"
) -> bytes:
    """Build a small message the way a mail client sends it (encoded words, CRLF line ends)."""
    message = EmailMessage(policy=SMTP_POLICY)
    message["From"] = "办公室 <office@example.cn>"
    message["To"] = "zwxx@example.cn"
    message["Subject"] = subject
    message["Message-ID"] = "<servers-test@example.cn>"
    message.set_content(body)
    return message.as_bytes()


def is_port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def test_imap_append_fetch_by_uid(imap: ImapServerHandle) -> None:
    raw = build_message()
    internal_date = dt.datetime(2026, 11, 30, 9, 15, tzinfo=dt.timezone(dt.timedelta(hours=8)))

    uid = imap.append(raw, flags=[b"\\Seen"], msg_time=internal_date)

    with imap.client() as client:
        client.select_folder("INBOX", readonly=True)
        assert client.search("ALL") == [uid]
        fetched = client.fetch([uid], ["BODY.PEEK[]", "FLAGS", "INTERNALDATE"])[uid]
    assert fetched[b"BODY[]"] == raw
    assert b"\\Seen" in fetched[b"FLAGS"]
    assert fetched[b"INTERNALDATE"].astimezone(dt.UTC) == internal_date.astimezone(dt.UTC)


def test_imap_append_many_uids(imap: ImapServerHandle) -> None:
    raws = [build_message(subject=f"第 {number} 期简报") for number in range(150)]

    uids = imap.append_many(raws)

    assert len(uids) == 150
    assert uids == sorted(set(uids))
    with imap.client() as client:
        assert client.select_folder("INBOX", readonly=True)[b"EXISTS"] == 150


def test_imap_reset_removes_everything(imap: ImapServerHandle) -> None:
    imap.create_folder("归档")
    imap.create_folder("归档/2026")
    imap.append(build_message(), folder="归档/2026")
    imap.append(build_message())
    assert set(imap.list_folders()) >= {"INBOX", "归档", "归档/2026"}

    imap.reset()

    assert imap.list_folders() == ["INBOX"]
    with imap.client() as client:
        assert client.select_folder("INBOX", readonly=True)[b"EXISTS"] == 0


def test_imap_delete_folder(imap: ImapServerHandle) -> None:
    imap.create_folder("已处理")
    assert "已处理" in imap.list_folders()

    imap.delete_folder("已处理")

    assert "已处理" not in imap.list_folders()


def test_imap_wrong_password_rejected(imap: ImapServerHandle) -> None:
    client = IMAPClient(imap.host, imap.port, ssl=False, timeout=10)
    try:
        with pytest.raises(LoginError):
            client.login(imap.user, imap.password + "-wrong")
    finally:
        client.shutdown()


def test_imap_restart_same_port(imap: ImapServerHandle) -> None:
    imap.append(build_message())
    port = imap.port

    imap.stop()
    assert not is_port_open(imap.host, port)
    imap.start()

    assert imap.port == port
    with imap.client() as client:
        exists = client.select_folder("INBOX", readonly=True)[b"EXISTS"]
    assert exists == (1 if imap.keeps_mail_across_restart else 0)


def test_imap_server_kind_reported(imap_server: ImapServerHandle) -> None:
    assert imap_server.kind in set(ImapServerKind)
    assert imap_server.server.startup_seconds is not None
    assert imap_server.host == "127.0.0.1"


def test_embedded_imap_starts_empty() -> None:
    with EmbeddedImapServer(user="demo", password="demo-password") as server:
        pid = server.pid
        assert pid is not None
        assert server.port is not None
        with IMAPClient(server.host, server.port, ssl=False, timeout=10) as client:
            client.login("demo", "demo-password")
            assert [name for _flags, _delimiter, name in client.list_folders()] == ["INBOX"]
            assert client.select_folder("INBOX")[b"EXISTS"] == 0

    assert not server.running
    assert server.pid is None


def test_smtp_sink_records_bytes(smtp_sink: SmtpSink) -> None:
    raw = build_message()
    assert smtp_sink.port is not None

    with smtplib.SMTP(smtp_sink.host, smtp_sink.port, timeout=10) as client:
        client.sendmail("office@example.cn", ["zwxx@example.cn", "chief@example.cn"], raw)

    [mail] = smtp_sink.wait_for(1, timeout=5)
    assert mail.mail_from == "office@example.cn"
    assert mail.rcpt_tos == ["zwxx@example.cn", "chief@example.cn"]
    assert mail.data == raw


def test_smtp_sink_accepts_smtputf8(smtp_sink: SmtpSink) -> None:
    raw = "From: 办公室 <office@example.cn>\r\nSubject: 月报\r\n\r\n正文\r\n".encode()
    assert smtp_sink.port is not None

    with smtplib.SMTP(smtp_sink.host, smtp_sink.port, timeout=10) as client:
        client.sendmail(
            "office@example.cn", ["zwxx@example.cn"], raw, mail_options=["SMTPUTF8", "BODY=8BITMIME"]
        )

    [mail] = smtp_sink.wait_for(1, timeout=5)
    assert mail.data == raw


def test_smtp_sink_reject_mode(smtp_sink: SmtpSink) -> None:
    assert smtp_sink.port is not None
    smtp_sink.reject()

    with smtplib.SMTP(smtp_sink.host, smtp_sink.port, timeout=10) as client:
        with pytest.raises(smtplib.SMTPDataError) as raised:
            client.sendmail("office@example.cn", ["zwxx@example.cn"], build_message())
    assert raised.value.smtp_code == 451
    assert smtp_sink.received == []
    assert smtp_sink.rejected_count == 1

    smtp_sink.accept()
    with smtplib.SMTP(smtp_sink.host, smtp_sink.port, timeout=10) as client:
        client.sendmail("office@example.cn", ["zwxx@example.cn"], build_message())
    assert len(smtp_sink.wait_for(1, timeout=5)) == 1


def test_smtp_sink_restart_same_port(smtp_sink: SmtpSink) -> None:
    port = smtp_sink.port
    assert port is not None

    smtp_sink.stop()
    with pytest.raises(OSError):
        smtplib.SMTP(smtp_sink.host, port, timeout=5)
    smtp_sink.start()

    assert smtp_sink.port == port
    with smtplib.SMTP(smtp_sink.host, port, timeout=10) as client:
        client.sendmail("office@example.cn", ["zwxx@example.cn"], build_message())
    assert len(smtp_sink.wait_for(1, timeout=5)) == 1


def test_smtp_sink_wait_for_timeout(smtp_sink: SmtpSink) -> None:
    started = time.monotonic()

    with pytest.raises(TimeoutError):
        smtp_sink.wait_for(1, timeout=0.2)

    assert time.monotonic() - started < 2


def test_smtp_sink_clear(smtp_sink: SmtpSink) -> None:
    assert smtp_sink.port is not None
    with smtplib.SMTP(smtp_sink.host, smtp_sink.port, timeout=10) as client:
        client.sendmail("office@example.cn", ["zwxx@example.cn"], build_message())
    smtp_sink.wait_for(1, timeout=5)

    smtp_sink.clear()

    assert smtp_sink.received == []


def test_smtp_sink_spool_dir(tmp_path: Path) -> None:
    raw = build_message()
    spool = tmp_path / "spool"

    with SmtpSink(spool_dir=spool) as sink:
        assert sink.port is not None
        with smtplib.SMTP(sink.host, sink.port, timeout=10) as client:
            client.sendmail("office@example.cn", ["zwxx@example.cn"], raw)
        sink.wait_for(1, timeout=5)

    files = sorted(spool.glob("*.eml"))
    assert len(files) == 1
    assert files[0].read_bytes() == raw


def test_database_create_table(database_url: str) -> None:
    engine = sa.create_engine(database_url)
    metadata = sa.MetaData()
    table = sa.Table(
        "probe",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("title", sa.String(200), nullable=False),
    )
    try:
        assert sa.inspect(engine).get_table_names() == []
        metadata.create_all(engine)
        with engine.begin() as connection:
            connection.execute(table.insert(), [{"title": "旅游接待月报"}])
        with engine.connect() as connection:
            titles = connection.execute(sa.select(table.c.title)).scalars().all()
    finally:
        engine.dispose()

    assert titles == ["旅游接待月报"]
    assert engine.dialect.name == database_url.split(":", 1)[0].split("+", 1)[0]


def test_shared_dir_has_corpus(shared_dir: Path) -> None:
    assert (shared_dir / "corpus").is_dir()
    assert (shared_dir / "cases").is_dir()
