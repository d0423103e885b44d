"""The synth's stems: rendered per layer, stored, served, listed; they sum to the mix."""

from __future__ import annotations

import json

import aiohttp
import numpy as np
import pytest
from server_support import serve

from segue.core import audio
from segue.core.cli import main
from segue.core.client import CueMessage, SegueClient

pytestmark = pytest.mark.timeout(300)

STEMS_SCORE = """\
segue: 1
title: Stems
generator: synth
intensity: {key: threat}
defaults: {duration_s: 4, format: FORMAT}
moods:
  siege:
    prompt: furious battle drums and brass
    bpm: 120
    key: D minor
    layers:
      bass: {}
      harmony: {}
      drums: {from: 0.4}
      melody: {from: 0.7}
rules:
  - {mood: siege}
"""


def residual_db(mix: np.ndarray, parts: list[np.ndarray]) -> float:
    """How far under the mix the difference between the mix and the parts' sum is."""
    total = np.sum(parts, axis=0)
    err = float(np.sum(np.square(mix.astype(np.float64) - total)))
    ref = float(np.sum(np.square(mix.astype(np.float64))))
    return 10 * np.log10(ref / max(err, 1e-30))


@pytest.mark.parametrize("fmt", ["flac", "ogg"])
async def test_synth_stems_sum_to_the_mix_served_and_listed(tmp_path, fmt, capsys, monkeypatch):
    async with (
        serve(tmp_path, STEMS_SCORE.replace("FORMAT", fmt)) as live,
        SegueClient(live.ws, session="s") as c,
        aiohttp.ClientSession() as http,
    ):
        cue = await c.next_cue(10)
        assert isinstance(cue, CueMessage)
        track = cue.track
        assert set(track.stems) == {"bass", "harmony", "drums", "melody"}

        async def fetch(url: str) -> np.ndarray:
            async with http.get(live.http + url) as r:
                assert r.status == 200, url
                samples, _ = audio.decode(await r.read(), url)
                return samples

        mix = await fetch(track.url)
        stems = {name: await fetch(s["url"]) for name, s in track.stems.items()}
        assert all(s.shape == mix.shape for s in stems.values())  # sample-aligned
        # Every stem carries sound (the parts really are split), and they sum to the mix.
        assert all(float(np.sqrt(np.mean(s**2))) > 1e-3 for s in stems.values())
        db = residual_db(mix, list(stems.values()))
        print(f"{fmt}: stems sum to the mix with the residual {db:.1f} dB under it")
        assert db >= 30.0
        async with http.get(live.http + track.url.replace(".", "-nope.", 1)) as r:
            assert r.status == 404
    monkeypatch.chdir(tmp_path)
    capsys.readouterr()
    assert main(["tracks", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    rows = listed if isinstance(listed, list) else listed.get("tracks", [])
    (row,) = [t for t in rows if t["mood"] == "siege"]
    assert set(row["stems"]) == {"bass", "harmony", "drums", "melody"}
    assert all(s["url"].startswith("/tracks/") for s in row["stems"].values())
