"""Exception hierarchy of the daemon.

Configuration errors are fatal at start; operational errors are isolated per account, folder
or message and logged.
"""

import socket
import ssl


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


def connection_failure(exc: BaseException) -> str:
    """Return the user-facing Chinese reason why a connection to a mail server failed."""
    if isinstance(exc, socket.gaierror):
        return "找不到这个主机名，请检查拼写和域名解析"
    if isinstance(exc, ConnectionRefusedError):
        return "连接被拒绝：服务器没有运行，或端口不对"
    if isinstance(exc, TimeoutError):
        return "连接超时：服务器没有响应，或被防火墙拦截"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"服务器证书验证失败（{exc.verify_message}）"
    if isinstance(exc, ssl.SSLError):
        return f"TLS 握手失败（{exc.reason or exc}）：请检查 security 设置与端口是否相符"
    if isinstance(exc, ConnectionResetError):
        return "连接被服务器断开"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc)
