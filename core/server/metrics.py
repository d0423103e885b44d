"""Prometheus metrics of one server app, in its own registry (several apps per process in tests).

The hot path counts in plain Python ints and dicts (an increment is a few nanoseconds;
a prometheus-client ``Counter.inc`` takes a lock and checks its labels), and a custom
collector turns them into metric families when ``/metrics`` is scraped. Gauges that
mirror live counts (sessions, connections, stored tracks) are read at scrape time too.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST as CONTENT_TYPE
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from segue.core.protocol import CLIENT_TYPES, ERROR_CODES

# What the server sends (docs/protocol.md, "Server → client").
SERVER_TYPES = ("welcome", "cue", "stinger", "pending", "prefetch", "pong", "error")

__all__ = ["CONTENT_TYPE", "Metrics"]


class Metrics:
    """The server's counters; ``render()`` is the body of ``GET /metrics``."""

    def __init__(
        self,
        sessions: Callable[[], float],
        connections: Callable[[], float],
        tracks: Callable[[], float],
    ) -> None:
        self._sessions = sessions
        self._connections = connections
        self._tracks = tracks
        self.connections_accepted = 0
        self.closed: dict[str, int] = {}  # by close code
        # JSON messages by type, refused ones as "invalid", and the other frames a client
        # sends: binary, ping and pong (control) frames.
        self.received: dict[str, int] = dict.fromkeys(
            (*CLIENT_TYPES, "invalid", "binary", "ping_frame", "pong_frame"), 0
        )
        self.refused: dict[str, int] = {}  # connections, sessions, requests refused, by reason
        # Messages written, by type, and the server's control frames (pings, pongs).
        self.sent: dict[str, int] = defaultdict(
            int, dict.fromkeys((*SERVER_TYPES, "ping_frame", "pong_frame"), 0)
        )
        self.cues = 0
        self.stingers = 0
        self.pending = 0
        self.events = 0
        # Codes beyond the protocol's (HTTP's "timeout") are counted too.
        self.errors: dict[str, int] = defaultdict(int, dict.fromkeys(ERROR_CODES, 0))
        self.http: dict[tuple[str, int], int] = {}  # (route, status)
        self.generations: dict[str, int] = dict.fromkeys(("stored", "failed"), 0)
        self.generating = 0
        self.cache_hits = 0
        self.cache_misses = 0
        self.track_bytes = 0
        self.slow_drops = 0
        # Chunks read from suspect connections, parsed after the rest (the server's slow lane).
        self.slow_lane_chunks: Callable[[], float] = lambda: 0
        # Round trips to Redis for rooms shared by several servers (server.rooms), or None.
        self.rooms_round_trips: Callable[[], float] | None = None
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(_Collector(self))

    def close(self, code: int, n: int = 1) -> None:
        key = str(code)
        self.closed[key] = self.closed.get(key, 0) + n

    def render(self) -> bytes:
        return generate_latest(self.registry)


def _counter(name: str, doc: str, value: float) -> CounterMetricFamily:
    return CounterMetricFamily(name, doc, value=value)


def _labelled(name: str, doc: str, label: str, values: dict[Any, int]) -> CounterMetricFamily:
    family = CounterMetricFamily(name, doc, labels=[label])
    for key, value in sorted(values.items()):
        family.add_metric([str(key)], value)
    return family


class _Collector(Collector):
    def __init__(self, m: Metrics) -> None:
        self.m = m

    def collect(self) -> Iterator[Any]:
        m = self.m
        yield GaugeMetricFamily(
            "segue_sessions", "Sessions held (connected or within their TTL)", m._sessions()
        )
        yield GaugeMetricFamily("segue_connections", "Open WebSocket connections", m._connections())
        yield GaugeMetricFamily("segue_tracks_stored", "Tracks stored and servable", m._tracks())
        yield GaugeMetricFamily(
            "segue_generations_in_flight", "On-demand generations running", m.generating
        )
        yield _counter(
            "segue_connections_accepted", "WebSocket connections accepted", m.connections_accepted
        )
        yield _labelled(
            "segue_connections_closed",
            "WebSocket connections closed by the server, by close code",
            "code",
            m.closed,
        )
        yield _labelled(
            "segue_messages_received",
            "Client messages received, by type (invalid ones as 'invalid')",
            "type",
            m.received,
        )
        yield _labelled(
            "segue_messages_sent",
            "Messages written to connections (each connection counted), by type",
            "type",
            m.sent,
        )
        yield _labelled(
            "segue_refused",
            "Connections, sessions and API requests refused by admission control, by reason",
            "reason",
            m.refused,
        )
        yield _counter("segue_cues", "Cues decided (one per session cue)", m.cues)
        yield _counter("segue_stingers", "Stingers played", m.stingers)
        yield _counter("segue_pending", "Cues deferred while a mood is generated", m.pending)
        yield _counter("segue_events", "Game events received", m.events)
        yield _labelled("segue_errors", "Error replies sent, by code", "code", m.errors)
        family = CounterMetricFamily(
            "segue_http_requests",
            "HTTP API requests, by route and status",
            labels=["route", "status"],
        )
        for (route, status), value in sorted(m.http.items()):
            family.add_metric([route, str(status)], value)
        yield family
        yield _labelled(
            "segue_generations",
            "On-demand generations finished, by result",
            "result",
            m.generations,
        )
        yield _counter("segue_cache_hits", "Mood lookups answered by a stored track", m.cache_hits)
        yield _counter(
            "segue_cache_misses", "Mood lookups that found no stored track", m.cache_misses
        )
        yield _counter("segue_track_bytes_sent", "Audio bytes served from /tracks", m.track_bytes)
        yield _counter(
            "segue_slow_clients_dropped",
            "Connections dropped because their send queue filled up",
            m.slow_drops,
        )
        if m.rooms_round_trips is not None:
            yield _counter(
                "segue_rooms_redis_round_trips",
                "Round trips to Redis for shared rooms (pipelines, scripts, inbox reads)",
                m.rooms_round_trips(),
            )
        yield _counter(
            "segue_slow_lane_chunks",
            "Chunks read from connections refused a frame in the last 10 s, parsed after the rest",
            m.slow_lane_chunks(),
        )
