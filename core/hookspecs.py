"""The hooks a segue plugin may implement. Every hook is a plain, synchronous ``def``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from aiohttp import web

    from segue.core.audio import TrackAudio
    from segue.core.cue import Cue
    from segue.core.registry import Register
    from segue.core.request import GenerationRequest
    from segue.core.score import Score
    from segue.core.track import Track

hookspec = pluggy.HookspecMarker("segue")


@hookspec
def segue_register_generators(register: Register) -> None:
    """Register music generators: ``register(name, factory)``, factory(config, state_dir)."""


@hookspec
def segue_register_cache_backends(register: Register) -> None:
    """Register cache backends: ``register(name, factory)``, factory(config, state_dir)."""


@hookspec
def segue_register_storage_sinks(register: Register) -> None:
    """Register storage sinks: ``register(name, factory)``, factory(config, state_dir)."""


@hookspec
def segue_register_stem_separators(register: Register) -> None:
    """Register stem separators: ``register(name, factory)``, factory(config, state_dir).

    A separator splits a generated song into a mood's layers (``segue.core.separator``).
    """


@hookspec
def segue_transform_prompt(request: GenerationRequest, score: Score) -> GenerationRequest | None:
    """Rewrite a generation request before its cache key is computed; return a new one or None.

    Chained: each implementation receives the previous one's output, in pluggy's call order
    (tryfirst, then the last registered first, then trylast). See docs/plugins.md.
    """


@hookspec
def segue_process_track(audio: TrackAudio) -> TrackAudio | None:
    """Post-process a freshly generated track; return ``audio.replace(...)`` or None (unchanged).

    ``audio`` holds the decoded samples (read-only float32, frames x channels), their rate
    and the Track so far; the pipeline decodes the generator's file once, runs the chain,
    then encodes the result once. Chained like ``segue_transform_prompt``. Not called for
    tracks already in the cache. (It used to be ``(track, path)``, a float WAV edited in
    place; docs/plugins.md says how to port such a plugin.)
    """


@hookspec
def segue_track_stored(track: Track) -> None:
    """Notification: a new track is stored in every sink and recorded in the cache."""


@hookspec
def segue_cue(session: Any, cue: Cue) -> None:
    """Notification: a cue was sent to a session's connections. Do not block."""


@hookspec
def segue_game_event(session: Any, event: dict[str, Any]) -> None:
    """Notification: a session received a game event ``{"name": ..., "data": {...}}``.

    Called before any stinger the event triggers is sent. Do not block.
    """


@hookspec
def segue_register_routes(app: web.Application) -> None:
    """Add HTTP routes to the server's aiohttp application (after segue's own routes)."""


@hookspec
def segue_register_commands(subparsers: Any) -> None:
    """Add ``segue`` sub-commands: ``subparsers.add_parser(...)``, ``set_defaults(func=...)``.

    ``func(args) -> int`` gets the parsed arguments, with ``args.plugins`` (the loaded plugins).
    """
