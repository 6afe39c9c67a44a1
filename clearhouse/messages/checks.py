"""Guard clauses for message fields: each returns the (normalised) value or raises ``MalformedMessage``.

A message is checked once, when it is constructed, so everything downstream (digests, packers,
the contracts' ABI decoder) can rely on every field fitting its EIP-712 type.
"""

from __future__ import annotations

import re
from functools import lru_cache

from clearhouse.errors import MalformedMessage
from clearhouse.messages.eip712 import keccak256
from clearhouse.types import Address, Digest

__all__ = [
    "check_address",
    "check_address_bytes", "check_bool", "check_bytes32", "check_enum", "check_string", "check_uint",
]

_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")


@lru_cache(maxsize=65_536)
def compute_checksum_address(raw: bytes) -> Address:
    """EIP-55 mixed-case hex of a 20-byte address (cached: the same accounts sign again and again)."""
    body = raw.hex()
    nibbles = keccak256(body.encode()).hex()
    return Address("0x" + "".join(c.upper() if int(n, 16) >= 8 else c for c, n in zip(body, nibbles, strict=False)))


def check_uint(value: object, bits: int, field: str, *, minimum: int = 0) -> int:
    """An ``int`` (not a ``bool``) in ``[minimum, 2**bits)``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise MalformedMessage(f"{field} must be an integer, got {type(value).__name__}", field=field)
    if not minimum <= value < 1 << bits:
        raise MalformedMessage(f"{field} = {value} is outside [{minimum}, 2**{bits})", field=field)
    return value


def check_enum(value: object, allowed: range, field: str) -> int:
    """A ``uint8`` code in ``allowed``."""
    number = check_uint(value, 8, field)
    if number not in allowed:
        raise MalformedMessage(f"{field} = {number} is not one of {list(allowed)}", field=field)
    return number


def check_bool(value: object, field: str) -> bool:
    """A real ``bool`` (``1`` and ``"true"`` are refused: they hash the same but read ambiguously)."""
    if not isinstance(value, bool):
        raise MalformedMessage(f"{field} must be a bool, got {type(value).__name__}", field=field)
    return value


def check_address(value: object, field: str) -> Address:
    """A 0x-hex address, returned checksummed; a mixed-case address must carry a valid EIP-55 checksum."""
    if not isinstance(value, str) or not _ADDRESS.match(value):
        raise MalformedMessage(f"{field} must be a 0x-prefixed 20-byte hex address", field=field)
    checksummed = compute_checksum_address(bytes.fromhex(value[2:]))
    body = value[2:]
    if body != body.lower() and body != body.upper() and value != checksummed:
        raise MalformedMessage(f"{field} has an invalid EIP-55 checksum", field=field)
    return Address(checksummed)


def check_address_bytes(value: object, field: str) -> bytes:
    """The 20 bytes of a 0x-hex address, any case, without checksum work (for the hot path)."""
    raw = b""
    if isinstance(value, str) and len(value) == 42 and value[:2] == "0x":
        try:
            raw = bytes.fromhex(value[2:])
        except ValueError:
            raw = b""
    if len(raw) != 20:
        raise MalformedMessage(f"{field} must be a 0x-prefixed 20-byte hex address", field=field)
    return raw


def check_bytes32(value: object, field: str) -> Digest:
    """Exactly 32 bytes."""
    if not isinstance(value, bytes) or len(value) != 32:
        raise MalformedMessage(f"{field} must be 32 bytes", field=field)
    return Digest(bytes(value))


def check_string(value: object, max_bytes: int, field: str) -> str:
    """A ``str`` whose UTF-8 encoding is at most ``max_bytes`` long."""
    if not isinstance(value, str):
        raise MalformedMessage(f"{field} must be a string", field=field)
    try:
        size = len(value.encode())
    except UnicodeEncodeError:
        raise MalformedMessage(f"{field} is not encodable as UTF-8", field=field) from None
    if size > max_bytes:
        raise MalformedMessage(f"{field} is {size} bytes; at most {max_bytes} allowed", field=field)
    return value
