"""segue.js helpers (loop wrapping, beats, clock, peaks, state mirror) in the real browser."""

from __future__ import annotations

import json

import pytest
from web_support import browser, segue_js_page  # noqa: F401  (the fixtures)


@pytest.fixture(scope="module")
def page(segue_js_page):  # noqa: F811
    return segue_js_page


TRACK = {
    "id": "x",
    "duration_s": 10.0,
    "bpm": 120.0,
    "beats_per_bar": 4,
    "first_beat_s": 0.5,
    "loop": True,
    "loop_start_s": 2.0,
    "loop_end_s": 8.0,
}


def js(page, expr: str, *args):
    return page.evaluate(f"(args) => {expr}", list(args))


@pytest.mark.parametrize(
    ("pos", "expected"),
    [
        (0.0, 0.0),
        (7.99, 7.99),
        (8.0, 2.0),  # the loop end jumps back to the loop start
        (9.5, 3.5),
        (8.0 + 6.0 * 3 + 1.25, 3.25),  # several laps later
    ],
)
def test_wrap_position_wraps_inside_the_loop_region(page, pos, expected):
    got = js(page, "Segue.wrapPosition(args[0], 10, args[1])", TRACK, pos)
    assert got == pytest.approx(expected, abs=1e-9)


def test_a_one_shot_ends_and_a_missing_loop_end_means_the_whole_file(page):
    one_shot = dict(TRACK, loop=False)
    assert js(page, "Segue.wrapPosition(args[0], 10, 9.9)", one_shot) == pytest.approx(9.9)
    assert js(page, "Segue.wrapPosition(args[0], 10, 10.0)", one_shot) is None
    whole = dict(TRACK, loop_end_s=None, loop_start_s=0.0)
    assert js(page, "Segue.wrapPosition(args[0], 10, 12.5)", whole) == pytest.approx(2.5)
    # A loop end past the decoded audio is clamped to it.
    long_end = dict(TRACK, loop_end_s=60.0)
    assert js(page, "Segue.loopRegion(args[0], 10)", long_end) == {"start": 2.0, "end": 10.0}


def test_beat_arithmetic_counts_from_the_first_beat(page):
    # 120 bpm: a beat every 0.5 s, from 0.5 s; 4 beats a bar.
    b = js(page, "Segue.beatAt(args[0], 0.5)", TRACK)
    assert (b["beat"], b["bar"], b["beatInBar"]) == (0, 0, 0)
    b = js(page, "Segue.beatAt(args[0], 2.75)", TRACK)
    assert (b["beat"], b["bar"], b["beatInBar"]) == (4, 1, 0)
    assert b["phase"] == pytest.approx(0.5)
    b = js(page, "Segue.beatAt(args[0], 0.25)", TRACK)  # the pickup before the first beat
    assert (b["beat"], b["beatInBar"]) == (-1, 3)
    none = js(page, "Segue.beatAt(args[0], 1.0)", dict(TRACK, bpm=None))
    assert none["beat"] is None


def test_server_clock_keeps_the_sample_with_the_shortest_round_trip(page):
    got = page.evaluate(
        """() => {
          const c = new Segue.ServerClock(3);
          c.seed(1000.0, 990.0);                  // welcome only: a rough one-way estimate
          const rough = [c.offset, c.rough];
          c.add(100.0, 100.2, 200.3);             // rtt 0.2, offset 100.2
          c.add(101.0, 101.02, 201.015);          // rtt 0.02, offset 100.005 (best)
          c.add(102.0, 102.5, 202.0);             // rtt 0.5
          const best = [c.offset, c.rtt];
          c.add(103.0, 103.1, 203.0); c.add(104.0, 104.1, 204.0);  // the best ages out
          return {rough, best, later: [c.offset, c.rtt], n: c.samples.length};
        }"""
    )
    assert got["rough"] == [10.0, True]
    assert got["best"][0] == pytest.approx(100.005)
    assert got["best"][1] == pytest.approx(0.02)
    assert got["n"] == 3
    assert got["later"][1] == pytest.approx(0.1)


def test_session_ids_follow_the_protocol_rule(page):
    ok = ["a", "room-1", "A.b_c-9", "x" * 64]
    bad = ["", "x" * 65, "room 1", "r/1", "é"]
    assert js(page, "args[0].map(Segue.isSessionId)", ok) == [True] * len(ok)
    assert js(page, "args[0].map(Segue.isSessionId)", bad) == [False] * len(bad)
    err = page.evaluate(
        "() => { try { new Segue.Client({session: 'no spaces', autoUnlock: false}); return null }"
        " catch (e) { return e.message } }"
    )
    assert err is not None and "session" in err


def test_peaks_are_min_max_pairs_per_bucket(page):
    got = page.evaluate(
        """() => {
          const ctx = new OfflineAudioContext(1, 8, 8000);
          const buf = ctx.createBuffer(2, 8, 8000);
          buf.getChannelData(0).set([0, 0.5, -0.25, 0, 0, 0, 0.1, -0.9]);
          buf.getChannelData(1).set([0, 0, 0, 0.75, 0, 0, 0, 0]);
          return Array.from(Segue.computePeaks(buf, 2));
        }"""
    )
    assert got == pytest.approx([-0.25, 0.75, -0.9, 0.1])


def test_listeners_registered_as_options_and_failing_listeners_do_not_stop_others(page):
    got = page.evaluate(
        """() => {
          const seen = [];
          const c = new Segue.Client({autoUnlock: false, onCue: (d) => seen.push('opt:' + d.n)});
          c.on('cue', () => { throw new Error('boom') });
          c.on('*', (d, type) => seen.push('any:' + type));
          const orig = console.error; console.error = () => {};
          c.emit('cue', {n: 1});
          console.error = orig;
          return seen;
        }"""
    )
    assert got == ["opt:1", "any:cue"]


def test_local_state_mirror_follows_dotted_keys(page):
    got = page.evaluate(
        """() => {
          const c = new Segue.Client({autoUnlock: false});
          c.setState({'player.health': 0.5, in_combat: true});
          c.setState({'player.stance': 'hidden'}, {unset: ['in_combat']});
          const a = JSON.parse(JSON.stringify(c.state));
          c.setState(null, {replace: {zone: 'village'}});
          return [a, c.state, c._queue.length];
        }"""
    )
    first, replaced, queued = got
    assert first == {"player": {"health": 0.5, "stance": "hidden"}}
    assert replaced == {"zone": "village"}
    assert queued == 3  # not connected: held until the welcome
    assert json.dumps(first)  # plain data
