"""Messages back from ``eth_signTypedData_v4`` JSON: what a wallet signed, as a clearhouse message.

Strict by design: the ``types`` must be exactly clearhouse's for the primary type, the message must
carry exactly its members, integers come as JSON integers or decimal strings (never floats or
booleans), ``bytes32`` as 0x-hex. Anything else is a :class:`MalformedMessage` naming the field.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from clearhouse.errors import MalformedMessage
from clearhouse.messages.domain import Domain
from clearhouse.messages.schema import (
    MESSAGE_FIELDS,
    STRUCT_FIELDS,
    FieldSpec,
    compute_typed_data_types,
)
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
from clearhouse.types import ChainId

__all__ = ["parse_message", "parse_typed_data"]

_MESSAGE_TYPES: dict[str, type[Any]] = {cls.__name__: cls for cls in (
    Order, RFQ, Quote, Accept, Cancel, Withdrawal, Observation, Vote, Post, SignIn)}
_STRUCT_TYPES: dict[str, type[Any]] = {"Leg": Leg, "QuoteLeg": QuoteLeg}


def _parse_int(value: object, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise MalformedMessage(f"{field} must be an integer or a decimal string", field=field)
    if isinstance(value, str):
        if not value.isascii() or not value.isdigit() or len(value) > 78:
            raise MalformedMessage(f"{field} must be a non-negative decimal string", field=field)
        return int(value)
    return value


def _parse_bytes32(value: object, field: str) -> bytes:
    if not isinstance(value, str) or not value.startswith("0x") or len(value) != 66:
        raise MalformedMessage(f"{field} must be 0x followed by 64 hex digits", field=field)
    try:
        return bytes.fromhex(value[2:])
    except ValueError:
        raise MalformedMessage(f"{field} must be 0x followed by 64 hex digits", field=field) from None


def _parse_value(typ: str, value: object, field: str) -> Any:
    if typ.endswith("[]"):
        if not isinstance(value, list):
            raise MalformedMessage(f"{field} must be a list", field=field)
        core = typ[:-2]
        return tuple(_parse_struct(_STRUCT_TYPES[core], STRUCT_FIELDS[core], item, f"{field}[{i}]")
                     for i, item in enumerate(value))
    if typ.startswith("uint"):
        return _parse_int(value, field)
    if typ == "bytes32":
        return _parse_bytes32(value, field)
    if typ == "bool":
        if not isinstance(value, bool):
            raise MalformedMessage(f"{field} must be true or false", field=field)
        return value
    if not isinstance(value, str):  # address, string
        raise MalformedMessage(f"{field} must be a string", field=field)
    return value


def _parse_struct(cls: type[Any], fields: tuple[FieldSpec, ...], data: object, where: str) -> Any:
    if not isinstance(data, Mapping):
        raise MalformedMessage(f"{where} must be an object", field=where)
    prefix = "" if where == "message" else f"{where}."  # message members are named bare
    names = {name for _, name, _ in fields}
    unknown = sorted(set(data) - names)
    missing = sorted(names - set(data))
    if unknown or missing:
        bad = (unknown or missing)[0]
        what = "unknown member" if unknown else "missing member"
        raise MalformedMessage(f"{what} {bad!r} in {where}", field=f"{prefix}{bad}")
    return cls(**{attr: _parse_value(typ, data[name], f"{prefix}{name}") for attr, name, typ in fields})


def parse_message(primary: str, data: object) -> Message:
    """The ``primary`` message (``Order``, ``RFQ``…) from the ``message`` member of typed-data JSON,
    with the same checks as :func:`parse_typed_data` (for callers that know the domain)."""
    if primary not in _MESSAGE_TYPES:
        raise MalformedMessage(f"primaryType must be one of {', '.join(_MESSAGE_TYPES)}", field="primaryType")
    return _parse_struct(_MESSAGE_TYPES[primary], MESSAGE_FIELDS[primary], data, "message")  # type: ignore[no-any-return]


def parse_typed_data(data: Mapping[str, Any]) -> tuple[Domain, Message]:
    """The domain and message of typed-data JSON that uses clearhouse's exact types."""
    primary = data.get("primaryType")
    if not isinstance(primary, str) or primary not in _MESSAGE_TYPES:
        raise MalformedMessage(f"primaryType must be one of {', '.join(_MESSAGE_TYPES)}", field="primaryType")
    if data.get("types") != compute_typed_data_types(primary):
        raise MalformedMessage(f"types differ from clearhouse's {primary} layout", field="types")
    dom = data.get("domain")
    if not isinstance(dom, Mapping) or set(dom) != {"name", "version", "chainId", "verifyingContract"}:
        raise MalformedMessage("domain must have exactly name, version, chainId, verifyingContract",
                               field="domain")
    domain = Domain(
        _parse_value("string", dom["name"], "domain.name"),
        _parse_value("string", dom["version"], "domain.version"),
        ChainId(_parse_int(dom["chainId"], "domain.chainId")),
        _parse_value("address", dom["verifyingContract"], "domain.verifyingContract"),
    )
    message = _parse_struct(_MESSAGE_TYPES[primary], MESSAGE_FIELDS[primary], data.get("message"), "message")
    return domain, message
