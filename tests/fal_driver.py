"""Runs the ``fal`` generator in a fresh process (fal-client reads its hosts at import).

Reads a JSON spec from the file named by argv[1]; prints one JSON line with the results.
Spec: ``{"config": {...}, "workdir": str, "requests": [{GenerationRequest fields}],
"parallel": bool, "cancel_after": seconds|null, "raw": {"endpoint", "input"}|null,
"untested_fal_client": bool}`` (the last: behave as on a fal-client outside the tested range).
Every logger is at DEBUG on stderr, so tests can search everything the process said.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

logging.basicConfig(level=logging.DEBUG, stream=sys.stderr, format="%(name)s: %(message)s")

from segue.core.errors import RateLimitedError, SegueError  # noqa: E402
from segue.core.request import GenerationRequest  # noqa: E402
from segue.plugins.fal import generator as fal_generator  # noqa: E402
from segue.plugins.fal.generator import FalGenerator  # noqa: E402


class Submitted(logging.Handler):
    """Notices the generator's "submitted … as <id>" log line."""

    seen = False

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage().startswith("fal: submitted "):
            self.seen = True


SUBMITTED = Submitted()
logging.getLogger("segue.plugins.fal").addHandler(SUBMITTED)


def outcome(exc: BaseException | None, audio: Any = None, elapsed: float = 0.0) -> dict[str, Any]:
    if exc is None:
        return {
            "ok": True,
            "path": str(audio.path),
            "model": audio.model,
            "cost_usd": audio.cost_usd,
            "loop": audio.loop,
            "bpm": audio.bpm,
            "extra": audio.extra,
            "elapsed": elapsed,
        }
    return {
        "ok": False,
        "error": type(exc).__name__,
        "message": str(exc),
        "retry_after": getattr(exc, "retry_after", None),
        "cost_usd": getattr(exc, "cost_usd", None),
        "is_segue_error": isinstance(exc, SegueError),
        "rate_limited": isinstance(exc, RateLimitedError),
        "elapsed": elapsed,
    }


async def raw(spec: dict[str, Any]) -> dict[str, Any]:
    """Talk to the endpoint with fal-client alone (the emulator's protocol, unfiltered)."""
    import fal_client

    client = fal_client.AsyncClient()
    try:
        handle = await client.submit(spec["endpoint"], spec["input"])
        states = []
        async for status in handle.iter_events(with_logs=True, interval=0.05):
            states.append(type(status).__name__)
        result = await handle.get()
        return {"ok": True, "states": states, "result": result}
    except fal_client.FalClientHTTPError as exc:
        return {
            "ok": False,
            "status": exc.status_code,
            "detail": exc.message,
            "error_type": exc.error_type,
        }


async def main() -> None:
    spec = json.loads(Path(sys.argv[1]).read_text())
    if spec.get("raw"):
        print(json.dumps({"results": [await raw(spec["raw"])]}), flush=True)
        return
    if spec.get("untested_fal_client"):
        fal_generator.TESTED_FAL_CLIENT = ((0,), (0,))  # no version is in it
    workdir = Path(spec["workdir"])
    results: list[dict[str, Any]] = []
    try:
        generator = FalGenerator(spec.get("config", {}), workdir)
    except SegueError as exc:
        print(json.dumps({"results": [outcome(exc)]}), flush=True)
        return
    requests = [GenerationRequest(**r) for r in spec["requests"]]

    async def one(request: GenerationRequest) -> dict[str, Any]:
        started = time.monotonic()
        try:
            generator.check(request)
            audio = await generator.generate(request, workdir)
        except SegueError as exc:
            return outcome(exc, elapsed=time.monotonic() - started)
        return outcome(None, audio, time.monotonic() - started)

    try:
        if spec.get("cancel_after") is not None:
            task = asyncio.create_task(one(requests[0]))
            # Cancel a request fal has accepted: wait for the generator to say so.
            for _ in range(3000):
                if SUBMITTED.seen or task.done():
                    break
                await asyncio.sleep(0.01)
            await asyncio.sleep(spec["cancel_after"])
            task.cancel()
            try:
                results.append(await task)
            except asyncio.CancelledError:
                results.append({"ok": False, "error": "CancelledError", "message": ""})
        elif spec.get("parallel"):
            results = list(await asyncio.gather(*(one(r) for r in requests)))
        else:
            for request in requests:
                results.append(await one(request))
    finally:
        await generator.aclose()
    print(json.dumps({"results": results}), flush=True)


if __name__ == "__main__":
    asyncio.run(main())
