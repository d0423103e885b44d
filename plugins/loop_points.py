"""Loop points: a song carved into lead-in, loop and outro; the seam measured.

Runs on ``segue_process_track`` after ``beat_grid`` (``tryfirst``) and before ``loudness``
(``trylast``). A looping track whose generator gave no ``loop_end_s`` (a model's *song*)
is carved by ``segue.core.carving`` on its bar grid (``bpm``, ``first_beat_s``,
``beats_per_bar``): the intro stays as a lead-in played once, the loop is whole bars
chosen where the seam matches best, its end crossfaded into the music before its start,
and the rest of the song stays after ``loop_end_s`` as the outro
(``extra.loop.outro_start_s``/``outro_end_s``). Without a tempo, or too short, the whole
song loops with a crossfade and ``extra.loop.fallback`` says why. A stinger (``loop:
false``) gets its leading silence trimmed and a short fade at its end; ``loop_end_s`` is
its duration. A generator's own loop points (the synth's) are kept as they are.

The seam (the jump from ``loop_end_s`` back to ``loop_start_s``) is then measured as a
listener hears it: the sample-to-sample jump, and the spectral flux and level step across
the seam, against the same measures inside the loop (at its other bar lines: the seam is
a bar line too). ``extra["seam_ok"]`` is True when all are within the loop's own normal
range; ``extra["seam"]`` holds the figures (``segue.core.seams.measure_seam``, which the
synth uses too).
"""

from __future__ import annotations

import logging
import math

from segue.core import analysis, carving, hookimpl
from segue.core.audio import TrackAudio
from segue.core.seams import measure_seam
from segue.core.track import Track

log = logging.getLogger("segue.plugins.loop_points")

# Loop ends this close to the end of the file are the end of the file (rounding).
SNAP_S = 0.002


def loop_region(track: Track, duration_s: float) -> tuple[float, float]:
    """(loop_start_s, loop_end_s) for ``track`` as the plugin fills them."""
    if not track.loop:
        return 0.0, duration_s
    start = track.loop_start_s or 0.0
    if track.loop_end_s is not None:
        return start, min(track.loop_end_s, duration_s)
    if start == 0.0:
        start = track.first_beat_s or 0.0
    start = min(max(0.0, start), duration_s)
    if track.bpm:
        bar = track.beats_per_bar * 60.0 / track.bpm
        bars = math.floor((duration_s - start) / bar + SNAP_S / bar)
        if bars >= 1:
            end = start + bars * bar
            return start, duration_s if abs(duration_s - end) <= SNAP_S else end
    return start, duration_s


def carve(audio: TrackAudio) -> tuple[TrackAudio, carving.Carved]:
    """The song carved into lead-in, loop and outro on its track's bar grid, and how."""
    track, sr = audio.track, audio.rate
    duration = audio.frames / sr
    rhythm = None
    if track.bpm:
        rhythm = analysis.grid(track.bpm, track.first_beat_s, track.beats_per_bar, duration)
    feats, _ = analysis.analyse_cached(audio.samples, sr)
    carved = carving.carve_checked(audio.samples, sr, rhythm, feats)
    start_s, end_s = carved.loop_start / sr, carved.loop_end / sr
    info: dict[str, object] = {
        "carved": True,
        "bars": carved.bars,
        "lead_in_s": round(start_s, 6),
        "crossfade_s": round(carved.crossfade_s, 4),
        "outro_start_s": round(end_s, 6),
        "outro_end_s": round(carved.outro_end / sr, 6),
        "source_s": round(duration, 6),
    }
    if carved.fallback:
        info["fallback"] = carved.fallback
        log.info("%s: %s", track.id[:12], carved.fallback)
    extra = {**track.extra, "loop": info}
    changes = {
        "loop_start_s": round(start_s, 6),
        "loop_end_s": round(end_s, 6),
        "duration_s": round(carved.samples.shape[0] / sr, 6),
        "extra": extra,
    }
    track = track.replace(**changes)
    if carved.edit is None:
        return audio.replace(track=track), carved  # the song loops as it is
    # The same cut and crossfade for the mix and every stem (carved.samples is the mix's).
    stems = {name: carved.edit.apply(x) for name, x in audio.stems.items()}
    return audio.replace(samples=carved.samples, stems=stems, track=track), carved


def stinger(audio: TrackAudio) -> TrackAudio:
    """A one-shot: leading silence trimmed, a short fade instead of a cut at its end."""
    start, end, fade = carving.stinger_cut(audio.samples, audio.rate)
    duration = round((end - start) / audio.rate, 6)
    extra = {**audio.track.extra, "trimmed_s": round(audio.duration_s - duration, 4)}
    track = audio.track.replace(loop_end_s=duration, duration_s=duration, extra=extra)
    # The same cut and fade for the mix and every stem.
    return audio.apply(lambda x: carving.cut_and_fade(x, start, end, fade), track=track)


@hookimpl
def segue_process_track(audio: TrackAudio) -> TrackAudio | None:
    """Carve a song into a loop (or shape a stinger) and measure the seam."""
    try:
        return _process(audio)
    finally:
        # The last built-in step that reads the analysis beat_grid made (it runs first):
        # its memo would hold as much again as the samples through loudness and encoding.
        analysis.forget()


def _process(audio: TrackAudio) -> TrackAudio | None:
    track = audio.track
    if not track.loop:
        return None if track.loop_end_s is not None else stinger(audio)
    carved = None
    if track.loop_end_s is None:
        audio, carved = carve(audio)
        track = audio.track
    samples, sr = audio.samples, audio.rate
    start_s, end_s = loop_region(track, audio.duration_s)
    changes: dict[str, object] = {
        "loop_start_s": round(start_s, 6),
        "loop_end_s": round(end_s, 6),
    }
    start, end = round(start_s * sr), round(end_s * sr)
    extra = dict(track.extra)
    if end - start < 2:
        extra["seam_ok"] = False
        extra["seam"] = {"ok": False, "reason": "loop shorter than two samples"}
    else:
        fallback = isinstance(extra.get("loop"), dict) and extra["loop"].get("fallback")
        bar_s = track.beats_per_bar * 60.0 / track.bpm if track.bpm and not fallback else None
        end = min(end, samples.shape[0])
        if (
            carved is not None
            and carved.seam is not None
            and (carved.loop_start, carved.loop_end, carved.seam_bar_s) == (start, end, bar_s)
        ):
            seam = carved.seam  # the carving measured this very seam
        else:
            seam = measure_seam(samples, sr, start, end, bar_s)
        extra["seam_ok"] = seam["ok"]
        extra["seam"] = seam
        if not seam["ok"]:
            log.info(
                "%s: the loop seam stands out (jump %.4f, normal up to %.4f; flux %.2f, "
                "%.2f at the other bar lines)",
                track.id[:12],
                seam["jump"],
                seam["jump_limit"],
                seam["flux"],
                seam["flux_limit"],
            )
    return audio.replace(track=track.replace(extra=extra, **changes))
