"""SQLAlchemy models: folder sync state, messages, items, attachments, events and the outbox."""

from __future__ import annotations

import enum
from datetime import UTC, date, datetime
from decimal import Decimal

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Enum,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Numeric,
    String,
    Table,
    Text,
    TypeDecorator,
    Unicode,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship, validates

from parsers.titles import TITLE_KEY_CHARS, title_key


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
    COMMAND = "command"  # an office mail whose command lines were carried out (see its reply)
    DECISION = "decision"  # a leader's reply that decided at least one item
    UNDECIDED = "undecided"  # a reply to an approval request that decided nothing; the reason explains why


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
    CANCELLED = "cancelled"  # withdrawn before it was sent (e.g. an approval request voided by 撤销)


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
    __table_args__ = (
        UniqueConstraint("year", "seq", name="uq_items_year_seq"),
        # Covering indexes of the bulletin's GROUP BY queries: no table row is read (bench/bulletin.py).
        Index("ix_items_unit_received", "unit_code", "received_at", "state", "same_item_as_id"),
        Index("ix_items_unit_submitted", "unit_code", "submitted_at", "state", "same_item_as_id"),
        # The revision lookup (daemon.links) finds an earlier item by its title key.
        Index("ix_items_title_key", "title_key"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    serial: Mapped[str] = mapped_column(String(16), unique=True)
    year: Mapped[int] = mapped_column(Integer)
    seq: Mapped[int] = mapped_column(Integer)
    message_db_id: Mapped[int] = mapped_column(ForeignKey("messages.id"), index=True)
    attachment_id: Mapped[int | None] = mapped_column(ForeignKey("attachments.id"))
    unit_code: Mapped[str] = mapped_column(String(64), index=True)
    title: Mapped[str] = mapped_column(Text)
    # normalise_title(title), cut short; set with the title (see _set_title_key) and indexed.
    title_key: Mapped[str] = mapped_column(String(TITLE_KEY_CHARS), default="", server_default="")
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
    # 1 is the item as received; the office's edited documents and applied edits add ItemVersion rows.
    version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    # An edit the leader asked for with the approval, still to be made before the item is submitted.
    edit_pending: Mapped[str | None] = mapped_column(Text)
    # Time limit (daemon.deadlines): when the office must have submitted it, and the rule in words.
    deadline_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    deadline_rule: Mapped[str | None] = mapped_column(String(200))
    event_date: Mapped[date | None] = mapped_column(Date)  # 新闻通气会: the day of the press conference
    commission_id: Mapped[int | None] = mapped_column(ForeignKey("commissions.id"), index=True)  # answers 约稿
    submitted_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)  # 报送两办, for tallies
    revises_id: Mapped[int | None] = mapped_column(ForeignKey("items.id"))  # the earlier item this replaces
    same_item_as_id: Mapped[int | None] = mapped_column(ForeignKey("items.id"))  # same document, other mail

    message: Mapped[Message] = relationship(back_populates="items")
    events: Mapped[list[ItemEvent]] = relationship(back_populates="item", order_by="ItemEvent.id")
    versions: Mapped[list[ItemVersion]] = relationship(back_populates="item", order_by="ItemVersion.version")
    adoptions: Mapped[list[Adoption]] = relationship(back_populates="item", order_by="Adoption.id")

    @property
    def warning_list(self) -> list[str]:
        return [w for w in (self.warnings or "").splitlines() if w]

    @validates("title")
    def _set_title_key(self, _name: str, title: str) -> str:
        self.title_key = title_key(title)
        return title


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


class ItemVersion(Base):
    """A later version of an item's text: the office's edited document, or an edit the leader asked for.

    Version 1 is the item as received (the Item row itself); every earlier version stays stored.
    """

    __tablename__ = "item_versions"
    __table_args__ = (UniqueConstraint("item_id", "version", name="uq_item_versions_item_version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(Text)
    body_text: Mapped[str] = mapped_column(Text)
    attachment_id: Mapped[int | None] = mapped_column(ForeignKey("attachments.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    actor: Mapped[str] = mapped_column(String(320))
    via_message_id: Mapped[str | None] = mapped_column(String(998))
    reason: Mapped[str] = mapped_column(Text)

    item: Mapped[Item] = relationship(back_populates="versions")


class ApprovalState(enum.StrEnum):
    OPEN = "open"  # waiting for the leader's reply
    USED = "used"  # a reply decided with it; its token is spent
    VOID = "void"  # replaced (ask-back, undo, another leader decided) before it was used


class ApprovalRequest(Base):
    """An approval request mailed to one leader for one item or a numbered batch.

    The reply token is an HMAC over this row's id, leader, expiry and the items with their versions
    (daemon.tokens); the token itself is never stored.
    """

    __tablename__ = "approval_requests"
    __table_args__ = (Index("ix_approval_requests_state", "state"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    leader: Mapped[str] = mapped_column(String(320))
    action: Mapped[str] = mapped_column(String(32), default="decide")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    state: Mapped[ApprovalState] = mapped_column(_enum(ApprovalState), default=ApprovalState.OPEN)
    message_id: Mapped[str | None] = mapped_column(String(998))  # of the request mail
    requested_by: Mapped[str] = mapped_column(String(320))
    via_message_id: Mapped[str | None] = mapped_column(String(998))  # the office's command mail
    asks_back_id: Mapped[int | None] = mapped_column(ForeignKey("approval_requests.id"))  # ask-back of
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    used_by_message_db_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id"))

    entries: Mapped[list[ApprovalEntry]] = relationship(
        back_populates="request", order_by="ApprovalEntry.position", cascade="all, delete-orphan"
    )


class ApprovalEntry(Base):
    """One item of an approval request, at the version the leader was shown, under its list number."""

    __tablename__ = "approval_entries"
    __table_args__ = (UniqueConstraint("request_id", "position", name="uq_approval_entries_position"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("approval_requests.id"), index=True)
    position: Mapped[int] = mapped_column(Integer)  # 1-based list number in the request
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id"), index=True)
    item_version: Mapped[int] = mapped_column(Integer)
    decision: Mapped[str | None] = mapped_column(String(32))  # what the reply decided for this item

    request: Mapped[ApprovalRequest] = relationship(back_populates="entries")
    item: Mapped[Item] = relationship()


class Adoption(Base):
    """One adoption (采用) of a submitted item by an outlet, with the points of the rules then in force."""

    __tablename__ = "adoptions"
    __table_args__ = (Index("ix_adoptions_adopted_cover", "adopted_on", "revoked_at", "item_id", "points"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id"), index=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("item_events.id"))
    adopted_on: Mapped[date] = mapped_column(Date, index=True)
    outlet: Mapped[str] = mapped_column(String(200))
    publication: Mapped[str] = mapped_column(String(200), default="")
    issue: Mapped[str] = mapped_column(String(100), default="")
    instructed: Mapped[bool] = mapped_column(Boolean, default=False)
    instruction_level: Mapped[str] = mapped_column(String(100), default="")
    outlet_level: Mapped[str] = mapped_column(String(100), default="")
    points: Mapped[Decimal] = mapped_column(Numeric(8, 2), default=Decimal(0))
    rules_name: Mapped[str] = mapped_column(String(100), default="")
    explanation: Mapped[str] = mapped_column(Text, default="")
    actor: Mapped[str] = mapped_column(String(320))
    via_message_id: Mapped[str | None] = mapped_column(String(998))
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # set when the office undid it

    item: Mapped[Item] = relationship(back_populates="adoptions")


class SenderAddress(Base):
    """A sender address the office added to a unit by the 登记 command; read beside the units file."""

    __tablename__ = "sender_addresses"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    address: Mapped[str] = mapped_column(String(320), unique=True)
    unit_code: Mapped[str] = mapped_column(String(64))
    added_at: Mapped[datetime] = mapped_column(UTCDateTime)
    added_by: Mapped[str] = mapped_column(String(320))
    via_message_id: Mapped[str | None] = mapped_column(String(998))


class Digest(Base):
    """One office digest; ``slot`` (e.g. "2026-12-04 09:00") makes sending the same digest twice impossible."""

    __tablename__ = "digests"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    slot: Mapped[str] = mapped_column(String(32), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_item_id: Mapped[int] = mapped_column(Integer)  # items above this id are new in the next digest
    last_message_id: Mapped[int] = mapped_column(Integer)  # likewise for held and undecided mail
    sent: Mapped[bool] = mapped_column(Boolean)  # False: nothing new or pending, so no mail went out
    outbox_id: Mapped[int | None] = mapped_column(ForeignKey("outbox.id"))


class CommissionState(enum.StrEnum):
    OPEN = "open"
    CLOSED = "closed"  # the deadline passed and the overdue notices went out, or the office closed it
    CANCELLED = "cancelled"


class Commission(Base):
    """A piece the office commissioned (约稿) from some units on a topic, with a deadline."""

    __tablename__ = "commissions"
    __table_args__ = (UniqueConstraint("year", "seq", name="uq_commissions_year_seq"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)  # e.g. "约稿2026-003", quoted in every mail
    year: Mapped[int] = mapped_column(Integer)
    seq: Mapped[int] = mapped_column(Integer)
    topic: Mapped[str] = mapped_column(Text)
    requirements: Mapped[str] = mapped_column(Text, default="")
    deadline_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    state: Mapped[CommissionState] = mapped_column(_enum(CommissionState), default=CommissionState.OPEN)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_by: Mapped[str] = mapped_column(String(320))
    via_message_id: Mapped[str | None] = mapped_column(String(998))

    units: Mapped[list[CommissionUnit]] = relationship(
        back_populates="commission", order_by="CommissionUnit.id", cascade="all, delete-orphan"
    )


class CommissionUnit(Base):
    """One unit requested to write a commissioned piece: when it was notified and reminded, and what it sent."""

    __tablename__ = "commission_units"
    __table_args__ = (UniqueConstraint("commission_id", "unit_code", name="uq_commission_units_unit"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    commission_id: Mapped[int] = mapped_column(ForeignKey("commissions.id"), index=True)
    unit_code: Mapped[str] = mapped_column(String(64))
    notified_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    answered_item_id: Mapped[int | None] = mapped_column(ForeignKey("items.id"))
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    overdue_notified_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    commission: Mapped[Commission] = relationship(back_populates="units")


class Reminder(Base):
    """A reminder or alert that went out (or was decided against); ``key`` makes each one happen once."""

    __tablename__ = "reminders"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(200), unique=True)  # e.g. "target:2026-11:cd"
    kind: Mapped[str] = mapped_column(String(50))  # target, holiday_summary, commission, overdue, emergency
    unit_code: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    outbox_id: Mapped[int | None] = mapped_column(ForeignKey("outbox.id"))


class Bulletin(Base):
    """A monthly or yearly bulletin (通报); ``period`` such as "2026-11" or "2026" with its kind is unique."""

    __tablename__ = "bulletins"
    __table_args__ = (UniqueConstraint("kind", "period", name="uq_bulletins_kind_period"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # monthly or yearly
    period: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    outbox_id: Mapped[int | None] = mapped_column(ForeignKey("outbox.id"))


# The scheduler's job store (APScheduler's SQLAlchemyJobStore), declared here with the columns that
# APScheduler 3 creates so that migrations create it and compare it like the other tables.
SCHEDULED_JOBS_TABLE = "scheduled_jobs"
scheduled_jobs = Table(
    SCHEDULED_JOBS_TABLE,
    Base.metadata,
    Column("id", Unicode(191), primary_key=True),
    Column("next_run_time", Float(25), index=True),
    Column("job_state", LargeBinary, nullable=False),
)
