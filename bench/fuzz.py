"""Fuzz benchmark: N damaged corpus messages through ``ingest_message`` into SQLite, without IMAP.

Each message is one corpus message damaged by 1 to 3 seeded random mutations (the MUTATIONS
list): flipped bytes, truncation, a spliced-in slice of another message, duplicated header lines,
a damaged MIME boundary, a false charset or transfer encoding, mixed line endings, a lost
header/body separator, and nested multiparts or attached messages around the whole message. Message ``index``
of a run depends only on ``--seed`` and ``index``, so ``--only INDEX`` rebuilds it.

The loop must never raise, and every quarantined message must have a reason. A registering
failure (an ERROR that daemon.store logs before it quarantines the message) is a problem too,
because the daemon survives it but it is a bug. Any problem makes the exit status 1. Exceptions
that parse_message did not expect (it wraps them in MessageParseError) are listed apart.

Run from the repository root:  python -m bench.fuzz --count 100000
"""

from __future__ import annotations

import argparse
import logging
import os
import random
import re
import resource
import shutil
import sys
import tempfile
import time
import traceback
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from bench.common import SHARED, write_config
from daemon.app import App, build_app
from daemon.config import load_settings
from daemon.db import upgrade_database
from daemon.models import Message, MessageState
from daemon.store import SourceKey, ingest_message

INTERNALDATE = datetime(2026, 11, 2, 1, 0, tzinfo=UTC)
_BOUNDARY = re.compile(rb'boundary="?([^";\r\n]+)"?', re.IGNORECASE)
_CHARSET = re.compile(rb'(charset="?)([A-Za-z0-9_.:-]+)', re.IGNORECASE)
_ENCODED_WORD = re.compile(rb"=\?([A-Za-z0-9_-]+)\?([BbQq])\?")
_TRANSFER_ENCODING = re.compile(rb"(Content-Transfer-Encoding:[ \t]*)([A-Za-z0-9-]+)", re.IGNORECASE)
CHARSETS = [b"utf-8", b"gb2312", b"gbk", b"gb18030", b"big5", b"iso-8859-1", b"utf-16", b"utf-7", b"x-unknown", b""]
ENCODINGS = [b"base64", b"quoted-printable", b"7bit", b"8bit", b"binary", b"x-uuencode", b"base65"]
# A slow message is reported with its index; the daemon parses inside its poll loop, so one such
# message delays every message behind it.
SLOW_SECONDS = 5.0
# parse_message wraps an exception it did not expect in MessageParseError with this reason.
WRAPPED_EXCEPTION = re.compile(r"^邮件无法解析：(\w+): ")


def load_corpus() -> list[bytes]:
    files = sorted((SHARED / "corpus" / "eml").glob("*.eml"))
    if not files:
        sys.exit(f"错误：{SHARED / 'corpus' / 'eml'} 下没有 .eml 文件；请设置 ZWXX_SHARED")
    return [path.read_bytes() for path in files]


def split_head(raw: bytes) -> tuple[bytes, bytes, bytes]:
    for separator in (b"\r\n\r\n", b"\n\n"):
        head, found, body = raw.partition(separator)
        if found:
            return head, found, body
    return raw, b"", b""


def flip_bytes(rng: random.Random, raw: bytes, corpus: list[bytes]) -> bytes:
    data = bytearray(raw)
    for _ in range(rng.randint(1, 20)):
        data[rng.randrange(len(data))] = rng.randrange(256)
    return bytes(data)


def truncate(rng: random.Random, raw: bytes, corpus: list[bytes]) -> bytes:
    return raw[: rng.randrange(len(raw))]


def splice(rng: random.Random, raw: bytes, corpus: list[bytes]) -> bytes:
    other = rng.choice(corpus)
    start = rng.randrange(len(other))
    cut = rng.randrange(len(raw) + 1)
    return raw[:cut] + other[start : start + rng.randint(1, 4096)] + raw[cut:]


def duplicate_headers(rng: random.Random, raw: bytes, corpus: list[bytes]) -> bytes:
    head, separator, body = split_head(raw)
    lines = head.splitlines(keepends=True)
    extra = [rng.choice(lines) for _ in range(rng.randint(1, 8))]
    return b"".join(lines + extra) + separator + body


def damage_boundary(rng: random.Random, raw: bytes, corpus: list[bytes]) -> bytes:
    boundaries = _BOUNDARY.findall(raw)
    if not boundaries:
        return raw
    boundary = rng.choice(boundaries)
    mode = rng.randrange(3)
    if mode == 0:
        return raw.replace(b"--" + boundary + b"--", b"", 1)
    if mode == 1:
        index = raw.rfind(b"--" + boundary)
        return raw if index < 0 else raw[:index] + b"-" + raw[index + 3 :]
    return raw.replace(boundary, boundary[:-1] or b"x", 1)


def lie_about_charset(rng: random.Random, raw: bytes, corpus: list[bytes]) -> bytes:
    """Replace the charset of one part or of one encoded word with another (or an unknown) one."""
    parameters = [match.span(2) for match in _CHARSET.finditer(raw)]
    words = [match.span(1) for match in _ENCODED_WORD.finditer(raw)]
    spans = parameters + words
    if not spans:
        return raw
    start, end = rng.choice(spans)
    charset = rng.choice(CHARSETS)
    if (start, end) in words:
        charset = charset or b"x"  # an encoded word without a charset is no longer one
    return raw[:start] + charset + raw[end:]


def lie_about_encoding(rng: random.Random, raw: bytes, corpus: list[bytes]) -> bytes:
    matches = list(_TRANSFER_ENCODING.finditer(raw))
    if not matches:
        return raw
    match = rng.choice(matches)
    return raw[: match.start(2)] + rng.choice(ENCODINGS) + raw[match.end(2) :]


def mix_line_endings(rng: random.Random, raw: bytes, corpus: list[bytes]) -> bytes:
    lines = raw.split(b"\r\n") if b"\r\n" in raw else raw.split(b"\n")
    endings = (b"\r\n", b"\n", b"\r", b"\n\r")
    return b"".join(line + rng.choice(endings) for line in lines)


def drop_separator(rng: random.Random, raw: bytes, corpus: list[bytes]) -> bytes:
    head, _separator, body = split_head(raw)
    return head + b"\r\n" + body


def nest_multiparts(rng: random.Random, raw: bytes, corpus: list[bytes]) -> bytes:
    """Wrap the message in 1 to 60 levels of multipart/mixed or attached message/rfc822."""
    for level in range(rng.randint(1, 60)):
        if rng.random() < 0.5:
            boundary = b"fuzz-%d" % level
            raw = (
                b"From: fuzz@example.cn\r\nSubject: nested\r\nMIME-Version: 1.0\r\n"
                b'Content-Type: multipart/mixed; boundary="' + boundary + b'"\r\n\r\n'
                b"--" + boundary + b"\r\n" + raw + b"\r\n--" + boundary + b"--\r\n"
            )
        else:
            raw = (
                b"From: fuzz@example.cn\r\nSubject: forwarded\r\nMIME-Version: 1.0\r\n"
                b"Content-Type: message/rfc822\r\n\r\n" + raw
            )
    return raw


MUTATIONS = [
    flip_bytes,
    truncate,
    splice,
    duplicate_headers,
    damage_boundary,
    lie_about_charset,
    lie_about_encoding,
    mix_line_endings,
    drop_separator,
    nest_multiparts,
]


def mutate(corpus: list[bytes], seed: int, index: int) -> tuple[bytes, list[str]]:
    """Return message ``index`` of the run with ``seed`` and the names of the mutations applied."""
    rng = random.Random(f"{seed}:{index}")
    raw = rng.choice(corpus)
    applied = []
    for _ in range(rng.randint(1, 3)):
        if not raw:
            break
        mutation = rng.choice(MUTATIONS)
        raw = mutation(rng, raw, corpus)
        applied.append(mutation.__name__)
    return raw, applied


class ErrorLog(logging.Handler):
    """Keeps the ERROR records that daemon.store logs for the message being ingested."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@dataclass
class WorkerResult:
    messages: int = 0
    seconds: float = 0.0
    states: Counter[str] = field(default_factory=Counter)
    reasons: Counter[str] = field(default_factory=Counter)
    mutations: Counter[str] = field(default_factory=Counter)
    # category -> (count, first index): an exception raised, a registering failure or an empty reason
    problems: dict[str, list[int]] = field(default_factory=dict)
    # exception type inside parse_message -> (count, first index); wrapped in MessageParseError
    parser_exceptions: dict[str, list[int]] = field(default_factory=dict)
    slowest: tuple[float, int] = (0.0, -1)
    slow: list[tuple[int, float]] = field(default_factory=list)
    peak_rss_mib: float = 0.0

    def note_problem(self, category: str, index: int) -> None:
        entry = self.problems.setdefault(category, [0, index])
        entry[0] += 1


def categorise_errors(records: list[logging.LogRecord]) -> list[str]:
    categories = []
    for record in records:
        message = record.getMessage()
        if "instead of MessageParseError" in message:
            categories.append(f"parser exception not wrapped: {message}")
        elif "registering failed" in message:
            categories.append("registering failed: " + message.split("registering failed, quarantined: ", 1)[-1][:120])
        else:
            categories.append(f"error logged: {message[:120]}")
    return categories


def open_worker_app(workdir: Path) -> App:
    """Build an App on a new SQLite database and archive in ``workdir``; IMAP and SMTP are never used."""
    workdir.mkdir(parents=True, exist_ok=True)
    config = write_config(
        workdir / "config.toml",
        port=1,
        user="fuzz",
        password="fuzz",
        database_url=f"sqlite:///{workdir / 'zwxx.db'}",
        archive=workdir / "archive",
    )
    app = build_app(load_settings(config))
    upgrade_database(app.engine)
    app.context.archive.ensure()
    return app


def record_outcome(result: WorkerResult, message: Message, index: int) -> bool:
    """Count the state of an ingested message; return False when it is quarantined without a reason."""
    result.messages += 1
    result.states[str(message.state)] += 1
    if message.state != MessageState.QUARANTINED:
        return True
    result.reasons[(message.reason or "")[:60]] += 1
    wrapped = WRAPPED_EXCEPTION.match(message.reason or "")
    if wrapped:
        entry = result.parser_exceptions.setdefault(wrapped.group(1), [0, index])
        entry[0] += 1
    if not (message.reason or "").strip():
        result.note_problem("quarantined without a reason", index)
        return False
    return True


def run_worker(seed: int, worker: int, workers: int, count: int, workdir: Path, keep: Path | None) -> WorkerResult:
    """Ingest messages worker, worker + workers, ... below ``count`` into this worker's own database."""
    logging.basicConfig(level=logging.CRITICAL)
    errors = ErrorLog()
    logging.getLogger("daemon").addHandler(errors)
    logging.getLogger("daemon").setLevel(logging.ERROR)
    corpus = load_corpus()
    app = open_worker_app(workdir)
    result = WorkerResult()
    started = time.perf_counter()
    try:
        for index in range(worker, count, workers):
            raw, applied = mutate(corpus, seed, index)
            result.mutations.update(applied)
            errors.records.clear()
            before = time.perf_counter()
            try:
                _outcome, message = ingest_message(
                    app.session_factory, app.context, SourceKey("fuzz", "INBOX", 1, index + 1), raw, INTERNALDATE
                )
            except Exception:  # noqa: BLE001 - the benchmark counts what the loop would have raised
                result.note_problem("ingest_message raised: " + traceback.format_exc(limit=-1).strip()[-200:], index)
                save(keep, seed, index, raw)
                continue
            finally:
                elapsed = time.perf_counter() - before
                result.slowest = max(result.slowest, (elapsed, index))
                if elapsed > SLOW_SECONDS:
                    result.slow.append((index, elapsed))

            if not record_outcome(result, message, index):
                save(keep, seed, index, raw)
            for category in categorise_errors(errors.records):
                result.note_problem(category, index)
                save(keep, seed, index, raw)
            if result.messages % 5000 == 0:
                rate = result.messages / (time.perf_counter() - started)
                print(f"worker {worker}: {result.messages} messages, {rate:.0f}/s", file=sys.stderr, flush=True)
    finally:
        result.seconds = time.perf_counter() - started
        app.close()
    result.peak_rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return result


def save(keep: Path | None, seed: int, index: int, raw: bytes) -> None:
    if keep is not None:
        keep.mkdir(parents=True, exist_ok=True)
        (keep / f"seed{seed}-{index}.eml").write_bytes(raw)


def merge(results: list[WorkerResult]) -> WorkerResult:
    total = WorkerResult()
    for result in results:
        total.messages += result.messages
        total.seconds = max(total.seconds, result.seconds)
        total.states.update(result.states)
        total.reasons.update(result.reasons)
        total.mutations.update(result.mutations)
        for mine, theirs in ((total.problems, result.problems), (total.parser_exceptions, result.parser_exceptions)):
            for category, (count, index) in theirs.items():
                entry = mine.setdefault(category, [0, index])
                entry[0] += count
                entry[1] = min(entry[1], index)
        total.slowest = max(total.slowest, result.slowest)
        total.slow.extend(result.slow)
        total.peak_rss_mib = max(total.peak_rss_mib, result.peak_rss_mib)
    return total


def print_report(args: argparse.Namespace, total: WorkerResult, wall: float) -> None:
    print(f"seed {args.seed}, {args.workers} worker(s), {total.messages} of {args.count} messages ingested")
    rate = total.messages / wall
    print(f"wall time {wall:.1f} s = {rate:.0f} messages/s; peak RSS per worker {total.peak_rss_mib:.0f} MiB")
    seconds, index = total.slowest
    print(f"slowest message: index {index}, {seconds:.2f} s; over {SLOW_SECONDS:.0f} s: {len(total.slow)}")
    print("states:")
    for state, count in total.states.most_common():
        print(f"  {state:12} {count:7d}")
    print("most common quarantine reasons:")
    for reason, count in total.reasons.most_common(10):
        print(f"  {count:7d}  {reason}")
    print("mutations applied:", ", ".join(f"{name} {count}" for name, count in total.mutations.most_common()))
    print("unexpected exceptions inside parse_message, quarantined with the wrapped reason (count, first index):")
    for name, (count, index) in sorted(total.parser_exceptions.items(), key=lambda entry: -entry[1][0]):
        print(f"  {count:7d}  index {index}: {name}")
    if not total.problems:
        print("problems: none (nothing raised, every quarantine has a reason, no registering failure)")
        return
    print("problems (count, first index; rebuild with --seed S --only INDEX):")
    for category, (count, index) in sorted(total.problems.items(), key=lambda entry: -entry[1][0]):
        print(f"  {count:7d}  index {index}: {category}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=100_000, help="number of damaged messages (default 100000)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the mutations (default 1)")
    parser.add_argument(
        "--workers", type=int, default=os.cpu_count() or 1, help="processes, each with its own database"
    )
    parser.add_argument("--only", type=int, help="ingest only message INDEX of this seed (to reproduce a problem)")
    parser.add_argument(
        "--keep", type=Path, help="folder to write every message with a problem to, as seed<S>-<INDEX>.eml"
    )
    parser.add_argument(
        "--workdir", type=Path, help="folder for the databases and archives (default: a temporary one, deleted)"
    )
    args = parser.parse_args()

    # tmpfs makes fsync free, so the run measures the loop and not the disk.
    shm = Path("/dev/shm")
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="zwxx-fuzz-", dir=shm if shm.is_dir() else None))
    started = time.perf_counter()
    try:
        if args.only is not None:
            args.count, args.workers = 1, 1
            raw, applied = mutate(load_corpus(), args.seed, args.only)
            print(f"message {args.only} of seed {args.seed}: {len(raw)} bytes, mutations {', '.join(applied)}")
            save(args.keep, args.seed, args.only, raw)
            results = [run_worker(args.seed, args.only, args.only + 1, args.only + 1, workdir / "only", args.keep)]
        else:
            with ProcessPoolExecutor(max_workers=args.workers) as pool:
                futures = [
                    pool.submit(
                        run_worker, args.seed, worker, args.workers, args.count, workdir / f"w{worker}", args.keep
                    )
                    for worker in range(args.workers)
                ]
                results = [future.result() for future in futures]
    finally:
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    total = merge(results)
    print_report(args, total, time.perf_counter() - started)
    sys.exit(1 if total.problems else 0)


if __name__ == "__main__":
    main()
