# pragma version ~=0.4.3
"""
@title Claims tree verification (OpenZeppelin `StandardMerkleTree` compatible)
@custom:contract-name merkle_claims
@license MIT
@notice Verifies single proofs and multiproofs of the trees built by
        `clearhouse.merkle.claims.ClaimsTree` and by `@openzeppelin/merkle-tree`:
        a parent is `keccak256` of its two children in ascending order.
        Leaves must be `keccak256(keccak256(abi_encode(values...)))`
        (see `_leaf`); the double hash keeps a 64-byte leaf preimage from
        being read as a pair of nodes.
        Stateless: import it and call its internal functions.
"""


# @dev Longest single proof: a tree of up to 2**32 leaves.
MAX_PROOF_LENGTH: constant(uint256) = 32
# @dev Most leaves one multiproof may prove.
MAX_MULTIPROOF_LEAVES: constant(uint256) = 64
# @dev Most sibling hashes one multiproof may carry.
MAX_MULTIPROOF_HASHES: constant(uint256) = 128
# @dev One flag per hashing step: leaves + proof hashes - 1 at most.
MAX_MULTIPROOF_FLAGS: constant(uint256) = MAX_MULTIPROOF_LEAVES + MAX_MULTIPROOF_HASHES - 1


@internal
@pure
def _leaf(value_hash: bytes32) -> bytes32:
    """
    @dev The standard leaf from `keccak256(abi_encode(values...))`:
         callers hash their ABI-encoded values once, this hashes again.
    @param value_hash `keccak256` of the ABI-encoded leaf values.
    @return bytes32 The leaf as stored in the tree.
    """
    return keccak256(value_hash)


@internal
@pure
def _hash_pair(a: bytes32, b: bytes32) -> bytes32:
    """
    @dev Parent of two nodes: the smaller one (as an unsigned integer) goes first,
         which makes proofs carry no left/right bits.
    @param a One child.
    @param b The other child.
    @return bytes32 `keccak256(min(a, b) ++ max(a, b))`.
    """
    if convert(a, uint256) <= convert(b, uint256):
        return keccak256(concat(a, b))
    return keccak256(concat(b, a))


@internal
@pure
def _process_proof(proof: DynArray[bytes32, MAX_PROOF_LENGTH], leaf: bytes32) -> bytes32:
    """
    @dev Walks from `leaf` to the root, pairing with each sibling of `proof` in turn.
    @param proof Sibling hashes from the leaf's level upwards.
    @param leaf The leaf hash.
    @return bytes32 The root `proof` implies.
    """
    node: bytes32 = leaf
    for sibling: bytes32 in proof:
        node = self._hash_pair(node, sibling)
    return node


@internal
@pure
def _verify(proof: DynArray[bytes32, MAX_PROOF_LENGTH], root: bytes32, leaf: bytes32) -> bool:
    """
    @dev Whether `proof` proves `leaf` under `root`.
    @param proof Sibling hashes from the leaf's level upwards.
    @param root The committed root.
    @param leaf The leaf hash.
    @return bool True if the proof reaches `root`.
    """
    return self._process_proof(proof, leaf) == root


@internal
@pure
def _process_multiproof(
    proof: DynArray[bytes32, MAX_MULTIPROOF_HASHES],
    proof_flags: DynArray[bool, MAX_MULTIPROOF_FLAGS],
    leaves: DynArray[bytes32, MAX_MULTIPROOF_LEAVES],
) -> bytes32:
    """
    @dev Rebuilds the root from several leaves at once. Conceptually one FIFO
         queue holds the leaves followed by every hash computed so far; each step
         pairs the queue's next item with either the one after it (flag true)
         or the next `proof` hash (flag false). Reverts on any shape mismatch,
         including proof hashes left unused.
    @param proof Sibling hashes not derivable from the leaves, in consumption order.
    @param proof_flags One flag per hashing step.
    @param leaves Leaf hashes in descending tree-index order (as the prover emits them).
    @return bytes32 The root the multiproof implies.
    @custom:security With no leaves and `proof == [root]` this returns the root:
                     such a "multiproof" proves nothing, so callers must check
                     that the leaves they care about are actually present.
    """
    leaf_count: uint256 = len(leaves)
    proof_count: uint256 = len(proof)
    steps: uint256 = len(proof_flags)
    assert leaf_count + proof_count == steps + 1, "merkle: invalid multiproof"

    hashes: DynArray[bytes32, MAX_MULTIPROOF_FLAGS] = []
    leaf_pos: uint256 = 0
    hash_pos: uint256 = 0
    proof_pos: uint256 = 0
    for step: uint256 in range(steps, bound=MAX_MULTIPROOF_FLAGS):
        # First operand: next leaf while any remain, then the computed hashes.
        a: bytes32 = empty(bytes32)
        if leaf_pos < leaf_count:
            a = leaves[leaf_pos]
            leaf_pos += 1
        else:
            assert hash_pos < step, "merkle: invalid multiproof"
            a = hashes[hash_pos]
            hash_pos += 1
        # Second operand: from the same queue when the branches merge, else from the proof.
        b: bytes32 = empty(bytes32)
        if proof_flags[step]:
            if leaf_pos < leaf_count:
                b = leaves[leaf_pos]
                leaf_pos += 1
            else:
                assert hash_pos < step, "merkle: invalid multiproof"
                b = hashes[hash_pos]
                hash_pos += 1
        else:
            assert proof_pos < proof_count, "merkle: invalid multiproof"
            b = proof[proof_pos]
            proof_pos += 1
        hashes.append(self._hash_pair(a, b))

    if steps != 0:
        # Unreachable after the checks above (counting flags shows every proof hash gets
        # used), kept as defence in depth: OpenZeppelin 4.9.2 fixed a forgery that arose
        # when unused proof hashes went unchecked while unwritten hashes read as zero.
        assert proof_pos == proof_count, "merkle: invalid multiproof"
        return hashes[steps - 1]
    if leaf_count != 0:
        return leaves[0]
    return proof[0]


@internal
@pure
def _verify_multiproof(
    proof: DynArray[bytes32, MAX_MULTIPROOF_HASHES],
    proof_flags: DynArray[bool, MAX_MULTIPROOF_FLAGS],
    root: bytes32,
    leaves: DynArray[bytes32, MAX_MULTIPROOF_LEAVES],
) -> bool:
    """
    @dev Whether `leaves` are all proven under `root`; reverts if the
         multiproof is malformed (see `_process_multiproof`).
    @param proof Sibling hashes not derivable from the leaves.
    @param proof_flags One flag per hashing step.
    @param root The committed root.
    @param leaves Leaf hashes in descending tree-index order.
    @return bool True if the multiproof reaches `root`.
    """
    return self._process_multiproof(proof, proof_flags, leaves) == root
