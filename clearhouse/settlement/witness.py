"""Fraud-proof witnesses: what a challenger submits to re-execute one window of at most ``K``
operations on-chain, and :func:`verify_window`, the algorithm the Vyper fraud proof implements.

For each operation the witness opens, against the roots *current at that operation*, the account
leaves (at most 2) and consumed entries (at most 2) it touches, each set with one multi-key compact
proof (``clearhouse.merkle.sparse_multi``). ``verify_window`` checks the checkpoint's root
preimage, then for each operation: the opened keys are exactly the ones it touches, the proofs
hold, the operation's effect (the very rules of the STF), and the updated roots from the same
proofs. A bad witness raises :class:`~clearhouse.errors.InvalidWitness` (the challenge fails); any
other :class:`~clearhouse.errors.SettlementError` means the window holds an invalid operation
(the batch is fraudulent); otherwise the recomputed root is compared with the committed checkpoint.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from clearhouse.errors import InvalidProof, InvalidWitness, SettlementError
from clearhouse.merkle.sparse import SparseMerkleTree
from clearhouse.merkle.sparse_multi import (
    MultiCompactProof,
    get_multi_compact_proof,
    process_multi_compact_proof,
)
from clearhouse.settlement.context import SettlementContext
from clearhouse.settlement.operations import (
    Operation,
    OpType,
    get_touched_accounts,
    get_touched_entries,
)
from clearhouse.settlement.state import (
    ACCOUNT_TREE_DEPTH,
    ENTRY_TREE_DEPTH,
    Account,
    ConsumedEntry,
    Counters,
    SettlementState,
    StateCommitment,
    compute_account_hash,
    compute_commitment_root,
    compute_entry_hash,
    compute_entry_key,
    encode_account,
    encode_entry,
    get_commitment,
    get_live_cache,
)
from clearhouse.settlement.stf import Effect, compute_operation_effect
from clearhouse.types import AccountId, Digest

__all__ = [
    "OperationWitness",
    "WindowWitness",
    "compute_window_witness",
    "encode_operation_witness",
    "get_raw_touched",
    "verify_window",
]


@dataclass(frozen=True, slots=True)
class OperationWitness:
    """The leaves one operation touches, as they are just before it, with their proofs."""

    accounts: tuple[tuple[AccountId, Account | None], ...]
    """The touched account ids (``get_touched_accounts`` order) and their leaves (``None`` = empty)."""
    account_proof: MultiCompactProof | None
    """Multi-key proof of those leaves under the current accounts root (``None`` if no account)."""
    entries: tuple[tuple[int, ConsumedEntry | None], ...]
    """The touched consumed keys (``get_touched_entries`` order) and their entries."""
    entry_proof: MultiCompactProof | None
    """Multi-key proof of those entries under the current consumed root (``None`` if no entry)."""


@dataclass(frozen=True, slots=True)
class WindowWitness:
    """Everything ``verify_window`` needs beside the operations and the context."""

    checkpoint: StateCommitment
    """The preimage of the checkpoint root the window starts from."""
    operations: tuple[OperationWitness, ...]
    """One witness per operation of the window, in order (up to and including an invalid one)."""


class _View:
    """A state view over opened leaves (implements ``StateView``)."""

    __slots__ = ("accounts", "counters", "entries")

    def __init__(self, accounts: Mapping[AccountId, Account], entries: Mapping[int, ConsumedEntry],
                 counters: Counters) -> None:
        self.accounts = accounts
        self.entries = entries
        self.counters = counters


def _write(tree: SparseMerkleTree, values: Mapping[int, Digest]) -> None:
    tree.update_many(values.items())


def get_raw_touched(core: bytes, fee_account: AccountId) -> tuple[tuple[AccountId, ...], tuple[int, ...]]:
    """``get_touched_accounts`` / ``get_touched_entries`` read from an operation's raw core bytes
    (``lib/stf.vy`` ``_touched``): works for an operation no decoder accepts (a field out of range),
    whose leaves the fraud proof still opens before its rule refuses it."""
    def u(at: int, size: int) -> int:
        return int.from_bytes(core[at:at + size], "big")

    t = core[0]
    if t in (OpType.TRADE, OpType.RFQ_FILL):
        maker, taker = AccountId(u(1, 4)), AccountId(u(5, 4))
        n0, n1 = (u(123, 8), u(172, 8)) if t == OpType.TRADE else (u(57, 8), u(122, 8))
        k0, k1 = compute_entry_key(maker, n0), compute_entry_key(taker, n1)
        return (maker,) if maker == taker else (maker, taker), (k0,) if k0 == k1 else (k0, k1)
    if t == OpType.FEE:
        return (fee_account,), ()
    if t == OpType.TICK:
        return (), ()
    account = AccountId(u(1, 4))
    if t in (OpType.CANCEL, OpType.WITHDRAWAL):
        return (account,), (compute_entry_key(account, u(5, 8)),)
    return (account,), ()


def compute_window_witness(state: SettlementState, ops: Sequence[Operation], ctx: SettlementContext,
                           malformed: bytes | None = None) -> WindowWitness:
    """The witness of the window ``ops`` starting at ``state`` (the checkpoint state).

    Stops after the first invalid operation (its witness is included: it is what the fraud proof
    shows to be invalid). ``malformed``: the core of an operation after ``ops`` that no decoder
    accepts; if every one of ``ops`` is valid, its witness (from its raw bytes) ends the window's.
    ``state`` is untouched: its trees are moved along and then put back.
    """
    cache = get_live_cache(state)
    accounts = dict(state.accounts)
    entries = dict(state.entries)
    counters = state.counters
    witnesses: list[OperationWitness] = []
    touched_accounts: set[AccountId] = set()
    touched_entries: set[int] = set()
    def open_keys(account_keys: Sequence[AccountId], entry_keys: Sequence[int]) -> OperationWitness:
        return OperationWitness(
            tuple((k, accounts.get(k)) for k in account_keys),
            get_multi_compact_proof(cache.accounts, account_keys) if account_keys else None,
            tuple((k, entries.get(k)) for k in entry_keys),
            get_multi_compact_proof(cache.entries, entry_keys) if entry_keys else None)

    try:
        for op in ops:
            witnesses.append(open_keys(get_touched_accounts(op, ctx.fee_account), get_touched_entries(op)))
            try:
                effect = compute_operation_effect(_View(accounts, entries, counters), op, ctx)
            except SettlementError:
                break
            accounts.update(effect.accounts)
            entries.update(effect.entries)
            counters = effect.counters
            _write(cache.accounts, {k: compute_account_hash(a) for k, a in effect.accounts})
            _write(cache.entries, {k: compute_entry_hash(e) for k, e in effect.entries})
            touched_accounts.update(k for k, _ in effect.accounts)
            touched_entries.update(k for k, _ in effect.entries)
        else:
            if malformed is not None:
                witnesses.append(open_keys(*get_raw_touched(malformed, ctx.fee_account)))
    finally:
        _write(cache.accounts, {k: compute_account_hash(state.accounts.get(k)) for k in touched_accounts})
        _write(cache.entries, {k: compute_entry_hash(state.entries.get(k)) for k in touched_entries})
    return WindowWitness(get_commitment(state), tuple(witnesses))


def _encode_proof(proof: MultiCompactProof | None) -> bytes:
    if proof is None:
        return b""
    return (proof.flags.to_bytes(32, "big") + len(proof.siblings).to_bytes(2, "big")
            + b"".join(proof.siblings))


def encode_operation_witness(witness: OperationWitness) -> bytes:
    """The bytes the Vyper fraud proof reads for one operation (``docs/protocol.md`` § Fraud proofs):

    ``na uint8 ‖ na × (id uint32 ‖ len uint16 ‖ leaf) ‖ proof? ‖ ne uint8 ‖ ne × (key uint96 ‖
    present uint8 ‖ entry 49?) ‖ proof?`` with ``proof = flags uint256 ‖ n uint16 ‖ n × bytes32``,
    present iff its key list is non-empty. A missing leaf has length 0.
    """
    parts = [bytes((len(witness.accounts),))]
    for account_id, account in witness.accounts:
        leaf = b"" if account is None else encode_account(account)
        parts.append(account_id.to_bytes(4, "big") + len(leaf).to_bytes(2, "big") + leaf)
    parts.append(_encode_proof(witness.account_proof))
    parts.append(bytes((len(witness.entries),)))
    for key, entry in witness.entries:
        parts.append(key.to_bytes(12, "big") + (b"\x00" if entry is None else b"\x01" + encode_entry(entry)))
    parts.append(_encode_proof(witness.entry_proof))
    return b"".join(parts)


def _open(root: Digest, opened: Mapping[int, Digest], proof: MultiCompactProof | None, depth: int,
          what: str) -> None:
    if not opened:
        if proof is not None:
            raise InvalidWitness(f"a {what} proof for an operation touching no {what}", field=what)
        return
    if proof is None:
        raise InvalidWitness(f"no {what} proof", field=what)
    try:
        if process_multi_compact_proof(opened, proof, depth) != root:
            raise InvalidWitness(f"the {what} leaves are not under the current root", field=what)
    except InvalidProof as exc:
        raise InvalidWitness(f"malformed {what} proof: {exc.message}", field=what) from None


def _updated_root(root: Digest, opened: dict[int, Digest], written: Mapping[int, Digest],
                  proof: MultiCompactProof | None, depth: int) -> Digest:
    if not written or proof is None:
        return root
    return process_multi_compact_proof({**opened, **written}, proof, depth)


def _check_keys(witness: OperationWitness, op: Operation, ctx: SettlementContext) -> None:
    if tuple(k for k, _ in witness.accounts) != get_touched_accounts(op, ctx.fee_account):
        raise InvalidWitness("the opened accounts are not the ones the operation touches", field="accounts")
    if tuple(k for k, _ in witness.entries) != get_touched_entries(op):
        raise InvalidWitness("the opened entries are not the ones the operation touches", field="entries")


def _apply_witnessed(op: Operation, witness: OperationWitness, commitment: StateCommitment,
                     ctx: SettlementContext) -> StateCommitment:
    _check_keys(witness, op, ctx)
    old_accounts: dict[int, Digest] = {k: compute_account_hash(a) for k, a in witness.accounts}
    old_entries: dict[int, Digest] = {k: compute_entry_hash(e) for k, e in witness.entries}
    _open(commitment.accounts_root, old_accounts, witness.account_proof, ACCOUNT_TREE_DEPTH, "account")
    _open(commitment.consumed_root, old_entries, witness.entry_proof, ENTRY_TREE_DEPTH, "entry")
    view = _View({k: a for k, a in witness.accounts if a is not None},
                 {k: e for k, e in witness.entries if e is not None}, commitment.counters)
    effect: Effect = compute_operation_effect(view, op, ctx)  # a SettlementError here is the fraud
    return StateCommitment(
        _updated_root(commitment.accounts_root, old_accounts,
                      {k: compute_account_hash(a) for k, a in effect.accounts}, witness.account_proof,
                      ACCOUNT_TREE_DEPTH),
        _updated_root(commitment.consumed_root, old_entries,
                      {k: compute_entry_hash(e) for k, e in effect.entries}, witness.entry_proof,
                      ENTRY_TREE_DEPTH),
        effect.counters)


def verify_window(checkpoint_root: Digest, ops: Sequence[Operation], witness: WindowWitness,
                  ctx: SettlementContext) -> Digest:
    """The state root after ``ops`` from ``checkpoint_root``, recomputed from the witness alone.

    At most ``ctx.checkpoint_interval`` operations, one witness each (a window whose operation
    ``i`` is invalid needs witnesses only up to ``i``: that operation raises first). Raises
    :class:`~clearhouse.errors.InvalidWitness` if the witness does not open what it claims; raises
    the operation's own :class:`~clearhouse.errors.SettlementError` if an operation is invalid.
    """
    if not 1 <= len(ops) <= ctx.checkpoint_interval:
        raise InvalidWitness(f"a window holds 1 to {ctx.checkpoint_interval} operations", field="ops")
    if len(witness.operations) > len(ops):
        raise InvalidWitness("more operation witnesses than operations", field="operations")
    if compute_commitment_root(witness.checkpoint) != checkpoint_root:
        raise InvalidWitness("the checkpoint preimage does not hash to the checkpoint root",
                             field="checkpoint")
    commitment = witness.checkpoint
    for index, op in enumerate(ops):
        if index >= len(witness.operations):
            raise InvalidWitness(f"no witness for operation {index}", field="operations", index=index)
        commitment = _apply_witnessed(op, witness.operations[index], commitment, ctx)
    return compute_commitment_root(commitment)
