# pragma version ~=0.4.3
"""
@title Merkle verifier harness (tests only)
@custom:contract-name MerkleHarness
@license MIT
@notice Exposes `lib/merkle_claims` and `lib/sparse_merkle` for contract tests
        and gas measurements. Never deployed outside tests.
"""

from lib import merkle_claims
from lib import sparse_merkle


@external
@pure
def claim_leaf(account: address, amount: uint256) -> bytes32:
    """
    @dev The standard leaf of an `(address, uint256)` claim.
    @param account The claimant.
    @param amount The claimed amount.
    @return bytes32 `keccak256(keccak256(abi_encode(account, amount)))`.
    """
    return merkle_claims._leaf(keccak256(abi_encode(account, amount)))


@external
@pure
def claims_process_proof(proof: DynArray[bytes32, merkle_claims.MAX_PROOF_LENGTH], leaf: bytes32) -> bytes32:
    """
    @dev See `merkle_claims._process_proof`.
    @param proof Sibling hashes from the leaf upwards.
    @param leaf The leaf hash.
    @return bytes32 The implied root.
    """
    return merkle_claims._process_proof(proof, leaf)


@external
@pure
def claims_verify(proof: DynArray[bytes32, merkle_claims.MAX_PROOF_LENGTH], root: bytes32, leaf: bytes32) -> bool:
    """
    @dev See `merkle_claims._verify`.
    @param proof Sibling hashes from the leaf upwards.
    @param root The committed root.
    @param leaf The leaf hash.
    @return bool True if the proof reaches `root`.
    """
    return merkle_claims._verify(proof, root, leaf)


@external
def claims_require(
    proof: DynArray[bytes32, merkle_claims.MAX_PROOF_LENGTH], root: bytes32, account: address, amount: uint256
):
    """
    @dev A withdrawal-style check: builds the `(address, uint256)` leaf on-chain and
         reverts with "merkle: invalid proof" unless it is proven under `root`
         (non-view so a transaction measures its gas).
    @param proof Sibling hashes from the leaf upwards.
    @param root The committed root.
    @param account The claimant.
    @param amount The claimed amount.
    """
    leaf: bytes32 = merkle_claims._leaf(keccak256(abi_encode(account, amount)))
    assert merkle_claims._verify(proof, root, leaf), "merkle: invalid proof"


@external
@pure
def claims_verify_encoded(
    proof: DynArray[bytes32, merkle_claims.MAX_PROOF_LENGTH], root: bytes32, encoded: Bytes[256]
) -> bool:
    """
    @dev Verifies a leaf given as its ABI-encoded values (any leaf encoding),
         hashing them twice as the standard tree does.
    @param proof Sibling hashes from the leaf upwards.
    @param root The committed root.
    @param encoded `abi.encode(values...)` of the leaf.
    @return bool True if the proof reaches `root`.
    """
    return merkle_claims._verify(proof, root, merkle_claims._leaf(keccak256(encoded)))


@external
@pure
def claims_process_multiproof(
    proof: DynArray[bytes32, merkle_claims.MAX_MULTIPROOF_HASHES],
    proof_flags: DynArray[bool, merkle_claims.MAX_MULTIPROOF_FLAGS],
    leaves: DynArray[bytes32, merkle_claims.MAX_MULTIPROOF_LEAVES],
) -> bytes32:
    """
    @dev See `merkle_claims._process_multiproof`.
    @param proof Sibling hashes not derivable from the leaves.
    @param proof_flags One flag per hashing step.
    @param leaves Leaf hashes in descending tree-index order.
    @return bytes32 The implied root.
    """
    return merkle_claims._process_multiproof(proof, proof_flags, leaves)


@external
def claims_require_multiproof(
    proof: DynArray[bytes32, merkle_claims.MAX_MULTIPROOF_HASHES],
    proof_flags: DynArray[bool, merkle_claims.MAX_MULTIPROOF_FLAGS],
    root: bytes32,
    leaves: DynArray[bytes32, merkle_claims.MAX_MULTIPROOF_LEAVES],
):
    """
    @dev Reverts with "merkle: invalid proof" unless the multiproof verifies.
    @param proof Sibling hashes not derivable from the leaves.
    @param proof_flags One flag per hashing step.
    @param root The committed root.
    @param leaves Leaf hashes in descending tree-index order.
    """
    assert merkle_claims._verify_multiproof(proof, proof_flags, root, leaves), "merkle: invalid proof"


@external
@pure
def sparse_leaf_hash(key: uint256, value_hash: bytes32) -> bytes32:
    """
    @dev See `sparse_merkle._leaf_hash`.
    @param key The leaf's key.
    @param value_hash The value hash (zero for "absent").
    @return bytes32 The leaf node.
    """
    return sparse_merkle._leaf_hash(key, value_hash)


@external
@pure
def sparse_node_hash(left: bytes32, right: bytes32) -> bytes32:
    """
    @dev See `sparse_merkle._node_hash`.
    @param left The left child.
    @param right The right child.
    @return bytes32 The parent node.
    """
    return sparse_merkle._node_hash(left, right)


@external
@pure
def sparse_compute_root(
    key: uint256,
    value_hash: bytes32,
    bitmap: uint256,
    siblings: DynArray[bytes32, sparse_merkle.MAX_DEPTH],
    depth: uint256,
) -> bytes32:
    """
    @dev See `sparse_merkle._compute_root`.
    @param key The leaf's key.
    @param value_hash The value hash (zero for "absent").
    @param bitmap Which levels' siblings are listed.
    @param siblings The non-default siblings, lowest level first.
    @param depth The tree's depth.
    @return bytes32 The implied root.
    """
    return sparse_merkle._compute_root(key, value_hash, bitmap, siblings, depth)


@external
@pure
def sparse_verify(
    root: bytes32,
    key: uint256,
    value_hash: bytes32,
    bitmap: uint256,
    siblings: DynArray[bytes32, sparse_merkle.MAX_DEPTH],
    depth: uint256,
) -> bool:
    """
    @dev See `sparse_merkle._verify`.
    @param root The committed root.
    @param key The leaf's key.
    @param value_hash The claimed value hash (zero for "absent").
    @param bitmap Which levels' siblings are listed.
    @param siblings The non-default siblings, lowest level first.
    @param depth The tree's depth.
    @return bool True if the proof reaches `root`.
    """
    return sparse_merkle._verify(root, key, value_hash, bitmap, siblings, depth)


@external
def sparse_require(
    root: bytes32,
    key: uint256,
    value_hash: bytes32,
    bitmap: uint256,
    siblings: DynArray[bytes32, sparse_merkle.MAX_DEPTH],
    depth: uint256,
):
    """
    @dev Reverts with "merkle: invalid proof" unless the proof verifies
         (non-view so a transaction measures the gas of a state-proof check).
    @param root The committed root.
    @param key The leaf's key.
    @param value_hash The claimed value hash (zero for "absent").
    @param bitmap Which levels' siblings are listed.
    @param siblings The non-default siblings, lowest level first.
    @param depth The tree's depth.
    """
    assert sparse_merkle._verify(root, key, value_hash, bitmap, siblings, depth), "merkle: invalid proof"


@external
@pure
def sparse_root_after_update(
    root: bytes32,
    key: uint256,
    old_value_hash: bytes32,
    new_value_hash: bytes32,
    bitmap: uint256,
    siblings: DynArray[bytes32, sparse_merkle.MAX_DEPTH],
    depth: uint256,
) -> bytes32:
    """
    @dev See `sparse_merkle._root_after_update`.
    @param root The committed root before the update.
    @param key The leaf's key.
    @param old_value_hash The value hash before (zero if absent).
    @param new_value_hash The value hash after (zero deletes).
    @param bitmap Which levels' siblings are listed.
    @param siblings The non-default siblings, lowest level first.
    @param depth The tree's depth.
    @return bytes32 The root after the update.
    """
    return sparse_merkle._root_after_update(root, key, old_value_hash, new_value_hash, bitmap, siblings, depth)
