"""Loop-point metadata, and a measurement of the seam a looping track will play.

Runs on ``segue_process_track`` after ``beat_grid`` (``tryfirst``) and before ``loudness``
(``trylast``). For a looping track whose generator gave no ``loop_end_s``: the loop starts
at ``loop_start_s`` if set, else at the first beat, and ends at the last whole bar inside
the file when the tempo is known (else at the end of the file). A stinger (``loop:
false``) plays once: ``loop_end_s`` is its duration.

The seam (the jump from ``loop_end_s`` back to ``loop_start_s``) is measured as a
listener hears it: the sample-to-sample jump, and the spectral flux and level step across
the seam, against the same measures inside the loop (at its other bar lines: the seam is
a bar line too). ``extra["seam_ok"]`` is True when all are within the loop's own normal
range; ``extra["seam"]`` holds the figures.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np

from segue.core import audio, hookimpl
from segue.core.track import Track

log = logging.getLogger("segue.plugins.loop_points")

# Loop ends this close to the end of the file are the end of the file (rounding).
SNAP_S = 0.002
# The jump across the seam may be as large as this percentile of the loop's own jumps.
JUMP_PERCENTILE = 99.9
FLUX_WINDOW = 2048
FLUX_MARGIN = 1.05
LEVEL_MARGIN_DB = 0.5


def loop_region(track: Track, duration_s: float) -> tuple[float, float]:
    """(loop_start_s, loop_end_s) for ``track`` as the plugin fills them."""
    if not track.loop:
        return 0.0, duration_s
    start = track.loop_start_s or 0.0
    if track.loop_end_s is not None:
        return start, min(track.loop_end_s, duration_s)
    if start == 0.0:
        start = track.first_beat_s or 0.0
    start = min(max(0.0, start), duration_s)
    if track.bpm:
        bar = track.beats_per_bar * 60.0 / track.bpm
        bars = math.floor((duration_s - start) / bar + SNAP_S / bar)
        if bars >= 1:
            end = start + bars * bar
            return start, duration_s if abs(duration_s - end) <= SNAP_S else end
    return start, duration_s


def _bands(size: int, sr: int) -> np.ndarray:
    """(bins, bands): sums FFT power into third-octave bands from 40 Hz up."""
    freqs = np.fft.rfftfreq(size, 1.0 / sr)
    index = np.full(freqs.size, -1)
    audible = freqs >= 40.0
    index[audible] = np.floor(3 * np.log2(freqs[audible] / 40.0)).astype(int)
    matrix = np.zeros((freqs.size, int(index.max()) + 1))
    matrix[audible, index[audible]] = 1.0
    return matrix[:, matrix.sum(axis=0) > 0]


def _band_levels(x: np.ndarray, bands: np.ndarray, floor: float) -> np.ndarray:
    power = np.abs(np.fft.rfft(x * np.hanning(x.size))) ** 2
    return np.log10(power @ bands + floor)


def _flux(before: np.ndarray, after: np.ndarray, bands: np.ndarray, floor: float) -> float:
    """Spectral flux from one window to the next: the rise of the third-octave band levels.

    Bands, not single FFT bins: a bin's level fluctuates at random in noise, a band's
    hardly, so the measure follows what changed in the music.
    """
    rise = _band_levels(after, bands, floor) - _band_levels(before, bands, floor)
    return float(np.sqrt(np.mean(np.maximum(rise, 0.0) ** 2)))


def _level_step(before: np.ndarray, after: np.ndarray) -> float:
    rb = float(np.sqrt(np.mean(before**2))) + 1e-9
    ra = float(np.sqrt(np.mean(after**2))) + 1e-9
    return abs(20.0 * math.log10(ra / rb))


def _around(loop: np.ndarray, pos: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """``width`` samples before and after ``pos``, playing ``loop`` round and round."""
    before = np.take(loop, np.arange(pos - width, pos), mode="wrap")
    after = np.take(loop, np.arange(pos, pos + width), mode="wrap")
    return before, after


def upper_percentile(x: np.ndarray, q: float) -> float:
    """``np.percentile(x, q)`` (linear interpolation) for a high ``q``, a few times faster.

    Only the top of ``x`` decides it: a coarse quantile of a sparse sample gives a bound
    below which it almost surely lies, and the exact order statistics are taken among the
    values above that bound (falling back to ``np.percentile`` when too few are).
    """
    flat = np.ravel(x)
    n = flat.size
    if n < 65536:
        return float(np.percentile(flat, q))
    pos = q / 100.0 * (n - 1)
    rank = math.floor(pos)
    needed = n - rank  # the sorted values from ``rank`` to the top
    sample = flat[::16]
    keep = min(sample.size - 1, max(0, sample.size - 1 - 4 * needed // 16 - 64))
    bound = np.partition(sample, keep)[keep]
    top = flat[flat >= bound]
    if top.size < needed:
        return float(np.percentile(flat, q))
    top = np.sort(top)[top.size - needed :]
    low = float(top[0])
    return low + (pos - rank) * (float(top[1]) - low) if needed > 1 else low


def measure_seam(
    samples: np.ndarray, sr: int, start: int, end: int, bar_s: float | None = None
) -> dict[str, float | bool]:
    """The jump back from ``end`` to ``start`` against the loop's normal range.

    Measured as a listener hears it: the sample-to-sample jump across the seam (against
    the 99.9th percentile of the loop's own jumps); the spectral flux between the 46 ms
    before and after the seam; the level step between the 11.6 ms (a gap, a click) and
    the 46 ms (a jump in level) before and after it. Flux and level steps are compared
    with the same measures at every other bar line of the loop, the seam being a bar line
    too (without a tempo, at points spaced a quarter second apart).
    """
    x = np.asarray(samples)
    if x.ndim == 1:
        x = x[:, None]
    loop = x[start:end]
    n = loop.shape[0]
    steps = np.zeros(max(1, n - 1), dtype=np.result_type(loop.dtype, np.float32))
    for ch in range(loop.shape[1]):  # column by column: numpy reduces short rows slowly
        d = np.diff(loop[:, ch])
        np.maximum(steps[: n - 1], np.abs(d, out=d), out=steps[: n - 1])
    jump = float(np.abs(loop[0].astype(np.float64) - loop[-1]).max())
    jump_limit = upper_percentile(steps, JUMP_PERCENTILE)
    mono = loop[:, 0].astype(np.float64)
    for ch in range(1, loop.shape[1]):
        mono += loop[:, ch]
    mono /= loop.shape[1]
    width = min(FLUX_WINDOW, max(2, n // 4))
    spacing = bar_s * sr if bar_s else 0.25 * sr
    # A loop a whole number of bars long can be a fraction of a sample short of it.
    lines = [round(k * spacing) for k in range(1, math.floor(n / spacing + 1e-3))]
    lines = [p for p in lines if width <= p <= n - width]
    bands = _bands(width, sr)
    # Levels below a millionth of the loop's mean band power count as silence.
    mean_power = float(np.dot(mono, mono)) / n * width * 0.375 / bands.shape[1] + 1e-20
    floor = 1e-6 * mean_power
    flux = _flux(*_around(mono, 0, width), bands, floor)
    level = _level_step(*_around(mono, 0, width // 4))
    level_long = _level_step(*_around(mono, 0, width))
    fluxes = [_flux(*_around(mono, p, width), bands, floor) for p in lines]
    levels = [_level_step(*_around(mono, p, width // 4)) for p in lines]
    levels_long = [_level_step(*_around(mono, p, width)) for p in lines]
    flux_limit = max(fluxes, default=flux)
    level_limit = max(levels, default=level)
    level_long_limit = max(levels_long, default=level_long)
    # Small margins: the seam is the loop's first downbeat, often its most accented one.
    ok = (
        jump <= jump_limit * 1.01 + 1e-5
        and flux <= flux_limit * FLUX_MARGIN + 1e-4
        and level <= level_limit + LEVEL_MARGIN_DB
        and level_long <= level_long_limit + LEVEL_MARGIN_DB
    )
    return {
        "ok": bool(ok),
        "jump": round(jump, 5),
        "jump_limit": round(jump_limit, 5),
        "flux": round(flux, 4),
        "flux_limit": round(flux_limit, 4),
        "level_step_db": round(level, 2),
        "level_step_limit_db": round(level_limit, 2),
        "level_step_long_db": round(level_long, 2),
        "level_step_long_limit_db": round(level_long_limit, 2),
    }


@hookimpl
def segue_process_track(track: Track, path: Path) -> Track | None:
    samples, sr = audio.read(path)
    duration = samples.shape[0] / sr
    start_s, end_s = loop_region(track, duration)
    changes: dict[str, object] = {}
    if not track.loop:
        return track.replace(loop_end_s=end_s) if track.loop_end_s is None else None
    changes["loop_start_s"] = round(start_s, 6)
    changes["loop_end_s"] = round(end_s, 6)
    start, end = round(start_s * sr), round(end_s * sr)
    extra = dict(track.extra)
    if end - start < 2:
        extra["seam_ok"] = False
        extra["seam"] = {"ok": False, "reason": "loop shorter than two samples"}
    else:
        bar_s = track.beats_per_bar * 60.0 / track.bpm if track.bpm else None
        seam = measure_seam(samples, sr, start, min(end, samples.shape[0]), bar_s)
        extra["seam_ok"] = seam["ok"]
        extra["seam"] = seam
        if not seam["ok"]:
            log.info(
                "%s: the loop seam stands out (jump %.4f, normal up to %.4f; flux %.2f, "
                "%.2f at the other bar lines)",
                track.id[:12],
                seam["jump"],
                seam["jump_limit"],
                seam["flux"],
                seam["flux_limit"],
            )
    return track.replace(extra=extra, **changes)
