"""A hostile-input corpus against the real server: every bad request is a 4xx with a machine-readable
``code`` and ``field``, never a 5xx, and changes nothing (market state and action log compared
before and after)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
import websockets
from api_node import Node

from clearhouse.messages import Order, Side, TimeInForce
from clearhouse.sdk import Client
from clearhouse.sim import market_world as mw
from clearhouse.types import Nonce, Price, Quantity, SeriesId, Timestamp

_, SERIES = mw.build_listings()


def signed_body(order: Order, account: str) -> dict[str, Any]:
    return {"message": order.to_typed_data(mw.DOMAIN)["message"],
            "signature": "0x" + mw.signed(order, account).hex()}  # type: ignore[arg-type]


def good_order(nonce: int = 99, **changes: Any) -> Order:
    fields: dict[str, Any] = {"account": mw.ADDRESSES[0], "series_id": SERIES[0], "side": Side.BUY,
                              "price": Price(mw.px(10)), "quantity": Quantity(100),
                              "time_in_force": TimeInForce.GTC, "nonce": Nonce(nonce),
                              "expiry": Timestamp(mw.NOW + 3600)}
    fields.update(changes)
    return Order(**fields)


def with_message(**changes: Any) -> dict[str, Any]:
    body = signed_body(good_order(), mw.ADDRESSES[0])
    body["message"] = {**body["message"], **changes}
    return body


def drop(key: str) -> dict[str, Any]:
    body = signed_body(good_order(), mw.ADDRESSES[0])
    del body["message"][key]
    return body


RAW_CASES: list[tuple[str, bytes, int, str]] = [
    ("truncated JSON", b'{"message": {', 400, "body"),
    ("not JSON", b"hello", 422, "body"),
    ("NaN", b'{"message": NaN, "signature": "0x00"}', 422, "body"),
    ("Infinity", b'{"message": {"price": Infinity}}', 422, "body"),
    ("duplicate keys", b'{"signature": "0x", "signature": "0x"}', 422, "body"),
    ("invalid UTF-8", b'{"message": "\xff\xfe"}', 422, "body"),
    ("deep nesting", b"[" * 5000 + b"]" * 5000, 422, "body"),
]

JSON_CASES: list[tuple[str, Any, str]] = [
    ("array body", [], "body"),
    ("string body", "order", "body"),
    ("empty object", {}, "message"),
    ("unknown top-level field", {**signed_body(good_order(), mw.ADDRESSES[0]), "extra": 1}, "extra"),
    ("unknown message field", with_message(leverage="100"), "message.leverage"),
    ("missing field", drop("nonce"), "message.nonce"),
    ("price as number", with_message(price=100000000), "message.price"),
    ("price as float string", with_message(price="1.5"), "message.price"),
    ("price negative", with_message(price="-1"), "message.price"),
    ("price 10^80", with_message(price="1" + "0" * 80), "message.price"),
    ("price 2^256", with_message(price=str(2**256)), "message.price"),
    ("price leading zero", with_message(price="0100"), "message.price"),
    ("quantity zero", with_message(quantity="0"), "message.quantity"),
    ("side as string", with_message(side="1"), "message.side"),
    ("side out of range", with_message(side=7), "message.side"),
    ("side as bool", with_message(side=True), "message.side"),
    ("side as float", with_message(side=1.0), "message.side"),
    ("expiry above uint64", with_message(expiry=str(2**64)), "message.expiry"),
    ("series id short", with_message(seriesId="0x1234"), "message.seriesId"),
    ("account not hex", with_message(account="0x" + "zz" * 20), "message.account"),
    ("unlisted series", signed_body(good_order(series_id=SeriesId(b"\x11" * 32)), mw.ADDRESSES[0]),
     "message.seriesId"),
    ("bad signature length", {**signed_body(good_order(), mw.ADDRESSES[0]), "signature": "0x00"},
     "signature"),
    ("high-s signature", {**signed_body(good_order(), mw.ADDRESSES[0]),
                          "signature": "0x" + "11" * 32 + "ff" * 32 + "1b"}, "signature"),
    ("bad v", {**signed_body(good_order(), mw.ADDRESSES[0]),
               "signature": signed_body(good_order(), mw.ADDRESSES[0])["signature"][:-2] + "1d"},
     "signature"),
    ("someone else's signature", signed_body(good_order(), mw.ADDRESSES[1]), "signature"),
    ("altered after signing", with_message(quantity="200"), "signature"),
    ("expired order", signed_body(good_order(expiry=Timestamp(1_000)), mw.ADDRESSES[0]),
     "message.expiry"),
    ("off-tick price", signed_body(good_order(price=Price(mw.px(10) + 1)), mw.ADDRESSES[0]),
     "message.price"),
    ("order too large", signed_body(good_order(quantity=Quantity(10**30)), mw.ADDRESSES[0]),
     "message.quantity"),
]


@pytest.fixture
def session(node: Node) -> Client:
    c = Client(node.url, mw.KEYS[0])
    c.faucet(1_000 * mw.USDC)
    c.sign_in()
    yield c  # type: ignore[misc]
    c.close()


def headers(c: Client, key: str = "k") -> dict[str, str]:
    return {"Authorization": f"Bearer {c.token}", "Idempotency-Key": key,
            "Content-Type": "application/json"}


def assert_refused(r: httpx.Response, field: str | None = None) -> dict[str, Any]:
    assert 400 <= r.status_code < 500, (r.status_code, r.text)
    body = r.json()
    assert set(body) == {"code", "field", "message"}, body
    assert isinstance(body["code"], str) and body["code"] and body["field"], body
    if field is not None:
        assert body["field"] == field, body
    return body  # type: ignore[no-any-return]


@pytest.mark.parametrize(("name", "raw", "status", "field"), RAW_CASES, ids=[c[0] for c in RAW_CASES])
def test_malformed_bodies(node: Node, session: Client, name: str, raw: bytes, status: int,
                          field: str) -> None:
    before = node.state()
    r = httpx.post(node.url + "/v1/orders", content=raw, headers=headers(session))
    body = assert_refused(r, field)
    assert r.status_code in (400, 422) and body["code"] == "invalid_request"
    assert node.state() == before


@pytest.mark.parametrize(("name", "payload", "field"), JSON_CASES, ids=[c[0] for c in JSON_CASES])
def test_invalid_orders(node: Node, session: Client, name: str, payload: Any, field: str) -> None:
    before = node.state()
    r = httpx.post(node.url + "/v1/orders", json=payload, headers=headers(session, name))
    assert_refused(r, field)
    assert node.state() == before


def test_the_control_order_is_accepted(node: Node, session: Client) -> None:
    """The corpus is built from a valid order: it is accepted, then refused as a replay."""
    body = signed_body(good_order(), mw.ADDRESSES[0])
    r = httpx.post(node.url + "/v1/orders", json=body, headers=headers(session, "ok"))
    assert r.status_code == 200, r.text
    before = node.state()
    replay = httpx.post(node.url + "/v1/orders", json=body, headers=headers(session, "again"))
    assert assert_refused(replay)["code"] in ("duplicate_order", "replayed")
    assert replay.status_code == 409 and node.state() == before


def test_limits_and_headers(node: Node, session: Client) -> None:
    before = node.state()
    big = httpx.post(node.url + "/v1/orders", content=b'{"a":"' + b"x" * 70_000 + b'"}',
                     headers=headers(session))
    assert big.status_code == 413 and assert_refused(big)["code"] == "payload_too_large"
    legs = [{"seriesId": "0x" + SERIES[0].hex(), "ratio": 1, "isBuy": True}] * 10_000
    rfq = {"message": {"taker": session.account, "legs": legs, "size": "100", "side": 1,
                       "nonce": "1", "expiry": "1"}, "signature": "0x" + "00" * 65}
    huge = httpx.post(node.url + "/v1/rfqs", json=rfq, headers=headers(session))
    assert huge.status_code == 413
    rfq["message"]["legs"] = legs[:9]
    nine = httpx.post(node.url + "/v1/rfqs", json=rfq, headers=headers(session))
    assert assert_refused(nine, "message.legs")["code"] == "invalid_request"
    form = httpx.post(node.url + "/v1/orders", content=b"a=1",
                      headers={**headers(session), "Content-Type": "application/x-www-form-urlencoded"})
    assert assert_refused(form, "Content-Type")["code"] == "invalid_request"
    body = signed_body(good_order(nonce=5), mw.ADDRESSES[0])
    nokey = httpx.post(node.url + "/v1/orders", json=body,
                       headers={"Authorization": f"Bearer {session.token}"})
    assert assert_refused(nokey, "Idempotency-Key")["code"] == "missing_idempotency_key"
    longkey = httpx.post(node.url + "/v1/orders", json=body, headers=headers(session, "k" * 129))
    assert assert_refused(longkey, "Idempotency-Key")["code"] == "missing_idempotency_key"
    noauth = httpx.post(node.url + "/v1/orders", json=body, headers={"Idempotency-Key": "x"})
    assert noauth.status_code == 401 and assert_refused(noauth, "Authorization")
    missing = httpx.get(node.url + "/v1/nothing")
    assert missing.status_code == 404 and assert_refused(missing, "path")["code"] == "not_found"
    wrong_method = httpx.delete(node.url + "/v1/orders")
    assert wrong_method.status_code == 405 and assert_refused(wrong_method, "path")
    for path in ("/v1/book/0x" + "11" * 32, "/v1/book/xyz", "/v1/trades?limit=0",
                 "/v1/trades?after=-1", "/v1/trades?limit=abc"):
        assert_refused(httpx.get(node.url + path))
    assert node.state() == before


def test_sign_in_hostile(node: Node) -> None:
    before = node.state()
    for body, field in (({"account": "0x12"}, "account"), ({}, "account"),
                        ({"account": mw.ADDRESSES[0], "x": 1}, "x")):
        r = httpx.post(node.url + "/v1/auth/challenge", json=body, headers={"Idempotency-Key": "c"})
        assert_refused(r, field)
    c = Client(node.url, mw.KEYS[0])
    try:
        challenge = c.post("/v1/auth/challenge", {"account": c.account})
        expired = {**challenge["message"], "expiry": str(int(challenge["message"]["issuedAt"]) - 1)}
        for message in (expired, {**challenge["message"], "sessionNonce": "0x" + "22" * 32},
                        {**challenge["message"], "uri": "http://evil"}):
            r = httpx.post(node.url + "/v1/auth/session", headers={"Idempotency-Key": "s"},
                           json={"message": message, "signature": "0x" + "11" * 65})
            assert_refused(r)
        r = httpx.post(node.url + "/v1/auth/session", headers={"Idempotency-Key": "s"},
                       json={"message": challenge["message"], "signature": "0x" + "11" * 65})
        assert assert_refused(r, "signature")["code"] in ("invalid_signature", "wrong_signer")
        assert node.state()[0] == before[0]  # (the challenge itself is a logged action)
    finally:
        c.close()


def test_websocket_hostile_frames(node: Node, session: Client) -> None:
    before = node.state()

    async def run() -> list[dict[str, Any]]:
        replies = []
        async with websockets.connect(node.url.replace("http", "ws") + "/v1/ws") as ws:
            frames: list[Any] = [
                "not json", "[1,2]", '{"op": "fly"}', '{"op": "subscribe", "channel": "nope"}',
                '{"op": "subscribe", "channel": "book:0x' + "11" * 32 + '"}',
                '{"op": "subscribe", "channel": "trades", "after": -1}',
                '{"op": "subscribe", "channel": "trades", "after": 1.5}',
                '{"op": "subscribe", "channel": "trades", "extra": 1}',
                json.dumps({"op": "order", **signed_body(good_order(), mw.ADDRESSES[0])}),
                '{"op": "auth", "token": "bad"}',
                '{"op": "ping", "id": {"a": 1}}',
                '{"op": "ping", "x": NaN}',
            ]
            for frame in frames:
                await ws.send(frame)
                replies.append(json.loads(await asyncio.wait_for(ws.recv(), 10)))
            await ws.send(json.dumps({"op": "auth", "token": session.token}))
            assert json.loads(await ws.recv())["type"] == "authed"
            bad = {"op": "order", "id": 1, **with_message(price="1e3")}
            await ws.send(json.dumps(bad))
            replies.append(json.loads(await asyncio.wait_for(ws.recv(), 10)))
            other = {"op": "order", "id": 2, **signed_body(good_order(account=mw.ADDRESSES[1]),
                                                            mw.ADDRESSES[1])}
            await ws.send(json.dumps(other))
            replies.append(json.loads(await asyncio.wait_for(ws.recv(), 10)))
            await ws.send("x" * 70_000)
            replies.append(json.loads(await asyncio.wait_for(ws.recv(), 10)))
        return replies
    replies = asyncio.run(run())
    for reply in replies:
        assert reply["type"] == "error" and reply["code"] and reply["field"], reply
    assert replies[-3]["field"] == "message.price"
    assert replies[-2]["code"] == "forbidden"
    assert replies[-1]["code"] == "payload_too_large"
    assert node.state() == before
