"""Post-actions on the IMAP server after a message is committed: flag it or move it, never delete."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from imapclient import IMAPClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from daemon.config import AfterStore, Settings
from daemon.models import Message, ServerAction

log = logging.getLogger(__name__)


_warned_flags: set[str] = set()


def choose_flag(requested: str, permanent_flags: tuple[bytes, ...]) -> str:
    """Return ``requested`` if the folder keeps it, else \\Seen.

    A server keeps a keyword only if PERMANENTFLAGS lists it or ``\\*`` (RFC 3501 section 7.1).
    pymap, for one, accepts STORE of any keyword but silently drops it.
    """
    if requested.startswith("\\") or not permanent_flags:
        return requested
    names = {flag.decode("ascii", "replace").lower() for flag in permanent_flags}
    if "\\*" in names or requested.lower() in names:
        return requested
    if requested not in _warned_flags:
        _warned_flags.add(requested)
        log.warning(
            "the server does not keep the keyword %s (PERMANENTFLAGS %s); marking stored messages \\Seen instead",
            requested,
            b" ".join(permanent_flags).decode("ascii", "replace"),
        )
    return "\\Seen"


def apply_server_actions(
    client: IMAPClient,
    session_factory: sessionmaker[Session],
    settings: Settings,
    account: str,
    folder: str,
    uidvalidity: int,
    permanent_flags: tuple[bytes, ...] = (),
) -> int:
    """Flag or move every committed message whose post-action is still pending; return how many."""
    with session_factory() as session:
        uids = list(
            session.scalars(
                select(Message.uid).where(
                    Message.account == account,
                    Message.folder == folder,
                    Message.uidvalidity == uidvalidity,
                    Message.server_action == ServerAction.PENDING,
                )
            )
        )
    if not uids:
        return 0
    imap = settings.imap
    moving = imap.after_store is AfterStore.MOVE
    if moving:
        _ensure_folder(client, imap.move_to)
    for chunk in chunked(uids, 500):
        if moving and client.has_capability("MOVE"):
            client.move(chunk, imap.move_to)
        elif moving:
            # Without MOVE (RFC 6851) a copy is made and the original stays, flagged, in the folder.
            client.copy(chunk, imap.move_to)
            client.add_flags(chunk, [choose_flag(imap.flag, permanent_flags)])
        else:
            client.add_flags(chunk, [choose_flag(imap.flag, permanent_flags)])
        with session_factory.begin() as session:
            for message in session.scalars(
                select(Message).where(
                    Message.account == account,
                    Message.folder == folder,
                    Message.uidvalidity == uidvalidity,
                    Message.uid.in_(chunk),
                )
            ):
                message.server_action = ServerAction.DONE
    return len(uids)


def chunked(values: list[int], size: int) -> Iterable[list[int]]:
    """Yield ``values`` in consecutive lists of at most ``size``."""
    for start in range(0, len(values), size):
        yield values[start : start + size]


def _ensure_folder(client: IMAPClient, name: str) -> None:
    if not client.folder_exists(name):
        client.create_folder(name)
        log.info("created IMAP folder %s for stored messages", name)
