"""The incremental requirement (``clearhouse.risk.incremental`` behind ``Portfolios``) equals the
exact max-loss of ``clearhouse.risk.maxloss`` recomputed from scratch, on random listings and random
fill sequences: after every fill, for every account; for a move not applied yet; when strikes are
listed after the cache was built; and for a ledger created with positions already in it. The O(1)
bound the book tries first is never more permissive than the exact check."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from clearhouse.errors import InsufficientCollateral
from clearhouse.market.collateral import (
    Listing,
    Portfolios,
    PositionDelta,
    compute_caps_of,
    compute_series_portfolio,
    get_requirement,
)
from clearhouse.market.instruments import (
    ListingRules,
    OptionKind,
    Pair,
    Series,
    compute_expiry_timestamp,
    compute_series_id,
)
from clearhouse.risk.incremental import (
    compute_requirement_after,
    compute_requirement_after_move,
    is_covered_after_move,
)
from clearhouse.risk.maxloss import compute_requirement
from clearhouse.types import Address, Price, Quantity, SeriesId

ACCOUNTS = [Address(f"0x{i:040x}") for i in range(1, 4)]
PAIRS = [Pair("ETH", "USDC", 6), Pair("BTC", "USDC", 6)]
EXPIRIES = [compute_expiry_timestamp(2026, 12, 27), compute_expiry_timestamp(2027, 3, 26)]


@st.composite
def markets(draw: st.DrawFn) -> tuple[dict[SeriesId, Listing], list[SeriesId], int]:
    """Up to 12 series over two pairs and two expiries; strikes mostly inside (0, cap)."""
    unit = draw(st.sampled_from([1, 7, 100]))
    rules = ListingRules(Price(1), Price(unit), unit)
    caps = {(p, e): draw(st.integers(2, 400)) for p in PAIRS for e in EXPIRIES}
    listings: dict[SeriesId, Listing] = {}
    for _ in range(draw(st.integers(1, 12))):
        pair, expiry = draw(st.sampled_from(PAIRS)), draw(st.sampled_from(EXPIRIES))
        cap = caps[(pair, expiry)]
        strike = draw(st.integers(1, cap + 20))
        series = Series(pair, expiry, Price(strike), draw(st.sampled_from(OptionKind)))
        listings[compute_series_id(series)] = Listing(series, Price(cap), rules)
    return listings, list(listings), unit


def exact(portfolios: Portfolios, positions: dict[SeriesId, Quantity]) -> int:
    return compute_requirement(compute_series_portfolio(portfolios.listings, positions),
                               compute_caps_of(portfolios.listings, positions),
                               portfolios.contract_unit)


def moved(positions: dict[SeriesId, Quantity], moves: dict[SeriesId, int]
          ) -> dict[SeriesId, Quantity]:
    after = dict(positions)
    for series_id, quantity in moves.items():
        after[series_id] = Quantity(after.get(series_id, 0) + quantity)
    return {s: q for s, q in after.items() if q}


fills = st.lists(st.tuples(st.sampled_from(range(len(ACCOUNTS))),
                           st.lists(st.tuples(st.integers(0, 11), st.integers(-30, 30)),
                                    min_size=1, max_size=3)),
                 max_size=25)


@settings(max_examples=150, deadline=None)
@given(markets(), fills, st.integers(0, 11), st.integers(-40, 40), st.integers(0, 10**6))
def test_incremental_requirement_equals_maxloss(market: tuple[dict[SeriesId, Listing],
                                                               list[SeriesId], int],
                                                steps: list[tuple[int, list[tuple[int, int]]]],
                                                probe: int, probe_quantity: int,
                                                available: int) -> None:
    all_listings, ids, unit = market
    listings: dict[SeriesId, Listing] = {}  # listed progressively: later strikes add kinks
    portfolios = Portfolios(listings, unit)
    for who, legs in steps:
        account = ACCOUNTS[who]
        deltas = [PositionDelta(ids[i % len(ids)], Quantity(q)) for i, q in legs]
        for delta in deltas:
            listings[delta.series_id] = all_listings[delta.series_id]
        before = portfolios.positions.get(account, {})
        moves: dict[SeriesId, int] = {}
        for delta in deltas:
            moves[delta.series_id] = moves.get(delta.series_id, 0) + delta.quantity
        moves = {s: q for s, q in moves.items() if q}
        expected = exact(portfolios, moved(before, moves))
        assert compute_requirement_after(portfolios.cache, listings, portfolios.positions,
                                         account, moves) == expected
        portfolios.apply_fill(account, deltas, 0)
        for other in ACCOUNTS:
            assert get_requirement(portfolios, other) == exact(
                portfolios, portfolios.positions.get(other, {}))
    series_id = ids[probe % len(ids)]
    listings[series_id] = all_listings[series_id]
    for account in ACCOUNTS:
        held = portfolios.positions.get(account, {})
        required = exact(portfolios, moved(held, {series_id: probe_quantity}))
        assert compute_requirement_after_move(portfolios.cache, listings, portfolios.positions,
                                              account, series_id, probe_quantity) == required
        if is_covered_after_move(portfolios.cache, account, series_id, probe_quantity,
                                 available):
            assert available >= required


@settings(max_examples=60, deadline=None)
@given(markets(), st.lists(st.tuples(st.integers(0, 11), st.integers(-30, 30)), max_size=10))
def test_a_ledger_built_with_positions_caches_them_exactly(
        market: tuple[dict[SeriesId, Listing], list[SeriesId], int],
        legs: list[tuple[int, int]]) -> None:
    listings, ids, unit = market
    held: dict[SeriesId, Quantity] = {}
    for i, q in legs:
        held = moved(held, {ids[i % len(ids)]: q})
    portfolios = Portfolios(listings, unit, positions={ACCOUNTS[0]: held} if held else {})
    assert get_requirement(portfolios, ACCOUNTS[0]) == exact(portfolios, held)
    assert get_requirement(portfolios, ACCOUNTS[1]) == 0


@settings(max_examples=200, deadline=None)
@given(markets(), fills, st.integers(0, 11), st.integers(-40, 40),
       st.sampled_from([-1, 0]) | st.integers(-30, 30), st.integers(-5_000, 5_000))
def test_check_move_refuses_exactly_what_the_exact_check_refuses(
        market: tuple[dict[SeriesId, Listing], list[SeriesId], int],
        steps: list[tuple[int, list[tuple[int, int]]]], probe: int, probe_quantity: int,
        slack: int, cash: int) -> None:
    """``Portfolios.check_move`` (the book's path: the O(1) bound inline, else the exact check)
    refuses a move exactly when the requirement recomputed from scratch exceeds the balance after
    the cash; the bound alone never accepts a move the exact check refuses; and ``apply_move``
    leaves the same ledger as ``apply_fill``."""
    all_listings, ids, unit = market
    listings: dict[SeriesId, Listing] = {}
    fast, plain = Portfolios(listings, unit), Portfolios(listings, unit)
    for who, legs in steps:
        for i, q in legs:  # netted per series, applied one series at a time as the book does
            listings[ids[i % len(ids)]] = all_listings[ids[i % len(ids)]]
            fast.apply_move(ACCOUNTS[who], ids[i % len(ids)], q, -q)
            plain.apply_fill(ACCOUNTS[who], [PositionDelta(ids[i % len(ids)], Quantity(q))], -q)
        assert fast.balances == plain.balances and fast.positions == plain.positions
        for account in ACCOUNTS:
            assert get_requirement(fast, account) == get_requirement(plain, account)
    series_id = ids[probe % len(ids)]
    listings[series_id] = all_listings[series_id]  # possibly a strike the cache has not seen
    for account in ACCOUNTS:  # funded to within ``slack`` of the requirement after the move
        required = exact(fast, moved(fast.positions.get(account, {}), {series_id: probe_quantity}))
        fast.balances[account] = required - cash + slack
        refused = slack < 0
        if is_covered_after_move(fast.cache, account, series_id, probe_quantity,
                                 required + slack):
            assert not refused
        try:
            fast.check_move(account, series_id, probe_quantity, cash)
        except InsufficientCollateral as short:
            assert refused and short.required == required
        else:
            assert not refused
