"""The whole intake path on a real IMAP server, SMTP sink and database: fetch, store, register, receipt."""

from __future__ import annotations

import json
from email import message_from_bytes, policy
from email.utils import parsedate_to_datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select

from daemon.app import App
from daemon.archive import sha256_hex
from daemon.embedded import SmtpSink
from daemon.intake import connect_imap, poll_folder
from daemon.models import Attachment, Item, Message, MessageState, OutboxMail, OutboxState, ServerAction
from daemon.outbound import send_due
from tests.servers.handle import ImapServerHandle

# Corpus files whose title the parsers do not read right yet; the item is still registered.
KNOWN_TITLE_GAPS: set[str] = set()


def load_corpus(shared_dir: Path) -> list[tuple[dict, bytes]]:
    expected = json.loads((shared_dir / "corpus" / "expected.json").read_text(encoding="utf-8"))
    return [(record, (shared_dir / "corpus" / "eml" / record["file"]).read_bytes()) for record in expected["messages"]]


def unify_newlines(raw: bytes) -> bytes:
    return raw.replace(b"\r\n", b"\n")


def expected_state(record: dict) -> MessageState:
    if record["is_bounce"]:
        return MessageState.BOUNCE
    if record["is_auto_reply"]:
        return MessageState.AUTO_REPLY
    if record["is_duplicate"]:
        return MessageState.DUPLICATE
    if not record["is_item"]:
        return MessageState.LIST
    if record["unit"] is None:
        return MessageState.HELD
    return MessageState.REGISTERED


def append_with_date(imap: ImapServerHandle, raw: bytes) -> int:
    header = message_from_bytes(raw, policy=policy.compat32)
    try:
        sent = parsedate_to_datetime(header["Date"]) if header["Date"] else None
    except (TypeError, ValueError):
        sent = None
    return imap.append(raw, msg_time=sent)


def poll_once(app: App) -> tuple[int, int]:
    """Poll INBOX and drain the outbox once; return (messages stored, mails sent)."""
    client = connect_imap(app.settings)
    try:
        summary = poll_folder(client, app.session_factory, app.context)
    finally:
        client.logout()
    sent = send_due(app.session_factory, app.settings, app.clock, limit=1000)
    return summary.stored, sent.sent


def stored_flag(imap: ImapServerHandle) -> bytes:
    """The flag the poller sets: pymap does not keep keywords, so there it falls back to \\Seen."""
    return b"$Zwxx-Stored" if imap.kind == "dovecot" else b"\\Seen"


def flags_by_uid(imap: ImapServerHandle, folder: str = "INBOX") -> dict[int, tuple[bytes, ...]]:
    with imap.client() as client:
        client.select_folder(folder, readonly=True)
        uids = client.search("ALL")
        return {uid: data[b"FLAGS"] for uid, data in client.fetch(uids, ["FLAGS"]).items()} if uids else {}


def test_corpus_registered_once_with_receipts(
    app: App, imap: ImapServerHandle, smtp_sink: SmtpSink, shared_dir: Path
) -> None:
    corpus = load_corpus(shared_dir)
    uid_to_record = {append_with_date(imap, raw): (record, raw) for record, raw in corpus}

    stored, sent = poll_once(app)

    assert stored == len(corpus)
    with app.session_factory() as session:
        messages = {m.uid: m for m in session.scalars(select(Message))}
        items = list(session.scalars(select(Item)))
        assert len(messages) == len(corpus)
        wrong_state = {
            record["file"]: (messages[uid].state, messages[uid].reason)
            for uid, (record, _raw) in uid_to_record.items()
            if messages[uid].state != expected_state(record)
        }
        assert wrong_state == {}
        for uid, (record, raw) in uid_to_record.items():
            message = messages[uid]
            # The server may turn bare LF into CRLF; the archive contains the bytes as the server sent them.
            archived = app.context.archive.get(message.sha256)
            assert message.sha256 == sha256_hex(archived)
            assert unify_newlines(archived) == unify_newlines(raw)
            assert message.message_id == record["message_id"]
            assert message.unit_code == record["unit"]
            assert message.server_action == ServerAction.DONE

        registered = [
            (record, messages[uid])
            for uid, (record, _raw) in uid_to_record.items()
            if expected_state(record) is MessageState.REGISTERED
        ]
        assert len(items) == len(registered)
        assert sorted(item.serial for item in items) == [f"2026-{n:04d}" for n in range(1, len(items) + 1)]
        title_gaps = set()
        for record, message in registered:
            (item,) = message.items
            assert item.unit_code == record["unit"]
            assert item.category == record["category"]
            assert item.has_review_line == record["has_review_line"]
            assert item.received_at == message.internaldate
            if item.title != record["title"]:
                title_gaps.add(record["file"])
        assert title_gaps == KNOWN_TITLE_GAPS
        docx_count = session.scalar(select(func.count(Attachment.id)).where(Attachment.kind == "docx"))
        assert docx_count and docx_count > 30

    # Each 重大突发事件 item also sends the office and the leader an alert at once.
    alerts = sum(1 for record, _m in registered if record["category"] == "重大突发事件")
    delivered = smtp_sink.wait_for(len(registered) + alerts, timeout=10)
    assert sent == len(registered) + alerts
    receipts = [r for r in delivered if "【回执】" in str(message_from_bytes(r.data, policy=policy.default)["Subject"])]
    assert len(receipts) == len(registered)
    by_recipient = sorted(r.rcpt_tos[0] for r in receipts)
    assert by_recipient == sorted(record["sender"] for record, _m in registered)
    for received in receipts:
        mail = message_from_bytes(received.data, policy=policy.default)
        assert mail["Auto-Submitted"] == "auto-replied"
        assert mail["In-Reply-To"] in {record["message_id"] for record, _m in registered}
        assert "已收到并登记" in mail.get_body(preferencelist=("plain",)).get_content()

    assert all(stored_flag(imap) in flags for flags in flags_by_uid(imap).values())


def test_second_poll_adds_and_sends_nothing(
    app: App, imap: ImapServerHandle, smtp_sink: SmtpSink, shared_dir: Path
) -> None:
    for _record, raw in load_corpus(shared_dir)[:12]:
        imap.append(raw)
    first_stored, first_sent = poll_once(app)
    smtp_sink.wait_for(first_sent, timeout=10)

    second_stored, second_sent = poll_once(app)

    assert first_stored == 12
    assert (second_stored, second_sent) == (0, 0)
    with app.session_factory() as session:
        assert session.scalar(select(func.count(Message.id))) == 12
        assert session.scalar(select(func.count(OutboxMail.id))) == first_sent
    assert len(smtp_sink.received) == first_sent


def test_same_bytes_twice_is_a_duplicate(
    app: App, imap: ImapServerHandle, smtp_sink: SmtpSink, shared_dir: Path
) -> None:
    _record, raw = load_corpus(shared_dir)[0]
    imap.append(raw)
    imap.append(raw)

    stored, sent = poll_once(app)

    assert (stored, sent) == (2, 1)
    with app.session_factory() as session:
        states = sorted(str(m.state) for m in session.scalars(select(Message)))
        assert states == ["duplicate", "registered"]
        assert session.scalar(select(func.count(Item.id))) == 1


@pytest.mark.parametrize("shared_case", [("case17a_duplicate_message_id.eml", "case17b_duplicate_message_id.eml")])
def test_reused_message_id_is_not_a_duplicate(
    app: App, imap: ImapServerHandle, shared_dir: Path, shared_case: tuple[str, str], units_file: Path
) -> None:
    raws = [(shared_dir / "cases" / "eml" / name).read_bytes() for name in shared_case]
    for raw in raws:
        imap.append(raw)

    stored, _sent = poll_once(app)

    assert stored == 2
    with app.session_factory() as session:
        states = [m.state for m in session.scalars(select(Message).order_by(Message.uid))]
        assert MessageState.DUPLICATE not in states


def test_move_after_store(write_config, imap: ImapServerHandle, smtp_sink: SmtpSink, shared_dir: Path) -> None:
    from daemon.app import build_app
    from daemon.config import load_settings
    from daemon.db import upgrade_database

    settings = load_settings(write_config(imap_extra='after_store = "move"\nmove_to = "zwxx-stored"'))
    app = build_app(settings)
    upgrade_database(app.engine)
    try:
        for _record, raw in load_corpus(shared_dir)[:5]:
            imap.append(raw)
        stored, _sent = poll_once(app)
    finally:
        app.close()

    assert stored == 5
    assert flags_by_uid(imap, "INBOX") == {}
    assert len(flags_by_uid(imap, "zwxx-stored")) == 5


def test_uidvalidity_change_resyncs_by_content(
    write_config, imap: ImapServerHandle, smtp_sink: SmtpSink, shared_dir: Path
) -> None:
    from daemon.app import build_app
    from daemon.config import load_settings
    from daemon.db import upgrade_database

    corpus = load_corpus(shared_dir)
    imap.create_folder("Submissions")
    settings = load_settings(write_config(imap_extra='folder = "Submissions"'))
    app = build_app(settings)
    upgrade_database(app.engine)
    try:
        for _record, raw in corpus[:3]:
            imap.append(raw, folder="Submissions")
        first_stored, first_sent = poll_once(app)
        smtp_sink.wait_for(first_sent, timeout=10)
        with imap.client() as client:
            before = client.select_folder("Submissions")[b"UIDVALIDITY"]
        # Recreating the folder gives it a new UIDVALIDITY and starts its UIDs at 1 again.
        imap.delete_folder("Submissions")
        imap.create_folder("Submissions")
        for _record, raw in corpus[:4]:
            imap.append(raw, folder="Submissions")
        with imap.client() as client:
            after = client.select_folder("Submissions")[b"UIDVALIDITY"]

        second_stored, second_sent = poll_once(app)

        with app.session_factory() as session:
            messages = list(session.scalars(select(Message)))
            items = session.scalar(select(func.count(Item.id)))
    finally:
        app.close()

    assert before != after
    assert (first_stored, first_sent) == (3, 3)
    assert (second_stored, second_sent) == (1, 1)
    assert len(messages) == 4
    assert items == 4
    assert {m.uidvalidity for m in messages} == {int(after)}
    assert len(smtp_sink.received) == 4


def test_outbox_retries_until_smtp_accepts(
    app: App, imap: ImapServerHandle, smtp_sink: SmtpSink, shared_dir: Path
) -> None:
    from datetime import timedelta

    from daemon.clock import FrozenClock

    imap.append(load_corpus(shared_dir)[0][1])
    smtp_sink.reject()
    stored, sent = poll_once(app)
    assert (stored, sent) == (1, 0)
    with app.session_factory() as session:
        (row,) = session.scalars(select(OutboxMail))
        assert row.state == OutboxState.PENDING
        assert row.attempts == 1
        assert row.last_error and "451" in row.last_error

    smtp_sink.accept()
    later = FrozenClock(app.clock.now() + timedelta(minutes=5))
    summary = send_due(app.session_factory, app.settings, later)

    assert summary.sent == 1
    assert len(smtp_sink.wait_for(1, timeout=10)) == 1
    assert send_due(app.session_factory, app.settings, later).sent == 0
    with app.session_factory() as session:
        (row,) = session.scalars(select(OutboxMail))
        assert row.state == OutboxState.SENT
        assert row.attempts == 2


def test_parse_failure_quarantines_and_goes_on(
    app: App, imap: ImapServerHandle, smtp_sink: SmtpSink, shared_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import daemon.reading
    from parsers.message import parse_message

    corpus = load_corpus(shared_dir)
    poisoned = corpus[1][1]

    def parse_or_fail(raw: bytes, **kwargs):  # type: ignore[no-untyped-def]
        # No real message makes the parser raise yet, so this simulates one that does.
        if raw == poisoned:
            raise ValueError("injected parser failure")
        return parse_message(raw, **kwargs)

    monkeypatch.setattr(daemon.reading, "parse_message", parse_or_fail)
    for _record, raw in corpus[:3]:
        imap.append(raw)

    stored, sent = poll_once(app)

    assert (stored, sent) == (3, 2)
    with app.session_factory() as session:
        states = [m.state for m in session.scalars(select(Message).order_by(Message.uid))]
        quarantined = session.scalar(select(Message).where(Message.state == MessageState.QUARANTINED))
    assert states == [MessageState.REGISTERED, MessageState.QUARANTINED, MessageState.REGISTERED]
    assert quarantined is not None
    assert "injected parser failure" in (quarantined.reason or "")
    assert unify_newlines(app.context.archive.get(quarantined.sha256)) == unify_newlines(poisoned)


def test_own_receipt_coming_back_is_not_answered(
    app: App, imap: ImapServerHandle, smtp_sink: SmtpSink, shared_dir: Path
) -> None:
    imap.append(load_corpus(shared_dir)[0][1])
    _stored, sent = poll_once(app)
    (receipt,) = smtp_sink.wait_for(sent, timeout=10)
    imap.append(receipt.data)

    stored, sent_again = poll_once(app)

    assert (stored, sent_again) == (1, 0)
    with app.session_factory() as session:
        latest = session.scalar(select(Message).order_by(Message.id.desc()).limit(1))
    assert latest is not None
    assert latest.state in (MessageState.AUTO_REPLY, MessageState.NOT_ITEM)
    assert len(smtp_sink.received) == 1
