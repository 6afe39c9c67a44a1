"""examples/market_maker.py against a real node: it answers a routed RFQ with Black-76 prices the
taker can accept."""

from __future__ import annotations

import asyncio
import importlib.util
import sys
from pathlib import Path

from api_node import Node

from clearhouse.messages import Side
from clearhouse.sdk import AsyncClient
from clearhouse.sim import market_world as mw

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "market_maker.py"


def load_example():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("market_maker", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["market_maker"] = module
    spec.loader.exec_module(module)
    return module


def test_market_maker_quotes_and_taker_accepts(node: Node) -> None:
    mm = load_example()
    _, series = mw.build_listings()

    async def scenario() -> tuple[int, dict[str, object], dict[str, object]]:
        async with AsyncClient(node.url, mw.KEYS[2]) as maker, AsyncClient(node.url, mw.KEYS[1]) as taker:
            await maker.faucet(1_000_000 * mw.USDC)
            await taker.faucet(1_000_000 * mw.USDC)
            await taker.sign_in()
            task = asyncio.create_task(mm.run(node.url, mw.KEYS[2], 3000.0, 0.6, 0.02, max_rfqs=1))
            while maker.account not in node.coordinator.desk.makers:
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.2)  # the maker's subscription is live
            rfq = (await taker.submit_rfq([(series[0], 1, True)], 100, Side.BUY))["result"]
            sent = await asyncio.wait_for(task, 20)
            quote = (await taker.get_rfqs())[-1]
            assert quote["rfqId"] == rfq["rfqId"]
            quotes = [q for q in node.coordinator.desk.quotes.values()]
            accepted = await taker.accept(quotes[0].digest, 100)
            return sent, accepted["result"], await taker.get_account()
    sent, accepted, account = asyncio.run(scenario())
    assert sent == 1 and len(accepted["trades"]) == 1  # type: ignore[arg-type]
    price = int(accepted["trades"][0]["price"])  # type: ignore[index]
    fair = mm.compute_leg_price(node.coordinator.get_series_json()[0], 3000.0, 0.6,
                                int(__import__("time").time()), 0.0, True)
    assert fair <= price <= fair * 1.03
    assert account["positions"] == {"0x" + series[0].hex(): "100"}
