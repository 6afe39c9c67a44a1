"""EIP-712 messages: the domain, the signed message types, one digest function per type, signature
verification (single and batched across processes) and unordered nonces.

``eip712`` is the general reference encoder the fast path (``fast``) is tested against.
"""

from clearhouse.messages import eip712
from clearhouse.messages.abi import to_abi_tuple
from clearhouse.messages.batch import BatchItem, Verdict, verify_batch
from clearhouse.messages.domain import DOMAIN_TYPEHASH, Domain, compute_domain
from clearhouse.messages.fast import (
    TYPEHASHES,
    compute_accept_digest,
    compute_cancel_digest,
    compute_message_digest,
    compute_observation_digest,
    compute_order_digest,
    compute_post_digest,
    compute_quote_digest,
    compute_rfq_digest,
    compute_sign_in_digest,
    compute_vote_digest,
    compute_withdrawal_digest,
)
from clearhouse.messages.nonces import (
    NonceBitmap,
    compute_nonce_position,
    invalidate_nonce,
    is_digest_used,
    is_nonce_used,
    use_digest,
    use_nonce,
)
from clearhouse.messages.schema import MAX_LEGS, Choice, Side, TimeInForce
from clearhouse.messages.signing import recover_signer, sign, sign_digest, verify, verify_digest
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
from clearhouse.messages.typed_json import parse_typed_data

__all__ = [
    "DOMAIN_TYPEHASH",
    "MAX_LEGS",
    "RFQ",
    "TYPEHASHES",
    "Accept",
    "BatchItem",
    "Cancel",
    "Choice",
    "Domain",
    "Leg",
    "Message",
    "NonceBitmap",
    "Observation",
    "Order",
    "Post",
    "Quote",
    "QuoteLeg",
    "Side",
    "SignIn",
    "TimeInForce",
    "Verdict",
    "Vote",
    "Withdrawal",
    "compute_accept_digest",
    "compute_cancel_digest",
    "compute_domain",
    "compute_message_digest",
    "compute_nonce_position",
    "compute_observation_digest",
    "compute_order_digest",
    "compute_post_digest",
    "compute_quote_digest",
    "compute_rfq_digest",
    "compute_sign_in_digest",
    "compute_vote_digest",
    "compute_withdrawal_digest",
    "eip712",
    "invalidate_nonce",
    "is_digest_used",
    "is_nonce_used",
    "parse_typed_data",
    "recover_signer",
    "sign",
    "sign_digest",
    "to_abi_tuple",
    "use_digest",
    "use_nonce",
    "verify",
    "verify_batch",
    "verify_digest",
]
