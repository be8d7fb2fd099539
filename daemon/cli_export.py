"""`zwxx export YEAR --out DIR`: a year's register, records and raw mail in one tar.gz (daemon.export)."""

from __future__ import annotations

import argparse
from pathlib import Path

from daemon.cli_common import open_app
from daemon.errors import DaemonError
from daemon.export import export_year


def cmd_export(args: argparse.Namespace) -> int:
    if not 2000 <= args.year <= 2100:
        raise DaemonError(f"年份 {args.year} 无效，应写成 2026 这样的形式")
    app = open_app(args)
    try:
        try:
            summary = export_year(app, args.year, args.out)
        except OSError as exc:
            raise DaemonError(f"无法写入 {args.out}：{exc.strerror or exc}") from exc
    finally:
        app.close()
    exported = summary.messages - summary.missing
    print(f"已导出 {args.year} 年：信息 {summary.items} 条，原始邮件 {exported} 封，写入 {summary.path}")
    if summary.missing:
        print(f"注意：另有 {summary.missing} 封邮件的原始文件不在归档目录中，未能导出，清单见压缩包中的 MISSING.txt")
        return 1
    return 0


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    export = sub.add_parser("export", help="导出一年的登记簿、办理记录、采用记录和全部原始邮件（tar.gz），用于存档")
    export.add_argument("year", type=int, metavar="年份", help="如 2026")
    export.add_argument("--out", type=Path, default=Path("."), help="输出目录（默认当前目录）")
    export.set_defaults(func=cmd_export)
