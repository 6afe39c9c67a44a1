"""Unordered nonces: one bit per nonce in 256-bit words, so parallel messages never block each other.

A nonce's word index is ``nonce >> 8`` and its bit ``nonce & 0xff``. One account's
:data:`NonceBitmap` maps word index to word; the functions here only read and write that mapping,
so the node can back it by any store. Messages without a nonce are de-duplicated by digest.
Replay keys are nonces or digests, never signature bytes (signatures are malleable; digests are not).
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping, MutableSet
from collections.abc import Set as AbstractSet
from typing import TypeAlias

from clearhouse.errors import MalformedMessage, ReplayedMessage
from clearhouse.types import Digest, Nonce

__all__ = [
    "NonceBitmap",
    "compute_nonce_position",
    "invalidate_nonce",
    "is_digest_used",
    "is_nonce_used",
    "use_digest",
    "use_nonce",
]

NonceBitmap: TypeAlias = MutableMapping[int, int]
"""One account's used nonces: word index (``nonce >> 8``) -> 256-bit word (bit ``nonce & 0xff``)."""


def compute_nonce_position(nonce: Nonce) -> tuple[int, int]:
    """``(word index, bit mask)`` of ``nonce``."""
    if isinstance(nonce, bool) or not isinstance(nonce, int) or not 0 <= nonce < 1 << 256:
        raise MalformedMessage(f"nonce {nonce!r} is not a uint256", field="nonce")
    return nonce >> 8, 1 << (nonce & 0xFF)


def is_nonce_used(bitmap: Mapping[int, int], nonce: Nonce) -> bool:
    """Whether ``nonce`` has been used (or invalidated) in this account's bitmap."""
    word, mask = compute_nonce_position(nonce)
    return bool(bitmap.get(word, 0) & mask)


def use_nonce(bitmap: NonceBitmap, nonce: Nonce) -> None:
    """Mark ``nonce`` used; raise :class:`ReplayedMessage` (and change nothing) if it already was."""
    word, mask = compute_nonce_position(nonce)
    current = bitmap.get(word, 0)
    if current & mask:
        raise ReplayedMessage(f"nonce {nonce} already used", field="nonce", nonce=nonce)
    bitmap[word] = current | mask


def invalidate_nonce(bitmap: NonceBitmap, nonce: Nonce) -> None:
    """Mark ``nonce`` used whether or not it was (what a ``Cancel`` does: applying it twice is harmless)."""
    word, mask = compute_nonce_position(nonce)
    bitmap[word] = bitmap.get(word, 0) | mask


def is_digest_used(seen: AbstractSet[Digest], digest: Digest) -> bool:
    """Whether a nonce-less message with this digest was already accepted."""
    return digest in seen


def use_digest(seen: MutableSet[Digest], digest: Digest) -> None:
    """Record a nonce-less message's digest; raise :class:`ReplayedMessage` if it was seen."""
    if digest in seen:
        raise ReplayedMessage("message already accepted", field="digest", digest=bytes(digest))
    seen.add(digest)
