"""SoundFont instruments: a SF2/SF3 file read with the standard library, notes played in numpy.

A SoundFont is a RIFF file: ``sdta`` holds the samples (16-bit PCM; in SF3 each sample is an
Ogg Vorbis stream), ``pdta`` the presets (bank, program) -> instruments -> zones, each zone a
key and velocity range, a sample, and generators (tuning, loop, volume envelope, pan,
attenuation, filter). A note plays every zone that matches its key and velocity: the sample
is resampled to the note's pitch (linear interpolation), looped between its loop points while
the note is held, shaped by the zone's volume envelope (delay, attack, hold, decay, sustain,
release) and panned. Velocity changes the timbre as well as the level: soft notes are darker
(a moving-average low-pass blended in), as the SF2 default velocity-to-filter modulator does.

Only the headers are parsed up front (the sample chunk is memory-mapped); a sample is turned
into float32 the first time a note needs it. One file is loaded once per process.
"""

from __future__ import annotations

import hashlib
import io
import mmap
import os
import struct
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

# Where Debian puts the better General MIDI sets, best first (fluid-soundfont-gm: MIT;
# musescore-general-soundfont-small: MIT).
SYSTEM_SOUNDFONTS = (
    "/usr/share/sounds/sf2/FluidR3_GM.sf2",
    "/usr/share/sounds/sf3/MuseScore_General.sf3",
    "/usr/share/sounds/sf3/MuseScore_General_Lite.sf3",
)

# Generator operators (SoundFont 2.04, section 8.1.2).
START_OFS, END_OFS, LOOP_START_OFS, LOOP_END_OFS, START_COARSE = 0, 1, 2, 3, 4
FILTER_FC, END_COARSE, PAN = 8, 12, 17
DELAY_VOL, ATTACK_VOL, HOLD_VOL, DECAY_VOL, SUSTAIN_VOL, RELEASE_VOL = 33, 34, 35, 36, 37, 38
INSTRUMENT, KEY_RANGE, VEL_RANGE, LOOP_START_COARSE = 41, 43, 44, 45
ATTENUATION, LOOP_END_COARSE, COARSE_TUNE, FINE_TUNE = 48, 50, 51, 52
SAMPLE_ID, SAMPLE_MODES, SCALE_TUNING, ROOT_KEY = 53, 54, 56, 58
RANGES = {KEY_RANGE, VEL_RANGE}
DEFAULTS = {
    FILTER_FC: 13500,
    DELAY_VOL: -12000,
    ATTACK_VOL: -12000,
    HOLD_VOL: -12000,
    DECAY_VOL: -12000,
    RELEASE_VOL: -12000,
    SCALE_TUNING: 100,
    ROOT_KEY: -1,
}
# Preset-level generators that are not added to the instrument's (SF2 8.5).
NOT_ADDITIVE = {INSTRUMENT, SAMPLE_ID, SAMPLE_MODES, ROOT_KEY, *RANGES}


class SoundFontError(ValueError):
    """The file is not a SoundFont this reader understands."""


@dataclass(frozen=True)
class SampleHeader:
    name: str
    start: int
    end: int
    loop_start: int
    loop_end: int
    rate: int
    pitch: int
    correction: int
    link: int
    kind: int

    @property
    def compressed(self) -> bool:
        return bool(self.kind & 0x10)


@dataclass
class Zone:
    """One sample of a preset over a key and velocity range, with its generators."""

    keys: tuple[int, int]
    vels: tuple[int, int]
    sample: int
    gens: dict[int, int]

    def gen(self, op: int) -> int:
        return self.gens.get(op, DEFAULTS.get(op, 0))


@dataclass
class Preset:
    name: str
    bank: int
    program: int
    zones: list[Zone] = field(default_factory=list)


def _chunks(buf: bytes | mmap.mmap, start: int, end: int) -> dict[str, tuple[int, int]]:
    """{id (LIST ids as 'LIST:name'): (data offset, size)} of the RIFF chunks in [start, end)."""
    out: dict[str, tuple[int, int]] = {}
    pos = start
    while pos + 8 <= end:
        cid = bytes(buf[pos : pos + 4]).decode("latin-1")
        (size,) = struct.unpack_from("<I", buf, pos + 4)
        if cid == "LIST":
            cid = "LIST:" + bytes(buf[pos + 8 : pos + 12]).decode("latin-1")
        out[cid] = (pos + 8, size)
        pos += 8 + size
        # RIFF pads odd chunks to even sizes, but some files (MuseScore_General.sf3) do not.
        if size & 1 and not bytes(buf[pos : pos + 4]).isalnum():
            pos += 1
    return out


def _records(buf: bytes, fmt: str) -> list[tuple]:
    size = struct.calcsize(fmt)
    return list(struct.iter_unpack(fmt, buf[: len(buf) // size * size]))


def _zones(
    bags: list[tuple], gens: list[tuple], first: int, last: int, terminal: int
) -> tuple[dict[int, int], list[dict[int, int]]]:
    """(global zone's generators, [each zone's generators]) of bags [first, last)."""
    zones: list[dict[int, int]] = []
    glob: dict[int, int] = {}
    # A damaged header's bag indices past the list give fewer zones, not an IndexError.
    for b in range(first, min(last, len(bags) - 1)):
        g0, g1 = bags[b][0], bags[b + 1][0]
        z: dict[int, int] = {}
        for op, lo, hi in gens[g0:g1]:
            z[op] = (lo, hi) if op in RANGES else struct.unpack("<h", bytes((lo, hi)))[0]  # type: ignore[assignment]
        if terminal not in z:
            if b == first:
                glob = z  # a first zone without a sample/instrument is the global zone
            continue
        zones.append(z)
    return glob, zones


def _intersect(a: tuple[int, int], b: tuple[int, int]) -> tuple[int, int]:
    return max(a[0], b[0]), min(a[1], b[1])


class SoundFont:
    """A parsed SoundFont: its presets by (bank, program) and a lazily decoded sample store."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._map, pdta_raw, s_off, s_size = _open(self.path)
        self.digest = _digest(pdta_raw, s_size)
        sdta = _chunks(self._map, s_off + 4, s_off + s_size)
        self._smpl = sdta.get("smpl", (0, 0))
        pd = _chunks(pdta_raw, 4, len(pdta_raw))

        def raw(name: str) -> bytes:
            off, size = pd[name]
            return pdta_raw[off : off + size]

        phdr = _records(raw("phdr"), "<20sHHHIII")
        pbag = _records(raw("pbag"), "<HH")
        pgen = _records(raw("pgen"), "<HBB")
        inst = _records(raw("inst"), "<20sH")
        ibag = _records(raw("ibag"), "<HH")
        igen = _records(raw("igen"), "<HBB")
        self.samples = [
            SampleHeader(n.split(b"\0")[0].decode("latin-1"), *rest)
            for n, *rest in _records(raw("shdr"), "<20sIIIIIBbHH")
        ]
        # Presets and instruments are put together when first asked for: a track plays a
        # handful of the file's hundreds (parsing them all took most of a load).
        self._phdr, self._pbag, self._pgen = phdr, pbag, pgen
        self._inst, self._ibag, self._igen = inst, ibag, igen
        self._instruments: dict[int, tuple[dict[int, int], list[dict[int, int]]]] = {}
        self._index: dict[tuple[int, int], int] = {}
        for i in range(len(phdr) - 1):
            self._index.setdefault((phdr[i][2], phdr[i][1]), i)  # (bank, program): the first
        self._presets: dict[tuple[int, int], Preset] = {}
        self._decoded: dict[int | tuple[int, float], tuple[np.ndarray, int, int]] = {}
        self._lock = threading.Lock()
        # What every render with this SoundFont shares (see ``Signals``): each zone's
        # signal at a pitch, and each voice's rendered notes and drum hits.
        self.signals = Signals(SHARED_BYTES)

    def forget(self) -> None:
        """Drop the decoded samples and ``signals``: each is made again when asked for."""
        with self._lock:
            self._decoded.clear()
        self.signals.clear()

    @property
    def presets(self) -> dict[tuple[int, int], Preset]:
        """Every preset by (bank, program)."""
        return {key: self._preset(i) for key, i in self._index.items()}

    def preset(self, bank: int, program: int) -> Preset | None:
        i = self._index.get((bank, program))
        return None if i is None else self._preset(i)

    def _instrument(self, i: int) -> tuple[dict[int, int], list[dict[int, int]]]:
        got = self._instruments.get(i)
        if got is None:
            inst = self._inst
            got = _zones(self._ibag, self._igen, inst[i][1], inst[i + 1][1], SAMPLE_ID)
            self._instruments[i] = got
        return got

    def _preset(self, i: int) -> Preset:
        phdr = self._phdr
        name, program, bank, bag = phdr[i][:4]
        got = self._presets.get((bank, program))
        if got is not None:
            return got
        preset = Preset(name.split(b"\0")[0].decode("latin-1"), bank, program)
        pglob, pzones = _zones(self._pbag, self._pgen, bag, phdr[i + 1][3], INSTRUMENT)
        for pz in pzones:
            pg = {**pglob, **pz}
            if not 0 <= pg[INSTRUMENT] < len(self._inst) - 1:
                continue
            iglob, izones = self._instrument(pg[INSTRUMENT])
            for iz in izones:
                g = {**iglob, **iz}
                keys = _intersect(g.get(KEY_RANGE, (0, 127)), pg.get(KEY_RANGE, (0, 127)))
                vels = _intersect(g.get(VEL_RANGE, (0, 127)), pg.get(VEL_RANGE, (0, 127)))
                if keys[0] > keys[1] or vels[0] > vels[1]:
                    continue
                if not 0 <= g[SAMPLE_ID] < len(self.samples) or not self._playable(g[SAMPLE_ID]):
                    continue
                for op, amount in pg.items():
                    if op not in NOT_ADDITIVE:
                        g[op] = g.get(op, DEFAULTS.get(op, 0)) + amount
                preset.zones.append(Zone(keys, vels, g[SAMPLE_ID], g))
        self._presets[(bank, program)] = preset
        return preset

    def _playable(self, index: int) -> bool:
        """Whether sample ``index`` has frames in the file: a damaged header's (empty, or
        past the sample data) is left out, so its notes fall back as a missing preset's."""
        h = self.samples[index]
        if h.compressed:
            return h.end - h.start > 0
        size = self._smpl[1] // 2
        return min(h.end, size) - min(h.start, size) >= 2

    def sample(self, index: int, low_cut: float = 0.0) -> tuple[np.ndarray, int, int]:
        """(float32 data, loop start, loop end) of sample ``index``, decoded once; with
        ``low_cut`` (Hz at the sample's own pitch), high-passed (cached too)."""
        if low_cut:
            got = self._decoded.get((index, low_cut))
            if got is None:
                data, a, b = self.sample(index)
                width = max(2, round(0.75 * self.samples[index].rate / low_cut))
                smooth = _box(data, width)
                cut = data.copy()
                kept = max(0, len(data) - width // 2)  # none for a sample shorter than that
                cut[:kept] -= smooth[width // 2 : width // 2 + kept]
                got = (cut, a, b)
                with self._lock:
                    self._decoded[(index, low_cut)] = got
            return got
        got = self._decoded.get(index)
        if got is not None:
            return got
        h = self.samples[index]
        off, size = self._smpl
        if h.compressed:  # SF3: an Ogg Vorbis stream; loop points count from its start
            import soundfile as sf

            try:
                data, _ = sf.read(
                    io.BytesIO(self._map[off + h.start : off + h.end]),
                    dtype="float32",
                    always_2d=True,
                )
            except (sf.LibsndfileError, RuntimeError, ValueError) as e:  # a damaged file
                reason = str(e).rpartition(": ")[2] or type(e).__name__
                raise SoundFontError(
                    f"{self.path}: sample {index} ({h.name!r}) cannot be decoded: {reason}"
                ) from None
            data = np.ascontiguousarray(data[:, 0])
            loop = (h.loop_start, h.loop_end)
        else:
            a = max(0, min(h.start, size // 2))
            b = max(a, min(h.end, size // 2))
            data = np.frombuffer(self._map, dtype="<i2", count=b - a, offset=off + 2 * a)
            data = data.astype(np.float32) * np.float32(1 / 32768)
            loop = (h.loop_start - h.start, h.loop_end - h.start)
        got = (data, *loop)
        with self._lock:
            self._decoded[index] = got
        return got


# Memory the renders of one SoundFont share (zone signals, note bodies) before the least
# recently used are dropped: a 60 s loop's voices take 50-150 MB (measured), so the
# voices of two to four moods stay (a pregeneration's variants of a mood share theirs);
# a server keeps this for as long as it runs, so it stays well under a small host's memory.
SHARED_BYTES = 256 << 20


class Signals:
    """A dict-like cache of arrays (or tuples holding arrays), least recently used first
    out past ``limit`` bytes; safe across the renders of several threads (what two threads
    make for one key is the same, so either may win)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.size = 0
        self._items: OrderedDict[Any, tuple[Any, int]] = OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def _bytes(value: Any) -> int:
        items = value if isinstance(value, tuple) else (value,)
        return sum(v.nbytes for v in items if isinstance(v, np.ndarray))

    def get(self, key: Any, default: Any = None) -> Any:
        with self._lock:
            got = self._items.get(key)
            if got is None:
                return default
            self._items.move_to_end(key)
            return got[0]

    def __contains__(self, key: Any) -> bool:
        with self._lock:
            return key in self._items

    def __getitem__(self, key: Any) -> Any:
        got = self.get(key, _MISSING)
        if got is _MISSING:
            raise KeyError(key)
        return got

    def __setitem__(self, key: Any, value: Any) -> None:
        size = self._bytes(value)
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self.size -= old[1]
            self._items[key] = (value, size)
            self.size += size
            while self.size > self.limit and len(self._items) > 1:
                _, (_, dropped) = self._items.popitem(last=False)
                self.size -= dropped

    def __len__(self) -> int:
        return len(self._items)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self.size = 0


_MISSING = object()


def _open(path: Path) -> tuple[mmap.mmap, bytes, int, int]:
    """The file mapped, its preset data (``pdta``), and the sample list's offset and size."""
    with open(path, "rb") as f:
        try:
            m = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        except ValueError as e:  # an empty file
            raise SoundFontError(f"{path}: empty file") from e
    if m[:4] != b"RIFF" or m[8:12] != b"sfbk":
        raise SoundFontError(f"{path}: not a SoundFont (no RIFF sfbk header)")
    top = _chunks(m, 12, len(m))
    if "LIST:sdta" not in top or "LIST:pdta" not in top:
        raise SoundFontError(f"{path}: no sample or preset data")
    s_off, s_size = top["LIST:sdta"]
    p_off, p_size = top["LIST:pdta"]
    return m, bytes(m[p_off : p_off + p_size]), s_off, s_size


def _digest(pdta: bytes, sample_bytes: int) -> str:
    # The identity of the instruments: every header, and the size of the sample data.
    return hashlib.sha256(pdta + str(sample_bytes).encode()).hexdigest()[:12]


def identity(path: str) -> str:
    """:attr:`SoundFont.digest` of the file at ``path``, without parsing its presets:
    what a cache key needs, in milliseconds (parsing waits for the first note)."""
    m, pdta, _s_off, s_size = _open(Path(path))
    m.close()
    return _digest(pdta, s_size)


@lru_cache(maxsize=4)
def load(path: str) -> SoundFont:
    """The SoundFont at ``path``, parsed once per process."""
    return SoundFont(Path(path))


def bundled_soundfont() -> Path | None:
    """TimGM6mb.sf2 as pretty_midi ships it (a General MIDI set, GPL-2), if installed."""
    try:
        import importlib.util

        spec = importlib.util.find_spec("pretty_midi")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        path = Path(folder) / "TimGM6mb.sf2"
        if path.is_file():
            return path
    return None


def find_soundfont() -> Path | None:
    """The best General MIDI SoundFont on this machine: a Debian one, else pretty_midi's."""
    for p in SYSTEM_SOUNDFONTS:
        if os.path.isfile(p):
            return Path(p)
    return bundled_soundfont()


def _timecents(tc: int) -> float:
    return 0.0 if tc <= -12000 else float(2.0 ** (tc / 1200.0))


def _box(x: np.ndarray, width: int) -> np.ndarray:
    """A moving average of ``width`` samples (a cheap low-pass)."""
    if width <= 4:  # a few shifted sums cost less than a running sum
        out = x.copy()
        for k in range(1, width):
            out[k:] += x[:-k]
        out *= np.float32(1.0 / width)
        return out
    c = np.cumsum(x, dtype=np.float64)
    out = np.empty_like(x)
    head = min(width, len(x))  # a sample shorter than the window (a damaged header's)
    out[:head] = c[:head] / np.arange(1, head + 1)
    out[width:] = (c[width:] - c[:-width]) / width
    return out


def _envelope(z: Zone, x: np.ndarray, sr: int, first: int = 0) -> None:
    """Shape ``x`` (in place), samples ``first`` on of a held note, by the zone's volume
    envelope: delay, attack, hold, decay, sustain (the held level multiplies only where it
    is not 1)."""
    last = first + len(x)
    delay = _timecents(z.gen(DELAY_VOL))
    attack = max(_timecents(z.gen(ATTACK_VOL)), 0.002)
    hold = _timecents(z.gen(HOLD_VOL))
    decay = _timecents(z.gen(DECAY_VOL))
    sustain = 10.0 ** (-max(0, min(1440, z.gen(SUSTAIN_VOL))) / 200.0)
    level = np.float32(sustain)
    a0 = int(delay * sr)
    a1 = a0 + max(1, int(attack * sr))
    h1 = a1 + int(hold * sr)

    def span(lo: int, hi: int | None) -> tuple[int, int] | None:
        lo, hi = max(lo, first), last if hi is None else min(hi, last)
        return (lo, hi) if lo < hi else None

    if got := span(0, a0):
        x[got[0] - first : got[1] - first] = 0.0
    if got := span(a0, a1):
        ramp = np.arange(got[0] - a0, got[1] - a0, dtype=np.float64) / (a1 - a0)
        x[got[0] - first : got[1] - first] *= ramp.astype(np.float32)
    if decay > 0 and sustain < 1.0:
        # SF2 decays fall linearly in dB: 100 dB over the decay time, down to sustain.
        d_n = int(decay * (-20.0 * np.log10(max(sustain, 1e-5))) / 100.0 * sr) + 1
        k = np.float32(-100.0 / decay / 20.0 * np.log(10.0) / sr)
        if got := span(h1, h1 + d_n):
            t = np.arange(got[0] - h1, got[1] - h1, dtype=np.float32)
            x[got[0] - first : got[1] - first] *= np.maximum(np.exp(t * k), level)
        if got := span(h1 + d_n, None):
            x[got[0] - first :] *= level
    elif level != 1.0 and (got := span(h1, None)):
        x[got[0] - first :] *= level


def release_s(preset: Preset, key: int, cap: float = 1.0) -> float:
    """The longest release of the zones that play ``key`` (seconds, at most ``cap``)."""
    rel = [_timecents(z.gen(RELEASE_VOL)) for z in preset.zones if z.keys[0] <= key <= z.keys[1]]
    return min(cap, max(0.03, max(rel, default=0.1)))


def release_curve(n: int, sr: int, seconds: float) -> np.ndarray:
    """A release: 100 dB down over ``seconds`` (as SF2 releases fall), ending at zero."""
    t = np.arange(n, dtype=np.float32) / np.float32(sr)
    out = np.exp(t * np.float32(-5.0 * np.log(10.0) / seconds))
    r = min(n, max(2, int(0.005 * sr)))
    out[-r:] *= np.linspace(1.0, 0.0, r, dtype=np.float32)
    return out


def sustain(
    sf: SoundFont,
    preset: Preset,
    pitch: float,
    n: int,
    velocity: float,
    sr: int,
    low_cut: float = 0.0,
    cache: dict | Signals | None = None,
    level: float = 1.0,
) -> np.ndarray | None:
    """``n`` samples (2, n) float32 of a note held down (no release) at ``level``, or None
    if no zone.

    ``low_cut``: a gentle high-pass (Hz, about; applied to the samples) that leaves room
    under an accompanying part. ``cache``: kept across the notes of renders (a dict, or the
    SoundFont's ``signals``), where
    each zone's signal at a pitch (and each of its velocity filters) is kept, so notes of
    other velocities or lengths on that pitch reuse it."""
    key = round(pitch)
    vel = max(1, min(127, round(velocity * 127)))
    zones = [
        z for z in preset.zones if z.keys[0] <= key <= z.keys[1] and z.vels[0] <= vel <= z.vels[1]
    ]
    if not zones:
        zones = [z for z in preset.zones if z.keys[0] <= key <= z.keys[1]]
    if not zones:
        return None
    out = np.zeros((2, n), dtype=np.float32)
    for z in zones:
        # Velocity colours the sound: soft notes lose their top (up to 4 octaves of cut-off
        # at velocity 0, none at 127), as the SF2 default velocity-to-filter modulator does.
        fc = 2.0 ** (z.gen(FILTER_FC) / 1200.0) * 8.176 * 2.0 ** (-4.0 * (1.0 - vel / 127) ** 2)
        width = min(64, round(0.44 * sr / fc))
        x = _zone_signal(sf, z, pitch, n, sr, low_cut, width if width >= 2 else 1, cache)
        if x is None:
            continue
        m = len(x)
        h = sf.samples[z.sample]
        gain = 10.0 ** (-z.gen(ATTENUATION) * 0.4 / 200.0)  # EMU/FluidSynth attenuation scale
        pan = max(-500, min(500, z.gen(PAN))) / 500.0
        if h.kind & 2 and not z.gen(PAN):  # right half of a stereo pair
            pan = 1.0
        elif h.kind & 4 and not z.gen(PAN):
            pan = -1.0
        a = (pan + 1.0) * np.pi / 4
        for ch, side in enumerate((np.cos(a), np.sin(a))):
            part = x * np.float32(level * gain * side * np.sqrt(2))
            out[ch, :m] += part
    return out


# Samples per pass of the resampler: every array of a pass stays in the processor's cache.
CHUNK = 32768
BOX_BLOCK = 1 << 16  # the moving average's blocks (see ``_zone_signal``)


def _zone_signal(
    sf: SoundFont,
    z: Zone,
    pitch: float,
    n: int,
    sr: int,
    low_cut: float,
    width: int,
    cache: dict | Signals | None,
) -> np.ndarray | None:
    """The zone's sample played at ``pitch`` for up to ``n`` samples (fewer if an unlooped
    sample ends first): resampled (linear interpolation), looped, shaped by the zone's
    volume envelope and low-passed by a ``width``-sample moving average (1: none); None if
    it is too short to play.

    Every stage is causal, so a shorter note is a prefix of a longer one: ``cache`` keeps
    what was made (and whether the sample ended), and a longer note makes only the rest.
    """
    tag = (id(z), pitch, low_cut, sr, width)
    have, ended = cache.get(tag, (None, False)) if cache is not None else (None, False)
    if have is not None and (len(have) >= n or ended):
        return have[:n]
    done = 0 if have is None else len(have)
    if width > 1:
        base = _zone_signal(sf, z, pitch, n, sr, low_cut, 1, cache)
        if base is None:
            return None
        ended = len(base) < n
        # The moving average in blocks, each from its own start (the width - 1 samples
        # before it): the same samples whatever lengths were asked before, so renders that
        # share this cache make the same notes. The block ``done`` falls in is made again.
        first = done // BOX_BLOCK * BOX_BLOCK
        parts = []
        for b0 in range(first, len(base), BOX_BLOCK):
            b1 = min(len(base), b0 + BOX_BLOCK)
            back = min(b0, width - 1)
            parts.append(_box(base[b0 - back : b1], width)[back:])
        new = np.concatenate(parts) if len(parts) > 1 else parts[0]
        have = None if have is None or first == 0 else have[:first]
    else:
        plan = _plan(sf, z, pitch, sr, low_cut)
        if plan is None:
            return None
        m = n if plan.looped else min(n, plan.length)
        if m <= 1:
            return None
        ended = m < n
        new = _resample(plan, done, m)
        for c in range(0, len(new), CHUNK):
            _envelope(z, new[c : c + CHUNK], sr, done + c)
    x = new if have is None else np.concatenate([have, new])
    if cache is not None:
        cache[tag] = (x, ended)
    return x


@dataclass(frozen=True)
class _Plan:
    """Where a zone's sample is read for one pitch: the source, the step, the loop."""

    data: np.ndarray
    start: int
    end: int
    loop_a: int
    loop_b: int
    looped: bool
    step: int  # source samples per output sample, in 40.24 fixed point
    length: int  # output samples before an unlooped sample ends


def _plan(sf: SoundFont, z: Zone, pitch: float, sr: int, low_cut: float) -> _Plan | None:
    h = sf.samples[z.sample]
    root = z.gen(ROOT_KEY)
    if root < 0:
        root = h.pitch if h.pitch <= 127 else 60
    cents = (
        (pitch - root) * z.gen(SCALE_TUNING)
        + 100 * z.gen(COARSE_TUNE)
        + z.gen(FINE_TUNE)
        + h.correction
    )
    ratio = 2.0 ** (cents / 1200.0) * h.rate / sr
    # The cut, given at the note's pitch, sits lower in the sample's own pitch.
    cut = round(low_cut / ratio * h.rate / sr, -1) if low_cut else 0.0
    data, loop_a, loop_b = sf.sample(z.sample, cut)
    start = z.gen(START_OFS) + 32768 * z.gen(START_COARSE)
    end = len(data) + z.gen(END_OFS) + 32768 * z.gen(END_COARSE)
    loop_a += z.gen(LOOP_START_OFS) + 32768 * z.gen(LOOP_START_COARSE)
    loop_b += z.gen(LOOP_END_OFS) + 32768 * z.gen(LOOP_END_COARSE)
    end = max(2, min(len(data), end))
    start = max(0, min(start, end - 2))
    looped = bool(
        z.gen(SAMPLE_MODES) & 1 and start <= loop_a < loop_b <= end and loop_b - loop_a > 8
    )
    length = int((end - 1 - start) / ratio)
    return _Plan(data, start, end, loop_a, loop_b, looped, round(ratio * (1 << 24)), length)


def _resample(plan: _Plan, first: int, last: int) -> np.ndarray:
    """Output samples [first, last) of the plan's sample, by linear interpolation, looped."""
    out = np.empty(last - first, dtype=np.float32)
    if last <= first:
        return out
    # The source from ``start`` on, the loop written out as often as the note needs it (or
    # the last sample held), so that samples i and i + 1 are read without wrapping indices.
    data, start = plan.data, plan.start
    top = (((last - 1) * plan.step) >> 24) + 2
    if plan.looped:
        src = data[start : plan.loop_b]
        if top > len(src):
            span = plan.loop_b - plan.loop_a
            reps = -(-(top - len(src)) // span)
            src = np.concatenate([src, np.tile(data[plan.loop_a : plan.loop_b], reps)])
    else:
        src = data[start : plan.end]
        if top > len(src):
            src = np.concatenate([src, data[plan.end - 1 : plan.end]])
    after = src[1:]
    scale = np.float32(1.0 / (1 << 24))
    for c0 in range(first, last, CHUNK):
        c1 = min(last, c0 + CHUNK)
        # Positions in 40.24 fixed point: integer index and fraction without float64 passes.
        acc = np.arange(c0, c1, dtype=np.int64)
        acc *= plan.step
        i = acc >> 24
        frac = (acc & 0xFFFFFF).astype(np.float32)
        frac *= scale
        x = out[c0 - first : c1 - first]
        np.take(src, i, out=x)
        nxt = after[i]
        nxt -= x
        nxt *= frac
        x += nxt
    return out


def play(
    sf: SoundFont, preset: Preset, pitch: float, dur: float, velocity: float, sr: int
) -> np.ndarray | None:
    """One note as (2, n) float32: held ``dur`` seconds, then released; None if no zone."""
    n_hold = max(1, round(dur * sr))
    rel = release_s(preset, round(pitch))
    n_rel = max(2, round(rel * sr))
    out = sustain(sf, preset, pitch, n_hold + n_rel, velocity, sr)
    if out is not None:
        out[:, n_hold:] *= release_curve(n_rel, sr, rel)
    return out
