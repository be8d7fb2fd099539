"""The IMAP poller; with daemon.postaction, the only code that talks IMAP.

poll_folder fetches UIDs above the stored high-water mark in batches, hands each batch to
store.ingest_batch (which commits it), and only then applies the post-action on the server.
On a backlog, worker processes (daemon.reading.ParsePool) parse one batch while this process
stores the one before. A batch FETCH that fails is retried one message at a time on a fresh
connection. A message whose FETCH keeps failing is stored as quarantined, so it never blocks
the folder.
"""

from __future__ import annotations

import logging
import os
import socket
import ssl
import tempfile
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientAbortError, IMAPClientError, LoginError
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from daemon import __version__
from daemon.config import ImapSecurity, Settings
from daemon.errors import ImapError, ImapLoginError, connection_failure
from daemon.models import FolderState, Message
from daemon.postaction import apply_server_actions, chunked
from daemon.reading import ParseFailure, ParsePool
from daemon.register import RegisterContext
from daemon.store import (
    FetchedMessage,
    IngestOutcome,
    SourceKey,
    ingest_batch,
    quarantine_unfetchable,
    record_fetch_failure,
)
from parsers.model import ParsedMessage

log = logging.getLogger(__name__)

# Errors that mean the connection or the server failed; the caller reconnects with backoff.
IMAP_FAILURES: tuple[type[BaseException], ...] = (IMAPClientError, OSError, socket.timeout, ssl.SSLError)

# Searching a whole large folder at once yields a reply line longer than imaplib accepts
# (1,000,000 bytes); searching in UID ranges keeps each reply small.
SEARCH_SPAN = 20_000
# A batch is cut early once its messages add up to this many bytes.
BATCH_BYTES = 32 * 1024 * 1024
# A message larger than this (by RFC822.SIZE) is fetched in a batch of its own, so at most one
# large message is held in memory at a time.
LARGE_MESSAGE_BYTES = 4 * 1024 * 1024
# A UID whose FETCH failed on its own this many times, in any number of polls, is quarantined.
MAX_FETCH_ATTEMPTS = 3
FETCH_ITEMS = ["BODY.PEEK[]", "INTERNALDATE"]
# A large message is fetched in pieces of this many bytes (see fetch_in_chunks).
FETCH_CHUNK_BYTES = 1024 * 1024
# A poll with at least this many new messages parses them in worker processes. Starting the
# workers takes about a second, which costs more than it saves on fewer messages.
POOL_MIN_MESSAGES = 50


@dataclass
class PollSummary:
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    stored: int = 0
    already_stored: int = 0
    resynced: int = 0
    server_actions: int = 0
    uidvalidity_changed: bool = False
    fetch_failures: int = 0  # single-message FETCHes that failed in this poll
    unfetchable: int = 0  # messages quarantined in this poll because their FETCH kept failing
    reconnects: int = 0

    @property
    def new(self) -> int:
        return self.stored


def connect_imap(settings: Settings) -> IMAPClient:
    """Connect, log in and send ID where the server offers it; raise ImapError on failure."""
    imap = settings.imap
    context = ssl.create_default_context(cafile=str(imap.ca_file) if imap.ca_file else None)
    try:
        client = IMAPClient(
            imap.host,
            port=imap.port,
            ssl=imap.security is ImapSecurity.IMAPS,
            ssl_context=context if imap.security is ImapSecurity.IMAPS else None,
            timeout=imap.timeout,
        )
        client.normalise_times = False  # INTERNALDATE as aware datetimes, not local naive ones
        if imap.security is ImapSecurity.STARTTLS:
            client.starttls(context)
        try:
            client.login(imap.username, settings.imap_password())
        except LoginError as exc:
            client.shutdown()
            source = f"环境变量 {imap.password_env}" if imap.password_env else "配置项 imap.password"
            raise ImapLoginError(
                f"IMAP 服务器 {imap.host}:{imap.port} 拒绝登录：请检查 imap.username（{imap.username}）"
                f"和密码（取自{source}）"
            ) from exc
        # RFC 2971. 163/126 mailboxes reject SELECT ("Unsafe Login") until the client identifies itself.
        if imap.send_id and client.has_capability("ID"):
            client.id_({"name": "zwxx", "version": __version__})
    except IMAP_FAILURES as exc:
        raise ImapError(
            f"无法连接 IMAP 服务器 {imap.host}:{imap.port}：{connection_failure(exc)}；"
            "请检查 imap.host、imap.port 和 imap.security"
        ) from exc
    log.info("connected to IMAP server %s:%d as %s", imap.host, imap.port, imap.username)
    return client


def close_imap(client: IMAPClient) -> None:
    """Log out, or just close the socket when the connection is already broken."""
    try:
        client.logout()
    except IMAP_FAILURES:
        try:
            client.shutdown()
        except IMAP_FAILURES:
            pass


def _uid_ranges(start: int, uidnext: int | None) -> Iterator[str]:
    if uidnext is None or uidnext <= start:
        yield f"{start}:*"
        return
    for low in range(start, uidnext, SEARCH_SPAN):
        yield f"{low}:{min(low + SEARCH_SPAN - 1, uidnext - 1)}"


def search_new_uids(client: IMAPClient, highest_uid: int, uidnext: int | None) -> list[int]:
    """Return the UIDs above ``highest_uid`` in ascending order, searching in bounded UID ranges."""
    found: set[int] = set()
    for uid_range in _uid_ranges(highest_uid + 1, uidnext):
        # "N:*" also matches the highest existing UID when it is below N (RFC 3501 6.4.8), hence the filter.
        found.update(uid for uid in client.search(["UID", uid_range]) if uid > highest_uid)
    return sorted(found)


def _batches(sizes: dict[int, int], batch_size: int) -> Iterator[list[int]]:
    """Group UIDs into FETCH batches bounded by count and bytes; a large message gets a batch alone."""
    batch: list[int] = []
    total = 0
    for uid in sorted(sizes):
        if sizes[uid] > LARGE_MESSAGE_BYTES:
            if batch:
                yield batch
                batch, total = [], 0
            yield [uid]
            continue
        if batch and (len(batch) >= batch_size or total + sizes[uid] > BATCH_BYTES):
            yield batch
            batch, total = [], 0
        batch.append(uid)
        total += sizes[uid]
    if batch:
        yield batch


def _load_folder_state(
    session_factory: sessionmaker[Session],
    account: str,
    folder: str,
    uidvalidity: int,
    now: datetime,
    summary: PollSummary,
) -> int:
    """Return the high-water UID for this UIDVALIDITY, resetting it when the folder was recreated."""
    with session_factory.begin() as session:
        state = session.scalar(select(FolderState).where(FolderState.account == account, FolderState.folder == folder))
        if state is None:
            session.add(
                FolderState(account=account, folder=folder, uidvalidity=uidvalidity, highest_uid=0, updated_at=now)
            )
            return 0
        if state.uidvalidity != uidvalidity:
            log.warning(
                "folder %s: UIDVALIDITY changed from %d to %d, re-syncing by content hash",
                folder,
                state.uidvalidity,
                uidvalidity,
            )
            state.uidvalidity, state.highest_uid, state.updated_at = uidvalidity, 0, now
            summary.uidvalidity_changed = True
        return state.highest_uid


class ImapLink:
    """The poller's IMAP connection, which a failed FETCH may replace with a fresh one.

    Callers that keep polling on one connection (the runner) hold a link and always use
    ``link.client``, since a poll may have swapped it.
    """

    def __init__(self, settings: Settings, client: IMAPClient | None = None) -> None:
        self.settings = settings
        self._client = client

    @property
    def client(self) -> IMAPClient:
        """The current connection, opened on first use; raises ImapError when it cannot be opened."""
        if self._client is None:
            self._client = connect_imap(self.settings)
        return self._client

    @property
    def connected(self) -> IMAPClient | None:
        """The current connection, or None when none is open."""
        return self._client

    def reconnect(self) -> IMAPClient:
        """Drop the current connection without LOGOUT and open a new one; raise ImapError on failure.

        After a malformed response the old stream is out of step with the server, so LOGOUT
        could read garbage; the socket is just shut down.
        """
        old, self._client = self._client, None
        if old is not None:
            try:
                old.shutdown()
            except IMAP_FAILURES:
                pass
        return self.client

    def close(self) -> None:
        if self._client is not None:
            close_imap(self._client)
            self._client = None


@dataclass
class _ParsingBatch:
    """A fetched batch whose messages the worker processes are parsing."""

    messages: list[FetchedMessage]
    reads: list[Future[ParsedMessage | ParseFailure]]


@dataclass
class _FolderPoll:
    """State of one poll of one folder, shared by the fetch helpers."""

    link: ImapLink
    session_factory: sessionmaker[Session]
    ctx: RegisterContext
    folder_key: SourceKey  # uid unused
    summary: PollSummary
    pool: ParsePool | None = None
    parsing: _ParsingBatch | None = None  # fetched and being parsed, not yet stored
    done: int = 0  # new messages handled so far
    total: int = 0
    progress: Callable[[int, int], None] | None = None

    def source(self, uid: int) -> SourceKey:
        key = self.folder_key
        return SourceKey(key.account, key.folder, key.uidvalidity, uid)


def poll_folder(
    client: IMAPClient | ImapLink,
    session_factory: sessionmaker[Session],
    ctx: RegisterContext,
    folder: str | None = None,
    *,
    progress: Callable[[int, int], None] | None = None,
) -> PollSummary:
    """Fetch, store and register every new message of one folder; raise ImapError on IMAP failure.

    ``progress`` is called after each batch with the number of new messages handled so far and
    their total (for a progress bar on a backlog).

    Given a bare IMAPClient, a connection opened to replace it after a failed FETCH is closed
    before returning and the caller's client is left broken (close_imap still closes it). Given an
    ImapLink, the replacement stays open in the link.
    """
    link = client if isinstance(client, ImapLink) else ImapLink(ctx.settings, client)
    try:
        return _poll_folder(link, session_factory, ctx, folder or ctx.settings.imap.folder, progress)
    finally:
        if not isinstance(client, ImapLink) and link.connected is not client:
            link.close()


def _poll_folder(
    link: ImapLink,
    session_factory: sessionmaker[Session],
    ctx: RegisterContext,
    folder: str,
    progress: Callable[[int, int], None] | None = None,
) -> PollSummary:
    settings = ctx.settings
    account = settings.general.account
    summary = PollSummary()
    uids: list[int] = []
    try:
        selected = _select(link.client, folder)
        uidvalidity = int(selected[b"UIDVALIDITY"])
        uidnext = int(selected[b"UIDNEXT"]) if b"UIDNEXT" in selected else None
        permanent_flags = tuple(selected.get(b"PERMANENTFLAGS", ()))
        highest = _load_folder_state(session_factory, account, folder, uidvalidity, ctx.clock.now(), summary)
        poll = _FolderPoll(link, session_factory, ctx, SourceKey(account, folder, uidvalidity, 0), summary)
        summary.server_actions += apply_server_actions(
            link.client, session_factory, settings, account, folder, uidvalidity, permanent_flags
        )
        uids = _drop_stored(session_factory, poll.folder_key, search_new_uids(link.client, highest, uidnext))
        if uids:
            log.info("poll %s: %d new message(s) in %s above UID %d", summary.run_id, len(uids), folder, highest)
        poll.total, poll.progress = len(uids), progress
        if progress is not None and uids:
            progress(0, len(uids))  # the bar shows before the first batch is stored
        poll.pool = _start_pool(settings, len(uids))
        try:
            for batch, batch_bytes in _size_batches(link, uids, settings.imap.batch_size):
                _ingest_batch(poll, batch, batch_bytes)
                summary.server_actions += apply_server_actions(
                    link.client, session_factory, settings, account, folder, uidvalidity, permanent_flags
                )
            if poll.parsing is not None:
                _store_parsing(poll)
                summary.server_actions += apply_server_actions(
                    link.client, session_factory, settings, account, folder, uidvalidity, permanent_flags
                )
        except IMAP_FAILURES:
            _store_parsing(poll)  # what was fetched before the failure is stored; its flags wait
            raise
        finally:
            if poll.pool is not None:
                poll.pool.close()
    except IMAP_FAILURES as exc:
        raise ImapError(f"收取文件夹 {folder} 时 IMAP 连接出错：{connection_failure(exc)}") from exc
    if uids or summary.server_actions:
        log.info(
            "poll %s done: folder=%s stored=%d already_stored=%d resynced=%d server_actions=%d "
            "fetch_failures=%d unfetchable=%d reconnects=%d",
            summary.run_id,
            folder,
            summary.stored,
            summary.already_stored,
            summary.resynced,
            summary.server_actions,
            summary.fetch_failures,
            summary.unfetchable,
            summary.reconnects,
        )
    return summary


def _select(client: IMAPClient, folder: str) -> dict[bytes, Any]:
    """SELECT ``folder``; raise ImapError in Chinese when the server refuses it (no such folder)."""
    try:
        return client.select_folder(folder)
    except IMAPClientAbortError:
        raise
    except IMAPClientError as exc:
        raise ImapError(
            f"无法打开 IMAP 文件夹“{folder}”（服务器答复：{exc}）：请检查配置项 imap.folder 是否与邮箱中的文件夹名一致"
        ) from exc


def _drop_stored(session_factory: sessionmaker[Session], folder_key: SourceKey, uids: list[int]) -> list[int]:
    """Remove UIDs already stored; they lie above the high-water mark only while a lower UID keeps failing."""
    if not uids:
        return uids
    with session_factory() as session:
        stored = set(
            session.scalars(
                select(Message.uid).where(
                    Message.account == folder_key.account,
                    Message.folder == folder_key.folder,
                    Message.uidvalidity == folder_key.uidvalidity,
                    Message.uid >= uids[0],
                )
            )
        )
    return [uid for uid in uids if uid not in stored]


def _size_batches(link: ImapLink, uids: list[int], batch_size: int) -> Iterator[tuple[list[int], int]]:
    """Yield FETCH batches with their total RFC822.SIZE in bytes."""
    for chunk in chunked(uids, batch_size):
        response = link.client.fetch(chunk, ["RFC822.SIZE"])
        sizes = {uid: int(data.get(b"RFC822.SIZE", 0)) for uid, data in response.items()}
        for batch in _batches(sizes, batch_size):
            yield batch, sum(sizes[uid] for uid in batch)


def _reconnect(poll: _FolderPoll) -> None:
    """Open a fresh connection and select the folder again; raise ImapError if UIDVALIDITY changed."""
    poll.summary.reconnects += 1
    client = poll.link.reconnect()
    selected = client.select_folder(poll.folder_key.folder)
    uidvalidity = int(selected[b"UIDVALIDITY"])
    if uidvalidity != poll.folder_key.uidvalidity:
        raise ImapError(
            f"UIDVALIDITY of {poll.folder_key.folder} changed from {poll.folder_key.uidvalidity} to "
            f"{uidvalidity} during a poll; the next poll re-syncs"
        )


def _start_pool(settings: Settings, new_messages: int) -> ParsePool | None:
    """Start parse workers for a backlog; None when this poll parses in this process."""
    workers = settings.imap.parse_workers or os.cpu_count() or 1
    if workers < 2 or new_messages < POOL_MIN_MESSAGES:
        return None
    log.info("parsing %d new messages in %d worker processes", new_messages, workers)
    return ParsePool(settings, workers)


def _ingest_batch(poll: _FolderPoll, batch: list[int], batch_bytes: int) -> None:
    large = len(batch) == 1 and batch_bytes > LARGE_MESSAGE_BYTES
    try:
        if large:
            fetched = {batch[0]: fetch_in_chunks(poll.link.client, batch[0])}
        else:
            fetched = poll.link.client.fetch(batch, FETCH_ITEMS)
    except IMAP_FAILURES as exc:
        log.warning(
            "poll %s: FETCH of %d message(s), UIDs %d to %d, failed (%s: %s); reconnecting to fetch one at a time",
            poll.summary.run_id,
            len(batch),
            batch[0],
            batch[-1],
            type(exc).__name__,
            exc,
        )
        _store_parsing(poll)
        _reconnect(poll)
        if len(batch) == 1:
            _count_fetch_failure(poll, batch[0], exc)
            return
        for uid in batch:
            _fetch_alone(poll, uid)
        return
    # pop, so each message's bytes are freed once the batch is stored
    messages = [message for uid in batch if (message := _received(poll, uid, fetched.pop(uid, None))) is not None]
    if poll.pool is None or large:
        # A large message is parsed here: sending it to a worker would hold it twice.
        _store_parsing(poll)
        _store(poll, messages, None)
        return
    parsing = _ParsingBatch(messages, [poll.pool.submit(m.raw, m.internaldate) for m in messages])
    _store_parsing(poll)  # the batch before, while the workers parse this one
    poll.parsing = parsing


def _received(poll: _FolderPoll, uid: int, data: dict[bytes, object] | None) -> FetchedMessage | None:
    """Return a fetched message with its raw bytes written to the archive, or None if it vanished."""
    if data is None or b"BODY[]" not in data:
        # Expunged by another client between SEARCH and FETCH: nothing to store.
        log.warning("uid=%d vanished before it could be fetched", uid)
        poll.done += 1
        return None
    raw = data.pop(b"BODY[]")
    internaldate = data.get(b"INTERNALDATE")
    data_bytes = raw if isinstance(raw, bytes) else bytes(raw)  # type: ignore[call-overload]
    return FetchedMessage(
        poll.source(uid),
        data_bytes,
        _plain_offset(internaldate) if isinstance(internaldate, datetime) else None,
        # The raw mail is written before anything else; ingest_batch fsyncs it before its commit.
        poll.ctx.archive.put(data_bytes, sync=False),
    )


def _plain_offset(moment: datetime) -> datetime:
    """Return ``moment`` with a datetime.timezone offset: imapclient's own tzinfo cannot be pickled for a worker."""
    offset = moment.utcoffset()
    return moment if offset is None else moment.replace(tzinfo=timezone(offset))


def _store_parsing(poll: _FolderPoll) -> None:
    """Store the batch the workers are parsing, once its results are in."""
    parsing, poll.parsing = poll.parsing, None
    if parsing is None or poll.pool is None:
        return
    reads = poll.pool.collect(parsing.reads, [(m.raw, m.internaldate) for m in parsing.messages])
    _store(poll, parsing.messages, reads)


def _store(poll: _FolderPoll, messages: list[FetchedMessage], reads: list[ParsedMessage | ParseFailure] | None) -> None:
    """Commit one batch (store.ingest_batch) and count its outcomes."""
    if not messages:
        return
    results = ingest_batch(poll.session_factory, poll.ctx, messages, reads)
    summary = poll.summary
    for fetched, (outcome, message) in zip(messages, results, strict=True):
        if outcome == IngestOutcome.STORED:
            summary.stored += 1
        elif outcome == IngestOutcome.RESYNCED:
            summary.resynced += 1
        else:
            summary.already_stored += 1
        log.debug("uid=%d message-id=%s %s", fetched.source.uid, message.message_id, outcome)
    poll.done += len(messages)
    if poll.progress is not None:
        poll.progress(min(poll.done, poll.total), poll.total)


def fetch_in_chunks(client: IMAPClient, uid: int) -> dict[bytes, object]:
    """FETCH one message in BODY.PEEK[]<offset.length> pieces; return it as a one-message FETCH result.

    imaplib needs about 3.3 times a literal's size while reading it (measured with tracemalloc
    on Python 3.11.7). The pieces are therefore spooled to a temporary file and read back at
    once, so the whole message is held once, plus the overhead of one piece.
    """
    internaldate: object = None
    with tempfile.TemporaryFile(prefix="zwxx-fetch-") as spool:
        offset = 0
        while True:
            items = [f"BODY.PEEK[]<{offset}.{FETCH_CHUNK_BYTES}>"] + (["INTERNALDATE"] if offset == 0 else [])
            data = client.fetch([uid], items).get(uid)
            if data is None:
                return {}  # expunged meanwhile
            if offset == 0:
                internaldate = data.get(b"INTERNALDATE")
            piece = data.get(f"BODY[]<{offset}>".encode())
            if not isinstance(piece, bytes):
                break
            spool.write(piece)
            offset += len(piece)
            if len(piece) < FETCH_CHUNK_BYTES:
                break
        spool.seek(0)
        raw = spool.read(offset)
    return {b"BODY[]": raw, b"INTERNALDATE": internaldate}


def _fetch_alone(poll: _FolderPoll, uid: int) -> None:
    try:
        fetched = poll.link.client.fetch([uid], FETCH_ITEMS)
    except IMAP_FAILURES as exc:
        # Reconnect first: if the server is down, that raises and the failure is not held against the UID.
        _reconnect(poll)
        _count_fetch_failure(poll, uid, exc)
        return
    message = _received(poll, uid, fetched.pop(uid, None))
    _store(poll, [message] if message is not None else [], None)


def _count_fetch_failure(poll: _FolderPoll, uid: int, exc: BaseException) -> None:
    """Record a failed single-message FETCH; at MAX_FETCH_ATTEMPTS, quarantine what can be read of it."""
    error = f"{type(exc).__name__}: {exc}"
    attempts = record_fetch_failure(poll.session_factory, poll.source(uid), error, poll.ctx.clock.now())
    poll.summary.fetch_failures += 1
    poll.done += 1
    if attempts < MAX_FETCH_ATTEMPTS:
        log.warning(
            "uid=%d: FETCH failed on its own (%d of %d attempts): %s; it is tried again on the next poll",
            uid,
            attempts,
            MAX_FETCH_ATTEMPTS,
            error,
        )
        return
    header, text, internaldate = _salvage_parts(poll, uid)
    reason = _unfetchable_reason(attempts, has_header=header is not None, has_text=text is not None)
    quarantine_unfetchable(
        poll.session_factory,
        poll.ctx,
        poll.source(uid),
        (header or b"") + (text or b""),
        internaldate,
        reason,
        f"Last FETCH error after {attempts} attempts: {error}",
    )
    poll.summary.unfetchable += 1
    log.error(
        "uid=%d: FETCH failed %d times, stored as quarantined (header read: %s, text read: %s)",
        uid,
        attempts,
        header is not None,
        text is not None,
    )


def _salvage_parts(poll: _FolderPoll, uid: int) -> tuple[bytes | None, bytes | None, datetime | None]:
    """Fetch the header and the text of a message separately; return what could be read of each."""
    parts: dict[bytes, bytes | None] = {}
    internaldate: datetime | None = None
    for item, key in ((b"BODY.PEEK[HEADER]", b"BODY[HEADER]"), (b"BODY.PEEK[TEXT]", b"BODY[TEXT]")):
        try:
            data = poll.link.client.fetch([uid], [item.decode(), "INTERNALDATE"]).get(uid, {})
        except IMAP_FAILURES as exc:
            log.warning("uid=%d: FETCH %s failed too: %s", uid, item.decode(), exc)
            _reconnect(poll)
            parts[key] = None
            continue
        value = data.get(key)
        parts[key] = bytes(value) if isinstance(value, bytes | bytearray) else None
        date = data.get(b"INTERNALDATE")
        if isinstance(date, datetime):
            internaldate = date
    return parts[b"BODY[HEADER]"], parts[b"BODY[TEXT]"], internaldate


def _unfetchable_reason(attempts: int, *, has_header: bool, has_text: bool) -> str:
    failed = f"服务器返回的整封邮件（FETCH BODY[]）连续 {attempts} 次无法读取"
    if has_header and has_text:
        return (
            f"{failed}；已分别取回邮件头和正文（BODY[HEADER]、BODY[TEXT]）并拼接存档，"
            "可用 zwxx quarantine release 重新处理"
        )
    if has_header:
        return f"{failed}；只取回了邮件头并存档，正文无法读取"
    if has_text:
        return f"{failed}；只取回了正文并存档，邮件头无法读取"
    return f"{failed}；邮件头和正文也都无法读取，没有保存任何原始内容"
