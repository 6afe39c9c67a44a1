"""The order book: one book per series, price-time priority, GTC / post-only / IOC / FOK orders,
partial fills, cancels by order hash or nonce, self-trade prevention, expiry, and the cumulative
fill of every order hash.

An order is matched in two steps. :func:`get_match_plan` walks the opposite side best price first,
oldest first, and risk-checks every fill for both sides (cumulatively) without changing anything;
:func:`apply_match_plan` then commits the plan in one step. A refused order raises and leaves the
book, the nonces and the ledger exactly as they were. Rules: ``docs/protocol.md`` § Trading.

Layout for speed: each side is a dict of price levels plus a sorted list of its prices (bisect),
each level a FIFO deque of order hashes. Removing an order is O(1): it leaves ``Book.resting``
and its hash stays in its level's deque until it reaches the front (lazy deletion) or the series'
deques are compacted; the front of every deque is always a resting order, so an empty level is
deleted at once and readers and the matcher skip the hashes that are no longer resting. Each level
also keeps a running :class:`LevelSummary` (quantity resting, a floor under the earliest expiry), so
the quantity a level shows is O(1) while none of its orders has expired.
"""

from __future__ import annotations

import bisect
import heapq
from collections import deque
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
from enum import StrEnum

from clearhouse.errors import (
    DuplicateOrder,
    FillOrKillUnfilled,
    InsufficientCollateral,
    InvalidOrder,
    NotOrderOwner,
    OpenInterestCapReached,
    OrderCancelled,
    OrderExpired,
    Overfill,
    PostOnlyWouldTake,
    ReplayedMessage,
)
from clearhouse.market.collateral import Listing, Listings, PositionDelta, RiskHook, get_listing
from clearhouse.market.instruments import (
    MAX_QUANTITY,
    validate_premium,
    validate_quantity,
)
from clearhouse.market.trades import (
    BPS,
    NO_FEES,
    ZERO_HASH,
    FeeSchedule,
    Signed,
    Trade,
    compute_book_trade,
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
    verify,
)
from clearhouse.types import Address, Amount, Digest, Nonce, Price, Quantity, SeriesId, Timestamp

__all__ = [
    "Book",
    "CloseReason",
    "LevelSummary",
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
    "get_level_quantity",
    "get_match_plan",
    "get_remaining",
    "get_resting_orders",
    "is_crossing",
    "process_cancel",
    "process_close_series",
    "process_order",
    "process_tick",
    "process_verified_cancel",
    "process_verified_order",
    "validate_order",
]

_MIN_STALE = 64  # stale hashes a series may hold before compaction is considered
_NO_EXPIRY = 2**256  # above every uint256 expiry


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
    OPEN_INTEREST_CAP = "open_interest_cap"
    """The next fill would take open interest above ``max_open_interest``: a taker stops."""


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
    taker_short: InsufficientCollateral | OpenInterestCapReached | None
    """Set when matching stopped because the taker could not carry the next fill, or the next
    fill would take open interest above its cap."""


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
class LevelSummary:
    """Running figures of one price level, kept by every change to it."""

    quantity: int
    """Contract units the level's resting orders still offer (expired ones included until purged)."""
    earliest: int
    """At most the earliest expiry among them: lowered when an order rests, made exact again by
    :func:`get_level_quantity` when it has passed (removals leave it as it is)."""


@dataclass(slots=True)
class SeriesBook:
    """Both sides of one series: FIFO queues of order hashes per price level."""

    series_id: SeriesId
    """The series."""
    bids: dict[Price, deque[Digest]] = field(default_factory=dict)
    """Buy orders per price, oldest first (the first is resting; later hashes may have left)."""
    asks: dict[Price, deque[Digest]] = field(default_factory=dict)
    """Sell orders per price, oldest first (the first is resting; later hashes may have left)."""
    bid_prices: list[Price] = field(default_factory=list)
    """Bid levels, ascending (the best bid is last)."""
    ask_prices: list[Price] = field(default_factory=list)
    """Ask levels, ascending (the best ask is first)."""
    bid_summaries: dict[Price, LevelSummary] = field(default_factory=dict)
    """Running figures per bid level (same keys as ``bids``)."""
    ask_summaries: dict[Price, LevelSummary] = field(default_factory=dict)
    """Running figures per ask level (same keys as ``asks``)."""
    stale: int = 0
    """Hashes in the deques that have left the book; the deques are compacted once there are more
    of them than orders resting on the whole book (amortised O(1), memory bounded)."""


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
    fees: FeeSchedule = NO_FEES
    """What each side of a fill pays (:class:`~clearhouse.market.trades.FeeSchedule`), checked
    against both sides' collateral with the fill and carried by its trade."""


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


def _get_summaries(series_book: SeriesBook, side: Side) -> dict[Price, LevelSummary]:
    return series_book.bid_summaries if side is Side.BUY else series_book.ask_summaries


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


def _iter_live(book: Book, queue: deque[Digest]) -> Iterator[RestingOrder]:
    """The resting orders of one level, oldest first (skipping hashes that have left)."""
    resting = book.resting
    for digest in queue:
        order = resting.get(digest)
        if order is not None:
            yield order


def _get_best(book: Book, series_id: SeriesId, side: Side, now: Timestamp) -> Price | None:
    series_book = book.series.get(series_id)
    if series_book is None:
        return None
    for price, queue in _iter_levels(series_book, side):
        if any(not is_expired(r.signed.message.expiry, now) for r in _iter_live(book, queue)):
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
    for price, _ in _iter_levels(series_book, side):
        quantity = get_level_quantity(book, series_id, side, price, now)
        if quantity:
            depth.append((price, quantity))
    return tuple(depth)


def get_level_quantity(book: Book, series_id: SeriesId, side: Side, price: Price, now: Timestamp
                       ) -> Quantity:
    """Unexpired quantity resting at one price level: O(1) from the level's summary unless an
    order there may have expired, then one pass over the level (which makes the summary's
    earliest expiry exact again)."""
    series_book = book.series.get(series_id)
    if series_book is None:
        return Quantity(0)
    summary = _get_summaries(series_book, side).get(price)
    if summary is None:
        return Quantity(0)
    if not is_expired(summary.earliest, now):
        return Quantity(summary.quantity)
    levels, _ = _get_side(series_book, side)
    total, earliest = 0, _NO_EXPIRY
    for resting in _iter_live(book, levels[price]):
        expiry = resting.signed.message.expiry
        earliest = min(earliest, expiry)
        if not is_expired(expiry, now):
            total += get_remaining(book, resting.signed.digest)
    summary.earliest = earliest
    return Quantity(total)


def _iter_crossing(book: Book, order: Order) -> Iterator[RestingOrder]:
    """Opposite resting orders ``order`` crosses, in priority order (best price, then oldest)."""
    series_book = book.series.get(order.series_id)
    if series_book is None:
        return
    opposite = Side.SELL if order.side is Side.BUY else Side.BUY
    for price, queue in _iter_levels(series_book, opposite):
        if not is_crossing(order, price):
            return
        yield from _iter_live(book, queue)


# --- validation --------------------------------------------------------------------------------


def _validate_order_hash(book: Book, signed: Signed[Order]) -> None:
    """A hash is accepted once: never again while resting, once filled, or once closed."""
    order, digest = signed.message, signed.digest
    if digest in book.resting:
        raise DuplicateOrder("order is already on the book", field="orderHash", digest=digest)
    if book.filled.get(digest, 0) >= order.quantity:
        raise Overfill("order is already completely filled", field="quantity", digest=digest)
    reason = book.closed.get(digest)
    if reason is None and book.precancelled and (order.account, digest) in book.precancelled:
        reason = CloseReason.CANCELLED
    if reason is not None:
        raise OrderCancelled(f"order is closed ({reason})", field="orderHash", digest=digest,
                             reason=reason)


def _validate_listing(listing: Listing, order: Order, now: Timestamp) -> None:
    if now >= listing.series.expiry:
        raise InvalidOrder("the series has expired", field="seriesId", series_id=order.series_id)
    price, quantity = order.price, order.quantity
    # the common valid case without calls; anything else gets the canonical check and its error
    if not (type(price) is int and price > 0 and price % listing.rules.premium_tick == 0):
        validate_premium(listing.rules, price)
    if not (type(quantity) is int and 0 < quantity <= MAX_QUANTITY):
        validate_quantity(quantity)


def validate_order(book: Book, signed: Signed[Order], now: Timestamp) -> Listing:
    """Every check an order passes before matching; returns its series' listing.

    Checks, in order: hash not seen (resting, filled or closed), unexpired, listed and unexpired
    series, premium on tick, quantity in range, nonce unused, and the account able to carry the
    whole order at its limit price with the larger of the two fees.
    """
    order, digest = signed.message, signed.digest
    if (digest in book.resting or digest in book.filled or digest in book.closed
            or (book.precancelled and (order.account, digest) in book.precancelled)):
        _validate_order_hash(book, signed)  # a hash seen before: refused if a rule says so
    if now > order.expiry:
        raise OrderExpired("order is past its expiry", field="expiry", expiry=order.expiry, now=now)
    listing = book.listings.get(order.series_id) or get_listing(book.listings, order.series_id)
    _validate_listing(listing, order, now)
    nonce, bitmap = order.nonce, book.nonces.get(order.account)
    # the Order checked its nonce is a uint256: the bitmap position of messages.nonces, inline
    if bitmap is not None and bitmap.get(nonce >> 8, 0) >> (nonce & 0xFF) & 1:
        raise ReplayedMessage(f"nonce {nonce} already used", field="nonce", nonce=nonce)
    # exact: on-tick premiums are multiples of contract_unit (listing rule, checked above)
    premium = order.price * order.quantity // listing.rules.contract_unit
    fee = premium * max(book.fees.maker_bps, book.fees.taker_bps) // BPS
    moved, cash = ((order.quantity, -premium - fee) if order.side is Side.BUY
                   else (-order.quantity, premium - fee))
    check_move = getattr(book.risk, "check_move", None)
    if check_move is None:
        book.risk.check_fill(order.account, (PositionDelta(order.series_id, Quantity(moved)),),
                             cash)
    else:
        check_move(order.account, order.series_id, moved, cash)
    return listing


# --- matching ----------------------------------------------------------------------------------

_Fill = tuple[RestingOrder, Quantity, Amount]
"""A planned fill in the hot path: (maker order, contract units, premium)."""
_Flow = tuple[tuple[PositionDelta, ...], int]
"""An account's pending position deltas and cash over the fills planned so far."""
_NO_FLOW: _Flow = ((), 0)
_Move = tuple[int, int]
"""An account's netted position move and cash over the fills planned so far (``MoveRiskHook``)."""
_NO_MOVE: _Move = (0, 0)
_Stop = InsufficientCollateral | OpenInterestCapReached
"""Why matching stopped before the taker was filled."""
_NO_FEE = Amount(0)


@dataclass(slots=True)
class _CappedPlan:
    """A plan near the open-interest cap: the long change of its fills so far and each account's
    planned move (checked fill by fill only then; see :func:`_check_capped_fill`)."""

    added: int = 0
    moves: dict[Address, int] = field(default_factory=dict)


def _get_post_only_removals(book: Book, signed: Signed[Order], now: Timestamp) -> list[Removal]:
    """A post-only order takes nothing: refused if any live opposite order crosses it."""
    removals = []
    for resting in _iter_crossing(book, signed.message):
        maker = resting.signed.message
        if not is_expired(maker.expiry, now):
            raise PostOnlyWouldTake(f"post-only order crosses a resting order at {maker.price}",
                                    field="price", digest=signed.digest)
        removals.append(Removal(resting.signed.digest, maker.account, CloseReason.EXPIRED))
    return removals


def _get_crossed_levels(series_book: SeriesBook, order: Order
                        ) -> tuple[dict[Price, deque[Digest]], list[Price]]:
    """The opposite side's levels and the prices ``order`` crosses there, best first."""
    limit = order.price
    if order.side is Side.BUY:
        prices = series_book.ask_prices
        return series_book.asks, prices[:bisect.bisect_right(prices, limit)]
    prices = series_book.bid_prices
    crossed = prices[bisect.bisect_left(prices, limit):]
    crossed.reverse()
    return series_book.bids, crossed


def _compute_plan(book: Book, signed: Signed[Order], unit: int, now: Timestamp
                  ) -> tuple[list[_Fill], list[Removal], Quantity, _Stop | None]:
    """The walk behind :func:`get_match_plan` on plain tuples: ``(fills, removals, quantity
    filled, taker short)``. One loop with local state because it runs for every order; with a
    :class:`MoveRiskHook` both sides' checks are inline on netted integers (``moved``, ``cash``),
    else :func:`_check_planned_fill` passes the hook every fill's delta."""
    order = signed.message
    fills: list[_Fill] = []
    if order.time_in_force is TimeInForce.POST_ONLY:
        return fills, _get_post_only_removals(book, signed, now), Quantity(0), None
    removals: list[Removal] = []
    series_book = book.series.get(order.series_id)
    if series_book is None:
        return fills, removals, Quantity(0), None
    levels, crossed = _get_crossed_levels(series_book, order)
    if not crossed:
        return fills, removals, Quantity(0), None
    check_move = getattr(book.risk, "check_move", None)
    account, series_id, sign = order.account, order.series_id, 1 if order.side is Side.BUY else -1
    resting_orders, filled = book.resting, book.filled
    room = getattr(book.risk, "has_open_interest_room", None)  # O(1): fills raise OI by <= quantity
    capped = None if room is None or room(series_id, order.quantity) else _CappedPlan()
    left: int = order.quantity
    taker: _Flow = _NO_FLOW
    makers: dict[Address, _Flow] = {}
    moved = cash = 0  # the taker's, over the fills planned so far (fees included)
    moves: dict[Address, _Move] = {}
    maker_bps, taker_bps = book.fees.maker_bps, book.fees.taker_bps
    for price in crossed:
        for digest in levels[price]:
            resting = resting_orders.get(digest)
            if resting is None:  # left the book; its hash waits to reach the front
                continue
            maker = resting.signed.message
            if now > maker.expiry or maker.account == account:
                removals.append(Removal(digest, maker.account, CloseReason.EXPIRED
                                        if now > maker.expiry else CloseReason.SELF_TRADE))
                continue
            quantity = Quantity(min(left, maker.quantity - filled.get(digest, 0)))
            # exact: the price is on the premium tick, a multiple of contract_unit (listing rule)
            premium = Amount(maker.price * quantity // unit)
            if check_move is None:
                checked = _check_planned_fill(book, order, maker, quantity, premium, taker, makers)
                if isinstance(checked, InsufficientCollateral):
                    return fills, removals, Quantity(order.quantity - left), checked
                if checked is None:
                    removals.append(Removal(digest, maker.account,
                                            CloseReason.INSUFFICIENT_COLLATERAL))
                    continue
                taker = checked
            else:  # the taker first: a taker short of collateral is not the maker's fault
                taker_cash = cash - sign * premium
                if taker_bps:
                    taker_cash -= premium * taker_bps // BPS
                try:
                    check_move(account, series_id, moved + sign * quantity, taker_cash)
                except InsufficientCollateral as short:
                    return fills, removals, Quantity(order.quantity - left), short
                maker_moved, maker_cash = moves.get(maker.account, _NO_MOVE)
                maker_moved = maker_moved - sign * quantity
                maker_cash = maker_cash + sign * premium
                if maker_bps:
                    maker_cash -= premium * maker_bps // BPS
                try:
                    check_move(maker.account, series_id, maker_moved, maker_cash)
                except InsufficientCollateral:
                    removals.append(Removal(digest, maker.account,
                                            CloseReason.INSUFFICIENT_COLLATERAL))
                    continue
                moves[maker.account] = (maker_moved, maker_cash)
                moved, cash = moved + sign * quantity, taker_cash
            if capped is not None:
                over = _check_capped_fill(book, order, maker.account, quantity, capped)
                if over is not None:
                    return fills, removals, Quantity(order.quantity - left), over
            fills.append((resting, quantity, premium))
            left -= quantity
            if not left:
                return fills, removals, order.quantity, None
    return fills, removals, Quantity(order.quantity - left), None


def get_match_plan(book: Book, signed: Signed[Order], listing: Listing, now: Timestamp
                   ) -> MatchPlan:
    """Plan the fills of ``signed`` against the book without changing anything.

    Expired resting orders and the taker's own orders (self-trade prevention) are planned for
    removal and skipped; a fill the maker cannot carry removes that maker order and matching goes
    on; a fill the taker cannot carry, or one that would take open interest above its cap (a
    hook with ``has_open_interest_room``: ``Portfolios``), stops matching.
    """
    fills, removals, quantity, short = _compute_plan(book, signed, listing.rules.contract_unit,
                                                     now)
    return MatchPlan(tuple(PlannedFill(*fill) for fill in fills), tuple(removals), quantity, short)


def _check_capped_fill(book: Book, order: Order, maker: Address, quantity: Quantity,
                       capped: _CappedPlan) -> OpenInterestCapReached | None:
    """The open-interest cap on one fill on top of the planned ones (the hook's
    ``check_open_interest_fill``); records the fill in ``capped`` unless it is refused."""
    buyer, seller = (order.account, maker) if order.side is Side.BUY else (maker, order.account)
    before = capped.moves.get(buyer, 0), capped.moves.get(seller, 0)
    try:
        capped.added = book.risk.check_open_interest_fill(  # type: ignore[attr-defined]
            order.series_id, capped.added, buyer, before[0], seller, before[1], quantity)
    except OpenInterestCapReached as over:
        return over
    capped.moves[buyer], capped.moves[seller] = before[0] + quantity, before[1] - quantity
    return None


def _check_planned_fill(book: Book, order: Order, maker: Order, quantity: Quantity,
                        premium: Amount, taker: _Flow, makers: dict[Address, _Flow]
                        ) -> _Flow | InsufficientCollateral | None:
    """Risk-check both sides of one fill on top of their earlier planned fills (taker first: a
    taker short of collateral is not the maker's fault). Returns the taker's flow with the fill
    (and records the maker's in ``makers``), the taker's shortfall, or ``None`` if the maker
    cannot carry it."""
    buys = order.side is Side.BUY
    bought, paid = (quantity, -premium) if buys else (-quantity, premium)
    fees = book.fees
    taker_next = ((*taker[0], PositionDelta(order.series_id, Quantity(bought))),
                  taker[1] + paid - premium * fees.taker_bps // BPS)
    maker_deltas, maker_cash = makers.get(maker.account, _NO_FLOW)
    maker_next = ((*maker_deltas, PositionDelta(order.series_id, Quantity(-bought))),
                  maker_cash - paid - premium * fees.maker_bps // BPS)
    try:
        book.risk.check_fill(order.account, *taker_next)
    except InsufficientCollateral as short:
        return short
    try:
        book.risk.check_fill(maker.account, *maker_next)
    except InsufficientCollateral:
        return None
    makers[maker.account] = maker_next
    return taker_next


def _validate_plan(signed: Signed[Order], fills: list[_Fill], quantity: Quantity,
                   short: _Stop | None) -> None:
    order = signed.message
    if order.time_in_force is TimeInForce.FOK and quantity < order.quantity:
        raise FillOrKillUnfilled(f"only {quantity} of {order.quantity} can fill now",
                                 field="quantity", digest=signed.digest, fillable=quantity)
    if short is not None and not fills:
        raise short


def _validate_fills(book: Book, signed: Signed[Order], fills: list[_Fill]) -> None:
    """No fill of a (possibly stale) plan may take an order beyond its signed quantity: checked
    for every fill before anything changes."""
    taker_total = book.filled.get(signed.digest, 0)
    for resting, quantity, _ in fills:
        maker = resting.signed
        before = book.filled.get(maker.digest, 0)
        if before + quantity > maker.message.quantity:
            raise Overfill(f"fill of {quantity} would exceed the signed {maker.message.quantity}",
                           field="quantity", digest=maker.digest, filled=before)
        taker_total += quantity
    if taker_total > signed.message.quantity:
        raise Overfill(f"fills would exceed the signed {signed.message.quantity}",
                       field="quantity", digest=signed.digest)


# --- state changes -----------------------------------------------------------------------------


def _remove_resting(book: Book, digest: Digest) -> RestingOrder:
    """Take an order off the book in O(1): its hash leaves its level's deque once it is first."""
    resting = book.resting.pop(digest)
    order = resting.signed.message
    series_book = book.series[order.series_id]
    levels, prices = _get_side(series_book, order.side)
    summaries = _get_summaries(series_book, order.side)
    summaries[order.price].quantity -= order.quantity - book.filled.get(digest, 0)
    queue = levels[order.price]
    if queue[0] == digest:
        live = book.resting
        queue.popleft()
        while queue and queue[0] not in live:
            queue.popleft()
            series_book.stale -= 1
        if not queue:
            del levels[order.price]
            del summaries[order.price]
            del prices[bisect.bisect_left(prices, order.price)]
    else:
        series_book.stale += 1
        if series_book.stale > _MIN_STALE + len(book.resting):
            _compact(book, series_book)
    book.by_nonce.pop((order.account, order.nonce), None)
    return resting


def _compact(book: Book, series_book: SeriesBook) -> None:
    """Drop every hash that has left the book from the series' deques (fronts stay resting)."""
    for levels in (series_book.bids, series_book.asks):
        for queue in levels.values():
            live = [digest for digest in queue if digest in book.resting]
            queue.clear()
            queue.extend(live)
    series_book.stale = 0


def _close_resting(book: Book, digest: Digest, reason: CloseReason) -> None:
    _remove_resting(book, digest)
    book.closed[digest] = reason


def _rest(book: Book, signed: Signed[Order]) -> None:
    order, digest = signed.message, signed.digest
    sequence = book.sequence = book.sequence + 1
    book.resting[digest] = RestingOrder(signed, sequence)
    series_book = book.series.get(order.series_id) or _get_series_book(book, order.series_id)
    if order.side is Side.BUY:
        levels, prices = series_book.bids, series_book.bid_prices
        summaries = series_book.bid_summaries
    else:
        levels, prices = series_book.asks, series_book.ask_prices
        summaries = series_book.ask_summaries
    remaining = order.quantity - book.filled.get(digest, 0)
    queue = levels.get(order.price)
    if queue is None:
        queue = levels[order.price] = deque()
        summaries[order.price] = LevelSummary(remaining, order.expiry)
        bisect.insort(prices, order.price)
    else:
        summary = summaries[order.price]
        summary.quantity += remaining
        if order.expiry < summary.earliest:
            summary.earliest = order.expiry
    queue.append(digest)
    book.by_nonce[(order.account, order.nonce)] = digest
    heapq.heappush(book.expiries, (order.expiry, sequence, digest))


def _apply_fills(book: Book, taker: Signed[Order], fills: list[_Fill], now: Timestamp
                 ) -> tuple[Trade, ...]:
    """Record every fill, close the makers filled up, move the ledger (one call per account,
    with its fills netted: makers first, then the taker), and return the trades."""
    order, filled, closed = taker.message, book.filled, book.closed
    series_id, sign = order.series_id, 1 if order.side is Side.BUY else -1
    maker_bps, taker_bps = book.fees.maker_bps, book.fees.taker_bps
    trades: list[Trade] = []
    makers: dict[Address, _Move] = {}
    bought = paid = taker_fees = 0  # the taker's, unsigned
    summaries = _get_summaries(book.series[series_id], Side.SELL if sign > 0 else Side.BUY)
    for resting, quantity, premium in fills:
        maker, maker_order = resting.signed, resting.signed.message
        before = filled.get(maker.digest, 0)
        if before + quantity == maker_order.quantity:
            _remove_resting(book, maker.digest)  # takes its remaining (this fill) off the level
            closed[maker.digest] = CloseReason.FILLED
        else:
            summaries[maker_order.price].quantity -= quantity
        filled[maker.digest] = Quantity(before + quantity)
        maker_fee = Amount(premium * maker_bps // BPS) if maker_bps else _NO_FEE
        taker_fee = Amount(premium * taker_bps // BPS) if taker_bps else _NO_FEE
        held, cash = makers.get(maker_order.account, _NO_MOVE)
        makers[maker_order.account] = (held - sign * quantity, cash + sign * premium - maker_fee)
        bought, paid, taker_fees = bought + quantity, paid + premium, taker_fees + taker_fee
        trades.append(compute_book_trade(taker, maker, Quantity(before), quantity, premium, now,
                                         maker_fee, taker_fee))
    filled[taker.digest] = Quantity(filled.get(taker.digest, 0) + bought)
    risk = book.risk
    apply_move = getattr(risk, "apply_move", None)
    taker_move = (sign * bought, -sign * paid - taker_fees)
    for account, (held, cash) in (*makers.items(), (order.account, taker_move)):
        if apply_move is None:
            risk.apply_fill(account, (PositionDelta(series_id, Quantity(held)),), cash)
        else:
            apply_move(account, series_id, held, cash)
    return tuple(trades)


def _get_close_reason(order: Order, quantity: Quantity, short: _Stop | None
                      ) -> CloseReason | None:
    if quantity == order.quantity:
        return CloseReason.FILLED
    if isinstance(short, OpenInterestCapReached):
        return CloseReason.OPEN_INTEREST_CAP
    if short is not None:
        return CloseReason.INSUFFICIENT_COLLATERAL
    if order.time_in_force is TimeInForce.IOC:
        return CloseReason.UNFILLED_REMAINDER
    return None


def _apply_plan(book: Book, signed: Signed[Order], fills: list[_Fill],
                removals: tuple[Removal, ...], quantity: Quantity,
                short: _Stop | None, now: Timestamp, fresh: bool = False
                ) -> OrderResult:
    """Commit a plan; ``fresh``: it was computed from this very state in the same call (no fill
    can then overfill: each takes at most what its maker and the taker have left)."""
    order, digest = signed.message, signed.digest
    if not fresh:
        _validate_fills(book, signed, fills)
    bitmap = book.nonces.get(order.account)
    if bitmap is None:
        bitmap = _get_bitmap(book, order.account)
    # use_nonce inline (the Order checked its nonce is a uint256)
    nonce = order.nonce
    word, mask = nonce >> 8, 1 << (nonce & 0xFF)
    used = bitmap.get(word, 0)
    if used & mask:
        raise ReplayedMessage(f"nonce {nonce} already used", field="nonce", nonce=nonce)
    bitmap[word] = used | mask
    for removal in removals:
        _close_resting(book, removal.digest, removal.reason)
    trades = _apply_fills(book, signed, fills, now) if fills else ()
    closed = _get_close_reason(order, quantity, short)
    if closed is None:
        _rest(book, signed)
        return OrderResult(digest, trades, removals, Quantity(order.quantity - quantity),
                                 None)
    book.closed[digest] = closed
    return OrderResult(digest, trades, removals, Quantity(0), closed)


def apply_match_plan(book: Book, signed: Signed[Order], plan: MatchPlan, now: Timestamp
                     ) -> OrderResult:
    """Commit a plan: check no fill overfills (a stale plan is refused before anything changes),
    consume the order's nonce, take off the planned removals, make the fills, then rest the
    remainder (GTC, post-only) or close the order."""
    fills = [(f.maker, f.quantity, f.premium) for f in plan.fills]
    return _apply_plan(book, signed, fills, plan.removals, plan.quantity, plan.taker_short, now)


def process_verified_order(book: Book, signed: Signed[Order], now: Timestamp) -> OrderResult:
    """Accept and match an order whose signature the caller has verified (``verify_signed`` or
    the coordinator's batch verification)."""
    listing = validate_order(book, signed, now)
    fills, removals, quantity, short = _compute_plan(book, signed, listing.rules.contract_unit,
                                                     now)
    if short is not None or signed.message.time_in_force is TimeInForce.FOK:
        _validate_plan(signed, fills, quantity, short)
    return _apply_plan(book, signed, fills, tuple(removals), quantity, short, now, fresh=True)


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
    if (cancel.order_hash != ZERO_HASH and cancel.order_hash not in targets
            and cancel.order_hash not in book.closed):
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


def process_close_series(book: Book, series_ids: Collection[SeriesId]) -> tuple[Removal, ...]:
    """Close every resting order of ``series_ids`` (their expiry has settled: they can never trade
    again), in arrival order, with reason ``EXPIRED``."""
    closing = sorted((r for r in book.resting.values() if r.signed.message.series_id in series_ids),
                     key=lambda r: r.sequence)
    for resting in closing:
        _close_resting(book, resting.signed.digest, CloseReason.EXPIRED)
    return tuple(Removal(r.signed.digest, r.signed.message.account, CloseReason.EXPIRED) for r in closing)
