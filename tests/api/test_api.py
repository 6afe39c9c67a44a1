"""Every endpoint's happy path through the SDK against a real uvicorn server, plus sign-in,
idempotency, rate limits and WebSocket subscribe/resume and order frames."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable

import httpx
import pytest
import websockets
from api_node import Node

from clearhouse.api.app import ApiLimits
from clearhouse.errors import (
    IdempotencyConflict,
    InsufficientCollateral,
    RateLimited,
    Unauthorized,
)
from clearhouse.messages import Side, TimeInForce
from clearhouse.sdk import AsyncClient, Client
from clearhouse.sim import market_world as mw
from clearhouse.types import Digest

_, SERIES = mw.build_listings()
USDC = mw.USDC


def client(node: Node, i: int, funds: int = 100_000) -> Client:
    c = Client(node.url, mw.KEYS[i])
    if funds:
        c.faucet(funds * USDC)
    c.sign_in()
    return c


def test_book_rfq_and_account_flow_through_the_sdk(node: Node) -> None:
    alice, bob, maker = client(node, 0), client(node, 1), client(node, 2)
    try:
        assert [s["name"] for s in alice.get_series()][:2] == ["ETH-29JAN27-3000-C", "ETH-29JAN27-3000-P"]
        assert [(e["code"], e["state"], e["settlementPrice"]) for e in alice.get_expiries()] == [
            ("ETH-29JAN27", "trading", None), ("ETH-26MAR27", "trading", None)]
        rest = alice.submit_order(SERIES[0], Side.SELL, mw.px(120), 300)["result"]
        assert rest["resting"] == "300"
        assert alice.get_book(SERIES[0])["asks"] == [[str(mw.px(120)), "300"]]
        fill = bob.submit_order(SERIES[0], Side.BUY, mw.px(121), 100, TimeInForce.IOC)["result"]
        assert [t["quantity"] for t in fill["trades"]] == ["100"]
        assert bob.get_account()["positions"] == {"0x" + SERIES[0].hex(): "100"}
        assert alice.get_account()["positions"] == {"0x" + SERIES[0].hex(): "-100"}
        assert int(alice.get_account()["requirement"]) > 0
        cancelled = alice.cancel(Digest(bytes.fromhex(rest["orderHash"][2:])))["result"]
        assert cancelled["removed"][0]["reason"] == "cancelled"
        assert alice.get_book(SERIES[0])["asks"] == []
        assert [t["seq"] for t in alice.get_trades()] == [1]
        # RFQ: register the maker, request, quote, accept
        maker.register_maker()
        rfq = bob.submit_rfq([(SERIES[0], 1, True), (SERIES[1], 1, False)], 100, Side.BUY)["result"]
        assert rfq["makers"] == [maker.account]
        delivered = maker.get_rfqs()[-1]
        assert delivered["rfqId"] == rfq["rfqId"]
        quote = maker.submit_quote(delivered, [mw.px(150), mw.px(80)], Side.SELL)["result"]
        accepted = bob.accept(Digest(bytes.fromhex(quote["quoteId"][2:])), 100)["result"]
        assert len(accepted["trades"]) == 2 and accepted["rfqId"] == rfq["rfqId"]
        before = int(bob.get_account()["balance"])
        out = bob.withdraw(1_000 * USDC)["result"]
        assert out["amount"] == str(1_000 * USDC)
        assert int(bob.get_account()["balance"]) == before - 1_000 * USDC
        assert bob.get_batches() == []
        with pytest.raises(InsufficientCollateral) as short:
            bob.withdraw(10**9 * USDC)
        assert short.value.field == "amount" or short.value.code == "insufficient_collateral"
    finally:
        for c in (alice, bob, maker):
            c.close()
    assert len(node.coordinator.trades) == 3


def test_async_client_is_the_same_implementation(node: Node) -> None:
    async def run() -> dict[str, object]:
        async with AsyncClient(node.url, mw.KEYS[3]) as c:
            await c.faucet(5_000 * USDC)
            await c.sign_in()
            await c.submit_order(SERIES[2], Side.BUY, mw.px(10), 100)
            return await c.get_account()
    assert asyncio.run(run())["balance"] == str(5_000 * USDC)


def test_sign_in_is_required_and_checked(node: Node) -> None:
    c = Client(node.url, mw.KEYS[0])
    try:
        with pytest.raises(Unauthorized) as missing:
            c.get_account()
        assert missing.value.field == "Authorization"
        challenge = c.post("/v1/auth/challenge", {"account": c.account})
        forged = mw.signed  # a signature by another key over the same SignIn
        from clearhouse.messages import parse_typed_data
        _, message = parse_typed_data(challenge["typedData"])
        bad = "0x" + forged(message, mw.ADDRESSES[1]).hex()  # type: ignore[arg-type]
        with pytest.raises(Exception) as wrong:
            c.post("/v1/auth/session", {"message": challenge["message"], "signature": bad})
        assert getattr(wrong.value, "code", None) == "wrong_signer"
        good = "0x" + mw.signed(message, c.account).hex()  # type: ignore[arg-type]
        token = c.post("/v1/auth/session", {"message": challenge["message"], "signature": good},
                       key="s1")["token"]
        again = c.post("/v1/auth/session", {"message": challenge["message"], "signature": good},
                       key="s1")["token"]
        assert again == token  # idempotent retry: the same session
        with pytest.raises(Unauthorized):  # a used challenge under a new key is refused
            c.post("/v1/auth/session", {"message": challenge["message"], "signature": good}, key="s2")
        r = httpx.get(node.url + "/v1/account", headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 200 and r.json()["account"] == c.account
        r = httpx.get(node.url + "/v1/account", headers={"Authorization": "Bearer " + "0" * 64})
        assert r.status_code == 401 and r.json()["code"] == "unauthorized"
    finally:
        c.close()


def test_signed_message_must_be_the_sessions_account(node: Node) -> None:
    alice, bob = client(node, 0), client(node, 1)
    try:
        order = mw.order(mw.make_world(accounts=0), bob.account, Side.BUY, mw.px(10), 100)
        body = {"message": order.to_typed_data(mw.DOMAIN)["message"],
                "signature": "0x" + mw.signed(order, bob.account).hex()}
        before = node.state()
        with pytest.raises(Exception) as forbidden:
            alice.post("/v1/orders", body)
        assert (getattr(forbidden.value, "code", None), forbidden.value.field) == (  # type: ignore[attr-defined]
            "forbidden", "message.account")
        assert node.state() == before
    finally:
        alice.close()
        bob.close()


def test_idempotency_key_replays_the_response_and_applies_once(node: Node) -> None:
    c = client(node, 0)
    try:
        order = mw.order(mw.make_world(accounts=0), c.account, Side.BUY, mw.px(10), 100)
        body = {"message": order.to_typed_data(mw.DOMAIN)["message"],
                "signature": "0x" + mw.signed(order, c.account).hex()}
        first = c.post("/v1/orders", body, key="order-1")
        seq = node.store.get_last_action_seq()
        again = c.post("/v1/orders", body, key="order-1")
        assert again["duplicate"] and {**again, "duplicate": False} == first
        assert node.store.get_last_action_seq() == seq and len(node.coordinator.book.resting) == 1
        other = mw.order(mw.make_world(accounts=0), c.account, Side.BUY, mw.px(20), 100)
        with pytest.raises(IdempotencyConflict):
            c.post("/v1/orders", {"message": other.to_typed_data(mw.DOMAIN)["message"],
                                  "signature": "0x" + mw.signed(other, c.account).hex()},
                   key="order-1")
        r = httpx.post(node.url + "/v1/orders", json=body,
                       headers={"Authorization": f"Bearer {c.token}"})
        assert r.status_code == 400 and r.json()["field"] == "Idempotency-Key"
        assert node.store.get_last_action_seq() == seq
    finally:
        c.close()


def test_rate_limit_per_account(make_node: Callable[..., Node]) -> None:
    node = make_node(ApiLimits(faucet=True, rate_per_second=0.5, burst=5))
    c = Client(node.url, mw.KEYS[0])
    try:
        statuses = []
        for _ in range(8):
            try:
                c.get_series()
                statuses.append(200)
            except RateLimited as exc:
                assert exc.field == "account"
                statuses.append(429)
        assert statuses == [200] * 5 + [429] * 3
        r = httpx.get(node.url + "/v1/series")
        assert r.status_code == 429 and r.json()["code"] == "rate_limited"
        assert int(r.headers["Retry-After"]) >= 1
    finally:
        c.close()


def test_websocket_subscribe_resume_and_order_frames(node: Node) -> None:
    alice, bob = client(node, 0), client(node, 1)
    try:
        for price in (120, 121, 122):
            alice.submit_order(SERIES[0], Side.SELL, mw.px(price), 100)
        for _ in range(2):
            bob.submit_order(SERIES[0], Side.BUY, mw.px(130), 100, TimeInForce.IOC)
        book = f"book:0x{SERIES[0].hex()}"

        async def session() -> tuple[list[dict[str, object]], list[dict[str, object]]]:
            async with websockets.connect(node.url.replace("http", "ws") + "/v1/ws") as ws:
                await ws.send(json.dumps({"op": "subscribe", "channel": "trades", "after": 1}))
                await ws.send(json.dumps({"op": "subscribe", "channel": book, "after": 0}))
                await ws.send(json.dumps({"op": "auth", "token": bob.token}))
                order = mw.order(mw.make_world(accounts=0), bob.account, Side.BUY, mw.px(130), 100,
                                 TimeInForce.IOC)
                await ws.send(json.dumps({"op": "order", "id": 7, "idempotencyKey": "ws-1",
                                          "message": order.to_typed_data(mw.DOMAIN)["message"],
                                          "signature": "0x" + mw.signed(order, bob.account).hex()}))
                frames: list[dict[str, object]] = []
                while not any(f.get("channel") == "trades" and f.get("seq") == 3 for f in frames) \
                        or not any(f.get("type") == "ack" for f in frames):
                    frames.append(json.loads(await asyncio.wait_for(ws.recv(), 10)))
                await ws.send(json.dumps({"op": "subscribe", "channel": "quotes:" + alice.account}))
                denied = json.loads(await asyncio.wait_for(ws.recv(), 10))
                return frames, [denied]
        frames, denied = asyncio.run(session())
        events = [f for f in frames if f.get("type") == "event"]
        trades = [f for f in events if f["channel"] == "trades"]
        assert [f["seq"] for f in trades] == [2, 3]  # resumed after 1: the backlog, then live
        books = [f["seq"] for f in events if f["channel"] == book]
        assert books == list(range(1, len(books) + 1)) and len(books) == 6
        ack = next(f for f in frames if f.get("type") == "ack")
        assert ack["id"] == 7 and len(ack["result"]["trades"]) == 1  # type: ignore[index]
        assert denied[0]["type"] == "error" and denied[0]["code"] == "forbidden"
        assert denied[0]["field"] == "channel"
    finally:
        alice.close()
        bob.close()


def test_sync_subscribe_iterator(node: Node) -> None:
    alice = client(node, 0)
    try:
        alice.submit_order(SERIES[0], Side.SELL, mw.px(120), 100)
        events = alice.subscribe([f"book:0x{SERIES[0].hex()}"])
        first = next(events)
        assert first["seq"] == 1 and first["data"]["asks"] == [[str(mw.px(120)), "100"]]  # type: ignore[index]
        events.close()
    finally:
        alice.close()


def test_restart_replays_and_keeps_sessions(make_node: Callable[..., Node]) -> None:
    node = make_node(db="restart.db")
    c = client(node, 0)
    c.submit_order(SERIES[0], Side.SELL, mw.px(120), 100, key="k-restart")
    before = node.coordinator.get_state_fingerprint()
    token = c.token
    c.close()
    node.stop()
    again = make_node(db="restart.db")
    assert again.coordinator.get_state_fingerprint() == before
    r = httpx.get(again.url + "/v1/account", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200 and r.json()["positions"] == {}
