"""Working-day calendar: 调休 boundaries of 2025 and 2026, the override file, coverage warnings and hours."""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, time
from pathlib import Path

import pytest

from daemon.errors import ConfigError
from daemon.workdays import (
    DEFAULT_TZ,
    DayKind,
    HolidayBlock,
    WorkCalendar,
    WorkingHours,
    WorkingPeriod,
    load_overrides,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
EXAMPLE_FILE = REPO_ROOT / "examples" / "calendar.toml"


@pytest.fixture
def calendar() -> WorkCalendar:
    return WorkCalendar.from_file(None)


def at(year: int, month: int, day: int, hour: int = 10, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=DEFAULT_TZ)


def close_of(year: int, month: int, day: int) -> datetime:
    return datetime(year, month, day, 17, 30, tzinfo=DEFAULT_TZ)


def write_calendar(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "calendar.toml"
    path.write_text(text, encoding="utf-8")
    return path


def calendar_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "daemon.workdays" and r.levelno == logging.WARNING]


# --- 调休 boundaries from chinese_calendar 1.11.0 ----------------------------------------------

NEXT_WORKING_DAY_2025 = [
    (date(2024, 12, 31), date(2025, 1, 2)),  # 元旦 on Wednesday
    (date(2025, 1, 24), date(2025, 1, 26)),  # Sunday 1-26 worked before 春节
    (date(2025, 1, 26), date(2025, 1, 27)),
    (date(2025, 1, 27), date(2025, 2, 5)),  # 春节 1-28 to 2-4
    (date(2025, 2, 7), date(2025, 2, 8)),  # Saturday 2-8 worked after 春节
    (date(2025, 2, 8), date(2025, 2, 10)),
    (date(2025, 4, 3), date(2025, 4, 7)),  # 清明节 4-4 to 4-6
    (date(2025, 4, 25), date(2025, 4, 27)),  # Sunday 4-27 worked before 劳动节
    (date(2025, 4, 30), date(2025, 5, 6)),  # 劳动节 5-1 to 5-5
    (date(2025, 5, 30), date(2025, 6, 3)),  # 端午节 5-31 to 6-2
    (date(2025, 9, 26), date(2025, 9, 28)),  # Sunday 9-28 worked before 国庆节、中秋节
    (date(2025, 9, 30), date(2025, 10, 9)),  # 国庆节、中秋节 10-1 to 10-8
    (date(2025, 10, 10), date(2025, 10, 11)),  # Saturday 10-11 worked after it
    (date(2025, 10, 11), date(2025, 10, 13)),
]

NEXT_WORKING_DAY_2026 = [
    (date(2025, 12, 31), date(2026, 1, 4)),  # 元旦 1-1 to 1-3, Sunday 1-4 worked
    (date(2026, 1, 4), date(2026, 1, 5)),
    (date(2026, 2, 13), date(2026, 2, 14)),  # Saturday 2-14 worked before 春节
    (date(2026, 2, 14), date(2026, 2, 24)),  # 春节 2-15 to 2-23
    (date(2026, 2, 27), date(2026, 2, 28)),  # Saturday 2-28 worked after 春节
    (date(2026, 2, 28), date(2026, 3, 2)),
    (date(2026, 4, 3), date(2026, 4, 7)),  # 清明节 4-4 to 4-6
    (date(2026, 4, 30), date(2026, 5, 6)),  # 劳动节 5-1 to 5-5
    (date(2026, 5, 8), date(2026, 5, 9)),  # Saturday 5-9 worked after 劳动节
    (date(2026, 5, 9), date(2026, 5, 11)),
    (date(2026, 6, 18), date(2026, 6, 22)),  # 端午节 6-19 to 6-21
    (date(2026, 9, 18), date(2026, 9, 20)),  # Sunday 9-20 worked before 国庆节
    (date(2026, 9, 24), date(2026, 9, 28)),  # 中秋节 9-25 to 9-27
    (date(2026, 9, 30), date(2026, 10, 8)),  # 国庆节 10-1 to 10-7
    (date(2026, 10, 9), date(2026, 10, 10)),  # Saturday 10-10 worked after 国庆节
    (date(2026, 10, 10), date(2026, 10, 12)),
]


@pytest.mark.parametrize(("day", "expected"), NEXT_WORKING_DAY_2025 + NEXT_WORKING_DAY_2026)
def test_next_working_day_at_boundaries(calendar: WorkCalendar, day: date, expected: date) -> None:
    assert calendar.next_working_day(day) == expected


@pytest.mark.parametrize(
    "day",
    [
        date(2025, 1, 26),
        date(2025, 2, 8),
        date(2025, 4, 27),
        date(2025, 9, 28),
        date(2025, 10, 11),
        date(2026, 1, 4),
        date(2026, 2, 14),
        date(2026, 2, 28),
        date(2026, 5, 9),
        date(2026, 9, 20),
        date(2026, 10, 10),
    ],
)
def test_weekend_worked_in_lieu(calendar: WorkCalendar, day: date) -> None:
    assert day.weekday() >= 5
    assert calendar.is_working_day(day)
    assert calendar.day_kind(day) is DayKind.WORKING_DAY_IN_LIEU
    assert calendar.holiday_name(day) is None


@pytest.mark.parametrize(
    "day",
    [date(2025, 2, 3), date(2025, 2, 4), date(2025, 10, 7), date(2025, 10, 8), date(2026, 2, 20), date(2026, 10, 6)],
)
def test_weekday_off_in_lieu(calendar: WorkCalendar, day: date) -> None:
    assert day.weekday() < 5
    assert not calendar.is_working_day(day)
    assert calendar.day_kind(day) is DayKind.HOLIDAY


def test_add_working_days_across_2025_spring_festival(calendar: WorkCalendar) -> None:
    friday = at(2025, 1, 24, 15)

    assert calendar.add_working_days(friday, 1) == close_of(2025, 1, 26)
    assert calendar.add_working_days(friday, 2) == close_of(2025, 1, 27)
    assert calendar.add_working_days(friday, 3) == close_of(2025, 2, 5)
    assert calendar.add_working_days(at(2025, 2, 7, 16), 1) == close_of(2025, 2, 8)


def test_add_working_days_across_2025_national_day(calendar: WorkCalendar) -> None:
    assert calendar.add_working_days(at(2025, 9, 26, 15), 1) == close_of(2025, 9, 28)
    assert calendar.add_working_days(at(2025, 9, 29, 11), 2) == close_of(2025, 10, 9)
    assert calendar.add_working_days(at(2025, 10, 3, 11), 1) == close_of(2025, 10, 9)
    assert calendar.add_working_days(at(2025, 10, 9, 11), 2) == close_of(2025, 10, 11)


def test_add_working_days_across_2026_spring_festival(calendar: WorkCalendar) -> None:
    assert calendar.add_working_days(at(2026, 2, 13, 15), 1) == close_of(2026, 2, 14)
    assert calendar.add_working_days(at(2026, 2, 13, 15), 2) == close_of(2026, 2, 24)
    assert calendar.add_working_days(at(2026, 2, 18, 9), 1) == close_of(2026, 2, 24)
    assert calendar.add_working_days(at(2026, 2, 26, 9), 2) == close_of(2026, 2, 28)


def test_add_working_days_across_2026_autumn(calendar: WorkCalendar) -> None:
    assert calendar.add_working_days(at(2026, 9, 18, 15), 1) == close_of(2026, 9, 20)
    assert calendar.add_working_days(at(2026, 9, 24, 15), 1) == close_of(2026, 9, 28)
    assert calendar.add_working_days(at(2026, 9, 30, 15), 1) == close_of(2026, 10, 8)
    assert calendar.add_working_days(at(2026, 9, 30, 15), 3) == close_of(2026, 10, 10)


def test_holiday_blocks_2025(calendar: WorkCalendar) -> None:
    assert calendar.holiday_blocks(2025) == [
        HolidayBlock("元旦", date(2025, 1, 1), date(2025, 1, 1)),
        HolidayBlock("春节", date(2025, 1, 28), date(2025, 2, 4)),
        HolidayBlock("清明节", date(2025, 4, 4), date(2025, 4, 6)),
        HolidayBlock("劳动节", date(2025, 5, 1), date(2025, 5, 5)),
        HolidayBlock("端午节", date(2025, 5, 31), date(2025, 6, 2)),
        HolidayBlock("国庆节、中秋节", date(2025, 10, 1), date(2025, 10, 8)),
    ]


def test_holiday_blocks_2026(calendar: WorkCalendar) -> None:
    assert calendar.holiday_blocks(2026) == [
        HolidayBlock("元旦", date(2026, 1, 1), date(2026, 1, 3)),
        HolidayBlock("春节", date(2026, 2, 15), date(2026, 2, 23)),
        HolidayBlock("清明节", date(2026, 4, 4), date(2026, 4, 6)),
        HolidayBlock("劳动节", date(2026, 5, 1), date(2026, 5, 5)),
        HolidayBlock("端午节", date(2026, 6, 19), date(2026, 6, 21)),
        HolidayBlock("中秋节", date(2026, 9, 25), date(2026, 9, 27)),
        HolidayBlock("国庆节", date(2026, 10, 1), date(2026, 10, 7)),
    ]


def test_last_day_of_holiday(calendar: WorkCalendar) -> None:
    assert calendar.last_day_of_holiday(date(2025, 10, 1)) == date(2025, 10, 8)
    assert calendar.last_day_of_holiday(date(2025, 10, 8)) == date(2025, 10, 8)
    assert calendar.last_day_of_holiday(date(2026, 2, 15)) == date(2026, 2, 23)
    assert calendar.last_day_of_holiday(at(2026, 10, 3, 20)) == date(2026, 10, 7)
    assert calendar.last_day_of_holiday(date(2026, 10, 8)) is None
    assert calendar.last_day_of_holiday(date(2026, 10, 10)) is None
    assert calendar.last_day_of_holiday(date(2026, 11, 7)) is None  # an ordinary Saturday


def test_holiday_block_joins_adjacent_weekend(calendar: WorkCalendar) -> None:
    # 2024: 端午节 on Monday 6-10 "与周末连休"; the package lists only the Monday.
    assert calendar.holiday_block(date(2024, 6, 8)) == HolidayBlock("端午节", date(2024, 6, 8), date(2024, 6, 10))
    assert calendar.holiday_name(date(2024, 6, 9)) == "端午节"


def test_holiday_block_contains_its_days() -> None:
    block = HolidayBlock("国庆节", date(2026, 10, 1), date(2026, 10, 7))

    assert date(2026, 10, 1) in block
    assert date(2026, 10, 7) in block
    assert date(2026, 9, 30) not in block
    assert date(2026, 10, 8) not in block
    assert block.days == 7


def test_new_year_block_starting_in_december(calendar: WorkCalendar) -> None:
    new_year_2024 = HolidayBlock("元旦", date(2023, 12, 30), date(2024, 1, 1))

    assert calendar.holiday_blocks(2024)[0] == new_year_2024
    assert new_year_2024 not in calendar.holiday_blocks(2023)
    assert calendar.last_day_of_holiday(date(2023, 12, 30)) == date(2024, 1, 1)


def test_holiday_names_in_chinese(calendar: WorkCalendar) -> None:
    assert calendar.holiday_name(date(2026, 1, 1)) == "元旦"
    assert calendar.holiday_name(date(2026, 2, 17)) == "春节"
    assert calendar.holiday_name(date(2026, 4, 5)) == "清明节"
    assert calendar.holiday_name(date(2026, 5, 1)) == "劳动节"
    assert calendar.holiday_name(date(2026, 6, 19)) == "端午节"
    assert calendar.holiday_name(date(2026, 9, 25)) == "中秋节"
    assert calendar.holiday_name(date(2026, 10, 1)) == "国庆节"
    assert calendar.holiday_name(date(2025, 10, 6)) == "国庆节、中秋节"
    assert calendar.holiday_name(date(2015, 9, 3)) == "中国人民抗日战争暨世界反法西斯战争胜利70周年纪念日"
    assert calendar.holiday_name(date(2026, 11, 7)) is None
    assert calendar.holiday_name(date(2026, 11, 9)) is None


# --- coverage and the weekday fallback --------------------------------------------------------


def test_uncovered_year_falls_back_to_weekdays(calendar: WorkCalendar, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="daemon.workdays"):
        friday_new_year = calendar.is_working_day(date(2027, 1, 1))
        saturday = calendar.is_working_day(date(2027, 1, 2))
        deadline = calendar.add_working_days(at(2027, 1, 1, 15), 1)
        blocks = calendar.holiday_blocks(2027)

    assert friday_new_year
    assert not saturday
    assert deadline == close_of(2027, 1, 4)
    assert blocks == []
    assert calendar.holiday_name(date(2027, 10, 1)) is None
    warnings = calendar_warnings(caplog)
    assert len(warnings) == 1
    assert "2027" in warnings[0]


def test_uncovered_year_warns_once_per_year(calendar: WorkCalendar, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="daemon.workdays"):
        for day in (date(2027, 3, 1), date(2027, 3, 2), date(2028, 3, 1), date(2027, 12, 31), date(2028, 5, 5)):
            calendar.is_working_day(day)

    warnings = calendar_warnings(caplog)
    assert len(warnings) == 2
    assert "2027" in warnings[0]
    assert "2028" in warnings[1]


def test_covered_year_logs_nothing(calendar: WorkCalendar, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="daemon.workdays"):
        calendar.holiday_blocks(2026)

    assert calendar_warnings(caplog) == []


def test_year_coverage_without_override(calendar: WorkCalendar) -> None:
    assert calendar.is_year_covered(2004)
    assert calendar.is_year_covered(2026)
    assert not calendar.is_year_covered(2003)
    assert not calendar.is_year_covered(2027)
    assert calendar.missing_years(2025, 2028) == [2027, 2028]


def test_next_year_warning_from_november(calendar: WorkCalendar) -> None:
    assert calendar.next_year_warning(date(2026, 10, 31)) is None

    warning = calendar.next_year_warning(date(2026, 11, 1))
    assert warning is not None
    assert "2027 年" in warning
    assert "国务院办公厅" in warning
    assert calendar.next_year_warning(date(2026, 12, 31)) == warning


def test_next_year_warning_names_current_uncovered_year(calendar: WorkCalendar) -> None:
    in_spring = calendar.next_year_warning(date(2027, 3, 1))
    in_november = calendar.next_year_warning(date(2027, 11, 2))

    assert in_spring is not None
    assert "2027 年" in in_spring
    assert "2028" not in in_spring
    assert in_november is not None
    assert "2027 年和 2028 年" in in_november


# --- override file ----------------------------------------------------------------------------


def test_example_file_covers_2027(caplog: pytest.LogCaptureFixture) -> None:
    calendar = WorkCalendar.from_file(EXAMPLE_FILE)

    with caplog.at_level(logging.WARNING, logger="daemon.workdays"):
        blocks = calendar.holiday_blocks(2027)
        new_year = calendar.is_working_day(date(2027, 1, 1))
        worked_sunday = calendar.is_working_day(date(2027, 2, 14))

    assert calendar.is_year_covered(2027)
    assert calendar.next_year_warning(date(2026, 11, 1)) is None
    assert calendar_warnings(caplog) == []
    assert not new_year
    assert worked_sunday
    assert [block.name for block in blocks] == ["元旦", "春节", "清明节", "劳动节", "端午节", "中秋节", "国庆节"]
    assert calendar.last_day_of_holiday(date(2027, 10, 3)) == date(2027, 10, 7)
    assert calendar.holiday_block(date(2027, 6, 9)) == HolidayBlock("端午节", date(2027, 6, 9), date(2027, 6, 9))
    assert calendar.add_working_days(at(2027, 9, 30, 15), 1) == close_of(2027, 10, 8)
    assert calendar.add_working_days(at(2027, 10, 8, 15), 1) == close_of(2027, 10, 9)


def test_override_inline_tables_and_quoted_dates(tmp_path: Path) -> None:
    path = write_calendar(
        tmp_path,
        """
[2027]
workdays = ["2027-10-09"]
holidays = [
    { name = "国庆节", start = "2027-10-01", end = 2027-10-07 },
]
""",
    )
    calendar = WorkCalendar.from_file(path)

    assert calendar.is_year_covered(2027)
    assert calendar.overrides[2027].workdays == frozenset({date(2027, 10, 9)})
    assert calendar.holiday_blocks(2027) == [HolidayBlock("国庆节", date(2027, 10, 1), date(2027, 10, 7))]
    assert calendar.is_working_day(date(2027, 10, 9))
    assert not calendar.is_working_day(date(2027, 10, 10))


def test_override_wins_over_package(tmp_path: Path) -> None:
    path = write_calendar(
        tmp_path,
        """
[2026]
workdays = [2026-10-07]   # a weekday the package has off
[[2026.holidays]]
name = "国庆假期"
start = 2026-10-01
end = 2026-10-06
[[2026.holidays]]
name = "临时调整"
start = 2026-10-10        # a Saturday the package has worked
[[2026.local_days_off]]
name = "本地节日"
start = 2026-11-20
""",
    )
    calendar = WorkCalendar.from_file(path)

    assert calendar.is_working_day(date(2026, 10, 7))
    assert calendar.day_kind(date(2026, 10, 7)) is DayKind.WORKING_DAY
    assert calendar.last_day_of_holiday(date(2026, 10, 1)) == date(2026, 10, 6)
    assert calendar.holiday_name(date(2026, 10, 1)) == "国庆假期"
    assert not calendar.is_working_day(date(2026, 10, 10))
    assert calendar.holiday_block(date(2026, 10, 10)) == HolidayBlock(
        "临时调整", date(2026, 10, 10), date(2026, 10, 11)
    )
    assert calendar.day_kind(date(2026, 11, 20)) is DayKind.LOCAL_DAY_OFF
    assert calendar.holiday_name(date(2026, 11, 20)) == "本地节日"
    assert calendar.last_day_of_holiday(date(2026, 11, 20)) is None
    assert calendar.add_working_days(at(2026, 11, 19, 9), 1) == close_of(2026, 11, 23)
    # Dates the file does not name still come from the package.
    assert calendar.is_working_day(date(2026, 9, 20))
    assert calendar.holiday_name(date(2026, 2, 17)) == "春节"


def test_local_days_only_leave_year_uncovered(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = write_calendar(tmp_path, '[2027]\nlocal_days_off = [{ name = "本地节日", start = 2027-03-03 }]\n')
    calendar = WorkCalendar.from_file(path)

    with caplog.at_level(logging.WARNING, logger="daemon.workdays"):
        local_day = calendar.is_working_day(date(2027, 3, 3))
        next_day = calendar.is_working_day(date(2027, 3, 4))

    assert not local_day
    assert next_day
    assert not calendar.is_year_covered(2027)
    assert len(calendar_warnings(caplog)) == 1


def test_empty_override_file(tmp_path: Path) -> None:
    assert load_overrides(write_calendar(tmp_path, "# 尚无补充\n")) == {}


def test_bad_override_reports_every_problem(tmp_path: Path) -> None:
    path = write_calendar(
        tmp_path,
        """
version = 1

[2027]
holiday = []
workdays = [2027-02-20, 2027-02-20, "2027-02-30", 2028-01-08, 2027-10-03]

[[2027.holidays]]
start = 2027-01-01

[[2027.holidays]]
name = "春节"
start = 2027-02-13
end = 2027-02-05

[[2027.holidays]]
name = "国庆节"
start = 2027-10-01T00:00:00
end = 2027-10-07

[[2027.holidays]]
name = "国庆节"
start = 2027-10-01
end = 2027-10-07
color = "red"

[[2027.holidays]]
name = "劳动节"
start = 2026-05-01
end = 2026-05-05

[[2027.holidays]]
name = "暑假"
start = 2027-07-01
end = 2027-08-31

[[2027.local_days_off]]
name = "本地节日"

[2028]
workdays = "2028-01-08"
holidays = ["2028-01-01"]
local_days_off = "2028-03-03"
""",
    )

    with pytest.raises(ConfigError) as caught:
        load_overrides(path)
    problems = caught.value.problems

    def reported(*fragments: str) -> bool:
        return any(all(fragment in problem for fragment in fragments) for problem in problems)

    assert all(problem.startswith(f"日历文件 {path}：") for problem in problems)
    assert reported("未知的配置项 [version]")
    assert reported("未知的配置项 2027.holiday")
    assert reported("2027.workdays 第 2 项", "重复")
    assert reported("2027.workdays 第 3 项", "应为日期", "2027-02-30")
    assert reported("2027.workdays 第 4 项", "不属于 2027 年")
    assert reported("2027.holidays 第 1 项", "缺少 name")
    assert reported("2027.holidays 第 2 项", "早于 start")
    assert reported("2027.holidays 第 3 项的 start", "不应带时间")
    assert reported("2027.holidays 第 4 项", "未知的键 color")
    assert reported("2027.holidays 第 5 项", "不属于 2027 年")
    assert reported("2027.holidays 第 6 项", "超过 31 天")
    assert reported("2027-10-03", "2027.holidays 第 4 项", "2027.workdays")
    assert reported("缺少 2027.local_days_off 第 1 项的 start")
    assert reported("2028.workdays", "应为日期数组")
    assert reported("2028.holidays 第 1 项", "应为表")
    assert reported("2028.local_days_off 应为表数组")
    assert len(problems) == 16


def test_override_year_not_a_table(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_overrides(write_calendar(tmp_path, "2027 = [2027-01-01]\n"))

    assert len(caught.value.problems) == 1
    assert "[2027] 应为表" in caught.value.problems[0]


def test_override_file_missing(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        WorkCalendar.from_file(tmp_path / "absent.toml")

    assert caught.value.problems == [f"日历文件不存在：{tmp_path / 'absent.toml'}"]


def test_override_file_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "calendar.toml"
    path.write_bytes("[2027]\n# 国庆节\n".encode("gb18030"))

    with pytest.raises(ConfigError) as caught:
        load_overrides(path)

    assert len(caught.value.problems) == 1
    assert caught.value.problems[0].startswith(f"无法读取日历文件 {path}")


def test_override_file_not_toml(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_overrides(write_calendar(tmp_path, "[2027]\nworkdays = [2027-02-20\n"))

    assert len(caught.value.problems) == 1
    assert "不是合法的 TOML" in caught.value.problems[0]


# --- working hours ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "moment",
    [
        at(2026, 12, 4, 8, 30),
        at(2026, 12, 4, 11, 59),
        at(2026, 12, 4, 14, 0),
        at(2026, 12, 4, 17, 29),
        at(2026, 10, 10, 10, 0),  # Saturday worked in lieu
        datetime(2026, 12, 4, 2, 0, tzinfo=UTC),  # 10:00 in Shanghai
    ],
)
def test_inside_working_hours(calendar: WorkCalendar, moment: datetime) -> None:
    assert calendar.is_within_working_hours(moment)


@pytest.mark.parametrize(
    "moment",
    [
        at(2026, 12, 4, 8, 29),
        at(2026, 12, 4, 12, 0),
        at(2026, 12, 4, 13, 59),
        at(2026, 12, 4, 17, 30),
        at(2026, 12, 5, 10, 0),  # ordinary Saturday
        at(2026, 10, 7, 10, 0),  # weekday off in lieu
        datetime(2026, 12, 4, 9, 45, tzinfo=UTC),  # 17:45 in Shanghai
    ],
)
def test_outside_working_hours(calendar: WorkCalendar, moment: datetime) -> None:
    assert not calendar.is_within_working_hours(moment)


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        (at(2026, 12, 4, 10, 15), at(2026, 12, 4, 10, 15)),
        (at(2026, 12, 4, 7, 0), at(2026, 12, 4, 8, 30)),
        (at(2026, 12, 4, 12, 30), at(2026, 12, 4, 14, 0)),
        (at(2026, 12, 4, 17, 30), at(2026, 12, 7, 8, 30)),  # Friday after hours
        (at(2026, 12, 5, 9, 0), at(2026, 12, 7, 8, 30)),  # Saturday
        (at(2026, 10, 9, 18, 0), at(2026, 10, 10, 8, 30)),  # Saturday worked in lieu follows
        (at(2026, 9, 30, 18, 0), at(2026, 10, 8, 8, 30)),  # 国庆节 follows
        (datetime(2026, 12, 4, 10, 0, tzinfo=UTC), at(2026, 12, 7, 8, 30)),  # 18:00 in Shanghai
    ],
)
def test_next_working_time(calendar: WorkCalendar, moment: datetime, expected: datetime) -> None:
    result = calendar.next_working_time(moment)

    assert result == expected
    assert result.tzinfo == DEFAULT_TZ


def test_end_of_working_hours(calendar: WorkCalendar) -> None:
    end = calendar.end_of_working_hours(date(2026, 12, 4))

    assert end == close_of(2026, 12, 4)
    assert end.tzinfo == DEFAULT_TZ


@pytest.mark.parametrize(
    ("received", "n", "due"),
    [
        (at(2026, 12, 4, 15), 1, close_of(2026, 12, 7)),  # Friday during hours
        (at(2026, 12, 4, 18), 1, close_of(2026, 12, 7)),  # Friday after hours
        (at(2026, 12, 4, 7), 1, close_of(2026, 12, 7)),  # Friday before hours
        (at(2026, 12, 5, 10), 1, close_of(2026, 12, 7)),  # Saturday
        (at(2026, 12, 6, 23, 59), 1, close_of(2026, 12, 7)),  # Sunday
        (at(2026, 12, 7, 9), 1, close_of(2026, 12, 8)),
        (at(2026, 12, 7, 9), 5, close_of(2026, 12, 14)),
        (at(2026, 12, 3, 9), 3, close_of(2026, 12, 8)),
        (datetime(2026, 12, 4, 17, 0, tzinfo=UTC), 1, close_of(2026, 12, 7)),  # Saturday 01:00 in Shanghai
        (datetime(2026, 12, 3, 15, 0, tzinfo=UTC), 1, close_of(2026, 12, 4)),  # Thursday 23:00 in Shanghai
    ],
)
def test_add_working_days_around_weekends(calendar: WorkCalendar, received: datetime, n: int, due: datetime) -> None:
    assert calendar.add_working_days(received, n) == due


def test_add_working_days_rejects_bad_input(calendar: WorkCalendar) -> None:
    with pytest.raises(ValueError, match="n >= 1"):
        calendar.add_working_days(at(2026, 12, 4), 0)
    with pytest.raises(ValueError, match="aware datetime"):
        calendar.add_working_days(datetime(2026, 12, 4, 10), 1)
    with pytest.raises(ValueError, match="aware datetime"):
        calendar.is_within_working_hours(datetime(2026, 12, 4, 10))


def test_custom_working_hours() -> None:
    hours = WorkingHours((WorkingPeriod(time(9, 0), time(17, 0)),))
    calendar = WorkCalendar.from_file(None, hours=hours)

    assert calendar.is_within_working_hours(at(2026, 12, 4, 12, 30))
    assert not calendar.is_within_working_hours(at(2026, 12, 4, 8, 45))
    assert calendar.next_working_time(at(2026, 12, 4, 17, 0)) == at(2026, 12, 7, 9, 0)
    assert calendar.add_working_days(at(2026, 12, 4, 15), 1) == at(2026, 12, 7, 17, 0)
    assert calendar.end_of_working_hours(date(2026, 12, 4)) == at(2026, 12, 4, 17, 0)


def test_default_working_hours() -> None:
    hours = WorkingHours()

    assert hours.start == time(8, 30)
    assert hours.end == time(17, 30)
    assert [(p.start, p.end) for p in hours.periods] == [(time(8, 30), time(12, 0)), (time(14, 0), time(17, 30))]


@pytest.mark.parametrize(
    ("periods", "message"),
    [
        ((), "at least one period"),
        ((WorkingPeriod(time(12, 0), time(8, 30)),), "start before it ends"),
        ((WorkingPeriod(time(8, 30), time(12, 0)), WorkingPeriod(time(11, 0), time(17, 30))), "overlaps"),
        ((WorkingPeriod(time(14, 0), time(17, 30)), WorkingPeriod(time(8, 30), time(12, 0))), "overlaps"),
        ((WorkingPeriod(time(8, 30, tzinfo=UTC), time(12, 0)),), "naive"),
    ],
)
def test_invalid_working_hours(periods: tuple[WorkingPeriod, ...], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        WorkingHours(periods)
