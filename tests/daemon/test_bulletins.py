"""Bulletins: every figure against a table worked out by hand, the rendered files, the mail and sending once."""

from __future__ import annotations

import argparse
import io
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, date, datetime
from decimal import Decimal
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from zoneinfo import ZoneInfo

import docx
import openpyxl
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from daemon import cli_report
from daemon.app import App, build_app
from daemon.bulletin_render import build_bulletin_mail, render_chart, render_docx, render_html, render_xlsx
from daemon.bulletins import (
    BulletinFigures,
    Figures,
    UnitRow,
    compute_bulletin,
    due_bulletins,
    parse_period,
    send_bulletin,
)
from daemon.clock import FrozenClock
from daemon.config import Settings
from daemon.db import upgrade_database
from daemon.errors import ConfigError
from daemon.models import (
    Adoption,
    Bulletin,
    Commission,
    CommissionState,
    CommissionUnit,
    Item,
    ItemEvent,
    ItemState,
    Message,
    MessageState,
    OutboxMail,
)
from daemon.targets import Targets, UnitTarget, targets_from_dict
from tests.daemon.conftest import WriteConfig

SHANGHAI = ZoneInfo("Asia/Shanghai")
# Tuesday 1 December 2026, 09:30 in Asia/Shanghai: the first working day after November.
DECEMBER_1_0930 = datetime(2026, 12, 1, 9, 30, tzinfo=SHANGHAI)
OFFICE = "xxb@tourism.example.gov.cn"
LEADER = "leader@tourism.example.gov.cn"
EXTRA = "kaohe@tourism.example.gov.cn"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def local(year: int, month: int, day: int, hour: int = 10, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=SHANGHAI)


@pytest.fixture
def app(settings: Settings) -> Iterator[App]:
    application = build_app(settings, clock=FrozenClock(DECEMBER_1_0930.astimezone(UTC)))
    upgrade_database(application.engine)
    try:
        yield application
    finally:
        application.close()


class Builder:
    """Writes items, adoptions and commissions straight into the database."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.seq = 0
        message = Message(
            account="default", folder="INBOX", uidvalidity=1, uid=1, sha256="0" * 64, content_sha256="0" * 64,
            size=1, fetched_at=DECEMBER_1_0930, state=MessageState.REGISTERED,
        )  # fmt: skip
        session.add(message)
        session.flush()
        self.message_id = message.id

    def item(
        self,
        unit: str,
        received: datetime,
        *,
        submitted: datetime | None = None,
        state: ItemState = ItemState.REGISTERED,
        same_as: Item | None = None,
    ) -> Item:
        self.seq += 1
        item = Item(
            serial=f"2026-{self.seq:04d}", year=2026, seq=self.seq, message_db_id=self.message_id, unit_code=unit,
            title=f"信息{self.seq}", category="工作动态", source="body", body_text="正文", body_chars=2,
            has_review_line=True, received_at=received, state=state, submitted_at=submitted,
            same_item_as_id=same_as.id if same_as else None,
        )  # fmt: skip
        self.session.add(item)
        self.session.flush()
        return item

    def adopt(self, item: Item, day: date, points: str, *, revoked: bool = False) -> None:
        event = ItemEvent(item_id=item.id, at=DECEMBER_1_0930, actor=OFFICE, new_state="adopted")
        self.session.add(event)
        self.session.flush()
        self.session.add(
            Adoption(
                item_id=item.id,
                event_id=event.id,
                adopted_on=day,
                outlet="省委办公厅",
                points=Decimal(points),
                actor=OFFICE,
                revoked_at=DECEMBER_1_0930 if revoked else None,
            )  # fmt: skip
        )

    def commission(self, deadline: datetime, answers: dict[str, datetime | None], *, cancelled: bool = False) -> None:
        self.seq += 1
        commission = Commission(
            code=f"约稿2026-{self.seq:03d}", year=2026, seq=self.seq, topic="假日旅游", deadline_at=deadline,
            state=CommissionState.CANCELLED if cancelled else CommissionState.OPEN, created_at=DECEMBER_1_0930,
            created_by=OFFICE,
        )  # fmt: skip
        commission.units = [CommissionUnit(unit_code=code, answered_at=at) for code, at in answers.items()]
        self.session.add(commission)
        self.session.flush()


def build_data(session: Session) -> None:
    """Write the items behind HAND_MONTHLY; the comments say why each one counts or not."""
    b = Builder(session)

    # cd: A1 received, submitted and adopted twice in November (5 + 3 points).
    a1 = b.item("cd", local(2026, 11, 3), submitted=local(2026, 11, 4), state=ItemState.ADOPTED)
    b.adopt(a1, date(2026, 11, 10), "5")
    b.adopt(a1, date(2026, 11, 20), "3")
    # A2 received and submitted in October, adopted in October (4) and again in November (2).
    a2 = b.item("cd", local(2026, 10, 12), submitted=local(2026, 10, 13), state=ItemState.ADOPTED)
    b.adopt(a2, date(2026, 10, 20), "4")
    b.adopt(a2, date(2026, 11, 2), "2")
    # A copy of A1 from another mail, and a superseded item: neither counts.
    b.item("cd", local(2026, 11, 3, 11), same_as=a1)
    b.item("cd", local(2026, 11, 5), state=ItemState.SUPERSEDED)
    # 23:30 on 30 November in Shanghai is still November (15:30 UTC); 00:10 on 1 December is not.
    b.item("cd", local(2026, 11, 30, 23, 30))
    b.item("cd", local(2026, 12, 1, 0, 10))

    # lz: B1 received on 31 October at 23:30 local, submitted in November, one adoption revoked.
    b1 = b.item("lz", local(2026, 10, 31, 23, 30), submitted=local(2026, 11, 1, 8), state=ItemState.ADOPTED)
    b.adopt(b1, date(2026, 11, 15), "6", revoked=True)
    b.adopt(b1, date(2026, 11, 16), "0.5")
    b2 = b.item("lz", local(2026, 3, 1), submitted=local(2026, 3, 2), state=ItemState.ADOPTED)
    b.adopt(b2, date(2026, 3, 10), "10")
    # B3 received in 2025: submitted and adopted in 2026, so only those count this year.
    b3 = b.item("lz", local(2025, 12, 31), submitted=local(2026, 1, 4), state=ItemState.ADOPTED)
    b.adopt(b3, date(2026, 1, 10), "2")

    # ls: one item submitted in November; a superseded one whose adoption does not count.
    b.item("ls", local(2026, 11, 10), submitted=local(2026, 11, 11), state=ItemState.SUBMITTED)
    c2 = b.item("ls", local(2026, 11, 9), state=ItemState.SUPERSEDED)
    b.adopt(c2, date(2026, 11, 12), "5")

    # Commissions: deadline 20 November 17:30, cd on time, ls late, cyc never.
    b.commission(local(2026, 11, 20, 17, 30), {"cd": local(2026, 11, 19), "ls": local(2026, 11, 21), "cyc": None})
    # The deadline is still ahead, so nothing is missed yet; a cancelled one never counts.
    b.commission(local(2026, 12, 5, 17, 30), {"cd": None})
    b.commission(local(2026, 9, 10, 17, 30), {"cyc": None}, cancelled=True)
    # June: lz answered on time, which counts in the year to date only.
    b.commission(local(2026, 6, 10, 17, 30), {"lz": local(2026, 6, 9)})
    session.commit()


def fig(received: int, submitted: int, adopted: int, points: str, answered: int = 0, missed: int = 0) -> Figures:
    return Figures(received, submitted, adopted, Decimal(points), answered, missed)


ZERO = fig(0, 0, 0, "0")
# unit: (rank, November, 1 January to 30 November)
HAND_MONTHLY = {
    "cd": (1, fig(2, 1, 2, "10", answered=1), fig(3, 2, 2, "14", answered=1)),
    "lz": (2, fig(0, 1, 1, "0.5"), fig(2, 3, 3, "12.5", answered=1)),
    "ls": (3, fig(1, 1, 0, "0", missed=1), fig(1, 1, 0, "0", missed=1)),
    "cyc": (4, fig(0, 0, 0, "0", missed=1), fig(0, 0, 0, "0", missed=1)),
}
HAND_TOTAL_NOVEMBER = fig(3, 3, 3, "10.5", answered=1, missed=2)
HAND_TOTAL_YEAR = fig(6, 6, 5, "26.5", answered=2, missed=2)
TARGETS = {"targets": [{"year": 2026, "unit": "cd", "submitted": 10, "adopted": 4, "points": 28}]}
TARGETS["targets"].append({"year": 2026, "unit": "泸州市文旅局", "points": 25})


@pytest.fixture
def targets(app: App) -> Targets:
    return targets_from_dict(TARGETS, app.context.units)


@pytest.fixture
def november(app: App, targets: Targets) -> BulletinFigures:
    with app.session_factory() as session:
        build_data(session)
        return compute_bulletin(session, app.context, "monthly", "2026-11", targets=targets)


def row_of(figures: BulletinFigures, code: str) -> UnitRow:
    return next(row for row in figures.rows if row.unit_code == code)


@pytest.mark.parametrize("code", sorted(HAND_MONTHLY))
def test_monthly_figures_match_hand_table(november: BulletinFigures, code: str) -> None:
    rank, period, year_to_date = HAND_MONTHLY[code]
    row = row_of(november, code)
    assert row.period == period
    assert row.year_to_date == year_to_date
    assert row.rank == rank


def test_monthly_other_units_are_zero_and_tied(november: BulletinFigures, app: App) -> None:
    others = [row for row in november.rows if row.unit_code not in HAND_MONTHLY]
    assert len(november.rows) == len(app.context.units)
    assert len(others) == len(app.context.units) - 4
    assert all(row.period == ZERO and row.year_to_date == ZERO for row in others)
    assert {row.rank for row in others} == {4}
    assert [row.unit_code for row in november.rows[:3]] == ["cd", "lz", "ls"]


def test_monthly_totals_and_completion(november: BulletinFigures) -> None:
    assert november.total_period == HAND_TOTAL_NOVEMBER
    assert november.total_year_to_date == HAND_TOTAL_YEAR
    cd, lz = row_of(november, "cd"), row_of(november, "lz")
    assert cd.target == UnitTarget("cd", 2026, submitted=10, adopted=4, points=Decimal(28))
    assert (cd.completion.submitted, cd.completion.adopted, cd.completion.points) == (
        Decimal("0.2"), Decimal("0.5"), Decimal("0.5"),
    )  # fmt: skip
    assert (lz.completion.submitted, lz.completion.adopted, lz.completion.points) == (None, None, Decimal("0.5"))
    assert row_of(november, "ls").target is None
    assert november.total_target.points == Decimal(53)
    assert november.total_completion.points == Decimal("0.5")
    # Only cd has submitted and adopted targets, so only cd's figures count toward those rates.
    assert november.total_completion.submitted == Decimal("0.2")
    assert november.total_completion.adopted == Decimal("0.5")
    assert november.title == "2026年11月政务信息工作通报"


def test_yearly_figures_cover_the_year(app: App, targets: Targets) -> None:
    with app.session_factory() as session:
        build_data(session)
        year = compute_bulletin(session, app.context, "yearly", "2026", targets=targets)
    cd = row_of(year, "cd")
    # December's 00:10 item is in 2026 too; the December deadline has not passed yet.
    assert cd.period == fig(4, 2, 2, "14", answered=1)
    assert cd.year_to_date == cd.period
    assert row_of(year, "lz").period == fig(2, 3, 3, "12.5", answered=1)
    assert year.title == "2026年度政务信息工作通报"


def test_period_rejects_bad_text() -> None:
    assert parse_period("monthly", "2026-02") == (2026, date(2026, 2, 1), date(2026, 3, 1))
    assert parse_period("monthly", "2026-12") == (2026, date(2026, 12, 1), date(2027, 1, 1))
    for kind, period in (("monthly", "2026-13"), ("monthly", "2026-1"), ("yearly", "26"), ("weekly", "2026")):
        with pytest.raises(ValueError, match="无效"):
            parse_period(kind, period)


def test_docx_contains_figures(november: BulletinFigures, app: App) -> None:
    data = render_docx(app.context, november, chart=render_chart(november))
    document = docx.Document(io.BytesIO(data))
    texts = [p.text for p in document.paragraphs]
    assert texts[0] == "2026年11月政务信息工作通报"
    assert document.styles["Title"].font.name == "方正小标宋简体"
    assert document.styles["Normal"].font.name == "仿宋_GB2312"
    east_asia = document.styles["Normal"].element.rPr.rFonts.get(docx.oxml.ns.qn("w:eastAsia"))
    assert east_asia == "仿宋_GB2312"
    section = document.sections[0]
    assert (round(section.top_margin.mm), round(section.bottom_margin.mm)) == (37, 35)
    assert (round(section.left_margin.mm), round(section.right_margin.mm)) == (28, 26)
    table = document.tables[0]
    cd = next(row for row in table.rows if row.cells[1].text == "成都市文旅局")
    assert [cell.text for cell in cd.cells[:10]] == ["1", "成都市文旅局", "2", "1", "2", "10", "3", "2", "2", "14"]
    totals = table.rows[-1].cells
    assert totals[1].text == "合计"
    assert totals[5].text == "10.5"
    assert len(document.inline_shapes) == 1


def test_xlsx_contains_figures(november: BulletinFigures, app: App) -> None:
    workbook = openpyxl.load_workbook(io.BytesIO(render_xlsx(app.context, november)))
    sheet = workbook["通报"]
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0][0] == "2026年11月政务信息工作通报"
    header = rows[1]
    lz = next(row for row in rows if row[1] == "lz")
    values = dict(zip(header, lz, strict=True))
    assert values["排名"] == 2
    assert values["本月报送"] == 1
    assert values["本月计分"] == 0.5
    assert values["年初至今采用"] == 3
    assert values["年初至今计分"] == 12.5
    assert values["全年目标计分"] == 25
    assert values["目标完成率计分"] == 0.5
    assert values["全年目标报送"] is None
    cyc = dict(zip(header, next(row for row in rows if row[1] == "cyc"), strict=True))
    assert cyc["本月约稿逾期"] == 1


def test_chart_renders_png(november: BulletinFigures) -> None:
    png = render_chart(november)
    assert png.startswith(PNG_SIGNATURE)
    assert len(png) > 1000


# rank, unit, November (4), year to date (4), targets (3), completion (3), commissions (2)
CD_TEXT_CELLS = ["1", "成都市文旅局", "2", "1", "2", "10", "3", "2", "2", "14", "10", "4", "28"]
CD_TEXT_CELLS += ["20.0%", "50.0%", "50.0%", "1", "0"]


def table_cells(text: str, unit: str) -> list[str]:
    """Return the cells of the text table's line for ``unit``."""
    return next(line.split() for line in text.splitlines() if unit in line.split())


def parts_of(mail: EmailMessage) -> dict[str, list[EmailMessage]]:
    found: dict[str, list[EmailMessage]] = {}
    for part in mail.walk():
        found.setdefault(part.get_content_type(), []).append(part)  # type: ignore[arg-type]
    return found


def test_mail_has_text_html_and_inline_chart(november: BulletinFigures, app: App) -> None:
    mail = build_bulletin_mail(app.context, november, to=[OFFICE], key="bulletin:monthly:2026-11")
    parsed = message_from_bytes(mail.as_bytes(policy=policy.SMTP), policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    parts = parts_of(parsed)
    text = parts["text/plain"][0].get_content()
    html = parts["text/html"][0].get_content()
    image = parts["image/png"][0]
    assert "2026年11月政务信息工作通报" in text
    assert table_cells(text, "成都市文旅局") == CD_TEXT_CELLS
    assert f'src="cid:{image["Content-ID"].strip("<>")}"' in html
    assert image.get_payload(decode=True).startswith(PNG_SIGNATURE)
    assert "multipart/related" in parts
    assert "multipart/alternative" in parts
    names = sorted(part.get_filename() for part in parsed.iter_attachments())
    assert names == ["2026年11月政务信息工作通报.docx", "2026年11月政务信息工作通报.xlsx"]
    assert parsed["Auto-Submitted"] == "auto-generated"
    assert parsed["Message-ID"].startswith("<zwxx.bulletin.")
    assert parsed["To"] == OFFICE


def test_html_escapes_unit_names(app: App) -> None:
    units = app.context.units.units
    original = units["cd"]
    units["cd"] = replace(original, aliases=("<b>成都</b>",))
    try:
        with app.session_factory() as session:
            figures = compute_bulletin(session, app.context, "monthly", "2026-11", targets=None)
        html = render_html(app.context, figures)
    finally:
        units["cd"] = original
    assert "&lt;b&gt;成都&lt;/b&gt;" in html
    assert "<b>成都</b>" not in html


@pytest.fixture
def bulletin_settings(write_config: WriteConfig) -> Settings:
    from daemon.config import load_settings

    return load_settings(
        write_config(extra=f'[bulletins]\nextra_recipients = ["{EXTRA}"]\nto_units = true\nto_leaders = true\n')
    )


def test_send_queues_one_mail_once(bulletin_settings: Settings) -> None:
    application = build_app(bulletin_settings, clock=FrozenClock(DECEMBER_1_0930.astimezone(UTC)))
    upgrade_database(application.engine)
    try:
        with application.session_factory() as session:
            build_data(session)
            first = send_bulletin(session, application.context, "monthly", "2026-11")
            session.commit()
            again = send_bulletin(session, application.context, "monthly", "2026-11")
            session.commit()
            outbox = session.scalars(select(OutboxMail)).all()
            bulletins = session.scalar(select(func.count(Bulletin.id)))
    finally:
        application.close()
    assert first is not None
    assert again is None
    assert bulletins == 1
    assert len(outbox) == 1
    mail = outbox[0]
    assert mail.key == "bulletin:monthly:2026-11"
    assert first.outbox_id == mail.id
    recipients = mail.recipient_list
    assert recipients[:3] == [OFFICE, EXTRA, LEADER]
    first_addresses = [unit.addresses[0] for unit in application.context.units.units.values() if unit.addresses]
    assert recipients[3:] == first_addresses
    parsed = message_from_bytes(mail.raw, policy=policy.default)
    assert parsed["To"] == f"{OFFICE}, {EXTRA}"
    assert "Bcc" not in parsed


def test_due_on_first_working_day_only(app: App) -> None:
    ctx = app.context
    # 1 December 2026 is a Tuesday: due from 09:00, not before, and still due later in the month.
    assert due_bulletins(ctx, local(2026, 12, 1, 8, 59)) == []
    assert due_bulletins(ctx, local(2026, 12, 1, 9, 0)) == [("monthly", "2026-11")]
    assert due_bulletins(ctx, local(2026, 12, 15)) == [("monthly", "2026-11")]
    # 1 January 2026 is New Year's Day, so the bulletins wait for the first working day after it.
    assert due_bulletins(ctx, local(2026, 1, 1, 10)) == []
    first = ctx.calendar.next_working_day(date(2026, 1, 1))
    assert due_bulletins(ctx, local(first.year, first.month, first.day, 8, 0)) == []
    due = due_bulletins(ctx, local(first.year, first.month, first.day, 9, 0))
    assert due == [("monthly", "2025-12"), ("yearly", "2025")]


def test_targets_file_errors_reported_together(app: App) -> None:
    data = {
        "targets": [
            {"year": 2026, "unit": "不存在的单位", "submitted": 3},
            {"year": "2026", "unit": "cd", "adopted": -1},
            {"year": 2026, "unit": "cd", "points": 1.005, "extra": 1},
            {"year": 2026, "unit": "lz"},
            {"year": 2026, "unit": "泸州市文旅局", "submitted": 5},
            {"year": 2026, "unit": "lz", "submitted": 6},
        ],
        "typo": 1,
    }
    with pytest.raises(ConfigError) as caught:
        targets_from_dict(data, app.context.units, source="targets.toml")
    problems = caught.value.problems
    assert any("未知的键 typo" in p for p in problems)
    assert any("没有单位 '不存在的单位'" in p for p in problems)
    assert any("year 应为" in p for p in problems)
    assert any("adopted 应为不小于 0 的整数" in p for p in problems)
    assert any("最多保留 2 位小数" in p for p in problems)
    assert any("未知的键 extra" in p for p in problems)
    assert any("至少要写" in p for p in problems)
    assert any("第 6 个" in p and "已在前面写过" in p for p in problems)
    assert len(problems) == 8


def test_example_targets_file_loads() -> None:
    from daemon.targets import load_targets
    from daemon.units import UnitDirectory

    examples = Path(__file__).resolve().parents[2] / "examples"
    targets = load_targets(examples / "targets.toml", UnitDirectory.load(examples / "units.toml"))
    assert targets.for_year(2026)["ab"].points == Decimal("18.5")
    assert targets.for_year(2027) == {}


def test_report_command_writes_and_sends(
    november: BulletinFigures, write_config: WriteConfig, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    targets_file = tmp_path / "targets.toml"
    targets_file.write_text(
        '[[targets]]\nyear = 2026\nunit = "cd"\nsubmitted = 10\nadopted = 4\npoints = 28\n', encoding="utf-8"
    )
    config = write_config(name="report.toml", extra=f'[targets]\nfile = "{targets_file.as_posix()}"\n')
    parser = argparse.ArgumentParser()
    parser.add_argument("--config", type=Path)
    parser.add_argument("--verbose", action="store_true")
    cli_report.add_commands(parser.add_subparsers(dest="command", required=True))
    out = tmp_path / "out"
    args = parser.parse_args(["--config", str(config), "report", "monthly", "2026-11", "--out", str(out)])
    assert args.func(args) == 0
    printed = capsys.readouterr().out
    assert "2026年11月政务信息工作通报" in printed
    assert table_cells(printed, "成都市文旅局") == CD_TEXT_CELLS
    suffixes = sorted(path.suffix for path in out.iterdir())
    assert suffixes == [".docx", ".html", ".png", ".xlsx"]
    send = parser.parse_args(["--config", str(config), "report", "monthly", "2026-11", "--send"])
    assert send.func(send) == 0
    assert "已放入发件箱" in capsys.readouterr().out
    assert send.func(send) == 0
    assert "此前已发送，本次未重复发送" in capsys.readouterr().out
