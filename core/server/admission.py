"""Admission control: who may open a connection, make a session or call the API.

- A global connection cap below the file-descriptor limit: a connection over it is
  accepted and answered at once with a 503 and closed (its descriptor freed), so the
  server never runs out of descriptors, ``/healthz`` and new players still get in, and
  the log gets one line per interval, not one per refused accept.
- Per client address: open connections, new sessions (a token bucket) and ``/api/*``
  requests (a token bucket). One address flooding never keeps another one out. IPv6
  addresses count per /64 (one host holds a whole /64). Connections from
  ``trusted_proxies`` (nginx) are not capped per address; their requests are counted
  under the client address they forward (``X-Forwarded-For``).
- A connection that has not sent its request headers within ``header_timeout_s`` is
  closed (aiohttp's keep-alive timer, which only closes idle connections: one sending a
  byte now and then (slowloris) has not sent a request and is closed all the same).

The handler subclass hooks aiohttp's per-connection protocol (``RequestHandler``); an
aiohttp without it keeps working without the connection caps (``installed`` is False).
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import resource
import time
from collections.abc import Iterable
from typing import Any

from aiohttp import web

from segue.core.server.ratelimit import TokenBucket

log = logging.getLogger("segue.server")

try:  # pragma: no branch - present in the aiohttp this is written for
    from aiohttp.web_protocol import RequestHandler
except ImportError:  # pragma: no cover
    RequestHandler = None  # type: ignore[assignment,misc]

FD_RESERVE_MIN = 64  # descriptors kept for files, Redis, logs, the listening socket…
LOG_INTERVAL_S = 10.0
MAX_TRACKED_ADDRESSES = 65_536  # rate buckets kept (least recently used dropped first)


def fd_limit() -> int:
    """The soft limit on open file descriptors."""
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    return soft if soft != resource.RLIM_INFINITY else 1 << 20


def auto_max_connections() -> int:
    """The connection cap that leaves room below the descriptor limit."""
    limit = fd_limit()
    return max(16, limit - max(FD_RESERVE_MIN, limit // 20))


def address_key(host: str | None) -> str:
    """The unit limits count per: an IPv4 address, or an IPv6 /64."""
    if not host:
        return "?"
    try:
        ip = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return host
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((int(ip) >> 64 << 64, 64)))
    return str(ip)


class _Buckets:
    """One token bucket per address, at most ``MAX_TRACKED_ADDRESSES`` of them."""

    def __init__(self, rate: float, burst: float) -> None:
        self.rate = rate
        self.burst = burst
        self.buckets: dict[str, TokenBucket] = {}

    def take(self, key: str, now: float, cost: float = 1.0) -> bool:
        buckets = self.buckets
        bucket = buckets.pop(key, None)
        if bucket is None:
            if len(buckets) >= MAX_TRACKED_ADDRESSES:
                # The least recently used goes: it is the most likely to be full again.
                del buckets[next(iter(buckets))]
            bucket = TokenBucket(self.rate, self.burst, now)
        buckets[key] = bucket  # most recently used last
        return bucket.take(now, min(cost, self.burst))


class Admission:
    """The limits of one server, and what they refused (``refused``, by reason)."""

    def __init__(
        self,
        *,
        max_connections: int | None = None,
        max_connections_per_address: int = 256,
        session_rate_per_s: float = 2.0,
        session_burst: int = 60,
        api_rate_per_s: float = 20.0,
        api_burst: int = 40,
        trusted_proxies: Iterable[str] = (),
    ) -> None:
        auto = auto_max_connections()
        if max_connections is None:
            max_connections = auto
        elif max_connections > auto:
            log.warning(
                "max_connections %d is above what %d file descriptors allow; using %d "
                "(raise LimitNOFILE / ulimit -n for more)",
                max_connections,
                fd_limit(),
                auto,
            )
            max_connections = auto
        self.max_connections = max_connections
        self.max_per_address = max_connections_per_address
        self.sessions = _Buckets(session_rate_per_s, session_burst)
        self.api = _Buckets(api_rate_per_s, api_burst)
        self.trusted = frozenset(address_key(p) for p in trusted_proxies)
        self.open = 0
        self.by_address: dict[str, int] = {}
        self.refused: dict[str, int] = {}
        self._unlogged: dict[str, int] = {}
        self._flush: asyncio.TimerHandle | None = None

    # --- connections -----------------------------------------------------------------------

    def admit(self, key: str) -> str | None:
        """Count a new connection from ``key``; the reason it is refused, or None."""
        if self.open >= self.max_connections:
            return "max_connections"
        if key not in self.trusted:
            n = self.by_address.get(key, 0)
            if n >= self.max_per_address:
                return "max_connections_per_address"
            self.by_address[key] = n + 1
        self.open += 1
        return None

    def release(self, key: str) -> None:
        self.open -= 1
        n = self.by_address.get(key)
        if n is not None:
            if n <= 1:
                del self.by_address[key]
            else:
                self.by_address[key] = n - 1

    # --- requests --------------------------------------------------------------------------

    def client_key(self, request: web.Request) -> str:
        """The address a request counts under (behind a trusted proxy: the client's)."""
        transport = request.transport
        peer = transport.get_extra_info("peername") if transport is not None else None
        key = address_key(peer[0] if peer else None)
        if key in self.trusted:
            forwarded = request.headers.get("X-Forwarded-For")
            if forwarded:
                # The rightmost address our proxy did not add itself is the client's.
                for hop in reversed(forwarded.split(",")):
                    hop_key = address_key(hop.strip())
                    if hop_key not in self.trusted:
                        return hop_key
        return key

    def new_session_ok(self, key: str) -> bool:
        ok = self.sessions.take(key, time.monotonic())
        if not ok:
            self.note("session_rate")
        return ok

    def api_ok(self, key: str, cost: float = 1.0) -> bool:
        ok = self.api.take(key, time.monotonic(), cost)
        if not ok:
            self.note("api_rate")
        return ok

    # --- what was refused --------------------------------------------------------------------

    def note(self, reason: str) -> None:
        """Count a refusal; logged as one line per ``LOG_INTERVAL_S``."""
        self.refused[reason] = self.refused.get(reason, 0) + 1
        self._unlogged[reason] = self._unlogged.get(reason, 0) + 1
        if self._flush is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                return
            self._log()
            self._flush = loop.call_later(LOG_INTERVAL_S, self._log_again)

    def _log_again(self) -> None:
        self._flush = None
        if self._unlogged:
            self._log()
            self._flush = asyncio.get_running_loop().call_later(LOG_INTERVAL_S, self._log_again)

    def _log(self) -> None:
        counts = ", ".join(f"{n} {reason}" for reason, n in sorted(self._unlogged.items()))
        self._unlogged = {}
        log.warning(
            "refused: %s (connections open %d of %d; further refusals are summed per %gs)",
            counts,
            self.open,
            self.max_connections,
            LOG_INTERVAL_S,
        )

    def close(self) -> None:
        if self._flush is not None:
            self._flush.cancel()
            self._flush = None


def _refusal(status: int, message: str) -> bytes:
    body = ('{"type":"error","code":"too_many_connections","message":"' + message + '"}').encode()
    head = (
        f"HTTP/1.1 {status} {'Service Unavailable' if status == 503 else 'Too Many Requests'}"
        "\r\nContent-Type: application/json\r\nConnection: close\r\nRetry-After: 5\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


_REFUSALS = {
    "max_connections": _refusal(503, "the server holds too many connections"),
    "max_connections_per_address": _refusal(429, "too many connections from this address"),
}


if RequestHandler is not None:

    class GuardedHandler(RequestHandler):  # type: ignore[misc,valid-type]
        """aiohttp's connection protocol, admitted (or refused) when the connection opens."""

        __slots__ = ("_admission", "_key")

        def __init__(self, admission: Admission, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._admission = admission
            self._key: str | None = None

        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            peer = transport.get_extra_info("peername")
            key = address_key(peer[0] if peer else None)
            admission = self._admission
            reason = admission.admit(key)
            if reason is not None:
                admission.note(reason)
                self._manager = None  # never started: connection_lost has nothing to do
                self._force_close = True  # and bytes that still arrive are not parsed
                try:
                    transport.write(_REFUSALS[reason])  # type: ignore[attr-defined]
                    transport.close()
                except Exception:  # pragma: no cover - the peer is gone already
                    transport.abort()  # type: ignore[attr-defined]
                self._parser = None  # never used; it refers back to this protocol
                _uncycle(transport)
                return
            self._key = key
            super().connection_made(transport)

        def connection_lost(self, exc: BaseException | None) -> None:
            key = self._key
            if key is not None:
                self._key = None
                self._admission.release(key)
            transport = self.transport
            super().connection_lost(exc)
            _uncycle(transport)

    def _uncycle(transport: asyncio.BaseTransport | None) -> None:
        """Break the reference cycle a closed transport keeps (Python 3.11's asyncio
        transport holds a bound method of itself), so that its objects go at once
        instead of waiting for a full garbage collection: under a flood of connections,
        thousands a second, which made full collections longer. The transport reads
        no more (closing, its reader is removed)."""
        if transport is not None and getattr(transport, "_read_ready_cb", None) is not None:
            transport._read_ready_cb = None  # type: ignore[attr-defined]

    class GuardedServer(web.Server):
        """aiohttp's server making :class:`GuardedHandler` protocols."""

        admission: Admission

        def __call__(self) -> GuardedHandler:
            return GuardedHandler(self.admission, self, loop=self._loop, **self._kwargs)

else:  # pragma: no cover
    GuardedServer = None  # type: ignore[assignment,misc]


def install(server: web.Server, admission: Admission) -> bool:
    """Make ``server`` (a runner's) admit connections through ``admission``."""
    if GuardedServer is None or type(server) is not web.Server:
        return False
    server.__class__ = GuardedServer
    server.admission = admission  # type: ignore[attr-defined]
    return True


__all__ = ["Admission", "address_key", "auto_max_connections", "fd_limit", "install"]
