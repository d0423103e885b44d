"""The server's side of the head-start worker (segue.core.pregen.headstart), against real
processes that speak its pipe protocol: a worker that fails or dies leaves the key to the
server, one that makes another key is not waited for, and every worker is reaped."""

from __future__ import annotations

import asyncio
import json
import os

import pytest

from segue.core.pregen.headstart import HeadStart
from segue.core.track import Track


def worker(*lines: str, die: bool = False) -> HeadStart:
    """A forked process that writes ``lines`` to the pipe and exits (or is killed)."""
    read, write = os.pipe()
    go_read, go_write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        os.close(read)
        for line in lines:
            os.write(write, line.encode() + b"\n")
        os._exit(9 if die else 0)
    os.close(write)
    os.close(go_read)
    return HeadStart(pid, read, go_write)


def reaped(pid: int) -> bool:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return True
    return False


@pytest.mark.parametrize(
    "lines", [("k1", "!the synth failed: boom"), ("k1",)], ids=["failed", "died"]
)
def test_a_worker_that_did_not_store_leaves_the_key_to_the_server(lines) -> None:
    head = worker(*lines, die=len(lines) == 1)

    async def go() -> Track | None:
        try:
            return await head.track_for("k1")
        finally:
            await head.aclose()

    assert asyncio.run(go()) is None
    assert reaped(head.pid)


def test_the_track_of_its_key_and_nothing_for_another() -> None:
    track = Track(id="k1", mood="explore", variant=0, format="ogg", duration_s=12.0, bpm=90.0)
    head = worker("k1", json.dumps(track.to_dict()))

    async def go() -> tuple[Track | None, Track | None]:
        try:
            return await head.track_for("k2"), await head.track_for("k1")
        finally:
            await head.aclose()

    other, made = asyncio.run(go())
    assert other is None
    assert made is not None and made.id == "k1" and made.bpm == 90.0
    assert reaped(head.pid)


def test_a_worker_with_nothing_to_make_is_reaped_when_it_says_so() -> None:
    head = worker("")

    async def go() -> str:
        try:
            return await head.key()
        finally:
            await head.aclose()

    assert asyncio.run(go()) == ""
    assert reaped(head.pid)
