"""The compiled hot path (``clearhouse._native``): a build is loaded only while it matches the
sources, the modules run compiled when a current build exists (required under ``make test``), and
the pure Python fallback passes the book's differential and state-machine tests."""

from __future__ import annotations

import importlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from clearhouse import _native
from clearhouse._native import MODULES, compute_key, compute_sources, get_current_build, is_native

REPO = Path(__file__).resolve().parents[2]


def _fake_build(tmp_path: Path) -> tuple[Path, Path]:
    """A copy of the sources a build depends on plus a build dir whose manifest matches them
    (its "extensions" are empty files: only the staleness rules are under test)."""
    sources = compute_sources()
    root = tmp_path / "src" / "clearhouse"
    for name in sources:
        target = tmp_path / "src" / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(REPO / name, target)
    build_dir = tmp_path / "build"
    files = {m: f"{m.replace('.', '/')}.so" for m in (*MODULES, "group__mypyc")}
    for path in files.values():
        (build_dir / path).parent.mkdir(parents=True, exist_ok=True)
        (build_dir / path).write_bytes(b"")
    manifest = {"key": compute_key(root, sources), "modules": list(MODULES), "sources": sources,
                "files": files}
    (build_dir / "manifest.json").write_text(json.dumps(manifest))
    return root, build_dir


def test_sources_cover_the_compiled_modules_and_their_imports() -> None:
    sources = compute_sources()
    for module in MODULES:
        assert module.replace(".", "/") + ".py" in sources
    # imported by the compiled modules (mypyc compiles against their types)
    for name in ("clearhouse/market/trades.py", "clearhouse/messages/structs.py",
                 "clearhouse/risk/maxloss.py", "clearhouse/types.py"):
        assert name in sources
    assert "clearhouse/market/pricing.py" not in sources  # not imported by them


def test_current_build_is_found(tmp_path: Path) -> None:
    root, build_dir = _fake_build(tmp_path)
    files = get_current_build(root, build_dir)
    assert files is not None and set(MODULES) <= set(files)


@pytest.mark.parametrize("edited", ["clearhouse/market/book.py", "clearhouse/risk/incremental.py",
                                    "clearhouse/messages/structs.py"])
def test_edited_source_makes_the_build_stale(tmp_path: Path, edited: str) -> None:
    root, build_dir = _fake_build(tmp_path)
    path = tmp_path / "src" / edited
    path.write_text(path.read_text() + "\n# edited\n")
    assert get_current_build(root, build_dir) is None


def test_missing_extension_or_manifest_is_no_build(tmp_path: Path) -> None:
    root, build_dir = _fake_build(tmp_path)
    (build_dir / "clearhouse/market/book.so").unlink()
    assert get_current_build(root, build_dir) is None
    (build_dir / "manifest.json").write_text("{not json")
    assert get_current_build(root, build_dir) is None
    assert get_current_build(root, tmp_path / "nowhere") is None


def test_other_module_list_is_stale(tmp_path: Path) -> None:
    root, build_dir = _fake_build(tmp_path)
    manifest = json.loads((build_dir / "manifest.json").read_text())
    manifest["modules"] = manifest["modules"][:-1]
    (build_dir / "manifest.json").write_text(json.dumps(manifest))
    assert get_current_build(root, build_dir) is None


def test_modules_run_compiled_exactly_when_a_current_build_exists() -> None:
    """Compiled when built from the sources as they are (and required under ``make test``);
    pure Python under ``CLEARHOUSE_PURE=1`` or without a current build. Never an extension next
    to a source (it would shadow the .py whatever the .py says)."""
    pure = os.environ.get(_native.PURE_ENV, "") not in ("", "0")
    current = get_current_build() is not None
    if os.environ.get("CLEARHOUSE_REQUIRE_NATIVE") == "1" and not pure:
        assert current, "no current mypyc build: run `make native`"
    for module in MODULES:
        loaded = importlib.import_module(module)
        assert is_native(loaded) == (current and not pure), module
        source = REPO.joinpath(*module.split(".")).with_suffix(".py")
        assert not list(source.parent.glob(source.stem + ".*.so"))


def test_pure_fallback_passes_differential_and_state_machine_tests() -> None:
    env = {**os.environ, _native.PURE_ENV: "1"}
    env.pop("CLEARHOUSE_REQUIRE_NATIVE", None)
    tests = ["tests/property/test_book_reference.py", "tests/property/test_book_stateful.py",
             "tests/property/test_book_risk_paths.py",
             "tests/unit/test_native.py::test_modules_run_compiled_exactly_when_a_current_build_exists"]
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *tests],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert " passed" in done.stdout and "failed" not in done.stdout
