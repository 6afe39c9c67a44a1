"""Instruments: pairs, expiries with their settlement caps, option series, names, ids, listing rules.

Everything here is consensus-relevant and exact: strikes, caps and premiums are :data:`Price` integers
in quote-token base units per whole contract; quantities are :data:`Quantity` integers in units of
``1 / contract_unit`` contract. ``parse_*``/``format_*`` are pure like ``compute_*``.

Series names follow the exchange convention ``ETH-27DEC26-3000-C``: underlying, expiry date (day
without a leading zero, upper-case English month, two-digit year; expiries are at 08:00 UTC), strike
in whole quote-token units (decimals allowed, no trailing zeros: ``DOGE-3JAN27-0.25-P``), ``C``/``P``.
Only the canonical spelling parses, so ``format(parse(name)) == name`` for every accepted name.

A series id is ``keccak256(abi.encode(bytes32 underlying, bytes32 quote, uint64 expiry,
uint256 strike, uint8 kind))`` where a symbol is its ASCII bytes left-aligned and zero-padded (as
Solidity's ``bytes32("ETH")``) and ``kind`` is 0 for a call, 1 for a put. Vyper computes the same with
``keccak256(abi_encode(...))``.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from eth_abi import encode
from eth_utils import keccak

from clearhouse.errors import InvalidInstrument, MalformedSeriesName, OffGrid, UnlistedInstrument
from clearhouse.types import Amount, Price, Quantity, SeriesId, Timestamp, format_units

__all__ = [
    "EXPIRY_HOUR_UTC",
    "MAX_QUANTITY",
    "Expiry",
    "ListingRules",
    "Market",
    "OptionKind",
    "Pair",
    "Series",
    "compute_clamped_settlement",
    "compute_expiry_timestamp",
    "compute_intrinsic_value",
    "compute_premium_amount",
    "compute_series_id",
    "compute_strike_grid",
    "format_expiry_code",
    "format_series_name",
    "format_strike",
    "get_expiry",
    "is_expiry_timestamp",
    "is_on_premium_tick",
    "is_on_strike_grid",
    "parse_expiry_code",
    "parse_series_name",
    "parse_strike",
    "process_list_expiry",
    "validate_expiry",
    "validate_premium",
    "validate_quantity",
    "validate_series",
]

EXPIRY_HOUR_UTC = 8
"""Expiries settle at 08:00 UTC, the convention of the large crypto options venues."""
_DAY = 86_400
_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_SYMBOL = re.compile(r"[A-Z][A-Z0-9]{0,9}")
_EXPIRY_CODE = re.compile(r"([1-9][0-9]?)([A-Z]{3})([0-9]{2})")
_STRIKE = re.compile(r"(0|[1-9][0-9]*)(?:\.([0-9]*[1-9]))?")
_UINT256 = 2**256
_FIRST_EXPIRY = 946_713_600  # 2000-01-01 08:00 UTC: two-digit years in names mean 20YY
_LAST_EXPIRY = 4_102_387_200  # 2099-12-31 08:00 UTC
MAX_QUANTITY = Quantity(2**95)
"""Largest absolute position or trade quantity: keeps ``quantity × price`` far inside uint256."""


class OptionKind(enum.IntEnum):
    """Call or put; the value is the ``uint8`` used in the series id encoding."""

    CALL = 0
    PUT = 1


@dataclass(frozen=True, slots=True)
class Pair:
    """An underlying priced in a quote token, e.g. ETH in USDC."""

    underlying: str
    """Underlying symbol: 1-10 upper-case letters or digits, starting with a letter (``ETH``)."""
    quote: str
    """Quote (collateral) token symbol, same alphabet (``USDC``)."""
    quote_decimals: int
    """Decimals of the quote token: a price of one whole quote unit is ``10**quote_decimals``."""

    def __post_init__(self) -> None:
        for field in ("underlying", "quote"):
            if not _SYMBOL.fullmatch(getattr(self, field)):
                raise InvalidInstrument(f"bad symbol {getattr(self, field)!r}", field=field)
        if not 0 <= self.quote_decimals <= 36:
            raise InvalidInstrument("quote_decimals must be in [0, 36]", field="quote_decimals")


@dataclass(frozen=True, slots=True)
class Expiry:
    """A listed expiry of one pair, with its settlement cap."""

    pair: Pair
    """The pair whose settlement price this expiry uses."""
    timestamp: Timestamp
    """Settlement time: a day at 08:00 UTC."""
    cap: Price
    """Settlement prices are clamped to ``[0, cap]`` (quote base units per contract); bounds every loss."""


@dataclass(frozen=True, slots=True)
class Series:
    """One European, cash-settled option series."""

    pair: Pair
    """Underlying and quote token."""
    expiry: Timestamp
    """Expiry (settlement) time, 08:00 UTC."""
    strike: Price
    """Strike in quote base units per whole contract."""
    kind: OptionKind
    """Call or put."""


@dataclass(frozen=True, slots=True)
class ListingRules:
    """What may be listed and traded on a market (one pair)."""

    strike_step: Price
    """Strikes are positive multiples of this (quote base units)."""
    premium_tick: Price
    """Premiums per whole contract are positive multiples of this; a multiple of ``contract_unit`` so
    that the premium of any quantity is an exact integer amount."""
    contract_unit: int
    """``Params.contract_unit``: quantities are integers in units of ``1 / contract_unit`` contract."""

    def __post_init__(self) -> None:
        for field in ("strike_step", "premium_tick", "contract_unit"):
            if getattr(self, field) <= 0:
                raise InvalidInstrument(f"{field} must be positive", field=field)
        if self.premium_tick % self.contract_unit:
            raise InvalidInstrument("premium_tick must be a multiple of contract_unit",
                                    field="premium_tick")


@dataclass(frozen=True, slots=True)
class Market:
    """The listed expiries of one pair under one set of listing rules."""

    pair: Pair
    """The pair traded."""
    rules: ListingRules
    """Strike grid, premium tick, contract granularity."""
    expiries: tuple[Expiry, ...] = ()
    """Listed expiries, in listing order (timestamps unique)."""


# --- dates -------------------------------------------------------------------------------------


def is_expiry_timestamp(timestamp: int) -> bool:
    """Whether ``timestamp`` is some day at 08:00:00 UTC within the years 2000-2099."""
    return timestamp % _DAY == EXPIRY_HOUR_UTC * 3600 and _FIRST_EXPIRY <= timestamp <= _LAST_EXPIRY


def compute_expiry_timestamp(year: int, month: int, day: int) -> Timestamp:
    """The 08:00 UTC timestamp of a calendar day."""
    return Timestamp(int(datetime(year, month, day, EXPIRY_HOUR_UTC, tzinfo=UTC).timestamp()))


def format_expiry_code(timestamp: Timestamp) -> str:
    """``27DEC26`` for 2026-12-27 08:00 UTC (no leading zero on the day)."""
    if not is_expiry_timestamp(timestamp):
        raise InvalidInstrument(f"{timestamp} is not an 08:00 UTC expiry", field="expiry")
    day = datetime.fromtimestamp(timestamp, UTC)
    return f"{day.day}{_MONTHS[day.month - 1]}{day.year % 100:02d}"


def parse_expiry_code(code: str) -> Timestamp:
    """Inverse of :func:`format_expiry_code`; only the canonical spelling is accepted."""
    match = _EXPIRY_CODE.fullmatch(code)
    if match is None or match[2] not in _MONTHS:
        raise MalformedSeriesName(f"bad expiry {code!r}: want e.g. 27DEC26", field="expiry")
    try:
        return compute_expiry_timestamp(2000 + int(match[3]), _MONTHS.index(match[2]) + 1,
                                        int(match[1]))
    except ValueError as exc:
        raise MalformedSeriesName(f"no such day {code!r}", field="expiry") from exc


# --- strikes and names -------------------------------------------------------------------------


def format_strike(strike: Price, decimals: int) -> str:
    """A strike in whole quote units: ``3000``, ``97500``, ``0.25`` (no trailing zeros)."""
    if strike <= 0:
        raise InvalidInstrument("strike must be positive", field="strike")
    return format_units(strike, decimals)


def parse_strike(text: str, decimals: int) -> Price:
    """Inverse of :func:`format_strike`: exact, canonical, positive, at most ``decimals`` decimals."""
    match = _STRIKE.fullmatch(text)
    if match is None:
        raise MalformedSeriesName(f"bad strike {text!r}", field="strike")
    frac = match[2] or ""
    if len(frac) > decimals:
        raise MalformedSeriesName(f"strike {text!r} has more than {decimals} decimals", field="strike")
    strike = int(match[1]) * 10**decimals + int(frac.ljust(decimals, "0") or 0)
    if not 0 < strike < _UINT256:
        raise MalformedSeriesName(f"strike {text!r} out of range", field="strike")
    return Price(strike)


def format_series_name(series: Series) -> str:
    """``ETH-27DEC26-3000-C``."""
    kind = "C" if series.kind is OptionKind.CALL else "P"
    return (f"{series.pair.underlying}-{format_expiry_code(series.expiry)}-"
            f"{format_strike(series.strike, series.pair.quote_decimals)}-{kind}")


def parse_series_name(name: str, quote: str, quote_decimals: int) -> Series:
    """Parse ``ETH-27DEC26-3000-C`` for a market quoted in ``quote``; raises
    :class:`MalformedSeriesName` with ``field`` naming the bad part."""
    parts = name.split("-")
    if len(parts) != 4:
        raise MalformedSeriesName(f"{name!r}: want UNDERLYING-DMMMYY-STRIKE-C|P", field="name")
    underlying, code, strike, kind = parts
    if not _SYMBOL.fullmatch(underlying):
        raise MalformedSeriesName(f"bad underlying {underlying!r}", field="underlying")
    if kind not in ("C", "P"):
        raise MalformedSeriesName(f"bad kind {kind!r}: want C or P", field="kind")
    return Series(Pair(underlying, quote, quote_decimals), parse_expiry_code(code),
                  parse_strike(strike, quote_decimals),
                  OptionKind.CALL if kind == "C" else OptionKind.PUT)


def _symbol_bytes32(symbol: str) -> bytes:
    return symbol.encode("ascii").ljust(32, b"\0")


def compute_series_id(series: Series) -> SeriesId:
    """keccak256 of the canonical ABI encoding (module docstring); what signed messages name."""
    if not 0 <= series.expiry < 2**64 or not 0 < series.strike < _UINT256:
        raise InvalidInstrument("expiry or strike out of range", field="series")
    encoded = encode(["bytes32", "bytes32", "uint64", "uint256", "uint8"],
                     [_symbol_bytes32(series.pair.underlying), _symbol_bytes32(series.pair.quote),
                      series.expiry, series.strike, int(series.kind)])
    return SeriesId(keccak(encoded))


# --- payoffs -----------------------------------------------------------------------------------


def compute_clamped_settlement(price: Price, cap: Price) -> Price:
    """The settlement price actually used: ``price`` clamped to ``[0, cap]``."""
    return Price(min(max(price, 0), cap))


def compute_intrinsic_value(kind: OptionKind, strike: Price, settlement: Price) -> Price:
    """Payoff of one whole long contract at ``settlement`` (quote base units)."""
    if kind is OptionKind.CALL:
        return Price(max(0, settlement - strike))
    return Price(max(0, strike - settlement))


# --- listing rules -----------------------------------------------------------------------------


def is_on_strike_grid(rules: ListingRules, strike: Price) -> bool:
    """Whether ``strike`` is a positive multiple of the strike step."""
    return strike > 0 and strike % rules.strike_step == 0


def is_on_premium_tick(rules: ListingRules, premium: Price) -> bool:
    """Whether ``premium`` (per whole contract) is a positive multiple of the premium tick."""
    return premium > 0 and premium % rules.premium_tick == 0


def compute_strike_grid(rules: ListingRules, expiry: Expiry, low: Price, high: Price
                        ) -> tuple[Price, ...]:
    """Listable strikes in ``[low, high]``: on the grid and strictly inside ``(0, cap)``."""
    step = rules.strike_step
    first = max(-(-low // step), 1) * step
    last = min(high, expiry.cap - 1)
    return tuple(Price(k) for k in range(first, last + 1, step))


def validate_expiry(rules: ListingRules, expiry: Expiry) -> None:
    """An expiry is listable: 08:00 UTC, and its cap leaves room for at least one strike."""
    if not is_expiry_timestamp(expiry.timestamp):
        raise InvalidInstrument(f"{expiry.timestamp} is not an 08:00 UTC expiry", field="expiry")
    if expiry.cap <= rules.strike_step or expiry.cap >= _UINT256:
        raise InvalidInstrument("cap must exceed one strike step", field="cap")


def get_expiry(market: Market, timestamp: Timestamp) -> Expiry:
    """The listed expiry at ``timestamp``; :class:`UnlistedInstrument` if there is none."""
    for expiry in market.expiries:
        if expiry.timestamp == timestamp:
            return expiry
    raise UnlistedInstrument(f"no {market.pair.underlying} expiry at {timestamp}", field="expiry")


def process_list_expiry(market: Market, expiry: Expiry) -> Market:
    """List a new expiry (with its cap, fixed for the life of the expiry)."""
    validate_expiry(market.rules, expiry)
    if expiry.pair != market.pair:
        raise InvalidInstrument("expiry is for another pair", field="pair")
    if any(e.timestamp == expiry.timestamp for e in market.expiries):
        raise InvalidInstrument(f"expiry {expiry.timestamp} already listed", field="expiry")
    return replace(market, expiries=(*market.expiries, expiry))


def validate_series(market: Market, series: Series) -> Expiry:
    """A series is tradable: its pair and expiry are listed, strike on the grid and below the cap.
    Returns its expiry."""
    if series.pair != market.pair:
        raise UnlistedInstrument("series is for another pair", field="pair")
    expiry = get_expiry(market, series.expiry)
    if not is_on_strike_grid(market.rules, series.strike):
        raise OffGrid(f"strike {series.strike} not a multiple of {market.rules.strike_step}",
                      field="strike")
    if series.strike >= expiry.cap:
        raise InvalidInstrument("strike must be below the expiry's cap", field="strike")
    return expiry


def validate_quantity(quantity: int) -> Quantity:
    """A trade quantity is a non-zero integer number of contract units, at most ``MAX_QUANTITY``."""
    if isinstance(quantity, bool) or not isinstance(quantity, int):
        raise OffGrid("quantity must be an integer number of contract units", field="quantity")
    if quantity == 0 or abs(quantity) > MAX_QUANTITY:
        raise OffGrid(f"quantity must be non-zero and at most {MAX_QUANTITY}", field="quantity")
    return Quantity(quantity)


def validate_premium(rules: ListingRules, premium: int) -> Price:
    """A premium per whole contract is a positive multiple of the premium tick."""
    if isinstance(premium, bool) or not isinstance(premium, int):
        raise OffGrid("premium must be an integer in quote base units", field="price")
    if not is_on_premium_tick(rules, Price(premium)):
        raise OffGrid(f"premium {premium} not a positive multiple of {rules.premium_tick}",
                      field="price")
    return Price(premium)


def compute_premium_amount(premium: Price, quantity: Quantity, contract_unit: int) -> Amount:
    """Premium paid for ``|quantity|`` contract units at ``premium`` per whole contract; exact
    (on-tick premiums make it so), otherwise :class:`OffGrid`."""
    amount, rest = divmod(premium * abs(quantity), contract_unit)
    if rest:
        raise OffGrid("premium × quantity is not a whole number of base units", field="price")
    return Amount(amount)
