"""Helpers for the fal tests: the emulator in process, the generator in a subprocess.

fal-client reads ``FAL_RUN_HOST``/``FAL_QUEUE_RUN_HOST`` once, at import, and
``SSL_CERT_FILE`` replaces the CA bundle: neither may leak into other tests, so everything
that imports fal_client runs in a fresh process (``fal_driver.py``) with the emulator's
environment, while the emulator itself runs in the test's event loop.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
DRIVER = HERE / "fal_driver.py"
KEY = "fal-test-key-9d3c1e77:5b0f"  # a made-up key, searched for in every output
FAST = {"poll_interval_s": 0.05, "timeout_s": 30}
_spec_ids = itertools.count()


def req(prompt: str = "calm harp and flute, 90 BPM", duration_s: float = 3.0, **kw: Any) -> dict:
    """A GenerationRequest as JSON fields."""
    fields = {
        "mood": "explore",
        "variant": 0,
        "prompt": prompt,
        "duration_s": duration_s,
        "output_format": "ogg",
        "generator": "fal",
    }
    fields.update(kw)
    return fields


def plan(*durations_ms: int) -> dict:
    return {
        "positive_global_styles": ["epic orchestral", "seamless loop"],
        "negative_global_styles": ["vocals"],
        "sections": [
            {
                "section_name": f"Part {i + 1}",
                "positive_local_styles": ["taiko"] if i == 0 else ["full orchestra"],
                "negative_local_styles": [],
                "duration_ms": ms,
                "lines": [],
            }
            for i, ms in enumerate(durations_ms)
        ],
    }


def clean_env(extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FAL_")}
    env.pop("SSL_CERT_FILE", None)
    env.update(extra)
    return env


@dataclass
class Run:
    results: list[dict[str, Any]]
    stdout: str
    stderr: str

    @property
    def result(self) -> dict[str, Any]:
        (one,) = self.results
        return one


async def drive(
    emu: Any,
    tmp_path: Path,
    requests: list[dict] | None = None,
    *,
    config: dict | None = None,
    key: str | None = KEY,
    env: dict[str, str] | None = None,
    parallel: bool = False,
    cancel_after: float | None = None,
    raw: dict | None = None,
    untested_fal_client: bool = False,
    timeout: float = 90.0,
) -> Run:
    """Run ``fal_driver.py`` against ``emu``; its stdout's last line is the results."""
    spec_file = tmp_path / f"fal-spec-{next(_spec_ids)}.json"
    workdir = tmp_path / "work"
    spec = {
        "config": {**FAST, **(config or {})},
        "workdir": str(workdir),
        "requests": requests or [],
        "parallel": parallel,
        "cancel_after": cancel_after,
        "raw": raw,
        "untested_fal_client": untested_fal_client,
    }
    spec_file.write_text(json.dumps(spec))
    variables = dict(emu.env()) if emu is not None else {}
    if key is not None:
        variables["FAL_KEY"] = key
    variables.update(env or {})
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(DRIVER),
        str(spec_file),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=clean_env(variables),
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    stdout, stderr = out.decode(), err.decode()
    assert proc.returncode == 0, stderr[-4000:]
    last = stdout.strip().splitlines()[-1]
    return Run(json.loads(last)["results"], stdout, stderr)


def files_in(folder: Path) -> list[str]:
    """Every file under ``folder`` (dot files too), relative names, sorted."""
    if not folder.exists():
        return []
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())
