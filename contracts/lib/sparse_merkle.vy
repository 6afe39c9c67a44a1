# pragma version ~=0.4.3
"""
@title Sparse Merkle tree verification (clearhouse state tree)
@custom:contract-name sparse_merkle
@license MIT
@notice Verifies compact proofs of `clearhouse.merkle.sparse.SparseMerkleTree`
        and recomputes the root after one leaf changes (what a fraud proof does).
        The tree has a fixed `depth`; bit `i` of the key (least significant
        first) turns the path right at level `i`. Hashing, with domain
        separation between leaves and nodes:
            leaf(key, v) = 0x00..00                         if v == 0x00..00 (empty)
                         = keccak256(0x00 ++ uint256(key) ++ v)  otherwise
            node(l, r)   = keccak256(0x01 ++ l ++ r)
            default[0]   = 0x00..00, default[i+1] = node(default[i], default[i])
        A compact proof is `(bitmap, siblings)`: bit `i` of `bitmap` is set iff the
        sibling at level `i` is not `default[i]`; `siblings` lists exactly those,
        lowest level first. See docs/protocol.md, "Merkle commitments".
        Stateless: import it and call its internal functions.
"""


# @dev Deepest supported tree: 256 levels key a leaf by a whole `bytes32`.
MAX_DEPTH: constant(uint256) = 256
# @dev First byte of a leaf preimage.
LEAF_PREFIX: constant(bytes1) = 0x00
# @dev First byte of an internal-node preimage.
NODE_PREFIX: constant(bytes1) = 0x01


@internal
@pure
def _leaf_hash(key: uint256, value_hash: bytes32) -> bytes32:
    """
    @dev The leaf node for `key` holding `value_hash`; an empty value is the
         empty leaf (32 zero bytes), which is how non-inclusion is proven.
    @param key The leaf's key (its index in the tree).
    @param value_hash The hash of the leaf's value, or zero for "absent".
    @return bytes32 The leaf node.
    """
    if value_hash == empty(bytes32):
        return empty(bytes32)
    return keccak256(concat(LEAF_PREFIX, convert(key, bytes32), value_hash))


@internal
@pure
def _node_hash(left: bytes32, right: bytes32) -> bytes32:
    """
    @dev An internal node (children in path order, not sorted).
    @param left The left child.
    @param right The right child.
    @return bytes32 `keccak256(0x01 ++ left ++ right)`.
    """
    return keccak256(concat(NODE_PREFIX, left, right))


@internal
@pure
def _check_shape(key: uint256, bitmap: uint256, depth: uint256):
    """
    @dev Reverts unless `depth` is supported and `key` and `bitmap` fit in `depth` bits.
    @param key The leaf's key.
    @param bitmap The proof's bitmap.
    @param depth The tree's depth.
    """
    assert depth != 0 and depth <= MAX_DEPTH, "merkle: invalid depth"
    if depth < MAX_DEPTH:
        assert key >> depth == 0, "merkle: key out of range"
        assert bitmap >> depth == 0, "merkle: invalid proof"


@internal
@pure
def _compute_root(
    key: uint256,
    value_hash: bytes32,
    bitmap: uint256,
    siblings: DynArray[bytes32, MAX_DEPTH],
    depth: uint256,
) -> bytes32:
    """
    @dev The root implied by `key -> value_hash` and a compact proof. Reverts if
         the depth, key or proof shape is invalid (key wider than `depth` bits,
         bitmap bits above `depth`, or a sibling count other than popcount(bitmap)).
    @param key The leaf's key, `< 2**depth`.
    @param value_hash The value hash claimed at `key` (zero for "absent").
    @param bitmap Bit `i` set iff the level-`i` sibling is in `siblings`.
    @param siblings The non-default siblings, lowest level first.
    @param depth The tree's depth, 1..MAX_DEPTH.
    @return bytes32 The implied root.
    """
    self._check_shape(key, bitmap, depth)
    node: bytes32 = self._leaf_hash(key, value_hash)
    empty_subtree: bytes32 = empty(bytes32)  # default[level], advanced as we climb
    used: uint256 = 0
    for level: uint256 in range(depth, bound=MAX_DEPTH):
        sibling: bytes32 = empty_subtree
        if (bitmap >> level) & 1 == 1:
            assert used < len(siblings), "merkle: invalid proof"
            sibling = siblings[used]
            used += 1
        # `_node_hash` inlined: an internal call per hash costs ~65 gas, twice per level.
        if (key >> level) & 1 == 1:
            node = keccak256(concat(NODE_PREFIX, sibling, node))
        else:
            node = keccak256(concat(NODE_PREFIX, node, sibling))
        if level + 1 < depth:
            empty_subtree = keccak256(concat(NODE_PREFIX, empty_subtree, empty_subtree))
    assert used == len(siblings), "merkle: invalid proof"
    return node


@internal
@pure
def _verify(
    root: bytes32,
    key: uint256,
    value_hash: bytes32,
    bitmap: uint256,
    siblings: DynArray[bytes32, MAX_DEPTH],
    depth: uint256,
) -> bool:
    """
    @dev Whether the proof shows `key -> value_hash` under `root`; with a zero
         `value_hash` it shows that `key` is absent. Reverts on a malformed proof.
    @param root The committed root.
    @param key The leaf's key.
    @param value_hash The claimed value hash (zero for "absent").
    @param bitmap Bit `i` set iff the level-`i` sibling is in `siblings`.
    @param siblings The non-default siblings, lowest level first.
    @param depth The tree's depth.
    @return bool True if the proof reaches `root`.
    """
    return self._compute_root(key, value_hash, bitmap, siblings, depth) == root


@internal
@pure
def _root_after_update(
    root: bytes32,
    key: uint256,
    old_value_hash: bytes32,
    new_value_hash: bytes32,
    bitmap: uint256,
    siblings: DynArray[bytes32, MAX_DEPTH],
    depth: uint256,
) -> bytes32:
    """
    @dev Authenticates `key -> old_value_hash` under `root`, then returns the
         root with the leaf replaced by `new_value_hash` (the same siblings
         stay valid: only the leaf's own path changes).
    @param root The committed root before the update.
    @param key The leaf's key.
    @param old_value_hash The value hash before (zero if the key was absent).
    @param new_value_hash The value hash after (zero deletes the key).
    @param bitmap Bit `i` set iff the level-`i` sibling is in `siblings`.
    @param siblings The non-default siblings, lowest level first.
    @param depth The tree's depth.
    @return bytes32 The root after the update.
    """
    # One climb computes both paths: they share the siblings and the default chain,
    # so this costs three hashes per level instead of the four of two `_compute_root`s.
    self._check_shape(key, bitmap, depth)
    old_node: bytes32 = self._leaf_hash(key, old_value_hash)
    new_node: bytes32 = self._leaf_hash(key, new_value_hash)
    empty_subtree: bytes32 = empty(bytes32)
    used: uint256 = 0
    for level: uint256 in range(depth, bound=MAX_DEPTH):
        sibling: bytes32 = empty_subtree
        if (bitmap >> level) & 1 == 1:
            assert used < len(siblings), "merkle: invalid proof"
            sibling = siblings[used]
            used += 1
        if (key >> level) & 1 == 1:
            old_node = keccak256(concat(NODE_PREFIX, sibling, old_node))
            new_node = keccak256(concat(NODE_PREFIX, sibling, new_node))
        else:
            old_node = keccak256(concat(NODE_PREFIX, old_node, sibling))
            new_node = keccak256(concat(NODE_PREFIX, new_node, sibling))
        if level + 1 < depth:
            empty_subtree = keccak256(concat(NODE_PREFIX, empty_subtree, empty_subtree))
    assert used == len(siblings), "merkle: invalid proof"
    assert old_node == root, "merkle: invalid proof"
    return new_node
