"""The incentive simulation in a bounded form: a few seeded episodes per scenario.

Every episode's ledger must balance to the base unit (nothing minted, slashes split exactly,
rewards paid within what was credited); honesty must be the best response for every deviation
the rules deter, and the measured gaps (``KNOWN_GAPS``) must still be gaps, so a rule change that
closes one fails here until the list is updated. The on-chain check replays an equivocation, a
griefing dispute and a day of oracle rewards by work on the real contracts and compares the
amounts with the model.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from clearhouse.disputes.bonds import Stake
from clearhouse.incentives.slashing import Fault, compute_oracle_fault_split
from clearhouse.sim.incentives import (
    KNOWN_GAPS,
    SCENARIOS,
    Economy,
    Ledger,
    check_on_chain,
    compute_slashing_params,
    main,
    run_episode,
    run_scenario,
)
from clearhouse.types import Amount

USDC = 10**6
EPISODES = 3
FAST = Economy(days=8)
"""Shorter episodes than the campaign's: the deterrents already show after a week."""


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.name)
def test_scenario_best_response_and_exact_accounting(scenario: object) -> None:
    from clearhouse.sim.incentives import Scenario
    assert isinstance(scenario, Scenario)
    result = run_scenario(scenario, EPISODES, seed=7, econ=FAST)  # every episode's ledger is checked
    if scenario.name in KNOWN_GAPS:
        assert not result.best_response, f"{scenario.name} is deterred now: update KNOWN_GAPS and the docs"
    else:
        assert result.best_response, result.to_json()
        assert result.margin >= USDC and result.honest_not_worse == EPISODES
    for seed in range(2):
        for deviate in (False, True):
            balances, _ = run_episode(scenario, seed, deviate, FAST)
            assert sum(balances.values()) == 0


def test_episodes_are_reproducible() -> None:
    first = run_episode(SCENARIOS[0], 11, True, FAST)
    assert run_episode(SCENARIOS[0], 11, True, FAST) == first
    assert run_episode(SCENARIOS[0], 12, True, FAST) != first


def test_the_fader_loses_reputation_and_flow() -> None:
    _, honest = run_episode(SCENARIOS[0], 3, False, FAST)
    _, fading = run_episode(SCENARIOS[0], 3, True, FAST)
    assert honest["deviator_fades"] == 0 and fading["deviator_fades"] > 0
    assert fading["deviator_score_ppm"] < honest["deviator_score_ppm"]
    assert fading["deviator_fills"] < honest["deviator_fills"]


def test_ledger_refuses_to_mint() -> None:
    ledger = Ledger()
    ledger.transfer("a", "b", 5)
    ledger.check()
    ledger.balances["b"] += 1
    with pytest.raises(AssertionError, match="does not balance"):
        ledger.check()
    ledger = Ledger()
    ledger.credited, ledger.paid = 10, 11
    with pytest.raises(AssertionError, match="exceed"):
        ledger.check()
    ledger = Ledger()
    split = compute_oracle_fault_split(compute_slashing_params(Economy()), Fault.ORACLE_EQUIVOCATION,
                                       Amount(10_000 * USDC))
    ledger.apply_slash("member", split, "prover")
    ledger.check()
    assert ledger.balances["member"] == -5_000 * USDC and ledger.balances["prover"] == 1_000 * USDC
    ledger.balances["insurance"] -= 1
    ledger.balances["prover"] += 1
    with pytest.raises(AssertionError, match="insurance"):
        ledger.check()


def test_the_real_contracts_slash_and_keep_bonds_as_modelled() -> None:
    measured = check_on_chain()
    eq, grief = measured["equivocation"], measured["griefing_dispute"]
    assert eq["matches_model"] and eq["slashed"] == 5_000 * USDC and eq["reward"] == 1_000 * USDC
    assert grief["matches_model"] and grief["round_stands"] and grief["griefer_lost"] == grief["bond"]
    assert Stake(Amount(1), Amount(0)).slashable == 1
    work = measured["oracle_rewards"]
    assert work["matches_model"] and work["work"] == [4, 4, 2, 2]  # member 3 skipped half, member 2 trimmed
    assert work["paid"][3] < work["paid"][0] and 0 <= work["kept"] < sum(work["work"])


def test_oracle_rewards_by_work_close_the_lazy_member_gap() -> None:
    """Before decision 0008 (rewards by stake) laziness paid; by work it costs the deviator."""
    lazy = next(s for s in SCENARIOS if s.name == "lazy oracle member")
    before = run_scenario(lazy, EPISODES, seed=7, econ=replace(FAST, oracle_rewards="stake"))
    after = run_scenario(lazy, EPISODES, seed=7, econ=FAST)
    assert not before.best_response and before.margin < 0
    assert after.best_response and after.margin > 100 * USDC
    assert sum(after.deviant) < sum(before.deviant)


def test_the_command_writes_the_summary(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--episodes", "2", "--out", str(tmp_path)]) == 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert [s["name"] for s in summary["scenarios"]] == [s.name for s in SCENARIOS]
    assert sorted(summary["not_deterred"]) == sorted(KNOWN_GAPS)
    assert summary["on_chain"]["equivocation"]["matches_model"] is True
    assert "who gained" in capsys.readouterr().out


@pytest.mark.slow
def test_long_campaign() -> None:
    for scenario in SCENARIOS:
        result = run_scenario(scenario, 100, seed=1)
        assert result.best_response is (scenario.name not in KNOWN_GAPS), result.to_json()
