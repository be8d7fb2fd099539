"""The `zwxx` command: thin wrappers around the functions the daemon and its jobs call."""

from __future__ import annotations

import argparse
import enum
import json
import logging
import sys
import unicodedata
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import date, datetime, time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from daemon import (
    __version__,
    cli_calendar,
    cli_commissions,
    cli_doctor,
    cli_export,
    cli_office,
    cli_quarantine,
    cli_reparse,
    cli_report,
)
from daemon.app import build_app
from daemon.cli_common import open_app
from daemon.config import Settings, load_settings
from daemon.db import upgrade_database
from daemon.errors import ConfigError, DaemonError, SendError
from daemon.lease import make_lease
from daemon.logsetup import setup_logging
from daemon.models import Item, ItemState, Message, MessageState, OutboxMail
from daemon.notices import clean_header_text
from daemon.register import SYSTEM_ACTOR
from daemon.targets import load_targets
from daemon.views import (
    COMMAND_LABELS,
    ITEM_STATE_LABELS,
    MESSAGE_STATE_LABELS,
    OUTBOX_STATE_LABELS,
    PURPOSE_LABELS,
    SYSTEM_ACTOR_LABEL,
    format_register,
    item_summary,
    label,
    pad,
)
from daemon.workflow import current_text

log = logging.getLogger(__name__)

DEFAULT_TZ = "Asia/Shanghai"
# Exit status of `zwxx poll` when mail was taken in but the receipts could not be sent yet.
EXIT_SEND_FAILED = 3


def _print_config_error(error: ConfigError) -> None:
    print(f"配置有误，共 {len(error.problems)} 处：", file=sys.stderr)
    for problem in error.problems:
        print(f"  - {problem}", file=sys.stderr)


def cmd_check_config(args: argparse.Namespace) -> int:
    settings = load_settings(args.config)
    app = build_app(settings)
    app.close()
    if settings.targets.file is not None:
        load_targets(settings.targets.file, app.context.units)  # raises ConfigError listing every problem
    print(f"配置文件 {settings.path} 检查通过：")
    imap, smtp = settings.imap, settings.smtp
    print(f"  IMAP：{imap.host}:{imap.port}（{imap.security}），文件夹 {imap.folder}")
    print(f"  SMTP：{smtp.host}:{smtp.port}（{smtp.security}），发件人 {smtp.from_address}")
    print(f"  单位名录：{settings.units.file}（{len(app.context.units)} 个单位）")
    print(f"  数据库：{_safe_url(settings)}")
    print(f"  归档目录：{settings.archive.dir}")
    print(f"  办公室地址：{'、'.join(settings.office.addresses) or '未配置（不发摘要，不接受命令邮件）'}")
    print(f"  审批领导：{'、'.join(settings.office.leaders) or '未配置（不能送审）'}")
    ops_admins = "、".join(settings.ops.admins)
    print(f"  运维摘要：{f'每天 {settings.ops.time} 发给 {ops_admins}' if ops_admins else '未配置（不发运维摘要）'}")
    scoring = app.context.scoring
    print(
        f"  计分规则：{settings.scoring.file}（{len(scoring.rule_sets)} 组）"
        if scoring
        else "  计分规则：未配置（采用记 0 分）"
    )
    calendar = app.context.calendar
    print(f"  工作日历：{settings.calendar.file or '内置（chinesecalendar）'}")
    warning = calendar.next_year_warning(app.clock.now().astimezone(settings.tz).date())
    if warning:
        print(f"  注意：{warning}")
    return 0


def _safe_url(settings: Settings) -> str:
    from sqlalchemy.engine import make_url

    return make_url(settings.database.url).render_as_string(hide_password=True)


def cmd_init(args: argparse.Namespace) -> int:
    app = open_app(args, require_schema=False)
    try:
        upgrade_database(app.engine)
        app.context.archive.ensure()
    finally:
        app.close()
    print(f"已初始化：数据库 {_safe_url(app.settings)}，归档目录 {app.settings.archive.dir}")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from daemon.runner import Runner

    app = open_app(args, require_secrets=True)
    try:
        runner = Runner(app)
        runner.install_signal_handlers()
        runner.run()
    finally:
        app.close()
    return 0


def cmd_poll(args: argparse.Namespace) -> int:
    from daemon.intake import close_imap, connect_imap, poll_folder
    from daemon.outbound import recover_interrupted, send_all_due

    app = open_app(args, require_secrets=True)
    lease = make_lease(app.engine, app.settings.database.url)
    try:
        if not lease.try_acquire():
            raise DaemonError("守护进程（zwxx run）正在运行并收取邮件，zwxx poll 不能同时运行；新邮件会由守护进程处理")
        with app.session_factory() as session:
            last_id = session.scalar(select(func.max(Message.id))) or 0
        client = connect_imap(app.settings)
        try:
            summary = poll_folder(client, app.session_factory, app.context, progress=_progress_printer())
        finally:
            close_imap(client)
        with app.session_factory() as session:
            states = Counter(session.scalars(select(Message.state).where(Message.id > last_id)))
            new_items = session.scalar(select(func.count(Item.id)).join(Message).where(Message.id > last_id))
        print(_poll_report(states, new_items or 0))
        if summary.fetch_failures:
            print(f"有 {summary.fetch_failures} 封邮件本次未能从服务器读取，下次收取时重试（连续 3 次失败后隔离）。")
        recover_interrupted(app.session_factory)
        try:
            sent = send_all_due(app.session_factory, app.settings, app.clock)
        except SendError as exc:
            print(f"待发邮件（回执等）暂未发出，将在下次运行时重试：{exc}", file=sys.stderr)
            return EXIT_SEND_FAILED
    finally:
        lease.release()
        app.close()
    print(f"发出回执等邮件 {sent.sent} 封，待重试 {sent.retried} 封，放弃 {sent.failed} 封。")
    return 0


def _progress_printer() -> Callable[[int, int], None]:
    """Return a progress callback for a backlog: a bar on a terminal, a line per tenth otherwise."""
    state = {"shown": -1}

    def show(done: int, total: int) -> None:
        if total < 50:
            return
        if sys.stderr.isatty():
            filled = done * 30 // total
            end = "\n" if done == total else ""
            print(f"\r收取中 [{'#' * filled}{'.' * (30 - filled)}] {done}/{total} 封", end=end, file=sys.stderr)
            return
        tenth = done * 10 // total
        if tenth != state["shown"]:
            state["shown"] = tenth
            print(f"收取中：{done}/{total} 封（{tenth * 10}%）", file=sys.stderr)

    return show


def _poll_report(states: Counter[MessageState], new_items: int) -> str:
    """Describe one poll's new messages by outcome, e.g. "新收取 26 封（登记信息 22 条，待确认 3 封）"."""
    total = sum(states.values())
    if total == 0:
        return "没有新邮件。"
    parts = [f"登记信息 {new_items} 条"] if new_items else []
    for state, count in sorted(states.items(), key=lambda pair: str(pair[0])):
        if state is not MessageState.REGISTERED:
            short_label = label(MESSAGE_STATE_LABELS, state).split("（")[0]  # 待确认（未知发件人） -> 待确认
            parts.append(f"{short_label} {count} 封")
    return f"新收取 {total} 封（{'，'.join(parts)}）。"


def _day_bounds(text: str, tz: ZoneInfo, *, end: bool) -> datetime:
    try:
        day = date.fromisoformat(text)
    except ValueError as exc:
        raise DaemonError(f"日期 {text!r} 格式无效，应写成 2026-11-01 这样的形式") from exc
    return datetime.combine(day, time.max if end else time.min, tzinfo=tz)


def _checked_state(value: str, states: type[enum.StrEnum], what: str, labels: dict[Any, str]) -> str:
    """Return the state ``value`` names, by code (adopted) or Chinese label (已采用); else raise DaemonError."""
    by_label = {labels.get(state, str(state)): str(state) for state in states}
    names = sorted(str(state) for state in states)
    if value in names:
        return value
    if value in by_label:
        return by_label[value]
    choices = "、".join(f"{label}（{code}）" for label, code in by_label.items())
    raise DaemonError(f"未知的{what}状态 {value!r}，可选：{choices}")


def cmd_list(args: argparse.Namespace) -> int:
    app = open_app(args)
    tz = app.settings.tz
    try:
        with app.session_factory() as session:
            query = select(Item).order_by(Item.year, Item.seq)
            if args.unit:
                unit = (
                    app.context.units.get(args.unit)
                    or app.context.units.find_by_name(args.unit)
                    or next((u for u in app.context.units.units.values() if args.unit in (u.name, *u.aliases)), None)
                )
                if unit is None:
                    raise DaemonError(f"未找到单位：{args.unit}（可用单位代码或名称）")
                query = query.where(Item.unit_code == unit.code)
            if args.since:
                query = query.where(Item.received_at >= _day_bounds(args.since, tz, end=False))
            if args.until:
                query = query.where(Item.received_at <= _day_bounds(args.until, tz, end=True))
            if args.state:
                query = query.where(Item.state == _checked_state(args.state, ItemState, "信息", ITEM_STATE_LABELS))
            items = list(session.scalars(query))
    finally:
        app.close()
    rows = [item_summary(item, app.context.units, tz, now=app.clock.now()) for item in items]
    if args.json:
        print(json.dumps(rows, ensure_ascii=False, indent=2))
        return 0
    print(format_register(rows))
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    app = open_app(args)
    tz = app.settings.tz
    try:
        with app.session_factory() as session:
            serial = unicodedata.normalize("NFKC", args.serial).strip()
            item = session.scalar(select(Item).where(Item.serial == serial))
            if item is None:
                raise DaemonError(f"登记簿中没有编号为 {args.serial} 的信息（编号形如 2026-0001）")
            message = item.message
            summary = item_summary(item, app.context.units, tz, now=app.clock.now())
            print(f"编号：{item.serial}")
            print(f"标题：{item.title}")
            print(f"单位：{summary['unit_name']}（{item.unit_code}）")
            print(f"类别：{item.category}")
            print(f"状态：{summary['state_label']}")
            print(f"收到时间：{str(summary['received_at'])[:16].replace('T', ' ')}")
            print(f"时限：{item.deadline_rule or '无时限'}")
            print(f"是否按时：{summary['verdict']}")
            if item.content_unit_code and item.content_unit_code != item.unit_code:
                author = app.context.units.get(item.content_unit_code)
                print(f"撰稿单位：{author.short_name if author else item.content_unit_code}（转报）")
            for caption, linked_id in (("修改稿，取代", item.revises_id), ("与已登记信息相同", item.same_item_as_id)):
                if linked_id is not None:
                    linked = session.get(Item, linked_id)
                    print(f"{caption}：{linked.serial if linked else linked_id}")
            later = session.scalar(select(Item.serial).where(Item.revises_id == item.id))
            if later:
                print(f"已被修改稿取代：{later}")
            print(f"来信：{message.sender}，Message-ID {message.message_id}，UID {message.uid}")
            print(f"原始邮件：{app.context.archive.path_for(message.sha256)}")
            print(f"审核：{item.reviewer or '—'}　签发：{item.signer or '—'}")
            print(f"联系人：{item.contact or '—'}　电话：{item.phone or '—'}")
            print(f"正文：{item.body_chars} 字　照片：{item.photo_count} 张")
            for attachment in message.attachments:
                mark = "，本条信息的文档" if attachment.id == item.attachment_id else ""
                print(
                    f"附件：{clean_header_text(attachment.filename)}（{attachment.kind}，{attachment.size} 字节{mark}）"
                )
            for warning in item.warning_list:
                print(f"提示：{warning}")
            for version in item.versions:
                print(f"第 {version.version} 稿：{version.title}（{version.reason}，{version.actor}）")
            if item.edit_pending:
                print(f"待修改：{item.edit_pending}（领导同意但要求修改，修改前不能报送）")
            for adoption in item.adoptions:
                revoked = "（已撤销）" if adoption.revoked_at else ""
                print(f"采用：{adoption.adopted_on} {adoption.explanation}{revoked}")
            print("办理记录：")
            for event in item.events:
                actor = SYSTEM_ACTOR_LABEL if event.actor == SYSTEM_ACTOR else event.actor
                old = label(ITEM_STATE_LABELS, event.old_state) if event.old_state else "—"
                what = COMMAND_LABELS.get(event.command or "", event.command or "")
                print(
                    f"  {event.at.astimezone(tz):%Y-%m-%d %H:%M}  {actor}  {what}  {old} → "
                    f"{label(ITEM_STATE_LABELS, event.new_state)}  {event.comment or ''}"
                )
            if args.body:
                print("\n" + current_text(item).body_text)
    finally:
        app.close()
    return 0


def cmd_inspect(args: argparse.Namespace) -> int:
    from daemon.inspection import inspect_document, inspect_message
    from daemon.units import UnitDirectory
    from parsers.errors import MessageParseError

    setup_logging("INFO" if args.verbose else "ERROR")

    tz = ZoneInfo(DEFAULT_TZ)
    units = None
    if args.config or (args.units is None and _env_config()):
        settings = load_settings(args.config)
        tz, units = settings.tz, UnitDirectory.load(settings.units.file)
    if args.units:
        units = UnitDirectory.load(args.units)
    try:
        data = Path(args.file).read_bytes()
    except OSError as exc:
        raise DaemonError(f"无法读取文件 {args.file}：{exc.strerror}") from exc
    if args.request is not None:
        return _inspect_reply(args, data, tz)
    if args.file.lower().endswith(".eml") or _looks_like_mail(data):
        try:
            result = inspect_message(data, units=units, default_tz=tz)
        except MessageParseError as exc:
            raise DaemonError(f"邮件无法解析：{exc.reason}") from exc
    else:
        result = inspect_document(data)
    if args.json:
        print(json.dumps(result, ensure_ascii=False, indent=2, default=str))
    else:
        for key, value in result.items():
            print(f"{key}: {json.dumps(value, ensure_ascii=False, default=str)}")
    return 0


def _inspect_reply(args: argparse.Namespace, data: bytes, tz: ZoneInfo) -> int:
    """Read ``data`` as a leader's reply to the approval request in ``args.request`` and print the decisions."""
    from daemon.inspection import (
        find_thread_link,
        format_reply_summary,
        read_approval_request,
        read_reply_to_request,
        report_reply,
    )
    from parsers.errors import MessageParseError

    try:
        request_data = args.request.read_bytes()
    except OSError as exc:
        raise DaemonError(f"无法读取审批请求文件 {args.request}：{exc.strerror}") from exc
    try:
        request = read_approval_request(request_data, default_tz=tz)
    except MessageParseError as exc:
        raise DaemonError(f"审批请求邮件 {args.request} 无法解析：{exc.reason}") from exc
    try:
        reading = read_reply_to_request(data, request, default_tz=tz)
    except MessageParseError as exc:
        raise DaemonError(f"回复邮件 {args.file} 无法解析：{exc.reason}") from exc

    if not request.item_serials:
        print(f"提示：审批请求 {args.request} 中没有找到登记编号，按单条信息读取回复。", file=sys.stderr)
    if args.json:
        if find_thread_link(reading, request) is None:
            print(
                f"提示：回复与审批请求 {args.request} 对不上（In-Reply-To、References 和主题编号都不符）。",
                file=sys.stderr,
            )
        print(json.dumps(report_reply(reading), ensure_ascii=False, indent=2))
    else:
        print(format_reply_summary(reading, request))
    return 0


def _env_config() -> bool:
    import os

    from daemon.config import CONFIG_ENV

    return bool(os.environ.get(CONFIG_ENV))


def _looks_like_mail(data: bytes) -> bool:
    head = data[:2048].lower()
    return b"\nfrom:" in head or head.startswith((b"from:", b"received:", b"return-path:", b"message-id:"))


def cmd_demo(args: argparse.Namespace) -> int:
    from daemon.demo import run_demo

    setup_logging("WARNING" if not args.verbose else "INFO")
    return run_demo(workdir=Path(args.workdir) if args.workdir else None)


def cmd_outbox(args: argparse.Namespace) -> int:
    app = open_app(args)
    tz = app.settings.tz
    try:
        with app.session_factory() as session:
            rows = list(session.scalars(select(OutboxMail).order_by(OutboxMail.id)))
    finally:
        app.close()
    if not rows:
        print("发件箱为空。")
    for row in rows:
        sent = row.sent_at.astimezone(tz).strftime("%Y-%m-%d %H:%M") if row.sent_at else "—"
        print(
            f"{row.id:>5} {pad(label(PURPOSE_LABELS, row.purpose), 6)} {pad(label(OUTBOX_STATE_LABELS, row.state), 10)}"
            f" 尝试 {row.attempts} 次  发送于 {sent}  收件人 "
            f"{', '.join(row.recipient_list)}  {row.last_error or ''}"
        )
    return 0


def cmd_messages(args: argparse.Namespace) -> int:
    state = _checked_state(args.state, MessageState, "邮件", MESSAGE_STATE_LABELS) if args.state else None
    app = open_app(args)
    tz = app.settings.tz
    try:
        with app.session_factory() as session:
            query = select(Message).order_by(Message.id)
            if state:
                query = query.where(Message.state == state)
            rows = list(session.scalars(query))
        if not rows:
            print("没有符合条件的邮件。")
        for row in rows:
            fetched = row.fetched_at.astimezone(tz).strftime("%Y-%m-%d %H:%M")
            print(
                f"{row.id:>5} UID {row.uid:<6} {fetched}  {pad(label(MESSAGE_STATE_LABELS, row.state), 20)} "
                f"{row.sender or '—':<32} {row.reason or ''}"
            )
            if args.paths:
                print(f"      原始邮件：{app.context.archive.path_for(row.sha256)}")
    finally:
        app.close()
    return 0


# argparse builds its headings and errors with gettext; these are the strings zwxx users see.
_ARGPARSE_CHINESE = {
    "usage: ": "用法：",
    "positional arguments": "位置参数",
    "options": "选项",
    "show this help message and exit": "显示帮助信息并退出",
    "show program's version number and exit": "显示版本号并退出",
    "%(prog)s: error: %(message)s\n": "%(prog)s：错误：%(message)s\n",
    "invalid choice: %(value)r (choose from %(choices)s)": "无效的选项 %(value)r（可选：%(choices)s）",
    "unrecognized arguments: %s": "无法识别的参数：%s",
    "the following arguments are required: %s": "缺少必需的参数：%s",
    "expected one argument": "需要一个参数值",
    "argument %(argument_name)s: %(message)s": "参数 %(argument_name)s：%(message)s",
    "invalid %(type)s value: %(value)r": "无效的 %(type)s 值：%(value)r",
}


def _translate_argparse(message: str) -> str:
    return _ARGPARSE_CHINESE.get(message, message)


def build_parser() -> argparse.ArgumentParser:
    # argparse looks its module-level gettext alias up on every call, so replacing it localises the
    # usage line, headings and errors without copying argparse's formatting code.
    argparse._ = _translate_argparse  # type: ignore[attr-defined]
    parser = argparse.ArgumentParser(prog="zwxx", description="政务信息报送邮箱自动收取、登记与回执。")
    parser.add_argument("--version", action="version", version=f"zwxx {__version__}", help="显示版本号并退出")
    parser.add_argument("--config", "-c", type=Path, help="配置文件路径（默认读取环境变量 ZWXX_CONFIG）")
    parser.add_argument("--verbose", "-v", action="store_true", help="显示运行日志")
    sub = parser.add_subparsers(dest="command", required=True, metavar="命令")

    sub.add_parser("init", help="创建或升级数据库，创建归档目录").set_defaults(func=cmd_init)
    sub.add_parser("run", help="运行守护进程：收取邮件并按计划发送回执").set_defaults(func=cmd_run)
    poll = sub.add_parser("poll", help="收取一次新邮件并发送到期的回执")
    poll.add_argument("--once", action="store_true", default=True, help="只收取一次（默认）")
    poll.set_defaults(func=cmd_poll)
    sub.add_parser("check-config", help="检查配置文件和单位名录").set_defaults(func=cmd_check_config)

    listing = sub.add_parser("list", help="查看登记簿")
    listing.add_argument("--unit", help="按单位筛选（单位代码或名称）")
    listing.add_argument("--since", help="起始日期，如 2026-11-01")
    listing.add_argument("--until", help="截止日期（含当天），如 2026-11-30")
    listing.add_argument("--state", help="按状态筛选，如 registered")
    listing.add_argument("--json", action="store_true", help="输出 JSON")
    listing.set_defaults(func=cmd_list)

    show = sub.add_parser("show", help="查看一条信息的详情和办理记录")
    show.add_argument("serial", metavar="编号", help="登记编号，如 2026-0001")
    show.add_argument("--body", action="store_true", help="同时显示正文")
    show.set_defaults(func=cmd_show)

    inspect = sub.add_parser("inspect", help="解析单个 .eml 或文档文件并输出结果（不入库）")
    inspect.add_argument("file", metavar="文件", help=".eml 邮件文件或文档文件")
    inspect.add_argument("--units", type=Path, help="单位名录文件（TOML），用于识别发件单位")
    inspect.add_argument("--json", action="store_true", help="输出一个 JSON 对象")
    inspect.add_argument(
        "--request",
        type=Path,
        metavar="请求邮件",
        help="该文件是领导对审批请求的回复时，指定它所回复的审批请求 .eml，输出审批意见",
    )
    inspect.set_defaults(func=cmd_inspect)

    messages = sub.add_parser("messages", help="查看收到的邮件及其处理结果")
    messages.add_argument("--state", help="按状态筛选，如 held、quarantined、duplicate")
    messages.add_argument("--paths", action="store_true", help="同时显示每封原始邮件在归档目录中的位置")
    messages.set_defaults(func=cmd_messages)
    sub.add_parser("outbox", help="查看发件箱（回执等）").set_defaults(func=cmd_outbox)

    cli_quarantine.add_commands(sub)
    cli_reparse.add_commands(sub)
    cli_office.add_commands(sub)
    cli_calendar.add_commands(sub)
    cli_commissions.add_commands(sub)
    cli_report.add_commands(sub)
    cli_doctor.add_commands(sub)
    cli_export.add_commands(sub)

    demo = sub.add_parser("demo", help="在本机启动演示邮件服务器，处理示例邮件并显示结果")
    demo.add_argument("--workdir", help="演示数据目录（默认使用临时目录）")
    demo.set_defaults(func=cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except ConfigError as exc:
        _print_config_error(exc)
        return 2
    except DaemonError as exc:
        print(f"错误：{exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader (e.g. `| head`) went away and stdout is closed, so nothing more is printed.
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    sys.exit(main())
