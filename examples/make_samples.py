"""Write the sample mail for `zwxx demo` into examples/mail/ (run: python examples/make_samples.py).

Each message imitates what one mail client sends and what the receiving server adds (Return-Path,
Delivered-To, Received). Dates, Message-IDs, MIME boundaries and .docx zip timestamps are fixed,
so every run writes the same bytes. ``--check`` compares the files on disk instead of writing them.
People, addresses, places and figures are invented.
"""

from __future__ import annotations

import argparse
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import sample_mime as mime
import sample_texts as texts

MAIL_DIR = Path(__file__).resolve().parent / "mail"
MAILBOX = "zwxx@tourism.example.gov.cn"
CST = timezone(timedelta(hours=8))
DOCX_TYPE = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
# The README states that every sample is under 60 KB, so generation stops when one is larger.
MAX_MESSAGE_BYTES = 60_000


def html_paragraphs(lines: list[str], tag: str = "div") -> str:
    """Return ``lines`` as simple HTML block elements, an empty line as <br>."""
    parts = [f"<{tag}>{line}</{tag}>" if line else f"<{tag}><br></{tag}>" for line in lines]
    return "\n".join(parts)


def build_foxmail_chengdu(top_received: str) -> bytes:
    """01 and 08: Foxmail 7, GB2312 headers and body, the item in a .docx sent as octet-stream."""
    sample = texts.CHENGDU
    docx = mime.build_docx(sample.document, "唐晓岚", datetime(2026, 11, 3, 9, 10, tzinfo=CST))
    filename_word = mime.encode_words(sample.filename, "GB2312")
    html = (
        '<html><head><meta http-equiv="content-type" content="text/html; charset=GB2312">'
        "<style>body { line-height: 1.5; font-size: 14px; font-family: 'Microsoft YaHei UI'; }</style>"
        "</head><body>\n" + html_paragraphs(sample.mail_lines) + "\n</body></html>\n"
    )
    message = f"""Return-Path: <cdly@example.gov.cn>
Delivered-To: {MAILBOX}
{top_received}
Received: from DESKTOP-CD4F2K7 (unknown [198.51.100.57])
	by mail.example.gov.cn (Coremail) with ESMTPA id 5c2a91e07d4b3f68;
	Tue, 3 Nov 2026 09:42:24 +0800 (CST)
Date: Tue, 3 Nov 2026 09:42:18 +0800
From: "{mime.encode_words(sample.sender_name, "GB2312")}" <cdly@example.gov.cn>
To: "{mime.encode_words("政务信息", "GB2312")}" <{MAILBOX}>
Subject: {mime.encode_words(sample.subject, "GB2312")}
X-Priority: 3
X-GUID: 3D6A0F52-8B17-4C9E-A2D4-71E5B0C93F28
X-Has-Attach: yes
X-Mailer: Foxmail 7.2.25.331[cn]
Mime-Version: 1.0
Message-ID: <202611030942183716205848@example.gov.cn>
Content-Type: multipart/mixed;
	boundary="----=_001_NextPart572914630851_=----"

This is a multi-part message in MIME format.

------=_001_NextPart572914630851_=----
Content-Type: multipart/alternative;
	boundary="----=_002_NextPart806132947215_=----"


------=_002_NextPart806132947215_=----
Content-Type: text/plain;
	charset="GB2312"
Content-Transfer-Encoding: base64

{mime.encode_text_base64(sample.mail_text, "gb2312")}

------=_002_NextPart806132947215_=----
Content-Type: text/html;
	charset="GB2312"
Content-Transfer-Encoding: quoted-printable

{mime.encode_quoted_printable(html, "gb2312")}

------=_002_NextPart806132947215_=------

------=_001_NextPart572914630851_=----
Content-Type: application/octet-stream;
	name="{filename_word}"
Content-Transfer-Encoding: base64
Content-Disposition: attachment;
	filename="{filename_word}"

{mime.encode_base64(docx)}

------=_001_NextPart572914630851_=------

"""
    return mime.to_crlf(message)


CHENGDU_FIRST_RECEIVED = """Received: from mail.example.gov.cn (mail.example.gov.cn [198.51.100.10])
	by mx.tourism.example.gov.cn (Postfix) with ESMTPS id 4Rk7TmQ2vXzN
	for <zwxx@tourism.example.gov.cn>; Tue,  3 Nov 2026 09:42:31 +0800 (CST)"""

# The same message reached the mailbox a second time: only the receiving server's line differs.
CHENGDU_REPEAT_RECEIVED = """Received: from mail.example.gov.cn (mail.example.gov.cn [198.51.100.10])
	by mx.tourism.example.gov.cn (Postfix) with ESMTPS id 4Rk9WpB6cHdL
	for <zwxx@tourism.example.gov.cn>; Tue,  3 Nov 2026 10:27:40 +0800 (CST)"""


def build_qq_leshan() -> bytes:
    """02: QQ Mail from a registered personal address, UTF-8, the item typed into the body."""
    sample = texts.LESHAN
    html = (
        '<meta http-equiv="Content-Type" content="text/html; charset=UTF-8">'
        + html_paragraphs(sample.mail_lines)
    )
    message = f"""Return-Path: <3186402759@qq.example.com>
Delivered-To: {MAILBOX}
Received: from smtpbg.qq.example.com (smtpbg.qq.example.com [203.0.113.12])
	by mx.tourism.example.gov.cn (Postfix) with ESMTPS id 4RkHc8sPq0Vb
	for <zwxx@tourism.example.gov.cn>; Tue,  3 Nov 2026 15:20:47 +0800 (CST)
Received: from localhost (unknown [198.51.100.143])
	by smtpbg.qq.example.com (ESMTP) with ESMTPA id 91b7e3d04c2f5a86;
	Tue, 3 Nov 2026 15:20:39 +0800 (CST)
X-QQ-mid: xmsezb3t1794121239tq7k2m9
X-QQ-Originating-IP: 198.51.100.143
X-QQ-MIME: TCMime 1.0 by Tencent
X-Mailer: QQMail 2.x
X-QQ-Mailer: QQMail 2.x
From: "{mime.encode_words(sample.sender_name, "UTF-8")}" <3186402759@qq.example.com>
To: "{mime.encode_words("政务信息", "UTF-8")}" <{MAILBOX}>
Subject: {mime.encode_words(sample.subject, "UTF-8", fold=chr(10) + " ")}
Mime-Version: 1.0
Content-Type: multipart/alternative;
	boundary="----=_NextPart_6E1A0B47_3C95D2F8_51B7A06E"
Content-Transfer-Encoding: 8Bit
Date: Tue, 3 Nov 2026 15:20:35 +0800
X-Priority: 3
Message-ID: <tencent_3A7F0C92E15B4D68A0C1F29B7E4D5A6C1808@qq.example.com>

This is a multi-part message in MIME format.

------=_NextPart_6E1A0B47_3C95D2F8_51B7A06E
Content-Type: text/plain;
	charset="utf-8"
Content-Transfer-Encoding: base64

{mime.encode_text_base64(sample.mail_text, "utf-8")}

------=_NextPart_6E1A0B47_3C95D2F8_51B7A06E
Content-Type: text/html;
	charset="utf-8"
Content-Transfer-Encoding: base64

{mime.encode_text_base64(html, "utf-8")}

------=_NextPart_6E1A0B47_3C95D2F8_51B7A06E--

"""
    return mime.to_crlf(message)


def build_outlook_division() -> bytes:
    """03: Outlook (Chinese) from a division replying to a commission, the .docx named with RFC 2231."""
    sample = texts.DIVISION
    docx = mime.build_docx(sample.document, "钱卫东", datetime(2026, 11, 4, 9, 40, tzinfo=CST))
    html = (
        '<html><head><meta http-equiv=Content-Type content="text/html; charset=utf-8">'
        '<meta name=Generator content="Microsoft Word 15 (filtered medium)"></head>\n'
        '<body lang=ZH-CN><div class=WordSection1>\n'
        + html_paragraphs([line or "&nbsp;" for line in sample.mail_lines], "p")
        + "\n</div></body></html>\n"
    )
    message = f"""Return-Path: <cyc@tourism.example.gov.cn>
Delivered-To: {MAILBOX}
Received: from DESKTOP-CYC21 (unknown [192.0.2.21])
	by mx.tourism.example.gov.cn (Postfix) with ESMTPSA id 4RlB2nVx7KsD
	for <zwxx@tourism.example.gov.cn>; Wed,  4 Nov 2026 10:05:52 +0800 (CST)
From: {mime.encode_words(sample.sender_name, "UTF-8")} <cyc@tourism.example.gov.cn>
To: {mime.encode_words("政务信息", "UTF-8")} <{MAILBOX}>
Subject: {mime.encode_words(sample.subject, "UTF-8", fold=chr(10) + " ")}
Date: Wed, 4 Nov 2026 10:05:47 +0800
Message-ID: <000501dd4f2a$7c3e91b0$74bbb510$@tourism.example.gov.cn>
MIME-Version: 1.0
Content-Type: multipart/mixed;
	boundary="----=_NextPart_000_0005_01DD4F2A.7C3E91B0"
X-Mailer: Microsoft Outlook 16.0
Thread-Index: AdxPKnw+kbB0u7UQk2Fq3rCyVtE8Tg==
Content-Language: zh-cn

This is a multipart message in MIME format.

------=_NextPart_000_0005_01DD4F2A.7C3E91B0
Content-Type: multipart/alternative;
	boundary="----=_NextPart_001_0006_01DD4F2A.7C3E91B0"


------=_NextPart_001_0006_01DD4F2A.7C3E91B0
Content-Type: text/plain;
	charset="utf-8"
Content-Transfer-Encoding: base64

{mime.encode_text_base64(sample.mail_text, "utf-8")}

------=_NextPart_001_0006_01DD4F2A.7C3E91B0
Content-Type: text/html;
	charset="utf-8"
Content-Transfer-Encoding: quoted-printable

{mime.encode_quoted_printable(html, "utf-8")}

------=_NextPart_001_0006_01DD4F2A.7C3E91B0--

------=_NextPart_000_0005_01DD4F2A.7C3E91B0
Content-Type: {DOCX_TYPE};
	name="{mime.encode_words(sample.filename, "utf-8", fold=" ")}"
Content-Transfer-Encoding: base64
Content-Disposition: attachment;
	filename*={mime.encode_rfc2231(sample.filename)}

{mime.encode_base64(docx)}

------=_NextPart_000_0005_01DD4F2A.7C3E91B0--

"""
    return mime.to_crlf(message)


def build_iphone_holiday() -> bytes:
    """04: iPhone Mail through a 163 account, a holiday summary in the body with no 审核/签发 line."""
    sample = texts.HOLIDAY
    message = f"""Return-Path: <aba_wl@163.example.com>
Delivered-To: {MAILBOX}
Received: from m16-38.mail.163.example.com (m16-38.mail.163.example.com [203.0.113.38])
	by mx.tourism.example.gov.cn (Postfix) with ESMTPS id 4RqF5dJw2ZtM
	for <zwxx@tourism.example.gov.cn>; Sun,  8 Nov 2026 20:16:21 +0800 (CST)
Received: from localhost (unknown [198.51.100.208])
	by m16-38.mail.163.example.com (Coremail) with ESMTPA id 0f3c7a9e52d1b846;
	Sun, 8 Nov 2026 20:16:12 +0800 (CST)
Content-Type: text/plain;
	charset=utf-8
Content-Transfer-Encoding: base64
From: {mime.encode_words(sample.sender_name, "UTF-8")} <aba_wl@163.example.com>
Mime-Version: 1.0 (1.0)
Subject: {mime.encode_words(sample.subject, "utf-8", fold=chr(10) + " ")}
Date: Sun, 8 Nov 2026 20:16:05 +0800
Message-Id: <5E0B7C1A-93D2-4F6E-8A41-2C7D90B3E615@163.example.com>
To: {mime.encode_words("政务信息", "UTF-8")} <{MAILBOX}>
X-Mailer: iPhone Mail (23B85)

{mime.encode_text_base64(sample.mail_text, "utf-8")}
"""
    return mime.to_crlf(message)


def build_unknown_sender() -> bytes:
    """05: 126 webmail (Coremail), GBK, from an address that no unit has registered, item in a .docx."""
    sample = texts.UNKNOWN
    docx = mime.build_docx(sample.document, "冉小燕", datetime(2026, 11, 9, 11, 5, tzinfo=CST))
    filename_word = mime.encode_words(sample.filename, "GBK", fold=" ")
    html = html_paragraphs(sample.mail_lines)
    message = f"""Return-Path: <mxwhly2026@126.example.com>
Delivered-To: {MAILBOX}
Received: from m126-7.mail.126.example.com (m126-7.mail.126.example.com [203.0.113.77])
	by mx.tourism.example.gov.cn (Postfix) with ESMTPS id 4RrK8gTs4YpC
	for <zwxx@tourism.example.gov.cn>; Mon,  9 Nov 2026 11:30:26 +0800 (CST)
Received: from mxwhly2026$126.example.com ( [198.51.100.176] ) by
	ajax-webmail-wmsvr7 (Coremail) ; Mon, 9 Nov 2026 11:30:14 +0800 (CST)
X-Originating-IP: [198.51.100.176]
Date: Mon, 9 Nov 2026 11:30:14 +0800 (CST)
From: "{mime.encode_words(sample.sender_name, "GBK")}" <mxwhly2026@126.example.com>
To: {MAILBOX}
Subject: {mime.encode_words(sample.subject, "GBK", fold=chr(10) + " ")}
X-Priority: 3
X-Mailer: Coremail Webmail Server Version XT5.0.14 build 20230109(dcb5de15)
Content-Type: multipart/mixed;
	boundary="----=_Part_318472_1964280531.1794195014602"
MIME-Version: 1.0
Message-ID: <6b1d2f3a.4c21.19a0e7d2b41.Coremail.mxwhly2026@126.example.com>
X-Coremail-Locale: zh_CN
X-CM-TRANSID: fsJpCgDnL7hGiBBp3kQBAA--.20417W

------=_Part_318472_1964280531.1794195014602
Content-Type: multipart/alternative;
	boundary="----=_Part_318474_727163158.1794195014602"

------=_Part_318474_727163158.1794195014602
Content-Type: text/plain; charset=GBK
Content-Transfer-Encoding: base64

{mime.encode_text_base64(sample.mail_text, "gbk")}
------=_Part_318474_727163158.1794195014602
Content-Type: text/html; charset=GBK
Content-Transfer-Encoding: base64

{mime.encode_text_base64(html, "gbk")}
------=_Part_318474_727163158.1794195014602--

------=_Part_318472_1964280531.1794195014602
Content-Type: {DOCX_TYPE}; name="{filename_word}"
Content-Transfer-Encoding: base64
Content-Disposition: attachment; filename="{filename_word}"

{mime.encode_base64(docx)}
------=_Part_318472_1964280531.1794195014602--

"""
    return mime.to_crlf(message)


def build_auto_reply() -> bytes:
    """06: a Coremail out-of-office reply from a unit's official address to an office notice."""
    sample = texts.AUTO_REPLY
    message = f"""Return-Path: <>
Delivered-To: {MAILBOX}
Received: from localhost (localhost [127.0.0.1])
	by mx.tourism.example.gov.cn (Coremail) with SMTP id 2e8b4f17c0a95d36;
	Mon, 9 Nov 2026 14:02:09 +0800 (CST)
Date: Mon, 9 Nov 2026 14:02:08 +0800 (CST)
From: "{mime.encode_words(sample.sender_name, "GBK")}" <cjzx@tourism.example.gov.cn>
To: "{mime.encode_words("政务信息", "GBK")}" <{MAILBOX}>
Message-ID: <3f9a1c7e.1b2.19a0f1c3d55.Coremail.cjzx@tourism.example.gov.cn>
In-Reply-To: <{texts.OFFICE_NOTICE_ID}>
References: <{texts.OFFICE_NOTICE_ID}>
Subject: {mime.encode_words(sample.subject, "GBK", fold=chr(10) + " ")}
MIME-Version: 1.0
Content-Type: text/plain; charset=GBK
Content-Transfer-Encoding: base64
Auto-Submitted: auto-replied
X-Auto-Response-Suppress: All
X-Mailer: Coremail Autoreply

{mime.encode_text_base64(sample.mail_text, "gbk")}
"""
    return mime.to_crlf(message)


def build_bounce() -> bytes:
    """07: a Postfix delivery status notification for an office notice sent to a mistyped address."""
    boundary = "5KdRt2WmZq8F.1794207913/mx.tourism.example.gov.cn"
    notice_subject = mime.encode_words(texts.OFFICE_NOTICE_SUBJECT, "UTF-8", fold=chr(10) + "\t")
    message = f"""Return-Path: <>
Delivered-To: {MAILBOX}
Received: by mx.tourism.example.gov.cn (Postfix)
	id 5KdRt2WmZq8F; Mon,  9 Nov 2026 14:05:13 +0800 (CST)
Date: Mon,  9 Nov 2026 14:05:13 +0800 (CST)
From: MAILER-DAEMON@mx.tourism.example.gov.cn (Mail Delivery System)
Subject: Undelivered Mail Returned to Sender
To: {MAILBOX}
Auto-Submitted: auto-replied
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status;
	boundary="{boundary}"
Content-Transfer-Encoding: 8bit
Message-Id: <20261109060513.5KdRt2WmZq8F@mx.tourism.example.gov.cn>

This is a MIME-encapsulated message.

--{boundary}
Content-Description: Notification
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: 8bit

{texts.BOUNCE_NOTIFICATION}
--{boundary}
Content-Description: Delivery report
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.tourism.example.gov.cn
X-Postfix-Queue-ID: 5KdRt2WmZq8F
X-Postfix-Sender: rfc822; {MAILBOX}
Arrival-Date: Mon,  9 Nov 2026 14:00:05 +0800 (CST)

Final-Recipient: rfc822; lsyl@example.gov.cn
Original-Recipient: rfc822;lsyl@example.gov.cn
Action: failed
Status: 5.1.1
Remote-MTA: dns; mail.example.gov.cn
Diagnostic-Code: smtp; 550 5.1.1 <lsyl@example.gov.cn>: Recipient address
    rejected: User unknown in local recipient table

--{boundary}
Content-Description: Undelivered Message Headers
Content-Type: text/rfc822-headers

Received: from [192.0.2.30] (unknown [192.0.2.30])
	by mx.tourism.example.gov.cn (Postfix) with ESMTPSA id 4RrN1bWq9FxT;
	Mon,  9 Nov 2026 14:00:05 +0800 (CST)
Date: Mon, 9 Nov 2026 14:00:02 +0800
From: "{mime.encode_words("政务信息", "UTF-8")}" <{MAILBOX}>
To: "{mime.encode_words("乐山市文旅局", "UTF-8")}" <lsyl@example.gov.cn>
Subject: {notice_subject}
Mime-Version: 1.0
Message-ID: <{texts.OFFICE_NOTICE_ID}>
Content-Type: text/plain; charset="UTF-8"

--{boundary}--
"""
    return mime.to_crlf(message, "utf-8")


def build_all() -> dict[str, bytes]:
    """Return every sample message by file name, in the order the demo appends them."""
    return {
        "01-foxmail-cd-docx.eml": build_foxmail_chengdu(CHENGDU_FIRST_RECEIVED),
        "02-qq-ls-body.eml": build_qq_leshan(),
        "03-outlook-cyc-commission.eml": build_outlook_division(),
        "04-iphone-ab-holiday-unsigned.eml": build_iphone_holiday(),
        "05-126-unknown-sender.eml": build_unknown_sender(),
        "06-autoreply-cjzx.eml": build_auto_reply(),
        "07-bounce.eml": build_bounce(),
        "08-foxmail-cd-repeat.eml": build_foxmail_chengdu(CHENGDU_REPEAT_RECEIVED),
    }


def main(argv: list[str] | None = None) -> int:
    """Write (or with --check, compare) every sample; return 1 when a file is missing or differs."""
    parser = argparse.ArgumentParser(description="生成 zwxx demo 使用的示例邮件（examples/mail/*.eml）")
    parser.add_argument("--check", action="store_true", help="只比较磁盘上的文件与生成结果，不写入")
    args = parser.parse_args(argv)

    messages = build_all()
    for name, data in messages.items():
        if len(data) > MAX_MESSAGE_BYTES:
            raise SystemExit(f"{name} 为 {len(data)} 字节，超过上限 {MAX_MESSAGE_BYTES} 字节")

    if args.check:
        stale = [name for name, data in messages.items() if _read_or_none(MAIL_DIR / name) != data]
        for name in stale:
            print(f"与生成结果不一致或缺失：mail/{name}", file=sys.stderr)
        return 1 if stale else 0

    MAIL_DIR.mkdir(exist_ok=True)
    for name, data in messages.items():
        (MAIL_DIR / name).write_bytes(data)
        print(f"已写入 mail/{name}（{len(data)} 字节）")
    return 0


def _read_or_none(path: Path) -> bytes | None:
    return path.read_bytes() if path.exists() else None


if __name__ == "__main__":
    sys.exit(main())
