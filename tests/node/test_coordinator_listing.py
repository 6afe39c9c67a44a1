"""Listing through the coordinator's log: an expiry, then its series, tradable at once; every
refusal writes nothing; replay (and a rebuild after a failed group commit) lists the same."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from coordinator_support import make_coordinator

from clearhouse.errors import (
    ClearhouseError,
    ConfigError,
    InvalidInstrument,
    OffGrid,
    StoreError,
    UnlistedInstrument,
)
from clearhouse.market.instruments import (
    OptionKind,
    Series,
    compute_expiry_timestamp,
    compute_series_id,
)
from clearhouse.messages import Order, Side, TimeInForce
from clearhouse.node.coordinator import Coordinator
from clearhouse.sim import market_world as mw
from clearhouse.store import Store
from clearhouse.types import Amount, Nonce, Price, Quantity, SeriesId, Timestamp

A, B = mw.ADDRESSES[:2]
JUNE = compute_expiry_timestamp(2027, 6, 25)
STRIKE = Price(3_400 * mw.USDC)


def _list(c: Coordinator, now: int = mw.NOW) -> SeriesId:
    c.on_list_expiry(JUNE, mw.CAP, now=now)
    c.on_list_series(JUNE, STRIKE, OptionKind.CALL, now=now)
    return compute_series_id(Series(mw.PAIR, JUNE, STRIKE, OptionKind.CALL))


def _order(series_id: SeriesId, account: Any, side: Side, nonce: int) -> Order:
    return Order(account, series_id, side, mw.px(90), Quantity(100), TimeInForce.GTC, Nonce(nonce),
                 Timestamp(mw.NOW + 3600))


def test_a_listed_series_trades_and_replays(store: Store) -> None:
    c = make_coordinator(store)
    seen: list[tuple[str, dict[str, Any]]] = []
    c.listeners.append(lambda events: seen.extend((ch, body) for ch, _, body in events))
    series_id = _list(c)
    assert [body["event"] for ch, body in seen if ch == "listings"] == ["expiry", "series"]
    assert seen[1][1]["name"] == "ETH-25JUN27-3400-C" and seen[0][1]["state"] == "trading"
    assert any(e["expiry"] == JUNE for e in c.get_expiries_json(Timestamp(mw.NOW)))
    for account in (A, B):
        c.on_deposit(account, Amount(100_000 * mw.USDC))
    sell, buy = _order(series_id, A, Side.SELL, 1), _order(series_id, B, Side.BUY, 2)
    c.on_order(sell, mw.signed(sell, A), now=mw.NOW)
    ack = c.on_order(buy, mw.signed(buy, B), now=mw.NOW + 1)
    assert len(ack.body["trades"]) == 1
    again = make_coordinator(store)
    assert again.get_state_fingerprint() == c.get_state_fingerprint()
    assert series_id in again.listings and again.market == c.market


@pytest.mark.parametrize(("call", "error"), [
    (lambda c: c.on_list_expiry(mw.EXPIRY, mw.CAP, now=mw.NOW), InvalidInstrument),  # listed
    (lambda c: c.on_list_expiry(JUNE, mw.CAP, now=JUNE), InvalidInstrument),  # not after now
    (lambda c: c.on_list_expiry(JUNE + 1, mw.CAP, now=mw.NOW), InvalidInstrument),  # not 08:00 UTC
    (lambda c: c.on_list_expiry(JUNE, mw.RULES.strike_step, now=mw.NOW), InvalidInstrument),  # cap
    (lambda c: c.on_list_expiry(JUNE, 1 << 128, now=mw.NOW), InvalidInstrument),  # cap too large
    (lambda c: c.on_list_expiry(JUNE, True, now=mw.NOW), InvalidInstrument),  # a bool is no cap
    (lambda c: c.on_list_series(JUNE, STRIKE, OptionKind.CALL, now=mw.NOW), UnlistedInstrument),
    (lambda c: c.on_list_series(mw.EXPIRY, STRIKE + 1, OptionKind.CALL, now=mw.NOW), OffGrid),
    (lambda c: c.on_list_series(mw.EXPIRY, mw.CAP, OptionKind.PUT, now=mw.NOW), InvalidInstrument),
    (lambda c: c.on_list_series(mw.EXPIRY, Price(3_000 * mw.USDC), OptionKind.CALL, now=mw.NOW),
     InvalidInstrument),  # listed already
    (lambda c: c.on_list_series(mw.EXPIRY, STRIKE, OptionKind.CALL, now=mw.EXPIRY), InvalidInstrument),
    (lambda c: c.on_list_series(mw.EXPIRY, 0, OptionKind.CALL, now=mw.NOW), InvalidInstrument),
    (lambda c: c.on_list_series(mw.EXPIRY, STRIKE, 7, now=mw.NOW), InvalidInstrument),  # no such kind
])
def test_refused_listings_write_nothing(store: Store, call: Any, error: type[ClearhouseError]) -> None:
    c = make_coordinator(store)
    before, last = c.get_state_fingerprint(), store.get_last_action_seq()
    with pytest.raises(error) as refused:
        call(c)
    assert refused.value.to_dict()["field"]
    assert store.get_last_action_seq() == last and c.get_state_fingerprint() == before


def test_a_market_with_no_series_yet_lists_its_first(store: Store) -> None:
    listings, _ = mw.build_listings()
    market = replace(make_coordinator(store).market, expiries=())
    c = Coordinator(store, mw.DOMAIN, {}, mw.UNIT, market=market)
    assert c.get_series_json() == [] and c.get_expiries_json(Timestamp(mw.NOW)) == []
    series_id = _list(c)
    assert list(c.listings) == [series_id] and c.book.listings is c.listings
    with pytest.raises(ConfigError):
        Coordinator(store, mw.DOMAIN, {}, mw.UNIT).on_list_expiry(JUNE, mw.CAP, now=mw.NOW)
    assert len(listings) == 4  # the market world's own listings are untouched


def test_a_failed_group_commit_rebuilds_the_listings_of_the_log(store: Store) -> None:
    c = make_coordinator(store)
    _list(c)
    c.on_deposit(A, Amount(100_000 * mw.USDC))
    before = c.get_state_fingerprint()
    store.append_action("auth_challenge", A, {"other": 1}, "taken")  # the group's key collides
    august = compute_expiry_timestamp(2027, 8, 27)
    sell = _order(compute_series_id(Series(mw.PAIR, JUNE, STRIKE, OptionKind.CALL)), A, Side.SELL, 7)
    results = c.run_group([lambda: c.on_list_expiry(august, mw.CAP, now=mw.NOW),
                           lambda: c.on_order(sell, mw.signed(sell, A), now=mw.NOW, idempotency_key="taken")])
    assert all(isinstance(r, StoreError) for r in results)
    assert c.get_state_fingerprint() == before and august not in {e.timestamp for e in c.market.expiries}
    assert len(c.listings) == 5 and c.book.listings is c.listings is c.portfolios.listings
