"""The market scenario of the demo: an ETH expiry listed with a cap and a strike grid, six funded
accounts, an iron-condor RFQ quoted by three simulated makers and filled atomically, then a few
order-book trades (a partial fill and a cancel), with every account's exact max-loss requirement
before and after and the Greeks of the taker's position.

Every message is signed by the account it speaks for and goes through the same rules as in
production (:mod:`clearhouse.market.rfq`, :mod:`clearhouse.market.book`) on an in-memory ledger
(:class:`~clearhouse.market.collateral.Portfolios`). Makers price legs with Black-76 from an SVI
smile (each with its own seeded view of the vol level) and quote with different spreads.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from eth_account.signers.local import LocalAccount

from clearhouse.errors import ConfigError
from clearhouse.market.book import Book, OrderResult, process_cancel, process_order
from clearhouse.market.collateral import (
    Listing,
    Portfolios,
    compute_series_portfolio,
    get_balance,
    get_positions,
    get_requirement,
    process_deposit,
    process_list_series,
)
from clearhouse.market.instruments import (
    Expiry,
    ListingRules,
    Market,
    OptionKind,
    Pair,
    Series,
    compute_expiry_timestamp,
    compute_series_id,
    compute_strike_grid,
    format_expiry_code,
    format_series_name,
    process_list_expiry,
)
from clearhouse.market.portfolio import PortfolioGreeks, compute_legs, compute_portfolio_greeks
from clearhouse.market.pricing import compute_black76_price, compute_year_fraction
from clearhouse.market.rfq import (
    QuoteStatus,
    RfqDesk,
    compute_leg_fills,
    compute_leg_flows,
    process_accept,
    process_quote,
    process_register_maker,
    process_rfq,
)
from clearhouse.market.smile import SviParams, compute_svi_implied_vol
from clearhouse.market.trades import Trade
from clearhouse.messages import (
    RFQ,
    Accept,
    Cancel,
    Domain,
    Leg,
    Message,
    NonceBitmap,
    Order,
    Quote,
    QuoteLeg,
    Side,
    TimeInForce,
    sign,
)
from clearhouse.risk.maxloss import compute_naive_requirement, compute_payoff_scaled, get_expiry_key
from clearhouse.types import Address, Amount, Digest, Nonce, Price, Quantity, SeriesId, Timestamp

__all__ = ["MakerStyle", "run_market_scenario"]

USDC = 10**6
"""Base units per whole quote token (6 decimals)."""
PAIR = Pair("ETH", "USDC", 6)
SPOT = 3_000.0
"""The simulated ETH price (USDC); the forward of a one-month expiry at zero rates."""
CAP = Price(15_000 * USDC)
"""The expiry's settlement cap: 5× spot bounds every loss (a naked short call posts cap − K)."""
RULES = ListingRules(strike_step=Price(100 * USDC), premium_tick=Price(10_000), contract_unit=100)
"""Strikes every 100 USDC, premiums on a 0.01 USDC tick, 1/100 contract granularity."""
SMILE = SviParams(a=0.02, b=0.06, rho=-0.35, m=0.02, sigma=0.15)
"""The reference raw-SVI slice (total variance at log-moneyness ``ln(K/F)``): ~70 % at the money
for a month, skewed to the downside like ETH's."""
CONDOR = ((2600, OptionKind.PUT, True), (2800, OptionKind.PUT, False),
          (3200, OptionKind.CALL, False), (3400, OptionKind.CALL, True))
"""The structure asked for: (strike USDC, kind, bought by the structure's buyer). Bought by the
taker, it is a short iron condor (a credit)."""
CONDOR_SIZE = Quantity(10 * RULES.contract_unit)
"""Ten condors."""


@dataclass(frozen=True, slots=True)
class MakerStyle:
    """How one simulated maker quotes."""

    name: str
    """Label in the log."""
    spread: float
    """Relative edge on each leg's fair value: sells at ``fair·(1+spread)``, buys at ``fair·(1-spread)``."""
    vol_shift: float
    """The maker's view of the smile level, in vol points added to the reference smile."""


@dataclass
class _Run:
    """The scenario's state: one ledger, one book and one RFQ desk sharing a nonce space."""

    domain: Domain
    now: Timestamp
    log: Callable[[str], None]
    keys: dict[Address, bytes]
    names: dict[Address, str]
    listings: dict[SeriesId, Listing]
    portfolios: Portfolios
    book: Book
    desk: RfqDesk
    expiry: Timestamp
    nonce: int = 0

    def next_nonce(self) -> Nonce:
        self.nonce += 1
        return Nonce(self.nonce)

    def sign(self, message: Message, account: Address) -> bytes:
        return sign(self.domain, message, self.keys[account])


def compute_scenario_expiry(now: Timestamp) -> Timestamp:
    """The first 08:00 UTC at least 28 days after ``now``: a one-month expiry."""
    day = datetime.fromtimestamp(now, UTC) + timedelta(days=29)
    return compute_expiry_timestamp(day.year, day.month, day.day)


def _series(expiry: Timestamp, strike_usdc: int, kind: OptionKind) -> Series:
    return Series(PAIR, expiry, Price(strike_usdc * USDC), kind)


def _fair_price(series: Series, now: Timestamp, vol_shift: float) -> float:
    """Black-76 value (USDC per contract) from the reference smile shifted by ``vol_shift``."""
    years = compute_year_fraction(now, series.expiry)
    strike = series.strike / USDC
    vol = float(compute_svi_implied_vol(SMILE, math.log(strike / SPOT), years))
    return float(compute_black76_price(SPOT, strike, years, vol + vol_shift, 0.0,
                                       series.kind is OptionKind.CALL))


def _on_tick(usdc: float, up: bool) -> Price:
    """A premium in base units on the tick, rounded in the quoting maker's favour (≥ one tick)."""
    ticks = usdc * USDC / RULES.premium_tick
    whole = int(-(-ticks // 1)) if up else int(ticks // 1)
    return Price(max(whole, 1) * RULES.premium_tick)


def _list_market(now: Timestamp) -> tuple[dict[SeriesId, Listing], Timestamp]:
    expiry = compute_scenario_expiry(now)
    market = process_list_expiry(Market(PAIR, RULES), Expiry(PAIR, expiry, CAP))
    listings: dict[SeriesId, Listing] = {}
    for strike in compute_strike_grid(RULES, market.expiries[0], Price(2_400 * USDC),
                                      Price(3_600 * USDC)):
        for kind in OptionKind:
            process_list_series(listings, market, Series(PAIR, expiry, strike, kind))
    return listings, expiry


def _requirements(run: _Run) -> dict[Address, Amount]:
    return {a: get_requirement(run.portfolios, a) for a in run.names}


# --- the RFQ -----------------------------------------------------------------------------------


def _quote(run: _Run, maker: Address, style: MakerStyle, rfq: RFQ, rfq_id: Digest) -> Quote:
    """The maker's quote: it takes the structure's other side (sells it: it sells the legs the
    structure's buyer buys), pricing each leg from its smile with its spread."""
    legs = []
    for leg in rfq.legs:
        series = run.listings[leg.series_id].series
        fair = _fair_price(series, run.now, style.vol_shift)
        maker_sells = leg.is_buy  # the maker sells the structure
        price = _on_tick(fair * (1 + style.spread) if maker_sells else fair * (1 - style.spread),
                         up=maker_sells)
        legs.append(QuoteLeg(leg.series_id, leg.ratio, leg.is_buy, price))
    return Quote(maker, rfq.taker, rfq_id, tuple(legs), Side.SELL, rfq.size, run.next_nonce(),
                 Timestamp(run.now + 20))


def _run_rfq(run: _Run, taker: Address, makers: Sequence[tuple[Address, MakerStyle]]
             ) -> tuple[tuple[Trade, ...], dict[Address, int]]:
    """RFQ → one signed quote per maker → the taker's signed accept of the best → atomic fill."""
    legs = tuple(Leg(compute_series_id(_series(run.expiry, k, kind)), 1, bought)
                 for k, kind, bought in CONDOR)
    rfq = RFQ(taker, legs, CONDOR_SIZE, Side.BUY, run.next_nonce(), Timestamp(run.now + 60))
    rfq_id, routed = process_rfq(run.desk, rfq, run.sign(rfq, taker), run.now)
    names = " ".join(format_series_name(run.listings[leg.series_id].series)
                     + ("(+)" if leg.is_buy else "(-)") for leg in legs)
    run.log(f"RFQ 0x{rfq_id.hex()[:12]}… by {run.names[taker]}: buy {CONDOR_SIZE // 100} × "
            f"[{names}] (a short iron condor), routed to {len(routed)} makers")
    offers: list[tuple[int, Digest, Address]] = []
    for maker, style in makers:
        quote = _quote(run, maker, style, rfq, rfq_id)
        quote_id = process_quote(run.desk, quote, run.sign(quote, maker), run.now)
        _, taker_cash = compute_leg_flows(compute_leg_fills(run.listings, quote, rfq.size), False, run.desk.fees)
        offers.append((taker_cash, quote_id, maker))
        prices = ", ".join(f"{leg.price / USDC:.2f}" for leg in quote.legs)
        run.log(f"  quote from {run.names[maker]} ({style.name}, spread {style.spread:.0%}): "
                f"legs [{prices}] USDC → taker receives {taker_cash / USDC:,.2f} USDC")
    credit, best_id, best_maker = max(offers, key=lambda o: o[0])
    accept = Accept(taker, best_id, rfq.size, run.next_nonce(), Timestamp(run.now + 10))
    fill = process_accept(run.desk, accept, run.sign(accept, taker), run.now)
    run.log(f"  {run.names[taker]} accepts {run.names[best_maker]}'s quote (best credit "
            f"{credit / USDC:,.2f} USDC): {len(fill.trades)} legs filled atomically, fill "
            f"0x{fill.fill_id.hex()[:12]}…")
    return fill.trades, {maker: cash for cash, _, maker in offers}


# --- the book ----------------------------------------------------------------------------------


def _order(run: _Run, account: Address, strike: int, kind: OptionKind, side: Side,
           price: Price, contracts: int, tif: TimeInForce = TimeInForce.GTC) -> Order:
    return Order(account, compute_series_id(_series(run.expiry, strike, kind)), side, price,
                 Quantity(contracts * RULES.contract_unit), tif, run.next_nonce(),
                 Timestamp(run.now + 3_600))


def _submit(run: _Run, order: Order) -> OrderResult:
    result = process_order(run.book, order, run.sign(order, order.account), run.now)
    name = format_series_name(run.listings[order.series_id].series)
    verb = "buys" if order.side is Side.BUY else "sells"
    filled = sum(t.quantity for t in result.trades) // RULES.contract_unit
    state = f"rests {result.resting // RULES.contract_unit}" if result.closed is None \
        else f"closed ({result.closed})"
    run.log(f"  {run.names[order.account]} {verb} {order.quantity // RULES.contract_unit} "
            f"{name} @ {order.price / USDC:.2f} {order.time_in_force.name}: {filled} filled, "
            f"{state}")
    return result


def _run_book(run: _Run, accounts: Sequence[Address]) -> list[Trade]:
    """A resting offer partly lifted then cancelled, a bid hit in full, a post-only offer lifted."""
    a, b, c, d = accounts
    call = _fair_price(_series(run.expiry, 3000, OptionKind.CALL), run.now, 0.0)
    put = _fair_price(_series(run.expiry, 2800, OptionKind.PUT), run.now, 0.0)
    trades: list[Trade] = []
    offer = _order(run, a, 3000, OptionKind.CALL, Side.SELL, _on_tick(call * 1.02, True), 5)
    offered = _submit(run, offer)
    bid = _order(run, b, 2800, OptionKind.PUT, Side.BUY, _on_tick(put * 0.98, False), 3)
    _submit(run, bid)
    lifted = _submit(run, _order(run, c, 3000, OptionKind.CALL, Side.BUY, offer.price, 2,
                                 TimeInForce.IOC))  # a partial fill of the offer: 2 of 5
    trades += lifted.trades
    cancel = Cancel(a, offered.digest, run.next_nonce(), Timestamp(run.now + 60))
    removed = process_cancel(run.book, cancel, run.sign(cancel, a), run.now)
    run.log(f"  {run.names[a]} cancels the rest of its offer (signed cancel by hash): "
            f"{run.book.filled.get(offered.digest, 0) // RULES.contract_unit} of 5 had filled, "
            f"{len(removed)} order removed")
    trades += _submit(run, _order(run, d, 2800, OptionKind.PUT, Side.SELL, bid.price, 3,
                                  TimeInForce.FOK)).trades
    post = _order(run, b, 3200, OptionKind.CALL, Side.SELL,
                  _on_tick(_fair_price(_series(run.expiry, 3200, OptionKind.CALL), run.now, 0.0)
                           * 1.03, True), 1, TimeInForce.POST_ONLY)
    _submit(run, post)
    trades += _submit(run, _order(run, c, 3200, OptionKind.CALL, Side.BUY, post.price, 1)).trades
    return trades


# --- reporting ---------------------------------------------------------------------------------


def _log_requirements(run: _Run, stages: Sequence[dict[Address, Amount]]) -> None:
    """Each account's exact requirement at each stage, next to the per-leg margin a venue without
    portfolio margin would ask for its final positions, and its balance."""
    run.log("collateral requirement = exact max loss over settlement in [0, cap] (USDC): "
            "before / after the RFQ / after the book")
    for account, name in run.names.items():
        held = {run.listings[s].series: q
                for s, q in run.portfolios.positions.get(account, {}).items()}
        naive = compute_naive_requirement(held, {get_expiry_key(s): CAP for s in held},
                                          RULES.contract_unit)
        steps = " / ".join(f"{stage[account] / USDC:>9,.2f}" for stage in stages)
        run.log(f"  {name:<6} {steps}   per-leg margin {naive / USDC:>10,.2f}   balance "
                f"{get_balance(run.portfolios, account) / USDC:>10,.2f}")


def _taker_greeks(run: _Run, taker: Address) -> PortfolioGreeks:
    held = {run.listings[s].series: q for s, q in run.portfolios.positions.get(taker, {}).items()}
    years = compute_year_fraction(run.now, run.expiry)
    vols = {s: float(compute_svi_implied_vol(SMILE, math.log(s.strike / USDC / SPOT),
                                             years)) for s in held}
    legs = compute_legs(held, run.now, {run.expiry: SPOT}, vols, RULES.contract_unit)
    return compute_portfolio_greeks(legs, SPOT)


MAKERS = (MakerStyle("tight", 0.02, 0.0), MakerStyle("mid", 0.04, 0.0),
          MakerStyle("wide", 0.07, 0.0))
"""Three simulated makers: the same smile (each shifted by a seeded view), different spreads."""
NAMES = ("alice", "bob", "carol", "dave", "erin", "frank")
"""The six accounts' roles: alice takes the RFQ, bob, carol and dave make it, erin and frank
trade on the book (with carol and alice)."""
DEPOSITS = (50_000, 250_000, 250_000, 250_000, 60_000, 60_000)
"""Whole USDC credited to each account in the ledger, in ``NAMES`` order."""


def run_market_scenario(domain: Domain, accounts: Sequence[LocalAccount], now: Timestamp,
                        log: Callable[[str], None], seed: int = 3) -> dict[str, Any]:
    """Run the scenario with the first six ``accounts`` (alice takes the RFQ, bob, carol and
    dave make it; erin, frank, carol and alice trade on the book).

    Returns the counts ``rfqs``, ``rfq_quotes``, ``rfq_fills``, ``book_trades`` (measured from the
    desk and the book), each account's requirement before, after the RFQ and after the book (quote
    base units), the taker's Greeks after the RFQ, and every :class:`Trade` (key ``trades``, RFQ
    legs first) for settlement batching. Deterministic for a given ``seed`` and ``now``."""
    if len(accounts) < len(NAMES):
        raise ConfigError(f"the market scenario needs {len(NAMES)} accounts, got {len(accounts)}",
                          field="accounts")
    rng = random.Random(seed)
    listings, expiry = _list_market(now)
    portfolios = Portfolios(listings, RULES.contract_unit)
    nonces: dict[Address, NonceBitmap] = {}
    addresses = [Address(a.address) for a in accounts[:len(NAMES)]]
    run = _Run(domain, now, log, {Address(a.address): bytes(a.key) for a in accounts[:len(NAMES)]},
               dict(zip(addresses, NAMES, strict=True)), listings, portfolios,
               Book(domain, listings, portfolios, nonces), RfqDesk(domain, listings, portfolios, nonces),
               expiry)
    log(f"listed ETH expiry {format_expiry_code(expiry)} "
        f"(cap {CAP / USDC:,.0f} USDC): {len(listings)} series, strikes 2,400-3,600 every 100")
    for account, usdc in zip(addresses, DEPOSITS, strict=True):
        process_deposit(portfolios, account, Amount(usdc * USDC))
    log("funded " + ", ".join(f"{n} {d:,}" for n, d in zip(NAMES, DEPOSITS, strict=True))
        + " USDC in the ledger")
    before = _requirements(run)
    taker, makers = addresses[0], addresses[1:4]
    styles = [MakerStyle(s.name, s.spread, round(rng.uniform(-0.01, 0.01), 4)) for s in MAKERS]
    for maker in makers:
        process_register_maker(run.desk, maker)
    rfq_trades, credits = _run_rfq(run, taker, list(zip(makers, styles, strict=True)))
    after_rfq = _requirements(run)
    greeks = _taker_greeks(run, taker)
    log(f"{run.names[taker]}'s position (Black-76 on the smile, spot {SPOT:,.0f}): value "
        f"{greeks.value:,.2f}, delta {greeks.delta:+.3f}, gamma {greeks.gamma:+.6f}, vega "
        f"{greeks.vega / 100:+.2f}/vol pt, theta {greeks.theta:+.2f}/day")
    log("order book:")
    book_trades = _run_book(run, [addresses[4], addresses[5], addresses[2], addresses[0]])
    after = _requirements(run)
    _log_requirements(run, (before, after_rfq, after))
    filled = sum(s is QuoteStatus.FILLED for s in run.desk.quote_status.values())
    return {"rfqs": len(run.desk.rfqs), "rfq_quotes": len(run.desk.quotes), "rfq_fills": filled,
            "book_trades": len(book_trades), "trades": [*rfq_trades, *book_trades],
            "requirements": {run.names[a]: {"before": before[a], "after_rfq": after_rfq[a],
                                            "after": after[a]} for a in addresses},
            "rfq_credits": {run.names[m]: c for m, c in credits.items()},
            "taker_greeks": {"value": greeks.value, "delta": greeks.delta, "gamma": greeks.gamma,
                             "vega": greeks.vega, "theta": greeks.theta},
            "pnl_at": lambda settlement: _pnl_at(run, dict(zip(addresses, DEPOSITS, strict=True)),
                                                 Price(settlement))}


def _pnl_at(run: _Run, deposits: dict[Address, int], settlement: Price) -> dict[str, int]:
    """Each account's P&L (quote base units) if the expiry settled at ``settlement``: premiums
    received or paid so far plus the positions' payoff (exact: the payoff is scaled, then divided
    by the contract unit)."""
    out = {}
    for account, usdc in deposits.items():
        positions = compute_series_portfolio(run.listings, get_positions(run.portfolios, account))
        payoff = compute_payoff_scaled(positions, settlement) // RULES.contract_unit
        out[run.names[account]] = get_balance(run.portfolios, account) - usdc * USDC + payoff
    return out
