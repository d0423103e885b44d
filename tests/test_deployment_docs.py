"""docs/deployment.md's configurations, as the page writes them.

The systemd unit is one systemd reads as meant. The ``nginx`` block is dropped into a
bare ``http {}`` (only paths, ports and the certificate are replaced), checked with
``nginx -t``, then run: a WebSocket over TLS through it, the audio with its cache and
ranges, the HTTP API, and the access log that must not keep the ``?token=`` of a URL.
Needs nginx (``.ci/run`` installs it).
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import socket
import ssl
import subprocess
import time
from pathlib import Path

import aiohttp
import pytest
import trustme
from server_support import connect_raw, joined, recv_type, serve

DOC = Path(__file__).resolve().parents[1] / "docs" / "deployment.md"


def require_nginx() -> str:
    """nginx's path; without it skip, and in CI (SEGUE_REQUIRE_SERVICES=1) fail."""
    path = shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if os.path.exists(p)), None
    )
    if path:
        return path
    reason = "nginx missing: apt-get install nginx"
    if os.environ.get("SEGUE_REQUIRE_SERVICES", "") == "1":
        pytest.fail(f"{reason} (required: SEGUE_REQUIRE_SERVICES=1)")
    pytest.skip(reason)


def nginx_version(nginx: str) -> tuple[int, ...]:
    out = subprocess.run([nginx, "-v"], capture_output=True, text=True, check=True).stderr
    found = re.search(r"nginx/(\d+)\.(\d+)\.(\d+)", out)
    assert found, out
    return tuple(int(x) for x in found.groups())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_config(tmp: Path, nginx: str, upstream: int, listen: int, ca: trustme.CA) -> Path:
    """The doc's block in a bare http {}, with this test's paths, ports and certificate."""
    block = re.search(r"```nginx\n(.*?)```", DOC.read_text(), re.S)
    assert block, "docs/deployment.md has no nginx block"
    text = block.group(1)
    ca.issue_cert("127.0.0.1", "localhost").private_key_and_cert_chain_pem.write_to_path(
        str(tmp / "server.pem")
    )
    for old, new in {
        "/etc/letsencrypt/live/music.example.com/fullchain.pem": tmp / "server.pem",
        "/etc/letsencrypt/live/music.example.com/privkey.pem": tmp / "server.pem",
        "/var/log/nginx/segue.log": tmp / "segue.log",
        "/var/cache/nginx/segue": tmp / "cache",
        "listen 443 ssl;": f"listen 127.0.0.1:{listen} ssl;",
        "server 127.0.0.1:8765;": f"server 127.0.0.1:{upstream};",
    }.items():
        assert old in text, f"docs/deployment.md's nginx block no longer has {old!r}"
        text = text.replace(old, str(new))
    if nginx_version(nginx) < (1, 25, 1):
        # What the doc's comment says to do on an older nginx.
        text = text.replace("http2 on;", "").replace(" ssl;", " ssl http2;", 1)
    temp = " ".join(
        f"{kind}_temp_path {tmp / kind};" for kind in ("client_body", "proxy", "fastcgi")
    )
    temp += f" uwsgi_temp_path {tmp / 'uwsgi'}; scgi_temp_path {tmp / 'scgi'};"
    user = "user root;\n" if os.geteuid() == 0 else ""  # workers must reach tmp_path
    conf = tmp / "nginx.conf"
    conf.write_text(
        f"{user}worker_processes 1;\npid {tmp / 'nginx.pid'};\nevents {{}}\n"
        f"http {{\n{temp}\naccess_log off;\n{text}\n}}\n"
    )
    return conf


def nginx_command(nginx: str, tmp: Path, conf: Path, *args: str) -> list[str]:
    return [nginx, "-p", str(tmp), "-c", str(conf), "-e", "stderr", *args]


def test_the_docs_systemd_unit_has_no_comment_after_a_value() -> None:
    # systemd reads "KEY=value  # note" as the value "value  # note" (no inline comments).
    unit = re.search(r"```ini\n(.*?)```", DOC.read_text(), re.S)
    assert unit, "docs/deployment.md has no systemd unit"
    lines = unit.group(1).splitlines()
    settings = [line for line in lines if "=" in line and not line.lstrip().startswith(("#", ";"))]
    assert settings and not [line for line in settings if "#" in line]


def test_the_docs_nginx_configuration_passes_nginx_t(tmp_path: Path) -> None:
    nginx = require_nginx()
    conf = write_config(tmp_path, nginx, free_port(), free_port(), trustme.CA())
    done = subprocess.run(nginx_command(nginx, tmp_path, conf, "-t"), capture_output=True)
    assert done.returncode == 0, done.stderr.decode()


async def test_a_room_and_its_audio_through_the_docs_nginx(tmp_path: Path) -> None:
    nginx = require_nginx()
    ca = trustme.CA()
    client_ssl = ssl.create_default_context()
    ca.configure_trust(client_ssl)
    (tmp_path / "game").mkdir()
    async with serve(tmp_path / "game") as live:
        listen = free_port()
        conf = write_config(tmp_path, nginx, live.port, listen, ca)
        proc = subprocess.Popen(
            nginx_command(nginx, tmp_path, conf, "-g", "daemon off;"),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            deadline = time.monotonic() + 10
            while True:
                try:
                    socket.create_connection(("127.0.0.1", listen), 0.2).close()
                    break
                except OSError:
                    assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
                    assert time.monotonic() < deadline, "nginx did not listen"
                    await asyncio.sleep(0.05)
            base = f"https://127.0.0.1:{listen}"
            url = f"wss://127.0.0.1:{listen}/ws?session=behind-nginx&token=s3cret"
            async with connect_raw(url, ssl=client_ssl) as ws:
                kinds = [m["type"] for m in await joined(ws)]
                assert kinds[:2] == ["welcome", "cue"] and kinds[-1] == "prefetch"
                async with aiohttp.ClientSession() as http:
                    reply = await http.post(
                        f"{base}/api/sessions/behind-nginx/state",
                        json={"set": {"in_combat": True}},
                        ssl=client_ssl,
                    )
                    assert reply.status == 200, await reply.text()
                    # The HTTP call's cue reaches the WebSocket through nginx.
                    cue = await recv_type(ws, "cue")
                    assert cue["mood"] == "combat"
                    track = cue["track"]
                    seen = []
                    for _ in range(2):
                        got = await http.get(base + track["url"], ssl=client_ssl)
                        body = await got.read()
                        assert got.status == 200 and len(body) == track["bytes"]
                        seen.append(got.headers.get("X-Cache-Status"))
                    assert seen == ["MISS", "HIT"]  # immutable tracks: cached by nginx
                    part = await http.get(
                        base + track["url"], headers={"Range": "bytes=0-99"}, ssl=client_ssl
                    )
                    assert part.status == 206 and len(await part.read()) == 100
        finally:
            proc.terminate()
            proc.wait(10)
    log = (tmp_path / "segue.log").read_text()
    assert "GET /ws" in log and "s3cret" not in log  # the token stays out of the log
