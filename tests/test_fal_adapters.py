"""The fal generator's pure parts: adapters, limits, costs, configuration, error mapping,
and the emulator's fault-spec grammar. No network, no fal-client import."""

from __future__ import annotations

import importlib.metadata
import random
import subprocess
import sys
import tomllib
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest

from segue.core.errors import ConfigError, PermanentError, RateLimitedError, TransientError
from segue.core.plugins import Plugins
from segue.core.request import GenerationRequest
from segue.plugins.fal.endpoints import ENDPOINTS, build_input, check_request, prompt_from_plan
from segue.plugins.fal.faults import FaultSpecError, parse_faults
from segue.plugins.fal.generator import (
    TESTED_FAL_CLIENT,
    FalGenerator,
    classify,
    format_detail,
    is_tested,
    parse_retry_after,
    release,
)

ROOT = Path(__file__).resolve().parent.parent


def request(**kw) -> GenerationRequest:
    fields = {"mood": "explore", "variant": 0, "prompt": "gentle harp", "duration_s": 30.0}
    fields.update(kw)
    return GenerationRequest(**fields)


def plan(*durations: int, **section) -> dict:
    return {
        "positive_global_styles": ["epic orchestral"],
        "negative_global_styles": ["lo-fi"],
        "sections": [
            {
                "section_name": f"S{i}",
                "positive_local_styles": ["taiko"],
                "negative_local_styles": [],
                "duration_ms": ms,
                "lines": [],
                **section,
            }
            for i, ms in enumerate(durations)
        ],
    }


@pytest.fixture
def fal(monkeypatch, tmp_path):
    monkeypatch.setenv("FAL_KEY", "unit-test-key")

    def make(**config) -> FalGenerator:
        return FalGenerator(config, tmp_path)

    return make


# -- cost ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("seconds", "usd"), [(30, 0.80), (60, 0.80), (61, 1.60), (3, 0.80), (600, 8.00), (125, 2.40)]
)
def test_eleven_music_costs_080_per_started_minute(fal, seconds, usd):
    assert fal().estimate_cost(request(duration_s=seconds)) == pytest.approx(usd)


def test_a_plan_is_billed_by_its_sections_total(fal):
    generator = fal()
    assert generator.estimate_cost(request(composition_plan=plan(30000, 31000))) == pytest.approx(
        1.60
    )
    assert generator.estimate_cost(request(composition_plan=plan(8000, 52000))) == pytest.approx(
        0.80
    )


def test_prices_and_billing_are_configurable(fal):
    assert fal(price_per_minute_usd=0.60).estimate_cost(request(duration_s=61)) == pytest.approx(
        1.20
    )
    per_second = fal(billing="per_second")
    assert per_second.estimate_cost(request(duration_s=30)) == pytest.approx(0.40)
    assert fal(price_per_request_usd=0.5).estimate_cost(request(duration_s=300)) == 0.5


def test_other_endpoints_have_their_own_prices(fal):
    assert fal(model="fal-ai/stable-audio-25/text-to-audio").estimate_cost(request()) == 0.20
    assert fal(model="fal-ai/minimax-music/v2.6").estimate_cost(request()) == 0.15
    cassette = fal(model="CassetteAI/music-generator")
    assert cassette.estimate_cost(request(duration_s=90)) == pytest.approx(0.03)


# -- limits, checked before money is spent ---------------------------------------------


@pytest.mark.parametrize(
    ("model", "changes", "problem"),
    [
        ("fal-ai/elevenlabs/music", {"duration_s": 2.5}, "duration 2.5 s is outside 3-600 s"),
        ("fal-ai/elevenlabs/music", {"duration_s": 600.5}, "outside 3-600 s"),
        ("fal-ai/elevenlabs/music", {"prompt": "x" * 4101}, "4101 characters (at most 4100)"),
        ("fal-ai/elevenlabs/music", {"prompt": "  "}, "the prompt is empty"),
        (
            "fal-ai/elevenlabs/music",
            {"composition_plan": plan(2000, 5000)},
            "sections[0].duration_ms 2000",
        ),
        (
            "fal-ai/elevenlabs/music",
            {"composition_plan": plan(*[3000] * 31)},
            "31 sections (at most 30)",
        ),
        (
            "fal-ai/elevenlabs/music",
            {"composition_plan": plan(3000, lines=["la"] * 31)},
            "31 lines",
        ),
        (
            "fal-ai/elevenlabs/music",
            {"composition_plan": {"sections": [{"duration_ms": 3000}]}},
            "missing section_name",
        ),
        ("fal-ai/stable-audio-25/text-to-audio", {"duration_s": 191}, "outside 1-190 s"),
        ("CassetteAI/music-generator", {"duration_s": 9}, "outside 10-180 s"),
        ("fal-ai/minimax-music/v2.6", {"prompt": "short"}, "at least 10"),
        ("fal-ai/minimax-music/v2.6", {"instrumental": False}, "only instrumental"),
    ],
)
def test_requests_outside_an_endpoints_limits_are_permanent_errors(fal, model, changes, problem):
    generator = fal(model=model)
    with pytest.raises(PermanentError) as err:
        generator.check(request(**changes))
    assert problem in str(err.value)
    assert str(err.value).startswith(f"{model}: ") and "\n" not in str(err.value)


def test_requests_inside_the_limits_pass(fal):
    generator = fal()
    for r in (
        request(duration_s=3),
        request(duration_s=600),
        request(composition_plan=plan(3000, 120000)),
    ):
        generator.check(r)


def test_a_missing_key_is_a_config_error_at_preflight_not_at_check(monkeypatch, tmp_path):
    monkeypatch.delenv("FAL_KEY", raising=False)
    generator = FalGenerator({}, tmp_path)  # planning and its costs need no key…
    assert generator.estimate_cost(request()) == 0.80
    generator.check(request())
    with pytest.raises(ConfigError, match="FAL_KEY is not set"):
        generator.preflight()  # …but the pipeline asks before any work


def test_a_key_no_header_can_carry_is_refused_without_showing_it(monkeypatch, tmp_path):
    monkeypatch.setenv("FAL_KEY", "abc def\u00e9")
    with pytest.raises(ConfigError) as err:
        FalGenerator({}, tmp_path).preflight()
    assert "abc" not in str(err.value) and "FAL_KEY contains spaces" in str(err.value)


# -- adapters --------------------------------------------------------------------------


def test_eleven_music_input_for_a_prompt_and_for_a_plan():
    eleven = ENDPOINTS["fal-ai/elevenlabs/music"]
    assert build_input(
        eleven, request(duration_s=61.25, instrumental=False), output_format="pcm_44100"
    ) == {
        "prompt": "gentle harp",
        "music_length_ms": 61250,
        "force_instrumental": False,
        "output_format": "pcm_44100",
    }
    assert build_input(
        eleven,
        request(composition_plan=plan(4000)),
        output_format="mp3_44100_128",
        respect_sections_durations=False,
    ) == {
        "composition_plan": plan(4000),
        "respect_sections_durations": False,
        "output_format": "mp3_44100_128",
    }


def test_prompt_only_endpoints_read_a_plan_as_a_prompt():
    stable = ENDPOINTS["fal-ai/stable-audio-25/text-to-audio"]
    sent = build_input(stable, request(prompt="", composition_plan=plan(3000)), output_format=None)
    assert sent == {
        "prompt": "epic orchestral; S0: taiko; avoid lo-fi",
        "seconds_total": 30,
    }
    assert (
        prompt_from_plan(plan(3000, 4000)) == "epic orchestral; S0: taiko; S1: taiko; avoid lo-fi"
    )
    assert check_request(stable, request(prompt="", composition_plan=plan(3000))) == []


def test_extra_input_fields_are_sent_and_change_the_audio_params(fal):
    generator = fal(
        model="fal-ai/stable-audio-25/text-to-audio", input={"num_inference_steps": 8, "seed": 7}
    )
    assert generator.audio_params() == {
        "model": "fal-ai/stable-audio-25/text-to-audio",
        "output_format": None,
        "input": {"num_inference_steps": 8, "seed": 7},
    }


def test_audio_params_hold_what_changes_the_audio_and_nothing_else(fal):
    base = fal().audio_params()
    assert base == {
        "model": "fal-ai/elevenlabs/music",
        "output_format": "mp3_44100_128",
        "respect_sections_durations": True,
    }
    assert (
        fal(concurrency=8, poll_interval_s=5, timeout_s=600, price_per_minute_usd=1).audio_params()
        == base
    )
    assert fal(output_format="opus_48000_128").audio_params() != base
    assert fal(respect_sections_durations=False).audio_params() != base


# -- configuration ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"concurrrency": 2}, "unknown option 'concurrrency' (did you mean 'concurrency'?)"),
        ({"model": "fal-ai/nope"}, "unknown model 'fal-ai/nope'; known: fal-ai/elevenlabs/music"),
        ({"output_format": "wav"}, "output_format 'wav' is not one of mp3_22050_32"),
        ({"output_format": "ulaw_8000"}, "output_format 'ulaw_8000' is not one of"),
        ({"concurrency": 0}, "concurrency must be a whole number >= 1"),
        ({"poll_interval_s": "fast"}, "poll_interval_s must be a number"),
        ({"billing": "monthly"}, "billing must be one of"),
        (
            {"model": "CassetteAI/music-generator", "output_format": "mp3_44100_128"},
            "takes no output_format",
        ),
        ({"input": ["seed"]}, "input must be a mapping"),
        ({"submit_timeout_s": "soon"}, "submit_timeout_s must be a number from 0.1 to 3600"),
    ],
)
def test_bad_configuration_is_a_one_line_config_error(tmp_path, config, message):
    with pytest.raises(ConfigError) as err:
        FalGenerator(config, tmp_path)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_the_plugin_registers_the_generator_and_the_emulator_command(tmp_path):
    plugins = Plugins(load_entry_points=False)
    generator = plugins.generators.get("fal").factory({"concurrency": 3}, tmp_path)
    assert (generator.name, generator.model, generator.concurrency) == (
        "fal",
        "fal-ai/elevenlabs/music",
        3,
    )
    assert generator.deadline_s >= generator.timeout_s + generator.download_timeout_s
    from segue.core.cli import build_parser

    args = build_parser().parse_args(["fal-emulator", "--port", "0", "--faults", "500:p=0.5"])
    assert (args.port, args.faults) == (0, "500:p=0.5")


def test_the_submit_deadline_is_never_longer_than_the_whole_one(tmp_path):
    assert FalGenerator({}, tmp_path).submit_timeout_s == 10.0
    assert FalGenerator({"timeout_s": 4, "submit_timeout_s": 30}, tmp_path).submit_timeout_s == 4


def test_fal_client_versions_inside_and_outside_the_tested_range():
    assert is_tested((1, 0, 3)) and is_tested((1, 0, 9, "dev4", "g2b1c"))
    assert not is_tested((1, 0, 2)) and not is_tested((1, 1, 0)) and not is_tested((0, 9))
    assert release((1, 2, "rc1", 3)) == (1, 2)


def test_pyprojects_pin_holds_the_tested_range_and_the_installed_fal_client_is_tested():
    # The submit hooks end fal-client's retries only on tested versions: pyproject.toml
    # allows no fal-client older than those, and CI runs a tested one (else the fast
    # path would go unexercised while every test still passed).
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    (pin,) = [d for d in pyproject["project"]["dependencies"] if d.startswith("fal-client")]
    low, end = TESTED_FAL_CLIENT
    assert pin == f"fal-client>={'.'.join(map(str, low))},<2" and end <= (2,)
    installed = tuple(int(n) for n in importlib.metadata.version("fal-client").split(".")[:3])
    assert is_tested(installed), f"fal-client {installed}: widen TESTED_FAL_CLIENT after testing"


def test_loading_the_plugin_and_making_the_generator_does_not_import_fal_client(tmp_path):
    # fal-client reads its hosts at import: it must wait for the first generation.
    code = (
        "import sys; from segue.core.plugins import Plugins; "
        f"Plugins().generators.get('fal').factory({{}}, {str(tmp_path)!r}); "
        "print('fal_client' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# -- error mapping ---------------------------------------------------------------------


def test_auth_failures_are_permanent_and_name_fal_key():
    for status in (401, 403):
        error = classify(status, None, "Invalid key", "submit")
        assert isinstance(error, PermanentError)
        assert "FAL_KEY" in str(error) and f"HTTP {status}" in str(error)


def test_validation_errors_are_permanent_with_the_apis_detail_in_one_line():
    detail = [
        {
            "type": "less_than_equal",
            "loc": ["body", "music_length_ms"],
            "msg": "Input should be less than or equal to 600000",
        },
        {
            "type": "missing",
            "loc": ["body", "composition_plan", "sections", 0, "lines"],
            "msg": "Field required",
        },
    ]
    text = format_detail(detail)
    assert text == (
        "music_length_ms: Input should be less than or equal to 600000; "
        "composition_plan.sections.0.lines: Field required"
    )
    error = classify(422, None, text, "submit")
    assert isinstance(error, PermanentError) and "input rejected: music_length_ms" in str(error)


def test_rate_limits_carry_retry_after_as_seconds_or_a_date():
    error = classify(429, None, "slow down", "submit", {"Retry-After": "7"})
    assert isinstance(error, RateLimitedError) and error.retry_after == 7.0
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    assert 25 <= parse_retry_after(later) <= 31
    assert classify(429, None, "x", "submit", {}).retry_after is None
    assert parse_retry_after("soon") is None


@pytest.mark.parametrize(
    ("status", "error_type", "headers", "kind"),
    [
        (500, None, None, TransientError),
        (503, "runner_scheduling_failure", None, TransientError),
        (504, "request_timeout", None, TransientError),
        (408, None, None, TransientError),
        (400, None, None, PermanentError),
        (404, None, None, PermanentError),
        (422, "content_policy_violation", None, PermanentError),
        (500, "content_policy_violation", None, PermanentError),  # the type wins
        (400, "generation_timeout", None, TransientError),
        (500, None, {"X-Fal-Retryable": "false"}, PermanentError),  # the header wins
        (422, "content_policy_violation", {"x-fal-retryable": "true"}, TransientError),
    ],
)
def test_failures_map_by_retryable_header_then_error_type_then_status(
    status, error_type, headers, kind
):
    error = classify(status, error_type, "detail", "result", headers)
    assert type(error) is kind
    assert "\n" not in str(error)


# -- the emulator's fault grammar ------------------------------------------------------


def test_the_documented_fault_spec_parses():
    rules = parse_faults(
        "429:first=2,retry_after=1;500:p=0.1;503:nth=3;slow_queue:seconds=5;run_error:nth=1;"
        "expired_url:nth=1;truncated:nth=1;wrong_type:nth=1"
    )
    assert [r.describe() for r in rules] == [
        "429:first=2,retry_after=1",
        "500:p=0.1",
        "503:nth=3",
        "slow_queue:always,seconds=5",
        "run_error:nth=1",
        "expired_url:nth=1",
        "truncated:nth=1",
        "wrong_type:nth=1",
    ]
    assert rules[0].route == "submit" and rules[0].status == 429


def test_fault_selectors_fire_on_the_events_they_name():
    rng = random.Random(0)

    def fired(spec: str, n: int = 8) -> list[int]:
        (rule,) = parse_faults(spec)
        return [i for i in range(1, n + 1) if rule.fires(rng)]

    assert fired("500:first=2") == [1, 2]
    assert fired("500:nth=3") == [3]
    assert fired("500:nth=2|5") == [2, 5]
    assert fired("500:every=3") == [3, 6]
    assert fired("500") == list(range(1, 9))
    assert fired("500:p=0") == [] and fired("500:p=1") == list(range(1, 9))
    hits = len(fired("500:p=0.25", 4000))
    assert 800 < hits < 1200


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("teapot:nth=1", "unknown kind 'teapot'"),
        ("302", "status must be 400-599"),
        ("500:nth=0", "nth must be a whole number >= 1"),
        ("500:p=2", "p must be from 0 to 1"),
        ("500:first=1,nth=2", "not several"),
        ("500:seconds=1", "unknown option 'seconds' for 500"),
        ("500:route=media", "route must be one of submit, status, result, cancel"),
        ("run_error:status=200", "status must be 400-599"),
        ("slow_queue:seconds=-1", "seconds must be a number >= 0"),
        ("truncated:nth", "not NAME=VALUE"),
    ],
)
def test_bad_fault_specs_are_refused_with_the_bad_part_named(spec, message):
    with pytest.raises(FaultSpecError) as err:
        parse_faults(spec)
    assert message in str(err.value)


def test_costs_against_another_queue_host_are_not_production(monkeypatch, tmp_path):
    monkeypatch.delenv("FAL_QUEUE_RUN_HOST", raising=False)
    generator = FalGenerator({}, tmp_path)
    assert generator.cost_endpoint() == (f"queue.fal.run/{generator.model}", True)
    monkeypatch.setenv("FAL_QUEUE_RUN_HOST", "127.0.0.1:8790")  # as segue fal-emulator says
    assert generator.cost_endpoint() == (f"127.0.0.1:8790/{generator.model}", False)
