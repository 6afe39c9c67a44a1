"""clearhouse.market.book: every order type, every refusal with its error, partial fills,
price-time priority, self-trade prevention, cancels by hash and by nonce, expiry, fill tracking,
and the risk check on both sides of every fill."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import pytest

from clearhouse.errors import (
    ClearhouseError,
    ConfigError,
    DuplicateOrder,
    ExpiredMessage,
    FillOrKillUnfilled,
    InsufficientCollateral,
    InvalidOrder,
    InvalidSignature,
    MarketError,
    NotOrderOwner,
    OffGrid,
    OrderCancelled,
    OrderExpired,
    Overfill,
    PostOnlyWouldTake,
    ReplayedMessage,
    RiskError,
    UnlistedInstrument,
    WrongSigner,
)
from clearhouse.market.book import (
    CloseReason,
    OrderResult,
    apply_match_plan,
    get_best_ask,
    get_best_bid,
    get_depth,
    get_filled,
    get_match_plan,
    get_remaining,
    get_resting_orders,
    is_crossing,
    process_cancel,
    process_order,
    process_tick,
    process_verified_order,
    validate_order,
)
from clearhouse.market.collateral import (
    PositionDelta,
    get_balance,
    get_positions,
    get_requirement,
    process_deposit,
    process_withdrawal,
)
from clearhouse.market.trades import (
    FeeSchedule,
    Signed,
    compute_trade_flows,
    get_buyer,
    get_seller,
    is_expired,
    is_trade_authorised,
    verify_signed,
)
from clearhouse.messages import Order, Side, TimeInForce, is_nonce_used
from clearhouse.sim.market_world import (
    ADDRESSES,
    DOMAIN,
    EXPIRY,
    NOW,
    USDC,
    World,
    cancel,
    fund,
    make_world,
    order,
    px,
    signed,
)
from clearhouse.types import Address, Amount, Price, Quantity, SeriesId, Timestamp

A, B, C, D = ADDRESSES[:4]
T = Timestamp(NOW)


@pytest.fixture
def world() -> World:
    return make_world()


def submit(world: World, o: Order, now: int = NOW) -> OrderResult:
    return process_order(world.book, o, signed(o, o.account), Timestamp(now))


def place(world: World, account: Address, side: Side, usdc: float, quantity: int,
          tif: TimeInForce = TimeInForce.GTC, **kwargs: int) -> tuple[Order, OrderResult]:
    o = order(world, account, side, px(usdc), quantity, tif, **kwargs)
    return o, submit(world, o)


def snapshot(world: World) -> tuple[object, ...]:
    book = world.book
    return (dict(book.resting), dict(book.filled), dict(book.closed), set(book.precancelled),
            {a: dict(b) for a, b in book.nonces.items()}, dict(world.portfolios.balances),
            {a: dict(p) for a, p in world.portfolios.positions.items()},
            {s: (dict(sb.bids), dict(sb.asks)) for s, sb in book.series.items()})


def refused(world: World, error: type[ClearhouseError], o: Order, now: int = NOW
            ) -> ClearhouseError:
    """Submitting ``o`` raises ``error`` and changes nothing."""
    before = snapshot(world)
    with pytest.raises(error) as info:
        submit(world, o, now)
    assert snapshot(world) == before
    return info.value


# --- resting, matching, priority ---------------------------------------------------------------


def test_gtc_rests_and_shows_in_depth(world: World) -> None:
    _, r1 = place(world, A, Side.SELL, 150, 300)
    _, r2 = place(world, A, Side.SELL, 151, 100)
    _, r3 = place(world, B, Side.BUY, 149, 200)
    assert (r1.trades, r1.resting, r1.closed) == ((), 300, None)
    s = world.series[0]
    assert get_best_ask(world.book, s, T) == px(150) and get_best_bid(world.book, s, T) == px(149)
    assert get_depth(world.book, s, Side.SELL, T) == ((px(150), 300), (px(151), 100))
    assert get_depth(world.book, s, Side.BUY, T) == ((px(149), 200),)
    assert [r.signed.digest for r in get_resting_orders(world.book)] == [r1.digest, r2.digest,
                                                                        r3.digest]
    assert get_best_bid(world.book, world.series[1], T) is None
    assert get_depth(world.book, world.series[1], Side.BUY, T) == ()


def test_full_fill_moves_premium_and_positions(world: World) -> None:
    maker, _ = place(world, A, Side.SELL, 150, 200)
    taker, result = place(world, B, Side.BUY, 155, 200)
    (trade,) = result.trades
    assert (trade.maker, trade.taker, trade.maker_side, trade.taker_side) == (A, B, Side.SELL, Side.BUY)
    assert trade.price == px(150)  # the maker's price
    assert trade.quantity == 200 and trade.premium == 2 * 150 * USDC
    assert (trade.leg, trade.legs, trade.series_id, trade.time) == (0, 1, world.series[0], T)
    assert get_buyer(trade) == B and get_seller(trade) == A
    assert trade.maker_auth.message == maker and trade.taker_auth.message == taker
    assert is_trade_authorised(DOMAIN, trade)
    assert result.closed is CloseReason.FILLED and result.resting == 0
    assert get_balance(world.portfolios, B) == 1_000_000 * USDC - 300 * USDC
    assert get_balance(world.portfolios, A) == 1_000_000 * USDC + 300 * USDC
    assert get_positions(world.portfolios, A) == {world.series[0]: -200}
    assert get_positions(world.portfolios, B) == {world.series[0]: 200}
    assert get_requirement(world.portfolios, A) == 2 * (10_000 - 3000) * USDC  # short 2 calls, cap 10k
    assert world.book.closed[trade.maker_auth.digest] is CloseReason.FILLED
    assert compute_trade_flows(result.trades, A) == ((PositionDelta(world.series[0], Quantity(-200)),), 300 * USDC)
    assert get_best_ask(world.book, world.series[0], T) is None


def test_fees_are_charged_with_the_fill_and_carried_by_the_trade(world: World) -> None:
    world.book.fees = FeeSchedule(maker_bps=10, taker_bps=30)
    place(world, A, Side.SELL, 150, 100)
    place(world, C, Side.SELL, 151, 100)
    _, result = place(world, B, Side.BUY, 155, 200)  # takes both makers: each pays on its own fill
    first, second = result.trades
    assert (first.premium, first.maker_fee, first.taker_fee) == (150 * USDC, 150 * USDC // 1_000, 450 * USDC // 1_000)
    assert (second.premium, second.maker_fee, second.taker_fee) == (151 * USDC, 151 * USDC // 1_000,
                                                                   453 * USDC // 1_000)
    assert get_balance(world.portfolios, A) == 1_000_000 * USDC + 150 * USDC - first.maker_fee
    assert get_balance(world.portfolios, C) == 1_000_000 * USDC + 151 * USDC - second.maker_fee
    taker_paid = 301 * USDC + first.taker_fee + second.taker_fee
    assert get_balance(world.portfolios, B) == 1_000_000 * USDC - taker_paid
    assert compute_trade_flows(result.trades, B)[1] == -taker_paid
    assert compute_trade_flows(result.trades, A) == ((PositionDelta(world.series[0], Quantity(-100)),),
                                                     150 * USDC - first.maker_fee)


def test_an_order_that_cannot_also_carry_its_fee_is_refused() -> None:
    world = make_world(accounts=2)
    world.book.fees = FeeSchedule(maker_bps=10, taker_bps=30)
    fund(world, C, 300 * USDC + 900_000 - 1)  # the premium of 2 calls at 150, and not quite the 30 bps
    place(world, A, Side.SELL, 150, 200)
    bid = order(world, C, Side.BUY, px(150), 200)
    refused(world, InsufficientCollateral, bid)
    fund(world, C, 1)
    (trade,) = submit(world, bid).trades
    assert trade.taker_fee == 900_000 and get_balance(world.portfolios, C) == 0


def test_a_fee_schedule_is_checked() -> None:
    for bad in ({"maker_bps": -1}, {"taker_bps": 10_001}, {"maker_bps": True}, {"taker_bps": 1.5}):
        with pytest.raises(ConfigError):
            FeeSchedule(**bad)  # type: ignore[arg-type]


def test_partial_fill_of_maker_then_of_taker(world: World) -> None:
    _, maker = place(world, A, Side.SELL, 150, 500)
    _, first = place(world, B, Side.BUY, 150, 200)
    assert first.trades[0].quantity == 200
    assert get_remaining(world.book, maker.digest) == 300 and get_filled(world.book, maker.digest) == 200
    _, second = place(world, C, Side.BUY, 150, 450)
    assert second.trades[0].quantity == 300
    assert second.resting == 150 and second.closed is None
    assert get_filled(world.book, second.digest) == 300
    assert get_best_bid(world.book, world.series[0], T) == px(150)
    assert get_remaining(world.book, maker.digest) == 0 and maker.digest not in world.book.resting
    assert first.trades[0].fill_id != second.trades[0].fill_id


def test_price_then_time_priority(world: World) -> None:
    _, late_good = place(world, A, Side.SELL, 152, 100)
    _, first_best = place(world, B, Side.SELL, 150, 100)
    _, second_best = place(world, C, Side.SELL, 150, 100)
    _, worst = place(world, A, Side.SELL, 153, 100)
    _, result = place(world, D, Side.BUY, 152, 400)
    makers = [t.maker_auth.digest for t in result.trades]
    assert makers == [first_best.digest, second_best.digest, late_good.digest]
    assert [t.price for t in result.trades] == [px(150), px(150), px(152)]
    assert result.resting == 100  # does not reach 153
    assert get_best_ask(world.book, world.series[0], T) == px(153) and worst.resting == 100


def test_sell_taker_walks_bids_best_first(world: World) -> None:
    place(world, A, Side.BUY, 148, 100)
    place(world, B, Side.BUY, 150, 100)
    _, result = place(world, C, Side.SELL, 148, 150, TimeInForce.IOC)
    assert [(t.price, t.quantity) for t in result.trades] == [(px(150), 100), (px(148), 50)]


def test_is_crossing_and_is_expired() -> None:
    world = make_world(accounts=1)
    buy = order(world, A, Side.BUY, px(100), 1)
    sell = order(world, A, Side.SELL, px(100), 1)
    assert is_crossing(buy, px(100)) and is_crossing(buy, px(99)) and not is_crossing(buy, px(101))
    assert is_crossing(sell, px(100)) and is_crossing(sell, px(101)) and not is_crossing(sell, px(99))
    assert not is_expired(100, Timestamp(100)) and is_expired(100, Timestamp(101))


# --- order types -------------------------------------------------------------------------------


def test_post_only_rests_or_is_refused(world: World) -> None:
    _, rested = place(world, A, Side.SELL, 150, 100, TimeInForce.POST_ONLY)
    assert rested.resting == 100
    crossing = order(world, B, Side.BUY, px(150), 100, TimeInForce.POST_ONLY)
    refused(world, PostOnlyWouldTake, crossing)
    _, below = place(world, B, Side.BUY, 149, 100, TimeInForce.POST_ONLY)
    assert below.resting == 100 and not below.trades


def test_post_only_against_own_order_is_refused(world: World) -> None:
    place(world, A, Side.SELL, 150, 100)
    refused(world, PostOnlyWouldTake, order(world, A, Side.BUY, px(151), 100, TimeInForce.POST_ONLY))


def test_post_only_purges_expired_crossing_orders(world: World) -> None:
    _, stale = place(world, A, Side.SELL, 150, 100, expiry=NOW + 5)
    o = order(world, B, Side.BUY, px(150), 100, TimeInForce.POST_ONLY)
    result = submit(world, o, NOW + 6)
    assert result.resting == 100 and [r.digest for r in result.removed] == [stale.digest]
    assert world.book.closed[stale.digest] is CloseReason.EXPIRED


def test_ioc_fills_what_it_can_and_cancels_the_rest(world: World) -> None:
    place(world, A, Side.SELL, 150, 100)
    o, result = place(world, B, Side.BUY, 150, 300, TimeInForce.IOC)
    assert result.trades[0].quantity == 100
    assert (result.resting, result.closed) == (0, CloseReason.UNFILLED_REMAINDER)
    assert get_best_bid(world.book, world.series[0], T) is None
    assert is_nonce_used(world.book.nonces[B], o.nonce)


def test_ioc_with_no_liquidity_is_closed_not_refused(world: World) -> None:
    o, result = place(world, B, Side.BUY, 150, 300, TimeInForce.IOC)
    assert (result.trades, result.closed) == ((), CloseReason.UNFILLED_REMAINDER)
    refused(world, OrderCancelled, o)


def test_fok_fills_completely(world: World) -> None:
    place(world, A, Side.SELL, 150, 100)
    place(world, C, Side.SELL, 151, 100)
    _, result = place(world, B, Side.BUY, 151, 200, TimeInForce.FOK)
    assert sum(t.quantity for t in result.trades) == 200 and result.closed is CloseReason.FILLED


def test_fok_that_cannot_fill_changes_nothing(world: World) -> None:
    place(world, A, Side.SELL, 150, 100)
    place(world, C, Side.SELL, 152, 100)
    o = order(world, B, Side.BUY, px(151), 200, TimeInForce.FOK)
    error = refused(world, FillOrKillUnfilled, o)
    assert error.context["fillable"] == 100 and isinstance(error, InvalidOrder)
    assert not is_nonce_used(world.book.nonces.get(B, {}), o.nonce)


# --- self-trade prevention ---------------------------------------------------------------------


def test_self_trade_cancels_the_resting_order_and_matching_continues(world: World) -> None:
    _, own = place(world, A, Side.SELL, 150, 100)
    _, other = place(world, B, Side.SELL, 150, 100)
    _, result = place(world, A, Side.BUY, 150, 150)
    assert [(r.digest, r.reason) for r in result.removed] == [(own.digest, CloseReason.SELF_TRADE)]
    assert [t.maker for t in result.trades] == [B] and result.trades[0].quantity == 100
    assert world.book.closed[own.digest] is CloseReason.SELF_TRADE
    assert result.resting == 50 and get_best_bid(world.book, world.series[0], T) == px(150)
    assert other.digest not in world.book.resting


def test_self_trade_never_fills_and_fok_on_own_liquidity_is_refused(world: World) -> None:
    _, own = place(world, A, Side.SELL, 150, 100)
    refused(world, FillOrKillUnfilled, order(world, A, Side.BUY, px(150), 100, TimeInForce.FOK))
    assert own.digest in world.book.resting


# --- cancels -----------------------------------------------------------------------------------


def test_cancel_by_hash(world: World) -> None:
    o, result = place(world, A, Side.SELL, 150, 100)
    c = cancel(A, result.digest, nonce_=999)
    removed = process_cancel(world.book, c, signed(c, A), T)
    assert [(r.digest, r.reason) for r in removed] == [(result.digest, CloseReason.CANCELLED)]
    assert get_best_ask(world.book, world.series[0], T) is None
    assert process_cancel(world.book, c, signed(c, A), T) == ()  # twice is harmless
    refused(world, OrderCancelled, o)
    _, taker = place(world, B, Side.BUY, 150, 100, TimeInForce.IOC)
    assert not taker.trades


def test_cancel_by_nonce(world: World) -> None:
    o, result = place(world, A, Side.SELL, 150, 100)
    c = cancel(A, nonce_=o.nonce)
    removed = process_cancel(world.book, c, signed(c, A), T)
    assert [r.digest for r in removed] == [result.digest]
    refused(world, OrderCancelled, o)


def test_cancel_by_nonce_before_the_order_arrives(world: World) -> None:
    c = cancel(A, nonce_=777)
    assert process_cancel(world.book, c, signed(c, A), T) == ()
    refused(world, ReplayedMessage, order(world, A, Side.SELL, px(150), 100, nonce_=777))


def test_cancel_by_hash_before_the_order_arrives(world: World) -> None:
    o = order(world, A, Side.SELL, px(150), 100)
    digest = verify_signed(DOMAIN, o, signed(o, A), A).digest
    c = cancel(A, digest, nonce_=12345)
    process_cancel(world.book, c, signed(c, A), T)
    refused(world, OrderCancelled, o)


def test_a_precancel_by_another_account_does_not_block_the_order(world: World) -> None:
    o = order(world, A, Side.SELL, px(150), 100)
    digest = verify_signed(DOMAIN, o, signed(o, A), A).digest
    c = cancel(B, digest, nonce_=1)
    process_cancel(world.book, c, signed(c, B), T)
    assert submit(world, o).resting == 100


def test_cancel_of_another_accounts_order_is_refused(world: World) -> None:
    _, result = place(world, A, Side.SELL, 150, 100)
    c = cancel(B, result.digest, nonce_=5)
    before = snapshot(world)
    with pytest.raises(NotOrderOwner):
        process_cancel(world.book, c, signed(c, B), T)
    assert snapshot(world) == before


def test_cancel_signed_by_someone_else_or_expired_is_refused(world: World) -> None:
    _, result = place(world, A, Side.SELL, 150, 100)
    c = cancel(A, result.digest, nonce_=5)
    with pytest.raises(WrongSigner):
        process_cancel(world.book, c, signed(c, B), T)
    late = cancel(A, result.digest, nonce_=5, expiry=NOW - 1)
    with pytest.raises(ExpiredMessage):
        process_cancel(world.book, late, signed(late, A), T)
    assert result.digest in world.book.resting


# --- expiry ------------------------------------------------------------------------------------


def test_expired_order_is_refused(world: World) -> None:
    refused(world, OrderExpired, order(world, A, Side.SELL, px(150), 100, expiry=NOW - 1))
    assert submit(world, order(world, A, Side.SELL, px(150), 100, expiry=NOW)).resting == 100


def test_expired_resting_orders_never_match(world: World) -> None:
    _, stale = place(world, A, Side.SELL, 149, 100, expiry=NOW + 10)
    _, live = place(world, B, Side.SELL, 150, 100, expiry=NOW + 1000)
    assert get_best_ask(world.book, world.series[0], Timestamp(NOW + 11)) == px(150)
    assert get_depth(world.book, world.series[0], Side.SELL, Timestamp(NOW + 11)) == ((px(150), 100),)
    o = order(world, C, Side.BUY, px(150), 200, TimeInForce.IOC, expiry=NOW + 100)
    result = submit(world, o, NOW + 11)
    assert [t.maker_auth.digest for t in result.trades] == [live.digest]
    assert [(r.digest, r.reason) for r in result.removed] == [(stale.digest, CloseReason.EXPIRED)]


def test_tick_purges_expired_orders(world: World) -> None:
    _, soon = place(world, A, Side.SELL, 150, 100, expiry=NOW + 10)
    _, cancelled = place(world, A, Side.SELL, 151, 100, expiry=NOW + 10)
    _, later = place(world, B, Side.BUY, 140, 100, expiry=NOW + 20)
    c = cancel(A, cancelled.digest)
    process_cancel(world.book, c, signed(c, A), T)
    assert process_tick(world.book, Timestamp(NOW + 10)) == ()  # valid through its expiry
    purged = process_tick(world.book, Timestamp(NOW + 11))
    assert [(r.digest, r.reason) for r in purged] == [(soon.digest, CloseReason.EXPIRED)]
    assert later.digest in world.book.resting and soon.digest not in world.book.resting
    assert [r.digest for r in process_tick(world.book, Timestamp(NOW + 21))] == [later.digest]
    assert not world.book.resting and not world.book.series[world.series[0]].ask_prices


def test_expired_series_cannot_trade(world: World) -> None:
    o = order(world, A, Side.SELL, px(150), 100, expiry=EXPIRY + 10)
    refused(world, InvalidOrder, o, EXPIRY)


# --- fill tracking and replay ------------------------------------------------------------------


def test_a_filled_order_resubmitted_cannot_fill_again(world: World) -> None:
    place(world, A, Side.SELL, 150, 100)
    o, result = place(world, B, Side.BUY, 150, 100)
    assert result.closed is CloseReason.FILLED
    place(world, C, Side.SELL, 150, 100)
    refused(world, Overfill, o)
    assert get_filled(world.book, result.digest) == 100


def test_a_resting_order_resubmitted_is_a_duplicate(world: World) -> None:
    o, _ = place(world, A, Side.SELL, 150, 300)
    place(world, B, Side.BUY, 150, 100)
    refused(world, DuplicateOrder, o)


def test_a_reused_nonce_is_refused(world: World) -> None:
    first, _ = place(world, A, Side.SELL, 150, 100)
    refused(world, ReplayedMessage, replace(first, price=px(151)))


def test_fill_tracking_never_exceeds_signed_quantity(world: World) -> None:
    _, maker = place(world, A, Side.SELL, 150, 250)
    for _ in range(4):
        place(world, B, Side.BUY, 150, 100, TimeInForce.IOC)
    assert get_filled(world.book, maker.digest) == 250


# --- signatures and listings -------------------------------------------------------------------


def test_wrong_signer_and_bad_signature(world: World) -> None:
    o = order(world, A, Side.SELL, px(150), 100)
    with pytest.raises(WrongSigner):
        process_order(world.book, o, signed(o, B), T)
    with pytest.raises(InvalidSignature):
        process_order(world.book, o, b"\x00" * 65, T)
    assert not world.book.resting


def test_unlisted_off_tick_and_oversized_orders(world: World) -> None:
    unlisted = replace(order(world, A, Side.SELL, px(150), 100), series_id=SeriesId(b"\x01" * 32))
    refused(world, UnlistedInstrument, unlisted)
    refused(world, OffGrid, order(world, A, Side.SELL, Price(px(150) + 1), 100))
    refused(world, OffGrid, order(world, A, Side.SELL, Price(0), 100))
    refused(world, OffGrid, order(world, A, Side.SELL, px(150), 2**96))


def test_errors_carry_codes() -> None:
    assert OrderExpired("x").to_dict()["code"] == "order_expired"
    assert issubclass(PostOnlyWouldTake, MarketError) and issubclass(MarketError, ValueError)


# --- risk ----------------------------------------------------------------------------------------


def test_taker_that_cannot_carry_the_order_is_refused() -> None:
    world = make_world(deposit_usdc=10_000, accounts=3)
    place(world, B, Side.BUY, 100, 100)
    # selling 2 calls needs 2 × 7000 USDC - 200 premium > 10,000 USDC
    error = refused(world, InsufficientCollateral, order(world, A, Side.SELL, px(100), 200))
    assert error.to_dict()["code"] == "insufficient_collateral"


def test_maker_short_at_fill_time_is_removed_and_matching_continues() -> None:
    world = make_world(deposit_usdc=20_000, accounts=4)
    _, poor = place(world, A, Side.SELL, 150, 200)  # needs 14,000 - 300 when filled
    _, rich = place(world, C, Side.SELL, 151, 200)
    process_withdrawal(world.portfolios, A, Amount(15_000 * USDC))
    _, result = place(world, B, Side.BUY, 151, 200)
    assert [(r.digest, r.reason) for r in result.removed] == [
        (poor.digest, CloseReason.INSUFFICIENT_COLLATERAL)]
    assert [t.maker_auth.digest for t in result.trades] == [rich.digest]
    assert world.book.closed[poor.digest] is CloseReason.INSUFFICIENT_COLLATERAL


class _ShortAfterOneFill:
    """A ledger that lets ``account`` take only one fill per order (to reach the taker-short path)."""

    def __init__(self, world: World, account: Address) -> None:
        self.inner, self.account = world.portfolios, account

    def check_fill(self, account: Address, deltas: Sequence[PositionDelta], cash: int) -> None:
        if account == self.account and len(deltas) > 1:
            raise InsufficientCollateral(account, 1, 0)
        self.inner.check_fill(account, deltas, cash)

    def apply_fill(self, account: Address, deltas: Sequence[PositionDelta], cash: int) -> None:
        self.inner.apply_fill(account, deltas, cash)


def test_taker_short_mid_match_keeps_earlier_fills_and_stops(world: World) -> None:
    world.book.risk = _ShortAfterOneFill(world, B)
    place(world, A, Side.SELL, 150, 100)
    _, second = place(world, C, Side.SELL, 150, 100)
    _, result = place(world, B, Side.BUY, 150, 300)
    assert len(result.trades) == 1 and result.closed is CloseReason.INSUFFICIENT_COLLATERAL
    assert result.resting == 0 and second.digest in world.book.resting  # the maker is untouched


def test_taker_short_on_the_first_fill_is_refused(world: World) -> None:
    class NoTrades(_ShortAfterOneFill):
        def check_fill(self, account: Address, deltas: Sequence[PositionDelta], cash: int) -> None:
            if account == self.account and len(deltas) == 1 and cash == -150 * USDC:
                raise InsufficientCollateral(account, 1, 0)

    world.book.risk = NoTrades(world, B)
    place(world, A, Side.SELL, 150, 100)
    refused(world, InsufficientCollateral, order(world, B, Side.BUY, px(160), 100))


def test_pre_verified_orders_skip_signature_work(world: World) -> None:
    o = order(world, A, Side.SELL, px(150), 100)
    signed_order = verify_signed(DOMAIN, o, signed(o, A), A)
    assert process_verified_order(world.book, signed_order, T).resting == 100


def test_cash_and_positions_are_conserved(world: World) -> None:
    for i, (account, side, usdc) in enumerate([(A, Side.SELL, 150), (B, Side.BUY, 152),
                                                (C, Side.SELL, 149), (D, Side.BUY, 151),
                                                (A, Side.BUY, 160), (B, Side.SELL, 140)]):
        place(world, account, side, usdc, 100 + 50 * i, series=i % 2)
    portfolios = world.portfolios
    assert sum(portfolios.balances.values()) == sum(world.deposits.values())
    for series in world.series:
        assert sum(p.get(series, 0) for p in portfolios.positions.values()) == 0
    for account in ADDRESSES:
        assert get_balance(portfolios, account) >= get_requirement(portfolios, account)


def test_verified_path_still_checks_expiry(world: World) -> None:
    o = order(world, A, Side.SELL, px(150), 100, expiry=NOW - 1)
    with pytest.raises(OrderExpired):
        process_verified_order(world.book, verify_signed(DOMAIN, o, signed(o, A), A), T)


def test_a_full_fill_stops_before_the_next_level(world: World) -> None:
    place(world, A, Side.SELL, 150, 100)
    _, behind = place(world, C, Side.SELL, 150, 100)
    _, result = place(world, B, Side.BUY, 150, 100)
    assert len(result.trades) == 1 and get_remaining(world.book, behind.digest) == 100


def test_a_stale_plan_cannot_overfill(world: World) -> None:
    _, maker = place(world, A, Side.SELL, 150, 100)
    first = order(world, B, Side.BUY, px(150), 100)
    signed_first = verify_signed(DOMAIN, first, signed(first, B), B)
    listing = validate_order(world.book, signed_first, T)
    stale = get_match_plan(world.book, signed_first, listing, T)
    place(world, C, Side.BUY, 150, 100)  # fills the maker first
    with pytest.raises(Overfill):
        apply_match_plan(world.book, signed_first, stale, T)
    assert get_filled(world.book, maker.digest) == 100


def test_closing_a_position_removes_it_and_deposits_must_be_positive(world: World) -> None:
    place(world, A, Side.SELL, 150, 100)
    place(world, B, Side.BUY, 150, 100)
    place(world, B, Side.SELL, 150, 100)
    place(world, A, Side.BUY, 150, 100)
    assert get_positions(world.portfolios, A) == {} and A not in world.portfolios.positions
    with pytest.raises(RiskError):
        process_deposit(world.portfolios, A, Amount(0))
    with pytest.raises(RiskError):
        process_withdrawal(world.portfolios, A, Amount(-1))


def test_trade_authorisation_detects_tampering(world: World) -> None:
    place(world, A, Side.SELL, 150, 100)
    _, result = place(world, B, Side.BUY, 150, 100)
    (trade,) = result.trades
    assert is_trade_authorised(DOMAIN, trade)
    assert not is_trade_authorised(DOMAIN, replace(trade, maker=C))
    taker_order = trade.taker_auth.message
    assert isinstance(taker_order, Order)
    forged = Signed(replace(taker_order, price=px(1)), trade.taker_auth.signature,
                    trade.taker_auth.digest)
    assert not is_trade_authorised(DOMAIN, replace(trade, taker_auth=forged))
    swapped = replace(trade.maker_auth, signature=trade.taker_auth.signature)
    assert not is_trade_authorised(DOMAIN, replace(trade, maker_auth=swapped))
    assert compute_trade_flows(result.trades, C) == ((), 0)


# --- lazy deletion and stale plans ------------------------------------------------------------


def test_a_cancel_inside_a_level_is_skipped_by_readers_and_matching(world: World) -> None:
    _, first = place(world, A, Side.SELL, 150, 100)
    _, middle = place(world, B, Side.SELL, 150, 100)
    _, last = place(world, C, Side.SELL, 150, 100)
    c = cancel(B, middle.digest, nonce_=4242)
    process_cancel(world.book, c, signed(c, B), T)
    s = world.series[0]
    assert get_depth(world.book, s, Side.SELL, T) == ((px(150), 200),)
    assert [r.signed.digest for r in get_resting_orders(world.book)] == [first.digest, last.digest]
    _, taker = place(world, D, Side.BUY, 150, 200)
    assert [t.maker_auth.digest for t in taker.trades] == [first.digest, last.digest]
    assert not world.book.series[s].ask_prices and not world.book.series[s].asks


def test_a_level_whose_live_orders_all_left_is_deleted(world: World) -> None:
    _, front = place(world, A, Side.SELL, 150, 100)
    _, back = place(world, B, Side.SELL, 150, 100)
    place(world, C, Side.SELL, 151, 100)
    for account, result, n in ((B, back, 1), (A, front, 2)):
        c = cancel(account, result.digest, nonce_=5000 + n)
        process_cancel(world.book, c, signed(c, account), T)
    series_book = world.book.series[world.series[0]]
    assert series_book.ask_prices == [px(151)] and list(series_book.asks) == [px(151)]
    assert get_best_ask(world.book, world.series[0], T) == px(151)


def test_a_stale_plan_is_refused_before_anything_changes(world: World) -> None:
    place(world, A, Side.SELL, 150, 100)
    first = order(world, B, Side.BUY, px(150), 100)
    signed_first = verify_signed(DOMAIN, first, signed(first, B), B)
    stale = get_match_plan(world.book, signed_first,
                           validate_order(world.book, signed_first, T), T)
    place(world, C, Side.BUY, 150, 100)
    before = snapshot(world)
    with pytest.raises(Overfill):
        apply_match_plan(world.book, signed_first, stale, T)
    assert snapshot(world) == before and not is_nonce_used(world.book.nonces.get(B, {}), first.nonce)


def test_makers_hit_in_one_match_are_risk_checked_cumulatively(world: World) -> None:
    world.portfolios.balances[A] = 14_000 * USDC  # one short call needs 7,000 - premium
    place(world, A, Side.SELL, 150, 100)
    place(world, A, Side.SELL, 151, 100)
    place(world, B, Side.SELL, 152, 100)
    process_withdrawal(world.portfolios, A, Amount(6_000 * USDC))  # now carries just one
    _, result = place(world, C, Side.BUY, 152, 300)
    assert [t.maker for t in result.trades] == [A, B]
    assert [r.reason for r in result.removed] == [CloseReason.INSUFFICIENT_COLLATERAL]
    assert get_balance(world.portfolios, A) >= get_requirement(world.portfolios, A)


def test_stale_hashes_are_compacted_away(world: World) -> None:
    _, front = place(world, A, Side.SELL, 150, 100)
    behind = [place(world, B, Side.SELL, 150, 100)[1] for _ in range(80)]
    for i, result in enumerate(behind[:-1]):
        c = cancel(B, result.digest, nonce_=70_000 + i)
        process_cancel(world.book, c, signed(c, B), T)
    series_book = world.book.series[world.series[0]]
    queue = series_book.asks[px(150)]
    assert len(queue) < 80 and queue[0] == front.digest  # compacted at least once
    assert series_book.stale == sum(d not in world.book.resting for d in queue)
    assert get_depth(world.book, world.series[0], Side.SELL, T) == ((px(150), 200),)
    _, taker = place(world, C, Side.BUY, 150, 200)
    assert [t.maker_auth.digest for t in taker.trades] == [front.digest, behind[-1].digest]
    assert not series_book.asks and series_book.stale == 0
