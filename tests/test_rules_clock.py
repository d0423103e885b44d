"""The musical clock: unit cases and hypothesis properties (pure, no I/O)."""

from __future__ import annotations

import math
import os

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from segue.core.engine.clock import (
    Grid,
    entry_offset,
    normalise_offset,
    position,
    schedule,
)
from segue.core.track import Track

TOL = 1e-6
T0 = 1_764_000_000.0  # a realistic unix time: floats there resolve ~0.24 microseconds


def loop_grid(bpm=120.0, bpb=4, first=0.0, start=0.0, end=8.0, duration=None) -> Grid:
    return Grid(
        bpm=bpm,
        beats_per_bar=bpb,
        first_beat_s=first,
        loop=True,
        loop_start_s=start,
        loop_end_s=end,
        duration_s=end if duration is None else duration,
    )


def one_shot(bpm=60.0, bpb=4, first=0.0, duration=5.0) -> Grid:
    return Grid(bpm=bpm, beats_per_bar=bpb, first_beat_s=first, loop=False, duration_s=duration)


# ---------------------------------------------------------------- unit cases


def test_next_beat_bar_end_in_first_pass():
    g = loop_grid()  # 120 bpm: beats every 0.5 s, bars every 2 s, loop of 4 bars
    assert schedule(g, T0, 0.0, T0 + 0.3, "next_beat", 0.2) == pytest.approx(T0 + 0.5, abs=TOL)
    assert schedule(g, T0, 0.0, T0 + 0.31, "next_beat", 0.2) == pytest.approx(T0 + 1.0, abs=TOL)
    assert schedule(g, T0, 0.0, T0 + 0.3, "next_bar", 0.2) == pytest.approx(T0 + 2.0, abs=TOL)
    assert schedule(g, T0, 0.0, T0 + 0.3, "end", 0.2) == pytest.approx(T0 + 8.0, abs=TOL)
    assert schedule(g, T0, 0.0, T0 + 0.3, "now", 0.2) == pytest.approx(T0 + 0.5, abs=TOL)


def test_boundaries_across_the_loop_wrap():
    g = loop_grid()
    now = T0 + 7.9  # threshold 8.1: past the first pass
    assert schedule(g, T0, 0.0, now, "next_beat", 0.2) == pytest.approx(T0 + 8.5, abs=TOL)
    assert schedule(g, T0, 0.0, now, "next_bar", 0.2) == pytest.approx(T0 + 10.0, abs=TOL)
    assert schedule(g, T0, 0.0, now, "end", 0.2) == pytest.approx(T0 + 16.0, abs=TOL)
    # Many passes later, still exactly on the grid (no drift over an hour of play).
    now = T0 + 3600 * 8 + 0.05
    assert schedule(g, T0, 0.0, now, "next_beat", 0.2) == pytest.approx(T0 + 28800.5, abs=TOL)


def test_lead_time_pushes_to_the_following_boundary():
    g = loop_grid()
    # Exactly on a beat with no lead: that beat; with a lead, the next one that fits.
    assert schedule(g, T0, 0.0, T0 + 1.0, "next_beat", 0.0) == pytest.approx(T0 + 1.0, abs=TOL)
    assert schedule(g, T0, 0.0, T0 + 1.0, "next_beat", 0.6) == pytest.approx(T0 + 2.0, abs=TOL)


def test_start_offset_and_intro_before_loop_region():
    # Intro 0..2 s, loop region 2..10 s; started from offset 1.0 at T0.
    g = loop_grid(bpm=60, start=2.0, end=10.0, duration=12.0)
    # Track time 1.0 at T0: beat 2 (t=2) comes 1 s later.
    assert schedule(g, T0, 1.0, T0, "next_beat", 0.5) == pytest.approx(T0 + 1.0, abs=TOL)
    # First pass ends at track 10 = T0 + 9; the second pass replays 2..10 (8 s).
    assert schedule(g, T0, 1.0, T0, "end", 0.2) == pytest.approx(T0 + 9.0, abs=TOL)
    assert schedule(g, T0, 1.0, T0 + 9.5, "end", 0.2) == pytest.approx(T0 + 17.0, abs=TOL)
    # Bars at track 0, 4, 8: after the wrap at T0+9 (track 2) the next bar is track 4.
    assert schedule(g, T0, 1.0, T0 + 8.0, "next_bar", 0.2) == pytest.approx(T0 + 11.0, abs=TOL)
    assert position(g, T0, 1.0, T0 + 9.0) == pytest.approx(2.0, abs=TOL)
    assert position(g, T0, 1.0, T0 + 8.5) == pytest.approx(9.5, abs=TOL)
    assert position(g, T0, 1.0, T0 + 17.25) == pytest.approx(2.25, abs=TOL)


def test_odd_meter_bars():
    # 7/8 felt as seven quick beats at 210 bpm: beat 2/7 s, bar exactly 2 s.
    g = loop_grid(bpm=210, bpb=7, end=8.0)
    assert schedule(g, T0, 0.0, T0 + 0.1, "next_bar", 0.2) == pytest.approx(T0 + 2.0, abs=TOL)
    assert schedule(g, T0, 0.0, T0 + 0.1, "next_beat", 0.2) == pytest.approx(T0 + 4 / 7, abs=TOL)
    # 5/4 at 100 bpm: bars every 3 s; loop of 4 bars = 12 s.
    g = loop_grid(bpm=100, bpb=5, end=12.0)
    assert schedule(g, T0, 0.0, T0 + 11.0, "next_bar", 0.2) == pytest.approx(T0 + 12.0, abs=TOL)
    assert schedule(g, T0, 0.0, T0 + 12.0, "next_bar", 0.2) == pytest.approx(T0 + 15.0, abs=TOL)


def test_loop_not_a_whole_number_of_beats_restarts_the_grid_each_pass():
    g = loop_grid(bpm=60, end=3.5)  # beats at 0, 1, 2, 3 in each 3.5 s pass
    assert schedule(g, 0.0, 0.0, 3.0, "next_beat", 0.2) == pytest.approx(3.5, abs=TOL)
    assert schedule(g, 0.0, 0.0, 4.4, "next_beat", 0.2) == pytest.approx(5.5, abs=TOL)
    assert schedule(g, 0.0, 0.0, 6.4, "next_beat", 0.2) == pytest.approx(7.0, abs=TOL)  # wrap
    # first_beat_s inside the region: the pickup (track 0..0.25) has no beat.
    g = loop_grid(bpm=60, first=0.25, end=3.5)
    assert schedule(g, 0.0, 0.0, 3.2, "next_beat", 0.1) == pytest.approx(3.75, abs=TOL)


def test_loop_region_without_a_bar_line_leaves_at_the_wrap():
    # Bars at track 0.5 and 4.5; the region 1..3 holds none: leave where it wraps.
    g = loop_grid(bpm=60, first=0.5, start=1.0, end=3.0, duration=4.0)
    assert schedule(g, 0.0, 0.0, 0.0, "next_bar", 0.2) == pytest.approx(0.5, abs=TOL)
    assert schedule(g, 0.0, 0.0, 1.0, "next_bar", 0.2) == pytest.approx(3.0, abs=TOL)
    assert schedule(g, 0.0, 0.0, 3.5, "next_bar", 0.2) == pytest.approx(5.0, abs=TOL)


def test_one_shot_boundaries_end_and_silence():
    g = one_shot(duration=5.0)
    assert schedule(g, 0.0, 0.0, 2.5, "next_beat", 0.2) == pytest.approx(3.0, abs=TOL)
    assert schedule(g, 0.0, 0.0, 2.5, "next_bar", 0.2) == pytest.approx(4.0, abs=TOL)
    # No beat left before the end: its end.
    assert schedule(g, 0.0, 0.0, 4.5, "next_beat", 0.2) == pytest.approx(5.0, abs=TOL)
    assert schedule(g, 0.0, 0.0, 4.5, "next_bar", 0.2) == pytest.approx(5.0, abs=TOL)
    assert schedule(g, 0.0, 0.0, 1.0, "end", 0.2) == pytest.approx(5.0, abs=TOL)
    # Already over: nothing plays, leave as soon as the lead allows.
    assert schedule(g, 0.0, 0.0, 9.0, "next_bar", 0.2) == pytest.approx(9.2, abs=TOL)
    assert schedule(g, 0.0, 0.0, 9.0, "end", 0.2) == pytest.approx(9.2, abs=TOL)
    assert position(g, 0.0, 0.0, 9.0) == 5.0


def test_track_not_started_yet_counts_from_its_start():
    g = loop_grid()
    # Starts at T0+10 from track 0.25: the first beat after its start is track 0.5.
    assert schedule(g, T0 + 10, 0.25, T0, "next_beat", 0.2) == pytest.approx(T0 + 10.25, abs=TOL)
    assert position(g, T0 + 10, 0.25, T0) == 0.25


def test_unknown_at_is_an_error():
    with pytest.raises(ValueError, match="at: must be one of"):
        schedule(loop_grid(), 0.0, 0.0, 0.0, "next_phrase", 0.2)
    with pytest.raises(ValueError, match="entry: must be one of"):
        entry_offset("middle", loop_grid(), 1.0, loop_grid())


def test_grid_from_track():
    t = Track(id="x", mood="m", variant=0, format="ogg", duration_s=60.0, bpm=84.0)
    g = Grid.from_track(t)
    assert (g.bpm, g.loop, g.loop_start_s, g.loop_end_s) == (84.0, True, 0.0, 60.0)
    # No tempo: one-second beats, so quantisation still works.
    g = Grid.from_track(t.replace(bpm=None, loop_end_s=58.3))
    assert g.bpm == 60.0 and g.loop_end_s == 58.3
    assert schedule(g, 0.0, 0.0, 1.3, "next_beat", 0.2) == pytest.approx(2.0, abs=TOL)
    # A loop end past the file is clamped; an empty region makes a one-shot.
    assert Grid.from_track(t.replace(loop_end_s=90.0)).loop_end_s == 60.0
    g = Grid.from_track(t.replace(loop_start_s=30.0, loop_end_s=30.0))
    assert not g.loop and g.loop_end_s == 60.0
    assert not Grid.from_track(t.replace(loop=False)).loop


def test_grid_rejects_nonsense():
    with pytest.raises(ValueError, match="bpm"):
        Grid(bpm=0)
    with pytest.raises(ValueError, match="beats_per_bar"):
        Grid(beats_per_bar=0)
    with pytest.raises(ValueError, match="loop"):
        Grid(loop=True, loop_start_s=2.0, loop_end_s=2.0, duration_s=4.0)


def test_entry_offset_start_and_same_position():
    old = loop_grid(bpm=120)  # beat 0.5 s, bar 2 s
    assert entry_offset("start", old, 3.0, old) == 0.0
    assert entry_offset("same_position", None, None, old) == 0.0
    # Same grid: same place.
    assert entry_offset("same_position", old, 3.0, old) == pytest.approx(3.0, abs=TOL)
    # 120 -> 60 bpm, same meter: bar 1 beat 2 (track 3.0) -> 6 beats at 1 s = 6.0.
    new = loop_grid(bpm=60, end=16.0)
    assert entry_offset("same_position", old, 3.0, new) == pytest.approx(6.0, abs=TOL)
    # Into 3/4 with a pickup: bar 1 beat 2 -> 1 * 3 + 2 = 5 beats after 0.4 s.
    new = loop_grid(bpm=60, bpb=3, first=0.4, end=12.4)
    assert entry_offset("same_position", old, 3.0, new) == pytest.approx(5.4, abs=TOL)
    # Float noise just before a bar line still counts as that bar line.
    assert entry_offset("same_position", old, 4.0 - 1e-12, new) == pytest.approx(6.4, abs=TOL)
    # Past the new loop's end: wrapped into its loop region.
    new = loop_grid(bpm=60, start=2.0, end=6.0, duration=7.0)
    assert entry_offset("same_position", old, 7.0, new) == pytest.approx(2.0 + 12 % 4, abs=TOL)
    # A one-shot: wrapped into the file.
    assert entry_offset("same_position", old, 7.0, one_shot(duration=5.0)) == pytest.approx(
        4.0, abs=TOL
    )


def test_normalise_offset():
    g = loop_grid(start=2.0, end=6.0, duration=7.0)
    assert normalise_offset(g, -1.0) == 0.0
    assert normalise_offset(g, 6.5) == pytest.approx(2.5)
    assert normalise_offset(one_shot(duration=5.0), 9.0) == 5.0


# ---------------------------------------------------------------- properties


@st.composite
def grids(draw) -> Grid:
    bpm = draw(st.one_of(st.integers(40, 240).map(float), st.floats(40.0, 240.0)))
    bpb = draw(st.integers(1, 7))
    duration = draw(st.one_of(st.integers(2, 60).map(float), st.floats(1.0, 60.0)))
    first = draw(st.one_of(st.just(0.0), st.floats(0.0, min(2.0, duration))))
    if draw(st.booleans()):
        start = draw(st.one_of(st.just(0.0), st.floats(0.0, duration / 2)))
        end = draw(st.one_of(st.just(duration), st.floats(start + 0.01, duration)))
        assume(end - start >= 0.01)
        return Grid(bpm, bpb, first, True, start, end, duration)
    return Grid(bpm, bpb, first, False, 0.0, duration, duration)


def oracle(grid: Grid, off: float, horizon: float, stride: int) -> list[float]:
    """Every boundary (relative to start) up to ``horizon``, by brute-force enumeration."""
    if grid.loop:
        segments = [(0.0, off, grid.loop_end_s)]
        first, length, j = grid.loop_end_s - off, grid.loop_len_s, 1
        while first + (j - 1) * length <= horizon:
            segments.append((first + (j - 1) * length, grid.loop_start_s, grid.loop_end_s))
            j += 1
    else:
        segments = [(0.0, off, grid.duration_s)]
    beat = 60.0 / grid.bpm
    out = []
    for base, lo, hi in segments:
        k = math.floor((lo - grid.first_beat_s) / beat) - 2
        k -= k % stride
        while grid.first_beat_s + k * beat < hi - 1e-9:
            g = grid.first_beat_s + k * beat
            if g >= lo - 1e-9:
                out.append(base + g - lo)
            k += stride
    return sorted(out)


# SEGUE_CLOCK_EXAMPLES=20000 for a long hunt; the default keeps the file fast.
PROPS = settings(
    max_examples=int(os.environ.get("SEGUE_CLOCK_EXAMPLES", "300")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


@PROPS
@given(
    grid=grids(),
    off_frac=st.floats(0.0, 1.0),
    start_at=st.one_of(st.just(0.0), st.floats(1.6e9, 1.9e9)),
    elapsed=st.one_of(st.floats(-5.0, 200.0), st.integers(0, 200).map(float)),
    lead=st.one_of(st.just(0.2), st.floats(0.0, 2.0)),
    at=st.sampled_from(["next_beat", "next_bar"]),
)
def test_boundaries_on_grid_not_early_and_first(grid, off_frac, start_at, elapsed, lead, at):
    off = normalise_offset(grid, off_frac * grid.duration_s)
    now = start_at + elapsed
    stride = 1 if at == "next_beat" else grid.beats_per_bar
    got = schedule(grid, start_at, off, now, at, lead)
    thr = (now - start_at) + lead
    # Never before now + lead (beyond float noise).
    assert got >= now + lead - TOL
    rel = got - start_at
    horizon = max(thr, 0.0) + 3 * (grid.loop_len_s if grid.loop else 0.0) + grid.bar_s + 1.0
    points = oracle(grid, off, horizon, stride)
    ahead = [p for p in points if p >= thr - 1e-9]
    if ahead:
        # On the grid, and the first grid point at or after the threshold.
        assert rel == pytest.approx(ahead[0], abs=TOL)
        assert not [p for p in points if thr + TOL < p < rel - TOL]
        # Mapped back through position(), it lands on a beat of the track. Read the
        # track time just after it (just before, if a wrap falls in that sliver).
        d = 1e-3

        def on_grid(pos: float) -> bool:
            beats = (pos - grid.first_beat_s) / grid.beat_s
            return abs(beats - round(beats)) * grid.beat_s < 1e-5

        after = position(grid, start_at, off, got + d) - d
        before = position(grid, start_at, off, got - d) + d
        assert on_grid(position(grid, start_at, off, got)) or on_grid(after) or on_grid(before)
    else:
        # No boundary left of that kind: a one-shot's end (or now + lead once over), or a
        # loop region with no bar line, left at its wrap.
        assert got == schedule(grid, start_at, off, now, "end", lead)


@PROPS
@given(
    grid=grids(),
    off_frac=st.floats(0.0, 1.0),
    start_at=st.one_of(st.just(0.0), st.floats(1.6e9, 1.9e9)),
    elapsed=st.floats(0.0, 300.0),
    lead=st.floats(0.0, 2.0),
    step=st.floats(0.0, 5.0),
    at=st.sampled_from(["next_beat", "next_bar", "end", "now"]),
)
def test_schedule_never_moves_backwards_as_time_passes(
    grid, off_frac, start_at, elapsed, lead, step, at
):
    off = normalise_offset(grid, off_frac * grid.duration_s)
    a = schedule(grid, start_at, off, start_at + elapsed, at, lead)
    b = schedule(grid, start_at, off, start_at + elapsed + step, at, lead)
    assert b >= a - TOL


@PROPS
@given(
    grid=grids(),
    off_frac=st.floats(0.0, 1.0),
    elapsed=st.floats(0.0, 300.0),
    lead=st.floats(0.0, 2.0),
)
def test_end_is_the_end_of_a_pass(grid, off_frac, elapsed, lead):
    off = normalise_offset(grid, off_frac * grid.duration_s)
    got = schedule(grid, 0.0, off, elapsed, "end", lead)
    assert got >= elapsed + lead - TOL
    if grid.loop:
        first = grid.loop_end_s - off
        passes = (got - first) / grid.loop_len_s
        assert passes > -TOL and abs(passes - round(passes)) * grid.loop_len_s < TOL
        # The first such end: one pass earlier would be too soon (or before the start).
        assert got - grid.loop_len_s < elapsed + lead + TOL or round(passes) == 0
        if got >= 1e-4:  # just before it, the track is about to reach loop_end_s
            assert position(grid, 0.0, off, got - 1e-4) == pytest.approx(
                grid.loop_end_s - 1e-4, abs=1e-6
            )
    else:
        assert got == pytest.approx(max(grid.duration_s - off, elapsed + lead), abs=TOL)


@PROPS
@given(
    grid=grids(),
    off_frac=st.floats(0.0, 1.0),
    start_at=st.one_of(st.just(0.0), st.floats(1.6e9, 1.9e9)),
    t=st.floats(0.0, 400.0),
    dt=st.floats(0.0, 0.5),
)
def test_position_is_continuous_except_at_loop_wraps(grid, off_frac, start_at, t, dt):
    off = normalise_offset(grid, off_frac * grid.duration_s)
    p1 = position(grid, start_at, off, start_at + t)
    p2 = position(grid, start_at, off, start_at + t + dt)
    assert 0.0 <= p1 <= grid.duration_s
    tol = 1e-5 if start_at else TOL
    if grid.loop:
        assert p1 < grid.loop_end_s + tol
        if t > grid.loop_end_s - off + tol:  # in the loop proper after the first pass
            assert p1 >= grid.loop_start_s - tol
        continuous = abs(p2 - (p1 + dt)) < tol
        # Across a wrap it jumps back by whole loop lengths (several, for a short loop).
        jumps = (p1 + dt - p2) / grid.loop_len_s
        wrapped = (
            p1 + dt >= grid.loop_end_s - tol
            and round(jumps) >= 1
            and abs(jumps - round(jumps)) * grid.loop_len_s < tol
        )
        assert continuous or wrapped
    else:
        assert p2 == pytest.approx(min(p1 + dt, grid.duration_s), abs=tol)


@PROPS
@given(grid=grids(), data=st.data())
def test_same_position_onto_the_same_grid_keeps_the_place(grid, data):
    # A beat of the loop region (or of the whole file, for a one-shot).
    lo = grid.loop_start_s if grid.loop else 0.0
    hi = grid.loop_end_s if grid.loop else grid.duration_s
    k_lo = math.ceil((lo - grid.first_beat_s) / grid.beat_s + 1e-9)
    k_hi = math.floor((hi - grid.first_beat_s) / grid.beat_s - 1e-6)
    assume(k_lo <= k_hi)
    pos = grid.beat_time(data.draw(st.integers(k_lo, k_hi)))
    assume(lo <= pos < hi - 1e-6)
    assert entry_offset("same_position", grid, pos, grid) == pytest.approx(pos, abs=TOL)
