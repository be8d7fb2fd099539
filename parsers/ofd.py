"""Text of OFD files (GB/T 33190-2016, the Chinese fixed-layout format), in page and reading order.

An OFD file is a zip package: ``OFD.xml`` names each document's ``Document.xml`` (DocRoot),
which lists the pages (``Page/@BaseLoc``). Each page's ``Content.xml`` contains ``TextObject``
elements placed by a ``Boundary`` ("x y width height", millimetres) with ``TextCode`` runs
at X/Y offsets. Converters often write one TextObject per character, so the text is rebuilt
by grouping runs on the same baseline into lines, top to bottom, left to right.
"""

from __future__ import annotations

import io
import logging
import posixpath
import zipfile
from dataclasses import dataclass

from lxml import etree

from parsers.archives import ZIP_ERRORS, LimitExceeded, ReadBudget, read_member, warn_limit
from parsers.model import DocumentKind, DocumentLimits

logger = logging.getLogger(__name__)

_OFD_NS = "http://www.ofdspec.org/2016"
_DEFAULT_SIZE_MM = 3.5  # about 10 pt, for TextObjects without a Size attribute

WARNING_OFD_BROKEN = "附件 OFD 文件已损坏或格式不正确，无法读取正文，请人工查看。"
WARNING_OFD_EMPTY = "附件 OFD 文件没有文字（可能是扫描图片），无法提取正文，请人工查看。"


def is_ofd_package(names: list[str]) -> bool:
    """Tell whether a zip's member names are those of an OFD package (an ``OFD.xml`` at the root)."""
    return any(name.lower() == "ofd.xml" for name in names)


@dataclass(frozen=True)
class _Run:
    """One TextCode placed on the page: baseline y, start x, end x (all mm) and its text."""

    y: float
    x: float
    end: float
    size: float
    text: str


def read_ofd_text(data: bytes, limits: DocumentLimits) -> tuple[DocumentKind, str | None, tuple[str, ...]]:
    """Return the text of every page of every document in the package, and any warnings."""
    budget = ReadBudget(limits.zip_max_total_bytes)
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as package:
            pages = _list_pages(package, limits, budget)
            texts = [_read_page_text(package, path, limits, budget) for path in pages]
    except LimitExceeded as exc:
        logger.warning("ofd part not read: %s", exc.limit)
        return DocumentKind.OFD, None, (warn_limit(exc.limit, limits, exc.member),)
    except (*ZIP_ERRORS, etree.XMLSyntaxError) as exc:
        logger.warning("ofd could not be read: %s", type(exc).__name__)
        return DocumentKind.OFD, None, (WARNING_OFD_BROKEN,)
    found = [text for text in texts if text.strip()]
    if not found:
        return DocumentKind.OFD, None, (WARNING_OFD_EMPTY,)
    return DocumentKind.OFD, "\n".join(found), ()


def _parse_part(package: zipfile.ZipFile, path: str, limits: DocumentLimits, budget: ReadBudget) -> etree._Element:
    info = _find_member(package, path)
    xml = read_member(package, info, limits, budget)
    parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)
    return etree.fromstring(xml, parser)


def _find_member(package: zipfile.ZipFile, path: str) -> zipfile.ZipInfo:
    """Return the member at a package path; OFD writers differ in letter case, so that is ignored."""
    wanted = posixpath.normpath(path.replace("\\", "/")).lstrip("/")
    for info in package.infolist():
        if info.filename.lstrip("/").lower() == wanted.lower():
            return info
    raise KeyError(path)


def _resolve(base_dir: str, location: str) -> str:
    location = location.strip().replace("\\", "/")
    if location.startswith("/"):
        return posixpath.normpath(location.lstrip("/"))
    return posixpath.normpath(posixpath.join(base_dir, location))


def _list_pages(package: zipfile.ZipFile, limits: DocumentLimits, budget: ReadBudget) -> list[str]:
    """Return the Content.xml path of every page, documents in OFD.xml order, pages in Document.xml order."""
    root = _parse_part(package, "OFD.xml", limits, budget)
    pages: list[str] = []
    for doc_root in root.iter(f"{{{_OFD_NS}}}DocRoot"):
        document_path = _resolve("", doc_root.text or "")
        document = _parse_part(package, document_path, limits, budget)
        base_dir = posixpath.dirname(document_path)
        for page in document.iter(f"{{{_OFD_NS}}}Page"):
            location = page.get("BaseLoc")
            if location:
                pages.append(_resolve(base_dir, location))
    if not pages:
        raise ValueError("OFD package lists no pages")
    return pages


def _read_page_text(package: zipfile.ZipFile, path: str, limits: DocumentLimits, budget: ReadBudget) -> str:
    page = _parse_part(package, path, limits, budget)
    runs = list(_iter_runs(page))
    return "\n".join(_join_lines(runs))


def _numbers(value: str | None) -> list[float]:
    if not value:
        return []
    try:
        return [float(part) for part in value.split()]
    except ValueError:
        return []


def _expand_deltas(value: str | None) -> list[float]:
    """Expand a DeltaX/DeltaY list, where ``g N d`` stands for N repetitions of d."""
    tokens = (value or "").split()
    deltas: list[float] = []
    index = 0
    try:
        while index < len(tokens):
            if tokens[index] == "g" and index + 2 < len(tokens):
                deltas.extend([float(tokens[index + 2])] * int(tokens[index + 1]))
                index += 3
            else:
                deltas.append(float(tokens[index]))
                index += 1
    except ValueError:
        return []
    return deltas


def _iter_runs(page: etree._Element) -> list[_Run]:
    runs: list[_Run] = []
    for text_object in page.iter(f"{{{_OFD_NS}}}TextObject"):
        boundary = _numbers(text_object.get("Boundary")) or [0.0, 0.0, 0.0, 0.0]
        size = (_numbers(text_object.get("Size")) or [_DEFAULT_SIZE_MM])[0]
        for code in text_object.iter(f"{{{_OFD_NS}}}TextCode"):
            text = code.text or ""
            if not text:
                continue
            x = boundary[0] + (_numbers(code.get("X")) or [0.0])[0]
            y = boundary[1] + (_numbers(code.get("Y")) or [0.0])[0]
            deltas = _expand_deltas(code.get("DeltaX"))
            width = sum(deltas[: len(text) - 1]) + size if deltas else size * len(text)
            runs.append(_Run(y, x, x + width, size, text))
    return runs


def _join_lines(runs: list[_Run]) -> list[str]:
    """Group runs whose baselines are within half a character into lines, then order each line by x."""
    lines: list[list[_Run]] = []
    for run in sorted(runs, key=lambda item: item.y):
        if lines and abs(run.y - lines[-1][0].y) <= max(run.size, lines[-1][0].size) / 2:
            lines[-1].append(run)
        else:
            lines.append([run])
    result: list[str] = []
    for line in lines:
        parts: list[str] = []
        previous: _Run | None = None
        for run in sorted(line, key=lambda item: item.x):
            if previous is not None and run.x - previous.end > previous.size:
                parts.append(" ")  # a visible gap, e.g. between 审核 and 签发 on one line
            parts.append(run.text)
            previous = run
        result.append("".join(parts))
    return result
