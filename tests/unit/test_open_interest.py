"""clearhouse.market.open_interest and its enforcement: the open interest (settlement-price
sensitivity) kept by the ledger, the book and the RFQ desk refusing a fill that would take it above
``max_open_interest``, with nothing changed, and the coordinator enforcing its preset's cap."""

from __future__ import annotations

from collections.abc import Callable, MutableMapping
from pathlib import Path

import pytest

from clearhouse.errors import ConfigError, OpenInterestCapReached, UnlistedInstrument
from clearhouse.incentives.security import compute_exposures, compute_oracle_profit
from clearhouse.market.book import (
    Book,
    CloseReason,
    OrderResult,
    get_match_plan,
    process_order,
    validate_order,
)
from clearhouse.market.collateral import Portfolios, get_positions
from clearhouse.market.open_interest import (
    OpenInterest,
    compute_contract_range,
    compute_long_change,
    compute_long_changes,
    compute_open_interest_ledger,
    compute_payoff_range,
    compute_sensitivity,
    compute_sensitivity_after,
    has_room,
    validate_open_interest,
)
from clearhouse.market.rfq import (
    QuoteStatus,
    RfqDesk,
    RfqFill,
    get_fades,
    process_accept,
    process_quote,
    process_register_maker,
    process_rfq,
)
from clearhouse.market.trades import verify_signed
from clearhouse.messages import Side, TimeInForce
from clearhouse.node.coordinator import Coordinator
from clearhouse.params import load_params
from clearhouse.sim import market_world as mw
from clearhouse.sim.market_world import ADDRESSES, NOW, UNIT, USDC, World, order, px, signed
from clearhouse.store import open_store
from clearhouse.types import Address, Amount, Price, Quantity, SeriesId, Timestamp

ALICE, BOB, CAROL, DAVE = ADDRESSES[:4]
T = Timestamp(NOW)
Positions = dict[Address, dict[SeriesId, Quantity]]
PER_UNIT = 70 * USDC  # ETH 3000 C capped at 10,000: 7,000 USDC per contract of 100 units


def capped_world(cap: int, positions: Positions | None = None) -> World:
    """``market_world`` with ``max_open_interest = cap`` (base units), every account funded."""
    listings, ids = mw.build_listings()
    portfolios = Portfolios(listings, UNIT, positions={a: dict(p) for a, p in (positions or {}).items()},
                            max_open_interest=Amount(cap))
    nonces: dict[Address, MutableMapping[int, int]] = {}
    world = World(listings, ids, portfolios, Book(mw.DOMAIN, listings, portfolios, nonces),
                  RfqDesk(mw.DOMAIN, listings, portfolios, nonces))
    for account in ADDRESSES:
        mw.fund(world, account, 1_000_000 * USDC)
    return world


def send(world: World, account: Address, side: Side, price: Price, quantity: int,
         tif: TimeInForce = TimeInForce.GTC, series: int = 0) -> OrderResult:
    o = order(world, account, side, price, quantity, tif, series=series)
    return process_order(world.book, o, signed(o, account), T)


def snapshot(world: World) -> tuple[object, ...]:
    book, ledger = world.book, world.portfolios.open_interest
    assert ledger is not None
    return (set(book.resting), dict(book.filled), dict(book.closed), {a: dict(b) for a, b in book.nonces.items()},
            dict(world.portfolios.balances), {a: dict(p) for a, p in world.portfolios.positions.items()},
            dict(ledger.long), dict(ledger.sensitivity), ledger.total, dict(world.desk.quote_status),
            list(world.desk.fades), dict(world.desk.rfq_filled))


def refused(world: World, call: Callable[[], object]) -> OpenInterestCapReached:
    before = snapshot(world)
    with pytest.raises(OpenInterestCapReached) as info:
        call()
    assert snapshot(world) == before
    return info.value


def total(world: World) -> int:
    ledger = world.portfolios.open_interest
    assert ledger is not None
    return ledger.total


# --- the definition --------------------------------------------------------------------------------


def test_pure_rules() -> None:
    assert [compute_long_change(p, 0, q) for p, q in ((0, 5), (-3, 5), (4, -6), (-2, -1), (3, 2))] == [5, 2, -4, 0, 2]
    assert compute_long_change(-3, 5, 7) == 2 and compute_long_change(4, -6, -4) == 0 and compute_long_change(4, -6, -1) == 3
    assert compute_sensitivity(1, 7_000 * USDC, UNIT) == PER_UNIT
    assert compute_sensitivity(1, 1, UNIT) == 1  # rounded up: never understates
    assert compute_sensitivity(0, 1, UNIT) == 0
    assert compute_payoff_range(Price(3_000), False, Price(0), Price(10_000)) == 3_000
    with pytest.raises(ConfigError):
        compute_open_interest_ledger(Amount(-1), UNIT, {}, {})


def test_contract_range_is_the_payoff_range_up_to_the_cap() -> None:
    listings, ids = mw.build_listings()
    ledger = OpenInterest(Amount(1), UNIT)
    # 3000 C, 3000 P, 3200 C on a 10,000 cap
    assert [compute_contract_range(ledger, listings, s) for s in ids[:3]] == [7_000 * USDC, 3_000 * USDC,
                                                                             6_800 * USDC]
    with pytest.raises(UnlistedInstrument):
        compute_contract_range(ledger, listings, SeriesId(b"\x01" * 32))


def test_ledger_from_positions_and_the_security_bound_agree() -> None:
    listings, ids = mw.build_listings()
    positions: Positions = {ALICE: {ids[0]: Quantity(150), ids[1]: Quantity(-40)},
                            BOB: {ids[0]: Quantity(-150), ids[1]: Quantity(40)}, CAROL: {ids[2]: Quantity(1)}}
    ledger = compute_open_interest_ledger(Amount(10**12), UNIT, listings, positions)
    assert ledger.long == {ids[0]: 150, ids[1]: 40, ids[2]: 1}
    assert ledger.total == 150 * PER_UNIT + 40 * 30 * USDC + 68 * USDC
    # the oracle profit of incentives.security over the prices [0, cap] is the same number
    assert compute_oracle_profit(compute_exposures(positions, listings), Price(0), Price(10**12)) == ledger.total
    assert compute_long_changes(positions, {ALICE: {ids[0]: -200}, CAROL: {ids[0]: 200}}) == {ids[0]: 50}


def test_validate_lets_a_decrease_through_above_the_cap() -> None:
    listings, ids = mw.build_listings()
    ledger = compute_open_interest_ledger(Amount(PER_UNIT), UNIT, listings, {ALICE: {ids[0]: Quantity(3)}})
    assert ledger.total == 3 * PER_UNIT and not has_room(ledger, listings, ids[0], 0)
    validate_open_interest(ledger, listings, {ids[0]: -1})  # still above the cap, but lower
    validate_open_interest(ledger, listings, {ids[0]: 0})
    with pytest.raises(OpenInterestCapReached) as info:
        validate_open_interest(ledger, listings, {ids[0]: 1})
    error = info.value
    assert (error.after, error.cap, error.code, error.field) == (4 * PER_UNIT, PER_UNIT, "open_interest_cap_reached",
                                                                 "quantity")
    assert compute_sensitivity_after(ledger, listings, {ids[0]: -3}) == 0


# --- the book --------------------------------------------------------------------------------------


def test_book_fills_up_to_the_cap_and_refuses_beyond_it() -> None:
    world = capped_world(100 * PER_UNIT)  # one contract of the 3000 call
    send(world, ALICE, Side.SELL, px(120), 300)
    result = send(world, BOB, Side.BUY, px(121), 100, TimeInForce.IOC)
    assert [t.quantity for t in result.trades] == [100] and total(world) == 100 * PER_UNIT  # at the cap: allowed
    error = refused(world, lambda: send(world, BOB, Side.BUY, px(121), 1, TimeInForce.IOC))
    assert error.after == 101 * PER_UNIT and error.cap == 100 * PER_UNIT
    refused(world, lambda: send(world, CAROL, Side.BUY, px(125), 5))  # a GTC taker too: nothing rests
    # the refused order's nonce stays unused: the same order can be sent once there is room
    o = order(world, CAROL, Side.BUY, px(121), 10, TimeInForce.IOC)
    refused(world, lambda: process_order(world.book, o, signed(o, CAROL), T))
    send(world, BOB, Side.SELL, px(119), 10, TimeInForce.GTC, series=0)  # rests: Bob offers 10 back
    assert [t.quantity for t in process_order(world.book, o, signed(o, CAROL), T).trades] == [10]
    assert total(world) == 100 * PER_UNIT  # Bob closed 10, Carol opened 10


def test_a_match_stops_at_the_fill_that_would_cross_the_cap() -> None:
    world = capped_world(150 * PER_UNIT)
    send(world, ALICE, Side.SELL, px(120), 100)
    send(world, CAROL, Side.SELL, px(121), 100)
    result = send(world, BOB, Side.BUY, px(125), 200)
    assert [t.quantity for t in result.trades] == [100]
    assert result.closed is CloseReason.OPEN_INTEREST_CAP and result.resting == 0
    assert get_positions(world.portfolios, BOB) == {world.series[0]: 100}
    assert len(world.book.resting) == 1  # Carol's offer waits; the book is not crossed
    # a plan near the cap is checked fill by fill; a fill that only moves longs between
    # accounts passes even with no room left
    send(world, DAVE, Side.BUY, px(119), 50)  # rests
    plan_order = order(world, BOB, Side.SELL, px(119), 50, TimeInForce.IOC)
    signed_order = verify_signed(mw.DOMAIN, plan_order, signed(plan_order, BOB), BOB)
    plan = get_match_plan(world.book, signed_order, validate_order(world.book, signed_order, T), T)
    assert plan.quantity == 50 and plan.taker_short is None


def test_crossing_the_same_maker_twice_counts_its_planned_move() -> None:
    # Alice holds 100 long and offers 150 at two prices: the first 100 bought from her only move
    # her long to Bob, the last 50 are new open interest
    _, ids = mw.build_listings()
    world = capped_world(130 * PER_UNIT, {ALICE: {ids[0]: Quantity(100)}, DAVE: {ids[0]: Quantity(-100)}})
    assert total(world) == 100 * PER_UNIT
    send(world, ALICE, Side.SELL, px(120), 80)
    send(world, ALICE, Side.SELL, px(121), 70)
    result = send(world, BOB, Side.BUY, px(125), 150)
    assert [t.quantity for t in result.trades] == [80] and result.closed is CloseReason.OPEN_INTEREST_CAP
    assert total(world) == 100 * PER_UNIT
    result = send(world, BOB, Side.BUY, px(125), 50)  # 20 moved from Alice, 30 new: 130 = the cap
    assert [t.quantity for t in result.trades] == [50] and total(world) == 130 * PER_UNIT


def test_no_cap_no_ledger() -> None:
    listings, _ = mw.build_listings()
    portfolios = Portfolios(listings, UNIT)
    assert portfolios.open_interest is None and portfolios.has_open_interest_room(SeriesId(b"x" * 32), 10**9)


# --- the RFQ desk ----------------------------------------------------------------------------------


def test_accept_above_the_cap_is_refused_without_a_fade() -> None:
    world = capped_world(250 * PER_UNIT)
    process_register_maker(world.desk, BOB)
    r = mw.rfq(world, ALICE, [(0, 1, True), (2, 1, False)], 200)  # Alice buys a call spread
    rfq_id, _ = process_rfq(world.desk, r, signed(r, ALICE), T)
    q = mw.quote(world, BOB, r, rfq_id, [px(200), px(120)])
    quote_id = process_quote(world.desk, q, signed(q, BOB), T)

    def take(size: int) -> RfqFill:
        a = mw.accept(world, ALICE, quote_id, size)
        return process_accept(world.desk, a, signed(a, ALICE), T)

    # the spread opens 200 units of each call: 200 x 70 + 200 x 68 USDC > 250 x 70
    refused(world, lambda: take(200))
    assert not get_fades(world.desk) and world.desk.quote_status[quote_id] is QuoteStatus.OPEN
    fill = take(90)
    assert [t.quantity for t in fill.trades] == [90, 90] and total(world) == 90 * (PER_UNIT + 68 * USDC)


# --- the coordinator -------------------------------------------------------------------------------


def test_coordinator_enforces_its_presets_cap(tmp_path: Path) -> None:
    params = load_params("devnet", max_open_interest=5_000 * USDC)  # 5,000 USDC of sensitivity
    listings, _ = mw.build_listings()
    store = open_store(f"sqlite:///{tmp_path / 'node.db'}")
    c = Coordinator(store, mw.DOMAIN, listings, UNIT, params=params)
    assert c.portfolios.open_interest is not None and c.portfolios.open_interest.cap == params.max_open_interest
    w = mw.make_world()  # nonces only
    for account in (ALICE, BOB):
        c.on_deposit(account, Amount(100_000 * USDC))
    ask = order(w, ALICE, Side.SELL, px(120), 300)
    c.on_order(ask, signed(ask, ALICE), now=NOW)
    too_much = order(w, BOB, Side.BUY, px(121), 100, TimeInForce.IOC)  # 100 x 70 = 7,000 > 5,000
    with pytest.raises(OpenInterestCapReached) as info:
        c.on_order(too_much, signed(too_much, BOB), now=NOW)
    assert info.value.to_dict()["code"] == "open_interest_cap_reached"
    fits = order(w, BOB, Side.BUY, px(121), 71, TimeInForce.IOC)  # 71 x 70 = 4,970
    ack = c.on_order(fits, signed(fits, BOB), now=NOW)
    assert ack.error is None and [t["quantity"] for t in ack.body["trades"]] == ["71"]
    again = Coordinator(store, mw.DOMAIN, mw.build_listings()[0], UNIT, params=params)
    again.replay()  # the refused order was never logged: replay rebuilds the same open interest
    assert again.portfolios.open_interest == c.portfolios.open_interest
    store.close()


def test_replay_keeps_fills_accepted_under_a_higher_cap(tmp_path: Path) -> None:
    """A restart with a lower cap replays the same market (the cap stops new exposure only)."""
    store = open_store(f"sqlite:///{tmp_path / 'node.db'}")
    listings, _ = mw.build_listings()
    c = Coordinator(store, mw.DOMAIN, listings, UNIT, params=load_params("devnet", max_open_interest=10**12))
    w = mw.make_world()
    for account in (ALICE, BOB):
        c.on_deposit(account, Amount(100_000 * USDC))
    ask = order(w, ALICE, Side.SELL, px(120), 300)
    c.on_order(ask, signed(ask, ALICE), now=NOW)
    bid = order(w, BOB, Side.BUY, px(121), 200, TimeInForce.IOC)  # 14,000 USDC of open interest
    assert c.on_order(bid, signed(bid, BOB), now=NOW).error is None
    lower = load_params("devnet", max_open_interest=5_000 * USDC)
    again = Coordinator(store, mw.DOMAIN, mw.build_listings()[0], UNIT, params=lower)
    again.replay()
    ledger = again.portfolios.open_interest
    assert ledger is not None and ledger.total == 200 * PER_UNIT and ledger.cap == lower.max_open_interest
    assert again.portfolios.positions == c.portfolios.positions
    more = order(w, BOB, Side.BUY, px(121), 1, TimeInForce.IOC)
    with pytest.raises(OpenInterestCapReached):
        again.on_order(more, signed(more, BOB), now=NOW)
    store.close()
