"""`zwxx quarantine` on real servers and both databases: list, show, release and discard."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select

from daemon.app import App
from daemon.cli import main
from daemon.embedded import SmtpSink
from daemon.models import Item, Message, MessageState, OutboxMail
from daemon.store import SourceKey, ingest_message, quarantine_unfetchable
from parsers.errors import MessageParseError
from tests.daemon.test_pipeline import load_corpus, poll_once
from tests.servers.handle import ImapServerHandle


@pytest.fixture
def poisoned(
    app: App, imap: ImapServerHandle, smtp_sink: SmtpSink, shared_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> bytes:
    """Poll three corpus messages while the parser rejects the second; return that message's bytes.

    The parser stays broken for that message until the test calls ``monkeypatch.undo()``, as
    after an upgrade that fixes it.
    """
    import daemon.reading
    from parsers.message import parse_message

    corpus = load_corpus(shared_dir)
    bad = corpus[1][1]

    def parse_or_reject(raw: bytes, **kwargs):  # type: ignore[no-untyped-def]
        if raw.replace(b"\r\n", b"\n") == bad.replace(b"\r\n", b"\n"):
            raise MessageParseError("测试注入的解析失败")
        return parse_message(raw, **kwargs)

    monkeypatch.setattr(daemon.reading, "parse_message", parse_or_reject)
    for _record, raw in corpus[:3]:
        imap.append(raw)
    stored, _sent = poll_once(app)
    assert stored == 3
    return bad


def run_cli(app: App, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["--config", str(app.settings.path), "quarantine", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def quarantined_row(app: App) -> Message:
    with app.session_factory() as session:
        row = session.scalar(select(Message).where(Message.state == MessageState.QUARANTINED))
        assert row is not None
        session.expunge(row)
        return row


def test_list_and_show(app: App, poisoned: bytes, capsys: pytest.CaptureFixture[str]) -> None:
    row = quarantined_row(app)

    code, out, _err = run_cli(app, capsys, "list")
    assert code == 0
    assert "测试注入的解析失败" in out
    assert str(row.uid) in out
    assert row.sender is None or row.sender in out
    assert "共 1 封" in out

    code, out, _err = run_cli(app, capsys, "show", str(row.id))
    assert code == 0
    assert "原因：测试注入的解析失败" in out
    assert str(app.context.archive.path_for(row.sha256)) in out
    assert "From: " in out
    assert "Subject: " in out
    assert "MessageParseError" in out  # the traceback
    assert "处理次数：1" in out


def test_release_registers_and_queues_receipt(
    app: App, poisoned: bytes, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    row = quarantined_row(app)
    monkeypatch.undo()  # the parser is "fixed"

    code, out, _err = run_cli(app, capsys, "release", str(row.id))

    assert code == 0
    assert "已登记" in out
    assert "已生成回执" in out
    with app.session_factory() as session:
        released = session.get(Message, row.id)
        assert released is not None
        assert released.state == MessageState.REGISTERED
        assert released.attempts == 2
        assert released.reason is None
        serials = list(session.scalars(select(Item.serial).where(Item.message_db_id == row.id)))
        receipts = session.scalar(select(func.count(OutboxMail.id)).where(OutboxMail.message_db_id == row.id))
    assert len(serials) == 1
    assert serials[0] in out
    assert receipts == 1

    code, _out, err = run_cli(app, capsys, "release", str(row.id))
    assert code == 1
    assert "不在隔离中" in err


def test_release_gives_up_after_three_attempts(app: App, poisoned: bytes, capsys: pytest.CaptureFixture[str]) -> None:
    row = quarantined_row(app)

    code, out, _err = run_cli(app, capsys, "release", str(row.id))
    assert code == 1
    assert "第 2 次" in out
    assert "保持隔离" not in out

    code, out, _err = run_cli(app, capsys, "release", str(row.id))
    assert code == 1
    assert "已尝试 3 次仍失败，邮件保持隔离" in out

    code, _out, err = run_cli(app, capsys, "release", str(row.id))
    assert code == 1
    assert "--force" in err

    code, out, _err = run_cli(app, capsys, "release", "--force", str(row.id))
    assert code == 1
    assert "第 4 次" in out
    with app.session_factory() as session:
        again = session.get(Message, row.id)
        assert again is not None
        assert again.state == MessageState.QUARANTINED
        assert again.attempts == 4
        assert session.scalar(select(func.count(OutboxMail.id)).where(OutboxMail.message_db_id == row.id)) == 0


def test_discard_keeps_raw_bytes(app: App, poisoned: bytes, capsys: pytest.CaptureFixture[str]) -> None:
    row = quarantined_row(app)

    code, out, _err = run_cli(app, capsys, "discard", str(row.id), "--reason", "发件单位已重新报送")

    assert code == 0
    assert "已丢弃" in out
    with app.session_factory() as session:
        discarded = session.get(Message, row.id)
        assert discarded is not None
        assert discarded.state == MessageState.DISCARDED
        assert "发件单位已重新报送" in (discarded.reason or "")
        assert "测试注入的解析失败" in (discarded.reason or "")
    assert app.context.archive.path_for(row.sha256).exists()
    code, out, _err = run_cli(app, capsys, "list")
    assert "没有已隔离的邮件" in out
    code, _out, err = run_cli(app, capsys, "release", str(row.id))
    assert code == 1
    assert "不在隔离中" in err


def test_unknown_id_is_chinese_error(app: App, capsys: pytest.CaptureFixture[str]) -> None:
    for command in (["show", "999"], ["release", "999"], ["discard", "999", "--reason", "重复"]):
        code, _out, err = run_cli(app, capsys, *command)
        assert code == 1
        assert "没有编号为 999 的邮件" in err


def test_release_refuses_unfetched_message(app: App, capsys: pytest.CaptureFixture[str]) -> None:
    source = SourceKey(app.settings.general.account, "INBOX", 7, 42)
    message = quarantine_unfetchable(
        app.session_factory, app.context, source, b"", None, "邮件头和正文也都无法读取", "abort: test"
    )

    code, _out, err = run_cli(app, capsys, "release", str(message.id))
    assert code == 1
    assert "没有读到任何原始内容" in err

    code, out, _err = run_cli(app, capsys, "show", str(message.id))
    assert code == 0
    assert "（0 字节）" in out


def test_parse_error_quarantines_with_reason(
    app: App, imap: ImapServerHandle, smtp_sink: SmtpSink, shared_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # MIME nesting deeper than the interpreter's recursion limit makes the real parser raise
    # MessageParseError; no parser is replaced in this test.
    depth = 2000
    opening = b"".join(b'Content-Type: multipart/mixed; boundary="b%d"\r\n\r\n--b%d\r\n' % (i, i) for i in range(depth))
    closing = b"".join(b"--b%d--\r\n" % i for i in reversed(range(depth)))
    nested = b"From: cd_wenlv@example.cn\r\nSubject: nested\r\nMIME-Version: 1.0\r\n" + opening + b"text\r\n" + closing
    imap.append(load_corpus(shared_dir)[0][1])
    if imap.kind == "dovecot":
        imap.append(nested)
    else:
        # pymap's APPEND fails with a recursion error of its own at about 400 levels, so the
        # message goes straight to the store, as the poller would hand it over.
        ingest_message(app.session_factory, app.context, SourceKey("default", "INBOX", 1, 10_000), nested, None)

    stored, sent = poll_once(app)

    assert stored + (imap.kind != "dovecot") == 2
    assert sent == 1
    row = quarantined_row(app)
    assert row.reason == "邮件的 MIME 结构嵌套过深，无法解析"
    assert "RecursionError" in (row.detail or "")
    assert "MessageParseError" in (row.detail or "")
    assert row.attempts == 1
    code, out, _err = run_cli(app, capsys, "list")
    assert code == 0
    assert "嵌套过深" in out
