"""``clearhouse reputation recompute`` against a served node on the in-process chain.

The chain holds two finalised batches, a forged third one a watcher proves wrong, and oracle rounds
in which one member never observes and one observes off the median; the node's coordinator routes
RFQs to a maker that fades and one that fills. The scores rebuilt from the chain and the node's
published log equal the node's ``/v1/reputation`` exactly, a node that misreports its scores is
caught entry by entry, and the committee chosen by stake × reputation drops the silent member.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from oracle_system import honest_report
from reputation_support import FADER, GOOD, play_maker_market

from clearhouse import cli
from clearhouse.api.app import create_app
from clearhouse.api.server import ServerThread
from clearhouse.chain.inprocess import InProcessChain
from clearhouse.chain.rpc import RpcChain
from clearhouse.dashboard import ChainSource, mount_dashboard
from clearhouse.dashboard.views import load_contracts
from clearhouse.errors import InsufficientCandidates, MalformedEvent
from clearhouse.incentives.reputation import (
    BatchOutcome,
    ChallengeOutcome,
    Fade,
    OracleRound,
    compute_new_oracle_score,
    compute_reputation,
)
from clearhouse.node.coordinator import Coordinator
from clearhouse.node.reputation import (
    compute_differences,
    format_reputation_table,
    get_chain_events,
    get_next_committee,
    get_published_events,
    recompute,
)
from clearhouse.node.service import build_node_app
from clearhouse.node.watcher import Watcher
from clearhouse.settlement.operations import TickOp, TradeOp
from clearhouse.sim import market_world as mw
from clearhouse.sim.oracle_hub import OracleSystem, deploy_oracle_system
from clearhouse.sim.settlement_chain import SettlementSystem, forge
from clearhouse.sim.settlement_chain import deploy as deploy_settlement
from clearhouse.sim.settlement_world import NOW, deposit, make_ctx, px, trade, withdrawal
from clearhouse.store import open_store
from clearhouse.types import Address, Price, Timestamp

USDC = 10**6
PAIR = "ETH/USDC"


@dataclass
class World:
    chain: InProcessChain
    settlement: SettlementSystem
    oracle: OracleSystem
    watcher: Watcher
    coordinator: Coordinator
    deployment: dict[str, Any]
    url: str


def _chain_history(chain: InProcessChain) -> tuple[SettlementSystem, OracleSystem, Watcher]:
    s = deploy_settlement(chain, users=3)
    for i, usdc in enumerate((10_000, 10_000, 5_000)):
        s.deposit(i, usdc)
    watcher = Watcher(chain, s.settlement, s.vault, s.verifier, make_ctx, chain.accounts[5])
    s.post([deposit(0, 10_000), deposit(1, 10_000), deposit(2, 5_000), TickOp(Timestamp(NOW))])
    s.post([trade(1, 2, 100, px(50)), withdrawal(0, 5)])
    s.finalize_all()
    s.deposit(2, 1)  # left waiting two uptime slots: the coordinator's uptime falls (chain-derived)
    chain.time_travel(2 * 3_600)
    honest = s.build([trade(0, 1, 10, px(40)), withdrawal(1, 1, nonce=9001)])
    signed = honest.result.operations[0]
    assert isinstance(signed, TradeOp)
    s.post_raw(forge(honest, [replace(signed, price=Price(px(41))), *honest.result.operations[1:]]))
    [challenge] = watcher.on_tick()
    assert challenge.number == 3 and challenge.succeeded
    oracle = deploy_oracle_system(chain, 1, pair=PAIR)
    for round_id in range(1, 5):
        # member 3 never observes; member 2 is 0.1 % above the others
        prices = [3000 * USDC + round_id, 3000 * USDC + round_id, 3003 * USDC + round_id]
        oracle.transmit(honest_report(oracle, round_id, prices))
        chain.time_travel(int(oracle.params.min_round_interval))
    return s, oracle, watcher


def _deployment_oracle(oracle: OracleSystem) -> dict[str, Any]:
    return {"hub": oracle.hub.address, "bonds": oracle.bonds.address, "assertions": oracle.assertions.address,
            "pair": PAIR, "feed_id": "0x" + bytes(oracle.committee.feed_id).hex()}


def _deployment(s: SettlementSystem, oracle: OracleSystem) -> dict[str, Any]:
    return {"settlement": {"settlement": s.settlement.address, "vault": s.vault.address, "bonds": s.bonds.address,
                           "token": s.token.address},
            "oracle": _deployment_oracle(oracle)}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    chain = InProcessChain()
    s, oracle, watcher = _chain_history(chain)
    store = open_store(f"sqlite:///{tmp_path_factory.mktemp('node') / 'node.db'}")
    listings, _ = mw.build_listings()
    coordinator = Coordinator(store, mw.DOMAIN, listings, mw.UNIT, chain=chain)
    play_maker_market(coordinator, int(chain.now()) - 3_600)
    deployment = _deployment(s, oracle)
    server = ServerThread.start(build_node_app(coordinator, chain, deployment=deployment))
    try:
        yield World(chain, s, oracle, watcher, coordinator, deployment, server.url)
    finally:
        server.stop()
        store.close()


def _recompute(world: World, url: str | None = None) -> tuple[dict[str, Any], dict[str, Any], list[str]]:
    contracts = load_contracts(world.chain, world.deployment)
    return recompute(world.chain, contracts.settlement, contracts.oracle_hub, url or world.url)


def test_recomputation_matches_the_node(world: World) -> None:
    ours, theirs, differences = _recompute(world)
    assert differences == [] and ours == {k: theirs[k] for k in ours}
    assert theirs["block"] == world.chain.block_number() and theirs["events"] == len(world.coordinator.reputation_log)
    scores = theirs["scores"]
    good, fader = GOOD, FADER
    # the fader faded every quote of its own it was routed; the filler filled all four
    assert scores["makers"][good]["fills"] == "4" and scores["makers"][good]["fade_rate_ppm"] == 1_000_000 // 24
    assert scores["makers"][fader]["fades"] == scores["makers"][fader]["quotes"] != "0"
    assert scores["makers"][fader]["score_ppm"] < scores["makers"][good]["score_ppm"]
    coordinator = world.settlement.coordinator.address
    assert scores["coordinators"][coordinator]["finalised"] == "2" and scores["coordinators"][coordinator]["reverted"] == "1"
    # uptime slots from Settlement and Vault (recomputed too): down while the last deposit waited
    assert int(scores["coordinators"][coordinator]["down"]) >= 1 and scores["coordinators"][coordinator]["uptime_ppm"] < 10**6
    assert scores["watchers"][world.watcher.account.address]["valid"] == "1"
    members = list(world.oracle.committee.members)
    oracles = scores["oracles"]
    assert set(oracles) == set(members)
    assert oracles[members[3]]["missed"] == "4" and oracles[members[0]]["missed"] == "0"
    assert oracles[members[2]]["deviation_ppm"] > oracles[members[0]]["deviation_ppm"] == 0
    assert oracles[members[0]]["score_ppm"] > oracles[members[2]]["score_ppm"] > oracles[members[3]]["score_ppm"]
    table = format_reputation_table(ours["scores"])
    assert good in table and members[3] in table and "coordinators (1)" in table


def test_chain_events_are_what_the_contracts_hold(world: World) -> None:
    s, oracle = world.settlement, world.oracle
    events = get_chain_events(world.chain, s.settlement, oracle.hub)
    batches = [e for e in events if isinstance(e, BatchOutcome)]
    assert [(e.number, e.finalised) for e in batches] == [(1, True), (2, True), (3, False)]
    assert all(e.time == NOW for e in batches)  # the batch headers' timestamp
    assert [e for e in events if isinstance(e, ChallengeOutcome)] == [
        ChallengeOutcome(Address(world.watcher.account.address), True, Timestamp(NOW))]
    rounds = [e for e in events if isinstance(e, OracleRound)]
    assert len(rounds) == 16 and {e.median for e in rounds if e.round == 2} == {3000 * USDC + 2}
    assert sorted((e.price for e in rounds if e.round == 2), key=lambda p: p or 0) == [
        None, 3000 * USDC + 2, 3000 * USDC + 2, 3003 * USDC + 2]
    # reading up to an earlier block leaves out what came after it
    assert get_chain_events(world.chain, s.settlement, None, 1) == []


def test_a_node_that_misreports_is_caught(world: World) -> None:
    """The same node, but its scores leave out the fades it publishes."""
    c = world.coordinator
    contracts = load_contracts(world.chain, world.deployment)
    app = create_app(c)  # the published log, from the same coordinator
    mount_dashboard(app, ChainSource(world.chain, contracts, reputation_log=lambda: (
        [e for e in c.reputation_log if not isinstance(e, Fade)], len(c.reputation_log))))
    server = ServerThread.start(app)
    try:
        _, _, differences = _recompute(world, server.url)
    finally:
        server.stop()
    fader = FADER
    assert differences and all(d.startswith(f"makers/{fader}/") for d in differences)
    assert any(d.startswith(f"makers/{fader}/fades:") for d in differences)


def test_differences_name_every_entry() -> None:
    a = {"makers": {"0xA": {"score_ppm": 1, "paused": False}}, "oracles": {"0xB": {"score_ppm": 5}}}
    b = {"makers": {"0xA": {"score_ppm": 2, "paused": False}}, "watchers": {"0xC": {"score_ppm": 5}}}
    assert compute_differences(a, b) == [
        "makers/0xA/score_ppm: recomputed 1, node 2", "oracles/0xB: missing at the node",
        "watchers/0xC: missing here"]
    assert compute_differences(a, a) == []


def test_a_truncated_log_is_refused(world: World) -> None:
    with httpx.Client(base_url=world.url) as client, pytest.raises(MalformedEvent):
        get_published_events(client, len(world.coordinator.reputation_log) + 1)


def test_events_endpoint_pages(world: World) -> None:
    log = world.coordinator.reputation_log
    page = httpx.get(f"{world.url}/v1/events", params={"after": 2, "limit": 3}).json()
    assert [e["seq"] for e in page["events"]] == [3, 4, 5] and page["last"] == len(log)
    assert httpx.get(f"{world.url}/v1/events", params={"limit": 0}).status_code == 422
    assert httpx.get(f"{world.url}/v1/events", params={"after": len(log)}).json()["events"] == []


def test_committee_by_stake_and_reputation(world: World) -> None:
    """The next committee from chain data: equal stakes, so reputation decides; a newly bonded
    candidate (no rounds yet) outranks the member that never observes, and the hub accepts it."""
    oracle, chain = world.oracle, world.chain
    members = [Address(m) for m in oracle.committee.members]
    newcomer = chain.accounts[7]
    snapshot = chain.snapshot()
    try:
        oracle.fund(newcomer.address, int(oracle.stake), oracle.bonds, newcomer)
        oracle.bonds.transact("bond", oracle.oracle_role, int(oracle.stake), sender=newcomer)
        seated = get_next_committee(chain, oracle.hub, oracle.bonds, [*members, Address(newcomer.address)], 1)
        rep = compute_reputation(get_chain_events(chain, None, oracle.hub), chain.now())
        stakes = {m: int(oracle.bonds.call("stake_of", m, oracle.oracle_role)) for m in members}
        assert len(set(stakes.values())) == 1
        assert set(seated) == {*members[:3], Address(newcomer.address)} and seated[-1] == members[2]
        assert rep.oracles[members[3]].score_ppm < rep.oracles[members[2]].score_ppm < compute_new_oracle_score()
        # the node serves it with the governance committee actions that seat it (remove, then add)
        [served] = httpx.get(f"{world.url}/v1/reputation").json()["next_committee"]
        assert served["pair"] == PAIR and served["f"] == 1 and served["members"] == members
        assert served["next"] == list(seated)
        assert served["actions"] == [{"kind": "committee", "target": members[3], "value": 0},
                                     {"kind": "committee", "target": newcomer.address, "value": 1}]
        oracle.hub.transact("set_committee", oracle.committee.feed_id, list(seated), 1)
        assert [Address(m) for m in oracle.hub.call("members", oracle.committee.feed_id)] == list(seated)
        # too few eligible candidates for 3f+1 seats
        with pytest.raises(InsufficientCandidates):
            get_next_committee(chain, oracle.hub, oracle.bonds, members[:3], 1)
    finally:
        chain.revert_to(snapshot)


def test_the_cli_needs_a_reachable_node(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "deployment.json"
    path.write_text(json.dumps({"chain": "inprocess"}))
    assert cli.main(["reputation", "recompute", "--deployment", str(path), "--node", "http://127.0.0.1:9"]) == 1
    assert "cannot be reached" in capsys.readouterr().err


def test_the_cli_recomputes_over_json_rpc(rpc_chain: RpcChain, tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                          ) -> None:
    """The command as an operator runs it: anvil, a deployment.json, a served node; exit 0 when the
    node's scores are reproduced, 2 with the differing entries when they are not."""
    oracle = deploy_oracle_system(rpc_chain, 1, pair=PAIR)
    for round_id in (1, 2):
        oracle.transmit(honest_report(oracle, round_id, [3000 * USDC, 3001 * USDC, 3003 * USDC]))
        rpc_chain.time_travel(int(oracle.params.min_round_interval))
    deployment = {"chain": rpc_chain.url, "oracle": _deployment_oracle(oracle)}
    path = tmp_path / "deployment.json"
    path.write_text(json.dumps(deployment))
    store = open_store(f"sqlite:///{tmp_path / 'node.db'}")
    listings, _ = mw.build_listings()
    c = Coordinator(store, mw.DOMAIN, listings, mw.UNIT, chain=rpc_chain)
    play_maker_market(c, int(rpc_chain.now()) - 3_600)
    honest = ServerThread.start(build_node_app(c, rpc_chain, deployment=deployment))
    lying_app = create_app(c)
    mount_dashboard(lying_app, ChainSource(rpc_chain, load_contracts(rpc_chain, deployment), reputation_log=lambda: (
        [e for e in c.reputation_log if not isinstance(e, Fade)], len(c.reputation_log))))
    lying = ServerThread.start(lying_app)
    try:
        args = ["reputation", "recompute", "--deployment", str(path)]
        assert cli.main([*args, "--node", honest.url]) == 0
        out = capsys.readouterr().out
        assert "matches the node's /v1/reputation" in out and "oracles (4)" in out
        assert cli.main([*args, "--node", honest.url, "--json"]) == 0
        report = json.loads(capsys.readouterr().out)
        assert report["matches"] and report["scores"]["makers"][FADER]["fades"] != "0"
        assert cli.main([*args, "--node", lying.url]) == 2
        out = capsys.readouterr().out
        assert "DIFFERS" in out and f"makers/{FADER}/fades" in out
    finally:
        honest.stop()
        lying.stop()
        store.close()
