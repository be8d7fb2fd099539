"""`zwxx export YEAR`: one tar.gz with a year's register and every raw mail of that year, for safekeeping.

The archive contains CSV files (UTF-8 with a byte order mark, so that Excel opens them in Chinese),
the raw mails under ``mail/`` as they were fetched, and ``SHA256SUMS`` for checking the copy.
Mails are streamed from the content-addressed archive one at a time, so memory stays small.
"""

from __future__ import annotations

import csv
import hashlib
import io
import logging
import tarfile
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from daemon.app import App
from daemon.links import SYSTEM_ACTOR
from daemon.models import Adoption, Item, ItemEvent, Message
from daemon.views import COMMAND_LABELS, ITEM_STATE_LABELS, MESSAGE_STATE_LABELS, SYSTEM_ACTOR_LABEL, label

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ExportSummary:
    path: Path
    items: int
    messages: int
    missing: int  # raw mails not found in the archive (listed in MISSING.txt)


def _local(moment: datetime | None, tz: ZoneInfo) -> str:
    return moment.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S") if moment else ""


def _csv(header: Sequence[str], rows: Iterable[Sequence[object]]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    writer.writerows(rows)
    return ("\ufeff" + buffer.getvalue()).encode("utf-8")


def _year_bounds(year: int, tz: ZoneInfo) -> tuple[datetime, datetime]:
    return datetime(year, 1, 1, tzinfo=tz), datetime(year + 1, 1, 1, tzinfo=tz)


def _register_rows(session: Session, app: App, year: int) -> Iterator[list[object]]:
    tz = app.settings.tz
    for item in session.scalars(select(Item).where(Item.year == year).order_by(Item.seq)):
        unit = app.context.units.get(item.unit_code)
        points = sum((a.points for a in item.adoptions if a.revoked_at is None), start=0)
        yield [
            item.serial,
            _local(item.received_at, tz),
            unit.name if unit else item.unit_code,
            item.title,
            item.category,
            item.body_chars,
            item.reviewer or "",
            item.signer or "",
            label(ITEM_STATE_LABELS, item.state),
            _local(item.deadline_at, tz),
            _local(item.submitted_at, tz),
            sum(1 for a in item.adoptions if a.revoked_at is None),
            points,
            item.message.message_id or "",
        ]


def export_year(app: App, year: int, out_dir: Path) -> ExportSummary:
    """Write ``zwxx-<year>.tar.gz`` into ``out_dir`` and return what it holds."""
    tz = app.settings.tz
    start, end = _year_bounds(year, tz)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"zwxx-{year}.tar.gz"
    partial = path.with_suffix(".partial")
    sums: list[str] = []
    missing: list[str] = []
    items = messages = 0

    def add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
        info = tarfile.TarInfo(f"zwxx-{year}/{name}")
        info.size = len(data)
        info.mtime = int(time.time())
        tar.addfile(info, io.BytesIO(data))
        sums.append(f"{hashlib.sha256(data).hexdigest()}  {name}")

    with app.session_factory() as session, tarfile.open(partial, "w:gz") as tar:
        rows = list(_register_rows(session, app, year))
        items = len(rows)
        header = ["编号", "收到时间", "报送单位", "标题", "类别", "字数", "审核", "签发", "状态"]
        header += ["报送时限", "报送两办时间", "采用次数", "采用得分", "Message-ID"]
        add(tar, "登记簿.csv", _csv(header, rows))

        events = session.execute(
            select(Item.serial, ItemEvent).join(Item, Item.id == ItemEvent.item_id).where(Item.year == year)
            .order_by(ItemEvent.id)
        )  # fmt: skip
        add(
            tar,
            "办理记录.csv",
            _csv(
                ["编号", "时间", "操作人", "操作", "原状态", "新状态", "说明", "来信 Message-ID"],
                (
                    [
                        serial,
                        _local(e.at, tz),
                        SYSTEM_ACTOR_LABEL if e.actor == SYSTEM_ACTOR else e.actor,
                        label(COMMAND_LABELS, e.command) if e.command else "",
                        label(ITEM_STATE_LABELS, e.old_state) if e.old_state else "",
                        label(ITEM_STATE_LABELS, e.new_state),
                        e.comment or "",
                        e.via_message_id or "",
                    ]
                    for serial, e in events
                ),  # fmt: skip
            ),
        )
        adoptions = session.execute(
            select(Item.serial, Adoption).join(Item, Item.id == Adoption.item_id).where(Item.year == year)
            .order_by(Adoption.id)
        )  # fmt: skip
        add(
            tar,
            "采用记录.csv",
            _csv(
                ["编号", "采用日期", "采用单位", "刊物", "期号", "批示", "得分", "计分说明", "是否撤销"],
                (
                    [
                        serial,
                        a.adopted_on.isoformat(),
                        a.outlet,
                        a.publication,
                        a.issue,
                        a.instruction_level if a.instructed else "",
                        a.points,
                        a.explanation,
                        "已撤销" if a.revoked_at else "",
                    ]
                    for serial, a in adoptions
                ),  # fmt: skip
            ),
        )

        query = (
            select(Message)
            .where(Message.fetched_at >= start, Message.fetched_at < end)
            .order_by(Message.id)
            .execution_options(yield_per=200)
        )
        message_rows = []
        for message in session.scalars(query):
            messages += 1
            name = f"mail/{message.id:06d}-uid{message.uid}.eml"
            message_rows.append(
                [name, _local(message.fetched_at, tz), message.sender or "", message.subject or "",
                 label(MESSAGE_STATE_LABELS, message.state), message.reason or "", message.message_id or ""]
            )  # fmt: skip
            try:
                raw = app.context.archive.get(message.sha256)
            except Exception:  # noqa: BLE001 - a missing file is listed, and the export goes on
                missing.append(f"{name} {message.sha256}")
                log.warning(
                    "export %d: raw mail of message %d (%s) not found in the archive", year, message.id, message.sha256
                )
                continue
            add(tar, name, raw)
        add(
            tar,
            "邮件.csv",
            _csv(["文件", "收取时间", "发件人", "标题", "处理结果", "原因", "Message-ID"], message_rows),
        )
        if missing:
            add(tar, "MISSING.txt", ("\n".join(missing) + "\n").encode())
        add(tar, "SHA256SUMS", ("\n".join(sums) + "\n").encode())
    partial.replace(path)
    log.info("export %d: %d items, %d messages, %d missing, written to %s", year, items, messages, len(missing), path)
    return ExportSummary(path=path, items=items, messages=messages, missing=len(missing))
