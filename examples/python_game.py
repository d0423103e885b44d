#!/usr/bin/env python3
"""A tiny simulated game that drives a segue session through the Python SDK.

The "game" is a short adventure in the Ember Keep score's world: wander the hills, visit
the village, meet a patrol, fight (and nearly lose), sneak through the cellars, get
caught, face the Ember Wyrm, win. Every game tick it sends what changed in the game state
(`in_combat`, `enemies_near`, `player.health`, `zone`, `player.stance`, `boss`…) and the
game events (`boss_defeated`…), and it prints every cue, stinger and pending notice the
server pushes back, with when each one starts on the server's clock.

    segue serve                                   # in another terminal
    python examples/python_game.py                # ws://127.0.0.1:8765/ws, 1 s per tick
    python examples/python_game.py --fast --steps 20 --session demo

Open http://127.0.0.1:8765/?session=<the session it prints> in a browser to hear the
same session (the page joins the room and plays what the game triggers).

Only events the score defines are sent (the list comes from GET /api/score). Exit codes:
0 done, 1 the server could not be reached or closed the connection, 2 bad arguments.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from segue.core.client import (
    CueMessage,
    PendingMessage,
    SegueClient,
    SegueClientError,
    StingerMessage,
)


@dataclass
class Tick:
    """One game tick: what the game says happened, the state it sets, the events it fires."""

    say: str
    set: dict[str, Any] = field(default_factory=dict)
    unset: list[str] = field(default_factory=list)
    events: list[str] = field(default_factory=list)


def adventure(rng: random.Random) -> Iterator[Tick]:
    """The game: a scripted story with random details, one Tick per game step."""
    health = 1.0
    yield Tick("you set out across the hills", {"zone": "hills", "player.health": health})
    for _ in range(rng.randint(2, 3)):
        yield Tick("wandering the hills…")
    yield Tick("you find a hidden shrine", events=["secret_found"])
    yield Tick("the road leads down to Ashford", {"zone": "village"})
    for _ in range(2):
        yield Tick("the market is busy")
    yield Tick("back on the road to the keep", {"zone": "hills"})

    # An encounter: a patrol spots you, then attacks.
    n = rng.randint(2, 4)
    yield Tick(f"{n} guards on the ridge", {"enemies_near": n, "alert_level": 1})
    yield Tick("they have seen you", {"alert_level": 2})
    yield Tick("steel drawn: combat!", {"in_combat": True})
    while health > 0.2:
        health = round(max(0.05, health - rng.uniform(0.12, 0.22)), 2)
        yield Tick(f"you trade blows (health {health:.2f})", {"player.health": health})
    yield Tick("almost down… (danger)")
    health = 0.8
    yield Tick("a potion! health 0.80", {"player.health": health})
    yield Tick("the last guard falls")
    yield Tick(
        "the patrol is beaten",
        {"in_combat": False, "enemies_near": 0, "alert_level": 0},
        events=["quest_completed"],
    )
    yield Tick("catching your breath")

    # Stealth, then caught.
    sneak = {"zone": "cellars", "player.stance": "sneaking"}
    yield Tick("into the keep's cellars, sneaking", sneak)
    for _ in range(rng.randint(2, 3)):
        yield Tick("tiptoeing past barrels…")
    yield Tick("you open a chest", events=["treasure_opened"])
    yield Tick("a guard turns around: caught!", {"player.stance": "standing", "in_combat": True})
    yield Tick("a short, sharp fight")
    yield Tick("the guard is down", {"in_combat": False})

    # The boss.
    yield Tick("the Ember Wyrm wakes", {"zone": "keep", "boss": "ember_wyrm", "in_combat": True})
    for _ in range(rng.randint(3, 5)):
        health = round(max(0.3, health - rng.uniform(0.05, 0.1)), 2)
        yield Tick(f"fire and steel (health {health:.2f})", {"player.health": health})
    yield Tick(
        "the Wyrm falls!",
        {"in_combat": False},
        unset=["boss"],
        events=["boss_defeated"],
    )
    yield Tick("silence in the keep")
    yield Tick("you walk out into the hills", {"zone": "hills", "player.health": 1.0})
    yield Tick("the end")


def http_base(ws_url: str) -> str:
    parts = urlsplit(ws_url)
    scheme = {"ws": "http", "wss": "https"}.get(parts.scheme, parts.scheme)
    return urlunsplit((scheme, parts.netloc, "", "", ""))


def score_events(ws_url: str, token: str | None) -> set[str] | None:
    """The events the server's score defines (None if /api/score cannot be read)."""
    request = urllib.request.Request(http_base(ws_url) + "/api/score")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            score = json.load(response)
    except (OSError, ValueError, urllib.error.URLError):
        return None
    return {e["name"] for e in score.get("events", [])}


class Printer:
    def __init__(self, client: SegueClient) -> None:
        self.client = client
        self.t0 = time.monotonic()
        self.cues = 0
        self.stingers = 0
        self.moods: list[str] = []

    def line(self, kind: str, text: str) -> None:
        print(f"[{time.monotonic() - self.t0:6.1f}s] {kind:<7} {text}", flush=True)

    def show(self, msg: Any) -> None:
        now = self.client.server_now()
        if isinstance(msg, CueMessage):
            self.cues += 1
            if not self.moods or self.moods[-1] != msg.mood:
                self.moods.append(msg.mood)
            t = msg.transition
            track = msg.track
            wait = msg.start_at - now
            when = f"in {wait:.2f} s" if wait >= 0 else f"{-wait:.2f} s ago (joining)"
            self.line(
                f"cue #{msg.seq}",
                f"{msg.previous or '·'} → {msg.mood}  track {track.id[:10]} v{track.variant}"
                f"  starts {when} at {msg.offset_s:.2f} s"
                f"  ({t.get('at')}, {t.get('fade')} {t.get('fade_ms')} ms)",
            )
        elif isinstance(msg, StingerMessage):
            self.stingers += 1
            wait = max(0.0, msg.start_at - now)
            self.line("stinger", f"{msg.name} for {msg.event}  in {wait:.2f} s")
        elif isinstance(msg, PendingMessage):
            self.line("pending", f"{msg.mood}: {msg.reason}")


async def play(args: argparse.Namespace) -> int:
    known = score_events(args.url, args.token)
    session = args.session or f"game-{random.randrange(16**6):06x}"
    client = SegueClient(args.url, session=session, token=args.token)
    try:
        await client.connect()
    except (OSError, SegueClientError) as exc:
        print(f"python_game: cannot connect to {args.url}: {exc}", file=sys.stderr)
        return 1
    out = Printer(client)
    out.line(
        "session",
        f"{client.session}  clock offset {client.clock_offset * 1000:+.1f} ms"
        f" (rtt {(client.clock_rtt or 0) * 1000:.1f} ms)"
        f"  — listen: {http_base(args.url)}/?session={client.session}",
    )

    async def listen() -> None:
        async for msg in client.cues():
            out.show(msg)

    listener = asyncio.get_running_loop().create_task(listen())
    rng = random.Random(args.seed)
    status = 0
    try:
        for step, tick in enumerate(adventure(rng)):
            if args.steps is not None and step >= args.steps:
                break
            if listener.done():  # the connection ended for good
                break
            out.line("game", tick.say)
            if tick.set or tick.unset:
                await client.set_state(tick.set, unset=tick.unset)
            for name in tick.events:
                if known is None or name in known:
                    await client.event(name)
                else:
                    out.line("game", f"(the score has no {name!r} event; not sent)")
            await asyncio.sleep(args.tick_s)
        await asyncio.sleep(min(1.0, args.tick_s * 4))  # the last cues
    except SegueClientError as exc:
        print(f"python_game: {exc}", file=sys.stderr)
        status = 1
    finally:
        await client.close()
        if listener.done() and not listener.cancelled() and listener.exception() is not None:
            print(f"python_game: {listener.exception()}", file=sys.stderr)
            status = 1
        listener.cancel()
    out.line(
        "done",
        f"{out.cues} cue(s), {out.stingers} stinger(s); moods: {' → '.join(out.moods) or 'none'}",
    )
    return status


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--url", default="ws://127.0.0.1:8765/ws", help="the server's WebSocket URL")
    p.add_argument("--session", help="session (room) id; default: a new one")
    p.add_argument("--token", help="access token, if the server wants one")
    p.add_argument("--steps", type=int, help="stop after this many game ticks")
    p.add_argument("--tick-s", type=float, default=1.0, help="seconds per game tick (1.0)")
    p.add_argument("--fast", action="store_true", help="0.1 s per tick (tests, a quick look)")
    p.add_argument("--seed", type=int, default=None, help="random seed for a repeatable game")
    args = p.parse_args(argv)
    if args.fast:
        args.tick_s = 0.1
    if args.tick_s <= 0 or (args.steps is not None and args.steps < 0):
        p.error("--tick-s must be positive and --steps not negative")
    try:
        return asyncio.run(play(args))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
