"""Store one fetched message: raw bytes to the archive, then its row and registration in one commit."""

from __future__ import annotations

import email.policy
import enum
import logging
import traceback
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from email.parser import BytesHeaderParser

from sqlalchemy import Select, delete, func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from daemon.errors import StorageError
from daemon.models import FetchFailure, FolderState, Message, MessageState, ServerAction
from daemon.reading import ParseFailure, read_raw
from daemon.register import RegisterContext, fill_in_message, register_message
from parsers.fingerprint import content_fingerprint
from parsers.model import ParsedMessage

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SourceKey:
    """IMAP identity of one stored copy: account, folder, UIDVALIDITY and UID."""

    account: str
    folder: str
    uidvalidity: int
    uid: int

    def __str__(self) -> str:
        return f"{self.account}/{self.folder}/{self.uidvalidity}/{self.uid}"


class IngestOutcome(enum.StrEnum):
    STORED = "stored"
    ALREADY_STORED = "already_stored"
    RESYNCED = "resynced"


def _advance_folder(session: Session, sources: Sequence[SourceKey], now: datetime) -> None:
    """Raise the folder's high-water mark to the highest UID of ``sources`` (all of one folder and
    UIDVALIDITY), but never past a UID still failing to fetch.

    A UID in the fetch_failures table has not been stored yet. Holding the mark below it makes the
    next poll search it again, and that poll skips the UIDs above it that are already stored. Once
    the failing UID is stored or quarantined, the mark moves up to the highest stored UID.
    """
    source = max(sources, key=lambda key: key.uid)
    in_folder = (
        FetchFailure.account == source.account,
        FetchFailure.folder == source.folder,
        FetchFailure.uidvalidity == source.uidvalidity,
    )
    # These UIDs are stored now (as read, or as quarantined): forget their failed FETCHes.
    session.execute(
        delete(FetchFailure).where(*in_folder, FetchFailure.uid.in_([key.uid for key in sources])),
        execution_options={"synchronize_session": False},
    )
    state = session.scalar(
        select(FolderState).where(FolderState.account == source.account, FolderState.folder == source.folder)
    )
    failing = session.scalar(select(func.min(FetchFailure.uid)).where(*in_folder))
    # Messages above a UID that has since been stored or quarantined may already be stored.
    stored = session.scalar(
        select(func.max(Message.uid)).where(
            Message.account == source.account,
            Message.folder == source.folder,
            Message.uidvalidity == source.uidvalidity,
        )
    )
    highest = max(source.uid, stored or 0)
    if failing is not None:
        highest = min(highest, failing - 1)
    if state is None:
        session.add(
            FolderState(
                account=source.account,
                folder=source.folder,
                uidvalidity=source.uidvalidity,
                highest_uid=highest,
                updated_at=now,
            )
        )
    elif state.uidvalidity == source.uidvalidity and highest > state.highest_uid:
        state.highest_uid = highest
        state.updated_at = now


def _select_fetch_failure(source: SourceKey) -> Select[FetchFailure]:
    return select(FetchFailure).where(
        FetchFailure.account == source.account,
        FetchFailure.folder == source.folder,
        FetchFailure.uidvalidity == source.uidvalidity,
        FetchFailure.uid == source.uid,
    )


def record_fetch_failure(session_factory: sessionmaker[Session], source: SourceKey, error: str, now: datetime) -> int:
    """Count one failed FETCH of ``source`` in the database; return its failures so far, restarts included.

    Raises:
        StorageError: the database failed.
    """
    try:
        with session_factory.begin() as session:
            row = session.scalar(_select_fetch_failure(source))
            if row is None:
                row = FetchFailure(
                    account=source.account,
                    folder=source.folder,
                    uidvalidity=source.uidvalidity,
                    uid=source.uid,
                    attempts=0,
                    first_failed_at=now,
                    last_failed_at=now,
                )
                session.add(row)
            row.attempts += 1
            row.last_error = error
            row.last_failed_at = now
            return row.attempts
    except SQLAlchemyError as exc:
        raise StorageError(f"cannot record the failed FETCH of uid={source.uid}: {exc}") from exc


def quarantine_unfetchable(
    session_factory: sessionmaker[Session],
    ctx: RegisterContext,
    source: SourceKey,
    salvaged: bytes,
    internaldate: datetime | None,
    reason: str,
    detail: str,
) -> Message:
    """Store a message whose FETCH kept failing as QUARANTINED, with whatever part of it could be read.

    ``salvaged`` is archived even when empty, so the row always names an archive file. The UID's
    fetch_failures row is deleted and the folder's high-water mark moves past it.
    """
    digest = ctx.archive.put(salvaged)
    now = ctx.clock.now()
    try:
        with session_factory.begin() as session:
            existing = _find_stored(session, source)
            if existing is not None:
                _advance_folder(session, [source], now)
                return existing
            message = _new_message(source, salvaged, digest, internaldate, now)
            message.reason, message.detail = reason, detail
            session.add(message)
            _advance_folder(session, [source], now)
            return message
    except SQLAlchemyError as exc:
        raise StorageError(f"cannot store unfetchable message uid={source.uid}: {exc}") from exc


def _find_stored(session: Session, source: SourceKey) -> Message | None:
    """Return the message already stored under exactly this source key, if any."""
    return session.scalar(
        select(Message).where(
            Message.account == source.account,
            Message.folder == source.folder,
            Message.uidvalidity == source.uidvalidity,
            Message.uid == source.uid,
        )
    )


def _stored_in_batch(session: Session, sources: Sequence[SourceKey]) -> dict[int, Message]:
    """Return the messages already stored under the source keys of one batch, by UID."""
    first = sources[0]
    rows = session.scalars(
        select(Message).where(
            Message.account == first.account,
            Message.folder == first.folder,
            Message.uidvalidity == first.uidvalidity,
            Message.uid.in_([source.uid for source in sources]),
        )
    )
    return {row.uid: row for row in rows}


def _resynced_in_batch(session: Session, sources: Sequence[SourceKey], digests: Sequence[str]) -> dict[str, Message]:
    """Return the rows of these very messages stored under an earlier UIDVALIDITY of the folder, by sha256."""
    first = sources[0]
    rows = session.scalars(
        select(Message)
        .where(
            Message.account == first.account,
            Message.folder == first.folder,
            Message.uidvalidity != first.uidvalidity,
            Message.sha256.in_(set(digests)),
        )
        .order_by(Message.id.desc())
    )
    return {row.sha256: row for row in rows}  # the lowest id wins, as it comes last


@dataclass(frozen=True)
class FetchedMessage:
    """One message as fetched: its place on the server, its bytes and its INTERNALDATE."""

    source: SourceKey
    raw: bytes
    internaldate: datetime | None
    digest: str | None = None  # sha256 of raw, once it is written to the archive (not yet synced)


def ingest_message(
    session_factory: sessionmaker[Session],
    ctx: RegisterContext,
    source: SourceKey,
    raw: bytes,
    internaldate: datetime | None,
) -> tuple[str, Message]:
    """Archive ``raw`` and commit its message row with everything registered from it.

    A message that cannot be parsed or registered is still committed, as QUARANTINED with the
    reason. Raises StorageError only when nothing could be committed; the caller retries later.
    """
    return ingest_batch(session_factory, ctx, [FetchedMessage(source, raw, internaldate)])[0]


def ingest_batch(
    session_factory: sessionmaker[Session],
    ctx: RegisterContext,
    batch: Sequence[FetchedMessage],
    reads: Sequence[ParsedMessage | ParseFailure] | None = None,
) -> list[tuple[str, Message]]:
    """Archive and register the messages of one FETCH batch, in order, with a single commit.

    ``batch`` contains messages of one folder and UIDVALIDITY. ``reads`` contains read_message's result
    for each message when the caller parsed them already (in worker processes). Otherwise the raw
    mail of every message is written to the archive first and then parsed here, before the
    transaction begins. Every archive file is fsynced before the commit, and each message is
    registered under its own savepoint: a message that cannot be parsed or registered is
    committed as QUARANTINED with the reason, beside the others.

    Raises:
        StorageError: nothing of the batch could be committed; the caller retries it later.
    """
    if not batch:
        return []
    digests = [fetched.digest or ctx.archive.put(fetched.raw, sync=False) for fetched in batch]
    if reads is None:
        reads = [read_message(ctx, fetched.raw, fetched.internaldate) for fetched in batch]
    now = ctx.clock.now()
    sources = [fetched.source for fetched in batch]
    try:
        with session_factory.begin() as session:
            with ctx.archive.deferred_sync():  # every file is durable before the commit below
                for digest in digests:
                    ctx.archive.make_durable(digest)
                stored = _stored_in_batch(session, sources)
                resynced = _resynced_in_batch(session, sources, digests)
                results = [
                    _ingest_one(session, ctx, fetched, digest, read, now, stored, resynced)
                    for fetched, digest, read in zip(batch, digests, reads, strict=True)
                ]
                _advance_folder(session, sources, now)
    except SQLAlchemyError as exc:
        raise StorageError(f"cannot store the batch of UIDs {sources[0].uid} to {sources[-1].uid}: {exc}") from exc
    return results


def _ingest_one(
    session: Session,
    ctx: RegisterContext,
    fetched: FetchedMessage,
    digest: str,
    read: ParsedMessage | ParseFailure,
    now: datetime,
    stored: dict[int, Message],
    resynced: dict[str, Message],
) -> tuple[str, Message]:
    """Add one message of a batch to the batch's transaction; return its outcome and row."""
    source, raw = fetched.source, fetched.raw
    existing = stored.get(source.uid)
    if existing is not None:
        return IngestOutcome.ALREADY_STORED, existing
    earlier = resynced.pop(digest, None)
    if earlier is not None:
        log.info(
            "uid=%d message-id=%s: same message as row %d under UIDVALIDITY %d, source key moved",
            source.uid,
            earlier.message_id,
            earlier.id,
            earlier.uidvalidity,
        )
        earlier.uidvalidity, earlier.uid = source.uidvalidity, source.uid
        earlier.server_action = ServerAction.PENDING
        return IngestOutcome.RESYNCED, earlier
    savepoint = session.begin_nested()
    try:
        message = _new_message(source, raw, digest, fetched.internaldate, now)
        session.add(message)  # inserted at the first flush, once registering has filled it in
        parse_and_register(session, ctx, message, raw, fetched.internaldate, read=read)
        savepoint.commit()
    except SQLAlchemyError as exc:
        # The database rejected something of this message alone. If the connection itself failed,
        # the rollback or the quarantine row below raises, so the whole batch is retried.
        savepoint.rollback()
        log.error("uid=%d sha256=%s: registering failed (%s), storing it as quarantined", source.uid, digest, exc)
        message = _new_message(source, raw, digest, fetched.internaldate, now)
        message.reason, message.detail = "登记时数据库出错", traceback.format_exc()
        message.attempts = 1
        if isinstance(read, ParsedMessage):
            message.message_id, message.sender, message.subject = read.message_id, read.sender, read.subject
        session.add(message)
        session.flush()
    return IngestOutcome.STORED, message


def _new_message(source: SourceKey, raw: bytes, digest: str, internaldate: datetime | None, now: datetime) -> Message:
    return Message(
        account=source.account,
        folder=source.folder,
        uidvalidity=source.uidvalidity,
        uid=source.uid,
        sha256=digest,
        content_sha256=content_fingerprint(raw),
        size=len(raw),
        internaldate=internaldate,
        fetched_at=now,
        state=MessageState.QUARANTINED,
        server_action=ServerAction.PENDING,
    )


def read_message(ctx: RegisterContext, raw: bytes, internaldate: datetime | None) -> ParsedMessage | ParseFailure:
    """Parse ``raw`` in this process (see daemon.reading.read_raw); never raises.

    This runs outside any transaction, so a slow parse or converter holds no database lock.
    """
    return read_raw(ctx.settings.tz, ctx.settings.documents, raw, internaldate)


def parse_and_register(
    session: Session,
    ctx: RegisterContext,
    message: Message,
    raw: bytes,
    internaldate: datetime | None,
    *,
    read: ParsedMessage | ParseFailure | None = None,
) -> None:
    """Register ``raw`` into ``message``, counting one attempt; the caller commits.

    ``read`` is the result of read_message when the caller parsed before its transaction began.
    A parse or registering failure leaves ``message`` QUARANTINED with the reason and traceback.
    Raises StorageError or SQLAlchemyError when the database or archive fails, because
    then nothing about the message can be trusted to be written.
    """
    message.attempts = (message.attempts or 0) + 1
    result = read if read is not None else read_message(ctx, raw, internaldate)
    if isinstance(result, ParseFailure):
        _mark_quarantined(message, result.reason, result.detail)
        if message.sender is None and message.subject is None:
            message.sender, message.subject = read_sender_and_subject(raw)
        log.warning("uid=%d: quarantined: %s", message.uid, result.reason)
        return
    parsed = result
    fill_in_message(session, ctx, message, parsed)  # before the savepoint, which writes the row
    savepoint = session.begin_nested()
    try:
        register_message(session, ctx, message, parsed, raw=raw, filled_in=True)
    except (StorageError, SQLAlchemyError):
        savepoint.rollback()
        raise
    except Exception as exc:  # noqa: BLE001 - a registering bug must not block the folder
        savepoint.rollback()
        failure, detail = exc, traceback.format_exc()
    else:
        savepoint.commit()
        return
    # The savepoint was rolled back: keep the bare message row, quarantined with the reason.
    message.message_id = parsed.message_id
    message.sender = parsed.sender
    message.subject = parsed.subject
    _mark_quarantined(message, f"登记失败：{type(failure).__name__}: {failure}", detail)
    log.error("uid=%d message-id=%s: registering failed, quarantined: %s", message.uid, parsed.message_id, failure)


def read_sender_and_subject(raw: bytes) -> tuple[str | None, str | None]:
    """Return the From address and the decoded Subject of a mail the parser rejected, for the office's lists.

    Only the header block is read, and any failure gives None: the mail is hostile or broken.
    """
    try:
        headers = BytesHeaderParser(policy=email.policy.default).parsebytes(raw[:65536])
        sender = headers.get("From")
        address = sender.addresses[0].addr_spec.lower() if sender is not None and sender.addresses else None
        subject = str(headers.get("Subject") or "") or None
    except Exception:  # noqa: BLE001 - any header a parser chokes on is simply not shown
        return None, None
    return (address[:320] if address else None), (subject[:500] if subject else None)


def _mark_quarantined(message: Message, reason: str, detail: str) -> None:
    message.state = MessageState.QUARANTINED
    message.reason = reason
    message.detail = detail
