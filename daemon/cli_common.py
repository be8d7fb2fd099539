"""Helpers shared by the CLI's command modules."""

from __future__ import annotations

import argparse
from pathlib import Path

from sqlalchemy.engine import make_url

from daemon.app import App, build_app
from daemon.config import load_settings
from daemon.db import is_up_to_date
from daemon.errors import DaemonError
from daemon.logsetup import setup_logging


def open_app(args: argparse.Namespace, *, require_schema: bool = True, require_secrets: bool = False) -> App:
    """Load the settings named by ``--config`` and open the database; the caller closes the App.

    Raises:
        ConfigError: the configuration or the units file is invalid.
        DaemonError: ``require_schema`` is set and the database is not at the newest migration.

    Only commands that talk to the mail servers pass ``require_secrets``; reading the register
    needs no mail password.
    """
    settings = load_settings(args.config, require_secrets=require_secrets)
    # Only the daemon logs at the configured level. One-off commands print their result in Chinese
    # and log errors only, unless --verbose is given, because their warnings are repeated there.
    daemon_mode = args.command == "run" or args.verbose
    setup_logging(settings.general.log_level if daemon_mode else "ERROR")
    database = make_url(settings.database.url)
    if require_schema and database.get_backend_name() == "sqlite" and database.database:
        if not Path(database.database).exists():
            raise DaemonError(f"数据库尚未初始化（数据库文件 {database.database} 不存在）：请先运行 zwxx init")
    app = build_app(settings)
    if require_schema and not is_up_to_date(app.engine):
        app.close()
        raise DaemonError("数据库尚未初始化或版本过旧：请先运行 zwxx init")
    return app
