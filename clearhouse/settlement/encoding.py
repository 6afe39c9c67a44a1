"""The compact, fixed-width byte encoding of operations, windows and the operations hash.

Every operation encodes as a *core* (type byte, then fixed-width big-endian fields; an RFQ fill
adds 70 bytes per leg) and an *auth* part (its 65-byte signatures, none for on-chain actions).
A batch's operations are cut into windows of ``K``; a window's data is its cores concatenated and
its signatures concatenated, and

    window_hash = keccak(keccak(cores) ‖ keccak(signatures))      ops_hash = keccak(window_hash…)

so the signatures can be posted with the cores (default) or withheld behind their hash and revealed
on challenge, with the same commitment. Byte offsets: ``docs/protocol.md`` § Settlement.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import Final, TypeVar

from clearhouse.errors import MalformedOperation
from clearhouse.market.instruments import OptionKind
from clearhouse.messages.checks import compute_checksum_address
from clearhouse.messages.keccak import keccak256
from clearhouse.messages.schema import Side, TimeInForce
from clearhouse.settlement.operations import (
    SIGNATURE_SIZE,
    AcceptTerms,
    CancelOp,
    DepositOp,
    FeeOp,
    ForcedWithdrawalOp,
    Operation,
    OpType,
    OrderTerms,
    QuoteTerms,
    RfqFillOp,
    RfqLeg,
    SettleExpiryOp,
    TickOp,
    TradeOp,
    WithdrawalOp,
    get_op_type,
)
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

E = TypeVar("E", bound=IntEnum)

__all__ = [
    "CORE_SIZES",
    "LEG_SIZE",
    "SIGNATURE_COUNTS",
    "WindowData",
    "compute_core_size",
    "compute_ops_hash",
    "compute_window_hash",
    "compute_windows",
    "decode_operations",
    "decode_window",
    "encode_auth",
    "encode_core",
    "encode_ops_data",
    "split_window",
]

LEG_SIZE: Final = 70
"""Bytes per RFQ leg: expiryId 32 ‖ strike 16 ‖ kind 1 ‖ ratio 4 ‖ isBuy 1 ‖ price 16."""
CORE_SIZES: Final[dict[OpType, int]] = {
    OpType.DEPOSIT: 41,
    OpType.TRADE: 221,
    OpType.RFQ_FILL: 139,  # + LEG_SIZE per leg
    OpType.CANCEL: 53,
    OpType.WITHDRAWAL: 57,
    OpType.FORCED_WITHDRAWAL: 57,
    OpType.FEE: 17,
    OpType.SETTLE_EXPIRY: 37,
    OpType.TICK: 9,
}
"""Core bytes per operation type (an RFQ fill's without its legs)."""
RFQ_LEGS_OFFSET: Final = 138
"""Where an RFQ fill's core holds its leg count (one byte)."""
SIGNATURE_COUNTS: Final[dict[OpType, int]] = {
    OpType.TRADE: 2, OpType.RFQ_FILL: 2, OpType.CANCEL: 1, OpType.WITHDRAWAL: 1,
}
"""Signatures in the auth part per operation type (0 when absent)."""


def compute_core_size(op_type: OpType, legs: int = 0) -> int:
    """Core bytes of an operation of ``op_type`` (with ``legs`` legs for an RFQ fill)."""
    return CORE_SIZES[op_type] + (LEG_SIZE * legs if op_type is OpType.RFQ_FILL else 0)


# --- encoding ----------------------------------------------------------------------------------


def _u(value: int, size: int) -> bytes:
    return value.to_bytes(size, "big")


def _a(address: str) -> bytes:
    return bytes.fromhex(address[2:])


def _order(terms: OrderTerms) -> bytes:
    return b"".join((_u(terms.nonce, 8), _u(terms.price, 16), _u(terms.quantity, 16),
                     _u(terms.time_in_force, 1), _u(terms.expiry, 8)))


def _leg(leg: RfqLeg) -> bytes:
    return b"".join((leg.expiry_id, _u(leg.strike, 16), _u(leg.kind, 1), _u(leg.ratio, 4),
                     _u(int(leg.is_buy), 1), _u(leg.price, 16)))


def _deposit(op: DepositOp) -> bytes:
    return _u(op.account, 4) + _a(op.owner) + _u(op.amount, 16)


def _trade(op: TradeOp) -> bytes:
    return b"".join((_u(op.maker, 4), _u(op.taker, 4), op.expiry_id, _u(op.strike, 16), _u(op.kind, 1),
                     _u(op.maker_side, 1), _u(op.quantity, 16), _u(op.price, 16), _u(op.maker_fee, 16),
                     _u(op.taker_fee, 16), _order(op.maker_order), _order(op.taker_order)))


def _rfq_fill(op: RfqFillOp) -> bytes:
    q, a = op.quote, op.accept
    return b"".join((_u(op.maker, 4), _u(op.taker, 4), _u(op.size, 16), _u(op.maker_fee, 16),
                     _u(op.taker_fee, 16), _u(q.nonce, 8), q.rfq_id, _u(q.side, 1), _u(q.size, 16),
                     _u(q.expiry, 8), _u(a.nonce, 8), _u(a.expiry, 8), _u(len(q.legs), 1),
                     *(_leg(leg) for leg in q.legs)))


def _cancel(op: CancelOp) -> bytes:
    return _u(op.account, 4) + _u(op.nonce, 8) + op.order_hash + _u(op.expiry, 8)


def _withdrawal(op: WithdrawalOp) -> bytes:
    return _u(op.account, 4) + _u(op.nonce, 8) + _a(op.recipient) + _u(op.amount, 16) + _u(op.expiry, 8)


def _forced(op: ForcedWithdrawalOp) -> bytes:
    return _u(op.account, 4) + _a(op.owner) + _u(op.requested, 16) + _u(op.paid, 16)


def _fee(op: FeeOp) -> bytes:
    return _u(op.amount, 16)


def _settle(op: SettleExpiryOp) -> bytes:
    return _u(op.account, 4) + op.expiry_id


def _tick(op: TickOp) -> bytes:
    return _u(op.time, 8)


_ENCODERS: Final[dict[type, Callable[[object], bytes]]] = {
    DepositOp: _deposit, TradeOp: _trade, RfqFillOp: _rfq_fill, CancelOp: _cancel,  # type: ignore[dict-item]
    WithdrawalOp: _withdrawal, ForcedWithdrawalOp: _forced, FeeOp: _fee,  # type: ignore[dict-item]
    SettleExpiryOp: _settle, TickOp: _tick,  # type: ignore[dict-item]
}


def encode_core(op: Operation) -> bytes:
    """The core bytes of ``op``: its type byte, then its fields (everything but signatures)."""
    return bytes((get_op_type(op),)) + _ENCODERS[type(op)](op)


def encode_auth(op: Operation) -> bytes:
    """The auth bytes of ``op``: its signatures in order (maker's then taker's), or nothing."""
    if isinstance(op, TradeOp):
        return op.maker_signature + op.taker_signature
    if isinstance(op, RfqFillOp):
        return op.quote_signature + op.accept_signature
    if isinstance(op, CancelOp | WithdrawalOp):
        return op.signature
    return b""


# --- decoding ----------------------------------------------------------------------------------


class _Reader:
    """A cursor over one window's core bytes and its signature bytes."""

    __slots__ = ("auth", "auth_pos", "core", "pos")

    def __init__(self, core: bytes, auth: bytes) -> None:
        self.core, self.pos, self.auth, self.auth_pos = core, 0, auth, 0

    def take(self, size: int) -> bytes:
        if self.pos + size > len(self.core):
            raise MalformedOperation("operations data ends inside an operation", field="core",
                                     offset=self.pos)
        chunk = self.core[self.pos:self.pos + size]
        self.pos += size
        return chunk

    def uint(self, size: int) -> int:
        return int.from_bytes(self.take(size), "big")

    def address(self) -> Address:
        return compute_checksum_address(self.take(20))

    def signature(self) -> bytes:
        if self.auth_pos + SIGNATURE_SIZE > len(self.auth):
            raise MalformedOperation("signature data ends early", field="auth", offset=self.auth_pos)
        chunk = self.auth[self.auth_pos:self.auth_pos + SIGNATURE_SIZE]
        self.auth_pos += SIGNATURE_SIZE
        return chunk


def _enum(kind: type[E], value: int, field: str) -> E:
    try:
        return kind(value)
    except ValueError:
        raise MalformedOperation(f"{field} = {value} is not a valid {kind.__name__}", field=field) from None


def _side(value: int) -> Side:
    if value not in (Side.BUY, Side.SELL):
        raise MalformedOperation(f"side = {value} must be BUY (1) or SELL (2)", field="side")
    return Side(value)


def _read_order(r: _Reader) -> OrderTerms:
    return OrderTerms(Nonce(r.uint(8)), Price(r.uint(16)), Quantity(r.uint(16)),
                      _enum(TimeInForce, r.uint(1), "timeInForce"), Timestamp(r.uint(8)))


def _read_deposit(r: _Reader) -> DepositOp:
    return DepositOp(AccountId(r.uint(4)), r.address(), Amount(r.uint(16)))


def _read_trade(r: _Reader) -> TradeOp:
    maker, taker, expiry_id = AccountId(r.uint(4)), AccountId(r.uint(4)), ExpiryId(r.take(32))
    strike, kind, side = Price(r.uint(16)), _enum(OptionKind, r.uint(1), "kind"), _side(r.uint(1))
    quantity, price = Quantity(r.uint(16)), Price(r.uint(16))
    maker_fee, taker_fee = Amount(r.uint(16)), Amount(r.uint(16))
    maker_order, taker_order = _read_order(r), _read_order(r)
    return TradeOp(maker, taker, expiry_id, strike, kind, side, quantity, price, maker_fee, taker_fee,
                   maker_order, taker_order, r.signature(), r.signature())


def _read_leg(r: _Reader) -> RfqLeg:
    expiry_id, strike = ExpiryId(r.take(32)), Price(r.uint(16))
    kind, ratio, is_buy = _enum(OptionKind, r.uint(1), "kind"), r.uint(4), r.uint(1)
    if is_buy > 1:
        raise MalformedOperation("isBuy must be 0 or 1", field="isBuy")
    return RfqLeg(expiry_id, strike, kind, ratio, bool(is_buy), Price(r.uint(16)))


def _read_rfq_fill(r: _Reader) -> RfqFillOp:
    maker, taker, size = AccountId(r.uint(4)), AccountId(r.uint(4)), Quantity(r.uint(16))
    maker_fee, taker_fee = Amount(r.uint(16)), Amount(r.uint(16))
    q_nonce, rfq_id, q_side = Nonce(r.uint(8)), Digest(r.take(32)), _side(r.uint(1))
    q_size, q_expiry = Quantity(r.uint(16)), Timestamp(r.uint(8))
    accept = AcceptTerms(Nonce(r.uint(8)), Timestamp(r.uint(8)))
    legs = tuple(_read_leg(r) for _ in range(r.uint(1)))
    quote = QuoteTerms(q_nonce, rfq_id, q_side, q_size, q_expiry, legs)
    return RfqFillOp(maker, taker, size, maker_fee, taker_fee, quote, accept, r.signature(), r.signature())


def _read_cancel(r: _Reader) -> CancelOp:
    return CancelOp(AccountId(r.uint(4)), Nonce(r.uint(8)), Digest(r.take(32)), Timestamp(r.uint(8)),
                    r.signature())


def _read_withdrawal(r: _Reader) -> WithdrawalOp:
    return WithdrawalOp(AccountId(r.uint(4)), Nonce(r.uint(8)), r.address(), Amount(r.uint(16)),
                        Timestamp(r.uint(8)), r.signature())


def _read_forced(r: _Reader) -> ForcedWithdrawalOp:
    return ForcedWithdrawalOp(AccountId(r.uint(4)), r.address(), Amount(r.uint(16)), Amount(r.uint(16)))


def _read_fee(r: _Reader) -> FeeOp:
    return FeeOp(Amount(r.uint(16)))


def _read_settle(r: _Reader) -> SettleExpiryOp:
    return SettleExpiryOp(AccountId(r.uint(4)), ExpiryId(r.take(32)))


def _read_tick(r: _Reader) -> TickOp:
    return TickOp(Timestamp(r.uint(8)))


_DECODERS: Final[dict[int, Callable[[_Reader], Operation]]] = {
    OpType.DEPOSIT: _read_deposit, OpType.TRADE: _read_trade, OpType.RFQ_FILL: _read_rfq_fill,
    OpType.CANCEL: _read_cancel, OpType.WITHDRAWAL: _read_withdrawal,
    OpType.FORCED_WITHDRAWAL: _read_forced, OpType.FEE: _read_fee,
    OpType.SETTLE_EXPIRY: _read_settle, OpType.TICK: _read_tick,
}


def decode_operations(core: bytes, auth: bytes = b"") -> tuple[Operation, ...]:
    """Every operation in ``core`` with its signatures from ``auth``, in order.

    Raises :class:`MalformedOperation` for an unknown type byte, a truncated operation, a field out
    of range, or signature bytes left over or missing.
    """
    reader = _Reader(bytes(core), bytes(auth))
    ops: list[Operation] = []
    while reader.pos < len(reader.core):
        op_type = reader.uint(1)
        decoder = _DECODERS.get(op_type)
        if decoder is None:
            raise MalformedOperation(f"unknown operation type {op_type}", field="type",
                                     offset=reader.pos - 1)
        ops.append(decoder(reader))
    if reader.auth_pos != len(reader.auth):
        raise MalformedOperation("signature data left over", field="auth", offset=reader.auth_pos)
    return tuple(ops)


# --- windows -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WindowData:
    """The posted data of one window of at most ``K`` operations."""

    core: bytes
    """The window's operation cores, concatenated."""
    auth: bytes
    """The window's signatures, concatenated in operation order."""


def compute_windows(ops: Sequence[Operation], k: int) -> tuple[WindowData, ...]:
    """``ops`` cut into windows of ``k`` (the last may be shorter), encoded."""
    if k <= 0:
        raise MalformedOperation("the checkpoint interval must be positive", field="k")
    return tuple(WindowData(b"".join(encode_core(op) for op in ops[i:i + k]),
                            b"".join(encode_auth(op) for op in ops[i:i + k]))
                 for i in range(0, len(ops), k))


def split_window(window: WindowData) -> tuple[tuple[bytes, bytes], ...]:
    """Each operation's ``(core, auth)`` bytes in ``window`` by the structural walk alone (type
    byte, leg count, signature count): no field is range-checked, so an operation no decoder
    accepts still gets its bytes. Raises :class:`MalformedOperation` where the walk itself fails."""
    out: list[tuple[bytes, bytes]] = []
    pos = auth_pos = 0
    core, auth = bytes(window.core), bytes(window.auth)
    while pos < len(core):
        try:
            op_type = OpType(core[pos])
        except ValueError:
            raise MalformedOperation(f"unknown operation type {core[pos]}", field="type", offset=pos) from None
        legs = core[pos + RFQ_LEGS_OFFSET] if op_type is OpType.RFQ_FILL and pos + RFQ_LEGS_OFFSET < len(core) else 0
        size = compute_core_size(op_type, legs)
        sigs = SIGNATURE_COUNTS.get(op_type, 0) * SIGNATURE_SIZE
        if pos + size > len(core) or auth_pos + sigs > len(auth):
            raise MalformedOperation("operations data ends inside an operation", field="core", offset=pos)
        out.append((core[pos:pos + size], auth[auth_pos:auth_pos + sigs]))
        pos, auth_pos = pos + size, auth_pos + sigs
    return tuple(out)


def decode_window(window: WindowData) -> tuple[Operation, ...]:
    """The operations of one window (see :func:`decode_operations`)."""
    return decode_operations(window.core, window.auth)


def compute_window_hash(window: WindowData) -> Digest:
    """``keccak(keccak(core) ‖ keccak(auth))``: the same whether or not the signatures are posted."""
    return Digest(keccak256(keccak256(window.core) + keccak256(window.auth)))


def compute_ops_hash(windows: Sequence[WindowData]) -> Digest:
    """``keccak(window_hash_0 ‖ … ‖ window_hash_{m-1})``: the batch header's commitment to its data."""
    return Digest(keccak256(b"".join(compute_window_hash(w) for w in windows)))


def encode_ops_data(windows: Sequence[WindowData]) -> bytes:
    """What ``Settlement.post_batch`` takes as ``ops_data``: per window, in order,
    ``uint32 len(core) ‖ uint32 len(auth) ‖ core ‖ auth`` (the contract rehashes each window)."""
    return b"".join(len(w.core).to_bytes(4, "big") + len(w.auth).to_bytes(4, "big") + w.core + w.auth
                    for w in windows)
