"""Sparse state tree: the hashing spec, storage, proofs and their failure modes."""

from __future__ import annotations

import pytest

from clearhouse.errors import InvalidProof, MerkleError
from clearhouse.merkle import (
    EMPTY_VALUE,
    CompactProof,
    MultiCompactProof,
    SparseMerkleTree,
    compute_default_hashes,
    compute_key,
    compute_leaf_hash,
    compute_node_hash,
    compute_proof_bytes,
    compute_proof_from_bytes,
    compute_updated_root,
    compute_updated_root_many,
    get_multi_compact_proof,
    is_excluded,
    is_included,
    is_included_many,
    process_compact_proof,
    process_multi_compact_proof,
)
from clearhouse.merkle.hashing import compute_keccak256
from clearhouse.types import Digest

# Regression vector for docs/protocol.md: the root of the empty depth-32 state tree.
EMPTY_ROOT_32 = "7c1d0e8a93ea9c09cc13b91ead8f72de66a33cb695c30934dc2d75bffac1248e"


def _v(n: int) -> Digest:
    return compute_keccak256(b"value" + n.to_bytes(8, "big"))


def test_hashing_follows_the_spec() -> None:
    key, value = 5, _v(1)
    assert compute_leaf_hash(key, value) == compute_keccak256(b"\x00" + key.to_bytes(32, "big") + value)
    assert compute_leaf_hash(key, EMPTY_VALUE) == bytes(32)
    assert compute_node_hash(_v(1), _v(2)) == compute_keccak256(b"\x01" + _v(1) + _v(2))
    assert compute_node_hash(_v(1), _v(2)) != compute_node_hash(_v(2), _v(1))
    defaults = compute_default_hashes(32)
    assert len(defaults) == 33 and defaults[0] == bytes(32)
    assert all(defaults[i + 1] == compute_node_hash(defaults[i], defaults[i]) for i in range(32))
    assert defaults[32].hex() == EMPTY_ROOT_32
    assert SparseMerkleTree().root.hex() == EMPTY_ROOT_32


def test_hand_built_depth_two_tree() -> None:
    tree = SparseMerkleTree(2)
    tree.update(2, _v(7))  # path: level 0 left (bit 0 = 0), level 1 right (bit 1 = 1)
    leaf = compute_leaf_hash(2, _v(7))
    zero = bytes(32)
    expected = compute_node_hash(compute_node_hash(zero, zero), compute_node_hash(leaf, zero))
    assert tree.root == expected
    assert tree.get_proof(2) == CompactProof(0, ())
    assert tree.get_proof(3) == CompactProof(0b01, (leaf,))
    assert tree.get_proof(0) == CompactProof(0b10, (compute_node_hash(leaf, zero),))


def test_get_update_delete() -> None:
    tree = SparseMerkleTree(8)
    empty_root = tree.root
    assert tree.get(3) == EMPTY_VALUE and 3 not in tree and len(tree) == 0
    tree.update(3, _v(1))
    tree.update(200, _v(2))
    assert tree.get(3) == _v(1) and 3 in tree and len(tree) == 2
    assert list(tree.items()) == [(3, _v(1)), (200, _v(2))]
    tree.update(3, EMPTY_VALUE)
    tree.update(200, EMPTY_VALUE)
    assert tree.root == empty_root and len(tree) == 0
    assert not tree._nodes  # nothing but defaults left: storage is sparse
    assert 999 not in tree


def test_storage_holds_only_non_default_nodes() -> None:
    tree = SparseMerkleTree(32)
    tree.update(1, _v(1))
    assert len(tree._nodes) == 33  # one path: leaf + 32 ancestors
    tree.update(0, _v(0))
    assert len(tree._nodes) == 33 + 1  # the new leaf; ancestors are shared and rewritten


def test_constructor_items_and_later_entries_win() -> None:
    a = SparseMerkleTree(16, {1: _v(1), 2: _v(2)})
    b = SparseMerkleTree(16)
    b.update_many([(1, _v(9)), (2, _v(2)), (1, _v(1))])
    assert a.root == b.root


def test_proofs_of_inclusion_and_non_inclusion() -> None:
    tree = SparseMerkleTree(32, {k: _v(k) for k in (0, 1, 7, 2**31, 2**32 - 1)})
    for key in (0, 1, 7, 2**31, 2**32 - 1):
        proof = tree.get_proof(key)
        assert is_included(tree.root, key, _v(key), proof, 32)
        assert not is_included(tree.root, key, _v(key + 1), proof, 32)
        assert not is_excluded(tree.root, key, proof, 32)
    for key in (2, 6, 2**31 + 1):
        proof = tree.get_proof(key)
        assert is_excluded(tree.root, key, proof, 32)
        assert not is_included(tree.root, key, _v(key), proof, 32)


def test_proof_for_one_key_does_not_prove_another() -> None:
    tree = SparseMerkleTree(8, {4: _v(4), 5: _v(5)})
    assert not is_included(tree.root, 5, _v(5), tree.get_proof(4), 8)
    assert not is_included(tree.root, 4 + 256, _v(4), tree.get_proof(4), 8)  # out of range: no wrap-around


def test_internal_node_cannot_pose_as_a_leaf() -> None:
    tree = SparseMerkleTree(4, {0: _v(0), 1: _v(1)})
    internal = tree.get_node(1, 0)  # parent of leaves 0 and 1
    upper = tree.get_proof(0)
    # Drop the level-0 sibling and present the level-1 node as key 0's "value": never verifies,
    # at the full depth nor at a shortened one.
    shortened = CompactProof(upper.bitmap >> 1, upper.siblings[1:])
    assert not is_included(tree.root, 0, internal, shortened, 4)
    assert not is_included(tree.root, 0, internal, shortened, 3)


def test_malformed_proofs_raise() -> None:
    tree = SparseMerkleTree(8, {1: _v(1), 2: _v(2)})
    proof = tree.get_proof(1)
    with pytest.raises(InvalidProof, match="beyond depth"):
        process_compact_proof(1, _v(1), CompactProof(proof.bitmap | 1 << 8, proof.siblings), 8)
    with pytest.raises(InvalidProof, match="disagree"):
        process_compact_proof(1, _v(1), CompactProof(proof.bitmap, (*proof.siblings, _v(0))), 8)
    with pytest.raises(MerkleError, match="does not fit"):
        process_compact_proof(256, _v(1), proof, 8)
    with pytest.raises(MerkleError, match="depth"):
        process_compact_proof(1, _v(1), proof, 0)
    with pytest.raises(MerkleError, match="32 bytes"):
        process_compact_proof(1, Digest(b"short"), proof, 8)
    assert not is_included(tree.root, 1, _v(1), CompactProof(-1, ()), 8)


def test_non_canonical_proof_with_explicit_default_still_verifies() -> None:
    tree = SparseMerkleTree(4, {0: _v(0)})
    explicit = CompactProof(0b0001, (compute_default_hashes(4)[0],))
    assert tree.get_proof(0) == CompactProof(0, ())
    assert is_included(tree.root, 0, _v(0), explicit, 4)


def test_updated_root_matches_the_tree() -> None:
    tree = SparseMerkleTree(16, {k: _v(k) for k in range(0, 100, 7)})
    for key, new in [(7, _v(70)), (8, _v(80)), (14, EMPTY_VALUE)]:
        old, proof, old_root = tree.get(key), tree.get_proof(key), tree.root
        assert compute_updated_root(old_root, key, old, new, proof, 16) == tree.update(key, new)
    with pytest.raises(InvalidProof, match="old value"):
        compute_updated_root(tree.root, 21, _v(999), _v(1), tree.get_proof(21), 16)


def test_proof_bytes_round_trip_and_reject_garbage() -> None:
    tree = SparseMerkleTree(32, {k: _v(k) for k in (3, 9, 1000)})
    proof = tree.get_proof(9)
    data = compute_proof_bytes(proof)
    assert len(data) == 32 + 32 * len(proof.siblings)
    assert compute_proof_from_bytes(data, 32) == proof
    for bad in (b"", data[:-1], data + bytes(32), (1 << 40).to_bytes(32, "big")):
        with pytest.raises(InvalidProof):
            compute_proof_from_bytes(bad, 32)


def test_keys() -> None:
    assert compute_key(b"\x01\x00", 16) == 256
    assert compute_key(2**32 - 1, 32) == 2**32 - 1
    for bad, depth in [(2**32, 32), (-1, 32), (b"\x01" * 33, 256), (True, 8), (b"\x01\x00", 8)]:
        with pytest.raises(MerkleError):
            compute_key(bad, depth)  # type: ignore[arg-type]
    with pytest.raises(MerkleError):
        SparseMerkleTree(257)


def test_bytes32_keys_at_depth_256() -> None:
    key = compute_keccak256(b"order")
    tree = SparseMerkleTree(256)
    tree.update(key, _v(1))
    assert tree.get(key) == _v(1) and tree.get(int.from_bytes(key, "big")) == _v(1)
    proof = tree.get_proof(key)
    assert proof == CompactProof(0, ())
    assert is_included(tree.root, key, _v(1), proof, 256)
    other = compute_keccak256(b"other order")
    assert is_excluded(tree.root, other, tree.get_proof(other), 256)


def test_multi_key_proof_shares_siblings() -> None:
    tree = SparseMerkleTree(8, {k: _v(k) for k in (0, 1, 2, 100, 255)})
    proof = get_multi_compact_proof(tree, [1, 0, 3])
    assert proof.keys == (0, 1, 3)
    # 0 and 1 pair up; 3 meets them at level 1 via 2's parent; above that one path to the root.
    singles = sum(len(tree.get_proof(k).siblings) for k in (0, 1, 3))
    assert len(proof.siblings) < singles
    values = {0: _v(0), 1: _v(1), 3: EMPTY_VALUE}
    assert is_included_many(tree.root, values, proof, 8)
    assert not is_included_many(tree.root, {**values, 3: _v(3)}, proof, 8)
    assert not is_included_many(tree.root, {0: _v(0), 1: _v(1)}, proof, 8)  # keys must match exactly
    old_root, new = tree.root, {0: EMPTY_VALUE, 1: _v(11), 3: _v(3)}
    assert compute_updated_root_many(old_root, values, new, proof, 8) == tree.update_many(new.items())


def test_multi_key_proof_rejects_bad_shapes() -> None:
    tree = SparseMerkleTree(8, {k: _v(k) for k in (0, 5, 77)})
    proof = get_multi_compact_proof(tree, [5, 77])
    values = {5: _v(5), 77: _v(77)}
    assert process_multi_compact_proof(values, proof, 8) == tree.root
    for bad in (
        MultiCompactProof(proof.keys, proof.flags, (*proof.siblings, _v(1))),  # extra sibling
        MultiCompactProof(proof.keys, proof.flags, proof.siblings[:-1]),  # missing sibling
        MultiCompactProof(proof.keys, proof.flags | 1 << 40, proof.siblings),  # flags past the walk
    ):
        with pytest.raises(InvalidProof):
            process_multi_compact_proof(values, bad, 8)
    with pytest.raises(InvalidProof):
        get_multi_compact_proof(tree, [])
    with pytest.raises(InvalidProof, match="old values"):
        compute_updated_root_many(tree.root, {5: _v(6), 77: _v(77)}, values, proof, 8)


def test_get_node_bounds() -> None:
    tree = SparseMerkleTree(4, {9: _v(9)})
    assert tree.get_node(4, 0) == tree.root
    assert tree.get_node(0, 9) == compute_leaf_hash(9, _v(9))
    assert tree.get_node(2, 0) == compute_default_hashes(4)[2]
    for level, index in [(5, 0), (-1, 0), (0, 16), (3, 2)]:
        with pytest.raises(MerkleError):
            tree.get_node(level, index)
