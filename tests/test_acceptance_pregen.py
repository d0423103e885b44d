"""Acceptance: ``segue pregen`` leaves nothing behind once it ends (docs/pregeneration.md), even
when it is stopped while a generator still works in a thread that cannot be cancelled.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import time
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from segue.core import hookimpl
from segue.core.commands.pregen import execute
from segue.core.generator import GeneratedAudio
from segue.core.plugins import Plugins
from segue.core.score import load_score

SCORE = """\
segue: 1
generator: stubborn
cache: memory
moods:
  calm: {prompt: calm, duration_s: 3}
rules:
  - {mood: calm}
"""


class Stubborn:
    """Renders in a worker thread, which goes on after its task is cancelled (as the synth's
    ``asyncio.to_thread`` does) and writes into its work folder late."""

    name = "stubborn"
    model = "stubborn-1"
    concurrency = 1

    def audio_params(self) -> dict[str, Any]:
        return {"model": self.model}

    def estimate_cost(self, request: Any) -> float:
        return 0.0

    def check(self, request: Any) -> None:
        pass

    async def generate(self, request: Any, workdir: Path) -> GeneratedAudio:
        return await asyncio.to_thread(self._render, Path(workdir))

    def _render(self, workdir: Path) -> GeneratedAudio:
        os.kill(os.getpid(), signal.SIGINT)  # the user presses Ctrl-C meanwhile
        time.sleep(0.5)  # the pipeline has given up on this attempt and removed the folder
        workdir.mkdir(parents=True, exist_ok=True)
        path = workdir / "late.wav"
        sf.write(path, np.zeros(3 * 8000, dtype=np.float32), 8000)
        return GeneratedAudio(path, self.model)

    async def aclose(self) -> None:
        pass


class StubbornPlugin:
    @hookimpl
    def segue_register_generators(self, register: Any) -> None:
        register("stubborn", lambda config, state_dir: Stubborn())


def test_a_stopped_pregen_leaves_no_work_folder(tmp_path: Path) -> None:
    path = tmp_path / "adaptive_score.yaml"
    path.write_text(SCORE)
    score = load_score(path)
    plugins = Plugins(load_entry_points=False, extra=[("stubborn", StubbornPlugin())])
    args = argparse.Namespace(
        generator=None,
        concurrency=None,
        budget_usd=None,
        dry_run=False,
        json=False,
        deadline_s=None,
        max_attempts=1,
        retry_base_s=0.1,
    )
    assert execute(args, score, plugins) == 130
    work = tmp_path / ".segue" / "work"
    assert work.is_dir()
    assert sorted(p.name for p in work.iterdir()) == []
    tracks = tmp_path / ".segue" / "tracks"
    assert sorted(p.name for p in tracks.iterdir()) == []


def test_temp_files_of_a_reused_pid_are_stale(tmp_path: Path) -> None:
    """docs/pregeneration.md: temp files whose writer is gone are removed at the next start, also
    when the writer's pid now belongs to another process (a restarted container's pid 1)."""
    from segue.core.pregen.pipeline import Pipeline

    path = tmp_path / "adaptive_score.yaml"
    path.write_text(SCORE.replace("generator: stubborn", "generator: synth"))
    tracks = tmp_path / ".segue" / "tracks"
    work = tmp_path / ".segue" / "work"
    tracks.mkdir(parents=True)
    work.mkdir(parents=True)
    me = os.getpid()
    old = tracks / f".{'a' * 64}.ogg.1.tmp"  # pid 1 runs, but started long after this write
    mine_old = tracks / f".{'b' * 64}.ogg.{me}.tmp"
    mine_now = tracks / f".{'c' * 64}.ogg.{me}.tmp"  # being written by this process
    old_work = work / f"1-{'a' * 16}-0000"
    for temp in (old, mine_old, mine_now):
        temp.write_bytes(b"partial")
    old_work.mkdir()
    for stale in (old, mine_old, old_work):
        os.utime(stale, (86400, 86400))  # 2 January 1970
    pipeline = Pipeline(load_score(path), Plugins(load_entry_points=False))
    try:
        assert sorted(p.name for p in tracks.iterdir()) == [mine_now.name]
        assert list(work.iterdir()) == []
    finally:
        asyncio.run(pipeline.aclose())
