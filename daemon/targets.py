"""Yearly targets per unit (年度目标: items submitted, items adopted, points), loaded from a TOML file.

The file contains one ``[[targets]]`` table per unit and year. A unit is named by its code or by a
name or alias from the units file. Each target may leave out any of the three figures, and a unit
without a table has no target that year. Like the other loaders, this one reports every problem
at once.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from types import MappingProxyType

from daemon.errors import ConfigError
from daemon.units import UnitDirectory

# Points are stored as NUMERIC(8, 2), so a points target may not be finer than this.
MAX_DECIMAL_PLACES = 2
_KEYS = {"year", "unit", "submitted", "adopted", "points"}
_FIRST_YEAR, _LAST_YEAR = 2000, 2100


@dataclass(frozen=True)
class UnitTarget:
    """The targets of one unit for one year; None means no target for that figure."""

    unit_code: str
    year: int
    submitted: int | None = None
    adopted: int | None = None
    points: Decimal | None = None


@dataclass(frozen=True)
class Targets:
    """Every target of a targets file, by year and then by unit code."""

    by_year: Mapping[int, Mapping[str, UnitTarget]] = field(default_factory=lambda: MappingProxyType({}))
    path: Path | None = None

    def for_year(self, year: int) -> Mapping[str, UnitTarget]:
        """Return the targets of ``year`` by unit code (empty when the file sets none for that year)."""
        return self.by_year.get(year, MappingProxyType({}))


def load_targets(path: Path, units: UnitDirectory) -> Targets:
    """Read a targets file, or raise ConfigError listing every problem found in it.

    ``units`` resolves the unit names and codes written in the file.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ConfigError([f"年度目标文件不存在：{path}"]) from exc
    except UnicodeDecodeError as exc:
        raise ConfigError([f"年度目标文件 {path} 不是 UTF-8 编码：请用 UTF-8 编码另存后再试"]) from exc
    except OSError as exc:
        raise ConfigError([f"无法读取年度目标文件 {path}：{exc}"]) from exc
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"年度目标文件 {path} 不是合法的 TOML：{exc}"]) from exc
    targets = targets_from_dict(data, units, source=path.name)
    return Targets(targets.by_year, path=path.resolve())


def targets_from_dict(data: Mapping[str, object], units: UnitDirectory, *, source: str = "年度目标") -> Targets:
    """Validate parsed TOML and return the targets, or raise ConfigError listing every problem.

    ``source`` begins each message and so names the file the office has to correct.
    """
    problems: list[str] = []
    for key in sorted(set(data) - {"targets"}):
        problems.append(f"{source}：未知的键 {key}（请检查拼写，或对照 examples/targets.toml）")

    entries = data.get("targets", [])
    if not isinstance(entries, list):
        problems.append(f"{source}：targets 应写成 [[targets]]（两层方括号），每个单位每年一个")
        raise ConfigError(problems)

    by_year: dict[int, dict[str, UnitTarget]] = {}
    for index, entry in enumerate(entries, start=1):
        where = f"{source} 第 {index} 个 [[targets]]"
        if not isinstance(entry, dict):
            problems.append(f"{where}：应为表")
            continue
        target = _build_target(entry, units, where, problems)
        if target is None:
            continue
        year_targets = by_year.setdefault(target.year, {})
        if target.unit_code in year_targets:
            name = units.units[target.unit_code].name
            problems.append(f"{where}：{name}（{target.unit_code}）{target.year} 年的目标已在前面写过，每年只能写一次")
            continue
        year_targets[target.unit_code] = target

    if problems:
        raise ConfigError(problems)
    frozen = {year: MappingProxyType(per_unit) for year, per_unit in sorted(by_year.items())}
    return Targets(MappingProxyType(frozen))


def _build_target(
    entry: Mapping[str, object], units: UnitDirectory, where: str, problems: list[str]
) -> UnitTarget | None:
    """Build one unit's target and record every problem; return None if any was found."""
    before = len(problems)
    for key in sorted(set(entry) - _KEYS):
        problems.append(f"{where}：未知的键 {key}，可用的键为 year、unit、submitted、adopted、points")

    year = _read_year(entry, where, problems)
    unit_code = _read_unit(entry, units, where, problems)
    submitted = _read_count(entry, "submitted", where, problems)
    adopted = _read_count(entry, "adopted", where, problems)
    points = _read_points(entry, where, problems)
    if not {"submitted", "adopted", "points"} & set(entry):
        problems.append(f"{where}：至少要写 submitted（报送条数）、adopted（采用条数）、points（计分）中的一项")

    if len(problems) > before or year is None or unit_code is None:
        return None
    return UnitTarget(unit_code=unit_code, year=year, submitted=submitted, adopted=adopted, points=points)


def _read_year(entry: Mapping[str, object], where: str, problems: list[str]) -> int | None:
    if "year" not in entry:
        problems.append(f"{where}：缺少 year（年份，例如 year = 2026）")
        return None
    value = entry["year"]
    if isinstance(value, bool) or not isinstance(value, int) or not _FIRST_YEAR <= value <= _LAST_YEAR:
        problems.append(f"{where}：year 应为 {_FIRST_YEAR} 至 {_LAST_YEAR} 之间的整数年份，实际为 {_describe(value)}")
        return None
    return value


def _read_unit(entry: Mapping[str, object], units: UnitDirectory, where: str, problems: list[str]) -> str | None:
    if "unit" not in entry:
        problems.append(f'{where}：缺少 unit（单位代码或名称，例如 unit = "成都市"）')
        return None
    value = entry["unit"]
    if not isinstance(value, str) or not value.strip():
        problems.append(f"{where}：unit 应为单位代码或名称（加引号），实际为 {_describe(value)}")
        return None
    unit = units.get(value.strip()) or units.find_by_name(value)
    if unit is None:
        problems.append(f"{where}：单位名录中没有单位 {value.strip()!r}：请写单位名录中的代码、名称或简称")
        return None
    return unit.code


def _read_count(entry: Mapping[str, object], key: str, where: str, problems: list[str]) -> int | None:
    if key not in entry:
        return None
    value = entry[key]
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        problems.append(f"{where}：{key} 应为不小于 0 的整数（不加引号），实际为 {_describe(value)}")
        return None
    return value


def _read_points(entry: Mapping[str, object], where: str, problems: list[str]) -> Decimal | None:
    if "points" not in entry:
        return None
    value = entry["points"]
    # bool is a subclass of int, and TOML allows nan and inf floats: none of them are points.
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        problems.append(f"{where}：points 应为不小于 0 的数字（不加引号，例如 points = 30），实际为 {_describe(value)}")
        return None
    # str() keeps a float as written (0.1, not 0.1000000000000000055511151231257827).
    points = Decimal(str(value))
    exponent = points.normalize().as_tuple().exponent
    if isinstance(exponent, int) and -exponent > MAX_DECIMAL_PLACES:
        problems.append(f"{where}：points 最多保留 {MAX_DECIMAL_PLACES} 位小数，实际为 {value}")
        return None
    return points


def _describe(value: object) -> str:
    kinds = {str: "字符串", int: "整数", bool: "布尔值", float: "数字", list: "数组", dict: "表"}
    return f"{kinds.get(type(value), type(value).__name__)} {value!r}"
