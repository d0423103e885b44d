"""The ``s3`` storage sink against moto's server mode (real HTTP, no key, no Docker).

Faults (500s, slow answers, access denied) come from a small HTTP proxy between the sink
and moto that answers for moto when told to; a missing bucket is moto's own answer.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pregen_support as ps
import pytest

from segue.core.errors import ConfigError, PermanentError, TransientError
from segue.core.plugins import Plugins
from segue.core.pregen.pipeline import Pipeline

try:
    import boto3
    import moto.server as moto_server
except ImportError as exc:  # the test extra installs both
    if os.environ.get("SEGUE_REQUIRE_SERVICES") == "1":
        raise RuntimeError(f"boto3 and moto[server] are required here: {exc}") from None
    pytest.skip(f"boto3 or moto[server] missing: {exc}", allow_module_level=True)

BUCKET = "segue-test"
ACCESS_DENIED = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code>'
    b"<Message>Access Denied</Message><RequestId>1</RequestId></Error>"
)
INTERNAL = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>InternalError</Code>'
    b"<Message>We encountered an internal error. Please try again.</Message></Error>"
)


class FaultProxy:
    """Forwards to moto, or answers with ``fault``: "500", "403", or "slow" (sleeps first)."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.fault: str | None = None
        self.requests = 0
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _any(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                proxy.requests += 1
                fault = proxy.fault
                if fault == "500":
                    return self._answer(500, INTERNAL)
                if fault == "403":
                    return self._answer(403, ACCESS_DENIED)
                if fault == "slow":
                    time.sleep(1.5)
                req = urllib.request.Request(
                    proxy.upstream + self.path,
                    data=body if self.command in ("PUT", "POST") else None,
                    method=self.command,
                    headers={k: v for k, v in self.headers.items() if k.lower() != "host"}
                    | {"Host": self.headers.get("Host", "")},
                )
                try:
                    with urllib.request.urlopen(req, timeout=10) as r:
                        status, headers, data = r.status, r.headers.items(), r.read()
                except urllib.error.HTTPError as e:
                    status, headers, data = e.code, e.headers.items(), e.read()
                self.send_response(status)
                for k, v in headers:
                    if k.lower() not in ("content-length", "transfer-encoding", "connection"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            def _answer(self, status: int, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/xml")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            do_GET = do_PUT = do_HEAD = do_POST = do_DELETE = _any

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def moto():
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    boto3.client("s3", endpoint_url=url, region_name="us-east-1").create_bucket(Bucket=BUCKET)
    proxy = FaultProxy(url)
    yield url, proxy
    proxy.close()
    server.stop()


@pytest.fixture
def proxy(moto):
    moto[1].fault = None
    yield moto[1]
    moto[1].fault = None


def make_sink(endpoint: str, **options: Any):
    plugins = Plugins(strict=False, load_entry_points=False)
    config = {"bucket": BUCKET, "endpoint_url": endpoint, "prefix": "t/"} | options
    return plugins.sinks.get("s3").factory(config, Path("/nonexistent/.segue"))


def source(tmp_path: Path, data: bytes) -> tuple[Path, str]:
    path = tmp_path / "src.bin"
    path.write_bytes(data)
    return path, hashlib.sha256(data).hexdigest()


async def test_put_is_content_addressed_checked_and_immutable(tmp_path, moto):
    url, _ = moto
    s = make_sink(url, prefix=f"a{os.getpid()}", public_base_url="https://cdn.example.com/")
    data = os.urandom(200_000)
    src, sha = source(tmp_path, data)
    name = "ab" * 32 + ".ogg"
    assert not s.exists(name) and s.public_url(name) is None and s.local_path(name) is None
    await s.put(name, src, sha)
    assert s.exists(name)
    key = f"a{os.getpid()}/{sha}.ogg"
    head = s.client.head_object(Bucket=BUCKET, Key=key)
    assert head["CacheControl"] == "public, max-age=31536000, immutable"
    assert head["Metadata"]["sha256"] == sha and head["ContentLength"] == len(data)
    assert head["ContentType"] == "audio/ogg"
    assert s.public_url(name) == f"https://cdn.example.com/{key}"
    assert await s.open(name) == data
    assert await s.open(name, 10, 20) == data[10:20]
    assert s.list() == [name]
    # Another server's sink learns of the track by asking the bucket, not from memory.
    other = make_sink(url, prefix=f"a{os.getpid()}")
    assert not other.exists(name)
    assert await other.refresh(name) and other.exists(name)
    assert await other.open(name, 0, 5) == data[:5]
    assert not await other.refresh("cd" * 32 + ".ogg")
    # The same bytes again: nothing re-uploaded (the key is the content).
    await other.put(name, src, sha)
    await s.aclose()
    await other.aclose()


async def test_presigned_urls_for_a_private_bucket(tmp_path, moto):
    url, _ = moto
    s = make_sink(url, presign_expires_s=3600)
    data = b"private audio bytes" * 100
    src, sha = source(tmp_path, data)
    name = "ef" * 32 + ".wav"
    await s.put(name, src, sha)
    signed = s.public_url(name)
    assert signed is not None and "X-Amz-Expires=3600" in signed and "X-Amz-Signature=" in signed
    assert s.public_url(name) == signed  # remade only after half its life
    with urllib.request.urlopen(signed, timeout=10) as r:
        assert r.read() == data
    with pytest.raises(ConfigError, match=r"presign_expires_s must be 1\.\.604800"):
        make_sink(url, presign_expires_s=604_801)
    await s.aclose()


async def test_stem_urls_are_the_storage_public_urls(tmp_path, moto):
    """A layered track's stems are fetched where its mix is: the CDN, or presigned URLs."""
    from segue.core.pregen.sinks import with_public_url
    from segue.core.track import Track

    url, _ = moto
    track_id = "5e" * 32
    stems = {}
    blobs = {}
    for name in ("bass", "drums"):
        file = f"{track_id}-{name}.ogg"
        src, sha = source(tmp_path, os.urandom(3000))
        blobs[name] = src.read_bytes()
        stems[name] = {"url": f"/tracks/{file}", "file": file, "sha256": sha, "bytes": 3000}
    mix, mix_sha = source(tmp_path, os.urandom(5000))
    track = Track(
        id=track_id, mood="m", variant=0, duration_s=4.0, format="ogg", sha256=mix_sha, stems=stems
    )
    cached = track.to_dict()
    cdn = make_sink(url, prefix="stems/", public_base_url="https://cdn.example.com")
    private = make_sink(url, prefix="stems/", presign_expires_s=600)
    await cdn.put(track.filename, mix, mix_sha)
    for name, stem in stems.items():
        (tmp_path / "stem").write_bytes(blobs[name])
        await cdn.put(stem["file"], tmp_path / "stem", stem["sha256"])
    served = with_public_url(cdn, track).to_dict()
    assert served["url"] == f"https://cdn.example.com/stems/{mix_sha}.ogg"
    for name, stem in served["stems"].items():
        assert stem["url"] == f"https://cdn.example.com/stems/{stems[name]['sha256']}.ogg"
        assert (stem["sha256"], stem["bytes"]) == (stems[name]["sha256"], 3000)
    assert await private.refresh(track.filename)
    for stem in stems.values():
        assert await private.refresh(stem["file"])
    signed = with_public_url(private, track)
    assert "X-Amz-Signature=" in signed.url
    for name, stem in signed.stems.items():
        assert "X-Amz-Signature=" in stem["url"] and "X-Amz-Expires=600" in stem["url"]
        with urllib.request.urlopen(stem["url"], timeout=10) as r:
            assert r.read() == blobs[name]
    assert track.to_dict() == cached  # the cached Track keeps the server's own routes
    await cdn.aclose()
    await private.aclose()


async def test_a_checksum_mismatch_uploads_nothing(tmp_path, moto):
    url, _ = moto
    s = make_sink(url, prefix="mismatch/")
    src, _sha = source(tmp_path, b"real bytes")
    with pytest.raises(TransientError, match="SHA-256 mismatch"):
        await s.put("12" * 32 + ".wav", src, "0" * 64)
    assert s.client.list_objects_v2(Bucket=BUCKET, Prefix="mismatch/").get("KeyCount") == 0


def one_line(exc: BaseException) -> str:
    text = str(exc)
    assert "\n" not in text and "Traceback" not in text
    return text


async def test_500s_are_transient(tmp_path, proxy):
    s = make_sink(proxy.url)
    src, sha = source(tmp_path, b"x" * 1000)
    proxy.fault = "500"
    with pytest.raises(TransientError) as info:
        await s.put("34" * 32 + ".wav", src, sha)
    text = one_line(info.value)
    assert text.startswith(f"s3 {BUCKET}") and "HTTP 500" in text
    proxy.fault = None
    await s.put("34" * 32 + ".wav", src, sha)  # and it works once the endpoint does
    assert s.exists("34" * 32 + ".wav")


async def test_slow_answers_are_transient(tmp_path, proxy):
    s = make_sink(proxy.url, timeout_s=0.3)
    src, sha = source(tmp_path, b"y" * 1000)
    proxy.fault = "slow"
    with pytest.raises(TransientError) as info:
        await s.put("56" * 32 + ".wav", src, sha)
    assert "no answer in time" in one_line(info.value)


async def test_access_denied_is_permanent(tmp_path, proxy):
    s = make_sink(proxy.url)
    src, sha = source(tmp_path, b"z" * 1000)
    proxy.fault = "403"
    with pytest.raises(PermanentError) as info:
        await s.put("78" * 32 + ".wav", src, sha)
    assert "access denied" in one_line(info.value)


async def test_a_missing_bucket_is_permanent(tmp_path, moto):
    url, _ = moto
    plugins = Plugins(strict=False, load_entry_points=False)
    s = plugins.sinks.get("s3").factory(
        {"bucket": "no-such-bucket", "endpoint_url": url}, Path("/nonexistent")
    )
    src, sha = source(tmp_path, b"w" * 1000)
    with pytest.raises(PermanentError) as info:
        await s.put("9a" * 32 + ".wav", src, sha)
    assert one_line(info.value) == f"s3 no-such-bucket: the bucket does not exist at {url}"


def test_options_are_checked(moto):
    url, _ = moto
    for config, message in [
        ({"endpoint_url": url}, "bucket must be a bucket name"),
        ({"bucket": BUCKET, "endpont_url": url}, "unknown option"),
        ({"bucket": BUCKET, "endpoint_url": "ftp://x"}, "endpoint_url must be an http"),
        ({"bucket": BUCKET, "prefix": "/abs"}, "prefix must be a key prefix"),
        ({"bucket": BUCKET, "timeout_s": 0}, "timeout_s must be a positive number"),
    ]:
        plugins = Plugins(strict=False, load_entry_points=False)
        with pytest.raises(ConfigError, match=message):
            plugins.sinks.get("s3").factory(config, Path("/nonexistent"))


async def test_primary_and_replica_in_the_pipeline(tmp_path, moto):
    url, _ = moto
    s3 = {"name": "s3", "bucket": BUCKET, "endpoint_url": url, "prefix": "pipe/"}
    s3_cdn = s3 | {"public_base_url": "https://cdn.example.com"}
    # As a replica of a local primary: every track is copied up.
    score = ps.build_score(
        tmp_path, ps.spec({"m": {"variants": 2}}, storage=[{"name": "local"}, s3])
    )
    p = Pipeline(score, ps.plugins(), backoff_base_s=0.01, backoff_cap_s=0.05)
    assert (await p.run()).ok
    local, replica = p.sinks
    assert replica.list() == local.list() and len(local.list()) == 2
    for name in local.list():
        assert await replica.open(name) == local.local_path(name).read_bytes()
    await p.aclose()
    # As the primary (another server, same cache): nothing is generated again, and the
    # cue's URL is the CDN's.
    score = ps.build_score(tmp_path, ps.spec({"m": {"variants": 2}}, storage=[s3_cdn]))
    p = Pipeline(score, ps.plugins(), backoff_base_s=0.01, backoff_cap_s=0.05)
    assert p.tracks_for("m") == []  # not looked up yet: nothing waits on the serving path
    summary = await p.run()
    assert len(summary.skipped) == 2 and not summary.failed
    tracks = p.tracks_for("m")
    assert len(tracks) == 2
    for t in tracks:
        assert t.url == f"https://cdn.example.com/pipe/{t.sha256}.{t.format}"
        assert t.to_dict()["url"] == t.url and "public_url" not in t.to_dict()
    assert p.cache.get(tracks[0].id).url == f"/tracks/{tracks[0].filename}"  # cache unchanged
    await p.aclose()
    # `segue tracks` lists them from a fresh sink (one LIST of the bucket).
    from segue.core.commands.tracks import collect

    listed = collect(score, ps.plugins())
    assert sorted(t["id"] for t in listed["tracks"]) == sorted(t.id for t in tracks)
