"""Configuration checks as a user meets them: through ``load_settings`` and ``zwxx check-config``.

Every invalid file must be rejected with exit status 2 and a Chinese message that names the key.
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import subprocess
import sys
import typing
from pathlib import Path

import pytest

from daemon.config import CONFIG_ENV, Settings, load_settings
from daemon.errors import ConfigError

REPO_ROOT = Path(__file__).resolve().parents[2]
EXAMPLE_CONFIG = REPO_ROOT / "config.example.toml"
UNSET_VARIABLE = "ZWXX_TEST_VARIABLE_THAT_IS_NOT_SET"
SET_VARIABLE = "ZWXX_TEST_IMAP_SECRET"

Sections = dict[str, dict[str, object]]


def build_valid_sections(units_file: Path) -> Sections:
    """Return the tables of a minimal valid configuration for servers on 127.0.0.1."""
    return {
        "general": {"timezone": "Asia/Shanghai"},
        "imap": {
            "host": "127.0.0.1",
            "port": 1143,
            "security": "plain",
            "username": "zwxx",
            "password": "secret",
        },
        "smtp": {
            "host": "127.0.0.1",
            "port": 2525,
            "security": "plain",
            "from_address": "zwxx@tourism.example.gov.cn",
        },
        "database": {"url": "sqlite:///var/zwxx.db"},
        "office": {"addresses": ["xxb@tourism.example.gov.cn"]},
        "units": {"file": units_file.as_posix()},
    }


def format_value(value: object) -> str:
    """Render one Python value as a TOML value (strings, integers, booleans and arrays only)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        escaped = value.replace("\\", "\\\\").replace('"', '\\"')
        return f'"{escaped}"'
    if isinstance(value, list):
        return "[" + ", ".join(format_value(item) for item in value) + "]"
    raise TypeError(f"cannot render {value!r} as TOML")


def render_toml(sections: Sections) -> str:
    """Render tables of keys as TOML text."""
    lines: list[str] = []
    for section, keys in sections.items():
        lines.append(f"[{section}]")
        lines.extend(f"{key} = {format_value(value)}" for key, value in keys.items())
        lines.append("")
    return "\n".join(lines)


def set_key(sections: Sections, dotted: str, value: object) -> None:
    section, key = dotted.split(".", 1)
    sections.setdefault(section, {})[key] = value


def drop_key(sections: Sections, dotted: str) -> None:
    section, key = dotted.split(".", 1)
    del sections[section][key]


@dataclasses.dataclass(frozen=True)
class BadCase:
    """One invalid configuration: keys to set and drop, and the words the error must contain."""

    name: str
    set_keys: dict[str, object] = dataclasses.field(default_factory=dict)
    drop_keys: tuple[str, ...] = ()
    expected: tuple[str, ...] = ()


BAD_CASES = [
    BadCase("unknown key in section", {"imap.hots": "127.0.0.1"}, expected=("未知的配置项", "imap.hots")),
    BadCase("unknown section", {"imapp.host": "127.0.0.1"}, expected=("未知的配置项", "imapp")),
    BadCase("missing imap.host", drop_keys=("imap.host",), expected=("缺少必填配置项", "imap.host")),
    BadCase("missing imap.username", drop_keys=("imap.username",), expected=("缺少必填配置项", "imap.username")),
    BadCase("missing smtp.host", drop_keys=("smtp.host",), expected=("缺少必填配置项", "smtp.host")),
    BadCase("missing smtp.from_address", drop_keys=("smtp.from_address",),
            expected=("缺少必填配置项", "smtp.from_address")),
    BadCase("port as string", {"imap.port": "993"}, expected=("imap.port", "应为整数", "'993'")),
    BadCase("port as bool", {"smtp.port": True}, expected=("smtp.port", "应为整数")),
    BadCase("bool as int", {"imap.idle": 1}, expected=("imap.idle", "布尔值")),
    BadCase("list of non-strings", {"office.addresses": [1, 2]}, expected=("office.addresses", "字符串数组")),
    BadCase("addresses not a list", {"office.leaders": "leader@example.gov.cn"},
            expected=("office.leaders", "字符串数组")),
    BadCase("bad imap security", {"imap.security": "tls"}, expected=("imap.security", "无效", "imaps")),
    BadCase("bad smtp security", {"smtp.security": "ssl"}, expected=("smtp.security", "无效", "smtps")),
    BadCase("bad after_store", {"imap.after_store": "delete"}, expected=("imap.after_store", "无效", "move")),
    BadCase("plain imap off loopback", {"imap.host": "imap.example.gov.cn"},
            expected=("imap.security", "plain", "本机", "imap.example.gov.cn")),
    BadCase("plain smtp off loopback", {"smtp.host": "smtp.example.gov.cn"},
            expected=("smtp.security", "plain", "本机", "smtp.example.gov.cn")),
    BadCase("move without move_to", {"imap.after_store": "move"}, expected=("imap.move_to", "move")),
    BadCase("password and password_env", {"imap.password_env": SET_VARIABLE},
            expected=("imap.password", "imap.password_env", "只能填写一个")),
    BadCase("password_env unset", {"imap.password_env": UNSET_VARIABLE}, drop_keys=("imap.password",),
            expected=("imap.password_env", UNSET_VARIABLE, "未设置")),
    BadCase("missing imap password", drop_keys=("imap.password",), expected=("缺少 IMAP 密码", "imap.password")),
    BadCase("bad time zone", {"general.timezone": "Asia/Beijing"}, expected=("general.timezone", "Asia/Beijing")),
    BadCase("non-address in office.addresses", {"office.addresses": ["信息科"]},
            expected=("office.addresses", "信息科", "不是邮箱地址")),
    BadCase("port out of range", {"imap.port": 70000}, expected=("imap.port", "1–65535", "70000")),
    BadCase("batch_size zero", {"imap.batch_size": 0}, expected=("imap.batch_size", "正整数")),
    BadCase("idle_timeout too long", {"imap.idle_timeout": 1800}, expected=("imap.idle_timeout", "1740")),
    BadCase("move_to equals folder", {"imap.after_store": "move", "imap.move_to": "INBOX"},
            expected=("imap.move_to", "imap.folder")),
    BadCase("smtp username without password", {"smtp.username": "zwxx"},
            expected=("smtp.username", "smtp.password")),
    BadCase("bad database scheme", {"database.url": "mysql://db/zwxx"}, expected=("database.url", "sqlite")),
    BadCase("bad log level", {"general.log_level": "LOUD"}, expected=("general.log_level", "LOUD")),
    BadCase("imap timeout zero", {"imap.timeout": 0}, expected=("imap.timeout",)),
    BadCase("smtp timeout zero", {"smtp.timeout": 0}, expected=("smtp.timeout",)),
    BadCase("send_interval negative", {"outbox.send_interval": -1},
            expected=("outbox.send_interval", "正整数")),
]
BAD_PARAMS = [
    pytest.param(case, id=case.name)
    for case in BAD_CASES
]


def write_bad_config(case: BadCase, folder: Path, units_file: Path) -> Path:
    sections = build_valid_sections(units_file)
    for dotted, value in case.set_keys.items():
        set_key(sections, dotted, value)
    for dotted in case.drop_keys:
        drop_key(sections, dotted)
    path = folder / "config.toml"
    path.write_text(render_toml(sections), encoding="utf-8")
    return path


def run_cli(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``python -m daemon.cli ARGS`` and capture its output."""
    return subprocess.run(
        [sys.executable, "-m", "daemon.cli", *args],
        capture_output=True,
        text=True,
        encoding="utf-8",
        env=env if env is not None else os.environ.copy(),
        cwd=cwd or REPO_ROOT,
        timeout=60,
    )


def make_env(**extra: str) -> dict[str, str]:
    """Return the environment for a CLI run: no ZWXX_CONFIG, the test secret set, plus ``extra``."""
    env = {key: value for key, value in os.environ.items() if key not in (CONFIG_ENV, UNSET_VARIABLE)}
    env[SET_VARIABLE] = "secret-from-env"
    env.update(extra)
    return env


@pytest.fixture
def units_file(shared_dir: Path) -> Path:
    return shared_dir / "corpus" / "units.toml"


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Give in-process loads the same environment as ``make_env``."""
    monkeypatch.delenv(CONFIG_ENV, raising=False)
    monkeypatch.delenv(UNSET_VARIABLE, raising=False)
    monkeypatch.setenv(SET_VARIABLE, "secret-from-env")


def test_valid_config_loads(tmp_path: Path, units_file: Path, clean_env: None) -> None:
    path = tmp_path / "config.toml"
    path.write_text(render_toml(build_valid_sections(units_file)), encoding="utf-8")

    settings = load_settings(path)

    assert settings.imap.host == "127.0.0.1"
    assert settings.imap.port == 1143
    assert settings.imap.security == "plain"
    assert settings.imap_password() == "secret"
    assert settings.smtp.from_address == "zwxx@tourism.example.gov.cn"
    assert settings.office.addresses == ("xxb@tourism.example.gov.cn",)
    assert settings.path == path.resolve()


def test_check_config_accepts_valid_file(tmp_path: Path, units_file: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(render_toml(build_valid_sections(units_file)), encoding="utf-8")

    result = run_cli("--config", str(path), "check-config", env=make_env())

    assert result.returncode == 0, result.stderr
    assert "检查通过" in result.stdout
    assert "37 个单位" in result.stdout


def test_password_env_supplies_password(tmp_path: Path, units_file: Path, clean_env: None) -> None:
    sections = build_valid_sections(units_file)
    drop_key(sections, "imap.password")
    set_key(sections, "imap.password_env", SET_VARIABLE)
    path = tmp_path / "config.toml"
    path.write_text(render_toml(sections), encoding="utf-8")

    settings = load_settings(path)

    assert settings.imap_password() == "secret-from-env"


@pytest.mark.parametrize("case", BAD_PARAMS)
def test_load_settings_rejects(case: BadCase, tmp_path: Path, units_file: Path, clean_env: None) -> None:
    path = write_bad_config(case, tmp_path, units_file)

    with pytest.raises(ConfigError) as raised:
        load_settings(path)

    assert len(raised.value.problems) == 1, raised.value.problems
    problem = raised.value.problems[0]
    for word in case.expected:
        assert word in problem


@pytest.mark.parametrize("case", BAD_PARAMS)
def test_check_config_rejects(case: BadCase, tmp_path: Path, units_file: Path) -> None:
    path = write_bad_config(case, tmp_path, units_file)

    result = run_cli("--config", str(path), "check-config", env=make_env())

    assert result.returncode == 2
    assert "配置有误，共 1 处" in result.stderr
    for word in case.expected:
        assert word in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


def write_several_problems(folder: Path, units_file: Path) -> Path:
    sections = build_valid_sections(units_file)
    set_key(sections, "imap.hots", "127.0.0.1")
    set_key(sections, "imap.port", "993")
    drop_key(sections, "smtp.host")
    path = folder / "config.toml"
    path.write_text(render_toml(sections), encoding="utf-8")
    return path


def write_several_rule_problems(folder: Path, units_file: Path) -> Path:
    sections = build_valid_sections(units_file)
    set_key(sections, "general.timezone", "Mars/Olympus")
    set_key(sections, "office.addresses", ["信息科"])
    set_key(sections, "imap.after_store", "move")
    path = folder / "config.toml"
    path.write_text(render_toml(sections), encoding="utf-8")
    return path


def test_load_settings_reports_all_problems(tmp_path: Path, units_file: Path, clean_env: None) -> None:
    path = write_several_problems(tmp_path, units_file)

    with pytest.raises(ConfigError) as raised:
        load_settings(path)

    text = "\n".join(raised.value.problems)
    assert len(raised.value.problems) == 3, raised.value.problems
    assert "imap.hots" in text
    assert "imap.port" in text
    assert "smtp.host" in text


def test_load_settings_reports_all_rule_problems(tmp_path: Path, units_file: Path, clean_env: None) -> None:
    path = write_several_rule_problems(tmp_path, units_file)

    with pytest.raises(ConfigError) as raised:
        load_settings(path)

    text = "\n".join(raised.value.problems)
    assert len(raised.value.problems) == 3, raised.value.problems
    assert "general.timezone" in text
    assert "office.addresses" in text
    assert "imap.move_to" in text


def test_check_config_reports_all_problems(tmp_path: Path, units_file: Path) -> None:
    path = write_several_problems(tmp_path, units_file)

    result = run_cli("--config", str(path), "check-config", env=make_env())

    assert result.returncode == 2
    assert "配置有误，共 3 处" in result.stderr
    assert "imap.hots" in result.stderr
    assert "imap.port" in result.stderr
    assert "smtp.host" in result.stderr


def test_type_and_rule_problems_together(tmp_path: Path, units_file: Path, clean_env: None) -> None:
    sections = build_valid_sections(units_file)
    set_key(sections, "imap.hots", "127.0.0.1")
    set_key(sections, "general.timezone", "Mars/Olympus")
    path = tmp_path / "config.toml"
    path.write_text(render_toml(sections), encoding="utf-8")

    with pytest.raises(ConfigError) as raised:
        load_settings(path)

    text = "\n".join(raised.value.problems)
    assert "imap.hots" in text
    assert "general.timezone" in text


def test_load_settings_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "absent.toml"

    with pytest.raises(ConfigError) as raised:
        load_settings(path)

    assert "配置文件不存在" in raised.value.problems[0]
    assert str(path) in raised.value.problems[0]


def test_check_config_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "absent.toml"

    result = run_cli("--config", str(path), "check-config", env=make_env())

    assert result.returncode == 2
    assert "配置文件不存在" in result.stderr
    assert str(path) in result.stderr


def test_load_settings_invalid_toml(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text('[imap]\nhost = "127.0.0.1\n', encoding="utf-8")

    with pytest.raises(ConfigError) as raised:
        load_settings(path)

    assert "不是合法的 TOML" in raised.value.problems[0]


def test_check_config_invalid_toml(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text('[imap]\nhost = "127.0.0.1\n', encoding="utf-8")

    result = run_cli("--config", str(path), "check-config", env=make_env())

    assert result.returncode == 2
    assert "不是合法的 TOML" in result.stderr
    assert str(path) in result.stderr


def test_load_settings_reads_env_variable(
    tmp_path: Path, units_file: Path, clean_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "from-env.toml"
    path.write_text(render_toml(build_valid_sections(units_file)), encoding="utf-8")
    monkeypatch.setenv(CONFIG_ENV, str(path))

    settings = load_settings()

    assert settings.path == path.resolve()


def test_check_config_reads_env_variable(tmp_path: Path, units_file: Path) -> None:
    path = tmp_path / "from-env.toml"
    path.write_text(render_toml(build_valid_sections(units_file)), encoding="utf-8")

    result = run_cli("check-config", env=make_env(**{CONFIG_ENV: str(path)}))

    assert result.returncode == 0, result.stderr
    assert str(path.resolve()) in result.stdout


def test_check_config_without_any_config(tmp_path: Path) -> None:
    result = run_cli("check-config", env=make_env(), cwd=tmp_path)

    assert result.returncode == 2
    assert "--config" in result.stderr
    assert CONFIG_ENV in result.stderr


def write_relative_config(tmp_path: Path, units_file: Path) -> Path:
    """Write a config in ``tmp_path/site`` whose database, archive and units paths are relative."""
    site = tmp_path / "site"
    site.mkdir()
    shutil.copyfile(units_file, site / "my-units.toml")
    sections = build_valid_sections(units_file)
    set_key(sections, "database.url", "sqlite:///data/zwxx.db")
    set_key(sections, "archive.dir", "store/archive")
    set_key(sections, "units.file", "my-units.toml")
    path = site / "config.toml"
    path.write_text(render_toml(sections), encoding="utf-8")
    return path


def test_relative_paths_follow_config_folder(tmp_path: Path, units_file: Path, clean_env: None) -> None:
    path = write_relative_config(tmp_path, units_file)
    site = path.parent.resolve()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()

    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(elsewhere)
        settings = load_settings(Path("..") / "site" / "config.toml")

    assert settings.database.url == f"sqlite:///{site / 'data' / 'zwxx.db'}"
    assert settings.archive.dir == site / "store" / "archive"
    assert settings.units.file == site / "my-units.toml"


def test_init_creates_files_beside_config(tmp_path: Path, units_file: Path) -> None:
    path = write_relative_config(tmp_path, units_file)
    site = path.parent
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()

    result = run_cli("--config", "../site/config.toml", "init", env=make_env(), cwd=elsewhere)

    assert result.returncode == 0, result.stderr
    assert (site / "data" / "zwxx.db").is_file()
    assert (site / "store" / "archive").is_dir()
    assert not (elsewhere / "data").exists()
    assert not (elsewhere / "store").exists()


def test_example_config_loads(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ZWXX_IMAP_PASSWORD", "imap-secret")
    monkeypatch.setenv("ZWXX_SMTP_PASSWORD", "smtp-secret")
    monkeypatch.setenv("ZWXX_APPROVAL_SECRET", "approval-secret-0123456789")

    settings = load_settings(EXAMPLE_CONFIG)

    assert settings.imap.host == "imap.example.gov.cn"
    assert settings.imap_password() == "imap-secret"
    assert settings.smtp_password() == "smtp-secret"
    assert settings.units.file == REPO_ROOT / "units.toml"


def test_example_config_needs_password_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ZWXX_IMAP_PASSWORD", raising=False)
    monkeypatch.delenv("ZWXX_SMTP_PASSWORD", raising=False)

    with pytest.raises(ConfigError) as raised:
        load_settings(EXAMPLE_CONFIG)

    text = "\n".join(raised.value.problems)
    assert "ZWXX_IMAP_PASSWORD" in text
    assert "ZWXX_SMTP_PASSWORD" in text


def read_example_sections() -> dict[str, str]:
    """Split config.example.toml into the text of each [section]."""
    sections: dict[str, str] = {}
    current = ""
    for line in EXAMPLE_CONFIG.read_text(encoding="utf-8").splitlines():
        header = re.fullmatch(r"\[(\w+)\]", line.strip())
        if header:
            current = header.group(1)
            sections[current] = ""
            continue
        if current:
            sections[current] += line + "\n"
    return sections


def test_example_documents_every_key() -> None:
    sections = read_example_sections()
    section_types = typing.get_type_hints(Settings)
    missing: list[str] = []

    for section_field in dataclasses.fields(Settings):
        if section_field.name == "path":
            continue
        section_class = section_types[section_field.name]
        text = sections.get(section_field.name)
        if text is None:
            missing.append(f"[{section_field.name}]")
            continue
        for key_field in dataclasses.fields(section_class):
            # A key counts as documented when it is set or shown commented out, e.g. "# password = ".
            pattern = rf"^#?\s*{re.escape(key_field.name)}\s*="
            if not re.search(pattern, text, flags=re.MULTILINE):
                missing.append(f"{section_field.name}.{key_field.name}")

    assert missing == []

