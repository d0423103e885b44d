"""``/healthz`` answered from the moment the port is taken, while the server starts.

``segue serve`` takes its port first and then spends most of a second importing and
starting the HTTP server. Meanwhile a thread of :class:`EarlyAnswers` accepts on the
listening sockets: a ``GET`` or ``HEAD /healthz`` is answered at once (200,
``{"status": "starting", "uptime_s": …}``, docs/protocol.md) and closed; every other
connection (a WebSocket, a page, a track) is only looked at, its bytes left unread in
the kernel, and kept: :meth:`EarlyAnswers.stop` hands them to the event loop, which
gives them to the HTTP server as if it had accepted them itself (they wait for it,
nothing is refused). The thread is started after the head-start worker is forked (a
fork copies one thread) and stopped before the server accepts.

Nothing here imports the HTTP server: this runs before it is imported.
"""

from __future__ import annotations

import contextlib
import json
import select
import socket
import threading
import time

__all__ = ["EarlyAnswers"]

# Bytes looked at to read a request line; longer request lines go to the server.
PEEK = 2048
HEALTHZ = b"/healthz"
RECHECK_S = 0.01


class EarlyAnswers:
    """Answer ``/healthz`` on ``sockets`` in a thread until :meth:`stop`."""

    def __init__(self, sockets: list[socket.socket]) -> None:
        self._listening = list(sockets)
        self._started = time.monotonic()
        self._wake_r, self._wake_w = socket.socketpair()
        self._undecided: list[socket.socket] = []  # accepted, nothing read yet
        self._partial: list[socket.socket] = []  # a request line still arriving
        self._kept: list[socket.socket] = []
        self.answered = 0
        self._thread = threading.Thread(target=self._run, name="segue-early", daemon=True)

    def start(self) -> EarlyAnswers:
        self._thread.start()
        return self

    def stop(self) -> list[socket.socket]:
        """Stop answering; the connections accepted and not answered, for the server."""
        if self._thread.is_alive():
            with contextlib.suppress(OSError):
                self._wake_w.send(b"x")
            self._thread.join()
        for s in (self._wake_r, self._wake_w):
            s.close()
        kept = self._kept + self._undecided + self._partial
        self._kept, self._undecided, self._partial = [], [], []
        return kept

    def _run(self) -> None:
        try:
            while True:
                watched = [self._wake_r, *self._listening, *self._undecided]
                # A request that arrived in part stays readable: it is looked at again
                # every few ms instead of being watched (which would spin).
                wait = RECHECK_S if self._partial else None
                readable, _, _ = select.select(watched, [], [], wait)
                if self._wake_r in readable:
                    return
                for sock in readable:
                    if sock in self._listening:
                        self._accept(sock)
                    else:
                        self._undecided.remove(sock)
                        self._look(sock)
                partial, self._partial = self._partial, []
                for conn in partial:
                    self._look(conn)
        except (OSError, ValueError):  # a socket closed under it (the server stops)
            return

    def _accept(self, listening: socket.socket) -> None:
        while True:
            try:
                conn, _ = listening.accept()
            except (BlockingIOError, InterruptedError):
                return
            conn.setblocking(False)
            self._undecided.append(conn)

    def _look(self, conn: socket.socket) -> None:
        """Answer the connection if it asks for /healthz, else keep it for the server;
        a request not all there yet is looked at again."""
        try:
            head = conn.recv(PEEK, socket.MSG_PEEK)
        except (BlockingIOError, InterruptedError):
            self._undecided.append(conn)
            return
        except OSError:
            head = b""
        if not head:  # closed before it asked anything
            conn.close()
            return
        line, found, _ = head.partition(b"\r\n")
        end = head.find(b"\r\n\r\n")
        if (not found or end < 0) and len(head) < PEEK and self._may_be_healthz(line):
            self._partial.append(conn)  # still arriving
            return
        parts = line.split(b" ")
        target = parts[1].split(b"?", 1)[0] if len(parts) > 1 else b""
        if end < 0 or parts[0] not in (b"GET", b"HEAD") or target != HEALTHZ:
            self._kept.append(conn)
            return
        self._answer(conn, head[: end + 4], parts[0] == b"HEAD")

    @staticmethod
    def _may_be_healthz(line: bytes) -> bool:
        """Whether a request line (perhaps cut short) can still be a /healthz GET or HEAD."""
        for method in (b"GET ", b"HEAD "):
            asked = method + HEALTHZ
            if asked.startswith(line[: len(asked)]) and (
                len(line) <= len(asked) or line[len(asked) : len(asked) + 1] in (b" ", b"?")
            ):
                return True
        return False

    def _answer(self, conn: socket.socket, head: bytes, head_only: bool) -> None:
        body = json.dumps(
            {"status": "starting", "uptime_s": round(time.monotonic() - self._started, 3)}
        ).encode()
        reply = (
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json; charset=utf-8\r\n"
            b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(body)
        )
        try:
            # Read the request (its bytes were only looked at): a socket closed with
            # unread bytes is reset, and the client could lose the answer.
            conn.setblocking(True)
            conn.settimeout(1.0)
            conn.recv(len(head))
            conn.sendall(reply if head_only else reply + body)
            conn.shutdown(socket.SHUT_WR)
            self.answered += 1
        except OSError:
            pass
        finally:
            conn.close()
