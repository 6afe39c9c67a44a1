"""Optimistic assertions: bounds, liveness, and who is paid what when one settles (mirrors ``Assertions.vy``).

An undisputed assertion is truthful after its liveness and the asserter gets the bond back. A
disputed one follows its arbitration: with a decision, the winner gets both bonds minus the voters'
pool ``floor(bond * voter_reward_bps / 10_000)`` (the rounding goes to the winner); without one,
both bonds are returned and the claim is not truthful.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from clearhouse.disputes.arbitration import (
    Reveal,
    Verdict,
    compute_tally,
    compute_verdict,
    compute_voter_rewards,
)
from clearhouse.disputes.config import BPS, DisputeParams
from clearhouse.errors import DuplicateAction, InvalidAssertion, OutsideWindow
from clearhouse.types import Address, Amount, BasisPoints, Seconds, Timestamp

__all__ = [
    "MAX_BOND",
    "SettlementPayouts",
    "compute_assertion_expiry",
    "compute_dispute_payouts",
    "compute_undisputed_payouts",
    "is_dispute_open",
    "process_dispute",
]

MAX_BOND = Amount(2**128 - 1)
"""Largest bond ``Assertions.vy`` accepts (keeps every pool × weight product within 256 bits)."""


@dataclass(frozen=True, slots=True)
class SettlementPayouts:
    """Where every token of a settled assertion goes."""

    truthful: bool
    """What consumers read from ``resolved(id)``."""
    verdict: Verdict | None
    """The arbitration's verdict; ``None`` if the assertion was not disputed."""
    asserter: Amount
    """Paid to the asserter on ``claim``."""
    disputer: Amount
    """Paid to the disputer on ``claim``."""
    voter_pool: Amount
    """Sent to ``Arbitration`` for the winning voters."""
    voter_rewards: Mapping[Address, Amount] = field(default_factory=dict)
    """Each winning voter's share of ``voter_pool`` (adds up to it exactly)."""

    @property
    def total(self) -> Amount:
        """Everything paid out: equals the bonds that came in."""
        return Amount(self.asserter + self.disputer + self.voter_pool)


def compute_assertion_expiry(params: DisputeParams, bond: Amount, liveness: Seconds,
                             now: Timestamp) -> Timestamp:
    """When a new assertion's liveness ends; raise :class:`InvalidAssertion` if out of bounds."""
    if bond < params.min_bond:
        raise InvalidAssertion(f"bond {bond} below minimum {params.min_bond}", field="bond")
    if bond > MAX_BOND:
        raise InvalidAssertion(f"bond {bond} too large", field="bond")
    if liveness < params.min_liveness:
        raise InvalidAssertion(f"liveness {liveness}s below minimum {params.min_liveness}s",
                               field="liveness")
    return Timestamp(now + liveness)


def is_dispute_open(expires_at: Timestamp, now: Timestamp) -> bool:
    """Whether an assertion can still be disputed at ``now`` (its liveness is not over)."""
    return now < expires_at


def process_dispute(expires_at: Timestamp, disputer: Address | None, now: Timestamp) -> None:
    """Check a dispute is allowed: not already disputed, liveness not over."""
    if disputer is not None:
        raise DuplicateAction(f"already disputed by {disputer}", field="assertion")
    if not is_dispute_open(expires_at, now):
        raise OutsideWindow("liveness is over", field="assertion", expires_at=expires_at)


def compute_undisputed_payouts(bond: Amount) -> SettlementPayouts:
    """An undisputed assertion after its liveness: truthful, the bond goes back to the asserter."""
    return SettlementPayouts(True, None, bond, Amount(0), Amount(0))


def compute_dispute_payouts(bond: Amount, voter_reward_bps: BasisPoints, reveals: Sequence[Reveal],
                            total_weight: Amount, quorum_bps: BasisPoints) -> SettlementPayouts:
    """Payouts of a disputed assertion (two bonds of ``bond``) from its reveals, in reveal order."""
    verdict = compute_verdict(compute_tally(reveals, total_weight), quorum_bps)
    if verdict is Verdict.NO_DECISION:
        return SettlementPayouts(False, verdict, bond, bond, Amount(0))
    pool = Amount(bond * voter_reward_bps // BPS)
    winner = Amount(2 * bond - pool)
    truthful = verdict is Verdict.TRUTHFUL
    return SettlementPayouts(
        truthful=truthful,
        verdict=verdict,
        asserter=winner if truthful else Amount(0),
        disputer=Amount(0) if truthful else winner,
        voter_pool=pool,
        voter_rewards=compute_voter_rewards(pool, reveals, verdict),
    )
