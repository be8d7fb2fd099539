"""Links between registered items: revisions (修改稿) that supersede an earlier item, and copies of one document.

Counting rule for tallies: an item with ``same_item_as_id`` set is a second copy of a document
already registered (for example a division forwarding a prefecture's .docx). It keeps its own
serial, so the sender gets a receipt it can quote, but it is not a separate item and must not be
counted again: received/adopted tallies count only items whose ``same_item_as_id`` is NULL. A
SUPERSEDED item is replaced by its revision, so tallies count the revision instead of it.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from difflib import SequenceMatcher

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from daemon.models import Attachment, Item, ItemEvent, ItemState, OutboxMail
from parsers.titles import title_key

log = logging.getLogger(__name__)

SYSTEM_ACTOR = "zwxx"  # ItemEvent.actor of changes made by the daemon; the CLI shows it as 系统

_SIMILAR_TITLE_RATIO = 0.8


class LinkKind(enum.StrEnum):
    """Kind of link from a new item to an earlier one."""

    REVISION = "revision"  # replaces the earlier item, which becomes SUPERSEDED
    SAME_ITEM = "same_item"  # the same document again, in another message


@dataclass(frozen=True)
class ItemLink:
    """The earlier item a new item is linked to."""

    kind: LinkKind
    target: Item


def find_link(
    session: Session,
    item: Item,
    *,
    document_sha256: str | None,
    marked_revision: bool,
    window_days: int,
    replied_to: Sequence[str] = (),
) -> ItemLink | None:
    """Return the earlier item that ``item`` repeats or revises, or None.

    The same document (by sha256) in another message wins over a revision. A revision is an item
    of the same content unit whose normalised title equals the new one: within ``window_days``
    of its receipt time, or at any earlier time when the mail is marked as 修改稿. A marked mail
    whose title changed also matches the most similar title within the window. Only items with
    a smaller id than ``item`` and from other messages are considered. A mail that answers the
    office's return notice (``replied_to`` holds its In-Reply-To and References) revises the
    returned item whatever its title, as long as it comes from the same unit.
    """
    if document_sha256 is not None:
        original = _find_same_document(session, item, document_sha256)
        if original is not None:
            return ItemLink(LinkKind.SAME_ITEM, original)
    answered = _find_answered_return(session, item, replied_to)
    if answered is not None:
        return ItemLink(LinkKind.REVISION, _newest_revision(session, answered, item))
    earlier = _find_revised(session, item, marked_revision=marked_revision, window_days=window_days)
    if earlier is None:
        return None
    return ItemLink(LinkKind.REVISION, _newest_revision(session, earlier, item))


def _find_answered_return(session: Session, item: Item, replied_to: Sequence[str]) -> Item | None:
    ids = [i for i in replied_to if i]
    if not ids:
        return None
    target_id = session.scalar(
        select(OutboxMail.item_id)
        .where(OutboxMail.purpose == "return_notice", OutboxMail.message_id.in_(ids))
        .order_by(OutboxMail.id.desc())
        .limit(1)
    )
    target = session.get(Item, target_id) if target_id else None
    if target is None or target.id >= item.id or target.unit_code != item.unit_code:
        return None
    return target


def _find_same_document(session: Session, item: Item, sha256: str) -> Item | None:
    earlier = session.scalar(
        select(Item)
        .join(Attachment, Item.attachment_id == Attachment.id)
        .where(Attachment.sha256 == sha256, Item.id < item.id, Item.message_db_id != item.message_db_id)
        .order_by(Item.id)
        .limit(1)
    )
    if earlier is not None and earlier.same_item_as_id is not None:
        return session.get(Item, earlier.same_item_as_id)
    return earlier


def _find_revised(session: Session, item: Item, *, marked_revision: bool, window_days: int) -> Item | None:
    """Return the earlier item of the same content unit that ``item`` revises, by title key.

    The exact match reads the title-key index, so its cost does not grow with the register. The
    similar-title search of a marked revision reads only the id and key of the unit's items
    within the window.
    """
    unit_code = item.content_unit_code or item.unit_code
    window_start: datetime = item.received_at - timedelta(days=window_days)
    earlier = (
        or_(
            Item.content_unit_code == unit_code,
            and_(Item.content_unit_code.is_(None), Item.unit_code == unit_code),
        ),
        Item.id < item.id,
        Item.message_db_id != item.message_db_id,
        Item.received_at <= item.received_at,
        Item.same_item_as_id.is_(None),
    )
    newest_first = (Item.received_at.desc(), Item.id.desc())
    key = title_key(item.title)
    exact = select(Item).where(*earlier, Item.title_key == key).order_by(*newest_first).limit(1)
    if not marked_revision:
        # An item the office returned for revision waits for its resend however long it takes.
        exact = exact.where(or_(Item.received_at >= window_start, Item.state == ItemState.RETURNED))
    found = session.scalar(exact)
    if found is not None or not marked_revision or not key:
        return found
    best: tuple[float, int] | None = None
    recent = select(Item.id, Item.title_key).where(*earlier, Item.received_at >= window_start).order_by(*newest_first)
    for candidate_id, candidate_key in session.execute(recent):
        ratio = SequenceMatcher(None, candidate_key, key).ratio()
        if ratio >= _SIMILAR_TITLE_RATIO and (best is None or ratio > best[0]):
            best = (ratio, candidate_id)
    return session.get(Item, best[1]) if best else None


def _newest_revision(session: Session, earlier: Item, item: Item) -> Item:
    """Follow ``revises_id`` links forward from ``earlier`` to the newest revision older than ``item``."""
    current = earlier
    seen = {current.id}
    while True:
        newer = session.scalar(
            select(Item).where(Item.revises_id == current.id, Item.id < item.id).order_by(Item.id.desc()).limit(1)
        )
        if newer is None or newer.id in seen:
            return current
        seen.add(newer.id)
        current = newer


def apply_link(session: Session, item: Item, link: ItemLink, *, at: datetime, via_message_id: str | None) -> None:
    """Record ``link`` on ``item``; a revision supersedes its target with an event naming the new serial."""
    if link.kind is LinkKind.SAME_ITEM:
        item.same_item_as_id = link.target.id
        return
    item.revises_id = link.target.id
    target = link.target
    if target.state == ItemState.SUPERSEDED:
        return
    if target.state in (ItemState.SUBMITTED, ItemState.ADOPTED, ItemState.NOT_SENT):
        # What was sent on (or decided against) stays as it is; the revision is registered beside it.
        log.info("item %s revises %s, which is %s and stays so", item.serial, target.serial, target.state)
        return
    old_state = target.state
    target.state = ItemState.SUPERSEDED
    session.add(
        ItemEvent(
            item_id=target.id,
            at=at,
            actor=SYSTEM_ACTOR,
            via_message_id=via_message_id,
            command="supersede",
            old_state=str(old_state),
            new_state=str(ItemState.SUPERSEDED),
            comment=f"已被修改稿 {item.serial} 取代",
        )
    )
    log.info("item %s superseded by %s", target.serial, item.serial)


def describe_link(link_kind: LinkKind, target: Item, *, tz: tzinfo) -> str:
    """Return the Chinese receipt line for an item linked to ``target``."""
    if link_kind is LinkKind.REVISION:
        return f"本条为 {target.serial} 的修改稿，原稿 {target.serial} 已作废，以本条为准。"
    received = target.received_at.astimezone(tz).strftime("%Y年%m月%d日")
    return f"本条所附文件已于{received}收到并登记为 {target.serial}，本次登记不重复计数。"
