"""Reading 约稿 mails from the office: topic, units, deadline forms, requirements and errors."""

from __future__ import annotations

from datetime import time

import pytest

from parsers.commission_mail import (
    CommissionDeadline,
    CommissionMailError,
    is_commission_mail,
    read_commission_mail,
    read_deadline,
    read_unit_names,
)


def test_full_mail_read() -> None:
    draft = read_commission_mail(
        "约稿：冬季旅游消费情况\n单位：成都市、乐山市、产业处\n截止：12月10日\n要求：800字以内\n附图片两张。\n"
    )

    assert draft.topic == "冬季旅游消费情况"
    assert draft.unit_names == ("成都市", "乐山市", "产业处")
    assert not draft.all_units
    assert not draft.all_prefectures
    assert draft.deadline == CommissionDeadline(text="12月10日", month=12, day=10)
    assert draft.requirements == "800字以内\n附图片两张。"
    assert draft.ignored_lines == ()


@pytest.mark.parametrize(
    "first_line",
    ["约稿：冬季旅游", "约稿:冬季旅游", "约稿 ： 冬季旅游", "约稿　冬季旅游", "  约稿：冬季旅游  "],
)
def test_topic_colon_forms(first_line: str) -> None:
    draft = read_commission_mail(f"{first_line}\n单位：成都市")

    assert draft.topic == "冬季旅游"


def test_full_width_labels_and_separators() -> None:
    draft = read_commission_mail(
        "约稿：主题\n单位:成都市,乐山市；产业处 成都市\n截止时间：２０２６年１２月１０日１７：００"
    )

    assert draft.unit_names == ("成都市", "乐山市", "产业处")
    assert draft.deadline is not None
    assert (draft.deadline.year, draft.deadline.month, draft.deadline.day) == (2026, 12, 10)
    assert draft.deadline.at == time(17, 0)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("全部市州", ((), False, True)),
        ("各市（州）", ((), False, True)),
        ("全部", ((), True, False)),
        ("全部市州、产业处", (("产业处",), False, True)),
        ("成都市，成都市", (("成都市",), False, False)),
    ],
)
def test_unit_selectors(value: str, expected: tuple[tuple[str, ...], bool, bool]) -> None:
    """Each case: (names, all units, all prefectures)."""
    assert read_unit_names(value) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("12月10日", CommissionDeadline("12月10日", month=12, day=10)),
        ("12月10日前", CommissionDeadline("12月10日前", month=12, day=10)),
        ("2026年12月10日17:00", CommissionDeadline("2026年12月10日17:00", 2026, 12, 10, time(17, 0))),
        ("2026-12-10", CommissionDeadline("2026-12-10", 2026, 12, 10)),
        ("2026-12-10 09:30", CommissionDeadline("2026-12-10 09:30", 2026, 12, 10, time(9, 30))),
        ("12月10日下午5点", CommissionDeadline("12月10日下午5点", None, 12, 10, time(17, 0))),
        ("12月10日12时30分", CommissionDeadline("12月10日12时30分", None, 12, 10, time(12, 30))),
        ("3个工作日", CommissionDeadline("3个工作日", working_days=3)),
        ("三个工作日内", CommissionDeadline("三个工作日内", working_days=3)),
        ("十五个工作日", CommissionDeadline("十五个工作日", working_days=15)),
    ],
)
def test_deadline_forms(text: str, expected: CommissionDeadline) -> None:
    assert read_deadline(text) == expected


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("下周五", "无法识别截止时间“下周五”"),
        ("2月30日", "不是有效的日期"),
        ("2027年2月29日", "不是有效的日期"),
        ("12月10日25:00", "时刻无效"),
        ("0个工作日", "工作日数应在 1 到 60 之间"),
        ("", "截止时间为空"),
    ],
)
def test_bad_deadline_reports_chinese_error(text: str, fragment: str) -> None:
    with pytest.raises(CommissionMailError) as caught:
        read_deadline(text)

    assert fragment in caught.value.problems[0]


def test_deadline_field_is_optional() -> None:
    draft = read_commission_mail("约稿：主题\n单位：全部")

    assert draft.deadline is None
    assert draft.all_units


def test_all_problems_reported_together() -> None:
    with pytest.raises(CommissionMailError) as caught:
        read_commission_mail("约稿：\n截止：明天")

    problems = caught.value.problems
    assert len(problems) == 3
    assert problems[0].startswith("缺少约稿主题")
    assert problems[1].startswith("缺少约稿单位")
    assert "无法识别截止时间“明天”" in problems[2]


def test_unlabelled_lines_outside_requirements_ignored() -> None:
    draft = read_commission_mail("约稿：主题\n请各单位高度重视。\n单位：成都市\n要求：简明扼要\n紧扣主题")

    assert draft.ignored_lines == ("请各单位高度重视。",)
    assert draft.requirements == "简明扼要\n紧扣主题"


def test_later_label_ends_requirements() -> None:
    draft = read_commission_mail("约稿：主题\n要求：第一条\n第二条\n单位：成都市\n截止：12月10日")

    assert draft.requirements == "第一条\n第二条"
    assert draft.unit_names == ("成都市",)


@pytest.mark.parametrize("text", ["\n\n约稿：主题\n单位：成都市", "  约稿 主题"])
def test_commission_mail_detected_by_first_line(text: str) -> None:
    assert is_commission_mail(text)


@pytest.mark.parametrize("text", ["送审 2026-0001\n约稿：主题", ""])
def test_other_command_mail_not_commission(text: str) -> None:
    assert not is_commission_mail(text)
