"""Assertions.vy + Arbitration.vy: one test per code path, end-to-end payouts against the Python rules."""

from __future__ import annotations

import pytest
from dispute_system import HOUR, PARAMS, USDC, DisputeSystem, deploy_dispute_system, salt_for
from eth_account.signers.local import LocalAccount

from clearhouse.chain import Chain
from clearhouse.disputes import (
    Reveal,
    Role,
    Verdict,
    compute_dispute_payouts,
    compute_vote_commitment,
    compute_voter_penalty,
)
from clearhouse.errors import ContractRevert
from clearhouse.types import Address, Amount

ARB = int(Role.ARBITRATOR)
ZERO = "0x" + "00" * 20
BOND = 1_000 * USDC


@pytest.fixture
def system(chain: Chain) -> DisputeSystem:
    return deploy_dispute_system(chain)


def _voters(system: DisputeSystem, stakes: dict[int, int]) -> list[LocalAccount]:
    """Bond arbitrator stake for ``accounts[i]`` and let a second pass so it is voting power."""
    accounts = [system.chain.accounts[i] for i in stakes]
    for acct, stake in zip(accounts, stakes.values(), strict=True):
        system.bond(acct, Role.ARBITRATOR, stake * USDC)
    system.chain.time_travel(1)
    return accounts


def _disputed(system: DisputeSystem) -> tuple[int, int]:
    """An assertion by ``accounts[1]`` disputed by ``accounts[2]``: (assertion id, dispute id)."""
    accounts = system.chain.accounts
    aid = system.assert_claim(accounts[1], BOND)
    return aid, system.dispute(accounts[2], aid)


def _vote(system: DisputeSystem, dispute_id: int, votes: dict[LocalAccount, bool],
          reveal: set[LocalAccount] | None = None) -> list[Reveal]:
    """Commit every vote, move to the reveal phase, reveal those in ``reveal`` (default: all),
    move past the reveal phase; return the reveals in order for the Python rules."""
    for acct, vote in votes.items():
        system.commit(acct, dispute_id, vote, salt_for(acct.address, dispute_id))
    system.chain.time_travel(PARAMS.commit_period)
    reveals = []
    for acct, vote in votes.items():
        if reveal is None or acct in reveal:
            system.reveal(acct, dispute_id, vote, salt_for(acct.address, dispute_id))
            weight = system.ballot(dispute_id, acct.address)["weight"]
            reveals.append(Reveal(Address(acct.address), Amount(weight), vote))
    system.chain.time_travel(PARAMS.reveal_period)
    return reveals


def _claim_everything(system: DisputeSystem, aid: int, dispute_id: int,
                      voters: list[LocalAccount]) -> dict[str, int]:
    """Every party pulls whatever it is owed; return what each received."""
    accounts = system.chain.accounts
    paid: dict[str, int] = {}
    a = system.assertion(aid)
    for who, amount in ((accounts[1], a["asserter_payout"]), (accounts[2], a["disputer_payout"])):
        if amount:
            r = system.assertions.transact("claim", aid, sender=who)
            paid[who.address] = r.events_named("PayoutClaimed")[0].args["amount"]
    for v in voters:
        if system.arbitration.call("reward_of", dispute_id, v.address):
            r = system.arbitration.transact("claim_reward", dispute_id, sender=v)
            paid[v.address] = r.events_named("RewardClaimed")[0].args["amount"]
    return paid


# --- construction --------------------------------------------------------------------------


def test_arbitration_constructor_checks(system: DisputeSystem) -> None:
    chain, b = system.chain, system.bonds.address
    P = PARAMS
    cases = [
        ((ZERO, 1, 1, 1, 0, 0), "arbitration: zero bonds"),
        ((b, 0, 1, 1, 0, 0), "arbitration: zero phase"),
        ((b, 1, 0, 1, 0, 0), "arbitration: zero phase"),
        ((b, 1, 1, 0, 0, 0), "arbitration: zero penalty window"),
        ((b, 1, 1, 1, 10_001, 0), "arbitration: bps above 100%"),
        ((b, 1, 1, 1, 0, 10_001), "arbitration: bps above 100%"),
        ((b, P.commit_period, P.reveal_period, P.unbonding_delay, 0, 0),
         "arbitration: unbonding delay too short"),
    ]
    for args, reason in cases:
        with pytest.raises(ContractRevert, match=reason):
            chain.deploy("Arbitration", *args)
    arb = chain.deploy("Arbitration", b, 1, 1, P.unbonding_delay - 2, 10_000, 10_000)
    assert arb.call("token") == system.token.address


def test_assertions_constructor_checks(system: DisputeSystem) -> None:
    chain, arb = system.chain, system.arbitration.address
    for args, reason in [((ZERO, 1, 1, 0), "assertions: zero arbitration"),
                         ((arb, 0, 1, 0), "assertions: bad min bond"),
                         ((arb, 2**128, 1, 0), "assertions: bad min bond"),
                         ((arb, 1, 0, 0), "assertions: zero min liveness"),
                         ((arb, 1, 1, 10_001), "assertions: bps above 100%")]:
        with pytest.raises(ContractRevert, match=reason):
            chain.deploy("Assertions", *args)
    a = system.assertions
    assert (a.call("token"), a.call("arbitration"), a.call("min_bond"), a.call("min_liveness"),
            a.call("voter_reward_bps")) == (system.token.address, arb, PARAMS.min_bond,
                                            PARAMS.min_liveness, PARAMS.voter_reward_bps)


# --- assert_claim --------------------------------------------------------------------------


def test_assert_claim_takes_the_bond_and_records_the_claim(system: DisputeSystem) -> None:
    chain, asserter, consumer = system.chain, system.chain.accounts[1], system.chain.accounts[7]
    system.fund(asserter, BOND, system.assertions)
    claim = b"\xab" * 32
    receipt = system.assertions.transact("assert_claim", claim, BOND, 2 * HOUR, consumer.address,
                                         sender=asserter)
    expires_at = chain.now() + 2 * HOUR
    assert receipt.events_named("ClaimAsserted")[0].args == {
        "assertion_id": 1, "asserter": asserter.address, "target": consumer.address, "claim": claim,
        "bond": BOND, "expires_at": expires_at}
    a = system.assertion(1)
    assert a == {"asserter": asserter.address, "target": consumer.address, "claim": claim,
                 "bond": BOND, "asserted_at": chain.now(), "expires_at": expires_at,
                 "disputer": ZERO, "dispute_id": 0, "settled": False, "truthful": False,
                 "asserter_payout": 0, "disputer_payout": 0}
    assert system.balance(system.assertions.address) == BOND
    assert system.assertions.call("resolved", 1) == (False, False)
    assert system.assertions.call("assertion_count") == 1


def test_assert_claim_rejects_out_of_bounds_bond_and_liveness(system: DisputeSystem) -> None:
    asserter = system.chain.accounts[1]
    system.fund(asserter, 2**129, system.assertions)
    claim = b"\x01" * 32
    with pytest.raises(ContractRevert, match="assertions: bond below minimum"):
        system.assertions.transact("assert_claim", claim, PARAMS.min_bond - 1, HOUR, sender=asserter)
    with pytest.raises(ContractRevert, match="assertions: bond too large"):
        system.assertions.transact("assert_claim", claim, 2**128, HOUR, sender=asserter)
    with pytest.raises(ContractRevert, match="assertions: liveness too short"):
        system.assertions.transact("assert_claim", claim, BOND, PARAMS.min_liveness - 1, sender=asserter)
    poor = system.chain.accounts[6]
    with pytest.raises(ContractRevert, match="token: insufficient allowance"):
        system.assertions.transact("assert_claim", claim, BOND, HOUR, sender=poor)


# --- dispute -------------------------------------------------------------------------------


def test_dispute_takes_an_equal_bond_and_opens_an_arbitration(system: DisputeSystem) -> None:
    chain, accounts = system.chain, system.chain.accounts
    _voters(system, {3: 100, 4: 300})
    aid = system.assert_claim(accounts[1], BOND)
    system.fund(accounts[2], BOND, system.assertions)
    receipt = system.assertions.transact("dispute", aid, sender=accounts[2])
    now = chain.now()
    assert receipt.events_named("ClaimDisputed")[0].args == {
        "assertion_id": aid, "disputer": accounts[2].address, "dispute_id": 1}
    assert receipt.events_named("DisputeOpened")[0].args == {
        "dispute_id": 1, "requester": system.assertions.address, "ref": aid.to_bytes(32, "big"),
        "snapshot": now - 1, "commit_end": now + PARAMS.commit_period,
        "reveal_end": now + PARAMS.commit_period + PARAMS.reveal_period, "total_weight": 400 * USDC}
    assert system.balance(system.assertions.address) == 2 * BOND
    assert system.arbitration.call("outcome", 1) == (False, False, False)


def test_dispute_after_liveness_and_double_dispute_revert(system: DisputeSystem) -> None:
    chain, accounts = system.chain, system.chain.accounts
    aid = system.assert_claim(accounts[1], BOND)
    system.fund(accounts[3], 2 * BOND, system.assertions)
    with pytest.raises(ContractRevert, match="assertions: unknown assertion"):
        system.assertions.transact("dispute", aid + 1, sender=accounts[3])
    system.dispute(accounts[2], aid)
    with pytest.raises(ContractRevert, match="assertions: already disputed"):
        system.assertions.transact("dispute", aid, sender=accounts[3])
    late = system.assert_claim(accounts[1], BOND)
    chain.time_travel(PARAMS.min_liveness)
    with pytest.raises(ContractRevert, match="assertions: liveness over"):
        system.assertions.transact("dispute", late, sender=accounts[3])


def test_only_registered_requesters_open_disputes(system: DisputeSystem) -> None:
    chain, accounts = system.chain, system.chain.accounts
    rogue = chain.deploy("Assertions", *PARAMS.assertions_args(system.arbitration.address))
    system.fund(accounts[1], BOND, rogue)
    rogue.transact("assert_claim", b"\x01" * 32, BOND, HOUR, sender=accounts[1])
    system.fund(accounts[2], BOND, rogue)
    with pytest.raises(ContractRevert, match="arbitration: not a requester"):
        rogue.transact("dispute", 1, sender=accounts[2])
    with pytest.raises(ContractRevert, match="arbitration: not a requester"):
        system.arbitration.transact("open_dispute", b"\x00" * 32, sender=accounts[2])


# --- settle and claim: undisputed ----------------------------------------------------------


def test_undisputed_claim_settles_truthful_after_liveness(system: DisputeSystem) -> None:
    chain, asserter = system.chain, system.chain.accounts[1]
    aid = system.assert_claim(asserter, BOND)
    with pytest.raises(ContractRevert, match="assertions: liveness not over"):
        system.assertions.transact("settle", aid)
    with pytest.raises(ContractRevert, match="assertions: not settled"):
        system.assertions.transact("claim", aid, sender=asserter)
    chain.time_travel(PARAMS.min_liveness)
    receipt = system.assertions.transact("settle", aid, sender=chain.accounts[5])
    assert receipt.events_named("ClaimSettled")[0].args == {
        "assertion_id": aid, "truthful": True, "disputed": False, "asserter_payout": BOND,
        "disputer_payout": 0, "voter_pool": 0}
    assert system.assertions.call("resolved", aid) == (True, True)
    with pytest.raises(ContractRevert, match="assertions: already settled"):
        system.assertions.transact("settle", aid)
    with pytest.raises(ContractRevert, match="assertions: nothing to claim"):
        system.assertions.transact("claim", aid, sender=chain.accounts[5])
    receipt = system.assertions.transact("claim", aid, sender=asserter)
    assert receipt.events_named("PayoutClaimed")[0].args == {
        "assertion_id": aid, "who": asserter.address, "amount": BOND}
    with pytest.raises(ContractRevert, match="assertions: nothing to claim"):
        system.assertions.transact("claim", aid, sender=asserter)
    assert system.balance(asserter.address) == BOND
    assert system.balance(system.assertions.address) == 0
    with pytest.raises(ContractRevert, match="assertions: unknown assertion"):
        system.assertions.transact("settle", aid + 1)


# --- settle and claim: disputed ------------------------------------------------------------


@pytest.mark.parametrize("truthful", [True, False])
def test_decided_dispute_pays_winner_and_voters_exactly(system: DisputeSystem, truthful: bool) -> None:
    chain = system.chain
    v3, v4, v5, v6 = _voters(system, {3: 100, 4: 333, 5: 250, 6: 17})
    aid, did = _disputed(system)
    with pytest.raises(ContractRevert, match="assertions: arbitration pending"):
        system.assertions.transact("settle", aid)
    votes = {v3: truthful, v4: truthful, v5: not truthful, v6: truthful}
    reveals = _vote(system, did, votes, reveal={v3, v4, v5})
    assert system.arbitration.call("outcome", did) == (True, True, truthful)
    expected = compute_dispute_payouts(Amount(BOND), PARAMS.voter_reward_bps, reveals,
                                       Amount(700 * USDC), PARAMS.quorum_bps)
    assert expected.verdict is (Verdict.TRUTHFUL if truthful else Verdict.FALSE)
    receipt = system.assertions.transact("settle", aid)
    assert receipt.events_named("RewardsFunded")[0].args == {"dispute_id": did, "amount": expected.voter_pool}
    assert system.assertions.call("resolved", aid) == (True, truthful)
    paid = _claim_everything(system, aid, did, [v3, v4, v5, v6])
    asserter, disputer = chain.accounts[1].address, chain.accounts[2].address
    winner = asserter if truthful else disputer
    want: dict[str, int] = {winner: 2 * BOND - expected.voter_pool}
    want.update({str(v): int(x) for v, x in expected.voter_rewards.items()})
    assert paid == want
    assert sum(expected.voter_rewards.values()) == expected.voter_pool == BOND * 2_500 // 10_000
    assert system.balance(system.assertions.address) == 0
    assert system.balance(system.arbitration.address) == 0
    # the loser and the silent voter are penalised; winners are not
    for v in (v5, v6):
        r = system.arbitration.transact("penalize", did, v.address)
        weight = system.ballot(did, v.address)["weight"]
        assert r.events_named("VoterPenalized")[0].args["slashed"] == compute_voter_penalty(
            Amount(weight), PARAMS.voter_slash_bps)
    for v in (v3, v4):
        with pytest.raises(ContractRevert, match="arbitration: voter not at fault"):
            system.arbitration.transact("penalize", did, v.address)
    assert system.bonds.call("insurance_fund") == (250 + 17) * USDC // 10


@pytest.mark.parametrize("case", ["no reveals", "tie", "below quorum"])
def test_no_decision_returns_both_bonds(system: DisputeSystem, case: str) -> None:
    chain = system.chain
    v3, v4, v5 = _voters(system, {3: 100, 4: 100, 5: 2_000})
    aid, did = _disputed(system)
    if case == "no reveals":
        _vote(system, did, {v3: True}, reveal=set())
    elif case == "tie":
        _vote(system, did, {v3: True, v4: False})
    else:  # 100 of 2,200 revealed: under the 20 % quorum
        _vote(system, did, {v3: True, v5: False}, reveal={v3})
    assert system.arbitration.call("outcome", did) == (True, False, False)
    receipt = system.assertions.transact("settle", aid)
    assert receipt.events_named("RewardsFunded") == []
    assert system.assertions.call("resolved", aid) == (True, False)
    paid = _claim_everything(system, aid, did, [v3, v4, v5])
    assert paid == {chain.accounts[1].address: BOND, chain.accounts[2].address: BOND}
    assert system.balance(system.assertions.address) == 0
    with pytest.raises(ContractRevert, match="arbitration: rewards not funded"):
        system.arbitration.transact("claim_reward", did, sender=v3)
    if case == "tie":  # revealed voters are never at fault without a decision
        with pytest.raises(ContractRevert, match="arbitration: voter not at fault"):
            system.arbitration.transact("penalize", did, v4.address)
    else:  # a voter who committed and never revealed always is
        silent = v3 if case == "no reveals" else v5
        system.arbitration.transact("penalize", did, silent.address)


def test_one_account_as_asserter_and_disputer_claims_both_payouts(system: DisputeSystem) -> None:
    chain, who = system.chain, system.chain.accounts[1]
    aid = system.assert_claim(who, BOND)
    did = system.dispute(who, aid)
    chain.time_travel(PARAMS.commit_period + PARAMS.reveal_period)
    assert system.arbitration.call("outcome", did) == (True, False, False)
    system.assertions.transact("settle", aid)
    receipt = system.assertions.transact("claim", aid, sender=who)
    assert receipt.events_named("PayoutClaimed")[0].args["amount"] == 2 * BOND
    assert system.balance(system.assertions.address) == 0


# --- commit --------------------------------------------------------------------------------


def test_commit_paths(system: DisputeSystem) -> None:
    chain = system.chain
    (v3,) = _voters(system, {3: 100})
    _aid, did = _disputed(system)
    commitment = compute_vote_commitment(True, salt_for(1), Address(v3.address))
    with pytest.raises(ContractRevert, match="arbitration: unknown dispute"):
        system.arbitration.transact("commit", did + 1, commitment, sender=v3)
    with pytest.raises(ContractRevert, match="arbitration: empty commitment"):
        system.arbitration.transact("commit", did, b"\x00" * 32, sender=v3)
    receipt = system.arbitration.transact("commit", did, commitment, sender=v3)
    assert receipt.events_named("VoteCommitted")[0].args == {
        "dispute_id": did, "voter": v3.address, "weight": 100 * USDC}
    assert system.ballot(did, v3.address) == {
        "commitment": commitment, "weight": 100 * USDC, "revealed": False, "vote": False,
        "weight_before": 0, "rewarded": False, "penalized": False}
    with pytest.raises(ContractRevert, match="arbitration: already committed"):
        system.arbitration.transact("commit", did, commitment, sender=v3)
    stranger = chain.accounts[8]
    with pytest.raises(ContractRevert, match="arbitration: no voting power"):
        system.arbitration.transact("commit", did, commitment, sender=stranger)
    chain.time_travel(PARAMS.commit_period)
    v4 = chain.accounts[4]
    with pytest.raises(ContractRevert, match="arbitration: not in commit phase"):
        system.arbitration.transact("commit", did, commitment, sender=v4)


def test_stake_bonded_after_the_dispute_has_no_voting_power(system: DisputeSystem) -> None:
    """No flash votes: voting power is stake at the end of the second before the dispute."""
    chain = system.chain
    _voters(system, {3: 100})
    late = chain.accounts[4]
    aid = system.assert_claim(chain.accounts[1], BOND)
    system.fund(late, 10_000 * USDC, system.bonds)
    system.fund(chain.accounts[2], BOND, system.assertions)
    system.bonds.transact("bond", ARB, 10_000 * USDC, sender=late)  # the second of the dispute, or before
    did = system.dispute(chain.accounts[2], aid)
    snapshot = system.dispute_record(did)["snapshot"]
    chain.time_travel(1)
    late_power = system.bonds.call("stake_at", late.address, ARB, snapshot)
    commitment = compute_vote_commitment(True, salt_for(2), Address(late.address))
    if late_power == 0:
        with pytest.raises(ContractRevert, match="arbitration: no voting power"):
            system.arbitration.transact("commit", did, commitment, sender=late)
    else:  # anvil mined the bond in an earlier second than the dispute: then it was at stake
        system.arbitration.transact("commit", did, commitment, sender=late)
    system.bond(late, Role.ARBITRATOR, 1)
    chain.time_travel(1)
    assert system.dispute_record(did)["total_weight"] == 100 * USDC + late_power
    # a dispute opened now sees it
    aid2 = system.assert_claim(chain.accounts[1], BOND)
    did2 = system.dispute(chain.accounts[2], aid2)
    system.arbitration.transact("commit", did2, commitment, sender=late)
    assert system.ballot(did2, late.address)["weight"] == 10_000 * USDC + 1


# --- reveal --------------------------------------------------------------------------------


def test_reveal_paths(system: DisputeSystem) -> None:
    chain = system.chain
    v3, v4 = _voters(system, {3: 100, 4: 50})
    _aid, did = _disputed(system)
    salt = salt_for("v3")
    system.commit(v3, did, False, salt)
    system.commit(v4, did, True, salt)
    with pytest.raises(ContractRevert, match="arbitration: not in reveal phase"):
        system.reveal(v3, did, False, salt)
    chain.time_travel(PARAMS.commit_period)
    with pytest.raises(ContractRevert, match="arbitration: no commitment"):
        system.reveal(chain.accounts[5], did, False, salt)
    with pytest.raises(ContractRevert, match="arbitration: commitment mismatch"):
        system.reveal(v3, did, True, salt)  # wrong vote
    with pytest.raises(ContractRevert, match="arbitration: commitment mismatch"):
        system.reveal(v3, did, False, salt_for("other"))  # wrong salt
    with pytest.raises(ContractRevert, match="arbitration: commitment mismatch"):  # bound to its voter
        system.arbitration.transact("reveal", did, v4.address, False, salt, sender=v4)
    # anyone holding the salt may reveal for the voter
    receipt = system.arbitration.transact("reveal", did, v3.address, False, salt, sender=chain.accounts[9])
    assert receipt.events_named("VoteRevealed")[0].args == {
        "dispute_id": did, "voter": v3.address, "vote": False, "weight": 100 * USDC}
    with pytest.raises(ContractRevert, match="arbitration: already revealed"):
        system.reveal(v3, did, False, salt)
    chain.time_travel(PARAMS.reveal_period)
    with pytest.raises(ContractRevert, match="arbitration: not in reveal phase"):
        system.reveal(v4, did, True, salt)
    d = system.dispute_record(did)
    assert (d["weight_true"], d["weight_false"]) == (0, 100 * USDC)
    assert system.arbitration.call("outcome", did) == (True, True, False)


def test_vote_commitment_matches_the_python_rule(system: DisputeSystem) -> None:
    for vote in (True, False):
        for i in range(3):
            voter = system.chain.accounts[i].address
            assert system.arbitration.call("vote_commitment", vote, salt_for(i), voter) == \
                compute_vote_commitment(vote, salt_for(i), Address(voter))


# --- rewards and penalties -----------------------------------------------------------------


def test_claim_reward_paths(system: DisputeSystem) -> None:
    v3, v4, v5 = _voters(system, {3: 100, 4: 100, 5: 50})
    aid, did = _disputed(system)
    _vote(system, did, {v3: True, v4: True, v5: False}, reveal={v3, v5})
    with pytest.raises(ContractRevert, match="arbitration: rewards not funded"):
        system.arbitration.transact("claim_reward", did, sender=v3)
    system.assertions.transact("settle", aid)
    for loser in (v4, v5, system.chain.accounts[8]):  # silent, losing side, never voted
        with pytest.raises(ContractRevert, match="arbitration: not a winning voter"):
            system.arbitration.transact("claim_reward", did, sender=loser)
    pool = BOND * PARAMS.voter_reward_bps // 10_000
    assert system.arbitration.call("reward_of", did, v3.address) == pool
    system.arbitration.transact("claim_reward", did, sender=v3)
    with pytest.raises(ContractRevert, match="arbitration: already claimed"):
        system.arbitration.transact("claim_reward", did, sender=v3)
    with pytest.raises(ContractRevert, match="arbitration: unknown dispute"):
        system.arbitration.transact("claim_reward", did + 1, sender=v3)
    assert system.balance(system.arbitration.address) == 0


def test_penalize_paths(system: DisputeSystem) -> None:
    chain = system.chain
    v3, v4 = _voters(system, {3: 100, 4: 40})
    _aid, did = _disputed(system)
    system.commit(v3, did, True, salt_for(3))
    system.commit(v4, did, True, salt_for(4))
    chain.time_travel(PARAMS.commit_period)
    system.reveal(v3, did, True, salt_for(3))
    with pytest.raises(ContractRevert, match="arbitration: not resolved"):
        system.arbitration.transact("penalize", did, v4.address)
    # v4 leaves: its stake stays slashable through the penalty window
    system.bonds.transact("request_unbond", ARB, 40 * USDC, sender=v4)
    chain.time_travel(PARAMS.reveal_period)
    with pytest.raises(ContractRevert, match="arbitration: no commitment"):
        system.arbitration.transact("penalize", did, chain.accounts[8].address)
    receipt = system.arbitration.transact("penalize", did, v4.address, sender=chain.accounts[8])
    assert receipt.events_named("VoterPenalized")[0].args == {
        "dispute_id": did, "voter": v4.address, "requested": 4 * USDC, "slashed": 4 * USDC}
    assert receipt.events_named("Slashed")[0].args["insurance"] == 4 * USDC
    assert system.bonds.call("unbonding_of", v4.address, ARB)[0] == 36 * USDC
    with pytest.raises(ContractRevert, match="arbitration: already penalized"):
        system.arbitration.transact("penalize", did, v4.address)


def test_penalty_clamps_when_the_stake_is_gone(system: DisputeSystem) -> None:
    chain = system.chain
    (v3,) = _voters(system, {3: 100})
    _aid, did = _disputed(system)
    system.commit(v3, did, True, salt_for(3))
    system.bonds.transact("request_unbond", ARB, 100 * USDC, sender=v3)
    chain.time_travel(PARAMS.unbonding_delay)  # penalty window missed: stake withdrawn
    system.bonds.transact("withdraw", ARB, sender=v3)
    receipt = system.arbitration.transact("penalize", did, v3.address)
    assert receipt.events_named("VoterPenalized")[0].args["slashed"] == 0


def test_penalize_needs_arbitration_registered_as_slasher(system: DisputeSystem) -> None:
    chain = system.chain
    (v3,) = _voters(system, {3: 100})
    _aid, did = _disputed(system)
    system.commit(v3, did, True, salt_for(3))
    chain.time_travel(PARAMS.commit_period + PARAMS.reveal_period)
    system.bonds.transact("set_slasher", system.arbitration.address, ARB, False)
    with pytest.raises(ContractRevert, match="bonds: not a slasher"):
        system.arbitration.transact("penalize", did, v3.address)


# --- a plain requester (generic use) and administration ------------------------------------


def test_fund_rewards_paths_with_a_plain_requester(system: DisputeSystem) -> None:
    chain = system.chain
    requester = chain.accounts[7]
    v3, v4 = _voters(system, {3: 100, 4: 100})
    system.arbitration.transact("set_requester", requester.address, True)
    r = system.arbitration.transact("open_dispute", b"\x07" * 32, sender=requester)
    did = r.events_named("DisputeOpened")[0].args["dispute_id"]
    with pytest.raises(ContractRevert, match="arbitration: not the requester"):
        system.arbitration.transact("fund_rewards", did, 0, sender=v3)
    _vote(system, did, {v3: True, v4: False})  # a tie
    with pytest.raises(ContractRevert, match="arbitration: no decision"):
        system.arbitration.transact("fund_rewards", did, 0, sender=requester)
    r = system.arbitration.transact("open_dispute", b"\x08" * 32, sender=requester)
    did = r.events_named("DisputeOpened")[0].args["dispute_id"]
    _vote(system, did, {v3: True, v4: False}, reveal={v3})
    with pytest.raises(ContractRevert, match="arbitration: pool too large"):
        system.arbitration.transact("fund_rewards", did, 2**128, sender=requester)
    system.fund(requester, 1_001, system.arbitration)
    system.arbitration.transact("fund_rewards", did, 1_001, sender=requester)
    with pytest.raises(ContractRevert, match="arbitration: already funded"):
        system.arbitration.transact("fund_rewards", did, 0, sender=requester)
    assert system.arbitration.transact("claim_reward", did, sender=v3).events_named(
        "RewardClaimed")[0].args["amount"] == 1_001


def test_arbitration_admin_paths(system: DisputeSystem) -> None:
    accounts = system.chain.accounts
    mallory, governor = accounts[5], accounts[8]
    with pytest.raises(ContractRevert, match="arbitration: not admin"):
        system.arbitration.transact("set_requester", mallory.address, True, sender=mallory)
    with pytest.raises(ContractRevert, match="arbitration: not admin"):
        system.arbitration.transact("transfer_admin", mallory.address, sender=mallory)
    with pytest.raises(ContractRevert, match="arbitration: zero requester"):
        system.arbitration.transact("set_requester", ZERO, True)
    with pytest.raises(ContractRevert, match="arbitration: zero admin"):
        system.arbitration.transact("transfer_admin", ZERO)
    r = system.arbitration.transact("set_requester", mallory.address, True)
    assert r.events_named("RequesterSet")[0].args == {"requester": mallory.address, "enabled": True}
    system.arbitration.transact("set_requester", mallory.address, False)
    assert not system.arbitration.call("is_requester", mallory.address)
    system.arbitration.transact("transfer_admin", governor.address)
    assert system.arbitration.call("admin") == governor.address
    system.arbitration.transact("set_requester", mallory.address, True, sender=governor)


def test_outcome_of_an_unknown_dispute_reverts(system: DisputeSystem) -> None:
    with pytest.raises(ContractRevert, match="arbitration: unknown dispute"):
        system.arbitration.call("outcome", 1)
    assert system.arbitration.call("reward_of", 1, system.admin.address) == 0


# --- gas -----------------------------------------------------------------------------------


def test_gas_of_the_main_calls_stays_within_budget(system: DisputeSystem) -> None:
    """Budgets a little above the measured figures (docs/protocol.md lists them)."""
    chain, accounts = system.chain, system.chain.accounts
    gas: dict[str, int] = {}
    v3, v4 = accounts[3], accounts[4]
    for v in (v3, v4):
        system.fund(v, 100 * USDC, system.bonds)
    gas["bond (first)"] = system.bonds.transact("bond", ARB, 60 * USDC, sender=v3).gas_used
    system.bonds.transact("bond", ARB, 60 * USDC, sender=v4)
    chain.time_travel(10)
    gas["bond (top-up)"] = system.bonds.transact("bond", ARB, 40 * USDC, sender=v3).gas_used
    chain.time_travel(10)
    system.fund(accounts[1], 2 * BOND, system.assertions)
    system.fund(accounts[2], BOND, system.assertions)
    gas["assert_claim"] = system.assertions.transact("assert_claim", b"\x01" * 32, BOND, HOUR,
                                                     sender=accounts[1]).gas_used
    gas["dispute"] = system.assertions.transact("dispute", 1, sender=accounts[2]).gas_used
    salt = salt_for(0)
    gas["commit"] = system.arbitration.transact(
        "commit", 1, compute_vote_commitment(True, salt, Address(v3.address)), sender=v3).gas_used
    system.commit(v4, 1, False, salt)
    chain.time_travel(PARAMS.commit_period)
    gas["reveal"] = system.arbitration.transact("reveal", 1, v3.address, True, salt, sender=v3).gas_used
    chain.time_travel(PARAMS.reveal_period)
    gas["settle (disputed)"] = system.assertions.transact("settle", 1).gas_used
    gas["claim"] = system.assertions.transact("claim", 1, sender=accounts[1]).gas_used
    gas["claim_reward"] = system.arbitration.transact("claim_reward", 1, sender=v3).gas_used
    gas["penalize"] = system.arbitration.transact("penalize", 1, v4.address).gas_used
    system.assertions.transact("assert_claim", b"\x02" * 32, BOND, HOUR, sender=accounts[1])
    chain.time_travel(HOUR)
    gas["settle (undisputed)"] = system.assertions.transact("settle", 2).gas_used
    gas["request_unbond"] = system.bonds.transact("request_unbond", ARB, 10 * USDC, sender=v3).gas_used
    chain.time_travel(PARAMS.unbonding_delay)
    gas["withdraw"] = system.bonds.transact("withdraw", ARB, sender=v3).gas_used
    budget = {"bond (first)": 125_000, "bond (top-up)": 105_000, "assert_claim": 230_000,
              "dispute": 230_000, "commit": 100_000, "reveal": 100_000, "settle (disputed)": 210_000,
              "settle (undisputed)": 100_000, "claim": 65_000, "claim_reward": 90_000,
              "penalize": 180_000, "request_unbond": 165_000, "withdraw": 50_000}
    print(gas)
    over = {k: (v, budget[k]) for k, v in gas.items() if v > budget[k]}
    assert not over, over
