"""The Vyper verifiers accept exactly the proofs the Python trees make, on both chain backends.

Proofs built by ``clearhouse.merkle`` verify on-chain; tampered proofs, wrong keys, wrong values and
internal nodes posing as leaves are rejected; the root after an update computed on-chain equals
the Python tree's. ``test_gas_*`` record what verification costs (see the figures they print).
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import pytest
from eth_abi import encode as abi_encode
from hypothesis import given, settings
from hypothesis import strategies as st

from clearhouse.chain import Chain, Contract, InProcessChain
from clearhouse.chain.inprocess import compute_intrinsic_gas
from clearhouse.errors import ContractRevert
from clearhouse.merkle import (
    EMPTY_VALUE,
    ClaimsTree,
    CompactProof,
    SparseMerkleTree,
    compute_leaf_hash,
    compute_node_hash,
)
from clearhouse.merkle.claims import compute_multiproof
from clearhouse.merkle.hashing import compute_keccak256
from clearhouse.types import Digest

INVALID = "merkle: invalid proof"


def _v(n: int) -> Digest:
    return compute_keccak256(b"account" + n.to_bytes(8, "big"))


def _claims(count: int, seed: int = 1) -> ClaimsTree:
    rng = random.Random(seed)
    return ClaimsTree.of([["0x" + rng.randbytes(20).hex(), rng.randrange(10**24)] for _ in range(count)],
                         ["address", "uint256"])


def _sparse_args(proof: CompactProof) -> tuple[int, list[Digest]]:
    return proof.bitmap, list(proof.siblings)


@pytest.fixture
def harness(chain: Chain) -> Contract:
    return chain.deploy("mocks/MerkleHarness")


# --- claims tree ---------------------------------------------------------------------------------


def test_claims_proofs_verify_on_chain(harness: Contract) -> None:
    tree = _claims(13)
    for i in (0, 5, 12):
        account, amount = tree.values[i].value
        leaf = tree.get_leaf_hash(i)
        proof = list(tree.get_proof(i))
        assert harness.call("claim_leaf", account, amount) == leaf
        assert harness.call("claims_process_proof", proof, leaf) == tree.root
        assert harness.call("claims_verify", proof, tree.root, leaf) is True
        harness.transact("claims_require", proof, tree.root, account, amount)


def test_claims_tampering_is_rejected(harness: Contract) -> None:
    tree = _claims(13)
    account, amount = tree.values[4].value
    proof = list(tree.get_proof(4))
    tampered = [*proof[:1], compute_keccak256(b"x"), *proof[2:]]
    other_proof = list(tree.get_proof(5))
    for bad_proof, bad_account, bad_amount in [
        (tampered, account, amount),
        (proof[:-1], account, amount),
        (other_proof, account, amount),
        (proof, account, amount + 1),
        (proof, tree.values[5].value[0], amount),
    ]:
        with pytest.raises(ContractRevert) as info:
            harness.transact("claims_require", bad_proof, tree.root, bad_account, bad_amount)
        assert info.value.reason == INVALID


def test_claims_internal_node_cannot_pose_as_a_leaf(harness: Contract) -> None:
    tree = _claims(8)
    # tree[1]'s children are tree[3], tree[4]; its sibling is tree[2].
    left, right = sorted([tree.tree[3], tree.tree[4]])
    # As a raw hash an internal node does reach the root (true of every such tree) ...
    assert harness.call("claims_verify", [tree.tree[2]], tree.root, tree.tree[1]) is True
    # ... but a claim is hashed from its values, and no value encoding lands on a node:
    # neither the node's two children read as 64 bytes of values, nor the node itself.
    assert harness.call("claims_verify_encoded", [tree.tree[2]], tree.root, left + right) is False
    assert harness.call("claims_verify_encoded", [tree.tree[2]], tree.root, tree.tree[1]) is False
    # A leaf hashed once instead of twice is not a leaf either.
    account, amount = tree.values[0].value
    once = compute_keccak256(abi_encode(["address", "uint256"], [account, amount]))
    assert harness.call("claims_verify", list(tree.get_proof(0)), tree.root, once) is False
    assert harness.call("claims_verify_encoded", list(tree.get_proof(0)), tree.root,
                        abi_encode(["address", "uint256"], [account, amount])) is True


def test_claims_multiproofs_verify_on_chain(harness: Contract) -> None:
    tree = _claims(21)
    for subset in ([3], [0, 1], [2, 9, 17, 20], list(range(21))):
        mp = compute_multiproof(tree.tree, [tree.values[i].tree_index for i in subset])
        args = (list(mp.proof), list(mp.proof_flags), list(mp.leaves))
        assert harness.call("claims_process_multiproof", *args) == tree.root
        harness.transact("claims_require_multiproof", args[0], args[1], tree.root, args[2])
    # No leaves at all: the "proof" is the root itself and proves nothing (callers must check).
    assert harness.call("claims_process_multiproof", [tree.root], [], []) == tree.root


def test_claims_bad_multiproofs_are_rejected(harness: Contract) -> None:
    tree = _claims(21)
    mp = compute_multiproof(tree.tree, [tree.values[i].tree_index for i in (2, 9, 17)])
    proof, flags, leaves = list(mp.proof), list(mp.proof_flags), list(mp.leaves)
    with pytest.raises(ContractRevert, match="merkle: invalid multiproof"):
        harness.call("claims_process_multiproof", proof, [*flags, True], leaves)
    with pytest.raises(ContractRevert, match="merkle: invalid multiproof"):
        harness.call("claims_process_multiproof", proof, [True] * len(flags), leaves)
    with pytest.raises(ContractRevert, match=INVALID):
        harness.transact("claims_require_multiproof", proof, flags, tree.root, [leaves[1], leaves[0], leaves[2]])
    with pytest.raises(ContractRevert, match=INVALID):
        harness.transact("claims_require_multiproof", proof, flags, tree.root,
                         [leaves[0], leaves[1], compute_keccak256(b"forged")])


# --- sparse state tree ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def state_tree() -> SparseMerkleTree:
    """A depth-32 tree with dense low account ids (as the registry assigns them) and a few far ones."""
    rng = random.Random(32)
    keys = [*range(1, 200), *(rng.randrange(2**32) for _ in range(20)), 2**32 - 1]
    return SparseMerkleTree(32, {k: _v(k) for k in keys})


def test_sparse_hashes_match(harness: Contract) -> None:
    assert harness.call("sparse_leaf_hash", 7, _v(7)) == compute_leaf_hash(7, _v(7))
    assert harness.call("sparse_leaf_hash", 7, EMPTY_VALUE) == EMPTY_VALUE
    assert harness.call("sparse_node_hash", _v(1), _v(2)) == compute_node_hash(_v(1), _v(2))


def test_sparse_inclusion_and_non_inclusion_on_chain(harness: Contract, state_tree: SparseMerkleTree) -> None:
    for key in (1, 128, 199, 2**32 - 1, 0, 200, 2**31 + 12345):
        value = state_tree.get(key)
        bitmap, siblings = _sparse_args(state_tree.get_proof(key))
        assert harness.call("sparse_compute_root", key, value, bitmap, siblings, 32) == state_tree.root
        assert harness.call("sparse_verify", state_tree.root, key, value, bitmap, siblings, 32) is True
    bitmap, siblings = _sparse_args(state_tree.get_proof(0))
    harness.transact("sparse_require", state_tree.root, 0, EMPTY_VALUE, bitmap, siblings, 32)


def test_sparse_tampering_is_rejected(harness: Contract, state_tree: SparseMerkleTree) -> None:
    root, key = state_tree.root, 77
    bitmap, siblings = _sparse_args(state_tree.get_proof(key))
    flipped = [siblings[0], compute_keccak256(b"x"), *siblings[2:]]
    movable = next(i for i in range(31) if bitmap >> i & 1 and not bitmap >> (i + 1) & 1)
    cases: list[tuple[Any, ...]] = [
        (root, key, _v(78), bitmap, siblings),  # wrong value
        (root, 78, _v(77), bitmap, siblings),  # wrong key (a neighbour's slot)
        (root, key, EMPTY_VALUE, bitmap, siblings),  # claims absence of a present key
        (root, 200, _v(77), bitmap, siblings),  # absent key, present value
        (root, key, _v(77), bitmap, flipped),  # tampered sibling
        (root, key, _v(77), bitmap ^ (3 << movable), siblings),  # a sibling moved up a level
        (compute_keccak256(b"root"), key, _v(77), bitmap, siblings),
    ]
    for args in cases:
        assert harness.call("sparse_verify", *args, 32) is False
        with pytest.raises(ContractRevert) as info:
            harness.transact("sparse_require", *args, 32)
        assert info.value.reason == INVALID


def test_sparse_malformed_proofs_revert(harness: Contract, state_tree: SparseMerkleTree) -> None:
    root, key = state_tree.root, 77
    bitmap, siblings = _sparse_args(state_tree.get_proof(key))
    for args, reason in [
        ((root, key, _v(77), bitmap, [*siblings, siblings[0]], 32), INVALID),  # extra sibling
        ((root, key, _v(77), bitmap, siblings[:-1], 32), INVALID),  # missing sibling
        ((root, key, _v(77), bitmap | 1 << 32, siblings, 32), INVALID),  # bitmap past the depth
        ((root, key + 2**32, _v(77), bitmap, siblings, 32), "merkle: key out of range"),  # no wrap-around
        ((root, key, _v(77), bitmap, siblings, 0), "merkle: invalid depth"),
        ((root, key, _v(77), bitmap, siblings, 257), "merkle: invalid depth"),
    ]:
        with pytest.raises(ContractRevert) as info:
            harness.call("sparse_verify", *args)
        assert info.value.reason == reason


def test_sparse_internal_node_cannot_pose_as_a_leaf(harness: Contract) -> None:
    tree = SparseMerkleTree(8, {0: _v(0), 1: _v(1), 2: _v(2)})
    proof = tree.get_proof(0)
    internal = tree.get_node(1, 0)  # parent of leaves 0 and 1
    # Present the level-1 node as key 0's value with the proof above it, at depth 8 and 7.
    for depth in (8, 7):
        assert harness.call("sparse_verify", tree.root, 0, internal, proof.bitmap >> 1,
                            list(proof.siblings[1:]), depth) is False


def test_sparse_root_after_update_matches_python(harness: Contract) -> None:
    tree = SparseMerkleTree(32, {k: _v(k) for k in range(1, 50)})
    for key, new in [(7, _v(700)), (50, _v(50)), (3_000_000_000, _v(3)), (7, EMPTY_VALUE)]:
        old, (bitmap, siblings), root = tree.get(key), _sparse_args(tree.get_proof(key)), tree.root
        got = harness.call("sparse_root_after_update", root, key, old, new, bitmap, siblings, 32)
        assert got == tree.update(key, new)
    bitmap, siblings = _sparse_args(tree.get_proof(9))
    with pytest.raises(ContractRevert, match=INVALID):
        harness.call("sparse_root_after_update", tree.root, 9, _v(10), _v(1), bitmap, siblings, 32)


@pytest.mark.parametrize("depth", [1, 8, 256])
def test_sparse_other_depths(harness: Contract, depth: int) -> None:
    keys = [0, 1] if depth == 1 else [3, 4, 2**depth - 1]
    if depth == 256:
        keys = [int.from_bytes(compute_keccak256(bytes([i])), "big") for i in range(4)]
    tree = SparseMerkleTree(depth, {k: _v(k % 1000) for k in keys[:-1]})
    for key in keys:
        bitmap, siblings = _sparse_args(tree.get_proof(key))
        assert harness.call("sparse_verify", tree.root, key, tree.get(key), bitmap, siblings, depth) is True
    key = keys[-1]
    bitmap, siblings = _sparse_args(tree.get_proof(key))
    got = harness.call("sparse_root_after_update", tree.root, key, EMPTY_VALUE, _v(9), bitmap, siblings, depth)
    assert got == tree.update(key, _v(9))


# --- fuzz (in-process only: one deployment shared across examples) --------------------------------


@pytest.fixture(scope="module")
def fuzz_harness() -> Iterator[Contract]:
    chain = InProcessChain()
    yield chain.deploy("mocks/MerkleHarness")
    chain.close()


@settings(max_examples=25, deadline=None)
@given(
    keys=st.sets(st.integers(0, 2**16 - 1), min_size=1, max_size=12),
    probe=st.integers(0, 2**16 - 1),
    new=st.binary(min_size=32, max_size=32),
)
def test_fuzz_sparse_proofs_and_updates(fuzz_harness: Contract, keys: set[int], probe: int, new: bytes) -> None:
    tree = SparseMerkleTree(16, {k: _v(k) for k in keys})
    old, root = tree.get(probe), tree.root
    bitmap, siblings = _sparse_args(tree.get_proof(probe))
    assert fuzz_harness.call("sparse_verify", root, probe, old, bitmap, siblings, 16) is True
    assert fuzz_harness.call("sparse_verify", root, probe, _v(probe + 1), bitmap, siblings, 16) is False
    got = fuzz_harness.call("sparse_root_after_update", root, probe, old, new, bitmap, siblings, 16)
    assert got == tree.update(probe, Digest(new))


# --- gas -----------------------------------------------------------------------------------------


def _execution_gas(harness: Contract, gas_used: int, fn: str, *args: Any) -> int:
    """Gas above the transaction's intrinsic cost (21000 + calldata)."""
    intrinsic, _floor = compute_intrinsic_gas(harness.encode(fn, *args), is_create=False)
    return gas_used - intrinsic


def test_gas_depth32_sparse_proof_and_claims_proof(harness: Contract, state_tree: SparseMerkleTree) -> None:
    key = 100
    bitmap, siblings = _sparse_args(state_tree.get_proof(key))
    sparse_args = (state_tree.root, key, state_tree.get(key), bitmap, siblings, 32)
    sparse = harness.transact("sparse_require", *sparse_args)
    claims = _claims(1000)
    account, amount = claims.values[3].value
    claim_args = (list(claims.get_proof(3)), claims.root, account, amount)
    claim = harness.transact("claims_require", *claim_args)
    sparse_exec = _execution_gas(harness, sparse.gas_used, "sparse_require", *sparse_args)
    claim_exec = _execution_gas(harness, claim.gas_used, "claims_require", *claim_args)
    print(f"\nsparse depth-32 proof ({len(siblings)} non-default siblings): "
          f"tx {sparse.gas_used} gas, execution {sparse_exec}")
    print(f"claims proof (1000 leaves, {len(claim_args[0])} siblings): tx {claim.gas_used} gas, execution {claim_exec}")
    # Budgets: loose enough for compiler drift, tight enough to catch a regression.
    assert sparse_exec < 30_000
    assert claim_exec < 12_000
