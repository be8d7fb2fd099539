"""`zwxx report monthly|yearly PERIOD`: print a bulletin, write its files, or queue its mail."""

from __future__ import annotations

import argparse
from pathlib import Path

from daemon.bulletins import MONTHLY, YEARLY, compute_bulletin, parse_period, send_bulletin
from daemon.cli_common import open_app
from daemon.errors import DaemonError
from daemon.targets import load_targets


def cmd_report(args: argparse.Namespace) -> int:
    from daemon.bulletin_render import render_chart, render_docx, render_html, render_text, render_xlsx

    try:
        parse_period(args.kind, args.period)
    except ValueError as exc:
        raise DaemonError(str(exc)) from exc
    app = open_app(args)
    try:
        ctx = app.context
        file = app.settings.targets.file
        targets = load_targets(file, ctx.units) if file is not None else None
        with app.session_factory() as session:
            figures = compute_bulletin(session, ctx, args.kind, args.period, targets=targets)
            unfinished = ctx.clock.now().astimezone(ctx.settings.tz).date() < figures.end
            if args.send and unfinished:
                # A bulletin is sent once per period, so one sent early would stand in for the complete one.
                raise DaemonError(f"{figures.title}所在期间尚未结束，不能发送；可以先用 --out 查看")
            if unfinished:
                print(f"注意：{figures.title}所在期间尚未结束，以下是截至目前的数字。\n")
            print(render_text(ctx, figures))
            if args.out is not None:
                chart = render_chart(figures)
                out: Path = args.out
                try:
                    out.mkdir(parents=True, exist_ok=True)
                except OSError as exc:
                    raise DaemonError(
                        f"无法使用输出目录 {out}：它已是一个文件，或没有写入权限（{exc.strerror}）"
                    ) from exc
                files = {
                    ".docx": render_docx(ctx, figures, chart=chart),
                    ".xlsx": render_xlsx(ctx, figures),
                    ".png": chart,
                    ".html": render_html(ctx, figures).encode("utf-8"),
                }
                for suffix, data in files.items():
                    path = out / f"{figures.title}{suffix}"
                    path.write_bytes(data)
                    print(f"已写入：{path}")
            if args.send:
                bulletin = send_bulletin(session, ctx, args.kind, args.period, targets=targets)
                session.commit()
                if bulletin is None:
                    print(f"{figures.title}此前已发送，本次未重复发送。")
                else:
                    print(f"{figures.title}已放入发件箱，守护进程将按发送计划发出。")
    finally:
        app.close()
    return 0


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    report = sub.add_parser("report", help="生成月度通报或年度通报")
    kinds = report.add_subparsers(dest="kind", required=True, metavar="类型")
    for kind, help_text, metavar, example in (
        (MONTHLY, "月度通报", "年月", "2026-11"),
        (YEARLY, "年度通报", "年份", "2026"),
    ):
        parser = kinds.add_parser(kind, help=help_text)
        parser.add_argument("period", metavar=metavar, help=f"通报期间，如 {example}")
        parser.add_argument("--out", type=Path, metavar="目录", help="把 .docx、.xlsx、柱状图 .png 和 .html 写入该目录")
        parser.add_argument("--send", action="store_true", help="把通报邮件放入发件箱（同一期间只发送一次）")
        parser.set_defaults(func=cmd_report)
