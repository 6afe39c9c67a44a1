"""The settlement state-transition function: THE specification of what a batch may do.

``compute_operation_effect(view, op, ctx)`` is the whole rule set: it reads at most two account
leaves and two consumed entries (and the counters), checks everything, and returns the writes; it
raises a specific :class:`~clearhouse.errors.SettlementError` and writes nothing when the operation
is invalid. Everything else here only stores effects:

* :func:`apply_operation` — pure, one operation, a new :class:`SettlementState` (copy on write);
* :func:`apply_batch` — a whole batch: checkpoint roots every ``K`` operations, payouts, header.

The fraud proof (:mod:`clearhouse.settlement.witness`) runs the same ``compute_operation_effect``
over leaves opened by Merkle proofs, so the full STF and a challenge can never disagree.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from itertools import groupby
from typing import Final

from clearhouse.errors import (
    AmountOverflow,
    ClockOutOfRange,
    ExcessiveFee,
    FillExceedsSize,
    InexactPremium,
    InsufficientFeePool,
    InvalidBatch,
    InvalidSeries,
    InvalidSignature,
    MessageCancelled,
    MessageExpired,
    MessageReplayed,
    NonceUsed,
    NothingToSettle,
    NotYetExpired,
    OwnerMismatch,
    PriceOutsideLimit,
    PriceUnavailable,
    SameAccount,
    SeriesExpired,
    SettlementError,
    SignatureInvalid,
    SignerMismatch,
    StaleClock,
    TooManyPositions,
    Undercollateralised,
    UnknownAccount,
    WrongPayout,
)
from clearhouse.market.instruments import MAX_QUANTITY, OptionKind, Series
from clearhouse.messages.fast import (
    compute_accept_digest,
    compute_cancel_digest,
    compute_order_digest,
    compute_quote_digest,
    compute_withdrawal_digest,
    recover_address_bytes,
)
from clearhouse.messages.schema import Side
from clearhouse.messages.structs import Accept, Cancel, Order, Quote, QuoteLeg, Withdrawal
from clearhouse.risk.maxloss import compute_expiry_requirement, compute_payoff_scaled
from clearhouse.settlement.context import (
    ListedExpiry,
    SettlementContext,
    compute_series_id_of,
    get_listed_expiry,
)
from clearhouse.settlement.encoding import compute_ops_hash, compute_windows
from clearhouse.settlement.header import MAX_PAYOUTS, BatchHeader, Payout, compute_withdrawals_root
from clearhouse.settlement.operations import (
    CancelOp,
    DepositOp,
    FeeOp,
    ForcedWithdrawalOp,
    Operation,
    OrderTerms,
    RfqFillOp,
    SettleExpiryOp,
    TickOp,
    TradeOp,
    WithdrawalOp,
)
from clearhouse.settlement.state import (
    MAX_UINT128,
    Account,
    ConsumedEntry,
    Counters,
    EntryStatus,
    LayeredMap,
    Position,
    SettlementState,
    StateCommitment,
    StateView,
    compute_account_hash,
    compute_commitment_root,
    compute_deposit_hash,
    compute_entry_hash,
    compute_entry_key,
    compute_forced_hash,
    compute_next_state,
    get_live_cache,
    get_state_root,
)
from clearhouse.types import (
    AccountId,
    Amount,
    BatchNumber,
    Digest,
    ExpiryId,
    Price,
    Quantity,
    SeriesId,
    Timestamp,
)

__all__ = [
    "FIRST_BATCH",
    "BatchResult",
    "BatchRun",
    "Effect",
    "PositionKey",
    "apply_batch",
    "apply_operation",
    "compute_account_requirement",
    "compute_cancel_effect",
    "compute_cancelled_entry",
    "compute_deposit_effect",
    "compute_exact_premium",
    "compute_fee_effect",
    "compute_filled_entry",
    "compute_forced_withdrawal_effect",
    "compute_free_collateral",
    "compute_operation_effect",
    "compute_positions_after",
    "compute_rfq_fill_effect",
    "compute_settle_expiry_effect",
    "compute_settlement_price",
    "compute_tick_effect",
    "compute_trade_effect",
    "compute_used_entry",
    "compute_withdrawal_effect",
    "get_tradable_expiry",
    "validate_clock_fresh",
    "validate_fees",
    "validate_price_limit",
    "validate_unexpired",
    "verify_owner_signature",
]

PositionKey = tuple[ExpiryId, Price, int]
"""``(expiry_id, strike, kind)``: what identifies a series inside an account leaf."""
_BPS: Final = 10_000
_KINDS: Final = {int(k): k for k in OptionKind}  # a table lookup instead of an enum call per position
FIRST_BATCH: Final = BatchNumber(1)
"""The number of a deployment's first batch."""


@dataclass(frozen=True, slots=True)
class Effect:
    """The writes of one valid operation (every key it writes is one it was allowed to touch)."""

    accounts: tuple[tuple[AccountId, Account], ...]
    """Account leaves written, in touch order."""
    entries: tuple[tuple[int, ConsumedEntry], ...]
    """Consumed entries written, by ``compute_entry_key``."""
    counters: Counters
    """The counters after the operation."""
    payout: Payout | None = None
    """Collateral the operation sends out (withdrawals), if any."""


# --- shared checks -----------------------------------------------------------------------------


def _get_existing(view: StateView, account_id: AccountId, field: str) -> Account:
    account = view.accounts.get(account_id)
    if account is None:
        raise UnknownAccount(f"account {account_id} has no leaf", field=field, account=account_id)
    return account


def validate_clock_fresh(counters: Counters, ctx: SettlementContext) -> None:
    """A signed message applies only while the clock is within ``max_clock_lag`` of the batch time."""
    if counters.clock + ctx.max_clock_lag < ctx.timestamp:
        raise StaleClock(f"clock {counters.clock} lags the batch timestamp {ctx.timestamp} by more "
                         f"than {ctx.max_clock_lag}s", field="clock", clock=counters.clock)


def validate_unexpired(expiry: int, clock: Timestamp, field: str) -> None:
    """A message is valid through its ``expiry`` second (the rule of ``check_not_expired``)."""
    if clock > expiry:
        raise MessageExpired(f"{field} expired at {expiry}, clock is {clock}", field=field,
                             expiry=expiry, clock=clock)


def verify_owner_signature(digest: Digest, signature: bytes, account: Account, field: str) -> None:
    """``signature`` is a canonical signature of ``account.owner`` over ``digest``."""
    try:
        signer = recover_address_bytes(digest, signature)
    except InvalidSignature as exc:
        raise SignatureInvalid(exc.message, field=field, digest=bytes(digest)) from None
    if signer != bytes.fromhex(account.owner[2:]):
        raise SignerMismatch(f"{field} is not signed by the account owner {account.owner}", field=field,
                             digest=bytes(digest), owner=account.owner)


def get_tradable_expiry(ctx: SettlementContext, expiry_id: ExpiryId, strike: Price, clock: Timestamp
                        ) -> ListedExpiry:
    """The listed expiry of a series that may trade now: ``0 < strike < cap``, strike on the
    ``contract_unit`` grid, clock before the expiry."""
    expiry = get_listed_expiry(ctx, expiry_id)
    if not 0 < strike < expiry.cap or strike % ctx.contract_unit:
        raise InvalidSeries(f"strike {strike} must be in (0, cap) and a multiple of {ctx.contract_unit}",
                            field="strike", strike=strike)
    if clock >= expiry.timestamp:
        raise SeriesExpired(f"the series expired at {expiry.timestamp}", field="expiryId",
                            expiry=expiry.timestamp, clock=clock)
    return expiry


def validate_price_limit(price: Price, side: Side, limit: Price, field: str) -> None:
    """A buyer pays at most its limit, a seller receives at least its limit."""
    if (price > limit) if side is Side.BUY else (price < limit):
        raise PriceOutsideLimit(f"price {price} is beyond the {field}'s limit {limit}", field=field,
                                price=price, limit=limit)


def compute_exact_premium(price: Price, quantity: int, contract_unit: int) -> Amount:
    """``price × quantity / contract_unit``, which must be a whole number of base units."""
    premium, rest = divmod(price * quantity, contract_unit)
    if rest:
        raise InexactPremium(f"{price} × {quantity} is not a multiple of {contract_unit}", field="price")
    return Amount(premium)


def validate_fees(maker_fee: Amount, taker_fee: Amount, premium: int, ctx: SettlementContext) -> None:
    """Each side's fee is at most ``max_fee_bps`` of the fill's premium (rounded down)."""
    bound = premium * ctx.max_fee_bps // _BPS
    for fee, field in ((maker_fee, "makerFee"), (taker_fee, "takerFee")):
        if fee > bound:
            raise ExcessiveFee(f"{field} {fee} exceeds {ctx.max_fee_bps} bps of premium {premium}",
                               field=field, fee=fee, bound=bound)


def compute_filled_entry(entry: ConsumedEntry | None, digest: Digest, size: int, fill: int, field: str
                         ) -> ConsumedEntry:
    """The slot of an order or quote after filling ``fill`` more units of its signed ``size``."""
    filled = 0
    if entry is not None:
        if entry.status is EntryStatus.CANCELLED:
            raise MessageCancelled(f"the {field}'s nonce was cancelled", field=field, digest=bytes(digest))
        if entry.digest != digest or entry.status is not EntryStatus.ACTIVE:
            raise NonceUsed(f"the {field}'s nonce is held by another message", field=field,
                            digest=bytes(digest))
        filled = entry.filled
    if filled + fill > size:
        raise FillExceedsSize(f"the {field} has {size - filled} units left, not {fill}", field=field,
                              digest=bytes(digest), size=size, filled=filled)
    return ConsumedEntry(digest, Quantity(filled + fill), EntryStatus.ACTIVE)


def compute_used_entry(entry: ConsumedEntry | None, digest: Digest, field: str) -> ConsumedEntry:
    """The slot of a one-shot message (accept, withdrawal) after it is applied."""
    if entry is None:
        return ConsumedEntry(digest, Quantity(0), EntryStatus.USED)
    if entry.status is EntryStatus.CANCELLED:
        raise MessageCancelled(f"the {field}'s nonce was cancelled", field=field, digest=bytes(digest))
    if entry.digest == digest:
        raise MessageReplayed(f"the {field} was applied already", field=field, digest=bytes(digest))
    raise NonceUsed(f"the {field}'s nonce is held by another message", field=field, digest=bytes(digest))


def compute_cancelled_entry(entry: ConsumedEntry | None, order_hash: Digest) -> ConsumedEntry:
    """The slot after a cancel: an empty slot records the named hash, an active one keeps its
    fill; a used or cancelled slot stays as it is (cancelling twice is harmless)."""
    if entry is None:
        return ConsumedEntry(order_hash, Quantity(0), EntryStatus.CANCELLED)
    if entry.status is EntryStatus.ACTIVE:
        return ConsumedEntry(entry.digest, entry.filled, EntryStatus.CANCELLED)
    return entry


def compute_positions_after(positions: tuple[Position, ...], deltas: Mapping[PositionKey, int],
                            ctx: SettlementContext, account_id: AccountId) -> tuple[Position, ...]:
    """Positions moved by ``deltas``, sorted, zeros dropped; bounded in size and count."""
    merged: dict[PositionKey, int] = {(p.expiry_id, p.strike, int(p.kind)): p.quantity for p in positions}
    for key, delta in deltas.items():
        merged[key] = merged.get(key, 0) + delta
    after = tuple(Position(k[0], k[1], _KINDS[k[2]], Quantity(q)) for k, q in sorted(merged.items()) if q)
    for p in after:
        if abs(p.quantity) > MAX_QUANTITY:
            raise AmountOverflow(f"a position beyond 2**95 contract units in account {account_id}",
                                 field="quantity", account=account_id)
    if len(after) > ctx.max_positions:
        raise TooManyPositions(f"account {account_id} would hold {len(after)} positions, at most "
                               f"{ctx.max_positions}", field="positions", account=account_id)
    return after


def compute_account_requirement(positions: Iterable[Position], ctx: SettlementContext) -> Amount:
    """The exact max-loss requirement of ``positions`` (``risk.maxloss``), summed over expiries."""
    total = 0
    for expiry_id, group in groupby(positions, key=lambda p: p.expiry_id):
        expiry = get_listed_expiry(ctx, expiry_id)
        portfolio = {Series(expiry.pair, expiry.timestamp, p.strike, p.kind): p.quantity for p in group}
        total += compute_expiry_requirement(portfolio, expiry.cap, ctx.contract_unit)
    return Amount(total)


def compute_free_collateral(account: Account, ctx: SettlementContext) -> Amount:
    """``balance − requirement`` (never negative for a valid state)."""
    return Amount(max(0, account.balance - compute_account_requirement(account.positions, ctx)))


def compute_settlement_price(expiry: ListedExpiry, contract_unit: int) -> Price:
    """The price positions settle at: the oracle's clamped to ``[0, cap]``, rounded down to the
    ``contract_unit`` grid so every payoff is an exact integer (and cash sums to zero)."""
    if expiry.settlement_price is None:
        raise PriceUnavailable(f"no settlement price for expiry {expiry.timestamp}", field="expiryId")
    clamped = min(max(expiry.settlement_price, 0), expiry.cap)
    return Price(clamped - clamped % contract_unit)


def _compute_balance(account_id: AccountId, balance: int) -> Amount:
    if balance > MAX_UINT128:
        raise AmountOverflow(f"account {account_id}'s balance would exceed 2**128 - 1", field="balance",
                             account=account_id)
    return Amount(balance)


def _compute_traded(account_id: AccountId, account: Account, deltas: Mapping[PositionKey, int],
                    cash: int, ctx: SettlementContext) -> Account:
    """``account`` after a fill: positions and balance moved; it must still cover its requirement."""
    positions = compute_positions_after(account.positions, deltas, ctx, account_id)
    balance = account.balance + cash
    required = compute_account_requirement(positions, ctx)
    if balance < required:
        raise Undercollateralised(account_id, required, balance, field="quantity")
    return Account(account.owner, _compute_balance(account_id, balance), positions)


def _compute_fee_pool(counters: Counters, fees: int) -> Counters:
    pool = counters.fee_pool + fees
    if pool > MAX_UINT128:
        raise AmountOverflow("the fee pool would exceed 2**128 - 1", field="feePool")
    return replace(counters, fee_pool=Amount(pool))


# --- operations --------------------------------------------------------------------------------


def compute_deposit_effect(view: StateView, op: DepositOp, ctx: SettlementContext) -> Effect:
    """Credit the next deposit-queue entry; the first deposit under an id creates the leaf."""
    account = view.accounts.get(op.account)
    if account is None:
        after = Account(op.owner, op.amount, ())
    elif account.owner != op.owner:
        raise OwnerMismatch(f"account {op.account} belongs to {account.owner}, not {op.owner}",
                            field="owner", account=op.account)
    else:
        after = replace(account, balance=_compute_balance(op.account, account.balance + op.amount))
    c = view.counters
    counters = replace(c, deposit_count=c.deposit_count + 1,
                       deposit_hash=compute_deposit_hash(c.deposit_hash, op.account, op.owner, op.amount))
    return Effect(((op.account, after),), (), counters)


def _verify_order(ctx: SettlementContext, account: Account, series_id: SeriesId, side: Side,
                  terms: OrderTerms, signature: bytes, clock: Timestamp, field: str) -> Digest:
    validate_unexpired(terms.expiry, clock, field)
    order = Order(account.owner, series_id, side, terms.price, terms.quantity, terms.time_in_force,
                  terms.nonce, terms.expiry)
    digest = compute_order_digest(ctx.domain, order)
    verify_owner_signature(digest, signature, account, field)
    return digest


def compute_trade_effect(view: StateView, op: TradeOp, ctx: SettlementContext) -> Effect:
    """One book fill between two signed orders (checks in ``docs/protocol.md`` order)."""
    if op.maker == op.taker:
        raise SameAccount("a trade needs two accounts", field="taker", account=op.maker)
    maker = _get_existing(view, op.maker, "maker")
    taker = _get_existing(view, op.taker, "taker")
    counters = view.counters
    validate_clock_fresh(counters, ctx)
    expiry = get_tradable_expiry(ctx, op.expiry_id, op.strike, counters.clock)
    series_id = compute_series_id_of(expiry, op.strike, op.kind)
    taker_side = Side.SELL if op.maker_side is Side.BUY else Side.BUY
    maker_digest = _verify_order(ctx, maker, series_id, op.maker_side, op.maker_order, op.maker_signature,
                                 counters.clock, "makerOrder")
    taker_digest = _verify_order(ctx, taker, series_id, taker_side, op.taker_order, op.taker_signature,
                                 counters.clock, "takerOrder")
    validate_price_limit(op.price, op.maker_side, op.maker_order.price, "makerOrder")
    validate_price_limit(op.price, taker_side, op.taker_order.price, "takerOrder")
    premium = compute_exact_premium(op.price, op.quantity, ctx.contract_unit)
    validate_fees(op.maker_fee, op.taker_fee, premium, ctx)
    maker_key = compute_entry_key(op.maker, op.maker_order.nonce)
    taker_key = compute_entry_key(op.taker, op.taker_order.nonce)
    maker_entry = compute_filled_entry(view.entries.get(maker_key), maker_digest, op.maker_order.quantity,
                                       op.quantity, "makerOrder")
    taker_entry = compute_filled_entry(view.entries.get(taker_key), taker_digest, op.taker_order.quantity,
                                       op.quantity, "takerOrder")
    sign = 1 if op.maker_side is Side.BUY else -1
    key: PositionKey = (op.expiry_id, op.strike, int(op.kind))
    maker_after = _compute_traded(op.maker, maker, {key: sign * op.quantity},
                                  -sign * premium - op.maker_fee, ctx)
    taker_after = _compute_traded(op.taker, taker, {key: -sign * op.quantity},
                                  sign * premium - op.taker_fee, ctx)
    return Effect(((op.maker, maker_after), (op.taker, taker_after)),
                  ((maker_key, maker_entry), (taker_key, taker_entry)),
                  _compute_fee_pool(counters, op.maker_fee + op.taker_fee))


def compute_rfq_fill_effect(view: StateView, op: RfqFillOp, ctx: SettlementContext) -> Effect:
    """Every leg of an accepted quote at once; both sides checked after all legs."""
    if op.maker == op.taker:
        raise SameAccount("an RFQ fill needs two accounts", field="taker", account=op.maker)
    maker = _get_existing(view, op.maker, "maker")
    taker = _get_existing(view, op.taker, "taker")
    counters = view.counters
    validate_clock_fresh(counters, ctx)
    quote = op.quote
    quote_legs: list[QuoteLeg] = []
    deltas: dict[PositionKey, int] = {}
    maker_cash = premium_total = 0
    for leg in quote.legs:
        expiry = get_tradable_expiry(ctx, leg.expiry_id, leg.strike, counters.clock)
        quantity = leg.ratio * op.size
        if quantity > MAX_QUANTITY:
            raise AmountOverflow("a leg beyond 2**95 contract units", field="size", size=op.size)
        quote_legs.append(QuoteLeg(compute_series_id_of(expiry, leg.strike, leg.kind), leg.ratio,
                                   leg.is_buy, leg.price))
        premium = compute_exact_premium(leg.price, quantity, ctx.contract_unit)
        sign = 1 if (quote.side is Side.BUY) == leg.is_buy else -1  # the maker buys this leg
        key: PositionKey = (leg.expiry_id, leg.strike, int(leg.kind))
        deltas[key] = deltas.get(key, 0) + sign * quantity
        maker_cash -= sign * premium
        premium_total += premium
    validate_unexpired(quote.expiry, counters.clock, "quote")
    validate_unexpired(op.accept.expiry, counters.clock, "accept")
    quote_digest = compute_quote_digest(ctx.domain, Quote(
        maker.owner, taker.owner, quote.rfq_id, tuple(quote_legs), quote.side, quote.size, quote.nonce,
        quote.expiry))
    verify_owner_signature(quote_digest, op.quote_signature, maker, "quote")
    accept_digest = compute_accept_digest(ctx.domain, Accept(
        taker.owner, quote_digest, op.size, op.accept.nonce, op.accept.expiry))
    verify_owner_signature(accept_digest, op.accept_signature, taker, "accept")
    validate_fees(op.maker_fee, op.taker_fee, premium_total, ctx)
    quote_key = compute_entry_key(op.maker, quote.nonce)
    accept_key = compute_entry_key(op.taker, op.accept.nonce)
    quote_entry = compute_filled_entry(view.entries.get(quote_key), quote_digest, quote.size, op.size,
                                       "quote")
    accept_entry = compute_used_entry(view.entries.get(accept_key), accept_digest, "accept")
    maker_after = _compute_traded(op.maker, maker, deltas, maker_cash - op.maker_fee, ctx)
    taker_after = _compute_traded(op.taker, taker, {k: -d for k, d in deltas.items()},
                                  -maker_cash - op.taker_fee, ctx)
    return Effect(((op.maker, maker_after), (op.taker, taker_after)),
                  ((quote_key, quote_entry), (accept_key, accept_entry)),
                  _compute_fee_pool(counters, op.maker_fee + op.taker_fee))


def compute_cancel_effect(view: StateView, op: CancelOp, ctx: SettlementContext) -> Effect:
    """Cancel the slot ``(account, nonce)``: whatever holds it can never fill again."""
    account = _get_existing(view, op.account, "account")
    counters = view.counters
    validate_clock_fresh(counters, ctx)
    validate_unexpired(op.expiry, counters.clock, "cancel")
    digest = compute_cancel_digest(ctx.domain, Cancel(account.owner, op.order_hash, op.nonce, op.expiry))
    verify_owner_signature(digest, op.signature, account, "cancel")
    key = compute_entry_key(op.account, op.nonce)
    return Effect((), ((key, compute_cancelled_entry(view.entries.get(key), op.order_hash)),), counters)


def compute_withdrawal_effect(view: StateView, op: WithdrawalOp, ctx: SettlementContext) -> Effect:
    """Pay ``amount`` of free collateral to ``recipient`` on the owner's signed request."""
    account = _get_existing(view, op.account, "account")
    counters = view.counters
    validate_clock_fresh(counters, ctx)
    validate_unexpired(op.expiry, counters.clock, "withdrawal")
    digest = compute_withdrawal_digest(ctx.domain, Withdrawal(account.owner, op.recipient, op.amount,
                                                              op.nonce, op.expiry))
    verify_owner_signature(digest, op.signature, account, "withdrawal")
    key = compute_entry_key(op.account, op.nonce)
    entry = compute_used_entry(view.entries.get(key), digest, "withdrawal")
    required = compute_account_requirement(account.positions, ctx)
    if account.balance - op.amount < required:
        raise Undercollateralised(op.account, required, account.balance - op.amount, field="amount")
    after = replace(account, balance=Amount(account.balance - op.amount))
    return Effect(((op.account, after),), ((key, entry),), counters, Payout(op.recipient, op.amount))


def compute_forced_withdrawal_effect(view: StateView, op: ForcedWithdrawalOp, ctx: SettlementContext
                                     ) -> Effect:
    """Consume the next forced-withdrawal entry; pay ``min(requested, free)`` to its owner (0 if the
    id has no leaf of that owner). Never reads the oracle; the queue always advances."""
    account = view.accounts.get(op.account)
    owned = account is not None and account.owner == op.owner
    free = compute_free_collateral(account, ctx) if account is not None and owned else 0
    expected = min(op.requested, free)
    if op.paid != expected:
        raise WrongPayout(f"forced withdrawal must pay {expected}, not {op.paid}", field="paid",
                          account=op.account, expected=expected)
    c = view.counters
    counters = replace(c, forced_count=c.forced_count + 1,
                       forced_hash=compute_forced_hash(c.forced_hash, op.account, op.owner, op.requested))
    if account is None or not op.paid:
        return Effect((), (), counters)
    after = replace(account, balance=Amount(account.balance - op.paid))
    return Effect(((op.account, after),), (), counters, Payout(op.owner, op.paid))


def compute_fee_effect(view: StateView, op: FeeOp, ctx: SettlementContext) -> Effect:
    """Move ``amount`` from the fee pool to the fee account."""
    counters = view.counters
    if op.amount > counters.fee_pool:
        raise InsufficientFeePool(f"the fee pool holds {counters.fee_pool}, not {op.amount}", field="amount")
    account = _get_existing(view, ctx.fee_account, "feeAccount")
    after = replace(account, balance=_compute_balance(ctx.fee_account, account.balance + op.amount))
    return Effect(((ctx.fee_account, after),), (),
                  replace(counters, fee_pool=Amount(counters.fee_pool - op.amount)))


def compute_settle_expiry_effect(view: StateView, op: SettleExpiryOp, ctx: SettlementContext) -> Effect:
    """Turn ``account``'s positions of one expiry into balance at the clamped settlement price."""
    account = _get_existing(view, op.account, "account")
    expiry = get_listed_expiry(ctx, op.expiry_id)
    if view.counters.clock < expiry.timestamp:
        raise NotYetExpired(f"expiry {expiry.timestamp} is after the clock {view.counters.clock}",
                            field="expiryId")
    price = compute_settlement_price(expiry, ctx.contract_unit)
    settled = {Series(expiry.pair, expiry.timestamp, p.strike, p.kind): p.quantity
               for p in account.positions if p.expiry_id == op.expiry_id}
    if not settled:
        raise NothingToSettle(f"account {op.account} holds nothing of that expiry", field="expiryId",
                              account=op.account)
    payoff = compute_payoff_scaled(settled, price) // ctx.contract_unit  # exact: S and strikes on grid
    balance = account.balance + payoff
    if balance < 0:
        raise Undercollateralised(op.account, -payoff, account.balance, field="expiryId")
    positions = tuple(p for p in account.positions if p.expiry_id != op.expiry_id)
    after = Account(account.owner, _compute_balance(op.account, balance), positions)
    return Effect(((op.account, after),), (), view.counters)


def compute_tick_effect(view: StateView, op: TickOp, ctx: SettlementContext) -> Effect:
    """Move the clock to ``time``: not backwards, not past the batch timestamp."""
    clock = view.counters.clock
    if not clock <= op.time <= ctx.timestamp:
        raise ClockOutOfRange(f"tick {op.time} is outside [{clock}, {ctx.timestamp}]", field="time",
                              clock=clock, timestamp=ctx.timestamp)
    return Effect((), (), replace(view.counters, clock=op.time))


_RULES: Final[dict[type, Callable[[StateView, object, SettlementContext], Effect]]] = {
    DepositOp: compute_deposit_effect, TradeOp: compute_trade_effect,  # type: ignore[dict-item]
    RfqFillOp: compute_rfq_fill_effect, CancelOp: compute_cancel_effect,  # type: ignore[dict-item]
    WithdrawalOp: compute_withdrawal_effect,  # type: ignore[dict-item]
    ForcedWithdrawalOp: compute_forced_withdrawal_effect, FeeOp: compute_fee_effect,  # type: ignore[dict-item]
    SettleExpiryOp: compute_settle_expiry_effect, TickOp: compute_tick_effect,  # type: ignore[dict-item]
}


def compute_operation_effect(view: StateView, op: Operation, ctx: SettlementContext) -> Effect:
    """Validate ``op`` against ``view`` and ``ctx`` and return its writes; raise a specific
    :class:`~clearhouse.errors.SettlementError` (and write nothing) if it is invalid."""
    return _RULES[type(op)](view, op, ctx)


# --- applying ----------------------------------------------------------------------------------


def apply_operation(state: SettlementState, op: Operation, ctx: SettlementContext) -> SettlementState:
    """The state after ``op`` (pure: ``state`` is untouched; raises and changes nothing if ``op`` is
    invalid). The new state shares ``state``'s leaves copy-on-write; its roots are exact."""
    effect = compute_operation_effect(state, op, ctx)
    accounts = LayeredMap(state.accounts, dict(effect.accounts))
    entries = LayeredMap(state.entries, dict(effect.entries))
    return compute_next_state(state, accounts, entries, effect.counters,
                              [k for k, _ in effect.accounts], [k for k, _ in effect.entries])


class BatchRun:
    """A batch being applied over a base state (used by :func:`apply_batch` and the batch builder).

    The working leaves are private copies; the base's Merkle cache moves along with them at every
    checkpoint, and :meth:`abort` puts it back, so the base is untouched unless :meth:`finish` is
    reached. Not for use outside ``clearhouse.settlement``.
    """

    __slots__ = ("_committed_accounts", "_committed_entries", "_dirty_accounts", "_dirty_entries",
                 "_finished", "accounts", "base", "cache", "checkpoints", "counters", "ctx", "entries",
                 "k", "ops", "payouts")

    def __init__(self, base: SettlementState, ctx: SettlementContext, k: int) -> None:
        if k <= 0:
            raise InvalidBatch("the checkpoint interval must be positive", field="k")
        self.base, self.ctx, self.k = base, ctx, k
        self.cache = get_live_cache(base)
        self.accounts: dict[AccountId, Account] = dict(base.accounts)
        self.entries: dict[int, ConsumedEntry] = dict(base.entries)
        self.counters = base.counters
        self.ops: list[Operation] = []
        self.payouts: list[Payout] = []
        self.checkpoints: list[Digest] = []
        self._dirty_accounts: set[AccountId] = set()
        self._dirty_entries: set[int] = set()
        self._committed_accounts: set[AccountId] = set()
        self._committed_entries: set[int] = set()
        self._finished = False

    def apply(self, op: Operation) -> Effect:
        """Validate and apply one operation (nothing is written if it is invalid)."""
        effect = compute_operation_effect(self, op, self.ctx)
        for account_id, account in effect.accounts:
            self.accounts[account_id] = account
            self._dirty_accounts.add(account_id)
        for key, entry in effect.entries:
            self.entries[key] = entry
            self._dirty_entries.add(key)
        self.counters = effect.counters
        if effect.payout is not None:
            self.payouts.append(effect.payout)
        self.ops.append(op)
        if len(self.ops) % self.k == 0:
            self.checkpoint()
        return effect

    def checkpoint(self) -> Digest:
        """Bring the trees up to the working leaves and record the state root."""
        self.cache.accounts.update_many((k, compute_account_hash(self.accounts.get(k)))
                                        for k in self._dirty_accounts)
        self.cache.entries.update_many((k, compute_entry_hash(self.entries.get(k)))
                                       for k in self._dirty_entries)
        self._committed_accounts |= self._dirty_accounts
        self._committed_entries |= self._dirty_entries
        self._dirty_accounts, self._dirty_entries = set(), set()
        root = compute_commitment_root(self._get_commitment())
        self.checkpoints.append(root)
        return root

    def _get_commitment(self) -> StateCommitment:
        return StateCommitment(self.cache.accounts.root, self.cache.entries.root, self.counters)

    def abort(self) -> None:
        """Put the base's trees back as they were (after a refused operation)."""
        self.cache.accounts.update_many((k, compute_account_hash(self.base.accounts.get(k)))
                                        for k in self._committed_accounts)
        self.cache.entries.update_many((k, compute_entry_hash(self.base.entries.get(k)))
                                       for k in self._committed_entries)
        self._committed_accounts, self._committed_entries = set(), set()

    def finish(self, number: BatchNumber) -> BatchResult:
        """Close the last window and return the new state, the header and the payouts."""
        if not self.ops:
            raise InvalidBatch("a batch holds at least one operation", field="ops")
        if len(self.payouts) > MAX_PAYOUTS:
            raise InvalidBatch(f"{len(self.payouts)} payouts: a batch makes at most {MAX_PAYOUTS}",
                               field="ops", payouts=len(self.payouts))
        if len(self.ops) % self.k:
            self.checkpoint()
        header = BatchHeader(number, get_state_root(self.base), self._get_commitment(), len(self.ops),
                             compute_ops_hash(compute_windows(self.ops, self.k)), tuple(self.checkpoints),
                             compute_withdrawals_root(number, self.payouts), len(self.payouts),
                             self.ctx.timestamp, self.ctx.parameter_version, self.k)
        state = compute_next_state(self.base, self.accounts, self.entries, self.counters, (), ())
        return BatchResult(state, header, tuple(self.ops), tuple(self.payouts))


@dataclass(frozen=True, slots=True)
class BatchResult:
    """A batch applied: the new state, its header, its operations and its payouts."""

    state: SettlementState
    """The state after the batch (its root is the header's new root)."""
    header: BatchHeader
    """The header to post (checkpoint roots, ops hash, queue positions, …)."""
    operations: tuple[Operation, ...]
    """The operations, in order (their windows are ``compute_windows(operations, K)``)."""
    payouts: tuple[Payout, ...]
    """Payouts in order (the claims tree's leaves)."""


def apply_batch(state: SettlementState, ops: Sequence[Operation], ctx: SettlementContext,
                k: int | None = None, *, number: BatchNumber = FIRST_BATCH) -> BatchResult:
    """Apply a whole batch: every operation must be valid (the first invalid one raises its error
    with ``context["index"]`` and nothing changes); checkpoint roots every ``k`` operations
    (default ``ctx.checkpoint_interval``)."""
    run = BatchRun(state, ctx, ctx.checkpoint_interval if k is None else k)
    for index, op in enumerate(ops):
        try:
            run.apply(op)
        except SettlementError as exc:
            run.abort()
            exc.context["index"] = index
            raise
    try:
        return run.finish(number)
    except SettlementError:
        run.abort()
        raise
