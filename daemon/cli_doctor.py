"""`zwxx doctor`: print the result of every check in daemon.doctor; exit 1 when any failed."""

from __future__ import annotations

import argparse

from daemon.app import build_app
from daemon.config import load_settings
from daemon.doctor import mark_of, run_checks


def cmd_doctor(args: argparse.Namespace) -> int:
    settings = load_settings(args.config)  # a bad file or a missing secret is reported before anything connects
    print(f"配置文件：{settings.path} 检查通过")
    app = build_app(settings)
    try:
        results = run_checks(app)
    finally:
        app.close()
    for result in results:
        print(f"{mark_of(result)} {result.name}：{result.detail}")
    failed = [result.name for result in results if not result.ok]
    if failed:
        print(f"\n有 {len(failed)} 项未通过：{'、'.join(failed)}。请按提示修改后再运行 zwxx doctor。")
        return 1
    print("\n全部检查通过。")
    return 0


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    doctor = sub.add_parser("doctor", help="全面检查：配置、IMAP 和 SMTP 登录、数据库、归档目录、工作日历、待办")
    doctor.set_defaults(func=cmd_doctor)
