"""`zwxx inspect REPLY --request REQUEST`: a leader's reply read against the approval request it replies to."""

from __future__ import annotations

import json
import os
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from daemon.inspection import RequestLayoutError, list_request_serials, read_request_items
from daemon.templating import render
from tests.daemon.test_cli import run_zwxx

SHARED = Path(os.environ.get("ZWXX_SHARED", Path(__file__).resolve().parents[2].parent / "shared"))
REPLY_FIELDS = ("new_text", "decision", "decisions", "comment", "edit_requested", "auto_reply")


def _stored_replies() -> list[dict[str, Any]]:
    # Parametrisation runs before fixtures can, so this reads the same location as ``shared_dir``. Missing
    # data yields no cases here, and test_stored_replies_listed then fails.
    path = SHARED / "replies" / "expected.json"
    if not path.exists():
        return []
    replies: list[dict[str, Any]] = json.loads(path.read_text(encoding="utf-8"))["replies"]
    return replies


def _entry(position: int, serial: str, title: str, warnings: list[str] | None = None) -> dict[str, Any]:
    return {
        "position": position,
        "serial": serial,
        "title": title,
        "unit_name": "成都市文化广电旅游局",
        "category": "工作动态",
        "time_limit": "收到后 1 个工作日内报送两办",
        "body_chars": 20,
        "version": 1,
        "warnings": warnings or [],
        "document_name": "",
        "body_text": f"　　{title}，正文第一段。",
    }


def _zwxx_request(entries: list[dict[str, Any]]) -> bytes:
    """Build an approval request mail from zwxx's own template, as daemon.approval renders it."""
    body = render(
        "leader/approval_request.txt.j2",
        leader_name="领导",
        entries=entries,
        ask_back_reason="",
        token="tok123",
        expires_at="2026-11-20 17:00",
        office_name="省文化和旅游厅办公室",
        sent_on="2026年11月18日",
    )
    mail = EmailMessage()
    mail["From"] = "zwxx@tourism.example.gov.cn"
    mail["To"] = "leader@tourism.example.gov.cn"
    mail["Subject"] = f"【请审批】{entries[0]['serial']} 等 {len(entries)} 条信息 〔审批码 tok123〕"
    mail["Date"] = "Wed, 18 Nov 2026 10:40:09 +0800"
    mail["Message-ID"] = "<request-zwxx-1@tourism.example.gov.cn>"
    mail.set_content(body)
    return mail.as_bytes()


def _reply(text: str, *, in_reply_to: str = "<request-zwxx-1@tourism.example.gov.cn>") -> bytes:
    mail = EmailMessage()
    mail["From"] = "leader@tourism.example.gov.cn"
    mail["To"] = "zwxx@tourism.example.gov.cn"
    mail["Subject"] = "回复：【请审批】2026-0012 等 3 条信息"
    mail["Date"] = "Wed, 18 Nov 2026 11:15:49 +0800"
    mail["Message-ID"] = "<reply-zwxx-1@tourism.example.gov.cn>"
    mail["In-Reply-To"] = in_reply_to
    mail.set_content(text)
    return mail.as_bytes()


def test_stored_replies_listed(shared_dir: Path) -> None:
    assert (shared_dir / "replies" / "expected.json").is_file()
    assert len(_stored_replies()) == 23


@pytest.mark.parametrize("expected", _stored_replies(), ids=lambda entry: Path(entry["file"]).stem)
def test_stored_reply_json(shared_dir: Path, expected: dict[str, Any]) -> None:
    replies = shared_dir / "replies"
    result = run_zwxx(
        "inspect", str(replies / expected["file"]), "--request", str(replies / expected["request"]), "--json"
    )

    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    report = json.loads(result.stdout)
    assert list(report) == list(REPLY_FIELDS)
    for field in REPLY_FIELDS:
        assert report[field] == expected[field], field


def test_stored_request_serials(shared_dir: Path) -> None:
    for entry in _stored_replies():
        raw = (shared_dir / "replies" / entry["request"]).read_bytes()
        serials = read_request_items(raw)
        assert serials == [entry["items"][str(number)] for number in range(1, len(entry["items"]) + 1)], entry[
            "request"
        ]


def test_reply_summary_text(shared_dir: Path) -> None:
    replies = shared_dir / "replies"
    result = run_zwxx(
        "inspect",
        str(replies / "eml" / "46-163-2026-0074-b3.eml"),
        "--request",
        str(replies / "requests" / "2026-0074-batch3.eml"),
    )

    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "审批意见：各条意见不同"
    assert "  第 1 条（2026-0074）：同意" in lines
    assert "  第 2 条（2026-0075）：退回修改" in lines
    assert "  第 3 条（2026-0076）：意见不明确" in lines
    assert "其他意见：补充具体数据" in lines
    assert "要求修改文字：否" in lines
    assert "对应关系：In-Reply-To 头与该审批请求相符" in lines
    assert lines[-2:] == ["  同意", "  退回，补充具体数据"]


def test_reply_summary_auto_reply(shared_dir: Path) -> None:
    replies = shared_dir / "replies"
    result = run_zwxx(
        "inspect",
        str(replies / "eml" / "36-coremail-autoreply-2026-0049.eml"),
        "--request",
        str(replies / "requests" / "2026-0049.eml"),
    )

    assert result.returncode == 0, result.stderr
    assert "审批意见：意见不明确" in result.stdout
    assert "这是一封自动回复：不作为审批意见，也不追问。" in result.stdout


def test_reply_to_other_request_warns(shared_dir: Path) -> None:
    replies = shared_dir / "replies"
    result = run_zwxx(
        "inspect",
        str(replies / "eml" / "03-163-2026-0016.eml"),
        "--request",
        str(replies / "requests" / "2026-0017.eml"),
        "--json",
    )

    assert result.returncode == 0, result.stderr
    assert "对不上" in result.stderr
    assert json.loads(result.stdout)["decision"] == "approve"


def test_missing_request_file(shared_dir: Path, tmp_path: Path) -> None:
    reply = shared_dir / "replies" / "eml" / "03-163-2026-0016.eml"
    result = run_zwxx("inspect", str(reply), "--request", str(tmp_path / "absent.eml"), "--json")

    assert result.returncode == 1
    assert result.stdout == ""
    assert "无法读取审批请求文件" in result.stderr


def test_missing_reply_file(shared_dir: Path, tmp_path: Path) -> None:
    request = shared_dir / "replies" / "requests" / "2026-0016.eml"
    result = run_zwxx("inspect", str(tmp_path / "absent.eml"), "--request", str(request), "--json")

    assert result.returncode == 1
    assert "无法读取文件" in result.stderr


def test_zwxx_batch_request_items() -> None:
    raw = _zwxx_request(
        [_entry(1, "2026-0012", "标题一"), _entry(2, "2026-0013", "标题二"), _entry(3, "2026-0015", "标题三")]
    )

    assert read_request_items(raw) == ["2026-0012", "2026-0013", "2026-0015"]


def test_zwxx_single_request_items() -> None:
    # The numbered warning line starts with a serial too, and must not be taken for a batch list.
    raw = _zwxx_request([_entry(1, "2026-0012", "标题一", warnings=["2026-0009 与本条标题相同"])])

    assert read_request_items(raw) == ["2026-0012"]


def test_zwxx_batch_request_cli(tmp_path: Path) -> None:
    request = tmp_path / "request.eml"
    request.write_bytes(
        _zwxx_request(
            [_entry(1, "2026-0012", "标题一"), _entry(2, "2026-0013", "标题二"), _entry(3, "2026-0015", "标题三")]
        )
    )
    reply = tmp_path / "reply.eml"
    reply.write_bytes(_reply("2026-0013退回，其余同意。"))

    result = run_zwxx("inspect", str(reply), "--request", str(request), "--json")

    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    report = json.loads(result.stdout)
    assert report["decisions"] == {"1": "approve", "2": "return", "3": "approve"}
    assert report["decision"] == "mixed"


def test_request_full_width_layout() -> None:
    text = "【第 １ 条】\n登记编号：２０２６-００２１\n\n【第 ２ 条】\n登记编号：２０２６-００２２\n"

    assert list_request_serials(text) == ["2026-0021", "2026-0022"]


def test_request_plain_numbered_lines() -> None:
    text = "1. 2026-0051 标题一\n2、2026-0052 标题二\n\n一、2026-0051 标题一\n二、2026-0052 标题二\n"

    assert list_request_serials(text) == ["2026-0051", "2026-0052"]


def test_request_serial_from_subject() -> None:
    assert list_request_serials("请审批。", "【请审批】2026-0031 标题") == ["2026-0031"]
    assert list_request_serials("请审批。", "") == []


def test_request_number_gap() -> None:
    with pytest.raises(RequestLayoutError, match="不是从 1 开始的连续序号"):
        list_request_serials("【第 1 条】\n登记编号：2026-0001\n【第 3 条】\n登记编号：2026-0003\n")


def test_request_number_conflict() -> None:
    with pytest.raises(RequestLayoutError, match="同时对应"):
        list_request_serials("1. 2026-0001 甲\n1. 2026-0002 乙\n")
