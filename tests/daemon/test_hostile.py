"""Hostile input end to end: attachment names, decompression bombs, header and HTML injection.

Every mail here goes through ``ingest_message`` (or the real IMAP server and poll) into a real
database and archive, and the tests read what the daemon stored, queued or exported.
"""

from __future__ import annotations

import base64
import hashlib
import io
import resource
import tarfile
import urllib.parse
import zipfile
from collections.abc import Callable, Iterator
from email import message_from_bytes, policy
from pathlib import Path

import pytest
from sqlalchemy import select

from daemon.app import App, build_app
from daemon.approval import send_for_approval
from daemon.cli import main
from daemon.clock import SystemClock
from daemon.config import load_settings
from daemon.db import upgrade_database
from daemon.digest import send_digest
from daemon.embedded import SmtpSink
from daemon.export import export_year
from daemon.models import Attachment, Item, Message, MessageState, OutboxMail
from parsers.archives import LimitKind, warn_limit
from parsers.model import DocumentLimits
from tests.daemon.conftest import WriteConfig
from tests.daemon.test_pipeline import poll_once
from tests.daemon.test_register import CD, DOCX_TYPE, START, Mailbox, item_docx, plain_text
from tests.servers.handle import ImapServerHandle

BOUNDARY = "hostile-boundary"
CONTROLS = {chr(code) for code in range(0x20)} | {"\x7f"}
# Attachment names with folders and control characters. The RFC 2231 and RFC 2047 forms carry
# each one intact. In the plain quoted form a CR/LF ends the header line, as from a broken client.
HOSTILE_NAMES = [
    "../../etc/passwd",
    "/etc/shadow",
    "..\\..\\win.ini",
    "..",
    "报告\r\nBcc: x@evil.example.docx",
    "tab\tbell\x07esc\x1b[31m.docx",
]
GIB = 1024 * 1024 * 1024
MIB = 1024 * 1024


def encode_rfc2231(name: str) -> str:
    return "filename*=utf-8''" + urllib.parse.quote(name, safe="")


def encode_rfc2047(name: str) -> str:
    return 'filename="=?utf-8?b?' + base64.b64encode(name.encode()).decode() + '?="'


def encode_quoted(name: str) -> str:
    return 'filename="' + name.replace("\\", "\\\\") + '"'


def mail_with_named_parts(
    sender: str,
    subject: str,
    parts: list[tuple[str, bytes, str]],
    text: str = "请查收。",
    *,
    message_id: str | None = None,
) -> bytes:
    """Build a multipart mail by hand so that a Content-Disposition can carry any parameter text.

    Each part is (disposition parameter, data, content type). The ``email`` package would reject
    CR and LF in a header it writes, and these tests need to send exactly that.
    """
    lines = [
        f"From: {sender}",
        "To: zwxx@tourism.example.gov.cn",
        "Subject: =?utf-8?b?" + base64.b64encode(subject.encode()).decode() + "?=",
        "Date: Mon, 02 Nov 2026 09:00:00 +0800",
        "Message-ID: "
        + (message_id or f"<hostile.{hashlib.sha256(repr(parts).encode()).hexdigest()[:16]}@example.gov.cn>"),
        "MIME-Version: 1.0",
        f'Content-Type: multipart/mixed; boundary="{BOUNDARY}"',
        "",
        f"--{BOUNDARY}",
        "Content-Type: text/plain; charset=utf-8",
        "Content-Transfer-Encoding: base64",
        "",
        base64.encodebytes(text.encode()).decode().rstrip("\n"),
    ]
    for parameter, data, content_type in parts:
        lines += [
            f"--{BOUNDARY}",
            f"Content-Type: {content_type}",
            f"Content-Disposition: attachment; {parameter}",
            "Content-Transfer-Encoding: base64",
            "",
            base64.encodebytes(data).decode().rstrip("\n"),
        ]
    lines.append(f"--{BOUNDARY}--")
    return ("\r\n".join(lines) + "\r\n").encode()


def hostile_parts(encode: Callable[[str], str]) -> list[tuple[str, bytes, str]]:
    return [
        (encode(name), f"内容 {index}".encode(), "application/octet-stream") for index, name in enumerate(HOSTILE_NAMES)
    ]


def list_tree(root: Path) -> set[str]:
    return {str(path.relative_to(root)) for path in root.rglob("*")}


def list_beside(tmp_path: Path) -> set[str]:
    """List everything under the parent of ``tmp_path`` except ``tmp_path`` itself."""
    return {path for path in list_tree(tmp_path.parent) if path.split("/", 1)[0] != tmp_path.name}


def assert_archive_is_content_addressed(root: Path) -> int:
    """Check that every file under ``root`` sits at ab/cd/<sha256 of its bytes>; return the file count."""
    files = [path for path in root.rglob("*") if path.is_file()]
    for path in files:
        resolved = path.resolve()
        assert resolved.is_relative_to(root.resolve()), path
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        assert path.relative_to(root).parts == (digest[:2], digest[2:4], digest), path
    return len(files)


def stored_attachments(app: App, message: Message) -> list[Attachment]:
    with app.session_factory() as session:
        rows = session.scalars(
            select(Attachment).where(Attachment.message_db_id == message.id).order_by(Attachment.position)
        )
        return list(rows)


def outbox_mails(app: App, purpose: str) -> list[bytes]:
    with app.session_factory() as session:
        return [row.raw for row in session.scalars(select(OutboxMail).where(OutboxMail.purpose == purpose))]


def attachment_names(raw: bytes) -> list[str]:
    mail = message_from_bytes(raw, policy=policy.default)
    return [part.get_filename() or "" for part in mail.iter_attachments()]


def header_block(raw: bytes) -> bytes:
    return raw.split(b"\r\n\r\n", 1)[0] if b"\r\n\r\n" in raw else raw.split(b"\n\n", 1)[0]


@pytest.fixture
def mailbox(app: App) -> Mailbox:
    return Mailbox(app)


def peak_rss_bytes() -> int:
    # ru_maxrss is in KiB on Linux.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


# Attachment names


@pytest.mark.parametrize(
    "encode", [encode_quoted, encode_rfc2231, encode_rfc2047], ids=["quoted", "rfc2231", "rfc2047"]
)
def test_hostile_names_never_become_paths(
    app: App, mailbox: Mailbox, tmp_path: Path, encode: Callable[[str], str]
) -> None:
    archive_root = app.settings.archive.dir
    assert archive_root.is_relative_to(tmp_path)
    outside_before = list_beside(tmp_path)
    inside_before = {path for path in list_tree(tmp_path) if not path.startswith(archive_root.name)}
    # The tests may run as root, so an absolute name used as a path could really overwrite these.
    system_files = [path for path in (Path("/etc/passwd"), Path("/etc/shadow")) if path.exists()]
    system_before = [path.stat().st_mtime_ns for path in system_files]

    message = mailbox.deliver(mail_with_named_parts(CD, "【工作动态】附件名称测试", hostile_parts(encode)), START)

    rows = stored_attachments(app, message)
    assert len(rows) == len(HOSTILE_NAMES)
    # Archive files are named by sha256: the raw mail plus one file per distinct attachment.
    assert assert_archive_is_content_addressed(archive_root) == 1 + len(HOSTILE_NAMES)
    assert {row.sha256 for row in rows} == {hashlib.sha256(f"内容 {i}".encode()).hexdigest() for i in range(len(rows))}
    outside_after = list_beside(tmp_path)
    assert outside_after == outside_before
    inside_after = {path for path in list_tree(tmp_path) if not path.startswith(archive_root.name)}
    # Only the database (and its journal) may appear beside the archive.
    assert {path for path in inside_after - inside_before if not path.startswith("zwxx.sqlite3")} == set()
    for name in ("passwd", "shadow", "win.ini"):
        assert not any(path.name == name for path in tmp_path.parent.rglob(name))
    assert [path.stat().st_mtime_ns for path in system_files] == system_before


@pytest.mark.parametrize("encode", [encode_rfc2231, encode_rfc2047], ids=["rfc2231", "rfc2047"])
def test_stored_name_is_display_text(app: App, mailbox: Mailbox, encode: Callable[[str], str]) -> None:
    # The parser keeps a top-level attachment's name as the sender wrote it (only NUL and
    # surrounding blanks removed) because it is shown, never used as a path.
    message = mailbox.deliver(mail_with_named_parts(CD, "【工作动态】附件名称测试", hostile_parts(encode)), START)

    names = [row.filename for row in stored_attachments(app, message)]
    assert names == [name.strip() for name in HOSTILE_NAMES]


def test_zip_member_names_stored_without_folders(app: App, mailbox: Mailbox) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as package:
        for index, name in enumerate(["../../etc/passwd", "/etc/shadow", "..\\..\\win.ini", "a\r\nb\x1b.txt"]):
            package.writestr(name, f"成员 {index}".encode())
    raw = mail_with_named_parts(
        CD, "【工作动态】压缩包", [(encode_quoted("材料.zip"), buffer.getvalue(), "application/zip")]
    )

    message = mailbox.deliver(raw, START)

    names = [row.filename for row in stored_attachments(app, message)]
    assert names == ["材料.zip", "passwd", "shadow", "win.ini", "ab.txt"]
    for name in names:
        assert not set(name) & (CONTROLS | {"/", "\\"})
    assert assert_archive_is_content_addressed(app.settings.archive.dir) == 6


def test_hostile_names_through_imap_poll(app: App, imap: ImapServerHandle, smtp_sink: SmtpSink) -> None:
    imap.append(mail_with_named_parts(CD, "【工作动态】附件名称测试", hostile_parts(encode_rfc2231)))

    stored, _sent = poll_once(app)

    assert stored == 1
    with app.session_factory() as session:
        (message,) = session.scalars(select(Message))
        names = list(session.scalars(select(Attachment.filename).order_by(Attachment.position)))
    assert message.state != MessageState.QUARANTINED
    assert names == [name.strip() for name in HOSTILE_NAMES]
    assert assert_archive_is_content_addressed(app.settings.archive.dir) == 1 + len(HOSTILE_NAMES)


# Names in what the daemon sends and exports


@pytest.fixture
def hostile_item(app: App, mailbox: Mailbox) -> Item:
    """An item whose .docx is attached under a name with folders, CR/LF and an escape sequence."""
    document = item_docx("成都启动冬季消费季", "10月27日举行启动仪式。")
    name = "..\\..\\报告\r\nBcc: x@evil.example\x1b[2J.docx"
    parts = [(encode_rfc2231(name), document, "/".join(DOCX_TYPE))]
    message = mailbox.deliver(mail_with_named_parts(CD, "【工作动态】成都启动冬季消费季", parts), START)
    with app.session_factory() as session:
        (item,) = session.scalars(select(Item).where(Item.message_db_id == message.id))
        assert item.attachment_id is not None
        session.expunge(item)
    return item


def assert_safe_attachment_name(name: str) -> None:
    assert name
    assert not set(name) & (CONTROLS | {"/", "\\"})
    assert not name.startswith(".")


def test_digest_attaches_hostile_document_safely(app: App, hostile_item: Item) -> None:
    with app.session_factory.begin() as session:
        send_digest(session, app.context, slot="2026-11-02 下午")

    (raw,) = outbox_mails(app, "digest")
    names = attachment_names(raw)
    assert len(names) == 1
    assert_safe_attachment_name(names[0])
    assert names[0].endswith(".docx")
    assert b"evil.example" not in header_block(raw).lower().replace(b"\r\n", b"")


def test_approval_request_attaches_hostile_document_safely(app: App, hostile_item: Item) -> None:
    with app.session_factory.begin() as session:
        item = session.get(Item, hostile_item.id)
        assert item is not None
        send_for_approval(session, app.context, [item], actor="xxb@tourism.example.gov.cn", via_message_id=None)

    (raw,) = outbox_mails(app, "approval_request")
    names = attachment_names(raw)
    assert len(names) == 1
    assert_safe_attachment_name(names[0])
    parsed = message_from_bytes(raw, policy=policy.default)
    assert parsed["Bcc"] is None


def test_digest_body_shows_name_on_one_line(app: App, hostile_item: Item) -> None:
    with app.session_factory.begin() as session:
        send_digest(session, app.context, slot="2026-11-02 下午")

    (raw,) = outbox_mails(app, "digest")
    text = plain_text(raw)
    (line,) = [line for line in text.splitlines() if "附件：" in line]
    assert "x@evil.example" in line
    assert not any(line.startswith("Bcc:") for line in text.splitlines())
    assert "\x1b" not in text


def test_show_prints_no_terminal_escapes(app: App, hostile_item: Item, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["--config", str(app.settings.path), "show", hostile_item.serial])

    out = capsys.readouterr().out
    assert code == 0
    (line,) = [line for line in out.splitlines() if line.startswith("附件：")]
    assert "x@evil.example" in line
    assert "\x1b" not in out


def test_export_names_members_by_id(app: App, hostile_item: Item, tmp_path: Path) -> None:
    out_dir = tmp_path / "export"

    summary = export_year(app, START.year, out_dir)

    assert summary.items == 1
    assert sorted(path.name for path in out_dir.iterdir()) == [f"zwxx-{START.year}.tar.gz"]
    with tarfile.open(summary.path) as tar:
        members = tar.getmembers()
    for member in members:
        assert member.isfile(), member.name
        parts = Path(member.name).parts
        assert parts[0] == f"zwxx-{START.year}", member.name
        assert ".." not in parts, member.name
        assert not set(member.name) & CONTROLS, member.name
        assert "报告" not in member.name
    assert any(member.name.endswith(".eml") for member in members)


# Decompression bombs


def write_bomb_member(package: zipfile.ZipFile, name: str, size: int, fill: bytes) -> None:
    """Write ``size`` bytes of ``fill`` as one deflated member without holding them in memory."""
    chunk = fill * (MIB // len(fill))
    info = zipfile.ZipInfo(name)
    info.compress_type = zipfile.ZIP_DEFLATED
    with package.open(info, "w", force_zip64=True) as stream:
        written = 0
        while written < size:
            stream.write(chunk[: size - written])
            written += len(chunk)


def build_docx_bomb(expanded: int) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as package:
        package.writestr("[Content_Types].xml", b"<Types/>")
        head = b'<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body><w:p><w:r><w:t>'
        info = zipfile.ZipInfo("word/document.xml")
        info.compress_type = zipfile.ZIP_DEFLATED
        with package.open(info, "w", force_zip64=True) as stream:
            stream.write(head)
            chunk = b"A" * MIB
            for _ in range(expanded // MIB):
                stream.write(chunk)
            stream.write(b"</w:t></w:r></w:p></w:body></w:document>")
    return buffer.getvalue()


def build_nested_zip_bomb(copies: int, inner_size: int) -> bytes:
    """Return an outer zip holding ``copies`` stored copies of an inner zip of one ``inner_size`` member."""
    inner_buffer = io.BytesIO()
    with zipfile.ZipFile(inner_buffer, "w", zipfile.ZIP_DEFLATED) as inner:
        write_bomb_member(inner, "zeros.txt", inner_size, b"\x00")
    inner_data = inner_buffer.getvalue()
    outer_buffer = io.BytesIO()
    with zipfile.ZipFile(outer_buffer, "w", zipfile.ZIP_STORED) as outer:
        for index in range(copies):
            outer.writestr(f"part{index}.zip", inner_data)
    return outer_buffer.getvalue()


@pytest.fixture(scope="module")
def nested_bomb() -> bytes:
    return build_nested_zip_bomb(10, GIB // 4)


@pytest.mark.parametrize(
    ("expanded", "limit", "max_growth"),
    [
        # Declared as 1 GiB: rejected before reading because it is over max_document_bytes (50 MiB).
        (GIB, LimitKind.DOCUMENT_BYTES, 128 * MIB),
        # Under max_document_bytes, so it is streamed until it passes 100 times its compressed size.
        (48 * MIB, LimitKind.RATIO, 24 * MIB),
    ],
    ids=["1GiB", "48MiB"],
)
def test_docx_bomb_stopped_with_warning(
    app: App, mailbox: Mailbox, expanded: int, limit: LimitKind, max_growth: int
) -> None:
    bomb = build_docx_bomb(expanded)
    assert len(bomb) * 500 < expanded
    parts = [(encode_quoted("正文.docx"), bomb, "/".join(DOCX_TYPE))]
    raw = mail_with_named_parts(
        CD, "【工作动态】成都启动冬季消费季", parts, text="成都启动冬季消费季\n审核：赵强超　签发：袁思远"
    )
    peak_before = peak_rss_bytes()

    message = mailbox.deliver(raw, START)

    # ru_maxrss only grows, so a limit that failed shows as the expanded document.xml (and its
    # text) pushing the peak up, even if earlier tests in this process had a higher peak.
    growth = peak_rss_bytes() - peak_before
    assert growth < max_growth, f"peak RSS grew by {growth} bytes"
    (row,) = stored_attachments(app, message)
    assert row.text is None
    assert row.warning == warn_limit(limit, app.settings.documents.limits(), "word/document.xml")
    assert message.state != MessageState.QUARANTINED
    (receipt,) = outbox_mails(app, "receipt")
    assert row.warning in plain_text(receipt)


def test_nested_zip_bomb_stopped_with_warning(app: App, mailbox: Mailbox, nested_bomb: bytes) -> None:
    parts = [(encode_quoted("材料.zip"), nested_bomb, "application/zip")]
    raw = mail_with_named_parts(CD, "【工作动态】材料", parts)
    peak_before = peak_rss_bytes()

    message = mailbox.deliver(raw, START)

    growth = peak_rss_bytes() - peak_before
    assert growth < 128 * MIB, f"peak RSS grew by {growth} bytes"
    rows = stored_attachments(app, message)
    assert [row.filename for row in rows] == ["材料.zip", *(f"part{index}.zip" for index in range(10))]
    limits = app.settings.documents.limits()
    # Each inner member declares 256 MiB, over max_document_bytes (50 MiB), so none is read.
    for row in rows[1:]:
        assert row.warning == warn_limit(LimitKind.DOCUMENT_BYTES, limits, "zeros.txt"), row.filename
    assert sum(row.size for row in rows) < 4 * len(nested_bomb)


@pytest.fixture
def strict_limits_app(write_config: WriteConfig) -> Iterator[App]:
    """An App whose [documents] section lets any ratio through but caps an archive's total at 8 MiB."""
    extra = f"\n[documents]\nzip_max_ratio = 1000000\nzip_max_total_bytes = {8 * MIB}\n"
    application = build_app(load_settings(write_config(name="strict.toml", extra=extra)), clock=SystemClock())
    upgrade_database(application.engine)
    application.context.archive.ensure()
    try:
        yield application
    finally:
        application.close()


def test_configured_total_limit_stops_bomb(strict_limits_app: App, nested_bomb: bytes) -> None:
    limits = strict_limits_app.settings.documents.limits()
    assert limits == DocumentLimits(zip_max_ratio=1_000_000, zip_max_total_bytes=8 * MIB)
    raw = mail_with_named_parts(CD, "【工作动态】材料", [(encode_quoted("材料.zip"), nested_bomb, "application/zip")])
    peak_before = peak_rss_bytes()

    message = Mailbox(strict_limits_app).deliver(raw, START)

    growth = peak_rss_bytes() - peak_before
    assert growth < 128 * MIB, f"peak RSS grew by {growth} bytes"
    rows = stored_attachments(strict_limits_app, message)
    warnings = [row.warning for row in rows if row.warning]
    assert warnings
    assert all(warning == warn_limit(LimitKind.TOTAL_BYTES, limits, "zeros.txt") for warning in warnings)
    assert not any(row.filename == "zeros.txt" for row in rows)


# Header and HTML injection


@pytest.mark.parametrize(
    "line_break",
    [
        pytest.param("\r\n", id="CRLF"),
        pytest.param("\n", id="LF"),
        pytest.param("\r", id="CR"),
        pytest.param("\u2028", id="U+2028"),
        pytest.param("\u2029", id="U+2029"),
        pytest.param("\x85", id="U+0085"),
    ],
)
def test_subject_line_break_gives_one_line_receipt(app: App, mailbox: Mailbox, line_break: str) -> None:
    subject = f"【工作动态】成都启动冬季消费季{line_break}Bcc: x@evil.example"
    # A cover note only, so the item's title comes from the subject and the receipt echoes it.
    raw = mail_with_named_parts(CD, subject, [], text="见附件。")

    message = mailbox.deliver(raw, START)

    assert message.state == MessageState.REGISTERED
    (receipt,) = outbox_mails(app, "receipt")
    headers = header_block(receipt)
    assert not any(line.lower().startswith(b"bcc") for line in headers.split(b"\r\n"))
    parsed = message_from_bytes(receipt, policy=policy.default)
    assert parsed["Bcc"] is None
    assert parsed.get_all("To") == ["cdly@example.gov.cn"]
    assert len(str(parsed["Subject"]).splitlines()) == 1
    assert str(parsed["Subject"]).startswith("【回执】2026-0001 ")
    assert "x@evil.example" in str(parsed["Subject"])


def test_folded_message_id_still_registered(app: App, mailbox: Mailbox) -> None:
    text = "成都启动冬季消费季\n\u3000\u300010月27日举行启动仪式。\n审核：赵强超　签发：袁思远"
    raw = mail_with_named_parts(
        CD, "【工作动态】成都启动冬季消费季", [], text=text, message_id="broken-id\r\n\tcontinued@example.gov.cn"
    )

    message = mailbox.deliver(raw, START)

    assert message.reason is None
    assert message.state == MessageState.REGISTERED
    (receipt,) = outbox_mails(app, "receipt")
    assert b"\r\n\tcontinued" not in header_block(receipt)


def test_encoded_word_text_in_title_registered(app: App, mailbox: Mailbox) -> None:
    title = "=?big5?B?ob65pNf3tq/MrKG/yqHCw9POvtbV2b+qyKvKodbYtePCw9POz+7Ev72oyeg=?="
    text = f"{title}\n\u3000\u300010月27日举行启动仪式。\n审核：赵强超　签发：袁思远"
    raw = mail_with_named_parts(CD, "工作信息", [], text=text)

    message = mailbox.deliver(raw, START)

    assert message.reason is None
    assert message.state == MessageState.REGISTERED


def test_html_markup_not_stored_or_echoed(app: App, mailbox: Mailbox) -> None:
    html = (
        "<html><head><script>alert('head')</script><style>p{color:red}</style></head>"
        '<body onload="steal()"><p>成都启动冬季消费季</p>'
        "<p>\u3000\u300010月27日举行启动仪式。<script>document.write('x')</script></p>"
        '<p><img src="x.png" onerror="alert(1)">'
        '<a href="data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==">详情</a></p>'
        '<p onclick="alert(2)">审核：赵强超　签发：袁思远</p></body></html>'
    )
    raw = (
        f"From: {CD}\r\nTo: zwxx@tourism.example.gov.cn\r\nSubject: =?utf-8?b?"
        + base64.b64encode("【工作动态】成都启动冬季消费季".encode()).decode()
        + "?=\r\nDate: Mon, 02 Nov 2026 09:00:00 +0800\r\nMessage-ID: <html.1@example.gov.cn>\r\n"
        "MIME-Version: 1.0\r\nContent-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        + base64.encodebytes(html.encode()).decode()
    ).encode()

    message = mailbox.deliver(raw, START)

    assert message.state == MessageState.REGISTERED
    with app.session_factory() as session:
        (item,) = session.scalars(select(Item).where(Item.message_db_id == message.id))
        stored = f"{item.title}\n{item.body_text}"
    assert "举行启动仪式" in stored
    for fragment in ("<", ">", "script", "alert", "onerror", "onload", "onclick", "data:", "base64", "color:red"):
        assert fragment not in stored, fragment
    with app.session_factory.begin() as session:
        send_digest(session, app.context, slot="2026-11-02 下午")
    for purpose in ("receipt", "digest"):
        (raw_out,) = outbox_mails(app, purpose)
        text = plain_text(raw_out)
        for fragment in ("<", "script", "alert", "onerror", "data:"):
            assert fragment not in text, (purpose, fragment)
