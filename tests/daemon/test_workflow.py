"""Item states: allowed changes, refused changes, undo, and the event row behind each."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from daemon.app import App
from daemon.models import Item, ItemEvent, ItemState
from daemon.workflow import ALLOWED, TransitionError, change_state, undo_last_change
from tests.daemon.test_register import CD, START, Mailbox, build_mail, item_docx

OFFICE = "xxb@tourism.example.gov.cn"
LEADER = "leader@tourism.example.gov.cn"


@pytest.fixture
def item_id(app: App) -> int:
    document = item_docx("成都启动冬季消费季", "12月1日，成都市启动冬季文旅消费季。")
    message = Mailbox(app).deliver(build_mail(CD, "【工作动态】成都冬季消费季", [("信息.docx", document)]), START)
    with app.session_factory() as session:
        return session.scalars(select(Item.id).where(Item.message_db_id == message.id)).one()


def test_full_path_records_each_event(app: App, item_id: int) -> None:
    steps = [
        (ItemState.EDITED, OFFICE, "edit"),
        (ItemState.PENDING_APPROVAL, OFFICE, "送审"),
        (ItemState.APPROVED, LEADER, "approve"),
        (ItemState.SUBMITTED, OFFICE, "报送"),
        (ItemState.ADOPTED, OFFICE, "采用"),
        (ItemState.ADOPTED, OFFICE, "采用"),
    ]
    with app.session_factory.begin() as session:
        item = session.get_one(Item, item_id)
        for state, actor, command in steps:
            change_state(session, item, state, actor=actor, at=START, command=command, via_message_id="<m@x>")

    with app.session_factory() as session:
        item = session.get_one(Item, item_id)
        events = list(session.scalars(select(ItemEvent).where(ItemEvent.item_id == item_id).order_by(ItemEvent.id)))
    assert item.state == ItemState.ADOPTED
    assert [e.new_state for e in events] == ["registered", *[str(state) for state, _a, _c in steps]]
    assert [e.old_state for e in events[1:]] == [e.new_state for e in events[:-1]]
    assert events[3].actor == LEADER
    assert events[3].via_message_id == "<m@x>"


@pytest.mark.parametrize(
    ("start", "target"),
    [
        (ItemState.REGISTERED, ItemState.SUBMITTED),
        (ItemState.REGISTERED, ItemState.APPROVED),
        (ItemState.NOT_SENT, ItemState.PENDING_APPROVAL),
        (ItemState.SUPERSEDED, ItemState.REGISTERED),
        (ItemState.SUBMITTED, ItemState.RETURNED),
    ],
)
def test_disallowed_change_is_refused(app: App, item_id: int, start: ItemState, target: ItemState) -> None:
    with app.session_factory.begin() as session:
        item = session.get_one(Item, item_id)
        item.state = start
    with app.session_factory.begin() as session:
        item = session.get_one(Item, item_id)
        with pytest.raises(TransitionError, match="不能改为") as raised:
            change_state(session, item, target, actor=OFFICE, at=START, command="test")
        assert item.serial in str(raised.value)
        assert item.state == start


def test_undo_restores_previous_state(app: App, item_id: int) -> None:
    with app.session_factory.begin() as session:
        item = session.get_one(Item, item_id)
        change_state(session, item, ItemState.PENDING_APPROVAL, actor=OFFICE, at=START, command="送审")
        undone, undo = undo_last_change(session, item, actor=OFFICE, at=START)

        assert item.state == ItemState.REGISTERED
        assert undone.command == "送审"
        assert undo.command == "undo"
        assert undo.old_state == ItemState.PENDING_APPROVAL
        assert undo.new_state == ItemState.REGISTERED


def test_undo_of_someone_elses_change_is_refused(app: App, item_id: int) -> None:
    with app.session_factory.begin() as session:
        item = session.get_one(Item, item_id)
        change_state(session, item, ItemState.PENDING_APPROVAL, actor=OFFICE, at=START, command="送审")
        change_state(session, item, ItemState.APPROVED, actor=LEADER, at=START, command="approve")

        with pytest.raises(TransitionError, match="没有可撤销的操作"):
            undo_last_change(session, item, actor=OFFICE, at=START)
        assert item.state == ItemState.APPROVED


def test_every_state_has_rules_and_a_label() -> None:
    from daemon.views import ITEM_STATE_LABELS

    assert set(ALLOWED) == set(ItemState)
    assert set(ITEM_STATE_LABELS) == set(ItemState)
    assert ALLOWED[ItemState.NOT_SENT] == frozenset()
    assert ALLOWED[ItemState.SUPERSEDED] == frozenset()
