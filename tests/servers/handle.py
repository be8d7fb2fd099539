"""One interface for the test IMAP server, whether it is Dovecot or the embedded pymap server."""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Iterable
from typing import Protocol

from imapclient import IMAPClient


class ImapServerKind(enum.StrEnum):
    """Which server implementation backs a handle."""

    DOVECOT = "dovecot"
    PYMAP = "pymap"


class ImapServerProcess(Protocol):
    """What a handle needs from a server object (``DovecotServer`` or ``EmbeddedImapServer``)."""

    host: str
    port: int | None
    user: str
    password: str
    startup_seconds: float | None

    @property
    def pid(self) -> int | None: ...

    @property
    def running(self) -> bool: ...

    def start(self) -> None: ...

    def stop(self, timeout: float = ...) -> None: ...


class ImapServerHandle:
    """A running IMAP server on 127.0.0.1 with one account, plus helpers to fill and empty it.

    ``stop()`` then ``start()`` brings the server back on the same port. Dovecot keeps the mail
    across the restart; pymap keeps mail in memory, so after a restart it starts empty.
    """

    def __init__(self, kind: ImapServerKind, server: ImapServerProcess) -> None:
        self.kind = kind
        self.server = server

    @property
    def host(self) -> str:
        """Address the server listens on (always 127.0.0.1 here)."""
        return self.server.host

    @property
    def port(self) -> int:
        """Plain-text IMAP port (no TLS)."""
        if self.server.port is None:
            raise RuntimeError(f"{self.kind} server has not been started")
        return self.server.port

    @property
    def user(self) -> str:
        """Login name of the only account."""
        return self.server.user

    @property
    def password(self) -> str:
        """Password of the only account."""
        return self.server.password

    @property
    def keeps_mail_across_restart(self) -> bool:
        """Whether ``stop()`` then ``start()`` preserves folders and messages."""
        return self.kind is ImapServerKind.DOVECOT

    def client(self, timeout: float = 30.0) -> IMAPClient:
        """Return a new logged-in client on the plain port; the caller logs out."""
        client = IMAPClient(self.host, self.port, ssl=False, timeout=timeout)
        client.login(self.user, self.password)
        return client

    def append(
        self,
        raw: bytes,
        folder: str = "INBOX",
        flags: Iterable[str | bytes] = (),
        msg_time: dt.datetime | None = None,
    ) -> int:
        """Append one message and return its UID (from the server's APPENDUID response, RFC 4315)."""
        with self.client() as client:
            response = client.append(folder, raw, flags=tuple(flags), msg_time=msg_time)
            return parse_appenduid(response)

    def append_many(self, raws: Iterable[bytes], folder: str = "INBOX", batch_size: int = 100) -> list[int]:
        """Append messages with MULTIAPPEND (RFC 3502), ``batch_size`` per command; return their UIDs."""
        uids: list[int] = []
        batch: list[bytes] = []
        with self.client() as client:
            for raw in raws:
                batch.append(raw)
                if len(batch) == batch_size:
                    uids.extend(multiappend_batch(client, folder, batch))
                    batch = []
            if batch:
                uids.extend(multiappend_batch(client, folder, batch))
        return uids

    def create_folder(self, name: str) -> None:
        """Create a folder; ``name`` uses "/" as the hierarchy separator on both servers."""
        with self.client() as client:
            client.create_folder(name)

    def delete_folder(self, name: str) -> None:
        """Delete a folder and the messages in it."""
        with self.client() as client:
            client.delete_folder(name)

    def list_folders(self) -> list[str]:
        """Return the names of all folders, INBOX included."""
        with self.client() as client:
            return [name for _flags, _delimiter, name in client.list_folders()]

    def reset(self) -> None:
        """Delete every folder except INBOX and every message in INBOX."""
        with self.client() as client:
            names = [name for _flags, _delimiter, name in client.list_folders()]
            # Children before parents, because some servers reject deleting a folder that has children.
            others = sorted((name for name in names if name.upper() != "INBOX"), key=len, reverse=True)
            for name in others:
                client.delete_folder(name)

            client.select_folder("INBOX")
            uids = client.search("ALL")
            if uids:
                client.delete_messages(uids)
                client.expunge()
            client.close_folder()

    def stop(self) -> None:
        """Stop the server process by its PID."""
        self.server.stop()

    def start(self) -> None:
        """Start the server again on the same port (no-op when it is running)."""
        self.server.start()

    def describe(self) -> str:
        """Return a one-line description for test reports."""
        started = self.server.startup_seconds
        timing = f", started in {started:.3f} s" if started is not None else ""
        return f"{self.kind} on {self.host}:{self.server.port} (pid {self.server.pid}{timing})"


def multiappend_batch(client: IMAPClient, folder: str, raws: list[bytes]) -> list[int]:
    """Append ``raws`` in one MULTIAPPEND command and return their UIDs."""
    # Unlike append(), imapclient 4.1's multiappend() returns the raw (status, [response]) pair.
    _status, lines = client.multiappend(folder, raws)
    return parse_appenduid_set(lines[-1])


def parse_appenduid(response: bytes) -> int:
    """Return the UID from an APPEND response such as b"[APPENDUID 1796417977 1] Append completed".

    Raises:
        ValueError: the response has no APPENDUID code (the server lacks UIDPLUS) or names several UIDs.
    """
    uids = parse_appenduid_set(response)
    if len(uids) != 1:
        raise ValueError(f"expected one UID in the APPEND response, got {len(uids)}")
    return uids[0]


def parse_appenduid_set(response: bytes) -> list[int]:
    """Return the UIDs of an APPENDUID response code, expanding a set like "5:7,9" (RFC 4315).

    Raises:
        ValueError: the response has no APPENDUID code (the server lacks UIDPLUS).
    """
    text = response.decode("ascii", errors="replace")
    marker = "[APPENDUID "
    start = text.find(marker)
    if start < 0:
        raise ValueError(f"APPEND response has no APPENDUID code: {text!r}")
    _uidvalidity, uid_set = text[start + len(marker) :].split("]", 1)[0].split()

    uids: list[int] = []
    for member in uid_set.split(","):
        first, _colon, last = member.partition(":")
        low, high = sorted((int(first), int(last or first)))
        uids.extend(range(low, high + 1))
    return uids
