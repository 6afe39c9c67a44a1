"""The batch header: what a coordinator posts with a batch's data and what a challenge opens.

The header carries the new state's root preimage (so the contract recomputes the new root and
checks the queue hashes against the vault), the checkpoint root after every window of ``K``
operations, the operations hash, and the claims-tree root of the batch's payouts. The contract
stores ``keccak(encode_header(header))`` only; a challenge re-supplies the header.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from clearhouse.errors import InvalidBatch
from clearhouse.merkle.claims import ClaimsTree
from clearhouse.merkle.hashing import ZERO_DIGEST
from clearhouse.messages.keccak import keccak256
from clearhouse.settlement.state import StateCommitment, compute_commitment_root, encode_counters
from clearhouse.types import Address, Amount, BatchNumber, Digest, Timestamp

__all__ = [
    "HEADER_FIXED_SIZE",
    "MAX_PAYOUTS",
    "WITHDRAWAL_LEAF_ENCODING",
    "BatchHeader",
    "Payout",
    "compute_header_hash",
    "compute_payout_tree",
    "compute_window_count",
    "compute_withdrawals_root",
    "encode_header",
    "get_new_root",
]

WITHDRAWAL_LEAF_ENCODING: Final = ("uint64", "uint32", "address", "uint256")
"""Claims-tree leaf of a payout: ``(batch number, index in the batch, recipient, amount)``; the
batch number and index make every leaf unique, so a paid claim is recorded by ``(batch, index)``."""
HEADER_FIXED_SIZE: Final = 300
"""Bytes of the header before its checkpoint roots."""
MAX_PAYOUTS: Final = 1024
"""Most payouts (withdrawals, paid forced withdrawals) one batch may make: bounds the gas of
rebuilding its claims tree in ``challenge_payouts`` well under half a block
(``PayoutsChecker.MAX_PAYOUTS``); a batch with more is invalid, proven by that challenge."""


@dataclass(frozen=True, slots=True)
class Payout:
    """Collateral leaving the venue: paid on-chain once the batch is final."""

    recipient: Address
    """Who is paid."""
    amount: Amount
    """Quote base units (> 0)."""


@dataclass(frozen=True, slots=True)
class BatchHeader:
    """One batch's commitment (``docs/protocol.md`` § Settlement, *Batch header*)."""

    number: BatchNumber
    """Sequence number of the batch, from 1 (uint64)."""
    prev_root: Digest
    """The state root the batch starts from: the previous batch's new root."""
    state: StateCommitment
    """The new state's root preimage (roots, queue positions and hashes, clock, fee pool)."""
    op_count: int
    """Operations in the batch (uint32, ≥ 1)."""
    ops_hash: Digest
    """``compute_ops_hash`` of the batch's windows."""
    checkpoint_roots: tuple[Digest, ...]
    """The state root after each window of ``checkpoint_interval`` operations; the last is the new root."""
    withdrawals_root: Digest
    """Claims-tree root of the payouts (zero if none)."""
    withdrawal_count: int
    """Number of payouts (uint32)."""
    timestamp: Timestamp
    """The batch's time (uint64): no tick passes it; the contract bounds it by the block's."""
    parameter_version: int
    """The parameter version the batch is verified with (uint32)."""
    checkpoint_interval: int
    """``K`` of that parameter version (uint32)."""

    def __post_init__(self) -> None:
        if not 1 <= self.op_count < 1 << 32 or not 0 < self.checkpoint_interval < 1 << 32:
            raise InvalidBatch("op_count and checkpoint_interval must be positive uint32", field="opCount")
        if len(self.checkpoint_roots) != compute_window_count(self.op_count, self.checkpoint_interval):
            raise InvalidBatch("one checkpoint root per window", field="checkpointRoots")
        if self.checkpoint_roots[-1] != compute_commitment_root(self.state):
            raise InvalidBatch("the last checkpoint is not the new state's root", field="checkpointRoots")
        if self.state.counters.clock > self.timestamp:
            raise InvalidBatch("the clock is past the batch timestamp", field="timestamp")


def compute_window_count(op_count: int, k: int) -> int:
    """Windows (and checkpoint roots) of a batch: ``ceil(op_count / k)``."""
    return -(-op_count // k)


def get_new_root(header: BatchHeader) -> Digest:
    """The state root after the batch."""
    return header.checkpoint_roots[-1]


def encode_header(header: BatchHeader) -> bytes:
    """``number u64 ‖ prevRoot ‖ accountsRoot ‖ consumedRoot ‖ counters (104) ‖ timestamp u64 ‖
    parameterVersion u32 ‖ K u32 ‖ opCount u32 ‖ opsHash ‖ withdrawalsRoot ‖ withdrawalCount u32 ‖
    checkpointCount u32 ‖ checkpointRoots``."""
    s = header.state
    return b"".join((
        header.number.to_bytes(8, "big"), header.prev_root, s.accounts_root, s.consumed_root,
        encode_counters(s.counters), header.timestamp.to_bytes(8, "big"),
        header.parameter_version.to_bytes(4, "big"), header.checkpoint_interval.to_bytes(4, "big"),
        header.op_count.to_bytes(4, "big"), header.ops_hash, header.withdrawals_root,
        header.withdrawal_count.to_bytes(4, "big"), len(header.checkpoint_roots).to_bytes(4, "big"),
        *header.checkpoint_roots,
    ))


def compute_header_hash(header: BatchHeader) -> Digest:
    """``keccak(encode_header(header))``: what the settlement contract stores per batch."""
    return Digest(keccak256(encode_header(header)))


def compute_payout_tree(number: BatchNumber, payouts: Sequence[Payout]) -> ClaimsTree | None:
    """The claims tree of a batch's payouts (``None`` when there are none: the root is then zero)."""
    if not payouts:
        return None
    return ClaimsTree.of([(number, i, p.recipient, p.amount) for i, p in enumerate(payouts)],
                         WITHDRAWAL_LEAF_ENCODING)


def compute_withdrawals_root(number: BatchNumber, payouts: Sequence[Payout]) -> Digest:
    """The header's ``withdrawals_root``: the payout claims tree's root, or zero without payouts."""
    tree = compute_payout_tree(number, payouts)
    return ZERO_DIGEST if tree is None else tree.root
