"""``segue tracks``: the stored tracks and the cost ledger."""

from __future__ import annotations

import argparse
import json
from typing import Any

from segue.core.score import DEFAULT_SCORE


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("tracks", help="list stored tracks")
    p.add_argument("score", nargs="?", default=DEFAULT_SCORE, metavar="SCORE")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from segue.core.plugins import get_plugins
    from segue.core.score import load_score

    plugins = getattr(args, "plugins", None) or get_plugins(getattr(args, "strict_plugins", None))
    score = load_score(args.score)
    return execute(args, score, plugins)


def collect(score: Any, plugins: Any) -> dict[str, Any]:
    """Stored tracks (recorded and present in the primary sink) and the ledger."""
    from segue.core.pregen.pipeline import build_cache
    from segue.core.pregen.sinks import build_sinks, track_present

    cache = build_cache(score, plugins)
    try:
        primary = build_sinks(score, plugins)[0]
        if getattr(primary, "refresh", None) is not None:
            # A remote sink knows only what it has looked up: one listing answers for all.
            listed = set(primary.list())
            tracks = [t for t in cache.tracks() if t.filename in listed]
        else:
            tracks = [t for t in cache.tracks() if track_present(primary, t)]
        ledger = cache.ledger()
    finally:
        cache.close()
    tracks.sort(key=lambda t: (t.mood, t.variant, t.id))
    return {
        "tracks": [t.to_dict() for t in tracks],
        "count": len(tracks),
        "bytes": sum(t.bytes for t in tracks),
        "ledger": {
            "total_usd": round(sum(ledger.values()), 6),
            "per_key": {k: round(v, 6) for k, v in sorted(ledger.items())},
        },
    }


def execute(args: argparse.Namespace, score: Any, plugins: Any) -> int:
    data = collect(score, plugins)
    if args.json:
        print(json.dumps(data, indent=2))
        return 0
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{data['count']} stored track(s)")
    # Short headers, so that the table fits an 80-column terminal (or a pipe).
    for column in ("mood", "var", "format", "length", "bpm", "size", "cost", "id"):
        table.add_column(
            column,
            justify="left" if column in ("mood", "id") else "right",
            no_wrap=column != "mood",
            overflow="fold",
            max_width=14 if column == "mood" else None,
            min_width=12 if column == "id" else None,
        )
    for t in data["tracks"]:
        table.add_row(
            t["mood"],
            str(t["variant"]),
            t["format"],
            f"{t['duration_s']:.1f}s",
            "" if t["bpm"] is None else f"{t['bpm']:g}",
            _size(t["bytes"]),
            f"${t['cost_usd']:.2f}",
            t["id"][:12],
        )
    console = Console()
    console.print(table)
    for line in notes(data["tracks"]):
        console.print(line, markup=False, highlight=False)
    console.print(
        f"ledger: ${data['ledger']['total_usd']:.2f} spent over "
        f"{len(data['ledger']['per_key'])} key(s); {_size(data['bytes'])} stored"
    )
    return 0


def notes(tracks: list[dict[str, Any]]) -> list[str]:
    """One line per track whose loop is not what it should be, so nothing is silent."""
    out = []
    for t in tracks:
        extra = t.get("extra") or {}
        name = f"{t['mood']} #{t['variant']} ({t['id'][:12]})"
        loop = extra.get("loop") if isinstance(extra.get("loop"), dict) else {}
        if loop.get("fallback"):
            out.append(f"{name}: whole-song loop: {loop['fallback']}")
        if t.get("loop") and extra.get("seam_ok") is False:
            out.append(f"{name}: the loop seam stands out (see extra.seam)")
        if extra.get("tempo_warning"):
            out.append(f"{name}: {extra['tempo_warning']}")
    return out


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"
