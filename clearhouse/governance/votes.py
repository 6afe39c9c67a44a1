"""Signed votes, signed delegations and the tally anyone can recompute.

A vote is an EIP-712 ``Vote`` (``clearhouse.messages``) of the voter; a delegation is an EIP-712
``Delegation`` of the delegator in the same domain::

    Delegation(address delegator,address delegate,uint256 proposalId,uint64 expiry)

(``proposalId`` 0 delegates for every proposal). Voting power comes only from the proposal's stake
snapshot (stake at ``snapshot_time``, read from ``Bonds.stake_at`` by whoever tallies), so stake
bonded after the proposal was created carries no weight.

Strategies: ``stake`` (power = stake), ``quadratic`` (power = ⌊√stake⌋) and ``delegated`` (a
delegate votes with its own stake plus that of every delegator who did not vote itself; one level,
no chains). The tally is a pure function of the proposal, the accepted ballots, the snapshot and
the delegations; :func:`compute_tally_digest` is what gets asserted on-chain.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from math import isqrt
from typing import Final

from eth_abi import encode as abi_encode

from clearhouse.errors import DuplicateVote, GovernanceError, NoVotingPower, VotingClosed
from clearhouse.governance.proposals import ClassRule, Proposal, Status, get_rule
from clearhouse.messages import Choice, Domain, Vote, verify
from clearhouse.messages.keccak import keccak256
from clearhouse.messages.signing import sign_digest, verify_digest
from clearhouse.types import Address, Digest, Timestamp

__all__ = [
    "DELEGATION_TYPEHASH",
    "Ballot",
    "Delegation",
    "Strategy",
    "Tally",
    "compute_delegation_digest",
    "compute_power",
    "compute_tally",
    "compute_tally_digest",
    "process_delegation",
    "process_vote",
    "sign_delegation",
]

DELEGATION_TYPE: Final = "Delegation(address delegator,address delegate,uint256 proposalId,uint64 expiry)"
DELEGATION_TYPEHASH: Final = keccak256(DELEGATION_TYPE.encode())


class Strategy(StrEnum):
    STAKE = "stake"
    QUADRATIC = "quadratic"
    DELEGATED = "delegated"


@dataclass(frozen=True, slots=True)
class Delegation:
    delegator: Address
    delegate: Address
    proposal_id: int
    """0: every proposal."""
    expiry: Timestamp


@dataclass(frozen=True, slots=True)
class Ballot:
    """An accepted vote with its signature (anyone can re-verify it)."""

    vote: Vote
    signature: bytes


@dataclass(frozen=True, slots=True)
class Tally:
    proposal_id: int
    strategy: Strategy
    votes_for: int
    votes_against: int
    votes_abstain: int
    total_power: int
    """Power of the whole snapshot under the strategy (the quorum's base)."""
    quorum_reached: bool
    approved: bool

    @property
    def passed(self) -> bool:
        return self.quorum_reached and self.approved


def compute_delegation_digest(domain: Domain, d: Delegation) -> Digest:
    struct = keccak256(DELEGATION_TYPEHASH + abi_encode(
        ["address", "address", "uint256", "uint64"], [d.delegator, d.delegate, d.proposal_id, d.expiry]))
    return Digest(keccak256(b"\x19\x01" + domain.separator + struct))


def sign_delegation(domain: Domain, d: Delegation, private_key: bytes) -> bytes:
    return sign_digest(compute_delegation_digest(domain, d), private_key)


def process_delegation(domain: Domain, delegations: dict[Address, Delegation], d: Delegation,
                       signature: bytes, now: Timestamp) -> None:
    """Record a signed delegation (a newer one from the same delegator replaces the older)."""
    if d.delegator == d.delegate:
        raise GovernanceError("a delegation to oneself", field="delegate")
    if d.expiry < now:
        raise VotingClosed("the delegation has expired", field="expiry")
    verify_digest(compute_delegation_digest(domain, d), signature, d.delegator)
    delegations[d.delegator] = d


def compute_power(stake: int, strategy: Strategy) -> int:
    """One stake's voting power under ``strategy`` (delegation adds stakes before this)."""
    return isqrt(stake) if strategy is Strategy.QUADRATIC else stake


def process_vote(domain: Domain, ballots: dict[tuple[int, Address], Ballot], proposal: Proposal,
                 vote: Vote, signature: bytes, snapshot: Mapping[Address, int],
                 delegations: Mapping[Address, Delegation], now: Timestamp) -> Ballot:
    """Accept a signed vote: the proposal is voting, ``now`` is inside its window, the vote's own
    expiry has not passed, the voter has not voted, and it has power (stake or delegation)."""
    if vote.proposal_id != proposal.id:
        raise GovernanceError("the vote names another proposal", field="proposal_id")
    if proposal.status is not Status.VOTING or not proposal.voting_start <= now <= proposal.voting_end:
        raise VotingClosed(f"proposal {proposal.id} is not open for votes", field="proposal_id")
    verify(domain, vote, signature, vote.voter, now)
    if (proposal.id, vote.voter) in ballots:
        raise DuplicateVote(f"{vote.voter} already voted on proposal {proposal.id}", field="voter")
    delegated = any(_applies(d, proposal, now) and d.delegate == vote.voter for d in delegations.values())
    if snapshot.get(vote.voter, 0) <= 0 and not delegated:
        raise NoVotingPower(f"{vote.voter} had no stake at the snapshot", field="voter")
    ballot = Ballot(vote, signature)
    ballots[(proposal.id, vote.voter)] = ballot
    return ballot


def _applies(d: Delegation, proposal: Proposal, now: Timestamp) -> bool:
    return d.proposal_id in (0, proposal.id) and d.expiry >= min(now, proposal.voting_end)


def compute_tally(proposal: Proposal, ballots: Iterable[Ballot], snapshot: Mapping[Address, int],
                  strategy: Strategy, delegations: Mapping[Address, Delegation] | None = None,
                  rule: ClassRule | None = None) -> Tally:
    """The deterministic result of the accepted ballots (in any order)."""
    rule = rule or get_rule(proposal)
    delegations = delegations or {}
    voted = {b.vote.voter: b.vote.choice for b in ballots if b.vote.proposal_id == proposal.id}
    stake = {who: s for who, s in snapshot.items() if s > 0}
    weight: dict[Address, int] = {who: stake.get(who, 0) for who in voted}
    if strategy is Strategy.DELEGATED:
        for delegator, d in sorted(delegations.items()):
            if delegator not in voted and d.delegate in voted and _applies(d, proposal, proposal.voting_end):
                weight[d.delegate] += stake.get(delegator, 0)
    totals = {Choice.FOR: 0, Choice.AGAINST: 0, Choice.ABSTAIN: 0}
    for voter, choice in voted.items():
        totals[choice] += compute_power(weight[voter], strategy)
    total_power = sum(compute_power(s, strategy) for s in stake.values())
    taking_part = sum(totals.values())
    quorum = total_power > 0 and taking_part * 10_000 >= rule.quorum_bps * total_power
    decided = totals[Choice.FOR] + totals[Choice.AGAINST]
    approved = decided > 0 and totals[Choice.FOR] * 10_000 > rule.approval_bps * decided
    return Tally(proposal.id, strategy, totals[Choice.FOR], totals[Choice.AGAINST], totals[Choice.ABSTAIN],
                 total_power, quorum, approved)


def compute_tally_digest(tally: Tally) -> Digest:
    """The claim asserted on-chain for a tally: ``keccak256(abi.encode(proposalId, strategy, for,
    against, abstain, totalPower, passed))``."""
    return Digest(keccak256(abi_encode(
        ["uint256", "string", "uint256", "uint256", "uint256", "uint256", "bool"],
        [tally.proposal_id, str(tally.strategy), tally.votes_for, tally.votes_against, tally.votes_abstain,
         tally.total_power, tally.passed])))
