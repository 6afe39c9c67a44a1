"""clearhouse.disputes: the pure rules (the contracts are checked against them in tests/property)."""

from __future__ import annotations

import pytest
from eth_abi import encode as abi_encode
from eth_utils import keccak
from hypothesis import given
from hypothesis import strategies as st

from clearhouse.disputes import (
    BPS,
    Ballot,
    DisputeParams,
    Phase,
    Reveal,
    Stake,
    Tally,
    Verdict,
    compute_assertion_expiry,
    compute_dispute_payouts,
    compute_reveal,
    compute_slash,
    compute_snapshot_time,
    compute_stake_at,
    compute_tally,
    compute_undisputed_payouts,
    compute_verdict,
    compute_vote_commitment,
    compute_voter_penalty,
    compute_voter_rewards,
    get_phase,
    is_dispute_open,
    is_voter_at_fault,
    is_withdrawable,
    process_dispute,
)
from clearhouse.errors import (
    CommitmentMismatch,
    ConfigError,
    DisputeError,
    DuplicateAction,
    InvalidAssertion,
    MalformedMessage,
    OutsideWindow,
)
from clearhouse.types import Address, Amount, BasisPoints, Seconds, Timestamp

ALICE = Address("0x70997970C51812dc3A010C7d01b50e0d17dc79C8")
BOB = Address("0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC")
CAROL = Address("0x90F79bf6EB2c4f870365E785982E1f101E93b906")

PARAMS = DisputeParams(
    unbonding_delay=Seconds(3 * 86400), commit_period=Seconds(3600), reveal_period=Seconds(3600),
    penalty_window=Seconds(86400), quorum_bps=BasisPoints(2000), voter_slash_bps=BasisPoints(1000),
    min_bond=Amount(100_000_000), min_liveness=Seconds(3600), voter_reward_bps=BasisPoints(2500))


# --- commitments and phases -----------------------------------------------------------------


def test_vote_commitment_is_keccak_of_the_abi_encoding() -> None:
    salt = bytes(range(32))
    for vote in (True, False):
        expected = keccak(abi_encode(["bool", "bytes32", "address"], [vote, salt, ALICE]))
        assert compute_vote_commitment(vote, salt, ALICE) == expected
    # pinned vector (the contract's `vote_commitment` is checked against the rule in tests/contracts)
    assert compute_vote_commitment(True, b"\x00" * 32, ALICE).hex() == keccak(
        b"\x00" * 31 + b"\x01" + b"\x00" * 32 + bytes.fromhex("00" * 12 + ALICE[2:])).hex()
    with pytest.raises(MalformedMessage, match="salt must be 32 bytes"):
        compute_vote_commitment(True, b"short", ALICE)


def test_phases_and_snapshot() -> None:
    assert compute_snapshot_time(Timestamp(1000)) == 999
    assert [get_phase(Timestamp(10), Timestamp(20), Timestamp(t)) for t in (0, 9, 10, 19, 20, 99)] == [
        Phase.COMMIT, Phase.COMMIT, Phase.REVEAL, Phase.REVEAL, Phase.RESOLVED, Phase.RESOLVED]


def test_compute_reveal_checks_phase_and_commitment() -> None:
    salt = b"\x07" * 32
    ballot = Ballot(ALICE, Amount(5), compute_vote_commitment(False, salt, ALICE))
    assert compute_reveal(ballot, False, salt, Phase.REVEAL) == Reveal(ALICE, Amount(5), False)
    with pytest.raises(OutsideWindow, match="commit phase"):
        compute_reveal(ballot, False, salt, Phase.COMMIT)
    with pytest.raises(CommitmentMismatch):
        compute_reveal(ballot, True, salt, Phase.REVEAL)
    with pytest.raises(CommitmentMismatch):  # a commitment is bound to its voter
        compute_reveal(Ballot(BOB, Amount(5), ballot.commitment), False, salt, Phase.REVEAL)


# --- tally and verdict ----------------------------------------------------------------------


def test_tally_sums_each_side_and_refuses_a_double_reveal() -> None:
    reveals = [Reveal(ALICE, Amount(3), True), Reveal(BOB, Amount(4), False), Reveal(CAROL, Amount(2), True)]
    assert compute_tally(reveals, Amount(20)) == Tally(Amount(5), Amount(4), Amount(20))
    with pytest.raises(DuplicateAction, match="revealed twice"):
        compute_tally([*reveals, Reveal(Address(ALICE.lower()), Amount(1), False)], Amount(20))


@pytest.mark.parametrize(("wt", "wf", "total", "quorum", "verdict"), [
    (5, 4, 20, 2000, Verdict.TRUTHFUL),     # 9/20 revealed >= 20 %
    (4, 5, 20, 2000, Verdict.FALSE),
    (5, 5, 20, 2000, Verdict.NO_DECISION),  # tie
    (0, 0, 20, 0, Verdict.NO_DECISION),     # no reveals is a tie, even without a quorum
    (3, 0, 20, 2000, Verdict.NO_DECISION),  # 3/20 < 20 %
    (4, 0, 20, 2000, Verdict.TRUTHFUL),     # exactly the quorum
    (1, 0, 0, 10_000, Verdict.TRUTHFUL),    # quorum of nothing
])
def test_verdict(wt: int, wf: int, total: int, quorum: int, verdict: Verdict) -> None:
    assert compute_verdict(Tally(Amount(wt), Amount(wf), Amount(total)), BasisPoints(quorum)) is verdict


@pytest.mark.parametrize(("vote", "verdict", "at_fault"), [
    (None, Verdict.TRUTHFUL, True), (None, Verdict.NO_DECISION, True),
    (True, Verdict.TRUTHFUL, False), (False, Verdict.TRUTHFUL, True),
    (False, Verdict.FALSE, False), (True, Verdict.FALSE, True),
    (True, Verdict.NO_DECISION, False), (False, Verdict.NO_DECISION, False),
])
def test_who_is_at_fault(vote: bool | None, verdict: Verdict, at_fault: bool) -> None:
    assert is_voter_at_fault(vote, verdict) is at_fault


def test_voter_penalty_rounds_down() -> None:
    assert compute_voter_penalty(Amount(10_009), BasisPoints(1000)) == 1000
    assert compute_voter_penalty(Amount(9), BasisPoints(1000)) == 0


# --- rewards: exact to the unit -------------------------------------------------------------

reveals_st = st.lists(st.tuples(st.integers(1, 10**30), st.booleans()), min_size=1, max_size=12).map(
    lambda xs: [Reveal(Address(f"0x{i + 1:040x}"), Amount(w), v) for i, (w, v) in enumerate(xs)])


@given(pool=st.integers(0, 2**128 - 1), reveals=reveals_st)
def test_voter_rewards_add_up_to_the_pool_and_are_within_one_unit_of_pro_rata(
        pool: int, reveals: list[Reveal]) -> None:
    for verdict, side in ((Verdict.TRUTHFUL, True), (Verdict.FALSE, False)):
        winners = [r for r in reveals if r.vote is side]
        shares = compute_voter_rewards(Amount(pool), reveals, verdict)
        assert set(shares) == {r.voter for r in winners}
        if not winners:
            continue
        total = sum(r.weight for r in winners)
        assert sum(shares.values()) == pool
        for r in winners:
            assert abs(shares[r.voter] * total - pool * r.weight) < total  # |share - P·w/W| < 1
    assert compute_voter_rewards(Amount(pool), reveals, Verdict.NO_DECISION) == {}


def test_voter_rewards_worked_example() -> None:
    # P = 10, weights 1, 1, 1 in reveal order: floor(10/3)=3, floor(20/3)-3=3, 10-6=4
    reveals = [Reveal(a, Amount(1), True) for a in (ALICE, BOB, CAROL)]
    assert compute_voter_rewards(Amount(10), reveals, Verdict.TRUTHFUL) == {ALICE: 3, BOB: 3, CAROL: 4}


@given(bond=st.integers(1, 2**128 - 1), bps=st.integers(0, BPS), reveals=reveals_st,
       total_extra=st.integers(0, 10**30), quorum=st.integers(0, BPS))
def test_dispute_payouts_conserve_both_bonds(bond: int, bps: int, reveals: list[Reveal],
                                             total_extra: int, quorum: int) -> None:
    total = Amount(sum(r.weight for r in reveals) + total_extra)
    p = compute_dispute_payouts(Amount(bond), BasisPoints(bps), reveals, total, BasisPoints(quorum))
    assert p.total == 2 * bond  # nothing created, nothing left behind
    assert sum(p.voter_rewards.values()) == p.voter_pool
    if p.verdict is Verdict.NO_DECISION:
        assert (p.asserter, p.disputer, p.voter_pool, p.truthful) == (bond, bond, 0, False)
    else:
        winner = p.asserter if p.truthful else p.disputer
        assert winner >= bond  # the winner always gets at least its own bond back
        assert p.voter_pool == bond * bps // BPS


def test_undisputed_payouts() -> None:
    p = compute_undisputed_payouts(Amount(7))
    assert (p.truthful, p.verdict, p.asserter, p.disputer, p.voter_pool, p.total) == (True, None, 7, 0, 0, 7)


# --- assertions -----------------------------------------------------------------------------


def test_assertion_bounds_and_dispute_window() -> None:
    now = Timestamp(1_000)
    assert compute_assertion_expiry(PARAMS, PARAMS.min_bond, Seconds(3600), now) == 4_600
    with pytest.raises(InvalidAssertion, match="below minimum") as info:
        compute_assertion_expiry(PARAMS, Amount(PARAMS.min_bond - 1), Seconds(3600), now)
    assert info.value.field == "bond"
    with pytest.raises(InvalidAssertion, match="too large"):
        compute_assertion_expiry(PARAMS, Amount(2**128), Seconds(3600), now)
    with pytest.raises(InvalidAssertion, match="liveness") as info:
        compute_assertion_expiry(PARAMS, PARAMS.min_bond, Seconds(3599), now)
    assert info.value.field == "liveness"
    assert is_dispute_open(Timestamp(10), Timestamp(9)) and not is_dispute_open(Timestamp(10), Timestamp(10))
    process_dispute(Timestamp(10), None, Timestamp(9))
    with pytest.raises(DuplicateAction, match="already disputed"):
        process_dispute(Timestamp(10), BOB, Timestamp(9))
    with pytest.raises(OutsideWindow, match="liveness is over"):
        process_dispute(Timestamp(10), None, Timestamp(10))
    assert issubclass(OutsideWindow, DisputeError) and issubclass(DisputeError, ValueError)


# --- bonds ----------------------------------------------------------------------------------


@given(active=st.integers(0, 10**30), unbonding=st.integers(0, 10**30), amount=st.integers(0, 10**31),
       reward=st.integers(0, 10**31))
def test_slashing_never_mints_and_reward_never_exceeds_slashed(active: int, unbonding: int, amount: int,
                                                               reward: int) -> None:
    before = Stake(Amount(active), Amount(unbonding))
    out = compute_slash(before, Amount(amount), Amount(reward))
    assert out.slashed == min(amount, active + unbonding)
    assert out.reward <= out.slashed and out.reward <= reward
    assert out.reward + out.insurance == out.slashed
    assert out.stake_after.slashable + out.slashed == before.slashable
    assert out.stake_after.active == max(0, active - amount)  # active stake goes first


def test_slash_rejects_negative_amounts() -> None:
    with pytest.raises(DisputeError):
        compute_slash(Stake(Amount(1), Amount(0)), Amount(-1), Amount(0))


def test_stake_at_reference_and_withdrawability() -> None:
    checkpoints = [(Timestamp(10), Amount(5)), (Timestamp(10), Amount(7)), (Timestamp(20), Amount(1))]
    assert [compute_stake_at(checkpoints, Timestamp(t)) for t in (9, 10, 19, 20, 99)] == [0, 7, 7, 1, 1]
    assert is_withdrawable(Amount(1), Timestamp(10), Timestamp(10))
    assert not is_withdrawable(Amount(1), Timestamp(10), Timestamp(9))
    assert not is_withdrawable(Amount(0), Timestamp(10), Timestamp(11))


# --- parameters and the relations between them ----------------------------------------------


def test_params_relations_are_checked() -> None:
    fields = {f: getattr(PARAMS, f) for f in PARAMS.__slots__}
    with pytest.raises(ConfigError, match="unbonding_delay must cover") as info:
        DisputeParams(**{**fields, "unbonding_delay": Seconds(3600 + 3600 + 86400 - 1)})
    assert info.value.field == "unbonding_delay"
    DisputeParams(**{**fields, "unbonding_delay": Seconds(3600 + 3600 + 86400)})
    for name in ("commit_period", "min_bond", "penalty_window"):
        with pytest.raises(ConfigError, match=f"{name} must be positive"):
            DisputeParams(**{**fields, name: 0})
    for name in ("quorum_bps", "voter_slash_bps", "voter_reward_bps"):
        with pytest.raises(ConfigError, match=name):
            DisputeParams(**{**fields, name: BPS + 1})


def test_params_give_the_contract_constructor_arguments() -> None:
    assert PARAMS.bonds_args("0xT") == ("0xT", 3 * 86400)
    assert PARAMS.arbitration_args("0xB") == ("0xB", 3600, 3600, 86400, 2000, 1000)
    assert PARAMS.assertions_args("0xA") == ("0xA", 100_000_000, 3600, 2500)
