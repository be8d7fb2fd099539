"""Exception hierarchy of the daemon.

Configuration errors are fatal at start; operational errors are isolated per account, folder
or message and logged.
"""


class DaemonError(Exception):
    """Base class of every error the daemon raises on purpose."""


class ConfigError(DaemonError):
    """The configuration or a file it names is invalid; the program cannot start.

    ``problems`` contains every problem found, each a user-facing Chinese line naming the key.
    """

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


class OperationalError(DaemonError):
    """A failure while running; the loop logs it and goes on."""


class ImapError(OperationalError):
    """The IMAP server could not be reached, refused a command or sent something unusable."""


class ImapLoginError(ImapError):
    """The IMAP server rejected the configured user name or password."""


class ParseError(OperationalError):
    """A message or document could not be parsed; the message is quarantined."""


class StorageError(OperationalError):
    """The database or the archive directory failed."""


class SendError(OperationalError):
    """An outgoing mail could not be delivered; the outbox retries it."""
