"""`zwxx reparse`: items updated in place, unregistered messages registered, never a second receipt."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import delete, func, select, update

import daemon.reading
from daemon.app import App
from daemon.models import Item, ItemEvent, ItemState, Message, MessageState, OutboxMail
from daemon.reparse import reparse_messages, select_message_ids
from parsers.message import parse_message
from tests.daemon.test_cli import run_zwxx
from tests.daemon.test_register import CD, LZ, START, Mailbox, build_mail, item_docx

TITLE = "成都启动冬季消费季"


@pytest.fixture
def mailbox(app: App) -> Mailbox:
    return Mailbox(app)


def count_outbox(app: App) -> int:
    with app.session_factory() as session:
        return session.scalar(select(func.count(OutboxMail.id))) or 0


def reparse_all(app: App, *, dry_run: bool = False):  # type: ignore[no-untyped-def]
    with app.session_factory() as session:
        ids = select_message_ids(session, since=None, message_db_id=None)
    return reparse_messages(app.session_factory, app.context, ids, dry_run=dry_run)


def make_stale(app: App, item_id: int) -> None:
    """Give an item the fields an older parser might have read: a wrong title and no body."""
    with app.session_factory.begin() as session:
        session.execute(
            update(Item)
            .where(Item.id == item_id)
            .values(title="旧版本读出的标题", body_text="", body_chars=0, category="约稿信息", photo_count=0)
        )


def test_reparse_updates_item_in_place(app: App, mailbox: Mailbox) -> None:
    message = mailbox.deliver(
        build_mail(CD, f"【工作动态】{TITLE}", [("a.docx", item_docx(TITLE, "推出活动108项。"))], images=1), START
    )
    with app.session_factory() as session:
        (item,) = session.scalars(select(Item).where(Item.message_db_id == message.id))
    make_stale(app, item.id)
    outbox_before = count_outbox(app)

    summary = reparse_all(app)

    assert summary.messages == 1
    assert summary.items_updated == 1
    assert summary.receipts_queued == 0
    assert count_outbox(app) == outbox_before
    with app.session_factory() as session:
        fresh = session.get(Item, item.id)
        assert fresh is not None
        assert fresh.serial == item.serial
        assert fresh.title == TITLE
        assert fresh.body_text == "推出活动108项。"
        assert fresh.category == "工作动态"
        assert fresh.photo_count == 1
        assert fresh.state == ItemState.REGISTERED
        events = list(session.scalars(select(ItemEvent).where(ItemEvent.item_id == item.id).order_by(ItemEvent.id)))
    assert [event.command for event in events] == ["register", "reparse"]
    assert events[1].comment is not None and "标题" in events[1].comment


def test_reparse_twice_changes_nothing(app: App, mailbox: Mailbox) -> None:
    mailbox.deliver(build_mail(CD, f"【工作动态】{TITLE}", [("a.docx", item_docx(TITLE, "推出活动108项。"))]), START)

    summary = reparse_all(app)

    assert (summary.items_updated, summary.items_unchanged) == (0, 1)
    assert summary.changes == []
    with app.session_factory() as session:
        assert session.scalar(select(func.count(ItemEvent.id)).where(ItemEvent.command == "reparse")) == 0


def test_dry_run_writes_nothing(app: App, mailbox: Mailbox) -> None:
    message = mailbox.deliver(
        build_mail(CD, f"【工作动态】{TITLE}", [("a.docx", item_docx(TITLE, "推出活动108项。"))]), START
    )
    with app.session_factory() as session:
        (item,) = session.scalars(select(Item).where(Item.message_db_id == message.id))
    make_stale(app, item.id)

    summary = reparse_all(app, dry_run=True)

    assert summary.items_updated == 1
    assert any(item.serial in line and "标题" in line for line in summary.changes)
    with app.session_factory() as session:
        unchanged = session.get(Item, item.id)
        assert unchanged is not None
        assert unchanged.title == "旧版本读出的标题"
        assert session.scalar(select(func.count(ItemEvent.id)).where(ItemEvent.command == "reparse")) == 0


def test_quarantined_message_registered_with_receipt(
    app: App, mailbox: Mailbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    good = build_mail(CD, f"【工作动态】{TITLE}", [("a.docx", item_docx(TITLE, "推出活动108项。"))])
    broken = build_mail(
        LZ, "【工作动态】泸州开展安全大检查", [("b.docx", item_docx("泸州开展安全大检查", "检查景区。"))]
    )

    def parse_or_fail(raw: bytes, **kwargs):  # type: ignore[no-untyped-def]
        # Stands in for a parser bug that the upgrade fixed.
        if raw == broken:
            raise ValueError("parser bug before the upgrade")
        return parse_message(raw, **kwargs)

    monkeypatch.setattr(daemon.reading, "parse_message", parse_or_fail)
    mailbox.deliver(good, START)
    quarantined = mailbox.deliver(broken, START + timedelta(hours=1))
    monkeypatch.undo()
    assert quarantined.state == MessageState.QUARANTINED

    summary = reparse_all(app)

    assert summary.items_registered == 1
    assert summary.receipts_queued == 1
    assert summary.states_changed == 1
    with app.session_factory() as session:
        message = session.get(Message, quarantined.id)
        assert message is not None
        assert message.state == MessageState.REGISTERED
        assert message.reason is None
        (item,) = message.items
        assert item.serial == "2026-0002"
        assert item.unit_code == "lz"
        assert [event.command for event in item.events] == ["register"]
        receipts = list(session.scalars(select(OutboxMail).where(OutboxMail.message_db_id == message.id)))
    assert len(receipts) == 1
    assert count_outbox(app) == 2

    again = reparse_all(app)

    assert (again.items_registered, again.receipts_queued) == (0, 0)
    assert count_outbox(app) == 2


def test_answered_message_gets_no_second_receipt(app: App, mailbox: Mailbox) -> None:
    message = mailbox.deliver(
        build_mail(CD, f"【工作动态】{TITLE}", [("a.docx", item_docx(TITLE, "推出活动108项。"))]), START
    )
    # The message got its receipt, but its item is gone, as after an older version read nothing from it.
    with app.session_factory.begin() as session:
        session.execute(update(OutboxMail).values(item_id=None))
        session.execute(delete(ItemEvent))
        session.execute(delete(Item))
        session.execute(update(Message).where(Message.id == message.id).values(state=MessageState.NOT_ITEM))

    summary = reparse_all(app)

    assert summary.items_registered == 1
    assert summary.receipts_queued == 0
    assert count_outbox(app) == 1
    with app.session_factory() as session:
        assert session.scalar(select(func.count(Item.id))) == 1


def test_duplicate_stays_duplicate(app: App, mailbox: Mailbox) -> None:
    raw = build_mail(CD, f"【工作动态】{TITLE}", [("a.docx", item_docx(TITLE, "推出活动108项。"))])
    mailbox.deliver(raw, START)
    duplicate = mailbox.deliver(raw, START + timedelta(minutes=5))

    summary = reparse_all(app)

    assert summary.receipts_queued == 0
    assert summary.states_changed == 0
    with app.session_factory() as session:
        message = session.get(Message, duplicate.id)
        assert message is not None
        assert message.state == MessageState.DUPLICATE
        assert session.scalar(select(func.count(Item.id))) == 1
    assert count_outbox(app) == 1


def test_select_by_message_and_since(app: App, mailbox: Mailbox) -> None:
    first = mailbox.deliver(build_mail(CD, "【工作动态】甲", [("a.docx", item_docx("甲", "正文甲。"))]), START)
    second = mailbox.deliver(
        build_mail(LZ, "【工作动态】乙", [("b.docx", item_docx("乙", "正文乙。"))]), START + timedelta(days=3)
    )

    with app.session_factory() as session:
        only = select_message_ids(session, since=None, message_db_id=first.id)
        recent = select_message_ids(session, since=START + timedelta(days=1), message_db_id=None)

    assert only == [first.id]
    assert recent == [second.id]


def test_cli_reparse_dry_run_then_real(app: App, mailbox: Mailbox) -> None:
    message = mailbox.deliver(
        build_mail(CD, f"【工作动态】{TITLE}", [("a.docx", item_docx(TITLE, "推出活动108项。"))]), START
    )
    with app.session_factory() as session:
        (item,) = session.scalars(select(Item).where(Item.message_db_id == message.id))
    make_stale(app, item.id)
    config = app.settings.path
    assert config is not None

    dry = run_zwxx("reparse", "--dry-run", config=config)
    real = run_zwxx("reparse", "--message", str(message.id), config=config)
    missing = run_zwxx("reparse", "--message", "999", config=config)
    bad_date = run_zwxx("reparse", "--since", "2026-13-01", config=config)

    assert dry.returncode == 0, dry.stderr
    assert "试运行" in dry.stdout
    assert f"{item.serial}：更新 标题" in dry.stdout
    assert "将更新信息 1 条" in dry.stdout
    assert real.returncode == 0, real.stderr
    assert "重新解析邮件 1 封：已更新信息 1 条" in real.stdout
    assert missing.returncode == 1
    assert "没有编号为 999 的邮件" in missing.stderr
    assert bad_date.returncode == 1
    assert "格式无效" in bad_date.stderr
    with app.session_factory() as session:
        fresh = session.get(Item, item.id)
        assert fresh is not None
        assert fresh.title == TITLE


def test_reparse_links_revision_registered_before(app: App, mailbox: Mailbox) -> None:
    first = mailbox.deliver(
        build_mail(CD, f"【工作动态】{TITLE}", [("a.docx", item_docx(TITLE, "推出活动108项。"))]), START
    )
    second = mailbox.deliver(
        build_mail(CD, f"【工作动态】{TITLE}（修改稿）", [("a.docx", item_docx(TITLE, "推出活动118项。"))]),
        START + timedelta(days=1),
    )
    # As registered by a version that did not link revisions.
    with app.session_factory.begin() as session:
        session.execute(delete(ItemEvent).where(ItemEvent.command == "supersede"))
        session.execute(update(Item).values(revises_id=None, state=ItemState.REGISTERED))

    summary = reparse_all(app)

    assert summary.items_updated == 1
    assert summary.receipts_queued == 0
    with app.session_factory() as session:
        (original,) = session.scalars(select(Item).where(Item.message_db_id == first.id))
        (revision,) = session.scalars(select(Item).where(Item.message_db_id == second.id))
        assert revision.revises_id == original.id
        assert original.state == ItemState.SUPERSEDED
        commands = [event.command for event in original.events]
    assert commands == ["register", "supersede"]
    assert any(f"认定为 {original.serial} 的修改稿" in line for line in summary.changes)


def test_reparse_adds_missed_item_without_receipt(app: App, mailbox: Mailbox) -> None:
    documents = [("a.docx", item_docx(TITLE, "推出活动108项。")), ("b.docx", item_docx("成都举办导游培训班", "开班。"))]
    message = mailbox.deliver(build_mail(CD, "【工作动态】信息两则", documents), START)
    # As registered by a version that read one item per message.
    with app.session_factory.begin() as session:
        second = session.scalars(select(Item).where(Item.message_db_id == message.id).order_by(Item.id)).all()[1]
        session.execute(delete(ItemEvent).where(ItemEvent.item_id == second.id))
        session.execute(delete(Item).where(Item.id == second.id))

    summary = reparse_all(app)

    assert summary.items_added == 1
    assert summary.items_unchanged == 1
    assert summary.receipts_queued == 0
    assert count_outbox(app) == 1
    with app.session_factory() as session:
        titles = list(session.scalars(select(Item.title).where(Item.message_db_id == message.id).order_by(Item.id)))
    assert titles == [TITLE, "成都举办导游培训班"]


def test_reparse_keeps_converted_doc_text(app: App, antiword: str) -> None:
    import dataclasses

    from daemon.config import DocConverter
    from daemon.register import RegisterContext
    from tests.daemon.test_convert import build_doc

    settings = dataclasses.replace(
        app.settings, documents=dataclasses.replace(app.settings.documents, doc_converter=DocConverter.ANTIWORD)
    )
    app.context = RegisterContext(settings, app.context.units, app.context.archive, app.context.clock)
    doc = build_doc(["泸州开展冬季旅游安全检查", "11月20日，泸州市开展冬季旅游安全检查。", "审核：张明　签发：李强"])
    message = Mailbox(app).deliver(build_mail(LZ, "【工作动态】泸州安全检查", [("信息.doc", doc)]), START)

    reparse_all(app)

    with app.session_factory() as session:
        (item,) = session.scalars(select(Item).where(Item.message_db_id == message.id))
    assert item.source == "doc"
    assert item.title == "泸州开展冬季旅游安全检查"
    assert item.body_text == "11月20日，泸州市开展冬季旅游安全检查。"
    assert item.reviewer == "张明"


def test_held_mail_registered_after_address_added(app: App, mailbox: Mailbox) -> None:
    stranger = "someone@qq.example.com"
    document = item_docx(TITLE, "12月1日，成都市启动冬季文旅消费季。")
    message = mailbox.deliver(build_mail(stranger, "【工作动态】成都冬季消费季", [("信息.docx", document)]), START)
    with app.session_factory() as session:
        assert session.get_one(Message, message.id).state == MessageState.HELD

    app.context.units.add_address("cd", stranger)
    reparse_all(app)

    with app.session_factory() as session:
        stored = session.get_one(Message, message.id)
        (item,) = session.scalars(select(Item).where(Item.message_db_id == message.id))
        receipts = list(session.scalars(select(OutboxMail).where(OutboxMail.message_db_id == message.id)))
    assert stored.state == MessageState.REGISTERED
    assert item.unit_code == "cd"
    assert item.title == TITLE
    assert [r.recipient_list for r in receipts] == [[stranger]]
