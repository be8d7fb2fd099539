"""Commissions (约稿): create them, notify the units and link the answers (reminders: daemon.commission_reminders).

Each unit's notice carries a reply token ``yg<commission id>-<unit code>-<signature>``, an
HMAC-SHA256 under the approval secret of the commission id and the unit code. It travels in the
Reply-To plus address and in the subject, as approval tokens do (daemon.tokens). An incoming item
answers a commission through that token, by replying to one of our commission mails
(In-Reply-To/References), or by naming the commission's code (约稿2026-003) in its subject or text.
Every way is accepted only from the unit the commission requested.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import re
import unicodedata
from collections.abc import Iterable, Sequence
from datetime import date, datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from daemon.context import RegisterContext
from daemon.errors import DaemonError
from daemon.models import (
    Commission,
    CommissionState,
    CommissionUnit,
    Item,
    Message,
    MessageState,
    OutboxMail,
    SenderAddress,
)
from daemon.notices import build_mail, local_time
from daemon.outbound import queue_mail
from daemon.templating import render
from daemon.tokens import reply_to_address
from daemon.units import Unit, UnitKind
from parsers.commission_mail import CommissionDeadline, CommissionDraft, CommissionMailError, read_commission_mail
from parsers.mime import read_header_block
from parsers.model import ParsedMessage
from parsers.subjects import DEFAULT_CATEGORY

log = logging.getLogger(__name__)
audit = logging.getLogger("zwxx.audit")

COMMISSION_CATEGORY = "约稿信息"
SIGNATURE_CHARS = 20  # 100 bits of base32, as for approval tokens
TOKEN_PATTERN = re.compile(rf"\byg(\d{{1,12}})-([a-z0-9_.-]{{1,64}}?)-([a-z2-7]{{{SIGNATURE_CHARS}}})\b", re.IGNORECASE)
CODE_PATTERN = re.compile(r"约稿\s*(\d{4})\s*[-－—–]\s*(\d{1,4})")
_TOKEN_HEADERS = ("To", "Cc", "Delivered-To", "X-Original-To", "Envelope-To")
_UNIT_PURPOSES = ("commission_notice", "commission_reminder", "commission_overdue")
_KEY_PATTERN = re.compile(r"^commission-(?:notice|reminder|overdue):(\d+):([^:]+)")


class CommissionError(DaemonError):
    """A commission that cannot be created; the message is user-facing Chinese."""


# -- tokens ------------------------------------------------------------------------------------


def sign_unit_token(secret: bytes, commission_id: int, unit_code: str) -> str:
    """Return the reply token of one unit's notice, e.g. ``yg12-cd-k3f7q2vxa9m4c8dn5bwe``."""
    if not secret:
        raise ValueError("no approval secret configured")
    return f"yg{commission_id}-{unit_code.lower()}-{_signature(secret, commission_id, unit_code)}"


def find_unit_tokens(texts: Iterable[str]) -> list[tuple[int, str, str]]:
    """Return every (commission id, unit code, signature) token found in ``texts``, in order."""
    found: dict[tuple[int, str, str], None] = {}
    for text in texts:
        for match in TOKEN_PATTERN.finditer(text or ""):
            found.setdefault((int(match.group(1)), match.group(2).lower(), match.group(3).lower()), None)
    return list(found)


def verify_unit_token(secret: bytes, commission_id: int, unit_code: str, signature: str) -> bool:
    """Tell whether ``signature`` was made for this commission and unit (compared in constant time)."""
    if not secret:
        return False
    return hmac.compare_digest(signature.lower(), _signature(secret, commission_id, unit_code))


def _signature(secret: bytes, commission_id: int, unit_code: str) -> str:
    canonical = "\n".join(["zwxx-commission-v1", str(commission_id), unit_code.strip().lower()]).encode("utf-8")
    digest = hmac.new(secret, canonical, hashlib.sha256).digest()
    return base64.b32encode(digest).decode("ascii").lower()[:SIGNATURE_CHARS]


# -- creating ----------------------------------------------------------------------------------


def resolve_units(ctx: RegisterContext, draft: CommissionDraft) -> list[Unit]:
    """Return the units ``draft`` names, in directory order for 全部/全部市州, then as written.

    Raises:
        CommissionError: a name matches no unit, or no unit is left.
    """
    chosen: dict[str, Unit] = {}
    for unit in ctx.units.units.values():
        if draft.all_units or (draft.all_prefectures and unit.kind is UnitKind.PREFECTURE):
            chosen[unit.code] = unit
    unknown: list[str] = []
    for name in draft.unit_names:
        named = ctx.units.find_by_name(name)
        if named is None:
            unknown.append(name)
        else:
            chosen.setdefault(named.code, named)
    if unknown:
        raise CommissionError(f"单位名录中没有“{'、'.join(unknown)}”，请写单位名录中的名称或简称，如 成都市、产业处")
    if not chosen:
        raise CommissionError("没有要约稿的单位：单位名录中没有符合条件的单位")
    return list(chosen.values())


def resolve_deadline(ctx: RegisterContext, deadline: CommissionDeadline | None, now: datetime) -> datetime:
    """Return the deadline as an aware datetime; a date without a time ends with the working hours.

    A date without a year is the next such date on or after today. No deadline means
    ``commissions.default_deadline_days`` working days from now.

    Raises:
        CommissionError: the deadline is not after ``now``, or names a day that does not exist that year.
    """
    calendar = ctx.calendar
    if deadline is None:
        return calendar.add_working_days(now, ctx.settings.commissions.default_deadline_days)
    if deadline.working_days is not None:
        return calendar.add_working_days(now, deadline.working_days)
    assert deadline.month is not None and deadline.day is not None  # read_deadline sets both for a date
    today = now.astimezone(ctx.settings.tz).date()
    year = deadline.year or today.year
    try:
        day = date(year, deadline.month, deadline.day)
        if deadline.year is None and day < today:
            day = date(year + 1, deadline.month, deadline.day)
    except ValueError:
        raise CommissionError(f"截止时间“{deadline.text}”不是有效的日期") from None
    if deadline.at is None:
        due = calendar.end_of_working_hours(day)
    else:
        due = datetime.combine(day, deadline.at, tzinfo=ctx.settings.tz)
    if due <= now:
        raise CommissionError(f"截止时间“{deadline.text}”（{local_time(due, ctx.settings)}）已过，请写一个以后的时间")
    notice_at = calendar.next_working_time(now)
    if due <= notice_at:
        raise CommissionError(
            f"截止时间“{deadline.text}”（{local_time(due, ctx.settings)}）早于约稿通知发出的时间"
            f"（{local_time(notice_at, ctx.settings)}，通知只在工作时间发出），请写一个更晚的截止时间"
        )
    return due


def create_commission(
    session: Session, ctx: RegisterContext, draft: CommissionDraft, *, actor: str, via_message_id: str | None
) -> Commission:
    """Record a commission with the next code of the year and queue one notice per unit; the caller commits.

    Raises:
        CommissionError: a unit name is unknown or the deadline is invalid; nothing is written then.
    """
    now = ctx.clock.now()
    units = resolve_units(ctx, draft)
    deadline_at = resolve_deadline(ctx, draft.deadline, now)
    year = now.astimezone(ctx.settings.tz).year
    seq = (session.scalar(select(func.max(Commission.seq)).where(Commission.year == year)) or 0) + 1
    commission = Commission(
        code=f"约稿{year}-{seq:03d}",
        year=year,
        seq=seq,
        topic=draft.topic,
        requirements=draft.requirements,
        deadline_at=deadline_at,
        state=CommissionState.OPEN,
        created_at=now,
        created_by=actor,
        via_message_id=via_message_id,
        units=[CommissionUnit(unit_code=unit.code) for unit in units],
    )
    session.add(commission)
    session.flush()
    send_at = ctx.calendar.next_working_time(now)
    for row in commission.units:
        if queue_unit_mail(session, ctx, commission, row, purpose="commission_notice", send_at=send_at):
            row.notified_at = send_at
    audit.info(
        "commission %s created by %s via %s: %d unit(s), deadline %s",
        commission.code, actor, via_message_id, len(units), deadline_at.isoformat(),
    )  # fmt: skip
    return commission


def unit_address(session: Session, ctx: RegisterContext, unit_code: str) -> str | None:
    """Return the address a unit's notices go to: its first address in the units file, else one the office added."""
    unit = ctx.units.get(unit_code)
    if unit is not None and unit.addresses:
        return unit.addresses[0]
    return session.scalar(
        select(SenderAddress.address).where(SenderAddress.unit_code == unit_code).order_by(SenderAddress.id).limit(1)
    )


def _unit_mail_subject(purpose: str, commission: Commission, token: str | None) -> str:
    prefix = {
        "commission_notice": "【约稿】",
        "commission_reminder": "【约稿提醒】",
        "commission_overdue": "【约稿逾期】",
    }
    code = f" 〔回复码 {token}〕" if token else ""
    return f"{prefix[purpose]}{commission.code} {commission.topic}{code}"


def queue_unit_mail(
    session: Session,
    ctx: RegisterContext,
    commission: Commission,
    row: CommissionUnit,
    *,
    purpose: str,
    send_at: datetime,
    days_left: int = 0,
    reminder_days: int = 0,
) -> OutboxMail | None:
    """Queue a notice, reminder or overdue notice to one unit; None when the unit has no address."""
    settings = ctx.settings
    unit = ctx.units.get(row.unit_code)
    address = unit_address(session, ctx, row.unit_code)
    if address is None:
        log.warning("commission %s: unit %s has no address, %s not sent", commission.code, row.unit_code, purpose)
        return None
    secret = settings.approval_secret()
    token = sign_unit_token(secret, commission.id, row.unit_code) if secret else None
    if token is None:
        log.warning("commission %s: no approval secret configured, %s has no reply token", commission.code, purpose)

    now = ctx.clock.now()
    template = {
        "commission_notice": "unit/commission_notice.txt.j2",
        "commission_reminder": "unit/commission_reminder.txt.j2",
        "commission_overdue": "unit/commission_overdue.txt.j2",
    }[purpose]
    body = render(
        template,
        unit_name=unit.name if unit else row.unit_code,
        code=commission.code,
        topic=commission.topic,
        requirements=commission.requirements,
        deadline=local_time(commission.deadline_at, settings),
        days_left=days_left,
        token=token or "",
        office_name=settings.office.name,
        sent_on=send_at.astimezone(settings.tz).strftime("%Y年%m月%d日"),
    )

    kind = purpose.removeprefix("commission_")
    key = f"commission-{kind}:{commission.id}:{row.unit_code}"
    if reminder_days:
        key += f":{reminder_days}d"
    mail = build_mail(
        settings,
        to=[address],
        subject=_unit_mail_subject(purpose, commission, token),
        body=body,
        key=key,
        kind=f"commission-{kind}",
        now=send_at,
        reply_to=reply_to_address(settings.reply_address, token, plus=settings.approval.plus_addressing)
        if token
        else None,
    )
    outbox = queue_mail(session, key=key, purpose=purpose, mail=mail, recipients=[address], now=now)
    if outbox is not None and send_at > now:
        outbox.next_attempt_at = send_at  # held until working hours begin
    return outbox


# -- the office's command mail -------------------------------------------------------------------


def answer_commission_mail(
    session: Session, ctx: RegisterContext, message: Message, parsed: ParsedMessage, text: str
) -> Commission | None:
    """Create the commission an office mail describes and queue the reply; the caller commits.

    Returns the commission, or None when the mail could not be read or carried out (the reply states why).
    """
    settings = ctx.settings
    actor = parsed.sender or ""
    commission: Commission | None = None
    problems: list[str] = []
    draft: CommissionDraft | None = None
    try:
        draft = read_commission_mail(text)
    except CommissionMailError as exc:
        problems = exc.problems
    if draft is not None:
        savepoint = session.begin_nested()
        try:
            commission = create_commission(session, ctx, draft, actor=actor, via_message_id=message.message_id)
        except CommissionError as exc:
            savepoint.rollback()
            problems = [str(exc)]
        else:
            savepoint.commit()

    message.state = MessageState.COMMAND
    message.reason = f"约稿 {commission.code} 已创建" if commission else "约稿未创建：" + "；".join(problems)
    body = render(
        "office/commission_created.txt.j2",
        commission=describe_commission(session, ctx, commission) if commission else None,
        problems=problems,
        ignored_lines=list(draft.ignored_lines) if draft else [],
        default_days=settings.commissions.default_deadline_days,
    )
    key = f"command:{message.content_sha256}"
    if commission is not None:
        subject = f"【约稿已发出】{commission.code} {commission.topic}"
    else:
        subject = f"【约稿未创建】{parsed.subject}" if parsed.subject else "【约稿未创建】"
    mail = build_mail(
        settings,
        to=[actor],
        subject=subject,
        body=body,
        key=key,
        kind="command",
        now=ctx.clock.now(),
        in_reply_to=parsed.message_id,
        references=parsed.references,
    )
    queue_mail(
        session, key=key, purpose="command_reply", mail=mail, recipients=[actor], now=ctx.clock.now(),
        message_db_id=message.id,
    )  # fmt: skip
    return commission


def describe_commission(session: Session, ctx: RegisterContext, commission: Commission) -> dict[str, object]:
    """Return a commission's fields and its units' progress, for templates and the CLI."""
    settings = ctx.settings
    units = []
    for row in commission.units:
        unit = ctx.units.get(row.unit_code)
        item = session.get(Item, row.answered_item_id) if row.answered_item_id else None
        late = row.answered_at is not None and row.answered_at > commission.deadline_at
        units.append(
            {
                "code": row.unit_code,
                "name": unit.short_name if unit else row.unit_code,
                "address": unit_address(session, ctx, row.unit_code) or "",
                "notified_at": local_time(row.notified_at, settings) if row.notified_at else "",
                "answered": item is not None,
                "serial": item.serial if item else "",
                "answered_at": local_time(row.answered_at, settings) if row.answered_at else "",
                "late": late,
            }
        )
    return {
        "code": commission.code,
        "topic": commission.topic,
        "requirements": commission.requirements,
        "deadline": local_time(commission.deadline_at, settings),
        "state": {"open": "进行中", "closed": "已截止", "cancelled": "已取消"}[str(commission.state)],
        "created_at": local_time(commission.created_at, settings),
        "created_by": commission.created_by,
        "units": units,
        "answered": [u for u in units if u["answered"]],
        "missing": [u for u in units if not u["answered"]],
        "not_notified": [u for u in units if not u["notified_at"]],
        "notice_time": next((u["notified_at"] for u in units if u["notified_at"]), ""),
        "held_until_working_hours": any(
            row.notified_at is not None and row.notified_at > commission.created_at for row in commission.units
        ),
    }


# -- linking answers ---------------------------------------------------------------------------


def link_commission(
    session: Session, ctx: RegisterContext, message: Message, parsed: ParsedMessage, item: Item
) -> Commission | None:
    """Find the commission ``item`` answers and record the answer; return it, or None.

    Looks at the unit's reply token (To, Cc, Delivered-To and like headers, subject), then the
    thread (In-Reply-To, References) of our commission mails, then a commission code named in the
    subject or text. Each is accepted only for a commission that requested the sender's unit and was not
    cancelled.
    """
    unit_code = item.unit_code
    if not unit_code:
        return None
    requested = _requested_rows(session, unit_code)
    if not requested:
        return None
    row = (
        _row_by_token(ctx, requested, unit_code, [*parsed.to, *parsed.cc, parsed.subject])
        or _row_by_thread(session, requested, unit_code, [parsed.in_reply_to or "", *parsed.references])
        or _row_by_token(ctx, requested, unit_code, _delivery_headers(ctx, message))
        or _row_by_code(requested, [parsed.subject, item.title, parsed.mail_text, item.body_text])
    )
    if row is None:
        return None
    commission = row.commission
    item.commission_id = commission.id
    if item.category == DEFAULT_CATEGORY or not item.category:
        item.category = COMMISSION_CATEGORY
    if row.answered_item_id is None:
        row.answered_item_id = item.id
        row.answered_at = item.received_at
    audit.info("item %s answers commission %s (unit %s)", item.serial, commission.code, unit_code)
    return commission


def _requested_rows(session: Session, unit_code: str) -> dict[int, CommissionUnit]:
    rows = session.scalars(
        select(CommissionUnit)
        .join(Commission)
        .where(CommissionUnit.unit_code == unit_code, Commission.state != CommissionState.CANCELLED)
    )
    return {row.commission_id: row for row in rows}


def _row_by_token(
    ctx: RegisterContext, requested: dict[int, CommissionUnit], unit_code: str, texts: Sequence[str]
) -> CommissionUnit | None:
    secret = ctx.settings.approval_secret()
    for commission_id, token_unit, signature in find_unit_tokens(texts):
        if not verify_unit_token(secret, commission_id, token_unit, signature):
            log.warning("commission token for %d/%s has an invalid signature", commission_id, token_unit)
            continue
        if token_unit != unit_code.lower():
            log.warning("commission token of unit %s came from unit %s, not linked", token_unit, unit_code)
            continue
        if commission_id in requested:
            return requested[commission_id]
    return None


def _row_by_thread(
    session: Session, requested: dict[int, CommissionUnit], unit_code: str, message_ids: Sequence[str]
) -> CommissionUnit | None:
    ids = [i for i in message_ids if i]
    if not ids:
        return None
    keys = session.scalars(
        select(OutboxMail.key).where(OutboxMail.message_id.in_(ids), OutboxMail.purpose.in_(_UNIT_PURPOSES))
    )
    for key in keys:
        match = _KEY_PATTERN.match(key)
        if match and match.group(2) == unit_code and int(match.group(1)) in requested:
            return requested[int(match.group(1))]
    return None


def _delivery_headers(ctx: RegisterContext, message: Message) -> list[str]:
    """Return the delivery headers of the stored raw mail (the parsed message keeps only To and Cc)."""
    try:
        raw = ctx.archive.get(message.sha256)
    except OSError as exc:
        log.warning("message %d: raw mail not readable for commission tokens: %s", message.id, exc)
        return []
    headers = read_header_block(raw)
    return [str(value) for name in _TOKEN_HEADERS for value in headers.get_all(name, [])]


def _row_by_code(requested: dict[int, CommissionUnit], texts: Sequence[str]) -> CommissionUnit | None:
    by_code = {row.commission.code: row for row in requested.values()}
    for text in texts:
        for match in CODE_PATTERN.finditer(unicodedata.normalize("NFKC", text or "")):
            code = f"约稿{match.group(1)}-{int(match.group(2)):03d}"
            if code in by_code:
                return by_code[code]
    return None


# -- the digest --------------------------------------------------------------------------------


def open_commissions(session: Session, ctx: RegisterContext) -> list[dict[str, object]]:
    """Return the open commissions with their units' progress, oldest deadline first, for the digest."""
    rows = session.scalars(
        select(Commission)
        .where(Commission.state == CommissionState.OPEN)
        .order_by(Commission.deadline_at, Commission.id)
    )
    return [describe_commission(session, ctx, commission) for commission in rows]


def find_commission(session: Session, code: str) -> Commission | None:
    """Return the commission with ``code`` (约稿2026-3, 约稿2026-003 and full-width forms alike)."""
    match = CODE_PATTERN.search(unicodedata.normalize("NFKC", code))
    if match is None:
        return None
    code = f"约稿{match.group(1)}-{int(match.group(2)):03d}"
    return session.scalar(select(Commission).where(Commission.code == code))
