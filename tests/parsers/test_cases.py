"""Fault cases from mail software in the field: each checked value of the shared case list."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.score_corpus import CASES, check_case, inspect_case_file, load_units

EXPECTED: dict[str, dict[str, Any]] = json.loads((CASES / "expected.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize("name", list(EXPECTED), ids=lambda name: name.rsplit("/", 1)[-1].split("_", 1)[0])
def test_fault_case(name: str) -> None:
    report = inspect_case_file(name, load_units())
    assert check_case(report, EXPECTED[name]) == []


def test_missing_padding_matches_published_digest() -> None:
    digest = (CASES / "eml" / "case13_expected_docx.sha256").read_text(encoding="ascii").split()[0]
    report = inspect_case_file("eml/case13_base64_missing_padding_attachment.eml", load_units())
    assert report["attachment_sha256"] == [digest]


def test_shared_message_id_keeps_both_messages() -> None:
    first = inspect_case_file("eml/case17a_duplicate_message_id.eml", load_units())
    second = inspect_case_file("eml/case17b_duplicate_message_id.eml", load_units())
    assert first["message_id"] == second["message_id"]
    assert first["subject"] != second["subject"]
    assert first["mail_text"] != second["mail_text"]


def test_tnef_name_decoded_with_code_page() -> None:
    report = inspect_case_file("eml/case11_outlook_winmail_dat_tnef.eml", load_units())
    assert report["attachments"] == ["winmail.dat", "九华山庙会活动安排.docx"]
    assert report["item_source"] == "docx"


def test_forwarded_message_inner_sender_kept() -> None:
    report = inspect_case_file("eml/case10_forwarded_message_rfc822_with_docx.eml", load_units())
    assert report["item_source"] == "rfc822>docx"
    assert report["attachment_kinds"] == ["message", "docx"]


def test_legacy_doc_warning_in_chinese() -> None:
    report = inspect_case_file("docx/D5_legacy_doc_renamed.docx", load_units())
    assert report["kind"] == "doc"
    assert report["text"] is None
    assert "旧版 Word" in report["warnings"][0]
