"""``segue pregen`` in real subprocesses: SIGKILL and rerun, two at once, Ctrl-C, exit codes."""

from __future__ import annotations

import collections
import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pregen_support as ps
import pytest
import soundfile as sf

from segue.core.pregen.pipeline import build_cache


def start(folder: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        ps.driver_cmd(folder, *args),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def wait_for(cond, timeout: float = 30.0) -> None:
    end = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > end:
            raise AssertionError("condition not reached in time")
        time.sleep(0.01)


def count(folder: Path, event: str) -> int:
    return sum(1 for r in ps.records(folder) if r["event"] == event)


def recorded(folder: Path, score_spec: dict) -> dict:
    """key -> Track of what the cache records (read with the real disk backend)."""
    score = ps.build_score(folder, score_spec)
    cache = build_cache(score, ps.plugins())
    try:
        return {t.id: t for t in cache.tracks()}
    finally:
        cache.close()


def check_storage(folder: Path, score_spec: dict) -> dict:
    """Everything visible in storage is complete and recorded right; returns the stored tracks.

    Visible means not dot-prefixed; dot-temp files of a killed writer may remain until the
    next start removes them.
    """
    tracks_dir = folder / ".segue" / "tracks"
    tracks = recorded(folder, score_spec)
    stored = {}
    for entry in tracks_dir.iterdir() if tracks_dir.exists() else []:
        if entry.name.startswith("."):
            assert entry.name.endswith(".tmp"), entry.name
            continue
        key = entry.name.split(".")[0]
        data = entry.read_bytes()
        # A visible file is always a complete one: it decodes, whether or not it was recorded
        # (a kill between storing and recording leaves it unrecorded: it is redone).
        samples, _sr = sf.read(str(entry))
        assert len(samples) > 0
        if key in tracks:
            t = tracks[key]
            assert hashlib.sha256(data).hexdigest() == t.sha256 and len(data) == t.bytes
            stored[key] = t
    # The cache never records a track whose file is missing.
    for key, t in tracks.items():
        assert (tracks_dir / t.filename).exists(), f"recorded {key[:12]} has no file"
    return stored


def test_sigkill_at_any_moment_then_rerun_finishes_without_redoing_work(tmp_path):
    spec = ps.spec(
        {"m": {"variants": 12, "duration_s": 2.0, "prompt": "x [sleep=0.3]"}},
        generator={"name": "faulty", "concurrency": 2, "sr": 22050},
    )
    ps.write_spec(tmp_path, spec)
    # Kill at different moments: at a generator call, just after one returned (decoding,
    # encoding, storing), after a delay, after several tracks.
    kill_points = [("start", 1), ("done", 1), ("time", 0.9), ("start", 2), ("done", 2)]
    for event, n in kill_points:
        before = check_storage(tmp_path, spec)
        records_before = len(ps.records(tmp_path))
        base = count(tmp_path, event) if event != "time" else 0
        proc = start(tmp_path)
        began = time.monotonic()
        try:
            if event == "time":
                wait_for(
                    lambda p=proc, b=began, n=n: time.monotonic() - b >= n or p.poll() is not None
                )
            else:
                wait_for(
                    lambda p=proc, e=event, b=base, n=n: (
                        count(tmp_path, e) >= b + n or p.poll() is not None
                    )
                )
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        after = check_storage(tmp_path, spec)
        # Nothing stored before this run was generated again in it.
        new_starts = {
            r["key"] for r in ps.records(tmp_path)[records_before:] if r["event"] == "start"
        }
        assert not new_starts & set(before)
        assert set(before) <= set(after)
    stored_before_final = set(check_storage(tmp_path, spec))
    assert len(stored_before_final) < 12  # the kills did interrupt the job
    records_before = len(ps.records(tmp_path))
    result = ps.run_driver(tmp_path, "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["generated"] + summary["skipped"] == 12 and not summary["failed"]
    assert summary["generated"] == 12 - len(stored_before_final)
    final = check_storage(tmp_path, spec)
    assert len(final) == 12
    new_starts = {r["key"] for r in ps.records(tmp_path)[records_before:] if r["event"] == "start"}
    assert not new_starts & stored_before_final
    # Once the command has ended the tracks folder holds only tracks, the work folder nothing.
    names = sorted(p.name for p in (tmp_path / ".segue" / "tracks").iterdir())
    assert names == sorted(t.filename for t in final.values())
    assert list((tmp_path / ".segue" / "work").iterdir()) == []


def test_two_processes_generate_each_key_once(tmp_path):
    spec = ps.spec(
        {"a": {"variants": 6, "prompt": "a [sleep=0.4]"}, "b": {"variants": 6, "prompt": "b"}},
        generator={"name": "faulty", "concurrency": 2, "delay_s": 0.2},
    )
    ps.write_spec(tmp_path, spec)
    procs = [start(tmp_path, "--json"), start(tmp_path, "--json")]
    outs = [p.communicate(timeout=60) for p in procs]
    for p, (_out, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err
    summaries = [json.loads(out) for out, _ in outs]
    starts = collections.Counter(r["key"] for r in ps.records(tmp_path) if r["event"] == "start")
    assert len(starts) == 12 and set(starts.values()) == {1}
    assert sum(s["generated"] for s in summaries) == 12
    # Both did work (they share it out) and both know every track is stored now.
    assert {r["pid"] for r in ps.records(tmp_path)} == {p.pid for p in procs}
    assert len(check_storage(tmp_path, spec)) == 12


def test_sigint_stops_cleanly_with_a_summary_and_rerun_finishes(tmp_path):
    spec = ps.spec({"m": {"variants": 4, "prompt": "x [hang=1]"}}, generator={"name": "faulty"})
    ps.write_spec(tmp_path, spec)
    proc = start(tmp_path, "--json")
    wait_for(lambda: count(tmp_path, "hang") >= 4)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    summary = json.loads(out)
    assert summary["interrupted"] is True
    assert summary["failed"] == [] and len(summary["unfinished"]) == 4
    assert "interrupted: 0 generated, 0 already stored, 0 failed, 4 not finished" in err
    assert [p.name for p in (tmp_path / ".segue" / "tracks").iterdir()] == []
    assert list((tmp_path / ".segue" / "work").iterdir()) == []
    result = ps.run_driver(tmp_path, "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["generated"] == 4


def test_ctrl_c_counts_each_track_once_as_what_it_is(tmp_path):
    """Some tracks stored, others hanging when Ctrl-C comes: the summary and the progress
    lines say so, each track once, and the totals add up to what was planned."""
    spec = ps.spec(
        {"quick": {"variants": 3}, "slow": {"variants": 3, "prompt": "y [hang=9]"}},
        generator={"name": "faulty", "concurrency": 6},
    )
    ps.write_spec(tmp_path, spec)
    proc = start(tmp_path, "--json")
    wait_for(lambda: len(list((tmp_path / ".segue" / "tracks").glob("*.wav"))) >= 3)
    wait_for(lambda: count(tmp_path, "hang") >= 3)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    summary = json.loads(out)
    assert (summary["generated"], len(summary["unfinished"]), summary["failed"]) == (3, 3, [])
    states = sorted(t["state"] for t in summary["tracks"])
    assert states == ["interrupted"] * 3 + ["stored"] * 3
    assert "interrupted: 3 generated, 0 already stored, 0 failed, 3 not finished" in err
    # One final progress line per track, numbered 1 to 6 of 6.
    finals = [line for line in err.splitlines() if re.search(r" \[\d+/\d+\]$", line)]
    assert sorted(re.search(r"\[(\d+)/6\]$", line).group(1) for line in finals) == list("123456")
    assert sum(bool(re.search(r"#\d stored ", line)) for line in finals) == 3
    assert sum(bool(re.search(r"#\d interrupted ", line)) for line in finals) == 3


def test_exit_codes_budget_refusal_and_failures(tmp_path):
    spec = ps.spec({"m": {"variants": 3}}, generator={"name": "faulty", "cost_usd": 0.8})
    ps.write_spec(tmp_path, spec)
    refused = ps.run_driver(tmp_path, "--budget-usd", "2")
    assert refused.returncode == 2
    assert "$2.40" in refused.stderr and "budget of $2.00" in refused.stderr
    assert "Traceback" not in refused.stderr
    dry = ps.run_driver(tmp_path, "--dry-run", "--budget-usd", "2")
    assert dry.returncode == 2 and "would generate 3 of 3" in dry.stdout
    dry = ps.run_driver(tmp_path, "--dry-run", "--json")
    assert dry.returncode == 0 and json.loads(dry.stdout)["estimate_usd"] == pytest.approx(2.4)
    assert count(tmp_path, "start") == 0
    bad = ps.run_driver(tmp_path, "--concurrency", "0")
    assert bad.returncode == 2 and "concurrency" in bad.stderr
    ok = ps.run_driver(tmp_path, "--budget-usd", "2.4")
    assert ok.returncode == 0, ok.stderr
    assert "3 generated" in ok.stderr  # plain log lines when not a terminal
    tracks = subprocess.run(
        [sys.executable, str(ps.DRIVER), str(tmp_path / "spec.json"), "tracks", "--json"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    data = json.loads(tracks.stdout)
    assert data["count"] == 3 and data["ledger"]["total_usd"] == pytest.approx(2.4)
    assert {t["cost_usd"] for t in data["tracks"]} == {0.8}
    # Another run needs nothing; the ledger is over any smaller budget but nothing is missing.
    assert ps.run_driver(tmp_path, "--budget-usd", "1").returncode == 0
    spec_fail = ps.spec({"m": {"prompt": "x [permanent]"}})
    ps.write_spec(tmp_path, spec_fail)
    failed = ps.run_driver(tmp_path, "--json")
    assert failed.returncode == 1
    assert "refuses" in json.loads(failed.stdout)["failed"][0]["reason"]
