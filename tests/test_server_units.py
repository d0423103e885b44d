"""Pure parts of the server: token buckets, Range parsing, ETag matching, config, SDK URLs."""

from __future__ import annotations

import pytest

from segue.core.client import ws_url
from segue.core.server.http_api import Unsatisfiable, etag_matches, parse_range
from segue.core.server.ratelimit import MessageLimiter, TokenBucket, Verdict

# ---------------------------------------------------------------- token bucket


def test_bucket_starts_full_and_refills_at_its_rate():
    b = TokenBucket(rate=10, burst=5, now=0.0)
    assert all(b.take(0.0) for _ in range(5))
    assert not b.take(0.0)
    assert not b.take(0.05)  # half a token
    assert b.take(0.1)  # one token after 0.1 s at 10/s
    assert not b.take(0.1)
    # Never more than the burst, however long idle.
    assert sum(b.take(1000.0) for _ in range(10)) == 5


def test_bucket_refuses_nonsense():
    with pytest.raises(ValueError):
        TokenBucket(rate=0, burst=1, now=0)
    with pytest.raises(ValueError):
        TokenBucket(rate=1, burst=0, now=0)


def test_limiter_allows_the_rate_forever():
    lim = MessageLimiter(rate_per_s=20, burst=40, now=0.0)
    verdicts = {lim.check(i / 20.0) for i in range(2000)}  # 100 s at exactly 20/s
    assert verdicts == {Verdict.OK}


def test_limiter_burst_then_rate_limited_then_flood():
    lim = MessageLimiter(rate_per_s=20, burst=40, now=0.0)
    seq = [lim.check(0.0) for _ in range(200)]
    assert seq[:40] == [Verdict.OK] * 40
    assert seq[40:80] == [Verdict.LIMITED] * 40
    assert seq[80] is Verdict.FLOOD


def test_limiter_forgives_a_short_burst():
    lim = MessageLimiter(rate_per_s=20, burst=40, now=0.0)
    for _ in range(60):  # 20 over the burst: limited, not flooded
        assert lim.check(0.0) is not Verdict.FLOOD
    # Then back to a polite rate: no flood verdict for minutes.
    assert {lim.check(1.0 + i / 10.0) for i in range(3000)} <= {Verdict.OK, Verdict.LIMITED}
    assert lim.check(400.0) is Verdict.OK


def test_limiter_cuts_off_sustained_abuse_at_twice_the_rate():
    lim = MessageLimiter(rate_per_s=20, burst=40, now=0.0)
    verdicts = [lim.check(i / 40.0) for i in range(40 * 60)]  # 40/s for a minute
    assert Verdict.FLOOD in verdicts


# ---------------------------------------------------------------- HTTP ranges and etags


@pytest.mark.parametrize(
    "header, expected",
    [
        (None, None),
        ("bytes=0-99", (0, 100)),
        ("bytes=100-", (100, 1000)),
        ("bytes=-100", (900, 1000)),
        ("bytes=-5000", (0, 1000)),
        ("bytes=990-5000", (990, 1000)),
        ("BYTES=1-1", (1, 2)),
        ("bytes=5-1", None),  # invalid: ignored, whole file
        ("bytes=0-1,5-9", None),  # several ranges: ignored
        ("items=0-1", None),
        ("bytes=-", None),
        ("bytes=x-y", None),
    ],
)
def test_parse_range(header, expected):
    assert parse_range(header, 1000) == expected


@pytest.mark.parametrize("header", ["bytes=1000-", "bytes=5000-6000", "bytes=-0"])
def test_unsatisfiable_ranges(header):
    with pytest.raises(Unsatisfiable):
        parse_range(header, 1000)


def test_etag_matching():
    etag = '"abc"'
    assert etag_matches('"abc"', etag)
    assert etag_matches('W/"abc"', etag)
    assert etag_matches('"x", "abc"', etag)
    assert etag_matches("*", etag)
    assert not etag_matches('"abcd"', etag)
    assert not etag_matches("abc", etag)


# ---------------------------------------------------------------- SDK URLs


@pytest.mark.parametrize(
    "url, session, token, expected",
    [
        ("ws://h:1/ws", "s", None, "ws://h:1/ws?session=s"),
        ("http://h:1", "s", None, "ws://h:1/ws?session=s"),
        ("https://h/", None, None, "wss://h/ws"),
        ("ws://h:1/ws?session=old&x=1", "new", "t", "ws://h:1/ws?x=1&session=new&token=t"),
    ],
)
def test_ws_url(url, session, token, expected):
    assert ws_url(url, session, token) == expected


def test_ws_url_refuses_other_schemes():
    with pytest.raises(ValueError, match="url: expected ws://"):
        ws_url("ftp://h/", None, None)


def test_a_big_message_costs_more_of_the_rate():
    limiter = MessageLimiter(20, 40, 0.0)
    assert limiter.check(0.0, 1 + (40_000 >> 11)) is Verdict.OK  # 20 tokens
    assert limiter.check(0.0, 20) is Verdict.OK
    assert limiter.check(0.0, 1) is Verdict.LIMITED  # the burst is spent
    assert limiter.check(3.0, 1000) is Verdict.OK  # a cost above the burst is the burst
    assert limiter.check(3.0, 1) is Verdict.LIMITED
