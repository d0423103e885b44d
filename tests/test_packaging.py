"""Packaging: the explicit package list, the wheel's layout, the core/plugins import boundary,
``python -m segue.core``, the console script, and a non-editable install into a fresh venv."""

from __future__ import annotations

import ast
import importlib.metadata
import os
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
PACKAGE_DIRS = PYPROJECT["tool"]["setuptools"]["package-dir"]  # {"segue.core": "core", ...}
# Build with what is installed (the test extra brings setuptools with bdist_wheel): no
# dependencies fetched, no isolated build environment.
PIP_FLAGS = ["--no-deps", "--no-build-isolation", "--disable-pip-version-check"]


def run(command: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    """Run ``command``; on failure, fail with its whole output (pip's reason is in it)."""
    done = subprocess.run(command, capture_output=True, text=True, **kwargs)  # type: ignore[call-overload]
    assert done.returncode == 0, (
        f"{' '.join(command)} exited {done.returncode}\n{done.stdout}\n{done.stderr}"
    )
    return done


def packages_on_disk() -> set[str]:
    """Every folder with an ``__init__.py`` under the mapped folders, as a dotted name."""
    found = set()
    for dotted, folder in PACKAGE_DIRS.items():
        root = REPO / folder
        for init in root.rglob("__init__.py"):
            rel = init.parent.relative_to(root)
            if "__pycache__" in rel.parts:
                continue
            found.add(".".join([dotted, *rel.parts]))
    return found


def folder_of(package: str) -> Path:
    """The source folder of a dotted package name, through ``package-dir``."""
    for dotted, folder in PACKAGE_DIRS.items():
        if package == dotted or package.startswith(dotted + "."):
            return REPO / folder / Path(*package[len(dotted) :].split(".")[1:])
    raise AssertionError(f"{package} is under no package-dir entry")


def data_packages() -> set[str]:
    """Listed packages that hold only data files (the server's static client): no __init__.py."""
    data = PYPROJECT["tool"]["setuptools"]["package-data"]
    return {name for name in data if not (folder_of(name) / "__init__.py").exists()}


def test_package_dir_maps_core_and_plugins_under_segue() -> None:
    assert PACKAGE_DIRS == {"segue.core": "core", "segue.plugins": "plugins"}


def test_packages_list_equals_the_init_folders_on_disk() -> None:
    listed = set(PYPROJECT["tool"]["setuptools"]["packages"])
    on_disk = packages_on_disk()
    assert on_disk - listed == set(), "add these to [tool.setuptools] packages in pyproject.toml"
    assert listed - on_disk == data_packages(), "listed in pyproject.toml but have no __init__.py"
    # A data-only package is listed (setuptools warns at every build otherwise) and holds files.
    for package in data_packages():
        assert package in listed, f"{package}: list it in [tool.setuptools] packages"
        assert any(p.is_file() for p in folder_of(package).iterdir()), f"{package} is empty"


def copy_source(dest: Path) -> Path:
    """The files a build reads, copied so building never writes into the shared work tree."""
    dest.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, dest / name)
    for folder in PACKAGE_DIRS.values():
        shutil.copytree(
            REPO / folder, dest / folder, ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
        )
    return dest


@pytest.fixture(scope="module")
def source_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return copy_source(tmp_path_factory.mktemp("src") / "segue")


@pytest.fixture(scope="module")
def wheel(source_copy: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    done = run(
        [sys.executable, "-m", "pip", "wheel", *PIP_FLAGS, str(source_copy), "-w", str(out)],
        timeout=300,
    )
    # setuptools warns of a configuration it will stop accepting (a license table, a data
    # folder missing from the package list) in every user's install output.
    warnings = [line for line in done.stderr.splitlines() if "BuildBackendWarning" in line]
    assert warnings == [], "\n".join(warnings)
    (built,) = out.glob("segue-*.whl")
    return built


def test_wheel_puts_everything_under_segue(wheel: Path, source_copy: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    top = {n.split("/", 1)[0] for n in names}
    assert top == {"segue", next(t for t in top if t.endswith(".dist-info"))}
    assert not {"core", "plugins"} & top
    assert {n.split("/")[1] for n in names if n.startswith("segue/")} == {"core", "plugins"}
    # Every module and data file of the source is in the wheel, at its segue/ path.
    for dotted, folder in PACKAGE_DIRS.items():
        root = source_copy / folder
        for path in root.rglob("*"):
            if path.is_dir() or "__pycache__" in path.parts:
                continue
            package = ".".join([dotted, *path.parent.relative_to(root).parts])
            if package not in PYPROJECT["tool"]["setuptools"]["packages"]:
                continue  # not a package: setuptools would not ship it (the list test catches it)
            expected = "/".join([*dotted.split("."), *path.relative_to(root).parts])
            assert expected in names, f"{expected} missing from the wheel"
    shipped = ("segue/core/py.typed", "segue/plugins/py.typed", "segue/core/server/static/app.js")
    for data in shipped:
        assert data in names
    entry_points = zipfile.ZipFile(wheel).read(
        next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    )
    assert b"segue = segue.core.cli:main" in entry_points


def imported_modules(tree: ast.AST, module: str) -> list[tuple[int, str]]:
    """(line, dotted name) of every import in a module, relative ones resolved."""
    found = []
    package = module.rsplit(".", 1)[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parts, base] if base else parts)
            found.extend((node.lineno, f"{base}.{alias.name}") for alias in node.names)
            found.append((node.lineno, base))
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute | ast.Name)
            and getattr(node.func, "attr", getattr(node.func, "id", "")) == "import_module"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            found.append((node.lineno, node.args[0].value))
    return found


def modules_under(folder: str) -> list[tuple[str, str, ast.AST]]:
    """(path from the repo, dotted module name, syntax tree) of each module in ``folder``."""
    dotted = {v: k for k, v in PACKAGE_DIRS.items()}[folder]
    found = []
    for path in sorted((REPO / folder).rglob("*.py")):
        rel = path.relative_to(REPO / folder).with_suffix("")
        module = ".".join([dotted, *rel.parts])
        found.append((str(path.relative_to(REPO)), module, ast.parse(path.read_text(), str(path))))
    return found


def test_core_never_imports_plugins() -> None:
    offenders = [
        f"{path}:{line}: {name}"
        for path, module, tree in modules_under("core")
        for line, name in imported_modules(tree, module)
        if name == "segue.plugins" or name.startswith("segue.plugins.")
    ]
    assert offenders == []


def test_the_import_scan_would_catch_an_import() -> None:
    for source in (
        "import segue.plugins.synth",
        "from segue.plugins import synth",
        "from segue import plugins",
        "importlib.import_module('segue.plugins.fal')",
        "from ...plugins import fal",
    ):
        names = [n for _, n in imported_modules(ast.parse(source), "segue.core.commands.x")]
        assert any(n.startswith("segue.plugins") for n in names), source


def cross_plugin_imports(tree: ast.AST, module: str) -> list[tuple[int, str]]:
    """Imports in ``module`` (a module of one plugin) of another plugin's modules.

    A plugin is a top-level module or package under ``segue.plugins``; importing its own
    submodules is fine, reaching another plugin goes through the hooks and registries.
    """
    own = module.split(".")[2]
    found = []
    for line, name in imported_modules(tree, module):
        parts = name.split(".")
        if parts[:2] == ["segue", "plugins"] and len(parts) > 2 and parts[2] != own:
            found.append((line, name))
    return found


def test_no_plugin_imports_another_plugin() -> None:
    offenders = [
        f"{path}:{line}: {name}"
        for path, module, tree in modules_under("plugins")
        if module != "segue.plugins.__init__"
        for line, name in cross_plugin_imports(tree, module)
    ]
    assert offenders == []


def test_the_cross_plugin_scan_would_catch_an_import() -> None:
    for source in (
        "import segue.plugins.synth",
        "from segue.plugins import synth",
        "from segue.plugins.synth.render import render_request",
        "importlib.import_module('segue.plugins.synth')",
        "from ..synth import render",
        "from .. import loop_points",
    ):
        names = cross_plugin_imports(ast.parse(source), "segue.plugins.fal.render")
        assert names, source
    for source in (
        "from segue.plugins.fal import render",
        "from . import schemas",
        "from .endpoints import ELEVEN_FORMATS",
        "import segue.core.seams",
        "from segue.core.plugins import get_plugins",
    ):
        names = cross_plugin_imports(ast.parse(source), "segue.plugins.fal.render")
        assert names == [], source
    names = cross_plugin_imports(ast.parse("from .synth import render"), "segue.plugins.loudness")
    assert names, "a top-level plugin module importing a sibling plugin"


@pytest.mark.skipif(shutil.which("ruff") is None, reason="ruff is not installed")
def test_ruff_bans_plugins_imports_in_core() -> None:
    # The import rules only: formatting and other lints of work in progress are not this test's.
    ok = subprocess.run(
        ["ruff", "check", "--no-cache", "--select", "TID", "core"],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert ok.returncode == 0, ok.stdout + ok.stderr
    bad = subprocess.run(
        ["ruff", "check", "--no-cache", "--stdin-filename", "core/bad.py", "-"],
        cwd=REPO,
        input="import segue.plugins.synth\n\nprint(segue.plugins.synth)\n",
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 1 and "TID251" in bad.stdout, bad.stdout


def clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("SEGUE_")}


def test_python_m_segue_core_help() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "segue.core", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        env=clean_env(),
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("usage: segue ")
    for command in ("validate", "plan", "pregen", "serve", "tracks", "plugins"):
        assert command in out.stdout


def test_console_script() -> None:
    script = Path(sys.executable).parent / "segue"
    if not script.exists():
        script = Path(shutil.which("segue") or "segue")
    out = subprocess.run(
        [str(script), "--version"], capture_output=True, text=True, timeout=60, env=clean_env()
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == f"segue {PYPROJECT['project']['version']}"


PURELIB = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
SITE_DIRS = "import site; print(*site.getsitepackages(), sep=chr(10))"


def python_paths(python: str | Path, code: str) -> list[str]:
    """The paths ``code`` prints, one a line, when interpreter ``python`` runs it."""
    return run([str(python), "-c", code], env=clean_env()).stdout.splitlines()


@pytest.mark.slow
def test_non_editable_install_into_a_fresh_venv(wheel: Path, tmp_path: Path) -> None:
    """The wheel installed (not editable) into a new venv: it imports segue from there.

    The venv gets no pip (faster) and sees this environment's packages (the dependencies)
    through a ``.pth`` line, wherever they are installed; this environment's own segue is an
    editable install, whose finder is not loaded that way, so it cannot stand in.
    """
    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", "--without-pip", str(venv)], timeout=120)
    python = venv / "bin" / "python"
    (site,) = map(Path, python_paths(python, PURELIB))
    # Every site folder this environment reads, its base Python's too (a venv made with
    # --system-site-packages), so the dependencies are found wherever they are installed.
    (site / "outer.pth").write_text("\n".join(python_paths(sys.executable, SITE_DIRS)) + "\n")
    run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", *PIP_FLAGS,
         "--force-reinstall", "--no-index", str(wheel)],
        timeout=300,
    )  # fmt: skip
    assert not (site / "core").exists() and not (site / "plugins").exists()
    assert (site / "segue" / "core" / "py.typed").exists()
    where = subprocess.run(
        [
            str(python),
            "-c",
            "import segue.core, segue.plugins.style as s; print(segue.core.__file__, s.__file__)",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=clean_env(),
    )
    assert where.returncode == 0, where.stderr
    for path in where.stdout.split():
        assert Path(path).is_relative_to(site), path
    listed = subprocess.run(
        [str(venv / "bin" / "segue"), "plugins", "--json"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=clean_env(),
        timeout=120,
    )
    assert listed.returncode == 0, listed.stderr
    assert '"segue.plugins.style"' in listed.stdout
    # The synth plays sampled instruments from the SoundFont a dependency ships
    # (pretty_midi's TimGM6mb.sf2), and its numpy voices when no SoundFont is found.
    synth = subprocess.run(
        [str(python), "-c", SYNTH_IN_A_PLAIN_INSTALL],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=clean_env(),
        timeout=300,
    )
    assert synth.returncode == 0, synth.stderr
    assert synth.stdout.split() == ["TimGM6mb.sf2", "sampled-differs", "none", "numpy-ok"]


def test_tests_find_their_helpers_through_pytest_not_sys_path_edits() -> None:
    assert "tests" in PYPROJECT["tool"]["pytest"]["ini_options"]["pythonpath"]
    edit = re.compile(r"sys\.path\.(?:insert|append|extend)\(|sys\.path\s*\+?=(?!=)")
    offenders = [
        f"{path.relative_to(REPO)}:{text[: m.start()].count(chr(10)) + 1}"
        for folder in ("tests", "benchmarks")  # benchmarks: PYTHONPATH=tests, as in the README
        for path in sorted((REPO / folder).rglob("*.py"))
        for text in [path.read_text(encoding="utf-8")]
        for m in edit.finditer(text)
    ]
    assert offenders == [], (
        "use pytest's pythonpath (pyproject.toml) or monkeypatch.syspath_prepend"
    )


SYNTH_IN_A_PLAIN_INSTALL = """
import sys
import numpy as np
from segue.core.request import GenerationRequest
from segue.plugins.synth import SynthGenerator, soundfont
from segue.plugins.synth.render import render_request

req = GenerationRequest(mood="m", variant=0, prompt="Gentle harp and strings", duration_s=2.0)
bundled = soundfont.bundled_soundfont()
print(bundled.name)
_, sampled = render_request(req, 44100, bundled)
_, numpy_only = render_request(req, 44100, None)
assert sampled.shape == numpy_only.shape and np.isfinite(sampled).all()
print("sampled-differs" if np.abs(sampled - numpy_only).max() > 1e-3 else "same")
# No SoundFont anywhere (no Debian set, no pretty_midi): the numpy voices play.
soundfont.SYSTEM_SOUNDFONTS = ()
sys.modules["pretty_midi"] = None
assert soundfont.find_soundfont() is None
gen = SynthGenerator({}, None)
print(gen.audio_params()["soundfont"])
_, x = render_request(req, 44100, gen.soundfont)
print("numpy-ok" if np.abs(x).max() > 0.01 else "silent")
"""


def _distribution(name: str) -> str:
    """A distribution's name as pip compares them (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _declared(requirements: list[str]) -> set[str]:
    return {_distribution(re.split(r"[\s<>=!~;\[(]", r, maxsplit=1)[0]) for r in requirements}


def third_party_imports(tree: ast.AST) -> list[tuple[int, str, bool]]:
    """(line, top-level module, inside a function) of every import in ``tree`` of a module
    outside the standard library and segue."""
    lazy: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            lazy |= {id(n) for n in ast.walk(node)}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        for name in names:
            top = name.split(".")[0]
            if top not in sys.stdlib_module_names and top != "segue":
                found.append((node.lineno, top, id(node) in lazy))
    return sorted(found)


def test_every_third_party_import_is_a_declared_dependency() -> None:
    """What core/ and plugins/ import comes with `pip install -e .` (scipy, a test extra only,
    once broke the README's `pip install -e . && segue serve` at the first render), or from
    an optional extra (redis, s3) that is imported only inside the function that needs it,
    so a server without the extra starts."""
    project = PYPROJECT["project"]
    runtime = _declared(project["dependencies"])
    extras = {
        extra: _declared(reqs)
        for extra, reqs in project["optional-dependencies"].items()
        if extra != "test"
    }
    owners = importlib.metadata.packages_distributions()
    offenders = []
    for folder in ("core", "plugins"):
        for path, _module, tree in modules_under(folder):
            for line, top, lazy in third_party_imports(tree):
                dists = {_distribution(d) for d in owners.get(top, [top])}
                if dists & runtime:
                    continue
                extra = next((e for e, names in extras.items() if dists & names), None)
                if extra is None:
                    offenders.append(f"{path}:{line}: {top} is in no dependency of pyproject.toml")
                elif not lazy:
                    offenders.append(f"{path}:{line}: {top} (extra {extra!r}) imported at load")
    assert offenders == []


def test_the_dependency_scan_sees_function_level_imports() -> None:
    source = "import os\nimport numpy\nfrom . import x\ndef f():\n    from scipy import signal\n"
    assert third_party_imports(ast.parse(source)) == [(2, "numpy", False), (5, "scipy", True)]
