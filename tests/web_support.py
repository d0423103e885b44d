"""Fixtures for the browser tests: Debian's Chromium through Playwright, and a real
``segue serve`` subprocess with a tiny synth score (pregenerated once per test run).

Chromium or Playwright missing: the tests skip, unless ``SEGUE_REQUIRE_SERVICES=1``,
where they fail. Playwright's own browser download is never used (no ``playwright
install``): the launch names ``/usr/bin/chromium`` (or ``SEGUE_CHROMIUM``).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--autoplay-policy=no-user-gesture-required",
]

# Short loops at one tempo (a beat is 0.5 s, a bar 2 s), a stinger, every state-key type.
TINY_SCORE = """\
segue: 1
title: Browser Keep
generator: synth
cache: disk
storage: local
loudness_lufs: -16
defaults: {duration_s: 4, instrumental: true, variants: 1, format: ogg}
moods:
  explore: {prompt: calm wandering flute and harp, bpm: 120, key: D major}
  combat: {prompt: driving battle drums and brass, bpm: 120, key: D minor}
  danger: {prompt: desperate frantic strings, bpm: 120, key: C minor}
  victory: {prompt: triumphant brass fanfare, bpm: 120, key: D major, duration_s: 3, stinger: true}
rules:
  - {mood: danger, when: {in_combat: true, player.health: {lt: 0.3}}, priority: 30}
  - {mood: combat, when: {in_combat: true}, priority: 20}
  - {mood: explore, when: {zone: {in: [village, hills]}}, priority: 5}
  - {mood: explore}
events:
  boss_defeated: {stinger: victory}
transitions:
  - {from: "*", to: "*", at: next_beat, fade_ms: 300}
  - {from: combat, to: explore, at: next_bar, fade_ms: 1000}
"""


def require_services() -> bool:
    return os.environ.get("SEGUE_REQUIRE_SERVICES", "") == "1"


def missing(what: str) -> None:
    if require_services():
        pytest.fail(f"{what} (required: SEGUE_REQUIRE_SERVICES=1)")
    pytest.skip(what)


def chromium_path() -> str | None:
    for candidate in (
        os.environ.get("SEGUE_CHROMIUM"),
        "/usr/bin/chromium",
        shutil.which("chromium"),
        shutil.which("chromium-browser"),
    ):
        if candidate and Path(candidate).exists():
            return candidate
    return None


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    try:
        from playwright.sync_api import sync_playwright
    except ModuleNotFoundError:
        missing("playwright is not installed (pip install playwright; never 'playwright install')")
    exe = chromium_path()
    if exe is None:
        missing("chromium is not installed (apt-get install chromium)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=exe, args=CHROMIUM_ARGS, headless=True)
        try:
            yield b
        finally:
            b.close()


STATIC = ROOT / "core" / "server" / "static"


@pytest.fixture(scope="module")
def segue_js_page(browser):
    """A blank page with segue.js loaded (window.Segue), for its helpers and its engine."""
    page = browser.new_page()
    page.set_content("<!doctype html><title>t</title>")
    page.add_script_tag(content=(STATIC / "segue.js").read_text())
    yield page
    page.close()


@dataclass
class Served:
    """A ``segue serve`` subprocess."""

    proc: subprocess.Popen
    port: int
    folder: Path
    log: list[str]

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"


def start_server(
    folder: Path,
    score: str = TINY_SCORE,
    timeout: float = 90.0,
    tokens: str | None = None,
    env_extra: dict[str, str] | None = None,
) -> Served:
    """Write ``score`` in ``folder`` and run ``segue serve --port 0`` (it pregenerates first;
    a second server on the same folder finds the tracks stored). ``env_extra``: more
    environment (the fal emulator's variables, for a score with ``generator: fal``)."""
    path = folder / "adaptive_score.yaml"
    path.write_text(score)
    env = {k: v for k, v in os.environ.items() if k not in ("FAL_KEY", "SEGUE_TOKENS")}
    env.update(env_extra or {})
    if tokens:
        env["SEGUE_TOKENS"] = tokens
    env["PYTHONUNBUFFERED"] = "1"
    proc = subprocess.Popen(
        [sys.executable, "-m", "segue.core", "serve", str(path), "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        cwd=folder,
    )
    log: list[str] = []
    found: dict[str, int] = {}
    ready = threading.Event()

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            log.append(line)
            m = re.search(r"serving .* on http://127\.0\.0\.1:(\d+)/", line)
            if m and not ready.is_set():
                found["port"] = int(m.group(1))
                ready.set()
        ready.set()

    threading.Thread(target=read, daemon=True).start()
    deadline = time.monotonic() + timeout
    while not ready.wait(0.1):
        if time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(f"segue serve did not start in {timeout}s:\n{''.join(log)}")
    if "port" not in found:
        proc.wait(5)
        raise AssertionError(f"segue serve exited {proc.returncode}:\n{''.join(log)}")
    return Served(proc, found["port"], folder, log)


def stop_server(served: Served) -> None:
    proc = served.proc
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[Served]:
    served = start_server(tmp_path_factory.mktemp("web"))
    try:
        yield served
    finally:
        stop_server(served)


def artifact(name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS / name


def debug(page) -> dict:
    return page.evaluate("window.segue.debug()")


def wait_debug(page, condition: str, timeout_ms: int = 15000) -> dict:
    """Wait until ``condition`` (a JS expression over ``d`` = debug()) holds; return debug()."""
    page.wait_for_function(
        f"() => {{ const d = window.segue && window.segue.debug(); return !!d && ({condition}); }}",
        timeout=timeout_ms,
    )
    return debug(page)
