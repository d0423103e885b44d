"""segue.plugins.loudness: BS.1770 loudness and -1 dBTP, measured on the decoded files."""

from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np
import pytest
from audio_signals import SR, drum_loop, noise, tone

from segue.core import audio, seams
from segue.core.audio import TrackAudio
from segue.core.track import Track
from segue.plugins import loudness


def scipy_true_peak(x: np.ndarray) -> float:
    """An independent true-peak meter: scipy's polyphase 4x resampler."""
    signal = pytest.importorskip("scipy.signal")
    up = signal.resample_poly(np.asarray(x, np.float64), 4, 1, axis=0)
    return 20 * math.log10(np.max(np.abs(up)))


def loud_peaky(seconds: float = 4.0, seed: int = 0) -> np.ndarray:
    """Drums peaking at 0 dBFS with bright noise bursts: a limiter and a codec both work."""
    x = drum_loop(118, seconds, seed=seed, peak=1.0).astype(np.float64)
    burst = noise(seconds, amp=1.0, seed=seed + 1)
    gate = (np.arange(x.shape[0]) % int(0.9 * SR) < 900)[:, None]
    x = x + 0.8 * burst * gate
    return (x / np.abs(x).max()).astype(np.float32)


def _gain_db(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The gain the limiter applied per frame (dB), read off its louder channel."""
    x = np.asarray(x, np.float64)
    y = np.asarray(y, np.float64)
    ch = np.argmax(np.abs(x), axis=1)
    xs = x[np.arange(x.shape[0]), ch]
    ys = y[np.arange(y.shape[0]), ch]
    known = np.abs(xs) > 1e-4
    gain = np.zeros(x.shape[0])
    gain[known] = 20 * np.log10(ys[known] / xs[known])
    return gain, known


def _track(fmt: str = "ogg", **changes) -> Track:
    base = Track(id="t1", mood="combat", variant=0, format=fmt, duration_s=6.0, bpm=118.0)
    return base.replace(**changes)


def _hook(track: Track, x: np.ndarray) -> TrackAudio:
    """The hook on ``x``: the normalised samples come back as a new array, ``x`` untouched."""
    given = np.array(x, np.float32, copy=True)
    out = loudness.segue_process_track(TrackAudio(given, SR, track))
    assert np.array_equal(given, np.asarray(x, np.float32))
    return out


def _encode_decode(tmp_path: Path, x: np.ndarray, fmt: str, loop: bool = False):
    path = tmp_path / f"out.{fmt}"
    audio.write(path, x, SR, fmt, loop=loop)
    return audio.read(path)


@pytest.mark.parametrize("target", [-16.0, -23.0])
@pytest.mark.parametrize("fmt", ["ogg", "opus", "mp3", "flac", "wav"])
def test_decoded_file_is_on_target_and_under_minus_1_dbtp(tmp_path, fmt, target):
    track = _track(fmt, extra={"loudness_target": target})
    done = _hook(track, loud_peaky(seed=3))
    out = done.track
    assert "loudness_warning" not in out.extra
    processed, sr = done.samples, done.rate
    assert sr == SR and processed.dtype == np.float32
    decoded, dsr = _encode_decode(tmp_path, processed, fmt)
    measured = audio.loudness(decoded, dsr)
    assert measured == pytest.approx(target, abs=0.5)
    assert out.loudness_lufs == pytest.approx(measured, abs=0.05)
    assert audio.true_peak_db(decoded, dsr) <= -1.0
    assert scipy_true_peak(decoded) <= -1.0 + 0.03


def test_default_target_is_minus_16(tmp_path):
    done = _hook(_track("wav"), 0.05 * tone(440, 3.0))
    assert done.track.loudness_lufs == pytest.approx(-16.0, abs=0.1)
    assert audio.loudness(done.samples, SR) == pytest.approx(-16.0, abs=0.1)


def test_limiter_leaves_no_click():
    # A bass tone 20 dB too loud for the target, with a drum hit: heavy limiting.
    t = np.arange(SR * 3) / SR
    x = 0.2 * np.sin(2 * np.pi * 80 * t)
    x[SR : SR + 4000] += np.hanning(8000)[4000:] * 0.8 * np.sin(2 * np.pi * 200 * t[:4000])
    x = np.stack([x, x], 1).astype(np.float32)
    result = loudness.normalise(x, SR, -8.0, -1.0)
    y = result.samples[:, 0].astype(np.float64)
    assert result.limited_db < -6  # it did limit hard
    assert result.true_peak_db <= -1.0 + 1e-6
    # The largest step a sine at the ceiling can take between samples; a gain jump (a
    # click) would add to it. Allow for the 200 Hz burst's own steps.
    ceiling = 10 ** (-1 / 20)
    natural = ceiling * 2 * math.sin(math.pi * 200 / SR)
    assert np.max(np.abs(np.diff(y))) <= 1.05 * natural
    # And the gain itself ramps: 20 dB of limiting is reached over the 5 ms look-ahead, at
    # most a fifth of a dB from one sample to the next.
    gain_db, known = _gain_db(x, result.samples)
    steady = known[:-1] & known[1:]
    assert np.max(np.abs(np.diff(gain_db)[steady])) < 0.2


def test_gain_curve_is_smooth_and_never_above_the_requirement():
    req = np.zeros(200_000)  # long enough that the limited runs are under half of it
    req[5000] = -12.0
    req[5001:5100] = -6.0
    req[15000] = -3.0
    frames = np.flatnonzero(req)
    # Computed around the limited frames only: (frames, values), 0 dB elsewhere.
    at, values = loudness._gain_curve(req.size, frames, req[frames], SR, None)
    env = np.zeros(req.size)
    env[at] = values
    assert np.all(env <= req + 1e-9)
    assert np.max(np.abs(np.diff(env))) < 0.2  # a 5 ms ramp: 12 dB over 220 samples
    assert env[:4700].max() == 0.0 and env[-1000:].max() == 0.0  # it lets go again


def _box_behind(a: np.ndarray, width: int) -> np.ndarray:
    padded = np.concatenate([np.full(width, a[0]), a])
    c = np.cumsum(padded, dtype=np.float64)
    return (c[width:] - c[:-width]) / width


def _envelope_whole(req: np.ndarray, lookahead: int, release: float) -> np.ndarray:
    """The limiter's envelope in one pass over the whole requirement (how it was computed
    before it went a block at a time, with arrays as long as the track)."""
    m = loudness._sliding_min_ahead(req, lookahead + 1)
    ramp = release * np.arange(m.size, dtype=np.float64)
    released = np.minimum(np.minimum.accumulate(m - ramp) + ramp, 0.0)
    half = max(1, lookahead // 2)
    return _box_behind(_box_behind(released, half + 1), lookahead - half + 1)


@pytest.mark.parametrize("block", [257, 4096, 1 << 18])
def test_the_envelope_made_a_block_at_a_time_is_the_one_pass_envelope_bit_for_bit(
    monkeypatch: pytest.MonkeyPatch, block: int
) -> None:
    rng = np.random.default_rng(7)
    size, lookahead, release = 60_000, 220, 120.0 / SR
    req = np.where(rng.random(size) < 0.3, -rng.exponential(4.0, size), 0.0)
    req[20_000:30_000] = 0.0  # a quiet stretch: the limited runs are gathered apart
    monkeypatch.setattr(loudness, "ENVELOPE_BLOCK", block)
    out = np.full(size, np.nan)
    loudness._envelope_into(
        lambda lo, hi: req[lo:hi].copy(), size, lookahead, release, out.__setitem__
    )
    assert out.tobytes() == _envelope_whole(req, lookahead, release).tobytes()
    # A few frames limited: the runs around them, gathered end to end, in one pass.
    sparse = np.zeros(size)
    sparse[[3000, 3100, 50_000]] = [-6.0, -3.0, -5.0]
    frames = np.flatnonzero(sparse)
    at, values = loudness._envelope_at(size, frames, sparse[frames], lookahead, release)
    assert at.size < size // 2 and at[0] < 3000 < 50_000 < at[-1]
    assert values.tobytes() == _envelope_whole(sparse[at], lookahead, release).tobytes()
    # Most frames limited: every frame, in one pass.
    frames = np.flatnonzero(req)
    dense = loudness._envelope_at(size, frames, req[frames], lookahead, release)
    assert dense.tobytes() == _envelope_whole(req, lookahead, release).tobytes()


def _seamed_by_sorting(
    n: int, frames: np.ndarray, req: np.ndarray, loop: tuple[int, int]
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """A loop's gain curve as it was made before it was read in place: the wrapped
    edges and the seams' shared requirement concatenated, the seams' frames replaced
    (``np.isin``) and everything sorted (several arrays as long as the track)."""
    lookahead, release = max(2, round(loudness.LOOKAHEAD_S * SR)), loudness.RELEASE_DB_PER_S / SR
    start, end = loop
    depth = float(-req.min(initial=0.0))
    window = 2 * lookahead + math.ceil(depth / release) + 2 + 64
    read = loudness._read
    idx, val = frames + window, np.asarray(req, dtype=np.float64)
    pos = np.arange(-window, 0)
    src = pos - start + end
    ok = (src >= 0) & (src < n)
    before = (pos[ok] + window, read(idx, val, src[ok] + window))
    pos = np.arange(n, n + window)
    src = pos - end + start
    ok = (src >= 0) & (src < n)
    after = (pos[ok] + window, read(idx, val, src[ok] + window))
    idx = np.concatenate([before[0], idx, after[0]])
    val = np.concatenate([before[1], val, after[1]])
    k = np.arange(-window, window)
    ia, ib = start + k + window, end + k + window
    shared = np.minimum(read(idx, val, ia), read(idx, val, ib))
    kept = ~np.isin(idx, np.concatenate([ia, ib]))
    idx = np.concatenate([idx[kept], ia, ib])
    val = np.concatenate([val[kept], shared, shared])
    order = np.argsort(idx, kind="stable")
    env = loudness._envelope_at(n + 2 * window, idx[order], val[order], lookahead, release)
    if isinstance(env, np.ndarray):
        return env[window : window + n]
    inside = (env[0] >= window) & (env[0] < window + n)
    return env[0][inside] - window, env[1][inside]


@pytest.mark.parametrize("dense", [False, True])
@pytest.mark.parametrize(
    "where", ["whole", "inside", "starts_near_0", "ends_near_n", "seams_limited_apart"]
)
def test_a_loops_gain_curve_read_in_place_is_the_sorted_one_bit_for_bit(
    monkeypatch: pytest.MonkeyPatch, where: str, dense: bool
) -> None:
    rng = np.random.default_rng(5)
    n = 300_000
    loop = {
        "whole": (0, n),
        "inside": (40_000, 250_000),
        "starts_near_0": (1_000, 280_000),
        "ends_near_n": (20_000, n - 1_500),
        "seams_limited_apart": (0, n),
    }[where]
    req = np.zeros(n)
    if dense:  # most frames limited: every frame's gain
        req[:] = np.where(rng.random(n) < 0.5, -rng.exponential(3.0, n), 0.0)
    else:  # a few limited stretches, around both seams and inside
        for at in (100, 2_000, 39_000, 41_000, 150_000, 249_000, 251_000, n - 1_200, n - 50):
            req[at : at + 300] = -rng.exponential(3.0, min(300, n - at))
        if where == "seams_limited_apart":
            req[:] = 0.0
            req[[10, 5_000]] = [-4.0, -2.0]
            req[n - 3] = -7.0
    req = np.minimum(req, 0.0)
    frames = np.flatnonzero(rng.random(n) < 0.9)  # the frames the limiter looked at
    frames = np.union1d(frames, np.flatnonzero(req))
    monkeypatch.setattr(loudness, "ENVELOPE_BLOCK", 4096)  # blocks across the seams
    got = loudness._gain_curve(n, frames, req[frames], SR, loop)
    want = _seamed_by_sorting(n, frames, req[frames], loop)
    assert isinstance(got, np.ndarray) == isinstance(want, np.ndarray) == dense
    if dense:
        assert got.tobytes() == want.tobytes()
    else:
        assert got[0].tobytes() == want[0].tobytes() and got[1].tobytes() == want[1].tobytes()


def test_looping_track_keeps_a_seamless_seam(tmp_path):
    # A loop whose first beat is the loudest moment: the gain ramps down before the loop's
    # end for the peak after the jump, and is equal on both sides of the seam.
    x = drum_loop(120, 4.0, seed=11, peak=1.0)
    before = seams.measure_seam(x, SR, 0, x.shape[0], bar_s=2.0)
    assert before["ok"]
    result = loudness.normalise(x, SR, -10.0, -1.0, loop=(0, x.shape[0]))
    y = result.samples
    assert result.limited_db < -3
    gain_db, known = _gain_db(x, y)
    assert known[0] and known[-1]
    steps = np.abs(np.diff(gain_db))[known[:-1] & known[1:]]
    # From the loop's last sample to its first, the gain moves like anywhere else.
    assert abs(gain_db[0] - gain_db[-1]) <= steps.max() + 1e-3
    after = seams.measure_seam(y, SR, 0, y.shape[0], bar_s=2.0)
    assert after["ok"], after
    # Circular true peak (across the seam) is under the ceiling too.
    assert audio.oversampled_peaks(y, circular=True).max() <= 10 ** (-1 / 20) + 1e-6


def test_silent_input_is_left_alone_with_a_warning(tmp_path, caplog):
    silence = TrackAudio(np.zeros((SR, 2), np.float32), SR, _track())
    with caplog.at_level(logging.WARNING, logger="segue.plugins.loudness"):
        done = loudness.segue_process_track(silence)
    out = done.track
    assert out.extra["loudness_warning"] == "silent"
    assert out.loudness_lufs is None
    assert done.samples is silence.samples  # left as they are
    assert any("silent" in r.getMessage() for r in caplog.records)


def test_an_unreachable_target_is_reported_not_hidden(tmp_path):
    # Sparse clicks cannot reach -6 LUFS under -1 dBTP: best effort, and a warning.
    x = np.zeros((SR * 4, 2), np.float32)
    x[:: SR // 2] = 0.5
    done = _hook(_track("wav", extra={"loudness_target": -6.0}), x)
    assert "loudness_warning" in done.track.extra
    assert audio.true_peak_db(done.samples, SR) <= -1.0
