"""Marks: the vol each series is valued at, and an account's Greeks at those marks.

Not consensus: collateral is the exact max-loss requirement (:mod:`clearhouse.market.collateral`);
marks only describe an account's sensitivities for its owner (dashboard, SDK). A series is marked
at the implied vol of its book's mid price (both sides quoted), else of the one quoted side, else
at a default vol; the forward is the oracle's spot (rate 0: premiums and payoffs are both in the
quote token at expiry, so there is no carry to discount).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from clearhouse.market.instruments import OptionKind, Series
from clearhouse.market.portfolio import PortfolioGreeks, compute_legs, compute_portfolio_greeks
from clearhouse.market.pricing import compute_implied_vol_black76, compute_year_fraction
from clearhouse.types import Price, Quantity, Timestamp

__all__ = ["DEFAULT_VOL", "Mark", "MarkSource", "compute_account_greeks", "compute_mark"]

DEFAULT_VOL = 0.6
"""Vol (per year) of a series with no usable quote: a typical ETH at-the-money level."""


class MarkSource(StrEnum):
    """Where a series' vol comes from."""

    MID = "mid"
    BID = "bid"
    ASK = "ask"
    DEFAULT = "default"


@dataclass(frozen=True, slots=True)
class Mark:
    """One series' vol and its source."""

    vol: float
    """Implied vol per year (decimal)."""
    source: MarkSource
    """``mid`` when both sides are quoted and the mid has an implied vol, else the side used."""


def _implied_vol(series: Series, premium: Price, spot: float, now: Timestamp) -> float | None:
    """Black-76 vol of a premium per whole contract (quote base units), or None if the premium is
    outside the no-arbitrage bounds at this spot (then it says nothing about vol)."""
    scale = 10.0 ** -series.pair.quote_decimals
    years = compute_year_fraction(now, series.expiry)
    if years <= 0.0 or spot <= 0.0:
        return None
    vol = float(compute_implied_vol_black76(premium * scale, spot, series.strike * scale, years,
                                            0.0, series.kind is OptionKind.CALL)[()])
    return vol if math.isfinite(vol) and vol > 0.0 else None


def compute_mark(series: Series, bid: Price | None, ask: Price | None, spot: float,
                 now: Timestamp, default_vol: float = DEFAULT_VOL) -> Mark:
    """The vol ``series`` is marked at, from its best bid and ask (premiums per whole contract,
    quote base units) and the spot (quote units per underlying)."""
    candidates = []
    if bid is not None and ask is not None:
        candidates.append((MarkSource.MID, Price((bid + ask) // 2)))
    candidates += [(source, price) for source, price in ((MarkSource.BID, bid), (MarkSource.ASK, ask))
                   if price is not None]
    for source, premium in candidates:
        vol = _implied_vol(series, premium, spot, now)
        if vol is not None:
            return Mark(vol, source)
    return Mark(default_vol, MarkSource.DEFAULT)


def compute_account_greeks(positions: Mapping[Series, Quantity], marks: Mapping[Series, Mark],
                           spot: float, now: Timestamp, contract_unit: int) -> PortfolioGreeks:
    """Value and Greeks of an account's unexpired positions at ``marks`` (quote units; see
    :class:`PortfolioGreeks` for each Greek's unit). Expired series are left out: they are worth
    their settlement, not a model price."""
    live = {s: q for s, q in positions.items() if q and s.expiry > now}
    legs = compute_legs(live, now, {s.expiry: spot for s in live}, {s: marks[s].vol for s in live},
                        contract_unit)
    return compute_portfolio_greeks(legs, spot)
