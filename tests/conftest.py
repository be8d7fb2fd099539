"""Shared pytest fixtures: real IMAP and SMTP servers on 127.0.0.1 and real databases.

Environment variables:
    ZWXX_TEST_IMAP=dovecot|pymap   force one IMAP server (default: Dovecot when installed, else pymap)
    ZWXX_TEST_DATABASES=sqlite,postgresql   restrict the databases ``database_url`` runs against
    ZWXX_TEST_POSTGRES_URL   administrative URL used to create and drop the per-test databases
    ZWXX_REQUIRE_REAL_SERVERS=1 (or CI=true)   a missing Dovecot or PostgreSQL is an error, not a fallback
    ZWXX_SHARED   directory of shared reference data (default: <repo>/../shared)
"""

from __future__ import annotations

import functools
import logging
import os
import secrets
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from sqlalchemy.engine import URL, make_url

REPO_ROOT = Path(__file__).resolve().parent.parent
# Needed only if tests/ has no __init__.py: pytest then puts tests/ on sys.path instead of the
# repository root, and `import tests.servers` would fail under a bare `pytest` command.
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from daemon.embedded import EmbeddedImapServer, SmtpSink  # noqa: E402
from tests.servers.dovecot import DovecotServer, find_dovecot_executable, read_dovecot_version  # noqa: E402
from tests.servers.handle import ImapServerHandle, ImapServerKind  # noqa: E402

if TYPE_CHECKING:
    import psycopg

logger = logging.getLogger(__name__)

DATABASE_KINDS = ("sqlite", "postgresql")
DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
TEST_USER = "zwxx"


def require_real_servers() -> bool:
    """Return whether Dovecot and PostgreSQL must be present (CI, or asked for explicitly)."""
    return os.environ.get("CI", "").lower() == "true" or os.environ.get("ZWXX_REQUIRE_REAL_SERVERS") == "1"


def read_forced_imap_kind() -> ImapServerKind | None:
    """Return the server named by ZWXX_TEST_IMAP, or None when it is unset.

    Raises:
        pytest.UsageError: the variable names an unknown server.
    """
    value = os.environ.get("ZWXX_TEST_IMAP", "").strip().lower()
    if not value:
        return None
    try:
        return ImapServerKind(value)
    except ValueError:
        choices = ", ".join(kind.value for kind in ImapServerKind)
        raise pytest.UsageError(f"invalid ZWXX_TEST_IMAP={value!r}; expected one of: {choices}") from None


def select_imap_kind() -> ImapServerKind:
    """Choose the IMAP server: the forced one, else Dovecot when installed, else pymap.

    Under ``require_real_servers()`` Dovecot is chosen even when missing, so the fixture fails
    instead of quietly testing against pymap.
    """
    forced = read_forced_imap_kind()
    if forced is not None:
        return forced
    if find_dovecot_executable() is not None or require_real_servers():
        return ImapServerKind.DOVECOT
    return ImapServerKind.PYMAP


def read_database_kinds() -> list[str]:
    """Return the names listed in ZWXX_TEST_DATABASES (comma-separated, unchecked), or both databases."""
    value = os.environ.get("ZWXX_TEST_DATABASES", "").strip().lower()
    kinds = [kind.strip() for kind in value.split(",") if kind.strip()]
    return kinds or list(DATABASE_KINDS)


def check_database_kinds() -> None:
    """Raise pytest.UsageError when ZWXX_TEST_DATABASES names an unknown database."""
    unknown = [kind for kind in read_database_kinds() if kind not in DATABASE_KINDS]
    if unknown:
        raise pytest.UsageError(
            f"invalid ZWXX_TEST_DATABASES={os.environ.get('ZWXX_TEST_DATABASES')!r}; "
            f"expected a comma-separated subset of {', '.join(DATABASE_KINDS)}"
        )


def select_database_kinds() -> list[str]:
    """Return the databases the ``database_url`` fixture runs against, known names only."""
    return [kind for kind in read_database_kinds() if kind in DATABASE_KINDS]


def read_postgres_admin_url() -> URL:
    """Return the URL of the database used to create and drop per-test databases."""
    return make_url(os.environ.get("ZWXX_TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL))


def connect_postgres_admin(url: URL) -> psycopg.Connection[tuple[Any, ...]]:
    """Open an autocommit psycopg connection to the administrative database of ``url``."""
    # Imported here because psycopg is only in the "test" and "postgresql" extras.
    import psycopg

    return psycopg.connect(
        host=url.host or "127.0.0.1",
        port=url.port or 5432,
        user=url.username or "postgres",
        password=url.password or None,
        dbname=url.database or "postgres",
        connect_timeout=5,
        autocommit=True,
    )


@functools.cache
def probe_postgres() -> str | None:
    """Return None when PostgreSQL accepts the administrative login, else why it does not."""
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return "psycopg is not installed (pip install -e '.[test]')"

    url = read_postgres_admin_url()
    try:
        with connect_postgres_admin(url) as connection:
            connection.execute("SELECT 1")
    except Exception as error:  # any failure means "not usable"; the message is shown verbatim
        return f"PostgreSQL at {url.render_as_string(hide_password=True)} is not reachable: {error}"
    return None


def pytest_configure(config: pytest.Config) -> None:
    """Reject invalid test environment variables before collection."""
    read_forced_imap_kind()
    check_database_kinds()


def pytest_report_header(config: pytest.Config) -> list[str]:
    """Print which IMAP server and databases this run uses."""
    imap_kind = select_imap_kind()
    if imap_kind is ImapServerKind.DOVECOT:
        executable = find_dovecot_executable()
        if executable is None:
            imap_line = "zwxx IMAP server: dovecot (REQUIRED BUT NOT INSTALLED: IMAP tests will error)"
        else:
            imap_line = f"zwxx IMAP server: dovecot {read_dovecot_version(executable)} ({executable})"
    else:
        imap_line = "zwxx IMAP server: pymap in-memory dict backend (install dovecot-imapd to use Dovecot)"

    database_parts = []
    for kind in select_database_kinds():
        if kind == "postgresql":
            problem = probe_postgres()
            url = read_postgres_admin_url().render_as_string(hide_password=True)
            if problem is None:
                database_parts.append(f"postgresql ({url})")
            else:
                database_parts.append(f"postgresql UNAVAILABLE: {problem}")
        else:
            database_parts.append("sqlite")
    return [imap_line, "zwxx databases: " + "; ".join(database_parts)]


@pytest.fixture(scope="session")
def imap_server() -> Iterator[ImapServerHandle]:
    """The session's IMAP server (Dovecot or pymap), with one account, on 127.0.0.1."""
    kind = select_imap_kind()
    password = secrets.token_urlsafe(12)

    if kind is ImapServerKind.DOVECOT:
        if find_dovecot_executable() is None:
            pytest.fail(
                "Dovecot is required (CI=true, ZWXX_REQUIRE_REAL_SERVERS=1 or ZWXX_TEST_IMAP=dovecot) "
                "but the dovecot binary was not found; install dovecot-imapd",
                pytrace=False,
            )
        dovecot = DovecotServer(user=TEST_USER, password=password)
        try:
            dovecot.start()
            handle = ImapServerHandle(kind, dovecot)
            logger.info("test IMAP server: %s", handle.describe())
            yield handle
        finally:
            dovecot.cleanup()
        return

    pymap = EmbeddedImapServer(user=TEST_USER, password=password)
    try:
        pymap.start()
        handle = ImapServerHandle(kind, pymap)
        logger.info("test IMAP server: %s", handle.describe())
        yield handle
    finally:
        pymap.stop()


@pytest.fixture
def imap(imap_server: ImapServerHandle) -> ImapServerHandle:
    """The session's IMAP server, running, with an empty INBOX and no other folders."""
    # An outage test may have left it stopped.
    imap_server.start()
    imap_server.reset()
    return imap_server


@pytest.fixture
def smtp_sink() -> Iterator[SmtpSink]:
    """A started SMTP sink on a free port of 127.0.0.1, stopped after the test."""
    sink = SmtpSink()
    sink.start()
    try:
        yield sink
    finally:
        sink.stop()


@pytest.fixture(params=select_database_kinds())
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A SQLAlchemy URL of an empty database: a SQLite file, or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'zwxx.sqlite3'}"
        return

    problem = probe_postgres()
    if problem is not None:
        if require_real_servers():
            pytest.fail(
                f"PostgreSQL is required (CI=true or ZWXX_REQUIRE_REAL_SERVERS=1): {problem}", pytrace=False
            )
        pytest.skip(f"{problem}; set ZWXX_TEST_DATABASES=sqlite to run SQLite only")

    admin_url = read_postgres_admin_url()
    name = f"zwxx_test_{secrets.token_hex(6)}"
    with connect_postgres_admin(admin_url) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    try:
        test_url = admin_url.set(drivername="postgresql+psycopg", database=name)
        yield test_url.render_as_string(hide_password=False)
    finally:
        drop_postgres_database(admin_url, name)


def drop_postgres_database(admin_url: URL, name: str) -> None:
    """Drop a per-test database after ending any sessions a test left open on it."""
    with connect_postgres_admin(admin_url) as connection:
        connection.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = %s AND pid <> pg_backend_pid()",
            (name,),
        )
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """The shared reference data directory (corpus, fault cases), from ZWXX_SHARED or <repo>/../shared."""
    path = Path(os.environ.get("ZWXX_SHARED", REPO_ROOT.parent / "shared"))
    if not path.is_dir():
        pytest.fail(
            f"shared reference data not found at {path}; set ZWXX_SHARED to the directory "
            "that contains corpus/ and cases/",
            pytrace=False,
        )
    return path
