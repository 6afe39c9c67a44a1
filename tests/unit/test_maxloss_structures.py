"""Exact max-loss collateral, structure by structure, and the capital-efficiency table."""

from __future__ import annotations

import pytest

from clearhouse.errors import InsufficientCollateral, UnlistedInstrument
from clearhouse.market.instruments import (
    Expiry,
    OptionKind,
    Pair,
    Series,
    compute_expiry_timestamp,
)
from clearhouse.risk.maxloss import (
    CapitalEfficiency,
    TradeLeg,
    compute_capital_efficiency,
    compute_caps,
    compute_critical_prices,
    compute_naive_requirement,
    compute_positions_after_trade,
    compute_premium_flow,
    compute_requirement,
    compute_requirement_after_trade,
    validate_collateral,
    validate_trade_collateral,
)
from clearhouse.types import AccountId, Price, Quantity, Timestamp

USDC = 10**6
UNIT = 100  # Params.contract_unit
ONE = Quantity(UNIT)  # one whole contract
ETH = Pair("ETH", "USDC", 6)
DEC26 = compute_expiry_timestamp(2026, 12, 27)
MAR27 = compute_expiry_timestamp(2027, 3, 26)
CAP = 15_000 * USDC  # 5x a spot of 3,000
CAPS = compute_caps([Expiry(ETH, DEC26, Price(CAP)), Expiry(ETH, MAR27, Price(CAP))])


def C(strike: int, expiry: Timestamp = DEC26) -> Series:
    return Series(ETH, expiry, Price(strike * USDC), OptionKind.CALL)


def P(strike: int, expiry: Timestamp = DEC26) -> Series:
    return Series(ETH, expiry, Price(strike * USDC), OptionKind.PUT)


def req(positions: dict[Series, int]) -> int:
    return compute_requirement({s: Quantity(q) for s, q in positions.items()}, CAPS, UNIT)


STRATEGIES: dict[str, dict[Series, int]] = {
    "short call": {C(3000): -ONE},
    "short put": {P(3000): -ONE},
    "bull call spread (debit)": {C(3000): ONE, C(3200): -ONE},
    "bear call spread (credit)": {C(3000): -ONE, C(3200): ONE},
    "bull put spread (credit)": {P(3000): -ONE, P(2800): ONE},
    "short straddle": {C(3000): -ONE, P(3000): -ONE},
    "short strangle": {C(3200): -ONE, P(2800): -ONE},
    "long call butterfly": {C(2800): ONE, C(3000): -2 * ONE, C(3200): ONE},
    "short call butterfly": {C(2800): -ONE, C(3000): 2 * ONE, C(3200): -ONE},
    "short iron condor": {P(2600): ONE, P(2800): -ONE, C(3200): -ONE, C(3400): ONE},
    "long box": {C(2800): ONE, C(3200): -ONE, P(3200): ONE, P(2800): -ONE},
    "short box": {C(2800): -ONE, C(3200): ONE, P(3200): -ONE, P(2800): ONE},
    "calendar spread (no offset)": {C(3000, DEC26): -ONE, C(3000, MAR27): ONE},
}

# exact, naive (USDC per one contract of the strategy); cap 15,000, strikes around 3,000
EXPECTED = {
    "short call": (12_000, 12_000),
    "short put": (3_000, 3_000),
    "bull call spread (debit)": (0, 11_800),
    "bear call spread (credit)": (200, 12_000),
    "bull put spread (credit)": (200, 3_000),
    "short straddle": (12_000, 15_000),
    "short strangle": (11_800, 14_600),
    "long call butterfly": (0, 24_000),
    "short call butterfly": (200, 24_000),
    "short iron condor": (200, 14_600),
    "long box": (0, 14_600),
    "short box": (400, 15_400),
    "calendar spread (no offset)": (12_000, 12_000),
}


@pytest.mark.parametrize("name", list(STRATEGIES))
def test_each_structure_is_recognised_exactly(name: str) -> None:
    positions = {s: Quantity(q) for s, q in STRATEGIES[name].items()}
    row = compute_capital_efficiency(name, positions, CAPS, UNIT)
    assert (row.exact, row.naive) == tuple(USDC * v for v in EXPECTED[name])


def test_long_options_need_nothing() -> None:
    assert req({C(3000): 5 * ONE, P(2000): 3}) == 0
    assert req({}) == 0


def test_minimum_is_at_zero_a_strike_or_the_cap() -> None:
    positions = {C(3000): Quantity(-1), P(2800): Quantity(2), C(20000): Quantity(-1)}
    # a strike at or above the cap adds no kink inside [0, cap]
    assert compute_critical_prices(positions, Price(CAP)) == (0, 2800 * USDC, 3000 * USDC, CAP)


def test_requirement_rounds_against_the_user() -> None:
    # 1/100 contract short a put struck at 0.000001 USDC: loses 1/100 base unit → 1 base unit
    tiny_put = Series(ETH, DEC26, Price(1), OptionKind.PUT)
    assert req({tiny_put: -1}) == 1
    # 3/100 contract short a put struck at 1.000001 USDC: 30000.03 base units → 30001
    odd = Series(ETH, DEC26, Price(1_000_001), OptionKind.PUT)
    assert req({odd: -3}) == 30_001


def test_expiries_add_up_and_scale_linearly() -> None:
    near, far = {C(3000): -ONE}, {P(3000, MAR27): -ONE}
    assert req({**near, **far}) == req(near) + req(far)
    assert req({C(3000): -7 * ONE, C(3200): 7 * ONE}) == 7 * req({C(3000): -ONE, C(3200): ONE})


def test_unknown_expiry_has_no_cap() -> None:
    stray = Series(ETH, compute_expiry_timestamp(2027, 6, 25), Price(3000 * USDC),
                   OptionKind.CALL)
    with pytest.raises(UnlistedInstrument) as info:
        compute_requirement({stray: Quantity(-1)}, CAPS, UNIT)
    assert info.value.field == "expiry"


def test_insufficient_collateral_carries_the_numbers() -> None:
    account = AccountId(7)
    positions = {P(3000): Quantity(-ONE)}
    assert validate_collateral(account, positions, 3_000 * USDC, CAPS, UNIT) == 3_000 * USDC
    with pytest.raises(InsufficientCollateral) as info:
        validate_collateral(account, positions, 3_000 * USDC - 1, CAPS, UNIT)
    err = info.value
    assert (err.account, err.required, err.available) == (7, 3_000 * USDC, 3_000 * USDC - 1)
    assert err.code == "insufficient_collateral" and isinstance(err, ValueError)
    assert err.to_dict()["code"] == "insufficient_collateral"


def test_a_trade_is_checked_for_both_sides() -> None:
    # the taker buys a put spread from the maker, paying 60 USDC net for one contract
    legs = [TradeLeg(P(3000), ONE, Price(150 * USDC)), TradeLeg(P(2800), -ONE, Price(90 * USDC))]
    assert compute_premium_flow(legs, +1, UNIT) == -60 * USDC
    assert compute_premium_flow(legs, -1, UNIT) == 60 * USDC
    taker_after = compute_positions_after_trade({}, legs, +1)
    assert taker_after == {P(3000): ONE, P(2800): -ONE}
    assert compute_requirement_after_trade({}, legs, +1, CAPS, UNIT) == 0
    # the maker is short the spread: max loss 200, but it receives 60 of premium first
    assert compute_requirement_after_trade({}, legs, -1, CAPS, UNIT) == 200 * USDC
    assert validate_trade_collateral(AccountId(2), {}, 140 * USDC, legs, -1, CAPS, UNIT) == \
        200 * USDC
    with pytest.raises(InsufficientCollateral) as info:
        validate_trade_collateral(AccountId(2), {}, 140 * USDC - 1, legs, -1, CAPS, UNIT)
    assert (info.value.required, info.value.available) == (200 * USDC, 200 * USDC - 1)
    # the taker must be able to pay the premium
    validate_trade_collateral(AccountId(1), {}, 60 * USDC, legs, +1, CAPS, UNIT)
    with pytest.raises(InsufficientCollateral) as info:
        validate_trade_collateral(AccountId(1), {}, 60 * USDC - 1, legs, +1, CAPS, UNIT)
    assert info.value.available == -1


def test_a_closing_trade_releases_collateral() -> None:
    positions = {C(3000): Quantity(-ONE)}
    close = [TradeLeg(C(3000), ONE, Price(500 * USDC))]
    assert compute_positions_after_trade(positions, close, +1) == {}
    # a hedge turns a naked call into a spread: 12,000 → 200
    hedge = [TradeLeg(C(3200), ONE, Price(400 * USDC))]
    assert compute_requirement_after_trade(positions, hedge, +1, CAPS, UNIT) == 200 * USDC


def test_capital_efficiency_table() -> None:
    rows = [compute_capital_efficiency(name, {s: Quantity(q) for s, q in p.items()}, CAPS, UNIT)
            for name, p in STRATEGIES.items()]
    assert all(isinstance(r, CapitalEfficiency) and r.exact <= r.naive for r in rows)
    print("\n| strategy (1 contract, cap 15,000) | exact | naive per leg | saving |")
    for r in rows:
        saving = 1 - r.exact / r.naive if r.naive else 0.0
        print(f"| {r.name} | {r.exact / USDC:,.0f} | {r.naive / USDC:,.0f} | {saving:.0%} |")
    assert compute_naive_requirement({C(3000): Quantity(-1)}, CAPS, UNIT) == 120 * USDC
