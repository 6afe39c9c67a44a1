"""Multi-key compact proofs for the sparse state tree (off-chain only, for now).

One proof authenticates several slots at once: where two proven paths meet, neither needs the
other's sibling, and default siblings are left out as in single proofs. Both building and
checking walk the same canonical order — level by level from the leaves, and within a level by
ascending node index — and every sibling the walk cannot derive is a "slot": bit ``i`` of
``flags`` says whether slot ``i`` is listed in ``siblings`` (1) or is the default hash (0).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from clearhouse.errors import InvalidProof
from clearhouse.merkle.hashing import compute_digest
from clearhouse.merkle.sparse import (
    DEFAULT_DEPTH,
    Key,
    SparseMerkleTree,
    compute_default_hashes,
    compute_key,
    compute_leaf_hash,
    compute_node_hash,
)
from clearhouse.types import Digest

__all__ = [
    "MultiCompactProof",
    "compute_updated_root_many",
    "get_multi_compact_proof",
    "is_included_many",
    "process_multi_compact_proof",
]


@dataclass(frozen=True, slots=True)
class MultiCompactProof:
    """Siblings proving several slots of one tree at once."""

    keys: tuple[int, ...]
    """The proven keys, ascending and distinct."""
    flags: int
    """Bit ``i`` is set iff the ``i``-th underivable sibling (in walk order) is listed in :attr:`siblings`."""
    siblings: tuple[Digest, ...]
    """The listed (non-default) siblings, in walk order."""


def _walk(leaves: Mapping[int, Digest], depth: int, on_slot: Callable[[int, int], Digest]) -> Digest:
    """Hash the proven leaves up to the root, asking ``on_slot`` for every sibling it cannot derive."""
    nodes = dict(leaves)
    for level in range(depth):
        parents: dict[int, Digest] = {}
        for index in sorted(nodes):
            if index & 1 and index ^ 1 in nodes:
                continue  # already paired with its left sibling
            sibling = nodes.get(index ^ 1)
            if sibling is None:
                sibling = on_slot(level, index ^ 1)
            left, right = (sibling, nodes[index]) if index & 1 else (nodes[index], sibling)
            parents[index >> 1] = compute_node_hash(left, right)
        nodes = parents
    return nodes[0]


def get_multi_compact_proof(tree: SparseMerkleTree, keys: Iterable[Key]) -> MultiCompactProof:
    """The multi-key proof of ``keys``' slots in ``tree`` (full or empty)."""
    proven = sorted({compute_key(k, tree.depth) for k in keys})
    if not proven:
        raise InvalidProof("a multiproof needs at least one key", field="keys")
    defaults = compute_default_hashes(tree.depth)
    flags, siblings, slot = 0, [], 0

    def on_slot(level: int, index: int) -> Digest:
        nonlocal flags, slot
        node = tree.get_node(level, index)
        if node != defaults[level]:
            flags |= 1 << slot
            siblings.append(node)
        slot += 1
        return node

    _walk({k: tree.get_node(0, k) for k in proven}, tree.depth, on_slot)
    return MultiCompactProof(tuple(proven), flags, tuple(siblings))


def process_multi_compact_proof(
    values: Mapping[int, Digest], proof: MultiCompactProof, depth: int = DEFAULT_DEPTH
) -> Digest:
    """The root implied by ``values`` (key → value hash, ``EMPTY_VALUE`` for absent) for exactly ``proof.keys``."""
    normalized = {compute_key(k, depth): v for k, v in values.items()}
    keys = tuple(sorted(normalized))
    if keys != proof.keys or not keys:
        raise InvalidProof("values do not cover exactly the proof's keys", field="keys")
    defaults = compute_default_hashes(depth)
    listed = iter(proof.siblings)
    used = slot = 0

    def on_slot(level: int, _index: int) -> Digest:
        nonlocal used, slot
        is_listed = proof.flags >> slot & 1
        slot += 1
        if not is_listed:
            return defaults[level]
        used += 1
        node = next(listed, None)
        if node is None:
            raise InvalidProof("flags list more siblings than the proof has", field="siblings")
        return compute_digest(node, field="siblings")

    leaves = {k: compute_leaf_hash(k, compute_digest(v, field="values")) for k, v in normalized.items()}
    root = _walk(leaves, depth, on_slot)
    if used != len(proof.siblings) or proof.flags >> slot:
        raise InvalidProof("flags and siblings do not match the walk", field="flags")
    return root


def is_included_many(
    root: Digest, values: Mapping[int, Digest], proof: MultiCompactProof, depth: int = DEFAULT_DEPTH
) -> bool:
    """True if ``proof`` shows every ``key → value_hash`` of ``values`` under ``root``."""
    try:
        return process_multi_compact_proof(values, proof, depth) == root
    except InvalidProof:
        return False


def compute_updated_root_many(
    root: Digest, old: Mapping[int, Digest], new: Mapping[int, Digest], proof: MultiCompactProof,
    depth: int = DEFAULT_DEPTH,
) -> Digest:
    """The root after replacing ``old`` by ``new`` (same keys); :class:`InvalidProof` if ``old`` is not proven."""
    if process_multi_compact_proof(old, proof, depth) != root:
        raise InvalidProof("old values are not proven under the root", field="proof")
    return process_multi_compact_proof(new, proof, depth)
