"""Layers and ducks over real sockets: the server's messages and the Python SDK's view."""

from __future__ import annotations

import asyncio

import pytest
from server_support import SCORE, serve

from segue.core.client import CueMessage, DuckMessage, LayersMessage, SegueClient

pytestmark = pytest.mark.timeout(60)

LAYERED = (
    SCORE.replace(
        "  combat: {prompt: driving battle, bpm: 120, variants: 2}\n",
        "  combat:\n    prompt: driving battle\n    bpm: 120\n"
        "    layers: {bass: {}, drums: {from: 0.4}, melody: {from: 0.7}}\n",
    )
    .replace("segue: 1\n", "segue: 1\nintensity: {key: threat, slew_per_s: 4.0}\n")
    .replace(
        "  boss_defeated: {stinger: victory}\n",
        "  boss_defeated: {stinger: victory}\n  radio_call: {duck: {depth_db: -12, hold_s: 3}}\n",
    )
)


async def next_of(client: SegueClient, kind: type, timeout: float = 5.0):
    while True:
        msg = await client.next_cue(timeout)
        if isinstance(msg, kind):
            return msg


async def test_intensity_changes_send_slewed_layer_ramps_and_joiners_get_gains(tmp_path):
    async with serve(tmp_path, LAYERED) as live, SegueClient(live.ws, session="fight") as c:
        await next_of(c, CueMessage)
        await c.set_state({"in_combat": True, "threat": 0.5})
        cue = await next_of(c, CueMessage)
        assert cue.mood == "combat"
        first = await next_of(c, LayersMessage)
        assert first.mood == "combat" and first.start_at == cue.start_at
        assert first.gains == {"bass": 1.0, "drums": 0.0, "melody": 0.0}
        # The ramp towards 0.5 carries the drums in (the cue's path started at 0).
        drums_in = await next_of(c, LayersMessage)
        assert drums_in.gains["drums"] == 1.0 and drums_in.ramp_ms == round(0.05 / 4 * 1000)
        # Once the music has reached 0.5 (the ramp takes 125 ms after the lead), go on.
        await asyncio.sleep(max(0.0, drums_in.start_at + 0.2 - c.server_now()))
        await c.set_state({"threat": 1.0})
        melody = await next_of(c, LayersMessage)
        assert melody.gains == {"bass": 1.0, "drums": 1.0, "melody": 1.0}
        assert melody.intensity == 0.7
        # 0.5 -> 0.65 at 4/s: the melody's edge starts 37.5 ms after the change starts.
        assert melody.start_at - melody.server_time == pytest.approx(0.2 + 0.0375, abs=0.01)
        await asyncio.sleep(max(0.0, melody.start_at + 0.1 - c.server_now()))
        async with SegueClient(live.ws, session="fight") as late:
            joined = await next_of(late, LayersMessage)
            assert joined.mood == "combat" and joined.ramp_ms == 0
            assert joined.gains == melody.gains and joined.intensity == 1.0
            assert late.layers["combat"] == joined


async def test_ducks_from_events_and_client_messages(tmp_path):
    async with serve(tmp_path, LAYERED) as live, SegueClient(live.ws, session="talk") as c:
        await next_of(c, CueMessage)
        await c.event("radio_call")
        duck = await next_of(c, DuckMessage)
        assert (duck.depth_db, duck.attack_ms, duck.release_ms, duck.event) == (
            -12.0,
            50,
            500,
            "radio_call",
        )
        assert duck.end_at == pytest.approx(duck.start_at + 3.05)
        await c.duck(-20, attack_ms=100)
        open_duck = await next_of(c, DuckMessage)
        assert open_duck.end_at is None and open_duck.depth_db == -20.0
        async with SegueClient(live.ws, session="talk") as late:
            assert (await next_of(late, DuckMessage)).start_at == open_duck.start_at
        await c.end_duck()
        ended = await next_of(c, DuckMessage)
        assert ended.start_at == open_duck.start_at
        assert ended.end_at == pytest.approx(ended.server_time + 0.2, abs=0.01)
        await c.send_raw({"type": "duck", "depth_db": 3, "id": "d"})
        err = await c.next_error(5)
        assert (err.code, err.id) == ("bad_message", "d")
        assert "duck.depth_db" in err.message
