"""The watcher's rules: decode a posted batch from its calldata alone, re-execute it with the STF,
and say which on-chain proof shows it wrong (queues, execution window, payouts), with its arguments.

Pure: no I/O. The chain-facing driver is :mod:`clearhouse.node.watcher`. The checks run in the
order the contracts decide them: the queue/structure walk of ``Settlement.challenge_queues``, then
re-execution window by window (``WindowVerifier.challenge_execution``: the first window whose
operation breaks a rule or whose end root is not its committed checkpoint), then the payouts the
data makes against the header's claims root (``Settlement.challenge_payouts``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from enum import Enum
from typing import Final

from eth_abi import decode as abi_decode
from eth_utils import function_signature_to_4byte_selector

from clearhouse.errors import InvalidBatch, MalformedOperation, SettlementError
from clearhouse.merkle.claims import compute_claim_leaf_hash
from clearhouse.messages.keccak import keccak256
from clearhouse.settlement.context import SettlementContext
from clearhouse.settlement.encoding import (
    CORE_SIZES,
    LEG_SIZE,
    SIGNATURE_COUNTS,
    WindowData,
    compute_window_hash,
    decode_operations,
    decode_window,
    split_window,
)
from clearhouse.settlement.header import (
    HEADER_FIXED_SIZE,
    MAX_PAYOUTS,
    WITHDRAWAL_LEAF_ENCODING,
    BatchHeader,
    Payout,
    compute_withdrawals_root,
)
from clearhouse.settlement.operations import ForcedWithdrawalOp, Operation, OpType, WithdrawalOp
from clearhouse.settlement.state import (
    Counters,
    SettlementState,
    StateCommitment,
    encode_counters,
    get_state_root,
)
from clearhouse.settlement.stf import BatchRun, apply_batch
from clearhouse.settlement.witness import compute_window_witness, encode_operation_witness
from clearhouse.types import Address, Amount, BatchNumber, Digest, Timestamp

__all__ = [
    "POST_SELECTORS",
    "BatchVerdict",
    "ExecutionProof",
    "FaultKind",
    "compute_execution_proof",
    "compute_payout_order",
    "compute_payouts_of",
    "compute_queue_fault",
    "decode_header",
    "decode_ops_data",
    "decode_posting",
    "encode_preimage",
    "process_batch",
]

POST_SELECTORS: Final = {
    function_signature_to_4byte_selector("post_batch(bytes,bytes)"): "post_batch",
    function_signature_to_4byte_selector("post_large_batch(bytes,bytes)"): "post_large_batch",
}
"""4-byte selectors of the two ``Settlement`` entry points that carry a batch (same arguments)."""
_TYPES: Final = frozenset(int(t) for t in CORE_SIZES)
_MAX_LEGS: Final = 8
"""Most legs an RFQ fill may carry (the contract's structural walk refuses more)."""


class FaultKind(Enum):
    """What is wrong with a posted batch, named by the proof that shows it."""

    NONE = "none"
    """The batch is the STF's result of its data: every challenge reverts."""
    QUEUES = "queues"
    """Its data does not consume exactly the queue entries its header claims, or cannot be walked."""
    EXECUTION = "execution"
    """A window holds an operation the STF refuses or ends at a root other than its checkpoint."""
    PAYOUTS = "payouts"
    """Its withdrawals root or count is not the claims tree of the payouts its data makes."""


@dataclass(frozen=True, slots=True)
class BatchVerdict:
    """The outcome of re-executing one posted batch."""

    kind: FaultKind
    """Which proof applies (``NONE`` if the batch is correct)."""
    reason: str
    """What is wrong, for the log (``""`` if nothing)."""
    state: SettlementState | None = None
    """The state after the batch when it is correct."""
    window: int | None = None
    """For ``EXECUTION``: the first bad window's index."""
    window_start: SettlementState | None = None
    """For ``EXECUTION``: the state at that window's start checkpoint."""
    operations: tuple[Operation, ...] = ()
    """The batch's operations, decoded (empty when they cannot be)."""
    payout_order: tuple[int, ...] = ()
    """For ``PAYOUTS``: the data's payouts' indices in ascending order of their leaf hashes."""
    malformed: bytes | None = None
    """For ``EXECUTION`` on an operation no decoder accepts (a field out of range): its core
    bytes; ``operations`` then holds the operations before it."""


@dataclass(frozen=True, slots=True)
class ExecutionProof:
    """The arguments of ``WindowVerifier.challenge_execution`` after ``n`` and ``header``."""

    window: int
    """The window ``j`` (``checkpoint_index``)."""
    core: bytes
    """Window ``j``'s operation cores."""
    auth: bytes
    """Window ``j``'s signatures."""
    window_hashes: tuple[Digest, ...]
    """Every window hash of the batch."""
    checkpoint: bytes
    """The 168-byte preimage (after ``0x02``) of the window's start root."""
    witnesses: tuple[bytes, ...]
    """One encoded witness per operation, up to and including an invalid one."""


# --- decoding ----------------------------------------------------------------------------------


def decode_posting(calldata: bytes) -> tuple[bytes, bytes]:
    """``(header, ops_data)`` of a ``post_batch`` / ``post_large_batch`` transaction's input."""
    if calldata[:4] not in POST_SELECTORS:
        raise InvalidBatch("not a post_batch or post_large_batch call", field="selector")
    try:
        header, ops_data = abi_decode(["bytes", "bytes"], calldata[4:])
    except Exception as exc:  # eth-abi raises several unrelated types for bad input
        raise InvalidBatch(f"undecodable posting calldata: {exc}", field="calldata") from None
    return bytes(header), bytes(ops_data)


def _uint(data: bytes, offset: int, size: int) -> int:
    return int.from_bytes(data[offset:offset + size], "big")


def _decode_counters(data: bytes) -> Counters:
    return Counters(_uint(data, 0, 8), Digest(data[8:40]), _uint(data, 40, 8), Digest(data[48:80]),
                    Timestamp(_uint(data, 80, 8)), Amount(_uint(data, 88, 16)))


def decode_header(data: bytes) -> BatchHeader:
    """The inverse of ``encode_header`` (raises :class:`InvalidBatch` for bytes it cannot be)."""
    if len(data) < HEADER_FIXED_SIZE + 32 or (len(data) - HEADER_FIXED_SIZE) % 32:
        raise InvalidBatch(f"a header of {len(data)} bytes", field="header")
    m = _uint(data, 296, 4)
    if len(data) != HEADER_FIXED_SIZE + 32 * m:
        raise InvalidBatch("the checkpoint count does not match the header length", field="checkpointCount")
    commitment = StateCommitment(Digest(data[40:72]), Digest(data[72:104]), _decode_counters(data[104:208]))
    roots = tuple(Digest(data[HEADER_FIXED_SIZE + 32 * i:HEADER_FIXED_SIZE + 32 * (i + 1)]) for i in range(m))
    return BatchHeader(BatchNumber(_uint(data, 0, 8)), Digest(data[8:40]), commitment, _uint(data, 224, 4),
                       Digest(data[228:260]), roots, Digest(data[260:292]), _uint(data, 292, 4),
                       Timestamp(_uint(data, 208, 8)), _uint(data, 216, 4), _uint(data, 220, 4))


def decode_ops_data(data: bytes, window_count: int) -> tuple[WindowData, ...]:
    """The ``window_count`` windows of ``ops_data`` (``uint32 core ‖ uint32 auth ‖ core ‖ auth`` each)."""
    windows, pos = [], 0
    for _ in range(window_count):
        if pos + 8 > len(data):
            raise MalformedOperation("ops data ends inside a window prefix", field="opsData", offset=pos)
        core_len, auth_len = _uint(data, pos, 4), _uint(data, pos + 4, 4)
        end = pos + 8 + core_len + auth_len
        if end > len(data):
            raise MalformedOperation("ops data ends inside a window", field="opsData", offset=pos)
        windows.append(WindowData(data[pos + 8:pos + 8 + core_len], data[pos + 8 + core_len:end]))
        pos = end
    if pos != len(data):
        raise MalformedOperation("bytes after the last window", field="opsData", offset=pos)
    return tuple(windows)


def encode_preimage(commitment: StateCommitment) -> bytes:
    """The 168 bytes after ``0x02`` in a state root's preimage."""
    return commitment.accounts_root + commitment.consumed_root + encode_counters(commitment.counters)


# --- the queue / structure walk (``Settlement._queue_fault``) -----------------------------------


def _walk_window(window: WindowData, k: int) -> tuple[list[tuple[int, bytes]], int, str]:
    """The window's deposits and forced withdrawals ``[(type, 40 queue bytes)]``, its operation
    count, and its structural fault (the contract's reason string, ``""`` if none)."""
    core, p, sig_bytes, ops = window.core, 0, 0, 0
    queued: list[tuple[int, bytes]] = []
    while p < len(core):
        if ops == k:
            return queued, ops, "window too long"
        t = core[p]
        if t == OpType.RFQ_FILL:
            if p + CORE_SIZES[OpType.RFQ_FILL] > len(core):
                return queued, ops, "truncated operation"
            legs = core[p + CORE_SIZES[OpType.RFQ_FILL] - 1]
            if not 1 <= legs <= _MAX_LEGS:
                return queued, ops, "bad leg count"
            size = CORE_SIZES[OpType.RFQ_FILL] + LEG_SIZE * legs
        elif t in _TYPES:
            size = CORE_SIZES[OpType(t)]
        else:
            return queued, ops, "unknown operation"
        if p + size > len(core):
            return queued, ops, "truncated operation"
        if t in (OpType.DEPOSIT, OpType.FORCED_WITHDRAWAL):
            queued.append((t, core[p + 1:p + 41]))
        sig_bytes += 65 * SIGNATURE_COUNTS.get(OpType(t), 0)
        p += size
        ops += 1
    if sig_bytes != len(window.auth):
        return queued, ops, "signature bytes"
    return queued, ops, ""


def compute_queue_fault(prev: Counters, header: BatchHeader, windows: Sequence[WindowData]) -> str:
    """The fault ``challenge_queues`` proves for these windows under ``header`` after a batch that
    left ``prev``, or ``""`` if the data consumes exactly the queue entries the header claims."""
    k, m = header.checkpoint_interval, len(header.checkpoint_roots)
    deposits, d_hash, forced, f_hash = prev.deposit_count, prev.deposit_hash, prev.forced_count, prev.forced_hash
    total = 0
    for j, window in enumerate(windows):
        queued, count, fault = _walk_window(window, k)
        if fault:
            return fault
        if count == 0 or (j + 1 < m and count != k):
            return "window size"
        total += count
        for t, entry in queued:
            if t == OpType.DEPOSIT:
                deposits, d_hash = deposits + 1, Digest(keccak256(d_hash + entry))
            else:
                forced, f_hash = forced + 1, Digest(keccak256(f_hash + entry))
    c = header.state.counters
    if total != header.op_count:
        return "op count"
    if deposits != c.deposit_count or d_hash != c.deposit_hash:
        return "deposit queue"
    if forced != c.forced_count or f_hash != c.forced_hash:
        return "forced queue"
    return ""


# --- payouts -----------------------------------------------------------------------------------


def compute_payouts_of(ops: Sequence[Operation]) -> tuple[Payout, ...]:
    """The payouts the data makes (what ``PayoutsChecker`` reads): every withdrawal's
    ``(recipient, amount)`` and every forced withdrawal's ``(owner, paid)`` with ``paid > 0``."""
    payouts = []
    for op in ops:
        if isinstance(op, WithdrawalOp):
            payouts.append(Payout(op.recipient, op.amount))
        elif isinstance(op, ForcedWithdrawalOp) and op.paid:
            payouts.append(Payout(Address(op.owner), op.paid))
    return tuple(payouts)


def compute_payout_order(number: BatchNumber, payouts: Sequence[Payout]) -> tuple[int, ...]:
    """The payouts' indices in ascending order of their claims-tree leaf hashes (``order``)."""
    leaves = [compute_claim_leaf_hash(WITHDRAWAL_LEAF_ENCODING, (number, i, p.recipient, p.amount))
              for i, p in enumerate(payouts)]
    return tuple(sorted(range(len(leaves)), key=lambda i: leaves[i]))


# --- re-execution ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Run:
    """Re-execution of a batch: the first wrong window and why, or the state after it."""

    window: int | None
    reason: str
    state: SettlementState | None


def _check_prefix(prev: SettlementState, ops: Sequence[Operation], header: BatchHeader,
                  ctx: SettlementContext) -> tuple[_Run | None, BatchRun]:
    """Apply ``ops`` (a prefix of the batch) checking every completed window's checkpoint: the
    first fault, or ``None`` and the run (to finish or abort)."""
    k = header.checkpoint_interval
    run = BatchRun(prev, ctx, k)
    for index, op in enumerate(ops):
        try:
            run.apply(op)
        except SettlementError as exc:
            run.abort()
            return _Run(index // k, f"operation {index}: {type(exc).__name__}: {exc.message}", None), run
        j = len(run.checkpoints) - 1
        if (index + 1) % k == 0 and run.checkpoints[j] != header.checkpoint_roots[j]:
            run.abort()
            return _Run(j, f"window {j} ends at another root than its checkpoint", None), run
    return None, run


def _first_bad_window(prev: SettlementState, ops: Sequence[Operation], header: BatchHeader,
                      ctx: SettlementContext) -> _Run:
    fault, run = _check_prefix(prev, ops, header, ctx)
    if fault is not None:
        return fault
    result = run.finish(header.number)
    last = len(header.checkpoint_roots) - 1
    if result.header.checkpoint_roots[-1] != header.checkpoint_roots[last]:
        return _Run(last, f"window {last} ends at another root than its checkpoint", None)
    return _Run(None, "", result.state)


def _malformed_verdict(prev: SettlementState, header: BatchHeader, windows: Sequence[WindowData],
                       ctx: SettlementContext) -> BatchVerdict:
    """The verdict on a batch holding an operation whose fields no decoder accepts: an earlier
    fault if there is one, else an execution fault at that operation (the verifier's rules refuse
    it, ``stf: malformed_operation``)."""
    k = header.checkpoint_interval
    prefix: list[Operation] = []
    for j, window in enumerate(windows):
        for m, (core, auth) in enumerate(split_window(window)):
            try:
                prefix.extend(decode_operations(core, auth))
            except MalformedOperation as exc:
                fault, run = _check_prefix(prev, prefix, header, ctx)
                if fault is None:
                    run.abort()
                    fault = _Run(j, f"operation {j * k + m}: MalformedOperation: {exc.message}", None)
                assert fault.window is not None
                w = fault.window
                start = apply_batch(prev, prefix[:w * k], ctx, k, number=header.number).state if w else prev
                return BatchVerdict(FaultKind.EXECUTION, fault.reason, window=w, window_start=start,
                                    operations=tuple(prefix), malformed=core if w == j else None)
    raise InvalidBatch("every operation decodes", field="ops", number=header.number)


def process_batch(prev: SettlementState, header: BatchHeader, ops_data: bytes, ctx: SettlementContext
                  ) -> BatchVerdict:
    """Re-execute a posted batch on ``prev`` (the state after the batch before it, as re-executed
    by the watcher) under ``ctx`` (its timestamp and ``K`` are taken from ``header``).

    Raises :class:`InvalidBatch` if ``header.prev_root`` is not ``prev``'s root: the contract
    refuses such a batch at posting, so the watcher's own state is out of step.
    """
    if header.prev_root != get_state_root(prev):
        raise InvalidBatch("the batch does not start from the watcher's state", field="prevRoot",
                           number=header.number)
    ctx = replace(ctx, timestamp=header.timestamp, checkpoint_interval=header.checkpoint_interval)
    try:
        windows = decode_ops_data(ops_data, len(header.checkpoint_roots))
    except MalformedOperation as exc:
        return BatchVerdict(FaultKind.QUEUES, exc.message)
    fault = compute_queue_fault(prev.counters, header, windows)
    if fault:
        return BatchVerdict(FaultKind.QUEUES, fault)
    try:
        ops = tuple(op for w in windows for op in decode_window(w))
    except MalformedOperation:
        return _malformed_verdict(prev, header, windows, ctx)
    count = len(compute_payouts_of(ops))
    if count > MAX_PAYOUTS:  # the spec cannot even finish such a batch
        return BatchVerdict(FaultKind.PAYOUTS, f"{count} payouts, more than {MAX_PAYOUTS}", operations=ops)
    run = _first_bad_window(prev, ops, header, ctx)
    if run.window is not None:
        k = header.checkpoint_interval
        start = apply_batch(prev, ops[:run.window * k], ctx, k, number=header.number).state if run.window else prev
        return BatchVerdict(FaultKind.EXECUTION, run.reason, window=run.window, window_start=start,
                            operations=ops)
    payouts = compute_payouts_of(ops)
    if (len(payouts) != header.withdrawal_count
            or compute_withdrawals_root(header.number, payouts) != header.withdrawals_root):
        return BatchVerdict(FaultKind.PAYOUTS, "the withdrawals root is not the data's payouts",
                            operations=ops, payout_order=compute_payout_order(header.number, payouts))
    return BatchVerdict(FaultKind.NONE, "", state=run.state, operations=ops)


def compute_execution_proof(verdict: BatchVerdict, header: BatchHeader, ops_data: bytes,
                            ctx: SettlementContext) -> ExecutionProof:
    """The ``challenge_execution`` arguments for an ``EXECUTION`` verdict on this batch."""
    if verdict.kind is not FaultKind.EXECUTION or verdict.window is None or verdict.window_start is None:
        raise InvalidBatch("an execution proof needs an execution verdict", field="verdict")
    ctx = replace(ctx, timestamp=header.timestamp, checkpoint_interval=header.checkpoint_interval)
    windows = decode_ops_data(ops_data, len(header.checkpoint_roots))
    k, j = header.checkpoint_interval, verdict.window
    witness = compute_window_witness(verdict.window_start, verdict.operations[j * k:(j + 1) * k], ctx,
                                     malformed=verdict.malformed)
    return ExecutionProof(j, windows[j].core, windows[j].auth, tuple(compute_window_hash(w) for w in windows),
                          encode_preimage(witness.checkpoint),
                          tuple(encode_operation_witness(w) for w in witness.operations))
