"""The fast path: fixed-layout struct packing per type, one digest function per type, and signer
recovery straight through libsecp256k1 (coincurve).

Type hashes are computed once at import from the schema by the reference encoder; the domain
separator is computed once per :class:`Domain`. Each packer writes the 32-byte words of its type
in member order with no generic recursion; hashing goes through the lean keccak binding of
:mod:`clearhouse.messages.keccak`. Everything here is cross-checked against
:mod:`clearhouse.messages.eip712` and ``eth_account`` in ``tests/property/test_messages_agree.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

from coincurve import PublicKey

from clearhouse.errors import InvalidSignature
from clearhouse.messages.eip712 import compute_type_hash
from clearhouse.messages.keccak import keccak256 as _k
from clearhouse.messages.schema import MESSAGE_FIELDS, STRUCT_FIELDS, compute_typed_data_types
from clearhouse.types import Digest

if TYPE_CHECKING:
    from clearhouse.messages.domain import Domain
    from clearhouse.messages.structs import (
        RFQ,
        Accept,
        Cancel,
        Leg,
        Message,
        Observation,
        Order,
        Post,
        Quote,
        QuoteLeg,
        SignIn,
        Vote,
        Withdrawal,
    )

__all__ = [
    "REASON_BAD_R",
    "REASON_BAD_S",
    "REASON_BAD_V",
    "REASON_EXPIRED",
    "REASON_HIGH_S",
    "REASON_LENGTH",
    "REASON_WRONG_SIGNER",
    "REASON_ZERO_SIGNER",
    "RECORD_SIZE",
    "SECP256K1_N",
    "TYPEHASHES",
    "check_signature",
    "compute_accept_digest",
    "compute_accept_struct_hash",
    "compute_cancel_digest",
    "compute_cancel_struct_hash",
    "compute_message_digest",
    "compute_observation_digest",
    "compute_observation_struct_hash",
    "compute_order_digest",
    "compute_order_struct_hash",
    "compute_post_digest",
    "compute_post_struct_hash",
    "compute_quote_digest",
    "compute_quote_struct_hash",
    "compute_rfq_digest",
    "compute_rfq_struct_hash",
    "compute_sign_in_digest",
    "compute_sign_in_struct_hash",
    "compute_vote_digest",
    "compute_vote_struct_hash",
    "compute_withdrawal_digest",
    "compute_withdrawal_struct_hash",
    "recover_address_bytes",
    "recover_records",
]

SECP256K1_N: Final = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
"""Order of the secp256k1 group."""
_HALF_N: Final = SECP256K1_N // 2

# Rejection reasons: the same strings the Vyper module asserts with (see contracts/lib/eip712.vy).
REASON_LENGTH: Final = "eip712: bad signature length"
REASON_BAD_V: Final = "eip712: bad v"
REASON_BAD_R: Final = "eip712: bad r"
REASON_BAD_S: Final = "eip712: bad s"
REASON_HIGH_S: Final = "eip712: high s"
REASON_ZERO_SIGNER: Final = "eip712: zero signer"
REASON_WRONG_SIGNER: Final = "eip712: wrong signer"
REASON_EXPIRED: Final = "eip712: expired"

TYPEHASHES: Final[dict[str, Digest]] = {
    **{name: compute_type_hash(name, compute_typed_data_types(name)) for name in MESSAGE_FIELDS},
    **{name: compute_type_hash(name, {name: [{"name": n, "type": t} for _, n, t in fields]})
       for name, fields in STRUCT_FIELDS.items()},
}
"""``keccak256(encodeType(T))`` for every message and nested struct type."""

_ORDER: Final = TYPEHASHES["Order"]
_RFQ: Final = TYPEHASHES["RFQ"]
_LEG: Final = TYPEHASHES["Leg"]
_QUOTE: Final = TYPEHASHES["Quote"]
_QUOTE_LEG: Final = TYPEHASHES["QuoteLeg"]
_ACCEPT: Final = TYPEHASHES["Accept"]
_CANCEL: Final = TYPEHASHES["Cancel"]
_WITHDRAWAL: Final = TYPEHASHES["Withdrawal"]
_OBSERVATION: Final = TYPEHASHES["Observation"]
_VOTE: Final = TYPEHASHES["Vote"]
_POST: Final = TYPEHASHES["Post"]
_SIGN_IN: Final = TYPEHASHES["SignIn"]
_PAD12: Final = bytes(12)
_TRUE: Final = (1).to_bytes(32, "big")
_FALSE: Final = bytes(32)
_PREFIX: Final = b"\x19\x01"
_NO_SIGNER: Final = bytes(20)


def _u(value: int) -> bytes:
    return value.to_bytes(32, "big")


def _a(address: str) -> bytes:
    return _PAD12 + bytes.fromhex(address[2:])


def _hash_legs(legs: tuple[Leg, ...]) -> bytes:
    return _k(b"".join(
        _k(b"".join((_LEG, leg.series_id, _u(leg.ratio), _TRUE if leg.is_buy else _FALSE)))
        for leg in legs
    ))


def _hash_quote_legs(legs: tuple[QuoteLeg, ...]) -> bytes:
    return _k(b"".join(
        _k(b"".join((_QUOTE_LEG, leg.series_id, _u(leg.ratio), _TRUE if leg.is_buy else _FALSE,
                     _u(leg.price))))
        for leg in legs
    ))


def compute_order_struct_hash(o: Order) -> Digest:
    """``hashStruct(Order)``."""
    return Digest(_k(b"".join((_ORDER, _a(o.account), o.series_id, _u(o.side), _u(o.price),
                               _u(o.quantity), _u(o.time_in_force), _u(o.nonce), _u(o.expiry)))))


def compute_rfq_struct_hash(r: RFQ) -> Digest:
    """``hashStruct(RFQ)``."""
    return Digest(_k(b"".join((_RFQ, _a(r.taker), _hash_legs(r.legs), _u(r.size), _u(r.side),
                               _u(r.nonce), _u(r.expiry)))))


def compute_quote_struct_hash(q: Quote) -> Digest:
    """``hashStruct(Quote)``."""
    return Digest(_k(b"".join((_QUOTE, _a(q.maker), _a(q.taker), q.rfq_id, _hash_quote_legs(q.legs),
                               _u(q.side), _u(q.size), _u(q.nonce), _u(q.expiry)))))


def compute_accept_struct_hash(a: Accept) -> Digest:
    """``hashStruct(Accept)``."""
    return Digest(_k(b"".join((_ACCEPT, _a(a.taker), a.quote_id, _u(a.size), _u(a.nonce), _u(a.expiry)))))


def compute_cancel_struct_hash(c: Cancel) -> Digest:
    """``hashStruct(Cancel)``."""
    return Digest(_k(b"".join((_CANCEL, _a(c.account), c.order_hash, _u(c.nonce), _u(c.expiry)))))


def compute_withdrawal_struct_hash(w: Withdrawal) -> Digest:
    """``hashStruct(Withdrawal)``."""
    return Digest(_k(b"".join((_WITHDRAWAL, _a(w.account), _a(w.recipient), _u(w.amount), _u(w.nonce),
                               _u(w.expiry)))))


def compute_observation_struct_hash(o: Observation) -> Digest:
    """``hashStruct(Observation)``."""
    return Digest(_k(b"".join((_OBSERVATION, o.feed_id, _u(o.round), _u(o.price), _u(o.timestamp),
                               _u(o.expiry)))))


def compute_vote_struct_hash(v: Vote) -> Digest:
    """``hashStruct(Vote)``."""
    return Digest(_k(b"".join((_VOTE, _a(v.voter), _u(v.proposal_id), _u(v.choice),
                               _k(v.reason.encode()), _u(v.expiry)))))


def compute_post_struct_hash(p: Post) -> Digest:
    """``hashStruct(Post)``."""
    return Digest(_k(b"".join((_POST, _a(p.author), _u(p.proposal_id), p.parent, _k(p.body.encode()),
                               _u(p.expiry)))))


def compute_sign_in_struct_hash(s: SignIn) -> Digest:
    """``hashStruct(SignIn)``."""
    return Digest(_k(b"".join((_SIGN_IN, _a(s.account), _k(s.node.encode()), _k(s.uri.encode()),
                               s.session_nonce, _u(s.issued_at), _u(s.expiry)))))


def _digest(domain: Domain, struct_hash: bytes) -> Digest:
    return Digest(_k(_PREFIX + domain.separator + struct_hash))


def compute_order_digest(domain: Domain, order: Order) -> Digest:
    """The EIP-712 digest an ``Order`` is signed over."""
    return _digest(domain, compute_order_struct_hash(order))


def compute_rfq_digest(domain: Domain, rfq: RFQ) -> Digest:
    """The EIP-712 digest an ``RFQ`` is signed over; it is also the RFQ id quotes bind to."""
    return _digest(domain, compute_rfq_struct_hash(rfq))


def compute_quote_digest(domain: Domain, quote: Quote) -> Digest:
    """The EIP-712 digest a ``Quote`` is signed over; it is also the quote id an ``Accept`` names."""
    return _digest(domain, compute_quote_struct_hash(quote))


def compute_accept_digest(domain: Domain, accept: Accept) -> Digest:
    """The EIP-712 digest an ``Accept`` is signed over."""
    return _digest(domain, compute_accept_struct_hash(accept))


def compute_cancel_digest(domain: Domain, cancel: Cancel) -> Digest:
    """The EIP-712 digest a ``Cancel`` is signed over."""
    return _digest(domain, compute_cancel_struct_hash(cancel))


def compute_withdrawal_digest(domain: Domain, withdrawal: Withdrawal) -> Digest:
    """The EIP-712 digest a ``Withdrawal`` is signed over."""
    return _digest(domain, compute_withdrawal_struct_hash(withdrawal))


def compute_observation_digest(domain: Domain, observation: Observation) -> Digest:
    """The EIP-712 digest an ``Observation`` is signed over."""
    return _digest(domain, compute_observation_struct_hash(observation))


def compute_vote_digest(domain: Domain, vote: Vote) -> Digest:
    """The EIP-712 digest a ``Vote`` is signed over."""
    return _digest(domain, compute_vote_struct_hash(vote))


def compute_post_digest(domain: Domain, post: Post) -> Digest:
    """The EIP-712 digest a ``Post`` is signed over; it is also the post id replies name as parent."""
    return _digest(domain, compute_post_struct_hash(post))


def compute_sign_in_digest(domain: Domain, sign_in: SignIn) -> Digest:
    """The EIP-712 digest a ``SignIn`` is signed over."""
    return _digest(domain, compute_sign_in_struct_hash(sign_in))


_DIGEST_BY_TYPE: Final[dict[str, Callable[[Domain, Any], Digest]]] = {
    "Order": compute_order_digest,
    "RFQ": compute_rfq_digest,
    "Quote": compute_quote_digest,
    "Accept": compute_accept_digest,
    "Cancel": compute_cancel_digest,
    "Withdrawal": compute_withdrawal_digest,
    "Observation": compute_observation_digest,
    "Vote": compute_vote_digest,
    "Post": compute_post_digest,
    "SignIn": compute_sign_in_digest,
}


def compute_message_digest(domain: Domain, message: Message) -> Digest:
    """The digest of any message, by dispatch to the one digest function of its type."""
    return _DIGEST_BY_TYPE[message.TYPE_NAME](domain, message)


def check_signature(signature: bytes) -> bytes:
    """Check a 65-byte ``r ‖ s ‖ v`` signature and return it as libsecp256k1's ``r ‖ s ‖ recid``.

    The checks run in the order the Vyper module runs them, so both reject with the same reason.
    """
    if len(signature) != 65:
        raise InvalidSignature(REASON_LENGTH, field="signature", length=len(signature))
    v = signature[64]
    if v != 27 and v != 28:
        raise InvalidSignature(REASON_BAD_V, field="signature", v=v)
    r = int.from_bytes(signature[:32], "big")
    if r == 0 or r >= SECP256K1_N:
        raise InvalidSignature(REASON_BAD_R, field="signature")
    s = int.from_bytes(signature[32:64], "big")
    if s == 0:
        raise InvalidSignature(REASON_BAD_S, field="signature")
    if s > _HALF_N:
        raise InvalidSignature(REASON_HIGH_S, field="signature")
    return signature[:64] + (b"\x00" if v == 27 else b"\x01")


def _recover_or_zero(recoverable: bytes, digest: bytes) -> bytes:
    """The 20-byte signer, or 20 zero bytes where ``ecrecover`` would return the zero address."""
    try:
        public = PublicKey.from_signature_and_message(recoverable, digest, hasher=None)
    except ValueError:  # r is not the x-coordinate of a curve point
        return _NO_SIGNER
    return _k(public.format(compressed=False)[1:])[12:]


def recover_address_bytes(digest: bytes, signature: bytes) -> bytes:
    """The 20-byte address that signed ``digest``; raises :class:`InvalidSignature` like the contracts."""
    signer = _recover_or_zero(check_signature(signature), digest)
    if signer == _NO_SIGNER:
        raise InvalidSignature(REASON_ZERO_SIGNER, field="signature")
    return signer


RECORD_SIZE: Final = 97
"""Bytes per record in :func:`recover_records`: digest (32) ‖ r ‖ s ‖ recid (65)."""


def recover_records(blob: bytes) -> bytes:
    """Recover the signer of every ``digest ‖ r ‖ s ‖ recid`` record; 20 bytes each (zero if none).

    The unit of work a batch-verification worker process runs: flat bytes in and out keep the
    per-message inter-process traffic at 97 + 20 bytes.
    """
    view = memoryview(blob)
    out = []
    for start in range(0, len(blob), RECORD_SIZE):
        out.append(_recover_or_zero(bytes(view[start + 32:start + RECORD_SIZE]),
                                    bytes(view[start:start + 32])))
    return b"".join(out)
