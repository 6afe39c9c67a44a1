"""The demo runs to completion on both backends and reports what happened on the chain."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from clearhouse.chain import RpcChain
from clearhouse.chain.anvil import Anvil
from clearhouse.cli import main
from clearhouse.sim.demo import run_demo
from clearhouse.sim.oracle_scenario import ORACLE_REWARDS


def _check(summary: dict[str, object]) -> None:
    assert summary["accounts"] == 4
    assert summary["messages_signed"] == 10
    assert summary["messages_verified_onchain"] == 9  # every type but the node-only SignIn
    assert summary["bad_signatures_refused"] == 5
    assert summary["merkle_proofs_verified_onchain"] == 2
    assert summary["batch_verified"] == 2000
    assert (summary["rfqs"], summary["rfq_fills"]) == (1, 1)
    assert summary["rfq_quotes"] >= 3 and summary["book_trades"] >= 3
    assert summary["oracle_rounds"] >= 10
    assert summary["equivocations_slashed"] == 1
    assert summary["disputes_arbitrated"] == 1
    assert isinstance(summary["settlement_price"], int) and summary["settlement_price"] > 0
    # settlement: 3 honest batches + 1 bad (reverted) + 1 after re-admission
    assert (summary["batches_posted"], summary["batches_finalized"]) == (5, 4)
    assert summary["bad_batches_caught"] == 1 and summary["coordinator_slashed"] is True
    assert summary["forced_withdrawals"] == 1 and summary["withdrawals"] == 3
    assert isinstance(summary["gas_per_trade"], int) and 10_000 < summary["gas_per_trade"] < 100_000
    # node: trades through the API over SQLite, then a restart that replays the log to the same state
    assert summary["node_replay_identical"] is True and summary["node_trades"] == 3
    assert isinstance(summary["node_actions_committed"], int) and summary["node_actions_committed"] >= 9
    # governance: a risk parameter changed by a discussed, voted, asserted and timelocked proposal
    assert summary["governance_proposal"] == "#1 max_positions 8 → 6"
    assert summary["governance_posts"] == 3 and summary["governance_voters"] == 4
    assert summary["governance_tally_usdc_stake"] == {"for": 7_000, "against": 2_000, "abstain": 1_000}
    assert summary["governance_passed"] is True and summary["governance_wrong_tally_overturned"] is True
    assert summary["governance_status"] == "executed" and summary["governance_parameter_version"] == 2
    assert summary["governance_applies_from_batch"] == 3
    # the change reaches settlement: batches before the boundary under version 1, the one after under
    # version 2 (its verifier reads max_positions 6), and a stale version-1 batch 3 refused on-chain
    assert summary["governance_applies"] == "max_positions = 6 applies from batch 3, version 2"
    assert (summary["governance_batches_before"], summary["governance_batches_after"]) == ([1, 2], [3])
    assert summary["governance_stale_batch_refused"] == "settlement: wrong parameter version"
    timelock, exit_time = summary["governance_timelock_seconds"], summary["governance_exit_time_seconds"]
    # T_force + W + pause at their largest governed values (3 d + 12 h + 3 d)
    assert exit_time == 6 * 86_400 + 12 * 3_600 and isinstance(timelock, int) and timelock > exit_time
    pnl = summary["pnl_at_settlement"]
    assert isinstance(pnl, dict) and len(pnl) == 6 and sum(pnl.values()) == 0  # no fees: zero-sum
    # the closing table (sim.participants): rewards, slashes and reputation, read from the run
    rows = {p["name"]: p for p in summary["participants"]}  # type: ignore[attr-defined]
    assert {r["pnl"] for r in rows.values() if r["role"] in ("trader", "maker")} >= set(pnl.values())
    members = [r for r in rows.values() if r["role"] == "oracle member"]
    assert len(members) == 4 and sum(r["slashed"] > 0 for r in members) == 3  # equivocator + 2 colluders
    # oracle rewards by work (OracleRewards, decision 0008): each member's share of the epoch's 1,000 tUSD
    # is its credited observations over everyone's, rounded down; a banned (slashed) member gets nothing
    total_work = sum(r["work"] for r in members)
    assert total_work >= 2 * summary["oracle_rounds"] and all(r["work"] > 0 for r in members)
    for r in members:
        assert r["rewards"] == (0 if r["slashed"] else r["work"] * ORACLE_REWARDS // total_work)
    assert any(r["rewards"] > 0 for r in members)
    assert rows["coordinator"]["slashed"] == 5_000 * 10**6 and rows["settlement watcher"]["earned"] > 0
    assert rows["oracle watcher"]["earned"] > 0 and rows["coordinator"]["reputation_ppm"] < 1_000_000
    assert all(r["rewards"] > 0 and r["earned"] > 0 for r in rows.values() if r["role"] == "arbitrator")
    honest = min(r["reputation_ppm"] for r in members if r["slashed"] == 0)
    assert all(r["reputation_ppm"] < honest for r in members if r["earned"] < 0)  # the defender of the wrong round


def _check_report(out: Path) -> None:
    page = (out / "report.html").read_text()
    assert page.count("<svg") == 4  # price path, gas per trade, P&L, timeline
    assert "Rewards, slashes and reputation per participant" in page
    assert "settlement price" in page and "USDC" in page
    assert "max_positions = 6 applies from batch 3, version 2" in page


def test_demo_through_the_cli_on_the_inprocess_chain(tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--out", str(tmp_path)]) == 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    _check(summary)
    _check_report(tmp_path)
    assert summary["chain"]["backend"] == "inprocess"
    assert "summary written" in capsys.readouterr().out


def test_demo_on_anvil(anvil: Anvil, rpc_chain: RpcChain, tmp_path: Path) -> None:
    # rpc_chain rolls the session's anvil back afterwards
    summary = run_demo(chain_target=anvil.url, out_dir=tmp_path)
    _check(summary)
    assert summary["chain"]["target"] == anvil.url


def test_demo_refuses_an_unknown_chain(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--chain", "ftp://nowhere", "--out", str(tmp_path)]) == 1
    assert "unknown chain" in capsys.readouterr().err
    assert not (tmp_path / "summary.json").exists()
