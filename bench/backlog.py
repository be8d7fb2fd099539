"""Backlog ingest benchmark: N corpus-like messages in a local Dovecot (or pymap), one poll, timed.

Measures zwxx end to end: fetch, durable raw bytes and record, parse, document text, receipt queued.
Run from the repository root:  python -m bench.backlog --count 1000 --database sqlite
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from sqlalchemy import func, select

from bench.common import SHARED, write_config
from daemon.app import build_app
from daemon.config import load_settings
from daemon.db import upgrade_database
from daemon.intake import close_imap, connect_imap, poll_folder
from daemon.logsetup import setup_logging
from daemon.models import Item, Message, OutboxMail
from tests.servers.dovecot import DovecotServer, find_dovecot_executable
from tests.servers.handle import ImapServerHandle, ImapServerKind

MESSAGE_ID = re.compile(rb"^(Message-ID:\s*<)", re.IGNORECASE | re.MULTILINE)


def corpus_like(count: int) -> list[bytes]:
    """Return ``count`` distinct messages cycled from the corpus, each with its own Message-ID."""
    sources = [path.read_bytes() for path in sorted((SHARED / "corpus" / "eml").glob("*.eml"))]
    return [MESSAGE_ID.sub(rb"\g<1>bench%d." % index, sources[index % len(sources)], count=1) for index in range(count)]


def postgres_database() -> tuple[str, str]:
    import psycopg

    name = f"zwxx_bench_{os.getpid()}"
    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}"')
        connection.execute(f'CREATE DATABASE "{name}"')
    return name, f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"


def drop_postgres(name: str) -> None:
    import psycopg

    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def run_once(imap: ImapServerHandle, workdir: Path, database: str, raws: list[bytes]) -> dict[str, float]:
    imap.reset()
    imap.append_many(raws)
    pg_name = None
    if database == "postgresql":
        pg_name, url = postgres_database()
    else:
        url = f"sqlite:///{workdir / 'zwxx.db'}"
    config = write_config(
        workdir / "config.toml",
        port=imap.port,
        user=imap.user,
        password=imap.password,
        database_url=url,
        archive=workdir / "archive",
    )
    app = build_app(load_settings(config))
    try:
        upgrade_database(app.engine)
        started = time.perf_counter()
        client = connect_imap(app.settings)
        try:
            summary = poll_folder(client, app.session_factory, app.context)
        finally:
            close_imap(client)
        elapsed = time.perf_counter() - started
        with app.session_factory() as session:
            stored = session.scalar(select(func.count(Message.id)))
            items = session.scalar(select(func.count(Item.id)))
            queued = session.scalar(select(func.count(OutboxMail.id)))
    finally:
        app.close()
        if pg_name:
            drop_postgres(pg_name)
    assert summary.stored == stored == len(raws), (summary.stored, stored)
    return {"seconds": elapsed, "rate": len(raws) / elapsed, "items": items or 0, "receipts": queued or 0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=1000, help="messages in the backlog")
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--runs", type=int, default=3, help="repetitions; the median is reported")
    args = parser.parse_args()
    setup_logging("WARNING")

    raws = corpus_like(args.count)
    megabytes = sum(len(r) for r in raws) / 1e6
    if find_dovecot_executable() is None:
        from daemon.embedded import EmbeddedImapServer

        server = EmbeddedImapServer(user="bench", password="bench-pass")
        kind = ImapServerKind.PYMAP
    else:
        server = DovecotServer(user="bench", password="bench-pass")
        kind = ImapServerKind.DOVECOT
    server.start()
    handle = ImapServerHandle(kind, server)
    results = []
    try:
        for run in range(1, args.runs + 1):
            workdir = Path(tempfile.mkdtemp(prefix="zwxx-bench-"))
            try:
                result = run_once(handle, workdir, args.database, raws)
            finally:
                shutil.rmtree(workdir, ignore_errors=True)
            results.append(result)
            print(
                f"run {run}: {args.count} messages ({megabytes:.1f} MB) in {result['seconds']:.2f} s = "
                f"{result['rate']:.0f} messages/s; {result['items']} items, {result['receipts']} receipts queued"
            )
    finally:
        if hasattr(server, "cleanup"):
            server.cleanup()
        else:
            server.stop()
    rates = [r["rate"] for r in results]
    print(
        f"{kind} + {args.database}: median {statistics.median(rates):.0f} messages/s "
        f"(min {min(rates):.0f}, max {max(rates):.0f}) over {len(rates)} runs"
    )


if __name__ == "__main__":
    main()
