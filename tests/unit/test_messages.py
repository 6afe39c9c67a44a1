"""clearhouse.messages: every rejection, field checks, nonces, batch verification, wallet interop."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import pytest
from coincurve import PublicKey
from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_utils import keccak

from clearhouse.errors import (
    ExpiredMessage,
    InvalidMessage,
    InvalidSignature,
    MalformedMessage,
    ReplayedMessage,
    WrongSigner,
)
from clearhouse.messages import (
    MAX_LEGS,
    RFQ,
    Accept,
    BatchItem,
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
    compute_accept_digest,
    compute_cancel_digest,
    compute_domain,
    compute_message_digest,
    compute_nonce_position,
    compute_observation_digest,
    compute_order_digest,
    compute_post_digest,
    compute_quote_digest,
    compute_rfq_digest,
    compute_sign_in_digest,
    compute_vote_digest,
    compute_withdrawal_digest,
    eip712,
    invalidate_nonce,
    is_digest_used,
    is_nonce_used,
    recover_signer,
    sign,
    sign_digest,
    use_digest,
    use_nonce,
    verify,
    verify_batch,
    verify_digest,
)
from clearhouse.messages import batch as batch_module
from clearhouse.messages.fast import (
    REASON_BAD_R,
    REASON_BAD_S,
    REASON_BAD_V,
    REASON_HIGH_S,
    REASON_LENGTH,
    REASON_ZERO_SIGNER,
    SECP256K1_N,
)
from clearhouse.params import load_params
from clearhouse.types import Address, ChainId, Digest, Timestamp

CONTRACT = Address("0x5FbDB2315678afecb367f032d93F642f64180aa3")
DOMAIN = Domain("clearhouse", "1", ChainId(31337), CONTRACT)
ALICE = Account.from_key(keccak(text="alice"))
BOB = Account.from_key(keccak(text="bob"))
NOW = Timestamp(1_790_000_000)
SERIES = keccak(text="ETH-27DEC26-3000-C")
_SECP256K1_P = 2**256 - 2**32 - 977


def make_order(**changes: Any) -> Order:
    fields: dict[str, Any] = dict(account=ALICE.address, series_id=SERIES, side=Side.BUY, price=125_000_000,
                                  quantity=300, time_in_force=TimeInForce.GTC, nonce=7, expiry=NOW + 3600)
    fields.update(changes)
    return Order(**fields)


def samples() -> list[Message]:
    """One message of every type, all signed by ALICE."""
    a, b = ALICE.address, BOB.address
    legs = (Leg(SERIES, 1, True), Leg(keccak(text="ETH-27DEC26-3500-C"), 2, False))
    quote_legs = (QuoteLeg(SERIES, 1, True, 125_000_000), QuoteLeg(keccak(text="x"), 2, False, 40_000_000))
    return [
        make_order(),
        RFQ(a, legs, 10, Side.HIDDEN, 1, NOW + 60),
        Quote(a, b, keccak(text="rfq"), quote_legs, Side.SELL, 10, 2**200, NOW + 5),
        Accept(a, keccak(text="quote"), 10, 3, NOW + 5),
        Cancel(a, bytes(32), 7, NOW + 60),
        Withdrawal(a, b, 5_000_000, 4, NOW + 600),
        Observation(keccak(text="ETH/USDC"), 42, 3_100_000_000, NOW, NOW + 30),
        Vote(a, 12, Choice.FOR, "lower the cap — it's too wide 🙂", NOW + 86400),
        Post(a, 12, bytes(32), "First post.\nMulti-line, ünïcode.", NOW + 86400),
        SignIn(a, "node.clearhouse.example:8443", "https://node.clearhouse.example/api", keccak(text="n"),
               NOW, NOW + 300),
    ]


def with_fields(signature: bytes, *, r: int | None = None, s: int | None = None,
                v: int | None = None) -> bytes:
    """``signature`` with some of r, s, v replaced."""
    r_bytes = signature[:32] if r is None else r.to_bytes(32, "big")
    s_bytes = signature[32:64] if s is None else s.to_bytes(32, "big")
    return r_bytes + s_bytes + bytes((signature[64] if v is None else v,))


def not_an_x_coordinate() -> int:
    """The smallest r for which no curve point has x = r (ecrecover returns the zero address)."""
    r = 1
    while pow((r**3 + 7) % _SECP256K1_P, (_SECP256K1_P - 1) // 2, _SECP256K1_P) == 1:
        r += 1
    return r


# --- the happy path ---------------------------------------------------------------------------


def test_valid_signature_verifies_and_returns_the_digest() -> None:
    order = make_order()
    signature = sign(DOMAIN, order, ALICE.key)
    assert len(signature) == 65 and signature[64] in (27, 28)
    assert verify(DOMAIN, order, signature, ALICE.address, NOW) == compute_order_digest(DOMAIN, order)
    assert recover_signer(DOMAIN, order, signature) == ALICE.address


def test_valid_through_expiry_second_then_expired() -> None:
    order = make_order(expiry=NOW)
    signature = sign(DOMAIN, order, ALICE.key)
    verify(DOMAIN, order, signature, ALICE.address, NOW)
    with pytest.raises(ExpiredMessage) as info:
        verify(DOMAIN, order, signature, ALICE.address, Timestamp(NOW + 1))
    assert info.value.field == "expiry" and info.value.message == "eip712: expired"


def test_expiry_is_checked_before_the_signature() -> None:
    order = make_order(expiry=NOW - 1)
    with pytest.raises(ExpiredMessage):
        verify(DOMAIN, order, b"\x00" * 64, ALICE.address, NOW)


def test_eip712_specification_example_digest_and_signature() -> None:
    """The ``Mail`` example of EIP-712 itself: encodeType, digest and the signature with key keccak("cow")."""
    types = {
        "EIP712Domain": [{"name": "name", "type": "string"}, {"name": "version", "type": "string"},
                         {"name": "chainId", "type": "uint256"},
                         {"name": "verifyingContract", "type": "address"}],
        "Person": [{"name": "name", "type": "string"}, {"name": "wallet", "type": "address"}],
        "Mail": [{"name": "from", "type": "Person"}, {"name": "to", "type": "Person"},
                 {"name": "contents", "type": "string"}],
    }
    typed = {
        "types": types, "primaryType": "Mail",
        "domain": {"name": "Ether Mail", "version": "1", "chainId": 1,
                   "verifyingContract": "0xCcCCccccCCCCcCCCCCCcCcCccCcCCCcCcccccccC"},
        "message": {"from": {"name": "Cow", "wallet": "0xCD2a3d9F938E13CD947Ec05AbC7FE734Df8DD826"},
                    "to": {"name": "Bob", "wallet": "0xbBbBBBBbbBBBbbbBbbBbbbbBBbBbbbbBbBbbBBbB"},
                    "contents": "Hello, Bob!"},
    }
    assert eip712.encode_type("Mail", types) == "Mail(Person from,Person to,string contents)Person(string name,address wallet)"
    digest = eip712.hash_typed_data(typed)
    assert digest.hex() == "be609aee343fb3c4b28e1df9e632fca64fcfaede20f02e86244efddf30957bd2"
    signature = sign_digest(digest, keccak(text="cow"))
    assert signature.hex() == (
        "4355c47d63924e8a72e509b65029052eb6c299d53a04e167c5775fd466751c9d"
        "07299936d304c153f6443dfa05f40ff007d72911b6f72307f996231605b91562" "1c"
    )
    verify_digest(digest, signature, Address("0xCD2a3d9F938E13CD947Ec05AbC7FE734Df8DD826"))


# --- every rejection ---------------------------------------------------------------------------


@pytest.mark.parametrize("length", [0, 64, 66, 130])
def test_rejects_signature_not_65_bytes(length: int) -> None:
    order = make_order()
    signature = (sign(DOMAIN, order, ALICE.key) * 2)[:length]
    with pytest.raises(InvalidSignature) as info:
        verify(DOMAIN, order, signature, ALICE.address, NOW)
    assert info.value.message == REASON_LENGTH and info.value.field == "signature"


@pytest.mark.parametrize("v", ["recovery id", 0, 1, 26, 29, 37, 255])
def test_rejects_v_outside_27_28(v: int | str) -> None:
    """Includes the raw recovery id (0/1) some libraries emit, which must not be accepted."""
    order = make_order()
    signature = sign(DOMAIN, order, ALICE.key)
    bad = with_fields(signature, v=signature[64] - 27 if v == "recovery id" else int(v))
    with pytest.raises(InvalidSignature) as info:
        verify(DOMAIN, order, bad, ALICE.address, NOW)
    assert info.value.message == REASON_BAD_V


def test_rejects_high_s_even_though_it_recovers_the_same_key() -> None:
    order = make_order()
    digest = compute_order_digest(DOMAIN, order)
    signature = sign(DOMAIN, order, ALICE.key)
    s = int.from_bytes(signature[32:64], "big")
    malleated = with_fields(signature, s=SECP256K1_N - s, v=55 - signature[64])  # 27 <-> 28
    # the twin really is a valid ECDSA signature of the same key: only the low-s rule rejects it
    twin = PublicKey.from_signature_and_message(malleated[:64] + bytes((malleated[64] - 27,)), digest,
                                                hasher=None)
    assert twin.format() == PublicKey.from_signature_and_message(
        signature[:64] + bytes((signature[64] - 27,)), digest, hasher=None).format()
    with pytest.raises(InvalidSignature) as info:
        verify(DOMAIN, order, malleated, ALICE.address, NOW)
    assert info.value.message == REASON_HIGH_S


@pytest.mark.parametrize(("r", "s", "reason"), [
    (0, None, REASON_BAD_R),
    (SECP256K1_N, None, REASON_BAD_R),
    (2**256 - 1, None, REASON_BAD_R),
    (None, 0, REASON_BAD_S),
    (None, SECP256K1_N, REASON_HIGH_S),
    (None, SECP256K1_N // 2 + 1, REASON_HIGH_S),
])
def test_rejects_r_and_s_out_of_range(r: int | None, s: int | None, reason: str) -> None:
    order = make_order()
    bad = with_fields(sign(DOMAIN, order, ALICE.key), r=r, s=s)
    with pytest.raises(InvalidSignature) as info:
        verify(DOMAIN, order, bad, ALICE.address, NOW)
    assert info.value.message == reason


def test_accepts_s_exactly_half_n_as_low() -> None:
    """The boundary itself is low: the check is ``s <= n/2`` (it then fails only as a wrong signer)."""
    order = make_order()
    bad = with_fields(sign(DOMAIN, order, ALICE.key), s=SECP256K1_N // 2)
    with pytest.raises(InvalidMessage) as info:
        verify(DOMAIN, order, bad, ALICE.address, NOW)
    assert info.value.message != REASON_HIGH_S


def test_rejects_unrecoverable_signature_as_zero_signer() -> None:
    order = make_order()
    bad = with_fields(sign(DOMAIN, order, ALICE.key), r=not_an_x_coordinate())
    with pytest.raises(InvalidSignature) as info:
        verify(DOMAIN, order, bad, ALICE.address, NOW)
    assert info.value.message == REASON_ZERO_SIGNER


def test_rejects_other_signer() -> None:
    order = make_order()
    with pytest.raises(WrongSigner) as info:
        verify(DOMAIN, order, sign(DOMAIN, order, BOB.key), ALICE.address, NOW)
    assert info.value.context["recovered"] == BOB.address


@pytest.mark.parametrize("other", [
    Domain("clearhouse", "1", ChainId(1), CONTRACT),
    Domain("clearhouse", "1", ChainId(31337), Address("0x" + "11" * 20)),
    Domain("clearhouse", "2", ChainId(31337), CONTRACT),
    Domain("clearhouse-fork", "1", ChainId(31337), CONTRACT),
], ids=["other-chain-id", "other-contract", "other-version", "other-name"])
def test_signature_from_another_domain_is_a_wrong_signer(other: Domain) -> None:
    order = make_order()
    signature = sign(other, order, ALICE.key)
    verify(other, order, signature, ALICE.address, NOW)
    with pytest.raises(WrongSigner):
        verify(DOMAIN, order, signature, ALICE.address, NOW)


def test_replayed_nonce_is_rejected() -> None:
    bitmap: dict[int, int] = {}
    order = make_order(nonce=2**130 + 5)
    verify(DOMAIN, order, sign(DOMAIN, order, ALICE.key), ALICE.address, NOW)
    use_nonce(bitmap, order.nonce)
    with pytest.raises(ReplayedMessage) as info:
        use_nonce(bitmap, order.nonce)
    assert info.value.field == "nonce"


def test_rejects_malformed_expected_signer() -> None:
    order = make_order()
    with pytest.raises(MalformedMessage) as info:
        verify(DOMAIN, order, sign(DOMAIN, order, ALICE.key), Address("0x1234"), NOW)
    assert info.value.field == "expected_signer"


# --- unordered nonces ---------------------------------------------------------------------------


@pytest.mark.parametrize(("nonce", "word", "bit"), [(0, 0, 0), (255, 0, 255), (256, 1, 0),
                                                    (2**256 - 1, 2**248 - 1, 255)])
def test_nonce_position(nonce: int, word: int, bit: int) -> None:
    assert compute_nonce_position(nonce) == (word, 1 << bit)


def test_nonces_are_independent_and_unordered() -> None:
    bitmap: dict[int, int] = {}
    for nonce in (900, 3, 2**255, 4, 256):
        assert not is_nonce_used(bitmap, nonce)
        use_nonce(bitmap, nonce)
    assert all(is_nonce_used(bitmap, n) for n in (900, 3, 2**255, 4, 256))
    assert not any(is_nonce_used(bitmap, n) for n in (0, 2, 5, 257, 899, 2**255 + 1))
    assert bitmap[0] == (1 << 3) | (1 << 4) and bitmap[1] == 1 and bitmap[3] == 1 << (900 & 0xFF)


def test_replay_leaves_bitmap_unchanged_and_invalidate_is_idempotent() -> None:
    bitmap: dict[int, int] = {}
    use_nonce(bitmap, 5)
    before = dict(bitmap)
    with pytest.raises(ReplayedMessage):
        use_nonce(bitmap, 5)
    assert bitmap == before
    invalidate_nonce(bitmap, 6)
    invalidate_nonce(bitmap, 6)
    with pytest.raises(ReplayedMessage):
        use_nonce(bitmap, 6)


@pytest.mark.parametrize("nonce", [-1, 2**256, True, "1"])
def test_malformed_nonce(nonce: Any) -> None:
    with pytest.raises(MalformedMessage):
        is_nonce_used({}, nonce)


def test_digest_replay_set() -> None:
    seen: set[Digest] = set()
    digest = compute_message_digest(DOMAIN, samples()[7])
    assert not is_digest_used(seen, digest)
    use_digest(seen, digest)
    assert is_digest_used(seen, digest)
    with pytest.raises(ReplayedMessage):
        use_digest(seen, digest)


# --- field checks ---------------------------------------------------------------------------------


def bad_checksum(address: str) -> str:
    """``address`` with the case of its first letter flipped: mixed case, wrong EIP-55 checksum."""
    i = next(i for i, c in enumerate(address) if i >= 2 and c.isalpha())
    return address[:i] + address[i].swapcase() + address[i + 1 :]


A, B = ALICE.address, BOB.address
MALFORMED: list[tuple[Callable[[], object], str]] = [
    (lambda: make_order(quantity=0), "quantity"),
    (lambda: make_order(side=0), "side"),
    (lambda: make_order(side=3), "side"),
    (lambda: make_order(time_in_force=4), "timeInForce"),
    (lambda: make_order(price=-1), "price"),
    (lambda: make_order(price=2**256), "price"),
    (lambda: make_order(nonce=2**256), "nonce"),
    (lambda: make_order(expiry=2**64), "expiry"),
    (lambda: make_order(expiry=True), "expiry"),
    (lambda: make_order(price=1.5), "price"),
    (lambda: make_order(account="0x1234"), "account"),
    (lambda: make_order(account=A.replace("0x", "0X")), "account"),
    (lambda: make_order(account=bad_checksum(A)), "account"),
    (lambda: make_order(series_id=b"\x01" * 31), "seriesId"),
    (lambda: RFQ(A, (), 1, Side.BUY, 0, 0), "legs"),
    (lambda: RFQ(A, (Leg(SERIES, 1, True),) * (MAX_LEGS + 1), 1, Side.BUY, 0, 0), "legs"),
    (lambda: RFQ(A, (QuoteLeg(SERIES, 1, True, 1),), 1, Side.BUY, 0, 0), "legs[0]"),
    (lambda: RFQ(A, (Leg(SERIES, 1, True),), 1, 3, 0, 0), "side"),
    (lambda: Leg(SERIES, 0, True), "ratio"),
    (lambda: Leg(SERIES, 2**32, True), "ratio"),
    (lambda: Leg(SERIES, 1, 1), "isBuy"),
    (lambda: Quote(A, B, b"\x00" * 31, (QuoteLeg(SERIES, 1, True, 1),), Side.BUY, 1, 0, 0), "rfqId"),
    (lambda: Quote(A, B, bytes(32), (QuoteLeg(SERIES, 1, True, 1),), Side.HIDDEN, 1, 0, 0), "side"),
    (lambda: Accept(A, bytes(32), 0, 0, 0), "size"),
    (lambda: Withdrawal(A, "0x" + "00" * 20, 1, 0, 0), "recipient"),
    (lambda: Withdrawal(A, B, 0, 0, 0), "amount"),
    (lambda: Observation(bytes(32), 2**64, 1, 0, 0), "round"),
    (lambda: Vote(A, 1, 3, "", 0), "choice"),
    (lambda: Vote(A, 1, Choice.FOR, "é" * 513, 0), "reason"),
    (lambda: Vote(A, 1, Choice.FOR, "\ud800", 0), "reason"),
    (lambda: Post(A, 1, bytes(32), "x" * 4097, 0), "body"),
    (lambda: SignIn(A, "n" * 254, "u", bytes(32), 0, 0), "node"),
    (lambda: SignIn(A, "n", "u", bytes(32), 10, 9), "issuedAt"),
    (lambda: Domain("clearhouse", "1", ChainId(0), CONTRACT), "domain.chainId"),
    (lambda: Domain("c" * 65, "1", ChainId(1), CONTRACT), "domain.name"),
]


@pytest.mark.parametrize(("build", "field"), MALFORMED, ids=[f for _, f in MALFORMED])
def test_malformed_fields_are_rejected_with_the_field_name(build: Callable[[], object], field: str) -> None:
    with pytest.raises(MalformedMessage) as info:
        build()
    assert info.value.field == field


def test_addresses_are_normalised_to_checksum_and_legs_to_tuples() -> None:
    order = make_order(account=ALICE.address.lower())
    assert order.account == ALICE.address
    rfq = RFQ(ALICE.address.upper().replace("0X", "0x"), [Leg(SERIES, 1, True)], 1, Side.BUY, 0, 0)
    assert rfq.taker == ALICE.address and isinstance(rfq.legs, tuple)
    assert order == make_order() and hash(order) == hash(make_order())


def test_max_sizes_are_accepted() -> None:
    Vote(A, 2**256 - 1, Choice.ABSTAIN, "é" * 512, 2**64 - 1)
    RFQ(A, (Leg(SERIES, 2**32 - 1, False),) * MAX_LEGS, 2**256 - 1, Side.SELL, 2**256 - 1, 2**64 - 1)
    Post(A, 0, bytes(32), "x" * 4096, 0)


# --- the reference encoder's own checks ----------------------------------------------------------


@pytest.mark.parametrize(("typ", "value"), [
    ("uint8", 256), ("uint8", -1), ("int8", -129), ("int8", 128), ("uint256", 2**256), ("uint256", True),
    ("uint256", "12x"), ("bool", 1), ("address", "0x12"), ("address", b"\x00" * 19), ("bytes32", b"\x00" * 31),
    ("bytes4", "0x1234"), ("bytes", "nothex"), ("string", b"raw"), ("uint7", 1), ("bytes33", b"\x00" * 33),
    ("uint256[2]", [1]), ("uint256[]", 5), ("Unknown", {}), ("Leg", [1]),
])
def test_reference_encoder_rejects_bad_values(typ: str, value: Any) -> None:
    types = {"Leg": [{"name": "ratio", "type": "uint32"}]}
    with pytest.raises(MalformedMessage):
        eip712.encode_value(typ, value, types, "x")


def test_reference_encoder_accepts_wallet_spellings_of_integers() -> None:
    types = {"T": [{"name": "a", "type": "uint256"}, {"name": "b", "type": "int16"}]}
    numeric = eip712.hash_struct("T", {"a": 255, "b": -2}, types)
    assert eip712.hash_struct("T", {"a": "255", "b": "-2"}, types) == numeric
    assert eip712.hash_struct("T", {"a": "0xff", "b": "-0x2"}, types) == numeric


@pytest.mark.parametrize("data", [{"a": 1}, {"a": 1, "b": 2, "c": 3}])
def test_reference_encoder_rejects_missing_and_extra_members(data: dict[str, int]) -> None:
    types = {"T": [{"name": "a", "type": "uint8"}, {"name": "b", "type": "uint8"}]}
    with pytest.raises(MalformedMessage):
        eip712.hash_struct("T", data, types)


def test_domain_separator_matches_reference_and_params() -> None:
    assert DOMAIN.separator == eip712.compute_domain_separator(DOMAIN.to_typed_data())
    params = load_params("devnet")
    domain = compute_domain(params, ChainId(31337), CONTRACT)
    assert domain == Domain(params.eip712_name, params.eip712_version, ChainId(31337), CONTRACT)


# --- digests and wallet interoperability -----------------------------------------------------------

DIGEST_FUNCTIONS: dict[str, Callable[[Domain, Any], Digest]] = {
    "Order": compute_order_digest, "RFQ": compute_rfq_digest, "Quote": compute_quote_digest,
    "Accept": compute_accept_digest, "Cancel": compute_cancel_digest,
    "Withdrawal": compute_withdrawal_digest, "Observation": compute_observation_digest,
    "Vote": compute_vote_digest, "Post": compute_post_digest, "SignIn": compute_sign_in_digest,
}


@pytest.mark.parametrize("message", samples(), ids=lambda m: m.TYPE_NAME)
def test_one_digest_function_per_type_matches_the_reference(message: Message) -> None:
    digest = DIGEST_FUNCTIONS[message.TYPE_NAME](DOMAIN, message)
    assert digest == compute_message_digest(DOMAIN, message)
    assert digest == eip712.hash_typed_data(message.to_typed_data(DOMAIN))


@pytest.mark.parametrize("message", samples(), ids=lambda m: m.TYPE_NAME)
def test_wallet_signature_of_typed_data_verifies_in_clearhouse(message: Message) -> None:
    typed_data = message.to_typed_data(DOMAIN)
    signed = Account.sign_typed_data(ALICE.key, full_message=typed_data)
    assert verify(DOMAIN, message, bytes(signed.signature), ALICE.address, NOW) == bytes(signed.message_hash)


@pytest.mark.parametrize("message", samples(), ids=lambda m: m.TYPE_NAME)
def test_clearhouse_signature_verifies_in_the_wallet_library(message: Message) -> None:
    signature = sign(DOMAIN, message, ALICE.key)
    signable = encode_typed_data(full_message=message.to_typed_data(DOMAIN))
    assert Account.recover_message(signable, signature=signature) == ALICE.address


def test_typed_data_json_shape() -> None:
    typed = samples()[1].to_typed_data(DOMAIN)
    assert typed["primaryType"] == "RFQ"
    assert set(typed["types"]) == {"EIP712Domain", "RFQ", "Leg"}
    assert typed["domain"] == {"name": "clearhouse", "version": "1", "chainId": 31337,
                               "verifyingContract": CONTRACT}
    leg = typed["message"]["legs"][0]
    assert leg == {"seriesId": "0x" + SERIES.hex(), "ratio": 1, "isBuy": True}
    assert typed["message"]["size"] == "10" and typed["message"]["side"] == 0


# --- batch verification ----------------------------------------------------------------------------


def batch_items() -> list[BatchItem]:
    """Every outcome, interleaved, several times over."""
    items = []
    for i in range(4):
        order = make_order(nonce=i)
        good = sign(DOMAIN, order, ALICE.key)
        s = int.from_bytes(good[32:64], "big")
        items += [
            BatchItem(order, good, ALICE.address),
            BatchItem(make_order(nonce=i, expiry=NOW - 1), good, ALICE.address),
            BatchItem(order, with_fields(good, s=SECP256K1_N - s, v=55 - good[64]), ALICE.address),
            BatchItem(order, sign(DOMAIN, order, BOB.key), ALICE.address),
            BatchItem(order, with_fields(good, r=not_an_x_coordinate()), ALICE.address),
            BatchItem(order, good[:64], ALICE.address),
            BatchItem(order, with_fields(good, v=good[64] - 27), ALICE.address),
            BatchItem(samples()[i + 5], sign(DOMAIN, samples()[i + 5], ALICE.key), ALICE.address),
        ]
    return items


def expected_verdict(item: BatchItem) -> tuple[bool, str | None, str | None]:
    try:
        verify(DOMAIN, item.message, item.signature, item.signer, NOW)
    except InvalidMessage as error:
        return False, error.code, error.message
    return True, None, None


def test_verify_batch_in_process_matches_verify() -> None:
    items = batch_items()
    verdicts = verify_batch(DOMAIN, items, NOW, processes=1)
    assert [(v.ok, v.code, v.reason) for v in verdicts] == [expected_verdict(i) for i in items]
    assert [v.digest for v in verdicts] == [compute_message_digest(DOMAIN, i.message) for i in items]
    assert sum(v.ok for v in verdicts) == 8
    assert {v.code for v in verdicts} == {None, "expired", "invalid_signature", "wrong_signer"}


def test_verify_batch_over_a_process_pool_matches_in_process() -> None:
    items = batch_items()
    in_process = verify_batch(DOMAIN, items, NOW, processes=1)
    with ProcessPoolExecutor(max_workers=2) as pool:
        pooled = verify_batch(DOMAIN, items, NOW, processes=2, executor=pool, chunk_size=3)
    assert pooled == in_process


def test_verify_batch_starts_its_own_pool_for_large_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(batch_module, "MIN_PARALLEL_BATCH", 16)
    items = batch_items()
    verdicts = verify_batch(DOMAIN, items, NOW, processes=2)
    assert [(v.ok, v.code, v.reason) for v in verdicts] == [expected_verdict(i) for i in items]


def test_verify_batch_empty() -> None:
    assert verify_batch(DOMAIN, [], NOW) == []


# --- the fast path's keccak -------------------------------------------------------------------------


@pytest.mark.parametrize("length", [0, 1, 32, 135, 136, 137, 272, 1000])
def test_lean_keccak_equals_the_public_api(length: int) -> None:
    from Crypto.Hash import keccak as public

    from clearhouse.messages.keccak import LEAN, keccak256

    data = bytes(i * 7 % 256 for i in range(length))
    assert LEAN  # the pinned pycryptodome passes the self-check; if not, the fallback still hashes right
    assert keccak256(data) == public.new(data=data, digest_bits=256).digest()
