"""Synthesised drums (one cached sample per sound) and the kits' bar patterns.

Every sound is made from sines with pitch sweeps and FFT-filtered noise; a render makes each
once and adds it at every hit. Patterns are written on a grid of sixteenth notes (4 steps per
beat) and put the strongest hits on the beats, so the tempo is obvious from the onsets.
"""

from __future__ import annotations

import numpy as np

# A compound meter slower than this is rocked (see ``parts.ROCKED_BPM``, the same figure).
ROCKED_BPM = 90.0
# A rocked 12/8's flowing take's high skin on each beat, and its driving take's on the
# skip (``compound_pattern``).
ROCKED_FLOW_SKIN = 1.0
ROCKED_SKIP_SKIN = 0.95
# 3/4's flowing take below the first tempo hesitates (1, the and of 2, 3), above the
# second leads into each beat by a sixteenth (``parts.FLOWING_WALTZ_SLOW_BPM``,
# ``parts.FLOWING_WALTZ_FAST_BPM``, the same figures): the drums with it.
SLOW_FLOW_BPM = 100.0
FAST_FLOW_BPM = 140.0


def _band(x: np.ndarray, sr: int, lo: float, hi: float) -> np.ndarray:
    """Band-pass by FFT mask with soft (one-pole-like) skirts."""
    n = len(x)
    spec = np.fft.rfft(x)
    f = np.fft.rfftfreq(n, 1.0 / sr)
    mask = np.ones_like(f)
    if lo > 0:
        mask *= 1.0 / (1.0 + (lo / np.maximum(f, 1.0)) ** 4)
    if hi < sr / 2:
        mask *= 1.0 / (1.0 + (f / hi) ** 4)
    return np.fft.irfft(spec * mask, n)


def _sweep(sr: int, n: int, f_end: float, f_start: float, tau: float) -> np.ndarray:
    t = np.arange(n) / sr
    freq = f_end + (f_start - f_end) * np.exp(-t / tau)
    return np.sin(2 * np.pi * np.cumsum(freq) / sr)


def _env(sr: int, n: int, decay: float, attack: float = 0.001) -> np.ndarray:
    t = np.arange(n) / sr
    return np.minimum(1.0, t / attack) * np.exp(-t / decay)


def make_sound(name: str, sr: int, bright: float, seed: int, pitch_hz: float = 0.0) -> np.ndarray:
    """The sample of drum ``name`` (mono float32, peak about 1).

    Drums with a pitch (kick, snare body, taiko, frame drum, timpani) are tuned to
    ``pitch_hz`` when given: untuned drums would paint stray notes into the key.
    """
    rng = np.random.default_rng(seed)
    b = 0.4 + 0.6 * bright  # noise brightness factor

    def noise(n: int) -> np.ndarray:
        return rng.standard_normal(n)

    if name == "kick":
        n = int(0.5 * sr)
        x = _sweep(sr, n, pitch_hz or 48, 150, 0.035) * _env(sr, n, 0.26)
        click = _band(noise(n), sr, 1500, 6000 * b) * _env(sr, n, 0.004) * 0.4
        x = x + click
    elif name == "snare":
        n = int(0.35 * sr)
        tone = _sweep(sr, n, pitch_hz or 180, 240, 0.02) * _env(sr, n, 0.06)
        x = 0.6 * tone + _band(noise(n), sr, 900, 9000 * b) * _env(sr, n, 0.13) * 1.4
    elif name == "clap":
        n = int(0.35 * sr)
        burst = np.zeros(n)
        for k in range(3):
            s = int(k * 0.011 * sr)
            burst[s:] += _env(sr, n - s, 0.008 if k < 2 else 0.11)
        x = _band(noise(n), sr, 900, 4000 * b) * burst
    elif name in {"hat", "ohat"}:
        n = int((0.08 if name == "hat" else 0.45) * sr)
        x = _band(noise(n), sr, 6500 * (0.6 + 0.4 * b), 16000) * _env(
            sr, n, 0.03 if name == "hat" else 0.2
        )
    elif name == "shaker":
        n = int(0.1 * sr)
        x = _band(noise(n), sr, 3500, 11000 * b) * _env(sr, n, 0.035, 0.01)
    elif name in {"taiko", "taiko_hi"}:
        hi = name == "taiko_hi"
        n = int((0.5 if hi else 1.1) * sr)
        body = _sweep(sr, n, pitch_hz or (125 if hi else 62), 190 if hi else 100, 0.06)
        # A struck skin: a short boom under a loud slap (a long sine would be heard as a
        # note, not a hit).
        x = body * _env(sr, n, 0.12 if hi else 0.2)
        x = x + _band(noise(n), sr, 80, 4000 + 3000 * b) * _env(sr, n, 0.035) * 2.5
    elif name == "bassdrum":
        # A marching bass drum under a felt mallet: a short low boom (the strong beats'
        # weight) under the mallet's thud, no rock kick's click. (A boom ringing 0.16 s
        # was a low note to librosa's HPSS: the march's drums more harmonic than
        # percussive.)
        n = int(0.5 * sr)
        x = _sweep(sr, n, pitch_hz or 55, 110, 0.03) * _env(sr, n, 0.08)
        x = x + _band(noise(n), sr, 60, 2000 + 1000 * b) * _env(sr, n, 0.025) * 1.8
    elif name == "fieldsnare":
        # A military field drum: tight wires under a stick, a crisp crack and a short
        # buzz (the drum kit's snare rings twice as long and sounds its shell's note:
        # in a march's running taps, half of it was harmonic to librosa's HPSS).
        n = int(0.3 * sr)
        tone = _sweep(sr, n, pitch_hz or 190, 260, 0.015) * _env(sr, n, 0.035)
        x = 0.35 * tone + _band(noise(n), sr, 1200, 10000 * b) * _env(sr, n, 0.07) * 1.4
    elif name == "timp":
        n = int(1.6 * sr)
        t = np.arange(n) / sr
        x = (
            np.sin(2 * np.pi * pitch_hz * t)
            + 0.5 * np.sin(2 * np.pi * pitch_hz * 1.5 * t)
            + 0.3 * np.sin(2 * np.pi * pitch_hz * 2.0 * t)
        ) * _env(sr, n, 0.7, 0.003)
        x = x + _band(noise(n), sr, 80, 1500) * _env(sr, n, 0.03) * 0.6
    elif name == "crash":
        n = int(2.6 * sr)
        x = _band(noise(n), sr, 3000, 15000 * b) * _env(sr, n, 0.9, 0.002)
    elif name == "rim":
        n = int(0.08 * sr)
        t = np.arange(n) / sr
        x = (np.sin(2 * np.pi * 1700 * t) + 0.5 * np.sin(2 * np.pi * 2600 * t)) * _env(sr, n, 0.012)
    elif name in {"frame_lo", "frame_hi"}:
        # A hand on a skin: a short boom under the skin's slap (a boom ringing 0.18 s was
        # heard as a low note: a folk mood's frame drums were more harmonic than percussive,
        # by librosa's HPSS, and its mix's percussive energy 12-14 dB under its harmonic).
        hi = name == "frame_hi"
        n = int(0.4 * sr)
        x = _sweep(sr, n, pitch_hz or (210 if hi else 85), 300 if hi else 130, 0.02) * _env(
            sr, n, 0.04 if hi else 0.07
        )
        x = x + _band(noise(n), sr, 2000 if hi else 200, 9000 * b if hi else 3000 * b) * _env(
            sr, n, 0.06 if hi else 0.03
        ) * (1.4 if hi else 1.5)
    elif name == "tambourine":
        n = int(0.25 * sr)
        jingle = 1.0 + 0.6 * np.sin(2 * np.pi * 38 * np.arange(n) / sr)
        x = _band(noise(n), sr, 5000, 15000) * _env(sr, n, 0.09, 0.002) * jingle
    elif name == "sleighbells":
        # A shake of a strap of small bells: a few jingles a few ms apart, each a ring of
        # high partials, no skin.
        n = int(0.22 * sr)
        t = np.arange(n) / sr
        x = np.zeros(n)
        for k, (f, at) in enumerate(((5200, 0.0), (6900, 0.006), (8300, 0.013), (6100, 0.021))):
            on = t >= at
            ring = np.sin(2 * np.pi * f * (t - at) + k) * np.exp(-(t - at) / 0.05)
            x += np.where(on, ring, 0.0) * (1.0 - 0.15 * k)
        x = 0.6 * x + 0.5 * _band(noise(n), sr, 4500, 14000) * _env(sr, n, 0.04, 0.002)
    elif name == "woodblock":
        n = int(0.12 * sr)
        t = np.arange(n) / sr
        f = pitch_hz or 900.0
        x = (np.sin(2 * np.pi * f * t) + 0.4 * np.sin(2 * np.pi * 2.7 * f * t)) * _env(sr, n, 0.025)
    elif name == "anvil":
        n = int(1.2 * sr)
        t = np.arange(n) / sr
        x = sum(
            a * np.sin(2 * np.pi * f * t) * np.exp(-t / d)
            for f, a, d in (
                (1180, 1.0, 0.5),
                (2870, 0.7, 0.35),
                (4410, 0.5, 0.25),
                (6120, 0.3, 0.18),
            )
        )
        x = x + _band(noise(n), sr, 2000, 12000) * _env(sr, n, 0.01) * 0.8
    elif name in {"conga", "bongo"}:
        # A hand on a skin: a short tone that falls a little, over a slap.
        hi = name == "bongo"
        n = int((0.25 if hi else 0.4) * sr)
        x = _sweep(sr, n, pitch_hz or (380 if hi else 210), 460 if hi else 260, 0.015)
        x = x * _env(sr, n, 0.07 if hi else 0.14)
        x = x + _band(noise(n), sr, 1500, 7000 * b) * _env(sr, n, 0.012) * 0.6
    elif name == "castanets":
        n = int(0.06 * sr)
        clack = _env(sr, n, 0.006)
        clack[int(0.012 * sr) :] += _env(sr, n - int(0.012 * sr), 0.006) * 0.7
        x = _band(noise(n), sr, 1800, 7000 * b) * clack
    elif name in {"triangle", "cowbell"}:
        n = int((1.2 if name == "triangle" else 0.3) * sr)
        t = np.arange(n) / sr
        partials = ((4200, 1.0), (6900, 0.5), (9700, 0.3))
        if name == "cowbell":
            partials = ((540, 1.0), (800, 0.8), (1620, 0.3))
        decay = 0.5 if name == "triangle" else 0.09
        x = sum(a * np.sin(2 * np.pi * f * t) for f, a in partials) * _env(sr, n, decay)
    elif name == "brush":
        n = int(0.3 * sr)
        x = _band(noise(n), sr, 1500, 7000 * b) * _env(sr, n, 0.09, 0.012)
    elif name == "chip_kick":
        n = int(0.15 * sr)
        x = np.sign(_sweep(sr, n, pitch_hz or 50, 220, 0.02)) * _env(sr, n, 0.05)
    elif name in {"chip_snare", "chip_hat"}:
        hold = 3 if name == "chip_snare" else 1
        n = int((0.15 if name == "chip_snare" else 0.05) * sr)
        x = np.repeat(np.sign(noise(n // hold + 1)), hold)[:n] * _env(
            sr, n, 0.06 if name == "chip_snare" else 0.015
        )
    else:
        raise ValueError(f"unknown drum {name!r}")
    # Every hit starts from zero and ends at zero: no clicks.
    a = max(2, int(0.0007 * sr))
    x[:a] *= np.linspace(0.0, 1.0, a)
    r = max(2, int(0.01 * sr))
    x[-r:] *= np.linspace(1.0, 0.0, r)
    peak = np.max(np.abs(x))
    return (x / peak).astype(np.float32) if peak > 0 else x.astype(np.float32)


# Where each pitched drum sits: (MIDI low, high, semitones above the tonic).
DRUM_TUNING = {
    "kick": (28, 39, 0),
    "chip_kick": (31, 42, 0),
    "snare": (52, 63, 7),
    "taiko": (33, 44, 0),
    "bassdrum": (31, 42, 0),
    "fieldsnare": (52, 63, 7),
    "taiko_hi": (45, 56, 7),
    "frame_lo": (40, 51, 0),
    "frame_hi": (52, 63, 7),
    "timp": (40, 52, 0),
}
# Hand drums whose pitch follows the bass's root (a player's hand on the skin): tuned to
# the tonic alone, a frame drum sounded the tonic on every beat of every take, the strongest
# pitch of a constant-Q chroma wherever the harmony moved (variants of a jig 62-95 % alike).
FOLLOW_THE_BASS = frozenset({"frame_lo", "frame_hi"})
# So does a four-on-the-floor kit's kick, as a producer tunes the kick to the bass line: on
# the tonic alone, the kick (the loudest low sound, on every beat of every take) held a
# constant-Q chroma's strongest pitch on the tonic on most beats (a judged foundry techno's
# takes 79-85 % alike, a warehouse techno's 64-86 %, whatever their progressions).
KICK_FOLLOWS_THE_BASS = frozenset({"four"})

# Loudness of each sound in the mix (before the kit's level).
DRUM_GAIN = {
    "kick": 1.0,
    "snare": 0.6,
    "clap": 0.5,
    "hat": 0.22,
    "ohat": 0.18,
    "shaker": 0.35,
    "taiko": 1.0,
    "bassdrum": 0.9,
    "fieldsnare": 0.6,
    "taiko_hi": 0.6,
    "timp": 0.55,
    "crash": 0.22,
    "rim": 0.3,
    "frame_lo": 0.8,
    "frame_hi": 0.4,
    "brush": 0.35,
    "chip_kick": 0.45,
    "chip_snare": 0.3,
    "chip_hat": 0.15,
    "tambourine": 0.3,
    "sleighbells": 0.3,
    "woodblock": 0.35,
    "anvil": 0.2,
    "conga": 0.45,
    "bongo": 0.35,
    "castanets": 0.3,
    "triangle": 0.15,
    "cowbell": 0.2,
}
DRUM_PAN = {
    "conga": -0.35,
    "bongo": 0.35,
    "castanets": 0.3,
    "triangle": 0.4,
    "cowbell": -0.25,
    "tambourine": -0.3,
    "sleighbells": 0.3,
    "woodblock": 0.35,
    "anvil": 0.2,
    "hat": 0.25,
    "ohat": 0.25,
    "shaker": -0.3,
    "taiko_hi": -0.25,
    "rim": 0.3,
    "frame_hi": 0.3,
    "chip_hat": 0.2,
    "crash": -0.2,
    "brush": 0.2,
}
DRUM_SEND = {
    "kick": 0.08,
    "bassdrum": 0.1,
    "fieldsnare": 0.12,
    "taiko": 0.35,
    "taiko_hi": 0.3,
    "timp": 0.4,
    "crash": 0.35,
    "snare": 0.25,
    "clap": 0.3,
}


def compound_pattern(
    kit: str,
    bpb: int,
    energy: float,
    fill: bool,
    first: bool,
    variant_bits: int,
    feel: str = "straight",
    hemiola: bool = False,
    bpm: float = 120.0,
) -> list[tuple[float, str, float]]:
    """One bar of a compound meter (6/8, 12/8) as (eighth step, sound, velocity): a low
    drum on every beat, the high one on the beat's last eighth (leaning into the next
    beat), a backbeat on beat two.

    Broad (``feel`` halftime): the low drum on the bar's first beat (and the third of
    12/8), the other beats light, and in ``hemiola`` bars a hemiola on the high drum.
    Driving: the low drum on every beat, the high one on each beat's middle eighth.
    Flowing: the low drum on every beat, the high one light on each beat's two eighths
    and a sixteenth pickup into the next (rocked: the pickup alone)."""
    steps = bpb * 3
    low = {"orchestral": "taiko", "tension": "taiko", "chip": "chip_kick", "march": "bassdrum"}.get(
        kit, "kick"
    )
    if kit in {"frame", "soft"}:
        low = "frame_lo"
    high = {
        "orchestral": "shaker",
        "frame": "frame_hi",
        "soft": "frame_hi",  # a cradle's rock: a soft skin on the lilt's eighth
        "tension": "rim",
        "chip": "chip_hat",
        "brush": "brush",
        "march": "fieldsnare",
    }.get(kit, "hat")
    out: list[tuple[float, str, float]] = []
    accent = {
        "orchestral": "taiko_hi",
        "tension": "taiko_hi",
        "frame": "frame_hi",
        "soft": "frame_hi",
        "chip": "chip_snare",
        "brush": "brush",
        "march": "fieldsnare",
    }.get(kit, "rim")
    # The low drum's other beats; rocked, lighter (as firm, with the bass's lilt or skip
    # into them, the lullaby's second beat was heard as "one").
    other = 0.6 if bpm < ROCKED_BPM else 0.8
    if bpm < ROCKED_BPM and feel in {"halftime", "flowing"}:
        # Rocked (``parts.ROCKED_BPM``: a lullaby's 6/8): the low drum on the beats alone,
        # the downbeat firmest (the pitched parts rock between them; the broad and flowing
        # takes' hemiola on a skin was heard as the beat, at 3/2 of the tempo).
        out += [(s, low, 1.0 if s == 0 else 0.7) for s in range(0, steps, 3)]
        if feel == "flowing" and steps == 12:
            # A 12/8's flowing take: the high skin on each beat, under the arpeggio's
            # eighths and its pickup (``parts.ROCKED_TWELVE_FLOW``). (On the pickup, firm,
            # with the arpeggio's, it made the take a beat in two; light on the beat, or
            # none, its eighths were heard in pairs, at 3/2 of the tempo.)
            out += [(s, accent, ROCKED_FLOW_SKIN) for s in range(0, steps, 3)]
        else:
            # The high skin on the take's rocking sixteenth (steps are eighths): after each
            # beat (broad), or leading into it (flowing).
            after = 0.5 if feel == "halftime" else 2.5
            out += [(s + after, accent, 1.0) for s in range(0, steps, 3)]
    elif feel == "halftime":
        # Broad: the low drum once a bar (twice in 12/8), a hemiola on the high drum (the
        # second and third quarter notes of three across each two beats), the other
        # beats light.
        for s in range(0, steps, 3):
            # (Above 140 BPM the low drum stays on every beat: a broad bar there would
            # be heard as the beat.)
            strong = s % 6 == 0 or bpm > 140
            out.append((s, low, 1.0 if s == 0 else 0.85) if strong else (s, accent, 0.45))
        for s in range(steps):
            if s % 6 in (2, 4) and hemiola:
                out.append((s, accent, 0.7))
    elif feel == "driving":
        # Driving: the low drum on every beat, the high one pushing each beat's middle
        # eighth (the short-long skip of a tarantella against the jig's long-short).
        for s in range(0, steps, 3):
            out.append((s, low, 1.0 if s == 0 else other))
            # (A rocked 12/8's skip firmer, as the arpeggio's: ``parts.ROCKED_SKIP``.)
            firm = bpm < ROCKED_BPM and steps == 12
            out.append((s + 1, accent, ROCKED_SKIP_SKIN if firm else 0.75))
    elif feel == "flowing":
        # Flowing: the low drum on every beat (the dotted quarter carried), the high one
        # light on the beat's two eighths and a sixteenth pickup into the next beat: the
        # beat heard in three (the pickup alone, at 5/6 of the beat, cancels the beat's
        # third harmonic: a jig's flowing take read as a beat in two, 0.5-0.65, where
        # its straight and driving takes read 1.5-2.3), the pickup its own (on the
        # eighths alone the take folded per bar like the driving one, 0.82-0.88). A drum's
        # attack counts in the onset strength by its presence more than its level: the
        # harp's or bouzouki's eighths under the drum's sixteenths did not outweigh them.
        # (On the quarter notes of three across each two beats, or in figures that
        # differ from one beat to the next, the take was heard at 3/2, 3/4 or 1/2 of the
        # tempo: a jig's 128 BPM at 96, 110 at 165.)
        for s in range(0, steps, 3):
            out.append((s, low, 1.0 if s == 0 else 0.75))
            out += [(s + 1, accent, 0.45), (s + 2, accent, 0.45), (s + 2.5, accent, 0.6)]
    else:  # the lilt: the beat and its last eighth (running eighths are the driving feel's)
        for s in range(0, steps, 3):
            out.append((s, low, 1.0 if s == 0 else other))
        for s in range(2, steps, 3):
            out.append((s, high, 0.9))
    if kit in {"kit", "four", "orchestral", "lofi"} and steps >= 6 and feel != "halftime":
        for s in range(3, steps, 6):
            out.append((s, "snare" if kit != "orchestral" else "taiko_hi", 0.8))
    if variant_bits & 1 and steps >= 6 and not (bpm < ROCKED_BPM and feel != "straight"):
        # A pickup into the next bar (a rocked take's own rocking keeps the lilt's eighth).
        out.append((steps - 1, low, 0.5))
    if first and kit not in {"soft", "tension", "chip"}:
        out.append((0, "crash", 0.7))
    if fill:
        for i, s in enumerate(range(steps - 3, steps)):
            out.append((s, high if kit != "orchestral" else "taiko_hi", 0.6 + 0.15 * i))
    return out


def _broad_three(kit: str) -> tuple[str, str, str]:
    """A kit's low drum, light beat and tick in 3/4's broad and flowing takes."""
    return {
        "orchestral": ("taiko", "taiko_hi", "shaker"),
        "tension": ("taiko", "taiko_hi", "rim"),
        "frame": ("frame_lo", "frame_hi", "shaker"),
        "soft": ("frame_lo", "shaker", "shaker"),
        "chip": ("chip_kick", "chip_hat", "chip_hat"),
        "brush": ("kick", "brush", "brush"),
        "march": ("bassdrum", "fieldsnare", "fieldsnare"),
    }.get(kit, ("kick", "hat", "hat"))


def feel_pattern(
    kit: str, feel: str, bpb: int, energy: float, bpm: float, second: bool | None = None
) -> list[tuple[int, str, float]] | None:
    """One bar of ``kit`` in a half-time or driving feel (None: the kit has none).

    Half-time: the backbeat moves to beat 3 and the low drum plays beats 1 (and the and of
    3 above 100 BPM); the other beats keep a light hit, so the pulse stays. Driving: the
    backbeat on 2 and 4 under sixteenths (eighths above 140 BPM) with the beats accented,
    and the low drum's pickups. Both keep a hit on every beat.
    """
    steps = bpb * 4
    beats = list(range(0, steps, 4))
    half = feel == "halftime"
    slow = bpm < 100
    busy = energy > 0.7
    back = 8 if bpb >= 3 else 4  # beat 3 (half-time's backbeat)
    # 3/4 driving: the low drum on the downbeat alone, the backbeat on 2 and 3 (a 4/4
    # bar's 1 and 3 cut to three beats put the low drum on beat 3 too, and beat 3 was
    # heard as the downbeat).
    lows = [0] if bpb == 3 else [s for s in beats if s % 8 == 0]
    backs = [4, 8] if bpb == 3 else [s for s in beats if s % 8 == 4]
    # From 126 BPM a half-time feel keeps beats 2 and 4 firmer: lighter, the pulse halves.
    firm = bpm > 125
    # The driving feel's grid: sixteenths, or eighths above 140 BPM, where sixteenths blur
    # (not a chiptune's crisp hats: its eighths there were the straight take's, per
    # sixteenth 0.81-0.83 alike).
    fine = 1 if bpm <= 140 or kit == "chip" else 2

    def ticks(sound: str, top: float) -> list[tuple[int, str, float]]:
        """Driving hats: a gallop on each beat (two sixteenths and an eighth), eighths when
        fast (above 140 BPM), a dotted lilt when slow (below 100)."""
        cells = (0, 3) if fine == 1 else (0, 2)
        vel = {0: 1.0, 1: 0.55, 2: 0.7, 3: 0.6}
        return [(b + o, sound, top * vel[o]) for b in beats for o in cells]

    out: list[tuple[int, str, float]] = []
    if feel in {"pushed", "tresillo"}:
        return syncopated_pattern(kit, feel, energy, bpm)
    if feel == "triplet":
        return triplet_pattern(kit)
    if feel == "offbeat":
        return offbeat_pattern(kit)
    if bpb == 3 and ((half and second is None) or feel == "flowing"):
        # 3/4 felt in one: the low drum on the downbeat and the other beats light; broad
        # (out of the hemiola) a tick a sixteenth after each beat, with the arpeggio's
        # answer (on the and of 2 it lifted the bar into dotted quarters: heard at 2/3 of
        # the tempo), flowing with the eighths between the beats.
        low, light, tick = _broad_three(kit)
        top = 0.6 if kit == "soft" else 1.0
        if not half and bpm < SLOW_FLOW_BPM:
            # Slow, the hesitation: beat 2 a faint tick, the and of 2 firmer (with a light
            # drum on beat 2 the take folded per bar like the oom-pah-pah, 0.82-0.83; with
            # nothing there the bar lost its second beat).
            return [
                (0, low, top),
                (4, tick, 0.1 * top),
                (6, tick, 0.5 * top),
                (8, light, 0.45 * top),
            ]
        if not half and bpm > FAST_FLOW_BPM:
            # Fast, the pickups: the low drum on 1 and a tick on each pickup, beats 2 and 3
            # left to the pitched parts (struck lightly there too, the take folded per bar
            # like the oom-pah-pah, 0.80-0.88 on a carousel waltz at 150 BPM).
            return [(0, low, top)] + [(s, tick, 0.35 * top) for s in (3, 7, 11)]
        out += [(0, low, top), (4, light, 0.45 * top), (8, light, 0.45 * top)]
        ticks = (1, 5, 9) if half else (2, 6, 10)
        return out + [(s, tick, (0.5 if half else 0.35) * top) for s in ticks]
    if half and bpb == 3:
        # Broad 3/4: the low drum on the downbeat, or in a hemiola over a pair of bars
        # (``second``: False, True for its bars; None: none) on its three half notes
        # (beats 1 and 3, then 2); the other beats light, and the eighths between them.
        low, light, tick = _broad_three(kit)
        top = 0.6 if kit == "soft" else 1.0
        # (The hemiola's other half notes on the light drum, firm: on the low drum, beat 3
        # of its first bar and beat 2 of its second were heard as "one".)
        strong = (4,) if second else (0, 8)
        hits = [(s, low if s == 0 else light, top if s == 0 else 0.8 * top) for s in strong]
        out += hits + [(s, light, 0.35 * top) for s in beats if s not in strong]
        return out + [(s + 2, tick, 0.3 * top) for s in beats]
    if kit in {"kit", "lofi", "brush", "chip"}:
        kick = "chip_kick" if kit == "chip" else "kick"
        snare = {"brush": "brush", "chip": "chip_snare"}.get(kit, "snare")
        hat = "chip_hat" if kit == "chip" else "hat"
        if half:
            out += [(0, kick, 1.0)] + ([(10, kick, 0.7)] if not slow and bpb == 4 else [])
            out += [(back, snare, 0.95)]
            # Hats on 1 and 3, the open hat leading into the next bar: the pulse is the
            # bass's and the snare's.
            # Below 100 BPM beats 2 and 4 too, lighter (hats on 1 and 3 alone there were
            # heard as the beat, at half the tempo).
            hats = [s for s in beats if s % 8 == 0 or firm or slow]
            out += [(s, hat, 0.75 if s == 0 else 0.6 if s % 8 == 0 else 0.4) for s in hats]
            if kit != "chip" and bpb == 4:
                out.append((14, "ohat", 0.45))
        else:
            out += [(s, kick, 1.0 if s == 0 else 0.85) for s in lows]
            out += [(s, snare, 0.9 if bpb == 4 else 0.7) for s in backs]
            if not slow and bpb == 4:  # the kick's pickups into beats 2 and 4
                out += [(3, kick, 0.6), (11, kick, 0.6), (15, snare, 0.3)]
            out += ticks(hat, 0.8)
    elif kit == "four":
        out += [(s, "kick", 1.0 if s == 0 or bpb == 4 else 0.8) for s in beats]
        if half:
            out += [(back, "clap", 0.85)] + [(s + 2, "hat", 0.4) for s in beats]
        elif fine == 1:
            # Up to 140 BPM the hats' sixteenth pickup into every beat, firm, and no open
            # hat on the off-beat eighths (the straight take's: with it there, techno and
            # house moods' straight and driving takes folded per bar 0.77-0.92 alike).
            out += [(s, "clap", 0.8) for s in backs]
            out += [(s, "hat", 0.45) for s in beats] + [(s + 3, "hat", 0.6) for s in beats]
        else:
            out += [(s, "clap", 0.8) for s in backs]
            out += [(s + 2, "ohat", 0.5) for s in beats] + ticks("hat", 0.45)
    elif kit == "orchestral":
        if half:
            # Big hits on 1 and 3, the other beats light: the pulse under a broad groove.
            out += [(0, "taiko", 1.0), (back, "taiko_hi", 0.95)]
            light = 0.5 if firm else 0.3
            out += [(s, "taiko_hi", light) for s in beats if s not in (0, back)]
            out += [(s, "shaker", 0.55 if s % 8 == 0 else light + 0.05) for s in beats]
            if busy:
                out += [(back, "tambourine", 0.7)]
            if (not slow or energy > 0.85) and bpb == 4:
                out.append((10, "taiko", 0.6))
        else:
            low = [(s, "taiko" if s in lows else "taiko_hi", 0.8) for s in beats]
            out += [(s, sound, 1.0 if s == 0 else vel) for s, sound, vel in low]
            # The dotted pickup into each beat, on the high drum and the shaker (from 100
            # BPM in 4/4 at every tempo: the eighths are the straight take's).
            gallop = bpb == 4 and not slow
            pick = 3 if fine == 1 or gallop else 2
            out += [(s + pick, "taiko_hi", 0.65) for s in beats]
            if busy:
                out += [(s, "tambourine", 0.7) for s in backs]
            if gallop:
                out += [(b + o, "shaker", 0.6 * v) for b in beats for o, v in ((0, 1.0), (3, 0.6))]
            else:
                out += ticks("shaker", 0.6)
    elif kit == "frame":
        if half:
            out += [(0, "frame_lo", 1.0), (back, "frame_hi", 0.8)]
            out += [(s, "frame_hi", 0.6 if firm else 0.4) for s in beats if s not in (0, back)]
            if not slow and bpb == 4:
                out.append((10, "frame_lo", 0.55))
            if busy:
                out += [(s, "shaker", 0.35) for s in beats]
        else:
            # The low skin on 1 and 3 and its pickups into 2 and 4, the slap (and a
            # tambourine) on the backbeat: without it, 1 and 3 and their pickups group the
            # bar in halves, heard at half the tempo.
            out += [(s, "frame_lo", 1.0 if s == 0 else 0.8) for s in lows]
            if not slow and bpb == 4:
                out += [(3, "frame_lo", 0.5), (11, "frame_lo", 0.5)]
            backbeat = backs
            out += [(s, "frame_hi", 1.0 if bpb == 4 else 0.7) for s in backbeat]
            out += [(s, "tambourine", 0.7) for s in backbeat]
            out += [t for t in ticks("frame_hi", 0.65) if t[0] not in backbeat]
    elif kit == "soft":
        if half:
            # The felt thump on 1 and the backbeat on 3, lighter on the other beats (the
            # arpeggio touches them too): a half-time groove at the written tempo.
            out += [(0, "frame_lo", 0.6), (back, "frame_lo", 0.45)]
            out += [(s, "frame_lo", 0.3) for s in beats if s not in (0, back)]
            # (The shaker on 2 and 4 as firm as the pickups: see the ghosts below.)
            out += [(s, "shaker", 0.45) for s in beats if s not in (0, back)]
        else:
            out += [(0, "frame_lo", 0.6)] + [(s, "frame_lo", 0.3) for s in beats if s]
            # The shaker's eighths, or slow, a dotted lilt: its sixteenth leads into the beat
            # (even eighths there would be heard as the beat).
            shakes = [s + o for s in beats for o in (0, 3)] if slow else range(0, steps, 2)
            out += [(s, "shaker", 0.3 if s % 4 == 0 else 0.45) for s in shakes]
    elif kit == "tension":
        out += [(0, "taiko", 0.9)]
        if half:
            out += [(back, "taiko_hi", 0.65)]
            out += [(s, "rim", 0.6 if s == 0 or firm else 0.35) for s in beats]
        else:
            out += [(s, "taiko_hi", 0.35) for s in beats if s]
            out += ticks("rim", 0.55)
    else:
        return None
    if feel == "driving" and bpb == 3:
        # 3/4 driving: the sixteenth pickup into every beat struck firmly on the light
        # drum (its own figure: the straight waltz strikes the beats alone, the flowing
        # one the eighths, the broad one a sixteenth after each beat).
        _, light, _ = _broad_three(kit)
        out += [(b + 3, light, 0.5 if kit == "soft" else 0.8) for b in beats]
    if half and bpb == 4:
        # Half-time's own figure between the beats: a ghost sixteenth after every beat
        # (the straight take plays the eighths between the beats, the driving one the
        # sixteenth pickups before them: three grooves, one pulse).
        ghost = {
            "orchestral": "shaker",
            "frame": "frame_hi",
            "soft": "shaker",
            "tension": "rim",
            "chip": "chip_hat",
            "brush": "brush",
        }.get(kit, "hat")
        top = 0.45 if kit == "soft" else 0.75
        # Below 100 BPM a pickup into beat 3 and into the bar, as the arpeggio's (a
        # sixteenth after every beat was heard as the beat's eighths; after beats 2 and 4
        # only, three quarters of a beat before the big beats, at 4/3 of the tempo). The
        # soft kit's shaker ticks beats 2 and 4 as firmly as its pickups: fainter there
        # (0.3), its pickups had a calm take read at 4/3 of its tempo (71 BPM at 95.7),
        # and moved to the and of 2 and of 4, as loud as beats 2 and 4, at twice it
        # (librosa's beat tracker and tempo: a grotto's 72 BPM at 148, the starter's
        # explore 90 at 185).
        ghosts = (1, 5, 9, 13) if not slow else (7, 15)
        if slow and kit == "soft":
            # Into the bar alone, with the bass's pickup there (``parts.BASS_FIGURES``):
            # into beat 3 too, two pickups three quarters of a beat after beats 2 and 4
            # had a tester's tracker read the starter's explore 90 at 120.
            ghosts = (15,)
        out += [(s, ghost, top) for s in ghosts]
        if kit == "orchestral" and slow:
            # And a ghost after the big beats, 1 and 3 (with the pickups alone it folded
            # per bar like the driving take's pickups into every beat, 0.81-0.85).
            out += [(s, ghost, SLOW_HALF_GHOST) for s in (1, 9)]
        if kit == "orchestral" and not slow:
            out += HALF_GHOSTS  # (struck on the high taiko too: its own figure, heard)
    return out


# Each kit's low drum, the beats' drum and its tick (the syncopated and triplet feels).
FEEL_SOUNDS = {
    "kit": ("kick", "snare", "hat"),
    "lofi": ("kick", "snare", "hat"),
    "brush": ("kick", "brush", "brush"),
    "chip": ("chip_kick", "chip_snare", "chip_hat"),
    "four": ("kick", "clap", "hat"),
    "orchestral": ("taiko", "taiko_hi", "shaker"),
    "frame": ("frame_lo", "frame_hi", "frame_hi"),
    "soft": ("frame_lo", "frame_lo", "shaker"),
    "tension": ("taiko", "taiko_hi", "rim"),
    "march": ("bassdrum", "fieldsnare", "fieldsnare"),
}
# The kits that play a backbeat on 2 and 4 (the others a lighter hit on every beat).
BACKBEAT_KITS = frozenset({"kit", "lofi", "brush", "chip", "four"})


def offbeat_pattern(kit: str) -> list[tuple[int, str, float]] | None:
    """One 4/4 bar of ``kit`` in the off-beat feel (``parts.MID_FOURTH``): the low drum on
    every beat (the downbeat firmest), the backbeat on 2 and 4 (a drum kit's), and the
    tick, an open hat on a drum kit, on the off-beat eighths."""
    sounds = FEEL_SOUNDS.get(kit)
    if sounds is None:
        return None
    low, beat, tick = sounds
    if kit in {"kit", "lofi", "four"}:
        tick = "ohat"  # the off-beat open hat of house music
    if kit == "frame":
        # The low skin light on the beats (1 and 3 firmer), the slap and the tambourine
        # firm on the off-beats, with the bass (``parts.BASS_FIGURES``): as even, a comb
        # heard the eighths at twice the tempo.
        out: list[tuple[int, str, float]] = [(0, low, 0.8), (4, low, 0.5), (8, low, 0.6)]
        out += [(12, low, 0.5)] + [(s, tick, 0.9) for s in (2, 6, 10, 14)]
        return out + [(s, "tambourine", 0.7) for s in (2, 6, 10, 14)]
    out = [(s, low, 1.0 if s == 0 else 0.85) for s in (0, 4, 8, 12)]
    if kit in BACKBEAT_KITS:
        out += [(s, beat, 0.8) for s in (4, 12)]
    return out + [(s, tick, 0.7) for s in (2, 6, 10, 14)]


# The syncopated 4/4 feels' drums (``parts.SYNCOPATION``). Their bars keep a firm hit on
# every beat (measured: pushes or a 3+3+2 as loud as the beats are heard at half the tempo,
# by the comb and by a beat tracker alike), the downbeat strongest.
# Pushed: the low drum also on the and of 2 and the and of 4 (pushed into beat 3 and the
# next downbeat), under even eighths. Tresillo (half-time's stand-in): the pitched parts
# play the 3+3+2; the drums keep the beats, each with a sixteenth after it (the figure of
# half-time, which never plays at those tempi), the backbeat on 2 and 4.
PUSHED = (6, 14)
GHOSTS = (1, 5, 9, 13)
# The drum kit's tresillo as its fourth take, up to this tempo (``parts.KIT_FOURTH``), and its
# hats between the beats: the 3+3+2's sixteenths, the and of 2 and of 4 firmer (the claps
# before them mask them). Faster, a beat tracker (librosa's) heard it at half the tempo:
# the pitched parts' 3+3+2 strike no attack on beats 2 and 4.
KIT_TRESILLO_BPM = 116.0
KIT_TRESILLO_TICKS = ((3, 0.6), (6, 0.9), (11, 0.6), (14, 0.9))
# A four-on-the-floor kit's rolling fourth take (above ``KIT_TRESILLO_BPM``): the hats'
# sixteenth before 2 and before 4 firm, the and of 2 and of 4 light (as firm there, where
# the straight take plays its open hats, techno and house moods at 118-126 BPM folded per
# bar 0.82-0.88 like their straight take; without them, 0.73-0.80 like the driving take,
# whose pickups share the sixteenths before 2 and 4).
FOUR_ROLLING_TICKS = ((3, 1.0), (6, 0.4), (11, 1.0), (14, 0.4))
# Above ``KIT_TRESILLO_BPM`` and up to this tempo the electronic kits' fourth take keeps its
# drums' 3+3+2 while the pitched parts play on the beats (``parts.ROLLING_FOURTH``); faster,
# half-time's stand-in is the tresillo, and the fourth take plays straight.
ELECTRONIC_FOURTH_BPM = 136.0
# The electronic kits that play the tresillo as their fourth take: (low drum, the beats'
# clap, hat). A four-on-the-floor kit keeps its kick on every beat.
TRESILLO_KITS = {
    "kit": ("kick", "clap", "hat"),
    "four": ("kick", "clap", "hat"),
    "chip": ("chip_kick", "chip_snare", "chip_hat"),
}
# The orchestral pushed take's tempo from which its off-beats are the jingles' alone.
FAST_PUSHED_BPM = 140.0
# The orchestral half-time and tresillo takes' ghosts after the big hits, on the high taiko.
HALF_GHOSTS = [(1, "taiko_hi", 0.5), (9, "taiko_hi", 0.5)]


def syncopated_pattern(
    kit: str, feel: str, energy: float, bpm: float
) -> list[tuple[int, str, float]] | None:
    """One 4/4 bar of ``kit`` in the pushed or the tresillo feel (None: the kit has none)."""
    if kit == "orchestral":
        return syncopated_orchestral(feel, bpm)
    beats = (0, 4, 8, 12)
    ands = (2, 10)  # the eighths between the beats that are not pushed
    pushed = feel == "pushed"
    sounds = FEEL_SOUNDS.get(kit)
    if sounds is None:
        return None
    low, beat, tick = sounds
    top = 0.6 if kit == "soft" else 0.9 if kit == "tension" else 1.0
    out: list[tuple[int, str, float]] = [(0, low, top)]
    if kit == "four":
        out += [(s, "kick", 0.9) for s in beats if s]  # the floor stays four
    if kit in BACKBEAT_KITS:
        # The backbeat on 2 and 4; beat 3 on the low drum.
        out += [(s, beat, 0.9) for s in (4, 12)]
        if kit != "four":
            out.append((8, low, 0.8 * top))
    else:
        out += [(s, beat, (0.45 if kit == "soft" else 0.8) * top) for s in beats if s]
    # The beats ticked, the downbeat firmest.
    out += [(s, tick, (0.5 if s == 0 else 0.35) * (0.7 if kit == "soft" else 1.0)) for s in beats]
    if pushed:
        shimmer = "ohat" if kit in {"kit", "lofi", "four"} else "tambourine"
        if bpm > 140 or kit in {"four", "frame"}:
            # Fast, and on a four-on-the-floor kick or frame drums: the pushes are the
            # pitched parts' and a shimmer's (on the low drum they were heard as the beat:
            # at half the tempo, or with the four kicks at twice it).
            return out + [(s, shimmer, 0.5) for s in PUSHED]
        out += [(s, low, 0.75 * top) for s in PUSHED]
        if kit == "orchestral":
            # Even eighths under the pushes keep the beat's subdivision (the orchestral
            # kit's pushes without them were heard at half the tempo; on the drum kit's
            # hats at twice it).
            out += [(s, tick, 0.45) for s in (*ands, *PUSHED)]
        if kit == "orchestral" or energy > 0.7:
            out += [(s, shimmer, 0.7) for s in PUSHED]
    elif kit in TRESILLO_KITS and bpm <= ELECTRONIC_FOURTH_BPM:
        # The electronic kits' fourth take (``parts.KIT_FOURTH``): claps (a chip kit's
        # snare) on the beats, 2 and 4 firmest, over the kick's 1 and 3 (a four-on-the-floor
        # kit's every beat), and the hats on the beats and the 3+3+2. The snare's backbeat
        # (the straight and driving takes' loudest hits) had the takes folded alike per bar
        # (0.80-0.87), and masked the hats after it.
        low, clap, tick = TRESILLO_KITS[kit]
        lows = [(0, low, top), (8, low, 0.8 * top)]
        if kit == "four":
            lows = [(s, low, 1.0 if s == 0 else 0.9) for s in beats]
        out = lows + [(s, clap, 0.8 if s % 8 else 0.5) for s in beats]
        out += [(s, tick, 0.8) for s in beats]
        ticks = KIT_TRESILLO_TICKS
        if kit == "four" and bpm > KIT_TRESILLO_BPM:
            ticks = FOUR_ROLLING_TICKS
        out += [(s, tick, vel) for s, vel in ticks]
    else:
        ghost = 0.3 if kit == "soft" else 0.55
        out += [(s, tick, ghost) for s in GHOSTS]
        if kit in {"orchestral", "frame", "tension"}:
            out.append((8, low, 0.9 * top))  # the half bar's low drum (beat 3)
    return out


# Where the slow fourth take's second stroke falls in each beat (``parts.SLOW_FOURTH``):
# the first triplet, a heartbeat's "lub-dub". (On the last triplet, two thirds of a beat
# in, a listener's tools that round onsets to the nearest sixteenth counted it with the
# driving take's dotted lilt and the half-time pickups, three quarters in: the takes alike,
# 0.84-0.93.)
TRIPLET_STROKE = 1 / 3
# On the kits whose straight take ticks the eighths (hats on every beat and every "and"),
# the second stroke comes a sixteenth after the beat, a heartbeat's quicker "lub-dub": a
# third of a beat in, its onsets (some 35 ms late) were rounded to the "and" with the
# straight take's hats by a listener's tools that round to the nearest sixteenth (a
# synthwave cruise at 96 BPM folded per bar 0.95-0.99 like its straight take).
EIGHTH_HAT_KITS = frozenset({"kit", "lofi", "brush", "chip"})
SNAP_STROKE = 1 / 4


# The orchestral kit's slow straight take ticks the eighths too (``bar_pattern``): its
# fourth take's second stroke a third of a beat in was rounded to the "and" with them (an
# arch plan at 96 BPM, a march at 88: per bar 0.81-0.92 alike on a listener's tools), and so
# did frame drums' below 100 BPM (folk moods at 84-98: 0.68-0.84 per sixteenth, 0.72-0.88
# per bar on librosa's grid).
SNAP_KITS = EIGHTH_HAT_KITS | {"orchestral", "frame"}
# The orchestral kit's slow straight eighths on the shaker: a tick under the beats' drums.
SLOW_EIGHTHS = 0.45
# Its slow half-time take's ghost after beats 1 and 3.
SLOW_HALF_GHOST = 0.6


def heartbeat_stroke(kit: str | None) -> float:
    """Where the slow fourth take's second stroke falls in each beat, on ``kit``."""
    return SNAP_STROKE if kit in SNAP_KITS else TRIPLET_STROKE


def triplet_pattern(kit: str) -> list[tuple[float, str, float]] | None:
    """One 4/4 bar of ``kit`` in the slow fourth take's heartbeat (``parts.SLOW_FOURTH``):
    the low drum on 1 (and 3), the beats kept, and on each beat's first triplet the low
    drum again with the tick, firm (steps in sixteenths: 4/3 is a third of a beat;
    ``heartbeat_stroke``)."""
    sounds = FEEL_SOUNDS.get(kit)
    if sounds is None:
        return None
    low, beat, tick = sounds
    top = 0.6 if kit == "soft" else 1.0
    out: list[tuple[float, str, float]] = [(0, low, top), (8, low, 0.75 * top)]
    if kit in EIGHTH_HAT_KITS:
        # The backbeat in two strokes too (on the beat alone, the loudest hits of the
        # bar, it folded the take per bar like the straight take's: a rock ballad 0.84-0.89).
        out += [(s + o, beat, 0.6) for s in (4, 12) for o in (0, 4 * SNAP_STROKE)]
    elif kit in BACKBEAT_KITS:
        out += [(s, beat, 0.85) for s in (4, 12)]
    else:
        out += [(s, beat, (0.5 if kit == "soft" else 0.7) * top) for s in (4, 12)]
    # The second stroke as firm as the beats' own onsets (a lighter one left the take's
    # onsets on the beats, as the straight take's: per bar 0.82-0.91 alike); a beat
    # tracker still hears the beat (the strokes a third and two thirds apart, the beat's
    # period is the one they share).
    stroke = 4 * heartbeat_stroke(kit)
    tick_vel = 0.9 if kit == "soft" else 0.8
    out += [(s + stroke, tick, tick_vel * (1.2 if s % 8 == 4 else 1.0)) for s in (0, 4, 8, 12)]
    out += [(s + stroke, low, 0.5 * top) for s in (0, 4, 8, 12)]
    return out


# The orchestral kit's four 4/4 takes at action tempi (100 BPM and up), each with figures of
# its own between the beats it shares: straight, the eighths (the and of every beat);
# half-time and tresillo, a ghost sixteenth after every beat; driving, the sixteenth
# pickup before every beat; pushed, the and of 2 and of 4 struck hard with the beats
# light. (Straight once played the driving take's eighths and pickups and both went to
# even eighths above 140 BPM: a 149-BPM take's straight and driving takes folded per bar
# 0.98 alike.)


def straight_orchestral(energy: float, alt: int) -> list[tuple[int, str, float]]:
    """A 4/4 bar of the orchestral kit's straight take from 100 BPM: the low taiko on 1 and
    3, the backbeat on 2 and 4 (the high taiko, and busy, the snare and a tambourine), and
    busy, the shaker's eighths and a light hit on the and of 1 and of 3 (or, ``alt``, the
    low taiko on the and of 3)."""
    out = [(0, "taiko", 0.8), (8, "taiko", 0.35), (4, "taiko_hi", 0.9), (12, "taiko_hi", 0.9)]
    if energy > 0.7:
        out += [(s, sound, 0.85) for s in (4, 12) for sound in ("snare", "tambourine")]
        out += [(s, "shaker", 0.6 if s % 4 == 0 else 0.4) for s in range(0, 16, 2)]
        out += [(10, "taiko", 0.6)] if alt else [(2, "taiko_hi", 0.5), (10, "taiko_hi", 0.5)]
    return out


def syncopated_orchestral(feel: str, bpm: float) -> list[tuple[int, str, float]]:
    """A 4/4 bar of the orchestral kit's pushed or tresillo take. Pushed: the and of 2 and
    of 4 struck hard (the high taiko and a tambourine), the beats after 1 lighter, and from
    126 BPM the and of 1 and of 3 firm too (every off-beat eighth struck keeps the beat's
    subdivision: with the pushes alone the take was heard at half the tempo, their
    two-beat period louder than the beats'; above 150 BPM they are struck as hard as the
    beats for that). Tresillo (the pitched parts' 3+3+2): every beat firm, a ghost after
    every beat."""
    beats = (0, 4, 8, 12)
    out = [(0, "taiko", 1.0)] + [(s, "shaker", 0.5 if s == 0 else 0.35) for s in beats]
    if feel == "pushed" and bpm > FAST_PUSHED_BPM:
        # Above 140 BPM the high taiko strikes the beats alone (the low one beat 3 too),
        # the pushes and the and of 1 and of 3 the jingles' (tambourine, shaker; the low
        # taiko lightly under the pushes): with the high taiko on every eighth a beat
        # tracker (librosa's, its median onset strength over the bands: the broadband
        # hits) heard the eighths about alike and grouped them in threes with the pushes,
        # at 2/3 of the tempo (a bastion's 149 BPM at 99). (The low taiko keeps the pushes
        # the take's own: on the jingles alone it folded per bar 0.80-0.81 like straight.)
        out += [(s, "taiko_hi", 0.8) for s in beats if s] + [(8, "taiko", 0.7)]
        out += [(s, sound, 0.9) for s in PUSHED for sound in ("tambourine", "shaker")]
        out += [(s, "taiko", 0.5) for s in PUSHED]
        return out + [(s, "shaker", 0.6) for s in (2, 10)]
    if feel == "pushed":
        fast = bpm > 125
        out += [(s, "taiko_hi", 0.6 if fast else 0.75) for s in beats if s]
        out += [(s, sound, 0.9) for s in PUSHED for sound in ("taiko_hi", "tambourine")]
        if fast:
            ands = 0.75 if bpm > 150 else 0.6
            out += [(s, sound, ands) for s in (2, 10) for sound in ("taiko_hi", "shaker")]
        return out
    # Tresillo: 2, 3 and 4 firm (lighter, or with ghosts on the high taiko, it was heard
    # at half the tempo: a 150 BPM combat), the shaker's ghost after every beat.
    out += [(s, "taiko_hi", 0.8) for s in beats if s] + [(8, "taiko", 0.9)]
    return out + [(s, "shaker", 0.55) for s in GHOSTS]


# Drum and bass's breakbeats (the "breaks" kit, ``palette.choose_voices``), one 4/4 bar of
# sixteenths per take's feel: (step, sound, velocity). Each is heard at its tempo, not at
# half or 2/3 of it (170 BPM at 86 or 112: librosa's beat_track and feature.tempo, the
# tests' tracker): a tracker weighs the onsets a beat apart against those two beats and a
# beat and a half apart. Hits two beats apart (the backbeat's snares on 2 and 4, ghosts on
# the a of 2 and of 4) pull it to half; so every take's snares also fall a beat apart: the
# snare with the kick on 1 (louder than the backbeat, beat 3 under it), or lighter snares
# beside the take's own a beat from them. The judge's two and ten new wordings, 162-176
# BPM, takes 0-3, 30 s: heard at half or 2/3 on 47 of 48 takes by both librosa measures
# before; after, by beat_track on 5 (both SoundFonts, at 166-168 BPM), by feature.tempo on
# 1 (FluidR3) and 0 (TimGM6mb); their takes as far apart as before (<= 0.8 per bar).
BREAKS: dict[str, tuple[tuple[int, str, float], ...]] = {
    # Two-step: kick on 1 and the and of 3, snare on 1 (under the backbeat), 2 and 4,
    # ghosts on the a of 2 and of 3, eighth hats.
    "straight": (
        (0, "kick", 1.0),
        (10, "kick", 0.9),
        (0, "snare", 0.9),
        (4, "snare", 1.0),
        (12, "snare", 1.0),
        (7, "snare", 0.3),
        (11, "snare", 0.3),
        *((s, "hat", 0.7 if s % 4 == 0 else 0.5) for s in range(0, 16, 2)),
    ),
    # Half-time roller: kick on 1 and the and of 2, snare on 3, lighter ones on its and and
    # on 4, rolling sixteenth hats.
    "halftime": (
        (0, "kick", 1.0),
        (6, "kick", 0.8),
        (8, "snare", 1.0),
        (10, "snare", 0.7),
        (12, "snare", 0.7),
        (14, "snare", 0.35),
        *((s, "hat", 0.75 if s % 4 == 0 else 0.5 if s % 2 == 0 else 0.3) for s in range(16)),
    ),
    # Amen-like, its third bar: kick on 1, its and and the and of 3, the snare's weight
    # moved off the backbeat to the a of 2 and the and of 4, ghosts around them, lighter
    # snares on the and of 1, the and of 3 and its a.
    "driving": (
        (0, "kick", 1.0),
        (2, "kick", 0.85),
        (10, "kick", 0.9),
        (7, "snare", 0.9),
        (14, "snare", 1.0),
        (2, "snare", 0.7),
        (10, "snare", 0.7),
        (11, "snare", 0.7),
        (4, "snare", 0.3),
        (9, "snare", 0.4),
        *((s, "hat", 0.7 if s % 4 == 0 else 0.5) for s in range(0, 16, 2)),
    ),
    # Pushed: the snares on the ands of 1, 2 and 4, lighter on the and of 3, kicks on the
    # beats' pickups.
    "pushed": (
        (0, "kick", 1.0),
        (3, "kick", 0.7),
        (8, "kick", 0.9),
        (11, "kick", 0.7),
        (6, "snare", 1.0),
        (14, "snare", 1.0),
        (2, "snare", 1.0),
        (10, "snare", 0.45),
        (4, "snare", 0.3),
        (12, "snare", 0.35),
        *((s, "hat", 0.7 if s % 4 == 0 else 0.5) for s in range(0, 16, 2)),
    ),
}


def break_pattern(feel: str, fill: bool, first: bool) -> list[tuple[int, str, float]]:
    """One 4/4 bar of drum and bass's breakbeat in the take's ``feel`` (``BREAKS``)."""
    out = list(BREAKS.get(feel, BREAKS["straight"]))
    if first:
        out.append((0, "crash", 0.8))
    if fill:
        out += [(s, "snare", 0.45 + 0.5 * (i + 1) / 4) for i, s in enumerate(range(12, 16))]
    return out


def bar_pattern(
    kit: str,
    bpb: int,
    energy: float,
    fill: bool,
    first: bool,
    variant_bits: int,
    bpm: float = 120.0,
    bright: float = 0.5,
    feel: str = "straight",
    second: bool | None = None,
) -> list[tuple[int, str, float]]:
    """One bar of ``kit`` as (sixteenth step, sound, velocity), in the variant's ``feel``
    (``parts.FEELS``: straight, halftime, driving, pushed, or tresillo; see
    ``feel_pattern``; ``second``: the second bar of a pair, for a hemiola)."""
    if kit == "breaks":
        if bpb == 4:
            return break_pattern(feel, fill, first)
        kit = "kit"  # a breakbeat in 3/4: the drum kit's
    steps = bpb * 4
    beats = range(0, steps, 4)
    eighths = range(0, steps, 2)
    out: list[tuple[int, str, float]] = []
    alt = variant_bits & 1
    # Below 100 BPM off-beat hits would be heard as the beat: keep them few and soft.
    slow = bpm < 100
    busy = energy > 0.7 and not slow
    four = bpb == 4
    felt = feel_pattern(kit, feel, bpb, energy, bpm, second) if feel != "straight" else None
    if felt is not None:
        out = felt
    elif kit in {"kit", "lofi", "brush"}:
        kick_steps = [0, 8] if four else [0]
        if kit == "lofi":
            kick_steps = [0, 7, 10] if alt else [0, 6, 10]
        elif four and busy:
            kick_steps = [0, 8, 10] if alt else [0, 6, 8]
        if kit == "kit" and energy > 0.9 and four:
            kick_steps = [0, 3, 8, 10]
        for s in kick_steps:
            out.append((s, "kick", 1.0 if s % 4 == 0 else 0.7))
        back = [4, 12] if four else [s for s in beats if s]
        snare = "brush" if kit == "brush" else "snare"
        for s in back:
            out.append((s, snare, 0.9 if kit != "lofi" else 0.75))
        hat = "hat"
        for s in eighths:
            out.append((s, hat, 0.8 if s % 4 == 0 else 0.5))
        if kit == "kit" and energy > 0.8:
            for s in range(1, steps, 2):
                out.append((s, hat, 0.25))
        if kit == "kit" and alt and four:
            out.append((14, "ohat", 0.5))
    elif kit == "four":
        for s in beats:
            out.append((s, "kick", 1.0))
        for s in [4, 12] if four else [4, 8]:
            out.append((s, "clap", 0.8))
        for s in range(2, steps, 4):
            out.append((s, "ohat" if busy else "hat", 0.6))
        if energy > 0.6:
            for s in range(1, steps, 2):
                out.append((s, "hat", 0.25))
    elif kit == "chip":
        for s in [0, 8] if four else [0]:
            out.append((s, "chip_kick", 1.0))
        for s in [4, 12] if four else [4, 8]:
            out.append((s, "chip_snare", 0.9))
        for s in eighths:
            out.append((s, "chip_hat", 0.8 if s % 4 == 0 else 0.5))
    elif kit == "orchestral" and four and not slow:
        out += straight_orchestral(energy, alt)
    elif kit == "orchestral":
        # (The straight take keeps its hits on the beats: the 3+3+2 groove is the pushed
        # take's, ``syncopated_pattern``.)
        for s in beats:
            out.append((s, "taiko" if s % 8 == 0 else "taiko_hi", 1.0 if s == 0 else 0.75))
        if busy:
            # The shimmer follows the groove: backbeats and even eighths.
            jingles = [4, 12] if four else [s for s in beats if s]
            for s in jingles:
                out.append((s, "tambourine", 0.7))
            extra = [14] if alt and four else [6, 14] if alt else [3, 11]
            for s in extra:
                if s < steps:
                    out.append((s, "taiko_hi", 0.55))
            for s in range(2, steps, 4):
                out.append((s, "snare", 0.3))
            for s in eighths:  # a bright shimmer over the drums
                out.append((s, "shaker", 0.6 if s % 4 == 0 else 0.4))
        if energy > 0.85 and not slow:
            for s in range(3, steps, 8) if alt and four else range(2, steps, 4):
                out.append((s, "taiko_hi", 0.45))
        if slow and four:
            # Slow 4/4, the eighths between the beats ticked on the shaker: the straight
            # take's own figure (beats alone, it folded per bar like the half-time take's
            # beats, 0.82-0.89: a comet's arch plan at 96 BPM, a march at 88). The fourth
            # take strikes a sixteenth after the beat for that (``heartbeat_stroke``).
            # (At 0.5, with the snare there too, the comb heard TimGM6mb's siege at 92
            # BPM at twice its tempo.)
            out += [(s, "shaker", SLOW_EIGHTHS) for s in range(2, steps, 4)]
        elif slow and energy > 0.7:
            for s in range(2, steps, 4):
                out.append((s, "snare", 0.2))
    elif kit == "frame":
        out.append((0, "frame_lo", 1.0))
        if four:
            out.append((8, "frame_lo", 0.8))
            if alt:
                out.append((6, "frame_lo", 0.6))
        if bpm < 80 and four:
            # Slow: the low skin's 1 and 3 are half notes and the slap's eighths as fast
            # as a beat; a slap on 2 and 4 and the beats alone keep the written pulse.
            out += [(s, "frame_hi", 1.0 if s % 8 == 4 else 0.7) for s in beats]
        else:
            for s in eighths:
                out.append((s, "frame_hi", 0.7 if s % 4 == 0 else 0.4))
        if busy:
            for s in range(1, steps, 2):
                out.append((s, "shaker", 0.35))
    elif kit == "soft":  # a felt thump and a shaker on every beat: calm, but a clear pulse
        for s in beats:
            out.append((s, "frame_lo", 0.6 if s == 0 else 0.4))
            if bright > 0.45:
                out.append((s, "shaker", 0.45))
        if bpm >= 100:
            for s in range(2, steps, 4):
                out.append((s, "shaker", 0.25))
    elif kit == "tension":
        out.append((0, "taiko", 0.9))
        out.append((3 if alt else 2, "taiko", 0.5))
        # A muffled pulse on the other beats: the heartbeat alone (strong beat 1, nothing
        # on 2 and 4) is heard as half-bar accents, not as a beat.
        for s in beats:
            if s:
                out.append((s, "taiko_hi", 0.6 if s == 8 and four else 0.35))
        for s in eighths:
            out.append((s, "rim", 0.6 if s % 4 == 0 else 0.35))
    if felt is None and bpb == 3:
        # The straight waltz's oom-pah-pah: the beats alone (the eighths between them are
        # the flowing take's figure, the sixteenth pickups the driving one's).
        out = [h for h in out if h[0] % 4 == 0]
        # The low drum on the downbeat alone, beats 2 and 3 on the kit's light sound (a
        # low drum on 3 as on 1 was heard as the bar's "one").
        low, light, _ = _broad_three(kit)
        lows = {low, "kick", "taiko", "frame_lo", "chip_kick"}
        out = [(s, light if s and sound in lows else sound, v) for s, sound, v in out]
        out = [h for h in out if h[0] or h[1] in lows]  # the "oom": the low drum alone
    if first and kit not in {"soft", "lofi", "tension", "chip"}:
        out.append((0, "crash", 0.8 if energy > 0.5 else 0.5))
    if fill:
        # The roll is laid over the bar's own hits: the bar line after a fill is approached
        # like every other one, only busier (so a loop's seam does not stand out).
        roll = {
            "orchestral": "taiko_hi",
            "frame": "frame_hi",
            "chip": "chip_snare",
            "soft": "shaker",
            "tension": "taiko_hi",
            "lofi": "snare",
            "brush": "brush",
        }
        sound = roll.get(kit, "snare")
        step = 1 if energy > 0.55 else 2
        start = steps - 4
        for i, s in enumerate(range(start, steps, step)):
            out.append((s, sound, 0.45 + 0.5 * (i + 1) * step / 4))
        if kit in {"orchestral", "kit", "four"}:
            out.append((start, "taiko" if kit == "orchestral" else "kick", 0.9))
    return out


# The march kit (``palette.KIT_WORDS``: snare, side, field or military drums): a snare-led
# military drum part, a bass drum on the strong beats and a cymbal crash at each section's
# start. Its rudiments: a flam (a soft grace stroke this long before an accent), a drag
# (two grace strokes) and a roll in thirty-seconds into every phrase's end (every fourth
# bar, two beats long into a section's end).
GRACE_S = 0.03
SNARE = "fieldsnare"
MARCH_PHRASE_BARS = 4


# The half-time march's stroke a sixteenth after each beat (``march_pattern``).
HALFTIME_DOUBLE = 0.9


def _flam(step: float, vel: float, grace: float) -> list[tuple[float, str, float]]:
    """An accent with a soft grace stroke just before it."""
    return [(step - grace, SNARE, 0.35 * vel), (step, SNARE, vel)]


def _drag(step: float, vel: float, grace: float) -> list[tuple[float, str, float]]:
    """An accent with two soft grace strokes (a ruff) before it: a flam led in."""
    return [(step - 2 * grace, SNARE, 0.3 * vel), *_flam(step, vel, grace)]


def march_pattern(
    bpb: int,
    energy: float,
    roll_beats: int,
    first: bool,
    variant_bits: int,
    bpm: float,
    feel: str = "straight",
) -> list[tuple[float, str, float]]:
    """One bar of the march kit as (sixteenth step, sound, velocity) in the variant's
    ``feel``: straight, a street cadence (flams on 1 and 3, flams or drags on 2 and 4,
    taps on the off-beat eighths; the bass drum on 1 and 3); half-time, the bass drum on 1
    and a flammed backbeat on 3 over taps on 2 and 4, each beat doubled a sixteenth on;
    driving, a gallop (the accented sixteenth pickup into every beat); off-beat (a
    quickstep's oom-pah), a light bass drum on every beat and the snare's flams on the
    off-beat eighths. The last ``roll_beats`` beats roll into the next bar (crescendo)."""
    steps = bpb * 4
    grace = GRACE_S * bpm / 15.0  # in sixteenths
    alt = variant_bits & 1
    out: list[tuple[float, str, float]] = []
    if bpb != 4:
        # 2/4 and 3/4: the bass drum on the downbeat (and beat 2 of 2/4, lighter), a
        # flam on the downbeat, the other beats accented, a tap on each "and".
        out += [(0, "bassdrum", 1.0)] + ([(4, "bassdrum", 0.7)] if bpb == 2 else [])
        out += _flam(0, 0.9, grace)
        out += [(s, SNARE, 0.75) for s in range(4, steps, 4)]
        out += [(s, SNARE, 0.4) for s in range(2, steps, 4)]
    elif feel == "halftime":
        # Each beat's stroke doubled, the sixteenth after it as firm (as a ghost, 0.35,
        # masked by the beat's stroke in a tester's 22.05 kHz load, and with the bass drum
        # on the and of 3 and a tap on the and of 4, the straight and half-time takes
        # folded per bar 0.81-0.91 alike there).
        out += [(0, "bassdrum", 1.0)]
        out += _flam(0, 0.7, grace) + (_drag if alt else _flam)(8, 1.0, grace)
        out += [(4, SNARE, 0.55), (12, SNARE, 0.55)]
        out += [(s, SNARE, HALFTIME_DOUBLE) for s in (1, 5, 9, 13)]
    elif feel == "driving":
        # A gallop: the beats light (dragged on 1 and 3) and the accented sixteenth pickup
        # into each, nothing on the off-beat eighths (the straight take's taps), the bass
        # drum on 1 and 3.
        # (With flams on 2 and 4, taps on the off-beat eighths and the bass drum on every
        # beat, the straight and driving takes folded per bar 0.88-0.94 alike.)
        out += [(0, "bassdrum", 0.9), (8, "bassdrum", 0.6)]
        out += _drag(0, 0.55, grace) + _drag(8, 0.5, grace)  # (graces on the pickups)
        out += [(4, SNARE, 0.45), (12, SNARE, 0.45)]
        out += [(s, SNARE, 1.0) for s in (3, 7, 11, 15)]
    elif feel == "offbeat":
        # A quickstep's oom-pah: a light bass drum on every beat, the snare's flams on
        # the off-beat eighths.
        out += [(s, "bassdrum", 0.8 if s == 0 else 0.6) for s in (0, 4, 8, 12)]
        out += [h for s in (2, 6, 10, 14) for h in _flam(s, 1.0, grace)]
        if not alt:
            out += [(s, SNARE, 0.35) for s in (7, 15)]
    elif feel != "straight":
        # The other feels' figures (the triplet's shuffle, the pushes, the tresillo) on
        # the kit's drums, their snare accents flammed.
        for step, sound, vel in feel_pattern("march", feel, bpb, energy, bpm) or []:
            flam = sound == SNARE and vel >= 0.6 and step >= grace
            out += _flam(step, vel, grace) if flam else [(step, sound, vel)]
    else:
        out += [(0, "bassdrum", 1.0), (8, "bassdrum", 0.85)]
        out += _flam(0, 1.0, grace) + _flam(8, 0.9, grace)
        accent = _drag if alt else _flam
        out += accent(4, 0.85, grace) + accent(12, 0.85, grace)
        # Taps on the off-beat eighths (the sixteenths before the beats are the driving
        # take's accents).
        out += [(s, SNARE, 0.5) for s in (2, 6, 10, 14)]
    if roll_beats:
        # The roll replaces the snare's own strokes over its beats.
        start = steps - 4 * roll_beats
        out = [h for h in out if not (h[1] == SNARE and h[0] >= start - 1e-6)]
        n = 8 * roll_beats
        out += [(start + k / 2, SNARE, 0.35 + 0.5 * k / (n - 1)) for k in range(n)]
    if first:
        out.append((0, "crash", 0.8 if energy > 0.5 else 0.5))
    return out
