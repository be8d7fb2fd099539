"""`zwxx doctor` against the real test servers and database: every check passes, and each failure names what to fix."""

from __future__ import annotations

import os
from pathlib import Path

from daemon.config import load_settings
from daemon.db import create_db_engine
from daemon.embedded import SmtpSink
from daemon.lease import make_lease
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
    assert "√ 轮询租约：空闲" in out
    assert "√ 归档目录：" in out
    assert "√ IMAP：" in out
    assert "INBOX 有 1 封邮件" in out
    assert "√ SMTP：" in out
    assert "待发邮件 0 封" in out
    assert "全部检查通过" in out


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


def test_doctor_names_lease_holder(write_config: WriteConfig, database_url: str) -> None:
    config = initialised(write_config)
    engine = create_db_engine(database_url)
    lease = make_lease(engine, load_settings(config).database.url)  # as a running zwxx run would
    try:
        assert lease.try_acquire()
        holder = lease.holder()
        assert holder is not None
        result = run_zwxx("doctor", config=config)
    finally:
        lease.release()
        engine.dispose()

    assert result.returncode == 0, result.stdout + result.stderr
    line = next(line for line in result.stdout.splitlines() if "轮询租约" in line)
    if database_url.startswith("postgresql"):
        assert line.startswith(f"√ 轮询租约：由数据库会话 {holder.pid}（来自 127.0.0.1，")
    else:
        assert line.startswith(f"√ 轮询租约：由本机进程 {os.getpid()}（")
    assert "再启动的 zwxx run 会待命，每 " in line
