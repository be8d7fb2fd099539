"""`zwxx reparse`: re-run extraction on stored raw mail after an upgrade."""

from __future__ import annotations

import argparse
from datetime import date, datetime, time, tzinfo

from daemon.cli_common import open_app
from daemon.errors import DaemonError
from daemon.reparse import ReparseSummary, reparse_messages, select_message_ids


def add_commands(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the reparse subcommand to the CLI's subparsers."""
    reparse = sub.add_parser(
        "reparse",
        help="升级后按归档的原始邮件重新解析：更新已登记信息，补登此前未登记的邮件",
        description=(
            "按归档的原始邮件重新解析并提取信息。已登记的信息保留编号，只更新标题、正文等内容；"
            "此前未登记的邮件（如隔离、非信息邮件）重新判断，新登记的信息发送回执。"
            "已回复过的邮件不会再次发送回执。已丢弃的邮件不处理。"
        ),
    )
    scope = reparse.add_mutually_exclusive_group()
    scope.add_argument("--since", help="只处理该日期（含）以后收到的邮件，如 2026-11-01")
    scope.add_argument("--message", type=int, metavar="ID", help="只处理一封邮件（zwxx messages 第一列的编号）")
    reparse.add_argument("--dry-run", action="store_true", help="只显示将会发生的改动，不写入数据库")
    reparse.set_defaults(func=cmd_reparse)


def _parse_since(text: str, tz: tzinfo) -> datetime:
    try:
        day = date.fromisoformat(text)
    except ValueError as exc:
        raise DaemonError(f"日期 {text!r} 格式无效，应写成 2026-11-01 这样的形式") from exc
    return datetime.combine(day, time.min, tzinfo=tz)


def cmd_reparse(args: argparse.Namespace) -> int:
    app = open_app(args)
    try:
        since = _parse_since(args.since, app.settings.tz) if args.since else None
        with app.session_factory() as session:
            message_ids = select_message_ids(session, since=since, message_db_id=args.message)
        if args.message is not None and not message_ids:
            raise DaemonError(f"没有编号为 {args.message} 的邮件，或该邮件已丢弃（可用 zwxx messages 查看编号）")
        summary = reparse_messages(app.session_factory, app.context, message_ids, dry_run=args.dry_run)
    finally:
        app.close()
    print_summary(summary, dry_run=args.dry_run)
    return 0


def print_summary(summary: ReparseSummary, *, dry_run: bool) -> None:
    """Print the counts of a reparse run in Chinese; with ``dry_run``, each change first."""
    if dry_run:
        print("试运行：以下为将会发生的改动，数据库未作修改。")
        for line in summary.changes:
            print(f"  {line}")
        if not summary.changes:
            print("  （无改动）")
    verb = "将" if dry_run else "已"
    print(
        f"重新解析邮件 {summary.messages} 封：{verb}更新信息 {summary.items_updated} 条，"
        f"内容未变 {summary.items_unchanged} 条；{verb}新登记信息 {summary.items_registered} 条，"
        f"{verb}排队回执 {summary.receipts_queued} 封；"
        f"已回复邮件中新发现信息 {summary.items_added} 条（不另发回执）；"
        f"处理结果改变的邮件 {summary.states_changed} 封；失败 {summary.failed} 封。"
    )
