"""Track: a generated, stored audio file and its metadata (docs/protocol.md, `cue`)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

CONTENT_TYPES: dict[str, str] = {
    "ogg": "audio/ogg",
    "opus": "audio/ogg; codecs=opus",
    "mp3": "audio/mpeg",
    "flac": "audio/flac",
    "wav": "audio/wav",
}
FORMATS = tuple(CONTENT_TYPES)


@dataclass(frozen=True)
class Track:
    id: str
    mood: str
    variant: int
    format: str
    duration_s: float
    bpm: float | None = None
    beats_per_bar: int = 4
    first_beat_s: float = 0.0
    loop: bool = True
    loop_start_s: float = 0.0
    loop_end_s: float | None = None
    loudness_lufs: float | None = None
    bytes: int = 0
    sha256: str = ""
    generator: str = ""
    model: str = ""
    prompt: str = ""
    cost_usd: float = 0.0
    created_at: str = ""
    # Anything else a plugin wants to record (analysis results, warnings); kept in the cache.
    extra: dict[str, Any] = field(default_factory=dict)
    # The track's stems (docs/protocol.md#layers): name -> {"url", "sha256", "bytes"},
    # sample-aligned with the mix and sharing its loop region; empty: none.
    stems: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Where clients fetch the audio when it is not this server (a CDN, a presigned URL):
    # set by the server from its storage sink, never kept in the cache.
    public_url: str = field(default="", repr=False)

    @property
    def ext(self) -> str:
        return self.format

    @property
    def filename(self) -> str:
        return f"{self.id}.{self.format}"

    @property
    def url(self) -> str:
        return self.public_url or f"/tracks/{self.filename}"

    @property
    def content_type(self) -> str:
        return CONTENT_TYPES.get(self.format, "application/octet-stream")

    def replace(self, **changes: Any) -> Track:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """The wire and cache form, with ``url`` and ``content_type``."""
        data = dataclasses.asdict(self)
        del data["public_url"]
        data["url"] = self.url
        data["content_type"] = self.content_type
        if data["loop_end_s"] is None:
            data["loop_end_s"] = self.duration_s
        if not self.stems:
            del data["stems"]  # tracks without stems keep their wire form
        return data

    def wire_dict(self) -> dict[str, Any]:
        """``to_dict()``, made once per Track and shared: for serialising only (a room's
        snapshot on every change), never to be changed. ``to_dict()`` deep-copies."""
        cached = self.__dict__.get("_wire")
        if cached is None:
            cached = self.to_dict()
            object.__setattr__(self, "_wire", cached)  # a cache, not a field
        return cached

    def stem_filename(self, name: str) -> str:
        """Stem ``name``'s file: ``{id}-{name}.{format}``."""
        return str(self.stems[name].get("file") or f"{self.id}-{name}.{self.format}")

    def stem_track(self, name: str) -> Track:
        """Stem ``name`` as a Track of its own (its file, ``{id}-{name}.{format}``)."""
        stem = self.stems[name]
        file = self.stem_filename(name)
        return self.replace(
            id=file[: -len(self.format) - 1],
            sha256=stem.get("sha256", ""),
            bytes=int(stem.get("bytes", 0)),
            stems={},
            public_url="",
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Track:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})
