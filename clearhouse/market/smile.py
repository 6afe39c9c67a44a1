"""SVI volatility smiles: one raw-SVI slice per expiry, fitted to quotes (analytics, not consensus).

Raw SVI (Gatheral 2004) gives the total implied variance ``w = σ_imp² T`` at log-moneyness
``k = ln(K/F)``::

    w(k) = a + b (ρ (k - m) + √((k - m)² + σ²))

The fit keeps the slice arbitrage-aware: ``b ≥ 0``, ``|ρ| < 1``, ``σ > 0``, minimum variance
``a + bσ√(1-ρ²) ≥ 0`` and Lee's moment bound on the wings ``b (1 + |ρ|) ≤ 2``. These are box
constraints on a reparametrisation, so ``scipy.optimize.least_squares`` enforces them exactly.
Butterfly arbitrage (a negative density) is checked afterwards with Gatheral's ``g(k) ≥ 0``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.optimize import least_squares

from clearhouse.errors import SmileFitError
from clearhouse.market.pricing import FloatArray, compute_implied_vol_black76

__all__ = [
    "MIN_QUOTES",
    "SviFit",
    "SviParams",
    "compute_svi_density_factor",
    "compute_svi_fit",
    "compute_svi_fit_from_prices",
    "compute_svi_implied_vol",
    "compute_svi_total_variance",
    "is_svi_butterfly_free",
]

MIN_QUOTES = 5
"""A raw-SVI slice has five parameters: fewer quotes cannot pin it down."""
_RHO_MAX = 0.999


@dataclass(frozen=True, slots=True)
class SviParams:
    """Raw SVI parameters of one expiry (total variance in year·vol², k = ln(K/F))."""

    a: float
    """Level: shifts the total variance up or down."""
    b: float
    """Wing slope (≥ 0); the wings have slopes ``b(1-ρ)`` (left) and ``b(1+ρ)`` (right)."""
    rho: float
    """Skew, in (-1, 1): negative tilts variance to low strikes."""
    m: float
    """Log-moneyness of the vertex (shifts the smile left/right)."""
    sigma: float
    """Curvature at the vertex (> 0): small means a sharp V."""


@dataclass(frozen=True, slots=True)
class SviFit:
    """A fitted slice and how well it fits."""

    params: SviParams
    """The fitted parameters."""
    years: float
    """Time to expiry the slice is for (years of 365 days)."""
    rmse_vol: float
    """Root-mean-square error in implied vol (decimal) over the quotes, weights ignored."""
    max_error_vol: float
    """Largest absolute implied-vol error (decimal) over the quotes."""
    butterfly_free: bool
    """Whether ``g(k) ≥ 0`` on a wide grid (no butterfly arbitrage in this slice)."""


def compute_svi_total_variance(params: SviParams, k: npt.ArrayLike) -> FloatArray:
    """``w(k)``, total implied variance at log-moneyness ``k = ln(K/F)``."""
    d = np.asarray(k, dtype=np.float64) - params.m
    return params.a + params.b * (params.rho * d + np.sqrt(d * d + params.sigma**2))


def compute_svi_implied_vol(params: SviParams, k: npt.ArrayLike, years: float) -> FloatArray:
    """Implied vol (per year, decimal) of the slice at ``k``."""
    return np.sqrt(np.maximum(compute_svi_total_variance(params, k), 0.0) / years)


def compute_svi_density_factor(params: SviParams, k: npt.ArrayLike) -> FloatArray:
    """Gatheral's ``g(k) = (1 - kw'/2w)² - w'²/4 (1/w + 1/4) + w''/2``; the risk-neutral density is
    ``g(k) n(d₂)/√w``, so ``g ≥ 0`` everywhere means no butterfly arbitrage."""
    d = np.asarray(k, dtype=np.float64) - params.m
    root = np.sqrt(d * d + params.sigma**2)
    w = params.a + params.b * (params.rho * d + root)
    w1 = params.b * (params.rho + d / root)
    w2 = params.b * params.sigma**2 / root**3
    kk = np.asarray(k, dtype=np.float64)
    return (1.0 - kk * w1 / (2.0 * w)) ** 2 - 0.25 * w1 * w1 * (1.0 / w + 0.25) + 0.5 * w2


def is_svi_butterfly_free(params: SviParams, k_max: float = 3.0) -> bool:
    """Whether ``w > 0`` and ``g(k) ≥ 0`` on a fine grid of ``k ∈ [-k_max, k_max]``."""
    k = np.linspace(-k_max, k_max, 2001)
    w = compute_svi_total_variance(params, k)
    return bool(np.all(w > 0.0) and np.all(compute_svi_density_factor(params, k) >= -1e-12))


def _params_from(z: FloatArray) -> SviParams:
    """Box-constrained unknowns → raw SVI: (min variance, b fraction of Lee's bound, ρ, m, σ)."""
    v_min, b_frac, rho, m, sigma = (float(v) for v in z)
    b = b_frac * 2.0 / (1.0 + abs(rho))
    return SviParams(v_min - b * sigma * math.sqrt(1.0 - rho * rho), b, rho, m, sigma)


def _starts(k: FloatArray, w: FloatArray) -> list[FloatArray]:
    k_atm = float(k[np.argmin(w)])
    return [np.array([float(np.min(w)) * 0.9, 0.2, rho, k_atm, sigma])
            for rho in (-0.5, 0.0, 0.5) for sigma in (0.05, 0.3)]


def compute_svi_fit(log_moneyness: npt.ArrayLike, implied_vols: npt.ArrayLike, years: float,
                    weights: npt.ArrayLike | None = None) -> SviFit:
    """Fit a raw-SVI slice to quotes (``k = ln(K/F)``, implied vols) by weighted least squares in
    total variance, from several starting points; raises :class:`SmileFitError` if it cannot."""
    k = np.asarray(log_moneyness, dtype=np.float64).ravel()
    vols = np.asarray(implied_vols, dtype=np.float64).ravel()
    good = np.isfinite(k) & np.isfinite(vols) & (vols > 0.0)
    if years <= 0.0 or k.shape != vols.shape or np.count_nonzero(good) < MIN_QUOTES:
        raise SmileFitError(f"need at least {MIN_QUOTES} valid quotes and years > 0",
                            field="quotes")
    wts = np.ones_like(k) if weights is None else np.asarray(weights, dtype=np.float64).ravel()
    k, w_mkt, wts = k[good], vols[good] ** 2 * years, np.sqrt(wts[good])
    lower = [0.0, 0.0, -_RHO_MAX, float(k.min()) - 1.0, 1e-4]
    upper = [float(w_mkt.max()) * 2.0, 1.0, _RHO_MAX, float(k.max()) + 1.0, 5.0]

    def residuals(z: FloatArray) -> FloatArray:
        return wts * (compute_svi_total_variance(_params_from(z), k) - w_mkt)

    fits = [least_squares(residuals, np.clip(z0, lower, upper), bounds=(lower, upper),
                          x_scale="jac", xtol=1e-14, ftol=1e-14, gtol=1e-14)
            for z0 in _starts(k, w_mkt)]
    best = min(fits, key=lambda r: float(r.cost))
    params = _params_from(best.x)
    err = compute_svi_implied_vol(params, k, years) - vols[good]
    return SviFit(params, years, float(np.sqrt(np.mean(err**2))), float(np.max(np.abs(err))),
                  is_svi_butterfly_free(params))


def compute_svi_fit_from_prices(prices: npt.ArrayLike, forward: float, strikes: npt.ArrayLike,
                                years: float, rate: float = 0.0, is_call: npt.ArrayLike = True
                                ) -> SviFit:
    """Fit a slice to option prices of one expiry: implied vols first (quotes outside the
    no-arbitrage bounds are dropped), then :func:`compute_svi_fit`."""
    strikes_ = np.asarray(strikes, dtype=np.float64)
    vols = compute_implied_vol_black76(prices, forward, strikes_, years, rate, is_call)
    return compute_svi_fit(np.log(strikes_ / forward), vols, years)
