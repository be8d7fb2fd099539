"""Large-message memory benchmark: peak RSS of one end-to-end ingest against the message size.

For each size, one message (a short Chinese cover note plus a base64 .docx attachment that is
mostly an incompressible embedded image) is appended to a local Dovecot (pymap when Dovecot is
missing). A fresh child process then runs one stage and reports its peak RSS (VmHWM):
  fetch   one plain FETCH BODY.PEEK[] of the message through imapclient, nothing else;
  chunked the poller's fetch of a large message (BODY.PEEK[]<offset.length> pieces spooled
          to a temporary file), nothing else;
  parse   parse_message and extract_items on the raw bytes read from a file;
  ingest  poll_folder end to end: fetch, archive, parse, register, commit (SQLite).
Each child also reports its RSS just before the stage (imports done, app built), so the
stage's own growth is peak minus that baseline.

Run from the repository root:  python -m bench.large_message --sizes 1 10 43
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from email.message import EmailMessage
from email.policy import SMTP
from pathlib import Path

from bench.common import REPO, write_config

MIB = 1024 * 1024
STAGES = ("fetch", "chunked", "parse", "ingest")
SENDER = "cdly@example.gov.cn"  # a unit address in the corpus units file, so the item is registered


BODY_TEXT = (
    "成都市文化广电旅游局关于冬季文旅消费活动的信息\n\n"
    "今年入冬以来，我市围绕冰雪旅游、温泉康养和非遗体验推出系列活动，带动文旅消费持续回暖。\n"
    "（审核：张明　签发：李华）\n联系人：王芳　电话：028-12345678\n"
)


def build_docx(image_bytes: int, seed: int) -> bytes:
    """Return a .docx with Chinese paragraphs and one stored (uncompressed) random image of ``image_bytes``."""
    from tests.parsers.docx_builder import build_docx as build_base
    from tests.parsers.docx_builder import paragraph

    body = "".join(paragraph(line) for line in BODY_TEXT.splitlines() if line)
    buffer = io.BytesIO(build_base(body))
    with zipfile.ZipFile(buffer, "a") as package:
        image = random.Random(seed).randbytes(image_bytes)
        package.writestr(zipfile.ZipInfo("word/media/image1.png"), image, compress_type=zipfile.ZIP_STORED)
    return buffer.getvalue()


def build_message(size: int) -> bytes:
    """Return a mail of about ``size`` bytes: Chinese text and a base64 .docx attachment."""
    # base64 with 76-character lines takes 4/3 of the bytes plus CRLF every 76 characters.
    image_bytes = max(int((size - 4096) * 3 / 4 * 76 / 78) - 2048, 1024)
    message = EmailMessage()
    message["From"] = f"成都市文旅局 <{SENDER}>"
    message["To"] = "zwxx@tourism.example.gov.cn"
    message["Subject"] = "【工作动态】成都市冬季文旅消费活动持续升温"
    message["Date"] = "Fri, 04 Dec 2026 09:30:00 +0800"
    message["Message-ID"] = f"<large-{size}@example.gov.cn>"
    message.set_content(BODY_TEXT + "详见附件。\n")
    message.add_attachment(
        build_docx(image_bytes, size),
        maintype="application",
        subtype="vnd.openxmlformats-officedocument.wordprocessingml.document",
        filename="成都市冬季文旅消费活动.docx",
    )
    return message.as_bytes(policy=SMTP)


def read_status_kib(field: str) -> int:
    """Return a kB figure (VmHWM, VmRSS) from /proc/self/status."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def run_child(stage: str, config: Path, raw_file: Path) -> dict[str, object]:
    """Run one stage in this process and return its figures; called in a fresh child process."""
    from sqlalchemy import select

    from daemon.app import build_app
    from daemon.config import load_settings
    from daemon.intake import close_imap, connect_imap, fetch_in_chunks, poll_folder
    from daemon.logsetup import setup_logging
    from daemon.models import Message
    from parsers.items import extract_items
    from parsers.message import parse_message

    setup_logging("WARNING")
    app = build_app(load_settings(config))
    result: dict[str, object] = {"stage": stage}
    try:
        if stage == "parse":
            raw = raw_file.read_bytes()
            result["baseline_kib"] = read_status_kib("VmRSS")
            started = time.perf_counter()
            parsed = parse_message(raw, default_tz=app.settings.tz, limits=app.settings.documents.limits())
            result["items"] = len(extract_items(parsed))
        else:
            client = connect_imap(app.settings)
            client.select_folder(app.settings.imap.folder)
            result["baseline_kib"] = read_status_kib("VmRSS")
            started = time.perf_counter()
            try:
                if stage == "fetch":
                    (uid,) = client.search("ALL")
                    data = client.fetch([uid], ["BODY.PEEK[]"])[uid][b"BODY[]"]
                    result["fetched_bytes"] = len(data)
                    del data
                elif stage == "chunked":
                    (uid,) = client.search("ALL")
                    data = fetch_in_chunks(client, uid)[b"BODY[]"]
                    result["fetched_bytes"] = len(data)  # type: ignore[arg-type]
                    del data
                else:
                    summary = poll_folder(client, app.session_factory, app.context)
                    result["stored"] = summary.stored
            finally:
                close_imap(client)
            if stage == "ingest":
                with app.session_factory() as session:
                    result["state"] = str(session.scalar(select(Message.state)))
        result["seconds"] = round(time.perf_counter() - started, 2)
    finally:
        app.close()
    result["peak_kib"] = read_status_kib("VmHWM")
    result["ru_maxrss_kib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return result


def start_server() -> tuple[object, str]:
    from tests.servers.dovecot import DovecotServer, find_dovecot_executable
    from tests.servers.handle import ImapServerHandle, ImapServerKind

    if find_dovecot_executable() is None:
        from daemon.embedded import EmbeddedImapServer

        server = EmbeddedImapServer(user="bench", password="bench-pass")
        server.start()
        return ImapServerHandle(ImapServerKind.PYMAP, server), "pymap"
    dovecot = DovecotServer(user="bench", password="bench-pass")
    dovecot.start()
    return ImapServerHandle(ImapServerKind.DOVECOT, dovecot), "dovecot"


def measure(handle, workdir: Path, size_mib: float, stages: list[str]) -> list[dict[str, object]]:  # type: ignore[no-untyped-def]
    raw = build_message(int(size_mib * MIB))
    raw_file = workdir / "message.eml"
    raw_file.write_bytes(raw)
    rows = []
    for stage in stages:
        handle.reset()
        handle.append(raw)
        run_dir = workdir / stage
        shutil.rmtree(run_dir, ignore_errors=True)
        run_dir.mkdir()
        config = write_config(
            run_dir / "config.toml",
            port=handle.port,
            user=handle.user,
            password=handle.password,
            database_url=f"sqlite:///{(run_dir / 'zwxx.db').as_posix()}",
            archive=run_dir / "archive",
        )
        if stage == "ingest":
            from daemon.app import build_app
            from daemon.config import load_settings
            from daemon.db import upgrade_database

            app = build_app(load_settings(config))
            upgrade_database(app.engine)
            app.close()
        output = subprocess.run(
            [sys.executable, "-m", "bench.large_message", "--child", stage, str(config), str(raw_file)],
            cwd=REPO,
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        row = json.loads(output.strip().splitlines()[-1])
        row["message_bytes"] = len(raw)
        rows.append(row)
    return rows


def print_table(rows: list[dict[str, object]]) -> None:
    columns = ["message", "stage", "baseline RSS", "peak RSS (VmHWM)", "peak - baseline", "peak / size"]
    print("| " + " | ".join([*columns, "(peak - baseline) / size", "s"]) + " |")
    print("|---|---|---|---|---|---|---|---|")
    for row in rows:
        size = int(row["message_bytes"])  # type: ignore[call-overload]
        peak = int(row["peak_kib"]) * 1024  # type: ignore[call-overload]
        base = int(row["baseline_kib"]) * 1024  # type: ignore[call-overload]
        print(
            f"| {size / MIB:.1f} MiB | {row['stage']} | {base / MIB:.0f} MiB | {peak / MIB:.0f} MiB | "
            f"{(peak - base) / MIB:.0f} MiB | {peak / size:.1f}x | {(peak - base) / size:.1f}x | {row['seconds']} |"
        )


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        stage, config, raw_file = sys.argv[2], Path(sys.argv[3]), Path(sys.argv[4])
        print(json.dumps(run_child(stage, config, raw_file)))
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=float, nargs="+", default=[1, 10, 43], help="message sizes in MiB")
    parser.add_argument("--stages", nargs="+", choices=STAGES, default=list(STAGES), help="stages to measure")
    parser.add_argument("--json", action="store_true", help="print the raw figures as JSON lines too")
    args = parser.parse_args()

    handle, kind = start_server()
    workdir = Path(tempfile.mkdtemp(prefix="zwxx-large-"))
    rows: list[dict[str, object]] = []
    try:
        for size in args.sizes:
            rows.extend(measure(handle, workdir, size, args.stages))
    finally:
        handle.server.stop()  # type: ignore[attr-defined]
        shutil.rmtree(workdir, ignore_errors=True)
    print(f"IMAP server: {kind}; Python {sys.version.split()[0]}; {os.cpu_count()} CPUs")
    print_table(rows)
    if args.json:
        for row in rows:
            print(json.dumps(row))


if __name__ == "__main__":
    main()
