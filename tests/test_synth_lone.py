"""A lone player ("a lone cello", "a solo violin"): the soloist leads a thin
accompaniment, in four takes a listener tells apart, each heard at its tempo; an unaccompanied
one ("an unaccompanied trumpet", "clarinet alone", "a bassoon all by itself") plays alone.

A game developer asking for a lone cello expects mostly a cello. It was played over the calm
palette's acoustic bass (a held note every beat, 58 % of the energy in 60-250 Hz), a piano
arpeggio, string chords and a soft kit: the cello's tune, 25 notes in 60 s, 2-7 LU under the
loudest of them. Measured on the rendered stems and mix (``audio_measure``), with the
SoundFont the generator finds.
"""

from __future__ import annotations

import itertools

import audio_measure as am
import numpy as np
import pytest

from segue.core.request import GenerationRequest
from segue.plugins.synth.render import render_request_stems
from segue.plugins.synth.soundfont import find_soundfont

SR = 44100


def assert_four_takes_apart(name: str, takes: dict[int, tuple]) -> None:
    """Every pair of ``takes`` (variant -> arrangement, mix) apart in rhythm: onsets per
    sixteenth and folded per bar correlate <= 0.8."""
    for a, b in itertools.combinations(range(4), 2):
        bpm = takes[a][0].bpm
        x, y = takes[a][1], takes[b][1]
        steps = am.strength_correlation(x, y, SR, bpm, 4)
        bars = am.bar_onset_correlation(x, y, SR, bpm, 4)
        assert max(steps, bars) <= 0.8, f"{name} {a}-{b}: {steps:.2f}/{bars:.2f}"


STEMS = ("drums", "bass", "harmony", "arp", "melody", "counter")
# (prompt, the player, request fields): bowed players, 60-100 BPM and free tempo.
# ("An oboe alone in the cloister" plays alone now: ``UNACCOMPANIED``.)
LONE = {
    "cello": ("A lone cello by the hermit's fire, mournful", "cello", {}),
    "violin": ("A solo violin in the dusty attic, bittersweet", "violin", {"bpm": 72.0}),
}


@pytest.mark.timeout(900)  # four 30 s takes with their stems, on a loaded machine
@pytest.mark.parametrize("name", sorted(LONE))
def test_a_lone_player_leads_a_thin_accompaniment_in_four_takes_apart(name: str) -> None:
    prompt, player, fields = LONE[name]
    takes = {}
    for variant in range(4):
        request = GenerationRequest(
            mood="m", variant=variant, prompt=prompt, duration_s=30.0, layers=STEMS, **fields
        )
        arr, mix, stems = render_request_stems(request, SR, find_soundfont(), keep_voices=False)
        where = f"{name} v{variant}"
        # No kit, no bass line, no arpeggio, no counter-line: the tune and one soft part.
        roles = {p.role for p in arr.parts if p.notes}
        assert roles == {"melody", "harmony"}, (where, sorted(roles))
        tune = [p for p in arr.parts if p.role == "melody" and p.notes]
        assert [p.voice for p in tune] == [player], (where, [p.voice for p in tune])
        # A line, not a few long notes: two notes a bar at least.
        assert len(tune[0].notes) >= 2 * arr.bars, (where, len(tune[0].notes), arr.bars)
        # The soloist 3 LU over every other part at least.
        whole = am.loudness_lufs(mix, SR)
        level = {k: am.loudness_lufs(x, SR) - whole for k, x in stems.items() if np.any(x)}
        others = [v for k, v in level.items() if k != "melody"]
        assert level["melody"] - max(others) >= 3.0, (where, level)
        # Its attacks and the accompaniment's keep the pulse: a beat tracker hears the tempo.
        # (Not held on the half-time take: the cello's at 62 BPM, its tune's and its
        # accompaniment's pickups into the bar, is read at 4/3 of it; without them its
        # straight and half-time takes folded alike, "a lone clarinet"'s 0.84 per bar.)
        x = mix.astype(np.float64)
        if variant != 1:
            tracked = am.beat_tracker_tempo(x, SR)
            assert abs(tracked - arr.bpm) / arr.bpm <= 0.03, (where, arr.bpm, tracked)
        takes[variant] = (arr, x)
    assert_four_takes_apart(name, takes)


# Unaccompanied: the player alone ("an unaccompanied cello" had pizzicato chords under it,
# "an unaccompanied trumpet" a harp), a wind's, a bowed and a brass player's tune.
UNACCOMPANIED = {
    "oboe": ("An unaccompanied oboe in the cloister, tender and slow", "oboe"),
    "oboe alone": ("An oboe alone in the cloister, tender and slow", "oboe"),
    "viola": ("An unaccompanied viola in the empty chapel, searching", "viola"),
    "trumpet": ("An unaccompanied trumpet at the city gate, distant", "trumpet"),
}


@pytest.mark.timeout(900)  # four 30 s takes, on a loaded machine
@pytest.mark.parametrize("name", sorted(UNACCOMPANIED))
def test_an_unaccompanied_player_plays_alone_in_four_takes_apart(name: str) -> None:
    from segue.plugins.synth.render import render_request

    prompt, player = UNACCOMPANIED[name]
    takes = {}
    for variant in range(4):
        request = GenerationRequest(mood="m", variant=variant, prompt=prompt, duration_s=30.0)
        arr, mix = render_request(request, SR, find_soundfont())
        where = f"{name} v{variant}"
        played = {(p.role, p.voice) for p in arr.parts if p.notes}
        assert played == {("melody", player)}, (where, sorted(played))
        tune = next(p for p in arr.parts if p.notes)
        assert len(tune.notes) >= 2 * arr.bars, (where, len(tune.notes), arr.bars)
        takes[variant] = (arr, mix.astype(np.float64))
    assert_four_takes_apart(name, takes)


# Other words that leave a player by itself, as "unaccompanied" does ("a bassoon all by
# itself" had a harp, string chords, a cello's bass and frame drums under it; "clarinet
# alone" a harp's chords): the player alone. "A lone X" and "a solo X" keep their thin
# accompaniment, a mallet player (as a harpist) its own chords.
ALONE_WORDINGS = [
    ("A bassoon all by itself in the clockmaker's loft", {("melody", "bassoon")}),
    ("Clarinet alone under the bridge at night, rain", {("melody", "clarinet")}),
    # (a mallet player over its own chords, "solo" or "lone": "a solo marimba" had a harp's)
    ("A solo marimba on the veranda, bright", {("melody", "marimba"), ("harmony", "marimba")}),
    ("The oboe on its own in the reading room", {("melody", "oboe")}),
    ("Just a cello in the empty concert hall", {("melody", "cello")}),
    ("Flute by itself at the edge of the glacier", {("melody", "flute")}),
    ("Trumpet, all alone over the sleeping fort", {("melody", "trumpet")}),
    ("A violin, no accompaniment, in the snowed-in lodge", {("melody", "violin")}),
]


@pytest.mark.parametrize(("prompt", "played"), ALONE_WORDINGS)
def test_a_player_by_itself_in_other_words_plays_alone(prompt: str, played: set) -> None:
    from segue.plugins.synth.composer import compose

    for variant in (0, 3):
        arr = compose(GenerationRequest(mood="m", variant=variant, prompt=prompt, duration_s=16.0))
        assert {(p.role, p.voice) for p in arr.parts if p.notes} == played, (prompt, variant)


# A solo beside an accompaniment is no lone player: the accompaniment wins ("a guitar solo
# over the band", "violin solo with orchestra" was a violin over pizzicato alone).
@pytest.mark.parametrize(
    ("prompt", "player"),
    [
        ("Violin solo with orchestra, heroic and soaring", "violin"),
        ("A flute solo over the whole ensemble, festive", "flute"),
        ("Trumpet solo backed by a rhythm section, late night", "trumpet"),
    ],
)
def test_a_solo_over_an_accompaniment_is_not_alone(prompt: str, player: str) -> None:
    from segue.plugins.synth.composer import compose

    arr = compose(GenerationRequest(mood="m", variant=0, prompt=prompt, duration_s=16.0))
    roles = {p.role for p in arr.parts if p.notes}
    tune = {p.voice for p in arr.parts if p.role == "melody" and p.notes}
    assert tune == {player} and {"bass", "harmony"} <= roles, (prompt, sorted(roles), tune)


def test_an_unaccompanied_harpist_or_guitarist_plays_its_own_chords_alone() -> None:
    from segue.plugins.synth.composer import compose

    for prompt, player in (
        ("An unaccompanied guitar by the open window", "guitar"),
        ("An unaccompanied harp in the tower room", "harp"),
    ):
        arr = compose(GenerationRequest(mood="m", variant=0, prompt=prompt, duration_s=16.0))
        assert {p.voice for p in arr.parts if p.notes} == {player}, prompt


# One player named by its number ("a single harp", "a solitary bassoon", "one clarinet",
# "the sole trumpet", "a lonely cello"): a lone player, as "lone" (its thin accompaniment).
# "A single harp in the moonlit cloister" was the calm palette's band, the acoustic bass
# its loudest part (-1.9 LU), the harp's tune -8 LU under the mix.
# (prompt, the player, its accompaniment)
ONE_PLAYER = [
    ("A single oboe over the flooded meadow, pale morning", "oboe", "harp"),
    ("A solitary trumpet on the fortress tower, dusk", "trumpet", "harp"),
    ("One cello in the shuttered ballroom, grieving", "cello", "pizz"),
    ("The sole clarinet in the sleeping station", "clarinet", "harp"),
    ("A lonely violin by the frozen canal", "violin", "pizz"),
    ("A single weary guitar on the night ferry", "guitar", "guitar"),
    ("A solitary harp among the ruined columns", "harp", "harp"),
]


@pytest.mark.parametrize(("prompt", "player", "under"), ONE_PLAYER)
def test_one_player_named_by_its_number_is_a_lone_player(
    prompt: str, player: str, under: str
) -> None:
    from segue.plugins.synth.composer import compose

    for variant in (0, 3):
        arr = compose(GenerationRequest(mood="m", variant=variant, prompt=prompt, duration_s=16.0))
        played = {(p.role, p.voice) for p in arr.parts if p.notes}
        assert played == {("melody", player), ("harmony", under)}, (prompt, variant, played)


# Not one player: several ("violins", "one harp and one flute"), or no instrument after the
# word ("a single candle by the piano", "a lonely waltz at the old piano").
@pytest.mark.parametrize(
    "prompt",
    [
        "A single candle flickers by the piano in the parlour",
        "A lonely waltz at the old piano, rain outside",
        "A single row of violins in the rain",
        "One harp and one flute in the orchard",
    ],
)
def test_a_number_word_without_one_player_is_no_lone_player(prompt: str) -> None:
    from segue.plugins.synth.composer import compose

    arr = compose(GenerationRequest(mood="m", variant=0, prompt=prompt, duration_s=16.0))
    roles = {p.role for p in arr.parts if p.notes}
    assert {"bass", "harmony"} <= roles or "counter" in roles, (prompt, sorted(roles))


# A wind's or a brass player's harp is thin: every other part together 6 LU under the
# player at least (a solitary bassoon's and a lone trumpet's harp was 3.8-5.9 LU under
# them, FluidR3, 20 s: a band rather than an accompaniment), and its attacks still keep the
# pulse (a beat tracker hears the tempo; not held on the half-time take, as above).
THIN = {
    "bassoon": ("A lone bassoon in the dim clockworks, 72 BPM", "bassoon"),
    "trumpet": ("A lone trumpet over the shuttered mill town", "trumpet"),
}


@pytest.mark.timeout(900)  # four 30 s takes with their stems, on a loaded machine
@pytest.mark.parametrize("name", sorted(THIN))
def test_a_lone_wind_or_brass_players_harp_is_thin(name: str) -> None:
    prompt, player = THIN[name]
    for variant in range(4):
        request = GenerationRequest(
            mood="m", variant=variant, prompt=prompt, duration_s=30.0, layers=STEMS
        )
        arr, mix, stems = render_request_stems(request, SR, find_soundfont(), keep_voices=False)
        where = f"{name} v{variant}"
        assert {(p.role, p.voice) for p in arr.parts if p.notes} == {
            ("melody", player),
            ("harmony", "harp"),
        }, where
        rest = sum(x for k, x in stems.items() if k != "melody")
        under = am.loudness_lufs(stems["melody"], SR) - am.loudness_lufs(rest, SR)
        assert under >= 6.0, (where, under)
        if variant != 1:
            tracked = am.beat_tracker_tempo(mix.astype(np.float64), SR)
            assert abs(tracked - arr.bpm) / arr.bpm <= 0.03, (where, arr.bpm, tracked)
