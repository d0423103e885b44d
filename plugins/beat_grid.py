"""Tempo and beat-grid analysis: fills ``bpm``/``first_beat_s``, flags a tempo far from the request.

Runs first on ``segue_process_track`` (``tryfirst``), so loop points can use the grid.

The analysis, numpy only:

1. **Onset strength**: spectral flux of log-compressed third-octave band energies
   (1024-point frames, 512-frame hop), with the local mean removed and half-wave
   rectified.
2. **Tempo**: every period between 40 and 240 BPM is scored on two combs, the
   autocorrelation of the onset strength at the period and its multiples, and its
   spectrum at the beat rate and its harmonics. The first favours slower metrical levels
   (2, 3, 4 beats), the second faster ones (half beats); their product picks the beat.
   If every other pulse of that grid is much weaker than the rest (hi-hat eighths between
   kick and snare), the grid counts subdivisions and the beat is twice as long.
3. **Refinement**: the period and phase that maximise the Fourier magnitude of the onset
   strength at the beat rate and its first harmonics (sub-frame precision), then the first
   beat is the earliest grid point.

A 60 s track is analysed in a few tens of milliseconds.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np

from segue.core import hookimpl
from segue.core.audio import TrackAudio
from segue.core.track import Track

log = logging.getLogger("segue.plugins.beat_grid")

N_FFT = 1024
HOP = 512
MIN_BPM = 40.0
MAX_BPM = 240.0
# A tempo this far from the request (after octave errors) is flagged.
TEMPO_TOLERANCE = 0.04
HARMONICS = 4
# Every other pulse this much weaker than the rest: the pulses are subdivisions.
SUBDIVISION_RATIO = 0.3
PREFERRED_BPM = 110.0
PREFERENCE_OCTAVES = 1.0
# Below these, the onsets have no clear period (pads, drones, noise): bpm is left
# unknown. Periodicity: autocorrelation of the onset strength one to PERIOD_BEATS beats
# apart (the largest); clarity: the share of the onset strength in phase with the beat.
MIN_PERIODICITY = 0.15
PERIOD_BEATS = 4
MIN_CLARITY = 0.05


@dataclass(frozen=True)
class BeatGrid:
    bpm: float
    first_beat_s: float
    clarity: float  # 0..1: how much of the onset strength falls on the grid's beats
    periodicity: float  # autocorrelation of the onset strength 1-4 beats apart (the largest)


def _band_matrix(sr: int) -> np.ndarray:
    """(bins, bands): sums FFT power into third-octave bands from 40 Hz up."""
    freqs = np.fft.rfftfreq(N_FFT, 1.0 / sr)
    index = np.full(freqs.size, -1)
    audible = freqs >= 40.0
    index[audible] = np.floor(3 * np.log2(freqs[audible] / 40.0)).astype(int)
    matrix = np.zeros((freqs.size, int(index.max()) + 1), dtype=np.float32)
    matrix[audible, index[audible]] = 1.0
    return matrix[:, matrix.sum(axis=0) > 0]


def onset_strength(samples: np.ndarray, sr: int) -> tuple[np.ndarray, float]:
    """Onset strength per frame and the frame rate (frames per second).

    Frames are centred on ``k * HOP``: strength ``k`` is the rise into frame ``k``. Each
    third-octave band's energy is taken relative to its mean over the track and
    log-compressed; the bands' rises are weighted by the square root of their share of
    the energy, so kick and snare, which carry the beat, count for more than hi-hats.
    """
    x = np.asarray(samples, dtype=np.float32)
    mono = x.mean(axis=1) if x.ndim == 2 else x
    padded = np.concatenate(
        [np.zeros(N_FFT // 2, np.float32), mono, np.zeros(N_FFT // 2, np.float32)]
    )
    frames = np.lib.stride_tricks.sliding_window_view(padded, N_FFT)[::HOP]
    window = np.hanning(N_FFT).astype(np.float32)
    power = np.abs(np.fft.rfft(frames * window, axis=1)) ** 2
    energy = power @ _band_matrix(sr)
    mean = energy.mean(axis=0) + 1e-12
    weight = np.sqrt(mean / mean.sum())
    weight /= weight.sum()
    bands = np.log1p(energy / mean)
    # The first frame rises from silence: music that starts on a beat has an onset at 0.
    rises = np.diff(bands, axis=0, prepend=np.zeros((1, bands.shape[1])))
    flux = (np.maximum(rises, 0.0) * weight).sum(axis=1)
    rate = sr / HOP
    # Remove the local mean (about 0.4 s) so slow swells do not count as onsets.
    width = max(1, min(round(0.4 * rate), flux.size))
    local = np.convolve(flux, np.ones(width) / width, mode="same")
    return np.maximum(flux - local, 0.0), rate


def _autocorrelation(o: np.ndarray) -> np.ndarray:
    n = o.size
    size = 1 << (2 * n - 1).bit_length()
    spectrum = np.fft.rfft(o - o.mean(), size)
    ac = np.fft.irfft(spectrum * np.conj(spectrum), size)[:n]
    # Unbiased: each lag is averaged over the frames that overlap at that lag.
    ac /= np.maximum(n - np.arange(n), 1)
    return ac / ac[0] if ac[0] > 0 else ac


def _interp(ac: np.ndarray, lags: np.ndarray) -> np.ndarray:
    return np.interp(lags, np.arange(ac.size), ac, right=0.0)


def _coarse_period(o: np.ndarray, ac: np.ndarray, rate: float) -> float | None:
    """The beat period in frames, scored by two combs that err in opposite directions.

    On the autocorrelation, every multiple of the beat period (2, 3, 4 beats) scores as
    well as the period itself; on the spectrum, every fraction of it does (the harmonics
    of a pulse train at twice the rate are all in the spectrum of the slower one). Their
    product is high only at the beat period.
    """
    bpms = MIN_BPM * 2 ** np.arange(0, math.log2(MAX_BPM / MIN_BPM), 0.005)
    periods = 60.0 * rate / bpms
    usable = periods * 2 < ac.size  # need at least two periods of signal
    if not usable.any():
        return None
    periods, bpms = periods[usable], bpms[usable]
    lag_score = np.zeros(periods.size)
    for k in range(1, HARMONICS + 1):
        lag_score += np.maximum(_interp(ac, k * periods), 0.0) / k
    size = 1 << max(16, (4 * o.size - 1).bit_length())
    magnitude = np.abs(np.fft.rfft((o - o.mean()) * np.hanning(o.size), size))
    freqs = np.arange(magnitude.size) * rate / size  # Hz
    spectral_score = np.zeros(periods.size)
    for h in range(1, HARMONICS + 1):
        spectral_score += np.interp(h * bpms / 60.0, freqs, magnitude, right=0.0) / h
    if spectral_score.max() <= 0 or lag_score.max() <= 0:
        return None
    score = (lag_score / lag_score.max()) * (spectral_score / spectral_score.max())
    # A broad preference for moderate tempos (listeners' own, centred near 110 BPM) breaks
    # the ties the combs leave between metrical levels.
    score *= np.exp(-0.5 * (np.log2(bpms / PREFERRED_BPM) / PREFERENCE_OCTAVES) ** 2)
    return float(periods[int(np.argmax(score))])


def _refine(o: np.ndarray, period: float) -> tuple[float, float, float]:
    """(period, phase in frames, clarity) maximising the harmonic Fourier magnitude."""
    t = np.arange(o.size, dtype=np.float64)
    total = float(o.sum())
    if total <= 0:
        return period, 0.0, 0.0
    candidates = period * (1 + np.linspace(-0.03, 0.03, 61))
    score = np.zeros(candidates.size)
    base = np.exp(-2j * np.pi * np.outer(1.0 / candidates, t))
    phase = base
    for h in range(1, HARMONICS + 1):
        if h > 1:
            phase = phase * base  # the h-th harmonic: base ** h
        score += np.abs(phase @ o) / h
    i = int(np.argmax(score))
    best = float(candidates[i])
    if 0 < i < candidates.size - 1:
        a, b, c = score[i - 1], score[i], score[i + 1]
        denom = a - 2 * b + c
        if denom < 0:
            step = candidates[1] - candidates[0]
            best += float(0.5 * (a - c) / denom * step)
    fundamental = complex(np.exp(-2j * np.pi * t / best) @ o)
    clarity = abs(fundamental) / total
    # A pulse at t0 + k*period gives angle -2*pi*t0/period.
    offset = (-np.angle(fundamental) / (2 * np.pi)) % 1.0 * best
    return best, float(offset), float(clarity)


def _strength_at(o: np.ndarray, times: np.ndarray) -> np.ndarray:
    """The onset strength near each (fractional) frame time: the largest within a frame."""
    idx = np.rint(times).astype(int)
    idx = idx[(idx >= 1) & (idx < o.size - 1)]
    return np.maximum(np.maximum(o[idx - 1], o[idx]), o[idx + 1])


def _subdivision(o: np.ndarray, period: float, offset: float) -> float | None:
    """If every other pulse of the grid is much weaker, the offset of the stronger half.

    Then the grid is counting subdivisions (eighth-note hi-hats between kick and snare)
    and the beat is twice the period.
    """
    if 60.0 * (o.size / period) < 4 or (2 * period) * 4 > o.size:
        return None
    times = offset + period * np.arange(int((o.size - 1 - offset) / period) + 1)
    even = _strength_at(o, times[0::2])
    odd = _strength_at(o, times[1::2])
    if even.size < 2 or odd.size < 2:
        return None
    a, b = float(np.mean(even)), float(np.mean(odd))
    strong, weak = max(a, b), min(a, b)
    if strong <= 0 or weak >= SUBDIVISION_RATIO * strong:
        return None
    return offset if a >= b else offset + period


def analyse(samples: np.ndarray, sr: int) -> BeatGrid | None:
    """The tempo and first beat of ``samples``, or None if they have no clear pulse."""
    o, rate = onset_strength(samples, sr)
    if o.size < 8 or not np.any(o):
        return None
    ac = _autocorrelation(o)
    period = _coarse_period(o, ac, rate)
    if period is None:
        return None
    period, offset, clarity = _refine(o, period)
    if 60.0 * rate / (2 * period) >= MIN_BPM:
        strong = _subdivision(o, period, offset)
        if strong is not None:
            period, offset, clarity = _refine(o, 2 * period)
    # How alike the onsets are one beat apart, or a few beats apart (a pattern that repeats
    # each half bar or bar, with unlike beats inside it, keeps the beat): a lone onset or a
    # drone has no period at any of them.
    periodicity = float(_interp(ac, period * np.arange(1, PERIOD_BEATS + 1)).max())
    if periodicity < MIN_PERIODICITY or clarity < MIN_CLARITY:
        return None
    first = offset / rate
    beat = period / rate
    if beat - first < 0.02:
        # The grid puts a beat a hair before 0: it is the beat at 0 if the music starts
        # with an onset, else the onset really is a beat period in.
        at_start = float(_strength_at(o, np.array([0.0, 1.0])).max(initial=0.0))
        at_offset = float(_strength_at(o, np.array([offset])).max(initial=0.0))
        if at_start >= 0.5 * at_offset:
            first = 0.0
    return BeatGrid(
        bpm=60.0 * rate / period, first_beat_s=first, clarity=clarity, periodicity=periodicity
    )


def octave_match(estimate: float, requested: float) -> float | None:
    """``estimate`` moved by an octave (x2, /2) to within TEMPO_TOLERANCE of ``requested``."""
    for factor in (1.0, 2.0, 0.5):
        candidate = estimate * factor
        if abs(candidate / requested - 1) <= TEMPO_TOLERANCE:
            return candidate
    return None


def _requested(track: Track) -> float | None:
    value = track.extra.get("requested_bpm")
    try:
        bpm = float(value) if value is not None else None
    except (TypeError, ValueError):
        return None
    return bpm if bpm is not None and math.isfinite(bpm) and bpm > 0 else None


@hookimpl(tryfirst=True)
def segue_process_track(audio: TrackAudio) -> TrackAudio | None:
    """Measure the tempo and first beat (metadata only: the samples are kept)."""
    track = measure(audio.track, audio.samples, audio.rate)
    return None if track is None else audio.replace(track=track)


def measure(track: Track, samples: np.ndarray, sr: int) -> Track | None:
    """``track`` with the tempo filled and/or checked; None when there is nothing to do."""
    requested = _requested(track)
    if track.bpm is not None and requested is None:
        return None  # the generator knows its tempo and nothing asks for a check
    grid = analyse(samples, sr)
    extra = dict(track.extra)
    changes: dict[str, object] = {}
    if grid is None:
        extra["tempo_estimate"] = None
        # A one-shot (a fanfare, a chime) need not have a beat: nothing to warn about.
        if track.loop and (requested is not None or track.bpm is None):
            extra["tempo_warning"] = "no clear beat found"
            log.warning("%s: no clear beat found", track.id)
        return track.replace(extra=extra)
    extra["tempo_estimate"] = round(grid.bpm, 2)
    extra["tempo_clarity"] = round(grid.clarity, 3)
    estimate = grid.bpm
    if requested is not None:
        matched = octave_match(estimate, requested)
        if matched is None:
            warning = (
                f"estimated tempo {estimate:.1f} BPM is more than "
                f"{TEMPO_TOLERANCE:.0%} from the requested {requested:g} BPM"
            )
            extra["tempo_warning"] = warning
            log.warning("%s: %s", track.id, warning)
        else:
            estimate = matched  # the requested octave is the intended one
    if track.bpm is None:
        changes["bpm"] = round(estimate, 3)
        # The grid's phase is the same at any octave only for the faster level; the
        # earliest beat of the chosen period is the first grid point at or after it.
        beat = 60.0 / estimate
        changes["first_beat_s"] = round(grid.first_beat_s % beat, 4)
    return track.replace(extra=extra, **changes)
