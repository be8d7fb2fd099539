"""Dates of press conferences (新闻通气会) as items and office commands write them.

Pure text reading: ``2026年12月10日``, ``12月10日``, ``12月10号``, ``2026-12-10``, ``2026.12.10``,
``2026/12/10``, full-width digits, and Chinese numerals (``十二月十日``, ``二〇二六年十二月十日``).
A date written without a year takes the year of the receipt date, or the next year when its month
is earlier than the receipt month (an item received in December that names 1月5日 means January
of the next year).
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import date

# Full-width digits and the separators of numeric dates, folded to ASCII before matching.
_FOLD: dict[int, int | str] = {
    **{code: code - 0xFEE0 for code in range(0xFF10, 0xFF1A)},
    ord("－"): "-",
    ord("．"): ".",
    ord("／"): "/",
    ord("："): ":",
    0x3000: " ",
}

_CHINESE_DIGITS = {
    "〇": 0,
    "零": 0,
    "○": 0,
    **{char: value for value, char in enumerate("一二三四五六七八九", start=1)},
}
_NUMERAL = "[〇零○一二三四五六七八九十]"

# One date: year (optional), month and day, in Arabic or Chinese numerals, or numeric with - . /.
_DATE = re.compile(
    rf"(?:(?P<year>\d{{4}}|{_NUMERAL}{{4}})\s*年\s*)?"
    rf"(?P<month>\d{{1,2}}|{_NUMERAL}{{1,3}})\s*月\s*(?P<day>\d{{1,2}}|{_NUMERAL}{{1,3}})\s*[日号]"
    r"|(?<!\d)(?P<iso_year>\d{4})[-./](?P<iso_month>\d{1,2})[-./](?P<iso_day>\d{1,2})(?!\d)"
)

# Words naming the conference; a date is taken only from a sentence that contains one of them.
_CONFERENCE = re.compile(r"通气会|发布会|新闻通报会")
# A label right before the date ("通气会时间：", "召开日期：") makes it the conference date for sure.
_LABEL = re.compile(r"(?:通气会|发布会|通报会|召开|举行)\s*(?:时间|日期)\s*[:为是]?\s*$")
# A bare label at the start of a line ("时间：2026年12月10日上午"), as notices list the arrangements.
_BARE_LABEL = re.compile(r"(?:^|\s|[、.])(?:会议)?(?:时间|日期)\s*[:为是]?\s*$")
# A date right after 于 (将于, 定于, 拟于) or right before 召开/举行/举办 (after a weekday or a time of
# day) is the day the conference is held, preferred over other dates in the sentence.
_HELD_BEFORE = re.compile(r"于\s*$")
_HELD_AFTER = re.compile(
    r"^\s*(?:[(（][^)）]{0,6}[)）])?\s*(?:上午|下午|晚上)?\s*(?:\d{1,2}(?::\d{2}|时(?:\d{1,2}分)?))?\s*(?:召开|举行|举办)"
)
_SENTENCE_END = re.compile(r"[。！？!?；;\n]")


@dataclass(frozen=True)
class WrittenDate:
    """A date as written: the year is None when the text leaves it out."""

    year: int | None
    month: int
    day: int

    def resolve(self, received_on: date) -> date | None:
        """Return the date, inferring a missing year from ``received_on``; None when it does not exist."""
        year = self.year
        if year is None:
            year = received_on.year + 1 if self.month < received_on.month else received_on.year
        try:
            return date(year, self.month, self.day)
        except ValueError:
            return None


def parse_date(text: str) -> WrittenDate | None:
    """Read ``text`` as exactly one date (an office command's argument); None when it is not one.

    A date without a year is accepted when the day exists in some year (2月29日 does).
    """
    folded = text.translate(_FOLD).strip()
    match = _DATE.fullmatch(folded)
    if match is None:
        return None
    return _written(match)


def find_event_date(text: str, *, received_on: date) -> date | None:
    """Return the press-conference date named in an item's title and body, or None.

    Text that never mentions the conference (通气会, 发布会, 新闻通报会) names no date. Otherwise
    the first date of the first kind found wins, in this order:

    1. after a label such as ``通气会时间：`` or ``召开日期：``;
    2. after 于 or before 召开/举行/举办, in a sentence that mentions the conference;
    3. after a bare ``时间：`` or ``日期：`` label at the start of a line (a list of arrangements);
    4. anywhere in a sentence that mentions the conference.
    """
    folded = text.translate(_FOLD)
    if not _CONFERENCE.search(folded):
        return None
    found: dict[str, date] = {}
    start = 0
    for end_match in [*_SENTENCE_END.finditer(folded), None]:
        end = end_match.start() if end_match else len(folded)
        sentence = folded[start:end]
        start = end + 1
        mentions = bool(_CONFERENCE.search(sentence))
        for match in _DATE.finditer(sentence):
            written = _written(match)
            day = written.resolve(received_on) if written else None
            if day is None:
                continue
            prefix = sentence[: match.start()]
            before = prefix[-12:]
            after = sentence[match.end() : match.end() + 20]
            if _LABEL.search(before):
                found.setdefault("labelled", day)
            if _BARE_LABEL.search(prefix):
                found.setdefault("bare_label", day)
            if mentions and (_HELD_BEFORE.search(prefix) or _HELD_AFTER.match(after)):
                found.setdefault("held", day)
            if mentions:
                found.setdefault("mentioned", day)
    for kind in ("labelled", "held", "bare_label", "mentioned"):
        if kind in found:
            return found[kind]
    return None


def _written(match: re.Match[str]) -> WrittenDate | None:
    if match.group("iso_year"):
        year: int | None = int(match.group("iso_year"))
        month = int(match.group("iso_month"))
        day = int(match.group("iso_day"))
    else:
        year = _year(match.group("year")) if match.group("year") else None
        month_value = _number(match.group("month"))
        day_value = _number(match.group("day"))
        if month_value is None or day_value is None:
            return None
        month, day = month_value, day_value
    if not 1 <= month <= 12:
        return None
    # A year-less date is checked against a leap year, so 2月29日 stays possible until it is resolved.
    if not 1 <= day <= calendar.monthrange(year or 2028, month)[1]:
        return None
    return WrittenDate(year, month, day)


def _year(text: str) -> int | None:
    if text.isdigit():
        return int(text)
    digits = [_CHINESE_DIGITS.get(char) for char in text]
    if any(digit is None for digit in digits):
        return None
    return int("".join(str(digit) for digit in digits))


def _number(text: str) -> int | None:
    """Return the value of a month or day: Arabic digits, or Chinese numerals up to 三十一."""
    if text.isdigit():
        return int(text)
    tens, _, units = text.partition("十")
    if "十" not in text:
        return _CHINESE_DIGITS.get(text) if len(text) == 1 else None
    if len(tens) > 1 or len(units) > 1:
        return None
    tens_value = _CHINESE_DIGITS.get(tens, -1) if tens else 1
    units_value = _CHINESE_DIGITS.get(units, -1) if units else 0
    if tens_value < 1 or units_value < 0:
        return None
    return tens_value * 10 + units_value
