"""The IMAP poller: the only code that talks IMAP.

poll_folder fetches UIDs above the stored high-water mark in batches, hands each message to
store.ingest_message (which commits it), and only then applies the post-action on the server.
"""

from __future__ import annotations

import logging
import socket
import ssl
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime

from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientError
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from daemon import __version__
from daemon.config import AfterStore, ImapSecurity, Settings
from daemon.errors import ImapError
from daemon.models import FolderState, Message, ServerAction
from daemon.register import RegisterContext
from daemon.store import IngestOutcome, SourceKey, ingest_message

log = logging.getLogger(__name__)

# Errors that mean the connection or the server failed; the caller reconnects with backoff.
IMAP_FAILURES: tuple[type[BaseException], ...] = (IMAPClientError, OSError, socket.timeout, ssl.SSLError)

# Searching a whole large folder at once yields a reply line longer than imaplib accepts
# (1,000,000 bytes); searching in UID ranges keeps each reply small.
SEARCH_SPAN = 20_000
# A batch is cut early once its messages add up to this many bytes.
BATCH_BYTES = 32 * 1024 * 1024


@dataclass
class PollSummary:
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    stored: int = 0
    already_stored: int = 0
    resynced: int = 0
    server_actions: int = 0
    uidvalidity_changed: bool = False

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
        client.login(imap.username, settings.imap_password())
        # RFC 2971. 163/126 mailboxes reject SELECT ("Unsafe Login") until the client identifies itself.
        if imap.send_id and client.has_capability("ID"):
            client.id_({"name": "zwxx", "version": __version__})
    except IMAP_FAILURES as exc:
        raise ImapError(f"IMAP connection to {imap.host}:{imap.port} failed: {exc}") from exc
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
    batch: list[int] = []
    total = 0
    for uid in sorted(sizes):
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


_warned_flags: set[str] = set()


def choose_flag(wanted: str, permanent_flags: tuple[bytes, ...]) -> str:
    """Return ``wanted`` if the folder keeps it, else \\Seen.

    A server keeps a keyword only if PERMANENTFLAGS lists it or ``\\*`` (RFC 3501 section 7.1);
    pymap, for one, accepts STORE of any keyword but silently drops it.
    """
    if wanted.startswith("\\") or not permanent_flags:
        return wanted
    names = {flag.decode("ascii", "replace").lower() for flag in permanent_flags}
    if "\\*" in names or wanted.lower() in names:
        return wanted
    if wanted not in _warned_flags:
        _warned_flags.add(wanted)
        log.warning(
            "the server does not keep the keyword %s (PERMANENTFLAGS %s); marking stored messages \\Seen instead",
            wanted,
            b" ".join(permanent_flags).decode("ascii", "replace"),
        )
    return "\\Seen"


def apply_server_actions(
    client: IMAPClient,
    session_factory: sessionmaker[Session],
    settings: Settings,
    account: str,
    folder: str,
    uidvalidity: int,
    permanent_flags: tuple[bytes, ...] = (),
) -> int:
    """Flag or move every committed message whose post-action is still pending; return how many."""
    with session_factory() as session:
        uids = list(
            session.scalars(
                select(Message.uid).where(
                    Message.account == account,
                    Message.folder == folder,
                    Message.uidvalidity == uidvalidity,
                    Message.server_action == ServerAction.PENDING,
                )
            )
        )
    if not uids:
        return 0
    imap = settings.imap
    moving = imap.after_store is AfterStore.MOVE
    if moving:
        _ensure_folder(client, imap.move_to)
    for chunk in _chunks(uids, 500):
        if moving and client.has_capability("MOVE"):
            client.move(chunk, imap.move_to)
        elif moving:
            # Without MOVE (RFC 6851) a copy is made and the original stays, flagged, in the folder.
            client.copy(chunk, imap.move_to)
            client.add_flags(chunk, [choose_flag(imap.flag, permanent_flags)])
        else:
            client.add_flags(chunk, [choose_flag(imap.flag, permanent_flags)])
        with session_factory.begin() as session:
            for message in session.scalars(
                select(Message).where(
                    Message.account == account,
                    Message.folder == folder,
                    Message.uidvalidity == uidvalidity,
                    Message.uid.in_(chunk),
                )
            ):
                message.server_action = ServerAction.DONE
    return len(uids)


def _chunks(values: list[int], size: int) -> Iterable[list[int]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def _ensure_folder(client: IMAPClient, name: str) -> None:
    if not client.folder_exists(name):
        client.create_folder(name)
        log.info("created IMAP folder %s for stored messages", name)


def poll_folder(
    client: IMAPClient, session_factory: sessionmaker[Session], ctx: RegisterContext, folder: str | None = None
) -> PollSummary:
    """Fetch, store and register every new message of one folder; raise ImapError on IMAP failure."""
    settings = ctx.settings
    account = settings.general.account
    folder = folder or settings.imap.folder
    summary = PollSummary()
    try:
        selected = client.select_folder(folder)
        uidvalidity = int(selected[b"UIDVALIDITY"])
        uidnext = int(selected[b"UIDNEXT"]) if b"UIDNEXT" in selected else None
        permanent_flags = tuple(selected.get(b"PERMANENTFLAGS", ()))
        highest = _load_folder_state(session_factory, account, folder, uidvalidity, ctx.clock.now(), summary)
        summary.server_actions += apply_server_actions(
            client, session_factory, settings, account, folder, uidvalidity, permanent_flags
        )
        uids = search_new_uids(client, highest, uidnext)
        if uids:
            log.info("poll %s: %d new message(s) in %s above UID %d", summary.run_id, len(uids), folder, highest)
        for batch in _size_batches(client, uids, settings.imap.batch_size):
            _ingest_batch(client, session_factory, ctx, SourceKey(account, folder, uidvalidity, 0), batch, summary)
            summary.server_actions += apply_server_actions(
                client, session_factory, settings, account, folder, uidvalidity, permanent_flags
            )
    except IMAP_FAILURES as exc:
        raise ImapError(f"IMAP failure while polling {folder}: {exc}") from exc
    if uids or summary.server_actions:
        log.info(
            "poll %s done: folder=%s stored=%d already_stored=%d resynced=%d server_actions=%d",
            summary.run_id,
            folder,
            summary.stored,
            summary.already_stored,
            summary.resynced,
            summary.server_actions,
        )
    return summary


def _size_batches(client: IMAPClient, uids: list[int], batch_size: int) -> Iterator[list[int]]:
    for chunk in _chunks(uids, batch_size):
        sizes = {uid: int(data.get(b"RFC822.SIZE", 0)) for uid, data in client.fetch(chunk, ["RFC822.SIZE"]).items()}
        yield from _batches(sizes, batch_size)


def _ingest_batch(
    client: IMAPClient,
    session_factory: sessionmaker[Session],
    ctx: RegisterContext,
    folder_key: SourceKey,
    batch: list[int],
    summary: PollSummary,
) -> None:
    fetched = client.fetch(batch, ["BODY.PEEK[]", "INTERNALDATE"])
    for uid in batch:
        data = fetched.get(uid)
        if data is None or b"BODY[]" not in data:
            # Expunged by another client between SEARCH and FETCH: nothing to store.
            log.warning("uid=%d vanished before it could be fetched", uid)
            continue
        internaldate = data.get(b"INTERNALDATE")
        source = SourceKey(folder_key.account, folder_key.folder, folder_key.uidvalidity, uid)
        outcome, message = ingest_message(
            session_factory,
            ctx,
            source,
            bytes(data[b"BODY[]"]),
            internaldate if isinstance(internaldate, datetime) else None,
        )
        if outcome == IngestOutcome.STORED:
            summary.stored += 1
        elif outcome == IngestOutcome.RESYNCED:
            summary.resynced += 1
        else:
            summary.already_stored += 1
        log.debug("uid=%d message-id=%s %s", uid, message.message_id, outcome)
