"""Store one fetched message: raw bytes to the archive, then its row and registration in one commit."""

from __future__ import annotations

import email.policy
import enum
import logging
import traceback
from dataclasses import dataclass
from datetime import datetime
from email.parser import BytesHeaderParser

from sqlalchemy import Select, func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from daemon.convert import convert_legacy_documents
from daemon.errors import StorageError
from daemon.models import FetchFailure, FolderState, Message, MessageState, ServerAction
from daemon.register import RegisterContext, register_message
from parsers.errors import MessageParseError
from parsers.fingerprint import content_fingerprint
from parsers.message import parse_message
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


def _advance_folder(session: Session, source: SourceKey, now: datetime) -> None:
    """Raise the folder's high-water mark to ``source.uid``, but never past a UID still failing to fetch.

    A UID in the fetch_failures table has not been stored yet. Holding the mark below it makes the
    next poll search it again, and that poll skips the UIDs above it that are already stored. Once
    the failing UID is stored or quarantined, the mark moves up to the highest stored UID.
    """
    _clear_fetch_failure(session, source)
    state = session.scalar(
        select(FolderState).where(FolderState.account == source.account, FolderState.folder == source.folder)
    )
    in_folder = (
        FetchFailure.account == source.account,
        FetchFailure.folder == source.folder,
        FetchFailure.uidvalidity == source.uidvalidity,
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


def _clear_fetch_failure(session: Session, source: SourceKey) -> None:
    """Forget the failed FETCHes of ``source``, which is stored now (as read, or as quarantined)."""
    row = session.scalar(_select_fetch_failure(source))
    if row is not None:
        session.delete(row)
        session.flush()


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
                _advance_folder(session, source, now)
                return existing
            message = _new_message(source, salvaged, digest, internaldate, now)
            message.reason, message.detail = reason, detail
            session.add(message)
            _advance_folder(session, source, now)
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


def _find_resynced(session: Session, source: SourceKey, digest: str) -> Message | None:
    """Return the row of this very message stored under an earlier UIDVALIDITY of the folder."""
    return session.scalar(
        select(Message)
        .where(
            Message.account == source.account,
            Message.folder == source.folder,
            Message.uidvalidity != source.uidvalidity,
            Message.sha256 == digest,
        )
        .order_by(Message.id)
        .limit(1)
    )


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
    digest = ctx.archive.put(raw)
    now = ctx.clock.now()
    read = read_message(ctx, raw, internaldate)
    try:
        with session_factory.begin() as session:
            existing = _find_stored(session, source)
            if existing is not None:
                _advance_folder(session, source, now)
                return IngestOutcome.ALREADY_STORED, existing
            earlier = _find_resynced(session, source, digest)
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
                _advance_folder(session, source, now)
                return IngestOutcome.RESYNCED, earlier
            message = _new_message(source, raw, digest, internaldate, now)
            session.add(message)
            session.flush()
            parse_and_register(session, ctx, message, raw, internaldate, read=read)
            _advance_folder(session, source, now)
            return IngestOutcome.STORED, message
    except SQLAlchemyError as exc:
        log.error("uid=%d sha256=%s: registering failed (%s), storing it as quarantined", source.uid, digest, exc)
        return IngestOutcome.STORED, _quarantine(
            session_factory, source, raw, digest, internaldate, now, "登记时数据库出错", traceback.format_exc()
        )


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


@dataclass(frozen=True)
class ParseFailure:
    """Why a raw mail could not be parsed: a user-facing reason and the traceback."""

    reason: str
    detail: str


def read_message(ctx: RegisterContext, raw: bytes, internaldate: datetime | None) -> ParsedMessage | ParseFailure:
    """Parse ``raw`` and convert its legacy documents when a converter is configured; never raises.

    This runs outside any transaction, so a slow parse or converter holds no database lock.
    """
    try:
        parsed = parse_message(
            raw, default_tz=ctx.settings.tz, internaldate=internaldate, limits=ctx.settings.documents.limits()
        )
    except MessageParseError as exc:
        log.warning("message cannot be parsed: %s", exc.__cause__ or exc)
        return ParseFailure(exc.reason, traceback.format_exc())
    except Exception as exc:  # noqa: BLE001 - a parser that breaks its contract still must not stop the loop
        log.error("parser raised %s instead of MessageParseError", type(exc).__name__)
        return ParseFailure(f"邮件无法解析：{type(exc).__name__}: {exc}", traceback.format_exc())
    return convert_legacy_documents(parsed, ctx.settings.documents)


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
    savepoint = session.begin_nested()
    try:
        register_message(session, ctx, message, parsed, raw=raw)
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


def _quarantine(
    session_factory: sessionmaker[Session],
    source: SourceKey,
    raw: bytes,
    digest: str,
    internaldate: datetime | None,
    now: datetime,
    reason: str,
    detail: str,
) -> Message:
    try:
        with session_factory.begin() as session:
            message = _new_message(source, raw, digest, internaldate, now)
            message.reason, message.detail = reason, detail
            message.attempts = 1
            session.add(message)
            _advance_folder(session, source, now)
            return message
    except SQLAlchemyError as exc:
        raise StorageError(f"cannot store message uid={source.uid}: {exc}") from exc
