"""The director: one session's musical decisions, as a pure state machine.

No I/O, no clock of its own: every call gets ``now`` (server unix seconds). The server
owns the timers: after each call it asks ``next_wakeup()`` and calls ``tick(now)`` then.

Vocabulary:

- the *playing* cue: the latest cue whose ``start_at`` has come;
- the cue *ahead*: a cue whose ``start_at`` has not come yet (at most one: a newer cue
  replaces it at once, "latest wins");
- the *destination*: the mood of the latest cue (the one ahead, else the one playing);
- the *target*: a desired mood that differs from the destination and waits for its
  debounce or for the playing mood's minimum dwell.

Decisions, on every call (``update``, ``tick``, ``tracks_changed``):

1. The rules give the desired mood. ``None`` (no rule matches): keep the music.
2. Nothing cued yet: cue it at once (``now + lead_s``, offset 0, ``previous`` None, the
   ``(None, mood)`` transition); silence does not wait for debounce or dwell.
3. Desired == destination: nothing to do; a target still waiting is dropped silently
   (a desire that flipped back inside its debounce never produces a cue).
4. A cue to another mood is ahead and the desire returns to the mood playing: a
   *continuation* cue is issued at once, cancelling the change: same mood as
   ``previous``, the same track, ``start_at = min(now + lead_s, the cancelled cue's
   start_at)``, ``offset_s`` = the track's position then, transition ``at: now,
   entry: same_position, fade: none, fade_ms: 0``. A client that follows it literally
   hears no change. No debounce or dwell applies: the mood is not left. It does not
   restart the mood's dwell.
5. Otherwise the desire is a target, its ``since`` set when it became the target. The
   transition is looked up from the mood playing (None when only the first cue is
   ahead) to the target. It is cued once ``now >= max(since + debounce_ms, the playing
   mood's start + min_dwell_s)``, where the playing mood's start is the ``start_at`` of
   the cue that began it (continuations do not count). A change of desire meanwhile
   replaces the target and restarts its debounce ("latest wins").
6. A cue leaving the playing track starts at ``schedule()`` of that track for the
   transition's ``at`` with the lead, and enters at ``entry_offset()`` of its position
   then; a cue ahead is replaced by it (new seq, ``previous`` = the mood playing). When
   nothing plays yet (only the first cue is ahead) it starts at ``now + lead_s``.
   With ``exit: outro`` and a playing track that has an outro (``outro_region``), that
   boundary is instead when the track jumps to its outro (the cue's ``exit.at``); the
   new cue starts as the outro ends (``fade_ms`` earlier, at most the outro's length,
   for ``fade`` ``cross``/``in``) from offset 0. Once the jump is within the lead the
   mood is left: no continuation (rule 4); any new cue takes the place of the one it
   replaces (the same ``start_at`` and ``exit``).
7. A desired mood with no stored track gives ``Pending(mood)`` once, when its cue would
   be issued, and the music stays; ``tracks_changed(now)`` cues it when tracks arrive
   (if still desired), or once its debounce and dwell have passed (from the mood then
   playing). Pending is said again only after the desire changed.

After every decision ``reason`` says what it was, and ``until`` when the wait ends
(server time; None where no time applies): ``cued`` (a cue was issued, or a
continuation), ``same_mood`` (the desired mood is the destination: nothing to do),
``debounce`` / ``dwell`` (a target waits for its debounce, or for the playing mood's
minimum dwell, whichever ends later: that one is the reason), ``pending`` (the desired
mood has no stored track yet), ``no_rule`` (no rule matches: the music stays).

Variants rotate per mood without immediate repeats (``VariantPicker``). Events play
their stinger mood's track (rotated) on top of the music at the event's ``at`` boundary
of the playing track — of the cue ahead if that boundary falls after its start — or at
``now + lead_s`` with nothing playing; they never change the mood. A stinger with no
stored track gives ``Pending``; it is not replayed later (a late one-shot is no use).

Intensity and layers (when the score has ``intensity``): the state key's value is
followed by an ``IntensityPath`` (slewed, see ``segue.core.engine.intensity``). A change
of it starts at ``now + lead_s`` or at the playing track's next beat or bar (the score's
``intensity.at``) and gives ``Layers`` ramps for the moods heard (the one playing and the
destination) that have layers. Every cue of a layered mood is followed by the ramps of
its mood from its ``start_at``. Ducks (``duck``, ``end_duck``) start after the lead;
the latest one is remembered for late joiners until its release is over.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, fields
from typing import Any

from segue.core.cue import Cue, Duck, Exit, Layers, Pending, Stinger
from segue.core.engine.clock import EPS, Grid, entry_offset, position, schedule
from segue.core.engine.intensity import IntensityPath, read_intensity
from segue.core.engine.rules import ruleset_for
from segue.core.engine.state import StateLimits, StateUsage, apply_state, measure
from segue.core.engine.transitions import outro_region
from segue.core.engine.variants import VariantPicker
from segue.core.score import Duck as DuckSpec
from segue.core.score import Score, Transition
from segue.core.track import Track

TrackSource = Callable[[str], Sequence[Track]]
"""The stored tracks of a mood (its variants); empty while none is stored."""

CONTINUE = Transition(at="now", entry="same_position", fade="none", fade_ms=0)
"""The transition of a continuation cue (see rule 4 above)."""

# Director.reason after a decision (see the module docstring).
CUED = "cued"
SAME_MOOD = "same_mood"
DEBOUNCE = "debounce"
DWELL = "dwell"
PENDING = "pending"
NO_RULE = "no_rule"
REASONS = (CUED, SAME_MOOD, DEBOUNCE, DWELL, PENDING, NO_RULE)


class UnknownEvent(KeyError):
    """An event name the score does not define."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name

    def __str__(self) -> str:
        return f"unknown event {self.name!r}"


class _Entry:
    """A cue the director issued, with what it needs to keep deciding about it."""

    __slots__ = ("cue", "grid", "since")

    def __init__(self, cue: Cue, since: float, grid: Grid) -> None:
        self.cue = cue
        self.since = since  # when its mood began playing: min_dwell_s counts from here
        self.grid = grid


# A score's few transitions as dicts, by identity (checked), for snapshots: asdict()
# deep-copies, on every change of a shared room.
_TRANSITION_DICTS: dict[int, tuple[Any, dict[str, Any]]] = {}


def _transition_dict(transition: Any) -> dict[str, Any]:
    hit = _TRANSITION_DICTS.get(id(transition))
    if hit is not None and hit[0] is transition:
        return hit[1]
    if len(_TRANSITION_DICTS) >= 4096:
        _TRANSITION_DICTS.clear()
    d = asdict(transition)
    _TRANSITION_DICTS[id(transition)] = (transition, d)
    return d


def _entry_dict(entry: _Entry | None) -> dict[str, Any] | None:
    if entry is None:
        return None
    cue = entry.cue
    return {
        "seq": cue.seq,
        "session": cue.session,
        "mood": cue.mood,
        "previous": cue.previous,
        "track": cue.track.wire_dict(),
        "transition": _transition_dict(cue.transition),
        "start_at": cue.start_at,
        "offset_s": cue.offset_s,
        "since": entry.since,
        "exit": asdict(cue.exit) if cue.exit is not None else None,
    }


def _path_dict(path: IntensityPath | None) -> dict[str, float] | None:
    return {"t0": path.t0, "v0": path.v0, "v1": path.v1} if path is not None else None


def _entry_from(d: Mapping[str, Any] | None, *known: _Entry | None) -> _Entry | None:
    """The entry ``d`` describes; one of ``known`` (this director's) when it is the same
    cue: a follower restores every change of a shared room, mostly the same cues."""
    if d is None:
        return None
    for entry in known:
        if entry is not None:
            cue = entry.cue
            if (
                cue.seq == d["seq"]
                and cue.start_at == d["start_at"]
                and cue.offset_s == d["offset_s"]
                and cue.track.id == d["track"]["id"]
                and cue.track.url == d["track"].get("url")
                and cue.mood == d["mood"]
                and cue.session == d["session"]
            ):
                since = float(d["since"])
                return entry if entry.since == since else _Entry(cue, since, entry.grid)
    track = Track.from_dict(d["track"])
    url = d["track"].get("url", "")
    if url and url != track.url:  # served from a CDN or a presigned URL
        track = track.replace(public_url=url)
    cue = Cue(
        int(d["seq"]),
        d["session"],
        d["mood"],
        d["previous"],
        track,
        Transition(**d["transition"]),
        float(d["start_at"]),
        float(d["offset_s"]),
        Exit(**d["exit"]) if d.get("exit") else None,
    )
    return _Entry(cue, float(d["since"]), Grid.of(track))


_CUE_FIELDS = (
    "seq",
    "session",
    "mood",
    "previous",
    "track",
    "transition",
    "start_at",
    "offset_s",
    "exit",
)
# A Cue is a frozen dataclass: its __init__ sets each field through object.__setattr__,
# which costs more than the rest of a cue decision. The director builds its cues with
# values it has already checked, straight into the instance's __dict__ (the same
# object __init__ would make; tests/test_rules_director.py compares them).
_FAST_CUE = (
    tuple(f.name for f in fields(Cue)) == _CUE_FIELDS
    and "__slots__" not in Cue.__dict__
    and "__post_init__" not in Cue.__dict__
)
_new = object.__new__


def make_cue(
    seq: int,
    session: str,
    mood: str,
    previous: str | None,
    track: Track,
    transition: Transition,
    start_at: float,
    offset_s: float,
    exit: Exit | None = None,
) -> Cue:
    """``Cue(...)`` for the hot path (see ``_FAST_CUE``)."""
    if not _FAST_CUE:
        return Cue(seq, session, mood, previous, track, transition, start_at, offset_s, exit)
    cue = _new(Cue)
    d = cue.__dict__
    d["seq"] = seq
    d["session"] = session
    d["mood"] = mood
    d["previous"] = previous
    d["track"] = track
    d["transition"] = transition
    d["start_at"] = start_at
    d["offset_s"] = offset_s
    d["exit"] = exit
    return cue


class Director:
    """One session's musical decisions (see the module docstring).

    What does not vary between sessions of a score (sorted rules compiled to closures,
    the transition table, reachable moods) lives in the score's shared ``Ruleset``.
    """

    # One per session, thousands per server: no per-instance __dict__.
    __slots__ = (
        "_ahead",
        "_decide",
        "_duck",
        "_intensity",
        "_limits",
        "_pending_said",
        "_picker",
        "_playing",
        "_ruleset",
        "_table",
        "_target",
        "_target_since",
        "_tracks",
        "_usage",
        "desired",
        "lead_s",
        "reason",
        "score",
        "seq",
        "session",
        "state",
        "until",
    )

    def __init__(
        self,
        session: str,
        score: Score,
        tracks: TrackSource,
        *,
        lead_s: float = 0.2,
        seed: int | str | None = None,
    ) -> None:
        self.session = session
        self.score = score
        self.lead_s = lead_s
        self._tracks = tracks
        ruleset = self._ruleset = ruleset_for(score)
        self._decide = ruleset.decide
        self._table = ruleset.transitions
        self._picker = VariantPicker(seed)
        self.state: dict[str, Any] = {}
        # What the state may hold (the score's server options) and holds (kept up to date
        # from each change, so checking costs the change's size, not the state's).
        self._limits = StateLimits.of(getattr(score, "server", None))
        self._usage = StateUsage(0, 2)
        self.desired: str | None = None
        self.seq = 0
        self._playing: _Entry | None = None
        self._ahead: _Entry | None = None
        self._target: str | None = None
        self._target_since = 0.0
        self._pending_said: str | None = None
        self._intensity: IntensityPath | None = None
        self._duck: Duck | None = None
        self.reason: str = NO_RULE  # of the latest decision (see the module docstring)
        self.until: float | None = None  # when the wait it names ends, if it has an end

    # ------------------------------------------------------------------ views

    @property
    def current(self) -> Cue | None:
        """The latest cue; its ``start_at`` may still be ahead."""
        latest = self._ahead or self._playing
        return latest.cue if latest else None

    def playing_cue(self, now: float) -> Cue | None:
        """The cue whose music is heard at ``now`` (its ``start_at`` has come), if any.

        It differs from ``current`` while a newer cue is still ahead; a late joiner needs
        both.
        """
        self._settle(now)
        return self._playing.cue if self._playing else None

    def playing(self, now: float) -> tuple[str, Track, float] | None:
        """The mood and track playing at ``now`` and its position (track seconds)."""
        self._settle(now)
        entry = self._playing
        if entry is None:
            return None
        cue = entry.cue
        return cue.mood, cue.track, position(entry.grid, cue.start_at, cue.offset_s, now)

    def reachable_moods(self) -> list[str]:
        """Every mood some rule can select, then every event's stinger mood."""
        return list(self._ruleset.reachable)

    def next_wakeup(self) -> float | None:
        """When ``tick()`` must run next (server time), or None while nothing waits."""
        # A target waiting for tracks has no timer (``tracks_changed`` decides it again);
        # one that waits for its debounce or dwell has, even once Pending was said: a cue
        # ahead that starts meanwhile can put a dwell between the tracks and the cue.
        if self._target is None or self.reason == PENDING:
            return None
        due = self._due(self._transition_to(self._target))
        if self._ahead is not None:
            # The cue ahead starting changes the mood the target leaves, hence its
            # transition, debounce and dwell: look again then.
            return min(due, self._ahead.cue.start_at)
        return due

    # -------------------------------------------------------------- snapshots

    def snapshot(self) -> dict[str, Any]:
        """Everything this director decides from, as JSON-able data.

        A room shared by several servers keeps it in Redis: the server that takes the room
        over ``restore``s it and goes on (same ``seq``, same clock, the same pending
        debounce or dwell, which ``next_wakeup`` computes from it).
        """
        return {
            "state": self.state,
            "desired": self.desired,
            "seq": self.seq,
            "playing": _entry_dict(self._playing),
            "ahead": _entry_dict(self._ahead),
            "target": self._target,
            "target_since": self._target_since,
            "pending_said": self._pending_said,
            "last_variants": dict(self._picker.last),
            "intensity": _path_dict(self._intensity),
            "duck": asdict(self._duck) if self._duck is not None else None,
            # The latest decision: other servers with clients in the room tell it to them.
            "reason": self.reason,
            "until": self.until,
        }

    def restore(self, snap: Mapping[str, Any]) -> None:
        """Become the director ``snapshot()`` described (KeyError/TypeError if malformed)."""
        self.state = dict(snap["state"])
        self._usage = measure(self.state)
        self.desired = snap["desired"]
        self.seq = int(snap["seq"])
        known = (self._playing, self._ahead)
        self._playing = _entry_from(snap["playing"], *known)
        self._ahead = _entry_from(snap["ahead"], *known)
        self._target = snap["target"]
        self._target_since = float(snap["target_since"])
        self._pending_said = snap["pending_said"]
        self._picker.last.update(snap.get("last_variants") or {})
        path = snap.get("intensity")
        spec = self.score.intensity
        if path is not None and spec is not None:
            self._intensity = intensity = IntensityPath(path["v0"], spec.slew_per_s, path["t0"])
            intensity.v1 = path["v1"]
        duck = snap.get("duck")
        self._duck = Duck(**duck) if duck is not None else None
        self.reason = snap.get("reason") or NO_RULE
        until = snap.get("until")
        self.until = float(until) if until is not None else None

    # ---------------------------------------------------------------- inputs

    def start(self, now: float) -> list[Cue | Pending | Layers]:
        """The first decision, for the state as it is (empty for a new session)."""
        self._set_desired(self._decide(self.state))
        spec = self.score.intensity
        if spec is not None:
            value = read_intensity(self.state, spec.key)
            self._intensity = IntensityPath(value, spec.slew_per_s, now)
        return self._layered(self._evaluate(now))

    def check_update(
        self,
        set: Mapping[str, Any] | None = None,  # the protocol's name (shadows set())
        unset: Any = None,
        replace: Mapping[str, Any] | None = None,
    ) -> None:
        """Raise the StateError ``update`` would, changing nothing."""
        usage = StateUsage(self._usage.keys, self._usage.bytes)
        apply_state(self.state, set, unset, replace, limits=self._limits, usage=usage)

    def update(
        self,
        now: float,
        set: Mapping[str, Any] | None = None,  # the protocol's name (shadows set())
        unset: Any = None,
        replace: Mapping[str, Any] | None = None,
    ) -> list[Cue | Pending]:
        """Apply a state change (StateError, and no change, for a bad one) and decide."""
        self.state = state = apply_state(
            self.state, set, unset, replace, limits=self._limits, usage=self._usage
        )
        mood = self._decide(state)
        if mood != self.desired:
            self._pending_said = None
            self.desired = mood
        if self._intensity is None:
            return self._evaluate(now)
        return self._follow_intensity(now)

    def tick(self, now: float) -> list[Cue | Pending | Layers]:
        """Timers (debounce, dwell) that fell due by ``now``."""
        return self._layered(self._evaluate(now))

    def tracks_changed(self, now: float) -> list[Cue | Pending | Layers]:
        """New tracks were stored: a mood that was pending may be cued now.

        Only a wait for tracks is decided again: with no pending mood, stored tracks
        change nothing, so the latest decision and its reason stay (a ``cued`` does not
        turn into ``same_mood``, which says a wait ended, with no wait and no change).
        """
        if self._pending_said is None:
            return []
        return self._layered(self._evaluate(now))

    def intensity(self, now: float) -> float | None:
        """The slewed intensity at ``now`` (None when the score has no ``intensity``)."""
        path = self._intensity
        return path.value(now) if path is not None else None

    def layers_now(self, now: float) -> list[Layers]:
        """What a joining client needs: the ramps of the moods heard, from ``now`` on."""
        path = self._intensity
        if path is None:
            return []
        self._settle(now)
        out: list[Layers] = []
        for entry in (self._playing, self._ahead):
            if entry is not None:
                layers = self.score.moods[entry.cue.mood].layers
                if layers:
                    since = max(now, entry.cue.start_at)
                    out += path.ramps(self.session, entry.cue.mood, layers, since)
        return out

    def duck(self, now: float, spec: DuckSpec, event: str | None = None) -> Duck:
        """Start a duck after the lead; it ends by itself after ``hold_s`` if given."""
        start_at = now + self.lead_s
        end_at = None
        if spec.hold_s is not None:
            end_at = start_at + spec.attack_ms / 1000.0 + spec.hold_s
        self._duck = Duck(
            self.session,
            spec.depth_db,
            spec.attack_ms,
            spec.release_ms,
            start_at,
            end_at,
            event,
        )
        return self._duck

    def end_duck(self, now: float) -> Duck | None:
        """End the duck under way after the lead; None when none is (or it already ends)."""
        duck = self._duck
        end_at = now + self.lead_s
        if duck is None or (duck.end_at is not None and duck.end_at <= end_at):
            return None
        self._duck = Duck(
            self.session,
            duck.depth_db,
            duck.attack_ms,
            duck.release_ms,
            duck.start_at,
            max(end_at, duck.start_at),
            duck.event,
        )
        return self._duck

    def duck_now(self, now: float) -> Duck | None:
        """The duck a joining client must apply: one whose release is not over."""
        duck = self._duck
        if duck is None:
            return None
        if duck.end_at is not None and duck.end_at + duck.release_ms / 1000.0 <= now:
            self._duck = None
            return None
        return duck

    def event(self, now: float, name: str, data: Any = None) -> Stinger | Pending | None:
        """A game event: its stinger, Pending if the stinger has no track, or None.

        ``data`` is the client's payload; it does not change the music (the server
        passes it on to plugins). Raises UnknownEvent for a name the score lacks.
        """
        spec = self.score.events.get(name)
        if spec is None:
            raise UnknownEvent(name)
        if spec.stinger is None:
            return None
        tracks = self._tracks(spec.stinger)
        if not tracks:
            return Pending(spec.stinger)
        track = self._choose(spec.stinger, tracks)
        self._settle(now)
        if self._playing is None:
            start_at = now + self.lead_s
        else:
            start_at = self._schedule_on(self._playing, now, spec.at)
        ahead = self._ahead
        if ahead is not None and start_at >= ahead.cue.start_at - EPS:
            # By then the cue ahead plays: land on its grid instead.
            start_at = self._schedule_on(ahead, now, spec.at)
        return Stinger(
            session=self.session,
            name=name,
            mood=spec.stinger,
            track=track,
            at=spec.at,
            start_at=start_at,
        )

    # -------------------------------------------------------------- machinery

    def _follow_intensity(self, now: float) -> list[Cue | Pending | Layers]:
        """Decide after a state change when the score has ``intensity``."""
        spec = self.score.intensity
        path = self._intensity
        assert spec is not None and path is not None
        target = read_intensity(self.state, spec.key)
        since = None
        if target != path.target:
            self._settle(now)
            playing = self._playing
            if spec.at == "now" or playing is None:
                since = now + self.lead_s
            else:
                since = self._schedule_on(playing, now, spec.at)
            path.retarget(since, target)
        outputs: list[Cue | Pending | Layers] = self._layered(self._evaluate(now))
        if since is not None:
            cued = {out.mood for out in outputs if type(out) is Cue}
            heard = []
            for entry in (self._playing, self._ahead):
                if entry is not None and entry.cue.mood not in cued:
                    heard.append(entry.cue.mood)
            for mood in dict.fromkeys(heard):
                layers = self.score.moods[mood].layers
                if layers:
                    outputs += path.ramps(self.session, mood, layers, since, initial=False)
        return outputs

    def _layered(self, outputs: list[Cue | Pending]) -> list[Cue | Pending | Layers]:
        """``outputs`` with each layered mood's cue followed by its ramps."""
        path = self._intensity
        if path is None or not outputs:
            return outputs  # type: ignore[return-value]
        out: list[Cue | Pending | Layers] = []
        for item in outputs:
            out.append(item)
            if type(item) is Cue:
                layers = self.score.moods[item.mood].layers
                if layers:
                    out += path.ramps(self.session, item.mood, layers, item.start_at)
        return out

    def _set_desired(self, mood: str | None) -> None:
        if mood != self.desired:
            self._pending_said = None
        self.desired = mood

    def _settle(self, now: float) -> None:
        ahead = self._ahead
        if ahead is not None and ahead.cue.start_at <= now:
            self._playing, self._ahead = ahead, None

    def _transition_to(self, mood: str) -> Transition:
        playing = self._playing
        return self._table.lookup(playing.cue.mood if playing else None, mood)

    def _due(self, transition: Transition) -> float:
        due = self._target_since + transition.debounce_ms / 1000.0
        if self._playing is not None:
            due = max(due, self._playing.since + transition.min_dwell_s)
        return due

    def _schedule_on(self, entry: _Entry, now: float, at: str) -> float:
        cue = entry.cue
        return schedule(entry.grid, cue.start_at, cue.offset_s, now, at, self.lead_s)

    def _evaluate(self, now: float) -> list[Cue | Pending]:
        # _settle, inlined: this runs for every state message.
        ahead = self._ahead
        playing = self._playing
        if ahead is not None and ahead.cue.start_at <= now:
            self._playing = playing = ahead
            self._ahead = ahead = None
        want = self.desired
        if want is None:
            self._target = None
            self.reason, self.until = NO_RULE, None
            return []
        latest = ahead or playing
        if latest is None:
            self._target = None
            return self._cue(now, want, self._table.lookup(None, want))
        if want == latest.cue.mood:
            self._target = None
            self.reason, self.until = SAME_MOOD, None
            return []
        if (
            ahead is not None
            and playing is not None
            and want == playing.cue.mood
            and not self._outro_committed(now)
        ):
            self._target = None
            self.reason, self.until = CUED, None
            return [self._continue(now, playing, ahead)]
        if want != self._target:
            self._target, self._target_since = want, now
        transition = self._table.lookup(playing.cue.mood if playing else None, want)
        due = self._target_since + transition.debounce_ms / 1000.0
        reason = DEBOUNCE
        if playing is not None:
            dwell_end = playing.since + transition.min_dwell_s
            if dwell_end > due:
                due, reason = dwell_end, DWELL
        if due > now:
            self.reason, self.until = reason, due
            return []
        return self._cue(now, want, transition)

    def _cue(self, now: float, mood: str, transition: Transition) -> list[Cue | Pending]:
        tracks = self._tracks(mood)
        if not tracks:
            self.reason, self.until = PENDING, None
            if self._pending_said == mood:
                return []
            # The target (if any) stays, with no wakeup of its own: tracks_changed.
            self._pending_said = mood
            return [Pending(mood)]
        if type(tracks) is tuple and len(tracks) == 1:
            # One take (the usual case): what _choose would pick, without the calls.
            track = tracks[0]
            self._picker.last[mood] = track.variant
        else:
            track = self._choose(mood, tracks)
        grid = Grid.of(track)
        playing = self._playing
        leave: Exit | None = None
        ahead = self._ahead
        if ahead is not None and self._outro_committed(now):
            # The track left is in its outro (or jumps to it sooner than a client could
            # be told otherwise): the new cue takes the place of the one it replaces.
            start_at, offset, previous = ahead.cue.start_at, 0.0, ahead.cue.previous
            leave = ahead.cue.exit
        elif playing is None:
            start_at, offset, previous = now + self.lead_s, 0.0, None
        else:
            old = playing.cue
            if transition.at == "now":  # schedule()'s answer for it, without the call
                start_at = now + self.lead_s
            else:
                start_at = self._schedule_on(playing, now, transition.at)
            if transition.entry == "start":  # entry_offset()'s answer for it
                offset = 0.0
            else:
                where = position(playing.grid, old.start_at, old.offset_s, start_at)
                offset = entry_offset(transition.entry, playing.grid, where, grid)
            previous = old.mood
            if transition.exit == "outro":
                leave = _outro_exit(old, transition, start_at)
                if leave is not None:
                    start_at, offset = _after_outro(leave, transition), 0.0
        self.seq = seq = self.seq + 1
        if _FAST_CUE:  # make_cue, inlined: this runs for every cue
            cue = _new(Cue)
            d = cue.__dict__
            d["seq"] = seq
            d["session"] = self.session
            d["mood"] = mood
            d["previous"] = previous
            d["track"] = track
            d["transition"] = transition
            d["start_at"] = start_at
            d["offset_s"] = offset
            d["exit"] = leave
        else:
            cue = Cue(seq, self.session, mood, previous, track, transition, start_at, offset, leave)
        self._ahead = _Entry(cue, start_at, grid)
        self._target = None
        self._pending_said = None
        self.reason, self.until = CUED, None
        return [cue]

    def _outro_committed(self, now: float) -> bool:
        """The cue ahead plays the outro of the track left, and its jump is too close (within
        the lead) or past to take back: the mood is left, whatever comes next."""
        ahead = self._ahead
        leave = ahead.cue.exit if ahead is not None else None
        return leave is not None and leave.at <= now + self.lead_s

    def _continue(self, now: float, playing: _Entry, ahead: _Entry) -> Cue:
        old = playing.cue
        start_at = min(now + self.lead_s, ahead.cue.start_at)
        self.seq = seq = self.seq + 1
        cue = make_cue(
            seq,
            self.session,
            old.mood,
            old.mood,
            old.track,
            CONTINUE,
            start_at,
            position(playing.grid, old.start_at, old.offset_s, start_at),
        )
        self._ahead = _Entry(cue, playing.since, playing.grid)
        return cue

    def _choose(self, mood: str, tracks: Sequence[Track]) -> Track:
        by_variant, variants = self._ruleset.variants(mood, tracks)
        return by_variant[self._picker.pick(mood, variants)]


def _outro_exit(old: Cue, transition: Transition, jump_at: float) -> Exit | None:
    """The outro ``old``'s track plays from ``jump_at`` (``exit: outro``); None if it has
    none (the transition then fades as ``fade`` says)."""
    region = outro_region(old.track)
    if region is None:
        return None
    return Exit(old.mood, old.track.id, jump_at, region[0], region[1])


def _after_outro(leave: Exit, transition: Transition) -> float:
    """When the new track starts: as the outro ends, or ``fade_ms`` before that (at most
    the outro's length) when it fades in under the outro (``fade: cross`` or ``in``)."""
    length = leave.outro_end_s - leave.outro_start_s
    overlap = transition.fade_ms / 1000.0 if transition.fade in ("cross", "in") else 0.0
    return leave.at + length - min(overlap, length)
