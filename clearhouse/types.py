"""Scalar types with units, shared by every package.

Money, prices, sizes and times never cross a module boundary as a bare ``int``: each has a
``NewType`` here saying its unit. Everything that touches balances is an exact integer.
"""

from __future__ import annotations

from typing import NewType

__all__ = [
    "AccountId",
    "Address",
    "Amount",
    "BasisPoints",
    "BatchNumber",
    "ChainId",
    "Digest",
    "ExpiryId",
    "FeedId",
    "Gas",
    "Nonce",
    "Price",
    "Quantity",
    "RoundId",
    "Seconds",
    "SeriesId",
    "Timestamp",
    "Wei",
    "format_units",
]

Address = NewType("Address", str)
"""A 20-byte account or contract address as a checksummed ``0x``-prefixed hex string."""

Digest = NewType("Digest", bytes)
"""A 32-byte keccak-256 hash (EIP-712 digest, struct hash, Merkle node)."""

ChainId = NewType("ChainId", int)
"""An EIP-155 chain id."""

Amount = NewType("Amount", int)
"""A token amount in the token's base units (the collateral token has 6 decimals: 1 USDC = 10**6)."""

Wei = NewType("Wei", int)
"""Native ether in wei (bonds and gas payments)."""

Price = NewType("Price", int)
"""A price in quote-token base units per one whole contract of the underlying."""

Quantity = NewType("Quantity", int)
"""An option quantity in contract-granularity units (see ``Params.contract_unit``); signed for positions."""

SeriesId = NewType("SeriesId", bytes)
"""A 32-byte option series id: keccak-256 of the series' canonical ABI encoding (see market/instruments)."""

Timestamp = NewType("Timestamp", int)
"""Unix time in whole seconds (UTC)."""

Seconds = NewType("Seconds", int)
"""A duration in whole seconds."""

Nonce = NewType("Nonce", int)
"""An unordered per-account nonce (uint256): word index in the high 248 bits, bit position in the low 8."""

ExpiryId = NewType("ExpiryId", bytes)
"""A 32-byte expiry id: ``keccak256(abi.encode(bytes32 underlying, bytes32 quote, uint64 expiry))``,
the key of the expiry registry (cap, settlement price) and of positions in the settlement state."""

AccountId = NewType("AccountId", int)
"""A compact account id assigned by the vault's registry (key of the sparse state tree)."""

BatchNumber = NewType("BatchNumber", int)
"""The sequence number of a settlement batch, starting at 1."""

Gas = NewType("Gas", int)
"""EVM gas units."""

BasisPoints = NewType("BasisPoints", int)
"""A ratio in basis points: 10_000 is 100 %. Shares of bonds and stake are floored in these units."""

FeedId = NewType("FeedId", bytes)
"""A 32-byte oracle feed id, e.g. ``keccak256("ETH/USDC")``."""

RoundId = NewType("RoundId", int)
"""An oracle round number of one feed (uint64); stored rounds strictly increase."""


def format_units(value: int, decimals: int) -> str:
    """``value`` base units as an exact decimal string in whole units, without trailing zeros
    (``format_units(-1_500_000, 6) == "-1.5"``)."""
    sign = "-" if value < 0 else ""
    whole, frac = divmod(abs(int(value)), 10**decimals)
    text = f"{whole}.{frac:0{decimals}d}".rstrip("0") if frac else str(whole)
    return sign + text
