"""Registering items: several per message, revisions (修改稿), copies of one document, author unit and photos."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path

import pytest
from sqlalchemy import select

from daemon.app import App
from daemon.embedded import SmtpSink
from daemon.links import SYSTEM_ACTOR
from daemon.models import Attachment, Item, ItemEvent, ItemState, Message, MessageState, OutboxMail
from daemon.register import REVISION_WITHOUT_ORIGINAL_WARNING
from daemon.store import SourceKey, ingest_message
from parsers.titles import is_marked_revision, normalise_title
from tests.daemon.test_pipeline import append_with_date, load_corpus, poll_once
from tests.parsers.docx_builder import build_docx, paragraph
from tests.servers.handle import ImapServerHandle

CD = "cdly@example.gov.cn"
LZ = "lzly@example.gov.cn"
GY = "gyly@example.gov.cn"
CYC = "cyc@tourism.example.gov.cn"
DOCX_TYPE = ("application", "vnd.openxmlformats-officedocument.wordprocessingml.document")
START = datetime(2026, 11, 2, 1, 0, tzinfo=UTC)
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(64)


def item_docx(title: str, body: str, review: str = "审核：赵强超　签发：袁思远") -> bytes:
    return build_docx(paragraph(title) + paragraph("\u3000\u3000" + body) + paragraph(review))


def build_mail(
    sender: str,
    subject: str,
    documents: list[tuple[str, bytes]],
    *,
    images: int = 0,
    text: str = "请审阅。",
    sent: datetime = START,
) -> bytes:
    mail = EmailMessage()
    mail["From"] = sender
    mail["To"] = "zwxx@tourism.example.gov.cn"
    mail["Subject"] = subject
    mail["Date"] = format_datetime(sent)
    mail["Message-ID"] = make_msgid(domain="example.gov.cn")
    mail.set_content(text)
    for name, data in documents:
        mail.add_attachment(data, maintype=DOCX_TYPE[0], subtype=DOCX_TYPE[1], filename=name)
    for number in range(images):
        mail.add_attachment(JPEG, maintype="image", subtype="jpeg", filename=f"现场{number + 1}.jpg")
    return mail.as_bytes(policy=policy.SMTP)


class Mailbox:
    """Feeds mails straight into ingest_message with increasing UIDs, as the poller would."""

    def __init__(self, app: App) -> None:
        self.app = app
        self.uid = 0

    def deliver(self, raw: bytes, at: datetime) -> Message:
        self.uid += 1
        _outcome, message = ingest_message(
            self.app.session_factory, self.app.context, SourceKey("default", "INBOX", 1, self.uid), raw, at
        )
        return message


@pytest.fixture
def mailbox(app: App) -> Mailbox:
    return Mailbox(app)


def items_of(app: App, message: Message) -> list[Item]:
    with app.session_factory() as session:
        return list(session.scalars(select(Item).where(Item.message_db_id == message.id).order_by(Item.id)))


def receipt_text(app: App, message: Message) -> str:
    with app.session_factory() as session:
        (row,) = session.scalars(select(OutboxMail).where(OutboxMail.message_db_id == message.id))
    return plain_text(row.raw)


def plain_text(raw: bytes) -> str:
    body = message_from_bytes(raw, policy=policy.default).get_body(preferencelist=("plain",))
    assert body is not None
    return str(body.get_content())


def test_two_documents_two_items_one_receipt(app: App, mailbox: Mailbox) -> None:
    raw = build_mail(
        CD,
        "【工作动态】信息两则",
        [
            ("a.docx", item_docx("成都启动冬季消费季", "10月27日举行启动仪式。")),
            ("b.docx", item_docx("成都举办导游培训班", "11月3日培训班开班。")),
        ],
        images=2,
    )

    message = mailbox.deliver(raw, START)

    items = items_of(app, message)
    assert [item.serial for item in items] == ["2026-0001", "2026-0002"]
    assert [item.title for item in items] == ["成都启动冬季消费季", "成都举办导游培训班"]
    with app.session_factory() as session:
        names = [session.get(Attachment, item.attachment_id).filename for item in items]  # type: ignore[union-attr]
    assert names == ["a.docx", "b.docx"]
    assert [item.photo_count for item in items] == [2, 0]
    assert [item.content_unit_code for item in items] == ["cd", "cd"]
    text = receipt_text(app, message)
    assert "共 2 条" in text
    assert "2026-0001" in text
    assert "2026-0002" in text


def test_same_title_within_window_is_revision(app: App, mailbox: Mailbox) -> None:
    first = mailbox.deliver(
        build_mail(
            CD, "【工作动态】成都启动冬季消费季", [("a.docx", item_docx("成都启动冬季消费季", "推出活动108项。"))]
        ),
        START,
    )
    second = mailbox.deliver(
        build_mail(
            CD, "【工作动态】成都启动冬季消费季", [("a.docx", item_docx("成都启动冬季消费季 ", "推出活动118项。"))]
        ),
        START + timedelta(days=2),
    )

    (original,) = items_of(app, first)
    (revision,) = items_of(app, second)
    assert revision.revises_id == original.id
    assert original.state == ItemState.SUPERSEDED
    assert revision.state == ItemState.REGISTERED
    with app.session_factory() as session:
        events = list(session.scalars(select(ItemEvent).where(ItemEvent.item_id == original.id).order_by(ItemEvent.id)))
    assert [event.new_state for event in events] == ["registered", "superseded"]
    assert events[1].actor == SYSTEM_ACTOR
    assert events[1].comment is not None and revision.serial in events[1].comment
    assert "本条为 2026-0001 的修改稿，原稿 2026-0001 已作废" in receipt_text(app, second)


def test_same_title_after_window_is_new_item(app: App, mailbox: Mailbox) -> None:
    first = mailbox.deliver(
        build_mail(
            CD, "【工作动态】成都启动冬季消费季", [("a.docx", item_docx("成都启动冬季消费季", "推出活动108项。"))]
        ),
        START,
    )
    later = START + timedelta(days=app.settings.items.revision_window_days + 1)
    second = mailbox.deliver(
        build_mail(
            CD, "【工作动态】成都启动冬季消费季", [("a.docx", item_docx("成都启动冬季消费季", "推出活动118项。"))]
        ),
        later,
    )

    (original,) = items_of(app, first)
    (newer,) = items_of(app, second)
    assert newer.revises_id is None
    assert original.state == ItemState.REGISTERED


def test_marked_revision_after_window(app: App, mailbox: Mailbox) -> None:
    first = mailbox.deliver(
        build_mail(
            CD, "【工作动态】成都启动冬季消费季", [("a.docx", item_docx("成都启动冬季消费季", "推出活动108项。"))]
        ),
        START,
    )
    second = mailbox.deliver(
        build_mail(
            CD,
            "【工作动态】成都启动冬季消费季（修改稿）",
            [("a.docx", item_docx("成都启动冬季消费季（修改稿）", "推出活动118项。"))],
        ),
        START + timedelta(days=20),
    )

    (original,) = items_of(app, first)
    (revision,) = items_of(app, second)
    assert revision.revises_id == original.id
    assert original.state == ItemState.SUPERSEDED


def test_revision_of_superseded_links_newest(app: App, mailbox: Mailbox) -> None:
    messages = [
        mailbox.deliver(
            build_mail(CD, subject, [("a.docx", item_docx(title, f"推出活动{number}项。"))]),
            START + timedelta(days=number),
        )
        for number, (subject, title) in enumerate(
            [
                ("【工作动态】成都启动冬季消费季", "成都启动冬季消费季"),
                ("【工作动态】成都启动冬季消费季（修改稿）", "成都启动冬季消费季"),
                ("【更正】成都启动冬季消费季", "成都启动冬季“消费季”"),
            ]
        )
    ]

    first, second, third = (items_of(app, message)[0] for message in messages)
    assert second.revises_id == first.id
    assert third.revises_id == second.id
    assert [first.state, second.state, third.state] == [
        ItemState.SUPERSEDED,
        ItemState.SUPERSEDED,
        ItemState.REGISTERED,
    ]
    with app.session_factory() as session:
        supersedes = Counter(
            event.item_id for event in session.scalars(select(ItemEvent).where(ItemEvent.command == "supersede"))
        )
    assert supersedes == {first.id: 1, second.id: 1}


def test_marked_revision_without_original_warns(app: App, mailbox: Mailbox) -> None:
    message = mailbox.deliver(
        build_mail(
            CD, "【工作动态】成都举办导游培训班（修改稿）", [("a.docx", item_docx("成都举办导游培训班", "开班。"))]
        ),
        START,
    )

    (item,) = items_of(app, message)
    assert item.revises_id is None
    assert REVISION_WITHOUT_ORIGINAL_WARNING in item.warning_list
    assert "未找到本单位此前报送的同题信息" in receipt_text(app, message)


def test_same_title_other_unit_is_not_revision(app: App, mailbox: Mailbox) -> None:
    mailbox.deliver(
        build_mail(CD, "【工作动态】开展景区安全大检查", [("a.docx", item_docx("开展景区安全大检查", "成都。"))]), START
    )
    other = mailbox.deliver(
        build_mail(LZ, "【工作动态】开展景区安全大检查", [("a.docx", item_docx("开展景区安全大检查", "泸州。"))]),
        START + timedelta(hours=3),
    )

    (item,) = items_of(app, other)
    assert item.revises_id is None
    assert item.unit_code == "lz"


def test_same_document_from_other_unit_is_same_item(app: App, mailbox: Mailbox) -> None:
    document = item_docx("广元召开乡村旅游推进会", "11月4日召开推进会。")
    first = mailbox.deliver(build_mail(GY, "【工作动态】广元召开乡村旅游推进会", [("gy.docx", document)]), START)
    forward = mailbox.deliver(
        build_mail(
            CYC, "转发: 【工作动态】广元召开乡村旅游推进会", [("gy.docx", document)], text="转发广元市信息，请审阅。"
        ),
        START + timedelta(days=1),
    )
    third = mailbox.deliver(
        build_mail(CD, "转发: 【工作动态】广元召开乡村旅游推进会", [("copy.docx", document)]),
        START + timedelta(days=2),
    )

    (original,) = items_of(app, first)
    (copy,) = items_of(app, forward)
    (second_copy,) = items_of(app, third)
    assert copy.same_item_as_id == original.id
    assert second_copy.same_item_as_id == original.id
    assert copy.revises_id is None
    assert original.state == ItemState.REGISTERED
    assert copy.serial != original.serial
    assert "已于2026年11月02日收到并登记为 2026-0001，本次登记不重复计数" in receipt_text(app, forward)


@pytest.mark.parametrize(
    "text",
    [
        "【工作动态】乐山完成复核工作（修改稿）",
        "乐山完成复核工作-修订稿",
        "【更正】乐山完成复核工作",
        "更正：乐山完成复核工作",
        "乐山完成复核工作(修改)",
    ],
)
def test_revision_marker_found(text: str) -> None:
    assert is_marked_revision(text)


@pytest.mark.parametrize("text", ["省旅游局修订导游管理办法", "乐山完成复核工作", "关于更正统计口径的说明"])
def test_revision_marker_absent(text: str) -> None:
    assert not is_marked_revision(text)


@pytest.mark.parametrize(
    ("left", "right"),
    [
        ("乐山完成A级旅游景区年度复核工作（修改稿）", "乐山完成Ａ级旅游景区年度复核工作"),
        ("【更正】南充打好冬游“组合拳” 激发消费", "南充打好冬游组合拳激发消费"),
        ("2026年1—10月运行分析", "2026年1-10月 运行分析"),
    ],
)
def test_titles_equal_after_normalising(left: str, right: str) -> None:
    assert normalise_title(left) == normalise_title(right)


def test_corpus_links_content_units_and_receipts(
    app: App, imap: ImapServerHandle, smtp_sink: SmtpSink, shared_dir: Path
) -> None:
    corpus = load_corpus(shared_dir)
    # Files 08 and 09 share a Message-ID, so messages are matched by UID, not by Message-ID.
    uid_by_file = {record["file"]: append_with_date(imap, raw) for record, raw in corpus}
    by_file = {record["file"]: record for record, _raw in corpus}

    stored, sent = poll_once(app)

    assert stored == len(corpus)
    with app.session_factory() as session:
        messages = {message.uid: message for message in session.scalars(select(Message))}
        items = {item.message_db_id: item for item in session.scalars(select(Item))}
        registered = [
            record for record, _raw in corpus if messages[uid_by_file[record["file"]]].state == MessageState.REGISTERED
        ]

        def item_for(file: str) -> Item:
            return items[messages[uid_by_file[file]].id]

        for record in registered:
            item = item_for(record["file"])
            expected_revises = item_for(record["revises"]).id if record["revises"] else None
            expected_same = item_for(record["same_item_as"]).id if record["same_item_as"] else None
            assert (record["file"], item.revises_id) == (record["file"], expected_revises)
            assert (record["file"], item.same_item_as_id) == (record["file"], expected_same)
            assert (record["file"], item.content_unit_code) == (record["file"], record["content_unit"])
            superseded = any(other["revises"] == record["file"] for other in registered)
            expected_state = ItemState.SUPERSEDED if superseded else ItemState.REGISTERED
            assert (record["file"], item.state) == (record["file"], expected_state)
        assert item_for("11-qq-ls.eml").state == ItemState.SUPERSEDED
        revision_serial = item_for("12-qq-ls-revision.eml").serial
        original_serial = item_for("11-qq-ls.eml").serial
        gy_serial = item_for("07-foxmail-gy.eml").serial
        photos = {record["file"]: item_for(record["file"]).photo_count for record in registered}

    assert photos["07-foxmail-gy.eml"] == 1
    assert photos["59-iphone-zy-inline-photo.eml"] == 1
    assert photos["01-foxmail-cd.eml"] == 0
    # Each 重大突发事件 item also sends the office and the leader an alert at once.
    alerts = sum(1 for record in registered if record["category"] == "重大突发事件")
    delivered = smtp_sink.wait_for(len(registered) + alerts, timeout=10)
    assert sent == len(registered) + alerts
    receipts = [
        r for r in delivered if str(message_from_bytes(r.data, policy=policy.default)["Subject"]).startswith("【回执】")
    ]
    assert len(receipts) == len(registered)
    answered = Counter(message_from_bytes(r.data, policy=policy.default)["In-Reply-To"] for r in receipts)
    assert answered == Counter(record["message_id"] for record in registered)
    bodies = {message_from_bytes(r.data, policy=policy.default)["In-Reply-To"]: plain_text(r.data) for r in receipts}
    revision_body = bodies[by_file["12-qq-ls-revision.eml"]["message_id"]]
    assert f"本条为 {original_serial} 的修改稿" in revision_body
    assert revision_serial in revision_body
    assert f"登记为 {gy_serial}，本次登记不重复计数" in bodies[by_file["54-outlook-cyc-fwd.eml"]["message_id"]]
