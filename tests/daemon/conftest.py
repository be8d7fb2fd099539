"""Fixtures for daemon tests: a configuration file pointing at the test servers and database."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from daemon.app import App, build_app
from daemon.clock import SystemClock
from daemon.config import Settings, load_settings
from daemon.db import upgrade_database
from daemon.embedded import SmtpSink
from tests.servers.handle import ImapServerHandle

MAILBOX = "zwxx@tourism.example.gov.cn"

CONFIG_TEMPLATE = """\
[general]
timezone = "Asia/Shanghai"
log_level = "DEBUG"

[imap]
host = "127.0.0.1"
port = {imap_port}
security = "plain"
username = "{imap_user}"
password = "{imap_password}"
batch_size = {batch_size}
idle_timeout = 30
poll_interval = {poll_interval}
reconnect_max_delay = 2
{imap_extra}

[smtp]
host = "127.0.0.1"
port = {smtp_port}
security = "plain"
from_address = "{mailbox}"

[database]
url = "{database_url}"

[archive]
dir = "archive"

[office]
addresses = ["xxb@tourism.example.gov.cn"]
leaders = ["leader@tourism.example.gov.cn"]

[units]
file = "{units_file}"

[outbox]
retry_initial = 1
retry_max = 2
send_interval = 1

[approval]
secret = "{approval_secret}"
{approval_extra}
{extra}
"""

APPROVAL_SECRET = "test-approval-secret-0123456789abcdef"


WriteConfig = Callable[..., Path]


@pytest.fixture
def antiword() -> str:
    """Path of antiword; required under CI=true, where .ci/run installs it."""
    path = shutil.which("antiword")
    if path is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("antiword is required under CI=true (apt-get install antiword)", pytrace=False)
        pytest.skip("antiword not installed")
    return path


@pytest.fixture
def units_file(shared_dir: Path) -> Path:
    return shared_dir / "corpus" / "units.toml"


@pytest.fixture
def write_config(
    tmp_path: Path, imap: ImapServerHandle, smtp_sink: SmtpSink, database_url: str, units_file: Path
) -> WriteConfig:
    """Return a function that writes a config file for the test servers; keyword args override keys."""

    def write(
        *,
        batch_size: int = 100,
        imap_extra: str = "",
        name: str = "config.toml",
        poll_interval: int = 1,
        imap_port: int | None = None,
        approval_extra: str = "",
        extra: str = "",
    ) -> Path:
        path = tmp_path / name
        path.write_text(
            CONFIG_TEMPLATE.format(
                imap_port=imap_port or imap.port,
                poll_interval=poll_interval,
                imap_user=imap.user,
                imap_password=imap.password,
                batch_size=batch_size,
                imap_extra=imap_extra,
                smtp_port=smtp_sink.port,
                mailbox=MAILBOX,
                database_url=database_url,
                units_file=units_file.as_posix(),
                approval_secret=APPROVAL_SECRET,
                approval_extra=approval_extra,
                extra=extra,
            ),
            encoding="utf-8",
        )
        return path

    return write


@pytest.fixture
def settings(write_config: WriteConfig) -> Settings:
    return load_settings(write_config())


@pytest.fixture
def app(settings: Settings) -> Iterator[App]:
    """An App on a migrated database, closed after the test."""
    application = build_app(settings, clock=SystemClock())
    upgrade_database(application.engine)
    application.context.archive.ensure()
    try:
        yield application
    finally:
        application.close()
