"""The example third-party packages, installed with pip the way a user would (into a
``--target`` folder put on PYTHONPATH, so the test environment is left as it was):
``segue-lofi`` is listed by ``segue plugins`` and changes ``segue plan``'s prompts;
``segue-broken`` is reported by name and version and skipped, and fatal when strict."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"
LOFI = "lo-fi, dusty vinyl crackle, mellow"
PIP_FLAGS = ["-q", "--no-deps", "--no-build-isolation", "--disable-pip-version-check"]

SCORE = """\
segue: 1
title: Example Plugins
generator: fal
cache: memory
storage: local
style: {positive: [cinematic], negative: [vocals]}
defaults: {duration_s: 30, instrumental: true, variants: 1, format: ogg}
moods:
  explore: {prompt: Gentle harp over warm strings, bpm: 84, key: D major}
  victory: {prompt: Triumphant brass fanfare, duration_s: 5, stinger: true}
rules:
  - {mood: explore}
events:
  won: {stinger: victory}
"""


def pip_install_target(project: Path, target: Path, work: Path) -> None:
    """``pip install --target`` from a copy (building never writes into the repository)."""
    src = work / project.name
    shutil.copytree(project, src, ignore=shutil.ignore_patterns("build", "*.egg-info"))
    subprocess.run(
        [sys.executable, "-m", "pip", "install", *PIP_FLAGS, "--target", str(target), str(src)],
        check=True,
        capture_output=True,
        timeout=300,
    )


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    work = tmp_path_factory.mktemp("examples")
    targets = {}
    for name in ("segue-lofi", "segue-broken"):
        target = work / f"site-{name}"
        pip_install_target(EXAMPLES / name, target, work)
        targets[name] = target
    return targets


def segue(
    args: list[str], paths: list[Path], cwd: Path, **extra: str
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEGUE_")}
    env["PYTHONPATH"] = os.pathsep.join(str(p) for p in paths)
    env["FAL_KEY"] = "example-test-key"  # planning only: nothing is sent
    env.update(extra)
    return subprocess.run(
        [sys.executable, "-m", "segue.core", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def score_dir(tmp_path: Path) -> Path:
    (tmp_path / "adaptive_score.yaml").write_text(SCORE)
    return tmp_path


def test_pip_installed_the_entry_points(installed: dict[str, Path]) -> None:
    lofi = next(installed["segue-lofi"].glob("segue_lofi-0.2.0.dist-info"))
    assert "[segue]\nlofi = segue_lofi" in (lofi / "entry_points.txt").read_text()
    assert (installed["segue-lofi"] / "segue_lofi.py").exists()


def test_segue_plugins_lists_lofi(installed: dict[str, Path], score_dir: Path) -> None:
    out = segue(["plugins", "--json"], [installed["segue-lofi"]], score_dir)
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    lofi = {p["name"]: p for p in doc["plugins"]}["lofi"]
    assert lofi == {
        "name": "lofi",
        "version": "0.2.0",
        "source": "segue-lofi",
        "hooks": ["segue_transform_prompt"],
        "registered": {},
    }
    # Default priority: after tempo/key, before the built-in instrumental word and style.
    order = doc["transform_order"]
    assert order.index("segue.plugins.tempo_key") < order.index("lofi")
    assert order.index("lofi") < order.index("segue.plugins.instrumental")
    assert doc["failures"] == []

    # Piped: plain lines, one per plugin, as docs/plugins.md shows it.
    table = segue(["plugins"], [installed["segue-lofi"]], score_dir)
    assert table.returncode == 0, table.stderr
    row = next(line for line in table.stdout.splitlines() if line.startswith("lofi "))
    assert row.split() == ["lofi", "0.2.0", "segue-lofi", "transform_prompt"]


def test_segue_plan_prompts_include_the_lofi_phrase(
    installed: dict[str, Path], score_dir: Path
) -> None:
    out = segue(["plan", "--json"], [installed["segue-lofi"]], score_dir)
    assert out.returncode == 0, out.stderr
    prompts = {r["mood"]: r["prompt"] for r in json.loads(out.stdout)["requests"]}
    assert prompts["explore"] == (
        f"Gentle harp over warm strings, 84 BPM, D major, {LOFI}, instrumental, cinematic. "
        "Avoid: vocals."
    )
    assert LOFI not in prompts["victory"]  # the plugin leaves stingers alone

    without = segue(
        ["plan", "--json"], [installed["segue-lofi"]], score_dir, SEGUE_DISABLE_PLUGINS="lofi"
    )
    assert without.returncode == 0, without.stderr
    plain = {r["mood"]: r for r in json.loads(without.stdout)["requests"]}
    assert LOFI not in plain["explore"]["prompt"]
    keyed = {r["mood"]: r["cache_key"] for r in json.loads(out.stdout)["requests"]}
    assert plain["explore"]["cache_key"] != keyed["explore"]  # new prompt, new audio
    assert plain["victory"]["cache_key"] == keyed["victory"]  # unchanged request, same key


def test_a_plugin_that_raises_on_import_is_reported_and_skipped(
    installed: dict[str, Path], score_dir: Path
) -> None:
    paths = [installed["segue-broken"], installed["segue-lofi"]]
    out = segue(["plugins", "--json"], paths, score_dir)
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["failures"] == [
        {
            "name": "broken",
            "version": "0.0.1",
            "reason": "RuntimeError: segue-broken cannot start: its configuration is missing",
        }
    ]
    assert "lofi" in {p["name"] for p in doc["plugins"]}
    warning = [line for line in out.stderr.splitlines() if "broken" in line]
    assert warning == [
        "WARNING segue.plugins: plugin broken 0.0.1 failed to load and was skipped: "
        "RuntimeError: segue-broken cannot start: its configuration is missing"
    ]
    assert "Traceback" not in out.stderr

    plan = segue(["plan", "--json"], paths, score_dir)
    assert plan.returncode == 0, plan.stderr
    assert LOFI in json.loads(plan.stdout)["requests"][0]["prompt"]
    assert plan.stderr.count("plugin broken 0.0.1 failed to load") == 1


@pytest.mark.parametrize(
    ("args", "env"),
    [(["--strict-plugins", "plan"], {}), (["plan"], {"SEGUE_STRICT_PLUGINS": "1"})],
)
def test_a_broken_plugin_is_fatal_when_strict(
    installed: dict[str, Path], score_dir: Path, args: list[str], env: dict[str, str]
) -> None:
    out = segue(args, [installed["segue-broken"]], score_dir, **env)
    assert out.returncode == 2
    assert out.stdout == ""
    assert out.stderr.splitlines() == [
        "segue: plugin broken 0.0.1 failed to load: "
        "RuntimeError: segue-broken cannot start: its configuration is missing"
    ]
