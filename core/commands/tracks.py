"""``segue tracks``: the stored tracks and the cost ledger."""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from typing import Any

from segue.core.commands import add_score_argument, plain_lines, to_terminal


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("tracks", help="list stored tracks")
    add_score_argument(p)
    p.add_argument(
        "--generator",
        action="append",
        metavar="N",
        help="only tracks made by generator N (repeat for several)",
    )
    p.add_argument(
        "--mood", action="append", metavar="M", help="only tracks of mood M (repeat for several)"
    )
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from segue.core.plugins import get_plugins
    from segue.core.score import load_score

    plugins = getattr(args, "plugins", None) or get_plugins(getattr(args, "strict_plugins", None))
    score = load_score(args.score)
    return execute(args, score, plugins)


def collect(
    score: Any,
    plugins: Any,
    generators: Sequence[str] | None = None,
    moods: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Stored tracks (recorded and present in the primary sink) and the ledger.

    ``generators`` and ``moods`` keep only the tracks made by one of them / of one of
    them (None: all); the ledger is always the whole ledger.
    """
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
        _check_filter("--mood", moods, [*score.moods, *(t.mood for t in tracks)])
        _check_filter(
            "--generator", generators, [*plugins.generators.names(), *(t.generator for t in tracks)]
        )
        tracks = [
            t
            for t in tracks
            if (not generators or t.generator in generators) and (not moods or t.mood in moods)
        ]
        ledger = cache.ledger()
    finally:
        cache.close()
    tracks.sort(key=lambda t: (t.mood, t.variant, t.id))
    return {
        "tracks": [t.to_dict() for t in tracks],
        "count": len(tracks),
        "bytes": sum(t.bytes for t in tracks),
        "ledger": ledger_document(ledger),
    }


def _check_filter(flag: str, wanted: Sequence[str] | None, known: Sequence[str]) -> None:
    """A filter naming nothing the score or the store knows is a typo, not an empty list."""
    from segue.core.conditions import suggest
    from segue.core.errors import ConfigError

    for name in wanted or ():
        if name not in known:
            names = sorted(set(known))
            raise ConfigError(
                f"{flag} {name}: no such {flag[2:]} in the score or the stored tracks"
                f"{suggest(name, names)} (known: {', '.join(names) or 'none'})"
            )


def ledger_document(ledger: dict[str, float]) -> dict[str, Any]:
    """Production money (what budgets count) and, apart, money spent against emulators or
    other non-production endpoints, with every entry's generator and endpoint."""
    from segue.core.ledger import entries

    every = entries(ledger)
    per_key: dict[str, float] = {}
    apart: dict[str, float] = {}
    for e in every:
        if e.production:
            per_key[e.key] = per_key.get(e.key, 0.0) + e.usd
        else:
            where = f"{e.generator} at {e.endpoint}" if e.endpoint else str(e.generator)
            apart[where] = apart.get(where, 0.0) + e.usd
    return {
        "total_usd": round(sum(per_key.values()), 6),
        "per_key": {k: round(v, 6) for k, v in sorted(per_key.items())},
        "non_production_usd": round(sum(apart.values()), 6),
        "non_production": {k: round(v, 6) for k, v in sorted(apart.items())},
        "entries": [e.to_dict() for e in every],
    }


HEADERS = ("mood", "var", "generator", "format", "length", "bpm", "size", "cost", "id")


def execute(args: argparse.Namespace, score: Any, plugins: Any) -> int:
    data = collect(score, plugins, getattr(args, "generator", None), getattr(args, "mood", None))
    if args.json:
        print(json.dumps(data, indent=2))
        return 0
    rows = [
        [
            t["mood"],
            str(t["variant"]),
            t["generator"],
            t["format"],
            f"{t['duration_s']:.1f}s",
            "" if t["bpm"] is None else f"{t['bpm']:g}",
            _size(t["bytes"]),
            f"${t['cost_usd']:.2f}",
            t["id"][:12],
        ]
        for t in data["tracks"]
    ]
    title = f"{data['count']} stored track(s)"
    ledger = data["ledger"]
    footer = f"ledger: ${ledger['total_usd']:.2f} spent over {len(ledger['per_key'])} key(s)"
    if ledger["non_production"]:
        footer += (
            f"; ${ledger['non_production_usd']:.2f} against non-production endpoints, "
            "not counted (" + ", ".join(ledger["non_production"]) + ")"
        )
    footer += f"; {_size(data['bytes'])} stored"
    if not to_terminal():  # a pipe or a file: whole values, one line per track
        print(title)
        print("\n".join(plain_lines(HEADERS, rows)))
        print("\n".join([*notes(data["tracks"]), footer]))
        return 0
    from rich import box
    from rich.console import Console
    from rich.table import Table

    # No vertical rules: nine columns fit an 80-column terminal.
    table = Table(title=title, box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
    for column in HEADERS:
        table.add_column(
            column,
            justify="left" if column in ("mood", "generator", "id") else "right",
            no_wrap=column != "mood",
            overflow="fold",
            max_width=14 if column == "mood" else None,
            min_width={"id": 12, "mood": 8}.get(column),
        )
    for row in rows:
        table.add_row(*row)
    console = Console()
    console.print(table)
    for line in [*notes(data["tracks"]), footer]:
        console.print(line, markup=False, highlight=False)
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
