"""From an arrangement to samples: place notes, mix, add space, fold the tail, set the level."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import soundfile as sf

from segue.core.request import GenerationRequest
from segue.core.seams import measure_seam
from segue.plugins.synth.arrangement import Arrangement
from segue.plugins.synth.composer import compose
from segue.plugins.synth.drums import DRUM_PAN, DRUM_SEND, make_sound
from segue.plugins.synth.effects import fold, limit, wet
from segue.plugins.synth.instruments import Workspace, midi_hz, render_note

SAMPLE_RATE = 44100
TARGET_RMS = 10 ** (-19.5 / 20)  # about -18 LUFS for a typical mix
CEILING = 10 ** (-1.5 / 20)
TAKES = 4  # renderings of a loop tried for a seam that passes the pipeline's check
_SFC_SET_ADD_PEAK_CHUNK = 0x1050


def _pan(pan: float) -> tuple[float, float]:
    a = (pan + 1.0) * math.pi / 4
    return math.cos(a) * math.sqrt(2), math.sin(a) * math.sqrt(2)


# Where a part goes when no layer has its role's name (docs/score.md#intensity-and-layers).
STEM_ALIASES = {"arp": "harmony", "counter": "melody", "drums": "percussion"}


def stem_of(role: str, voice: str, layers: tuple[str, ...]) -> str:
    """The layer (stem) a part is rendered into: its role's name, ``drums`` for drum parts,
    an alias (arp -> harmony, counter -> melody), else the first layer."""
    if voice.startswith("drum:") and "drums" in layers:
        return "drums"
    if role in layers:
        return role
    alias = STEM_ALIASES.get(role)
    if alias in layers:
        return alias
    return layers[0]


def render_arrangement(arr: Arrangement, sr: int = SAMPLE_RATE, take: int = 0) -> np.ndarray:
    """The arrangement as (n, 2) float32 samples: a whole loop, or the stinger's length.

    ``take`` reseeds what a performance varies (the start phase of each note, the noise in
    plucks and drum hits), not the notes.
    """
    return _render(arr, sr, take, None)[0]


def render_stems(
    arr: Arrangement, layers: tuple[str, ...], sr: int = SAMPLE_RATE, take: int = 0
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """The mix and one stem per layer, each (n, 2) float32; the stems sum to the mix.

    Every part goes into one stem (``stem_of``), with its own reverb and echoes; what the
    master does to the mix (level, limiter) is applied to each stem as the same per-sample
    gain, and the lo-fi noise goes into the first stem.
    """
    return _render(arr, sr, take, layers)  # type: ignore[return-value]


def _render(
    arr: Arrangement, sr: int, take: int, layers: tuple[str, ...] | None
) -> tuple[np.ndarray, dict[str, np.ndarray] | None]:
    spb = 60.0 / arr.bpm * sr
    if arr.loop:
        length = round(arr.length_beats * spb)
    else:
        length = round((arr.length_s or arr.length_beats * 60.0 / arr.bpm) * sr)
    rt60 = 0.9 + 3.2 * arr.space
    tail = int((rt60 * 1.1 + 3.0) * sr)
    total = length + tail
    names = layers or ("mix",)
    mixes = {g: np.zeros((2, total), dtype=np.float32) for g in names}
    sends = {g: np.zeros(total, dtype=np.float32) for g in names}
    echoes = {g: np.zeros(total, dtype=np.float32) for g in names}
    ws = Workspace(sr)
    drum_cache: dict[tuple[str, float, float], np.ndarray] = {}
    swing_off = arr.swing * spb / 2  # late off-beat eighths
    for pi, part in enumerate(arr.parts):
        group = stem_of(part.role, part.voice, layers) if layers else "mix"
        mix, send, echo = mixes[group], sends[group], echoes[group]
        gl, gr = _pan(part.pan)
        is_drum = part.voice.startswith("drum:")
        sound = part.voice[5:] if is_drum else ""
        if is_drum:
            gl, gr = _pan(DRUM_PAN.get(sound, 0.0))
        send_gain = DRUM_SEND.get(sound, part.send) if is_drum else part.send
        for k, note in enumerate(part.notes):
            start_f = note.t * spb
            if swing_off and abs((note.t * 2) % 2 - 1.0) < 1e-6:
                start_f += swing_off
            start = round(start_f)
            if start >= total:
                continue
            if is_drum:
                b = round(note.b * 4) / 4
                key = (sound, b, note.p)
                buf = drum_cache.get(key)
                if buf is None:
                    buf = make_sound(
                        sound,
                        sr,
                        b,
                        arr.seed % 1000 + len(drum_cache) + 7919 * take,
                        midi_hz(note.p) if note.p else 0.0,
                    )
                    drum_cache[key] = buf
            else:
                buf = render_note(
                    ws, part.voice, note.p, note.d * 60.0 / arr.bpm, note.b, pi * 7 + k, take
                )
            amp = note.v * part.gain
            n = min(buf.shape[-1], total - start)
            end = start + n
            if buf.ndim == 1:
                seg = buf[:n] * np.float32(amp)
                mix[0, start:end] += seg * np.float32(gl)
                mix[1, start:end] += seg * np.float32(gr)
                mono = seg
            else:
                seg = buf[:, :n] * np.float32(amp)
                bal_l, bal_r = (1.0, 1.0) if part.pan == 0 else (gl, gr)
                mix[0, start:end] += seg[0] * np.float32(bal_l)
                mix[1, start:end] += seg[1] * np.float32(bal_r)
                mono = (seg[0] + seg[1]) * np.float32(0.5)
            if send_gain:
                send[start:end] += mono * np.float32(send_gain)
            if part.echo:
                echo[start:end] += mono * np.float32(part.echo)
    beat_s = 60.0 / arr.bpm
    echo_s = beat_s * 0.75
    while echo_s < 0.25:
        echo_s *= 2
    any_echo = bool(arr.parts) and any(p.echo for p in arr.parts)
    outs = {}
    for g in names:
        mix = mixes.pop(g)
        reverb = wet(
            sends.pop(g),
            echoes.pop(g) if any_echo else None,
            sr,
            rt60,
            arr.brightness,
            echo_s,
            0.45,
            arr.seed % 100000 + take,
        )
        mix += reverb * np.float32(0.55)
        del reverb
        if arr.loop:
            out = fold(mix, length)
        else:
            out = mix[:, :length].copy()
            fade = min(length, int(0.35 * sr))
            out[:, -fade:] *= np.cos(np.linspace(0, np.pi / 2, fade, dtype=np.float32)) ** 2
        outs[g] = out
        del mix
    if arr.lofi:
        outs[names[0]] += _vinyl(length, sr, arr.seed)
    out = outs[names[0]] if len(names) == 1 else np.sum(list(outs.values()), axis=0)
    rms = float(np.sqrt(np.mean(np.square(out, dtype=np.float64))))
    gain = np.float32(TARGET_RMS / rms) if rms > 0 else np.float32(1.0)
    limited = limit(out * gain, sr, CEILING, circular=arr.loop)
    # A stinger's tail must reach true silence; the cos fade above leaves it at exactly 0.
    if layers is None:
        return np.ascontiguousarray(limited.T, dtype=np.float32), None
    # The limiter is a gain per sample (the same on both channels): the stems take it too.
    level = _limiter_gain(out * gain, limited) * gain
    stems = {g: np.ascontiguousarray((x * level).T, dtype=np.float32) for g, x in outs.items()}
    mix_out = np.sum(list(stems.values()), axis=0, dtype=np.float32)
    return np.ascontiguousarray(mix_out), stems


def _limiter_gain(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The per-sample gain ``g`` with ``y = x * g`` (both (2, n)); 1 where ``x`` is silent."""
    den = np.einsum("ij,ij->j", x.astype(np.float64), x.astype(np.float64))
    num = np.einsum("ij,ij->j", x.astype(np.float64), y.astype(np.float64))
    ok = den > 1e-24
    return np.where(ok, num / np.where(ok, den, 1.0), 1.0).astype(np.float32)


def _vinyl(n: int, sr: int, seed: int) -> np.ndarray:
    """Lo-fi: a little hiss and sparse crackle (stationary, so it loops without a seam)."""
    rng = np.random.default_rng(seed % 2**32)
    hiss = rng.standard_normal((2, n)).astype(np.float32) * np.float32(0.0025)
    clicks = np.zeros((2, n), dtype=np.float32)
    count = max(1, int(n / sr * 6))
    pos = rng.integers(0, n - 8, count)
    amp = rng.uniform(0.01, 0.05, count).astype(np.float32)
    for k in range(4):
        clicks[:, pos + k] += amp * np.float32(0.5**k)
    return hiss + clicks


def write_wav(path: Path, samples: np.ndarray, sr: int) -> None:
    """Float WAV without libsndfile's PEAK chunk, whose timestamp would make bytes differ."""
    with sf.SoundFile(path, "w", sr, samples.shape[1], subtype="FLOAT", format="WAV") as f:
        try:
            from soundfile import _ffi, _snd  # type: ignore[attr-defined]

            _snd.sf_command(f._file, _SFC_SET_ADD_PEAK_CHUNK, _ffi.NULL, 0)
        except (ImportError, AttributeError):  # pragma: no cover - other soundfile builds
            pass
        f.write(samples)


def render_request(
    request: GenerationRequest, sr: int = SAMPLE_RATE
) -> tuple[Arrangement, np.ndarray]:
    """Compose and render ``request``: (arrangement, (n, 2) float32 samples)."""
    arr, samples, _ = render_request_stems(request, sr)
    return arr, samples


def render_request_stems(
    request: GenerationRequest, sr: int = SAMPLE_RATE
) -> tuple[Arrangement, np.ndarray, dict[str, np.ndarray]]:
    """``render_request`` plus a stem per layer of the request (none without layers).

    The take is chosen on the mix alone; the stems are then rendered from that take, and
    the mix returned is their sum (so they sum to it exactly).
    """
    arr = compose(request)
    samples = render_arrangement(arr, sr)
    take = 0
    if arr.loop and arr.bars >= 2:
        samples, take = _seamless_take(arr, sr, samples)
    if not request.layers:
        return arr, samples, {}
    mix, stems = render_stems(arr, tuple(request.layers), sr, take)
    return arr, mix, stems


def _seam_excess(seam: dict[str, float | bool]) -> float:
    """How far a seam is over the limits of ``segue.core.seams.measure_seam`` (<= 0: within).

    Without the check's own margins (1 % on the jump, 5 % on the flux, 0.5 dB on the
    level steps): they are left for what comes after, loudness and a lossy codec, which
    move these figures a little, so the decoded file passes the same check.
    """
    s = {k: float(v) for k, v in seam.items()}
    return max(
        s["jump"] / max(s["jump_limit"], 1e-9) - 1.0,
        s["flux"] / max(s["flux_limit"], 1e-9) - 1.0,
        (s["level_step_db"] - s["level_step_limit_db"]) / 10.0,
        (s["level_step_long_db"] - s["level_step_long_limit_db"]) / 10.0,
    )


def _seamless_take(arr: Arrangement, sr: int, first: np.ndarray) -> tuple[np.ndarray, int]:
    """The first take whose seam passes the pipeline's own seam check, else the closest.

    The composition makes the seam the calmest bar line (see ``composer``), but in a loop
    of two or three bars the one or two bar lines it is compared with can, by the chance
    of how notes' partials add up on their downbeats, be calmer still. Another take (new
    note phases, pluck and drum noise, reverb) of the same notes settles it.
    """
    bar_s = arr.beats_per_bar * 60.0 / arr.bpm
    best, best_take, best_excess = first, 0, math.inf
    for take in range(TAKES):
        x = first if take == 0 else render_arrangement(arr, sr, take)
        seam = measure_seam(x, sr, 0, x.shape[0], bar_s)
        excess = _seam_excess(seam)
        if seam["ok"] and excess <= 0:
            return x, take
        if excess < best_excess:
            best, best_take, best_excess = x, take, excess
    return best, best_take
