"""Standard wallets and clearhouse agree on every message type, off-chain and in the Vyper module.

Each message of the shared vectors is exported with ``to_typed_data()`` for the live domain of a
deployed verifier and signed by two independent wallet libraries — eth_account (Python) and ethers
(JavaScript, run under node). Their signatures verify in clearhouse and in the contract; clearhouse's
own signatures recover to the same signer in ethers; and the typed-data JSON parses back to the same
message.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account

from clearhouse.chain import Chain, Contract
from clearhouse.errors import ContractRevert, WrongSigner
from clearhouse.messages import (
    Domain,
    Message,
    Observation,
    compute_message_digest,
    parse_typed_data,
    sign,
    to_abi_tuple,
    verify,
)
from clearhouse.messages.schema import compute_typed_data_types
from clearhouse.types import Address, Timestamp

ROOT = Path(__file__).resolve().parents[2]
VECTORS = json.loads((ROOT / "tests" / "vectors" / "messages.json").read_text())
ETHERS = ROOT / "tests" / "js" / "ethers_wallet.mjs"
ON_CHAIN = {"Order": "order", "RFQ": "rfq", "Quote": "quote", "Accept": "accept", "Cancel": "cancel",
            "Withdrawal": "withdrawal", "Observation": "observation", "Vote": "vote", "Post": "post"}


def _vector_messages(live: Domain, now: int) -> list[tuple[Message, bytes]]:
    """The vectors' messages moved into the live domain, unexpired, with their signer's key."""
    keys = [bytes.fromhex(k[2:]) for k in VECTORS["testKeys"]]
    out = []
    for vector in VECTORS["messages"]:
        body = dict(vector["message"])
        body["expiry"] = str(now + 3600)
        if vector["type"] == "Observation":
            body["timestamp"] = str(now)
        if vector["type"] == "SignIn":
            body["issuedAt"] = str(now)
        typed = {"types": compute_typed_data_types(vector["type"]), "primaryType": vector["type"],
                 "domain": live.to_typed_data(), "message": body}
        _, message = parse_typed_data(typed)
        out.append((message, keys[vector["signerKey"]]))
    return out


def _ethers(key: bytes, sign_: list[dict[str, Any]], recover: list[dict[str, Any]]) -> dict[str, Any]:
    if shutil.which("node") is None or not (ROOT / "tools/js/node_modules/ethers").is_dir():
        pytest.skip("node or ethers missing: `make setup-js` installs them")
    done = subprocess.run(["node", str(ETHERS)], input=json.dumps(
        {"key": "0x" + key.hex(), "sign": sign_, "recover": recover}),
        capture_output=True, text=True, timeout=120, check=False)
    if done.returncode != 0:
        raise AssertionError(f"ethers failed: {done.stderr}")
    return json.loads(done.stdout)  # type: ignore[no-any-return]


def _verify_in_contract(harness: Contract, message: Message, signature: bytes, signer: str) -> bytes:
    extra = [signer] if isinstance(message, Observation) else []
    return bytes(harness.call(f"verify_{ON_CHAIN[type(message).__name__]}", to_abi_tuple(message),
                              signature, *extra))


@pytest.fixture
def harness(chain: Chain) -> Contract:
    return chain.deploy("mocks/MessagesHarness", VECTORS["domain"]["name"], VECTORS["domain"]["version"])


def test_typed_data_round_trips_through_json(harness: Contract, chain: Chain) -> None:
    live = Domain(VECTORS["domain"]["name"], VECTORS["domain"]["version"], chain.chain_id, harness.address)
    for message, _ in _vector_messages(live, chain.now()):
        typed = json.loads(json.dumps(message.to_typed_data(live)))
        assert parse_typed_data(typed) == (live, message)


def test_eth_account_signatures_verify_in_clearhouse_and_the_contract(harness: Contract, chain: Chain) -> None:
    live = Domain(VECTORS["domain"]["name"], VECTORS["domain"]["version"], chain.chain_id, harness.address)
    now = Timestamp(chain.now())
    for message, key in _vector_messages(live, now):
        signer = Address(Account.from_key(key).address)
        signed = Account.sign_typed_data(key, full_message=message.to_typed_data(live))
        signature = bytes(signed.signature)
        digest = verify(live, message, signature, signer, now)
        assert digest == bytes(signed.message_hash)
        if type(message).__name__ in ON_CHAIN:
            assert _verify_in_contract(harness, message, signature, signer) == digest


def test_ethers_signatures_verify_here_and_ours_verify_in_ethers(harness: Contract, chain: Chain) -> None:
    live = Domain(VECTORS["domain"]["name"], VECTORS["domain"]["version"], chain.chain_id, harness.address)
    now = Timestamp(chain.now())
    messages = _vector_messages(live, now)
    by_key: dict[bytes, list[Message]] = {}
    for message, key in messages:
        by_key.setdefault(key, []).append(message)
    for key, batch in by_key.items():
        signer = Address(Account.from_key(key).address)
        ours = [sign(live, m, key) for m in batch]
        result = _ethers(key, [m.to_typed_data(live) for m in batch],
                         [{"typedData": m.to_typed_data(live), "signature": "0x" + s.hex()}
                          for m, s in zip(batch, ours, strict=True)])
        assert result["signers"] == [signer] * len(batch)
        for message, sig_hex in zip(batch, result["signatures"], strict=True):
            signature = bytes.fromhex(sig_hex[2:])
            digest = verify(live, message, signature, signer, now)
            assert digest == compute_message_digest(live, message)
            if type(message).__name__ in ON_CHAIN:
                assert _verify_in_contract(harness, message, signature, signer) == digest


def test_a_wallet_signature_for_another_domain_is_refused_everywhere(harness: Contract, chain: Chain) -> None:
    live = Domain(VECTORS["domain"]["name"], VECTORS["domain"]["version"], chain.chain_id, harness.address)
    other = Domain(live.name, live.version, chain.chain_id, Address("0x" + "11" * 20))
    now = Timestamp(chain.now())
    message, key = next(m for m in _vector_messages(live, now) if type(m[0]).__name__ == "Order")
    signer = Address(Account.from_key(key).address)
    signature = bytes(Account.sign_typed_data(key, full_message=message.to_typed_data(other)).signature)
    with pytest.raises(WrongSigner):
        verify(live, message, signature, signer, now)
    with pytest.raises(ContractRevert) as info:
        _verify_in_contract(harness, message, signature, signer)
    assert info.value.reason == "eip712: wrong signer"
