"""Text of attached documents: kind by magic bytes; .docx, .pdf, .ofd and .txt (any charset) read as text."""

from __future__ import annotations

import enum
import io
import logging
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass

from lxml import etree

from parsers.archives import ZIP_ERRORS, LimitExceeded, LimitKind, read_member, warn_limit
from parsers.charsets import detect_text
from parsers.model import DocumentKind, DocumentLimits
from parsers.ofd import is_ofd_package, read_ofd_text
from parsers.pdf import WARNING_PDF_BROKEN, read_pdf_text

logger = logging.getLogger(__name__)

_W = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
_MC = "http://schemas.openxmlformats.org/markup-compatibility/2006"
_V = "urn:schemas-microsoft-com:vml"

_OLE2_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
# OLE2 directory entries store stream names in UTF-16LE; a byte search finds them without
# walking the FAT, which is all that is needed to tell a Word file from a spreadsheet.
_WORD_STREAM = "WordDocument".encode("utf-16-le")
_OTHER_OFFICE_STREAMS = ("Workbook".encode("utf-16-le"), "PowerPoint Document".encode("utf-16-le"))
_IMAGE_MAGICS = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"GIF87a", b"GIF89a", b"BM", b"II*\x00", b"MM\x00*")
# ISO base media brands of HEIF/HEIC photos (iPhones), found at bytes 8-12 after "ftyp".
_HEIF_BRANDS = (b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1", b"avif")

# Exceptions raised by a damaged zip package or XML part while a .docx is read, and the
# LimitExceeded of a part that is too large or compressed too well.
DOCX_ERRORS: tuple[type[Exception], ...] = (
    *ZIP_ERRORS,
    etree.XMLSyntaxError,
    LimitExceeded,
)

WARNING_DOC = "附件为旧版 Word/WPS 格式（.doc/.wps），无法读取正文，请用 Word 或 WPS 另存为 .docx 格式后重新报送。"
WARNING_PDF = WARNING_PDF_BROKEN  # kept for callers of the former "PDF not read" warning
WARNING_DOCX_BROKEN = "附件 .docx 文件已损坏或格式不正确，无法读取正文。"
WARNING_UNKNOWN = "无法识别的文件格式，未提取正文。"
WARNING_ZIP_BROKEN = "附件压缩包已损坏，无法打开。"


class BlockKind(enum.StrEnum):
    """Kind of a top-level block of a Word document."""

    PARAGRAPH = "paragraph"
    TABLE = "table"


@dataclass(frozen=True)
class Block:
    """One paragraph or one table (its cells tab-separated, rows on lines) of a document."""

    kind: BlockKind
    text: str


@dataclass(frozen=True)
class DocumentText:
    """Result of reading one document file."""

    kind: DocumentKind
    text: str | None
    warnings: tuple[str, ...] = ()


def detect_kind(data: bytes, content_type: str = "") -> DocumentKind:
    """Decide what a file is from its first bytes; the MIME type only separates text from other data."""
    if content_type.lower() in {"message/rfc822", "message/global"}:
        return DocumentKind.MESSAGE
    if data.startswith(b"PK\x03\x04"):
        return _detect_zip_kind(data)
    if data.startswith(_OLE2_MAGIC):
        return _detect_ole2_kind(data)
    if data.startswith(b"%PDF-"):
        return DocumentKind.PDF
    if any(data.startswith(magic) for magic in _IMAGE_MAGICS) or _is_heif(data):
        return DocumentKind.IMAGE
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return DocumentKind.IMAGE
    if _looks_like_text(data):
        return DocumentKind.TXT
    return DocumentKind.OTHER


def _detect_zip_kind(data: bytes) -> DocumentKind:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as package:
            names = package.namelist()
    except DOCX_ERRORS:
        # A truncated docx still starts with the zip magic; call it docx so the reader warns.
        return DocumentKind.DOCX if b"word/" in data else DocumentKind.ZIP
    if "word/document.xml" in names:
        return DocumentKind.DOCX
    if is_ofd_package(names):
        return DocumentKind.OFD
    return DocumentKind.ZIP


def _detect_ole2_kind(data: bytes) -> DocumentKind:
    """Return DOC for an OLE2 file unless it is plainly an Excel or PowerPoint file."""
    if _WORD_STREAM in data:
        return DocumentKind.DOC
    if any(stream in data for stream in _OTHER_OFFICE_STREAMS):
        return DocumentKind.OTHER
    return DocumentKind.DOC  # WPS and damaged files get the .doc warning, which requests a .docx


def has_word_stream(data: bytes) -> bool:
    """Tell whether an OLE2 file has a WordDocument stream, which antiword needs."""
    return data.startswith(_OLE2_MAGIC) and _WORD_STREAM in data


def _is_heif(data: bytes) -> bool:
    return data[4:8] == b"ftyp" and data[8:12] in _HEIF_BRANDS


def _looks_like_text(data: bytes) -> bool:
    if not data or b"\x00" in data[:4096]:
        return False
    sample = data[:4096]
    controls = sum(1 for byte in sample if byte < 9 or 13 < byte < 32)
    return controls == 0


def read_document(data: bytes, content_type: str = "", limits: DocumentLimits | None = None) -> DocumentText:
    """Read a document's text by its kind; a broken or unsupported file gives a warning, never an error.

    A ZIP yields no text here: its members are read by ``parsers.mime`` as attachments of their own,
    each within max_document_bytes, so the archive itself is bounded by the zip_* limits instead.
    """
    limits = limits or DocumentLimits()
    kind = detect_kind(data, content_type)
    if kind in (DocumentKind.IMAGE, DocumentKind.MESSAGE):
        return DocumentText(kind, None)
    if kind is not DocumentKind.ZIP and len(data) > limits.max_document_bytes:
        logger.warning("document of %d bytes not read (limit %d)", len(data), limits.max_document_bytes)
        return DocumentText(kind, None, (warn_limit(LimitKind.DOCUMENT_BYTES, limits),))
    if kind is DocumentKind.DOCX:
        return _read_docx_text(data, limits)
    if kind is DocumentKind.DOC:
        return DocumentText(kind, None, (WARNING_DOC,))
    if kind is DocumentKind.PDF:
        return DocumentText(*read_pdf_text(data, limits))
    if kind is DocumentKind.OFD:
        return DocumentText(*read_ofd_text(data, limits))
    if kind is DocumentKind.TXT:
        return DocumentText(kind, detect_text(data).replace("\r\n", "\n"))
    if kind is DocumentKind.ZIP:
        readable = _is_readable_zip(data)
        return DocumentText(kind, None, () if readable else (WARNING_ZIP_BROKEN,))
    return DocumentText(kind, None, (WARNING_UNKNOWN,))


def _is_readable_zip(data: bytes) -> bool:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as package:
            package.namelist()
    except DOCX_ERRORS:
        return False
    return True


def _read_docx_text(data: bytes, limits: DocumentLimits) -> DocumentText:
    try:
        blocks = read_docx_blocks(data, limits)
    except LimitExceeded as exc:
        logger.warning("docx part not read: %s", exc.limit)
        return DocumentText(DocumentKind.DOCX, None, (warn_limit(exc.limit, limits, "word/document.xml"),))
    except DOCX_ERRORS as exc:
        logger.warning("docx could not be read: %s", type(exc).__name__)
        return DocumentText(DocumentKind.DOCX, None, (WARNING_DOCX_BROKEN,))
    return DocumentText(DocumentKind.DOCX, "\n".join(block.text for block in blocks))


def read_docx_blocks(data: bytes, limits: DocumentLimits | None = None) -> list[Block]:
    """Return the paragraphs and tables of word/document.xml in document order.

    Text boxes are read from their DrawingML copy only (the VML fallback repeats them), tracked
    insertions are kept and deletions dropped, and content controls are read through. Raises
    DOCX_ERRORS, including LimitExceeded for a document.xml over the limits.
    """
    with zipfile.ZipFile(io.BytesIO(data)) as package:
        # read_member stops a decompression bomb by max_document_bytes and zip_max_ratio.
        xml = read_member(package, package.getinfo("word/document.xml"), limits or DocumentLimits())
    parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)
    root = etree.fromstring(xml, parser)
    body = root.find(f"{{{_W}}}body")
    if body is None:
        raise ValueError("document has no body")
    return list(_iter_blocks(body))


def _iter_blocks(container: etree._Element) -> Iterator[Block]:
    for child in container:
        tag = child.tag
        if tag == f"{{{_W}}}p":
            yield Block(BlockKind.PARAGRAPH, _paragraph_text(child))
            for box in _iter_text_boxes(child):
                yield from _iter_blocks(box)
        elif tag == f"{{{_W}}}tbl":
            yield Block(BlockKind.TABLE, _table_text(child))
        elif tag in (f"{{{_W}}}sdt", f"{{{_W}}}sdtContent", f"{{{_W}}}customXml", f"{{{_W}}}ins"):
            yield from _iter_blocks(child if tag != f"{{{_W}}}sdt" else _sdt_content(child))
        elif tag == f"{{{_MC}}}AlternateContent":
            choice = child.find(f"{{{_MC}}}Choice")
            if choice is not None:
                yield from _iter_blocks(choice)


def _sdt_content(sdt: etree._Element) -> etree._Element:
    content = sdt.find(f"{{{_W}}}sdtContent")
    return content if content is not None else etree.Element("empty")


def _is_skipped(element: etree._Element, stop: etree._Element) -> bool:
    """Tell whether a text node lies in deleted text, a VML fallback or a nested text box."""
    node = element.getparent()
    while node is not None and node is not stop:
        tag = node.tag
        if tag in (f"{{{_W}}}del", f"{{{_W}}}moveFrom", f"{{{_MC}}}Fallback", f"{{{_W}}}txbxContent"):
            return True
        if tag == f"{{{_V}}}textbox":
            return True
        node = node.getparent()
    return False


def _paragraph_text(paragraph: etree._Element) -> str:
    parts: list[str] = []
    for node in paragraph.iter(f"{{{_W}}}t", f"{{{_W}}}tab", f"{{{_W}}}br", f"{{{_W}}}cr"):
        if _is_skipped(node, paragraph):
            continue
        if node.tag == f"{{{_W}}}t":
            parts.append(node.text or "")
        elif node.tag == f"{{{_W}}}tab":
            parts.append("\t")
        else:
            parts.append("\n")
    return "".join(parts)


def _iter_text_boxes(paragraph: etree._Element) -> Iterator[etree._Element]:
    """Yield each text box of a paragraph once: DrawingML copies, or VML boxes with no DrawingML twin."""
    for box in paragraph.iter(f"{{{_W}}}txbxContent"):
        ancestor = box.getparent()
        in_fallback = False
        nested = False
        while ancestor is not None and ancestor is not paragraph:
            if ancestor.tag in (f"{{{_MC}}}Fallback", f"{{{_W}}}del"):
                in_fallback = True
            if ancestor.tag == f"{{{_W}}}txbxContent":
                nested = True
            ancestor = ancestor.getparent()
        if not in_fallback and not nested:
            yield box


def _table_text(table: etree._Element) -> str:
    rows: list[str] = []
    for row in table.iter(f"{{{_W}}}tr"):
        cells: list[str] = []
        for cell in row.findall(f"{{{_W}}}tc"):
            texts = [block.text for block in _iter_blocks(cell)]
            cells.append(" ".join(text for text in texts if text))
        rows.append("\t".join(cells))
    return "\n".join(rows)
