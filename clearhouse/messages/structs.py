"""The signed message types: one frozen dataclass per EIP-712 struct, checked on construction.

Field order and EIP-712 names come from :mod:`clearhouse.messages.schema`; a message that exists
is well-formed (every field fits its type), so hashing it can never fail. ``struct_hash()`` uses the
fixed-layout packers of :mod:`clearhouse.messages.fast`; ``to_typed_data()`` gives the standard
``eth_signTypedData_v4`` JSON any wallet can sign.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from clearhouse.errors import MalformedMessage
from clearhouse.messages import fast
from clearhouse.messages.checks import (
    check_address,
    check_bool,
    check_bytes32,
    check_enum,
    check_string,
    check_uint,
)
from clearhouse.messages.domain import Domain
from clearhouse.messages.schema import (
    MAX_LEGS,
    MAX_NODE_BYTES,
    MAX_POST_BYTES,
    MAX_REASON_BYTES,
    MAX_URI_BYTES,
    MESSAGE_FIELDS,
    STRUCT_FIELDS,
    Choice,
    Side,
    TimeInForce,
    compute_typed_data_types,
)
from clearhouse.types import Address, Amount, Digest, Nonce, Price, Quantity, SeriesId, Timestamp

__all__ = [
    "RFQ",
    "Accept",
    "Cancel",
    "Leg",
    "Message",
    "Observation",
    "Order",
    "Post",
    "Quote",
    "QuoteLeg",
    "SignIn",
    "Vote",
    "Withdrawal",
]

_SIDES = range(Side.BUY, Side.SELL + 1)
_RFQ_SIDES = range(Side.HIDDEN, Side.SELL + 1)


def _set(obj: object, name: str, value: object) -> None:
    """Store a normalised value on a frozen dataclass during ``__post_init__``."""
    object.__setattr__(obj, name, value)


def _json_value(typ: str, value: Any) -> Any:
    """One member as wallets expect it: uint64/uint256 as decimal strings, bytes as 0x-hex."""
    if typ.endswith("[]"):
        inner = STRUCT_FIELDS[typ[:-2]]
        return [{name: _json_value(t, getattr(item, attr)) for attr, name, t in inner} for item in value]
    if typ in ("uint256", "uint64"):
        return str(int(value))  # above 2**53 a JSON number would lose precision in JavaScript
    if typ.startswith("uint"):
        return int(value)
    if typ == "bytes32":
        return "0x" + bytes(value).hex()
    return value


def _check_legs(value: object, leg_type: type, field: str) -> tuple[Any, ...]:
    if not isinstance(value, (tuple, list)) or not 1 <= len(value) <= MAX_LEGS:
        raise MalformedMessage(f"{field} must hold 1 to {MAX_LEGS} legs", field=field)
    for i, leg in enumerate(value):
        if not isinstance(leg, leg_type):
            raise MalformedMessage(f"{field}[{i}] must be a {leg_type.__name__}", field=f"{field}[{i}]")
    return tuple(value)


class _Signable:
    """What every signable message offers (typed-data export, struct hash)."""

    __slots__ = ()
    TYPE_NAME: ClassVar[str]

    def to_typed_data(self, domain: Domain) -> dict[str, Any]:
        """Standard ``eth_signTypedData_v4`` JSON: ``types``, ``primaryType``, ``domain``, ``message``."""
        fields = MESSAGE_FIELDS[self.TYPE_NAME]
        return {
            "types": compute_typed_data_types(self.TYPE_NAME),
            "primaryType": self.TYPE_NAME,
            "domain": domain.to_typed_data(),
            "message": {name: _json_value(typ, getattr(self, attr)) for attr, name, typ in fields},
        }

    def struct_hash(self) -> Digest:
        """``hashStruct(message)`` by the fixed-layout packer of this type."""
        raise NotImplementedError


@dataclass(frozen=True, slots=True)
class Leg:
    """One leg of an RFQ: ``Leg(bytes32 seriesId,uint32 ratio,bool isBuy)``."""

    series_id: SeriesId
    """Option series id: ``compute_series_id`` of the series (bytes32)."""
    ratio: int
    """Contracts of this leg per unit of the structure (uint32, ≥ 1)."""
    is_buy: bool
    """True if the buyer of the structure buys this leg (a seller of the structure sells it)."""

    def __post_init__(self) -> None:
        check_bytes32(self.series_id, "seriesId")
        check_uint(self.ratio, 32, "ratio", minimum=1)
        check_bool(self.is_buy, "isBuy")


@dataclass(frozen=True, slots=True)
class QuoteLeg:
    """One priced leg of a quote: ``QuoteLeg(bytes32 seriesId,uint32 ratio,bool isBuy,uint256 price)``."""

    series_id: SeriesId
    """Option series id, as in the RFQ (bytes32)."""
    ratio: int
    """Contracts of this leg per unit of the structure, as in the RFQ (uint32, ≥ 1)."""
    is_buy: bool
    """True if the buyer of the structure buys this leg, as in the RFQ."""
    price: Price
    """Premium per contract of this leg, in quote-token base units (uint256)."""

    def __post_init__(self) -> None:
        check_bytes32(self.series_id, "seriesId")
        check_uint(self.ratio, 32, "ratio", minimum=1)
        check_bool(self.is_buy, "isBuy")
        check_uint(self.price, 256, "price")


@dataclass(frozen=True, slots=True)
class Order(_Signable):
    """A limit order on one series."""

    TYPE_NAME: ClassVar[str] = "Order"
    account: Address
    """The trader's account (the signer)."""
    series_id: SeriesId
    """Option series id: ``compute_series_id`` of the series (bytes32)."""
    side: Side
    """``BUY`` (1) or ``SELL`` (2) (uint8)."""
    price: Price
    """Limit price per contract in quote-token base units (uint256)."""
    quantity: Quantity
    """Contracts to trade, in contract units (uint256, ≥ 1)."""
    time_in_force: TimeInForce
    """``GTC`` (0), ``POST_ONLY`` (1), ``IOC`` (2) or ``FOK`` (3) (uint8)."""
    nonce: Nonce
    """Unordered per-account nonce (uint256), consumed when the order is first accepted."""
    expiry: Timestamp
    """Unix seconds after which the order is void (uint64)."""

    def __post_init__(self) -> None:
        _set(self, "account", check_address(self.account, "account"))
        check_bytes32(self.series_id, "seriesId")
        _set(self, "side", Side(check_enum(self.side, _SIDES, "side")))
        check_uint(self.price, 256, "price")
        check_uint(self.quantity, 256, "quantity", minimum=1)
        _set(self, "time_in_force", TimeInForce(check_enum(self.time_in_force, range(4), "timeInForce")))
        check_uint(self.nonce, 256, "nonce")
        check_uint(self.expiry, 64, "expiry")

    def struct_hash(self) -> Digest:
        """``hashStruct(Order)``."""
        return fast.compute_order_struct_hash(self)


@dataclass(frozen=True, slots=True)
class RFQ(_Signable):
    """A taker's request for quotes on a multi-leg structure; its digest is the RFQ id."""

    TYPE_NAME: ClassVar[str] = "RFQ"
    taker: Address
    """The requesting account (the signer)."""
    legs: tuple[Leg, ...]
    """The structure, 1 to ``MAX_LEGS`` legs (``Leg[]``)."""
    size: Quantity
    """Units of the structure wanted, in contract units (uint256, ≥ 1)."""
    side: Side
    """``HIDDEN`` (0: asks for a two-way market), ``BUY`` (1) or ``SELL`` (2) the structure (uint8)."""
    nonce: Nonce
    """Unordered per-account nonce (uint256); also makes two identical RFQs distinct."""
    expiry: Timestamp
    """Unix seconds after which no quote may answer it (uint64)."""

    def __post_init__(self) -> None:
        _set(self, "taker", check_address(self.taker, "taker"))
        _set(self, "legs", _check_legs(self.legs, Leg, "legs"))
        check_uint(self.size, 256, "size", minimum=1)
        _set(self, "side", Side(check_enum(self.side, _RFQ_SIDES, "side")))
        check_uint(self.nonce, 256, "nonce")
        check_uint(self.expiry, 64, "expiry")

    def struct_hash(self) -> Digest:
        """``hashStruct(RFQ)``."""
        return fast.compute_rfq_struct_hash(self)


@dataclass(frozen=True, slots=True)
class Quote(_Signable):
    """A maker's firm, short-lived price for one RFQ, bound to that RFQ and its taker."""

    TYPE_NAME: ClassVar[str] = "Quote"
    maker: Address
    """The quoting account (the signer)."""
    taker: Address
    """The only account that may accept this quote (the RFQ's taker)."""
    rfq_id: Digest
    """The RFQ answered: its EIP-712 digest (bytes32)."""
    legs: tuple[QuoteLeg, ...]
    """The RFQ's legs in the RFQ's order, each with a price (``QuoteLeg[]``)."""
    side: Side
    """``BUY`` (1) or ``SELL`` (2): the maker's side of the structure; a two-way market is two quotes."""
    size: Quantity
    """Most units of the structure the maker will trade, in contract units (uint256, ≥ 1)."""
    nonce: Nonce
    """Unordered per-account nonce (uint256): parallel quotes never invalidate each other."""
    expiry: Timestamp
    """Unix seconds after which the quote cannot be accepted; quotes live seconds (uint64)."""

    def __post_init__(self) -> None:
        _set(self, "maker", check_address(self.maker, "maker"))
        _set(self, "taker", check_address(self.taker, "taker"))
        check_bytes32(self.rfq_id, "rfqId")
        _set(self, "legs", _check_legs(self.legs, QuoteLeg, "legs"))
        _set(self, "side", Side(check_enum(self.side, _SIDES, "side")))
        check_uint(self.size, 256, "size", minimum=1)
        check_uint(self.nonce, 256, "nonce")
        check_uint(self.expiry, 64, "expiry")

    def struct_hash(self) -> Digest:
        """``hashStruct(Quote)``."""
        return fast.compute_quote_struct_hash(self)


@dataclass(frozen=True, slots=True)
class Accept(_Signable):
    """The taker's acceptance of one quote: all legs fill, atomically, for ``size`` units."""

    TYPE_NAME: ClassVar[str] = "Accept"
    taker: Address
    """The accepting account (the signer; must equal the quote's ``taker``)."""
    quote_id: Digest
    """The accepted quote: its EIP-712 digest (bytes32); binds the RFQ transitively."""
    size: Quantity
    """Units of the structure to trade, at most the quote's size (uint256, ≥ 1)."""
    nonce: Nonce
    """Unordered per-account nonce (uint256)."""
    expiry: Timestamp
    """Unix seconds after which the acceptance is void (uint64)."""

    def __post_init__(self) -> None:
        _set(self, "taker", check_address(self.taker, "taker"))
        check_bytes32(self.quote_id, "quoteId")
        check_uint(self.size, 256, "size", minimum=1)
        check_uint(self.nonce, 256, "nonce")
        check_uint(self.expiry, 64, "expiry")

    def struct_hash(self) -> Digest:
        """``hashStruct(Accept)``."""
        return fast.compute_accept_struct_hash(self)


@dataclass(frozen=True, slots=True)
class Cancel(_Signable):
    """Cancel a resting order by its hash, and/or invalidate a nonce; applying it twice is harmless."""

    TYPE_NAME: ClassVar[str] = "Cancel"
    account: Address
    """The account whose order or nonce is cancelled (the signer)."""
    order_hash: Digest
    """Digest of the order to cancel, or 32 zero bytes to cancel by nonce only (bytes32)."""
    nonce: Nonce
    """The nonce to mark used, so no message carrying it can be accepted any more (uint256)."""
    expiry: Timestamp
    """Unix seconds after which the cancel is void (uint64)."""

    def __post_init__(self) -> None:
        _set(self, "account", check_address(self.account, "account"))
        check_bytes32(self.order_hash, "orderHash")
        check_uint(self.nonce, 256, "nonce")
        check_uint(self.expiry, 64, "expiry")

    def struct_hash(self) -> Digest:
        """``hashStruct(Cancel)``."""
        return fast.compute_cancel_struct_hash(self)


@dataclass(frozen=True, slots=True)
class Withdrawal(_Signable):
    """Move free collateral out of the venue to ``recipient``."""

    TYPE_NAME: ClassVar[str] = "Withdrawal"
    account: Address
    """The account debited (the signer)."""
    recipient: Address
    """Where the collateral is paid on-chain (non-zero)."""
    amount: Amount
    """Collateral in quote-token base units (uint256, ≥ 1)."""
    nonce: Nonce
    """Unordered per-account nonce (uint256)."""
    expiry: Timestamp
    """Unix seconds after which the request is void (uint64)."""

    def __post_init__(self) -> None:
        _set(self, "account", check_address(self.account, "account"))
        _set(self, "recipient", check_address(self.recipient, "recipient"))
        if int(self.recipient, 16) == 0:
            raise MalformedMessage("recipient must not be the zero address", field="recipient")
        check_uint(self.amount, 256, "amount", minimum=1)
        check_uint(self.nonce, 256, "nonce")
        check_uint(self.expiry, 64, "expiry")

    def struct_hash(self) -> Digest:
        """``hashStruct(Withdrawal)``."""
        return fast.compute_withdrawal_struct_hash(self)


@dataclass(frozen=True, slots=True)
class Observation(_Signable):
    """One oracle member's price for one feed and round; two different ones for a round are equivocation."""

    TYPE_NAME: ClassVar[str] = "Observation"
    feed_id: Digest
    """Feed id, e.g. ``keccak256("ETH/USDC")`` (bytes32)."""
    round: int
    """Oracle round number of the feed (uint64); the replay key together with feed and signer."""
    price: Price
    """Observed price of one whole underlying unit in quote-token base units (uint256)."""
    timestamp: Timestamp
    """Unix seconds when the member observed the price (uint64)."""
    expiry: Timestamp
    """Unix seconds after which the observation may not enter a report (uint64)."""

    def __post_init__(self) -> None:
        check_bytes32(self.feed_id, "feedId")
        check_uint(self.round, 64, "round")
        check_uint(self.price, 256, "price")
        check_uint(self.timestamp, 64, "timestamp")
        check_uint(self.expiry, 64, "expiry")

    def struct_hash(self) -> Digest:
        """``hashStruct(Observation)``."""
        return fast.compute_observation_struct_hash(self)


@dataclass(frozen=True, slots=True)
class Vote(_Signable):
    """A governance vote; the tally counts one per (voter, proposal)."""

    TYPE_NAME: ClassVar[str] = "Vote"
    voter: Address
    """The voting account (the signer); its power comes from the proposal's stake snapshot."""
    proposal_id: int
    """The proposal voted on (uint256)."""
    choice: Choice
    """``AGAINST`` (0), ``FOR`` (1) or ``ABSTAIN`` (2) (uint8)."""
    reason: str
    """Free-text reason, at most ``MAX_REASON_BYTES`` UTF-8 bytes (string)."""
    expiry: Timestamp
    """Unix seconds after which the vote cannot be counted (uint64)."""

    def __post_init__(self) -> None:
        _set(self, "voter", check_address(self.voter, "voter"))
        check_uint(self.proposal_id, 256, "proposalId")
        _set(self, "choice", Choice(check_enum(self.choice, range(3), "choice")))
        check_string(self.reason, MAX_REASON_BYTES, "reason")
        check_uint(self.expiry, 64, "expiry")

    def struct_hash(self) -> Digest:
        """``hashStruct(Vote)``."""
        return fast.compute_vote_struct_hash(self)


@dataclass(frozen=True, slots=True)
class Post(_Signable):
    """A signed forum post in a proposal's discussion."""

    TYPE_NAME: ClassVar[str] = "Post"
    author: Address
    """The posting account (the signer)."""
    proposal_id: int
    """The proposal discussed (uint256)."""
    parent: Digest
    """Digest of the post replied to, or 32 zero bytes for a top-level post (bytes32)."""
    body: str
    """The text, at most ``MAX_POST_BYTES`` UTF-8 bytes (string)."""
    expiry: Timestamp
    """Unix seconds after which the forum refuses the post (uint64)."""

    def __post_init__(self) -> None:
        _set(self, "author", check_address(self.author, "author"))
        check_uint(self.proposal_id, 256, "proposalId")
        check_bytes32(self.parent, "parent")
        check_string(self.body, MAX_POST_BYTES, "body")
        check_uint(self.expiry, 64, "expiry")

    def struct_hash(self) -> Digest:
        """``hashStruct(Post)``."""
        return fast.compute_post_struct_hash(self)


@dataclass(frozen=True, slots=True)
class SignIn(_Signable):
    """Log in to one node's API: proves control of ``account`` for one session."""

    TYPE_NAME: ClassVar[str] = "SignIn"
    account: Address
    """The account signing in (the signer)."""
    node: str
    """Host (and port) of the node the session is for, at most ``MAX_NODE_BYTES`` (string)."""
    uri: str
    """Base URI of the node's API, at most ``MAX_URI_BYTES`` UTF-8 bytes (string)."""
    session_nonce: Digest
    """Random challenge the node issued for this login; single use (bytes32)."""
    issued_at: Timestamp
    """Unix seconds when the login was signed (uint64, ≤ expiry)."""
    expiry: Timestamp
    """Unix seconds after which the login cannot be used (uint64)."""

    def __post_init__(self) -> None:
        _set(self, "account", check_address(self.account, "account"))
        check_string(self.node, MAX_NODE_BYTES, "node")
        check_string(self.uri, MAX_URI_BYTES, "uri")
        check_bytes32(self.session_nonce, "sessionNonce")
        check_uint(self.issued_at, 64, "issuedAt")
        check_uint(self.expiry, 64, "expiry")
        if self.issued_at > self.expiry:
            raise MalformedMessage("issuedAt is after expiry", field="issuedAt")

    def struct_hash(self) -> Digest:
        """``hashStruct(SignIn)``."""
        return fast.compute_sign_in_struct_hash(self)


Message = Order | RFQ | Quote | Accept | Cancel | Withdrawal | Observation | Vote | Post | SignIn
"""Any signable clearhouse message."""
