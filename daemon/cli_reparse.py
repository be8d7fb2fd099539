"""`zwxx reparse`: re-run extraction on stored raw mail after an upgrade."""

from __future__ import annotations

import argparse


def add_commands(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the reparse subcommand to the CLI's subparsers."""
