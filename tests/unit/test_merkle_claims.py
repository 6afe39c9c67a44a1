"""Claims tree: pinned OpenZeppelin vectors, validation paths and error types (no node needed)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from clearhouse.errors import InvalidProof, MerkleError, UnknownLeaf
from clearhouse.merkle import (
    ClaimsTree,
    MultiProof,
    ValueMultiProof,
    compute_claim_leaf_hash,
    compute_pair_hash,
    is_valid_claim,
    is_valid_claim_multiproof,
    process_multiproof,
    process_proof,
)
from clearhouse.merkle.claims import compute_multiproof, compute_proof, compute_tree, is_valid_tree
from clearhouse.merkle.hashing import compute_keccak256
from clearhouse.types import Digest

ENCODING = ["address", "uint256"]
README_VALUES = [
    ["0x1111111111111111111111111111111111111111", "5000000000000000000"],
    ["0x2222222222222222222222222222222222222222", "2500000000000000000"],
]
# The example in @openzeppelin/merkle-tree's README, computed there with the JS library.
README_ROOT = "0xd4dee0beab2d53f2cc83e567171bd2820e49898130a22622b10ead383e90bd77"


def _d(n: int) -> Digest:
    return compute_keccak256(n.to_bytes(32, "big"))


def test_readme_vector() -> None:
    tree = ClaimsTree.of(README_VALUES, ENCODING)
    assert "0x" + tree.root.hex() == README_ROOT
    assert tree.values[0].value == ("0x1111111111111111111111111111111111111111", 5 * 10**18)
    assert tree.dump()["values"][0] == {"value": README_VALUES[0], "treeIndex": 1}


def test_leaf_is_double_hashed_abi_encoding() -> None:
    addr, amount = "0x1111111111111111111111111111111111111111", 7
    encoded = bytes(12) + bytes.fromhex(addr[2:]) + amount.to_bytes(32, "big")
    assert compute_claim_leaf_hash(ENCODING, [addr, amount]) == compute_keccak256(compute_keccak256(encoded))


def test_pair_hash_is_sorted_and_commutative() -> None:
    a, b = sorted([_d(1), _d(2)])
    assert compute_pair_hash(a, b) == compute_pair_hash(b, a) == compute_keccak256(a + b)


def test_layout_puts_leaves_backwards_at_the_end() -> None:
    leaves = [_d(i) for i in range(5)]
    tree = compute_tree(leaves)
    assert len(tree) == 9
    assert list(tree[4:]) == leaves[::-1]
    assert tree[3] == compute_pair_hash(tree[7], tree[8])
    assert tree[0] == compute_pair_hash(tree[1], tree[2])
    assert is_valid_tree(tree)
    for index in range(4, 9):
        assert process_proof(tree[index], compute_proof(tree, index)) == tree[0]


def test_single_leaf_tree_is_its_own_root() -> None:
    tree = ClaimsTree.of(README_VALUES[:1], ENCODING)
    assert tree.tree == (tree.root,) and tree.get_proof(0) == ()
    assert tree.get_multiproof([0]) == ValueMultiProof((tree.values[0].value,), (), ())


def test_empty_multiproof_is_the_root_and_proves_nothing() -> None:
    tree = ClaimsTree.of(README_VALUES, ENCODING)
    assert tree.get_multiproof([]) == ValueMultiProof((), (tree.root,), ())
    assert process_multiproof(MultiProof((), (tree.root,), ())) == tree.root


def test_unsorted_leaves_keep_insertion_order() -> None:
    values = [[f"0x{i:040x}", i] for i in range(1, 6)]
    tree = ClaimsTree.of(values, ENCODING, sort_leaves=False)
    assert [v.tree_index for v in tree.values] == [8, 7, 6, 5, 4]


def test_lookup_errors() -> None:
    tree = ClaimsTree.of(README_VALUES, ENCODING)
    with pytest.raises(UnknownLeaf):
        tree.get_proof(["0x3333333333333333333333333333333333333333", 1])
    with pytest.raises(UnknownLeaf):
        tree.get_proof(2)
    with pytest.raises(KeyError):  # UnknownLeaf is also a KeyError
        tree.get_multiproof([-1])
    with pytest.raises(MerkleError, match="duplicated"):
        tree.get_multiproof([0, 0])
    with pytest.raises(MerkleError, match="not a leaf"):
        compute_proof(tree.tree, 0)
    with pytest.raises(MerkleError, match="not a leaf"):
        compute_multiproof(tree.tree, [0])
    with pytest.raises(MerkleError, match="at least one leaf"):
        ClaimsTree.of([], ENCODING)


@pytest.mark.parametrize(
    "value",
    [
        ["0x11111111111111111111111111111111111111", 1],  # 19-byte address
        ["0xAaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", 1],  # bad checksum
        ["0x1111111111111111111111111111111111111111", -1],  # negative uint
        ["0x1111111111111111111111111111111111111111", 2**256],  # too wide
        ["0x1111111111111111111111111111111111111111", True],  # bool is not an integer
        ["0x1111111111111111111111111111111111111111", "12a"],
        ["0x1111111111111111111111111111111111111111"],  # too few values
        "0x1111111111111111111111111111111111111111",
    ],
)
def test_bad_values_are_rejected(value: Any) -> None:
    with pytest.raises(MerkleError):
        ClaimsTree.of([value], ENCODING)
    assert not is_valid_claim(_d(0), ENCODING, value, ())


def test_bad_leaf_encoding_is_rejected() -> None:
    with pytest.raises(MerkleError, match="bad ABI type"):
        ClaimsTree.of([[1]], ["uint257"])


def test_values_accept_python_and_json_forms_alike() -> None:
    as_json = ClaimsTree.of([["0x" + "ab" * 32, "0x10", "0x" + "cd" * 20]], ["bytes32", "uint256", "address"])
    as_python = ClaimsTree.of([[b"\xab" * 32, 16, bytes.fromhex("cd" * 20)]], ["bytes32", "uint256", "address"])
    assert as_json == as_python


def test_tampered_proofs_do_not_verify() -> None:
    values = [[f"0x{i:040x}", i * 10] for i in range(1, 12)]
    tree = ClaimsTree.of(values, ENCODING)
    proof = tree.get_proof(3)
    assert tree.verify(3, proof)
    assert not tree.verify(3, proof[:-1])
    assert not tree.verify(3, (*proof[:1], _d(99), *proof[2:]))
    assert not tree.verify(values[4], proof)
    assert not is_valid_claim(tree.root, ENCODING, [values[3][0], 31], proof)
    # An internal node with its sibling path reaches the root as a raw hash, but no claim
    # value can stand for it: values are double-hashed before they become leaves.
    internal = tree.tree[1]
    assert process_proof(internal, (tree.tree[2],)) == tree.root
    assert not is_valid_claim(tree.root, ["bytes32"], [internal], (tree.tree[2],))
    left, right = sorted([tree.tree[3], tree.tree[4]])
    assert not is_valid_claim(tree.root, ["bytes32", "bytes32"], [left, right], (tree.tree[2],))


def test_malformed_multiproofs_raise_invalid_proof() -> None:
    values = [[f"0x{i:040x}", i] for i in range(1, 9)]
    tree = ClaimsTree.of(values, ENCODING)
    mp = compute_multiproof(tree.tree, [values_index.tree_index for values_index in tree.values[:3]])
    assert process_multiproof(mp) == tree.root
    bad_shapes = [
        MultiProof(mp.leaves, mp.proof, (*mp.proof_flags, True)),  # counts disagree
        MultiProof(mp.leaves, mp.proof, (True,) * len(mp.proof_flags)),  # queue runs dry
        MultiProof(mp.leaves[:1], (*mp.proof, mp.leaves[1]), tuple(not f for f in mp.proof_flags)),
        MultiProof((mp.leaves[0], mp.leaves[1]), (_d(1),), (False, False)),  # runs out of proof
    ]
    for bad in bad_shapes:
        with pytest.raises(InvalidProof):
            process_multiproof(bad)
        assert not is_valid_claim_multiproof(tree.root, ENCODING, ValueMultiProof((), bad.proof, bad.proof_flags))
    with pytest.raises(MerkleError, match="32 bytes"):
        process_multiproof(MultiProof((b"\x00",), (), ()))  # type: ignore[arg-type]


def test_dump_round_trip_and_validation() -> None:
    tree = ClaimsTree.of([[f"0x{i:040x}", i] for i in range(1, 7)], ENCODING)
    dump = tree.dump()
    assert ClaimsTree.load(dump) == tree

    def broken(edit: Any) -> dict[str, Any]:
        data = copy.deepcopy(dump)
        edit(data)
        return data

    bad_dumps = [
        broken(lambda d: d.update(format="simple-v1")),
        broken(lambda d: d.pop("leafEncoding")),
        broken(lambda d: d["values"][0].update(value=[d["values"][0]["value"][0], "999"])),
        broken(lambda d: d["values"][0].update(treeIndex=0)),
        broken(lambda d: d["tree"].__setitem__(1, "0x" + "00" * 32)),
        broken(lambda d: d["tree"].__setitem__(2, "0x1234")),
        broken(lambda d: d["values"][1].pop("treeIndex")),
    ]
    for bad in bad_dumps:
        with pytest.raises(MerkleError):
            ClaimsTree.load(bad)


def test_render_draws_the_heap() -> None:
    tree = ClaimsTree.of([*README_VALUES, ["0x3333333333333333333333333333333333333333", 1]], ENCODING)
    lines = tree.render().splitlines()
    assert [line.split(")")[0].lstrip("│├└─ ") for line in lines] == ["0", "1", "3", "4", "2"]
    assert lines[1].startswith("├─ 1) 0x") and lines[2].startswith("│  ├─ 3) 0x")


def test_nodes_must_be_32_byte_hex() -> None:
    with pytest.raises(MerkleError, match="not hex"):
        process_proof("0xzz", ())  # type: ignore[arg-type]
    with pytest.raises(MerkleError, match="32 bytes"):
        compute_tree([Digest(b"\x01" * 31)])
    assert process_proof("0x" + "11" * 32, ()) == b"\x11" * 32  # type: ignore[arg-type]
