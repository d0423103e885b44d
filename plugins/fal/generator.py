"""FalGenerator: music from fal's queue API (Eleven Music by default) through fal-client.

One ``generate`` call is one attempt: submit, poll, fetch the result, download the audio.
Retrying is the pipeline's job; this module's job is to say which failures are worth it
(``TransientError``, ``RateLimitedError``) and which are not (``PermanentError``).

fal-client is imported lazily, inside methods: it reads ``FAL_RUN_HOST`` and
``FAL_QUEUE_RUN_HOST`` once, at import, so a process (or a test) can point it at the
local emulator by setting them before the first generation.
"""

from __future__ import annotations

import asyncio
import contextlib
import difflib
import email.utils
import logging
import os
import ssl
import struct
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp

from segue.core.errors import (
    ConfigError,
    GenerationError,
    PermanentError,
    RateLimitedError,
    TransientError,
)
from segue.core.generator import GeneratedAudio
from segue.core.request import GenerationRequest
from segue.plugins.fal.endpoints import (
    BILLINGS,
    DEFAULT_ENDPOINT,
    ENDPOINTS,
    REFUSED_FORMATS,
    Endpoint,
    audio_length_s,
    build_input,
    check_request,
    cost_usd,
)

log = logging.getLogger("segue.plugins.fal")

CONFIG_KEYS = (
    "model",
    "output_format",
    "concurrency",
    "poll_interval_s",
    "timeout_s",
    "download_timeout_s",
    "max_download_mb",
    "respect_sections_durations",
    "price_per_minute_usd",
    "price_per_request_usd",
    "billing",
    "input",
    "with_logs",
)

# fal's error types (``error_type`` / ``X-Fal-Error-Type``): request errors from the
# platform and model errors from the endpoint. Anything unlisted falls back on its status.
TRANSIENT_ERROR_TYPES = frozenset(
    {
        "request_timeout",
        "startup_timeout",
        "runner_scheduling_failure",
        "runner_connection_timeout",
        "runner_disconnected",
        "runner_connection_refused",
        "runner_connection_error",
        "runner_incomplete_response",
        "runner_server_error",
        "client_disconnected",
        "client_cancelled",
        "internal_error",
        "internal_server_error",
        "generation_timeout",
        "downstream_service_error",
        "downstream_service_unavailable",
        "no_media_generated",
    }
)
PERMANENT_ERROR_TYPES = frozenset(
    {"bad_request", "content_policy_violation", "feature_not_supported", "validation_error"}
)

# Where downloads land: dot-prefixed while written (DESIGN section 8).
CONTENT_EXTS = {
    "audio/mpeg": ".mp3",
    "audio/mp3": ".mp3",
    "audio/ogg": ".ogg",
    "audio/opus": ".ogg",
    "audio/wav": ".wav",
    "audio/x-wav": ".wav",
    "audio/wave": ".wav",
    "audio/vnd.wave": ".wav",
    "audio/flac": ".flac",
    "audio/x-flac": ".flac",
    "audio/pcm": ".pcm",
    "audio/l16": ".pcm",
}


def _number(config: dict[str, Any], key: str, default: float, lo: float, hi: float) -> float:
    value = config.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not lo <= value <= hi:
        raise ConfigError(f"generator fal: {key} must be a number from {lo:g} to {hi:g}")
    return float(value)


def _one_line(text: Any, limit: int = 300) -> str:
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def format_detail(detail: Any) -> str:
    """fal's ``detail``: a string, or FastAPI's list of ``{loc, msg, type}``, as one line."""
    if isinstance(detail, list):
        parts = []
        for item in detail:
            if isinstance(item, dict):
                loc = [str(x) for x in item.get("loc") or [] if x != "body"]
                msg = item.get("msg") or item.get("type") or "invalid"
                parts.append(f"{'.'.join(loc)}: {msg}" if loc else str(msg))
            else:
                parts.append(str(item))
        return _one_line("; ".join(parts))
    if isinstance(detail, dict):
        return _one_line(detail.get("msg") or detail.get("detail") or detail)
    return _one_line(detail if detail not in (None, "") else "no detail")


def detail_error_type(detail: Any) -> str | None:
    """A model error's ``type`` (model errors put it in the ``detail`` list's items)."""
    if isinstance(detail, list):
        for item in detail:
            if isinstance(item, dict) and isinstance(item.get("type"), str):
                return item["type"]
    return None


def parse_retry_after(value: str | None) -> float | None:
    """``Retry-After`` as seconds: a number, or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _header(headers: Any, name: str) -> str | None:
    if not headers:
        return None
    for k, v in dict(headers).items():
        if k.lower() == name.lower():
            return v
    return None


def classify(
    status: int | None,
    error_type: str | None,
    detail: str,
    where: str,
    headers: Any = None,
) -> GenerationError:
    """The pipeline's error for an HTTP failure of fal's API (``status`` None: transport)."""
    tag = f" ({error_type})" if error_type else ""
    if status is None:
        return TransientError(f"fal {where}: {detail}")
    prefix = f"fal {where}: HTTP {status}{tag}"
    if status in (401, 403):
        return PermanentError(f"{prefix}: the key in FAL_KEY was refused ({detail}); check FAL_KEY")
    if status == 429:
        retry_after = parse_retry_after(_header(headers, "retry-after"))
        after = f"; retry after {retry_after:g} s" if retry_after is not None else ""
        return RateLimitedError(f"{prefix}: rate limited{after}", retry_after)
    retryable = (_header(headers, "x-fal-retryable") or "").strip().lower()
    if retryable in ("true", "1", "yes"):
        return TransientError(f"{prefix}: {detail}")
    if retryable in ("false", "0", "no"):
        return PermanentError(f"{prefix}: {detail}")
    if error_type in PERMANENT_ERROR_TYPES:
        return PermanentError(f"{prefix}: {detail}")
    if error_type in TRANSIENT_ERROR_TYPES:
        return TransientError(f"{prefix}: {detail}")
    if status in (408, 409) or status >= 500:
        return TransientError(f"{prefix}: {detail}")
    if status == 422:
        return PermanentError(f"{prefix}: input rejected: {detail}")
    return PermanentError(f"{prefix}: {detail}")


class SubmitRefused(Exception):
    """Raised from inside fal-client's HTTP transport so its retry loop lets go at once.

    fal-client retries 408/409/429 and transport errors up to 10 times with backoff
    (a 429 that persists surfaces only after 40-50 s). For the *submit* call, segue's
    pipeline owns retries and honours Retry-After, so the transport turns those into
    this exception — not an ``httpx.HTTPError``, so fal-client does not catch it.
    Status polls and result fetches keep fal-client's own retries: they cost nothing
    and keep an already-paid run alive.
    """

    def __init__(self, status: int | None, headers: dict[str, str], body: str, cause: str = ""):
        super().__init__(f"submit refused: {status or cause}")
        self.status = status
        self.headers = headers
        self.body = body
        self.cause = cause


_client_class: type | None = None


def fal_client_class() -> type:
    """fal_client.AsyncClient with a transport that bounds the submit call's retries."""
    global _client_class
    if _client_class is not None:
        return _client_class
    import fal_client
    import httpx

    try:
        import fal_client.client as fc
        from asyncstdlib import cached_property as async_cached_property

        backup_transport = fc.AsyncBackupDomainTransport
        user_agent = fc.USER_AGENT
    except (ImportError, AttributeError):  # fal-client changed: keep its own retries
        log.warning("fal-client internals changed: a 429 may take ~40 s to reach segue")
        _client_class = fal_client.AsyncClient
        return _client_class

    class SubmitGuard(httpx.AsyncBaseTransport):
        def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
            self._inner = inner

        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            submit = request.method == "POST"
            try:
                response = await self._inner.handle_async_request(request)
            except httpx.TransportError as exc:
                if submit:
                    raise SubmitRefused(None, {}, "", f"{type(exc).__name__}: {exc}") from exc
                raise
            if submit and response.status_code in (408, 409, 429, 502, 503, 504):
                body = await response.aread()
                await response.aclose()
                raise SubmitRefused(
                    response.status_code,
                    dict(response.headers),
                    body.decode("utf-8", "replace"),
                )
            return response

        async def aclose(self) -> None:
            await self._inner.aclose()

    class SegueFalClient(fal_client.AsyncClient):
        @async_cached_property(asyncio.Lock)
        async def _client(self) -> httpx.AsyncClient:
            auth = await self._auth
            return httpx.AsyncClient(
                transport=SubmitGuard(backup_transport()),
                headers={"Authorization": auth.header_value, "User-Agent": user_agent},
                timeout=self.default_timeout,
            )

    _client_class = SegueFalClient
    return _client_class


def _ssl_context() -> ssl.SSLContext:
    # SSL_CERT_FILE replaces the CA bundle (as it does for httpx), so downloads from
    # the local emulator, whose CA is in that file, are trusted too.
    cafile = os.environ.get("SSL_CERT_FILE") or None
    return ssl.create_default_context(cafile=cafile)


class FalGenerator:
    """The ``fal`` generator: ``generator: {name: fal, model: <endpoint>, ...}``."""

    name = "fal"

    def __init__(self, config: dict[str, Any], state_dir: Path) -> None:
        config = dict(config or {})
        unknown = sorted(set(config) - set(CONFIG_KEYS))
        if unknown:
            hints = []
            for key in unknown:
                near = difflib.get_close_matches(key, CONFIG_KEYS, n=1)
                hints.append(f"{key!r}" + (f" (did you mean {near[0]!r}?)" if near else ""))
            raise ConfigError(
                f"generator fal: unknown option {', '.join(hints)}; known: {', '.join(CONFIG_KEYS)}"
            )
        self.state_dir = Path(state_dir)
        model = config.get("model", DEFAULT_ENDPOINT)
        if model not in ENDPOINTS:
            raise ConfigError(
                f"generator fal: unknown model {model!r}; known: {', '.join(ENDPOINTS)}"
            )
        self.endpoint: Endpoint = ENDPOINTS[model]
        self.model: str = model

        fmt = config.get("output_format", self.endpoint.default_output_format)
        if self.endpoint.output_format_field is None:
            if "output_format" in config:
                raise ConfigError(f"generator fal: {model} takes no output_format")
            fmt = None
        elif fmt not in self.endpoint.output_formats or fmt in REFUSED_FORMATS:
            usable = [f for f in self.endpoint.output_formats if f not in REFUSED_FORMATS]
            raise ConfigError(
                f"generator fal: output_format {fmt!r} is not one of {', '.join(usable)}"
            )
        self.output_format: str | None = fmt

        concurrency = config.get("concurrency", 2)
        if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
            raise ConfigError("generator fal: concurrency must be a whole number >= 1")
        self.concurrency: int = concurrency
        self.poll_interval_s = _number(config, "poll_interval_s", 2.0, 0.01, 60.0)
        self.timeout_s = _number(config, "timeout_s", 300.0, 0.1, 86400.0)
        self.download_timeout_s = _number(config, "download_timeout_s", 120.0, 0.1, 3600.0)
        self.max_download_bytes = int(
            _number(config, "max_download_mb", 200.0, 0.001, 10_000.0) * 1024 * 1024
        )
        self.with_logs = bool(config.get("with_logs", False))
        # The pipeline's per-attempt deadline: never shorter than this generator's own.
        self.deadline_s = self.timeout_s + self.download_timeout_s + 10.0

        rsd = config.get("respect_sections_durations", True)
        if not isinstance(rsd, bool):
            raise ConfigError("generator fal: respect_sections_durations must be true or false")
        self.respect_sections_durations = rsd

        extra = config.get("input", {})
        if not isinstance(extra, dict):
            raise ConfigError("generator fal: input must be a mapping of extra endpoint fields")
        self.extra_input: dict[str, Any] = dict(extra)

        self.price_usd = self.endpoint.price_usd
        self.billing: str = self.endpoint.billing
        if "price_per_minute_usd" in config:
            self.price_usd = _number(config, "price_per_minute_usd", 0.0, 0.0, 1000.0)
            if self.billing == "per_request":
                self.billing = "per_minute_rounded_up"
        if "price_per_request_usd" in config:
            self.price_usd = _number(config, "price_per_request_usd", 0.0, 0.0, 1000.0)
            self.billing = "per_request"
        if "billing" in config:
            if config["billing"] not in BILLINGS:
                raise ConfigError(f"generator fal: billing must be one of {', '.join(BILLINGS)}")
            self.billing = config["billing"]

        self._client: Any = None
        self._session: aiohttp.ClientSession | None = None
        # Each status poll would otherwise be an INFO line from httpx under `segue -v`-less
        # runs too (the CLI logs at INFO): keep httpx quiet unless someone configured it.
        httpx_log = logging.getLogger("httpx")
        if httpx_log.level == logging.NOTSET:
            httpx_log.setLevel(logging.WARNING)

    # -- the Generator protocol -------------------------------------------------------

    def audio_params(self) -> dict[str, Any]:
        params: dict[str, Any] = {"model": self.model, "output_format": self.output_format}
        if self.endpoint.takes_plans:
            params["respect_sections_durations"] = self.respect_sections_durations
        if self.extra_input:
            params["input"] = dict(sorted(self.extra_input.items()))
        return params

    def estimate_cost(self, request: GenerationRequest) -> float:
        return cost_usd(self.price_usd, self.billing, audio_length_s(self.endpoint, request))

    def preflight(self) -> None:
        """FAL_KEY must be set (and usable in a header) before anything is generated."""
        self._key()

    def check(self, request: GenerationRequest) -> None:
        problems = check_request(self.endpoint, request)
        if problems:
            # Callers name the mood and the score line; this names the endpoint and limit.
            raise PermanentError(f"{self.model}: " + "; ".join(problems))

    async def generate(self, request: GenerationRequest, workdir: Path) -> GeneratedAudio:
        self.preflight()
        self.check(request)  # never pay for a request the endpoint would refuse
        arguments = build_input(
            self.endpoint,
            request,
            output_format=self.output_format,
            respect_sections_durations=self.respect_sections_durations,
            extra=self.extra_input,
        )
        started = time.monotonic()
        request_id, result = await self._run(arguments, request)
        try:
            url, meta = self._audio_url(result, request_id)
            path = await self._download(url, meta, Path(workdir), request_id)
            info = self._verify(path, request_id)
        except GenerationError as exc:
            # The run completed, so fal billed it, though its audio is lost: say so, for a
            # pipeline that keeps a ledger of failed attempts too.
            exc.cost_usd = self.estimate_cost(request)  # type: ignore[attr-defined]
            raise
        log.debug(
            "fal: %s %s/%d done in %.1f s (%.1f s of audio)",
            request_id,
            request.mood,
            request.variant,
            time.monotonic() - started,
            info["duration_s"],
        )
        return GeneratedAudio(
            path=path,
            model=self.model,
            cost_usd=self.estimate_cost(request),
            bpm=None,  # unknown: the beat-grid post-processor measures it
            loop=not request.stinger,
            extra={
                "fal": {
                    "request_id": request_id,
                    "endpoint": self.model,
                    "output_format": self.output_format,
                    **info,  # of the file as downloaded, before post-processing
                }
            },
        )

    async def aclose(self) -> None:
        client, self._client = self._client, None
        if client is not None and "_client" in vars(client):
            with contextlib.suppress(Exception):
                http = await client._client
                await http.aclose()
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    # -- internals --------------------------------------------------------------------

    @staticmethod
    def _key() -> str:
        key = os.environ.get("FAL_KEY", "").strip()
        if not key:
            raise ConfigError(
                "generator fal: FAL_KEY is not set: export your fal API key as FAL_KEY "
                "(or run `segue fal-emulator` to work offline)"
            )
        if not all(33 <= ord(c) <= 126 for c in key):
            # An HTTP header cannot carry it, and an HTTP library's error would quote it.
            raise ConfigError(
                "generator fal: FAL_KEY contains spaces or characters that are not "
                "printable ASCII; check how it was set"
            )
        return key

    def _redact(self, text: str) -> str:
        key = os.environ.get("FAL_KEY", "").strip()
        if key and key in text:
            text = text.replace(key, "[FAL_KEY]")
        return text

    def _error(self, error: GenerationError) -> GenerationError:
        """``error`` with any trace of the key removed from its message."""
        message = str(error)
        safe = self._redact(message)
        if safe == message:
            return error
        if isinstance(error, RateLimitedError):
            return RateLimitedError(safe, error.retry_after)
        return type(error)(safe)

    def _get_client(self) -> Any:
        if self._client is None:
            self._client = fal_client_class()(key=self._key())
        return self._client

    def _map(self, exc: BaseException, where: str) -> GenerationError:
        import fal_client
        import httpx

        if isinstance(exc, SubmitRefused):
            if exc.status is None:
                return classify(None, None, f"cannot reach fal: {_one_line(exc.cause)}", where)
            detail, error_type = exc.body, _header(exc.headers, "x-fal-error-type")
            with contextlib.suppress(ValueError):
                import json

                body = json.loads(exc.body)
                if isinstance(body, dict):
                    detail = body.get("detail", detail)
                    error_type = body.get("error_type") or error_type
            return classify(exc.status, error_type, format_detail(detail), where, exc.headers)
        if isinstance(exc, fal_client.FalClientHTTPError):
            error_type = exc.error_type or detail_error_type(exc.message)
            return classify(
                exc.status_code,
                error_type,
                format_detail(exc.message),
                where,
                exc.response_headers,
            )
        if isinstance(exc, httpx.TimeoutException):
            return TransientError(f"fal {where}: timed out ({type(exc).__name__})")
        if isinstance(exc, httpx.HTTPError):
            return TransientError(f"fal {where}: {type(exc).__name__}: {_one_line(exc)}")
        if isinstance(exc, fal_client.FalClientError):
            return TransientError(f"fal {where}: {_one_line(exc)}")
        return TransientError(f"fal {where}: unexpected reply ({type(exc).__name__}: {exc})")

    async def _run(
        self, arguments: dict[str, Any], request: GenerationRequest
    ) -> tuple[str, dict[str, Any]]:
        """Submit, poll and fetch the result within ``timeout_s``; cancel on the way out."""
        import fal_client

        client = self._get_client()
        handle = None
        where = "submit"
        try:
            async with asyncio.timeout(self.timeout_s):
                try:
                    handle = await client.submit(self.model, arguments)
                    log.debug(
                        "fal: submitted %s/%d as %s",
                        request.mood,
                        request.variant,
                        handle.request_id,
                    )
                    where = "status"
                    status = await self._wait(handle)
                    if getattr(status, "error", None):
                        error_type = getattr(status, "error_type", None)
                        raise classify(500, error_type, format_detail(status.error), "run")
                    where = "result"
                    result = await handle.get(interval=self.poll_interval_s)
                except GenerationError:
                    raise
                except (Exception, SubmitRefused) as exc:
                    if isinstance(exc, fal_client.auth.MissingCredentialsError):
                        raise ConfigError("generator fal: FAL_KEY is not set") from None
                    error = self._map(exc, where)
                    if where == "status" and handle is not None:
                        # We lost sight of a paid run the pipeline will resubmit: stop it.
                        await self._cancel(handle)
                    raise error from None
        except TimeoutError:
            if handle is None:
                raise self._error(
                    TransientError(f"fal submit: no answer within timeout_s={self.timeout_s:g} s")
                ) from None
            await self._cancel(handle)
            raise TransientError(
                f"fal: request {handle.request_id} did not finish within "
                f"timeout_s={self.timeout_s:g} s; cancelled"
            ) from None
        except asyncio.CancelledError:
            if handle is not None:
                await self._cancel(handle)
            raise
        except GenerationError as exc:
            raise self._error(exc) from None
        if not isinstance(result, dict):
            raise TransientError(f"fal result: expected a JSON object, got {type(result).__name__}")
        return handle.request_id, result

    async def _wait(self, handle: Any) -> Any:
        """Poll the request's status every ``poll_interval_s`` until it completes."""
        import fal_client

        last = None
        seen_logs = 0
        while True:
            status = await handle.status(with_logs=self.with_logs)
            if isinstance(status, fal_client.Completed):
                return status
            if isinstance(status, fal_client.Queued):
                state = f"in queue at position {status.position}"
            else:
                state = "in progress"
                logs = getattr(status, "logs", None) or []
                for entry in logs[seen_logs:]:
                    message = entry.get("message") if isinstance(entry, dict) else entry
                    log.debug("fal: %s: %s", handle.request_id, _one_line(message))
                seen_logs = max(seen_logs, len(logs))
            if state != last:
                log.debug("fal: %s %s", handle.request_id, state)
                last = state
            await asyncio.sleep(self.poll_interval_s)

    async def _cancel(self, handle: Any) -> None:
        """Ask fal to stop a request (best effort, a few seconds at most)."""
        try:
            await asyncio.wait_for(asyncio.shield(handle.cancel()), timeout=5.0)
            log.info("fal: cancelled %s", handle.request_id)
        except (Exception, asyncio.CancelledError) as exc:
            log.warning(
                "fal: could not cancel %s: %s", handle.request_id, self._redact(_one_line(exc))
            )

    def _audio_url(self, result: dict[str, Any], request_id: str) -> tuple[str, dict[str, Any]]:
        key = self.endpoint.output_key
        audio = result.get(key)
        if isinstance(audio, str):
            audio = {"url": audio}
        if not isinstance(audio, dict) or not isinstance(audio.get("url"), str):
            raise TransientError(f"fal result: {request_id} has no {key}.url")
        url = audio["url"]
        if not url.startswith(("https://", "http://")):
            raise TransientError(f"fal result: {request_id}: {key}.url is not an http(s) URL")
        return url, audio

    async def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(ssl=_ssl_context()),
                auto_decompress=False,  # Content-Length counts the bytes on the wire
            )
        return self._session

    async def _download(
        self, url: str, meta: dict[str, Any], workdir: Path, request_id: str
    ) -> Path:
        """Stream ``url`` to a file in ``workdir``; every failure is transient (resubmit)."""
        workdir.mkdir(parents=True, exist_ok=True)
        tmp = workdir / f".fal-{request_id}-{uuid.uuid4().hex[:8]}.part"
        where = f"download of {request_id}"
        session = await self._get_session()
        received = 0
        try:
            async with asyncio.timeout(self.download_timeout_s):
                async with session.get(url) as resp:
                    if resp.status != 200:
                        hint = " (expired URL?)" if resp.status in (403, 404, 410) else ""
                        raise TransientError(f"fal {where}: HTTP {resp.status}{hint}")
                    ctype = (resp.content_type or "").lower()
                    if not ctype.startswith("audio/"):
                        raise TransientError(
                            f"fal {where}: content type {ctype or 'none'!r} is not audio"
                        )
                    expected = resp.content_length
                    if expected is not None and expected > self.max_download_bytes:
                        raise PermanentError(
                            f"fal {where}: {expected} bytes is over max_download_mb"
                        )
                    with tmp.open("wb") as out:
                        async for chunk in resp.content.iter_chunked(1 << 16):
                            received += len(chunk)
                            if received > self.max_download_bytes:
                                raise PermanentError(
                                    f"fal {where}: more than max_download_mb "
                                    f"({self.max_download_bytes} bytes)"
                                )
                            out.write(chunk)
                    if expected is not None and received != expected:
                        raise TransientError(
                            f"fal {where}: truncated: {received} of {expected} bytes"
                        )
                    size = meta.get("file_size")
                    if isinstance(size, int) and size > 0 and expected is None and size != received:
                        raise TransientError(
                            f"fal {where}: got {received} bytes, the result said {size}"
                        )
        except GenerationError:
            tmp.unlink(missing_ok=True)
            raise
        except TimeoutError:
            tmp.unlink(missing_ok=True)
            raise TransientError(
                f"fal {where}: not finished within download_timeout_s="
                f"{self.download_timeout_s:g} s ({received} bytes)"
            ) from None
        except aiohttp.ClientPayloadError as exc:
            tmp.unlink(missing_ok=True)
            raise TransientError(
                f"fal {where}: truncated after {received} bytes ({_one_line(exc)})"
            ) from None
        except (aiohttp.ClientError, OSError) as exc:
            tmp.unlink(missing_ok=True)
            raise TransientError(f"fal {where}: {type(exc).__name__}: {_one_line(exc)}") from None
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        ext = CONTENT_EXTS.get(ctype) or Path(str(meta.get("file_name") or "")).suffix or ".bin"
        final = workdir / f"fal-{request_id}{ext}"
        if ext == ".pcm":
            final = final.with_suffix(".wav")
            _pcm_to_wav(tmp, final, self.output_format)
            tmp.unlink(missing_ok=True)
        else:
            os.replace(tmp, final)
        return final

    def _verify(self, path: Path, request_id: str) -> dict[str, Any]:
        """Decode the header: a file soundfile cannot read is corrupt (transient)."""
        import soundfile

        try:
            info = soundfile.info(str(path))
        except Exception as exc:
            path.unlink(missing_ok=True)
            raise TransientError(
                f"fal download of {request_id}: not readable audio ({_one_line(exc)})"
            ) from None
        if info.frames <= 0 or info.samplerate <= 0:
            path.unlink(missing_ok=True)
            raise TransientError(f"fal download of {request_id}: no audio frames")
        return {
            "duration_s": round(info.frames / info.samplerate, 3),
            "samplerate": info.samplerate,
            "channels": info.channels,
            "bytes": path.stat().st_size,
        }


def _pcm_to_wav(src: Path, dst: Path, output_format: str | None) -> None:
    """Raw ``pcm_<rate>`` (16-bit little-endian mono) to a WAV file; a WAV stays as it is."""
    data = src.read_bytes()
    if data[:4] == b"RIFF":
        dst.write_bytes(data)
        return
    rate = 44100
    if output_format and output_format.startswith("pcm_"):
        with contextlib.suppress(ValueError):
            rate = int(output_format.split("_")[1])
    if len(data) % 2:
        data = data[:-1]
    channels, bits = 1, 16
    header = b"RIFF" + struct.pack("<I", 36 + len(data)) + b"WAVE"
    header += b"fmt " + struct.pack(
        "<IHHIIHH", 16, 1, channels, rate, rate * channels * bits // 8, channels * bits // 8, bits
    )
    header += b"data" + struct.pack("<I", len(data))
    dst.write_bytes(header + data)


def make_generator(config: dict[str, Any], state_dir: Path) -> FalGenerator:
    """The factory registered as ``fal``."""
    return FalGenerator(config, state_dir)


__all__ = ["FalGenerator", "classify", "format_detail", "make_generator"]
