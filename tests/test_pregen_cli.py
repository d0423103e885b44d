"""``segue pregen`` / ``segue tracks`` end to end: a YAML score, the synth, real subprocesses."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pregen_support as ps
import pytest
import soundfile as sf

from segue.core.pregen.pipeline import Pipeline
from segue.core.pregen.progress import RichReporter


def synth_ready() -> bool:
    try:
        import segue.plugins.synth  # noqa: F401
        from segue.core.score import load_score

        load_score  # noqa: B018
    except (ImportError, NotImplementedError):
        return False
    return True


SCORE = """\
segue: 1
title: CLI test
generator: synth
storage:
  - local
  - {sink: local, path: mirror}
defaults: {duration_s: 3, format: ogg}
moods:
  explore:
    prompt: Gentle harp and flute, calm
    bpm: 90
    key: D major
  victory:
    prompt: Triumphant brass fanfare
    stinger: true
rules:
  - {mood: explore}
"""


def segue(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "segue.core", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "SEGUE_DISABLE_PLUGINS": ""},
    )


@pytest.mark.skipif(not synth_ready(), reason="the synth generator or score loader is not there")
def test_pregen_the_synth_end_to_end(tmp_path):
    (tmp_path / "adaptive_score.yaml").write_text(textwrap.dedent(SCORE))
    dry = segue("pregen", "--dry-run", cwd=tmp_path)
    assert dry.returncode == 0, dry.stderr
    assert "would generate 2 of 2" in dry.stdout
    first = segue("pregen", "--json", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    summary = json.loads(first.stdout)
    assert summary["generated"] == 2 and summary["failed"] == []
    listed = segue("tracks", "--json", cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    data = json.loads(listed.stdout)
    assert sorted(t["mood"] for t in data["tracks"]) == ["explore", "victory"]
    for t in data["tracks"]:
        path = tmp_path / ".segue" / "tracks" / f"{t['id']}.ogg"
        samples, sr = sf.read(str(path))
        assert abs(len(samples) / sr - t["duration_s"]) < 0.01
        assert (tmp_path / "mirror" / path.name).read_bytes() == path.read_bytes()
        assert t["url"] == f"/tracks/{t['id']}.ogg" and t["content_type"] == "audio/ogg"
    assert {t["loop"] for t in data["tracks"]} == {True, False}
    again = segue("pregen", "--json", cwd=tmp_path)
    assert json.loads(again.stdout)["skipped"] == 2
    # --log-json: the progress lines are JSON log lines like every other (README).
    logged = segue("pregen", "--log-json", cwd=tmp_path)
    lines = [json.loads(line) for line in logged.stderr.splitlines()]
    assert lines and {line["logger"] for line in lines} == {"segue.pregen"}
    assert "0 generated, 2 already stored" in lines[-1]["message"]
    table = segue("tracks", cwd=tmp_path)
    assert "explore" in table.stdout and "ledger: $0.00" in table.stdout


def test_a_missing_score_is_bad_input(tmp_path):
    result = segue("pregen", str(tmp_path / "nope.yaml"), cwd=tmp_path)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr and "nope.yaml" in result.stderr


async def test_rich_progress_on_a_terminal(tmp_path):
    from rich.console import Console

    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=120, color_system=None, highlight=False)
    score = ps.build_score(
        tmp_path,
        ps.spec(
            {"m": {"variants": 2}, "bad": {"prompt": "x [permanent]"}},
            generator={"name": "faulty", "cost_usd": 0.25},
        ),
    )
    p = Pipeline(score, ps.plugins(), reporter=RichReporter(console), backoff_base_s=0.01)
    summary = await p.run()
    await p.aclose()
    text = out.getvalue()
    assert "3 planned, 0 already stored, 3 to generate" in text
    assert "stored" in text and "failed" in text and "refuses" in text
    assert "$0.50" in text  # spend so far
    assert summary.line() in text


def test_pregen_json_ends_with_its_summary_even_when_the_run_cannot_start(tmp_path):
    import socket

    with socket.socket() as s:  # a port nothing listens on: the cache cannot be reached
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    text = SCORE.replace(
        "generator: synth\n",
        f"generator: synth\ncache: {{backend: redis, url: 'redis://127.0.0.1:{port}/0'}}\n",
    )
    (tmp_path / "adaptive_score.yaml").write_text(textwrap.dedent(text))
    run = segue("pregen", "--json", cwd=tmp_path)
    assert run.returncode == 2, run.stderr
    summary = json.loads(run.stdout)
    assert "cannot reach" in summary["error"] and summary["spent_usd"] == 0
    assert "Traceback" not in run.stderr


def test_the_log_reporter_counts_on_demand_generations_without_a_planned_total() -> None:
    # `segue serve --no-pregen` generates on demand: no run started, no total to count out of.
    from types import SimpleNamespace

    from segue.core.pregen.progress import LogReporter

    out = io.StringIO()
    reporter = LogReporter(stream=out)
    planned = SimpleNamespace(request=SimpleNamespace(mood="calm", variant=0), key="1fadd56b" * 8)
    reporter.update(planned, "stored", "4.0s $0.00")
    assert out.getvalue() == "pregen: calm#0 stored 4.0s $0.00 (1fadd56b1fad) [1]\n"
    reporter.started([planned, planned], 2, 0.0)
    reporter.update(planned, "failed")
    assert out.getvalue().splitlines()[-1] == "pregen: calm#0 failed (1fadd56b1fad) [1/2]"
