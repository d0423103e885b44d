"""Input validation for the fal emulator, shaped like fal's FastAPI/pydantic 422s.

Each emulated endpoint has a :class:`Model`: its fields' types and limits (from fal's
published schemas), a cross-field check, and how long its audio is and how it is
encoded. Errors are pydantic v2 dicts: ``{"type", "loc": ["body", ...], "msg",
"input", "ctx"?}``, returned as ``{"detail": [...]}`` with status 422.

This table is kept apart from the generator's adapter table on purpose: the emulator
plays the server, so a mistake in the generator's adapters shows up as a 422 here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from segue.plugins.fal.endpoints import ELEVEN_FORMATS

Error = dict[str, Any]


@dataclass(frozen=True)
class Field:
    kind: str  # str | int | float | bool | list | dict
    required: bool = False
    ge: float | None = None
    le: float | None = None
    min_len: int | None = None
    max_len: int | None = None
    choices: tuple[str, ...] | None = None
    items: Field | None = None  # for lists
    schema: dict[str, Field] | None = None  # for dicts


def _err(
    kind: str, loc: list[Any], msg: str, value: Any, ctx: dict[str, Any] | None = None
) -> Error:
    error: Error = {"type": kind, "loc": ["body", *loc], "msg": msg, "input": value}
    if ctx:
        error["ctx"] = ctx
    return error


def _check(value: Any, spec: Field, loc: list[Any]) -> list[Error]:
    kind = spec.kind
    if kind == "str":
        if not isinstance(value, str):
            return [_err("string_type", loc, "Input should be a valid string", value)]
        if spec.min_len is not None and len(value) < spec.min_len:
            n = spec.min_len
            return [
                _err(
                    "string_too_short",
                    loc,
                    f"String should have at least {n} character" + ("s" if n != 1 else ""),
                    value,
                    {"min_length": n},
                )
            ]
        if spec.max_len is not None and len(value) > spec.max_len:
            n = spec.max_len
            return [
                _err(
                    "string_too_long",
                    loc,
                    f"String should have at most {n} characters",
                    value,
                    {"max_length": n},
                )
            ]
        if spec.choices is not None and value not in spec.choices:
            quoted = [f"'{c}'" for c in spec.choices]
            expected = ", ".join(quoted[:-1]) + f" or {quoted[-1]}"
            return [
                _err(
                    "literal_error",
                    loc,
                    f"Input should be {expected}",
                    value,
                    {"expected": expected},
                )
            ]
        return []
    if kind == "bool":
        if not isinstance(value, bool):
            return [_err("bool_type", loc, "Input should be a valid boolean", value)]
        return []
    if kind in ("int", "float"):
        if isinstance(value, bool) or not isinstance(value, int | float):
            name = "integer" if kind == "int" else "number"
            return [_err(f"{kind}_type", loc, f"Input should be a valid {name}", value)]
        if kind == "int" and isinstance(value, float) and not value.is_integer():
            return [
                _err(
                    "int_from_float",
                    loc,
                    "Input should be a valid integer, got a number with a fractional part",
                    value,
                )
            ]
        if spec.ge is not None and value < spec.ge:
            return [
                _err(
                    "greater_than_equal",
                    loc,
                    f"Input should be greater than or equal to {spec.ge:g}",
                    value,
                    {"ge": spec.ge},
                )
            ]
        if spec.le is not None and value > spec.le:
            return [
                _err(
                    "less_than_equal",
                    loc,
                    f"Input should be less than or equal to {spec.le:g}",
                    value,
                    {"le": spec.le},
                )
            ]
        return []
    if kind == "list":
        if not isinstance(value, list):
            return [_err("list_type", loc, "Input should be a valid list", value)]
        errors: list[Error] = []
        if spec.min_len is not None and len(value) < spec.min_len:
            errors.append(
                _err(
                    "too_short",
                    loc,
                    f"List should have at least {spec.min_len} item after validation, "
                    f"not {len(value)}",
                    value,
                    {"min_length": spec.min_len},
                )
            )
        if spec.max_len is not None and len(value) > spec.max_len:
            errors.append(
                _err(
                    "too_long",
                    loc,
                    f"List should have at most {spec.max_len} items after validation, "
                    f"not {len(value)}",
                    value,
                    {"max_length": spec.max_len},
                )
            )
        if spec.items is not None:
            for i, item in enumerate(value):
                errors.extend(_check(item, spec.items, [*loc, i]))
        return errors
    if kind == "dict":
        if not isinstance(value, dict):
            return [_err("dict_type", loc, "Input should be a valid dictionary", value)]
        return validate_fields(value, spec.schema or {}, loc)
    raise ValueError(kind)


def validate_fields(
    data: dict[str, Any], schema: dict[str, Field], loc: list[Any] | None = None
) -> list[Error]:
    """Pydantic-style validation of ``data`` against ``schema`` (extra keys are ignored)."""
    loc = loc or []
    errors: list[Error] = []
    for name, spec in schema.items():
        if name not in data or (data[name] is None and not spec.required):
            if spec.required:
                errors.append(_err("missing", [*loc, name], "Field required", data))
            continue
        errors.extend(_check(data[name], spec, [*loc, name]))
    return errors


STYLES = Field("list", required=True, max_len=50, items=Field("str"))
SECTION = Field(
    "dict",
    schema={
        "section_name": Field("str", required=True, min_len=1, max_len=100),
        "positive_local_styles": STYLES,
        "negative_local_styles": STYLES,
        "duration_ms": Field("int", required=True, ge=3000, le=120000),
        "lines": Field("list", required=True, max_len=30, items=Field("str", max_len=200)),
    },
)
PLAN = Field(
    "dict",
    schema={
        "positive_global_styles": STYLES,
        "negative_global_styles": STYLES,
        "sections": Field("list", required=True, min_len=1, max_len=30, items=SECTION),
    },
)


def _value_error(message: str) -> Error:
    return _err("value_error", [], f"Value error, {message}", None, {"error": message})


def _eleven_rules(data: dict[str, Any]) -> list[Error]:
    has_prompt = data.get("prompt") is not None
    has_plan = data.get("composition_plan") is not None
    if has_prompt and has_plan:
        return [_value_error("Only one of prompt or composition_plan can be provided")]
    if not has_prompt and not has_plan:
        return [_value_error("Either prompt or composition_plan must be provided")]
    if has_plan and data.get("music_length_ms") is not None:
        return [_value_error("music_length_ms can only be used with prompt")]
    if has_plan and data.get("force_instrumental"):
        return [_value_error("force_instrumental can only be used with prompt")]
    return []


def _minimax_rules(data: dict[str, Any]) -> list[Error]:
    if not data.get("is_instrumental") and not (data.get("lyrics") or "").strip():
        return [_value_error("lyrics are required when is_instrumental is false")]
    return []


def _eleven_seconds(data: dict[str, Any]) -> float | None:
    if data.get("composition_plan"):
        return sum(s["duration_ms"] for s in data["composition_plan"]["sections"]) / 1000.0
    if data.get("music_length_ms") is not None:
        return data["music_length_ms"] / 1000.0
    return None  # the model chooses (the emulator: its default_seconds)


@dataclass(frozen=True)
class Model:
    endpoint: str
    fields: dict[str, Field]
    output_key: str
    seconds: Callable[[dict[str, Any]], float | None]  # None: the model chooses
    output_format: Callable[[dict[str, Any]], str]
    rules: Callable[[dict[str, Any]], list[Error]] = lambda data: []
    instrumental: Callable[[dict[str, Any]], bool] = lambda data: True
    extra: dict[str, Any] = field(default_factory=dict)
    kind: str = "music"  # or "separation" (fal-ai/demucs: audio in, stems out)

    def validate(self, data: Any) -> list[Error]:
        if not isinstance(data, dict):
            return [
                _err(
                    "model_attributes_type",
                    [],
                    "Input should be a valid dictionary or object to extract fields from",
                    data,
                )
            ]
        errors = validate_fields(data, self.fields)
        return errors or self.rules(data)


DEMUCS_MODELS = (
    "htdemucs",
    "htdemucs_ft",
    "htdemucs_6s",
    "hdemucs_mmi",
    "mdx",
    "mdx_extra",
    "mdx_q",
    "mdx_extra_q",
)
DEMUCS_STEMS = ("vocals", "drums", "bass", "other", "guitar", "piano")


def demucs_stems(data: dict[str, Any]) -> tuple[str, ...]:
    """The stems a demucs request gives: its model's (six for htdemucs_6s), or ``stems``."""
    model = data.get("model") or "htdemucs_6s"
    stems = DEMUCS_STEMS if model == "htdemucs_6s" else DEMUCS_STEMS[:4]
    asked = data.get("stems")
    return tuple(s for s in stems if s in asked) if asked else stems


def _demucs_rules(data: dict[str, Any]) -> list[Error]:
    model = data.get("model") or "htdemucs_6s"
    extra = [s for s in data.get("stems") or [] if s in ("guitar", "piano")]
    if extra and model != "htdemucs_6s":
        return [_value_error(f"model {model} has no {extra[0]} stem (only htdemucs_6s)")]
    return []


MODELS: dict[str, Model] = {
    m.endpoint: m
    for m in (
        Model(
            endpoint="fal-ai/elevenlabs/music",
            fields={
                "prompt": Field("str", min_len=1, max_len=4100),
                "composition_plan": PLAN,
                "music_length_ms": Field("int", ge=3000, le=600000),
                "force_instrumental": Field("bool"),
                "respect_sections_durations": Field("bool"),
                "output_format": Field("str", choices=ELEVEN_FORMATS),
            },
            rules=_eleven_rules,
            output_key="audio",
            seconds=_eleven_seconds,
            output_format=lambda d: d.get("output_format") or "mp3_44100_128",
            instrumental=lambda d: bool(d.get("force_instrumental")),
        ),
        Model(
            endpoint="fal-ai/stable-audio-25/text-to-audio",
            fields={
                "prompt": Field("str", required=True, min_len=1),
                "seconds_total": Field("int", ge=1, le=190),
                "num_inference_steps": Field("int", ge=4, le=8),
                "guidance_scale": Field("float", ge=1, le=25),
                "seed": Field("int"),
                "sync_mode": Field("bool"),
            },
            output_key="audio",
            seconds=lambda d: float(d.get("seconds_total") or 190),
            output_format=lambda d: "wav",
        ),
        Model(
            endpoint="CassetteAI/music-generator",
            fields={
                "prompt": Field("str", required=True, min_len=1),
                "duration": Field("int", required=True, ge=10, le=180),
            },
            output_key="audio_file",
            seconds=lambda d: float(d["duration"]),
            output_format=lambda d: "wav",
        ),
        Model(
            endpoint="fal-ai/minimax-music/v2.6",
            fields={
                "prompt": Field("str", required=True, min_len=10, max_len=300),
                "lyrics": Field("str", max_len=1000),
                "is_instrumental": Field("bool"),
                "audio_setting": Field(
                    "dict",
                    schema={
                        "sample_rate": Field("int"),
                        "bitrate": Field("int"),
                        "format": Field("str", choices=("mp3", "wav", "pcm")),
                    },
                ),
            },
            rules=_minimax_rules,
            output_key="audio",
            seconds=lambda d: None,  # the model chooses
            output_format=lambda d: (
                "wav" if (d.get("audio_setting") or {}).get("format") == "wav" else "mp3_44100_128"
            ),
            instrumental=lambda d: bool(d.get("is_instrumental")),
        ),
        Model(
            endpoint="fal-ai/demucs",
            fields={
                "audio_url": Field("str", required=True, min_len=1),
                "model": Field("str", choices=DEMUCS_MODELS),
                "stems": Field("list", items=Field("str", choices=DEMUCS_STEMS)),
                "segment_length": Field("int", ge=1),
                "overlap": Field("float", ge=0, le=1),
                "shifts": Field("int", ge=0),
                "output_format": Field("str", choices=("wav", "mp3")),
            },
            rules=_demucs_rules,
            output_key="",  # one key per stem
            seconds=lambda d: None,
            output_format=lambda d: d.get("output_format") or "wav",
            kind="separation",
        ),
    )
}
