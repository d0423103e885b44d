"""Songs in the demo page, end to end: ``segue serve`` with ``generator: fal`` against the
fal emulator (song-shaped answers: an intro, a body, a fade-out), so the stored tracks are
carved into lead-in, loop and outro; the page shows those regions and the seam, and a
transition with ``exit: outro`` plays the song's ending in real Chromium."""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Iterator

import fal_support as fs
import pytest
from test_fal_cli import start_emulator
from web_support import (  # noqa: F401  (browser is a fixture)
    Served,
    browser,
    start_server,
    stop_server,
    wait_debug,
)

SONGS = """\
segue: 1
title: Songs
generator: {name: fal, poll_interval_s: 0.1}
budget_usd: 10
loudness_lufs: -16
defaults: {duration_s: 20, format: ogg}
moods:
  explore: {prompt: Gentle harp and flute, bpm: 100}
  combat: {prompt: Driving battle drums and brass, bpm: 120}
rules:
  - {mood: combat, when: {in_combat: true}, priority: 10}
  - {mood: explore}
transitions:
  - {from: "*", to: "*", at: next_beat, fade_ms: 200}
  - {from: combat, to: explore, at: next_bar, exit: outro, fade: cross, fade_ms: 500}
"""


@pytest.fixture(scope="module")
def songs(tmp_path_factory) -> Iterator[Served]:
    folder = tmp_path_factory.mktemp("songs")
    for emulator in start_emulator(folder, "--latency", "0.1"):
        env = fs.clean_env({**emulator.env, "FAL_KEY": fs.KEY})
        served = start_server(folder, SONGS, timeout=240.0, env_extra=env)
        try:
            # The server generates in the background: wait until both songs are stored.
            deadline = time.monotonic() + 240.0
            while len(json.load(urllib.request.urlopen(f"{served.http}/api/tracks"))["tracks"]) < 2:
                assert time.monotonic() < deadline, "".join(served.log)
                time.sleep(0.5)
            yield served
        finally:
            stop_server(served)


@pytest.fixture
def page(browser, songs):  # noqa: F811
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(f"pageerror: {e}"))
    page.goto(f"{songs.http}/?session=songs")
    wait_debug(page, "d.connected && d.seq !== null && d.mood !== null", 30000)
    yield page
    context.close()
    assert not errors, errors


def stored(page) -> dict[str, dict]:
    body = page.evaluate("fetch('/api/tracks').then((r) => r.json())")
    return {t["mood"]: t for t in body["tracks"]}


def test_the_track_view_shows_lead_in_loop_outro_and_the_seam(page):
    tracks = stored(page)
    assert set(tracks) == {"explore", "combat"}
    for mood, t in tracks.items():
        info = t["extra"]["loop"]
        assert info["carved"] and t["loop_start_s"] > 0 and info["outro_end_s"] > t["loop_end_s"]
        bar = page.locator(f'.track[data-mood="{mood}"] .regions')
        bar.wait_for()
        parts = bar.evaluate(
            """(b) => Array.from(b.querySelectorAll('.rg'), (s) => ({
                 kind: s.classList[1], start: +s.dataset.start, end: +s.dataset.end,
                 text: s.textContent, left: s.offsetLeft, width: s.offsetWidth }))"""
        )
        kinds = [p["kind"] for p in parts]
        assert kinds[:3] == ["lead", "loop", "outro"], parts
        lead, loop, outro = parts[:3]
        assert lead["start"] == 0 and lead["end"] == pytest.approx(t["loop_start_s"])
        assert (loop["start"], loop["end"]) == pytest.approx((t["loop_start_s"], t["loop_end_s"]))
        assert (outro["start"], outro["end"]) == pytest.approx(
            (info["outro_start_s"], info["outro_end_s"])
        )
        assert loop["text"] == f"loop · {info['bars']} bars"
        assert lead["text"].startswith("lead-in") and outro["text"].startswith("outro")
        # Laid out in time order, in proportion to the track's length.
        total = bar.evaluate("(b) => b.clientWidth")
        assert lead["left"] < loop["left"] < outro["left"]
        share = (t["loop_end_s"] - t["loop_start_s"]) / t["duration_s"]
        assert loop["width"] / total == pytest.approx(share, abs=0.01)
        seam = bar.locator(".seam")
        assert float(seam.get_attribute("data-at")) == pytest.approx(t["loop_end_s"])
        assert float(seam.get_attribute("data-crossfade")) == pytest.approx(info["crossfade_s"])


def test_leaving_combat_plays_its_outro_then_explore(page):
    page.click("#unlock-btn")
    wait_debug(page, "d.contextState === 'running'", 30000)
    page.evaluate(
        """() => { window.outros = [];
                   window.segue.on('scheduled', (s) => { if (s.cue) window.outros.push(s); }); }"""
    )
    page.evaluate("window.segue.setState({in_combat: true})")
    wait_debug(page, "d.mood === 'combat'", 30000)
    page.evaluate("window.segue.setState({in_combat: false})")
    page.wait_for_function(
        "() => window.outros.some((s) => s.cue.mood === 'explore' && s.outro)", timeout=30000
    )
    got = page.evaluate(
        """() => { const s = window.outros.find((x) => x.cue.mood === 'explore' && x.outro);
                   return { cue: s.cue, outro: s.outro, when: s.contextTime,
                            voices: Array.from(window.segue.audio.voices, (v) => ({
                              id: v.track.id, loop: !!v.sources[0].loop, outro: !!v.outro,
                              start: v.startTime, offset: v.startOffset })) }; }"""
    )
    cue, outro = got["cue"], got["outro"]
    tracks = stored(page)
    combat = tracks["combat"]
    assert cue["exit"]["track"] == combat["id"]
    assert cue["exit"]["outro_start_s"] == pytest.approx(combat["extra"]["loop"]["outro_start_s"])
    length = cue["exit"]["outro_end_s"] - cue["exit"]["outro_start_s"]
    # explore comes in 0.5 s before the outro ends (fade: cross, fade_ms 500).
    assert cue["start_at"] == pytest.approx(cue["exit"]["at"] + length - 0.5, abs=1e-6)
    assert outro["offset"] >= cue["exit"]["outro_start_s"]
    assert got["when"] - outro["contextTime"] == pytest.approx(
        length - 0.5 - (outro["offset"] - cue["exit"]["outro_start_s"]), abs=0.05
    )
    (voice,) = [v for v in got["voices"] if v["outro"]]
    assert voice["id"] == combat["id"] and not voice["loop"]
    assert voice["offset"] == pytest.approx(outro["offset"])
