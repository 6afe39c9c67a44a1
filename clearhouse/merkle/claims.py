"""The withdrawal claims tree, compatible with OpenZeppelin's ``StandardMerkleTree``.

Leaves are ``keccak(keccak(abi.encode(values)))``; a parent is the keccak of its two children
concatenated in ascending order. The tree is one array in heap order (root at 0, children of
``i`` at ``2i+1`` and ``2i+2``) with the leaves — sorted by hash unless ``sort_leaves=False`` —
stored backwards from the end, exactly as ``@openzeppelin/merkle-tree`` lays it out. Roots,
proofs, multiproofs, ``dump()`` and ``render()`` therefore agree with that library byte for byte.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from clearhouse.errors import InvalidProof, MerkleError, UnknownLeaf
from clearhouse.merkle.abi_values import (
    LeafValue,
    compute_abi_encoding,
    compute_canonical_leaf,
    compute_json_leaf,
)
from clearhouse.merkle.hashing import compute_digest, compute_keccak256
from clearhouse.types import Digest

__all__ = [
    "DUMP_FORMAT",
    "ClaimsTree",
    "IndexedValue",
    "MultiProof",
    "ValueMultiProof",
    "compute_claim_leaf_hash",
    "compute_multiproof",
    "compute_pair_hash",
    "compute_proof",
    "compute_rendering",
    "compute_tree",
    "is_valid_claim",
    "is_valid_claim_multiproof",
    "is_valid_tree",
    "process_multiproof",
    "process_proof",
]

DUMP_FORMAT = "standard-v1"
"""The ``format`` tag of OpenZeppelin's standard-tree dumps."""


@dataclass(frozen=True, slots=True)
class MultiProof:
    """A proof that several leaf hashes are in one tree (OpenZeppelin ``getMultiProof`` semantics)."""

    leaves: tuple[Digest, ...]
    """The proven leaf hashes, in descending tree-index order (the order verification consumes them)."""
    proof: tuple[Digest, ...]
    """Sibling hashes not derivable from the leaves, in the order verification consumes them."""
    proof_flags: tuple[bool, ...]
    """Per hashing step: ``True`` = the second operand is the next computed hash, ``False`` = the next ``proof`` item."""


@dataclass(frozen=True, slots=True)
class ValueMultiProof:
    """A :class:`MultiProof` whose leaves are given as values rather than hashes."""

    values: tuple[LeafValue, ...]
    """The proven leaf values (OpenZeppelin's ``leaves``), in the order of :attr:`MultiProof.leaves`."""
    proof: tuple[Digest, ...]
    """As :attr:`MultiProof.proof`."""
    proof_flags: tuple[bool, ...]
    """As :attr:`MultiProof.proof_flags`."""


@dataclass(frozen=True, slots=True)
class IndexedValue:
    """One leaf value and where its hash sits in the tree array."""

    value: LeafValue
    """The leaf value, canonical Python form."""
    tree_index: int
    """Index of its leaf hash in :attr:`ClaimsTree.tree`."""


# --- hashing and the array layout ----------------------------------------------------------------


def compute_pair_hash(a: Digest, b: Digest) -> Digest:
    """Parent of two nodes: keccak of the pair in ascending byte order (commutative)."""
    return compute_keccak256(a + b if a <= b else b + a)


def compute_claim_leaf_hash(leaf_encoding: Sequence[str], value: Sequence[Any]) -> Digest:
    """``keccak(keccak(abi.encode(value)))``: double hashing keeps 64-byte leaves from posing as nodes."""
    canonical = compute_canonical_leaf(leaf_encoding, value)
    return compute_keccak256(compute_keccak256(compute_abi_encoding(leaf_encoding, canonical)))


def _is_leaf_index(size: int, index: int) -> bool:
    return 0 <= index < size and 2 * index + 1 >= size


def _compute_sibling(index: int) -> int:
    return index + 1 if index % 2 == 1 else index - 1


def compute_tree(leaves: Sequence[Digest]) -> tuple[Digest, ...]:
    """The heap-ordered node array over ``leaves`` (leaf ``i`` at ``len - 1 - i``)."""
    if not leaves:
        raise MerkleError("a tree needs at least one leaf", field="leaves")
    size = 2 * len(leaves) - 1
    tree: list[Digest] = [Digest(b"")] * size
    for i, leaf in enumerate(leaves):
        tree[size - 1 - i] = compute_digest(leaf, field="leaf")
    for i in range(size - 1 - len(leaves), -1, -1):
        tree[i] = compute_pair_hash(tree[2 * i + 1], tree[2 * i + 2])
    return tuple(tree)


def is_valid_tree(tree: Sequence[Digest]) -> bool:
    """True if every node is 32 bytes and every internal node hashes its two children."""
    if not tree or any(len(node) != 32 for node in tree):
        return False
    for i, node in enumerate(tree):
        left, right = 2 * i + 1, 2 * i + 2
        if right >= len(tree):
            if left < len(tree):
                return False
        elif node != compute_pair_hash(tree[left], tree[right]):
            return False
    return True


def compute_proof(tree: Sequence[Digest], index: int) -> tuple[Digest, ...]:
    """Siblings from the leaf at ``tree[index]`` up to (not including) the root."""
    if not _is_leaf_index(len(tree), index):
        raise MerkleError(f"tree index {index} is not a leaf", field="index")
    proof = []
    while index > 0:
        proof.append(tree[_compute_sibling(index)])
        index = (index - 1) // 2
    return tuple(proof)


def compute_multiproof(tree: Sequence[Digest], indices: Iterable[int]) -> MultiProof:
    """A multiproof of the leaves at ``indices`` (tree indices), built as ``getMultiProof`` builds it."""
    ordered = sorted(indices, reverse=True)
    for index in ordered:
        if not _is_leaf_index(len(tree), index):
            raise MerkleError(f"tree index {index} is not a leaf", field="indices")
    if len(set(ordered)) != len(ordered):
        raise MerkleError("cannot prove a duplicated index", field="indices")
    queue, proof, flags = deque(ordered), [], []
    while queue and queue[0] > 0:
        j = queue.popleft()
        sibling = _compute_sibling(j)
        if queue and queue[0] == sibling:
            flags.append(True)
            queue.popleft()
        else:
            flags.append(False)
            proof.append(tree[sibling])
        queue.append((j - 1) // 2)
    if not ordered:
        proof.append(tree[0])
    return MultiProof(tuple(tree[i] for i in ordered), tuple(proof), tuple(flags))


def process_proof(leaf: Digest, proof: Sequence[Digest]) -> Digest:
    """The root reached by hashing ``leaf`` with each sibling of ``proof`` in turn."""
    node = compute_digest(leaf, field="leaf")
    for sibling in proof:
        node = compute_pair_hash(node, compute_digest(sibling, field="proof"))
    return node


def process_multiproof(multiproof: MultiProof) -> Digest:
    """The root a multiproof reconstructs; :class:`InvalidProof` if its shape is inconsistent."""
    leaves = [compute_digest(leaf, field="leaves") for leaf in multiproof.leaves]
    proof = [compute_digest(node, field="proof") for node in multiproof.proof]
    flags = multiproof.proof_flags
    if len(leaves) + len(proof) != len(flags) + 1:
        raise InvalidProof("multiproof: leaves + proof must equal flags + 1", field="proof_flags")
    if len(proof) < flags.count(False):
        raise InvalidProof("multiproof: too few proof hashes for its flags", field="proof")
    # One queue: the leaves, then each computed hash in turn (what the Solidity/Vyper verifiers
    # do with two arrays and two cursors).
    queue, head, proof_pos = leaves, 0, 0
    for flag in flags:
        if head >= len(queue) or (flag and head + 1 >= len(queue)) or (not flag and proof_pos >= len(proof)):
            raise InvalidProof("multiproof: flags do not match leaves and proof", field="proof_flags")
        a, head = queue[head], head + 1
        if flag:
            b, head = queue[head], head + 1
        else:
            b, proof_pos = proof[proof_pos], proof_pos + 1
        queue.append(compute_pair_hash(a, b))
    if len(queue) - head + len(proof) - proof_pos != 1:
        raise InvalidProof("multiproof: hashes left over", field="proof")
    return queue[head] if head < len(queue) else proof[proof_pos]


def compute_rendering(tree: Sequence[Digest]) -> str:
    """The tree drawn as text, line for line as OpenZeppelin's ``render()`` draws it."""
    if not tree:
        raise MerkleError("cannot render an empty tree", field="tree")
    stack: list[tuple[int, tuple[int, ...]]] = [(0, ())]
    lines = []
    while stack:
        i, path = stack.pop()
        indent = "".join("│  " if p else "   " for p in path[:-1])
        branch = ("├─ " if path[-1] else "└─ ") if path else ""
        lines.append(f"{indent}{branch}{i}) 0x{tree[i].hex()}")
        if 2 * i + 2 < len(tree):
            stack.append((2 * i + 2, (*path, 0)))
            stack.append((2 * i + 1, (*path, 1)))
    return "\n".join(lines)


# --- the standard tree over ABI values -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ClaimsTree:
    """A standard Merkle tree of ABI-encoded claims. Build with :meth:`of` or :meth:`load`."""

    leaf_encoding: tuple[str, ...]
    """ABI types of each leaf's values, e.g. ``("address", "uint256")``."""
    tree: tuple[Digest, ...]
    """All nodes in heap order; ``tree[0]`` is the root."""
    values: tuple[IndexedValue, ...]
    """The leaf values in insertion order, each with its position in :attr:`tree`."""
    _lookup: dict[Digest, int] = field(init=False, repr=False, compare=False)
    """Leaf hash → value index (the last one for duplicate values, as OpenZeppelin does)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "_lookup", {self.tree[v.tree_index]: i for i, v in enumerate(self.values)})

    @classmethod
    def of(
        cls, values: Iterable[Sequence[Any]], leaf_encoding: Sequence[str], *, sort_leaves: bool = True
    ) -> ClaimsTree:
        """Build the tree over ``values`` (``StandardMerkleTree.of``)."""
        encoding = tuple(leaf_encoding)
        canonical = [compute_canonical_leaf(encoding, v) for v in values]
        hashed = [(compute_claim_leaf_hash(encoding, v), i) for i, v in enumerate(canonical)]
        if sort_leaves:
            hashed.sort(key=lambda pair: pair[0])  # stable, like Array.prototype.sort
        tree = compute_tree([h for h, _ in hashed])
        positions = {value_index: len(tree) - 1 - leaf_index for leaf_index, (_, value_index) in enumerate(hashed)}
        indexed = tuple(IndexedValue(v, positions[i]) for i, v in enumerate(canonical))
        return cls(encoding, tree, indexed)

    @classmethod
    def load(cls, data: Mapping[str, Any]) -> ClaimsTree:
        """Rebuild and fully validate a tree from a ``standard-v1`` dump (ours or OpenZeppelin's)."""
        if data.get("format") != DUMP_FORMAT:
            raise MerkleError(f"unknown dump format {data.get('format')!r}", field="format")
        if not isinstance(data.get("leafEncoding"), list):
            raise MerkleError("dump has no leafEncoding", field="leafEncoding")
        encoding = tuple(str(t) for t in data["leafEncoding"])
        tree = tuple(compute_digest(node, field="tree") for node in data.get("tree", []))
        try:
            indexed = tuple(
                IndexedValue(compute_canonical_leaf(encoding, v["value"]), int(v["treeIndex"]))
                for v in data.get("values", [])
            )
        except (KeyError, TypeError) as exc:
            raise MerkleError(f"malformed dump values: {exc}", field="values") from None
        loaded = cls(encoding, tree, indexed)
        loaded.validate()
        return loaded

    @property
    def root(self) -> Digest:
        """The Merkle root."""
        return self.tree[0]

    def __len__(self) -> int:
        return len(self.values)

    def __iter__(self) -> Iterator[LeafValue]:
        return (v.value for v in self.values)

    def validate(self) -> None:
        """Raise :class:`MerkleError` unless every value sits at a leaf holding its hash and the tree is consistent."""
        for i, indexed in enumerate(self.values):
            if not _is_leaf_index(len(self.tree), indexed.tree_index):
                raise MerkleError(f"value {i} points at non-leaf {indexed.tree_index}", field="values")
            if self.tree[indexed.tree_index] != compute_claim_leaf_hash(self.leaf_encoding, indexed.value):
                raise MerkleError(f"value {i} does not hash to its leaf", field="values")
        if not is_valid_tree(self.tree):
            raise MerkleError("tree nodes do not hash to their parents", field="tree")

    def get_leaf_hash(self, leaf: int | Sequence[Any]) -> Digest:
        """Hash of a leaf given by value index or by value."""
        if isinstance(leaf, int):
            return self.tree[self.values[self.get_value_index(leaf)].tree_index]
        return compute_claim_leaf_hash(self.leaf_encoding, leaf)

    def get_value_index(self, leaf: int | Sequence[Any]) -> int:
        """Index in :attr:`values` of a leaf given by index or by value; :class:`UnknownLeaf` if absent."""
        if isinstance(leaf, int):
            if not 0 <= leaf < len(self.values):
                raise UnknownLeaf(f"leaf index {leaf} out of bounds", field="leaf")
            return leaf
        index = self._lookup.get(compute_claim_leaf_hash(self.leaf_encoding, leaf))
        if index is None:
            raise UnknownLeaf(f"leaf {list(leaf)!r} is not in the tree", field="leaf")
        return index

    def get_proof(self, leaf: int | Sequence[Any]) -> tuple[Digest, ...]:
        """Proof for one leaf, given by value index or by value."""
        return compute_proof(self.tree, self.values[self.get_value_index(leaf)].tree_index)

    def get_multiproof(self, leaves: Iterable[int | Sequence[Any]]) -> ValueMultiProof:
        """Multiproof for several leaves (by value index or value), leaves in proof order."""
        indices = [self.values[self.get_value_index(leaf)].tree_index for leaf in leaves]
        proof = compute_multiproof(self.tree, indices)
        values = tuple(self.values[self._lookup[h]].value for h in proof.leaves)
        return ValueMultiProof(values, proof.proof, proof.proof_flags)

    def verify(self, leaf: int | Sequence[Any], proof: Sequence[Digest]) -> bool:
        """True if ``proof`` proves ``leaf`` (index or value) against this tree's root."""
        return process_proof(self.get_leaf_hash(leaf), proof) == self.root

    def verify_multiproof(self, multiproof: ValueMultiProof) -> bool:
        """True if ``multiproof`` proves its values against this tree's root."""
        return is_valid_claim_multiproof(self.root, self.leaf_encoding, multiproof)

    def dump(self) -> dict[str, Any]:
        """The ``standard-v1`` JSON document OpenZeppelin's ``StandardMerkleTree.load`` accepts."""
        return {
            "format": DUMP_FORMAT,
            "leafEncoding": list(self.leaf_encoding),
            "tree": ["0x" + node.hex() for node in self.tree],
            "values": [
                {"value": compute_json_leaf(self.leaf_encoding, v.value), "treeIndex": v.tree_index}
                for v in self.values
            ],
        }

    def render(self) -> str:
        """The tree drawn as text (OpenZeppelin's ``render()``)."""
        return compute_rendering(self.tree)


def is_valid_claim(root: Digest, leaf_encoding: Sequence[str], value: Sequence[Any], proof: Sequence[Digest]) -> bool:
    """True if ``proof`` proves ``value`` under ``root`` (``StandardMerkleTree.verify``)."""
    try:
        return process_proof(compute_claim_leaf_hash(leaf_encoding, value), proof) == root
    except MerkleError:
        return False


def is_valid_claim_multiproof(root: Digest, leaf_encoding: Sequence[str], multiproof: ValueMultiProof) -> bool:
    """True if ``multiproof`` proves its values under ``root`` (``StandardMerkleTree.verifyMultiProof``)."""
    try:
        leaves = tuple(compute_claim_leaf_hash(leaf_encoding, v) for v in multiproof.values)
        return process_multiproof(MultiProof(leaves, multiproof.proof, multiproof.proof_flags)) == root
    except MerkleError:
        return False
