"""``contracts/lib/eip712.vy`` replays the Python vectors: same type hashes, struct hashes, digests,
recovered signers, and the same rejections with the same reasons, on both chain backends.

The vectors (``tests/vectors/messages.json``) are read as JSON only; messages are turned into ABI
tuples from their typed-data form, so nothing here depends on the Python dataclasses.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clearhouse.chain import Chain, Contract, InProcessChain
from clearhouse.errors import ContractRevert, InvalidMessage
from clearhouse.messages import Domain, Order, Side, TimeInForce, eip712, sign_digest
from clearhouse.messages.checks import compute_checksum_address
from clearhouse.messages.schema import MESSAGE_FIELDS, STRUCT_FIELDS
from clearhouse.messages.signing import check_not_expired, verify_digest
from clearhouse.types import Address, ChainId, Timestamp

VECTORS: dict[str, Any] = json.loads(
    (Path(__file__).resolve().parents[1] / "vectors" / "messages.json").read_text())
ON_CHAIN = {"Order": "order", "RFQ": "rfq", "Quote": "quote", "Accept": "accept", "Cancel": "cancel",
            "Withdrawal": "withdrawal", "Observation": "observation", "Vote": "vote", "Post": "post"}
"""Message types the module hashes on-chain (``SignIn`` is node-only) and their function suffix."""
KEYS = [bytes.fromhex(k[2:]) for k in VECTORS["testKeys"]]
MESSAGES = [v for v in VECTORS["messages"] if v["type"] in ON_CHAIN]


def _abi(typ: str, value: Any) -> Any:
    """A typed-data JSON value as the ABI encoder wants it."""
    if typ.endswith("[]"):
        fields = STRUCT_FIELDS[typ[:-2]]
        return [tuple(_abi(t, item[name]) for _, name, t in fields) for item in value]
    if typ.startswith("uint"):
        return int(value)
    if typ == "bytes32":
        return bytes.fromhex(value[2:])
    return value


def _struct(vector: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(_abi(t, vector["message"][name]) for _, name, t in MESSAGE_FIELDS[vector["type"]])


def _hex(data: bytes) -> str:
    return "0x" + bytes(data).hex()


def _python_verdict(digest: bytes, signature: bytes, signer: str, expiry: int, now: int) -> str | None:
    """The Python rules' reason for rejecting, or None if they accept."""
    try:
        check_not_expired(expiry, Timestamp(now))
        verify_digest(digest, signature, Address(signer))
    except InvalidMessage as error:
        return error.message
    return None


REVERTED = "<reverted>"


def _call_reason(contract: Contract, fn: str, *args: Any) -> tuple[Any, str | None]:
    """``(result, None)``, or ``(REVERTED, reason)`` if the call reverts."""
    try:
        return contract.call(fn, *args), None
    except ContractRevert as revert:
        return REVERTED, revert.reason


@pytest.fixture
def harness(chain: Chain) -> Contract:
    return chain.deploy("mocks/MessagesHarness", VECTORS["domain"]["name"], VECTORS["domain"]["version"])


def test_type_hashes_match(harness: Contract) -> None:
    for name, expected in VECTORS["typeHashes"].items():
        constant = "DOMAIN" if name == "EIP712Domain" else ON_CHAIN.get(name, "").upper()
        if constant:
            assert _hex(harness.call(f"{constant}_TYPEHASH")) == expected, name


def test_domain_separator_of_the_vector_domain(harness: Contract) -> None:
    domain = VECTORS["domain"]
    separator = harness.call("hash_domain", domain["chainId"], domain["verifyingContract"])
    assert _hex(separator) == VECTORS["domainSeparator"]


def test_live_domain_separator_uses_chain_id_and_self(harness: Contract, chain: Chain) -> None:
    domain = Domain(VECTORS["domain"]["name"], VECTORS["domain"]["version"], chain.chain_id, harness.address)
    assert harness.call("domain_separator") == domain.separator


def test_struct_hashes_digests_and_signers_match(harness: Contract) -> None:
    separator = bytes.fromhex(VECTORS["domainSeparator"][2:])
    for vector in MESSAGES:
        suffix = ON_CHAIN[vector["type"]]
        struct_hash = harness.call(f"hash_{suffix}", _struct(vector))
        assert _hex(struct_hash) == vector["structHash"], vector["type"]
        digest = harness.call("compute_digest", separator, struct_hash)
        assert _hex(digest) == vector["digest"], vector["type"]
        signature = bytes.fromhex(vector["signature"][2:])
        assert harness.call("recover", digest, signature) == vector["signer"]


@pytest.mark.parametrize("case", VECTORS["signatures"], ids=lambda c: c["name"])
def test_signature_vectors_accept_and_reject_alike(harness: Contract, case: dict[str, Any]) -> None:
    digest, signature = bytes.fromhex(case["digest"][2:]), bytes.fromhex(case["signature"][2:])
    recover, verify = case["recover"], case["verify"]
    expected_recover = (recover["signer"], None) if "signer" in recover else (REVERTED, recover["reason"])
    expected_verify = (True, None) if verify["ok"] else (REVERTED, verify["reason"])
    if len(signature) > 65:
        # A `Bytes[65]` argument cannot carry more: the ABI decoder reverts (without a reason)
        # before the module runs. Rejected all the same; only the reason is the decoder's.
        expected_recover = expected_verify = (REVERTED, None)
    assert _call_reason(harness, "recover", digest, signature) == expected_recover
    # the vector's expiry, moved to the chain's clock with the same distance to "now"
    expiry = harness.call("block_timestamp") + case["expiry"] - case["now"]
    assert _call_reason(harness, "verify", digest, signature, case["expectedSigner"], expiry) == expected_verify


def test_per_type_digest_and_verify_in_the_live_domain(harness: Contract, chain: Chain) -> None:
    """Each message re-signed for the deployed domain: same digest, same verdict (ok or expired)."""
    live = Domain(VECTORS["domain"]["name"], VECTORS["domain"]["version"], chain.chain_id, harness.address)
    now = harness.call("block_timestamp")
    for vector in MESSAGES:
        suffix, args = ON_CHAIN[vector["type"]], _struct(vector)
        digest = eip712.compute_digest(live.separator, bytes.fromhex(vector["structHash"][2:]))
        assert harness.call(f"{suffix}_digest", args) == digest
        extra = [vector["signer"]] if vector["type"] == "Observation" else []
        expiry = int(vector["message"]["expiry"])
        for key in (KEYS[vector["signerKey"]], KEYS[(vector["signerKey"] + 1) % len(KEYS)]):
            signature = sign_digest(digest, key)
            reason = _python_verdict(digest, signature, vector["signer"], expiry, now)
            expected = (digest, None) if reason is None else (REVERTED, reason)
            assert _call_reason(harness, f"verify_{suffix}", args, signature, *extra) == expected


def test_expiry_follows_the_chain_clock(harness: Contract, chain: Chain) -> None:
    now = harness.call("block_timestamp")
    digest = bytes(32)
    signature = sign_digest(digest, KEYS[0])
    signer = next(v["signer"] for v in VECTORS["messages"] if v["signerKey"] == 0)
    assert harness.call("verify", digest, signature, signer, now + 10) is True
    chain.time_travel(11)
    assert _call_reason(harness, "verify", digest, signature, signer, now + 10) == (REVERTED, "eip712: expired")


def test_separator_is_recomputed_after_a_fork(inprocess_chain: InProcessChain) -> None:
    """A chain-id change (a fork) must change the separator: it is never taken from a stale cache."""
    harness = inprocess_chain.deploy("mocks/MessagesHarness", "clearhouse", "1")
    before = harness.call("domain_separator")
    inprocess_chain.simulate_fork(1)
    after = harness.call("domain_separator")
    assert before != after
    assert after == Domain("clearhouse", "1", ChainId(1), harness.address).separator


_ORDERS = st.builds(
    Order, account=st.binary(min_size=20, max_size=20).map(compute_checksum_address),
    series_id=st.binary(min_size=32, max_size=32), side=st.sampled_from([Side.BUY, Side.SELL]),
    price=st.integers(0, 2**256 - 1), quantity=st.integers(1, 2**256 - 1),
    time_in_force=st.sampled_from(list(TimeInForce)), nonce=st.integers(0, 2**256 - 1),
    expiry=st.integers(0, 2**64 - 1))


@pytest.fixture(scope="module")
def fuzz_harness() -> Contract:
    return InProcessChain().deploy("mocks/MessagesHarness", "clearhouse", "1")


@settings(max_examples=40)
@given(order=_ORDERS)
def test_random_orders_hash_alike(fuzz_harness: Contract, order: Order) -> None:
    args = (order.account, order.series_id, order.side, order.price, order.quantity, order.time_in_force,
            order.nonce, order.expiry)
    assert fuzz_harness.call("hash_order", args) == order.struct_hash()
