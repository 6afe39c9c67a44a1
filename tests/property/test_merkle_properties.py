"""Properties of both Merkle trees, checked with hypothesis.

Claims tree: the root is a function of the set of leaves (not their order), distinct sets give
distinct roots, and proofs verify exactly their own leaf. Sparse tree: the root is a function of the
key→value map, batch and sequential updates agree, every slot (full or empty) has a proof that
verifies, and nothing else does.
"""

from __future__ import annotations

from typing import Any

from hypothesis import assume, given
from hypothesis import strategies as st

from clearhouse.merkle import (
    EMPTY_VALUE,
    ClaimsTree,
    CompactProof,
    SparseMerkleTree,
    ValueMultiProof,
    compute_default_hashes,
    compute_proof_bytes,
    compute_proof_from_bytes,
    compute_updated_root,
    compute_updated_root_many,
    get_multi_compact_proof,
    is_excluded,
    is_included,
    is_included_many,
    is_valid_claim,
    is_valid_claim_multiproof,
)
from clearhouse.merkle.hashing import compute_keccak256
from clearhouse.types import Digest

ENCODING = ("address", "uint256")
DEPTH = 10  # small, so random keys share long paths and collide on slots

claims = st.tuples(st.binary(min_size=20, max_size=20).map(lambda b: "0x" + b.hex()), st.integers(0, 2**256 - 1))
claim_sets = st.frozensets(claims, min_size=1, max_size=24)
digests = st.binary(min_size=32, max_size=32).map(Digest)
keys = st.integers(0, 2**DEPTH - 1)
states = st.dictionaries(keys, digests, max_size=24)


# --- claims tree ---------------------------------------------------------------------------------


@given(a=claim_sets, b=claim_sets)
def test_claims_distinct_sets_have_distinct_roots(a: frozenset[Any], b: frozenset[Any]) -> None:
    assume({(x.lower(), n) for x, n in a} != {(x.lower(), n) for x, n in b})
    assert ClaimsTree.of(a, ENCODING).root != ClaimsTree.of(b, ENCODING).root


@given(values=claim_sets, data=st.data())
def test_claims_root_ignores_insertion_order(values: frozenset[Any], data: st.DataObject) -> None:
    ordered = list(values)
    shuffled = data.draw(st.permutations(ordered))
    assert ClaimsTree.of(ordered, ENCODING).root == ClaimsTree.of(shuffled, ENCODING).root


@given(values=claim_sets, data=st.data())
def test_claims_proof_verifies_only_its_own_leaf(values: frozenset[Any], data: st.DataObject) -> None:
    tree = ClaimsTree.of(values, ENCODING)
    i = data.draw(st.integers(0, len(tree) - 1))
    proof = tree.get_proof(i)
    value = tree.values[i].value
    assert is_valid_claim(tree.root, ENCODING, value, proof)
    assert not is_valid_claim(tree.root, ENCODING, (value[0], (value[1] + 1) % 2**256), proof)
    for j, other in enumerate(tree):
        if j != i:
            assert not is_valid_claim(tree.root, ENCODING, other, proof)


@given(values=claim_sets.filter(lambda s: len(s) >= 2), data=st.data())
def test_claims_internal_node_is_not_a_claim(values: frozenset[Any], data: st.DataObject) -> None:
    tree = ClaimsTree.of(values, ENCODING)
    internal = data.draw(st.integers(0, len(tree) - 2))  # indices 0..n-2 are internal nodes
    left, right = sorted([tree.tree[2 * internal + 1], tree.tree[2 * internal + 2]])
    path: list[Digest] = []
    index = internal
    while index > 0:
        path.append(tree.tree[index + 1 if index % 2 else index - 1])
        index = (index - 1) // 2
    assert not is_valid_claim(tree.root, ("bytes32",), (tree.tree[internal],), path)
    assert not is_valid_claim(tree.root, ("bytes32", "bytes32"), (left, right), path)


@given(values=claim_sets, data=st.data())
def test_claims_multiproofs_verify_and_reject_foreign_leaves(values: frozenset[Any], data: st.DataObject) -> None:
    tree = ClaimsTree.of(values, ENCODING)
    subset = data.draw(st.lists(st.integers(0, len(tree) - 1), unique=True, min_size=1))
    mp = tree.get_multiproof(subset)
    assert sorted(mp.values) == sorted(tree.values[i].value for i in subset)
    assert is_valid_claim_multiproof(tree.root, ENCODING, mp)
    forged = (mp.values[0][0], (mp.values[0][1] + 1) % 2**256)
    assert not is_valid_claim_multiproof(tree.root, ENCODING, ValueMultiProof((forged, *mp.values[1:]),
                                                                              mp.proof, mp.proof_flags))


@given(values=claim_sets, sort_leaves=st.booleans())
def test_claims_dump_round_trips(values: frozenset[Any], sort_leaves: bool) -> None:
    tree = ClaimsTree.of(values, ENCODING, sort_leaves=sort_leaves)
    assert ClaimsTree.load(tree.dump()) == tree


# --- sparse tree ---------------------------------------------------------------------------------


def _tree(state: dict[int, Digest], depth: int = DEPTH) -> SparseMerkleTree:
    tree = SparseMerkleTree(depth)
    tree.update_many(state.items())
    return tree


@given(a=states, b=states)
def test_sparse_distinct_states_have_distinct_roots(a: dict[int, Digest], b: dict[int, Digest]) -> None:
    live_a = {k: v for k, v in a.items() if v != EMPTY_VALUE}
    live_b = {k: v for k, v in b.items() if v != EMPTY_VALUE}
    assume(live_a != live_b)
    assert _tree(a).root != _tree(b).root


@given(state=states, data=st.data())
def test_sparse_insertion_order_does_not_matter(state: dict[int, Digest], data: st.DataObject) -> None:
    order = data.draw(st.permutations(list(state.items())))
    one_by_one = SparseMerkleTree(DEPTH)
    for key, value in order:
        one_by_one.update(key, value)
    assert one_by_one.root == _tree(state).root


@given(start=states, writes=st.lists(st.tuples(keys, st.one_of(digests, st.just(EMPTY_VALUE))), max_size=30))
def test_sparse_batch_update_equals_sequential(start: dict[int, Digest], writes: list[tuple[int, Digest]]) -> None:
    batch, sequential = _tree(start), _tree(start)
    batch.update_many(writes)
    for key, value in writes:
        sequential.update(key, value)
    assert batch.root == sequential.root
    assert batch._nodes == sequential._nodes  # same sparse storage, no stale defaults
    assert batch.root == _tree(dict(batch.items())).root  # and the same as building it fresh


@given(state=states, key=keys)
def test_sparse_every_slot_has_a_proof_and_nothing_else_verifies(state: dict[int, Digest], key: int) -> None:
    tree = _tree(state)
    value = tree.get(key)
    proof = tree.get_proof(key)
    assert is_included(tree.root, key, value, proof, DEPTH)
    assert is_excluded(tree.root, key, proof, DEPTH) == (value == EMPTY_VALUE)
    assert not is_included(tree.root, key, compute_keccak256(value), proof, DEPTH)  # a different value
    for other in ((key + 1) % 2**DEPTH, key ^ 1 << (DEPTH - 1)):  # a neighbour and a far key
        assert not is_included(tree.root, other, value if value != EMPTY_VALUE else compute_keccak256(b"x"),
                               proof, DEPTH)


@given(state=states.filter(bool), data=st.data())
def test_sparse_internal_node_is_not_a_leaf(state: dict[int, Digest], data: st.DataObject) -> None:
    tree = _tree(state)
    key = data.draw(st.sampled_from(sorted(state)))
    level = data.draw(st.integers(1, DEPTH - 1))
    node = tree.get_node(level, key >> level)
    full = tree.get_proof(key)
    below = (full.bitmap & ((1 << level) - 1)).bit_count()
    upper = CompactProof(full.bitmap >> level, full.siblings[below:])  # the node's own path to the root
    # Presented as a value, at the full depth or at the shortened one, the node never verifies:
    # leaves are hashed under the 0x00 prefix and nodes under 0x01.
    for depth in (DEPTH, DEPTH - level):
        for slot in (key, key >> level):
            assert not is_included(tree.root, slot % 2**depth, node, upper, depth)


@given(state=states, key=keys, new=st.one_of(digests, st.just(EMPTY_VALUE)))
def test_sparse_updated_root_from_a_proof_equals_the_tree(state: dict[int, Digest], key: int, new: Digest) -> None:
    tree = _tree(state)
    old, proof, root = tree.get(key), tree.get_proof(key), tree.root
    assert compute_updated_root(root, key, old, new, proof, DEPTH) == tree.update(key, new)


@given(state=states, key=keys)
def test_sparse_compact_proofs_are_canonical_and_round_trip(state: dict[int, Digest], key: int) -> None:
    tree = _tree(state)
    proof = tree.get_proof(key)
    defaults = compute_default_hashes(DEPTH)
    levels = [i for i in range(DEPTH) if proof.bitmap >> i & 1]
    assert len(levels) == len(proof.siblings)
    assert all(sibling != defaults[level] for level, sibling in zip(levels, proof.siblings, strict=True))
    assert compute_proof_from_bytes(compute_proof_bytes(proof), DEPTH) == proof


@given(state=st.dictionaries(st.integers(0, 2**32 - 1), digests, min_size=1, max_size=8), data=st.data())
def test_sparse_depth_32_proofs(state: dict[int, Digest], data: st.DataObject) -> None:
    tree = _tree(state, 32)
    key = data.draw(st.one_of(st.sampled_from(sorted(state)), st.integers(0, 2**32 - 1)))
    assert is_included(tree.root, key, tree.get(key), tree.get_proof(key), 32)


@given(state=states, proven=st.sets(keys, min_size=1, max_size=8),
       new=st.dictionaries(keys, st.one_of(digests, st.just(EMPTY_VALUE)), max_size=8))
def test_sparse_multi_key_proofs_verify_and_update(
    state: dict[int, Digest], proven: set[int], new: dict[int, Digest]
) -> None:
    tree = _tree(state)
    proof = get_multi_compact_proof(tree, proven)
    old = {k: tree.get(k) for k in proven}
    assert is_included_many(tree.root, old, proof, DEPTH)
    some = min(proven)
    assert not is_included_many(tree.root, {**old, some: compute_keccak256(old[some])}, proof, DEPTH)
    writes = {k: new.get(k, old[k]) for k in proven}
    root = tree.root
    assert compute_updated_root_many(root, old, writes, proof, DEPTH) == tree.update_many(writes.items())
