"""The ``s3`` storage sink: tracks in an S3-compatible bucket (AWS S3, R2, GCS interop, MinIO…).

Objects are content-addressed: the audio is stored at ``<prefix><sha256>.<ext>`` with
``Cache-Control: public, max-age=31536000, immutable`` (safe because the key changes
whenever the bytes do), its SHA-256 in the ``sha256`` metadata field. A small name object,
``<prefix>names/<id>.<ext>``, holds the SHA-256 the track's file name points to; it is
written only after the audio has been uploaded and checked (size and SHA-256, read back
with a GET: an ETag is not a SHA-256), so a reader that finds a name finds whole audio.

Cue URLs come from ``public_base_url`` (a CDN in front of the bucket) or, for a private
bucket, are presigned GET URLs (SigV4, at most 7 days; remade when half their life is
gone). ``GET /tracks/…`` on the server still works: it reads through the sink.

boto3 is synchronous: every call runs in a thread (``asyncio.to_thread``), never on the
event loop. ``exists`` is answered from what this process has stored or looked up;
``refresh`` (awaited by the pipeline before it generates a missing track) asks the bucket,
so a track another server stored is found, not generated again.

Credentials: boto3's standard chain (``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``,
``AWS_PROFILE``, instance roles…); never in the score.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import threading
import time
from pathlib import Path
from typing import Any

from segue.core import hookimpl
from segue.core.errors import ConfigError, PermanentError, TransientError
from segue.core.track import CONTENT_TYPES

CACHE_CONTROL = "public, max-age=31536000, immutable"
MAX_PRESIGN_S = 604_800  # SigV4's limit: 7 days
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,199}\.[a-z0-9]{1,8}$")
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]")
_SHA = re.compile(r"^[0-9a-f]{64}$")
_CHUNK = 1 << 20
OPTIONS = {
    "bucket",
    "endpoint_url",
    "prefix",
    "public_base_url",
    "region",
    "presign_expires_s",
    "timeout_s",
}
# Answers that will not get better by asking again.
_PERMANENT_CODES = {
    "AccessDenied",
    "AllAccessDisabled",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "NoSuchBucket",
    "InvalidBucketName",
    "AccountProblem",
    "InvalidToken",
    "ExpiredToken",
    "403",
}


def _classify(exc: BaseException, what: str) -> Exception:
    """A boto3/botocore failure as a one-line TransientError or PermanentError."""
    from botocore.exceptions import (
        ClientError,
        NoCredentialsError,
        PartialCredentialsError,
        ReadTimeoutError,
    )
    from botocore.exceptions import ConnectionError as BotoConnectionError

    if isinstance(exc, (NoCredentialsError, PartialCredentialsError)):
        return PermanentError(
            f"{what}: no AWS credentials (set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, "
            "or AWS_PROFILE)"
        )
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code", "?"))
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        message = " ".join(str(error.get("Message") or "").split())
        if code == str(status):  # a HEAD's error has no body: the status is all there is
            text = f"{what}: HTTP {status}"
        else:
            text = f"{what}: {code}" + (f" (HTTP {status})" if status else "")
        if message and message != code:
            text += f": {message}"
        if code in _PERMANENT_CODES or status in (400, 401, 403, 405, 411, 413):
            if code in ("NoSuchBucket",) or (status == 404 and "bucket" in what):
                text = f"{what}: the bucket does not exist ({code})"
            elif status == 403 or code == "AccessDenied":
                text = f"{what}: access denied ({code}, HTTP {status or 403})"
            return PermanentError(text)
        return TransientError(text)
    if isinstance(exc, ReadTimeoutError):
        return TransientError(f"{what}: no answer in time ({' '.join(str(exc).split())})")
    if isinstance(exc, BotoConnectionError):
        return TransientError(f"{what}: cannot reach the endpoint ({' '.join(str(exc).split())})")
    if isinstance(exc, OSError):
        return TransientError(f"{what}: {type(exc).__name__}: {exc}")
    return TransientError(f"{what}: {type(exc).__name__}: {' '.join(str(exc).split())}")


class S3Sink:
    """Content-addressed audio in a bucket; see the module docstring."""

    name = "s3"

    def __init__(
        self,
        bucket: str,
        *,
        prefix: str = "",
        endpoint_url: str | None = None,
        region: str | None = None,
        public_base_url: str | None = None,
        presign_expires_s: int = MAX_PRESIGN_S,
        timeout_s: float = 30.0,
    ) -> None:
        import boto3
        from botocore.config import Config

        self.bucket = bucket
        self.prefix = prefix
        self.endpoint_url = endpoint_url
        self.public_base_url = public_base_url.rstrip("/") if public_base_url else None
        self.presign_expires_s = int(presign_expires_s)
        config = Config(
            connect_timeout=min(5.0, timeout_s),
            read_timeout=timeout_s,
            # One retry inside boto3 for a dropped connection; the pipeline retries the rest
            # with its own backoff, so a 500 costs seconds, not minutes.
            retries={"total_max_attempts": 2, "mode": "standard"},
            signature_version="s3v4",
            s3={"addressing_style": "path" if endpoint_url else "auto"},
        )
        # A client is thread-safe; making one is not, so it is made once, here.
        self.client = boto3.session.Session().client(
            "s3", endpoint_url=endpoint_url, region_name=region, config=config
        )
        self._shas: dict[str, str] = {}  # filename -> sha256 of the object it names
        self._urls: dict[str, tuple[str, float]] = {}  # presigned URL, time it was made
        self._lock = threading.Lock()
        self._bucket_checked = False

    # --- keys ----------------------------------------------------------------------------

    def _check_name(self, filename: str) -> str:
        if not _NAME.match(filename):
            raise ValueError(f"not a track file name: {filename!r}")
        return filename

    def object_key(self, sha256: str, filename: str) -> str:
        return f"{self.prefix}{sha256}.{filename.rsplit('.', 1)[1]}"

    def name_key(self, filename: str) -> str:
        return f"{self.prefix}names/{filename}"

    def _where(self, key: str) -> str:
        return f"s3 {self.bucket}/{key}"

    # --- blocking work (runs in threads) -------------------------------------------------

    def _check_bucket(self) -> None:
        if self._bucket_checked:
            return
        try:
            self.client.head_bucket(Bucket=self.bucket)
        except Exception as exc:
            from botocore.exceptions import ClientError

            if isinstance(exc, ClientError):
                status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
                if status == 404:
                    raise PermanentError(
                        f"s3 {self.bucket}: the bucket does not exist"
                        + (f" at {self.endpoint_url}" if self.endpoint_url else "")
                    ) from None
            raise _classify(exc, f"s3 {self.bucket}") from None
        self._bucket_checked = True

    def _head(self, key: str) -> dict[str, Any] | None:
        from botocore.exceptions import ClientError

        try:
            return self.client.head_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") == 404:
                return None
            raise _classify(exc, self._where(key)) from None
        except Exception as exc:
            raise _classify(exc, self._where(key)) from None

    def _get(self, key: str, start: int = 0, end: int | None = None) -> bytes:
        args: dict[str, Any] = {"Bucket": self.bucket, "Key": key}
        if start or end is not None:
            args["Range"] = f"bytes={start}-" + ("" if end is None else str(end - 1))
        try:
            body = self.client.get_object(**args)["Body"]
            try:
                return body.read()
            finally:
                body.close()
        except Exception as exc:
            raise _classify(exc, self._where(key)) from None

    def _sha_of_object(self, key: str) -> tuple[str, int]:
        """SHA-256 and size of the stored bytes, read back in full."""
        try:
            body = self.client.get_object(Bucket=self.bucket, Key=key)["Body"]
            digest = hashlib.sha256()
            size = 0
            try:
                for chunk in body.iter_chunks(_CHUNK):
                    digest.update(chunk)
                    size += len(chunk)
            finally:
                body.close()
        except Exception as exc:
            raise _classify(exc, self._where(key)) from None
        return digest.hexdigest(), size

    def _put(self, filename: str, src: Path, sha256: str) -> None:
        self._check_name(filename)
        data = src.read_bytes()
        actual = hashlib.sha256(data).hexdigest()
        if actual != sha256:
            raise TransientError(
                f"{filename}: SHA-256 mismatch before upload "
                f"(expected {sha256[:12]}, file has {actual[:12]})"
            )
        self._check_bucket()
        key = self.object_key(sha256, filename)
        where = self._where(key)
        head = self._head(key)
        if not (
            head is not None
            and head.get("ContentLength") == len(data)
            and head.get("Metadata", {}).get("sha256") == sha256
        ):
            ext = filename.rsplit(".", 1)[1]
            try:
                self.client.put_object(
                    Bucket=self.bucket,
                    Key=key,
                    Body=data,
                    ContentType=CONTENT_TYPES.get(ext, "application/octet-stream"),
                    CacheControl=CACHE_CONTROL,
                    Metadata={"sha256": sha256},
                )
            except Exception as exc:
                raise _classify(exc, where) from None
            # The ETag is an MD5 (or not even that, for multipart): read the bytes back.
            got, size = self._sha_of_object(key)
            if size != len(data) or got != sha256:
                raise TransientError(
                    f"{where}: read back {size} bytes with SHA-256 {got[:12]}, "
                    f"uploaded {len(data)} with {sha256[:12]}"
                )
        name_key = self.name_key(filename)
        try:
            self.client.put_object(
                Bucket=self.bucket,
                Key=name_key,
                Body=sha256.encode(),
                ContentType="text/plain",
                CacheControl="no-cache",
                Metadata={"sha256": sha256},
            )
        except Exception as exc:
            raise _classify(exc, self._where(name_key)) from None
        with self._lock:
            self._shas[filename] = sha256

    def _lookup(self, filename: str) -> str | None:
        """The SHA-256 ``filename`` names in the bucket, or None."""
        self._check_name(filename)
        head = self._head(self.name_key(filename))
        if head is None:
            return None
        sha = head.get("Metadata", {}).get("sha256", "")
        if not _SHA.match(sha):
            sha = self._get(self.name_key(filename)).decode("ascii", "replace").strip()
        if not _SHA.match(sha):
            return None
        with self._lock:
            self._shas[filename] = sha
        return sha

    def _list(self) -> list[str]:
        names = []
        start = f"{self.prefix}names/"
        try:
            for page in self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=start
            ):
                for item in page.get("Contents", ()):
                    name = item["Key"][len(start) :]
                    if _NAME.match(name):
                        names.append(name)
        except Exception as exc:
            raise _classify(exc, f"s3 {self.bucket}/{start}") from None
        return sorted(names)

    # --- the StorageSink interface -------------------------------------------------------

    async def put(self, filename: str, src: Path, sha256: str) -> None:
        await asyncio.to_thread(self._put, filename, Path(src), sha256)

    def exists(self, filename: str) -> bool:
        """Known to be stored (by this process, or found by ``refresh``/``list``)."""
        return filename in self._shas

    async def refresh(self, filename: str) -> bool:
        """Ask the bucket whether ``filename`` is stored (another server may have put it)."""
        if filename in self._shas:
            return True
        try:
            return await asyncio.to_thread(self._lookup, filename) is not None
        except ValueError:
            return False

    def local_path(self, filename: str) -> Path | None:
        return None

    async def open(self, filename: str, start: int = 0, end: int | None = None) -> bytes:
        sha = self._shas.get(filename) or await asyncio.to_thread(self._lookup, filename)
        if sha is None:
            raise FileNotFoundError(f"s3 {self.bucket}: no stored track {filename}")
        return await asyncio.to_thread(self._get, self.object_key(sha, filename), start, end)

    def list(self) -> list[str]:
        """Every stored filename (a LIST of the bucket: a blocking call, for CLI commands)."""
        names = self._list()
        return names

    def public_url(self, filename: str) -> str | None:
        """The URL clients fetch ``filename`` from: the CDN's, or a presigned GET URL."""
        sha = self._shas.get(filename)
        if sha is None:
            return None
        key = self.object_key(sha, filename)
        if self.public_base_url:
            return f"{self.public_base_url}/{key}"
        now = time.time()
        hit = self._urls.get(filename)
        if hit is not None and now - hit[1] < self.presign_expires_s / 2:
            return hit[0]
        # Presigning is local work (an HMAC), no request.
        url = self.client.generate_presigned_url(
            "get_object",
            Params={"Bucket": self.bucket, "Key": key},
            ExpiresIn=self.presign_expires_s,
        )
        self._urls[filename] = (url, now)
        return url

    async def aclose(self) -> None:
        await asyncio.to_thread(self.client.close)


def make_s3_sink(config: dict[str, Any], state_dir: Path) -> S3Sink:
    unknown = set(config) - OPTIONS
    if unknown:
        raise ConfigError(f"storage s3: unknown option(s) {', '.join(sorted(unknown))}")
    bucket = config.get("bucket")
    if not isinstance(bucket, str) or not _BUCKET.fullmatch(bucket):
        raise ConfigError(f"storage s3: bucket must be a bucket name, not {bucket!r}")
    prefix = config.get("prefix", "")
    if not isinstance(prefix, str) or prefix.startswith("/"):
        raise ConfigError("storage s3: prefix must be a key prefix such as 'segue/'")
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    strings = {}
    for opt in ("endpoint_url", "public_base_url", "region"):
        value = config.get(opt)
        if value is not None and (not isinstance(value, str) or not value):
            raise ConfigError(f"storage s3: {opt} must be a string")
        strings[opt] = value
    for opt in ("endpoint_url", "public_base_url"):
        value = strings[opt]
        if value is not None and not re.match(r"^https?://[^/\s]+", value):
            raise ConfigError(f"storage s3: {opt} must be an http(s) URL, not {value!r}")
    expires = config.get("presign_expires_s", MAX_PRESIGN_S)
    if (
        isinstance(expires, bool)
        or not isinstance(expires, int)
        or not 1 <= expires <= MAX_PRESIGN_S
    ):
        raise ConfigError(
            f"storage s3: presign_expires_s must be 1..{MAX_PRESIGN_S} (7 days), not {expires!r}"
        )
    timeout = config.get("timeout_s", 30.0)
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
        raise ConfigError(f"storage s3: timeout_s must be a positive number, not {timeout!r}")
    try:
        import boto3  # noqa: F401
    except ImportError:
        raise ConfigError("storage s3 needs boto3: pip install 'segue[s3]'") from None
    return S3Sink(
        bucket,
        prefix=prefix,
        endpoint_url=strings["endpoint_url"],
        region=strings["region"],
        public_base_url=strings["public_base_url"],
        presign_expires_s=expires,
        timeout_s=float(timeout),
    )


@hookimpl
def segue_register_storage_sinks(register: Any) -> None:
    register("s3", make_s3_sink)
