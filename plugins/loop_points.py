"""Loop-point metadata, and a measurement of the seam a looping track will play.

Runs on ``segue_process_track`` after ``beat_grid`` (``tryfirst``) and before ``loudness``
(``trylast``). For a looping track whose generator gave no ``loop_end_s``: the loop starts
at ``loop_start_s`` if set, else at the first beat, and ends at the last whole bar inside
the file when the tempo is known (else at the end of the file). A stinger (``loop:
false``) plays once: ``loop_end_s`` is its duration.

The seam (the jump from ``loop_end_s`` back to ``loop_start_s``) is measured as a
listener hears it: the sample-to-sample jump, and the spectral flux and level step across
the seam, against the same measures inside the loop (at its other bar lines: the seam is
a bar line too). ``extra["seam_ok"]`` is True when all are within the loop's own normal
range; ``extra["seam"]`` holds the figures (``segue.core.seams.measure_seam``, which the
synth uses too).
"""

from __future__ import annotations

import logging
import math

from segue.core import hookimpl
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


@hookimpl
def segue_process_track(audio: TrackAudio) -> TrackAudio | None:
    """Fill the loop points and measure the seam (metadata only: the samples are kept)."""
    track, samples, sr = audio.track, audio.samples, audio.rate
    start_s, end_s = loop_region(track, audio.duration_s)
    changes: dict[str, object] = {}
    if not track.loop:
        if track.loop_end_s is not None:
            return None
        return audio.replace(track=track.replace(loop_end_s=end_s))
    changes["loop_start_s"] = round(start_s, 6)
    changes["loop_end_s"] = round(end_s, 6)
    start, end = round(start_s * sr), round(end_s * sr)
    extra = dict(track.extra)
    if end - start < 2:
        extra["seam_ok"] = False
        extra["seam"] = {"ok": False, "reason": "loop shorter than two samples"}
    else:
        bar_s = track.beats_per_bar * 60.0 / track.bpm if track.bpm else None
        seam = measure_seam(samples, sr, start, min(end, samples.shape[0]), bar_s)
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
