"""A market maker that answers every RFQ routed to it with Black-76 prices.

    python examples/market_maker.py --url http://127.0.0.1:9545 --key 0x<private key> \
        --forward 3000 --vol 0.6 --edge 0.02

It signs in, registers as a maker, follows the ``rfqs`` channel and, for each RFQ, quotes the
side the taker asked for (both sides for a hidden-side RFQ) at fair value ± ``edge`` per leg,
rounded to the premium tick away from the maker's loss.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import time
from typing import Any

from clearhouse.market.pricing import compute_black76_price, compute_year_fraction
from clearhouse.messages import Side
from clearhouse.sdk import AsyncClient
from clearhouse.types import Timestamp


def compute_leg_price(series: dict[str, Any], forward: float, vol: float, now: int, edge: float,
                      maker_sells: bool, decimals: int = 6) -> int:
    """One leg's premium per contract in quote base units: fair ± edge, on the tick, ≥ one tick."""
    unit = 10**decimals
    years = compute_year_fraction(Timestamp(now), Timestamp(series["expiry"]))
    fair = float(compute_black76_price(forward, int(series["strike"]) / unit, years, vol, 0.0,
                                       series["kind"] == 0))
    tick = int(series["premiumTick"])
    raw = fair * (1 + edge if maker_sells else 1 - edge) * unit / tick
    ticks = math.ceil(raw) if maker_sells else math.floor(raw)
    return max(1, ticks) * tick


def compute_quote_prices(rfq: dict[str, Any], series: dict[str, dict[str, Any]], forward: float,
                         vol: float, now: int, edge: float, side: Side) -> list[int]:
    """Prices per leg for the maker's ``side`` of the structure (``SELL``: the maker sells the
    structure, i.e. sells the legs the buyer buys)."""
    prices = []
    for leg in rfq["legs"]:
        maker_sells_leg = (side is Side.SELL) == bool(leg["isBuy"])
        prices.append(compute_leg_price(series[leg["seriesId"]], forward, vol, now, edge,
                                        maker_sells_leg))
    return prices


async def run(url: str, key: bytes, forward: float, vol: float, edge: float,
              max_rfqs: int | None = None) -> int:
    """Quote RFQs until interrupted (or ``max_rfqs`` answered); returns quotes sent."""
    sent = answered = 0
    async with AsyncClient(url, key) as client:
        await client.sign_in()
        await client.register_maker()
        series = {s["seriesId"]: s for s in await client.get_series()}
        async for event in client.subscribe(["rfqs"]):
            data = event["data"]
            if client.account not in data["makers"]:
                continue
            asked = Side(int(data["rfq"]["side"]))
            sides = [Side.SELL, Side.BUY] if asked is Side.HIDDEN else [
                Side.SELL if asked is Side.BUY else Side.BUY]
            for side in sides:
                prices = compute_quote_prices(data["rfq"], series, forward, vol, int(time.time()),
                                              edge, side)
                await client.submit_quote(data, prices, side)
                sent += 1
            answered += 1
            if max_rfqs is not None and answered >= max_rfqs:
                return sent
    return sent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", required=True)
    parser.add_argument("--key", required=True, help="0x-hex private key")
    parser.add_argument("--forward", type=float, default=3000.0, help="underlying forward price")
    parser.add_argument("--vol", type=float, default=0.6, help="Black-76 volatility")
    parser.add_argument("--edge", type=float, default=0.02, help="fraction over/under fair value")
    args = parser.parse_args()
    asyncio.run(run(args.url, bytes.fromhex(args.key.removeprefix("0x")), args.forward, args.vol,
                    args.edge))


if __name__ == "__main__":
    main()
