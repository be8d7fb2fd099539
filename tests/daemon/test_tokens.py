"""Approval reply tokens: signing, verification against every bound claim, and finding tokens in headers."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from daemon.tokens import (
    SIGNATURE_CHARS,
    FoundToken,
    TokenClaims,
    find_tokens,
    reply_to_address,
    sign,
    verify,
)

SECRET = b"test-approval-secret-0123456789abcdef"
CLAIMS = TokenClaims(
    request_id=12,
    leader="leader@tourism.example.gov.cn",
    action="decide",
    expires_at=datetime(2026, 11, 9, 1, 0, tzinfo=UTC),
    items=((3, 1), (4, 2)),
)


def parse(token: str) -> FoundToken:
    (found,) = find_tokens([token])
    return found


def test_sign_and_verify_round_trip() -> None:
    token = sign(SECRET, CLAIMS)

    assert token.startswith("zw12-")
    assert len(token) == len("zw12-") + SIGNATURE_CHARS
    assert token == token.lower()
    assert verify(SECRET, parse(token), CLAIMS)


def test_sign_is_deterministic() -> None:
    assert sign(SECRET, CLAIMS) == sign(SECRET, CLAIMS)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("leader", "deputy@tourism.example.gov.cn"),
        ("leader", "leader@tourism.example.gov.cn.evil.example"),
        ("action", "approve"),
        ("expires_at", CLAIMS.expires_at + timedelta(seconds=1)),
        ("expires_at", CLAIMS.expires_at + timedelta(days=7)),
        ("items", ((3, 1),)),  # an item dropped from the batch
        ("items", ((3, 1), (4, 2), (5, 1))),  # an item added
        ("items", ((3, 1), (5, 2))),  # another item in the same place
        ("items", ((3, 2), (4, 2))),  # a new version of the first item
        ("items", ((4, 2), (3, 1))),  # the same items in another order
    ],
)
def test_changed_claim_breaks_verification(field: str, value: Any) -> None:
    token = parse(sign(SECRET, CLAIMS))
    changed = replace(CLAIMS, **{field: value})

    assert not verify(SECRET, token, changed)


def test_other_request_id_breaks_verification() -> None:
    token = parse(sign(SECRET, CLAIMS))
    other = replace(CLAIMS, request_id=13)
    moved = FoundToken(13, token.signature)  # the signature put under another request id

    assert not verify(SECRET, token, other)
    assert not verify(SECRET, moved, other)
    assert not verify(SECRET, moved, CLAIMS)


def test_leader_case_and_spaces_do_not_matter() -> None:
    token = parse(sign(SECRET, CLAIMS))
    shouting = replace(CLAIMS, leader="  LEADER@Tourism.Example.Gov.CN ")

    assert verify(SECRET, token, shouting)


def test_wrong_secret_fails() -> None:
    token = parse(sign(SECRET, CLAIMS))

    assert not verify(b"another-secret", token, CLAIMS)
    assert not verify(SECRET + b"x", token, CLAIMS)


def test_empty_secret_refused() -> None:
    with pytest.raises(ValueError, match="no approval secret"):
        sign(b"", CLAIMS)
    token = parse(sign(SECRET, CLAIMS))
    assert not verify(b"", token, CLAIMS)


def test_every_single_character_change_fails() -> None:
    token = parse(sign(SECRET, CLAIMS))
    alphabet = "abcdefghijklmnopqrstuvwxyz234567"

    for position in range(SIGNATURE_CHARS):
        original = token.signature[position]
        replacement = alphabet[(alphabet.index(original) + 1) % len(alphabet)]
        altered = token.signature[:position] + replacement + token.signature[position + 1 :]
        assert not verify(SECRET, FoundToken(token.request_id, altered), CLAIMS), position


def test_upper_case_token_verifies() -> None:
    token = sign(SECRET, CLAIMS)

    assert verify(SECRET, parse(token.upper()), CLAIMS)


def test_find_in_plus_address() -> None:
    token = sign(SECRET, CLAIMS)
    address = reply_to_address("zwxx@tourism.example.gov.cn", token, plus=True)

    assert address == f"zwxx+{token}@tourism.example.gov.cn"
    assert [str(found) for found in find_tokens([f"韩立峰 <{address}>"])] == [token]


def test_plus_addressing_off_keeps_address() -> None:
    token = sign(SECRET, CLAIMS)

    assert reply_to_address("zwxx@tourism.example.gov.cn", token, plus=False) == "zwxx@tourism.example.gov.cn"


def test_find_in_subject_upper_case() -> None:
    token = sign(SECRET, CLAIMS)
    subject = f"回复：【请审批】2026-0003 成都启动冬季消费季 〔审批码 {token.upper()}〕"

    (found,) = find_tokens([subject])
    assert found.request_id == 12
    assert found.signature == token.split("-", 1)[1]  # stored in lower case
    assert verify(SECRET, found, CLAIMS)


def test_same_token_in_address_and_subject_found_once() -> None:
    token = sign(SECRET, CLAIMS)
    texts = [f"答复: 【请审批】〔审批码 {token}〕", f"zwxx+{token}@tourism.example.gov.cn", token.upper()]

    assert [str(found) for found in find_tokens(texts)] == [token]


def test_distinct_tokens_kept_in_order() -> None:
    first = sign(SECRET, CLAIMS)
    second = sign(SECRET, replace(CLAIMS, request_id=7))

    found = find_tokens([f"{second} 和 {first}", None])  # type: ignore[list-item]
    assert [str(token) for token in found] == [second, first]


@pytest.mark.parametrize(
    "text",
    [
        "",
        "回复：【请审批】2026-0003 成都启动冬季消费季",
        "zw12-",
        "zw12-abcdefghij",  # signature too short
        "zw12-abcdefghijklmnopqrs1",  # 1 is not base32
        "zw12-abcdefghijklmnopqrstu",  # 21 letters: no word boundary after 20
        "xzw12-abcdefghijklmnopqrst",  # glued to a word before it
        "zw-abcdefghijklmnopqrst",  # no request id
        "zw1234567890123-abcdefghijklmnopqrst",  # request id of 13 digits
        "zwx12-abcdefghijklmnopqrst",
    ],
)
def test_find_ignores_garbage(text: str) -> None:
    assert find_tokens([text]) == []


@pytest.mark.parametrize("template", ["〔审批码\u3000{token}〕", "审批码：{token}。", "(审批码 {token})"])
def test_find_after_chinese_punctuation(template: str) -> None:
    token = sign(SECRET, CLAIMS)

    assert [str(found) for found in find_tokens([template.format(token=token)])] == [token]


def test_token_glued_to_chinese_characters_not_found() -> None:
    # \b needs a non-word character on each side, and CJK characters are word characters in Python's re.
    token = sign(SECRET, CLAIMS)

    assert find_tokens([f"审批码{token}请保留"]) == []
