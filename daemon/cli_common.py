"""Helpers shared by the CLI's command modules."""

from __future__ import annotations

import argparse

from daemon.app import App, build_app
from daemon.config import load_settings
from daemon.db import is_up_to_date
from daemon.errors import DaemonError
from daemon.logsetup import setup_logging


def open_app(args: argparse.Namespace, *, require_schema: bool = True) -> App:
    """Load the settings named by ``--config`` and open the database; the caller closes the App.

    Raises:
        ConfigError: the configuration or the units file is invalid.
        DaemonError: ``require_schema`` is set and the database is not at the newest migration.
    """
    settings = load_settings(args.config)
    # Only the daemon logs at the configured level; one-off commands print their result and
    # log warnings and errors only, unless --verbose is given.
    daemon_mode = args.command == "run" or args.verbose
    setup_logging(settings.general.log_level if daemon_mode else "WARNING")
    app = build_app(settings)
    if require_schema and not is_up_to_date(app.engine):
        app.close()
        raise DaemonError("数据库尚未初始化或版本过旧：请先运行 zwxx init")
    return app
