"""Two daemons on one database and one mailbox: one works, the other stands by and takes over when it dies."""

from __future__ import annotations

import signal
import time
from collections import Counter
from email import message_from_bytes
from pathlib import Path

from sqlalchemy import func, select

from daemon.config import load_settings
from daemon.db import create_db_engine, make_session_factory, upgrade_database
from daemon.embedded import SmtpSink
from daemon.models import Message, OutboxMail, OutboxState
from tests.daemon.conftest import WriteConfig
from tests.daemon.test_crash import distinct_copies, start_daemon, wait_until
from tests.servers.handle import ImapServerHandle

STANDBY_INTERVAL = 1  # seconds between a standby node's tries


def log_has(path: Path, text: str) -> bool:
    return path.exists() and text in path.read_text(errors="replace")


def test_standby_takes_over_without_double_processing(
    write_config: WriteConfig, imap: ImapServerHandle, smtp_sink: SmtpSink, shared_dir: Path, tmp_path: Path
) -> None:
    config = write_config(batch_size=10)
    text = config.read_text(encoding="utf-8")
    config.write_text(
        text.replace('log_level = "DEBUG"', f'log_level = "DEBUG"\nstandby_interval = {STANDBY_INTERVAL}'),
        encoding="utf-8",
    )
    settings = load_settings(config)
    engine = create_db_engine(settings.database.url)
    upgrade_database(engine)
    session_factory = make_session_factory(engine)
    mails = distinct_copies(shared_dir, 60)

    def settled(expected: int) -> bool:
        with session_factory() as session:
            stored = session.scalar(select(func.count(Message.id))) or 0
            unsent = session.scalar(select(func.count(OutboxMail.id)).where(OutboxMail.state != OutboxState.SENT))
        return stored == expected and unsent == 0

    first_log, second_log = tmp_path / "first.log", tmp_path / "second.log"
    first = start_daemon(config, first_log)
    second = None
    try:
        wait_until(lambda: log_has(first_log, "lease acquired"), 60, "the first node to take the lease")
        second = start_daemon(config, second_log)
        wait_until(lambda: log_has(second_log, "standing by"), 60, "the second node to stand by")

        imap.append_many(mails[:30])
        wait_until(lambda: settled(30), 120, "30 messages stored and answered by the first node")
        assert not log_has(second_log, "lease acquired")

        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
        killed = time.monotonic()
        wait_until(lambda: log_has(second_log, "lease acquired"), 30, "the second node to take over")
        takeover = time.monotonic() - killed
        imap.append_many(mails[30:])
        wait_until(lambda: settled(60), 120, "60 messages stored and answered")
    finally:
        for process in (first, second):
            if process is not None and process.poll() is None:
                process.send_signal(signal.SIGTERM)
                process.wait(timeout=30)

    assert takeover < STANDBY_INTERVAL + 5
    with session_factory() as session:
        messages = list(session.scalars(select(Message)))
        queued = session.scalar(select(func.count(OutboxMail.id))) or 0
    engine.dispose()
    assert len(messages) == 60
    assert len({(m.uidvalidity, m.uid) for m in messages}) == 60
    delivered = Counter(message_from_bytes(mail.data)["Message-ID"] for mail in smtp_sink.received)
    assert len(delivered) == queued
    assert max(delivered.values()) == 1
    assert second is not None and second.returncode == 0
