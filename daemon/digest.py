"""The office digest: new items, pending approvals, returned items and mail waiting for the office.

One digest per slot (a date and a configured time). Its row is written in the same transaction as
its outbox mail, so a slot is never reported twice, even after a restart. When there is nothing new
and nothing pending, the row is written with ``sent`` false and no mail goes out.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from email.message import EmailMessage

from sqlalchemy import select
from sqlalchemy.orm import Session

from daemon.commissions import open_commissions
from daemon.context import RegisterContext
from daemon.models import Attachment, Digest, Item, ItemEvent, ItemState, Message, MessageState
from daemon.notices import MailAttachment, build_mail, clean_header_text, local_time
from daemon.outbound import queue_mail
from daemon.templating import render
from daemon.views import ITEM_STATE_LABELS, MESSAGE_STATE_LABELS, label
from daemon.workflow import current_text

log = logging.getLogger(__name__)

# Messages that wait for the office until it acts on them, whenever they came.
_WAITING_STATES = (MessageState.HELD, MessageState.QUARANTINED)


@dataclass(frozen=True)
class DigestContent:
    """Content of one digest; ``empty`` when there is nothing new and nothing pending."""

    new_items: list[dict[str, object]]
    pending: list[dict[str, object]]
    edit_pending: list[dict[str, object]]
    returned: list[dict[str, object]]
    held: list[dict[str, object]]
    attachments: list[MailAttachment]
    last_item_id: int
    last_message_id: int
    commissions: list[dict[str, object]] = field(default_factory=list)  # open 约稿, pending until closed
    overdue: list[dict[str, object]] = field(default_factory=list)  # past their time limit, not yet submitted

    @property
    def empty(self) -> bool:
        return not (
            self.new_items
            or self.pending
            or self.edit_pending
            or self.returned
            or self.held
            or self.commissions
            or self.overdue
        )


def collect(session: Session, ctx: RegisterContext, *, now: datetime) -> tuple[DigestContent, Digest | None]:
    """Gather the digest's content since the last digest that was recorded."""
    settings = ctx.settings
    last = session.scalar(select(Digest).order_by(Digest.id.desc()).limit(1))
    after_item = last.last_item_id if last else 0
    after_message = last.last_message_id if last else 0
    new_items, attachments, budget = [], [], settings.digest.max_attachment_bytes
    for item in session.scalars(select(Item).where(Item.id > after_item).order_by(Item.id)):
        text = current_text(item)
        document = session.get(Attachment, text.attachment_id) if text.attachment_id else None
        note = ""
        if document is not None and settings.digest.attach_documents:
            if document.size <= budget:
                budget -= document.size
                attachments.append(
                    MailAttachment(
                        clean_header_text(f"{item.serial}-{document.filename}"),
                        ctx.archive.get(document.sha256),
                        document.content_type,
                    )
                )
            else:
                note = "附件较大，未随摘要发送，可用 zwxx show 查看"
        new_items.append(
            {
                **_item_row(ctx, item),
                "body_chars": item.body_chars,
                "category": item.category,
                "warnings": item.warning_list,
                "document": clean_header_text(f"{item.serial}-{document.filename}") if document else "",
                "note": note or _state_note(item),
            }
        )

    pending = [
        {**_item_row(ctx, item), "waiting": _waiting(session, item, now)}
        for item in session.scalars(select(Item).where(Item.state == ItemState.PENDING_APPROVAL).order_by(Item.id))
    ]
    edit_pending = [
        {**_item_row(ctx, item), "edit_pending": item.edit_pending}
        for item in session.scalars(
            select(Item).where(Item.state == ItemState.APPROVED, Item.edit_pending.is_not(None)).order_by(Item.id)
        )
    ]
    returned = [
        {**_item_row(ctx, item), "returned_at": local_time(_state_since(session, item) or item.received_at, settings)}
        for item in session.scalars(select(Item).where(Item.state == ItemState.RETURNED).order_by(Item.id))
    ]

    waiting = select(Message).where(
        (Message.state.in_(_WAITING_STATES))
        | ((Message.state == MessageState.UNDECIDED) & (Message.id > after_message))
    )
    held: list[dict[str, object]] = [
        {
            "state_label": label(MESSAGE_STATE_LABELS, message.state),
            "sender": message.sender or "（无发件人）",
            "subject": message.subject or "（无标题）",
            "fetched_at": local_time(message.fetched_at, settings),
            "reason": (message.reason or "").splitlines()[0] if message.reason else "",
        }
        for message in session.scalars(waiting.order_by(Message.id))
    ]
    newest_item = session.scalar(select(Item.id).order_by(Item.id.desc()).limit(1)) or 0
    newest_message = session.scalar(select(Message.id).order_by(Message.id.desc()).limit(1)) or 0
    content = DigestContent(
        new_items, pending, edit_pending, returned, held, attachments,
        last_item_id=max(newest_item, after_item), last_message_id=max(newest_message, after_message),
        commissions=open_commissions(session, ctx),
        overdue=_overdue(session, ctx, now),
    )  # fmt: skip
    return content, last


# States in which an item still waits for the office or the leader before it is submitted to 两办.
_NOT_YET_SUBMITTED = (
    ItemState.REGISTERED,
    ItemState.EDITED,
    ItemState.PENDING_APPROVAL,
    ItemState.APPROVED,
    ItemState.RETURNED,
)


def _overdue(session: Session, ctx: RegisterContext, now: datetime) -> list[dict[str, object]]:
    """Return the items past their time limit that are not submitted yet, oldest deadline first."""
    query = (
        select(Item)
        .where(Item.deadline_at.is_not(None), Item.deadline_at < now, Item.state.in_(_NOT_YET_SUBMITTED))
        .order_by(Item.deadline_at, Item.id)
    )
    return [
        {
            **_item_row(ctx, item),
            "deadline": local_time(item.deadline_at, ctx.settings),
            "state_label": label(ITEM_STATE_LABELS, item.state),
        }
        for item in session.scalars(query)
        if item.deadline_at is not None
    ]


def _item_row(ctx: RegisterContext, item: Item) -> dict[str, object]:
    unit = ctx.units.get(item.unit_code)
    return {
        "serial": item.serial,
        "unit_name": unit.short_name if unit else item.unit_code,
        "title": current_text(item).title,
        "edit_pending": item.edit_pending,
    }


def _state_note(item: Item) -> str:
    if item.state == ItemState.SUPERSEDED:
        return "已被之后的修改稿取代"
    if item.same_item_as_id is not None:
        return "与此前登记的信息为同一份文件，不重复计数"
    return ""


def _state_since(session: Session, item: Item) -> datetime | None:
    return session.scalar(
        select(ItemEvent.at)
        .where(ItemEvent.item_id == item.id, ItemEvent.new_state == str(item.state))
        .order_by(ItemEvent.id.desc())
        .limit(1)
    )


def _waiting(session: Session, item: Item, now: datetime) -> str:
    since = _state_since(session, item)
    if since is None:
        return ""
    hours = int((now - since).total_seconds() // 3600)
    return f"{hours // 24} 天 {hours % 24} 小时" if hours >= 24 else f"{hours} 小时"


def build_digest_mail(
    ctx: RegisterContext,
    content: DigestContent,
    *,
    slot: str,
    since: datetime | None,
    now: datetime,
    warning: str | None,
) -> EmailMessage:
    settings = ctx.settings
    body = render(
        "office/digest.txt.j2",
        slot_label=slot,
        since=local_time(since, settings) if since else "",
        calendar_warning=warning,
        new_items=content.new_items,
        pending=content.pending,
        edit_pending=content.edit_pending,
        returned=content.returned,
        held=content.held,
        commissions=content.commissions,
        overdue=content.overdue,
    )
    counts = (
        f"新信息 {len(content.new_items)} 条，待审批 {len(content.pending)} 条，"
        f"退回待改 {len(content.returned)} 条，待处理来信 {len(content.held)} 封"
    )
    return build_mail(
        settings,
        to=list(settings.office.addresses),
        subject=f"【政务信息摘要】{slot}：{counts}",
        body=body,
        key=f"digest:{slot}",
        kind="digest",
        now=now,
        attachments=content.attachments,
    )


def send_digest(session: Session, ctx: RegisterContext, *, slot: str, warning: str | None = None) -> Digest:
    """Record the digest of ``slot`` and queue its mail if there is anything to report; the caller commits.

    Calling it again for the same slot returns the digest already recorded and queues nothing.
    """
    existing = session.scalar(select(Digest).where(Digest.slot == slot))
    if existing is not None:
        return existing
    now = ctx.clock.now()
    content, last = collect(session, ctx, now=now)
    digest = Digest(
        slot=slot,
        created_at=now,
        last_item_id=content.last_item_id,
        last_message_id=content.last_message_id,
        sent=False,
    )
    if not ctx.settings.office.addresses:
        # No office address is configured, so the marks stay where they are: the first digest after
        # an address is configured still reports everything new since the last one sent.
        digest.last_item_id = last.last_item_id if last else 0
        digest.last_message_id = last.last_message_id if last else 0
    elif not content.empty:
        mail = build_digest_mail(
            ctx, content, slot=slot, since=last.created_at if last else None, now=now, warning=warning
        )
        row = queue_mail(
            session,
            key=f"digest:{slot}",
            purpose="digest",
            mail=mail,
            recipients=list(ctx.settings.office.addresses),
            now=now,
        )
        digest.sent = True
        digest.outbox_id = row.id if row is not None else None
    session.add(digest)
    session.flush()
    log.info(
        "digest %s: sent=%s new_items=%d pending=%d returned=%d held=%d",
        slot, digest.sent, len(content.new_items), len(content.pending), len(content.returned), len(content.held),
    )  # fmt: skip
    return digest
