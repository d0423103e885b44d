"""How closely browser clients of one room play together (segue.js in headless Chromium).

Starts ``segue serve`` with the browser tests' tiny synth score, opens PAGES pages in one
room, unlocks their audio, then flips ``in_combat`` ROUNDS times from the first page and
measures, per round:

- reaction: the state message leaving the first page → the cue reaching each page (ms),
  and the cue's ``start_at`` minus that (the musical wait: the tiny score's transitions
  are ``next_beat`` into combat and ``next_bar`` out of it, at 120 bpm, plus 200 ms lead);
- agreement: the spread of the pages' clock offsets (ms), and whether every page got the
  same ``start_at``;
- alignment: in each page, the position its audio plays minus the room's musical clock
  at that instant (ms) — what a listener hears out of step.

Same-run baseline: the pages' clock offsets against the machine clock they share (their
true offset is 0), i.e. the error of the NTP-style estimate itself.

    PYTHONPATH=tests python benchmarks/web_sync.py [--pages 4] [--rounds 10]

(``PYTHONPATH=tests``: it reuses the test suite's helper modules, as pytest does.)
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from web_support import CHROMIUM_ARGS, chromium_path, start_server, stop_server


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, round(q * (len(values) - 1)))]


def show(name: str, values: list[float], unit: str = "ms") -> None:
    print(
        f"{name:<44} median {statistics.median(values):8.2f} {unit}   "
        f"p95 {pct(values, 0.95):8.2f}   max {max(values):8.2f}   (n={len(values)})"
    )


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--pages", type=int, default=4)
    p.add_argument("--rounds", type=int, default=10)
    args = p.parse_args()
    exe = chromium_path()
    if exe is None:
        print("chromium is not installed", file=sys.stderr)
        return 1
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        served = start_server(Path(tmp))
        try:
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=exe, args=CHROMIUM_ARGS)
                pages = []
                for _ in range(args.pages):
                    page = browser.new_context().new_page()
                    page.goto(f"{served.http}/?session=bench")
                    page.wait_for_function("window.segue && window.segue.debug().mood")
                    page.click("#unlock-btn")
                    page.wait_for_function(
                        "window.segue.debug().voices.some(v => v.started) && "
                        "window.segue.debug().clockSamples >= 5"
                    )
                    page.evaluate(
                        "() => { window.__cues = []; window.segue.on('cue', (c) => "
                        "window.__cues.push({seq: c.seq, start_at: c.start_at, "
                        "at: window.segue.serverNow()})); }"
                    )
                    pages.append(page)
                pages[0].evaluate(
                    "() => { window.__sent = []; window.segue.on('state', () => "
                    "window.__sent.push(window.segue.serverNow())); }"
                )
                reaction, wait, spread, align, baseline = [], [], [], [], []
                same_start = 0
                for round_ in range(args.rounds):
                    pages[0].click('[data-key="in_combat"] input')
                    pages[0].wait_for_function(f"window.__sent.length > {round_}")
                    clicked = pages[0].evaluate(f"window.__sent[{round_}]")
                    seq = None
                    starts = set()
                    for page in pages:
                        page.wait_for_function(f"window.__cues.length > {round_}", timeout=10000)
                        cue = page.evaluate(f"window.__cues[{round_}]")
                        seq = cue["seq"] if seq is None else seq
                        starts.add(cue["start_at"])
                        reaction.append((cue["at"] - clicked) * 1000)
                    same_start += len(starts) == 1
                    wait.append((min(starts) - clicked) * 1000)
                    time.sleep(max(0.0, min(starts) - time.time()) + 0.6)
                    offsets = []
                    for page in pages:
                        got = page.evaluate(
                            """() => {
                              const s = window.segue, a = s.audio, v = a.audible();
                              const now = s.serverNow();
                              const heard = v.positionAt(a.toContextTime(now));
                              const room = s.position(now).position;
                              const lap = v.buffer.duration;
                              let gap = heard - room;
                              gap -= lap * Math.round(gap / lap);
                              return {gap, offset: s.clock.offset,
                                      truth: Date.now() / 1000 - (performance.timeOrigin
                                             + performance.now()) / 1000};
                            }"""
                        )
                        align.append(abs(got["gap"]) * 1000)
                        offsets.append(got["offset"])
                        # The server runs on this machine: its clock is Date.now()'s.
                        baseline.append(abs(got["offset"] - got["truth"]) * 1000)
                    spread.append((max(offsets) - min(offsets)) * 1000)
                browser.close()
        finally:
            stop_server(served)
    print(f"{args.pages} pages in one room, {args.rounds} cues (120 bpm, 200 ms lead)")
    show("state sent → cue at each page", reaction)
    show("state sent → start_at (musical wait)", wait)
    show("clock offset spread across pages", spread)
    show("audio vs the room's clock, per page", align)
    show("baseline: offset estimate vs true offset", baseline)
    print(f"{'pages with one start_at per cue':<44} {same_start}/{args.rounds}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
