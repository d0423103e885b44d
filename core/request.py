"""GenerationRequest: everything a generator needs to make one track."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

# Bump when the meaning of a key's inputs changes, so old cache entries are not reused.
CACHE_KEY_VERSION = 1


@dataclass(frozen=True)
class GenerationRequest:
    mood: str
    variant: int
    prompt: str
    composition_plan: dict[str, Any] | None = None
    duration_s: float = 60.0
    instrumental: bool = True
    bpm: float | None = None
    key: str | None = None
    stinger: bool = False
    output_format: str = "ogg"
    generator: str = "synth"
    # Generator model and its audio-affecting parameters, and ``loudness_lufs``.
    params: dict[str, Any] = field(default_factory=dict)
    # The mood's layers (stem names, in the score's order): the generator renders each as
    # a stem when it can (docs/score.md#intensity-and-layers).
    layers: tuple[str, ...] = ()

    def replace(self, **changes: Any) -> GenerationRequest:
        """A copy with ``changes`` applied."""
        return dataclasses.replace(self, **changes)

    def key_fields(self) -> dict[str, Any]:
        """The fields that change the audio: all but the mood's name."""
        data = dataclasses.asdict(self)
        del data["mood"]
        if not data["layers"]:
            del data["layers"]  # moods without layers keep their cache keys
        data["v"] = CACHE_KEY_VERSION
        return data

    @functools.cached_property
    def cache_key(self) -> str:
        """SHA-256 hex of the canonical JSON of the audio-affecting fields (computed once)."""
        canonical = json.dumps(
            self.key_fields(), sort_keys=True, separators=(",", ":"), ensure_ascii=False
        )
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)
