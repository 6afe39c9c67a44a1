"""Oracle members as HTTP peers: the leader of each attempt gathers observations over the network,
collects report signatures, and transmits to the real OracleHub on anvil; up to ``f`` silent
members are tolerated, a silent leader only costs one attempt, and a member never signs a report
that misstates its observation."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from fastapi import FastAPI

from clearhouse.api.server import ServerThread
from clearhouse.chain.rpc import RpcChain
from clearhouse.incentives.oracle_rewards import compute_work_share
from clearhouse.node.oracle import OracleMember, encode_report
from clearhouse.oracle import compute_lower_median
from clearhouse.oracle.committee import CommitteeSetup, Member
from clearhouse.oracle.config import get_leader
from clearhouse.oracle.report import compute_report, select_observations
from clearhouse.oracle.sources import ConstantSource
from clearhouse.sim.oracle_hub import OracleSystem, deploy_oracle_rewards, deploy_oracle_system
from clearhouse.types import BasisPoints, Price, RoundId, Seconds, Timestamp

USDC = 10**6
PRICES = [3000 * USDC, 3004 * USDC, 2998 * USDC, 3001 * USDC]
TIMEOUT = 20


def _members(system: OracleSystem) -> list[OracleMember]:
    out = []
    for key, price in zip(system.keys, PRICES, strict=True):
        setup = CommitteeSetup(system.domain, system.committee, system.feed, system.params,
                               (Member(key, ConstantSource(Price(price))),), BasisPoints(50), Seconds(60))
        out.append(OracleMember(system.chain, system.hub, setup, {}, round_timeout=TIMEOUT))
    return out


@pytest.fixture
def network(rpc_chain: RpcChain) -> Iterator[tuple[OracleSystem, list[OracleMember], list[str]]]:
    system = deploy_oracle_system(rpc_chain, 1)
    members = _members(system)
    servers = []
    try:
        for m in members[:3]:  # the fourth member is silent: no server
            app = FastAPI()
            app.include_router(m.router(rpc_chain.now))
            servers.append(ServerThread.start(app))
        urls = [s.url for s in servers] + ["http://127.0.0.1:9"]
        peers = {m.me.address: url for m, url in zip(members, urls, strict=True)}
        for m in members:
            m.peers = peers
        yield system, members, urls
    finally:
        for s in servers:
            s.stop()


def _tick_all(members: list[OracleMember], now: int) -> list[str]:
    return [tx for m in members if (tx := m.on_tick(Timestamp(now))) is not None]


def test_rounds_over_http_with_a_silent_member(network: tuple[OracleSystem, list[OracleMember], list[str]]) -> None:
    system, members, _ = network
    chain = system.chain
    # Start where the clock puts the first attempt on round 1 (leader members[1]): with a 60 s
    # heartbeat and 20 s attempts, each next round's leader is the previous one's predecessor,
    # and a silent leader hands back to the same member, so which members lead depends on the first.
    cycle = TIMEOUT * len(members)
    chain.time_travel((cycle - chain.now() % cycle) % cycle + 1)
    stored = 0
    for _ in range(12):
        now = chain.now()
        if _tick_all(members[:3], now):
            stored += 1
            last = members[0].get_last_round()
            assert last is not None
            # the three live members answered: the report's price is their lower median
            assert last.price == compute_lower_median(PRICES[:3])
            # to just past the heartbeat from the round's own timestamp (not 61 s from now: under
            # load the round itself takes seconds of anvil's clock, which would shift the attempt)
            chain.time_travel(max(0, last.timestamp + 61 - chain.now()))
        else:
            chain.time_travel(TIMEOUT)  # the attempt's leader is the silent member: move on
        if stored == 3:
            break
    assert stored == 3
    leaders = {get_leader(system.committee, RoundId(int(system.hub.call("round_state", system.committee.feed_id, i)[0])))
               for i in range(int(system.hub.call("round_count", system.committee.feed_id)))}
    assert members[3].me.address not in leaders and len(leaders) >= 2


def test_a_member_signs_one_observation_per_round_and_refuses_a_misstated_report(
        network: tuple[OracleSystem, list[OracleMember], list[str]]) -> None:
    system, members, urls = network
    round_id = 7
    first = httpx.get(f"{urls[1]}/v1/oracle/observation/{round_id}").json()
    system.chain.time_travel(5)
    assert httpx.get(f"{urls[1]}/v1/oracle/observation/{round_id}").json() == first
    # a leader report that carries member 1 with another price is refused, and nothing is signed
    observations = [members[i].observe(RoundId(round_id), Timestamp(system.chain.now())) for i in range(3)]
    report = compute_report(system.committee, RoundId(round_id), select_observations(system.committee, observations))
    body = encode_report(report)
    for o in body["observations"]:
        if o["member"] == members[1].me.address:
            o["price"] = str(int(o["price"]) + 1)
    response = httpx.post(f"{urls[1]}/v1/oracle/report", json=body)
    assert response.status_code == 422 and response.json()["field"] == "observations"
    malformed = httpx.post(f"{urls[1]}/v1/oracle/report", json={"round": "x"})
    assert malformed.status_code == 400 and malformed.json()["code"] == "malformed_report"
    stale = httpx.get(f"{urls[1]}/v1/oracle/observation/0")
    assert stale.status_code == 400 and stale.json() == {"code": "invalid_round", "field": "round",
                                                          "message": "bad round"}


def test_rounds_through_the_rewards_relay_pay_the_members_that_observed(
        network: tuple[OracleSystem, list[OracleMember], list[str]]) -> None:
    """With an ``OracleRewards`` relay the leader transmits through it: the hub stores the round and
    each member whose observation the report carries earns one unit of work; the silent member earns
    none, and the epoch's fees are shared by work to the base unit."""
    system, members, _ = network
    relay = deploy_oracle_rewards(system)
    for m in members:
        m.relay = relay
    chain = system.chain
    stored = 0
    for _ in range(12):
        if _tick_all(members[:3], chain.now()):
            stored += 1
            chain.time_travel(61)
        else:
            chain.time_travel(TIMEOUT)
        if stored == 2:
            break
    assert stored == 2 and members[0].get_last_round() is not None
    work = [int(relay.call("work", 0, m)) for m in system.committee.members]
    assert work == [2, 2, 2, 0] and int(relay.call("total_work", 0)) == 6
    funder = chain.accounts[1]
    system.fund(funder.address, 1_000, relay, funder)
    relay.transact("notify", 1_000, sender=funder)
    chain.time_travel(int(relay.call("EPOCH")) + int(relay.call("CLAIM_DELAY")))
    owed = [int(relay.call("claimable", m)[0]) for m in system.committee.members]
    assert owed == [compute_work_share(w, 6, 1_000) for w in work] == [333, 333, 333, 0]
