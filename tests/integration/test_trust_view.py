"""``/v1/views/trust``'s economic-security rows against the pure functions, on a real node.

A coordinator node with open positions, the settlement contracts with deposits in the vault, an
oracle committee and four arbitrators with unequal stake, one assertion under dispute. Every
number the view serves is recomputed here from the chain and the coordinator's positions with
:mod:`clearhouse.incentives.security` and must match to the base unit.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from oracle_system import honest_report

from clearhouse.api.server import ServerThread
from clearhouse.chain.inprocess import InProcessChain
from clearhouse.dashboard.trust import format_ratio
from clearhouse.disputes.bonds import Role
from clearhouse.incentives.security import (
    RoleSecurity,
    compute_arbitration_security,
    compute_bribery_threshold,
    compute_coordinator_security,
    compute_exposures,
    compute_oracle_profit,
    compute_oracle_security,
)
from clearhouse.messages import Side
from clearhouse.node.coordinator import Coordinator
from clearhouse.node.service import build_node_app
from clearhouse.params import compute_exit_bound
from clearhouse.sim import market_world as mw
from clearhouse.sim.oracle_hub import DEFAULT_FEED, OracleSystem, deploy_oracle_system
from clearhouse.sim.settlement_chain import SettlementSystem
from clearhouse.sim.settlement_chain import deploy as deploy_settlement
from clearhouse.store import open_store
from clearhouse.types import Amount, Seconds, Timestamp, format_units

PAIR = "ETH/USDC"
USDC = mw.USDC
ARBITRATOR_STAKES = (40_000, 30_000, 11_000, 10_000)


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    chain = InProcessChain()
    oracle = deploy_oracle_system(chain, 1, pair=PAIR)
    oracle.transmit(honest_report(oracle, 1, [3000 * USDC, 3004 * USDC, 3010 * USDC]))
    settlement = deploy_settlement(chain, users=3)
    for i, usdc in enumerate((10_000, 20_000, 5_000)):
        settlement.deposit(i, usdc)
    arbitrators = [chain.accounts[i] for i in (6, 7, 8, 9)]
    for who, stake in zip(arbitrators, ARBITRATOR_STAKES, strict=True):
        oracle.bond_arbitrator(who, stake * USDC)
    asserter, disputer = chain.accounts[3], chain.accounts[4]
    bond = 2 * int(oracle.assertions.call("min_bond"))
    oracle.fund(asserter.address, bond, oracle.assertions, asserter)
    aid = int(oracle.assertions.transact("assert_claim", b"\x22" * 32, bond,
                                         int(oracle.assertions.call("min_liveness")), sender=asserter)
              .events_named("ClaimAsserted")[0].args["assertion_id"])
    oracle.fund(disputer.address, bond, oracle.assertions, disputer)
    oracle.assertions.transact("dispute", aid, sender=disputer)

    store = open_store(f"sqlite:///{tmp_path_factory.mktemp('node') / Path('node.db')}")
    listings, _ = mw.build_listings()
    c = Coordinator(store, mw.DOMAIN, listings, mw.UNIT)
    w = mw.make_world(1)
    a, b, m = mw.ADDRESSES[:3]
    for account in (a, b, m):
        c.on_deposit(account, Amount(100_000 * USDC))
    now = Timestamp(mw.NOW)
    for who, side, price, size, series in ((a, Side.SELL, 180, 300, 0), (b, Side.BUY, 180, 200, 0),
                                           (b, Side.BUY, 150, 100, 1), (a, Side.SELL, 150, 100, 1)):
        order = mw.order(w, who, side, mw.px(price), size, series=series)
        c.on_order(order, mw.signed(order, who), now=now)
    deployment = {
        "settlement": {"token": settlement.token.address, "vault": settlement.vault.address,
                       "settlement": settlement.settlement.address, "bonds": settlement.bonds.address},
        "oracle": {"hub": oracle.hub.address, "bonds": oracle.bonds.address, "pair": PAIR,
                   "assertions": oracle.assertions.address,
                   "feed_id": "0x" + bytes(oracle.committee.feed_id).hex()}}
    server = ServerThread.start(build_node_app(c, chain, deployment=deployment))
    try:
        yield {"url": server.url, "coordinator": c, "oracle": oracle, "settlement": settlement,
               "arbitrators": arbitrators, "bond": bond}
    finally:
        server.stop()
        store.close()


def _units(value: int | None) -> str | None:
    return None if value is None else format_units(value, 6)


def _row(expected: RoleSecurity, exit_time: int) -> dict[str, Any]:
    return {"role": expected.role, "stake": _units(expected.stake), "stakers": expected.stakers,
            "nakamoto": expected.nakamoto, "hhi": expected.hhi,
            "cost_of_corruption": _units(expected.cost_of_corruption),
            "profit_from_corruption": _units(expected.profit_from_corruption),
            "ratio": format_ratio(expected.cost_of_corruption, expected.profit_from_corruption),
            "secure": expected.secure, "bribery_threshold": _units(expected.bribery_threshold),
            "time_to_exit_seconds": exit_time}


def test_the_trust_view_serves_the_pure_functions_numbers(node: dict[str, Any]) -> None:
    view = httpx.get(f"{node['url']}/v1/views/trust").json()
    s: SettlementSystem = node["settlement"]
    o: OracleSystem = node["oracle"]
    c: Coordinator = node["coordinator"]
    exit_time = compute_exit_bound(Seconds(int(s.settlement.call("t_force"))),
                                  Seconds(int(s.settlement.call("challenge_window"))))
    assert view["exit_time_seconds"] == exit_time and view["open_interest_known"] is True

    coordinator = s.coordinator.address
    vault = int(s.token.call("balanceOf", s.vault.address))
    assert vault == 35_000 * USDC
    expected_coordinator = compute_coordinator_security(
        {coordinator: int(s.bonds.call("stake_of", coordinator, 0))},
        Amount(int(s.bonds.call("slashable_of", coordinator, 0))), Amount(vault))

    exposures = compute_exposures(c.portfolios.positions, c.listings)
    assert {e.open_interest for e in exposures} == {200, 100}  # the 3000 call and the 3000 put
    profit = compute_oracle_profit(exposures, DEFAULT_FEED.min_price, DEFAULT_FEED.max_price)
    assert profit > 0
    members = {m: int(o.bonds.call("slashable_of", m, o.oracle_role)) for m in o.committee.members}
    expected_oracle = compute_oracle_security(f"oracle {PAIR}", members, 1, o.params.slash_amount, profit)

    arbitrators = {a.address: st * USDC for a, st in zip(node["arbitrators"], ARBITRATOR_STAKES, strict=True)}
    expected_arbitration = compute_arbitration_security(arbitrators, Amount(2 * node["bond"]))
    # 40k + 10k = 50k is the cheapest majority of 91k, cheaper than the Nakamoto set (40k + 30k)
    assert expected_arbitration.bribery_threshold == compute_bribery_threshold(arbitrators.values(), 5_000) \
        == 50_000 * USDC

    assert view["security"] == [_row(expected_coordinator, exit_time), _row(expected_oracle, exit_time),
                                _row(expected_arbitration, exit_time)]
    rows = {r["role"]: r for r in view["security"]}
    assert rows["coordinator"]["ratio"] == format_ratio(5_000 * USDC, 35_000 * USDC) == "0.14"
    assert rows["coordinator"]["secure"] is False  # the vault holds more than half the bond: shown as is
    assert rows[f"oracle {PAIR}"]["cost_of_corruption"] == format_units(2 * o.params.slash_amount, 6)


def test_the_view_follows_the_chain(node: dict[str, Any]) -> None:
    """A new arbitrator bonds: the view's stake, threshold and HHI move with it."""
    o: OracleSystem = node["oracle"]
    before = {r["role"]: r for r in httpx.get(f"{node['url']}/v1/views/trust").json()["security"]}
    o.bond_arbitrator(o.chain.accounts[2], 50_000 * USDC)
    after = {r["role"]: r for r in httpx.get(f"{node['url']}/v1/views/trust").json()["security"]}
    assert before["arbitrator"]["stake"] == "91000" and after["arbitrator"]["stake"] == "141000"
    assert after["arbitrator"]["bribery_threshold"] == "71000"  # 50k + 11k + 10k > 70.5k
    assert after["arbitrator"]["stakers"] == 5 and after["arbitrator"]["hhi"] != before["arbitrator"]["hhi"]
    assert int(o.bonds.call("stake_of", o.chain.accounts[2].address, int(Role.ARBITRATOR))) == 50_000 * USDC
