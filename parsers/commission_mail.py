"""Commission mails (约稿) from the office: the topic, the units asked, the deadline and the requirements.

Pure reading only: the daemon resolves unit names, the year of a date without one, and working days.
The mail reads, one field per line (full-width or ASCII colons, spaces allowed)::

    约稿：冬季旅游消费情况
    单位：成都市、乐山市、产业处        (or 全部市州, or 全部)
    截止：12月10日                      (or 截止时间：2026年12月10日17:00, or 期限：3个工作日)
    要求：800字以内，附图片 2 张。      (may continue on the following lines)
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from datetime import date, time

COMMISSION_WORD = "约稿"
ALL_UNITS = "全部"
ALL_PREFECTURES = "全部市州"

_FIRST_LINE = re.compile(r"^约稿(?:\s*[:：]\s*|\s+)(?P<topic>.*)$")
_LABEL = re.compile(r"^(?P<label>[\u4e00-\u9fff]{2,6})\s*[:：]\s*(?P<value>.*)$")
_UNIT_LABELS = frozenset({"单位", "报送单位", "约稿单位", "约稿对象"})
_DEADLINE_LABELS = frozenset({"截止", "截止时间", "截止日期", "期限", "时限", "报送期限", "报送时间"})
_REQUIREMENT_LABELS = frozenset({"要求", "约稿要求", "报送要求"})
_UNIT_SEPARATORS = re.compile(r"[\s,，、;；/]+")
_ALL_PREFECTURE_WORDS = frozenset({"全部市州", "所有市州", "各市州", "全部市(州)", "各市(州)"})  # after NFKC
_ALL_UNIT_WORDS = frozenset({"全部", "全部单位", "所有单位", "各单位"})
_DATE = re.compile(
    r"^(?:(?P<year>\d{4})\s*(?:年|[-/.])\s*)?(?P<month>\d{1,2})\s*(?:月|[-/.])\s*(?P<day>\d{1,2})\s*[日号]?"
    r"\s*(?:(?P<half>上午|中午|下午|晚上)?\s*(?P<hour>\d{1,2})\s*(?:[:：]\s*(?P<minute>\d{2})|[时点]\s*(?:(?P<minute2>\d{1,2})\s*分?)?))?"
    r"\s*(?:前|之前|以前)?$"
)
_WORKING_DAYS = re.compile(r"^(?P<count>\d{1,2}|[一二两三四五六七八九十]{1,2})\s*个?\s*工作日\s*(?:内|之内|以内)?$")
_CHINESE_DIGITS = {"一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}
MAX_WORKING_DAYS = 60


class CommissionMailError(ValueError):
    """A commission mail that cannot be read; ``problems`` are user-facing Chinese sentences."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("；".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class CommissionDeadline:
    """The deadline as written: a date (year and time optional) or a number of working days."""

    text: str
    year: int | None = None
    month: int | None = None
    day: int | None = None
    at: time | None = None  # None: the end of working hours of that day
    working_days: int | None = None


@dataclass(frozen=True)
class CommissionDraft:
    """A commission as read from an office mail or the CLI, before units and dates are resolved."""

    topic: str
    unit_names: tuple[str, ...] = ()  # names as written, without the 全部/全部市州 words
    all_units: bool = False
    all_prefectures: bool = False
    deadline: CommissionDeadline | None = None  # None: the configured default number of working days
    requirements: str = ""
    ignored_lines: tuple[str, ...] = field(default=())  # unlabelled lines outside 要求, shown in the reply


def is_commission_mail(text: str) -> bool:
    """Tell whether the first non-empty line of ``text`` starts with 约稿."""
    for line in text.splitlines():
        stripped = _fold(line).strip()
        if stripped:
            return stripped.startswith(COMMISSION_WORD)
    return False


def read_commission_mail(text: str) -> CommissionDraft:
    """Read the command text of an office mail into a commission draft.

    Raises:
        CommissionMailError: the topic or the units are missing, or the deadline cannot be read.
    """
    # Lines keep the office's own punctuation (topic and requirements go to the units as written);
    # the patterns accept full-width and ASCII colons and spaces alike.
    lines = [line.strip() for line in text.splitlines()]
    lines = [line for line in lines if line]
    problems: list[str] = []
    first = _FIRST_LINE.match(lines[0]) if lines else None
    topic = first.group("topic").strip() if first else ""
    if not topic:
        problems.append("缺少约稿主题：第一行应写“约稿：主题”，如“约稿：冬季旅游消费情况”")

    unit_values: list[str] = []
    deadline_text: str | None = None
    requirements: list[str] = []
    ignored: list[str] = []
    in_requirements = False
    for line in lines[1:]:
        labelled = _LABEL.match(line)
        label = labelled.group("label") if labelled else ""
        if labelled and label in _UNIT_LABELS:
            unit_values.append(labelled.group("value"))
            in_requirements = False
        elif labelled and label in _DEADLINE_LABELS:
            deadline_text = labelled.group("value").strip()
            in_requirements = False
        elif labelled and label in _REQUIREMENT_LABELS:
            requirements.append(labelled.group("value").strip())
            in_requirements = True
        elif in_requirements:
            requirements.append(line)
        else:
            ignored.append(line)

    names, all_units, all_prefectures = read_unit_names("、".join(unit_values))
    if not (names or all_units or all_prefectures):
        problems.append("缺少约稿单位：请写一行“单位：成都市、乐山市、产业处”，或“单位：全部市州”“单位：全部”")

    deadline = None
    if deadline_text is not None:
        try:
            deadline = read_deadline(deadline_text)
        except CommissionMailError as exc:
            problems.extend(exc.problems)
    if problems:
        raise CommissionMailError(problems)
    return CommissionDraft(
        topic=topic,
        unit_names=names,
        all_units=all_units,
        all_prefectures=all_prefectures,
        deadline=deadline,
        requirements="\n".join(line for line in requirements if line),
        ignored_lines=tuple(ignored),
    )


def read_unit_names(text: str) -> tuple[tuple[str, ...], bool, bool]:
    """Split a units value into (names, all units, all prefectures); names keep their order, without repeats."""
    names: list[str] = []
    all_units = all_prefectures = False
    for word in _UNIT_SEPARATORS.split(_fold(text)):
        word = word.strip()
        if not word:
            continue
        if word in _ALL_PREFECTURE_WORDS:
            all_prefectures = True
        elif word in _ALL_UNIT_WORDS:
            all_units = True
        elif word not in names:
            names.append(word)
    return tuple(names), all_units, all_prefectures


def read_deadline(text: str) -> CommissionDeadline:
    """Read a deadline such as 12月10日, 2026年12月10日17:00, 2026-12-10 or 3个工作日.

    Raises:
        CommissionMailError: the text is empty or not one of these forms, or names no real date.
    """
    value = _fold(text).strip()
    example = "如“截止：12月10日”“截止时间：2026年12月10日17:00”或“期限：3个工作日”"
    if not value:
        raise CommissionMailError([f"截止时间为空：{example}"])
    days = _WORKING_DAYS.match(value)
    if days is not None:
        count = _read_count(days.group("count"))
        if not 1 <= count <= MAX_WORKING_DAYS:
            raise CommissionMailError([f"期限“{text}”无效：工作日数应在 1 到 {MAX_WORKING_DAYS} 之间"])
        return CommissionDeadline(text=text.strip(), working_days=count)
    match = _DATE.match(value)
    if match is None:
        raise CommissionMailError([f"无法识别截止时间“{text}”：{example}"])
    year = int(match.group("year")) if match.group("year") else None
    month, day = int(match.group("month")), int(match.group("day"))
    try:
        # 2024 is a leap year, so 2月29日 without a year is accepted here; the daemon checks the year it picks.
        date(year or 2024, month, day)
    except ValueError:
        raise CommissionMailError([f"截止时间“{text}”不是有效的日期"]) from None
    at = None
    if match.group("hour") is not None:
        hour = int(match.group("hour"))
        if match.group("half") in ("下午", "晚上") and hour < 12:
            hour += 12
        minute = int(match.group("minute") or match.group("minute2") or 0)
        if hour > 23 or minute > 59:
            raise CommissionMailError([f"截止时间“{text}”中的时刻无效"])
        at = time(hour, minute)
    return CommissionDeadline(text=text.strip(), year=year, month=month, day=day, at=at)


def _read_count(text: str) -> int:
    if text.isdigit():
        return int(text)
    if text == "十":
        return 10
    if text.startswith("十"):
        return 10 + _CHINESE_DIGITS[text[1]]
    if text.endswith("十"):
        return _CHINESE_DIGITS[text[0]] * 10
    return _CHINESE_DIGITS[text[0]] if len(text) == 1 else -1


def _fold(text: str) -> str:
    # NFKC turns full-width digits, letters, colons and spaces into ASCII, so one pattern reads both.
    return unicodedata.normalize("NFKC", text)
