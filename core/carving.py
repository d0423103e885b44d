"""Carve a seamless game loop out of a song: lead-in, loop on the bar grid, outro.

A text-to-music model answers with a *song*: an intro, a body, a final cadence or a
fade-out. A game needs a loop that repeats on the bar grid without an audible seam. Given
the song's rhythm (``segue.core.analysis``), ``carve`` chooses the loop as a composer
would and makes its seam inaudible:

1. **The body**: the bars whose level is within ``BODY_DB`` of the song's loud bars; the
   loop never contains a quieter bar (a quiet intro, a fade-out, the silence after the
   final cadence).
2. **Candidates**: every pair of bar lines (start, end) inside the body, at least
   ``MIN_BARS`` apart; a length that is not a whole number of phrases (``PHRASE_BARS``:
   4, 8, 12, 16... bars) costs ``PHRASE_PENALTY``.
3. **The seam**: each candidate is scored by how alike the music just before its end is
   to the music just before its start, and the music after each (chroma for harmony,
   band levels for timbre, level), bar by bar; longer loops are preferred
   (``LENGTH_WEIGHT`` per doubling). The best wins.
4. **Crossfade**: the loop's last beat (at most ``MAX_CROSSFADE_S``) is replaced by an
   equal-power crossfade from itself into the beat that precedes the loop start, so the
   file reaches ``loop_end`` sounding exactly as the song does just before
   ``loop_start``, and the jump back continues the song. The lead-in (the intro, played
   once) runs into ``loop_start`` untouched. With no lead-in to borrow from (a loop that
   starts the file), the song's continuation after the loop end is crossfaded into the
   loop's first beat instead.
5. **Outro**: what follows the loop end (the rest of the song: its final bars, cadence or
   fade) stays in the file after ``loop_end`` as the outro, for a transition to play
   when the game leaves the mood.

A song with no steady beat, or too short for ``MIN_BARS`` bars of body, becomes a
whole-song loop with a ``FALLBACK_CROSSFADE_S`` crossfade, and the result says why;
``carve_checked`` measures the seam and tries the next best loops (``SEAM_TRIES``) when
it stands out, and falls back to the whole song when every one's does.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from segue.core.analysis import Features, Rhythm, features
from segue.core.audio import frame_peaks
from segue.core.seams import measure_seam

BODY_DB = 6.0
PHRASE_BARS = 4
# Added to the cost of a loop that is not a whole number of phrases.
PHRASE_PENALTY = 0.3
# Added to the cost of a loop with nothing before its start or after its end to crossfade
# (the whole file from its first beat): chosen only when nothing else fits.
NO_CROSSFADE_PENALTY = 3.0
MIN_BARS = 4
LENGTH_WEIGHT = 0.5
MAX_CROSSFADE_S = 0.5
MIN_CROSSFADE_S = 0.02
FALLBACK_CROSSFADE_S = 1.0
SILENCE_DB = -60.0
# The loops carve_checked tries, best first, before the whole-song loop: at most this many,
# none costing more than this above the best (two unlike bars are about 1 apart). A song's
# bar lines are not alike: the seam is measured against the loop's other bar lines, and a
# loop starting on a phrase's struck first downbeat can stand out there while the loop a
# bar earlier, as good, does not (the fal emulator's song for "Gentle harp and flute": its
# best loop's flux 1.159 against 1.155; the next, as good, 0.83 against 1.20; the whole
# song looped before).
SEAM_TRIES = 6
SEAM_TRY_COST = 0.5
STINGER_FADE_S = 0.05


@dataclass(frozen=True, eq=False)
class Edit:
    """The cut and crossfade that made a loop, to apply alike to the mix and its stems.

    ``apply(x)``: ``x`` with ``x[a:a+n] * fade_out + x[b:b+n] * fade_in`` written at
    ``dst`` (``n`` = len(fade_out); none when the gains are None), cut to ``length``
    frames. It is linear, so stems edited with it still sum to the edited mix; the gains
    are the mix's (their power correction is measured on the mix).
    """

    length: int
    dst: int = 0
    a: int = 0
    b: int = 0
    fade_out: np.ndarray | None = None
    fade_in: np.ndarray | None = None

    def apply(self, samples: np.ndarray) -> np.ndarray:
        x = np.asarray(samples, dtype=np.float32)
        out = x[: self.length].copy()
        if self.fade_out is not None and self.fade_in is not None:
            n = self.fade_out.shape[0]
            mixed = x[self.a : self.a + n] * self.fade_out + x[self.b : self.b + n] * self.fade_in
            out[self.dst : self.dst + n] = mixed[: max(0, out.shape[0] - self.dst)]
        return out


@dataclass(frozen=True)
class Carved:
    """The edited samples and where their regions are (in frames of ``samples``)."""

    samples: np.ndarray
    loop_start: int
    loop_end: int
    bars: int  # bars in the loop (0: a whole-song fallback loop)
    crossfade_s: float
    outro_end: int  # the outro is loop_end..outro_end (empty when equal)
    fallback: str | None = None  # why the song became a whole-song loop
    distance: float = 0.0  # the chosen seam's musical distance (0 = identical bars)
    edit: Edit | None = None  # how ``samples`` was made, for the stems (None: unchanged)
    # The seam as carve_checked measured it (segue.core.seams.measure_seam of the loop at
    # ``seam_bar_s``), so that it is not measured twice; None when not measured.
    seam: dict[str, float | bool] | None = None
    seam_bar_s: float | None = None


def _bar_features(f: Features, lines: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(chroma, timbre, level dB) per bar between consecutive ``lines`` (frame indices)."""
    chroma, timbre, level = [], [], []
    power = 10 ** (f.level_db / 10)
    for a, b in itertools.pairwise(lines):
        a, b = int(a), max(int(a) + 1, int(b))
        c = f.chroma[a:b].mean(axis=0)
        chroma.append(c / (np.linalg.norm(c) + 1e-12))
        timbre.append(f.bands[a:b].mean(axis=0))
        level.append(10 * math.log10(float(power[a:b].mean()) + 1e-12))
    return np.array(chroma), np.array(timbre), np.array(level)


def _distances(chroma: np.ndarray, timbre: np.ndarray, level: np.ndarray) -> np.ndarray:
    """(bars, bars): how unlike two bars are; harmony, timbre and level, each scaled by
    its median over all pairs so none dominates."""
    parts = [
        1.0 - chroma @ chroma.T,
        np.abs(timbre[:, None, :] - timbre[None, :, :]).mean(axis=2),
        np.abs(level[:, None] - level[None, :]),
    ]
    total = np.zeros_like(parts[0])
    for p in parts:
        off = p[~np.eye(p.shape[0], dtype=bool)]
        scale = float(np.median(off)) if off.size else 1.0
        total += p / (scale + 1e-9)
    return total / len(parts)


def _equal_power(n: int, a: np.ndarray | None = None, b: np.ndarray | None = None):
    """(fade-out, fade-in) gains keeping the power of the mix constant across ``n`` frames.

    For unrelated signals that is the usual sine/cosine pair; for alike ones (a loop's
    end crossfaded into music it repeats) their correlation ``rho`` adds power, and the
    gains are scaled by 1/sqrt(out^2 + in^2 + 2 rho out in): linear for identical ones.
    """
    t = (np.arange(n, dtype=np.float64) + 0.5) / n
    fade_out, fade_in = np.cos(t * np.pi / 2), np.sin(t * np.pi / 2)
    rho = 0.0
    if a is not None and b is not None:
        den = float(np.sqrt(np.sum(a.astype(np.float64) ** 2) * np.sum(b.astype(np.float64) ** 2)))
        rho = float(np.clip(np.sum(a.astype(np.float64) * b) / den, 0.0, 1.0)) if den > 0 else 0.0
    scale = 1.0 / np.sqrt(fade_out**2 + fade_in**2 + 2 * rho * fade_out * fade_in)
    return (fade_out * scale)[:, None].astype(np.float32), (fade_in * scale)[:, None].astype(
        np.float32
    )


def _audible_end(samples: np.ndarray, sr: int) -> int:
    """The frame after the last one above SILENCE_DB (relative to the peak)."""
    level = frame_peaks(samples)
    peak = float(level.max()) if level.size else 0.0
    if peak <= 0:
        return 0
    loud = np.flatnonzero(level > peak * 10 ** (SILENCE_DB / 20))
    return int(loud[-1]) + 1


def whole_song(samples: np.ndarray, sr: int, reason: str) -> Carved:
    """A whole-song loop: the song's tail crossfaded (equal power) into its start."""
    x = np.asarray(samples, dtype=np.float32)
    end = _audible_end(x, sr)
    n = min(round(FALLBACK_CROSSFADE_S * sr), end // 4)
    if n < 2:
        return Carved(x, 0, max(end, 1), 0, 0.0, max(end, 1), fallback=reason)
    fade_out, fade_in = _equal_power(n, x[end - n : end], x[:n])
    edit = Edit(end - n, 0, end - n, 0, fade_out, fade_in)
    out = edit.apply(x)
    return Carved(out, 0, out.shape[0], 0, n / sr, out.shape[0], fallback=reason, edit=edit)


def carve(
    samples: np.ndarray, sr: int, rhythm: Rhythm | None, feats: Features | None = None
) -> Carved:
    """The best loop of ``samples`` on ``rhythm``'s bar grid, its seam crossfaded."""
    return next(_carvings(samples, sr, rhythm, feats))


def _carvings(
    samples: np.ndarray, sr: int, rhythm: Rhythm | None, feats: Features | None = None
) -> Iterator[Carved]:
    """The loops of ``samples`` on ``rhythm``'s bar grid, best first (at most
    ``SEAM_TRIES``, none costing ``SEAM_TRY_COST`` more than the best), each crossfaded;
    a whole-song loop alone when there is none."""
    x = np.asarray(samples, dtype=np.float32)
    if rhythm is None:
        yield whole_song(x, sr, "no steady beat: the whole song loops, crossfaded")
        return
    f = feats if feats is not None else features(x, sr)
    bar_s = rhythm.bar_s
    first = rhythm.first_downbeat_s % bar_s
    duration = x.shape[0] / sr
    times = first + bar_s * np.arange(int((duration - first) / bar_s) + 1)
    lines = np.minimum(np.rint(times * f.rate).astype(int), f.level_db.size)
    if times.size < MIN_BARS + 1:
        yield whole_song(x, sr, f"too short for a loop of {MIN_BARS} bars: the whole song loops")
        return
    chroma, timbre, level = _bar_features(f, lines)
    loud = float(np.percentile(level, 75))
    body = level >= loud - BODY_DB
    dist = _distances(chroma, timbre, level)
    bars = level.size
    beat_s = 60.0 / rhythm.bpm
    fade = round(min(beat_s, MAX_CROSSFADE_S) * sr)
    found: list[tuple[float, int, int]] = []
    for i in range(bars):  # loop start: bar line i
        if not body[i] or (i > 0 and not body[i - 1]):
            continue
        run = i
        while run < bars and body[run]:
            run += 1
        # Loop bars i..j-1, all in the body.
        for length in range(MIN_BARS, run - i + 1):
            j = i + length
            after = dist[i, j] if j < bars else dist[i, j - 1]
            # No bar before the first: its seam is judged by the bars after alone.
            before = dist[i - 1, j - 1] if i > 0 else after
            cost = (before + after) / 2 - LENGTH_WEIGHT * math.log2(length)
            if length % PHRASE_BARS:
                cost += PHRASE_PENALTY
            if i == 0 and round(times[i] * sr) < fade and round(times[j] * sr) + fade > x.shape[0]:
                cost += NO_CROSSFADE_PENALTY  # nothing to crossfade with: last resort
            found.append((cost, i, j))
    if not found:
        yield whole_song(x, sr, f"fewer than {MIN_BARS} steady bars: the whole song loops")
        return
    # Best first; of equal costs the earliest start, then the shortest (as found).
    found.sort(key=lambda c: c[0])
    best = found[0][0]
    for cost, i, j in found[:SEAM_TRIES]:
        if cost > best + SEAM_TRY_COST:
            return
        yield _cut(x, sr, round(times[i] * sr), round(times[j] * sr), fade, j - i, dist, i)


def _cut(
    x: np.ndarray, sr: int, start: int, end: int, fade: int, bars: int, dist: np.ndarray, i: int
) -> Carved:
    """The loop ``start``..``end`` (frames; bar ``i`` on, ``bars`` long) with its seam
    crossfaded over at most ``fade`` frames and the song's end kept as the outro."""
    end = min(end, x.shape[0])
    n = min(fade, (end - start) // 4)
    outro_end = max(end, _audible_end(x, sr))
    if n >= 2 and start >= n:
        # The loop's last beat fades into the beat before the loop start.
        fade_out, fade_in = _equal_power(n, x[end - n : end], x[start - n : start])
        edit = Edit(outro_end, end - n, end - n, start - n, fade_out, fade_in)
    elif n >= 2 and end + n <= x.shape[0]:
        # The song's continuation after the loop end fades into the loop's first beat.
        fade_out, fade_in = _equal_power(n, x[end : end + n], x[start : start + n])
        edit = Edit(outro_end, start, end, start, fade_out, fade_in)
    else:
        n = 0  # the file is whole bars from its first beat: it loops as it is
        edit = Edit(outro_end)
    return Carved(
        edit.apply(x),
        start,
        end,
        bars,
        n / sr,
        outro_end,
        distance=float(dist[i - 1, i + bars - 1]) if i > 0 else 0.0,
        edit=edit,
    )


def carve_checked(
    samples: np.ndarray, sr: int, rhythm: Rhythm | None, feats: Features | None = None
) -> Carved:
    """``carve``, then the seam measured (``segue.core.seams``). A loop on the bar grid
    whose seam stands out gives way to the next best (``_carvings``: a loop as good that
    starts a bar earlier, off the phrase's first downbeat), and when every one's does, to
    the whole-song loop if that one's does not."""
    first: Carved | None = None
    for carved in _carvings(samples, sr, rhythm, feats):
        if carved.fallback is not None or rhythm is None:
            return carved
        bar_s = rhythm.bar_s
        seam = measure_seam(carved.samples, sr, carved.loop_start, carved.loop_end, bar_s)
        carved = dataclasses.replace(carved, seam=seam, seam_bar_s=bar_s)
        if seam["ok"]:
            return carved
        first = first or carved
    assert first is not None
    whole = whole_song(
        samples, sr, "no seamless loop on the bar grid: the whole song loops, crossfaded"
    )
    seam = measure_seam(whole.samples, sr, whole.loop_start, whole.loop_end, None)
    if seam["ok"]:
        return dataclasses.replace(whole, seam=seam)
    return first


def stinger_cut(samples: np.ndarray, sr: int) -> tuple[int, int, int]:
    """(start, end, fade frames) of a stinger from a song: from a few ms before its first
    audible sample to its last, with a short fade instead of a cut at the end."""
    x = np.asarray(samples)
    level = frame_peaks(x)
    peak = float(level.max()) if level.size else 0.0
    if peak <= 0:
        return 0, level.size, 0
    loud = np.flatnonzero(level > peak * 10 ** (SILENCE_DB / 20))
    # Keep a few milliseconds before the hit so its attack is whole.
    start = max(0, int(loud[0]) - round(0.005 * sr))
    end = int(loud[-1]) + 1
    return start, end, min(round(STINGER_FADE_S * sr), (end - start) // 2)


def cut_and_fade(samples: np.ndarray, start: int, end: int, fade: int) -> np.ndarray:
    """``samples[start:end]`` with a ``fade``-frame fade-out (the same cut for every stem)."""
    out = np.array(samples[start:end], dtype=np.float32)
    if fade > 1:
        ramp = (np.cos((np.arange(fade) + 0.5) / fade * np.pi / 2) ** 2).astype(np.float32)
        out[-fade:] *= ramp[:, None] if out.ndim == 2 else ramp
    return out


def shape_stinger(samples: np.ndarray, sr: int) -> np.ndarray:
    """A stinger from a song: leading silence trimmed, a short fade instead of a cut."""
    return cut_and_fade(samples, *stinger_cut(samples, sr))
