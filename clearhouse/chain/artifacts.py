"""Compile the Vyper sources in ``contracts/`` with the pinned compiler, cached by source hash.

An :class:`Artifact` (ABI + creation bytecode) is what both chain backends deploy. The cache key
covers the compiler version, the settings, the contract's source and every shared module under
``contracts/lib`` and ``contracts/interfaces``, so an edit anywhere it could import invalidates it.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import vyper
from vyper.compiler.input_bundle import FilesystemInputBundle
from vyper.compiler.settings import OptimizationLevel, Settings

from clearhouse.errors import CompileError

__all__ = ["CONTRACTS_DIR", "EVM_VERSION", "VYPER_VERSION", "Artifact", "compile_contract", "load_artifact"]

CONTRACTS_DIR = Path(__file__).resolve().parents[2] / "contracts"
"""Vyper sources; ``lib/`` holds modules, ``interfaces/`` interfaces, ``mocks/`` test-only contracts."""
VYPER_VERSION = "0.4.3"
"""The pinned compiler (0.4.3 postdates the 0.4.x ``@nonreentrant`` fixes); checked at import."""
EVM_VERSION = "prague"
"""Target fork; anvil is started with the same hardfork so gas figures agree across backends."""
CACHE_DIR = Path(os.environ.get("CLEARHOUSE_CACHE", Path(__file__).resolve().parents[2] / ".cache")) / "artifacts"

if not vyper.__version__.startswith(VYPER_VERSION):
    raise CompileError(f"clearhouse pins vyper {VYPER_VERSION}, found {vyper.__version__}")


@dataclass(frozen=True, slots=True)
class Artifact:
    """A compiled contract."""

    name: str
    """Source file stem, e.g. ``Vault`` or ``mocks/TestToken``."""
    abi: tuple[dict[str, Any], ...]
    """The ABI as the compiler emits it."""
    bytecode: bytes
    """Creation bytecode (constructor arguments are appended at deploy time)."""
    source_hash: str
    """The cache key this artifact was compiled under."""


def _source_path(name: str) -> Path:
    path = CONTRACTS_DIR / (name if name.endswith(".vy") else f"{name}.vy")
    if not path.is_file():
        raise CompileError(f"no contract source {path.relative_to(CONTRACTS_DIR.parent)}", field="name")
    return path


def _cache_key(path: Path) -> str:
    h = hashlib.sha256(f"{vyper.__version__}|{EVM_VERSION}|gas|".encode())
    h.update(path.read_bytes())
    for shared in sorted([*CONTRACTS_DIR.glob("lib/**/*.vy*"), *CONTRACTS_DIR.glob("interfaces/**/*.vy*")]):
        h.update(shared.relative_to(CONTRACTS_DIR).as_posix().encode())
        h.update(shared.read_bytes())
    return h.hexdigest()


def compile_contract(name: str) -> Artifact:
    """Compile ``contracts/<name>.vy`` (no cache)."""
    path = _source_path(name)
    settings = Settings(evm_version=EVM_VERSION, optimize=OptimizationLevel.GAS)
    try:
        out = vyper.compile_code(
            path.read_text(),
            contract_path=path.relative_to(CONTRACTS_DIR),
            resolved_path=path,
            input_bundle=FilesystemInputBundle([CONTRACTS_DIR]),
            output_formats=["abi", "bytecode"],
            settings=settings,
        )
    except Exception as exc:  # vyper raises many exception types; surface them as one
        raise CompileError(f"{path.name}: {exc}", contract=name) from exc
    return Artifact(
        name=name.removesuffix(".vy"),
        abi=tuple(out["abi"]),
        bytecode=bytes.fromhex(out["bytecode"].removeprefix("0x")),
        source_hash=_cache_key(path),
    )


@cache
def _load_cached(name: str, key: str) -> Artifact:
    cache_file = CACHE_DIR / f"{name.replace('/', '__')}-{key[:16]}.json"
    if cache_file.is_file():
        raw = json.loads(cache_file.read_text())
        return Artifact(raw["name"], tuple(raw["abi"]), bytes.fromhex(raw["bytecode"]), raw["source_hash"])
    art = compile_contract(name)
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    tmp = cache_file.with_suffix(f".tmp{os.getpid()}")
    tmp.write_text(json.dumps({"name": art.name, "abi": list(art.abi), "bytecode": art.bytecode.hex(),
                               "source_hash": art.source_hash}))
    tmp.replace(cache_file)  # atomic: parallel test workers never read half a file
    return art


def load_artifact(name: str) -> Artifact:
    """The compiled artifact for ``contracts/<name>.vy``, from the cache when the sources are unchanged."""
    return _load_cached(name.removesuffix(".vy"), _cache_key(_source_path(name)))
