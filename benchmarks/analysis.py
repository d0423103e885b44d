"""Rhythm analysis and loop carving on real music, beside today's code and librosa.

    PYTHONPATH=tests python benchmarks/analysis.py [--no-others] [--no-songs] [--seconds 30]

(``PYTHONPATH=tests``: it reuses the test suite's helper modules, as pytest does.)

Needs the Debian packages planetblupi-music-ogg, planetblupi-music-midi, hyperrogue-music
and drascula-music (see tests/corpus.py). Prints, for every ground-truth excerpt (starts
and middles of the Planet Blupi pieces, beats and downbeats from their MIDI):

- ``segue.core.analysis`` (what pregeneration uses): tempo, beat F-measure at ±70 ms,
  downbeat F-measure, meter, confidences;
- ``today``: beat_grid's onset-flux analysis before this work (read from git history at
  LEGACY_COMMIT): tempo and beat F-measure (its grid from ``first_beat_s`` at ``bpm``; it
  had no downbeats);
- librosa's ``beat_track``, essentia's ``RhythmExtractor2013`` (multifeature) and aubio's
  ``tempo``, each when installed (none is a dependency of segue).

The totals against the targets: tempo within 1 % (octave-right) on >= 95 % of excerpts,
mean beat F-measure >= 0.9, downbeat right (downbeat F-measure >= 0.9) on >= 85 %.

Then every whole song of hyperrogue-music and drascula-music (intro and ending kept) is
analysed and carved (``segue.core.carving``) and its seam measured as ``loop_points``
measures it (sample jump, spectral flux, level steps against the loop's own bar lines),
with the loop's bars checked for fades and silence. CPU times are this process's
(``time.process_time``: one core), per minute of audio.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
import types
from pathlib import Path

import corpus
import numpy as np
from loop_checks import loop_report

from segue.core import analysis, carving

TEMPO_TOLERANCE = 0.01


def cpu(fn):
    start = time.process_time()
    result = fn()
    return result, time.process_time() - start


_from_history: dict[str, types.ModuleType | None] = {}


def _module_at(commit: str, path: str, name: str) -> types.ModuleType | None:
    """Module ``path`` as it was at ``commit`` (read with git), or None outside a checkout."""
    if name not in _from_history:
        root = Path(__file__).resolve().parent.parent
        try:
            source = subprocess.run(
                ["git", "-C", str(root), "show", f"{commit}:{path}"],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
        except (OSError, subprocess.CalledProcessError):
            _from_history[name] = None
            return None
        module = types.ModuleType(name)
        sys.modules[name] = module  # dataclasses look their module up
        exec(compile(source, f"{commit}:{path}", "exec"), module.__dict__)
        _from_history[name] = module
    return _from_history[name]


# Today's code: beat_grid's analysis as it was before this work, read from git history so
# the comparison stays possible after beat_grid moved to segue.core.analysis.
LEGACY_COMMIT = "1b0c42b"
# The analysis as merged before the latest accuracy work (before the beat's subdivision was
# measured per register, by its repetition rate: 6/8 read exactly on 5 of 12 pieces), read
# from git history the same way. (Before that, 20e88cb: the chroma of every bin, not only
# the spectra's peaks; e008d03: the tempo preference at 120 BPM, no compound meters.)
BEFORE_COMMIT = "3b5a86a"


def _legacy_module() -> types.ModuleType | None:
    return _module_at(LEGACY_COMMIT, "plugins/beat_grid.py", "legacy_beat_grid")


def _before_module() -> types.ModuleType | None:
    return _module_at(BEFORE_COMMIT, "core/analysis.py", "analysis_before")


def legacy(x: np.ndarray, sr: int) -> tuple[float | None, np.ndarray]:
    """Today's beat_grid before this work: its bpm and the grid from its first beat."""
    module = _legacy_module()
    grid = module.analyse(x, sr) if module is not None else None  # type: ignore[attr-defined]
    if grid is None:
        return None, np.array([])
    return grid.bpm, np.arange(grid.first_beat_s, x.shape[0] / sr, 60.0 / grid.bpm)


def with_librosa(x: np.ndarray, sr: int) -> tuple[float | None, np.ndarray]:
    import librosa

    tempo, beats = librosa.beat.beat_track(y=x.mean(axis=1), sr=sr, units="time")
    return float(np.atleast_1d(tempo)[0]), np.asarray(beats)


def with_essentia(x: np.ndarray, sr: int) -> tuple[float | None, np.ndarray]:
    import essentia.standard as es

    mono = x.mean(axis=1).astype(np.float32)
    if sr != 44100:
        mono = es.Resample(inputSampleRate=sr, outputSampleRate=44100)(mono)
    bpm, beats, *_ = es.RhythmExtractor2013(method="multifeature")(mono)
    return float(bpm), np.asarray(beats)


def with_aubio(x: np.ndarray, sr: int) -> tuple[float | None, np.ndarray]:
    import aubio

    hop = 512
    tracker = aubio.tempo("default", 1024, hop, sr)
    mono = np.ascontiguousarray(x.mean(axis=1), dtype=np.float32)
    beats = []
    for i in range(0, mono.size - hop, hop):
        if tracker(mono[i : i + hop])[0]:
            beats.append(tracker.get_last_s())
    return float(tracker.get_bpm()) or None, np.asarray(beats)


OPTIONAL = {"librosa": with_librosa, "essentia": with_essentia, "aubio": with_aubio}


def tempo_ok(bpm: float | None, truth: float) -> bool:
    return bpm is not None and abs(bpm / truth - 1) <= TEMPO_TOLERANCE


def excerpts(args: argparse.Namespace) -> None:
    items = corpus.excerpts(args.seconds)
    print(f"{len(items)} ground-truth excerpts of {args.seconds:g} s (starts and middles)")
    methods = ["segue", "before", "today"]
    if args.others:
        for name in OPTIONAL:
            try:
                __import__(name)
            except ImportError:
                print(f"({name} not installed: its column is left out)")
            else:
                methods.append(name)
    totals = {m: {"tempo": 0, "f": [], "down": 0, "cpu": 0.0} for m in methods}
    header = f"{'excerpt':18s} {'truth':>7s} | " + " | ".join(
        f"{m:>7s} {'F':>4s}" + ("  down meter conf" if m in ("segue", "before") else "")
        for m in methods
    )
    print(header)
    audio_s = 0.0
    for e in items:
        x, sr = e.load()
        audio_s += x.shape[0] / sr
        cells = []
        for m in methods:
            if m in ("segue", "before"):
                module = analysis if m == "segue" else _before_module()
                r, t = cpu(lambda x=x, sr=sr, a=module: a.analyse(x, sr))  # type: ignore[union-attr]
                bpm = r.bpm if r else None
                beats = r.beats if r else np.array([])
                down = corpus.f_measure(r.downbeats, e.downbeats) if r else 0.0
                totals[m]["down"] += down >= 0.9
            else:
                fn = legacy if m == "today" else OPTIONAL[m]
                (bpm, beats), t = cpu(lambda fn=fn, x=x, sr=sr: fn(x, sr))
                r = None
            f = corpus.f_measure(beats, e.beats)
            totals[m]["tempo"] += tempo_ok(bpm, e.bpm)
            totals[m]["f"].append(f)
            totals[m]["cpu"] += t
            cell = f"{bpm or 0:7.2f} {f:4.2f}"
            if m in ("segue", "before"):
                conf = f"{r.tempo_confidence:.2f}/{r.beat_confidence:.2f}" if r else "-"
                cell += f"  {down:4.2f} {r.meter if r else '-':>5s} {conf}"
            cells.append(cell)
        print(f"{e.name:18s} {e.bpm:7.2f} | " + " | ".join(cells))
    n = len(items)
    for m in methods:
        t = totals[m]
        line = (
            f"{m:8s} tempo within 1 %: {t['tempo']}/{n} ({t['tempo'] / n:.0%}, target 95 %)  "
            f"beat F mean {np.mean(t['f']):.3f} (target 0.9), F >= 0.9 on "
            f"{sum(f >= 0.9 for f in t['f'])}/{n}"
        )
        if m in ("segue", "before"):
            line += f"  downbeat right {t['down']}/{n} ({t['down'] / n:.0%}, target 85 %)"
        line += f"  CPU {t['cpu'] / audio_s * 60:.2f} s per minute of audio"
        print(line)


def songs() -> None:
    paths = corpus.songs()
    print(f"\n{len(paths)} whole songs carved into loops")
    print(
        f"{'song':22s} {'s':>6s} {'bpm':>6s} meter {'loop s':>15s} bars {'xf':>4s} "
        f"{'outro':>5s} seam  jump/limit   flux/limit  level/limit   ok  note"
    )
    ok = carved = 0
    cost = audio_s = 0.0
    for path in paths:
        x, sr = corpus.read(path)
        audio_s += x.shape[0] / sr

        def run(x=x, sr=sr):
            f = analysis.features(x, sr)
            r = analysis.analyse(x, sr, f)
            return r, carving.carve_checked(x, sr, r, f)

        (r, c), t = cpu(run)
        cost += t
        rep = loop_report(c, sr, r)
        ok += rep.ok
        carved += c.fallback is None
        s = rep.seam
        print(
            f"{path.name:22s} {x.shape[0] / sr:6.1f} {r.bpm if r else 0:6.1f} "
            f"{r.meter if r else '-':>5s} {c.loop_start / sr:7.2f}-{c.loop_end / sr:7.2f} "
            f"{c.bars:4d} {c.crossfade_s:4.2f} {(c.outro_end - c.loop_end) / sr:5.1f} "
            f"{'ok' if s['ok'] else 'BAD':4s} {s['jump']:.3f}/{s['jump_limit']:.3f} "
            f"{s['flux']:5.2f}/{s['flux_limit']:5.2f} {s['level_step_db']:5.1f}/"
            f"{s['level_step_limit_db']:5.1f}  {'yes' if rep.ok else 'NO ':3s} "
            f"{'; '.join(rep.problems) or (c.fallback or '')}"
        )
    n = len(paths)
    print(
        f"loops meeting every check: {ok}/{n} ({carved} carved on the bar grid, "
        f"{n - carved} whole-song fallbacks); analysis + carving CPU "
        f"{cost / audio_s * 60:.2f} s per minute of audio"
    )


def meters(count: int) -> None:
    """Pieces written in 3/4, 4/4 and 6/8 (tests/meter_corpus.py), rendered by FluidSynth."""
    import meter_corpus

    missing = meter_corpus.renderer_missing()
    if missing:
        print(f"\nmeter pieces skipped: {missing}")
        return
    print(
        f"\n{count} pieces per meter rendered through FluidR3_GM "
        "(meter read, tempo right, downbeats right: F-measure >= 0.9)"
    )
    before = _before_module()
    for meter in meter_corpus.METERS:
        found: dict[str, list[str]] = {"segue": [], "before": []}
        right = {"segue": 0, "before": 0, "compound": 0, "tempo": 0}
        down = {"segue": 0, "before": 0}
        for seed in range(count):
            p = meter_corpus.rendered(meter, seed)
            for m, module in (("segue", analysis), ("before", before)):
                if module is None:
                    continue
                r = module.analyse(p.samples, meter_corpus.SR)  # type: ignore[attr-defined]
                got = r.meter if r else "-"
                found[m].append(got)
                right[m] += got == meter
                if r is not None:
                    # Downbeats up to the last bar's end: the grid goes on through the last
                    # chord's release, where the piece has no bars to compare with.
                    kept = r.downbeats[r.downbeats < p.beats[-1] + 30.0 / p.bpm]
                    down[m] += corpus.f_measure(kept, p.downbeats) >= 0.9
                if m == "segue" and r is not None:
                    right["compound"] += r.beat_unit == 8
                    right["tempo"] += abs(r.bpm / p.bpm - 1) <= TEMPO_TOLERANCE
        print(
            f"{meter}: segue {right['segue']}/{count} exactly, compound (6/8 or 12/8) "
            f"{right['compound']}/{count}, tempo within 1 % {right['tempo']}/{count}, "
            f"downbeats right {down['segue']}/{count} [{' '.join(found['segue'])}]; "
            f"before {right['before']}/{count}, downbeats {down['before']}/{count} "
            f"[{' '.join(found['before'])}]"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=corpus.EXCERPT_S)
    parser.add_argument(
        "--no-others", dest="others", action="store_false", help="skip librosa, essentia, aubio"
    )
    parser.add_argument("--no-songs", dest="songs", action="store_false")
    parser.add_argument("--meter-pieces", type=int, default=12, help="per meter; 0 skips")
    args = parser.parse_args()
    missing = corpus.corpus_missing()
    if missing:
        sys.exit(f"analysis benchmark: {missing}")
    excerpts(args)
    if args.meter_pieces:
        meters(args.meter_pieces)
    if args.songs:
        songs()


if __name__ == "__main__":
    main()
