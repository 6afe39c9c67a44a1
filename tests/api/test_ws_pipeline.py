"""Pipelined WebSocket frames against a real uvicorn node: frames sent without waiting are all
answered, in the order sent, each ack carrying its committed log seq; refused frames in between
change nothing and do not disturb their neighbours; the log replays to the node's state."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import websockets
from api_node import Node

from clearhouse.messages import Side
from clearhouse.node.coordinator import Coordinator
from clearhouse.sdk import Client
from clearhouse.sim import market_world as mw

_, SERIES = mw.build_listings()


def test_frames_in_flight_are_answered_in_order_and_committed(node: Node) -> None:
    bob = Client(node.url, mw.KEYS[1])
    bob.faucet(1_000_000 * mw.USDC)
    bob.sign_in()
    world = mw.make_world(accounts=0)
    orders = [mw.order(world, bob.account, Side.BUY, mw.px(50 + i), 100) for i in range(30)]

    def frame(i: int, signer: Any = bob.account, order: Any = None) -> str:
        o = order or orders[i]
        return json.dumps({"op": "order", "id": i, "message": o.to_typed_data(mw.DOMAIN)["message"],
                           "signature": "0x" + mw.signed(o, signer).hex()})
    frames = [frame(i) for i in range(30)]
    frames[10] = frame(10, signer=mw.ADDRESSES[0])  # signed by another key
    frames[11] = "{"                                 # not JSON
    frames[12] = frame(12, order=orders[0])          # a replay of frame 0's order
    first = node.store.get_last_action_seq()

    async def session() -> list[dict[str, Any]]:
        async with websockets.connect(node.url.replace("http", "ws") + "/v1/ws") as ws:
            await ws.send(json.dumps({"op": "auth", "token": bob.token}))
            assert json.loads(await ws.recv())["type"] == "authed"
            for text in frames:
                await ws.send(text)
            await ws.send(json.dumps({"op": "ping", "id": "p"}))
            return [json.loads(await asyncio.wait_for(ws.recv(), 30)) for _ in range(31)]
    try:
        answers = asyncio.run(session())
    finally:
        bob.close()
    assert [a["id"] for a in answers] == [*range(11), None, *range(12, 30), "p"]
    assert [a["type"] for a in answers[10:13]] == ["error"] * 3
    assert [answers[10]["code"], answers[11]["code"]] == ["wrong_signer", "invalid_request"]
    assert answers[12]["code"] == "duplicate_order" and answers[-1]["type"] == "pong"
    acks = [a for a in answers[:-1] if a["type"] == "ack"]
    assert [a["seq"] for a in acks] == list(range(first + 1, first + 28))  # committed, in order
    assert node.store.get_last_action_seq() == first + 27
    replayed = Coordinator(node.store, mw.DOMAIN, mw.build_listings()[0], mw.UNIT)
    replayed.replay()
    assert replayed.get_state_fingerprint() == node.coordinator.get_state_fingerprint()


def test_the_server_declines_permessage_deflate(node: Node) -> None:
    """A client offering compression gets none: every frame goes out uncompressed."""
    async def negotiated() -> str | None:
        async with websockets.connect(node.url.replace("http", "ws") + "/v1/ws",
                                      compression="deflate") as ws:
            return ws.response.headers.get("Sec-WebSocket-Extensions")  # type: ignore[union-attr]
    assert asyncio.run(negotiated()) is None



def test_a_node_process_freezes_its_startup_heap() -> None:
    """``ServerThread.start(freeze_heap=True)`` (what ``serve``, i.e. ``clearhouse node``, does
    too) puts the heap it starts with out of the cyclic collector's reach; by default it does
    not (tests start many apps in one process)."""
    import gc

    from fastapi import FastAPI

    from clearhouse.api.server import ServerThread

    gc.unfreeze()
    try:
        plain = ServerThread.start(FastAPI())
        plain.stop()
        assert gc.get_freeze_count() == 0
        frozen = ServerThread.start(FastAPI(), freeze_heap=True)
        frozen.stop()
        assert gc.get_freeze_count() > 10_000  # the imported libraries at least
    finally:
        gc.unfreeze()
