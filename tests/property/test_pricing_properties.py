"""Properties of the vectorised pricer and the IV solver on random inputs."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import assume, given
from hypothesis import strategies as st

from clearhouse.market.pricing import (
    compute_black76_greeks,
    compute_black76_price,
    compute_implied_vol_black76,
    compute_normalised_black,
    compute_normalised_implied_vol,
)
from clearhouse.market.pricing_ref import compute_black76_price_ref

EPS = float(np.finfo(np.float64).eps)

forwards = st.floats(min_value=1e-3, max_value=1e6)
years = st.floats(min_value=1 / 8760, max_value=5.0)
vols = st.floats(min_value=0.01, max_value=5.0)
rates = st.floats(min_value=-0.05, max_value=0.2)
moneyness = st.floats(min_value=-10.0, max_value=10.0)  # ln(F/K) in standard deviations
calls = st.booleans()


@given(forwards, moneyness, years, vols, rates, calls)
def test_implied_vol_round_trip(f: float, m: float, t: float, v: float, r: float, call: bool
                                ) -> None:
    k = f * math.exp(-m * v * math.sqrt(t))
    g = compute_black76_greeks(f, k, t, v, r, call)
    price, vega = float(g.price), float(g.vega)
    assume(price > 1e-300 and vega > 0)
    cond = price / (v * vega)  # relative condition number of σ given the price
    assume(cond < 1e12)  # else the time value is below the last bit of the price
    iv = float(compute_implied_vol_black76(price, f, k, t, r, call))
    assert abs(iv / v - 1) <= 32 * EPS * max(cond, 1.0) + 4 * EPS * abs(r * t) * cond


@given(forwards, moneyness, years, vols, rates, calls)
def test_price_within_no_arbitrage_bounds(f: float, m: float, t: float, v: float, r: float,
                                          call: bool) -> None:
    k = f * math.exp(-m * v * math.sqrt(t))
    df = math.exp(-r * t)
    price = float(compute_black76_price(f, k, t, v, r, call))
    intrinsic = df * max(f - k, 0.0) if call else df * max(k - f, 0.0)
    upper = df * (f if call else k)
    assert intrinsic * (1 - 4 * EPS) <= price <= upper * (1 + 4 * EPS)


@given(forwards, moneyness, years, vols, calls)
def test_price_increases_with_vol(f: float, m: float, t: float, v: float, call: bool) -> None:
    k = f * math.exp(-m * v * math.sqrt(t))
    prices = compute_black76_price(f, k, t, v * np.array([1.0, 1.01, 1.1]), 0.0, call)
    assert np.all(np.diff(prices) >= 0)


@given(forwards, st.floats(min_value=-3.0, max_value=3.0), st.floats(min_value=0.05, max_value=3),
       years, rates, calls)
def test_vectorised_matches_reference(f: float, m: float, s: float, t: float, r: float,
                                      call: bool) -> None:
    v = s / math.sqrt(t)
    k = f * math.exp(-m * s)
    ref = compute_black76_price_ref(f, k, t, v, r, call)
    # well inside ±3 standard deviations the plain reference is good to ~1e-14 relative
    assert abs(float(compute_black76_price(f, k, t, v, r, call)) / ref - 1) <= 1e-12


@given(st.floats(min_value=-20.0, max_value=20.0), st.floats(min_value=1e-4, max_value=15.0),
       calls)
def test_normalised_round_trip_and_symmetry(x: float, s: float, call: bool) -> None:
    beta = float(compute_normalised_black(x, s, call))
    assert beta == float(compute_normalised_black(-x, s, not call))
    otm = beta - max((1 if call else -1) * (math.exp(x / 2) - math.exp(-x / 2)), 0.0)
    vega = math.exp(-0.5 * (x * x / (s * s) + s * s / 4)) / math.sqrt(2 * math.pi)
    assume(otm > 1e-300 and vega > 0)
    cond = beta / (s * vega)
    assume(cond < 1e12)
    got = float(compute_normalised_implied_vol(beta, x, call))
    assert abs(got / s - 1) <= 32 * EPS * max(cond, 1.0)
