"""Loudness normalisation (ITU-R BS.1770) with a -1 dBTP true-peak ceiling.

Runs last on ``segue_process_track`` (``trylast``), right before the pipeline encodes the
samples it returns. The target is ``track.extra["loudness_target"]`` (the score's
``loudness_lufs``, put there by the pipeline), else -16 LUFS.

The gain that reaches the target may push peaks over the ceiling; a look-ahead limiter
then pulls them down smoothly (a 5 ms ramp down before each peak, a 30 dB/s release; no
clicks), and the gain is raised again until the limited signal measures on target. The
limiter is stereo-linked and works on 4x oversampled (true) peaks. For a looping track
the gain around the loop end and the loop start is computed from the audio on both
sides of the seam, so the gain is the same on either side of the jump and the seam stays
seamless. Lossy codecs overshoot the peaks they are given a little, so the ceiling
applied before encoding leaves a margin per format (``CEILING_DB``): the *decoded*
file still measures at or below -1 dBTP and within 0.5 LU of the target.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import TypeVar

import numpy as np

# The module as `core_audio`: the hook's argument is named `audio` (pluggy passes it by name).
from segue.core import audio as core_audio
from segue.core import hookimpl
from segue.core.audio import TrackAudio
from segue.core.track import Track

log = logging.getLogger("segue.plugins.loudness")

A = TypeVar("A")
B = TypeVar("B")

DEFAULT_TARGET_LUFS = -16.0
TRUE_PEAK_LIMIT_DB = -1.0
# First guess of the ceiling before encoding, from each codec's typical overshoot of the
# peaks it is given (Opus at 128 kbit/s overshoots most); the decoded file is then
# measured and the ceiling corrected (see `process`).
CEILING_DB: dict[str, float] = {
    "wav": -1.1,
    "flac": -1.1,
    "ogg": -2.0,
    "opus": -3.0,
    "mp3": -2.2,
}
LOOKAHEAD_S = 0.005
RELEASE_DB_PER_S = 120.0
SILENCE_LUFS = -70.0  # BS.1770's absolute gate: nothing below it counts as programme
TOLERANCE_LU = 0.05
MAX_ITERATIONS = 8
MAX_PUSH_DB = 18.0


@dataclass
class Result:
    samples: np.ndarray
    lufs: float
    gain_db: float
    limited_db: float  # deepest limiter gain reduction (<= 0)
    true_peak_db: float


def _sliding_min_ahead(a: np.ndarray, width: int) -> np.ndarray:
    """out[n] = min(a[n : n + width]) (0 beyond the end), by doubling windows."""
    n = a.size
    padded = np.concatenate([a, np.zeros(width, dtype=a.dtype)])
    span = 1
    m = padded
    while span * 2 <= width:
        m = np.minimum(m[:-span], m[span:])
        span *= 2
    # m[i] = min(padded[i : i + span]); two overlapping spans cover width.
    return np.minimum(m[:n], m[width - span : width - span + n])


def _envelope_at(
    size: int, idx: np.ndarray, val: np.ndarray, lookahead: int, release_per_sample: float
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Smooth gain (dB, <= 0) that is <= the requirement everywhere, for ``size`` frames
    whose requirement is ``val`` at the sorted frames ``idx``, 0 dB elsewhere:
    ``(frames, values)``, 0 dB at every other frame; or, where most frames are near one
    that needs limiting, every frame's value (an array). See :func:`_envelope_of`."""
    return _envelope_of(_Sparse(size, idx, val), lookahead, release_per_sample)


def _envelope_of(
    need: _Sparse | _Seamed, lookahead: int, release_per_sample: float
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """The limiter's envelope of the requirement ``need`` (:func:`_envelope_at`).

    Forward min over ``lookahead`` frames, a release rising at most ``release_per_sample``
    dB per frame, then two box filters whose lengths add up to the look-ahead: each
    frame's gain averages values that are all at or below its own requirement.

    Only the stretches around frames that need limiting are computed: elsewhere the gain
    is 0 dB, and the stretches are padded by every frame a requirement can reach. Each
    is computed a block at a time (:func:`_envelope_into`): besides the result, nothing
    as long as the track is made.
    """
    size = need.size
    active, depth = need.limited()
    if active.size == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0)
    reach = 2 * lookahead + math.ceil(depth / release_per_sample) + 4
    if active.size * 4 > size:
        del active
        dense = np.empty(size)
        _envelope_into(need.span, size, lookahead, release_per_sample, dense.__setitem__)
        return dense
    # Runs of frames within `reach` of a limited frame; gaps wider than 2*reach split them.
    breaks = np.flatnonzero(np.diff(active) > 2 * reach)
    firsts = np.concatenate([[active[0]], active[breaks + 1]])
    lasts = np.concatenate([active[breaks], [active[-1]]])
    del active, breaks
    starts = np.maximum(firsts - reach, 0)
    stops = np.minimum(lasts + reach + 1, size)
    lengths = stops - starts
    # Gather the runs end to end: each begins and ends with `reach` unlimited frames (or
    # the file's own edge), so computing them together equals computing them apart.
    runs = _Runs(starts, np.concatenate([[0], np.cumsum(lengths)]))
    total = int(runs.ends[-1])

    def req(lo: int, hi: int) -> np.ndarray:
        return need.at(runs.frames(lo, hi))

    if total * 2 <= size:
        values = np.empty(total)
        _envelope_into(req, total, lookahead, release_per_sample, values.__setitem__)
        return runs.frames(0, total), values
    # Most frames are in a run: one float64 per frame (0 dB between the runs) is less
    # than a frame number and a value per frame in a run.
    dense = np.zeros(size)

    def put(span: slice, block: np.ndarray) -> None:
        dense[runs.frames(span.start, span.stop)] = block

    _envelope_into(req, total, lookahead, release_per_sample, put)
    return dense


@dataclass
class _Sparse:
    """A limiter's requirement (dB, <= 0) for ``size`` frames: ``val`` at the sorted
    frames ``idx``, 0 elsewhere."""

    size: int
    idx: np.ndarray
    val: np.ndarray

    def limited(self) -> tuple[np.ndarray, float]:
        """The frames whose requirement is below 0 dB, and the deepest requirement's depth."""
        below = self.val < 0
        if not below.any():
            return self.idx[:0], 0.0
        return self.idx[below], float(-self.val[below].min())

    def span(self, lo: int, hi: int) -> np.ndarray:
        return _read_span(self.idx, self.val, lo, hi)

    def at(self, where: np.ndarray) -> np.ndarray:
        return _read(self.idx, self.val, where)


@dataclass
class _Runs:
    """Runs of frames gathered end to end: run ``i`` starts at frame ``starts[i]`` and
    holds the gathered positions ``ends[i]`` to ``ends[i + 1]``."""

    starts: np.ndarray
    ends: np.ndarray

    def frames(self, lo: int, hi: int) -> np.ndarray:
        """The frames at the gathered positions ``lo:hi``."""
        first = int(np.searchsorted(self.ends, lo, side="right")) - 1
        last = int(np.searchsorted(self.ends, hi, side="left"))
        ends = np.clip(self.ends[first : last + 1], lo, hi)
        lengths = np.diff(ends)
        offsets = np.repeat(self.starts[first:last] - self.ends[first:last], lengths)
        return offsets + np.arange(lo, hi)


def _read_span(idx: np.ndarray, val: np.ndarray, lo: int, hi: int) -> np.ndarray:
    """The frames ``lo:hi`` of a sparse requirement (``val`` at sorted ``idx``, 0 elsewhere)."""
    out = np.zeros(hi - lo)
    a, b = np.searchsorted(idx, [lo, hi])
    out[idx[a:b] - lo] = val[a:b]
    return out


def _read(idx: np.ndarray, val: np.ndarray, where: np.ndarray) -> np.ndarray:
    """The values of a sparse requirement (``val`` at sorted ``idx``, 0 elsewhere) at ``where``."""
    out = np.zeros(where.size)
    if idx.size:
        j = np.minimum(np.searchsorted(idx, where), idx.size - 1)
        found = idx[j] == where
        out[found] = val[j[found]]
    return out


ENVELOPE_BLOCK = 1 << 18  # frames of an envelope computed at a time


def _envelope_into(
    req: Callable[[int, int], np.ndarray],
    size: int,
    lookahead: int,
    release_per_sample: float,
    put: Callable[[slice, np.ndarray], None],
) -> None:
    """The limiter's envelope of the ``size`` values ``req(lo, hi)`` reads (the forward
    min, the release, the two boxes: see :func:`_envelope_at`), a block at a time, each
    given to ``put(slice(lo, hi), values)``. The running minimum and the boxes' running
    sums are carried from block to block: the same additions in the same order as in one
    pass over the whole track, so the same numbers, with no array as long as the track."""
    half = max(1, lookahead // 2)
    boxes = (_BoxBehind(half + 1), _BoxBehind(lookahead - half + 1))
    low = np.inf  # the running minimum of (m - ramp) so far
    for lo in range(0, size, ENVELOPE_BLOCK):
        hi = min(size, lo + ENVELOPE_BLOCK)
        ahead = np.zeros(hi - lo + lookahead)  # 0 beyond the end, as _sliding_min_ahead pads
        ahead[: min(size, hi + lookahead) - lo] = req(lo, min(size, hi + lookahead))
        m = _sliding_min_ahead(ahead, lookahead + 1)[: hi - lo]
        ramp = release_per_sample * np.arange(lo, hi, dtype=np.int64).astype(np.float64)
        running = np.minimum.accumulate(m - ramp)
        np.minimum(running, low, out=running)
        low = float(running[-1])
        released = np.minimum(running + ramp, 0.0)
        put(slice(lo, hi), boxes[1].feed(boxes[0].feed(released)))


class _BoxBehind:
    """out[n] = mean(a[n - width + 1 : n + 1]), the signal before index 0 taken as a[0],
    a block of ``a`` at a time: each block's running sum goes on from the last (one
    cumulative sum over the whole signal, the same additions in order)."""

    def __init__(self, width: int) -> None:
        self.width = width
        self.tail: np.ndarray | None = None  # the last `width` running sums

    def feed(self, a: np.ndarray) -> np.ndarray:
        w = self.width
        if self.tail is None:  # the signal before index 0 is a[0]
            self.tail = np.cumsum(np.full(w, a[0]), dtype=np.float64)
        sums = np.cumsum(np.concatenate([self.tail[-1:], a]), dtype=np.float64)[1:]
        both = np.concatenate([self.tail, sums])
        self.tail = both[-w:]
        return (both[w:] - both[:-w]) / w


def _gain_curve(
    n: int, frames: np.ndarray, req: np.ndarray, sr: int, loop: tuple[int, int] | None
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """The limiter's gain per frame (dB) of ``n`` frames whose requirement is ``req`` dB
    (<= 0) at the sorted ``frames``, 0 dB elsewhere; for a loop ``(start, end)``, equal
    across its seam. As :func:`_envelope_at` gives it: ``(frames, values)``, 0 dB at every
    other frame, with no array as long as the track, unless most of it is limited (or a
    loop is too short for its seam): then every frame's (an array)."""
    lookahead = max(2, round(LOOKAHEAD_S * sr))
    release = RELEASE_DB_PER_S / sr
    if loop is None:
        return _envelope_at(n, frames, req, lookahead, release)
    start, end = loop
    depth = float(-req.min(initial=0.0))
    # Frames whose gain a requirement can influence: the look-ahead, the boxes and the
    # release back from the deepest reduction.
    memory = 2 * lookahead + math.ceil(depth / release) + 2
    window = memory + 64
    if end - start < 2 * window:
        # A loop too short to keep the two sides of its seam apart: one constant gain.
        return np.full(n, min(0.0, float(req.min(initial=0.0))))
    need = _Seamed(_Sparse(n, frames, np.asarray(req, dtype=np.float64)), window, start, end)
    env = _envelope_of(need, lookahead, release)
    if isinstance(env, np.ndarray):
        return env[window : window + n]
    at, values = env
    a, b = np.searchsorted(at, [window, window + n])
    at = at[a:b]
    at -= window  # `at` is the envelope's own array: shifted in place
    return at, values[a:b]


@dataclass
class _Seamed:
    """A loop's requirement on positions ``-window .. n + window - 1`` of its ``n`` frames
    (held from 0): before 0 the music heard is the loop's end, after ``n`` its start, and
    around the seam (``window`` frames either side of the loop's start and of its end)
    both sides take the stricter of the two, so the envelope, which only sees ``memory``
    frames around a position, is identical on either side of the jump.

    Read in place from the track's own requirement (``frames``): nothing as long as the
    track but the frames that need limiting."""

    track: _Sparse
    window: int
    start: int
    end: int

    @property
    def size(self) -> int:
        return self.track.size + 2 * self.window

    def _base(self, where: np.ndarray) -> np.ndarray:
        """The requirement at ``where`` before the seam's: the track's, wrapped at its edges."""
        n, w, loop = self.track.size, self.window, self.end - self.start
        src = where - w
        src[where < w] += loop
        src[where >= n + w] -= loop
        out = np.zeros(where.size)
        ok = (src >= 0) & (src < n)
        out[ok] = self.track.at(src[ok])
        return out

    def _seams(self) -> tuple[tuple[int, int], tuple[int, int]]:
        """The positions around the loop's start and around its end that share a requirement."""
        w = self.window
        return (self.start, self.start + 2 * w), (self.end, self.end + 2 * w)

    def at(self, where: np.ndarray) -> np.ndarray:
        out = self._base(where)
        loop = self.end - self.start
        for (lo, hi), partner in zip(self._seams(), (loop, -loop), strict=True):
            a, b = np.searchsorted(where, [lo, hi])  # `where` is sorted
            if b > a:
                np.minimum(out[a:b], self._base(where[a:b] + partner), out=out[a:b])
        return out

    def span(self, lo: int, hi: int) -> np.ndarray:
        n, w = self.track.size, self.window
        out = np.zeros(hi - lo)
        # The track's own frames read as a span; the wrapped edges and the seams as positions.
        a, b = max(lo, w), min(hi, n + w)
        if b > a:
            out[a - lo : b - lo] = self.track.span(a - w, b - w)
        special = [(lo, min(hi, w)), (max(lo, n + w), hi)]
        special += [(max(lo, s), min(hi, e)) for s, e in self._seams()]
        for s, e in special:
            if e > s:
                out[s - lo : e - lo] = self.at(np.arange(s, e))
        return out

    def limited(self) -> tuple[np.ndarray, float]:
        n, w = self.track.size, self.window
        (s1, e1), (s2, e2) = self._seams()
        # The few positions read one by one: the wrapped edges and the seams, in order.
        edges = [(0, w), (s1, e1), (s2, e2), (n + w, n + 2 * w)]
        small = np.unique(np.concatenate([np.arange(s, e) for s, e in edges]))
        values = self.at(small)
        below = values < 0
        small, values = small[below], values[below]
        depth = float(-values.min(initial=0.0))
        # The track's own limited frames (shifted by `window`) but those read above: in
        # order, between the few, with no copy of the track's requirement.
        idx, val = self.track.idx, self.track.val
        cuts = np.searchsorted(idx, np.array([w, s1, e1, s2, e2, n + w]) - w)
        pieces = [(cuts[0], cuts[1]), (cuts[2], cuts[3]), (cuts[4], cuts[5])]
        counts = []
        for a, b in pieces:
            part = val[a:b]
            counts.append(int(np.count_nonzero(part < 0)))
            if counts[-1]:
                depth = max(depth, float(-part.min()))
        out = np.empty(small.size + sum(counts), dtype=np.int64)
        # Each piece in its place: the few before it, then the piece.
        bounds = (w, e1, e2)
        at = 0
        taken = 0
        for (a, b), count, bound in zip(pieces, counts, bounds, strict=True):
            k = int(np.searchsorted(small, bound))
            out[at : at + k - taken] = small[taken:k]
            at += k - taken
            taken = k
            np.compress(val[a:b] < 0, idx[a:b], out=out[at : at + count])
            out[at : at + count] += w
            at += count
        out[at:] = small[taken:]
        return out, depth


@dataclass
class _Curve:
    """The limiter's gain per frame (dB, float64) for ``n`` frames: ``gain`` but at the
    sorted frames ``at`` (``values``); or every frame's, ``dense``."""

    n: int
    gain: float
    at: np.ndarray
    values: np.ndarray
    dense: np.ndarray | None = None

    @classmethod
    def of(cls, n: int, gain: float, env: np.ndarray | tuple[np.ndarray, np.ndarray]) -> _Curve:
        """``gain`` plus an envelope as :func:`_gain_curve` gives it."""
        none = np.zeros(0, dtype=np.int64)
        if isinstance(env, np.ndarray):
            env += gain  # in place: a float64 per frame (0.2 GB per 10 minutes) fewer
            return cls(n, gain, none, np.zeros(0), env)
        values = env[1]
        values += gain
        return cls(n, gain, env[0], values)

    def block(self, lo: int, hi: int) -> np.ndarray:
        """The frames ``lo:hi``'s gains (a new array or a view)."""
        if self.dense is not None:
            return self.dense[lo:hi]
        out = np.full(hi - lo, self.gain)
        a, b = np.searchsorted(self.at, [lo, hi])
        out[self.at[a:b] - lo] = self.values[a:b]
        return out

    def full(self) -> np.ndarray:
        return self.block(0, self.n)

    def min(self) -> float:
        """The lowest gain, at most ``gain``."""
        got = self.dense if self.dense is not None else self.values
        return float(got.min(initial=self.gain))


class _GatedLoudness:
    """BS.1770 integrated loudness of ``x * gain(t)`` for many slowly varying gains, fast.

    K-weighting is linear and the limiter's gain changes over milliseconds, so the
    K-weighted power of the limited signal is the K-weighted power of the input times
    the gain squared. The input is K-weighted once; each estimate is then a product and
    a sum per 100 ms. The result is checked with :func:`segue.core.audio.loudness`.
    """

    def __init__(self, x: np.ndarray, sr: int) -> None:
        self._x, self._sr = x, sr
        self._power: np.ndarray | None = core_audio.k_weighted_power(x, sr)
        self.hop = round(0.1 * sr)
        self.blocks = max(1, (x.shape[0] - 4 * self.hop) // self.hop + 1)
        self.starts = np.arange(0, self.hop * (self.blocks + 3), self.hop)
        self._segments: np.ndarray | None = None  # the 100 ms sums of power, once needed

    @property
    def power(self) -> np.ndarray:
        """Per frame, the K-weighted power (the meter's own filter and weights)."""
        if self._power is None:
            self._power = core_audio.k_weighted_power(self._x, self._sr)
        return self._power

    def release(self) -> None:
        """Drop the power per frame (a float64 each) until a measurement needs it again."""
        self._power = None

    def measure(self, gain_db: np.ndarray | _Curve) -> float:
        """The loudness under ``gain_db`` (dB per frame: an array, or a limiter's curve)."""
        n = min(self._x.shape[0], self.starts[-1] + self.hop)
        starts = self.starts[self.starts < n]
        if starts.size < 4:  # shorter than a gating block: one block
            full = gain_db.full() if isinstance(gain_db, _Curve) else gain_db
            return _to_lufs(np.array([np.mean(self.power * 10.0 ** (full / 10.0))]))
        few = _few_below(gain_db, n)
        if few is not None:
            # Mostly one gain (a limiter acts on a few frames): the 100 ms sums of the
            # input's power, scaled, corrected where the gain is lower.
            top, below, below_db = few
            if self._segments is None:
                self._segments = np.add.reduceat(self.power[:n], starts)
            segments = self._segments * 10.0 ** (top / 10.0)
            if below.size:
                extra = self.power[below] * (10.0 ** (below_db / 10.0) - 10.0 ** (top / 10.0))
                np.add.at(segments, np.searchsorted(starts, below, side="right") - 1, extra)
        else:
            # A segment at a time (the same sums): no factor or product as long as the track.
            segments = np.empty(starts.size)
            for a in range(0, starts.size, MEASURE_SEGMENTS):
                b = min(starts.size, a + MEASURE_SEGMENTS)
                lo, hi = int(starts[a]), int(starts[b]) if b < starts.size else n
                part = gain_db.block(lo, hi) if isinstance(gain_db, _Curve) else gain_db[lo:hi]
                weighted = self.power[lo:hi] * 10.0 ** (part / 10.0)
                segments[a:b] = np.add.reduceat(weighted, starts[a:b] - lo)
        # 400 ms blocks, 75 % overlap: four consecutive 100 ms segments.
        blocks = (segments[:-3] + segments[1:-2] + segments[2:-1] + segments[3:]) / (4 * self.hop)
        return _to_lufs(blocks)


def _few_below(gain_db: np.ndarray | _Curve, n: int) -> tuple[float, np.ndarray, np.ndarray] | None:
    """Of the first ``n`` frames' gains: the highest, and the frames below it with their
    gains, if they are under an eighth of them (else None)."""
    if isinstance(gain_db, _Curve) and gain_db.dense is None:
        curve = gain_db
        k = int(np.searchsorted(curve.at, n))
        values = curve.values[:k]
        top = float(values.max(initial=-np.inf))
        if k < n:  # some of the first n frames are at the curve's gain
            top = max(top, curve.gain)
        if top == curve.gain:  # no frame above it: only frames of `at` are below
            lower = values < top
            below = curve.at[:k][lower]
            return (top, below, values[lower]) if below.size * 8 < n else None
        gain_db = curve.full()
    elif isinstance(gain_db, _Curve):
        gain_db = gain_db.full()
    top = float(gain_db[:n].max())
    if np.count_nonzero(gain_db[:n] < top) * 8 >= n:
        return None  # counted first: the frames are not listed when there are many
    below = np.flatnonzero(gain_db[:n] < top)
    return top, below, gain_db[below]


def _to_lufs(blocks: np.ndarray) -> float:
    with np.errstate(divide="ignore"):
        levels = -0.691 + 10.0 * np.log10(blocks)
    gated = blocks[levels >= SILENCE_LUFS]
    if gated.size == 0:
        return float("-inf")
    relative = -0.691 + 10.0 * np.log10(gated.mean()) - 10.0
    gated = blocks[(levels >= SILENCE_LUFS) & (levels > relative)]
    if gated.size == 0:
        return float("-inf")
    return float(-0.691 + 10.0 * np.log10(gated.mean()))


@dataclass
class Analysis:
    """What the limiter needs of a signal, computed once for every gain it tries."""

    x: np.ndarray
    sr: int
    loop: tuple[int, int] | None
    whole_loop: bool
    lufs: float
    meter: _GatedLoudness
    # Per frame, 4x oversampled (``values``, linear): exact where a gain tried may take it
    # over the ceiling (and at the peak), an upper bound elsewhere (``refine``).
    true_peaks: core_audio.TruePeaks

    def refine(self, level_db: float) -> None:
        """Make the peaks exact wherever they may reach ``level_db``."""
        self.true_peaks.refine(10.0 ** (level_db / 20.0))

    def peaks_db(self, frames: np.ndarray) -> np.ndarray:
        """The peaks of ``frames`` in dB (float64)."""
        with np.errstate(divide="ignore"):
            return 20.0 * np.log10(self.true_peaks.values[frames].astype(np.float64))

    def over(self, level_db: float) -> np.ndarray:
        """The frames whose peak is above ``level_db``, in dB as :meth:`peaks_db` reads them.

        Those with a linear peak a little under the level are read in dB (the rest are
        far below it), not every frame of the track.
        """
        near = np.flatnonzero(self.true_peaks.values >= 10.0 ** ((level_db - 1e-6) / 20.0))
        return near[self.peaks_db(near) > level_db]


def analyse(samples: np.ndarray, sr: int, loop: tuple[int, int] | None) -> Analysis | None:
    """Measure ``samples``; None if they are silent (below BS.1770's absolute gate)."""
    x = np.asarray(samples, dtype=np.float32)
    if x.ndim == 1:
        x = x[:, None]
    if x.shape[0] == 0 or not np.any(x):
        return None
    whole_loop = loop is not None and loop[0] == 0 and loop[1] >= x.shape[0]

    def peaks() -> core_audio.TruePeaks:
        true_peaks = core_audio.TruePeaks(x, circular=whole_loop)
        true_peaks.max()  # exact at the peak: the frames that decide the estimate
        return true_peaks

    meter, true_peaks = _side_by_side(lambda: _GatedLoudness(x, sr), peaks)
    # With no gain this is core_audio.loudness's reading (same filter, blocks and gates).
    none = np.zeros(0, dtype=np.int64)
    lufs = meter.measure(_Curve(x.shape[0], 0.0, none, np.zeros(0)))
    if not math.isfinite(lufs) or lufs < SILENCE_LUFS:
        return None
    return Analysis(x, sr, loop, whole_loop, lufs, meter, true_peaks)


def limit(an: Analysis, target_lufs: float, ceiling_db: float) -> Result:
    """Gain toward ``target_lufs`` with true peaks held at ``ceiling_db``.

    The result's loudness and true peak are estimates (see ``_GatedLoudness``; peaks
    scaled by the gain); :func:`normalise` measures them.
    """

    def curve(gain: float) -> _Curve:
        # Frames whose bound stays under the ceiling need no limiting, exact or not.
        an.refine(ceiling_db - gain)
        # Only frames at (or a hair under) the ceiling can need limiting: the
        # requirement is computed there (the rest is 0 dB, as the full formula gives).
        frames = an.x.shape[0]
        over = an.over(ceiling_db - gain - 1e-9)
        needed = np.minimum(ceiling_db - (an.peaks_db(over) + gain), 0.0)
        if needed.min(initial=0.0) >= 0:
            return _Curve(frames, gain, over[:0], needed[:0])
        return _Curve.of(frames, gain, _gain_curve(frames, over, needed, an.sr, an.loop))

    # Secant search for the gain whose limited signal meets the target.
    gain = start = target_lufs - an.lufs
    # Each try's (gain, level). One curve at a time (where most frames are limited, a
    # curve is a float64 per frame: 0.2 GB for 10 minutes): the last try's, dropped before
    # the next is made; the closest try's is made again if it was not the last (a curve
    # depends on its gain alone: the peaks it reads were made exact when it was first made).
    tried: list[tuple[float, float]] = []
    best: tuple[float, float] | None = None
    total: _Curve | None = None
    for _ in range(MAX_ITERATIONS):
        total = None
        total = curve(gain)
        level = an.meter.measure(total)
        tried.append((gain, level))
        if best is None or abs(target_lufs - level) < abs(target_lufs - best[1]):
            best = (gain, level)
        error = target_lufs - level
        if abs(error) <= TOLERANCE_LU / 2:
            break
        slope = 1.0
        if len(tried) >= 2:
            (g0, l0), (g1, l1) = tried[-2], tried[-1]
            if g1 != g0:
                slope = (l1 - l0) / (g1 - g0)
                if error > 0 and slope < 0.02:
                    break  # limited flat out: more gain no longer makes it louder
                slope = min(1.0, max(0.05, slope))
        # Never more than MAX_PUSH_DB above the gain that reaches the target unlimited.
        gain = min(start + MAX_PUSH_DB, gain + max(-24.0, min(24.0, error / slope)))
    assert best is not None and total is not None
    if best[0] != tried[-1][0]:
        total = None
        total = curve(best[0])
    gain, level = best
    # The input's power per frame is not measured again here: its room goes to the result.
    an.meter.release()
    # y = x * 10 ** (total / 20) per frame, the factor raised only where the limiter moved
    # it from the gain; with the largest peak it moved, and the loudest frame it left at
    # the gain. In blocks: no factor, mask or peaks as long as the track.
    unmoved = _amplitude(np.array([gain]))[0]
    x, values = an.x, an.true_peaks.values
    y = np.empty(x.shape, dtype=np.result_type(x.dtype, np.float32))
    peak_moved = -np.inf
    loudest, loudest_at = -1.0, 0
    for lo in range(0, total.n, LIMIT_BLOCK):
        part = total.block(lo, min(total.n, lo + LIMIT_BLOCK))
        moved = np.flatnonzero(part != gain)
        factor = np.full(part.size, unmoved)
        if moved.size:
            factor[moved] = _amplitude(part[moved])
            peak_moved = max(peak_moved, float(np.max(an.peaks_db(lo + moved) + part[moved])))
        np.multiply(x[lo : lo + part.size], factor[:, None], out=y[lo : lo + part.size])
        left = values[lo : lo + part.size].copy()
        left[moved] = 0.0
        i = int(np.argmax(left))
        if left[i] > loudest:  # the first of the largest, as one argmax over the track
            loudest, loudest_at = float(left[i]), lo + i
    peak = max(float(an.peaks_db(np.array([loudest_at]))[0]) + gain, peak_moved)
    limited = min(0.0, total.min() - gain)  # (total - gain).min()
    return Result(y, level, gain, limited, peak)


LIMIT_BLOCK = 1 << 18  # frames at a time where the limiter's gains are applied
MEASURE_SEGMENTS = 64  # 100 ms segments measured at a time under a varying gain


def _amplitude(db: np.ndarray) -> np.ndarray:
    return (10.0 ** (db / 20.0)).astype(np.float32)


def normalise(
    samples: np.ndarray,
    sr: int,
    target_lufs: float,
    ceiling_db: float,
    loop: tuple[int, int] | None = None,
) -> Result | None:
    """Gain to ``target_lufs``, true peaks limited to ``ceiling_db``; None for silence.

    ``loop`` is the loop's ``(start, end)`` frames for a looping track. The result's
    loudness and true peak are measured.
    """
    an = analyse(samples, sr, loop)
    return None if an is None else _measured(an, limit(an, target_lufs, ceiling_db), ceiling_db)


def _measured(an: Analysis, result: Result, ceiling_db: float) -> Result:
    y = result.samples
    peak = _true_peak(y, an.whole_loop)
    if peak > ceiling_db:
        # The gain's smoothing lets a sliver through at a few frames: scale it away.
        y *= np.float32(10.0 ** ((ceiling_db - peak - 0.01) / 20.0))  # y is limit()'s own
        peak = _true_peak(y, an.whole_loop)
    return Result(y, core_audio.loudness(y, an.sr), result.gain_db, result.limited_db, peak)


def _side_by_side(first: Callable[[], A], second: Callable[[], B]) -> tuple[A, B]:
    """``(first(), second())``, the second in another thread meanwhile.

    Both are numpy work on whole tracks (matrix products, reductions over arrays) that
    lets go of the interpreter lock: on two cores a track's finishing takes a little
    over half the time for these measurements (the first track of ``segue serve`` waits
    for it). The results are the same as one after the other.
    """
    global _POOL
    if _POOL is None:
        _POOL = ThreadPoolExecutor(max_workers=2, thread_name_prefix="segue-loudness")
    later = _POOL.submit(second)
    try:
        return first(), later.result()
    finally:
        later.cancel()


_POOL: ThreadPoolExecutor | None = None


def _true_peak(y: np.ndarray, circular: bool) -> float:
    return core_audio.true_peak_db(y, 0, circular=circular)


def _target(track: Track) -> float:
    value = track.extra.get("loudness_target")
    try:
        target = float(value) if value is not None else DEFAULT_TARGET_LUFS
    except (TypeError, ValueError):
        target = DEFAULT_TARGET_LUFS
    return target if math.isfinite(target) else DEFAULT_TARGET_LUFS


def _loop_frames(track: Track, frames: int, sr: int) -> tuple[int, int] | None:
    if not track.loop:
        return None
    start = min(max(0, round(track.loop_start_s * sr)), frames)
    end = frames if track.loop_end_s is None else min(frames, round(track.loop_end_s * sr))
    return (start, end) if end > start else None


LOSSY = frozenset({"ogg", "opus", "mp3"})
# Lossy codecs drop some of the highest frequencies, which K-weighting counts: aim this
# much louder at first (typically 0-0.5 LU is lost), then correct from the decoded file.
LOSSY_BIAS_LU = 0.1
# What the decoded file must meet, with a little room for meters that read differently.
VERIFY_LU = 0.3
VERIFY_PEAK_DB = TRUE_PEAK_LIMIT_DB - 0.05
VERIFY_ROUNDS = 4
# Longer decoded files are measured one measurement after the other, for memory.
SIDE_BY_SIDE_FRAMES = 48000 * 120


def _decoded(samples: np.ndarray, sr: int, fmt: str, loop: bool) -> tuple[np.ndarray, int]:
    """Encode as the pipeline will (same bytes: encodes are deterministic) and decode, in memory."""
    return core_audio.decode(
        core_audio.encode(samples, sr, fmt, loop=loop), f"loudness check ({fmt})"
    )


def process(
    samples: np.ndarray,
    sr: int,
    fmt: str,
    target: float,
    loop: tuple[int, int] | None,
) -> tuple[Result, float, float] | None:
    """Normalise for ``fmt``; for lossy codecs, measure the decoded file and correct.

    Returns the result with the loudness and true peak the encoded file will decode to
    (for PCM formats, of the result itself), or None for silence.
    """
    an = analyse(samples, sr, loop)
    if an is None:
        return None
    ceiling = CEILING_DB.get(fmt, min(CEILING_DB.values()))
    if fmt not in LOSSY:
        result = _measured(an, limit(an, target, ceiling), ceiling)
        return result, result.lufs, result.true_peak_db
    aim = target + LOSSY_BIAS_LU
    best: tuple[float, Result, float, float] | None = None
    for _ in range(VERIFY_ROUNDS):
        result = limit(an, aim, ceiling)
        # While the file is checked, the input's power is not needed (made again, the
        # same, if another round is): its room goes to the decoded file's measurements.
        an.meter.release()
        decoded, dsr = _decoded(result.samples, sr, fmt, loop is not None)
        meter = partial(core_audio.loudness, decoded, dsr)
        peaks = partial(_true_peak, decoded, an.whole_loop)
        if decoded.shape[0] > SIDE_BY_SIDE_FRAMES:
            # Side by side, the two measurements' buffers add up (some 0.2 GB per 10 minutes).
            lufs, peak = meter(), peaks()
        else:
            lufs, peak = _side_by_side(meter, peaks)
        del decoded, meter, peaks
        error = target - lufs
        over = peak - VERIFY_PEAK_DB
        # Rank rounds: a peak over the limit first, then the loudness error.
        badness = max(0.0, over) * 10 + abs(error)
        if best is None or badness < best[0]:
            best = (badness, result, lufs, peak)
        if abs(error) <= VERIFY_LU and over <= 0:
            break
        log.debug("%s: decoded %.2f LUFS %.2f dBTP: correcting", fmt, lufs, peak)
        aim += error
        if over > 0:
            # The codec adds (peak - given peak) to the peaks it is given, and a little more
            # or less each time the limiting changes: leave that much room and then some.
            overshoot = peak - min(result.true_peak_db, ceiling)
            ceiling = min(ceiling - 0.25, VERIFY_PEAK_DB - overshoot - 0.15)
        del result  # the best is kept: the next round's result is made without this one
    assert best is not None
    return best[1], best[2], best[3]


@hookimpl(trylast=True)
def segue_process_track(audio: TrackAudio) -> TrackAudio | None:
    """Normalise the samples for the track's format; record what the encoded file measures."""
    track, sr = audio.track, audio.rate
    target = _target(track)
    loop = _loop_frames(track, audio.frames, sr)
    done = process(audio.samples, sr, track.format, target, loop)
    if done is None:
        log.warning("%s: silent (below %s LUFS): loudness left as it is", track.id, SILENCE_LUFS)
        return audio.replace(
            track=track.replace(extra={**track.extra, "loudness_warning": "silent"})
        )
    result, lufs, peak = done
    extra = {
        **track.extra,
        "loudness": {
            "gain_db": round(result.gain_db, 2),
            "limited_db": round(result.limited_db, 2),
            "true_peak_db": round(peak, 2),
        },
    }
    if abs(lufs - target) > 0.5 or peak > TRUE_PEAK_LIMIT_DB:
        warning = (
            f"loudness {lufs:.2f} LUFS / {peak:.2f} dBTP after encoding, "
            f"target {target:.1f} LUFS / {TRUE_PEAK_LIMIT_DB:.1f} dBTP"
        )
        log.warning("%s: %s", track.id, warning)
        extra["loudness_warning"] = warning
    return audio.replace(
        samples=result.samples, track=track.replace(loudness_lufs=round(lufs, 2), extra=extra)
    )
