"""Leaving a mood through its song's ending: ``exit: outro`` (pure: the director, the
cue's ``exit`` field on the wire and in the SDK; no sockets)."""

from __future__ import annotations

import json

import pytest
from test_rules_director import BPM, LEAD, T0, TOL, director, loop_track, only, tr

from segue.core.cue import Cue
from segue.core.engine.clock import Grid, schedule
from segue.core.engine.director import Director
from segue.core.engine.transitions import outro_region
from segue.core.messages import CueExit, parse_server_message
from segue.core.server.wire import Encoder
from segue.core.track import Track

OUTRO_S = 6.0


def carved(mood: str, bars: int = 8) -> Track:
    """A song carved by loop_points: a one-bar lead-in, the loop, then its outro."""
    bar = 4 * 60.0 / BPM[mood]
    start, end = bar, bar * (1 + bars)
    info = {
        "carved": True,
        "bars": bars,
        "lead_in_s": start,
        "crossfade_s": 0.2,
        "outro_start_s": end,
        "outro_end_s": end + OUTRO_S,
        "source_s": end + OUTRO_S + 1.0,
    }
    return Track(
        id=f"{mood}-song",
        mood=mood,
        variant=0,
        format="ogg",
        duration_s=end + OUTRO_S + 0.5,
        bpm=BPM[mood],
        first_beat_s=0.0,
        loop_start_s=start,
        loop_end_s=end,
        extra={"loop": info},
    )


def library(**tracks: Track) -> dict[str, list[Track]]:
    lib = {mood: [loop_track(mood)] for mood in BPM}
    for mood, track in tracks.items():
        lib[mood] = [track]
    return lib


OUT_OF_COMBAT = (
    tr("*", "*", at="next_bar", fade_ms=2000),
    tr("combat", "explore", at="next_bar", fade="cross", fade_ms=1500, exit="outro"),
)


def into_combat(d: Director) -> Cue:
    d.start(T0)
    return only(d.update(T0 + 1.0, set={"in_combat": True}))


def test_outro_region_reads_the_carved_metadata():
    assert outro_region(carved("combat")) == pytest.approx(
        (9 * 4 * 60 / 140, 9 * 4 * 60 / 140 + OUTRO_S)
    )
    assert outro_region(loop_track("combat")) is None  # the synth's loops: no outro
    empty = {"carved": False, "fallback": "too short", "outro_start_s": 10.0, "outro_end_s": 10.0}
    whole = carved("combat").replace(extra={"loop": empty})
    assert outro_region(whole) is None  # a whole-song loop: its outro is empty
    assert outro_region(carved("combat").replace(loop=False)) is None
    past_end = carved("combat").replace(duration_s=10.0)
    assert outro_region(past_end) is None  # metadata that does not fit the file


def test_leaving_by_the_outro_jumps_on_the_bar_and_starts_the_new_track_as_it_ends():
    song = carved("combat")
    d, _ = director(OUT_OF_COMBAT, library(combat=song))
    combat = into_combat(d)
    t = T0 + 20.0
    cue = only(d.update(t, set={"in_combat": False}))
    grid = Grid.from_track(song)
    jump = schedule(grid, combat.start_at, combat.offset_s, t, "next_bar", LEAD)
    assert cue.exit is not None
    assert (cue.exit.mood, cue.exit.track) == ("combat", song.id)
    assert cue.exit.at == pytest.approx(jump, abs=TOL)
    start, end = outro_region(song)
    assert (cue.exit.outro_start_s, cue.exit.outro_end_s) == (start, end)
    # The explore track fades in over the outro's last 1.5 s (fade: cross).
    assert cue.start_at == pytest.approx(jump + OUTRO_S - 1.5, abs=TOL)
    assert (cue.mood, cue.previous, cue.offset_s) == ("explore", "combat", 0.0)
    msg = cue.to_message(t)
    assert msg["exit"] == {
        "mood": "combat",
        "track": song.id,
        "at": cue.exit.at,
        "outro_start_s": start,
        "outro_end_s": end,
    }
    assert msg["transition"]["exit"] == "outro"
    # The same on the wire, and in the Python SDK.
    wire = json.loads(Encoder().encode_cue(cue, t))
    assert wire == json.loads(json.dumps(msg))
    parsed = parse_server_message(wire)
    assert parsed.exit == CueExit("combat", song.id, cue.exit.at, start, end)


@pytest.mark.parametrize(("fade", "overlap"), [("in", 1.5), ("out", 0.0), ("none", 0.0)])
def test_the_new_track_overlaps_the_outro_only_when_it_fades_in(fade, overlap):
    rules = (tr("combat", "explore", at="next_bar", fade=fade, fade_ms=1500, exit="outro"),)
    d, _ = director(rules, library(combat=carved("combat")))
    into_combat(d)
    cue = only(d.update(T0 + 20.0, set={"in_combat": False}))
    assert cue.start_at == pytest.approx(cue.exit.at + OUTRO_S - overlap, abs=TOL)


def test_a_fade_longer_than_the_outro_starts_the_new_track_at_the_jump():
    rules = (tr("combat", "explore", at="next_bar", fade_ms=20000, exit="outro"),)
    d, _ = director(rules, library(combat=carved("combat")))
    into_combat(d)
    cue = only(d.update(T0 + 20.0, set={"in_combat": False}))
    assert cue.start_at == pytest.approx(cue.exit.at, abs=TOL)


def test_a_track_without_an_outro_fades_as_usual():
    d, lib = director(OUT_OF_COMBAT, library())  # the synth's loops: no outro
    combat = into_combat(d)
    t = T0 + 20.0
    cue = only(d.update(t, set={"in_combat": False}))
    grid = Grid.from_track(lib["combat"][0])
    assert cue.exit is None and "exit" not in cue.to_message(t)
    assert cue.start_at == pytest.approx(
        schedule(grid, combat.start_at, combat.offset_s, t, "next_bar", LEAD), abs=TOL
    )
    assert "exit" not in json.loads(Encoder().encode_cue(cue, t))
    assert parse_server_message(cue.to_message(t)).exit is None


def test_a_desire_that_returns_before_the_jump_continues_the_mood():
    d, _ = director(OUT_OF_COMBAT, library(combat=carved("combat")))
    combat = into_combat(d)
    grid = Grid.from_track(combat.track)
    # Just after a bar line: the next one, where the outro would start, is a bar away.
    t = schedule(grid, combat.start_at, 0.0, T0 + 20.0, "next_bar", 0.0) + 0.01
    leave = only(d.update(t, set={"in_combat": False}))
    assert leave.exit.at - LEAD > t + 0.5  # room to take it back
    back = only(d.update(t + 0.01, set={"in_combat": True}))
    assert (back.mood, back.track, back.exit) == ("combat", combat.track, None)
    assert back.start_at <= leave.exit.at


def test_once_the_outro_has_begun_the_mood_is_left_and_a_return_follows_it():
    d, _ = director(OUT_OF_COMBAT, library(combat=carved("combat")))
    combat = into_combat(d)
    leave = only(d.update(T0 + 20.0, set={"in_combat": False}))
    during = leave.exit.at + 1.0  # the outro plays; explore has not started
    back = only(d.update(during, set={"in_combat": True}))
    # Not a continuation of the loop (the track is ending): combat again, from its start,
    # where explore would have started, the outro still played.
    assert (back.mood, back.previous, back.offset_s) == ("combat", "combat", 0.0)
    assert back.track == combat.track
    assert back.start_at == pytest.approx(leave.start_at, abs=TOL)
    assert back.exit == leave.exit
    # Another mood meanwhile takes the same place too.
    other = only(d.update(during + 0.5, set={"enemies_near": 1, "in_combat": False}))
    assert (other.mood, other.exit, other.start_at) == ("tension", leave.exit, back.start_at)


def test_the_snapshot_keeps_the_exit():
    d, lib = director(OUT_OF_COMBAT, library(combat=carved("combat")))
    into_combat(d)
    leave = only(d.update(T0 + 20.0, set={"in_combat": False}))
    snap = json.loads(json.dumps(d.snapshot()))
    again = Director("room", d.score, lambda m: lib.get(m, []), seed=7)
    again.restore(snap)
    assert again.current.exit == leave.exit
    assert again.current.to_message(1.0) == leave.to_message(1.0)
