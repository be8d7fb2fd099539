"""`zwxx quarantine` subcommands (list, show, release, discard)."""

from __future__ import annotations

import argparse

from daemon.cli_common import open_app
from daemon.models import MessageState
from daemon.quarantine import (
    MAX_PARSE_ATTEMPTS,
    ReleaseOutcome,
    discard_message,
    list_quarantined,
    load_message,
    read_raw,
    release_message,
    summarize_headers,
)
from daemon.views import MESSAGE_STATE_LABELS, label, pad


def cmd_list(args: argparse.Namespace) -> int:
    app = open_app(args)
    try:
        rows = list_quarantined(app.session_factory)
    finally:
        app.close()
    if not rows:
        print("没有已隔离的邮件。")
        return 0
    tz = app.settings.tz
    print(" ".join([pad("编号", 6), pad("UID", 8), pad("收取时间", 16), pad("发件人", 32), "隔离原因"]))
    for row in rows:
        fetched = row.fetched_at.astimezone(tz).strftime("%Y-%m-%d %H:%M")
        print(
            " ".join(
                [
                    pad(str(row.id), 6),
                    pad(str(row.uid), 8),
                    pad(fetched, 16),
                    pad(row.sender or "—", 32),
                    _first_line(row.reason),
                ]
            )
        )
    print(f"共 {len(rows)} 封。查看详情：zwxx quarantine show 编号")
    return 0


def _first_line(text: str | None) -> str:
    return (text or "—").splitlines()[0] if text else "—"


def cmd_show(args: argparse.Namespace) -> int:
    app = open_app(args)
    tz = app.settings.tz
    try:
        with app.session_factory() as session:
            message = load_message(session, args.id, quarantined_only=False)
            print(f"编号：{message.id}")
            print(f"状态：{label(MESSAGE_STATE_LABELS, message.state)}")
            print(f"来源：{message.folder} UIDVALIDITY {message.uidvalidity} UID {message.uid}")
            print(f"收取时间：{message.fetched_at.astimezone(tz):%Y-%m-%d %H:%M}")
            print(f"处理次数：{message.attempts}（最多 {MAX_PARSE_ATTEMPTS} 次）")
            print(f"原因：{message.reason or '—'}")
            print(f"原始邮件：{app.context.archive.path_for(message.sha256)}（{message.size} 字节）")
            if message.size:
                print("邮件头：")
                headers = summarize_headers(read_raw(app.context, message))
                for name, value in headers:
                    print(f"  {name}: {value}")
                if not headers:
                    print("  （没有可识别的邮件头）")
            print("错误详情：")
            print(message.detail or "  （无）")
    finally:
        app.close()
    return 0


def cmd_release(args: argparse.Namespace) -> int:
    app = open_app(args)
    try:
        result = release_message(app.session_factory, app.context, args.id, force=args.force)
    finally:
        app.close()
    state = label(MESSAGE_STATE_LABELS, result.state)
    if result.outcome is ReleaseOutcome.RELEASED:
        print(f"第 {result.message_id} 号邮件已重新处理，现在的状态：{state}（第 {result.attempts} 次处理）")
        if result.serials:
            print(f"登记编号：{'、'.join(result.serials)}")
        print("已生成回执，将由发件箱发出。" if result.receipt_queued else "没有新登记的信息，不发回执。")
        if result.state != MessageState.REGISTERED and result.reason:
            print(f"说明：{result.reason}")
        return 0
    print(f"第 {result.message_id} 号邮件仍无法处理（第 {result.attempts} 次）：{_first_line(result.reason)}")
    if result.outcome is ReleaseOutcome.GAVE_UP:
        print(
            f"已尝试 {result.attempts} 次仍失败，邮件保持隔离。"
            "请核对原始邮件，或用 zwxx quarantine discard 丢弃；确需再试请加 --force"
        )
    return 1


def cmd_discard(args: argparse.Namespace) -> int:
    app = open_app(args)
    try:
        message = discard_message(app.session_factory, args.id, args.reason)
        path = app.context.archive.path_for(message.sha256)
    finally:
        app.close()
    print(f"第 {message.id} 号邮件已丢弃，原始邮件仍保存在 {path}")
    print(f"原因：{message.reason}")
    return 0


def _message_id(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"邮件编号应为正整数，收到 {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"邮件编号应为正整数，收到 {text!r}")
    return value


def add_commands(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the quarantine subcommands to the CLI's subparsers."""
    quarantine = sub.add_parser("quarantine", help="处理已隔离（无法解析或登记）的邮件")
    commands = quarantine.add_subparsers(dest="quarantine_command", required=True, metavar="子命令")

    commands.add_parser("list", help="列出已隔离的邮件").set_defaults(func=cmd_list)

    show = commands.add_parser("show", help="查看一封隔离邮件的原因、错误详情、归档位置和邮件头")
    show.add_argument("id", type=_message_id, metavar="编号", help="邮件编号（见 quarantine list）")
    show.set_defaults(func=cmd_show)

    release = commands.add_parser("release", help="重新解析并登记一封隔离邮件（如升级后）")
    release.add_argument("id", type=_message_id, metavar="编号", help="邮件编号（见 quarantine list）")
    release.add_argument("--force", action="store_true", help=f"已失败 {MAX_PARSE_ATTEMPTS} 次的邮件也再试一次")
    release.set_defaults(func=cmd_release)

    discard = commands.add_parser("discard", help="丢弃一封隔离邮件（原始邮件仍保留在归档目录）")
    discard.add_argument("id", type=_message_id, metavar="编号", help="邮件编号（见 quarantine list）")
    discard.add_argument("--reason", required=True, metavar="原因", help="丢弃原因，记入该邮件的处理原因")
    discard.set_defaults(func=cmd_discard)
