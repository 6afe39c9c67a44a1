"""API ingest and RFQ latency through a real node: ``python -m benchmarks.api``.

The node (coordinator over SQLite in WAL + ``synchronous=FULL`` in a temp dir, FastAPI on uvicorn
on 127.0.0.1, its startup heap frozen as ``clearhouse node`` does) runs in this process; the load
generator runs in a second process (spawned) and signs everything *before* its timed part, so the
figures are the node's.

* ``orders_per_s_http``: non-crossing GTC orders (so every one rests and is acknowledged), 16
  keep-alive HTTP/1.1 connections (aiohttp) each sending its next order when the previous one is
  acknowledged.
* ``orders_per_s_ws``: the same over one WebSocket with up to 512 order frames in flight (the
  node pipelines them: frames are checked while the previous group commits, and the orders that
  arrived meanwhile are committed in one transaction); median of ``WS_REPS`` runs.
* ``orders_per_node_cpu_s_ws``: WebSocket orders per CPU-second of the node process over those
  runs (less sensitive than wall time to other load on the machine).
* ``rfq_roundtrip_*``: a taker and 10 makers on WebSockets. The taker sends an RFQ frame; each
  maker, on the ``rfqs`` event, signs a quote priced by ``clearhouse.market.pricing`` (Black-76)
  and sends it; the taker, once all 10 quotes arrived on ``quotes:<taker>``, accepts the best and
  the clock stops at the accept's acknowledgement.
* ``verify_per_s_inprocess_1core``: the bare signature check of the same orders in one process
  (``verify_signed``), to which the WebSocket ingest is compared.
* ``store_appends_per_s``: committed ``append_action`` calls per second on the same disk (one
  fsync each): what ingest was capped at before group commit. Every accepted action is still
  durably logged before it is acknowledged, but a group of them shares one transaction.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing as mp
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any, cast

from eth_account import Account

from benchmarks._common import write_result
from clearhouse.api.app import ApiLimits, create_app
from clearhouse.api.server import ServerThread
from clearhouse.market.trades import verify_signed
from clearhouse.messages import Order, Side, TimeInForce, sign
from clearhouse.node.coordinator import Coordinator
from clearhouse.sim import market_world as mw
from clearhouse.store import open_store
from clearhouse.types import Address, Amount, Nonce, Price, Quantity, Timestamp

SCALE = float(os.environ.get("API_BENCH_SCALE", "1"))
HTTP_ORDERS = int(600 * SCALE)
WS_ORDERS = int(2000 * SCALE)
WS_REPS = 3
RFQS = max(3, int(100 * SCALE))
"""Timed RFQ round trips (after one untimed warm-up round trip), enough for a p99 that is not
simply the slowest."""
MAKERS = 10
EXPIRY = int(time.time()) + 3600
KEYS = [bytes([i + 1]) * 32 for i in range(1 + MAKERS)]
"""Taker (0) and makers (1..10); the first six are ``market_world``'s accounts."""
ADDRESSES = [Address(Account.from_key(k).address) for k in KEYS]


def _sig(message: Any, index: int) -> str:
    return "0x" + sign(mw.DOMAIN, message, KEYS[index]).hex()


def _orders(account_index: int, count: int, first_nonce: int) -> list[dict[str, Any]]:
    """Signed, non-crossing resting bids on series 0 (prices cycle over 1..50 ticks of 0.01)."""
    account = ADDRESSES[account_index]
    _, series = mw.build_listings()
    out = []
    for i in range(count):
        order = Order(account, series[0], Side.BUY, Price(10_000 * (1 + i % 50)), Quantity(100),
                      TimeInForce.GTC, Nonce(first_nonce + i), Timestamp(EXPIRY))
        out.append({"message": order.to_typed_data(mw.DOMAIN)["message"],
                    "signature": _sig(order, account_index)})
    return out


async def _sign_in(url: str, key: bytes) -> str:
    from clearhouse.sdk import AsyncClient

    async with AsyncClient(url, key) as c:
        return await c.sign_in()


async def _http_load(url: str, token: str, bodies: list[dict[str, Any]], connections: int
                     ) -> float:
    """``connections`` keep-alive HTTP/1.1 connections (aiohttp: a few times less client CPU per
    request than httpx, which capped this figure at the generator's ~2.6 ms a request), each
    posting its next order once the previous one is acknowledged."""
    import aiohttp

    queue = list(reversed(bodies))
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    async with aiohttp.ClientSession(url, connector=aiohttp.TCPConnector(limit=connections),
                                     timeout=aiohttp.ClientTimeout(total=60)) as client:
        async def worker() -> None:
            while queue:
                body = queue.pop()
                async with client.post("/v1/orders", data=json.dumps(body), headers={
                        **headers, "Idempotency-Key": body["message"]["nonce"]}) as r:
                    if r.status != 200:
                        raise RuntimeError(await r.text())
                    await r.read()
        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(connections)))
        return len(bodies) / (time.perf_counter() - start)


async def _ws_load(url: str, token: str, bodies: list[dict[str, Any]], window: int) -> float:
    import websockets

    async with websockets.connect(url.replace("http", "ws") + "/v1/ws", max_size=2**22) as ws:
        await ws.send(json.dumps({"op": "auth", "token": token}))
        await ws.recv()
        frames = [json.dumps({"op": "order", "id": i, **b}) for i, b in enumerate(bodies)]
        start = time.perf_counter()
        sent = acked = 0
        while acked < len(frames):
            while sent < len(frames) and sent - acked < window:
                await ws.send(frames[sent])
                sent += 1
            reply = json.loads(await ws.recv())
            if reply.get("type") != "ack":
                raise RuntimeError(reply)
            acked += 1
        return len(frames) / (time.perf_counter() - start)


async def _rfq_roundtrips(url: str, tokens: dict[int, str], count: int
                          ) -> tuple[list[float], dict[str, list[float]]]:
    """Round trips (ms) and their phases (ms): ``route`` RFQ sent → the last maker has it,
    ``quotes`` → the taker has all 10 quotes (makers price and sign meanwhile), ``accept`` →
    the accept's ack."""
    import websockets

    from clearhouse.market.pricing import compute_black76_price, compute_year_fraction
    from clearhouse.messages import RFQ, Accept, Leg, Quote, QuoteLeg

    _, series = mw.build_listings()
    listings, _ = mw.build_listings()
    taker = ADDRESSES[0]
    ws_url = url.replace("http", "ws") + "/v1/ws"

    async def connect(index: int, channels: list[str]) -> Any:
        ws = await websockets.connect(ws_url, max_size=2**22)
        await ws.send(json.dumps({"op": "auth", "token": tokens[index]}))
        await ws.recv()
        for channel in channels:
            await ws.send(json.dumps({"op": "subscribe", "channel": channel, "after": 0}))
            await ws.recv()
        return ws

    def price_leg(series_id: bytes, now: int) -> int:
        listing = listings[series_id]  # type: ignore[index]
        years = compute_year_fraction(Timestamp(now), listing.series.expiry)
        fair = float(compute_black76_price(3_000.0, listing.series.strike / mw.USDC, years, 0.6,
                                           0.0, listing.series.kind == 0))
        return max(1, round(fair * 1.02 * 100)) * 10_000  # 2 % over fair, on the 0.01 tick

    makers = [await connect(1 + m, ["rfqs"]) for m in range(MAKERS)]
    desk = await connect(0, [f"quotes:{taker}"])
    nonce = iter(range(10**9, 2 * 10**9))

    async def maker_loop(index: int, ws: Any) -> None:
        account = ADDRESSES[1 + index]
        async for raw in ws:
            frame = json.loads(raw)
            if frame.get("type") == "error":
                raise RuntimeError(f"maker {index}: {frame}")
            if frame.get("type") != "event":
                continue
            data = frame["data"]
            routed[data["rfqId"]] = time.perf_counter()  # the last maker to see it wins
            now = int(time.time())
            legs = tuple(QuoteLeg(bytes.fromhex(leg["seriesId"][2:]), leg["ratio"], leg["isBuy"],  # type: ignore[arg-type]
                                  Price(price_leg(bytes.fromhex(leg["seriesId"][2:]), now)))
                         for leg in data["rfq"]["legs"])
            quote = Quote(account, taker, bytes.fromhex(data["rfqId"][2:]), legs, Side.SELL,  # type: ignore[arg-type]
                          Quantity(int(data["rfq"]["size"])), Nonce(next(nonce)),
                          Timestamp(now + 10))
            await ws.send(json.dumps({"op": "quote", "message": quote.to_typed_data(mw.DOMAIN)[
                "message"], "signature": _sig(quote, 1 + index)}))
    tasks = [asyncio.create_task(maker_loop(i, ws)) for i, ws in enumerate(makers)]
    times = []
    routed: dict[str, float] = {}
    phases: dict[str, list[float]] = {"route": [], "quotes": [], "accept": []}
    for _ in range(count):
        now = int(time.time())
        rfq = RFQ(taker, (Leg(series[0], 1, True),), Quantity(100), Side.BUY, Nonce(next(nonce)),
                  Timestamp(now + 30))
        start = time.perf_counter()
        await desk.send(json.dumps({"op": "rfq", "message": rfq.to_typed_data(mw.DOMAIN)["message"],
                                    "signature": _sig(rfq, 0)}))
        quotes: list[dict[str, Any]] = []
        while len(quotes) < MAKERS:
            failed = [t for t in tasks if t.done()]
            if failed:
                failed[0].result()
            try:
                frame = json.loads(await asyncio.wait_for(desk.recv(), 5))
            except TimeoutError:
                continue
            if frame.get("type") == "event":
                quotes.append(frame["data"])
            elif frame.get("type") == "error":
                raise RuntimeError(frame)
        quoted = time.perf_counter()
        best = min(quotes, key=lambda q: int(q["quote"]["legs"][0]["price"]))
        accept = Accept(taker, bytes.fromhex(best["quoteId"][2:]), Quantity(100), Nonce(next(nonce)),  # type: ignore[arg-type]
                        Timestamp(now + 30))
        await desk.send(json.dumps({"op": "accept", "id": "a", "message": accept.to_typed_data(
            mw.DOMAIN)["message"], "signature": _sig(accept, 0)}))
        while True:
            frame = json.loads(await desk.recv())
            if frame.get("id") == "a":
                if frame["type"] != "ack":
                    raise RuntimeError(frame)
                break
        end = time.perf_counter()
        times.append((end - start) * 1000)
        phases["route"].append((routed[best["rfqId"]] - start) * 1000)
        phases["quotes"].append((quoted - routed[best["rfqId"]]) * 1000)
        phases["accept"].append((end - quoted) * 1000)
    for task in tasks:
        task.cancel()
    for ws in [*makers, desk]:
        await ws.close()
    return times, phases


def _generator(url: str, out: Any) -> None:
    """The load-generator process: sign first, then drive the node; results go to ``out``
    (with ``("mark", name)`` at phase boundaries, for the node's CPU time)."""
    http_bodies = _orders(0, HTTP_ORDERS, 1)
    ws_bodies = [_orders(0, WS_ORDERS, 10**6 * (1 + r)) for r in range(WS_REPS)]

    async def run() -> dict[str, Any]:
        tokens = {i: await _sign_in(url, KEYS[i]) for i in range(1 + MAKERS)}
        http = await _http_load(url, tokens[0], http_bodies, 16)
        out.put(("mark", "ws_start"))
        ws = [await _ws_load(url, tokens[0], bodies, 512) for bodies in ws_bodies]
        out.put(("mark", "ws_end"))
        rfq, phases = await _rfq_roundtrips(url, tokens, RFQS + 1)
        rfq, phases = rfq[1:], {name: values[1:] for name, values in phases.items()}  # warm-up
        return {"http": http, "ws": ws, "rfq": rfq, "rfq_phases": phases}
    try:
        out.put(asyncio.run(run()))
    except Exception as exc:  # report it to the parent rather than leave it waiting
        out.put({"error": f"{type(exc).__name__}: {exc}"})


def _verify_rate(count: int = 3000) -> float:
    bodies = _orders(0, count, 5 * 10**6)
    from clearhouse.api.schemas import SignedOrder, to_message

    parsed = [(cast(Order, to_message(mw.DOMAIN, SignedOrder.model_validate(b).message)),
               bytes.fromhex(b["signature"][2:])) for b in bodies]
    start = time.perf_counter()
    for message, signature in parsed:
        verify_signed(mw.DOMAIN, message, signature, ADDRESSES[0])
    return count / (time.perf_counter() - start)


def _store_rate(directory: Path, count: int = 300) -> float:
    store = open_store(f"sqlite:///{directory / 'probe.db'}")
    start = time.perf_counter()
    for i in range(count):
        store.append_action("probe", None, {"i": i}, None)
    rate = count / (time.perf_counter() - start)
    store.close()
    return rate


def main() -> None:
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        store = open_store(f"sqlite:///{Path(tmp) / 'node.db'}")
        listings, _ = mw.build_listings()
        coordinator = Coordinator(store, mw.DOMAIN, listings, mw.UNIT)
        for i, account in enumerate(ADDRESSES):
            coordinator.on_deposit(account, Amount(10**9 * mw.USDC))
            if i:
                coordinator.on_register_maker(account)
        app = create_app(coordinator, limits=ApiLimits(rate_per_second=10**6, burst=10**6,
                                                       ws_queue=100_000))
        server = ServerThread.start(app, freeze_heap=True)  # as `clearhouse node` serves
        try:
            ctx = mp.get_context("spawn")
            out = ctx.Queue()
            proc = ctx.Process(target=_generator, args=(server.url, out))
            proc.start()
            cpu: dict[str, float] = {}
            while isinstance(result := out.get(timeout=600), tuple):
                cpu[result[1]] = time.process_time()  # this process is the node (+ an idle waiter)
            proc.join(timeout=30)
            if "error" in result:
                raise RuntimeError(f"load generator failed: {result['error']}")
        finally:
            server.stop()
            store.close()
        verify = _verify_rate()
        appends = _store_rate(Path(tmp))
    rfq = sorted(result["rfq"])
    ws = statistics.median(result["ws"])
    write_result("api", {
        "orders_per_s_http": round(result["http"], 1),
        "orders_per_s_ws": round(ws, 1),
        "orders_per_s_ws_runs": [round(x, 1) for x in result["ws"]],
        "orders_per_node_cpu_s_ws": round(WS_REPS * WS_ORDERS / (cpu["ws_end"] - cpu["ws_start"]), 1),
        "rfq_roundtrip_p50_ms": round(statistics.median(rfq), 2),
        "rfq_roundtrip_p99_ms": round(rfq[min(len(rfq) - 1, int(len(rfq) * 0.99))], 2),
        **{f"rfq_{name}_p50_ms": round(statistics.median(values), 2)
           for name, values in result["rfq_phases"].items()},
        "verify_per_s_inprocess_1core": round(verify, 1),
        "ratio_ws_ingest_to_inprocess_verify": round(ws / verify, 4),
        "store_appends_per_s": round(appends, 1),
        "load_average_1min_at_start": round(load, 2),
        "http_orders": HTTP_ORDERS, "ws_orders": WS_ORDERS, "rfqs": RFQS, "makers": MAKERS,
    }, notes=("Node and load generator share the 2 cores (see the load average when quoting). "
              "Group commit: the actions queued while the previous group committed are applied in "
              "order and committed (SQLite WAL, synchronous=FULL) with their events in one "
              "transaction before any of them is acknowledged. RFQ round trip = 1 RFQ + 10 quotes "
              "+ 1 accept, each durably logged before its ack."))


if __name__ == "__main__":
    main()
