"""`zwxx doctor`: print the result of every check in daemon.doctor; exit 1 when any failed."""

from __future__ import annotations

import argparse

from daemon.app import build_app
from daemon.config import load_settings
from daemon.doctor import mark_of, run_checks
from daemon.errors import ConfigError


def cmd_doctor(args: argparse.Namespace) -> int:
    try:
        # A bad file, units file or missing secret is reported before anything connects.
        settings = load_settings(args.config)
        app = build_app(settings)
    except ConfigError as exc:
        print(f"× 配置文件：配置有误，共 {len(exc.problems)} 处：")
        for problem in exc.problems:
            print(f"    {problem}")
        print("\n有 1 项未通过：配置文件。其余各项要在配置文件改正后才能检查，请改正后再运行 zwxx doctor。")
        return 1
    print(f"√ 配置文件：{settings.path} 检查通过")
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
    warned = sum(1 for result in results if result.warning)
    print(f"\n全部检查通过，其中 {warned} 项需要留意（标“!”的行）。" if warned else "\n全部检查通过。")
    return 0


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    doctor = sub.add_parser("doctor", help="全面检查：配置、IMAP 和 SMTP 登录、数据库、归档目录、工作日历、待办")
    doctor.set_defaults(func=cmd_doctor)
