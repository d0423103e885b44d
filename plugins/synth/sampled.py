"""Sampled voices: which General MIDI preset of a SoundFont plays each synth voice.

Voices a General MIDI set plays well (orchestra, keyboards, plucked and blown instruments)
are sampled; the synth's own timbres (synth leads and basses, chiptune, arpeggiator
plucks, drones) and drums tuned to the key stay numpy. Each sampled voice is levelled to
the numpy voice it replaces (the same note's RMS), so the arrangement's balance holds
whichever SoundFont is used; the numpy voice plays when a preset or key is missing.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np

from segue.core.memory import trim
from segue.plugins.synth.drums import make_sound
from segue.plugins.synth.soundfont import (
    Preset,
    SoundFont,
    load,
    play,
    release_curve,
    release_s,
    sustain,
)

# voice -> (bank, program) in General MIDI.
GM_PROGRAMS: dict[str, tuple[int, int]] = {
    "harp": (0, 46),
    "guitar": (0, 24),
    "koto": (0, 107),
    "pizz": (0, 45),
    "pluckbass": (0, 32),
    "piano": (0, 0),
    "epiano": (0, 4),
    "organ": (0, 19),
    "bells": (0, 9),
    "musicbox": (0, 10),
    "marimba": (0, 12),
    "pad": (0, 89),
    "choir": (0, 52),
    "strings": (0, 48),
    "cello": (0, 42),
    "brass": (0, 61),
    "flute": (0, 73),
    "bass": (0, 32),
    "clarinet": (0, 71),
    "oboe": (0, 68),
    "piccolo": (0, 72),
    "dulcimer": (0, 15),
    "bouzouki": (0, 25),
    "mandolin": (0, 25),  # General MIDI has none: the steel-string guitar, high and picked
    "timp": (0, 47),
    "banjo": (0, 105),
    "sitar": (0, 104),
    "shamisen": (0, 106),
    "harpsichord": (0, 6),
    "accordion": (0, 21),
    "harmonica": (0, 22),
    "bagpipe": (0, 109),
    "sax": (0, 65),
    "bassoon": (0, 70),
    "shakuhachi": (0, 77),
    "panflute": (0, 75),
    "recorder": (0, 74),
    "ocarina": (0, 79),
    "celesta": (0, 8),
    "vibraphone": (0, 11),
    "xylophone": (0, 13),
    "kalimba": (0, 108),
    "steeldrum": (0, 114),
    "viola": (0, 41),
    "folkfiddle": (0, 110),
    "violin": (0, 40),
    "contrabass": (0, 43),
    "trumpet": (0, 56),
    "horn": (0, 60),
    "trombone": (0, 57),
    "tuba": (0, 58),
}
# Unpitched drums from the General MIDI percussion kit (bank 128): drum -> key.
GM_DRUMS: dict[str, int] = {
    "hat": 42,
    "ohat": 46,
    "crash": 49,
    "ride": 51,
    "shaker": 70,
    "clap": 39,
    "rim": 37,
    "snare": 38,
    "woodblock": 76,
    "tambourine": 54,
    "sleighbells": 83,  # the jingle bell (General MIDI 2, GS; both SoundFonts have it)
    "conga": 63,
    "bongo": 60,
    "castanets": 85,
    "triangle": 81,
    "cowbell": 56,
}
PITCHED_DRUMS = {"timp": "timp"}
# The kit's sounds the numpy drums also make (``drums.make_sound``): their reference.
NUMPY_DRUMS = set(GM_DRUMS) - {"ride"}
# Cymbals, jingles, shakers and a snare's wires are their air: a kit whose sample of one
# keeps under AIR_SHARE of the numpy drum's share of energy above 8 kHz lacks that timbre
# (a small SoundFont's band-limited samples: TimGM6mb's crash, open hat, tambourine and
# snare keep 0-6 % of it, FluidR3's cymbals, jingles and shaker 18-270 %), and the numpy
# drum plays it. A sound without a numpy drum (the ride) must keep MIN_AIR of its energy
# above 8 kHz.
AIRY_DRUMS = {
    *("hat", "ohat", "crash", "ride", "shaker", "tambourine", "triangle", "snare", "sleighbells")
}
AIR_SHARE = 0.15
MIN_AIR = 0.05
# Each velocity bucket is one cached rendering; 8 steps keep the timbre's change audible.
VELOCITY_STEPS = 8
# Room for each part: a low cut (Hz) under the voices that accompany, so the bottom octave
# is the bass's and the drums'.
LOW_CUT = {
    "strings": 110.0,
    "pad": 120.0,
    "choir": 140.0,
    "brass": 90.0,
    "organ": 90.0,
    "piano": 70.0,
    "epiano": 90.0,
    "harp": 90.0,
    "guitar": 90.0,
    "marimba": 110.0,
}
# Struck metal's top: a gentle low pass (Hz, second order) on these voices' samples (a
# glockenspiel's tune kept 4-9 % of a mood's energy above 8 kHz, temple bells 4-11 %, where
# game music on record keeps 0.08-0.82 %: piercing; now 0.1-0.8 %). (Not the celesta's:
# cut, a lullaby's celesta tune kept too little top for ``effects``' air to lift.)
TOP_CUT = {"bells": 5000.0}
MAX_RELEASE_S = 0.8  # longer releases are cut: the reverb carries the rest
_levels: dict[tuple[str, str, int], float] = {}
_UNMADE = object()  # a drum hit not made yet (a made one may be None: the numpy drum's)
_levels_lock = threading.Lock()


def _struck_top(voice: str, body: np.ndarray | None, sr: int) -> np.ndarray | None:
    """``body`` (2, n) through ``TOP_CUT``'s low pass for ``voice`` (the same when none)."""
    top = TOP_CUT.get(voice)
    if body is None or top is None or top >= 0.45 * sr:
        return body
    from scipy import signal  # (imported here: only a render pays for it)

    sos = signal.butter(2, top, fs=sr, output="sos")
    return signal.sosfilt(sos, body, axis=1).astype(body.dtype)


def _step(velocity: float) -> int:
    """The velocity step (1..VELOCITY_STEPS) a note's velocity (0..1) renders at."""
    return max(1, min(VELOCITY_STEPS, round(velocity * VELOCITY_STEPS)))


def _top_cut(x: np.ndarray) -> np.ndarray:
    """``x`` (channels, n) through a gentle top cut, in place: air, not fizz (-1.4 dB at
    8 kHz, -3 dB at 11 kHz, a zero at the Nyquist) keeps cymbals and jingles bright without
    sample-to-sample spikes."""
    x[:, 1:] += x[:, :-1]
    return x


def _air(x: np.ndarray, sr: int) -> float:
    """The share of ``x``'s energy above 8 kHz (0..1)."""
    power = np.abs(np.fft.rfft(x)) ** 2
    total = float(power.sum())
    f = np.fft.rfftfreq(len(x), 1.0 / sr)
    return float(power[f >= 8000.0].sum()) / total if total > 0 else 0.0


class Sampled:
    """The sampled voices of one render: a SoundFont, level matching and a note cache.

    The notes (each pitch and velocity step of a voice, held as long as asked so far), the
    drum hits and the zones' signals are kept with the SoundFont (``SoundFont.signals``),
    for every render of the process: the tracks of a pregeneration share their voices, and
    a later render makes only what no earlier one did. What is made does not depend on
    what was made before (see ``soundfont._zone_signal``), so a render is the same first
    or later in a process."""

    def __init__(self, sf: SoundFont, sr: int) -> None:
        self.sf = sf
        self.sr = sr
        self.notes = sf.signals  # ("note" | "drum", sample rate, ...) -> (2, n) float32
        self.ramps: dict[tuple[int, float], np.ndarray] = {}
        self.releases: dict[tuple[str, int], float] = {}
        self.zones = sf.signals  # soundfont.sustain's cache: each zone's signal per pitch
        self.lengths: dict[tuple, int] = {}  # reserved: the longest notes of this render
        self.pitches: dict[tuple, float] = {}  # reserved: the pitch each is first asked at

    def release(self) -> None:
        """Drop what the renders of this SoundFont share (rendered notes, drum hits, zone
        signals, decoded samples: 0.1-0.3 GB): a later note is made again, the same."""
        self.sf.forget()
        trim()  # the notes were the heap's: give their pages back

    @classmethod
    def open(cls, path: Path | str | None, sr: int) -> Sampled | None:
        return cls(load(str(path)), sr) if path else None

    def has(self, voice: str) -> bool:
        bp = GM_PROGRAMS.get(voice)
        return bp is not None and self.sf.preset(*bp) is not None

    def level(self, voice: str, reference: Callable[[], float]) -> float:
        """The gain that gives this voice's middle note the RMS ``reference()`` returns
        (cached per file and voice: ``reference`` runs once per process)."""
        key = (self.sf.digest, voice, self.sr)
        got = _levels.get(key)
        if got is None:
            from segue.plugins.synth.instruments import VOICES

            v = VOICES[voice]
            mid = (v.low + v.high) // 2
            x = play(self.sf, self.sf.preset(*GM_PROGRAMS[voice]), mid, 0.5, 0.8, self.sr)
            rms = float(np.sqrt(np.mean(np.square(x[:, : self.sr // 2])))) if x is not None else 0
            got = reference() / rms if rms > 1e-6 else 0.0
            with _levels_lock:
                _levels[key] = got
        return got

    def _release(self, voice: str, preset: Preset, pitch: float) -> float:
        rel = self.releases.get((voice, round(pitch)))
        if rel is None:
            rel = self.releases[(voice, round(pitch))] = release_s(
                preset, round(pitch), MAX_RELEASE_S
            )
        return rel

    def reserve(self, voice: str, pitch: float, dur: float, velocity: float) -> None:
        """Say that ``note`` will be asked for this note: each pitch and velocity step is
        then rendered once, as long as its longest note, instead of growing as longer notes
        come."""
        bp = GM_PROGRAMS.get(voice)
        preset = self.sf.preset(*bp) if bp else None
        if preset is None:
            return
        rel = self._release(voice, preset, pitch)
        n = max(1, round(dur * self.sr)) + max(2, round(rel * self.sr))
        key = ("note", self.sr, voice, round(pitch * 100), _step(velocity))
        if n > self.lengths.get(key, 0):
            self.lengths[key] = n
        self.pitches.setdefault(key, pitch)

    def prepare(self, reference: Callable[[str], float]) -> None:
        """Render now every note ``reserve`` was told of and none is kept for, a pitch at a
        time: each pitch's zone signals are kept only while its notes are made, not with
        the SoundFont (for the last render of a process, whose notes go after it: a
        pitch's signals took more memory than its notes). The notes ``note`` would make
        (``reference(voice)``: as ``note``'s ``reference``)."""
        by_pitch: dict[tuple[str, int], list[tuple]] = {}
        for key in self.lengths:
            if key[1] == self.sr:
                by_pitch.setdefault((key[2], key[3]), []).append(key)
        for (voice, _), keys in by_pitch.items():
            preset = self.sf.preset(*GM_PROGRAMS[voice])
            if preset is None:
                continue
            zones: dict = {}  # this pitch's signals: gone once its notes are made
            level = self.level(voice, lambda voice=voice: reference(voice))
            for key in keys:
                body = self.notes.get(key)
                n = self.lengths[key]
                if body is not None and body.shape[1] >= n:
                    continue
                cut = LOW_CUT.get(voice, 0.0)
                vq = key[4]
                pitch = self.pitches[key]
                body = sustain(
                    self.sf, preset, pitch, n, vq / VELOCITY_STEPS, self.sr, cut, zones, level
                )
                body = _struck_top(voice, body, self.sr)
                if body is not None:
                    self.notes[key] = body

    def note(
        self,
        voice: str,
        pitch: float,
        dur: float,
        velocity: float,
        reference: Callable[[], float],
    ) -> tuple[np.ndarray, int, np.ndarray] | None:
        """One note at unit level, or None to use the numpy voice: ``(values, hold,
        ramp)``, the note's (2, n) samples (a view of the cached rendering: not to be
        written), the frames it is held, and the release that multiplies the rest.

        Each (voice, pitch, velocity step) is rendered once, held as long as its longest
        note (see ``reserve``); a note is a slice of that with its own release.
        """
        bp = GM_PROGRAMS.get(voice)
        preset = self.sf.preset(*bp) if bp else None
        if preset is None:
            return None
        vq = _step(velocity)
        rel = self._release(voice, preset, pitch)
        n_hold = max(1, round(dur * self.sr))
        n_rel = max(2, round(rel * self.sr))
        key = ("note", self.sr, voice, round(pitch * 100), vq)
        body = self.notes.get(key)
        if body is None or body.shape[1] < n_hold + n_rel:
            # Grow in steps, so a loop's notes of rising lengths render a few times at most.
            n = max(
                n_hold + n_rel,
                round(1.5 * body.shape[1]) if body is not None else 0,
                self.lengths.get(key, 0),
            )
            cut = LOW_CUT.get(voice, 0.0)
            level = self.level(voice, reference)
            body = sustain(
                self.sf, preset, pitch, n, vq / VELOCITY_STEPS, self.sr, cut, self.zones, level
            )
            body = _struck_top(voice, body, self.sr)
            if body is None:
                return None
            self.notes[key] = body
        ramp = self.ramps.get((n_rel, rel))
        if ramp is None:
            ramp = self.ramps[(n_rel, rel)] = release_curve(n_rel, self.sr, rel)
        return body[:, : n_hold + n_rel], n_hold, ramp

    def _kit_hit(self, sound: str) -> np.ndarray | None:
        """The kit's hit of ``sound`` at full velocity, mono float64 (None: no kit or key)."""
        preset = self.sf.preset(128, 0)
        x = play(self.sf, preset, GM_DRUMS[sound], 0.25, 1.0, self.sr) if preset else None
        return None if x is None else x.mean(axis=0).astype(np.float64)

    def _has_air(self, sound: str) -> bool:
        """Whether the kit's sample of ``sound`` has the top an airy drum needs (judged at
        full velocity, once per sound, so every velocity of a part plays the same drum)."""
        if sound not in AIRY_DRUMS:
            return True
        key = ("air", self.sr, self.sf.digest, sound)
        got = self.notes.get(key)
        if got is None:
            x = self._kit_hit(sound)
            got = False
            if x is not None:
                share = _air(x, self.sr)
                if sound in NUMPY_DRUMS:
                    ref = _air(make_sound(sound, self.sr, 1.0, 1).astype(np.float64), self.sr)
                    got = share >= AIR_SHARE * ref
                else:
                    got = share >= MIN_AIR
            self.notes[key] = got
        return bool(got)

    def _loudness(self, sound: str) -> float:
        """The gain that gives the kit's hit of ``sound`` (peak 1, full velocity) the energy
        of the numpy drum (peak 1) it replaces, over the hit's first 0.25 s: the kit's
        levels (TimGM6mb's shaker is 5 dB under its numpy one, and FluidR3's) are the
        preset maker's, while the mix's drum levels were set on the numpy drums. Within
        -6..+9 dB, so a sample is never far from its peak level."""
        if sound not in NUMPY_DRUMS:
            return 1.0
        key = ("loudness", self.sr, self.sf.digest, sound)
        got = self.notes.get(key)
        if got is None:
            preset = self.sf.preset(128, 0)
            x = play(self.sf, preset, GM_DRUMS[sound], 0.25, 1.0, self.sr) if preset else None
            got = 1.0
            if x is not None:
                n = round(0.25 * self.sr)
                x = _top_cut(x.astype(np.float64))  # as ``drum`` plays it
                y = x.mean(axis=0) / max(float(np.max(np.abs(x))), 1e-9)
                ref = make_sound(sound, self.sr, 1.0, 1).astype(np.float64)[:n]
                e, e_ref = float(np.sum(y[:n] ** 2)), float(np.sum(ref**2))
                if e > 1e-9:
                    got = float(np.clip(np.sqrt(e_ref / e), 0.5, 2.8))
            self.notes[key] = got
        return float(got)

    def drum(
        self, sound: str, velocity: float, pitch: float = 0.0, level: bool = True
    ) -> np.ndarray | None:
        """(2, n) float32 of one drum hit from the General MIDI kit, as loud as the numpy
        drum (``_loudness``; ``level`` False: peak about 1, the preset maker's balance;
        timpani: the pitched General MIDI timpani, peak about 1), or None to use the numpy
        drum."""
        vq = _step(velocity)
        key = ("drum", self.sr, sound, vq, round(pitch), level)
        got = self.notes.get(key, _UNMADE)  # one look-up: a kit's hits repeat all track long
        if got is not _UNMADE:
            return got
        out = None
        if sound in GM_DRUMS and self._has_air(sound):
            preset = self.sf.preset(128, 0)
            if preset is not None:
                out = play(self.sf, preset, GM_DRUMS[sound], 0.25, vq / VELOCITY_STEPS, self.sr)
        elif sound in PITCHED_DRUMS and pitch:
            preset = self.sf.preset(*GM_PROGRAMS[PITCHED_DRUMS[sound]])
            if preset is not None:
                out = play(self.sf, preset, pitch, 0.8, vq / VELOCITY_STEPS, self.sr)
        if out is not None:
            out = _top_cut(out)
            peak = float(np.max(np.abs(out)))
            gain = self._loudness(sound) if level and sound in GM_DRUMS else 1.0
            out = out * np.float32(gain / peak) if peak > 1e-6 else None
        self.notes[key] = out
        return out
