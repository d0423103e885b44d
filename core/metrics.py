"""Prometheus metrics of one server app, in its own registry (several apps per process in tests).

Counters on the hot path are bound to their labels once (``.labels(...)`` is a dict lookup
under a lock; the children are cached here), and gauges that mirror live counts
(sessions, connections, stored tracks) are read when scraped rather than kept in step.
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CONTENT_TYPE_LATEST as CONTENT_TYPE  # noqa: F401 (re-exported)
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from segue.core.protocol import CLIENT_TYPES, ERROR_CODES


class Metrics:
    """The server's metrics; ``render()`` is the body of ``GET /metrics``."""

    def __init__(
        self,
        sessions: Callable[[], float],
        connections: Callable[[], float],
        tracks: Callable[[], float],
    ) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        g = Gauge("segue_sessions", "Sessions held (connected or within their TTL)", registry=r)
        g.set_function(sessions)
        g = Gauge("segue_connections", "Open WebSocket connections", registry=r)
        g.set_function(connections)
        g = Gauge("segue_tracks_stored", "Tracks stored and servable", registry=r)
        g.set_function(tracks)
        self.connections_total = Counter(
            "segue_connections_accepted", "WebSocket connections accepted", registry=r
        )
        self.closed = Counter(
            "segue_connections_closed",
            "WebSocket connections closed by the server, by close code",
            ["code"],
            registry=r,
        )
        received = Counter(
            "segue_messages_received",
            "Client messages received, by type (invalid ones as 'invalid')",
            ["type"],
            registry=r,
        )
        self.received = {t: received.labels(t) for t in (*CLIENT_TYPES, "invalid")}
        self.sent = Counter("segue_messages_sent", "Messages written to connections", registry=r)
        self.cues = Counter("segue_cues", "Cues decided (one per session cue)", registry=r)
        self.stingers = Counter("segue_stingers", "Stingers played", registry=r)
        self.pending = Counter(
            "segue_pending", "Cues deferred while a mood's track is generated", registry=r
        )
        self.events = Counter("segue_events", "Game events received", registry=r)
        errors = Counter("segue_errors", "Error replies sent, by code", ["code"], registry=r)
        self.errors = {c: errors.labels(c) for c in ERROR_CODES}
        self.http_state = Counter(
            "segue_http_requests",
            "HTTP API requests, by route and status",
            ["route", "status"],
            registry=r,
        )
        generations = Counter(
            "segue_generations",
            "On-demand generations finished, by result",
            ["result"],
            registry=r,
        )
        self.generations = {k: generations.labels(k) for k in ("stored", "skipped", "failed")}
        self.generating = Gauge(
            "segue_generations_in_flight", "On-demand generations running", registry=r
        )
        self.cache_hits = Counter(
            "segue_cache_hits", "Mood lookups answered by a stored track", registry=r
        )
        self.cache_misses = Counter(
            "segue_cache_misses", "Mood lookups that found no stored track", registry=r
        )
        self.track_bytes = Counter(
            "segue_track_bytes_sent", "Audio bytes served from /tracks", registry=r
        )
        self.slow_drops = Counter(
            "segue_slow_clients_dropped",
            "Connections dropped because their send queue filled up",
            registry=r,
        )
        self.decision_seconds = Histogram(
            "segue_decision_seconds",
            "Time from a state message to its cue written to every connection",
            buckets=(0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1),
            registry=r,
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)
