"""The contracts slash exactly as ``clearhouse.incentives.slashing`` says, to the wei.

Each provable fault is driven on the real contracts (in-process EVM), deployed with the default
parameters; the stake taken, the prover's and voters' payments and the insurance fund's growth are
read back from the chain and compared with the split the rule set computes from the same
parameters, read from the deployed contracts.
"""

from __future__ import annotations

import pytest
from eth_account.signers.local import LocalAccount
from oracle_system import build_report, honest_report, observe

from clearhouse.chain import Chain, InProcessChain
from clearhouse.disputes import (
    Reveal,
    compute_tally,
    compute_verdict,
    compute_vote_commitment,
    compute_voter_rewards,
)
from clearhouse.incentives.slashing import (
    Fault,
    SlashingParams,
    Split,
    compute_split,
)
from clearhouse.messages.keccak import keccak256
from clearhouse.oracle import compute_equivocation_proof
from clearhouse.oracle.encoding import compute_report_evidence
from clearhouse.params import compute_exit_bound
from clearhouse.settlement import TickOp
from clearhouse.sim.oracle_hub import (
    DEFAULT_DISPUTES,
    DEFAULT_HUB,
    USDC,
    OracleSystem,
    deploy_oracle_system,
)
from clearhouse.sim.settlement_chain import T_FORCE, WINDOW, SettlementSystem, forge
from clearhouse.sim.settlement_chain import deploy as deploy_settlement
from clearhouse.sim.settlement_world import NOW, deposit, withdrawal
from clearhouse.types import Address, Amount, BasisPoints, Seconds, Timestamp

P = 3_000 * USDC
HOUR = 3_600


def _params(settlement: SettlementSystem | None, oracle: OracleSystem | None) -> SlashingParams:
    """The slashing parameters, read from the deployed contracts where they are deployed."""
    s = settlement.settlement if settlement is not None else None
    window = int(s.call("challenge_window")) if s is not None else WINDOW
    t_force = int(s.call("t_force")) if s is not None else T_FORCE
    return SlashingParams(
        coordinator_reward_bps=BasisPoints(int(s.call("reward_bps")) if s is not None else 5_000),
        challenge_window=Seconds(window), force_withdrawal_delay=Seconds(t_force),
        # what governance_chain deploys the Governor with
        timelock=Seconds(compute_exit_bound(Seconds(t_force), Seconds(window)) + HOUR),
        settlement_unbonding_delay=Seconds(int(settlement.bonds.call("unbonding_delay"))
                                           if settlement is not None else 7 * 86_400),
        hub=oracle.params if oracle is not None else DEFAULT_HUB,
        disputes=oracle.dispute_params if oracle is not None else DEFAULT_DISPUTES)


def _contract_params_match(p: SlashingParams, o: OracleSystem) -> None:
    """The dataclasses the rules read are what the contracts hold."""
    assert int(o.hub.call("slash_amount")) == p.hub.slash_amount
    assert int(o.hub.call("prover_reward_bps")) == p.hub.prover_reward_bps
    assert int(o.arbitration.call("slash_bps")) == p.disputes.voter_slash_bps
    assert int(o.assertions.call("voter_reward_bps")) == p.disputes.voter_reward_bps
    assert int(o.bonds.call("unbonding_delay")) == p.disputes.unbonding_delay


def _insurance(bonds: object) -> int:
    return int(bonds.call("insurance_fund"))  # type: ignore[attr-defined]


def _slashable(o: OracleSystem, who: str, role: int) -> Amount:
    return Amount(int(o.bonds.call("slashable_of", who, role)))


@pytest.fixture
def chain() -> Chain:
    return InProcessChain()


def test_a_bad_batch_slashes_the_coordinator_as_the_rules_say(chain: Chain) -> None:
    s = deploy_settlement(chain, users=3)
    for i, usdc in enumerate((10_000, 10_000, 5_000)):
        s.deposit(i, usdc)
    s.post([deposit(0, 10_000), TickOp(Timestamp(NOW))])
    bad = forge(s.build([deposit(1, 10_000), deposit(2, 5_000), withdrawal(0, 5)]),
                [deposit(2, 5_000, owner=2), withdrawal(0, 5)])
    s.post_raw(bad)
    challenger, coordinator = chain.accounts[5], s.coordinator.address
    slashable = Amount(int(s.bonds.call("slashable_of", coordinator, 0)))
    insurance = _insurance(s.bonds)
    split = compute_split(_params(s, None), Fault.BAD_BATCH, slashable)
    receipt = s.settlement.transact("challenge_queues", 2, bad.header, bad.ops_data, sender=challenger)
    event = receipt.events_named("FraudProven")[0].args
    assert (event["slashed"], event["reward"]) == (split.slashed, split.prover) == (slashable, slashable // 2)
    assert int(s.token.call("balanceOf", challenger.address)) == split.prover
    assert _insurance(s.bonds) - insurance == split.insurance
    assert int(s.bonds.call("slashable_of", coordinator, 0)) == slashable - split.slashed == 0


def test_a_wrong_optimistic_round_and_an_equivocation(chain: Chain) -> None:
    o = deploy_oracle_system(chain, 1)
    p = _params(None, o)
    _contract_params_match(p, o)
    role = o.oracle_role
    # member 1 posts an optimistic round at twice the price; 2f+1 others prove it wrong
    o.transmit(honest_report(o, 1, [P] * 3))
    chain.time_travel(10)
    o.post(o.keys[1], 2, 2 * P)
    chain.time_travel(5)
    poster, challenger = o.committee.members[1], chain.accounts[7]
    split = compute_split(p, Fault.WRONG_OPTIMISTIC_ROUND, _slashable(o, poster, role))
    insurance = _insurance(o.bonds)
    o.challenge(1, [observe(o, o.keys[i], 2, P + i) for i in (0, 2, 3)], sender=challenger)
    assert int(o.token.call("balanceOf", challenger.address)) == split.prover > 0
    assert _insurance(o.bonds) - insurance == split.insurance
    assert _slashable(o, poster, role) == o.stake - split.slashed
    # member 0 has withdrawn most of its stake (slash clamped to what is left), then signs two
    # prices for one round
    member, prover = o.committee.members[0], chain.accounts[6]
    o.bonds.transact("request_unbond", role, 8_000 * USDC, sender=o.account(o.keys[0]))
    chain.time_travel(p.disputes.unbonding_delay + 1)
    o.bonds.transact("withdraw", role, sender=o.account(o.keys[0]))
    assert _slashable(o, member, role) == 2_000 * USDC < p.hub.slash_amount
    first, second = observe(o, o.keys[0], 3, P), observe(o, o.keys[0], 3, P + 1)
    split = compute_split(p, Fault.ORACLE_EQUIVOCATION, _slashable(o, member, role))
    insurance = _insurance(o.bonds)
    o.prove(compute_equivocation_proof(first, second), sender=prover)
    assert int(o.token.call("balanceOf", prover.address)) == split.prover == 400 * USDC
    assert _insurance(o.bonds) - insurance == split.insurance
    assert _slashable(o, member, role) == 2_000 * USDC - split.slashed == 0


def _commit(o: OracleSystem, dispute_id: int, voter: LocalAccount, vote: bool) -> bytes:
    salt = keccak256(b"slashing" + voter.address.encode())
    o.arbitration.transact("commit", dispute_id, compute_vote_commitment(vote, salt, Address(voter.address)),
                           sender=voter)
    return salt


def test_an_arbitrated_wrong_round_a_lost_bond_and_voter_penalties(chain: Chain) -> None:
    """Members 1 and 2 collude on round 2; a watcher disputes, member 1 defends it; of four
    arbitrators two vote it wrong, one votes it right and one never reveals."""
    o = deploy_oracle_system(chain, 1)
    p = _params(None, o)
    voters = [chain.accounts[i] for i in (7, 8, 9, 4)]
    for voter, stake in zip(voters, (10_000, 7_000, 5_000, 3_000), strict=True):
        o.bond_arbitrator(voter, stake * USDC)
    chain.time_travel(1)
    o.transmit(honest_report(o, 1, [P] * 3))
    chain.time_travel(30)
    bad = build_report(o, 2, [observe(o, o.keys[0], 2, P), observe(o, o.keys[1], 2, 2 * P),
                              observe(o, o.keys[2], 2, 2 * P)], [o.keys[1], o.keys[2]])
    o.transmit(bad)
    chain.time_travel(30)
    disputer, defender = chain.accounts[5], o.account(o.keys[1])
    aid = o.dispute(1, compute_report_evidence(o.domain, bad), disputer)
    dispute_id = o.counter(aid, defender)
    votes = {voters[0]: True, voters[1]: True, voters[2]: False, voters[3]: True}
    salts = {v: _commit(o, dispute_id, v, vote) for v, vote in votes.items()}
    chain.time_travel(p.disputes.commit_period)
    for voter in voters[:3]:
        o.arbitration.transact("reveal", dispute_id, voter.address, votes[voter], salts[voter], sender=voter)
    chain.time_travel(p.disputes.reveal_period)

    role = o.oracle_role
    accused = o.committee.members[1:3]
    member_splits = {m: compute_split(p, Fault.WRONG_ROUND_ARBITRATED, _slashable(o, m, role)) for m in accused}
    bond_split = compute_split(p, Fault.LOST_ASSERTION, Amount(p.hub.dispute_bond))
    insurance = _insurance(o.bonds)
    o.resolve(1)
    for member, split in member_splits.items():
        assert _slashable(o, member, role) == o.stake - split.slashed
    assert _insurance(o.bonds) - insurance == sum(s.insurance for s in member_splits.values())
    # the disputer gets its own bond back, the winner's share of the defender's and every slash reward
    owed = int(o.disputes.call("owed", disputer.address))
    assert owed == p.hub.dispute_bond + bond_split.prover + sum(s.prover for s in member_splits.values())
    # the voters' pool is the losing bond's voter share, paid out to the right side exactly
    weights = {v: Amount(int(o.arbitration.call("get_ballot", dispute_id, v.address)[1])) for v in voters}
    reveals = [Reveal(Address(v.address), weights[v], votes[v]) for v in voters[:3]]
    verdict = compute_verdict(compute_tally(reveals, Amount(sum(weights.values()))), p.disputes.quorum_bps)
    shares = compute_voter_rewards(bond_split.voters, reveals, verdict)
    for voter in voters[:2]:
        before = int(o.token.call("balanceOf", voter.address))
        o.arbitration.transact("claim_reward", dispute_id, sender=voter)
        assert int(o.token.call("balanceOf", voter.address)) - before == shares[Address(voter.address)]
    assert sum(shares.values()) == bond_split.voters
    assert int(o.token.call("balanceOf", o.arbitration.address)) == 0  # nothing left behind
    # the losing voter and the silent one lose their slice, all to insurance
    arb = int(o.bonds.call("ROLE_ARBITRATOR"))
    for voter, fault in ((voters[2], Fault.ARBITRATOR_LOSING_SIDE), (voters[3], Fault.ARBITRATOR_NON_REVEAL)):
        slashable = _slashable(o, voter.address, arb)
        split: Split = compute_split(p, fault, slashable, weights[voter])
        insurance = _insurance(o.bonds)
        o.arbitration.transact("penalize", dispute_id, voter.address, sender=chain.accounts[6])
        assert _slashable(o, voter.address, arb) == slashable - split.slashed
        assert _insurance(o.bonds) - insurance == split.insurance == split.slashed > 0
