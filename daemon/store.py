"""Store one fetched message: raw bytes to the archive, then its row and registration in one commit."""

from __future__ import annotations

import enum
import logging
import traceback
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from daemon.errors import StorageError
from daemon.models import FolderState, Message, MessageState, ServerAction
from daemon.register import RegisterContext, register_message
from parsers.fingerprint import content_fingerprint
from parsers.message import parse_message

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
    state = session.scalar(
        select(FolderState).where(FolderState.account == source.account, FolderState.folder == source.folder)
    )
    if state is None:
        session.add(
            FolderState(
                account=source.account,
                folder=source.folder,
                uidvalidity=source.uidvalidity,
                highest_uid=source.uid,
                updated_at=now,
            )
        )
    elif state.uidvalidity == source.uidvalidity and source.uid > state.highest_uid:
        state.highest_uid = source.uid
        state.updated_at = now


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
    try:
        with session_factory.begin() as session:
            existing = session.scalar(
                select(Message).where(
                    Message.account == source.account,
                    Message.folder == source.folder,
                    Message.uidvalidity == source.uidvalidity,
                    Message.uid == source.uid,
                )
            )
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
            _parse_and_register(session, ctx, message, raw, internaldate)
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


def _parse_and_register(
    session: Session, ctx: RegisterContext, message: Message, raw: bytes, internaldate: datetime | None
) -> None:
    try:
        parsed = parse_message(
            raw, default_tz=ctx.settings.tz, internaldate=internaldate, limits=ctx.settings.documents.limits()
        )
    except Exception as exc:  # noqa: BLE001 - any parser failure quarantines the message, never the loop
        message.state = MessageState.QUARANTINED
        message.reason = f"邮件无法解析：{type(exc).__name__}: {exc}"
        message.detail = traceback.format_exc()
        log.warning("uid=%d: message cannot be parsed, quarantined: %s", message.uid, exc)
        return
    savepoint = session.begin_nested()
    try:
        register_message(session, ctx, message, parsed)
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
    message.state = MessageState.QUARANTINED
    message.message_id = parsed.message_id
    message.sender = parsed.sender
    message.subject = parsed.subject
    message.reason = f"登记失败：{type(failure).__name__}: {failure}"
    message.detail = detail
    log.error("uid=%d message-id=%s: registering failed, quarantined: %s", message.uid, parsed.message_id, failure)


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
            session.add(message)
            _advance_folder(session, source, now)
            return message
    except SQLAlchemyError as exc:
        raise StorageError(f"cannot store message uid={source.uid}: {exc}") from exc
