"""`zwxx quarantine` subcommands (list, show, release, discard)."""

from __future__ import annotations

import argparse


def add_commands(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the quarantine subcommands to the CLI's subparsers."""
