"""The embedded synth generator (``synth``): a procedural composer and synthesiser in numpy.

Offline, free and deterministic: the same request gives bit-identical samples. See
``docs/generators.md`` for the words, tempos, keys, instruments and genres it understands.
"""

from __future__ import annotations

import asyncio
import difflib
import functools
import hashlib
import os
import threading
from pathlib import Path
from typing import Any

from segue.core import hookimpl
from segue.core.errors import ConfigError, PermanentError
from segue.core.generator import GeneratedAudio
from segue.core.memory import trim
from segue.core.registry import Register
from segue.core.request import GenerationRequest

MODEL = "segue-synth-2"
SAMPLE_RATES = (44100, 48000)
MAX_DURATION_S = 600.0
MIN_DURATION_S = 0.5
OPTIONS = {"sample_rate", "seed", "concurrency", "soundfont"}


@functools.cache
def code_digest(folder: Path = Path(__file__).parent) -> str:
    """A digest of the synth's source files: what it plays is its code, so another version
    of it is other audio (a track made by an older synth is not served as this one's)."""
    h = hashlib.sha256()
    for path in sorted(folder.glob("*.py")):
        h.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()[:12]


class SynthGenerator:
    """Generator ``synth``: renders in worker threads (numpy releases the GIL in its big ops)."""

    name = "synth"
    model = MODEL
    renders_stems = True  # each layer is a stem of its own: no stem separation
    cpu_bound = True  # its work is CPU work here: `segue serve` starts it in a process early
    # Processes that render one track: `segue serve`'s head-start worker sets 2 (the other
    # core is idle while its one track is made); the samples are the same either way.
    processes = 1

    def __init__(self, config: dict[str, Any] | None = None, state_dir: Path | None = None) -> None:
        config = dict(config or {})
        unknown = sorted(set(config) - OPTIONS)
        if unknown:
            close = difflib.get_close_matches(unknown[0], sorted(OPTIONS), n=1, cutoff=0.6)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise ConfigError(
                f"generator synth: unknown option {unknown[0]!r} "
                f"({hint}known: {', '.join(sorted(OPTIONS))})"
            )
        sr = config.get("sample_rate", 44100)
        if sr not in SAMPLE_RATES:
            raise ConfigError(f"generator synth: sample_rate must be 44100 or 48000, not {sr!r}")
        seed = config.get("seed", 0)
        if not isinstance(seed, int) or isinstance(seed, bool):
            raise ConfigError(f"generator synth: seed must be an integer, not {seed!r}")
        conc = config.get("concurrency", os.cpu_count() or 1)
        if not isinstance(conc, int) or isinstance(conc, bool) or conc < 1:
            raise ConfigError(
                f"generator synth: concurrency must be a positive integer, not {conc!r}"
            )
        self.sample_rate: int = sr
        self.seed: int = seed
        self.concurrency: int = conc
        self.state_dir = state_dir
        self._keep_voices = True  # until `idle`: a later render shares the voices
        self._running = 0  # renders in progress (threads)
        self._running_lock = threading.Lock()
        self.soundfont: Path | None = _soundfont(config.get("soundfont", "auto"), state_dir)
        self.soundfont_id = "none"
        if self.soundfont is not None:
            from segue.plugins.synth.soundfont import SoundFontError, identity

            try:
                digest = identity(str(self.soundfont))
            except (OSError, SoundFontError) as e:
                raise ConfigError(f"generator synth: soundfont: {e}") from None
            self.soundfont_id = f"{self.soundfont.name}:{digest}"

    def audio_params(self) -> dict[str, Any]:
        # The SoundFont's file name and a digest of its headers: another SoundFont (or none:
        # the numpy voices) is other audio, so another cache key; so is another synth.
        params: dict[str, Any] = {
            "model": MODEL,
            "code": code_digest(),
            "sample_rate": self.sample_rate,
            "soundfont": self.soundfont_id,
        }
        if self.seed:
            params["seed"] = self.seed
        return params

    def estimate_cost(self, request: GenerationRequest) -> float:
        return 0.0

    def check(self, request: GenerationRequest) -> None:
        from segue.plugins.synth.words import (
            MAX_BPM,
            MIN_BPM,
            parse_key,
            tempo_in_prompt,
            unreadable_key_in_prompt,
        )

        where = f"mood {request.mood}"
        if not (MIN_DURATION_S <= request.duration_s <= MAX_DURATION_S):
            raise PermanentError(
                f"{where}: the synth makes {MIN_DURATION_S:g} to {MAX_DURATION_S:g} s of audio, "
                f"not {request.duration_s:g} s"
            )
        if request.bpm is not None and not (20 <= request.bpm <= 300):
            raise PermanentError(f"{where}: bpm must be from 20 to 300, not {request.bpm:g}")
        if request.key and parse_key(request.key) is None:
            raise PermanentError(
                f"{where}: cannot read key {request.key!r} (write e.g. 'D major', 'F# minor', "
                "'Bb dorian')"
            )
        # What the prompt (or the plan's styles) asks for where the mood's fields do not
        # say: refused as the fields would be, never silently replaced by a guess.
        plan = request.composition_plan if isinstance(request.composition_plan, dict) else {}
        styles = " ".join(s for s in plan.get("positive_global_styles") or [] if isinstance(s, str))
        for text, what in ((request.prompt or "", "prompt asks"), (styles, "plan's styles ask")):
            tempo = tempo_in_prompt(text)
            if request.bpm is None and tempo is not None and not (MIN_BPM <= tempo <= MAX_BPM):
                raise PermanentError(
                    f"{where}: the {what} for {tempo:g} BPM; the synth plays "
                    f"{MIN_BPM:g} to {MAX_BPM:g} BPM"
                )
            bad = None if request.key else unreadable_key_in_prompt(text)
            if bad is not None:
                raise PermanentError(
                    f"{where}: the {what} for the key {bad!r}, which names no note A-G "
                    "(write e.g. 'in B minor', 'key of G'; German H is B)"
                )
        if request.stinger is False and request.bpm is not None:
            bar_s = 4 * 60.0 / request.bpm
            if request.duration_s < bar_s / 2:
                raise PermanentError(
                    f"{where}: a loop of {request.duration_s:g} s is shorter than half a bar "
                    f"at {request.bpm:g} BPM"
                )

    def _render(self, request: GenerationRequest, workdir: Path) -> GeneratedAudio:
        from segue.plugins.synth.render import render_request_stems, write_wav

        if self.seed and request.params.get("seed") != self.seed:
            request = request.replace(params={**request.params, "seed": self.seed})
        with self._running_lock:
            self._running += 1
            keep = self._keep_voices or self._running > 1  # another render may share them
        try:
            arr, samples, stems = render_request_stems(
                request, self.sample_rate, self.soundfont, self.processes, keep
            )
        finally:
            with self._running_lock:
                self._running -= 1
                done = not self._keep_voices and self._running == 0
            if done:
                from segue.plugins.synth.soundfont import load

                load.cache_clear()
            # The render's arrays, freed in this thread's heap, go back to the system: the
            # track is finished in another thread.
            trim()
        workdir.mkdir(parents=True, exist_ok=True)
        path = workdir / f"synth-{request.cache_key[:16]}.wav"
        write_wav(path, samples, self.sample_rate)
        stem_paths = {}
        for name, stem in stems.items():
            stem_paths[name] = workdir / f"synth-{request.cache_key[:16]}.{name}.wav"
            write_wav(stem_paths[name], stem, self.sample_rate)
        length_s = samples.shape[0] / self.sample_rate
        return GeneratedAudio(
            path=path,
            model=MODEL,
            cost_usd=0.0,
            bpm=float(arr.bpm),
            beats_per_bar=arr.beats_per_bar,
            first_beat_s=0.0,
            loop=arr.loop,
            loop_start_s=0.0,
            loop_end_s=length_s if arr.loop else None,
            extra={
                # Every note is placed on this tempo and bar grid: beat_grid need not
                # measure what the composer decided (docs/audio.md).
                "exact_grid": True,
                "key": arr.key.name,
                "meter": arr.meter,
                "bars": arr.bars if arr.loop else None,
                "sections": [
                    {"name": s.name, "start_bar": s.start_bar, "bars": s.bars} for s in arr.sections
                ],
            },
            stems=stem_paths,
        )

    def ignored_words(self, request: GenerationRequest) -> list[str]:
        """The content words of the request's prompt and plan styles the synth does not
        act on (``segue plan`` lists them), e.g. an instrument it does not know. Avoided
        words (negative styles, "no vocals") are honoured, never listed; section names and
        local styles also count the section words the synth reads ("climax", "build")."""
        from segue.plugins.synth.form import SECTION_ENERGY, without_dynamics
        from segue.plugins.synth.words import ignored_words

        texts = [(request.prompt or "", False)]
        plan = request.composition_plan if isinstance(request.composition_plan, dict) else {}
        texts += [
            (s, False) for s in plan.get("positive_global_styles") or [] if isinstance(s, str)
        ]
        for s in plan.get("sections") or []:
            if isinstance(s, dict):
                texts.append((str(s.get("section_name", "")), True))
                texts += [
                    (x, True) for x in s.get("positive_local_styles") or [] if isinstance(x, str)
                ]
        sections = frozenset(SECTION_ENERGY)
        out: list[str] = []
        for text, in_section in texts:
            # (The dynamics words are read: a section's marks and steps, a plan's shape.)
            text = without_dynamics(text, in_section)
            words = ignored_words(text, sections if in_section else frozenset())
            out += [w for w in words if w not in out]
        return out

    def plan_notes(self, request: GenerationRequest) -> list[str]:
        """What the synth reads where the score does not say it and a reader could take
        otherwise (``segue plan`` prints them): the key a mode word alone stands for."""
        from segue.core.prompts import stated_key

        if request.key:
            return []
        plan = request.composition_plan if isinstance(request.composition_plan, dict) else {}
        styles = " ".join(s for s in plan.get("positive_global_styles") or [] if isinstance(s, str))
        stated = stated_key(request.prompt or "") or stated_key(styles)
        if stated is None or not stated.bare:
            return []
        return [
            f'reads "{stated.match[0]}" as the key {stated.name} (a mode alone is played on '
            f"its white-key tonic; write e.g. 'in A {stated.mode}' or the mood's key for another)"
        ]

    def instruments(self, request: GenerationRequest) -> list[str]:
        """What the request plays, one entry per part (``segue plan`` lists them), e.g.
        ``"tune: fiddle"``, ``"drums: low frame drum, tambourine"``."""
        from segue.plugins.synth.composer import compose
        from segue.plugins.synth.listing import parts_played

        return parts_played(compose(request))

    async def generate(self, request: GenerationRequest, workdir: Path) -> GeneratedAudio:
        from segue.plugins.synth.soundfont import SoundFontError

        self.check(request)
        try:
            return await asyncio.to_thread(self._render, request, Path(workdir))
        except SoundFontError as e:  # a damaged SoundFont: another attempt reads the same
            raise PermanentError(f"mood {request.mood}: soundfont {e}") from None

    def idle(self) -> None:
        """No request will come but those in progress (a one-shot `segue pregen`): the
        voices each render shares with later ones (the SoundFont's rendered notes and
        decoded samples, 0.1-0.3 GB) go as soon as the last render running has placed its
        notes, and the SoundFont once it is done. A render after this loads them again."""
        self._keep_voices = False

    async def aclose(self) -> None:
        return None


def _soundfont(value: Any, state_dir: Path | None) -> Path | None:
    """The SoundFont the ``soundfont`` option names: ``auto`` (the best installed, see
    ``soundfont.find_soundfont``), ``none``/``false`` (numpy voices only), or a file path
    (relative to the score's folder)."""
    from segue.plugins.synth.soundfont import find_soundfont

    if value is None or value is False or (isinstance(value, str) and value.lower() == "none"):
        return None
    if isinstance(value, str) and value.strip().lower() == "auto":  # as "none": any case
        return find_soundfont()
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(
            f"generator synth: soundfont must be a file path, 'auto' or 'none', not {value!r}"
        )
    path = Path(value).expanduser()
    if not path.is_absolute() and state_dir is not None:
        path = state_dir.parent / path
    if path.is_dir():
        raise ConfigError(f"generator synth: soundfont {value!r}: a folder, not a file ({path})")
    if not path.is_file():
        raise ConfigError(f"generator synth: soundfont {value!r}: no such file ({path})")
    return path


def _factory(config: dict[str, Any], state_dir: Path) -> SynthGenerator:
    return SynthGenerator(config, state_dir)


@hookimpl
def segue_register_generators(register: Register) -> None:
    register("synth", _factory)
