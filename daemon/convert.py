"""Text of legacy Word (.doc) and WPS (.wps) attachments through an external converter.

The parsers only recognise these OLE2 files and warn. When ``[documents] doc_converter`` names
a program, each such attachment is converted in a private temporary directory with a timeout:
LibreOffice (``soffice --headless --convert-to docx``, read back through ``parsers.documents``)
or antiword (``antiword -m UTF-8.txt``, Word 97-2003 files with a WordDocument stream only).
A missing program, a timeout or a failed conversion keeps the original warning and logs why.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

from daemon.config import DocConverter, DocumentSettings
from parsers.documents import has_word_stream, read_document
from parsers.model import DocumentKind, DocumentLimits, ParsedMessage

logger = logging.getLogger(__name__)

NOTE_CONVERTED = "附件为旧版 Word/WPS 格式（.doc/.wps），已自动转换后读取正文，请今后改用 .docx 格式报送。"

_PROGRAMS = {DocConverter.LIBREOFFICE: "soffice", DocConverter.ANTIWORD: "antiword"}


class ConversionError(Exception):
    """A converter could not produce text; the message is for the log, not for users."""


def convert_legacy_documents(parsed: ParsedMessage, settings: DocumentSettings) -> ParsedMessage:
    """Return the message with the text of its .doc/.wps attachments filled by the configured converter.

    A converted attachment keeps kind DOC; its warning becomes NOTE_CONVERTED, in the
    attachment and in the message's warnings. Unconverted attachments are left as they were.
    """
    if settings.doc_converter is DocConverter.NONE:
        return parsed
    pending = [
        index
        for index, attachment in enumerate(parsed.attachments)
        if attachment.kind is DocumentKind.DOC and attachment.text is None
    ]
    if not pending:
        return parsed
    program = find_converter(settings)
    if program is None:
        logger.warning(
            "doc converter %s not found (converter_path=%r); %d attachment(s) left unconverted",
            settings.doc_converter,
            settings.converter_path,
            len(pending),
        )
        return parsed

    attachments = list(parsed.attachments)
    warnings = list(parsed.warnings)
    for index in pending:
        attachment = attachments[index]
        try:
            text = convert_document(attachment.data, program, settings)
        except ConversionError as exc:
            logger.warning(
                "attachment %d (sha256 %s) not converted by %s: %s",
                index,
                attachment.sha256[:12],
                settings.doc_converter,
                exc,
            )
            continue
        attachments[index] = dataclasses.replace(attachment, text=text, warning=NOTE_CONVERTED)
        _replace_warning(warnings, attachment.warning, NOTE_CONVERTED)
        logger.info("attachment %d converted by %s: %d characters", index, settings.doc_converter, len(text))
    return dataclasses.replace(parsed, attachments=tuple(attachments), warnings=tuple(warnings))


def _replace_warning(warnings: list[str], old: str | None, new: str) -> None:
    """Replace the first occurrence of an attachment's old warning, or append the new one."""
    if old is not None and old in warnings:
        warnings[warnings.index(old)] = new
    elif new not in warnings:
        warnings.append(new)


def find_converter(settings: DocumentSettings) -> str | None:
    """Return the converter program's path: converter_path if executable, else the program on PATH."""
    if settings.doc_converter is DocConverter.NONE:
        return None
    if settings.converter_path:
        path = Path(settings.converter_path)
        return str(path) if path.is_file() and os.access(path, os.X_OK) else None
    return shutil.which(_PROGRAMS[settings.doc_converter])


def convert_document(data: bytes, program: str, settings: DocumentSettings) -> str:
    """Convert one .doc/.wps file and return its text; raises ConversionError on any failure."""
    if settings.doc_converter is DocConverter.ANTIWORD:
        if not has_word_stream(data):
            raise ConversionError("no WordDocument stream (WPS or damaged file); antiword reads only .doc")
        return _convert_with_antiword(data, program, settings.converter_timeout)
    if settings.doc_converter is DocConverter.LIBREOFFICE:
        return _convert_with_libreoffice(data, program, settings.converter_timeout, settings.limits())
    raise ConversionError(f"no converter for {settings.doc_converter}")


def _convert_with_antiword(data: bytes, program: str, timeout: int) -> str:
    with tempfile.TemporaryDirectory(prefix="zwxx-antiword-") as work:
        source = Path(work) / "input.doc"
        source.write_bytes(data)
        # -w 0 puts each paragraph on one line instead of wrapping at 76 columns.
        output = _run([program, "-m", "UTF-8.txt", "-w", "0", str(source)], Path(work), timeout)
    text = output.decode("utf-8", errors="replace")
    paragraphs = [line.rstrip() for line in text.replace("\r\n", "\n").split("\n")]
    result = "\n".join(line for line in paragraphs if line.strip())
    if not result:
        raise ConversionError("antiword produced no text")
    return result


def _convert_with_libreoffice(data: bytes, program: str, timeout: int, limits: DocumentLimits) -> str:
    with tempfile.TemporaryDirectory(prefix="zwxx-soffice-") as work:
        work_dir = Path(work)
        source = work_dir / "input.doc"
        source.write_bytes(data)
        profile = (work_dir / "profile").as_uri()  # a private profile: no lock shared with a desktop session
        command = [
            program,
            f"-env:UserInstallation={profile}",
            "--headless",
            "--norestore",
            "--convert-to",
            "docx",
            "--outdir",
            str(work_dir / "out"),
            str(source),
        ]
        _run(command, work_dir, timeout)
        converted = work_dir / "out" / "input.docx"
        if not converted.is_file():
            raise ConversionError("soffice exited without writing input.docx")
        document = read_document(converted.read_bytes(), limits=limits)
    if document.kind is not DocumentKind.DOCX or not document.text:
        raise ConversionError(f"converted file unreadable: {', '.join(document.warnings) or 'no text'}")
    return document.text


def _run(command: list[str], work_dir: Path, timeout: int) -> bytes:
    """Run a converter in its own process group; on timeout the whole group is killed."""
    try:
        process = subprocess.Popen(
            command,
            cwd=work_dir,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env={**os.environ, "HOME": str(work_dir)},
            start_new_session=True,
        )
    except OSError as exc:
        raise ConversionError(f"could not start {command[0]}: {exc}") from exc
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        raise ConversionError(f"timed out after {timeout} s") from exc
    if process.returncode != 0:
        detail = stderr.decode("utf-8", errors="replace").strip()[:200]
        raise ConversionError(f"exit code {process.returncode}: {detail}")
    return stdout
