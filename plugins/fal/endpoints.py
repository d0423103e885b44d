"""The adapter table: how a GenerationRequest becomes one fal music endpoint's input.

Each fal music model names its fields differently (``music_length_ms`` in milliseconds,
``seconds_total`` or ``duration`` in seconds, ``force_instrumental`` or
``is_instrumental``) and puts its output under a different key. One :class:`Endpoint`
row per model says how; :func:`build_input` and :func:`check_request` use it.
Prices are fal's list prices when this table was written; a score can override them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

from segue.core.request import GenerationRequest

Billing = Literal["per_minute_rounded_up", "per_second", "per_request"]
BILLINGS: tuple[str, ...] = ("per_minute_rounded_up", "per_second", "per_request")

# Eleven Music's output formats (fal mirrors ElevenLabs' list).
ELEVEN_FORMATS: tuple[str, ...] = (
    "mp3_22050_32",
    "mp3_24000_48",
    "mp3_44100_32",
    "mp3_44100_64",
    "mp3_44100_96",
    "mp3_44100_128",
    "mp3_44100_192",
    "pcm_8000",
    "pcm_16000",
    "pcm_22050",
    "pcm_24000",
    "pcm_44100",
    "pcm_48000",
    "ulaw_8000",
    "alaw_8000",
    "opus_48000_32",
    "opus_48000_64",
    "opus_48000_96",
    "opus_48000_128",
    "opus_48000_192",
)
# Telephone codecs: valid for the API, useless for a soundtrack.
REFUSED_FORMATS: frozenset[str] = frozenset({"ulaw_8000", "alaw_8000"})

# Composition-plan limits (ElevenLabs' schema, which fal passes through).
PLAN_MAX_SECTIONS = 30
PLAN_SECTION_MS = (3_000, 120_000)
PLAN_MAX_STYLES = 50
PLAN_MAX_LINES = 30
PLAN_MAX_LINE_CHARS = 200
PLAN_SECTION_NAME_CHARS = (1, 100)
PLAN_TOTAL_MS = (3_000, 600_000)


@dataclass(frozen=True)
class Endpoint:
    """One fal music endpoint: its input fields, limits, output key and price."""

    id: str
    title: str
    prompt_field: str = "prompt"
    prompt_max_chars: int | None = None
    prompt_min_chars: int = 1
    # None: the model chooses the length (the request's duration is only a hint for cost).
    duration_field: str | None = None
    duration_unit: Literal["ms", "s"] = "s"
    duration_integer: bool = True
    min_duration_s: float | None = None
    max_duration_s: float | None = None
    instrumental_field: str | None = None
    plan_field: str | None = None  # takes a composition plan (Eleven Music)
    output_key: str = "audio"
    output_format_field: str | None = None
    output_formats: tuple[str, ...] = ()
    default_output_format: str | None = None
    price_usd: float = 0.0  # per minute, or per request for billing "per_request"
    billing: Billing = "per_request"
    instrumental_only: bool = False  # vocals would need lyrics, which requests do not carry
    fixed_input: dict[str, Any] = field(default_factory=dict)

    @property
    def takes_plans(self) -> bool:
        return self.plan_field is not None


ENDPOINTS: dict[str, Endpoint] = {
    e.id: e
    for e in (
        Endpoint(
            id="fal-ai/elevenlabs/music",
            title="Eleven Music (ElevenLabs) through fal",
            prompt_max_chars=4100,
            duration_field="music_length_ms",
            duration_unit="ms",
            min_duration_s=3.0,
            max_duration_s=600.0,
            instrumental_field="force_instrumental",
            plan_field="composition_plan",
            output_key="audio",
            output_format_field="output_format",
            output_formats=ELEVEN_FORMATS,
            default_output_format="mp3_44100_128",
            price_usd=0.80,
            billing="per_minute_rounded_up",
        ),
        Endpoint(
            id="fal-ai/stable-audio-25/text-to-audio",
            title="Stable Audio 2.5 (Stability AI)",
            duration_field="seconds_total",
            min_duration_s=1.0,
            max_duration_s=190.0,
            output_key="audio",
            price_usd=0.20,
            billing="per_request",
        ),
        Endpoint(
            id="CassetteAI/music-generator",
            title="CassetteAI music generator",
            duration_field="duration",
            min_duration_s=10.0,
            max_duration_s=180.0,
            output_key="audio_file",
            price_usd=0.02,
            billing="per_second",
        ),
        Endpoint(
            id="fal-ai/minimax-music/v2.6",
            title="MiniMax Music 2.6",
            prompt_min_chars=10,
            prompt_max_chars=300,
            instrumental_field="is_instrumental",
            instrumental_only=True,
            output_key="audio",
            price_usd=0.15,
            billing="per_request",
        ),
    )
}

DEFAULT_ENDPOINT = "fal-ai/elevenlabs/music"


def plan_total_s(plan: dict[str, Any]) -> float:
    """The length a composition plan asks for, in seconds (0 for a malformed plan)."""
    total = 0
    for section in plan.get("sections") or []:
        if isinstance(section, dict) and isinstance(section.get("duration_ms"), int | float):
            total += section["duration_ms"]
    return total / 1000.0


def prompt_from_plan(plan: dict[str, Any]) -> str:
    """A text prompt for models that take no plan: global styles, then each section's."""
    parts: list[str] = [str(s) for s in plan.get("positive_global_styles") or []]
    for section in plan.get("sections") or []:
        if not isinstance(section, dict):
            continue
        local = ", ".join(str(s) for s in section.get("positive_local_styles") or [])
        name = str(section.get("section_name") or "").strip()
        if name or local:
            parts.append(f"{name}: {local}" if name and local else name or local)
    negative = [str(s) for s in plan.get("negative_global_styles") or []]
    if negative:
        parts.append("avoid " + ", ".join(negative))
    return "; ".join(p for p in parts if p)


def uses_plan(endpoint: Endpoint, request: GenerationRequest) -> bool:
    return endpoint.takes_plans and bool(request.composition_plan)


def effective_prompt(endpoint: Endpoint, request: GenerationRequest) -> str:
    """The prompt sent to a prompt-only endpoint: the request's, else one read off its plan."""
    if request.prompt.strip():
        return request.prompt
    if request.composition_plan:
        return prompt_from_plan(request.composition_plan)
    return ""


def audio_length_s(endpoint: Endpoint, request: GenerationRequest) -> float:
    """Seconds of audio the request asks for (a plan's total when the plan is sent)."""
    if uses_plan(endpoint, request):
        return plan_total_s(request.composition_plan or {})
    return float(request.duration_s)


def cost_usd(price: float, billing: str, length_s: float) -> float:
    """US dollars for ``length_s`` seconds of audio at ``price`` under ``billing``."""
    if billing == "per_request":
        return round(price, 6)
    minutes = max(length_s, 0.0) / 60.0
    if billing == "per_minute_rounded_up":
        # A hair of tolerance so 60.0000001 s from float arithmetic is still one minute.
        minutes = max(1, math.ceil(minutes - 1e-9))
    return round(minutes * price, 6)


def build_input(
    endpoint: Endpoint,
    request: GenerationRequest,
    *,
    output_format: str | None,
    respect_sections_durations: bool = True,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The endpoint's input JSON for ``request`` (call :func:`check_request` first)."""
    data: dict[str, Any] = dict(endpoint.fixed_input)
    if uses_plan(endpoint, request):
        data[endpoint.plan_field or "composition_plan"] = request.composition_plan
        # Eleven Music: length and instrumental flag are prompt-only; the plan's
        # sections carry the durations (and no lyric lines means instrumental).
        data["respect_sections_durations"] = bool(respect_sections_durations)
    else:
        data[endpoint.prompt_field] = effective_prompt(endpoint, request)
        if endpoint.duration_field:
            seconds = float(request.duration_s)
            value: float = seconds * 1000.0 if endpoint.duration_unit == "ms" else seconds
            data[endpoint.duration_field] = (
                round(value) if endpoint.duration_integer else round(value, 3)
            )
        if endpoint.instrumental_field:
            data[endpoint.instrumental_field] = bool(request.instrumental)
    if endpoint.output_format_field and output_format:
        data[endpoint.output_format_field] = output_format
    if extra:
        data.update(extra)
    return data


def _plan_problems(plan: Any) -> list[str]:
    """Every way ``plan`` breaks Eleven Music's composition-plan schema."""
    if not isinstance(plan, dict):
        return ["composition_plan must be a mapping"]
    problems = []
    for key in ("positive_global_styles", "negative_global_styles"):
        styles = plan.get(key, [])
        if not isinstance(styles, list):
            problems.append(f"composition_plan.{key} must be a list")
        elif len(styles) > PLAN_MAX_STYLES:
            problems.append(
                f"composition_plan.{key} has {len(styles)} styles (at most {PLAN_MAX_STYLES})"
            )
    sections = plan.get("sections")
    if not isinstance(sections, list) or not sections:
        return [*problems, "composition_plan.sections must be a non-empty list"]
    if len(sections) > PLAN_MAX_SECTIONS:
        problems.append(
            f"composition_plan has {len(sections)} sections (at most {PLAN_MAX_SECTIONS})"
        )
    lo, hi = PLAN_SECTION_MS
    for i, section in enumerate(sections):
        where = f"composition_plan.sections[{i}]"
        if not isinstance(section, dict):
            problems.append(f"{where} must be a mapping")
            continue
        missing = [
            k
            for k in (
                "section_name",
                "positive_local_styles",
                "negative_local_styles",
                "duration_ms",
                "lines",
            )
            if k not in section
        ]
        if missing:
            problems.append(f"{where}: missing {', '.join(missing)}")
        name = section.get("section_name", "")
        if "section_name" in section and (
            not isinstance(name, str)
            or not PLAN_SECTION_NAME_CHARS[0] <= len(name) <= PLAN_SECTION_NAME_CHARS[1]
        ):
            problems.append(f"{where}.section_name must be 1-100 characters")
        ms = section.get("duration_ms")
        if "duration_ms" in section and (
            not isinstance(ms, int) or isinstance(ms, bool) or not lo <= ms <= hi
        ):
            problems.append(f"{where}.duration_ms {ms!r} is outside {lo}-{hi}")
        for key in ("positive_local_styles", "negative_local_styles"):
            styles = section.get(key, [])
            if not isinstance(styles, list):
                problems.append(f"{where}.{key} must be a list")
            elif len(styles) > PLAN_MAX_STYLES:
                problems.append(
                    f"{where}.{key} has {len(styles)} styles (at most {PLAN_MAX_STYLES})"
                )
        lines = section.get("lines", [])
        if not isinstance(lines, list):
            problems.append(f"{where}.lines must be a list")
        else:
            if len(lines) > PLAN_MAX_LINES:
                problems.append(f"{where}.lines has {len(lines)} lines (at most {PLAN_MAX_LINES})")
            if any(not isinstance(x, str) or len(x) > PLAN_MAX_LINE_CHARS for x in lines):
                problems.append(f"{where}.lines: each line is a string of at most 200 characters")
    if not problems:
        total = plan_total_s(plan) * 1000
        if not PLAN_TOTAL_MS[0] <= total <= PLAN_TOTAL_MS[1]:
            problems.append(
                f"composition_plan lasts {total:.0f} ms in all "
                f"(from {PLAN_TOTAL_MS[0]} to {PLAN_TOTAL_MS[1]})"
            )
    return problems


def check_request(endpoint: Endpoint, request: GenerationRequest) -> list[str]:
    """Every way ``request`` is outside ``endpoint``'s limits (empty: it may be sent)."""
    if uses_plan(endpoint, request):
        return _plan_problems(request.composition_plan)
    problems = []
    prompt = effective_prompt(endpoint, request)
    if len(prompt.strip()) < max(endpoint.prompt_min_chars, 1):
        problems.append(
            "the prompt is empty"
            if not prompt.strip()
            else f"the prompt has {len(prompt)} characters (at least {endpoint.prompt_min_chars})"
        )
    if endpoint.prompt_max_chars is not None and len(prompt) > endpoint.prompt_max_chars:
        problems.append(
            f"the prompt has {len(prompt)} characters (at most {endpoint.prompt_max_chars})"
        )
    if endpoint.duration_field:
        seconds = float(request.duration_s)
        lo, hi = endpoint.min_duration_s, endpoint.max_duration_s
        if (lo is not None and seconds < lo) or (hi is not None and seconds > hi):
            problems.append(f"duration {seconds:g} s is outside {lo:g}-{hi:g} s")
    if endpoint.instrumental_only and not request.instrumental:
        problems.append("vocals need lyrics on this endpoint: only instrumental requests")
    return problems
