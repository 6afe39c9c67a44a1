"""The governance role over a real SQLite store: lifecycle moves logged with what they depended on
(the snapshot when voting opens), refusals write nothing, chain moves only in lifecycle order, the
tally under each strategy, and replay that never reads the chain and rebuilds the same state. The
snapshot comes from a fixed mapping here; ``tests/api/test_governance_api.py`` reads real ``Bonds``."""

from __future__ import annotations

from collections.abc import Mapping
from math import isqrt

import pytest

from clearhouse.chain.inprocess import InProcessChain
from clearhouse.errors import DuplicateVote, GovernanceError, InvalidProposal, VotingClosed
from clearhouse.governance.proposals import Action, ActionKind, Status
from clearhouse.governance.snapshot import read_stake_snapshot
from clearhouse.governance.votes import Delegation, Strategy, compute_tally_digest, sign_delegation
from clearhouse.messages import Choice, Vote, sign
from clearhouse.node.governance import (
    GovernanceConfig,
    GovernanceService,
    GovernanceWatcher,
    build_governance_service,
)
from clearhouse.sim import market_world as mw
from clearhouse.sim.governance_chain import deploy_governance_system
from clearhouse.sim.governance_scenario import play_governance_scenario
from clearhouse.store import Store
from clearhouse.types import Address, Seconds, Timestamp

A, B, C, D = (Address(a) for a in mw.ADDRESSES[:4])
KEY = dict(zip((A, B, C, D), mw.KEYS[:4], strict=True))
T = 1_800_000_000
HOUR, DAY = 3600, 86_400
STAKE = {A: 400, B: 300, C: 200}
RAISE_K = Action(ActionKind.PARAMETER, "checkpoint_interval", 12)



class Reader:
    """A snapshot source that counts its reads (and can refuse them)."""

    def __init__(self, stake: Mapping[Address, int]) -> None:
        self.stake = dict(stake)
        self.reads: list[int] = []
        self.refuse = False

    def __call__(self, t: Timestamp) -> Mapping[Address, int]:
        if self.refuse:
            raise AssertionError("replay must not read the chain")
        self.reads.append(int(t))
        return self.stake


def make(store: Store, reader: Reader, strategy: Strategy = Strategy.STAKE) -> GovernanceService:
    service = GovernanceService(store, mw.DOMAIN, reader, GovernanceConfig(Seconds(HOUR), Seconds(DAY), strategy))
    service.replay()
    return service


def vote(service: GovernanceService, who: Address, choice: Choice, now: int) -> None:
    v = Vote(who, 1, choice, "", Timestamp(T + 10 * DAY))
    service.on_vote(v, sign(mw.DOMAIN, v, KEY[who]), now=now)


def test_lifecycle_moves_are_logged_and_replay_reads_no_chain(store: Store) -> None:
    reader = Reader(STAKE)
    service = make(store, reader)
    service.on_create_proposal(A, "Raise K", "cheaper batches", [RAISE_K], now=T)
    assert service.on_tick(T + HOUR - 1) == [] and reader.reads == []
    (opened,) = service.on_tick(T + HOUR)
    assert opened.body["status"] == "voting" and reader.reads == [T - 1]  # the second before creation
    vote(service, A, Choice.FOR, T + 2 * HOUR)
    vote(service, C, Choice.AGAINST, T + 2 * HOUR)
    (closed,) = service.on_tick(T + HOUR + DAY + 1)
    assert closed.body["status"] == "passed" and closed.body["tally"]["for"] == "400"
    before = service.get_state_fingerprint()
    reader.refuse = True
    again = make(store, reader)
    assert again.get_state_fingerprint() == before
    assert [t.status for t in again.forum.proposals[1].transitions] == [Status.DRAFT, Status.VOTING, Status.PASSED]


def test_refusals_write_nothing(store: Store) -> None:
    service = make(store, Reader(STAKE))
    with pytest.raises(InvalidProposal):
        service.on_create_proposal(A, "Too big", "", [Action(ActionKind.PARAMETER, "checkpoint_interval", 99)], now=T)
    service.on_create_proposal(A, "Raise K", "", [RAISE_K], now=T)
    service.on_tick(T + HOUR)
    vote(service, A, Choice.FOR, T + HOUR)
    length = store.get_last_action_seq()
    with pytest.raises(DuplicateVote):
        vote(service, A, Choice.AGAINST, T + HOUR)
    with pytest.raises(VotingClosed):
        vote(service, B, Choice.AGAINST, T + HOUR + DAY + 1)  # closes the vote (logged), refuses the ballot
    assert store.get_last_action_seq() == length + 1
    assert service.forum.proposals[1].status is Status.PASSED and len(service.ballots) == 1
    d = Delegation(B, B, 0, Timestamp(T + 10 * DAY))
    with pytest.raises(GovernanceError):
        service.on_delegate(d, sign_delegation(mw.DOMAIN, d, KEY[B]), now=T + 2 * DAY)
    assert store.get_last_action_seq() == length + 1


def test_chain_moves_follow_the_lifecycle(store: Store) -> None:
    service = make(store, Reader(STAKE))
    service.on_create_proposal(A, "Raise K", "", [RAISE_K], now=T)
    service.on_tick(T + HOUR)
    vote(service, A, Choice.FOR, T + HOUR)
    now = T + HOUR + DAY + 1
    length = store.get_last_action_seq()
    for status in (Status.QUEUED, Status.EXECUTED, Status.VOTING, Status.DRAFT):
        with pytest.raises(GovernanceError):
            service.on_transition(1, status, "too early", now=now)
    assert store.get_last_action_seq() == length + 1  # only the close of the vote was logged
    with pytest.raises(GovernanceError):  # nothing asserted yet: nothing to overturn
        service.on_transition(1, Status.PASSED, "overturned", now=now)
    for status, note in ((Status.ASSERTED, "assertion 1"), (Status.PASSED, "assertion 1 overturned"),
                         (Status.ASSERTED, "assertion 2"), (Status.QUEUED, "eta"), (Status.EXECUTED, "tx")):
        service.on_transition(1, status, note, now=now)
    assert [t.note for t in service.forum.proposals[1].transitions][-5:] == [
        "assertion 1", "assertion 1 overturned", "assertion 2", "eta", "tx"]
    with pytest.raises(GovernanceError):
        service.on_transition(1, Status.CANCELLED, "too late", now=now)


@pytest.mark.parametrize("strategy", list(Strategy))
def test_tally_under_each_strategy(store: Store, strategy: Strategy) -> None:
    service = make(store, Reader({A: 400, B: 300, C: 225, D: 100}), strategy)
    service.on_create_proposal(A, "Raise K", "", [RAISE_K], now=T)
    d = Delegation(D, A, 1, Timestamp(T + 10 * DAY))  # D delegates to A and stays silent
    service.on_delegate(d, sign_delegation(mw.DOMAIN, d, KEY[D]), now=T)
    service.on_tick(T + HOUR)
    vote(service, A, Choice.FOR, T + HOUR)
    vote(service, B, Choice.AGAINST, T + HOUR)
    vote(service, C, Choice.ABSTAIN, T + HOUR)
    tally = service.get_tally(1)
    power = isqrt if strategy is Strategy.QUADRATIC else int
    votes_for = 400 + (100 if strategy is Strategy.DELEGATED else 0)
    assert (tally.votes_for, tally.votes_against, tally.votes_abstain) == (power(votes_for), power(300), power(225))
    assert tally.total_power == sum(power(s) for s in (400, 300, 225, 100))
    service.on_tick(T + HOUR + DAY + 1)
    assert service.get_proposal_json(1, T + 2 * DAY)["tally"]["passed"] is True


def test_a_vote_nobody_joined_fails(store: Store) -> None:
    service = make(store, Reader(STAKE))
    service.on_create_proposal(A, "Raise K", "", [RAISE_K], now=T)
    acks = service.on_tick(T + 2 * DAY)  # opens and closes in one call
    assert [a.body["status"] for a in acks] == ["voting", "failed"]
    assert service.list_proposals_json(T + 2 * DAY)[0]["tally"]["quorumReached"] is False


def test_the_node_reads_its_snapshot_from_the_deployments_bonds(store: Store) -> None:
    chain = InProcessChain()
    token = chain.deploy("mocks/TestToken", "Test USD", "tUSD")
    bonds = [chain.deploy("Bonds", token.address, 7 * DAY) for _ in range(2)]
    staker = chain.accounts[2]
    for registry, role, amount in ((bonds[0], 0, 500), (bonds[1], 2, 70), (bonds[1], 3, 30)):
        token.transact("mint", staker.address, amount)
        token.transact("approve", registry.address, amount, sender=staker)
        registry.transact("bond", role, amount, sender=staker)
    chain.time_travel(5)
    assert build_governance_service(store, mw.DOMAIN, chain, {"settlement": {}}) is None
    service = build_governance_service(store, mw.DOMAIN, chain, {"settlement": {"bonds": bonds[0].address},
                                                                 "oracle": {"bonds": bonds[1].address}})
    assert service is not None
    assert service.snapshot_reader(Timestamp(chain.now() - 1)) == {Address(staker.address): 600}
    assert service.snapshot_reader(Timestamp(chain.now() - 10)) == {}


def test_the_watcher_follows_the_chain_and_records_each_move_once(store: Store) -> None:
    chain = InProcessChain()
    gov, service, figures = play_governance_scenario(chain, store, lambda _: None, lambda _: None)
    notes = [t.note for t in service.forum.proposals[1].transitions]
    assert notes[:3] == ["created", "voting opened", "vote closed"]
    assert notes[3] == "assertion 2" and notes[4].startswith("queued on assertion 2") and notes[5] == "executed on-chain"
    assert figures["governance_status"] == "executed"
    # assertion 1 (the wrong tally) never matched the proposal: the watcher flagged it instead
    length = store.get_last_action_seq()
    again = GovernanceService(store, service.domain, Reader({}), service.config, clock=chain.now)
    again.replay()
    watcher = GovernanceWatcher(again, chain, gov.governor, gov.assertions, gov.parameters)
    assert watcher.on_tick() == [] and store.get_last_action_seq() == length
    assert list(watcher.unmatched) == [1] and watcher.matched == {2: 1}


def test_an_overturned_result_goes_back_to_passed_and_is_asserted_again(store: Store) -> None:
    chain = InProcessChain()
    gov = deploy_governance_system(chain)
    stakers = chain.accounts[2:4]
    for who in stakers:
        gov.bond(who, 1_000 * 10**6)
    chain.time_travel(1)
    everyone = [Address(a.address) for a in stakers]
    service = GovernanceService(store, mw.DOMAIN, lambda t: read_stake_snapshot(gov.stake_at, everyone, t),
                                GovernanceConfig(Seconds(HOUR), Seconds(DAY)), clock=chain.now)
    watcher = GovernanceWatcher(service, chain, gov.governor, gov.assertions, gov.parameters)
    service.on_create_proposal(Address(stakers[0].address), "Raise K", "", [RAISE_K])
    chain.time_travel(HOUR + 1)
    service.on_tick()
    for who in stakers:
        v = Vote(Address(who.address), 1, Choice.FOR, "", Timestamp(chain.now() + HOUR))
        service.on_vote(v, sign(mw.DOMAIN, v, bytes(who.key)))
    chain.time_travel(DAY)
    digest = compute_tally_digest(service.get_tally(1))
    first = gov.assert_result(chain.accounts[7], 1, [RAISE_K], digest)
    assert [a.body["status"] for a in watcher.on_tick()] == ["passed", "asserted"]
    gov.dispute(chain.accounts[8], first)  # nobody votes: no decision, the claim is not upheld
    chain.time_travel(int(gov.disputes.commit_period) + int(gov.disputes.reveal_period))
    assert gov.settle(first) == (True, False)
    assert [a.body["note"] for a in watcher.on_tick()] == [f"assertion {first} overturned"]
    assert service.forum.proposals[1].status is Status.PASSED
    second = gov.assert_result(chain.accounts[7], 1, [RAISE_K], digest)
    assert [a.body["note"] for a in watcher.on_tick()] == [f"assertion {second}"]
    assert watcher.matched == {first: 1, second: 1} and watcher.unmatched == {}
