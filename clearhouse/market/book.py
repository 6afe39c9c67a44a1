"""The order book: one book per series, price-time priority, GTC / post-only / IOC / FOK orders,
partial fills, cancels by order hash or nonce, self-trade prevention, expiry, and the cumulative
fill of every order hash.

An order is matched in two steps. :func:`get_match_plan` walks the opposite side best price first,
oldest first, and risk-checks every fill for both sides (cumulatively) without changing anything;
:func:`apply_match_plan` then commits the plan in one step. A refused order raises and leaves the
book, the nonces and the ledger exactly as they were. Rules: ``docs/protocol.md`` § Trading.
"""

from __future__ import annotations

import bisect
import heapq
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import StrEnum

from clearhouse.errors import (
    DuplicateOrder,
    FillOrKillUnfilled,
    InsufficientCollateral,
    InvalidOrder,
    NotOrderOwner,
    OrderCancelled,
    OrderExpired,
    Overfill,
    PostOnlyWouldTake,
    ReplayedMessage,
)
from clearhouse.market.collateral import Listing, Listings, PositionDelta, RiskHook, get_listing
from clearhouse.market.instruments import (
    compute_premium_amount,
    validate_premium,
    validate_quantity,
)
from clearhouse.market.trades import (
    ZERO_HASH,
    Signed,
    Trade,
    compute_book_fill_id,
    is_expired,
    verify_signed,
)
from clearhouse.messages import (
    Cancel,
    Domain,
    NonceBitmap,
    Order,
    Side,
    TimeInForce,
    invalidate_nonce,
    is_nonce_used,
    use_nonce,
    verify,
)
from clearhouse.types import Address, Amount, Digest, Nonce, Price, Quantity, SeriesId, Timestamp

__all__ = [
    "Book",
    "CloseReason",
    "MatchPlan",
    "OrderResult",
    "PlannedFill",
    "Removal",
    "RestingOrder",
    "SeriesBook",
    "apply_match_plan",
    "compute_fill_flow",
    "get_best_ask",
    "get_best_bid",
    "get_depth",
    "get_filled",
    "get_match_plan",
    "get_remaining",
    "get_resting_orders",
    "is_crossing",
    "process_cancel",
    "process_order",
    "process_tick",
    "process_verified_cancel",
    "process_verified_order",
    "validate_order",
]

_Pending = dict[Address, tuple[tuple[PositionDelta, ...], int]]


class CloseReason(StrEnum):
    """Why an order hash left the book (or never rested); a closed hash never trades again."""

    FILLED = "filled"
    """Filled up to its signed quantity."""
    CANCELLED = "cancelled"
    """Cancelled by a signed ``Cancel`` (by hash or by nonce)."""
    EXPIRED = "expired"
    """Past its expiry: removed on a tick or when matching reached it."""
    UNFILLED_REMAINDER = "unfilled_remainder"
    """The part of an IOC order that found no liquidity."""
    SELF_TRADE = "self_trade"
    """A resting order cancelled by self-trade prevention (its owner's new order crossed it)."""
    INSUFFICIENT_COLLATERAL = "insufficient_collateral"
    """Its account could not carry the next fill: a resting order is removed, a taker stops."""


@dataclass(frozen=True, slots=True)
class RestingOrder:
    """An order on the book."""

    signed: Signed[Order]
    """The signed order (its digest is the order hash)."""
    sequence: int
    """Arrival number: time priority within a price level."""


@dataclass(frozen=True, slots=True)
class Removal:
    """A resting order taken off the book without (further) filling."""

    digest: Digest
    """The order hash."""
    account: Address
    """Its owner."""
    reason: CloseReason
    """Why."""


@dataclass(frozen=True, slots=True)
class PlannedFill:
    """One fill a plan will make."""

    maker: RestingOrder
    """The resting order filled."""
    quantity: Quantity
    """Contract units."""
    premium: Amount
    """Premium of this fill at the maker's price, quote base units."""


@dataclass(frozen=True, slots=True)
class MatchPlan:
    """What matching one order would do, computed without changing anything."""

    fills: tuple[PlannedFill, ...]
    """Fills in priority order."""
    removals: tuple[Removal, ...]
    """Resting orders to take off: expired, self-trade prevention, maker short of collateral."""
    quantity: Quantity
    """Total contract units filled."""
    taker_short: InsufficientCollateral | None
    """Set when matching stopped because the taker could not carry the next fill."""


@dataclass(frozen=True, slots=True)
class OrderResult:
    """The outcome of an accepted order."""

    digest: Digest
    """The order hash."""
    trades: tuple[Trade, ...]
    """Trades made, in priority order."""
    removed: tuple[Removal, ...]
    """Resting orders taken off while matching."""
    resting: Quantity
    """Contract units left resting on the book (0 if the order does not rest)."""
    closed: CloseReason | None
    """Why the order is closed now, or ``None`` if it rests."""


@dataclass(slots=True)
class SeriesBook:
    """Both sides of one series: FIFO queues of order hashes per price level."""

    series_id: SeriesId
    """The series."""
    bids: dict[Price, deque[Digest]] = field(default_factory=dict)
    """Buy orders per price, oldest first."""
    asks: dict[Price, deque[Digest]] = field(default_factory=dict)
    """Sell orders per price, oldest first."""
    bid_prices: list[Price] = field(default_factory=list)
    """Bid levels, ascending (the best bid is last)."""
    ask_prices: list[Price] = field(default_factory=list)
    """Ask levels, ascending (the best ask is first)."""


@dataclass(slots=True)
class Book:
    """Every series' book plus the fill and replay state of every order hash seen."""

    domain: Domain
    """The deployment's EIP-712 domain (orders and cancels are verified in it)."""
    listings: Listings
    """Tradable series."""
    risk: RiskHook
    """The collateral ledger every fill is checked against and applied to."""
    nonces: dict[Address, NonceBitmap] = field(default_factory=dict)
    """Used nonces per account; share it with the RFQ desk (one nonce space per account)."""
    series: dict[SeriesId, SeriesBook] = field(default_factory=dict)
    """Per-series books, created on first use."""
    resting: dict[Digest, RestingOrder] = field(default_factory=dict)
    """Orders on the book by hash."""
    filled: dict[Digest, Quantity] = field(default_factory=dict)
    """Cumulative fill per order hash; never above the order's signed quantity."""
    closed: dict[Digest, CloseReason] = field(default_factory=dict)
    """Order hashes that can never trade again, with the reason."""
    by_nonce: dict[tuple[Address, Nonce], Digest] = field(default_factory=dict)
    """Resting order hash per (account, nonce), for cancel by nonce."""
    precancelled: set[tuple[Address, Digest]] = field(default_factory=set)
    """(account, hash) cancelled before the book saw the order: it will be refused."""
    expiries: list[tuple[Timestamp, int, Digest]] = field(default_factory=list)
    """Heap of (expiry, sequence, hash) of resting orders, for the purge on tick."""
    sequence: int = 0
    """Arrival counter (time priority)."""


# --- predicates and pure helpers ---------------------------------------------------------------


def is_crossing(order: Order, price: Price) -> bool:
    """Whether ``order`` would trade against an opposite order at ``price``."""
    return price <= order.price if order.side is Side.BUY else price >= order.price


def compute_fill_flow(side: Side, series_id: SeriesId, quantity: Quantity, premium: Amount
                      ) -> tuple[PositionDelta, int]:
    """The position delta and cash delta of the party on ``side`` of a fill."""
    if side is Side.BUY:
        return PositionDelta(series_id, quantity), -premium
    return PositionDelta(series_id, Quantity(-quantity)), premium


def _get_bitmap(book: Book, account: Address) -> NonceBitmap:
    return book.nonces.setdefault(account, {})


def _get_series_book(book: Book, series_id: SeriesId) -> SeriesBook:
    series_book = book.series.get(series_id)
    if series_book is None:
        series_book = book.series[series_id] = SeriesBook(series_id)
    return series_book


def _get_side(series_book: SeriesBook, side: Side) -> tuple[dict[Price, deque[Digest]], list[Price]]:
    if side is Side.BUY:
        return series_book.bids, series_book.bid_prices
    return series_book.asks, series_book.ask_prices


# --- readers -----------------------------------------------------------------------------------


def get_filled(book: Book, digest: Digest) -> Quantity:
    """Cumulative fill of an order hash."""
    return book.filled.get(digest, Quantity(0))


def get_remaining(book: Book, digest: Digest) -> Quantity:
    """Contract units an order hash still offers on the book (0 if it is not resting)."""
    resting = book.resting.get(digest)
    if resting is None:
        return Quantity(0)
    return Quantity(resting.signed.message.quantity - get_filled(book, digest))


def get_resting_orders(book: Book) -> tuple[RestingOrder, ...]:
    """Every order on the book, in arrival order."""
    return tuple(sorted(book.resting.values(), key=lambda r: r.sequence))


def _iter_levels(series_book: SeriesBook, side: Side) -> Iterator[tuple[Price, deque[Digest]]]:
    """The levels of ``side``, best price first."""
    levels, prices = _get_side(series_book, side)
    ordered = reversed(prices) if side is Side.BUY else iter(prices)
    for price in ordered:
        yield price, levels[price]


def _get_best(book: Book, series_id: SeriesId, side: Side, now: Timestamp) -> Price | None:
    series_book = book.series.get(series_id)
    if series_book is None:
        return None
    for price, queue in _iter_levels(series_book, side):
        if any(not is_expired(book.resting[d].signed.message.expiry, now) for d in queue):
            return price
    return None


def get_best_bid(book: Book, series_id: SeriesId, now: Timestamp) -> Price | None:
    """The highest price of an unexpired buy order, if any."""
    return _get_best(book, series_id, Side.BUY, now)


def get_best_ask(book: Book, series_id: SeriesId, now: Timestamp) -> Price | None:
    """The lowest price of an unexpired sell order, if any."""
    return _get_best(book, series_id, Side.SELL, now)


def get_depth(book: Book, series_id: SeriesId, side: Side, now: Timestamp
              ) -> tuple[tuple[Price, Quantity], ...]:
    """Unexpired quantity per price level of ``side``, best first."""
    series_book = book.series.get(series_id)
    if series_book is None:
        return ()
    depth = []
    for price, queue in _iter_levels(series_book, side):
        live = [d for d in queue if not is_expired(book.resting[d].signed.message.expiry, now)]
        if live:
            depth.append((price, Quantity(sum(get_remaining(book, d) for d in live))))
    return tuple(depth)


def _iter_crossing(book: Book, order: Order) -> Iterator[RestingOrder]:
    """Opposite resting orders ``order`` crosses, in priority order (best price, then oldest)."""
    series_book = book.series.get(order.series_id)
    if series_book is None:
        return
    opposite = Side.SELL if order.side is Side.BUY else Side.BUY
    for price, queue in _iter_levels(series_book, opposite):
        if not is_crossing(order, price):
            return
        for digest in queue:
            yield book.resting[digest]


# --- validation --------------------------------------------------------------------------------


def _validate_order_hash(book: Book, signed: Signed[Order]) -> None:
    """A hash is accepted once: never again while resting, once filled, or once closed."""
    order, digest = signed.message, signed.digest
    if digest in book.resting:
        raise DuplicateOrder("order is already on the book", field="orderHash", digest=digest)
    if get_filled(book, digest) >= order.quantity:
        raise Overfill("order is already completely filled", field="quantity", digest=digest)
    reason = book.closed.get(digest)
    if reason is None and (order.account, digest) in book.precancelled:
        reason = CloseReason.CANCELLED
    if reason is not None:
        raise OrderCancelled(f"order is closed ({reason})", field="orderHash", digest=digest,
                             reason=reason)


def _validate_listing(listing: Listing, order: Order, now: Timestamp) -> None:
    if now >= listing.series.expiry:
        raise InvalidOrder("the series has expired", field="seriesId", series_id=order.series_id)
    validate_premium(listing.rules, order.price)
    validate_quantity(order.quantity)


def validate_order(book: Book, signed: Signed[Order], now: Timestamp) -> Listing:
    """Every check an order passes before matching; returns its series' listing.

    Checks, in order: hash not seen (resting, filled or closed), unexpired, listed and unexpired
    series, premium on tick, quantity in range, nonce unused, and the account able to carry the
    whole order at its limit price.
    """
    order = signed.message
    _validate_order_hash(book, signed)
    if is_expired(order.expiry, now):
        raise OrderExpired("order is past its expiry", field="expiry", expiry=order.expiry, now=now)
    listing = get_listing(book.listings, order.series_id)
    _validate_listing(listing, order, now)
    if is_nonce_used(book.nonces.get(order.account, {}), order.nonce):
        raise ReplayedMessage(f"nonce {order.nonce} already used", field="nonce", nonce=order.nonce)
    premium = compute_premium_amount(order.price, order.quantity, listing.rules.contract_unit)
    delta, cash = compute_fill_flow(order.side, order.series_id, order.quantity, premium)
    book.risk.check_fill(order.account, (delta,), cash)
    return listing


# --- matching ----------------------------------------------------------------------------------


def _add_pending(pending: _Pending, account: Address, delta: PositionDelta, cash: int
                 ) -> tuple[tuple[PositionDelta, ...], int]:
    deltas, total = pending.get(account, ((), 0))
    return (*deltas, delta), total + cash


def _get_post_only_plan(book: Book, signed: Signed[Order], now: Timestamp) -> MatchPlan:
    """A post-only order takes nothing: refused if any live opposite order crosses it."""
    removals = []
    for resting in _iter_crossing(book, signed.message):
        maker = resting.signed.message
        if not is_expired(maker.expiry, now):
            raise PostOnlyWouldTake(f"post-only order crosses a resting order at {maker.price}",
                                    field="price", digest=signed.digest)
        removals.append(Removal(resting.signed.digest, maker.account, CloseReason.EXPIRED))
    return MatchPlan((), tuple(removals), Quantity(0), None)


def get_match_plan(book: Book, signed: Signed[Order], listing: Listing, now: Timestamp
                   ) -> MatchPlan:
    """Plan the fills of ``signed`` against the book without changing anything.

    Expired resting orders and the taker's own orders (self-trade prevention) are planned for
    removal and skipped; a fill the maker cannot carry removes that maker order and matching goes
    on; a fill the taker cannot carry stops matching.
    """
    if signed.message.time_in_force is TimeInForce.POST_ONLY:
        return _get_post_only_plan(book, signed, now)
    order = signed.message
    left = order.quantity
    fills: list[PlannedFill] = []
    removals: list[Removal] = []
    pending: _Pending = {}
    for resting in _iter_crossing(book, order):
        if left == 0:
            break
        step = _get_plan_step(book, order, resting, Quantity(left), listing, pending, now)
        if isinstance(step, InsufficientCollateral):
            return MatchPlan(tuple(fills), tuple(removals), Quantity(order.quantity - left), step)
        if isinstance(step, Removal):
            removals.append(step)
        else:
            fills.append(step)
            left = Quantity(left - step.quantity)
    return MatchPlan(tuple(fills), tuple(removals), Quantity(order.quantity - left), None)


def _get_plan_step(book: Book, order: Order, resting: RestingOrder, left: Quantity,
                   listing: Listing, pending: _Pending, now: Timestamp
                   ) -> PlannedFill | Removal | InsufficientCollateral:
    """What matching ``order`` against one resting order does; records the fill in ``pending``."""
    maker, digest = resting.signed.message, resting.signed.digest
    reason = _get_skip_reason(order, maker, now)
    if reason is not None:
        return Removal(digest, maker.account, reason)
    quantity = Quantity(min(left, maker.quantity - get_filled(book, digest)))
    premium = compute_premium_amount(maker.price, quantity, listing.rules.contract_unit)
    fill = PlannedFill(resting, quantity, premium)
    refusal = _check_planned_fill(book, order, fill, pending)
    return fill if refusal is None else refusal


def _check_planned_fill(book: Book, order: Order, fill: PlannedFill, pending: _Pending
                        ) -> Removal | InsufficientCollateral | None:
    """Risk-check both sides of ``fill`` on top of their earlier planned fills (taker first: a
    taker short of collateral is not the maker's fault); on success add it to ``pending``."""
    maker = fill.maker.signed.message
    taker_next = _add_pending(pending, order.account, *compute_fill_flow(
        order.side, order.series_id, fill.quantity, fill.premium))
    maker_next = _add_pending(pending, maker.account, *compute_fill_flow(
        maker.side, order.series_id, fill.quantity, fill.premium))
    try:
        book.risk.check_fill(order.account, *taker_next)
    except InsufficientCollateral as short:
        return short
    try:
        book.risk.check_fill(maker.account, *maker_next)
    except InsufficientCollateral:
        return Removal(fill.maker.signed.digest, maker.account, CloseReason.INSUFFICIENT_COLLATERAL)
    pending[order.account], pending[maker.account] = taker_next, maker_next
    return None


def _get_skip_reason(order: Order, maker: Order, now: Timestamp) -> CloseReason | None:
    if is_expired(maker.expiry, now):
        return CloseReason.EXPIRED
    if maker.account == order.account:
        return CloseReason.SELF_TRADE
    return None


def _validate_plan(signed: Signed[Order], plan: MatchPlan) -> None:
    order = signed.message
    if order.time_in_force is TimeInForce.FOK and plan.quantity < order.quantity:
        raise FillOrKillUnfilled(f"only {plan.quantity} of {order.quantity} can fill now",
                                 field="quantity", digest=signed.digest, fillable=plan.quantity)
    if plan.taker_short is not None and not plan.fills:
        raise plan.taker_short


# --- state changes -----------------------------------------------------------------------------


def _remove_resting(book: Book, digest: Digest) -> RestingOrder:
    resting = book.resting.pop(digest)
    order = resting.signed.message
    levels, prices = _get_side(book.series[order.series_id], order.side)
    queue = levels[order.price]
    queue.remove(digest)
    if not queue:
        del levels[order.price]
        del prices[bisect.bisect_left(prices, order.price)]
    book.by_nonce.pop((order.account, order.nonce), None)
    return resting


def _close_resting(book: Book, digest: Digest, reason: CloseReason) -> None:
    _remove_resting(book, digest)
    book.closed[digest] = reason


def _rest(book: Book, signed: Signed[Order]) -> None:
    order = signed.message
    book.sequence += 1
    book.resting[signed.digest] = RestingOrder(signed, book.sequence)
    levels, prices = _get_side(_get_series_book(book, order.series_id), order.side)
    queue = levels.get(order.price)
    if queue is None:
        queue = levels[order.price] = deque()
        bisect.insort(prices, order.price)
    queue.append(signed.digest)
    book.by_nonce[(order.account, order.nonce)] = signed.digest
    heapq.heappush(book.expiries, (order.expiry, book.sequence, signed.digest))


def _record_fill(book: Book, digest: Digest, signed_quantity: int, quantity: Quantity) -> Quantity:
    """Add ``quantity`` to the cumulative fill of ``digest``; returns the fill before."""
    before = get_filled(book, digest)
    if before + quantity > signed_quantity:
        raise Overfill(f"fill of {quantity} would exceed the signed {signed_quantity}",
                       field="quantity", digest=digest, filled=before)
    book.filled[digest] = Quantity(before + quantity)
    return before


def _apply_fill(book: Book, taker: Signed[Order], fill: PlannedFill, now: Timestamp) -> Trade:
    maker, order = fill.maker.signed, taker.message
    before = _record_fill(book, maker.digest, maker.message.quantity, fill.quantity)
    _record_fill(book, taker.digest, order.quantity, fill.quantity)
    for account, side in ((maker.message.account, maker.message.side), (order.account, order.side)):
        delta, cash = compute_fill_flow(side, order.series_id, fill.quantity, fill.premium)
        book.risk.apply_fill(account, (delta,), cash)
    if before + fill.quantity == maker.message.quantity:
        _close_resting(book, maker.digest, CloseReason.FILLED)
    return Trade(compute_book_fill_id(taker.digest, maker.digest, before), 0, 1, order.series_id,
                 maker.message.price, fill.quantity, fill.premium, maker.message.account,
                 order.account, maker.message.side, order.side, maker, taker, now)


def _get_close_reason(order: Order, plan: MatchPlan) -> CloseReason | None:
    if plan.quantity == order.quantity:
        return CloseReason.FILLED
    if plan.taker_short is not None:
        return CloseReason.INSUFFICIENT_COLLATERAL
    if order.time_in_force is TimeInForce.IOC:
        return CloseReason.UNFILLED_REMAINDER
    return None


def apply_match_plan(book: Book, signed: Signed[Order], plan: MatchPlan, now: Timestamp
                     ) -> OrderResult:
    """Commit a plan: consume the order's nonce, take off the planned removals, make the fills,
    then rest the remainder (GTC, post-only) or close the order."""
    order = signed.message
    use_nonce(_get_bitmap(book, order.account), order.nonce)
    for removal in plan.removals:
        _close_resting(book, removal.digest, removal.reason)
    trades = tuple(_apply_fill(book, signed, fill, now) for fill in plan.fills)
    closed = _get_close_reason(order, plan)
    if closed is None:
        _rest(book, signed)
    else:
        book.closed[signed.digest] = closed
    resting = Quantity(0 if closed else order.quantity - plan.quantity)
    return OrderResult(signed.digest, trades, plan.removals, resting, closed)


def process_verified_order(book: Book, signed: Signed[Order], now: Timestamp) -> OrderResult:
    """Accept and match an order whose signature the caller has verified (``verify_signed`` or
    the coordinator's batch verification)."""
    listing = validate_order(book, signed, now)
    plan = get_match_plan(book, signed, listing, now)
    _validate_plan(signed, plan)
    return apply_match_plan(book, signed, plan, now)


def process_order(book: Book, order: Order, signature: bytes, now: Timestamp) -> OrderResult:
    """Verify ``order``'s signature by ``order.account``, then accept and match it."""
    if is_expired(order.expiry, now):
        raise OrderExpired("order is past its expiry", field="expiry", expiry=order.expiry, now=now)
    return process_verified_order(book, verify_signed(book.domain, order, signature, order.account),
                                  now)


# --- cancels and time --------------------------------------------------------------------------


def _get_cancel_targets(book: Book, cancel: Cancel) -> tuple[Digest, ...]:
    """Resting orders a cancel removes: the named hash and the order carrying its nonce."""
    targets = []
    if cancel.order_hash != ZERO_HASH and cancel.order_hash in book.resting:
        owner = book.resting[cancel.order_hash].signed.message.account
        if owner != cancel.account:
            raise NotOrderOwner("the order belongs to another account", field="orderHash",
                                account=cancel.account, owner=owner)
        targets.append(cancel.order_hash)
    by_nonce = book.by_nonce.get((cancel.account, cancel.nonce))
    if by_nonce is not None and by_nonce not in targets:
        targets.append(by_nonce)
    return tuple(targets)


def process_verified_cancel(book: Book, cancel: Cancel) -> tuple[Removal, ...]:
    """Apply a verified cancel: remove the named order (only its owner may), remove the order
    carrying ``cancel.nonce``, mark that nonce used, and remember a hash the book has not seen so
    the order is refused if it arrives later. Applying a cancel twice changes nothing more."""
    targets = _get_cancel_targets(book, cancel)
    invalidate_nonce(_get_bitmap(book, cancel.account), cancel.nonce)
    if cancel.order_hash not in (ZERO_HASH, *targets) and cancel.order_hash not in book.closed:
        book.precancelled.add((cancel.account, cancel.order_hash))
    for digest in targets:
        _close_resting(book, digest, CloseReason.CANCELLED)
    return tuple(Removal(d, cancel.account, CloseReason.CANCELLED) for d in targets)


def process_cancel(book: Book, cancel: Cancel, signature: bytes, now: Timestamp
                   ) -> tuple[Removal, ...]:
    """Verify ``cancel`` (unexpired, signed by ``cancel.account``) and apply it."""
    verify(book.domain, cancel, signature, cancel.account, now)
    return process_verified_cancel(book, cancel)


def process_tick(book: Book, now: Timestamp) -> tuple[Removal, ...]:
    """Purge every resting order expired at ``now`` (matching already skips them)."""
    removed = []
    while book.expiries and is_expired(book.expiries[0][0], now):
        _, _, digest = heapq.heappop(book.expiries)
        resting = book.resting.get(digest)
        if resting is not None:
            _close_resting(book, digest, CloseReason.EXPIRED)
            removed.append(Removal(digest, resting.signed.message.account, CloseReason.EXPIRED))
    return tuple(removed)
