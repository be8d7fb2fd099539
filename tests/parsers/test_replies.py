"""read_reply on the 23 stored leader replies and on small inline replies, one reading rule per case."""

from __future__ import annotations

import base64
import json
import os
import re
from datetime import timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from parsers.message import parse_message
from parsers.quotes import strip_quoted_history
from parsers.replies import Decision, ReplyReading, read_reply, split_clauses

CST = timezone(timedelta(hours=8))
SHARED = Path(os.environ.get("ZWXX_SHARED", Path(__file__).resolve().parents[2].parent / "shared"))
REPLIES = SHARED / "replies"
_REQUEST_ITEM_LINE = re.compile(r"^\s*(\d{1,3})\.\s*(\d{4}-\d{4})\s", re.M)

A, R, J, U, M = Decision.APPROVE, Decision.RETURN, Decision.REJECT, Decision.UNCLEAR, Decision.MIXED

SINGLE_QUOTE = """

------------------ 原始邮件 ------------------
发件人: "政务信息"<zwxx@tourism.example.gov.cn>;
发送时间: 2026年11月12日(星期四) 下午4:05
收件人: "邓雪梅"<leader@qq.example.com>;
主题: 【请审批】2026-0045 测试标题（工作动态）

邓局长：

请直接回复“同意”或“不同意”，如需修改请写明意见。
"""

BATCH_QUOTE = """

在 2026-11-18 10:40:09，"政务信息" <zwxx@tourism.example.gov.cn> 写道：
>韩局长：
>
>1. 2026-0074 标题一（工作动态）
>2. 2026-0075 标题二（约稿信息）
>3. 2026-0076 标题三（工作动态）
>
>请逐条回复意见，例如“全部同意”或“1、2同意，3退回”。
"""


def _expected_replies() -> list[dict[str, Any]]:
    path = REPLIES / "expected.json"
    if not path.exists():
        return []
    replies: list[dict[str, Any]] = json.loads(path.read_text(encoding="utf-8"))["replies"]
    return replies


def _request_serials(request: Path) -> list[str]:
    """Return the serials a request lists, in list order: one for a single request, one per line for a batch."""
    parsed = parse_message(request.read_bytes(), default_tz=CST)
    listed = [serial for _, serial in _REQUEST_ITEM_LINE.findall(parsed.mail_text)]
    if listed:
        return listed
    return re.findall(r"\d{4}-\d{4}", parsed.subject)[:1]


def _build_reply(
    body: str, *, subject: str = "Re: 【请审批】2026-0045 测试标题（工作动态）", headers: str = ""
) -> bytes:
    encoded = base64.b64encode(body.encode("utf-8")).decode("ascii")
    head = (
        "From: leader@tourism.example.gov.cn\r\n"
        "To: zwxx@tourism.example.gov.cn\r\n"
        f"Subject: =?utf-8?B?{base64.b64encode(subject.encode()).decode('ascii')}?=\r\n"
        "Date: Thu, 12 Nov 2026 16:11:46 +0800\r\n"
        "Message-ID: <reply-1@tourism.example.gov.cn>\r\n"
        "In-Reply-To: <request-1@tourism.example.gov.cn>\r\n"
        "References: <request-1@tourism.example.gov.cn>\r\n"
        f"{headers}"
        "MIME-Version: 1.0\r\n"
        'Content-Type: text/plain; charset="utf-8"\r\n'
        "Content-Transfer-Encoding: base64\r\n\r\n"
    )
    return (head + encoded + "\r\n").encode("ascii")


def _read_single(text: str) -> ReplyReading:
    return read_reply(_build_reply(text + SINGLE_QUOTE), batch_size=1, default_tz=CST)


def _read_batch(text: str, size: int = 3) -> ReplyReading:
    body = text + BATCH_QUOTE
    return read_reply(
        _build_reply(body, subject="Re: 【请审批】3条政务信息（2026-0074等）"), batch_size=size, default_tz=CST
    )


@pytest.mark.parametrize("expected", _expected_replies(), ids=lambda entry: entry["file"].rsplit("/", 1)[-1])
def test_stored_reply_fields(expected: dict[str, Any]) -> None:
    serials = _request_serials(REPLIES / expected["request"])
    assert len(serials) == len(expected["items"])
    reading = read_reply(
        (REPLIES / expected["file"]).read_bytes(), batch_size=len(serials), default_tz=CST, item_serials=serials
    )

    assert reading.new_text == expected["new_text"]
    assert reading.decision.value == expected["decision"]
    assert {str(number): value.value for number, value in reading.decisions.items()} == expected["decisions"]
    assert reading.comment == expected["comment"]
    assert reading.edit_requested == expected["edit_requested"]
    assert reading.auto_reply == expected["auto_reply"]
    assert reading.in_reply_to == expected["in_reply_to"] or expected["in_reply_to"] in reading.references


def test_stored_replies_present() -> None:
    assert len(_expected_replies()) == 23


@pytest.mark.parametrize(
    ("text", "decision"),
    [
        ("不同意", J),
        ("不予同意。", J),
        ("暂不同意，等正式数据", J),
        ("同意", A),
        ("原则同意。", A),
        ("同意报送", A),
        ("批准", A),
        ("无意见", A),
        ("退回", R),
        ("修改后再报", R),
        ("不报", J),
        ("不行", J),
    ],
)
def test_single_decision_words(text: str, decision: Decision) -> None:
    assert _read_single(text).decision is decision


@pytest.mark.parametrize(("text", "decision"), [("准", A), ("好的", A), ("行", A), ("ＯＫ", A), ("可以", A)])
def test_short_word_whole_clause(text: str, decision: Decision) -> None:
    assert _read_single(text).decision is decision


@pytest.mark.parametrize("text", ["准确", "您好", "数据准确", "好好看看"])
def test_short_word_inside_other_word(text: str) -> None:
    assert _read_single(text).decision is U


@pytest.mark.parametrize("text", ["这个数据准确吗？", "可以吗", "是否同意报送", "同意吗?", "能否下周再报"])
def test_question_is_unclear(text: str) -> None:
    reading = _read_single(text)
    assert reading.decision is U
    assert reading.question


def test_question_makes_whole_reply_unclear() -> None:
    reading = _read_single("同意，市里同意公开这个数据了吗？")
    assert reading.decision is U


def test_quoted_word_not_decision() -> None:
    assert _read_single("你们说的“同意”是指谁").decision is U
    assert _read_single("他回复了「同意」").decision is U


def test_quote_never_decides() -> None:
    reading = _read_single("\u3000")
    assert reading.new_text == ""
    assert reading.decision is U


def test_acknowledgement_alone_unclear() -> None:
    assert _read_single("已阅").decision is U
    assert _read_single("收到").decision is U


def test_acknowledgement_with_approval() -> None:
    reading = _read_single("閱，同意。")
    assert reading.decision is A
    assert reading.comment == ""


def test_edit_with_go_ahead_approves() -> None:
    reading = _read_single("标题改为“某地开展检查”后报送")
    assert reading.decision is A
    assert reading.edit_requested


def test_edit_without_go_ahead_returns() -> None:
    reading = _read_single("第二段删去")
    assert reading.decision is R
    assert reading.edit_requested
    assert reading.comment == "第二段删去"


def test_approve_keeps_remark_as_comment() -> None:
    reading = _read_single("同意，请核实数据后报送。")
    assert reading.decision is A
    assert reading.comment == "请核实数据后报送"
    assert not reading.edit_requested


def test_signature_words_ignored() -> None:
    reading = _read_single("退回\n\n韩立峰\n省旅游局\n好山好水好风光\u3000文旅融合谱新篇")
    assert reading.new_text == "退回"
    assert reading.decision is R


def test_traditional_characters() -> None:
    assert _read_single("準").decision is A


def test_batch_numbers_with_dunhao() -> None:
    reading = _read_batch("1、2同意，3退回")
    assert reading.decisions == {1: A, 2: A, 3: R}
    assert reading.decision is M


def test_batch_rest_word() -> None:
    reading = _read_batch("第2条退回，其余同意")
    assert reading.decisions == {1: A, 2: R, 3: A}


def test_batch_all_word() -> None:
    assert _read_batch("全部同意").decisions == {1: A, 2: A, 3: A}
    assert _read_batch("都不同意").decisions == {1: J, 2: J, 3: J}


def test_batch_fullwidth_digits() -> None:
    reading = _read_batch("１、３同意，２不报")
    assert reading.decisions == {1: A, 2: J, 3: A}


def test_batch_chinese_ordinal() -> None:
    reading = _read_batch("第一条同意，第三条退回")
    assert reading.decisions == {1: A, 2: U, 3: R}
    assert reading.decision is M


def test_batch_serial_names_item() -> None:
    serials = ["2026-0074", "2026-0075", "2026-0076"]
    raw = _build_reply("2026-0075退回，其余同意" + BATCH_QUOTE)
    reading = read_reply(raw, batch_size=3, default_tz=CST, item_serials=serials)
    assert reading.decisions == {1: A, 2: R, 3: A}


def test_batch_number_outside_batch() -> None:
    reading = _read_batch("1、4同意")
    assert reading.decision is U
    assert reading.decisions == {1: U, 2: U, 3: U}
    assert reading.unknown_items


def test_batch_unnamed_decision_applies_all() -> None:
    assert _read_batch("同意").decisions == {1: A, 2: A, 3: A}


def test_batch_inline_answer() -> None:
    body = """在 2026-11-18 10:40:09，"政务信息" <zwxx@tourism.example.gov.cn> 写道：
>1. 2026-0074 标题一（工作动态）
同意
>2. 2026-0075 标题二（约稿信息）
>3. 2026-0076 标题三（工作动态）
不报
>
>请逐条回复意见，例如“全部同意”或“1、2同意，3退回”。
"""
    reading = read_reply(_build_reply(body), batch_size=3, default_tz=CST)
    assert reading.new_text == "同意\n不报"
    assert reading.decisions == {1: A, 2: U, 3: J}


def test_paragraph_number_not_item() -> None:
    reading = _read_batch("第2段删去，同意")
    assert reading.decisions == {1: A, 2: A, 3: A}
    assert reading.edit_requested


def test_auto_reply_header() -> None:
    raw = _build_reply("我正在休假。", headers="Auto-Submitted: auto-replied\r\n")
    reading = read_reply(raw, batch_size=1, default_tz=CST)
    assert reading.auto_reply
    assert reading.decision is U


def test_subject_serials() -> None:
    raw = _build_reply("同意", subject="自动回复: 回复：【请审批】2026-0016 标题")
    reading = read_reply(raw, batch_size=1, default_tz=CST)
    assert reading.subject_serials == ("2026-0016",)
    assert reading.in_reply_to == "<request-1@tourism.example.gov.cn>"


def test_split_clauses_keeps_quotes_and_decimals() -> None:
    clauses = split_clauses("标题改为“甲，乙”，增长45.9%。1、2同意")
    assert [clause for clause, _ in clauses] == ["标题改为“甲，乙”", "增长45.9%", "1、2同意"]


def test_batch_size_must_be_positive() -> None:
    with pytest.raises(ValueError, match="批次条目数"):
        read_reply(_build_reply("同意"), batch_size=0, default_tz=CST)


def test_ordinal_word_not_item() -> None:
    reading = _read_batch("同意，第一时间报送")
    assert reading.decisions == {1: A, 2: A, 3: A}


def test_no_objection_phrase_approves() -> None:
    assert _read_single("无不同意见").decision is A


def test_inaccurate_is_not_reject() -> None:
    assert _read_single("数据不准确").decision is U


def test_closing_words_kept() -> None:
    reading = _read_single("同意\n\n辛苦了")
    assert reading.new_text == "同意\n\n辛苦了"
    assert reading.comment == "辛苦了"


def test_single_item_named_beyond() -> None:
    assert _read_single("第2条同意").decision is U


@pytest.mark.parametrize(
    "separator", ["-----邮件原件-----", "------------------ Original ------------------", "-------- 原始邮件 --------"]
)
def test_separator_starts_history(separator: str) -> None:
    text = f"同意\n\n{separator}\n发件人: 政务信息\n请直接回复“同意”或“不同意”"
    assert strip_quoted_history(text) == "同意"


def test_batch_number_range() -> None:
    assert _read_batch("1至2同意，3退回").decisions == {1: A, 2: A, 3: R}
    assert _read_batch("1-300同意").decision is U


def test_batch_repeated_ordinals() -> None:
    reading = _read_batch("第1条、第3条同意")
    assert reading.decisions == {1: A, 2: U, 3: A}
    assert reading.comment == ""


def test_go_ahead_phrases() -> None:
    assert _read_single("可以报送").decision is A
    assert _read_single("不可以报送").decision is J


def test_batch_all_word_after_numbers() -> None:
    assert _read_batch("第1、2条都同意").decisions == {1: A, 2: A, 3: U}
    assert _read_batch("全部同意，第2条退回").decisions == {1: A, 2: R, 3: A}
