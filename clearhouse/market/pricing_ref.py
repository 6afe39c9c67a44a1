"""Slow scalar reference for :mod:`clearhouse.market.pricing`, written plainly from the textbook.

One option at a time, ``math`` only, no tricks: the vectorised path is tested against these. They
share the conventions of :mod:`~clearhouse.market.pricing` (years of 365 days, vega and rho per 1.00,
theta per calendar day). The plain ``F N(d₁) - K N(d₂)`` loses relative accuracy far out of the
money, which is why the fast path does not use it; tests compare where it is well conditioned.
"""

from __future__ import annotations

import math

__all__ = [
    "compute_black76_greeks_ref",
    "compute_black76_price_ref",
    "compute_black_scholes_greeks_ref",
    "compute_black_scholes_price_ref",
    "compute_implied_vol_ref",
    "compute_norm_cdf_ref",
]

_DAYS_PER_YEAR = 365.0


def compute_norm_cdf_ref(z: float) -> float:
    """Standard normal CDF, ``N(z) = erfc(-z/√2) / 2``."""
    return 0.5 * math.erfc(-z / math.sqrt(2.0))


def _norm_pdf(z: float) -> float:
    return math.exp(-0.5 * z * z) / math.sqrt(2.0 * math.pi)


def compute_black76_price_ref(forward: float, strike: float, years: float, vol: float,
                              rate: float, is_call: bool) -> float:
    """Black-76: ``e^{-rT}(F N(d₁) - K N(d₂))`` for a call, ``e^{-rT}(K N(-d₂) - F N(-d₁))`` for a put."""
    sd = vol * math.sqrt(years)
    d1 = math.log(forward / strike) / sd + 0.5 * sd
    d2 = d1 - sd
    df = math.exp(-rate * years)
    N = compute_norm_cdf_ref
    if is_call:
        return df * (forward * N(d1) - strike * N(d2))
    return df * (strike * N(-d2) - forward * N(-d1))


def compute_black76_greeks_ref(forward: float, strike: float, years: float, vol: float,
                               rate: float, is_call: bool) -> tuple[float, ...]:
    """``(price, delta, gamma, vega, theta, rho)`` of Black-76 (delta, gamma to the forward)."""
    price = compute_black76_price_ref(forward, strike, years, vol, rate, is_call)
    sd = vol * math.sqrt(years)
    d1 = math.log(forward / strike) / sd + 0.5 * sd
    df = math.exp(-rate * years)
    N = compute_norm_cdf_ref
    delta = df * N(d1) if is_call else -df * N(-d1)
    gamma = df * _norm_pdf(d1) / (forward * sd)
    vega = df * forward * _norm_pdf(d1) * math.sqrt(years)
    theta = -df * forward * _norm_pdf(d1) * vol / (2.0 * math.sqrt(years)) + rate * price
    return price, delta, gamma, vega, theta / _DAYS_PER_YEAR, -years * price


def compute_black_scholes_price_ref(spot: float, strike: float, years: float, vol: float,
                                    rate: float, dividend: float, is_call: bool) -> float:
    """Black-Scholes-Merton: ``S e^{-qT} N(d₁) - K e^{-rT} N(d₂)`` for a call (put by parity)."""
    sd = vol * math.sqrt(years)
    d1 = (math.log(spot / strike) + (rate - dividend + 0.5 * vol * vol) * years) / sd
    d2 = d1 - sd
    N = compute_norm_cdf_ref
    carry, df = math.exp(-dividend * years), math.exp(-rate * years)
    if is_call:
        return spot * carry * N(d1) - strike * df * N(d2)
    return strike * df * N(-d2) - spot * carry * N(-d1)


def compute_black_scholes_greeks_ref(spot: float, strike: float, years: float, vol: float,
                                     rate: float, dividend: float, is_call: bool
                                     ) -> tuple[float, ...]:
    """``(price, delta, gamma, vega, theta, rho)`` of Black-Scholes-Merton (Hull's formulas)."""
    price = compute_black_scholes_price_ref(spot, strike, years, vol, rate, dividend, is_call)
    sd = vol * math.sqrt(years)
    d1 = (math.log(spot / strike) + (rate - dividend + 0.5 * vol * vol) * years) / sd
    d2 = d1 - sd
    N = compute_norm_cdf_ref
    carry, df = math.exp(-dividend * years), math.exp(-rate * years)
    gamma = carry * _norm_pdf(d1) / (spot * sd)
    vega = spot * carry * _norm_pdf(d1) * math.sqrt(years)
    decay = -spot * carry * _norm_pdf(d1) * vol / (2.0 * math.sqrt(years))
    if is_call:
        delta = carry * N(d1)
        theta = decay - rate * strike * df * N(d2) + dividend * spot * carry * N(d1)
        rho = strike * years * df * N(d2)
    else:
        delta = -carry * N(-d1)
        theta = decay + rate * strike * df * N(-d2) - dividend * spot * carry * N(-d1)
        rho = -strike * years * df * N(-d2)
    return price, delta, gamma, vega, theta / _DAYS_PER_YEAR, rho


def compute_implied_vol_ref(price: float, forward: float, strike: float, years: float,
                            rate: float, is_call: bool) -> float:
    """Black-76 implied vol by plain bisection on ``ln σ ∈ [ln 1e-4, ln 20]`` (200 halvings)."""
    lo, hi = math.log(1e-4), math.log(20.0)
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if compute_black76_price_ref(forward, strike, years, math.exp(mid), rate, is_call) < price:
            lo = mid
        else:
            hi = mid
    return math.exp(0.5 * (lo + hi))
