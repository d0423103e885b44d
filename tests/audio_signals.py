"""Test signals for the audio tests, made with numpy: clicks, drum loops, tones, noise, pads."""

from __future__ import annotations

import numpy as np

SR = 44100


def _stereo(x: np.ndarray, spread: float = 0.0, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    right = x if spread == 0 else 0.9 * np.roll(x, 11) + spread * rng.standard_normal(x.size)
    return np.stack([x, right], axis=1).astype(np.float32)


def click_track(
    bpm: float, seconds: float = 10.0, sr: int = SR, offset: float = 0.0, accent: bool = True
) -> np.ndarray:
    """A 1.5 kHz blip on every beat from ``offset`` seconds, the downbeat louder."""
    n = int(seconds * sr)
    x = np.zeros(n)
    t = np.arange(int(0.03 * sr)) / sr
    click = np.sin(2 * np.pi * 1500 * t) * np.exp(-t * 200)
    k = 0
    while offset + k * 60 / bpm < seconds:
        s = round((offset + k * 60 / bpm) * sr)
        e = min(n, s + click.size)
        x[s:e] += click[: e - s] * (1.0 if (k % 4 == 0 or not accent) else 0.6)
        k += 1
    return _stereo(0.5 * x)


def drum_loop(
    bpm: float,
    seconds: float = 10.0,
    sr: int = SR,
    seed: int = 0,
    pattern: str = "rock",
    peak: float = 1.0,
) -> np.ndarray:
    """A seamless drum loop with bass: ``rock`` (kick 1+3, snare 2+4, eighth hats), ``four``
    (kick on every beat, off-beat open hats) or ``sixteen`` (rock with sixteenth hats),
    scaled to ``peak``. Whole bars loop without a seam (tails wrap round)."""
    rng = np.random.default_rng(seed)
    n = int(seconds * sr)
    x = np.zeros(n)
    t = np.arange(int(0.4 * sr)) / sr
    kick = np.sin(2 * np.pi * (50 + 100 * np.exp(-t * 30)) * t) * np.exp(-t * 8)
    snare = 0.7 * rng.standard_normal(t.size) * np.exp(-t * 18)
    snare += 0.3 * np.sin(2 * np.pi * 190 * t) * np.exp(-t * 20)
    hat = np.diff(rng.standard_normal(int(0.05 * sr)), prepend=0.0)
    hat *= 0.12 * np.exp(-np.arange(hat.size) / sr * 80)
    beat = 60.0 / bpm
    steps = {"rock": 2, "four": 2, "sixteen": 4}[pattern]

    def add(sig: np.ndarray, at: float) -> None:
        # Tails past the end wrap to the start: the loop plays seamlessly round.
        s = round(at * sr)
        if s < n:
            np.add.at(x, (s + np.arange(sig.size)) % n, sig)

    k = 0
    while k * beat / steps < seconds:
        at = k * beat / steps
        on_beat = k % steps == 0
        beat_no = k // steps
        if pattern == "four":
            if on_beat:
                add(kick, at)
            if on_beat and beat_no % 2 == 1:
                add(0.8 * snare, at)
            if not on_beat:
                add(1.5 * hat, at)
        else:
            if on_beat and beat_no % 2 == 0:
                add(kick, at)
            if on_beat and beat_no % 2 == 1:
                add(snare, at)
            add(hat, at)
        k += 1
    tt = np.arange(n) / sr
    x += 0.25 * np.sin(2 * np.pi * 55 * tt) * (0.6 + 0.4 * np.cos(2 * np.pi * tt / beat))
    st = _stereo(x, spread=0.005, seed=seed)
    return (st * (peak / np.abs(st).max())).astype(np.float32)


def tone(freq: float, seconds: float, sr: int = SR, amp: float = 0.3) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    return _stereo(amp * np.sin(2 * np.pi * freq * t))


def noise(seconds: float, sr: int = SR, amp: float = 0.1, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (amp * rng.standard_normal((int(seconds * sr), 2))).astype(np.float32)


def pad(seconds: float, sr: int = SR) -> np.ndarray:
    """A slowly swelling chord with no onsets: no beat to find."""
    t = np.arange(int(seconds * sr)) / sr
    x = sum(np.sin(2 * np.pi * f * t + i) for i, f in enumerate((220.0, 277.2, 329.6, 440.0)))
    swell = 0.6 + 0.4 * np.sin(2 * np.pi * t / seconds - np.pi / 2)
    return _stereo(0.08 * x * swell)
