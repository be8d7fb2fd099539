"""Render a bulletin: plain text, HTML mail, bar chart (PNG), .docx in official layout and .xlsx.

The .docx follows the layout rules of GB/T 9704-2012 for official documents. The paper is A4,
with margins of 37 mm (top), 35 mm (bottom), 28 mm (left) and 26 mm (right). The title is in
方正小标宋简体 二号 (22 pt), centred, and the body in 仿宋_GB2312 三号 (16 pt). The table goes on
a landscape page because it has up to 18 columns. The fonts are named in the document's styles,
so Word uses them when they are installed on the reader's machine.
"""

from __future__ import annotations

import hashlib
import io
import logging
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from email.message import EmailMessage
from functools import lru_cache

from daemon.bulletins import MONTHLY, BulletinFigures, Completion, Figures
from daemon.context import RegisterContext
from daemon.notices import build_mail
from daemon.scoring import format_points
from daemon.targets import UnitTarget
from daemon.templating import render
from daemon.views import pad

log = logging.getLogger(__name__)

TITLE_FONT = "方正小标宋简体"
BODY_FONT = "仿宋_GB2312"
TABLE_FONT = "仿宋_GB2312"
DOCX_TYPE = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
# Families that cover Simplified Chinese, in order of preference, for the chart's labels.
CJK_FONT_FAMILIES = (
    "Noto Sans CJK SC",
    "Noto Sans SC",
    "Source Han Sans SC",
    "WenQuanYi Zen Hei",
    "WenQuanYi Micro Hei",
    "Droid Sans Fallback",
    "AR PL UMing CN",
    "SimHei",
    "Microsoft YaHei",
    "SimSun",
)
NO_VALUE = "—"


@dataclass(frozen=True)
class Column:
    """One column of the bulletin table: its group and header, and how to read a row's value."""

    group: str
    header: str
    value: Callable[[Figures, Figures, UnitTarget | None, Completion], int | Decimal | None]
    kind: str = "count"  # count, points or ratio


def table_columns(kind: str) -> list[Column]:
    """Return the figure columns of a bulletin of ``kind``; rank and unit come before them."""
    period_group = "本月" if kind == MONTHLY else "全年"
    columns = [
        Column(period_group, "收到", lambda p, y, t, c: p.received),
        Column(period_group, "报送", lambda p, y, t, c: p.submitted),
        Column(period_group, "采用", lambda p, y, t, c: p.adopted),
        Column(period_group, "计分", lambda p, y, t, c: p.points, "points"),
    ]
    if kind == MONTHLY:
        columns += [
            Column("年初至今", "收到", lambda p, y, t, c: y.received),
            Column("年初至今", "报送", lambda p, y, t, c: y.submitted),
            Column("年初至今", "采用", lambda p, y, t, c: y.adopted),
            Column("年初至今", "计分", lambda p, y, t, c: y.points, "points"),
        ]
    commissions = "本月约稿" if kind == MONTHLY else "全年约稿"
    columns += [
        Column("全年目标", "报送", lambda p, y, t, c: t.submitted if t else None),
        Column("全年目标", "采用", lambda p, y, t, c: t.adopted if t else None),
        Column("全年目标", "计分", lambda p, y, t, c: t.points if t else None, "points"),
        Column("目标完成率", "报送", lambda p, y, t, c: c.submitted, "ratio"),
        Column("目标完成率", "采用", lambda p, y, t, c: c.adopted, "ratio"),
        Column("目标完成率", "计分", lambda p, y, t, c: c.points, "ratio"),
        Column(commissions, "按时", lambda p, y, t, c: p.commissions_answered),
        Column(commissions, "逾期", lambda p, y, t, c: p.commissions_missed),
    ]
    return columns


def format_value(value: int | Decimal | None, kind: str) -> str:
    """Format one table value as the office writes it: 12, 7.5, 83.3%, or — for none."""
    if value is None:
        return NO_VALUE
    if kind == "ratio":
        return f"{Decimal(value) * 100:.1f}%"
    if kind == "points":
        return format_points(Decimal(value))
    return str(value)


@dataclass(frozen=True)
class TableLine:
    """One line of the rendered table, every cell already formatted."""

    rank: str
    unit: str
    cells: tuple[str, ...]


def table_lines(figures: BulletinFigures) -> tuple[list[Column], list[TableLine], TableLine]:
    """Return the columns, one formatted line per unit and the totals line."""
    columns = table_columns(figures.kind)

    def cells(period: Figures, ytd: Figures, target: UnitTarget | None, completion: Completion) -> tuple[str, ...]:
        return tuple(format_value(col.value(period, ytd, target, completion), col.kind) for col in columns)

    lines = [
        TableLine(str(row.rank), row.unit_name, cells(row.period, row.year_to_date, row.target, row.completion))
        for row in figures.rows
    ]
    totals = TableLine(
        "",
        "合计",
        cells(figures.total_period, figures.total_year_to_date, figures.total_target, figures.total_completion),
    )
    return columns, lines, totals


def _column_groups(columns: Sequence[Column]) -> list[tuple[str, int]]:
    groups: list[tuple[str, int]] = []
    for column in columns:
        if groups and groups[-1][0] == column.group:
            groups[-1] = (column.group, groups[-1][1] + 1)
        else:
            groups.append((column.group, 1))
    return groups


def summary_sentences(figures: BulletinFigures) -> list[str]:
    """Return the body paragraphs that sum the bulletin up in words."""
    period_name = f"{figures.start.month}月" if figures.kind == MONTHLY else "全年"
    total = figures.total_period
    paragraphs = [
        f"{period_name}共收到各单位报送的政务信息 {total.received} 条，报送省委、省政府两办 {total.submitted} 条，"
        f"被采用 {total.adopted} 条，计 {format_points(total.points)} 分。"
    ]
    if figures.kind == MONTHLY:
        ytd = figures.total_year_to_date
        months = "1月" if figures.start.month == 1 else f"1月至{figures.start.month}月"
        paragraphs.append(
            f"{months}累计收到 {ytd.received} 条，报送两办 {ytd.submitted} 条，"
            f"被采用 {ytd.adopted} 条，计 {format_points(ytd.points)} 分。"
        )
    leaders = [row for row in figures.rows if row.rank <= 3 and row.year_to_date.points > 0]
    if leaders:
        names = "、".join(f"{row.unit_name}（{format_points(row.year_to_date.points)} 分）" for row in leaders)
        span = "年初至今" if figures.kind == MONTHLY else "全年"
        paragraphs.append(f"按{span}采用计分排名，前{len(leaders)}名为：{names}。")
    missed = [row for row in figures.rows if row.period.commissions_missed]
    if missed:
        names = "、".join(f"{row.unit_name}（{row.period.commissions_missed} 篇）" for row in missed)
        paragraphs.append(f"{period_name}未按时报送约稿的单位：{names}。请上述单位加强约稿信息报送。")
    return paragraphs


def template_context(ctx: RegisterContext, figures: BulletinFigures, *, chart_cid: str = "") -> dict[str, object]:
    """Return the variables the bulletin templates use."""
    columns, lines, totals = table_lines(figures)
    return {
        "title": figures.title,
        "kind": figures.kind,
        "paragraphs": summary_sentences(figures),
        "groups": _column_groups(columns),
        "columns": columns,
        "lines": lines,
        "totals": totals,
        "office_name": ctx.settings.office.name,
        "date": _chinese_date(figures, ctx),
        "chart_cid": chart_cid,
    }


def _chinese_date(figures: BulletinFigures, ctx: RegisterContext) -> str:
    day = figures.computed_at.astimezone(ctx.settings.tz).date()
    return f"{day.year}年{day.month}月{day.day}日"


def aligned_table(figures: BulletinFigures) -> list[str]:
    """Return the table as lines of text padded to columns, counting a CJK character as two columns."""
    columns, lines, totals = table_lines(figures)
    header = ["排名", "单位", *[f"{column.group}{column.header}" for column in columns]]
    body = [[line.rank, line.unit, *line.cells] for line in [*lines, totals]]
    widths = [max(_width(row[index]) for row in [header, *body]) for index in range(len(header))]
    return [
        "  ".join(pad(cell, width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in [header, *body]
    ]


def _width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def render_text(ctx: RegisterContext, figures: BulletinFigures) -> str:
    """Render the plain-text bulletin (the mail's text part, and what the CLI prints)."""
    context = template_context(ctx, figures)
    return render(f"bulletin/{figures.kind}.txt.j2", table_text=aligned_table(figures), **context)


def render_html(ctx: RegisterContext, figures: BulletinFigures, *, chart_cid: str = "") -> str:
    """Render the HTML bulletin; ``chart_cid`` (without angle brackets) embeds the chart when given."""
    return render(f"bulletin/{figures.kind}.html.j2", **template_context(ctx, figures, chart_cid=chart_cid))


@lru_cache(maxsize=1)
def find_cjk_font() -> str | None:
    """Return the first installed font family of CJK_FONT_FAMILIES that matplotlib can use, or None."""
    from matplotlib import font_manager

    installed = {font.name for font in font_manager.fontManager.ttflist}
    return next((family for family in CJK_FONT_FAMILIES if family in installed), None)


def render_chart(figures: BulletinFigures) -> bytes:
    """Draw the units' year-to-date submitted, adopted and points as grouped horizontal bars; return PNG.

    Without a Chinese font the labels would render as empty boxes, so the chart then names the
    units by code and the series in English, and a warning is logged.
    """
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    # NOTE: the tests run where no CJK font is installed, so only the fallback branch is tested there.
    family = find_cjk_font()
    if family is None:
        log.warning("no CJK font found for the bulletin chart; labelling units by code (install fonts-noto-cjk)")
    rows = list(reversed(figures.rows))  # the first rank at the top
    names = [row.unit_name if family else row.unit_code for row in rows]
    series: list[tuple[str, list[float]]] = [
        ("报送" if family else "submitted", [row.year_to_date.submitted for row in rows]),
        ("采用" if family else "adopted", [row.year_to_date.adopted for row in rows]),
        ("计分" if family else "points", [float(row.year_to_date.points) for row in rows]),
    ]
    title = (f"{figures.title}（年初至今）" if figures.kind == MONTHLY else figures.title) if family else figures.period

    height = max(3.0, 0.32 * len(rows) + 1.2)
    chart = Figure(figsize=(8, height), dpi=120)
    axes = chart.add_subplot()
    bar = 0.27
    for index, (label, values) in enumerate(series):
        positions = [position + (index - 1) * bar for position in range(len(rows))]
        axes.barh(positions, values, height=bar, label=label)
    axes.set_yticks(range(len(rows)), names)
    axes.set_title(title)
    legend = axes.legend(loc="lower right")
    axes.grid(axis="x", alpha=0.3)
    if family:
        for text in [axes.title, *axes.get_yticklabels(), *legend.get_texts()]:
            text.set_fontfamily(family)
    chart.tight_layout()
    buffer = io.BytesIO()
    chart.savefig(buffer, format="png")
    return buffer.getvalue()


def build_bulletin_mail(
    ctx: RegisterContext,
    figures: BulletinFigures,
    *,
    to: Sequence[str],
    key: str,
    chart: bytes | None = None,
    docx: bytes | None = None,
    xlsx: bytes | None = None,
) -> EmailMessage:
    """Build the bulletin mail: text and HTML alternatives, the chart inline, the .docx and .xlsx attached.

    The structure is multipart/mixed containing multipart/alternative (text/plain, and
    multipart/related with text/html and the chart image/png) followed by the two attachments.
    The headers are those of every notice (daemon.notices.build_mail): a Message-ID derived from
    ``key`` and ``Auto-Submitted: auto-generated``. Documents not given are rendered here.
    """
    settings = ctx.settings
    chart = chart if chart is not None else render_chart(figures)
    domain = settings.smtp.from_address.rsplit("@", 1)[1]
    chart_cid = f"chart.{hashlib.sha256(key.encode()).hexdigest()[:16]}@{domain}"

    mail = build_mail(
        settings,
        to=to,
        subject=f"【通报】{figures.title}",
        body=render_text(ctx, figures),
        key=key,
        kind="bulletin",
        now=ctx.clock.now(),
    )
    mail.add_alternative(render_html(ctx, figures, chart_cid=chart_cid), subtype="html", charset="utf-8")
    html_part = mail.get_body(preferencelist=("html",))
    if not isinstance(html_part, EmailMessage):
        raise TypeError("the HTML alternative just added is missing")
    html_part.add_related(chart, maintype="image", subtype="png", cid=f"<{chart_cid}>", filename="chart.png")
    mail.add_attachment(
        docx if docx is not None else render_docx(ctx, figures, chart=chart),
        maintype="application",
        subtype=DOCX_TYPE.split("/")[1],
        filename=f"{figures.title}.docx",
    )
    mail.add_attachment(
        xlsx if xlsx is not None else render_xlsx(ctx, figures),
        maintype="application",
        subtype=XLSX_TYPE.split("/")[1],
        filename=f"{figures.title}.xlsx",
    )
    return mail


def _set_style_font(style: object, family: str, size_pt: float, *, bold: bool = False) -> None:
    """Name ``family`` for Latin and East Asian text of a style; python-docx sets only w:ascii itself."""
    from docx.oxml.ns import qn
    from docx.shared import Pt

    font = style.font  # type: ignore[attr-defined]
    font.name = family
    font.size = Pt(size_pt)
    font.bold = bold
    fonts = style.element.get_or_add_rPr().get_or_add_rFonts()  # type: ignore[attr-defined]
    for attribute in ("w:ascii", "w:hAnsi", "w:eastAsia", "w:cs"):
        fonts.set(qn(attribute), family)
    # Word prefers theme fonts (such as the Title style's majorEastAsia) over named ones, so drop them.
    for attribute in ("w:asciiTheme", "w:hAnsiTheme", "w:eastAsiaTheme", "w:cstheme"):
        fonts.attrib.pop(qn(attribute), None)


def _landscape_section(document: object) -> None:
    from docx.enum.section import WD_ORIENT, WD_SECTION
    from docx.shared import Mm

    section = document.add_section(WD_SECTION.NEW_PAGE)  # type: ignore[attr-defined]
    section.orientation = WD_ORIENT.LANDSCAPE
    section.page_width, section.page_height = Mm(297), Mm(210)
    # The portrait margins turned with the page: the binding edge (left, 28 mm) becomes the top.
    section.top_margin, section.bottom_margin = Mm(28), Mm(26)
    section.left_margin, section.right_margin = Mm(35), Mm(37)


def render_docx(ctx: RegisterContext, figures: BulletinFigures, *, chart: bytes | None = None) -> bytes:
    """Render the bulletin as a .docx in the layout of GB/T 9704 (see the module docstring)."""
    from docx import Document
    from docx.enum.table import WD_TABLE_ALIGNMENT
    from docx.enum.text import WD_ALIGN_PARAGRAPH, WD_LINE_SPACING
    from docx.shared import Mm, Pt

    document = Document()
    section = document.sections[0]
    section.page_width, section.page_height = Mm(210), Mm(297)
    section.top_margin, section.bottom_margin = Mm(37), Mm(35)
    section.left_margin, section.right_margin = Mm(28), Mm(26)

    normal = document.styles["Normal"]
    _set_style_font(normal, BODY_FONT, 16)
    # GB/T 9704: 22 lines of 28 characters on a page of 225 mm text height, about 28.95 pt a line.
    normal.paragraph_format.line_spacing_rule = WD_LINE_SPACING.EXACTLY
    normal.paragraph_format.line_spacing = Pt(28.95)
    normal.paragraph_format.space_before = normal.paragraph_format.space_after = Pt(0)
    title_style = document.styles["Title"]
    _set_style_font(title_style, TITLE_FONT, 22)
    title_style.font.color.rgb = None
    title_style.paragraph_format.alignment = WD_ALIGN_PARAGRAPH.CENTER
    title_style.paragraph_format.space_after = Pt(28.95)
    title_style.element.get_or_add_pPr().remove_all("w:pBdr")  # the default Title style has a rule below
    table_style = document.styles["Table Grid"]
    _set_style_font(table_style, TABLE_FONT, 9)  # 小五

    document.add_paragraph(figures.title, style="Title")
    document.add_paragraph("各市（州）文化和旅游主管部门，局机关各处室、直属各单位：")
    intro = "现将" + figures.title.removesuffix("通报") + "情况通报如下。"
    for text in [intro, *summary_sentences(figures), "各单位目标完成情况及排名见附表。"]:
        document.add_paragraph(text).paragraph_format.first_line_indent = Pt(32)
    if chart is not None:
        document.add_picture(io.BytesIO(chart), width=Mm(150))
        document.paragraphs[-1].alignment = WD_ALIGN_PARAGRAPH.CENTER
    for text in (ctx.settings.office.name, _chinese_date(figures, ctx)):
        signature = document.add_paragraph(text)
        signature.alignment = WD_ALIGN_PARAGRAPH.RIGHT
        signature.paragraph_format.right_indent = Pt(64)

    _landscape_section(document)
    document.add_paragraph("附表").runs[0].bold = True
    columns, lines, totals = table_lines(figures)
    table = document.add_table(rows=2, cols=2 + len(columns), style="Table Grid")
    table.alignment = WD_TABLE_ALIGNMENT.CENTER
    _fill_docx_header(table, columns)
    for line in [*lines, totals]:
        cells = table.add_row().cells
        for cell, text in zip(cells, (line.rank, line.unit, *line.cells), strict=True):
            cell.text = text
    # The landscape text width is 297 - 35 - 37 = 225 mm: 10 mm for the rank, 24 mm for the unit's
    # short name and the rest shared by the figures.
    widths = [Mm(10), Mm(24), *[Mm(191 / len(columns))] * len(columns)]
    for row in table.rows:
        for cell, width in zip(row.cells, widths, strict=True):
            cell.width = width
            paragraph = cell.paragraphs[0]
            paragraph.alignment = WD_ALIGN_PARAGRAPH.CENTER
            paragraph.paragraph_format.line_spacing_rule = WD_LINE_SPACING.SINGLE
            paragraph.paragraph_format.first_line_indent = Pt(0)
            for run in paragraph.runs:
                run.font.size = Pt(9)

    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def _fill_docx_header(table: object, columns: Sequence[Column]) -> None:
    """Write the two header rows: rank and unit span both, each group spans its columns."""
    top, second = table.rows[0].cells, table.rows[1].cells  # type: ignore[attr-defined]
    for index, text in enumerate(("排名", "单位")):
        merged = top[index].merge(second[index])
        merged.text = text
    position = 2
    for group, width in _column_groups(columns):
        merged = top[position].merge(top[position + width - 1]) if width > 1 else top[position]
        merged.text = group
        position += width
    for index, column in enumerate(columns, start=2):
        second[index].text = column.header


def render_xlsx(ctx: RegisterContext, figures: BulletinFigures) -> bytes:
    """Render the bulletin table as an .xlsx workbook with numbers (not text) in the figure cells."""
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font

    columns, _, _ = table_lines(figures)
    workbook = Workbook()
    sheet = workbook.active
    sheet.title = "通报"
    sheet.append([figures.title])
    sheet.cell(row=1, column=1).font = Font(bold=True, size=14)
    sheet.append(["排名", "单位代码", "单位", *[f"{column.group}{column.header}" for column in columns]])
    for cell in sheet[2]:
        cell.font = Font(bold=True)
        cell.alignment = Alignment(horizontal="center", wrap_text=True)

    def values(period: Figures, ytd: Figures, target: UnitTarget | None, completion: Completion) -> list[object]:
        raw = [column.value(period, ytd, target, completion) for column in columns]
        return [float(value) if isinstance(value, Decimal) else value for value in raw]

    for row in figures.rows:
        sheet.append(
            [row.rank, row.unit_code, row.unit_name, *values(row.period, row.year_to_date, row.target, row.completion)]
        )
    sheet.append(
        [
            "",
            "",
            "合计",
            *values(figures.total_period, figures.total_year_to_date, figures.total_target, figures.total_completion),
        ]
    )
    for offset, column in enumerate(columns, start=4):
        number_format = {"ratio": "0.0%", "points": "0.##"}.get(column.kind, "0")
        for (cell,) in sheet.iter_rows(min_row=3, min_col=offset, max_col=offset):
            cell.number_format = number_format
    sheet.column_dimensions["C"].width = 16
    sheet.freeze_panes = "D3"
    sheet.append([])
    sheet.append([f"{ctx.settings.office.name} {_chinese_date(figures, ctx)}"])

    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()
