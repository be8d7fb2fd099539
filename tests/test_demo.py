"""`zwxx demo` end to end: a subprocess that starts its own local servers and prints the results."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DEMO_TIMEOUT = 120.0


def test_demo_output_and_spool(tmp_path: Path) -> None:
    workdir = tmp_path / "demo"
    env = {key: value for key, value in os.environ.items() if key != "ZWXX_CONFIG"}
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "daemon.cli", "demo", "--workdir", str(workdir)],
        capture_output=True,
        text=True,
        encoding="utf-8",
        env=env,
        cwd=REPO_ROOT,
        timeout=DEMO_TIMEOUT,
    )
    seconds = time.monotonic() - started

    assert result.returncode == 0, result.stderr
    assert seconds < DEMO_TIMEOUT
    out = result.stdout

    assert "== 登记簿 ==" in out
    register = out.split("== 登记簿 ==", 1)[1].split("== 收到的邮件 ==", 1)[0]
    serials = re.findall(r"^(2026-\d{4})\s", register, flags=re.MULTILINE)
    assert serials, register
    assert serials == [f"2026-{number:04d}" for number in range(1, len(serials) + 1)]
    assert f"共 {len(serials)} 条。" in register

    mails = out.split("== 收到的邮件 ==", 1)[1].split("== 已发出的回执", 1)[0]
    assert "待确认（未知发件人）" in mails
    assert "发件地址不在单位名录中" in mails
    assert "重复邮件" in mails
    assert "自动回复" in mails
    assert "退信" in mails
    assert mails.count("已登记") == len(serials)

    header = re.search(r"== 已发出的回执（(\d+) 封）==", out)
    assert header is not None, out
    receipt_count = int(header.group(1))
    assert receipt_count == len(serials)
    receipts = out[header.end() :].split("== 办公室发送命令邮件", 1)[0]
    assert receipts.count("收件人：") == receipt_count
    assert len(re.findall(r"^主题：【回执】2026-\d{4} ", receipts, flags=re.MULTILINE)) == receipt_count

    # The office and the leader then work 2026-0001 by mail: 送审, the leader's 同意, 报送 and 采用.
    office = out.split("== 办公室发送命令邮件：送审 2026-0001", 1)[1]
    assert "【请审批】2026-0001" in office
    assert "√ 已送审：2026-0001" in office
    assert "已登记为 乐山市文化广电旅游局 的发件地址" in office
    assert "【审批结果】2026-0001 同意" in office
    assert "√ 已报送两办：2026-0001" in office
    assert "√ 2026-0001 已登记采用" in office
    history = office.split("== 2026-0001 的办理记录（当前状态：已采用）==", 1)[1]
    for step in ("登记", "送审", "领导同意", "报送", "采用"):
        assert step in history
    later_mails = re.findall(r"^  → 发给 ", office, flags=re.MULTILINE)
    # 送审 sends a request, a receipt for the newly registered sender and the command's result;
    # the reply brings a decision notice; 报送 and 采用 bring one more result.
    assert len(later_mails) == 5

    spooled = sorted((workdir / "sent").glob("*.eml"))
    assert len(spooled) == receipt_count + len(later_mails)
    assert (workdir / "config.toml").is_file()
    assert "演示完成" in out
