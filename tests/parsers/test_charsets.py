"""Charset labels, detection and RFC 2047 header decoding."""

from __future__ import annotations

import base64

import pytest

from parsers.charsets import (
    decode_base64_lenient,
    decode_header_text,
    decode_text,
    detect_text,
    normalize_charset,
)


@pytest.mark.parametrize("label", ["gb2312", "GB2312", '"gbk"', "cp936", "x-gbk", "GB18030", "euc-cn"])
def test_gb_labels_map_to_gb18030(label: str) -> None:
    assert normalize_charset(label) == "gb18030"


@pytest.mark.parametrize("label", [None, "", "unknown-8bit", "no-such-charset", "utf-8\udcff"])
def test_unusable_labels_give_none(label: str | None) -> None:
    assert normalize_charset(label) is None


def test_gb2312_label_on_gbk_only_character() -> None:
    assert decode_text("王堃".encode("gbk"), "gb2312") == "王堃"


def test_gb2312_label_em_dash_is_u2014() -> None:
    assert decode_text(b"1\xa1\xaa10\xd4\xc2", "gb2312") == "1\u201410月"


def test_wrong_label_falls_back_to_detection() -> None:
    assert decode_text("联系人：王喆".encode("gbk"), "utf-8") == "联系人：王喆"


def test_detect_text_without_label() -> None:
    text = "省旅游局召开党风廉政建设警示教育大会，局机关全体干部职工参加会议。"
    assert detect_text(text.encode("gbk")) == text
    assert detect_text(text.encode("utf-8")) == text


def test_split_gbk_character_across_encoded_words() -> None:
    raw = "【宣传】宏村".encode("gbk")
    first, second = raw[:5], raw[5:]  # cuts the third character in half
    header = (
        f"=?gb2312?B?{base64.b64encode(first).decode()}?=\r\n"
        f" =?gb2312?B?{base64.b64encode(second).decode()}?="
    )
    assert decode_header_text(header) == "【宣传】宏村"


def test_encoded_word_inside_quotes() -> None:
    header = '"=?UTF-8?B?' + base64.b64encode("晴川".encode()).decode() + '?=" <a@example.com>'
    assert decode_header_text(header) == '"晴川" <a@example.com>'


def test_raw_utf8_header_bytes() -> None:
    assert decode_header_text("林秀英".encode()) == "林秀英"


def test_raw_gbk_header_bytes() -> None:
    raw = "婺源县文旅局".encode("gbk").decode("ascii", "surrogateescape")
    assert decode_header_text(raw) == "婺源县文旅局"


def test_text_between_encoded_words_kept() -> None:
    word = "=?UTF-8?B?" + base64.b64encode("工作".encode()).decode() + "?="
    assert decode_header_text(f"Re: {word} and {word}") == "Re: 工作 and 工作"


def test_quoted_printable_encoded_word() -> None:
    assert decode_header_text("=?utf-8?Q?=E5=B7=A5=E4=BD=9C_note?=") == "工作 note"


def test_base64_missing_padding() -> None:
    assert decode_base64_lenient(base64.b64encode(b"abcd").rstrip(b"=")) == b"abcd"
    assert decode_base64_lenient("YWJjZA") == b"abcd"
