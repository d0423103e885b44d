"""The ``demucs`` stem separator: fal's ``fal-ai/demucs`` through fal-client.

For a mood with ``layers`` whose generator renders no stems (``fal``), the pipeline
sends the generated song here (docs/pregeneration.md, "Stems"). One ``separate`` call is
one attempt: submit the song (a ``data:`` URI: fal-client's uploads go to fal's own
storage hosts, which neither a test nor the emulator can stand in for), poll, fetch
the result, download each stem. Retrying is the pipeline's job, as for the generator.

Demucs gives ``vocals, drums, bass, other`` (and ``guitar, piano`` with the default
``htdemucs_6s``); :func:`assign` maps them onto the mood's layers (docs/score.md,
"Layers of a separated song").
"""

from __future__ import annotations

import difflib
import logging
import time
from pathlib import Path
from typing import Any

from segue.core.errors import ConfigError, GenerationError, PermanentError, TransientError
from segue.core.request import GenerationRequest
from segue.core.separator import LayerError, SeparatedStems
from segue.plugins.fal.endpoints import plan_total_s
from segue.plugins.fal.generator import CONTENT_EXTS, FalQueue, _number, check_options

log = logging.getLogger("segue.plugins.fal")

ENDPOINT = "fal-ai/demucs"
PRICE_PER_SECOND_USD = 0.0007  # fal's list price: per second of input audio

FOUR = ("vocals", "drums", "bass", "other")
SIX = (*FOUR, "guitar", "piano")
MODELS: dict[str, tuple[str, ...]] = {
    "htdemucs_6s": SIX,
    "htdemucs": FOUR,
    "htdemucs_ft": FOUR,
    "hdemucs_mmi": FOUR,
    "mdx": FOUR,
    "mdx_extra": FOUR,
    "mdx_q": FOUR,
    "mdx_extra_q": FOUR,
}
DEFAULT_MODEL = "htdemucs_6s"
OUTPUT_FORMATS = ("wav", "mp3")

# Where each demucs stem goes: the first of these layer names the mood has (docs/score.md).
# The synth's role names (melody, harmony) are here so one score serves both generators.
DESTINATIONS: dict[str, tuple[str, ...]] = {
    "vocals": ("vocals", "vocal", "voice", "melody"),
    "drums": ("drums", "percussion"),
    "bass": ("bass",),
    "guitar": ("guitar", "harmony"),
    "piano": ("piano", "keys", "harmony"),
    "other": ("other", "melody", "harmony"),
}
KNOWN_LAYERS = tuple(dict.fromkeys(name for names in DESTINATIONS.values() for name in names))

CONFIG_KEYS = (
    "model",
    "output_format",
    "price_per_second_usd",
    "input",
    "poll_interval_s",
    "timeout_s",
    "submit_timeout_s",
    "download_timeout_s",
    "max_download_mb",
    "with_logs",
)


def assign(model_stems: tuple[str, ...], layers: tuple[str, ...]) -> dict[str, str]:
    """Each demucs stem's layer: the first of its DESTINATIONS the layers have, else
    the first layer (so that the stems still sum to the song)."""
    out = {}
    for stem in model_stems:
        out[stem] = next((n for n in DESTINATIONS[stem] if n in layers), layers[0])
    return out


def layer_problem(model: str, layers: tuple[str, ...]) -> LayerError | None:
    """The first layer ``model`` cannot fill: an unknown name, or one no stem goes to."""
    stems = MODELS[model]
    for layer in layers:
        if layer not in KNOWN_LAYERS:
            near = difflib.get_close_matches(layer, KNOWN_LAYERS, n=1)
            hint = f" (did you mean {near[0]!r}?)" if near else ""
            return LayerError(
                layer,
                f"stem separation (demucs) cannot give a layer named {layer!r}{hint}: "
                f"name layers after {', '.join(KNOWN_LAYERS)} (docs/score.md), or use the "
                "synth generator",
            )
    filled = {dest for dest in assign(stems, layers).values()}
    for layer in layers:
        if layer not in filled:
            return LayerError(
                layer,
                f"demucs model {model} gives {', '.join(stems)}: no stem goes to layer "
                f"{layer!r} (docs/score.md)",
            )
    return None


class DemucsSeparator(FalQueue):
    """``separator: {name: demucs, model: htdemucs_6s, ...}`` (the default separator)."""

    name = "demucs"

    def __init__(self, config: dict[str, Any], state_dir: Path) -> None:
        config = dict(config or {})
        label = "separator demucs"
        check_options(label, config, CONFIG_KEYS)
        self.state_dir = Path(state_dir)
        self.model = ENDPOINT
        demucs = config.get("model", DEFAULT_MODEL)
        if demucs not in MODELS:
            raise ConfigError(f"{label}: unknown model {demucs!r}; known: {', '.join(MODELS)}")
        self.demucs_model: str = demucs
        fmt = config.get("output_format", "wav")
        if fmt not in OUTPUT_FORMATS:
            raise ConfigError(f"{label}: output_format must be one of {', '.join(OUTPUT_FORMATS)}")
        self.output_format = fmt
        self.price_usd = _number(
            label, config, "price_per_second_usd", PRICE_PER_SECOND_USD, 0.0, 10.0
        )
        extra = config.get("input", {})
        if not isinstance(extra, dict):
            raise ConfigError(f"{label}: input must be a mapping of extra endpoint fields")
        self.extra_input: dict[str, Any] = dict(extra)
        self._init_queue(config, label)

    # -- the StemSeparator protocol -----------------------------------------------------

    def check(self, request: GenerationRequest) -> None:
        if request.layers:
            problem = layer_problem(self.demucs_model, tuple(request.layers))
            if problem is not None:
                raise problem

    def estimate_cost(self, request: GenerationRequest) -> float:
        seconds = float(request.duration_s)
        if request.composition_plan:
            seconds = plan_total_s(request.composition_plan) or seconds
        return self.cost(seconds)

    def cost(self, seconds: float) -> float:
        return round(max(0.0, seconds) * self.price_usd, 6)

    async def separate(
        self, request: GenerationRequest, audio: Path, workdir: Path
    ) -> SeparatedStems:
        import soundfile

        self.preflight()
        self.check(request)
        layers = tuple(request.layers)
        try:
            seconds = float(soundfile.info(str(audio)).duration)
        except Exception as exc:
            raise PermanentError(f"fal demucs: cannot read the song: {exc}") from None
        arguments = {
            **self.extra_input,
            "audio_url": _data_uri(audio),
            "model": self.demucs_model,
            "output_format": self.output_format,
        }
        started = time.monotonic()
        request_id, result = await self._run(arguments, request)
        cost = self.cost(seconds)
        workdir = Path(workdir)
        try:
            files = {}
            for stem in MODELS[self.demucs_model]:
                if result.get(stem) is None:
                    raise TransientError(f"fal result: {request_id} has no {stem} stem")
                url, meta = self._audio_url(result, request_id, stem)
                path = await self._download(url, meta, workdir, f"{request_id}-{stem}")
                self._verify(path, request_id)
                files[stem] = path
            stems = self._merge(files, layers, workdir)
        except GenerationError as exc:
            exc.cost_usd = cost  # type: ignore[attr-defined]  # the run was billed
            raise
        log.debug("fal: %s separated in %.1f s", request_id, time.monotonic() - started)
        destinations = assign(MODELS[self.demucs_model], layers)
        return SeparatedStems(
            stems=stems,
            cost_usd=cost,
            model=f"{ENDPOINT} {self.demucs_model}",
            extra={
                "request_id": request_id,
                "endpoint": ENDPOINT,
                "demucs_model": self.demucs_model,
                "stems": destinations,
                "residual_to": destinations.get("other", layers[0]),
            },
        )

    def _merge(self, files: dict[str, Path], layers: tuple[str, ...], workdir: Path) -> dict:
        """One file per layer: the sum of the demucs stems that go to it."""
        import numpy as np

        from segue.core import audio

        destinations = assign(MODELS[self.demucs_model], layers)
        sums: dict[str, np.ndarray] = {}
        rate = 0
        for stem, path in files.items():
            try:
                x, sr = audio.read(path)
            except audio.AudioError as exc:
                raise TransientError(f"fal demucs: stem {stem}: {exc}") from None
            if rate and sr != rate:
                x = audio.resample(x, sr, rate)
            rate = rate or sr
            dest = destinations[stem]
            if dest in sums:
                n = max(len(sums[dest]), len(x))
                total = np.zeros((n, max(sums[dest].shape[1], x.shape[1])), np.float32)
                total[: len(sums[dest]), : sums[dest].shape[1]] += sums[dest]
                total[: len(x), : x.shape[1]] += x
                sums[dest] = total
            else:
                sums[dest] = x
        out = {}
        for k, layer in enumerate(layers):
            path = workdir / f"demucs-layer-{k}.wav"
            audio.write_float_wav(path, sums[layer], rate)
            out[layer] = path
        return out


def _data_uri(path: Path) -> str:
    """The song as a ``data:`` URI (base64). Uncompressed audio (a WAV) goes as FLAC,
    lossless and about half the size; anything else as it is."""
    import base64

    from segue.core import audio

    suffix = path.suffix.lower()
    if suffix in (".wav", ".pcm"):
        try:
            samples, rate = audio.read(path)
            data, ctype = audio.encode(samples, rate, "flac", name=path.name), "audio/flac"
        except audio.AudioError as exc:
            raise PermanentError(f"fal demucs: cannot read the song: {exc}") from None
    else:
        types = {ext: ctype for ctype, ext in CONTENT_EXTS.items()}
        ctype = {".mp3": "audio/mpeg", ".ogg": "audio/ogg"}.get(
            suffix, types.get(suffix, "application/octet-stream")
        )
        data = path.read_bytes()
    return f"data:{ctype};base64,{base64.b64encode(data).decode('ascii')}"


def make_separator(config: dict[str, Any], state_dir: Path) -> DemucsSeparator:
    """The factory registered as ``demucs``."""
    return DemucsSeparator(config, state_dir)
