"""The first track in a process of its own, started before the server's imports.

``segue serve`` with nothing stored spends its first second importing the HTTP server and
starting it; a track of the synth is CPU work that a thread of the same process would do
under the same interpreter lock. So, right after the port is taken, :func:`start` forks a
worker that makes the track every new session hears first (the first variant of
``generation_order``'s first mood) through a pipeline of its own, on the other core,
while the server finishes starting. The worker stores the track as any pipeline does
(same cache key, same finishing, same sinks) and sends it to the server over a pipe; the
server's pipeline (``Pipeline.head_start``) waits for it instead of generating that key,
records it in its own cache (a memory cache is not shared), and notifies
``segue_track_stored`` itself. A worker that fails leaves the key to the server, which
then generates it as usual.

Only for a generator that says its work is CPU work on this machine (``cpu_bound``) and
a request that costs nothing; only where ``os.fork`` exists and nothing else runs in the
process yet (no thread: a fork copies one thread).

Pipe protocol, one line each: the cache key the worker makes (empty: none), then the
stored Track as JSON, or ``!`` and why it failed.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import logging
import os
import signal
import socket
import sys
import threading
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from segue.core.plugins import Plugins
    from segue.core.pregen.pipeline import Pipeline
    from segue.core.score import Score
    from segue.core.track import Track

log = logging.getLogger("segue.generation")

__all__ = ["HeadStart", "start"]

# A worker that got less of a core than this while it set up (the time it ran over the
# time it wanted to run) shares one with the server: it waits until the server serves
# before rendering, so that its own worker does not slow the server's first answers.
MIN_CPU_SHARE = 0.7


class HeadStart:
    """The server's side of the worker: what key it makes, and the Track it made."""

    def __init__(self, pid: int, fd: int, go: int) -> None:
        self.pid = pid
        self._fd = fd
        self._go = go
        self._lines: asyncio.Queue[str] | None = None
        self._key: str | None = None
        self._result: str | None = None
        self._reaped = False
        self._buffer = b""

    def _on_readable(self) -> None:
        assert self._lines is not None
        try:
            data = os.read(self._fd, 65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:  # the worker exited: EOF
            asyncio.get_running_loop().remove_reader(self._fd)
            self._lines.put_nowait("")
            return
        self._buffer += data
        *lines, self._buffer = self._buffer.split(b"\n")
        for line in lines:
            self._lines.put_nowait(line.decode() + "\n")

    async def _line(self) -> str:
        if self._lines is None:
            self._lines = asyncio.Queue()
            os.set_blocking(self._fd, False)
            asyncio.get_running_loop().add_reader(self._fd, self._on_readable)
        line = await self._lines.get()
        if not line:
            self._lines.put_nowait("")  # EOF stays EOF for the next reader
        return line

    async def key(self) -> str:
        """The cache key the worker makes ("" for none)."""
        if self._key is None:
            self._key = (await self._line()).strip()
            if not self._key:
                self._result = ""
                await self._reap()  # nothing to make: it exits
        return self._key

    async def track_for(self, key: str) -> Track | None:
        """The Track the worker stored for ``key``; None if it makes another key, or failed."""
        from segue.core.track import Track

        if not key or await self.key() != key:
            return None
        if self._result is None:
            self._result = (await self._line()).strip()
            await self._reap()
        if not self._result or self._result.startswith("!"):
            log.info(
                "the head-start worker did not store %s (%s): generating it here",
                key[:12],
                self._result[1:] or "it exited",
            )
            return None
        return Track.from_dict(json.loads(self._result))

    def serving(self) -> None:
        """The server answers: a worker that waited for it (a busy machine) may start."""
        if self._go >= 0:
            with contextlib.suppress(OSError):
                os.write(self._go, b"g")
                os.close(self._go)
            self._go = -1

    async def _reap(self) -> None:
        if not self._reaped:
            self._reaped = True
            with contextlib.suppress(ChildProcessError):
                await asyncio.to_thread(os.waitpid, self.pid, 0)

    def stop(self) -> None:
        """Stop the worker and wait for it, outside the event loop (Ctrl-C before it ran)."""
        if not self._reaped:
            self._reaped = True
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGTERM)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(self.pid, 0)

    async def aclose(self) -> None:
        """Stop a worker still at work (the server is stopping) and wait for it."""
        if not self._reaped:
            if self._result is None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(self.pid, signal.SIGTERM)
            await self._reap()
        if self._lines is not None:
            with contextlib.suppress(ValueError, RuntimeError):
                asyncio.get_running_loop().remove_reader(self._fd)
        with contextlib.suppress(OSError):
            os.close(self._fd)
        self._fd = -1
        if self._go >= 0:
            with contextlib.suppress(OSError):
                os.close(self._go)
            self._go = -1


def start(
    score: Score, plugins: Plugins, generator: str | None, sockets: list[socket.socket]
) -> HeadStart | None:
    """Fork the worker (see the module); None where it cannot run."""
    if not hasattr(os, "fork") or threading.active_count() > 1:
        return None
    read, write = os.pipe()
    go_read, go_write = os.pipe()
    sys.stdout.flush()
    sys.stderr.flush()
    # A Ctrl-C while the fork runs its handlers (logging's) would be lost there, printed
    # as ignored, and the server would carry on: it waits until the worker is known.
    interrupt = {signal.SIGINT}
    signal.pthread_sigmask(signal.SIG_BLOCK, interrupt)
    pid = os.fork()
    if pid:
        os.close(write)
        os.close(go_read)
        head = HeadStart(pid, read, go_write)
        try:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, interrupt)  # a Ctrl-C raises here
        except BaseException:
            head.stop()
            raise
        return head
    # The worker: never returns into the caller's code.
    code = 1
    try:
        os.close(read)
        os.close(go_write)
        for sock in sockets:  # the port is the server's alone
            sock.close()
        # Ctrl-C reaches the whole process group: the server decides (grace, then SIGTERM).
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, interrupt)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        gc.enable()  # the server starts with it off
        code = asyncio.run(_work(score, plugins, generator, write, go_read))
    except BaseException:  # a worker reports through the pipe; the server carries on
        code = 1
    finally:
        with contextlib.suppress(BaseException):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)


async def _work(score: Score, plugins: Plugins, generator: str | None, fd: int, go: int) -> int:
    from segue.core.engine.rules import generation_order
    from segue.core.pregen.pipeline import Pipeline

    def say(text: str) -> None:
        os.write(fd, text.encode() + b"\n")

    pipeline: Pipeline | None = None
    key = ""
    since = _cpu_times()
    try:
        pipeline = Pipeline(score, plugins, generator=generator)
        pipeline.notify_stored = False  # the server notifies, once, in its own process
        if getattr(pipeline.generator, "cpu_bound", False):
            if hasattr(pipeline.generator, "processes"):
                # One track while the machine's cores are idle (once the server serves):
                # the generator may use them all for it, for the same audio.
                pipeline.generator.processes = max(1, os.cpu_count() or 1)
            moods = generation_order(score)[:1]
            for planned in pipeline.plan():
                if planned.request.mood in moods:
                    if planned.cost_usd == 0 and pipeline.stored(planned.request) is None:
                        key = planned.key
                    break
        say(key)
        if not key:
            return 0
        share = _cpu_share(since)
        log.debug("head-start worker: %.0f%% of a core while it set up", 100 * share)
        if share < MIN_CPU_SHARE and not os.read(go, 1):
            return 0  # the server is gone before it served: nothing to make it for
        track = await pipeline.ensure(planned.request)
        say(json.dumps(track.to_dict()))
        return 0
    except Exception as exc:  # the server generates the key itself, and says why
        with contextlib.suppress(OSError):
            say("" if not key else "!" + (f"{exc}" or type(exc).__name__).replace("\n", " "))
        return 1
    finally:
        if pipeline is not None:
            await pipeline.aclose()
            pipeline.remove_work()


def _cpu_times() -> tuple[float, float]:
    """(seconds on a CPU, seconds waiting for one) of this thread: the kernel's schedstat
    where it has one (its wait is exactly the time others held the CPU), else CPU and
    wall time (their difference counts I/O waits too)."""
    try:
        with open(f"/proc/self/task/{threading.get_native_id()}/schedstat") as f:
            ran, waited = f.read().split()[:2]
        return int(ran) / 1e9, int(waited) / 1e9
    except (OSError, ValueError, AttributeError):
        cpu = time.thread_time()
        return cpu, time.monotonic() - cpu


def _cpu_share(since: tuple[float, float]) -> float:
    """The share of a core this thread had since ``since`` (``_cpu_times``) while it wanted one."""
    ran, waited = _cpu_times()
    ran, waited = ran - since[0], waited - since[1]
    return ran / (ran + waited) if ran + waited > 0 else 1.0
