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

from clearhouse.api.server import ServerThread
from clearhouse.chain.inprocess import InProcessChain
from clearhouse.dashboard import ChainSource, SystemContracts, mount_dashboard
from clearhouse.dashboard.views import format_units
from clearhouse.sim.oracle_hub import deploy_oracle_system
from clearhouse.sim.settlement_chain import deploy as deploy_settlement

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
    assert trust["exit_time_seconds"] == int(settlement.call("t_force")) + int(settlement.call("challenge_window"))
    page, errors = _open(browser, url, "trust")
    text = page.inner_text("main")
    for actor in ("coordinator", "oracle member", "watcher", "arbitrator"):
        assert actor in text
    assert "n = 4, f = 1" in text and errors == []


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
