"""Commissions (约稿) on the command line: ``zwxx commission new|list|show``.

``new`` runs the same code as a 约稿 mail from the office, as ``cli:<login name>``; the notices go
to the outbox and the running daemon sends them.
"""

from __future__ import annotations

import argparse
import getpass

from sqlalchemy import select

from daemon.cli_common import open_app
from daemon.commissions import CommissionError, create_commission, describe_commission, find_commission
from daemon.models import Commission
from daemon.office import CLI_ACTOR_PREFIX
from parsers.commission_mail import CommissionDraft, CommissionMailError, read_deadline, read_unit_names


def _actor() -> str:
    try:
        return CLI_ACTOR_PREFIX + getpass.getuser()
    except (KeyError, OSError):
        return CLI_ACTOR_PREFIX + "unknown"


def cmd_new(args: argparse.Namespace) -> int:
    names, all_units, all_prefectures = read_unit_names(args.units)
    if not (names or all_units or all_prefectures):
        print("错误：--units 为空，请写单位名称，用逗号或顿号分隔，如 成都市,乐山市；或写 全部市州、全部")
        return 2
    try:
        deadline = read_deadline(args.deadline) if args.deadline else None
    except CommissionMailError as exc:
        print(f"错误：{'；'.join(exc.problems)}")
        return 2
    draft = CommissionDraft(
        topic=args.topic.strip(),
        unit_names=names,
        all_units=all_units,
        all_prefectures=all_prefectures,
        deadline=deadline,
        requirements=(args.requirements or "").strip(),
    )
    if not draft.topic:
        print("错误：--topic 为空，请写约稿主题")
        return 2
    app = open_app(args)
    try:
        with app.session_factory.begin() as session:
            try:
                commission = create_commission(session, app.context, draft, actor=_actor(), via_message_id=None)
            except CommissionError as exc:
                print(f"错误：{exc}")
                return 1
            described = describe_commission(session, app.context, commission)
    finally:
        app.close()
    _print_commission(described)
    print("通知已放入发件箱，由守护进程发送。")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    app = open_app(args)
    try:
        with app.session_factory() as session:
            commissions = session.scalars(select(Commission).order_by(Commission.year, Commission.seq)).all()
            rows = [describe_commission(session, app.context, commission) for commission in commissions]
    finally:
        app.close()
    if not rows:
        print("还没有约稿。")
        return 0
    for row in rows:
        units = row["units"]
        answered = row["answered"]
        assert isinstance(units, list) and isinstance(answered, list)
        progress = f"已报送 {len(answered)}/{len(units)}"
        print(f"{row['code']}　{row['state']}　截止 {row['deadline']}　{progress}　{row['topic']}")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    app = open_app(args)
    try:
        with app.session_factory() as session:
            commission = find_commission(session, args.code)
            if commission is None:
                print(f"错误：没有编号为 {args.code} 的约稿，可用 zwxx commission list 查看全部约稿")
                return 1
            described = describe_commission(session, app.context, commission)
    finally:
        app.close()
    _print_commission(described)
    return 0


def _print_commission(row: dict[str, object]) -> None:
    print(f"约稿编号：{row['code']}（{row['state']}）")
    print(f"主　　题：{row['topic']}")
    print(f"截止时间：{row['deadline']}")
    if row["requirements"]:
        print(f"约稿要求：{row['requirements']}")
    print(f"创建：{row['created_at']}，{row['created_by']}")
    units = row["units"]
    assert isinstance(units, list)
    print(f"约稿单位（{len(units)} 个）：")
    for unit in units:
        if unit["answered"]:
            late = "，逾期" if unit["late"] else ""
            status = f"已报送 {unit['serial']}（{unit['answered_at']}{late}）"
        elif unit["notified_at"]:
            status = f"未报送，通知于 {unit['notified_at']}"
        else:
            status = "未报送，没有可用的邮箱地址，未能通知"
        print(f"  {unit['name']}：{status}")


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    commission = sub.add_parser("commission", help="约稿：创建约稿并通知单位，查看约稿及各单位报送情况")
    actions = commission.add_subparsers(dest="action", required=True, metavar="操作")

    new = actions.add_parser("new", help="创建约稿，向各单位发出约稿通知")
    new.add_argument("--topic", required=True, help="约稿主题")
    new.add_argument("--units", required=True, help="约稿单位，用逗号或顿号分隔，如 成都市,乐山市；或 全部市州、全部")
    new.add_argument(
        "--deadline",
        help="截止时间，如 2026-12-10、2026-12-10 17:00 或 3个工作日；只写日期时截止到当天下班；"
        "不写则按配置项 commissions.default_deadline_days",
    )
    new.add_argument("--requirements", help="约稿要求，如字数、图片")
    new.set_defaults(func=cmd_new)

    listing = actions.add_parser("list", help="列出全部约稿及报送进度")
    listing.set_defaults(func=cmd_list)

    show = actions.add_parser("show", help="查看一项约稿及各单位的报送情况")
    show.add_argument("code", metavar="约稿编号", help="如 约稿2026-003")
    show.set_defaults(func=cmd_show)
