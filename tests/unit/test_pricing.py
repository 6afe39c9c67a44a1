"""Black-76 / Black-Scholes prices, Greeks, implied vol, SVI, portfolio analytics.

Pinned to textbook values (Hull, *Options, Futures and Other Derivatives*), to the slow scalar
reference (``pricing_ref``), to 50-digit mpmath, and to finite differences.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.special import ndtr

from clearhouse.errors import PriceOutsideBounds, PricingError, SmileFitError
from clearhouse.market.instruments import OptionKind, Pair, Series, compute_expiry_timestamp
from clearhouse.market.portfolio import (
    compute_legs,
    compute_portfolio_greeks,
    compute_scenario_pnl,
)
from clearhouse.market.pricing import (
    Backend,
    _otm_price_scalar,
    compute_black76_greeks,
    compute_black76_price,
    compute_black_scholes_greeks,
    compute_black_scholes_price,
    compute_implied_vol_black76,
    compute_implied_vol_black_scholes,
    compute_normalised_black,
    compute_normalised_implied_vol,
    compute_year_fraction,
)
from clearhouse.market.pricing_ref import (
    compute_black76_greeks_ref,
    compute_black76_price_ref,
    compute_black_scholes_greeks_ref,
    compute_implied_vol_ref,
)
from clearhouse.market.smile import (
    SviParams,
    compute_svi_fit,
    compute_svi_fit_from_prices,
    compute_svi_implied_vol,
    is_svi_butterfly_free,
)
from clearhouse.types import Price, Quantity, Timestamp

EPS = float(np.finfo(np.float64).eps)


# --- textbook values ---------------------------------------------------------------------------


def test_hull_black_scholes_call_and_put() -> None:
    # Hull, Example 15.6: S=42, K=40, r=10 %, σ=20 %, T=0.5 → c = 4.76, p = 0.81
    call = compute_black_scholes_price(42.0, 40.0, 0.5, 0.2, 0.1, 0.0, True)
    put = compute_black_scholes_price(42.0, 40.0, 0.5, 0.2, 0.1, 0.0, False)
    assert round(float(call), 2) == 4.76 and round(float(put), 2) == 0.81
    assert float(call) == pytest.approx(4.759422392871537, rel=1e-14)


def test_hull_greeks_of_a_call() -> None:
    # Hull, Examples 19.1-19.7: S=49, K=50, r=5 %, σ=20 %, T=20 weeks
    g = compute_black_scholes_greeks(49.0, 50.0, 20 / 52, 0.2, 0.05, 0.0, True)
    assert round(float(g.price), 2) == 2.40
    assert round(float(g.delta), 3) == 0.522
    assert round(float(g.gamma), 3) == 0.066
    assert round(float(g.vega), 1) == 12.1  # per 1.00 of vol: 0.121 per vol point
    assert round(float(g.theta) * 365, 2) == -4.31  # -4.31 per year = -0.0118 per day
    assert round(float(g.rho), 2) == 8.91


def test_hull_black76_futures_option() -> None:
    # Hull, Example 18.6: European put on crude-oil futures, F=K=20, r=9 %, σ=25 %, T=4 months
    assert round(float(compute_black76_price(20.0, 20.0, 4 / 12, 0.25, 0.09, False)), 2) == 1.12


def test_hull_implied_volatility() -> None:
    # Hull, section 15.11: c = 1.875, S=21, K=20, r=10 %, T=0.25 → σ = 23.5 %
    vol = compute_implied_vol_black_scholes(1.875, 21.0, 20.0, 0.25, 0.1, 0.0, True)
    assert round(float(vol), 3) == 0.235
    assert float(compute_black_scholes_price(21.0, 20.0, 0.25, vol, 0.1, 0.0, True)) == \
        pytest.approx(1.875, rel=1e-14)


# --- identities --------------------------------------------------------------------------------


def _grid() -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(7)
    n = 2000
    years = np.exp(rng.uniform(math.log(1 / 8760), math.log(5.0), n))
    vol = np.exp(rng.uniform(math.log(0.01), math.log(5.0), n))
    forward = np.exp(rng.uniform(math.log(1e-2), math.log(1e5), n))
    strike = forward * np.exp(rng.uniform(-3.0, 3.0, n) * vol * np.sqrt(years))
    rate = rng.uniform(-0.02, 0.1, n)
    return forward, strike, years, vol, rate


def test_put_call_parity() -> None:
    f, k, t, v, r = _grid()
    call = compute_black76_price(f, k, t, v, r, True)
    put = compute_black76_price(f, k, t, v, r, False)
    parity = np.exp(-r * t) * (f - k)
    assert np.all(np.abs(call - put - parity) <= 4 * EPS * np.exp(-r * t) * np.maximum(f, k))


def test_black76_equals_black_scholes_on_the_forward() -> None:
    f, k, t, v, r = _grid()
    q = 0.03
    spot = f * np.exp(-(r - q) * t)
    for is_call in (True, False):
        bs = compute_black_scholes_greeks(spot, k, t, v, r, q, is_call)
        b76 = compute_black76_greeks(spot * np.exp((r - q) * t), k, t, v, r, is_call)
        np.testing.assert_allclose(bs.price, b76.price, rtol=1e-12, atol=1e-300)
        # chain rule: ∂V/∂S = ∂V/∂F · F/S, ∂²V/∂S² = ∂²V/∂F² · (F/S)²
        ratio = np.exp((r - q) * t)
        np.testing.assert_allclose(bs.delta, b76.delta * ratio, rtol=1e-12, atol=1e-300)
        np.testing.assert_allclose(bs.gamma, b76.gamma * ratio**2, rtol=1e-12, atol=1e-300)
        np.testing.assert_allclose(bs.vega, b76.vega, rtol=1e-12, atol=1e-300)


def test_normalised_black_is_symmetric_and_scaled() -> None:
    x = np.linspace(-5.0, 5.0, 101)
    s = 0.7
    np.testing.assert_array_equal(compute_normalised_black(x, s, True),
                                  compute_normalised_black(-x, s, False))
    f, k = 100.0, 100.0 * np.exp(-x)
    np.testing.assert_allclose(compute_black76_price(f, k, 1.0, s, 0.0, True) / np.sqrt(f * k),
                               compute_normalised_black(x, s, True), rtol=1e-14)


# --- vectorised path against the scalar reference ---------------------------------------------


def test_prices_and_greeks_match_the_scalar_reference() -> None:
    f, k, t, v, r = _grid()
    for is_call in (True, False):
        fast = compute_black76_greeks(f, k, t, v, r, is_call)
        ref = np.array([compute_black76_greeks_ref(*a, is_call) for a in zip(f, k, t, v, r,
                                                                                strict=True)])
        # the reference's F N(d₁) - K N(d₂) rounds at the size of its terms, not of the price
        w = 1.0 if is_call else -1.0
        sd = v * np.sqrt(t)
        d1 = np.log(f / k) / sd + 0.5 * sd
        terms = np.exp(-r * t) * (f * ndtr(w * d1) + k * ndtr(w * (d1 - sd)))
        for i, name in enumerate(("price", "delta", "gamma", "vega", "theta", "rho")):
            got, want = getattr(fast, name), ref[:, i]
            own = 8 * EPS * terms * (t if name == "rho" else 1.0) * (abs(r) / 365 + 1e-300
                                                                    if name == "theta" else 1.0)
            bad = np.abs(got - want) > 1e-12 * np.abs(want) + own
            assert not np.any(bad), (name, is_call, np.flatnonzero(bad)[:5])


def test_black_scholes_greeks_match_the_scalar_reference() -> None:
    f, k, t, v, r = _grid()
    q = 0.01
    spot = f * np.exp(-(r - q) * t)
    for is_call in (True, False):
        fast = compute_black_scholes_greeks(spot, k, t, v, r, q, is_call)
        for j in range(0, len(f), 7):
            ref = compute_black_scholes_greeks_ref(spot[j], k[j], t[j], v[j], r[j], q, is_call)
            got = (fast.price[j], fast.delta[j], fast.gamma[j], fast.vega[j], fast.theta[j],
                   fast.rho[j])
            sd = v[j] * math.sqrt(t[j])
            terms = spot[j] + k[j] * math.exp(-r[j] * t[j])
            own = (8 * EPS * terms, 0, 0, 0, 8 * EPS * terms * abs(r[j]) / 365, 8 * EPS * terms * t[j])
            # the forward S e^{(r-q)T} rounds: d₁ moves by ~eps/σ√T, the density by d₁ times that
            d1 = math.log(spot[j] / k[j]) / sd + sd / 2
            for a, b, e in zip(got, ref, own, strict=True):
                assert abs(a - b) <= (1e-12 + 8 * EPS * (1 + d1 * d1) / sd) * abs(b) + e + 1e-300


def test_greeks_are_the_derivatives_of_the_price() -> None:
    f, k, t, v, r = 3000.0, np.array([2000.0, 2900.0, 3000.0, 3300.0, 4500.0]), 0.3, 0.7, 0.04
    for is_call in (True, False):
        g = compute_black76_greeks(f, k, t, v, r, is_call)

        def price(ff: float = f, tt: float = t, vv: float = v, rr: float = r,
                  c: bool = is_call) -> np.ndarray:
            return compute_black76_price(ff, k, tt, vv, rr, c)

        h = 1e-4
        np.testing.assert_allclose(g.delta, (price(ff=f + h * f) - price(ff=f - h * f)) / (2 * h * f),
                                   rtol=1e-7)
        np.testing.assert_allclose(
            g.gamma, (price(ff=f * (1 + h)) - 2 * price() + price(ff=f * (1 - h))) / (h * f) ** 2,
            rtol=1e-5)
        np.testing.assert_allclose(g.vega, (price(vv=v + h) - price(vv=v - h)) / (2 * h), rtol=1e-7)
        np.testing.assert_allclose(g.rho, (price(rr=r + h) - price(rr=r - h)) / (2 * h), rtol=1e-7)
        np.testing.assert_allclose(g.theta * 365, -(price(tt=t + h) - price(tt=t - h)) / (2 * h),
                                   rtol=1e-7)


def test_prices_match_mpmath_to_the_last_bits() -> None:
    mp = pytest.importorskip("mpmath")
    mp.mp.dps = 50
    rng = np.random.default_rng(11)
    # every evaluation region: small s, the lower tail, around s_c, large s, |x| up to 30
    x = -np.concatenate([rng.uniform(0, 0.5, 150), rng.uniform(0, 3, 150), rng.uniform(0, 30, 100)])
    s = np.exp(np.concatenate([rng.uniform(math.log(1e-5), math.log(0.3), 150),
                               rng.uniform(math.log(0.01), math.log(3), 150),
                               rng.uniform(math.log(0.3), math.log(12), 100)]))
    got = compute_normalised_black(x, s, True)
    for xi, si, bi in zip(x, s, got, strict=True):
        X, S = mp.mpf(xi), mp.mpf(si)
        exact = mp.e ** (X / 2) * mp.ncdf(X / S + S / 2) - mp.e ** (-X / 2) * mp.ncdf(X / S - S / 2)
        if exact < mp.mpf("1e-290"):
            continue
        # b's own condition number w.r.t. its inputs is about 1 + (h² + t²)/2 = 1 + |ln b|
        tol = 16 * EPS * (1 + float(abs(mp.log(exact))))
        assert abs(float((mp.mpf(bi) - exact) / exact)) <= tol, (xi, si)
        scalar = _otm_price_scalar(float(xi), float(si))  # the one-option path, same bound
        assert abs(float((mp.mpf(scalar) - exact) / exact)) <= tol, (xi, si)


def test_one_option_in_python_numbers_takes_the_scalar_path_with_the_same_results() -> None:
    rng = np.random.default_rng(12)
    for _ in range(2000):
        f = float(np.exp(rng.uniform(-3, 9)))
        k = f * float(np.exp(rng.normal() * rng.uniform(0.001, 3)))
        T, v = float(np.exp(rng.uniform(-9, 2))), float(rng.uniform(0.005, 3))
        r, call = float(rng.uniform(-0.05, 0.1)), bool(rng.random() < 0.5)
        one = compute_black76_price(f, k, T, v, r, call)
        batch = compute_black76_price(np.array([f]), k, T, v, r, call)[0]
        assert one.shape == () and one == pytest.approx(batch, rel=1e-12, abs=1e-300)
    # the domain edges, as the vectorised path: expired or zero vol = discounted intrinsic
    edges = [(100.0, 90.0, 0.0, 0.5, 0.05, True), (100, 90, 1, 0.0, 0.05, False),
             (100.0, 90.0, -1.0, 0.5, 0.0, True), (100.0, 90.0, 1.0, -0.1, 0.0, True),
             (0.0, 90.0, 1.0, 0.5, 0.0, True), (100.0, math.nan, 1.0, 0.5, 0.0, True),
             (100.0, 90.0, 1.0, 0.5, math.inf, True), (100.0, 90.0, 1.0, 0.5, -1000.0, True),
             (1e300, 1e-300, 1e6, 1e3, 0.0, False)]
    for f, k, T, v, r, call in edges:
        with np.errstate(all="ignore"):  # NumPy's overflow to inf and NaN are the answers here
            expected = compute_black76_price(np.array([f]), k, T, v, r, call)[0]
            got = compute_black76_price(f, k, T, v, r, call)
        assert (math.isnan(got) and math.isnan(expected)) or got == expected, (f, k, T, v, r)


# --- implied volatility ------------------------------------------------------------------------


def _round_trip_grid() -> tuple[np.ndarray, ...]:
    """1 hour .. 5 years, 1 % .. 500 % vol, strikes from -12 to +12 standard deviations."""
    years = np.geomspace(1 / 8760, 5.0, 20)
    vols = np.geomspace(0.01, 5.0, 20)
    moneyness = np.linspace(-12.0, 12.0, 49)
    t, v, m = (a.ravel() for a in np.meshgrid(years, vols, moneyness, indexing="ij"))
    return t, v, m * v * np.sqrt(t)


def _condition(price: np.ndarray, vol: np.ndarray, vega: np.ndarray) -> np.ndarray:
    """Relative condition number of σ given the price: what rounding the price alone costs."""
    return np.asarray(price / (vol * vega))


def test_implied_vol_round_trip_out_of_the_money() -> None:
    t, v, x = _round_trip_grid()
    f, k, r = 100.0, 100.0 * np.exp(-x), 0.05
    call = x < 0.0
    g = compute_black76_greeks(f, k, t, v, r, call)
    live = g.price > 1e-300
    iv = compute_implied_vol_black76(g.price, f, k, t, r, call)
    err = np.abs(iv / v - 1.0)[live]
    cond = np.maximum(_condition(g.price, v, g.vega), 1.0)[live]
    assert np.all(err <= 32 * EPS * cond), float(np.max(err / (EPS * cond)))
    well_conditioned = cond < 10
    assert np.max(err[well_conditioned]) < 1e-14
    print(f"IV round trip: {live.sum()} prices, max rel error {err.max():.2e} "
          f"({err[well_conditioned].max():.2e} where cond < 10)")


def test_implied_vol_round_trip_in_the_money() -> None:
    t, v, x = _round_trip_grid()
    f, k = 100.0, 100.0 * np.exp(-x)
    call = x > 0.0
    g = compute_black76_greeks(f, k, t, v, 0.0, call)
    iv = compute_implied_vol_black76(g.price, f, k, t, 0.0, call)
    cond = _condition(g.price, v, g.vega)
    determined = cond < 1e12  # beyond that the time value is below the price's last bit
    err = np.abs(iv / v - 1.0)[determined]
    assert np.all(err <= 32 * EPS * np.maximum(cond[determined], 1.0))


def test_implied_vol_agrees_with_plain_bisection() -> None:
    for f, k, t, v, call in [(100.0, 120.0, 0.5, 0.3, True), (3000.0, 2500.0, 0.05, 0.9, False),
                             (1.0, 1.0, 2.0, 0.01, True), (50.0, 20.0, 1.0, 1.5, True)]:
        price = compute_black76_price_ref(f, k, t, v, 0.01, call)
        assert float(compute_implied_vol_black76(price, f, k, t, 0.01, call)) == pytest.approx(
            compute_implied_vol_ref(price, f, k, t, 0.01, call), rel=1e-12)


def test_implied_vol_outside_the_bounds() -> None:
    f, k, t, r = 100.0, 90.0, 1.0, 0.05
    df = math.exp(-r * t)
    prices = np.array([df * 10.0, df * 10.0 - 1e-9, df * 100.0, df * 150.0, -1.0, math.nan])
    iv = compute_implied_vol_black76(prices, f, k, t, r, True)
    assert float(compute_implied_vol_black76(10.0, f, k, t, 0.0, True)) == 0.0  # intrinsic
    assert iv[0] < 0.02  # df·10 rounds a hair above the intrinsic value: a tiny vol, not NaN
    assert np.all(np.isnan(iv[1:]))  # below intrinsic, at/above the upper bound, negative, NaN
    with pytest.raises(PriceOutsideBounds) as info:
        compute_implied_vol_black76(prices, f, k, t, r, True, on_error="raise")
    assert info.value.field == "price" and info.value.context["index"] == 1
    assert isinstance(info.value, ValueError)
    with pytest.raises(PricingError):
        compute_implied_vol_black76(prices, f, k, t, r, True, on_error="ignore")  # type: ignore[arg-type]
    assert np.isnan(compute_implied_vol_black76(5.0, f, k, 0.0, r, True))  # expired


def test_implied_vol_keeps_the_shape() -> None:
    prices = compute_black76_price(100.0, [[90.0, 100.0, 110.0]], [[0.5], [1.0]], 0.4)
    iv = compute_implied_vol_black76(prices, 100.0, [[90.0, 100.0, 110.0]], [[0.5], [1.0]])
    assert iv.shape == (2, 3)
    np.testing.assert_allclose(iv, 0.4, rtol=1e-14)
    assert compute_implied_vol_black76(10.0, 100.0, 100.0, 1.0).shape == ()


def test_normalised_implied_vol_at_the_money_closed_form() -> None:
    s = np.geomspace(1e-6, 30.0, 200)
    beta = compute_normalised_black(0.0, s)
    live = beta < 1.0
    got = compute_normalised_implied_vol(beta[live], 0.0)
    # at x = 0, b = erf(s / 2√2): σ is determined up to cond = b / (s b')
    cond = np.maximum(beta * math.sqrt(2 * math.pi) / (s * np.exp(-s * s / 8)), 1.0)[live]
    assert np.all(np.abs(got / s[live] - 1) <= 32 * EPS * cond)


@pytest.mark.parametrize("minus_x", [1e-6, 1.0, 50.0, 301.0, 400.0, 600.0])
@pytest.mark.parametrize("backend", ["numpy", "jit"])
def test_implied_vol_at_the_inflection_point(minus_x: float, backend: Backend) -> None:
    # β = b(x, s_c) exactly: the central branch's tangent guess is s_c itself, the bracket's edge
    # (the NumPy solver once replaced it by 2 s_c and converged to s = 37.6 at x = -400)
    s_c = math.sqrt(2.0 * minus_x)
    beta = float(compute_normalised_black(-minus_x, s_c))
    got = float(compute_normalised_implied_vol(beta, -minus_x, backend=backend))
    assert abs(got / s_c - 1.0) <= 1e-12


def test_year_fraction() -> None:
    now = Timestamp(1_700_000_000)
    assert compute_year_fraction(now, Timestamp(now + 365 * 86_400)) == 1.0
    assert compute_year_fraction(now, Timestamp(now + 3600)) == pytest.approx(1 / 8760)


# --- SVI ---------------------------------------------------------------------------------------


def test_svi_fit_recovers_a_known_slice() -> None:
    truth = SviParams(a=0.04, b=0.4, rho=-0.4, m=0.05, sigma=0.2)
    k = np.linspace(-1.0, 1.0, 25)
    vols = compute_svi_implied_vol(truth, k, 0.5)
    fit = compute_svi_fit(k, vols, 0.5)
    assert fit.max_error_vol < 1e-8
    for name in ("a", "b", "rho", "m", "sigma"):
        assert getattr(fit.params, name) == pytest.approx(getattr(truth, name), abs=1e-6)
    assert fit.butterfly_free


def test_svi_fit_from_noisy_prices_respects_the_constraints() -> None:
    truth = SviParams(a=0.01, b=0.3, rho=-0.6, m=0.0, sigma=0.3)
    forward, years = 3000.0, 30 / 365
    strikes = forward * np.exp(np.linspace(-0.6, 0.5, 30))
    vols = compute_svi_implied_vol(truth, np.log(strikes / forward), years)
    vols = vols * (1 + 0.01 * np.random.default_rng(3).standard_normal(vols.size))
    calls = strikes > forward
    prices = compute_black76_price(forward, strikes, years, vols, 0.0, calls)
    fit = compute_svi_fit_from_prices(prices, forward, strikes, years, 0.0, calls)
    p = fit.params
    assert p.b >= 0 and abs(p.rho) < 1 and p.sigma > 0
    assert p.a + p.b * p.sigma * math.sqrt(1 - p.rho**2) >= -1e-15  # minimum variance ≥ 0
    assert p.b * (1 + abs(p.rho)) <= 2 + 1e-12  # Lee's moment bound
    assert fit.rmse_vol < 0.02


def test_svi_detects_butterfly_arbitrage() -> None:
    # Gatheral & Jacquier (2014), "Arbitrage-free SVI volatility surfaces", eq. (5.1): a slice
    # fitted to market data whose density goes negative
    bad = SviParams(a=-0.0410, b=0.1331, rho=0.3060, m=0.3586, sigma=0.4153)
    assert not is_svi_butterfly_free(bad, k_max=1.5)
    assert is_svi_butterfly_free(SviParams(a=0.04, b=0.2, rho=-0.3, m=0.0, sigma=0.3))


def test_svi_needs_enough_quotes() -> None:
    with pytest.raises(SmileFitError) as info:
        compute_svi_fit([0.0, 0.1, 0.2, 0.3], [0.5, 0.5, 0.5, 0.5], 1.0)
    assert info.value.field == "quotes"
    with pytest.raises(SmileFitError):
        compute_svi_fit(np.linspace(-1, 1, 9), np.full(9, 0.5), 0.0)


# --- portfolio ---------------------------------------------------------------------------------

ETH = Pair("ETH", "USDC", 6)
EXPIRY = compute_expiry_timestamp(2026, 12, 27)
NOW = Timestamp(EXPIRY - 90 * 86_400)


def _series(strike: int, kind: OptionKind) -> Series:
    return Series(ETH, EXPIRY, Price(strike * 10**6), kind)


def test_portfolio_greeks_of_a_straddle() -> None:
    call, put = _series(3000, OptionKind.CALL), _series(3000, OptionKind.PUT)
    positions = {call: Quantity(-250), put: Quantity(-250)}  # short 2.5 straddles
    legs = compute_legs(positions, NOW, {EXPIRY: 3000.0}, {call: 0.8, put: 0.8}, 100)
    assert legs.strike.tolist() == [3000.0, 3000.0] and legs.quantity.tolist() == [-2.5, -2.5]
    greeks = compute_portfolio_greeks(legs, spot=3000.0)
    one = compute_black76_greeks(3000.0, 3000.0, 90 / 365, 0.8, 0.0, [True, False])
    assert greeks.value == pytest.approx(-2.5 * float(one.price.sum()), rel=1e-14)
    assert greeks.gamma == pytest.approx(-2.5 * float(one.gamma.sum()), rel=1e-14)
    assert greeks.vega < 0 < greeks.theta
    # ATM-forward straddle: Δ = -2.5 (N(d₁) - N(-d₁)) with d₁ = σ√T/2
    assert greeks.delta == pytest.approx(-2.5 * (2 * ndtr(0.4 * math.sqrt(90 / 365)) - 1), rel=1e-14)


def test_scenario_grid_is_full_revaluation() -> None:
    call, put = _series(3200, OptionKind.CALL), _series(2800, OptionKind.PUT)
    positions = {call: Quantity(100), put: Quantity(-300)}
    legs = compute_legs(positions, NOW, {EXPIRY: 3000.0}, {call: 0.7, put: 0.9}, 100)
    grid = compute_scenario_pnl(legs, [-0.2, 0.0, 0.2], [-0.1, 0.0, 0.1])
    assert grid.pnl.shape == (3, 3) and grid.pnl[1, 1] == 0.0
    moved = compute_black76_price(3600.0, legs.strike, legs.years, legs.vol + 0.1, 0.0,
                                  legs.is_call) @ legs.quantity
    base = compute_black76_price(3000.0, legs.strike, legs.years, legs.vol, 0.0,
                                 legs.is_call) @ legs.quantity
    assert grid.pnl[2, 2] == pytest.approx(moved - base, rel=1e-12)
    # small shocks: P&L ≈ Δ dS + ½ Γ dS²
    g = compute_portfolio_greeks(legs, 3000.0)
    tiny = compute_scenario_pnl(legs, [1e-3], [0.0]).pnl[0, 0]
    assert tiny == pytest.approx(g.delta * 3.0 + 0.5 * g.gamma * 9.0, rel=1e-4)
