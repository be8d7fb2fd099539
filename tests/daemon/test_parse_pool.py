"""Parsing in worker processes (daemon.reading.ParsePool): same results as the daemon's own process,
and a worker that dies takes only its own message into quarantine."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from daemon.app import build_app
from daemon.config import Settings, load_settings
from daemon.db import upgrade_database
from daemon.models import Item, Message
from daemon.reading import (
    PARENT_CHECK_SECONDS,
    WORKER_DIED_REASON,
    ParseFailure,
    ParsePool,
    _read_in_worker,
    read_raw,
)
from parsers.model import ParsedMessage
from tests.daemon.test_pipeline import append_with_date, expected_state, load_corpus, poll_once
from tests.servers.handle import ImapServerHandle

KILL_MARKER = b"X-Test-Kill-Worker: yes\r\n"


def die_on_marker(raw: bytes, internaldate: datetime | None) -> ParsedMessage | ParseFailure:
    """Runs in a worker process: ends the process at once on a marked mail, as a crashing parser would."""
    if KILL_MARKER in raw:
        os._exit(70)
    return _read_in_worker(raw, internaldate)


def read_here(settings: Settings, raw: bytes) -> ParsedMessage | ParseFailure:
    return read_raw(settings.tz, settings.documents, raw, None)


def test_pool_reads_corpus_like_daemon_process(settings: Settings, shared_dir: Path) -> None:
    raws = [raw for _record, raw in load_corpus(shared_dir)]
    pool = ParsePool(settings, 2)
    try:
        results = pool.collect([pool.submit(raw, None) for raw in raws], [(raw, None) for raw in raws])
    finally:
        pool.close()

    assert len(results) == len(raws) == 60
    assert pool.deaths == 0
    different = [
        index
        for index, (raw, result) in enumerate(zip(raws, results, strict=True))
        if result != read_here(settings, raw)
    ]
    assert different == []
    assert all(isinstance(result, ParsedMessage) for result in results)


def test_pool_worker_death_quarantines_one_mail(settings: Settings, shared_dir: Path) -> None:
    raws = [raw for _record, raw in load_corpus(shared_dir)[:6]]
    raws[2] = KILL_MARKER + raws[2]
    pool = ParsePool(settings, 2, reader=die_on_marker)
    try:
        results = pool.collect([pool.submit(raw, None) for raw in raws], [(raw, None) for raw in raws])
        after = pool.collect([pool.submit(raws[0], None)], [(raws[0], None)])
    finally:
        pool.close()

    killed = results[2]
    assert isinstance(killed, ParseFailure)
    assert killed.reason == WORKER_DIED_REASON
    for index in (0, 1, 3, 4, 5):
        assert results[index] == read_here(settings, raws[index]), index
    # The first death breaks the pool; the marked mail, parsed again alone, breaks the new one.
    assert pool.deaths == 2
    assert after == [read_here(settings, raws[0])]


@pytest.mark.parametrize("workers", [2])
def test_pool_backlog_registered_in_order(
    write_config, imap: ImapServerHandle, shared_dir: Path, caplog: pytest.LogCaptureFixture, workers: int
) -> None:
    app = build_app(load_settings(write_config(batch_size=10, imap_extra=f"parse_workers = {workers}")))
    try:
        upgrade_database(app.engine)
        corpus = load_corpus(shared_dir)
        uid_to_record = {append_with_date(imap, raw): record for record, raw in corpus}
        with caplog.at_level(logging.INFO, logger="daemon.intake"):
            stored, _sent = poll_once(app)
        with app.session_factory() as session:
            states = {m.uid: m.state for m in session.scalars(select(Message))}
            uids_by_serial = list(
                session.scalars(select(Message.uid).join(Item, Item.message_db_id == Message.id).order_by(Item.seq))
            )
    finally:
        app.close()

    assert f"parsing {len(corpus)} new messages in {workers} worker processes" in caplog.text
    assert stored == len(corpus)
    assert {uid: states[uid] for uid in uid_to_record} == {
        uid: expected_state(record) for uid, record in uid_to_record.items()
    }
    # Serials follow the UIDs: batches are stored in the order they were fetched.
    assert len(uids_by_serial) >= 50
    assert uids_by_serial == sorted(uids_by_serial)


@pytest.mark.parametrize("moment", ["working", "early"])
def test_pool_workers_exit_when_daemon_killed(write_config, moment: str) -> None:
    parent = subprocess.Popen(
        [sys.executable, "-m", "tests.daemon.pool_parent", str(write_config()), moment],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    try:
        line = parent.stdout.readline() if parent.stdout else ""
        workers = [int(pid) for pid in line.split()]
        assert len(workers) == 2, line
        assert all(alive(pid) for pid in workers)
    finally:
        parent.send_signal(signal.SIGKILL)
        parent.wait()
        if parent.stdout:
            parent.stdout.close()

    # An early worker first finishes its imports (about a second), then notices.
    deadline = time.monotonic() + 15 * PARENT_CHECK_SECONDS
    while time.monotonic() < deadline and any(alive(pid) for pid in workers):
        time.sleep(0.1)
    assert [pid for pid in workers if alive(pid)] == []


def alive(pid: int) -> bool:
    """Tell whether ``pid`` is a running process (a zombie counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False
