"""A TCP proxy in front of a broker that can turn into a black hole: it keeps accepting
connections and never answers, as a broker behind a dropped route or a frozen VM does."""

from __future__ import annotations

import contextlib
import select
import socket
import threading
from collections.abc import Iterator


class Blackhole:
    """Forwards 127.0.0.1:<port> to ``target`` until ``swallow()``; ``forward()`` resumes."""

    def __init__(self, target: tuple[str, int]):
        self.target = target
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self.listener.getsockname()[1]
        self.swallowing = threading.Event()
        self.stopped = threading.Event()
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def swallow(self) -> None:
        """From now on accept and never answer; live connections freeze too."""
        self.swallowing.set()

    def forward(self) -> None:
        """Drop every connection made so far (clients see a reset and reconnect), forward again."""
        with self._lock:
            for sock in self._sockets:
                with contextlib.suppress(OSError):
                    sock.close()
            self._sockets.clear()
        self.swallowing.clear()

    def close(self) -> None:
        """Stop listening and drop everything."""
        self.stopped.set()
        self.forward()
        self.listener.close()

    def _track(self, *socks: socket.socket) -> None:
        with self._lock:
            self._sockets.extend(socks)

    def _accept(self) -> None:
        while not self.stopped.is_set():
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if self.swallowing.is_set():
                self._track(client)  # held open, never read, never answered
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            self._track(client, upstream)
            threading.Thread(target=self._pipe, args=(client, upstream), daemon=True).start()

    def _pipe(self, a: socket.socket, b: socket.socket) -> None:
        peers = {a: b, b: a}
        try:
            while not self.stopped.is_set():
                if self.swallowing.is_set():  # frozen: bytes stay where they are
                    self.stopped.wait(0.05)
                    continue
                ready, _, _ = select.select([a, b], [], [], 0.1)
                if self.swallowing.is_set():  # it fell while we waited: forward nothing
                    continue
                for sock in ready:
                    data = sock.recv(65536)
                    if not data:
                        return
                    peers[sock].sendall(data)
        except (OSError, ValueError):
            return
        finally:
            for sock in (a, b):
                with contextlib.suppress(OSError):
                    sock.close()


@contextlib.contextmanager
def blackhole(target: tuple[str, int]) -> Iterator[Blackhole]:
    """A Blackhole proxy for the duration."""
    proxy = Blackhole(target)
    try:
        yield proxy
    finally:
        proxy.close()
