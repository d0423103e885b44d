"""The musical clock: where a playing track is, and when its next beat, bar or end comes.

Times come in two kinds. *Server time* is unix seconds (``start_at``, ``now``, what
``schedule`` returns). *Track time* is seconds into the audio file. A track started at
server time ``start_at`` from track time ``offset_s`` plays on to ``loop_end_s``, then
jumps back to ``loop_start_s`` and repeats that region for ever (a loop), or plays to
its end and stops (a one-shot).

Its grid: beat ``k`` sits at track time ``first_beat_s + k * 60 / bpm`` for every
integer ``k`` (negative ones too, for a pickup before the first beat), bar lines on the
beats whose index is a multiple of ``beats_per_bar``. Every boundary is computed from
its integer index, never by adding up beat lengths, so hours of play do not drift.

Loop passes replay the region's own grid points: the boundaries of a pass are the
grid points ``g`` with ``loop_start_s <= g < loop_end_s``. When the loop length is a
whole number of beats the grid runs on evenly across the wrap; when it is not, the
grid restarts each pass (the interval across the wrap is shorter than a beat).

Arithmetic is done relative to ``start_at`` (small numbers) and ``start_at`` added
once at the end: unix seconds as floats have only ~0.2 microsecond resolution.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from segue.core.track import Track

AT_VALUES = ("now", "next_beat", "next_bar", "end")
ENTRY_VALUES = ("start", "same_position")

# Tolerance for float noise when comparing times (seconds).
EPS = 1e-9
# A loop region shorter than this is treated as no loop at all.
MIN_LOOP_S = 1e-3
# Positions within this many beats of a whole beat count as on it (entry_offset).
BEAT_SNAP = 1e-6


@dataclass(frozen=True)
class Grid:
    """A track's tempo grid and loop points (all in track seconds)."""

    bpm: float = 60.0
    beats_per_bar: int = 4
    first_beat_s: float = 0.0
    loop: bool = False
    loop_start_s: float = 0.0
    loop_end_s: float = 0.0
    duration_s: float = 0.0

    def __post_init__(self) -> None:
        if not (math.isfinite(self.bpm) and self.bpm > 0):
            raise ValueError(f"bpm: must be a positive number, not {self.bpm!r}")
        if int(self.beats_per_bar) != self.beats_per_bar or self.beats_per_bar < 1:
            raise ValueError(
                f"beats_per_bar: must be a whole number >= 1, not {self.beats_per_bar!r}"
            )
        if not (math.isfinite(self.duration_s) and self.duration_s >= 0):
            raise ValueError(f"duration_s: must be >= 0, not {self.duration_s!r}")
        if not math.isfinite(self.first_beat_s):
            raise ValueError(f"first_beat_s: must be a number, not {self.first_beat_s!r}")
        if self.loop and not (
            self.loop_start_s >= 0
            and self.loop_end_s - self.loop_start_s >= MIN_LOOP_S
            and math.isfinite(self.loop_end_s)
        ):
            raise ValueError(
                f"loop: region {self.loop_start_s!r}..{self.loop_end_s!r} is empty or invalid"
            )

    @classmethod
    def from_track(cls, track: Track) -> Grid:
        """The grid of a stored track, tolerating missing or inconsistent metadata.

        Without a tempo the grid is one "beat" per second (bars of ``beats_per_bar``
        seconds), so quantised transitions still land somewhere regular. A loop region
        that is empty after clamping to the file makes the track a one-shot.
        """
        bpm = float(track.bpm) if track.bpm and math.isfinite(track.bpm) and track.bpm > 0 else 60.0
        bpb = int(track.beats_per_bar) if track.beats_per_bar and track.beats_per_bar >= 1 else 4
        duration = float(track.duration_s) if math.isfinite(track.duration_s) else 0.0
        duration = max(duration, 0.0)
        loop_end = duration if track.loop_end_s is None else float(track.loop_end_s)
        loop_end = min(loop_end, duration)
        loop_start = min(max(float(track.loop_start_s), 0.0), duration)
        first = float(track.first_beat_s) if math.isfinite(track.first_beat_s) else 0.0
        loop = bool(track.loop) and loop_end - loop_start >= MIN_LOOP_S
        return cls(
            bpm=bpm,
            beats_per_bar=bpb,
            first_beat_s=first,
            loop=loop,
            loop_start_s=loop_start if loop else 0.0,
            loop_end_s=loop_end if loop else duration,
            duration_s=duration,
        )

    @classmethod
    def of(cls, track: Track) -> Grid:
        """``from_track(track)``, memoised per track (tracks are immutable)."""
        hit = _grids.get(track.id)
        if hit is not None and hit[0] is track:
            return hit[1]
        grid = cls.from_track(track)
        if len(_grids) >= _GRIDS_MAX:
            _grids.clear()
        _grids[track.id] = (track, grid)
        return grid

    @property
    def beat_s(self) -> float:
        return 60.0 / self.bpm

    @property
    def bar_s(self) -> float:
        return self.beats_per_bar * 60.0 / self.bpm

    @property
    def loop_len_s(self) -> float:
        return self.loop_end_s - self.loop_start_s

    def beat_time(self, k: int) -> float:
        """Track time of beat ``k`` (``k`` counts from the first beat, may be negative)."""
        return self.first_beat_s + k * 60.0 / self.bpm


# Grid.of's memo: track id -> (the Track it was built from, its Grid). Checked by
# identity, so a different Track object with the same id gets its own grid.
_grids: dict[str, tuple[Track, Grid]] = {}
_GRIDS_MAX = 4096


def _mod(x: float, m: float) -> float:
    """``x`` modulo ``m`` in ``[0, m)`` (fmod is exact; the fix-ups guard the edges)."""
    r = math.fmod(x, m)
    if r < 0:
        r += m
    if r >= m:
        r = 0.0
    return r


def normalise_offset(grid: Grid, offset_s: float) -> float:
    """A start offset the track can actually play from.

    Negative → 0; for a loop, an offset at or past ``loop_end_s`` is wrapped into the loop
    region (the tail after it is never reached while looping); a one-shot is clamped to
    its duration.
    """
    off = offset_s if math.isfinite(offset_s) and offset_s > 0 else 0.0
    if grid.loop:
        if off >= grid.loop_end_s:
            off = grid.loop_start_s + _mod(off - grid.loop_start_s, grid.loop_len_s)
    else:
        off = min(off, grid.duration_s)
    return off


def position(grid: Grid, start_at: float, offset_s: float, now: float) -> float:
    """Track time at server time ``now`` of a track started at ``start_at`` from ``offset_s``.

    Before ``start_at`` it is the start offset. Loops wrap from ``loop_end_s`` back to
    ``loop_start_s``; one-shots stop at their duration.
    """
    off = normalise_offset(grid, offset_s)
    u = now - start_at
    if u <= 0:
        return off
    if not grid.loop:
        return min(off + u, grid.duration_s)
    first = grid.loop_end_s - off
    if u < first:
        return off + u
    return grid.loop_start_s + _mod(u - first, grid.loop_len_s)


def schedule(
    grid: Grid, start_at: float, offset_s: float, now: float, at: str, lead_s: float
) -> float:
    """Server time at which to leave the current track for ``at``.

    ``now`` → ``now + lead_s``. ``next_beat`` / ``next_bar`` → the first beat / bar line of
    the track, as it plays, at least ``lead_s`` after ``now``. ``end`` → the end of the loop
    pass (``loop_end_s``) or of a one-shot, the first at least ``lead_s`` ahead.

    A one-shot with no boundary left is left at its end; one already over (silence) is
    left at ``now + lead_s``. A loop region holding no boundary of the asked kind (a loop
    shorter than a bar) is left at the next wrap, the nearest thing to a downbeat it has.
    If the track starts later than ``now + lead_s``, the first boundary from its start.
    """
    if at == "now":
        return now + lead_s
    if at not in AT_VALUES:
        raise ValueError(f"at: must be one of {', '.join(AT_VALUES)}, not {at!r}")
    off = normalise_offset(grid, offset_s)
    thr = (now - start_at) + lead_s  # the threshold, relative to start_at
    if at == "end":
        rel = _end_rel(grid, off, thr)
    else:
        stride = 1 if at == "next_beat" else grid.beats_per_bar
        rel = _boundary_rel(grid, off, thr, stride)
    return start_at + rel


def _end_rel(grid: Grid, off: float, thr: float) -> float:
    if not grid.loop:
        end = grid.duration_s - off
        return end if end >= thr - EPS else thr
    first = grid.loop_end_s - off  # the end of the first pass
    length = grid.loop_len_s
    if first >= thr - EPS:
        return first
    j = max(math.ceil((thr - first) / length), 1)
    while j > 1 and first + (j - 1) * length >= thr - EPS:
        j -= 1
    while first + j * length < thr - EPS:
        j += 1
    return first + j * length


def _boundary_rel(grid: Grid, off: float, thr: float, stride: int) -> float:
    if not grid.loop:
        found = _first_in_segment(grid, 0.0, off, grid.duration_s, thr, stride)
        if found is not None:
            return found
        return _end_rel(grid, off, thr)
    first = grid.loop_end_s - off
    length = grid.loop_len_s
    # Segment 0 plays track time [off, loop_end); segment j >= 1 plays the loop region
    # and starts at first + (j - 1) * length. Start one segment early in case float
    # rounding put thr on the wrong side of a wrap; two segments after the one holding
    # thr include a whole pass, so if none of them has a boundary, no pass has.
    j0 = 0 if thr < first else math.floor((thr - first) / length) + 1
    for j in range(max(j0 - 1, 0), j0 + 3):
        if j == 0:
            found = _first_in_segment(grid, 0.0, off, grid.loop_end_s, thr, stride)
        else:
            base = first + (j - 1) * length
            found = _first_in_segment(grid, base, grid.loop_start_s, grid.loop_end_s, thr, stride)
        if found is not None:
            return found
    return _end_rel(grid, off, thr)


def _first_in_segment(
    grid: Grid, base: float, track_start: float, track_end: float, thr: float, stride: int
) -> float | None:
    """First grid point of a stretch of play that is at least ``thr`` (relative time).

    The stretch plays track time ``[track_start, track_end)`` from relative time ``base``.
    Returns its relative time, or None when the stretch holds none.
    """

    def rel(k: int) -> float:
        return base + (grid.beat_time(k) - track_start)

    def ok(k: int) -> bool:
        return grid.beat_time(k) >= track_start - EPS and rel(k) >= thr - EPS

    x = max(track_start, track_start + (thr - base))
    k = math.ceil((x - grid.first_beat_s) * grid.bpm / 60.0 / stride) * stride
    while ok(k - stride):
        k -= stride
    while not ok(k):
        k += stride
    if grid.beat_time(k) >= track_end - EPS:
        return None
    return rel(k)


def entry_offset(
    entry: str, old_grid: Grid | None, old_position_at_switch: float | None, new_grid: Grid
) -> float:
    """Where the new track starts (track seconds) for the transition's ``entry``.

    ``start`` → 0.0, the file's start. ``same_position`` → the same musical place: the
    bars and beats elapsed since the old grid's first beat at the switch become as many
    bars and beats after the new grid's first beat (a beat past the end of a shorter
    bar spills into the next bar), in the new tempo, wrapped into the new track's loop
    region (into the file for a one-shot). With nothing playing before, 0.0.
    """
    if entry not in ENTRY_VALUES:
        raise ValueError(f"entry: must be one of {', '.join(ENTRY_VALUES)}, not {entry!r}")
    if entry == "start" or old_grid is None or old_position_at_switch is None:
        return 0.0
    beats = (old_position_at_switch - old_grid.first_beat_s) * old_grid.bpm / 60.0
    # Switches land on boundaries; snap float noise so beat 7.9999999 is bar 2, beat 0.
    nearest = round(beats)
    if abs(beats - nearest) < BEAT_SNAP:
        beats = float(nearest)
    bars = math.floor(beats / old_grid.beats_per_bar)
    in_bar = beats - bars * old_grid.beats_per_bar
    new_beats = bars * new_grid.beats_per_bar + in_bar
    pos = new_grid.first_beat_s + new_beats * 60.0 / new_grid.bpm
    if new_grid.loop:
        if pos >= new_grid.loop_end_s:
            pos = new_grid.loop_start_s + _mod(pos - new_grid.loop_start_s, new_grid.loop_len_s)
    elif new_grid.duration_s > 0 and pos >= new_grid.duration_s:
        pos = _mod(pos, new_grid.duration_s)
    return max(pos, 0.0)
