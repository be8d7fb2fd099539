"""Word lists and clause classification for leaders' replies to approval requests.

A clause is one piece of the leader's text between `，,。.；;！!?？` or line breaks. Every function here
works on normalised text (see ``normalise_text``) with quoted words already removed.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from enum import Enum

TRADITIONAL_TO_SIMPLIFIED = str.maketrans("準閱報請後暫儘", "准阅报请后暂尽")

RETURN_WORDS = ("修改后再报", "改后再报", "退回", "退改", "重新报", "再报")
REJECT_WORDS = (
    "不予同意",
    "暂不同意",
    "不同意",
    "不予报送",
    "暂不报送",
    "暂缓报送",
    "不宜报",
    "不要报",
    "不报",
    "不批",
    "不准",
    "不行",
    "不可以",
)
APPROVE_WORDS = ("同意", "批准", "准予", "无意见", "无异议", "没意见", "没有意见", "可以报送", "可以上报", "可以发")
# Words that approve only when they are the whole clause: 准 is inside 准确, 好 inside 您好.
SHORT_APPROVE_WORDS = frozenset(
    {"准", "可以", "可", "好", "好的", "行", "ok", "okay", "报送", "可报", "可以报", "发吧", "报吧"}
)
ACK_WORDS = frozenset({"阅", "已阅", "收到", "已收到", "知道了", "悉", "已悉"})
# Words around a decision word that add nothing, so the clause is still only a decision phrase.
_FILLER = r"(?:原则上|原则|完全|十分|非常|拟|予以|请|即可|可以|报送|上报|发送|发|了|的|吧|啊|呀|哈|嗯)*"
_GO_AHEAD = re.compile(r"后(?:再)?(?:报送|上报|报|发送|发)")
_CONCRETE_EDIT = re.compile(r"(?:改为|改成|改作|换成|替换为|删去|删除|删掉|去掉)")
_GENERAL_EDIT = re.compile(r"(?:请修改|修改一下|需修改|要修改|修改完善|请完善)")
_QUESTION_WORDS = ("是否", "能否", "可否")
_QUESTION_END = re.compile(r"(?:\?|吗|么)\s*$")
_QUOTED = re.compile(r"“[^”]*”|「[^」]*」|『[^』]*』|\"[^\"]*\"|‘[^’]*’")
_TRAILING_PARTICLES = re.compile(r"[了的吧啊呀哈嗯\s~]+$")
# Phrases that contain a negated decision word but do not negate a decision: 无不同意见 is "no objection",
# 不准确 is "inaccurate".
_FALSE_NEGATIONS = (("没有不同意见", "无异议"), ("无不同意见", "无异议"), ("不准确", "有误"))
# Pattern for the text after a list number or 第N that names an item: 条/项/篇, or a decision or edit word.
ITEM_FOLLOWER = (
    r"(?:\s*(?:条|项|篇)|(?=\s*(?:同意|退回|退改|不|暂|准|可以|好|行|无|没|原则|批|请|予|阅|已阅|收到|"
    r"修改|改后|重新|再报|标题|ok|[:：]|$)))"
)


class ClauseKind(Enum):
    """Kind of one clause of a reply."""

    RETURN = "return"
    REJECT = "reject"
    APPROVE = "approve"
    ACK = "ack"
    EDIT = "edit"
    OTHER = "other"


@dataclass(frozen=True)
class ClauseReading:
    """The reading of one clause: its kind, whether it named a concrete edit, and whether it is only a decision."""

    kind: ClauseKind
    go_ahead: bool  # an approval, also when the clause is mainly an edit (标题改为…后报送)
    edit_requested: bool
    decision_only: bool  # nothing but a decision or acknowledgement phrase, so it is left out of the comment


def normalise_text(text: str) -> str:
    """Return ``text`` in NFKC form, with the listed traditional characters simplified, lower-cased and stripped."""
    text = unicodedata.normalize("NFKC", text).translate(TRADITIONAL_TO_SIMPLIFIED).lower()
    return text.strip(" \t\n\u3000\u00a0\ufeff")


def remove_quoted_words(text: str) -> str:
    """Return ``text`` without the words inside quotation marks, which are discussed, never decided."""
    return _QUOTED.sub("", text)


def is_question(clause: str, delimiter: str) -> bool:
    """Tell whether a normalised clause is a question: it ends in ?/吗/么 or contains 是否/能否/可否."""
    if delimiter in {"?", "？"} or _QUESTION_END.search(clause):
        return True
    return any(word in clause for word in _QUESTION_WORDS)


def classify_clause(clause: str) -> ClauseReading:
    """Classify one normalised clause with quoted words removed; negated forms are matched first."""
    core = clause.strip()
    for phrase, meaning in _FALSE_NEGATIONS:
        core = core.replace(phrase, meaning)
    whole = _TRAILING_PARTICLES.sub("", core) or core

    if any(word in core for word in RETURN_WORDS):
        return ClauseReading(
            kind=ClauseKind.RETURN,
            go_ahead=False,
            edit_requested=bool(_CONCRETE_EDIT.search(core)),
            decision_only=_is_only(core, RETURN_WORDS),
        )
    if any(word in core for word in REJECT_WORDS):
        return ClauseReading(
            kind=ClauseKind.REJECT, go_ahead=False, edit_requested=False, decision_only=_is_only(core, REJECT_WORDS)
        )

    concrete_edit = bool(_CONCRETE_EDIT.search(core))
    if concrete_edit or _GENERAL_EDIT.search(core):
        go_ahead = bool(_GO_AHEAD.search(core)) or any(word in core for word in APPROVE_WORDS)
        return ClauseReading(kind=ClauseKind.EDIT, go_ahead=go_ahead, edit_requested=concrete_edit, decision_only=False)

    if any(word in core for word in APPROVE_WORDS):
        return ClauseReading(
            kind=ClauseKind.APPROVE, go_ahead=True, edit_requested=False, decision_only=_is_only(core, APPROVE_WORDS)
        )
    if whole in SHORT_APPROVE_WORDS or core in SHORT_APPROVE_WORDS:
        return ClauseReading(kind=ClauseKind.APPROVE, go_ahead=True, edit_requested=False, decision_only=True)
    if whole in ACK_WORDS or core in ACK_WORDS:
        return ClauseReading(kind=ClauseKind.ACK, go_ahead=False, edit_requested=False, decision_only=True)
    if _GO_AHEAD.search(core):
        return ClauseReading(kind=ClauseKind.APPROVE, go_ahead=True, edit_requested=False, decision_only=False)
    return ClauseReading(kind=ClauseKind.OTHER, go_ahead=False, edit_requested=False, decision_only=False)


def _is_only(clause: str, words: tuple[str, ...]) -> bool:
    """Tell whether ``clause`` is one of ``words`` with nothing but filler words around it."""
    alternatives = "|".join(re.escape(word) for word in sorted(words, key=len, reverse=True))
    return re.fullmatch(rf"\s*{_FILLER}(?:{alternatives}){_FILLER}\s*", clause) is not None
