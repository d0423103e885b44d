"""The fal emulator's stand-in for demucs: stems that sum to the song they came from.

For a song the emulator made itself, it answers with the synth's own stems (render.py,
``render_stems``); for any other audio, with a band split (:func:`band_split`). Either
way the residual goes to ``other``, so the outputs sum to the decoded input.
"""

from __future__ import annotations

import numpy as np

N_FFT = 2048
HOP = N_FFT // 2  # sqrt-Hann analysis and synthesis at 50 % overlap: perfect reconstruction
LOW_HZ = 200.0  # bass below this
HIGH_HZ = 2000.0  # the harmonic part above this is "guitar" (6 stems), below it "piano"
MEDIAN = 17  # the median filters' length (frames, bins) of the percussive/harmonic split


def _stft(x: np.ndarray) -> tuple[np.ndarray, int]:
    """Frames x bins of one channel, padded so every sample is covered twice."""
    n = len(x)
    frames = max(1, int(np.ceil((n + HOP) / HOP)) + 1)
    padded = np.zeros((frames - 1) * HOP + N_FFT)
    padded[HOP : HOP + n] = x
    window = np.sqrt(np.hanning(N_FFT + 1)[:-1])
    idx = np.arange(N_FFT)[None, :] + HOP * np.arange(frames)[:, None]
    return np.fft.rfft(padded[idx] * window, axis=1), n


def _istft(spec: np.ndarray, n: int) -> np.ndarray:
    window = np.sqrt(np.hanning(N_FFT + 1)[:-1])
    frames = spec.shape[0]
    out = np.zeros((frames - 1) * HOP + N_FFT)
    chunks = np.fft.irfft(spec, N_FFT, axis=1) * window
    for i in range(frames):
        out[i * HOP : i * HOP + N_FFT] += chunks[i]
    return out[HOP : HOP + n]


def _ramp(freqs: np.ndarray, edge: float) -> np.ndarray:
    """1 below ``edge``, 0 above, with a linear crossover an octave wide (no ringing)."""
    return np.clip((2 * edge - freqs) / edge, 0.0, 1.0)


def _median(a: np.ndarray, axis: int) -> np.ndarray:
    """``a`` median-filtered over ``MEDIAN`` values along ``axis``, edges repeated (scipy's
    ``median_filter`` in mode ``nearest``, without scipy: a runtime install lacks it)."""
    pad = [(0, 0), (0, 0)]
    pad[axis] = (MEDIAN // 2, MEDIAN // 2)
    windows = np.lib.stride_tricks.sliding_window_view(np.pad(a, pad, mode="edge"), MEDIAN, axis)
    out = np.empty_like(a)
    rows = max(1, (1 << 21) // (a.shape[1] * MEDIAN))  # about 16 MB of windows at a time
    for i in range(0, a.shape[0], rows):
        out[i : i + rows] = np.median(windows[i : i + rows], axis=-1)
    return out


def band_split(samples: np.ndarray, rate: int, stems: tuple[str, ...]) -> dict[str, np.ndarray]:
    """``samples`` (frames, channels) split into ``stems`` (demucs' names).

    bass: below 200 Hz; drums: the percussive part above it (median filtering across time
    and frequency, soft masks); piano and guitar (6-stem models): the harmonic part below
    and above 2 kHz; vocals: silence (an emulator cannot find a voice); other: the rest,
    so that the stems sum to ``samples``.
    """
    x = np.asarray(samples, dtype=np.float64)
    out = {name: np.zeros_like(x) for name in stems}
    freqs = np.fft.rfftfreq(N_FFT, 1.0 / rate)
    low = _ramp(freqs, LOW_HZ)[None, :]
    mid = _ramp(freqs, HIGH_HZ)[None, :]
    for ch in range(x.shape[1]):
        spec, n = _stft(x[:, ch])
        mag = np.abs(spec)
        harmonic = _median(mag, axis=0)
        percussive = _median(mag, axis=1)
        p_mask = percussive**2 / (harmonic**2 + percussive**2 + 1e-12)
        parts = {
            "bass": low,
            "drums": (1 - low) * p_mask,
        }
        if "piano" in stems and "guitar" in stems:
            parts["piano"] = (1 - low) * (1 - p_mask) * mid
            parts["guitar"] = (1 - low) * (1 - p_mask) * (1 - mid)
        for name, mask in parts.items():
            if name in out:
                out[name][:, ch] = _istft(spec * mask, n)
    taken = np.sum([v for k, v in out.items() if k != "other"], axis=0) if len(out) > 1 else 0.0
    out["other"] = x - taken
    return {k: v.astype(np.float32) for k, v in out.items()}


def fit(
    mix: np.ndarray, stems: dict[str, np.ndarray], names: tuple[str, ...]
) -> dict[str, np.ndarray]:
    """``stems`` (any length) as ``names``, each shaped like ``mix``, the residual in other."""
    frames, channels = mix.shape
    out = {}
    for name in names:
        y = np.zeros((frames, channels), dtype=np.float64)
        x = stems.get(name)
        if x is not None:
            k = min(frames, len(x))
            y[:k] = x[:k, :channels] if x.shape[1] >= channels else x[:k, :1]
        out[name] = y
    rest = mix.astype(np.float64) - np.sum([v for k, v in out.items() if k != "other"], axis=0)
    out["other"] = rest
    return {k: v.astype(np.float32) for k, v in out.items()}
