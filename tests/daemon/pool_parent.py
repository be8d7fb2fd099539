"""A stand-in for the daemon in test_parse_pool: starts a ParsePool, prints its workers' pids, then waits.

Run as ``python -m tests.daemon.pool_parent CONFIG [early]``; the test kills it with SIGKILL.
With ``early`` the pids are printed as soon as the workers are started, while they still import.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from daemon.config import load_settings
from daemon.reading import ParsePool

if __name__ == "__main__":
    pool = ParsePool(load_settings(Path(sys.argv[1])), 2)
    raw = b"From: a@example.gov.cn\r\nSubject: test\r\n\r\nbody\r\n"
    futures = [pool.submit(raw, None) for _ in range(4)]
    if sys.argv[2:] != ["early"]:
        pool.collect(futures, [(raw, None)] * 4)
    print(" ".join(str(pid) for pid in pool._executor._processes), flush=True)  # noqa: SLF001
    time.sleep(600)
