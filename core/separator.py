"""The interface a stem separator plugin implements, and what the pipeline does with its stems.

A mood with ``layers`` plays each layer as a stem of its track. The ``synth`` renders its
stems itself; for a generator that does not (``fal``, any song-making model), the pipeline
asks the score's **stem separator** (``separator:``, default ``demucs``, registered with
``segue_register_stem_separators``) to split the generated song into the mood's layers,
before post-processing, so that loop points, carving and fades are applied to the mix
and every stem alike (docs/pregeneration.md, "Stems").
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from segue.core.errors import PermanentError
from segue.core.request import GenerationRequest

__all__ = ["LayerError", "SeparatedStems", "StemSeparator", "fit_to_mix", "renders_stems"]


class LayerError(PermanentError):
    """A layer the separator cannot give (``layer``: its name in the score)."""

    def __init__(self, layer: str, message: str) -> None:
        super().__init__(message)
        self.layer = layer


@dataclass
class SeparatedStems:
    """What a separator made: one file per layer of the request, and what it cost.

    The files may be any format soundfile reads, at any rate and of about the mix's
    length: the pipeline fits them to the mix (:func:`fit_to_mix`).
    """

    stems: dict[str, Path]
    cost_usd: float = 0.0
    model: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class StemSeparator(Protocol):
    """Made by a factory registered with ``segue_register_stem_separators``.

    ``factory(config: dict, state_dir: Path)``; ``config`` is the score's ``separator``
    mapping without ``name``. Optional methods, as for generators: ``preflight()`` and
    ``cost_endpoint() -> (endpoint, production)`` (segue.core.ledger).
    """

    name: str
    model: str

    def check(self, request: GenerationRequest) -> None:
        """Raise :class:`LayerError` for a layer of ``request.layers`` it cannot give."""
        ...

    def estimate_cost(self, request: GenerationRequest) -> float:
        """US dollars separating the request's audio would cost."""
        ...

    async def separate(
        self, request: GenerationRequest, audio: Path, workdir: Path
    ) -> SeparatedStems:
        """Split ``audio`` into ``request.layers`` (files under ``workdir``); raise
        Transient, RateLimited or PermanentError like a generator."""
        ...

    async def aclose(self) -> None: ...


def renders_stems(generator: Any) -> bool:
    """Whether ``generator`` renders a request's layers as stems itself (``renders_stems``)."""
    return bool(getattr(generator, "renders_stems", False))


def fit_to_mix(
    mix: np.ndarray, stems: Mapping[str, np.ndarray], residual_to: str
) -> dict[str, np.ndarray]:
    """``stems`` cut or padded to the mix's frames and channels, summing to ``mix`` exactly.

    A separation model's stems sum to its own reconstruction of the song, not to the
    song: what they miss (the residual) is added to ``residual_to``, so that playing every
    stem at full gain is the mix, sample for sample.
    """
    frames, channels = mix.shape
    out: dict[str, np.ndarray] = {}
    for name, stem in stems.items():
        x = np.asarray(stem, dtype=np.float32)
        if x.ndim == 1:
            x = x[:, None]
        if x.shape[1] != channels:
            x = np.repeat(x.mean(axis=1, keepdims=True), channels, axis=1)
        fitted = np.zeros((frames, channels), dtype=np.float32)
        n = min(frames, x.shape[0])
        fitted[:n] = x[:n]
        out[name] = fitted
    if residual_to not in out:
        out[residual_to] = np.zeros((frames, channels), dtype=np.float32)
    total = np.sum(list(out.values()), axis=0, dtype=np.float64)
    out[residual_to] = (out[residual_to] + (mix.astype(np.float64) - total)).astype(np.float32)
    return out
