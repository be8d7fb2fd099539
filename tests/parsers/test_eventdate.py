"""Press-conference dates in item text and in office commands: forms, numerals and year inference."""

from __future__ import annotations

from datetime import date

import pytest

from parsers.eventdate import WrittenDate, find_event_date, parse_date

RECEIVED_DEC = date(2026, 12, 4)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("通气会时间：12月10日", date(2026, 12, 10)),
        ("通气会时间:12月10号上午", date(2026, 12, 10)),
        ("省文化和旅游厅新闻通气会将于12月10日召开。", date(2026, 12, 10)),
        ("定于2026年12月10日上午召开新闻通气会", date(2026, 12, 10)),
        ("通气会时间：１２月１０日", date(2026, 12, 10)),
        ("拟于十二月十日召开新闻发布会", date(2026, 12, 10)),
        ("二〇二六年十二月二十一日举行新闻通气会", date(2026, 12, 21)),
        ("新闻通气会定于2026-12-10举行", date(2026, 12, 10)),
        ("新闻通气会定于２０２６．１２．１０举行", date(2026, 12, 10)),
        ("新闻通气会于十二月三十一日下午举行", date(2026, 12, 31)),
        ("12月3日开幕的冰雪节将在12月10日（星期四）上午9:30召开新闻通气会", date(2026, 12, 10)),
    ],
)
def test_conference_date_forms(text: str, expected: date) -> None:
    assert find_event_date(text, received_on=RECEIVED_DEC) == expected


def test_month_before_receipt_month_is_next_year() -> None:
    assert find_event_date("新闻通气会将于1月5日召开", received_on=RECEIVED_DEC) == date(2027, 1, 5)


def test_same_month_earlier_day_stays_this_year() -> None:
    assert find_event_date("新闻通气会已于12月1日召开", received_on=RECEIVED_DEC) == date(2026, 12, 1)


def test_written_year_is_kept() -> None:
    assert find_event_date("2027年3月2日召开新闻通气会", received_on=RECEIVED_DEC) == date(2027, 3, 2)


def test_label_wins_over_earlier_dates() -> None:
    text = "11月3日，我局召开专题会议，研究新闻通气会筹备工作。通气会时间：12月10日上午9:30。"

    assert find_event_date(text, received_on=RECEIVED_DEC) == date(2026, 12, 10)


def test_holding_verb_wins_over_other_dates_in_sentence() -> None:
    text = "为宣传11月举办的12月3日开幕的冰雪节，新闻通气会定于12月9日召开。"

    assert find_event_date(text, received_on=RECEIVED_DEC) == date(2026, 12, 9)


def test_arrangement_list_with_bare_label() -> None:
    text = "关于召开冬季旅游新闻通气会的情况\n一、时间：2026年12月10日上午9:30\n二、地点：省文旅厅三楼会议室"

    assert find_event_date(text, received_on=RECEIVED_DEC) == date(2026, 12, 10)


def test_dates_outside_conference_sentences_ignored() -> None:
    text = "11月3日培训班开班。新闻通气会的日期另行通知。"

    assert find_event_date(text, received_on=RECEIVED_DEC) is None


def test_text_without_conference_has_no_date() -> None:
    assert find_event_date("12月10日举办冰雪旅游节开幕式。", received_on=RECEIVED_DEC) is None


def test_impossible_date_skipped() -> None:
    assert find_event_date("新闻通气会于2月30日举行", received_on=RECEIVED_DEC) is None


def test_leap_day_without_year_resolves_only_in_leap_year() -> None:
    assert find_event_date("新闻通气会于2月29日举行", received_on=date(2027, 12, 1)) == date(2028, 2, 29)
    assert find_event_date("新闻通气会于2月29日举行", received_on=date(2026, 12, 1)) is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("12月10日", WrittenDate(None, 12, 10)),
        ("12月10号", WrittenDate(None, 12, 10)),
        ("2026-12-10", WrittenDate(2026, 12, 10)),
        ("2026/12/10", WrittenDate(2026, 12, 10)),
        ("２０２６年１２月１０日", WrittenDate(2026, 12, 10)),
        ("十二月十日", WrittenDate(None, 12, 10)),
        ("二〇二七年一月五日", WrittenDate(2027, 1, 5)),
        ("2月29日", WrittenDate(None, 2, 29)),
    ],
)
def test_parse_date_forms(text: str, expected: WrittenDate) -> None:
    assert parse_date(text) == expected


@pytest.mark.parametrize("text", ["2月30日", "13月1日", "12月", "明天", "12月10日上午", "2026-13-01", "十三月一日"])
def test_parse_date_rejects(text: str) -> None:
    assert parse_date(text) is None


def test_resolve_infers_year_from_receipt() -> None:
    assert WrittenDate(None, 1, 5).resolve(RECEIVED_DEC) == date(2027, 1, 5)
    assert WrittenDate(None, 12, 10).resolve(RECEIVED_DEC) == date(2026, 12, 10)
    assert WrittenDate(2026, 1, 5).resolve(RECEIVED_DEC) == date(2026, 1, 5)
