"""Logging set-up: one line per record, fit for journald (no timestamps when run under systemd)."""

from __future__ import annotations

import logging
import os
import sys


def setup_logging(level: str = "INFO") -> None:
    """Configure the root logger once; the ``zwxx.audit`` logger carries per-message outcomes."""
    under_journald = bool(os.environ.get("JOURNAL_STREAM"))
    fmt = "%(levelname)s %(name)s: %(message)s" if under_journald else "%(asctime)s %(levelname)s %(name)s: %(message)s"
    root = logging.getLogger()
    if not any(getattr(h, "_zwxx", False) for h in root.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter(fmt))
        handler._zwxx = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    root.setLevel(level.upper())
    # imapclient logs every command at DEBUG; keep it quiet unless asked for.
    logging.getLogger("imapclient").setLevel(max(logging.INFO, root.level))
    # mail-parser warns about every MIME type it does not handle itself (e.g. the rfc822-headers part
    # of a bounce) and logs its own failures with a traceback. parsers.message reads those parts
    # itself and logs a failure once, so only mail-parser's critical records show.
    logging.getLogger("mailparser").setLevel(logging.CRITICAL)
    # APScheduler logs every run of every job at INFO; the jobs log what they did themselves.
    logging.getLogger("apscheduler").setLevel(max(logging.WARNING, root.level))
    # Alembic reports each migration step at INFO; `zwxx init` prints its own summary.
    logging.getLogger("alembic").setLevel(max(logging.WARNING, root.level))
