"""Stake concentration figures against brute force over every subset."""

from __future__ import annotations

from fractions import Fraction
from itertools import combinations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from clearhouse.errors import ConfigError
from clearhouse.incentives.metrics import (
    compute_hhi,
    compute_nakamoto_coefficient,
    compute_share_bps,
)


def _brute_nakamoto(stakes: list[int], threshold_bps: int) -> int | None:
    total = sum(stakes)
    if total == 0:
        return None
    for size in range(1, len(stakes) + 1):
        if any(Fraction(sum(c), total) > Fraction(threshold_bps, 10_000) for c in combinations(stakes, size)):
            return size
    raise AssertionError


@given(st.lists(st.integers(0, 10**24), max_size=8), st.sampled_from([0, 3_333, 3_334, 5_000, 6_667, 9_999]))
def test_nakamoto_matches_brute_force(stakes: list[int], threshold: int) -> None:
    assert compute_nakamoto_coefficient(stakes, threshold) == _brute_nakamoto(stakes, threshold)


@given(st.lists(st.integers(0, 10**24), min_size=1, max_size=12))
def test_hhi_is_the_floor_of_the_exact_value(stakes: list[int]) -> None:
    total = sum(stakes)
    exact = sum(Fraction(s, total) ** 2 for s in stakes) * 10_000 if total else Fraction(0)
    assert compute_hhi(stakes) == int(exact)


def test_known_values() -> None:
    assert compute_hhi([5]) == 10_000
    assert compute_hhi([1, 1, 1, 1]) == 2_500
    assert compute_nakamoto_coefficient([40, 30, 20, 10], 5_000) == 2
    assert compute_nakamoto_coefficient([25, 25, 25, 25], 5_000) == 3  # exactly half is not a majority
    assert compute_share_bps(1, 3) == 3_333 and compute_share_bps(1, 0) == 0


def test_bad_input_is_refused() -> None:
    with pytest.raises(ConfigError):
        compute_nakamoto_coefficient([1], 10_000)
    with pytest.raises(ConfigError):
        compute_hhi([1, -1])
