"""Chinese working-day calendar: statutory holidays, weekend days worked in lieu, working hours and deadlines.

Each date is looked up in this order, and the first source with an entry for it wins:

1. the override file (a TOML file with one table per year, for each year's State Council notice
   and for local days off; ``examples/calendar.toml`` documents its keys);
2. the ``chinese_calendar`` package (PyPI ``chinesecalendar``; 1.11.0 covers 2004–2026);
3. the weekday rule: Monday to Friday are working days. A date that falls back to it in a year that
   neither source covers logs one warning per year and calendar.

A holiday block is a run of consecutive days off that contains at least one statutory holiday,
extended over the ordinary weekend days next to it (a Monday holiday "joined with the weekend"
starts on the Saturday before). Local days off never extend a block.
"""

from __future__ import annotations

import enum
import logging
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import chinese_calendar  # type: ignore[import-untyped]  # the package ships no type hints (1.11.0)

from daemon.errors import ConfigError

logger = logging.getLogger(__name__)

DEFAULT_TZ = ZoneInfo("Asia/Shanghai")

# Warn about a missing next year from 1 November, because the State Council's notice for next year
# usually comes out in the last quarter and January deadlines already depend on it.
WARNING_FROM_MONTH = 11

# The longest block in chinese_calendar 1.11.0 is 10 days (春节 2020, extended by decree). A block of
# more than a month in the override file is taken as a typo.
MAX_BLOCK_DAYS = 31

# chinese_calendar stores English names (its Holiday enum values). These are the names the State
# Council's notices use; the package's own Chinese names drop the 节 of 清明, 端午 and 中秋.
_PACKAGE_NAMES = {
    "New Year's Day": "元旦",
    "Spring Festival": "春节",
    "Tomb-sweeping Day": "清明节",
    "Labour Day": "劳动节",
    "Dragon Boat Festival": "端午节",
    "National Day": "国庆节",
    "Mid-autumn Festival": "中秋节",
}

_YEAR_KEYS = ("holidays", "workdays", "local_days_off")
_BLOCK_KEYS = ("name", "start", "end")


class DayKind(enum.StrEnum):
    """Kind of a date in the calendar. The values are the words the office uses."""

    WORKING_DAY = "工作日"
    WORKING_DAY_IN_LIEU = "调休上班"
    WEEKEND = "周末"
    HOLIDAY = "法定节假日"
    LOCAL_DAY_OFF = "地方假日"

    @property
    def is_working(self) -> bool:
        return self in (DayKind.WORKING_DAY, DayKind.WORKING_DAY_IN_LIEU)


@dataclass(frozen=True)
class WorkingPeriod:
    """One span of working time in a day, from ``start`` (inclusive) to ``end`` (exclusive)."""

    start: time
    end: time


@dataclass(frozen=True)
class WorkingHours:
    """Working periods of a working day, in order. The default is 08:30–12:00 and 14:00–17:30.

    Raises ValueError when there is no period, a period ends before it starts, periods overlap or
    are out of order, or a time carries a time zone (the calendar's zone applies).
    """

    periods: tuple[WorkingPeriod, ...] = (
        WorkingPeriod(time(8, 30), time(12, 0)),
        WorkingPeriod(time(14, 0), time(17, 30)),
    )

    def __post_init__(self) -> None:
        if not self.periods:
            raise ValueError("WorkingHours needs at least one period")
        previous_end: time | None = None
        for period in self.periods:
            if period.start.tzinfo is not None or period.end.tzinfo is not None:
                raise ValueError(f"working period {period} must use naive times")
            if period.start >= period.end:
                raise ValueError(f"working period {period} must start before it ends")
            if previous_end is not None and period.start < previous_end:
                raise ValueError(f"working period {period} overlaps or precedes the one before it")
            previous_end = period.end

    @property
    def start(self) -> time:
        """Start of the first period."""
        return self.periods[0].start

    @property
    def end(self) -> time:
        """End of the last period: the end of working hours."""
        return self.periods[-1].end


DEFAULT_HOURS = WorkingHours()


@dataclass(frozen=True)
class HolidayBlock:
    """A named run of days off from ``start`` to ``end``, both inclusive."""

    name: str
    start: date
    end: date

    def __contains__(self, day: object) -> bool:
        return isinstance(day, date) and self.start <= day <= self.end

    @property
    def days(self) -> int:
        """Number of days in the block."""
        return (self.end - self.start).days + 1


@dataclass(frozen=True)
class YearOverride:
    """Table of the override file for one year.

    The file covers a year only when ``holidays`` is not empty, because every State Council notice
    names holiday blocks. A table with only local days off leaves the year uncovered.
    """

    year: int
    holidays: tuple[HolidayBlock, ...] = ()
    workdays: frozenset[date] = frozenset()
    local_days_off: tuple[HolidayBlock, ...] = ()


@dataclass(frozen=True)
class _DayInfo:
    kind: DayKind
    name: str | None = None


# ---------------------------------------------------------------------------------------------
# Override file


def load_overrides(path: Path) -> dict[int, YearOverride]:
    """Read an override file; raise ConfigError listing every problem found in it.

    Returns the tables by year.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ConfigError([f"日历文件不存在：{path}"]) from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([f"无法读取日历文件 {path}：{exc}"]) from exc
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"日历文件 {path} 不是合法的 TOML：{exc}"]) from exc
    return parse_overrides(data, source=f"日历文件 {path}")


def parse_overrides(data: Mapping[str, object], *, source: str = "日历文件") -> dict[int, YearOverride]:
    """Validate parsed override TOML; raise ConfigError listing every problem, each naming its key.

    ``source`` starts every message, so the reader knows which file to fix. Returns the tables by year.
    """
    problems: list[str] = []
    overrides: dict[int, YearOverride] = {}
    claims: dict[date, str] = {}  # which key already put a date into the calendar
    for key, table in data.items():
        year = _parse_year(key, source, problems)
        if year is None:
            continue
        if not isinstance(table, dict):
            problems.append(f"{source}：[{key}] 应为表，实际为 {_describe(table)}")
            continue
        for unknown in sorted(set(table) - set(_YEAR_KEYS)):
            problems.append(f"{source}：未知的配置项 {key}.{unknown}（可用的键：{'、'.join(_YEAR_KEYS)}）")

        holidays = _parse_blocks(table.get("holidays", []), f"{key}.holidays", year, source, problems)
        local = _parse_blocks(table.get("local_days_off", []), f"{key}.local_days_off", year, source, problems)
        workdays = _parse_workdays(table.get("workdays", []), f"{key}.workdays", year, source, problems)

        for where, block in [*holidays, *local]:
            for offset in range(block.days):
                _claim(claims, block.start + timedelta(days=offset), where, source, problems)
        for day in sorted(workdays):
            _claim(claims, day, f"{key}.workdays", source, problems)
        overrides[year] = YearOverride(
            year=year,
            holidays=tuple(block for _, block in holidays),
            workdays=frozenset(workdays),
            local_days_off=tuple(block for _, block in local),
        )
    if problems:
        raise ConfigError(problems)
    return overrides


def _parse_year(key: str, source: str, problems: list[str]) -> int | None:
    if not (key.isascii() and key.isdigit() and len(key) == 4 and 2000 <= int(key) <= 2099):
        problems.append(f"{source}：未知的配置项 [{key}]（每个表的名字应为年份，如 [2027]）")
        return None
    return int(key)


def _parse_blocks(
    value: object, key: str, year: int, source: str, problems: list[str]
) -> list[tuple[str, HolidayBlock]]:
    """Parse an array of {name, start, end} tables; return each block with the key that names it."""
    if not isinstance(value, list):
        problems.append(f"{source}：{key} 应为表数组（[[{key}]] 或 [{{ name = …, start = …, end = … }}]）")
        return []
    blocks: list[tuple[str, HolidayBlock]] = []
    for index, entry in enumerate(value, start=1):
        where = f"{key} 第 {index} 项"
        if not isinstance(entry, dict):
            problems.append(f"{source}：{where} 应为表（含 name、start、end），实际为 {_describe(entry)}")
            continue
        for unknown in sorted(set(entry) - set(_BLOCK_KEYS)):
            problems.append(f"{source}：{where} 有未知的键 {unknown}（可用的键：name、start、end）")
        before = len(problems)
        name = entry.get("name")
        if not isinstance(name, str) or not name.strip():
            problems.append(f'{source}：{where} 缺少 name，或不是非空字符串（如 "国庆节"）')
        start = _parse_date(entry.get("start"), f"{where}的 start", source, problems)
        end = start if "end" not in entry else _parse_date(entry["end"], f"{where}的 end", source, problems)
        if len(problems) > before or not isinstance(name, str) or start is None or end is None:
            continue
        block = HolidayBlock(name=name.strip(), start=start, end=end)
        if _check_block(block, where, year, source, problems):
            blocks.append((where, block))
    return blocks


def _check_block(block: HolidayBlock, where: str, year: int, source: str, problems: list[str]) -> bool:
    before = len(problems)
    if block.end < block.start:
        problems.append(f"{source}：{where} 的 end（{block.end}）早于 start（{block.start}）")
    elif block.days > MAX_BLOCK_DAYS:
        problems.append(f"{source}：{where} 长达 {block.days} 天，超过 {MAX_BLOCK_DAYS} 天，请检查日期")
    # A New Year's Day block may start in the December before, as it did for 2024 (2023-12-30).
    if block.end.year != year or block.start.year not in (year - 1, year):
        problems.append(f"{source}：{where} 的日期 {block.start}～{block.end} 不属于 {year} 年（end 应在 {year} 年内）")
    return len(problems) == before


def _parse_workdays(value: object, key: str, year: int, source: str, problems: list[str]) -> set[date]:
    if not isinstance(value, list):
        problems.append(f"{source}：{key} 应为日期数组（如 [{year}-02-20, {year}-10-09]），实际为 {_describe(value)}")
        return set()
    days: set[date] = set()
    for index, item in enumerate(value, start=1):
        day = _parse_date(item, f"{key} 第 {index} 项", source, problems)
        if day is None:
            continue
        if day.year != year:
            problems.append(f"{source}：{key} 第 {index} 项 {day} 不属于 {year} 年")
        elif day in days:
            problems.append(f"{source}：{key} 第 {index} 项 {day} 重复")
        else:
            days.add(day)
    return days


def _parse_date(value: object, key: str, source: str, problems: list[str]) -> date | None:
    """Accept a TOML local date (2027-10-01) or the same text in quotes."""
    if isinstance(value, datetime):  # datetime is a subclass of date, so test it first
        problems.append(f"{source}：{key} 应为日期（如 2027-10-01），不应带时间：{value}")
        return None
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            pass
    if value is None:
        problems.append(f"{source}：缺少 {key}（日期，如 2027-10-01）")
    else:
        problems.append(f"{source}：{key} 应为日期（如 2027-10-01），实际为 {_describe(value)}")
    return None


def _claim(claims: dict[date, str], day: date, where: str, source: str, problems: list[str]) -> None:
    owner = claims.get(day)
    if owner is None:
        claims[day] = where
    elif owner != where:
        problems.append(f"{source}：{day} 同时出现在 {owner} 和 {where} 中，一天只能属于一处")


def _describe(value: object) -> str:
    kinds = {str: "字符串", int: "整数", bool: "布尔值", float: "数字", list: "数组", dict: "表"}
    return f"{kinds.get(type(value), type(value).__name__)} {value!r}"


# ---------------------------------------------------------------------------------------------
# Package data


def _package_name(value: str) -> str:
    # In chinese_calendar 1.11.0 every name in the holiday tables is a value of its Holiday enum.
    return _PACKAGE_NAMES.get(value) or str(chinese_calendar.Holiday(value).chinese)


def package_covers(year: int) -> bool:
    """Return whether the installed chinese_calendar has data for ``year``."""
    try:
        chinese_calendar.get_holiday_detail(date(year, 1, 1))
    except NotImplementedError:
        return False
    return True


def _package_info(day: date) -> _DayInfo | None:
    """Return the package's view of ``day``, or None when the package has no data for its year."""
    try:
        is_day_off, name = chinese_calendar.get_holiday_detail(day)
    except NotImplementedError:
        return None
    weekend = day.weekday() >= 5
    if not is_day_off:
        return _DayInfo(DayKind.WORKING_DAY_IN_LIEU if weekend else DayKind.WORKING_DAY)
    if name is None:
        return _DayInfo(DayKind.WEEKEND)
    return _DayInfo(DayKind.HOLIDAY, _package_name(name))


def _weekday_info(day: date) -> _DayInfo:
    return _DayInfo(DayKind.WEEKEND if day.weekday() >= 5 else DayKind.WORKING_DAY)


def _override_index(overrides: Mapping[int, YearOverride]) -> dict[date, _DayInfo]:
    index: dict[date, _DayInfo] = {}
    for override in overrides.values():
        for block in override.holidays:
            for offset in range(block.days):
                index[block.start + timedelta(days=offset)] = _DayInfo(DayKind.HOLIDAY, block.name)
        for block in override.local_days_off:
            for offset in range(block.days):
                index[block.start + timedelta(days=offset)] = _DayInfo(DayKind.LOCAL_DAY_OFF, block.name)
        for day in override.workdays:
            weekend = day.weekday() >= 5
            index[day] = _DayInfo(DayKind.WORKING_DAY_IN_LIEU if weekend else DayKind.WORKING_DAY)
    return index


# ---------------------------------------------------------------------------------------------
# Calendar


@dataclass(eq=False)  # it carries the set of years already warned about, so compare by identity
class WorkCalendar:
    """Working days and working hours of the office, in one time zone.

    Methods that take a ``date`` also accept an aware ``datetime``, which they first convert to
    ``tz``. Naive datetimes raise ValueError. Returned datetimes are aware, in ``tz``.
    """

    overrides: Mapping[int, YearOverride] = field(default_factory=dict)
    hours: WorkingHours = DEFAULT_HOURS
    tz: ZoneInfo = DEFAULT_TZ
    override_path: Path | None = None
    _index: dict[date, _DayInfo] = field(init=False, repr=False)
    _warned_years: set[int] = field(init=False, repr=False, default_factory=set)

    def __post_init__(self) -> None:
        self._index = _override_index(self.overrides)

    @classmethod
    def from_file(
        cls, override_path: Path | None, hours: WorkingHours = DEFAULT_HOURS, tz: ZoneInfo = DEFAULT_TZ
    ) -> WorkCalendar:
        """Build a calendar from an override file, or from the package alone when the path is None.

        Raises ConfigError listing every problem of the file.
        """
        overrides = load_overrides(override_path) if override_path is not None else {}
        return cls(overrides=overrides, hours=hours, tz=tz, override_path=override_path)

    # -- coverage ------------------------------------------------------------------------------

    def is_year_covered(self, year: int) -> bool:
        """Return whether the package or the override file has the holiday data of ``year``."""
        override = self.overrides.get(year)
        return bool(override and override.holidays) or package_covers(year)

    def missing_years(self, first: int, last: int) -> list[int]:
        """Return the years from ``first`` to ``last`` (inclusive) that no source covers."""
        return [year for year in range(first, last + 1) if not self.is_year_covered(year)]

    def next_year_warning(self, today: date) -> str | None:
        """Return a Chinese warning for the office when holiday data is missing, else None.

        From 1 November on it names next year when no source covers it. It names the current year
        on any day when that year is not covered, because deadlines are already counted wrongly.
        """
        today = self._as_date(today)
        years = [today.year]
        if today.month >= WARNING_FROM_MONTH:
            years.append(today.year + 1)
        missing = [year for year in years if not self.is_year_covered(year)]
        if not missing:
            return None
        named = "和 ".join(f"{year} 年" for year in missing)
        where = f"日历文件（{self.override_path}）" if self.override_path else "日历文件"
        return (
            f"{named}的法定节假日和调休上班安排尚未录入：在录入之前，系统只按周一至周五上班计算期限，"
            f"也不会在假期最后一天提示假日综述。请按国务院办公厅的放假通知补充{where}。"
        )

    # -- days ----------------------------------------------------------------------------------

    def day_kind(self, day: date) -> DayKind:
        """Return what ``day`` is: working day, day worked in lieu, weekend, holiday or local day off."""
        return self._info(self._as_date(day)).kind

    def is_working_day(self, day: date) -> bool:
        """Return whether ``day`` is a working day (ordinary or worked in lieu)."""
        return self.day_kind(day).is_working

    def next_working_day(self, day: date) -> date:
        """Return the first working day after ``day`` (never ``day`` itself)."""
        candidate = self._as_date(day) + timedelta(days=1)
        while not self._info(candidate).kind.is_working:
            candidate += timedelta(days=1)
        return candidate

    def holiday_blocks(self, year: int) -> list[HolidayBlock]:
        """Return the statutory holiday blocks that end in ``year``, in date order.

        A block that starts in the December before (a New Year's Day block) belongs to the year it
        ends in. An uncovered year has no blocks.
        """
        blocks: list[HolidayBlock] = []
        day = date(year, 1, 1)
        while day.year == year:
            block = self._block_around(day)
            if block is None:
                day += timedelta(days=1)
                continue
            if block.end.year == year:
                blocks.append(block)
            day = block.end + timedelta(days=1)
        return blocks

    def holiday_block(self, day: date) -> HolidayBlock | None:
        """Return the statutory holiday block that contains ``day``, or None."""
        return self._block_around(self._as_date(day))

    def last_day_of_holiday(self, day: date) -> date | None:
        """Return the last day of the statutory holiday block containing ``day``, or None.

        The holiday summary (假日综述) is due on that day.
        """
        block = self.holiday_block(day)
        return block.end if block else None

    def holiday_name(self, day: date) -> str | None:
        """Return the Chinese name of the holiday ``day`` belongs to, or None on other days.

        Inside a statutory block this is the block's name, with the names joined by 、 when the
        block combines two holidays (国庆节、中秋节 in 2025). A local day off has its own name. A
        weekend day worked in lieu has no name, though the package ties it to a holiday.
        """
        day = self._as_date(day)
        block = self._block_around(day)
        if block is not None:
            return block.name
        info = self._info(day)
        return info.name if info.kind is DayKind.LOCAL_DAY_OFF else None

    # -- hours ---------------------------------------------------------------------------------

    def end_of_working_hours(self, day: date) -> datetime:
        """Return the end of the last working period on ``day``, whether or not ``day`` is a working day."""
        return datetime.combine(self._as_date(day), self.hours.end, tzinfo=self.tz)

    def is_within_working_hours(self, moment: datetime) -> bool:
        """Return whether ``moment`` is on a working day inside a working period (start ≤ t < end)."""
        local = self._as_local(moment)
        if not self.is_working_day(local.date()):
            return False
        now = local.time().replace(tzinfo=None)
        return any(period.start <= now < period.end for period in self.hours.periods)

    def next_working_time(self, moment: datetime) -> datetime:
        """Return ``moment`` in ``tz`` when it is inside working hours, else the start of the next period."""
        local = self._as_local(moment)
        day = local.date()
        if self.is_working_day(day):
            now = local.time().replace(tzinfo=None)
            for period in self.hours.periods:
                if now < period.start:
                    return datetime.combine(day, period.start, tzinfo=self.tz)
                if now < period.end:
                    return local
        return datetime.combine(self.next_working_day(day), self.hours.start, tzinfo=self.tz)

    def add_working_days(self, start: datetime, n: int) -> datetime:
        """Return the deadline ``n`` working days after ``start``: the end of working hours of that day.

        The day of ``start`` is never counted, following the Civil Code art. 201 (the day a period
        begins is not counted) and art. 203 (with business hours, the last day ends when business
        closes). Day 1 is the first working day after the calendar date of ``start`` in ``tz``, so
        the time of day does not matter and the office always has ``n`` whole working days:

        - received Friday 15:00 (or 18:00, after hours), n=1: the next working day, 17:30;
        - received Saturday, or on a holiday, n=1: the first working day after it, 17:30;
        - received Friday, n=2, with Saturday worked in lieu: that Saturday is day 1.

        Raises ValueError when ``n`` is below 1 or ``start`` is naive.
        """
        if n < 1:
            raise ValueError(f"add_working_days needs n >= 1, got {n}")
        due = self._as_local(start).date()
        for _ in range(n):
            due = self.next_working_day(due)
        return self.end_of_working_hours(due)

    # -- internals -----------------------------------------------------------------------------

    def _as_local(self, moment: datetime) -> datetime:
        if moment.tzinfo is None or moment.utcoffset() is None:
            raise ValueError(f"the working-day calendar needs an aware datetime, got {moment!r}")
        return moment.astimezone(self.tz)

    def _as_date(self, day: date) -> date:
        if isinstance(day, datetime):
            return self._as_local(day).date()
        return day

    def _info(self, day: date) -> _DayInfo:
        """Look ``day`` up in the override file, then the package, then the weekday rule."""
        info = self._index.get(day) or _package_info(day)
        if info is not None:
            return info
        override = self.overrides.get(day.year)
        if not (override and override.holidays) and day.year not in self._warned_years:
            self._warned_years.add(day.year)
            logger.warning(
                "No holiday data for %d in chinese_calendar %s or in the override file (%s); "
                "counting Monday to Friday as working days for that year",
                day.year,
                chinese_calendar.__version__,
                self.override_path or "none configured",
            )
        return _weekday_info(day)

    def _block_around(self, day: date) -> HolidayBlock | None:
        """Return the run of holidays and weekend days around ``day`` if it contains a statutory holiday."""
        off = (DayKind.HOLIDAY, DayKind.WEEKEND)
        if self._info(day).kind not in off:
            return None
        start = end = day
        while self._info(start - timedelta(days=1)).kind in off:
            start -= timedelta(days=1)
        while self._info(end + timedelta(days=1)).kind in off:
            end += timedelta(days=1)

        names: list[str] = []
        for offset in range((end - start).days + 1):
            info = self._info(start + timedelta(days=offset))
            if info.kind is DayKind.HOLIDAY and info.name and info.name not in names:
                names.append(info.name)
        if not names:
            return None
        return HolidayBlock(name="、".join(names), start=start, end=end)
