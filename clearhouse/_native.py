"""The compiled hot path: the book and the risk check built with mypyc, loaded only when current.

``make setup`` runs :func:`main`, which compiles :data:`MODULES` with mypyc
into ``clearhouse/.native/`` (git-ignored; never next to the sources, where an extension module
would shadow its ``.py`` whatever the ``.py`` says now) and writes ``manifest.json``: the build's
key and the source files it was computed from. The key is the SHA-256 of those files (the
compiled modules and every ``clearhouse`` module they import, transitively: mypyc compiles
against their types) and of the interpreter's cache tag.

On import of ``clearhouse``, :func:`install` recomputes the key from the sources as they are now
and, only if it equals the manifest's, puts a finder first on ``sys.meta_path`` that loads
:data:`MODULES` from the build. Otherwise (no build, a stale one, ``CLEARHOUSE_PURE=1``) nothing
is installed and the pure Python modules run: same rules, same results, slower. The rebuild is
idempotent: it does nothing while the key matches.
"""

from __future__ import annotations

import hashlib
import importlib.abc
import importlib.machinery
import importlib.util
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

__all__ = [
    "MODULES",
    "NativeFinder",
    "build",
    "compute_key",
    "compute_sources",
    "get_current_build",
    "install",
    "is_native",
]

MODULES = (
    "clearhouse.risk.incremental",
    "clearhouse.market.collateral",
    "clearhouse.market.book",
)
"""The modules compiled (one mypyc group): the book's order path and the max-loss check."""

PACKAGE_DIR = Path(__file__).resolve().parent
"""The ``clearhouse`` package directory."""
BUILD_DIR = PACKAGE_DIR / ".native"
"""Where the build goes (git-ignored)."""
PURE_ENV = "CLEARHOUSE_PURE"
"""Set to ``1`` to run the pure Python modules even when a current build exists."""


def _module_path(root: Path, module: str) -> Path:
    """The source file of a ``clearhouse`` module (a package's ``__init__.py``)."""
    base = root.parent.joinpath(*module.split("."))
    return base / "__init__.py" if base.is_dir() else base.with_suffix(".py")


def _get_imports(path: Path) -> set[str]:
    """The ``clearhouse`` modules a source file imports (and the packages on their way)."""
    import ast  # the build's imports are loaded by the build only (every import runs install)

    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_bytes())):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        for name in names:
            parts = name.split(".")
            if parts[0] == "clearhouse":
                found.update(".".join(parts[:i]) for i in range(1, len(parts) + 1))
    return found


def compute_sources(root: Path = PACKAGE_DIR, modules: Sequence[str] = MODULES) -> list[str]:
    """The source files a build of ``modules`` depends on, relative to ``root``'s parent, sorted:
    the modules and every ``clearhouse`` module they import, transitively."""
    seen: set[str] = set()
    todo = list(modules)
    while todo:
        module = todo.pop()
        if module in seen:
            continue
        path = _module_path(root, module)
        if not path.is_file():  # ``from clearhouse.x import name``: a name, not a module
            continue
        seen.add(module)
        todo.extend(_get_imports(path) - seen)
    return sorted(str(_module_path(root, m).relative_to(root.parent)) for m in seen)


def compute_key(root: Path, sources: Sequence[str], modules: Sequence[str] = MODULES) -> str:
    """SHA-256 (hex) of the compiled module names, the interpreter's cache tag and every source
    file's path and bytes; a file that is missing makes a key no build has."""
    digest = hashlib.sha256()
    digest.update(repr((tuple(modules), sys.implementation.cache_tag)).encode())
    for name in sources:
        path = root.parent / name
        digest.update(name.encode() + b"\0")
        digest.update(path.read_bytes() if path.is_file() else b"\0missing\0")
    return digest.hexdigest()


def get_current_build(root: Path = PACKAGE_DIR, build_dir: Path | None = None
                      ) -> dict[str, Path] | None:
    """Module name -> extension file of the build in ``build_dir``, if there is one and its key
    matches the sources now; ``None`` otherwise (no build, stale, incomplete)."""
    build_dir = build_dir or root / ".native"
    try:
        manifest = json.loads((build_dir / "manifest.json").read_text())
    except (OSError, ValueError):
        return None
    if (manifest.get("modules") != list(MODULES)
            or manifest.get("key") != compute_key(root, manifest.get("sources", []))):
        return None
    files = {name: build_dir / path for name, path in manifest.get("files", {}).items()}
    if set(MODULES) - set(files) or not all(path.is_file() for path in files.values()):
        return None
    return files


class NativeFinder(importlib.abc.MetaPathFinder):
    """Finds the compiled modules (and mypyc's shared library of the group) in a current build."""

    def __init__(self, files: dict[str, Path]) -> None:
        self.files = files

    def find_spec(self, fullname: str, path: Sequence[str] | None = None,
                  target: ModuleType | None = None) -> importlib.machinery.ModuleSpec | None:
        file = self.files.get(fullname)
        if file is None:
            return None
        loader = importlib.machinery.ExtensionFileLoader(fullname, str(file))
        return importlib.util.spec_from_file_location(fullname, str(file), loader=loader)


def install() -> bool:
    """Load :data:`MODULES` from the build from now on if it is current (and ``CLEARHOUSE_PURE``
    is not set); returns whether it does. Call it before any of them is imported."""
    if os.environ.get(PURE_ENV, "") not in ("", "0"):
        return False
    if any(isinstance(finder, NativeFinder) for finder in sys.meta_path):
        return True
    files = get_current_build()
    if files is None:
        return False
    sys.meta_path.insert(0, NativeFinder(files))
    return True


def is_native(module: ModuleType) -> bool:
    """Whether ``module`` was loaded from a compiled build."""
    return isinstance(getattr(module, "__loader__", None), importlib.machinery.ExtensionFileLoader)


# --- the build ---------------------------------------------------------------------------------


def build(root: Path = PACKAGE_DIR, build_dir: Path | None = None, force: bool = False) -> bool:
    """Compile :data:`MODULES` with mypyc into ``build_dir`` unless its build is current; returns
    whether it built. The old build is replaced only once the new one is complete."""
    build_dir = build_dir or root / ".native"
    if not force and get_current_build(root, build_dir) is not None:
        return False
    import shutil
    import tempfile

    from mypyc.build import mypycify  # the build needs mypy (a dev dependency); loading does not
    from setuptools import Distribution

    for module in MODULES:  # a mypyc --inplace build beside a source would shadow it: never
        for stray in _module_path(root, module).parent.glob(module.rsplit(".", 1)[1] + ".*.so"):
            stray.unlink()
    sources = compute_sources(root)
    key = compute_key(root, sources)
    config = root.parent / "pyproject.toml"
    paths = [str(_module_path(root, m)) for m in MODULES]
    build_dir.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=build_dir.parent, prefix=".native-tmp-") as tmp:
        out, work = Path(tmp) / "out", Path(tmp) / "work"
        cwd = os.getcwd()
        os.chdir(root.parent)  # mypy finds the package (and its config) from here
        try:
            flags = ["--config-file", str(config)] if config.is_file() else []
            extensions = mypycify([*flags, *paths], opt_level="3", target_dir=str(work / "c"))
            dist = Distribution({"name": "clearhouse-native", "ext_modules": extensions})
            command = dist.get_command_obj("build_ext")
            command.build_lib, command.build_temp = str(out), str(work / "temp")
            dist.run_command("build_ext")
        finally:
            os.chdir(cwd)
        files = {ext.name: str(Path(command.get_ext_fullpath(ext.name)).relative_to(out))
                 for ext in extensions}
        manifest = {"key": key, "modules": list(MODULES), "sources": sources, "files": files}
        (out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
        if build_dir.exists():
            shutil.rmtree(build_dir)
        out.rename(build_dir)
    return True


def main() -> None:
    """``python -c "from clearhouse._native import main; main()" [--force]``: build unless
    current (``make setup`` runs it)."""
    import time

    started = time.monotonic()
    built = build(force="--force" in sys.argv[1:])
    state = f"built in {time.monotonic() - started:.0f} s" if built else "up to date"
    print(f"compiled hot path ({', '.join(MODULES)}): {state}")

