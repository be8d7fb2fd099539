"""Monthly and yearly bulletins (月度通报, 年度通报): the figures per unit, and sending them once.

Definitions, applied to both kinds:

- An item counts unless it is superseded by a revision (state ``superseded``) or is a copy of an
  item already registered (``same_item_as_id`` set).
- received: counted items whose ``received_at`` falls in the period (local time of the settings).
- submitted: counted items whose ``submitted_at`` (报送两办) falls in the period.
- adopted: counted items with at least one adoption dated in the period and not revoked. An item
  adopted twice in the period counts once, so the year-to-date figure is not the sum of months.
- points: the sum of the points of those adoptions.
- commissions answered / missed: the unit's commissioned pieces (约稿) whose deadline falls in the
  period and has passed, excluding cancelled commissions. Answered means answered by the deadline;
  missed means not answered by then, late answers included.
- year to date: the same figures from 1 January to the end of the period. For a yearly bulletin
  the period is the whole year, so both sets are equal.
- completion: year-to-date figure divided by the unit's yearly target, for each target that is
  set. A monthly bulletin does not pro-rate the target, so 75% in November means three quarters
  of the year's target is reached. The totals line compares, per figure, only the units that
  have a target for it.
- rank: by year-to-date points, then adopted, then submitted, all descending. Equal units share a
  rank and the next rank skips (1, 2, 2, 4).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, and_, case, func, select
from sqlalchemy.orm import QueryableAttribute, Session

from daemon.context import RegisterContext
from daemon.models import Adoption, Bulletin, Commission, CommissionState, CommissionUnit, Item, ItemState
from daemon.outbound import queue_mail
from daemon.targets import Targets, UnitTarget, load_targets

log = logging.getLogger(__name__)

MONTHLY = "monthly"
YEARLY = "yearly"
KINDS = (MONTHLY, YEARLY)
_CENT = Decimal("0.01")


@dataclass(frozen=True)
class Figures:
    """One unit's counts over one span of dates (the period, or the year to date)."""

    received: int = 0
    submitted: int = 0
    adopted: int = 0
    points: Decimal = Decimal("0.00")
    commissions_answered: int = 0
    commissions_missed: int = 0


@dataclass(frozen=True)
class Completion:
    """Year-to-date figures as a fraction of the yearly targets; None where no target is set."""

    submitted: Decimal | None = None
    adopted: Decimal | None = None
    points: Decimal | None = None


@dataclass(frozen=True)
class UnitRow:
    """One line of the bulletin."""

    unit_code: str
    unit_name: str
    period: Figures
    year_to_date: Figures
    target: UnitTarget | None
    completion: Completion
    rank: int


@dataclass(frozen=True)
class BulletinFigures:
    """Everything a bulletin shows: the period, one row per unit in rank order, and the totals."""

    kind: str
    period: str
    year: int
    start: date  # first day of the period
    end: date  # first day after the period
    computed_at: datetime
    rows: tuple[UnitRow, ...]
    total_period: Figures
    total_year_to_date: Figures
    total_target: UnitTarget
    total_completion: Completion

    @property
    def title(self) -> str:
        """The bulletin's Chinese title, e.g. "2026年11月政务信息工作通报"."""
        if self.kind == MONTHLY:
            return f"{self.year}年{self.start.month}月政务信息工作通报"
        return f"{self.year}年度政务信息工作通报"


def parse_period(kind: str, period: str) -> tuple[int, date, date]:
    """Return (year, first day, first day after) of a period such as "2026-11" (monthly) or "2026".

    Raises ValueError with a Chinese message when ``kind`` or ``period`` is invalid.
    """
    if kind not in KINDS:
        raise ValueError(f"通报类型 {kind!r} 无效，可选值为：{MONTHLY}、{YEARLY}")
    try:
        if kind == MONTHLY:
            year_text, month_text = period.split("-")
            if len(year_text) != 4 or len(month_text) != 2:
                raise ValueError(period)
            start = date(int(year_text), int(month_text), 1)
            end = date(start.year + start.month // 12, start.month % 12 + 1, 1)
        else:
            if len(period) != 4:
                raise ValueError(period)
            start = date(int(period), 1, 1)
            end = date(start.year + 1, 1, 1)
    except ValueError as exc:
        example = "2026-11" if kind == MONTHLY else "2026"
        raise ValueError(f"通报期间 {period!r} 无效：应写成 {example} 的形式") from exc
    return start.year, start, end


@dataclass(frozen=True)
class _Span:
    """The year to date and the period, as local midnights (aware) and as dates."""

    year_start: datetime
    start: datetime
    end: datetime
    year_start_day: date
    start_day: date
    end_day: date


# unit code -> figure name -> [value in the period, value in the year to date]
_Counts = dict[str, dict[str, list[int | Decimal]]]


def compute_bulletin(
    session: Session, ctx: RegisterContext, kind: str, period: str, *, targets: Targets | None
) -> BulletinFigures:
    """Compute the figures of one bulletin with four GROUP BY queries (see the module docstring).

    Every unit of the directory gets a row, and so does any unit code found in the data but no
    longer in the directory. Raises ValueError when ``kind`` or ``period`` is invalid.
    """
    year, start, end = parse_period(kind, period)
    year_start = date(year, 1, 1)
    now = ctx.clock.now()
    tz = ctx.settings.tz

    def moment(day: date) -> datetime:
        return datetime.combine(day, time(0), tzinfo=tz)

    span = _Span(moment(year_start), moment(start), moment(end), year_start, start, end)
    counts: _Counts = {}
    _count_items(session, span, Item.received_at, "received", counts)
    _count_items(session, span, Item.submitted_at, "submitted", counts)
    _count_adoptions(session, span, counts)
    _count_commissions(session, span, now, counts)

    year_targets = targets.for_year(year) if targets is not None else {}
    codes = list(ctx.units.units) + sorted(set(counts) - set(ctx.units.units))
    rows = [_unit_row(ctx, code, counts.get(code, {}), year_targets.get(code)) for code in codes]
    ranked = _rank(rows)
    total_target = _total_target(year, [row.target for row in ranked if row.target is not None])
    total_ytd = _sum(row.year_to_date for row in ranked)
    return BulletinFigures(
        kind=kind,
        period=period,
        year=year,
        start=start,
        end=end,
        computed_at=now,
        rows=tuple(ranked),
        total_period=_sum(row.period for row in ranked),
        total_year_to_date=total_ytd,
        total_target=total_target,
        total_completion=_total_completion(ranked),
    )


def _counted() -> ColumnElement[bool]:
    return and_(Item.state != ItemState.SUPERSEDED, Item.same_item_as_id.is_(None))


def _put(counts: _Counts, code: str, name: str, in_period: int | Decimal, ytd: int | Decimal) -> None:
    counts.setdefault(code, {})[name] = [in_period, ytd]


def _number(value: object) -> int:
    return 0 if value is None else int(value)  # type: ignore[call-overload]


def _points(value: object) -> Decimal:
    if value is None:
        return Decimal("0.00")
    # SQLite sums NUMERIC as floating point, so round back to the stored two decimal places.
    return Decimal(str(value)).quantize(_CENT)


def _count_items(session: Session, span: _Span, column: QueryableAttribute[Any], name: str, counts: _Counts) -> None:
    """Count counted items per unit whose ``column`` falls in the year to date, and in the period."""
    in_period = func.sum(case((column >= span.start, 1), else_=0))
    query = (
        select(Item.unit_code, in_period, func.count())
        .where(column >= span.year_start, column < span.end, _counted())
        .group_by(Item.unit_code)
    )
    for code, period_count, ytd_count in session.execute(query):
        _put(counts, code, name, _number(period_count), _number(ytd_count))


def _count_adoptions(session: Session, span: _Span, counts: _Counts) -> None:
    """Count adopted items and sum points per unit, from adoptions not revoked."""
    in_period = Adoption.adopted_on >= span.start_day
    query = (
        select(
            Item.unit_code,
            func.count(func.distinct(case((in_period, Adoption.item_id)))),
            func.count(func.distinct(Adoption.item_id)),
            func.sum(case((in_period, Adoption.points), else_=0)),
            func.sum(Adoption.points),
        )
        .join(Item, Item.id == Adoption.item_id)
        .where(
            Adoption.adopted_on >= span.year_start_day,
            Adoption.adopted_on < span.end_day,
            Adoption.revoked_at.is_(None),
            _counted(),
        )
        .group_by(Item.unit_code)
    )
    for code, period_adopted, ytd_adopted, period_points, ytd_points in session.execute(query):
        _put(counts, code, "adopted", _number(period_adopted), _number(ytd_adopted))
        _put(counts, code, "points", _points(period_points), _points(ytd_points))


def _count_commissions(session: Session, span: _Span, now: datetime, counts: _Counts) -> None:
    """Count commissioned pieces answered by, or missed at, deadlines in the span that have passed."""
    on_time = and_(CommissionUnit.answered_at.is_not(None), CommissionUnit.answered_at <= Commission.deadline_at)
    in_period = Commission.deadline_at >= span.start
    query = (
        select(
            CommissionUnit.unit_code,
            func.sum(case((and_(in_period, on_time), 1), else_=0)),
            func.sum(case((on_time, 1), else_=0)),
            func.sum(case((and_(in_period, ~on_time), 1), else_=0)),
            func.sum(case((~on_time, 1), else_=0)),
        )
        .join(Commission, Commission.id == CommissionUnit.commission_id)
        .where(
            Commission.deadline_at >= span.year_start,
            Commission.deadline_at < min(span.end, now),
            Commission.state != CommissionState.CANCELLED,
        )
        .group_by(CommissionUnit.unit_code)
    )
    for code, period_answered, ytd_answered, period_missed, ytd_missed in session.execute(query):
        _put(counts, code, "commissions_answered", _number(period_answered), _number(ytd_answered))
        _put(counts, code, "commissions_missed", _number(period_missed), _number(ytd_missed))


def _unit_row(
    ctx: RegisterContext, code: str, counts: Mapping[str, list[int | Decimal]], target: UnitTarget | None
) -> UnitRow:
    def figures(position: int) -> Figures:
        values = {name: pair[position] for name, pair in counts.items()}
        return Figures(**values)  # type: ignore[arg-type]

    unit = ctx.units.get(code)
    ytd = figures(1)
    return UnitRow(
        unit_code=code,
        unit_name=unit.short_name if unit else code,
        period=figures(0),
        year_to_date=ytd,
        target=target,
        completion=_completion(ytd, target),
        rank=0,
    )


def _ratio(done: int | Decimal, goal: int | Decimal | None) -> Decimal | None:
    if goal is None or goal == 0:
        return None
    return (Decimal(done) / Decimal(goal)).quantize(Decimal("0.0001"))


def _completion(ytd: Figures, target: UnitTarget | None) -> Completion:
    if target is None:
        return Completion()
    return Completion(
        submitted=_ratio(ytd.submitted, target.submitted),
        adopted=_ratio(ytd.adopted, target.adopted),
        points=_ratio(ytd.points, target.points),
    )


def _rank(rows: list[UnitRow]) -> list[UnitRow]:
    """Sort rows by rank (stable, so equal units keep the directory's order) and number them."""

    def key(row: UnitRow) -> tuple[Decimal, int, int]:
        ytd = row.year_to_date
        return (ytd.points, ytd.adopted, ytd.submitted)

    ordered = sorted(rows, key=key, reverse=True)
    ranked: list[UnitRow] = []
    for position, row in enumerate(ordered, start=1):
        rank = ranked[-1].rank if ranked and key(ranked[-1]) == key(row) else position
        ranked.append(replace(row, rank=rank))
    return ranked


def _sum(figures: object) -> Figures:
    items = list(figures)  # type: ignore[call-overload]
    return Figures(
        received=sum(f.received for f in items),
        submitted=sum(f.submitted for f in items),
        adopted=sum(f.adopted for f in items),
        points=sum((f.points for f in items), Decimal("0.00")),
        commissions_answered=sum(f.commissions_answered for f in items),
        commissions_missed=sum(f.commissions_missed for f in items),
    )


def _total_completion(rows: list[UnitRow]) -> Completion:
    """Divide, per figure, the year to date of the units with a target for it by the sum of those targets.

    Units without a target for a figure are left out of both sums, so they do not inflate the rate.
    """

    def ratio(name: str) -> Decimal | None:
        with_target = [row for row in rows if row.target is not None and getattr(row.target, name) is not None]
        if not with_target:
            return None
        done = sum((Decimal(getattr(row.year_to_date, name)) for row in with_target), Decimal(0))
        goal = sum((Decimal(getattr(row.target, name)) for row in with_target), Decimal(0))
        return _ratio(done, goal)

    return Completion(submitted=ratio("submitted"), adopted=ratio("adopted"), points=ratio("points"))


def _total_target(year: int, targets: list[UnitTarget]) -> UnitTarget:
    """Sum the targets of the units that have one; a figure no unit has a target for stays None."""

    def total(name: str) -> int | Decimal | None:
        values = [getattr(t, name) for t in targets if getattr(t, name) is not None]
        return sum(values) if values else None

    return UnitTarget(
        unit_code="",
        year=year,
        submitted=total("submitted"),  # type: ignore[arg-type]
        adopted=total("adopted"),  # type: ignore[arg-type]
        points=total("points"),  # type: ignore[arg-type]
    )


def bulletin_recipients(ctx: RegisterContext) -> tuple[list[str], list[str]]:
    """Return (visible, hidden) recipients of a bulletin.

    The office's addresses and the extra recipients are visible in To; the leaders (when
    ``bulletins.to_leaders``) and the first address of every unit (when ``bulletins.to_units``) are
    envelope recipients only, like Bcc, so no unit sees the others' addresses. An address appears
    once, in the first place it is found.
    """
    settings = ctx.settings
    visible = [*settings.office.addresses, *settings.bulletins.extra_recipients]
    hidden = list(settings.office.leaders) if settings.bulletins.to_leaders else []
    if settings.bulletins.to_units:
        hidden += [unit.addresses[0] for unit in ctx.units.units.values() if unit.addresses]
    seen: set[str] = set()

    def unique(addresses: list[str]) -> list[str]:
        kept = [a for a in addresses if a.lower() not in seen]
        seen.update(a.lower() for a in kept)
        return kept

    visible = unique(visible)
    return visible, unique(hidden)


def send_bulletin(
    session: Session, ctx: RegisterContext, kind: str, period: str, *, targets: Targets | None = None
) -> Bulletin | None:
    """Record one bulletin and queue its mail once; the caller commits.

    ``targets`` defaults to the file named by ``targets.file`` (none when it is not set). Returns
    None when the bulletin of ``kind`` and ``period`` was recorded before, so calling it again
    queues nothing. Raises ValueError for an invalid kind or period, and ConfigError when the
    targets file is invalid.
    """
    parse_period(kind, period)
    if session.scalar(select(Bulletin.id).where(Bulletin.kind == kind, Bulletin.period == period)) is not None:
        return None
    if targets is None and ctx.settings.targets.file is not None:
        targets = load_targets(ctx.settings.targets.file, ctx.units)

    # Imported here because matplotlib, python-docx and openpyxl are slow to import and only
    # bulletins need them.
    from daemon.bulletin_render import build_bulletin_mail

    figures = compute_bulletin(session, ctx, kind, period, targets=targets)
    now = ctx.clock.now()
    key = f"bulletin:{kind}:{period}"
    visible, hidden = bulletin_recipients(ctx)
    bulletin = Bulletin(kind=kind, period=period, created_at=now)
    if visible or hidden:
        mail = build_bulletin_mail(ctx, figures, to=visible or [ctx.settings.smtp.from_address], key=key)
        row = queue_mail(session, key=key, purpose="bulletin", mail=mail, recipients=visible + hidden, now=now)
        bulletin.outbox_id = row.id if row is not None else None
    else:
        log.warning("bulletin %s %s: no recipients configured, nothing queued", kind, period)
    session.add(bulletin)
    session.flush()
    log.info("bulletin %s %s: units=%d recipients=%d", kind, period, len(figures.rows), len(visible) + len(hidden))
    return bulletin


def due_bulletins(ctx: RegisterContext, now: datetime) -> list[tuple[str, str]]:
    """Return the (kind, period) of the bulletins due at ``now``.

    From ``bulletins.time`` on the first working day of a month, and on every later day of that
    month, the previous month's bulletin is due. In January the previous year's yearly bulletin is
    due as well. send_bulletin skips those already sent, so a daemon that was down on the first
    working day catches up later in the month.
    """
    local = now.astimezone(ctx.settings.tz)
    month_start = local.date().replace(day=1)
    first = month_start if ctx.calendar.is_working_day(month_start) else ctx.calendar.next_working_day(month_start)
    send_at = time.fromisoformat(ctx.settings.bulletins.time)
    if first.month != local.month or (local.date(), local.time()) < (first, send_at):
        return []
    previous = month_start - timedelta(days=1)
    due = [(MONTHLY, f"{previous.year}-{previous.month:02d}")]
    if local.month == 1:
        due.append((YEARLY, str(previous.year)))
    return due


def send_due_bulletins(session: Session, ctx: RegisterContext) -> list[Bulletin]:
    """Send the bulletins due now (see due_bulletins) that were not sent before; the caller commits."""
    sent = []
    for kind, period in due_bulletins(ctx, ctx.clock.now()):
        bulletin = send_bulletin(session, ctx, kind, period)
        if bulletin is not None:
            sent.append(bulletin)
    return sent
