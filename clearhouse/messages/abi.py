"""Messages as ABI tuples: the argument a contract takes for an EIP-712 struct.

The member order is the signing order of :mod:`clearhouse.messages.schema`, which is also the field
order of the Vyper structs in ``contracts/lib/eip712.vy``.
"""

from __future__ import annotations

from typing import Any

from clearhouse.messages.schema import MESSAGE_FIELDS, STRUCT_FIELDS, FieldSpec
from clearhouse.messages.structs import Message

__all__ = ["to_abi_tuple"]


def _abi_value(typ: str, value: Any) -> Any:
    if typ.endswith("[]"):
        inner = STRUCT_FIELDS[typ[:-2]]
        return [_abi_struct(inner, item) for item in value]
    if typ.startswith(("uint", "int")):
        return int(value)
    if typ.startswith("bytes") and typ != "bytes":
        return bytes(value)
    return value


def _abi_struct(fields: tuple[FieldSpec, ...], obj: object) -> tuple[Any, ...]:
    return tuple(_abi_value(typ, getattr(obj, attr)) for attr, _, typ in fields)


def to_abi_tuple(message: Message) -> tuple[Any, ...]:
    """``message`` as the ABI tuple of its Vyper struct (nested legs as lists of tuples)."""
    return _abi_struct(MESSAGE_FIELDS[type(message).__name__], message)
