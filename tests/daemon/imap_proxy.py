"""A loopback TCP proxy in front of the test IMAP server that injects faults real servers show.

Faults: refuse SELECT/EXAMINE until the client sent ID, as 163/126 mailboxes do ("Unsafe Login");
an outage that drops every open connection and closes new ones until it ends.
"""

from __future__ import annotations

import re
import socket
import threading
from dataclasses import dataclass, field

_COMMAND = re.compile(rb"^(\S+) (\S+)", re.IGNORECASE)


@dataclass
class ProxyLog:
    commands: list[bytes] = field(default_factory=list)
    refused: int = 0


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
            state = {"id_sent": False}
            for target in (self._client_to_server, self._server_to_client):
                thread = threading.Thread(target=target, args=(client, upstream, state), daemon=True)
                thread.start()
                self._threads.append(thread)

    def _client_to_server(self, client: socket.socket, upstream: socket.socket, state: dict[str, bool]) -> None:
        reader = client.makefile("rb")
        try:
            for line in reader:
                match = _COMMAND.match(line)
                if match:
                    tag, verb = match.group(1), match.group(2).upper()
                    self.log.commands.append(verb)
                    if verb == b"ID":
                        state["id_sent"] = True
                    if self.require_id and verb in (b"SELECT", b"EXAMINE") and not state["id_sent"]:
                        self.log.refused += 1
                        client.sendall(tag + b" NO SELECT Unsafe Login. Please contact the mail provider\r\n")
                        continue
                upstream.sendall(line)
        except OSError:
            pass
        finally:
            _close(upstream)
            _close(client)

    def _server_to_client(self, client: socket.socket, upstream: socket.socket, _state: dict[str, bool]) -> None:
        try:
            while chunk := upstream.recv(65536):
                client.sendall(chunk)
        except OSError:
            pass
        finally:
            _close(client)
            _close(upstream)


def _close(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()
