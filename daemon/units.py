"""Directory of submitting units (报送单位), loaded from a TOML file."""

from __future__ import annotations

import enum
import tomllib
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from daemon.errors import ConfigError


class UnitKind(enum.StrEnum):
    PREFECTURE = "市州"
    DIVISION = "处室"
    AFFILIATED = "直属单位"


@dataclass(frozen=True)
class Unit:
    """One submitting unit and the sender addresses known to belong to it."""

    code: str
    name: str
    kind: UnitKind
    aliases: tuple[str, ...] = ()
    addresses: tuple[str, ...] = ()
    domains: tuple[str, ...] = ()

    @property
    def short_name(self) -> str:
        """Return the shortest of the unit's names, for tables and subjects."""
        return min((self.name, *self.aliases), key=len)


def _name_key(name: str) -> str:
    return "".join(unicodedata.normalize("NFKC", name).split()).lower()


_UNIT_KEYS = {"code", "name", "kind", "aliases", "addresses", "domains"}


@dataclass
class UnitDirectory:
    """Units by code, with case-insensitive lookup by whole address, then by domain."""

    units: dict[str, Unit] = field(default_factory=dict)
    _by_address: dict[str, str] = field(default_factory=dict)
    _by_domain: dict[str, str] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> UnitDirectory:
        """Read a units file; raise ConfigError listing every problem found in it."""
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise ConfigError([f"单位名录文件不存在：{path}"]) from exc
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError([f"单位名录文件 {path} 格式错误：{exc}"]) from exc
        return cls.from_dict(data, source=str(path))

    @classmethod
    def from_dict(cls, data: dict[str, object], *, source: str = "单位名录") -> UnitDirectory:
        """Build a directory from parsed TOML; raise ConfigError listing every problem."""
        problems: list[str] = []
        directory = cls()
        entries = data.get("units", [])
        if not isinstance(entries, list):
            raise ConfigError([f"{source}：units 应为 [[units]] 表数组"])
        for index, entry in enumerate(entries, start=1):
            where = f"{source} 第 {index} 个 [[units]]"
            if not isinstance(entry, dict):
                problems.append(f"{where}：应为表")
                continue
            unit = _unit_from_entry(entry, where, problems)
            if unit is not None:
                directory._add(unit, where, problems)
        if problems:
            raise ConfigError(problems)
        return directory

    def _add(self, unit: Unit, where: str, problems: list[str]) -> None:
        if unit.code in self.units:
            problems.append(f"{where}：单位代码 {unit.code!r} 重复")
        else:
            self.units[unit.code] = unit
        for address in unit.addresses:
            key = address.strip().lower()
            owner = self._by_address.get(key)
            if owner is not None and owner != unit.code:
                problems.append(f"{where}：地址 {address} 已属于单位 {owner}")
            self._by_address[key] = unit.code
        for domain in unit.domains:
            key = domain.strip().lower().lstrip("@")
            owner = self._by_domain.get(key)
            if owner is not None and owner != unit.code:
                problems.append(f"{where}：域名 {domain} 已属于单位 {owner}")
            self._by_domain[key] = unit.code

    def add_address(self, code: str, address: str) -> None:
        """Attach one more sender address to a unit (e.g. one registered by the office)."""
        if code not in self.units:
            raise KeyError(code)
        self._by_address[address.strip().lower()] = code

    def lookup(self, address: str | None, *, extra: Mapping[str, str] | None = None) -> Unit | None:
        """Return the unit that sends from ``address``: whole address first, then its domain.

        ``extra`` maps more whole addresses to unit codes (those the office added with 登记); they
        come after the file's own addresses and before its domains.
        """
        if not address:
            return None
        key = address.strip().lower()
        code = self._by_address.get(key)
        if code is None and extra:
            code = extra.get(key)
        if code is None and "@" in key:
            code = self._by_domain.get(key.rsplit("@", 1)[1])
        return self.units.get(code) if code else None

    def find_by_name(self, name: str) -> Unit | None:
        """Return the unit whose code, name or alias is ``name``, or whose names alone start with it.

        Full-width characters and spaces are ignored.
        """
        wanted = _name_key(name)
        if not wanted:
            return None
        for unit in self.units.values():
            if wanted in {_name_key(n) for n in (unit.code, unit.name, *unit.aliases)}:
                return unit
        # A short form such as 成都市 for 成都市文化广电旅游局 counts when it names one unit only.
        starting = [
            unit
            for unit in self.units.values()
            if any(_name_key(n).startswith(wanted) for n in (unit.name, *unit.aliases))
        ]
        return starting[0] if len(starting) == 1 else None

    def get(self, code: str) -> Unit | None:
        return self.units.get(code)

    def __len__(self) -> int:
        return len(self.units)


def _unit_from_entry(entry: dict[str, object], where: str, problems: list[str]) -> Unit | None:
    unknown = sorted(set(entry) - _UNIT_KEYS)
    for key in unknown:
        problems.append(f"{where}：未知的键 {key}")
    before = len(problems)

    def text(key: str) -> str:
        value = entry.get(key)
        if not isinstance(value, str) or not value.strip():
            problems.append(f"{where}：缺少 {key}，或不是非空字符串")
            return ""
        return value.strip()

    def strings(key: str) -> tuple[str, ...]:
        value = entry.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            problems.append(f"{where}：{key} 应为字符串数组")
            return ()
        return tuple(v.strip() for v in value if v.strip())

    code, name, kind_text = text("code"), text("name"), text("kind")
    kind: UnitKind | None = None
    if kind_text:
        try:
            kind = UnitKind(kind_text)
        except ValueError:
            allowed = "、".join(k.value for k in UnitKind)
            problems.append(f"{where}：kind 为 {kind_text!r}，应为 {allowed} 之一")
    aliases, addresses, domains = strings("aliases"), strings("addresses"), strings("domains")
    if len(problems) > before or kind is None:
        return None
    return Unit(code=code, name=name, kind=kind, aliases=aliases, addresses=addresses, domains=domains)
