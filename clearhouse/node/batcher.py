"""The coordinator's batcher: queued items → batches → the outbox → the chain → final.

Every step is committed to the store before its side effect: items are queued (keyed by the hash of
their encoding, so a replay after a crash adds nothing), a batch's exact bytes are stored as
``built`` before it is posted, and each status change is recorded after the chain shows it. On
restart the batcher rebuilds its state by re-running the spec over the stored batches (which must
reproduce their bytes exactly) and reconciles each unfinished batch with the chain: a batch built
but not posted is posted with the same bytes, one already on chain is recorded, never a different
batch under the same number. Failpoints mark each step (``clearhouse.node.failpoints``).

Each batch is built under the governed parameter version of its number on chain
(``clearhouse.node.parameters``): its ``K``, ``max_positions`` and fee bound (the coordinator's fee
is capped by that bound). A stored batch the chain refuses because a parameter change made another
version apply to its number is dropped and its items are built again under the new version; while
an emergency pause closes posting, built batches wait.

A batch's header timestamp is the settlement clock's ceiling: a signed item applies only if the
clock it runs at is within ``max_clock_lag`` of it (``StaleClock``). So the batcher never stamps a
batch later than its oldest pending signed item allows (:func:`compute_stamp_limit`), however far
chain time has moved. An item the spec still refuses was acknowledged by the coordinator and will
not settle: the batcher logs it at ERROR, counts it (:attr:`Batcher.refused_total`, the node's
``clearhouse_settlement_refused_items`` metric) and reports itself degraded
(:meth:`Batcher.get_health`, the node's ``/health``).
"""

from __future__ import annotations

import enum
import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields, is_dataclass, replace
from typing import Any, Final, Protocol

from eth_account.signers.local import LocalAccount

from clearhouse.chain import Chain, Contract
from clearhouse.errors import BatchConflict, ContractRevert, InvalidPayload, SettlementError
from clearhouse.market.instruments import OptionKind, Series
from clearhouse.market.trades import Signed, Trade
from clearhouse.merkle.sparse import CompactProof
from clearhouse.messages.keccak import keccak256
from clearhouse.messages.schema import MAX_LEGS, Side, TimeInForce
from clearhouse.messages.structs import Accept, Cancel, Leg, Order, Quote, QuoteLeg, Withdrawal
from clearhouse.node.failpoints import failpoint
from clearhouse.node.parameters import ChainParameters, load_chain_parameters
from clearhouse.settlement import (
    BuiltBatch,
    CancelRequest,
    ExpirySettlement,
    FeeSweep,
    QueuedDeposit,
    QueuedForcedWithdrawal,
    SettlementContext,
    SettlementState,
    WithdrawalRequest,
    build_batch,
    compute_genesis_state,
    encode_header,
    encode_ops_data,
    get_new_root,
)
from clearhouse.settlement.batch import BatchItem, Rejection
from clearhouse.settlement.state import (
    Account,
    StateCommitment,
    encode_counters,
    get_account,
    get_commitment,
    get_state_root,
)
from clearhouse.settlement.state import get_account_proof as get_state_account_proof
from clearhouse.store import BatchRecord, Store
from clearhouse.types import AccountId, BatchNumber, Digest, SeriesId, Timestamp

__all__ = [
    "AccountProof",
    "Batcher",
    "BatcherParams",
    "Refusal",
    "SettlementContracts",
    "compute_item_key",
    "compute_stamp_limit",
    "decode_item",
    "encode_item",
    "get_header_number",
    "get_header_timestamp",
]

log = logging.getLogger("clearhouse.node.batcher")

SMALL_OPS_DATA: Final = 65536
"""``Settlement.SMALL_OPS_DATA``: above it a batch goes through ``post_large_batch``."""
_U64: Final = (1 << 64) - 1
_WAIT_REASONS: Final = ("timestamp in the future", "settlement: emergency pause")
"""Refusals after which a built batch is posted again later, unchanged."""
_STALE_REASONS: Final = ("settlement: wrong parameter version", "settlement: wrong K",
                          "settlement: timestamp too old")
"""Refusals after which a built batch is dropped and built again: a parameter change, or a batch
that waited (behind an emergency pause) until its header time fell out of ``max_post_delay``."""
POST_MARGIN: Final = 300
"""Seconds a header is kept younger than ``max_post_delay`` requires, for the time between building
and the block that includes the post."""
RECENT_REFUSALS: Final = 20
"""Refusals :meth:`Batcher.get_health` lists (the count covers all of them)."""

# --- item encoding -----------------------------------------------------------------------------

_CODEC_TYPES: Final[tuple[type[Any], ...]] = (
    Trade, Signed, Order, Quote, Accept, Cancel, Withdrawal, Leg, QuoteLeg, QueuedDeposit,
    QueuedForcedWithdrawal, CancelRequest, WithdrawalRequest, ExpirySettlement, FeeSweep,
)
_CLASSES: Final = {cls.__name__: cls for cls in _CODEC_TYPES}
_ENUMS: Final[dict[str, type[enum.IntEnum]]] = {e.__name__: e for e in (Side, TimeInForce, OptionKind)}
_ITEM_TYPES: Final = (Trade, QueuedDeposit, QueuedForcedWithdrawal, CancelRequest, WithdrawalRequest,
                      ExpirySettlement, FeeSweep)


def _encode(value: Any) -> Any:
    if isinstance(value, enum.IntEnum):
        return {"$e": type(value).__name__, "v": int(value)}
    if isinstance(value, bool | str) or value is None:
        return value
    if isinstance(value, int):
        return value if abs(value) < 1 << 53 else {"$i": str(value)}  # exact past JS doubles
    if isinstance(value, bytes):
        return {"$b": value.hex()}
    if isinstance(value, tuple):
        return {"$t": [_encode(v) for v in value]}
    if is_dataclass(value) and type(value).__name__ in _CLASSES:
        return {"$": type(value).__name__, **{f.name: _encode(getattr(value, f.name)) for f in fields(value)}}
    raise InvalidPayload(f"cannot encode a {type(value).__name__} in a batch item", field="item")


def _decode(value: Any) -> Any:
    if not isinstance(value, dict):
        if isinstance(value, list):
            raise InvalidPayload("bare list in an encoded item", field="item")
        return value
    if "$b" in value:
        return bytes.fromhex(value["$b"])
    if "$i" in value:
        return int(value["$i"])
    if "$t" in value:
        return tuple(_decode(v) for v in value["$t"])
    if "$e" in value:
        return _ENUMS[value["$e"]](value["v"])
    cls = _CLASSES.get(value.get("$", ""))
    if cls is None:
        raise InvalidPayload(f"unknown item type {value.get('$')!r}", field="item")
    return cls(**{k: _decode(v) for k, v in value.items() if k != "$"})


def encode_item(item: BatchItem) -> dict[str, Any]:
    """A batch item as plain JSON (typed: every dataclass, enum, bytes and big int is tagged)."""
    if not isinstance(item, _ITEM_TYPES):
        raise InvalidPayload(f"not a batch item: {type(item).__name__}", field="item")
    encoded: dict[str, Any] = _encode(item)
    return encoded


def decode_item(data: Mapping[str, Any]) -> BatchItem:
    """The inverse of :func:`encode_item`; :class:`InvalidPayload` for anything else."""
    try:
        item = _decode(dict(data))
    except (KeyError, TypeError, ValueError) as exc:
        raise InvalidPayload(f"not an encoded batch item: {exc}", field="item") from exc
    if not isinstance(item, _ITEM_TYPES):
        raise InvalidPayload("not an encoded batch item", field="item")
    return item


def compute_item_key(encoded: Mapping[str, Any]) -> bytes:
    """``keccak`` of the item's canonical JSON: its identity in the batch queue."""
    return keccak256(json.dumps(encoded, sort_keys=True, separators=(",", ":")).encode())


def _get_item_time(item: BatchItem) -> Timestamp | None:
    return item.time if isinstance(item, Trade | CancelRequest | WithdrawalRequest) else None


def compute_stamp_limit(clock: Timestamp, items: Sequence[BatchItem], max_clock_lag: int) -> Timestamp | None:
    """The latest header timestamp at which every timed (signed) item of ``items`` still applies,
    seconds: the clock the first one runs at (``max(clock, its time)``; the clock only moves
    forward, so every later item runs at a clock at least as late) plus ``max_clock_lag``.
    ``None`` if no item is timed (deposits and forced withdrawals apply at any timestamp)."""
    times = (t for t in map(_get_item_time, items) if t is not None)
    first = next(times, None)
    return None if first is None else Timestamp(max(clock, first) + max_clock_lag)


def _continues_fill(previous: BatchItem, item: BatchItem) -> bool:
    """True if ``item`` is a further leg of the RFQ fill ``previous`` belongs to."""
    return (isinstance(previous, Trade) and isinstance(item, Trade) and previous.legs > 1
            and item.fill_id == previous.fill_id)


def get_header_number(header: bytes) -> BatchNumber:
    """The batch number of an encoded header (its first 8 bytes)."""
    return BatchNumber(int.from_bytes(header[0:8], "big"))


def get_header_timestamp(header: bytes) -> Timestamp:
    """The timestamp of an encoded header (bytes 208..216)."""
    return Timestamp(int.from_bytes(header[208:216], "big"))


def get_header_version(header: bytes) -> int:
    """The parameter version of an encoded header (bytes 216..220)."""
    return int.from_bytes(header[216:220], "big")


# --- the batcher -------------------------------------------------------------------------------


class SettlementContracts(Protocol):
    """What the batcher needs of a deployment (``clearhouse.sim.settlement_chain.SettlementSystem``
    has it)."""

    @property
    def settlement(self) -> Contract: ...

    @property
    def coordinator(self) -> LocalAccount: ...


@dataclass(frozen=True, slots=True)
class BatcherParams:
    """How the coordinator batches (K and the challenge window are read from the contract)."""

    context: Callable[[Timestamp], SettlementContext]
    """The settlement context at a batch timestamp (listed expiries, settlement prices, fees)."""
    series: Mapping[SeriesId, Series]
    """Terms of every traded series id."""
    batch_interval: int = 0
    """Seconds between two batches (0: a batch at every tick with items due)."""
    max_items: int = 256
    """Most queued items one batch takes."""


@dataclass(frozen=True, slots=True)
class Refusal:
    """An acknowledged item the spec refused: the coordinator's ledger and the settled state differ."""

    item_key: bytes
    """The item's queue key (:func:`compute_item_key`)."""
    kind: str
    """Its type (``Trade``, ``CancelRequest``, …)."""
    reason: str
    """The STF's error code (``stale_clock``, ``insufficient_collateral``, …)."""
    batch: int | None
    """The batch it was left out of; ``None``: every item of the attempt was refused, no batch."""

    def to_json(self) -> dict[str, Any]:
        """As ``/health`` lists it."""
        return {"item": "0x" + self.item_key.hex(), "kind": self.kind, "reason": self.reason,
                "batch": self.batch}


@dataclass(frozen=True, slots=True)
class AccountProof:
    """An account's leaf and its proof against the last finalised state root."""

    number: BatchNumber
    """The last finalised batch (0: genesis)."""
    state_root: Digest
    """``Settlement.batch_root(number)``."""
    preimage: bytes
    """The 168 bytes after ``0x02`` of the root's preimage: accounts root, consumed root, counters."""
    account_id: AccountId
    """The account."""
    leaf: Account | None
    """Its leaf (``None``: absent, and the proof shows it)."""
    proof: CompactProof
    """Compact proof of the leaf under the accounts root (the preimage's first 32 bytes)."""


class Batcher:
    """Turns queued items into batches and walks each through the outbox to final.

    Drive it with :meth:`add_items` and :meth:`on_tick`; the first tick after construction
    recovers (rebuilds state from the stored batches and reconciles them with the chain).
    """

    def __init__(self, store: Store, chain: Chain, contracts: SettlementContracts,
                 params: BatcherParams, *,
                 observer: Callable[[str, BatchRecord], None] | None = None) -> None:
        self.store, self.chain, self.contracts, self.params = store, chain, contracts, params
        self._observer = observer
        self._recovered = False
        self._k = 0
        self._state: SettlementState = compute_genesis_state()
        self._states: dict[int, SettlementState] = {0: self._state}
        self._last_built_at: Timestamp | None = None
        self._parameters = ChainParameters(None)
        self._max_post_delay = 0
        self.refused_total = 0
        """Acknowledged items the spec refused, all time (read from the store on recovery)."""
        self.refusals: tuple[Refusal, ...] = ()
        """The last :data:`RECENT_REFUSALS` of them, oldest first."""

    # --- input -------------------------------------------------------------------------------

    def add_items(self, items: Sequence[BatchItem]) -> int:
        """Queue ``items`` (committed); ones queued before are skipped. Returns how many are new."""
        encoded = [encode_item(item) for item in items]
        return self.store.enqueue_items([(compute_item_key(e), e) for e in encoded])

    # --- the loop ----------------------------------------------------------------------------

    def on_tick(self, now: Timestamp) -> None:
        """Recover if needed, move every unfinished batch along, and build the next one when due —
        not while a stored batch still waits to be posted (behind a pause, say): new items wait in
        the queue, and only that one batch can go stale."""
        if not self._recovered:
            self.recover()
        if self._advance() and self._is_due(now) and self._build(now) is not None:
            self._advance()

    def recover(self) -> None:
        """Rebuild the state from the stored batches (their bytes must come out identical), then
        reconcile the unfinished ones with the chain."""
        settlement = self.contracts.settlement
        self._k = int(settlement.call("checkpoint_interval"))
        self._max_post_delay = int(settlement.call("max_post_delay"))
        self._parameters = load_chain_parameters(self.chain, settlement)
        refused = self.store.list_rejected_items()
        self.refused_total = len(refused)
        self.refusals = tuple(Refusal(q.item_key, str(q.item.get("$", "?")), q.rejected or "", q.batch_number)
                              for q in refused[-RECENT_REFUSALS:])
        state = compute_genesis_state()
        self._states = {0: state}
        for record in self.store.list_batches():
            state = self._rebuild(state, record)
            self._states[record.number] = state
            self._last_built_at = get_header_timestamp(record.header)
        self._state = state
        self._prune()
        self._recovered = True
        self._advance()

    def _context(self, timestamp: Timestamp, *, number: int | None = None,
                 version: int | None = None) -> SettlementContext:
        """The deployment's context at ``timestamp`` under the parameter version of batch ``number``
        on chain (or under ``version``: a stored header's)."""
        base = replace(self.params.context(timestamp), checkpoint_interval=self._k)
        return self._parameters.get_context(base, number=number, version=version)

    def _build_under(self, state: SettlementState, items: Sequence[BatchItem], ctx: SettlementContext,
                     number: BatchNumber) -> BuiltBatch:
        return build_batch(state, items, ctx, self.params.series, number=number, k=ctx.checkpoint_interval)

    def _rebuild(self, state: SettlementState, record: BatchRecord) -> SettlementState:
        items = [decode_item(q.item) for q in self.store.list_batch_items(record.number)]
        timestamp = get_header_timestamp(record.header)
        ctx = self._context(timestamp, version=get_header_version(record.header))
        built = self._build_under(state, items, ctx, BatchNumber(record.number))
        if (encode_header(built.result.header), encode_ops_data(built.windows)) != (
                record.header, record.ops_data):
            raise BatchConflict(f"stored batch {record.number} does not rebuild from its items",
                                field="number", number=record.number)
        return built.result.state

    def _is_due(self, now: Timestamp) -> bool:
        last = self._last_built_at
        return last is None or now >= last + self.params.batch_interval

    def _stamp(self, now: Timestamp, number: BatchNumber, pending: Sequence[BatchItem]) -> Timestamp | None:
        """The header timestamp of batch ``number`` built at ``now``: chain time, but no later than
        the oldest pending signed item allows (:func:`compute_stamp_limit`) — unless that is before
        the previous batch's timestamp or older than the contract's ``max_post_delay`` (then the
        item cannot settle whatever the stamp, and the spec refuses it). ``None``: wait."""
        base = Timestamp(min(now, self.chain.now()))
        last = self._last_built_at
        if last is not None and base < last:
            return None
        lag = self._context(base, number=number).max_clock_lag
        limit = compute_stamp_limit(self._state.counters.clock, pending[:self.params.max_items], lag)
        if limit is None or limit >= base:
            return base
        oldest = self.chain.now() - self._max_post_delay + min(POST_MARGIN, self._max_post_delay // 2)
        return Timestamp(max(last or 0, min(base, max(limit, oldest))))

    def _build(self, now: Timestamp) -> BatchRecord | None:
        """Build, store (``built``) and return the next batch from the due queued items, if any."""
        number = BatchNumber(max(self._states) + 1)
        # a batch takes at most max_items, plus the rest of an RFQ fill begun at the boundary
        window = self.store.list_pending_items()[:self.params.max_items + MAX_LEGS]
        pending = [(q.item_key, decode_item(q.item)) for q in window]
        timestamp = self._stamp(now, number, [item for _, item in pending])
        if timestamp is None:
            return None
        selected = self._select(pending, timestamp)
        if not selected:
            return None
        try:
            built = self._build_under(self._state, [item for _, item in selected],
                                      self._context(timestamp, number=number), number)
        except SettlementError as exc:  # every item refused: record them so they leave the queue
            reasons = self._rejected_keys_of(exc.context.get("rejected", ()))
            refused = [(key, item, reasons.get(key, exc.code)) for key, item in selected]
            for reason in dict.fromkeys(r for _, _, r in refused):
                self.store.reject_items([key for key, _, r in refused if r == reason], reason)
            self._alarm(refused, None)
            return None
        rejected = self._rejected_keys(built)
        taken = [key for key, _ in selected if key not in rejected]
        header, ops_data = encode_header(built.result.header), encode_ops_data(built.windows)
        failpoint("batch.built")
        record = self.store.put_batch(number, header, ops_data, get_new_root(built.result.header),
                                      item_keys=taken, rejected=rejected)
        failpoint("batch.stored")
        self._alarm([(key, item, rejected[key]) for key, item in selected if key in rejected], number)
        self._notify("stored", number)
        self._state = built.result.state
        self._states[number] = self._state
        self._last_built_at = timestamp
        return record

    def _select(self, pending: Sequence[tuple[bytes, BatchItem]], timestamp: Timestamp
                ) -> list[tuple[bytes, BatchItem]]:
        """``pending`` items (keyed, in queue order), up to ``max_items`` (the legs of an RFQ fill
        are never split), stopping at the first item timed after ``timestamp``."""
        selected: list[tuple[bytes, BatchItem]] = []
        for key, item in pending:
            item_time = _get_item_time(item)
            if item_time is not None and item_time > timestamp:
                break  # later items wait for a later batch, in order
            if len(selected) >= self.params.max_items and not _continues_fill(selected[-1][1], item):
                break
            selected.append((key, item))
        return selected

    def _notify(self, what: str, number: int) -> None:
        if self._observer is not None:
            record = self.store.get_batch(number)
            if record is not None:
                self._observer(what, record)

    def _alarm(self, refused: Sequence[tuple[bytes, BatchItem, str]], number: int | None) -> None:
        """Raise the alarm for acknowledged items the spec refused: they will never settle."""
        if not refused:
            return
        new = tuple(Refusal(key, type(item).__name__, reason, number) for key, item, reason in refused)
        for r in new:
            log.error("batch %s: the spec refused acknowledged %s 0x%s (%s); the coordinator's ledger "
                      "and the settled state now differ", "-" if number is None else number, r.kind,
                      r.item_key.hex(), r.reason)
        self.refused_total += len(new)
        self.refusals = (*self.refusals, *new)[-RECENT_REFUSALS:]

    def get_health(self) -> dict[str, Any]:
        """``ok`` unless an acknowledged item was ever refused (then ``degraded``: it will not
        settle, and the ledger the node serves differs from the chain's), with the count and the
        most recent refusals."""
        refusals, total = self.refusals, self.refused_total
        return {"ok": total == 0, "status": "ok" if total == 0 else "degraded", "refusedItems": total,
                "recentRefusals": [r.to_json() for r in refusals]}

    @staticmethod
    def _rejected_keys(built: BuiltBatch) -> dict[bytes, str]:
        return Batcher._rejected_keys_of(built.rejected)

    @staticmethod
    def _rejected_keys_of(rejections: object) -> dict[bytes, str]:
        out: dict[bytes, str] = {}
        for rejection in rejections if isinstance(rejections, tuple) else ():
            if not isinstance(rejection, Rejection):
                continue
            group = rejection.item if isinstance(rejection.item, tuple) else (rejection.item,)
            for item in group:
                out[compute_item_key(encode_item(item))] = rejection.error.code
        return out

    # --- outbox --------------------------------------------------------------------------------

    def _advance(self) -> bool:
        """Move every unfinished batch along; False if one still waits to be posted."""
        for record in self.store.list_batches():
            if record.status in ("final", "challenged"):
                continue
            if not self._advance_one(record):
                return False  # later batches wait for this one
        return True

    def _on_chain(self, record: BatchRecord) -> bool:
        """True if the batch is on chain with our header; :class:`BatchConflict` if another is."""
        settlement, number = self.contracts.settlement, record.number
        if int(settlement.call("last_batch")) < number:
            return False
        ours = keccak256(record.header)
        theirs = bytes(settlement.call("batch_header_hash", number))
        if theirs != ours:
            raise BatchConflict(f"batch {number} on chain is not the stored one", field="number",
                                number=number)
        return True

    def _advance_one(self, record: BatchRecord) -> bool:
        """Move one batch as far as the chain allows; True when it reached ``included`` or beyond, or
        went stale and was dropped."""
        number, status = record.number, record.status
        if status in ("built", "posted"):
            if not self._on_chain(record):
                tx_hash = self._post(record)
                if tx_hash is None:  # it waits, or it went stale and was dropped (then nothing waits)
                    return number not in self._states
                failpoint("batch.posted")
                self.store.set_batch_status(number, "posted", tx_hash)
                self._notify("posted", number)
            elif status == "built":  # posted before a crash, not recorded: record it now
                self.store.set_batch_status(number, "posted")
            self.store.set_batch_status(number, "included")
            failpoint("batch.included")
            self._notify("included", number)
            status = "included"
        if status == "included":
            self._finalize(number)
        return True

    def _post(self, record: BatchRecord) -> bytes | None:
        """Send the stored bytes; the tx hash, or ``None`` if the chain cannot take it yet."""
        settlement = self.contracts.settlement
        entry = "post_batch" if len(record.ops_data) <= SMALL_OPS_DATA else "post_large_batch"
        if int(settlement.call("last_batch")) != record.number - 1:
            return None
        try:
            receipt = settlement.transact(entry, record.header, record.ops_data,
                                          sender=self.contracts.coordinator)
        except ContractRevert as exc:
            reason = exc.reason or ""
            if any(r in reason for r in _WAIT_REASONS):
                return None
            if any(r in reason for r in _STALE_REASONS):
                self._drop(record.number)
                return None
            raise
        return bytes.fromhex(receipt.tx_hash.removeprefix("0x"))

    def _drop(self, number: int) -> None:
        """Forget stored batch ``number`` (the last, refused as stale: its parameter version or its
        header time): its items go back to the queue and are built again under what now applies."""
        self.store.drop_batch(number)
        del self._states[number]
        self._state = self._states[max(self._states)]
        previous = self.store.get_batch(number - 1)
        self._last_built_at = None if previous is None else get_header_timestamp(previous.header)

    def _finalize(self, number: int) -> None:
        settlement = self.contracts.settlement
        if int(settlement.call("last_finalized")) < number:
            window_end = int(settlement.call("batch_meta", number)) & _U64
            if self.chain.now() < window_end:
                return
            settlement.transact("finalize", number, sender=self.contracts.coordinator)
            failpoint("batch.finalized")
        self.store.set_batch_status(number, "final")
        self._notify("final", number)
        self._prune()

    def _prune(self) -> None:
        """Keep the states of the last final batch and later ones only."""
        final = self._last_final()
        for number in [n for n in self._states if n < final]:
            del self._states[number]

    def _last_final(self) -> int:
        finals = self.store.list_batches("final")
        return finals[-1].number if finals else 0

    # --- reads ---------------------------------------------------------------------------------

    @property
    def state(self) -> SettlementState:
        """The state after the last stored batch."""
        return self._state

    def get_account_proof(self, account_id: AccountId) -> AccountProof:
        """``account_id``'s leaf and compact proof against the last finalised root."""
        if not self._recovered:
            self.recover()
        number = self._last_final()
        state = self._states[number]
        commitment: StateCommitment = get_commitment(state)
        preimage = commitment.accounts_root + commitment.consumed_root + encode_counters(commitment.counters)
        return AccountProof(BatchNumber(number), get_state_root(state), preimage, account_id,
                            get_account(state, account_id), get_state_account_proof(state, account_id))

