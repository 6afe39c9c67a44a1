"""What matching produces: signed messages with their digests, trades ready for settlement
batching, and fade events.

A :class:`Trade` carries the signed messages that authorise it on both sides (DESIGN §2.1), so a
settlement batch or a watcher can check every trade back to a signature without the book.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from enum import StrEnum
from typing import Final, Generic, TypeVar

from clearhouse.errors import ConfigError
from clearhouse.market.collateral import PositionDelta
from clearhouse.messages import RFQ, Accept, Cancel, Domain, Order, Quote, Side
from clearhouse.messages.fast import compute_message_digest
from clearhouse.messages.keccak import keccak256
from clearhouse.messages.signing import verify_digest
from clearhouse.types import Address, Amount, Digest, Price, Quantity, SeriesId, Timestamp

__all__ = [
    "NO_FEES",
    "ZERO_HASH",
    "Fade",
    "FadeReason",
    "FeeSchedule",
    "Signed",
    "Trade",
    "compute_book_fill_id",
    "compute_book_trade",
    "compute_fee",
    "compute_opposite_side",
    "compute_trade_flows",
    "get_buyer",
    "get_seller",
    "get_signer_field",
    "is_expired",
    "is_trade_authorised",
    "verify_signed",
]

M = TypeVar("M", Order, RFQ, Quote, Accept, Cancel)

_FILL_TAG = keccak256(b"clearhouse.fill")

ZERO_HASH = Digest(bytes(32))
"""``Cancel.order_hash`` of a cancel by nonce only."""

BPS: Final = 10_000
_NO_FEE: Final = Amount(0)


@dataclass(frozen=True, slots=True)
class FeeSchedule:
    """The trading fees the venue charges when a fill is matched: each side pays its rate of the
    fill's premium (an RFQ fill's: the sum over its legs), rounded down, on top of the premium.
    Fixed per trade at match time and carried by the :class:`Trade`, so the ledger that checked
    the fill and the settlement batch that applies it charge the same."""

    maker_bps: int = 0
    """Basis points of the premium paid by the side that provided liquidity."""
    taker_bps: int = 0
    """Basis points of the premium paid by the side that took it."""

    def __post_init__(self) -> None:
        for name in ("maker_bps", "taker_bps"):
            value = getattr(self, name)
            if type(value) is not int or not 0 <= value <= BPS:
                raise ConfigError(f"{name} must be an integer in [0, {BPS}]", field=name)


NO_FEES: Final = FeeSchedule()


def compute_fee(premium: int, bps: int) -> Amount:
    """One side's fee on ``premium``: ``premium × bps / 10⁴`` rounded down (the STF's bound,
    ``max_fee_bps``, is on the same quantity)."""
    return Amount(premium * bps // BPS)


@dataclass(frozen=True, slots=True)
class Signed(Generic[M]):
    """A message with its signature and EIP-712 digest, checked when built by :func:`verify_signed`
    (or by the coordinator's batch verification on ingest)."""

    message: M
    """The signed message."""
    signature: bytes
    """Its 65-byte ``r ‖ s ‖ v`` signature."""
    digest: Digest
    """Its EIP-712 digest in the deployment's domain: the order hash, RFQ id or quote id."""


@dataclass(frozen=True, slots=True)
class Trade:
    """One fill of one series between a maker and a taker; premium moves buyer -> seller now."""

    fill_id: Digest
    """Groups the trades that settle atomically: every leg of one RFQ fill shares it."""
    leg: int
    """Index of this trade in its fill (the leg index for an RFQ; 0 for a book trade)."""
    legs: int
    """Trades sharing ``fill_id`` (the RFQ's leg count; 1 for a book trade)."""
    series_id: SeriesId
    """The series traded."""
    price: Price
    """Premium per whole contract, quote-token base units (the maker's price)."""
    quantity: Quantity
    """Contract units traded (> 0)."""
    premium: Amount
    """``price × quantity / contract_unit`` in quote base units, exact; paid by the buyer to the seller."""
    maker: Address
    """The account whose resting order or quote provided the liquidity."""
    taker: Address
    """The account whose order or accept took it."""
    maker_side: Side
    """``BUY`` or ``SELL``: the maker's direction in this series."""
    taker_side: Side
    """The opposite of ``maker_side``."""
    maker_auth: Signed[Order] | Signed[Quote]
    """The maker's signed order or quote authorising this trade."""
    taker_auth: Signed[Order] | Signed[Accept]
    """The taker's signed order or accept authorising this trade."""
    time: Timestamp
    """When the fill happened (the ``now`` of the call that made it)."""
    maker_fee: Amount = _NO_FEE
    """What the maker pays the venue for this trade, quote base units (an RFQ fill's whole fee
    rides on its leg 0)."""
    taker_fee: Amount = _NO_FEE
    """What the taker pays the venue for this trade."""


class FadeReason(StrEnum):
    """Why an accepted quote could not be honoured."""

    INSUFFICIENT_COLLATERAL = "insufficient_collateral"
    """The maker's collateral no longer covers the trade at accept time."""
    CANCELLED = "cancelled"
    """The maker cancelled the quote (by hash or nonce) before the taker accepted it."""


@dataclass(frozen=True, slots=True)
class Fade:
    """A quote accepted by its taker that its maker did not honour (input to maker reputation)."""

    maker: Address
    """The maker who faded."""
    rfq_id: Digest
    """The RFQ the quote answered."""
    quote_id: Digest
    """The quote accepted."""
    reason: FadeReason
    """Why it could not be honoured."""
    time: Timestamp
    """When the accept arrived."""


def is_expired(expiry: int, now: Timestamp) -> bool:
    """Whether a message with ``expiry`` is void at ``now`` (valid through ``expiry`` itself)."""
    return now > expiry


def verify_signed(domain: Domain, message: M, signature: bytes, signer: Address) -> Signed[M]:
    """``message`` with its digest, once ``signature`` is checked to be ``signer``'s over it.

    Raises ``InvalidSignature`` or ``WrongSigner`` (expiry is the caller's guard: each rule has
    its own expiry error).
    """
    digest = compute_message_digest(domain, message)
    verify_digest(digest, signature, signer)
    return Signed(message, bytes(signature), digest)


def compute_opposite_side(side: Side) -> Side:
    """``SELL`` for ``BUY`` and ``BUY`` for ``SELL``."""
    return Side.SELL if side is Side.BUY else Side.BUY


def compute_book_fill_id(taker: Digest, maker: Digest, maker_filled_before: Quantity) -> Digest:
    """A book fill's id: unique because the maker's cumulative fill grows with every fill.

    Hashed with the fast path's lean Keccak binding (one per book fill; equal to the public one)."""
    return Digest(keccak256(_FILL_TAG + taker + maker + maker_filled_before.to_bytes(32, "big")))


# One setter per Trade slot, in field order, for compute_book_trade.
(_set_fill_id, _set_leg, _set_legs, _set_series_id, _set_price, _set_quantity, _set_premium,
 _set_maker, _set_taker, _set_maker_side, _set_taker_side, _set_maker_auth, _set_taker_auth,
 _set_time, _set_maker_fee, _set_taker_fee) = (vars(Trade)[f.name].__set__ for f in fields(Trade))
_new_object = object.__new__


def compute_book_trade(taker: Signed[Order], maker: Signed[Order], maker_filled_before: Quantity,
                       quantity: Quantity, premium: Amount, time: Timestamp,
                       maker_fee: Amount = _NO_FEE, taker_fee: Amount = _NO_FEE) -> Trade:
    """The trade of one book fill: at the maker's price, leg 0 of 1, with the fill id of
    :func:`compute_book_fill_id`; ``premium`` is ``price × quantity / contract_unit``; the fees
    are each side's :func:`compute_fee` of it (the book computes them inline).

    The same object as ``Trade(...)`` with these values, built by setting its slots directly: the
    frozen dataclass ``__init__`` (one ``object.__setattr__`` per field) costs twice as much, and
    the book builds one trade per fill."""
    taker_order, maker_order = taker.message, maker.message
    trade = _new_object(Trade)
    _set_fill_id(trade, compute_book_fill_id(taker.digest, maker.digest, maker_filled_before))
    _set_leg(trade, 0)
    _set_legs(trade, 1)
    _set_series_id(trade, taker_order.series_id)
    _set_price(trade, maker_order.price)
    _set_quantity(trade, quantity)
    _set_premium(trade, premium)
    _set_maker(trade, maker_order.account)
    _set_taker(trade, taker_order.account)
    _set_maker_side(trade, maker_order.side)
    _set_taker_side(trade, taker_order.side)
    _set_maker_auth(trade, maker)
    _set_taker_auth(trade, taker)
    _set_time(trade, time)
    _set_maker_fee(trade, maker_fee)
    _set_taker_fee(trade, taker_fee)
    return trade


def compute_trade_flows(trades: Sequence[Trade], account: Address
                        ) -> tuple[tuple[PositionDelta, ...], int]:
    """``account``'s position deltas and net cash (quote base units, ``< 0`` paid) over ``trades``,
    fees included."""
    deltas, cash = [], 0
    for trade in trades:
        if account not in (trade.maker, trade.taker):
            continue
        is_maker = account == trade.maker
        side = trade.maker_side if is_maker else trade.taker_side
        sign = 1 if side is Side.BUY else -1
        deltas.append(PositionDelta(trade.series_id, Quantity(sign * trade.quantity)))
        cash -= sign * trade.premium + (trade.maker_fee if is_maker else trade.taker_fee)
    return tuple(deltas), cash


def get_buyer(trade: Trade) -> Address:
    """The account that pays the premium and goes long."""
    return trade.maker if trade.maker_side is Side.BUY else trade.taker


def get_seller(trade: Trade) -> Address:
    """The account that receives the premium and goes short."""
    return trade.taker if trade.maker_side is Side.BUY else trade.maker


def get_signer_field(message: Order | Quote | Accept) -> Address:
    """The account a message names as its signer (``account``, ``maker`` or ``taker``)."""
    if isinstance(message, Order):
        return message.account
    return message.maker if isinstance(message, Quote) else message.taker


def is_trade_authorised(domain: Domain, trade: Trade) -> bool:
    """Whether both signed messages of ``trade`` name its accounts, hash to their digests and
    carry valid signatures of those accounts."""
    for auth, account in ((trade.maker_auth, trade.maker), (trade.taker_auth, trade.taker)):
        if get_signer_field(auth.message) != account:
            return False
        if compute_message_digest(domain, auth.message) != auth.digest:
            return False
        try:
            verify_digest(auth.digest, auth.signature, account)
        except ValueError:
            return False
    return True
