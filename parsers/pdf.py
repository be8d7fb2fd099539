"""Text of .pdf attachments with pypdf: every page in order, and warnings for what cannot be read."""

from __future__ import annotations

import io
import logging
import warnings

from pypdf import PdfReader
from pypdf.errors import FileNotDecryptedError, PdfReadError

from parsers.model import DocumentKind, DocumentLimits

logger = logging.getLogger(__name__)

WARNING_PDF_BROKEN = "附件 PDF 文件已损坏或格式不正确，无法读取正文，请人工查看。"
WARNING_PDF_ENCRYPTED = "附件 PDF 文件设有打开密码，无法读取正文，请报送单位发送未加密的文件或改用 .docx 格式。"
WARNING_PDF_IMAGE_ONLY = (
    "附件 PDF 为扫描图片（没有文字层），无法提取正文，请人工查看，或请报送单位改用 .docx 格式重新报送。"
)
WARNING_PDF_PAGES = "附件 PDF 有 {failed} 页无法读取，正文可能不完整，请人工核对。"


def read_pdf_text(data: bytes, limits: DocumentLimits) -> tuple[DocumentKind, str | None, tuple[str, ...]]:
    """Return the text of every page in page order, joined by newlines, and any warnings.

    An owner-password-only PDF (empty user password) is read; a PDF that needs a password to
    open, a damaged file and a PDF without a text layer give a warning and no text.
    """
    # pypdf 7.1 stops decompressing a stream at 75,000,000 bytes (LimitReachedError, caught below
    # as damage). The caller has checked the input size against max_document_bytes.
    del limits
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pypdf reports recoverable damage as PdfReadWarning
        try:
            return _read_pages(data)
        except (FileNotDecryptedError, NotImplementedError) as exc:
            logger.warning("pdf is encrypted: %s", type(exc).__name__)
            return DocumentKind.PDF, None, (WARNING_PDF_ENCRYPTED,)
        except Exception as exc:  # noqa: BLE001 - pypdf raises many types (KeyError, struct.error, ...) on damage
            logger.warning("pdf could not be read: %s", type(exc).__name__)
            return DocumentKind.PDF, None, (WARNING_PDF_BROKEN,)


def _read_pages(data: bytes) -> tuple[DocumentKind, str | None, tuple[str, ...]]:
    reader = PdfReader(io.BytesIO(data), strict=False)
    if reader.is_encrypted:
        try:
            opened = reader.decrypt("")
        except Exception as exc:  # noqa: BLE001 - AES without the cryptography package raises DependencyError
            logger.warning("pdf decryption failed: %s", type(exc).__name__)
            return DocumentKind.PDF, None, (WARNING_PDF_ENCRYPTED,)
        if not opened:
            return DocumentKind.PDF, None, (WARNING_PDF_ENCRYPTED,)
    pages = reader.pages
    if len(pages) == 0:
        raise PdfReadError("no pages")

    texts: list[str] = []
    failed = 0
    for number, page in enumerate(pages, start=1):
        try:
            text = page.extract_text() or ""
        except Exception as exc:  # noqa: BLE001 - one damaged page must not lose the others
            logger.warning("pdf page %d could not be read: %s", number, type(exc).__name__)
            failed += 1
            continue
        texts.append(text.replace("\r\n", "\n").strip("\n"))

    found = [text for text in texts if text.strip()]
    if not found:
        if failed:
            return DocumentKind.PDF, None, (WARNING_PDF_BROKEN,)
        return DocumentKind.PDF, None, (WARNING_PDF_IMAGE_ONLY,)
    result_warnings = (WARNING_PDF_PAGES.format(failed=failed),) if failed else ()
    return DocumentKind.PDF, "\n".join(found), result_warnings
