"""Register a stored message: classify it, number its items and queue the unit's receipt.

Runs inside the caller's transaction, so the message row, its items, attachments, events and
receipt are committed together or not at all.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from daemon.approval import handle_reply, is_approval_reply
from daemon.authors import find_content_unit
from daemon.commissions import link_commission
from daemon.context import RegisterContext
from daemon.deadlines import start_time_limit
from daemon.links import SYSTEM_ACTOR, ItemLink, LinkKind, apply_link, describe_link, find_link
from daemon.models import Attachment, Item, ItemEvent, ItemState, Message, MessageState, SenderAddress
from daemon.notices import NO_REVIEW_LINE_WARNING, NO_REVIEWER_WARNING, NO_SIGNER_WARNING, build_receipt
from daemon.office import handle_command_mail
from daemon.outbound import queue_mail
from daemon.units import Unit
from parsers.items import extract_items
from parsers.mime import read_header_block
from parsers.model import DocumentKind, ItemDraft, ParsedMessage
from parsers.subjects import strip_prefixes
from parsers.titles import is_marked_revision

log = logging.getLogger(__name__)
audit = logging.getLogger("zwxx.audit")

REVISION_WITHOUT_ORIGINAL_WARNING = (
    "邮件注明为修改稿，但未找到本单位此前报送的同题信息，已按新信息登记。如需替换原稿，请告知原稿的登记编号。"
)


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


def lookup_unit(session: Session, ctx: RegisterContext, address: str | None) -> Unit | None:
    """Return the unit of ``address``: the units file, then the addresses the office added with 登记."""
    if not address:
        return None
    added = session.scalar(select(SenderAddress.unit_code).where(SenderAddress.address == address.strip().lower()))
    return ctx.units.lookup(address, extra={address.strip().lower(): added} if added else None)


def route_office_mail(
    session: Session,
    ctx: RegisterContext,
    message: Message,
    parsed: ParsedMessage,
    raw: bytes,
    attachments: Sequence[Attachment],
) -> bool:
    """Handle a reply to an approval request, an office command mail, or a leader's mail; tell whether it was one."""
    # Only the header block: the token is looked for in the subject and the reply headers.
    headers = read_header_block(raw)
    if is_approval_reply(session, headers, parsed):
        handle_reply(session, ctx, message, parsed, raw)
        return True
    if ctx.settings.is_office(parsed.sender):
        handle_command_mail(session, ctx, message, parsed, raw, attachments)
        return True
    if ctx.settings.is_leader(parsed.sender):
        message.state = MessageState.UNDECIDED
        message.reason = "领导来信没有审批码，不作为审批意见，请办公室查看"
        return True
    return False


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


def fill_in_message(session: Session, ctx: RegisterContext, message: Message, parsed: ParsedMessage) -> Unit | None:
    """Copy the headers of ``parsed`` and the sender's unit into ``message``; return the unit.

    Nothing is flushed here, so a new message row is inserted once with all of it.
    """
    message.message_id = parsed.message_id
    message.sender = parsed.sender
    message.sender_name = parsed.sender_name
    message.subject = parsed.subject
    message.date_header = parsed.date
    message.received_header_at = parsed.received_at
    with session.no_autoflush:
        unit = lookup_unit(session, ctx, parsed.sender)
    message.unit_code = unit.code if unit else None
    return unit


def register_message(
    session: Session,
    ctx: RegisterContext,
    message: Message,
    parsed: ParsedMessage,
    *,
    raw: bytes | None = None,
    filled_in: bool = False,
) -> None:
    """Fill in ``message`` from ``parsed`` and register what it holds; the caller commits.

    ``raw`` is the mail as fetched; without it the mail is read again from the archive when an
    approval reply or an office command needs it. ``filled_in`` is True when the caller has
    run fill_in_message already.
    """
    if raw is None:
        raw = ctx.archive.get(message.sha256)
    if filled_in:
        unit = ctx.units.get(message.unit_code) if message.unit_code else None
    else:
        unit = fill_in_message(session, ctx, message, parsed)
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
    elif raw is not None and route_office_mail(session, ctx, message, parsed, raw, attachments):
        pass  # an approval reply, an office command mail or a leader's mail without a token
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
    drafts: list[ItemDraft],
    attachments: list[Attachment],
) -> None:
    received_at = message_received_at(message)
    items: list[Item] = []
    notes: dict[int, str] = {}
    for position, draft in enumerate(drafts):
        item, link = register_draft(
            session,
            ctx,
            message,
            parsed,
            draft,
            attachments,
            photo_count=count_photos(parsed, draft, first=position == 0),
        )
        items.append(item)
        if link is not None:
            notes[item.id] = describe_link(link.kind, link.target, tz=ctx.settings.tz)
    _queue_receipt(session, ctx, message, parsed, items, received_at, notes)


def message_received_at(message: Message) -> datetime:
    """Return when the server received ``message``: its INTERNALDATE, else when it was fetched."""
    return message.internaldate or message.fetched_at


def count_photos(parsed: ParsedMessage, draft: ItemDraft, *, first: bool) -> int:
    """Count the images that go with ``draft``.

    Images inside the same attached message or archive as the item's document go with it. Images
    attached to the mail itself go with the message's first item, so no photo is counted twice.
    """
    # TODO: images embedded in the .docx itself are not counted until parsers.documents offers it.
    container: int | None = None
    if draft.attachment_index is not None and draft.attachment_index < len(parsed.attachments):
        container = parsed.attachments[draft.attachment_index].container_index
    count = 0
    for attachment in parsed.attachments:
        if attachment.kind is not DocumentKind.IMAGE:
            continue
        if attachment.container_index is None:
            count += int(first)
        elif attachment.container_index == container:
            count += 1
    return count


def item_fields(
    ctx: RegisterContext,
    message: Message,
    parsed: ParsedMessage,
    draft: ItemDraft,
    attachments: Sequence[Attachment],
    *,
    photo_count: int,
) -> dict[str, Any]:
    """Return the Item columns that parsing decides, as keyword arguments for ``Item`` or for an update.

    Serial, unit, receipt time, state and links are not among them: registering sets those once.
    """
    warnings = list(draft.warnings)
    if not draft.has_review_line:
        warnings.insert(0, NO_REVIEW_LINE_WARNING)
    elif draft.signer and not draft.reviewer:
        warnings.insert(0, NO_REVIEWER_WARNING)
    elif draft.reviewer and not draft.signer:
        warnings.insert(0, NO_SIGNER_WARNING)
    attachment_id = None
    if draft.attachment_index is not None and draft.attachment_index < len(attachments):
        attachment_id = attachments[draft.attachment_index].id
    sender_unit = ctx.units.get(message.unit_code or "")
    content_unit = find_content_unit(
        ctx.units,
        sender_unit=sender_unit,
        original_from=parsed.original_from,
        texts=(draft.title, parsed.mail_text, draft.body_text),
    )
    return {
        "attachment_id": attachment_id,
        "title": draft.title,
        "category": draft.category,
        "source": str(draft.source),
        "body_text": draft.body_text,
        "body_chars": draft.body_chars,
        "has_review_line": draft.has_review_line,
        "reviewer": draft.reviewer,
        "signer": draft.signer,
        "contact": draft.contact,
        "phone": draft.phone,
        "warnings": "\n".join(dict.fromkeys(warnings + [a.warning for a in attachments if a.warning])),
        "content_unit_code": content_unit.code if content_unit else None,
        "photo_count": photo_count,
    }


def register_draft(
    session: Session,
    ctx: RegisterContext,
    message: Message,
    parsed: ParsedMessage,
    draft: ItemDraft,
    attachments: Sequence[Attachment],
    *,
    photo_count: int,
    command: str = "register",
) -> tuple[Item, ItemLink | None]:
    """Register one item with the next serial of its year, link it to an earlier item, and record the event.

    Returns the new item and the link found, if any; a revision's target is SUPERSEDED here.
    """
    received_at = message_received_at(message)
    year = received_at.astimezone(ctx.settings.tz).year
    seq, serial = next_serial(session, year)
    item = Item(
        serial=serial,
        year=year,
        seq=seq,
        message_db_id=message.id,
        unit_code=message.unit_code,
        received_at=received_at,
        state=ItemState.REGISTERED,
        **item_fields(ctx, message, parsed, draft, attachments, photo_count=photo_count),
    )
    session.add(item)
    session.flush()
    link_commission(session, ctx, message, parsed, item)  # before the time limit: 约稿信息 takes its deadline
    start_time_limit(session, ctx, item)

    link = link_item(session, ctx, message, parsed, item, draft, attachments)
    comment = None
    if link is not None and link.kind is LinkKind.REVISION:
        comment = f"修改稿，取代 {link.target.serial}"
    elif link is not None:
        comment = f"与 {link.target.serial} 为同一份文件，不重复计数"
    session.add(
        ItemEvent(
            item_id=item.id,
            at=ctx.clock.now(),
            actor=SYSTEM_ACTOR,
            via_message_id=message.message_id,
            command=command,
            old_state=None,
            new_state=ItemState.REGISTERED,
            comment=comment,
        )
    )
    audit.info(
        "item %s registered from message %d uid=%d unit=%s link=%s",
        serial,
        message.id,
        message.uid,
        message.unit_code,
        link.kind if link else "none",
    )
    return item, link


def link_item(
    session: Session,
    ctx: RegisterContext,
    message: Message,
    parsed: ParsedMessage,
    item: Item,
    draft: ItemDraft,
    attachments: Sequence[Attachment],
) -> ItemLink | None:
    """Find and record what earlier item ``item`` revises or repeats; warn when a marked revision has no original."""
    sha256 = None
    if draft.attachment_index is not None and draft.attachment_index < len(attachments):
        sha256 = attachments[draft.attachment_index].sha256
    marked = is_marked_revision(strip_prefixes(parsed.subject), draft.title)
    link = find_link(
        session,
        item,
        document_sha256=sha256,
        marked_revision=marked,
        window_days=ctx.settings.items.revision_window_days,
        replied_to=[parsed.in_reply_to or "", *parsed.references],
    )
    if link is not None:
        apply_link(session, item, link, at=ctx.clock.now(), via_message_id=message.message_id)
    elif marked:
        item.warnings = "\n".join([*item.warning_list, REVISION_WITHOUT_ORIGINAL_WARNING])
    return link


def _queue_receipt(
    session: Session,
    ctx: RegisterContext,
    message: Message,
    parsed: ParsedMessage,
    items: list[Item],
    received_at: datetime,
    notes: Mapping[int, str],
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
        notes=notes,
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
