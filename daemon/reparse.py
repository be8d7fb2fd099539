"""Re-run parsing and item extraction on archived raw mail, after an upgrade of the parsers.

Registered items keep their serial, unit and receipt time. The fields that parsing decides
(title, category, body, review and contact lines, warnings, content unit, photos) are updated
in place, with an ItemEvent. An item without a link is linked as registering would link it, so
a revision found only now supersedes its earlier item. A message that had no item is classified
and registered again, and only such newly registered items get a receipt. The outbox key of a
receipt is the message's content fingerprint, so no message ever gets a second receipt.

NOTE: serials are taken as max + 1 like the daemon does, so a reparse that runs while the daemon
registers mail can collide on a serial. The unique constraint then stops the run with a database
error after the last committed message; run it again once the daemon is idle.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from daemon.deadlines import assign_deadline
from daemon.errors import StorageError
from daemon.links import LinkKind
from daemon.models import Attachment, Item, ItemEvent, Message, MessageState, OutboxMail
from daemon.register import (
    SYSTEM_ACTOR,
    RegisterContext,
    count_photos,
    item_fields,
    link_item,
    register_draft,
    store_attachments,
)
from daemon.store import ParseFailure, parse_and_register, read_message
from daemon.views import MESSAGE_STATE_LABELS, label
from parsers.items import extract_items
from parsers.model import ItemDraft, ParsedMessage

log = logging.getLogger(__name__)

# Column names and their Chinese labels, in the order a change is reported.
FIELD_LABELS: dict[str, str] = {
    "title": "标题",
    "category": "类别",
    "source": "来源",
    "body_text": "正文",
    "has_review_line": "审核签发行",
    "reviewer": "审核人",
    "signer": "签发人",
    "contact": "联系人",
    "phone": "电话",
    "warnings": "提示",
    "attachment_id": "所属附件",
    "content_unit_code": "撰稿单位",
    "photo_count": "图片数",
}


@dataclass
class ReparseSummary:
    """Counts of one reparse run, and one Chinese line per change for ``--dry-run``."""

    messages: int = 0
    items_updated: int = 0
    items_unchanged: int = 0
    items_registered: int = 0  # in messages that had no item before
    items_added: int = 0  # new items found in messages that already had items; no receipt is sent
    receipts_queued: int = 0
    states_changed: int = 0
    failed: int = 0
    changes: list[str] = field(default_factory=list)


# Messages whose outcome reparse never changes.
KEPT_AS_DONE = (MessageState.DISCARDED, MessageState.COMMAND, MessageState.DECISION, MessageState.UNDECIDED)


def select_message_ids(session: Session, *, since: datetime | None, message_db_id: int | None) -> list[int]:
    """Return the ids of the messages to reparse, oldest first.

    Discarded messages are left out, and so are office command mails and replies to approval
    requests: they were acted on once, and acting on them again would repeat 采用 or decisions.
    """
    query = select(Message.id).where(Message.state.not_in(KEPT_AS_DONE)).order_by(Message.id)
    if message_db_id is not None:
        query = query.where(Message.id == message_db_id)
    if since is not None:
        query = query.where(func.coalesce(Message.internaldate, Message.fetched_at) >= since)
    return list(session.scalars(query))


def reparse_messages(
    session_factory: sessionmaker[Session],
    ctx: RegisterContext,
    message_ids: Sequence[int],
    *,
    dry_run: bool,
) -> ReparseSummary:
    """Reparse the given messages and commit after each one, or roll everything back with ``dry_run``.

    A message whose raw mail cannot be read from the archive or parsed is counted as failed and
    left as it is.

    Raises:
        StorageError: the database failed.
    """
    summary = ReparseSummary()
    try:
        with session_factory() as session:
            for message_db_id in message_ids:
                _reparse_one(session, ctx, message_db_id, summary)
                if not dry_run:
                    session.commit()
            if dry_run:
                session.rollback()
    except SQLAlchemyError as exc:
        raise StorageError(f"reparse failed in the database: {exc}") from exc
    log.info(
        "reparse: %d messages, %d items updated, %d registered, %d added, %d receipts, %d failed, dry_run=%s",
        summary.messages,
        summary.items_updated,
        summary.items_registered,
        summary.items_added,
        summary.receipts_queued,
        summary.failed,
        dry_run,
    )
    return summary


def _reparse_one(session: Session, ctx: RegisterContext, message_db_id: int, summary: ReparseSummary) -> None:
    message = session.get(Message, message_db_id)
    if message is None:
        return
    summary.messages += 1
    savepoint = session.begin_nested()
    try:
        _reparse_message(session, ctx, message, summary)
    except StorageError as exc:
        savepoint.rollback()
        summary.failed += 1
        summary.changes.append(f"邮件 {message_db_id}：无法读取归档中的原始邮件，未处理")
        log.error("reparse of message %d failed: %s", message_db_id, exc)
        return
    except SQLAlchemyError:
        savepoint.rollback()
        raise
    except Exception as exc:  # noqa: BLE001 - a bug on one message must not stop the others
        savepoint.rollback()
        summary.failed += 1
        summary.changes.append(f"邮件 {message_db_id}：处理出错（{type(exc).__name__}），未作改动")
        log.error("reparse of message %d failed:\n%s", message_db_id, traceback.format_exc())
        return
    savepoint.commit()


def _reparse_message(session: Session, ctx: RegisterContext, message: Message, summary: ReparseSummary) -> None:
    raw = ctx.archive.get(message.sha256)
    if message.items:
        _update_registered(session, ctx, message, raw, summary)
    else:
        register_again(session, ctx, message, raw, summary)


def register_again(
    session: Session, ctx: RegisterContext, message: Message, raw: bytes, summary: ReparseSummary
) -> None:
    """Classify and register a message that has no items, as if it had just been fetched."""
    old_state = message.state
    receipts_before = _count_receipts(session, message)
    for attachment in list(message.attachments):
        session.delete(attachment)
    message.reason = None
    message.detail = None
    message.duplicate_of_id = None
    session.flush()
    session.expire(message, ["attachments", "items"])

    parse_and_register(session, ctx, message, raw, message.internaldate)
    session.flush()
    session.expire(message, ["items"])

    items = list(message.items)
    receipts = _count_receipts(session, message) - receipts_before
    summary.items_registered += len(items)
    summary.receipts_queued += receipts
    if message.state != old_state:
        summary.states_changed += 1
    if items or message.state != old_state:
        serials = "、".join(item.serial for item in items) or "无"
        old_label = label(MESSAGE_STATE_LABELS, old_state)
        new_label = label(MESSAGE_STATE_LABELS, message.state)
        summary.changes.append(f"邮件 {message.id}：{old_label} → {new_label}，新登记 {serials}，回执 {receipts} 封")


def _count_receipts(session: Session, message: Message) -> int:
    return session.scalar(select(func.count(OutboxMail.id)).where(OutboxMail.message_db_id == message.id)) or 0


def _update_registered(
    session: Session, ctx: RegisterContext, message: Message, raw: bytes, summary: ReparseSummary
) -> None:
    """Update a registered message's items in place, and register items found only now, without a receipt."""
    # read_message also runs the configured .doc converter, as intake does; without it a converted
    # item would lose its text here.
    parsed = read_message(ctx, raw, message.internaldate)
    if isinstance(parsed, ParseFailure):
        summary.failed += 1
        summary.changes.append(f"邮件 {message.id}：重新解析失败（{parsed.reason}），原登记内容保持不变")
        log.warning("reparse of message %d: parsing failed, items kept", message.id)
        return
    drafts = extract_items(parsed)
    if not drafts:
        summary.failed += 1
        summary.changes.append(f"邮件 {message.id}：重新解析未得到信息，原登记内容保持不变")
        return

    attachments = _replace_attachments(session, ctx, message, parsed)
    items = list(message.items)
    pairs, extra = _match_drafts(items, drafts, parsed)
    now = ctx.clock.now()
    for item, draft in pairs:
        if _update_item(session, ctx, message, parsed, item, draft, drafts, attachments, now, summary):
            summary.items_updated += 1
        else:
            summary.items_unchanged += 1
    for draft in extra:
        item, _link = register_draft(
            session,
            ctx,
            message,
            parsed,
            draft,
            attachments,
            photo_count=count_photos(parsed, draft, first=False),
            command="reparse",
        )
        summary.items_added += 1
        summary.changes.append(f"{item.serial}：重新解析时在邮件 {message.id} 中新发现的信息，已登记（不另发回执）")
    _drop_unused_attachments(session, message, attachments)


def _replace_attachments(
    session: Session, ctx: RegisterContext, message: Message, parsed: ParsedMessage
) -> list[Attachment]:
    """Store the attachments as parsed now; the old rows are dropped by ``_drop_unused_attachments``."""
    session.flush()
    return store_attachments(session, ctx, message, parsed)


def _drop_unused_attachments(session: Session, message: Message, current: list[Attachment]) -> None:
    """Point items still on an old attachment row at the new row of the same file, then delete unused old rows.

    An old row whose file is gone from the new parse stays while an item refers to it.
    """
    session.flush()
    current_ids = {row.id for row in current}
    by_sha256 = {row.sha256: row.id for row in reversed(current)}
    old_rows = [
        row
        for row in session.scalars(select(Attachment).where(Attachment.message_db_id == message.id))
        if row.id not in current_ids
    ]
    old_sha256 = {row.id: row.sha256 for row in old_rows}
    for item in session.scalars(select(Item).where(Item.message_db_id == message.id)):
        if item.attachment_id in old_sha256 and old_sha256[item.attachment_id] in by_sha256:
            item.attachment_id = by_sha256[old_sha256[item.attachment_id]]
    session.flush()
    used = set(session.scalars(select(Item.attachment_id).where(Item.message_db_id == message.id)))
    for row in old_rows:
        if row.id not in used:
            session.delete(row)
    session.flush()
    session.expire(message, ["attachments"])


def _match_drafts(
    items: list[Item], drafts: list[ItemDraft], parsed: ParsedMessage
) -> tuple[list[tuple[Item, ItemDraft]], list[ItemDraft]]:
    """Pair registered items with new drafts: by document sha256 first, then in order.

    Returns the pairs and the drafts left over. Items left over keep their fields unchanged.
    """
    remaining_items = list(items)
    remaining_drafts: list[ItemDraft] = []
    pairs: list[tuple[Item, ItemDraft]] = []
    for draft in drafts:
        sha256 = _draft_sha256(draft, parsed)
        match = next(
            (item for item in remaining_items if sha256 is not None and _item_sha256(item) == sha256),
            None,
        )
        if match is None:
            remaining_drafts.append(draft)
            continue
        remaining_items.remove(match)
        pairs.append((match, draft))
    leftover = remaining_drafts[len(remaining_items) :]
    pairs.extend(zip(remaining_items, remaining_drafts, strict=False))
    return pairs, leftover


def _draft_sha256(draft: ItemDraft, parsed: ParsedMessage) -> str | None:
    if draft.attachment_index is None or draft.attachment_index >= len(parsed.attachments):
        return None
    return parsed.attachments[draft.attachment_index].sha256


def _item_sha256(item: Item) -> str | None:
    if item.attachment_id is None:
        return None
    attachment = next((row for row in item.message.attachments if row.id == item.attachment_id), None)
    return attachment.sha256 if attachment else None


def _update_item(
    session: Session,
    ctx: RegisterContext,
    message: Message,
    parsed: ParsedMessage,
    item: Item,
    draft: ItemDraft,
    drafts: list[ItemDraft],
    attachments: list[Attachment],
    now: datetime,
    summary: ReparseSummary,
) -> bool:
    """Set ``item``'s parsed fields from ``draft`` and link it if it has no link yet; return whether it changed.

    A change of ``attachment_id`` or ``body_chars`` alone is not reported: the first always points
    at the newly stored row, and the second follows ``body_text``.
    """
    before = {name: getattr(item, name) for name in FIELD_LABELS}
    photo_count = count_photos(parsed, draft, first=draft is drafts[0])
    for name, value in item_fields(ctx, message, parsed, draft, attachments, photo_count=photo_count).items():
        setattr(item, name, value)
    assign_deadline(session, ctx, item)  # the category or the conference date may have changed
    link = None
    if item.revises_id is None and item.same_item_as_id is None:
        link = link_item(session, ctx, message, parsed, item, draft, attachments)
    changed = [name for name in FIELD_LABELS if name != "attachment_id" and getattr(item, name) != before[name]]
    if not changed and link is None:
        return False

    labels = [FIELD_LABELS[name] for name in changed]
    if link is not None and link.kind is LinkKind.REVISION:
        labels.append(f"认定为 {link.target.serial} 的修改稿")
    elif link is not None:
        labels.append(f"认定与 {link.target.serial} 为同一份文件")
    text = "、".join(labels)
    summary.changes.append(f"{item.serial}：更新 {text}")
    session.add(
        ItemEvent(
            item_id=item.id,
            at=now,
            actor=SYSTEM_ACTOR,
            via_message_id=message.message_id,
            command="reparse",
            old_state=str(item.state),
            new_state=str(item.state),
            comment=f"重新解析原始邮件，更新了{text}",
        )
    )
    return True
