"""How a loop's seam sounds: the jump from its end back to its start, against the loop itself.

Shared by the synth (which checks every loop it renders) and the ``loop_points``
post-processor (which records the figures on every looping track): a measure both may
import, so neither plugin imports the other.

The seam is measured as a listener hears it: the sample-to-sample jump, and the spectral
flux and level step across the seam, against the same measures inside the loop (at its
other bar lines: the seam is a bar line too).
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["measure_seam", "upper_percentile"]

# The jump across the seam may be as large as this percentile of the loop's own jumps.
JUMP_PERCENTILE = 99.9
FLUX_WINDOW = 2048
FLUX_MARGIN = 1.05
LEVEL_MARGIN_DB = 0.5


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
    """The mono mix (float64) of ``width`` frames before and after ``pos``, playing
    ``loop`` (frames, channels) round and round."""
    before = np.take(loop, np.arange(pos - width, pos), axis=0, mode="wrap")
    after = np.take(loop, np.arange(pos, pos + width), axis=0, mode="wrap")
    return _mono(before), _mono(after)


def _mono(rows: np.ndarray) -> np.ndarray:
    """The mean of the channels of ``rows`` (frames, channels), in float64."""
    mono = rows[:, 0].astype(np.float64)
    for ch in range(1, rows.shape[1]):
        mono += rows[:, ch]
    mono /= rows.shape[1]
    return mono


# Frames of a loop read at a time for its jumps and power: they stay in the processor's
# cache (a whole minute's temporaries do not).
_BLOCK = 1 << 16


def _steps(loop: np.ndarray) -> np.ndarray:
    """The largest jump from each frame of ``loop`` (frames, channels) to the next over
    its channels: (frames - 1,), in the loop's precision (at least float32)."""
    n, channels = loop.shape
    steps = np.zeros(max(1, n - 1), dtype=np.result_type(loop.dtype, np.float32))
    # One block's differences, reused: a new one per block grew a 10-minute pregeneration's
    # peak by 15 MB (the heap's blocks left between longer-lived arrays).
    work = np.empty((min(_BLOCK, max(1, n - 1)), channels), dtype=steps.dtype)
    for a in range(0, n - 1, _BLOCK):
        b = min(n - 1, a + _BLOCK)
        d = np.subtract(loop[a + 1 : b + 1], loop[a:b], out=work[: b - a], dtype=steps.dtype)
        np.abs(d, out=d)
        out = steps[a:b]
        out[...] = d[:, 0]
        for ch in range(1, channels):
            np.maximum(out, d[:, ch], out=out)
    return steps


def _mono_power(loop: np.ndarray) -> float:
    """The energy of the loop's mono mix (summed in float64)."""
    total = 0.0
    for a in range(0, loop.shape[0], _BLOCK):
        mono = _mono(loop[a : a + _BLOCK])
        total += float(np.dot(mono, mono))
    return total


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
    jump = float(np.abs(loop[0].astype(np.float64) - loop[-1]).max())
    jump_limit = upper_percentile(_steps(loop), JUMP_PERCENTILE)
    width = min(FLUX_WINDOW, max(2, n // 4))
    spacing = bar_s * sr if bar_s else 0.25 * sr
    # A loop a whole number of bars long can be a fraction of a sample short of it.
    lines = [round(k * spacing) for k in range(1, math.floor(n / spacing + 1e-3))]
    lines = [p for p in lines if width <= p <= n - width]
    bands = _bands(width, sr)
    # Levels below a millionth of the loop's mean band power count as silence.
    mean_power = _mono_power(loop) / n * width * 0.375 / bands.shape[1] + 1e-20
    floor = 1e-6 * mean_power
    flux = _flux(*_around(loop, 0, width), bands, floor)
    level = _level_step(*_around(loop, 0, width // 4))
    level_long = _level_step(*_around(loop, 0, width))
    fluxes = [_flux(*_around(loop, p, width), bands, floor) for p in lines]
    levels = [_level_step(*_around(loop, p, width // 4)) for p in lines]
    levels_long = [_level_step(*_around(loop, p, width)) for p in lines]
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
