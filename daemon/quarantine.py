"""The office's handling of quarantined messages: list, show, release (parse again) and discard.

A release re-runs parsing and registration on the raw bytes kept in the archive, in one
transaction, as intake does. Each try counts in ``Message.attempts``.
"""

from __future__ import annotations

import enum
import logging
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from daemon.errors import DaemonError, StorageError
from daemon.models import Item, Message, MessageState, OutboxMail
from daemon.register import RegisterContext
from daemon.store import parse_and_register
from daemon.views import MESSAGE_STATE_LABELS, label
from parsers.charsets import decode_header_text
from parsers.mime import get_raw_header, read_header_block

log = logging.getLogger(__name__)
audit = logging.getLogger("zwxx.audit")

# Parse and register tries (intake's included) after which release rejects the message unless forced.
MAX_PARSE_ATTEMPTS = 3
SUMMARY_HEADERS = ("From", "To", "Cc", "Subject", "Date", "Message-ID")


class QuarantineError(DaemonError):
    """A quarantine command cannot be carried out; the message is user-facing Chinese."""


class ReleaseOutcome(enum.StrEnum):
    RELEASED = "released"  # no longer quarantined: registered, held, duplicate, ...
    STILL_QUARANTINED = "still_quarantined"  # failed again, tries remain
    GAVE_UP = "gave_up"  # failed again and has now used MAX_PARSE_ATTEMPTS tries


@dataclass(frozen=True)
class ReleaseResult:
    message_id: int
    outcome: ReleaseOutcome
    state: MessageState
    attempts: int
    reason: str | None
    serials: tuple[str, ...]  # items registered by this release
    receipt_queued: bool


def list_quarantined(session_factory: sessionmaker[Session]) -> list[Message]:
    """Return every QUARANTINED message, oldest first, detached from its session."""
    with session_factory() as session:
        rows = list(
            session.scalars(select(Message).where(Message.state == MessageState.QUARANTINED).order_by(Message.id))
        )
        session.expunge_all()
    return rows


def load_message(session: Session, message_id: int, *, quarantined_only: bool = True) -> Message:
    """Return message ``message_id``; raise QuarantineError when it is missing or not quarantined."""
    message = session.get(Message, message_id)
    if message is None:
        raise QuarantineError(f"没有编号为 {message_id} 的邮件；用 zwxx quarantine list 查看已隔离邮件的编号")
    if quarantined_only and message.state != MessageState.QUARANTINED:
        raise QuarantineError(
            f"第 {message_id} 号邮件不在隔离中（当前状态：{label(MESSAGE_STATE_LABELS, message.state)}），无需处理"
        )
    return message


def summarize_headers(raw: bytes) -> list[tuple[str, str]]:
    """Return the decoded summary headers of raw mail that are present, in SUMMARY_HEADERS order.

    Only the header block is read, with the lenient compat32 parser, so a message that the
    full parser rejects can still be shown.
    """
    headers = read_header_block(raw)
    summary = []
    for name in SUMMARY_HEADERS:
        # The raw value keeps 8-bit bytes (surrogate-escaped), which decode_header_text reads as
        # UTF-8, then gb18030; str() of compat32's Header object would turn them into U+FFFD.
        value = get_raw_header(headers, name)
        if value is not None:
            summary.append((name, " ".join(decode_header_text(value).split())))
    return summary


def read_raw(ctx: RegisterContext, message: Message) -> bytes:
    """Return the archived raw bytes of ``message``; raise QuarantineError when the file cannot be read."""
    try:
        return ctx.archive.get(message.sha256)
    except StorageError as exc:
        raise QuarantineError(
            f"无法读取第 {message.id} 号邮件的原始文件 {ctx.archive.path_for(message.sha256)}：{exc.__cause__ or exc}"
        ) from exc


def release_message(
    session_factory: sessionmaker[Session], ctx: RegisterContext, message_id: int, *, force: bool = False
) -> ReleaseResult:
    """Parse and register a quarantined message again; its new state follows the result.

    A receipt is queued only when this release registers an item (register_message queues it).

    Raises:
        QuarantineError: unknown id, not quarantined, no raw bytes were ever read, or the tries
            are used up and ``force`` is not set.
    """
    with session_factory.begin() as session:
        message = load_message(session, message_id)
        if message.size == 0:
            raise QuarantineError(
                f"第 {message_id} 号邮件收取时没有读到任何原始内容，无法重新处理；"
                "可在邮箱中核对原件后用 zwxx quarantine discard 丢弃"
            )
        if message.attempts >= MAX_PARSE_ATTEMPTS and not force:
            raise QuarantineError(
                f"第 {message_id} 号邮件已处理 {message.attempts} 次仍失败，保持隔离；确需再试请加 --force"
            )
        raw = read_raw(ctx, message)
        receipts_before = _count_receipts(session, message_id)
        message.reason = None
        message.detail = None
        parse_and_register(session, ctx, message, raw, message.internaldate)
        session.flush()
        serials = tuple(session.scalars(select(Item.serial).where(Item.message_db_id == message_id)))
        receipt_queued = _count_receipts(session, message_id) > receipts_before
        if message.state != MessageState.QUARANTINED:
            outcome = ReleaseOutcome.RELEASED
        elif message.attempts >= MAX_PARSE_ATTEMPTS:
            outcome = ReleaseOutcome.GAVE_UP
        else:
            outcome = ReleaseOutcome.STILL_QUARANTINED
        result = ReleaseResult(
            message_id=message_id,
            outcome=outcome,
            state=message.state,
            attempts=message.attempts,
            reason=message.reason,
            serials=serials,
            receipt_queued=receipt_queued,
        )
    audit.info(
        "message %d released by command: %s, state=%s, attempts=%d", message_id, outcome, result.state, result.attempts
    )
    return result


def _count_receipts(session: Session, message_id: int) -> int:
    return session.scalar(select(func.count(OutboxMail.id)).where(OutboxMail.message_db_id == message_id)) or 0


def discard_message(session_factory: sessionmaker[Session], message_id: int, reason: str) -> Message:
    """Mark a quarantined message DISCARDED with the office's reason; its raw bytes stay archived.

    Raises:
        QuarantineError: unknown id, not quarantined, or an empty reason.
    """
    reason = reason.strip()
    if not reason:
        raise QuarantineError("请用 --reason 写明丢弃原因")
    with session_factory.begin() as session:
        message = load_message(session, message_id)
        previous = message.reason or "（无）"
        message.state = MessageState.DISCARDED
        message.reason = f"办公室丢弃：{reason}（原隔离原因：{previous}）"
        session.flush()
        session.expunge(message)
    audit.info("message %d discarded by command", message_id)
    return message
