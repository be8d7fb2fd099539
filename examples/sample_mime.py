"""Encoding helpers for the demo's sample mail: RFC 2047 words, RFC 2231 file names, bodies and .docx files.

Everything here is deterministic, so the generated messages are byte-identical on every run.
"""

from __future__ import annotations

import base64
import io
import quopri
import zipfile
from datetime import datetime, timezone
from urllib.parse import quote

from docx import Document
from docx.enum.text import WD_ALIGN_PARAGRAPH
from docx.shared import Pt

# An encoded word may be at most 75 characters long (RFC 2047, section 2).
_MAX_ENCODED_WORD = 75
_BASE64_LINE = 76
# python-docx stamps zip entries with the current time, so every entry gets this time instead.
_ZIP_TIME = (2026, 11, 1, 8, 0, 0)


def encode_words(text: str, charset: str, fold: str = "\n\t") -> str:
    """Encode ``text`` as RFC 2047 B words in ``charset``, split on character boundaries and folded.

    ``charset`` is written as given (Foxmail writes ``GB2312``, QQ Mail ``UTF-8``), so the encoded
    bytes must exist in that charset: encoding raises UnicodeEncodeError otherwise.
    """
    prefix = f"=?{charset}?B?"
    words: list[str] = []
    chunk = ""
    for char in text:
        candidate = chunk + char
        encoded_length = len(prefix) + len(base64.b64encode(candidate.encode(charset))) + 2
        if chunk and encoded_length > _MAX_ENCODED_WORD:
            words.append(_encoded_word(chunk, charset))
            chunk = char
        else:
            chunk = candidate
    if chunk:
        words.append(_encoded_word(chunk, charset))
    return fold.join(words)


def _encoded_word(text: str, charset: str) -> str:
    payload = base64.b64encode(text.encode(charset)).decode("ascii")
    return f"=?{charset}?B?{payload}?="


def encode_rfc2231(name: str, charset: str = "utf-8") -> str:
    """Return ``name`` as an RFC 2231 extended value: ``utf-8''%E6%88%90...``."""
    return f"{charset}''" + quote(name.encode(charset), safe="")


def encode_base64(data: bytes) -> str:
    """Return ``data`` in base64, wrapped at 76 characters per line."""
    text = base64.b64encode(data).decode("ascii")
    return "\n".join(text[i : i + _BASE64_LINE] for i in range(0, len(text), _BASE64_LINE))


def encode_text_base64(text: str, charset: str) -> str:
    """Encode a text body with CRLF line breaks, as mail clients do, then base64 it."""
    return encode_base64(text.replace("\n", "\r\n").encode(charset))


def encode_quoted_printable(text: str, charset: str) -> str:
    """Encode a text body as quoted-printable with LF line breaks, which to_crlf later turns into CRLF."""
    return quopri.encodestring(text.encode(charset)).decode("ascii").rstrip("\n")


def to_crlf(message: str, charset: str = "ascii") -> bytes:
    """Return the finished message with every line ending as CRLF (RFC 5322, section 2.1)."""
    lines = message.replace("\r\n", "\n").split("\n")
    return "\r\n".join(lines).encode(charset)


def build_docx(paragraphs: list[str], author: str, created: datetime) -> bytes:
    """Write a .docx whose first paragraph is the title, in the usual layout of a submitted item.

    The title is centred and bold. Body paragraphs get a first-line indent of two characters
    (32 pt at 16 pt type), and the 审核/签发 and 联系人 lines stay flush left.
    """
    document = Document()
    title, *rest = paragraphs

    heading = document.add_paragraph()
    heading.alignment = WD_ALIGN_PARAGRAPH.CENTER
    run = heading.add_run(title)
    run.bold = True
    run.font.size = Pt(22)

    for text in rest:
        paragraph = document.add_paragraph()
        if not text.startswith(("审核", "联系人")):
            paragraph.paragraph_format.first_line_indent = Pt(32)
        paragraph.add_run(text).font.size = Pt(16)

    properties = document.core_properties
    properties.author = author
    properties.last_modified_by = author
    properties.title = ""
    properties.comments = ""
    properties.revision = 1
    utc_time = created.astimezone(timezone.utc).replace(tzinfo=None)
    properties.created = utc_time
    properties.modified = utc_time

    buffer = io.BytesIO()
    document.save(buffer)
    return _restamp_zip(buffer.getvalue())


def _restamp_zip(data: bytes) -> bytes:
    """Rewrite a zip archive with a fixed time on every entry, keeping entry order and contents."""
    source = zipfile.ZipFile(io.BytesIO(data))
    output = io.BytesIO()
    with zipfile.ZipFile(output, "w") as target:
        for entry in source.infolist():
            info = zipfile.ZipInfo(entry.filename, date_time=_ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            target.writestr(info, source.read(entry.filename))
    return output.getvalue()
