"""Loopback mail servers for `zwxx demo` and the tests: pymap's in-memory IMAP server and an SMTP sink.

Both listen on 127.0.0.1 only, on a free port unless one is given, and are stopped by the object
that started them (the IMAP server by its process id).
"""

from __future__ import annotations

import datetime as dt
import enum
import logging
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Self

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from daemon.errors import DaemonError

logger = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"


class EmbeddedServerError(DaemonError):
    """An embedded server could not be started; the message is user-facing Chinese."""


def find_free_port(host: str = LOOPBACK) -> int:
    """Return a TCP port that was free on ``host`` a moment ago.

    Another process may take it before the caller binds it, so callers retry on "address in use".
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        port: int = probe.getsockname()[1]
    return port


def read_imap_greeting(host: str, port: int, timeout: float = 1.0) -> bytes | None:
    """Connect once and return the server's first line, or None when nothing accepts the connection."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as connection:
            with connection.makefile("rb") as stream:
                return stream.readline()
    except OSError:
        return None


def find_pymap_executable() -> Path:
    """Locate the ``pymap`` console script, preferring the one next to the running interpreter.

    Raises:
        EmbeddedServerError: pymap is not installed.
    """
    beside_python = Path(sys.executable).parent / "pymap"
    if beside_python.is_file():
        return beside_python

    on_path = shutil.which("pymap")
    if on_path is not None:
        return Path(on_path)

    raise EmbeddedServerError("找不到 pymap 程序：请在本程序所在的虚拟环境中执行 pip install pymap。")


class EmbeddedImapServer:
    """pymap's in-memory ``dict`` backend as a subprocess, with one account and an empty INBOX.

    Mail lives in the process's memory, so ``stop()`` loses it and ``start()`` begins empty again,
    on the same port. Use it as a context manager or call ``start()`` and ``stop()``.
    """

    def __init__(
        self,
        *,
        user: str = "demo",
        password: str = "demo",
        host: str = LOOPBACK,
        port: int | None = None,
        startup_timeout: float = 15.0,
    ) -> None:
        self.user = user
        self.password = password
        self.host = host
        self.port = port
        self.startup_timeout = startup_timeout
        self.startup_seconds: float | None = None
        self._fixed_port = port is not None
        self._process: subprocess.Popen[bytes] | None = None
        self._stderr: IO[bytes] | None = None

    @property
    def pid(self) -> int | None:
        """Process id of the running server, or None when stopped."""
        return self._process.pid if self._process is not None else None

    @property
    def running(self) -> bool:
        """Whether the server process is alive."""
        return self._process is not None and self._process.poll() is None

    def start(self) -> None:
        """Start pymap and wait until it sends an IMAP greeting.

        Raises:
            EmbeddedServerError: pymap is missing, exited, or sent no greeting within ``startup_timeout``.
        """
        if self.running:
            return

        executable = find_pymap_executable()
        attempts = 1 if self._fixed_port else 5
        started_at = time.monotonic()
        for attempt in range(1, attempts + 1):
            port = self.port if self._fixed_port and self.port is not None else find_free_port(self.host)
            self.port = port
            if self._launch(executable, port):
                self._fixed_port = True  # a restart must come back on the same port
                self.startup_seconds = time.monotonic() - started_at
                logger.info("pymap started: pid %s, port %s, %.2f s", self.pid, self.port, self.startup_seconds)
                return
            logger.warning("pymap did not start on port %s (attempt %d of %d)", self.port, attempt, attempts)

        raise EmbeddedServerError(
            f"内置 IMAP 服务器（pymap）未能在 {self.host}:{self.port} 启动：{self._read_stderr_tail()}"
        )

    def _launch(self, executable: Path, port: int) -> bool:
        """Run one pymap process and return whether it greeted before the timeout; clean up if not."""
        self._close_stderr()
        self._stderr = tempfile.TemporaryFile(prefix="zwxx-pymap-")
        command = [
            str(executable),
            "--host", self.host,
            "--port", str(port),
            "--no-tls",
            "dict",
            "--demo-user", self.user,
            "--demo-password", self.password,
        ]  # fmt: skip
        # Without --demo-data the dict backend starts with an empty INBOX and no other folders.
        self._process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=self._stderr
        )

        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                self._process = None
                return False
            greeting = read_imap_greeting(self.host, port)
            if greeting is not None and greeting.startswith(b"* OK"):
                return True
            time.sleep(0.02)

        self.stop()
        return False

    def _read_stderr_tail(self) -> str:
        if self._stderr is None:
            return "没有输出"
        self._stderr.seek(0)
        tail = self._stderr.read()[-2000:].decode("utf-8", errors="replace").strip()
        return tail or "没有输出"

    def _close_stderr(self) -> None:
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None

    def stop(self, timeout: float = 5.0) -> None:
        """Terminate the server by its process id, killing it if it has not exited after ``timeout`` s."""
        process = self._process
        if process is None:
            return

        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                logger.warning("pymap pid %s ignored SIGTERM for %.1f s; killing it", process.pid, timeout)
                process.kill()
                process.wait(timeout)
        logger.info("pymap stopped: pid %s, exit code %s", process.pid, process.returncode)
        self._process = None
        self._close_stderr()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


@dataclass(frozen=True)
class ReceivedMail:
    """One mail as the SMTP sink received it: the envelope addresses and the DATA bytes unchanged."""

    mail_from: str
    rcpt_tos: list[str]
    data: bytes


class SinkMode(enum.Enum):
    """Reply of the sink to the DATA command."""

    ACCEPT = "accept"
    REJECT = "reject"


class _SinkHandler:
    """aiosmtpd handler that hands each DATA to its ``SmtpSink``."""

    def __init__(self, sink: SmtpSink) -> None:
        self._sink = sink

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        return self._sink.record_envelope(envelope)


class SmtpSink:
    """An aiosmtpd server on 127.0.0.1 that records every mail it accepts.

    ``reject()`` makes it reply to DATA with an error (451 by default), which simulates an outage
    of a server that still accepts connections. ``stop()`` simulates a server that is down, and
    ``start()`` listens again on the same port.
    """

    def __init__(
        self,
        *,
        host: str = LOOPBACK,
        port: int | None = None,
        spool_dir: Path | None = None,
        data_size_limit: int = 64 * 1024 * 1024,
    ) -> None:
        self.host = host
        self.port = port
        self.spool_dir = spool_dir
        self.data_size_limit = data_size_limit
        self.mode = SinkMode.ACCEPT
        self.reject_reply = "451 4.3.0 Mail sink is rejecting mail for a test"
        self.rejected_count = 0
        self._received: list[ReceivedMail] = []
        self._accepted_total = 0  # not reset by clear(), so spool file names stay unique
        self._condition = threading.Condition()
        self._controller: Controller | None = None

    @property
    def running(self) -> bool:
        """Whether the sink is listening."""
        return self._controller is not None

    @property
    def received(self) -> list[ReceivedMail]:
        """A copy of the mails received so far, oldest first."""
        with self._condition:
            return list(self._received)

    def start(self) -> None:
        """Listen on ``port`` (a free one the first time if none was given)."""
        if self._controller is not None:
            return
        if self.port is None:
            self.port = find_free_port(self.host)
        if self.spool_dir is not None:
            self.spool_dir.mkdir(parents=True, exist_ok=True)

        controller = Controller(
            _SinkHandler(self),
            hostname=self.host,
            port=self.port,
            enable_SMTPUTF8=True,
            data_size_limit=self.data_size_limit,
        )
        controller.start()
        self._controller = controller
        logger.info("SMTP sink listening on %s:%s", self.host, self.port)

    def stop(self) -> None:
        """Stop listening; received mail is kept until ``clear()``."""
        if self._controller is None:
            return
        self._controller.stop()
        self._controller = None
        logger.info("SMTP sink on %s:%s stopped", self.host, self.port)

    def reject(self, reply: str = "451 4.3.0 Mail sink is rejecting mail for a test") -> None:
        """Reply to every following DATA command with ``reply``, a full SMTP reply line like "554 5.0.0 x"."""
        self.reject_reply = reply
        self.mode = SinkMode.REJECT

    def accept(self) -> None:
        """Accept mail again after ``reject()``."""
        self.mode = SinkMode.ACCEPT

    def clear(self) -> None:
        """Forget the mails received so far (spooled files stay)."""
        with self._condition:
            self._received.clear()
            self.rejected_count = 0

    def wait_for(self, count: int, timeout: float = 10.0) -> list[ReceivedMail]:
        """Wait until at least ``count`` mails have arrived and return all of them.

        Raises:
            TimeoutError: fewer than ``count`` mails arrived within ``timeout`` seconds.
        """
        with self._condition:
            arrived = self._condition.wait_for(lambda: len(self._received) >= count, timeout)
            if not arrived:
                raise TimeoutError(f"SMTP sink received {len(self._received)} of {count} expected mails in {timeout} s")
            return list(self._received)

    def record_envelope(self, envelope: Envelope) -> str:
        """Record one mail, or count it as rejected; return the SMTP reply for DATA."""
        if self.mode is SinkMode.REJECT:
            with self._condition:
                self.rejected_count += 1
            return self.reject_reply

        data = envelope.original_content
        if data is None:
            # aiosmtpd 1.4 sets original_content for every DATA; fall back to the decoded content.
            content = envelope.content
            data = content.encode("utf-8") if isinstance(content, str) else (content or b"")
        mail = ReceivedMail(
            mail_from=envelope.mail_from or "",
            rcpt_tos=list(envelope.rcpt_tos),
            data=bytes(data),
        )

        with self._condition:
            self._received.append(mail)
            self._accepted_total += 1
            index = self._accepted_total
            self._condition.notify_all()
        if self.spool_dir is not None:
            self._write_spool_file(index, mail)
        return "250 OK"

    def _write_spool_file(self, index: int, mail: ReceivedMail) -> None:
        if self.spool_dir is None:
            return
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S")
        path = self.spool_dir / f"{stamp}-{os.getpid()}-{index:05d}.eml"
        path.write_bytes(mail.data)
        logger.info("SMTP sink wrote mail %d to %s", index, path)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
