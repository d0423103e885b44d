"""Listener-style measures of decoded audio, for tests (numpy + scipy; no segue imports).

- ``tempo(x, sr)``: BPM from an onset-strength envelope (log-spectral flux), scored by a
  harmonic Fourier comb over 50-220 BPM with a broad log-normal prior around 110 BPM.
- ``beat_tracker_tempo(x, sr)``: the tempo librosa's beat tracker reads (its method: a
  120 BPM prior), the figure a tester takes first.
- ``key(x, sr)``: (pitch class, "major"|"minor") from a chroma vector correlated with the
  Krumhansl-Kessler key profiles.
- ``chroma_sequence``, ``onset_rate``, ``spectral_centroid``, ``seam_report``,
  ``longest_silence``: the rest of what the synth's tests check.
All functions take float samples shaped (n,) or (n, channels).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import signal

PITCH_NAMES = ["C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B"]
# Krumhansl & Kessler (1982) probe-tone profiles, tonic first.
KK_MAJOR = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
KK_MINOR = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])


def mono(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return x.mean(axis=1) if x.ndim == 2 else x


def _stft_mag(x: np.ndarray, sr: int, n_fft: int, hop: int) -> tuple[np.ndarray, np.ndarray]:
    f, _, z = signal.stft(
        mono(x), sr, window="hann", nperseg=n_fft, noverlap=n_fft - hop, boundary=None, padded=False
    )
    return f, np.abs(z)


def _band_matrix(
    f: np.ndarray, bands: int = 40, lo: float = 30.0, hi: float = 12000.0
) -> np.ndarray:
    """Triangular log-spaced bands (mel-like): (bands, bins) weights."""
    edges = np.geomspace(lo, hi, bands + 2)
    w = np.zeros((bands, len(f)))
    for b in range(bands):
        left, centre, right = edges[b : b + 3]
        up = (f - left) / (centre - left)
        down = (right - f) / (right - centre)
        w[b] = np.maximum(0.0, np.minimum(up, down))
        if not w[b].any():  # a band narrower than a bin: take the nearest bin
            w[b, int(np.argmin(np.abs(f - centre)))] = 1.0
    return w


def onset_envelope(x: np.ndarray, sr: int, hop: int = 256) -> tuple[np.ndarray, float]:
    """Onset strength: half-wave-rectified flux of log band energies (log-spaced bands, as in
    mel-spectrogram onset detectors), locally de-meaned; and its frame rate."""
    f, mag = _stft_mag(x, sr, 2048, hop)
    bands = _band_matrix(f) @ (mag**2)
    logb = 10 * np.log10(bands + 1e-10)
    logb = np.maximum(logb, logb.max() - 80.0)
    flux = np.maximum(0.0, np.diff(logb, axis=1)).mean(axis=0)
    frame_rate = sr / hop
    width = max(3, int(0.4 * frame_rate))
    local = np.convolve(flux, np.ones(width) / width, mode="same")
    return np.maximum(0.0, flux - local), frame_rate


def tempo(x: np.ndarray, sr: int, lo: float = 50.0, hi: float = 220.0) -> float:
    """The most salient beat rate in BPM.

    A harmonic comb over the onset envelope's (zero-padded) spectrum: a candidate rate ``f``
    scores the sum of the magnitudes at ``f, 2f, 3f...`` up to 16 Hz, divided by the square
    root of their count. An even pulse of rate ``f`` then scores higher than ``2f`` (which
    misses the odd harmonics) and than ``f/2`` (whose odd harmonics are empty), so the metrical
    level is the one the accents and onsets support; a mild prior (120 BPM, 1.5 octaves)
    only breaks near-ties.
    """
    env, fr = onset_envelope(x, sr)
    env = env - env.mean()
    size = 1 << 20  # zero-padded: bins of fr / 2^20 Hz (about 0.01 BPM)
    spec = np.abs(np.fft.rfft(env, size))
    fmax = 16.0

    def comb(bpms: np.ndarray) -> np.ndarray:
        f = bpms / 60.0
        score = np.zeros(len(bpms))
        count = np.zeros(len(bpms))
        for h in range(1, int(fmax / (lo / 60.0)) + 1):
            ok = h * f <= fmax
            bins = np.round(h * f / fr * size).astype(int)
            score += np.where(ok, spec[np.minimum(bins, len(spec) - 1)], 0.0)
            count += ok
        prior = np.exp(-0.5 * (np.log2(bpms / 120.0) / 1.5) ** 2)
        return score / np.sqrt(np.maximum(count, 1)) * prior

    coarse = np.arange(lo, hi, 0.05)
    best = coarse[int(np.argmax(comb(coarse)))]
    fine = np.arange(best - 0.1, best + 0.1, 0.005)
    return float(fine[int(np.argmax(comb(fine)))])


def chroma(x: np.ndarray, sr: int, n_fft: int = 32768, hop: int = 8192) -> np.ndarray:
    """(frames, 12) chroma: spectral peaks from 40 Hz to 2.1 kHz folded onto pitch classes.

    Only local maxima that stand out of the frame's median count (as in HPCP), so noise,
    drums and reverb wash do not smear the profile.
    """
    f, mag = _stft_mag(x, sr, n_fft, hop)
    keep = (f >= 40) & (f <= 2100)
    f, mag = f[keep], mag[keep]
    peak = (mag > np.roll(mag, 1, axis=0)) & (mag >= np.roll(mag, -1, axis=0))
    peak &= mag > 4.0 * np.median(mag, axis=0, keepdims=True)
    pcs = np.round(12 * np.log2(f / 440.0) + 69).astype(int) % 12
    out = np.zeros((mag.shape[1], 12))
    for pc in range(12):
        rows = pcs == pc
        out[:, pc] = (mag[rows] * peak[rows]).sum(axis=0)
    return out


def key(x: np.ndarray, sr: int) -> tuple[int, str]:
    """Best Krumhansl-Kessler correlation over the 24 major and minor keys."""
    return _kk_key(chroma(x, sr).sum(axis=0))


def _kk_key(c: np.ndarray) -> tuple[int, str]:
    """The major or minor key whose Krumhansl-Kessler profile best fits chroma ``c``."""
    best = (-2.0, 0, "major")
    for tonic in range(12):
        for mode, profile in (("major", KK_MAJOR), ("minor", KK_MINOR)):
            r = float(np.corrcoef(c, np.roll(profile, tonic))[0, 1])
            if r > best[0]:
                best = (r, tonic, mode)
    return best[1], best[2]


def chroma_sequence(x: np.ndarray, sr: int, seconds: float) -> np.ndarray:
    """Chroma per window of ``seconds`` (rows normalised), for comparing two takes."""
    c = chroma(x, sr, 4096, 2048)
    per = max(1, round(seconds * sr / 2048))
    rows = len(c) // per
    seq = c[: rows * per].reshape(rows, per, 12).sum(axis=1)
    return seq / np.maximum(np.linalg.norm(seq, axis=1, keepdims=True), 1e-12)


def onset_times(x: np.ndarray, sr: int) -> np.ndarray:
    """Onset times (s): peaks of the onset envelope above a tenth of its maximum, 50 ms apart."""
    env, fr = onset_envelope(x, sr, hop=512)
    threshold = 0.1 * env.max()
    peaks, _ = signal.find_peaks(env, height=threshold, distance=max(1, int(0.05 * fr)))
    return peaks / fr


def onset_rate(x: np.ndarray, sr: int) -> float:
    """Detected onsets per second."""
    return len(onset_times(x, sr)) / (len(mono(x)) / sr)


def spectral_centroid(x: np.ndarray, sr: int) -> float:
    f, mag = _stft_mag(x, sr, 2048, 1024)
    return float((f[:, None] * mag).sum() / max(mag.sum(), 1e-20))


def rms_db(x: np.ndarray) -> float:
    return float(20 * np.log10(np.sqrt(np.mean(np.square(mono(x)))) + 1e-12))


@dataclass
class SeamReport:
    """The loop point (end -> start) measured like every bar line inside the loop."""

    jump: float  # |first sample - last sample| (max over channels)
    jump_limit: float  # the 99.9th percentile of sample-to-sample jumps elsewhere
    flux: float  # spectral flux between the 46 ms windows on both sides of the seam
    flux_limit: float  # the largest such flux at the other bar lines
    level_step_db: float  # RMS change between the 50 ms on both sides of the seam
    level_step_limit_db: float  # the largest such change at the other bar lines

    @property
    def ok(self) -> bool:
        return (
            self.jump <= self.jump_limit
            and self.flux <= self.flux_limit
            and self.level_step_db <= self.level_step_limit_db
        )


def _around(m: np.ndarray, pos: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``width`` samples before and after ``pos``, reading ``m`` as a loop."""
    before = np.take(m, np.arange(pos - width, pos), mode="wrap")
    after = np.take(m, np.arange(pos, pos + width), mode="wrap")
    return before, after


def _flux(before: np.ndarray, after: np.ndarray) -> float:
    w = np.hanning(len(before))
    a = np.log1p(100.0 * np.abs(np.fft.rfft(before * w)))
    b = np.log1p(100.0 * np.abs(np.fft.rfft(after * w)))
    return float(np.sqrt(np.mean(np.maximum(0.0, b - a) ** 2)))


def _level_step(before: np.ndarray, after: np.ndarray) -> float:
    rb = np.sqrt(np.mean(before**2)) + 1e-9
    ra = np.sqrt(np.mean(after**2)) + 1e-9
    return float(abs(20 * np.log10(ra / rb)))


def seam_report(x: np.ndarray, sr: int, bar_s: float) -> SeamReport:
    """Measures at the loop point against the same measures at every other bar line.

    The seam is also a downbeat, so its onset is compared with the other downbeats' onsets,
    not with the quiet moments between notes: a click, a gap, a missing reverb tail or a level
    dip would make it stand out of them.
    """
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 1:
        x = x[:, None]
    n = len(x)
    jumps = np.abs(np.diff(x, axis=0)).max(axis=1)
    jump = float(np.abs(x[0] - x[-1]).max())
    jump_limit = float(np.percentile(jumps, 99.9))
    m = mono(x)
    bar = bar_s * sr
    lines = [round(k * bar) for k in range(1, round(n / bar))]
    win_f, win_l = 2048, int(0.05 * sr)
    flux = _flux(*_around(m, 0, win_f))
    step = _level_step(*_around(m, 0, win_l))
    fluxes = [_flux(*_around(m, p, win_f)) for p in lines] or [0.0]
    steps = [_level_step(*_around(m, p, win_l)) for p in lines] or [0.0]
    return SeamReport(jump, jump_limit, flux, max(fluxes), step, max(steps))


def longest_silence(
    x: np.ndarray, sr: int, threshold_db: float = -60.0, circular: bool = True
) -> float:
    """Seconds of the longest run of 5 ms windows quieter than ``threshold_db`` dBFS."""
    m = mono(x)
    win = int(0.005 * sr)
    frames = len(m) // win
    level = 20 * np.log10(
        np.sqrt(np.mean(m[: frames * win].reshape(frames, win) ** 2, axis=1)) + 1e-12
    )
    quiet = level < threshold_db
    if circular:
        quiet = np.concatenate([quiet, quiet])
    best = run = 0
    for q in quiet:
        run = run + 1 if q else 0
        best = max(best, run)
    return min(best, frames) * win / sr


# --- mix and variety (the synth's issue-12 figures) ----------------------------------------------
def _band_limited(x: np.ndarray, sr: int, lo: float, hi: float) -> np.ndarray:
    """``x`` (n,) with only [lo, hi) Hz kept (FFT mask)."""
    spec = np.fft.rfft(x)
    f = np.fft.rfftfreq(len(x), 1.0 / sr)
    spec[(f < lo) | (f >= hi)] = 0.0
    return np.fft.irfft(spec, len(x))


def bass_correlation(x: np.ndarray, sr: int, cutoff: float = 150.0) -> float:
    """Left/right Pearson correlation below ``cutoff`` Hz (1 = mono bass)."""
    left = _band_limited(np.asarray(x[:, 0], np.float64), sr, 20.0, cutoff)
    right = _band_limited(np.asarray(x[:, 1], np.float64), sr, 20.0, cutoff)
    return float(np.corrcoef(left, right)[0, 1])


def filtered_bass_correlation(x: np.ndarray, sr: int, cutoff: float = 150.0) -> float:
    """Left/right Pearson correlation below ``cutoff`` Hz through an eighth-order
    Butterworth band-pass (20 Hz up) run forward and back over the whole file, as a
    listener's tools measure it: its skirt reaches above ``cutoff``, and it rings from the
    file's first and last samples (where a loop starts and ends mid-note)."""
    sos = signal.butter(8, [20.0, cutoff], btype="bandpass", fs=sr, output="sos")
    low = signal.sosfiltfilt(sos, np.asarray(x, np.float64), axis=0)
    return float(np.corrcoef(low[:, 0], low[:, 1])[0, 1])


def loudness_lufs(x: np.ndarray, sr: int) -> float:
    import pyloudnorm

    return float(pyloudnorm.Meter(sr).integrated_loudness(np.asarray(x, np.float64)))


def mono_loss_lu(x: np.ndarray, sr: int) -> float:
    """How much quieter the track is summed to mono ((L+R)/2 on both speakers), in LU."""
    m = mono(x)
    return loudness_lufs(x, sr) - loudness_lufs(np.stack([m, m], axis=1), sr)


def hpss_balance_db(x: np.ndarray, sr: int) -> float:
    """Percussive minus harmonic energy (dB) by median-filtering HPSS (Fitzgerald 2010, as
    librosa's defaults: 2048-point STFT, hop 512, kernels of 31, soft masks of power 2): a
    spectrogram median-filtered across time keeps sustained partials, across frequency
    broadband hits; each component's energy is that of the spectrogram under its mask."""
    from scipy.ndimage import median_filter

    _, mag = _stft_mag(x, sr, 2048, 512)
    harm = median_filter(mag, size=(1, 31))
    perc = median_filter(mag, size=(31, 1))
    hp, pp = harm**2, perc**2
    total = hp + pp + 1e-20
    energy = mag**2
    e_h = float((energy * (hp / total) ** 2).sum())
    e_p = float((energy * (pp / total) ** 2).sum())
    return float(10 * np.log10(e_p / e_h))


def high_share(x: np.ndarray, sr: int, cutoff: float = 8000.0) -> float:
    """Share of the spectral energy above ``cutoff`` Hz (0..1)."""
    f, mag = _stft_mag(x, sr, 2048, 1024)
    e = (mag**2).sum(axis=1)
    return float(e[f >= cutoff].sum() / e.sum())


def short_term_loudness(
    x: np.ndarray, sr: int, window: float = 3.0, hop: float = 1.0
) -> np.ndarray:
    """Short-term loudness (LUFS, 3 s windows every second; EBU R 128's K-weighting)."""
    import pyloudnorm

    meter = pyloudnorm.Meter(sr, block_size=window)
    x = np.asarray(x, np.float64)
    n, step = int(window * sr), int(hop * sr)
    out = []
    for a in range(0, len(x) - n + 1, step):
        with np.errstate(divide="ignore"):
            out.append(meter.integrated_loudness(x[a : a + n]))
    return np.array(out)


def loudness_range(x: np.ndarray, sr: int) -> float:
    """EBU R 128 loudness range (LU): the 10th to 95th percentile of gated short-term loudness."""
    st = short_term_loudness(x, sr)
    st = st[np.isfinite(st) & (st > -70)]
    if len(st) == 0:
        return 0.0
    power = np.mean(10 ** (st / 10))
    st = st[st > 10 * np.log10(power) - 20]
    return float(np.percentile(st, 95) - np.percentile(st, 10))


def beat_chroma(x: np.ndarray, sr: int, bpm: float) -> np.ndarray:
    """Pitch class with the most energy in each beat (chroma summed over the beat)."""
    hop = 1024
    return _strongest_per_beat(chroma(x, sr, 8192, hop), sr, bpm, hop)


def _strongest_per_beat(
    c: np.ndarray, sr: int, bpm: float, hop: int, centre: float = 0.0
) -> np.ndarray:
    """The pitch class with the most of chroma ``c`` (frames x 12, ``hop`` apart) in each
    whole beat; ``centre``: frames from a frame's start to the moment it stands for."""
    beat_frames = 60.0 / bpm * sr / hop
    beats = int(len(c) // beat_frames)
    idx = ((np.arange(len(c)) + centre) / beat_frames).astype(int)
    sums = np.zeros((beats, 12))
    keep = idx < beats
    np.add.at(sums, idx[keep], c[keep])
    return sums.argmax(axis=1)


def _same_share(ca: np.ndarray, cb: np.ndarray) -> float:
    n = min(len(ca), len(cb))
    return float(np.mean(ca[:n] == cb[:n]))


def chroma_agreement(a: np.ndarray, b: np.ndarray, sr: int, bpm: float) -> float:
    """Share of beats on which two takes have the same strongest pitch class."""
    return _same_share(beat_chroma(a, sr, bpm), beat_chroma(b, sr, bpm))


def beat_chroma_cq(x: np.ndarray, sr: int, bpm: float) -> np.ndarray:
    """Pitch class with the most energy in each beat, weighed as a constant-Q chroma
    (librosa's ``chroma_cqt``) weighs it: each semitone from C1 to B7 counts its strongest
    partial's amplitude (not the sum of its bins: high notes do not outweigh low ones for
    spanning more of them), octaves summed, each frame scaled to its strongest pitch class,
    then averaged over the beat. Where the plain peak chroma above hears a tune, this one
    hears what sounds through the beat (a bass, a drone, a held tonic), as that does."""
    hop, n_fft = 1024, 16384
    c = _chroma_cq(x, sr, hop, n_fft)
    # Frame k is centred n_fft / 2 samples after its start.
    return _strongest_per_beat(c, sr, bpm, hop, 0.5 * n_fft / hop)


def _chroma_cq(x: np.ndarray, sr: int, hop: int, n_fft: int) -> np.ndarray:
    """(frames, 12) constant-Q weighed chroma (see ``beat_chroma_cq``), each frame scaled
    to its strongest pitch class."""
    f, mag = _stft_mag(mono(x), sr, n_fft, hop)
    semis = 12 * np.log2(np.maximum(f, 1e-6) / 440.0) + 69
    c = np.zeros((mag.shape[1], 12))
    for m in range(24, 108):
        rows = np.abs(semis - m) <= 0.5
        if rows.any():
            c[:, m % 12] += mag[rows].max(axis=0)
    return c / np.maximum(c.max(axis=1, keepdims=True), 1e-12)


def key_cq(x: np.ndarray, sr: int) -> tuple[int, str]:
    """``key`` on the constant-Q weighed chroma averaged over the track, as a listener's
    key finder on librosa's ``chroma_cqt`` hears it: a held bass or drone counts as the
    tune does (the peak chroma of ``key`` hears the loudest partials)."""
    return _kk_key(_chroma_cq(x, sr, 2048, 16384).mean(axis=0))


def chroma_agreement_cq(a: np.ndarray, b: np.ndarray, sr: int, bpm: float) -> float:
    """``chroma_agreement`` with the constant-Q weighing of ``beat_chroma_cq``."""
    return _same_share(beat_chroma_cq(a, sr, bpm), beat_chroma_cq(b, sr, bpm))


def onset_pattern(x: np.ndarray, sr: int, bpm: float, steps_per_beat: int = 4) -> np.ndarray:
    """Onset strength summed per grid step (sixteenths by default) over the whole track."""
    env, fr = onset_envelope(x, sr, hop=256)
    step = 60.0 / bpm / steps_per_beat * fr
    idx = ((np.arange(len(env)) + 0.5 * step) / step).astype(int)
    out = np.zeros(idx.max() + 1)
    np.add.at(out, idx, env)
    return out


def onset_correlation(
    a: np.ndarray, b: np.ndarray, sr: int, bpm: float, steps_per_beat: int = 4
) -> float:
    """Pearson correlation of two takes' onset patterns on the step grid (sixteenths: 4 a
    beat, 6 a compound meter's dotted-quarter beat)."""
    pa, pb = onset_pattern(a, sr, bpm, steps_per_beat), onset_pattern(b, sr, bpm, steps_per_beat)
    n = min(len(pa), len(pb))
    return float(np.corrcoef(pa[:n], pb[:n])[0, 1])


def onset_strength(
    x: np.ndarray, sr: int, hop: int = 512, median: bool = False, top: float = 0.0, bands: int = 128
) -> tuple[np.ndarray, float]:
    """Onset strength as the common detectors compute it (librosa's ``onset_strength``):
    the half-wave-rectified flux of log (dB, 80 dB range) band powers in 128 log-spaced
    bands, averaged over bands, not de-meaned: loud hits weigh what they weigh in the mix.
    Its frame rate too. Frame ``k`` is the change into the window centred ``k + 3`` hops
    in (the STFT's windows start at the first sample); the grids below count it as frame
    ``k + 5``, as librosa's padded, centred frames do (so the figures match its).
    ``median``: the median over bands instead (what librosa's beat tracker takes).
    ``top`` (Hz) and ``bands``: the mel bands' range and count (default: to Nyquist, 128)."""
    f, mag = _stft_mag(x, sr, 2048, hop)
    db = 10 * np.log10(_mel_matrix(f, top or sr / 2, bands) @ (mag**2) + 1e-10)
    db = np.maximum(db, db.max() - 80.0)
    flux = np.maximum(0.0, np.diff(db, axis=1))
    return (np.median(flux, axis=0) if median else flux.mean(axis=0)), sr / hop


def beat_tracker_tempo(
    x: np.ndarray, sr: int, start_bpm: float = 120.0, median: bool = True
) -> float:
    """The tempo a common beat tracker reads (librosa's ``beat_track``, whose figures this
    follows within a frame): onset strength at 22.05 kHz (the median over bands), its
    autocorrelation in 8 s Hann windows, each scaled to its zero lag, averaged, weighted
    by a log-normal prior around ``start_bpm`` (one octave wide), the best lag below
    320 BPM. The prior is why a half-time take whose beats 2 and 4 are silent is read at
    half its tempo: every tester's first measure. ``median=False``: the onset strength's
    mean over bands (``onset_strength``'s default, which a tester passes to ``beat_track``
    or ``feature.tempo``) at the file's own rate, where a sustained part's steady flux
    weighs more."""
    y = mono(x)
    if sr > 30000 and median:
        y, sr = signal.resample_poly(y, 1, 2), sr // 2
    env, fr = onset_strength(y, sr, median=median)
    win = int(8.0 * fr)
    padded = np.pad(env, win // 2, mode="linear_ramp", end_values=0.0)
    frames = np.lib.stride_tricks.sliding_window_view(padded, win)[: len(env)]
    frames = frames * signal.get_window("hann", win)
    ac = np.fft.irfft(np.abs(np.fft.rfft(frames, 2 * win, axis=1)) ** 2, axis=1)[:, :win]
    peak = np.abs(ac).max(axis=1, keepdims=True)
    ac = np.divide(ac, peak, out=np.zeros_like(ac), where=peak > 1e-12).mean(axis=0)
    lags = np.arange(1, win)
    bpms = 60.0 * fr / lags
    score = np.log1p(1e6 * np.maximum(ac[1:], 0.0))
    score -= 0.5 * np.log2(bpms / start_bpm) ** 2
    score[bpms >= 320.0] = -np.inf
    return float(bpms[int(np.argmax(score))])


def _mel_matrix(f: np.ndarray, top: float, bands: int = 128) -> np.ndarray:
    """Triangular bands evenly spaced on the mel scale (linear below 1 kHz, log above)."""
    mel = 2595.0 * np.log10(1.0 + np.array([0.0, top]) / 700.0)
    edges = 700.0 * (10 ** (np.linspace(mel[0], mel[1], bands + 2) / 2595.0) - 1.0)
    left, centre, right = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    up, down = (f - left) / (centre - left), (right - f) / (right - centre)
    return np.maximum(0.0, np.minimum(up, down)) * (2.0 / (right - left))


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    n = min(len(a), len(b))
    return float(np.corrcoef(a[:n], b[:n])[0, 1])


def strength_correlation(
    a: np.ndarray,
    b: np.ndarray,
    sr: int,
    bpm: float,
    steps_per_beat: int = 4,
    nearest: bool = False,
) -> float:
    """Correlation of two takes' onset strength summed per sixteenth of the beat (per
    ``steps_per_beat``: 3 for a compound meter's eighths; the grid from the first sample)
    over the whole track. ``nearest``: each frame counted in the step nearest to it, as
    a tester's grid that rounds onsets does, not in the step it falls in (a third of a
    beat in, or two thirds, is then the sixteenth after the beat, or before the next)."""
    out = []
    for x in (a, b):
        env, fr = onset_strength(x, sr)
        step = 60.0 / bpm / steps_per_beat * fr
        grid = (np.arange(len(env)) + 5) / step + (0.5 if nearest else 0.0)
        out.append(np.bincount(grid.astype(int), env))
    return _corr(*out)


def bar_onset_correlation(
    a: np.ndarray,
    b: np.ndarray,
    sr: int,
    bpm: float,
    beats_per_bar: int,
    compound: bool = False,
    nearest: bool = False,
) -> float:
    """Correlation of two takes' onset strength folded onto one bar: its mean in each
    sixteenth of the bar (each twelfth of a compound meter's dotted-quarter beat): the
    rhythm a listener hears repeat, bar after bar. ``nearest``: see
    ``strength_correlation``."""
    bins = beats_per_bar * (12 if compound else 4)
    out = []
    for x in (a, b):
        env, fr = onset_strength(x, sr)
        bar = 60.0 / bpm * beats_per_bar * fr
        shift = 0.5 / bins if nearest else 0.0
        idx = ((((np.arange(len(env)) + 5) / bar + shift) % 1.0) * bins).astype(int)
        out.append(np.bincount(idx, env, bins) / np.maximum(1, np.bincount(idx, None, bins)))
    return _corr(*out)


def low_accent_profile(x: np.ndarray, sr: int, bpm: float, beats_per_bar: int) -> np.ndarray:
    """The low band's accent on each beat of the bar, the strongest 1: the onset strength
    below 200 Hz (bass and low drums, 32 mel bands, as librosa's ``onset_strength(fmax=200)``)
    at its peak within 35 ms of each beat (the grid from the first sample), averaged per
    beat of the bar. A waltz's oom-pah-pah puts it on the downbeat (all eight 3/4 pieces
    rendered through a SoundFont, and all eight 6/8 ones), but alone it does not find the
    bar line in real 4/4 music: on the Planet Blupi recordings cut at a written downbeat
    it peaks there on 8 of 40 excerpts (beat 3's bass as hard as beat 1's, a backbeat's
    snare with its body below 200 Hz); see ``downbeat_profile``."""
    env, fr = onset_strength(mono(x), sr, top=200.0, bands=32)
    per = 60.0 / bpm * fr
    width = int(0.035 * fr)
    at = np.arange(0.0, len(env) - per, per)
    # Frame k's flux is at frame k + 5 of a centred analysis (see ``onset_strength``).
    spans = [(max(int(b) - 5 - width, 0), max(int(b) - 5 + width + 1, 1)) for b in at]
    peaks = np.array([env[a:b].max() for a, b in spans])
    bars = len(peaks) // beats_per_bar
    profile = peaks[: bars * beats_per_bar].reshape(bars, beats_per_bar).mean(axis=0)
    return profile / max(float(profile.max()), 1e-12)


def chord_change_profile(x: np.ndarray, sr: int, bpm: float, beats_per_bar: int) -> np.ndarray:
    """How much the harmony changes across each beat of the bar, the most 1: one minus the
    cosine of the (peak) chroma of the half bar before the beat and the half bar after,
    averaged per beat of the bar (beats without a whole half bar on both sides skipped;
    the grid from the first sample). Chords change on the bar line: on the Planet Blupi
    recordings cut at a written downbeat this peaks there on all 40 excerpts."""
    hop, n_fft = 1024, 4096
    c = chroma(x, sr, n_fft, hop)  # frame k: samples from k * hop, centred n_fft / 2 in
    per = 60.0 / bpm * sr / hop
    half = round(per * beats_per_bar / 2)
    unit = c / np.maximum(np.linalg.norm(c, axis=1, keepdims=True), 1e-12)
    beats = int((len(c) + n_fft / (2 * hop)) // per)
    change = np.full(beats, np.nan)
    for j in range(beats):
        k = round(j * per - n_fft / (2 * hop))  # the first frame centred after the beat
        if k - half >= 0 and k + half <= len(c):
            before, after = unit[k - half : k].sum(axis=0), unit[k : k + half].sum(axis=0)
            cos = before @ after / max(np.linalg.norm(before) * np.linalg.norm(after), 1e-12)
            change[j] = 1.0 - float(cos)
    bars = beats // beats_per_bar
    folded = change[: bars * beats_per_bar].reshape(bars, beats_per_bar)
    with np.errstate(invalid="ignore"):
        profile = np.nan_to_num(np.nanmean(folded, axis=0))
    return profile / max(float(profile.max()), 1e-12)


def downbeat_profile(x: np.ndarray, sr: int, bpm: float, beats_per_bar: int) -> np.ndarray:
    """What a listener counts "one" by, per beat of the bar, the strongest 1: the chord
    change across the beat (``chord_change_profile``) and, at half its weight, the low
    band's accent (``low_accent_profile``: where the bass and the low drum land hardest),
    each scaled to its strongest beat. The bar's heard downbeat is the strongest
    (``heard_downbeat``). On real music (tests/test_audio_measures_corpus.py): the written
    downbeat of 39 of 40 Planet Blupi excerpts and of 23 of 24 pieces in 3/4, 4/4 and 6/8
    rendered through a SoundFont; the low band alone found 8 of the 40, the harmony alone
    40 but 22 of the 24 (a 6/8 piece whose chords change every bar and on its second beat
    alike)."""
    change = chord_change_profile(x, sr, bpm, beats_per_bar)
    low = low_accent_profile(x, sr, bpm, beats_per_bar)
    profile = change + 0.5 * low
    return profile / max(float(profile.max()), 1e-12)


def heard_downbeat(x: np.ndarray, sr: int, bpm: float, beats_per_bar: int) -> int:
    """The beat of the bar (0: the written downbeat) heard as "one" (``downbeat_profile``)."""
    return int(np.argmax(downbeat_profile(x, sr, bpm, beats_per_bar)))


def three_ratio(x: np.ndarray, sr: int, bpm: float) -> float:
    """How the beat divides: the onset strength's third harmonic over the beat (its
    strength at the beat's thirds, against its quarters and halves) over the larger of its
    second and fourth, > 1 when the beat divides in three. An attack at a beat's eighth
    (0, 1/3, 2/3 of a compound beat) adds to the third harmonic, one at a sixteenth
    between them (1/6, 1/2, 5/6) takes from it: a beat and a sixteenth pickup alone read
    as a beat in two. (A judge's measure of the beat heard in three, librosa's
    ``onset_strength`` at a hop of 128 folded on the beat; ``triplet_ratio`` compares
    the strength near those points only.)"""
    hop = 128
    env, fr = onset_envelope(x, sr, hop=hop)
    phase = ((np.arange(len(env)) + 1 + 1024 / hop) / (60.0 / bpm * fr)) % 1.0
    e = env - env.mean()
    h = {k: abs(np.sum(e * np.exp(-2j * np.pi * k * phase))) for k in (2, 3, 4)}
    return float(h[3] / max(h[2], h[4], 1e-12))


def triplet_ratio(x: np.ndarray, sr: int, bpm: float) -> float:
    """Onset strength at a beat's thirds (compound meters' eighths) over that at its
    quarters (simple meters' sixteenths and eighths): > 1 when the beat divides in three."""
    hop = 128
    env, fr = onset_envelope(x, sr, hop=hop)
    # Frame k's flux belongs to the window centred (k + 1) hops + half a window in.
    phase = ((np.arange(len(env)) + 1 + 1024 / hop) / (60.0 / bpm * fr)) % 1.0

    def at(p: float) -> float:
        return float(env[np.abs((phase - p + 0.5) % 1.0 - 0.5) < 0.04].mean())

    return (at(1 / 3) + at(2 / 3)) / 2 / max((at(0.25) + at(0.5) + at(0.75)) / 3, 1e-12)
