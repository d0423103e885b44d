"""The example score (``adaptive_score.yaml``) through the whole pipeline, with the synth.

A copy is pregenerated once with ``segue pregen`` (a real subprocess) and listed with
``segue tracks --json``; the stored Ogg files are decoded and measured as a listener
would: every loop's seam passes, loudness is on the score's target and true peaks are at
or below -1 dBTP, the tempo is the score's, and no track carries a warning. The copy keeps
every mood, prompt, key, tempo and the combat composition plan (57.6 s, its own length);
only the default loop length is shortened, to keep the test quick.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import audio_measure as am
import pytest
import yaml

from segue.core import audio
from segue.core.seams import measure_seam
from segue.plugins.synth.words import parse_key

SCORE = Path(__file__).resolve().parents[1] / "adaptive_score.yaml"
LOOP_S = 20.0
WARNINGS = ("tempo_warning", "loudness_warning")


def _segue(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NO_COLOR": "1"}
    return subprocess.run(
        [sys.executable, "-m", "segue.core", *args],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )


@pytest.fixture(scope="module")
def example(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The pregenerated copy: its score data, its tracks, and each track's decoded audio."""
    root = tmp_path_factory.mktemp("example-score")
    data = yaml.safe_load(SCORE.read_text(encoding="utf-8"))
    defaults = data.setdefault("defaults", {})
    defaults["duration_s"] = min(LOOP_S, defaults.get("duration_s", LOOP_S))
    path = root / "adaptive_score.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    run = _segue("pregen", str(path))
    assert run.returncode == 0, run.stdout + run.stderr
    listing = _segue("tracks", str(path), "--json")
    assert listing.returncode == 0, listing.stderr
    tracks = json.loads(listing.stdout)["tracks"]
    decoded = {t["id"]: audio.read(root / ".segue" / "tracks" / f"{t['id']}.ogg") for t in tracks}
    return {"score": data, "tracks": tracks, "decoded": decoded}


def _mood(example: dict[str, Any], track: dict[str, Any]) -> dict[str, Any]:
    return example["score"]["moods"][track["mood"]]


def _loops(example: dict[str, Any]) -> list[dict[str, Any]]:
    return [t for t in example["tracks"] if t["loop"]]


def test_every_mood_and_variant_is_stored_as_ogg(example):
    expected = {
        (name, v)
        for name, mood in example["score"]["moods"].items()
        for v in range(mood.get("variants", example["score"]["defaults"].get("variants", 1)))
    }
    assert {(t["mood"], t["variant"]) for t in example["tracks"]} == expected
    assert {t["format"] for t in example["tracks"]} == {"ogg"}
    assert {t["mood"] for t in _loops(example)} == {
        name for name, mood in example["score"]["moods"].items() if not mood.get("stinger")
    }


def test_no_track_carries_a_warning(example):
    for t in example["tracks"]:
        flagged = {k: t["extra"][k] for k in WARNINGS if k in t["extra"]}
        assert not flagged, (t["mood"], t["variant"], flagged)
        if t["loop"]:
            assert t["extra"]["seam_ok"] is True, (t["mood"], t["extra"]["seam"])


def test_decoded_loudness_is_on_target_and_true_peaks_under_minus_1_dbtp(example):
    target = float(example["score"].get("loudness_lufs", -16.0))
    for t in example["tracks"]:
        x, sr = example["decoded"][t["id"]]
        where = f"{t['mood']}#{t['variant']}"
        assert audio.loudness(x, sr) == pytest.approx(target, abs=0.5), where
        assert audio.true_peak_db(x, sr) <= -1.0, where
        assert t["loudness_lufs"] == pytest.approx(target, abs=0.5), where


def test_decoded_loops_are_whole_bars_and_seamless(example):
    for t in _loops(example):
        x, sr = example["decoded"][t["id"]]
        where = f"{t['mood']}#{t['variant']}"
        bar_s = t["beats_per_bar"] * 60.0 / t["bpm"]
        start, end = round(t["loop_start_s"] * sr), round(t["loop_end_s"] * sr)
        assert (start, end) == (0, x.shape[0]), where  # the whole file loops, gaplessly
        bars = (end - start) / sr / bar_s
        assert abs(bars - round(bars)) * bar_s * sr < 1.0, where
        seam = measure_seam(x, sr, start, end, bar_s)
        assert seam["ok"], (where, seam)
        report = am.seam_report(x[start:end], sr, bar_s)
        assert report.jump <= report.jump_limit, (where, report)
        assert report.flux <= 1.25 * report.flux_limit, (where, report)
        assert report.level_step_db <= report.level_step_limit_db + 1.5, (where, report)
        assert am.longest_silence(x[start:end], sr) <= 0.05, where


def test_tempo_and_key_are_the_scores(example):
    for t in example["tracks"]:
        mood = _mood(example, t)
        if mood.get("bpm") is not None:
            assert t["bpm"] == mood["bpm"], t["mood"]
        if not t["loop"]:
            continue
        x, sr = example["decoded"][t["id"]]
        heard = am.tempo(x, sr)
        assert abs(heard - t["bpm"]) / t["bpm"] <= 0.015, (t["mood"], heard)
        # The synth composed on its grid: beat_grid took its tempo as a fact, unmeasured.
        assert t["extra"]["exact_grid"] is True and "tempo_estimate" not in t["extra"]
        assert "tempo_warning" not in t["extra"], t["mood"]
        key = parse_key(mood.get("key") or "")
        if key is not None and key.mode in ("major", "minor"):
            assert am.key(x, sr) == (key.tonic, key.mode), t["mood"]
