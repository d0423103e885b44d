"""examples/python_game.py against a real server (in-process, on a free port)."""

from __future__ import annotations

import asyncio
import re
import socket
import sys
from pathlib import Path

import pytest
from server_support import serve

ROOT = Path(__file__).resolve().parents[1]
GAME = ROOT / "examples" / "python_game.py"

pytestmark = pytest.mark.timeout(90)


async def run_game(*args: str, timeout: float = 60.0) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(GAME),
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_the_game_plays_its_story_and_prints_the_cues(tmp_path):
    async with serve(tmp_path) as live:
        code, out, err = await run_game(
            "--url", live.ws, "--session", "game-1", "--tick-s", "0.05", "--seed", "3"
        )
        assert code == 0, err
        assert err == ""
        session = live.server.manager.sessions["game-1"]
        # The server saw the game's state: the story ends with the wyrm gone, out of combat.
        assert session.state.get("in_combat") is False
        assert "boss" not in session.state
        assert session.state["player"]["health"] == 1.0
    lines = out.splitlines()
    assert re.search(r"session +game-1 +clock offset [+-]\d", lines[0])
    cues = [line for line in lines if re.search(r"\] cue #\d+", line)]
    assert cues[0].split("cue #1")[1].split()[:3] == ["·", "→", "explore"]
    # The tiny score's rules: combat on in_combat, danger below 0.3 health.
    heard = [re.search(r"→ (\w+)", c).group(1) for c in cues]
    assert {"explore", "combat", "danger"} <= set(heard)
    seqs = [int(re.search(r"cue #(\d+)", c).group(1)) for c in cues]
    assert seqs == list(range(1, len(seqs) + 1))
    assert any("stinger victory for boss_defeated" in line for line in lines)
    # Events the score lacks are not sent (no unknown_event from the server).
    assert "(the score has no 'secret_found' event; not sent)" in out
    done = lines[-1]
    assert f"{len(cues)} cue(s), 1 stinger(s)" in done


async def test_steps_limit_the_game(tmp_path):
    async with serve(tmp_path) as live:
        code, out, _ = await run_game("--url", live.ws, "--steps", "2", "--fast")
        assert code == 0
    assert len([line for line in out.splitlines() if "] game " in line]) == 2
    assert "cue #1" in out


async def test_no_server_is_one_line_and_exit_1():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    code, _, err = await run_game("--url", f"ws://127.0.0.1:{port}/ws", "--fast")
    assert code == 1
    assert err.startswith(f"python_game: cannot connect to ws://127.0.0.1:{port}/ws")
    assert len(err.strip().splitlines()) == 1
    assert "Traceback" not in err


async def test_bad_arguments_exit_2():
    code, _, err = await run_game("--tick-s", "0")
    assert code == 2
    assert "--tick-s must be positive" in err
