"""The real-music corpus: Debian's game music, cut into excerpts at test time (never committed).

Ground truth comes from ``planetblupi-music-midi``: the same pieces as the recordings in
``planetblupi-music-ogg``, each MIDI with one tempo and 4/4 (read from the file). The
recordings start at the MIDI's first note (the MIDI's lead-in before it, 0 to 60 ms, is not
in the recording): checked here per excerpt, the pitches (chroma against the MIDI's
sounding notes) saying which beat and the MIDI's note-ons against the recording's onsets
saying where to a few ms; an excerpt where the recording drifted from the MIDI would be
left out of the ground truth rather than trusted (none of the forty does: all are within
6 ms).

``hyperrogue-music`` and ``drascula-music`` (no MIDI) serve for loops and seams.

Missing packages: ``require_corpus()`` skips the test, or fails it when
``SEGUE_REQUIRE_SERVICES=1`` (CI installs them: see ``.ci/run``).
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
import soundfile as sf

BLUPI = Path("/usr/share/planetblupi/music")
HYPERROGUE = Path("/usr/share/hyperrogue/music")
DRASCULA = Path("/usr/share/scummvm/drascula/audio")
PACKAGES = "planetblupi-music-ogg planetblupi-music-midi hyperrogue-music drascula-music"
# Excerpts: (song number, start in s); starts and middles of the ten Planet Blupi pieces.
EXCERPT_STARTS = (0.0, 95.0, 250.0, 430.0)
EXCERPT_S = 30.0
# The onset envelope below peaks this long after a note-on (measured: 10-15 ms on all ten).
ENVELOPE_DELAY_S = 0.012
# An excerpt whose alignment with the MIDI is further than this from the MIDI's lead-in is
# left out (the recording drifted from the MIDI there).
ALIGN_TOLERANCE_S = 0.012


def corpus_missing() -> str | None:
    """Why the corpus cannot be used here, or None."""
    for path in (BLUPI / "music000.ogg", BLUPI / "music000.mid", HYPERROGUE, DRASCULA):
        if not path.exists():
            return f"{path} missing: apt-get install {PACKAGES}"
    return None


def require_corpus() -> None:
    """Skip the calling test without the corpus; in CI (SEGUE_REQUIRE_SERVICES=1) fail it."""
    import pytest

    reason = corpus_missing()
    if reason is None:
        return
    if os.environ.get("SEGUE_REQUIRE_SERVICES", "") == "1":
        pytest.fail(f"{reason} (required: SEGUE_REQUIRE_SERVICES=1)")
    pytest.skip(reason)


def read(path: Path, start_s: float = 0.0, seconds: float | None = None) -> tuple[np.ndarray, int]:
    """``seconds`` of ``path`` from ``start_s`` (all of it when None): float32 (frames, ch)."""
    with sf.SoundFile(str(path)) as f:
        sr = f.samplerate
        f.seek(min(round(start_s * sr), f.frames))
        frames = -1 if seconds is None else round(seconds * sr)
        return f.read(frames, dtype="float32", always_2d=True), sr


@dataclass(frozen=True)
class Midi:
    bpm: float
    beats_per_bar: int
    lead_in_s: float  # the MIDI's first note-on: the recording starts there
    # Every note of music004-009 sits 20 ticks (a tenth of a beat) after the MIDI's grid:
    # the notated beats are that much later than the MIDI's beat lines. The displacement
    # is the most common note-on position on the sixteenth-note grid.
    displacement_s: float
    onsets: np.ndarray  # note-on times (s, MIDI clock) and velocities: shape (n, 2)
    notes: np.ndarray  # pitched notes: start, end (s, MIDI clock), pitch, velocity: (n, 4)


@cache
def midi(song: int) -> Midi:
    import mido

    m = mido.MidiFile(str(BLUPI / f"music{song:03d}.mid"))
    tempos: set[float] = set()
    meter = (4, 4)
    sixteenth = m.ticks_per_beat // 4
    positions: Counter[int] = Counter()
    ticks = []
    notes = []
    for track in m.tracks:  # per track in ticks: far faster than mido's merged playback
        tick = 0
        sounding: dict[tuple[int, int], tuple[int, int]] = {}
        for msg in track:
            tick += msg.time
            if msg.type == "set_tempo":
                tempos.add(round(mido.tempo2bpm(msg.tempo), 6))
            elif msg.type == "time_signature":
                meter = (msg.numerator, msg.denominator)
            elif msg.type == "note_on" and msg.velocity > 0:
                positions[tick % sixteenth] += 1
                ticks.append((tick, msg.velocity))
                if msg.channel != 9:  # drums have no pitch class
                    sounding[(msg.channel, msg.note)] = (tick, msg.velocity)
            elif msg.type in ("note_on", "note_off") and (msg.channel, msg.note) in sounding:
                start, velocity = sounding.pop((msg.channel, msg.note))
                notes.append((start, tick, msg.note, velocity))
    if len(tempos) != 1 or meter[1] != 4:
        raise ValueError(f"music{song:03d}.mid: one tempo and n/4 expected")
    tick_s = 60.0 / next(iter(tempos)) / m.ticks_per_beat
    arr = np.array(sorted(ticks), dtype=np.float64)
    arr[:, 0] *= tick_s
    pitched = np.array(sorted(notes), dtype=np.float64).reshape(-1, 4)
    pitched[:, :2] *= tick_s
    bpm = tempos.pop()
    displacement = positions.most_common(1)[0][0] / m.ticks_per_beat * 60.0 / bpm
    return Midi(bpm, meter[0], float(arr[0, 0]), displacement, arr, pitched)


def _onset_envelope(x: np.ndarray, sr: int, hop: int) -> np.ndarray:
    mono = x.mean(axis=1)
    frames = np.lib.stride_tricks.sliding_window_view(np.pad(mono, (1024, 1024)), 2048)[::hop]
    logmag = np.log1p(100 * np.abs(np.fft.rfft(frames * np.hanning(2048), axis=1)))
    return np.maximum(np.diff(logmag, axis=0, prepend=logmag[:1]), 0).sum(axis=1)


def _chroma_lag_s(x: np.ndarray, sr: int, m: Midi, start_s: float, seconds: float) -> float:
    """MIDI time minus recording time beyond the MIDI's lead-in (±1 s), from the pitches:
    the recording's chroma against the MIDI's sounding notes. Coarse (23 ms frames; notes
    ring past their note-off: 20 to 70 ms early, 160 ms in the middle of music002) but
    never a beat off, as onsets alone can be in repetitive music."""
    hop, size = 1024, 4096
    rate = sr / hop
    mono = np.pad(x.mean(axis=1), (size // 2, size // 2))
    frames = np.lib.stride_tricks.sliding_window_view(mono, size)[::hop]
    mag = np.abs(np.fft.rfft(frames * np.hanning(size), axis=1))
    freqs = np.fft.rfftfreq(size, 1.0 / sr)
    tonal = (freqs >= 60.0) & (freqs <= 4000.0)
    pitch = np.rint(12 * np.log2(freqs[tonal] / 440.0) + 69).astype(int) % 12
    rec = np.zeros((frames.shape[0], 12))
    for pc in range(12):
        rec[:, pc] = mag[:, tonal][:, pitch == pc].sum(axis=1)
    rec = rec / np.maximum(rec.sum(axis=1, keepdims=True), 1e-12)
    pad = round(rate)
    ref = np.zeros((rec.shape[0] + 2 * pad, 12))
    # Reference frame j is MIDI time start_s - 1 s + j / rate (less the MIDI's lead-in:
    # recording time 0 is the MIDI's first note).
    origin = start_s + m.lead_in_s - pad / rate
    for start, end, note, velocity in m.notes:
        a = int(np.floor((start - origin) * rate))
        b = int(np.ceil((end - origin) * rate))
        if b > 0 and a < ref.shape[0]:
            ref[max(a, 0) : min(max(b, a + 1), ref.shape[0]), int(note) % 12] += velocity
    ref = ref / np.maximum(ref.sum(axis=1, keepdims=True), 1e-12)
    rec -= rec.mean(axis=0)
    n = rec.shape[0]
    scores = [
        float((rec * (ref[j : j + n] - ref[j : j + n].mean(axis=0))).sum())
        for j in range(2 * pad + 1)
    ]
    return float((int(np.argmax(scores)) - pad) / rate)


def alignment_s(song: int, start_s: float, seconds: float = EXCERPT_S) -> float:
    """MIDI time minus recording time at ``start_s`` (the MIDI's lead-in when aligned).

    Onsets alone cannot tell: in repetitive music the MIDI's note-ons match the
    recording's onsets a beat or half a beat away about as well as in place (and better
    on some excerpts, which is how ten of forty once looked "drifted"). The pitches decide
    which beat (``_chroma_lag_s``, coarse); the note-ons within a quarter beat of the
    lead-in give the alignment to a few ms. A recording that drifted shows as a pitch lag
    of half a beat or more, or as onsets that peak away from the lead-in."""
    x, sr = read(BLUPI / f"music{song:03d}.ogg", start_s, seconds)
    m = midi(song)
    coarse = _chroma_lag_s(x, sr, m, start_s, seconds)
    if abs(coarse) >= 30.0 / m.bpm:
        return m.lead_in_s + coarse
    hop = 256
    env = _onset_envelope(x, sr, hop)
    rate = sr / hop
    # Recording time t is MIDI time t + lead_in - lag; look at lags around the song's.
    sel = (m.onsets[:, 0] >= start_s - 1.5) & (m.onsets[:, 0] < start_s + seconds + 1.5)
    imp = np.zeros(env.size + 2 * round(1.5 * rate))
    idx = np.rint((m.onsets[sel, 0] - start_s + 1.5) * rate).astype(int)
    ok = (idx >= 0) & (idx < imp.size)
    np.add.at(imp, idx[ok], m.onsets[sel, 1][ok])
    pad = round(1.5 * rate)
    lags = np.arange(-round(rate), round(rate) + 1)
    lags = lags[np.abs(lags / rate - m.lead_in_s) <= 15.0 / m.bpm]
    scores = [float(env @ imp[pad + lag : pad + lag + env.size]) for lag in lags]
    return float(lags[int(np.argmax(scores))] / rate)


@dataclass(frozen=True)
class Excerpt:
    name: str
    path: Path
    start_s: float
    seconds: float
    bpm: float
    beats_per_bar: int
    beats: np.ndarray  # beat times in the excerpt (s)
    downbeats: np.ndarray

    def load(self) -> tuple[np.ndarray, int]:
        return read(self.path, self.start_s, self.seconds)


@cache
def excerpt(song: int, start_s: float, seconds: float = EXCERPT_S) -> Excerpt | None:
    """The excerpt of Planet Blupi piece ``song`` from ``start_s``, with its beats and
    downbeats from the MIDI; None where the recording is not aligned with the MIDI."""
    m = midi(song)
    drift = alignment_s(song, start_s, seconds) - m.lead_in_s - ENVELOPE_DELAY_S
    if abs(drift) > ALIGN_TOLERANCE_S:
        return None
    beat = 60.0 / m.bpm
    # Notated beat k is at k * beat + displacement in the MIDI; the recording starts at
    # the MIDI's first note.
    shift = m.displacement_s - m.lead_in_s - start_s
    k = np.arange(np.floor(-shift / beat), (seconds - shift) / beat + 1)
    times = k * beat + shift
    keep = (times >= 0) & (times < seconds)
    return Excerpt(
        name=f"blupi{song:03d}@{start_s:g}",
        path=BLUPI / f"music{song:03d}.ogg",
        start_s=start_s,
        seconds=seconds,
        bpm=m.bpm,
        beats_per_bar=m.beats_per_bar,
        beats=times[keep],
        downbeats=times[keep & (k % m.beats_per_bar == 0)],
    )


def excerpts(seconds: float = EXCERPT_S) -> list[Excerpt]:
    """All ground-truth excerpts (starts and middles) whose recording is aligned with the MIDI."""
    found = (excerpt(song, start, seconds) for song in range(10) for start in EXCERPT_STARTS)
    return [e for e in found if e is not None]


def songs() -> list[Path]:
    """Whole songs with an intro and an ending, for loop carving (no ground truth)."""
    return sorted(HYPERROGUE.glob("*.ogg")) + sorted(DRASCULA.glob("track*.ogg"))


def f_measure(estimated: np.ndarray, reference: np.ndarray, window: float = 0.07) -> float:
    """Beat F-measure: estimated beats matched one-to-one to reference beats within ±window."""
    est, ref = np.sort(np.asarray(estimated)), np.sort(np.asarray(reference))
    if est.size == 0 or ref.size == 0:
        return 0.0
    used = np.zeros(ref.size, dtype=bool)
    hits = 0
    for t in est:
        i = int(np.searchsorted(ref, t))
        best = -1
        for j in (i - 1, i):
            usable = 0 <= j < ref.size and not used[j] and abs(ref[j] - t) <= window
            if usable and (best < 0 or abs(ref[j] - t) < abs(ref[best] - t)):
                best = j
        if best >= 0:
            used[best] = True
            hits += 1
    precision, recall = hits / est.size, hits / ref.size
    return 0.0 if hits == 0 else 2 * precision * recall / (precision + recall)
