"""The claims tree agrees byte for byte with the real ``@openzeppelin/merkle-tree`` (JavaScript).

One seeded batch of trees (sizes 1..64, several leaf encodings, sorted and unsorted, with
duplicates) goes through ``tests/js/oz_merkle.mjs`` in a single ``node`` run; every root, proof,
multiproof, ``dump()`` and ``render()`` must match, and each side must load the other's dump.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from clearhouse.merkle import ClaimsTree, is_valid_claim, is_valid_claim_multiproof
from clearhouse.merkle.abi_values import compute_json_leaf
from clearhouse.merkle.claims import ValueMultiProof
from clearhouse.types import Digest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "tests" / "js" / "oz_merkle.mjs"
OZ_PACKAGE = ROOT / "tools" / "js" / "node_modules" / "@openzeppelin" / "merkle-tree" / "package.json"
SIZES = [1, 2, 3, 4, 5, 6, 7, 8, 9, 15, 16, 17, 31, 32, 33, 47, 63, 64]


def _random_value(rng: random.Random, abi_type: str) -> Any:
    if abi_type == "address":
        return "0x" + rng.randbytes(20).hex()
    if abi_type == "uint64[]":
        return [rng.randrange(2**64) for _ in range(rng.randrange(4))]
    if abi_type.startswith("uint"):
        bits = int(abi_type[4:])
        return rng.choice([0, 1, rng.randrange(2**bits), 2**bits - 1, rng.randrange(10**24)]) % 2**bits
    if abi_type == "bytes32":
        return rng.randbytes(32)
    if abi_type == "bool":
        return rng.random() < 0.5
    if abi_type == "string":
        return rng.choice(["", "claim", "é∑ unicode", "x" * 40])
    raise AssertionError(abi_type)


ENCODINGS: list[list[str]] = [
    ["address", "uint256"],
    ["uint256", "bytes32", "address"],
    ["address", "uint8", "bool", "string"],
    ["bytes32", "uint64[]"],
]


@dataclass
class Case:
    tree: ClaimsTree
    raw_values: list[list[Any]]
    sort_leaves: bool
    proofs: list[int]
    multiproofs: list[list[int]]


def _make_cases() -> list[Case]:
    rng = random.Random(20240502)
    sizes = SIZES + [rng.randrange(1, 65) for _ in range(12)]
    cases = []
    for n, size in enumerate(sizes):
        encoding = ENCODINGS[n % len(ENCODINGS)]
        values = [[_random_value(rng, t) for t in encoding] for _ in range(size)]
        if size >= 4 and n % 5 == 0:  # duplicated values: lookups by value take the last one
            values[size // 2] = list(values[0])
        sort_leaves = n % 7 != 3
        tree = ClaimsTree.of(values, encoding, sort_leaves=sort_leaves)
        multis = [[], list(range(size)), [size - 1], rng.sample(range(size), rng.randrange(1, size + 1))]
        multis += [rng.sample(range(size), min(size, rng.randrange(1, 6))) for _ in range(3)]
        cases.append(Case(tree, values, sort_leaves, list(range(size)), multis))
    return cases


def _run_node(payload: list[dict[str, Any]]) -> list[dict[str, Any]]:
    done = subprocess.run(
        ["node", str(SCRIPT)], input=json.dumps(payload), capture_output=True, text=True, timeout=120, check=False,
    )
    if done.returncode != 0:
        pytest.fail(f"oz_merkle.mjs failed:\n{done.stderr}")
    result: list[dict[str, Any]] = json.loads(done.stdout)
    return result


@pytest.fixture(scope="module")
def oz() -> tuple[list[Case], list[dict[str, Any]]]:
    """The Python cases and what OpenZeppelin's library makes of them (one node run)."""
    missing = "node" if shutil.which("node") is None else None
    if missing is None and not OZ_PACKAGE.is_file():
        missing = "@openzeppelin/merkle-tree (cd tools/js && npm ci)"
    if missing:
        if os.environ.get("CI"):
            pytest.fail(f"{missing} is not installed: `make test` installs it")
        pytest.skip(f"OpenZeppelin reference unavailable: {missing} not installed")
    cases = _make_cases()
    payload = [
        {
            "leafEncoding": list(c.tree.leaf_encoding),
            # JS is fed the canonical JSON form, so its dump() echoes exactly what ours writes.
            "values": [compute_json_leaf(c.tree.leaf_encoding, v) for v in c.tree],
            "sortLeaves": c.sort_leaves,
            "proofs": c.proofs,
            "multiproofs": c.multiproofs,
            "pyDump": c.tree.dump(),
        }
        for c in cases
    ]
    return cases, _run_node(payload)


def _hex(nodes: tuple[Digest, ...]) -> list[str]:
    return ["0x" + n.hex() for n in nodes]


def _each(oz: tuple[list[Case], list[dict[str, Any]]], check: Callable[[Case, dict[str, Any]], None]) -> None:
    cases, results = oz
    assert len(cases) == len(results) >= len(SIZES)
    for case, js in zip(cases, results, strict=True):
        check(case, js)


def test_roots_match(oz: tuple[list[Case], list[dict[str, Any]]]) -> None:
    def check(case: Case, js: dict[str, Any]) -> None:
        assert js["root"] == "0x" + case.tree.root.hex()

    _each(oz, check)


def test_dump_and_render_match_byte_for_byte(oz: tuple[list[Case], list[dict[str, Any]]]) -> None:
    def check(case: Case, js: dict[str, Any]) -> None:
        assert js["dump"] == json.dumps(case.tree.dump(), separators=(",", ":"), ensure_ascii=False)
        assert js["render"] == case.tree.render()

    _each(oz, check)


def test_single_proofs_match_by_index_and_by_value(oz: tuple[list[Case], list[dict[str, Any]]]) -> None:
    def check(case: Case, js: dict[str, Any]) -> None:
        tree = case.tree
        for i, js_proof, js_by_value in zip(case.proofs, js["proofs"], js["proofsByValue"], strict=True):
            assert js_proof == _hex(tree.get_proof(i))
            assert js_by_value == _hex(tree.get_proof(case.raw_values[i]))
            proof = tuple(Digest(bytes.fromhex(p[2:])) for p in js_proof)
            assert tree.verify(i, proof)
            assert is_valid_claim(tree.root, tree.leaf_encoding, case.raw_values[i], proof)

    _each(oz, check)


def test_multiproofs_match(oz: tuple[list[Case], list[dict[str, Any]]]) -> None:
    def check(case: Case, js: dict[str, Any]) -> None:
        tree = case.tree
        for indices, js_mp in zip(case.multiproofs, js["multiproofs"], strict=True):
            mp = tree.get_multiproof(indices)
            assert js_mp["leaves"] == [compute_json_leaf(tree.leaf_encoding, v) for v in mp.values]
            assert js_mp["proof"] == _hex(mp.proof)
            assert js_mp["proofFlags"] == list(mp.proof_flags)
            from_js = ValueMultiProof(
                tuple(tuple(v) for v in js_mp["leaves"]),
                tuple(Digest(bytes.fromhex(p[2:])) for p in js_mp["proof"]),
                tuple(js_mp["proofFlags"]),
            )
            assert tree.verify_multiproof(from_js)
            assert is_valid_claim_multiproof(tree.root, tree.leaf_encoding, from_js)

    _each(oz, check)


def test_dumps_load_both_ways(oz: tuple[list[Case], list[dict[str, Any]]]) -> None:
    def check(case: Case, js: dict[str, Any]) -> None:
        # OpenZeppelin's load() validated our dump (it throws otherwise) and sees the same tree.
        assert js["pyDumpRoot"] == "0x" + case.tree.root.hex()
        assert js["pyDumpRender"] == case.tree.render()
        # And we load theirs into an identical tree.
        assert ClaimsTree.load(json.loads(js["dump"])) == case.tree

    _each(oz, check)
