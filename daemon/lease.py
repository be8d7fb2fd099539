"""Leadership among daemons that share one database: only the node holding the lease polls, schedules and sends.

PostgreSQL: a session-level advisory lock held on a connection of its own. The server releases it
when that connection ends, so a node that is killed loses the lease at once, and a standby that
tries again every ``general.standby_interval`` seconds takes over within that time.

SQLite: an exclusive ``flock`` on a file beside the database, which the kernel releases when the
process dies. So two daemons on one SQLite file (one machine) behave like two PostgreSQL nodes.
"""

from __future__ import annotations

import fcntl
import logging
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Protocol

from sqlalchemy import Connection, Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import NullPool

log = logging.getLogger(__name__)

# Advisory lock key: the first eight bytes of "zwxx" plus the account would do, but a constant
# keeps it simple to inspect (SELECT * FROM pg_locks WHERE locktype = 'advisory').
ADVISORY_KEY = 0x7A777878  # "zwxx"


@dataclass(frozen=True)
class LeaseHolder:
    """The holder of the lease, as far as the lock shows it (for `zwxx doctor`)."""

    pid: int  # the PostgreSQL server process of the holder's session, or the holding daemon's own pid
    client: str | None  # the client address PostgreSQL records for the holder; None on this machine
    since: datetime | None


class Lease(Protocol):
    def holder(self) -> LeaseHolder | None:
        """Return the holder of the lease, or None when the lease is free or its holder is unknown."""
        ...

    def try_acquire(self) -> bool:
        """Take the lease unless another node has it; return whether this node has it now."""
        ...

    def still_held(self) -> bool:
        """Return whether this node still holds the lease (False once its connection is gone)."""
        ...

    def release(self) -> None: ...


class PostgresLease:
    """A PostgreSQL advisory lock on a dedicated connection."""

    def __init__(self, engine: Engine, key: int = ADVISORY_KEY) -> None:
        # The lock lives as long as its connection, so that connection never goes back to a pool.
        self.engine = create_engine(engine.url, poolclass=NullPool)
        self.key = key
        self.connection: Connection | None = None
        self.unreachable = False  # the last try could not reach the database (rather than finding the lock taken)

    def try_acquire(self) -> bool:
        if self.connection is not None:
            return self.still_held()
        try:
            connection = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        except SQLAlchemyError as exc:
            self.unreachable = True
            log.debug("lease: cannot connect to the database: %s", exc)
            return False
        self.unreachable = False
        try:
            held = bool(connection.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": self.key}).scalar())
        except SQLAlchemyError as exc:
            self.unreachable = True
            log.debug("lease: cannot ask for the advisory lock: %s", exc)
            connection.invalidate()
            return False
        if not held:
            connection.close()
            return False
        self.connection = connection
        return True

    def holder(self) -> LeaseHolder | None:
        try:
            with self.engine.connect() as connection:
                row = connection.execute(
                    text(
                        "SELECT a.pid, host(a.client_addr), a.backend_start"
                        " FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid"
                        " WHERE l.locktype = 'advisory' AND l.objid = :key AND l.granted"
                        " AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())"
                    ),
                    {"key": self.key},
                ).first()
        except SQLAlchemyError as exc:
            log.debug("lease: cannot read the advisory lock's holder: %s", exc)
            return None
        if row is None:
            return None
        since = row[2]
        if isinstance(since, datetime) and since.tzinfo is None:
            since = since.replace(tzinfo=UTC)
        return LeaseHolder(pid=int(row[0]), client=row[1], since=since)

    def still_held(self) -> bool:
        if self.connection is None:
            return False
        try:
            held = self.connection.execute(
                text(
                    "SELECT count(*) FROM pg_locks"
                    " WHERE locktype = 'advisory' AND objid = :key AND pid = pg_backend_pid()"
                ),
                {"key": self.key},
            ).scalar()
        except SQLAlchemyError as exc:
            log.error("lease lost: its database connection failed: %s", exc)
            self._drop()
            return False
        if not held:
            log.error("lease lost: the advisory lock is no longer held")
            self._drop()
        return bool(held)

    def release(self) -> None:
        if self.connection is None:
            return
        try:
            self.connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": self.key})
        except SQLAlchemyError:
            pass  # the lock goes with the connection anyway
        self._drop()

    def _drop(self) -> None:
        connection, self.connection = self.connection, None
        if connection is not None:
            try:
                connection.close()
            except SQLAlchemyError:
                connection.invalidate()


class FileLease:
    """An exclusive flock on a file; for SQLite, whose database is on this machine."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.handle: IO[bytes] | None = None

    def try_acquire(self) -> bool:
        if self.handle is not None:
            return True
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = self.path.open("ab")
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            return False
        handle.truncate(0)
        handle.write(f"{os.getpid()}\n".encode())
        handle.flush()
        self.handle = handle
        return True

    def holder(self) -> LeaseHolder | None:
        """Return the pid that the holding daemon wrote into the lock file, and when it wrote it."""
        try:
            text_pid = self.path.read_text(encoding="ascii").strip()
            since = datetime.fromtimestamp(self.path.stat().st_mtime, tz=UTC)
        except (OSError, UnicodeDecodeError):
            return None
        return LeaseHolder(pid=int(text_pid), client=None, since=since) if text_pid.isdigit() else None

    def still_held(self) -> bool:
        return self.handle is not None

    def release(self) -> None:
        if self.handle is not None:
            fcntl.flock(self.handle.fileno(), fcntl.LOCK_UN)
            self.handle.close()
            self.handle = None


def make_lease(engine: Engine, database_url: str) -> Lease:
    """Return the lease that fits the database: an advisory lock, or a lock file beside a SQLite file."""
    url = make_url(database_url)
    if url.get_backend_name() == "postgresql":
        return PostgresLease(engine)
    name = url.database or ""
    if not name or name == ":memory:":
        return FileLease(Path.cwd() / ".zwxx-memory.lock")
    return FileLease(Path(name).with_name(Path(name).name + ".lock"))
