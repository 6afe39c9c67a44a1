"""Economic security per role: what corrupting it costs against what it could gain, in one window.

Exact integers throughout (docs/protocol.md, "Economic security"):

- **cost of corruption** — the stake a corrupt quorum loses when its fault is proven: the
  coordinator's whole slashable bond (``Settlement`` takes all of it); for an oracle feed, the
  ``f+1`` members that can sign a wrong report, each losing ``min(slash_amount, slashable)``,
  cheapest first. A winning arbitration majority is never slashed by the protocol, so its cost is
  the stake it must hold: the bribery threshold.
- **profit from corruption** — what a corrupt quorum can move before it can be stopped: for the
  coordinator the collateral one window of batches can pay out (the vault; ``max_window_outflow``
  at the configured caps); for an oracle quorum the open interest's sensitivity to the settlement
  price over the reachable range ``[min(min_price, cap), min(max_price, cap)]``, summed over
  series, rounded up (``max_open_interest`` at the caps); for arbitration the largest live
  dispute (both bonds).
- **bribery threshold** — the least total stake of a set of stakers that reaches the quorum:
  ``f+1`` members for an oracle report, more than half of the arbitrator stake for a verdict, the
  coordinator's own bond.
- **time to exit** — ``T_force + W``: an ignored forced withdrawal lets anyone freeze after
  ``T_force``; the user's last batch is final ``W`` after it was posted.

A role is secure when ``cost >= 2 × profit`` (:data:`SAFETY_FACTOR`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final

from clearhouse.errors import ConfigError
from clearhouse.incentives.metrics import BPS, compute_hhi, compute_nakamoto_coefficient
from clearhouse.market.collateral import Listings
from clearhouse.market.instruments import OptionKind
from clearhouse.market.open_interest import (
    compute_open_interest,
    compute_payoff_range,
    compute_sensitivity,
)
from clearhouse.oracle.config import HubParams
from clearhouse.params import Params
from clearhouse.types import Address, Amount, Price, Quantity, SeriesId

__all__ = [
    "MAJORITY_BPS",
    "MAX_EXACT_STAKERS",
    "SAFETY_FACTOR",
    "Exposure",
    "RoleSecurity",
    "compute_arbitration_security",
    "compute_bribery_threshold",
    "compute_coordinator_security",
    "compute_default_security",
    "compute_exposures",
    "compute_open_interest",
    "compute_oracle_profit",
    "compute_oracle_security",
    "compute_payoff_range",
    "is_secure",
]

SAFETY_FACTOR: Final = 2
"""Cost of corruption must be at least this multiple of the profit from corruption."""
MAJORITY_BPS: Final = 5_000
"""A verdict needs strictly more than half of the revealed weight; with every honest arbitrator
revealing, strictly more than half of all arbitrator stake."""
MAX_EXACT_STAKERS: Final = 16
"""Up to this many stakers the bribery threshold is exact (a subset-sum search); above it the
lower bound ``⌊total · threshold⌋ + 1`` is reported, which can only overstate the danger."""


@dataclass(frozen=True, slots=True)
class Exposure:
    """Open interest in one series, as the settlement price moves it."""

    strike: Price
    """Strike, quote base units per whole contract."""
    is_call: bool
    """Call (pays ``S - K`` above the strike) or put (``K - S`` below)."""
    cap: Price
    """Settlement cap of the expiry: the price is clamped to ``[0, cap]``."""
    open_interest: Quantity
    """Long contracts outstanding (= short), in ``1 / contract_unit`` contract."""
    contract_unit: int
    """Quantity units per whole contract."""
    pair: str = ""
    """The feed that settles it (``"ETH/USDC"``); empty when there is one feed."""


@dataclass(frozen=True, slots=True)
class RoleSecurity:
    """The economic-security numbers of one role (or one oracle feed)."""

    role: str
    """``coordinator``, ``oracle`` (with the feed), ``arbitrator``."""
    stake: Amount
    """Active stake of the role, token base units."""
    stakers: int
    """Stakers with stake."""
    nakamoto: int | None
    """Fewest stakers with more than the quorum share of the stake."""
    hhi: int
    """HHI of stake shares, 0–10,000."""
    cost_of_corruption: Amount
    """Stake a corrupt quorum loses (see the module docstring)."""
    profit_from_corruption: Amount
    """What a corrupt quorum can move in one window."""
    bribery_threshold: Amount | None
    """Least total stake of a quorum-reaching set; ``None`` without stake."""

    @property
    def secure(self) -> bool:
        """``cost >= 2 × profit``."""
        return is_secure(self.cost_of_corruption, self.profit_from_corruption)


def is_secure(cost: int, profit: int) -> bool:
    """Whether corrupting costs at least :data:`SAFETY_FACTOR` times what it can gain."""
    return cost >= SAFETY_FACTOR * profit


def compute_exposures(positions: Mapping[Address, Mapping[SeriesId, Quantity]],
                      listings: Listings) -> list[Exposure]:
    """The open interest of every listed series with what moves it at settlement."""
    out = []
    for series_id, oi in compute_open_interest(positions).items():
        listing = listings.get(series_id)
        if listing is not None:
            s = listing.series
            out.append(Exposure(s.strike, s.kind is OptionKind.CALL, listing.cap, oi, listing.rules.contract_unit,
                                f"{s.pair.underlying}/{s.pair.quote}"))
    return out


def compute_oracle_profit(exposures: Iterable[Exposure], min_price: Price, max_price: Price) -> Amount:
    """Upper bound of what a corrupt oracle quorum moves at settlement:
    ``Σ ⌈oi · range / contract_unit⌉`` with ``range`` the payoff range over the prices the feed
    bounds and the cap let it report, ``[min(min_price, cap), min(max_price, cap)]``."""
    total = 0
    for e in exposures:
        if e.open_interest < 0 or e.contract_unit <= 0:
            raise ConfigError("open interest and contract unit must be positive", field="open_interest")
        low, high = Price(min(min_price, e.cap)), Price(min(max_price, e.cap))
        total += compute_sensitivity(e.open_interest, compute_payoff_range(e.strike, e.is_call, low, high),
                                     e.contract_unit)
    return Amount(total)


def compute_bribery_threshold(stakes: Iterable[int], threshold_bps: int) -> Amount | None:
    """The least total stake of a set of stakers holding strictly more than ``threshold_bps`` of
    all stake; ``None`` when there is none. Exact up to :data:`MAX_EXACT_STAKERS` stakers."""
    if not 0 <= threshold_bps < BPS:
        raise ConfigError("threshold must be in [0, 10000) basis points", field="threshold_bps")
    values = sorted((int(s) for s in stakes if int(s) > 0), reverse=True)
    total = sum(values)
    if total == 0:
        return None
    floor = total * threshold_bps // BPS  # a set reaches the threshold iff its stake > floor
    if len(values) > MAX_EXACT_STAKERS:
        return Amount(floor + 1)
    best = sum(values)
    sums = {0}
    for v in values:
        sums |= {s + v for s in sums if s + v < best}
        best = min([best, *(s for s in sums if s > floor)])
        sums = {s for s in sums if s <= floor}
    return Amount(best)


def _stake_numbers(stakes: Mapping[str, int], quorum_bps: int) -> tuple[Amount, int, int | None, int]:
    values = [v for v in stakes.values() if v > 0]
    return Amount(sum(values)), len(values), compute_nakamoto_coefficient(values, quorum_bps), compute_hhi(values)


def compute_coordinator_security(stakes: Mapping[str, int], slashable: Amount,
                                 window_outflow: Amount) -> RoleSecurity:
    """The coordinator role: ``slashable`` is the admitted coordinator's bond (all of it is
    slashed), ``window_outflow`` what one window of batches can pay out."""
    total, count, nakamoto, hhi = _stake_numbers(stakes, MAJORITY_BPS)
    return RoleSecurity("coordinator", total, count, nakamoto, hhi, slashable, window_outflow,
                        slashable if slashable > 0 else None)


def compute_oracle_security(role: str, slashable: Mapping[str, int], f: int, slash_amount: Amount,
                            profit: Amount) -> RoleSecurity:
    """One feed's committee: ``slashable`` per member; ``f+1`` signatures make a report."""
    if f < 1 or len(slashable) < f + 1:
        raise ConfigError("a committee has at least f+1 members and f >= 1", field="f")
    total, count, _, hhi = _stake_numbers(slashable, 0)
    quorum = f + 1
    cost = sum(sorted(min(slash_amount, s) for s in slashable.values())[:quorum])
    cheapest = sum(sorted(slashable.values())[:quorum])
    nakamoto = min(quorum, count) if count else None  # one member, one signature
    return RoleSecurity(role, total, count, nakamoto, hhi, Amount(cost), profit, Amount(cheapest))


def compute_arbitration_security(stakes: Mapping[str, int], largest_dispute: Amount) -> RoleSecurity:
    """Arbitrators: a majority of stake decides; a winning majority is not slashed, so its cost
    is the stake it must hold (the bribery threshold)."""
    total, count, nakamoto, hhi = _stake_numbers(stakes, MAJORITY_BPS)
    threshold = compute_bribery_threshold(stakes.values(), MAJORITY_BPS)
    return RoleSecurity("arbitrator", total, count, nakamoto, hhi, Amount(threshold or 0), largest_dispute,
                        threshold)


def compute_default_security(params: Params, hub: HubParams, f: int) -> dict[str, tuple[Amount, Amount]]:
    """``(cost, profit)`` per role at the configured caps, with every bonded party at its minimum:
    the coordinator bonded ``min_coordinator_bond`` against ``max_window_outflow``; ``f+1`` oracle
    members at ``min_stake`` each losing ``min(slash_amount, min_stake)`` against ``max_open_interest``."""
    oracle_cost = (f + 1) * min(hub.slash_amount, hub.min_stake)
    return {"coordinator": (params.min_coordinator_bond, params.max_window_outflow),
            "oracle": (Amount(oracle_cost), params.max_open_interest)}
