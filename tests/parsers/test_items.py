"""extract_items: which messages carry an item, and its title, category, body and review lines."""

from __future__ import annotations

import hashlib

import pytest

from parsers.documents import WARNING_DOC
from parsers.items import extract_items
from parsers.model import Attachment, DocumentKind, ItemSource, ParsedMessage
from tests.parsers.docx_builder import build_docx, paragraph, table

ITEM_DOCX = build_docx(
    paragraph("")
    + paragraph("成都启动冬季文化旅游消费季")
    + paragraph("\u3000\u300010月27日，成都市举行启动仪式。")
    + table([["指标", "数值"], ["游客", "14904"]])
    + paragraph("  消费季期间推出惠民举措。")
    + paragraph("")
    + paragraph("（审核：赵强超；签发：袁思远）")
    + paragraph("联系人：何丽\u3000电话：028-01234567")
)


def _attachment(name: str, data: bytes, kind: DocumentKind, text: str | None = None) -> Attachment:
    return Attachment(name, "application/octet-stream", data, hashlib.sha256(data).hexdigest(), kind, text)


def _message(
    subject: str = "【工作动态】成都启动冬季文化旅游消费季",
    mail_text: str = "请审阅。",
    attachments: tuple[Attachment, ...] = (),
    **flags: bool,
) -> ParsedMessage:
    return ParsedMessage(
        message_id="<x@example.com>",
        subject=subject,
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
        is_auto_reply=flags.get("is_auto_reply", False),
        is_bounce=flags.get("is_bounce", False),
        is_list=flags.get("is_list", False),
    )


@pytest.mark.parametrize("flag", ["is_auto_reply", "is_bounce", "is_list"])
def test_no_item_for_automatic_mail(flag: str) -> None:
    assert extract_items(_message(**{flag: True})) == []


def test_docx_item() -> None:
    docx = _attachment("a.docx", ITEM_DOCX, DocumentKind.DOCX)
    [item] = extract_items(_message(attachments=(docx,)))
    assert item.title == "成都启动冬季文化旅游消费季"
    assert item.body_text == "10月27日，成都市举行启动仪式。\n消费季期间推出惠民举措。"
    assert item.source is ItemSource.DOCX
    assert item.category == "工作动态"
    assert item.reviewer == "赵强超"
    assert item.signer == "袁思远"
    assert item.review_line_location == "docx"
    assert item.contact == "何丽"
    assert item.phone == "028-01234567"
    assert item.contact_line_location == "docx"
    assert item.attachment_index == 0


def test_image_before_docx_skipped() -> None:
    photo = _attachment("IMG_1.JPG", b"\xff\xd8\xff", DocumentKind.IMAGE)
    docx = _attachment("a.docx", ITEM_DOCX, DocumentKind.DOCX)
    [item] = extract_items(_message(attachments=(photo, docx)))
    assert item.attachment_index == 1


def test_review_line_in_body_and_docx() -> None:
    docx = _attachment("a.docx", ITEM_DOCX, DocumentKind.DOCX)
    [item] = extract_items(_message(mail_text="请审阅。\n审核：赵强超　签发：袁思远", attachments=(docx,)))
    assert item.review_line_location == "docx+body"


def test_review_line_only_in_body() -> None:
    data = build_docx(paragraph("标题") + paragraph("正文。"))
    docx = _attachment("a.docx", data, DocumentKind.DOCX)
    mail_text = "请审阅。\n\n审核人：尹子涵　签发人：孙刚\n联系人：林秀英，联系电话：0813-01022624"
    [item] = extract_items(_message(mail_text=mail_text, attachments=(docx,)))
    assert (item.reviewer, item.signer) == ("尹子涵", "孙刚")
    assert item.review_line_location == "body"
    assert item.contact_line_location == "body"
    assert item.contact == "林秀英"
    assert item.phone == "0813-01022624"


@pytest.mark.parametrize(
    ("line", "reviewer", "signer"),
    [
        ("审核：方伟\u3000\u3000签发：严明", "方伟", "严明"),
        ("（审核：付伟；签发：严萍）", "付伟", "严萍"),
        ("审核 郑丹燕  签发 曾俊杰", "郑丹燕", "曾俊杰"),
        ("签发：谢丽凯", None, "谢丽凯"),
        ("审核人：廖雪梅　签发人：姚雪", "廖雪梅", "姚雪"),
    ],
)
def test_review_line_forms(line: str, reviewer: str | None, signer: str | None) -> None:
    data = build_docx(paragraph("标题") + paragraph("正文。") + paragraph(line))
    [item] = extract_items(_message(attachments=(_attachment("a.docx", data, DocumentKind.DOCX),)))
    assert item.has_review_line
    assert item.reviewer == reviewer
    assert item.signer == signer
    assert item.body_text == "正文。"


def test_no_review_line() -> None:
    data = build_docx(paragraph("标题") + paragraph("正文。"))
    [item] = extract_items(_message(attachments=(_attachment("a.docx", data, DocumentKind.DOCX),)))
    assert not item.has_review_line
    assert item.review_line_location is None
    assert item.reviewer is None


def test_body_item_after_greeting_and_cover_note() -> None:
    mail_text = (
        "省旅游局办公室：\n\u3000\u3000现报送工作动态一则，请审阅。\n\n绵阳智慧文旅服务平台上线\n\n"
        "\u3000\u3000第一段。\n\u3000\u3000第二段。\n\n审核：向俊杰\u3000\u3000签发：朱晓梅\n"
        "联系人：宋一帆\u3000电话：0816-03393433\n\n宋一帆\n绵阳市文化广电旅游局"
    )
    [item] = extract_items(_message(subject="【工作动态】平台上线", mail_text=mail_text))
    assert item.title == "绵阳智慧文旅服务平台上线"
    assert item.body_text == "第一段。\n第二段。"
    assert item.source is ItemSource.MAIL_BODY
    assert item.review_line_location == "body"


def test_body_item_found_by_subject_title() -> None:
    mail_text = "您好！按照约稿要求，我市稿件如下，请审阅。\n\n巴中打好冬游组合拳\n\n\u3000\u3000正文。"
    [item] = extract_items(_message(subject="约稿信息：巴中打好冬游组合拳", mail_text=mail_text))
    assert item.title == "巴中打好冬游组合拳"
    assert item.category == "约稿信息"
    assert item.body_text == "正文。"


def test_body_item_stops_at_phone_signature() -> None:
    mail_text = "关于游客走失的情况报告\n\n\u3000\u3000正文。\n\n发自我的iPhone"
    [item] = extract_items(_message(subject="【突发】关于游客走失的情况报告", mail_text=mail_text))
    assert item.body_text == "正文。"
    assert item.category == "重大突发事件"


def test_txt_item() -> None:
    text = "省旅游局召开警示教育大会\n\n    11月6日，召开大会。\n\n审核：蔡海燕　　签发：石健\n"
    txt = _attachment("a.txt", text.encode("gbk"), DocumentKind.TXT, text)
    [item] = extract_items(_message(mail_text="请查收。", attachments=(txt,)))
    assert item.source is ItemSource.TXT
    assert item.title == "省旅游局召开警示教育大会"
    assert item.body_text == "11月6日，召开大会。"
    assert item.review_line_location == "txt"


def test_legacy_doc_item_warns() -> None:
    doc = _attachment("a.doc", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", DocumentKind.DOC)
    [item] = extract_items(_message(subject="回复：【工作动态】旧格式文件", attachments=(doc,)))
    assert item.source is ItemSource.DOC
    assert item.title == "旧格式文件"
    assert item.body_text == ""
    assert item.warnings == (WARNING_DOC,)


def test_doc_named_file_with_docx_bytes() -> None:
    docx = _attachment("a.doc", ITEM_DOCX, DocumentKind.DOCX)
    [item] = extract_items(_message(attachments=(docx,)))
    assert item.source is ItemSource.DOC
    assert item.title == "成都启动冬季文化旅游消费季"


def test_nested_docx_in_attached_message() -> None:
    inner = Attachment("x.eml", "message/rfc822", b"", "0", DocumentKind.MESSAGE)
    docx = Attachment(
        "a.docx", "application/octet-stream", ITEM_DOCX, "1", DocumentKind.DOCX, depth=1, container_index=0
    )
    [item] = extract_items(_message(attachments=(inner, docx)))
    assert item.source is ItemSource.RFC822_DOCX
    assert item.attachment_index == 1


def test_title_from_subject_when_source_empty() -> None:
    [item] = extract_items(_message(subject="Re: [约稿]关于报送典型经验", mail_text=""))
    assert item.title == "关于报送典型经验"
    assert item.category == "约稿信息"
