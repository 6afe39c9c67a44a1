"""The order book (and the RFQ desk on the same ledger) under random signed orders,
re-submissions, cancels, block trades, fades, withdrawals and time.

Four accounts with little collateral (so the max-loss check binds) trade two series on the book
and multi-leg structures over all four series by RFQ. After every step: no order hash is filled
beyond its signed quantity or after its expiry or cancel; the book is not crossed; every trade
carries signed messages that verify; an RFQ fill has every leg; positions are conserved and cash
is, less the fees charged (the fee schedule changes mid-stream, as governance changes it); every
account covers its requirement, fees included; and a refused action changed nothing (a fade
changes only the fade log).
"""

from __future__ import annotations

from hypothesis import event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from clearhouse.errors import ClearhouseError, QuoteFaded
from clearhouse.market.book import (
    get_best_ask,
    get_best_bid,
    get_level_quantity,
    get_remaining,
    process_cancel,
    process_order,
    process_tick,
)
from clearhouse.market.collateral import get_balance, get_requirement, process_withdrawal
from clearhouse.market.rfq import (
    process_accept,
    process_quote,
    process_quote_cancel,
    process_register_maker,
    process_rfq,
)
from clearhouse.market.trades import (
    FeeSchedule,
    Trade,
    compute_fee,
    is_trade_authorised,
    verify_signed,
)
from clearhouse.messages import RFQ, Accept, Leg, Order, Quote, QuoteLeg, Side, TimeInForce
from clearhouse.sim.market_world import ADDRESSES, DOMAIN, NOW, USDC, cancel, make_world, px, signed
from clearhouse.types import Address, Amount, Digest, Nonce, Quantity, Timestamp

ACCOUNTS = ADDRESSES[:4]
SERIES = 2


class BookMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.world = make_world(deposit_usdc=25_000, accounts=len(ACCOUNTS))
        self.now: int = NOW
        self.withdrawn = 0
        self.orders: dict[Digest, Order] = {}
        self.signatures: dict[Digest, bytes] = {}
        self.trades: list[Trade] = []
        self.cancelled_hashes: set[Digest] = set()
        self.cancelled_nonces: set[tuple[Address, int]] = set()
        self.block_trades: list[Trade] = []
        self.rfq_nonce = 10**9
        for account in ACCOUNTS:
            process_register_maker(self.world.desk, account)

    # --- helpers -----------------------------------------------------------------------------

    def snapshot(self) -> tuple[object, ...]:
        book, portfolios = self.world.book, self.world.portfolios
        return (dict(book.resting), dict(book.filled), dict(book.closed), set(book.precancelled),
                {a: dict(b) for a, b in book.nonces.items()}, dict(portfolios.balances),
                {a: dict(p) for a, p in portfolios.positions.items()})

    def is_dead(self, digest: Digest) -> bool:
        o = self.orders[digest]
        return digest in self.cancelled_hashes or (o.account, o.nonce) in self.cancelled_nonces

    def submit(self, o: Order, signature: bytes) -> None:
        digest = verify_signed(DOMAIN, o, signature, o.account).digest
        self.orders[digest], self.signatures[digest] = o, signature
        before = self.snapshot()
        try:
            result = process_order(self.world.book, o, signature, Timestamp(self.now))
        except ClearhouseError as error:
            assert self.snapshot() == before, "a refused order changed state"
            event(f"order refused: {error.code}")
            return
        event(f"order accepted: {len(result.trades)} trades, closed={result.closed}")
        for removal in result.removed:
            event(f"resting order removed: {removal.reason}")
        for trade in result.trades:
            self.check_new_trade(trade)
        self.trades.extend(result.trades)

    def check_new_trade(self, trade: Trade) -> None:
        assert is_trade_authorised(DOMAIN, trade)
        assert trade.maker != trade.taker
        for auth in (trade.maker_auth, trade.taker_auth):
            assert isinstance(auth.message, Order)
            assert self.now <= auth.message.expiry, "filled after expiry"
            assert not self.is_dead(auth.digest), "filled after cancel"
        maker, taker = trade.maker_auth.message, trade.taker_auth.message
        assert isinstance(maker, Order) and isinstance(taker, Order)
        assert trade.price == maker.price
        assert trade.price <= taker.price if taker.side is Side.BUY else trade.price >= taker.price
        fees = self.world.book.fees
        assert (trade.maker_fee, trade.taker_fee) == (compute_fee(trade.premium, fees.maker_bps),
                                                      compute_fee(trade.premium, fees.taker_bps))

    # --- rules -------------------------------------------------------------------------------

    @rule(account=st.sampled_from(ACCOUNTS), series=st.integers(0, SERIES - 1),
          side=st.sampled_from([Side.BUY, Side.SELL]), price=st.integers(98, 102),
          lots=st.integers(1, 6), tif=st.sampled_from(list(TimeInForce)),
          ttl=st.integers(0, 120), nonce=st.integers(0, 40))
    def new_order(self, account: Address, series: int, side: Side, price: int, lots: int,
                  tif: TimeInForce, ttl: int, nonce: int) -> None:
        o = Order(account, self.world.series[series], side, px(price), Quantity(lots * 50), tif,
                  Nonce(nonce), Timestamp(self.now + ttl))
        self.submit(o, signed(o, account))

    @precondition(lambda self: self.world.book.resting)
    @rule(account=st.sampled_from(ACCOUNTS), data=st.data(), lots=st.integers(1, 8),
          tif=st.sampled_from(list(TimeInForce)), nonce=st.integers(0, 40))
    def take(self, account: Address, data: st.DataObject, lots: int, tif: TimeInForce,
             nonce: int) -> None:
        """An order priced at a resting order's price, on the other side (so it crosses)."""
        digest = data.draw(st.sampled_from(sorted(self.world.book.resting)))
        maker = self.orders[digest]
        side = Side.BUY if maker.side is Side.SELL else Side.SELL
        o = Order(account, maker.series_id, side, maker.price, Quantity(lots * 50), tif,
                  Nonce(nonce), Timestamp(self.now + 60))
        self.submit(o, signed(o, account))

    def next_nonce(self) -> Nonce:
        self.rfq_nonce += 1
        return Nonce(self.rfq_nonce)

    def ledger(self) -> tuple[object, ...]:
        portfolios = self.world.portfolios
        return (dict(portfolios.balances), {a: dict(p) for a, p in portfolios.positions.items()})

    @rule(taker=st.sampled_from(ACCOUNTS), maker=st.sampled_from(ACCOUNTS),
          legs=st.lists(st.tuples(st.integers(0, 3), st.integers(1, 3), st.booleans()),
                        min_size=1, max_size=3, unique_by=lambda leg: leg[0]),
          rfq_side=st.sampled_from(list(Side)), maker_buys=st.booleans(),
          prices=st.lists(st.integers(1, 300), min_size=3, max_size=3),
          lots=st.integers(1, 4), accept_lots=st.integers(1, 5),
          fade=st.sampled_from(["none", "none", "cancel", "withdraw"]))
    def block_trade(self, taker: Address, maker: Address, legs: list[tuple[int, int, bool]],
                    rfq_side: Side, maker_buys: bool, prices: list[int], lots: int,
                    accept_lots: int, fade: str) -> None:
        """RFQ -> quote -> (maybe cancel or withdraw) -> accept, all signed, on the shared ledger."""
        desk, now = self.world.desk, Timestamp(self.now)
        series = self.world.series
        r = RFQ(taker, tuple(Leg(series[i], ratio, buy) for i, ratio, buy in legs),
                Quantity(lots * 50), rfq_side, self.next_nonce(), Timestamp(self.now + 30))
        q = Quote(maker, taker, verify_signed(DOMAIN, r, signed(r, taker), taker).digest,
                  tuple(QuoteLeg(leg.series_id, leg.ratio, leg.is_buy, px(p))
                        for leg, p in zip(r.legs, prices, strict=False)),
                  Side.BUY if maker_buys else Side.SELL, r.size, self.next_nonce(),
                  Timestamp(self.now + 10))
        try:
            process_rfq(desk, r, signed(r, taker), now)
            quote_id = process_quote(desk, q, signed(q, maker), now)
        except ClearhouseError as error:
            event(f"rfq/quote refused: {error.code}")
            return
        if fade == "cancel":
            c = cancel(maker, quote_id, nonce_=self.next_nonce())
            process_quote_cancel(desk, c, signed(c, maker), now)
        elif fade == "withdraw":
            self.withdraw(maker, 24_000)
        self.accept(Accept(taker, quote_id, Quantity(accept_lots * 50), self.next_nonce(),
                           Timestamp(self.now + 10)), len(legs))

    def accept(self, a: Accept, legs: int) -> None:
        desk, before, fades = self.world.desk, self.ledger(), len(self.world.desk.fades)
        try:
            fill = process_accept(desk, a, signed(a, a.taker), Timestamp(self.now))
        except QuoteFaded:
            assert self.ledger() == before and len(desk.fades) == fades + 1
            event(f"fade: {desk.fades[-1].reason}")
            return
        except ClearhouseError as error:
            assert self.ledger() == before and len(desk.fades) == fades
            event(f"accept refused: {error.code}")
            return
        event("block trade filled")
        assert len(fill.trades) == legs and {t.fill_id for t in fill.trades} == {fill.fill_id}
        assert [t.leg for t in fill.trades] == list(range(legs))
        for trade in fill.trades:
            assert is_trade_authorised(DOMAIN, trade) and trade.maker != trade.taker
        premium, fees = sum(t.premium for t in fill.trades), desk.fees
        assert [(t.maker_fee, t.taker_fee) for t in fill.trades] == [
            (compute_fee(premium, fees.maker_bps), compute_fee(premium, fees.taker_bps))] + [(0, 0)] * (legs - 1)
        self.block_trades.extend(fill.trades)

    @precondition(lambda self: self.orders)
    @rule(data=st.data())
    def resubmit(self, data: st.DataObject) -> None:
        digest = data.draw(st.sampled_from(sorted(self.orders)))
        self.submit(self.orders[digest], self.signatures[digest])

    @precondition(lambda self: self.orders)
    @rule(data=st.data(), by_owner=st.booleans())
    def cancel_by_hash(self, data: st.DataObject, by_owner: bool) -> None:
        digest = data.draw(st.sampled_from(sorted(self.orders)))
        owner = self.orders[digest].account
        account = owner if by_owner else ACCOUNTS[(ACCOUNTS.index(owner) + 1) % len(ACCOUNTS)]
        c = cancel(account, digest, nonce_=10_000 + len(self.trades), expiry=self.now)
        try:
            process_cancel(self.world.book, c, signed(c, account), Timestamp(self.now))
        except ClearhouseError:
            assert digest in self.world.book.resting and not by_owner
            return
        self.cancelled_nonces.add((account, c.nonce))
        if by_owner:
            self.cancelled_hashes.add(digest)

    @rule(account=st.sampled_from(ACCOUNTS), nonce=st.integers(0, 40))
    def cancel_by_nonce(self, account: Address, nonce: int) -> None:
        c = cancel(account, nonce_=nonce, expiry=self.now + 5)
        process_cancel(self.world.book, c, signed(c, account), Timestamp(self.now))
        self.cancelled_nonces.add((account, nonce))

    @rule(account=st.sampled_from(ACCOUNTS), usdc=st.integers(1, 20_000))
    def withdraw(self, account: Address, usdc: int) -> None:
        before = self.snapshot()
        try:
            process_withdrawal(self.world.portfolios, account, Amount(usdc * USDC))
        except ClearhouseError:
            assert self.snapshot() == before
            return
        self.withdrawn += usdc * USDC

    @rule(seconds=st.integers(1, 20))
    def advance(self, seconds: int) -> None:
        self.now += seconds

    @rule(maker_bps=st.sampled_from([0, 5, 30]), taker_bps=st.sampled_from([0, 10, 50]))
    def set_fees(self, maker_bps: int, taker_bps: int) -> None:
        """A new fee schedule for the fills matched from now on (book and desk share it)."""
        self.world.book.fees = self.world.desk.fees = FeeSchedule(maker_bps, taker_bps)

    @rule()
    def tick(self) -> None:
        for removal in process_tick(self.world.book, Timestamp(self.now)):
            assert self.orders[removal.digest].expiry < self.now

    # --- invariants --------------------------------------------------------------------------

    @invariant()
    def fills_within_signed_size(self) -> None:
        per_order: dict[Digest, int] = {}
        for trade in self.trades:
            for auth in (trade.maker_auth, trade.taker_auth):
                per_order[auth.digest] = per_order.get(auth.digest, 0) + trade.quantity
        assert per_order == {d: q for d, q in self.world.book.filled.items() if q}
        for digest, filled in per_order.items():
            assert filled <= self.orders[digest].quantity, "overfilled"

    @invariant()
    def book_not_crossed(self) -> None:
        for series in self.world.series[:SERIES]:
            bid = get_best_bid(self.world.book, series, Timestamp(self.now))
            ask = get_best_ask(self.world.book, series, Timestamp(self.now))
            assert bid is None or ask is None or bid < ask

    @invariant()
    def level_quantities_match_their_orders(self) -> None:
        """The running summary of every level (and of a price with no level) equals the sum
        over its unexpired resting orders, now and a little later when some have expired."""
        book = self.world.book
        for now in (self.now, self.now + 60):
            expected: dict[tuple[object, Side, int], int] = {}
            for digest, resting in book.resting.items():
                o = resting.signed.message
                if o.expiry >= now:
                    key = (o.series_id, o.side, o.price)
                    expected[key] = expected.get(key, 0) + get_remaining(book, digest)
            for series in self.world.series[:SERIES]:
                for side in Side:
                    for price in {p for (s, d, p) in expected if (s, d) == (series, side)} | {
                            px(1)}:
                        assert get_level_quantity(book, series, side, price, Timestamp(now)) \
                            == expected.get((series, side, price), 0)

    @invariant()
    def resting_orders_are_live_and_unfilled(self) -> None:
        book = self.world.book
        for digest, resting in book.resting.items():
            assert book.filled.get(digest, 0) < resting.signed.message.quantity
            assert not self.is_dead(digest) and digest not in book.closed

    @invariant()
    def cash_less_fees_and_positions_conserved(self) -> None:
        portfolios = self.world.portfolios
        fees = sum(t.maker_fee + t.taker_fee for t in (*self.trades, *self.block_trades))
        total = sum(self.world.deposits.values()) - self.withdrawn
        assert sum(portfolios.balances.values()) == total - fees
        for series in self.world.series:
            assert sum(p.get(series, 0) for p in portfolios.positions.values()) == 0

    @invariant()
    def every_account_covers_its_requirement(self) -> None:
        for account in ACCOUNTS:
            portfolios = self.world.portfolios
            assert get_balance(portfolios, account) >= get_requirement(portfolios, account)


BookMachine.TestCase.settings = settings(stateful_step_count=50, deadline=None)
TestBookStateful = BookMachine.TestCase
