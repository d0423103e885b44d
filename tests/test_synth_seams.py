"""Short synth loops are seamless: the loop point is measured like every other bar line.

Two to eight bars, every family of mood words, with and without composition plans: the
seam passes ``tests/audio_measure.seam_report`` (with the margins of the long-loop test in
``test_synth_music.py``) and the pipeline's own check (``segue.core.seams.measure_seam``), and
the loop has no silence.
"""

from __future__ import annotations

import audio_measure as am
import pytest
import soundfile as sf

from segue.core.request import GenerationRequest
from segue.core.seams import measure_seam
from segue.plugins.synth import SynthGenerator
from segue.plugins.synth.composer import compose

PROMPTS = {
    "calm": "Calm peaceful ambient pads",
    "tense": "Low string ostinato and distant drums, uneasy and watchful",
    "dark": "Dark mysterious cave, eerie and haunting",
    "epic": "Driving orchestral battle music with taiko drums and brass stabs",
    "triumphant": "Triumphant heroic victory theme",
    "sad": "Sad melancholic piano and strings",
    "playful": "Playful whimsical marimba and pizzicato",
    "chiptune": "Chiptune adventure",
    "swing": "Lo-fi hip hop, dusty keys",
    "waltz": "Gentle waltz",
}


def _section(name: str, ms: int, positive: list[str], negative: list[str]) -> dict:
    return {
        "section_name": name,
        "positive_local_styles": positive,
        "negative_local_styles": negative,
        "duration_ms": ms,
        "lines": [],
    }


PLANS = {
    "build-battle": {
        "positive_global_styles": ["epic orchestral"],
        "negative_global_styles": [],
        "sections": [
            _section("Build-up", 3000, ["taiko build"], []),
            _section("Battle", 9000, ["full orchestra"], []),
        ],
    },
    "intro-main-breakdown": {
        "positive_global_styles": [],
        "negative_global_styles": [],
        "sections": [
            _section("Intro", 4000, ["calm", "sparse"], ["drums"]),
            _section("Main", 8000, ["driving"], []),
            _section("Breakdown", 4000, ["quiet"], []),
        ],
    },
}
CASES = [(bars, "prompt", name) for name in PROMPTS for bars in (2, 3, 4, 8)]
CASES += [(bars, "plan", name) for name in PLANS for bars in (2, 3, 4, 8)]


@pytest.mark.parametrize(("bars", "kind", "name"), CASES)
async def test_short_loop_seam_passes_both_measures(tmp_path, bars, kind, name):
    fields: dict = {"mood": "m", "variant": 0, "prompt": PROMPTS.get(name, "")}
    if kind == "plan":
        fields["composition_plan"] = PLANS[name]
    probe = compose(GenerationRequest(**fields, duration_s=4.0))  # the words' own tempo
    bar_s = probe.beats_per_bar * 60.0 / probe.bpm
    request = GenerationRequest(**fields, duration_s=bars * bar_s)
    out = await SynthGenerator({}, tmp_path).generate(request, tmp_path)
    x, sr = sf.read(out.path, dtype="float64")
    assert out.extra["bars"] == bars and out.loop_end_s == pytest.approx(len(x) / sr)

    report = am.seam_report(x, sr, bar_s)
    assert report.jump <= report.jump_limit, report
    assert report.flux <= 1.25 * report.flux_limit, report
    assert report.level_step_db <= report.level_step_limit_db + 1.5, report
    seam = measure_seam(x, sr, 0, len(x), bar_s)
    assert seam["ok"], seam
    assert am.longest_silence(x, sr) <= 0.05
