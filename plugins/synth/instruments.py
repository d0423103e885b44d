"""Voices: each turns one note into a short mono (or stereo) numpy buffer.

Speed matters (a 60 s track renders in well under a second), so every voice is vectorised:
- wavetable oscillators read band-limited single-cycle tables (built per pitch with ``irfft``)
  through a 32-bit fixed-point phase accumulator, which wraps for free;
- vibrato is phase modulation from a cached LFO, so no per-sample loop and no ``cumsum``;
- plucked strings are Karplus-Strong computed through the loop's transfer function
  ``1 / (1 - g·L(w)·e^{-iwD})`` on an FFT grid (exact fractional delay ``D = sr/f0``; the
  exponential-window trick keeps the circular convolution from wrapping the ring-out);
- bells, electric piano and mallets are two-operator FM.
Notes are cached by (voice, pitch, length, brightness) inside one render, so repeated notes
(arpeggios, bass lines, drum hits) cost one addition each.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

TABLE_BITS = 13
TABLE_SIZE = 1 << TABLE_BITS
_SHIFT = np.uint32(32 - TABLE_BITS)


def midi_hz(p: float) -> float:
    return 440.0 * 2.0 ** ((p - 69.0) / 12.0)


@dataclass(frozen=True)
class Voice:
    """A voice's musical facts; the renderer is looked up by ``kind``."""

    name: str
    kind: str
    roles: tuple[str, ...]
    low: int  # comfortable MIDI range for melodies
    high: int
    gain: float = 1.0
    send: float = 0.3  # reverb send at space 0.5
    release: float = 0.08  # seconds
    legato: bool = False  # sustained notes join (strings, pads)


VOICES: dict[str, Voice] = {
    v.name: v
    for v in [
        Voice("harp", "pluck", ("arp", "melody"), 55, 88, 0.9, 0.35),
        Voice("guitar", "pluck", ("arp", "melody"), 48, 81, 0.85, 0.25),
        Voice("koto", "pluck", ("arp", "melody"), 55, 84, 0.85, 0.3),
        Voice("pizz", "pluck", ("arp", "melody"), 55, 81, 0.8, 0.3),
        Voice("pluckbass", "pluck", ("bass",), 36, 52, 1.0, 0.1),
        Voice("piano", "piano", ("arp", "harmony", "melody"), 55, 86, 0.75, 0.3),
        Voice("epiano", "epiano", ("harmony", "melody", "arp"), 52, 81, 0.7, 0.25),
        Voice("organ", "organ", ("harmony",), 48, 79, 0.35, 0.3, 0.06, True),
        Voice("bells", "bells", ("melody", "counter", "arp"), 72, 96, 0.45, 0.45),
        Voice("musicbox", "musicbox", ("melody", "arp", "counter"), 72, 98, 0.45, 0.4),
        Voice("marimba", "marimba", ("arp", "melody", "counter"), 57, 88, 0.8, 0.25),
        Voice("pad", "pad", ("harmony",), 48, 76, 0.4, 0.5, 0.6, True),
        Voice("choir", "choir", ("harmony", "counter"), 52, 76, 0.42, 0.55, 0.5, True),
        Voice("drone", "drone", ("harmony",), 36, 60, 0.45, 0.5, 0.8, True),
        Voice(
            "strings",
            "strings",
            ("harmony", "melody", "counter", "arp"),
            55,
            86,
            0.5,
            0.4,
            0.25,
            True,
        ),
        Voice("cello", "cello", ("bass", "arp", "harmony"), 36, 64, 0.6, 0.3, 0.15, True),
        Voice("brass", "brass", ("melody", "harmony", "counter"), 55, 79, 0.5, 0.35, 0.12),
        Voice("flute", "flute", ("melody", "counter"), 67, 93, 0.5, 0.4, 0.1),
        Voice("piccolo", "flute", ("melody", "counter"), 79, 100, 0.4, 0.35, 0.08),
        Voice("clarinet", "reed", ("melody", "counter"), 55, 84, 0.5, 0.35, 0.1),
        Voice("oboe", "reed", ("melody", "counter"), 60, 88, 0.45, 0.35, 0.08),
        Voice("dulcimer", "pluck", ("arp", "melody"), 55, 88, 0.8, 0.3),
        Voice("bouzouki", "pluck", ("arp", "melody"), 52, 84, 0.8, 0.25),
        # A mandolin: steel strings in pairs, small and high (a violin's tuning), picked
        # bright; its long notes are tremolo (``composer.tremolo``).
        Voice("mandolin", "pluck", ("arp", "melody"), 62, 91, 0.8, 0.25),
        # More of what a game developer names: each its own General MIDI preset (see
        # ``sampled.GM_PROGRAMS``), with the nearest numpy kind as its fallback.
        Voice("banjo", "pluck", ("arp", "melody"), 55, 84, 0.8, 0.2),
        Voice("sitar", "pluck", ("melody", "arp"), 52, 84, 0.8, 0.3),
        Voice("shamisen", "pluck", ("melody", "arp"), 55, 84, 0.8, 0.25),
        Voice("harpsichord", "pluck", ("arp", "melody"), 53, 86, 1.0, 0.3),
        Voice("accordion", "reed", ("harmony", "melody", "counter"), 53, 84, 0.42, 0.3, 0.08, True),
        Voice("harmonica", "reed", ("melody", "counter"), 60, 88, 0.45, 0.3, 0.08),
        Voice("bagpipe", "reed", ("melody", "counter"), 67, 81, 0.4, 0.35, 0.08),
        Voice("sax", "reed", ("melody", "counter"), 52, 80, 0.5, 0.3, 0.1),
        Voice("bassoon", "reed", ("counter", "melody", "bass"), 48, 67, 0.55, 0.3, 0.1),
        Voice("shakuhachi", "flute", ("melody", "counter"), 62, 88, 0.5, 0.45, 0.12),
        Voice("panflute", "flute", ("melody", "counter"), 67, 93, 0.5, 0.4, 0.1),
        Voice("recorder", "flute", ("melody", "counter"), 67, 93, 0.5, 0.35, 0.08),
        Voice("ocarina", "flute", ("melody", "counter"), 67, 91, 0.5, 0.4, 0.1),
        Voice("celesta", "bells", ("melody", "counter", "arp"), 72, 96, 0.45, 0.4),
        Voice("vibraphone", "marimba", ("arp", "melody", "counter"), 53, 89, 0.75, 0.35),
        Voice("xylophone", "marimba", ("arp", "melody", "counter"), 65, 96, 0.7, 0.25),
        Voice("kalimba", "marimba", ("arp", "melody", "counter"), 60, 88, 0.75, 0.3),
        Voice("steeldrum", "marimba", ("melody", "arp", "counter"), 60, 88, 0.7, 0.3),
        Voice(
            "viola",
            "strings",
            ("harmony", "counter", "melody", "arp"),
            48,
            79,
            0.5,
            0.4,
            0.25,
            True,
        ),
        Voice("folkfiddle", "strings", ("melody", "counter"), 55, 88, 0.5, 0.35, 0.15, True),
        # One violinist (General MIDI's violin): "a lone violin", "violin and harp"; the
        # section ("violins", "strings", "fiddle") is the strings'.
        Voice("violin", "strings", ("melody", "counter"), 62, 93, 0.5, 0.35, 0.15, True),
        Voice("contrabass", "cello", ("bass",), 28, 50, 0.6, 0.3, 0.15, True),
        Voice("trumpet", "brass", ("melody", "counter"), 58, 82, 0.5, 0.35, 0.12),
        Voice("horn", "brass", ("counter", "melody", "harmony"), 53, 77, 0.5, 0.4, 0.15),
        Voice("trombone", "brass", ("counter", "melody", "harmony"), 48, 72, 0.5, 0.35, 0.12),
        Voice("tuba", "brass", ("bass",), 28, 53, 0.6, 0.2, 0.12),
        Voice("theremin", "lead", ("melody", "counter"), 60, 88, 0.3, 0.45, 0.12),
        Voice("lead", "lead", ("melody", "counter"), 62, 86, 0.35, 0.3, 0.08),
        Voice("arp", "synthpluck", ("arp",), 55, 84, 0.5, 0.3),
        Voice("chip", "chip", ("melody", "arp", "counter"), 60, 88, 0.28, 0.15, 0.02),
        Voice("chipbass", "chipbass", ("bass",), 36, 55, 0.6, 0.08, 0.02),
        Voice("bass", "bass", ("bass",), 36, 52, 0.9, 0.05, 0.08),
        Voice("synthbass", "synthbass", ("bass",), 33, 50, 0.7, 0.05, 0.05),
    ]
}


class Tables:
    """Band-limited single-cycle wavetables, built on demand per (shape, pitch, brightness)."""

    def __init__(self, sr: int) -> None:
        self.sr = sr
        self._cache: dict[tuple[str, int, int], np.ndarray] = {}

    def get(self, shape: str, midi: float, bright: float) -> np.ndarray:
        m = round(midi)
        b = round(max(0.0, min(1.0, bright)) * 10)
        key = (shape, m, b)
        table = self._cache.get(key)
        if table is None:
            table = self._build(shape, midi_hz(m), b / 10)
            self._cache[key] = table
        return table

    def _build(self, shape: str, f0: float, bright: float) -> np.ndarray:
        nyq = self.sr / 2 * 0.92
        count = max(1, min(TABLE_SIZE // 2 - 1, int(nyq / f0)))
        h = np.arange(1, count + 1, dtype=np.float64)
        fh = h * f0
        if shape == "saw":
            amp = 1.0 / h
        elif shape == "square":
            amp = np.where(h % 2 == 1, 1.0 / h, 0.0)
        elif shape == "pulse":
            amp = np.abs(np.sin(np.pi * h * 0.25)) / h
        elif shape == "triangle":
            amp = np.where(h % 2 == 1, 1.0 / h**2, 0.0)
        elif shape == "sine":
            amp = np.where(h == 1, 1.0, 0.0)
        elif shape == "soft":  # bass: fundamental and a few harmonics
            amp = np.exp(-(h - 1) * 1.1)
        elif shape == "flute":
            amp = np.array([1.0, 0.3, 0.12, 0.05] + [0.0] * max(0, count - 4))[:count]
        elif shape == "organ":
            amp = np.zeros(count)
            for harm, a in ((1, 1.0), (2, 0.6), (3, 0.35), (4, 0.3), (6, 0.12), (8, 0.15)):
                if harm <= count:
                    amp[harm - 1] = a
        elif shape == "choir":  # a sung "ah": harmonics shaped by three formants
            formants = ((700, 110, 1.0), (1150, 140, 0.55), (2700, 250, 0.25))
            env = sum(a * np.exp(-0.5 * ((fh - fc) / bw) ** 2) for fc, bw, a in formants)
            amp = (0.15 + env) / h**0.6
        elif shape == "brass":
            amp = 1.0 / h**0.9
        else:
            raise ValueError(f"unknown wavetable shape {shape!r}")
        cutoff = 250.0 * 2.0 ** (bright * 6.3)  # 250 Hz .. 20 kHz
        amp = amp / (1.0 + (fh / cutoff) ** 2)
        spectrum = np.zeros(TABLE_SIZE // 2 + 1, dtype=np.complex128)
        spectrum[1 : count + 1] = -1j * amp
        table = np.fft.irfft(spectrum, TABLE_SIZE)
        peak = np.max(np.abs(table))
        return (table / peak).astype(np.float32) if peak > 0 else table.astype(np.float32)


class Workspace:
    """Per-render scratch: sample rate, tables, cached ramps and LFOs, and the note cache."""

    def __init__(self, sr: int) -> None:
        self.sr = sr
        self.tables = Tables(sr)
        self.notes: dict[tuple, np.ndarray] = {}
        self._index = np.arange(sr * 4, dtype=np.uint32)
        self._lfo: dict[tuple[float, int], np.ndarray] = {}

    def index(self, n: int) -> np.ndarray:
        if n > len(self._index):
            self._index = np.arange(max(n, 2 * len(self._index)), dtype=np.uint32)
        return self._index[:n]

    def lfo(self, rate: float, n: int, delay: float = 0.25) -> np.ndarray:
        """A sine LFO that fades in after ``delay`` seconds (vibrato), cached by rate."""
        key = (rate, n)
        out = self._lfo.get(key)
        if out is None:
            t = np.arange(n, dtype=np.float32) / np.float32(self.sr)
            fade = np.clip((t - delay) / 0.4, 0.0, 1.0)
            out = (np.sin(np.float32(2 * np.pi * rate) * t) * fade).astype(np.float32)
            self._lfo[key] = out
        return out

    def osc(
        self,
        table: np.ndarray,
        freq: float,
        n: int,
        phase: float = 0.0,
        vibrato: np.ndarray | None = None,
        depth_cents: float = 0.0,
        vib_rate: float = 5.0,
    ) -> np.ndarray:
        """Read ``table`` at ``freq`` for ``n`` samples; optional vibrato (phase modulation)."""
        inc = np.uint32(round(freq / self.sr * 2.0**32) & 0xFFFFFFFF)
        ph = self.index(n) * inc
        ph += np.uint32(int(phase * 2.0**32) & 0xFFFFFFFF)
        if vibrato is not None and depth_cents > 0:
            # FM of depth d cents at rate r is PM of (f * (2^(d/1200)-1) / r) cycles.
            cycles = freq * (2.0 ** (depth_cents / 1200.0) - 1.0) / vib_rate
            pm = vibrato[:n].astype(np.float64) * (cycles * 2.0**32)
            ph += pm.astype(np.int64).astype(np.uint32)
        return table[ph >> _SHIFT]


def adsr(
    n: int, sr: int, attack: float, decay: float, sustain: float, hold_n: int, release: float
) -> np.ndarray:
    """Linear-segment envelope: attack, decay to sustain, hold until ``hold_n``, release."""
    a = max(2, int(attack * sr))
    d = max(1, int(decay * sr))
    r = max(2, int(release * sr))
    hold_n = max(hold_n, a + 1)
    xs = [0, a, a + d, hold_n, hold_n + r]
    level_at_hold = sustain if hold_n >= a + d else 1.0 + (sustain - 1.0) * (hold_n - a) / d
    ys = [0.0, 1.0, sustain, level_at_hold, 0.0]
    xs_arr = np.array(xs, dtype=np.float64)
    xs_arr = np.maximum.accumulate(xs_arr)
    return np.interp(np.arange(n, dtype=np.float32), xs_arr, ys).astype(np.float32)


def _fade_out(x: np.ndarray, sr: int, seconds: float) -> np.ndarray:
    r = min(len(x), max(2, int(seconds * sr)))
    x[-r:] *= np.linspace(1.0, 0.0, r, dtype=np.float32)
    return x


def _phase(seed: int) -> float:
    """A start phase (cycles) per note take: notes that start together on one pitch class
    (bass, chord and tune on a downbeat) must not all start at phase 0 and add up in phase."""
    return ((seed * 0x9E3779B1) & 0xFFFF) / 65536.0


def _noise(ws: Workspace, n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(n).astype(np.float32)


# --- plucked strings: Karplus-Strong through its transfer function -------------------------------
# Pick positions of 1/5 or 2/5 of the string silence the 5th, 10th, 15th... partials: the
# 5th is a major third (two octaves up) that would blur the mode of a minor key.
PLUCK = {  # t60 at middle C (s), pick position, loss-filter strength, body brightness
    "harp": (2.6, 0.4, 0.7, 0.45),
    "guitar": (1.9, 0.2, 0.5, 0.6),
    "koto": (1.6, 0.2, 0.45, 0.75),
    "pizz": (0.45, 0.2, 0.6, 0.45),
    "pluckbass": (1.4, 0.2, 0.6, 0.35),
    "dulcimer": (2.2, 0.2, 0.35, 0.85),
    "bouzouki": (1.5, 0.2, 0.45, 0.8),
    "mandolin": (0.8, 0.15, 0.45, 0.95),
    "banjo": (0.9, 0.12, 0.5, 0.95),
    "sitar": (2.0, 0.12, 0.3, 0.95),
    "shamisen": (0.8, 0.12, 0.5, 0.85),
    "harpsichord": (1.2, 0.1, 0.4, 0.95),
}


def karplus_strong(
    freq: float, n: int, sr: int, t60: float, pick: float, loss: float, bright: float, seed: int
) -> np.ndarray:
    """The Karplus-Strong string of ``freq`` for ``n`` samples, computed in the frequency domain.

    y[n] = x[n] + g·(c1·y[n-D+1] + c0·y[n-D] + c1·y[n-D-1]) with D = sr/freq (exactly, by an
    ideal fractional delay). Evaluated as Y = X / (1 - g·L(w)·e^{-iwD}) on the damped grid
    z = e^{iw}/rho (y' = y·rho^n), so the ring-out past the FFT length cannot wrap around.
    """
    period = sr / freq
    m = 1 << math.ceil(math.log2(n + period + 16))
    rho = 1e-5 ** (1.0 / m)
    # Loop gain per period for the wanted T60 at the fundamental; higher notes ring shorter.
    t60_f = t60 * (261.6 / freq) ** 0.35
    g = 10.0 ** (-3.0 * period / (sr * t60_f))
    w = np.linspace(0.0, np.pi, m // 2 + 1)
    c1 = 0.25 * loss
    lossf = (1.0 - 2.0 * c1) + 2.0 * c1 * np.cos(w)
    # Excitation: one period of noise, shaped by pick position and brightness.
    p = max(2, round(period))
    rng = np.random.default_rng(seed)
    burst = rng.uniform(-1.0, 1.0, p)
    burst -= burst.mean()
    xk = np.fft.rfft(burst * np.exp(np.arange(p) * math.log(rho)), m)
    cutoff = 300.0 * 2.0 ** (bright * 5.5)
    freqs = w * sr / (2 * np.pi)
    shape = (1.0 - np.exp(-1j * w * pick * period)) / (1.0 + (freqs / cutoff) ** 2)
    denom = 1.0 - g * (rho**period) * lossf * np.exp(-1j * w * period)
    y = np.fft.irfft(xk * shape / denom, m)[:n]
    y *= np.exp(np.arange(n, dtype=np.float64) * -math.log(rho))
    peak = np.max(np.abs(y[: min(n, int(0.05 * sr)) + 1]))
    out = (y / (peak if peak > 0 else 1.0)).astype(np.float32)
    a = min(n, int(0.002 * sr))
    out[:a] *= np.linspace(0.0, 1.0, a, dtype=np.float32)
    return out


def _pluck(
    ws: Workspace, v: Voice, pitch: float, dur: float, bright: float, seed: int
) -> np.ndarray:
    sr = ws.sr
    t60, pick, loss, body = PLUCK[v.name]
    rings = {"harp": 1.3, "koto": 0.8, "dulcimer": 1.2, "pizz": 0.25, "pluckbass": 0.25}
    ring = rings.get(v.name, 1.0)
    n = int((min(dur, 1.6) + ring) * sr)
    if v.name == "pizz":
        n = int(min(dur + ring, 0.5) * sr)
    # One ring-out per string (pitch, brightness, take), long enough for any note: a note is
    # a slice of it with its own release.
    key = ("ks", v.name, round(pitch * 100), round(bright * 10), seed % 2)
    full = ws.notes.get(key)
    if full is None or len(full) < n:
        length = max(n, int((1.6 + ring) * sr) if v.name != "pizz" else n)
        full = karplus_strong(
            midi_hz(pitch), length, sr, t60, pick, loss, 0.3 * body + 0.7 * bright, seed % 2
        )
        ws.notes[key] = full
    return _fade_out(full[:n].copy(), sr, 0.12)


# --- wavetable voices -----------------------------------------------------------------------------
def _pad(ws: Workspace, v: Voice, pitch: float, dur: float, bright: float, seed: int) -> np.ndarray:
    sr = ws.sr
    f = midi_hz(pitch)
    n = int((dur + v.release) * sr)
    shape = {"pad": "saw", "choir": "choir", "drone": "saw"}[v.kind]
    b = bright * (0.55 if v.kind == "pad" else 0.45 if v.kind == "drone" else 0.7)
    table = ws.tables.get(shape, pitch, b)
    rng = np.random.default_rng(seed)
    detune = 2.0 ** (np.array([-7.0, 7.0]) / 1200.0)
    vib = ws.lfo(4.6 if v.kind == "choir" else 0.3, n, 0.3)
    depth = 14.0 if v.kind == "choir" else 5.0
    left = ws.osc(table, f * detune[0], n, rng.random(), vib, depth, 4.6)
    right = ws.osc(table, f * detune[1], n, rng.random(), vib, depth * 0.8, 4.6)
    attack = {"pad": 0.35, "choir": 0.25, "drone": 0.8}[v.kind]
    env = adsr(n, sr, min(attack, dur * 0.5), 0.3, 0.85, int(dur * sr), v.release)
    return np.stack([left * env, right * env])


def _strings(
    ws: Workspace, v: Voice, pitch: float, dur: float, bright: float, seed: int
) -> np.ndarray:
    sr = ws.sr
    f = midi_hz(pitch)
    short = dur < 0.3
    rel = 0.08 if short else v.release
    n = int((dur + rel) * sr)
    table = ws.tables.get(
        "saw", pitch, 0.15 + 0.8 * bright if v.kind == "strings" else 0.1 + 0.25 * bright
    )
    rng = np.random.default_rng(seed)
    vib = ws.lfo(5.2, n, 0.2)
    depth = 0.0 if short else 12.0
    a = ws.osc(table, f * 2 ** (-5 / 1200), n, rng.random(), vib, depth, 5.2)
    b = ws.osc(table, f * 2 ** (6 / 1200), n, rng.random(), vib, depth * 0.7, 5.2)
    attack = 0.006 if short else min(0.12, dur * 0.3)
    env = adsr(n, sr, attack, 0.08 if short else 0.2, 0.6 if short else 0.9, int(dur * sr), rel)
    return np.stack([a * env, b * env])


def _brass(
    ws: Workspace, v: Voice, pitch: float, dur: float, bright: float, seed: int
) -> np.ndarray:
    sr = ws.sr
    f = midi_hz(pitch)
    n = int((dur + v.release) * sr)
    rng = np.random.default_rng(seed)
    dark = ws.tables.get("brass", pitch, 0.25 * bright)
    lit = ws.tables.get("brass", pitch, 0.35 + 0.6 * bright)
    vib = ws.lfo(5.0, n, 0.35)
    ph = rng.random()
    d1 = ws.osc(dark, f, n, ph, vib, 8.0)
    l1 = ws.osc(lit, f, n, ph, vib, 8.0)
    d2 = ws.osc(dark, f * 2 ** (7 / 1200), n, ph + 0.3, vib, 6.0)
    l2 = ws.osc(lit, f * 2 ** (7 / 1200), n, ph + 0.3, vib, 6.0)
    # "Bwah": brightness swells with the attack and settles.
    t = np.arange(n, dtype=np.float32) / np.float32(sr)
    opening = np.clip(t / 0.06, 0.0, 1.0) * (0.65 + 0.35 * np.exp(-t / 0.25))
    env = adsr(n, sr, 0.03, 0.15, 0.8, int(dur * sr), v.release)
    a = (d1 + (l1 - d1) * opening) * env
    b = (d2 + (l2 - d2) * opening) * env
    return np.stack([a, b])


def _flute(
    ws: Workspace, v: Voice, pitch: float, dur: float, bright: float, seed: int
) -> np.ndarray:
    sr = ws.sr
    f = midi_hz(pitch)
    n = int((dur + v.release) * sr)
    table = ws.tables.get("flute", pitch, 0.5 + 0.5 * bright)
    vib = ws.lfo(5.0, n, 0.2)
    x = ws.osc(table, f, n, _phase(seed), vib, 14.0)
    breath = _noise(ws, n, seed)
    # Breath noise: a rough high-pass (first difference), loudest at the attack.
    breath[1:] -= breath[:-1] * 0.6
    t = np.arange(n, dtype=np.float32) / np.float32(sr)
    chiff = (0.05 + 0.25 * np.exp(-t / 0.05)) * np.float32(0.2 + bright)
    env = adsr(n, sr, 0.04, 0.1, 0.85, int(dur * sr), v.release)
    return (x + breath * chiff * 0.25) * env


def _reed(
    ws: Workspace, v: Voice, pitch: float, dur: float, bright: float, seed: int
) -> np.ndarray:
    """Clarinet (odd harmonics: a square's) and oboe (all harmonics, nasal: a brass table)."""
    sr = ws.sr
    f = midi_hz(pitch)
    n = int((dur + v.release) * sr)
    shape = "square" if v.name == "clarinet" else "brass"
    table = ws.tables.get(shape, pitch, 0.25 + 0.45 * bright)
    vib = ws.lfo(5.2, n, 0.3)
    x = ws.osc(table, f, n, _phase(seed), vib, 9.0)
    env = adsr(n, sr, 0.03, 0.12, 0.85, int(dur * sr), v.release)
    return x * env * 0.8


def _lead(
    ws: Workspace, v: Voice, pitch: float, dur: float, bright: float, seed: int
) -> np.ndarray:
    sr = ws.sr
    f = midi_hz(pitch)
    n = int((dur + v.release) * sr)
    vib = ws.lfo(5.5, n, 0.3)
    saw = ws.tables.get("saw", pitch, 0.3 + 0.5 * bright)
    sq = ws.tables.get("square", pitch, 0.3 + 0.5 * bright)
    ph = _phase(seed)
    x = ws.osc(saw, f * 2 ** (-4 / 1200), n, ph, vib, 10.0)
    x = x + 0.6 * ws.osc(sq, f * 2 ** (4 / 1200), n, ph + 0.5, vib, 10.0)
    env = adsr(n, sr, 0.01, 0.2, 0.75, int(dur * sr), v.release)
    return x * env * 0.6


def _chip(
    ws: Workspace, v: Voice, pitch: float, dur: float, bright: float, seed: int
) -> np.ndarray:
    sr = ws.sr
    n = int((dur * 0.9 + v.release) * sr)
    shape = "pulse" if v.kind == "chip" else "triangle"
    table = ws.tables.get(shape, pitch, 0.9)
    x = ws.osc(table, midi_hz(pitch), n, _phase(seed))
    env = adsr(n, sr, 0.003, 0.1, 0.7 if v.kind == "chip" else 1.0, int(dur * 0.9 * sr), v.release)
    return x * env


def _bass(
    ws: Workspace, v: Voice, pitch: float, dur: float, bright: float, seed: int
) -> np.ndarray:
    sr = ws.sr
    f = midi_hz(pitch)
    n = int((dur + v.release) * sr)
    if v.kind == "synthbass":
        dark = ws.tables.get("saw", pitch, 0.15)
        lit = ws.tables.get("saw", pitch, 0.3 + 0.45 * bright)
        ph = _phase(seed)
        a = ws.osc(dark, f, n, ph)
        b = ws.osc(lit, f, n, ph)
        t = np.arange(n, dtype=np.float32) / np.float32(sr)
        x = a + (b - a) * np.exp(-t / 0.09)
        env = adsr(n, sr, 0.004, 0.2, 0.75, int(dur * sr), v.release)
        return x * env
    table = ws.tables.get("soft", pitch, 0.3 + 0.3 * bright)
    x = ws.osc(table, f, n, _phase(seed))
    env = adsr(n, sr, 0.008, 0.3, 0.7, int(dur * sr), v.release)
    return x * env


def _synthpluck(
    ws: Workspace, v: Voice, pitch: float, dur: float, bright: float, seed: int
) -> np.ndarray:
    sr = ws.sr
    f = midi_hz(pitch)
    n = int((min(dur, 0.5) + 0.25) * sr)
    dark = ws.tables.get("saw", pitch, 0.2)
    lit = ws.tables.get("saw", pitch, 0.45 + 0.5 * bright)
    ph = _phase(seed)
    a = ws.osc(dark, f * 2 ** (-6 / 1200), n, ph)
    b = ws.osc(lit, f * 2 ** (6 / 1200), n, ph + 0.4)
    t = np.arange(n, dtype=np.float32) / np.float32(sr)
    x = a + (b - a) * np.exp(-t / 0.06)
    env = adsr(n, sr, 0.002, 0.05, 0.6, n - int(0.2 * sr), 0.2) * np.exp(-t / 0.4)
    return x * env


def _piano(
    ws: Workspace, v: Voice, pitch: float, dur: float, bright: float, seed: int
) -> np.ndarray:
    sr = ws.sr
    f = midi_hz(pitch)
    ring = max(0.4, min(dur + 0.3, 2.5))
    n = int(ring * sr)
    lit = ws.tables.get("saw", pitch, 0.35 + 0.5 * bright)
    dark = ws.tables.get("triangle", pitch, 0.6)
    t = np.arange(n, dtype=np.float32) / np.float32(sr)
    ph = _phase(seed)
    a = ws.osc(lit, f, n, ph)
    b = ws.osc(dark, f * 1.0008, n, ph + 0.25)
    decay = 0.9 * (261.6 / f) ** 0.5 + 0.3
    x = (a * np.exp(-t / 0.12) * 0.6 + b) * np.exp(-t / decay)
    hammer = _noise(ws, min(n, int(0.01 * sr)), seed) * 0.15
    x[: len(hammer)] += hammer * np.linspace(1, 0, len(hammer), dtype=np.float32)
    x[: int(0.002 * sr)] *= np.linspace(0, 1, int(0.002 * sr), dtype=np.float32)
    return _fade_out(x, sr, 0.15)


def _fm(ws: Workspace, v: Voice, pitch: float, dur: float, bright: float, seed: int) -> np.ndarray:
    sr = ws.sr
    f = midi_hz(pitch)
    # ratio, index at attack, index decay (s), amplitude decay (s), max ring (s)
    ratio, index, idecay, adecay, ring = {
        "bells": (3.5, 3.0, 0.8, 1.8, 3.0),
        "musicbox": (5.0, 2.0, 0.15, 0.7, 1.4),
        "marimba": (4.0, 2.5, 0.02, 0.25, 0.7),
        "epiano": (1.0, 1.6, 0.5, 1.2, 2.5),
    }[v.kind]
    if v.kind == "epiano":
        ring = max(0.3, min(dur + 0.25, ring))
    n = int(ring * sr)
    t = np.arange(n, dtype=np.float32) / np.float32(sr)
    idx = np.float32(index * (0.5 + bright)) * np.exp(-t / np.float32(idecay))
    two_pi = np.float32(2 * np.pi)
    mod = np.sin(two_pi * np.float32(f * ratio) * t)
    x = np.sin(two_pi * np.float32(f) * t + idx * mod + np.float32(two_pi * _phase(seed)))
    x *= np.exp(-t / np.float32(adecay * (261.6 / f) ** 0.3))
    a = max(2, int(0.002 * sr))
    x[:a] *= np.linspace(0, 1, a, dtype=np.float32)
    if v.kind == "epiano" and dur + 0.05 < ring:
        end = int((dur + 0.05) * sr)
        x[end:] *= np.exp(-(t[end:] - t[end]) / np.float32(0.05))
    return _fade_out(x, sr, 0.05)


def _organ(
    ws: Workspace, v: Voice, pitch: float, dur: float, bright: float, seed: int
) -> np.ndarray:
    sr = ws.sr
    f = midi_hz(pitch)
    n = int((dur + v.release) * sr)
    table = ws.tables.get("organ", pitch, 0.4 + 0.5 * bright)
    vib = ws.lfo(6.0, n, 0.0)
    ph = _phase(seed)
    a = ws.osc(table, f, n, ph, vib, 6.0)
    b = ws.osc(table, f * 1.001, n, ph + 0.3, vib, 6.0)
    env = adsr(n, sr, 0.02, 0.05, 1.0, int(dur * sr), v.release)
    return np.stack([a * env, b * env])


RENDERERS: dict[str, Callable[..., np.ndarray]] = {
    "pluck": _pluck,
    "pad": _pad,
    "choir": _pad,
    "drone": _pad,
    "strings": _strings,
    "cello": _strings,
    "brass": _brass,
    "flute": _flute,
    "reed": _reed,
    "lead": _lead,
    "chip": _chip,
    "chipbass": _chip,
    "bass": _bass,
    "synthbass": _bass,
    "synthpluck": _synthpluck,
    "piano": _piano,
    "bells": _fm,
    "musicbox": _fm,
    "marimba": _fm,
    "epiano": _fm,
    "organ": _organ,
}


def render_note(
    ws: Workspace, voice: str, pitch: float, dur: float, bright: float, seed: int, take: int = 0
) -> np.ndarray:
    """One note of ``voice`` (velocity 1), cached; 1-D mono or (2, n) stereo float32."""
    v = VOICES[voice]
    bq = round(bright * 10) / 10
    n_dur = round(dur * ws.sr)
    # Plucks, noises and start phases depend on the seed; keep a handful of takes per pitch.
    key = (voice, round(pitch * 100), n_dur, bq, seed % 3)
    out = ws.notes.get(key)
    if out is None:
        note_seed = seed % 3 + 17 * int(pitch) + 1031 * take
        out = RENDERERS[v.kind](ws, v, pitch, n_dur / ws.sr, bq, note_seed)
        ws.notes[key] = out
    return out
