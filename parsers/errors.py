"""The one exception the parsers raise for a message they cannot read."""

from __future__ import annotations


class MessageParseError(Exception):
    """A raw mail could not be parsed; ``reason`` is a short user-facing Chinese explanation.

    ``parse_message`` raises only this, chained with ``from`` to whatever failed inside, so the
    daemon can quarantine the message with the reason and keep the traceback.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
