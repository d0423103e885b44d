"""segue.js plays a cue's ``exit``: the track left jumps to its outro and plays it out,
in the real browser, rendered offline (an OfflineAudioContext under segue.js's own
AudioEngine: the cue path a page takes, with the server clock equal to the context's).

The test file has three levels: the loop region at 0.25, the outro at 0.75, silence
after the outro's end, so the rendered output says which part of the file plays when.
"""

from __future__ import annotations

import itertools
import math

import pytest
from web_support import browser, segue_js_page  # noqa: F401  (the fixtures)

SR = 8000


@pytest.fixture(scope="module")
def page(segue_js_page):  # noqa: F811
    return segue_js_page


# Plays cue A (the song, looping 0..0.5 s) at once, then, at context time `cueAt`, cue B
# with `exit` (the outro 0.5..0.8 s from `exitAt`) and its own track (level 0.1) from
# `start`; returns the render and what segue.js scheduled.
RENDER = """async ([start, fade, exitAt, cueAt]) => {
  const sr = 8000, ctx = new OfflineAudioContext(1, sr * 3, sr);
  const level = (n, parts) => {
    const b = ctx.createBuffer(1, n, sr), d = b.getChannelData(0);
    for (const [from, to, v] of parts) d.fill(v, Math.round(from * sr), Math.round(to * sr));
    return b;
  };
  const song = level(sr, [[0, 0.5, 0.25], [0.5, 0.8, 0.75]]);
  const calm = level(sr * 2, [[0, 2, 0.1]]);
  const client = new Segue.Client({ audio: true, autoUnlock: false });
  const e = client.audio;
  e.ctx = ctx;
  e.master = ctx.createGain();
  e.master.connect(ctx.destination);
  e.duckBus = e.musicBus = e.stingerBus = e.master;
  e.toContextTime = (t) => t;
  e.buffers.set("song", Promise.resolve(song));
  e.buffers.set("calm", Promise.resolve(calm));
  const A = { session: "s", seq: 1, mood: "combat", start_at: 0, offset_s: 0,
              transition: { fade: "none", fade_ms: 0 },
              track: { id: "song", loop: true, loop_start_s: 0, loop_end_s: 0.5, duration_s: 1 } };
  client.cue = A;
  await e._playCue(A);
  const B = { session: "s", seq: 2, mood: "explore", previous: "combat", start_at: start,
              offset_s: 0, transition: { fade, fade_ms: 100, exit: "outro" },
              track: { id: "calm", loop: true, loop_start_s: 0, loop_end_s: 2, duration_s: 2 },
              exit: { mood: "combat", track: "song", at: exitAt, outro_start_s: 0.5,
                      outro_end_s: 0.8 } };
  client.cue = B;
  let scheduled = null;
  client.on("scheduled", (s) => { if (s.cue === B) scheduled = s; });
  // B arrives at context time cueAt (after the jump for a late joiner): the offline
  // context's clock stands still before rendering, so A would count as not started.
  ctx.suspend(cueAt).then(async () => { await e._playCue(B); ctx.resume(); });
  const out = Array.from((await ctx.startRendering()).getChannelData(0));
  return { out, outro: scheduled && scheduled.outro, fadeIn: scheduled && scheduled.fadeIn };
}"""


def at(out: list[float], t: float) -> float:
    return out[round(t * SR)]


def test_the_track_left_jumps_to_its_outro_plays_it_out_and_the_new_track_follows(page):
    # Jump at 0.9 s (second lap, 0.4 s into the loop), the outro's 0.3 s, then B at 1.2 s.
    got = page.evaluate(RENDER, [1.2, "none", 0.9, 0.5])
    out = got["out"]
    assert got["outro"] == {"contextTime": 0.9, "offset": 0.5}
    assert at(out, 0.3) == pytest.approx(0.25, abs=1e-3)  # the loop
    assert at(out, 0.7) == pytest.approx(0.25, abs=1e-3)  # looped back (0.2 into lap 2)
    assert at(out, 0.88) == pytest.approx(0.25, abs=1e-3)  # until the jump
    assert at(out, 0.95) == pytest.approx(0.75, abs=1e-3)  # the outro, at full level
    assert at(out, 1.15) == pytest.approx(0.75, abs=1e-3)  # not faded by the new cue
    assert at(out, 1.3) == pytest.approx(0.1, abs=1e-3)  # B alone: the outro has ended
    assert at(out, 2.5) == pytest.approx(0.1, abs=1e-3)  # and the song never comes back
    # The jump is a short crossfade: nothing steps by more than the levels apart.
    jump = out[round(0.89 * SR) : round(0.93 * SR)]
    assert all(0.25 - 1e-3 <= v <= math.hypot(0.25, 0.75) + 1e-3 for v in jump)  # equal power
    steps = [abs(b - a) for a, b in itertools.pairwise(jump)]
    assert max(steps) < 0.1


def test_with_a_crossfade_the_new_track_fades_in_under_the_outros_end(page):
    got = page.evaluate(RENDER, [1.1, "cross", 0.9, 0.5])
    out = got["out"]
    assert got["fadeIn"] == pytest.approx(0.1)
    assert at(out, 1.05) == pytest.approx(0.75, abs=1e-3)  # the outro alone
    # B fading in under the outro (equal power: sin of the way in), the outro untouched.
    mid = at(out, 1.15)
    assert 0.75 + 0.02 < mid < 0.75 + 0.1
    assert at(out, 1.25) == pytest.approx(0.1, abs=1e-3)


def test_a_cue_heard_after_the_jump_seeks_into_the_outro(page):
    # The cue arrives at 1.0 s for a jump at 0.9: the outro plays from 0.5 + ~0.13 s on.
    got = page.evaluate(RENDER, [1.2, "none", 0.9, 1.0])
    out = got["out"]
    outro = got["outro"]
    assert outro["contextTime"] > 1.0
    assert outro["offset"] == pytest.approx(0.5 + outro["contextTime"] - 0.9, abs=1e-6)
    assert at(out, 0.95) == pytest.approx(0.25, abs=1e-3)  # still looping: not told yet
    assert at(out, outro["contextTime"] + 0.05) == pytest.approx(0.75, abs=1e-3)
    assert at(out, 1.3) == pytest.approx(0.1, abs=1e-3)


def test_a_cue_without_exit_fades_the_old_track_as_before(page):
    got = page.evaluate(
        RENDER.replace('exit: { mood: "combat"', 'noexit: { mood: "combat"'),
        [1.2, "none", 0.9, 0.5],
    )
    out = got["out"]
    assert got["outro"] is None
    assert at(out, 1.15) == pytest.approx(0.25, abs=1e-3)  # the loop plays on
    assert at(out, 1.3) == pytest.approx(0.1, abs=1e-3)  # cut to B at its start
