"""FalGenerator: music from fal's queue API (Eleven Music by default) through fal-client.

One ``generate`` call is one attempt: submit, poll, fetch the result, download the audio.
Retrying is the pipeline's job; this module's job is to say which failures are worth it
(``TransientError``, ``RateLimitedError``) and which are not (``PermanentError``).

fal-client is used through its public API only; its own retries on a submit are bounded by
``submit_timeout_s`` and, on tested versions, ended early by httpx event hooks (see
``TESTED_FAL_CLIENT``). It is imported lazily, inside methods: it reads ``FAL_RUN_HOST`` and
``FAL_QUEUE_RUN_HOST`` once, at import, so a process (or a test) can point it at the
local emulator by setting them before the first generation.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import difflib
import email.utils
import json
import logging
import os
import ssl
import struct
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

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

if TYPE_CHECKING:
    import httpx

log = logging.getLogger("segue.plugins.fal")

CONFIG_KEYS = (
    "model",
    "output_format",
    "concurrency",
    "poll_interval_s",
    "timeout_s",
    "submit_timeout_s",
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

# Where downloads land: dot-prefixed while written (docs/pregeneration.md).
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


def _number(
    label: str, config: dict[str, Any], key: str, default: float, lo: float, hi: float
) -> float:
    value = config.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not lo <= value <= hi:
        raise ConfigError(f"{label}: {key} must be a number from {lo:g} to {hi:g}")
    return float(value)


def check_options(label: str, config: dict[str, Any], known: tuple[str, ...]) -> None:
    """ConfigError naming every option not in ``known``, with a did-you-mean for each."""
    unknown = sorted(set(config) - set(known))
    if unknown:
        hints = []
        for key in unknown:
            near = difflib.get_close_matches(key, known, n=1)
            hints.append(f"{key!r}" + (f" (did you mean {near[0]!r}?)" if near else ""))
        raise ConfigError(f"{label}: unknown option {', '.join(hints)}; known: {', '.join(known)}")


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
    """Raised by segue's httpx hooks during a submit so fal-client's retry loop lets go.

    fal-client retries 408/409/429 and transport errors up to 10 times with backoff (a
    429 that persists surfaces only after ~30 s). segue's pipeline owns retries for the
    *submit* (it honours Retry-After and pauses every worker), so on a tested fal-client
    the hooks turn those answers into this exception, which is not an ``httpx.HTTPError``
    and so is not retried. Status polls and result fetches keep fal-client's retries:
    they cost nothing and keep an already-paid run alive.
    """

    def __init__(self, status: int | None, headers: dict[str, str], body: str, cause: str = ""):
        super().__init__(f"submit refused: {status or cause}")
        self.status = status
        self.headers = headers
        self.body = body
        self.cause = cause


# fal-client versions on which the submit hooks may end fal-client's retry loop by raising:
# there its loop catches only httpx.HTTPError and FalClientHTTPError, and the HTTP client
# that AsyncClient.get_handle() hands out is the one its submit uses. Neither is promised,
# so elsewhere the hooks only observe and submit_timeout_s alone bounds the retries
# (correct, only slower). [first, end): 1.0.3 and its patch releases. To widen it, run
# tests/test_fal_generator.py on the new version; pyproject.toml's pin (<2) may be wider.
TESTED_FAL_CLIENT: tuple[tuple[int, ...], tuple[int, ...]] = ((1, 0, 3), (1, 1))

# What fal-client would retry on a submit (408/409/429 always, 502-504 when they look like
# an ingress error): the pipeline gets these at once instead.
SUBMIT_RETRIED = frozenset({408, 409, 429, 502, 503, 504})


def release(version: tuple[Any, ...]) -> tuple[int, ...]:
    """The leading numbers of a version tuple: ``(1, 0, 4, 'dev2', 'g1a')`` -> ``(1, 0, 4)``."""
    numbers: list[int] = []
    for part in version:
        if not isinstance(part, int):
            break
        numbers.append(part)
    return tuple(numbers)


def is_tested(version: tuple[Any, ...]) -> bool:
    """Whether fal-client ``version`` is in ``TESTED_FAL_CLIENT`` (low inclusive, high not)."""
    low, high = TESTED_FAL_CLIENT
    return low <= release(version) < high


@dataclass
class SubmitWatch:
    """What fal answered one submit call, attempt by attempt (filled in by the httpx hooks)."""

    stop_retries: bool  # raise SubmitRefused where fal-client would retry
    attempts: int = 0
    status: int | None = None  # of the last answer; None: no answer yet
    headers: dict[str, str] = field(default_factory=dict)
    body: str = ""
    host: str = ""


# The submit in progress in this task. A context variable, not an attribute: requests for
# several tracks share fal-client's one HTTP client, each in its own task, and the hooks
# run inside the awaiting task, so each sees only its own submit (polls see None).
_submit_watch: contextvars.ContextVar[SubmitWatch | None] = contextvars.ContextVar(
    "segue_fal_submit", default=None
)


async def _on_request(request: httpx.Request) -> None:
    """httpx request hook: count the submit's attempts; stop a retry of a failed connection."""
    watch = _submit_watch.get()
    if watch is None:
        return
    watch.attempts += 1
    watch.host = request.url.netloc.decode("ascii", "replace")
    if watch.stop_retries and watch.attempts > 1 and watch.status is None:
        # The previous attempt got no answer at all (fal-client retries transport errors):
        # fal was not reached, so the pipeline may as well decide when to try again.
        raise SubmitRefused(None, {}, "", f"no connection to {watch.host}")


async def _on_response(response: httpx.Response) -> None:
    """httpx response hook: note the submit's answer; hand a retryable one to segue."""
    watch = _submit_watch.get()
    if watch is None:
        return
    watch.status = response.status_code
    watch.headers = dict(response.headers)
    if response.status_code >= 400:
        # The error body is small; read here it stays readable for fal-client too.
        watch.body = (await response.aread()).decode("utf-8", "replace")
    if watch.stop_retries and response.status_code in SUBMIT_RETRIED:
        raise SubmitRefused(response.status_code, watch.headers, watch.body)


def _body_detail(body: str, headers: dict[str, str]) -> tuple[str, str | None]:
    """An error answer's ``detail`` as one line, and its ``error_type`` (body, else header)."""
    detail: Any = body
    error_type = _header(headers, "x-fal-error-type")
    with contextlib.suppress(ValueError):
        parsed = json.loads(body)
        if isinstance(parsed, dict):
            detail = parsed.get("detail", detail)
            error_type = parsed.get("error_type") or error_type
    return format_detail(detail), error_type


def _ssl_context() -> ssl.SSLContext:
    # SSL_CERT_FILE replaces the CA bundle (as it does for httpx), so downloads from
    # the local emulator, whose CA is in that file, are trusted too.
    cafile = os.environ.get("SSL_CERT_FILE") or None
    return ssl.create_default_context(cafile=cafile)


FAL_QUEUE_HOST = "queue.fal.run"  # fal-client's default queue host: fal itself


class FalQueue:
    """fal's queue API through fal-client: submit, poll, fetch the result, download.

    What the ``fal`` generator and the ``demucs`` stem separator share; ``model`` is the
    endpoint's id, ``label`` ("generator fal") starts configuration errors.
    """

    model: str
    label: str = "fal"
    output_format: str | None = None

    def _init_queue(self, config: dict[str, Any], label: str) -> None:
        """The queue options every fal endpoint takes (timeouts, polling, downloads)."""
        self.label = label
        self.poll_interval_s = _number(label, config, "poll_interval_s", 2.0, 0.01, 60.0)
        self.timeout_s = _number(label, config, "timeout_s", 300.0, 0.1, 86400.0)
        # fal answers a submit in well under a second; past this, fal-client is retrying
        # (a 429, an unreachable host) and the pipeline's backoff should decide instead.
        self.submit_timeout_s = min(
            _number(label, config, "submit_timeout_s", 10.0, 0.1, 3600.0), self.timeout_s
        )
        self.download_timeout_s = _number(label, config, "download_timeout_s", 120.0, 0.1, 3600.0)
        self.max_download_bytes = int(
            _number(label, config, "max_download_mb", 200.0, 0.001, 10_000.0) * 1024 * 1024
        )
        self.with_logs = bool(config.get("with_logs", False))
        # The pipeline's per-attempt deadline: never shorter than this generator's own.
        self.deadline_s = self.timeout_s + self.download_timeout_s + 10.0

        self._client: Any = None  # fal_client.AsyncClient, made on first use
        self._http: httpx.AsyncClient | None = None  # its HTTP client, to close
        self._stop_retries = False  # whether the submit hooks may end fal-client's retries
        self._session: aiohttp.ClientSession | None = None
        # Each status poll would otherwise be an INFO line from httpx under `segue -v`-less
        # runs too (the CLI logs at INFO): keep httpx quiet unless someone configured it.
        httpx_log = logging.getLogger("httpx")
        if httpx_log.level == logging.NOTSET:
            httpx_log.setLevel(logging.WARNING)

    def preflight(self) -> None:
        """FAL_KEY must be set (and usable in a header) before anything is generated."""
        self._key()

    def cost_endpoint(self) -> tuple[str, bool]:
        """Where costs go (segue.core.ledger): the model at the queue host fal-client
        talks to; only fal's own host is production (``segue fal-emulator`` sets
        ``FAL_QUEUE_RUN_HOST`` to itself: what it "bills" never counts toward a budget
        for fal)."""
        host = os.environ.get("FAL_QUEUE_RUN_HOST") or FAL_QUEUE_HOST
        return f"{host}/{self.model}", host == FAL_QUEUE_HOST

    async def aclose(self) -> None:
        # fal-client's AsyncClient has no close(): its HTTP client, reached once through
        # get_handle(), is what holds the connections.
        self._client = None
        http, self._http = self._http, None
        if http is not None:
            with contextlib.suppress(Exception):
                await http.aclose()
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    # -- internals --------------------------------------------------------------------

    def _key(self) -> str:
        key = os.environ.get("FAL_KEY", "").strip()
        if not key:
            raise ConfigError(
                f"{self.label}: FAL_KEY is not set: export your fal API key as FAL_KEY "
                "(or run `segue fal-emulator` to work offline)"
            )
        if not all(33 <= ord(c) <= 126 for c in key):
            # An HTTP header cannot carry it, and an HTTP library's error would quote it.
            raise ConfigError(
                f"{self.label}: FAL_KEY contains spaces or characters that are not "
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

    async def _get_client(self) -> Any:
        """fal-client's AsyncClient, with segue's hooks on its HTTP client."""
        if self._client is not None:
            return self._client
        import fal_client
        import httpx

        client = fal_client.AsyncClient(key=self._key())
        # get_handle() makes no request: the handle it returns carries the HTTP client
        # every call of this AsyncClient uses, where httpx's event hooks can be added.
        handle = await client.get_handle(self.model, "segue-hooks")
        http = getattr(handle, "client", None)
        if isinstance(http, httpx.AsyncClient):
            hooks = http.event_hooks
            http.event_hooks = {
                "request": [*hooks.get("request", []), _on_request],
                "response": [*hooks.get("response", []), _on_response],
            }
            self._http = http
            self._stop_retries = is_tested(tuple(fal_client.version_tuple))
        if not self._stop_retries:
            # Still bounded (submit_timeout_s), only slower to report: say why, once.
            why = (
                f"fal-client {fal_client.__version__} is outside the versions segue was "
                f"tested with ({'.'.join(map(str, TESTED_FAL_CLIENT[0]))} to "
                f"<{'.'.join(map(str, TESTED_FAL_CLIENT[1]))})"
                if self._http is not None
                else "fal-client's HTTP client cannot be reached through get_handle()"
            )
            log.warning(
                "%s: a 429 or an unreachable fal on submit reaches segue after fal-client's "
                "own retries, within submit_timeout_s=%g s",
                why,
                self.submit_timeout_s,
            )
        self._client = client
        return client

    async def _submit(self, client: Any, arguments: dict[str, Any]) -> Any:
        """``client.submit`` within ``submit_timeout_s``, its answers watched by the hooks."""
        watch = SubmitWatch(stop_retries=self._stop_retries)
        token = _submit_watch.set(watch)
        try:
            async with asyncio.timeout(self.submit_timeout_s):
                return await client.submit(self.model, arguments)
        except TimeoutError:
            raise self._submit_cut_short(watch) from None
        finally:
            _submit_watch.reset(token)

    def _submit_cut_short(self, watch: SubmitWatch) -> GenerationError:
        """The error for a submit still unanswered (fal-client retrying) at its deadline."""
        note = (
            f"submit_timeout_s={self.submit_timeout_s:g} s passed after {watch.attempts} attempts"
        )
        if watch.attempts == 0:  # the hooks saw nothing (fal-client changed): say no more
            return TransientError(f"fal submit: no answer: {note}")
        if watch.status is None:
            return TransientError(f"fal submit: cannot reach fal at {watch.host}: {note}")
        detail, error_type = _body_detail(watch.body, watch.headers)
        error = classify(watch.status, error_type, detail, "submit", watch.headers)
        message = f"{error} ({note})"
        if isinstance(error, RateLimitedError):
            return RateLimitedError(message, error.retry_after)
        return type(error)(message)

    def _map(self, exc: BaseException, where: str) -> GenerationError:
        import fal_client
        import httpx

        if isinstance(exc, SubmitRefused):
            if exc.status is None:
                return classify(None, None, f"cannot reach fal: {_one_line(exc.cause)}", where)
            detail, error_type = _body_detail(exc.body, exc.headers)
            return classify(exc.status, error_type, detail, where, exc.headers)
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
        client = await self._get_client()
        handle = None
        where = "submit"
        try:
            async with asyncio.timeout(self.timeout_s):
                try:
                    handle = await self._submit(client, arguments)
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
                except Exception as exc:
                    # (fal-client's MissingCredentialsError cannot happen: the key is
                    # always passed, and its absence is a ConfigError before this.)
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

    def _audio_url(
        self, result: dict[str, Any], request_id: str, key: str = "audio"
    ) -> tuple[str, dict[str, Any]]:
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


class FalGenerator(FalQueue):
    """The ``fal`` generator: ``generator: {name: fal, model: <endpoint>, ...}``."""

    name = "fal"

    def __init__(self, config: dict[str, Any], state_dir: Path) -> None:
        config = dict(config or {})
        check_options("generator fal", config, CONFIG_KEYS)
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
        self._init_queue(config, "generator fal")

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
            self.price_usd = _number(
                "generator fal", config, "price_per_minute_usd", 0.0, 0.0, 1000.0
            )
            if self.billing == "per_request":
                self.billing = "per_minute_rounded_up"
        if "price_per_request_usd" in config:
            self.price_usd = _number(
                "generator fal", config, "price_per_request_usd", 0.0, 0.0, 1000.0
            )
            self.billing = "per_request"
        if "billing" in config:
            if config["billing"] not in BILLINGS:
                raise ConfigError(f"generator fal: billing must be one of {', '.join(BILLINGS)}")
            self.billing = config["billing"]

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
            url, meta = self._audio_url(result, request_id, self.endpoint.output_key)
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
