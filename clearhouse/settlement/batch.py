"""Batch building: what matching and the vault produced, turned into operations, applied, encoded.

Pure: no I/O, no clock. Inputs are market :class:`~clearhouse.market.trades.Trade` records (RFQ
legs sharing a ``fill_id`` become one atomic :class:`RfqFillOp`), queue entries read from the vault,
signed cancels and withdrawals with the time they were accepted, expiry settlements and fee sweeps.
The builder ticks the clock to each item's time, refuses (and reports) any item the STF refuses,
and returns the new state, the header, its hash and the windows' bytes to post.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial

from clearhouse.errors import InvalidBatch, InvalidSeries, SettlementError, UnknownAccount
from clearhouse.market.instruments import Series
from clearhouse.market.trades import Signed, Trade
from clearhouse.messages.structs import Accept, Cancel, Order, Quote, Withdrawal
from clearhouse.settlement.context import SettlementContext, compute_expiry_id
from clearhouse.settlement.encoding import WindowData, compute_windows
from clearhouse.settlement.header import compute_header_hash
from clearhouse.settlement.operations import (
    AcceptTerms,
    CancelOp,
    DepositOp,
    FeeOp,
    ForcedWithdrawalOp,
    Operation,
    OrderTerms,
    QuoteTerms,
    RfqFillOp,
    RfqLeg,
    SettleExpiryOp,
    TickOp,
    TradeOp,
    WithdrawalOp,
)
from clearhouse.settlement.state import SettlementState
from clearhouse.settlement.stf import (
    FIRST_BATCH,
    BatchResult,
    BatchRun,
    compute_free_collateral,
)
from clearhouse.types import (
    AccountId,
    Address,
    Amount,
    BatchNumber,
    Digest,
    ExpiryId,
    SeriesId,
    Timestamp,
)

__all__ = [
    "BatchItem",
    "BuiltBatch",
    "CancelRequest",
    "ExpirySettlement",
    "FeeSweep",
    "QueuedDeposit",
    "QueuedForcedWithdrawal",
    "Rejection",
    "WithdrawalRequest",
    "build_batch",
    "compute_rfq_operation",
    "compute_trade_operation",
]


@dataclass(frozen=True, slots=True)
class QueuedDeposit:
    """One entry of the vault's deposit queue, in queue order."""

    account: AccountId
    """The id the vault assigned to the depositor."""
    owner: Address
    """The depositor."""
    amount: Amount
    """Quote base units deposited."""
    index: int = 0
    """Its position in the vault's queue: the entry's identity (two equal deposits are two
    entries); the rules read the queue order from the batch, not this."""


@dataclass(frozen=True, slots=True)
class QueuedForcedWithdrawal:
    """One entry of the vault's forced-withdrawal queue, in queue order."""

    account: AccountId
    """The account id named."""
    owner: Address
    """Who queued it (and is paid)."""
    requested: Amount
    """Quote base units asked for."""
    index: int = 0
    """Its position in the vault's queue (identity only, like :attr:`QueuedDeposit.index`)."""


@dataclass(frozen=True, slots=True)
class CancelRequest:
    """A verified cancel and when the coordinator accepted it."""

    cancel: Signed[Cancel]
    """The signed cancel."""
    time: Timestamp
    """When it was accepted (the clock is ticked to it)."""


@dataclass(frozen=True, slots=True)
class WithdrawalRequest:
    """A verified withdrawal request and when the coordinator accepted it."""

    withdrawal: Withdrawal
    """The withdrawal request."""
    signature: bytes
    """Its owner's 65-byte signature (checked on ingest and again by the STF)."""
    time: Timestamp
    """When it was accepted."""


@dataclass(frozen=True, slots=True)
class ExpirySettlement:
    """Settle one account's positions of one expiry."""

    account: Address
    """The account's owner (its id is the vault's, as for cancels and withdrawals)."""
    expiry_id: ExpiryId
    """The expiry (it must have a settlement price in the context)."""
    time: Timestamp
    """When the coordinator settled it, at or after the expiry (the clock is ticked to it)."""


@dataclass(frozen=True, slots=True)
class FeeSweep:
    """Move collected fees to the fee account."""

    amount: Amount
    """Quote base units."""


BatchItem = (Trade | QueuedDeposit | QueuedForcedWithdrawal | CancelRequest | WithdrawalRequest
             | ExpirySettlement | FeeSweep)
"""Anything a batch is built from."""


@dataclass(frozen=True, slots=True)
class Rejection:
    """An item the STF refused: left out of the batch."""

    item: object
    """The item (for an RFQ fill, the tuple of its leg trades)."""
    error: SettlementError
    """Why."""


@dataclass(frozen=True, slots=True)
class BuiltBatch:
    """A batch ready to post."""

    result: BatchResult
    """New state, header, operations, payouts."""
    windows: tuple[WindowData, ...]
    """The posted data, window by window (cores and signatures)."""
    header_hash: Digest
    """``compute_header_hash(result.header)``: what the contract stores."""
    rejected: tuple[Rejection, ...]
    """Items left out, with the STF's reason."""


# --- conversions -------------------------------------------------------------------------------


def _get_id(ids: Mapping[Address, AccountId], address: Address, field: str) -> AccountId:
    account_id = ids.get(address)
    if account_id is None:
        raise UnknownAccount(f"{address} has no account id", field=field, address=address)
    return account_id


def _get_series(series: Mapping[SeriesId, Series], series_id: SeriesId) -> Series:
    terms = series.get(series_id)
    if terms is None:
        raise InvalidSeries(f"no terms for series 0x{bytes(series_id).hex()}", field="seriesId")
    return terms


def _expiry_id(terms: Series) -> ExpiryId:
    return compute_expiry_id(terms.pair.underlying, terms.pair.quote, terms.expiry)


def _order_terms(order: Order) -> OrderTerms:
    return OrderTerms(order.nonce, order.price, order.quantity, order.time_in_force, order.expiry)


def compute_trade_operation(trade: Trade, ids: Mapping[Address, AccountId],
                            series: Mapping[SeriesId, Series]) -> TradeOp:
    """The operation of one order-book fill (both sides' signed orders travel with it), charging
    the fees the trade was matched with."""
    maker, taker = trade.maker_auth.message, trade.taker_auth.message
    if not isinstance(maker, Order) or not isinstance(taker, Order):
        raise InvalidBatch("a book trade is authorised by two orders", field="trade")
    terms = _get_series(series, trade.series_id)
    return TradeOp(_get_id(ids, trade.maker, "maker"), _get_id(ids, trade.taker, "taker"), _expiry_id(terms),
                   terms.strike, terms.kind, trade.maker_side, trade.quantity, trade.price, trade.maker_fee,
                   trade.taker_fee,
                   _order_terms(maker), _order_terms(taker), trade.maker_auth.signature,
                   trade.taker_auth.signature)


def compute_rfq_operation(trades: Sequence[Trade], ids: Mapping[Address, AccountId],
                          series: Mapping[SeriesId, Series], contract_unit: int) -> RfqFillOp:
    """The one atomic operation of every leg of an accepted quote (``trades`` share a ``fill_id``),
    charging the fees the fill was matched with."""
    first = trades[0]
    quote, accept = first.maker_auth, first.taker_auth
    if not isinstance(quote.message, Quote) or not isinstance(accept.message, Accept):
        raise InvalidBatch("an RFQ fill is authorised by a quote and an accept", field="trade")
    if ([t.leg for t in trades] != list(range(first.legs))
            or any(t.fill_id != first.fill_id for t in trades)):
        raise InvalidBatch("an RFQ fill needs all its legs in order, and only them", field="legs")
    q, a = quote.message, accept.message
    legs = []
    for leg in q.legs:
        terms = _get_series(series, leg.series_id)
        legs.append(RfqLeg(_expiry_id(terms), terms.strike, terms.kind, leg.ratio, leg.is_buy, leg.price))
    return RfqFillOp(_get_id(ids, q.maker, "maker"), _get_id(ids, a.taker, "taker"), a.size,
                     Amount(sum(t.maker_fee for t in trades)), Amount(sum(t.taker_fee for t in trades)),
                     QuoteTerms(q.nonce, q.rfq_id, q.side, q.size, q.expiry, tuple(legs)),
                     AcceptTerms(a.nonce, a.expiry), quote.signature, accept.signature)


# --- building ----------------------------------------------------------------------------------


class _Builder:
    """The batch run plus the address → id map it grows as deposits register accounts."""

    __slots__ = ("ids", "rejected", "run", "series")

    def __init__(self, run: BatchRun, series: Mapping[SeriesId, Series]) -> None:
        self.run, self.series = run, series
        self.ids: dict[Address, AccountId] = {a.owner: i for i, a in run.base.accounts.items()}
        self.rejected: list[Rejection] = []

    def add(self, item: object, time: Timestamp | None, make: Callable[[], Operation]) -> None:
        try:
            if time is not None and time > self.run.counters.clock:
                self.run.apply(TickOp(time))
            op = make()
            self.run.apply(op)
        except SettlementError as exc:
            self.rejected.append(Rejection(item, exc))
            return
        if isinstance(op, DepositOp):
            self.ids.setdefault(op.owner, op.account)

    def forced(self, item: QueuedForcedWithdrawal) -> ForcedWithdrawalOp:
        account = self.run.accounts.get(item.account)
        free = (compute_free_collateral(account, self.run.ctx)
                if account is not None and account.owner == item.owner else 0)
        return ForcedWithdrawalOp(item.account, item.owner, item.requested,
                                  Amount(min(item.requested, free)))

    def cancel(self, item: CancelRequest) -> CancelOp:
        c = item.cancel.message
        return CancelOp(_get_id(self.ids, c.account, "account"), c.nonce, c.order_hash, c.expiry,
                        item.cancel.signature)

    def withdrawal(self, item: WithdrawalRequest) -> WithdrawalOp:
        w = item.withdrawal
        return WithdrawalOp(_get_id(self.ids, w.account, "account"), w.nonce, w.recipient, w.amount,
                            w.expiry, item.signature)


def _add_item(builder: _Builder, item: BatchItem) -> None:
    if isinstance(item, QueuedDeposit):
        builder.add(item, None, lambda: DepositOp(item.account, item.owner, item.amount))
    elif isinstance(item, QueuedForcedWithdrawal):
        builder.add(item, None, lambda: builder.forced(item))
    elif isinstance(item, CancelRequest):
        builder.add(item, item.time, lambda: builder.cancel(item))
    elif isinstance(item, WithdrawalRequest):
        builder.add(item, item.time, lambda: builder.withdrawal(item))
    elif isinstance(item, ExpirySettlement):
        builder.add(item, item.time, lambda: SettleExpiryOp(_get_id(builder.ids, item.account, "account"),
                                                             item.expiry_id))
    elif isinstance(item, FeeSweep):
        builder.add(item, None, lambda: FeeOp(item.amount))
    else:
        builder.add(item, item.time, lambda: compute_trade_operation(item, builder.ids, builder.series))


def _add_items(builder: _Builder, items: Iterable[BatchItem]) -> None:
    legs: list[Trade] = []
    for item in items:
        if isinstance(item, Trade) and isinstance(item.maker_auth.message, Quote):
            if legs and legs[0].fill_id != item.fill_id:
                builder.rejected.append(Rejection(tuple(legs), InvalidBatch("incomplete RFQ fill",
                                                                            field="legs")))
                legs = []
            legs.append(item)
            if len(legs) == item.legs:
                group = tuple(legs)
                builder.add(group, item.time, partial(compute_rfq_operation, group, builder.ids,
                                                      builder.series, builder.run.ctx.contract_unit))
                legs = []
            continue
        _add_item(builder, item)
    if legs:
        builder.rejected.append(Rejection(tuple(legs), InvalidBatch("incomplete RFQ fill", field="legs")))


def build_batch(state: SettlementState, items: Iterable[BatchItem], ctx: SettlementContext,
                series: Mapping[SeriesId, Series], *, number: BatchNumber = FIRST_BATCH,
                k: int | None = None) -> BuiltBatch:
    """Build batch ``number`` on ``state`` from ``items`` in order.

    ``series`` gives the terms of every traded series id (the market's listings); each fill pays
    the fees its trades carry (the STF refuses one above ``ctx.max_fee_bps``). Items the STF refuses
    are left out and reported; :class:`~clearhouse.errors.InvalidBatch` if nothing is left (when
    every item was refused, its ``context["rejected"]`` holds their :class:`Rejection` records).
    """
    run = BatchRun(state, ctx, ctx.checkpoint_interval if k is None else k)
    builder = _Builder(run, series)
    try:
        _add_items(builder, items)
        if not run.ops and builder.rejected:  # the reasons travel with the error
            raise InvalidBatch(f"all {len(builder.rejected)} items were refused", field="items",
                               rejected=tuple(builder.rejected))
        result = run.finish(number)
    except SettlementError:
        run.abort()
        raise
    return BuiltBatch(result, compute_windows(result.operations, run.k), compute_header_hash(result.header),
                      tuple(builder.rejected))
