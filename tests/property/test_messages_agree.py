"""The fast path, the reference encoder and eth_account agree on random messages.

For every message type: the fast digest equals the reference encoder's digest of the message's own
``eth_signTypedData_v4`` JSON and eth_account's; a clearhouse signature recovers in eth_account and
an eth_account signature verifies in clearhouse. Random schemas check the reference encoder itself
against eth_account. About 2,500 random messages in the default profile.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_utils import keccak
from hypothesis import given, settings
from hypothesis import strategies as st

from clearhouse.messages import (
    RFQ,
    Accept,
    Cancel,
    Choice,
    Domain,
    Leg,
    Message,
    Observation,
    Order,
    Post,
    Quote,
    QuoteLeg,
    Side,
    SignIn,
    TimeInForce,
    Vote,
    Withdrawal,
    compute_message_digest,
    eip712,
    recover_signer,
    sign,
    verify,
)
from clearhouse.messages.checks import compute_checksum_address
from clearhouse.messages.schema import MAX_LEGS
from clearhouse.types import Address, Timestamp

EXAMPLES_PER_TYPE = max(250, settings().max_examples)
"""At least 250 messages per type (10 types); a bigger profile (``soak``) raises it."""

ACCOUNTS = [Account.from_key(keccak(text=f"clearhouse agree {i}")) for i in range(6)]

u8, u32, u64, u256 = (st.integers(0, 2**bits - 1) for bits in (8, 32, 64, 256))
positive = st.integers(1, 2**256 - 1)
addresses = st.binary(min_size=20, max_size=20).map(compute_checksum_address)
bytes32 = st.one_of(st.binary(min_size=32, max_size=32), st.just(bytes(32)))
text = st.text(st.characters(exclude_categories=("Cs",)), max_size=80)
sides = st.sampled_from([Side.BUY, Side.SELL])

domains = st.builds(
    Domain,
    name=st.text(st.characters(exclude_categories=("Cs",)), max_size=16),
    version=st.text(st.characters(exclude_categories=("Cs",)), max_size=8),
    chain_id=st.integers(1, 2**64),
    verifying_contract=addresses,
)
legs = st.lists(st.builds(Leg, series_id=bytes32, ratio=st.integers(1, 2**32 - 1), is_buy=st.booleans()),
                min_size=1, max_size=MAX_LEGS).map(tuple)
quote_legs = st.lists(
    st.builds(QuoteLeg, series_id=bytes32, ratio=st.integers(1, 2**32 - 1), is_buy=st.booleans(), price=u256),
    min_size=1, max_size=MAX_LEGS).map(tuple)

MESSAGES: dict[str, st.SearchStrategy[Any]] = {
    "Order": st.builds(Order, account=addresses, series_id=bytes32, side=sides, price=u256, quantity=positive,
                       time_in_force=st.sampled_from(list(TimeInForce)), nonce=u256, expiry=u64),
    "RFQ": st.builds(RFQ, taker=addresses, legs=legs, size=positive, side=st.sampled_from(list(Side)),
                     nonce=u256, expiry=u64),
    "Quote": st.builds(Quote, maker=addresses, taker=addresses, rfq_id=bytes32, legs=quote_legs, side=sides,
                       size=positive, nonce=u256, expiry=u64),
    "Accept": st.builds(Accept, taker=addresses, quote_id=bytes32, size=positive, nonce=u256, expiry=u64),
    "Cancel": st.builds(Cancel, account=addresses, order_hash=bytes32, nonce=u256, expiry=u64),
    "Withdrawal": st.builds(Withdrawal, account=addresses,
                            recipient=addresses.filter(lambda a: int(a, 16) != 0), amount=positive,
                            nonce=u256, expiry=u64),
    "Observation": st.builds(Observation, feed_id=bytes32, round=u64, price=u256, timestamp=u64, expiry=u64),
    "Vote": st.builds(Vote, voter=addresses, proposal_id=u256, choice=st.sampled_from(list(Choice)),
                      reason=text, expiry=u64),
    "Post": st.builds(Post, author=addresses, proposal_id=u256, parent=bytes32, body=text, expiry=u64),
    "SignIn": u64.flatmap(lambda issued: st.builds(
        SignIn, account=addresses, node=st.text(max_size=60), uri=text, session_nonce=bytes32,
        issued_at=st.just(issued), expiry=st.integers(issued, 2**64 - 1))),
}


def _eth_account_digest(typed_data: dict[str, Any]) -> bytes:
    signable = encode_typed_data(full_message=typed_data)
    return bytes(keccak(b"\x19" + signable.version + signable.header + signable.body))


@pytest.mark.parametrize("type_name", sorted(MESSAGES))
def test_fast_reference_and_eth_account_agree(type_name: str) -> None:
    @settings(max_examples=EXAMPLES_PER_TYPE)
    @given(message=MESSAGES[type_name], domain=domains, account=st.sampled_from(ACCOUNTS))
    def check(message: Message, domain: Domain, account: Any) -> None:
        typed_data = json.loads(json.dumps(message.to_typed_data(domain)))  # must survive JSON
        digest = compute_message_digest(domain, message)
        assert message.struct_hash() == eip712.hash_struct(type_name, typed_data["message"],
                                                           typed_data["types"])
        assert digest == eip712.hash_typed_data(typed_data)
        assert digest == _eth_account_digest(typed_data)

        ours = sign(domain, message, account.key)
        signable = encode_typed_data(full_message=typed_data)
        assert Account.recover_message(signable, signature=ours) == account.address
        theirs = bytes(Account.sign_message(signable, account.key).signature)
        assert recover_signer(domain, message, theirs) == account.address
        assert verify(domain, message, theirs, Address(account.address), Timestamp(0)) == digest

    check()


# --- the reference encoder on arbitrary schemas --------------------------------------------------

_ATOMIC = st.one_of(
    st.sampled_from(["bool", "address", "string", "bytes"]),
    st.integers(1, 32).map(lambda n: f"uint{8 * n}"),
    st.integers(1, 32).map(lambda n: f"int{8 * n}"),
    st.integers(1, 32).map(lambda n: f"bytes{n}"),
)
_NAMES = ["Zed", "Alpha", "Mail", "Person", "B", "Aa", "Order2", "Wallet"]


def _value(draw: st.DrawFn, typ: str, schema: dict[str, list[dict[str, str]]]) -> Any:
    if typ.endswith("]"):
        inner, length = typ[: typ.rindex("[")], typ[typ.rindex("[") + 1 : -1]
        size = int(length) if length else draw(st.integers(0, 3))
        return [_value(draw, inner, schema) for _ in range(size)]
    if typ in schema:
        return {m["name"]: _value(draw, m["type"], schema) for m in schema[typ]}
    if typ == "bool":
        return draw(st.booleans())
    if typ == "address":
        return draw(addresses)
    if typ == "string":
        return draw(text)
    if typ == "bytes":
        return draw(st.binary(max_size=70))
    if typ.startswith("bytes"):
        n = int(typ[5:])
        return draw(st.binary(min_size=n, max_size=n))
    bits = int(typ.split("int", 1)[1])
    low, high = (0, 2**bits - 1) if typ.startswith("u") else (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1)
    return draw(st.integers(low, high))


@st.composite
def _typed_data(draw: st.DrawFn) -> tuple[str, dict[str, list[dict[str, str]]], dict[str, Any]]:
    names = draw(st.lists(st.sampled_from(_NAMES), min_size=1, max_size=4, unique=True))
    schema: dict[str, list[dict[str, str]]] = {}
    for i, name in enumerate(names):
        members = []
        for j in range(draw(st.integers(1, 4))):
            typ = draw(_ATOMIC)
            if draw(st.booleans()):
                typ += draw(st.sampled_from(["[]", "[2]", "[1][]"]))
            members.append({"name": f"m{j}", "type": typ})
        for later in names[i + 1 :]:  # acyclic; every type reachable from names[0]
            if later == names[i + 1] or draw(st.booleans()):
                members.append({"name": f"s{len(members)}", "type": later + draw(st.sampled_from(["", "[]"]))})
        schema[name] = members
    return names[0], schema, _value(draw, names[0], schema)


@settings(max_examples=max(150, settings().max_examples))
@given(case=_typed_data())
def test_reference_encoder_matches_eth_account_on_random_schemas(
    case: tuple[str, dict[str, list[dict[str, str]]], dict[str, Any]],
) -> None:
    primary, schema, message = case
    domain = {"name": "n", "version": "1", "chainId": 1, "verifyingContract": ACCOUNTS[0].address}
    signable = encode_typed_data(domain_data=domain, message_types=schema, message_data=message)
    assert eip712.hash_struct(primary, message, schema) == bytes(signable.body)
    assert eip712.compute_domain_separator(domain) == bytes(signable.header)
