"""The `zwxx` command run as a user would: a subprocess against the test IMAP server, SMTP sink and database."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import date
from email import message_from_bytes, policy
from email.utils import parsedate_to_datetime
from pathlib import Path

import pytest

from daemon.embedded import SmtpSink
from daemon.workdays import WorkCalendar
from tests.daemon.conftest import WriteConfig
from tests.servers.handle import ImapServerHandle

REPO_ROOT = Path(__file__).resolve().parents[2]

# Three registered items (two from 成都, one from 泸州) and one mail from an unknown sender.
CORPUS_FILES = ("01-foxmail-cd.eml", "04-outlook-lz.eml", "25-foxmail-cd.eml", "42-qq-unknown-yb.eml")
INSPECT_KEYS = ("message_id", "sender", "unit", "subject", "title", "category", "attachments", "sent_at",
                "mail_text", "warnings")


def run_zwxx(*args: str, config: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``python -m daemon.cli [--config FILE] ARGS`` and capture its output."""
    env = {key: value for key, value in os.environ.items() if key != "ZWXX_CONFIG"}
    prefix = ["--config", str(config)] if config is not None else []
    return subprocess.run(
        [sys.executable, "-m", "daemon.cli", *prefix, *args],
        capture_output=True,
        text=True,
        encoding="utf-8",
        env=env,
        cwd=REPO_ROOT,
        timeout=120,
    )


def append_with_date(imap: ImapServerHandle, raw: bytes) -> int:
    """Append ``raw`` with its Date header as INTERNALDATE, as a delivering server would."""
    header = message_from_bytes(raw, policy=policy.compat32)
    try:
        sent = parsedate_to_datetime(header["Date"]) if header["Date"] else None
    except (TypeError, ValueError):
        sent = None
    return imap.append(raw, msg_time=sent)


@pytest.fixture
def corpus_dir(shared_dir: Path) -> Path:
    return shared_dir / "corpus" / "eml"


@pytest.fixture
def polled_config(
    write_config: WriteConfig, imap: ImapServerHandle, smtp_sink: SmtpSink, corpus_dir: Path
) -> Path:
    """A config whose database contains the corpus files above, after `zwxx init` and `zwxx poll --once`."""
    config = write_config()
    init = run_zwxx("init", config=config)
    assert init.returncode == 0, init.stderr
    for name in CORPUS_FILES:
        append_with_date(imap, (corpus_dir / name).read_bytes())

    poll = run_zwxx("poll", "--once", config=config)

    assert poll.returncode == 0, poll.stderr
    assert "新收取 4 封（登记信息 3 条，待确认 1 封）" in poll.stdout
    assert "发出回执等邮件 3 封" in poll.stdout
    return config


def test_init_reports_database(write_config: WriteConfig) -> None:
    config = write_config()

    result = run_zwxx("init", config=config)

    assert result.returncode == 0, result.stderr
    assert "已初始化" in result.stdout
    assert (config.parent / "archive").is_dir()


def test_init_twice_is_harmless(write_config: WriteConfig) -> None:
    config = write_config()

    first = run_zwxx("init", config=config)
    second = run_zwxx("init", config=config)

    assert first.returncode == 0, first.stderr
    assert second.returncode == 0, second.stderr


def test_command_before_init(write_config: WriteConfig) -> None:
    config = write_config()

    result = run_zwxx("list", config=config)

    assert result.returncode == 1
    assert "数据库尚未初始化" in result.stderr
    assert "zwxx init" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (config.parent / "zwxx.sqlite3").exists()


def test_poll_twice_stores_nothing_new(polled_config: Path, smtp_sink: SmtpSink) -> None:
    again = run_zwxx("poll", "--once", config=polled_config)

    assert again.returncode == 0, again.stderr
    assert "没有新邮件" in again.stdout
    assert len(smtp_sink.received) == 3


def test_list_table(polled_config: Path) -> None:
    result = run_zwxx("list", config=polled_config)

    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split()[:3] == ["编号", "收到时间", "单位"]
    assert lines[1].startswith("2026-0001")
    assert "成都" in lines[1]
    assert "成都启动2026年冬季文化旅游消费季" in lines[1]
    assert lines[2].startswith("2026-0002")
    assert "泸州" in lines[2]
    assert lines[3].startswith("2026-0003")
    assert lines[-1] == "共 3 条。"


def test_list_json_fields(polled_config: Path) -> None:
    result = run_zwxx("list", "--json", config=polled_config)

    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert [row["serial"] for row in rows] == ["2026-0001", "2026-0002", "2026-0003"]
    assert [row["unit"] for row in rows] == ["cd", "lz", "cd"]
    first = rows[0]
    assert first["title"] == "成都启动2026年冬季文化旅游消费季"
    assert first["category"] == "工作动态"
    assert first["unit_name"] == "成都市文旅局"
    assert first["received_at"].startswith("2026-11-02T09:15")
    assert first["has_review_line"] is True
    assert first["reviewer"] == "赵强超"
    assert first["signer"] == "袁思远"
    assert first["state"] == "registered"


@pytest.mark.parametrize("unit", ["cd", "成都市文化广电旅游局", "成都市文旅局"])
def test_list_filter_unit(polled_config: Path, unit: str) -> None:
    result = run_zwxx("list", "--json", "--unit", unit, config=polled_config)

    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert [row["serial"] for row in rows] == ["2026-0001", "2026-0003"]


def test_list_filter_unknown_unit(polled_config: Path) -> None:
    result = run_zwxx("list", "--unit", "火星市旅游局", config=polled_config)

    assert result.returncode == 1
    assert "未找到单位" in result.stderr
    assert "火星市旅游局" in result.stderr


def test_list_filter_dates(polled_config: Path) -> None:
    one_day = run_zwxx("list", "--json", "--since", "2026-11-04", "--until", "2026-11-04", config=polled_config)
    since = run_zwxx("list", "--json", "--since", "2026-11-03", config=polled_config)
    until = run_zwxx("list", "--json", "--until", "2026-11-02", config=polled_config)

    assert one_day.returncode == 0, one_day.stderr
    assert [row["unit"] for row in json.loads(one_day.stdout)] == ["lz"]
    assert [row["serial"] for row in json.loads(since.stdout)] == ["2026-0002", "2026-0003"]
    assert [row["serial"] for row in json.loads(until.stdout)] == ["2026-0001"]


def test_list_empty_result(polled_config: Path) -> None:
    result = run_zwxx("list", "--since", "2027-01-01", config=polled_config)

    assert result.returncode == 0, result.stderr
    assert "登记簿中没有符合条件的信息" in result.stdout


def test_show_item(polled_config: Path) -> None:
    result = run_zwxx("show", "2026-0001", config=polled_config)

    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "编号：2026-0001" in out
    assert "标题：成都启动2026年冬季文化旅游消费季" in out
    assert "单位：成都市文旅局（cd）" in out
    assert "类别：工作动态" in out
    assert "来信：cdly@example.gov.cn" in out
    assert "附件：成都启动2026年冬季文化旅游消费季.docx" in out
    assert "办理记录：" in out
    assert "已登记" in out.split("办理记录：", 1)[1]


def test_show_body(polled_config: Path) -> None:
    result = run_zwxx("show", "2026-0001", "--body", config=polled_config)

    assert result.returncode == 0, result.stderr
    assert "10月27日，成都市文化广电旅游局在青岚草原景区举行2026" in result.stdout


def test_show_unknown_serial(polled_config: Path) -> None:
    result = run_zwxx("show", "2026-9999", config=polled_config)

    assert result.returncode == 1
    assert "错误：" in result.stderr
    assert "2026-9999" in result.stderr
    assert "Traceback" not in result.stderr


def test_messages_held(polled_config: Path) -> None:
    held = run_zwxx("messages", "--state", "held", config=polled_config)
    everything = run_zwxx("messages", config=polled_config)

    assert held.returncode == 0, held.stderr
    held_lines = held.stdout.splitlines()
    assert len(held_lines) == 1
    assert "待确认（未知发件人）" in held_lines[0]
    assert "发件地址不在单位名录中" in held_lines[0]
    assert len(everything.stdout.splitlines()) == 4
    assert everything.stdout.count("已登记") == 3


def test_messages_no_match(polled_config: Path) -> None:
    result = run_zwxx("messages", "--state", "duplicate", config=polled_config)

    assert result.returncode == 0, result.stderr
    assert "没有符合条件的邮件" in result.stdout


def test_outbox_lists_receipts(polled_config: Path, smtp_sink: SmtpSink) -> None:
    result = run_zwxx("outbox", config=polled_config)

    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 3
    for line in lines:
        assert "回执" in line
        assert "已发送" in line
    recipients = sorted(rcpt for mail in smtp_sink.received for rcpt in mail.rcpt_tos)
    assert recipients == ["cdly@example.gov.cn", "cdly@example.gov.cn", "lzly@example.gov.cn"]


def test_outbox_empty(write_config: WriteConfig) -> None:
    config = write_config()
    assert run_zwxx("init", config=config).returncode == 0

    result = run_zwxx("outbox", config=config)

    assert result.returncode == 0, result.stderr
    assert "发件箱为空" in result.stdout


def test_inspect_corpus_message(shared_dir: Path, corpus_dir: Path) -> None:
    result = run_zwxx(
        "inspect", str(corpus_dir / "01-foxmail-cd.eml"),
        "--units", str(shared_dir / "corpus" / "units.toml"), "--json",
    )

    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert isinstance(report, dict)
    for key in INSPECT_KEYS:
        assert key in report, key
    assert report["message_id"] == "<202611020915228104809206@example.gov.cn>"
    assert report["sender"] == "cdly@example.gov.cn"
    assert report["unit"] == "cd"
    assert report["subject"] == "【工作动态】成都启动2026年冬季文化旅游消费季"
    assert report["title"] == "成都启动2026年冬季文化旅游消费季"
    assert report["category"] == "工作动态"
    assert report["attachments"] == ["成都启动2026年冬季文化旅游消费季.docx"]
    assert report["sent_at"] == "2026-11-02T09:15:22+08:00"
    assert isinstance(report["mail_text"], str)
    assert report["warnings"] == []


def test_inspect_without_units(corpus_dir: Path) -> None:
    result = run_zwxx("inspect", str(corpus_dir / "01-foxmail-cd.eml"), "--json")

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["unit"] is None


def test_inspect_legacy_doc(shared_dir: Path) -> None:
    result = run_zwxx("inspect", str(shared_dir / "cases" / "docx" / "D5_legacy_doc_renamed.docx"), "--json")

    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["warnings"]
    assert "旧版 Word" in report["warnings"][0]


def test_inspect_missing_file(tmp_path: Path) -> None:
    result = run_zwxx("inspect", str(tmp_path / "absent.eml"), "--json")

    assert result.returncode == 1
    assert "无法读取文件" in result.stderr


@pytest.mark.parametrize("command", [["list", "--state", "bogus"], ["messages", "--state", "bogus"]])
def test_unknown_state_filter(polled_config: Path, command: list[str]) -> None:
    result = run_zwxx(*command, config=polled_config)

    assert "Traceback" not in result.stderr
    assert result.returncode == 1
    assert "未知的" in result.stderr
    assert "registered" in result.stderr


def test_list_invalid_date(polled_config: Path) -> None:
    result = run_zwxx("list", "--since", "2026/11/01", config=polled_config)

    assert "Traceback" not in result.stderr
    assert result.returncode in (1, 2)
    assert "2026/11/01" in result.stderr


def test_read_only_commands_need_no_mail_password(polled_config: Path) -> None:
    text = polled_config.read_text(encoding="utf-8")
    without_password = polled_config.with_name("no-password.toml")
    without_password.write_text(
        text.replace('password = "', 'password_env = "ZWXX_TEST_UNSET_PASSWORD"\n# password = "'), encoding="utf-8"
    )

    listed = run_zwxx("list", config=without_password)
    polled = run_zwxx("poll", "--once", config=without_password)

    assert listed.returncode == 0
    assert "2026-0001" in listed.stdout
    assert polled.returncode == 2
    assert "ZWXX_TEST_UNSET_PASSWORD" in polled.stderr


def test_calendar_check_warns_of_missing_year(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(
        '[imap]\nhost = "127.0.0.1"\nusername = "u"\npassword = "p"\nsecurity = "plain"\n'
        '[smtp]\nhost = "127.0.0.1"\nfrom_address = "zwxx@tourism.example.gov.cn"\nsecurity = "plain"\n',
        encoding="utf-8",
    )

    result = run_zwxx("calendar", "days", "2026-10", config=config)

    assert result.returncode == 0, result.stderr
    assert "2026-10-01 周四  法定节假日（国庆节）" in result.stdout
    assert "2026-10-10 周六  调休上班" in result.stdout
    assert "2026-10-11 周日  周末" in result.stdout

    check = run_zwxx("calendar", "check", config=config)
    assert "2026 年：已录入" in check.stdout
    assert "国庆节 10-01至10-07" in check.stdout
    # From 1 November on, a year missing from the calendar is reported with exit status 1.
    expected = 1 if not WorkCalendar().is_year_covered(date.today().year + 1) and date.today().month >= 11 else 0
    assert check.returncode == expected
