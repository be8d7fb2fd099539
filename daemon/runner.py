"""The daemon's main loop: poll with IDLE (or at intervals), reconnect with backoff, stop on a signal."""

from __future__ import annotations

import logging
import signal
import threading
import time
from types import FrameType

from imapclient import IMAPClient
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from daemon import __version__
from daemon.app import App
from daemon.errors import ImapError, ImapLoginError, StorageError
from daemon.intake import IMAP_FAILURES, ImapLink, poll_folder
from daemon.jobs import SEND_OUTBOX_JOB, start_scheduler, wake_job
from daemon.lease import Lease, make_lease
from daemon.models import FolderState
from daemon.outbound import recover_interrupted

log = logging.getLogger(__name__)

# Failures after which the runner waits (with capped backoff) and connects again.
RETRYABLE: tuple[type[BaseException], ...] = (ImapError, StorageError, SQLAlchemyError, *IMAP_FAILURES)
DATABASE_FAILURES: tuple[type[BaseException], ...] = (StorageError, SQLAlchemyError)

# Extra polls in a row when the folder's UIDNEXT shows mail that the last poll did not store.
MAX_UNSEEN_REPOLLS = 3

# How often a blocking wait checks whether a stop was requested, in seconds.
STOP_CHECK = 0.5


class LeaseLostError(Exception):
    """This node no longer holds the lease; another node may be active now."""


class Runner:
    """Runs the poller in the calling thread and the scheduler in the background until stopped."""

    def __init__(self, app: App) -> None:
        self.app = app
        self.stop_event = threading.Event()
        self.stop_signal: str | None = None
        self.outages: dict[str, float] = {}  # kind ("IMAP", "database") -> when its outage began
        self.lease: Lease | None = None

    def install_signal_handlers(self) -> None:
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self._on_signal)

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        self.stop_signal = signal.Signals(signum).name
        self.stop_event.set()

    def run(self) -> None:
        """Run until a stop is requested; every IMAP or storage failure is retried with capped backoff."""
        settings = self.app.settings
        log.info("zwxx %s starting (config %s)", __version__, settings.path)
        lease = make_lease(self.app.engine, settings.database.url)
        try:
            # A node that loses the lease (its database connection broke) waits as a standby again.
            while self._wait_for_lease(lease):
                self._run_active(lease)
        finally:
            lease.release()
            log.info("zwxx stopped (signal %s)", self.stop_signal or "none")

    def _wait_for_lease(self, lease: Lease) -> bool:
        """Stand by until this node holds the lease; False when a stop was requested first."""
        interval = self.app.settings.general.standby_interval
        announced = False
        while not self.stop_event.is_set():
            if lease.try_acquire():
                self._note_recovery("database")
                log.info("lease acquired: this node polls, schedules and sends")
                return True
            if getattr(lease, "unreachable", False):
                self._note_outage_of("database", "cannot reach the database to take the lease")
            elif not announced:
                log.info("another node holds the lease: standing by, trying again every %d s", interval)
                announced = True
            self.stop_event.wait(interval)
        return False

    def _run_active(self, lease: Lease) -> None:
        settings = self.app.settings
        self.lease = lease
        # Only the lease holder may do this: mails in SENDING belong to the active node.
        recover_interrupted(self.app.session_factory)
        scheduler = start_scheduler(self.app)
        for job in scheduler.get_jobs():
            log.info("scheduled job %s: %s", job.id, job.trigger)
        delay = 1.0
        try:
            while not self.stop_event.is_set():
                try:
                    self._serve_connection(scheduler)
                    delay = 1.0
                except ImapLoginError as exc:
                    # A rejected password rarely fixes itself, and quick retries can get the account
                    # locked: wait the longest delay every time.
                    self._note_outage(exc)
                    self.stop_event.wait(settings.imap.reconnect_max_delay)
                except RETRYABLE as exc:
                    self._note_outage(exc)
                    self.stop_event.wait(delay)
                    delay = min(delay * 2, settings.imap.reconnect_max_delay)
        except LeaseLostError:
            log.error("lease lost: stopping polling and scheduled work until this node holds it again")
        finally:
            scheduler.shutdown(wait=True)

    def _note_outage(self, exc: BaseException) -> None:
        kind = "database" if isinstance(exc, DATABASE_FAILURES) else "IMAP"
        self._note_outage_of(kind, str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__)

    def _note_outage_of(self, kind: str, reason: str) -> None:
        """Log an outage of ``kind`` (IMAP or database) once when it begins."""
        if kind not in self.outages:
            self.outages[kind] = time.monotonic()
            log.error("%s outage began: %s", kind, reason)
        else:
            log.debug("%s still unavailable: %s", kind, reason)

    def _note_recovery(self, kind: str = "IMAP") -> None:
        since = self.outages.pop(kind, None)
        if since is not None:
            log.info("%s outage ended after %.0f s", kind, time.monotonic() - since)

    def _serve_connection(self, scheduler) -> None:  # type: ignore[no-untyped-def]
        # A poll may replace the connection after a failed FETCH, so always use link.client.
        link = ImapLink(self.app.settings)
        try:
            use_idle = self.app.settings.imap.idle and link.client.has_capability("IDLE")
            self._note_recovery()
            unseen_repolls = 0
            while not self.stop_event.is_set():
                if self.lease is not None and not self.lease.still_held():
                    raise LeaseLostError("lease lost")
                summary = poll_folder(link, self.app.session_factory, self.app.context)
                self._note_recovery("database")  # the poll read and wrote the database
                if summary.stored:
                    wake_job(scheduler, SEND_OUTBOX_JOB)
                    # Mail that arrived during this poll was announced (EXISTS) in responses to the
                    # poll's own commands, which IDLE does not repeat: look again before idling.
                    unseen_repolls = 0
                    continue
                # Some servers (pymap) announce mail appended during a poll to no one, not even in
                # NOOP, so the folder's UIDNEXT is compared with what is stored. A UID that keeps
                # failing or vanished keeps them apart, hence the bound on these extra polls.
                if unseen_repolls < MAX_UNSEEN_REPOLLS and self._folder_has_unseen_uids(link.client):
                    unseen_repolls += 1
                    continue
                unseen_repolls = 0
                if use_idle:
                    self._wait_idle(link.client)
                else:
                    self.stop_event.wait(self.app.settings.imap.poll_interval)
                    link.client.noop()
        finally:
            link.close()

    def _folder_has_unseen_uids(self, client: IMAPClient) -> bool:
        """Tell whether the polled folder's UIDNEXT lies beyond the highest UID stored from it."""
        settings = self.app.settings
        status = client.folder_status(settings.imap.folder, [b"UIDNEXT"])
        uidnext = int(status.get(b"UIDNEXT", 0))
        with self.app.session_factory() as session:
            highest = session.scalar(
                select(FolderState.highest_uid).where(
                    FolderState.account == settings.general.account, FolderState.folder == settings.imap.folder
                )
            )
        return highest is not None and uidnext - 1 > highest

    def _wait_idle(self, client: IMAPClient) -> None:
        """Wait in IDLE until the server reports a change, the IDLE timeout passes or a stop is requested."""
        deadline = time.monotonic() + self.app.settings.imap.idle_timeout
        client.idle()
        try:
            while not self.stop_event.is_set() and time.monotonic() < deadline:
                # An AbortError here (a split response line) propagates and leads to a reconnect.
                if _announces_new_mail(client.idle_check(timeout=STOP_CHECK)):
                    break
        finally:
            client.idle_done()


def _announces_new_mail(responses: object) -> bool:
    """Tell whether untagged responses (from NOOP or IDLE) include EXISTS or RECENT."""
    if not isinstance(responses, (list, tuple)):
        return False
    return any(isinstance(r, tuple) and len(r) > 1 and r[1] in (b"EXISTS", b"RECENT") for r in responses)
