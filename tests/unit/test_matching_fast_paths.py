"""The shortcuts of the matching hot path build exactly what the plain code builds: book trades and
order results equal their dataclass constructions, and the pooled Keccak binding equals the public
API, also when many threads hash at once."""

from __future__ import annotations

import os
import threading
from dataclasses import FrozenInstanceError, asdict

import pytest

from clearhouse.market.book import OrderResult, process_order
from clearhouse.market.trades import Trade, compute_book_fill_id
from clearhouse.messages import Side
from clearhouse.messages.keccak import LEAN, _public_keccak, keccak256
from clearhouse.sim.market_world import ADDRESSES, NOW, make_world, order, px, signed
from clearhouse.types import Quantity, Timestamp

T = Timestamp(NOW)
A, B = ADDRESSES[:2]


def test_book_trades_and_results_equal_their_dataclass_constructions() -> None:
    world = make_world()
    maker = order(world, A, Side.SELL, px(150), 300)
    process_order(world.book, maker, signed(maker, A), T)
    taker = order(world, B, Side.BUY, px(151), 200)
    result = process_order(world.book, taker, signed(taker, B), T)
    (trade,) = result.trades
    expected = Trade(compute_book_fill_id(trade.taker_auth.digest, trade.maker_auth.digest,
                                          Quantity(0)),
                     0, 1, maker.series_id, maker.price, Quantity(200), trade.premium, A, B,
                     Side.SELL, Side.BUY, trade.maker_auth, trade.taker_auth, T)
    assert trade == expected and hash(trade) == hash(expected) and repr(trade) == repr(expected)
    assert trade.premium == 150 * 10**6 * 200 // 100
    assert result == OrderResult(result.digest, (expected,), (), Quantity(0), result.closed)
    assert asdict(result)["trades"][0] == asdict(expected)
    with pytest.raises(FrozenInstanceError):
        trade.quantity = Quantity(1)  # type: ignore[misc]
    with pytest.raises(FrozenInstanceError):
        result.resting = Quantity(1)  # type: ignore[misc]


def test_pooled_keccak_equals_the_public_api_across_threads() -> None:
    assert LEAN
    data = [os.urandom(n) for n in (0, 1, 31, 32, 128, 135, 136, 137, 300, 1000)] * 50
    expected = [_public_keccak(d) for d in data]
    wrong: list[bytes] = []

    def work() -> None:
        for _ in range(5):
            wrong.extend(d for d, e in zip(data, expected, strict=True) if keccak256(d) != e)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert wrong == []
