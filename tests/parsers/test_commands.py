"""Office command lines: each command, full-width input, and the errors that tell how to write it."""

from __future__ import annotations

import pytest

from parsers.commands import Verb, read_commands


def read_one(line: str):  # type: ignore[no-untyped-def]
    (result,) = read_commands(line).lines
    return result


def test_send_for_approval_several_serials() -> None:
    command = read_one("送审 2026-0012、2026-0013，2026-0014").command

    assert command is not None
    assert command.verb is Verb.SEND_FOR_APPROVAL
    assert command.serials == ("2026-0012", "2026-0013", "2026-0014")


def test_full_width_digits_and_colon() -> None:
    command = read_one("报送：２０２６－００１２").command

    assert command is not None
    assert command.verb is Verb.SUBMIT
    assert command.serials == ("2026-0012",)


def test_adoption_with_publication_and_instruction() -> None:
    command = read_one("采用 2026-0012 省委办公厅 《四川信息》第45期 批示 省领导").command

    assert command is not None
    assert command.verb is Verb.ADOPT
    assert command.serials == ("2026-0012",)
    assert command.outlet == "省委办公厅"
    assert command.publication == "四川信息"
    assert command.issue == "第45期"
    assert command.instructed
    assert command.instruction_level == "省领导"


def test_adoption_without_publication() -> None:
    command = read_one("采用 2026-0012 省政府办公厅").command

    assert command is not None
    assert command.outlet == "省政府办公厅"
    assert command.publication == ""
    assert not command.instructed


def test_return_keeps_comment_punctuation() -> None:
    command = read_one("退回 2026-0014 意见：数据需核实，请补充来源。").command

    assert command is not None
    assert command.verb is Verb.RETURN
    assert command.comment == "数据需核实，请补充来源。"


def test_undo_and_query() -> None:
    undo = read_one("撤销 2026-0012").command
    query = read_one("查询 2026-0012 2026-0013").command

    assert undo is not None
    assert undo.verb is Verb.UNDO
    assert query is not None
    assert query.serials == ("2026-0012", "2026-0013")


def test_register_sender_lowercases_address() -> None:
    command = read_one("登记 Someone@QQ.example.com 成都市").command

    assert command is not None
    assert command.verb is Verb.REGISTER_SENDER
    assert command.address == "someone@qq.example.com"
    assert command.unit_name == "成都市"


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("送审", "缺少登记编号"),
        ("送审 12", "“12”不是登记编号"),
        ("退回 2026-0014", "缺少退回意见"),
        ("采用 2026-0012", "缺少采用单位"),
        ("撤销 2026-0012 2026-0013", "只写一个编号"),
        ("登记 someone 成都市", "不是邮箱地址"),
        ("登记 someone@qq.example.com", "缺少邮箱地址或单位名称"),
    ],
)
def test_bad_line_says_why_and_how(line: str, reason: str) -> None:
    result = read_one(line)

    assert result.command is None
    assert reason in result.error
    assert "写法：" in result.error


def test_greetings_skipped_stray_serial_reported() -> None:
    mail = read_commands("各位好：\n\n送审 2026-0012\n2026-0013 也请送审\n谢谢")

    assert [line.number for line in mail.lines] == [3, 4]
    assert len(mail.commands) == 1
    assert mail.errors[0].number == 4
    assert "未识别的命令" in mail.errors[0].error


@pytest.mark.parametrize("line", ["报送单位：成都市文化广电旅游局", "采用情况见附件", "查询电话：028-12345678"])
def test_command_word_inside_longer_word_is_not_a_command(line: str) -> None:
    mail = read_commands(line)

    assert mail.lines == ()


def test_edit_takes_one_serial() -> None:
    result = read_one("修改：2026-0012")

    assert result.command is not None
    assert result.command.verb is Verb.EDIT
    assert result.command.serials == ("2026-0012",)


@pytest.mark.parametrize(
    ("line", "year", "month", "day"),
    [
        ("通气会 2026-0012 12月10日", None, 12, 10),
        ("通气会：２０２６－００１２，十二月十日", None, 12, 10),
        ("通气会 2026-0012 2027-01-06", 2027, 1, 6),
    ],
)
def test_conference_date_command(line: str, year: int | None, month: int, day: int) -> None:
    command = read_one(line).command

    assert command is not None
    assert command.verb is Verb.SET_CONFERENCE_DATE
    assert command.serials == ("2026-0012",)
    assert command.conference_date is not None
    assert (command.conference_date.year, command.conference_date.month, command.conference_date.day) == (
        year,
        month,
        day,
    )


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("通气会 2026-0012", "缺少通气会日期"),
        ("通气会 2026-0012 下周四", "“下周四”不是日期"),
        ("通气会 2026-0012 2月30日", "“2月30日”不是日期"),
        ("通气会 12月10日", "缺少登记编号"),
    ],
)
def test_conference_date_command_errors(line: str, reason: str) -> None:
    result = read_one(line)

    assert result.command is None
    assert result.error.startswith(reason)
    assert "写法：通气会 2026-0012 12月10日" in result.error


def test_conference_time_line_is_not_a_command() -> None:
    assert read_commands("通气会时间：12月10日").lines == ()
