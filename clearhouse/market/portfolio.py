"""Portfolio Greeks and scenario P&L of an account's options (analytics, not consensus).

Legs are Black-76 options on one underlying whose forwards move proportionally with the spot
(``F_i = S c_i``), so spot Greeks add up across expiries: ``Δ = Σ q Δ_F F/S``, ``Γ = Σ q Γ_F (F/S)²``.
Quantities are in whole contracts (floats); values in quote currency (whole units, not base units).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from clearhouse.market.instruments import OptionKind, Series
from clearhouse.market.pricing import (
    FloatArray,
    compute_black76_greeks,
    compute_black76_price,
    compute_year_fraction,
)
from clearhouse.types import Quantity, Timestamp

__all__ = [
    "Legs",
    "PortfolioGreeks",
    "ScenarioGrid",
    "compute_legs",
    "compute_portfolio_greeks",
    "compute_scenario_pnl",
]


@dataclass(frozen=True, slots=True)
class Legs:
    """An account's options as arrays (one entry per leg), ready for the vectorised pricer."""

    forward: FloatArray
    """Forward of each leg's expiry, quote units per underlying."""
    strike: FloatArray
    """Strike, quote units per underlying."""
    years: FloatArray
    """Time to expiry, years of 365 days."""
    vol: FloatArray
    """Implied vol per year (decimal)."""
    is_call: npt.NDArray[np.bool_]
    """True for calls."""
    quantity: FloatArray
    """Signed quantity in whole contracts (long > 0)."""


@dataclass(frozen=True, slots=True)
class PortfolioGreeks:
    """Sums over the legs, in quote units (see :class:`~clearhouse.market.pricing.Greeks`)."""

    value: float
    """Present value of the options."""
    delta: float
    """∂V/∂S: quote units per unit move of the spot (forwards move with it)."""
    gamma: float
    """∂²V/∂S²."""
    vega: float
    """∂V/∂σ per 1.00 of vol, all legs' vols moving together (divide by 100 for one vol point)."""
    theta: float
    """Value change per calendar day, forwards and vols unchanged."""
    rho: float
    """∂V/∂r per 1.00 of rate, forwards held fixed."""


@dataclass(frozen=True, slots=True)
class ScenarioGrid:
    """P&L of the portfolio under joint spot and vol shocks."""

    spot_shocks: FloatArray
    """Relative spot moves (``-0.2`` = spot down 20 %), rows of ``pnl``."""
    vol_shocks: FloatArray
    """Absolute vol moves (``0.1`` = +10 vol points), columns of ``pnl``."""
    pnl: FloatArray
    """``pnl[i, j]``: value after shock ``(i, j)`` minus value now, quote units."""


def compute_legs(positions: Mapping[Series, Quantity], now: Timestamp,
                 forwards: Mapping[Timestamp, float], vols: Mapping[Series, float],
                 contract_unit: int) -> Legs:
    """Arrays for the pricer from exact positions (strikes in base units, quantities in contract
    units), a forward per expiry and a vol per series."""
    series = [s for s, q in positions.items() if q]
    scale = [10.0 ** -s.pair.quote_decimals for s in series]
    return Legs(np.array([forwards[s.expiry] for s in series], dtype=np.float64),
                np.array([s.strike * f for s, f in zip(series, scale, strict=True)]),
                np.array([compute_year_fraction(now, s.expiry) for s in series], dtype=np.float64),
                np.array([vols[s] for s in series], dtype=np.float64),
                np.array([s.kind is OptionKind.CALL for s in series], dtype=np.bool_),
                np.array([positions[s] / contract_unit for s in series], dtype=np.float64))


def compute_portfolio_greeks(legs: Legs, spot: float, rate: float = 0.0) -> PortfolioGreeks:
    """Portfolio value and spot Greeks (Black-76 per leg, summed with quantities)."""
    g = compute_black76_greeks(legs.forward, legs.strike, legs.years, legs.vol, rate, legs.is_call)
    q, ratio = legs.quantity, legs.forward / spot
    return PortfolioGreeks(float(q @ g.price), float(q @ (g.delta * ratio)),
                           float(q @ (g.gamma * ratio**2)), float(q @ g.vega),
                           float(q @ g.theta), float(q @ g.rho))


def compute_scenario_pnl(legs: Legs, spot_shocks: npt.ArrayLike, vol_shocks: npt.ArrayLike,
                         rate: float = 0.0, horizon_years: float = 0.0) -> ScenarioGrid:
    """Full revaluation on a grid of spot × vol shocks, optionally after ``horizon_years`` pass
    (vols are floored at 0.1 %; legs that expire within the horizon are worth their intrinsic)."""
    ds = np.asarray(spot_shocks, dtype=np.float64).ravel()
    dv = np.asarray(vol_shocks, dtype=np.float64).ravel()
    base = float(legs.quantity @ compute_black76_price(legs.forward, legs.strike, legs.years,
                                                       legs.vol, rate, legs.is_call))
    forward = legs.forward * (1.0 + ds[:, None, None])
    vol = np.maximum(legs.vol + dv[None, :, None], 1e-3)
    years = np.maximum(legs.years - horizon_years, 0.0)
    values = compute_black76_price(forward, legs.strike, years, vol, rate, legs.is_call)
    return ScenarioGrid(ds, dv, values @ legs.quantity - base)
