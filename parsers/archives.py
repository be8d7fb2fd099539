"""Bounded reading of zip archives: member names made safe, and limits on count, size and ratio.

Sizes in a zip's central directory are written by the sender and can lie, so every read is
checked twice: against the declared size before it starts, and by counting the bytes that
decompression actually returns. A read stops at the limit, holding at most one 64 KiB chunk beyond it.
"""

from __future__ import annotations

import enum
import io
import logging
import re
import struct
import unicodedata
import zipfile
import zlib
from dataclasses import dataclass, field

from parsers.model import DocumentLimits

logger = logging.getLogger(__name__)

_CHUNK = 64 * 1024
# A member smaller than this is read whatever its compression ratio: text of a few hundred
# kilobytes can legitimately compress more than 100 times, and cannot do harm.
RATIO_FLOOR_BYTES = 1024 * 1024
_UTF8_FLAG = 0x800
_ENCRYPTED_FLAG = 0x1
_UNICODE_PATH_TAG = 0x7075
# An archive declaring more than this many times zip_max_members entries is not listed at all.
_LISTING_FACTOR = 20
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
# zipfile bounds deflate output per read call but not bzip2 or LZMA output, so one small read of a
# crafted bzip2 member could expand without limit. Windows and 7-Zip write deflate by default.
_SAFE_METHODS = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED)
_SKIPPED_PREFIXES = ("__MACOSX/",)  # AppleDouble copies that macOS adds beside every file

# Exceptions raised by a damaged zip while it is listed or a member is read.
ZIP_ERRORS: tuple[type[Exception], ...] = (
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    KeyError,
    ValueError,
    OSError,
    EOFError,
    NotImplementedError,  # unsupported zip version or compression method
    RuntimeError,  # encrypted member
    zlib.error,
)


class LimitKind(enum.StrEnum):
    """Limit that stopped a read, named as its DocumentLimits field."""

    DOCUMENT_BYTES = "max_document_bytes"
    MEMBERS = "zip_max_members"
    TOTAL_BYTES = "zip_max_total_bytes"
    RATIO = "zip_max_ratio"
    DEPTH = "zip_max_depth"


class LimitExceeded(Exception):
    """A member would exceed a limit; raised before more than the limit is held in memory."""

    def __init__(self, limit: LimitKind, member: str) -> None:
        super().__init__(f"{limit} exceeded by {member!r}")
        self.limit = limit
        self.member = member


def warn_limit(limit: LimitKind, limits: DocumentLimits, member: str = "") -> str:
    """Return the user-facing Chinese warning for a limit, naming the limit and its value."""
    where = f"“{member}”" if member else ""
    if limit is LimitKind.DOCUMENT_BYTES:
        return f"附件{where}超过单个文件大小上限（{limits.max_document_bytes} 字节），未读取内容。"
    if limit is LimitKind.MEMBERS:
        return f"压缩包内文件超过 {limits.zip_max_members} 个，只读取了前 {limits.zip_max_members} 个。"
    if limit is LimitKind.TOTAL_BYTES:
        return f"压缩包解压后总大小超过上限（{limits.zip_max_total_bytes} 字节），从{where or '某个文件'}起未再读取。"
    if limit is LimitKind.RATIO:
        return (
            f"压缩包内文件{where}解压后比压缩前大 {limits.zip_max_ratio} 倍以上，为安全起见未读取；"
            "请把文档直接作为附件重新发送。"
        )
    return f"压缩包嵌套超过 {limits.zip_max_depth} 层，内层压缩包{where}未打开。"


WARNING_ENCRYPTED = "压缩包内文件“{name}”已加密，无法读取，请报送单位发送未加密的文件。"
WARNING_METHOD = "压缩包内文件“{name}”使用了不支持的压缩方式，未读取，请用 Windows 自带的压缩功能重新打包。"
WARNING_TOO_MANY = "压缩包声明含有 {count} 个文件，远超上限（{limit} 个），未打开。"
WARNING_MEMBER_BROKEN = "压缩包内文件“{name}”已损坏，无法读取。"


def decode_member_name(info: zipfile.ZipInfo) -> str:
    """Return a member's name as the sender wrote it: UTF-8 when flagged or given in a Unicode Path
    extra field, else GB18030.

    ``zipfile`` decodes names without the UTF-8 flag as CP437, so the original bytes are
    recovered from that and decoded as GB18030, the code page of Chinese Windows.
    """
    if info.flag_bits & _UTF8_FLAG:
        return info.filename
    try:
        raw = info.filename.encode("cp437")
    except UnicodeEncodeError:
        return info.filename
    unicode_name = _read_unicode_path(info.extra, raw)
    if unicode_name is not None:
        return unicode_name
    try:
        return raw.decode("utf-8")  # some tools write UTF-8 names without setting the flag
    except UnicodeDecodeError:
        return raw.decode("gb18030", errors="replace")


def _read_unicode_path(extra: bytes, raw_name: bytes) -> str | None:
    """Return the UTF-8 name of an Info-ZIP Unicode Path extra field (0x7075), if it matches the name.

    The field stores a version byte, the CRC-32 of the plain name and the UTF-8 name; a CRC that
    does not match means a later tool renamed the member, so the field is stale and ignored.
    """
    offset = 0
    while offset + 4 <= len(extra):
        tag, size = struct.unpack_from("<HH", extra, offset)
        body = extra[offset + 4 : offset + 4 + size]
        offset += 4 + size
        if tag != _UNICODE_PATH_TAG or len(body) < 5 or body[0] != 1:
            continue
        (name_crc,) = struct.unpack_from("<I", body, 1)
        if name_crc != zlib.crc32(raw_name):
            return None
        try:
            return body[5:].decode("utf-8")
        except UnicodeDecodeError:
            return None
    return None


def make_safe_filename(name: str) -> str:
    """Return the base name of a member path, without directories or control characters.

    ``../x`` and ``/etc/x`` become ``x``; the result is only ever shown, never used as a path.
    """
    base = re.split(r"[\\/]", name)[-1]
    base = _CONTROL.sub("", unicodedata.normalize("NFC", base)).strip()
    if base in ("", ".", ".."):
        return "attachment"
    return base


@dataclass
class ReadBudget:
    """Bytes still allowed across one archive and all archives nested in it."""

    remaining: int


def read_member(
    package: zipfile.ZipFile,
    info: zipfile.ZipInfo,
    limits: DocumentLimits,
    budget: ReadBudget | None = None,
) -> bytes:
    """Read one member within ``max_document_bytes``, the ratio limit and the shared budget.

    Raises LimitExceeded before the data grows past a limit, whatever the header declared, and
    the ZIP_ERRORS of a damaged member.
    """
    name = decode_member_name(info)
    if info.compress_type not in _SAFE_METHODS:
        raise NotImplementedError(f"compression method {info.compress_type}")
    allowed = limits.max_document_bytes
    total_limited = budget is not None and budget.remaining < allowed
    if budget is not None:
        allowed = min(allowed, budget.remaining)
    if info.file_size > allowed:
        raise LimitExceeded(LimitKind.TOTAL_BYTES if total_limited else LimitKind.DOCUMENT_BYTES, name)
    compressed = max(info.compress_size, 1)
    if info.file_size > RATIO_FLOOR_BYTES and info.file_size > compressed * limits.zip_max_ratio:
        raise LimitExceeded(LimitKind.RATIO, name)

    chunks: list[bytes] = []
    size = 0
    with package.open(info) as stream:
        while True:
            chunk = stream.read(_CHUNK)
            if not chunk:
                break
            size += len(chunk)
            if size > allowed:
                raise LimitExceeded(LimitKind.TOTAL_BYTES if total_limited else LimitKind.DOCUMENT_BYTES, name)
            if size > RATIO_FLOOR_BYTES and size > compressed * limits.zip_max_ratio:
                raise LimitExceeded(LimitKind.RATIO, name)
            chunks.append(chunk)
    if budget is not None:
        budget.remaining -= size
    return b"".join(chunks)


def count_declared_entries(data: bytes) -> int | None:
    """Return the entry count that a zip's end-of-central-directory record declares, or None if absent.

    For ZIP64 archives (count 0xFFFF) the count comes from the ZIP64 end record that the locator
    20 bytes before the classic record points to.
    """
    position = data.rfind(b"PK\x05\x06", max(0, len(data) - 22 - 0xFFFF))
    if position < 0 or position + 22 > len(data):
        return None
    (count,) = struct.unpack_from("<H", data, position + 10)
    if count != 0xFFFF:
        return count
    locator = position - 20
    if locator < 0 or data[locator : locator + 4] != b"PK\x06\x07":
        return count
    (record,) = struct.unpack_from("<Q", data, locator + 8)
    if record + 40 > len(data) or data[record : record + 4] != b"PK\x06\x06":
        return count
    (count64,) = struct.unpack_from("<Q", data, record + 32)
    return int(count64)


@dataclass(frozen=True)
class ZipMember:
    """One file read from an archive, with its display name."""

    filename: str
    data: bytes


@dataclass(frozen=True)
class ZipContents:
    """Members read from one archive in central-directory order, and why any were left out."""

    members: tuple[ZipMember, ...]
    warnings: tuple[str, ...] = field(default_factory=tuple)


def read_zip_members(data: bytes, limits: DocumentLimits, budget: ReadBudget) -> ZipContents:
    """Read an archive's files in order within the limits; limits and damage give warnings.

    Raises zipfile.BadZipFile when the archive cannot be opened at all.
    """
    declared = count_declared_entries(data)
    if declared is not None and declared > limits.zip_max_members * _LISTING_FACTOR:
        # zipfile builds a ZipInfo for every central-directory entry, so such a listing is not parsed.
        logger.warning("zip declares %d entries, not listed (limit %d)", declared, limits.zip_max_members)
        return ZipContents((), (WARNING_TOO_MANY.format(count=declared, limit=limits.zip_max_members),))
    members: list[ZipMember] = []
    warnings: list[str] = []
    with zipfile.ZipFile(io.BytesIO(data)) as package:
        files = [
            info for info in package.infolist() if not info.is_dir() and not info.filename.startswith(_SKIPPED_PREFIXES)
        ]
        if len(files) > limits.zip_max_members:
            logger.warning("zip has %d members, reading the first %d", len(files), limits.zip_max_members)
            warnings.append(warn_limit(LimitKind.MEMBERS, limits))
            files = files[: limits.zip_max_members]
        for info in files:
            name = decode_member_name(info)
            if info.flag_bits & _ENCRYPTED_FLAG:
                warnings.append(WARNING_ENCRYPTED.format(name=make_safe_filename(name)))
                continue
            if info.compress_type not in _SAFE_METHODS:
                warnings.append(WARNING_METHOD.format(name=make_safe_filename(name)))
                continue
            try:
                content = read_member(package, info, limits, budget)
            except LimitExceeded as exc:
                logger.warning("zip member not read: %s", exc.limit)
                warnings.append(warn_limit(exc.limit, limits, make_safe_filename(name)))
                if exc.limit is LimitKind.TOTAL_BYTES:
                    break
                continue
            except ZIP_ERRORS as exc:
                logger.warning("zip member could not be read: %s", type(exc).__name__)
                warnings.append(WARNING_MEMBER_BROKEN.format(name=make_safe_filename(name)))
                continue
            members.append(ZipMember(make_safe_filename(name), content))
    return ZipContents(tuple(members), tuple(dict.fromkeys(warnings)))
