"""Marks and account Greeks: a series is valued at its book's implied vol (mid, else one side, else
the default), and an account's Greeks are the sum of Black-76 Greeks at those marks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from clearhouse.market.instruments import OptionKind, Series
from clearhouse.market.marks import (
    DEFAULT_VOL,
    Mark,
    MarkSource,
    compute_account_greeks,
    compute_mark,
)
from clearhouse.market.pricing import (
    compute_black76_greeks,
    compute_black76_price,
    compute_year_fraction,
)
from clearhouse.messages import Side
from clearhouse.node.coordinator import Coordinator
from clearhouse.sim import market_world as mw
from clearhouse.store import open_store
from clearhouse.types import Amount, Price, Quantity, Timestamp

SPOT = 3000.0
CALL = Series(mw.PAIR, mw.EXPIRY, Price(3000 * mw.USDC), OptionKind.CALL)
PUT = Series(mw.PAIR, mw.EXPIRY, Price(3000 * mw.USDC), OptionKind.PUT)
LATER = Series(mw.PAIR, mw.LATER, Price(3000 * mw.USDC), OptionKind.CALL)
YEARS = compute_year_fraction(mw.NOW, mw.EXPIRY)


def premium(series: Series, vol: float) -> Price:
    """The Black-76 premium of ``series`` at ``vol`` on the 0.01 USDC tick."""
    years = compute_year_fraction(mw.NOW, series.expiry)
    price = float(compute_black76_price(SPOT, series.strike / mw.USDC, years, vol, 0.0,
                                        series.kind is OptionKind.CALL))
    return mw.px(price)


def test_a_mid_marks_the_series_at_its_implied_vol() -> None:
    bid, ask = premium(CALL, 0.70), premium(CALL, 0.90)
    mark = compute_mark(CALL, bid, ask, SPOT, mw.NOW)
    assert mark.source is MarkSource.MID
    mid = float(compute_black76_price(SPOT, 3000.0, YEARS, mark.vol, 0.0, True))
    assert mid == pytest.approx((bid + ask) // 2 / mw.USDC, rel=1e-12)
    assert 0.70 < mark.vol < 0.90


def test_one_side_marks_it_and_no_usable_quote_falls_back_to_the_default() -> None:
    bid = premium(PUT, 0.55)
    assert compute_mark(PUT, bid, None, SPOT, mw.NOW).source is MarkSource.BID
    assert compute_mark(PUT, bid, None, SPOT, mw.NOW).vol == pytest.approx(0.55, abs=2e-4)
    assert compute_mark(PUT, None, None, SPOT, mw.NOW) == Mark(DEFAULT_VOL, MarkSource.DEFAULT)
    # an ask above the upper bound (a put is worth at most its strike) says nothing about vol
    silly = Price(6000 * mw.USDC)
    assert compute_mark(PUT, None, silly, SPOT, mw.NOW) == Mark(DEFAULT_VOL, MarkSource.DEFAULT)
    # a mid outside the bounds too ((bid + ask) / 2 > strike) falls back to the side that has a vol
    assert compute_mark(PUT, bid, silly, SPOT, mw.NOW).source is MarkSource.BID
    # at or after expiry there is no vol to imply
    assert compute_mark(CALL, bid, None, SPOT, mw.EXPIRY).source is MarkSource.DEFAULT


def test_account_greeks_sum_the_legs_at_their_marks() -> None:
    positions = {CALL: Quantity(250), PUT: Quantity(-100), LATER: Quantity(0)}
    marks = {CALL: Mark(0.8, MarkSource.MID), PUT: Mark(0.6, MarkSource.DEFAULT), LATER: Mark(0.7, MarkSource.MID)}
    got = compute_account_greeks(positions, marks, SPOT, mw.NOW, mw.UNIT)
    g = compute_black76_greeks(SPOT, 3000.0, YEARS, np.array([0.8, 0.6]), 0.0, np.array([True, False]))
    q = np.array([2.5, -1.0])
    assert got.value == pytest.approx(float(q @ g.price), rel=1e-12)
    assert got.delta == pytest.approx(float(q @ g.delta), rel=1e-12)
    assert got.vega == pytest.approx(float(q @ g.vega), rel=1e-12)
    assert got.theta == pytest.approx(float(q @ g.theta), rel=1e-12)
    # an expired position is worth its settlement, not a model price; nothing held is all zeros
    assert compute_account_greeks(positions, marks, SPOT, mw.EXPIRY, mw.UNIT).value == 0.0
    assert compute_account_greeks({}, {}, SPOT, mw.NOW, mw.UNIT).delta == 0.0


def test_the_coordinator_marks_held_series_from_its_book(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'node.db'}")
    listings, ids = mw.build_listings()
    c = Coordinator(store, mw.DOMAIN, listings, mw.UNIT)
    w = mw.make_world(1)
    a, b, m = mw.ADDRESSES[:3]
    for account in (a, b, m):
        c.on_deposit(account, Amount(100_000 * mw.USDC))
    now = Timestamp(mw.NOW)
    sell = mw.order(w, a, Side.SELL, premium(CALL, 0.8), 300)
    c.on_order(sell, mw.signed(sell, a), now=now)
    buy = mw.order(w, b, Side.BUY, premium(CALL, 0.8), 200)
    c.on_order(buy, mw.signed(buy, b), now=now)
    # the call's book is now: 100 resting at the traded price; add a bid so it has a mid
    bid = mw.order(w, m, Side.BUY, premium(CALL, 0.7), 100)
    c.on_order(bid, mw.signed(bid, m), now=now)
    view = c.get_account_greeks_json(b, 3000 * mw.USDC, now)
    assert view["spot"] == str(3000 * mw.USDC)
    assert view["marks"][0]["series"] == "ETH-29JAN27-3000-C" and view["marks"][0]["source"] == "mid"
    mark = compute_mark(CALL, premium(CALL, 0.7), premium(CALL, 0.8), SPOT, now)
    expected = compute_account_greeks({CALL: Quantity(200)}, {CALL: mark}, SPOT, now, mw.UNIT)
    assert view["greeks"]["delta"] == pytest.approx(expected.delta, rel=1e-12) and expected.delta > 0
    assert view["marks"][0]["vol"] == mark.vol
    # the seller is short the same delta; an account with nothing shows no Greeks
    assert c.get_account_greeks_json(a, 3000 * mw.USDC, now)["greeks"]["delta"] == pytest.approx(-expected.delta)
    assert c.get_account_greeks_json(mw.ADDRESSES[5], 3000 * mw.USDC, now)["greeks"] is None
    assert ids[0] in listings
    store.close()
