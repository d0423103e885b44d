"""As a new user would: `segue fal-emulator` in one process, `segue plan`/`segue pregen
--generator fal` in others, with the environment variables the emulator printed."""

from __future__ import annotations

import json
import os
import ssl
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import fal_support as fs
import numpy as np
import pyloudnorm
import pytest
import soundfile as sf

# The console script of the Python running the tests (a venv's, or the system's in CI),
# not whichever `segue` comes first on PATH.
SEGUE = str(Path(sys.executable).with_name("segue"))

SCORE = """\
segue: 1
title: Tiny fal score
generator: {name: fal, poll_interval_s: 0.1}
budget_usd: 5
loudness_lufs: -16
defaults: {duration_s: 4, format: ogg}
moods:
  explore: {prompt: Gentle harp and flute, bpm: 84}
  combat:
    prompt: Driving battle music
    bpm: 140
    composition_plan:
      positive_global_styles: [epic orchestral]
      negative_global_styles: [lo-fi]
      sections:
        - section_name: Build
          positive_local_styles: [taiko]
          negative_local_styles: []
          duration_ms: 3000
          lines: []
        - section_name: Loop
          positive_local_styles: [brass]
          negative_local_styles: []
          duration_ms: 4000
          lines: []
  victory: {prompt: Brass fanfare, duration_s: 3, stinger: true}
rules:
  - {mood: explore}
"""


class Emulator:
    def __init__(self, proc: subprocess.Popen[str], env: dict[str, str], banner: str) -> None:
        self.proc = proc
        self.env = env
        self.banner = banner

    def stats(self) -> dict:
        context = ssl.create_default_context(cafile=self.env["SSL_CERT_FILE"])
        url = f"https://{self.env['FAL_QUEUE_RUN_HOST']}/_emulator/stats"
        with urllib.request.urlopen(url, context=context, timeout=10) as resp:
            return json.load(resp)


def start_emulator(tmp_path: Path, *args: str) -> Iterator[Emulator]:
    proc = subprocess.Popen(
        [SEGUE, "fal-emulator", "--port", "0", "--ca-file", str(tmp_path / "ca.pem"), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=fs.clean_env({}),
    )
    lines = []
    try:
        while True:
            line = proc.stdout.readline()
            if not line:
                raise AssertionError("emulator exited: " + proc.stderr.read())
            lines.append(line)
            if line.startswith("export FAL_KEY="):
                break
        env = {}
        for line in lines:
            if line.startswith("export "):
                name, _, value = line[len("export ") :].split("#")[0].strip().partition("=")
                env[name] = value
        yield Emulator(proc, env, "".join(lines))
    finally:
        proc.terminate()
        proc.wait(timeout=15)


@pytest.fixture
def emulator(tmp_path):
    yield from start_emulator(tmp_path, "--latency", "0.2")


def segue(
    score_dir: Path, emulator: Emulator, *args: str, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    env = fs.clean_env({**emulator.env, "FAL_KEY": fs.KEY})
    return subprocess.run(
        [SEGUE, *args],
        cwd=score_dir,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_the_emulator_prints_what_to_export(emulator, tmp_path):
    assert set(emulator.env) == {"FAL_RUN_HOST", "FAL_QUEUE_RUN_HOST", "SSL_CERT_FILE", "FAL_KEY"}
    assert emulator.env["FAL_RUN_HOST"] == emulator.env["FAL_QUEUE_RUN_HOST"]
    assert emulator.env["FAL_RUN_HOST"].startswith("127.0.0.1:")
    assert emulator.env["SSL_CERT_FILE"] == str(tmp_path / "ca.pem")
    assert "BEGIN CERTIFICATE" in (tmp_path / "ca.pem").read_text()


def test_plan_shows_the_cost_and_pregen_stores_normalised_tracks(emulator, tmp_path):
    (tmp_path / "adaptive_score.yaml").write_text(SCORE)
    plan = segue(tmp_path, emulator, "plan", "--generator", "fal")
    assert plan.returncode == 0, plan.stderr
    assert "$0.80" in plan.stdout and "$2.40" in plan.stdout
    assert emulator.stats()["requests"] == {"debug": 1}  # planning sends nothing to fal

    pregen = segue(tmp_path, emulator, "pregen", "--generator", "fal")
    assert pregen.returncode == 0, pregen.stderr
    assert "3 generated" in pregen.stderr and "spent $2.40" in pregen.stderr

    listed = segue(tmp_path, emulator, "tracks", "--json")
    tracks = {t["mood"]: t for t in json.loads(listed.stdout)["tracks"]}
    expected = {"explore": 4.0, "combat": 7.0, "victory": 3.0}
    assert set(tracks) == set(expected)
    for mood, seconds in expected.items():
        track = tracks[mood]
        assert (track["generator"], track["model"]) == ("fal", "fal-ai/elevenlabs/music")
        assert track["cost_usd"] == pytest.approx(0.80)
        assert track["loop"] is (mood != "victory")
        path = tmp_path / ".segue" / "tracks" / f"{track['id']}.ogg"
        data, rate = sf.read(str(path))
        # At most what was asked: a short song loops whole, its tail crossfaded into its
        # start; a stinger loses its trailing silence.
        assert seconds / 2 <= len(data) / rate <= seconds + 0.06
        assert track["loop_end_s"] == pytest.approx(len(data) / rate, abs=0.06)
        loudness = pyloudnorm.Meter(rate).integrated_loudness(data)
        assert loudness == pytest.approx(-16.0, abs=0.5)
    assert sorted(os.listdir(tmp_path / ".segue" / "tracks")) == sorted(
        f"{t['id']}.ogg" for t in tracks.values()
    )

    again = segue(tmp_path, emulator, "pregen", "--generator", "fal")
    assert again.returncode == 0 and "0 generated, 3 already stored" in again.stderr
    stats = emulator.stats()
    assert stats["requests"]["submit"] == 3 and stats["jobs"]["max_running"] <= 2
    for output in (plan.stdout, plan.stderr, pregen.stdout, pregen.stderr, again.stderr):
        assert fs.KEY not in output


def test_pregen_retries_5xx_and_bad_downloads_never_a_4xx_and_stores_nothing_corrupt(tmp_path):
    (tmp_path / "adaptive_score.yaml").write_text(SCORE)
    faults = "422:nth=1;500:nth=2;truncated:nth=1;wrong_type:nth=2"
    for emulator in start_emulator(tmp_path, "--latency", "0.1", "--no-synth", "--faults", faults):
        run = segue(tmp_path, emulator, "pregen", "--json", "--retry-base-s", "0.01")
        assert run.returncode == 1, run.stderr
        summary = json.loads(run.stdout)
        (failed,) = summary["failed"]
        assert failed["attempts"] == 1 and "HTTP 422" in failed["reason"]
        stored = [t for t in summary["tracks"] if t["state"] == "stored"]
        assert len(stored) == 2
        # Submits: the 422 once (a retried 4xx would succeed later and make more), the 500
        # and its retry, the third mood, and one more for each of the two bad downloads.
        stats = emulator.stats()
        assert stats["requests"]["submit"] == 6 and stats["requests"]["media"] == 4
        assert sum(t["attempts"] for t in stored) == 5
    listed = json.loads(segue(tmp_path, emulator, "tracks", "--json").stdout)["tracks"]
    assert len(listed) == 2
    for track in listed:
        data, rate = sf.read(str(tmp_path / ".segue" / "tracks" / f"{track['id']}.ogg"))
        assert len(data) / rate == pytest.approx(track["duration_s"], abs=1e-3)
        # A chord with no beat becomes a crossfaded whole-song loop, shorter than the answer
        # by its crossfade; nothing longer than what was asked for is ever stored.
        requested = {"explore": 4.0, "combat": 7.0, "victory": 3.0}[track["mood"]]
        assert requested / 2 <= track["duration_s"] <= requested + 0.06


def test_a_bad_fault_spec_is_refused_in_one_line(tmp_path):
    run = subprocess.run(
        [sys.executable, "-m", "segue.plugins.fal", "--port", "0", "--faults", "teapot:nth=1"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 2
    assert run.stderr.strip().splitlines() == [
        "segue: fal-emulator: fault 'teapot:nth=1': unknown kind 'teapot' (an HTTP status "
        "400-599, or one of slow_queue, run_error, expired_url, truncated, wrong_type)"
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--concurrency", "0"], "--concurrency must be >= 1"),
        (["--latency", "-1"], "--latency must be a number of seconds >= 0, not -1.0"),
        (["--media-ttl", "0"], "--media-ttl must be a number of seconds > 0, not 0.0"),
        (["--latency", "nan"], "--latency must be a number of seconds >= 0, not nan"),
        (["--key", " "], "--key must not be empty"),
        (["--port", "99999"], "--port must be 0-65535, not 99999"),
    ],
)
def test_bad_emulator_options_are_refused_before_it_serves(args, message, capsys):
    from segue.plugins.fal.emulator import main as emulator_main

    assert emulator_main(["--port", "0", *args]) == 2
    assert capsys.readouterr().err.strip() == f"segue: fal-emulator: {message}"


def test_without_fal_key_plan_shows_costs_and_pregen_exits_2_before_any_request(tmp_path):
    (tmp_path / "adaptive_score.yaml").write_text(SCORE)
    env = fs.clean_env({})

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [SEGUE, *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
        )

    plan = run("plan", "--generator", "fal")
    assert plan.returncode == 0, plan.stderr
    assert "$2.40" in plan.stdout  # what it would cost, before signing up
    pregen = run("pregen", "--generator", "fal")
    assert pregen.returncode == 2
    assert (
        pregen.stderr.strip()
        .splitlines()[-1]
        .startswith("segue: generator fal: FAL_KEY is not set")
    )
    assert "Traceback" not in pregen.stderr
    # serve too, also when it only generates what sessions ask for: its port is taken
    # first, then it refuses before serving (it would only fail each on-demand track).
    for args in ((), ("--no-pregen",)):
        serve = run("serve", "--generator", "fal", "--port", "0", *args)
        assert serve.returncode == 2, (args, serve.stderr)
        assert (
            serve.stderr.strip()
            .splitlines()[-1]
            .startswith("segue: generator fal: FAL_KEY is not set")
        ), (args, serve.stderr)
        assert "Traceback" not in serve.stderr


SONG_SCORE = """\
segue: 1
title: Songs through fal
generator: {name: fal, poll_interval_s: 0.1}
budget_usd: 20
loudness_lufs: -16
defaults: {duration_s: 45, format: ogg}
moods:
  explore: {prompt: Calm adventure theme}
  combat: {prompt: Driving battle music}
rules:
  - {mood: explore}
"""


@pytest.mark.timeout(600)  # two 45 s songs analysed, carved and encoded on a loaded machine
def test_pregen_through_fal_carves_real_songs_into_seamless_loops(tmp_path):
    """Real recordings (Debian game music) answered by the emulator, cut to 60 s with a
    fade-out as a model's song (45 s here); every stored loop is whole bars on the beat, without the
    fade, its seam within the range of its own bar lines."""
    from corpus import require_corpus, songs
    from loop_checks import bar_levels_db

    from segue.core.seams import measure_seam

    require_corpus()
    music = tmp_path / "music"
    music.mkdir()
    for path in songs()[:8]:
        (music / path.name).symlink_to(path)
    (tmp_path / "adaptive_score.yaml").write_text(SONG_SCORE)
    for emulator in start_emulator(tmp_path, "--latency", "0.1", "--audio-dir", str(music)):
        pregen = segue(tmp_path, emulator, "pregen", "--generator", "fal", timeout=600)
        assert pregen.returncode == 0, pregen.stderr
        listed = segue(tmp_path, emulator, "tracks", "--json")
    tracks = json.loads(listed.stdout)["tracks"]
    assert len(tracks) == 2
    for track in tracks:
        path = tmp_path / ".segue" / "tracks" / f"{track['id']}.ogg"
        data, rate = sf.read(str(path), dtype="float32", always_2d=True)
        info = track["extra"]["loop"]
        assert "fallback" not in info, info
        assert track["bpm"] and track["extra"]["seam_ok"], track["extra"]["seam"]
        bar = track["beats_per_bar"] * 60.0 / track["bpm"]
        start, end = round(track["loop_start_s"] * rate), round(track["loop_end_s"] * rate)
        bars = (end - start) / rate / bar
        assert bars == pytest.approx(round(bars), abs=0.01) and round(bars) >= 4
        beats = (track["loop_start_s"] - track["first_beat_s"]) / (60.0 / track["bpm"])
        assert beats == pytest.approx(round(beats), abs=0.01)  # the loop starts on a beat
        seam = measure_seam(data, rate, start, end, bar)
        assert seam["ok"], seam  # measured again on the decoded file
        levels = bar_levels_db(data[start:end], rate, bar)
        assert levels[-1] > np.median(levels) - 4.0  # the fade-out is not in the loop
        assert track["loop_end_s"] <= 41.0 + 0.01  # the emulator's fade starts at 41 s
