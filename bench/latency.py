"""Push latency with IDLE: time from APPEND of a message to its row being registered by ``zwxx run``.

The script starts a throwaway Dovecot on 127.0.0.1, an SMTP sink (daemon.embedded.SmtpSink) for the
receipts, and ``zwxx run`` as a subprocess on a fresh SQLite database. It waits until one warm-up
message is registered, then appends ``--count`` generated messages (the ones of
bench/ingest_compare.py) one at a time, ``--spacing`` seconds apart by a fixed schedule, over
one logged-in IMAP connection. A watcher thread reads the database every ``--poll-ms``
milliseconds. A message counts as registered when its row is committed with its item,
which happens in one transaction. The latency is that moment minus the start of its APPEND.

Run from the repository root:  python -m bench.latency --count 200 --spacing 0.3
"""

from __future__ import annotations

import argparse
import re
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from bench.common import write_config
from bench.ingest_compare import describe_machine, generate_messages
from daemon.embedded import SmtpSink
from tests.servers.dovecot import DovecotServer, find_dovecot_executable, read_dovecot_version
from tests.servers.handle import ImapServerHandle, ImapServerKind

SMTP_PORT_LINE = re.compile(r"^(\[smtp\]\nhost = \"127\.0\.0\.1\"\nport = )9$", re.MULTILINE)
REGISTERED_QUERY = """
SELECT m.id, m.message_id, (SELECT count(*) FROM items AS i WHERE i.message_db_id = m.id)
FROM messages AS m WHERE m.id > ? ORDER BY m.id
"""


class RegistrationWatcher(threading.Thread):
    """Thread that reads new message rows from the daemon's SQLite database and records when each was first seen."""

    def __init__(self, database: Path, interval: float) -> None:
        super().__init__(name="registration-watcher", daemon=True)
        self.database = database
        self.interval = interval
        self.seen: dict[str, tuple[float, int]] = {}  # Message-ID -> (perf_counter, item count)
        self.stop_event = threading.Event()
        self.lock = threading.Lock()

    def run(self) -> None:
        connection = sqlite3.connect(f"file:{self.database}?mode=ro", uri=True, timeout=5)
        last_id = 0
        try:
            while not self.stop_event.is_set():
                rows = connection.execute(REGISTERED_QUERY, (last_id,)).fetchall()
                now = time.perf_counter()
                with self.lock:
                    for row_id, message_id, items in rows:
                        self.seen[message_id] = (now, items)
                        last_id = max(last_id, row_id)
                self.stop_event.wait(self.interval)
        finally:
            connection.close()

    def wait_for(self, message_id: str, timeout: float) -> tuple[float, int] | None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if message_id in self.seen:
                    return self.seen[message_id]
            time.sleep(self.interval)
        return None


def message_id_of(raw: bytes) -> str:
    found = re.search(rb"^Message-ID: (<[^>]+>)", raw, re.MULTILINE | re.IGNORECASE)
    if found is None:
        raise ValueError("generated message has no Message-ID")
    return found.group(1).decode()


def write_daemon_config(workdir: Path, handle: ImapServerHandle, smtp_port: int) -> Path:
    """Write bench/common.py's configuration with the SMTP sink's port instead of the discard port."""
    config = write_config(
        workdir / "config.toml",
        port=handle.port,
        user=handle.user,
        password=handle.password,
        database_url=f"sqlite:///{workdir / 'zwxx.db'}",
        archive=workdir / "archive",
    )
    text, replaced = SMTP_PORT_LINE.subn(rf"\g<1>{smtp_port}", config.read_text(encoding="utf-8"))
    if replaced != 1:
        raise RuntimeError(f"cannot find the SMTP port line in {config}; has bench/common.py changed?")
    config.write_text(text, encoding="utf-8")
    return config


def percentile(values: list[float], fraction: float) -> float:
    """Return the ``fraction`` quantile of ``values`` by linear interpolation between closest ranks."""
    ordered = sorted(values)
    position = (len(ordered) - 1) * fraction
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def stop_daemon(process: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    """Stop ``zwxx run`` by its PID with SIGTERM, the daemon's normal stop; kill it only after ``timeout``."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=200, help="messages appended one at a time (default 200)")
    parser.add_argument("--spacing", type=float, default=0.3, help="seconds between the starts of two APPENDs")
    parser.add_argument("--poll-ms", type=float, default=5.0, help="milliseconds between two database reads")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for one message's row")
    args = parser.parse_args()
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]  # progress shows when redirected

    executable = find_dovecot_executable()
    if executable is None:
        raise SystemExit("dovecot not found: install dovecot-imapd; this benchmark needs Dovecot")
    print(describe_machine())
    print(f"Dovecot {read_dovecot_version(executable)}")
    raws = generate_messages(args.count + 1, tag="latency")
    warmup, raws = raws[0], raws[1:]

    workdir = Path(tempfile.mkdtemp(prefix="zwxx-latency-"))
    server = DovecotServer(user="bench", password="bench-pass")
    sink = SmtpSink()
    daemon: subprocess.Popen[bytes] | None = None
    watcher: RegistrationWatcher | None = None
    try:
        server.start()
        sink.start()
        assert sink.port is not None
        handle = ImapServerHandle(ImapServerKind.DOVECOT, server)
        config = write_daemon_config(workdir, handle, sink.port)
        zwxx = str(Path(sys.executable).with_name("zwxx"))
        subprocess.run([zwxx, "--config", str(config), "init"], check=True, capture_output=True)
        with (workdir / "daemon.log").open("wb") as log:
            daemon = subprocess.Popen(
                [zwxx, "--config", str(config), "run"], stdin=subprocess.DEVNULL, stdout=log, stderr=log
            )
        print(f"zwxx run: pid {daemon.pid}; Dovecot pid {server.pid}; SMTP sink on port {sink.port}")

        watcher = RegistrationWatcher(workdir / "zwxx.db", args.poll_ms / 1000)
        watcher.start()
        with handle.client() as client:
            started = time.perf_counter()
            client.append("INBOX", warmup)
            if watcher.wait_for(message_id_of(warmup), 60) is None:
                raise RuntimeError(f"the warm-up message was not registered; see {workdir / 'daemon.log'}")
            print(f"warm-up message registered {time.perf_counter() - started:.2f} s after its APPEND")
            time.sleep(2)  # let the receipt go out and the daemon return to IDLE

            appended: list[tuple[str, float, float]] = []  # Message-ID, APPEND start, APPEND end
            schedule = time.perf_counter()
            for index, raw in enumerate(raws):
                pause = schedule + index * args.spacing - time.perf_counter()
                if pause > 0:
                    time.sleep(pause)
                begun = time.perf_counter()
                client.append("INBOX", raw)
                appended.append((message_id_of(raw), begun, time.perf_counter()))

        latencies: list[float] = []
        append_seconds: list[float] = []
        missing = without_item = 0
        for message_id, begun, ended in appended:
            result = watcher.wait_for(message_id, args.timeout)
            append_seconds.append(ended - begun)
            if result is None:
                missing += 1
                continue
            seen_at, items = result
            without_item += items == 0
            latencies.append(seen_at - begun)
        time.sleep(3)
        receipts = len(sink.received)
    finally:
        if watcher is not None:
            watcher.stop_event.set()
            watcher.join(5)
        if daemon is not None:
            stop_daemon(daemon)
            print(f"zwxx run exited with code {daemon.returncode}")
        sink.stop()
        server.cleanup()
        log_path = workdir / "daemon.log"
        log_tail = log_path.read_text(encoding="utf-8", errors="replace")[-3000:] if log_path.exists() else ""
        shutil.rmtree(workdir, ignore_errors=True)

    if missing or without_item:
        print(f"daemon log (tail):\n{log_tail}")
    print(
        f"{len(appended)} APPENDs, {args.spacing} s apart; {len(latencies)} registered "
        f"({missing} not within {args.timeout} s, {without_item} without an item); "
        f"{receipts} receipts reached the SMTP sink (warm-up included)"
    )
    print(f"APPEND command itself: median {statistics.median(append_seconds) * 1000:.1f} ms")
    if latencies:
        print("| APPEND to registered | p50 | p95 | max | mean |\n|---|---|---|---|---|")
        p50, p95 = percentile(latencies, 0.50), percentile(latencies, 0.95)
        print(f"| seconds | {p50:.3f} | {p95:.3f} | {max(latencies):.3f} | {statistics.mean(latencies):.3f} |")
        print(f"goal p95 < 1 s: {'met' if p95 < 1 and not missing else 'not met'}")


if __name__ == "__main__":
    main()
