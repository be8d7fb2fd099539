"""`zwxx calendar` subcommands: check the working-day calendar's coverage, and list a month's days."""

from __future__ import annotations

import argparse
import calendar as month_calendar
from datetime import date

from daemon.app import working_hours
from daemon.clock import SystemClock
from daemon.config import Settings, load_settings
from daemon.errors import DaemonError
from daemon.workdays import WorkCalendar


def _calendar(args: argparse.Namespace) -> tuple[Settings, WorkCalendar]:
    settings = load_settings(args.config, require_secrets=False)
    return settings, WorkCalendar.from_file(settings.calendar.file, hours=working_hours(settings), tz=settings.tz)


def cmd_check(args: argparse.Namespace) -> int:
    settings, calendar = _calendar(args)
    today = SystemClock().now().astimezone(settings.tz).date()
    source = (
        f"内置数据（chinesecalendar）+ 日历文件 {settings.calendar.file}"
        if settings.calendar.file
        else "内置数据（chinesecalendar）"
    )
    print(f"工作日历：{source}")
    hours = "、".join(f"{p.start:%H:%M}–{p.end:%H:%M}" for p in calendar.hours.periods)
    print(f"工作时间：{hours}")
    for year in (today.year, today.year + 1):
        if not calendar.is_year_covered(year):
            print(f"{year} 年：未录入（按周一至周五上班计算）")
            continue
        blocks = "；".join(f"{b.name} {b.start:%m-%d}至{b.end:%m-%d}" for b in calendar.holiday_blocks(year))
        print(f"{year} 年：已录入。假期：{blocks or '无'}")
    warning = calendar.next_year_warning(today)
    if warning:
        print(f"\n！！注意：{warning}")
        return 1
    return 0


def cmd_days(args: argparse.Namespace) -> int:
    try:
        year, month = (int(part) for part in args.month.split("-"))
        first = date(year, month, 1)
    except ValueError as exc:
        raise DaemonError(f"月份写法不对：{args.month}，应写作 2026-10") from exc
    _, calendar = _calendar(args)
    for day in range(1, month_calendar.monthrange(first.year, first.month)[1] + 1):
        current = date(first.year, first.month, day)
        name = calendar.holiday_name(current)
        label = calendar.day_kind(current).value + (f"（{name}）" if name else "")
        print(f"{current.isoformat()} 周{'一二三四五六日'[current.weekday()]}  {label}")
    return 0


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    calendar = sub.add_parser("calendar", help="工作日历：检查节假日数据是否齐全，查看某月的工作日")
    commands = calendar.add_subparsers(dest="calendar_command", required=True, metavar="子命令")
    check = commands.add_parser("check", help="检查今年和明年的节假日安排是否已录入（缺少时返回 1）")
    check.set_defaults(func=cmd_check)
    days = commands.add_parser("days", help="列出某月每天是工作日、周末、法定节假日还是调休上班")
    days.add_argument("month", metavar="月份", help="如 2026-10")
    days.set_defaults(func=cmd_days)
