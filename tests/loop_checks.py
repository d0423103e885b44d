"""What a loop carved from a song must be: checks shared by the tests and the benchmark.

- the seam within the range of the loop's own bar lines (sample jump, spectral flux,
  level steps), as ``loop_points`` measures it;
- a whole number of bars, starting on a beat of the song's grid;
- no fade (no bar of the loop FADE_DB below the loop's median bar, its last bar no more
  than END_DB below it) and no silence (no LONGEST_SILENCE_S below SILENCE_DB dBFS
  inside the loop, such as the silence after a final cadence).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from audio_measure import longest_silence

from segue.core.analysis import Rhythm
from segue.core.carving import Carved
from segue.core.seams import measure_seam

FADE_DB = 10.0
END_DB = 4.0
SILENCE_DB = -50.0
LONGEST_SILENCE_S = 0.5
BEAT_TOLERANCE_S = 0.002
BAR_TOLERANCE = 0.01


@dataclass
class LoopReport:
    seam: dict
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def bar_levels_db(x: np.ndarray, sr: int, bar_s: float) -> np.ndarray:
    n = round(bar_s * sr)
    bars = x.shape[0] // n
    if bars == 0:
        return np.array([])
    chunks = x[: bars * n].reshape(bars, n, -1)
    return 10 * np.log10(np.mean(chunks.astype(np.float64) ** 2, axis=(1, 2)) + 1e-12)


def loop_report(c: Carved, sr: int, rhythm: Rhythm | None) -> LoopReport:
    loop = c.samples[c.loop_start : c.loop_end]
    if c.fallback is not None or rhythm is None:
        seam = measure_seam(c.samples, sr, c.loop_start, c.loop_end, None)
        report = LoopReport(seam)
        if not seam["ok"]:
            report.problems.append("seam stands out")
        return report
    bar_s = rhythm.bar_s
    seam = measure_seam(c.samples, sr, c.loop_start, c.loop_end, bar_s)
    report = LoopReport(seam)
    if not seam["ok"]:
        report.problems.append("seam stands out")
    bars = (c.loop_end - c.loop_start) / sr / bar_s
    if abs(bars - round(bars)) > BAR_TOLERANCE or round(bars) < 1:
        report.problems.append(f"{bars:.3f} bars, not a whole number")
    start_s = c.loop_start / sr
    if np.min(np.abs(rhythm.beats - start_s), initial=1.0) > BEAT_TOLERANCE_S:
        report.problems.append(f"starts at {start_s:.3f} s, off the beat grid")
    levels = bar_levels_db(loop, sr, bar_s)
    if levels.size:
        median = float(np.median(levels))
        if levels.min() < median - FADE_DB:
            report.problems.append(f"a bar {median - levels.min():.1f} dB under the loop's median")
        if levels[-1] < median - END_DB:
            report.problems.append(f"ends {median - levels[-1]:.1f} dB under its median: a fade")
    silence = longest_silence(loop, sr, SILENCE_DB, circular=True)
    if silence > LONGEST_SILENCE_S:
        report.problems.append(f"{silence:.2f} s of silence")
    return report
