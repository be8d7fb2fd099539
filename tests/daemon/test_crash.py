"""SIGKILL the running daemon in the middle of a batch: nothing is lost, nothing is registered or sent twice."""

from __future__ import annotations

import os
import random
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from email import message_from_bytes
from pathlib import Path

import pytest
from sqlalchemy import func, select

from daemon.config import load_settings
from daemon.db import create_db_engine, make_session_factory, upgrade_database
from daemon.embedded import SmtpSink
from daemon.models import Item, Message, MessageState, OutboxMail, OutboxState
from tests.daemon.test_pipeline import flags_by_uid, stored_flag
from tests.servers.handle import ImapServerHandle

MESSAGE_ID = re.compile(rb"^(Message-ID:\s*<)", re.IGNORECASE | re.MULTILINE)


def distinct_copies(shared_dir: Path, count: int) -> list[bytes]:
    """Return ``count`` distinct registrable mails made from the corpus by renumbering Message-IDs."""
    sources = []
    for path in sorted((shared_dir / "corpus" / "eml").glob("*.eml")):
        raw = path.read_bytes()
        if b"Auto-Submitted" in raw or b"multipart/report" in raw or b"List-Unsubscribe" in raw:
            continue
        sources.append(raw)
    return [MESSAGE_ID.sub(rb"\g<1>copy%d." % index, sources[index % len(sources)], count=1) for index in range(count)]


def start_daemon(config: Path, log_path: Path) -> subprocess.Popen[bytes]:
    with log_path.open("ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "daemon.cli", "--config", str(config), "run"],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    pytest.fail(f"timed out after {timeout} s waiting for {what}")


@pytest.mark.parametrize("kills", [3])
def test_sigkill_mid_batch_loses_nothing(
    write_config, imap: ImapServerHandle, smtp_sink: SmtpSink, shared_dir: Path, tmp_path: Path, kills: int
) -> None:
    total = 240
    config = write_config(batch_size=10)
    settings = load_settings(config)
    engine = create_db_engine(settings.database.url)
    upgrade_database(engine)
    session_factory = make_session_factory(engine)
    imap.append_many(distinct_copies(shared_dir, total))
    log_path = tmp_path / "daemon.log"
    rng = random.Random(20261204)

    def stored() -> int:
        with session_factory() as session:
            return session.scalar(select(func.count(Message.id))) or 0

    # While the sink refuses mail, every receipt stays queued, so each kill lands mid-ingest.
    smtp_sink.reject()
    targets = sorted(rng.sample(range(20, total - 20), kills))
    for target in targets:
        process = start_daemon(config, log_path)
        try:
            wait_until(lambda t=target: stored() >= t, 60, f"{target} stored messages")
        finally:
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=10)
        assert process.returncode == -signal.SIGKILL

    smtp_sink.accept()
    process = start_daemon(config, log_path)
    try:

        def finished() -> bool:
            with session_factory() as session:
                unsent = (
                    session.scalar(select(func.count(OutboxMail.id)).where(OutboxMail.state != OutboxState.SENT)) or 0
                )
            return stored() == total and unsent == 0

        wait_until(finished, 120, "all messages stored and all receipts sent")
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
    assert process.returncode == 0, log_path.read_text(errors="replace")[-3000:]

    with session_factory() as session:
        messages = list(session.scalars(select(Message)))
        items = session.scalar(select(func.count(Item.id)))
        receipts = session.scalar(select(func.count(OutboxMail.id)).where(OutboxMail.purpose == "receipt"))
        queued = session.scalar(select(func.count(OutboxMail.id)))  # receipts and 重大突发事件 alerts
    engine.dispose()

    assert len(messages) == total
    assert len({m.uid for m in messages}) == total
    states = Counter(m.state for m in messages)
    # The copies include the corpus's mail from unknown senders, which is held, not registered.
    assert set(states) == {MessageState.REGISTERED, MessageState.HELD}
    assert items == receipts == states[MessageState.REGISTERED]
    delivered = Counter(message_from_bytes(mail.data)["Message-ID"] for mail in smtp_sink.received)
    assert len(delivered) == queued
    assert max(delivered.values()) == 1
    assert all(stored_flag(imap) in flags for flags in flags_by_uid(imap).values())
    assert "stopped (signal SIGTERM)" in log_path.read_text(errors="replace")
    assert os.path.getsize(log_path) > 0
