"""The office's commands on the command line: the same actions as the command lines of an office mail.

Each subcommand writes the command line the office would write in a mail (e.g. ``送审 2026-0012``)
and runs it through the same code, as ``cli:<login name>``. Mail it causes (approval requests,
notices) goes to the outbox; the running daemon sends it.
"""

from __future__ import annotations

import argparse
import getpass

from daemon.cli_common import open_app
from daemon.digest import collect, send_digest
from daemon.office import CLI_ACTOR_PREFIX, execute_line
from parsers.commands import read_commands


def _actor() -> str:
    try:
        return CLI_ACTOR_PREFIX + getpass.getuser()
    except (KeyError, OSError):
        return CLI_ACTOR_PREFIX + "unknown"


def run_lines(args: argparse.Namespace, text: str) -> int:
    """Run the command lines in ``text``; print one result per line; 1 when any line failed."""
    lines = read_commands(text).lines
    if not lines:
        print("没有可执行的命令。")
        return 1
    app = open_app(args)
    failed = 0
    try:
        with app.session_factory.begin() as session:
            for line in lines:
                result = execute_line(session, app.context, line, actor=_actor(), via_message_id=None)
                failed += not result.ok
                mark = "完成" if result.ok else "未执行"
                print(f"{mark}：{line.text}\n  {result.result}")
    finally:
        app.close()
    return 1 if failed else 0


def cmd_command(args: argparse.Namespace) -> int:
    return run_lines(args, "\n".join(args.lines))


def cmd_send_for_approval(args: argparse.Namespace) -> int:
    return run_lines(args, "送审 " + " ".join(args.serials))


def cmd_submit(args: argparse.Namespace) -> int:
    return run_lines(args, "报送 " + " ".join(args.serials))


def cmd_adopt(args: argparse.Namespace) -> int:
    parts = ["采用", args.serial, args.outlet]
    if args.publication:
        parts.append(f"《{args.publication}》{args.issue or ''}")
    if args.instruction is not None:
        parts.append(f"批示 {args.instruction}".strip())
    return run_lines(args, " ".join(parts))


def cmd_return(args: argparse.Namespace) -> int:
    return run_lines(args, f"退回 {args.serial} {args.comment}")


def cmd_undo(args: argparse.Namespace) -> int:
    return run_lines(args, f"撤销 {args.serial}")


def cmd_query(args: argparse.Namespace) -> int:
    return run_lines(args, "查询 " + " ".join(args.serials))


def cmd_add_sender(args: argparse.Namespace) -> int:
    return run_lines(args, f"登记 {args.address} {args.unit}")


def cmd_digest(args: argparse.Namespace) -> int:
    app = open_app(args)
    try:
        with app.session_factory.begin() as session:
            now = app.clock.now()
            if args.send:
                slot = "手动 " + now.astimezone(app.settings.tz).strftime("%Y-%m-%d %H:%M:%S")
                digest = send_digest(session, app.context, slot=slot)
                print(
                    "摘要已放入发件箱，由守护进程发送。" if digest.sent else "没有新信息，也没有待办事项，未发送摘要。"
                )
                return 0
            content, _ = collect(session, app.context, now=now)
            session.rollback()
    finally:
        app.close()
    print(
        f"自上次摘要以来：新信息 {len(content.new_items)} 条；待审批 {len(content.pending)} 条；"
        f"领导要求修改 {len(content.edit_pending)} 条；退回待改 {len(content.returned)} 条；"
        f"待处理来信 {len(content.held)} 封。"
    )
    if content.empty:
        print("没有需要报告的内容，到时不会发送摘要。")
    return 0


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    command = sub.add_parser("command", help='执行办公室命令行，写法与命令邮件相同，如 "送审 2026-0012"')
    command.add_argument("lines", nargs="+", metavar="命令行", help="一条或多条命令，每条用引号括起")
    command.set_defaults(func=cmd_command)

    approval = sub.add_parser("send-for-approval", help="送审：把信息发给领导审批（多条时按序号编排）")
    approval.add_argument("serials", nargs="+", metavar="编号")
    approval.set_defaults(func=cmd_send_for_approval)

    submit = sub.add_parser("submit", help="报送：登记信息已报送两办")
    submit.add_argument("serials", nargs="+", metavar="编号")
    submit.set_defaults(func=cmd_submit)

    adopt = sub.add_parser("adopt", help="采用：登记信息被采用，按计分规则计分")
    adopt.add_argument("serial", metavar="编号")
    adopt.add_argument("outlet", metavar="采用单位", help="如 省委办公厅")
    adopt.add_argument("--publication", help="刊物名称，如 四川信息")
    adopt.add_argument("--issue", help="期号，如 第45期")
    adopt.add_argument("--instruction", nargs="?", const="", help="有领导批示时填写批示领导的级别，如 省领导")
    adopt.set_defaults(func=cmd_adopt)

    returning = sub.add_parser("return", help="退回：把信息退回单位修改，并通知单位")
    returning.add_argument("serial", metavar="编号")
    returning.add_argument("comment", metavar="意见", help="退回意见")
    returning.set_defaults(func=cmd_return)

    undo = sub.add_parser("undo", help="撤销办公室对一条信息的最后一次操作")
    undo.add_argument("serial", metavar="编号")
    undo.set_defaults(func=cmd_undo)

    query = sub.add_parser("query", help="查询信息的办理状态")
    query.add_argument("serials", nargs="+", metavar="编号")
    query.set_defaults(func=cmd_query)

    sender = sub.add_parser("add-sender", help="登记：把发件地址加入单位，并处理该地址此前暂存的来信")
    sender.add_argument("address", metavar="邮箱地址")
    sender.add_argument("unit", metavar="单位名称")
    sender.set_defaults(func=cmd_add_sender)

    digest = sub.add_parser("digest", help="查看办公室摘要的内容；加 --send 立即发送一份")
    digest.add_argument("--send", action="store_true", help="立即生成摘要并放入发件箱")
    digest.set_defaults(func=cmd_digest)
