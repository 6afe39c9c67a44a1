"""Typed-data JSON from a wallet parses back strictly: every deviation names its field."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from clearhouse.errors import MalformedMessage
from clearhouse.messages import RFQ, Domain, Leg, Order, Side, TimeInForce, parse_typed_data
from clearhouse.types import Address, ChainId, Nonce, Price, Quantity, SeriesId, Timestamp

DOMAIN = Domain("clearhouse", "1", ChainId(31337), Address("0x" + "ab" * 20))
ALICE = Address("0x70997970C51812dc3A010C7d01b50e0d17dc79C8")
SERIES = SeriesId(b"\x01" * 32)
ORDER = Order(ALICE, SERIES, Side.BUY, Price(125_000_000), Quantity(500), TimeInForce.GTC, Nonce(7),
              Timestamp(1_800_000_000))
RFQ_MSG = RFQ(ALICE, (Leg(SERIES, 1, True), Leg(b"\x02" * 32, 2, False)), Quantity(100), Side.HIDDEN,
              Nonce(1), Timestamp(1_800_000_000))


@pytest.mark.parametrize("message", [ORDER, RFQ_MSG])
def test_round_trip(message: Any) -> None:
    assert parse_typed_data(message.to_typed_data(DOMAIN)) == (DOMAIN, message)


def _order_json(**changes: Any) -> dict[str, Any]:
    data = copy.deepcopy(ORDER.to_typed_data(DOMAIN))
    for path, value in changes.items():
        target = data
        *parents, last = path.split("__")
        for p in parents:
            target = target[p]
        if value is KeyError:
            del target[last]
        else:
            target[last] = value
    return data


@pytest.mark.parametrize(("changes", "field"), [
    ({"primaryType": "Transfer"}, "primaryType"),
    ({"types__Order": [{"name": "account", "type": "address"}]}, "types"),
    ({"domain__salt": "0x00"}, "domain"),
    ({"domain__chainId": 1.5}, "domain.chainId"),
    ({"message__price": 1.25}, "price"),
    ({"message__price": "1e6"}, "price"),
    ({"message__price": "-5"}, "price"),
    ({"message__price": True}, "price"),
    ({"message__quantity": str(2**256)}, "quantity"),
    ({"message__seriesId": "0x1234"}, "seriesId"),
    ({"message__seriesId": "0x" + "zz" * 32}, "seriesId"),
    ({"message__account": 12}, "account"),
    ({"message__bogus": 1}, "bogus"),
    ({"message__nonce": KeyError}, "nonce"),
    ({"message": []}, "message"),
])
def test_malformed_json_names_the_field(changes: dict[str, Any], field: str) -> None:
    with pytest.raises(MalformedMessage) as info:
        parse_typed_data(_order_json(**changes))
    assert info.value.field == field


def test_bad_leg_is_named_with_its_index() -> None:
    data = copy.deepcopy(RFQ_MSG.to_typed_data(DOMAIN))
    data["message"]["legs"][1]["isBuy"] = "yes"
    with pytest.raises(MalformedMessage) as info:
        parse_typed_data(data)
    assert info.value.field == "legs[1].isBuy"
