"""Redis failing under a running cache and server: stopped, restarted, frozen (SIGSTOP).

A real redis-server is stopped and frozen mid-test. What must hold: nothing waits for
Redis on the event loop, tracks already known are served, unknown ids cost nothing to
remember, and money spent and tracks stored while Redis is away reach it when it is back,
once (also from a journal that a dead process left).
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import aiohttp
import pytest
from redis_support import RedisServer, require_redis
from server_support import SCORE, connect_raw, joined, recv_type, serve

from segue.core.errors import TransientError
from segue.core.plugins import Plugins
from segue.core.track import Track


@pytest.fixture
def redis_server(tmp_path):
    require_redis()
    server = RedisServer(tmp_path / "redis-data").start()
    yield server
    server.stop()


def make_cache(url: str, state_dir: Path, prefix: str = "t"):
    plugins = Plugins(strict=False, load_entry_points=False)
    config = {"url": url, "prefix": prefix, "lock_ttl_s": 2.0, "timeout_s": 1.0}
    return plugins.caches.get("redis").factory(config, state_dir)


def track(key: str) -> Track:
    made = Track(id=key, mood="explore", variant=0, format="wav", duration_s=3.0, bytes=10)
    return Track.from_dict(made.to_dict())  # as it comes back from the cache


def eventually(cond, timeout: float = 10.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.05)
    return bool(cond())


def test_known_tracks_are_served_and_writes_kept_while_redis_is_down(redis_server, tmp_path):
    import redis

    state = tmp_path / ".segue"
    cache = make_cache(redis_server.url, state)
    cache.set("known", track("known"))
    cache.record_cost("known", 0.25)
    assert eventually(lambda: cache.pending_writes() == 0)
    redis_server.stop()

    assert cache.get("known") == track("known")
    for i in range(1000):  # unknown ids: answered without Redis, nothing remembered
        assert cache.get(f"unknown-{i}") is None
    assert len(cache._mirror) == 1
    # Paid while Redis is down: kept (ledger at once, the track served), journalled.
    cache.record_cost("late", 1.5)
    cache.set("late", track("late"))
    assert cache.get("late") == track("late")
    assert cache.ledger() == {"known": 0.25, "late": 1.5}
    assert cache.pending_writes() == 2
    journal = list((state / "redis-outbox").glob("*.jsonl"))
    assert len(journal) == 1 and len(journal[0].read_text().splitlines()) == 2
    cache.close(flush_timeout_s=0.2)  # Redis still down: the journal stays

    # Redis back: the next process (here: the next instance) sends the journal, once.
    redis_server.start()
    again = make_cache(redis_server.url, state)
    assert eventually(lambda: again.pending_writes() == 0)
    admin = redis.Redis.from_url(redis_server.url)
    assert json.loads(admin.hget("t:tracks", "late"))["id"] == "late"
    assert eventually(lambda: again.ledger() == {"known": 0.25, "late": 1.5})
    assert {int(v) for v in admin.hgetall("t:ledger").values()} == {250_000, 1_500_000}
    assert not list((state / "redis-outbox").glob("*.jsonl"))
    again.close()
    # A journal replayed twice (a process killed after sending, before forgetting) counts once.
    (state / "redis-outbox").mkdir(exist_ok=True)
    op = {"op": "cost", "key": "dup", "micro": 1_000_000, "id": "same-id"}
    for n in (1, 2):
        (state / "redis-outbox" / f"999999999-{n}.jsonl").write_text(json.dumps(op) + "\n")
    third = make_cache(redis_server.url, state)
    assert eventually(lambda: third.pending_writes() == 0)
    assert eventually(lambda: third.ledger().get("dup") == 1.0)
    assert int(admin.hget("t:ledger", "dup")) == 1_000_000
    third.close()
    admin.close()


async def test_a_frozen_redis_blocks_nothing(redis_server, tmp_path):
    cache = make_cache(redis_server.url, tmp_path / ".segue")
    cache.set("known", track("known"))
    assert eventually(lambda: cache.pending_writes() == 0)
    redis_server.freeze()
    try:
        loop = asyncio.get_running_loop()
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        task = loop.create_task(ticker())
        await asyncio.sleep(0.05)
        for i in range(200):
            assert cache.get(f"nope-{i}") is None
            assert cache.get("known") == track("known")
        cache.record_cost("known", 2.0)  # queued, not waited for
        assert cache.ledger() == {"known": 2.0}
        before = ticks
        await asyncio.sleep(0.3)
        assert ticks > before  # the loop kept running
        task.cancel()
        # Without Redis no lock can be had: a clear error, nothing generated.
        with pytest.raises(TransientError, match="redis unreachable"):
            async with cache.lock("k", timeout_s=0):
                pass
    finally:
        redis_server.thaw()
    assert await asyncio.to_thread(eventually, lambda: cache.pending_writes() == 0)
    cache.close()


async def test_server_serves_known_tracks_while_redis_is_stopped_or_frozen(redis_server, tmp_path):
    text = SCORE.replace(
        "cache: disk", f"cache: {{backend: redis, url: '{redis_server.url}', prefix: srv}}"
    )
    async with serve(tmp_path, text) as live:
        tracks = live.server.stored_tracks()
        assert tracks
        known = f"{live.http}/tracks/{tracks[0].filename}"
        unknown = f"{live.http}/tracks/{'ab' * 32}.wav"
        async with aiohttp.ClientSession() as http:
            redis_server.stop()
            for _ in range(3):
                async with http.get(known) as r:
                    assert r.status == 200
                    assert len(await r.read()) == tracks[0].bytes
                async with http.get(unknown) as r:
                    assert r.status == 404
            async with http.get(f"{live.http}/healthz") as r:
                assert r.status == 200
                assert (await r.json())["tracks"] == len(tracks)
            async with http.post(
                f"{live.http}/api/sessions/s1/state", json={"set": {"in_combat": True}}
            ) as r:
                assert r.status == 200
                assert (await r.json())["mood"] == "combat"

            redis_server.start()
            redis_server.freeze()
            try:
                async with connect_raw(live.ws + "?session=frozen") as ws:
                    await joined(ws)
                    for i in range(20):
                        async with http.get(f"{live.http}/tracks/{i:064x}.wav") as r:
                            assert r.status == 404
                        async with http.get(known) as r:
                            assert r.status == 200
                        await ws.send(json.dumps({"type": "ping", "id": i}))
                        assert (await recv_type(ws, "pong", timeout=2.0))["id"] == i
            finally:
                redis_server.thaw()


async def test_redis_stopped_mid_pregen_pays_each_track_once(redis_server, tmp_path):
    import pregen_faulty
    import pregen_support as ps

    from segue.core.pregen.pipeline import Pipeline

    cache = {"name": "redis", "url": redis_server.url, "prefix": "pg", "timeout_s": 1.0}
    moods = {f"m{i}": {"prompt": f"mood {i} [sleep=0.6]"} for i in range(4)}
    s = ps.spec(moods, generator={"name": "faulty", "cost_usd": 0.4, "concurrency": 2}, cache=cache)

    def pipeline() -> Pipeline:
        pm = Plugins(strict=False, load_entry_points=False, extra=[pregen_faulty])
        return Pipeline(ps.build_score(tmp_path, s), pm, backoff_base_s=0.01)

    def calls() -> dict[str, int]:
        out: dict[str, int] = {}
        for r in ps.records(tmp_path):
            if r["event"] == "start":
                out[r["key"]] = out.get(r["key"], 0) + 1
        return out

    first = pipeline()
    run = asyncio.get_running_loop().create_task(first.run())
    while not calls():  # the first two generations are under way
        await asyncio.sleep(0.02)
    redis_server.stop()
    summary = await run
    await first.aclose()
    paid = calls()
    assert paid and set(paid.values()) == {1}
    assert summary.count("stored") == len(paid)  # what was paid for is kept, not lost
    for outcome in summary.failed:
        assert "redis unreachable" in outcome.reason and outcome.cost_usd == 0
    assert summary.spent_usd == pytest.approx(0.4 * len(paid))

    redis_server.start()  # fixed: the rerun sends the journal, then generates the rest
    second = pipeline()
    try:
        summary = await second.run()
        assert not summary.failed
        assert summary.count("skipped") == len(paid)
        assert second.ledger_total() == pytest.approx(0.4 * 4)
    finally:
        await second.aclose()
    assert set(calls().values()) == {1} and len(calls()) == 4
