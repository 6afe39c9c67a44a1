"""A general, deliberately plain EIP-712 encoder: the reference the fast path is tested against.

It works from ``eth_signTypedData_v4`` JSON (a ``types`` mapping, ``primaryType``, ``domain``,
``message``) and follows https://eips.ethereum.org/EIPS/eip-712 literally: ``encodeType`` with the
referenced struct types sorted by name, ``encodeData`` for atomic, dynamic, array and struct
members, ``hashStruct`` and ``keccak256(0x1901 ‖ domainSeparator ‖ hashStruct(message))``.
Values are checked strictly: out-of-range or ill-typed values raise :class:`MalformedMessage`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from Crypto.Hash import keccak

from clearhouse.errors import MalformedMessage
from clearhouse.types import Digest

__all__ = [
    "DOMAIN_MEMBER_TYPES",
    "Types",
    "compute_digest",
    "compute_domain_separator",
    "compute_type_hash",
    "encode_data",
    "encode_type",
    "encode_value",
    "hash_struct",
    "hash_typed_data",
    "keccak256",
]

Types = Mapping[str, Sequence[Mapping[str, str]]]
"""Struct definitions: type name -> ordered members ``{"name": ..., "type": ...}``."""

DOMAIN_MEMBER_TYPES: dict[str, str] = {
    "name": "string",
    "version": "string",
    "chainId": "uint256",
    "verifyingContract": "address",
    "salt": "bytes32",
}
"""The ``EIP712Domain`` members EIP-712 defines, in their canonical order."""

_INT_TYPE = re.compile(r"^(u?)int(\d+)$")
_BYTES_TYPE = re.compile(r"^bytes(\d+)$")
_ARRAY_SUFFIX = re.compile(r"^(.*)\[(\d*)\]$")
_HEX = re.compile(r"^0x([0-9a-fA-F]{2})*$")
_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")


def keccak256(data: bytes) -> Digest:
    """Keccak-256 (the pre-standard SHA-3 Ethereum uses)."""
    return Digest(keccak.new(data=data, digest_bits=256).digest())


def _core_type(typ: str) -> str:
    """``Leg[2][]`` -> ``Leg``."""
    return typ.split("[", 1)[0]


def _collect_dependencies(typ: str, types: Types, found: set[str]) -> None:
    core = _core_type(typ)
    if core in found or core not in types:
        return
    found.add(core)
    for member in types[core]:
        _collect_dependencies(member["type"], types, found)


def _encode_one_type(name: str, members: Sequence[Mapping[str, str]]) -> str:
    return name + "(" + ",".join(m["type"] + " " + m["name"] for m in members) + ")"


def encode_type(primary: str, types: Types) -> str:
    """``encodeType``: the primary struct, then every struct it references sorted by name."""
    if primary not in types:
        raise MalformedMessage(f"no definition of struct type {primary!r}", field=primary)
    found: set[str] = set()
    _collect_dependencies(primary, types, found)
    found.discard(primary)
    return "".join(_encode_one_type(name, types[name]) for name in [primary, *sorted(found)])


def compute_type_hash(primary: str, types: Types) -> Digest:
    """``typeHash = keccak256(encodeType(primary))``."""
    return keccak256(encode_type(primary, types).encode())


def _parse_int(value: Any, field: str) -> int:
    if isinstance(value, bool):
        raise MalformedMessage(f"{field}: expected an integer, got a bool", field=field)
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        text = value.strip()
        try:
            return int(text, 16) if text.lower().startswith(("0x", "-0x")) else int(text, 10)
        except ValueError:
            pass
    raise MalformedMessage(f"{field}: expected an integer, got {value!r}", field=field)


def _parse_bytes(value: Any, field: str) -> bytes:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    if isinstance(value, str) and _HEX.match(value):
        return bytes.fromhex(value[2:])
    raise MalformedMessage(f"{field}: expected bytes or 0x-hex, got {value!r}", field=field)


def _encode_atomic(typ: str, value: Any, field: str) -> bytes | None:
    """The 32-byte word of an atomic value, or ``None`` if ``typ`` is not atomic."""
    if match := _INT_TYPE.match(typ):
        bits = int(match.group(2))
        if bits % 8 or not 8 <= bits <= 256:
            raise MalformedMessage(f"{field}: unknown type {typ}", field=field)
        number = _parse_int(value, field)
        low, high = (0, 2**bits - 1) if match.group(1) else (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1)
        if not low <= number <= high:
            raise MalformedMessage(f"{field}: {number} is out of range for {typ}", field=field)
        return number.to_bytes(32, "big", signed=True) if number < 0 else number.to_bytes(32, "big")
    if typ == "bool":
        if not isinstance(value, bool):
            raise MalformedMessage(f"{field}: expected a bool, got {value!r}", field=field)
        return int(value).to_bytes(32, "big")
    if typ == "address":
        if isinstance(value, str):
            raw = bytes.fromhex(value[2:]) if _ADDRESS.match(value) else b""
        else:
            raw = _parse_bytes(value, field)
        if len(raw) != 20:
            raise MalformedMessage(f"{field}: expected a 20-byte address, got {value!r}", field=field)
        return raw.rjust(32, b"\x00")
    if match := _BYTES_TYPE.match(typ):
        size = int(match.group(1))
        if not 1 <= size <= 32:
            raise MalformedMessage(f"{field}: unknown type {typ}", field=field)
        raw = _parse_bytes(value, field)
        if len(raw) != size:
            raise MalformedMessage(f"{field}: expected {size} bytes, got {len(raw)}", field=field)
        return raw.ljust(32, b"\x00")
    return None


def encode_value(typ: str, value: Any, types: Types, field: str = "") -> bytes:
    """The 32-byte ``encodeData`` word of one member value of type ``typ``."""
    if array := _ARRAY_SUFFIX.match(typ):
        inner, length = array.group(1), array.group(2)
        if not isinstance(value, (list, tuple)):
            raise MalformedMessage(f"{field}: expected an array, got {value!r}", field=field)
        if length and len(value) != int(length):
            raise MalformedMessage(f"{field}: expected {length} elements, got {len(value)}", field=field)
        return keccak256(b"".join(encode_value(inner, v, types, f"{field}[{i}]") for i, v in enumerate(value)))
    if typ in types:
        if not isinstance(value, Mapping):
            raise MalformedMessage(f"{field}: expected a {typ} struct, got {value!r}", field=field)
        return hash_struct(typ, value, types, field)
    if typ == "string":
        if not isinstance(value, str):
            raise MalformedMessage(f"{field}: expected a string, got {value!r}", field=field)
        return keccak256(value.encode())
    if typ == "bytes":
        return keccak256(_parse_bytes(value, field))
    word = _encode_atomic(typ, value, field)
    if word is None:
        raise MalformedMessage(f"{field}: no definition of type {typ!r}", field=field)
    return word


def encode_data(primary: str, data: Mapping[str, Any], types: Types, path: str = "") -> bytes:
    """``encodeData``: the members' 32-byte words in declaration order (type hash not included)."""
    words = []
    for member in types[primary]:
        name, field = member["name"], f"{path}.{member['name']}" if path else member["name"]
        if name not in data:
            raise MalformedMessage(f"{field}: missing member of {primary}", field=field)
        words.append(encode_value(member["type"], data[name], types, field))
    extra = set(data) - {m["name"] for m in types[primary]}
    if extra:
        field = sorted(extra)[0]
        raise MalformedMessage(f"{field}: not a member of {primary}", field=f"{path}.{field}" if path else field)
    return b"".join(words)


def hash_struct(primary: str, data: Mapping[str, Any], types: Types, path: str = "") -> Digest:
    """``hashStruct(s) = keccak256(typeHash ‖ encodeData(s))``."""
    return keccak256(compute_type_hash(primary, types) + encode_data(primary, data, types, path))


def compute_domain_separator(domain: Mapping[str, Any], types: Types | None = None) -> Digest:
    """``hashStruct(eip712Domain)``; members from ``types["EIP712Domain"]`` or else from the keys."""
    if types is not None and "EIP712Domain" in types:
        members = types["EIP712Domain"]
    else:
        unknown = sorted(set(domain) - set(DOMAIN_MEMBER_TYPES))
        if unknown:
            raise MalformedMessage(f"{unknown[0]}: not an EIP712Domain member", field=unknown[0])
        members = [{"name": n, "type": t} for n, t in DOMAIN_MEMBER_TYPES.items() if n in domain]
    return hash_struct("EIP712Domain", domain, {"EIP712Domain": members}, "domain")


def compute_digest(domain_separator: bytes, struct_hash: bytes) -> Digest:
    """The signed digest ``keccak256(0x19 ‖ 0x01 ‖ domainSeparator ‖ hashStruct(message))``."""
    return keccak256(b"\x19\x01" + domain_separator + struct_hash)


def hash_typed_data(typed_data: Mapping[str, Any]) -> Digest:
    """The digest a wallet signs for ``eth_signTypedData_v4`` JSON."""
    types, primary = typed_data["types"], typed_data["primaryType"]
    separator = compute_domain_separator(typed_data["domain"], types)
    return compute_digest(separator, hash_struct(primary, typed_data["message"], types))
