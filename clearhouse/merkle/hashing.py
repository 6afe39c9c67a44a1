"""The one keccak-256 both Merkle trees hash with, and the 32-byte node checks they share."""

from __future__ import annotations

from clearhouse.errors import MerkleError
from clearhouse.messages.keccak import keccak256
from clearhouse.types import Digest

__all__ = ["ZERO_DIGEST", "compute_digest", "compute_keccak256"]

ZERO_DIGEST = Digest(bytes(32))
"""32 zero bytes: the empty leaf of the sparse tree and the "no value" marker."""


def compute_keccak256(data: bytes) -> Digest:
    """keccak-256 (Ethereum's, not SHA3-256) of ``data``, by the self-checked lean binding."""
    return Digest(keccak256(data))


def compute_digest(node: bytes | str, *, field: str = "node") -> Digest:
    """A Merkle node as 32 bytes, from bytes or a ``0x`` hex string; :class:`MerkleError` otherwise."""
    if isinstance(node, str):
        try:
            node = bytes.fromhex(node.removeprefix("0x"))
        except ValueError:
            raise MerkleError(f"{field} is not hex: {node!r}", field=field) from None
    if len(node) != 32:
        raise MerkleError(f"{field} must be 32 bytes, got {len(node)}", field=field)
    return Digest(bytes(node))
