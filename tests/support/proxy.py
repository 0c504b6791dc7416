"""A TCP proxy under the test's control, between recmon and a database server.

Three modes: `pass` forwards both ways; `cut` closes every connection and refuses new ones (a
server or network that went away); `hang` accepts connections and holds them, forwarding nothing
(a server that stopped answering while the network still acknowledges every packet: the case
that only a client-side deadline ends).
"""

from __future__ import annotations

import contextlib
import select
import socket
import threading
from types import TracebackType
from typing import Literal

Mode = Literal["pass", "cut", "hang"]
_TICK = 0.05  # how often a connection's thread looks at the mode


class _Pair:
    """One client connection and, once dialled, its upstream connection."""

    def __init__(self, client: socket.socket) -> None:
        self.client = client
        self.upstream: socket.socket | None = None
        self.held = b""  # client bytes read while hanging, forwarded when traffic resumes
        self.closed = False

    def shut(self) -> None:
        """Wake the pair's thread with EOF on both sides; the thread closes the sockets."""
        self.closed = True
        for sock in (self.client, self.upstream):
            if sock is not None:
                with contextlib.suppress(OSError):  # already closed by its peer
                    sock.shutdown(socket.SHUT_RDWR)


class Proxy:
    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self._mode: Mode = "pass"
        self._lock = threading.Condition()
        self._pairs: set[_Pair] = set()
        self._threads: list[threading.Thread] = []
        self.upstream_ports: set[int] = set()  # local ports of every upstream connection made
        self._listener = self._listen(0)
        self.port: int = self._listener.getsockname()[1]
        self._start(self._accept, self._listener)

    @property
    def mode(self) -> Mode:
        return self._mode

    @property
    def open_connections(self) -> int:
        """Client connections the proxy holds open (recmon's side of them is open, or was
        until the proxy noticed it close)."""
        with self._lock:
            return len(self._pairs)

    def set_mode(self, mode: Mode) -> None:
        with self._lock:
            previous, self._mode = self._mode, mode
            if mode == "cut":
                # shutdown() wakes the thread blocked in accept(); close() alone would not.
                self._listener.shutdown(socket.SHUT_RDWR)
                self._listener.close()  # new connections are refused
                for pair in self._pairs:
                    pair.shut()
            elif previous == "cut":
                self._listener = self._listen(self.port)
                self._start(self._accept, self._listener)
            self._lock.notify_all()

    def close(self) -> None:
        self.set_mode("cut")
        for thread in self._threads:
            thread.join(5)
            assert not thread.is_alive(), f"proxy thread {thread.name} did not stop"

    def __enter__(self) -> Proxy:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    @staticmethod
    def _listen(port: int) -> socket.socket:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", port))
        listener.listen(16)
        return listener

    def _start(self, target: object, *args: object) -> None:
        thread = threading.Thread(target=target, args=args, name="test-proxy", daemon=True)
        self._threads = [t for t in self._threads if t.is_alive()] + [thread]
        thread.start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:  # the listener was closed: cut
                return
            pair = _Pair(client)
            with self._lock:
                if self._mode == "cut":
                    client.close()
                    continue
                self._pairs.add(pair)
                self._start(self._relay, pair)

    def _relay(self, pair: _Pair) -> None:
        try:
            self._forward(pair)
        except OSError:
            pass  # a reset on either side ends the pair like an EOF
        finally:
            with self._lock:
                self._pairs.discard(pair)
            for sock in (pair.client, pair.upstream):
                if sock is not None:
                    sock.close()

    def _forward(self, pair: _Pair) -> None:
        while not pair.closed:
            passing = self._mode == "pass"  # one reading per round: the mode may change meanwhile
            watched = [pair.client]
            if passing:
                if pair.upstream is None:
                    pair.upstream = socket.create_connection(self.upstream, timeout=5)
                    with self._lock:
                        self.upstream_ports.add(pair.upstream.getsockname()[1])
                pair.upstream.sendall(pair.held)
                pair.held = b""
                watched.append(pair.upstream)
            # hang: the client is still read (to notice it hang up) but nothing is forwarded,
            # and the server's bytes stay unread
            readable, _, _ = select.select(watched, [], [], _TICK)
            for sock in readable:
                data = sock.recv(65536)
                if not data:
                    return
                if not passing:
                    pair.held += data
                elif sock is pair.client:
                    pair.upstream.sendall(data)  # type: ignore[union-attr]
                else:
                    pair.client.sendall(data)
