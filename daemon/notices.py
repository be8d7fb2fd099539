"""Build outgoing notices (receipts, ...) as complete RFC 5322 messages from the templates."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, formataddr
from zoneinfo import ZoneInfo

from daemon.config import Settings
from daemon.models import Item
from daemon.templating import render
from daemon.units import Unit

# C0 and C1 controls and the Unicode line and paragraph separators, which email treats as line breaks.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")

NO_REVIEW_LINE_WARNING = (
    "未找到“审核/签发”行。按规定，信息报送前须经单位负责人审核签发，请补充审核人、签发人后重新报送。"
)
NO_REVIEWER_WARNING = "只找到签发人，未找到审核人。请确认信息已经审核，并在“审核：”后写明审核人。"
NO_SIGNER_WARNING = "只找到审核人，未找到签发人。请确认信息已经单位负责人签发，并在“签发：”后写明签发人。"


def clean_header_text(value: str, *, limit: int = 200) -> str:
    """Flatten text taken from a mail before it goes into a header: no CR, LF or other controls."""
    # "=?" would be read back as the start of an encoded word when the header is set.
    flat = _CONTROL.sub(" ", value).replace("=?", "= ?").strip()
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def make_message_id(kind: str, key: str, domain: str) -> str:
    """Return a Message-ID that is the same every time for the same outbox key."""
    digest = hashlib.sha256(key.encode()).hexdigest()[:24]
    return f"<zwxx.{kind}.{digest}@{domain}>"


@dataclass(frozen=True)
class MailAttachment:
    filename: str
    data: bytes
    content_type: str = "application/octet-stream"


def build_mail(
    settings: Settings,
    *,
    to: Sequence[str],
    subject: str,
    body: str,
    key: str,
    kind: str,
    now: datetime,
    in_reply_to: str | None = None,
    references: Sequence[str] = (),
    reply_to: str | None = None,
    attachments: Sequence[MailAttachment] = (),
    automatic: bool = True,
) -> EmailMessage:
    """Build one outgoing notice with a stable Message-ID derived from its outbox ``key``.

    ``automatic`` marks it ``Auto-Submitted: auto-generated`` (or ``auto-replied`` when it answers a
    mail), so that well-behaved responders do not answer it (RFC 3834).
    """
    mail = EmailMessage()
    mail["From"] = formataddr((settings.smtp.from_name, settings.smtp.from_address))
    mail["To"] = ", ".join(to)
    if reply_to:
        mail["Reply-To"] = reply_to
    mail["Subject"] = clean_header_text(subject, limit=300)
    mail["Date"] = format_datetime(now.astimezone(ZoneInfo(settings.general.timezone)))
    domain = settings.smtp.from_address.rsplit("@", 1)[1]
    mail["Message-ID"] = make_message_id(kind, key, domain)
    if in_reply_to:
        mail["In-Reply-To"] = in_reply_to
        mail["References"] = " ".join([*references, in_reply_to][-10:])
    if automatic:
        mail["Auto-Submitted"] = "auto-replied" if in_reply_to else "auto-generated"
        mail["X-Auto-Response-Suppress"] = "All"
    mail.set_content(body, charset="utf-8", cte="base64")
    for attachment in attachments:
        maintype, _, subtype = attachment.content_type.partition("/")
        mail.add_attachment(
            attachment.data,
            maintype=maintype or "application",
            subtype=subtype or "octet-stream",
            filename=safe_filename(attachment.filename),
        )
    return mail


def safe_filename(name: str) -> str:
    """Return ``name`` without folders or control characters, for an attachment we send."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    base = _CONTROL.sub("", base).strip().lstrip(".")
    return base[:120] or "附件"


def local_time(moment: datetime, settings: Settings) -> str:
    """Format ``moment`` for a Chinese notice, in the configured time zone."""
    return moment.astimezone(ZoneInfo(settings.general.timezone)).strftime("%Y年%m月%d日 %H:%M")


def _review_text(item: Item) -> str:
    parts = []
    if item.reviewer:
        parts.append(f"审核 {item.reviewer}")
    if item.signer:
        parts.append(f"签发 {item.signer}")
    return "，".join(parts) or "已注明"


def build_receipt(
    *,
    settings: Settings,
    unit: Unit,
    to_address: str,
    items: Sequence[Item],
    original_message_id: str | None,
    original_references: Sequence[str],
    received_at: datetime,
    now: datetime,
    key: str,
    notes: Mapping[int, str] | None = None,
) -> EmailMessage:
    """Build the receipt (回执) for one message's items: an RFC 3834 auto-reply in Chinese.

    ``notes`` maps an item id to one line about it, e.g. that it revises an earlier item.
    """
    notes = notes or {}
    tz = ZoneInfo(settings.general.timezone)
    warnings: list[str] = []
    for item in items:
        warnings.extend(w for w in item.warning_list if w not in warnings)
    body = render(
        "unit/receipt.txt.j2",
        unit_name=unit.name,
        items=[
            {
                "serial": item.serial,
                "title": item.title,
                "category": item.category,
                "body_chars": item.body_chars,
                "has_review_line": item.has_review_line,
                "review_text": _review_text(item),
                "note": notes.get(item.id),
                "deadline_rule": item.deadline_rule if item.deadline_at is not None else None,
            }
            for item in items
        ],
        received_at=received_at.astimezone(tz).strftime("%Y年%m月%d日 %H:%M"),
        warnings=warnings,
        office_name=settings.office.name,
        sent_on=now.astimezone(tz).strftime("%Y年%m月%d日"),
    )
    first = items[0]
    mail = EmailMessage()
    mail["From"] = formataddr((settings.smtp.from_name, settings.smtp.from_address))
    mail["To"] = to_address
    suffix = f"等{len(items)}条" if len(items) > 1 else ""
    mail["Subject"] = clean_header_text(f"【回执】{first.serial} {first.title}{suffix}")
    mail["Date"] = format_datetime(now.astimezone(tz))
    domain = settings.smtp.from_address.rsplit("@", 1)[1]
    mail["Message-ID"] = make_message_id("receipt", key, domain)
    if original_message_id:
        mail["In-Reply-To"] = original_message_id
        mail["References"] = " ".join([*original_references, original_message_id][-10:])
    # RFC 3834 section 5: mark the receipt as automatic so that well-behaved responders stay silent.
    mail["Auto-Submitted"] = "auto-replied"
    mail["X-Auto-Response-Suppress"] = "All"
    mail.set_content(body, charset="utf-8", cte="base64")
    return mail
