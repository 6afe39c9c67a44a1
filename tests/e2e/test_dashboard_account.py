"""The dashboard's account page in headless Chromium: balance, exact requirement, positions and the
Greeks at the oracle's spot, each matching the view endpoint and the coordinator behind it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from browser_support import SCREENSHOTS
from oracle_system import honest_report
from playwright.sync_api import Browser

from clearhouse.api.server import ServerThread
from clearhouse.chain.inprocess import InProcessChain
from clearhouse.dashboard.views import format_units
from clearhouse.messages import Side
from clearhouse.node.coordinator import Coordinator
from clearhouse.node.service import build_node_app
from clearhouse.sim import market_world as mw
from clearhouse.sim.oracle_hub import deploy_oracle_system
from clearhouse.store import open_store
from clearhouse.types import Amount, Timestamp

PAIR = "ETH/USDC"
SPOT = 3004 * mw.USDC


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Coordinator, InProcessChain]]:
    chain = InProcessChain()
    oracle = deploy_oracle_system(chain, 1, pair=PAIR)
    oracle.transmit(honest_report(oracle, 1, [3000 * mw.USDC, SPOT, 3010 * mw.USDC]))
    db: Path = tmp_path_factory.mktemp("node") / "node.db"
    store = open_store(f"sqlite:///{db}")
    listings, _ = mw.build_listings()
    c = Coordinator(store, mw.DOMAIN, listings, mw.UNIT)
    w = mw.make_world(1)
    a, b, m = mw.ADDRESSES[:3]
    for account in (a, b, m):
        c.on_deposit(account, Amount(100_000 * mw.USDC))
    now = Timestamp(mw.NOW)
    for who, side, price, size, series in ((a, Side.SELL, 180, 300, 0), (b, Side.BUY, 180, 200, 0),
                                           (m, Side.BUY, 160, 100, 0), (b, Side.BUY, 150, 100, 1),
                                           (a, Side.SELL, 150, 100, 1)):
        order = mw.order(w, who, side, mw.px(price), size, series=series)
        c.on_order(order, mw.signed(order, who), now=now)
    deployment = {"settlement": {"token": oracle.token.address},
                  "oracle": {"hub": oracle.hub.address, "bonds": oracle.bonds.address, "pair": PAIR,
                             "feed_id": "0x" + bytes(oracle.committee.feed_id).hex()}}
    server = ServerThread.start(build_node_app(c, chain, deployment=deployment))
    try:
        yield server.url, c, chain
    finally:
        server.stop()
        store.close()


def test_the_account_page_shows_requirement_positions_and_greeks(
        node: tuple[str, Coordinator, InProcessChain], browser: Browser) -> None:
    url, c, chain = node
    who = mw.ADDRESSES[1]  # long 200 of the 3000 call and 100 of the 3000 put
    view: dict[str, Any] = httpx.get(f"{url}/v1/views/account/{who}").json()
    raw = c.get_account_json(who)
    assert view["balance"] == format_units(int(raw["balance"]), 6)
    assert view["requirement"] == format_units(int(raw["requirement"]), 6) and len(view["positions"]) == 2
    assert view["spot"] == format_units(SPOT, 6)
    expected = c.get_account_greeks_json(who, SPOT, chain.now())
    assert view["greeks"] == expected["greeks"] and view["marks"] == expected["marks"]
    assert {m["source"] for m in view["marks"]} == {"mid", "default"}  # the put's book is empty
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors: list[str] = []
    page.on("console", lambda msg: errors.append(msg.text)
            if msg.type == "error" and "/v1/ws" not in msg.text else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(f"{url}/#/accounts?address={who}")
    page.wait_for_selector("main[data-page='accounts'] h2:has-text('Greeks')", timeout=15_000)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "dashboard-account.png"), full_page=True)
    text = page.inner_text("main")
    delta = f"{view['greeks']['delta']:,.4f}"
    assert view["requirement"] in text and delta in text and "ETH-29JAN27-3000-C" in text
    assert not errors, errors
    page.close()
