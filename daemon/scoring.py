"""Adoption scoring rules (采用计分规则), loaded from a TOML file, and the points of one adoption.

The file contains rule sets, each valid for a period of dates. An adoption is scored with the rule set
in force on its adoption date: points of the outlet's level, plus a bonus when a leader wrote an
instruction (批示) on the item. This module is pure: it reads one file and computes, nothing else.
"""

from __future__ import annotations

import enum
import math
import tomllib
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from types import MappingProxyType
from typing import Protocol, TypeVar

from daemon.errors import ConfigError

# Points are stored in a NUMERIC(8, 2) column, so the file may not use finer values than this.
MAX_DECIMAL_PLACES = 2
ZERO = Decimal(0)


class PenaltyKind(enum.StrEnum):
    """A deduction the rules may define, named by its key under [rule_sets.penalties]."""

    MISSED_COMMISSION = "missed_commission"  # a commissioned piece (约稿) was not delivered


@dataclass(frozen=True)
class OutletLevel:
    """A level of outlets (采用单位或刊物) that all earn the same points per adoption."""

    name: str
    points: Decimal
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True)
class InstructionLevel:
    """A level of instructing leaders (批示领导) and the bonus an instruction at that level adds."""

    name: str
    bonus: Decimal
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True)
class RuleSet:
    """The rules in force from ``valid_from`` to ``valid_until``, both days included."""

    name: str
    valid_from: date
    valid_until: date
    outlet_levels: tuple[OutletLevel, ...]
    instruction_levels: tuple[InstructionLevel, ...]
    default_instruction_bonus: Decimal
    penalties: Mapping[PenaltyKind, Decimal]

    def covers(self, day: date) -> bool:
        return self.valid_from <= day <= self.valid_until

    def match_outlet(self, text: str) -> OutletLevel | None:
        """Return the outlet level whose name or an alias equals ``text`` after normalisation."""
        return _match(self.outlet_levels, text)

    def match_instruction_level(self, text: str) -> InstructionLevel | None:
        """Return the leader level whose name or an alias equals ``text`` after normalisation."""
        return _match(self.instruction_levels, text)

    def penalty(self, kind: PenaltyKind) -> Decimal:
        """Return the points (negative or zero) of one ``kind`` of penalty, or zero when it is not defined."""
        return self.penalties.get(kind, ZERO)


@dataclass(frozen=True)
class ScoringRules:
    """Every rule set of a scoring file, ordered by start date, with periods that do not overlap."""

    rule_sets: tuple[RuleSet, ...]
    path: Path | None = None

    def rules_for(self, day: date) -> RuleSet | None:
        """Return the rule set in force on ``day``, or None when no period includes it."""
        for rule_set in self.rule_sets:
            if rule_set.covers(day):
                return rule_set
        return None


@dataclass(frozen=True)
class Score:
    """The points of one adoption and how they were reached.

    ``outlet_level`` and ``rules_name`` are empty when nothing matched; ``explanation`` is the
    Chinese sentence shown to the office.
    """

    points: Decimal
    outlet_level: str
    outlet_points: Decimal
    instruction_level: str
    instruction_bonus: Decimal
    rules_name: str
    explanation: str

    @property
    def matched(self) -> bool:
        """Return whether a rule set was in force and the outlet or publication matched a level."""
        return bool(self.outlet_level)


class _NamedLevel(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def aliases(self) -> tuple[str, ...]: ...


_Level = TypeVar("_Level", bound=_NamedLevel)


def normalize_name(text: str) -> str:
    """Return the form in which names are compared.

    NFKC folds full-width letters, digits and spaces to half-width. Whitespace, invisible format
    characters (such as U+200B from copied text) and title marks 《》〈〉 are then removed, and
    Latin letters are case-folded.
    """
    folded = unicodedata.normalize("NFKC", text)
    characters = [ch for ch in folded if not ch.isspace() and unicodedata.category(ch) != "Cf" and ch not in "《》〈〉"]
    return "".join(characters).casefold()


def _match(levels: tuple[_Level, ...], text: str) -> _Level | None:
    key = normalize_name(text)
    if not key:
        return None
    for level in levels:
        if key in {normalize_name(name) for name in (level.name, *level.aliases)}:
            return level
    return None


def format_points(value: Decimal) -> str:
    """Return points as office staff write them: 5, 0.5, -2 (no trailing zeros, no exponent)."""
    text = f"{value.normalize():f}"
    return "0" if text == "-0" else text


def score_adoption(
    rules: ScoringRules,
    *,
    day: date,
    outlet: str,
    publication: str = "",
    instructed: bool = False,
    instruction_level: str = "",
) -> Score:
    """Score one adoption on ``day`` with the rule set in force then.

    The outlet is matched against the outlet levels first; only when it matches none is the
    publication tried. An instruction adds the bonus of its leader level, or the rule set's
    default bonus when the level is empty or not listed. No rule set in force, or no matching
    level, gives 0 points (and no bonus) with an explanation saying why.

    Raises ValueError when ``instruction_level`` is given without ``instructed``.
    """
    if instruction_level.strip() and not instructed:
        raise ValueError("instruction_level is given but instructed is false")

    rule_set = rules.rules_for(day)
    if rule_set is None:
        return _zero_score("", f"{day.isoformat()} 没有生效的计分规则，记 0 分；请在计分规则文件中补充包含该日期的规则")

    displayed, level = outlet.strip(), rule_set.match_outlet(outlet)
    if level is None and publication.strip():
        displayed, level = publication.strip(), rule_set.match_outlet(publication)
    if level is None:
        named = f"采用单位“{outlet.strip()}”" if outlet.strip() else "未写采用单位，"
        if publication.strip():
            named += f"和刊物“{publication.strip()}”" if outlet.strip() else f"刊物“{publication.strip()}”"
        return _zero_score(
            rule_set.name,
            f"{named}不属于计分规则 {rule_set.name} 的任何级别，记 0 分；请核对名称，或在计分规则中为其级别补充别名",
        )

    terms = [f"{_label(displayed, level.name)}{format_points(level.points)} 分"]
    leader_name, bonus = "", ZERO
    if instructed:
        leader_name, bonus, term = _instruction_term(rule_set, instruction_level)
        terms.append(term)
    total = level.points + bonus
    explanation = " + ".join(terms)
    if len(terms) > 1:
        explanation += f" = {format_points(total)} 分"
    return Score(
        points=total,
        outlet_level=level.name,
        outlet_points=level.points,
        instruction_level=leader_name,
        instruction_bonus=bonus,
        rules_name=rule_set.name,
        explanation=explanation,
    )


def _zero_score(rules_name: str, explanation: str) -> Score:
    return Score(ZERO, "", ZERO, "", ZERO, rules_name, explanation)


def _label(written: str, level_name: str) -> str:
    """Return the outlet as written, then its level name in brackets when the two differ.

    The result ends where the points follow: after a space, or after the closing bracket.
    """
    if normalize_name(written) == normalize_name(level_name):
        return f"{level_name} "
    return f"{written}（{level_name}）"


def _instruction_term(rule_set: RuleSet, written: str) -> tuple[str, Decimal, str]:
    """Return the leader level name, the bonus and the explanation term of one instruction."""
    default = format_points(rule_set.default_instruction_bonus)
    if not written.strip():
        return "", rule_set.default_instruction_bonus, f"批示（未注明领导级别）{default} 分"
    level = rule_set.match_instruction_level(written)
    if level is None:
        unlisted = f"批示（“{written.strip()}”不是已列出的领导级别，按默认）{default} 分"
        return "", rule_set.default_instruction_bonus, unlisted
    return level.name, level.bonus, f"批示（{level.name}）{format_points(level.bonus)} 分"


def penalty(rules: ScoringRules, *, day: date, kind: PenaltyKind | str) -> Decimal:
    """Return the points (zero or negative) of a ``kind`` of penalty on ``day``.

    Returns zero when no rule set is in force or it defines no such penalty. Raises ValueError
    when ``kind`` is not a PenaltyKind value.
    """
    rule_set = rules.rules_for(day)
    if rule_set is None:
        return ZERO
    return rule_set.penalty(PenaltyKind(kind))


def load_scoring_rules(path: Path) -> ScoringRules:
    """Read a scoring rules file, or raise ConfigError listing every problem found in it."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ConfigError([f"计分规则文件不存在：{path}"]) from exc
    except UnicodeDecodeError as exc:
        raise ConfigError([f"计分规则文件 {path} 不是 UTF-8 编码：请用 UTF-8 编码另存后再试"]) from exc
    except OSError as exc:
        raise ConfigError([f"无法读取计分规则文件 {path}：{exc}"]) from exc
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"计分规则文件 {path} 不是合法的 TOML：{exc}"]) from exc
    rules = scoring_rules_from_dict(data, source=path.name)
    return ScoringRules(rules.rule_sets, path=path.resolve())


def scoring_rules_from_dict(data: Mapping[str, object], *, source: str = "计分规则") -> ScoringRules:
    """Validate parsed TOML and return the rules, or raise ConfigError listing every problem.

    ``source`` begins each message and so names the file the office has to correct.
    """
    problems: list[str] = []
    for key in sorted(set(data) - {"rule_sets"}):
        problems.append(f"{source}：未知的键 {key}（请检查拼写，或对照 examples/scoring.toml）")

    entries = data.get("rule_sets")
    if isinstance(entries, dict):
        problems.append(f"{source}：rule_sets 应写成 [[rule_sets]]（两层方括号），每组规则一个")
        raise ConfigError(problems)
    if not isinstance(entries, list) or not entries:
        problems.append(f"{source}：缺少 [[rule_sets]]，至少需要一组计分规则")
        raise ConfigError(problems)

    rule_sets: list[RuleSet] = []
    for index, entry in enumerate(entries, start=1):
        where = f"{source} 第 {index} 组 [[rule_sets]]"
        if not isinstance(entry, dict):
            problems.append(f"{where}：应为表")
            continue
        rule_set = _build_rule_set(entry, where, problems)
        if rule_set is not None:
            rule_sets.append(rule_set)

    _check_rule_sets(rule_sets, source, problems)
    if problems:
        raise ConfigError(problems)
    return ScoringRules(tuple(sorted(rule_sets, key=lambda rule_set: rule_set.valid_from)))


def _check_rule_sets(rule_sets: list[RuleSet], source: str, problems: list[str]) -> None:
    """Report repeated names and every pair of overlapping periods."""
    seen: set[str] = set()
    for rule_set in rule_sets:
        if rule_set.name in seen:
            problems.append(f"{source}：计分规则名称 {rule_set.name!r} 重复，每组规则的 name 应不同")
        seen.add(rule_set.name)

    ordered = sorted(rule_sets, key=lambda rule_set: rule_set.valid_from)
    for position, first in enumerate(ordered):
        for second in ordered[position + 1 :]:
            if second.valid_from > first.valid_until:
                break
            problems.append(
                f"{source}：计分规则 {first.name}（{_period(first)}）与 {second.name}（{_period(second)}）"
                "的有效期重叠；同一天只能有一组规则生效"
            )


def _period(rule_set: RuleSet) -> str:
    return f"{rule_set.valid_from.isoformat()} 至 {rule_set.valid_until.isoformat()}"


_RULE_SET_KEYS = {
    "name",
    "valid_from",
    "valid_until",
    "default_instruction_bonus",
    "outlet_levels",
    "instruction_levels",
    "penalties",
}


def _build_rule_set(entry: dict[str, object], where: str, problems: list[str]) -> RuleSet | None:
    """Build one rule set from its table and record every problem. Return None if any was found."""
    before = len(problems)
    name = _read_name(entry, "name", where, problems)
    if name:
        where = f"{where}（{name}）"
    for key in sorted(set(entry) - _RULE_SET_KEYS):
        problems.append(f"{where}：未知的键 {key}")

    valid_from = _read_date(entry, "valid_from", where, problems)
    valid_until = _read_date(entry, "valid_until", where, problems)
    if valid_from and valid_until and valid_from > valid_until:
        problems.append(f"{where}：valid_from（{valid_from}）晚于 valid_until（{valid_until}）")

    default_bonus = _read_points(entry, "default_instruction_bonus", where, problems, sign=1)
    outlet_levels = _read_levels(entry, "outlet_levels", "points", where, problems)
    instruction_levels = _read_levels(entry, "instruction_levels", "bonus", where, problems, required=False)
    penalties = _read_penalties(entry.get("penalties", {}), where, problems)

    if len(problems) > before or valid_from is None or valid_until is None or default_bonus is None:
        return None
    return RuleSet(
        name=name,
        valid_from=valid_from,
        valid_until=valid_until,
        outlet_levels=tuple(OutletLevel(n, p, a) for n, p, a in outlet_levels),
        instruction_levels=tuple(InstructionLevel(n, p, a) for n, p, a in instruction_levels),
        default_instruction_bonus=default_bonus,
        penalties=MappingProxyType(penalties),
    )


def _read_name(table: Mapping[str, object], key: str, where: str, problems: list[str]) -> str:
    if key not in table:
        problems.append(f"{where}：缺少 {key}")
        return ""
    value = table[key]
    if not isinstance(value, str) or not value.strip():
        problems.append(f'{where}：{key} 应为非空字符串（加引号，例如 {key} = "2026"），实际为 {_describe(value)}')
        return ""
    return value.strip()


def _read_date(table: Mapping[str, object], key: str, where: str, problems: list[str]) -> date | None:
    if key not in table:
        problems.append(f"{where}：缺少 {key}（日期，例如 {key} = 2026-01-01）")
        return None
    value = table[key]
    # TOML times of day load as datetime, which is a subclass of date: reject them explicitly.
    if not isinstance(value, date) or isinstance(value, datetime):
        problems.append(f"{where}：{key} 应为不带引号、不带时间的日期，例如 2026-01-01，实际为 {_describe(value)}")
        return None
    return value


def _read_points(
    table: Mapping[str, object], key: str, where: str, problems: list[str], *, sign: int
) -> Decimal | None:
    """Read a number of points; ``sign`` 1 requires it to be >= 0 and -1 to be <= 0."""
    if key not in table:
        problems.append(f"{where}：缺少 {key}（分值）")
        return None
    value = table[key]
    # bool is a subclass of int, and TOML allows nan and inf floats: none of them are points.
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        problems.append(f"{where}：{key} 应为数字（不加引号，例如 {key} = 5），实际为 {_describe(value)}")
        return None
    # str() keeps a float as written (0.1, not 0.1000000000000000055511151231257827).
    points = Decimal(str(value))
    exponent = points.normalize().as_tuple().exponent
    if isinstance(exponent, int) and -exponent > MAX_DECIMAL_PLACES:
        problems.append(f"{where}：{key} 最多保留 {MAX_DECIMAL_PLACES} 位小数，实际为 {value}")
        return None
    if points * sign < 0:
        rule = "不能为负数" if sign > 0 else "应为负数或 0（扣分）"
        problems.append(f"{where}：{key} {rule}，实际为 {value}")
        return None
    return points


def _read_aliases(table: Mapping[str, object], where: str, problems: list[str]) -> tuple[str, ...]:
    value = table.get("aliases", [])
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        problems.append(f'{where}：aliases 应为非空字符串的数组，例如 aliases = ["国办"]，实际为 {_describe(value)}')
        return ()
    return tuple(v.strip() for v in value)


def _read_levels(
    entry: Mapping[str, object],
    key: str,
    points_key: str,
    where: str,
    problems: list[str],
    *,
    required: bool = True,
) -> list[tuple[str, Decimal, tuple[str, ...]]]:
    """Read the array of tables ``key`` into (name, points, aliases) and check names are unique."""
    if key not in entry:
        if required:
            problems.append(f"{where}：缺少 [[rule_sets.{key}]]")
        return []
    tables = entry[key]
    if not isinstance(tables, list):
        problems.append(f"{where}：{key} 应写成 [[rule_sets.{key}]] 表数组")
        return []
    if required and not tables:
        problems.append(f"{where}：[[rule_sets.{key}]] 至少需要一个级别")
        return []

    levels: list[tuple[str, Decimal, tuple[str, ...]]] = []
    owners: dict[str, str] = {}
    for index, table in enumerate(tables, start=1):
        level_where = f"{where} 第 {index} 个 [[rule_sets.{key}]]"
        if not isinstance(table, dict):
            problems.append(f"{level_where}：应为表")
            continue
        name = _read_name(table, "name", level_where, problems)
        if name:
            level_where = f"{level_where}（{name}）"
        for unknown in sorted(set(table) - {"name", points_key, "aliases"}):
            problems.append(f"{level_where}：未知的键 {unknown}")
        points = _read_points(table, points_key, level_where, problems, sign=1)
        aliases = _read_aliases(table, level_where, problems)
        # A name written in two levels would match whichever comes first, so the office must choose one.
        written_names = {normalize_name(n): n for n in (name, *aliases) if n} if name else {}
        for written in written_names.values():
            owner = owners.setdefault(normalize_name(written), name)
            if owner != name:
                problems.append(f"{level_where}：名称 {written!r} 已属于级别 {owner!r}，同一名称只能属于一个级别")
        if name and points is not None:
            levels.append((name, points, aliases))
    return levels


def _read_penalties(value: object, where: str, problems: list[str]) -> dict[PenaltyKind, Decimal]:
    if not isinstance(value, dict):
        problems.append(f"{where}：penalties 应写成 [rule_sets.penalties] 表，实际为 {_describe(value)}")
        return {}
    penalties: dict[PenaltyKind, Decimal] = {}
    known = "、".join(kind.value for kind in PenaltyKind)
    for key in sorted(value):
        try:
            kind = PenaltyKind(key)
        except ValueError:
            problems.append(f"{where}：未知的扣分项 penalties.{key}，可用的扣分项为：{known}")
            continue
        points = _read_points(value, key, f"{where} 的 penalties", problems, sign=-1)
        if points is not None:
            penalties[kind] = points
    return penalties


def _describe(value: object) -> str:
    kinds = {str: "字符串", int: "整数", bool: "布尔值", float: "数字", list: "数组", dict: "表"}
    kinds |= {date: "日期", datetime: "日期时间"}
    return f"{kinds.get(type(value), type(value).__name__)} {value!r}"
