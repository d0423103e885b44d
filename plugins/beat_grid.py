"""Tempo, beats, bars and meter from the audio: fills ``bpm``/``first_beat_s``/``beats_per_bar``.

Runs first on ``segue_process_track`` (``tryfirst``), so loop points can use the grid.
The analysis is ``segue.core.analysis`` (tempo octave-right without a hint, beats,
downbeats, meter, each with a confidence; measured on real recordings in docs/audio.md).
The request's tempo (``extra.requested_bpm``) is a hint, never trusted: it picks the
octave when the measured tempo is within 4 % of it at x1, x2 or /2, and a tempo further
away is reported in ``extra.tempo_warning``. ``first_beat_s`` is the first downbeat (bar
line), so a grid of ``beats_per_bar`` beats from it is the music's bars. A generator that
placed every note on its grid says so (``extra.exact_grid``: the synth): nothing is
measured, its tempo is only compared with the request's.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np

from segue.core import analysis, hookimpl
from segue.core.audio import TrackAudio
from segue.core.track import Track

log = logging.getLogger("segue.plugins.beat_grid")

# A tempo this far from the request (after octave errors) is flagged.
TEMPO_TOLERANCE = 0.04
# A one-shot whose tempo is this unclear has no steady beat to check (a few seconds of a
# slow sting: its tempo estimate is chance). Loops measure 0.37-0.95, the synth's stingers
# 0.03-0.1.
ONE_SHOT_MIN_TEMPO_CONFIDENCE = 0.2


@dataclass(frozen=True)
class BeatGrid:
    bpm: float
    first_beat_s: float
    clarity: float  # 0..1: how much of the onset strength falls on the grid's beats
    periodicity: float  # autocorrelation of the onset strength 1-4 beats apart (the largest)
    rhythm: analysis.Rhythm | None = None


def analyse(samples: np.ndarray, sr: int) -> BeatGrid | None:
    """The tempo and first beat of ``samples``, or None if they have no clear pulse."""
    _, rhythm = analysis.analyse_cached(samples, sr)
    if rhythm is None:
        return None
    return BeatGrid(
        bpm=rhythm.bpm,
        first_beat_s=rhythm.first_beat_s,
        clarity=rhythm.beat_confidence,
        periodicity=rhythm.periodicity,
        rhythm=rhythm,
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


def _check_composed(track: Track, bpm: float, requested: float) -> Track | None:
    """A generator that composed on its grid (``extra.exact_grid``, the synth): its tempo
    is a fact, not a guess to measure; only checked against the request."""
    if octave_match(bpm, requested) is not None:
        return None
    warning = _tempo_warning(track, f"the generator's tempo {bpm:g} BPM", requested)
    return track.replace(extra={**track.extra, "tempo_warning": warning})


def _tempo_warning(track: Track, tempo: str, requested: float) -> str:
    """``tempo`` is too far from the request: the warning, logged."""
    warning = f"{tempo} is more than {TEMPO_TOLERANCE:.0%} from the requested {requested:g} BPM"
    log.warning("%s: %s", track.id, warning)
    return warning


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
    if track.bpm is not None and requested is not None and track.extra.get("exact_grid") is True:
        return _check_composed(track, track.bpm, requested)
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
    rhythm = grid.rhythm
    extra["tempo_estimate"] = round(grid.bpm, 2)
    extra["tempo_clarity"] = round(grid.clarity, 3)
    if rhythm is not None:
        extra["rhythm"] = {
            "tempo_confidence": round(rhythm.tempo_confidence, 3),
            "beat_confidence": round(rhythm.beat_confidence, 3),
            "meter": rhythm.meter,
            "meter_confidence": round(rhythm.meter_confidence, 3),
            "downbeat_confidence": round(rhythm.downbeat_confidence, 3),
        }
    estimate = grid.bpm
    unclear_one_shot = (
        not track.loop
        and rhythm is not None
        and rhythm.tempo_confidence < ONE_SHOT_MIN_TEMPO_CONFIDENCE
    )
    if requested is not None and not unclear_one_shot:
        matched = octave_match(estimate, requested)
        if matched is None:
            tempo = f"estimated tempo {estimate:.1f} BPM"
            extra["tempo_warning"] = _tempo_warning(track, tempo, requested)
        else:
            estimate = matched  # the requested octave is the intended one
    if track.bpm is None:
        changes["bpm"] = round(estimate, 3)
        beat = 60.0 / estimate
        if rhythm is not None and abs(estimate / rhythm.bpm - 1) < 0.01:
            # The measured level: bars and their first downbeat as measured, and the
            # meter as the synth names its own (a 6/8's beats are dotted quarters).
            changes["beats_per_bar"] = rhythm.beats_per_bar
            extra["meter"] = rhythm.meter
            changes["first_beat_s"] = round(rhythm.first_downbeat_s % rhythm.bar_s, 4)
        else:
            # Another octave (the request's): the grid's phase holds only for the faster
            # level; the earliest beat of the chosen period is the first grid point.
            changes["first_beat_s"] = round(grid.first_beat_s % beat, 4)
    return track.replace(extra=extra, **changes)
