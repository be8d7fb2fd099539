"""Attachments packed by Outlook in a TNEF stream (winmail.dat, application/ms-tnef).

Only the attachment-level attributes are read: the title (file name, in the stream's OEM code
page), the data, and the code page itself. MAPI property blocks are skipped.
"""

from __future__ import annotations

import logging
import struct
from dataclasses import dataclass

from parsers.charsets import normalize_charset

logger = logging.getLogger(__name__)

TNEF_SIGNATURE = 0x223E9F78

# Attribute ids (low 16 bits of the attribute tag), from the MS-OXTNEF specification.
_ATT_OEM_CODEPAGE = 0x9007
_ATT_ATTACH_REND_DATA = 0x9002
_ATT_ATTACH_TITLE = 0x8010
_ATT_ATTACH_DATA = 0x800F
_LEVEL_ATTACHMENT = 2


@dataclass(frozen=True)
class TnefFile:
    """One file unpacked from a TNEF stream."""

    filename: str
    data: bytes


def is_tnef(data: bytes) -> bool:
    """Tell whether bytes start with the TNEF signature."""
    return len(data) >= 4 and struct.unpack_from("<I", data)[0] == TNEF_SIGNATURE


def unpack_tnef(data: bytes) -> list[TnefFile]:
    """Return the files in a TNEF stream; a truncated stream yields the files read before the damage."""
    if not is_tnef(data):
        return []
    codec = "gb18030"
    files: list[TnefFile] = []
    title: bytes | None = None
    content: bytes | None = None
    offset = 6  # signature (4 bytes) and legacy key (2 bytes)

    def finish() -> None:
        nonlocal title, content
        if title is not None or content is not None:
            name = (title or b"").rstrip(b"\x00").decode(codec, errors="replace")
            files.append(TnefFile(name or "attachment.dat", content or b""))
        title = None
        content = None

    while offset + 9 <= len(data):
        level = data[offset]
        tag, length = struct.unpack_from("<II", data, offset + 1)
        start = offset + 9
        end = start + length
        if end + 2 > len(data):
            logger.warning("TNEF stream truncated at offset %d", offset)
            if content is None:
                title = None  # the file's data was cut off: drop the file rather than list it empty
            break
        value = data[start:end]
        attribute = tag & 0xFFFF
        if attribute == _ATT_OEM_CODEPAGE and length >= 4:
            code_page = struct.unpack_from("<I", value)[0]
            codec = normalize_charset(f"cp{code_page}") or codec
        elif level == _LEVEL_ATTACHMENT and attribute == _ATT_ATTACH_REND_DATA:
            finish()
        elif level == _LEVEL_ATTACHMENT and attribute == _ATT_ATTACH_TITLE:
            title = value
        elif level == _LEVEL_ATTACHMENT and attribute == _ATT_ATTACH_DATA:
            content = value
        offset = end + 2  # skip the 16-bit checksum
    finish()
    return files
