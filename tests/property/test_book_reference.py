"""The book against a naive reference matcher on random order and cancel streams.

The reference keeps one list of resting orders and, for each incoming order, sorts the crossing
ones by price then arrival and walks them: price-time priority, maker's price, partial fills,
GTC / post-only / IOC / FOK, cancel-resting self-trade prevention, cancel by hash. With a risk hook
that accepts everything, both must produce exactly the same trades and the same resting book, on
both of the book's risk-hook paths (per-fill ``PositionDelta`` tuples and netted moves).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pytest
from hypothesis import given
from hypothesis import strategies as st

from clearhouse.errors import ClearhouseError
from clearhouse.market.book import Book, get_remaining, process_cancel, process_order
from clearhouse.market.collateral import PositionDelta
from clearhouse.messages import Order, Side, TimeInForce
from clearhouse.sim.market_world import ADDRESSES, NOW, cancel, make_world, px, signed
from clearhouse.types import Address, Digest, Nonce, Quantity, SeriesId, Timestamp

T = Timestamp(NOW)
Fill = tuple[Digest, Digest, int, int]


class AcceptAll:
    def check_fill(self, account: Address, deltas: Sequence[PositionDelta], cash: int) -> None:
        return None

    def apply_fill(self, account: Address, deltas: Sequence[PositionDelta], cash: int) -> None:
        return None


class AcceptAllMoves(AcceptAll):
    """The same as a ``MoveRiskHook``: the book takes its netted-move path."""

    def check_move(self, account: Address, series_id: SeriesId, quantity: int, cash: int) -> None:
        return None

    def apply_move(self, account: Address, series_id: SeriesId, quantity: int, cash: int) -> None:
        return None


@dataclass
class Resting:
    digest: Digest
    order: Order
    left: int
    seq: int


def reference_order(book: list[Resting], digest: Digest, order: Order, seq: int) -> list[Fill]:
    buy = order.side is Side.BUY
    crossing = sorted((r for r in book if r.order.side is not order.side
                       and (r.order.price <= order.price if buy else r.order.price >= order.price)),
                      key=lambda r: (r.order.price if buy else -r.order.price, r.seq))
    others = [r for r in crossing if r.order.account != order.account]
    if order.time_in_force is TimeInForce.POST_ONLY and crossing:
        return []
    if order.time_in_force is TimeInForce.FOK and sum(r.left for r in others) < order.quantity:
        return []
    fills: list[Fill] = []
    left: int = order.quantity
    for r in crossing:
        if left == 0:
            break
        if r.order.account == order.account:
            book.remove(r)
            continue
        q = min(left, r.left)
        r.left, left = r.left - q, left - q
        fills.append((r.digest, digest, r.order.price, q))
        if r.left == 0:
            book.remove(r)
    if left and order.time_in_force in (TimeInForce.GTC, TimeInForce.POST_ONLY):
        book.append(Resting(digest, order, left, seq))
    return fills


@dataclass(frozen=True)
class NewOrder:
    who: int
    side: Side
    price: int
    lots: int
    tif: TimeInForce


@dataclass(frozen=True)
class CancelOrder:
    index: int
    by_owner: bool


new_orders = st.builds(NewOrder, st.integers(0, 2), st.sampled_from([Side.BUY, Side.SELL]),
                       st.integers(98, 102), st.integers(1, 5), st.sampled_from(list(TimeInForce)))
cancels = st.builds(CancelOrder, st.integers(0, 1000), st.booleans())


def run_cancel(book: Book, reference: list[Resting], placed: list[tuple[Digest, Order]],
               op: CancelOrder, seq: int) -> None:
    if not placed:
        return
    digest, o = placed[op.index % len(placed)]
    owner = o.account if op.by_owner else ADDRESSES[(ADDRESSES.index(o.account) + 1) % 3]
    c = cancel(owner, digest, nonce_=10**6 + seq)
    try:
        process_cancel(book, c, signed(c, owner), T)
    except ClearhouseError:
        assert not op.by_owner
        return
    if op.by_owner:
        reference[:] = [r for r in reference if r.digest != digest]


@pytest.mark.parametrize("hook", [AcceptAll, AcceptAllMoves])
@given(ops=st.lists(st.one_of(new_orders, new_orders, new_orders, cancels), max_size=60))
def test_book_matches_the_reference(hook: type[AcceptAll], ops: list[NewOrder | CancelOrder]
                                    ) -> None:
    world = make_world(accounts=0)
    book: Book = world.book
    book.risk = hook()
    reference: list[Resting] = []
    placed: list[tuple[Digest, Order]] = []
    for seq, op in enumerate(ops):
        if isinstance(op, CancelOrder):
            run_cancel(book, reference, placed, op, seq)
            continue
        o = Order(ADDRESSES[op.who], world.series[0], op.side, px(op.price),
                  Quantity(op.lots * 50), op.tif, Nonce(seq), Timestamp(NOW + 3600))
        digest, fills = Digest(bytes(32)), []
        try:
            result = process_order(book, o, signed(o, o.account), T)
        except ClearhouseError:
            pass
        else:
            digest = result.digest
            fills = [(t.maker_auth.digest, t.taker_auth.digest, t.price, t.quantity)
                     for t in result.trades]
            placed.append((digest, o))
        assert fills == reference_order(reference, digest, o, seq)
    assert {r.digest: r.left for r in reference} == {
        d: get_remaining(book, d) for d in book.resting}
