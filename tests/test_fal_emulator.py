"""The fal emulator speaks fal's queue protocol: checked with a plain HTTPS client (what
each route answers) and with fal-client itself, in a subprocess (that the library accepts it)."""

from __future__ import annotations

import asyncio
import io
import ssl

import aiohttp
import fal_support as fs
import numpy as np
import pytest
import soundfile as sf

from segue.plugins.fal import render
from segue.plugins.fal.emulator import FalEmulator

ELEVEN = "fal-ai/elevenlabs/music"
AUTH = {"Authorization": "Key any-key"}
SHORT = {"prompt": "harp", "music_length_ms": 3000}


class Client:
    """HTTPS to the emulator, trusting only its CA."""

    def __init__(self, emu: FalEmulator) -> None:
        self.emu = emu
        context = ssl.create_default_context(cafile=str(emu.ca_file))
        self.session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=context))

    async def call(self, method: str, path_or_url: str, *, headers=AUTH, **kw):
        url = path_or_url if path_or_url.startswith("https://") else self.emu.url + path_or_url
        async with self.session.request(method, url, headers=headers, **kw) as resp:
            body = await resp.read()
            return resp.status, resp.headers, body

    async def json(self, method: str, path_or_url: str, **kw):
        import json

        status, _headers, body = await self.call(method, path_or_url, **kw)
        return status, json.loads(body)

    async def wait(self, status_url: str, state: str = "COMPLETED") -> dict:
        for _ in range(400):
            _, body = await self.json("GET", status_url)
            if body["status"] == state:
                return body
            await asyncio.sleep(0.02)
        raise AssertionError(f"never {state}")


@pytest.fixture
async def client():
    # Long enough that a loaded machine still sees each state before the next.
    async with FalEmulator(latency=1.0, use_synth=False) as emu:
        c = Client(emu)
        try:
            yield c
        finally:
            await c.session.close()


async def test_submit_answers_urls_without_the_sub_path(client):
    status, body = await client.json(
        "POST", f"/{ELEVEN}", json={"prompt": "harp", "music_length_ms": 3000}
    )
    assert status == 200
    base = f"{client.emu.url}/fal-ai/elevenlabs/requests/{body['request_id']}"
    assert body["response_url"] == base
    assert body["status_url"] == base + "/status"
    assert body["cancel_url"] == base + "/cancel"


async def test_a_request_goes_from_in_progress_with_logs_to_completed_with_a_result(client):
    _, sub = await client.json(
        "POST", f"/{ELEVEN}", json={"prompt": "harp", "music_length_ms": 4000}
    )
    _, running = await client.json("GET", sub["status_url"] + "?logs=true")
    assert running["status"] == "IN_PROGRESS" and running["logs"][0]["message"]
    _, quiet = await client.json("GET", sub["status_url"] + "?logs=false")
    assert "logs" in quiet and quiet["logs"] is None
    status, _early = await client.json("GET", sub["response_url"])
    assert status == 400
    done = await client.wait(sub["status_url"])
    assert "logs" in done and "metrics" in done
    status, result = await client.json("GET", sub["response_url"])
    assert status == 200
    audio = result["audio"]
    assert audio["content_type"] == "audio/mpeg" and audio["file_name"].endswith(".mp3")
    status, headers, data = await client.call("GET", audio["url"], headers={})
    assert status == 200 and headers["Content-Type"] == "audio/mpeg"
    assert len(data) == audio["file_size"]
    samples, rate = sf.read(io.BytesIO(data))
    assert rate == 44100 and len(samples) / rate == pytest.approx(4.0, abs=0.06)
    assert np.abs(samples).max() > 0.1


async def test_at_most_two_run_and_the_rest_wait_with_queue_positions(client):
    subs = []
    for i in range(4):
        _, sub = await client.json(
            "POST", f"/{ELEVEN}", json={"prompt": f"harp {i}", "music_length_ms": 3000}
        )
        subs.append(sub)
    states = [(await client.json("GET", s["status_url"]))[1] for s in subs]
    assert [s["status"] for s in states] == ["IN_PROGRESS", "IN_PROGRESS", "IN_QUEUE", "IN_QUEUE"]
    assert [s.get("queue_position") for s in states[2:]] == [0, 1]
    for s in subs:
        await client.wait(s["status_url"])
    assert client.emu.max_running == 2


async def test_keys_are_checked(tmp_path):
    async with FalEmulator(key="sekrit", use_synth=False) as emu:
        c = Client(emu)
        try:
            body = {"prompt": "harp", "music_length_ms": 3000}
            assert (await c.json("POST", f"/{ELEVEN}", json=body, headers={}))[0] == 401
            assert (
                await c.json(
                    "POST", f"/{ELEVEN}", json=body, headers={"Authorization": "Bearer sekrit"}
                )
            )[0] == 401
            status, refused = await c.json("POST", f"/{ELEVEN}", json=body)
            assert status == 403 and "sekrit" not in str(refused)
            ok = await c.json(
                "POST", f"/{ELEVEN}", json=body, headers={"Authorization": "Key sekrit"}
            )
            assert ok[0] == 200
            assert emu.stats()["responses"]["submit"] == {"401": 2, "403": 1, "200": 1}
        finally:
            await c.session.close()


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            {"prompt": "harp", "music_length_ms": 1000},
            {
                "type": "greater_than_equal",
                "loc": ["body", "music_length_ms"],
                "msg": "Input should be greater than or equal to 3000",
                "input": 1000,
                "ctx": {"ge": 3000},
            },
        ),
        (
            {"prompt": "harp", "output_format": "wav"},
            {"type": "literal_error", "loc": ["body", "output_format"]},
        ),
        ({"prompt": 5}, {"type": "string_type", "loc": ["body", "prompt"]}),
        ({"prompt": "harp", "force_instrumental": "yes"}, {"type": "bool_type"}),
        (
            {},
            {
                "type": "value_error",
                "loc": ["body"],
                "msg": "Value error, Either prompt or composition_plan must be provided",
            },
        ),
        ({"prompt": "harp", "composition_plan": fs.plan(3000)}, {"type": "value_error"}),
        ({"composition_plan": fs.plan(3000), "music_length_ms": 3000}, {"type": "value_error"}),
        (
            {"composition_plan": {**fs.plan(3000), "sections": [{"section_name": "A"}]}},
            {
                "type": "missing",
                "loc": ["body", "composition_plan", "sections", 0, "positive_local_styles"],
            },
        ),
        (
            {"composition_plan": fs.plan(*[3000] * 31)},
            {"type": "too_long", "loc": ["body", "composition_plan", "sections"]},
        ),
        ({"composition_plan": fs.plan(121000)}, {"type": "less_than_equal"}),
    ],
)
async def test_invalid_input_gets_a_fastapi_shaped_422(client, body, expected):
    status, answer = await client.json("POST", f"/{ELEVEN}", json=body)
    assert status == 422
    first = answer["detail"][0]
    assert {k: first[k] for k in expected} == expected
    assert client.emu.jobs == {}


async def test_an_unknown_endpoint_is_404_and_bad_json_is_422(client):
    assert (await client.json("POST", "/fal-ai/nope", json={"prompt": "x"}))[0] == 404
    status, answer = await client.json("POST", f"/{ELEVEN}", data=b"{not json")
    assert status == 422 and answer["detail"][0]["type"] == "json_invalid"


async def test_cancel_stops_a_queued_request(client):
    subs = [
        (await client.json("POST", f"/{ELEVEN}", json={"prompt": "harp", "music_length_ms": 3000}))[
            1
        ]
        for _ in range(3)
    ]
    status, body = await client.json("PUT", subs[2]["cancel_url"])
    assert (status, body) == (202, {"status": "CANCELLATION_REQUESTED"})
    done = await client.wait(subs[2]["status_url"])
    assert done["status"] == "COMPLETED"
    status, result = await client.json("GET", subs[2]["response_url"])
    assert status == 499 and result["error_type"] == "client_cancelled"
    await client.wait(subs[0]["status_url"])
    assert (await client.json("PUT", subs[0]["cancel_url"]))[1] == {"status": "ALREADY_COMPLETED"}
    assert client.emu.cancelled == 1


async def test_media_urls_expire():
    async with FalEmulator(latency=0.0, media_ttl_s=2.0, use_synth=False) as emu:
        c = Client(emu)
        try:
            _, sub = await c.json(
                "POST", f"/{ELEVEN}", json={"prompt": "harp", "music_length_ms": 3000}
            )
            await c.wait(sub["status_url"])
            url = (await c.json("GET", sub["response_url"]))[1]["audio"]["url"]
            assert (await c.call("GET", url, headers={}))[0] == 200
            await asyncio.sleep(2.1)
            status, _, body = await c.call("GET", url, headers={})
            assert status == 403 and b"expired" in body
        finally:
            await c.session.close()


async def test_faults_can_be_changed_and_counted_over_http(client):
    status, body = await client.json("POST", "/_emulator/faults", data=b"503:first=1")
    assert status == 200 and body == {"faults": ["503:first=1"]}
    assert (await client.json("POST", f"/{ELEVEN}", json=SHORT))[0] == 503
    assert (await client.json("POST", f"/{ELEVEN}", json=SHORT))[0] == 200
    status, stats = await client.json("GET", "/_emulator/stats")
    assert stats["requests"]["submit"] == 2
    assert stats["faults"] == [{"rule": "503:first=1", "seen": 2, "fired": 1}]
    assert (await client.json("POST", "/_emulator/faults", data=b"teapot"))[0] == 400


async def test_429_carries_retry_after(client):
    client.emu.set_faults("429:nth=1,retry_after=3")
    status, headers, _ = await client.call("POST", f"/{ELEVEN}", json=SHORT)
    assert status == 429 and headers["Retry-After"] == "3"


async def test_fal_client_itself_accepts_the_protocol(client, tmp_path):
    ok = await fs.drive(
        client.emu,
        tmp_path,
        raw={"endpoint": ELEVEN, "input": {"prompt": "harp", "music_length_ms": 3000}},
    )
    result = ok.result
    assert result["ok"] and result["states"][-1] == "Completed" and "InProgress" in result["states"]
    assert result["result"]["audio"]["url"].startswith(client.emu.url + "/_media/")
    bad = await fs.drive(
        client.emu,
        tmp_path,
        raw={"endpoint": ELEVEN, "input": {"prompt": "harp", "music_length_ms": 1}},
    )
    assert bad.result["status"] == 422
    assert bad.result["detail"][0]["loc"] == ["body", "music_length_ms"]
    # A sub-path endpoint: status and result URLs drop it, and fal-client follows them.
    stable = await fs.drive(
        client.emu,
        tmp_path,
        raw={
            "endpoint": "fal-ai/stable-audio-25/text-to-audio",
            "input": {"prompt": "harp", "seconds_total": 2},
        },
    )
    assert stable.result["ok"] and stable.result["result"]["audio"]["content_type"] == "audio/wav"


@pytest.mark.parametrize(
    ("fmt", "rate", "content_type"),
    [
        ("mp3_44100_128", 44100, "audio/mpeg"),
        ("opus_48000_96", 48000, "audio/ogg"),
        ("wav", 44100, "audio/wav"),
    ],
)
def test_encodings_decode_to_the_same_length(fmt, rate, content_type):
    audio = render.render("harp 100 BPM", None, 2.0, use_synth=False)
    data, ctype, _ = render.encode(audio, fmt)
    assert ctype == content_type
    decoded, decoded_rate = sf.read(io.BytesIO(data))
    assert decoded_rate == rate and len(decoded) / rate == pytest.approx(2.0, abs=0.03)


def test_raw_pcm_is_headerless_16_bit_mono():
    audio = render.render("harp", None, 1.0, use_synth=False)
    data, ctype, _ = render.encode(audio, "pcm_16000")
    assert ctype == "audio/pcm" and len(data) == 2 * 16000


def test_the_emulator_makes_its_music_with_the_synth_when_there_is_one():
    assert render._synth_factory() is not None  # the built-in, found in the plugin registry
    synth = render.render("calm harp, 90 BPM", None, 2.0, use_synth=True)
    tone = render.render("calm harp, 90 BPM", None, 2.0, use_synth=False)
    assert synth.shape == tone.shape == (88200, 2)
    assert not np.allclose(synth, tone)
    assert np.abs(synth).max() > 0.05


def test_the_emulator_finds_the_synth_by_name_and_plays_a_tone_without_it(monkeypatch):
    # The synth is looked up in segue's generator registry, not imported: with the synth
    # plugin disabled there is no "synth" generator, and the emulator answers with its tone.
    monkeypatch.setenv("SEGUE_DISABLE_PLUGINS", "synth")
    assert render._synth_factory() is None
    fallback = render.render("calm harp, 90 BPM", None, 2.0, use_synth=True)
    tone = render.render("calm harp, 90 BPM", None, 2.0, use_synth=False)
    assert np.array_equal(fallback, tone)


def test_answers_are_song_shaped_with_a_tempo_near_the_prompts():
    from segue.core import analysis

    audio = render.render("harp 100 BPM", None, 20.0, use_synth=False)
    assert audio.shape == (20 * render.RATE, 2)
    rms = [
        float(np.sqrt(np.mean(audio[a : a + render.RATE // 2] ** 2)))
        for a in range(0, len(audio), render.RATE // 2)
    ]
    assert rms[0] < 0.6 * np.median(rms)  # an intro that swells in
    assert rms[-1] < 0.1 * np.median(rms)  # a fade-out at the end
    rhythm = analysis.analyse(audio[: 15 * render.RATE], render.RATE)
    assert rhythm is not None
    off = abs(rhythm.bpm / 100.0 - 1)
    assert 0.015 <= off <= 0.035, rhythm.bpm  # near the prompt's tempo, not exactly it


def test_audio_dir_answers_with_real_files_chosen_per_request(tmp_path):
    rate = 48000
    t = np.arange(8 * rate) / rate
    for i, freq in enumerate((220.0, 330.0, 440.0)):
        tone = 0.3 * np.sin(2 * np.pi * freq * t)
        sf.write(tmp_path / f"song{i}.flac", np.stack([tone, tone], axis=1), rate)
    first = render.render("battle", None, 5.0, audio_dir=tmp_path)
    again = render.render("battle", None, 5.0, audio_dir=tmp_path)
    assert np.array_equal(first, again)
    assert first.shape == (5 * render.RATE, 2)
    assert np.abs(first[-10:]).max() < 1e-3  # cut mid-song: faded out
    answers = {render.render(p, None, 5.0, audio_dir=tmp_path)[1000, 0] for p in "abcdefgh"}
    assert len(answers) > 1  # different requests, different recordings
    longer = render.render("battle", None, 10.0, audio_dir=tmp_path)
    assert longer.shape == (10 * render.RATE, 2)
    assert np.abs(longer[9 * render.RATE :]).max() == 0.0  # the song ended: silence
    with pytest.raises(ValueError, match="no audio files"):
        render.render("x", None, 1.0, audio_dir=tmp_path / "nothing")
