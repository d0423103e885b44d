"""Stingers: one-shot phrases (fanfare, lament, alarm, chime) that end in a natural decay."""

from __future__ import annotations

from random import Random

from segue.core.request import GenerationRequest
from segue.plugins.synth.arrangement import Arrangement, Note, Part, Section
from segue.plugins.synth.composer import global_words, request_seed, resolve_key, resolve_tempo
from segue.plugins.synth.drums import DRUM_GAIN
from segue.plugins.synth.harmony import chord, close_voicing, nearest, pitches_in
from segue.plugins.synth.instruments import VOICES
from segue.plugins.synth.palette import choose_voices
from segue.plugins.synth.words import MODES, traits_of

# (beat, length, scale degree index (0 = tonic, 7 = octave), velocity); chords: (beat, numeral)
SHAPES = {
    "fanfare": (
        [
            (0, 1 / 3, 4, 0.8),
            (1 / 3, 1 / 3, 4, 0.7),
            (2 / 3, 1 / 3, 4, 0.75),
            (1, 1, 7, 1.0),
            (2, 0.5, 9, 0.85),
            (2.5, 0.5, 11, 0.85),
            (3, 3, 14, 1.0),
        ],
        [(0, "V"), (1, "I"), (2, "IV"), (3, "I")],
        3.0,
    ),
    "lament": (
        [(0, 1, 4, 0.8), (1, 1, 3, 0.75), (2, 1, 2, 0.75), (3, 1, 1, 0.7), (4, 3, 0, 0.8)],
        [(0, "iv"), (2, "V"), (4, "i")],
        4.0,
    ),
    "alarm": (
        [
            (0, 0.5, 0, 1.0),
            (0.5, 0.5, 1, 0.9),
            (1, 0.5, 0, 1.0),
            (1.5, 0.5, 1, 0.9),
            (2, 2.5, 0, 1.0),
        ],
        [(0, "i"), (1, "bII"), (2, "i")],
        2.0,
    ),
    "chime": (
        [
            (0, 0.5, 0, 0.8),
            (0.5, 0.5, 2, 0.8),
            (1, 0.5, 4, 0.85),
            (1.5, 0.5, 7, 0.9),
            (2, 3, 9, 0.9),
        ],
        [(0, "I"), (2, "I")],
        2.0,
    ),
}


def _shape(t_valence: float, energy: float, tension: float) -> str:
    if tension >= 0.6 and t_valence < 0.2:
        return "alarm"
    if t_valence >= 0.3 and energy >= 0.5:
        return "fanfare"
    if t_valence <= -0.3:
        return "lament"
    return "chime"


def compose_stinger(request: GenerationRequest) -> Arrangement:
    base_seed = request_seed(request, with_variant=False)
    seed = request_seed(request, with_variant=True)
    rng = Random(seed)
    words = global_words(request)
    traits = traits_of(words)
    bpm = resolve_tempo(request, words, traits)
    key = resolve_key(request, traits, base_seed)
    beat_s = 60.0 / bpm
    length_s = float(request.duration_s)
    shape = _shape(traits.valence, traits.energy, traits.tension)
    notes, chords, final = SHAPES[shape]
    # Squeeze the phrase so the last chord lands by 40% of the stinger, leaving a decay tail.
    scale_t = min(1.0, max(0.25, 0.4 * length_s / beat_s / final))
    hold_end = 0.75 * length_s / beat_s  # the last chord is released by 75% of the length
    roles, kit = choose_voices(traits)
    lead = roles.get("melody") or "brass"
    if shape == "fanfare" and "brass" not in traits.avoided and not traits.instruments:
        lead = "brass"
    if shape == "chime" and not traits.instruments:
        lead = "bells"
    harmony = roles.get("harmony") or ("strings" if "strings" not in traits.avoided else "pad")
    bass = roles.get("bass") or "cello"
    scale = list(MODES[key.mode])
    if key.minor and shape == "lament":
        scale = list(MODES["harmonic minor"])
    v = VOICES[lead]
    base = nearest(pitches_in([key.tonic], v.low, v.low + 11), v.low + 4)
    transpose = rng.choice([0, 0, 12]) if v.high - base > 26 else 0
    mel = Part(
        lead,
        "melody",
        pan=0.1,
        gain=VOICES[lead].gain * 0.9,
        send=VOICES[lead].send * (0.5 + traits.space),
    )
    for beat, length, deg, vel in notes:
        octave, idx = divmod(deg, 7)
        pitch = base + transpose + 12 * octave + scale[idx]
        t = beat * scale_t
        d = length * scale_t if beat < final else max(0.5, hold_end - t)
        mel.notes.append(Note(t, d, pitch, vel, traits.brightness))
    har = Part(
        harmony,
        "harmony",
        gain=VOICES[harmony].gain * 0.6,
        send=VOICES[harmony].send * (0.5 + traits.space),
    )
    low = Part(bass, "bass", gain=VOICES[bass].gain * 0.8, send=0.1)
    prev = None
    for i, (beat, numeral) in enumerate(chords):
        if numeral not in {"V", "bII"}:
            numeral = numeral.lower() if key.minor else numeral.upper()
        ch = chord(numeral)
        t = beat * scale_t
        end = chords[i + 1][0] * scale_t if i + 1 < len(chords) else hold_end
        pcs = ch.pcs(key.tonic)
        chord_notes = close_voicing(pcs, 52, 74, prev, 4)
        prev = chord_notes
        for p in chord_notes:
            har.notes.append(Note(t, max(0.25, end - t), p, 0.6, traits.brightness))
        bv = VOICES[bass]
        root = nearest(pitches_in([(key.tonic + ch.root) % 12], bv.low, bv.low + 11), bv.low + 5)
        low.notes.append(Note(t, max(0.25, end - t), root, 0.8, traits.brightness))
    parts = [mel, har, low]
    if kit and traits.percussion > 0.3:
        hit = (
            "taiko"
            if kit in {"orchestral", "tension"}
            else "kick"
            if kit in {"kit", "four", "lofi"}
            else "frame_lo"
        )
        final_t = final * scale_t
        for name, vel in ((hit, 1.0), ("crash", 0.8)):
            if name == "crash" and shape in {"lament", "alarm"}:
                continue
            p = Part("drum:" + name, "drums", gain=DRUM_GAIN[name] * 0.85)
            p.notes.append(Note(final_t, 0.25, 0, vel, traits.brightness))
            if shape == "alarm" and name == hit:
                for k in range(4):
                    p.notes.append(Note(k * 0.5 * scale_t, 0.25, 0, 0.8, traits.brightness))
            parts.append(p)
    section = Section("stinger", 0, 1, traits, traits.energy, "A", roles=roles, kit=kit)
    return Arrangement(
        bpm=bpm,
        beats_per_bar=4 if "waltz" not in traits.flags else 3,
        key=key,
        bars=1,
        loop=False,
        length_beats=length_s / beat_s,
        sections=[section],
        parts=parts,
        space=max(0.35, traits.space),
        brightness=traits.brightness,
        seed=seed,
        length_s=length_s,
    )
