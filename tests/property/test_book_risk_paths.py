"""The book's two risk-hook paths agree with the real ledger where the max-loss check binds.

The book asks a ``MoveRiskHook`` (``Portfolios``) about one netted move per account as plain
integers; any other ``RiskHook`` gets the fill-by-fill ``PositionDelta`` tuples of ``check_fill`` /
``apply_fill``. On random order and cancel streams from thinly funded accounts, a book on
``Portfolios`` and a book on the same ledger seen only through ``check_fill`` / ``apply_fill`` make
the same trades, removals and refusals and leave the same balances, positions and requirements;
every account covers its requirement after every step.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from hypothesis import event, given, settings
from hypothesis import strategies as st

from clearhouse.errors import ClearhouseError
from clearhouse.market.book import OrderResult, Removal, process_cancel, process_order
from clearhouse.market.collateral import (
    Portfolios,
    PositionDelta,
    get_requirement,
    process_withdrawal,
)
from clearhouse.market.trades import is_trade_authorised
from clearhouse.messages import Order, Side, TimeInForce
from clearhouse.sim.market_world import (
    ADDRESSES,
    DOMAIN,
    NOW,
    USDC,
    World,
    cancel,
    make_world,
    px,
    signed,
)
from clearhouse.types import Address, Amount, Digest, Nonce, Quantity, Timestamp

T = Timestamp(NOW)
ACCOUNTS = ADDRESSES[:4]


class DeltasOnly:
    """``Portfolios`` seen only as a plain ``RiskHook``: the book's per-fill-delta path."""

    def __init__(self, inner: Portfolios) -> None:
        self.inner = inner

    def check_fill(self, account: Address, deltas: Sequence[PositionDelta], cash: int) -> None:
        self.inner.check_fill(account, deltas, cash)

    def apply_fill(self, account: Address, deltas: Sequence[PositionDelta], cash: int) -> None:
        self.inner.apply_fill(account, deltas, cash)


@dataclass(frozen=True)
class Place:
    who: int
    side: Side
    price: int
    lots: int
    tif: TimeInForce
    series: int


@dataclass(frozen=True)
class Cancel:
    index: int


@dataclass(frozen=True)
class Withdraw:
    who: int
    usdc: int


places = st.builds(Place, st.integers(0, 3), st.sampled_from([Side.BUY, Side.SELL]),
                   st.integers(95, 105), st.integers(1, 4), st.sampled_from(list(TimeInForce)),
                   st.integers(0, 1))
steps = st.lists(st.one_of(places, places, places, places, st.builds(Cancel, st.integers(0, 99)),
                           st.builds(Withdraw, st.integers(0, 3), st.integers(200, 2_000))),
                 max_size=40)

Outcome = tuple[object, ...]


def summarise(result: OrderResult | tuple[Removal, ...] | ClearhouseError | None) -> Outcome:
    if isinstance(result, ClearhouseError):
        return ("refused", type(result).__name__)
    if isinstance(result, OrderResult):
        return (result.digest, result.resting, result.closed, result.removed,
                tuple((t.fill_id, t.maker, t.taker, t.price, t.quantity, t.premium)
                      for t in result.trades))
    return ("other", result)


def ledger(world: World) -> tuple[object, ...]:
    portfolios = world.portfolios
    return (dict(portfolios.balances), {a: dict(p) for a, p in portfolios.positions.items()},
            {a: get_requirement(portfolios, a) for a in ACCOUNTS})


def step(world: World, op: Place | Cancel | Withdraw, seq: int, placed: list[tuple[Digest, Order]],
         signature_of: dict[Order, bytes]) -> Outcome:
    try:
        if isinstance(op, Place):
            o = Order(ACCOUNTS[op.who], world.series[op.series], op.side, px(op.price),
                      Quantity(op.lots * 50), op.tif, Nonce(seq), Timestamp(NOW + 3600))
            signature = signature_of.setdefault(o, signed(o, o.account))
            result = process_order(world.book, o, signature, T)
            placed.append((result.digest, o))
            for trade in result.trades:
                assert is_trade_authorised(DOMAIN, trade)
            return summarise(result)
        if isinstance(op, Cancel):
            if not placed:
                return ("none",)
            digest, o = placed[op.index % len(placed)]
            c = cancel(o.account, digest, nonce_=10**6 + seq)
            return summarise(process_cancel(world.book, c, signed(c, o.account), T))
        process_withdrawal(world.portfolios, ACCOUNTS[op.who], Amount(op.usdc * USDC))
        return ("withdrawn",)
    except ClearhouseError as error:
        return summarise(error)


@settings(max_examples=60, deadline=None)
@given(steps)
def test_move_path_and_delta_path_agree_on_the_real_ledger(ops: list[Place | Cancel | Withdraw]
                                                           ) -> None:
    fast = make_world(deposit_usdc=5_000, accounts=len(ACCOUNTS))
    plain = make_world(deposit_usdc=5_000, accounts=len(ACCOUNTS))
    plain.book.risk = DeltasOnly(plain.portfolios)
    placed_fast: list[tuple[Digest, Order]] = []
    placed_plain: list[tuple[Digest, Order]] = []
    signature_of: dict[Order, bytes] = {}
    for seq, op in enumerate(ops):
        outcome = step(fast, op, seq, placed_fast, signature_of)
        event(str(outcome[1]) if outcome[0] == "refused" else "accepted")
        assert step(plain, op, seq, placed_plain, signature_of) == outcome
        assert ledger(fast) == ledger(plain)
        for account in ACCOUNTS:
            assert fast.portfolios.balances[account] >= get_requirement(fast.portfolios, account)
    assert fast.book.resting.keys() == plain.book.resting.keys()
    assert fast.book.filled == plain.book.filled and fast.book.closed == plain.book.closed
