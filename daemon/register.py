"""Register a stored message: classify it, number its items and queue the unit's receipt.

Runs inside the caller's transaction, so the message row, its items, attachments, events and
receipt are committed together or not at all.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from daemon.archive import Archive
from daemon.clock import Clock
from daemon.config import Settings
from daemon.models import Attachment, Item, ItemEvent, ItemState, Message, MessageState
from daemon.notices import NO_REVIEW_LINE_WARNING, build_receipt
from daemon.outbound import queue_mail
from daemon.units import UnitDirectory
from parsers.items import extract_items
from parsers.model import ParsedMessage

log = logging.getLogger(__name__)
audit = logging.getLogger("zwxx.audit")

SYSTEM_ACTOR = "zwxx"


@dataclass(frozen=True)
class RegisterContext:
    settings: Settings
    units: UnitDirectory
    archive: Archive
    clock: Clock


def next_serial(session: Session, year: int) -> tuple[int, str]:
    """Return the next free (seq, serial) of ``year``, e.g. (12, "2026-0012")."""
    highest = session.scalar(select(func.max(Item.seq)).where(Item.year == year)) or 0
    seq = highest + 1
    return seq, f"{year}-{seq:04d}"


def find_duplicate(session: Session, message: Message) -> Message | None:
    """Return the earlier message this one repeats (same originator headers and body), if any.

    Message-ID alone is not enough: some office systems reuse one id for different mails.
    """
    return session.scalar(
        select(Message)
        .where(Message.content_sha256 == message.content_sha256, Message.id != message.id)
        .order_by(Message.id)
        .limit(1)
    )


def classify(parsed: ParsedMessage) -> MessageState | None:
    """Return the state of a message that is not an item by its kind, else None."""
    if parsed.is_bounce:
        return MessageState.BOUNCE
    if parsed.is_auto_reply:
        return MessageState.AUTO_REPLY
    if parsed.is_list:
        return MessageState.LIST
    return None


def store_attachments(
    session: Session, ctx: RegisterContext, message: Message, parsed: ParsedMessage
) -> list[Attachment]:
    rows = []
    for position, part in enumerate(parsed.attachments):
        digest = ctx.archive.put(part.data)
        row = Attachment(
            message_db_id=message.id,
            position=position,
            filename=part.filename,
            content_type=part.content_type,
            kind=str(part.kind),
            size=part.size,
            sha256=digest,
            depth=part.depth,
            text=part.text,
            warning=part.warning,
        )
        session.add(row)
        rows.append(row)
    session.flush()
    return rows


def register_message(session: Session, ctx: RegisterContext, message: Message, parsed: ParsedMessage) -> None:
    """Fill in ``message`` from ``parsed`` and register what it holds; the caller commits."""
    message.message_id = parsed.message_id
    message.sender = parsed.sender
    message.sender_name = parsed.sender_name
    message.subject = parsed.subject
    message.date_header = parsed.date
    message.received_header_at = parsed.received_at
    unit = ctx.units.lookup(parsed.sender)
    message.unit_code = unit.code if unit else None
    session.flush()

    attachments = store_attachments(session, ctx, message, parsed)
    kind_state = classify(parsed)
    duplicate = find_duplicate(session, message)
    if duplicate is not None:
        message.state = MessageState.DUPLICATE
        message.duplicate_of_id = duplicate.id
        message.reason = f"与第 {duplicate.id} 号邮件重复"
    elif kind_state is not None:
        message.state = kind_state
    elif parsed.sender and parsed.sender == ctx.settings.smtp.from_address.lower():
        # Our own receipt or notice came back (a forward rule or a copy), so a receipt would start a mail loop.
        message.state = MessageState.NOT_ITEM
        message.reason = "本邮箱自己发出的邮件，不作登记"
    elif unit is None:
        message.state = MessageState.HELD
        message.reason = "发件地址不在单位名录中，待办公室确认"
    else:
        drafts = extract_items(parsed)
        if not drafts:
            message.state = MessageState.NOT_ITEM
            message.reason = "未识别出政务信息内容"
        else:
            _register_items(session, ctx, message, parsed, drafts, attachments)
            message.state = MessageState.REGISTERED
    audit.info(
        "message %d uid=%d message-id=%s state=%s unit=%s",
        message.id,
        message.uid,
        message.message_id,
        message.state,
        message.unit_code,
    )


def _register_items(
    session: Session,
    ctx: RegisterContext,
    message: Message,
    parsed: ParsedMessage,
    drafts: list,  # list[parsers.model.ItemDraft]
    attachments: list[Attachment],
) -> None:
    now = ctx.clock.now()
    received_at: datetime = message.internaldate or message.fetched_at
    year = received_at.astimezone(ctx.settings.tz).year
    items: list[Item] = []
    for draft in drafts:
        seq, serial = next_serial(session, year)
        warnings = list(draft.warnings)
        if not draft.has_review_line:
            warnings.insert(0, NO_REVIEW_LINE_WARNING)
        attachment_id = None
        if draft.attachment_index is not None and draft.attachment_index < len(attachments):
            attachment_id = attachments[draft.attachment_index].id
        item = Item(
            serial=serial,
            year=year,
            seq=seq,
            message_db_id=message.id,
            attachment_id=attachment_id,
            unit_code=message.unit_code,
            title=draft.title,
            category=draft.category,
            source=str(draft.source),
            body_text=draft.body_text,
            body_chars=draft.body_chars,
            has_review_line=draft.has_review_line,
            reviewer=draft.reviewer,
            signer=draft.signer,
            contact=draft.contact,
            phone=draft.phone,
            warnings="\n".join(dict.fromkeys(warnings + [a.warning for a in attachments if a.warning])),
            received_at=received_at,
            state=ItemState.REGISTERED,
        )
        session.add(item)
        session.flush()
        session.add(
            ItemEvent(
                item_id=item.id,
                at=now,
                actor=SYSTEM_ACTOR,
                via_message_id=message.message_id,
                command="register",
                old_state=None,
                new_state=ItemState.REGISTERED,
            )
        )
        items.append(item)
        audit.info(
            "item %s registered from message %d uid=%d unit=%s", serial, message.id, message.uid, message.unit_code
        )
    _queue_receipt(session, ctx, message, parsed, items, received_at)


def _queue_receipt(
    session: Session,
    ctx: RegisterContext,
    message: Message,
    parsed: ParsedMessage,
    items: list[Item],
    received_at: datetime,
) -> None:
    unit = ctx.units.get(message.unit_code or "")
    if unit is None or not parsed.sender:
        return
    key = f"receipt:{message.content_sha256}"
    mail = build_receipt(
        settings=ctx.settings,
        unit=unit,
        to_address=parsed.sender,
        items=items,
        original_message_id=parsed.message_id,
        original_references=parsed.references,
        received_at=received_at,
        now=ctx.clock.now(),
        key=key,
    )
    queue_mail(
        session,
        key=key,
        purpose="receipt",
        mail=mail,
        recipients=[parsed.sender],
        now=ctx.clock.now(),
        item_id=items[0].id,
        message_db_id=message.id,
    )
