"""ABI leaf values of the claims tree: canonical Python form, JSON form, and encoding.

A claim leaf is a tuple of values of the tree's ``leaf_encoding`` types. Python holds them in one
canonical form (``int`` for integers, ``bytes`` for byte strings, checksummed ``str`` for
addresses, ``tuple`` for arrays and tuples); JSON holds them the way OpenZeppelin's dumps do
(integers as decimal strings, bytes as ``0x`` hex).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from typing import Any

from eth_abi import encode as abi_encode
from eth_abi import is_encodable_type
from eth_abi.exceptions import EncodingError, ParseError
from eth_abi.grammar import ABIType, BasicType, TupleType, parse
from eth_utils import is_address, is_checksum_address, to_checksum_address

from clearhouse.errors import MerkleError

__all__ = ["LeafValue", "compute_abi_encoding", "compute_canonical_leaf", "compute_json_leaf"]

LeafValue = tuple[Any, ...]
"""One claim leaf: a value per ``leaf_encoding`` type, in canonical Python form."""


@cache
def _parse(abi_type: str) -> ABIType:
    try:
        if not is_encodable_type(abi_type):
            raise ValueError("no encoder for it")
        parsed: ABIType = parse(abi_type)
    except (ParseError, ValueError) as exc:
        raise MerkleError(f"bad ABI type {abi_type!r}: {exc}", field="leaf_encoding") from None
    return parsed


def _compute_canonical(t: ABIType, raw: Any) -> Any:
    if t.is_array:
        if isinstance(raw, (str, bytes)) or not isinstance(raw, Sequence):
            raise MerkleError(f"{t} needs a list, got {raw!r}", field="value")
        return tuple(_compute_canonical(t.item_type, item) for item in raw)
    if isinstance(t, TupleType):
        if isinstance(raw, (str, bytes)) or not isinstance(raw, Sequence) or len(raw) != len(t.components):
            raise MerkleError(f"{t} needs {len(t.components)} components, got {raw!r}", field="value")
        return tuple(_compute_canonical(c, r) for c, r in zip(t.components, raw, strict=True))
    if not isinstance(t, BasicType):  # pragma: no cover - the grammar has only these two node kinds
        raise MerkleError(f"unsupported ABI type {t}", field="leaf_encoding")
    return _compute_canonical_basic(t, raw)


def _compute_canonical_basic(t: BasicType, raw: Any) -> Any:
    if t.base == "address":
        mixed_case = isinstance(raw, str) and raw[2:].lower() != raw[2:] and raw[2:].upper() != raw[2:]
        if not is_address(raw) or (mixed_case and not is_checksum_address(raw)):
            raise MerkleError(f"not an address (or bad checksum): {raw!r}", field="value")
        return to_checksum_address(raw)
    if t.base in ("uint", "int"):
        if isinstance(raw, bool) or not isinstance(raw, (int, str)):
            raise MerkleError(f"{t} needs an integer, got {raw!r}", field="value")
        try:
            return raw if isinstance(raw, int) else int(raw, 16 if raw.startswith(("0x", "-0x")) else 10)
        except ValueError:
            raise MerkleError(f"{t} needs an integer, got {raw!r}", field="value") from None
    if t.base == "bytes":
        if isinstance(raw, str):
            try:
                return bytes.fromhex(raw.removeprefix("0x"))
            except ValueError:
                raise MerkleError(f"{t} needs 0x hex, got {raw!r}", field="value") from None
        if isinstance(raw, (bytes, bytearray)):
            return bytes(raw)
        raise MerkleError(f"{t} needs bytes, got {raw!r}", field="value")
    if t.base == "bool" and isinstance(raw, bool):
        return raw
    if t.base == "string" and isinstance(raw, str):
        return raw
    raise MerkleError(f"unsupported value {raw!r} for {t}", field="value")


def _compute_json(t: ABIType, value: Any) -> Any:
    if t.is_array:
        return [_compute_json(t.item_type, item) for item in value]
    if isinstance(t, TupleType):
        return [_compute_json(c, v) for c, v in zip(t.components, value, strict=True)]
    if isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return str(value)
    return "0x" + bytes(value).hex()


def compute_canonical_leaf(leaf_encoding: Sequence[str], raw: Sequence[Any]) -> LeafValue:
    """``raw`` (Python or JSON form) as a canonical :data:`LeafValue`; :class:`MerkleError` if it does not fit."""
    if isinstance(raw, (str, bytes)) or len(raw) != len(leaf_encoding):
        raise MerkleError(f"leaf needs {len(leaf_encoding)} values, got {raw!r}", field="value")
    return tuple(_compute_canonical(_parse(t), r) for t, r in zip(leaf_encoding, raw, strict=True))


def compute_json_leaf(leaf_encoding: Sequence[str], value: LeafValue) -> list[Any]:
    """The JSON form of a canonical leaf (as OpenZeppelin's ``dump()`` writes values)."""
    return [_compute_json(_parse(t), v) for t, v in zip(leaf_encoding, value, strict=True)]


def compute_abi_encoding(leaf_encoding: Sequence[str], value: LeafValue) -> bytes:
    """``abi.encode(value...)`` with the leaf types (not packed)."""
    try:
        return abi_encode(list(leaf_encoding), list(value))
    except (EncodingError, TypeError, ValueError) as exc:
        raise MerkleError(f"cannot ABI-encode {value!r} as {list(leaf_encoding)}: {exc}", field="value") from None
