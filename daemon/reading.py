"""Reading raw mail into ParsedMessage: in the daemon's own process, or in worker processes for a backlog.

Parsing is the part of intake that needs no database, so a backlog's messages are parsed by a
pool of worker processes while the daemon's process stores the batch before (daemon.intake).
A worker may die on a message, from a crash inside a parser or because the kernel ends it for
memory. The poll goes on: that message is quarantined with the reason, and the others are
parsed again in a new pool.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import threading
import time
import traceback
import zoneinfo
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from datetime import datetime

from daemon.config import DocumentSettings, Settings
from daemon.convert import convert_legacy_documents
from parsers.errors import MessageParseError
from parsers.message import parse_message
from parsers.model import ParsedMessage

log = logging.getLogger(__name__)

WORKER_DIED_REASON = "解析这封邮件时解析进程异常退出（邮件或附件可能已损坏，或过于复杂），未能读取内容"


@dataclass(frozen=True)
class ParseFailure:
    """Why a raw mail could not be parsed: a user-facing reason and the traceback."""

    reason: str
    detail: str


def read_raw(
    tz: zoneinfo.ZoneInfo, documents: DocumentSettings, raw: bytes, internaldate: datetime | None
) -> ParsedMessage | ParseFailure:
    """Parse ``raw`` and convert its legacy documents when a converter is configured; never raises."""
    try:
        parsed = parse_message(raw, default_tz=tz, internaldate=internaldate, limits=documents.limits())
    except MessageParseError as exc:
        log.warning("message cannot be parsed: %s", exc.__cause__ or exc)
        return ParseFailure(exc.reason, traceback.format_exc())
    except Exception as exc:  # noqa: BLE001 - a parser that breaks its contract still must not stop the loop
        log.error("parser raised %s instead of MessageParseError", type(exc).__name__)
        return ParseFailure(f"邮件无法解析：{type(exc).__name__}: {exc}", traceback.format_exc())
    try:
        return convert_legacy_documents(parsed, documents)
    except Exception as exc:  # noqa: BLE001 - the same holds for the .doc converter step
        log.error("converting legacy documents raised %s", type(exc).__name__)
        return ParseFailure(f"附件转换出错：{type(exc).__name__}: {exc}", traceback.format_exc())


# The worker process's settings, set once by _start_worker.
_worker_settings: tuple[zoneinfo.ZoneInfo, DocumentSettings] | None = None


# How often a worker checks that the daemon that started it is still alive, in seconds.
PARENT_CHECK_SECONDS = 1.0


def _start_worker(tz_name: str, documents: DocumentSettings, log_level: int, daemon_pid: int) -> None:
    from daemon.logsetup import setup_logging

    global _worker_settings
    setup_logging(logging.getLevelName(log_level))
    _worker_settings = (zoneinfo.ZoneInfo(tz_name), documents)
    # The daemon's pid comes from the daemon: if it died while this worker started, getppid() here
    # would already name the process that adopted the worker.
    threading.Thread(target=_exit_with_parent, args=(daemon_pid,), name="parent-watch", daemon=True).start()


def _exit_with_parent(parent: int) -> None:
    """End this worker once the daemon that started it is gone (killed with SIGKILL, say).

    The pool's queues are shared by all workers, which keep their ends open. A worker waiting for
    a task therefore gets no end-of-file when the daemon dies, and would wait forever.
    """
    while True:
        time.sleep(PARENT_CHECK_SECONDS)
        if os.getppid() != parent:
            os._exit(0)


def _read_in_worker(raw: bytes, internaldate: datetime | None) -> ParsedMessage | ParseFailure:
    assert _worker_settings is not None, "worker started without _start_worker"
    return read_raw(*_worker_settings, raw, internaldate)


class ParsePool:
    """Worker processes that parse raw mail; results come back in the order the mail went in.

    Workers are started with "spawn", not fork: the daemon's process has threads (the outbox
    sender, the scheduler) whose locks a forked child would inherit.
    """

    # After this many worker deaths in one pool's life, the cause is taken to be the pool itself,
    # not the mail: the remaining messages are parsed in the daemon's process.
    MAX_DEATHS = 3

    def __init__(
        self,
        settings: Settings,
        workers: int,
        *,
        reader: Callable[[bytes, datetime | None], ParsedMessage | ParseFailure] = _read_in_worker,
    ) -> None:
        """Start ``workers`` processes; ``reader`` is what they run for each mail (tests pass their own)."""
        self.workers = workers
        self._reader = reader
        self._tz, self._documents = settings.tz, settings.documents
        self._initargs = (
            settings.general.timezone,
            settings.documents,
            logging.getLogger().getEffectiveLevel(),
            os.getpid(),
        )
        self._executor = self._new_executor()
        self.deaths = 0

    def _new_executor(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(
            max_workers=self.workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_start_worker,
            initargs=self._initargs,
        )

    def submit(self, raw: bytes, internaldate: datetime | None) -> Future[ParsedMessage | ParseFailure]:
        return self._executor.submit(self._reader, raw, internaldate)

    def collect(
        self, futures: Sequence[Future[ParsedMessage | ParseFailure]], mails: Sequence[tuple[bytes, datetime | None]]
    ) -> list[ParsedMessage | ParseFailure]:
        """Wait for the results of ``futures``, submitted for ``mails``; never raises for a dead worker.

        When a worker died, the pool is replaced and each message without a result is parsed
        again on its own, so the message that kills a worker again is the one quarantined.
        """
        results: list[ParsedMessage | ParseFailure | None] = []
        for future, mail in zip(futures, mails, strict=True):
            try:
                results.append(future.result())
            except BrokenProcessPool:
                results.append(None)
            except Exception as exc:  # noqa: BLE001 - e.g. a value that cannot be passed between processes
                log.error("a parse worker could not take or return a message (%s); parsing it here", exc)
                results.append(read_raw(self._tz, self._documents, *mail))
        if all(result is not None for result in results):
            return results  # type: ignore[return-value]
        log.error("a parse worker died; parsing the %d affected message(s) one at a time", results.count(None))
        self._replace_executor()
        for index, result in enumerate(results):
            if result is None:
                results[index] = self._read_alone(*mails[index])
        return results  # type: ignore[return-value]

    def _replace_executor(self) -> None:
        self.deaths += 1
        self._executor.shutdown(wait=False, cancel_futures=True)
        self._executor = self._new_executor()

    def _read_alone(self, raw: bytes, internaldate: datetime | None) -> ParsedMessage | ParseFailure:
        if self.deaths >= self.MAX_DEATHS:
            return read_raw(self._tz, self._documents, raw, internaldate)
        try:
            return self.submit(raw, internaldate).result()
        except BrokenProcessPool:
            self._replace_executor()
            if self.deaths >= self.MAX_DEATHS:
                log.error("parse workers died %d times; parsing in this process from now on", self.deaths)
                return read_raw(self._tz, self._documents, raw, internaldate)
            log.error("a parse worker died again on one message of %d bytes; it is quarantined", len(raw))
            return ParseFailure(WORKER_DIED_REASON, "BrokenProcessPool: the worker process ended while parsing")

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)
