"""Exact max-loss collateral against brute force, on random portfolios.

With integer strikes and caps the payoff is piecewise linear between integers, so evaluating it at
every integer settlement price in ``[0, cap]`` is an exhaustive check of the minimum, not a sample.
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from clearhouse.market.instruments import OptionKind, Pair, Series, compute_expiry_timestamp
from clearhouse.risk.maxloss import (
    TradeLeg,
    compute_payoff_scaled,
    compute_positions_after_trade,
    compute_premium_flow,
    compute_requirement,
    compute_requirement_after_trade,
)
from clearhouse.types import Price, Quantity, Timestamp

PAIRS = [Pair("ETH", "USDC", 6), Pair("BTC", "USDC", 6)]
EXPIRIES = [compute_expiry_timestamp(2026, 12, 27), compute_expiry_timestamp(2027, 3, 26)]


@st.composite
def books(draw: st.DrawFn, max_cap: int = 2_000) -> tuple[dict[Series, Quantity], dict[
        tuple[Pair, Timestamp], Price], int]:
    unit = draw(st.sampled_from([1, 7, 100]))
    caps = {(p, e): Price(draw(st.integers(min_value=2, max_value=max_cap)))
            for p in PAIRS for e in EXPIRIES}
    legs = draw(st.lists(st.tuples(st.sampled_from(PAIRS), st.sampled_from(EXPIRIES),
                                   st.integers(min_value=1, max_value=max_cap + 200),
                                   st.sampled_from(OptionKind),
                                   st.integers(min_value=-5 * unit, max_value=5 * unit)),
                         max_size=16))
    positions: dict[Series, Quantity] = {}
    for pair, expiry, strike, kind, quantity in legs:
        series = Series(pair, expiry, Price(strike), kind)
        positions[series] = Quantity(positions.get(series, 0) + quantity)
    return positions, caps, unit


def brute_force(positions: dict[Series, Quantity], caps: dict[tuple[Pair, Timestamp], Price],
                unit: int) -> int:
    total = 0
    for key, cap in caps.items():
        group = {s: q for s, q in positions.items() if (s.pair, s.expiry) == key}
        worst = min(compute_payoff_scaled(group, Price(price)) for price in range(cap + 1))
        total += max(0, -(worst // unit))  # ceil(-worst / unit)
    return total


@given(books())
def test_requirement_equals_exhaustive_brute_force(book: tuple) -> None:  # type: ignore[type-arg]
    positions, caps, unit = book
    assert compute_requirement(positions, caps, unit) == brute_force(positions, caps, unit)


@given(books(max_cap=10**12), st.integers(min_value=1, max_value=10**4))
def test_requirement_at_realistic_sizes_against_a_fine_grid(book: tuple, steps: int  # type: ignore[type-arg]
                                                            ) -> None:
    positions, caps, unit = book
    exact = compute_requirement(positions, caps, unit)
    # a grid (that also holds the kinks) can never find a lower payoff than the exact minimum
    sampled = 0
    for key, cap in caps.items():
        group = {s: q for s, q in positions.items() if (s.pair, s.expiry) == key}
        grid = {cap * i // steps for i in range(steps + 1)} | {s.strike for s in group
                                                             if s.strike <= cap}
        worst = min(compute_payoff_scaled(group, Price(p)) for p in grid)
        sampled += max(0, -(worst // unit))
    assert exact == sampled


@given(books(), books())
def test_requirement_is_subadditive_and_scales(a: tuple, b: tuple) -> None:  # type: ignore[type-arg]
    positions_a, caps, unit = a
    positions_b = b[0]
    merged = dict(positions_a)
    for s, q in positions_b.items():
        merged[s] = Quantity(merged.get(s, 0) + q)
    # one account holding both never needs more than two accounts holding each
    assert compute_requirement(merged, caps, unit) <= (
        compute_requirement(positions_a, caps, unit) + compute_requirement(positions_b, caps, unit))
    tripled = {s: Quantity(3 * q) for s, q in positions_a.items()}
    assert compute_requirement(tripled, caps, unit) <= 3 * compute_requirement(positions_a, caps, unit)


@given(books(), st.integers(min_value=1, max_value=50))
def test_both_sides_of_a_trade_add_up(book: tuple, premium: int) -> None:  # type: ignore[type-arg]
    positions, caps, unit = book
    legs = [TradeLeg(s, q, Price(premium * unit)) for s, q in positions.items() if q]
    # premiums are a transfer: what the taker pays the maker receives, exactly
    assert compute_premium_flow(legs, +1, unit) == -compute_premium_flow(legs, -1, unit)
    taker = compute_positions_after_trade({}, legs, +1)
    maker = compute_positions_after_trade({}, legs, -1)
    assert all(taker[s] == -maker[s] for s in taker) and taker.keys() == maker.keys()
    assert compute_requirement_after_trade({}, legs, +1, caps, unit) == compute_requirement(
        taker, caps, unit)
