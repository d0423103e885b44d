"""One contract for every cache backend: disk, memory and redis (a real redis-server)."""

from __future__ import annotations

import asyncio
import os
import socket
import time

import pytest
from redis_support import RedisServer, require_redis

from segue.core.errors import ConfigError
from segue.core.plugins import Plugins
from segue.core.track import Track


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory):
    """A throwaway redis-server on a free loopback port."""
    require_redis()
    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    yield server.url
    server.stop()


BACKENDS = ["memory", "disk", "redis"]


@pytest.fixture(params=BACKENDS)
def factory(request, tmp_path):
    """Makes caches of one backend that share state (the same folder / server / prefix)."""
    name = request.param
    plugins = Plugins(strict=False, load_entry_points=False)
    config: dict = {}
    if name == "redis":
        url = request.getfixturevalue("redis_url")
        config = {"url": url, "prefix": f"t{os.getpid()}{time.monotonic_ns()}", "lock_ttl_s": 0.6}
    made = []

    def make():
        cache = plugins.caches.get(name).factory(dict(config), tmp_path / ".segue")
        made.append(cache)
        return cache

    make.backend = name
    yield make
    for cache in made:
        cache.close()


def track(key: str, **kw) -> Track:
    return Track(
        id=key,
        mood="explore",
        variant=0,
        format="ogg",
        duration_s=3.0,
        loop_end_s=2.5,
        bytes=123,
        sha256="ab" * 32,
        extra={"x": [1, 2]},
        **kw,
    )


def eventually(cond, timeout: float = 3.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.01)
    return cond()


async def test_tracks_round_trip(factory):
    cache = factory()
    assert cache.name == factory.backend
    assert cache.get("k1") is None
    t = track("k1", bpm=120.0)
    cache.set("k1", t)
    assert cache.get("k1") == t
    cache.set("k2", track("k2"))
    assert sorted(x.id for x in cache.tracks()) == ["k1", "k2"]
    cache.set("k1", t.replace(mood="combat"))  # overwrite
    assert cache.get("k1").mood == "combat"
    cache.delete("k1")
    cache.delete("absent")  # no error
    assert cache.get("k1") is None
    assert [x.id for x in cache.tracks()] == ["k2"]


async def test_ledger_accumulates_exactly(factory):
    cache = factory()
    assert cache.ledger() == {}
    for _ in range(10):
        cache.record_cost("k1", 0.1)
    cache.record_cost("k2", 0.8)
    ledger = cache.ledger()
    assert ledger["k1"] == pytest.approx(1.0, abs=1e-9) and ledger["k2"] == pytest.approx(0.8)
    assert sum(ledger.values()) == pytest.approx(1.8)


async def test_lock_is_exclusive_per_key_and_times_out(factory):
    cache = factory()
    async with cache.lock("k"):
        with pytest.raises(TimeoutError):
            async with cache.lock("k", timeout_s=0):
                pass
        with pytest.raises(TimeoutError):
            async with cache.lock("k", timeout_s=0.1):
                pass
        async with cache.lock("other", timeout_s=0):  # other keys are free
            pass
    async with cache.lock("k", timeout_s=0):  # released
        pass


async def test_lock_is_released_when_the_body_raises(factory):
    cache = factory()
    with pytest.raises(RuntimeError):
        async with cache.lock("k"):
            raise RuntimeError("boom")
    async with cache.lock("k", timeout_s=0):
        pass


async def test_waiters_take_the_lock_one_at_a_time(factory):
    cache = factory()
    inside = 0
    most = 0

    async def worker() -> None:
        nonlocal inside, most
        async with cache.lock("k"):
            inside += 1
            most = max(most, inside)
            await asyncio.sleep(0.02)
            inside -= 1

    await asyncio.gather(*(worker() for _ in range(5)))
    assert most == 1


async def test_instances_sharing_a_backend_see_each_other(factory):
    if factory.backend == "memory":
        pytest.skip("memory caches are private to their instance")
    a, b = factory(), factory()
    assert b.get("k") is None  # a miss that a read-through copy might keep
    a.set("k", track("k"))
    assert eventually(lambda: b.get("k") is not None)
    assert b.get("k") == track("k")
    a.delete("k")
    assert eventually(lambda: b.get("k") is None)
    a.record_cost("k", 0.5)
    assert a.ledger() == {"k": 0.5}  # at once in the instance that spent it
    assert eventually(lambda: b.ledger() == {"k": 0.5})
    async with a.lock("k"):
        with pytest.raises(TimeoutError):
            async with b.lock("k", timeout_s=0):
                pass
    async with b.lock("k", timeout_s=0):
        pass


def redis_caches(redis_url, tmp_path, n: int):
    plugins = Plugins(strict=False, load_entry_points=False)
    config = {"url": redis_url, "prefix": f"r{time.monotonic_ns()}", "lock_ttl_s": 1.0}
    return [plugins.caches.get("redis").factory(dict(config), tmp_path) for _ in range(n)]


async def test_redis_get_is_served_locally_after_the_first_read(redis_url, tmp_path):
    import redis

    (cache,) = redis_caches(redis_url, tmp_path, 1)
    cache.set("k", track("k"))
    admin = redis.Redis.from_url(redis_url)

    def hget_calls() -> int:
        stats = admin.info("commandstats").get("cmdstat_hget", {})
        return int(stats.get("calls", 0))

    def settled() -> bool:
        # Our own set's invalidation comes back through pub/sub a moment later and may drop
        # what the first reads kept: read until the copy holds.
        before = hget_calls()
        for _ in range(20):
            cache.get("k")
            cache.get("missing")
        return hget_calls() == before

    assert eventually(settled)
    before = hget_calls()
    for _ in range(500):
        assert cache.get("k") is not None
        assert cache.get("missing") is None
    assert hget_calls() == before  # no round trip per get
    admin.close()
    cache.close()


async def test_redis_lock_is_renewed_while_held_and_expires_when_abandoned(redis_url, tmp_path):
    import redis

    a, b = redis_caches(redis_url, tmp_path, 2)  # lock_ttl_s is 1.0
    async with a.lock("k"):
        await asyncio.sleep(2.2)  # well past the TTL: renewal keeps it
        with pytest.raises(TimeoutError):
            async with b.lock("k", timeout_s=0):
                pass
    # A holder that died: its lock key (another token) expires on its own.
    admin = redis.Redis.from_url(redis_url)
    admin.set(f"{a.prefix}:lock:dead", "someone-elses-token", px=300)
    with pytest.raises(TimeoutError):
        async with b.lock("dead", timeout_s=0):
            pass
    async with b.lock("dead", timeout_s=2):
        pass
    admin.close()
    a.close()
    b.close()


def test_bad_options_are_config_errors(tmp_path):
    plugins = Plugins(strict=False, load_entry_points=False)
    with pytest.raises(ConfigError, match="unknown option"):
        plugins.caches.get("disk").factory({"nope": 1}, tmp_path)
    with pytest.raises(ConfigError, match="unknown option"):
        plugins.caches.get("memory").factory({"nope": 1}, tmp_path)
    with pytest.raises(ConfigError, match="url"):
        plugins.caches.get("redis").factory({"url": "http://x"}, tmp_path)
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(ConfigError, match="cannot reach"):
        plugins.caches.get("redis").factory(
            {"url": f"redis://:secret@127.0.0.1:{port}/0"}, tmp_path
        )


def test_disk_cache_paths_are_relative_to_the_score_folder(tmp_path):
    plugins = Plugins(strict=False, load_entry_points=False)
    cache = plugins.caches.get("disk").factory({"path": "elsewhere/cache"}, tmp_path / ".segue")
    try:
        cache.set("k", track("k"))
        assert (tmp_path / "elsewhere" / "cache").is_dir()
    finally:
        cache.close()


async def test_two_pipelines_on_one_redis_cache_generate_each_key_once(redis_url, tmp_path):
    """Like two servers sharing Redis: separate caches and sinks' state, one lock per key."""
    import collections

    import pregen_support as ps

    from segue.core.pregen.pipeline import Pipeline

    cache = {"name": "redis", "url": redis_url, "prefix": f"pipe{time.monotonic_ns()}"}
    spec = ps.spec({"m": {"variants": 6, "prompt": "x [sleep=0.05]"}}, cache=cache)
    score = ps.build_score(tmp_path, spec)
    pipes = [Pipeline(score, ps.plugins(), concurrency=2) for _ in range(2)]
    summaries = await asyncio.gather(*(p.run() for p in pipes))
    assert all(s.ok for s in summaries)
    assert sum(len(s.generated) for s in summaries) == 6
    starts = collections.Counter(r["key"] for r in ps.records(tmp_path) if r["event"] == "start")
    assert len(starts) == 6 and set(starts.values()) == {1}
    assert len(pipes[1].tracks_for("m")) == 6
    for p in pipes:
        await p.aclose()
