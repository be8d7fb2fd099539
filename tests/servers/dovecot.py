"""A throwaway Dovecot IMAP server on 127.0.0.1 for one test session.

Everything (configuration, sockets, state, log, Maildir) lives in one short temporary directory,
because Unix socket paths must stay under about 107 bytes. Dovecot runs in the foreground
(``dovecot -F``), so the subprocess's PID is the master's and stopping it is terminate-then-wait.
"""

from __future__ import annotations

import grp
import logging
import os
import pwd
import secrets
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Self

from daemon.embedded import LOOPBACK, find_free_port, read_imap_greeting

logger = logging.getLogger(__name__)

# Exit code of Dovecot 2.3's master for a fatal start error, such as a listener port already in use.
# Other fatal errors use it too, so start() may retry a few ports in vain before it raises.
EXIT_CODE_FATAL = 89

CONFIG_TEMPLATE = """\
# Generated for one test session; see tests/servers/dovecot.py.
instance_name = {instance_name}
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
info_log_path = {root}/dovecot.log
protocols = imap
listen = {host}
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
# A wrong password then fails in about 0.5 s instead of 2 s (measured with Dovecot 2.3.19).
auth_failure_delay = 0
first_valid_uid = 1
mail_location = maildir:~/Maildir
{process_users}
namespace inbox {{
  inbox = yes
  separator = /
}}

passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/passwd
}}
userdb {{
  driver = static
  args = uid={mail_uid} gid={mail_gid} home={root}/home/%u
}}

service imap-login {{
{login_chroot}
  inet_listener imap {{
    address = {host}
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}

# Disables the auth penalty: after a failed login, anvil delays every following login from the
# same address, good passwords included, by up to 15 s, which slows every later test.
service anvil {{
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}

protocol imap {{
  # The default of 10 per user and address is too low for tests that open many sessions.
  mail_max_userip_connections = 100
}}
"""


def find_dovecot_executable() -> Path | None:
    """Return the ``dovecot`` binary, looking in /usr/sbin too because it is often not on a user's PATH."""
    found = shutil.which("dovecot") or shutil.which("dovecot", path="/usr/sbin:/usr/local/sbin")
    return Path(found) if found else None


def read_dovecot_version(executable: Path) -> str:
    """Return the output of ``dovecot --version``, e.g. "2.3.19.1 (9b53102964)"."""
    result = subprocess.run(
        [str(executable), "--version"], capture_output=True, text=True, check=False, timeout=10
    )
    return result.stdout.strip() or result.stderr.strip()


class DovecotServer:
    """One Dovecot instance with a single account, listening on a free port of 127.0.0.1.

    ``stop()`` and ``start()`` may alternate: the mail and the port are kept until ``cleanup()``
    removes the directory.
    """

    kind = "dovecot"

    def __init__(
        self,
        *,
        user: str = "zwxx",
        password: str | None = None,
        host: str = LOOPBACK,
        startup_timeout: float = 15.0,
    ) -> None:
        executable = find_dovecot_executable()
        if executable is None:
            raise FileNotFoundError("dovecot binary not found; install the dovecot-imapd package")
        self.executable = executable
        self.user = user
        self.password = password if password is not None else secrets.token_urlsafe(12)
        self.host = host
        self.port: int | None = None
        self.startup_timeout = startup_timeout
        self.startup_seconds: float | None = None
        # mkdtemp makes the directory 0700; the mail user needs to traverse it to reach its home.
        self.root = Path(tempfile.mkdtemp(prefix="zwxx-dc-", dir="/tmp"))
        self.root.chmod(0o755)
        self._process: subprocess.Popen[bytes] | None = None
        self._write_files()

    @property
    def pid(self) -> int | None:
        """Process id of the running Dovecot master, or None when stopped."""
        return self._process.pid if self._process is not None else None

    @property
    def running(self) -> bool:
        """Whether the Dovecot master is alive."""
        return self._process is not None and self._process.poll() is None

    @property
    def config_path(self) -> Path:
        """The generated dovecot.conf."""
        return self.root / "dovecot.conf"

    @property
    def log_path(self) -> Path:
        """Dovecot's log file (errors and info)."""
        return self.root / "dovecot.log"

    def _write_files(self) -> None:
        """Write the password file and create the account's home, owned by the mail user."""
        (self.root / "run").mkdir()
        (self.root / "state").mkdir()
        home = self.root / "home" / self.user
        home.mkdir(parents=True)

        passwd_path = self.root / "passwd"
        passwd_path.write_text(f"{self.user}:{{PLAIN}}{self.password}::::::\n", encoding="utf-8")
        passwd_path.chmod(0o600)

        if os.geteuid() == 0:
            # The auth process runs as default_internal_user, "dovecot" unless configured otherwise.
            shutil.chown(passwd_path, group=grp.getgrnam("dovecot").gr_gid)
            passwd_path.chmod(0o640)
            # Dovecot refuses to run mail processes as root, so the mail user is "nobody".
            nobody = pwd.getpwnam("nobody")
            self._mail_uid = nobody.pw_name
            self._mail_gid = grp.getgrgid(nobody.pw_gid).gr_name
            shutil.chown(home.parent, nobody.pw_uid, nobody.pw_gid)
            shutil.chown(home, nobody.pw_uid, nobody.pw_gid)
        else:
            self._mail_uid = pwd.getpwuid(os.getuid()).pw_name
            self._mail_gid = grp.getgrgid(os.getgid()).gr_name

    def _write_config(self, port: int) -> None:
        if os.geteuid() == 0:
            process_users = ""
            login_chroot = ""
        else:
            # Unprivileged: every Dovecot process runs as the current user, and chroot is impossible.
            process_users = (
                f"default_login_user = {self._mail_uid}\n"
                f"default_internal_user = {self._mail_uid}\n"
                f"default_internal_group = {self._mail_gid}\n"
            )
            login_chroot = "  chroot ="
        config = CONFIG_TEMPLATE.format(
            instance_name=f"zwxx-test-{self.root.name}",
            root=self.root,
            host=self.host,
            port=port,
            mail_uid=self._mail_uid,
            mail_gid=self._mail_gid,
            process_users=process_users,
            login_chroot=login_chroot,
        )
        self.config_path.write_text(config, encoding="utf-8")

    def start(self) -> None:
        """Start Dovecot and wait for its IMAP greeting.

        The first start picks a free port (another one if Dovecot exits with code 89 because the
        port was taken in between); later starts reuse it.

        Raises:
            RuntimeError: Dovecot exited or sent no greeting within ``startup_timeout``.
        """
        if self.running:
            return

        started_at = time.monotonic()
        attempts = 1 if self.port is not None else 5
        for attempt in range(1, attempts + 1):
            port = self.port if self.port is not None else find_free_port(self.host)
            self._write_config(port)
            exit_code = self._launch(port)
            if exit_code is None:
                self.port = port
                self.startup_seconds = time.monotonic() - started_at
                logger.info("dovecot started: pid %s, port %s, %.3f s", self.pid, port, self.startup_seconds)
                return
            if exit_code != EXIT_CODE_FATAL:
                break
            logger.warning(
                "dovecot exited with code %d on port %s, likely taken in between (attempt %d of %d)",
                exit_code,
                port,
                attempt,
                attempts,
            )

        raise RuntimeError(f"dovecot failed to start; log {self.log_path}:\n{self._read_log_tail()}")

    def _launch(self, port: int) -> int | None:
        """Run the master; return None once it greets, else its exit code (-1 for a timeout)."""
        self._process = subprocess.Popen(
            [str(self.executable), "-F", "-c", str(self.config_path)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            exit_code = self._process.poll()
            if exit_code is not None:
                self._process = None
                return exit_code
            greeting = read_imap_greeting(self.host, port)
            if greeting is not None and greeting.startswith(b"* OK"):
                return None
            time.sleep(0.01)

        self.stop()
        return -1

    def _read_log_tail(self) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")[-3000:]
        except FileNotFoundError:
            return "(no log written)"

    def stop(self, timeout: float = 10.0) -> None:
        """Terminate the master by PID and wait; it stops its children itself on SIGTERM.

        SIGKILL is the last resort only, because a killed master leaves its children running.
        """
        process = self._process
        if process is None:
            return

        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                logger.warning("dovecot pid %s ignored SIGTERM for %.1f s; killing it", process.pid, timeout)
                process.kill()
                process.wait(timeout)
        logger.info("dovecot stopped: pid %s, exit code %s", process.pid, process.returncode)
        self._process = None

    def cleanup(self) -> None:
        """Stop the server and delete its directory with all mail."""
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.cleanup()
