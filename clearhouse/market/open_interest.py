"""Open interest as settlement-price sensitivity, and its cap (``Params.max_open_interest``).

One definition (docs/protocol.md § Economic security): a series' open interest is the sum of the
long positions (= the short ones); its sensitivity is ``⌈long · range / contract_unit⌉`` quote
base units, ``range`` one whole contract's payoff range over ``[0, cap]`` (call ``cap − K``, put
``K``); the open interest of the venue is the sum over series. It bounds what a corrupt oracle
quorum can move at settlement (``incentives.security.compute_oracle_profit`` uses the same
functions over the feed's narrower price range), so the coordinator keeps it at most the cap.

:class:`OpenInterest` is kept incrementally by the ledger (one fill moves one or two series'
totals in O(1)); a fill that would raise it above the cap is refused with
:class:`~clearhouse.errors.OpenInterestCapReached`. A fill that lowers it is always allowed, so
a cap lowered below the current open interest only stops new exposure.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from clearhouse.errors import ConfigError, OpenInterestCapReached, UnlistedInstrument
from clearhouse.market.instruments import OptionKind
from clearhouse.types import Address, Amount, Price, Quantity, SeriesId

if TYPE_CHECKING:
    from clearhouse.market.collateral import Listings

__all__ = [
    "OpenInterest",
    "apply_long_change",
    "compute_contract_range",
    "compute_fill_long_change",
    "compute_long_change",
    "compute_long_changes",
    "compute_open_interest",
    "compute_open_interest_ledger",
    "compute_payoff_range",
    "compute_sensitivity",
    "compute_sensitivity_after",
    "has_room",
    "validate_open_interest",
]


@dataclass(slots=True)
class OpenInterest:
    """The venue's open interest per series and in total, against its cap."""

    cap: Amount
    """``Params.max_open_interest``: most total sensitivity, quote base units."""
    contract_unit: int
    """Quantity units per whole contract."""
    long: dict[SeriesId, int] = field(default_factory=dict)
    """Long contract units outstanding per series (no zero entries)."""
    sensitivity: dict[SeriesId, int] = field(default_factory=dict)
    """``⌈long · range / contract_unit⌉`` per series, quote base units (no zero entries)."""
    total: int = 0
    """Sum of ``sensitivity``, quote base units."""
    ranges: dict[SeriesId, int] = field(default_factory=dict)
    """Payoff range of one whole contract per series seen (a cache of :func:`compute_contract_range`)."""


def compute_payoff_range(strike: Price, is_call: bool, low: Price, high: Price) -> Price:
    """How far one whole contract's payoff moves as the price goes over ``[low, high]``."""
    if not 0 <= low <= high:
        raise ConfigError("need 0 <= low <= high", field="low")
    if is_call:
        return Price(max(0, high - strike) - max(0, low - strike))
    return Price(max(0, strike - low) - max(0, strike - high))


def compute_open_interest(positions: Mapping[Address, Mapping[SeriesId, Quantity]]
                          ) -> dict[SeriesId, Quantity]:
    """Open interest per series: the sum of the long positions (accounts → series → quantity)."""
    out: dict[SeriesId, int] = {}
    for held in positions.values():
        for series, quantity in held.items():
            if quantity > 0:
                out[series] = out.get(series, 0) + quantity
    return {s: Quantity(q) for s, q in sorted(out.items())}


def compute_sensitivity(long: int, contract_range: int, contract_unit: int) -> Amount:
    """``⌈long · contract_range / contract_unit⌉``: what ``long`` contract units can move."""
    return Amount(-(-long * contract_range // contract_unit))


def compute_long_change(position: int, before: int, after: int) -> int:
    """Change of an account's long quantity in a series holding ``position`` as a planned move on
    top of it goes from ``before`` to ``after`` (contract units)."""
    return max(0, position + after) - max(0, position + before)


def compute_contract_range(ledger: OpenInterest, listings: Listings, series_id: SeriesId) -> int:
    """One whole contract's payoff range over ``[0, cap]`` (quote base units), cached."""
    cached = ledger.ranges.get(series_id)
    if cached is not None:
        return cached
    listing = listings.get(series_id)
    if listing is None:
        raise UnlistedInstrument(f"series 0x{series_id.hex()} is not listed", field="seriesId")
    series = listing.series
    value = ledger.ranges[series_id] = compute_payoff_range(
        series.strike, series.kind is OptionKind.CALL, Price(0), listing.cap)
    return value


def compute_sensitivity_after(ledger: OpenInterest, listings: Listings,
                              changes: Mapping[SeriesId, int]) -> Amount:
    """The total sensitivity after the long totals move by ``changes`` (series → units)."""
    total = ledger.total
    for series_id, change in changes.items():
        if change:
            long = ledger.long.get(series_id, 0) + change
            contract_range = compute_contract_range(ledger, listings, series_id)
            total += (compute_sensitivity(long, contract_range, ledger.contract_unit)
                      - ledger.sensitivity.get(series_id, 0))
    return Amount(total)


def validate_open_interest(ledger: OpenInterest, listings: Listings,
                           changes: Mapping[SeriesId, int]) -> None:
    """Raise :class:`OpenInterestCapReached` if ``changes`` would take the total sensitivity above
    the cap and raise it (a change that lowers it always passes). Changes nothing."""
    after = compute_sensitivity_after(ledger, listings, changes)
    if after > ledger.cap and after > ledger.total:
        moved = next((s for s, c in changes.items() if c > 0), None)
        raise OpenInterestCapReached(None if moved is None else "0x" + moved.hex(), after,
                                     ledger.cap)


def has_room(ledger: OpenInterest, listings: Listings, series_id: SeriesId, quantity: int) -> bool:
    """Whether ``quantity`` more long units of ``series_id`` keep the total within the cap: then
    no fill of at most ``quantity`` units there can be refused (a fill raises the long total by at
    most its quantity)."""
    contract_range = ledger.ranges.get(series_id)
    if contract_range is None:
        contract_range = compute_contract_range(ledger, listings, series_id)
    long = ledger.long.get(series_id, 0) + quantity  # inline: it runs for every crossing order
    after = ledger.total - ledger.sensitivity.get(series_id, 0) - (-long * contract_range // ledger.contract_unit)
    return after <= ledger.cap


def compute_fill_long_change(positions: Mapping[Address, Mapping[SeriesId, int]],
                             series_id: SeriesId, buyer: Address, buyer_before: int,
                             seller: Address, seller_before: int, quantity: int) -> int:
    """Change of the series' long total when ``buyer`` buys ``quantity`` from ``seller`` on top of
    their planned moves ``buyer_before`` / ``seller_before`` (signed units, before this fill)."""
    buyer_held = positions.get(buyer)
    seller_held = positions.get(seller)
    buyer_position = 0 if buyer_held is None else buyer_held.get(series_id, 0)
    seller_position = 0 if seller_held is None else seller_held.get(series_id, 0)
    return (compute_long_change(buyer_position, buyer_before, buyer_before + quantity)
            + compute_long_change(seller_position, seller_before, seller_before - quantity))


def apply_long_change(ledger: OpenInterest, listings: Listings, series_id: SeriesId,
                      change: int) -> None:
    """Move the series' long total by ``change`` units and the sensitivities with it."""
    if not change:
        return
    long = ledger.long.get(series_id, 0) + change
    contract_range = ledger.ranges.get(series_id)  # inline: it runs for every account of every fill
    if contract_range is None:
        contract_range = compute_contract_range(ledger, listings, series_id)
    if long > 0:
        ledger.long[series_id] = long
        sensitivity = -(-long * contract_range // ledger.contract_unit)
    elif long == 0:
        del ledger.long[series_id]
        sensitivity = 0
    else:
        raise ConfigError("open interest cannot be negative", field="open_interest")
    before = ledger.sensitivity.get(series_id, 0)
    ledger.total += sensitivity - before
    if sensitivity:
        ledger.sensitivity[series_id] = sensitivity
    elif before:
        del ledger.sensitivity[series_id]


def compute_open_interest_ledger(cap: Amount, contract_unit: int, listings: Listings,
                                 positions: Mapping[Address, Mapping[SeriesId, Quantity]]
                                 ) -> OpenInterest:
    """A ledger of ``positions`` from scratch (once, when a ledger starts with positions)."""
    if cap < 0 or contract_unit <= 0:
        raise ConfigError("the cap must be >= 0 and the contract unit positive", field="max_open_interest")
    ledger = OpenInterest(cap, contract_unit)
    for series_id, long in compute_open_interest(positions).items():
        apply_long_change(ledger, listings, series_id, long)
    return ledger


def compute_long_changes(positions: Mapping[Address, Mapping[SeriesId, int]],
                         moves: Mapping[Address, Mapping[SeriesId, int]]) -> dict[SeriesId, int]:
    """Change of each series' long total when every account moves by ``moves`` (account →
    series → signed units) at once: an RFQ fill, all legs of both sides."""
    out: dict[SeriesId, int] = {}
    for account, moved in moves.items():
        held = positions.get(account)
        for series_id, quantity in moved.items():
            position = 0 if held is None else held.get(series_id, 0)
            out[series_id] = out.get(series_id, 0) + compute_long_change(position, 0, quantity)
    return out
