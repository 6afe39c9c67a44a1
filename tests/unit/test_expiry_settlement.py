"""The coordinator's expiry settlement rules against the spec: ``process_settle_expiry`` moves each
holder's balance exactly as the STF's ``SettleExpiry`` does (``compute_settled_account``), conserves
cash, and leaves other expiries alone; ``process_close_series`` closes only that expiry's orders."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from clearhouse.market import book as bookrules
from clearhouse.market.collateral import (
    Portfolios,
    apply_fill,
    get_requirement,
    process_settle_expiry,
)
from clearhouse.market.collateral import PositionDelta as Delta
from clearhouse.messages import Side
from clearhouse.settlement import Account, Position
from clearhouse.settlement.exits import compute_settled_account
from clearhouse.settlement.stf import compute_settlement_price
from clearhouse.sim import market_world as mw
from clearhouse.sim.settlement_world import E1, make_ctx
from clearhouse.types import AccountId, Amount, Price, Quantity, SeriesId

ACCOUNTS = mw.ADDRESSES[:3]
BALANCE = 10**13


def _ledger(quantities: list[list[int]]) -> tuple[Portfolios, list[SeriesId]]:
    """Accounts 0 and 1 hold ``quantities`` of the four listed series; account 2 the opposite of
    their sum (every series nets to zero); all funded with ``BALANCE``."""
    listings, ids = mw.build_listings()
    portfolios = Portfolios(listings, mw.UNIT)
    third = [-(a + b) for a, b in zip(*quantities, strict=True)]
    for account, held in zip(ACCOUNTS, [*quantities, third], strict=True):
        portfolios.balances[account] = BALANCE
        apply_fill(portfolios, account, [Delta(s, Quantity(q)) for s, q in zip(ids, held, strict=True) if q], 0)
    return portfolios, ids


@settings(max_examples=150, deadline=None)
@given(st.lists(st.lists(st.integers(-500, 500), min_size=4, max_size=4), min_size=2, max_size=2),
       st.integers(0, 2 * mw.CAP))
def test_the_ledger_settles_an_expiry_as_the_spec_does(quantities: list[list[int]], price: int) -> None:
    portfolios, ids = _ledger(quantities)
    expiring = {s for s in ids if portfolios.listings[s].series.expiry == mw.EXPIRY}
    before = {a: dict(portfolios.positions.get(a, {})) for a in ACCOUNTS}
    grid = compute_settlement_price(replace(E1, settlement_price=Price(price)), mw.UNIT)
    paid, unsettled = process_settle_expiry(portfolios, expiring, grid)

    assert unsettled == () and sum(paid.values()) == 0  # cash only moves between holders
    ctx = make_ctx(prices={E1.expiry_id: Price(price)})
    for i, account in enumerate(ACCOUNTS):
        held = {s: q for s, q in before[account].items() if s in expiring}
        assert (account in paid) == bool(held)
        leaf = Account(account, Amount(BALANCE), tuple(sorted(
            (Position(E1.expiry_id, portfolios.listings[s].series.strike, portfolios.listings[s].series.kind, q)
             for s, q in held.items()), key=lambda p: (p.strike, p.kind))))
        assert portfolios.balances[account] == compute_settled_account(AccountId(i), leaf, ctx).balance
        assert portfolios.positions.get(account, {}) == {s: q for s, q in before[account].items()
                                                         if s not in expiring}
        rest = Portfolios(portfolios.listings, mw.UNIT)
        apply_fill(rest, account, [Delta(s, q) for s, q in portfolios.positions.get(account, {}).items()], 0)
        assert get_requirement(portfolios, account) == get_requirement(rest, account)  # the cache follows


def test_an_account_the_payoff_would_take_below_zero_is_left_unsettled() -> None:
    portfolios, ids = _ledger([[-100, 0, 0, 0], [0, 0, 0, 0]])  # account 0 wrote one 3000 call
    portfolios.balances[ACCOUNTS[0]] = 100 * mw.USDC  # less than its requirement: only a bug gets here
    paid, unsettled = process_settle_expiry(portfolios, {ids[0], ids[1], ids[2]}, Price(3_500 * mw.USDC))
    assert unsettled == (ACCOUNTS[0],) and paid == {ACCOUNTS[2]: 500 * mw.USDC}
    assert portfolios.positions[ACCOUNTS[0]] == {ids[0]: -100}


def test_closing_a_series_removes_only_its_resting_orders() -> None:
    world = mw.make_world()
    placed = [mw.order(world, mw.ADDRESSES[0], Side.SELL, mw.px(100 + i), 100, series=i) for i in range(4)]
    digests = [bookrules.process_order(world.book, o, mw.signed(o, mw.ADDRESSES[0]), mw.NOW).digest
               for o in placed]
    removed = bookrules.process_close_series(world.book, {world.series[0], world.series[2]})
    assert [r.digest for r in removed] == [digests[0], digests[2]]
    assert {r.reason for r in removed} == {bookrules.CloseReason.EXPIRED}
    assert set(world.book.resting) == {digests[1], digests[3]}
    assert bookrules.get_best_ask(world.book, world.series[0], mw.NOW) is None
    assert bookrules.process_close_series(world.book, {world.series[0]}) == ()
