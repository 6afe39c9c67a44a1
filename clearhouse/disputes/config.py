"""The parameters of bonds, assertions and arbitration, and the relations between them.

One frozen object holds exactly what the ``Bonds``, ``Arbitration`` and ``Assertions``
constructors take, so deployment scripts and tests build the contracts from it and the rules in
this package read the same numbers.
"""

from __future__ import annotations

from dataclasses import dataclass

from clearhouse.errors import ConfigError
from clearhouse.types import Amount, BasisPoints, Seconds

__all__ = ["BPS", "DisputeParams"]

BPS = 10_000
"""Denominator of every :data:`~clearhouse.types.BasisPoints` parameter (100 %)."""


@dataclass(frozen=True, slots=True)
class DisputeParams:
    """Constructor arguments of the dispute contracts, checked against each other on creation."""

    unbonding_delay: Seconds
    """``Bonds``: seconds from an unbonding request to the withdrawal; longer than every slashing window."""
    commit_period: Seconds
    """``Arbitration``: seconds of the commit phase, counted from the dispute."""
    reveal_period: Seconds
    """``Arbitration``: seconds of the reveal phase, right after the commit phase."""
    penalty_window: Seconds
    """``Arbitration``: seconds after the reveal phase during which voter penalties surely find stake."""
    quorum_bps: BasisPoints
    """``Arbitration``: revealed weight needed for a decision, share of all arbitrator stake at the snapshot."""
    voter_slash_bps: BasisPoints
    """``Arbitration``: share of a faulty voter's weight slashed (no reveal, or losing side)."""
    min_bond: Amount
    """``Assertions``: smallest bond, token base units; it must exceed the cost to grief a dispute."""
    min_liveness: Seconds
    """``Assertions``: shortest liveness an asserter may choose."""
    voter_reward_bps: BasisPoints
    """``Assertions``: share of the losing bond paid to the winning voters (the rest goes to the winner)."""

    def __post_init__(self) -> None:
        for name in ("unbonding_delay", "commit_period", "reveal_period", "penalty_window",
                     "min_bond", "min_liveness"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name} must be positive", field=name)
        for name in ("quorum_bps", "voter_slash_bps", "voter_reward_bps"):
            if not 0 <= getattr(self, name) <= BPS:
                raise ConfigError(f"{name} must be within [0, {BPS}]", field=name)
        # Stake that voted must still be in Bonds until penalties can no longer be missed.
        if self.unbonding_delay < self.commit_period + self.reveal_period + self.penalty_window:
            raise ConfigError("unbonding_delay must cover commit + reveal + penalty window",
                              field="unbonding_delay")

    def bonds_args(self, token: str) -> tuple[str, int]:
        """``Bonds(token, unbonding_delay)`` constructor arguments."""
        return token, self.unbonding_delay

    def arbitration_args(self, bonds: str) -> tuple[str, int, int, int, int, int]:
        """``Arbitration(bonds, commit, reveal, penalty window, quorum bps, slash bps)`` arguments."""
        return (bonds, self.commit_period, self.reveal_period, self.penalty_window,
                self.quorum_bps, self.voter_slash_bps)

    def assertions_args(self, arbitration: str) -> tuple[str, int, int, int]:
        """``Assertions(arbitration, min bond, min liveness, voter reward bps)`` arguments."""
        return arbitration, self.min_bond, self.min_liveness, self.voter_reward_bps
