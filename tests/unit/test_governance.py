"""Governance rules: proposals within bounds and their recorded lifecycle, threaded signed posts,
signed votes and delegations, the three strategies, quorum and approval per action class, and a
flash-vote attempt against the real Bonds stake checkpoints."""

from __future__ import annotations

import random

import pytest
from eth_account import Account
from eth_account.messages import encode_typed_data
from hypothesis import given
from hypothesis import strategies as st

from clearhouse.chain.inprocess import InProcessChain
from clearhouse.errors import (
    DuplicateVote,
    GovernanceError,
    InvalidProposal,
    InvalidSignature,
    NoVotingPower,
    UnknownProposal,
    VotingClosed,
    WrongSigner,
)
from clearhouse.governance.proposals import (
    Action,
    ActionKind,
    Forum,
    PinnedCommittee,
    Status,
    process_cancel,
    process_create_proposal,
    process_open_voting,
    process_post,
    process_transition,
)
from clearhouse.governance.snapshot import read_stake_snapshot
from clearhouse.governance.votes import (
    Ballot,
    Delegation,
    Strategy,
    compute_delegation_digest,
    compute_tally,
    compute_tally_digest,
    process_delegation,
    process_vote,
    sign_delegation,
)
from clearhouse.messages import Choice, Post, Vote, sign
from clearhouse.sim.market_world import ADDRESSES, DOMAIN, KEY_OF
from clearhouse.types import Address, Digest, Seconds, Timestamp

T = Timestamp(1_800_000_000)
DAY = Seconds(86_400)
A, B, C, D = (Address(a) for a in ADDRESSES[:4])
RAISE_K = Action(ActionKind.PARAMETER, "checkpoint_interval", 12)
COMMITTEE = PinnedCommittee(b"\x07" * 32, (A, B, C))
"""The hub's committee a proposal with committee actions pins (D is not in it)."""


def _forum(*actions: Action) -> tuple[Forum, int]:
    forum = Forum(DOMAIN)
    p = process_create_proposal(forum, A, "Raise K", "Fewer checkpoints, cheaper batches.",
                                list(actions) or [RAISE_K], T, DAY, Seconds(3 * DAY), committee=COMMITTEE)
    return forum, p.id


def _voting(*actions: Action) -> tuple[Forum, int]:
    forum, pid = _forum(*actions)
    process_open_voting(forum, pid, Timestamp(T + DAY))
    return forum, pid


def _vote(pid: int, voter: Address, choice: Choice, expiry: int = T + 10 * DAY) -> tuple[Vote, bytes]:
    v = Vote(voter, pid, choice, "because", Timestamp(expiry))
    return v, sign(DOMAIN, v, KEY_OF[voter])


def test_actions_outside_their_bounds_are_refused() -> None:
    for action in (Action(ActionKind.PARAMETER, "checkpoint_interval", 32),
                   Action(ActionKind.PARAMETER, "admin", 1),
                   Action(ActionKind.FEES, "checkpoint_interval", 4),
                   Action(ActionKind.PARAMETER, "max_fee_bps", 10),
                   Action(ActionKind.COMMITTEE, "not an address", 1),
                   Action(ActionKind.COORDINATOR, B, 2)):
        with pytest.raises(InvalidProposal):
            _forum(action)
    forum = Forum(DOMAIN)
    with pytest.raises(InvalidProposal):
        process_create_proposal(forum, A, " ", "", [RAISE_K], T, DAY, DAY)
    assert forum.proposals == {}


def test_lifecycle_is_recorded_and_enforced() -> None:
    forum, pid = _forum()
    with pytest.raises(VotingClosed):
        process_open_voting(forum, pid, Timestamp(T + DAY - 1))
    process_open_voting(forum, pid, Timestamp(T + DAY))
    with pytest.raises(GovernanceError):
        process_transition(forum, pid, Status.EXECUTED, Timestamp(T + DAY), "skip ahead")
    for status in (Status.PASSED, Status.ASSERTED, Status.QUEUED, Status.EXECUTED):
        process_transition(forum, pid, status, Timestamp(T + 5 * DAY), str(status))
    p = forum.proposals[pid]
    assert [t.status for t in p.transitions] == [Status.DRAFT, Status.VOTING, Status.PASSED, Status.ASSERTED,
                                                  Status.QUEUED, Status.EXECUTED]
    assert [t.previous for t in p.transitions[1:]] == [t.status for t in p.transitions[:-1]]
    with pytest.raises(GovernanceError):
        process_cancel(forum, pid, A, Timestamp(T + 6 * DAY))
    forum2, pid2 = _forum()
    with pytest.raises(GovernanceError):
        process_cancel(forum2, pid2, B, T)
    assert process_cancel(forum2, pid2, A, T).status is Status.CANCELLED
    with pytest.raises(UnknownProposal):
        process_open_voting(forum2, 99, T)


def test_posts_thread_under_their_proposal() -> None:
    forum, pid = _forum()
    top = Post(B, pid, Digest(bytes(32)), "Is 12 safe for the fraud-proof gas?", Timestamp(T + DAY))
    top_id = process_post(forum, top, sign(DOMAIN, top, KEY_OF[B]), T)
    reply = Post(A, pid, top_id, "Yes: 12 operations re-execute in about 10M gas.", Timestamp(T + DAY))
    process_post(forum, reply, sign(DOMAIN, reply, KEY_OF[A]), T)
    with pytest.raises(GovernanceError):
        process_post(forum, reply, sign(DOMAIN, reply, KEY_OF[A]), T)  # the same post twice
    orphan = Post(C, pid, Digest(b"\x01" * 32), "reply to nothing", Timestamp(T + DAY))
    with pytest.raises(GovernanceError):
        process_post(forum, orphan, sign(DOMAIN, orphan, KEY_OF[C]), T)
    forged = Post(C, pid, Digest(bytes(32)), "signed by someone else", Timestamp(T + DAY))
    with pytest.raises((InvalidSignature, WrongSigner)):
        process_post(forum, forged, sign(DOMAIN, forged, KEY_OF[D]), T)
    assert len(forum.posts[pid]) == 2


def test_votes_are_refused_when_late_duplicated_powerless_or_forged() -> None:
    forum, pid = _voting()
    p = forum.proposals[pid]
    ballots: dict[tuple[int, Address], Ballot] = {}
    snapshot = {A: 100, B: 50}
    now = Timestamp(T + 2 * DAY)
    process_vote(DOMAIN, ballots, p, *_vote(pid, A, Choice.FOR), snapshot, {}, now)
    with pytest.raises(DuplicateVote):
        process_vote(DOMAIN, ballots, p, *_vote(pid, A, Choice.AGAINST), snapshot, {}, now)
    with pytest.raises(NoVotingPower):
        process_vote(DOMAIN, ballots, p, *_vote(pid, C, Choice.FOR), snapshot, {}, now)
    with pytest.raises(VotingClosed):
        process_vote(DOMAIN, ballots, p, *_vote(pid, B, Choice.FOR), snapshot, {}, Timestamp(p.voting_end + 1))
    v, _ = _vote(pid, B, Choice.FOR)
    with pytest.raises((InvalidSignature, WrongSigner)):
        process_vote(DOMAIN, ballots, p, v, sign(DOMAIN, v, KEY_OF[C]), snapshot, {}, now)
    assert list(ballots) == [(pid, A)]


def test_strategies_quorum_and_approval() -> None:
    forum, pid = _voting()
    p = forum.proposals[pid]
    snapshot = {A: 400, B: 100, C: 100, D: 0}
    ballots = [Ballot(*_vote(pid, A, Choice.FOR)), Ballot(*_vote(pid, B, Choice.AGAINST))]
    stake = compute_tally(p, ballots, snapshot, Strategy.STAKE)
    assert (stake.votes_for, stake.votes_against, stake.total_power) == (400, 100, 600) and stake.passed
    quad = compute_tally(p, ballots, snapshot, Strategy.QUADRATIC)
    assert (quad.votes_for, quad.votes_against, quad.total_power) == (20, 10, 40) and quad.passed
    delegations = {C: Delegation(C, B, 0, Timestamp(T + 30 * DAY))}
    dele = compute_tally(p, ballots, snapshot, Strategy.DELEGATED, delegations)
    assert (dele.votes_for, dele.votes_against) == (400, 200)
    # a delegator who votes keeps its own power
    own = compute_tally(p, [*ballots, Ballot(*_vote(pid, C, Choice.FOR))], snapshot, Strategy.DELEGATED, delegations)
    assert (own.votes_for, own.votes_against) == (500, 100)
    # a committee change needs 30 % quorum and two thirds: 400 for, 200 against fails
    forum2, pid2 = _voting(Action(ActionKind.COMMITTEE, D, 1))
    ballots2 = [Ballot(*_vote(pid2, A, Choice.FOR)), Ballot(*_vote(pid2, B, Choice.AGAINST)),
                Ballot(*_vote(pid2, C, Choice.AGAINST))]
    t = compute_tally(forum2.proposals[pid2], ballots2, snapshot, Strategy.STAKE)
    assert t.quorum_reached and not t.approved
    # below quorum: only B (100 of 600 < 20 %)
    low = compute_tally(p, [Ballot(*_vote(pid, B, Choice.FOR))], snapshot, Strategy.STAKE)
    assert not low.quorum_reached and not low.passed


@given(st.lists(st.tuples(st.integers(0, 3), st.sampled_from(list(Choice))), max_size=4, unique_by=lambda x: x[0]),
       st.dictionaries(st.integers(0, 3), st.integers(0, 10**24), max_size=4), st.sampled_from(list(Strategy)),
       st.randoms())
def test_tally_is_deterministic(votes: list[tuple[int, Choice]], stakes: dict[int, int], strategy: Strategy,
                                rnd: random.Random) -> None:
    forum, pid = _voting()
    p = forum.proposals[pid]
    people = [A, B, C, D]
    ballots = [Ballot(Vote(people[i], pid, c, "", Timestamp(T + 10 * DAY)), b"") for i, c in votes]
    snapshot = {people[i]: s for i, s in stakes.items()}
    delegations = {D: Delegation(D, A, 0, Timestamp(T + 30 * DAY))}
    first = compute_tally(p, ballots, snapshot, strategy, delegations)
    rnd.shuffle(ballots)
    again = compute_tally(p, ballots, snapshot, strategy, delegations)
    assert first == again and compute_tally_digest(first) == compute_tally_digest(again)
    assert first.votes_for + first.votes_against + first.votes_abstain <= first.total_power


def test_delegation_digest_is_standard_eip712() -> None:
    d = Delegation(B, A, 3, Timestamp(T + DAY))
    typed = {
        "types": {"EIP712Domain": [{"name": "name", "type": "string"}, {"name": "version", "type": "string"},
                                   {"name": "chainId", "type": "uint256"},
                                   {"name": "verifyingContract", "type": "address"}],
                  "Delegation": [{"name": "delegator", "type": "address"}, {"name": "delegate", "type": "address"},
                                 {"name": "proposalId", "type": "uint256"}, {"name": "expiry", "type": "uint64"}]},
        "primaryType": "Delegation",
        "domain": {"name": DOMAIN.name, "version": DOMAIN.version, "chainId": DOMAIN.chain_id,
                   "verifyingContract": DOMAIN.verifying_contract},
        "message": {"delegator": B, "delegate": A, "proposalId": 3, "expiry": T + DAY},
    }
    wallet_sig = Account.sign_message(encode_typed_data(full_message=typed), KEY_OF[B]).signature
    assert bytes(wallet_sig) == sign_delegation(DOMAIN, d, KEY_OF[B])
    assert Account.recover_message(encode_typed_data(full_message=typed), signature=wallet_sig) == B
    delegations: dict[Address, Delegation] = {}
    process_delegation(DOMAIN, delegations, d, bytes(wallet_sig), T)
    with pytest.raises((InvalidSignature, WrongSigner)):
        process_delegation(DOMAIN, delegations, Delegation(C, A, 0, Timestamp(T + DAY)), bytes(wallet_sig), T)
    assert compute_delegation_digest(DOMAIN, d) != compute_delegation_digest(DOMAIN, Delegation(B, A, 4, d.expiry))


def test_flash_vote_has_no_power() -> None:
    """Stake bonded after the snapshot counts for nothing, even while the vote is open."""
    chain = InProcessChain()
    token = chain.deploy("mocks/TestToken", "Test USD", "tUSD")
    bonds = chain.deploy("Bonds", token.address, 7 * 86_400)
    honest, flash = chain.accounts[2], chain.accounts[3]
    for who, amount in ((honest, 1_000), (flash, 0)):
        if amount:
            token.transact("mint", who.address, amount)
            token.transact("approve", bonds.address, amount, sender=who)
            bonds.transact("bond", 2, amount, sender=who)
    chain.time_travel(10)
    snapshot_time = Timestamp(chain.now())
    chain.time_travel(10)
    token.transact("mint", flash.address, 10**9)
    token.transact("approve", bonds.address, 10**9, sender=flash)
    bonds.transact("bond", 2, 10**9, sender=flash)  # a whale arrives after the snapshot
    chain.time_travel(10)
    snapshot = read_stake_snapshot(lambda who, role, t: int(bonds.call("stake_at", who, role, t)),
                                   [Address(honest.address), Address(flash.address)], snapshot_time)
    assert snapshot == {Address(honest.address): 1_000}
    forum, pid = _voting()
    vote = Vote(Address(flash.address), pid, Choice.FOR, "", Timestamp(T + 10 * DAY))
    with pytest.raises(NoVotingPower):
        process_vote(DOMAIN, {}, forum.proposals[pid], vote, sign(DOMAIN, vote, bytes(flash.key)), snapshot, {},
                     Timestamp(T + 2 * DAY))
