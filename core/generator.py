"""The interface a music generator plugin implements."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from segue.core.request import GenerationRequest


@dataclass
class GeneratedAudio:
    """What a generator made: an audio file in the work folder, and what it knows of it.

    ``path`` may be any format soundfile reads (the pipeline decodes, post-processes and
    encodes it to the request's ``output_format``). Musical facts the generator knows
    (tempo, bar length, loop points) go in the optional fields; post-processing fills
    the ones left ``None``.
    """

    path: Path
    model: str
    cost_usd: float = 0.0
    bpm: float | None = None
    beats_per_bar: int | None = None
    first_beat_s: float | None = None
    loop: bool | None = None
    loop_start_s: float | None = None
    loop_end_s: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    # Stems the generator rendered (name -> file), sample-aligned with ``path``, same length.
    stems: dict[str, Path] = field(default_factory=dict)


@runtime_checkable
class Generator(Protocol):
    """Made by a factory registered with ``segue_register_generators``.

    ``factory(config: dict, state_dir: Path) -> Generator``; ``config`` is the score's
    ``generator`` mapping without ``name``. Raise ``segue.core.errors.ConfigError``
    for a configuration that cannot work.
    """

    name: str
    model: str
    concurrency: int

    def audio_params(self) -> dict[str, Any]:
        """The configuration that changes the audio (goes into the cache key)."""
        ...

    def estimate_cost(self, request: GenerationRequest) -> float:
        """US dollars this request would cost (0 for offline generators)."""
        ...

    def check(self, request: GenerationRequest) -> None:
        """Raise PermanentError if the request is outside the generator's limits."""
        ...

    # Optional: ``def preflight(self) -> None`` raises ConfigError when the generator cannot
    # work at all (a missing API key). The pipeline calls it before generating anything;
    # planning does not, so costs can be shown before credentials exist.
    # Optional: ``def idle(self) -> None``: no request will come but those in progress
    # (`segue pregen` calls it once its last request has started): what the generator
    # keeps for later requests (a synth's rendered voices) may go once they no longer need
    # it. A ``generate`` after it (a retry) must still work.

    async def generate(self, request: GenerationRequest, workdir: Path) -> GeneratedAudio:
        """Make the audio under ``workdir``; raise Transient, RateLimited or PermanentError."""
        ...

    async def aclose(self) -> None:
        """Release clients and sessions."""
        ...
