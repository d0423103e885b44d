"""docs/ is the contract: no file in the repository refers to a document that is not in it.

Every text file is scanned for the design document the project started from (``DESIGN``,
``DESIGN.md``: not in the repository, so never cited), markdown links (``[text](path)``,
``#anchor`` included) and names of markdown files (``docs/score.md``, ``audio.md``); each
must lead to a file (and heading) in the repository.
"""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# Not the repository's own files: tool caches, build output, state of local runs.
SKIP_DIRS = {
    ".git",
    "__pycache__",
    "build",
    "dist",
    ".segue",
    ".pytest_cache",
    ".ruff_cache",
    ".hypothesis",
    ".benchmarks",
    "test-artifacts",
    "node_modules",
    ".venv",
}
MAX_BYTES = 2_000_000

DESIGN = re.compile(r"\bDESIGN\b")
LINK = re.compile(r"!?\[[^\]\n]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
MD_NAME = re.compile(r"(?<![\w*{}$<>./:-])((?:\.{1,2}/|[\w-]+/)*[\w-]+\.md)\b")
HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.M)


def text_files(root: Path) -> list[Path]:
    """Every file under ``root`` that reads as UTF-8 text without NUL bytes."""
    out = []
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).parts
        if any(part in SKIP_DIRS or part.endswith(".egg-info") for part in rel):
            continue
        if not path.is_file() or path.stat().st_size > MAX_BYTES:
            continue
        data = path.read_bytes()
        if b"\0" in data:
            continue
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            continue
        out.append(path)
    return out


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[^\w\s-]", "", heading.strip().lower())
    return re.sub(r"\s", "-", text)


def anchors(path: Path) -> set[str]:
    return {slug(h) for h in HEADING.findall(path.read_text(encoding="utf-8"))}


def broken_references(path: Path, root: Path) -> list[str]:
    """``FILE:LINE: reference`` for each reference in ``path`` to no document under ``root``."""
    text = path.read_text(encoding="utf-8")
    rel = path.relative_to(root)
    problems = []

    def report(offset: int, what: str) -> None:
        problems.append(f"{rel}:{text.count(chr(10), 0, offset) + 1}: {what}")

    for m in DESIGN.finditer(text):
        report(m.start(), "cites DESIGN, which is not in the repository")
    if path.suffix == ".md":
        for m in LINK.finditer(text):
            target = m.group(1)
            if re.match(r"[a-z][a-z0-9+.-]*:", target):  # https:, mailto:
                continue
            file_part, _, anchor = target.partition("#")
            dest = (path.parent / file_part).resolve() if file_part else path
            if not dest.is_relative_to(root.resolve()) or not dest.exists():
                report(m.start(), f"link to {target}: no such file in the repository")
            elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
                report(m.start(), f"link to {target}: no such heading")
    for m in MD_NAME.finditer(text):
        name = m.group(1)
        candidates = (root / name, path.parent / name, root / "docs" / name)
        if not any(c.resolve().is_file() for c in candidates):
            report(m.start(), f"mentions {name}, which is not in the repository")
    return problems


def test_no_file_refers_to_a_document_that_is_not_in_the_repository() -> None:
    this = Path(__file__).resolve()
    problems = [
        problem
        for path in text_files(REPO)
        if path.resolve() != this  # this file names missing documents on purpose
        for problem in broken_references(path, REPO)
    ]
    assert problems == []


def test_the_scan_finds_every_kind_of_broken_reference(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "score.md").write_text("# The score\n\n## Cache keys\n")
    (tmp_path / "README.md").write_text(
        "See [the score](docs/score.md#cache-keys), docs/score.md and score.md.\n"
        "Not [this](docs/gone.md), nor [that](docs/score.md#no-such-part),\n"
        "nor DESIGN section 3, nor notes/fal-notes.md. [Site](https://example.com/x.md)\n"
    )
    (tmp_path / "code.py").write_text('"""As DESIGN.md says (see docs/protocol.md)."""\n')
    assert broken_references(tmp_path / "README.md", tmp_path) == [
        "README.md:3: cites DESIGN, which is not in the repository",
        "README.md:2: link to docs/gone.md: no such file in the repository",
        "README.md:2: link to docs/score.md#no-such-part: no such heading",
        "README.md:2: mentions docs/gone.md, which is not in the repository",
        "README.md:3: mentions notes/fal-notes.md, which is not in the repository",
    ]
    assert broken_references(tmp_path / "code.py", tmp_path) == [
        "code.py:1: cites DESIGN, which is not in the repository",
        "code.py:1: mentions DESIGN.md, which is not in the repository",
        "code.py:1: mentions docs/protocol.md, which is not in the repository",
    ]
    assert [p.name for p in text_files(tmp_path)] == ["README.md", "code.py", "score.md"]
