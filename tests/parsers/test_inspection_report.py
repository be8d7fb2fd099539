"""inspect_message and inspect_document: the JSON-ready report."""

from __future__ import annotations

import base64
import json
from datetime import timedelta, timezone

from daemon.inspection import inspect_document, inspect_message
from tests.parsers.docx_builder import build_docx, paragraph
from tests.score_corpus import load_units

CST = timezone(timedelta(hours=8))


def _raw(subject: str, body: str, sender: str = "cdly@example.gov.cn", extra: str = "") -> bytes:
    encoded_subject = base64.b64encode(subject.encode()).decode()
    encoded_body = base64.b64encode(body.encode()).decode()
    return (
        f"From: <{sender}>\r\nSubject: =?utf-8?B?{encoded_subject}?=\r\n{extra}"
        "Message-ID: <m1@example.com>\r\nContent-Type: text/plain; charset=utf-8\r\n"
        f"Content-Transfer-Encoding: base64\r\n\r\n{encoded_body}\r\n"
    ).encode("ascii")


def test_report_is_json_ready() -> None:
    report = inspect_message(
        _raw(
            "【工作动态】标题一",
            "标题一\n\n\u3000\u3000正文。",
            extra="Date: Mon, 2 Nov 2026 09:15:22 +0800\r\n",
        ),
        units=load_units(),
        default_tz=CST,
    )
    json.dumps(report, ensure_ascii=False)
    assert report["unit"] == "cd"
    assert report["content_unit"] == "cd"
    assert report["date"] == "2026-11-02T09:15:22+08:00"
    assert report["sent_at"] == report["date"]
    assert report["is_item"] is True
    assert report["title"] == "标题一"
    assert report["body_text"] == "正文。"
    assert report["body_chars"] == 3
    assert report["is_duplicate"] is False
    assert report["is_revision"] is False


def test_unregistered_sender_has_no_unit() -> None:
    report = inspect_message(
        _raw("报送", "标题\n\n正文。", sender="x@example.org"), units=load_units(), default_tz=CST
    )
    assert report["unit"] is None


def test_without_units() -> None:
    report = inspect_message(_raw("报送", "正文"), units=None, default_tz=CST)
    assert report["unit"] is None
    assert report["content_unit"] is None


def test_auto_reply_report() -> None:
    raw = _raw("自动回复: 收到", "您的邮件已收到。", extra="Auto-Submitted: auto-replied\r\n")
    report = inspect_message(raw, units=load_units(), default_tz=CST)
    assert report["is_auto_reply"] is True
    assert report["is_item"] is False
    assert report["title"] is None
    assert report["body_text"] is None


def test_inspect_document_docx() -> None:
    report = inspect_document(build_docx(paragraph("标题") + paragraph("正文")))
    assert report == {"kind": "docx", "text": "标题\n正文", "warnings": []}


def test_inspect_document_broken() -> None:
    report = inspect_document(b"PK\x03\x04broken")
    assert report["text"] is None
    assert report["warnings"] != []
