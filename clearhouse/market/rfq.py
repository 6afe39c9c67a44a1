"""RFQ for multi-leg block trades: a taker's signed RFQ is routed to makers, makers answer with
signed quotes bound to that RFQ id and that taker, the taker accepts one quote with a signed
accept, and every leg fills atomically or none does.

An accepted quote its maker cannot honour (collateral gone, or the maker cancelled it) is
recorded as a :class:`~clearhouse.market.trades.Fade` for maker reputation. Rules:
``docs/protocol.md`` § Trading.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

from clearhouse.errors import (
    AcceptExpired,
    InsufficientCollateral,
    InvalidOrder,
    NotOrderOwner,
    Overfill,
    QuoteAlreadyFilled,
    QuoteExpired,
    QuoteFaded,
    QuoteMismatch,
    ReplayedMessage,
    RFQExpired,
    SelfTrade,
    UnknownQuote,
    UnknownRFQ,
)
from clearhouse.market.collateral import Listings, PositionDelta, RiskHook, get_listing
from clearhouse.market.instruments import (
    compute_premium_amount,
    validate_premium,
    validate_quantity,
)
from clearhouse.market.trades import (
    NO_FEES,
    ZERO_HASH,
    Fade,
    FadeReason,
    FeeSchedule,
    Signed,
    Trade,
    compute_fee,
    compute_opposite_side,
    compute_trade_flows,
    is_expired,
    verify_signed,
)
from clearhouse.messages import (
    RFQ,
    Accept,
    Cancel,
    Domain,
    Leg,
    NonceBitmap,
    Quote,
    QuoteLeg,
    Side,
    invalidate_nonce,
    is_nonce_used,
    use_nonce,
    verify,
)
from clearhouse.types import Address, Amount, Digest, Nonce, Price, Quantity, SeriesId, Timestamp

__all__ = [
    "LegFill",
    "OpenRFQ",
    "QuoteStatus",
    "RfqDesk",
    "RfqFill",
    "Router",
    "compute_leg_fills",
    "compute_leg_flows",
    "compute_maker_leg_side",
    "compute_rfq_trades",
    "get_fades",
    "is_leg_match",
    "is_side_consistent",
    "process_accept",
    "process_quote",
    "process_quote_cancel",
    "process_register_maker",
    "process_rfq",
    "process_tick",
    "process_unregister_maker",
    "process_verified_accept",
    "process_verified_quote",
    "process_verified_rfq",
    "route_to_all",
    "validate_accept",
    "validate_quote",
    "validate_rfq",
]


class Router(Protocol):
    """Chooses which registered makers see an RFQ (by reputation, later)."""

    def __call__(self, rfq: Signed[RFQ], makers: Sequence[Address], /) -> Sequence[Address]:
        """A subset of ``makers`` to send ``rfq`` to; anything else returned is ignored."""


def route_to_all(rfq: Signed[RFQ], makers: Sequence[Address]) -> tuple[Address, ...]:
    """The default route: every registered maker except the taker."""
    return tuple(maker for maker in makers if maker != rfq.message.taker)


class QuoteStatus(StrEnum):
    """Where a quote stands."""

    OPEN = "open"
    """Can be accepted until its expiry."""
    FILLED = "filled"
    """Accepted and filled (a quote fills once)."""
    CANCELLED = "cancelled"
    """Withdrawn by its maker; accepting it records a fade."""
    FADED = "faded"
    """Accepted but not honoured; a fade was recorded."""


@dataclass(frozen=True, slots=True)
class OpenRFQ:
    """An RFQ taking quotes."""

    signed: Signed[RFQ]
    """The signed RFQ (its digest is the RFQ id)."""
    makers: frozenset[Address]
    """The makers it was routed to: only they may quote."""


@dataclass(frozen=True, slots=True)
class LegFill:
    """One leg of an RFQ fill before it becomes a trade."""

    series_id: SeriesId
    """The leg's series."""
    maker_side: Side
    """The maker's direction in this leg."""
    quantity: Quantity
    """``ratio × size`` contract units."""
    price: Price
    """The quote's premium per whole contract for this leg."""
    premium: Amount
    """``price × quantity / contract_unit``, quote base units, exact."""


@dataclass(frozen=True, slots=True)
class RfqFill:
    """The outcome of an accepted quote: one trade per leg, all sharing ``fill_id``."""

    fill_id: Digest
    """The accept's digest (unique: the accept's nonce is consumed)."""
    rfq_id: Digest
    """The RFQ answered."""
    quote_id: Digest
    """The quote accepted."""
    trades: tuple[Trade, ...]
    """One trade per leg, in leg order; settle all or none."""


@dataclass(slots=True)
class RfqDesk:
    """Open RFQs and quotes, registered makers, and the fade log."""

    domain: Domain
    """The deployment's EIP-712 domain."""
    listings: Listings
    """Tradable series."""
    risk: RiskHook
    """The collateral ledger every fill is checked against and applied to."""
    nonces: dict[Address, NonceBitmap] = field(default_factory=dict)
    """Used nonces per account; share it with the book (one nonce space per account)."""
    router: Router = route_to_all
    """The routing hook."""
    makers: list[Address] = field(default_factory=list)
    """Registered makers, in registration order."""
    rfqs: dict[Digest, OpenRFQ] = field(default_factory=dict)
    """Open RFQs by id."""
    rfq_filled: dict[Digest, Quantity] = field(default_factory=dict)
    """Units of each RFQ's structure filled so far; never above the RFQ's size."""
    quotes: dict[Digest, Signed[Quote]] = field(default_factory=dict)
    """Quotes by id, until they expire."""
    quote_status: dict[Digest, QuoteStatus] = field(default_factory=dict)
    """Status of each stored quote."""
    quote_by_nonce: dict[tuple[Address, Nonce], Digest] = field(default_factory=dict)
    """Quote id per (maker, nonce), for cancel by nonce."""
    fades: list[Fade] = field(default_factory=list)
    """Every fade, in order (what the reputation scores read)."""
    fees: FeeSchedule = NO_FEES
    """What each side of a fill pays, on the fill's whole premium (share it with the book)."""


# --- makers ------------------------------------------------------------------------------------


def process_register_maker(desk: RfqDesk, maker: Address) -> None:
    """Let ``maker`` receive RFQs (registering twice is harmless)."""
    if maker not in desk.makers:
        desk.makers.append(maker)


def process_unregister_maker(desk: RfqDesk, maker: Address) -> None:
    """Stop routing RFQs to ``maker`` (its open quotes stay firm until they expire)."""
    if maker in desk.makers:
        desk.makers.remove(maker)


def get_fades(desk: RfqDesk) -> tuple[Fade, ...]:
    """Every fade recorded so far."""
    return tuple(desk.fades)


# --- pure rules --------------------------------------------------------------------------------


def is_leg_match(leg: Leg, quoted: QuoteLeg) -> bool:
    """Whether a quote leg prices exactly the RFQ leg (series, ratio, direction)."""
    return (leg.series_id, leg.ratio, leg.is_buy) == (quoted.series_id, quoted.ratio, quoted.is_buy)


def is_side_consistent(rfq_side: Side, quote_side: Side) -> bool:
    """A maker takes the other side of the taker's: any side for a hidden RFQ."""
    return rfq_side is Side.HIDDEN or quote_side is not rfq_side


def compute_maker_leg_side(quote_side: Side, is_buy: bool) -> Side:
    """The maker's direction in one leg: the structure's buyer buys the ``is_buy`` legs."""
    return Side.BUY if (quote_side is Side.BUY) == is_buy else Side.SELL


def compute_leg_fills(listings: Listings, quote: Quote, size: Quantity) -> tuple[LegFill, ...]:
    """Every leg of ``quote`` filled for ``size`` units of the structure."""
    fills = []
    for leg in quote.legs:
        quantity = validate_quantity(leg.ratio * size)
        unit = get_listing(listings, leg.series_id).rules.contract_unit
        fills.append(LegFill(leg.series_id, compute_maker_leg_side(quote.side, leg.is_buy), quantity,
                             leg.price, compute_premium_amount(leg.price, quantity, unit)))
    return tuple(fills)


def compute_leg_flows(fills: Sequence[LegFill], is_maker: bool, fees: FeeSchedule = NO_FEES
                      ) -> tuple[tuple[PositionDelta, ...], int]:
    """The maker's (or the taker's) position deltas and net cash over ``fills``, its fee under
    ``fees`` included."""
    deltas, cash = [], 0
    for fill in fills:
        side = fill.maker_side if is_maker else compute_opposite_side(fill.maker_side)
        sign = 1 if side is Side.BUY else -1
        deltas.append(PositionDelta(fill.series_id, Quantity(sign * fill.quantity)))
        cash -= sign * fill.premium
    bps = fees.maker_bps if is_maker else fees.taker_bps
    return tuple(deltas), cash - compute_fee(sum(f.premium for f in fills), bps)


def compute_rfq_trades(fills: Sequence[LegFill], quote: Signed[Quote], accept: Signed[Accept],
                       now: Timestamp, fees: FeeSchedule = NO_FEES) -> tuple[Trade, ...]:
    """One :class:`Trade` per leg, sharing the accept's digest as ``fill_id``; leg 0 carries
    each side's fee on the whole fill's premium."""
    maker, taker = quote.message.maker, accept.message.taker
    premium = sum(f.premium for f in fills)
    first = (compute_fee(premium, fees.maker_bps), compute_fee(premium, fees.taker_bps))
    return tuple(Trade(accept.digest, i, len(fills), f.series_id, f.price, f.quantity, f.premium,
                       maker, taker, f.maker_side, compute_opposite_side(f.maker_side), quote, accept,
                       now, *(first if i == 0 else (Amount(0), Amount(0))))
                 for i, f in enumerate(fills))


# --- RFQ ---------------------------------------------------------------------------------------


def _validate_nonce_unused(nonces: dict[Address, NonceBitmap], account: Address, nonce: Nonce) -> None:
    if is_nonce_used(nonces.get(account, {}), nonce):
        raise ReplayedMessage(f"nonce {nonce} already used", field="nonce", nonce=nonce)


def _validate_unexpired_series(listings: Listings, series_ids: Iterable[SeriesId], now: Timestamp) -> None:
    """Every series is listed and still trading at ``now`` (settlement refuses a fill after its
    expiry: ``SeriesExpired``)."""
    for series_id in series_ids:
        if now >= get_listing(listings, series_id).series.expiry:
            raise InvalidOrder("a leg's series has expired", field="legs", series_id=series_id)


def validate_rfq(desk: RfqDesk, signed: Signed[RFQ], now: Timestamp) -> None:
    """An RFQ is unexpired, its legs are distinct unexpired listed series, its size times every
    ratio is a valid quantity, and its nonce is unused."""
    rfq = signed.message
    if is_expired(rfq.expiry, now):
        raise RFQExpired("RFQ is past its expiry", field="expiry", expiry=rfq.expiry, now=now)
    if len({leg.series_id for leg in rfq.legs}) != len(rfq.legs):
        raise InvalidOrder("an RFQ names each series at most once", field="legs")
    _validate_unexpired_series(desk.listings, (leg.series_id for leg in rfq.legs), now)
    for leg in rfq.legs:
        validate_quantity(leg.ratio * rfq.size)
    _validate_nonce_unused(desk.nonces, rfq.taker, rfq.nonce)


def process_verified_rfq(desk: RfqDesk, signed: Signed[RFQ], now: Timestamp
                         ) -> tuple[Address, ...]:
    """Open a verified RFQ and route it; returns the makers it goes to."""
    validate_rfq(desk, signed, now)
    use_nonce(desk.nonces.setdefault(signed.message.taker, {}), signed.message.nonce)
    chosen = set(desk.router(signed, tuple(desk.makers)))
    makers = tuple(m for m in desk.makers if m in chosen and m != signed.message.taker)
    desk.rfqs[signed.digest] = OpenRFQ(signed, frozenset(makers))
    desk.rfq_filled[signed.digest] = Quantity(0)
    return makers


def process_rfq(desk: RfqDesk, rfq: RFQ, signature: bytes, now: Timestamp
                ) -> tuple[Digest, tuple[Address, ...]]:
    """Verify ``rfq`` (signed by its taker), open and route it; returns ``(rfq id, makers)``."""
    if is_expired(rfq.expiry, now):
        raise RFQExpired("RFQ is past its expiry", field="expiry", expiry=rfq.expiry, now=now)
    signed = verify_signed(desk.domain, rfq, signature, rfq.taker)
    return signed.digest, process_verified_rfq(desk, signed, now)


# --- quotes ------------------------------------------------------------------------------------


def _get_open_rfq(desk: RfqDesk, quote: Quote, now: Timestamp) -> OpenRFQ:
    open_rfq = desk.rfqs.get(quote.rfq_id)
    if open_rfq is None:
        raise UnknownRFQ("the quote answers no open RFQ", field="rfqId", rfq_id=quote.rfq_id)
    if is_expired(open_rfq.signed.message.expiry, now):
        raise RFQExpired("the RFQ no longer takes quotes", field="rfqId", rfq_id=quote.rfq_id)
    return open_rfq


def _validate_quote_parties(open_rfq: OpenRFQ, quote: Quote) -> None:
    if quote.taker != open_rfq.signed.message.taker:
        raise QuoteMismatch("the quote is for another taker", field="taker")
    if quote.maker == quote.taker:
        raise SelfTrade("a maker cannot quote its own RFQ", field="maker", account=quote.maker)
    if quote.maker not in open_rfq.makers:
        raise QuoteMismatch("the RFQ was not routed to this maker", field="maker")


def _validate_quote_terms(rfq: RFQ, quote: Quote) -> None:
    if len(quote.legs) != len(rfq.legs):
        raise QuoteMismatch(f"the RFQ has {len(rfq.legs)} legs", field="legs")
    for i, (leg, quoted) in enumerate(zip(rfq.legs, quote.legs, strict=True)):
        if not is_leg_match(leg, quoted):
            raise QuoteMismatch(f"leg {i} differs from the RFQ's", field=f"legs[{i}]")
    if not is_side_consistent(rfq.side, quote.side):
        raise QuoteMismatch("the quote is on the taker's side of the RFQ", field="side")
    if quote.size > rfq.size:
        raise QuoteMismatch(f"the RFQ asks for {rfq.size} units", field="size")


def validate_quote(desk: RfqDesk, signed: Signed[Quote], now: Timestamp) -> OpenRFQ:
    """A quote is unexpired, answers an open RFQ routed to its maker, for that RFQ's taker, with
    the RFQ's legs in order on the other side, series that still trade, prices on tick, an unused
    nonce, and a maker able to carry the whole quote. Returns the RFQ."""
    quote = signed.message
    if is_expired(quote.expiry, now):
        raise QuoteExpired("quote is past its expiry", field="expiry", expiry=quote.expiry, now=now)
    open_rfq = _get_open_rfq(desk, quote, now)
    _validate_quote_parties(open_rfq, quote)
    _validate_quote_terms(open_rfq.signed.message, quote)
    # the RFQ may have been opened just before one of its series expired
    _validate_unexpired_series(desk.listings, (leg.series_id for leg in quote.legs), now)
    for leg in quote.legs:
        validate_premium(get_listing(desk.listings, leg.series_id).rules, leg.price)
    _validate_nonce_unused(desk.nonces, quote.maker, quote.nonce)
    desk.risk.check_fill(quote.maker,
                         *compute_leg_flows(compute_leg_fills(desk.listings, quote, quote.size), True,
                                            desk.fees))
    return open_rfq


def process_verified_quote(desk: RfqDesk, signed: Signed[Quote], now: Timestamp) -> Digest:
    """Store a verified quote; returns its id."""
    validate_quote(desk, signed, now)
    quote = signed.message
    use_nonce(desk.nonces.setdefault(quote.maker, {}), quote.nonce)
    desk.quotes[signed.digest] = signed
    desk.quote_status[signed.digest] = QuoteStatus.OPEN
    desk.quote_by_nonce[(quote.maker, quote.nonce)] = signed.digest
    return signed.digest


def process_quote(desk: RfqDesk, quote: Quote, signature: bytes, now: Timestamp) -> Digest:
    """Verify ``quote`` (signed by its maker) and store it; returns the quote id."""
    if is_expired(quote.expiry, now):
        raise QuoteExpired("quote is past its expiry", field="expiry", expiry=quote.expiry, now=now)
    return process_verified_quote(desk, verify_signed(desk.domain, quote, signature, quote.maker), now)


def process_quote_cancel(desk: RfqDesk, cancel: Cancel, signature: bytes, now: Timestamp
                         ) -> tuple[Digest, ...]:
    """Withdraw the maker's quote named by hash and the one carrying ``cancel.nonce``, and mark
    that nonce used; returns the quotes withdrawn. Accepting a withdrawn quote records a fade."""
    verify(desk.domain, cancel, signature, cancel.account, now)
    targets = [d for d in (cancel.order_hash, desk.quote_by_nonce.get((cancel.account, cancel.nonce)))
               if d is not None and d != ZERO_HASH and desk.quote_status.get(d) is QuoteStatus.OPEN]
    if any(desk.quotes[d].message.maker != cancel.account for d in targets):
        raise NotOrderOwner("the quote belongs to another maker", field="orderHash",
                            account=cancel.account)
    invalidate_nonce(desk.nonces.setdefault(cancel.account, {}), cancel.nonce)
    for digest in dict.fromkeys(targets):
        desk.quote_status[digest] = QuoteStatus.CANCELLED
    return tuple(dict.fromkeys(targets))


# --- accept ------------------------------------------------------------------------------------


def _get_open_quote(desk: RfqDesk, accept: Accept, now: Timestamp) -> Signed[Quote]:
    signed = desk.quotes.get(accept.quote_id)
    if signed is None:
        raise UnknownQuote("no such quote is open", field="quoteId", quote_id=accept.quote_id)
    if accept.taker != signed.message.taker:
        raise QuoteMismatch("the quote is for another taker", field="taker")
    status = desk.quote_status[accept.quote_id]
    if status is QuoteStatus.FILLED:
        raise QuoteAlreadyFilled("the quote was already accepted", field="quoteId")
    if status is QuoteStatus.FADED:
        raise QuoteFaded("the quote was already faded", field="quoteId")
    if is_expired(signed.message.expiry, now):
        raise QuoteExpired("the quote has expired", field="quoteId", expiry=signed.message.expiry)
    return signed


def _validate_accept_size(desk: RfqDesk, quote: Quote, accept: Accept) -> None:
    if accept.size > quote.size:
        raise Overfill(f"the quote is for at most {quote.size} units", field="size")
    rfq = desk.rfqs[quote.rfq_id].signed.message
    filled = desk.rfq_filled[quote.rfq_id]
    if filled + accept.size > rfq.size:
        raise Overfill(f"the RFQ has {rfq.size - filled} units left", field="size")


def validate_accept(desk: RfqDesk, signed: Signed[Accept], now: Timestamp
                    ) -> tuple[Signed[Quote], tuple[LegFill, ...]]:
    """Everything about an accept that is the taker's responsibility: unexpired, an open quote
    for this taker whose series all still trade, a size within the quote and what is left of the
    RFQ, an unused nonce, a taker able to carry the trade, and open interest within its cap after
    it (a hook with ``check_open_interest``: ``Portfolios``). Returns the quote and the leg fills."""
    accept = signed.message
    if is_expired(accept.expiry, now):
        raise AcceptExpired("accept is past its expiry", field="expiry", expiry=accept.expiry, now=now)
    quote = _get_open_quote(desk, accept, now)
    _validate_unexpired_series(desk.listings, (leg.series_id for leg in quote.message.legs), now)
    _validate_accept_size(desk, quote.message, accept)
    _validate_nonce_unused(desk.nonces, accept.taker, accept.nonce)
    fills = compute_leg_fills(desk.listings, quote.message, accept.size)
    desk.risk.check_fill(accept.taker, *compute_leg_flows(fills, False, desk.fees))
    check_open_interest = getattr(desk.risk, "check_open_interest", None)
    if check_open_interest is not None:  # the venue's cap: neither side's fault, never a fade
        check_open_interest({quote.message.maker: compute_leg_flows(fills, True)[0],
                             accept.taker: compute_leg_flows(fills, False)[0]})
    return quote, fills


def _get_fade_reason(desk: RfqDesk, quote: Signed[Quote], fills: Sequence[LegFill]
                     ) -> FadeReason | None:
    if desk.quote_status[quote.digest] is QuoteStatus.CANCELLED:
        return FadeReason.CANCELLED
    try:
        desk.risk.check_fill(quote.message.maker, *compute_leg_flows(fills, True, desk.fees))
    except InsufficientCollateral:
        return FadeReason.INSUFFICIENT_COLLATERAL
    return None


def _apply_fade(desk: RfqDesk, quote: Signed[Quote], reason: FadeReason, now: Timestamp) -> Fade:
    fade = Fade(quote.message.maker, quote.message.rfq_id, quote.digest, reason, now)
    desk.fades.append(fade)
    desk.quote_status[quote.digest] = QuoteStatus.FADED
    return fade


def process_verified_accept(desk: RfqDesk, signed: Signed[Accept], now: Timestamp) -> RfqFill:
    """Fill every leg of the accepted quote atomically, or refuse and change nothing.

    The one refusal that changes state is :class:`QuoteFaded`: when the taker's side is in order
    but the maker cancelled the quote or can no longer carry it, the fade is recorded, the quote
    is closed, and the taker's accept nonce stays unused.
    """
    quote, fills = validate_accept(desk, signed, now)
    reason = _get_fade_reason(desk, quote, fills)
    if reason is not None:
        fade = _apply_fade(desk, quote, reason, now)
        raise QuoteFaded(f"the maker cannot honour the quote ({reason})", field="quoteId",
                         fade=fade)
    use_nonce(desk.nonces.setdefault(signed.message.taker, {}), signed.message.nonce)
    desk.quote_status[quote.digest] = QuoteStatus.FILLED
    desk.rfq_filled[quote.message.rfq_id] = Quantity(desk.rfq_filled[quote.message.rfq_id]
                                                     + signed.message.size)
    trades = compute_rfq_trades(fills, quote, signed, now, desk.fees)
    for account in (quote.message.maker, signed.message.taker):
        desk.risk.apply_fill(account, *compute_trade_flows(trades, account))
    return RfqFill(signed.digest, quote.message.rfq_id, quote.digest, trades)


def process_accept(desk: RfqDesk, accept: Accept, signature: bytes, now: Timestamp) -> RfqFill:
    """Verify ``accept`` (signed by its taker) and fill the quote it names."""
    if is_expired(accept.expiry, now):
        raise AcceptExpired("accept is past its expiry", field="expiry", expiry=accept.expiry, now=now)
    return process_verified_accept(desk, verify_signed(desk.domain, accept, signature, accept.taker),
                                   now)


# --- time --------------------------------------------------------------------------------------


def process_tick(desk: RfqDesk, now: Timestamp) -> None:
    """Forget expired quotes, then expired RFQs no stored quote refers to."""
    for digest in [d for d, q in desk.quotes.items() if is_expired(q.message.expiry, now)]:
        quote = desk.quotes.pop(digest).message
        desk.quote_status.pop(digest)
        desk.quote_by_nonce.pop((quote.maker, quote.nonce), None)
    quoted = {q.message.rfq_id for q in desk.quotes.values()}
    for rfq_id in [r for r, o in desk.rfqs.items()
                   if is_expired(o.signed.message.expiry, now) and r not in quoted]:
        del desk.rfqs[rfq_id]
        del desk.rfq_filled[rfq_id]
