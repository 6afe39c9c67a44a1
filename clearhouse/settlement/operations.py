"""Settlement operations: one frozen dataclass per operation type, checked on construction.

An operation that exists is well-formed — every field fits the width its encoding gives it — so
encoding never fails and decoding is construction. Whether it is *valid* against a state is the
state-transition function's business (:mod:`clearhouse.settlement.stf`).

Signed operations carry the signed message's fields that the operation does not already state
(``*Terms``) and the 65-byte signatures separately, so the signature part of the encoding can be
posted or withheld as a unit (``docs/decisions/0002``).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Final

from clearhouse.errors import MalformedMessage, MalformedOperation
from clearhouse.market.instruments import MAX_QUANTITY, OptionKind
from clearhouse.messages.checks import check_address
from clearhouse.messages.schema import MAX_LEGS, Side, TimeInForce
from clearhouse.settlement.state import compute_entry_key
from clearhouse.types import (
    AccountId,
    Address,
    Amount,
    Digest,
    ExpiryId,
    Nonce,
    Price,
    Quantity,
    Timestamp,
)

__all__ = [
    "SIGNATURE_SIZE",
    "AcceptTerms",
    "CancelOp",
    "DepositOp",
    "FeeOp",
    "ForcedWithdrawalOp",
    "OpType",
    "Operation",
    "OrderTerms",
    "QuoteTerms",
    "RfqFillOp",
    "RfqLeg",
    "SettleExpiryOp",
    "TickOp",
    "TradeOp",
    "WithdrawalOp",
    "get_op_type",
    "get_touched_accounts",
    "get_touched_entries",
]

SIGNATURE_SIZE: Final = 65
"""Bytes of one ``r ‖ s ‖ v`` signature."""


class OpType(IntEnum):
    """The first byte of every encoded operation."""

    DEPOSIT = 1
    """Credit the next entry of the vault's deposit queue."""
    TRADE = 2
    """One order-book fill between two signed orders."""
    RFQ_FILL = 3
    """Every leg of an accepted quote, atomically."""
    CANCEL = 4
    """A signed cancel: invalidates a nonce (and the order holding it)."""
    WITHDRAWAL = 5
    """A signed withdrawal of free collateral."""
    FORCED_WITHDRAWAL = 6
    """The next entry of the vault's forced-withdrawal queue."""
    FEE = 7
    """Sweep collected fees to the fee account."""
    SETTLE_EXPIRY = 8
    """Turn one account's positions of one expiry into balance at the settlement price."""
    TICK = 9
    """Move the settlement clock forward."""


# --- field checks ------------------------------------------------------------------------------


def _uint(value: object, bits: int, field: str, minimum: int = 0) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value < 1 << bits:
        raise MalformedOperation(f"{field} must be an integer in [{minimum}, 2**{bits})", field=field,
                                 value=value)


def _bytes(value: object, size: int, field: str) -> None:
    if not isinstance(value, bytes) or len(value) != size:
        raise MalformedOperation(f"{field} must be {size} bytes", field=field)


def _address(obj: object, name: str, value: object) -> None:
    try:
        object.__setattr__(obj, name, check_address(value, name))
    except MalformedMessage as exc:
        raise MalformedOperation(exc.message, field=name) from None


def _enum(obj: object, name: str, value: object, kind: type[IntEnum], allowed: tuple[int, ...]) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or int(value) not in allowed:
        raise MalformedOperation(f"{name} must be one of {allowed}", field=name, value=value)
    object.__setattr__(obj, name, kind(int(value)))


def _account(value: object, field: str) -> None:
    _uint(value, 32, field)


def _quantity(value: object, field: str) -> None:
    _uint(value, 128, field, minimum=1)
    if isinstance(value, int) and value > MAX_QUANTITY:
        raise MalformedOperation(f"{field} must be at most 2**95", field=field, value=value)


def _signature(value: object, field: str) -> None:
    _bytes(value, SIGNATURE_SIZE, field)


# --- operations --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DepositOp:
    """Credit the next deposit-queue entry; the first deposit under an id registers its owner."""

    account: AccountId
    """The id the vault assigned to ``owner`` (uint32)."""
    owner: Address
    """The depositing address (checksummed)."""
    amount: Amount
    """Collateral deposited, quote base units (uint128, ≥ 1)."""

    def __post_init__(self) -> None:
        _account(self.account, "account")
        _address(self, "owner", self.owner)
        _uint(self.amount, 128, "amount", minimum=1)


@dataclass(frozen=True, slots=True)
class OrderTerms:
    """The fields of a signed ``Order`` that a trade does not already state (account, series and
    side come from the trade)."""

    nonce: Nonce
    """The order's nonce (uint64 in settlement): the consumed slot is ``(account, nonce)``."""
    price: Price
    """The order's limit price per whole contract (uint128)."""
    quantity: Quantity
    """The order's signed size in contract units (uint128, ≥ 1): fills never exceed it."""
    time_in_force: TimeInForce
    """As signed (part of the digest; settlement does not interpret it)."""
    expiry: Timestamp
    """As signed (uint64): the order cannot fill once the clock is past it."""

    def __post_init__(self) -> None:
        _uint(self.nonce, 64, "nonce")
        _uint(self.price, 128, "price")
        _uint(self.quantity, 128, "quantity", minimum=1)
        _enum(self, "time_in_force", self.time_in_force, TimeInForce, (0, 1, 2, 3))
        _uint(self.expiry, 64, "expiry")


@dataclass(frozen=True, slots=True)
class TradeOp:
    """One order-book fill: ``quantity`` of one series between two signed orders at ``price``."""

    maker: AccountId
    """The maker's account id (uint32)."""
    taker: AccountId
    """The taker's account id (uint32, ≠ maker)."""
    expiry_id: ExpiryId
    """The series' expiry (registry key)."""
    strike: Price
    """The series' strike (uint128)."""
    kind: OptionKind
    """The series' kind: call (0) or put (1)."""
    maker_side: Side
    """``BUY`` (1) or ``SELL`` (2): the maker's direction; the taker's is the opposite."""
    quantity: Quantity
    """Contract units traded (1 … 2^95)."""
    price: Price
    """Premium per whole contract (uint128); the buyer pays ``price × quantity / contract_unit``."""
    maker_fee: Amount
    """Fee charged to the maker (uint128) into the fee pool."""
    taker_fee: Amount
    """Fee charged to the taker (uint128) into the fee pool."""
    maker_order: OrderTerms
    """The maker's signed order (the rest of it)."""
    taker_order: OrderTerms
    """The taker's signed order (the rest of it)."""
    maker_signature: bytes
    """The maker's 65-byte signature over its order."""
    taker_signature: bytes
    """The taker's 65-byte signature over its order."""

    def __post_init__(self) -> None:
        _account(self.maker, "maker")
        _account(self.taker, "taker")
        _bytes(self.expiry_id, 32, "expiryId")
        _uint(self.strike, 128, "strike")
        _enum(self, "kind", self.kind, OptionKind, (0, 1))
        _enum(self, "maker_side", self.maker_side, Side, (1, 2))
        _quantity(self.quantity, "quantity")
        _uint(self.price, 128, "price")
        _uint(self.maker_fee, 128, "makerFee")
        _uint(self.taker_fee, 128, "takerFee")
        if not isinstance(self.maker_order, OrderTerms) or not isinstance(self.taker_order, OrderTerms):
            raise MalformedOperation("orders must be OrderTerms", field="makerOrder")
        _signature(self.maker_signature, "makerSignature")
        _signature(self.taker_signature, "takerSignature")


@dataclass(frozen=True, slots=True)
class RfqLeg:
    """One leg of an accepted quote: the series terms, its ratio and direction, its price."""

    expiry_id: ExpiryId
    """The leg series' expiry."""
    strike: Price
    """The leg series' strike (uint128)."""
    kind: OptionKind
    """Call (0) or put (1)."""
    ratio: int
    """Contracts per unit of the structure (uint32, ≥ 1): the leg trades ``ratio × size``."""
    is_buy: bool
    """True if the structure's buyer buys this leg."""
    price: Price
    """The quoted premium per whole contract of this leg (uint128)."""

    def __post_init__(self) -> None:
        _bytes(self.expiry_id, 32, "expiryId")
        _uint(self.strike, 128, "strike")
        _enum(self, "kind", self.kind, OptionKind, (0, 1))
        _uint(self.ratio, 32, "ratio", minimum=1)
        if not isinstance(self.is_buy, bool):
            raise MalformedOperation("isBuy must be a bool", field="isBuy")
        _uint(self.price, 128, "price")


@dataclass(frozen=True, slots=True)
class QuoteTerms:
    """The fields of the maker's signed ``Quote`` (maker and taker come from the accounts)."""

    nonce: Nonce
    """The quote's nonce (uint64)."""
    rfq_id: Digest
    """The RFQ the quote answers (bytes32, part of the digest)."""
    side: Side
    """The maker's side of the structure: ``BUY`` (1) or ``SELL`` (2)."""
    size: Quantity
    """Most structure units the maker will trade (uint128, ≥ 1): fills never exceed it."""
    expiry: Timestamp
    """As signed (uint64)."""
    legs: tuple[RfqLeg, ...]
    """1 to ``MAX_LEGS`` legs, in the quote's order."""

    def __post_init__(self) -> None:
        _uint(self.nonce, 64, "nonce")
        _bytes(self.rfq_id, 32, "rfqId")
        _enum(self, "side", self.side, Side, (1, 2))
        _uint(self.size, 128, "size", minimum=1)
        _uint(self.expiry, 64, "expiry")
        if (not isinstance(self.legs, tuple) or not 1 <= len(self.legs) <= MAX_LEGS
                or not all(isinstance(leg, RfqLeg) for leg in self.legs)):
            raise MalformedOperation(f"a quote has 1 to {MAX_LEGS} RfqLeg legs", field="legs")


@dataclass(frozen=True, slots=True)
class AcceptTerms:
    """The fields of the taker's signed ``Accept`` (taker, quote id and size come from the fill)."""

    nonce: Nonce
    """The accept's nonce (uint64)."""
    expiry: Timestamp
    """As signed (uint64)."""

    def __post_init__(self) -> None:
        _uint(self.nonce, 64, "nonce")
        _uint(self.expiry, 64, "expiry")


@dataclass(frozen=True, slots=True)
class RfqFillOp:
    """An accepted quote: every leg fills for ``size`` structure units at once, or nothing does."""

    maker: AccountId
    """The quoting account (uint32)."""
    taker: AccountId
    """The accepting account (uint32, ≠ maker)."""
    size: Quantity
    """Structure units accepted (the accept's signed size, uint128, ≥ 1)."""
    maker_fee: Amount
    """Fee charged to the maker (uint128)."""
    taker_fee: Amount
    """Fee charged to the taker (uint128)."""
    quote: QuoteTerms
    """The maker's quote."""
    accept: AcceptTerms
    """The taker's accept."""
    quote_signature: bytes
    """The maker's signature over the quote."""
    accept_signature: bytes
    """The taker's signature over the accept."""

    def __post_init__(self) -> None:
        _account(self.maker, "maker")
        _account(self.taker, "taker")
        _uint(self.size, 128, "size", minimum=1)
        _uint(self.maker_fee, 128, "makerFee")
        _uint(self.taker_fee, 128, "takerFee")
        if not isinstance(self.quote, QuoteTerms) or not isinstance(self.accept, AcceptTerms):
            raise MalformedOperation("quote and accept must be QuoteTerms and AcceptTerms", field="quote")
        _signature(self.quote_signature, "quoteSignature")
        _signature(self.accept_signature, "acceptSignature")


@dataclass(frozen=True, slots=True)
class CancelOp:
    """A signed cancel: the slot ``(account, nonce)`` becomes cancelled."""

    account: AccountId
    """The cancelling account (uint32)."""
    nonce: Nonce
    """The nonce cancelled (uint64); an order cancels in settlement through its own nonce."""
    order_hash: Digest
    """As signed: the order named (recorded if the slot was empty), or zero."""
    expiry: Timestamp
    """As signed (uint64)."""
    signature: bytes
    """The account owner's signature over the ``Cancel``."""

    def __post_init__(self) -> None:
        _account(self.account, "account")
        _uint(self.nonce, 64, "nonce")
        _bytes(self.order_hash, 32, "orderHash")
        _uint(self.expiry, 64, "expiry")
        _signature(self.signature, "signature")


@dataclass(frozen=True, slots=True)
class WithdrawalOp:
    """A signed withdrawal of free collateral to ``recipient``."""

    account: AccountId
    """The debited account (uint32)."""
    nonce: Nonce
    """The withdrawal's nonce (uint64)."""
    recipient: Address
    """Who is paid on-chain (non-zero)."""
    amount: Amount
    """Quote base units (uint128, ≥ 1)."""
    expiry: Timestamp
    """As signed (uint64)."""
    signature: bytes
    """The account owner's signature over the ``Withdrawal``."""

    def __post_init__(self) -> None:
        _account(self.account, "account")
        _uint(self.nonce, 64, "nonce")
        _address(self, "recipient", self.recipient)
        if int(self.recipient, 16) == 0:
            raise MalformedOperation("recipient must not be the zero address", field="recipient")
        _uint(self.amount, 128, "amount", minimum=1)
        _uint(self.expiry, 64, "expiry")
        _signature(self.signature, "signature")


@dataclass(frozen=True, slots=True)
class ForcedWithdrawalOp:
    """The next forced-withdrawal queue entry: pays ``min(requested, free collateral)`` to ``owner``."""

    account: AccountId
    """The account id named in the queue entry (uint32)."""
    owner: Address
    """The address that queued it (the vault checked it owns ``account``); it is paid."""
    requested: Amount
    """Amount asked for (uint128, ≥ 1)."""
    paid: Amount
    """Amount paid: must be ``min(requested, free collateral)`` (0 if the leaf is not ``owner``'s)."""

    def __post_init__(self) -> None:
        _account(self.account, "account")
        _address(self, "owner", self.owner)
        _uint(self.requested, 128, "requested", minimum=1)
        _uint(self.paid, 128, "paid")


@dataclass(frozen=True, slots=True)
class FeeOp:
    """Sweep ``amount`` of collected fees to the context's fee account."""

    amount: Amount
    """Quote base units (uint128, ≥ 1)."""

    def __post_init__(self) -> None:
        _uint(self.amount, 128, "amount", minimum=1)


@dataclass(frozen=True, slots=True)
class SettleExpiryOp:
    """Settle ``account``'s positions of one expiry at its clamped settlement price."""

    account: AccountId
    """The account settled (uint32)."""
    expiry_id: ExpiryId
    """The expiry settled."""

    def __post_init__(self) -> None:
        _account(self.account, "account")
        _bytes(self.expiry_id, 32, "expiryId")


@dataclass(frozen=True, slots=True)
class TickOp:
    """Move the settlement clock to ``time`` (never backwards, never past the batch timestamp)."""

    time: Timestamp
    """Unix seconds (uint64)."""

    def __post_init__(self) -> None:
        _uint(self.time, 64, "time")


Operation = (DepositOp | TradeOp | RfqFillOp | CancelOp | WithdrawalOp | ForcedWithdrawalOp | FeeOp
             | SettleExpiryOp | TickOp)
"""Any settlement operation."""

_OP_TYPES: Final[dict[type, OpType]] = {
    DepositOp: OpType.DEPOSIT, TradeOp: OpType.TRADE, RfqFillOp: OpType.RFQ_FILL,
    CancelOp: OpType.CANCEL, WithdrawalOp: OpType.WITHDRAWAL,
    ForcedWithdrawalOp: OpType.FORCED_WITHDRAWAL, FeeOp: OpType.FEE,
    SettleExpiryOp: OpType.SETTLE_EXPIRY, TickOp: OpType.TICK,
}


def get_op_type(op: Operation) -> OpType:
    """The type byte of ``op``."""
    return _OP_TYPES[type(op)]


def get_touched_accounts(op: Operation, fee_account: AccountId) -> tuple[AccountId, ...]:
    """The account leaves ``op`` reads (and may write), in order, without repeats (at most 2)."""
    if isinstance(op, TradeOp | RfqFillOp):
        return (op.maker,) if op.maker == op.taker else (op.maker, op.taker)
    if isinstance(op, FeeOp):
        return (fee_account,)
    if isinstance(op, TickOp):
        return ()
    return (op.account,)


def get_touched_entries(op: Operation) -> tuple[int, ...]:
    """The consumed-entry keys ``op`` reads and may write, in order, without repeats (at most 2)."""
    if isinstance(op, TradeOp):
        keys = (compute_entry_key(op.maker, op.maker_order.nonce),
                compute_entry_key(op.taker, op.taker_order.nonce))
    elif isinstance(op, RfqFillOp):
        keys = (compute_entry_key(op.maker, op.quote.nonce), compute_entry_key(op.taker, op.accept.nonce))
    elif isinstance(op, CancelOp | WithdrawalOp):
        return (compute_entry_key(op.account, op.nonce),)
    else:
        return ()
    return keys[:1] if keys[0] == keys[1] else keys
