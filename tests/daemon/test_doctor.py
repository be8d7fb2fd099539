"""`zwxx doctor` against the real test servers and database: every check passes, and each failure names what to fix."""

from __future__ import annotations

from pathlib import Path

from daemon.embedded import SmtpSink
from tests.daemon.conftest import WriteConfig
from tests.daemon.test_cli import run_zwxx
from tests.servers.handle import ImapServerHandle


def initialised(write_config: WriteConfig, **overrides: object) -> Path:
    config = write_config(**overrides)
    result = run_zwxx("init", config=config)
    assert result.returncode == 0, result.stderr
    return config


def test_doctor_passes_on_working_setup(write_config: WriteConfig, imap: ImapServerHandle) -> None:
    imap.append(b"From: a@example.gov.cn\r\nSubject: t\r\n\r\nbody\r\n")
    config = initialised(write_config)

    result = run_zwxx("doctor", config=config)

    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "√ 数据库：已连接" in out
    assert "√ 归档目录：" in out
    assert "√ IMAP：" in out
    assert "INBOX 有 1 封邮件" in out
    assert "√ SMTP：" in out
    assert "待发邮件 0 封" in out
    assert "全部检查通过。" in out


def test_doctor_reports_uninitialised_database(write_config: WriteConfig) -> None:
    result = run_zwxx("doctor", config=write_config())

    assert result.returncode == 1
    assert "× 数据库：" in result.stdout
    assert "请运行 zwxx init" in result.stdout
    assert "√ IMAP：" in result.stdout  # the other checks still run


def test_doctor_reports_refused_login(write_config: WriteConfig, imap: ImapServerHandle, smtp_sink: SmtpSink) -> None:
    config = initialised(write_config)
    text = config.read_text(encoding="utf-8").replace(f'password = "{imap.password}"', 'password = "wrong"')
    config.write_text(text, encoding="utf-8")

    result = run_zwxx("doctor", config=config)

    assert result.returncode == 1
    assert "× IMAP：" in result.stdout
    assert "拒绝登录" in result.stdout
    assert "有 1 项未通过：IMAP" in result.stdout
    assert smtp_sink.received == []


def test_doctor_reports_unreachable_smtp(write_config: WriteConfig, smtp_sink: SmtpSink) -> None:
    config = initialised(write_config)
    smtp_sink.stop()

    result = run_zwxx("doctor", config=config)

    assert result.returncode == 1
    assert "× SMTP：无法连接 SMTP 服务器" in result.stdout
