"""Request and response models of the API: strict pydantic mirrors of the wallet JSON of each
signed message (``to_typed_data(domain)["message"]``), so a client posts exactly what it signed.

Strict everywhere: unknown fields are refused, no type coercion, uint256/uint64 members are
decimal strings (``0`` or no leading zero, at most 78 digits; the message constructors then check
the exact range), uint8/uint32 members JSON integers, hashes 0x-hex, arrays bounded. Converting a
model to a message (:func:`to_message`) runs the message's own checks, which raise
:class:`~clearhouse.errors.MalformedMessage` naming the field.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from clearhouse.messages import MAX_LEGS, Domain, Message
from clearhouse.messages.schema import (
    MAX_NODE_BYTES,
    MAX_POST_BYTES,
    MAX_REASON_BYTES,
    MAX_URI_BYTES,
)
from clearhouse.messages.typed_json import parse_message

__all__ = [
    "AcceptMessage",
    "AccountView",
    "AckView",
    "ActionModel",
    "Address",
    "CancelMessage",
    "ChallengeRequest",
    "ChallengeView",
    "DecimalString",
    "DelegationMessage",
    "DepositRequest",
    "ErrorView",
    "Hash",
    "LegModel",
    "OrderMessage",
    "PostMessage",
    "ProposalRequest",
    "QuoteLegModel",
    "QuoteMessage",
    "RFQMessage",
    "RegisterMakerRequest",
    "SessionRequest",
    "SessionView",
    "SignInMessage",
    "Signature",
    "SignedAccept",
    "SignedCancel",
    "SignedDelegation",
    "SignedOrder",
    "SignedPost",
    "SignedQuote",
    "SignedRFQ",
    "SignedVote",
    "SignedWithdrawal",
    "StrictModel",
    "VoteMessage",
    "WithdrawalMessage",
    "to_message",
]

DecimalString = Annotated[str, StringConstraints(pattern=r"^(0|[1-9][0-9]{0,77})$")]
"""A non-negative integer as a decimal string: exact beyond 2**53, never a float."""
Hash = Annotated[str, StringConstraints(pattern=r"^0x[0-9a-fA-F]{64}$")]
"""32 bytes as 0x-hex."""
Address = Annotated[str, StringConstraints(pattern=r"^0x[0-9a-fA-F]{40}$")]
"""An account address as 0x-hex (any case; checksummed by the message constructors)."""
Signature = Annotated[str, StringConstraints(pattern=r"^0x[0-9a-fA-F]{130}$")]
"""A 65-byte ``r ‖ s ‖ v`` signature as 0x-hex."""
Uint8 = Annotated[int, Field(ge=0, le=255)]
Uint32 = Annotated[int, Field(ge=1, le=2**32 - 1)]


class StrictModel(BaseModel):
    """No unknown fields, no coercion, immutable."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


# --- signed messages (wallet JSON) ------------------------------------------------------------


class OrderMessage(StrictModel):
    """``Order`` as signed: see :class:`clearhouse.messages.Order`."""

    account: Address
    seriesId: Hash
    side: Annotated[int, Field(ge=1, le=2)]
    price: DecimalString
    quantity: DecimalString
    timeInForce: Annotated[int, Field(ge=0, le=3)]
    nonce: DecimalString
    expiry: DecimalString


class LegModel(StrictModel):
    """One RFQ leg."""

    seriesId: Hash
    ratio: Uint32
    isBuy: bool


class QuoteLegModel(StrictModel):
    """One priced quote leg."""

    seriesId: Hash
    ratio: Uint32
    isBuy: bool
    price: DecimalString


class RFQMessage(StrictModel):
    """``RFQ`` as signed."""

    taker: Address
    legs: Annotated[list[LegModel], Field(min_length=1, max_length=MAX_LEGS)]
    size: DecimalString
    side: Annotated[int, Field(ge=0, le=2)]
    nonce: DecimalString
    expiry: DecimalString


class QuoteMessage(StrictModel):
    """``Quote`` as signed."""

    maker: Address
    taker: Address
    rfqId: Hash
    legs: Annotated[list[QuoteLegModel], Field(min_length=1, max_length=MAX_LEGS)]
    side: Annotated[int, Field(ge=1, le=2)]
    size: DecimalString
    nonce: DecimalString
    expiry: DecimalString


class AcceptMessage(StrictModel):
    """``Accept`` as signed."""

    taker: Address
    quoteId: Hash
    size: DecimalString
    nonce: DecimalString
    expiry: DecimalString


class CancelMessage(StrictModel):
    """``Cancel`` as signed: by order/quote hash, by nonce (hash of 32 zero bytes), or both."""

    account: Address
    orderHash: Hash
    nonce: DecimalString
    expiry: DecimalString


class WithdrawalMessage(StrictModel):
    """``Withdrawal`` as signed."""

    account: Address
    recipient: Address
    amount: DecimalString
    nonce: DecimalString
    expiry: DecimalString


class SignInMessage(StrictModel):
    """``SignIn`` as signed (the challenge's fields, signed by the account)."""

    account: Address
    node: Annotated[str, StringConstraints(max_length=MAX_NODE_BYTES)]
    uri: Annotated[str, StringConstraints(max_length=MAX_URI_BYTES)]
    sessionNonce: Hash
    issuedAt: DecimalString
    expiry: DecimalString


class SignedOrder(StrictModel):
    message: OrderMessage
    signature: Signature


class SignedCancel(StrictModel):
    message: CancelMessage
    signature: Signature


class SignedRFQ(StrictModel):
    message: RFQMessage
    signature: Signature


class SignedQuote(StrictModel):
    message: QuoteMessage
    signature: Signature


class SignedAccept(StrictModel):
    message: AcceptMessage
    signature: Signature


class SignedWithdrawal(StrictModel):
    message: WithdrawalMessage
    signature: Signature


class PostMessage(StrictModel):
    """``Post`` as signed: a discussion post under a proposal."""

    author: Address
    proposalId: DecimalString
    parent: Hash
    body: Annotated[str, StringConstraints(max_length=MAX_POST_BYTES)]
    expiry: DecimalString


class VoteMessage(StrictModel):
    """``Vote`` as signed: ``choice`` 0 against, 1 for, 2 abstain."""

    voter: Address
    proposalId: DecimalString
    choice: Annotated[int, Field(ge=0, le=2)]
    reason: Annotated[str, StringConstraints(max_length=MAX_REASON_BYTES)]
    expiry: DecimalString


class DelegationMessage(StrictModel):
    """``Delegation(address delegator,address delegate,uint256 proposalId,uint64 expiry)`` as signed
    (``proposalId`` 0: every proposal)."""

    delegator: Address
    delegate: Address
    proposalId: DecimalString
    expiry: DecimalString


class SignedPost(StrictModel):
    message: PostMessage
    signature: Signature


class SignedVote(StrictModel):
    message: VoteMessage
    signature: Signature


class SignedDelegation(StrictModel):
    message: DelegationMessage
    signature: Signature


class ActionModel(StrictModel):
    """One executable action: ``parameter``/``fees`` name a governed parameter, ``committee``/
    ``coordinator`` an address (value 1 adds, 0 removes)."""

    kind: Literal["parameter", "committee", "coordinator", "fees"]
    target: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    value: DecimalString


class ProposalRequest(StrictModel):
    """A new proposal by the session's account (a draft until its vote opens)."""

    title: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    body: Annotated[str, StringConstraints(max_length=20_000)]
    actions: Annotated[list[ActionModel], Field(min_length=1, max_length=16)]


class SessionRequest(StrictModel):
    """The signed ``SignIn`` that turns a challenge into a session."""

    message: SignInMessage
    signature: Signature


_PRIMARY = {OrderMessage: "Order", RFQMessage: "RFQ", QuoteMessage: "Quote",
            AcceptMessage: "Accept", CancelMessage: "Cancel", WithdrawalMessage: "Withdrawal",
            SignInMessage: "SignIn", PostMessage: "Post", VoteMessage: "Vote"}


def to_message(domain: Domain, model: StrictModel) -> Message:
    """The clearhouse message a validated model describes (its own range checks apply). The layout
    does not depend on ``domain`` (kept for callers); the signature check binds the domain."""
    return parse_message(_PRIMARY[type(model)], model.model_dump())


# --- other requests ---------------------------------------------------------------------------


class ChallengeRequest(StrictModel):
    """Ask for a sign-in challenge for ``account``."""

    account: Address


class DepositRequest(StrictModel):
    """Devnet faucet only: credit ``amount`` quote base units to ``account``."""

    account: Address
    amount: DecimalString


class RegisterMakerRequest(StrictModel):
    """Register the session's account as a maker (receives RFQs). No fields."""


# --- responses --------------------------------------------------------------------------------


class ErrorView(BaseModel):
    """Every 4xx body: a stable ``code``, the offending ``field`` (dotted path), a message."""

    code: str
    field: str | None
    message: str


class AckView(BaseModel):
    """An accepted action: its log number and result (hashes 0x-hex, amounts decimal strings)."""

    seq: int
    kind: str
    duplicate: bool
    result: dict[str, Any]


class ChallengeView(BaseModel):
    """The ``SignIn`` to sign (also as ``eth_signTypedData_v4`` JSON)."""

    message: dict[str, Any]
    typedData: dict[str, Any]


class SessionView(BaseModel):
    """A bearer token for ``Authorization: Bearer <token>`` until ``expiresAt`` (unix seconds)."""

    token: str
    account: str
    expiresAt: int
    tokenType: Literal["bearer"] = "bearer"


class AccountView(BaseModel):
    """Balance, exact requirement (quote base units) and positions (contract units per series)."""

    account: str
    balance: str
    requirement: str
    positions: dict[str, str]
