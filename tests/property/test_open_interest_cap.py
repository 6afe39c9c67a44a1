"""Property: no sequence of book orders and RFQ accepts takes the open interest above
``max_open_interest``; a refused order or accept changes nothing; the incremental ledger always
equals the open interest recomputed from scratch (and the oracle-profit bound of
``incentives.security`` over ``[0, cap]``)."""

from __future__ import annotations

from collections.abc import Callable, MutableMapping

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from clearhouse.errors import ClearhouseError, OpenInterestCapReached
from clearhouse.incentives.security import compute_exposures, compute_oracle_profit
from clearhouse.market.book import Book, process_order
from clearhouse.market.collateral import Portfolios
from clearhouse.market.open_interest import compute_open_interest_ledger
from clearhouse.market.rfq import (
    RfqDesk,
    process_accept,
    process_quote,
    process_register_maker,
    process_rfq,
)
from clearhouse.messages import Side, TimeInForce
from clearhouse.sim import market_world as mw
from clearhouse.types import Address, Amount, Price, Timestamp

ACCOUNTS = mw.ADDRESSES[:4]
T = Timestamp(mw.NOW)
TIFS = (TimeInForce.GTC, TimeInForce.IOC, TimeInForce.FOK)

book_op = st.tuples(st.just("order"), st.integers(0, 3), st.integers(0, 1), st.sampled_from((Side.BUY, Side.SELL)),
                    st.integers(-3, 3), st.integers(1, 12), st.sampled_from(TIFS))
rfq_op = st.tuples(st.just("rfq"), st.integers(0, 3), st.integers(0, 3), st.integers(0, 2), st.booleans(),
                   st.integers(1, 12), st.integers(1, 12))
ops = st.lists(st.one_of(book_op, book_op, book_op, rfq_op), min_size=6, max_size=30)


def _world(cap: int) -> mw.World:
    listings, ids = mw.build_listings()
    portfolios = Portfolios(listings, mw.UNIT, max_open_interest=Amount(cap))
    nonces: dict[Address, MutableMapping[int, int]] = {}
    world = mw.World(listings, ids, portfolios, Book(mw.DOMAIN, listings, portfolios, nonces),
                     RfqDesk(mw.DOMAIN, listings, portfolios, nonces))
    for account in ACCOUNTS:
        mw.fund(world, account, 1_000_000 * mw.USDC)
        process_register_maker(world.desk, account)
    return world


def _snapshot(world: mw.World) -> tuple[object, ...]:
    book, ledger = world.book, world.portfolios.open_interest
    assert ledger is not None
    return (set(book.resting), dict(book.filled), dict(book.closed), {a: dict(b) for a, b in book.nonces.items()},
            dict(world.portfolios.balances), {a: dict(p) for a, p in world.portfolios.positions.items()},
            dict(ledger.long), ledger.total, dict(world.desk.quote_status), len(world.desk.fades))


def _prepare(world: mw.World, op: tuple[object, ...]) -> Callable[[], object] | None:
    """The op's last step (the order, or the accept once its RFQ and quote are in)."""
    if op[0] == "order":
        _, who, series, side, offset, lots, tif = op
        assert isinstance(who, int) and isinstance(series, int) and isinstance(side, Side)
        assert isinstance(offset, int) and isinstance(lots, int) and isinstance(tif, TimeInForce)
        account = ACCOUNTS[who]
        o = mw.order(world, account, side, Price(mw.px(100) + offset * mw.px(1)), lots * 10, tif, series=series)
        return lambda: process_order(world.book, o, mw.signed(o, account), T)
    _, taker_i, maker_i, series, buys, lots, taken = op
    assert isinstance(taker_i, int) and isinstance(maker_i, int) and isinstance(series, int)
    assert isinstance(buys, bool) and isinstance(lots, int) and isinstance(taken, int)
    taker, maker = ACCOUNTS[taker_i], ACCOUNTS[maker_i]
    request = mw.rfq(world, taker, [(series, 1, buys)], lots * 10)
    rfq_id, makers = process_rfq(world.desk, request, mw.signed(request, taker), T)
    if maker not in makers:  # the taker itself: not routed
        return None
    q = mw.quote(world, maker, request, rfq_id, [mw.px(100)])
    quote_id = process_quote(world.desk, q, mw.signed(q, maker), T)
    a = mw.accept(world, taker, quote_id, min(taken, lots) * 10)
    return lambda: process_accept(world.desk, a, mw.signed(a, taker), T)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops, st.integers(min_value=1, max_value=16))
def test_no_sequence_of_fills_exceeds_the_cap(sequence: list[tuple[object, ...]], cap_lots: int) -> None:
    cap = cap_lots * 10 * 70 * mw.USDC // 2  # half a 3000-call lot per step of the cap
    world = _world(cap)
    ledger = world.portfolios.open_interest
    assert ledger is not None
    for op in sequence:
        step = _prepare(world, op)
        if step is None:
            continue
        before = _snapshot(world)
        try:
            step()
        except OpenInterestCapReached as refused:
            assert _snapshot(world) == before  # a refused fill changes nothing
            assert refused.after > cap
            event(f"{op[0]} refused at the cap")
        except ClearhouseError:  # short of collateral, FOK unfilled: changes nothing either
            assert _snapshot(world) == before
        assert ledger.total <= cap
        if ledger.total * 2 > cap:
            event("open interest above half the cap")
        positions = world.portfolios.positions
        fresh = compute_open_interest_ledger(Amount(cap), mw.UNIT, world.listings, positions)
        assert (ledger.long, ledger.sensitivity, ledger.total) == (fresh.long, fresh.sensitivity, fresh.total)
        exposures = compute_exposures(positions, world.listings)
        assert compute_oracle_profit(exposures, Price(0), Price(10**15)) == ledger.total
