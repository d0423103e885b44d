"""A fault-injecting generator plugin for the pregeneration tests (registered as ``faulty``).

It writes real audio (a short sine tone, WAV by default) and misbehaves on demand. What it
does is read from bracketed directives in the prompt, so each test's score says it:

- ``[transient=N]``   attempts 1..N raise TransientError
- ``[ratelimit=N:S]`` attempts 1..N raise RateLimitedError(retry_after=S)
- ``[permanent]``     every attempt raises PermanentError
- ``[hang=N]``        attempts 1..N never return (until cancelled)
- ``[corrupt=N]``     attempts 1..N return a file that is not audio
- ``[crash]``         raises ValueError (a generator bug)
- ``[sleep=S]``       take S seconds (default: the ``delay_s`` option)
- ``[fmt=flac]``      write that format instead of WAV

Every attempt is appended to a JSON-lines record (option ``record``; default
``<state_dir>/faulty.jsonl``) as ``{"key", "mood", "attempt", "event", "t", "pid"}``, with
``event`` in start/done/transient/ratelimit/permanent/hang/corrupt/crash, ``t`` from
``time.time()``; ``{"key": null, "event": "idle", ...}`` when the pipeline calls ``idle``.
The attempt number counts the record's ``start`` lines for the key, so it holds across
processes.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import time
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from segue.core import hookimpl
from segue.core.errors import PermanentError, RateLimitedError, TransientError
from segue.core.generator import GeneratedAudio
from segue.core.request import GenerationRequest

_DIRECTIVE = re.compile(r"\[(\w+)(?:=([^\]]*))?\]")


def directives(prompt: str) -> dict[str, str]:
    return {m[1]: (m[2] or "") for m in _DIRECTIVE.finditer(prompt)}


def read_record(path: Path) -> list[dict[str, Any]]:
    if not Path(path).exists():
        return []
    out = []
    for line in Path(path).read_text().splitlines():
        if line.strip():
            out.append(json.loads(line))
    return out


class FaultyGenerator:
    name = "faulty"
    model = "faulty-1"

    def __init__(self, config: dict[str, Any], state_dir: Path) -> None:
        self.record = Path(config.get("record") or Path(state_dir) / "faulty.jsonl")
        self.delay_s = float(config.get("delay_s", 0.0))
        self.cost_usd = float(config.get("cost_usd", 0.0))
        self.concurrency = int(config.get("concurrency", 4))
        self.sr = int(config.get("sr", 8000))
        # Where its costs go (segue.core.ledger); "test:…" endpoints are not production.
        self.endpoint = str(config.get("endpoint", "faulty.example"))
        self.record.parent.mkdir(parents=True, exist_ok=True)

    def audio_params(self) -> dict[str, Any]:
        return {"model": self.model}

    def cost_endpoint(self) -> tuple[str, bool]:
        return self.endpoint, not self.endpoint.startswith("test:")

    def estimate_cost(self, request: GenerationRequest) -> float:
        return self.cost_usd

    def check(self, request: GenerationRequest) -> None:
        if request.duration_s <= 0:
            raise PermanentError("duration must be positive")

    def idle(self) -> None:
        # No request will come but those in progress (`segue pregen`, docs/plugins.md).
        self._write({"key": None, "event": "idle", "t": time.time(), "pid": os.getpid()})

    def _log(self, request: GenerationRequest, attempt: int, event: str) -> None:
        self._write(
            {
                "key": request.cache_key,
                "mood": request.mood,
                "attempt": attempt,
                "event": event,
                "t": time.time(),
                "pid": os.getpid(),
            }
        )

    def _write(self, record: dict[str, Any]) -> None:
        line = json.dumps(record)
        # One write of one line with O_APPEND: lines from several processes never interleave.
        fd = os.open(self.record, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, (line + "\n").encode())
        finally:
            os.close(fd)

    def _attempt(self, key: str) -> int:
        return 1 + sum(
            1 for r in read_record(self.record) if r["key"] == key and r["event"] == "start"
        )

    async def generate(self, request: GenerationRequest, workdir: Path) -> GeneratedAudio:
        key = request.cache_key
        d = directives(request.prompt)
        attempt = self._attempt(key)
        self._log(request, attempt, "start")

        def upto(name: str) -> bool:
            if name not in d:
                return False
            count = d[name].split(":", 1)[0]
            return attempt <= int(count or 1)

        if "permanent" in d:
            self._log(request, attempt, "permanent")
            raise PermanentError("the provider refuses this prompt (injected)")
        if "crash" in d:
            self._log(request, attempt, "crash")
            raise ValueError("injected generator bug")
        if upto("transient"):
            self._log(request, attempt, "transient")
            raise TransientError(f"injected transient failure {attempt}")
        if upto("ratelimit"):
            retry_after = float(d["ratelimit"].split(":", 1)[1])
            self._log(request, attempt, "ratelimit")
            raise RateLimitedError("injected rate limit", retry_after=retry_after)
        if upto("hang"):
            self._log(request, attempt, "hang")
            await asyncio.sleep(3600)
        delay = float(d.get("sleep") or self.delay_s)
        if delay:
            await asyncio.sleep(delay)
        fmt = d.get("fmt") or "wav"
        path = Path(workdir) / f"out.{fmt}"
        if upto("corrupt"):
            path.write_bytes(b"RIFF\x10\x00\x00\x00WAVEjunk" + os.urandom(512))
            self._log(request, attempt, "corrupt")
            return GeneratedAudio(path=path, model=self.model, cost_usd=self.cost_usd)
        n = max(1, round(request.duration_s * self.sr))
        freq = 220.0 + int(key[:4], 16) % 440
        t = np.arange(n, dtype=np.float64) / self.sr
        tone = (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32)
        sf.write(str(path), tone, self.sr, format=fmt.upper())
        self._log(request, attempt, "done")
        return GeneratedAudio(
            path=path,
            model=self.model,
            cost_usd=self.cost_usd,
            bpm=request.bpm,
            extra={"faulty_attempt": attempt},
        )

    async def aclose(self) -> None:
        pass


def make_faulty(config: dict[str, Any], state_dir: Path) -> FaultyGenerator:
    return FaultyGenerator(config, state_dir)


@hookimpl
def segue_register_generators(register: Any) -> None:
    register("faulty", make_faulty)
