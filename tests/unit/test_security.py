"""Economic-security metrics: exact numbers, a brute-force reference for the bribery threshold,
and the check DESIGN §2.7 asks for: at the default parameters and the configured caps, corrupting
any role costs at least twice what it can gain."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from clearhouse.errors import ConfigError
from clearhouse.incentives.security import (
    MAX_EXACT_STAKERS,
    Exposure,
    compute_arbitration_security,
    compute_bribery_threshold,
    compute_coordinator_security,
    compute_default_security,
    compute_open_interest,
    compute_oracle_profit,
    compute_oracle_security,
    compute_payoff_range,
    is_secure,
)
from clearhouse.params import MAX_PAUSE, PRESETS, compute_exit_bound, load_params
from clearhouse.sim.oracle_hub import DEFAULT_FEED, DEVNET_HUB
from clearhouse.types import Amount, Price, Quantity, Seconds

USDC = 10**6


def _brute_threshold(stakes: list[int], threshold_bps: int) -> int | None:
    total = sum(stakes)
    if total == 0:
        return None
    return min(sum(c) for r in range(1, len(stakes) + 1) for c in itertools.combinations(stakes, r)
               if sum(c) * 10_000 > total * threshold_bps)


@given(st.lists(st.integers(min_value=0, max_value=10**9), max_size=10), st.integers(min_value=0, max_value=9_999))
def test_bribery_threshold_is_the_cheapest_quorum_reaching_set(stakes: list[int], threshold: int) -> None:
    assert compute_bribery_threshold(stakes, threshold) == _brute_threshold([s for s in stakes if s], threshold)


def test_bribery_threshold_examples() -> None:
    # a majority of 100: 40 + 11 = 51 beats the Nakamoto set {40, 30} = 70
    assert compute_bribery_threshold([40, 30, 11, 10, 9], 5_000) == 51
    assert compute_bribery_threshold([], 5_000) is None
    many = [10] * (MAX_EXACT_STAKERS + 1)  # lower bound beyond the exact search
    assert compute_bribery_threshold(many, 5_000) == sum(many) // 2 + 1
    with pytest.raises(ConfigError):
        compute_bribery_threshold([1], 10_000)


def test_payoff_range_and_oracle_profit() -> None:
    assert compute_payoff_range(Price(3_000), True, Price(1_000), Price(12_000)) == 9_000
    assert compute_payoff_range(Price(3_000), False, Price(1_000), Price(12_000)) == 2_000
    assert compute_payoff_range(Price(3_000), True, Price(0), Price(2_000)) == 0
    with pytest.raises(ConfigError):
        compute_payoff_range(Price(1), True, Price(5), Price(4))
    call = Exposure(Price(3_000 * USDC), True, Price(12_000 * USDC), Quantity(150), 100)  # 1.5 contracts
    put = Exposure(Price(2_000 * USDC), False, Price(12_000 * USDC), Quantity(1), 100)
    # the feed bounds of the default feed: [1, 1,000,000] USDC, the cap 12,000 binds above
    profit = compute_oracle_profit([call, put], DEFAULT_FEED.min_price, DEFAULT_FEED.max_price)
    assert profit == 150 * 9_000 * USDC // 100 + (1 * 1_999 * USDC + 99) // 100
    assert compute_oracle_profit([], Price(0), Price(1)) == 0


def test_open_interest_sums_the_long_side() -> None:
    positions = {"a": {b"s1": 5, b"s2": -3}, "b": {b"s1": -5, b"s2": 3}, "c": {b"s1": 2}}
    assert compute_open_interest(positions) == {b"s1": 7, b"s2": 3}


def test_role_numbers() -> None:
    coordinator = compute_coordinator_security({"c": 100}, Amount(100), Amount(60))
    assert (coordinator.cost_of_corruption, coordinator.bribery_threshold, coordinator.secure) == (100, 100, False)
    oracle = compute_oracle_security("oracle ETH/USDC", {"a": 10, "b": 4, "c": 10, "d": 10}, 1, Amount(5),
                                     Amount(4))
    # f+1 = 2 cheapest: b loses min(5, 4) = 4, another loses 5; their stake together 14
    assert (oracle.cost_of_corruption, oracle.bribery_threshold, oracle.nakamoto, oracle.secure) == (9, 14, 2, True)
    arbitration = compute_arbitration_security({"x": 60, "y": 30, "z": 20}, Amount(30))
    assert (arbitration.cost_of_corruption, arbitration.nakamoto, arbitration.hhi) == (60, 1, 4_049)
    assert arbitration.secure and not is_secure(59, 30)
    assert compute_exit_bound(Seconds(900), Seconds(600)) == 1_500 + MAX_PAUSE


@pytest.mark.parametrize("preset", PRESETS)
def test_defaults_cost_at_least_twice_the_profit_at_the_caps(preset: str) -> None:
    """DESIGN §2.7 at the configured caps. The oracle side uses the hub parameters the devnet
    deploys (DEVNET_HUB, f = 1): its ``max_open_interest`` is what 2 × 100,000 USDC of slashing covers."""
    params = load_params(preset)
    numbers = compute_default_security(params, DEVNET_HUB, f=1)
    coordinator_cost, coordinator_profit = numbers["coordinator"]
    assert is_secure(coordinator_cost, coordinator_profit), (preset, coordinator_cost, coordinator_profit)
    if preset == "devnet":
        oracle_cost, oracle_profit = numbers["oracle"]
        assert is_secure(oracle_cost, oracle_profit), (oracle_cost, oracle_profit)


def test_the_check_catches_a_cap_the_stake_does_not_cover() -> None:
    params = load_params("devnet", max_open_interest=100_000 * USDC + 1)
    cost, profit = compute_default_security(params, DEVNET_HUB, f=1)["oracle"]
    assert not is_secure(cost, profit)
