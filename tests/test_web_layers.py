"""segue.js layers and ducks in the real browser, rendered offline (OfflineAudioContext).

Gain ramps must not click or zip when a stem's gain changes mid-note, stems must stay
sample-aligned across loops and seeks, and a duck must follow its attack and release.
"""

from __future__ import annotations

import pytest
from web_support import browser, segue_js_page  # noqa: F401  (the fixtures)

SR = 48000


@pytest.fixture(scope="module")
def page(segue_js_page):  # noqa: F811
    return segue_js_page


# A 440 Hz sine through a gain node, with gain changes scheduled mid-note; returns the
# largest sample-to-sample step of the result and of the plain sine (its slope bound).
RENDER_GAIN = """async ([mode]) => {
  const sr = 48000, ctx = new OfflineAudioContext(1, sr / 2, sr);
  const osc = new OscillatorNode(ctx, {frequency: 440});
  const g = new GainNode(ctx, {gain: 1});
  osc.connect(g).connect(ctx.destination);
  osc.start(0);
  if (mode === "ramps") {
    const peak = 1 / 1760;  // changes on the sine's crests, mid-note
    Segue.rampGain(g.gain, 0.2, 0.2 + peak, 0.025);   // a layer's 25 ms edge
    Segue.rampGain(g.gain, 0.0, 0.3 + peak, 0.04);
    Segue.rampGain(g.gain, 1.0, 0.31 + peak, 0.0);    // interrupts the ramp: ramp_ms 0
  } else {
    g.gain.setValueAtTime(0.2, 0.2 + 1 / 1760);       // what an unsmoothed layer does
  }
  const out = (await ctx.startRendering()).getChannelData(0);
  let step = 0;
  for (let i = 1; i < out.length; i++) step = Math.max(step, Math.abs(out[i] - out[i - 1]));
  return [step, 2 * Math.PI * 440 / sr, out[Math.round(0.26 * sr)], out.length];
}"""


def test_gain_ramps_mid_note_have_no_discontinuity(page):
    step, slope, _, n = page.evaluate(RENDER_GAIN, ["ramps"])
    assert n == SR // 2
    # Never steeper than the sine itself (a click is a step far above its slope).
    assert step <= slope * 1.01
    jump, slope, _, _ = page.evaluate(RENDER_GAIN, ["step"])
    assert jump > 5 * slope  # the check sees a click when there is one


def test_stems_stay_sample_aligned_across_loops_and_seeks(page):
    got = page.evaluate(
        """async () => {
          const sr = 8000, ctx = new OfflineAudioContext(1, sr * 3, sr);
          const n = sr;  // a 1 s file: loop region 0.25..0.75 s
          const a = ctx.createBuffer(1, n, sr), b = ctx.createBuffer(1, n, sr);
          let seed = 7;
          for (let i = 0; i < n; i++) {
            seed = (seed * 1103515245 + 12345) % 2147483648;
            const x = seed / 2147483648 - 0.5;
            a.getChannelData(0)[i] = x;
            b.getChannelData(0)[i] = -x;  // exactly cancels a when aligned
          }
          const bus = new GainNode(ctx);
          bus.connect(ctx.destination);
          const engine = {ctx, musicBus: bus, stingerBus: bus, stemGain: () => 1, _forget() {}};
          const track = {id: "t", loop: true, loop_start_s: 0.25, loop_end_s: 0.75, duration_s: 1};
          const cue = {mood: "m", track};
          const render = async (stems) => {
            const c2 = new OfflineAudioContext(1, sr * 3, sr);
            const bus2 = new GainNode(c2);
            bus2.connect(c2.destination);
            const e2 = Object.assign({}, engine, {ctx: c2, musicBus: bus2, stingerBus: bus2});
            // Two voices: one started at 0 from the start, one seeked into the loop.
            new Segue.Voice(e2, cue, stems, "music").start(0, 0, 1);
            new Segue.Voice(e2, cue, stems, "music").start(0.5, 0.6, 1);
            return (await c2.startRendering()).getChannelData(0);
          };
          const both = await render(new Map([["a", a], ["b", b]]));
          const one = await render(new Map([["a", a]]));
          const peak = (x) => x.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
          return [peak(both), peak(one)];
        }"""
    )
    aligned, alone = got
    assert alone > 0.4  # the stem plays (through many loops)
    assert aligned < 1e-6  # and its opposite cancels it sample for sample


def test_a_duck_follows_its_attack_and_release(page):
    level = page.evaluate(
        """async () => {
          const sr = 48000, ctx = new OfflineAudioContext(1, sr * 2, sr);
          const dc = new ConstantSourceNode(ctx, {offset: 1});
          const g = new GainNode(ctx);
          dc.connect(g).connect(ctx.destination);
          dc.start(0);
          Segue.scheduleDuck(g.gain, {depth_db: -12, attack_ms: 50, release_ms: 200,
                                      start_at: 0.3, end_at: 1.0}, (t) => t);
          return Array.from((await ctx.startRendering()).getChannelData(0));
        }"""
    )
    depth = 10 ** (-12 / 20)

    def first(cond, after: float) -> float:
        i = int(after * SR)
        while not cond(level[i]):
            i += 1
        return i / SR

    assert level[int(0.29 * SR)] == pytest.approx(1.0, abs=1e-6)
    assert first(lambda v: v <= depth + 1e-3, 0.3) == pytest.approx(0.35, abs=0.003)
    assert level[int(0.325 * SR)] == pytest.approx((1 + depth) / 2, abs=0.01)  # linear
    assert level[int(0.9 * SR)] == pytest.approx(depth, abs=1e-4)  # held
    assert first(lambda v: v >= 1 - 1e-3, 1.0) == pytest.approx(1.2, abs=0.003)
    assert first(lambda v: v > depth + 1e-3, 0.36) == pytest.approx(1.0, abs=0.003)
