"""Item states: the allowed changes, and one ItemEvent row for every change made.

The office's process: registered → (edited) → pending approval → approved, returned to the unit or
not to be sent → submitted to the two general offices (两办) → adopted, possibly by several outlets.
A revision (修改稿) from the unit supersedes the item at any point before it was submitted.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from daemon.errors import DaemonError
from daemon.models import Item, ItemEvent, ItemState, ItemVersion
from daemon.views import ITEM_STATE_LABELS, label

_BEFORE_SUBMISSION = {ItemState.SUPERSEDED, ItemState.RETURNED, ItemState.NOT_SENT, ItemState.EDITED}

ALLOWED: dict[ItemState, frozenset[ItemState]] = {
    ItemState.REGISTERED: frozenset({ItemState.PENDING_APPROVAL, *_BEFORE_SUBMISSION}),
    ItemState.EDITED: frozenset({ItemState.PENDING_APPROVAL, *_BEFORE_SUBMISSION}),
    # Sending for approval again (after an edit, or to another leader) replaces the open request.
    ItemState.PENDING_APPROVAL: frozenset({ItemState.APPROVED, ItemState.PENDING_APPROVAL, *_BEFORE_SUBMISSION}),
    ItemState.APPROVED: frozenset({ItemState.SUBMITTED, ItemState.PENDING_APPROVAL, *_BEFORE_SUBMISSION}),
    # RETURNED again: the leader sent it back for revision, then the office returns it to the unit.
    ItemState.RETURNED: frozenset(
        {ItemState.PENDING_APPROVAL, ItemState.EDITED, ItemState.RETURNED, ItemState.SUPERSEDED}
    ),
    ItemState.NOT_SENT: frozenset(),
    # A submitted item can be adopted again by another outlet, so ADOPTED may follow ADOPTED.
    ItemState.SUBMITTED: frozenset({ItemState.ADOPTED}),
    ItemState.ADOPTED: frozenset({ItemState.ADOPTED}),
    ItemState.SUPERSEDED: frozenset(),
}


class TransitionError(DaemonError):
    """A state change that the office's process does not allow; the message is user-facing Chinese."""


def change_state(
    session: Session,
    item: Item,
    new_state: ItemState,
    *,
    actor: str,
    at: datetime,
    command: str,
    via_message_id: str | None = None,
    comment: str | None = None,
) -> ItemEvent:
    """Move ``item`` to ``new_state`` and record the event; raise TransitionError if not allowed."""
    old_state = ItemState(item.state)
    if new_state not in ALLOWED[old_state]:
        raise TransitionError(
            f"{item.serial} 当前状态为“{label(ITEM_STATE_LABELS, old_state)}”，"
            f"不能改为“{label(ITEM_STATE_LABELS, new_state)}”"
        )
    return _record(
        session, item, new_state, actor=actor, at=at, command=command, via_message_id=via_message_id, comment=comment
    )


def undo_last_change(
    session: Session,
    item: Item,
    *,
    actor: str,
    at: datetime,
    via_message_id: str | None = None,
    same_side: Callable[[str], bool] | None = None,
) -> tuple[ItemEvent, ItemEvent]:
    """Put ``item`` back in the state before its last change (撤销), recording that too.

    Only a change made by ``actor`` (or by anyone ``same_side`` accepts, e.g. any of the office's
    addresses) can be undone, and only while it is the item's latest event, so an undo never hides
    what someone else did since. Returns the undone event and the new one.
    """
    latest = session.scalar(
        select(ItemEvent).where(ItemEvent.item_id == item.id).order_by(ItemEvent.id.desc()).limit(1)
    )
    ours = latest is not None and (latest.actor == actor or (same_side is not None and same_side(latest.actor)))
    if latest is None or not ours or latest.command == "undo" or latest.old_state is None:
        raise TransitionError(f"{item.serial} 没有可撤销的操作：只能撤销办公室对该信息的最后一次操作")
    undo = _record(
        session,
        item,
        ItemState(latest.old_state),
        actor=actor,
        at=at,
        command="undo",
        via_message_id=via_message_id,
        comment=f"撤销第 {latest.id} 号操作（{latest.command}）",
    )
    return latest, undo


def _record(
    session: Session,
    item: Item,
    new_state: ItemState,
    *,
    actor: str,
    at: datetime,
    command: str,
    via_message_id: str | None,
    comment: str | None,
) -> ItemEvent:
    """Set the item's state and add the event row of that change."""
    event = ItemEvent(
        item_id=item.id,
        at=at,
        actor=actor,
        via_message_id=via_message_id,
        command=command,
        old_state=ItemState(item.state),
        new_state=new_state,
        comment=comment,
    )
    item.state = new_state
    session.add(event)
    session.flush()
    return event


@dataclass(frozen=True)
class ItemText:
    """The text of an item's current version."""

    version: int
    title: str
    body_text: str
    attachment_id: int | None


def current_text(item: Item) -> ItemText:
    """Return the newest version of ``item``: its latest ItemVersion, else the item as received."""
    if item.versions:
        latest = item.versions[-1]
        return ItemText(latest.version, latest.title, latest.body_text, latest.attachment_id)
    return ItemText(1, item.title, item.body_text, item.attachment_id)


def add_version(
    session: Session,
    item: Item,
    *,
    title: str,
    body_text: str,
    attachment_id: int | None,
    actor: str,
    at: datetime,
    reason: str,
    via_message_id: str | None = None,
) -> ItemVersion:
    """Store a new version of ``item``'s text; every earlier version stays stored."""
    version = ItemVersion(
        item_id=item.id,
        version=current_text(item).version + 1,
        title=title,
        body_text=body_text,
        attachment_id=attachment_id,
        created_at=at,
        actor=actor,
        via_message_id=via_message_id,
        reason=reason,
    )
    session.add(version)
    item.versions.append(version)
    item.version = version.version
    session.flush()
    return version
