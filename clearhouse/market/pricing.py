"""Black-76 and Black-Scholes prices, Greeks and implied volatility, vectorised with NumPy.

Analytics, not consensus: floats are fine here. Every function broadcasts its array arguments.
Units: prices in quote currency per one unit of underlying (the caller picks the scale), times in
years of 365 days, vols and rates as decimals per year (``0.8`` = 80 %, continuous compounding).

Prices are computed from the normalised Black function ``b(x, s)`` (``x = ln(F/K)``,
``s = σ√T``) on the out-of-the-money side, with three evaluations chosen per point so that no
subtraction of nearly equal terms loses more than a few bits (a series for small ``s``, a scaled
``erfcx`` form in the lower tail, the plain form elsewhere). The implied-volatility solver follows
the shape of Jäckel's "Let's Be Rational" (written from the paper): three branches around the
inflection point ``s_c = √(2|x|)``, each with an objective that is nearly linear in ``s``, solved
by Householder's third-order method inside a bracket that bisection falls back on. Large batches
run the same solver compiled (:mod:`~clearhouse.market.pricing_jit`, see :data:`Backend`).
"""

from __future__ import annotations

import contextlib
import importlib.util
import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt
from scipy.special import erfcx, ndtr, ndtri

from clearhouse.errors import PriceOutsideBounds, PricingError
from clearhouse.types import Timestamp

__all__ = [
    "DAYS_PER_YEAR",
    "JIT_MIN_SIZE",
    "Backend",
    "FloatArray",
    "Greeks",
    "OnError",
    "compute_black76_greeks",
    "compute_black76_price",
    "compute_black_scholes_greeks",
    "compute_black_scholes_price",
    "compute_implied_vol_black76",
    "compute_implied_vol_black_scholes",
    "compute_normalised_black",
    "compute_normalised_implied_vol",
    "compute_year_fraction",
]

FloatArray = npt.NDArray[np.float64]
"""A float64 array (any shape)."""
OnError = Literal["nan", "raise"]
"""What the IV solver does with a price outside the no-arbitrage bounds."""
Backend = Literal["auto", "numpy", "jit"]
"""Which implementation solves implied vols: ``"numpy"`` (this module), ``"jit"`` (the compiled
kernel of :mod:`~clearhouse.market.pricing_jit`, same algorithm and accuracy, several times
faster), or ``"auto"``: the kernel for batches of at least ``JIT_MIN_SIZE`` options when numba is
installed and ``CLEARHOUSE_PRICING_JIT`` is not ``0``, NumPy otherwise (small batches never pay
numba's import and first-use cost)."""
JIT_MIN_SIZE = 4096
"""Smallest batch that ``backend="auto"`` sends to the compiled kernel."""

DAYS_PER_YEAR = 365.0
"""Calendar days per year: ``T`` is in years of 365 days and theta is per calendar day."""
_SQRT_2PI = math.sqrt(2.0 * math.pi)
_SQRT_HALF_PI = math.sqrt(0.5 * math.pi)
_SQRT_HALF = math.sqrt(0.5)
_EPS = float(np.finfo(np.float64).eps)
_SERIES_MAX_S = 0.3  # the small-s series is used for s < 0.3 and |x| < 0.5 (it converges fast there)
_SERIES_MAX_X = 0.5
_MAX_ITERATIONS = 64  # Householder converges in 2-3; bisection never needs more than ~60
_CONVERGED = 1e-5  # relative Newton step that ends the iteration (see _iterate)
# Coefficients of I(h, t) = ∫_0^t cosh(h(t-u)) e^{-u²/2} du = t Σ C[j,m] (ht)^{2j} t^{2m}
_SERIES = np.array([[(-1) ** m * math.factorial(2 * m)
                     / (2**m * math.factorial(m) * math.factorial(2 * j + 2 * m + 1))
                     for m in range(8)] for j in range(7)])
_SERIES_ROWS = [[float(c) for c in row] for row in _SERIES[::-1]]  # Horner order, as floats
_MAX_EXP_ARG = 745.2  # exp(-y) underflows to 0 above this


@dataclass(frozen=True, slots=True)
class Greeks:
    """Price and first-order sensitivities of one option each (arrays broadcast from the inputs).

    Same currency as the price. Delta is to the forward for Black-76 and to the spot for
    Black-Scholes."""

    price: FloatArray
    """Present value (discounted)."""
    delta: FloatArray
    """∂V/∂F (Black-76) or ∂V/∂S (Black-Scholes): currency per one unit of underlying price."""
    gamma: FloatArray
    """∂²V/∂F² or ∂²V/∂S²."""
    vega: FloatArray
    """∂V/∂σ per 1.00 of volatility (divide by 100 for one vol point)."""
    theta: FloatArray
    """Change of value per calendar day that passes (``-∂V/∂T / 365``); Black-76 holds F fixed."""
    rho: FloatArray
    """∂V/∂r per 1.00 of rate (divide by 100 for one percentage point); Black-76 holds F fixed."""


def _floats(value: npt.ArrayLike) -> FloatArray:
    return np.asarray(value, dtype=np.float64)


def _flat(*values: npt.ArrayLike) -> tuple[tuple[int, ...], list[FloatArray]]:
    """Broadcast the inputs together; return the common shape and flat float64 copies."""
    arrays = np.broadcast_arrays(*(_floats(v) for v in values))
    return arrays[0].shape, [np.array(a, dtype=np.float64).ravel() for a in arrays]


def _flat_views(*values: npt.ArrayLike) -> tuple[tuple[int, ...], list[FloatArray]]:
    """:func:`_flat` for read-only use: inputs already contiguous float64 are not copied."""
    arrays = np.broadcast_arrays(*(_floats(v) for v in values))
    return arrays[0].shape, [np.ascontiguousarray(a).ravel() for a in arrays]


def _where(mask: npt.NDArray[np.bool_]) -> slice | npt.NDArray[np.intp]:
    """Indices of ``mask``'s true entries, or the whole slice when all are true: gathering by a
    boolean mask (or by indices) copies, a slice is a view, and most batches are all live."""
    at = np.flatnonzero(mask)
    return slice(None) if at.size == mask.size else at


def _shaped(shape: tuple[int, ...], *values: FloatArray) -> Greeks:
    price, delta, gamma, vega, theta, rho = (np.asarray(v, dtype=np.float64).reshape(shape)
                                             for v in values)
    return Greeks(price, delta, gamma, vega, theta, rho)


def compute_year_fraction(now: Timestamp, expiry: Timestamp) -> float:
    """Years of 365 days from ``now`` to ``expiry`` (negative once expired)."""
    return (expiry - now) / (DAYS_PER_YEAR * 86_400.0)


# --- the normalised Black function -------------------------------------------------------------


def _series_scaled(h: FloatArray, t: FloatArray) -> FloatArray:
    """b / exp(-(h²+t²)/2) for small t and |ht|, from b = n(h)·[2 sinh(ht) Y(h) + 2 I(h, t)]."""
    p, q = (h * t) ** 2, t * t
    total, inner = np.zeros_like(t), np.empty_like(t)
    for row in _SERIES[::-1]:  # Horner in q then in p, in place (no temporaries)
        inner.fill(row[-1])
        for c in row[-2::-1]:
            inner *= q
            inner += c
        total *= p
        total += inner
    mills: FloatArray = _SQRT_HALF_PI * erfcx(-h * _SQRT_HALF)  # Y(h) = N(h)/n(h)
    return np.exp(0.5 * q) * (2.0 * np.sinh(h * t) * mills + 2.0 * t * total) / _SQRT_2PI


def _tail_scaled(h: FloatArray, t: FloatArray) -> FloatArray:
    """b / exp(-(h²+t²)/2) for h + t < 0, by the erfcx form (no underflow, no cancellation of tails)."""
    scaled: FloatArray = 0.5 * (erfcx(-(h + t) * _SQRT_HALF) - erfcx(-(h - t) * _SQRT_HALF))
    return scaled


def _otm_parts(x: FloatArray, s: FloatArray
               ) -> tuple[FloatArray, FloatArray, FloatArray, npt.NDArray[np.bool_]]:
    """``(b, b·e^{(h²+t²)/2}, (h²+t²)/2, plain)`` of the normalised out-of-the-money call
    (x ≤ 0, s > 0), where ``plain`` marks the points computed by the plain formula (there the
    scaled value is not set)."""
    h, t = x / s, 0.5 * s
    with np.errstate(over="ignore"):
        half_sq = 0.5 * (h * h + t * t)  # +inf where b underflows anyway
    is_series = (s < _SERIES_MAX_S) & (-x < _SERIES_MAX_X)
    is_tail = ~is_series & (h + t < 0.0)
    plain = ~(is_series | is_tail)
    # index arrays: gathering by a random boolean mask is several times slower
    series, tail, plain_at = np.flatnonzero(is_series), np.flatnonzero(is_tail), np.flatnonzero(plain)
    scaled = np.ones_like(s)
    scaled[series] = _series_scaled(h[series], t[series])
    scaled[tail] = _tail_scaled(h[tail], t[tail])
    b = np.exp(-half_sq) * scaled
    if plain_at.size:
        xp, hp, tp = x[plain_at], h[plain_at], t[plain_at]
        b[plain_at] = np.exp(0.5 * xp) * ndtr(hp + tp) - np.exp(-0.5 * xp) * ndtr(hp - tp)
    return b, scaled, half_sq, plain


def _otm_price(x: FloatArray, s: FloatArray) -> FloatArray:
    """Normalised out-of-the-money call ``b`` (x ≤ 0, s > 0), accurate to a few ulps."""
    return _otm_parts(x, s)[0]


def _otm_call(x: FloatArray, s: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Normalised out-of-the-money call (x ≤ 0, s > 0): ``(b, ln b, b'/b)``, accurate to a few ulps
    in each of ``b`` and ``ln b`` even where ``b`` underflows (then ``ln b`` is still finite)."""
    b, scaled, half_sq, plain = _otm_parts(x, s)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        log_b = np.where(plain, np.log(b), np.log(scaled) - half_sq)
        ratio = np.where(plain, np.exp(-half_sq) / (_SQRT_2PI * b), 1.0 / (_SQRT_2PI * scaled))
    return b, log_b, ratio


def _otm_gap(x: FloatArray, s: FloatArray) -> FloatArray:
    """``e^{x/2} - b(x, s)`` for x ≤ 0: the distance to the upper bound, as a sum of positives."""
    h, t = x / s, 0.5 * s
    gap: FloatArray = np.exp(0.5 * x) * ndtr(-(h + t)) + np.exp(-0.5 * x) * ndtr(h - t)
    return gap


def compute_normalised_black(x: npt.ArrayLike, s: npt.ArrayLike, is_call: npt.ArrayLike = True
                             ) -> FloatArray:
    """``b = Black(F, K, σ, T) / √(FK)`` undiscounted, with ``x = ln(F/K)``, ``s = σ√T`` (≥ 0)."""
    shape, (x_, s_, call) = _flat(x, s, is_call)
    theta = np.where(call != 0.0, 1.0, -1.0)
    intrinsic = np.maximum(theta * (np.exp(0.5 * x_) - np.exp(-0.5 * x_)), 0.0)
    out: FloatArray = intrinsic.copy()
    live = _where(s_ > 0.0)
    out[live] += _otm_price(-np.abs(x_[live]), s_[live])
    out[s_ < 0.0] = np.nan
    return out.reshape(shape)


# --- prices and Greeks -------------------------------------------------------------------------


def compute_black76_price(forward: npt.ArrayLike, strike: npt.ArrayLike, years: npt.ArrayLike,
                          vol: npt.ArrayLike, rate: npt.ArrayLike = 0.0,
                          is_call: npt.ArrayLike = True) -> FloatArray:
    """Black-76 present value of a European option on a forward ``F`` (cash-settled at ``T``):
    ``e^{-rT} (θF N(θd₁) - θK N(θd₂))``, computed without cancellation; NaN outside the domain.
    One option given as plain Python numbers takes a scalar path (the same evaluation, a few
    microseconds instead of a NumPy pass of ~150 µs: a market maker pricing an RFQ's legs)."""
    values = (forward, strike, years, vol, rate, is_call)
    if all(type(value) in _SCALARS for value in values):
        with contextlib.suppress(OverflowError):  # beyond float range: NumPy's inf/NaN below
            return np.asarray(_black76_price_scalar(*values))  # type: ignore[arg-type]
    shape, (f, k, T, v, r, call) = _flat(forward, strike, years, vol, rate, is_call)
    return _black76_price(f, k, T, v, r, np.where(call != 0.0, 1.0, -1.0)).reshape(shape)


_SCALARS = (float, int, bool)


def _black76_price_scalar(f: float, k: float, T: float, v: float, r: float, is_call: float
                          ) -> float:
    """:func:`_black76_price` for one option in ``math``: the same branches and formulas."""
    if math.isnan(f + k + T + v + r) or T < 0.0 or v < 0.0 or f <= 0.0 or k <= 0.0:
        return math.nan
    undiscounted = max((f - k) if is_call else (k - f), 0.0)
    if T > 0.0 and v > 0.0:
        undiscounted += math.sqrt(f * k) * _otm_price_scalar(-abs(math.log(f / k)),
                                                             v * math.sqrt(T))
    return math.exp(-r * T) * undiscounted


def _otm_price_scalar(x: float, s: float) -> float:
    """:func:`_otm_price` for one point (x ≤ 0, s > 0), branch by branch as :func:`_otm_parts`."""
    h, t = x / s, 0.5 * s
    if s < _SERIES_MAX_S and -x < _SERIES_MAX_X:
        p, q = (h * t) ** 2, t * t
        total = 0.0
        for row in _SERIES_ROWS:
            inner = row[-1]
            for c in row[-2::-1]:
                inner = inner * q + c
            total = total * p + inner
        mills = _SQRT_HALF_PI * float(erfcx(-h * _SQRT_HALF))
        scaled = math.exp(0.5 * q) * (2.0 * math.sinh(h * t) * mills + 2.0 * t * total) / _SQRT_2PI
    elif h + t < 0.0:
        scaled = 0.5 * float(erfcx(-(h + t) * _SQRT_HALF) - erfcx(-(h - t) * _SQRT_HALF))
    else:
        return float(math.exp(0.5 * x) * ndtr(h + t) - math.exp(-0.5 * x) * ndtr(h - t))
    half_sq = 0.5 * (h * h + t * t)
    return math.exp(-half_sq) * scaled if half_sq < _MAX_EXP_ARG else 0.0


def _black76_price(f: FloatArray, k: FloatArray, T: FloatArray, v: FloatArray, r: FloatArray,
                   theta: FloatArray) -> FloatArray:
    """:func:`compute_black76_price` on flat arrays (``theta`` = +1 call, -1 put)."""
    undiscounted = np.maximum(theta * (f - k), 0.0)
    live = _where((T > 0.0) & (v > 0.0) & (f > 0.0) & (k > 0.0))
    x, s = np.log(f[live] / k[live]), v[live] * np.sqrt(T[live])
    undiscounted[live] += np.sqrt(f[live] * k[live]) * _otm_price(-np.abs(x), s)
    bad = (T < 0.0) | (v < 0.0) | (f <= 0.0) | (k <= 0.0) | np.isnan(f + k + T + v + r)
    price: FloatArray = np.where(bad, np.nan, np.exp(-r * np.maximum(T, 0.0)) * undiscounted)
    return price


def compute_black_scholes_price(spot: npt.ArrayLike, strike: npt.ArrayLike, years: npt.ArrayLike,
                                vol: npt.ArrayLike, rate: npt.ArrayLike = 0.0,
                                dividend: npt.ArrayLike = 0.0, is_call: npt.ArrayLike = True
                                ) -> FloatArray:
    """Black-Scholes(-Merton) value: Black-76 on the forward ``S e^{(r-q)T}`` (``q`` = dividend or
    foreign/borrow yield)."""
    T = _floats(years)
    forward = _floats(spot) * np.exp((_floats(rate) - _floats(dividend)) * T)
    return compute_black76_price(forward, strike, T, vol, rate, is_call)


def _d1_d2(f: FloatArray, k: FloatArray, T: FloatArray, v: FloatArray
           ) -> tuple[FloatArray, FloatArray, FloatArray]:
    s = v * np.sqrt(T)
    with np.errstate(divide="ignore", invalid="ignore"):
        d1 = np.log(f / k) / s + 0.5 * s
    return d1, d1 - s, s


def compute_black76_greeks(forward: npt.ArrayLike, strike: npt.ArrayLike, years: npt.ArrayLike,
                           vol: npt.ArrayLike, rate: npt.ArrayLike = 0.0,
                           is_call: npt.ArrayLike = True) -> Greeks:
    """Black-76 price and Greeks (delta and gamma to the forward; see :class:`Greeks` for units)."""
    shape, (f, k, T, v, r, call) = _flat(forward, strike, years, vol, rate, is_call)
    theta_sign = np.where(call != 0.0, 1.0, -1.0)
    price = _black76_price(f, k, T, v, r, theta_sign)
    d1, _, s = _d1_d2(f, k, T, v)
    df = np.exp(-r * T)
    density = df * np.exp(-0.5 * d1 * d1) / _SQRT_2PI
    delta = theta_sign * df * ndtr(theta_sign * d1)
    with np.errstate(divide="ignore", invalid="ignore"):
        gamma = density / (f * s)
        decay = -f * density * v / (2.0 * np.sqrt(T)) + r * price
    return _shaped(shape, price, delta, gamma, f * density * np.sqrt(T), decay / DAYS_PER_YEAR,
                   -T * price)


def compute_black_scholes_greeks(spot: npt.ArrayLike, strike: npt.ArrayLike, years: npt.ArrayLike,
                                 vol: npt.ArrayLike, rate: npt.ArrayLike = 0.0,
                                 dividend: npt.ArrayLike = 0.0, is_call: npt.ArrayLike = True
                                 ) -> Greeks:
    """Black-Scholes-Merton price and Greeks to the spot (see :class:`Greeks` for units)."""
    shape, (S, k, T, v, r, q, call) = _flat(spot, strike, years, vol, rate, dividend, is_call)
    price = compute_black_scholes_price(S, k, T, v, r, q, call)
    w = np.where(call != 0.0, 1.0, -1.0)
    d1, d2, s = _d1_d2(S * np.exp((r - q) * T), k, T, v)
    carry, df = np.exp(-q * T), np.exp(-r * T)
    density = carry * np.exp(-0.5 * d1 * d1) / _SQRT_2PI
    with np.errstate(divide="ignore", invalid="ignore"):
        gamma = density / (S * s)
        decay = (-S * density * v / (2.0 * np.sqrt(T)) - w * r * k * df * ndtr(w * d2)
                 + w * q * S * carry * ndtr(w * d1))
    return _shaped(shape, price, w * carry * ndtr(w * d1), gamma, S * density * np.sqrt(T),
                   decay / DAYS_PER_YEAR, w * k * T * df * ndtr(w * d2))


# --- implied volatility ------------------------------------------------------------------------


def _householder(f: FloatArray, f1: FloatArray, f2: FloatArray, f3: FloatArray
                 ) -> tuple[FloatArray, FloatArray]:
    """Householder's third-order step for a root of f (falls back to Newton if it turns around),
    and the Newton step ``-f/f'`` (the first-order distance to the root: the convergence test)."""
    nu = -f / f1
    h2, h3 = f2 / f1, f3 / f1
    step = nu * (1.0 + 0.5 * h2 * nu) / (1.0 + nu * (h2 + h3 * nu / 6.0))
    return np.where(np.isfinite(step) & (step * nu > 0.0), step, nu), nu


def _curvature(x: FloatArray, s: FloatArray) -> tuple[FloatArray, FloatArray]:
    """``b''/b'`` and its derivative in s (b' = exp(-(x²/s² + s²/4)/2)/√(2π))."""
    xx = x * x
    return xx / s**3 - 0.25 * s, -3.0 * xx / s**4 - 0.25


def _log_derivatives(lam: FloatArray, a: FloatArray, a1: FloatArray
                     ) -> tuple[FloatArray, FloatArray, FloatArray]:
    """First three derivatives of ln g when g'/g = lam, g''/g' = a and (g''/g')' = a1."""
    lam2 = lam * lam
    return lam, lam * a - lam2, lam * (a * a + a1) - 3.0 * lam2 * a + 2.0 * lam2 * lam


def _lower_step(x: FloatArray, s: FloatArray, log_beta: FloatArray
                ) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Below the inflection point: Householder on ``1/ln b - 1/ln β`` (nearly linear in s)."""
    _, log_b, lam = _otm_call(x, s)
    l1, l2, l3 = _log_derivatives(lam, *_curvature(x, s))
    inv = 1.0 / log_b
    inv2 = inv * inv
    step, newton = _householder(inv - 1.0 / log_beta, -l1 * inv2,
                                (2.0 * l1 * l1 * inv - l2) * inv2,
                                (-l3 + 6.0 * l1 * l2 * inv - 6.0 * l1**3 * inv2) * inv2)
    return log_b - log_beta, step, newton


def _central_step(x: FloatArray, s: FloatArray, beta: FloatArray
                  ) -> tuple[FloatArray, FloatArray, FloatArray]:
    """From the inflection point to half the upper bound: Householder on ``b - β``."""
    b = _otm_price(x, s)
    vega = np.exp(-0.5 * (x * x / (s * s) + 0.25 * s * s)) / _SQRT_2PI
    a, a1 = _curvature(x, s)
    return (b - beta, *_householder(b - beta, vega, vega * a, vega * (a * a + a1)))


def _upper_step(x: FloatArray, s: FloatArray, log_gap: FloatArray
                ) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Near the upper bound: Householder on ``ln(b_max - b) - ln(b_max - β)``."""
    gap = _otm_gap(x, s)
    vega = np.exp(-0.5 * (x * x / (s * s) + 0.25 * s * s)) / _SQRT_2PI
    u1, u2, u3 = _log_derivatives(-vega / gap, *_curvature(x, s))
    log_g = np.log(gap)
    return (log_gap - log_g, *_householder(log_g - log_gap, u1, u2, u3))


_Step = Callable[[FloatArray, FloatArray, FloatArray],
                 tuple[FloatArray, FloatArray, FloatArray]]


def _iterate(step_fn: _Step, x: FloatArray, target: FloatArray, s: FloatArray, lo: FloatArray,
             hi: FloatArray) -> FloatArray:
    """Safeguarded iterations on the still-active points: a step leaving the bracket [lo, hi]
    (which only shrinks) is replaced by bisection; a point stops once its Newton step is below
    ``_CONVERGED``·s: the Householder step taken then leaves an error of order the fourth power
    of that (far below an ulp). The Newton step, not the Householder one, is the test: near a
    bad guess the Householder denominator can shrink a step that is still far from the root."""
    s = np.where(np.isfinite(s) & (s > lo) & (s <= hi), s,
                 np.where(np.isfinite(hi), 0.5 * (lo + hi), 2.0 * lo))
    out = s  # finished points are written here; the working arrays shrink to the active ones
    at = np.arange(x.size)
    for _ in range(_MAX_ITERATIONS):
        above, step, newton = step_fn(x, s, target)
        lo = np.where(above < 0.0, s, lo)
        hi = np.where(above > 0.0, s, hi)
        new = s + step
        converged = np.abs(newton) <= _CONVERGED * s
        bisect = np.where(np.isfinite(hi), 0.5 * (lo + hi), 2.0 * s)
        s = np.where(((new > lo) & (new < hi)) | converged, new, bisect)
        done = converged | (above == 0.0) | (hi - lo <= 4.0 * _EPS * lo)
        out[at] = s
        keep = np.flatnonzero(~done)
        if keep.size == 0:
            break
        at, x, s, target, lo, hi = at[keep], x[keep], s[keep], target[keep], lo[keep], hi[keep]
    return out


def _lower_guess(x: FloatArray, log_beta: FloatArray, s_c: FloatArray) -> FloatArray:
    """Invert the lower-tail asymptote ``ln b ≈ -x²/(2s²) + ln(s³/(√(2π) x²))`` (s ≪ s_c) with
    one fixed-point step: more steps cost more than the Householder iterations they save."""
    guess = -x / np.sqrt(-2.0 * log_beta)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        correction = np.log(guess**3 / (_SQRT_2PI * x * x))
        guess = -x / np.sqrt(np.maximum(2.0 * (correction - log_beta), 1e-300))
    return np.where(guess < s_c, guess, 0.5 * s_c)


def _solve_otm(x: FloatArray, beta: FloatArray) -> FloatArray:
    """``s`` with ``b(x, s) = β`` for x ≤ 0 and 0 < β < e^{x/2} (1-D arrays): three branches split
    at the inflection point ``s_c = √(2|x|)`` and at half the upper bound."""
    s_c = np.sqrt(-2.0 * x)
    b_max = np.exp(0.5 * x)
    b_c = 0.5 * b_max - ndtr(-s_c) / b_max  # b(x, s_c): h = -t there
    s = np.empty_like(x)
    is_lower = beta < b_c
    is_upper = ~is_lower & (beta > 0.5 * b_max)
    lower, upper = np.flatnonzero(is_lower), np.flatnonzero(is_upper)
    central = np.flatnonzero(~(is_lower | is_upper))
    if lower.size:
        xl, log_beta, cl = x[lower], np.log(beta[lower]), s_c[lower]
        s[lower] = _iterate(_lower_step, xl, log_beta, _lower_guess(xl, log_beta, cl),
                            np.zeros_like(xl), cl.copy())
    if central.size:
        xc, bc, cc = x[central], beta[central], s_c[central]
        guess = cc + (bc - b_c[central]) * _SQRT_2PI / b_max[central]  # tangent at s_c
        # strictly inside the bracket (s_c, ∞): at β = b_c to rounding the tangent gives s_c, which
        # _iterate would replace by 2 s_c, far off where |x| > 300
        guess = np.maximum(guess, cc * (1.0 + 4.0 * _EPS))
        s[central] = _iterate(_central_step, xc, bc, guess, cc.copy(), np.full_like(xc, np.inf))
    if upper.size:
        xu, gap = x[upper], b_max[upper] - beta[upper]  # exact: β ≥ b_max/2 (Sterbenz)
        guess = -2.0 * ndtri(gap / (2.0 * np.cosh(0.5 * xu)))  # exact as s → ∞ and at x = 0
        s[upper] = _iterate(_upper_step, xu, np.log(gap), guess, s_c[upper].copy(),
                            np.full_like(xu, np.inf))
    return s


def _use_jit(backend: Backend, size: int) -> bool:
    """Whether to solve with the compiled kernel (:data:`Backend` says when)."""
    if backend == "numpy":
        return False
    installed = importlib.util.find_spec("numba") is not None
    if backend == "jit":
        if not installed:
            raise PricingError("backend='jit' needs numba, which is not installed",
                               field="backend")
        return True
    if backend != "auto":
        raise PricingError(f"backend must be 'auto', 'numpy' or 'jit', not {backend!r}",
                           field="backend")
    return installed and size >= JIT_MIN_SIZE and os.environ.get("CLEARHOUSE_PRICING_JIT") != "0"


def compute_normalised_implied_vol(beta: npt.ArrayLike, x: npt.ArrayLike,
                                   is_call: npt.ArrayLike = True, backend: Backend = "auto"
                                   ) -> FloatArray:
    """``s = σ√T`` such that ``compute_normalised_black(x, s, is_call) = beta``; ``0`` at the
    intrinsic value, NaN below it or at/above the upper bound (``e^{x/2}`` call, ``e^{-x/2}`` put)."""
    shape, (b, x_, call) = _flat(beta, x, is_call)
    theta = np.where(call != 0.0, 1.0, -1.0)
    intrinsic = np.maximum(theta * (np.exp(0.5 * x_) - np.exp(-0.5 * x_)), 0.0)
    if _use_jit(backend, b.size):
        from clearhouse.market.pricing_jit import compute_normalised_implied_vol_jit
        return compute_normalised_implied_vol_jit(b - intrinsic, -np.abs(x_)).reshape(shape)
    return _solve_normalised(b - intrinsic, -np.abs(x_)).reshape(shape)


def _solve_normalised(beta_otm: FloatArray, x_otm: FloatArray) -> FloatArray:
    out = np.where(beta_otm == 0.0, 0.0, np.nan)
    with np.errstate(invalid="ignore"):
        live = np.flatnonzero((beta_otm > 0.0) & (beta_otm < np.exp(0.5 * x_otm)))
    if live.size:
        out.ravel()[live] = _solve_otm(x_otm.ravel()[live], beta_otm.ravel()[live])
    return out


def compute_implied_vol_black76(price: npt.ArrayLike, forward: npt.ArrayLike,
                                strike: npt.ArrayLike, years: npt.ArrayLike,
                                rate: npt.ArrayLike = 0.0, is_call: npt.ArrayLike = True,
                                on_error: OnError = "nan", backend: Backend = "auto"
                                ) -> FloatArray:
    """Black-76 implied volatility (per year) of discounted ``price``.

    Exact to a few ulps of ``s = σ√T`` wherever the price determines σ that well (the attainable
    accuracy is the price's relative rounding divided by the price's elasticity to σ). A price at
    the intrinsic value gives 0; one below it, at or above the upper bound (``F e^{-rT}`` call,
    ``K e^{-rT}`` put), or with T ≤ 0 gives NaN, or :class:`PriceOutsideBounds` if
    ``on_error="raise"``. ``backend`` picks the implementation (:data:`Backend`)."""
    shape, (p, f, k, T, r, call) = _flat_views(price, forward, strike, years, rate, is_call)
    if on_error not in ("nan", "raise"):
        raise PricingError(f"on_error must be 'nan' or 'raise', not {on_error!r}", field="on_error")
    if _use_jit(backend, p.size):
        from clearhouse.market.pricing_jit import compute_implied_vol_black76_jit
        vol = compute_implied_vol_black76_jit(p, f, k, T, r, call)
    else:
        vol = _implied_vol_black76(p, f, k, T, r, call)
    if on_error == "raise" and np.any(np.isnan(vol)):
        bad = int(np.flatnonzero(np.isnan(vol))[0])
        raise PriceOutsideBounds(f"{np.count_nonzero(np.isnan(vol))} price(s) outside the "
                                 f"no-arbitrage bounds, first at index {bad}", field="price",
                                 index=bad)
    return vol.reshape(shape)


def _implied_vol_black76(p: FloatArray, f: FloatArray, k: FloatArray, T: FloatArray,
                         r: FloatArray, call: FloatArray) -> FloatArray:
    """:func:`compute_implied_vol_black76` on flat arrays, in NumPy."""
    theta = np.where(call != 0.0, 1.0, -1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        otm_price = p * np.exp(r * T) - np.maximum(theta * (f - k), 0.0)
        beta = np.where((T > 0.0) & (f > 0.0) & (k > 0.0), otm_price / np.sqrt(f * k), np.nan)
        s = _solve_normalised(beta, -np.abs(np.log(f / k)))
        vol: FloatArray = s / np.sqrt(T)
    return vol


def compute_implied_vol_black_scholes(price: npt.ArrayLike, spot: npt.ArrayLike,
                                      strike: npt.ArrayLike, years: npt.ArrayLike,
                                      rate: npt.ArrayLike = 0.0, dividend: npt.ArrayLike = 0.0,
                                      is_call: npt.ArrayLike = True, on_error: OnError = "nan",
                                      backend: Backend = "auto") -> FloatArray:
    """Black-Scholes implied volatility: the Black-76 one on the forward ``S e^{(r-q)T}``."""
    T = _floats(years)
    forward = _floats(spot) * np.exp((_floats(rate) - _floats(dividend)) * T)
    return compute_implied_vol_black76(price, forward, strike, T, rate, is_call, on_error,
                                       backend)
