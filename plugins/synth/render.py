"""From an arrangement to samples: place notes, mix, add space, fold the tail, set the level."""

from __future__ import annotations

import contextlib
import functools
import math
import mmap
import os
import signal
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from random import Random

import numpy as np
import soundfile as sf

from segue.core.request import GenerationRequest
from segue.core.seams import measure_seam
from segue.plugins.synth.arrangement import Arrangement, Note, Part
from segue.plugins.synth.composer import compose
from segue.plugins.synth.drums import DRUM_PAN, DRUM_SEND, make_sound
from segue.plugins.synth.effects import (
    add_air,
    air_gain_db,
    channel_energy,
    compress_gain,
    fold,
    limit_gain,
    mono_bass,
    scale_side,
    side_scale,
    wet,
)
from segue.plugins.synth.instruments import VOICES, Workspace, midi_hz, render_note
from segue.plugins.synth.sampled import Sampled
from segue.plugins.synth.soundfont import find_soundfont

SAMPLE_RATE = 44100
TARGET_RMS = 10 ** (-19.5 / 20)  # about -18 LUFS for a typical mix
CEILING = 10 ** (-1.5 / 20)
TAKES = 4  # renderings of a loop tried for a seam that passes the pipeline's check
_SFC_SET_ADD_PEAK_CHUNK = 0x1050
LOW_DRUMS = {"kick", "taiko", "timp", "chip_kick", "frame_lo"}
LOW_VOICE = 48  # voices that reach below C3 play in mono, in the middle
MAX_SIDE = 0.12  # side energy at most 0.12 of the middle's: a mono sum loses under 1 LU


def _pan(pan: float) -> tuple[float, float]:
    a = (pan + 1.0) * math.pi / 4
    return math.cos(a) * math.sqrt(2), math.sin(a) * math.sqrt(2)


# Where a part goes when no layer has its role's name (docs/score.md#intensity-and-layers).
STEM_ALIASES = {"arp": "harmony", "counter": "melody", "drums": "percussion"}


def stem_of(role: str, voice: str, layers: tuple[str, ...]) -> str:
    """The layer (stem) a part is rendered into: its role's name, ``drums`` for drum parts,
    an alias (arp -> harmony, counter -> melody), else the first layer."""
    if voice.startswith("drum:") and "drums" in layers:
        return "drums"
    if role in layers:
        return role
    alias = STEM_ALIASES.get(role)
    if alias in layers:
        return alias
    return layers[0]


def render_arrangement(
    arr: Arrangement,
    sr: int = SAMPLE_RATE,
    take: int = 0,
    sampled: Sampled | None = None,
    processes: int = 1,
    release: Callable[[], None] | None = None,
) -> np.ndarray:
    """The arrangement as (n, 2) float32 samples: a whole loop, or the stinger's length.

    ``take`` reseeds what a performance varies (the start phase of each note, the noise in
    plucks and drum hits), not the notes. ``sampled`` plays the voices a SoundFont has.
    ``processes``: 2 places half the parts in a forked process (where ``os.fork`` is),
    for the same samples sooner when a core is idle. ``release`` is called once every
    note is placed (what only placing needs may go: ``Sampled.release``).
    """
    return _render(arr, sr, take, None, sampled, processes, release)[0]


def render_stems(
    arr: Arrangement,
    layers: tuple[str, ...],
    sr: int = SAMPLE_RATE,
    take: int = 0,
    sampled: Sampled | None = None,
    release: Callable[[], None] | None = None,
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """The mix and one stem per layer, each (n, 2) float32; the stems sum to the mix.

    Every part goes into one stem (``stem_of``), with its own reverb and echoes; what the
    master does to the mix (stereo narrowing, bus compressor, level, limiter) is applied to
    each stem alike (the side's factor, the per-sample gains computed on the mix), and the
    lo-fi noise goes into the first stem. ``release``: see ``render_arrangement``.
    """
    return _render(arr, sr, take, layers, sampled, 1, release)  # type: ignore[return-value]


def _render(
    arr: Arrangement,
    sr: int,
    take: int,
    layers: tuple[str, ...] | None,
    sampled: Sampled | None,
    processes: int = 1,
    release: Callable[[], None] | None = None,
) -> tuple[np.ndarray, dict[str, np.ndarray] | None]:
    spb = 60.0 / arr.bpm * sr
    if arr.loop:
        length = round(arr.length_beats * spb)
    else:
        length = round((arr.length_s or arr.length_beats * 60.0 / arr.bpm) * sr)
    rt60 = 0.9 + 3.2 * arr.space
    tail = int((rt60 * 1.1 + 3.0) * sr)
    total = length + tail
    plays = [_plays_sampled(part, sampled, minor=arr.key.minor) for part in arr.parts]
    if sampled is not None:
        # Every sampled pitch (and velocity step) is rendered once, as long as its longest note:
        # told once per pitch and velocity, its longest first-come (the same reservations
        # as note by note: a part's notes repeat a few pitches and velocities many times).
        longest: dict[tuple[str, float, float], float] = {}
        for part, sampled_part in zip(arr.parts, plays, strict=True):
            if sampled_part:
                for note in part.notes:
                    key = (part.voice, note.p, note.v)
                    if note.d > longest.get(key, -1.0):
                        longest[key] = note.d
        for (voice, pitch, velocity), beats in longest.items():
            sampled.reserve(voice, pitch, beats * 60.0 / arr.bpm, velocity)
        if release is not None:  # the last render: its notes made a pitch at a time
            sampled.prepare(lambda voice: _reference_rms(sr, voice))
    if layers:
        # Each part into its layer (stem), each stem with its reverb and echoes.
        names = layers
        groups = [stem_of(p.role, p.voice, layers) for p in arr.parts]
        buses = {g: Bus(total) for g in names}
        _place(arr, sr, take, sampled, plays, total, [buses[g] for g in groups])
    else:
        # The parts in two halves, each summed apart then added (one reverb for both): so
        # a second process can place one half while this one places the other
        # (``processes``), the same samples either way. Alone, this process adds the
        # second half a window at a time (``_place_in_windows``): one Bus as long as the
        # track, not two.
        names = ("mix",)
        halves = _halves(arr)
        first = Bus(total)

        def place(*buses: Bus | None) -> None:  # each half's Bus; None: placed elsewhere
            _place(arr, sr, take, sampled, plays, total, [buses[h] for h in halves])

        if processes > 1 and 1 in halves:
            with _forked(lambda bus: place(None, bus), total) as add_other:
                place(first, None)
                add_other(first)
        else:
            place(first, None)
            second = [h == 1 for h in halves]
            _place_in_windows(arr, sr, take, sampled, plays, total, second, first)
        buses = {"mix": first}
        del first  # its sends go once the reverb has read them
    if release is not None:
        release()
    mixes = {g: b.mix for g, b in buses.items()}
    sends = {g: b.send for g, b in buses.items()}
    echoes = {g: b.echo for g, b in buses.items()}
    del buses
    beat_s = 60.0 / arr.bpm
    echo_s = beat_s * 0.75
    while echo_s < 0.25:
        echo_s *= 2
    any_echo = bool(arr.parts) and any(p.echo for p in arr.parts)
    outs = {}
    for g in names:
        mix = mixes.pop(g)
        wet(  # the sends handed over: freed once read
            sends.pop(g),
            echoes.pop(g) if any_echo else None,
            sr,
            rt60,
            arr.brightness,
            echo_s,
            0.45,
            arr.seed % 100000 + take,
            gain=0.55,
            into=mix,
        )
        if arr.loop:
            out = fold(mix, length)
        else:
            out = mix[:, :length].copy()
            fade = min(length, int(0.35 * sr))
            out[:, -fade:] *= np.cos(np.linspace(0, np.pi / 2, fade, dtype=np.float32)) ** 2
        outs[g] = out
        del mix
    # Stereo width is kept to what a mono sum keeps (the mix's side factor on every stem),
    # the bass in the middle (``effects.mono_bass``), then a light bus compressor (its gain,
    # computed on the mix, on every stem).
    out = outs[names[0]] if len(names) == 1 else np.sum(list(outs.values()), axis=0)
    side = side_scale(out, MAX_SIDE)
    for x in outs.values():
        scale_side(x, side)
        mono_bass(x, sr, circular=arr.loop)
    if arr.lofi:
        _vinyl(outs[names[0]], sr, arr.seed)
    out = outs[names[0]] if len(names) == 1 else np.sum(list(outs.values()), axis=0)
    if arr.loop and not arr.lofi:
        # A dull mix's top lifted to a record's air (``effects.AIR_TARGET``; a lo-fi mood
        # keeps its dull top): one shelf, set on the mix, on every stem alike.
        air_db = air_gain_db(out, sr)
        if air_db > 0:
            for x in outs.values():
                add_air(x, sr, air_db, circular=True)
            out = outs[names[0]] if len(names) == 1 else np.sum(list(outs.values()), axis=0)
    # The master is one gain per sample (the same on both channels), the product of the
    # compressor's, the level's and the limiter's, applied once to the mix and to each stem:
    # the level is measured from the energy per sample, the limiter from the peak per
    # sample, so no (2, n) intermediate is made.
    energy = channel_energy(out)
    comp = compress_gain(out, sr, circular=arr.loop, energy=energy)
    if comp is not None:
        energy *= comp
        energy *= comp
    rms = math.sqrt(float(np.sum(energy, dtype=np.float64)) / max(1, out.size))
    del energy
    gain = np.float32(TARGET_RMS / rms) if rms > 0 else np.float32(1.0)
    peaks = np.maximum(np.abs(out[0]), np.abs(out[1]))
    level = comp * gain if comp is not None else np.full(length, gain, dtype=np.float32)
    peaks *= level
    limiting = limit_gain(peaks, sr, CEILING, circular=arr.loop)
    del peaks
    if limiting is not None:
        level *= limiting
    # A stinger's tail must reach true silence; the cos fade above leaves it at exactly 0.
    if layers is None:
        return _leveled(out, level), None
    stems = {g: _leveled(x, level) for g, x in outs.items()}
    mix_out = np.sum(list(stems.values()), axis=0, dtype=np.float32)
    return np.ascontiguousarray(mix_out), stems


class Bus:
    """Where placed notes go: the dry (2, n) mix, the reverb's send, the echoes' send;
    ``rows`` are the four (n,) rows (mix left, right, send, echo). Made here, the sends
    are arrays of their own, freed once the reverb has read them; ``rows`` (4, n) is a
    Bus in memory another process shares."""

    def __init__(self, n: int, rows: np.ndarray | None = None) -> None:
        if rows is None:
            self.mix = np.zeros((2, n), dtype=np.float32)
            self.send, self.echo = np.zeros(n, dtype=np.float32), np.zeros(n, dtype=np.float32)
        else:
            self.mix, self.send, self.echo = rows[:2], rows[2], rows[3]
        self.rows = (self.mix[0], self.mix[1], self.send, self.echo)

    def add(self, other: Bus) -> None:
        for row, more in zip(self.rows, other.rows, strict=True):
            row += more


def _halves(arr: Arrangement) -> list[int]:
    """Which half (0 or 1) each part is placed in: about as much work in each (the
    costliest parts first, each into the half with less), fixed for an arrangement."""
    cost = [_part_cost(p, arr.bpm) for p in arr.parts]
    halves = [0] * len(cost)
    load = [0.0, 0.0]
    for pi in sorted(range(len(cost)), key=lambda i: (-cost[i], i)):
        h = 0 if load[0] <= load[1] else 1
        halves[pi] = h
        load[h] += cost[pi]
    return halves


def _part_cost(part: Part, bpm: float) -> float:
    """About how long a part takes to place (ms on the development machine): a drum hit is
    a cached sound added; a tuned note is mixed for its length, and each pitch is rendered
    once, for its longest note and a release."""
    if part.voice.startswith("drum:"):
        return 10.0 + 0.2 * len(part.notes)
    longest: dict[int, float] = {}
    mixed = 0.0
    for note in part.notes:
        d = min(note.d * 60.0 / bpm, 4.0)
        mixed += d
        longest[round(note.p)] = max(longest.get(round(note.p), 0.0), d)
    return 4.0 * sum(d + 1.0 for d in longest.values()) + mixed + 0.5 * len(part.notes)


@contextlib.contextmanager
def _forked(place: Callable[[Bus], None], n: int) -> Iterator[Callable[[Bus], None]]:
    """``place`` into a Bus in a forked process while the caller's block runs; the block
    calls what this yields with its own Bus to wait for that process and add its Bus.
    Where no process can be forked, or it fails, the Bus is placed here instead: the same
    samples either way."""
    memory = mmap.mmap(-1, 16 * n) if hasattr(os, "fork") else None
    pid = -1
    if memory is not None:
        with contextlib.suppress(OSError):
            pid = os.fork()
        if pid == 0:  # the helper: place, then leave at once (nothing of the parent's runs)
            code = 1
            try:
                place(Bus(n, np.frombuffer(memory, dtype=np.float32).reshape(4, n)))
                code = 0
            finally:
                os._exit(code)

    def add_to(bus: Bus) -> None:
        nonlocal pid
        if pid > 0:
            _, status = os.waitpid(pid, 0)
            pid = -1
            if os.waitstatus_to_exitcode(status) == 0:
                assert memory is not None
                bus.add(Bus(n, np.frombuffer(memory, dtype=np.float32).reshape(4, n)))
                return
        other = Bus(n)
        place(other)
        bus.add(other)

    try:
        yield add_to
    finally:
        if pid > 0:  # the block failed before waiting
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
        if memory is not None:
            memory.close()


# Frames summed at a time when placing notes: a part's window (three rows) and the bus's
# (four) stay in the processor's cache.
PLACE_WINDOW = 1 << 15


def _place(
    arr: Arrangement,
    sr: int,
    take: int,
    sampled: Sampled | None,
    plays: list[bool],
    total: int,
    buses: list[Bus | None],
    window: int = PLACE_WINDOW,
) -> None:
    """Place the notes of each part into its bus (``total`` frames). A part whose bus is
    None is placed by another process: it is passed over after what the performance draws
    for it, so that the other parts' notes draw the same in either process.

    A window of frames at a time (``_Placer``): each bus gets each window's sum added,
    which into a zero Bus is that sum itself (so this is ``_place_in_windows`` into an
    empty Bus, to the bit)."""
    placed = [bus is not None for bus in buses]
    hits = list(_hits(arr, sr, take, sampled, plays, total, placed))
    targets: dict[int, Bus] = {}
    index = [-1] * len(buses)
    for pi, bus in enumerate(buses):
        if bus is not None:
            index[pi] = next((k for k, b in targets.items() if b is bus), len(targets))
            targets[index[pi]] = bus
    _Placer(hits, total, window).run(index, list(targets.values()))


def _place_in_windows(
    arr: Arrangement,
    sr: int,
    take: int,
    sampled: Sampled | None,
    plays: list[bool],
    total: int,
    placed: list[bool],
    bus: Bus,
    window: int = PLACE_WINDOW,
) -> None:
    """Add to ``bus`` what ``_place`` would place of the ``placed`` parts into a Bus of
    their own, the same samples, with no second Bus as long as the track: every frame is
    ``bus`` plus what the other Bus would hold, to the bit (float addition depends on its
    order; both add the same window sums, whatever the window's length)."""
    hits = list(_hits(arr, sr, take, sampled, plays, total, placed))
    _Placer(hits, total, window).run([0 if p else -1 for p in placed], [bus])


class _Placer:
    """Sums notes a window of frames at a time: each part's notes, dry and unpanned, into
    the part's own rows (a mono and a stereo one), then those rows once into the window's
    mix (panned), reverb send and echo send; each window's sums are added to the bus.

    A note costs one product (its level) and one sum; the pan and the sends cost a few
    passes per part and window instead of several per note. What sounds past a window
    waits for the next ones, in placing order, so every frame's sums are made in the same
    order whatever the window's length."""

    def __init__(self, hits: list[_Hit], total: int, window: int) -> None:
        self.hits = sorted(hits, key=lambda h: h.start // window)  # stable: placing order
        self.total = total
        self.window = window

    def run(self, index: list[int], buses: list[Bus]) -> None:
        """``index[part]``: the bus (in ``buses``) a part's notes go to, -1 for none."""
        w = self.window
        hits, first = self.hits, 0
        # (order, part, start, size, note, voice): what still sounds from earlier windows.
        waiting: list[tuple[int, int, int, int, _Note, _Voice]] = []
        mono = np.empty(w, dtype=np.float32)
        stereo = np.empty((2, w), dtype=np.float32)
        scratch = np.empty((2, w), dtype=np.float32)
        for lo in range(0, self.total, w):
            hi = min(self.total, lo + w)
            last = first
            while last < len(hits) and hits[last].start < hi:
                last += 1
            turns: list[tuple[int, int, _Hit | tuple]] = [(t[0], t[1], t) for t in waiting]
            turns += [(h.order, h.part, h) for h in hits[first:last]]
            turns.sort(key=lambda t: t[0])
            first, waiting = last, []
            sums: dict[int, np.ndarray] = {}
            k = 0
            while k < len(turns):
                part = turns[k][1]
                end = k
                while end < len(turns) and turns[end][1] == part:
                    end += 1
                voice: _Voice | None = None
                used_m = used_s = None  # [a, b) of the mono and stereo rows in use
                for order, _, item in turns[k:end]:
                    if isinstance(item, _Hit):
                        start, note, voice = item.start, item.note(), item.voice
                        size = min(note.size, self.total - start)
                    else:
                        start, size, note, voice = item[2:]
                    a, b = max(start, lo) - lo, min(start + size, hi) - lo
                    if start + size > hi:
                        waiting.append((order, part, start, size, note, voice))
                    if b <= a:
                        continue
                    if note.stereo:
                        used_s = _extend(stereo, used_s, a, b)
                        note.add_to(stereo, a, b, a + lo - start, scratch)
                    else:
                        used_m = _extend(mono, used_m, a, b)
                        note.add_to(mono, a, b, a + lo - start, scratch)
                target = sums.get(index[part])
                if target is None:
                    target = sums[index[part]] = np.zeros((4, hi - lo), dtype=np.float32)
                assert voice is not None
                _mix_part(voice, target, mono, used_m, stereo, used_s, scratch[0])
                k = end
            for bi, rows in sums.items():
                for row, more in zip(buses[bi].rows, rows, strict=True):
                    row[lo:hi] += more


def _extend(rows: np.ndarray, used: tuple[int, int] | None, a: int, b: int) -> tuple[int, int]:
    """Widen the span of ``rows`` in use to cover [a, b), zeroing what it newly covers."""
    if used is None:
        rows[..., a:b] = 0.0
        return a, b
    ua, ub = used
    if a < ua:
        rows[..., a:ua] = 0.0
        ua = a
    if b > ub:
        rows[..., ub:b] = 0.0
        ub = b
    return ua, ub


def _mix_part(
    voice: _Voice,
    target: np.ndarray,
    mono: np.ndarray,
    used_m: tuple[int, int] | None,
    stereo: np.ndarray,
    used_s: tuple[int, int] | None,
    scratch: np.ndarray,
) -> None:
    """Add a part's dry rows (the spans in use) to a window's rows (mix left, right, send,
    echo): panned, and summed to mono for the sends (a stereo note's sides halved)."""
    if used_m is not None and used_s is not None:
        # Both: the mono notes into both sides (a mono note is its own mid).
        a, b = used_m
        used_s = _extend(stereo, used_s, a, b)
        stereo[0, a:b] += mono[a:b]
        stereo[1, a:b] += mono[a:b]
        used_m = None
    fl, fr = np.float32(voice.gl), np.float32(voice.gr)
    if used_m is not None:
        a, b = used_m
        m = mono[a:b]
        if fl == fr:
            both = m if fl == 1.0 else np.multiply(m, fl, out=scratch[a:b])
            target[0, a:b] += both
            target[1, a:b] += both
        else:
            target[0, a:b] += np.multiply(m, fl, out=scratch[a:b])
            target[1, a:b] += np.multiply(m, fr, out=scratch[a:b])
        sends = ((2, voice.send), (3, voice.echo))
    else:
        a, b = used_s  # type: ignore[misc]
        s = stereo[:, a:b]
        if voice.pan == 0:
            target[0, a:b] += s[0]
            target[1, a:b] += s[1]
        else:
            target[0, a:b] += np.multiply(s[0], fl, out=scratch[a:b])
            target[1, a:b] += np.multiply(s[1], fr, out=scratch[a:b])
        if voice.send or voice.echo:
            m = np.add(s[0], s[1], out=mono[a:b])  # the mono row is free: reused
        sends = ((2, voice.send * 0.5), (3, voice.echo * 0.5))
    for row, gain in sends:
        if gain:
            target[row, a:b] += np.multiply(m, np.float32(gain), out=scratch[a:b])


@dataclass
class _Hit:
    """One note of a part, drawn (where, how loud), to be rendered by ``sound``."""

    order: int  # the placing order (parts in order, each part's notes in order)
    part: int
    start: int
    voice: _Voice
    note: Callable[[], _Note]  # renders the note (when its window comes)


def _hits(
    arr: Arrangement,
    sr: int,
    take: int,
    sampled: Sampled | None,
    plays: list[bool],
    total: int,
    placed: list[bool],
) -> Iterator[_Hit]:
    """The notes of the ``placed`` parts, in placing order. What the performance draws is
    drawn for every part, placed or not, so that a part's notes draw the same whichever
    parts are placed (in this process or another)."""
    spb = 60.0 / arr.bpm * sr
    ws = Workspace(sr)
    drum_cache: dict[tuple[str, float, float], np.ndarray] = {}
    swing_off = arr.swing * spb / 2  # late off-beat eighths
    human = Random(arr.seed ^ 0x4855 ^ take)
    order = 0
    for pi, part in enumerate(arr.parts):
        here = placed[pi]
        gl, gr = _pan(part.pan)
        is_drum = part.voice.startswith("drum:")
        sound = part.voice[5:] if is_drum else ""
        if is_drum:
            gl, gr = _pan(DRUM_PAN.get(sound, 0.0))
        send_gain = DRUM_SEND.get(sound, part.send) if is_drum else part.send
        is_low = _is_low(part)
        # Players are not a grid: tunes, counter-lines and chords lean 5-12 ms either side
        # of it; the rhythm section (drums, bass, arpeggios) locks to the beat within 3 ms.
        tight = is_drum or part.role in {"bass", "arp"}
        spread = (0.0, 0.003) if tight else (0.005, 0.012)
        voice = _Voice(gl, gr, part.pan, is_low, send_gain, part.echo)
        for k, note in enumerate(part.notes):
            start_f = note.t * spb
            if swing_off and abs((note.t * 2) % 2 - 1.0) < 1e-6:
                start_f += swing_off
            lean = human.uniform(*spread) * (1 if human.random() < 0.5 else -1) * sr
            start = max(0, round(start_f + lean)) if arr.humanise else round(start_f)
            if start >= total:
                continue
            amp = note.v * part.gain
            if arr.humanise:
                amp *= 1.0 + human.uniform(-0.06, 0.06)
            if not here and not is_drum:
                continue  # placed by another process (its drums count: their seeds)
            buf = None
            if is_drum:
                b = round(note.b * 4) / 4
                if sampled is not None:
                    buf = sampled.drum(sound, note.v, note.p, arr.level_drums)
                if buf is None:
                    key = (sound, b, note.p)
                    buf = drum_cache.get(key)
                    if buf is None:
                        buf = make_sound(
                            sound,
                            sr,
                            b,
                            arr.seed % 1000 + len(drum_cache) + 7919 * take,
                            midi_hz(note.p) if note.p else 0.0,
                        )
                        drum_cache[key] = buf
                if not here:
                    continue

            def render(
                pi: int = pi,
                k: int = k,
                part: Part = part,
                note: Note = note,
                amp: float = amp,
                buf: np.ndarray | None = buf,
                is_low: bool = is_low,
            ) -> _Note:
                """The note to place: its samples at unit level and its level ``amp``."""
                gain = np.float32(amp)
                if buf is None:
                    dur_s = note.d * 60.0 / arr.bpm
                    got = None
                    if plays[pi]:
                        ref = functools.partial(_reference_rms, sr, part.voice)
                        got = sampled.note(part.voice, note.p, dur_s, note.v, ref)  # type: ignore[union-attr]
                    if got is not None:
                        values, hold, ramp = got
                        return _Note(values, gain, hold, ramp, is_low)
                    buf = render_note(ws, part.voice, note.p, dur_s, note.b, pi * 7 + k, take)
                return _Note(buf, gain, buf.shape[-1], None, is_low and buf.ndim == 2)

            yield _Hit(order, pi, start, voice, render)
            order += 1


@dataclass(frozen=True)
class _Voice:
    """Where a part's notes go: its pan gains, mono or not, its reverb and echo sends."""

    gl: float
    gr: float
    pan: float
    is_low: bool
    send: float
    echo: float


@dataclass
class _Note:
    """A note to place, before the pan: ``values`` (n,) mono or (2, n) stereo at unit
    level (a cached array's view: never written), times ``gain``, and past ``hold``
    frames times ``ramp`` (its release). ``mono``: a stereo note of a part that plays
    mono, placed as its sides' mean."""

    values: np.ndarray
    gain: np.float32
    hold: int
    ramp: np.ndarray | None
    mono: bool

    @property
    def size(self) -> int:
        return self.values.shape[-1]

    @property
    def stereo(self) -> bool:
        return self.values.ndim == 2 and not self.mono

    def add_to(self, rows: np.ndarray, a: int, b: int, s0: int, scratch: np.ndarray) -> None:
        """``rows[..., a:b] +=`` the note's frames from ``s0`` on (``scratch``: (2, >= b - a)
        float32 to work in)."""
        s1 = s0 + b - a
        v = self.values[..., s0:s1]
        if self.mono:
            work = np.add(v[0], v[1], out=scratch[0, : b - a])
            work *= self.gain * np.float32(0.5)
        else:
            out = scratch[..., : b - a] if v.ndim == 2 else scratch[0, : b - a]
            work = np.multiply(v, self.gain, out=out)
        if self.ramp is not None and s1 > self.hold:
            r0 = max(s0, self.hold)
            work[..., r0 - s0 :] *= self.ramp[r0 - self.hold : s1 - self.hold]
        rows[..., a:b] += work


def _leveled(x: np.ndarray, level: np.ndarray) -> np.ndarray:
    """``x`` (2, n) times ``level`` (n), as (n, 2) float32 frames.

    A channel at a time into the frames' column, in blocks that stay in the processor's
    cache: a third of the cost of one transposed product."""
    n = x.shape[1]
    out = np.empty((n, x.shape[0]), dtype=np.float32)
    for a in range(0, n, LEVEL_BLOCK):
        b = min(n, a + LEVEL_BLOCK)
        for ch in range(x.shape[0]):
            np.multiply(x[ch, a:b], level[a:b], out=out[a:b, ch])
    return out


LEVEL_BLOCK = 1 << 16


def _is_low(part: Part) -> bool:
    """A part that plays mono, in the middle: the bass, low drums, voices below C3."""
    if part.voice.startswith("drum:"):
        return part.voice[5:] in LOW_DRUMS
    return part.role == "bass" or VOICES[part.voice].low < LOW_VOICE


def _plays_sampled(part: Part, sampled: Sampled | None, minor: bool) -> bool:
    """Whether the part's notes come from the SoundFont (a drum part asks per hit)."""
    if sampled is None or part.voice.startswith("drum:") or not sampled.has(part.voice):
        return False
    # In minor keys the low voices stay numpy: a sampled cello's or bass's fifth partial (a
    # major third two octaves up) would blur the mode.
    return not (_is_low(part) and minor)


def _reference_rms(sr: int, voice: str) -> float:
    """The RMS of the numpy voice's middle note (0.5 s), which its sampled one matches (in a
    workspace of its own: whether it runs, once per process, must not change a render)."""
    ws = Workspace(sr)
    v = VOICES[voice]
    x = render_note(ws, voice, (v.low + v.high) // 2, 0.5, 0.5, 0, 0)
    n = min(x.shape[-1], ws.sr // 2)
    seg = x[..., :n]
    rms = float(np.sqrt(np.mean(np.square(seg, dtype=np.float64))))
    return rms * (math.sqrt(2) if seg.ndim == 1 else 1.0)


def _vinyl(out: np.ndarray, sr: int, seed: int) -> None:
    """Lo-fi: a little hiss and sparse crackle (stationary, so it loops without a seam),
    added to ``out`` (2, n)."""
    n = out.shape[1]
    rng = np.random.default_rng(seed % 2**32)
    noise = rng.standard_normal((2, n), dtype=np.float32)  # float32 draws: a third faster
    noise *= np.float32(0.0025)
    count = max(1, int(n / sr * 6))
    pos = rng.integers(0, n - 8, count)
    amp = rng.uniform(0.01, 0.05, count).astype(np.float32)
    for k in range(4):
        noise[:, pos + k] += amp * np.float32(0.5**k)
    out += noise


def write_wav(path: Path, samples: np.ndarray, sr: int) -> None:
    """Float WAV without libsndfile's PEAK chunk, whose timestamp would make bytes differ."""
    with sf.SoundFile(path, "w", sr, samples.shape[1], subtype="FLOAT", format="WAV") as f:
        try:
            from soundfile import _ffi, _snd  # type: ignore[attr-defined]

            _snd.sf_command(f._file, _SFC_SET_ADD_PEAK_CHUNK, _ffi.NULL, 0)
        except (ImportError, AttributeError):  # pragma: no cover - other soundfile builds
            pass
        f.write(samples)


def render_request(
    request: GenerationRequest, sr: int = SAMPLE_RATE, soundfont: Path | str | None = "auto"
) -> tuple[Arrangement, np.ndarray]:
    """Compose and render ``request``: (arrangement, (n, 2) float32 samples).

    ``soundfont``: a SoundFont file for the sampled voices, ``"auto"`` for the best one
    installed (``soundfont.find_soundfont``), None for the numpy voices only.
    """
    arr, samples, _ = render_request_stems(request, sr, soundfont)
    return arr, samples


def render_request_stems(
    request: GenerationRequest,
    sr: int = SAMPLE_RATE,
    soundfont: Path | str | None = "auto",
    processes: int = 1,
    keep_voices: bool = True,
) -> tuple[Arrangement, np.ndarray, dict[str, np.ndarray]]:
    """``render_request`` plus a stem per layer of the request (none without layers).

    The take is chosen on the mix alone; the stems are then rendered from that take, and
    the mix returned is their sum (so they sum to it exactly). ``processes``: see
    ``render_arrangement`` (the same samples). ``keep_voices=False``: the SoundFont's
    rendered notes and decoded samples go once the last render has placed its notes
    (``Sampled.release``; no later render is coming to share them).
    """
    if soundfont == "auto":
        soundfont = find_soundfont()
    sampled = Sampled.open(soundfont, sr)
    release = None if keep_voices or sampled is None else sampled.release
    arr = compose(request)
    # The mix's takes are the last renders without layers (another take, rarely needed,
    # renders its voices again); with layers, the stems are.
    last = None if request.layers else release
    samples = render_arrangement(arr, sr, 0, sampled, processes, last)
    take = 0
    if arr.loop and arr.bars >= 2:
        samples, take = _seamless_take(arr, sr, samples, sampled, processes, last)
    if not request.layers:
        return arr, samples, {}
    mix, stems = render_stems(arr, tuple(request.layers), sr, take, sampled, release)
    return arr, mix, stems


def _seam_excess(seam: dict[str, float | bool]) -> float:
    """How far a seam is over the limits of ``segue.core.seams.measure_seam`` (<= 0: within).

    Without the check's own margins (1 % on the jump, 5 % on the flux, 0.5 dB on the
    level steps): they are left for what comes after, loudness and a lossy codec, which
    move these figures a little, so the decoded file passes the same check.
    """
    s = {k: float(v) for k, v in seam.items()}
    return max(
        s["jump"] / max(s["jump_limit"], 1e-9) - 1.0,
        s["flux"] / max(s["flux_limit"], 1e-9) - 1.0,
        (s["level_step_db"] - s["level_step_limit_db"]) / 10.0,
        (s["level_step_long_db"] - s["level_step_long_limit_db"]) / 10.0,
    )


def _seamless_take(
    arr: Arrangement,
    sr: int,
    first: np.ndarray,
    sampled: Sampled | None,
    processes: int = 1,
    release: Callable[[], None] | None = None,
) -> tuple[np.ndarray, int]:
    """The first take whose seam passes the pipeline's own seam check, else the closest.

    The composition makes the seam the calmest bar line (see ``composer``), but in a loop
    of two or three bars the one or two bar lines it is compared with can, by the chance
    of how notes' partials add up on their downbeats, be calmer still. Another take (new
    note phases, pluck and drum noise, reverb) of the same notes settles it.
    """
    bar_s = arr.beats_per_bar * 60.0 / arr.bpm
    best, best_take, best_excess = first, 0, math.inf
    for take in range(TAKES):
        x = first if take == 0 else render_arrangement(arr, sr, take, sampled, processes, release)
        seam = measure_seam(x, sr, 0, x.shape[0], bar_s)
        excess = _seam_excess(seam)
        if seam["ok"] and excess <= 0:
            return x, take
        if excess < best_excess:
            best, best_take, best_excess = x, take, excess
    return best, best_take
