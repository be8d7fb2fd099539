"""SQLAlchemy models: folder sync state, messages, items, attachments, events and the outbox."""

from __future__ import annotations

import enum
from datetime import UTC, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Enum,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


class UTCDateTime(TypeDecorator[datetime]):
    """An aware datetime stored as naive UTC, so SQLite and PostgreSQL behave alike."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTCDateTime column")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


class Base(DeclarativeBase):
    metadata = MetaData(
        naming_convention={
            "ix": "ix_%(column_0_label)s",
            "uq": "uq_%(table_name)s_%(column_0_name)s",
            "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
            "pk": "pk_%(table_name)s",
        }
    )


def _enum(cls: type[enum.Enum]) -> Enum:
    # Store the value (e.g. "registered"), not the member name; no native PostgreSQL enum type, so
    # adding a member later needs no ALTER TYPE.
    return Enum(cls, values_callable=lambda members: [m.value for m in members], native_enum=False, length=32)


class MessageState(enum.StrEnum):
    """Outcome of a stored message."""

    REGISTERED = "registered"  # one or more items were registered from it
    HELD = "held"  # unknown sender: kept for the office, no receipt
    DUPLICATE = "duplicate"  # the same mail was stored before
    AUTO_REPLY = "auto_reply"
    BOUNCE = "bounce"
    LIST = "list"  # bulk or mailing-list mail
    NOT_ITEM = "not_item"  # from a known unit, but nothing in it reads as an item
    QUARANTINED = "quarantined"  # could not be parsed or registered; the reason is stored
    DISCARDED = "discarded"  # a quarantined message the office chose to drop; raw bytes stay archived


class ServerAction(enum.StrEnum):
    """Whether the configured post-action (flag or move) has been applied on the IMAP server."""

    PENDING = "pending"
    DONE = "done"


class ItemState(enum.StrEnum):
    """Position of an item in the office's process; daemon.workflow lists the allowed changes."""

    REGISTERED = "registered"
    EDITED = "edited"  # the office edited the text
    PENDING_APPROVAL = "pending_approval"  # sent to the leader in charge (送审)
    APPROVED = "approved"
    RETURNED = "returned"  # back to the unit for revision (退回)
    NOT_SENT = "not_sent"  # the leader decided it is not to be sent on
    SUBMITTED = "submitted"  # sent on to the two general offices (报送两办)
    ADOPTED = "adopted"  # adopted (采用) by at least one outlet
    SUPERSEDED = "superseded"  # a later revision (修改稿) from the same unit replaced it


class OutboxState(enum.StrEnum):
    PENDING = "pending"
    SENDING = "sending"  # handed to SMTP; outcome not yet recorded
    SENT = "sent"
    FAILED = "failed"  # gave up after the configured attempts


class FolderState(Base):
    """Sync state of one IMAP folder of one account."""

    __tablename__ = "folder_states"
    __table_args__ = (UniqueConstraint("account", "folder"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account: Mapped[str] = mapped_column(String(200))
    folder: Mapped[str] = mapped_column(String(500))
    uidvalidity: Mapped[int] = mapped_column(BigInteger)
    highest_uid: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Message(Base):
    """One mail as fetched from the server, with its source key and the archive key of its raw bytes."""

    __tablename__ = "messages"
    __table_args__ = (
        UniqueConstraint("account", "folder", "uidvalidity", "uid", name="uq_messages_source"),
        Index("ix_messages_sha256", "sha256"),
        Index("ix_messages_content_sha256", "content_sha256"),
        Index("ix_messages_message_id", "message_id"),
        Index("ix_messages_state", "state"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account: Mapped[str] = mapped_column(String(200))
    folder: Mapped[str] = mapped_column(String(500))
    uidvalidity: Mapped[int] = mapped_column(BigInteger)
    uid: Mapped[int] = mapped_column(BigInteger)
    message_id: Mapped[str | None] = mapped_column(String(998))
    sha256: Mapped[str] = mapped_column(String(64))  # of the raw bytes; the archive key
    content_sha256: Mapped[str] = mapped_column(String(64))  # parsers.fingerprint: ignores trace headers
    size: Mapped[int] = mapped_column(Integer)
    sender: Mapped[str | None] = mapped_column(String(320))
    sender_name: Mapped[str | None] = mapped_column(String(500))
    unit_code: Mapped[str | None] = mapped_column(String(64))
    subject: Mapped[str | None] = mapped_column(Text)
    date_header: Mapped[datetime | None] = mapped_column(UTCDateTime)
    received_header_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # newest Received hop
    internaldate: Mapped[datetime | None] = mapped_column(UTCDateTime)
    fetched_at: Mapped[datetime] = mapped_column(UTCDateTime)
    state: Mapped[MessageState] = mapped_column(_enum(MessageState))
    reason: Mapped[str | None] = mapped_column(Text)  # quarantine reason, or why it is not an item
    detail: Mapped[str | None] = mapped_column(Text)  # traceback of a quarantine
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")  # parse/register tries
    duplicate_of_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id"))
    server_action: Mapped[ServerAction] = mapped_column(_enum(ServerAction), default=ServerAction.PENDING)

    items: Mapped[list[Item]] = relationship(back_populates="message", order_by="Item.id")
    attachments: Mapped[list[Attachment]] = relationship(back_populates="message", order_by="Attachment.position")


class Item(Base):
    """A registered information item (政务信息), numbered per year."""

    __tablename__ = "items"
    __table_args__ = (UniqueConstraint("year", "seq", name="uq_items_year_seq"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    serial: Mapped[str] = mapped_column(String(16), unique=True)
    year: Mapped[int] = mapped_column(Integer)
    seq: Mapped[int] = mapped_column(Integer)
    message_db_id: Mapped[int] = mapped_column(ForeignKey("messages.id"), index=True)
    attachment_id: Mapped[int | None] = mapped_column(ForeignKey("attachments.id"))
    unit_code: Mapped[str] = mapped_column(String(64), index=True)
    title: Mapped[str] = mapped_column(Text)
    category: Mapped[str] = mapped_column(String(32))
    source: Mapped[str] = mapped_column(String(32))
    body_text: Mapped[str] = mapped_column(Text)
    body_chars: Mapped[int] = mapped_column(Integer)
    has_review_line: Mapped[bool] = mapped_column(Boolean)
    reviewer: Mapped[str | None] = mapped_column(String(100))
    signer: Mapped[str | None] = mapped_column(String(100))
    contact: Mapped[str | None] = mapped_column(String(100))
    phone: Mapped[str | None] = mapped_column(String(100))
    warnings: Mapped[str | None] = mapped_column(Text)  # one user-facing warning per line
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)  # the server's receipt time
    state: Mapped[ItemState] = mapped_column(_enum(ItemState), default=ItemState.REGISTERED)
    content_unit_code: Mapped[str | None] = mapped_column(String(64))  # author by content (forwards)
    photo_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    revises_id: Mapped[int | None] = mapped_column(ForeignKey("items.id"))  # the earlier item this replaces
    same_item_as_id: Mapped[int | None] = mapped_column(ForeignKey("items.id"))  # same document, other mail

    message: Mapped[Message] = relationship(back_populates="items")
    events: Mapped[list[ItemEvent]] = relationship(back_populates="item", order_by="ItemEvent.id")

    @property
    def warning_list(self) -> list[str]:
        return [w for w in (self.warnings or "").splitlines() if w]


class Attachment(Base):
    """A part of a message that has a file name; its bytes live in the archive under their sha256."""

    __tablename__ = "attachments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    message_db_id: Mapped[int] = mapped_column(ForeignKey("messages.id"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    filename: Mapped[str] = mapped_column(Text)  # decoded, as the sender named it; never a path
    content_type: Mapped[str] = mapped_column(String(255))
    kind: Mapped[str] = mapped_column(String(32))
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    depth: Mapped[int] = mapped_column(Integer, default=0)
    text: Mapped[str | None] = mapped_column(Text)
    warning: Mapped[str | None] = mapped_column(Text)

    message: Mapped[Message] = relationship(back_populates="attachments")


class ItemEvent(Base):
    """One change of an item's state: when, who, through which mail or command."""

    __tablename__ = "item_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    actor: Mapped[str] = mapped_column(String(320))
    via_message_id: Mapped[str | None] = mapped_column(String(998))
    command: Mapped[str | None] = mapped_column(String(100))
    old_state: Mapped[str | None] = mapped_column(String(32))
    new_state: Mapped[str] = mapped_column(String(32))
    comment: Mapped[str | None] = mapped_column(Text)

    item: Mapped[Item] = relationship(back_populates="events")


class OutboxMail(Base):
    """An outgoing mail, built in full before it is queued; ``key`` makes queuing it twice impossible."""

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_due", "state", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(200), unique=True)
    purpose: Mapped[str] = mapped_column(String(50))
    mail_from: Mapped[str] = mapped_column(String(320))
    recipients: Mapped[str] = mapped_column(Text)  # one address per line
    message_id: Mapped[str] = mapped_column(String(998))
    raw: Mapped[bytes] = mapped_column(LargeBinary)
    state: Mapped[OutboxState] = mapped_column(_enum(OutboxState), default=OutboxState.PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    item_id: Mapped[int | None] = mapped_column(ForeignKey("items.id"))
    message_db_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id"))

    @property
    def recipient_list(self) -> list[str]:
        return [r for r in self.recipients.splitlines() if r]


class FetchFailure(Base):
    """A UID whose FETCH failed; after repeated failures it is recorded as quarantined and skipped."""

    __tablename__ = "fetch_failures"
    __table_args__ = (UniqueConstraint("account", "folder", "uidvalidity", "uid", name="uq_fetch_failures_source"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account: Mapped[str] = mapped_column(String(200))
    folder: Mapped[str] = mapped_column(String(500))
    uidvalidity: Mapped[int] = mapped_column(BigInteger)
    uid: Mapped[int] = mapped_column(BigInteger)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    first_failed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_failed_at: Mapped[datetime] = mapped_column(UTCDateTime)
