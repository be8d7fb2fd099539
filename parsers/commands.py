"""Office commands by mail: one command per line, e.g. ``送审 2026-0012 2026-0013``.

Pure reading only: the daemon checks the sender, the items and the states. Full-width and
ideographic punctuation (：，、) and spaces are accepted wherever an ASCII separator would be.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field

from parsers.eventdate import WrittenDate, parse_date

SERIAL = re.compile(r"^\d{4}-\d{4}$")
_SERIAL_ANYWHERE = re.compile(r"\b\d{4}-\d{4}\b")
_SEPARATORS = re.compile(r"[\s,，、:：;；]+")
_PUBLICATION = re.compile(r"《([^》]+)》\s*(第\s*[\d一二三四五六七八九十百]+\s*期)?")
_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
_ADDRESS = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
# Full-width digits, letters and the characters of serials and addresses, folded to ASCII. Other
# punctuation is kept, so that comments (退回意见) read as the office wrote them.
_FOLD: dict[int, int | str] = {
    **{code: code - 0xFEE0 for code in range(0xFF10, 0xFF1A)},
    **{code: code - 0xFEE0 for code in range(0xFF21, 0xFF3B)},
    **{code: code - 0xFEE0 for code in range(0xFF41, 0xFF5B)},
    ord("－"): "-",
    ord("＠"): "@",
    ord("．"): ".",
    ord("＿"): "_",
    0x3000: " ",
}


class Verb(enum.StrEnum):
    SEND_FOR_APPROVAL = "送审"
    SUBMIT = "报送"
    ADOPT = "采用"
    RETURN = "退回"
    UNDO = "撤销"
    QUERY = "查询"
    REGISTER_SENDER = "登记"
    EDIT = "修改"
    SET_CONFERENCE_DATE = "通气会"


USAGE = {
    Verb.SEND_FOR_APPROVAL: "送审 2026-0012 2026-0013（可写多个编号）",
    Verb.SUBMIT: "报送 2026-0012（可写多个编号）",
    Verb.ADOPT: "采用 2026-0012 省委办公厅 《四川信息》第45期（有批示时在后面写：批示 省领导）",
    Verb.RETURN: "退回 2026-0012 修改意见……",
    Verb.UNDO: "撤销 2026-0012",
    Verb.QUERY: "查询 2026-0012（可写多个编号）",
    Verb.REGISTER_SENDER: "登记 someone@qq.com 成都市",
    Verb.EDIT: "修改 2026-0012（同时附上修改后的 .docx 文件）",
    Verb.SET_CONFERENCE_DATE: "通气会 2026-0012 12月10日（新闻通气会的召开日期，也可写 2026-12-10）",
}


@dataclass(frozen=True)
class Command:
    """One understood command line."""

    verb: Verb
    serials: tuple[str, ...] = ()
    comment: str = ""  # 退回: the office's comments
    outlet: str = ""  # 采用: who adopted it, e.g. 省委办公厅
    publication: str = ""  # 采用: e.g. 四川信息
    issue: str = ""  # 采用: e.g. 第45期
    instructed: bool = False  # 采用: a leader wrote an instruction (批示) on it
    instruction_level: str = ""  # 采用: the instructing leader's level, as written
    address: str = ""  # 登记: the sender address to add
    unit_name: str = ""  # 登记: the unit it belongs to, as written
    conference_date: WrittenDate | None = None  # 通气会: the press conference's date, year maybe left out


@dataclass(frozen=True)
class CommandLine:
    """One line of a command mail: the command read from it, or why it could not be read."""

    number: int  # 1-based line number in the mail text
    text: str
    command: Command | None = None
    error: str = ""  # user-facing Chinese reason, with how to write the command


@dataclass(frozen=True)
class CommandMail:
    lines: tuple[CommandLine, ...] = field(default_factory=tuple)

    @property
    def commands(self) -> list[Command]:
        return [line.command for line in self.lines if line.command is not None]

    @property
    def errors(self) -> list[CommandLine]:
        return [line for line in self.lines if line.error]


def read_commands(text: str) -> CommandMail:
    """Read every command line of an office mail's own text (quoted history already removed).

    Lines that start with no command word are skipped, unless they name a serial number: such a
    line was most likely meant as a command, so it is reported back as not understood.
    """
    lines = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.translate(_FOLD).strip()
        if not line:
            continue
        verb = _find_verb(line)
        if verb is None:
            if _SERIAL_ANYWHERE.search(line):
                known = "、".join(v.value for v in Verb)
                lines.append(CommandLine(number, raw.strip(), error=f"未识别的命令；每行以命令开头：{known}"))
            continue
        lines.append(_read_line(number, raw.strip(), verb, line[len(verb.value) :]))
    return CommandMail(tuple(lines))


def _find_verb(line: str) -> Verb | None:
    """Return the command word ``line`` starts with, or None when the word runs on into others (报送单位：)."""
    for verb in Verb:
        if line.startswith(verb.value):
            following = line[len(verb.value) : len(verb.value) + 1]
            if following and _CJK.match(following):
                return None
            return verb
    return None


def _read_line(number: int, raw: str, verb: Verb, rest: str) -> CommandLine:
    try:
        command = _READERS[verb](verb, rest.strip(" ,，、:：;；"))
    except ValueError as exc:
        return CommandLine(number, raw, error=f"{exc}。写法：{USAGE[verb]}")
    return CommandLine(number, raw, command=command)


def _tokens(rest: str) -> list[str]:
    return [token for token in _SEPARATORS.split(rest) if token]


def _read_serials(verb: Verb, rest: str) -> Command:
    tokens = _tokens(rest)
    if not tokens:
        raise ValueError("缺少登记编号")
    bad = [token for token in tokens if not SERIAL.match(token)]
    if bad:
        raise ValueError(f"“{bad[0]}”不是登记编号")
    return Command(verb, serials=tuple(dict.fromkeys(tokens)))


def _read_one_serial(verb: Verb, rest: str) -> tuple[str, str]:
    """Return the leading serial and the text after it."""
    match = re.match(r"(\d{4}-\d{4})(.*)$", rest, re.S)
    if match is None:
        raise ValueError("缺少登记编号，或编号不在命令之后")
    return match.group(1), match.group(2).strip(" ,，、:：;；")


def _read_return(verb: Verb, rest: str) -> Command:
    serial, comment = _read_one_serial(verb, rest)
    if comment.startswith("意见"):
        comment = comment[2:].strip(" ,，、:：;；")
    if not comment:
        raise ValueError("缺少退回意见")
    return Command(verb, serials=(serial,), comment=comment)


def _read_undo(verb: Verb, rest: str) -> Command:
    serial, extra = _read_one_serial(verb, rest)
    if extra:
        raise ValueError(f"{verb.value}每行只写一个编号")
    return Command(verb, serials=(serial,))


def _read_adopt(verb: Verb, rest: str) -> Command:
    serial, remainder = _read_one_serial(verb, rest)
    instructed, level = False, ""
    if "批示" in remainder:
        remainder, _, level = remainder.partition("批示")
        instructed, level = True, level.strip(" ,，、:：;；")
    publication = issue = ""
    match = _PUBLICATION.search(remainder)
    if match:
        publication = match.group(1).strip()
        issue = re.sub(r"\s+", "", match.group(2) or "")
        remainder = remainder[: match.start()] + remainder[match.end() :]
    outlet = " ".join(_tokens(remainder))
    if not outlet:
        raise ValueError("缺少采用单位（如 省委办公厅）")
    return Command(
        verb,
        serials=(serial,),
        outlet=outlet,
        publication=publication,
        issue=issue,
        instructed=instructed,
        instruction_level=level,
    )


def _read_register_sender(verb: Verb, rest: str) -> Command:
    tokens = _tokens(rest)
    if len(tokens) < 2:
        raise ValueError("缺少邮箱地址或单位名称")
    address, unit_name = tokens[0].lower(), " ".join(tokens[1:])
    if not _ADDRESS.match(address):
        raise ValueError(f"“{tokens[0]}”不是邮箱地址")
    return Command(verb, address=address, unit_name=unit_name)


def _read_conference_date(verb: Verb, rest: str) -> Command:
    serial, text = _read_one_serial(verb, rest)
    if not text:
        raise ValueError("缺少通气会日期")
    written = parse_date(text)
    if written is None:
        raise ValueError(f"“{text}”不是日期")
    return Command(verb, serials=(serial,), conference_date=written)


_READERS = {
    Verb.SEND_FOR_APPROVAL: _read_serials,
    Verb.SUBMIT: _read_serials,
    Verb.QUERY: _read_serials,
    Verb.ADOPT: _read_adopt,
    Verb.RETURN: _read_return,
    Verb.UNDO: _read_undo,
    Verb.REGISTER_SENDER: _read_register_sender,
    Verb.EDIT: _read_undo,
    Verb.SET_CONFERENCE_DATE: _read_conference_date,
}
