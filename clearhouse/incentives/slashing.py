"""Slashing distribution: for every provable fault, who loses what and where every unit goes.

One rule set, one home. :data:`RULES` says it as data (docs/protocol.md, "Slashing
distribution"); the ``compute_*_split`` functions compute the exact integer split the contracts
move, from :class:`SlashingParams`, which holds the very numbers the contracts are deployed with
(``Settlement.reward_bps``, ``OracleHub.slash_amount`` / ``prover_reward_bps``,
``Arbitration.slash_bps``, ``Assertions.voter_reward_bps``, the windows and unbonding delays).

Every split adds up to what was taken (slashing never mints: :class:`Split` refuses otherwise)
and nothing is burned today: what the prover and the voters do not get stays in ``Bonds``'
insurance fund. :func:`compute_slashable_windows` lists, per ``Bonds`` registry, how long after
a fault its stake can still be taken; :func:`validate_slashing_params` refuses parameters whose
unbonding delay does not outlast every one of them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Final

from clearhouse.disputes.bonds import Role
from clearhouse.disputes.config import BPS, DisputeParams
from clearhouse.errors import ConfigError, DisputeError
from clearhouse.oracle.config import HubParams
from clearhouse.params import Params, compute_exit_bound
from clearhouse.types import Amount, BasisPoints, Seconds

__all__ = [
    "RULES",
    "Fault",
    "SlashRule",
    "SlashingParams",
    "Split",
    "compute_bad_batch_split",
    "compute_lost_assertion_split",
    "compute_oracle_fault_split",
    "compute_slashable_windows",
    "compute_split",
    "compute_voter_penalty_split",
    "validate_slashing_params",
]


_ZERO: Final = Amount(0)


class Fault(Enum):
    """Every fault the contracts can prove, by the entry point that proves it."""

    BAD_BATCH = "bad_batch"
    """``Settlement.challenge_queues`` / ``challenge_payouts`` / ``report_execution_fraud``."""
    ORACLE_EQUIVOCATION = "oracle_equivocation"
    """``OracleHub.prove_equivocation``: two observations of one member for one round."""
    WRONG_OPTIMISTIC_ROUND = "wrong_optimistic_round"
    """``OracleDisputes.challenge``: 2f+1 observations on one side of an optimistic round."""
    WRONG_ROUND_ARBITRATED = "wrong_round_arbitrated"
    """``OracleDisputes.resolve``: arbitration (or an undefended dispute) found a round wrong;
    each accused member is slashed."""
    LOST_ASSERTION = "lost_assertion"
    """``Assertions.settle`` after a decision: the losing side's bond."""
    ARBITRATOR_NON_REVEAL = "arbitrator_non_reveal"
    """``Arbitration.penalize``: a committed voter who never revealed."""
    ARBITRATOR_LOSING_SIDE = "arbitrator_losing_side"
    """``Arbitration.penalize``: a voter who revealed for the losing side of a decision."""


@dataclass(frozen=True, slots=True)
class SlashRule:
    """One row of the rule set: who is slashed, how much, and where it goes."""

    fault: Fault
    """The fault."""
    role: Role | None
    """The ``Bonds`` role slashed; ``None`` when a posted bond is lost, not stake."""
    amount: str
    """How much is taken (the formula :func:`compute_split` evaluates)."""
    prover: str
    """What whoever proved it (challenger, disputer, winner of the assertion) receives."""
    voters: str
    """What the arbitrators who voted for the right outcome share."""
    insurance: str
    """What stays in the ``Bonds`` insurance fund."""
    burned: str = "0"
    """What is destroyed (nothing today)."""


RULES: Final[Mapping[Fault, SlashRule]] = {r.fault: r for r in (
    SlashRule(Fault.BAD_BATCH, Role.COORDINATOR, "all slashable coordinator stake S",
              "⌊S · coordinator_reward_bps / 10⁴⌋", "0", "the rest"),
    SlashRule(Fault.ORACLE_EQUIVOCATION, Role.ORACLE, "min(oracle_slash_amount, slashable)",
              "⌊taken · oracle_prover_reward_bps / 10⁴⌋", "0", "the rest"),
    SlashRule(Fault.WRONG_OPTIMISTIC_ROUND, Role.ORACLE, "min(oracle_slash_amount, slashable) of the poster",
              "⌊taken · oracle_prover_reward_bps / 10⁴⌋", "0", "the rest"),
    SlashRule(Fault.WRONG_ROUND_ARBITRATED, Role.ORACLE,
              "min(oracle_slash_amount, slashable) of each accused member",
              "⌊taken · oracle_prover_reward_bps / 10⁴⌋ each (credited to the disputer)", "0", "the rest"),
    SlashRule(Fault.LOST_ASSERTION, None, "the losing bond B",
              "B - pool (plus its own bond back)", "pool = ⌊B · voter_reward_bps / 10⁴⌋", "0"),
    SlashRule(Fault.ARBITRATOR_NON_REVEAL, Role.ARBITRATOR, "min(⌊weight · voter_slash_bps / 10⁴⌋, slashable)",
              "0", "0", "all of it"),
    SlashRule(Fault.ARBITRATOR_LOSING_SIDE, Role.ARBITRATOR, "min(⌊weight · voter_slash_bps / 10⁴⌋, slashable)",
              "0", "0", "all of it"),
)}
"""The rule set, one row per fault (docs/protocol.md, "Slashing distribution")."""


@dataclass(frozen=True, slots=True)
class SlashingParams:
    """The numbers the slashing contracts are deployed with, and the windows they must outlast."""

    coordinator_reward_bps: BasisPoints
    """``Settlement.reward_bps``: share of a slashed coordinator bond paid to the challenger."""
    challenge_window: Seconds
    """``Settlement.challenge_window`` (``W``): a batch can be proven wrong this long after posting."""
    force_withdrawal_delay: Seconds
    """``Settlement.t_force``: a forced withdrawal unserved this long lets anyone freeze."""
    timelock: Seconds
    """Governance timelock: an executed decision (re-admitting a coordinator, new parameters)
    waits this long, during which the bonded parties it concerns must stay slashable."""
    settlement_unbonding_delay: Seconds
    """``Bonds.unbonding_delay`` of the registry holding the coordinator's bond."""
    hub: HubParams
    """``OracleHub`` / ``OracleDisputes``: slash amount, prover reward, dispute window and liveness."""
    disputes: DisputeParams
    """``Bonds`` (oracle and arbitrator stake), ``Arbitration`` and ``Assertions``."""

    def __post_init__(self) -> None:
        validate_slashing_params(self)

    @classmethod
    def from_params(cls, params: Params, coordinator_reward_bps: BasisPoints, hub: HubParams,
                    disputes: DisputeParams) -> SlashingParams:
        """A preset's windows and unbonding delay (``Params``) with the oracle and dispute contracts'."""
        return cls(coordinator_reward_bps, params.challenge_window, params.force_withdrawal_delay, params.timelock,
                   params.unbonding_delay, hub, disputes)


@dataclass(frozen=True, slots=True)
class Split:
    """Where every unit of one slash (or one lost bond) goes."""

    fault: Fault
    """What was proven."""
    slashed: Amount
    """Taken from the offender (its stake, or its bond for :attr:`Fault.LOST_ASSERTION`)."""
    prover: Amount
    """To whoever proved it: challenger, disputer, or the assertion's winner."""
    voters: Amount
    """To the arbitrators on the winning side (shared by ``compute_voter_rewards``)."""
    insurance: Amount
    """Kept in the ``Bonds`` insurance fund."""
    burned: Amount = _ZERO
    """Destroyed."""

    def __post_init__(self) -> None:
        parts = (self.prover, self.voters, self.insurance, self.burned)
        if min(self.slashed, *parts) < 0 or sum(parts) != self.slashed:
            raise DisputeError("a split must add up to what was slashed", field="slashed",
                               fault=self.fault.value)


def _bps(amount: int, bps: int) -> Amount:
    return Amount(amount * bps // BPS)


def _non_negative(**amounts: int) -> None:
    for name, value in amounts.items():
        if value < 0:
            raise DisputeError(f"{name} cannot be negative", field=name)


def compute_bad_batch_split(params: SlashingParams, slashable: Amount) -> Split:
    """A proven bad batch: ``Settlement`` takes the poster's whole slashable coordinator stake."""
    _non_negative(slashable=slashable)
    reward = _bps(slashable, params.coordinator_reward_bps)
    return Split(Fault.BAD_BATCH, slashable, reward, Amount(0), Amount(slashable - reward))


def compute_oracle_fault_split(params: SlashingParams, fault: Fault, slashable: Amount) -> Split:
    """One oracle member's slash for ``fault`` (equivocation, a wrong optimistic round, a round
    arbitration found wrong): ``min(slash_amount, slashable)``, the prover's share of it."""
    if fault not in (Fault.ORACLE_EQUIVOCATION, Fault.WRONG_OPTIMISTIC_ROUND, Fault.WRONG_ROUND_ARBITRATED):
        raise DisputeError(f"{fault.value} is not an oracle fault", field="fault")
    _non_negative(slashable=slashable)
    taken = Amount(min(params.hub.slash_amount, slashable))
    reward = _bps(taken, params.hub.prover_reward_bps)
    return Split(fault, taken, reward, Amount(0), Amount(taken - reward))


def compute_lost_assertion_split(params: SlashingParams, bond: Amount) -> Split:
    """The losing bond of a decided assertion: the voters' pool, the rest to the winner."""
    _non_negative(bond=bond)
    pool = _bps(bond, params.disputes.voter_reward_bps)
    return Split(Fault.LOST_ASSERTION, bond, Amount(bond - pool), pool, Amount(0))


def compute_voter_penalty_split(params: SlashingParams, fault: Fault, weight: Amount,
                                slashable: Amount) -> Split:
    """A faulty voter's penalty: ``⌊weight · voter_slash_bps / 10⁴⌋`` clamped to what is left,
    all of it to the insurance fund."""
    if fault not in (Fault.ARBITRATOR_NON_REVEAL, Fault.ARBITRATOR_LOSING_SIDE):
        raise DisputeError(f"{fault.value} is not a voter fault", field="fault")
    _non_negative(weight=weight, slashable=slashable)
    taken = Amount(min(_bps(weight, params.disputes.voter_slash_bps), slashable))
    return Split(fault, taken, Amount(0), Amount(0), taken)


def compute_split(params: SlashingParams, fault: Fault, slashable: Amount, weight: Amount = _ZERO) -> Split:
    """The split of any fault. ``slashable`` is the offender's slashable stake in the fault's role
    (the losing bond for :attr:`Fault.LOST_ASSERTION`); ``weight`` a voter's voting weight."""
    if fault is Fault.BAD_BATCH:
        return compute_bad_batch_split(params, slashable)
    if fault is Fault.LOST_ASSERTION:
        return compute_lost_assertion_split(params, slashable)
    if fault in (Fault.ARBITRATOR_NON_REVEAL, Fault.ARBITRATOR_LOSING_SIDE):
        return compute_voter_penalty_split(params, fault, weight, slashable)
    return compute_oracle_fault_split(params, fault, slashable)


def compute_slashable_windows(params: SlashingParams) -> dict[str, tuple[Role, Seconds]]:
    """Per window in which stake can still be taken: the role it concerns and the longest time from
    the offender's last chance to unbond (at the latest, the fault) to the slash.

    - ``challenge window``: a batch posted now is proven wrong up to ``W`` later.
    - ``forced exit``: a coordinator that ignores a forced withdrawal is noticed after ``T_force``,
      its last batches still challengeable for ``W``, and an emergency pause moves the freeze
      deadline by up to ``MAX_PAUSE`` (``T_force + W + MAX_PAUSE``, :func:`compute_exit_bound`).
    - ``governance timelock``: stake that vouches for a decision stays until it executes.
    - ``oracle dispute``: a round disputed at the end of its ``dispute_window`` resolves after the
      assertion's liveness and the commit and reveal phases (``OracleDisputes``' own bound).
    - ``arbitration penalty``: a voter is penalised up to ``penalty_window`` after the reveal phase.
    """
    hub, d = params.hub, params.disputes
    return {
        "challenge window": (Role.COORDINATOR, params.challenge_window),
        "forced exit": (Role.COORDINATOR, compute_exit_bound(params.force_withdrawal_delay, params.challenge_window)),
        "governance timelock": (Role.COORDINATOR, params.timelock),
        "oracle dispute": (Role.ORACLE, Seconds(hub.dispute_window + hub.dispute_liveness + d.commit_period
                                                + d.reveal_period)),
        "arbitration penalty": (Role.ARBITRATOR, Seconds(d.commit_period + d.reveal_period + d.penalty_window)),
    }


def validate_slashing_params(params: SlashingParams) -> None:
    """Refuse parameters under which stake could leave before a fault it backs can be slashed, or a
    slash could pay out more than it takes."""
    if not 0 <= params.coordinator_reward_bps <= BPS:
        raise ConfigError(f"coordinator_reward_bps must be within [0, {BPS}]", field="coordinator_reward_bps")
    for name in ("challenge_window", "force_withdrawal_delay", "timelock", "settlement_unbonding_delay"):
        if getattr(params, name) <= 0:
            raise ConfigError(f"{name} must be positive", field=name)
    if params.timelock <= compute_exit_bound(params.force_withdrawal_delay, params.challenge_window):
        raise ConfigError("timelock must exceed T_force + W + MAX_PAUSE", field="timelock")
    delays = {Role.COORDINATOR: params.settlement_unbonding_delay, Role.ORACLE: params.disputes.unbonding_delay,
              Role.ARBITRATOR: params.disputes.unbonding_delay}
    for window, (role, length) in compute_slashable_windows(params).items():
        if delays[role] <= length:
            field = "settlement_unbonding_delay" if role is Role.COORDINATOR else "disputes.unbonding_delay"
            raise ConfigError(f"unbonding delay {delays[role]} s must outlast the {window} ({length} s)",
                              field=field, window=window)
