"""Large base64 bodies decoded outside the MIME parser give the same ParsedMessage as the plain parse."""

from __future__ import annotations

import email
import email.base64mime
import email.message
import functools
import hashlib
import io
import os
import random
import re
import sys
import zipfile
from datetime import timedelta, timezone
from email.message import EmailMessage
from email.policy import SMTP
from pathlib import Path

import pytest

from parsers import fingerprint, largeparts
from parsers.fingerprint import content_fingerprint
from parsers.message import parse_message
from parsers.model import DocumentKind, ParsedMessage
from tests.parsers.docx_builder import build_docx, paragraph

CST = timezone(timedelta(hours=8))
SHARED = Path(os.environ.get("ZWXX_SHARED", Path(__file__).resolve().parents[3] / "shared"))
DOCX_TYPE = "vnd.openxmlformats-officedocument.wordprocessingml.document"
COVER_TEXT = "成都市文化广电旅游局关于冬季文旅消费活动的信息，详见附件。\n"


@functools.cache
def _large_docx(image_bytes: int = 400_000, seed: int = 7) -> bytes:
    """Return a .docx whose stored random image makes its base64 larger than the threshold.

    It is built once because zip entries carry the build time, so two builds can differ.
    """
    buffer = io.BytesIO(build_docx(paragraph("冬季文旅消费活动持续升温") + paragraph("联系人：王芳")))
    with zipfile.ZipFile(buffer, "a") as package:
        image = random.Random(seed).randbytes(image_bytes)
        package.writestr(zipfile.ZipInfo("word/media/image1.png"), image, compress_type=zipfile.ZIP_STORED)
    return buffer.getvalue()


def _mail_with_docx(subject: str = "【工作动态】冬季文旅消费活动") -> EmailMessage:
    message = EmailMessage()
    message["From"] = "成都市文旅局 <cdly@example.gov.cn>"
    message["To"] = "zwxx@tourism.example.gov.cn"
    message["Subject"] = subject
    message["Date"] = "Fri, 04 Dec 2026 09:30:00 +0800"
    message["Message-ID"] = "<large-test@example.gov.cn>"
    message.set_content(COVER_TEXT)
    message.add_alternative(f"<p>{COVER_TEXT}</p>", subtype="html")
    message.add_attachment(_large_docx(), maintype="application", subtype=DOCX_TYPE, filename="冬季文旅消费活动.docx")
    return message


def _parse(raw: bytes) -> ParsedMessage:
    return parse_message(raw, default_tz=CST)


def _parse_plain(raw: bytes, monkeypatch: pytest.MonkeyPatch) -> ParsedMessage:
    """Parse with the large-body path switched off, as parse_message did before it existed."""
    with monkeypatch.context() as patch:
        patch.setattr(largeparts, "LARGE_BODY_BYTES", sys.maxsize)
        return _parse(raw)


def test_docx_attachment_matches_plain_parse(monkeypatch: pytest.MonkeyPatch) -> None:
    raw = _mail_with_docx().as_bytes(policy=SMTP)
    bodies = largeparts.find_large_bodies(raw)
    assert len(bodies) == 1
    assert largeparts.read_without_large_bodies(raw, email.message_from_bytes) is not None

    large = _parse(raw)
    plain = _parse_plain(raw, monkeypatch)

    assert large.subject == plain.subject == "【工作动态】冬季文旅消费活动"
    assert large.mail_text == plain.mail_text
    assert "冬季文旅消费活动的信息" in large.mail_text
    assert len(large.attachments) == len(plain.attachments) == 1
    attachment = large.attachments[0]
    assert attachment.data == plain.attachments[0].data == _large_docx()
    assert attachment.sha256 == plain.attachments[0].sha256 == hashlib.sha256(_large_docx()).hexdigest()
    assert attachment.kind is DocumentKind.DOCX
    assert attachment.text == plain.attachments[0].text
    assert "联系人：王芳" in (attachment.text or "")
    assert large == plain


def test_attached_message_keeps_large_body(monkeypatch: pytest.MonkeyPatch) -> None:
    inner = _mail_with_docx("转发的原始邮件")
    outer = EmailMessage()
    outer["From"] = "办公室 <office@example.gov.cn>"
    outer["To"] = "zwxx@tourism.example.gov.cn"
    outer["Subject"] = "转发：冬季文旅消费活动"
    outer["Date"] = "Fri, 04 Dec 2026 10:00:00 +0800"
    outer.set_content("请查收转发的邮件。\n")
    outer.add_attachment(inner)
    raw = outer.as_bytes(policy=SMTP)

    bodies = largeparts.find_large_bodies(raw)
    assert len(bodies) == 1
    assert bodies[0].inside_message

    large = _parse(raw)
    plain = _parse_plain(raw, monkeypatch)

    kinds = [attachment.kind for attachment in large.attachments]
    assert kinds == [DocumentKind.MESSAGE, DocumentKind.DOCX]
    # The attached .eml is serialized from the tree, so it must hold the original base64 text.
    assert large.attachments[0].data == plain.attachments[0].data
    assert large.attachments[1].data == _large_docx()
    assert large.original_from == plain.original_from == "cdly@example.gov.cn"
    assert large == plain


def test_single_part_base64_body(monkeypatch: pytest.MonkeyPatch) -> None:
    text = "政务信息正文。\n" * 40_000
    message = EmailMessage()
    message["From"] = "cdly@example.gov.cn"
    message["Subject"] = "长正文"
    message.set_content(text, cte="base64")
    raw = message.as_bytes(policy=SMTP)
    assert len(largeparts.find_large_bodies(raw)) == 1

    large = _parse(raw)

    assert large.mail_text.startswith("政务信息正文。\n政务信息正文。")
    assert large == _parse_plain(raw, monkeypatch)


@pytest.mark.parametrize("cut", [1, 2])
def test_base64_without_padding(cut: int, monkeypatch: pytest.MonkeyPatch) -> None:
    data = random.Random(cut).randbytes(300_000 + cut)  # 1 or 2 bytes beyond a multiple of 3 need padding
    encoded = email.base64mime.body_encode(data).rstrip("\n").rstrip("=")
    raw = (
        "From: cdly@example.gov.cn\r\nSubject: padding\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/mixed; boundary="b1"\r\n\r\n--b1\r\nContent-Type: text/plain\r\n\r\n正文\r\n'
        '--b1\r\nContent-Type: application/octet-stream; name="data.bin"\r\n'
        f"Content-Transfer-Encoding: base64\r\n\r\n{encoded}\r\n--b1--\r\n"
    ).encode()
    assert len(largeparts.find_large_bodies(raw)) == 1

    large = _parse(raw)

    assert large.attachments[0].data == data
    assert large == _parse_plain(raw, monkeypatch)


def test_damaged_boundary_uses_plain_parse(monkeypatch: pytest.MonkeyPatch) -> None:
    raw = _mail_with_docx().as_bytes(policy=SMTP)
    boundary = re.search(rb'boundary="([^"]+)"', raw)
    assert boundary is not None
    # Drop the outer close delimiter: the email package then guesses where the last part ends.
    damaged = raw.replace(b"--" + boundary.group(1) + b"--", b"--" + boundary.group(1) + b"-x")
    assert damaged != raw

    assert largeparts.find_large_bodies(damaged) == []
    assert largeparts.read_without_large_bodies(damaged, email.message_from_bytes) is None
    parsed = _parse(damaged)
    assert parsed == _parse_plain(damaged, monkeypatch)
    assert parsed.subject == "【工作动态】冬季文旅消费活动"


def test_invalid_base64_uses_plain_parse(monkeypatch: pytest.MonkeyPatch) -> None:
    raw = _mail_with_docx().as_bytes(policy=SMTP)
    start = raw.index(b"Content-Transfer-Encoding: base64", raw.index(b"Content-Type: application/vnd"))
    line = raw.index(b"\r\n\r\n", start) + 4 + 76 * 50
    damaged = raw[:line] + b"!" + raw[line + 1 :]

    assert largeparts.find_large_bodies(damaged) == []
    assert _parse(damaged) == _parse_plain(damaged, monkeypatch)


def test_header_without_colon_uses_plain_parse(monkeypatch: pytest.MonkeyPatch) -> None:
    # A line without a colon ends the part's headers early for the email package, so its body is not base64.
    raw = _mail_with_docx().as_bytes(policy=SMTP)
    start = raw.index(b"Content-Transfer-Encoding: base64", raw.index(b"Content-Type: application/vnd"))
    damaged = raw[:start] + b"X-Broken header line\r\n" + raw[start:]

    assert largeparts.find_large_bodies(damaged) == []
    assert _parse(damaged) == _parse_plain(damaged, monkeypatch)


def test_unmatched_placeholder_returns_none() -> None:
    raw = _mail_with_docx().as_bytes(policy=SMTP)
    parsed_copies: list[bytes] = []

    def parse_other_tree(data: bytes) -> email.message.Message:
        parsed_copies.append(data)
        return email.message_from_bytes(b"Subject: other\r\nContent-Transfer-Encoding: base64\r\n\r\nQUJD\r\n")

    assert largeparts.read_without_large_bodies(raw, parse_other_tree) is None
    assert len(parsed_copies) == 1
    assert len(parsed_copies[0]) < len(raw) // 10


def _shared_messages() -> list[Path]:
    return sorted((SHARED / "corpus").rglob("*.eml")) + sorted((SHARED / "cases").rglob("*.eml"))


def test_shared_messages_match_with_low_threshold(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every base64 body of 64 bytes or more goes through the large-body path, with the same results."""
    paths = _shared_messages()
    assert paths, f"no shared messages under {SHARED}"
    used = 0
    for path in paths:
        raw = path.read_bytes()
        plain = _parse_plain(raw, monkeypatch)
        with monkeypatch.context() as patch:
            patch.setattr(largeparts, "LARGE_BODY_BYTES", 64)
            if largeparts.read_without_large_bodies(raw, email.message_from_bytes) is not None:
                used += 1
            assert _parse(raw) == plain, path.name
    assert used >= len(paths) // 2


def _reference_fingerprint(raw: bytes) -> str:
    """Compute the fingerprint as defined, hashing the whole body at once."""
    match = re.search(rb"\r?\n\r?\n", raw)
    body = raw[match.end() :] if match else b""
    digest = hashlib.sha256()
    head = raw[: match.start()] if match else raw
    unfolded = re.sub(rb"\r?\n[ \t]+", b" ", head)
    kept = []
    for line in re.split(rb"\r?\n", unfolded):
        name, sep, value = line.partition(b":")
        if sep and name.strip().lower() in fingerprint._ORIGINATOR_HEADERS:
            kept.append(name.strip().lower() + b":" + b" ".join(value.split()))
    for line in sorted(kept):
        digest.update(line + b"\n")
    digest.update(b"\n")
    digest.update(body.replace(b"\r\n", b"\n"))
    return digest.hexdigest()


@pytest.mark.parametrize("chunk_bytes", [1, 2, 5, 4096, 1024 * 1024])
def test_fingerprint_chunks_match_whole_body(chunk_bytes: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fingerprint, "_CHUNK_BYTES", chunk_bytes)
    samples = [b"Subject: a\r\n\r\nx\r\r\ny\r\n\r\r\r\n", b"Subject: a\n\nbody\r", b"no body", b""]
    samples += [path.read_bytes() for path in _shared_messages() if chunk_bytes > 64 or path.stat().st_size < 50_000]
    for raw in samples:
        assert content_fingerprint(raw) == _reference_fingerprint(raw)


def test_fingerprint_of_large_message_unchanged() -> None:
    raw = _mail_with_docx().as_bytes(policy=SMTP)
    assert content_fingerprint(raw) == _reference_fingerprint(raw)
