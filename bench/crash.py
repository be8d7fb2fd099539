"""Crash-safety benchmark: SIGKILL `zwxx run` at seeded random moments, restart it, count losses and repeats.

Modes:
  ingest   1,000 messages in a local Dovecot; the daemon is killed 100 times while it ingests and
           sends receipts to a fast SMTP sink.
  outbox   the same messages are ingested first with the SMTP server down. Then the daemon is killed
           100 times while it delivers the receipts to a sink that waits before each 250 reply.

After the last restart the daemon runs until everything is stored and sent, and the script prints
how many messages are missing or stored twice and how many receipts the sink received more than once.
Run from the repository root:  python -m bench.crash --mode ingest --database sqlite
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from email import message_from_bytes
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from bench.backlog import drop_postgres, postgres_database
from bench.common import SHARED
from daemon.db import create_db_engine, make_session_factory, upgrade_database
from daemon.embedded import SmtpSink
from daemon.models import Message, MessageState, OutboxMail, OutboxState
from tests.daemon.conftest import APPROVAL_SECRET, CONFIG_TEMPLATE, MAILBOX
from tests.daemon.test_crash import distinct_copies
from tests.servers.dovecot import DovecotServer
from tests.servers.handle import ImapServerHandle, ImapServerKind


class SlowSmtpSink(SmtpSink):
    """An SMTP sink that records each mail when DATA ends, then waits ``delay`` seconds before replying 250."""

    def __init__(self, *, delay: float) -> None:
        super().__init__()
        self.delay = delay

    def record_envelope(self, envelope) -> str:  # type: ignore[no-untyped-def]
        reply = super().record_envelope(envelope)
        time.sleep(self.delay)  # blocks the sink's event loop, which serves one client here
        return reply


def write_config(path: Path, imap: ImapServerHandle, smtp_port: int, database_url: str) -> Path:
    """Write the daemon's configuration: the test suite's one, with INFO logs and no attempt limit in practice."""
    text = CONFIG_TEMPLATE.format(
        imap_port=imap.port,
        poll_interval=1,
        imap_user=imap.user,
        imap_password=imap.password,
        batch_size=2,  # small batches: a commit every other message, so there is room for 100 kills
        imap_extra="",
        smtp_port=smtp_port,
        mailbox=MAILBOX,
        database_url=database_url,
        units_file=(SHARED / "corpus" / "units.toml").as_posix(),
        approval_secret=APPROVAL_SECRET,
        approval_extra="",
        extra="",
    )
    # Each kill leaves the claimed mails one attempt older, so the limit must not turn kills into failures.
    text = text.replace('log_level = "DEBUG"', 'log_level = "INFO"').replace(
        "retry_max = 2", "retry_max = 2\nmax_attempts = 100000"
    )
    path.write_text(text, encoding="utf-8")
    return path


def start_daemon(config: Path, log_path: Path) -> subprocess.Popen[bytes]:
    with log_path.open("ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "daemon.cli", "--config", str(config), "run"],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=config.parent,
        )


def stop_daemon(process: subprocess.Popen[bytes]) -> int:
    process.send_signal(signal.SIGTERM)
    return process.wait(timeout=60)


def kill_daemon(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.02)
    raise TimeoutError(f"timed out after {timeout} s waiting for {what}")


class Database:
    """Queries that count messages and outbox mails in the daemon's database."""

    def __init__(self, session_factory: sessionmaker[Session]) -> None:
        self.session_factory = session_factory

    def stored(self) -> int:
        with self.session_factory() as session:
            return session.scalar(select(func.count(Message.id))) or 0

    def unsent(self) -> int:
        with self.session_factory() as session:
            return session.scalar(select(func.count(OutboxMail.id)).where(OutboxMail.state != OutboxState.SENT)) or 0

    def queued_message_ids(self) -> set[str]:
        with self.session_factory() as session:
            return set(session.scalars(select(OutboxMail.message_id)))

    def messages(self) -> list[Message]:
        with self.session_factory() as session:
            return list(session.scalars(select(Message)))


def kill_during_ingest(
    database: Database, config: Path, log_path: Path, total: int, kills: int, rng: random.Random
) -> list[float]:
    """Kill the daemon ``kills`` times, each time 0-20 ms after it has stored 1 to 6 more messages (seeded).

    Each run therefore gets a few messages further: the daemon is killed while it ingests, not
    while it starts, and 100 kills fit into 1,000 messages. Once the backlog is nearly done, no
    more kills are made.
    """
    lifetimes = []
    for _kill in range(kills):
        needed = database.stored() + rng.randint(1, 6)
        if needed > total - 5:
            break
        process = start_daemon(config, log_path)
        started = time.monotonic()
        try:
            wait_until(lambda n=needed: database.stored() >= n, 120, f"{needed} stored messages")
            time.sleep(rng.uniform(0, 0.02))
        finally:
            kill_daemon(process)
        lifetimes.append(time.monotonic() - started)
    return lifetimes


def kill_during_delivery(
    sink: SmtpSink, config: Path, log_path: Path, receipts: int, kills: int, delay: float, rng: random.Random
) -> list[float]:
    """Kill the daemon once per seeded target: when the sink has received that many mails, plus 0 to ``delay`` s."""
    targets = sorted(rng.sample(range(1, receipts), kills))
    lifetimes = []
    for target in targets:
        process = start_daemon(config, log_path)
        started = time.monotonic()
        try:
            wait_until(lambda t=target: len(sink.received) >= t, 120, f"{target} delivered mails")
            time.sleep(rng.uniform(0, delay))
        finally:
            kill_daemon(process)
        lifetimes.append(time.monotonic() - started)
    return lifetimes


def finish(database: Database, config: Path, log_path: Path, total: int) -> float:
    """Run the daemon until every message is stored and every mail sent; return the seconds it took."""
    started = time.monotonic()
    process = start_daemon(config, log_path)
    try:
        wait_until(lambda: database.stored() == total and database.unsent() == 0, 600, "stored and sent")
    finally:
        code = stop_daemon(process)
    if code != 0:
        raise RuntimeError(f"the daemon exited with code {code}; log {log_path}")
    return time.monotonic() - started


def report(database: Database, sink: SmtpSink, total: int, kills: int) -> dict[str, object]:
    messages = database.messages()
    uids = Counter(m.uid for m in messages)
    message_ids = Counter(m.message_id for m in messages)
    delivered = Counter(str(message_from_bytes(mail.data)["Message-ID"]) for mail in sink.received)
    queued = database.queued_message_ids()
    return {
        "messages": total,
        "kills": kills,
        "stored": len(messages),
        "lost": total - len(uids),
        "stored_twice": sum(count - 1 for count in message_ids.values()),
        "registered": sum(1 for m in messages if m.state is MessageState.REGISTERED),
        "held": sum(1 for m in messages if m.state is MessageState.HELD),
        "queued_mails": len(queued),
        "mails_never_delivered": len(queued - set(delivered)),
        "mails_delivered_twice_or_more": sum(1 for count in delivered.values() if count > 1),
        "extra_deliveries": sum(count - 1 for count in delivered.values()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mode", choices=("ingest", "outbox"), default="ingest")
    parser.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--count", type=int, default=1000, help="messages to ingest (default 1000)")
    parser.add_argument("--kills", type=int, default=100, help="SIGKILLs before the final run (default 100)")
    parser.add_argument(
        "--delay", type=float, default=0.1, help="outbox mode: seconds the sink waits before 250 (default 0.1)"
    )
    parser.add_argument("--seed", type=int, default=20261205)
    parser.add_argument("--keep", action="store_true", help="keep the working directory (logs, database)")
    args = parser.parse_args()

    rng = random.Random(args.seed)
    workdir = Path(tempfile.mkdtemp(prefix="zwxx-crash-"))
    server = DovecotServer(user="bench", password="bench-pass")
    server.start()
    imap = ImapServerHandle(ImapServerKind.DOVECOT, server)
    sink: SmtpSink = SlowSmtpSink(delay=args.delay) if args.mode == "outbox" else SmtpSink()
    sink.start()
    pg_name = None
    engine = None
    try:
        if args.database == "postgresql":
            pg_name, database_url = postgres_database()
        else:
            database_url = f"sqlite:///{workdir / 'zwxx.sqlite3'}"
        engine = create_db_engine(database_url)
        upgrade_database(engine)
        database = Database(make_session_factory(engine))
        config = write_config(workdir / "config.toml", imap, sink.port or 0, database_url)
        log_path = workdir / "daemon.log"
        imap.append_many(distinct_copies(SHARED, args.count))
        started = time.monotonic()

        if args.mode == "ingest":
            lifetimes = kill_during_ingest(database, config, log_path, args.count, args.kills, rng)
        else:
            # Ingest everything with the SMTP server down, so that all receipts wait in the outbox.
            sink.stop()
            process = start_daemon(config, log_path)
            try:
                wait_until(lambda: database.stored() == args.count, 600, "all messages stored")
            finally:
                stop_daemon(process)
            sink.start()
            receipts = len(database.queued_message_ids())
            lifetimes = kill_during_delivery(sink, config, log_path, receipts, args.kills, args.delay, rng)

        final_seconds = finish(database, config, log_path, args.count)
        result = report(database, sink, args.count, len(lifetimes))
        log_text = log_path.read_text(errors="replace")
        result.update(
            mode=args.mode,
            database=args.database,
            seed=args.seed,
            sink_delay_seconds=args.delay if args.mode == "outbox" else 0,
            interrupted_mails_requeued_warnings=log_text.count("were interrupted while sending"),
            median_daemon_lifetime_seconds=round(sorted(lifetimes)[len(lifetimes) // 2], 2) if lifetimes else 0,
            final_run_seconds=round(final_seconds, 1),
            total_seconds=round(time.monotonic() - started, 1),
        )
        print(json.dumps(result, indent=2))
    finally:
        if engine is not None:
            engine.dispose()
        sink.stop()
        server.cleanup()
        if pg_name is not None:
            drop_postgres(pg_name)
        if args.keep:
            print(f"working directory kept: {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
