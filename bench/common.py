"""Shared set-up of the benchmarks: where the reference data is and the daemon's configuration."""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("ZWXX_SHARED", REPO.parent / "shared"))

_CONFIG = """\
[general]
log_level = "WARNING"
[imap]
host = "127.0.0.1"
port = {port}
security = "plain"
username = "{user}"
password = "{password}"
batch_size = 100
[smtp]
host = "127.0.0.1"
port = 9
security = "plain"
from_address = "zwxx@tourism.example.gov.cn"
[database]
url = "{database_url}"
[archive]
dir = "{archive}"
[units]
file = "{units}"
"""


def write_config(path: Path, *, port: int, user: str, password: str, database_url: str, archive: Path) -> Path:
    """Write a configuration for a loopback IMAP server and the corpus units file; return ``path``.

    The SMTP port is 9 (discard): the benchmarks queue receipts but never send them.
    """
    path.write_text(
        _CONFIG.format(
            port=port,
            user=user,
            password=password,
            database_url=database_url,
            archive=archive.as_posix(),
            units=(SHARED / "corpus" / "units.toml").as_posix(),
        ),
        encoding="utf-8",
    )
    return path
