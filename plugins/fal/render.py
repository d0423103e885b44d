"""Audio for the fal emulator: song-shaped, cut to length and encoded like fal.

The emulator must answer like a text-to-music model, with real audio of the requested
length and format, so tests can decode and measure what the ``fal`` generator
downloaded. A model answers with a *song*: the music comes from the ``synth`` generator
(looked up in segue's generator registry, so absent when that plugin is disabled; then a
small numpy fallback) and is shaped like one
(``song_shape``): a tempo a few percent off the prompt's, an intro that swells in and a
fade-out at the end. With ``audio_dir`` (``segue fal-emulator --audio-dir DIR``) the
answers are real recordings from DIR instead, one chosen per request deterministically
and cut to the requested length.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import logging
import math
import re
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import soundfile

from segue.core import audio as core_audio

log = logging.getLogger("segue.plugins.fal.emulator")

RATE = 44100

# Content type and file extension of each encoding the emulator serves.
ENCODINGS = {
    "mp3": ("audio/mpeg", ".mp3"),
    "opus": ("audio/ogg", ".ogg"),
    "pcm": ("audio/pcm", ".pcm"),
    "ulaw": ("audio/basic", ".ulaw"),
    "alaw": ("audio/basic", ".alaw"),
    "wav": ("audio/wav", ".wav"),
}


def _synth_factory() -> Callable[..., Any] | None:
    """The ``synth`` generator's factory, from segue's plugin registry.

    Looked up by name like any generator (a plugin never imports another plugin's modules):
    None when no plugin registers ``synth`` (disabled, or not installed).
    """
    from segue.core.plugins import get_plugins

    try:
        generators = get_plugins().generators
    except Exception as exc:  # a broken plugin set must not break the emulator
        log.warning("fal emulator: plugins unusable (%s); using a plain tone", exc)
        return None
    registration = generators.entries.get("synth")
    return registration.factory if registration is not None else None


# The synth's layers as demucs would name them (the emulator's answer to fal-ai/demucs
# for its own songs): drums and bass are themselves, chords sound like a piano's part,
# the tune goes to "other"; an instrumental song has no vocals, and no guitar here.
SYNTH_STEMS = {"drums": "drums", "bass": "bass", "harmony": "piano", "melody": "other"}


def _from_synth(
    prompt: str,
    plan: dict[str, Any] | None,
    seconds: float,
    instrumental: bool,
    stems: dict[str, np.ndarray] | None = None,
) -> np.ndarray | None:
    """The synth's song; with ``stems`` (a dict to fill), its stems by demucs' names too."""
    factory = _synth_factory()
    if factory is None:
        return None
    from segue.core.request import GenerationRequest

    # A song states its material more than once: a song-length answer is the synth's loop
    # (whole bars that loop seamlessly) played round twice, so it holds a loop to carve, as
    # a model's songs do; one pass of a longer loop holds one only by chance.
    repeats = 2 if seconds >= SONG_MIN_S else 1

    request = GenerationRequest(
        mood="fal-emulator",
        variant=0,
        prompt=prompt or "",
        composition_plan=plan,
        duration_s=float(seconds) / repeats,
        instrumental=instrumental,
        output_format="wav",
        generator="synth",
        layers=tuple(SYNTH_STEMS) if stems is not None else (),
    )

    async def make(workdir: Path) -> np.ndarray:
        generator = factory({}, workdir)
        try:
            made = await generator.generate(request, workdir)
            data, rate = soundfile.read(str(made.path), dtype="float32", always_2d=True)
            if stems is not None:
                for name, path in made.stems.items():
                    x, sr = soundfile.read(str(path), dtype="float32", always_2d=True)
                    stems[SYNTH_STEMS.get(name, "other")] = resample(
                        _round(x, sr, seconds, repeats), sr, RATE
                    )
            data = _round(data, rate, seconds, repeats)
        finally:
            await generator.aclose()
        return resample(data, rate, RATE)

    try:
        with tempfile.TemporaryDirectory(prefix="segue-fal-emu-") as tmp:
            return asyncio.run(make(Path(tmp)))
    except Exception as exc:
        log.warning(
            "fal emulator: synth failed (%s: %s); using a plain tone", type(exc).__name__, exc
        )
        return None


def _round(loop: np.ndarray, rate: int, seconds: float, repeats: int) -> np.ndarray:
    """``loop`` played round ``repeats`` times or more, until it lasts ``seconds``; one pass
    as it is (a short answer shorter than asked ends in silence, as before)."""
    if repeats <= 1:
        return loop
    passes = max(repeats, math.ceil(seconds * rate / max(1, len(loop)) - 1e-9))
    return np.tile(loop, (passes, 1))


def _fallback(prompt: str, plan: dict[str, Any] | None, seconds: float) -> np.ndarray:
    """A chord pulsing on the beat (tempo from "NNN BPM" in the prompt), stereo."""
    text = prompt + " " + " ".join(str(s) for s in (plan or {}).get("positive_global_styles", []))
    match = re.search(r"(\d{2,3})\s*bpm", text, re.IGNORECASE)
    bpm = float(match.group(1)) if match else 100.0
    seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "little")
    root = 110.0 * 2 ** ((seed % 12) / 12)
    minor = any(w in text.lower() for w in ("minor", "dark", "tense", "sad", "danger"))
    n = max(1, round(seconds * RATE))
    t = np.arange(n) / RATE
    third = 2 ** ((3 if minor else 4) / 12)
    tone = sum(np.sin(2 * np.pi * root * r * t) for r in (1.0, third, 1.5, 2.0)) / 4
    beat = (t * bpm / 60.0) % 1.0
    envelope = 0.35 + 0.65 * np.exp(-beat * 6.0)
    mono = (0.4 * tone * envelope).astype(np.float32)
    return np.stack([mono, mono * 0.95], axis=1)


def resample(data: np.ndarray, rate: int, target: int) -> np.ndarray:
    """Linear-interpolation resampling (good enough for an emulator's test audio)."""
    if rate == target or len(data) == 0:
        return data.astype(np.float32)
    n = max(1, round(len(data) * target / rate))
    x_old = np.arange(len(data)) / rate
    x_new = np.arange(n) / target
    channels = [np.interp(x_new, x_old, data[:, c]) for c in range(data.shape[1])]
    return np.stack(channels, axis=1).astype(np.float32)


# Song shape: answers this long or longer get an intro and an ending.
SONG_MIN_S = 10.0
INTRO_S = 2.0
FADE_OUT_S = 4.0
# The tempo is off the prompt's by one of these factors (a model's tempo is near, not exact).
TEMPO_FACTORS = (0.97, 0.98, 1.02, 1.03)
AUDIO_SUFFIXES = (".ogg", ".wav", ".flac", ".mp3", ".opus")


def _choice(prompt: str, plan: dict[str, Any] | None, seconds: float) -> int:
    """A number fixed by the request, so the same request gets the same answer."""
    text = f"{prompt}|{plan!r}|{seconds:g}"
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "little")


def song_shape(data: np.ndarray, factor: float) -> np.ndarray:
    """``data`` played ``factor`` times as fast, with a swelling intro and a fade-out."""
    n = len(data)
    out = resample(data, RATE, round(RATE / factor))[:n]
    if len(out) < n:
        out = np.concatenate([out, np.zeros((n - len(out), out.shape[1]), np.float32)])
    intro = min(n // 4, round(INTRO_S * RATE))
    if intro:
        out[:intro] *= np.linspace(0.15, 1.0, intro, dtype=np.float32)[:, None]
    fade = min(n // 4, round(FADE_OUT_S * RATE))
    if fade:
        out[-fade:] *= (np.cos(np.linspace(0.0, np.pi / 2, fade)) ** 2).astype(np.float32)[:, None]
    return out


def audio_files(audio_dir: Path) -> list[Path]:
    """The recordings in ``audio_dir`` the emulator answers with, sorted by name."""
    return sorted(
        p for p in Path(audio_dir).rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES and p.is_file()
    )


def from_dir(audio_dir: Path, key: int, seconds: float) -> np.ndarray:
    """A recording from ``audio_dir`` (the ``key``-th, cyclically), cut to ``seconds``.

    Cut mid-song, the answer fades out over its last seconds, as a model's would; a
    recording shorter than asked is padded with silence (the song ended early).
    """
    files = audio_files(audio_dir)
    if not files:
        raise ValueError(f"{audio_dir}: no audio files ({', '.join(AUDIO_SUFFIXES)})")
    path = files[key % len(files)]
    with soundfile.SoundFile(str(path)) as f:
        rate = f.samplerate
        data = f.read(round(seconds * rate) + 1, dtype="float32", always_2d=True)
        cut = f.tell() < f.frames
    data = resample(data, rate, RATE)
    n = max(1, round(seconds * RATE))
    if cut:
        data = data[:n]
        fade = min(n // 4, round(FADE_OUT_S * RATE))
        ramp = np.cos(np.linspace(0.0, np.pi / 2, fade)) ** 2
        data[-fade:] *= ramp.astype(np.float32)[:, None]
    return data


def render(
    prompt: str,
    plan: dict[str, Any] | None,
    seconds: float,
    instrumental: bool = True,
    use_synth: bool = True,
    audio_dir: Path | None = None,
) -> np.ndarray:
    """``seconds`` of stereo float32 audio at 44.1 kHz for this prompt or plan."""
    key = _choice(prompt, plan, seconds)
    if audio_dir is not None:
        data = from_dir(audio_dir, key, seconds)
    else:
        data = _from_synth(prompt, plan, seconds, instrumental) if use_synth else None
        if data is None:
            data = _fallback(prompt, plan, seconds)
        data = _song(data, seconds, key)
    return np.clip(_cut(data, seconds), -1.0, 1.0).astype(np.float32)


def render_stems(
    prompt: str, plan: dict[str, Any] | None, seconds: float, instrumental: bool = True
) -> dict[str, np.ndarray]:
    """The stems of what :func:`render` makes from the synth (by demucs' stem names),
    shaped and cut alike; empty when the synth is unavailable. They sum to the song
    before its final clipping."""
    stems: dict[str, np.ndarray] = {}
    if _from_synth(prompt, plan, seconds, instrumental, stems) is None:
        return {}
    key = _choice(prompt, plan, seconds)
    return {name: _cut(_song(x, seconds, key), seconds) for name, x in stems.items()}


def _song(data: np.ndarray, seconds: float, key: int) -> np.ndarray:
    if seconds >= SONG_MIN_S:
        return song_shape(data, TEMPO_FACTORS[key % len(TEMPO_FACTORS)])
    return data


def _cut(data: np.ndarray, seconds: float) -> np.ndarray:
    """Stereo, exactly ``seconds`` long, with 10 ms fades at both ends."""
    n = max(1, round(seconds * RATE))
    if data.shape[1] == 1:
        data = np.repeat(data, 2, axis=1)
    if len(data) >= n:
        data = data[:n]
    else:
        data = np.concatenate([data, np.zeros((n - len(data), data.shape[1]), np.float32)])
    # Short fades: a cut mid-waveform would click.
    fade = min(n // 4, int(0.01 * RATE))
    if fade:
        ramp = np.linspace(0.0, 1.0, fade, dtype=np.float32)[:, None]
        data[:fade] *= ramp
        data[-fade:] *= ramp[::-1]
    return data


def encode(data: np.ndarray, output_format: str) -> tuple[bytes, str, str]:
    """Encode 44.1 kHz stereo ``data`` as fal would serve ``output_format``.

    Returns (bytes, content type, extension). ``output_format`` is Eleven Music's
    ``codec_rate[_kbps]`` (``mp3_44100_128``, ``opus_48000_64``, ``pcm_24000``…) or
    ``wav``/``mp3`` for the other endpoints.
    """
    parts = output_format.split("_")
    codec = parts[0]
    rate = int(parts[1]) if len(parts) > 1 else RATE
    kbps = int(parts[2]) if len(parts) > 2 else 128
    content_type, ext = ENCODINGS[codec]
    audio = resample(data, RATE, rate)
    buf = io.BytesIO()
    if codec in ("mp3", "opus"):
        # segue's own encoders (LAME, libopus): several times faster than libsndfile's.
        # A codec's error is the emulator's own bug: it surfaces as a 500, as before.
        buf.write(core_audio.encode(audio, rate, codec, bitrate=kbps * 1000))
    elif codec == "pcm":
        # Raw 16-bit little-endian mono, no header (ElevenLabs' pcm_* formats).
        mono = audio.mean(axis=1)
        buf.write((np.clip(mono, -1, 1) * 32767).astype("<i2").tobytes())
    elif codec in ("ulaw", "alaw"):
        soundfile.write(buf, audio.mean(axis=1), rate, format="RAW", subtype=codec.upper())
    else:
        soundfile.write(buf, audio, rate, format="WAV", subtype="PCM_16")
    return buf.getvalue(), content_type, ext
