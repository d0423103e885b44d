"""The fal generator, driving the real fal-client over HTTPS against the local emulator.

Each test starts an emulator in process and runs the generator in a subprocess (see
fal_support.py for why). Audio is decoded and measured; the emulator's request counts
prove what was (not) retried.
"""

from __future__ import annotations

from pathlib import Path

import fal_support as fs
import pytest
import soundfile as sf

from segue.plugins.fal.emulator import FalEmulator


@pytest.fixture
async def emu():
    async with FalEmulator(latency=0.1, use_synth=False, default_seconds=5.0) as emulator:
        yield emulator


def measure(path: str) -> tuple[float, int, int]:
    info = sf.info(path)
    return info.frames / info.samplerate, info.samplerate, info.channels


def only_input(emu: FalEmulator) -> dict:
    (job,) = emu.jobs.values()
    return job.input


async def test_prompt_requests_end_as_audio_of_the_requested_length(emu, tmp_path):
    run = await fs.drive(
        emu, tmp_path, [fs.req(duration_s=4.0), fs.req(duration_s=3.5, variant=1, stinger=True)]
    )
    first, second = run.results
    assert first["ok"] and second["ok"], run.results
    for result, seconds in ((first, 4.0), (second, 3.5)):
        duration, rate, channels = measure(result["path"])
        assert duration == pytest.approx(seconds, abs=0.06)
        assert (rate, channels) == (44100, 2)
        assert result["path"].endswith(".mp3")
        assert result["model"] == "fal-ai/elevenlabs/music"
        assert result["cost_usd"] == pytest.approx(0.80)
        assert result["bpm"] is None
    assert first["loop"] is True and second["loop"] is False
    # What the endpoint received: the adapter's mapping of the request.
    inputs = sorted((job.input for job in emu.jobs.values()), key=lambda i: i["music_length_ms"])
    assert inputs[0] == {
        "prompt": "calm harp and flute, 90 BPM",
        "music_length_ms": 3500,
        "force_instrumental": True,
        "output_format": "mp3_44100_128",
    }
    assert emu.requests["submit"] == 2 and emu.requests["media"] == 2
    # Only the finished files are left, no temp files.
    assert fs.files_in(tmp_path / "work") == sorted(Path(r["path"]).name for r in run.results)


async def test_a_composition_plan_is_sent_as_a_plan(emu, tmp_path):
    run = await fs.drive(emu, tmp_path, [fs.req(prompt="", composition_plan=fs.plan(3000, 4500))])
    assert run.result["ok"], run.result
    duration, _, _ = measure(run.result["path"])
    assert duration == pytest.approx(7.5, abs=0.06)
    sent = only_input(emu)
    assert sent["composition_plan"] == fs.plan(3000, 4500)
    assert sent["respect_sections_durations"] is True
    assert "prompt" not in sent and "music_length_ms" not in sent
    assert "force_instrumental" not in sent


@pytest.mark.parametrize(
    ("model", "seconds", "expected_input", "measured"),
    [
        (
            "fal-ai/stable-audio-25/text-to-audio",
            3.0,
            {"prompt": "calm harp and flute, 90 BPM", "seconds_total": 3},
            3.0,
        ),
        (
            "CassetteAI/music-generator",
            10.0,
            {"prompt": "calm harp and flute, 90 BPM", "duration": 10},
            10.0,
        ),
        # MiniMax picks its own length (this emulator: 5 s); billed per request.
        (
            "fal-ai/minimax-music/v2.6",
            30.0,
            {"prompt": "calm harp and flute, 90 BPM", "is_instrumental": True},
            5.0,
        ),
    ],
)
async def test_other_endpoints_through_their_adapters(
    emu, tmp_path, model, seconds, expected_input, measured
):
    run = await fs.drive(emu, tmp_path, [fs.req(duration_s=seconds)], config={"model": model})
    assert run.result["ok"], run.result
    assert only_input(emu) == expected_input
    duration, _, _ = measure(run.result["path"])
    assert duration == pytest.approx(measured, abs=0.06)
    assert run.result["model"] == model


@pytest.mark.parametrize(
    ("output_format", "rate", "suffix"),
    [
        ("opus_48000_64", 48000, ".ogg"),
        ("pcm_24000", 24000, ".wav"),
        ("mp3_22050_32", 22050, ".mp3"),
    ],
)
async def test_output_formats_are_downloaded_as_decodable_files(
    emu, tmp_path, output_format, rate, suffix
):
    run = await fs.drive(emu, tmp_path, [fs.req()], config={"output_format": output_format})
    assert run.result["ok"], run.result
    duration, measured_rate, _ = measure(run.result["path"])
    assert measured_rate == rate and run.result["path"].endswith(suffix)
    assert duration == pytest.approx(3.0, abs=0.08)


# (fault spec, error class, substring of the message, {route: expected request count})
FAULTS = [
    ("429:first=5,retry_after=2", "RateLimitedError", "rate limited", {"submit": 1}),
    ("500:nth=1", "TransientError", "HTTP 500", {"submit": 1}),
    ("503:nth=1", "TransientError", "HTTP 503", {"submit": 1}),
    ("422:nth=1", "PermanentError", "content checker", {"submit": 1}),
    ("400:nth=1", "PermanentError", "HTTP 400", {"submit": 1}),
    ("run_error:nth=1", "TransientError", "runner_server_error", {"submit": 1, "result": 1}),
    (
        "run_error:nth=1,status=422,error_type=content_policy_violation",
        "PermanentError",
        "content_policy_violation",
        {"submit": 1, "result": 1},
    ),
    # Losing sight of a run: it is cancelled at fal, since the pipeline will resubmit.
    (
        "500:route=status,nth=1",
        "TransientError",
        "fal status: HTTP 500",
        {"status": 1, "cancel": 1},
    ),
    ("expired_url:nth=1", "TransientError", "HTTP 403", {"media": 1}),
    ("truncated:nth=1", "TransientError", "truncated", {"media": 1}),
    ("wrong_type:nth=1", "TransientError", "text/html", {"media": 1}),
]


@pytest.mark.parametrize(("faults", "error", "text", "counts"), FAULTS, ids=[f[0] for f in FAULTS])
async def test_each_fault_gives_its_documented_error(emu, tmp_path, faults, error, text, counts):
    emu.set_faults(faults)
    run = await fs.drive(emu, tmp_path, [fs.req()])
    result = run.result
    assert not result["ok"] and result["error"] == error, result
    assert text in result["message"]
    assert "\n" not in result["message"]
    for route, n in counts.items():
        assert emu.requests[route] == n, emu.stats()
    if error == "RateLimitedError":
        assert result["retry_after"] == 2.0
    if "media" in counts:  # the run completed, so fal billed it: the error says so
        assert result["cost_usd"] == pytest.approx(0.80)
    # fal-client's own retry loop was never entered, and nothing corrupt was left behind.
    assert "Retrying request" not in run.stderr
    assert fs.files_in(tmp_path / "work") == []


async def test_faults_that_slow_but_do_not_fail(emu, tmp_path):
    emu.set_faults("slow_queue:seconds=1.5;429:route=status,first=2")
    run = await fs.drive(emu, tmp_path, [fs.req()])
    assert run.result["ok"], run.result
    assert emu.status_states["IN_QUEUE"] >= 1
    # A 429 on a status poll is retried inside fal-client (it costs nothing).
    assert run.stderr.count("Retrying request") == 2
    assert emu.responses["status"]["429"] == 2


async def test_a_4xx_is_never_retried_and_the_refused_key_is_never_shown(tmp_path):
    async with FalEmulator(latency=0.1, key="the-right-key", use_synth=False) as emu:
        run = await fs.drive(emu, tmp_path, [fs.req()])
        assert run.result["error"] == "PermanentError"
        assert "FAL_KEY" in run.result["message"] and "HTTP 403" in run.result["message"]
        assert emu.requests == {"submit": 1}
    for text in (run.stdout, run.stderr, run.result["message"]):
        assert fs.KEY not in text
        assert fs.KEY.split(":")[0] not in text


async def test_the_key_never_appears_in_logs_of_a_successful_run(emu, tmp_path):
    run = await fs.drive(emu, tmp_path, [fs.req()], config={"with_logs": True})
    assert run.result["ok"]
    assert "httpcore" in run.stderr
    assert fs.KEY not in run.stdout and fs.KEY not in run.stderr
    assert fs.KEY.split(":")[1] not in run.stderr


async def test_a_missing_key_is_a_config_error_before_any_request(emu, tmp_path):
    run = await fs.drive(emu, tmp_path, [fs.req()], key=None)
    assert run.result["error"] == "ConfigError"
    assert "FAL_KEY is not set" in run.result["message"]
    assert dict(emu.requests) == {}


async def test_a_request_outside_the_limits_is_refused_before_any_request(emu, tmp_path):
    run = await fs.drive(emu, tmp_path, [fs.req(duration_s=601)])
    assert run.result["error"] == "PermanentError"
    assert "601 s is outside 3-600 s" in run.result["message"]
    assert dict(emu.requests) == {}


UNREACHABLE = {"FAL_RUN_HOST": "127.0.0.1:9", "FAL_QUEUE_RUN_HOST": "127.0.0.1:9"}


async def test_an_unreachable_fal_is_transient_and_retried_by_fal_client_once_at_most(tmp_path):
    async with FalEmulator(use_synth=False) as emu:
        run = await fs.drive(emu, tmp_path, [fs.req()], env=UNREACHABLE)
    assert run.result["error"] == "TransientError"
    assert "cannot reach fal: no connection to 127.0.0.1:9" in run.result["message"]
    # A failed connection is seen only when fal-client starts its first retry (httpx's
    # hooks see requests and answers, not transport errors): that retry is stopped.
    assert run.stderr.count("Retrying request") == 1


# On a fal-client outside the tested versions, the submit hooks only watch: fal-client
# retries, and submit_timeout_s bounds it; the error still says what fal answered.
async def test_untested_fal_client_a_persistent_429_ends_at_submit_timeout_s(emu, tmp_path):
    emu.set_faults("429:retry_after=2")
    config = {"submit_timeout_s": 1.5}
    run = await fs.drive(emu, tmp_path, [fs.req()], config=config, untested_fal_client=True)
    result = run.result
    assert result["error"] == "RateLimitedError" and result["retry_after"] == 2.0, result
    assert "HTTP 429: rate limited" in result["message"]
    assert "submit_timeout_s=1.5 s passed" in result["message"]
    assert emu.requests["submit"] >= 2 and "Retrying request" in run.stderr
    assert "outside the versions segue was tested with" in run.stderr
    assert emu.requests["status"] == 0 and fs.files_in(tmp_path / "work") == []


async def test_untested_fal_client_a_short_429_is_absorbed_by_its_retries(emu, tmp_path):
    emu.set_faults("429:first=2,retry_after=2")
    run = await fs.drive(emu, tmp_path, [fs.req()], untested_fal_client=True)
    assert run.result["ok"], run.result
    assert emu.requests["submit"] == 3 and emu.requests["media"] == 1


async def test_untested_fal_client_unreachable_ends_at_submit_timeout_s(tmp_path):
    async with FalEmulator(use_synth=False) as emu:
        run = await fs.drive(
            emu,
            tmp_path,
            [fs.req()],
            config={"submit_timeout_s": 1},
            env=UNREACHABLE,
            untested_fal_client=True,
        )
    assert run.result["error"] == "TransientError"
    assert "cannot reach fal at 127.0.0.1:9: submit_timeout_s=1 s passed" in run.result["message"]


async def test_the_deadline_cancels_the_fal_request(tmp_path):
    async with FalEmulator(latency=30, use_synth=False) as emu:
        run = await fs.drive(emu, tmp_path, [fs.req()], config={"timeout_s": 3})
        assert run.result["error"] == "TransientError"
        assert "did not finish within timeout_s=3 s; cancelled" in run.result["message"]
        assert emu.cancelled == 1 and emu.requests["cancel"] == 1


async def test_cancelling_the_task_cancels_the_fal_request(tmp_path):
    async with FalEmulator(latency=30, use_synth=False) as emu:
        run = await fs.drive(emu, tmp_path, [fs.req()], cancel_after=0.2)
        assert run.result["error"] == "CancelledError"
        assert emu.cancelled == 1
    assert fs.files_in(tmp_path / "work") == []


async def test_concurrent_requests_queue_behind_two_running(tmp_path):
    async with FalEmulator(latency=1.0, concurrency=2, use_synth=False) as emu:
        requests = [fs.req(variant=i) for i in range(4)]
        run = await fs.drive(emu, tmp_path, requests, parallel=True)
        assert all(r["ok"] for r in run.results), run.results
        assert emu.max_running == 2
        assert emu.status_states["IN_QUEUE"] >= 1
