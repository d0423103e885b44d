"""Space and dynamics: reverb, echo, loop folding, a gentle peak limiter.

The reverb is a convolution with a synthetic impulse response (decaying noise, darker as it
decays, after a few early reflections), run at a third of the sample rate: a reverb tail
needs no content above 6 kHz, and the FFTs cost a third. The echo is a ping-pong tap delay
at the same rate, feeding the reverb. Everything in the wet path is linear and time
invariant, which is what makes loop folding exact.
"""

from __future__ import annotations

import math

import numpy as np

DECIM = 3
REVERB_LOW_CUT = 220.0
_FIR_TAPS = 24


def _lowpass_fir(taps: int, cutoff: float) -> np.ndarray:
    """Windowed-sinc low-pass, ``cutoff`` as a fraction of the input Nyquist."""
    n = np.arange(taps) - (taps - 1) / 2
    h = np.sinc(cutoff * n) * np.blackman(taps)
    return (h / h.sum()).astype(np.float32)


_FIR = _lowpass_fir(_FIR_TAPS, 0.8 / DECIM)


def decimate(x: np.ndarray) -> np.ndarray:
    """``x`` low-passed and taken every DECIM samples (polyphase FIR, strided slices)."""
    m = len(x) // DECIM + 1
    pad = np.zeros(m * DECIM + _FIR_TAPS, dtype=np.float32)
    pad[_FIR_TAPS // 2 : _FIR_TAPS // 2 + len(x)] = x
    y = np.zeros(m, dtype=np.float32)
    for k in range(_FIR_TAPS):
        y += _FIR[k] * pad[k : k + m * DECIM : DECIM]
    return y


def upsample(y: np.ndarray, n: int) -> np.ndarray:
    """Back to the full rate by linear interpolation (the signal is already band-limited)."""
    w = (np.arange(DECIM, dtype=np.float32) / DECIM)[None, :]
    y1 = np.concatenate([y, y[-1:]])
    out = (y1[:-1, None] * (1.0 - w) + y1[1:, None] * w).ravel()
    if len(out) < n:
        out = np.concatenate([out, np.zeros(n - len(out), dtype=np.float32)])
    return out[:n]


def _fast_len(n: int) -> int:
    """The smallest 2^a * 3^b >= n (fast for pocketfft)."""
    best = 1 << math.ceil(math.log2(n))
    p3 = 1
    while p3 < best:
        p2 = p3
        while p2 < n:
            p2 *= 2
        best = min(best, p2)
        p3 *= 3
    return best


def impulse_response(sr: int, rt60: float, bright: float, seed: int) -> np.ndarray:
    """A stereo (2, n) reverb IR at ``sr`` (the decimated rate), energy-normalised per side."""
    rng = np.random.default_rng(seed)
    n = int(rt60 * 1.1 * sr)
    t = np.arange(n) / sr
    out = np.zeros((2, n))
    predelay = int(0.012 * sr)
    for ch in range(2):
        noise = rng.standard_normal(n)
        # Two bands: a dull one that rings long and a bright one that dies sooner.
        kernel = np.ones(6) / 6
        dull = np.convolve(noise, kernel, mode="same")
        bright_part = noise - dull
        tail = dull * np.exp(-6.9 * t / rt60) + bright_part * (0.3 + 0.5 * bright) * np.exp(
            -6.9 * t / (rt60 * 0.45)
        )
        tail *= np.clip(t / 0.03, 0, 1)  # a soft build-up after the early reflections
        ir = np.zeros(n)
        ir[predelay:] = tail[: n - predelay]
        for delay_ms, gain in ((7, 0.5), (13, 0.4), (19, 0.35), (29, 0.3), (37, 0.25)):
            k = predelay + int((delay_ms + ch * 3.1) * 1e-3 * sr)
            if k < n:
                ir[k] += gain * (1 if (delay_ms + ch) % 2 else -1) * 3
        out[ch] = ir / np.sqrt(np.sum(ir**2))
    return out


def wet(
    send: np.ndarray,
    echo: np.ndarray,
    sr: int,
    rt60: float,
    bright: float,
    echo_s: float,
    feedback: float,
    seed: int,
) -> np.ndarray:
    """Reverb of ``send`` (+ echoes of ``echo``): (2, len(send)) float32, full rate."""
    n = len(send)
    low_sr = sr / DECIM
    s = decimate(send)
    if echo is not None and np.any(echo):
        e = decimate(echo)
        taps = np.zeros((2, len(s)), dtype=np.float32)
        d = max(1, round(echo_s * low_sr))
        g = 1.0
        for k in range(1, 7):
            g *= feedback
            off = d * k
            if off >= len(e):
                break
            taps[k % 2, off:] += g * e[: len(e) - off]
        s = s + 0.5 * (taps[0] + taps[1])
    else:
        taps = None
    ir = impulse_response(int(low_sr), rt60, bright, seed)
    size = _fast_len(len(s) + ir.shape[1])
    spec = np.fft.rfft(s, size)
    # No reverb below ``REVERB_LOW_CUT`` Hz: a room's low end is mud under the bass, and a
    # stereo one (the IR's sides differ) would not sum to mono.
    f = np.fft.rfftfreq(size, 1.0 / low_sr)
    spec *= 1.0 / (1.0 + (REVERB_LOW_CUT / np.maximum(f, 1e-3)) ** 4)
    out = np.empty((2, n), dtype=np.float32)
    for ch in range(2):
        y = np.fft.irfft(spec * np.fft.rfft(ir[ch], size), size)[: len(s)].astype(np.float32)
        if taps is not None:
            y += taps[ch]
        out[ch] = upsample(y, n)
    return out


def fold(x: np.ndarray, length: int) -> np.ndarray:
    """Fold everything past ``length`` back onto the start (circularly), for seamless loops."""
    channels, n = x.shape
    if n <= length:
        out = np.zeros((channels, length), dtype=x.dtype)
        out[:, :n] = x
        return out
    periods = -(-n // length)
    padded = np.zeros((channels, periods * length), dtype=x.dtype)
    padded[:, :n] = x
    return padded.reshape(channels, periods, length).sum(axis=1)


def limit(x: np.ndarray, sr: int, ceiling: float, circular: bool) -> np.ndarray:
    """A smooth look-ahead peak limiter: gain per ~6 ms block, never above what a block needs.

    The gain curve is a moving average of a moving minimum (radius r+1 >= r), so it is below
    the needed gain everywhere; ``circular`` treats the signal as a loop (no seam in the gain).
    """
    n = x.shape[1]
    blocks = max(1, n // 256)
    edges = np.round(np.arange(blocks) * n / blocks).astype(np.int64)
    peak = np.maximum.reduceat(np.max(np.abs(x), axis=0), edges)
    need = np.minimum(1.0, ceiling / np.maximum(peak, 1e-9))
    if np.all(need >= 1.0):
        return x
    r = 6
    mode = "wrap" if circular else "edge"
    padded = np.pad(need, r + 1, mode=mode)
    mins = padded[:blocks].copy()
    for k in range(1, 2 * r + 3):
        np.minimum(mins, padded[k : k + blocks], out=mins)
    padded = np.pad(mins, r, mode=mode)
    c = np.concatenate([[0.0], np.cumsum(padded)])
    gain = (c[2 * r + 1 :] - c[: -(2 * r + 1)]) / (2 * r + 1)
    centres = edges + np.diff(np.append(edges, n)) / 2
    if circular:
        g = np.interp(np.arange(n), centres, gain, period=n)
    else:
        g = np.interp(np.arange(n), centres, gain)
    return (x * g.astype(np.float32)).astype(np.float32)


def side_scale(x: np.ndarray, max_side: float) -> float:
    """The factor on the side that keeps its energy at most ``max_side`` times the middle's:
    stereo width that survives a mono sum (at 0.25, summing to mono loses at most about 1 dB).
    1.0 when the side is already within."""
    mid = (x[0] + x[1]) * np.float32(0.5)
    side = (x[0] - x[1]) * np.float32(0.5)
    em = float(np.dot(mid, mid))
    es = float(np.dot(side, side))
    if es <= max_side * em or es <= 0:
        return 1.0
    return math.sqrt(max_side * em / es)


def scale_side(x: np.ndarray, k: float) -> np.ndarray:
    """``x`` (2, n) with its side scaled by ``k``: linear, so stems scaled alike still sum
    to the mix scaled."""
    if k == 1.0:
        return x
    mid = (x[0] + x[1]) * np.float32(0.5)
    side = (x[0] - x[1]) * np.float32(0.5 * k)
    return np.stack([mid + side, mid - side])


def compress_gain(
    x: np.ndarray, sr: int, ratio: float = 2.0, above_db: float = 4.0, circular: bool = True
) -> np.ndarray | None:
    """A light RMS bus compressor's gain per sample (float32, n), None when it does nothing:
    ``ratio``:1 on what rises more than ``above_db`` over the track's mean level, with a
    50 ms window and a ~0.3 s smoothing (so it breathes with the phrases but keeps the
    sections' dynamics). The gain is computed on the mix and applied to every stem alike,
    so the stems still sum to the mix."""
    n = x.shape[1]
    block = max(1, int(0.05 * sr))
    blocks = max(1, n // block)
    edges = np.round(np.arange(blocks) * n / blocks).astype(np.int64)
    power = np.add.reduceat(np.square(x, dtype=np.float64).sum(axis=0), edges)
    power /= np.maximum(np.diff(np.append(edges, n)), 1)
    level = 10 * np.log10(power + 1e-12)
    mean = 10 * np.log10(float(np.mean(power)) + 1e-12)
    over = np.maximum(0.0, level - (mean + above_db))
    reduce_db = over * (1.0 - 1.0 / ratio)
    r = 3  # ~0.3 s of smoothing: moving maximum then moving average
    mode = "wrap" if circular else "edge"
    padded = np.pad(reduce_db, r, mode=mode)
    peak = padded[: len(reduce_db)].copy()
    for k in range(1, 2 * r + 1):
        np.maximum(peak, padded[k : k + len(reduce_db)], out=peak)
    padded = np.pad(peak, r, mode=mode)
    c = np.concatenate([[0.0], np.cumsum(padded)])
    smooth = (c[2 * r + 1 :] - c[: -(2 * r + 1)]) / (2 * r + 1)
    if not smooth.any():
        return None
    centres = edges + np.diff(np.append(edges, n)) / 2
    g = 10 ** (-smooth / 20)
    if circular:
        gain = np.interp(np.arange(n), centres, g, period=n)
    else:
        gain = np.interp(np.arange(n), centres, g)
    return gain.astype(np.float32)
