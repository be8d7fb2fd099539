"""Units file: loading the corpus directory, sender lookup and the errors a mistyped file gets."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from daemon.errors import ConfigError
from daemon.units import UnitDirectory, UnitKind


@pytest.fixture
def corpus_units(shared_dir: Path) -> UnitDirectory:
    return UnitDirectory.load(shared_dir / "corpus" / "units.toml")


def write_units(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "units.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_corpus_units_count_by_kind(corpus_units: UnitDirectory) -> None:
    kinds = Counter(unit.kind for unit in corpus_units.units.values())

    assert len(corpus_units) == 37
    assert kinds[UnitKind.PREFECTURE] == 21
    assert kinds[UnitKind.DIVISION] == 8
    assert kinds[UnitKind.AFFILIATED] == 8


def test_corpus_unit_fields(corpus_units: UnitDirectory) -> None:
    chengdu = corpus_units.get("cd")

    assert chengdu is not None
    assert chengdu.name == "成都市文化广电旅游局"
    assert chengdu.kind is UnitKind.PREFECTURE
    assert "成都市文旅局" in chengdu.aliases
    assert chengdu.addresses == ("cdly@example.gov.cn",)
    assert chengdu.short_name == "成都市文旅局"


def test_lookup_ignores_case(corpus_units: UnitDirectory) -> None:
    for address in ("cdly@example.gov.cn", "CDLY@Example.GOV.CN", "  CdLy@example.gov.cn "):
        unit = corpus_units.lookup(address)
        assert unit is not None, address
        assert unit.code == "cd"


def test_lookup_several_addresses(corpus_units: UnitDirectory) -> None:
    official = corpus_units.lookup("zgly@example.gov.cn")
    personal = corpus_units.lookup("2873641905@qq.example.com")

    assert official is not None
    assert personal is not None
    assert official.code == "zg"
    assert personal.code == "zg"


def test_lookup_unknown_address(corpus_units: UnitDirectory) -> None:
    assert corpus_units.lookup("someone@unknown.example.com") is None
    assert corpus_units.lookup("") is None
    assert corpus_units.lookup(None) is None
    assert corpus_units.lookup("example.gov.cn") is None


def test_every_corpus_sender_found(corpus_units: UnitDirectory, shared_dir: Path) -> None:
    expected = json.loads((shared_dir / "corpus" / "expected.json").read_text(encoding="utf-8"))
    for record in expected["messages"]:
        if record["unit"] is None or record["sender"] is None:
            continue
        unit = corpus_units.lookup(record["sender"])
        assert unit is not None, record["file"]
        assert unit.code == record["unit"], record["file"]


def test_domains_match_whole_domain(tmp_path: Path) -> None:
    path = write_units(tmp_path, """\
[[units]]
code = "xxzx"
name = "省旅游信息中心"
kind = "直属单位"
addresses = ["chief@partner.example.com"]
domains = ["XXZX.example.gov.cn", "@second.example.gov.cn"]

[[units]]
code = "other"
name = "其他单位"
kind = "处室"
addresses = ["clerk@xxzx.example.gov.cn"]
""")

    directory = UnitDirectory.load(path)

    by_domain = directory.lookup("anyone@xxzx.example.gov.cn")
    by_second_domain = directory.lookup("Someone@Second.Example.Gov.Cn")
    by_address = directory.lookup("clerk@xxzx.example.gov.cn")
    assert by_domain is not None
    assert by_domain.code == "xxzx"
    assert by_second_domain is not None
    assert by_second_domain.code == "xxzx"
    # A whole address wins over its domain.
    assert by_address is not None
    assert by_address.code == "other"
    assert directory.lookup("anyone@sub.xxzx.example.gov.cn") is None


def test_errors_reported_together(tmp_path: Path) -> None:
    path = write_units(tmp_path, """\
[[units]]
code = "cd"
name = "成都市文化广电旅游局"
kind = "市州"
addresses = ["cdly@example.gov.cn"]

[[units]]
code = "cd"
name = "重复的成都"
kind = "市州"

[[units]]
code = "zg"
name = "自贡市文化广电旅游局"
kind = "市州"
addresses = ["CDLY@example.gov.cn"]

[[units]]
code = "xx"
name = "某单位"
kind = "县区"

[[units]]
code = "yy"
name = "另一单位"
kind = "处室"
adresses = ["yy@example.gov.cn"]
""")

    with pytest.raises(ConfigError) as raised:
        UnitDirectory.load(path)

    problems = raised.value.problems
    text = "\n".join(problems)
    assert len(problems) == 4, problems
    assert "单位代码 'cd' 重复" in text
    assert "CDLY@example.gov.cn 已属于单位 cd" in text
    assert "'县区'" in text
    assert "市州、处室、直属单位" in text
    assert "未知的键 adresses" in text
    assert "第 5 个 [[units]]" in text


def test_missing_fields_reported(tmp_path: Path) -> None:
    path = write_units(tmp_path, """\
[[units]]
code = "zz"
kind = "处室"
addresses = "zz@example.gov.cn"
""")

    with pytest.raises(ConfigError) as raised:
        UnitDirectory.load(path)

    text = "\n".join(raised.value.problems)
    assert "缺少 name" in text
    assert "addresses 应为字符串数组" in text


def test_missing_units_file(tmp_path: Path) -> None:
    path = tmp_path / "absent.toml"

    with pytest.raises(ConfigError) as raised:
        UnitDirectory.load(path)

    assert "单位名录文件不存在" in raised.value.problems[0]
    assert str(path) in raised.value.problems[0]


def test_invalid_toml_units_file(tmp_path: Path) -> None:
    path = write_units(tmp_path, '[[units]]\ncode = "cd\n')

    with pytest.raises(ConfigError) as raised:
        UnitDirectory.load(path)

    assert "格式错误" in raised.value.problems[0]


def test_add_address_attaches_sender(corpus_units: UnitDirectory) -> None:
    corpus_units.add_address("cd", "New.Clerk@Example.com")

    unit = corpus_units.lookup("new.clerk@example.com")

    assert unit is not None
    assert unit.code == "cd"
    with pytest.raises(KeyError):
        corpus_units.add_address("no-such-unit", "x@example.com")
