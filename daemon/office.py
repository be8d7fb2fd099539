"""Office commands: carry out one command line (from a command mail or the CLI) and reply to a command mail.

Every line runs in its own savepoint, so a line that fails changes nothing and the others still run.
The reply lists each line with what was done or why not, and how to write it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from daemon.approval import ApprovalError, send_for_approval, void_open_requests
from daemon.commissions import answer_commission_mail
from daemon.config import Settings
from daemon.context import RegisterContext
from daemon.deadlines import PRESS_CONFERENCE, assign_deadline
from daemon.errors import DaemonError, StorageError
from daemon.models import (
    Adoption,
    ApprovalRequest,
    ApprovalState,
    Attachment,
    Item,
    ItemEvent,
    ItemState,
    Message,
    MessageState,
    SenderAddress,
)
from daemon.notices import build_mail, local_time
from daemon.outbound import queue_mail
from daemon.scoring import ZERO, Score, score_adoption
from daemon.templating import render
from daemon.views import COMMAND_LABELS, ITEM_STATE_LABELS, label
from daemon.workflow import TransitionError, add_version, change_state, current_text, undo_last_change
from parsers.authres import check_authentication
from parsers.commands import USAGE, Command, CommandLine, Verb, read_commands
from parsers.commission_mail import is_commission_mail
from parsers.mime import read_header_block
from parsers.model import DocumentKind, ParsedMessage
from parsers.reply_text import extract_new_segments, join_segments

log = logging.getLogger(__name__)
audit = logging.getLogger("zwxx.audit")

CLI_ACTOR_PREFIX = "cli:"
_DOCUMENT_KINDS = {str(DocumentKind.DOCX), str(DocumentKind.DOC), str(DocumentKind.PDF), str(DocumentKind.OFD)}


# The step that must come first, for a command line rejected because of the item's state.
NEXT_STEP = {
    Verb.SUBMIT: "报送前须先送审，并经领导回复同意",
    Verb.ADOPT: "登记采用前须先报送两办",
    Verb.SEND_FOR_APPROVAL: "已报送、已采用、不予报送或已作废的信息不能再送审",
    Verb.RETURN: "已报送两办、不予报送或已作废的信息不能退回",
}


class CommandError(DaemonError):
    """A command line that cannot be carried out; the message is user-facing Chinese."""


@dataclass(frozen=True)
class LineResult:
    number: int
    text: str
    ok: bool
    result: str


def is_office_actor(settings: Settings, actor: str) -> bool:
    """Tell whether ``actor`` (an ItemEvent.actor) is the office: one of its addresses or a CLI user."""
    return actor.startswith(CLI_ACTOR_PREFIX) or settings.is_office(actor)


def execute_line(
    session: Session,
    ctx: RegisterContext,
    line: CommandLine,
    *,
    actor: str,
    via_message_id: str | None,
    documents: Sequence[Attachment] = (),
) -> LineResult:
    """Carry out one command line in a savepoint; return what happened, in Chinese."""
    if line.command is None:
        return LineResult(line.number, line.text, ok=False, result=line.error)
    savepoint = session.begin_nested()
    try:
        text = execute(session, ctx, line.command, actor=actor, via_message_id=via_message_id, documents=documents)
    except TransitionError as exc:
        # The line was written right; the item is not at the step the command needs.
        savepoint.rollback()
        return LineResult(line.number, line.text, ok=False, result=f"{exc}。{NEXT_STEP.get(line.command.verb, '')}")
    except (CommandError, ApprovalError) as exc:
        savepoint.rollback()
        usage = USAGE.get(line.command.verb, "")
        return LineResult(line.number, line.text, ok=False, result=f"{exc}（写法：{usage}）" if usage else str(exc))
    except (StorageError, SQLAlchemyError):
        savepoint.rollback()
        raise
    savepoint.commit()
    audit.info("office command by %s via %s: %s -> %s", actor, via_message_id, line.text, text)
    return LineResult(line.number, line.text, ok=True, result=text)


def execute(
    session: Session,
    ctx: RegisterContext,
    command: Command,
    *,
    actor: str,
    via_message_id: str | None,
    documents: Sequence[Attachment] = (),
) -> str:
    """Carry out ``command``; return a Chinese line saying what was done, or raise CommandError."""
    runner = _RUNNERS[command.verb]
    return runner(session, ctx, command, _Call(actor, via_message_id, tuple(documents)))


@dataclass(frozen=True)
class _Call:
    actor: str
    via_message_id: str | None
    documents: tuple[Attachment, ...]


def _item(session: Session, serial: str) -> Item:
    item = session.scalar(select(Item).where(Item.serial == serial))
    if item is None:
        raise CommandError(f"没有编号为 {serial} 的信息")
    return item


def _now(ctx: RegisterContext) -> datetime:
    return ctx.clock.now()


def _send_for_approval(session: Session, ctx: RegisterContext, command: Command, call: _Call) -> str:
    items = [_item(session, serial) for serial in command.serials]
    matched = _match_documents(items, call.documents)
    for item in items:
        if item.state == ItemState.PENDING_APPROVAL and item.id not in matched:
            raise CommandError(
                f"{item.serial} 已在待领导审批；如需改送新稿，请附上编辑稿，或先“撤销 {item.serial}”再送审"
            )
    for item in items:
        document = matched.get(item.id)
        if document is not None:
            _apply_document(session, ctx, item, document, call)
        change_state(
            session,
            item,
            ItemState.PENDING_APPROVAL,
            actor=call.actor,
            at=_now(ctx),
            command=Verb.SEND_FOR_APPROVAL.value,
            via_message_id=call.via_message_id,
        )
    requests = send_for_approval(session, ctx, items, actor=call.actor, via_message_id=call.via_message_id)
    leaders = "、".join(request.leader for request in requests)
    edited = [item.serial for item in items if item.id in matched]
    note = f"，{('、'.join(edited))} 使用附件中的编辑稿" if edited else ""
    what = "、".join(item.serial for item in items)
    batch = f"（共 {len(items)} 条，按序号编排）" if len(items) > 1 else ""
    return f"已送审{batch}：{what}，审批请求已发给 {leaders}{note}"


def _match_documents(items: Sequence[Item], documents: Sequence[Attachment]) -> dict[int, Attachment]:
    """Pair the command mail's documents with items: by serial in the file name, else one to one."""
    usable = [d for d in documents if d.kind in _DOCUMENT_KINDS and d.text]
    matched: dict[int, Attachment] = {}
    for item in items:
        for document in usable:
            if item.serial in document.filename and document not in matched.values():
                matched[item.id] = document
                break
    if not matched and len(items) == 1 and len(usable) == 1:
        matched[items[0].id] = usable[0]
    unmatched = [d.filename for d in usable if d not in matched.values()]
    if unmatched and len(items) > 1:
        raise CommandError(
            f"附件 {'、'.join(unmatched)} 无法对应到编号：送审多条时，请在编辑稿的文件名中写上编号，如 2026-0012.docx"
        )
    return matched


def _add_document_version(
    session: Session, ctx: RegisterContext, item: Item, document: Attachment, call: _Call, *, reason: str
) -> None:
    """Store ``document`` as the item's new version: its first line is the title when short enough."""
    text = document.text or ""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if lines and len(lines[0]) <= 60:
        title, body = lines[0], "\n".join(lines[1:])
    else:
        title, body = current_text(item).title, text
    add_version(
        session,
        item,
        title=title,
        body_text=body,
        attachment_id=document.id,
        actor=call.actor,
        at=_now(ctx),
        reason=f"{reason}（{document.filename}）",
        via_message_id=call.via_message_id,
    )
    item.edit_pending = None


def _apply_document(session: Session, ctx: RegisterContext, item: Item, document: Attachment, call: _Call) -> None:
    """Make ``document`` the item's new version, as edited by the office."""
    _add_document_version(session, ctx, item, document, call, reason="办公室编辑稿")
    if item.state != ItemState.EDITED:
        change_state(
            session, item, ItemState.EDITED, actor=call.actor, at=_now(ctx), command="edit",
            via_message_id=call.via_message_id, comment=f"第 {item.version} 稿：{document.filename}",
        )  # fmt: skip


def _edit(session: Session, ctx: RegisterContext, command: Command, call: _Call) -> str:
    item = _item(session, command.serials[0])
    matched = _match_documents([item], call.documents)
    document = matched.get(item.id)
    if document is None:
        raise CommandError("没有找到修改后的 .docx 附件")
    if item.state in (ItemState.SUBMITTED, ItemState.ADOPTED, ItemState.NOT_SENT, ItemState.SUPERSEDED):
        raise CommandError(f"{item.serial} 当前状态为“{label(ITEM_STATE_LABELS, item.state)}”，不能再修改")
    was_pending = item.edit_pending
    if item.state == ItemState.APPROVED:
        # The leader approved with changes: the edited text is what gets submitted, without a new approval.
        _add_document_version(session, ctx, item, document, call, reason="按领导意见修改")
        session.add(
            ItemEvent(
                item_id=item.id, at=_now(ctx), actor=call.actor, via_message_id=call.via_message_id,
                command="edit", old_state=str(item.state), new_state=str(item.state),
                comment=f"第 {item.version} 稿：{document.filename}",
            )
        )  # fmt: skip
        done = "，领导的修改要求已落实，可以报送" if was_pending else ""
        return f"{item.serial} 已更新为第 {item.version} 稿{done}"
    _apply_document(session, ctx, item, document, call)
    return f"{item.serial} 已更新为第 {item.version} 稿（编辑稿），送审时将发送此稿"


def _submit(session: Session, ctx: RegisterContext, command: Command, call: _Call) -> str:
    items = [_item(session, serial) for serial in command.serials]
    for item in items:
        if item.edit_pending:
            raise CommandError(
                f"{item.serial} 领导要求修改后报送（意见：{item.edit_pending}），请先发送“修改 {item.serial}”"
                "并附上修改后的 .docx 文件"
            )
        change_state(
            session,
            item,
            ItemState.SUBMITTED,
            actor=call.actor,
            at=_now(ctx),
            command=Verb.SUBMIT.value,
            via_message_id=call.via_message_id,
        )
        item.submitted_at = _now(ctx)
        if ctx.settings.notices.unit_on_submit:
            _notify_unit(session, ctx, item, what="已报送省委、省政府两办", details=[], key=f"submit:{item.id}")
    return f"已报送两办：{'、'.join(item.serial for item in items)}"


def _adopt(session: Session, ctx: RegisterContext, command: Command, call: _Call) -> str:
    item = _item(session, command.serials[0])
    for earlier in item.adoptions:
        same = (earlier.outlet, earlier.publication, earlier.issue) == (
            command.outlet,
            command.publication,
            command.issue,
        )
        if same and earlier.revoked_at is None:
            raise CommandError(
                f"{item.serial} 已于 {earlier.adopted_on:%Y年%m月%d日} 登记过同一次采用（{_adoption_text(command)}），"
                "不再重复登记；如确是另一次采用，请写明刊物期号"
            )
    event = change_state(
        session,
        item,
        ItemState.ADOPTED,
        actor=call.actor,
        at=_now(ctx),
        command=Verb.ADOPT.value,
        via_message_id=call.via_message_id,
        comment=_adoption_text(command),
    )
    day = _now(ctx).astimezone(ctx.settings.tz).date()
    score = _score(ctx, command, day)
    adoption = Adoption(
        item_id=item.id,
        event_id=event.id,
        adopted_on=day,
        outlet=command.outlet,
        publication=command.publication,
        issue=command.issue,
        instructed=command.instructed,
        instruction_level=command.instruction_level,
        outlet_level=score.outlet_level,
        points=score.points,
        rules_name=score.rules_name,
        explanation=score.explanation,
        actor=call.actor,
        via_message_id=call.via_message_id,
    )
    session.add(adoption)
    session.flush()
    if ctx.settings.notices.unit_on_adopt:
        _notify_unit(
            session,
            ctx,
            item,
            what="已被采用",
            details=[f"采用情况：{_adoption_text(command)}"],
            key=f"adopt:{adoption.id}",
        )
    return f"{item.serial} 已登记采用：{_adoption_text(command)}；计分：{score.explanation}"


def _score(ctx: RegisterContext, command: Command, day: date) -> Score:
    if ctx.scoring is None:
        return Score(
            points=ZERO,
            outlet_level="",
            outlet_points=ZERO,
            instruction_level="",
            instruction_bonus=ZERO,
            rules_name="",
            explanation="未配置计分规则文件（scoring.file），记 0 分",
        )
    return score_adoption(
        ctx.scoring,
        day=day,
        outlet=command.outlet,
        publication=command.publication,
        instructed=command.instructed or bool(command.instruction_level),
        instruction_level=command.instruction_level,
    )


def _adoption_text(command: Command) -> str:
    parts = [command.outlet]
    if command.publication:
        parts.append(f"《{command.publication}》{command.issue}")
    if command.instructed:
        parts.append(f"批示（{command.instruction_level or '未注明级别'}）")
    return " ".join(parts)


def _return(session: Session, ctx: RegisterContext, command: Command, call: _Call) -> str:
    item = _item(session, command.serials[0])
    event = change_state(
        session,
        item,
        ItemState.RETURNED,
        actor=call.actor,
        at=_now(ctx),
        command=Verb.RETURN.value,
        via_message_id=call.via_message_id,
        comment=command.comment,
    )
    void_open_requests(session, [item.id], except_id=None)
    sent_to = _queue_return_notice(session, ctx, item, command.comment, key=f"return:{event.id}")
    return f"{item.serial} 已退回{sent_to}，意见：{command.comment}"


def _queue_return_notice(session: Session, ctx: RegisterContext, item: Item, comment: str, *, key: str) -> str:
    message = item.message
    unit = ctx.units.get(item.unit_code)
    if not message.sender or unit is None:
        return "（单位没有可用的发件地址，未发通知）"
    settings = ctx.settings
    body = render(
        "unit/return_notice.txt.j2",
        unit_name=unit.name,
        serial=item.serial,
        title=current_text(item).title,
        received_at=local_time(item.received_at, settings),
        comment=comment,
        office_name=settings.office.name,
        sent_on=_now(ctx).astimezone(settings.tz).strftime("%Y年%m月%d日"),
    )
    mail = build_mail(
        settings,
        to=[message.sender],
        subject=f"【退回修改】{item.serial} {current_text(item).title}",
        body=body,
        key=key,
        kind="return",
        now=_now(ctx),
        in_reply_to=message.message_id,
    )
    queue_mail(
        session,
        key=key,
        purpose="return_notice",
        mail=mail,
        recipients=[message.sender],
        now=_now(ctx),
        item_id=item.id,
        message_db_id=message.id,
    )
    return f"，已通知 {unit.short_name}（{message.sender}）"


def _notify_unit(
    session: Session, ctx: RegisterContext, item: Item, *, what: str, details: list[str], key: str
) -> None:
    message = item.message
    unit = ctx.units.get(item.unit_code)
    if not message.sender or unit is None:
        return
    settings = ctx.settings
    body = render(
        "unit/progress_notice.txt.j2",
        unit_name=unit.name,
        what=what,
        serial=item.serial,
        title=current_text(item).title,
        details=details,
        office_name=settings.office.name,
        sent_on=_now(ctx).astimezone(settings.tz).strftime("%Y年%m月%d日"),
    )
    purpose = "adopt_notice" if key.startswith("adopt") else "submit_notice"
    mail = build_mail(
        settings,
        to=[message.sender],
        subject=f"【{what}】{item.serial} {current_text(item).title}",
        body=body,
        key=key,
        kind=purpose,
        now=_now(ctx),
    )
    queue_mail(
        session, key=key, purpose=purpose, mail=mail, recipients=[message.sender], now=_now(ctx), item_id=item.id
    )


def _undo(session: Session, ctx: RegisterContext, command: Command, call: _Call) -> str:
    item = _item(session, command.serials[0])
    undone, _ = undo_last_change(
        session,
        item,
        actor=call.actor,
        at=_now(ctx),
        via_message_id=call.via_message_id,
        same_side=lambda actor: is_office_actor(ctx.settings, actor),
    )
    extra = ""
    if undone.command == Verb.SEND_FOR_APPROVAL.value:
        voided = void_open_requests(session, [item.id], except_id=None)
        extra = f"，{voided} 份审批请求已作废" if voided else ""
    elif undone.command == Verb.SUBMIT.value:
        item.submitted_at = None
    elif undone.command == Verb.ADOPT.value:
        adoption = session.scalar(select(Adoption).where(Adoption.event_id == undone.id))
        if adoption is not None:
            adoption.revoked_at = _now(ctx)
            extra = "，该次采用记录及计分已撤销"
    what = COMMAND_LABELS.get(undone.command or "", undone.command)
    return f"{item.serial} 已撤销“{what}”，恢复为“{label(ITEM_STATE_LABELS, item.state)}”{extra}"


def _query(session: Session, ctx: RegisterContext, command: Command, call: _Call) -> str:
    parts = []
    for serial in command.serials:
        item = _item(session, serial)
        unit = ctx.units.get(item.unit_code)
        text = current_text(item)
        lines = [
            f"{item.serial} {text.title}（{unit.short_name if unit else item.unit_code}，{item.category}，"
            f"第 {text.version} 稿）：{label(ITEM_STATE_LABELS, item.state)}"
        ]
        for event in item.events[-8:]:
            who = "系统" if event.actor == "zwxx" else event.actor
            what = COMMAND_LABELS.get(event.command or "", event.command or "")
            comment = f"（{event.comment}）" if event.comment else ""
            lines.append(f"    {local_time(event.at, ctx.settings)} {who} {what}{comment}")
        for adoption in item.adoptions:
            if adoption.revoked_at is None:
                lines.append(
                    f"    采用：{adoption.outlet} {adoption.publication} {adoption.issue} {adoption.points} 分"
                )
        if item.edit_pending:
            lines.append(f"    待修改：{item.edit_pending}")
        open_request = session.scalar(
            select(ApprovalRequest)
            .where(ApprovalRequest.state == ApprovalState.OPEN)
            .where(ApprovalRequest.entries.any(item_id=item.id))
            .limit(1)
        )
        if open_request is not None:
            lines.append(f"    待领导审批，审批请求发出于 {local_time(open_request.created_at, ctx.settings)}")
        parts.append("\n".join(lines))
    return "\n".join(parts)


def _register_sender(session: Session, ctx: RegisterContext, command: Command, call: _Call) -> str:
    from daemon.reparse import ReparseSummary, register_again  # reparse imports the registering stage

    unit = ctx.units.find_by_name(command.unit_name)
    if unit is None:
        raise CommandError(f"单位名录中没有“{command.unit_name}”，请写单位名录中的名称，如 成都市")
    owner = ctx.units.lookup(command.address)
    if owner is not None and owner.code != unit.code:
        raise CommandError(f"{command.address} 已属于 {owner.name}，请先在单位名录文件中修改")
    row = session.scalar(select(SenderAddress).where(SenderAddress.address == command.address))
    if row is None:
        row = SenderAddress(address=command.address, unit_code=unit.code, added_at=_now(ctx), added_by=call.actor)
        row.via_message_id = call.via_message_id
        session.add(row)
    else:
        row.unit_code = unit.code
    session.flush()
    held = session.scalars(
        select(Message)
        .where(Message.state == MessageState.HELD, Message.sender == command.address)
        .order_by(Message.id)
    ).all()
    summary = ReparseSummary()
    serials: list[str] = []
    for message in held:
        register_again(session, ctx, message, ctx.archive.get(message.sha256), summary)
        serials.extend(item.serial for item in message.items)
    done = f"{command.address} 已登记为 {unit.name} 的发件地址"
    if not held:
        return done + "，没有待处理的来信"
    registered = f"，登记为 {'、'.join(serials)}，已发回执" if serials else "，但其中没有识别出政务信息"
    return done + f"；此前暂存的 {len(held)} 封来信已处理{registered}"


def _set_conference_date(session: Session, ctx: RegisterContext, command: Command, call: _Call) -> str:
    """Set a 新闻通气会 item's conference date and count its deadline again from it."""
    item = _item(session, command.serials[0])
    if item.category != PRESS_CONFERENCE:
        raise CommandError(f"{item.serial} 的类别是“{item.category}”，不是{PRESS_CONFERENCE}，不能设置通气会日期")
    written = command.conference_date
    if written is None:
        raise CommandError("缺少通气会日期")
    day = written.resolve(item.received_at.astimezone(ctx.settings.tz).date())
    if day is None:
        raise CommandError(f"按收到日期推算的年份中没有 {written.month}月{written.day}日，请写明年份，如 2028-02-29")
    previous = item.event_date
    item.event_date = day
    deadline = assign_deadline(session, ctx, item)
    # With no old_state, 撤销 rejects this event instead of seeming to undo it without restoring the old date.
    session.add(
        ItemEvent(
            item_id=item.id, at=_now(ctx), actor=call.actor, via_message_id=call.via_message_id,
            command=Verb.SET_CONFERENCE_DATE.value, old_state=None, new_state=str(item.state),
            comment=f"通气会日期 {day.isoformat()}（原为 {previous.isoformat() if previous else '未填写'}）",
        )
    )  # fmt: skip
    return f"{item.serial} 的通气会日期已设为 {day.year}年{day.month}月{day.day}日；{deadline.rule}"


_RUNNERS = {
    Verb.SEND_FOR_APPROVAL: _send_for_approval,
    Verb.SUBMIT: _submit,
    Verb.ADOPT: _adopt,
    Verb.RETURN: _return,
    Verb.UNDO: _undo,
    Verb.QUERY: _query,
    Verb.REGISTER_SENDER: _register_sender,
    Verb.EDIT: _edit,
    Verb.SET_CONFERENCE_DATE: _set_conference_date,
}


def handle_command_mail(
    session: Session,
    ctx: RegisterContext,
    message: Message,
    parsed: ParsedMessage,
    raw: bytes,
    attachments: Sequence[Attachment],
) -> None:
    """Carry out the command lines of an office mail and queue the reply; the caller commits."""
    headers = read_header_block(raw)
    settings = ctx.settings
    if settings.approval.check_authentication:
        verdict = check_authentication(
            [str(value) for value in headers.get_all("Authentication-Results", [])],
            authserv_id=settings.approval.authserv_id,
            required=settings.approval.required_methods,
            from_domain=(parsed.sender or "").rpartition("@")[2],
        )
        if not verdict.passed:
            message.state = MessageState.UNDECIDED
            message.reason = f"办公室命令未执行：{verdict.reason}"
            log.warning(
                "uid=%d message-id=%s: office command mail rejected: %s",
                message.uid,
                message.message_id,
                verdict.reason,
            )
            return

    text = command_text(parsed)
    if is_commission_mail(text):
        answer_commission_mail(session, ctx, message, parsed, text)
        return
    lines = read_commands(text).lines
    results = [
        execute_line(
            session, ctx, line, actor=parsed.sender or "", via_message_id=message.message_id, documents=attachments
        )
        for line in lines
    ]

    message.state = MessageState.COMMAND
    failed = sum(1 for result in results if not result.ok)
    message.reason = f"命令 {len(results)} 行，执行 {len(results) - failed} 行，未执行 {failed} 行"
    body = render(
        "office/command_reply.txt.j2",
        lines=results,
        failed=failed,
        usages=list(USAGE.values()),
    )
    key = f"command:{message.content_sha256}"
    subject = f"【命令执行结果】{parsed.subject}" if parsed.subject else "【命令执行结果】"
    mail = build_mail(
        settings,
        to=[parsed.sender or ""],
        subject=subject,
        body=body,
        key=key,
        kind="command",
        now=_now(ctx),
        in_reply_to=parsed.message_id,
        references=parsed.references,
    )
    queue_mail(
        session,
        key=key,
        purpose="command_reply",
        mail=mail,
        recipients=[parsed.sender or ""],
        now=_now(ctx),
        message_db_id=message.id,
    )


def command_text(parsed: ParsedMessage) -> str:
    """Return the office's own words of a command mail: quoted history (e.g. of a digest) removed."""
    return join_segments(extract_new_segments(parsed.mail_text))
