"""IMAP faults during FETCH, injected by a proxy in front of the real test server.

One message whose FETCH keeps failing must never block the folder: the others are stored, the bad
one is retried on later polls (the count survives restarts) and then stored as quarantined.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from daemon.app import App, build_app
from daemon.config import load_settings
from daemon.db import upgrade_database
from daemon.embedded import SmtpSink
from daemon.intake import (
    FETCH_CHUNK_BYTES,
    LARGE_MESSAGE_BYTES,
    MAX_FETCH_ATTEMPTS,
    PollSummary,
    close_imap,
    connect_imap,
    poll_folder,
)
from daemon.models import FetchFailure, FolderState, Message, MessageState
from tests.daemon.imap_proxy import ImapFaultProxy
from tests.daemon.test_pipeline import load_corpus, unify_newlines
from tests.servers.handle import ImapServerHandle


@pytest.fixture
def proxy(imap: ImapServerHandle) -> Iterator[ImapFaultProxy]:
    fault_proxy = ImapFaultProxy(imap.port, require_id=False)
    fault_proxy.start()
    try:
        yield fault_proxy
    finally:
        fault_proxy.stop()


@pytest.fixture
def proxied_config(write_config, proxy: ImapFaultProxy) -> Path:
    config: Path = write_config(imap_port=proxy.port)
    app = build_app(load_settings(config))
    upgrade_database(app.engine)
    app.close()
    return config


def poll_fresh_app(config: Path) -> PollSummary:
    """Poll once with a newly built App, as a restarted `zwxx poll --once` would."""
    app = build_app(load_settings(config))
    try:
        client = connect_imap(app.settings)
        try:
            return poll_folder(client, app.session_factory, app.context)
        finally:
            close_imap(client)  # after a failed FETCH this client is broken, so not logout()
    finally:
        app.close()


def read_state(config: Path) -> tuple[dict[int, Message], dict[int, FetchFailure], int]:
    """Return messages and fetch failures by UID, and the folder's high-water mark."""
    app = build_app(load_settings(config))
    try:
        with app.session_factory() as session:
            messages = {m.uid: m for m in session.scalars(select(Message))}
            failures = {f.uid: f for f in session.scalars(select(FetchFailure))}
            state = session.scalar(select(FolderState))
            session.expunge_all()
        return messages, failures, state.highest_uid if state else 0
    finally:
        app.close()


def read_archive(config: Path, digest: str) -> bytes:
    app = build_app(load_settings(config))
    try:
        return app.context.archive.get(digest)
    finally:
        app.close()


def server_body(imap: ImapServerHandle, uid: int) -> bytes:
    """The message as the server stores it, fetched directly, not through the proxy."""
    with imap.client() as client:
        client.select_folder("INBOX", readonly=True)
        return bytes(client.fetch([uid], ["BODY.PEEK[]"])[uid][b"BODY[]"])


def test_malformed_fetch_quarantined_after_three_polls(
    proxied_config: Path, proxy: ImapFaultProxy, imap: ImapServerHandle, smtp_sink: SmtpSink, shared_dir: Path
) -> None:
    corpus = load_corpus(shared_dir)[:5]
    uids = [imap.append(raw) for _record, raw in corpus]
    bad = uids[2]
    proxy.corrupt_body_uids.add(bad)

    first = poll_fresh_app(proxied_config)
    messages, failures, highest = read_state(proxied_config)

    assert first.stored == 4
    assert first.fetch_failures == 1
    assert first.reconnects >= 1
    assert sorted(messages) == [uid for uid in uids if uid != bad]
    assert failures[bad].attempts == 1
    assert "unexpected response" in (failures[bad].last_error or "")
    assert highest == bad - 1  # held below the failing UID so the next poll searches it again

    second = poll_fresh_app(proxied_config)
    _messages, failures, highest = read_state(proxied_config)

    assert second.stored == 0
    assert failures[bad].attempts == 2
    assert highest == bad - 1
    # Only the failing UID is fetched again; the stored ones above it are skipped.
    assert [f for f in proxy.log.fetches[-3:] if b"BODY.PEEK[]" in f.upper()][-1].startswith(
        b"UID FETCH " + str(bad).encode()
    )

    third = poll_fresh_app(proxied_config)
    messages, failures, highest = read_state(proxied_config)

    assert third.unfetchable == 1
    assert failures == {}
    assert highest == uids[-1]
    quarantined = messages[bad]
    assert quarantined.state == MessageState.QUARANTINED
    assert f"连续 {MAX_FETCH_ATTEMPTS} 次无法读取" in (quarantined.reason or "")
    assert "邮件头和正文" in (quarantined.reason or "")
    assert "unexpected response" in (quarantined.detail or "")
    # BODY[HEADER] and BODY[TEXT] were readable, and together they are the whole message.
    assert read_archive(proxied_config, quarantined.sha256) == server_body(imap, bad)
    assert proxy.log.corrupted.count(bad) == MAX_FETCH_ATTEMPTS + 1  # the first poll's batch, then alone

    fourth = poll_fresh_app(proxied_config)
    assert (fourth.stored, fourth.fetch_failures, fourth.unfetchable) == (0, 0, 0)


def test_dropped_connection_quarantines_without_bytes(
    proxied_config: Path, proxy: ImapFaultProxy, imap: ImapServerHandle, smtp_sink: SmtpSink, shared_dir: Path
) -> None:
    corpus = load_corpus(shared_dir)[:3]
    uids = [imap.append(raw) for _record, raw in corpus]
    bad = uids[0]
    proxy.drop_fetch_uids.add(bad)

    summaries = [poll_fresh_app(proxied_config) for _ in range(MAX_FETCH_ATTEMPTS)]
    messages, failures, highest = read_state(proxied_config)

    assert summaries[0].stored == 2
    assert [s.fetch_failures for s in summaries] == [1, 1, 1]
    assert summaries[-1].unfetchable == 1
    assert failures == {}
    assert highest == uids[-1]
    assert sorted(messages) == uids
    quarantined = messages[bad]
    assert quarantined.state == MessageState.QUARANTINED
    assert quarantined.size == 0
    assert "没有保存任何原始内容" in (quarantined.reason or "")
    others = [messages[uid] for uid in uids[1:]]
    assert all(m.state != MessageState.QUARANTINED for m in others)
    for uid in uids[1:]:
        stored = read_archive(proxied_config, messages[uid].sha256)
        assert unify_newlines(stored) == unify_newlines(server_body(imap, uid))


def test_large_message_fetched_alone_in_pieces(
    proxied_config: Path, proxy: ImapFaultProxy, imap: ImapServerHandle, smtp_sink: SmtpSink, shared_dir: Path
) -> None:
    corpus = load_corpus(shared_dir)
    padding = b"X-Padding: " + b"a" * 990 + b"\r\n"
    large = padding * (LARGE_MESSAGE_BYTES // len(padding) + 10) + corpus[1][1]
    uids = [imap.append(corpus[0][1]), imap.append(large), imap.append(corpus[2][1])]
    large_size = len(server_body(imap, uids[1]))
    offsets = range(0, large_size + 1, FETCH_CHUNK_BYTES)

    summary = poll_fresh_app(proxied_config)
    messages, _failures, _highest = read_state(proxied_config)

    body_fetches = [f for f in proxy.log.fetches if b"BODY.PEEK[]" in f.upper()]
    assert summary.stored == 3
    assert body_fetches[0] == f"UID FETCH {uids[0]} (BODY.PEEK[] INTERNALDATE)".encode()
    pieces = [f"UID FETCH {uids[1]} (BODY.PEEK[]<{offset}.{FETCH_CHUNK_BYTES}>" for offset in offsets]
    pieces[0] += " INTERNALDATE"
    assert body_fetches[1:-1] == [f"{piece})".encode() for piece in pieces]
    assert body_fetches[-1] == f"UID FETCH {uids[2]} (BODY.PEEK[] INTERNALDATE)".encode()
    assert read_archive(proxied_config, messages[uids[1]].sha256) == server_body(imap, uids[1])
    assert messages[uids[1]].internaldate is not None


def test_runner_link_survives_malformed_fetch(
    proxied_config: Path, proxy: ImapFaultProxy, imap: ImapServerHandle, smtp_sink: SmtpSink, shared_dir: Path
) -> None:
    from tests.daemon.test_runner import RunningDaemon, count_messages, wait_until

    corpus = load_corpus(shared_dir)[:3]
    uids = [imap.append(raw) for _record, raw in corpus]
    proxy.corrupt_body_uids.add(uids[1])
    app: App = build_app(load_settings(proxied_config))
    try:
        with RunningDaemon(app):
            wait_until(lambda: count_messages(app) >= 2, 15)
            late_uid = imap.append(load_corpus(shared_dir)[3][1])
            wait_until(lambda: late_uid in read_state(proxied_config)[0], 15)
    finally:
        app.close()
    messages, failures, _highest = read_state(proxied_config)
    good = [uids[0], uids[2], late_uid]
    assert all(messages[uid].state == MessageState.REGISTERED for uid in good)
    # The runner polls again after a poll that stored mail, so by now the bad UID has failed at
    # least once and may already have reached its third failure and been quarantined.
    if uids[1] in messages:
        assert messages[uids[1]].state == MessageState.QUARANTINED
    else:
        assert failures[uids[1]].attempts >= 1
