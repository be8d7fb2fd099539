"""`zwxx poll` on a backlog: progress on stderr, and no poll while a daemon holds the lease."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from sqlalchemy import text

from daemon.config import load_settings
from daemon.db import create_db_engine
from daemon.lease import make_lease
from tests.daemon.conftest import WriteConfig
from tests.daemon.test_cli import run_zwxx
from tests.daemon.test_crash import distinct_copies
from tests.servers.handle import ImapServerHandle


def test_poll_shows_progress_on_backlog(write_config: WriteConfig, imap: ImapServerHandle, shared_dir: Path) -> None:
    config = write_config(batch_size=10)
    assert run_zwxx("init", config=config).returncode == 0
    imap.append_many(distinct_copies(shared_dir, 60))

    result = run_zwxx("poll", config=config)

    assert result.returncode == 0, result.stderr
    assert "收取中：0/60 封（0%）" in result.stderr
    assert "收取中：10/60 封（10%）" in result.stderr
    assert "收取中：60/60 封（100%）" in result.stderr
    assert "新收取 60 封" in result.stdout


def test_poll_refused_while_daemon_holds_lease(write_config: WriteConfig, imap: ImapServerHandle) -> None:
    config = write_config()
    assert run_zwxx("init", config=config).returncode == 0
    settings = load_settings(config)
    engine = create_db_engine(settings.database.url)
    lease = make_lease(engine, settings.database.url)
    assert lease.try_acquire()
    try:
        result = run_zwxx("poll", config=config)
    finally:
        lease.release()
        engine.dispose()

    assert result.returncode == 1
    assert "守护进程（zwxx run）正在运行" in result.stderr


def test_poll_sends_every_due_mail(write_config: WriteConfig, imap: ImapServerHandle, shared_dir: Path) -> None:
    config = write_config()
    assert run_zwxx("init", config=config).returncode == 0
    imap.append_many(distinct_copies(shared_dir, 120))

    result = run_zwxx("poll", config=config)

    assert result.returncode == 0, result.stderr
    engine = create_db_engine(load_settings(config).database.url)
    try:
        with engine.connect() as connection:
            states = Counter(connection.execute(text("SELECT state FROM outbox")).scalars())
    finally:
        engine.dispose()
    assert states["sent"] > 50  # more than one round of the sender
    assert set(states) == {"sent"}
    assert f"发出回执等邮件 {states['sent']} 封，待重试 0 封，放弃 0 封。" in result.stdout
