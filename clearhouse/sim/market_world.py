"""A small listed market, funded accounts and signing helpers for the book and RFQ tests.

Shared by the tests and the benchmarks.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from eth_account import Account

from clearhouse.market.book import Book
from clearhouse.market.collateral import Listing, Portfolios, process_deposit, process_list_series
from clearhouse.market.instruments import (
    Expiry,
    ListingRules,
    Market,
    OptionKind,
    Pair,
    Series,
    compute_expiry_timestamp,
    process_list_expiry,
)
from clearhouse.market.rfq import RfqDesk
from clearhouse.messages import (
    RFQ,
    Accept,
    Cancel,
    Domain,
    Leg,
    NonceBitmap,
    Order,
    Quote,
    QuoteLeg,
    Side,
    TimeInForce,
    sign,
)
from clearhouse.types import (
    Address,
    Amount,
    ChainId,
    Digest,
    Nonce,
    Price,
    Quantity,
    SeriesId,
    Timestamp,
)

USDC = 10**6
"""One whole quote-token unit in base units."""
UNIT = 100
"""``contract_unit``: 100 quantity units are one contract."""
NOW = compute_expiry_timestamp(2027, 1, 4)
"""The tests' start time (weeks before the first expiry)."""
EXPIRY = compute_expiry_timestamp(2027, 1, 29)
LATER = compute_expiry_timestamp(2027, 3, 26)
CAP = Price(10_000 * USDC)
DOMAIN = Domain("clearhouse", "1", ChainId(31337), Address("0x" + "c0" * 20))
PAIR = Pair("ETH", "USDC", 6)
RULES = ListingRules(strike_step=Price(100 * USDC), premium_tick=Price(10_000), contract_unit=UNIT)
KEYS = [bytes([i + 1]) * 32 for i in range(6)]
ADDRESSES = [Address(Account.from_key(k).address) for k in KEYS]
KEY_OF = dict(zip(ADDRESSES, KEYS, strict=True))


def px(usdc: float) -> Price:
    """A premium in whole USDC as base units (on the 0.01 tick)."""
    return Price(round(usdc * 100) * 10_000)


def build_listings() -> tuple[dict[SeriesId, Listing], list[SeriesId]]:
    """ETH 3000 C/P and 3200 C on ``EXPIRY``, ETH 3000 C on ``LATER``."""
    market = Market(PAIR, RULES)
    market = process_list_expiry(market, Expiry(PAIR, EXPIRY, CAP))
    market = process_list_expiry(market, Expiry(PAIR, LATER, CAP))
    listings: dict[SeriesId, Listing] = {}
    ids = [process_list_series(listings, market, Series(PAIR, ts, Price(k * USDC), kind))
           for ts, k, kind in ((EXPIRY, 3000, OptionKind.CALL), (EXPIRY, 3000, OptionKind.PUT),
                               (EXPIRY, 3200, OptionKind.CALL), (LATER, 3000, OptionKind.CALL))]
    return listings, ids


@dataclass
class World:
    """A book and an RFQ desk sharing one ledger and one nonce space."""

    listings: dict[SeriesId, Listing]
    series: list[SeriesId]
    portfolios: Portfolios
    book: Book
    desk: RfqDesk
    deposits: dict[Address, int] = field(default_factory=dict)
    next_nonce: int = 1


def make_world(deposit_usdc: int = 1_000_000, accounts: int = len(ADDRESSES)) -> World:
    """Every account funded with ``deposit_usdc``."""
    listings, ids = build_listings()
    portfolios = Portfolios(listings, UNIT)
    nonces: dict[Address, NonceBitmap] = {}
    world = World(listings, ids, portfolios, Book(DOMAIN, listings, portfolios, nonces),
                  RfqDesk(DOMAIN, listings, portfolios, nonces))
    for account in ADDRESSES[:accounts]:
        fund(world, account, deposit_usdc * USDC)
    return world


def fund(world: World, account: Address, amount: int) -> None:
    process_deposit(world.portfolios, account, Amount(amount))
    world.deposits[account] = world.deposits.get(account, 0) + amount


def nonce(world: World) -> Nonce:
    world.next_nonce += 1
    return Nonce(world.next_nonce)


def order(world: World, account: Address, side: Side, price: Price, quantity: int,
          tif: TimeInForce = TimeInForce.GTC, *, series: int = 0, expiry: int = NOW + 3600,
          nonce_: int | None = None) -> Order:
    return Order(account, world.series[series], side, price, Quantity(quantity), tif,
                 Nonce(nonce(world) if nonce_ is None else nonce_), Timestamp(expiry))


def signed(message: Order | RFQ | Quote | Accept | Cancel, account: Address) -> bytes:
    """``account``'s signature over ``message``."""
    return sign(DOMAIN, message, KEY_OF[account])


def cancel(account: Address, order_hash: Digest | None = None, nonce_: int = 0,
           expiry: int = NOW + 3600) -> Cancel:
    return Cancel(account, order_hash or Digest(bytes(32)), Nonce(nonce_), Timestamp(expiry))


def rfq(world: World, taker: Address, legs: list[tuple[int, int, bool]], size: int,
        side: Side = Side.BUY, expiry: int = NOW + 60) -> RFQ:
    """``legs`` as (series index, ratio, is_buy)."""
    return RFQ(taker, tuple(Leg(world.series[s], r, b) for s, r, b in legs), Quantity(size), side,
               nonce(world), Timestamp(expiry))


def quote(world: World, maker: Address, request: RFQ, rfq_id: Digest, prices: list[Price],
          side: Side = Side.SELL, size: int | None = None, expiry: int = NOW + 10) -> Quote:
    legs = tuple(QuoteLeg(leg.series_id, leg.ratio, leg.is_buy, p)
                 for leg, p in zip(request.legs, prices, strict=True))
    return Quote(maker, request.taker, rfq_id, legs, side, Quantity(size or request.size),
                 nonce(world), Timestamp(expiry))


def accept(world: World, taker: Address, quote_id: Digest, size: int, expiry: int = NOW + 10
           ) -> Accept:
    return Accept(taker, quote_id, Quantity(size), nonce(world), Timestamp(expiry))
