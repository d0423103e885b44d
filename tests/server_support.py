"""Helpers for the server and client tests: a fast tone generator plugin, scores, a live server.

The ``tone`` generator writes a short sine tone at the request's tempo (real audio the
pipeline decodes, post-processes, encodes and stores), so server tests do not depend on
the synth's speed. ``[slow=S]`` in a prompt makes it take S seconds; ``[fail]`` makes it
fail permanently.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import re
import shutil
import tempfile
import textwrap
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
from aiohttp import web

from segue.core import hookimpl
from segue.core.errors import PermanentError
from segue.core.generator import GeneratedAudio
from segue.core.plugins import Plugins
from segue.core.pregen.pipeline import Pipeline
from segue.core.request import GenerationRequest
from segue.core.score import Score, load_score
from segue.core.server.app import SERVER, SegueServer, create_app, start

HERE = Path(__file__).resolve().parent


class ToneGenerator:
    name = "tone"
    model = "tone-1"
    concurrency = 4

    def __init__(self, config: dict[str, Any], state_dir: Path) -> None:
        self.sr = int(config.get("sr", 8000))
        self.calls: list[str] = []
        self.events: list[tuple[str, str, int]] = []  # ("start" | "end", mood, variant)

    def audio_params(self) -> dict[str, Any]:
        return {"model": self.model, "sr": self.sr}

    def estimate_cost(self, request: GenerationRequest) -> float:
        return 0.0

    def check(self, request: GenerationRequest) -> None:
        if request.duration_s <= 0:
            raise PermanentError("duration must be positive")

    async def generate(self, request: GenerationRequest, workdir: Path) -> GeneratedAudio:
        self.calls.append(request.mood)
        self.events.append(("start", request.mood, request.variant))
        slow = re.search(r"\[slow=([\d.]+)\]", request.prompt)
        if slow:
            await asyncio.sleep(float(slow.group(1)))
        self.events.append(("end", request.mood, request.variant))
        if "[fail]" in request.prompt:
            raise PermanentError("asked to fail")
        n = int(request.duration_s * self.sr)
        t = np.arange(n) / self.sr
        freq = 220.0 * (1 + request.variant) * (1.5 if request.stinger else 1.0)
        # A tone with a decaying pulse on every beat, so tempo analysis finds the bpm.
        beat = 60.0 / (request.bpm or 120.0)
        envelope = 0.3 + 0.7 * np.exp(-(t % beat) * 30.0)
        audio = (0.2 * envelope * np.sin(2 * np.pi * freq * t)).astype(np.float32)
        path = workdir / "tone.wav"
        sf.write(str(path), audio, self.sr)
        return GeneratedAudio(
            path=path,
            model=self.model,
            bpm=request.bpm or 120.0,
            beats_per_bar=4,
            first_beat_s=0.0,
            loop=not request.stinger,
            loop_start_s=0.0,
            loop_end_s=request.duration_s if not request.stinger else None,
        )

    async def aclose(self) -> None:
        pass


class TonePlugin:
    """Registers the ``tone`` generator (a plugin object, given to ``Plugins(extra=...)``)."""

    @hookimpl
    def segue_register_generators(self, register: Any) -> None:
        register("tone", ToneGenerator)


def plugins(*extra: Any) -> Plugins:
    return Plugins(strict=False, load_entry_points=False, extra=[TonePlugin(), *extra])


SCORE = """\
segue: 1
title: Test Keep
generator: tone
cache: disk
storage: local
loudness_lufs: -16
defaults: {duration_s: 3, instrumental: true, variants: 1, format: wav}
moods:
  explore: {prompt: calm wandering, bpm: 120}
  combat: {prompt: driving battle, bpm: 120, variants: 2}
  danger: {prompt: desperate, bpm: 120}
  victory: {prompt: fanfare, bpm: 120, stinger: true}
rules:
  - {mood: danger, when: {in_combat: true, player.health: {lt: 0.3}}, priority: 30}
  - {mood: combat, when: {in_combat: true}, priority: 20}
  - {mood: explore}
events:
  boss_defeated: {stinger: victory}
transitions:
  - {from: "*", to: "*", at: now, fade_ms: 100}
"""


def write_score(folder: Path, text: str = SCORE, **replacements: str) -> Path:
    for old, new in replacements.items():
        text = text.replace(old, new)
    path = Path(folder) / "adaptive_score.yaml"
    path.write_text(textwrap.dedent(text))
    return path


@dataclass
class Live:
    """A running server: its URLs, app and state."""

    app: web.Application
    server: SegueServer
    pipeline: Pipeline
    score: Score
    port: int
    runner: web.AppRunner

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    async def stop(self) -> None:
        await self.runner.cleanup()


_templates: dict[tuple[str, str], Path] = {}


async def _pregenerated(text: str, pregen: bool | list[str]) -> Path:
    """A folder holding ``text`` with its tracks (all, or the listed moods') stored."""
    key = (text, repr(sorted(pregen) if isinstance(pregen, list) else pregen))
    folder = _templates.get(key)
    if folder is not None:
        return folder
    folder = Path(tempfile.mkdtemp(prefix="segue-server-tests-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    score = load_score(write_score(folder, text))
    pipeline = Pipeline(score, plugins())
    try:
        planned = pipeline.plan()
        if isinstance(pregen, list):
            planned = [p for p in planned if p.request.mood in pregen]
        summary = await pipeline.run(planned)
        assert all(o.state == "stored" for o in summary.outcomes), summary
    finally:
        await pipeline.aclose()
    _templates[key] = folder
    return folder


@contextlib.asynccontextmanager
async def serve(
    folder: Path,
    text: str = SCORE,
    *,
    pregen: bool | list[str] = True,
    extra_plugins: tuple[Any, ...] = (),
    **config: Any,
) -> AsyncIterator[Live]:
    """Write ``text`` as the score in ``folder``, pregenerate (all moods, or the listed
    ones), and serve it on a free port; ``config`` overrides ServerConfig fields."""
    path = write_score(folder, text)
    if pregen:
        # The same score's tracks are generated once per test run and copied in: each
        # test still gets its own folder, cache and server.
        template = await _pregenerated(text, pregen)
        shutil.copytree(template / ".segue", Path(folder) / ".segue", dirs_exist_ok=True)
    score = load_score(path)
    pm = plugins(*extra_plugins)
    pipeline = Pipeline(score, pm)
    if pregen:
        planned = pipeline.plan()
        if isinstance(pregen, list):
            planned = [p for p in planned if p.request.mood in pregen]
        summary = await pipeline.run(planned)
        assert all(o.state == "skipped" for o in summary.outcomes), summary
    config.setdefault("shutdown_grace_s", 5.0)
    app = create_app(score, pipeline=pipeline, plugins=pm, **config)
    runner, port = await start(app)
    live = Live(app, app[SERVER], pipeline, score, port, runner)
    try:
        yield live
    finally:
        await runner.cleanup()
        await pipeline.aclose()


# --------------------------------------------------------------------------- raw clients


def connect_raw(url: str, **kwargs: Any) -> Any:
    """A plain ``websockets`` connection (for malformed input the SDK would never send)."""
    from websockets.asyncio.client import connect

    kwargs.setdefault("compression", None)
    kwargs.setdefault("proxy", None)
    kwargs.setdefault("max_size", None)
    return connect(url, **kwargs)


async def recv_json(ws: Any, timeout: float = 10.0) -> dict[str, Any]:
    import json

    return json.loads(await asyncio.wait_for(ws.recv(), timeout))


async def recv_type(ws: Any, kind: str, timeout: float = 10.0) -> dict[str, Any]:
    """The next message of type ``kind`` (others are skipped)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        msg = await recv_json(ws, max(0.01, deadline - loop.time()))
        if msg["type"] == kind:
            return msg


async def joined(ws: Any) -> list[dict[str, Any]]:
    """The messages a connection gets on joining, up to and including ``prefetch``."""
    out = []
    while True:
        msg = await recv_json(ws)
        out.append(msg)
        if msg["type"] == "prefetch":
            return out


async def no_message(ws: Any, seconds: float) -> None:
    """Assert nothing arrives on ``ws`` for ``seconds``."""
    try:
        msg = await asyncio.wait_for(ws.recv(), seconds)
    except TimeoutError:
        return
    raise AssertionError(f"unexpected message: {msg}")


async def started(cue: Any) -> None:
    """Sleep until ``cue`` (a dict or CueMessage) has started playing."""
    import time

    start_at = cue["start_at"] if isinstance(cue, dict) else cue.start_at
    await asyncio.sleep(max(0.0, start_at - time.time()) + 0.02)
