"""The demo's oracle scenario on the in-process chain: an equivocation slashed, a wrong round
disputed, arbitrated and skipped, and the expiry settled at the committee's TWAP — every figure of
the summary checked against the chain and the Python rules."""

from __future__ import annotations

import dataclasses

from clearhouse.chain import InProcessChain
from clearhouse.oracle import StoredRound, compute_feed_id, compute_twap
from clearhouse.sim.oracle_hub import DEFAULT_FEED, DEFAULT_HUB
from clearhouse.sim.oracle_scenario import run_oracle_scenario
from clearhouse.types import Price, RoundId, Timestamp


def test_the_oracle_scenario_settles_on_the_committees_twap() -> None:
    chain = InProcessChain()
    lines: list[str] = []
    summary = run_oracle_scenario(chain, lines.append)
    hub = chain.at("OracleHub", summary["oracle_hub"])
    disputes = chain.at("OracleDisputes", summary["oracle_disputes"])
    feed_id = compute_feed_id("ETH/USDC")
    rounds = []
    for i in range(int(hub.call("round_count", feed_id))):
        r, price, t, _version, optimistic, disputed, invalid, poster = hub.call("round_state", feed_id, i)
        rounds.append(StoredRound(RoundId(r), Price(price), Timestamp(t), optimistic, disputed, invalid,
                                  poster))

    # the summary is what the chain says
    assert summary["oracle_rounds"] == len(rounds) >= 10
    assert summary["oracle_rounds_invalid"] == sum(r.invalid for r in rounds) == 1
    assert summary["equivocations_slashed"] == 1
    assert summary["equivocation_slashed_amount"] == DEFAULT_HUB.slash_amount
    assert summary["disputes_arbitrated"] == 1
    assert summary["dispute_slashed_amount"] == 2 * DEFAULT_HUB.slash_amount
    assert summary["oracle_members_banned"] == 3  # the equivocator and the two signers of the wrong round
    bond = DEFAULT_HUB.dispute_bond
    assert summary["watcher_paid"] == 2 * bond - bond * 2_500 // 10_000 + 2 * (
        DEFAULT_HUB.slash_amount * DEFAULT_HUB.prover_reward_bps // 10_000)
    assert disputes.call("total_owed") == 0
    assert any("window under dispute" in line for line in lines)

    # the settlement price is the Python spec's TWAP over the chain's rounds, the wrong one skipped
    start, end = summary["settlement_window"]
    cap = Price(summary["settlement_cap"])
    now = Timestamp(chain.now())
    price = compute_twap(rounds, Timestamp(start), Timestamp(end), cap, now, DEFAULT_FEED, DEFAULT_HUB)
    assert summary["settlement_price"] == price <= cap
    with_wrong = [dataclasses.replace(r, invalid=False) for r in rounds]
    assert compute_twap(with_wrong, Timestamp(start), Timestamp(end), cap, now, DEFAULT_FEED,
                        DEFAULT_HUB) > price
