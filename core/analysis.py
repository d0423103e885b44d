"""Rhythm analysis of recorded music: tempo, beats, downbeats and meter, each with a confidence.

numpy only (no librosa: it measured worse on the ground-truth corpus, see docs/audio.md,
and costs more CPU than pregeneration may spend). Used by the ``beat_grid`` and
``loop_points`` plugins and by the fal emulator's song-shaped answers.

1. **Spectra**: 2048-point frames every 10 ms of the mono mix, summed into log-spaced
   bands (30 Hz to 16 kHz) and log-compressed; a 12-bin chroma from the same spectra's
   peaks (notes are peaks; a drum's noise is not, and would blur the chord changes).
2. **Onset strength**: the rise of each band's level (half-wave rectified), summed; and
   the same over the bass bands alone (kick drums and bass notes mark beats and bars).
3. **Tempo**: every period from 40 to 240 BPM scored by a comb over the onset
   strength's autocorrelation (the period and its multiples) times its spectrum at the
   beat rate and its harmonics (the period and its fractions): the first favours slower
   levels, the second faster ones, their product the beat. A log-normal preference
   around 118 BPM (half an octave wide) picks among metrical levels the combs score
   alike (a near tie: at 120 two Planet Blupi excerpts read double and one 4/3 of their
   tempo, at 115 the synth's drum loops at 180 BPM read half). The confidence is how
   far the winner stands above the best other level.
4. **Beats**: the period and phase that maximise the onset strength's Fourier magnitude
   at the beat rate and its harmonics (sub-frame precision), the phase taken from the
   bass and full onsets together, so beats fall on kicks and bass notes rather than the
   off-beats between them.
5. **Meter and downbeats**: the chord change (chroma half a bar either side) at each
   beat folded at 2, 3 and 4 beats: the meter whose fold has the most contrast (or
   three when the chord changes repeat every three beats), and the bar phase where the
   chords change most. Compound meters: beats whose onsets, register by register,
   repeat three times a beat more than two or four times (a jig's eighths, triplets, a
   shuffle; not a dotted rhythm) are dotted quarters, read as 6/8 (bars of two such
   beats, slower than 118 BPM) or 12/8 (four, faster), the downbeat from the chord
   changes and the accents (onsets and bass) together. A fast bar of three whose beats
   group in threes is a 6/8 read at the eighth level, and is regrouped.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

FRAME = 2048
FRAME_RATE = 100.0  # analysis frames per second
MIN_BPM = 40.0
MAX_BPM = 240.0
PREFERRED_BPM = 118.0
PREFERENCE_OCTAVES = 0.5
HARMONICS = 4
BASS_HZ = 200.0
BEAT_CHANGE_WIDTH = 0.5
METER_MARGIN = 1.1
PHASE_BASS = 1.0
# Beats are compound (6/8) when the onsets a third into them outweigh those at a half or
# a quarter by this much.
COMPOUND = 1.5
MIN_SUBDIVISION = 0.05
# Below this autocorrelation of the onset strength one to four beats apart, there is no
# steady beat (a drone: 0.0002; whole songs with a beat: 0.08 and up, 30 s excerpts 0.64).
MIN_PERIODICITY = 0.05
GATE = 0.1
# Music's onsets stand out of their mean (99th percentile 11 to 25 times it, measured on
# the corpus); a pad's ripples do not (about 4).
MIN_PEAKINESS = 6.0
EVEN_EIGHTHS = 0.5
SUBDIVISION_RATIO = 0.3
EARLY_S = 0.03
# Registers whose onsets are measured apart for the beat's subdivision: band groups split
# at these frequencies (bass, low and high middle, presence, cymbals), and the new notes.
REGISTER_HZ = (200.0, 800.0, 2500.0, 6000.0)
NOTE_HZ = (100.0, 5000.0)
# Beats are compound when the registers' onsets repeat three times a beat more than two or
# four times (summed log ratio, see _triple_evidence): 6/8 pieces 0.6 to 5.9, 3/4 and
# 4/4 pieces and Planet Blupi -1.5 and under (a 4/4 piece read at double tempo: 0.14).
TRIPLE_EVIDENCE = 0.5
# ... unless an onset at a quarter, a half or three quarters of the beat is this many times
# the larger of those at its thirds (a dotted rhythm's, whose pulses repeat at three times
# the beat rate too).
SIMPLE_PULSE = 2.0
# Chords whose changes repeat every three and six beats this much more than every four and
# eight make a bar of three (3/4 pieces 0.25 to 1.24, 4/4 pieces -0.29 and under, Planet
# Blupi 0.16 and under; the middles of hr3-crossroads 0.46 and 0.57, read 4/4 by the fold).
HARMONY_IN_THREES = 0.3
# A compound beat this fast or faster counts in bars of four (12/8, a 4/4 of triplets:
# Planet Blupi's music007 at 140), slower in bars of two (6/8: dotted quarters at 60-100).
COMPOUND_BAR_BPM = 118.0
# A bar of three beats this fast is three eighths of a compound beat (6/8 at 60 read as a
# waltz at 180); the meter pieces' waltzes reach 150.
FAST_TRIPLE_BPM = 160.0


@dataclass(frozen=True)
class Features:
    """Per-frame features of a mix, at ``rate`` frames per second."""

    rate: float
    onset: np.ndarray  # (frames,) onset strength, all bands
    bass: np.ndarray  # (frames,) onset strength below BASS_HZ
    level_db: np.ndarray  # (frames,) frame level, dB
    chroma: np.ndarray  # (frames, 12), each frame summing to 1 (or 0 in silence)
    bands: np.ndarray  # (frames, bands) log band levels (timbre)
    registers: np.ndarray  # (frames, 6) onset strength per register and of new notes


@dataclass(frozen=True)
class Rhythm:
    """What the analysis found; times in seconds from the start of the samples analysed."""

    bpm: float
    tempo_confidence: float  # 0..1: how clearly this metrical level beats the others
    beats: np.ndarray
    beat_confidence: float  # 0..1: share of the onset strength in phase with the beats
    beats_per_bar: int
    beat_unit: int  # 4 (simple meters) or 8 (6/8: a beat of three eighths)
    meter_confidence: float
    downbeats: np.ndarray
    downbeat_confidence: float
    periodicity: float  # the onset strength's autocorrelation at 1-4 beats (the largest)
    alternatives: dict[str, float] = field(default_factory=dict)

    @property
    def meter(self) -> str:
        return f"{3 * self.beats_per_bar}/8" if self.beat_unit == 8 else f"{self.beats_per_bar}/4"

    @property
    def first_beat_s(self) -> float:
        return float(self.beats[0]) if self.beats.size else 0.0

    @property
    def first_downbeat_s(self) -> float:
        return float(self.downbeats[0]) if self.downbeats.size else self.first_beat_s

    @property
    def bar_s(self) -> float:
        return self.beats_per_bar * 60.0 / self.bpm


# The last analysis, so the plugins that run one after another on the same samples
# (beat_grid, then loop_points) analyse them once; kept until its second use (its
# features weigh about as much as the samples: the finishing chain's later steps need the room).
_last: tuple[tuple[object, ...], Features, Rhythm | None] | None = None


def _fingerprint(samples: np.ndarray, sr: int) -> tuple[object, ...]:
    x = np.asarray(samples)
    probe = x.reshape(-1)[:: max(1, x.size // 4096)]
    return (x.__array_interface__["data"][0], x.shape, x.strides, sr, probe.tobytes())


def forget() -> None:
    """Drop the memo of the last analysis (the chain's last user of it calls this: its
    features weigh about as much as the samples, which the later steps need the room for)."""
    global _last
    _last = None


def analyse_cached(samples: np.ndarray, sr: int) -> tuple[Features, Rhythm | None]:
    """``features`` and ``analyse`` of ``samples``, reusing the previous call's result
    when the samples are the same (same buffer, shape and content probe)."""
    global _last
    key = _fingerprint(samples, sr)
    if _last is not None and _last[0] == key:
        _, feats, rhythm = _last
        _last = None
        return feats, rhythm
    feats = features(samples, sr)
    rhythm = analyse(samples, sr, feats)
    _last = (key, feats, rhythm)
    return feats, rhythm


def _mono(samples: np.ndarray) -> np.ndarray:
    x = np.asarray(samples, dtype=np.float32)
    if x.ndim != 2:
        return x
    if x.shape[1] == 2:
        # Column by column: numpy reduces a 2-wide axis (mean(axis=1)) six times slower,
        # to the same float32 values.
        return (x[:, 0] + x[:, 1]) / np.float32(2)
    return x.mean(axis=1)


# Frames transformed at once: their windowed copies and spectra stay in the CPU's cache
# (the whole song's frames at once, 50 MB a minute, run three times slower).
_CHUNK = 64


def _power_spectra(padded: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """``|rfft(window * padded[s : s + FRAME])|^2`` for each start ``s``: float32 (frames, bins)."""
    window = np.hanning(FRAME).astype(np.float32)
    frames = np.lib.stride_tricks.sliding_window_view(padded, FRAME)  # a view: no copy
    power = np.empty((starts.size, FRAME // 2 + 1), np.float32)
    for i in range(0, starts.size, _CHUNK):
        spectra = np.fft.rfft(frames[starts[i : i + _CHUNK]] * window, axis=1)
        out = power[i : i + _CHUNK]
        np.multiply(spectra.real, spectra.real, out=out)
        out += spectra.imag * spectra.imag
    return power


def _band_edges(sr: int) -> np.ndarray:
    return np.geomspace(30.0, min(16000.0, sr / 2 * 0.95), 37)


def features(samples: np.ndarray, sr: int) -> Features:
    """Band levels, onset strengths, level and chroma every 10 ms."""
    mono = _mono(samples)
    hop = sr / FRAME_RATE
    n = max(1, int(mono.size / hop))
    padded = np.concatenate([np.zeros(FRAME // 2, np.float32), mono, np.zeros(FRAME, np.float32)])
    starts = np.round(np.arange(n) * hop).astype(np.int64)
    starts = starts[starts + FRAME <= padded.size]
    power = _power_spectra(padded, starts)
    freqs = np.fft.rfftfreq(FRAME, 1.0 / sr)
    edges = _band_edges(sr)
    which = np.searchsorted(edges, freqs) - 1
    inside = (which >= 0) & (which < edges.size - 1)
    matrix = np.zeros((freqs.size, edges.size - 1), np.float32)
    matrix[np.flatnonzero(inside), which[inside]] = 1.0
    used = matrix.sum(axis=0) > 0
    matrix = matrix[:, used]
    centres = np.sqrt(edges[:-1] * edges[1:])[used]
    energy = power @ matrix
    mean = energy.mean(axis=0) + 1e-12
    bands = np.log1p(energy / mean * 10.0)
    rises = np.maximum(np.diff(bands, axis=0, prepend=bands[:1]), 0.0)
    # A frame's level rises as an onset enters the leading edge of its window, about a
    # quarter window before the frame's centre: move the rises to where the onsets are.
    lag = round(FRAME / 4 / hop)
    rises = np.concatenate([np.zeros((lag, rises.shape[1]), rises.dtype), rises[:-lag]])
    weight = np.sqrt(mean / mean.sum())
    onset = rises @ (weight / weight.sum())
    low = centres < BASS_HZ
    bass = rises[:, low].mean(axis=1) if low.any() else onset
    # Per register, so a hi-hat's eighths count as much as the bass's beats (summed with
    # the energy's weights, the quiet cymbals would vanish under the bass).
    register = np.searchsorted(np.asarray(REGISTER_HZ), centres)
    columns = [rises[:, register == k].mean(axis=1) for k in np.unique(register)]
    # New notes: the rise of each semitone's level. A string section's or an organ's
    # arpeggio barely moves the bands' levels, but every eighth is a new pitch.
    tonal = (freqs >= NOTE_HZ[0]) & (freqs <= NOTE_HZ[1])
    semitone = np.rint(12 * np.log2(freqs[tonal] / 440.0)).astype(int)
    semitone -= semitone.min()
    smat = np.zeros((semitone.size, int(semitone.max()) + 1), np.float32)
    smat[np.arange(semitone.size), semitone] = 1.0
    semis = power[:, tonal] @ smat
    semis = np.log1p(semis / (semis.mean(axis=0) + 1e-12) * 10.0)
    notes = np.maximum(np.diff(semis, axis=0, prepend=semis[:1]), 0.0).mean(axis=1)
    notes = np.concatenate([np.zeros(lag, notes.dtype), notes[:-lag]])
    registers = np.stack([*columns, notes], axis=1)
    total = power.sum(axis=1) / (FRAME * 0.375) * 2 / FRAME
    level_db = 10 * np.log10(total + 1e-12)
    # Chroma: the bins between 55 Hz and 4 kHz, folded onto pitch classes (A = 9).
    tonal = (freqs >= 55.0) & (freqs <= 4000.0)
    pitch = np.rint(12 * np.log2(freqs[tonal] / 440.0) + 69).astype(int) % 12
    cmat = np.zeros((int(tonal.sum()), 12), np.float32)
    cmat[np.arange(pitch.size), pitch] = 1.0
    mag = np.sqrt(power[:, tonal])
    # Only the spectral peaks: a note is a peak, a drum's noise is a plateau (peaks
    # anywhere in the noise count for little next to the notes').
    peak = np.zeros(mag.shape, bool)
    peak[:, 1:-1] = (mag[:, 1:-1] > mag[:, :-2]) & (mag[:, 1:-1] >= mag[:, 2:])
    chroma = np.where(peak, mag, 0.0) @ cmat
    sums = chroma.sum(axis=1, keepdims=True)
    chroma = np.where(sums > 0, chroma / np.maximum(sums, 1e-12), 0.0)
    return Features(FRAME_RATE, _demean(onset), _demean(bass), level_db, chroma, bands, registers)


def _demean(o: np.ndarray) -> np.ndarray:
    """Remove the local mean (0.4 s) so swells do not count as onsets."""
    width = max(1, min(round(0.4 * FRAME_RATE), o.size))
    local = np.convolve(o, np.ones(width) / width, mode="same")
    return np.maximum(o - local, 0.0)


def _autocorrelation(o: np.ndarray) -> np.ndarray:
    n = o.size
    size = 1 << (2 * n - 1).bit_length()
    spectrum = np.fft.rfft(o - o.mean(), size)
    ac = np.fft.irfft(spectrum * np.conj(spectrum), size)[:n]
    ac /= np.maximum(n - np.arange(n), 1)  # unbiased
    return ac / ac[0] if ac[0] > 0 else ac


def _interp(a: np.ndarray, x: np.ndarray) -> np.ndarray:
    return np.interp(x, np.arange(a.size), a, right=0.0)


def tempo_scores(o: np.ndarray, rate: float) -> tuple[np.ndarray, np.ndarray]:
    """(bpms, score) over 40-240 BPM: the two combs' product and the tempo preference."""
    ac = _autocorrelation(o)
    bpms = MIN_BPM * 2 ** np.arange(0, math.log2(MAX_BPM / MIN_BPM), 0.002)
    periods = 60.0 * rate / bpms
    usable = periods * 2 < o.size
    bpms, periods = bpms[usable], periods[usable]
    lag = np.zeros(bpms.size)
    for k in range(1, HARMONICS + 1):
        lag += np.maximum(_interp(ac, k * periods), 0.0) / k
    size = 1 << max(16, (4 * o.size - 1).bit_length())
    magnitude = np.abs(np.fft.rfft((o - o.mean()) * np.hanning(o.size), size))
    freqs = np.arange(magnitude.size) * rate / size
    spec = np.zeros(bpms.size)
    for h in range(1, HARMONICS + 1):
        spec += np.interp(h * bpms / 60.0, freqs, magnitude, right=0.0) / h
    if lag.max() <= 0 or spec.max() <= 0:
        return bpms, np.zeros(bpms.size)
    # A period at which the onsets do not repeat (a click every other candidate beat) is
    # no beat, however well its multiples score.
    first = _interp(ac, periods)
    lag *= np.clip(first / GATE, 0.0, 1.0)
    if lag.max() <= 0:
        return bpms, np.zeros(bpms.size)
    score = (lag / lag.max()) * (spec / spec.max())
    score *= np.exp(-0.5 * (np.log2(bpms / PREFERRED_BPM) / PREFERENCE_OCTAVES) ** 2)
    return bpms, score


def _refine(o: np.ndarray, period: float, phase_from: np.ndarray) -> tuple[float, float, float]:
    """(period, phase in frames, clarity): the harmonic Fourier magnitude's maximum."""
    t = np.arange(o.size, dtype=np.float64)
    candidates = period * (1 + np.linspace(-0.02, 0.02, 81))
    base = np.exp(-2j * np.pi * np.outer(1.0 / candidates, t))
    score = np.zeros(candidates.size)
    power = base
    for h in range(1, HARMONICS + 1):
        if h > 1:
            power = power * base
        score += np.abs(power @ o) / h
    i = int(np.argmax(score))
    best = float(candidates[i])
    if 0 < i < candidates.size - 1:
        a, b, c = score[i - 1], score[i], score[i + 1]
        denom = a - 2 * b + c
        if denom < 0:
            best += float(0.5 * (a - c) / denom * (candidates[1] - candidates[0]))
    total = float(o.sum())
    fundamental = complex(np.exp(-2j * np.pi * t / best) @ o)
    clarity = abs(fundamental) / total if total > 0 else 0.0
    return best, _phase(phase_from, best), float(clarity)


def _bar_peak(values: np.ndarray, beats_per_bar: int = 4) -> float:
    usable = (values.size // beats_per_bar) * beats_per_bar
    if not usable:
        return 0.0
    return float(values[:usable].reshape(-1, beats_per_bar).mean(axis=0).max())


def chord_change(chroma: np.ndarray, width: int) -> np.ndarray:
    """Per frame: how much the mean chroma of the ``width`` frames after it differs from
    that of the ``width`` frames before it (0..2, the L1 distance of unit-sum vectors)."""
    n = chroma.shape[0]
    width = max(1, min(width, n // 2))
    csum = np.vstack([np.zeros((1, 12)), np.cumsum(chroma, axis=0, dtype=np.float64)])
    idx = np.arange(n)
    lo, hi = np.clip(idx - width, 0, n), np.clip(idx + width, 0, n)
    before = (csum[idx] - csum[lo]) / np.maximum(idx - lo, 1)[:, None]
    after = (csum[hi] - csum[idx]) / np.maximum(hi - idx, 1)[:, None]

    def unit(v: np.ndarray) -> np.ndarray:
        return v / np.maximum(v.sum(axis=1, keepdims=True), 1e-12)

    return np.abs(unit(after) - unit(before)).sum(axis=1)


def _at(curve: np.ndarray, times: np.ndarray) -> np.ndarray:
    """``curve`` at fractional frame ``times``, the largest within a frame either side."""
    smooth = np.maximum(np.maximum(curve, np.roll(curve, 1)), np.roll(curve, -1))
    return _interp(smooth, times)


def _phase(o: np.ndarray, period: float) -> float:
    """The offset (frames) of the pulse train at ``period`` that gathers the most onset
    strength: beats fall on the strongest pulse, not on the average phase that a
    syncopated pattern pulls the Fourier phase to."""
    smooth = np.maximum(np.maximum(o, np.roll(o, 1)), np.roll(o, -1))
    count = int((o.size - 1) / period)
    if count < 1:
        return 0.0
    offsets = np.arange(0.0, period, 0.5)
    grid = offsets[:, None] + period * np.arange(count)[None, :]
    score = _interp(smooth, grid).sum(axis=1)
    return float(offsets[int(np.argmax(score))])


def analyse(samples: np.ndarray, sr: int, feats: Features | None = None) -> Rhythm | None:
    """Tempo, beats, meter and downbeats of ``samples``; None without a steady pulse."""
    f = feats if feats is not None else features(samples, sr)
    o = f.onset
    if o.size < 4 * f.rate or not np.any(o):
        return None
    if np.percentile(o, 99) < MIN_PEAKINESS * o.mean():
        return None  # no onsets stand out (a swelling pad, a drone): no pulse to find
    bpms, score = tempo_scores(o, f.rate)
    if not score.any():
        return None
    i = int(np.argmax(score))
    bpm = float(bpms[i])
    # Confidence: the best score away from this level (and its octave neighbours' peaks).
    away = np.abs(np.log2(bpms / bpm)) > 0.08
    rival = float(score[away].max()) if away.any() else 0.0
    tempo_conf = float(np.clip(1.0 - rival / score[i], 0.0, 1.0))
    mix = o / (o.sum() + 1e-12) + PHASE_BASS * f.bass / (f.bass.sum() + 1e-12)
    period, offset, clarity = _refine(o, 60.0 * f.rate / bpm, mix)
    if 60.0 * f.rate / (2 * period) >= MIN_BPM:
        # Every other pulse much weaker than the rest (hi-hat eighths between kicks and
        # snares): the grid counts subdivisions and the beat is twice as long.
        pulses = offset + period * np.arange(int((o.size - 1 - offset) / period))
        a, b = _at(o, pulses[0::2]).mean(), _at(o, pulses[1::2]).mean()
        # Not when the beats divide in three: a 6/8 bar's second beat is weaker than its
        # first, and halving would count bars as beats.
        weak = pulses.size >= 8 and min(a, b) < SUBDIVISION_RATIO * max(a, b)
        if weak and _triple_evidence(f, period) <= TRIPLE_EVIDENCE:
            period, _, clarity = _refine(o, 2 * period, mix)
            offset = float(pulses[0] if a >= b else pulses[1]) % period
    # Beat or off-beat: chords change on beats. The pulse train half a period later
    # gathers as much onset strength when eighth notes are even; the chord changes decide.
    change = chord_change(f.chroma, round(period * BEAT_CHANGE_WIDTH))
    on = offset + period * np.arange(int((o.size - 1 - offset) / period))
    off = on + period / 2
    off = off[off < o.size - 1]
    if off.size:
        # Chords change most at bar lines: the grid whose bar line has the most change
        # (folded over four beats, half a bar either side) as well as the most change
        # per beat is the beat.
        bar_change = chord_change(f.chroma, round(period * 2))
        on_score = _bar_peak(_at(bar_change, on)) + _at(change, on).mean()
        off_score = _bar_peak(_at(bar_change, off)) + _at(change, off).mean()
        # Only when the off-beat pulses are as real as the beats (even eighth notes):
        # a grid with little between its beats has its phase from the onsets alone.
        even = _at(mix, off).mean() >= EVEN_EIGHTHS * _at(mix, on).mean()
        if even and off_score > on_score:
            offset = (offset + period / 2) % period
    bpm = 60.0 * f.rate / period
    ac = _autocorrelation(o)
    periodicity = float(_interp(ac, period * np.arange(1, 5)).max())
    if periodicity < MIN_PERIODICITY:
        return None
    duration = o.size / f.rate
    beats = (offset + period * np.arange(-1, int((o.size - offset) / period) + 1)) / f.rate
    # A beat a hair before the start (the grid's rounding) is the beat at the start.
    beats = np.where((beats < 0) & (beats > -EARLY_S), 0.0, beats)
    beats = beats[(beats >= 0) & (beats < duration)]
    bpb, unit, meter_conf, phase, down_conf = _meter(f, beats)
    # A fast bar of three is a compound beat of three eighths when its own pulses divide
    # in three (the same evidence, at the grouped beat's period).
    fast_triple = bpb == 3 and unit == 4 and bpm >= FAST_TRIPLE_BPM and beats.size >= 24
    if fast_triple and _triple_evidence(f, 3 * period) > TRIPLE_EVIDENCE:
        beats, bpm = beats[phase::3], bpm / 3
        bpb, unit, meter_conf, phase, down_conf = _meter(f, beats)
    return Rhythm(
        bpm=bpm,
        tempo_confidence=tempo_conf,
        beats=beats,
        beat_confidence=min(1.0, clarity * 4),
        beats_per_bar=bpb,
        beat_unit=unit,
        meter_confidence=meter_conf,
        downbeats=beats[phase::bpb],
        downbeat_confidence=down_conf,
        periodicity=periodicity,
    )


def _meter(f: Features, beats: np.ndarray) -> tuple[int, int, float, int, float]:
    """(beats_per_bar, beat_unit, meter confidence, downbeat index among the first bar's
    beats, downbeat confidence).

    Each candidate bar length (2, 3, 4 beats) is scored by how much more the chords change
    across its bar lines (chroma before and after, half a bar either side) than at its
    other beats; the bar's phase is the beat position where they change most.
    """
    if beats.size < 8:
        return 4, 4, 0.0, 0, 0.0
    period = float(np.median(np.diff(beats))) * f.rate
    frames = beats * f.rate
    results: dict[int, tuple[float, int, float]] = {}
    for bpb in (2, 3, 4):
        change = _at(chord_change(f.chroma, round(period * bpb / 2)), frames)
        results[bpb] = _bar_fold(change / (change.mean() + 1e-12), bpb)
    triple, duple = _subdivisions(f.onset, frames, period)
    evidence = _triple_evidence(f, period)
    by_rate = evidence > TRIPLE_EVIDENCE and not _simple_pulse(f.onset, frames, period)
    if triple > COMPOUND * duple or by_rate:
        # Beats of three equal pulses (a jig's eighths): 6/8, bars of two such beats, or
        # 12/8 (four: triplets in a 4/4 bar) when four is clearly better. Compound bars
        # are told by their accents as well as their chords: the bass and the loudest
        # onsets on the bar's first beat (a jig's chords change every bar or two, and
        # its harmony alone says little about the bar line).
        change = _at(chord_change(f.chroma, round(period)), frames)
        accent = _at(f.onset, frames) + _at(f.bass, frames)
        # Each cue weighted by how metrical it is (its spread folded over four beats):
        # a cue that barely varies with the bar adds noise, not evidence.
        score = np.zeros(frames.size)
        for cue in (change, accent):
            cue = cue / (cue.mean() + 1e-12)
            usable = (cue.size // 4) * 4
            folded = cue[:usable].reshape(-1, 4).mean(axis=0)
            score += (folded.max() - folded.min()) * cue
        # Bars of two or four compound beats: the folds do not tell them apart (a 6/8
        # piece's chords may change more every other bar; a 12/8 one's at each half bar),
        # the tempo does (a bar of two slow compound beats, 1.2 to 2 s, is as long as a
        # 4/4 bar; two fast ones are half of one).
        bpb = 4 if 60.0 * f.rate / period >= COMPOUND_BAR_BPM else 2
        contrast, phase, margin = _bar_fold(score, bpb)
        # Confidence: how far the thirds outweigh the halves, or the evidence (0 at none).
        by_pulses = 1.0 - COMPOUND * duple / (triple + 1e-12)
        by_evidence = 1.0 - 1.0 / (1.0 + max(evidence, 0.0))
        meter_conf = float(np.clip(max(by_pulses, by_evidence), 0.0, 1.0))
        return bpb, 8, meter_conf, phase, float(np.clip(margin * 2, 0.0, 1.0))
    # A bar of four contains bars of two: read four unless three is clearly better, by
    # the fold or by the harmony's period (chords that change every three beats).
    harmony = _harmony_in_threes(_at(chord_change(f.chroma, round(period)), frames))
    fold_says_three = results[3][0] > max(results[4][0], results[2][0]) * METER_MARGIN
    bpb = 3 if fold_says_three or harmony > HARMONY_IN_THREES else 4
    contrast, phase, margin = results[bpb]
    rival = results[4 if bpb == 3 else 3][0]
    meter_conf = float(np.clip(1.0 - rival / (contrast + 1e-12), 0.0, 1.0))
    if bpb == 3 and not fold_says_three:
        meter_conf = float(np.clip(harmony, 0.0, 1.0))
    return bpb, 4, meter_conf, phase, float(np.clip(margin * 2, 0.0, 1.0))


def _harmony_in_threes(change: np.ndarray) -> float:
    """How much more the chord change at each beat repeats three and six beats apart than
    four and eight: the autocorrelation of the per-beat change at those lags."""
    if change.size < 24:
        return 0.0
    v = (change - change.mean()) / (change.std() + 1e-12)
    ac = {lag: float(np.mean(v[:-lag] * v[lag:])) for lag in (3, 4, 6, 8)}
    return (ac[3] + ac[6]) / 2 - (ac[4] + ac[8]) / 2


def _bar_fold(score: np.ndarray, bpb: int) -> tuple[float, int, float]:
    """``score`` per beat folded over bars of ``bpb`` beats: (contrast: how far the
    strongest position stands above the others, that position, margin over the next)."""
    usable = (score.size // bpb) * bpb
    folded = score[:usable].reshape(-1, bpb).mean(axis=0)
    ordered = np.sort(folded)[::-1]
    contrast = float((ordered[0] - ordered[1:].mean()) / (folded.mean() + 1e-12))
    margin = float((ordered[0] - ordered[1]) / (ordered[0] + 1e-12))
    return contrast, int(np.argmax(folded)), margin


def _subdivisions(o: np.ndarray, frames: np.ndarray, period: float) -> tuple[float, float]:
    """(onset strength a third and two thirds into each beat, the same at a half or at a
    quarter and three quarters): which pulses divide the beat, three or two (or four).
    Each the largest within a 24th of a beat (onsets smear by a frame or two); thirds that
    are mere ripples (under a twentieth of the beats' own strength) count as none."""
    at = _in_beat(o, frames, period, (0.0, 1 / 3, 2 / 3, 0.5, 0.25, 0.75))
    if at is None:
        return 0.0, 1.0
    beat, triple, duple = at[0], (at[1] + at[2]) / 2, max(at[3], (at[4] + at[5]) / 2)
    return (triple if triple >= MIN_SUBDIVISION * beat else 0.0), duple


def _in_beat(
    o: np.ndarray, frames: np.ndarray, period: float, fractions: tuple[float, ...]
) -> np.ndarray | None:
    """The mean onset strength at each fraction of the beats (None with under four beats),
    each the largest within a 24th of a beat (onsets smear by a frame or two)."""
    inner = frames[frames + period < o.size - 1]
    if inner.size < 4:
        return None
    spread = np.arange(-max(1, round(period / 24)), max(1, round(period / 24)) + 1)
    times = inner[None, :, None] + period * np.asarray(fractions)[:, None, None] + spread
    return _interp(o, times.reshape(-1)).reshape(times.shape).max(axis=2).mean(axis=1)


def _simple_pulse(o: np.ndarray, frames: np.ndarray, period: float) -> bool:
    """Whether an onset a quarter, a half or three quarters into the beats stands out over
    both thirds (a dotted eighth and a sixteenth: its pulses repeat at three times the
    beat rate as well, but the beat divides in two)."""
    at = _in_beat(o, frames, period, (0.0, 0.25, 0.5, 0.75, 1 / 3, 2 / 3))
    if at is None:
        return False
    even = float(at[1:4].max())
    return even >= MIN_SUBDIVISION * at[0] and even >= SIMPLE_PULSE * float(at[4:].max())


def _triple_evidence(f: Features, period: float) -> float:
    """How much more the onsets repeat three times a beat than two or four times: per
    register (and the whole onset strength), the log of the Fourier magnitude at three
    times the beat rate over the larger of those at two and four times, each magnitude
    taken against its neighbourhood's (the noise floor); summed. Positive: compound beats.

    Where the pulses fall in the beat does not matter (a string section's slow attack
    moves its eighths' onsets late, and read at fixed thirds and halves of the beat they
    fell on the wrong side); how often they repeat does."""
    envelopes = np.column_stack([f.registers, f.onset])
    n = envelopes.shape[0]
    if n < 4 * period:
        return 0.0
    t = np.arange(n)
    weighted = (envelopes - envelopes.mean(axis=0)) * np.hanning(n)[:, None]
    around = 1 + np.array([-0.1, -0.08, -0.06, 0.06, 0.08, 0.1])
    salience = []
    for h in (2, 3, 4):
        freqs = h / period * np.concatenate([[1.0], around])
        mags = np.abs(np.exp(-2j * np.pi * np.outer(freqs, t)) @ weighted)
        salience.append(mags[0] / (np.median(mags[1:], axis=0) + 1e-12))
    two, three, four = salience
    return float(np.log((three + 1e-9) / (np.maximum(two, four) + 1e-9)).sum())


def grid(bpm: float, first_beat_s: float, beats_per_bar: int, duration_s: float) -> Rhythm:
    """A steady grid from known metadata (a generator's tempo, or a track's), as a Rhythm
    whose first beat is a downbeat."""
    beat = 60.0 / bpm
    first = first_beat_s % (beat * beats_per_bar)
    beats = first + beat * np.arange(max(0, int((duration_s - first) / beat)) + 1)
    beats = beats[beats < duration_s]
    return Rhythm(
        bpm=bpm,
        tempo_confidence=1.0,
        beats=beats,
        beat_confidence=1.0,
        beats_per_bar=beats_per_bar,
        beat_unit=4,
        meter_confidence=1.0,
        downbeats=beats[::beats_per_bar],
        downbeat_confidence=1.0,
        periodicity=1.0,
    )
