"""The accounting of bonded stake: slashing splits, exits and stake snapshots (mirrors ``Bonds.vy``).

A bonded party's stake in one role is ``active`` (voting power, slashable) plus ``unbonding``
(slashable until withdrawn, not voting power). A slash takes active stake first, clamps to what is
there, and splits what it took into a reward and the insurance fund: nothing is ever minted.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum

from clearhouse.errors import DisputeError
from clearhouse.types import Amount, Timestamp

__all__ = [
    "Role",
    "SlashOutcome",
    "Stake",
    "compute_slash",
    "compute_stake_at",
    "is_withdrawable",
]


class Role(IntEnum):
    """Bonded roles; the values are the role ids of ``Bonds.vy`` (``ROLE_*``)."""

    COORDINATOR = 0
    ORACLE = 1
    ARBITRATOR = 2
    WATCHER = 3


@dataclass(frozen=True, slots=True)
class Stake:
    """One party's stake in one role."""

    active: Amount
    """Voting power; slashable; checkpointed."""
    unbonding: Amount
    """Requested for withdrawal; slashable until withdrawn; not voting power."""

    @property
    def slashable(self) -> Amount:
        """Everything a slasher could take now."""
        return Amount(self.active + self.unbonding)


@dataclass(frozen=True, slots=True)
class SlashOutcome:
    """What one ``Bonds.slash`` call moves."""

    slashed: Amount
    """Stake taken: ``min(requested, active + unbonding)``."""
    reward: Amount
    """Paid to the beneficiary: ``min(requested reward, slashed)``."""
    insurance: Amount
    """Kept in the insurance fund: ``slashed - reward``."""
    stake_after: Stake
    """The party's stake afterwards (active stake is taken first)."""


def compute_slash(stake: Stake, amount: Amount, reward_amount: Amount) -> SlashOutcome:
    """Slash up to ``amount`` of ``stake``, paying up to ``reward_amount`` of it as a reward."""
    if min(stake.active, stake.unbonding, amount, reward_amount) < 0:
        raise DisputeError("stake and slash amounts are non-negative", field="amount")
    slashed = min(amount, stake.slashable)
    from_active = min(slashed, stake.active)
    reward = min(reward_amount, slashed)
    after = Stake(Amount(stake.active - from_active),
                  Amount(stake.unbonding - (slashed - from_active)))
    return SlashOutcome(Amount(slashed), Amount(reward), Amount(slashed - reward), after)


def compute_stake_at(checkpoints: Sequence[tuple[Timestamp, Amount]], timestamp: Timestamp) -> Amount:
    """The value of the last checkpoint at or before ``timestamp`` (zero before the first).

    ``checkpoints`` are ``(timestamp, amount)`` in time order, one per second at most: the
    reference the contract's binary search is tested against.
    """
    value = Amount(0)
    for at, amount in checkpoints:
        if at > timestamp:
            break
        value = amount
    return value


def is_withdrawable(unbonding: Amount, ready_at: Timestamp, now: Timestamp) -> bool:
    """Whether an unbonding balance can be withdrawn at ``now``."""
    return unbonding > 0 and now >= ready_at
