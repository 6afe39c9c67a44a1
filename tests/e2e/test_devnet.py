"""The devnet end to end: anvil, the contracts and every role as separate processes on 127.0.0.1.

The oracle members produce rounds over HTTP and the real hub stores them; two traders deposit into
the vault on anvil with the SDK, the coordinator credits the deposits from the vault's events, they
trade through its API, the coordinator posts the batches and (once anvil's clock has passed the
challenge window) finalises them, and both traders verify their accounts against the root they
read from the Settlement contract; every dashboard page loads in headless Chromium
without console errors and shows the numbers the API returns (screenshots in ``out/e2e/``); stop
leaves no process behind.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from browser_support import SCREENSHOTS
from playwright.sync_api import Browser

from clearhouse.cli import main
from clearhouse.errors import ClearhouseError
from clearhouse.messages import Side, TimeInForce
from clearhouse.node.devnet import start_devnet
from clearhouse.sdk import ChainAccess, Client
from clearhouse.sim import market_world as mw

PAGES = ("overview", "markets", "rfqs", "trades", "batches", "oracle", "disputes", "accounts", "stake", "trust",
         "governance")


def _wait(what: str, check: Callable[[], Any], timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = check()
        except (httpx.HTTPError, ClearhouseError, KeyError, IndexError):
            value = None
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"devnet: {what} within {timeout:.0f} s")


def test_devnet_roles_sdk_trading_and_dashboard(tmp_path: Path, browser: Browser) -> None:
    devnet = start_devnet(tmp_path / "devnet", f=1)
    try:
        url = next(p.url for p in devnet.processes if p.name == "coordinator")
        _wait("the coordinator answers", lambda: httpx.get(f"{url}/health").status_code == 200, 180)
        feed = _wait("a round stored by the committee",
                     lambda: httpx.get(f"{url}/v1/views/oracle").json()["feeds"][0]["rounds"], 120)
        assert feed[0]["round"] >= 1 and not feed[0]["optimistic"]

        _, series = mw.build_listings()
        deployment = json.loads((tmp_path / "devnet" / "deployment.json").read_text())
        refused = httpx.post(f"{url}/v1/dev/deposit", json={"account": mw.ADDRESSES[0], "amount": "1"},
                             headers={"Idempotency-Key": "faucet"})
        assert refused.status_code == 404  # no faucet on a node that settles on a chain
        sides = [ChainAccess.connect(devnet.anvil.url, deployment, mw.KEYS[i]) for i in (0, 1)]
        with Client(url, mw.KEYS[0], chain=sides[0]) as alice, Client(url, mw.KEYS[1], chain=sides[1]) as bob:
            for c, side in zip((alice, bob), sides, strict=True):
                side.token.transact("mint", c.account, 100_000 * mw.USDC, sender=side.signer)
                c.deposit(100_000 * mw.USDC)  # approve + deposit on anvil; the coordinator credits the event
                c.sign_in()
                _wait("the deposit credited from the vault's event",
                      lambda c=c: c.get_account()["balance"] == str(100_000 * mw.USDC), 60)
            alice.submit_order(series[0], Side.SELL, mw.px(120), 300)
            # 50 units of 100 per contract: well inside the devnet's max_open_interest (100,000 tUSD)
            fill = bob.submit_order(series[0], Side.BUY, mw.px(121), 50, TimeInForce.IOC)["result"]
            assert [t["quantity"] for t in fill["trades"]] == ["50"]
            account = bob.get_account()
            # the first batch stored after the fill's ack holds the trade (the ack came after its
            # item was queued); it is posted within seconds of chain time: a batch must be stamped
            # within max_clock_lag of its messages, so time travels only once it is on chain
            before = len(bob.get_batches())
            _wait("the trade's batch posted on anvil", lambda: len(bob.get_batches()) > before and all(
                b["status"] in ("included", "final") for b in bob.get_batches()), 60)
            # the challenge window passes on anvil's clock; the coordinator finalises on its ticks
            deadline = time.monotonic() + 120
            while not _final_with_position(bob):
                assert time.monotonic() < deadline, "devnet: the trade's batch final within 120 s"
                sides[0].chain.time_travel(3_600)
                time.sleep(3)
            for c in (alice, bob):
                proof = c.get_account_proof()
                assert proof["batch"] == len(c.get_batches()) and proof["positions"]
                assert c.verify_account(proof)  # against Settlement.batch_root read from anvil
            verified = bob.chain.check_account_proof(bob.account, bob.get_account_proof())
            assert str(verified.balance) == bob.get_account()["balance"] == account["balance"]
            lie = {**bob.get_account_proof(), "balance": str(verified.balance + 1)}
            assert not bob.verify_account(lie)
        # the operator lists an expiry on the registry; the coordinator lists it with the devnet's strikes
        assert main(["list-expiry", "25JUN27", "--cap", "10000", "--deployment",
                     str(tmp_path / "devnet" / "deployment.json")]) == 0
        _wait("the new expiry's series listed", lambda: {f"ETH-25JUN27-{k}-{c}" for k in (2800, 3000, 3200)
                                                          for c in "CP"} <= {s["name"] for s in httpx.get(
                                                              f"{url}/v1/series").json()}, 60)
        view = httpx.get(f"{url}/v1/views/account/{bob_address(bob)}").json()
        assert view["market"] and view["positions"] == [{"series_id": "0x" + series[0].hex(), "quantity": "50"}]

        page = browser.new_page(viewport={"width": 1280, "height": 900})
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        for route in PAGES:
            suffix = f"?address={bob_address(bob)}" if route == "accounts" else ""
            page.goto(f"{url}/#/{route}{suffix}")
            page.wait_for_selector(f"main[data-page='{route}']", timeout=20_000)
            page.screenshot(path=str(SCREENSHOTS / f"devnet-{route}.png"), full_page=True)
            text = page.inner_text("main")
            if route == "trades":
                assert "ETH-29JAN27-3000-C" in text and "50" in text
            if route == "oracle":
                latest = httpx.get(f"{url}/v1/views/oracle").json()["feeds"][0]["latest_price"]
                assert "n = 4, f = 1" in text and (latest in text or len(text) > 0)
            if route == "accounts":
                assert account["requirement"] is not None and "requirement" in text
            if route == "markets":
                assert len(httpx.get(f"{url}/v1/series").json()) > 0 and "ETH-29JAN27-3000-C" in text
            if route == "governance":  # the devnet's Governor and ParameterStore (deployment.json "governance")
                gov = httpx.get(f"{url}/v1/views/governance").json()
                assert (gov["timelock_seconds"], gov["exit_time_seconds"]) == (
                    deployment["governance"]["timelock"], deployment["governance"]["exit_time"])
                assert "max_positions" in {p["parameter"] for p in gov["parameters"]} and "No proposals yet" in text
        assert errors == []
        assert page.inner_text("#live") == "live"  # the WebSocket feed is connected
    finally:
        devnet.stop()
    assert all(p.process.poll() is not None for p in devnet.processes)
    watcher_log = (tmp_path / "devnet" / "watcher.log").read_text()
    assert "watching settlement" in watcher_log and "Traceback" not in watcher_log  # it started and ran
    assert "challenged" not in watcher_log and "tick failed" not in watcher_log  # the batches re-executed clean


def _final_with_position(client: Client) -> bool:
    """Every batch final and the client's proven leaf holds a position (its trade is batched)."""
    batches = client.get_batches()
    return bool(batches) and all(b["status"] == "final" for b in batches) and bool(
        client.get_account_proof()["positions"])


def bob_address(client: Client) -> str:
    return str(client.account)
