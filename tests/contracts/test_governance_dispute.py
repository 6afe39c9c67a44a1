"""A wrong tally asserted, disputed and overturned on the real contracts: anyone recomputes the tally
from the signed votes, disputes with a matching bond, the bonded arbitrators (commit-reveal) rule the
claim false, the Governor refuses to queue it, the bonds are paid out as the dispute rules say, and
the correct tally is then asserted, queued and executed after its timelock from the next batch."""

from __future__ import annotations

from dataclasses import replace

import pytest
from dispute_system import read_struct, salt_for

from clearhouse.chain import Chain
from clearhouse.disputes import Reveal, Role, Verdict, compute_dispute_payouts
from clearhouse.errors import ContractRevert, NoVotingPower
from clearhouse.governance.proposals import (
    Action,
    ActionKind,
    Forum,
    Status,
    process_create_proposal,
    process_open_voting,
    process_transition,
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
from clearhouse.sim.governance_chain import (
    HOUR,
    USDC,
    GovernanceSystem,
    compute_actions_hash,
    compute_claim,
    compute_parameter_key,
    deploy_governance_system,
)
from clearhouse.types import Address, Amount, BasisPoints, ChainId, Seconds, Timestamp

TIGHTER = Action(ActionKind.PARAMETER, "max_positions", 4)
STAKES = (400, 300, 200, 100)  # whole USDC of accounts[2..5]


@pytest.fixture
def gov(chain: Chain) -> GovernanceSystem:
    return deploy_governance_system(chain)


def _reverts(reason: str, fn: object, *args: object) -> None:
    with pytest.raises(ContractRevert) as info:
        fn(*args)  # type: ignore[operator]
    assert info.value.reason == reason


def test_python_claim_and_actions_hash_match_the_governor(gov: GovernanceSystem) -> None:
    actions = gov.onchain_actions([TIGHTER, Action(ActionKind.FEES, "taker_fee_bps", 7)])
    assert bytes(gov.governor.call("compute_actions_hash", actions)) == compute_actions_hash(actions)
    assert compute_claim(3, actions, b"\x01" * 32) != compute_claim(4, actions, b"\x01" * 32)


def test_a_wrong_tally_is_disputed_overturned_and_the_true_one_executes(gov: GovernanceSystem) -> None:
    chain, accounts = gov.chain, gov.chain.accounts
    stakers = list(accounts[2:6])
    for who, stake in zip(stakers, STAKES, strict=True):
        gov.bond(who, stake * USDC)
    chain.time_travel(1)
    assert gov.post_batch() == 1
    domain = Domain("clearhouse", "1", ChainId(chain.chain_id), Address(gov.governor.address))
    forum = Forum(domain)
    proposal = process_create_proposal(forum, Address(stakers[0].address), "Fewer positions",
                                       "Halve the positions an account may hold.", [TIGHTER], Timestamp(chain.now()),
                                       Seconds(HOUR), Seconds(86_400))
    pid = proposal.id
    # a flash staker bonds right after the snapshot (as a watcher: any role is voting power)
    flash = accounts[6]
    gov.bond(flash, 10_000 * USDC, Role.WATCHER)
    chain.time_travel(HOUR + 1)
    proposal = process_open_voting(forum, pid, Timestamp(chain.now()))
    everyone = [Address(a.address) for a in accounts[1:8]]
    snapshot = read_stake_snapshot(gov.stake_at, everyone, proposal.snapshot_time)
    assert snapshot == {Address(w.address): s * USDC for w, s in zip(stakers, STAKES, strict=True)}
    ballots: dict[tuple[int, Address], Ballot] = {}
    now = Timestamp(chain.now())
    expiry = Timestamp(proposal.voting_end)
    choices = (Choice.FOR, Choice.FOR, Choice.AGAINST, Choice.ABSTAIN)
    for who, choice in zip(stakers, choices, strict=True):
        vote = Vote(Address(who.address), pid, choice, "", expiry)
        process_vote(domain, ballots, proposal, vote, sign(domain, vote, bytes(who.key)), snapshot, {}, now)
    flash_vote = Vote(Address(flash.address), pid, Choice.AGAINST, "", expiry)
    with pytest.raises(NoVotingPower):
        process_vote(domain, ballots, proposal, flash_vote, sign(domain, flash_vote, bytes(flash.key)),
                     snapshot, {}, now)
    true_tally = compute_tally(proposal, ballots.values(), snapshot, Strategy.STAKE)
    assert (true_tally.votes_for, true_tally.votes_against, true_tally.votes_abstain) == (
        700 * USDC, 200 * USDC, 100 * USDC)
    assert true_tally.passed
    chain.time_travel(86_400)
    process_transition(forum, pid, Status.PASSED, Timestamp(chain.now()), "tally")

    # 1. a wrong tally (the flash stake counted for) is asserted
    wrong = replace(true_tally, votes_for=true_tally.votes_for + 10_000 * USDC)
    asserter, disputer = accounts[7], accounts[8]
    wrong_id = gov.assert_result(asserter, pid, [TIGHTER], compute_tally_digest(wrong))
    process_transition(forum, pid, Status.ASSERTED, Timestamp(chain.now()), f"assertion {wrong_id}")
    asserted_claim = bytes(gov.assertions.call("get_assertion", wrong_id)[2])
    # 2. anyone recomputes the tally from the signed ballots and finds another claim
    recomputed = compute_tally(proposal, [Ballot(b.vote, b.signature) for b in ballots.values()], snapshot,
                               Strategy.STAKE)
    true_claim = compute_claim(pid, gov.onchain_actions([TIGHTER]), compute_tally_digest(recomputed))
    assert asserted_claim != true_claim
    dispute_id = gov.dispute(disputer, wrong_id)
    _reverts("assertions: arbitration pending", gov.settle, wrong_id)
    # 3. the arbitrators recompute too and vote whether the asserted claim is the true one
    votes = {who: asserted_claim == true_claim for who in stakers}
    weights = gov.arbitrate(dispute_id, votes, {w: salt_for(w.address, dispute_id) for w in stakers})
    assert gov.settle(wrong_id) == (True, False)
    # 4. the Governor refuses it
    _reverts("governor: result not asserted", gov.queue, pid, compute_tally_digest(wrong), [TIGHTER], wrong_id)
    process_transition(forum, pid, Status.PASSED, Timestamp(chain.now()), f"assertion {wrong_id} overturned")
    # 5. the asserter's bond goes to the disputer and the winning arbitrators, exactly
    bond = int(gov.disputes.min_bond)
    dispute = read_struct(gov.arbitration, "get_dispute", dispute_id)
    reveals = [Reveal(Address(w.address), Amount(weights[w.address]), votes[w]) for w in stakers]
    expected = compute_dispute_payouts(Amount(bond), BasisPoints(gov.disputes.voter_reward_bps), reveals,
                                       Amount(int(dispute["total_weight"])), BasisPoints(gov.disputes.quorum_bps))
    assert expected.verdict is Verdict.FALSE and expected.disputer == 2 * bond - expected.voter_pool
    assertion = read_struct(gov.assertions, "get_assertion", wrong_id)
    assert (assertion["asserter_payout"], assertion["disputer_payout"]) == (0, expected.disputer)
    _reverts("assertions: nothing to claim", lambda: gov.assertions.transact("claim", wrong_id, sender=asserter))
    before = int(gov.token.call("balanceOf", disputer.address))
    gov.assertions.transact("claim", wrong_id, sender=disputer)
    assert int(gov.token.call("balanceOf", disputer.address)) - before == expected.disputer
    for who in stakers:
        assert int(gov.arbitration.call("reward_of", dispute_id, who.address)) == \
            expected.voter_rewards[Address(who.address)]
        gov.arbitration.transact("claim_reward", dispute_id, sender=who)
    assert sum(expected.voter_rewards.values()) == expected.voter_pool == bond * 2_500 // 10_000
    assert int(gov.token.call("balanceOf", gov.arbitration.address)) == 0

    # 6. the true tally is asserted, goes undisputed, is queued and runs after the timelock
    good_id = gov.assert_result(stakers[0], pid, [TIGHTER], compute_tally_digest(recomputed))
    chain.time_travel(int(gov.disputes.min_liveness) + 1)
    assert gov.settle(good_id) == (True, True)
    _reverts("governor: wrong claim", gov.queue, pid, compute_tally_digest(wrong), [TIGHTER], good_id)
    eta = gov.queue(pid, compute_tally_digest(recomputed), [TIGHTER], good_id)
    assert eta - chain.now() == gov.delay > gov.exit_time
    _reverts("governor: timelock", gov.execute, pid, [TIGHTER])
    assert gov.post_batch() == 2
    chain.time_travel(gov.delay)
    changed = gov.execute(pid, [TIGHTER])
    key = compute_parameter_key(TIGHTER.target)
    assert changed == [{"key": key, "value": 4, "version": 2, "from_batch": 3}]
    assert gov.get_parameter(TIGHTER.target, 1) == 8 and gov.get_parameter(TIGHTER.target) == 4
    assert [int(gov.parameters.call("version_at", b)) for b in (1, 2)] == [1, 1]
    assert gov.post_batch() == 3
    assert int(gov.parameters.call("version_at", 3)) == 2
    _reverts("governor: not queued", gov.execute, pid, [TIGHTER])
