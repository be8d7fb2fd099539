"""parse_message on small inline messages: headers, dates, flags, text and attachments."""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime, timedelta, timezone

import pytest

from parsers.message import parse_message
from parsers.model import DocumentKind

CST = timezone(timedelta(hours=8))


def _b64(text: str, charset: str = "utf-8") -> str:
    return base64.b64encode(text.encode(charset)).decode("ascii")


def _message(headers: str, body: str = "正文", charset: str = "utf-8") -> bytes:
    head = headers.strip("\n").replace("\n", "\r\n")
    return (
        f"{head}\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset={charset}\r\n"
        f"Content-Transfer-Encoding: base64\r\n\r\n{_b64(body, charset)}\r\n"
    ).encode()


def _parse(raw: bytes, **kwargs: object):  # type: ignore[no-untyped-def]
    return parse_message(raw, default_tz=CST, **kwargs)  # type: ignore[arg-type]


BASIC = """
From: "=?UTF-8?B?5pm05bed?=" <Unit.Office@Example.GOV.cn>
To: a@example.com, "=?UTF-8?B?5pS/5Yqh?=" <b@example.com>
Cc: c@example.com
Reply-To: person@example.com
Subject: =?UTF-8?B?44CQ5bel5L2c5Yqo5oCB44CR5qCH6aKY?=
Date: Tue, 3 Nov 2026 10:42:07 +0800
Message-ID: <id-1@example.com>
In-Reply-To: <req@example.gov.cn>
References: <a@x> <req@example.gov.cn>
"""


def test_basic_headers() -> None:
    parsed = _parse(_message(BASIC))
    assert parsed.subject == "【工作动态】标题"
    assert parsed.sender == "unit.office@example.gov.cn"
    assert parsed.sender_name == "晴川"
    assert parsed.to == ("a@example.com", "b@example.com")
    assert parsed.cc == ("c@example.com",)
    assert parsed.reply_to == "person@example.com"
    assert parsed.message_id == "<id-1@example.com>"
    assert parsed.in_reply_to == "<req@example.gov.cn>"
    assert parsed.references == ("<a@x>", "<req@example.gov.cn>")
    assert parsed.date == datetime(2026, 11, 3, 10, 42, 7, tzinfo=CST)


def test_date_without_offset_uses_default_tz() -> None:
    parsed = _parse(_message("From: a@example.com\nDate: Tue, 3 Nov 2026 10:42:07"))
    assert parsed.date == datetime(2026, 11, 3, 10, 42, 7, tzinfo=CST)


def test_unparseable_date_is_none() -> None:
    parsed = _parse(_message("From: a@example.com\nDate: 下周一上午"))
    assert parsed.date is None


def test_missing_date_falls_back_to_newest_received() -> None:
    headers = """
Received: from b by mx; Thu, 12 Nov 2026 16:03:30 +0800 (CST)
Received: from c by b; Thu, 12 Nov 2026 16:03:10 +0800
From: a@example.com
"""
    parsed = _parse(_message(headers))
    assert parsed.date is None
    assert parsed.received_at == datetime(2026, 11, 12, 16, 3, 30, tzinfo=CST)
    assert parsed.sent_at == parsed.received_at


def test_internaldate_is_last_fallback() -> None:
    internaldate = datetime(2026, 11, 12, 8, 0, tzinfo=UTC)
    parsed = _parse(_message("From: a@example.com"), internaldate=internaldate)
    assert parsed.sent_at == internaldate


@pytest.mark.parametrize(
    "header",
    [
        "Auto-Submitted: auto-replied",
        "Auto-Submitted: auto-generated",
        "X-Autoreply: yes",
        "X-Autorespond: yes",
        "Subject: =?UTF-8?B?" + _b64("自动回复: 收到") + "?=",
        "Subject: Auto Reply: received",
        "Subject: Out of Office: away",
    ],
)
def test_auto_reply_detected(header: str) -> None:
    parsed = _parse(_message(f"From: a@example.com\n{header}"))
    assert parsed.is_auto_reply
    assert not parsed.is_bounce


def test_auto_submitted_no_is_not_auto_reply() -> None:
    parsed = _parse(_message("From: a@example.com\nAuto-Submitted: no\nSubject: hello"))
    assert not parsed.is_auto_reply


DSN = b"""From: MAILER-DAEMON@mx.example.gov.cn (Mail Delivery System)\r
Subject: Undelivered Mail Returned to Sender\r
Auto-Submitted: auto-replied\r
MIME-Version: 1.0\r
Content-Type: multipart/report; report-type=delivery-status; boundary="b"\r
\r
--b\r
Content-Type: text/plain; charset=utf-8\r
\r
The mail could not be delivered.\r
--b\r
Content-Type: message/delivery-status\r
\r
Reporting-MTA: dns; mx.example.gov.cn\r
\r
Final-Recipient: rfc822; x@example.com\r
Action: failed\r
Status: 5.1.1\r
--b--\r
"""


def test_delivery_report_is_bounce_not_auto_reply() -> None:
    parsed = _parse(DSN)
    assert parsed.is_bounce
    assert not parsed.is_auto_reply
    assert parsed.sender == "mailer-daemon@mx.example.gov.cn"
    assert parsed.sender_name == "Mail Delivery System"


def test_postmaster_sender_is_bounce() -> None:
    parsed = _parse(_message("From: postmaster@example.com\nSubject: failure"))
    assert parsed.is_bounce


@pytest.mark.parametrize(
    "header", ["List-Id: <news.example.com>", "List-Unsubscribe: <mailto:u@example.com>", "Precedence: bulk"]
)
def test_list_mail_detected(header: str) -> None:
    assert _parse(_message(f"From: a@example.com\n{header}")).is_list


def test_ordinary_mail_has_no_flags() -> None:
    parsed = _parse(_message(BASIC))
    assert not parsed.is_auto_reply
    assert not parsed.is_bounce
    assert not parsed.is_list


def test_gb2312_label_body_decoded_as_gb18030() -> None:
    parsed = _parse(
        _message("From: a@example.com", "联系人：王堃　1—10月", charset="gbk").replace(b"gbk", b"gb2312")
    )
    assert parsed.mail_text == "联系人：王堃　1—10月"


def test_raw_gbk_subject_and_name() -> None:
    raw = (
        b"From: " + "婺源县文旅局".encode("gbk") + b" <wy@example.com>\r\n"
        b"Subject: " + "活动简报".encode("gbk") + b"\r\n"
        b"Content-Type: text/plain; charset=utf-8\r\n\r\nhello\r\n"
    )
    parsed = _parse(raw)
    assert parsed.subject == "活动简报"
    assert parsed.sender_name == "婺源县文旅局"
    assert parsed.sender == "wy@example.com"


def _multipart(*parts: str, subtype: str = "mixed", extra: str = "") -> bytes:
    lines = [
        "From: a@example.com",
        "Subject: test",
        "MIME-Version: 1.0",
        f'Content-Type: multipart/{subtype}; boundary="zz"',
        extra,
        "",
    ]
    for part in parts:
        lines.extend(["--zz", part.strip("\n")])
    lines.append("--zz--")
    return (
        "\r\n".join(line for line in lines if line is not None)
        .replace("\n", "\r\n")
        .replace("\r\r", "\r")
        .encode("utf-8", "surrogateescape")
    )


JPEG_BASE64 = base64.b64encode(b"\xff\xd8\xff\xe0rest").decode()
DOCX_MAGIC = b"PK\x03\x04" + b"\x00" * 26 + b"word/document.xml"


def test_rfc2231_continuation_split_inside_character() -> None:
    name = "甪直古镇推介.docx".encode()
    encoded = "".join(f"%{byte:02X}" for byte in name)
    first, second = encoded[:6], encoded[6:]  # cuts 甪 (3 bytes) after its second byte
    part = f"""
Content-Type: application/octet-stream
Content-Disposition: attachment; filename*0*=utf-8''{first}; filename*1*={second}
Content-Transfer-Encoding: base64

{base64.b64encode(DOCX_MAGIC).decode()}
"""
    parsed = _parse(_multipart("Content-Type: text/plain\n\nsee attachment", part))
    assert [a.filename for a in parsed.attachments] == ["甪直古镇推介.docx"]


def test_attachment_named_only_in_content_type() -> None:
    part = f"""
Content-Type: application/octet-stream; name="=?utf-8?B?{_b64("优惠政策.docx")}?="
Content-Transfer-Encoding: base64

{base64.b64encode(DOCX_MAGIC).decode()}
"""
    parsed = _parse(_multipart("Content-Type: text/plain\n\nbody", part))
    assert [a.filename for a in parsed.attachments] == ["优惠政策.docx"]


def test_kind_from_magic_not_name() -> None:
    pdf = b"%PDF-1.7\n%...."
    part = f"""
Content-Type: application/msword; name="report.doc"
Content-Disposition: attachment; filename="report.doc"
Content-Transfer-Encoding: base64

{base64.b64encode(pdf).decode()}
"""
    parsed = _parse(_multipart("Content-Type: text/plain\n\nbody", part))
    attachment = parsed.attachments[0]
    assert attachment.kind is DocumentKind.PDF
    assert attachment.sha256 == hashlib.sha256(pdf).hexdigest()
    assert attachment.warning is not None
    assert parsed.warnings == (attachment.warning,)


def test_attached_message_without_name_named_by_subject() -> None:
    inner = f"""
Content-Type: message/rfc822

From: county@example.com
Subject: =?utf-8?B?{_b64("【工作动态】县里的信息")}?=
Content-Type: multipart/mixed; boundary="in"

--in
Content-Type: text/plain; charset=utf-8

inner text
--in
Content-Type: application/octet-stream; name="item.docx"
Content-Transfer-Encoding: base64

{base64.b64encode(DOCX_MAGIC).decode()}
--in--
"""
    parsed = _parse(_multipart("Content-Type: text/plain; charset=utf-8\n\ncover note", inner))
    assert [a.filename for a in parsed.attachments] == ["【工作动态】县里的信息.eml", "item.docx"]
    assert [a.depth for a in parsed.attachments] == [0, 1]
    assert parsed.attachments[1].container_index == 0
    assert parsed.original_from == "county@example.com"
    assert parsed.mail_text == "cover note"


def test_html_only_body_converted() -> None:
    html = (
        "<html><head><style>p{}</style></head>"
        "<body><p>第一段&nbsp;文字</p><div>第二段<br>第三行</div></body></html>"
    )
    part = f"Content-Type: text/html; charset=utf-8\nContent-Transfer-Encoding: base64\n\n{_b64(html)}"
    parsed = _parse(_multipart(part))
    assert parsed.mail_text.split("\n") == ["第一段 文字", "第二段", "第三行"]
    assert parsed.mail_text_is_html


def test_plain_part_preferred_over_html() -> None:
    alternative = _multipart(
        "Content-Type: text/plain; charset=utf-8\n\nplain words",
        "Content-Type: text/html; charset=utf-8\n\n<p>html words</p>",
        subtype="alternative",
    )
    parsed = _parse(alternative)
    assert parsed.mail_text == "plain words"
    assert not parsed.mail_text_is_html


def test_text_split_around_attachment_joined() -> None:
    part = f"""
Content-Type: image/jpeg; name="IMG_1.JPG"
Content-Disposition: inline; filename="IMG_1.JPG"
Content-Transfer-Encoding: base64

{JPEG_BASE64}
"""
    parsed = _parse(
        _multipart(
            "Content-Type: text/plain; charset=utf-8\n\nbefore", part, "Content-Type: text/plain\n\nafter"
        )
    )
    assert parsed.mail_text == "before\nafter"
    assert parsed.attachments[0].kind is DocumentKind.IMAGE


def test_format_flowed_lines_joined() -> None:
    body = "这是一段很长的 \n文字。\n第二段"
    raw = (
        "From: a@example.com\r\nContent-Type: text/plain; charset=utf-8; format=flowed\r\n"
        "Content-Transfer-Encoding: 8bit\r\n\r\n" + body.replace("\n", "\r\n")
    ).encode()
    assert _parse(raw).mail_text == "这是一段很长的文字。\n第二段"


@pytest.mark.parametrize(
    "history",
    [
        "------------------ 原始邮件 ------------------\n发件人: <zwxx@example.gov.cn>;\n联系人：何思远",
        "-----原始邮件-----\n发件人: office\n联系人：何思远",
        "发件人：政务信息\n发送时间：2026年11月2日 9:30\n收件人：unit\n主题：约稿\n联系人：何思远",
        "________________________________\n发件人: 政务信息\n发送时间: 2026年11月2日\n联系人：何思远",
        '在 2026-11-02 09:30:12，"政务信息" <zwxx@example.gov.cn> 写道：\n>联系人：何思远',
        "On Mon, Nov 2, 2026 at 9:30 AM office <zwxx@example.gov.cn> wrote:\n> 联系人：何思远",
        "zwxx，您好！您在来信中写道：\n联系人：何思远",
    ],
)
def test_quoted_history_removed(history: str) -> None:
    body = f"请审阅。\n审核：尹子涵\n\n{history}"
    parsed = _parse(_message("From: a@example.com", body))
    assert parsed.mail_text == "请审阅。\n审核：尹子涵"


def test_forward_quoted_sender_found() -> None:
    headers = "From: cyc@example.gov.cn\nSubject: =?utf-8?B?" + _b64("转发: 【工作动态】标题") + "?="
    body = "请审阅。\n\n-----原始邮件-----\n发件人: 广元 <GYLY@example.gov.cn>\n发送时间: 2026年11月5日\n"
    parsed = _parse(_message(headers, body))
    assert parsed.original_from == "gyly@example.gov.cn"
    assert parsed.mail_text == "请审阅。"


def test_damaged_message_does_not_raise() -> None:
    raw = _message(BASIC)[:200] + b"\xff\xfe=?utf-8?B?5pm?="
    parsed = _parse(raw)
    assert parsed.sender == "unit.office@example.gov.cn"


def test_empty_plain_alternative_uses_html() -> None:
    alternative = _multipart(
        "Content-Type: text/plain; charset=utf-8\n\n \n",
        "Content-Type: text/html; charset=utf-8\n\n<p>html words</p>",
        subtype="alternative",
    )
    parsed = _parse(alternative)
    assert parsed.mail_text == "html words"
    assert parsed.mail_text_is_html


def test_precedence_auto_reply() -> None:
    assert _parse(_message("From: a@example.com\nPrecedence: auto_reply")).is_auto_reply
