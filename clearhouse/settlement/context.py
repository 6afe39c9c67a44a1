"""What the settlement rules read besides the state: listed expiries, the domain, the parameters.

The state-transition function is a function of ``(state, operation, context)``. The context holds
what the chain keeps outside the state tree — the expiry registry (cap per expiry, settlement price
once the oracle has one), the EIP-712 domain, the batch's timestamp and the parameters of the
batch's parameter version — so a fraud proof reads the very same values on-chain. Expiry ids and
series ids are derived here, with the same ABI words the contracts hash.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import Final

from clearhouse.errors import ConfigError, UnlistedExpiry
from clearhouse.market.instruments import Expiry, OptionKind, Pair
from clearhouse.messages.domain import Domain
from clearhouse.messages.keccak import keccak256
from clearhouse.params import Params
from clearhouse.types import (
    AccountId,
    BasisPoints,
    ExpiryId,
    Price,
    Seconds,
    SeriesId,
    Timestamp,
)

__all__ = [
    "DEFAULT_MAX_CLOCK_LAG",
    "GOVERNED_CONTEXT_PARAMETERS",
    "NO_FEE",
    "TREASURY_ACCOUNT",
    "ListedExpiry",
    "ParameterVersion",
    "SettlementContext",
    "compute_context",
    "compute_expiry_id",
    "compute_listed_expiry",
    "compute_parameter_key",
    "compute_parameter_version_of",
    "compute_series_id_of",
    "compute_symbol_word",
    "compute_versioned_context",
    "get_listed_expiry",
]

DEFAULT_MAX_CLOCK_LAG: Final = Seconds(3600)
"""Seconds the settlement clock may lag the batch timestamp when a signed message is applied.

It bounds how far back a coordinator may date a fill (its hindsight over expiring orders). Not yet
a governed parameter: ``Params`` should carry it (see ``docs/decisions/0002``)."""

TREASURY_ACCOUNT: Final = AccountId(0)
"""Default fee account: id 0, the first account the vault registers (the venue's own)."""
NO_FEE: Final = BasisPoints(0)
"""Default fee bound: no trading fees."""


def compute_symbol_word(symbol: str) -> bytes:
    """A symbol as Solidity's ``bytes32("ETH")``: ASCII, left-aligned, zero-padded to 32 bytes."""
    raw = symbol.encode("ascii")
    if len(raw) > 32:
        raise ConfigError(f"symbol {symbol!r} is longer than 32 bytes", field="symbol")
    return raw.ljust(32, b"\0")


def compute_expiry_id(underlying: str, quote: str, timestamp: int) -> ExpiryId:
    """``keccak256(abi.encode(bytes32 underlying, bytes32 quote, uint64 expiry))``."""
    return ExpiryId(keccak256(compute_symbol_word(underlying) + compute_symbol_word(quote)
                              + timestamp.to_bytes(32, "big")))


@lru_cache(maxsize=1 << 16)
def _series_id(underlying: bytes, quote: bytes, timestamp: int, strike: int, kind: int) -> bytes:
    return keccak256(underlying + quote + timestamp.to_bytes(32, "big") + strike.to_bytes(32, "big")
                     + kind.to_bytes(32, "big"))


@dataclass(frozen=True, slots=True)
class ListedExpiry:
    """One expiry of the on-chain registry: what settles there, its cap, its price once known."""

    pair: Pair
    """Underlying and quote (collateral) token."""
    timestamp: Timestamp
    """Expiry time (08:00 UTC); trading its series stops here and settlement may start."""
    cap: Price
    """Settlement prices are clamped to ``[0, cap]`` (quote base units per whole contract)."""
    settlement_price: Price | None = None
    """The oracle's settlement price (TWAP before expiry), or ``None`` while there is none."""
    expiry_id: ExpiryId = field(init=False, repr=False)
    """``compute_expiry_id`` of the pair and timestamp (derived)."""
    underlying_word: bytes = field(init=False, repr=False, compare=False)
    """``bytes32`` of the underlying symbol (derived, for series ids)."""
    quote_word: bytes = field(init=False, repr=False, compare=False)
    """``bytes32`` of the quote symbol (derived, for series ids)."""

    def __post_init__(self) -> None:
        if not 0 <= self.timestamp < 1 << 64:
            raise ConfigError("expiry timestamp must fit uint64", field="timestamp")
        if not 0 < self.cap < 1 << 128:
            raise ConfigError("cap must be in (0, 2**128)", field="cap")
        if self.settlement_price is not None and not 0 <= self.settlement_price < 1 << 256:
            raise ConfigError("settlement price must be a uint256", field="settlement_price")
        object.__setattr__(self, "underlying_word", compute_symbol_word(self.pair.underlying))
        object.__setattr__(self, "quote_word", compute_symbol_word(self.pair.quote))
        object.__setattr__(self, "expiry_id", compute_expiry_id(self.pair.underlying, self.pair.quote,
                                                                self.timestamp))


def compute_listed_expiry(expiry: Expiry, settlement_price: Price | None = None) -> ListedExpiry:
    """The registry entry of a market's listed expiry."""
    return ListedExpiry(expiry.pair, expiry.timestamp, expiry.cap, settlement_price)


def compute_series_id_of(expiry: ListedExpiry, strike: Price, kind: OptionKind) -> SeriesId:
    """The series id of ``(expiry, strike, kind)``: the same bytes as ``compute_series_id``."""
    return SeriesId(_series_id(expiry.underlying_word, expiry.quote_word, expiry.timestamp, strike,
                               int(kind)))


@dataclass(frozen=True, slots=True)
class SettlementContext:
    """Everything an operation is judged against besides the state (one batch, one parameter version)."""

    domain: Domain
    """The deployment's EIP-712 domain: every authorising signature is over a digest in it."""
    expiries: Mapping[ExpiryId, ListedExpiry]
    """The expiry registry by expiry id: caps and settlement prices."""
    timestamp: Timestamp
    """The batch header's timestamp: no tick may pass it."""
    contract_unit: int
    """``Params.contract_unit``: quantities are in ``1 / contract_unit`` contract."""
    max_positions: int
    """``Params.max_positions``: open positions per account."""
    checkpoint_interval: int
    """``Params.checkpoint_interval`` (``K``): operations per window between checkpoint roots."""
    max_clock_lag: Seconds = DEFAULT_MAX_CLOCK_LAG
    """Signed messages apply only while ``clock + max_clock_lag ≥ timestamp``."""
    fee_account: AccountId = TREASURY_ACCOUNT
    """The account a fee sweep credits (the venue's treasury account)."""
    max_fee_bps: BasisPoints = NO_FEE
    """Upper bound of a trading fee per side, in basis points of the fill's premium."""
    parameter_version: int = 1
    """The governed parameter version this batch is verified with (uint32)."""

    def __post_init__(self) -> None:
        for name in ("contract_unit", "max_positions", "checkpoint_interval"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name} must be positive", field=name)
        if self.max_positions > 255:
            raise ConfigError("max_positions must fit one byte", field="max_positions")
        if not 0 <= self.max_fee_bps <= 10_000:
            raise ConfigError("max_fee_bps must be in [0, 10000]", field="max_fee_bps")
        if self.max_clock_lag < 0 or not 0 <= self.timestamp < 1 << 64:
            raise ConfigError("timestamp and max_clock_lag must be non-negative", field="timestamp")
        if not 0 <= self.fee_account < 1 << 32 or not 0 <= self.parameter_version < 1 << 32:
            raise ConfigError("fee_account and parameter_version must fit uint32", field="fee_account")
        for expiry_id, expiry in self.expiries.items():
            if expiry.expiry_id != expiry_id:
                raise ConfigError("expiry registry key is not the expiry's id", field="expiries")


def compute_context(params: Params, domain: Domain, expiries: Iterable[ListedExpiry],
                    timestamp: Timestamp, *, fee_account: AccountId = TREASURY_ACCOUNT,
                    max_fee_bps: BasisPoints = NO_FEE,
                    max_clock_lag: Seconds = DEFAULT_MAX_CLOCK_LAG,
                    parameter_version: int = 1) -> SettlementContext:
    """The context of one batch from the protocol parameters and the expiry registry."""
    return SettlementContext(domain, {e.expiry_id: e for e in expiries}, timestamp,
                             params.contract_unit, params.max_positions,
                             params.checkpoint_interval, max_clock_lag, fee_account, max_fee_bps,
                             parameter_version)


GOVERNED_CONTEXT_PARAMETERS: Final = ("checkpoint_interval", "max_positions", "max_fee_bps")
"""The context fields a batch takes from its parameter version (``ParameterStore`` keys are
``keccak256`` of these names); the rest of the context is the deployment's."""


def compute_parameter_key(name: str) -> bytes:
    """The ``ParameterStore`` key of a parameter: ``keccak256`` of its name (ASCII)."""
    return keccak256(name.encode("ascii"))


@dataclass(frozen=True, slots=True)
class ParameterVersion:
    """The governed parameters of one version: a batch is built and verified under the version
    that applies to its number (``ParameterStore.version_at``)."""

    version: int
    """The version (from 1; uint32 in the header)."""
    checkpoint_interval: int
    """``K`` of the batch: operations per window."""
    max_positions: int
    """Open positions an account may hold after any operation of the batch."""
    max_fee_bps: BasisPoints
    """Upper bound of a trading fee per side, basis points of the fill's premium."""

    def __post_init__(self) -> None:
        if not 1 <= self.version < 1 << 32:
            raise ConfigError("a parameter version is a uint32 from 1", field="version")


def compute_parameter_version_of(ctx: SettlementContext) -> ParameterVersion:
    """The governed parameters a context carries (version 1 of a deployment is its context)."""
    return ParameterVersion(ctx.parameter_version or 1, ctx.checkpoint_interval, ctx.max_positions,
                            ctx.max_fee_bps)


def compute_versioned_context(ctx: SettlementContext, version: ParameterVersion) -> SettlementContext:
    """``ctx`` with the governed fields of ``version``: the context a batch of that version is
    built and judged with."""
    return replace(ctx, checkpoint_interval=version.checkpoint_interval,
                   max_positions=version.max_positions, max_fee_bps=version.max_fee_bps,
                   parameter_version=version.version)


def get_listed_expiry(ctx: SettlementContext, expiry_id: ExpiryId) -> ListedExpiry:
    """The registry entry of ``expiry_id``; :class:`UnlistedExpiry` if there is none."""
    expiry = ctx.expiries.get(expiry_id)
    if expiry is None:
        raise UnlistedExpiry(f"expiry 0x{bytes(expiry_id).hex()} is not listed", field="expiryId",
                             expiry_id=bytes(expiry_id))
    return expiry
