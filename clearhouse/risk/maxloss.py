"""Exact max-loss collateral (DESIGN §4): an account always holds its worst-case loss at expiry.

For one account and one expiry (pair + timestamp) the payoff of its options is piecewise linear in
the settlement price ``S ∈ [0, cap]`` with kinks at the strikes, so its minimum is attained at ``0``,
a strike or ``cap``. Exactly in integers, with ``q`` signed contract units and ``u = contract_unit``::

    payoff(S) = Σ q · intrinsic(S) / u                      intrinsic = max(0, S-K) or max(0, K-S)
    requirement = Σ_expiries ceil(max(0, -min_S payoff(S)))  ceil rounds against the user

Expiries never offset each other (a calendar spread is collateralised leg by leg in time).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from clearhouse.errors import InsufficientCollateral, InvalidInstrument, UnlistedInstrument
from clearhouse.market.instruments import (
    Expiry,
    OptionKind,
    Pair,
    Series,
    compute_intrinsic_value,
    compute_premium_amount,
    validate_quantity,
)
from clearhouse.types import Amount, Price, Quantity, Timestamp

__all__ = [
    "CapitalEfficiency",
    "ExpiryKey",
    "Portfolio",
    "TradeLeg",
    "compute_capital_efficiency",
    "compute_caps",
    "compute_critical_prices",
    "compute_expiry_requirement",
    "compute_min_payoff_scaled",
    "compute_naive_requirement",
    "compute_payoff_scaled",
    "compute_positions_after_trade",
    "compute_premium_flow",
    "compute_requirement",
    "compute_requirement_after_trade",
    "get_expiry_key",
    "validate_collateral",
    "validate_trade_collateral",
]

ExpiryKey = tuple[Pair, Timestamp]
"""One settlement price: the pair and the expiry timestamp."""

Portfolio = Mapping[Series, Quantity]
"""An account's open positions: signed quantities (long > 0) in contract units."""


@dataclass(frozen=True, slots=True)
class TradeLeg:
    """One leg of a (possibly multi-leg) trade, seen from the taker."""

    series: Series
    """The series traded."""
    quantity: Quantity
    """Contract units the taker buys (> 0) or sells (< 0); the maker takes the opposite."""
    premium: Price
    """Premium per whole contract, quote base units; the buyer pays it to the seller."""


@dataclass(frozen=True, slots=True)
class CapitalEfficiency:
    """Exact requirement of a strategy next to the naive per-leg requirement."""

    name: str
    """Strategy name (``short iron condor``…)."""
    exact: Amount
    """Exact max-loss requirement, quote base units."""
    naive: Amount
    """Per-leg requirement: short call ``cap - K``, short put ``K``, long legs 0 (quote base units)."""


def get_expiry_key(series: Series) -> ExpiryKey:
    """The settlement price a series depends on."""
    return (series.pair, series.expiry)


def compute_caps(expiries: Iterable[Expiry]) -> dict[ExpiryKey, Price]:
    """The cap of every listed expiry, keyed by :data:`ExpiryKey`."""
    return {(e.pair, e.timestamp): e.cap for e in expiries}


def compute_payoff_scaled(positions: Portfolio, settlement: Price) -> int:
    """``contract_unit ×`` the payoff at ``settlement`` of positions on one expiry (exact integer)."""
    return sum(q * compute_intrinsic_value(s.kind, s.strike, settlement) for s, q in positions.items())


def compute_critical_prices(positions: Portfolio, cap: Price) -> tuple[Price, ...]:
    """Where the minimum can be: ``0``, ``cap`` and every strike inside ``(0, cap)``, sorted."""
    strikes = {s.strike for s, q in positions.items() if q and 0 < s.strike < cap}
    return tuple(sorted({Price(0), cap} | strikes))


def compute_min_payoff_scaled(positions: Portfolio, cap: Price) -> int:
    """``contract_unit ×`` the minimum payoff over ``[0, cap]`` of positions on one expiry."""
    return min(compute_payoff_scaled(positions, s) for s in compute_critical_prices(positions, cap))


def compute_expiry_requirement(positions: Portfolio, cap: Price, contract_unit: int) -> Amount:
    """Collateral for one expiry: ``ceil(max(0, -min payoff))`` in quote base units."""
    worst = -compute_min_payoff_scaled(positions, cap)
    return Amount(max(0, -(-worst // contract_unit)))


def _by_expiry(positions: Portfolio) -> dict[ExpiryKey, dict[Series, Quantity]]:
    groups: dict[ExpiryKey, dict[Series, Quantity]] = defaultdict(dict)
    for series, quantity in positions.items():
        if quantity:
            groups[get_expiry_key(series)][series] = quantity
    return groups


def _cap(caps: Mapping[ExpiryKey, Price], key: ExpiryKey) -> Price:
    if key not in caps:
        raise UnlistedInstrument(f"no cap for {key[0].underlying} expiry {key[1]}", field="expiry")
    return caps[key]


def compute_requirement(positions: Portfolio, caps: Mapping[ExpiryKey, Price],
                        contract_unit: int) -> Amount:
    """Exact max-loss requirement of an account: the sum over its expiries."""
    return Amount(sum(compute_expiry_requirement(group, _cap(caps, key), contract_unit)
                      for key, group in _by_expiry(positions).items()))


def compute_positions_after_trade(positions: Portfolio, legs: Sequence[TradeLeg], side: int
                                  ) -> dict[Series, Quantity]:
    """Positions after a trade; ``side`` is ``+1`` for the taker, ``-1`` for the maker.
    Closed positions (quantity 0) are dropped."""
    if side not in (1, -1):
        raise InvalidInstrument("side must be +1 (taker) or -1 (maker)", field="side")
    after = dict(positions)
    for leg in legs:
        quantity = validate_quantity(leg.quantity)
        after[leg.series] = Quantity(after.get(leg.series, 0) + side * quantity)
    return {s: q for s, q in after.items() if q}


def compute_premium_flow(legs: Sequence[TradeLeg], side: int, contract_unit: int) -> int:
    """Net premium the account receives (> 0) or pays (< 0), quote base units, exact."""
    return sum(-side * (1 if leg.quantity > 0 else -1)
               * compute_premium_amount(leg.premium, leg.quantity, contract_unit) for leg in legs)


def compute_requirement_after_trade(positions: Portfolio, legs: Sequence[TradeLeg], side: int,
                                    caps: Mapping[ExpiryKey, Price], contract_unit: int) -> Amount:
    """Requirement of the account after it takes ``side`` of the trade."""
    return compute_requirement(compute_positions_after_trade(positions, legs, side), caps,
                               contract_unit)


def validate_collateral(account: object, positions: Portfolio, balance: int,
                        caps: Mapping[ExpiryKey, Price], contract_unit: int) -> Amount:
    """Raise :class:`InsufficientCollateral` unless ``balance`` covers the requirement; return it."""
    required = compute_requirement(positions, caps, contract_unit)
    if balance < required:
        raise InsufficientCollateral(account, required, balance)
    return required


def validate_trade_collateral(account: object, positions: Portfolio, balance: int,
                              legs: Sequence[TradeLeg], side: int,
                              caps: Mapping[ExpiryKey, Price], contract_unit: int) -> Amount:
    """Check one side of a trade: the balance after premiums must cover the requirement after the
    trade. Returns that requirement; raises :class:`InsufficientCollateral` (``available`` is the
    balance after premiums). Call it for the taker (``+1``) and the maker (``-1``)."""
    after = balance + compute_premium_flow(legs, side, contract_unit)
    return validate_collateral(account, compute_positions_after_trade(positions, legs, side),
                               after, caps, contract_unit)


# --- capital efficiency ------------------------------------------------------------------------


def compute_naive_requirement(positions: Portfolio, caps: Mapping[ExpiryKey, Price],
                              contract_unit: int) -> Amount:
    """The per-leg requirement a venue without portfolio margin would ask: short call ``cap - K``,
    short put ``K``, long legs 0 (per whole contract, rounded up once)."""
    scaled = sum(-q * (_cap(caps, get_expiry_key(s)) - s.strike if s.kind is OptionKind.CALL
                       else s.strike)
                 for s, q in positions.items() if q < 0)
    return Amount(-(-scaled // contract_unit))


def compute_capital_efficiency(name: str, positions: Portfolio, caps: Mapping[ExpiryKey, Price],
                               contract_unit: int) -> CapitalEfficiency:
    """The exact and the naive requirement of one strategy, side by side."""
    return CapitalEfficiency(name, compute_requirement(positions, caps, contract_unit),
                             compute_naive_requirement(positions, caps, contract_unit))
