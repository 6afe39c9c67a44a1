"""Merkle commitments: the sparse state tree and the OpenZeppelin-compatible claims tree.

``sparse`` commits settlement state (one leaf per account id, compact proofs for fraud proofs and
exits); ``claims`` commits withdrawals as ``StandardMerkleTree`` claims. Their on-chain verifiers
are ``contracts/lib/sparse_merkle.vy`` and ``contracts/lib/merkle_claims.vy``.
"""

from clearhouse.merkle.abi_values import LeafValue
from clearhouse.merkle.claims import (
    ClaimsTree,
    IndexedValue,
    MultiProof,
    ValueMultiProof,
    compute_claim_leaf_hash,
    compute_pair_hash,
    is_valid_claim,
    is_valid_claim_multiproof,
    process_multiproof,
    process_proof,
)
from clearhouse.merkle.sparse import (
    DEFAULT_DEPTH,
    EMPTY_VALUE,
    CompactProof,
    SparseMerkleTree,
    compute_default_hashes,
    compute_key,
    compute_leaf_hash,
    compute_node_hash,
    compute_proof_bytes,
    compute_proof_from_bytes,
    compute_updated_root,
    is_excluded,
    is_included,
    process_compact_proof,
)
from clearhouse.merkle.sparse_multi import (
    MultiCompactProof,
    compute_updated_root_many,
    get_multi_compact_proof,
    is_included_many,
    process_multi_compact_proof,
)

__all__ = [
    "DEFAULT_DEPTH",
    "EMPTY_VALUE",
    "ClaimsTree",
    "CompactProof",
    "IndexedValue",
    "LeafValue",
    "MultiCompactProof",
    "MultiProof",
    "SparseMerkleTree",
    "ValueMultiProof",
    "compute_claim_leaf_hash",
    "compute_default_hashes",
    "compute_key",
    "compute_leaf_hash",
    "compute_node_hash",
    "compute_pair_hash",
    "compute_proof_bytes",
    "compute_proof_from_bytes",
    "compute_updated_root",
    "compute_updated_root_many",
    "get_multi_compact_proof",
    "is_excluded",
    "is_included",
    "is_included_many",
    "is_valid_claim",
    "is_valid_claim_multiproof",
    "process_compact_proof",
    "process_multi_compact_proof",
    "process_multiproof",
    "process_proof",
]
