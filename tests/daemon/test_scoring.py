"""Adoption scoring rules: the example file, matching, periods, penalties and every file error."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from daemon.errors import ConfigError
from daemon.scoring import (
    PenaltyKind,
    ScoringRules,
    format_points,
    load_scoring_rules,
    normalize_name,
    penalty,
    score_adoption,
    scoring_rules_from_dict,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
EXAMPLE_RULES = REPO_ROOT / "examples" / "scoring.toml"
DAY_2026 = date(2026, 6, 15)

TWO_PERIODS = """\
[[rule_sets]]
name = "2027"
valid_from = 2027-01-01
valid_until = 2027-12-31
default_instruction_bonus = 1.5

[[rule_sets.outlet_levels]]
name = "国办"
points = 12
aliases = ["国务院办公厅"]

[[rule_sets.outlet_levels]]
name = "两办"
points = 6.5
aliases = ["省委办公厅", "省政府办公厅"]

[rule_sets.penalties]
missed_commission = -3

[[rule_sets]]
name = "2026"
valid_from = 2026-01-01
valid_until = 2026-12-31
default_instruction_bonus = 2

[[rule_sets.outlet_levels]]
name = "国办"
points = 10
aliases = ["国务院办公厅"]

[[rule_sets.outlet_levels]]
name = "两办"
points = 5
aliases = ["省委办公厅", "省政府办公厅"]

[[rule_sets.instruction_levels]]
name = "省领导"
bonus = 3
"""


@pytest.fixture(scope="module")
def example_rules() -> ScoringRules:
    return load_scoring_rules(EXAMPLE_RULES)


@pytest.fixture
def two_periods(tmp_path: Path) -> ScoringRules:
    return load_scoring_rules(write_rules(tmp_path, TWO_PERIODS))


def write_rules(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "scoring.toml"
    path.write_text(text, encoding="utf-8")
    return path


def valid_rule_set(**changes: object) -> dict[str, object]:
    """Return one valid [[rule_sets]] table as parsed TOML, with ``changes`` applied."""
    table: dict[str, object] = {
        "name": "2026",
        "valid_from": date(2026, 1, 1),
        "valid_until": date(2026, 12, 31),
        "default_instruction_bonus": 2,
        "outlet_levels": [{"name": "国办", "points": 10, "aliases": ["国务院办公厅"]}],
        "instruction_levels": [{"name": "省领导", "bonus": 3, "aliases": ["副省长"]}],
        "penalties": {"missed_commission": -2},
    }
    table.update(changes)
    return table


def problems_of(data: dict[str, object]) -> list[str]:
    """Return the problems ConfigError lists for ``data``, failing the test when it loads."""
    with pytest.raises(ConfigError) as caught:
        scoring_rules_from_dict(data, source="scoring.toml")
    return caught.value.problems


def only_problem(data: dict[str, object]) -> str:
    problems = problems_of(data)
    assert len(problems) == 1, problems
    return problems[0]


# ----- the example file -----


def test_example_file_loads(example_rules: ScoringRules) -> None:
    assert [rule_set.name for rule_set in example_rules.rule_sets] == ["2026"]
    assert example_rules.path == EXAMPLE_RULES.resolve()

    rule_set = example_rules.rule_sets[0]
    assert rule_set.valid_from == date(2026, 1, 1)
    assert rule_set.valid_until == date(2026, 12, 31)
    assert [level.name for level in rule_set.outlet_levels] == ["国办", "省委办公厅/省政府办公厅", "省级信息刊物"]
    assert [level.name for level in rule_set.instruction_levels] == ["国家领导人", "省委省政府主要领导", "省领导"]
    assert rule_set.default_instruction_bonus == Decimal(3)


@pytest.mark.parametrize(
    ("outlet", "level", "points"),
    [
        ("国务院办公厅", "国办", Decimal(10)),
        ("国办", "国办", Decimal(10)),
        ("省委办公厅", "省委办公厅/省政府办公厅", Decimal(5)),
        ("省政府办公厅", "省委办公厅/省政府办公厅", Decimal(5)),
        ("省委办", "省委办公厅/省政府办公厅", Decimal(5)),
        ("省政府办", "省委办公厅/省政府办公厅", Decimal(5)),
        ("两办", "省委办公厅/省政府办公厅", Decimal(5)),
        ("四川信息", "省级信息刊物", Decimal(3)),
        ("每日要情", "省级信息刊物", Decimal(3)),
    ],
)
def test_example_outlet_levels(example_rules: ScoringRules, outlet: str, level: str, points: Decimal) -> None:
    score = score_adoption(example_rules, day=DAY_2026, outlet=outlet)

    assert score.outlet_level == level
    assert score.outlet_points == points
    assert score.points == points
    assert score.instruction_bonus == 0
    assert score.rules_name == "2026"
    assert score.matched


def test_explanation_of_alias_names_level(example_rules: ScoringRules) -> None:
    score = score_adoption(example_rules, day=DAY_2026, outlet="省委办公厅")

    assert score.explanation == "省委办公厅（省委办公厅/省政府办公厅）5 分"


def test_explanation_of_level_name(example_rules: ScoringRules) -> None:
    score = score_adoption(example_rules, day=DAY_2026, outlet="国办")

    assert score.explanation == "国办 10 分"


# ----- matching -----


@pytest.mark.parametrize(
    "written",
    [
        " 省委办公厅 ",  # surrounding spaces
        "省委　办公厅",  # ideographic space inside
        "省委\u200b办公厅",  # zero-width space copied from a document
        "\t两办\n",
    ],
)
def test_outlet_spacing_ignored(example_rules: ScoringRules, written: str) -> None:
    score = score_adoption(example_rules, day=DAY_2026, outlet=written)

    assert score.outlet_level == "省委办公厅/省政府办公厅"
    assert score.points == 5


def test_full_width_alias_matches(tmp_path: Path) -> None:
    text = TWO_PERIODS.replace('aliases = ["国务院办公厅"]', 'aliases = ["国务院办公厅", "GOV Office 1"]', 1)
    rules = load_scoring_rules(write_rules(tmp_path, text))

    for written in ("ＧＯＶ　Ｏｆｆｉｃｅ　１", "gov office 1", "GOVOFFICE1"):
        score = score_adoption(rules, day=date(2027, 3, 1), outlet=written)
        assert score.outlet_level == "国办", written
        assert score.points == 12, written


def test_full_width_in_file_matches(tmp_path: Path) -> None:
    text = TWO_PERIODS.replace('aliases = ["国务院办公厅"]', 'aliases = ["国务院办公厅", "ＮＯ．１ 刊物"]', 1)
    rules = load_scoring_rules(write_rules(tmp_path, text))

    score = score_adoption(rules, day=date(2027, 3, 1), outlet="NO.1刊物")

    assert score.outlet_level == "国办"


def test_normalize_name_forms() -> None:
    assert normalize_name("《四川信息》") == "四川信息"
    assert normalize_name("ＡＢＣ　１２３") == "abc123"
    assert normalize_name(" \u3000 ") == ""


def test_publication_only_match(example_rules: ScoringRules) -> None:
    score = score_adoption(example_rules, day=DAY_2026, outlet="省发展改革委", publication="《四川信息》")

    assert score.outlet_level == "省级信息刊物"
    assert score.points == 3
    assert score.explanation == "《四川信息》（省级信息刊物）3 分"


def test_outlet_wins_over_publication(example_rules: ScoringRules) -> None:
    score = score_adoption(example_rules, day=DAY_2026, outlet="省委办公厅", publication="四川信息")

    assert score.outlet_level == "省委办公厅/省政府办公厅"
    assert score.points == 5


def test_publication_with_empty_outlet(example_rules: ScoringRules) -> None:
    score = score_adoption(example_rules, day=DAY_2026, outlet="", publication="每日要情")

    assert score.outlet_level == "省级信息刊物"
    assert score.points == 3


def test_unmatched_outlet_scores_zero(example_rules: ScoringRules) -> None:
    score = score_adoption(
        example_rules,
        day=DAY_2026,
        outlet="某某报社",
        publication="某某内参",
        instructed=True,
        instruction_level="省长",
    )

    assert score.points == 0
    assert score.instruction_bonus == 0
    assert score.outlet_level == ""
    assert not score.matched
    assert score.rules_name == "2026"
    assert score.explanation == (
        "采用单位“某某报社”和刊物“某某内参”不属于计分规则 2026 的任何级别，记 0 分；"
        "请核对名称，或在计分规则中为其级别补充别名"
    )


def test_unmatched_publication_without_outlet(example_rules: ScoringRules) -> None:
    score = score_adoption(example_rules, day=DAY_2026, outlet=" ", publication="某某内参")

    assert score.points == 0
    assert score.explanation.startswith("未写采用单位，刊物“某某内参”不属于计分规则 2026 的任何级别")


def test_unmatched_outlet_without_publication(example_rules: ScoringRules) -> None:
    score = score_adoption(example_rules, day=DAY_2026, outlet="某某报社")

    assert score.points == 0
    assert score.explanation == (
        "采用单位“某某报社”不属于计分规则 2026 的任何级别，记 0 分；请核对名称，或在计分规则中为其级别补充别名"
    )


# ----- instructions (批示) -----


@pytest.mark.parametrize(
    ("written", "level", "bonus"),
    [
        ("国家领导人", "国家领导人", Decimal(10)),
        ("中央领导", "国家领导人", Decimal(10)),
        ("省委省政府主要领导", "省委省政府主要领导", Decimal(5)),
        ("省委书记", "省委省政府主要领导", Decimal(5)),
        ("省长", "省委省政府主要领导", Decimal(5)),
        ("主要领导", "省委省政府主要领导", Decimal(5)),
        ("省领导", "省领导", Decimal(3)),
        ("副省长", "省领导", Decimal(3)),
        (" 副 省长 ", "省领导", Decimal(3)),
    ],
)
def test_instruction_levels(example_rules: ScoringRules, written: str, level: str, bonus: Decimal) -> None:
    score = score_adoption(example_rules, day=DAY_2026, outlet="国办", instructed=True, instruction_level=written)

    assert score.instruction_level == level
    assert score.instruction_bonus == bonus
    assert score.points == 10 + bonus


def test_instruction_explanation(example_rules: ScoringRules) -> None:
    score = score_adoption(
        example_rules, day=DAY_2026, outlet="省委办公厅", instructed=True, instruction_level="副省长"
    )

    assert score.points == 8
    assert score.explanation == "省委办公厅（省委办公厅/省政府办公厅）5 分 + 批示（省领导）3 分 = 8 分"


def test_instruction_without_level_gets_default(two_periods: ScoringRules) -> None:
    score = score_adoption(two_periods, day=DAY_2026, outlet="国办", instructed=True)

    assert score.instruction_level == ""
    assert score.instruction_bonus == 2
    assert score.points == 12
    assert score.explanation == "国办 10 分 + 批示（未注明领导级别）2 分 = 12 分"


def test_instruction_unlisted_level_gets_default(two_periods: ScoringRules) -> None:
    score = score_adoption(two_periods, day=DAY_2026, outlet="国办", instructed=True, instruction_level="处长")

    assert score.instruction_level == ""
    assert score.instruction_bonus == 2
    assert score.points == 12
    assert "“处长”不是已列出的领导级别，按默认" in score.explanation


def test_level_without_instructed_rejected(example_rules: ScoringRules) -> None:
    with pytest.raises(ValueError, match="instructed"):
        score_adoption(example_rules, day=DAY_2026, outlet="国办", instruction_level="省领导")


# ----- periods -----


def test_rule_sets_sorted_by_start(two_periods: ScoringRules) -> None:
    assert [rule_set.name for rule_set in two_periods.rule_sets] == ["2026", "2027"]


def test_rules_for_period_edges(two_periods: ScoringRules) -> None:
    first = two_periods.rules_for(date(2026, 1, 1))
    last = two_periods.rules_for(date(2026, 12, 31))
    next_year = two_periods.rules_for(date(2027, 1, 1))

    assert first is not None
    assert first.name == "2026"
    assert last is not None
    assert last.name == "2026"
    assert next_year is not None
    assert next_year.name == "2027"
    assert two_periods.rules_for(date(2025, 12, 31)) is None
    assert two_periods.rules_for(date(2028, 1, 1)) is None


def test_other_period_uses_its_points(two_periods: ScoringRules) -> None:
    in_2026 = score_adoption(two_periods, day=date(2026, 12, 31), outlet="省委办公厅", instructed=True)
    in_2027 = score_adoption(two_periods, day=date(2027, 1, 1), outlet="省委办公厅", instructed=True)

    assert in_2026.points == 7
    assert in_2026.rules_name == "2026"
    assert in_2027.points == Decimal("8.0")
    assert in_2027.outlet_points == Decimal("6.5")
    assert in_2027.instruction_bonus == Decimal("1.5")
    assert in_2027.rules_name == "2027"
    assert in_2027.explanation == "省委办公厅（两办）6.5 分 + 批示（未注明领导级别）1.5 分 = 8 分"


def test_level_missing_in_other_period(two_periods: ScoringRules) -> None:
    # 2027 lists no instruction levels, so 省领导 falls back to that year's default bonus.
    score = score_adoption(
        two_periods, day=date(2027, 5, 1), outlet="国办", instructed=True, instruction_level="省领导"
    )

    assert score.instruction_bonus == Decimal("1.5")
    assert score.points == Decimal("13.5")


def test_day_outside_periods_scores_zero(two_periods: ScoringRules) -> None:
    score = score_adoption(two_periods, day=date(2025, 7, 1), outlet="国办", instructed=True)

    assert score.points == 0
    assert score.instruction_bonus == 0
    assert score.rules_name == ""
    assert not score.matched
    assert score.explanation == "2025-07-01 没有生效的计分规则，记 0 分；请在计分规则文件中补充包含该日期的规则"


def test_gap_between_periods(tmp_path: Path) -> None:
    text = TWO_PERIODS.replace("valid_from = 2027-01-01", "valid_from = 2027-02-01")
    rules = load_scoring_rules(write_rules(tmp_path, text))

    score = score_adoption(rules, day=date(2027, 1, 15), outlet="国办")

    assert score.points == 0
    assert "没有生效的计分规则" in score.explanation


# ----- penalties -----


def test_penalty_from_example(example_rules: ScoringRules) -> None:
    assert penalty(example_rules, day=DAY_2026, kind=PenaltyKind.MISSED_COMMISSION) == Decimal(-2)
    assert penalty(example_rules, day=DAY_2026, kind="missed_commission") == Decimal(-2)


def test_penalty_by_period(two_periods: ScoringRules) -> None:
    # 2026 defines no penalties; 2027 deducts 3.
    assert penalty(two_periods, day=date(2026, 6, 1), kind=PenaltyKind.MISSED_COMMISSION) == 0
    assert penalty(two_periods, day=date(2027, 6, 1), kind=PenaltyKind.MISSED_COMMISSION) == Decimal(-3)
    assert penalty(two_periods, day=date(2030, 6, 1), kind=PenaltyKind.MISSED_COMMISSION) == 0


def test_penalty_unknown_kind_rejected(example_rules: ScoringRules) -> None:
    with pytest.raises(ValueError, match="late_report"):
        penalty(example_rules, day=DAY_2026, kind="late_report")


def test_format_points() -> None:
    assert format_points(Decimal("10")) == "10"
    assert format_points(Decimal("8.0")) == "8"
    assert format_points(Decimal("0.50")) == "0.5"
    assert format_points(Decimal("-2")) == "-2"
    assert format_points(Decimal("-0")) == "0"


# ----- file errors -----


def test_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "absent.toml"

    with pytest.raises(ConfigError) as caught:
        load_scoring_rules(missing)

    assert caught.value.problems == [f"计分规则文件不存在：{missing}"]


def test_gbk_file_rejected(tmp_path: Path) -> None:
    path = tmp_path / "scoring.toml"
    path.write_bytes(TWO_PERIODS.encode("gbk"))

    with pytest.raises(ConfigError) as caught:
        load_scoring_rules(path)

    assert caught.value.problems == [f"计分规则文件 {path} 不是 UTF-8 编码：请用 UTF-8 编码另存后再试"]


def test_directory_unreadable(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_scoring_rules(tmp_path)

    assert len(caught.value.problems) == 1
    assert caught.value.problems[0].startswith(f"无法读取计分规则文件 {tmp_path}：")


def test_invalid_toml(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_scoring_rules(write_rules(tmp_path, "[[rule_sets]]\nname = \n"))

    assert len(caught.value.problems) == 1
    assert "不是合法的 TOML" in caught.value.problems[0]


def test_file_name_starts_messages(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_scoring_rules(write_rules(tmp_path, "rule_sets = []\n"))

    assert caught.value.problems == ["scoring.toml：缺少 [[rule_sets]]，至少需要一组计分规则"]


def test_valid_dict_loads() -> None:
    rules = scoring_rules_from_dict({"rule_sets": [valid_rule_set()]})

    assert [rule_set.name for rule_set in rules.rule_sets] == ["2026"]


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({}, "scoring.toml：缺少 [[rule_sets]]，至少需要一组计分规则"),
        ({"rule_sets": {"name": "2026"}}, "scoring.toml：rule_sets 应写成 [[rule_sets]]（两层方括号），每组规则一个"),
        ({"rule_sets": ["2026"]}, "scoring.toml 第 1 组 [[rule_sets]]：应为表"),
    ],
)
def test_file_shape_errors(data: dict[str, object], expected: str) -> None:
    assert only_problem(data) == expected


def test_unknown_top_level_key() -> None:
    problem = only_problem({"rule_set": [], "rule_sets": [valid_rule_set()]})

    assert problem == "scoring.toml：未知的键 rule_set（请检查拼写，或对照 examples/scoring.toml）"


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"valid_form": date(2026, 1, 1)}, "scoring.toml 第 1 组 [[rule_sets]]（2026）：未知的键 valid_form"),
        ({"name": 2026}, "name 应为非空字符串"),
        ({"name": "  "}, "name 应为非空字符串"),
        ({"valid_from": "2026-01-01"}, "valid_from 应为不带引号、不带时间的日期"),
        ({"valid_until": "2026-12-31"}, "valid_until 应为不带引号、不带时间的日期"),
        ({"valid_from": datetime(2026, 1, 1, 8, 0)}, "实际为 日期时间"),
        ({"valid_from": date(2027, 1, 1)}, "valid_from（2027-01-01）晚于 valid_until（2026-12-31）"),
        ({"default_instruction_bonus": "3"}, "default_instruction_bonus 应为数字（不加引号"),
        ({"default_instruction_bonus": True}, "default_instruction_bonus 应为数字"),
        ({"default_instruction_bonus": float("nan")}, "default_instruction_bonus 应为数字"),
        ({"default_instruction_bonus": -1}, "default_instruction_bonus 不能为负数"),
        ({"default_instruction_bonus": 0.125}, "default_instruction_bonus 最多保留 2 位小数"),
        ({"outlet_levels": []}, "[[rule_sets.outlet_levels]] 至少需要一个级别"),
        ({"outlet_levels": {"name": "国办"}}, "outlet_levels 应写成 [[rule_sets.outlet_levels]] 表数组"),
        ({"outlet_levels": ["国办"]}, "第 1 个 [[rule_sets.outlet_levels]]：应为表"),
        ({"outlet_levels": [{"name": "国办", "points": 10, "point": 10}]}, "（国办）：未知的键 point"),
        ({"outlet_levels": [{"name": "国办", "points": "10"}]}, "（国办）：points 应为数字"),
        ({"outlet_levels": [{"points": 10}]}, "第 1 个 [[rule_sets.outlet_levels]]：缺少 name"),
        (
            {"outlet_levels": [{"name": "国办", "points": 10, "aliases": "国务院办公厅"}]},
            "aliases 应为非空字符串的数组",
        ),
        (
            {"outlet_levels": [{"name": "国办", "points": 10, "aliases": ["", "国务院办公厅"]}]},
            "aliases 应为非空字符串",
        ),
        ({"instruction_levels": [{"name": "省领导", "bonus": 3, "points": 3}]}, "（省领导）：未知的键 points"),
        ({"instruction_levels": [{"name": "省领导", "bonus": -3}]}, "（省领导）：bonus 不能为负数"),
        (
            {"penalties": {"missed_commision": -2}},
            "未知的扣分项 penalties.missed_commision，可用的扣分项为：missed_commission",
        ),
        ({"penalties": {"missed_commission": 2}}, "missed_commission 应为负数或 0（扣分）"),
        ({"penalties": {"missed_commission": "-2"}}, "missed_commission 应为数字"),
        ({"penalties": [-2]}, "penalties 应写成 [rule_sets.penalties] 表"),
    ],
)
def test_rule_set_error(changes: dict[str, object], expected: str) -> None:
    problem = only_problem({"rule_sets": [valid_rule_set(**changes)]})

    assert problem.startswith("scoring.toml 第 1 组 [[rule_sets]]")
    assert expected in problem


@pytest.mark.parametrize("key", ["name", "valid_from", "valid_until", "default_instruction_bonus", "outlet_levels"])
def test_missing_required_key(key: str) -> None:
    table = valid_rule_set()
    del table[key]

    problem = only_problem({"rule_sets": [table]})

    assert f"缺少 {key}" in problem or f"缺少 [[rule_sets.{key}]]" in problem


def test_optional_keys_may_be_absent() -> None:
    table = valid_rule_set()
    del table["instruction_levels"]
    del table["penalties"]

    rules = scoring_rules_from_dict({"rule_sets": [table]})

    assert rules.rule_sets[0].instruction_levels == ()
    assert penalty(rules, day=DAY_2026, kind=PenaltyKind.MISSED_COMMISSION) == 0


def test_name_in_two_levels_rejected() -> None:
    levels = [
        {"name": "省委办公厅/省政府办公厅", "points": 5, "aliases": ["两办"]},
        {"name": "省级信息刊物", "points": 3, "aliases": ["四川信息", "两 办"]},
    ]

    problem = only_problem({"rule_sets": [valid_rule_set(outlet_levels=levels)]})

    assert "（省级信息刊物）：名称 '两 办' 已属于级别 '省委办公厅/省政府办公厅'" in problem


def test_leader_in_two_levels_rejected() -> None:
    levels = [
        {"name": "省领导", "bonus": 3, "aliases": ["省长"]},
        {"name": "主要领导", "bonus": 5, "aliases": ["省长"]},
    ]

    problem = only_problem({"rule_sets": [valid_rule_set(instruction_levels=levels)]})

    assert "（主要领导）：名称 '省长' 已属于级别 '省领导'" in problem


def test_overlapping_periods_rejected() -> None:
    first = valid_rule_set(name="2026")
    second = valid_rule_set(name="2026下半年", valid_from=date(2026, 7, 1), valid_until=date(2027, 6, 30))

    problem = only_problem({"rule_sets": [second, first]})

    assert problem == (
        "scoring.toml：计分规则 2026（2026-01-01 至 2026-12-31）与 2026下半年（2026-07-01 至 2027-06-30）"
        "的有效期重叠；同一天只能有一组规则生效"
    )


def test_periods_sharing_one_day_overlap() -> None:
    first = valid_rule_set(name="2026")
    second = valid_rule_set(name="2027", valid_from=date(2026, 12, 31), valid_until=date(2027, 12, 31))

    assert "的有效期重叠" in only_problem({"rule_sets": [first, second]})


def test_every_overlapping_pair_reported() -> None:
    whole = valid_rule_set(name="全年")
    spring = valid_rule_set(name="春", valid_from=date(2026, 3, 1), valid_until=date(2026, 5, 31))
    autumn = valid_rule_set(name="秋", valid_from=date(2026, 9, 1), valid_until=date(2026, 11, 30))

    problems = problems_of({"rule_sets": [whole, spring, autumn]})

    assert len(problems) == 2
    assert "全年（2026-01-01 至 2026-12-31）与 春（2026-03-01 至 2026-05-31）" in problems[0]
    assert "全年（2026-01-01 至 2026-12-31）与 秋（2026-09-01 至 2026-11-30）" in problems[1]


def test_adjacent_periods_accepted() -> None:
    first = valid_rule_set(name="2026")
    second = valid_rule_set(name="2027", valid_from=date(2027, 1, 1), valid_until=date(2027, 12, 31))

    rules = scoring_rules_from_dict({"rule_sets": [first, second]})

    assert len(rules.rule_sets) == 2


def test_repeated_rule_set_name_rejected() -> None:
    first = valid_rule_set(name="2026")
    second = valid_rule_set(name="2026", valid_from=date(2027, 1, 1), valid_until=date(2027, 12, 31))

    problem = only_problem({"rule_sets": [first, second]})

    assert problem == "scoring.toml：计分规则名称 '2026' 重复，每组规则的 name 应不同"


def test_several_problems_reported_at_once(tmp_path: Path) -> None:
    text = """\
mode = "strict"

[[rule_sets]]
name = "2026"
valid_from = "2026-01-01"
valid_until = 2026-12-31
default_instruction_bonus = "3"

[[rule_sets.outlet_levels]]
name = "国办"
points = "十"

[rule_sets.penalties]
missed_commission = 2
late = -1

[[rule_sets]]
name = "2027"
valid_from = 2027-01-01
valid_until = 2027-12-31
default_instruction_bonus = 2
colour = "red"

[[rule_sets.outlet_levels]]
name = "国办"
points = 10
"""
    with pytest.raises(ConfigError) as caught:
        load_scoring_rules(write_rules(tmp_path, text))
    problems = caught.value.problems

    assert len(problems) == 7, problems
    assert problems[0].startswith("scoring.toml：未知的键 mode")
    first = "scoring.toml 第 1 组 [[rule_sets]]（2026）："
    assert problems[1].startswith(first + "valid_from 应为不带引号")
    assert problems[2].startswith(first + "default_instruction_bonus 应为数字")
    assert problems[3].startswith(
        "scoring.toml 第 1 组 [[rule_sets]]（2026） 第 1 个 [[rule_sets.outlet_levels]]（国办）：points"
    )
    assert "未知的扣分项 penalties.late" in problems[4]
    assert "missed_commission 应为负数或 0（扣分）" in problems[5]
    assert problems[6] == "scoring.toml 第 2 组 [[rule_sets]]（2027）：未知的键 colour"
    assert str(caught.value) == "\n".join(problems)
