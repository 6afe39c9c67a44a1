"""Optimistic rounds, challenges and round disputes (``OracleHub.post``, ``OracleDisputes``) on both
backends: one test per path, each refusal with the same reason on-chain and in the Python rules,
and every token of a dispute accounted for to the wei against :func:`compute_dispute_outcome`.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable

import pytest
from dispute_system import read_struct
from eth_account.signers.local import LocalAccount
from oracle_system import build_report, honest_report, observe, other_committee

from clearhouse.chain import Chain
from clearhouse.disputes import Reveal, Stake, compute_dispute_payouts, compute_undisputed_payouts
from clearhouse.errors import ClearhouseError, ContractRevert
from clearhouse.oracle import (
    Committee,
    ReportEvidence,
    SignedObservation,
    SignedReport,
    StoredRound,
    compute_dispute_outcome,
    compute_equivocation_proof,
    compute_round_claim,
    compute_twap,
    process_challenge,
    process_optimistic_post,
    process_round_dispute,
)
from clearhouse.oracle.encoding import compute_report_evidence
from clearhouse.sim.oracle_hub import (
    DEFAULT_FEED,
    DEFAULT_HUB,
    USDC,
    OracleSystem,
    compute_member_keys,
    deploy_oracle_system,
)
from clearhouse.types import Address, Amount, Price, RoundId, Timestamp

P = 3_000 * USDC
BOND = DEFAULT_HUB.dispute_bond
OUTSIDER = compute_member_keys(1, b"not a member")[0]


@pytest.fixture
def system(chain: Chain) -> OracleSystem:
    """f = 1 (4 members) with the default limits, the dispute module registered."""
    return deploy_oracle_system(chain, 1)


def _revert(fn: Callable[[], object]) -> str | None:
    with pytest.raises(ContractRevert) as info:
        fn()
    return info.value.reason


def _reason(fn: Callable[[], object]) -> str | None:
    try:
        fn()
    except ClearhouseError as error:
        return error.message
    return None


def _committee(s: OracleSystem) -> Committee:
    """The committee as the chain sees it now (removed members marked)."""
    removed = frozenset(m for m in s.committee.members if not s.hub.call("is_member", s.committee.feed_id, m))
    return dataclasses.replace(s.committee, removed=removed)


def _stake(s: OracleSystem, member: str) -> Stake:
    unbonding = s.bonds.call("unbonding_of", member, s.oracle_role)[0]
    return Stake(Amount(s.bonds.call("stake_of", member, s.oracle_role)), Amount(unbonding))


def _balance(s: OracleSystem, who: str) -> int:
    return int(s.token.call("balanceOf", who))


# --- wiring --------------------------------------------------------------------------------


def test_module_parameters_and_constructor_checks(system: OracleSystem) -> None:
    s, m = system, system.disputes
    assert (m.call("hub"), m.call("assertions"), m.call("bonds"), m.call("token")) == \
        (s.hub.address, s.assertions.address, s.bonds.address, s.token.address)
    assert (m.call("dispute_window"), m.call("dispute_bond"), m.call("dispute_liveness")) == \
        (DEFAULT_HUB.dispute_window, DEFAULT_HUB.dispute_bond, DEFAULT_HUB.dispute_liveness)
    zero = "0x" + "00" * 20
    deploy = s.chain.deploy
    assert _revert(lambda: deploy("OracleDisputes", zero, s.assertions.address, BOND, 3600)) == \
        "oracle: zero address"
    assert _revert(lambda: deploy("OracleDisputes", s.hub.address, s.assertions.address,
                                  s.dispute_params.min_bond - 1, 3600)) == "oracle: bad dispute bond"
    assert _revert(lambda: deploy("OracleDisputes", s.hub.address, s.assertions.address, BOND,
                                  s.dispute_params.min_liveness - 1)) == "oracle: bad dispute liveness"
    # window 600 + liveness + 1 h commit + 1 h reveal must stay below the week of unbonding
    assert _revert(lambda: deploy("OracleDisputes", s.hub.address, s.assertions.address, BOND,
                                  7 * 86_400 - 600 - 7_200)) == "oracle: unbonding delay too short"
    deploy("OracleDisputes", s.hub.address, s.assertions.address, BOND, 7 * 86_400 - 600 - 7_201)


def test_only_the_dispute_module_changes_rounds_or_bans(system: OracleSystem) -> None:
    s = system
    s.transmit(honest_report(s, 1, [P] * 3))
    feed, other = s.committee.feed_id, s.chain.accounts[3]
    assert _revert(lambda: s.hub.transact("set_round_status", feed, 0, True, False, sender=other)) == \
        "oracle: not the dispute module"
    assert _revert(lambda: s.hub.transact("ban_member", feed, s.committee.members[0], sender=other)) == \
        "oracle: not the dispute module"
    s.hub.transact("set_dispute_module", other.address)
    assert _revert(lambda: s.hub.transact("set_round_status", feed, 1, True, False, sender=other)) == \
        "oracle: unknown round"
    receipt = s.hub.transact("set_round_status", feed, 0, False, True, sender=other)
    assert receipt.events_named("RoundStatusChanged")[0].args == {
        "feed_id": feed, "index": 0, "round": 1, "disputed": False, "invalid": True}
    # an invalid round never comes back
    assert _revert(lambda: s.hub.transact("set_round_status", feed, 0, False, False, sender=other)) == \
        "oracle: round invalid"


# --- optimistic posts ----------------------------------------------------------------------


def _post_verdicts(s: OracleSystem, key: bytes, round_id: int, price: int,
                   timestamp: int) -> tuple[str | None, str | None]:
    poster = s.account(key).address
    last = s.last()
    python = _reason(lambda: process_optimistic_post(
        _committee(s), s.feed, s.params, last, Address(poster), _stake(s, poster).active,
        RoundId(round_id), Price(price), Timestamp(timestamp), s.now()))
    chain = None
    try:
        s.post(key, round_id, price, timestamp)
    except ContractRevert as error:
        chain = error.reason
    return python, chain


def test_optimistic_post_stores_a_round_within_budget(system: OracleSystem) -> None:
    s = system
    s.transmit(honest_report(s, 1, [P] * 3))
    s.chain.time_travel(20)
    now = int(s.now())
    expected = process_optimistic_post(_committee(s), s.feed, s.params, s.last(), s.committee.members[2],
                                       s.stake, RoundId(2), Price(P + 5), Timestamp(now - 3), s.now())
    receipt = s.post(s.keys[2], 2, P + 5, now - 3)
    assert receipt.events_named("OptimisticRound")[0].args == {
        "feed_id": s.committee.feed_id, "round": 2, "price": P + 5, "timestamp": now - 3,
        "poster": s.committee.members[2]}
    assert s.last() == expected == StoredRound(RoundId(2), Price(P + 5), Timestamp(now - 3),
                                               optimistic=True, poster=2)
    assert s.hub.call("fresh_price", s.committee.feed_id) == P + 5
    assert receipt.gas_used <= 70_000  # the goal, whatever n: no signature but the transaction's


POSTS: dict[str, tuple[str, Callable[[OracleSystem, int], tuple[bytes, int, int, int]]]] = {
    "outsider": ("oracle: not a member", lambda s, now: (OUTSIDER, 2, P, now)),
    "old round": ("oracle: old round", lambda s, now: (s.keys[1], 1, P, now)),
    "far ahead": ("oracle: round too far ahead", lambda s, now: (s.keys[1], 2**16 + 2, P, now)),
    "future": ("oracle: future timestamp", lambda s, now: (s.keys[1], 2, P, now + 1)),
    "stale": ("oracle: stale observation", lambda s, now: (s.keys[1], 2, P, now - 121)),
    "too soon": ("oracle: too soon", lambda s, now: (s.keys[1], 2, P, int(s.rounds()[0].timestamp) + 7)),
    "above bounds": ("oracle: price out of bounds",
                     lambda s, now: (s.keys[1], 2, DEFAULT_FEED.max_price + 1, now)),
}


@pytest.mark.parametrize("case", list(POSTS), ids=list(POSTS))
def test_optimistic_post_refusals(system: OracleSystem, case: str) -> None:
    s = system
    s.transmit(honest_report(s, 1, [P] * 3))
    s.chain.time_travel(10)
    s.chain.transact(s.account(OUTSIDER).address, b"", value=10**17)
    reason, args = POSTS[case]
    assert _post_verdicts(s, *args(s, int(s.now()))) == (reason, reason)


def test_optimistic_post_needs_the_stake_behind_it(system: OracleSystem) -> None:
    s = system
    member = s.account(s.keys[3])
    s.bonds.transact("request_unbond", s.oracle_role, 1, sender=member)
    assert _post_verdicts(s, s.keys[3], 1, P, int(s.now())) == ("oracle: insufficient stake",) * 2


# --- challenges ----------------------------------------------------------------------------


def _optimistic(s: OracleSystem, poster: int, price: int, timestamp: int | None = None) -> StoredRound:
    """Round 1 verified at P, round 2 posted by member ``poster``; returns round 2."""
    s.transmit(honest_report(s, 1, [P] * 3))
    s.chain.time_travel(10)
    s.post(s.keys[poster], 2, price, timestamp)
    s.chain.time_travel(5)
    return s.round_state(1)


def _challenge_verdicts(s: OracleSystem, index: int, observations: list[SignedObservation],
                        committee: Committee | None = None,
                        sender: LocalAccount | None = None) -> tuple[str | None, str | None]:
    stored = s.round_state(index)
    python = _reason(lambda: process_challenge(s.domain, committee or s.committee, s.params, stored,
                                               observations, s.now()))
    chain = None
    try:
        s.challenge(index, observations, sender=sender, committee=committee)
    except ContractRevert as error:
        chain = error.reason
    return python, chain


def test_a_wrong_optimistic_round_is_proven_slashed_and_skipped(system: OracleSystem) -> None:
    s = system
    stored = _optimistic(s, 1, 2 * P)
    poster, challenger = s.committee.members[1], s.chain.accounts[6]
    observations = [observe(s, s.keys[i], 2, P + i) for i in (0, 2, 3)]
    assert process_challenge(s.domain, s.committee, s.params, stored, observations, s.now()) == poster
    insurance = s.bonds.call("insurance_fund")
    receipt = s.challenge(1, observations, sender=challenger)
    slashed = DEFAULT_HUB.slash_amount
    reward = slashed * DEFAULT_HUB.prover_reward_bps // 10_000
    assert receipt.events_named("RoundChallenged")[0].args == {
        "feed_id": s.committee.feed_id, "index": 1, "poster": poster, "challenger": challenger.address,
        "slashed": slashed, "reward": reward}
    assert s.round_state(1) == dataclasses.replace(stored, invalid=True)
    assert _balance(s, challenger.address) == reward
    assert s.bonds.call("insurance_fund") == insurance + slashed - reward
    assert s.bonds.call("stake_of", poster, s.oracle_role) == s.stake - slashed
    assert s.hub.call("is_banned", poster) and not s.hub.call("is_member", s.committee.feed_id, poster)
    # slashed once: the round is invalid now, and no longer a fresh price
    assert _challenge_verdicts(s, 1, observations) == ("oracle: round invalid",) * 2
    assert _revert(lambda: s.hub.call("fresh_price", s.committee.feed_id)) == "oracle: last round disputed"
    # the TWAP skips it: round 1's price holds over the whole window
    s.chain.time_travel(DEFAULT_HUB.dispute_window + 60)
    t0 = s.rounds()[0].timestamp
    assert s.hub.call("twap", s.committee.feed_id, t0, t0 + 60, 10**15) == P == compute_twap(
        s.rounds(), Timestamp(t0), Timestamp(t0 + 60), Price(10**15), s.now(), s.feed, s.params)


def test_a_backdated_optimistic_round_is_proven_by_timestamps(system: OracleSystem) -> None:
    s = system
    s.transmit(honest_report(s, 1, [P] * 3))
    s.chain.time_travel(110)
    now = int(s.now())
    s.post(s.keys[1], 2, P, now - 100)  # the right price, stamped 100 s early
    observations = [observe(s, s.keys[i], 2, P) for i in (0, 2, 3)]
    assert _challenge_verdicts(s, 1, observations) == (None, None)
    assert s.round_state(1).invalid


def test_an_honest_poster_cannot_be_framed_without_an_equivocation(system: OracleSystem) -> None:
    """Member 0 posts the lower medians of the observations of members 0, 1, 2; member 3 (faulty)
    signs an outlier. No 2f+1 of the four observations lie on one side; framing needs a second
    observation from member 0, 1 or 2, which is a provable equivocation."""
    s = system
    s.transmit(honest_report(s, 1, [P] * 3))
    s.chain.time_travel(10)
    now = int(s.now())
    honest = [observe(s, s.keys[i], 2, P + 10 * i, timestamp=now - i) for i in range(3)]
    faulty = observe(s, s.keys[3], 2, 5 * P, timestamp=now)
    s.post(s.keys[0], 2, P + 10, now - 1)
    for chosen in itertools.combinations([*honest, faulty], 3):
        assert _challenge_verdicts(s, 1, list(chosen)) == ("oracle: quorum agrees",) * 2
    framing = observe(s, s.keys[0], 2, 5 * P)  # member 0 again, for the same round
    assert _challenge_verdicts(s, 1, [framing, honest[2], faulty]) == (None, None)
    # ... and the framer pays for it
    s.prove(compute_equivocation_proof(honest[0], framing), sender=s.chain.accounts[6])
    assert s.hub.call("is_banned", s.committee.members[0])


def test_challenge_refusals(system: OracleSystem) -> None:
    s = system
    t = int(_optimistic(s, 1, 2 * P).timestamp)
    obs = [observe(s, s.keys[i], 2, P) for i in (0, 2, 3)]
    straddle = [observe(s, s.keys[0], 2, 3 * P, timestamp=t), observe(s, s.keys[2], 2, P, timestamp=t - 1),
                observe(s, s.keys[3], 2, P, timestamp=t + 1)]
    cases: list[tuple[str, int, list[SignedObservation], Committee | None]] = [
        ("oracle: not optimistic", 0, obs, None),
        ("oracle: too few observations", 1, obs[:2], None),
        ("oracle: duplicate observation", 1, [obs[0], observe(s, s.keys[0], 2, P + 1), obs[2]], None),
        ("oracle: not a member", 1, [observe(s, OUTSIDER, 2, P), *obs[1:]], None),
        ("oracle: not a member", 1, [observe(s, s.keys[0], 3, P), *obs[1:]], None),  # another round
        ("oracle: quorum agrees", 1, straddle, None),
    ]
    for reason, index, observations, committee in cases:
        assert _challenge_verdicts(s, index, observations, committee) == (reason, reason)
    assert _revert(lambda: s.challenge(1, obs, committee=other_committee(s))) == "oracle: wrong config"
    s.chain.time_travel(DEFAULT_HUB.dispute_window)
    assert _challenge_verdicts(s, 1, obs) == ("oracle: challenge period over",) * 2
    assert not s.round_state(1).invalid


# --- round disputes ------------------------------------------------------------------------


def _arbitrators(s: OracleSystem) -> list[LocalAccount]:
    voters = [s.chain.accounts[i] for i in (7, 8, 9)]
    for voter in voters:
        s.bond_arbitrator(voter, 10_000 * USDC)
    s.chain.time_travel(1)
    return voters


def _collusion(s: OracleSystem) -> SignedReport:
    """Rounds 1-3 honest at P; round 2 is a report by the colluding members 1 and 2 (f+1 = 2):
    their two observations at 2P and one honest one make the median 2P."""
    s.transmit(honest_report(s, 1, [P] * 3))
    s.chain.time_travel(30)
    bad = build_report(s, 2, [observe(s, s.keys[0], 2, P), observe(s, s.keys[1], 2, 2 * P),
                              observe(s, s.keys[2], 2, 2 * P)], [s.keys[1], s.keys[2]])
    s.transmit(bad)
    s.chain.time_travel(30)
    s.transmit(honest_report(s, 3, [P] * 3))
    s.chain.time_travel(30)
    return bad


def test_a_wrong_report_is_disputed_arbitrated_and_its_signers_slashed_once(system: OracleSystem) -> None:
    s = system
    voters = _arbitrators(s)
    bad = _collusion(s)
    disputer, defender = s.chain.accounts[5], s.account(s.keys[1])
    stored = s.round_state(1)
    evidence = compute_report_evidence(s.domain, bad)
    accused = process_round_dispute(s.domain, s.committee, s.params, stored, evidence, False, s.now())
    assert accused == s.committee.members[1:3]
    stakes_before = {m: _stake(s, m) for m in accused}
    insurance = s.bonds.call("insurance_fund")

    aid = s.dispute(1, evidence, disputer)
    a = read_struct(s.assertions, "get_assertion", aid)
    claim = compute_round_claim(Address(s.hub.address), s.committee.feed_id, 1, stored)
    assert (a["asserter"], a["target"], a["claim"], a["bond"]) == (s.disputes.address, s.disputes.address,
                                                                   claim, BOND)
    assert a["expires_at"] - a["asserted_at"] == DEFAULT_HUB.dispute_liveness
    assert s.disputes.call("round_claim", s.committee.feed_id, 1) == claim
    assert s.round_state(1).disputed
    assert _balance(s, disputer.address) == 0 and _balance(s, s.disputes.address) == 0
    # settlement waits while the round is disputed, even once the window is final
    t0, t2 = s.rounds()[0].timestamp, s.rounds()[2].timestamp
    s.chain.time_travel(DEFAULT_HUB.dispute_window)
    assert _revert(lambda: s.hub.call("twap", s.committee.feed_id, t0, t2 + 10, 10**15)) == \
        "oracle: window under dispute"
    assert _revert(lambda: s.dispute(1, evidence, s.chain.accounts[4])) == "oracle: round already disputed"
    assert _revert(lambda: s.resolve(1)) == "assertions: liveness not over"

    # a colluder defends the round; arbitrators find it wrong
    dispute_id = s.counter(aid, defender)
    s.vote(dispute_id, {voters[0]: True, voters[1]: True, voters[2]: False}, b"wrong round")
    weights = [s.arbitration.call("get_ballot", dispute_id, v.address)[1] for v in voters]
    payouts = compute_dispute_payouts(BOND, s.dispute_params.voter_reward_bps,
                                      [Reveal(Address(v.address), Amount(w), vote) for v, w, vote in
                                       zip(voters, weights, (True, True, False), strict=True)],
                                      Amount(sum(weights)), s.dispute_params.quorum_bps)
    outcome = compute_dispute_outcome(payouts, stakes_before, s.params)
    receipt = s.resolve(1, sender=s.chain.accounts[4])
    event = receipt.events_named("DisputeResolved")[0].args
    assert event["invalid"] and outcome.invalid
    assert event["slashed"] == sum(x.slashed for x in outcome.slashes.values()) == 2 * DEFAULT_HUB.slash_amount
    assert event["reward"] == sum(x.reward for x in outcome.slashes.values())
    assert event["bond_returned"] == payouts.asserter == 2 * BOND - BOND * 2_500 // 10_000
    for member, slash in outcome.slashes.items():
        assert _stake(s, member) == slash.stake_after
        assert s.hub.call("is_banned", member)
    assert s.bonds.call("insurance_fund") == insurance + outcome.insurance
    assert s.disputes.call("owed", disputer.address) == outcome.disputer_credit
    assert s.round_state(1) == dataclasses.replace(stored, invalid=True)

    # exactly once
    assert _revert(lambda: s.resolve(1)) == "oracle: dispute resolved"
    assert _revert(lambda: s.dispute(1, evidence, s.chain.accounts[4])) == "oracle: round already disputed"
    # every token accounted for: the disputer withdraws its credit, nothing stays in the module
    assert s.disputes.transact("withdraw", sender=disputer).events_named("Withdrawn")[0].args["amount"] == \
        outcome.disputer_credit
    assert _balance(s, disputer.address) == outcome.disputer_credit
    assert _balance(s, s.disputes.address) == 0 == s.disputes.call("total_owed")
    assert _revert(lambda: s.disputes.transact("withdraw", sender=disputer)) == "oracle: nothing owed"
    assert _revert(lambda: s.assertions.transact("claim", aid, sender=defender)) == \
        "assertions: nothing to claim"

    # the TWAP now skips the wrong round: round 1's price holds until round 3
    expected = compute_twap(s.rounds(), Timestamp(t0), Timestamp(t2 + 10), Price(10**15), s.now(), s.feed,
                            s.params)
    assert expected == P
    assert s.hub.call("twap", s.committee.feed_id, t0, t2 + 10, 10**15) == expected
    # ... for good: no round of a final window can be disputed any more
    assert _revert(lambda: s.dispute(2, None, s.chain.accounts[4])) == "oracle: dispute window over"
    s.chain.time_travel(86_400)
    assert s.hub.call("twap", s.committee.feed_id, t0, t2 + 10, 10**15) == expected


def test_a_frivolous_dispute_loses_its_bond_and_the_round_stands(system: OracleSystem) -> None:
    s = system
    voters = _arbitrators(s)
    honest = honest_report(s, 1, [P, P + 2, P + 4])
    s.transmit(honest)
    s.chain.time_travel(20)
    disputer, defender = s.chain.accounts[5], s.chain.accounts[4]
    aid = s.dispute(0, compute_report_evidence(s.domain, honest), disputer)
    dispute_id = s.counter(aid, defender)
    s.vote(dispute_id, {voters[0]: False, voters[1]: False, voters[2]: True}, b"frivolous")
    stakes = [_stake(s, m) for m in s.committee.members]
    receipt = s.resolve(0)
    assert receipt.events_named("DisputeResolved")[0].args["invalid"] is False
    assert not receipt.events_named("MemberSlashed")
    assert [_stake(s, m) for m in s.committee.members] == stakes
    assert s.round_state(0) == StoredRound(RoundId(1), Price(P + 2), honest.report.timestamp)
    assert s.disputes.call("owed", disputer.address) == 0
    s.assertions.transact("claim", aid, sender=defender)
    assert _balance(s, defender.address) == 2 * BOND - BOND * 2_500 // 10_000  # the disputer's bond
    assert _balance(s, s.disputes.address) == 0
    s.chain.time_travel(DEFAULT_HUB.dispute_window)
    t = honest.report.timestamp
    assert s.hub.call("twap", s.committee.feed_id, t, t + 5, 10**15) == P + 2
    assert _revert(lambda: s.dispute(0, None, disputer)) == "oracle: round already disputed"


def test_an_undefended_dispute_settles_after_its_liveness(system: OracleSystem) -> None:
    """Nobody counters: the claim stands (the signers had the liveness to defend the round)."""
    s = system
    bad = _collusion(s)
    disputer = s.chain.accounts[5]
    s.dispute(1, compute_report_evidence(s.domain, bad), disputer)
    s.chain.time_travel(DEFAULT_HUB.dispute_liveness)
    stakes = {m: _stake(s, m) for m in s.committee.members[1:3]}
    outcome = compute_dispute_outcome(compute_undisputed_payouts(BOND), stakes, s.params)
    s.resolve(1)
    assert s.round_state(1).invalid
    assert s.disputes.call("owed", disputer.address) == outcome.disputer_credit == \
        BOND + 2 * (DEFAULT_HUB.slash_amount * 2_000 // 10_000)


def test_no_decision_returns_both_bonds_and_the_round_stands(system: OracleSystem) -> None:
    s = system
    voters = _arbitrators(s)
    bad = _collusion(s)
    disputer, defender = s.chain.accounts[5], s.account(s.keys[2])
    aid = s.dispute(1, compute_report_evidence(s.domain, bad), disputer)
    dispute_id = s.counter(aid, defender)
    s.vote(dispute_id, {voters[0]: True, voters[1]: False}, b"tie")  # equal stakes: a tie
    s.resolve(1)
    assert not s.round_state(1).invalid and not s.round_state(1).disputed
    assert s.disputes.call("owed", disputer.address) == BOND
    s.assertions.transact("claim", aid, sender=defender)
    assert _balance(s, defender.address) == BOND


def test_an_optimistic_round_can_be_disputed_its_poster_accused(system: OracleSystem) -> None:
    s = system
    stored = _optimistic(s, 3, P + 1)
    disputer = s.chain.accounts[5]
    assert process_round_dispute(s.domain, s.committee, s.params, stored, None, False, s.now()) == \
        (s.committee.members[3],)
    s.dispute(1, None, disputer)
    assert read_struct(s.disputes, "get_dispute", s.committee.feed_id, 1)["accused"] == 1 << 3
    # a disputed optimistic round is left to arbitration: no challenge meanwhile
    obs = [observe(s, s.keys[i], 2, P) for i in (0, 1, 2)]
    assert _revert(lambda: s.challenge(1, obs)) == "oracle: round disputed"
    s.chain.time_travel(DEFAULT_HUB.dispute_liveness)
    s.resolve(1)
    assert s.hub.call("is_banned", s.committee.members[3])


def test_dispute_refusals(system: OracleSystem) -> None:
    s = system
    bad = _collusion(s)
    stored = s.round_state(1)
    evidence = compute_report_evidence(s.domain, bad)
    disputer = s.chain.accounts[5]

    def both(evidence_: ReportEvidence) -> tuple[str | None, str | None]:
        python = _reason(lambda: process_round_dispute(s.domain, s.committee, s.params, stored,
                                                       evidence_, False, s.now()))
        chain = None
        try:
            s.dispute(1, evidence_, disputer)
        except ContractRevert as error:
            chain = error.reason
        return python, chain

    one = dataclasses.replace(evidence, signatures=evidence.signatures[:1])
    assert both(one) == ("oracle: too few signatures",) * 2
    twice = dataclasses.replace(evidence, signatures=(evidence.signatures[0],) * 2)
    assert both(twice) == ("oracle: duplicate signer",) * 2
    wrong_hash = dataclasses.replace(evidence, observations_hash=b"\x01" * 32)
    assert both(wrong_hash) == ("oracle: not a member",) * 2
    assert _revert(lambda: s.dispute(1, evidence, disputer, committee=other_committee(s))) == \
        "oracle: wrong config"
    assert _revert(lambda: s.resolve(1)) == "oracle: not disputed"
    s.chain.time_travel(DEFAULT_HUB.dispute_window)
    assert both(evidence) == ("oracle: dispute window over",) * 2
    assert _revert(lambda: s.disputes.call("round_claim", s.committee.feed_id, 9)) == "oracle: unknown round"
