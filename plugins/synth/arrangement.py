"""The arrangement: what the composer writes and the renderer plays (notes, parts, sections).

Time is counted in beats from the track's start.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from segue.plugins.synth.words import Key, Traits


@dataclass
class Note:
    t: float  # start, beats from the track start
    d: float  # length, beats
    p: float  # MIDI pitch (drums: ignored, or a timpani pitch)
    v: float  # velocity 0..1
    b: float = 0.5  # brightness 0..1


@dataclass
class Part:
    voice: str  # a VOICES name, or "drum:<sound>"
    role: str
    notes: list[Note] = field(default_factory=list)
    gain: float = 1.0
    pan: float = 0.0
    send: float = 0.3
    echo: float = 0.0


@dataclass
class Section:
    name: str
    start_bar: int
    bars: int
    traits: Traits
    energy: float
    label: str  # sections sharing a label share motifs
    build: bool = False
    roles: dict[str, str | None] = field(default_factory=dict)
    kit: str | None = None
    # A composition plan's peak (a climax, a finale, a tutti: its section words raise the
    # energy): its drums weigh more against the orchestra (``composer.PEAK_DRUMS``).
    peak: bool = False


@dataclass
class Arrangement:
    bpm: float
    beats_per_bar: int
    key: Key
    bars: int
    loop: bool
    length_beats: float  # loop length (loops) or the whole file (stingers)
    sections: list[Section]
    parts: list[Part]
    space: float
    brightness: float
    lofi: bool = False
    swing: float = 0.0
    seed: int = 0
    length_s: float | None = None  # stingers: exact file length
    humanise: bool = True  # notes lean a few milliseconds off the grid, as players do
    meter: str = "4/4"  # the time signature ("6/8": two dotted-quarter beats a bar)
    # An action mood's sampled drums on the orchestral kit or frame drums are levelled to
    # the numpy drums the mix was set on (``Sampled.drum``; ``composer.LEVELLED_KITS``);
    # other moods keep the SoundFont's own levels, their figures' (a slow half-time take's
    # shaker 5.7 dB up was heard as the beat, at twice the tempo).
    level_drums: bool = False
