"""A local emulator of fal's queue API, for working and testing offline.

It serves, over HTTPS with a certificate for 127.0.0.1 from its own CA (trustme), what
fal-client 1.0.3 talks to (see docs/generators.md, section fal):

    POST /{owner}/{alias}[/{path}]                 submit: {request_id, response_url, ...}
    GET  /{owner}/{alias}/requests/{id}/status      IN_QUEUE / IN_PROGRESS / COMPLETED
    GET  /{owner}/{alias}/requests/{id}             the result, or the run's error
    PUT  /{owner}/{alias}/requests/{id}/cancel      202 CANCELLATION_REQUESTED
    GET  /_media/{token}/{file}                     the audio (no auth; expires)
    GET  /_emulator/stats                           request counts per route (debug)
    POST /_emulator/faults                          replace the fault spec (body: text)

Point fal-client at it with ``FAL_RUN_HOST`` and ``FAL_QUEUE_RUN_HOST`` set to
``127.0.0.1:PORT`` and ``SSL_CERT_FILE`` set to the CA file it writes.

In tests: ``async with FalEmulator(latency=0.2) as emu: ...emu.env()...``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import binascii
import contextlib
import hashlib
import json
import logging
import random
import secrets
import ssl
import sys
import tempfile
import time
import uuid
from collections import Counter, OrderedDict, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from aiohttp import web

from segue.plugins.fal import band_split, render
from segue.plugins.fal.emulator_args import add_arguments
from segue.plugins.fal.faults import FaultRule, FaultSpecError, parse_faults
from segue.plugins.fal.schemas import MODELS, Model, demucs_stems

log = logging.getLogger("segue.plugins.fal.emulator")


@dataclass
class Job:
    id: str
    endpoint: str
    base: str  # /{owner}/{alias}/requests/{id}
    model: Model
    input: dict[str, Any]
    submitted: float
    not_before: float
    state: str = "IN_QUEUE"
    logs: list[dict[str, Any]] = field(default_factory=list)
    started: float | None = None
    finished: float | None = None
    result: dict[str, Any] | None = None
    error: tuple[int, dict[str, Any]] | None = None  # (status, body) of the result fetch
    run_error: FaultRule | None = None
    task: asyncio.Task[None] | None = None

    def log(self, message: str) -> None:
        self.logs.append(
            {
                "message": message,
                "level": "INFO",
                "source": "user",
                "timestamp": datetime.now(UTC).isoformat(),
            }
        )


@dataclass
class Media:
    data: bytes
    content_type: str
    file_name: str
    expires: float


class FalEmulator:
    """The emulator server. Use ``async with`` (or ``start``/``stop``)."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        key: str | None = None,
        latency: float = 1.0,
        faults: str | None = None,
        concurrency: int = 2,
        media_ttl_s: float = 600.0,
        ca_file: str | Path | None = None,
        seed: int = 0,
        use_synth: bool = True,
        default_seconds: float = 30.0,
        audio_dir: str | Path | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.key = key
        self.latency = latency
        self.concurrency = concurrency
        self.media_ttl_s = media_ttl_s
        self.use_synth = use_synth
        # Answer with real recordings from this folder instead of the synth.
        self.audio_dir = Path(audio_dir) if audio_dir else None
        self.default_seconds = default_seconds  # for models that choose their own length
        self.faults: list[FaultRule] = parse_faults(faults)
        self.rng = random.Random(seed)
        self._ca_file = Path(ca_file) if ca_file else None
        self._tmpdir: tempfile.TemporaryDirectory[str] | None = None
        self.jobs: dict[str, Job] = {}
        self.queue: list[Job] = []
        self.running: set[str] = set()
        self.media: dict[str, Media] = {}
        self.requests: Counter[str] = Counter()
        self.responses: defaultdict[str, Counter[str]] = defaultdict(Counter)
        self.status_states: Counter[str] = Counter()  # states served by status polls
        self.max_running = 0
        self.cancelled = 0
        # The songs it made (sha256 of the bytes served -> how), so that fal-ai/demucs
        # answers them with the synth's own stems; the most recent SONGS_REMEMBERED only.
        self.songs: OrderedDict[str, tuple[Any, ...]] = OrderedDict()
        self.separations = Counter[str]()  # "synth" (recognised) or "band split"
        self._runner: web.AppRunner | None = None
        self._schedule_handle: asyncio.TimerHandle | None = None

    # -- lifecycle ---------------------------------------------------------------------

    async def __aenter__(self) -> FalEmulator:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def start(self) -> None:
        import trustme

        ca = trustme.CA()
        cert = ca.issue_cert("127.0.0.1", "localhost", "::1")
        if self._ca_file is None:
            self._tmpdir = tempfile.TemporaryDirectory(prefix="segue-fal-emulator-")
            self._ca_file = Path(self._tmpdir.name) / "ca.pem"
        self._ca_file.parent.mkdir(parents=True, exist_ok=True)
        ca.cert_pem.write_to_path(str(self._ca_file))
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        cert.configure_cert(context)

        app = web.Application(middlewares=[self._count])
        app.router.add_get("/_emulator/stats", self._stats)
        app.router.add_post("/_emulator/faults", self._set_faults)
        app.router.add_get("/_media/{token}/{name}", self._media)
        app.router.add_get("/{owner}/{alias}/requests/{rid}/status", self._status)
        app.router.add_put("/{owner}/{alias}/requests/{rid}/cancel", self._cancel)
        app.router.add_get("/{owner}/{alias}/requests/{rid}", self._result)
        app.router.add_post("/{owner}/{alias}", self._submit)
        app.router.add_post("/{owner}/{alias}/{path:.+}", self._submit)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, ssl_context=context)
        await site.start()
        server = site._server
        if server is not None and server.sockets:  # port 0: the one the OS chose
            self.port = server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        for job in self.jobs.values():
            if job.task is not None and not job.task.done():
                job.task.cancel()
        if self._schedule_handle is not None:
            self._schedule_handle.cancel()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._tmpdir is not None:
            self._tmpdir.cleanup()
            self._tmpdir = None

    @property
    def netloc(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def url(self) -> str:
        return f"https://{self.netloc}"

    @property
    def ca_file(self) -> Path:
        assert self._ca_file is not None, "start the emulator first"
        return self._ca_file

    def env(self) -> dict[str, str]:
        """The variables that point fal-client (and segue's downloads) at this emulator."""
        return {
            "FAL_RUN_HOST": self.netloc,
            "FAL_QUEUE_RUN_HOST": self.netloc,
            "SSL_CERT_FILE": str(self.ca_file),
        }

    def set_faults(self, spec: str | None) -> None:
        self.faults = parse_faults(spec)

    def stats(self) -> dict[str, Any]:
        states = Counter(job.state for job in self.jobs.values())
        return {
            "requests": dict(self.requests),
            "responses": {route: dict(c) for route, c in self.responses.items()},
            "jobs": {
                "submitted": len(self.jobs),
                "states": dict(states),
                "cancelled": self.cancelled,
                "max_running": self.max_running,
            },
            "status_states": dict(self.status_states),
            "separations": dict(self.separations),
            "faults": [
                {"rule": r.describe(), "seen": r.seen, "fired": r.fired} for r in self.faults
            ],
        }

    # -- plumbing ----------------------------------------------------------------------

    @web.middleware
    async def _count(self, request: web.Request, handler: Any) -> web.StreamResponse:
        route = _route_name(request)
        self.requests[route] += 1
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            self.responses[route][str(exc.status)] += 1
            raise
        self.responses[route][str(response.status)] += 1
        return response

    def _fault(self, route: str) -> FaultRule | None:
        """The first status fault on ``route`` that fires (every such rule counts the event)."""
        fired = None
        for rule in self.faults:
            if rule.status is not None and rule.route == route and rule.fires(self.rng):
                fired = fired or rule
        return fired

    def _named(self, kind: str) -> FaultRule | None:
        """The first ``kind`` fault that fires (every such rule counts the event)."""
        fired = None
        for rule in self.faults:
            if rule.kind == kind and rule.fires(self.rng):
                fired = fired or rule
        return fired

    def _auth(self, request: web.Request) -> web.Response | None:
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if not header:
            return _json(401, {"detail": "Missing authorization header"})
        if scheme.lower() != "key" or not token.strip():
            return _json(401, {"detail": "Invalid authorization header: expected 'Key <key>'"})
        if self.key is not None and not secrets.compare_digest(token.strip(), self.key):
            return _json(403, {"detail": "Access denied: the key is not valid"})
        return None

    def _fault_response(self, rule: FaultRule, request_id: str | None = None) -> web.Response:
        status = rule.status or 500
        headers = {"x-fal-request-id": request_id or uuid.uuid4().hex}
        detail = rule.options.get("detail")
        error_type = rule.options.get("error_type")
        if status == 429:
            headers["Retry-After"] = rule.options.get("retry_after", "1")
            body: dict[str, Any] = {"detail": detail or "Too many concurrent requests"}
        elif status == 422:
            body = {
                "detail": [
                    {
                        "loc": ["body", "prompt"],
                        "msg": detail or "The content was flagged by a content checker.",
                        "type": error_type or "content_policy_violation",
                        "url": "https://docs.fal.ai/errors#content_policy_violation",
                        "input": "",
                    }
                ]
            }
        else:
            body = {"detail": detail or _REASONS.get(status, "Error")}
            if error_type or status >= 500:
                body["error_type"] = error_type or _ERROR_TYPES.get(status, "internal_error")
        if "error_type" in body:
            headers["X-Fal-Error-Type"] = body["error_type"]
        return _json(status, body, headers)

    def _job(self, request: web.Request) -> Job | web.Response:
        job = self.jobs.get(request.match_info["rid"])
        owner, alias = request.match_info["owner"], request.match_info["alias"]
        if job is None or job.endpoint.split("/")[:2] != [owner, alias]:
            return _json(404, {"detail": "Request not found"})
        return job

    # -- the queue API -----------------------------------------------------------------

    async def _submit(self, request: web.Request) -> web.Response:
        if (refused := self._auth(request)) is not None:
            return refused
        if (rule := self._fault("submit")) is not None:
            return self._fault_response(rule)
        owner, alias = request.match_info["owner"], request.match_info["alias"]
        path = request.match_info.get("path")
        endpoint = f"{owner}/{alias}" + (f"/{path}" if path else "")
        model = MODELS.get(endpoint)
        if model is None:
            return _json(404, {"detail": f"Application '{endpoint}' not found"})
        try:
            data = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            return _json(
                422,
                {
                    "detail": [
                        {
                            "type": "json_invalid",
                            "loc": ["body"],
                            "msg": "JSON decode error",
                            "input": {},
                        }
                    ]
                },
            )
        errors = model.validate(data)
        if errors:
            return _json(422, {"detail": errors})
        rid = str(uuid.uuid4())
        now = time.monotonic()
        slow = self._named("slow_queue")
        delay = float(slow.options.get("seconds", 5)) if slow else 0.0
        base = f"/{owner}/{alias}/requests/{rid}"
        job = Job(rid, endpoint, base, model, data, now, now + delay)
        job.run_error = self._named("run_error")
        self.jobs[rid] = job
        self.queue.append(job)
        self._schedule()
        origin = f"https://{request.host}"
        return _json(
            200,
            {
                "request_id": rid,
                "response_url": origin + base,
                "status_url": origin + base + "/status",
                "cancel_url": origin + base + "/cancel",
                "queue_position": self.queue.index(job) if job in self.queue else 0,
            },
            {"x-fal-request-id": rid},
        )

    async def _status(self, request: web.Request) -> web.Response:
        if (refused := self._auth(request)) is not None:
            return refused
        job = self._job(request)
        if isinstance(job, web.Response):
            return job
        if (rule := self._fault("status")) is not None:
            return self._fault_response(rule, job.id)
        with_logs = request.query.get("logs", "").lower() in ("1", "true")
        origin = f"https://{request.host}"
        body: dict[str, Any] = {
            "status": job.state,
            "request_id": job.id,
            "response_url": origin + job.base,
            "status_url": origin + job.base + "/status",
            "cancel_url": origin + job.base + "/cancel",
            "logs": list(job.logs) if with_logs else None,
        }
        self.status_states[job.state] += 1
        if job.state == "IN_QUEUE":
            body["queue_position"] = self.queue.index(job)
        if job.state == "COMPLETED":
            body["metrics"] = {"inference_time": round((job.finished or 0) - (job.started or 0), 3)}
        return _json(200, body, {"x-fal-request-id": job.id})

    async def _result(self, request: web.Request) -> web.Response:
        if (refused := self._auth(request)) is not None:
            return refused
        job = self._job(request)
        if isinstance(job, web.Response):
            return job
        if (rule := self._fault("result")) is not None:
            return self._fault_response(rule, job.id)
        headers = {"x-fal-request-id": job.id}
        if job.state != "COMPLETED":
            return _json(400, {"detail": "Request is still in progress"}, headers)
        if job.error is not None:
            status, body = job.error
            if isinstance(body.get("error_type"), str):
                headers["X-Fal-Error-Type"] = body["error_type"]
            return _json(status, body, headers)
        return _json(200, job.result or {}, headers)

    async def _cancel(self, request: web.Request) -> web.Response:
        if (refused := self._auth(request)) is not None:
            return refused
        job = self._job(request)
        if isinstance(job, web.Response):
            return job
        if (rule := self._fault("cancel")) is not None:
            return self._fault_response(rule, job.id)
        if job.state == "COMPLETED":
            return _json(400, {"status": "ALREADY_COMPLETED"}, {"x-fal-request-id": job.id})
        self.cancelled += 1
        if job in self.queue:
            self.queue.remove(job)
        if job.task is not None and not job.task.done():
            job.task.cancel()
        self.running.discard(job.id)
        job.state = "COMPLETED"
        job.finished = time.monotonic()
        job.error = (499, {"detail": "Request was cancelled", "error_type": "client_cancelled"})
        self._schedule()
        return _json(202, {"status": "CANCELLATION_REQUESTED"}, {"x-fal-request-id": job.id})

    async def _media(self, request: web.Request) -> web.StreamResponse:
        media = self.media.get(request.match_info["token"])
        if media is None or media.file_name != request.match_info["name"]:
            return web.Response(status=404, text="Not Found")
        # Every download counts for every download fault, whichever fires.
        expired = self._named("expired_url")
        wrong_type = self._named("wrong_type")
        truncated = self._named("truncated")
        if time.monotonic() > media.expires or expired:
            return web.Response(
                status=403,
                text=_EXPIRED,
                content_type="application/xml",
            )
        if wrong_type:
            return web.Response(
                status=200,
                text="<html><body><h1>502 Bad Gateway</h1></body></html>",
                content_type="text/html",
            )
        if truncated:
            # Promise every byte, send half, then drop the connection.
            response = web.StreamResponse(
                status=200,
                headers={
                    "Content-Type": media.content_type,
                    "Content-Length": str(len(media.data)),
                },
            )
            await response.prepare(request)
            await response.write(media.data[: len(media.data) // 2])
            transport = request.transport
            if transport is not None:
                transport.abort()
            return response
        return web.Response(
            body=media.data,
            headers={"Content-Type": media.content_type},
        )

    async def _stats(self, request: web.Request) -> web.Response:
        return _json(200, self.stats())

    async def _set_faults(self, request: web.Request) -> web.Response:
        spec = await request.text()
        try:
            self.set_faults(spec)
        except FaultSpecError as exc:
            return _json(400, {"detail": str(exc)})
        return _json(200, {"faults": [r.describe() for r in self.faults]})

    # -- running jobs ------------------------------------------------------------------

    def _schedule(self) -> None:
        """Start queued jobs while fewer than ``concurrency`` run (slow ones wait)."""
        now = time.monotonic()
        wake: float | None = None
        for job in list(self.queue):
            if len(self.running) >= self.concurrency:
                break
            if job.not_before > now:
                wake = job.not_before if wake is None else min(wake, job.not_before)
                continue
            self.queue.remove(job)
            self.running.add(job.id)
            self.max_running = max(self.max_running, len(self.running))
            job.state = "IN_PROGRESS"
            job.started = now
            job.log("Starting generation")
            job.task = asyncio.get_running_loop().create_task(self._run(job))
        if wake is not None:
            if self._schedule_handle is not None:
                self._schedule_handle.cancel()
            self._schedule_handle = asyncio.get_running_loop().call_later(
                max(0.0, wake - now) + 0.001, self._schedule
            )

    async def _run(self, job: Job) -> None:
        started = time.monotonic()
        try:
            if job.run_error is not None:
                await asyncio.sleep(self.latency)
                status = int(job.run_error.options.get("status", 500))
                error_type = job.run_error.options.get("error_type", "runner_server_error")
                detail = job.run_error.options.get("detail", "Model run failed")
                body: dict[str, Any]
                if status == 422:
                    body = {
                        "detail": [
                            {
                                "loc": ["body"],
                                "msg": detail,
                                "type": error_type,
                                "url": f"https://docs.fal.ai/errors#{error_type}",
                                "input": "",
                            }
                        ]
                    }
                else:
                    body = {"detail": detail, "error_type": error_type}
                job.error = (status, body)
                job.log(f"Error: {detail}")
            elif job.model.kind == "separation":
                await self._separate(job, started)
            else:
                model = job.model
                seconds = model.seconds(job.input) or self.default_seconds
                fmt = model.output_format(job.input)
                plan = job.input.get("composition_plan")
                prompt = job.input.get("prompt") or ""
                job.log(f"Generating {seconds:g} s of audio")
                data, content_type, ext = await asyncio.to_thread(
                    _make_audio,
                    prompt,
                    plan,
                    seconds,
                    model.instrumental(job.input),
                    fmt,
                    self.use_synth,
                    self.audio_dir,
                )
                remaining = self.latency - (time.monotonic() - started)
                if remaining > 0:
                    await asyncio.sleep(remaining)
                if self.use_synth and self.audio_dir is None:
                    recipe = (prompt, plan, seconds, model.instrumental(job.input))
                    self.songs[hashlib.sha256(data).hexdigest()] = recipe
                    while len(self.songs) > SONGS_REMEMBERED:
                        self.songs.popitem(last=False)
                job.result = {model.output_key: self._publish(data, content_type, ext)}
                job.log("Done")
        except asyncio.CancelledError:
            return
        except Exception as exc:  # the emulator's own bug: report it as the run's failure
            log.exception("fal emulator: job %s failed", job.id)
            job.error = (500, {"detail": f"emulator error: {exc}", "error_type": "internal_error"})
        job.state = "COMPLETED"
        job.finished = time.monotonic()
        self.running.discard(job.id)
        self._schedule()

    def _publish(self, data: bytes, content_type: str, ext: str, stem: str = "") -> dict[str, Any]:
        """Serve ``data`` at a new media URL; fal's File object for it."""
        token = secrets.token_urlsafe(16)
        name = f"{uuid.uuid4().hex[:12]}_{stem or 'output'}{ext}"
        self._evict()
        self.media[token] = Media(data, content_type, name, time.monotonic() + self.media_ttl_s)
        return {
            "url": f"{self.url}/_media/{token}/{name}",
            "content_type": content_type,
            "file_name": name,
            "file_size": len(data),
        }

    async def _separate(self, job: Job, started: float) -> None:
        """fal-ai/demucs: the synth's stems for a song it made, else a band split."""
        stems = demucs_stems(job.input)
        fmt = job.model.output_format(job.input)
        try:
            data = await self._fetch(str(job.input["audio_url"]))
        except ValueError as exc:
            job.error = (422, {"detail": [_input_error("audio_url", str(exc))]})
            job.log(f"Error: {exc}")
            return
        recipe = self.songs.get(hashlib.sha256(data).hexdigest())
        job.log(f"Separating {len(data)} bytes into {', '.join(stems)}")
        try:
            answer, how = await asyncio.to_thread(_split, data, recipe, stems, fmt)
        except ValueError as exc:
            job.error = (422, {"detail": [_input_error("audio_url", str(exc))]})
            job.log(f"Error: {exc}")
            return
        self.separations[how] += 1
        remaining = self.latency - (time.monotonic() - started)
        if remaining > 0:
            await asyncio.sleep(remaining)
        job.result = {
            name: self._publish(blob, ctype, ext, name)
            for name, (blob, ctype, ext) in answer.items()
        }
        job.log("Done")

    async def _fetch(self, url: str) -> bytes:
        """The input audio: a ``data:`` URI, one of this emulator's media URLs, or any URL."""
        if url.startswith("data:"):
            _, _, payload = url.partition(",")
            if ";base64" not in url.split(",", 1)[0]:
                raise ValueError("a data: URI must be base64-encoded")
            try:
                return base64.b64decode(payload, validate=True)
            except (binascii.Error, ValueError):
                raise ValueError("the data: URI is not valid base64") from None
        prefix = f"{self.url}/_media/"
        if url.startswith(prefix):
            token = url[len(prefix) :].split("/", 1)[0]
            media = self.media.get(token)
            if media is None:
                raise ValueError("the file at audio_url is gone (expired)")
            return media.data
        if not url.startswith(("https://", "http://")):
            raise ValueError("audio_url must be an http(s) URL or a data: URI")
        import aiohttp

        try:
            async with aiohttp.ClientSession() as session, session.get(url) as resp:
                if resp.status != 200:
                    raise ValueError(f"could not download audio_url: HTTP {resp.status}")
                return await resp.read()
        except aiohttp.ClientError as exc:
            raise ValueError(f"could not download audio_url: {exc}") from None

    def _evict(self) -> None:
        now = time.monotonic()
        for token in [t for t, m in self.media.items() if m.expires < now]:
            del self.media[token]


SONGS_REMEMBERED = 64


def _split(
    data: bytes, recipe: tuple[Any, ...] | None, stems: tuple[str, ...], fmt: str
) -> tuple[dict[str, tuple[bytes, str, str]], str]:
    """Encoded stems of ``data`` (``fmt``: wav or mp3, 44.1 kHz), and how they were made."""
    import io

    import soundfile

    try:
        samples, rate = soundfile.read(io.BytesIO(data), dtype="float32", always_2d=True)
    except Exception as exc:
        raise ValueError(f"audio_url is not audio the model can read ({exc})") from None
    if len(samples) == 0:
        raise ValueError("audio_url has no audio")
    mix = render.resample(samples, rate, render.RATE)
    if mix.shape[1] == 1:
        mix = np.repeat(mix, 2, axis=1)
    parts = render.render_stems(*recipe) if recipe is not None else {}
    how = "synth" if parts else "band split"
    if not parts:
        parts = band_split.band_split(mix, render.RATE, stems)
    fitted = band_split.fit(mix, parts, stems)
    return {name: render.encode(fitted[name], fmt) for name in stems}, how


def _input_error(field: str, message: str) -> dict[str, Any]:
    return {"loc": ["body", field], "msg": message, "type": "value_error", "input": ""}


def _make_audio(
    prompt: str,
    plan: dict[str, Any] | None,
    seconds: float,
    instrumental: bool,
    fmt: str,
    use_synth: bool,
    audio_dir: Path | None = None,
) -> tuple[bytes, str, str]:
    audio = render.render(
        prompt, plan, seconds, instrumental, use_synth=use_synth, audio_dir=audio_dir
    )
    return render.encode(audio, fmt)


_EXPIRED = "<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>"

_REASONS = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    408: "Request Timeout",
    409: "Conflict",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}
_ERROR_TYPES = {
    500: "internal_error",
    502: "runner_incomplete_response",
    503: "runner_scheduling_failure",
    504: "request_timeout",
}


def _json(status: int, body: Any, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        status=status,
        text=json.dumps(body),
        content_type="application/json",
        headers=headers,
    )


def _route_name(request: web.Request) -> str:
    path = request.path
    if path.startswith("/_media/"):
        return "media"
    if path.startswith("/_emulator/"):
        return "debug"
    if "/requests/" in path:
        if request.method == "PUT":
            return "cancel"
        return "status" if path.endswith("/status") else "result"
    return "submit" if request.method == "POST" else "other"


# -- command line ----------------------------------------------------------------------


def run_command(args: argparse.Namespace) -> int:
    """``segue fal-emulator``: serve until interrupted."""
    refused = [
        (not 0 <= args.port <= 65535, f"--port must be 0-65535, not {args.port}"),
        (args.concurrency < 1, "--concurrency must be >= 1"),
        (not args.latency >= 0, f"--latency must be a number of seconds >= 0, not {args.latency}"),
        (
            not args.media_ttl > 0,
            f"--media-ttl must be a number of seconds > 0, not {args.media_ttl}",
        ),
        (args.key is not None and not args.key.strip(), "--key must not be empty"),
    ]
    for bad, why in refused:
        if bad:
            print(f"segue: fal-emulator: {why}", file=sys.stderr)
            return 2
    try:
        parse_faults(args.faults)
    except FaultSpecError as exc:
        print(f"segue: fal-emulator: {exc}", file=sys.stderr)
        return 2
    if args.audio_dir is not None:
        if not Path(args.audio_dir).is_dir():
            print(
                f"segue: fal-emulator: --audio-dir {args.audio_dir}: not a folder", file=sys.stderr
            )
            return 2
        if not render.audio_files(Path(args.audio_dir)):
            print(
                f"segue: fal-emulator: --audio-dir {args.audio_dir}: no audio files "
                f"({', '.join(render.AUDIO_SUFFIXES)})",
                file=sys.stderr,
            )
            return 2
    try:
        asyncio.run(_serve(args))
    except KeyboardInterrupt:
        pass
    except OSError as exc:
        print(
            f"segue: fal-emulator: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr
        )
        return 1
    return 0


async def _serve(args: argparse.Namespace) -> None:
    emulator = FalEmulator(
        host=args.host,
        port=args.port,
        key=args.key,
        latency=args.latency,
        faults=args.faults,
        concurrency=args.concurrency,
        media_ttl_s=args.media_ttl,
        ca_file=args.ca_file,
        seed=args.seed,
        use_synth=not args.no_synth,
        audio_dir=args.audio_dir,
    )
    async with emulator:
        lines = [f"fal emulator listening on {emulator.url}; set these in your shell:"]
        lines += [f"export {k}={v}" for k, v in emulator.env().items()]
        if args.key:
            lines.append(f"export FAL_KEY={args.key}")
        else:
            lines.append("export FAL_KEY=emulator  # any non-empty key is accepted")
        if emulator.faults:
            lines.append("faults: " + "; ".join(r.describe() for r in emulator.faults))
        print("\n".join(lines), flush=True)
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.Event().wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m segue.plugins.fal", description="A local emulator of fal's queue API."
    )
    add_arguments(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    return run_command(args)


if __name__ == "__main__":
    raise SystemExit(main())
