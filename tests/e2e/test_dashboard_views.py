"""The dashboard's chain views, in headless Chromium against a real server and a real chain.

A committee posts rounds, an assertion is made, a coordinator is bonded; each chain page must load
without console errors and show the numbers the view endpoints return; screenshots land in
``out/e2e/``. The market pages need the node's API: ``test_devnet.py`` drives them.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from browser_support import SCREENSHOTS
from fastapi import FastAPI
from oracle_system import honest_report
from playwright.sync_api import Browser, Page
from reputation_support import FADER, GOOD, play_maker_market

from clearhouse.api.server import ServerThread
from clearhouse.chain.inprocess import InProcessChain
from clearhouse.dashboard import ChainSource, SystemContracts, mount_dashboard
from clearhouse.dashboard.views import format_units
from clearhouse.governance.proposals import Action, ActionKind
from clearhouse.governance.votes import compute_tally_digest
from clearhouse.incentives.security import (
    compute_arbitration_security,
    compute_coordinator_security,
    compute_oracle_security,
)
from clearhouse.messages import Choice, Vote, sign
from clearhouse.node.coordinator import Coordinator
from clearhouse.node.governance import GovernanceWatcher
from clearhouse.node.service import build_node_app
from clearhouse.params import MAX_PAUSE
from clearhouse.settlement import TickOp
from clearhouse.sim import market_world as mw
from clearhouse.sim.governance_scenario import play_governance_scenario
from clearhouse.sim.oracle_hub import deploy_oracle_system
from clearhouse.sim.settlement_chain import deploy as deploy_settlement
from clearhouse.sim.settlement_world import NOW, deposit
from clearhouse.store import open_store
from clearhouse.types import Address, Amount, Timestamp

USDC = 10**6
PAIR = "ETH/USDC"


@pytest.fixture(scope="module")
def world() -> Iterator[tuple[str, dict[str, Any]]]:
    chain = InProcessChain()
    oracle = deploy_oracle_system(chain, 1, pair=PAIR)
    prices = [3000 * USDC, 3010 * USDC, 2990 * USDC]
    for round_id in range(1, 5):
        oracle.transmit(honest_report(oracle, round_id, [p + round_id * USDC for p in prices]))
        chain.time_travel(int(oracle.params.min_round_interval))
    asserter = chain.accounts[3]
    bond = int(oracle.assertions.call("min_bond"))
    oracle.fund(asserter.address, bond, oracle.assertions, asserter)
    oracle.assertions.transact("assert_claim", b"\x11" * 32, bond,
                               int(oracle.assertions.call("min_liveness")), sender=asserter)
    settlement = deploy_settlement(chain)
    contracts = SystemContracts(token=oracle.token, vault=settlement.vault, settlement=settlement.settlement,
                                bonds=(oracle.bonds,), oracle_hub=oracle.hub, assertions=oracle.assertions,
                                feeds=((PAIR, bytes(oracle.committee.feed_id)),))
    app = FastAPI()
    mount_dashboard(app, ChainSource(chain, contracts))
    server = ServerThread.start(app)
    try:
        yield server.url, {"oracle": oracle, "settlement": settlement}
    finally:
        server.stop()


def _open(browser: Browser, url: str, route: str) -> tuple[Page, list[str]]:
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors: list[str] = []
    # This app serves the views alone: the page's live feed (/v1/ws) belongs to the node's API.
    page.on("console", lambda m: errors.append(m.text)
            if m.type == "error" and "/v1/ws" not in m.text else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(f"{url}/#/{route}")
    page.wait_for_selector(f"main[data-page='{route}']", timeout=15_000)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"dashboard-{route}.png"), full_page=True)
    return page, errors


def test_oracle_page_shows_the_rounds(world: tuple[str, dict[str, Any]], browser: Browser) -> None:
    url, _ = world
    view = httpx.get(f"{url}/v1/views/oracle").json()
    feed = view["feeds"][0]
    assert feed["committee_size"] == 4 and feed["f"] == 1 and len(feed["rounds"]) == 4
    assert feed["latest_price"] == format_units(3004 * USDC, 6)
    page, errors = _open(browser, url, "oracle")
    text = page.inner_text("main")
    assert feed["latest_price"] in text and "n = 4, f = 1" in text
    assert page.locator("svg.chart circle").count() == 4
    assert errors == []


def test_stake_and_trust_pages_match_the_chain(world: tuple[str, dict[str, Any]], browser: Browser) -> None:
    url, systems = world
    stake = httpx.get(f"{url}/v1/views/stake").json()
    oracle_role = next(r for r in stake["roles"] if r["role"] == "oracle")
    member_stake = int(systems["oracle"].stake)
    assert oracle_role["stakers"] == 4 and oracle_role["total_stake"] == format_units(4 * member_stake, 6)
    assert oracle_role["nakamoto"] == 3 and oracle_role["hhi"] == 2_500
    page, errors = _open(browser, url, "stake")
    assert oracle_role["total_stake"] in page.inner_text("main") and errors == []

    trust = httpx.get(f"{url}/v1/views/trust").json()
    settlement = systems["settlement"].settlement
    assert trust["exit_time_seconds"] == int(settlement.call("t_force")) + int(settlement.call("challenge_window")) \
        + MAX_PAUSE  # a pause moves a forced withdrawal's freeze deadline
    # economic security: two arbitrators bond, the view's rows are the pure functions' numbers
    oracle = systems["oracle"]
    for who, stake in ((oracle.chain.accounts[7], 30_000 * USDC), (oracle.chain.accounts[8], 20_000 * USDC)):
        oracle.bond_arbitrator(who, stake)
    trust = httpx.get(f"{url}/v1/views/trust").json()
    rows = {r["role"]: r for r in trust["security"]}
    assert list(rows) == ["coordinator", f"oracle {PAIR}", "arbitrator"]
    bonds = systems["settlement"].bonds
    admitted = settlement.call("coordinator")
    coordinator = compute_coordinator_security(
        {admitted: int(bonds.call("stake_of", admitted, 0))}, Amount(int(bonds.call("slashable_of", admitted, 0))),
        Amount(int(oracle.token.call("balanceOf", systems["settlement"].vault.address))))
    members = {m: int(oracle.bonds.call("slashable_of", m, oracle.oracle_role)) for m in oracle.committee.members}
    committee = compute_oracle_security(f"oracle {PAIR}", members, 1, oracle.params.slash_amount, Amount(0))
    arbitration = compute_arbitration_security({"a": 30_000 * USDC, "b": 20_000 * USDC}, Amount(0))
    for expected in (coordinator, committee, arbitration):
        row = rows[expected.role]
        assert row["cost_of_corruption"] == format_units(expected.cost_of_corruption, 6)
        assert row["profit_from_corruption"] == format_units(expected.profit_from_corruption, 6)
        assert row["bribery_threshold"] == format_units(expected.bribery_threshold or 0, 6)
        assert (row["nakamoto"], row["hhi"], row["secure"]) == (expected.nakamoto, expected.hhi, expected.secure)
        assert (row["stake"], row["stakers"]) == (format_units(expected.stake, 6), expected.stakers)
        assert row["time_to_exit_seconds"] == trust["exit_time_seconds"]
    assert rows["arbitrator"]["bribery_threshold"] == "30000" and rows["arbitrator"]["hhi"] == 5_200
    page, errors = _open(browser, url, "trust")
    text = page.inner_text("main")
    for actor in ("coordinator", "oracle member", "watcher", "arbitrator"):
        assert actor in text
    assert "n = 4, f = 1" in text and errors == []
    assert "Economic security" in text and f"oracle {PAIR}" in text and "50000" in text  # arbitrator stake
    assert page.locator("main table").nth(1).locator("tbody tr").count() == 3


def test_disputes_page_and_overview_view(world: tuple[str, dict[str, Any]], browser: Browser) -> None:
    url, _ = world
    disputes = httpx.get(f"{url}/v1/views/disputes").json()["assertions"]
    assert len(disputes) == 1 and disputes[0]["phase"] == "liveness" and disputes[0]["outcome"] is None
    page, errors = _open(browser, url, "disputes")
    assert "liveness" in page.inner_text("main") and errors == []
    # the overview page also lists the node's batches and trades: tests/e2e/test_devnet.py loads it
    overview = httpx.get(f"{url}/v1/views/overview").json()
    keys = {c["key"] for c in overview["cards"]}
    assert {"vault", "batches_posted", "batches_final", f"price:{PAIR}", "insurance"} <= keys


@pytest.fixture(scope="module")
def governance_world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, Any]]]:
    """The demo's governance scenario (proposal #1 executed), then proposal #2 voted, asserted and
    queued: still inside its timelock. Its own chain: time travel must not age the world above."""
    chain = InProcessChain()
    store = open_store(f"sqlite:///{tmp_path_factory.mktemp('gov') / 'governance.db'}")
    gov, service, figures = play_governance_scenario(chain, store, lambda _: None, lambda _: None, dispute=False)
    stakers = chain.accounts[2:6]
    fees = Action(ActionKind.FEES, "taker_fee_bps", 3)
    pid = int(service.on_create_proposal(Address(stakers[1].address), "Lower taker fee", "3 bps", [fees])
              .body["proposalId"])
    chain.time_travel(3601)
    for who in stakers[:3]:
        vote = Vote(Address(who.address), pid, Choice.FOR, "", Timestamp(chain.now() + 3600))
        service.on_vote(vote, sign(service.domain, vote, bytes(who.key)))
    chain.time_travel(86_401)
    digest = compute_tally_digest(service.get_tally(pid))
    assertion = gov.assert_result(chain.accounts[8], pid, [fees], digest)
    chain.time_travel(int(gov.disputes.min_liveness) + 1)
    gov.settle(assertion)
    gov.queue(pid, digest, [fees], assertion)
    GovernanceWatcher(service, chain, gov.governor, gov.assertions, gov.parameters).on_tick()  # asserted, queued
    contracts = SystemContracts(token=gov.token, settlement=gov.settlement.settlement, bonds=(gov.bonds,),
                                assertions=gov.assertions, governor=gov.governor, parameters=gov.parameters)
    app = FastAPI()
    mount_dashboard(app, ChainSource(chain, contracts, governance=service.list_proposals_json))
    server = ServerThread.start(app)
    try:
        yield server.url, {"gov": gov, "figures": figures}
    finally:
        server.stop()
        store.close()


def test_governance_page_shows_proposals_tally_timelock_and_changes(
        governance_world: tuple[str, dict[str, Any]], browser: Browser) -> None:
    url, systems = governance_world
    gov, figures = systems["gov"], systems["figures"]
    view = httpx.get(f"{url}/v1/views/governance").json()
    assert view["timelock_seconds"] == gov.delay and view["exit_time_seconds"] == gov.exit_time
    executed, queued = (next(p for p in view["proposals"] if p["id"] == i) for i in (1, 2))
    assert executed["status"] == "executed" and executed["onchain"]["state"] == "executed"
    assert executed["tally"]["for"] == str(7_000 * USDC) and executed["tally"]["passed"] is True
    assert queued["status"] == "queued" and queued["onchain"]["state"] == "queued"
    assert 0 < queued["onchain"]["seconds_left"] <= gov.delay
    (change,) = view["changes"]
    assert change == {"parameter": "max_positions", "value": "6", "version": 2,
                      "from_batch": figures["governance_applies_from_batch"], "proposal": 1,
                      "block": change["block"]}
    current = {p["parameter"]: p["value"] for p in view["parameters"]}
    assert current["max_positions"] == "6" and current["taker_fee_bps"] == "5"
    page, errors = _open(browser, url, "governance")
    text = page.inner_text("main")
    assert "Fewer open positions per account" in text and "Lower taker fee" in text
    assert "executable in" in text and "max_positions → 6" in text
    assert "7,000" in text and "2,000" in text  # the tally in whole USDC of stake
    cells = page.locator("h2:has-text('Executed parameter changes') + table tbody tr").first.locator("td")
    assert cells.all_inner_texts() == ["max_positions", "6", "2",
                                       str(figures["governance_applies_from_batch"]), "1"]
    assert errors == []


@pytest.fixture(scope="module")
def reputation_world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, Any]]]:
    """A served node whose makers fill and fade, on a chain with finalised batches and oracle rounds
    that one member never observes."""
    chain = InProcessChain()
    settlement = deploy_settlement(chain, users=1)
    settlement.deposit(0, 1_000)
    settlement.post([deposit(0, 1_000), TickOp(Timestamp(NOW))])
    settlement.finalize_all()
    oracle = deploy_oracle_system(chain, 1, pair=PAIR)
    for round_id in range(1, 4):
        oracle.transmit(honest_report(oracle, round_id, [3000 * USDC, 3001 * USDC, 3003 * USDC]))
        chain.time_travel(int(oracle.params.min_round_interval))
    store = open_store(f"sqlite:///{tmp_path_factory.mktemp('rep') / 'node.db'}")
    listings, _ = mw.build_listings()
    coordinator = Coordinator(store, mw.DOMAIN, listings, mw.UNIT, chain=chain)
    play_maker_market(coordinator, int(chain.now()) - 3_600, rounds=12)
    deployment = {"settlement": {"settlement": settlement.settlement.address, "bonds": settlement.bonds.address},
                  "oracle": {"hub": oracle.hub.address, "bonds": oracle.bonds.address, "pair": PAIR,
                             "feed_id": "0x" + bytes(oracle.committee.feed_id).hex()}}
    server = ServerThread.start(build_node_app(coordinator, chain, deployment=deployment))
    try:
        yield server.url, {"oracle": oracle, "settlement": settlement}
    finally:
        server.stop()
        store.close()


def test_reputation_page_shows_every_role(reputation_world: tuple[str, dict[str, Any]], browser: Browser) -> None:
    url, systems = reputation_world
    view = httpx.get(f"{url}/v1/views/reputation").json()
    assert view == {**httpx.get(f"{url}/v1/reputation").json(), "block": view["block"]}
    makers = view["scores"]["makers"]
    assert makers[FADER]["paused"] and not makers[GOOD]["paused"]
    assert view["routing_share_ppm"] == {FADER: 0, GOOD: 1_000_000}
    members = list(systems["oracle"].committee.members)
    assert view["scores"]["oracles"][members[3]]["missed"] == "3"
    coordinator = systems["settlement"].coordinator.address
    assert view["scores"]["coordinators"][coordinator]["finalised"] == "1"
    assert view["stake"]["oracle"][members[0]] == format_units(int(systems["oracle"].stake), 6)
    page, errors = _open(browser, url, "reputation")
    rows = {r.locator("td").first.inner_text(): r.locator("td").all_inner_texts()
            for r in page.locator("h2:has-text('Makers') + table tbody tr").all()}
    assert rows[FADER][-1] == "paused" and rows[GOOD][-1] == "routed"
    assert rows[FADER][2] == f"{makers[FADER]['fade_rate_ppm'] / 10_000:.2f} %"
    assert rows[GOOD][3] == f"{makers[GOOD]['fill_ratio_ppm'] / 10_000:.2f} %" == "100.00 %"
    oracles = page.locator("h2:has-text('Oracle members') + table tbody tr")
    assert oracles.count() == 4
    text = page.inner_text("main")
    assert coordinator in text and "Watchers" in text and "No challenges yet." in text
    assert errors == []
