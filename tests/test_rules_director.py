"""The director state machine: scenarios and hypothesis-driven sequences (pure, no I/O)."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from segue.core.conditions import compile_condition
from segue.core.cue import Cue, Pending, Stinger
from segue.core.engine.clock import AT_VALUES, Grid, position, schedule
from segue.core.engine.director import CONTINUE, Director, UnknownEvent
from segue.core.engine.rules import desired_mood
from segue.core.engine.state import StateError
from segue.core.engine.transitions import TransitionTable
from segue.core.score import (
    EventSpec,
    Mood,
    PluginChoice,
    Rule,
    Score,
    Transition,
    TransitionRule,
)
from segue.core.track import Track

T0 = 1_764_000_000.0
LEAD = 0.2
TOL = 1e-6
BPM = {"explore": 84.0, "combat": 140.0, "tension": 100.0, "danger": 150.0}


def rule(mood: str, when: dict | None = None, priority: int = 0) -> Rule:
    condition = None if when is None else compile_condition(when)
    return Rule(mood=mood, when=condition, priority=priority)


RULES = (
    rule("danger", {"in_combat": True, "player.health": {"lt": 0.3}}, 30),
    rule("combat", {"in_combat": True}, 20),
    rule("tension", {"enemies_near": {"gt": 0}}, 10),
    rule("explore"),
)


def tr(frm: str, to: str, **fields) -> TransitionRule:
    return TransitionRule(from_mood=frm, to_mood=to, transition=Transition(**fields))


# The transitions of tests/scores/design_example.yaml.
EXAMPLE = (
    tr("*", "*", at="next_bar", fade_ms=2000, min_dwell_s=8),
    tr("*", "combat", at="next_beat", fade_ms=300),
    tr("combat", "explore", at="next_bar", entry="start", fade_ms=4000, debounce_ms=1500),
)


def loop_track(mood: str, variant: int = 0, bpm: float | None = None, bars: int = 16) -> Track:
    bpm = bpm or BPM[mood]
    loop_end = bars * 4 * 60.0 / bpm
    return Track(
        id=f"{mood}-{variant}",
        mood=mood,
        variant=variant,
        format="ogg",
        duration_s=loop_end + 2.0,  # a tail after the loop
        bpm=bpm,
        loop_end_s=loop_end,
    )


def stinger_track(variant: int = 0) -> Track:
    return Track(
        id=f"victory-{variant}",
        mood="victory",
        variant=variant,
        format="ogg",
        duration_s=8.0,
        bpm=120.0,
        loop=False,
    )


def make_score(transitions=EXAMPLE, rules=RULES) -> Score:
    moods = {
        name: Mood(name, f"{name} music", None, 30.0, True, 1, "ogg", bpm=BPM.get(name))
        for name in [*BPM, "victory"]
    }
    return Score(
        path=Path("adaptive_score.yaml"),
        title="test",
        generator=PluginChoice("synth"),
        cache=PluginChoice("disk"),
        storage=(PluginChoice("local"),),
        moods=moods,
        rules=tuple(rules),
        events={
            "boss_defeated": EventSpec("boss_defeated", stinger="victory"),
            "door": EventSpec("door", stinger=None),
            "fanfare": EventSpec("fanfare", stinger="victory", at="next_bar"),
        },
        transitions=tuple(transitions),
    )


def full_library() -> dict[str, list[Track]]:
    lib = {mood: [loop_track(mood)] for mood in BPM}
    lib["combat"].append(loop_track("combat", 1))
    lib["victory"] = [stinger_track(0), stinger_track(1)]
    return lib


def director(transitions=EXAMPLE, library=None, rules=RULES) -> tuple[Director, dict]:
    lib = full_library() if library is None else library
    d = Director("room", make_score(transitions, rules), lambda m: lib.get(m, []), seed=7)
    return d, lib


def only(items: list) -> Cue:
    assert len(items) == 1 and isinstance(items[0], Cue), items
    return items[0]


# ---------------------------------------------------------------- scenarios


def test_start_cues_the_default_mood_at_once():
    d, lib = director()
    assert d.current is None and d.seq == 0 and d.next_wakeup() is None
    cue = only(d.start(T0))
    assert (cue.seq, cue.session, cue.mood, cue.previous) == (1, "room", "explore", None)
    assert cue.start_at == pytest.approx(T0 + LEAD, abs=TOL) and cue.offset_s == 0.0
    assert cue.track == lib["explore"][0]
    assert cue.transition == EXAMPLE[0].transition  # (None, explore) -> (*, *)
    assert d.current == cue and d.desired == "explore" and d.seq == 1
    assert d.playing(T0) is None  # not started yet
    mood, track, pos = d.playing(T0 + 1.0)
    assert (mood, track.id) == ("explore", "explore-0") and pos == pytest.approx(0.8, abs=TOL)
    assert d.start(T0 + 1.0) == []  # same desire: nothing new


def test_into_combat_on_the_next_beat_without_dwell():
    d, _ = director()
    d.start(T0)
    cue = only(d.update(T0 + 3.0, set={"in_combat": True}))
    # (*, combat) is used whole: next_beat, no min_dwell even though (*, *) has 8 s.
    beat = 60.0 / 84
    assert cue.start_at == pytest.approx(T0 + LEAD + 5 * beat, abs=TOL)  # track 3.0 -> beat 5
    assert (cue.seq, cue.mood, cue.previous, cue.offset_s) == (2, "combat", "explore", 0.0)
    assert cue.transition.fade_ms == 300
    assert d.next_wakeup() is None


def test_leaving_combat_waits_for_debounce():
    d, _ = director()
    d.start(T0)
    combat = only(d.update(T0 + 3.0, set={"in_combat": True}))
    t = T0 + 20.0
    assert d.update(t, set={"in_combat": False}) == []
    assert d.next_wakeup() == pytest.approx(t + 1.5, abs=TOL)
    assert d.tick(t + 1.0) == []
    cue = only(d.tick(t + 1.5))
    assert (cue.mood, cue.previous, cue.transition.fade_ms) == ("explore", "combat", 4000)
    # On a bar line of the combat track, at least the lead after now.
    grid = Grid.from_track(combat.track)
    expected = schedule(grid, combat.start_at, 0.0, t + 1.5, "next_bar", LEAD)
    assert cue.start_at == pytest.approx(expected, abs=TOL)
    bars = (position(grid, combat.start_at, 0.0, cue.start_at - 1e-3) + 1e-3) / grid.bar_s
    assert bars == pytest.approx(round(bars), abs=1e-5)
    assert d.next_wakeup() is None


def test_a_desire_that_flips_back_inside_debounce_cancels_silently():
    d, _ = director()
    d.start(T0)
    d.update(T0 + 3.0, set={"in_combat": True})
    seq = d.seq
    assert d.update(T0 + 20.0, set={"in_combat": False}) == []
    assert d.update(T0 + 21.0, set={"in_combat": True}) == []
    assert d.next_wakeup() is None
    assert d.tick(T0 + 30.0) == [] and d.seq == seq and d.current.mood == "combat"


def test_min_dwell_holds_the_mood_and_the_latest_desire_wins():
    d, _ = director()
    d.start(T0)  # explore from T0 + 0.2; (*, *) holds it 8 s
    assert d.update(T0 + 2.0, set={"enemies_near": 2}) == []
    assert d.next_wakeup() == pytest.approx(T0 + 8.2, abs=TOL)
    assert d.update(T0 + 5.0, set={"in_combat": True, "player.health": 0.1}) == []
    assert d.desired == "danger"
    assert d.tick(T0 + 8.0) == []
    cue = only(d.tick(T0 + 8.2))
    assert (cue.mood, cue.previous) == ("danger", "explore")
    bar = 4 * 60.0 / 84  # track time 8.2 at the threshold -> bar 3
    assert cue.start_at == pytest.approx(T0 + LEAD + 3 * bar, abs=TOL)


AT_END = (
    tr("*", "*", at="end", min_dwell_s=8),
    tr("explore", "tension", at="end"),
    tr("*", "combat", at="next_beat", entry="same_position"),
)


def test_latest_wins_replaces_a_cue_ahead():
    d, _ = director(AT_END)
    first = only(d.start(T0))
    loop = 16 * 4 * 60.0 / 84
    ahead = only(d.update(T0 + 1.0, set={"enemies_near": 1}))
    assert ahead.mood == "tension" and ahead.start_at == pytest.approx(T0 + LEAD + loop, abs=TOL)
    # Into combat: replaces the tension cue at once, timed on the track playing.
    cue = only(d.update(T0 + 2.0, set={"in_combat": True}))
    assert (cue.seq, cue.mood, cue.previous) == (3, "combat", "explore")
    assert cue.start_at == pytest.approx(T0 + LEAD + 3 * 60.0 / 84, abs=TOL)
    assert d.current == cue
    assert d.playing(T0 + 2.0)[0] == "explore" and d.playing_cue(T0 + 2.0) == first
    # same_position: explore beat 3 (of bar 0) -> combat beat 3 at 140 bpm.
    assert cue.offset_s == pytest.approx(3 * 60.0 / 140, abs=TOL)
    assert d.playing(T0 + 10.0)[0] == "combat" and d.playing_cue(T0 + 10.0) == cue


def test_returning_to_the_playing_mood_continues_it_seamlessly():
    d, _ = director(AT_END)
    first = only(d.start(T0))
    only(d.update(T0 + 1.0, set={"enemies_near": 1}))  # tension, at the loop's end
    cue = only(d.update(T0 + 2.0, set={"enemies_near": 0}))
    assert (cue.seq, cue.mood, cue.previous) == (3, "explore", "explore")
    assert cue.track == first.track and cue.transition == CONTINUE
    assert cue.start_at == pytest.approx(T0 + 2.0 + LEAD, abs=TOL)
    assert cue.offset_s == pytest.approx(cue.start_at - first.start_at, abs=TOL)
    # The music is explore throughout, on the original timeline.
    mood, _, pos = d.playing(T0 + 60.0)
    loop = 16 * 4 * 60.0 / 84
    assert mood == "explore" and pos == pytest.approx((60.0 - LEAD) - loop, abs=1e-5)
    # The continuation does not restart the dwell: (*, *) counts from T0 + 0.2.
    assert d.update(T0 + 3.0, set={"in_combat": True, "player.health": 0.1}) == []
    assert d.next_wakeup() == pytest.approx(T0 + 8.2, abs=TOL)


def test_a_waiting_desire_is_looked_at_again_when_the_cue_ahead_starts():
    # Out of explore, danger waits 10 s; out of combat, not at all.
    d, _ = director(
        (
            tr("*", "*", at="next_bar"),
            tr("explore", "danger", debounce_ms=10_000),
        )
    )
    d.start(T0)
    combat = only(d.update(T0 + 1.0, set={"in_combat": True}))
    assert combat.start_at == pytest.approx(T0 + LEAD + 4 * 60.0 / 84, abs=TOL)
    assert d.update(T0 + 1.1, set={"player.health": 0.1}) == []
    assert d.next_wakeup() == combat.start_at  # the mood it leaves changes then
    cue = only(d.tick(combat.start_at))
    assert (cue.mood, cue.previous) == ("danger", "combat")


def test_replacing_the_first_cue_before_it_starts():
    d, _ = director()
    d.start(T0)
    cue = only(d.update(T0 + 0.1, set={"in_combat": True}))
    # Nothing plays yet: from None, at now + lead, offset 0.
    assert (cue.mood, cue.previous, cue.seq) == ("combat", None, 2)
    assert cue.start_at == pytest.approx(T0 + 0.1 + LEAD, abs=TOL) and cue.offset_s == 0.0
    assert d.playing(T0 + 1.0)[0] == "combat"


def test_pending_once_then_cued_when_tracks_arrive():
    lib = full_library()
    del lib["combat"]
    d, _ = director(library=lib)
    d.start(T0)
    assert d.update(T0 + 1.0, set={"in_combat": True}) == [Pending("combat")]
    assert d.update(T0 + 2.0, set={"enemies_near": 3}) == []  # still combat: said once
    assert d.tick(T0 + 3.0) == [] and d.next_wakeup() is None
    assert d.tracks_changed(T0 + 4.0) == []  # something else was stored
    assert d.current.mood == "explore"
    lib["combat"] = [loop_track("combat")]
    cue = only(d.tracks_changed(T0 + 5.0))
    assert (cue.mood, cue.previous, cue.seq) == ("combat", "explore", 2)
    assert cue.start_at >= T0 + 5.0 + LEAD - TOL


def test_pending_mood_whose_tracks_arrive_during_a_dwell_is_cued_when_the_dwell_ends():
    # Found by test_director_state_machine: Pending said while the cue ahead had not
    # started; once it started, its mood's dwell stood between the tracks and the cue, and
    # next_wakeup() said nothing waited, so the cue came only with the next message.
    lib = full_library()
    del lib["danger"]
    d, _ = director([tr("tension", "danger", at="now", min_dwell_s=2.5)], library=lib)
    d.start(T0)
    ahead = only(d.update(T0 + 1.0, set={"enemies_near": 1, "player.health": 0.1}))
    assert ahead.mood == "tension" and ahead.start_at > T0 + 1.0
    assert d.update(T0 + 1.0, set={"in_combat": True}) == [Pending("danger")]
    lib["danger"] = [loop_track("danger")]
    since = ahead.start_at
    assert d.tracks_changed(since + 1.0) == [] and d.reason == "dwell"
    assert d.next_wakeup() == pytest.approx(since + 2.5, abs=TOL)
    cue = only(d.tick(since + 2.5))
    assert (cue.mood, cue.previous) == ("danger", "tension")
    assert d.next_wakeup() is None


def test_pending_mood_no_longer_desired_is_not_cued():
    lib = full_library()
    del lib["combat"]
    d, _ = director(library=lib)
    d.start(T0)
    assert d.update(T0 + 1.0, set={"in_combat": True}) == [Pending("combat")]
    assert d.update(T0 + 2.0, set={"in_combat": False}) == []
    lib["combat"] = [loop_track("combat")]
    assert d.tracks_changed(T0 + 3.0) == [] and d.current.mood == "explore"
    # Wanted again later: pending is news again (it was cancelled in between).
    del lib["combat"]
    assert d.update(T0 + 4.0, set={"in_combat": True}) == [Pending("combat")]


def test_pending_first_mood():
    lib: dict[str, list[Track]] = {}
    d, _ = director(library=lib)
    assert d.start(T0) == [Pending("explore")]
    assert d.start(T0 + 1) == [] and d.tracks_changed(T0 + 2) == []
    lib["explore"] = [loop_track("explore")]
    cue = only(d.tracks_changed(T0 + 3))
    assert (cue.seq, cue.previous, cue.offset_s) == (1, None, 0.0)
    assert cue.start_at == pytest.approx(T0 + 3 + LEAD, abs=TOL)


def test_no_matching_rule_keeps_the_music():
    rules = (rule("combat", {"in_combat": True}), rule("explore", {"zone": "field"}))
    d, _ = director(rules=rules)
    assert d.start(T0) == [] and d.desired is None and d.current is None
    cue = only(d.update(T0 + 1, set={"zone": "field"}))
    assert cue.mood == "explore"
    assert d.update(T0 + 20, set={"zone": "cave"}) == [] and d.current.mood == "explore"


def test_events_play_stingers_on_the_grid_without_changing_the_mood():
    d, lib = director()
    assert d.event(T0, "boss_defeated").start_at == pytest.approx(
        T0 + LEAD, abs=TOL
    )  # nothing plays
    first = only(d.start(T0))
    sting = d.event(T0 + 3.0, "boss_defeated", {"boss": "wyrm"})
    assert isinstance(sting, Stinger)
    assert (sting.session, sting.name, sting.mood, sting.at) == (
        "room",
        "boss_defeated",
        "victory",
        "next_beat",
    )
    assert sting.start_at == pytest.approx(T0 + LEAD + 5 * 60.0 / 84, abs=TOL)
    bar = d.event(T0 + 3.0, "fanfare")
    assert bar.start_at == pytest.approx(T0 + LEAD + 2 * 4 * 60.0 / 84, abs=TOL)
    # Variants rotate: the three stingers alternate between the two takes.
    assert sting.track.variant != bar.track.variant
    assert d.current == first and d.seq == 1
    assert d.event(T0 + 3.0, "door") is None
    with pytest.raises(UnknownEvent) as err:
        d.event(T0 + 3.0, "dragon_slain")
    assert isinstance(err.value, KeyError) and str(err.value) == "unknown event 'dragon_slain'"
    del lib["victory"]
    assert d.event(T0 + 3.0, "boss_defeated") == Pending("victory")


def test_stinger_after_a_cue_ahead_lands_on_the_new_tracks_grid():
    d, _ = director(AT_END)
    d.start(T0)
    cue = only(d.update(T0 + 2.0, set={"in_combat": True}))  # combat at T0+0.2+3 beats
    sting = d.event(cue.start_at - 0.1, "fanfare")  # next bar of explore is after it
    # Bar 1 of the combat track, counted from its entry offset (beat 3).
    bar = 4 * 60.0 / 140
    assert sting.start_at == pytest.approx(cue.start_at + (bar - cue.offset_s), abs=TOL)


def test_variants_rotate_between_cues_of_a_mood():
    d, _ = director((tr("*", "*", at="now"),))
    d.start(T0)
    variants = []
    t = T0
    for _ in range(6):
        t += 5
        variants.append(only(d.update(t, set={"in_combat": True})).track.variant)
        t += 5
        d.update(t, set={"in_combat": False})
    assert all(a != b for a, b in itertools.pairwise(variants))
    assert set(variants) == {0, 1}


def test_bad_update_changes_nothing():
    d, _ = director()
    d.start(T0)
    d.update(T0 + 1, set={"zone": "keep"})
    with pytest.raises(StateError, match="unset: must be a list of strings"):
        d.update(T0 + 2, set={"in_combat": True}, unset="zone")
    assert d.state == {"zone": "keep"} and d.seq == 1 and d.desired == "explore"


def test_state_dotted_keys_reach_rules():
    d, _ = director((tr("*", "*", at="now"),))
    d.start(T0)
    d.update(T0 + 1, set={"in_combat": True, "player": {"health": 0.9, "name": "ada"}})
    cue = only(d.update(T0 + 2, set={"player.health": 0.2}))
    assert cue.mood == "danger" and d.state["player"] == {"health": 0.2, "name": "ada"}
    cue = only(d.update(T0 + 3, replace={"enemies_near": 1}))
    assert cue.mood == "tension" and d.state == {"enemies_near": 1}


def test_reachable_moods():
    d, _ = director()
    assert d.reachable_moods() == ["danger", "combat", "tension", "explore", "victory"]


# ---------------------------------------------------------------- properties

MOODS = list(BPM)
transition_rules = st.builds(
    tr,
    st.sampled_from([*MOODS, "*"]),
    st.sampled_from([*MOODS, "*"]),
    at=st.sampled_from(AT_VALUES),
    entry=st.sampled_from(["start", "same_position"]),
    min_dwell_s=st.sampled_from([0.0, 0.0, 2.5, 8.0]),
    debounce_ms=st.sampled_from([0, 0, 300, 1500, 4000]),
)
changes = st.fixed_dictionaries(
    {},
    optional={
        "in_combat": st.booleans(),
        "enemies_near": st.integers(0, 2),
        "player.health": st.sampled_from([0.1, 0.9]),
    },
)
steps = st.lists(
    st.tuples(
        st.one_of(st.sampled_from([0.0, 0.1, 0.25, 1.4, 1.6, 4.0, 9.0]), st.floats(0.0, 12.0)),
        st.one_of(changes, st.sampled_from(["store", "event"])),
        st.booleans(),  # run the timers that fall due in between (a punctual server)
    ),
    max_size=30,
)


class Log:
    """Everything the director said and every desire, in order, with server times."""

    def __init__(self) -> None:
        # (time, item) for items; (time, ("desire", mood)) for desires.
        self.entries: list[tuple[float, object]] = []

    def add(self, now: float, items) -> None:
        for item in items:
            self.entries.append((now, item))

    def desire(self, now: float, mood: str | None) -> None:
        self.entries.append((now, ("desire", mood)))

    def items(self) -> list[tuple[int, float, object]]:
        return [(i, at, e) for i, (at, e) in enumerate(self.entries) if not isinstance(e, tuple)]

    def desire_before(self, index: int) -> tuple[str | None, float]:
        """The desire in force at entry ``index`` and the time its run began."""
        current, since, seen = None, 0.0, False
        for at, entry in self.entries[:index]:
            if isinstance(entry, tuple) and (not seen or entry[1] != current):
                current, since, seen = entry[1], at, True
        return current, since

    def last_desire(self) -> str | None:
        return [e[1] for _, e in self.entries if isinstance(e, tuple)][-1]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    transitions=st.lists(transition_rules, max_size=6),
    bpms=st.fixed_dictionaries({m: st.sampled_from([60.0, 84.0, 97.3, 140.0]) for m in MOODS}),
    bars=st.sampled_from([1, 2, 4]),
    missing=st.sets(st.sampled_from(MOODS)),
    script=steps,
    lead=st.sampled_from([0.0, 0.2, 0.5]),
)
def test_director_state_machine(transitions, bpms, bars, missing, script, lead):
    stored = {m: [loop_track(m, 0, bpms[m], bars), loop_track(m, 1, bpms[m], bars)] for m in MOODS}
    stored["victory"] = [stinger_track()]
    lib = {m: tracks for m, tracks in stored.items() if m not in missing}
    score = make_score(transitions)
    table = TransitionTable(score.transitions)
    d = Director("s", score, lambda m: lib.get(m, []), lead_s=lead, seed=1)
    log = Log()
    t = T0
    items = d.start(t)
    log.desire(t, d.desired)
    log.add(t, items)

    def run_timers(until: float) -> None:
        nonlocal t
        for _ in range(1000):
            wake = d.next_wakeup()
            if wake is None or wake > until:
                return
            t = max(t, wake)
            log.add(t, d.tick(t))
        raise AssertionError("next_wakeup never settles")

    for dt, change, punctual in script:
        if punctual:
            run_timers(t + dt)
        t += dt
        if change == "store":
            lib.update(stored)
            log.add(t, d.tracks_changed(t))
        elif change == "event":
            log.add(t, [d.event(t, "boss_defeated")])
        else:
            items = d.update(t, set=change)
            log.desire(t, d.desired)
            log.add(t, items)

    # Inputs stop: store everything, then let time run on.
    lib.update(stored)
    log.add(t, d.tracks_changed(t))
    run_timers(float("inf"))
    t += 600.0
    assert d.tick(t) == [] and d.next_wakeup() is None
    final = desired_mood(score.rules, d.state)
    assert d.desired == final == log.last_desire()
    assert d.current.mood == final
    assert d.playing(t)[0] == final

    check_log(log, table, lead)


def check_log(
    log: Log, table: TransitionTable, lead: float, stingers: frozenset[str] = frozenset({"victory"})
) -> None:
    items = log.items()
    cues = [(i, at, c) for i, at, c in items if isinstance(c, Cue)]
    # Seqs grow by one from 1.
    assert [c.seq for _, _, c in cues] == list(range(1, len(cues) + 1))
    # A cue plays unless the next one came before its start_at ("latest wins").
    played = [
        n for n, (_, _, c) in enumerate(cues) if n + 1 == len(cues) or cues[n + 1][1] >= c.start_at
    ]
    since: dict[int, float] = {}  # a played cue -> when its mood began
    for n in played:
        cue = cues[n][2]
        earlier = [m for m in played if m < n]
        if cue.transition == CONTINUE and earlier:
            since[n] = since[earlier[-1]]
        else:
            since[n] = cue.start_at

    for n, (index, now, cue) in enumerate(cues):
        assert cue.start_at >= now - 1e-9
        playing = [m for m in played if m < n and cues[m][2].start_at <= now]
        p = cues[playing[-1]][2] if playing else None
        # `previous` is the mood actually playing when the cue was made.
        assert cue.previous == (p.mood if p else None)
        desire, desired_since = log.desire_before(index)
        assert cue.mood == desire
        if n == 0:
            assert cue.start_at == pytest.approx(now + lead, abs=TOL) and cue.offset_s == 0.0
            continue
        if cue.transition == CONTINUE:
            assert p is not None and cue.mood == p.mood and cue.track == p.track
            assert cue.start_at <= now + lead + TOL
            assert cue.offset_s == pytest.approx(
                position(Grid.from_track(p.track), p.start_at, p.offset_s, cue.start_at),
                abs=1e-5,
            )
            continue
        assert cue.start_at >= now + lead - TOL
        transition = table.lookup(p.mood if p else None, cue.mood)
        assert cue.transition == transition
        # Never during the playing mood's dwell; never before the desire's debounce.
        if p is not None:
            assert now >= since[playing[-1]] + transition.min_dwell_s - 1e-9
        assert now >= desired_since + transition.debounce_ms / 1000 - 1e-9

    # Stingers never change the mood; Pending is said once per run of a desire.
    said: dict[str, int] = {}
    for index, _at, item in items:
        if isinstance(item, Stinger):
            assert item.mood in stingers
        if not isinstance(item, Pending) or item.mood in stingers:
            continue
        desire, _ = log.desire_before(index)
        assert desire == item.mood
        if item.mood in said:
            between = [e for _, e in log.entries[said[item.mood] : index] if isinstance(e, tuple)]
            assert any(e[1] != item.mood for e in between), "pending said twice for one desire"
        said[item.mood] = index


@settings(max_examples=100, deadline=None)
@given(
    debounce_ms=st.integers(100, 5000),
    frac=st.floats(0.0, 0.99),
    ticks=st.lists(st.floats(0.0, 1.0), max_size=5),
    at=st.sampled_from(AT_VALUES),
)
def test_a_flip_back_within_debounce_never_cues(debounce_ms, frac, ticks, at):
    d, _ = director((tr("*", "*", at=at, debounce_ms=debounce_ms),))
    d.start(T0)
    t = T0 + 30.0
    flip = debounce_ms / 1000 * frac
    assert d.update(t, set={"in_combat": True}) == []
    for f in sorted(ticks):
        assert d.tick(t + flip * f) == []
    assert d.update(t + flip, set={"in_combat": False}) == []
    assert d.next_wakeup() is None
    assert d.tick(t + 100) == [] and d.seq == 1 and d.current.mood == "explore"


# ---------------------------------------------------------------- the example score

EXAMPLE_SCORE = Path(__file__).resolve().parent.parent / "adaptive_score.yaml"


def example_setup():
    from segue.core.score import load_score

    score = load_score(EXAMPLE_SCORE)
    keys = sorted({key for r in score.rules if r.when is not None for key in r.when.keys()})  # noqa: SIM118
    stored = {
        name: [
            Track(
                id=f"{name}-{v}",
                mood=name,
                variant=v,
                format="ogg",
                duration_s=mood.duration_s,
                bpm=mood.bpm,
                loop=not mood.stinger,
            )
            for v in range(mood.variants)
        ]
        for name, mood in score.moods.items()
    }
    return score, keys, stored


VALUES = st.sampled_from(
    [True, False, 0, 1, 3, 0.1, 0.2, 0.5, 0.9, "sneaking", "hidden", "village", "forest", "x"]
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), lead=st.sampled_from([0.0, 0.2]))
def test_example_score_state_machine(data, lead):
    # The real score and its rules (conditions and all), driven by random game states.
    score, keys, stored = example_setup()
    assert keys, "the example score has conditions"
    lib = dict(stored)
    d = Director("s", score, lambda m: lib.get(m, []), lead_s=lead, seed=3)
    table = TransitionTable(score.transitions)
    log = Log()
    t = T0
    items = d.start(t)
    log.desire(t, d.desired)
    log.add(t, items)
    for _ in range(data.draw(st.integers(0, 25))):
        t += data.draw(st.sampled_from([0.0, 0.3, 1.2, 2.5, 5.0, 12.0]))
        wake = d.next_wakeup()
        if wake is not None and wake <= t and data.draw(st.booleans()):
            log.add(t, d.tick(t))  # a late timer
        if data.draw(st.integers(0, 9)) == 0 and score.events:
            name = data.draw(st.sampled_from(sorted(score.events)))
            out = d.event(t, name)
            log.add(t, [] if out is None else [out])
            continue
        change = data.draw(st.dictionaries(st.sampled_from(keys), VALUES, max_size=3))
        unset = data.draw(st.lists(st.sampled_from(keys), max_size=1))
        items = d.update(t, set=change, unset=unset)
        log.desire(t, d.desired)
        log.add(t, items)
    for _ in range(100):
        wake = d.next_wakeup()
        if wake is None:
            break
        t = max(t, wake)
        log.add(t, d.tick(t))
    assert d.next_wakeup() is None
    final = desired_mood(score.rules, d.state)
    assert d.desired == final == log.last_desire()
    if final is not None:
        assert d.current.mood == final
        assert d.playing(t + 600)[0] == final
    stingers = frozenset(m for m, mood in score.moods.items() if mood.stinger)
    check_log(log, table, lead, stingers)


# ---------------------------------------------------------------- snapshots (shared rooms)


def test_a_restored_snapshot_decides_as_the_original_would():
    """A room taken over by another server goes on from the snapshot: same seq, same clock,
    the same debounce still running; then both directors make the same decisions."""
    import json

    d, lib = director()
    d.start(T0)
    d.update(T0 + 1, {"in_combat": True})
    combat = d.current
    d.update(T0 + 20, {"in_combat": False})  # explore: debounced 1.5 s, still waiting
    assert d.next_wakeup() is not None
    snap = json.loads(json.dumps(d.snapshot()))  # what Redis holds
    other = Director("room", make_score(), lambda m: lib.get(m, []), seed=99)
    other.restore(snap)
    assert other.snapshot() == d.snapshot()
    assert other.current == d.current and other.seq == d.seq == combat.seq
    assert other.next_wakeup() == d.next_wakeup()
    assert other.playing(T0 + 20.5) == d.playing(T0 + 20.5)
    due = d.next_wakeup()
    mine, theirs = only(d.tick(due)), only(other.tick(due))
    assert mine == theirs and mine.mood == "explore" and mine.seq == combat.seq + 1
    assert mine.start_at > due and mine.previous == "combat"


# ---------------------------------------------------------------- why: reason and until


def test_every_decision_says_why_and_until_when():
    d, _ = director()
    assert (d.reason, d.until) == ("no_rule", None)  # nothing decided yet
    d.start(T0)
    assert (d.reason, d.until) == ("cued", None)
    d.update(T0 + 1.0, set={"gold": 3})
    assert (d.reason, d.until) == ("same_mood", None)
    # (*, *) has min_dwell_s 8 from explore's start_at: tension waits for the dwell.
    assert d.update(T0 + 2.0, set={"enemies_near": 1}) == []
    assert (d.reason, d.until) == ("dwell", pytest.approx(T0 + LEAD + 8.0, abs=TOL))
    assert d.next_wakeup() == d.until
    only(d.tick(d.until))
    assert (d.reason, d.until) == ("cued", None)


def test_tracks_stored_while_nothing_waits_leave_the_decision_as_it_was():
    lib = full_library()
    del lib["combat"]
    d, _ = director(library=lib)
    d.start(T0)
    assert (d.reason, d.until) == ("cued", None)
    # Another mood's tracks arrive: no wait ran, so none ended (no ``same_mood``).
    lib["combat"] = [loop_track("combat")]
    assert d.tracks_changed(T0 + 1.0) == []
    assert (d.reason, d.until) == ("cued", None)
    # A state change is a decision: the desire is the mood cued, nothing to do.
    d.update(T0 + 2.0, set={"gold": 3})
    assert (d.reason, d.until) == ("same_mood", None)
    assert d.tracks_changed(T0 + 3.0) == [] and d.reason == "same_mood"


def test_debounce_is_the_reason_when_it_ends_later_than_the_dwell():
    d, _ = director()
    d.start(T0)
    only(d.update(T0 + 3.0, set={"in_combat": True}))  # into combat: no dwell, no debounce
    # (combat, explore): debounce 1.5 s, no dwell of its own (the rule is used whole).
    assert d.update(T0 + 20.0, set={"in_combat": False}) == []
    assert (d.reason, d.until) == ("debounce", pytest.approx(T0 + 21.5, abs=TOL))
    # The desire flips back inside the window: nothing to do any more.
    assert d.update(T0 + 20.5, set={"in_combat": True}) == []
    assert (d.reason, d.until) == ("same_mood", None)


def test_pending_and_no_rule_reasons():
    lib = full_library()
    del lib["combat"]
    d, _ = director(library=lib)
    d.start(T0)
    out = d.update(T0 + 3.0, set={"in_combat": True})
    assert [type(o) for o in out] == [Pending] and (d.reason, d.until) == ("pending", None)
    assert d.update(T0 + 3.5, set={"gold": 1}) == []  # said once; still the reason
    assert d.reason == "pending"
    lib["combat"] = [loop_track("combat")]
    only(d.tracks_changed(T0 + 4.0))
    assert d.reason == "cued"
    # Rules that match nothing: the music stays, and that is why.
    nothing = director(rules=(rule("combat", {"in_combat": True}),))[0]
    assert nothing.start(T0) == [] and (nothing.reason, nothing.until) == ("no_rule", None)
