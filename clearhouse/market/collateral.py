"""The risk hook matching calls before every fill, listed series, and :class:`Portfolios`: an
in-memory balance-and-positions store that implements the hook with the exact max-loss
requirement of :mod:`clearhouse.risk.maxloss`.

A fill is checked for both sides *before* anything changes (``check_fill``) and applied only once
every party has passed (``apply_fill``). Checks are cumulative: a caller that plans several fills
for one account passes their summed deltas, so the account is checked against its state after all
of them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from clearhouse.errors import RiskError, UnlistedInstrument
from clearhouse.market.instruments import (
    ListingRules,
    Market,
    Series,
    compute_series_id,
    validate_series,
)
from clearhouse.risk.maxloss import (
    ExpiryKey,
    compute_requirement,
    get_expiry_key,
    validate_collateral,
)
from clearhouse.types import Address, Amount, Price, Quantity, SeriesId

__all__ = [
    "Listing",
    "Listings",
    "Portfolios",
    "PositionDelta",
    "RiskHook",
    "apply_fill",
    "compute_caps_of",
    "compute_listing",
    "compute_positions_after",
    "compute_series_portfolio",
    "get_balance",
    "get_listing",
    "get_positions",
    "get_requirement",
    "process_deposit",
    "process_list_series",
    "process_withdrawal",
    "validate_fill",
]


@dataclass(frozen=True, slots=True)
class PositionDelta:
    """A change of one account's position in one series."""

    series_id: SeriesId
    """The series."""
    quantity: Quantity
    """Signed contract units: ``> 0`` bought, ``< 0`` sold."""


class RiskHook(Protocol):
    """What matching asks of the collateral ledger; the book and the RFQ desk call nothing else."""

    def check_fill(self, account: Address, deltas: Sequence[PositionDelta], cash_delta: int) -> None:
        """Raise ``InsufficientCollateral`` unless ``account`` still covers its requirement after
        ``deltas`` and ``cash_delta`` (quote base units, ``< 0`` paid). Changes nothing."""

    def apply_fill(self, account: Address, deltas: Sequence[PositionDelta], cash_delta: int) -> None:
        """Apply a fill that passed ``check_fill`` (with the same cumulative state)."""


@dataclass(frozen=True, slots=True)
class Listing:
    """A tradable series with what matching needs to know about it."""

    series: Series
    """The series."""
    cap: Price
    """Its expiry's settlement cap (quote base units per whole contract)."""
    rules: ListingRules
    """Its market's listing rules (premium tick, contract unit)."""


Listings = Mapping[SeriesId, Listing]
"""Tradable series by series id."""


def compute_listing(market: Market, series: Series) -> tuple[SeriesId, Listing]:
    """``(series id, listing)`` of a series the market lists; raises the listing errors."""
    expiry = validate_series(market, series)
    return compute_series_id(series), Listing(series, expiry.cap, market.rules)


def process_list_series(listings: dict[SeriesId, Listing], market: Market, series: Series
                        ) -> SeriesId:
    """Make ``series`` tradable; returns its series id."""
    series_id, listing = compute_listing(market, series)
    listings[series_id] = listing
    return series_id


def get_listing(listings: Listings, series_id: SeriesId) -> Listing:
    """The listing of ``series_id``; :class:`UnlistedInstrument` if it is not tradable."""
    listing = listings.get(series_id)
    if listing is None:
        raise UnlistedInstrument(f"series 0x{series_id.hex()} is not listed", field="seriesId")
    return listing


@dataclass(slots=True)
class Portfolios:
    """Every account's balance (quote base units) and positions (contract units per series)."""

    listings: Listings
    """Tradable series; a position in an unlisted series cannot be collateralised."""
    contract_unit: int
    """``Params.contract_unit``: quantities are in ``1 / contract_unit`` contract."""
    balances: dict[Address, int] = field(default_factory=dict)
    """Collateral per account, quote base units (premiums included)."""
    positions: dict[Address, dict[SeriesId, Quantity]] = field(default_factory=dict)
    """Open positions per account: series id -> signed quantity (no zero entries)."""

    def check_fill(self, account: Address, deltas: Sequence[PositionDelta], cash_delta: int) -> None:
        """:class:`RiskHook`: see :func:`validate_fill`."""
        validate_fill(self, account, deltas, cash_delta)

    def apply_fill(self, account: Address, deltas: Sequence[PositionDelta], cash_delta: int) -> None:
        """:class:`RiskHook`: see :func:`apply_fill`."""
        apply_fill(self, account, deltas, cash_delta)


def get_balance(portfolios: Portfolios, account: Address) -> Amount:
    """``account``'s collateral in quote base units."""
    return Amount(portfolios.balances.get(account, 0))


def get_positions(portfolios: Portfolios, account: Address) -> dict[SeriesId, Quantity]:
    """A copy of ``account``'s open positions."""
    return dict(portfolios.positions.get(account, {}))


def compute_positions_after(positions: Mapping[SeriesId, Quantity], deltas: Iterable[PositionDelta]
                            ) -> dict[SeriesId, Quantity]:
    """``positions`` moved by ``deltas``, without zero entries."""
    after = dict(positions)
    for delta in deltas:
        after[delta.series_id] = Quantity(after.get(delta.series_id, 0) + delta.quantity)
    return {series_id: q for series_id, q in after.items() if q}


def compute_series_portfolio(listings: Listings, positions: Mapping[SeriesId, Quantity]
                             ) -> dict[Series, Quantity]:
    """Positions keyed by :class:`Series`, as :mod:`clearhouse.risk.maxloss` takes them."""
    return {get_listing(listings, series_id).series: q for series_id, q in positions.items()}


def compute_caps_of(listings: Listings, series_ids: Iterable[SeriesId]) -> dict[ExpiryKey, Price]:
    """The caps of the expiries the given series settle on."""
    caps: dict[ExpiryKey, Price] = {}
    for series_id in series_ids:
        listing = get_listing(listings, series_id)
        caps[get_expiry_key(listing.series)] = listing.cap
    return caps


def get_requirement(portfolios: Portfolios, account: Address) -> Amount:
    """``account``'s exact max-loss requirement now."""
    positions = portfolios.positions.get(account, {})
    return compute_requirement(compute_series_portfolio(portfolios.listings, positions),
                               compute_caps_of(portfolios.listings, positions),
                               portfolios.contract_unit)


def validate_fill(portfolios: Portfolios, account: Address, deltas: Sequence[PositionDelta],
                  cash_delta: int) -> Amount:
    """Raise ``InsufficientCollateral`` unless ``account``'s balance after ``cash_delta`` covers the
    requirement of its positions after ``deltas``; return that requirement. Changes nothing."""
    after = compute_positions_after(portfolios.positions.get(account, {}), deltas)
    return validate_collateral(account, compute_series_portfolio(portfolios.listings, after),
                               portfolios.balances.get(account, 0) + cash_delta,
                               compute_caps_of(portfolios.listings, after), portfolios.contract_unit)


def apply_fill(portfolios: Portfolios, account: Address, deltas: Sequence[PositionDelta],
               cash_delta: int) -> None:
    """Move ``account``'s positions by ``deltas`` and its balance by ``cash_delta``.

    The caller has checked the fill with :func:`validate_fill`; this only writes.
    """
    portfolios.balances[account] = portfolios.balances.get(account, 0) + cash_delta
    after = compute_positions_after(portfolios.positions.get(account, {}), deltas)
    if after:
        portfolios.positions[account] = after
    else:
        portfolios.positions.pop(account, None)


def process_deposit(portfolios: Portfolios, account: Address, amount: Amount) -> None:
    """Credit a deposit of ``amount`` quote base units (> 0)."""
    if amount <= 0:
        raise RiskError("a deposit must be positive", field="amount")
    portfolios.balances[account] = portfolios.balances.get(account, 0) + amount


def process_withdrawal(portfolios: Portfolios, account: Address, amount: Amount) -> None:
    """Debit ``amount`` (> 0) if what remains still covers the requirement; else
    ``InsufficientCollateral`` and nothing changes."""
    if amount <= 0:
        raise RiskError("a withdrawal must be positive", field="amount")
    validate_fill(portfolios, account, (), -amount)
    portfolios.balances[account] -= amount
