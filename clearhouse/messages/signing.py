"""Sign, recover and verify clearhouse messages.

:func:`verify` is the checklist every signed message passes before a rule sees it: not expired,
a canonical 65-byte signature (``v ∈ {27,28}``, ``0 < r < n``, ``0 < s ≤ n/2``), a recoverable
non-zero signer, and that signer equal to the expected account. A signature for another chain or
another verifying contract recovers some other address and so fails as :class:`WrongSigner`.
"""

from __future__ import annotations

from coincurve import PrivateKey

from clearhouse.errors import ExpiredMessage, MalformedMessage, WrongSigner
from clearhouse.messages.checks import check_address_bytes, compute_checksum_address
from clearhouse.messages.domain import Domain
from clearhouse.messages.fast import (
    REASON_EXPIRED,
    REASON_WRONG_SIGNER,
    compute_message_digest,
    recover_address_bytes,
)
from clearhouse.messages.structs import Message
from clearhouse.types import Address, Digest, Timestamp

__all__ = ["check_not_expired", "recover_signer", "sign", "sign_digest", "verify", "verify_digest"]


def sign_digest(digest: bytes, private_key: bytes) -> bytes:
    """A 65-byte ``r ‖ s ‖ v`` signature (low ``s``, ``v ∈ {27,28}``) over a 32-byte digest."""
    if len(digest) != 32:
        raise MalformedMessage("a digest is 32 bytes", field="digest")
    rsv = PrivateKey(bytes(private_key)).sign_recoverable(bytes(digest), hasher=None)
    return rsv[:64] + bytes((rsv[64] + 27,))


def sign(domain: Domain, message: Message, private_key: bytes) -> bytes:
    """Sign ``message`` in ``domain``: what any EIP-712 wallet produces for ``to_typed_data``."""
    return sign_digest(compute_message_digest(domain, message), private_key)


def recover_signer(domain: Domain, message: Message, signature: bytes) -> Address:
    """The checksummed address that signed ``message`` in ``domain``; raises ``InvalidSignature``."""
    return Address(compute_checksum_address(recover_address_bytes(compute_message_digest(domain, message),
                                                             signature)))


def check_not_expired(expiry: int, now: Timestamp) -> None:
    """Raise :class:`ExpiredMessage` when ``now`` is past ``expiry`` (valid through ``expiry`` itself)."""
    if now > expiry:
        raise ExpiredMessage(REASON_EXPIRED, field="expiry", expiry=expiry, now=now)


def verify_digest(digest: bytes, signature: bytes, expected_signer: Address) -> None:
    """Raise unless ``signature`` is a canonical signature of ``expected_signer`` over ``digest``."""
    expected = check_address_bytes(expected_signer, "expected_signer")
    recovered = recover_address_bytes(digest, signature)
    if recovered != expected:
        raise WrongSigner(REASON_WRONG_SIGNER, field="signature", expected=expected_signer,
                          recovered=compute_checksum_address(recovered), digest=bytes(digest))


def verify(domain: Domain, message: Message, signature: bytes, expected_signer: Address,
           now: Timestamp) -> Digest:
    """Check expiry and signature of ``message``; return its digest (the replay key) if valid.

    ``domain`` must carry a chain id the caller read from the chain for this check.
    """
    check_not_expired(message.expiry, now)
    digest = compute_message_digest(domain, message)
    verify_digest(digest, signature, expected_signer)
    return digest
