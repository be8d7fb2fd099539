"""A loopback TCP proxy in front of the test IMAP server that injects faults real servers show.

Faults:
- SELECT/EXAMINE rejected until the client sent ID, as 163/126 mailboxes do ("Unsafe Login");
- an outage that drops every open connection and closes new ones until it ends;
- a malformed FETCH response (a damaged literal length) for chosen UIDs;
- a connection dropped on a FETCH of chosen UIDs.
"""

from __future__ import annotations

import re
import socket
import threading
from dataclasses import dataclass, field

_COMMAND = re.compile(rb"^(\S+) (\S+)", re.IGNORECASE)
_UID_FETCH = re.compile(rb"^\S+ UID FETCH (\S+) ", re.IGNORECASE)
# An untagged FETCH response line that ends in a full-body literal: "* 3 FETCH (UID 7 BODY[] {1234}".
# Dovecot puts UID before the literal, but pymap puts it after. For pymap the UID is looked up by the
# message sequence number, as learned from an earlier FETCH response of that message.
_BODY_LITERAL = re.compile(rb"^\* (\d+) FETCH \(.*?\bBODY\[\] \{(\d+)\}\r\n$", re.IGNORECASE)
_FETCH_UID = re.compile(rb"^\* (\d+) FETCH \(.*?\bUID (\d+)\b", re.IGNORECASE)
_LITERAL = re.compile(rb"\{(\d+)\}\r\n$")


@dataclass
class ProxyLog:
    commands: list[bytes] = field(default_factory=list)
    refused: int = 0
    corrupted: list[int] = field(default_factory=list)  # UIDs whose BODY[] literal was damaged
    dropped: list[int] = field(default_factory=list)  # UIDs whose FETCH made the proxy drop the connection
    fetches: list[bytes] = field(default_factory=list)  # every UID FETCH command line, without its tag


class ImapFaultProxy:
    """Forward 127.0.0.1:<port> to the upstream IMAP server, rewriting what the fault calls for."""

    def __init__(self, upstream_port: int, *, require_id: bool = True) -> None:
        self.upstream_port = upstream_port
        self.require_id = require_id
        self.log = ProxyLog()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._threads: list[threading.Thread] = []
        self._closing = threading.Event()
        self._down = threading.Event()
        self._sockets: list[socket.socket] = []
        # UIDs whose full-body (BODY[]) FETCH response gets a malformed literal length.
        self.corrupt_body_uids: set[int] = set()
        # UIDs whose UID FETCH (of any item but RFC822.SIZE) closes the connection instead of a response.
        self.drop_fetch_uids: set[int] = set()

    def start(self) -> None:
        thread = threading.Thread(target=self._accept_loop, daemon=True)
        thread.start()
        self._threads.append(thread)

    def stop(self) -> None:
        self._closing.set()
        self._listener.close()

    def begin_outage(self) -> None:
        """Drop every open connection; connections made until end_outage() are closed at once."""
        self._down.set()
        for sock in self._sockets:
            _close(sock)
        self._sockets.clear()

    def end_outage(self) -> None:
        self._down.clear()

    def _accept_loop(self) -> None:
        while not self._closing.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if self._down.is_set():
                _close(client)
                continue
            upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
            self._sockets.extend((client, upstream))
            state: dict[str, int] = {"id_sent": 0, "single_uid": 0}
            for target in (self._client_to_server, self._server_to_client):
                thread = threading.Thread(target=target, args=(client, upstream, state), daemon=True)
                thread.start()
                self._threads.append(thread)

    def _client_to_server(self, client: socket.socket, upstream: socket.socket, state: dict[str, int]) -> None:
        reader = client.makefile("rb")
        try:
            for line in reader:
                match = _COMMAND.match(line)
                if match:
                    tag, verb = match.group(1), match.group(2).upper()
                    self.log.commands.append(verb)
                    if verb == b"ID":
                        state["id_sent"] = 1
                    if self.require_id and verb in (b"SELECT", b"EXAMINE") and not state["id_sent"]:
                        self.log.refused += 1
                        client.sendall(tag + b" NO SELECT Unsafe Login. Please contact the mail provider\r\n")
                        continue
                    fetch = _UID_FETCH.match(line)
                    if fetch:
                        self.log.fetches.append(line.split(b" ", 1)[1].strip())
                        # The response to a FETCH of one UID is about that UID, whatever its sequence number.
                        requested = fetch.group(1)
                        state["single_uid"] = int(requested) if requested.isdigit() else 0
                    dropped = self._dropped_uid(line)
                    if dropped is not None:
                        self.log.dropped.append(dropped)
                        break
                upstream.sendall(line)
        except OSError:
            pass
        finally:
            _close(upstream)
            _close(client)

    def _dropped_uid(self, line: bytes) -> int | None:
        """Return the UID requested by this UID FETCH command line if the proxy drops the connection on it."""
        match = _UID_FETCH.match(line)
        if not match or not self.drop_fetch_uids or b"RFC822.SIZE" in line.upper():
            return None
        for uid in _expand_uid_set(match.group(1)):
            if uid in self.drop_fetch_uids:
                return uid
        return None

    def _server_to_client(self, client: socket.socket, upstream: socket.socket, state: dict[str, int]) -> None:
        """Forward responses line by line, copying literals whole, and damage the chosen BODY[] literals."""
        reader = upstream.makefile("rb")
        try:
            uid_by_sequence: dict[int, int] = {}
            while line := reader.readline():
                literal = _LITERAL.search(line)
                known = _FETCH_UID.match(line)
                if known:
                    uid_by_sequence[int(known.group(1))] = int(known.group(2))
                body = _BODY_LITERAL.match(line)
                uid = (uid_by_sequence.get(int(body.group(1))) or state["single_uid"] or None) if body else None
                if body and uid in self.corrupt_body_uids:
                    # "{1234}" becomes "{12x34}": imaplib no longer finds a literal, reads the message's
                    # first line as a response of its own and raises abort("unexpected response").
                    self.log.corrupted.append(uid)
                    size = body.group(2)
                    line = line[: body.start(2)] + size[:2] + b"x" + size[2:] + line[body.end(2) :]
                client.sendall(line)
                if literal:
                    remaining = int(literal.group(1))
                    while remaining:
                        chunk = reader.read(min(remaining, 65536))
                        if not chunk:
                            return
                        client.sendall(chunk)
                        remaining -= len(chunk)
        except OSError:
            pass
        finally:
            _close(client)
            _close(upstream)


def _expand_uid_set(text: bytes) -> list[int]:
    """Expand an IMAP UID set such as b"3,5:7" into its numbers; "*" and open ranges are skipped."""
    uids: list[int] = []
    for part in text.split(b","):
        low, _, high = part.partition(b":")
        if not low.isdigit() or (high and not high.isdigit()):
            continue
        uids.extend(range(int(low), int(high or low) + 1))
    return uids


def _close(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()
