"""The EIP-712 layout of every clearhouse message: field names, types, order, limits and enums.

This table is the single source the typed-data JSON, the reference encoder, the fast packers and
the documentation are checked against; ``contracts/lib/eip712.vy`` spells the same type strings.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Final

__all__ = [
    "DOMAIN_FIELDS",
    "MAX_LEGS",
    "MAX_NODE_BYTES",
    "MAX_POST_BYTES",
    "MAX_REASON_BYTES",
    "MAX_URI_BYTES",
    "MESSAGE_FIELDS",
    "STRUCT_FIELDS",
    "Choice",
    "FieldSpec",
    "Side",
    "TimeInForce",
    "compute_typed_data_types",
]

FieldSpec = tuple[str, str, str]
"""One struct member: (Python attribute, EIP-712 member name, EIP-712 type)."""

MAX_LEGS: Final = 8
"""Most legs in one RFQ or Quote (a condor has four; the bound keeps on-chain hashing bounded)."""
MAX_REASON_BYTES: Final = 1024
"""Longest ``Vote.reason`` in UTF-8 bytes (``String[1024]`` on-chain)."""
MAX_POST_BYTES: Final = 4096
"""Longest ``Post.body`` in UTF-8 bytes (``String[4096]`` on-chain)."""
MAX_NODE_BYTES: Final = 253
"""Longest ``SignIn.node`` (a DNS host name, optionally with ``:port``) in bytes."""
MAX_URI_BYTES: Final = 1024
"""Longest ``SignIn.uri`` in UTF-8 bytes."""


class Side(IntEnum):
    """Direction of an order, RFQ or quote, from the signer's point of view (``uint8``)."""

    HIDDEN = 0
    """RFQ only: the taker asks for a two-way market without revealing its side."""
    BUY = 1
    """The signer buys (the structure, for RFQs and quotes)."""
    SELL = 2
    """The signer sells."""


class TimeInForce(IntEnum):
    """How long an order may rest on the book (``uint8``)."""

    GTC = 0
    """Good until its expiry: rests on the book."""
    POST_ONLY = 1
    """Rests only; rejected if it would take liquidity."""
    IOC = 2
    """Immediate or cancel: fills what it can now, the rest is cancelled."""
    FOK = 3
    """Fill or kill: fills completely now or not at all."""


class Choice(IntEnum):
    """A governance vote (``uint8``)."""

    AGAINST = 0
    """Against the proposal."""
    FOR = 1
    """For the proposal."""
    ABSTAIN = 2
    """Counts toward quorum only."""


DOMAIN_FIELDS: Final[tuple[FieldSpec, ...]] = (
    ("name", "name", "string"),
    ("version", "version", "string"),
    ("chain_id", "chainId", "uint256"),
    ("verifying_contract", "verifyingContract", "address"),
)
"""``EIP712Domain`` members in canonical order (no salt)."""

STRUCT_FIELDS: Final[dict[str, tuple[FieldSpec, ...]]] = {
    "Leg": (
        ("series_id", "seriesId", "bytes32"),
        ("ratio", "ratio", "uint32"),
        ("is_buy", "isBuy", "bool"),
    ),
    "QuoteLeg": (
        ("series_id", "seriesId", "bytes32"),
        ("ratio", "ratio", "uint32"),
        ("is_buy", "isBuy", "bool"),
        ("price", "price", "uint256"),
    ),
}
"""Nested (non-primary) struct types."""

MESSAGE_FIELDS: Final[dict[str, tuple[FieldSpec, ...]]] = {
    "Order": (
        ("account", "account", "address"),
        ("series_id", "seriesId", "bytes32"),
        ("side", "side", "uint8"),
        ("price", "price", "uint256"),
        ("quantity", "quantity", "uint256"),
        ("time_in_force", "timeInForce", "uint8"),
        ("nonce", "nonce", "uint256"),
        ("expiry", "expiry", "uint64"),
    ),
    "RFQ": (
        ("taker", "taker", "address"),
        ("legs", "legs", "Leg[]"),
        ("size", "size", "uint256"),
        ("side", "side", "uint8"),
        ("nonce", "nonce", "uint256"),
        ("expiry", "expiry", "uint64"),
    ),
    "Quote": (
        ("maker", "maker", "address"),
        ("taker", "taker", "address"),
        ("rfq_id", "rfqId", "bytes32"),
        ("legs", "legs", "QuoteLeg[]"),
        ("side", "side", "uint8"),
        ("size", "size", "uint256"),
        ("nonce", "nonce", "uint256"),
        ("expiry", "expiry", "uint64"),
    ),
    "Accept": (
        ("taker", "taker", "address"),
        ("quote_id", "quoteId", "bytes32"),
        ("size", "size", "uint256"),
        ("nonce", "nonce", "uint256"),
        ("expiry", "expiry", "uint64"),
    ),
    "Cancel": (
        ("account", "account", "address"),
        ("order_hash", "orderHash", "bytes32"),
        ("nonce", "nonce", "uint256"),
        ("expiry", "expiry", "uint64"),
    ),
    "Withdrawal": (
        ("account", "account", "address"),
        ("recipient", "recipient", "address"),
        ("amount", "amount", "uint256"),
        ("nonce", "nonce", "uint256"),
        ("expiry", "expiry", "uint64"),
    ),
    "Observation": (
        ("feed_id", "feedId", "bytes32"),
        ("round", "round", "uint64"),
        ("price", "price", "uint256"),
        ("timestamp", "timestamp", "uint64"),
        ("expiry", "expiry", "uint64"),
    ),
    "Vote": (
        ("voter", "voter", "address"),
        ("proposal_id", "proposalId", "uint256"),
        ("choice", "choice", "uint8"),
        ("reason", "reason", "string"),
        ("expiry", "expiry", "uint64"),
    ),
    "Post": (
        ("author", "author", "address"),
        ("proposal_id", "proposalId", "uint256"),
        ("parent", "parent", "bytes32"),
        ("body", "body", "string"),
        ("expiry", "expiry", "uint64"),
    ),
    "SignIn": (
        ("account", "account", "address"),
        ("node", "node", "string"),
        ("uri", "uri", "string"),
        ("session_nonce", "sessionNonce", "bytes32"),
        ("issued_at", "issuedAt", "uint64"),
        ("expiry", "expiry", "uint64"),
    ),
}
"""Primary (signable) message types, members in signing order."""


def _as_json_fields(fields: tuple[FieldSpec, ...]) -> list[dict[str, str]]:
    return [{"name": name, "type": typ} for _, name, typ in fields]


def compute_typed_data_types(primary: str) -> dict[str, list[dict[str, str]]]:
    """The ``types`` object of ``eth_signTypedData_v4`` JSON for ``primary`` (with ``EIP712Domain``)."""
    types = {"EIP712Domain": _as_json_fields(DOMAIN_FIELDS), primary: _as_json_fields(MESSAGE_FIELDS[primary])}
    for _, _, typ in MESSAGE_FIELDS[primary]:
        core = typ.split("[", 1)[0]
        if core in STRUCT_FIELDS:
            types[core] = _as_json_fields(STRUCT_FIELDS[core])
    return types
