"""HTTP routes: audio with Range/ETag, the API, tokens, origins, health and metrics."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from server_support import SCORE, connect_raw, joined, recv_json, recv_type, serve
from websockets.exceptions import ConnectionClosed

from segue.core import hookimpl

pytestmark = pytest.mark.timeout(60)


async def get(url: str, **kwargs) -> tuple[int, dict, bytes]:
    async with aiohttp.ClientSession() as http, http.get(url, **kwargs) as r:
        return r.status, r.headers.copy(), await r.read()


async def raw_get(port: int, target: str) -> int:
    """Send ``target`` byte for byte (no client-side URL normalisation); the status."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
    await writer.drain()
    status_line = await reader.readline()
    writer.close()
    return int(status_line.split()[1])


# ---------------------------------------------------------------- audio


async def test_track_full_range_etag_and_304(tmp_path):
    async with serve(tmp_path) as live:
        track = live.server.stored_tracks()[0]
        url = f"{live.http}{track.url}"
        data = (live.pipeline.primary.local_path(track.filename)).read_bytes()
        status, headers, body = await get(url)
        assert status == 200 and body == data
        assert hashlib.sha256(body).hexdigest() == track.sha256
        assert headers["ETag"] == f'"{track.sha256}"'
        assert headers["Cache-Control"] == "public, max-age=31536000, immutable"
        assert headers["Content-Type"] == "audio/wav"
        assert headers["Accept-Ranges"] == "bytes"
        assert int(headers["Content-Length"]) == len(data)

        status, headers, body = await get(url, headers={"Range": "bytes=10-99"})
        assert status == 206 and body == data[10:100]
        assert headers["Content-Range"] == f"bytes 10-99/{len(data)}"
        status, headers, body = await get(url, headers={"Range": "bytes=-16"})
        assert status == 206 and body == data[-16:]
        status, headers, body = await get(url, headers={"Range": f"bytes={len(data) - 5}-"})
        assert status == 206 and body == data[-5:]

        status, headers, body = await get(url, headers={"Range": f"bytes={len(data)}-"})
        assert status == 416 and headers["Content-Range"] == f"bytes */{len(data)}"

        status, headers, body = await get(url, headers={"If-None-Match": f'"{track.sha256}"'})
        assert status == 304 and body == b""
        assert headers["ETag"] == f'"{track.sha256}"'
        status, _h, body = await get(url, headers={"If-None-Match": '"other"'})
        assert status == 200 and body == data
        # If-Range with another validator: the whole file, not a piece of a stale one.
        status, _h, body = await get(url, headers={"Range": "bytes=0-9", "If-Range": '"old"'})
        assert status == 200 and body == data

        async with aiohttp.ClientSession() as http, http.head(url) as r:
            assert r.status == 200 and int(r.headers["Content-Length"]) == len(data)
            assert await r.read() == b""


async def test_track_404s_and_traversal(tmp_path):
    async with serve(tmp_path) as live:
        track = live.server.stored_tracks()[0]
        # Plant a file beside the tracks and one above, as an attacker would hope to reach.
        tracks_dir = live.pipeline.primary.local_path(track.filename).parent
        (tracks_dir / ("0" * 64 + ".wav")).write_bytes(b"not a stored track")
        (tmp_path / "secret.txt").write_text("secret")
        for target in [
            f"/tracks/{track.id}.ogg",  # wrong ext
            f"/tracks/{track.id}.WAV",
            f"/tracks/{track.id}",
            f"/tracks/{'0' * 64}.wav",  # a file in the folder, but not a stored track
            f"/tracks/{'f' * 64}.wav",  # unknown id
            f"/tracks/{track.id.upper()}.wav",
            f"/tracks/{track.id}.wav.bak",
            "/tracks/../adaptive_score.yaml",
            "/tracks/..%2Fadaptive_score.yaml",
            "/tracks/%2e%2e/%2e%2e/secret.txt",
            "/tracks/%2e%2e%2f%2e%2e%2fsecret.txt",
            "/tracks/....//secret.txt",
            f"/tracks/{track.id}.wav%00.txt",
            "/tracks/",
        ]:
            status = await raw_get(live.port, target)
            assert status == 404, (target, status)
        assert await raw_get(live.port, track.url) == 200
        # The 404 has the API's error shape (docs/protocol.md, HTTP errors).
        status, headers, body = await get(f"{live.http}/tracks/{'f' * 64}.wav")
        assert status == 404 and json.loads(body) == {
            "type": "error",
            "code": "not_found",
            "message": "not a stored track of this server",
        }
        assert headers["Access-Control-Allow-Origin"] == "*"


# ---------------------------------------------------------------- API


async def test_api_score_tracks_and_page(tmp_path):
    text = SCORE + "server:\n  tokens: [tok-secret-1]\n  origins: ['https://game.example']\n"
    async with serve(tmp_path, text) as live:
        headers = {"Authorization": "Bearer tok-secret-1"}
        status, _h, body = await get(f"{live.http}/api/score", headers=headers)
        assert status == 200
        assert b"tok-secret-1" not in body  # never secrets
        score = json.loads(body)
        assert [m["name"] for m in score["moods"]] == ["explore", "combat", "danger", "victory"]
        assert "rules" in score and "events" in score and "transitions" in score
        status, _h, body = await get(f"{live.http}/api/tracks", headers=headers)
        tracks = json.loads(body)["tracks"]
        assert sorted(t["mood"] for t in tracks) == [
            "combat",
            "combat",
            "danger",
            "explore",
            "victory",
        ]
        assert all(t["url"] == f"/tracks/{t['id']}.wav" for t in tracks)
        status, headers, body = await get(f"{live.http}/")
        assert status == 200 and headers["Content-Type"].startswith("text/html")
        assert b"segue" in body


async def test_post_state_and_events(tmp_path):
    async with serve(tmp_path) as live, aiohttp.ClientSession() as http:
        url = f"{live.http}/api/sessions/api-1"
        async with http.post(f"{url}/state", json={"set": {"in_combat": True}}) as r:
            assert r.status == 200
            body = await r.json()
        assert body["mood"] == "combat" and body["desired"] == "combat"
        assert body["cue"]["type"] == "cue" and body["cue"]["mood"] == "combat"
        # Same desire again: no new cue.
        async with http.post(f"{url}/state", json={"set": {"hp": 3}}) as r:
            assert (await r.json())["cue"] is None
        async with http.post(f"{url}/events", json={"name": "boss_defeated"}) as r:
            assert r.status == 200
            body = await r.json()
        assert body["stinger"]["type"] == "stinger" and body["stinger"]["mood"] == "victory"
        async with http.post(f"{url}/events", json={"name": "nope"}) as r:
            assert r.status == 404
            body = await r.json()
        assert body["code"] == "unknown_event" and "'nope'" in body["message"]


@pytest.mark.parametrize(
    "path, body, status, code, fragment",
    [
        ("state", b"{oops", 400, "bad_json", "body: not valid JSON"),
        ("state", b"", 400, "bad_json", "body: empty"),
        ("state", b'{"set": 3}', 400, "bad_message", "body.set: must be an object"),
        ("state", b'{"sett": {}}', 400, "bad_message", "body.sett: unknown field"),
        ("state", b'{"set": {"a..b": 1}}', 400, "bad_message", "state: set: bad key"),
        ("events", b'{"data": {}}', 400, "bad_message", "body.name: missing"),
        ("events", b"[1]", 400, "bad_message", "body: must be a JSON object"),
    ],
)
async def test_http_bad_bodies(tmp_path, path, body, status, code, fragment):
    async with serve(tmp_path) as live, aiohttp.ClientSession() as http:
        async with http.post(
            f"{live.http}/api/sessions/x/{path}",
            data=body,
            headers={"Content-Type": "application/json"},
        ) as r:
            assert r.status == status
            reply = await r.json()
        assert reply["type"] == "error" and reply["code"] == code
        assert reply["message"].startswith(fragment), reply["message"]
        assert "\n" not in reply["message"]


async def test_http_bad_session_id_and_too_large(tmp_path):
    async with serve(tmp_path, max_frame_bytes=2048) as live, aiohttp.ClientSession() as http:
        async with http.post(f"{live.http}/api/sessions/a%20b/state", json={}) as r:
            assert r.status == 400
            assert (await r.json())["message"].startswith("session: must be 1-64")
        big = {"set": {"blob": "x" * 5000}}
        async with http.post(f"{live.http}/api/sessions/big/state", json=big) as r:
            assert r.status == 413
            assert (await r.json())["code"] == "too_large"


async def test_healthz_and_metrics(tmp_path):
    async with serve(tmp_path) as live:
        async with connect_raw(f"{live.ws}?session=m") as ws:
            await joined(ws)
            await ws.send('{"type":"state","set":{"in_combat":true}}')
            await recv_type(ws, "cue")
            await ws.send("{bad")
            await recv_type(ws, "error")
            status, _h, body = await get(f"{live.http}/healthz")
            health = json.loads(body)
            assert status == 200
            assert health["status"] == "ok"
            assert (health["sessions"], health["connections"], health["tracks"]) == (1, 1, 5)
            status, headers, body = await get(f"{live.http}/metrics")
        text = body.decode()
        assert status == 200 and headers["Content-Type"].startswith("text/plain")
        for line in [
            "segue_connections 1.0",
            "segue_sessions 1.0",
            "segue_tracks_stored 5.0",
            "segue_cues_total 2.0",
            'segue_messages_received_total{type="state"} 1.0',
            'segue_messages_received_total{type="invalid"} 1.0',
            'segue_errors_total{code="bad_json"} 1.0',
            "segue_cache_hits_total",
            "segue_generations_total",
        ]:
            assert line in text, line


# ---------------------------------------------------------------- tokens and origins


async def test_tokens_off_everything_open(tmp_path):
    async with serve(tmp_path) as live:
        status, _h, _b = await get(f"{live.http}/api/score")
        assert status == 200
        async with connect_raw(live.ws) as ws:
            assert (await recv_json(ws))["type"] == "welcome"


async def test_tokens_on(tmp_path, monkeypatch):
    monkeypatch.setenv("SEGUE_TOKENS", "env-token, other")
    text = SCORE + "server:\n  tokens: [score-token]\n"
    async with serve(tmp_path, text) as live:
        for headers, expected in [
            ({}, 401),
            ({"Authorization": "Bearer wrong"}, 401),
            ({"Authorization": "Basic c2NvcmUtdG9rZW4="}, 401),
            ({"Authorization": "Bearer score-token"}, 200),
            ({"Authorization": "bearer env-token"}, 200),
        ]:
            status, h, body = await get(f"{live.http}/api/tracks", headers=headers)
            assert status == expected, headers
            if status == 401:
                assert json.loads(body)["code"] == "unauthorized"
                assert h["WWW-Authenticate"].startswith("Bearer")
        assert (await get(f"{live.http}/api/score?token=other"))[0] == 200
        # The audio, the page, health and metrics need no token.
        track = live.server.stored_tracks()[0]
        assert (await get(f"{live.http}{track.url}"))[0] == 200
        assert (await get(f"{live.http}/healthz"))[0] == 200
        # WebSocket: accepted, told why, then closed with 4401.
        async with connect_raw(f"{live.ws}?session=t") as ws:
            err = await recv_json(ws)
            assert err["type"] == "error" and err["code"] == "unauthorized"
            with pytest.raises(ConnectionClosed) as info:
                await recv_json(ws)
            assert info.value.rcvd.code == 4401
        assert live.server.manager.get("t") is None  # no session made for it
        async with connect_raw(f"{live.ws}?session=t&token=wrong") as ws:
            await recv_json(ws)
            with pytest.raises(ConnectionClosed) as info:
                await recv_json(ws)
            assert info.value.rcvd.code == 4401
        async with connect_raw(f"{live.ws}?session=t&token=score-token") as ws:
            assert (await recv_json(ws))["type"] == "welcome"
        async with connect_raw(
            f"{live.ws}?session=t", additional_headers={"Authorization": "Bearer env-token"}
        ) as ws:
            assert (await recv_json(ws))["type"] == "welcome"


async def test_origin_allowlist(tmp_path):
    text = SCORE + "server:\n  origins: ['https://game.example']\n"
    async with serve(tmp_path, text) as live:
        status, _h, body = await get(
            f"{live.http}/api/score", headers={"Origin": "https://evil.example"}
        )
        assert status == 403 and json.loads(body)["code"] == "forbidden_origin"
        status, _h, _b = await get(
            f"{live.http}/api/score", headers={"Origin": "https://game.example"}
        )
        assert status == 200
        async with connect_raw(f"{live.ws}", origin="https://game.example") as ws:
            assert (await recv_json(ws))["type"] == "welcome"
        # The server's own pages (the demo page at /) are not of another origin.
        async with connect_raw(f"{live.ws}", origin=live.http) as ws:
            assert (await recv_json(ws))["type"] == "welcome"
        assert (await get(f"{live.http}/api/score", headers={"Origin": live.http}))[0] == 200
        from websockets.exceptions import InvalidStatus

        with pytest.raises(InvalidStatus) as info:
            async with connect_raw(f"{live.ws}", origin="https://evil.example"):
                pass
        assert info.value.response.status_code == 403


async def test_a_dns_rebinding_page_is_not_of_the_servers_origin(tmp_path):
    """evil.example made to resolve to this server's address: its page asks with Host and
    Origin both evil.example, as its own origin would; the allowlist still refuses it."""
    import socket

    from websockets.exceptions import InvalidStatus

    text = SCORE + "server:\n  origins: ['https://game.example']\n"
    async with serve(tmp_path, text) as live:
        port = int(live.http.rpartition(":")[2].rstrip("/"))
        for name in ("evil.example", "evil.example.", "127.0.0.1.evil.example"):
            page = {"Origin": f"http://{name}:{port}", "Host": f"{name}:{port}"}
            status, _h, body = await get(f"{live.http}/api/score", headers=page)
            assert status == 403 and json.loads(body)["code"] == "forbidden_origin", name
        # The WebSocket as the browser opens it: to the name, over a socket to the server.
        with (
            socket.create_connection(("127.0.0.1", port)) as sock,
            pytest.raises(InvalidStatus) as info,
        ):
            async with connect_raw(
                f"ws://evil.example:{port}/ws", origin=f"http://evil.example:{port}", sock=sock
            ):
                pass
        assert info.value.response.status_code == 403
        # The server's own page at a name that always means this machine, or an address.
        for name in (f"localhost:{port}", f"[::1]:{port}", f"127.0.0.1:{port}"):
            page = {"Origin": f"http://{name}", "Host": name}
            assert (await get(f"{live.http}/api/score", headers=page))[0] == 200, name
        with socket.create_connection(("127.0.0.1", port)) as sock:
            async with connect_raw(
                f"ws://localhost:{port}/ws", origin=f"http://localhost:{port}", sock=sock
            ) as ws:
                assert (await recv_json(ws))["type"] == "welcome"


async def test_cors_for_pages_of_allowed_origins(tmp_path):
    text = SCORE + "server:\n  origins: ['https://game.example']\n  tokens: [tok]\n"
    game = {"Origin": "https://game.example"}
    async with serve(tmp_path, text) as live:
        url = f"{live.http}/api/sessions/s/state"
        async with aiohttp.ClientSession() as http:
            # A browser's preflight carries no token: answered for an allowed origin only.
            ask = {"Access-Control-Request-Method": "POST"}
            async with http.options(url, headers={**game, **ask}) as r:
                assert r.status == 204
                assert r.headers["Access-Control-Allow-Origin"] == "https://game.example"
                assert "Authorization" in r.headers["Access-Control-Allow-Headers"]
                assert "POST" in r.headers["Access-Control-Allow-Methods"]
            evil = {"Origin": "https://evil.example", **ask}
            async with http.options(url, headers=evil) as r:
                assert r.status == 403 and "Access-Control-Allow-Origin" not in r.headers
            # The call itself, and its errors, are readable by the page.
            auth = {**game, "Authorization": "Bearer tok"}
            async with http.post(url, json={"set": {"in_combat": True}}, headers=auth) as r:
                assert r.status == 200
                assert r.headers["Access-Control-Allow-Origin"] == "https://game.example"
            async with http.post(url, json={"set": {}}, headers=game) as r:
                assert r.status == 401
                assert r.headers["Access-Control-Allow-Origin"] == "https://game.example"
            # Without an Origin (a game engine, curl): no CORS headers at all.
            async with http.get(f"{live.http}/api/score?token=tok") as r:
                assert r.status == 200 and "Access-Control-Allow-Origin" not in r.headers
            # The audio is public: any page may fetch it and read a range's headers.
            track = live.server.stored_tracks()[0]
            async with http.get(live.http + track.url, headers={"Range": "bytes=0-9"}) as r:
                assert r.status == 206 and r.headers["Access-Control-Allow-Origin"] == "*"
                assert "Content-Range" in r.headers["Access-Control-Expose-Headers"]


async def test_ws_route_without_upgrade(tmp_path):
    async with serve(tmp_path) as live:
        status, _h, body = await get(f"{live.ws.replace('ws://', 'http://')}?session=x")
        assert status == 426 and "upgrade" in json.loads(body)["message"]


async def test_static_files_of_the_web_client(tmp_path):
    async with serve(tmp_path) as live:
        status, headers, body = await get(f"{live.http}/static/segue.js")
        assert status == 200 and "javascript" in headers["Content-Type"]
        assert (
            body
            == (Path(__file__).resolve().parents[1] / "core/server/static/segue.js").read_bytes()
        )
        for target in [
            "/static/../app.py",
            "/static/%2e%2e/app.py",
            "/static/..%2fapp.py",
            "/static/nope.js",
            "/static/",
            "/static//etc/passwd",
        ]:
            assert await raw_get(live.port, target) == 404, target


async def test_no_such_route_file_or_method_is_an_error_in_the_error_shape(tmp_path):
    # docs/protocol.md: HTTP errors have the WebSocket error shape, aiohttp's own too.
    async with serve(tmp_path) as live, aiohttp.ClientSession() as http:
        for method, path, status, code in [
            ("GET", "/nope", 404, "not_found"),
            ("GET", "/api/nope", 404, "not_found"),
            ("GET", "/static/nope.js", 404, "not_found"),
            ("GET", "/static/", 404, "not_found"),
            ("POST", "/healthz", 405, "method_not_allowed"),
            ("GET", "/api/sessions/x/state", 405, "method_not_allowed"),
        ]:
            async with http.request(method, live.http + path) as r:
                assert r.status == status, path
                assert r.content_type == "application/json", path
                body = await r.json()
            assert body["type"] == "error" and body["code"] == code, (path, body)
            assert body["message"].startswith(f"{method} {path}: "), body
        async with http.post(f"{live.http}/healthz") as r:
            assert r.headers["Allow"] == "GET,HEAD"
            assert (await r.json())["message"] == (
                "POST /healthz: method not allowed (allowed: GET, HEAD)"
            )


async def test_session_limit(tmp_path):
    async with serve(tmp_path, max_sessions=2) as live, aiohttp.ClientSession() as http:
        for sid in ("one", "two"):
            async with http.post(f"{live.http}/api/sessions/{sid}/state", json={}) as r:
                assert r.status == 200
        async with http.post(f"{live.http}/api/sessions/three/state", json={}) as r:
            assert r.status == 503 and (await r.json())["code"] == "too_many_sessions"
        async with http.post(f"{live.http}/api/sessions/one/state", json={}) as r:
            assert r.status == 200  # existing sessions still work
        status, _h, body = await get(f"{live.ws.replace('ws://', 'http://')}?session=three")
        assert status == 503 and json.loads(body)["code"] == "too_many_sessions"
        async with connect_raw(f"{live.ws}?session=two") as ws:
            assert (await recv_json(ws))["type"] == "welcome"


# ---------------------------------------------------------------- a plugin's bug


class BrokenBackends:
    """A cache and a sink plugin whose methods fail on the serving path (their bugs): what
    they wrap answers until ``broken`` is set."""

    def __init__(self) -> None:
        self.broken = False

    @hookimpl
    def segue_register_cache_backends(self, register: Any) -> None:
        register("never-used", lambda config, state_dir: None)


class BrokenCache:
    def __init__(self, plugin: BrokenBackends, real: Any) -> None:
        self.plugin, self.real = plugin, real

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)

    def get(self, key: str) -> Any:
        if self.plugin.broken:
            raise RuntimeError(f"lost {key[:4]}")
        return self.real.get(key)


class BrokenSink(BrokenCache):
    async def open(self, filename: str, start: int = 0, end: int | None = None) -> bytes:
        if start > 0:
            raise OSError("bucket gone")
        return await self.real.open(filename, start, min(start + 100, end or start + 100))


async def test_a_cache_or_sink_that_raises_on_the_request_path_is_one_line_naming_its_plugin(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    plugin = BrokenBackends()
    async with serve(tmp_path, extra_plugins=(("broken-backends", plugin),)) as live:
        track = live.server.stored_tracks()[0]
        live.pipeline.cache = BrokenCache(plugin, live.pipeline.cache)
        live.server.sink = BrokenSink(plugin, live.server.sink)
        live.pipeline.primary = BrokenSink(plugin, live.pipeline.primary)
        caplog.set_level(logging.INFO)

        # The cache's get raises: a 500 in the error shape, one line naming the plugin.
        plugin.broken = True
        status, _h, body = await get(f"{live.http}{track.url}")
        assert status == 500 and json.loads(body)["code"] == "server_error"
        errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
        assert [r.getMessage() for r in errors] == [
            f"GET {track.url}: plugin broken-backends: RuntimeError: lost {track.id[:4]}"
        ]
        assert errors[0].exc_info is None  # the traceback only at debug level (-v)

        # The sink fails on the first chunk (a range from byte 10): the status is not sent
        # yet, so a 500 in the error shape, one line.
        plugin.broken = False
        caplog.clear()
        status, _h, body = await get(f"{live.http}{track.url}", headers={"Range": "bytes=10-20"})
        assert status == 500 and json.loads(body)["code"] == "server_error"
        errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
        assert [r.getMessage() for r in errors] == [
            f"GET {track.url}: plugin broken-backends: OSError: bucket gone"
        ]

        # The sink fails after the first chunk: the connection is cut, one line.
        caplog.clear()
        with pytest.raises(aiohttp.ClientPayloadError):
            await get(f"{live.http}{track.url}")
        errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
        assert [r.getMessage() for r in errors] == [
            f"GET {track.url}: plugin broken-backends: OSError: bucket gone (connection closed)"
        ]


async def test_a_plugin_failing_under_the_directors_timer_or_stored_tracks_is_named(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # combat has no track: the director asks the cache again on a tick and on stored tracks.
    plugin = BrokenBackends()
    async with serve(
        tmp_path, pregen=["explore"], extra_plugins=(("broken-backends", plugin),)
    ) as live:
        live.pipeline.cache = BrokenCache(plugin, live.pipeline.cache)
        manager = live.server.manager
        session, _ = manager.get_or_create("s1")
        other, _ = manager.get_or_create("s2")
        session.update(time.time(), set={"in_combat": True})
        assert session.desired == "combat" and session.mood == "explore"
        caplog.set_level(logging.INFO)
        plugin.broken = True

        manager.tracks_changed()
        session._tick()
        errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
        said = "plugin broken-backends: RuntimeError: lost "
        assert [r.getMessage().split(said)[0] for r in errors] == [
            "session s1: the director failed on tracks_changed: ",
            "session s1: the director failed on tick: ",
        ]
        assert all(said in r.getMessage() and r.exc_info is None for r in errors)

        # Each session keeps running: once the cache answers, both decide again.
        plugin.broken = False
        caplog.clear()
        manager.tracks_changed()
        session._tick()
        other.update(time.time(), set={"in_combat": True})
        assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
        assert session.desired == other.desired == "combat"
        assert session.mood == other.mood == "explore"
