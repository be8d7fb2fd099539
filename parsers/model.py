"""Typed results of the parsers: the contract between ``parsers`` and ``daemon``."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime


class DocumentKind(enum.StrEnum):
    """Kind of an attachment, decided from its bytes (magic numbers), not its name."""

    DOCX = "docx"
    DOC = "doc"  # legacy OLE2 Word (.doc, .wps): read only through daemon.convert
    PDF = "pdf"
    OFD = "ofd"  # GB/T 33190 fixed-layout document (a zip package with OFD.xml)
    ZIP = "zip"  # a zip archive that is neither .docx nor OFD; its members follow it as attachments
    TXT = "txt"
    IMAGE = "image"
    MESSAGE = "message"  # an attached message/rfc822
    OTHER = "other"


@dataclass(frozen=True)
class Attachment:
    """One MIME part that has a file name (or is an attached message), in walk order."""

    filename: str  # decoded; never used as a path
    content_type: str
    data: bytes
    sha256: str
    kind: DocumentKind
    text: str | None = None  # extracted text, None when the kind has no text or reading failed
    warning: str | None = None  # user-facing Chinese reason when the text could not be read
    depth: int = 0  # 0 for the mail's own parts, 1 for parts of an attached message, ...
    container_index: int | None = None  # index of the attached message or winmail.dat holding this file

    @property
    def size(self) -> int:
        return len(self.data)


@dataclass(frozen=True)
class ParsedMessage:
    """Decoded content and headers of one raw mail."""

    message_id: str | None
    subject: str
    sender: str | None  # From address, lower-cased
    sender_name: str
    date: datetime | None  # the Date header, None when missing or unparseable
    received_at: datetime | None  # the newest Received hop's time, if any
    to: tuple[str, ...]
    cc: tuple[str, ...]
    reply_to: str | None
    in_reply_to: str | None
    references: tuple[str, ...]
    mail_text: str  # the mail's own text (HTML converted), quoted history removed where recognised
    attachments: tuple[Attachment, ...]
    is_auto_reply: bool  # RFC 3834 Auto-Submitted other than "no", X-Autoreply, 自动回复 subjects
    is_bounce: bool  # multipart/report; report-type=delivery-status, or a mailer-daemon sender
    is_list: bool  # List-Id / List-Unsubscribe / Precedence: bulk, list or junk
    original_from: str | None = None  # for a forwarded message: the original sender's address
    warnings: tuple[str, ...] = ()  # user-facing Chinese warnings
    mail_text_is_html: bool = False  # mail_text was converted from a text/html part (no text/plain)
    internaldate: datetime | None = None  # the IMAP INTERNALDATE given by the caller, if any

    @property
    def sent_at(self) -> datetime | None:
        """The Date header, else the newest Received hop, else the IMAP INTERNALDATE."""
        return self.date or self.received_at or self.internaldate


@dataclass(frozen=True)
class DocumentLimits:
    """Bounds on what the parsers read from attachments; the daemon fills them from its settings."""

    max_document_bytes: int = 50 * 1024 * 1024
    zip_max_members: int = 50
    zip_max_total_bytes: int = 100 * 1024 * 1024
    zip_max_ratio: int = 100
    zip_max_depth: int = 2


class ItemSource(enum.StrEnum):
    DOCX = "docx"
    DOC = "doc"
    TXT = "txt"
    PDF = "pdf"
    OFD = "ofd"
    MAIL_BODY = "mail_body"
    HTML_BODY = "html_body"
    RFC822_DOCX = "rfc822>docx"


@dataclass(frozen=True)
class ItemDraft:
    """An information item as read from a message, before it is registered."""

    title: str
    category: str  # 工作动态 / 约稿信息 / 经济运行分析 / 假日综述 / 重大突发事件 / 新闻通气会
    body_text: str
    source: ItemSource
    has_review_line: bool
    reviewer: str | None = None
    signer: str | None = None
    has_contact_line: bool = False
    contact: str | None = None
    phone: str | None = None
    attachment_index: int | None = None  # index into ParsedMessage.attachments of the item's document
    warnings: tuple[str, ...] = field(default_factory=tuple)
    review_line_location: str | None = None  # docx / body / docx+body / txt, None when absent
    contact_line_location: str | None = None  # docx / body / txt, None when absent

    @property
    def body_chars(self) -> int:
        """Characters of the body paragraphs, not counting the line breaks that join them."""
        return len(self.body_text.replace("\n", ""))
