"""Pieces in 3/4, 4/4 and 6/8 with known beats and bar lines, rendered through a SoundFont.

Each piece is written as MIDI by construction (``piece``): a chord progression changing
every bar, a bass on the bar's strong beats, an accompaniment figure of the meter (a waltz's
bass-chord-chord, a jig's two groups of three eighths, a march's bass-chord pairs), a
melody on the beat grid and, for some, drums; instruments, key, tempo and figures vary
with the seed. FluidSynth renders it with Debian's FluidR3 General MIDI SoundFont: real
sampled instruments, so the meter must be heard, not read. The ground truth (meter, beats,
bar lines) is the MIDI's own.

Needs the Debian packages ``fluidsynth`` and ``fluid-soundfont-gm`` (``.ci/run``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
import soundfile as sf

SOUNDFONT = Path("/usr/share/sounds/sf2/FluidR3_GM.sf2")
PACKAGES = "fluidsynth fluid-soundfont-gm"
METERS = ("3/4", "4/4", "6/8")
TICKS = 480  # per quarter note
SR = 44100

# Diatonic progressions (scale degrees of a major key), one chord a bar.
PROGRESSIONS = ([0, 5, 3, 4], [0, 3, 4, 0], [0, 4, 5, 3], [5, 3, 0, 4], [0, 2, 3, 4])
MAJOR = (0, 2, 4, 5, 7, 9, 11)
# General MIDI programs: (chords, bass, melody).
ENSEMBLES = ((0, 32, 73), (48, 43, 40), (4, 33, 71), (24, 32, 0), (46, 42, 68), (19, 58, 56))


def renderer_missing() -> str | None:
    if shutil.which("fluidsynth") is None or not SOUNDFONT.exists():
        return f"fluidsynth or {SOUNDFONT} missing: apt-get install {PACKAGES}"
    return None


def require_renderer() -> None:
    """Skip the calling test without FluidSynth; in CI (SEGUE_REQUIRE_SERVICES=1) fail it."""
    import pytest

    reason = renderer_missing()
    if reason is None:
        return
    if os.environ.get("SEGUE_REQUIRE_SERVICES", "") == "1":
        pytest.fail(f"{reason} (required: SEGUE_REQUIRE_SERVICES=1)")
    pytest.skip(reason)


@dataclass(frozen=True)
class Piece:
    name: str
    meter: str
    bpm: float  # beats per minute: quarter notes in 3/4 and 4/4, dotted quarters in 6/8
    beats_per_bar: int  # 3, 4, or 2 (6/8)
    samples: np.ndarray  # (frames, 2) float32 at SR
    beats: np.ndarray  # s
    downbeats: np.ndarray  # s


def _chord(degree: int, key: int) -> list[int]:
    return [key + MAJOR[(degree + k) % 7] + 12 * ((degree + k) // 7) for k in (0, 2, 4)]


def piece(meter: str, seed: int, bars: int = 16) -> tuple[bytes, float, int]:
    """(MIDI file bytes, bpm, beats per bar) of a piece in ``meter``."""
    import mido

    rng = np.random.default_rng(seed)
    key = 48 + int(rng.integers(0, 12))
    chords_prog, bass_prog, melody_prog = ENSEMBLES[int(rng.integers(0, len(ENSEMBLES)))]
    progression = PROGRESSIONS[int(rng.integers(0, len(PROGRESSIONS)))]
    drums = bool(rng.integers(0, 2))
    eighth = TICKS // 2
    if meter == "6/8":
        bpm = float(rng.uniform(60, 100))  # dotted quarters
        beat_ticks, bpb, unit = 3 * eighth, 2, eighth
        quarter_bpm = bpm * 1.5
    else:
        bpm = float(rng.uniform(80, 150))
        beat_ticks, bpb, unit = TICKS, int(meter[0]), eighth
        quarter_bpm = bpm
    bar = beat_ticks * bpb
    events: list[tuple[int, int, int, int, int]] = []  # tick, channel, note, velocity, length

    def note(tick: int, ch: int, n: int, vel: int, length: int) -> None:
        events.append((tick, ch, n, vel, length))

    for b in range(bars):
        t0 = b * bar
        chord = _chord(progression[b % len(progression)], key)
        root = chord[0] - 12
        if meter == "3/4":  # waltz: bass on 1, chord on 2 and 3
            note(t0, 1, root, 100, TICKS)
            for k in (1, 2):
                for n in chord:
                    note(t0 + k * TICKS, 0, n, 70, TICKS - 40)
        elif meter == "4/4":  # bass on 1 and 3, chord on 2 and 4, eighths in the chords
            note(t0, 1, root, 100, 2 * TICKS - 40)
            note(t0 + 2 * TICKS, 1, root + 7, 90, 2 * TICKS - 40)
            for k in range(8):
                for n in chord:
                    note(t0 + k * eighth, 0, n, 72 if k % 2 else 58, eighth - 30)
        else:  # 6/8: bass on 1 and 4, arpeggio of three eighths per beat
            note(t0, 1, root, 100, beat_ticks - 40)
            note(t0 + beat_ticks, 1, root + 7, 88, beat_ticks - 40)
            for k in range(6):
                n = chord[k % 3] + (12 if k % 3 == 2 else 0)
                note(t0 + k * eighth, 0, n, 76 if k % 3 == 0 else 56, eighth - 20)
        # Melody: a chord tone on each beat, sometimes a passing note between.
        for k in range(bpb):
            t = t0 + k * beat_ticks
            n = int(rng.choice(chord)) + 12
            length = beat_ticks if rng.random() < 0.6 else beat_ticks // (3 if bpb == 2 else 2)
            note(t, 2, n, 92 if k == 0 else 78, length - 20)
            if length < beat_ticks:
                note(
                    t + length, 2, n + int(rng.choice([-2, -1, 1, 2])), 70, beat_ticks - length - 20
                )
        if drums:  # channel 9: kick on the bar, a lighter sound on the other beats
            note(t0, 9, 36, 110, unit)
            for k in range(1, bpb):
                note(t0 + k * beat_ticks, 9, 38 if meter == "4/4" and k % 2 else 42, 70, unit)
            if meter == "6/8":
                for k in range(6):
                    note(t0 + k * eighth, 9, 42, 50, unit // 2)
    mid = mido.MidiFile(ticks_per_beat=TICKS)
    track = mido.MidiTrack()
    mid.tracks.append(track)
    num, den = (6, 8) if meter == "6/8" else (int(meter[0]), 4)
    track.append(mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(quarter_bpm), time=0))
    track.append(mido.MetaMessage("time_signature", numerator=num, denominator=den, time=0))
    for ch, prog in ((0, chords_prog), (1, bass_prog), (2, melody_prog)):
        track.append(mido.Message("program_change", channel=ch, program=prog, time=0))
    msgs = []
    for tick, ch, n, vel, length in events:
        msgs.append((tick, 1, ch, n, vel))
        msgs.append((tick + max(length, 10), 0, ch, n, 0))
    msgs.sort(key=lambda m: (m[0], m[1]))
    now = 0
    for tick, on, ch, n, vel in msgs:
        kind = "note_on" if on else "note_off"
        track.append(mido.Message(kind, channel=ch, note=n, velocity=vel, time=tick - now))
        now = tick
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "piece.mid"
        mid.save(str(path))
        return path.read_bytes(), bpm, bpb


@cache
def rendered(meter: str, seed: int, bars: int = 16) -> Piece:
    """``piece(meter, seed)`` rendered by FluidSynth, with its ground truth."""
    data, bpm, bpb = piece(meter, seed, bars)
    with tempfile.TemporaryDirectory() as tmp:
        mid, wav = Path(tmp) / "piece.mid", Path(tmp) / "piece.wav"
        mid.write_bytes(data)
        subprocess.run(
            [
                "fluidsynth",
                "-ni",
                "-q",
                "-g",
                "0.6",
                "-r",
                str(SR),
                "-F",
                str(wav),
                str(SOUNDFONT),
                str(mid),
            ],
            check=True,
            capture_output=True,
        )
        x, sr = sf.read(str(wav), dtype="float32", always_2d=True)
    assert sr == SR
    beat = 60.0 / bpm
    beats = np.arange(bars * bpb) * beat
    return Piece(f"{meter}#{seed}", meter, bpm, bpb, x, beats, beats[::bpb])
