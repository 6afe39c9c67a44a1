"""Commit-reveal arbitration by bonded stakers: commitments, phases, tally, verdict, rewards, penalties.

This is the specification ``Arbitration.vy`` implements (docs/protocol.md, "Bonds, assertions and
arbitration"). Voting power is arbitrator stake at ``opened_at - 1``; a strict majority of revealed
weight with quorum decides; a tie or no quorum is no decision. The winning voters share a pool by
cumulative flooring in reveal order, so their shares add up to the pool exactly.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum

from eth_utils import to_canonical_address

from clearhouse.disputes.config import BPS
from clearhouse.errors import CommitmentMismatch, DuplicateAction, MalformedMessage, OutsideWindow
from clearhouse.messages.keccak import keccak256
from clearhouse.types import Address, Amount, BasisPoints, Digest, Timestamp

__all__ = [
    "Ballot",
    "Phase",
    "Reveal",
    "Tally",
    "Verdict",
    "compute_reveal",
    "compute_snapshot_time",
    "compute_tally",
    "compute_verdict",
    "compute_vote_commitment",
    "compute_voter_penalty",
    "compute_voter_rewards",
    "get_phase",
    "is_voter_at_fault",
]


class Verdict(Enum):
    """The result of an arbitration once its reveal phase is over."""

    TRUTHFUL = "truthful"
    """A strict majority of revealed weight, with quorum, voted that the assertion is true."""
    FALSE = "false"
    """A strict majority of revealed weight, with quorum, voted that it is not."""
    NO_DECISION = "no_decision"
    """A tie (including no reveals at all) or revealed weight below quorum."""


class Phase(Enum):
    """Where a dispute is in time."""

    COMMIT = "commit"
    """``[opened_at, commit_end)``: voters commit."""
    REVEAL = "reveal"
    """``[commit_end, reveal_end)``: voters (or anyone with their salt) reveal."""
    RESOLVED = "resolved"
    """From ``reveal_end``: the verdict is final; rewards and penalties can be processed."""


@dataclass(frozen=True, slots=True)
class Ballot:
    """A committed vote, before its reveal."""

    voter: Address
    """The arbitrator who committed."""
    weight: Amount
    """Their voting power: arbitrator stake at the dispute's snapshot."""
    commitment: Digest
    """``keccak256(abi_encode(vote, salt, voter))``."""


@dataclass(frozen=True, slots=True)
class Reveal:
    """A revealed vote. Sequences of reveals are in reveal order (which orders reward rounding)."""

    voter: Address
    """The arbitrator."""
    weight: Amount
    """Their voting power at the snapshot."""
    vote: bool
    """True: the assertion is truthful."""


@dataclass(frozen=True, slots=True)
class Tally:
    """Revealed weight per side, and the quorum base."""

    weight_true: Amount
    """Weight revealed for "truthful"."""
    weight_false: Amount
    """Weight revealed for "not truthful"."""
    total_weight: Amount
    """All arbitrator stake at the snapshot (the quorum is a share of it)."""


def compute_vote_commitment(vote: bool, salt: bytes, voter: Address) -> Digest:
    """``keccak256(abi_encode(bool vote, bytes32 salt, address voter))``: what a voter commits."""
    if len(salt) != 32:
        raise MalformedMessage("salt must be 32 bytes", field="salt")
    return keccak256(int(vote).to_bytes(32, "big") + salt
                     + to_canonical_address(voter).rjust(32, b"\x00"))


def compute_snapshot_time(opened_at: Timestamp) -> Timestamp:
    """The second whose end-of-second stake is voting power: the one before the dispute opened."""
    return Timestamp(opened_at - 1)


def get_phase(commit_end: Timestamp, reveal_end: Timestamp, now: Timestamp) -> Phase:
    """The phase of a dispute at ``now``."""
    if now < commit_end:
        return Phase.COMMIT
    if now < reveal_end:
        return Phase.REVEAL
    return Phase.RESOLVED


def compute_reveal(ballot: Ballot, vote: bool, salt: bytes, phase: Phase) -> Reveal:
    """The reveal of ``ballot``; raise unless it is the reveal phase and ``(vote, salt)`` match."""
    if phase is not Phase.REVEAL:
        raise OutsideWindow(f"cannot reveal in the {phase.value} phase", field="phase",
                            voter=ballot.voter)
    if compute_vote_commitment(vote, salt, ballot.voter) != ballot.commitment:
        raise CommitmentMismatch("vote and salt do not match the commitment", field="salt",
                                 voter=ballot.voter)
    return Reveal(ballot.voter, ballot.weight, vote)


def compute_tally(reveals: Sequence[Reveal], total_weight: Amount) -> Tally:
    """Sum revealed weight per side; raise :class:`DuplicateAction` if a voter revealed twice."""
    seen: set[str] = set()
    for r in reveals:
        if r.voter.lower() in seen:
            raise DuplicateAction(f"{r.voter} revealed twice", field="voter", voter=r.voter)
        seen.add(r.voter.lower())
    weight_true = sum(r.weight for r in reveals if r.vote)
    weight_false = sum(r.weight for r in reveals if not r.vote)
    return Tally(Amount(weight_true), Amount(weight_false), total_weight)


def compute_verdict(tally: Tally, quorum_bps: BasisPoints) -> Verdict:
    """Strict majority of revealed weight, if revealed weight reaches ``quorum_bps`` of the total."""
    if tally.weight_true == tally.weight_false:
        return Verdict.NO_DECISION
    if (tally.weight_true + tally.weight_false) * BPS < quorum_bps * tally.total_weight:
        return Verdict.NO_DECISION
    return Verdict.TRUTHFUL if tally.weight_true > tally.weight_false else Verdict.FALSE


def compute_voter_rewards(pool: Amount, reveals: Sequence[Reveal], verdict: Verdict) -> dict[Address, Amount]:
    """Each winning voter's share of ``pool``: ``floor(P(C+w)/W) - floor(PC/W)``.

    ``C`` is the winning weight revealed before the voter and ``W`` all winning weight, so the
    shares add up to ``pool`` exactly (no dust) and each is within one unit of ``P·w/W``.
    Empty without a decision (then nothing is funded).
    """
    if verdict is Verdict.NO_DECISION:
        return {}
    side = verdict is Verdict.TRUTHFUL
    winners = [r for r in reveals if r.vote is side]
    total = sum(r.weight for r in winners)
    shares: dict[Address, Amount] = {}
    before = 0
    for r in winners:
        shares[r.voter] = Amount(pool * (before + r.weight) // total - pool * before // total)
        before += r.weight
    return shares


def is_voter_at_fault(vote: bool | None, verdict: Verdict) -> bool:
    """Whether a committed voter is penalised: ``vote`` is ``None`` if they never revealed."""
    if vote is None:
        return True
    return verdict is not Verdict.NO_DECISION and vote is not (verdict is Verdict.TRUTHFUL)


def compute_voter_penalty(weight: Amount, slash_bps: BasisPoints) -> Amount:
    """Stake a faulty voter is asked to lose: ``weight * slash_bps // 10_000`` (clamped by Bonds)."""
    return Amount(weight * slash_bps // BPS)
