"""/healthz answered while the server starts (segue.core.server.early), on real sockets:
what it answers, what it keeps for the server, and the server serving what it kept."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import Callable

from aiohttp import web

from segue.core.server.early import EarlyAnswers
from segue.core.server.sockets import listen


def ask(port: int, request: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as c:
        c.sendall(request)
        reply = b""
        while chunk := c.recv(65536):
            reply += chunk
        return reply


def connect(port: int, request: bytes) -> socket.socket:
    c = socket.create_connection(("127.0.0.1", port), timeout=10)
    c.sendall(request)
    return c


def wait_until(cond: Callable[[], bool]) -> None:
    for _ in range(3000):
        if cond():
            return
        time.sleep(0.01)
    raise AssertionError("timed out")


def test_healthz_is_answered_and_everything_else_is_kept_unread() -> None:
    sockets = listen("127.0.0.1", 0)
    port = sockets[0].getsockname()[1]
    early = EarlyAnswers(sockets).start()
    try:
        reply = ask(port, b"GET /healthz?probe=1 HTTP/1.1\r\nHost: x\r\n\r\n")
        head, _, body = reply.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200 OK")
        assert b"Content-Type: application/json" in head
        answer = json.loads(body)
        assert answer["status"] == "starting" and answer["uptime_s"] >= 0
        head_only = ask(port, b"HEAD /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert head_only.startswith(b"HTTP/1.1 200 OK") and head_only.endswith(b"\r\n\r\n")
        # A connection closed before it asked anything: dropped. It connects first, so it
        # is accepted no later than the others (the kernel's queue is in order) and the
        # wait below cannot end before the thread has looked at it.
        gone = connect(port, b"")
        gone.close()
        # Another path, a POST to /healthz, a request still arriving: kept for the server.
        others = [
            connect(port, b"GET /score HTTP/1.1\r\nHost: x\r\n\r\n"),
            connect(port, b"POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"),
            connect(port, b"GET /heal"),
        ]
        wait_until(
            lambda: (
                (early.answered, len(early._kept), len(early._partial), len(early._undecided))
                == (2, 2, 1, 0)
            )
        )
        kept = early.stop()
        assert len(kept) == 3
        # Their bytes are still there for the server to read.
        seen = sorted(k.recv(4096, socket.MSG_PEEK).split(b" ")[1] for k in kept)
        assert seen == [b"/heal", b"/healthz", b"/score"]
        for c in [*others, *kept]:
            c.close()
    finally:
        early.stop()
        for s in sockets:
            s.close()


def test_the_server_serves_the_connections_kept_for_it() -> None:
    sockets = listen("127.0.0.1", 0)
    port = sockets[0].getsockname()[1]
    early = EarlyAnswers(sockets).start()

    async def hello(request: web.Request) -> web.Response:
        return web.json_response({"path": request.path})

    async def main() -> list[bytes]:
        client = await asyncio.to_thread(connect, port, b"GET /score HTTP/1.1\r\nHost: x\r\n\r\n")
        await asyncio.to_thread(wait_until, lambda: len(early._kept) == 1)
        app = web.Application()
        app.router.add_get("/score", hello)
        app.router.add_get("/healthz", hello)
        runner = web.AppRunner(app)
        await runner.setup()
        try:
            kept = early.stop()
            for sock in sockets:
                await web.SockSite(runner, sock).start()
            for conn in kept:
                await asyncio.get_running_loop().connect_accepted_socket(runner.server, conn)
            first = await asyncio.to_thread(client.recv, 65536)
            client.close()
            # Once the server runs, it answers /healthz itself.
            later = await asyncio.to_thread(
                ask, port, b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
            )
            return [first, later]
        finally:
            await runner.cleanup()

    try:
        first, later = asyncio.run(main())
    finally:
        for s in sockets:
            s.close()
    assert first.startswith(b"HTTP/1.1 200 OK") and first.endswith(b'{"path": "/score"}')
    assert later.endswith(b'{"path": "/healthz"}')
