"""Chinese text views shared by the CLI and the demo: state labels and the register table."""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from daemon.deadlines import verdict
from daemon.models import Item, ItemState, MessageState, OutboxState
from daemon.units import UnitDirectory

ITEM_STATE_LABELS = {
    ItemState.REGISTERED: "已登记",
    ItemState.EDITED: "已编辑",
    ItemState.PENDING_APPROVAL: "待领导审批",
    ItemState.APPROVED: "领导已同意",
    ItemState.RETURNED: "已退回修改",
    ItemState.NOT_SENT: "不予报送",
    ItemState.SUBMITTED: "已报送两办",
    ItemState.ADOPTED: "已采用",
    ItemState.SUPERSEDED: "已作废（有修改稿）",
}

MESSAGE_STATE_LABELS = {
    MessageState.REGISTERED: "已登记",
    MessageState.HELD: "待确认（未知发件人）",
    MessageState.DUPLICATE: "重复邮件",
    MessageState.AUTO_REPLY: "自动回复",
    MessageState.BOUNCE: "退信",
    MessageState.LIST: "群发邮件",
    MessageState.NOT_ITEM: "非信息邮件",
    MessageState.QUARANTINED: "已隔离（无法处理）",
    MessageState.DISCARDED: "已丢弃",
    MessageState.COMMAND: "办公室命令",
    MessageState.DECISION: "领导审批意见",
    MessageState.UNDECIDED: "未采纳的审批回复",
}

OUTBOX_STATE_LABELS = {
    OutboxState.PENDING: "待发送",
    OutboxState.SENDING: "发送中",
    OutboxState.SENT: "已发送",
    OutboxState.FAILED: "发送失败",
    OutboxState.CANCELLED: "已取消",
}

PURPOSE_LABELS = {
    "receipt": "回执",
    "command_reply": "命令执行结果",
    "approval_request": "审批请求",
    "ask_back": "审批意见确认",
    "decision_notice": "审批结果通知",
    "return_notice": "退回通知",
    "submit_notice": "报送通知",
    "adopt_notice": "采用通知",
    "digest": "办公室摘要",
    "emergency_alert": "重大突发事件提醒",
    "commission_notice": "约稿通知",
    "commission_reminder": "约稿提醒",
    "commission_overdue": "约稿逾期通知",
    "commission_overdue_office": "约稿逾期汇总",
    "target_reminder": "目标进度提醒",
    "holiday_reminder": "假日综述提醒",
    "bulletin": "通报",
    "ops_digest": "运行情况",
}

# ItemEvent.command values written by the daemon, with the words the office uses for them.
COMMAND_LABELS = {
    "register": "登记",
    "reparse": "重新解析",
    "supersede": "被修改稿取代",
    "undo": "撤销",
    "edit": "编辑",
    "approve": "领导同意",
    "return": "领导退回修改",
    "reject": "领导不同意报送",
}

SYSTEM_ACTOR_LABEL = "系统"


def label(labels: dict[Any, str], value: Any) -> str:
    """Return the Chinese label of an enum value, or the value itself when it has none."""
    return labels.get(value, str(value))


def pad(text: str, width: int) -> str:
    """Pad ``text`` to ``width`` terminal columns; CJK characters take two columns."""
    columns = sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)
    return text + " " * max(width - columns, 0)


def format_register(rows: Sequence[dict[str, Any]]) -> str:
    """Render register rows (as built by the CLI's item summary) as an aligned table."""
    if not rows:
        return "登记簿中没有符合条件的信息。"
    lines = [
        " ".join(
            [
                pad("编号", 10),
                pad("收到时间", 16),
                pad("单位", 16),
                pad("类别", 12),
                pad("审核签发", 8),
                pad("时限", 18),
                "标题",
            ]
        )
    ]
    for row in rows:
        review = "有" if row["has_review_line"] else "无"
        title = str(row["title"])
        if row["state"] != ItemState.REGISTERED:
            title = f"〔{row['state_label']}〕{title}"
        received = str(row["received_at"])[:16].replace("T", " ")
        lines.append(
            " ".join(
                [
                    pad(str(row["serial"]), 10),
                    pad(received, 16),
                    pad(str(row["unit_name"]), 16),
                    pad(str(row["category"]), 12),
                    pad(review, 8),
                    pad(_deadline_cell(row), 18),
                    title,
                ]
            )
        )
    lines.append(f"共 {len(rows)} 条。")
    return "\n".join(lines)


def _deadline_cell(row: dict[str, Any]) -> str:
    """Return the register's short 时限 cell: "12-07 17:30 未到期", or "无时限"."""
    if not row.get("deadline_at"):
        return "无时限"
    due = str(row["deadline_at"])[5:16].replace("T", " ")
    return f"{due} {row['verdict']}" if row.get("verdict") else due


def item_summary(item: Item, units: UnitDirectory, tz: ZoneInfo, *, now: datetime | None = None) -> dict[str, object]:
    """Return one register row of ``item`` as plain values (used for tables and ``--json``).

    ``deadline_at`` is local ISO time or None. ``verdict`` (按时, 超时, 未到期, 无时限) is judged
    as of ``now``, and is None when ``now`` is not given.
    """
    unit = units.get(item.unit_code)
    return {
        "serial": item.serial,
        "received_at": item.received_at.astimezone(tz).isoformat(),
        "unit": item.unit_code,
        "unit_name": unit.short_name if unit else item.unit_code,
        "title": item.title,
        "category": item.category,
        "state": str(item.state),
        "state_label": label(ITEM_STATE_LABELS, item.state),
        "body_chars": item.body_chars,
        "has_review_line": item.has_review_line,
        "reviewer": item.reviewer,
        "signer": item.signer,
        "warnings": item.warning_list,
        "deadline_at": item.deadline_at.astimezone(tz).isoformat() if item.deadline_at else None,
        "deadline_rule": item.deadline_rule,
        "verdict": str(verdict(item, now)) if now is not None else None,
    }
