"""Parameter invariants of slashing and rewards, for the deployed defaults and over every parameter
combination the validation accepts (DESIGN §10, STYLE 5):

- slashing never mints: every split adds up to what was taken, the prover gets at most that;
- rewards never exceed what came in: voter shares add up to the pool, epoch shares to the epoch;
- unbonding outlasts every window in which stake is still slashable: an offender who asks to
  unbond at the very moment of its fault can still be slashed when the slash lands.
"""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from clearhouse.disputes import DisputeParams, Reveal, Verdict, compute_voter_rewards
from clearhouse.errors import ConfigError, InvalidCommittee
from clearhouse.incentives.rewards import compute_share
from clearhouse.incentives.slashing import (
    RULES,
    Fault,
    SlashingParams,
    Split,
    compute_slashable_windows,
    compute_split,
)
from clearhouse.oracle.config import HubParams
from clearhouse.params import PRESETS, compute_exit_bound, load_params
from clearhouse.sim.oracle_hub import DEFAULT_DISPUTES, DEFAULT_HUB
from clearhouse.sim.settlement_chain import REWARD_BPS, T_FORCE, WINDOW
from clearhouse.types import Address, Amount, BasisPoints, Seconds

HOUR, DAY = 3_600, 86_400


def deployed_defaults() -> SlashingParams:
    """The parameters the devnet contracts are deployed with (settlement_chain, oracle_hub,
    governance_chain's timelock ``T_force + W + MAX_PAUSE + 1 h``)."""
    return SlashingParams(BasisPoints(REWARD_BPS), Seconds(WINDOW), Seconds(T_FORCE),
                          Seconds(compute_exit_bound(Seconds(T_FORCE), Seconds(WINDOW)) + HOUR), Seconds(7 * DAY),
                          DEFAULT_HUB, DEFAULT_DISPUTES)


def preset_defaults(preset: str) -> SlashingParams:
    """A preset's windows and unbonding delay with the deployed oracle and dispute parameters."""
    p = load_params(preset)
    disputes = dataclasses.replace(DEFAULT_DISPUTES, unbonding_delay=p.unbonding_delay)
    return SlashingParams.from_params(p, BasisPoints(REWARD_BPS), DEFAULT_HUB, disputes)


def _every_split(p: SlashingParams, slashable: int, weight: int) -> list[Split]:
    return [compute_split(p, fault, Amount(slashable), Amount(weight)) for fault in Fault]


def _check_splits(p: SlashingParams, slashable: int, weight: int) -> None:
    for split in _every_split(p, slashable, weight):
        assert split.prover + split.voters + split.insurance + split.burned == split.slashed <= slashable
        assert split.prover <= split.slashed and split.voters <= split.slashed
        if split.fault is Fault.LOST_ASSERTION:
            assert split.slashed == slashable  # the whole losing bond is redistributed
        rule = RULES[split.fault]  # the rule set as data agrees with the functions
        for part in ("prover", "voters", "insurance", "burned"):
            if getattr(rule, part) == "0":
                assert getattr(split, part) == 0, (split.fault, part)


def _check_windows(p: SlashingParams) -> None:
    """An offender asks to unbond at its fault time ``t``; the withdrawal opens at ``t + delay``;
    the slash lands at the latest ``t + window``: it must find the stake."""
    delays = {"coordinator": p.settlement_unbonding_delay, "oracle": p.disputes.unbonding_delay,
              "arbitrator": p.disputes.unbonding_delay}
    t = 1_000_000
    for name, (role, window) in compute_slashable_windows(p).items():
        assert t + delays[role.name.lower()] > t + window, name
    # and the contracts' own constructor checks hold (Arbitration, OracleDisputes)
    d, hub = p.disputes, p.hub
    assert d.unbonding_delay >= d.commit_period + d.reveal_period + d.penalty_window
    assert d.unbonding_delay > hub.dispute_window + hub.dispute_liveness + d.commit_period + d.reveal_period
    assert p.timelock > p.force_withdrawal_delay + p.challenge_window


def test_the_deployed_defaults_hold_every_invariant() -> None:
    p = deployed_defaults()
    _check_windows(p)
    for slashable in (0, 1, 10**6, DEFAULT_HUB.slash_amount - 1, DEFAULT_HUB.slash_amount, 10**12 + 7):
        _check_splits(p, slashable, 3 * slashable + 1)


@pytest.mark.parametrize("preset", PRESETS)
def test_the_presets_hold_every_invariant(preset: str) -> None:
    p = preset_defaults(preset)
    _check_windows(p)
    _check_splits(p, 10**11 + 3, 10**11 + 3)


def test_splits_at_the_defaults_are_the_documented_numbers() -> None:
    """The devnet numbers written in docs/protocol.md."""
    p = deployed_defaults()
    bond = Amount(5_000 * 10**6)
    assert compute_split(p, Fault.BAD_BATCH, bond) == Split(Fault.BAD_BATCH, bond, Amount(bond // 2), Amount(0),
                                                             Amount(bond // 2))
    eq = compute_split(p, Fault.ORACLE_EQUIVOCATION, Amount(10_000 * 10**6))
    assert (eq.slashed, eq.prover, eq.insurance) == (5_000 * 10**6, 1_000 * 10**6, 4_000 * 10**6)
    lost = compute_split(p, Fault.LOST_ASSERTION, DEFAULT_HUB.dispute_bond)
    assert (lost.prover, lost.voters) == (750 * 10**6, 250 * 10**6)
    voter = compute_split(p, Fault.ARBITRATOR_NON_REVEAL, Amount(10**9), Amount(3 * 10**9))
    assert (voter.slashed, voter.insurance) == (3 * 10**8, 3 * 10**8)
    assert compute_split(p, Fault.ARBITRATOR_LOSING_SIDE, Amount(10**8), Amount(3 * 10**9)).slashed == 10**8


def test_a_split_that_would_mint_is_refused() -> None:
    with pytest.raises(Exception, match="add up"):
        Split(Fault.BAD_BATCH, Amount(10), Amount(6), Amount(0), Amount(5))


def test_validation_refuses_unbonding_shorter_than_a_slashable_window() -> None:
    """DisputeParams alone accepts an unbonding delay that covers arbitration but not a round
    dispute (which also waits out the dispute window and the assertion's liveness): the combined
    validation names it."""
    hub = dataclasses.replace(DEFAULT_HUB, dispute_window=Seconds(3 * DAY))
    short = dataclasses.replace(DEFAULT_DISPUTES, unbonding_delay=Seconds(3 * DAY))  # DisputeParams accepts it
    with pytest.raises(ConfigError, match="oracle dispute") as info:
        dataclasses.replace(deployed_defaults(), hub=hub, disputes=short)
    assert info.value.field == "disputes.unbonding_delay"
    with pytest.raises(ConfigError, match=r"challenge window|forced exit|timelock") as info:
        dataclasses.replace(deployed_defaults(), settlement_unbonding_delay=Seconds(WINDOW))
    assert info.value.field == "settlement_unbonding_delay"
    with pytest.raises(ConfigError) as info:
        load_params("devnet", unbonding_delay=1800)  # = the devnet timelock
    assert info.value.field == "unbonding_delay"
    with pytest.raises(ConfigError) as info:
        load_params("devnet", max_window_outflow=50_000 * 10**6 + 1)  # bond 100k < 2 x outflow
    assert info.value.field == "max_window_outflow"


# --- over the parameter space the validation accepts -----------------------------------------

seconds = st.integers(min_value=1, max_value=60 * DAY)
bps = st.integers(min_value=0, max_value=10_000)
amounts = st.integers(min_value=0, max_value=10**15)


FILTERED: list[str] = []
margins = st.integers(min_value=-60, max_value=30 * DAY)
"""Unbonding delays and timelocks are drawn around the longest window, so the boundary is explored."""


@st.composite
def slashing_params(draw: st.DrawFn) -> SlashingParams:
    """Any combination the three validations (HubParams, DisputeParams, SlashingParams) accept."""
    interval = draw(st.integers(min_value=1, max_value=600))
    window, t_force = draw(seconds), draw(seconds)
    timelock = max(1, compute_exit_bound(Seconds(t_force), Seconds(window)) + draw(margins))
    dispute_window, liveness, commit, reveal, penalty = (draw(seconds) for _ in range(5))
    longest_dispute = max(dispute_window + liveness + commit + reveal, commit + reveal + penalty)
    try:
        hub = HubParams(
            min_round_interval=Seconds(interval),
            max_twap_window=Seconds(draw(st.integers(min_value=1, max_value=255 * interval))),
            min_stake=Amount(draw(amounts)), slash_amount=Amount(draw(amounts)),
            prover_reward_bps=BasisPoints(draw(bps)), dispute_window=Seconds(dispute_window),
            dispute_bond=Amount(draw(amounts)), dispute_liveness=Seconds(liveness),
            history_rounds=2 ** draw(st.integers(min_value=24, max_value=32)))
        disputes = DisputeParams(
            unbonding_delay=Seconds(max(1, longest_dispute + draw(margins))),
            commit_period=Seconds(commit), reveal_period=Seconds(reveal),
            penalty_window=Seconds(penalty), quorum_bps=BasisPoints(draw(bps)),
            voter_slash_bps=BasisPoints(draw(bps)), min_bond=Amount(draw(amounts) + 1),
            min_liveness=Seconds(draw(seconds)), voter_reward_bps=BasisPoints(draw(bps)))
        return SlashingParams(BasisPoints(draw(bps)), Seconds(window), Seconds(t_force), Seconds(timelock),
                              Seconds(max(1, timelock + draw(margins))), hub, disputes)
    except (ConfigError, InvalidCommittee) as refused:
        FILTERED.append(refused.message)
        assume(False)
        raise AssertionError("unreachable") from None


@settings(suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow])
@given(slashing_params(), amounts, amounts)
def test_every_accepted_combination_holds_every_invariant(p: SlashingParams, slashable: int, weight: int) -> None:
    _check_windows(p)
    _check_splits(p, slashable, weight)


@given(st.lists(st.tuples(st.integers(min_value=1, max_value=10**20), st.booleans()), min_size=1, max_size=12),
       amounts)
def test_voter_rewards_never_exceed_the_pool(votes: list[tuple[int, bool]], pool: int) -> None:
    reveals = [Reveal(Address(f"0x{i + 1:040x}"), weight, vote) for i, (weight, vote) in enumerate(votes)]
    for verdict in (Verdict.TRUTHFUL, Verdict.FALSE):
        shares = compute_voter_rewards(Amount(pool), reveals, verdict)
        winners = any(vote is (verdict is Verdict.TRUTHFUL) for _, vote in votes)
        assert sum(shares.values()) == (pool if winners else 0)


@given(st.lists(st.integers(min_value=0, max_value=10**24), min_size=1, max_size=20), amounts)
def test_epoch_shares_never_exceed_the_epoch(stakes: list[int], rewards: int) -> None:
    total = sum(stakes)
    assert sum(compute_share(s, total, rewards) for s in stakes) <= rewards
