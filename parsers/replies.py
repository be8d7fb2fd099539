"""Reading of a leader's reply to an approval request: bytes in, one decision per list item out.

Only the leader's new words count. The reply is split into clauses, each clause is classified
(negated forms first), tied to the items it names (1、3, 第2条, 第一条, a serial, 其余, 全部) and the
clauses of each item are combined: return beats reject, reject beats approve. A question, a number outside
the batch or an auto-reply makes every item unclear.
"""

from __future__ import annotations

import email
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import tzinfo
from enum import Enum

from parsers.message import extract_mail_text, parse_message
from parsers.reply_text import TextSegment, extract_new_segments, join_segments
from parsers.reply_words import (
    ITEM_FOLLOWER,
    ClauseKind,
    ClauseReading,
    classify_clause,
    is_question,
    normalise_text,
    remove_quoted_words,
)

_CLAUSE_DELIMITERS = frozenset("，,。.；;！!？?\n")
_COMMENT_TRIM = " \t\n\u3000\u00a0，,、；;。."
_QUOTE_PAIRS = {"“": "”", "「": "」", "『": "』", '"': '"', "‘": "’"}
_CHINESE_NUMBERS = {"一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}
_NUMBER = r"(?:\d{1,3}|[一二两三四五六七八九十]{1,3})"
# List numbers are joined by 、/和/及/与, and a range (1-3, 1至3) names every number between.
_LIST_JOINER = r"(?:、|和|及|与|-|~|至|到)"
_ORDINAL_LIST = re.compile(
    rf"第\s*({_NUMBER}(?:\s*{_LIST_JOINER}\s*(?:第\s*)?{_NUMBER})*)(?![\d一二三四五六七八九十]){ITEM_FOLLOWER}"
)
# A clause may start with bare list numbers (1、3同意, 二退回); 两 is left out because 两条都同意 counts items.
_LEADING_NUMBER = r"(?:\d{1,3}|[一二三四五六七八九十]{1,2})"
_LEADING_LIST = re.compile(
    rf"^\s*({_LEADING_NUMBER}(?:\s*{_LIST_JOINER}\s*{_LEADING_NUMBER})*)(?![\d一二三四五六七八九十]){ITEM_FOLLOWER}"
)
_MAX_RANGE = 99  # a wider range (1-300) is kept as its two ends, which then fall outside the batch
_SERIAL = re.compile(r"\d{4}-\d{4}")
_REST_WORDS = re.compile(r"其余|其他|其它|剩下|剩余")
_ALL_WORDS = re.compile(r"全部|全都|所有|一律|均|都")
_SUBJECT_PREFIX = re.compile(r"^\s*(?:回复|答复|re|自动回复|自动答复|转发|fw|fwd)\s*[:：]\s*", re.I)


class Decision(Enum):
    """A leader's decision on one item, or on a whole batch (``MIXED`` when the items differ)."""

    APPROVE = "approve"
    RETURN = "return"
    REJECT = "reject"
    UNCLEAR = "unclear"
    MIXED = "mixed"


@dataclass(frozen=True)
class ReplyReading:
    """What a leader's reply decides, with the keys that tie it to its request."""

    new_text: str
    decision: Decision
    decisions: dict[int, Decision]  # list number (1 for a single item) -> decision
    comment: str
    edit_requested: bool
    auto_reply: bool
    in_reply_to: str | None
    references: tuple[str, ...]
    subject_serials: tuple[str, ...]  # serials such as 2026-0016 in the subject, reply prefixes removed
    question: bool = False
    unknown_items: tuple[str, ...] = field(default=())  # item names outside the batch, as written


@dataclass(frozen=True)
class _Clause:
    original: str
    reading: ClauseReading
    items: frozenset[int] | None  # None: names no item
    scope: str  # "", "rest" or "all"
    question: bool


def read_reply(
    raw: bytes,
    *,
    batch_size: int,
    default_tz: tzinfo,
    item_serials: Sequence[str] = (),
) -> ReplyReading:
    """Read a raw reply to an approval request of ``batch_size`` items (``item_serials`` in list order, if known).

    Raises ``MessageParseError`` when the mail cannot be parsed and ``ValueError`` when ``batch_size`` is below 1.
    """
    if batch_size < 1:
        raise ValueError(f"批次条目数必须至少为 1，实际为 {batch_size}")
    parsed = parse_message(raw, default_tz=default_tz)
    # NOTE: an HTML-only reply is rendered with its blockquotes dropped, so lines typed inside an HTML quote
    # are lost. Only text/plain replies keep inline replies.
    full_text, _ = extract_mail_text(email.message_from_bytes(raw))
    segments = extract_new_segments(full_text)
    new_text = join_segments(segments)
    subject_serials = tuple(dict.fromkeys(_SERIAL.findall(_strip_subject_prefixes(parsed.subject))))
    common = {
        "new_text": new_text,
        "auto_reply": parsed.is_auto_reply,
        "in_reply_to": parsed.in_reply_to,
        "references": parsed.references,
        "subject_serials": subject_serials,
    }
    unclear = {number: Decision.UNCLEAR for number in range(1, batch_size + 1)}
    if parsed.is_auto_reply:
        return ReplyReading(decision=Decision.UNCLEAR, decisions=unclear, comment="", edit_requested=False, **common)

    clauses = [clause for segment in segments for clause in _read_clauses(segment, batch_size, tuple(item_serials))]
    comment = _build_comment(segments, clauses)
    edit_requested = any(clause.reading.edit_requested for clause in clauses)
    unknown = tuple(name for clause in clauses for name in _unknown_names(clause))
    question = any(clause.question for clause in clauses)
    if question or unknown or not clauses:
        return ReplyReading(
            decision=Decision.UNCLEAR,
            decisions=unclear,
            comment=comment,
            edit_requested=edit_requested,
            question=question,
            unknown_items=unknown,
            **common,
        )

    decisions = _decide_items(clauses, batch_size)
    values = set(decisions.values())
    decision = values.pop() if len(values) == 1 else Decision.MIXED
    return ReplyReading(
        decision=decision,
        decisions=decisions,
        comment=comment,
        edit_requested=edit_requested,
        **common,
    )


def split_clauses(text: str) -> list[tuple[str, str]]:
    """Split text at `，,。.；;！!？?` and line breaks outside quotation marks; return (clause, delimiter) pairs.

    A "." between digits (45.9%) does not split, and 、 never does because it joins list numbers.
    """
    pieces: list[tuple[str, str]] = []
    current: list[str] = []
    closing: str | None = None
    for index, char in enumerate(text):
        if closing is not None:
            current.append(char)
            if char == closing:
                closing = None
            continue
        if char in _QUOTE_PAIRS:
            closing = _QUOTE_PAIRS[char]
            current.append(char)
            continue
        if char == "." and index > 0 and text[index - 1].isdigit() and text[index + 1 : index + 2].isdigit():
            current.append(char)
            continue
        if char in _CLAUSE_DELIMITERS:
            pieces.append(("".join(current), char))
            current = []
            continue
        current.append(char)
    pieces.append(("".join(current), ""))
    return [(clause, delimiter) for clause, delimiter in pieces if clause.strip(_COMMENT_TRIM)]


def _strip_subject_prefixes(subject: str) -> str:
    previous = None
    while previous != subject:
        previous = subject
        subject = _SUBJECT_PREFIX.sub("", subject)
    return subject


def _read_clauses(segment: TextSegment, batch_size: int, item_serials: tuple[str, ...]) -> list[_Clause]:
    clauses: list[_Clause] = []
    for original, delimiter in split_clauses(segment.text):
        normalised = remove_quoted_words(normalise_text(original))
        question = is_question(normalised, delimiter)
        items, scope, remainder = _find_item_names(normalised, batch_size, item_serials)
        reading = classify_clause(remainder)
        if reading.kind is ClauseKind.OTHER and not reading.go_ahead:
            items, scope = None, ""  # numbers in a remark are not item names
        if items is None and not scope and segment.item is not None:
            items = frozenset({segment.item})
        clauses.append(_Clause(original, reading, items, scope, question))
    return clauses


def _find_item_names(
    clause: str, batch_size: int, item_serials: tuple[str, ...]
) -> tuple[frozenset[int] | None, str, str]:
    """Return the list numbers a clause names (0 marks a name outside the batch), its scope word and the rest."""
    numbers: set[int] = set()
    remainder = clause
    for match in _SERIAL.finditer(clause):
        serial = match.group(0)
        if serial in item_serials:
            numbers.add(item_serials.index(serial) + 1)
        elif not item_serials and batch_size == 1:
            numbers.add(1)
        else:
            numbers.add(0)
    remainder = _SERIAL.sub(" ", remainder)
    for match in _ORDINAL_LIST.finditer(remainder):
        numbers.update(_parse_number_list(match.group(1)))
    remainder = _ORDINAL_LIST.sub(" ", remainder)
    leading = _LEADING_LIST.match(remainder)
    if leading:
        numbers.update(_parse_number_list(leading.group(1)))
        remainder = remainder[leading.end() :]

    scope = ""
    if _REST_WORDS.search(remainder):
        scope, remainder = "rest", _REST_WORDS.sub(" ", remainder)
    elif _ALL_WORDS.search(remainder):
        # 第1、2条都同意: with list numbers, 都/均 covers the named items only.
        scope = "" if numbers else "all"
        remainder = _ALL_WORDS.sub(" ", remainder)
    remainder = re.sub(r"^[\s、和及与]+", "", remainder)
    checked = frozenset(number if 1 <= number <= batch_size else 0 for number in numbers)
    return (checked or None), scope, remainder.strip()


def _parse_number_list(text: str) -> set[int]:
    numbers: set[int] = set()
    for part in re.split(r"\s*(?:、|和|及|与)\s*(?:第\s*)?", text):
        bounds = [_parse_number(bound) for bound in re.split(r"\s*(?:-|~|至|到)\s*(?:第\s*)?", part) if bound]
        if len(bounds) == 2 and 0 < bounds[0] < bounds[1] <= _MAX_RANGE:
            numbers.update(range(bounds[0], bounds[1] + 1))
        else:
            numbers.update(bounds)
    return numbers


def _parse_number(text: str) -> int:
    """Return the value of 1-999 or of a Chinese numeral up to 九十九 (十二, 二十)."""
    if text.isdigit():
        return int(text)
    if "十" in text:
        tens, _, units = text.partition("十")
        return _CHINESE_NUMBERS.get(tens, 1) * 10 + _CHINESE_NUMBERS.get(units, 0)
    return _CHINESE_NUMBERS.get(text, 0)


def _unknown_names(clause: _Clause) -> list[str]:
    return [clause.original.strip()] if clause.items and 0 in clause.items else []


def _decide_items(clauses: list[_Clause], batch_size: int) -> dict[int, Decision]:
    """Gather the clauses of each item and combine them into one decision per item."""
    deciding = [clause for clause in clauses if clause.reading.kind is not ClauseKind.OTHER]
    named_anywhere = any(clause.items or clause.scope == "rest" for clause in deciding)
    per_item: dict[int, list[ClauseReading]] = {number: [] for number in range(1, batch_size + 1)}
    rest: list[ClauseReading] = []
    named: set[int] = set()
    last_items: frozenset[int] | None = None
    for clause in deciding:
        items = clause.items
        if items is None and not clause.scope and named_anywhere:
            items = last_items  # a clause without names continues the previous named clause
        if clause.scope == "all" or (items is None and not clause.scope and not named_anywhere):
            for readings in per_item.values():
                readings.append(clause.reading)
        elif clause.scope == "rest" or items is None:
            rest.append(clause.reading)
        else:
            named.update(items)
            for number in items:
                per_item[number].append(clause.reading)
            last_items = items
    for number in range(1, batch_size + 1):
        if number not in named:
            per_item[number].extend(rest)
    return {number: combine_readings(readings) for number, readings in per_item.items()}


def combine_readings(readings: list[ClauseReading]) -> Decision:
    """Combine one item's clause readings: return, then reject, then approve; an edit alone returns it."""
    kinds = {reading.kind for reading in readings}
    if ClauseKind.RETURN in kinds:
        return Decision.RETURN
    if ClauseKind.REJECT in kinds:
        return Decision.REJECT
    if any(reading.go_ahead for reading in readings):
        return Decision.APPROVE
    if ClauseKind.EDIT in kinds:
        return Decision.RETURN
    return Decision.UNCLEAR


def _build_comment(segments: list[TextSegment], clauses: list[_Clause]) -> str:
    """Return the leader's words beyond the decision phrases, in order, outer separators trimmed."""
    comment_parts: list[str] = []
    index = 0
    for segment in segments:
        pieces = split_clauses(segment.text)
        parts: list[str] = []
        for original, delimiter in pieces:
            clause = clauses[index]
            index += 1
            if clause.reading.decision_only and not clause.question:
                continue
            parts.append(original + delimiter)
        text = "".join(parts).strip(_COMMENT_TRIM)
        if text:
            comment_parts.append(text)
    return "\n".join(comment_parts)
