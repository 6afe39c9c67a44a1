"""Committee and coordinator actions executed through governance on the real contracts: the
deployment hands the OracleHub and Settlement admin roles to the Governor; a proposal adds or
removes oracle committee members (one ``set_committee`` over the committee pinned at creation) or
removes the coordinator and admits another, is voted, asserted, queued and executed after its
timelock; a changed target code hash refuses execution; a committee change that would break
``n = 3f+1`` is refused when the proposal is created."""

from __future__ import annotations

from dataclasses import replace

import pytest
from eth_account import Account
from oracle_system import honest_report

from clearhouse.chain import Chain
from clearhouse.chain.inprocess import InProcessChain
from clearhouse.errors import ContractRevert, InvalidProposal
from clearhouse.governance.execution import (
    ActionTargets,
    compute_actions_hash,
    compute_claim,
    compute_onchain_actions,
)
from clearhouse.governance.proposals import (
    Action,
    ActionKind,
    Forum,
    PinnedCommittee,
    Proposal,
    process_create_proposal,
    process_open_voting,
)
from clearhouse.governance.snapshot import read_stake_snapshot
from clearhouse.governance.votes import (
    Ballot,
    Strategy,
    compute_tally,
    compute_tally_digest,
    process_vote,
)
from clearhouse.messages import Choice, Domain, Vote, sign
from clearhouse.oracle import Committee
from clearhouse.sim.governance_chain import HOUR, USDC, GovernanceSystem, deploy_governance_system
from clearhouse.sim.oracle_hub import compute_member_keys
from clearhouse.sim.settlement_chain import BOND, GUARDIAN_INDEX
from clearhouse.sim.settlement_chain import deploy as deploy_settlement
from clearhouse.sim.settlement_world import deposit
from clearhouse.types import Address, ChainId, FeedId, Seconds, Timestamp

P = 3_000 * USDC
NEW_KEYS = compute_member_keys(7)[4:]
"""Three more oracle members (the deployment's committee holds the first four)."""


@pytest.fixture
def gov(inprocess_chain: InProcessChain) -> GovernanceSystem:
    system = deploy_governance_system(inprocess_chain)
    for who in inprocess_chain.accounts[2:5]:
        system.bond(who, 300 * USDC)
    inprocess_chain.time_travel(1)
    return system


def _reverts(reason: str, fn: object, *args: object, **kw: object) -> None:
    with pytest.raises(ContractRevert) as info:
        fn(*args, **kw)  # type: ignore[operator]
    assert info.value.reason == reason


def _forum(gov: GovernanceSystem) -> Forum:
    return Forum(Domain("clearhouse", "1", ChainId(gov.chain.chain_id), Address(gov.governor.address)))


def _propose(gov: GovernanceSystem, forum: Forum, actions: list[Action]) -> Proposal:
    return process_create_proposal(forum, Address(gov.chain.accounts[2].address), "Change", "Why.", actions,
                                       Timestamp(gov.chain.now()), Seconds(HOUR), Seconds(HOUR),
                                       committee=gov.committee)


def _pass(gov: GovernanceSystem, actions: list[Action], *, pin: bytes | None = None,
          forum: Forum | None = None) -> tuple[int, list[object]]:
    """Propose (in ``forum``), vote (every staker for), assert, settle and queue; returns the
    proposal id and its Governor actions (``pin``: a wrong code hash pinned in each instead)."""
    forum = forum or _forum(gov)
    proposal = _propose(gov, forum, actions)
    gov.chain.time_travel(HOUR + 1)
    proposal = process_open_voting(forum, proposal.id, Timestamp(gov.chain.now()))
    stakers = gov.chain.accounts[2:5]
    snapshot = read_stake_snapshot(gov.stake_at, [Address(w.address) for w in stakers], proposal.snapshot_time)
    assert snapshot == {Address(w.address): 300 * USDC for w in stakers}
    ballots: dict[tuple[int, Address], Ballot] = {}
    for who in stakers:
        vote = Vote(Address(who.address), proposal.id, Choice.FOR, "", proposal.voting_end)
        process_vote(forum.domain, ballots, proposal, vote, sign(forum.domain, vote, bytes(who.key)), snapshot, {},
                     Timestamp(gov.chain.now()))
    tally = compute_tally(proposal, ballots.values(), snapshot, Strategy.STAKE)
    assert tally.passed
    gov.chain.time_travel(HOUR)
    onchain = gov.onchain_actions(actions, proposal.committee)
    if pin is not None:
        onchain = [(target, pin, data) for target, _, data in onchain]
    digest = compute_tally_digest(tally)
    claim = compute_claim(proposal.id, onchain, digest)
    gov.fund(gov.chain.accounts[7], int(gov.disputes.min_bond), gov.assertions)
    receipt = gov.assertions.transact("assert_claim", claim, int(gov.disputes.min_bond),
                                      int(gov.disputes.min_liveness), gov.governor.address,
                                      sender=gov.chain.accounts[7])
    assertion_id = int(receipt.events_named("ClaimAsserted")[0].args["assertion_id"])
    gov.chain.time_travel(int(gov.disputes.min_liveness))
    assert gov.settle(assertion_id) == (True, True)
    gov.governor.transact("queue", proposal.id, digest, onchain, assertion_id)
    return proposal.id, list(onchain)


def _bond_members(gov: GovernanceSystem, keys: list[bytes]) -> list[str]:
    oracle, admin = gov.oracle, gov.chain.accounts[0]
    role = int(oracle.bonds.call("ROLE_ORACLE"))
    out = []
    for key in keys:
        member = Account.from_key(key)
        gov.chain.transact(member.address, b"", sender=admin, value=10**18)
        oracle.fund(member.address, int(oracle.stake), oracle.bonds, member)
        oracle.bonds.transact("bond", role, int(oracle.stake), sender=member)
        out.append(member.address)
    return out


def test_the_deployment_hands_both_admin_roles_to_the_governor(gov: GovernanceSystem) -> None:
    assert gov.oracle.hub.call("admin") == gov.governor.address
    assert gov.settlement.settlement.call("admin") == gov.governor.address
    deployer = gov.chain.accounts[0]
    _reverts("oracle: not admin", gov.oracle.hub.transact, "set_committee", gov.oracle.committee.feed_id,
             list(gov.oracle.committee.members), 1, sender=deployer)
    _reverts("settlement: not admin", gov.settlement.settlement.transact, "admit_coordinator", deployer.address,
             sender=deployer)
    _reverts("settlement: not admin", gov.settlement.settlement.transact, "transfer_admin", deployer.address,
             sender=deployer)
    # the guardian keeps its narrow power
    gov.settlement.settlement.transact("pause", 60, sender=gov.chain.accounts[GUARDIAN_INDEX])


def test_settlement_transfer_admin_checks(chain: Chain) -> None:
    s = deploy_settlement(chain, users=1)
    admin, other = chain.accounts[0], chain.accounts[3]
    _reverts("settlement: not admin", s.settlement.transact, "transfer_admin", other.address, sender=other)
    _reverts("settlement: zero admin", s.settlement.transact, "transfer_admin", "0x" + "00" * 20, sender=admin)
    receipt = s.settlement.transact("transfer_admin", other.address, sender=admin)
    assert receipt.events_named("AdminTransferred")[0].args["admin"] == other.address
    assert s.settlement.call("admin") == other.address
    _reverts("settlement: not admin", s.settlement.transact, "admit_coordinator", admin.address, sender=admin)
    assert len(chain.get_code(s.settlement.address)) <= 24_576  # EIP-170


def test_members_added_then_removed_through_governance(gov: GovernanceSystem) -> None:
    hub, feed = gov.oracle.hub, gov.oracle.committee.feed_id
    old_digest = bytes(hub.call("get_feed", feed)[7])
    new = _bond_members(gov, NEW_KEYS)
    add = [Action(ActionKind.COMMITTEE, m, 1) for m in new]
    forum = _forum(gov)
    pid, onchain = _pass(gov, add, forum=forum)
    _reverts("governor: timelock", gov.governor.transact, "execute", pid, onchain)
    gov.chain.time_travel(gov.delay)
    gov.governor.transact("execute", pid, onchain)
    members = [*gov.oracle.committee.members, *new]
    assert list(hub.call("members", feed)) == members
    feed_view = hub.call("get_feed", feed)
    assert (int(feed_view[5]), int(feed_view[6])) == (2, 2)  # f, version
    committee = Committee(feed_id=FeedId(feed), members=tuple(Address(m) for m in members), f=2, version=2)
    assert bytes(feed_view[7]) == bytes(committee.config_digest) != old_digest
    # a report by the new committee (2f+1 observations, f+1 signatures, new members among them) is stored
    seven = replace(gov.oracle, committee=committee, keys=[*gov.oracle.keys, *NEW_KEYS])
    order = [*seven.keys[4:], *seven.keys[:2]]
    seven_first = replace(seven, keys=order)
    seven_first.transmit(honest_report(seven_first, 1, [P] * 5))
    assert int(hub.call("round_count", feed)) == 1

    remove = [Action(ActionKind.COMMITTEE, m, 0) for m in gov.oracle.committee.members[:3]]
    pid, onchain = _pass(gov, remove, forum=forum)
    gov.chain.time_travel(gov.delay)
    gov.governor.transact("execute", pid, onchain)
    assert list(hub.call("members", feed)) == [gov.oracle.committee.members[3], *new]
    assert int(hub.call("get_feed", feed)[5]) == 1
    assert not hub.call("is_member", feed, gov.oracle.committee.members[0])


def test_the_coordinator_is_removed_and_another_admitted(gov: GovernanceSystem) -> None:
    s = gov.settlement
    old, new = s.coordinator, gov.chain.accounts[6]
    s.token.transact("mint", new.address, BOND)
    s.token.transact("approve", s.bonds.address, BOND, sender=new)
    s.bonds.transact("bond", 0, BOND, sender=new)
    pid, onchain = _pass(gov, [Action(ActionKind.COORDINATOR, old.address, 0),
                               Action(ActionKind.COORDINATOR, new.address, 1)])
    gov.chain.time_travel(gov.delay)
    receipt = gov.governor.transact("execute", pid, onchain)
    admitted = [e.args["coordinator"] for e in receipt.events_named("CoordinatorAdmitted")]
    assert admitted == ["0x" + "00" * 20, new.address]
    assert s.settlement.call("coordinator") == new.address
    s.deposit(0, 100)
    timestamp = gov.chain.now() + 1
    posted = s.build([deposit(0, 100)], timestamp)
    s.sync_time(timestamp)
    _reverts("settlement: not coordinator", s.settlement.transact, "post_batch", posted.header, posted.ops_data,
             sender=old)
    s.settlement.transact("post_batch", posted.header, posted.ops_data, sender=new)
    assert int(s.settlement.call("last_batch")) == 1


def test_a_changed_target_code_hash_refuses_execution(gov: GovernanceSystem) -> None:
    pid, onchain = _pass(gov, [Action(ActionKind.COORDINATOR, gov.chain.accounts[6].address, 1)], pin=b"\x01" * 32)
    gov.chain.time_travel(gov.delay)
    _reverts("governor: target code changed", gov.governor.transact, "execute", pid, onchain)
    assert gov.settlement.settlement.call("coordinator") == gov.settlement.coordinator.address


COMMITTEE = PinnedCommittee(b"\x07" * 32, tuple("0x" + f"{i:040x}" for i in range(1, 5)))
OUTSIDERS = ["0x" + f"{i:040x}" for i in range(10, 13)]


@pytest.mark.parametrize(("actions", "reason"), [
    ([Action(ActionKind.COMMITTEE, OUTSIDERS[0], 1)], r"not 3f\+1"),
    ([Action(ActionKind.COMMITTEE, COMMITTEE.members[0], 0)], r"not 3f\+1"),
    ([Action(ActionKind.COMMITTEE, COMMITTEE.members[1], 1)], "already a committee member"),
    ([Action(ActionKind.COMMITTEE, OUTSIDERS[0], 1), Action(ActionKind.COMMITTEE, OUTSIDERS[0].upper().replace(
        "0X", "0x"), 1), Action(ActionKind.COMMITTEE, OUTSIDERS[1], 1)], "already a committee member"),
    ([Action(ActionKind.COMMITTEE, OUTSIDERS[2], 0)], "not a committee member"),
    ([Action(ActionKind.COMMITTEE, COMMITTEE.members[0], 0), Action(ActionKind.COMMITTEE,
                                                                   COMMITTEE.members[0], 0)], "not a committee member"),
])
def test_a_committee_change_that_breaks_the_committee_is_refused_at_creation(actions: list[Action],
                                                                              reason: str) -> None:
    forum = Forum(Domain("clearhouse", "1", ChainId(1), Address("0x" + "00" * 20)))
    with pytest.raises(InvalidProposal, match=reason) as info:
        process_create_proposal(forum, Address("0x" + "11" * 20), "t", "b", actions, Timestamp(100),
                                Seconds(1), Seconds(1), committee=COMMITTEE)
    assert info.value.field == "actions"
    assert forum.proposals == {}


def test_committee_actions_need_a_pinned_committee_and_encode_once() -> None:
    forum = Forum(Domain("clearhouse", "1", ChainId(1), Address("0x" + "00" * 20)))
    swap = [Action(ActionKind.COMMITTEE, COMMITTEE.members[0], 0), Action(ActionKind.COMMITTEE, OUTSIDERS[0], 1)]
    with pytest.raises(InvalidProposal, match="current committee"):
        process_create_proposal(forum, Address("0x" + "11" * 20), "t", "b", swap, Timestamp(100), Seconds(1),
                                Seconds(1))
    proposal = process_create_proposal(forum, Address("0x" + "11" * 20), "t", "b",
                                       [*swap, Action(ActionKind.PARAMETER, "max_positions", 4)], Timestamp(100),
                                       Seconds(1), Seconds(1), committee=COMMITTEE)
    assert proposal.committee == COMMITTEE
    targets = ActionTargets("0x" + "aa" * 20, b"\x01" * 32, "0x" + "bb" * 20, b"\x02" * 32)
    onchain = compute_onchain_actions(proposal.actions, targets, proposal.committee)
    assert [t for t, _, _ in onchain] == ["0x" + "bb" * 20, "0x" + "aa" * 20]  # one set_committee, then the store
    other = PinnedCommittee(COMMITTEE.feed_id, tuple(reversed(COMMITTEE.members)))
    assert compute_actions_hash(compute_onchain_actions(proposal.actions, targets, other)) != \
        compute_actions_hash(onchain)  # the pinned member list is covered by the claim
    with pytest.raises(InvalidProposal, match="no settlement"):
        compute_onchain_actions([Action(ActionKind.COORDINATOR, OUTSIDERS[0], 1)], targets)
