"""The daemon loop on a real server: IDLE push, reconnects, the ID command, and clean stops."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from imapclient import IMAPClient
from sqlalchemy import func, select

from daemon.app import App, build_app
from daemon.config import load_settings
from daemon.db import upgrade_database
from daemon.embedded import SmtpSink
from daemon.models import Item, Message
from daemon.runner import Runner
from tests.daemon.imap_proxy import ImapFaultProxy
from tests.daemon.test_pipeline import load_corpus
from tests.servers.handle import ImapServerHandle


def wait_until(condition: Callable[[], bool], timeout: float) -> float:
    """Wait for ``condition``; return the seconds it took, or fail the test on timeout."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if condition():
            return time.monotonic() - started
        time.sleep(0.02)
    pytest.fail(f"condition not met within {timeout} s")


def count_messages(app: App) -> int:
    with app.session_factory() as session:
        return session.scalar(select(func.count(Message.id))) or 0


class RunningDaemon:
    def __init__(self, app: App) -> None:
        self.runner = Runner(app)
        self.thread = threading.Thread(target=self.runner.run, daemon=True)

    def __enter__(self) -> Runner:
        self.thread.start()
        return self.runner

    def __exit__(self, *exc: object) -> None:
        self.runner.stop_event.set()
        self.thread.join(timeout=20)
        assert not self.thread.is_alive(), "the runner did not stop within 20 s"


@pytest.fixture
def idle_app(write_config) -> Iterator[App]:
    """An App whose poll interval is long, so only IDLE can pick up new mail quickly."""
    application = build_app(load_settings(write_config(poll_interval=600)))
    upgrade_database(application.engine)
    try:
        yield application
    finally:
        application.close()


def test_idle_push_registers_new_mail(
    idle_app: App, imap: ImapServerHandle, smtp_sink: SmtpSink, shared_dir: Path
) -> None:
    corpus = load_corpus(shared_dir)
    with RunningDaemon(idle_app):
        wait_until(lambda: _folder_synced(idle_app), 10)
        time.sleep(0.5)  # let the runner enter IDLE
        imap.append(corpus[0][1])
        latency = wait_until(lambda: count_messages(idle_app) == 1, 10)
        smtp_sink.wait_for(1, timeout=15)

    assert latency < 5
    with idle_app.session_factory() as session:
        assert session.scalar(select(func.count(Item.id))) == 1


def _folder_synced(app: App) -> bool:
    from daemon.models import FolderState

    with app.session_factory() as session:
        return session.scalar(select(func.count(FolderState.id))) == 1


def test_reconnects_after_outage(
    write_config, imap: ImapServerHandle, smtp_sink: SmtpSink, shared_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    corpus = load_corpus(shared_dir)
    imap.append(corpus[0][1])
    proxy = ImapFaultProxy(imap.port, require_id=False)
    proxy.start()
    app = build_app(load_settings(write_config(imap_port=proxy.port)))
    upgrade_database(app.engine)
    caplog.set_level(logging.INFO, logger="daemon.runner")
    try:
        with RunningDaemon(app):
            wait_until(lambda: count_messages(app) == 1, 10)
            proxy.begin_outage()
            time.sleep(3)
            imap.append(corpus[1][1])
            proxy.end_outage()
            wait_until(lambda: count_messages(app) == 2, 30)
    finally:
        app.close()
        proxy.stop()

    began = [r for r in caplog.records if "IMAP outage began" in r.getMessage()]
    ended = [r for r in caplog.records if "IMAP outage ended" in r.getMessage()]
    assert len(began) == 1
    assert len(ended) == 1


def test_abort_inside_idle_reconnects(
    idle_app: App, imap: ImapServerHandle, smtp_sink: SmtpSink, shared_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A split response line makes imapclient raise AbortError inside idle_check (seen with pymap and
    # Dovecot). No server can be made to do it on demand, so the first call raises it here.
    real_idle_check = IMAPClient.idle_check
    calls = {"count": 0}

    def idle_check_with_abort(self: IMAPClient, timeout: float | None = None) -> list:
        calls["count"] += 1
        if calls["count"] == 1:
            raise IMAPClient.AbortError("unterminated line")
        return real_idle_check(self, timeout)

    monkeypatch.setattr(IMAPClient, "idle_check", idle_check_with_abort)
    corpus = load_corpus(shared_dir)
    with RunningDaemon(idle_app):
        wait_until(lambda: calls["count"] > 1, 15)
        imap.append(corpus[0][1])
        wait_until(lambda: count_messages(idle_app) == 1, 15)


def test_id_sent_before_select(write_config, imap: ImapServerHandle, smtp_sink: SmtpSink, shared_dir: Path) -> None:
    from daemon.intake import connect_imap, poll_folder

    proxy = ImapFaultProxy(imap.port, require_id=True)
    proxy.start()
    try:
        imap.append(load_corpus(shared_dir)[0][1])
        capable = imap.client()
        has_id = capable.has_capability("ID")
        capable.logout()
        app = build_app(load_settings(write_config(imap_port=proxy.port)))
        upgrade_database(app.engine)
        try:
            client = connect_imap(app.settings)
            try:
                summary = poll_folder(client, app.session_factory, app.context)
            finally:
                client.logout()
        finally:
            app.close()
    finally:
        proxy.stop()

    assert has_id
    assert summary.stored == 1
    assert proxy.log.refused == 0
    assert proxy.log.commands.index(b"ID") < proxy.log.commands.index(b"SELECT")


def test_without_id_the_proxy_refuses(imap: ImapServerHandle) -> None:
    proxy = ImapFaultProxy(imap.port, require_id=True)
    proxy.start()
    try:
        client = IMAPClient("127.0.0.1", port=proxy.port, ssl=False)
        client.login(imap.user, imap.password)
        with pytest.raises(IMAPClient.Error, match="Unsafe Login"):
            client.select_folder("INBOX")
        client.logout()
    finally:
        proxy.stop()
    assert proxy.log.refused == 1


def test_wrong_password_is_a_login_error(write_config, imap: ImapServerHandle) -> None:
    from daemon.errors import ImapLoginError
    from daemon.intake import connect_imap

    text = write_config().read_text(encoding="utf-8")
    wrong = write_config(name="wrong.toml")
    wrong.write_text(text.replace(f'password = "{imap.password}"', 'password = "not-the-password"'), encoding="utf-8")

    with pytest.raises(ImapLoginError, match="拒绝登录"):
        connect_imap(load_settings(wrong))


def test_mail_during_poll_fetched_promptly(
    write_config, imap: ImapServerHandle, smtp_sink: SmtpSink, shared_dir: Path
) -> None:
    # Batches of 2: the first poll commits the twenty below in ten steps, so the mail appended
    # after the first commit arrives while that poll is still storing.
    idle_app = build_app(load_settings(write_config(poll_interval=600, batch_size=2)))
    upgrade_database(idle_app.engine)
    corpus = load_corpus(shared_dir)
    for _record, raw in corpus[:20]:
        imap.append(raw)
    try:
        with RunningDaemon(idle_app):
            wait_until(lambda: count_messages(idle_app) >= 1, 10)
            imap.append(corpus[20][1])
            wait_until(lambda: count_messages(idle_app) == 21, 10)
    finally:
        idle_app.close()
