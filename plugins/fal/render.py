"""Audio for the fal emulator: made by segue's synth, cut to length and encoded like fal.

The emulator must answer with real audio of the requested length and format, so tests
can decode and measure what the ``fal`` generator downloaded. The music comes from the
``synth`` generator when its plugin is installed, else from a small numpy fallback.
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib
import io
import logging
import re
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import soundfile

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
    """The ``synth`` generator's factory, from its plugin's registration hook."""
    try:
        module = importlib.import_module("segue.plugins.synth")
    except ImportError:
        return None
    hook = getattr(module, "segue_register_generators", None)
    if hook is None:
        return None
    found: dict[str, Callable[..., Any]] = {}
    try:
        hook(register=lambda name, factory: found.setdefault(name, factory))
    except Exception as exc:  # a broken synth must not break the emulator
        log.warning("fal emulator: synth plugin unusable (%s); using a plain tone", exc)
        return None
    return found.get("synth")


def _from_synth(
    prompt: str, plan: dict[str, Any] | None, seconds: float, instrumental: bool
) -> np.ndarray | None:
    factory = _synth_factory()
    if factory is None:
        return None
    from segue.core.request import GenerationRequest

    request = GenerationRequest(
        mood="fal-emulator",
        variant=0,
        prompt=prompt or "",
        composition_plan=plan,
        duration_s=float(seconds),
        instrumental=instrumental,
        output_format="wav",
        generator="synth",
    )

    async def make(workdir: Path) -> np.ndarray:
        generator = factory({}, workdir)
        try:
            made = await generator.generate(request, workdir)
            data, rate = soundfile.read(str(made.path), dtype="float32", always_2d=True)
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


def render(
    prompt: str,
    plan: dict[str, Any] | None,
    seconds: float,
    instrumental: bool = True,
    use_synth: bool = True,
) -> np.ndarray:
    """``seconds`` of stereo float32 audio at 44.1 kHz for this prompt or plan."""
    data = _from_synth(prompt, plan, seconds, instrumental) if use_synth else None
    if data is None:
        data = _fallback(prompt, plan, seconds)
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
    return np.clip(data, -1.0, 1.0).astype(np.float32)


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
    if codec == "mp3":
        # libsndfile maps compression level 0..1 onto 320..32 kbps (constant bitrate).
        level = min(0.99, max(0.0, (320 - kbps) / 288))
        soundfile.write(
            buf,
            audio,
            rate,
            format="MP3",
            subtype="MPEG_LAYER_III",
            bitrate_mode="CONSTANT",
            compression_level=level,
        )
    elif codec == "opus":
        level = min(0.99, max(0.0, 1.0 - kbps / 512))
        soundfile.write(buf, audio, rate, format="OGG", subtype="OPUS", compression_level=level)
    elif codec == "pcm":
        # Raw 16-bit little-endian mono, no header (ElevenLabs' pcm_* formats).
        mono = audio.mean(axis=1)
        buf.write((np.clip(mono, -1, 1) * 32767).astype("<i2").tobytes())
    elif codec in ("ulaw", "alaw"):
        soundfile.write(buf, audio.mean(axis=1), rate, format="RAW", subtype=codec.upper())
    else:
        soundfile.write(buf, audio, rate, format="WAV", subtype="PCM_16")
    return buf.getvalue(), content_type, ext
