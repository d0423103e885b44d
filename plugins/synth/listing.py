"""What a request plays, in words: the instruments of each part (``segue plan`` lists them)."""

from __future__ import annotations

from segue.plugins.synth.arrangement import Arrangement
from segue.plugins.synth.parts import EXTRA_PERCUSSION

# The parts in the order a listener names them, and what they are called.
ROLE_NAMES = {
    "melody": "tune",
    "counter": "counter-melody",
    "arp": "arpeggio",
    "harmony": "harmony",
    "bass": "bass",
    "drums": "drums",
}
# Voices whose registered name is not what a musician calls them.
VOICE_NAMES = {
    "arp": "synth arpeggio",
    "chip": "chiptune square",
    "chipbass": "chiptune bass",
    "epiano": "electric piano",
    "folkfiddle": "fiddle",
    "lead": "synth lead",
    "musicbox": "music box",
    "pad": "synth pad",
    "panflute": "pan flute",
    "pizz": "pizzicato strings",
    "pluckbass": "plucked bass",
    "steeldrum": "steel drum",
    "strings": "string section",
    "bass": "acoustic bass",
    "brass": "brass section",
    "synthbass": "synth bass",
}
# The drum kits (``palette``), by what a musician would call them.
KIT_NAMES = {
    "orchestral": "orchestral percussion",
    "frame": "frame drums",
    "kit": "drum kit",
    "four": "four-on-the-floor drum kit",
    "lofi": "lo-fi drum kit",
    "brush": "brushed drum kit",
    "soft": "soft percussion",
    "chip": "chiptune drums",
    "tension": "tension percussion",
    "march": "military drums",
}


def parts_played(arr: Arrangement) -> list[str]:
    """One entry per part that plays a note, e.g. ``"tune: fiddle"`` or
    ``"drums: frame drums, woodblock"`` (the kit, then percussion the prompt named)."""
    heard: dict[str, list[str]] = {role: [] for role in ROLE_NAMES}
    sounds = [p.voice.removeprefix("drum:") for p in arr.parts if p.notes and p.role == "drums"]
    if sounds:
        heard["drums"] = [KIT_NAMES.get(s.kit, s.kit) for s in arr.sections if s.kit]
        heard["drums"] += [s for s in sounds if s in EXTRA_PERCUSSION]
    for part in arr.parts:
        if part.notes and part.role != "drums":
            heard.setdefault(part.role, []).append(VOICE_NAMES.get(part.voice, part.voice))
    return [
        f"{ROLE_NAMES.get(role, role)}: {', '.join(dict.fromkeys(names))}"
        for role, names in heard.items()
        if names
    ]
