"""extract_items on messages with several documents: one item per document that reads as an item."""

from __future__ import annotations

import dataclasses
import hashlib

from parsers.items import extract_items, looks_like_item
from parsers.model import Attachment, DocumentKind, ItemSource, ParsedMessage
from tests.parsers.docx_builder import build_docx, paragraph, table


def _docx(title: str, *body: str) -> bytes:
    return build_docx(paragraph(title) + "".join(paragraph(text) for text in body))


def _attachment(name: str, data: bytes, kind: DocumentKind, text: str | None = None) -> Attachment:
    return Attachment(name, "application/octet-stream", data, hashlib.sha256(data).hexdigest(), kind, text)


def _message(*attachments: Attachment, mail_text: str = "请审阅。") -> ParsedMessage:
    return ParsedMessage(
        message_id="<multi@example.com>",
        subject="【工作动态】信息两则",
        sender="cdly@example.gov.cn",
        sender_name="成都",
        date=None,
        received_at=None,
        to=(),
        cc=(),
        reply_to=None,
        in_reply_to=None,
        references=(),
        mail_text=mail_text,
        attachments=attachments,
        is_auto_reply=False,
        is_bounce=False,
        is_list=False,
    )


FIRST = _docx("成都启动冬季文化旅游消费季", "\u3000\u300010月27日，成都举行启动仪式。", "审核：赵强超　签发：袁思远")
SECOND = _docx("成都举办导游业务培训班", "\u3000\u300011月3日，培训班开班。")


def test_two_documents_two_items() -> None:
    message = _message(
        _attachment("a.docx", FIRST, DocumentKind.DOCX),
        _attachment("b.docx", SECOND, DocumentKind.DOCX),
    )

    items = extract_items(message)

    assert [item.title for item in items] == ["成都启动冬季文化旅游消费季", "成都举办导游业务培训班"]
    assert [item.attachment_index for item in items] == [0, 1]
    assert [item.body_text for item in items] == ["10月27日，成都举行启动仪式。", "11月3日，培训班开班。"]
    assert items[0].reviewer == "赵强超"
    assert items[1].reviewer is None


def test_docx_and_txt_both_items() -> None:
    text = "成都举办导游业务培训班\n\n    11月3日，培训班开班。\n"
    message = _message(
        _attachment("a.docx", FIRST, DocumentKind.DOCX),
        Attachment("b.txt", "text/plain", text.encode(), "t" * 64, DocumentKind.TXT, text),
    )

    items = extract_items(message)

    assert [item.source for item in items] == [ItemSource.DOCX, ItemSource.TXT]
    assert items[1].title == "成都举办导游业务培训班"


def test_pdf_text_is_an_item() -> None:
    text = "成都举办导游业务培训班\n11月3日，培训班开班，\n全市120名导游参加。\n"
    message = _message(_attachment("b.pdf", b"%PDF-1.7", DocumentKind.PDF, text))

    [item] = extract_items(message)

    assert item.title == "成都举办导游业务培训班"
    assert item.body_text == "11月3日，培训班开班，\n全市120名导游参加。"
    assert item.attachment_index == 0


def test_cover_letter_is_not_an_item() -> None:
    cover = _docx("关于报送工作动态信息的函", "省旅游局办公室：", "现将我局工作动态报上，请审阅。")
    message = _message(
        _attachment("函.docx", cover, DocumentKind.DOCX),
        _attachment("a.docx", FIRST, DocumentKind.DOCX),
    )

    [item] = extract_items(message)

    assert item.title == "成都启动冬季文化旅游消费季"
    assert item.attachment_index == 1


def test_table_only_document_is_not_an_item() -> None:
    figures = build_docx(paragraph("附表：1—10月接待情况") + table([["指标", "数值"], ["游客", "14904"]]))
    message = _message(
        _attachment("a.docx", FIRST, DocumentKind.DOCX),
        _attachment("附表.docx", figures, DocumentKind.DOCX),
    )

    [item] = extract_items(message)

    assert item.attachment_index == 0


def test_same_document_twice_is_one_item() -> None:
    message = _message(
        _attachment("a.docx", FIRST, DocumentKind.DOCX),
        _attachment("a(1).docx", FIRST, DocumentKind.DOCX),
    )

    items = extract_items(message)

    assert len(items) == 1


def test_title_only_document_still_the_item() -> None:
    bare = _docx("成都启动冬季文化旅游消费季")
    message = _message(_attachment("a.docx", bare, DocumentKind.DOCX))

    [item] = extract_items(message)

    assert item.title == "成都启动冬季文化旅游消费季"
    assert item.body_text == ""
    assert not looks_like_item(item)


def test_images_alone_leave_body_item() -> None:
    mail_text = "成都举办导游业务培训班\n\n\u3000\u300011月3日，培训班开班。"
    message = _message(_attachment("1.jpg", b"\xff\xd8\xff\xe0", DocumentKind.IMAGE), mail_text=mail_text)

    [item] = extract_items(message)

    assert item.source is ItemSource.MAIL_BODY
    assert item.title == "成都举办导游业务培训班"


def test_pdf_enclosure_leaves_body_item() -> None:
    mail_text = "成都举办导游业务培训班\n\n\u3000\u300011月3日，培训班开班。"
    scan = _attachment("通知.pdf", b"%PDF-1.7", DocumentKind.PDF, "关于举办导游业务培训班的通知")
    message = _message(scan, mail_text=mail_text)

    [item] = extract_items(message)

    assert item.source is ItemSource.MAIL_BODY
    assert item.attachment_index is None


def test_pdf_and_ofd_items_name_their_source() -> None:
    text = "乐山市开展冬季文旅消费季\n11月20日，乐山市启动冬季文旅消费季。\n审核：王明　签发：李华"
    for kind, source in ((DocumentKind.PDF, ItemSource.PDF), (DocumentKind.OFD, ItemSource.OFD)):
        (item,) = extract_items(_message(_attachment(f"信息.{kind}", text.encode(), kind, text)))

        assert item.source is source
        assert item.title == "乐山市开展冬季文旅消费季"


def test_converted_doc_text_is_read_as_item() -> None:
    text = "广元市召开旅游安全工作会\n12月1日，广元市召开冬季旅游安全工作会议。\n审核：赵强　签发：钱进"

    (item,) = extract_items(_message(_attachment("信息.doc", b"\xd0\xcf\x11\xe0", DocumentKind.DOC, text)))

    assert item.source is ItemSource.DOC
    assert item.title == "广元市召开旅游安全工作会"
    assert item.body_text == "12月1日，广元市召开冬季旅游安全工作会议。"
    assert item.reviewer == "赵强"
    assert item.signer == "钱进"


def test_unconverted_doc_asks_for_docx() -> None:
    (item,) = extract_items(_message(_attachment("信息.doc", b"\xd0\xcf\x11\xe0", DocumentKind.DOC)))

    assert item.source is ItemSource.DOC
    assert item.body_text == ""
    assert any("docx" in warning for warning in item.warnings)


def test_cover_note_only_takes_subject_title() -> None:
    bomb = _attachment("材料.zip", b"PK\x03\x04", DocumentKind.ZIP)
    message = dataclasses.replace(
        _message(bomb, mail_text="您好：\n见附件压缩包。"), subject="【工作动态】眉山举办东坡文化旅游节"
    )

    (item,) = extract_items(message)

    assert item.title == "眉山举办东坡文化旅游节"
    assert item.body_text == ""
    assert any("请办公室查看附件" in warning for warning in item.warnings)


def test_pdf_review_line_location_is_pdf() -> None:
    text = "雅安开展熊猫文化旅游推介\n11月5日，雅安市在成都举办推介会。\n审核：周明　签发：吴刚"

    (item,) = extract_items(_message(_attachment("信息.pdf", b"%PDF-1.7", DocumentKind.PDF, text)))

    assert item.review_line_location == "pdf"
