"""Compiled (numba) implied-volatility kernel behind ``backend="jit"`` of
:func:`~clearhouse.market.pricing.compute_implied_vol_black76`: one fused loop, no temporaries.

The solver is the NumPy one of :mod:`~clearhouse.market.pricing` (same three branches around the
inflection point, same objectives, same safeguarded third-order Householder iteration, same
stopping rule) with one addition: below the inflection point, and above it up to ``b_max/2``, the
initial guess is interpolated in a table of exact solutions (:func:`_fill_lower_table`,
:func:`_fill_central_table`, built by this solver on first use), close enough (median 2e-8 and
1e-8) that one iteration finishes nearly every point. Points go through the solver
in blocks of ``_BLOCK``, pass by pass, so the processor overlaps independent points. Why numba is
a runtime dependency, its cold-start cost and the fallback: ``docs/decisions/0007-numba-implied-vol-kernel.md``.

``erfcx`` is W. J. Cody's rational Chebyshev approximation ("Rational Chebyshev approximations for
the error function", Math. Comp. 23, 1969; coefficients as in his SPECFUN ``CALERF``); ``e^v`` on
its small arguments and ``sinh``, ``e^v`` in the small-s series are Taylor polynomials (no libm
call, within 1 ulp). The per-point helpers are inlined into the passes (:func:`_inline`). Compiled
with ``cache=True`` (machine code cached in ``__pycache__``) and ``error_model="numpy"`` (IEEE
division: ``1/0 = inf``, no exceptions). Only imported by :mod:`~clearhouse.market.pricing` when
numba is installed.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, TypeVar, cast

import numba
import numpy as np
import numpy.typing as npt

__all__ = ["compute_implied_vol_black76_jit", "compute_normalised_implied_vol_jit"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


_F = TypeVar("_F", bound=Callable[..., Any])


def _jit(fn: _F) -> _F:
    """Compile ``fn`` to machine code on first call (cached on disk across processes); typed as
    ``fn`` itself for mypy: the dispatcher takes and returns the same values.

    Of numba's ``fastmath`` flags only two, which keep IEEE semantics for NaN, inf and signed
    zeros and never reorder sums: ``contract`` (fused multiply-add) and ``arcp`` (``a / b`` may
    become ``a * (1/b)``: one more rounding, ≤ 1 ulp, in a quotient; divisions by the module's
    constants become multiplications). Neither moves the accuracy figures of the benchmark grid
    (max error 7.0e-14 where cond ≤ 1e3, ≤ 13 eps × cond everywhere); ``arcp`` saves ~3 % of the
    time. Not ``parallel`` (the goal is per core) nor the reassociation/finite-math flags."""
    return cast(_F, numba.njit(cache=True, nogil=True, error_model="numpy",
                               fastmath={"contract", "arcp"})(fn))


def _inline(fn: _F) -> _F:
    """:func:`_jit` for a per-point helper, inlined into its callers by LLVM (``forceinline``).
    Left to LLVM's own judgement, most helpers stayed separate functions behind numba's calling
    convention (status code, results through memory, no scheduling across the call), and
    ``_start``, which passed the table on, incremented and decremented its reference count (two
    atomic instructions) for every point: inlined, ~23 % less time per option."""
    return cast(_F, numba.njit(cache=True, nogil=True, error_model="numpy", forceinline=True,
                               fastmath={"contract", "arcp"})(fn))


_SQRT_2PI = math.sqrt(2.0 * math.pi)
_SQRT_HALF_PI = math.sqrt(0.5 * math.pi)
_SQRT_HALF = math.sqrt(0.5)
_INV_SQRT_PI = 1.0 / math.sqrt(math.pi)
_EPS = float(np.finfo(np.float64).eps)
_SERIES_MAX_S = 0.3  # as in pricing.py: the small-s series for s < 0.3 and |x| < 0.5
_SERIES_MAX_X = 0.5
_MAX_ITERATIONS = 64
_BLOCK = 256  # points solved pass by pass together (a few KiB of state: stays in L1)
_TABLE_A_LO, _TABLE_A_HI = 1e-3, 0.97  # the guess table spans s_c/(1+s_c) here (s_c ≤ 32)
_TABLE_SHAPE = (128, 128)  # 128 KiB; bicubic: 99.9 % of guesses within 4e-5 of the root
_CENTRAL_A_HI = 0.97  # the central-guess table spans s_c/(1+s_c) in [0, 0.97] (rows) ...
_CENTRAL_SHAPE = (64, 32)  # ... and the position of β/b_max in [b_c/b_max, 1/2] (columns): 16 KiB
_CENTRAL_AT = _TABLE_SHAPE[0] * _TABLE_SHAPE[1]  # where it starts in the flat array of tables
_CONVERGED = 1e-5  # relative Newton step that ends the iteration (pricing._iterate explains it)
# pricing._SERIES truncated to the terms p^j q^m with j + m ≤ 7: with p = (x/2)² < 1/16 and
# q = s²/4 < 1/44 there, the first dropped term is below 1e-19 of the sum
_SERIES_DEGREE = 7
_SERIES = np.array([[(-1) ** m * math.factorial(2 * m)
                     / (2**m * math.factorial(m) * math.factorial(2 * j + 2 * m + 1))
                     for m in range(8)] for j in range(8)])

_EXP_TAYLOR = tuple(1.0 / math.factorial(k) for k in range(13))  # 1/k!, for _exp_small

# Cody (1969): erf(z) = z A(z²)/B(z²) below 0.46875; erfcx(z) = C(z)/D(z) on [0.46875, 4];
# erfcx(z) = (1/√π - z⁻² P(z⁻²)/Q(z⁻²))/z above 4.
_CODY_A = (3.16112374387056560, 1.13864154151050156e2, 3.77485237685302021e2,
            3.20937758913846947e3, 1.85777706184603153e-1)
_CODY_B = (2.36012909523441209e1, 2.44024637934444173e2, 1.28261652607737228e3,
            2.84423683343917062e3)
_CODY_C = (5.64188496988670089e-1, 8.88314979438837594, 6.61191906371416295e1,
            2.98635138197400131e2, 8.81952221241769090e2, 1.71204761263407058e3,
            2.05107837782607147e3, 1.23033935479799725e3, 2.15311535474403846e-8)
_CODY_D = (1.57449261107098347e1, 1.17693950891312499e2, 5.37181101862009858e2,
            1.62138957456669019e3, 3.29079923573345963e3, 4.36261909014324716e3,
            3.43936767414372164e3, 1.23033935480374942e3)
_CODY_P = (3.05326634961232344e-1, 3.60344899949804439e-1, 1.25781726111229246e-1,
            1.60837851487422766e-2, 6.58749161529837803e-4, 1.63153871373020978e-2)
_CODY_Q = (2.56852019228982242, 1.87295284992346047, 5.27905102951428412e-1,
            6.05183413124413191e-2, 2.33520497626869185e-3)


@_inline
def _sinh_small(y: float) -> float:
    """``sinh y`` for ``|y| ≤ 1/4`` (the series' ``ht = x/2``): Taylor to degree 13, the first
    dropped term below 3e-21 of the sum; no libm call."""
    y2 = y * y
    return y * (1.0 + y2 * (1.0 / 6.0 + y2 * (1.0 / 120.0 + y2 * (1.0 / 5040.0 + y2 * (
        1.0 / 362880.0 + y2 * (1.0 / 39916800.0 + y2 * (1.0 / 6227020800.0)))))))


@_inline
def _exp_small(v: float) -> float:
    """``e^v`` for ``0 ≤ v ≤ 0.22`` (``z²`` below Cody's first break point 0.46875, and the
    series' ``s²/8``): Taylor to degree 12, the first dropped term below 5e-19 of the sum, within
    1 ulp; no libm call."""
    total = _EXP_TAYLOR[12]
    for k in range(11, -1, -1):
        total = total * v + _EXP_TAYLOR[k]
    return total


@_inline
def _erfcx(z: float) -> float:
    """``e^{z²} erfc(z)`` to a few ulps (Cody's rational approximations); libm's erfc times
    ``e^{z²}`` below -0.46875 (never needed by the solver; inf below -26.6)."""
    if z < -0.46875:
        return math.exp(z * z) * math.erfc(z)
    if z < 0.46875:  # erfc = 1 - erf, erf(z) = z A(z²)/B(z²)
        y = z * z
        num, den = _CODY_A[4] * y, y
        for i in range(3):
            num = (num + _CODY_A[i]) * y
            den = (den + _CODY_B[i]) * y
        return _exp_small(y) * (1.0 - z * (num + _CODY_A[3]) / (den + _CODY_B[3]))
    if z <= 4.0:
        num, den = _CODY_C[8] * z, z
        for i in range(7):
            num = (num + _CODY_C[i]) * z
            den = (den + _CODY_D[i]) * z
        return (num + _CODY_C[7]) / (den + _CODY_D[7])
    y = 1.0 / (z * z)
    num, den = _CODY_P[5] * y, y
    for i in range(4):
        num = (num + _CODY_P[i]) * y
        den = (den + _CODY_Q[i]) * y
    return (_INV_SQRT_PI - y * (num + _CODY_P[4]) / (den + _CODY_Q[4])) / z


@_inline
def _ndtr(z: float) -> float:
    """Standard normal CDF ``N(z)``."""
    return 0.5 * math.erfc(-z * _SQRT_HALF)


@_inline
def _ndtri(q: float) -> float:
    """``N⁻¹(q)`` for 0 < q ≤ 1/2: Abramowitz & Stegun 26.2.23 (|error| < 4.5e-4) refined by two
    Halley steps on ``N(z) = q`` (cubic convergence: ~1e-16 after the second)."""
    r = math.sqrt(-2.0 * math.log(q))
    z = -(r - (2.515517 + r * (0.802853 + r * 0.010328))
          / (1.0 + r * (1.432788 + r * (0.189269 + r * 0.001308))))
    for _ in range(2):
        u = (_ndtr(z) - q) * _SQRT_2PI * math.exp(0.5 * z * z)
        z -= u / (1.0 + 0.5 * z * u)
    return z


# --- the normalised Black function (x ≤ 0, s > 0), as pricing._otm_parts -------------------------


@_inline
def _series_scaled(h: float, t: float) -> float:
    """b / exp(-(h²+t²)/2) for small t and |ht| (pricing._series_scaled)."""
    p, q = (h * t) ** 2, t * t
    total = 0.0
    for j in range(_SERIES_DEGREE, -1, -1):  # the terms of total degree ≤ 7 in (p, q)
        inner = _SERIES[j, _SERIES_DEGREE - j]
        for m in range(_SERIES_DEGREE - j - 1, -1, -1):
            inner = inner * q + _SERIES[j, m]
        total = total * p + inner
    mills = _SQRT_HALF_PI * _erfcx(-h * _SQRT_HALF)
    return _exp_small(0.5 * q) * (2.0 * _sinh_small(h * t) * mills + 2.0 * t * total) / _SQRT_2PI


@_inline
def _otm_call(x: float, s: float) -> tuple[float, float, float, float]:
    """``(b, ln b, b'/b, b/b')`` of the normalised out-of-the-money call, a few ulps each."""
    h, t = x / s, 0.5 * s
    half_sq = 0.5 * (h * h + t * t)
    if s < _SERIES_MAX_S and -x < _SERIES_MAX_X:
        scaled = _series_scaled(h, t)
    elif h + t < 0.0:
        scaled = 0.5 * (_erfcx(-(h + t) * _SQRT_HALF) - _erfcx(-(h - t) * _SQRT_HALF))
    else:
        b = math.exp(0.5 * x) * _ndtr(h + t) - math.exp(-0.5 * x) * _ndtr(h - t)
        density = math.exp(-half_sq)
        return b, math.log(b), density / (_SQRT_2PI * b), _SQRT_2PI * b / density
    return (math.exp(-half_sq) * scaled, math.log(scaled) - half_sq, 1.0 / (_SQRT_2PI * scaled),
            _SQRT_2PI * scaled)


# --- one iteration per branch, as pricing._lower_step / _central_step / _upper_step ---------------


@_inline
def _householder_step(nu: float, h2: float, h3: float) -> float:
    """Householder's third-order step from the Newton step ``nu = -f/f′``, ``h2 = f″/f′`` and
    ``h3 = f‴/f′``; the Newton step if that one is not finite or turns around."""
    step = nu * (1.0 + 0.5 * h2 * nu) / (1.0 + nu * (h2 + h3 * nu / 6.0))
    return step if math.isfinite(step) and step * nu > 0.0 else nu


@_inline
def _householder(f: float, f1: float, f2: float, f3: float) -> tuple[float, float]:
    """Householder's third-order step (Newton if it turns around) and the Newton step."""
    inv_f1 = 1.0 / f1
    nu = -f * inv_f1
    return _householder_step(nu, f2 * inv_f1, f3 * inv_f1), nu


@_inline
def _curvature(x: float, s: float) -> tuple[float, float]:
    """``b''/b'`` and its derivative in s."""
    xx = x * x
    inv_s2 = 1.0 / (s * s)
    return xx * inv_s2 / s - 0.25 * s, -3.0 * xx * inv_s2 * inv_s2 - 0.25


@_inline
def _log_derivatives(lam: float, a: float, a1: float) -> tuple[float, float, float]:
    """First three derivatives of ln g when g'/g = lam, g''/g' = a and (g''/g')' = a1."""
    lam2 = lam * lam
    return lam, lam * a - lam2, lam * (a * a + a1) - 3.0 * lam2 * a + 2.0 * lam2 * lam


@_inline
def _lower_step(x: float, s: float, log_beta: float) -> tuple[float, float, float]:
    """Householder on ``f = 1/ln b - 1/ln β``: ``(sign of b - β, step, Newton step)``. With
    ``L = ln b``, ``λ = L′ = b′/b``, ``u = 1/L`` and ``a = b″/b′``, the ratios that the step
    needs reduce to ``-f/f′ = L (ln β - L) / (λ ln β)``, ``f″/f′ = a - λ(1 + 2u)`` and
    ``f‴/f′ = a² + a′ - 3λa(1 + 2u) + λ²(2 + 6u + 6u²)``: no division by ``f′`` (``1/λ`` comes
    with λ from :func:`_otm_call`; ``1/ln β`` does not depend on s)."""
    _, log_b, lam, inv_lam = _otm_call(x, s)
    a, a1 = _curvature(x, s)
    u = 1.0 / log_b
    nu = (log_beta - log_b) * (log_b / log_beta) * inv_lam
    w = 1.0 + 2.0 * u
    h2 = a - lam * w
    h3 = a * a + a1 - 3.0 * lam * a * w + lam * lam * (2.0 + 6.0 * u * (1.0 + u))
    return log_b - log_beta, _householder_step(nu, h2, h3), nu


@_inline
def _central_step(x: float, s: float, beta: float) -> tuple[float, float, float]:
    """Householder on ``b - β``."""
    b = _otm_call(x, s)[0]
    vega = math.exp(-0.5 * (x * x / (s * s) + 0.25 * s * s)) / _SQRT_2PI
    a, a1 = _curvature(x, s)
    step, newton = _householder(b - beta, vega, vega * a, vega * (a * a + a1))
    return b - beta, step, newton


@_inline
def _upper_step(x: float, s: float, log_gap: float) -> tuple[float, float, float]:
    """Householder on ``ln(b_max - b) - ln(b_max - β)``."""
    h, t = x / s, 0.5 * s
    gap = math.exp(0.5 * x) * _ndtr(-(h + t)) + math.exp(-0.5 * x) * _ndtr(h - t)
    vega = math.exp(-0.5 * (x * x / (s * s) + 0.25 * s * s)) / _SQRT_2PI
    a, a1 = _curvature(x, s)
    u1, u2, u3 = _log_derivatives(-vega / gap, a, a1)
    log_g = math.log(gap)
    step, newton = _householder(log_g - log_gap, u1, u2, u3)
    return log_gap - log_g, step, newton


@_inline
def _step(branch: int, x: float, s: float, target: float) -> tuple[float, float, float]:
    if branch == 0:
        return _lower_step(x, s, target)
    if branch == 1:
        return _central_step(x, s, target)
    return _upper_step(x, s, target)


@_jit
def _iterate(branch: int, x: float, target: float, s: float, lo: float, hi: float) -> float:
    """The safeguarded iteration of pricing._iterate for one point."""
    if not (math.isfinite(s) and lo < s <= hi):
        s = 0.5 * (lo + hi) if math.isfinite(hi) else 2.0 * lo
    for _ in range(_MAX_ITERATIONS):
        above, step, newton = _step(branch, x, s, target)
        if above < 0.0:
            lo = s
        elif above > 0.0:
            hi = s
        new = s + step
        converged = abs(newton) <= _CONVERGED * s
        if converged or (lo < new < hi):
            s_next = new
        else:
            s_next = 0.5 * (lo + hi) if math.isfinite(hi) else 2.0 * s
        done = converged or above == 0.0 or hi - lo <= 4.0 * _EPS * lo
        s = s_next
        if done:
            break
    return s


@_inline
def _asymptotic_guess(x: float, log_beta: float, s_c: float) -> float:
    """The lower-tail asymptote ``ln b ≈ -x²/(2s²) + ln(s³/(√(2π) x²))`` inverted with one
    fixed-point step (pricing._lower_guess): good for s ≪ s_c only."""
    guess = -x / math.sqrt(-2.0 * log_beta)
    correction = math.log(guess**3 / (_SQRT_2PI * x * x))
    guess = -x / math.sqrt(max(2.0 * (correction - log_beta), 1e-300))
    return guess if guess < s_c else 0.5 * s_c


@_inline
def _lagrange4(u: float) -> tuple[float, float, float, float]:
    """Weights of the cubic through the nodes -1, 0, 1, 2 at ``u`` in [-1, 2]."""
    um, u1, u2 = u + 1.0, u - 1.0, u - 2.0
    return (u * u1 * u2 * (-1.0 / 6.0), um * u1 * u2 * 0.5, um * u * u2 * -0.5,
            um * u * u1 * (1.0 / 6.0))


@_inline
def _bicubic(table: FloatArray, at0: int, shape: tuple[int, int], fa: float, fz: float) -> float:
    """Bicubic (4 × 4 Lagrange) interpolation at the fractional row ``fa`` and column ``fz`` of
    the table of ``shape`` stored flat from ``table[at0]`` (the stencil is clamped to the table:
    near its edges the cubics extrapolate by less than one cell)."""
    n_a, n_z = shape
    i, j = min(max(int(fa) - 1, 0), n_a - 4), min(max(int(fz) - 1, 0), n_z - 4)
    a0, a1, a2, a3 = _lagrange4(fa - i - 1.0)
    z0, z1, z2, z3 = _lagrange4(fz - j - 1.0)
    at = np.uintp(at0 + i * n_z + j)  # unsigned: no negative-index wraparound in the loads
    row0 = z0 * table[at] + z1 * table[at + 1] + z2 * table[at + 2] + z3 * table[at + 3]
    at += n_z
    row1 = z0 * table[at] + z1 * table[at + 1] + z2 * table[at + 2] + z3 * table[at + 3]
    at += n_z
    row2 = z0 * table[at] + z1 * table[at + 1] + z2 * table[at + 2] + z3 * table[at + 3]
    at += n_z
    row3 = z0 * table[at] + z1 * table[at + 1] + z2 * table[at + 2] + z3 * table[at + 3]
    value: float = a0 * row0 + a1 * row1 + a2 * row2 + a3 * row3
    return value


@_inline
def _lower_guess(x: float, log_beta: float, s_c: float, log_b_c: float, table: FloatArray
                 ) -> float:
    """Below the inflection point: ``s/s_c`` interpolated (bicubic) in the table of
    :func:`_fill_lower_table` at ``(s_c/(1+s_c), √(ln b_c / ln β))``; the asymptotic guess outside
    the table's range."""
    n_a, n_z = _TABLE_SHAPE
    fa = (s_c / (1.0 + s_c) - _TABLE_A_LO) * ((n_a - 1) / (_TABLE_A_HI - _TABLE_A_LO))
    if not (0.0 <= fa <= n_a - 1):
        return _asymptotic_guess(x, log_beta, s_c)
    fz = math.sqrt(log_b_c / log_beta) * (n_z - 1)
    guess = _bicubic(table, 0, _TABLE_SHAPE, fa, fz) * s_c
    return guess if 0.0 < guess < s_c else _asymptotic_guess(x, log_beta, s_c)


@_inline
def _central_guess(s_c: float, rise: float, width: float, table: FloatArray) -> float:
    """Between the inflection point and ``b = b_max/2``, with ``rise = (β - b_c)/b_max`` and
    ``width = 1/2 - b_c/b_max``: ``s - s_c`` interpolated (bicubic) in the table of
    :func:`_fill_central_table` at ``(s_c/(1+s_c), rise/width)``, for ``s_c/(1+s_c) ≤
    _CENTRAL_A_HI``; the tangent at the inflection point, ``s_c + √(2π) rise``, where
    ``rise < 1e-4 width`` (closer to the root there: its error is ~ rise³)."""
    if rise < 1e-4 * width:
        return _above(s_c, s_c + _SQRT_2PI * rise)
    n_a, n_c = _CENTRAL_SHAPE
    fa = s_c / (1.0 + s_c) * ((n_a - 1) / _CENTRAL_A_HI)
    step = _bicubic(table, _CENTRAL_AT, _CENTRAL_SHAPE, fa, rise / width * (n_c - 1))
    return _above(s_c, s_c + step)


@_inline
def _above(s_c: float, guess: float) -> float:
    """A central guess strictly inside the bracket (s_c, inf): at β = b_c to rounding the guess
    is s_c itself (or an ulp below), which the iteration would reject for ``2 s_c``, far up the
    flat part of b from a root at s_c."""
    return max(guess, s_c * (1.0 + 4.0 * _EPS))


@_jit
def _fill_lower_table(table: FloatArray) -> None:
    """``table[i, j] = s/s_c`` at ``a = s_c/(1+s_c)`` uniform on [A_LO, A_HI] (rows) and
    ``z = √(ln b_c / ln β)`` uniform on [0, 1] (columns), solved from the asymptotic guess."""
    n_a, n_z = table.shape
    for i in range(n_a):
        a = _TABLE_A_LO + (_TABLE_A_HI - _TABLE_A_LO) * i / (n_a - 1)
        s_c = a / (1.0 - a)
        x = -0.5 * s_c * s_c
        b_max = math.exp(0.5 * x)
        log_b_c = math.log(0.5 * b_max - _ndtr(-s_c) / b_max)
        table[i, 0], table[i, n_z - 1] = 0.0, 1.0
        for j in range(1, n_z - 1):
            log_beta = log_b_c / (j / (n_z - 1)) ** 2
            guess = _asymptotic_guess(x, log_beta, s_c)
            table[i, j] = _iterate(0, x, log_beta, guess, 0.0, s_c) / s_c


@_jit
def _fill_central_table(table: FloatArray) -> None:
    """``table[i, j] = s - s_c`` at ``a = s_c/(1+s_c)`` uniform on [0, CENTRAL_A_HI] (rows) and
    ``β/b_max = b_c/b_max + c (1/2 - b_c/b_max)`` with c uniform on [0, 1] (columns), solved by
    the central branch from the tangent at the inflection point."""
    n_a, n_c = table.shape
    for i in range(n_a):
        a = _CENTRAL_A_HI * i / (n_a - 1)
        s_c = a / (1.0 - a)
        x = -0.5 * s_c * s_c
        b_max = math.exp(0.5 * x)
        half = 0.5 * (1.0 - _erfcx(s_c * _SQRT_HALF))
        table[i, 0] = 0.0
        for j in range(1, n_c):
            rise = (0.5 - half) * j / (n_c - 1)
            beta = b_max * (half + rise)
            table[i, j] = _iterate(1, x, beta, s_c + _SQRT_2PI * rise, s_c, math.inf) - s_c


@_inline
def _start(x: float, beta: float, table: FloatArray) -> tuple[int, float, float, float, float]:
    """Branch (0 lower, 1 central, 2 upper), objective target, initial guess and bracket
    ``[lo, hi]`` of ``b(x, s) = β`` for x ≤ 0 (pricing._solve_otm); branch -1 and the answer in
    place of the guess where there is nothing to solve: 0 at β = 0, NaN outside (0, e^{x/2}).
    The tabulated guesses are left to a pass of their own (:func:`_solve_block`): below the
    inflection point ``ln b_c`` in place of the guess; above it, within the central table's
    range, branch 3 and ``(β - b_c)/b_max``, ``1/2 - b_c/b_max`` in place of the guess and hi.
    Below the inflection point (nearly every point) ``b_max = e^{x/2}`` is not needed:
    ``β < b_c`` is tested as ``ln β < x/2 + ln(b_c/b_max)``, and ``β < b_c`` implies ``β < b_max``."""
    if beta == 0.0:
        return -1, 0.0, 0.0, 0.0, 0.0
    if not beta > 0.0:
        return -1, 0.0, math.nan, 0.0, 0.0
    s_c = math.sqrt(-2.0 * x)
    half = 0.5 * (1.0 - _erfcx(s_c * _SQRT_HALF))  # b(x, s_c)/b_max = 1/2 - N(-s_c)/b_max²
    log_beta = math.log(beta)
    log_b_c = 0.5 * x + math.log(half)
    if log_beta < log_b_c:
        return 0, log_beta, log_b_c, 0.0, s_c
    b_max = math.exp(0.5 * x)
    if not beta < b_max:
        return -1, 0.0, math.nan, 0.0, 0.0
    if beta <= 0.5 * b_max:
        rise = beta / b_max - half
        if s_c <= _CENTRAL_A_HI / (1.0 - _CENTRAL_A_HI):
            return 3, beta, rise, s_c, 0.5 - half
        return 1, beta, _above(s_c, s_c + _SQRT_2PI * rise), s_c, math.inf  # the tangent at s_c
    gap = b_max - beta
    return 2, math.log(gap), -2.0 * _ndtri(gap / (2.0 * math.cosh(0.5 * x))), s_c, math.inf


@_jit
def _solve_block(x: FloatArray, beta: FloatArray, n: int, table: FloatArray,
                 branch: IntArray, work: FloatArray, out: FloatArray) -> None:
    """``out[i] = s`` with ``b(x[i], s) = beta[i]`` for i < n (0 at β = 0, NaN outside
    (0, e^{x/2})), in four passes over the block so that the processor overlaps independent
    points (one point's work is a long chain of dependent operations): branch, target and bracket;
    the tabulated guesses (a short loop of its own: its loads and interpolation then overlap
    across points, ~3 % of the time); the first iteration, after which every point below the
    inflection point or within the central table has converged (nearly always); the remaining
    iterations (the upper branch, < 1 % of the benchmark's options, and stragglers).
    ``branch`` and the 4 rows of ``work`` are scratch space for at least n points, allocated once
    by the caller (not per block)."""
    target, s, lo, hi = work[0], work[1], work[2], work[3]
    for i in range(n):
        branch[i], target[i], s[i], lo[i], hi[i] = _start(x[i], beta[i], table)
        if branch[i] < 0:
            out[i] = s[i]
    for i in range(n):
        if branch[i] == 0:
            s[i] = _lower_guess(x[i], target[i], hi[i], s[i], table)
        elif branch[i] == 3:  # central, the guess tabulated: rise and width in s and hi
            branch[i], s[i], hi[i] = 1, _central_guess(lo[i], s[i], hi[i], table), math.inf
    for i in range(n):
        if branch[i] >= 0:
            si, lo_i, hi_i = s[i], lo[i], hi[i]
            if not (math.isfinite(si) and lo_i < si <= hi_i):
                si = 0.5 * (lo_i + hi_i) if math.isfinite(hi_i) else 2.0 * lo_i
            above, step, newton = _step(branch[i], x[i], si, target[i])
            if above < 0.0:
                lo_i = si
            elif above > 0.0:
                hi_i = si
            new = si + step
            converged = abs(newton) <= _CONVERGED * si
            if converged or (lo_i < new < hi_i):
                s[i] = new
            else:
                s[i] = 0.5 * (lo_i + hi_i) if math.isfinite(hi_i) else 2.0 * si
            if converged or above == 0.0 or hi_i - lo_i <= 4.0 * _EPS * lo_i:
                branch[i], out[i] = -1, s[i]
            lo[i], hi[i] = lo_i, hi_i
    for i in range(n):
        if branch[i] >= 0:
            out[i] = _iterate(branch[i], x[i], target[i], s[i], lo[i], hi[i])


@_jit
def _normalised_kernel(beta_otm: FloatArray, x_otm: FloatArray, table: FloatArray,
                       out: FloatArray) -> None:
    branch, work = np.empty(_BLOCK, dtype=np.int64), np.empty((4, _BLOCK))
    for start in range(0, out.size, _BLOCK):
        n = min(_BLOCK, out.size - start)
        _solve_block(x_otm[start:start + n], beta_otm[start:start + n], n, table, branch, work,
                     out[start:start + n])


@_jit
def _black76_kernel(price: FloatArray, forward: FloatArray, strike: FloatArray,
                    years: FloatArray, rate: FloatArray, call: FloatArray, table: FloatArray,
                    out: FloatArray) -> None:
    x, beta, s = np.empty(_BLOCK), np.empty(_BLOCK), np.empty(_BLOCK)
    branch, work = np.empty(_BLOCK, dtype=np.int64), np.empty((4, _BLOCK))
    for start in range(0, out.size, _BLOCK):
        n = min(_BLOCK, out.size - start)
        for j in range(n):
            i = start + j
            f, k, T = forward[i], strike[i], years[i]
            if T > 0.0 and f > 0.0 and k > 0.0:
                intrinsic = f - k if call[i] != 0.0 else k - f
                otm = price[i] * math.exp(rate[i] * T) - max(intrinsic, 0.0)
                x[j], beta[j] = -abs(math.log(f / k)), otm / math.sqrt(f * k)
            else:
                x[j], beta[j] = 0.0, math.nan
        _solve_block(x, beta, n, table, branch, work, s)
        for j in range(n):
            out[start + j] = s[j] / math.sqrt(years[start + j])


_tables: list[FloatArray] = []  # the guess tables, built on first use (~15 ms)


def _guess_tables() -> FloatArray:
    """The lower-guess table (``_TABLE_SHAPE``) and the central-guess table (``_CENTRAL_SHAPE``,
    from ``_CENTRAL_AT``), flat in one array for the kernels to index."""
    if not _tables:
        table = np.empty(_CENTRAL_AT + _CENTRAL_SHAPE[0] * _CENTRAL_SHAPE[1], dtype=np.float64)
        _fill_lower_table(table[:_CENTRAL_AT].reshape(_TABLE_SHAPE))
        _fill_central_table(table[_CENTRAL_AT:].reshape(_CENTRAL_SHAPE))
        _tables.append(table)
    return _tables[0]


def compute_normalised_implied_vol_jit(beta_otm: FloatArray, x_otm: FloatArray) -> FloatArray:
    """``s`` for flat float64 arrays of out-of-the-money normalised prices and ``x ≤ 0``
    (pricing._solve_normalised: 0 at β = 0, NaN outside (0, e^{x/2}))."""
    out = np.empty(beta_otm.shape, dtype=np.float64)
    _normalised_kernel(np.ascontiguousarray(beta_otm), np.ascontiguousarray(x_otm),
                       _guess_tables(), out)
    return out


def compute_implied_vol_black76_jit(price: FloatArray, forward: FloatArray, strike: FloatArray,
                                    years: FloatArray, rate: FloatArray, call: FloatArray
                                    ) -> FloatArray:
    """Black-76 implied vol per year for flat float64 arrays of one length (``call`` ≠ 0: call);
    NaN where pricing.compute_implied_vol_black76 gives NaN."""
    out = np.empty(price.shape, dtype=np.float64)
    _black76_kernel(price, forward, strike, years, rate, call, _guess_tables(), out)
    return out
