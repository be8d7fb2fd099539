"""Approval by reply: the request mailed to the leader, and the leader's reply turned into decisions.

A request carries a signed token (daemon.tokens) in its Reply-To address and its subject. A reply
counts only when it passes every check of ``_authenticate``, in this order: it carries the token of
an open, unexpired request, signed for that request; the sender is the leader the request went to;
the items are still at the versions the leader was shown; In-Reply-To, when it names one of our
requests, names this one or its ask-back; and, when configured, the receiving server's
Authentication-Results pass. Otherwise nothing changes, and the message is stored as UNDECIDED with
the reason, for the office's digest.
"""

from __future__ import annotations

import email
import email.policy
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from daemon.context import RegisterContext
from daemon.errors import DaemonError
from daemon.models import (
    ApprovalEntry,
    ApprovalRequest,
    ApprovalState,
    Attachment,
    Item,
    ItemState,
    Message,
    MessageState,
    OutboxMail,
    OutboxState,
)
from daemon.notices import MailAttachment, build_mail, clean_header_text, local_time
from daemon.outbound import queue_mail
from daemon.templating import render
from daemon.tokens import FoundToken, TokenClaims, find_tokens, reply_to_address, sign, verify
from daemon.views import ITEM_STATE_LABELS, label
from daemon.workflow import add_version, change_state, current_text
from parsers.authres import check_authentication
from parsers.errors import MessageParseError
from parsers.mime import read_header_block
from parsers.model import ParsedMessage
from parsers.replies import Decision, ReplyReading, read_reply
from parsers.subjects import strip_prefixes

log = logging.getLogger(__name__)
audit = logging.getLogger("zwxx.audit")

DECISION_STATES = {
    Decision.APPROVE: ItemState.APPROVED,
    Decision.RETURN: ItemState.RETURNED,
    Decision.REJECT: ItemState.NOT_SENT,
}
DECISION_LABELS = {
    Decision.APPROVE: "同意",
    Decision.RETURN: "退回修改",
    Decision.REJECT: "不同意报送",
    Decision.UNCLEAR: "意见不明确",
}
# Each category's rule in words, for an item without a computed deadline (daemon.deadlines).
CATEGORY_TIME_LIMITS = {
    "工作动态": "收到后 1 个工作日内报送两办",
    "新闻通气会": "通气会召开 2 个工作日前报送两办",
    "假日综述": "假期最后一天报送",
    "约稿信息": "按约稿要求的期限报送",
    "经济运行分析": "及时报送",
    "重大突发事件": "立即报送",
}
_TITLE_EDIT = re.compile(r"标题\s*(?:改为|改成|修改为|调整为)\s*[“\"「『]([^”\"」』]+)[”\"」』]")
SERIAL_IN_TEXT = re.compile(r"(?<!\d)\d{4}-\d{4}(?!\d)")
_TOKEN_HEADERS = ("To", "Cc", "Delivered-To", "X-Original-To", "Envelope-To")


class ApprovalError(DaemonError):
    """A request that cannot be sent; the message is user-facing Chinese."""


@dataclass(frozen=True)
class Rejection:
    """Reason a reply decided nothing; ``ask_back`` is true when the leader gets an ask-back mail."""

    reason: str
    ask_back: bool = False


def claims_of(request: ApprovalRequest) -> TokenClaims:
    return TokenClaims(
        request_id=request.id,
        leader=request.leader,
        action=request.action,
        expires_at=request.expires_at,
        items=tuple((entry.item_id, entry.item_version) for entry in request.entries),
    )


def token_of(ctx: RegisterContext, request: ApprovalRequest) -> str:
    return sign(ctx.settings.approval_secret(), claims_of(request))


def send_for_approval(
    session: Session,
    ctx: RegisterContext,
    items: Sequence[Item],
    *,
    actor: str,
    via_message_id: str | None,
    asks_back: ApprovalRequest | None = None,
    ask_back_reason: str = "",
    leaders: Sequence[str] | None = None,
) -> list[ApprovalRequest]:
    """Queue one approval request per leader for ``items`` (a numbered batch when several).

    Open requests that hold any of these items are voided first, so only the newest token counts.
    The items' states are not changed here: the caller records 送审.
    """
    settings = ctx.settings
    leaders = list(leaders if leaders is not None else settings.office.leaders)
    if not leaders:
        raise ApprovalError("未配置审批领导：请在配置文件 [office] leaders 中填写领导的邮箱地址")
    if not settings.approval_secret():
        raise ApprovalError("未配置审批签名密钥：请设置 approval.secret_env 指定的环境变量")
    if len(items) > settings.approval.max_batch:
        raise ApprovalError(f"一次送审最多 {settings.approval.max_batch} 条，本次 {len(items)} 条；请分几行送审")
    now = ctx.clock.now()
    void_open_requests(session, [item.id for item in items], except_id=None)
    requests = []
    for leader in leaders:
        request = ApprovalRequest(
            leader=leader.lower(),
            action="decide",
            created_at=now,
            expires_at=now + timedelta(days=settings.approval.token_days),
            state=ApprovalState.OPEN,
            requested_by=actor,
            via_message_id=via_message_id,
            asks_back_id=asks_back.id if asks_back else None,
        )
        for position, item in enumerate(items, start=1):
            request.entries.append(ApprovalEntry(position=position, item_id=item.id, item_version=item.version))
        session.add(request)
        session.flush()
        token = token_of(ctx, request)
        mail = _build_request_mail(session, ctx, request, items, token, ask_back_reason=ask_back_reason)
        request.message_id = str(mail["Message-ID"])
        queue_mail(
            session,
            key=f"approval:{request.id}",
            purpose="ask_back" if asks_back else "approval_request",
            mail=mail,
            recipients=[leader],
            now=now,
            item_id=items[0].id,
        )
        audit.info(
            "approval request %d to %s for %s (versions %s)",
            request.id,
            leader,
            ",".join(item.serial for item in items),
            ",".join(str(item.version) for item in items),
        )
        requests.append(request)
    return requests


def void_open_requests(session: Session, item_ids: Sequence[int], *, except_id: int | None) -> int:
    """Void every open request that contains one of ``item_ids``; return how many were voided."""
    if not item_ids:
        return 0
    rows = session.scalars(
        select(ApprovalRequest)
        .join(ApprovalEntry, ApprovalEntry.request_id == ApprovalRequest.id)
        .where(ApprovalRequest.state == ApprovalState.OPEN, ApprovalEntry.item_id.in_(list(item_ids)))
        .distinct()
    ).all()
    count = 0
    for request in rows:
        if request.id != except_id:
            request.state = ApprovalState.VOID
            count += 1
            # A request not sent yet must not reach the leader after it was withdrawn.
            session.execute(
                update(OutboxMail)
                .where(OutboxMail.key == f"approval:{request.id}", OutboxMail.state == OutboxState.PENDING)
                .values(state=OutboxState.CANCELLED, last_error="审批请求已作废，未发送")
            )
    session.flush()
    return count


def _build_request_mail(
    session: Session,
    ctx: RegisterContext,
    request: ApprovalRequest,
    items: Sequence[Item],
    token: str,
    *,
    ask_back_reason: str,
) -> email.message.EmailMessage:
    settings = ctx.settings
    entries, attachments = [], []
    for entry, item in zip(request.entries, items, strict=True):
        text = current_text(item)
        unit = ctx.units.get(item.unit_code)
        document = session.get(Attachment, text.attachment_id) if text.attachment_id else None
        if document is not None:
            attachments.append(
                MailAttachment(
                    filename=f"{item.serial}-{document.filename}",
                    data=ctx.archive.get(document.sha256),
                    content_type=document.content_type,
                )
            )
        entries.append(
            {
                "position": entry.position,
                "serial": item.serial,
                "title": text.title,
                "unit_name": unit.name if unit else item.unit_code,
                "category": item.category,
                "time_limit": item.deadline_rule or CATEGORY_TIME_LIMITS.get(item.category, "按规定时限报送"),
                "body_chars": len(text.body_text.replace("\n", "")),
                "version": text.version,
                "warnings": item.warning_list,
                "document_name": clean_header_text(f"{item.serial}-{document.filename}") if document else "",
                "body_text": text.body_text,
            }
        )
    body = render(
        "leader/approval_request.txt.j2",
        leader_name="领导",
        entries=entries,
        ask_back_reason=ask_back_reason,
        token=token,
        expires_at=local_time(request.expires_at, settings),
        office_name=settings.office.name,
        sent_on=ctx.clock.now().astimezone(settings.tz).strftime("%Y年%m月%d日"),
    )
    first = items[0]
    what = (
        f"{first.serial} {current_text(first).title}" if len(items) == 1 else f"{first.serial} 等 {len(items)} 条信息"
    )
    prefix = "【请再次审批】" if ask_back_reason else "【请审批】"
    return build_mail(
        settings,
        to=[request.leader],
        subject=f"{prefix}{what} 〔审批码 {token}〕",
        body=body,
        key=f"approval:{request.id}",
        kind="approval",
        now=ctx.clock.now(),
        reply_to=reply_to_address(settings.reply_address, token, plus=settings.approval.plus_addressing),
        attachments=attachments,
    )


def is_approval_reply(session: Session, raw_headers: email.message.Message, parsed: ParsedMessage) -> bool:
    """Return True when a mail replies to one of our approval requests: it carries a token or threads to one."""
    if _tokens_in(raw_headers, parsed):
        return True
    return _threaded_request(session, parsed) is not None


def handle_reply(session: Session, ctx: RegisterContext, message: Message, parsed: ParsedMessage, raw: bytes) -> None:
    """Check a reply to an approval request and apply the decisions it carries; the caller commits."""
    headers = read_header_block(raw)
    request, rejection = _authenticate(session, ctx, headers, parsed)
    if request is None or rejection is not None:
        reason = rejection.reason if rejection else "无法对应到审批请求"
        _mark_undecided(message, reason)
        return
    serials = [entry.item.serial for entry in request.entries]
    try:
        reading = read_reply(raw, batch_size=len(request.entries), default_tz=ctx.settings.tz, item_serials=serials)
    except MessageParseError as exc:
        _mark_undecided(message, f"回复邮件无法解析：{exc}")
        return
    if reading.auto_reply:
        _mark_undecided(message, "自动回复，不作为审批意见")
        return
    apply_reading(session, ctx, message, request, reading)


def apply_reading(
    session: Session, ctx: RegisterContext, message: Message, request: ApprovalRequest, reading: ReplyReading
) -> None:
    """Change the items' states as ``reading`` decides, notify the office, and ask back what stays unclear."""
    now = ctx.clock.now()
    lines: list[str] = []
    unclear: list[ApprovalEntry] = []
    edit_pending = False
    decided = 0
    for entry in request.entries:
        item = entry.item
        decision = reading.decisions.get(entry.position, Decision.UNCLEAR)
        if decision is Decision.UNCLEAR or decision is Decision.MIXED:
            unclear.append(entry)
            lines.append(f"{item.serial} {current_text(item).title}：意见不明确，已请领导再次确认")
            continue
        if item.state != ItemState.PENDING_APPROVAL:
            lines.append(
                f"{item.serial}：意见为“{DECISION_LABELS[decision]}”，但该信息当前状态为"
                f"“{label(ITEM_STATE_LABELS, item.state)}”，未执行"
            )
            continue
        change_state(
            session,
            item,
            DECISION_STATES[decision],
            actor=request.leader,
            at=now,
            command=decision.value,
            via_message_id=message.message_id,
            comment=reading.comment or None,
        )
        entry.decision = decision.value
        decided += 1
        line = f"{item.serial} {current_text(item).title}：{DECISION_LABELS[decision]}"
        if decision is Decision.APPROVE and reading.edit_requested:
            applied = _apply_title_edit(session, item, reading, actor=request.leader, at=now, via=message.message_id)
            if applied:
                line += f"，标题已按领导意见改为“{applied}”（原标题保留在第 1 稿）"
            else:
                item.edit_pending = reading.comment or reading.new_text
                edit_pending = True
                line += "，但要求修改后报送"
        lines.append(line)

    asked_back = False
    if unclear and decided == 0:
        reason = _unclear_reason(reading)
        request.state = ApprovalState.VOID
        message.state = MessageState.UNDECIDED
        message.reason = f"领导回复未能确定审批意见：{reason}"
    else:
        request.state = ApprovalState.USED
        request.used_at = now
        request.used_by_message_db_id = message.id
        message.state = MessageState.DECISION
        message.reason = "；".join(lines)
    if unclear:
        items = [entry.item for entry in unclear if entry.item.state == ItemState.PENDING_APPROVAL]
        if items:
            send_for_approval(
                session,
                ctx,
                items,
                actor=request.requested_by,
                via_message_id=message.message_id,
                asks_back=request,
                ask_back_reason=_unclear_reason(reading),
                leaders=[request.leader],
            )
            asked_back = True
    _queue_decision_notice(
        ctx, session, message, request, lines, reading, edit_pending=edit_pending, asked_back=asked_back
    )
    audit.info(
        "approval reply message %d uid=%d message-id=%s request=%d decided=%d unclear=%d",
        message.id,
        message.uid,
        message.message_id,
        request.id,
        decided,
        len(unclear),
    )


def _unclear_reason(reading: ReplyReading) -> str:
    if reading.question:
        return "回复是一个问题，没有给出审批意见"
    if reading.unknown_items:
        return f"回复中的序号或编号（{'、'.join(reading.unknown_items)}）不在本次审批的信息中"
    if not reading.new_text:
        return "回复中没有文字"
    return "没有找到“同意”“不同意”或“退回”等审批意见"


def _apply_title_edit(
    session: Session, item: Item, reading: ReplyReading, *, actor: str, at: datetime, via: str | None
) -> str | None:
    """Apply an edit that only changes the title to a quoted new title; return the new title, or None."""
    matches = _TITLE_EDIT.findall(reading.new_text)
    if len(matches) != 1:
        return None
    rest = _TITLE_EDIT.sub("", reading.new_text)
    if re.search(r"改为|改成|删去|删除|修改|补充", rest):
        return None  # other edits besides the title are made by the office, with 修改
    new_title = matches[0].strip()
    text = current_text(item)
    add_version(
        session,
        item,
        title=new_title,
        body_text=text.body_text,
        attachment_id=text.attachment_id,
        actor=actor,
        at=at,
        reason=f"按领导意见修改标题（原标题：{text.title}）",
        via_message_id=via,
    )
    return new_title


def _queue_decision_notice(
    ctx: RegisterContext,
    session: Session,
    message: Message,
    request: ApprovalRequest,
    lines: list[str],
    reading: ReplyReading,
    *,
    edit_pending: bool,
    asked_back: bool,
) -> None:
    settings = ctx.settings
    if not settings.office.addresses:
        return
    body = render(
        "office/decision_notice.txt.j2",
        leader=request.leader,
        token_label=f"zw{request.id}",
        lines=lines,
        comment=reading.comment,
        edit_pending=edit_pending,
        asked_back=asked_back,
        reply_subject=message.subject or "",
        received_at=local_time(message.internaldate or message.fetched_at, settings),
    )
    first = request.entries[0].item
    key = f"decision:{message.id}"
    mail = build_mail(
        settings,
        to=list(settings.office.addresses),
        subject="【审批结果】" + "；".join(_short(line) for line in lines)[:100],
        body=body,
        key=key,
        kind="decision",
        now=ctx.clock.now(),
    )
    queue_mail(
        session,
        key=key,
        purpose="decision_notice",
        mail=mail,
        recipients=list(settings.office.addresses),
        now=ctx.clock.now(),
        item_id=first.id,
        message_db_id=message.id,
    )


def _short(line: str) -> str:
    serial, _, rest = line.partition(" ")
    return f"{serial} {rest.rpartition('：')[2]}" if "：" in rest else line


def _mark_undecided(message: Message, reason: str) -> None:
    message.state = MessageState.UNDECIDED
    message.reason = reason
    log.warning("uid=%d message-id=%s: approval reply not accepted: %s", message.uid, message.message_id, reason)


def _tokens_in(headers: email.message.Message, parsed: ParsedMessage) -> list[FoundToken]:
    texts = [parsed.subject]
    for name in _TOKEN_HEADERS:
        texts.extend(str(value) for value in headers.get_all(name, []))
    return find_tokens(texts)


def _threaded_request(session: Session, parsed: ParsedMessage) -> ApprovalRequest | None:
    ids = [i for i in (parsed.in_reply_to, *parsed.references) if i]
    if not ids:
        return None
    return session.scalar(
        select(ApprovalRequest).where(ApprovalRequest.message_id.in_(ids)).order_by(ApprovalRequest.id.desc()).limit(1)
    )


def _authenticate(
    session: Session, ctx: RegisterContext, headers: email.message.Message, parsed: ParsedMessage
) -> tuple[ApprovalRequest | None, Rejection | None]:
    """Return the request this reply may decide, or why it may not decide anything."""
    settings = ctx.settings
    tokens = _tokens_in(headers, parsed)
    if not tokens:
        return None, Rejection("回复中没有审批码（邮件标题或回复地址中的 zw…），不作为审批意见")
    if len({token.request_id for token in tokens}) > 1:
        return None, Rejection("回复中有多个不同的审批码，无法确定对应哪一次审批")
    request = session.get(ApprovalRequest, tokens[0].request_id)

    if request is None or not any(verify(settings.approval_secret(), t, claims_of(request)) for t in tokens):
        return None, Rejection("审批码无效（与审批请求不符）")
    if request.state == ApprovalState.USED:
        return request, Rejection("审批码已经使用过，同一审批码只能作出一次决定")
    if request.state == ApprovalState.VOID:
        return request, Rejection("该审批请求已作废（信息已重新送审或已撤销送审）")
    if ctx.clock.now() > request.expires_at:
        return request, Rejection(f"审批码已于 {local_time(request.expires_at, settings)} 过期")
    if (parsed.sender or "").lower() != request.leader:
        return request, Rejection(f"发件人 {parsed.sender or '（空）'} 不是该审批请求的审批领导")
    for entry in request.entries:
        if entry.item.version != entry.item_version:
            return request, Rejection(
                f"{entry.item.serial} 在送审后又有了新版本（第 {entry.item.version} 稿），本审批码对应的是第 "
                f"{entry.item_version} 稿，请重新送审"
            )
    named = set(SERIAL_IN_TEXT.findall(strip_prefixes(parsed.subject)))
    if named and not named & {entry.item.serial for entry in request.entries}:
        return request, Rejection(
            f"邮件标题中的编号（{'、'.join(sorted(named))}）与审批码对应的信息不一致，不作为审批意见"
        )

    threaded = _threaded_request(session, parsed)
    if threaded is not None and threaded.id != request.id and not _same_thread(threaded, request):
        return request, Rejection("回复所引用的邮件与审批码对应的审批请求不一致")
    if settings.approval.check_authentication:
        domain = (parsed.sender or "").rpartition("@")[2]
        verdict = check_authentication(
            [str(value) for value in headers.get_all("Authentication-Results", [])],
            authserv_id=settings.approval.authserv_id,
            required=settings.approval.required_methods,
            from_domain=domain,
        )
        if not verdict.passed:
            return request, Rejection(verdict.reason)
    return request, None


def _same_thread(threaded: ApprovalRequest, request: ApprovalRequest) -> bool:
    """Return True when one request is the ask-back of the other, since a reply may thread to either."""
    return request.asks_back_id == threaded.id or threaded.asks_back_id == request.id
