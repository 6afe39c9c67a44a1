"""Emit ``tests/vectors/messages.json`` from the Python rules and keep it current.

The vectors are deterministic (fixed seed, RFC 6979 signatures) so the file can be committed;
``tests/contracts/test_eip712_contract.py`` replays them against the Vyper module. Regenerate with
``CLEARHOUSE_WRITE_VECTORS=1 pytest tests/unit/test_message_vectors.py`` after a deliberate change.
"""

from __future__ import annotations

import json
import os
import random
from pathlib import Path
from typing import Any

from eth_account import Account
from eth_utils import keccak

from clearhouse.errors import InvalidMessage, InvalidSignature
from clearhouse.messages import (
    DOMAIN_TYPEHASH,
    MAX_LEGS,
    RFQ,
    TYPEHASHES,
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
    sign,
    sign_digest,
    verify_digest,
)
from clearhouse.messages.checks import compute_checksum_address
from clearhouse.messages.fast import SECP256K1_N, recover_address_bytes
from clearhouse.messages.schema import MESSAGE_FIELDS, compute_typed_data_types
from clearhouse.messages.signing import check_not_expired
from clearhouse.types import Address, ChainId, Timestamp

VECTORS = Path(__file__).resolve().parents[1] / "vectors" / "messages.json"
SEED = 712
PER_TYPE = 4
NOW = 1_790_000_000
DOMAIN = Domain("clearhouse", "1", ChainId(31337), Address("0x5FbDB2315678afecb367f032d93F642f64180aa3"))
KEYS = [keccak(text=f"clearhouse test vector key {i}") for i in range(3)]
"""Public test keys (never fund them): the contract test re-signs live-domain messages with them."""
ADDRESSES = [Address(Account.from_key(k).address) for k in KEYS]
_ALPHABET = "abcXYZ 019 \n\t\"'\\é€🙂漢"
_P = 2**256 - 2**32 - 977


def _uint(rng: random.Random, bits: int, minimum: int = 0) -> int:
    pick = rng.randrange(5)
    value = [0, 1, 2**bits - 1, rng.getrandbits(bits), rng.getrandbits(min(bits, 40))][pick]
    return max(value, minimum)


def _expiry(rng: random.Random) -> int:
    return rng.choice([2**64 - 1, NOW + rng.randrange(1, 10**6), NOW - rng.randrange(1, 10**6),
                       rng.getrandbits(64), 0])


def _text(rng: random.Random, longest: int) -> str:
    return "".join(rng.choice(_ALPHABET) for _ in range(rng.randrange(longest)))


def _random_message(rng: random.Random, type_name: str, signer: Address) -> Message:
    b32 = lambda: rng.choice([bytes(32), rng.randbytes(32)])  # noqa: E731
    addr = lambda: rng.choice([*ADDRESSES, Address("0x" + rng.randbytes(20).hex())])  # noqa: E731
    legs = rng.randrange(1, MAX_LEGS + 1)
    side = Side(rng.randrange(1, 3))
    match type_name:
        case "Order":
            return Order(signer, b32(), side, _uint(rng, 256), _uint(rng, 256, 1),
                         TimeInForce(rng.randrange(4)), _uint(rng, 256), _expiry(rng))
        case "RFQ":
            return RFQ(signer, tuple(Leg(b32(), _uint(rng, 32, 1), rng.random() < 0.5) for _ in range(legs)),
                       _uint(rng, 256, 1), Side(rng.randrange(3)), _uint(rng, 256), _expiry(rng))
        case "Quote":
            quote_legs = tuple(QuoteLeg(b32(), _uint(rng, 32, 1), rng.random() < 0.5, _uint(rng, 256))
                               for _ in range(legs))
            return Quote(signer, addr(), b32(), quote_legs, side, _uint(rng, 256, 1), _uint(rng, 256),
                         _expiry(rng))
        case "Accept":
            return Accept(signer, b32(), _uint(rng, 256, 1), _uint(rng, 256), _expiry(rng))
        case "Cancel":
            return Cancel(signer, b32(), _uint(rng, 256), _expiry(rng))
        case "Withdrawal":
            return Withdrawal(signer, rng.choice(ADDRESSES), _uint(rng, 256, 1), _uint(rng, 256), _expiry(rng))
        case "Observation":
            return Observation(b32(), _uint(rng, 64), _uint(rng, 256), _uint(rng, 64), _expiry(rng))
        case "Vote":
            return Vote(signer, _uint(rng, 256), Choice(rng.randrange(3)), _text(rng, 120), _expiry(rng))
        case "Post":
            return Post(signer, _uint(rng, 256), b32(), _text(rng, 300), _expiry(rng))
        case _:
            issued = _uint(rng, 63)
            return SignIn(signer, _text(rng, 40), "https://" + _text(rng, 60), b32(), issued,
                          max(issued, _expiry(rng)))


def _outcome(digest: bytes, signature: bytes, signer: str, expiry: int, now: int) -> dict[str, Any]:
    """What the Python rules say about ``recover`` and ``verify`` of one signature."""
    try:
        recovered: dict[str, Any] = {"signer": compute_checksum_address(recover_address_bytes(digest, signature))}
    except InvalidSignature as error:
        recovered = {"reason": error.message}
    try:
        check_not_expired(expiry, Timestamp(now))
        verify_digest(digest, signature, Address(signer))
        verified: dict[str, Any] = {"ok": True}
    except InvalidMessage as error:
        verified = {"ok": False, "code": error.code, "reason": error.message}
    return {"recover": recovered, "verify": verified}


def _not_an_x_coordinate() -> int:
    r = 1
    while pow((r**3 + 7) % _P, (_P - 1) // 2, _P) == 1:
        r += 1
    return r


def _signature_cases(rng: random.Random) -> list[dict[str, Any]]:
    """One digest, many signatures: every acceptance and rejection path, with its reason."""
    order = _random_message(rng, "Order", ADDRESSES[0])
    digest = compute_message_digest(DOMAIN, order)
    good = sign_digest(digest, KEYS[0])
    r, s, v = good[:32], int.from_bytes(good[32:64], "big"), good[64]
    word = lambda n: n.to_bytes(32, "big")  # noqa: E731
    other_chain = Domain(DOMAIN.name, DOMAIN.version, ChainId(1), DOMAIN.verifying_contract)
    other_contract = Domain(DOMAIN.name, DOMAIN.version, DOMAIN.chain_id, Address("0x" + "ab" * 20))
    expiry = NOW + 60
    cases: list[tuple[str, bytes, int, int]] = [
        ("valid", good, expiry, NOW),
        ("valid at the expiry second", good, expiry, expiry),
        ("expired", good, expiry, expiry + 1),
        ("expired is checked before the signature", good[:64], expiry, expiry + 1),
        ("64 bytes", good[:64], expiry, NOW),
        ("66 bytes", good + b"\x00", expiry, NOW),
        ("empty", b"", expiry, NOW),
        ("v is the raw recovery id", good[:64] + bytes((v - 27,)), expiry, NOW),
        ("v = 0", good[:64] + b"\x00", expiry, NOW),
        ("v = 1", good[:64] + b"\x01", expiry, NOW),
        ("v = 29", good[:64] + b"\x1d", expiry, NOW),
        ("v = 255", good[:64] + b"\xff", expiry, NOW),
        ("r = 0", word(0) + good[32:], expiry, NOW),
        ("r = n", word(SECP256K1_N) + good[32:], expiry, NOW),
        ("s = 0", r + word(0) + good[64:], expiry, NOW),
        ("s = n", r + word(SECP256K1_N) + good[64:], expiry, NOW),
        ("high-s twin of a valid signature", r + word(SECP256K1_N - s) + bytes((55 - v,)), expiry, NOW),
        ("s = n/2 is still low", r + word(SECP256K1_N // 2) + good[64:], expiry, NOW),
        ("r is no curve point: zero signer", word(_not_an_x_coordinate()) + good[32:], expiry, NOW),
        ("signed by another key", sign_digest(digest, KEYS[1]), expiry, NOW),
        ("signed for another chain id", sign(other_chain, order, KEYS[0]), expiry, NOW),
        ("signed for another verifying contract", sign(other_contract, order, KEYS[0]), expiry, NOW),
    ]
    return [
        {"name": name, "digest": "0x" + digest.hex(), "signature": "0x" + sig.hex(),
         "expectedSigner": ADDRESSES[0], "expiry": exp, "now": now,
         **_outcome(digest, sig, ADDRESSES[0], exp, now)}
        for name, sig, exp, now in cases
    ]


def build_vectors() -> dict[str, Any]:
    """The whole vector file, from the Python rules alone."""
    rng = random.Random(SEED)
    messages = []
    for type_name in MESSAGE_FIELDS:
        for _ in range(PER_TYPE):
            key_index = rng.randrange(len(KEYS))
            message = _random_message(rng, type_name, ADDRESSES[key_index])
            typed = message.to_typed_data(DOMAIN)
            messages.append({
                "type": type_name,
                "message": typed["message"],
                "structHash": "0x" + message.struct_hash().hex(),
                "digest": "0x" + compute_message_digest(DOMAIN, message).hex(),
                "signer": ADDRESSES[key_index],
                "signerKey": key_index,
                "signature": "0x" + sign(DOMAIN, message, KEYS[key_index]).hex(),
            })
    return {
        "description": "clearhouse EIP-712 vectors, emitted by tests/unit/test_message_vectors.py",
        "seed": SEED,
        "domain": DOMAIN.to_typed_data(),
        "domainSeparator": "0x" + DOMAIN.separator.hex(),
        "typeHashes": {"EIP712Domain": "0x" + DOMAIN_TYPEHASH.hex(),
                       **{name: "0x" + h.hex() for name, h in TYPEHASHES.items()}},
        "encodeTypes": {name: eip712.encode_type(name, compute_typed_data_types(name)) for name in MESSAGE_FIELDS},
        "testKeys": ["0x" + k.hex() for k in KEYS],
        "messages": messages,
        "signatures": _signature_cases(rng),
    }


def _render(vectors: dict[str, Any]) -> str:
    return json.dumps(vectors, indent=1) + "\n"


def test_vectors_file_is_current() -> None:
    text = _render(build_vectors())
    if os.environ.get("CLEARHOUSE_WRITE_VECTORS") or not VECTORS.exists():
        VECTORS.parent.mkdir(parents=True, exist_ok=True)
        VECTORS.write_text(text)
    assert VECTORS.read_text() == text, (
        "tests/vectors/messages.json is stale: regenerate it with "
        "CLEARHOUSE_WRITE_VECTORS=1 pytest tests/unit/test_message_vectors.py")


def test_generation_is_deterministic() -> None:
    assert _render(build_vectors()) == _render(build_vectors())


def test_vectors_replay_through_the_reference_encoder() -> None:
    """The file's JSON alone (no clearhouse objects) gives the same hashes via the reference encoder."""
    vectors = json.loads(VECTORS.read_text())
    separator = eip712.compute_domain_separator(vectors["domain"])
    assert "0x" + separator.hex() == vectors["domainSeparator"]
    for vector in vectors["messages"]:
        types = compute_typed_data_types(vector["type"])
        struct_hash = eip712.hash_struct(vector["type"], vector["message"], types)
        assert "0x" + struct_hash.hex() == vector["structHash"]
        assert "0x" + eip712.compute_digest(separator, struct_hash).hex() == vector["digest"]
        signature = bytes.fromhex(vector["signature"][2:])
        assert Account._recover_hash(bytes.fromhex(vector["digest"][2:]), signature=signature) == vector["signer"]
    for case in vectors["signatures"]:
        if "signer" in case["recover"]:  # what we accept, eth_account recovers to the same signer
            digest, signature = bytes.fromhex(case["digest"][2:]), bytes.fromhex(case["signature"][2:])
            assert Account._recover_hash(digest, signature=signature) == case["recover"]["signer"]


def test_vectors_cover_every_outcome() -> None:
    vectors = json.loads(VECTORS.read_text())
    reasons = {c["verify"].get("reason") for c in vectors["signatures"]}
    assert reasons == {None, "eip712: expired", "eip712: bad signature length", "eip712: bad v",
                       "eip712: bad r", "eip712: bad s", "eip712: high s", "eip712: zero signer",
                       "eip712: wrong signer"}
    assert {v["type"] for v in vectors["messages"]} == set(MESSAGE_FIELDS)
