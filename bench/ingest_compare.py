"""Backlog ingest compared: zwxx end to end, getmail6 into a Maildir, and a fetch-and-parse floor.

All three read the same folder of a throwaway local Dovecot, filled once with ``--count``
generated messages: about 20 KB of Chinese item text each, sent base64-encoded as UTF-8 like
Foxmail and QQ Mail do, and every other one also carrying the item as a .docx.
  zwxx     one poll_folder call into a fresh SQLite (or PostgreSQL) database and archive, the
           same timed region as bench/backlog.py: FETCH in batches, raw bytes archived and
           fsynced, message row, parse, document text, item rows, receipt queued, post-action;
  getmail  getmail6's ``getmail`` (a subprocess) with a generated rc file: SimpleIMAPRetriever
           over plain IMAP on 127.0.0.1, every message into a fresh Maildir, nothing deleted;
  floor    imapclient FETCH in batches of 100, then parse_message and extract_items on each
           message in one loop, with no database and no archive.
With ``--runs`` above 1 the order of the three rotates from run to run.
``--profile`` adds one more zwxx run under cProfile and prints where its time goes.

Run from the repository root:  python -m bench.ingest_compare --count 5000
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import pwd
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import tomllib
from collections.abc import Callable
from email.message import EmailMessage
from email.policy import SMTP
from pathlib import Path

from sqlalchemy import func, select

from bench.backlog import drop_postgres, postgres_database
from bench.common import SHARED, write_config
from daemon.app import build_app
from daemon.config import Settings, load_settings
from daemon.db import upgrade_database
from daemon.intake import close_imap, connect_imap, poll_folder
from daemon.logsetup import setup_logging
from daemon.models import Item, Message, OutboxMail
from parsers.items import extract_items
from parsers.message import parse_message
from tests.parsers.docx_builder import build_docx, paragraph
from tests.servers.dovecot import DovecotServer, find_dovecot_executable, read_dovecot_version
from tests.servers.handle import ImapServerHandle, ImapServerKind

TOOLS = ("zwxx", "getmail", "floor")
FETCH_BATCH = 100
TEXT_BYTES = 20_000  # UTF-8 bytes of item text in each message
MAILBOX = "zwxx@tourism.example.gov.cn"

TOPICS = (
    "冬季文旅消费季活动",
    "乡村旅游重点村建设",
    "非遗进景区展演",
    "文物安全专项检查",
    "旅游市场秩序整治",
    "红色旅游精品线路推介",
    "公共文化服务提升",
    "智慧景区建设",
)

SENTENCES = (
    "今年以来，我局坚持以文塑旅、以旅彰文，推动文化和旅游深度融合发展。",
    "全市接待游客人次和旅游收入同比分别增长百分之十二点三和百分之十五点六。",
    "围绕冰雪旅游、温泉康养和非遗体验，推出系列特色活动和惠民措施。",
    "组织开展节假日旅游市场专项检查，出动执法人员两百余人次，检查经营单位一百余家。",
    "指导景区完善预约、限量、错峰措施，确保游客安全有序游览。",
    "加大乡村旅游重点村培育力度，新增省级乡村旅游重点村五个。",
    "依托博物馆、纪念馆和革命旧址，打造红色研学旅游线路十二条。",
    "推进公共图书馆、文化馆总分馆制建设，基层公共文化服务效能持续提升。",
    "联合电商平台发放文旅消费券，带动相关消费超过三千万元。",
    "举办非遗传承人培训班，培训学员一百二十余人，推动非遗技艺活态传承。",
    "开展文物安全隐患排查整治，整改消防、防盗等隐患问题三十余处。",
    "加快智慧景区建设，实现重点景区门票预约、客流监测和应急指挥一体化。",
    "强化导游队伍管理，组织导游服务技能竞赛，提升行业服务水平。",
    "积极对接川渝两地文旅部门，共同推出巴蜀文化旅游走廊精品线路。",
    "下一步，我局将继续优化旅游产品供给，持续释放文旅消费潜力。",
    "同时，加强假日期间值班值守和信息报送，及时妥善处置突发事件。",
)


def load_units() -> list[tuple[str, str]]:
    """Return (name, official address) of every unit in the corpus units file."""
    with (SHARED / "corpus" / "units.toml").open("rb") as handle:
        units = tomllib.load(handle)["units"]
    return [(unit["name"], unit["addresses"][0]) for unit in units if unit.get("addresses")]


def item_paragraphs(index: int, title: str) -> list[str]:
    """Return the title, about TEXT_BYTES of body paragraphs, the review line and the contact line."""
    rng = random.Random(index)
    paragraphs = [title]
    size = len(title.encode())
    while size < TEXT_BYTES:
        text = "\u3000\u3000" + "".join(rng.choice(SENTENCES) for _ in range(rng.randint(4, 8)))
        paragraphs.append(text)
        size += len(text.encode()) + 1
    paragraphs.append("（审核：张明　签发：李华）")
    paragraphs.append(f"联系人：王芳　电话：028-{12345000 + index % 1000}")
    return paragraphs


def build_message(index: int, units: list[tuple[str, str]], tag: str) -> bytes:
    """Return generated message ``index``: the item in the mail text, and as a .docx when ``index`` is odd."""
    unit_name, address = units[index % len(units)]
    topic = TOPICS[index % len(TOPICS)]
    title = f"{unit_name}扎实推进{topic}（第{index + 1}期）"
    paragraphs = item_paragraphs(index, title)

    message = EmailMessage()
    message["From"] = f"{unit_name} <{address}>"
    message["To"] = MAILBOX
    message["Subject"] = f"【工作动态】{title}"
    message["Date"] = f"Fri, 04 Dec 2026 {8 + index % 10:02d}:{index % 60:02d}:00 +0800"
    message["Message-ID"] = f"<{tag}.{index}@example.gov.cn>"
    message.set_content("\n".join(paragraphs) + "\n", charset="utf-8", cte="base64")
    if index % 2:
        document = build_docx("".join(paragraph(text) for text in paragraphs))
        message.add_attachment(
            document,
            maintype="application",
            subtype="vnd.openxmlformats-officedocument.wordprocessingml.document",
            filename=f"{title}.docx",
        )
    return message.as_bytes(policy=SMTP)


def generate_messages(count: int, tag: str = "ingest") -> list[bytes]:
    """Return ``count`` distinct generated messages (see the module docstring)."""
    units = load_units()
    return [build_message(index, units, tag) for index in range(count)]


def zwxx_config(handle: ImapServerHandle, workdir: Path, database: str) -> tuple[Path, str | None]:
    """Write the daemon's configuration for a fresh database; return it and the PostgreSQL name to drop."""
    pg_name = None
    if database == "postgresql":
        pg_name, url = postgres_database()
    else:
        url = f"sqlite:///{workdir / 'zwxx.db'}"
    config = write_config(
        workdir / "config.toml",
        port=handle.port,
        user=handle.user,
        password=handle.password,
        database_url=url,
        archive=workdir / "archive",
    )
    return config, pg_name


def run_zwxx(handle: ImapServerHandle, workdir: Path, count: int, database: str, profiler: cProfile.Profile | None):
    """Time one poll_folder over the whole folder, as bench/backlog.py does; return (seconds, note)."""
    config, pg_name = zwxx_config(handle, workdir, database)
    app = build_app(load_settings(config))
    try:
        upgrade_database(app.engine)
        started = time.perf_counter()
        if profiler is not None:
            profiler.enable()
        client = connect_imap(app.settings)
        try:
            summary = poll_folder(client, app.session_factory, app.context)
        finally:
            close_imap(client)
        if profiler is not None:
            profiler.disable()
        elapsed = time.perf_counter() - started
        with app.session_factory() as session:
            stored = session.scalar(select(func.count(Message.id)))
            items = session.scalar(select(func.count(Item.id)))
            queued = session.scalar(select(func.count(OutboxMail.id)))
    finally:
        app.close()
        if pg_name:
            drop_postgres(pg_name)
    if summary.stored != count or stored != count:
        raise RuntimeError(f"zwxx stored {summary.stored} messages ({stored} rows), expected {count}")
    return elapsed, f"{items} items, {queued} receipts queued"


GETMAIL_RC = """\
[retriever]
type = SimpleIMAPRetriever
server = {host}
port = {port}
username = {user}
password = {password}
mailboxes = ("INBOX",)

[destination]
type = Maildir
path = {maildir}/
{delivery_user_line}

[options]
verbose = 0
read_all = true
delete = false
delivered_to = false
received = false
message_log_syslog = false
"""


def run_getmail(handle: ImapServerHandle, workdir: Path, count: int) -> tuple[float, str]:
    """Time one ``getmail`` run that retrieves the whole folder into a fresh Maildir."""
    maildir = workdir / "Maildir"
    for sub in ("cur", "new", "tmp"):
        (maildir / sub).mkdir(parents=True)
    # getmail rejects delivery as root. Its Maildir destination's "user" option makes each
    # delivery child switch to that user, so as root the Maildir belongs to "nobody".
    delivery_user = ""
    if os.geteuid() == 0:
        delivery_user = "nobody"
        nobody = pwd.getpwnam(delivery_user)
        # The delivery child must be able to traverse the scratch folders (mkdtemp makes them 0700).
        workdir.parent.chmod(0o755)
        workdir.chmod(0o755)
        for path in (maildir, *(maildir / sub for sub in ("cur", "new", "tmp"))):
            os.chown(path, nobody.pw_uid, nobody.pw_gid)
    getmail_dir = workdir / "getmail"
    getmail_dir.mkdir()
    rc_file = getmail_dir / "getmailrc"
    rc_file.write_text(
        GETMAIL_RC.format(
            host=handle.host,
            port=handle.port,
            user=handle.user,
            password=handle.password,
            maildir=maildir,
            delivery_user_line=f"user = {delivery_user}" if delivery_user else "",
        ),
        encoding="utf-8",
    )
    executable = Path(sys.executable).with_name("getmail")
    started = time.perf_counter()
    result = subprocess.run(
        [str(executable), "--getmaildir", str(getmail_dir), "--rcfile", str(rc_file)],
        capture_output=True,
        text=True,
        check=False,
        timeout=3600,
    )
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise RuntimeError(f"getmail exited with code {result.returncode}:\n{result.stderr[-2000:]}")
    delivered = len(os.listdir(maildir / "new")) + len(os.listdir(maildir / "cur"))
    if delivered != count:
        raise RuntimeError(f"getmail delivered {delivered} messages, expected {count}:\n{result.stderr}")
    return elapsed, f"{delivered} files in the Maildir"


def run_floor(handle: ImapServerHandle, settings: Settings, count: int) -> tuple[float, str]:
    """Time FETCH in batches plus parse_message and extract_items per message, storing nothing."""
    limits = settings.documents.limits()
    started = time.perf_counter()
    client = handle.client(timeout=60)
    items = 0
    try:
        client.select_folder("INBOX", readonly=True)
        uids = client.search("ALL")
        for first in range(0, len(uids), FETCH_BATCH):
            fetched = client.fetch(uids[first : first + FETCH_BATCH], ["BODY.PEEK[]", "INTERNALDATE"])
            for uid in list(fetched):
                data = fetched.pop(uid)
                parsed = parse_message(
                    data[b"BODY[]"], default_tz=settings.tz, internaldate=data[b"INTERNALDATE"], limits=limits
                )
                items += len(extract_items(parsed))
    finally:
        client.logout()
    elapsed = time.perf_counter() - started
    if len(uids) != count:
        raise RuntimeError(f"floor read {len(uids)} messages, expected {count}")
    return elapsed, f"{items} item drafts"


# (label, file suffix, function name): cumulative time of these entry points in the profiled run.
PROFILE_ENTRY_POINTS = (
    ("IMAP FETCH (imapclient)", "imapclient/imapclient.py", "fetch"),
    ("archive put (raw mail and attachments)", "daemon/archive.py", "put"),
    ("  of which fsync", "~", "<built-in method posix.fsync>"),
    ("SQLite COMMIT (WAL write and fsync)", "~", "<method 'commit' of 'sqlite3.Connection' objects>"),
    ("parse_message", "parsers/message.py", "parse_message"),
    ("register_message (items, receipt, rows)", "daemon/register.py", "register_message"),
    ("  extract_items", "parsers/items.py", "extract_items"),
    ("  revision lookup (links._find_revised)", "daemon/links.py", "_find_revised"),
    ("  same-document lookup (links._find_same_document)", "daemon/links.py", "_find_same_document"),
    ("  duplicate lookup (find_duplicate)", "daemon/register.py", "find_duplicate"),
    ("  receipt queued (_queue_receipt)", "daemon/register.py", "_queue_receipt"),
    ("document text (read_docx_blocks, both calls)", "parsers/documents.py", "read_docx_blocks"),
    ("post-action (apply_server_actions)", "daemon/postaction.py", "apply_server_actions"),
)


def cumulative_seconds(stats: pstats.Stats, suffix: str, name: str) -> float:
    """Return the cumulative time of the function ``name`` defined in a file ending in ``suffix``."""
    return sum(
        entry[3]
        for (filename, _line, function), entry in stats.stats.items()  # type: ignore[attr-defined]
        if function == name and filename.endswith(suffix)
    )


def self_seconds(stats: pstats.Stats, matches: Callable[[str, str], bool]) -> float:
    """Return the summed own time (tottime) of the functions for which ``matches(file, name)`` holds."""
    return sum(
        entry[2]
        for (filename, _line, function), entry in stats.stats.items()  # type: ignore[attr-defined]
        if matches(filename, function)
    )


def is_database_code(filename: str, function: str) -> bool:
    """Tell whether a profile entry is SQLAlchemy, psycopg or the sqlite3 module."""
    return any(part in filename for part in ("/sqlalchemy/", "/psycopg/")) or "sqlite3." in function


def print_profile(stats: pstats.Stats, elapsed: float, count: int) -> None:
    total = cumulative_seconds(stats, "daemon/intake.py", "poll_folder")
    print(f"\nprofile of one zwxx run ({count} messages, {elapsed:.1f} s under cProfile):")
    print("| part | cumulative s | share of poll_folder | ms per message |")
    print("|---|---|---|---|")
    rows = [(label, cumulative_seconds(stats, suffix, name)) for label, suffix, name in PROFILE_ENTRY_POINTS]
    rows.append(("database: own time in SQLAlchemy and sqlite3/psycopg", self_seconds(stats, is_database_code)))
    rows.append(("poll_folder total", total))
    for label, seconds in rows:
        print(f"| {label} | {seconds:.2f} | {seconds / total:.0%} | {seconds / count * 1000:.2f} |")
    listing = io.StringIO()
    stats.stream = listing  # type: ignore[attr-defined]
    stats.sort_stats("tottime").print_stats(20)
    print("\ntop 20 functions by own time:")
    print(listing.getvalue().split("\n", 6)[-1].rstrip())


def describe_machine() -> str:
    with open("/proc/cpuinfo", encoding="utf-8") as handle:
        models = [line.split(":", 1)[1].strip() for line in handle if line.startswith("model name")]
    return f"{os.cpu_count()} CPUs ({models[0] if models else 'unknown'}), Python {sys.version.split()[0]}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=5000, help="messages in the folder (default 5000)")
    parser.add_argument("--runs", type=int, default=1, help="runs of each tool; the median is reported")
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite", help="zwxx's database")
    parser.add_argument("--profile", action="store_true", help="add one zwxx run under cProfile and print it")
    parser.add_argument(
        "--tools", nargs="+", choices=TOOLS, default=list(TOOLS), help="readers to time (default: all three)"
    )
    args = parser.parse_args()
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]  # progress shows when redirected
    setup_logging("WARNING")

    executable = find_dovecot_executable()
    if executable is None:
        raise SystemExit("dovecot not found: install dovecot-imapd; this benchmark needs Dovecot")
    print(describe_machine())
    print(f"Dovecot {read_dovecot_version(executable)}")

    raws = generate_messages(args.count)
    with_docx = sum(1 for index in range(args.count) if index % 2)
    megabytes = sum(len(raw) for raw in raws) / 1e6
    print(f"{args.count} messages, {megabytes:.1f} MB, {with_docx} with a .docx")

    server = DovecotServer(user="bench", password="bench-pass")
    server.start()
    handle = ImapServerHandle(ImapServerKind.DOVECOT, server)
    scratch = Path(tempfile.mkdtemp(prefix="zwxx-compare-"))
    tools = tuple(tool for tool in TOOLS if tool in args.tools)
    seconds: dict[str, list[float]] = {tool: [] for tool in tools}
    try:
        started = time.perf_counter()
        handle.append_many(raws)
        print(f"appended in {time.perf_counter() - started:.1f} s")
        del raws
        settings = load_settings(zwxx_config(handle, scratch, "sqlite")[0])
        for run in range(args.runs):
            order = tools[run % len(tools) :] + tools[: run % len(tools)]
            for tool in order:
                workdir = Path(tempfile.mkdtemp(prefix=f"{tool}-", dir=scratch))
                try:
                    if tool == "zwxx":
                        elapsed, note = run_zwxx(handle, workdir, args.count, args.database, None)
                    elif tool == "getmail":
                        elapsed, note = run_getmail(handle, workdir, args.count)
                    else:
                        elapsed, note = run_floor(handle, settings, args.count)
                finally:
                    shutil.rmtree(workdir, ignore_errors=True)
                seconds[tool].append(elapsed)
                print(f"run {run + 1} {tool}: {elapsed:.2f} s = {args.count / elapsed:.0f} messages/s ({note})")
        if args.profile:
            workdir = Path(tempfile.mkdtemp(prefix="profile-", dir=scratch))
            profiler = cProfile.Profile()
            try:
                elapsed, _note = run_zwxx(handle, workdir, args.count, args.database, profiler)
            finally:
                shutil.rmtree(workdir, ignore_errors=True)
            print_profile(pstats.Stats(profiler), elapsed, args.count)
    finally:
        server.cleanup()
        shutil.rmtree(scratch, ignore_errors=True)

    rates = {tool: args.count / statistics.median(values) for tool, values in seconds.items()}
    print("\n| tool | median messages/s | runs (s) |\n|---|---|---|")
    for tool in tools:
        runs = ", ".join(f"{value:.1f}" for value in seconds[tool])
        print(f"| {tool} | {rates[tool]:.0f} | {runs} |")
    if set(tools) == set(TOOLS):
        print(
            f"zwxx = {rates['zwxx'] / rates['getmail']:.2f} x getmail6 (goal >= 3), "
            f"{rates['zwxx'] / rates['floor']:.0%} of the floor (goal >= 50%)"
        )


if __name__ == "__main__":
    main()
