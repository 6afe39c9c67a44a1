"""Instruments: names both ways, canonical spelling only, series ids, listing rules."""

from __future__ import annotations

import pytest
from eth_utils import keccak
from hypothesis import given
from hypothesis import strategies as st

from clearhouse.errors import (
    InvalidInstrument,
    MalformedSeriesName,
    OffGrid,
    UnlistedInstrument,
)
from clearhouse.market.instruments import (
    Expiry,
    ListingRules,
    Market,
    OptionKind,
    Pair,
    Series,
    compute_clamped_settlement,
    compute_expiry_timestamp,
    compute_intrinsic_value,
    compute_premium_amount,
    compute_series_id,
    compute_strike_grid,
    format_series_name,
    format_strike,
    get_expiry,
    is_expiry_timestamp,
    parse_series_name,
    parse_strike,
    process_list_expiry,
    validate_premium,
    validate_quantity,
    validate_series,
)
from clearhouse.params import load_params
from clearhouse.types import Price, Quantity, Timestamp

USDC = 10**6
ETH = Pair("ETH", "USDC", 6)
DEC26 = compute_expiry_timestamp(2026, 12, 27)
RULES = ListingRules(strike_step=Price(50 * USDC), premium_tick=Price(USDC // 100),
                     contract_unit=load_params("mainnet").contract_unit)


def test_names_parse_and_format() -> None:
    series = parse_series_name("ETH-27DEC26-3000-C", "USDC", 6)
    assert series == Series(ETH, Timestamp(1_798_358_400), Price(3000 * USDC), OptionKind.CALL)
    assert format_series_name(series) == "ETH-27DEC26-3000-C"
    btc = parse_series_name("BTC-27DEC26-97500-P", "USDC", 6)
    assert btc.strike == 97_500 * USDC and btc.kind is OptionKind.PUT
    doge = parse_series_name("DOGE-3JAN27-0.125-C", "USDC", 6)
    assert doge.strike == 125_000 and doge.expiry == compute_expiry_timestamp(2027, 1, 3)
    assert format_series_name(doge) == "DOGE-3JAN27-0.125-C"


@pytest.mark.parametrize(("name", "field"), [
    ("ETH-27DEC26-3000", "name"),
    ("ETH-27DEC26-3000-C-X", "name"),
    ("eth-27DEC26-3000-C", "underlying"),
    ("-27DEC26-3000-C", "underlying"),
    ("ETH-27DEC26-3000-c", "kind"),
    ("ETH-27DEC26-3000-CALL", "kind"),
    ("ETH-27Dec26-3000-C", "expiry"),
    ("ETH-07DEC26-3000-C", "expiry"),  # canonical days have no leading zero
    ("ETH-31NOV26-3000-C", "expiry"),  # no such day
    ("ETH-27DEC2026-3000-C", "expiry"),
    ("ETH-27XYZ26-3000-C", "expiry"),
    ("ETH-27DEC26-03000-C", "strike"),
    ("ETH-27DEC26-3000.0-C", "strike"),
    ("ETH-27DEC26-3000.-C", "strike"),
    ("ETH-27DEC26-0-C", "strike"),
    ("ETH-27DEC26-0.0000001-C", "strike"),  # more decimals than USDC has
    ("ETH-27DEC26-1e3-C", "strike"),
    ("ETH-27DEC26--3000-C", "name"),
])
def test_malformed_names_say_which_part(name: str, field: str) -> None:
    with pytest.raises(MalformedSeriesName) as info:
        parse_series_name(name, "USDC", 6)
    assert info.value.field == field
    assert isinstance(info.value, ValueError) and info.value.code == "malformed_series_name"


@given(st.from_regex(r"[A-Z][A-Z0-9]{0,5}", fullmatch=True),
       st.integers(min_value=946_713_600 // 86_400, max_value=4_102_387_200 // 86_400),
       st.integers(min_value=1, max_value=10**30), st.sampled_from(OptionKind))
def test_names_round_trip(underlying: str, day: int, strike: int, kind: OptionKind) -> None:
    series = Series(Pair(underlying, "USDC", 6), Timestamp(day * 86_400 + 8 * 3600),
                    Price(strike), kind)
    name = format_series_name(series)
    assert parse_series_name(name, "USDC", 6) == series
    assert format_series_name(parse_series_name(name, "USDC", 6)) == name


def test_strikes_are_exact() -> None:
    assert parse_strike("3000", 6) == 3_000_000_000
    assert parse_strike("0.000001", 6) == 1
    assert format_strike(Price(1), 6) == "0.000001"
    assert format_strike(Price(2_500_000), 6) == "2.5"
    assert parse_strike("12345678901234567890.5", 6) == 12345678901234567890_500000
    with pytest.raises(InvalidInstrument):
        format_strike(Price(0), 6)


def test_expiries_are_at_eight_utc() -> None:
    assert is_expiry_timestamp(DEC26)
    assert not is_expiry_timestamp(DEC26 + 1)
    assert not is_expiry_timestamp(DEC26 - 8 * 3600)
    assert not is_expiry_timestamp(compute_expiry_timestamp(1999, 12, 31))
    assert not is_expiry_timestamp(compute_expiry_timestamp(2100, 1, 1))


def test_series_id_is_keccak_of_the_abi_encoding() -> None:
    series = parse_series_name("ETH-27DEC26-3000-C", "USDC", 6)
    words = [b"ETH".ljust(32, b"\0"), b"USDC".ljust(32, b"\0"), DEC26.to_bytes(32, "big"),
             (3000 * USDC).to_bytes(32, "big"), (0).to_bytes(32, "big")]
    assert compute_series_id(series) == keccak(b"".join(words))
    # a vector for the contracts: keep in step with Vyper's keccak256(abi_encode(...))
    assert compute_series_id(series).hex() == \
        "3ed2488b5e4e99643fce43ad7e812d3cf5b5534d1c7a70f37636cf4b7c43529f"
    put = parse_series_name("ETH-27DEC26-3000-P", "USDC", 6)
    usdt = parse_series_name("ETH-27DEC26-3000-C", "USDT", 6)
    assert len({compute_series_id(series), compute_series_id(put), compute_series_id(usdt)}) == 3


def test_bad_pairs_and_rules() -> None:
    with pytest.raises(InvalidInstrument) as info:
        Pair("eth", "USDC", 6)
    assert info.value.field == "underlying"
    with pytest.raises(InvalidInstrument) as info:
        ListingRules(Price(50), Price(150), 100)  # premium of 1 unit would not be exact
    assert info.value.field == "premium_tick"
    with pytest.raises(InvalidInstrument):
        ListingRules(Price(0), Price(100), 100)


def test_listing_expiries_and_series() -> None:
    market = Market(ETH, RULES)
    expiry = Expiry(ETH, DEC26, Price(15_000 * USDC))
    market = process_list_expiry(market, expiry)
    assert get_expiry(market, DEC26) == expiry
    with pytest.raises(InvalidInstrument, match="already listed"):
        process_list_expiry(market, expiry)
    with pytest.raises(InvalidInstrument) as info:
        process_list_expiry(market, Expiry(ETH, Timestamp(DEC26 + 3600), Price(15_000 * USDC)))
    assert info.value.field == "expiry"
    with pytest.raises(InvalidInstrument):
        process_list_expiry(market, Expiry(Pair("BTC", "USDC", 6), Timestamp(DEC26 + 86_400),
                                           Price(10**12)))
    assert validate_series(market, parse_series_name("ETH-27DEC26-3050-P", "USDC", 6)) == expiry
    with pytest.raises(OffGrid) as info:
        validate_series(market, parse_series_name("ETH-27DEC26-3010-P", "USDC", 6))
    assert info.value.field == "strike"
    with pytest.raises(InvalidInstrument) as info:
        validate_series(market, parse_series_name("ETH-27DEC26-15000-C", "USDC", 6))
    assert info.value.field == "strike"
    with pytest.raises(UnlistedInstrument) as info:
        validate_series(market, parse_series_name("ETH-28DEC26-3000-C", "USDC", 6))
    assert isinstance(info.value, KeyError) and info.value.field == "expiry"


def test_strike_grid_stays_inside_the_cap() -> None:
    expiry = Expiry(ETH, DEC26, Price(3_200 * USDC))
    grid = compute_strike_grid(RULES, expiry, Price(3_010 * USDC), Price(4_000 * USDC))
    assert grid == (3_050 * USDC, 3_100 * USDC, 3_150 * USDC)
    assert compute_strike_grid(RULES, expiry, Price(0), Price(100 * USDC)) == (50 * USDC, 100 * USDC)


def test_quantities_and_premiums() -> None:
    assert validate_quantity(-7) == -7
    for bad in (0, True, 1.5, 2**96):
        with pytest.raises(OffGrid) as info:
            validate_quantity(bad)  # type: ignore[arg-type]
        assert info.value.field == "quantity"
    assert validate_premium(RULES, 12_340_000) == 12_340_000
    for bad_premium in (0, 12_345, -10_000):
        with pytest.raises(OffGrid) as info:
            validate_premium(RULES, bad_premium)
        assert info.value.field == "price"
    # 0.37 contract at 123.45 USDC: exact because the tick is a multiple of contract_unit
    assert compute_premium_amount(Price(123_450_000), Quantity(-37), 100) == 45_676_500
    with pytest.raises(OffGrid):
        compute_premium_amount(Price(1), Quantity(1), 100)


def test_payoffs_and_clamping() -> None:
    assert compute_clamped_settlement(Price(20_000), Price(15_000)) == 15_000
    assert compute_clamped_settlement(Price(-5), Price(15_000)) == 0
    assert compute_intrinsic_value(OptionKind.CALL, Price(100), Price(130)) == 30
    assert compute_intrinsic_value(OptionKind.CALL, Price(100), Price(70)) == 0
    assert compute_intrinsic_value(OptionKind.PUT, Price(100), Price(70)) == 30
