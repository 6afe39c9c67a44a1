"""The compiled implied-vol kernel (``backend="jit"``) against the NumPy solver, the scalar
bisection reference and mpmath; its special functions against SciPy; its guess table.

The kernel is compiled on first use (cached on disk), so the first test here may take seconds.
"""

from __future__ import annotations

import importlib.util
import math

import numpy as np
import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st
from scipy.special import erfcx, ndtri

from clearhouse.errors import PriceOutsideBounds, PricingError
from clearhouse.market import pricing
from clearhouse.market.pricing import (
    JIT_MIN_SIZE,
    compute_black76_greeks,
    compute_implied_vol_black76,
    compute_implied_vol_black_scholes,
    compute_normalised_black,
    compute_normalised_implied_vol,
)
from clearhouse.market.pricing_ref import compute_implied_vol_ref

pytest.importorskip("numba")
from clearhouse.market import pricing_jit  # needs numba

EPS = float(np.finfo(np.float64).eps)


def _grid() -> dict[str, np.ndarray]:
    """Out-of-the-money and in-the-money prices over 1 h..5 y × 1 %..500 % × ±10 sd."""
    t, v, m = (a.ravel() for a in np.meshgrid(np.geomspace(1 / 8760, 5.0, 12),
                                              np.geomspace(0.01, 5.0, 12),
                                              np.linspace(-10.0, 10.0, 41), indexing="ij"))
    k = 100.0 * np.exp(-m * v * np.sqrt(t))
    call = (np.arange(t.size) % 3) != 0  # both sides of the money for calls and puts
    g = compute_black76_greeks(100.0, k, t, v, 0.02, call)
    live = g.price > 1e-300
    return {"k": k[live], "t": t[live], "v": v[live], "call": call[live], "price": g.price[live],
            "cond": np.maximum(g.price / (v * g.vega), 1.0)[live]}


def test_kernel_matches_the_numpy_solver_and_the_truth() -> None:
    g = _grid()
    args = (g["price"], 100.0, g["k"], g["t"], 0.02, g["call"])
    jit = compute_implied_vol_black76(*args, backend="jit")
    ref = compute_implied_vol_black76(*args, backend="numpy")
    # both are exact to eps × cond (what the price determines); far from the upper bound that
    # is well below 1e-12
    # in the money, cond counts the intrinsic value: deep in the money with a time value at the
    # rounding level of the price (cond up to 1e23) σ is noise, NaN or not by an ulp of e^{rT}
    well_posed = g["cond"] <= 1e3
    assert np.count_nonzero(well_posed) > 0.6 * well_posed.size
    jit, ref, vol, cond = jit[well_posed], ref[well_posed], g["v"][well_posed], g["cond"][well_posed]
    assert not np.any(np.isnan(jit) | np.isnan(ref))
    assert np.max(np.abs(jit / vol - 1.0)) <= 1e-12
    assert np.max(np.abs(jit / vol - 1.0) / (EPS * cond)) <= 64
    assert np.max(np.abs(jit / ref - 1.0) / (EPS * cond)) <= 64


def test_kernel_keeps_the_edge_semantics_of_the_numpy_solver() -> None:
    f, t, r = 100.0, 0.5, 0.03
    df = math.exp(-r * t)
    prices = np.array([-1.0, 0.0, 5.0, f * df, f * df * 1.5, np.nan, 20.0 * df, 1e-320])
    strikes = np.array([100.0, 120.0, 100.0, 100.0, 100.0, 100.0, 80.0, 100.0])
    for expiry in (t, 0.0, -1.0):
        jit = compute_implied_vol_black76(prices, f, strikes, expiry, r, True, backend="jit")
        ref = compute_implied_vol_black76(prices, f, strikes, expiry, r, True, backend="numpy")
        np.testing.assert_array_equal(np.isnan(jit), np.isnan(ref))
        np.testing.assert_allclose(jit[~np.isnan(jit)], ref[~np.isnan(ref)], rtol=1e-13, atol=0)
    # at the intrinsic value exactly 0; non-positive forward or strike: NaN
    assert float(compute_implied_vol_black76(20.0, f, 80.0, t, 0.0, True, backend="jit")) == 0.0
    bad = compute_implied_vol_black76(5.0, [0.0, -1.0, 100.0], [100.0, 100.0, 0.0], t, r,
                                      backend="jit")
    assert np.all(np.isnan(bad))
    with pytest.raises(PriceOutsideBounds):
        compute_implied_vol_black76(prices, f, strikes, t, r, True, on_error="raise",
                                    backend="jit")


def test_kernel_keeps_shapes_and_black_scholes_routes_through_it() -> None:
    prices = [[10.0, 5.0, 2.0], [12.0, 7.0, 3.0]]
    iv = compute_implied_vol_black76(prices, 100.0, [[90.0, 100.0, 110.0]], [[0.5], [1.0]],
                                     backend="jit")
    assert iv.shape == (2, 3)
    np.testing.assert_allclose(iv, compute_implied_vol_black76(
        prices, 100.0, [[90.0, 100.0, 110.0]], [[0.5], [1.0]], backend="numpy"), rtol=1e-14)
    assert compute_implied_vol_black76(10.0, 100.0, 100.0, 1.0, backend="jit").shape == ()
    # Hull, section 15.11: c = 1.875, S=21, K=20, r=10 %, T=0.25 → σ = 23.5 %
    vol = compute_implied_vol_black_scholes(1.875, 21.0, 20.0, 0.25, 0.1, 0.0, True,
                                            backend="jit")
    assert round(float(vol), 3) == 0.235


def test_normalised_kernel_matches_the_closed_form_at_the_money() -> None:
    # at x = 0, b = 2N(s/2) - 1 exactly: s = 2 N⁻¹((1 + β)/2)
    # (up to s = 6: beyond, 1 - β is so small that rounding β moves s by more than 1e-13)
    s = np.geomspace(1e-3, 6.0, 400)
    beta = compute_normalised_black(0.0, s)
    got = compute_normalised_implied_vol(beta, 0.0, backend="jit")
    np.testing.assert_allclose(got, s, rtol=1e-13)
    assert float(compute_normalised_implied_vol(0.0, -1.0, backend="jit")) == 0.0
    assert np.isnan(compute_normalised_implied_vol(math.exp(-0.5), -1.0, backend="jit"))


def test_backend_choice() -> None:
    with pytest.raises(PricingError):
        compute_implied_vol_black76(5.0, 100.0, 100.0, 1.0, backend="fast")  # type: ignore[arg-type]
    assert pricing._use_jit("auto", JIT_MIN_SIZE) and not pricing._use_jit("auto", JIT_MIN_SIZE - 1)
    assert not pricing._use_jit("numpy", 10**6) and pricing._use_jit("jit", 1)


def test_backend_auto_respects_the_opt_out_and_a_missing_numba(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLEARHOUSE_PRICING_JIT", "0")
    assert not pricing._use_jit("auto", 10**6)
    monkeypatch.delenv("CLEARHOUSE_PRICING_JIT")
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    assert not pricing._use_jit("auto", 10**6)
    with pytest.raises(PricingError, match="numba"):
        compute_implied_vol_black76(5.0, 100.0, 100.0, 1.0, backend="jit")


def test_erfcx_and_inverse_normal_match_scipy() -> None:
    z = np.concatenate([np.linspace(-3.0, 30.0, 20_001), np.geomspace(30.0, 1e300, 301)])
    got = np.array([pricing_jit._erfcx(float(v)) for v in z])
    assert np.max(np.abs(got / erfcx(z) - 1.0)) <= 8 * EPS
    q = np.geomspace(1e-300, 0.5, 2001)
    got = np.array([pricing_jit._ndtri(float(v)) for v in q])
    assert np.max(np.abs(got - ndtri(q))) <= 1e-13 * np.max(np.abs(ndtri(q)))


def test_small_argument_polynomials_match_libm() -> None:
    # the Taylor polynomials that replace libm's sinh and exp on the series' and Cody's small
    # arguments: within 1 ulp of the correctly rounded value (mpmath) on their whole domain
    mpmath = pytest.importorskip("mpmath")
    mpmath.mp.dps = 40
    y = np.concatenate([np.linspace(-0.25, 0.25, 4001), np.geomspace(1e-300, 0.25, 400)])
    for got, want in ((pricing_jit._sinh_small(float(v)), mpmath.sinh(float(v))) for v in y):
        assert abs(got - float(want)) <= EPS * abs(float(want))
    v = np.linspace(0.0, 0.46875**2, 4001)
    for got, want in ((pricing_jit._exp_small(float(u)), mpmath.exp(float(u))) for u in v):
        assert abs(got - float(want)) <= EPS * float(want)


def test_guess_table_is_exact_at_its_nodes_and_monotone() -> None:
    table = pricing_jit._guess_tables()[:pricing_jit._CENTRAL_AT].reshape(
        pricing_jit._TABLE_SHAPE)
    assert np.all(table[:, 0] == 0.0) and np.all(table[:, -1] == 1.0)
    assert np.all(np.diff(table, axis=1) > 0.0)  # s grows with the price
    n_a, n_z = table.shape
    for i, j in [(0, 1), (n_a // 2, n_z // 3), (n_a - 1, n_z - 2)]:
        a = pricing_jit._TABLE_A_LO + (pricing_jit._TABLE_A_HI - pricing_jit._TABLE_A_LO) * i / (n_a - 1)
        s_c = a / (1.0 - a)
        x = -0.5 * s_c * s_c
        b_c = float(compute_normalised_black(x, s_c))
        log_beta = math.log(b_c) / (j / (n_z - 1)) ** 2
        if log_beta > -700.0:  # the node's solution reproduces its price
            s = table[i, j] * s_c
            assert float(compute_normalised_black(x, s)) == pytest.approx(math.exp(log_beta),
                                                                          rel=1e-11)


def _central_point(s_c: float, position: float) -> tuple[float, float]:
    """``(x, β)`` with inflection point s_c and β at ``position`` in [b_c, b_max/2]."""
    x = -0.5 * s_c * s_c
    b_max, b_c = math.exp(0.5 * x), float(compute_normalised_black(x, s_c))
    return x, b_c + position * (0.5 * b_max - b_c)


def test_central_table_is_exact_at_its_nodes_and_monotone() -> None:
    table = pricing_jit._guess_tables()[pricing_jit._CENTRAL_AT:].reshape(
        pricing_jit._CENTRAL_SHAPE)
    assert np.all(table[:, 0] == 0.0) and np.all(np.diff(table, axis=1) > 0.0)
    n_a, n_c = table.shape
    for i, j in [(0, 1), (0, n_c - 1), (n_a // 2, n_c // 3), (n_a - 1, n_c - 1)]:
        a = pricing_jit._CENTRAL_A_HI * i / (n_a - 1)
        s_c = a / (1.0 - a)
        x, beta = _central_point(s_c, j / (n_c - 1))  # the node's solution reproduces its price
        assert float(compute_normalised_black(x, s_c + table[i, j])) == pytest.approx(beta,
                                                                                     rel=1e-12)


def test_central_guess_is_in_the_bracket_and_one_step_from_the_root() -> None:
    # above the inflection point (β in [b_c, b_max/2]) the tabulated guess is inside the central
    # bracket (s_c, inf) and so close that the first Householder step meets the stopping rule
    # (Newton step ≤ 1e-5 s) everywhere in the table's range (s_c ≤ 32.3, |x| ≤ 523)
    table = pricing_jit._guess_tables()
    last = pricing_jit._CENTRAL_A_HI / (1.0 - pricing_jit._CENTRAL_A_HI)
    steps = []
    for s_c in np.concatenate([[1e-8, 1e-4], np.geomspace(1e-3, last, 41)]):
        for position in np.linspace(0.0, 1.0, 23)[1:]:
            x, beta = _central_point(float(s_c), float(position))
            branch, target, rise, lo, width = pricing_jit._start(x, beta, table)
            assert branch == 3 and lo == pytest.approx(s_c, rel=1e-15)
            guess = pricing_jit._central_guess(lo, rise, width, table)
            assert lo < guess < math.inf
            steps.append(abs(pricing_jit._step(1, x, guess, target)[2]) / guess)
    assert max(steps) <= pricing_jit._CONVERGED and np.median(steps) <= 1e-7


@given(st.floats(min_value=1e-6, max_value=700.0), st.floats(min_value=0.0, max_value=1.0))
@example(271.171875, 0.0)  # converges 5.5 eps below s_c (found by CI)
@example(400.0, 0.0)  # the guess at s_c to rounding once went to a wrong root
def test_kernel_above_the_inflection_point(minus_x: float, u: float) -> None:
    # the region of the central guess, β from b_c (included: a guess at s_c to rounding must
    # not be rejected) to b_max/2, for |x| from 1e-6 to 700 (the table spans |x| ≤ 523; beyond,
    # the tangent at s_c; beyond 708 the central branch's N(h - t) is subnormal, in both
    # backends): the price of the solution is β to a few ulps
    s_c = math.sqrt(2.0 * minus_x)
    x, beta = _central_point(s_c, u)
    got = float(compute_normalised_implied_vol(beta, x, backend="jit"))
    b = float(compute_normalised_black(x, got))
    vega = math.exp(-0.5 * ((x / got) ** 2 + 0.25 * got * got)) / math.sqrt(2.0 * math.pi)
    # not the wrong root above (s = 37.6 for s_c = 28.3 at x = -400); a converged solution may end
    # a few ulps below s_c (5.5 eps at x = -271.17: b's rounding near s_c, 20 eps of b per eps of s)
    assert got >= s_c * (1.0 - 64 * EPS)
    assert abs(b - beta) <= 8 * EPS * beta + 64 * EPS * got * vega  # the price, to a few ulps


forwards = st.floats(min_value=1e-3, max_value=1e6)
years = st.floats(min_value=1 / 8760, max_value=5.0)
vols = st.floats(min_value=0.01, max_value=5.0)
rates = st.floats(min_value=-0.05, max_value=0.2)
moneyness = st.floats(min_value=-12.0, max_value=12.0)  # ln(F/K) in standard deviations
calls = st.booleans()


@given(forwards, moneyness, years, vols, rates, calls)
def test_kernel_round_trip(f: float, m: float, t: float, v: float, r: float, call: bool) -> None:
    k = f * math.exp(-m * v * math.sqrt(t))
    g = compute_black76_greeks(f, k, t, v, r, call)
    price, vega = float(g.price), float(g.vega)
    assume(price > 1e-300 and vega > 0.0)
    cond = price / (v * vega)  # relative condition number of σ given the price
    assume(cond < 1e12)  # else the time value is below the last bit of the price
    iv = float(compute_implied_vol_black76(price, f, k, t, r, call, backend="jit"))
    # as the NumPy solver's property (tests/property): e^{rT} rounding counts r·T·cond
    assert abs(iv / v - 1.0) <= 32 * EPS * max(cond, 1.0) + 4 * EPS * abs(r * t) * cond


@given(st.floats(min_value=1.0, max_value=1e4), st.floats(min_value=-3.0, max_value=3.0),
       st.floats(min_value=0.05, max_value=3.0), st.floats(min_value=0.02, max_value=3.0), calls)
def test_kernel_agrees_with_plain_bisection(f: float, m: float, v: float, t: float,
                                            call: bool) -> None:
    k = f * math.exp(-m * v * math.sqrt(t))
    g = compute_black76_greeks(f, k, t, v, 0.01, call)
    price = float(g.price)
    assume(price / (v * float(g.vega)) < 100.0)  # near the upper bound both are only eps × cond
    got = float(compute_implied_vol_black76(price, f, k, t, 0.01, call, backend="jit"))
    assert got == pytest.approx(compute_implied_vol_ref(price, f, k, t, 0.01, call), rel=1e-10)


@pytest.mark.filterwarnings("ignore:overflow encountered in exp")  # e^{-x/2} of the intrinsic
@given(st.floats(min_value=1e-6, max_value=1000.0), st.floats(min_value=0.0, max_value=1.0))
def test_kernel_below_the_inflection_point(minus_x: float, u: float) -> None:
    # the region of the tabulated guess: s = fraction × s_c below the inflection point s_c, for
    # |x| from 1e-6 to 1000 (the table spans s_c/(1+s_c) in [1e-3, 0.97], |x| in [5e-7, 522];
    # outside it the asymptotic guess takes over); the smallest fraction keeps b above 1e-300
    x = -minus_x
    lowest = max(1e-4, min(0.99, math.sqrt(0.5 * minus_x) / 30.0))
    s = (lowest + u * (0.999 - lowest)) * math.sqrt(2.0 * minus_x)
    beta = float(compute_normalised_black(x, s))
    assume(beta > 1e-300)
    got = float(compute_normalised_implied_vol(beta, x, backend="jit"))
    # below the inflection point cond = b/(s b') < 1: a few ulps of s
    assert got == pytest.approx(s, rel=64 * EPS)


@settings(max_examples=25, deadline=None)
@given(st.integers(min_value=1, max_value=3 * pricing_jit._BLOCK + 7),
       st.integers(min_value=0, max_value=2**32 - 1))
def test_kernel_solves_a_batch_of_several_blocks_as_each_point_alone(n: int, seed: int) -> None:
    # the kernel reuses its per-block scratch space (branch, target, guess, bracket) from block to
    # block: a random batch mixing all three branches, the series and tail evaluations and
    # invalid prices, cut at arbitrary block boundaries, must give what each point gives alone
    # and agree with the scalar bisection reference where the price determines σ well. Not
    # bit for bit: LLVM compiles some per-point loops differently for a batch (contracted
    # multiply-adds), which moves σ by a few ulps × cond.
    rng = np.random.default_rng(seed)
    f = rng.uniform(10.0, 5000.0, n)
    t = np.exp(rng.uniform(math.log(1 / 365), math.log(3.0), n))
    v = rng.uniform(0.05, 3.0, n)
    k = f * np.exp(rng.uniform(-4.0, 4.0, n) * v * np.sqrt(t))
    call = rng.random(n) < 0.5
    g = compute_black76_greeks(f, k, t, v, 0.01, call)
    cond = np.maximum(g.price / (v * g.vega), 1.0)
    price = g.price.copy()
    below = rng.random(n) < 0.05
    price[below] *= -1.0  # below the intrinsic value: NaN, wherever it sits in the batch
    batch = pricing_jit.compute_implied_vol_black76_jit(price, f, k, t, np.full(n, 0.01),
                                                        call.astype(np.float64))
    alone = np.array([float(compute_implied_vol_black76(price[i], f[i], k[i], t[i], 0.01,
                                                        call[i], backend="jit"))
                      for i in range(n)])
    assert np.all(np.isnan(batch[below])) and np.all(np.isnan(alone[below]))
    # cond ≥ 1e9: a time value within a few ulps of the price, σ is rounding noise (or NaN)
    well = ~below & (cond < 1e9)
    assert not np.any(np.isnan(batch[well]) | np.isnan(alone[well]))
    assert np.all(np.abs(batch[well] / alone[well] - 1.0) <= 64 * EPS * cond[well])
    checked = np.flatnonzero(well & (cond < 100.0))
    for i in rng.choice(checked, size=min(8, checked.size), replace=False):
        assert batch[i] == pytest.approx(
            compute_implied_vol_ref(price[i], f[i], k[i], t[i], 0.01, bool(call[i])), rel=1e-10)
