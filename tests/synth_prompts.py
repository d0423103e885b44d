"""The prompts the synth's mix and variants are measured on, by the tests and by
``benchmarks/synth_mix.py`` alike: action, calm, folk under a score-wide orchestral style,
electronic, and a jig, a waltz and a lullaby (6/8, 3/4, 6/8); and a composition plan's
section as the tests write their plans."""

from __future__ import annotations

PROMPTS = {
    "action": "Driving orchestral battle music with taiko drums and brass stabs",
    "calm": "Calm peaceful ambient pads and bells",
    "folk": "Village square with fiddle and flute, cheerful and lively, epic orchestral",
    "electronic": "Synthwave night drive with arpeggios",
    "jig": "A lively celtic jig with fiddle and tin whistle",
    "waltz": "Gentle waltz",
    "lullaby": "A gentle lullaby with music box",
}


def plan_section(name: str, styles: list[str], seconds: float) -> dict:
    """A composition plan's section named ``name``, in ``styles``, ``seconds`` long."""
    return {
        "section_name": name,
        "positive_local_styles": styles,
        "negative_local_styles": [],
        "duration_ms": int(seconds * 1000),
        "lines": [],
    }
