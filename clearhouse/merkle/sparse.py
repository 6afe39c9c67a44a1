"""The sparse Merkle tree that commits settlement state, and its compact proofs.

A fixed-depth binary tree with one leaf slot per key (``0 ≤ key < 2**depth``): bit ``i`` of the key
(least significant first) says whether the path turns right at level ``i``. Leaves and internal
nodes hash under different one-byte prefixes, and empty subtrees take precomputed default hashes:

    leaf(key, v)  = 0x00…00 (32 zero bytes)                 if v is empty (32 zero bytes)
                  = keccak(0x00 ‖ uint256(key) ‖ v)          otherwise
    node(l, r)    = keccak(0x01 ‖ l ‖ r)
    default[0]    = 0x00…00,   default[i + 1] = node(default[i], default[i])

Only non-default nodes are stored. A compact proof lists the non-default siblings from the leaf
up, with a bitmap saying at which levels they sit. ``docs/protocol.md`` § Merkle commitments is
the normative description; ``contracts/lib/sparse_merkle.vy`` verifies the same proofs on-chain.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from functools import cache

from clearhouse.errors import InvalidProof, MerkleError
from clearhouse.merkle.hashing import ZERO_DIGEST, compute_digest, compute_keccak256
from clearhouse.types import Digest

__all__ = [
    "DEFAULT_DEPTH",
    "EMPTY_VALUE",
    "LEAF_PREFIX",
    "MAX_DEPTH",
    "NODE_PREFIX",
    "CompactProof",
    "Key",
    "SparseMerkleTree",
    "compute_default_hashes",
    "compute_key",
    "compute_leaf_hash",
    "compute_node_hash",
    "compute_proof_bytes",
    "compute_proof_from_bytes",
    "compute_updated_root",
    "is_excluded",
    "is_included",
    "process_compact_proof",
]

DEFAULT_DEPTH = 32
"""Depth of the state tree: one leaf per 32-bit account id (the vault registry never assigns more)."""
MAX_DEPTH = 256
"""Deepest supported tree: 256 levels key a leaf by any ``bytes32`` (the bitmap is then a full uint256)."""
LEAF_PREFIX = b"\x00"
"""First byte of every leaf preimage."""
NODE_PREFIX = b"\x01"
"""First byte of every internal-node preimage: no leaf hash can be passed off as a node or back."""
EMPTY_VALUE = ZERO_DIGEST
"""The value hash of an absent key; setting a key to it deletes the leaf."""

Key = int | bytes
"""A leaf key: an unsigned integer (account id) or a big-endian byte string of at most 32 bytes."""


@dataclass(frozen=True, slots=True)
class CompactProof:
    """The path from one leaf slot to the root with the default siblings left out."""

    bitmap: int
    """Bit ``i`` is set iff the sibling at level ``i`` (0 = the leaf's sibling) is not the default hash."""
    siblings: tuple[Digest, ...]
    """The non-default siblings, lowest level first; exactly ``popcount(bitmap)`` of them."""


# --- hashing -------------------------------------------------------------------------------------


def compute_leaf_hash(key: int, value_hash: Digest) -> Digest:
    """The leaf node of ``key``: 32 zero bytes when empty, else ``keccak(0x00 ‖ uint256(key) ‖ value_hash)``."""
    if value_hash == EMPTY_VALUE:
        return ZERO_DIGEST
    return compute_keccak256(LEAF_PREFIX + key.to_bytes(32, "big") + value_hash)


def compute_node_hash(left: Digest, right: Digest) -> Digest:
    """An internal node: ``keccak(0x01 ‖ left ‖ right)`` (ordered, unlike the claims tree)."""
    return compute_keccak256(NODE_PREFIX + left + right)


@cache
def compute_default_hashes(depth: int) -> tuple[Digest, ...]:
    """``default[0..depth]``: the root of an empty subtree of each height (``default[depth]`` = empty root)."""
    _check_depth(depth)
    defaults = [ZERO_DIGEST]
    for _ in range(depth):
        defaults.append(compute_node_hash(defaults[-1], defaults[-1]))
    return tuple(defaults)


def _check_depth(depth: int) -> None:
    if not 1 <= depth <= MAX_DEPTH:
        raise MerkleError(f"depth must be in 1..{MAX_DEPTH}, got {depth}", field="depth")


def compute_key(key: Key, depth: int) -> int:
    """``key`` as the leaf index it names; :class:`MerkleError` if it does not fit ``depth`` bits."""
    if isinstance(key, bytes):
        if len(key) > 32:
            raise MerkleError(f"byte keys are at most 32 bytes, got {len(key)}", field="key")
        key = int.from_bytes(key, "big")
    if isinstance(key, bool) or not 0 <= key < 1 << depth:
        raise MerkleError(f"key {key!r} does not fit a depth-{depth} tree", field="key")
    return key


# --- proofs --------------------------------------------------------------------------------------


def process_compact_proof(key: Key, value_hash: Digest, proof: CompactProof, depth: int = DEFAULT_DEPTH) -> Digest:
    """The root implied by ``key → value_hash`` and ``proof``; :class:`InvalidProof` if the proof is malformed."""
    _check_depth(depth)
    index = compute_key(key, depth)
    if proof.bitmap < 0 or proof.bitmap >> depth:
        raise InvalidProof(f"bitmap marks levels beyond depth {depth}", field="bitmap")
    if proof.bitmap.bit_count() != len(proof.siblings):
        raise InvalidProof("bitmap and sibling count disagree", field="siblings")
    defaults = compute_default_hashes(depth)
    siblings = iter(proof.siblings)
    node = compute_leaf_hash(index, compute_digest(value_hash, field="value_hash"))
    for level in range(depth):
        sibling = compute_digest(next(siblings), field="siblings") if proof.bitmap >> level & 1 else defaults[level]
        node = compute_node_hash(sibling, node) if index >> level & 1 else compute_node_hash(node, sibling)
    return node


def is_included(root: Digest, key: Key, value_hash: Digest, proof: CompactProof, depth: int = DEFAULT_DEPTH) -> bool:
    """True if ``proof`` shows ``key → value_hash`` under ``root`` (with ``EMPTY_VALUE``: that ``key`` is absent)."""
    try:
        return process_compact_proof(key, value_hash, proof, depth) == root
    except MerkleError:
        return False


def is_excluded(root: Digest, key: Key, proof: CompactProof, depth: int = DEFAULT_DEPTH) -> bool:
    """True if ``proof`` shows that ``key`` has no leaf under ``root``."""
    return is_included(root, key, EMPTY_VALUE, proof, depth)


def compute_updated_root(
    root: Digest, key: Key, old_value_hash: Digest, new_value_hash: Digest, proof: CompactProof,
    depth: int = DEFAULT_DEPTH,
) -> Digest:
    """The root after setting ``key`` to ``new_value_hash``, given a proof of its old value under ``root``.

    This is what a fraud proof does on-chain: authenticate the old leaf, then reuse its siblings.
    Raises :class:`InvalidProof` if the old value does not verify.
    """
    if process_compact_proof(key, old_value_hash, proof, depth) != root:
        raise InvalidProof("old value is not proven under the root", field="proof", key=key)
    return process_compact_proof(key, new_value_hash, proof, depth)


def compute_proof_bytes(proof: CompactProof) -> bytes:
    """Wire form: ``uint256 bitmap ‖ siblings`` (big-endian, 32 bytes each, no length prefix)."""
    return proof.bitmap.to_bytes(32, "big") + b"".join(proof.siblings)


def compute_proof_from_bytes(data: bytes, depth: int = DEFAULT_DEPTH) -> CompactProof:
    """Parse :func:`compute_proof_bytes` output; :class:`InvalidProof` unless it is well formed for ``depth``."""
    _check_depth(depth)
    if len(data) < 32 or len(data) % 32:
        raise InvalidProof(f"proof is {len(data)} bytes: not 32 + 32·n", field="proof")
    bitmap = int.from_bytes(data[:32], "big")
    siblings = tuple(Digest(data[i : i + 32]) for i in range(32, len(data), 32))
    if bitmap >> depth or bitmap.bit_count() != len(siblings):
        raise InvalidProof("bitmap does not match the siblings or the depth", field="bitmap")
    return CompactProof(bitmap, siblings)


# --- the tree ------------------------------------------------------------------------------------


class SparseMerkleTree:
    """A mutable sparse Merkle tree of fixed depth storing only its non-default nodes."""

    __slots__ = ("_defaults", "_nodes", "_values", "depth")

    def __init__(self, depth: int = DEFAULT_DEPTH, items: Mapping[int, Digest] | None = None) -> None:
        self.depth = depth
        """Number of levels between a leaf and the root."""
        self._defaults = compute_default_hashes(depth)
        self._nodes: dict[tuple[int, int], Digest] = {}
        """(level, index) → hash of every non-default node; level 0 = leaves, ``depth`` = root."""
        self._values: dict[int, Digest] = {}
        """key → value hash of every non-empty leaf."""
        if items:
            self.update_many(items.items())

    def __len__(self) -> int:
        return len(self._values)

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, (int, bytes)):
            return False
        try:
            return self.get(key) != EMPTY_VALUE
        except MerkleError:  # a key that cannot exist in this tree is simply not in it
            return False

    def items(self) -> Iterator[tuple[int, Digest]]:
        """``(key, value_hash)`` of every non-empty leaf, by key."""
        return iter(sorted(self._values.items()))

    @property
    def root(self) -> Digest:
        """The root hash (``default[depth]`` when the tree is empty)."""
        return self._get_node(self.depth, 0)

    def get_node(self, level: int, index: int) -> Digest:
        """The node at ``level`` (0 = leaves, ``depth`` = root) and ``index`` (default hash if empty)."""
        if not 0 <= level <= self.depth or not 0 <= index < 1 << (self.depth - level):
            raise MerkleError(f"no node ({level}, {index}) in a depth-{self.depth} tree", field="index")
        return self._nodes.get((level, index), self._defaults[level])

    def _get_node(self, level: int, index: int) -> Digest:
        return self._nodes.get((level, index), self._defaults[level])

    def _store(self, level: int, index: int, node: Digest) -> None:
        if node == self._defaults[level]:
            self._nodes.pop((level, index), None)
        else:
            self._nodes[(level, index)] = node

    def get(self, key: Key) -> Digest:
        """The value hash at ``key`` (``EMPTY_VALUE`` if absent)."""
        return self._values.get(compute_key(key, self.depth), EMPTY_VALUE)

    def update(self, key: Key, value_hash: Digest) -> Digest:
        """Set ``key`` to ``value_hash`` (``EMPTY_VALUE`` deletes); return the new root."""
        return self.update_many([(key, value_hash)])

    def update_many(self, items: Iterable[tuple[Key, Digest]]) -> Digest:
        """Set many keys at once (later entries win), hashing each touched internal node once; return the root."""
        staged = {compute_key(k, self.depth): compute_digest(v, field="value_hash") for k, v in items}
        for key, value_hash in staged.items():
            if value_hash == EMPTY_VALUE:
                self._values.pop(key, None)
            else:
                self._values[key] = value_hash
            self._store(0, key, compute_leaf_hash(key, value_hash))
        touched = set(staged)
        for level in range(self.depth):
            parents = {index >> 1 for index in touched}
            for parent in parents:
                left, right = self._get_node(level, 2 * parent), self._get_node(level, 2 * parent + 1)
                empty = left == right == self._defaults[level]
                self._store(level + 1, parent, self._defaults[level + 1] if empty else compute_node_hash(left, right))
            touched = parents
        return self.root

    def get_proof(self, key: Key) -> CompactProof:
        """The compact proof of ``key``'s slot: proves its value, or its absence if empty."""
        index = compute_key(key, self.depth)
        bitmap, siblings = 0, []
        for level in range(self.depth):
            sibling = self._nodes.get((level, (index >> level) ^ 1))
            if sibling is not None:
                bitmap |= 1 << level
                siblings.append(sibling)
        return CompactProof(bitmap, tuple(siblings))
