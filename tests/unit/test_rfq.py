"""clearhouse.market.rfq: routing, quotes bound to one RFQ and taker, atomic multi-leg fills,
every refusal with its error, and fades."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace

import pytest

from clearhouse.errors import (
    AcceptExpired,
    ClearhouseError,
    InsufficientCollateral,
    InvalidOrder,
    NotOrderOwner,
    OffGrid,
    Overfill,
    QuoteAlreadyFilled,
    QuoteExpired,
    QuoteFaded,
    QuoteMismatch,
    ReplayedMessage,
    RFQExpired,
    SelfTrade,
    UnknownQuote,
    UnknownRFQ,
    UnlistedInstrument,
    WrongSigner,
)
from clearhouse.market.collateral import get_balance, get_positions, process_withdrawal
from clearhouse.market.rfq import (
    QuoteStatus,
    RfqFill,
    compute_maker_leg_side,
    get_fades,
    is_side_consistent,
    process_accept,
    process_quote,
    process_quote_cancel,
    process_register_maker,
    process_rfq,
    process_tick,
    process_unregister_maker,
    process_verified_accept,
    process_verified_quote,
    process_verified_rfq,
)
from clearhouse.market.trades import (
    FadeReason,
    FeeSchedule,
    Signed,
    is_trade_authorised,
    verify_signed,
)
from clearhouse.messages import RFQ, Accept, Quote, Side
from clearhouse.sim.market_world import (
    ADDRESSES,
    DOMAIN,
    NOW,
    USDC,
    World,
    accept,
    cancel,
    make_world,
    px,
    quote,
    rfq,
    signed,
)
from clearhouse.types import Address, Amount, Digest, Price, Quantity, SeriesId, Timestamp

TAKER, M1, M2, M3 = ADDRESSES[:4]
T = Timestamp(NOW)
SPREAD = [(0, 1, True), (2, 1, False)]  # buy the 3000 call, sell the 3200 call
SPREAD_PRICES = [px(200), px(120)]


@pytest.fixture
def world() -> World:
    w = make_world()
    for maker in (M1, M2, M3):
        process_register_maker(w.desk, maker)
    return w


def open_rfq(world: World, legs: list[tuple[int, int, bool]] | None = None, size: int = 200,
             side: Side = Side.BUY, expiry: int = NOW + 60
             ) -> tuple[RFQ, Digest, tuple[Address, ...]]:
    r = rfq(world, TAKER, legs or SPREAD, size, side, expiry)
    rfq_id, makers = process_rfq(world.desk, r, signed(r, TAKER), T)
    return r, rfq_id, makers


def send_quote(world: World, q: Quote, now: int = NOW) -> Digest:
    return process_quote(world.desk, q, signed(q, q.maker), Timestamp(now))


def quoted(world: World, maker: Address = M1, side: Side = Side.SELL, size: int | None = None,
           legs: list[tuple[int, int, bool]] | None = None, expiry: int = NOW + 60
           ) -> tuple[RFQ, Digest, Quote, Digest]:
    r, rfq_id, _ = open_rfq(world, legs, expiry=expiry)
    q = quote(world, maker, r, rfq_id, [px(200), px(120)][:len(r.legs)], side, size)
    return r, rfq_id, q, send_quote(world, q)


def send_accept(world: World, a: Accept, now: int = NOW) -> RfqFill:
    return process_accept(world.desk, a, signed(a, a.taker), Timestamp(now))


def snapshot(world: World) -> tuple[object, ...]:
    desk = world.desk
    return (dict(desk.rfqs), dict(desk.rfq_filled), dict(desk.quotes), dict(desk.quote_status),
            list(desk.fades), {a: dict(b) for a, b in desk.nonces.items()},
            dict(world.portfolios.balances), {a: dict(p) for a, p in world.portfolios.positions.items()})


def refused(world: World, error: type[ClearhouseError], call: Callable[[], object]
            ) -> ClearhouseError:
    """``call()`` raises ``error`` and changes nothing."""
    before = snapshot(world)
    with pytest.raises(error) as info:
        call()
    assert snapshot(world) == before
    return info.value


# --- the happy path ----------------------------------------------------------------------------


def test_rfq_quote_accept_fills_every_leg_atomically(world: World) -> None:
    r, rfq_id, q, quote_id = quoted(world)
    fill = send_accept(world, a := accept(world, TAKER, quote_id, 200))
    assert fill.rfq_id == rfq_id and fill.quote_id == quote_id
    trades = fill.trades
    assert len(trades) == 2 and {t.fill_id for t in trades} == {fill.fill_id}
    assert [(t.leg, t.legs) for t in trades] == [(0, 2), (1, 2)]
    long_leg, short_leg = trades
    assert (long_leg.series_id, long_leg.taker_side, long_leg.maker_side) == (world.series[0], Side.BUY, Side.SELL)
    assert (short_leg.series_id, short_leg.taker_side, short_leg.maker_side) == (world.series[2], Side.SELL, Side.BUY)
    assert [t.quantity for t in trades] == [200, 200]
    assert [t.premium for t in trades] == [400 * USDC, 240 * USDC]
    assert all(is_trade_authorised(DOMAIN, t) for t in trades)
    assert long_leg.maker_auth.message == q and long_leg.taker_auth.message == a
    assert get_positions(world.portfolios, TAKER) == {world.series[0]: 200, world.series[2]: -200}
    assert get_positions(world.portfolios, M1) == {world.series[0]: -200, world.series[2]: 200}
    assert get_balance(world.portfolios, TAKER) == 1_000_000 * USDC - 160 * USDC
    assert get_balance(world.portfolios, M1) == 1_000_000 * USDC + 160 * USDC
    assert world.desk.quote_status[quote_id] is QuoteStatus.FILLED
    assert world.desk.rfq_filled[rfq_id] == 200 and r.size == 200


def test_a_fill_pays_fees_on_its_whole_premium_carried_by_leg_0(world: World) -> None:
    world.desk.fees = FeeSchedule(maker_bps=10, taker_bps=30)
    _, _, _, quote_id = quoted(world)
    fill = send_accept(world, accept(world, TAKER, quote_id, 200))
    # legs of 400 and 240 USDC: the fees are on the 640 together (one rounding, as the STF's RfqFill)
    assert [(t.maker_fee, t.taker_fee) for t in fill.trades] == [(640_000, 1_920_000), (0, 0)]
    assert get_balance(world.portfolios, TAKER) == 1_000_000 * USDC - 160 * USDC - 1_920_000
    assert get_balance(world.portfolios, M1) == 1_000_000 * USDC + 160 * USDC - 640_000


def test_a_taker_short_of_the_fee_is_refused_without_a_fade() -> None:
    world = make_world(accounts=4)
    world.desk.fees = FeeSchedule(maker_bps=0, taker_bps=100)
    process_register_maker(world.desk, M1)
    r, rfq_id, _ = open_rfq(world, legs=[(0, 1, True)], size=200)  # the taker buys 2 calls at 100
    quote_id = send_quote(world, quote(world, M1, r, rfq_id, [px(100)]))
    process_withdrawal(world.portfolios, TAKER, Amount(get_balance(world.portfolios, TAKER) - 200 * USDC))
    refused(world, InsufficientCollateral,  # the premium is there; its 1 % fee is not
            lambda: send_accept(world, accept(world, TAKER, quote_id, 200)))
    assert not get_fades(world.desk)


def test_hidden_side_takes_quotes_on_either_side(world: World) -> None:
    r, rfq_id, _ = open_rfq(world, side=Side.HIDDEN)
    bid = send_quote(world, quote(world, M1, r, rfq_id, SPREAD_PRICES, Side.BUY))
    send_quote(world, quote(world, M2, r, rfq_id, SPREAD_PRICES, Side.SELL))
    fill = send_accept(world, accept(world, TAKER, bid, 100))
    # the maker bought the structure: it buys leg 0 and sells leg 1
    assert [t.maker_side for t in fill.trades] == [Side.BUY, Side.SELL]


def test_side_rules() -> None:
    assert is_side_consistent(Side.HIDDEN, Side.BUY) and is_side_consistent(Side.HIDDEN, Side.SELL)
    assert is_side_consistent(Side.BUY, Side.SELL) and not is_side_consistent(Side.BUY, Side.BUY)
    assert compute_maker_leg_side(Side.SELL, True) is Side.SELL
    assert compute_maker_leg_side(Side.SELL, False) is Side.BUY
    assert compute_maker_leg_side(Side.BUY, False) is Side.SELL


def test_partial_accept_and_the_rfq_size_bound(world: World) -> None:
    r, rfq_id, _ = open_rfq(world, size=200)
    q1 = send_quote(world, quote(world, M1, r, rfq_id, SPREAD_PRICES, size=200))
    q2 = send_quote(world, quote(world, M2, r, rfq_id, SPREAD_PRICES, size=200))
    fill = send_accept(world, accept(world, TAKER, q1, 150))
    assert [t.quantity for t in fill.trades] == [150, 150]
    refused(world, Overfill, lambda: send_accept(world, accept(world, TAKER, q2, 100)))
    send_accept(world, accept(world, TAKER, q2, 50))
    assert world.desk.rfq_filled[rfq_id] == 200


def test_ratios_multiply_the_size(world: World) -> None:
    r, rfq_id, _ = open_rfq(world, legs=[(0, 1, True), (2, 2, False)], size=100)
    q = send_quote(world, quote(world, M1, r, rfq_id, [px(200), px(90)]))
    fill = send_accept(world, accept(world, TAKER, q, 100))
    assert [t.quantity for t in fill.trades] == [100, 200]


# --- routing -------------------------------------------------------------------------------------


def test_default_route_is_every_registered_maker_but_the_taker(world: World) -> None:
    process_register_maker(world.desk, TAKER)
    process_register_maker(world.desk, M1)  # twice is harmless
    assert open_rfq(world)[2] == (M1, M2, M3)
    process_unregister_maker(world.desk, M2)
    process_unregister_maker(world.desk, M2)
    assert open_rfq(world)[2] == (M1, M3)


def test_a_routing_hook_chooses_the_makers(world: World) -> None:
    seen: list[Sequence[Address]] = []

    def only_m2(request: Signed[RFQ], makers: Sequence[Address]) -> Sequence[Address]:
        seen.append(makers)
        return [M2, ADDRESSES[5]]  # an unregistered address is ignored

    world.desk.router = only_m2
    r, rfq_id, makers = open_rfq(world)
    assert makers == (M2,) and seen == [(M1, M2, M3)]
    error = refused(world, QuoteMismatch,
                    lambda: send_quote(world, quote(world, M1, r, rfq_id, SPREAD_PRICES)))
    assert error.field == "maker"
    send_quote(world, quote(world, M2, r, rfq_id, SPREAD_PRICES))


# --- RFQ refusals ------------------------------------------------------------------------------


def test_rfq_refusals(world: World) -> None:
    late = rfq(world, TAKER, SPREAD, 100, expiry=NOW - 1)
    refused(world, RFQExpired, lambda: process_rfq(world.desk, late, signed(late, TAKER), T))
    r = rfq(world, TAKER, SPREAD, 100)
    refused(world, WrongSigner, lambda: process_rfq(world.desk, r, signed(r, M1), T))
    twice = rfq(world, TAKER, [(0, 1, True), (0, 1, False)], 100)
    refused(world, InvalidOrder, lambda: process_rfq(world.desk, twice, signed(twice, TAKER), T))
    unlisted = replace(r, legs=(replace(r.legs[0], series_id=SeriesId(b"\x02" * 32)),))
    refused(world, UnlistedInstrument,
            lambda: process_rfq(world.desk, unlisted, signed(unlisted, TAKER), T))
    process_rfq(world.desk, r, signed(r, TAKER), T)
    refused(world, ReplayedMessage, lambda: process_rfq(world.desk, r, signed(r, TAKER), T))


def test_rfq_on_an_expired_series_is_refused(world: World) -> None:
    r = rfq(world, TAKER, SPREAD, 100, expiry=2**40)
    after = Timestamp(world.listings[world.series[0]].series.expiry)
    with pytest.raises(InvalidOrder):
        process_rfq(world.desk, r, signed(r, TAKER), after)


def test_an_rfq_open_across_its_series_expiry_cannot_be_quoted_or_filled_after_it(world: World) -> None:
    """Settlement refuses a fill after the series' expiry (``SeriesExpired``), and the coordinator
    settles the expiry soon after: quotes and accepts arriving from then on are refused, no fade."""
    expiry = world.listings[world.series[0]].series.expiry
    r = rfq(world, TAKER, SPREAD, 200, expiry=expiry + 60)
    rfq_id, _ = process_rfq(world.desk, r, signed(r, TAKER), Timestamp(expiry - 30))
    q = quote(world, M1, r, rfq_id, [px(200), px(120)], expiry=expiry + 30)
    late = quote(world, M2, r, rfq_id, [px(200), px(120)], expiry=expiry + 30)
    refused(world, InvalidOrder, lambda: send_quote(world, late, now=expiry))
    quote_id = send_quote(world, q, now=expiry - 10)
    a = accept(world, TAKER, quote_id, 200, expiry=expiry + 30)
    assert refused(world, InvalidOrder, lambda: send_accept(world, a, now=expiry)).field == "legs"
    send_accept(world, a, now=expiry - 1)  # a second earlier it fills


# --- quote refusals ----------------------------------------------------------------------------


def test_quote_refusals_expiry_and_binding(world: World) -> None:
    r, rfq_id, _ = open_rfq(world, expiry=NOW + 30)
    q = quote(world, M1, r, rfq_id, SPREAD_PRICES)
    refused(world, QuoteExpired, lambda: send_quote(world, replace(q, expiry=Timestamp(NOW - 1))))
    refused(world, WrongSigner, lambda: process_quote(world.desk, q, signed(q, M2), T))
    refused(world, UnknownRFQ, lambda: send_quote(world, replace(q, rfq_id=Digest(b"\x07" * 32))))
    other = replace(q, taker=M2)
    assert refused(world, QuoteMismatch, lambda: send_quote(world, other)).field == "taker"
    late = replace(q, expiry=Timestamp(NOW + 100))
    refused(world, RFQExpired, lambda: send_quote(world, late, NOW + 31))


def test_quote_refusals_terms(world: World) -> None:
    r, rfq_id, _ = open_rfq(world, size=200)
    q = quote(world, M1, r, rfq_id, SPREAD_PRICES)
    cases = {
        "legs": replace(q, legs=q.legs[:1]),
        "legs[0]": replace(q, legs=(replace(q.legs[0], ratio=2), q.legs[1])),
        "legs[1]": replace(q, legs=(q.legs[0], replace(q.legs[1], is_buy=True))),
        "side": replace(q, side=Side.BUY),
        "size": replace(q, size=Quantity(201)),
    }
    for field, bad in cases.items():
        assert refused(world, QuoteMismatch, lambda b=bad: send_quote(world, b)).field == field  # type: ignore[misc]
    wrong_series = replace(q, legs=(replace(q.legs[0], series_id=world.series[1]), q.legs[1]))
    refused(world, QuoteMismatch, lambda: send_quote(world, wrong_series))
    off_tick = replace(q, legs=(replace(q.legs[0], price=Price(px(200) + 1)), q.legs[1]))
    refused(world, OffGrid, lambda: send_quote(world, off_tick))


def test_quote_self_trade_and_replay(world: World) -> None:
    process_register_maker(world.desk, TAKER)
    r, rfq_id, _ = open_rfq(world)
    own = quote(world, M1, r, rfq_id, SPREAD_PRICES)
    own = replace(own, maker=TAKER)
    refused(world, SelfTrade, lambda: send_quote(world, own))
    q = quote(world, M1, r, rfq_id, SPREAD_PRICES)
    send_quote(world, q)
    refused(world, ReplayedMessage, lambda: send_quote(world, q))
    refused(world, ReplayedMessage, lambda: send_quote(world, replace(q, size=Quantity(100))))


def test_quote_the_maker_cannot_carry_is_refused() -> None:
    world = make_world(deposit_usdc=1_000, accounts=4)
    process_register_maker(world.desk, M1)
    r, rfq_id, _ = open_rfq(world, legs=[(0, 1, True)], size=100)
    q = quote(world, M1, r, rfq_id, [px(200)])
    refused(world, InsufficientCollateral, lambda: send_quote(world, q))


# --- accept refusals ---------------------------------------------------------------------------


def test_accept_refusals(world: World) -> None:
    _, _, _q, quote_id = quoted(world, size=100)
    a = accept(world, TAKER, quote_id, 100)
    refused(world, AcceptExpired, lambda: send_accept(world, replace(a, expiry=Timestamp(NOW - 1))))
    refused(world, WrongSigner, lambda: process_accept(world.desk, a, signed(a, M2), T))
    refused(world, UnknownQuote, lambda: send_accept(world, replace(a, quote_id=Digest(b"\x09" * 32))))
    stranger = accept(world, M2, quote_id, 100)
    refused(world, QuoteMismatch, lambda: send_accept(world, stranger))
    refused(world, Overfill, lambda: send_accept(world, replace(a, size=Quantity(101))))
    refused(world, QuoteExpired, lambda: send_accept(world, replace(a, expiry=Timestamp(NOW + 100)),
                                                     NOW + 11))
    send_accept(world, a)
    refused(world, QuoteAlreadyFilled, lambda: send_accept(world, accept(world, TAKER, quote_id, 100)))


def test_accept_nonce_replay(world: World) -> None:
    r, rfq_id, _ = open_rfq(world)
    q1 = send_quote(world, quote(world, M1, r, rfq_id, SPREAD_PRICES, size=100))
    q2 = send_quote(world, quote(world, M2, r, rfq_id, SPREAD_PRICES, size=100))
    a = accept(world, TAKER, q1, 100)
    send_accept(world, a)
    refused(world, ReplayedMessage, lambda: send_accept(world, replace(a, quote_id=q2)))


def test_taker_short_is_refused_without_a_fade() -> None:
    world = make_world(accounts=4)
    process_register_maker(world.desk, M1)
    r, rfq_id, _ = open_rfq(world, legs=[(0, 1, False)], size=200)  # taker buys a short call
    quote_id = send_quote(world, quote(world, M1, r, rfq_id, [px(100)]))
    process_withdrawal(world.portfolios, TAKER, Amount(get_balance(world.portfolios, TAKER) - 1))
    refused(world, InsufficientCollateral,
            lambda: send_accept(world, accept(world, TAKER, quote_id, 200)))
    assert not get_fades(world.desk)


# --- fades -------------------------------------------------------------------------------------


def test_maker_short_at_accept_is_a_fade(world: World) -> None:
    _, rfq_id, _q, quote_id = quoted(world, legs=[(0, 1, True)], size=100)
    process_withdrawal(world.portfolios, M1, Amount(get_balance(world.portfolios, M1) - 100 * USDC))
    a = accept(world, TAKER, quote_id, 100)
    before = dict(world.portfolios.balances)
    with pytest.raises(QuoteFaded) as info:
        send_accept(world, a, NOW + 3)
    (fade,) = get_fades(world.desk)
    assert (fade.maker, fade.rfq_id, fade.quote_id, fade.reason, fade.time) == (
        M1, rfq_id, quote_id, FadeReason.INSUFFICIENT_COLLATERAL, NOW + 3)
    assert info.value.context["fade"] == fade
    assert world.portfolios.balances == before
    assert world.desk.quote_status[quote_id] is QuoteStatus.FADED
    with pytest.raises(QuoteFaded):
        send_accept(world, a, NOW + 4)  # same accept: its nonce is still unused
    assert len(get_fades(world.desk)) == 1


def test_a_cancelled_quote_accepted_is_a_fade(world: World) -> None:
    _, _, _q, quote_id = quoted(world)
    c = cancel(M1, quote_id, nonce_=4242)
    assert process_quote_cancel(world.desk, c, signed(c, M1), T) == (quote_id,)
    assert world.desk.quote_status[quote_id] is QuoteStatus.CANCELLED
    with pytest.raises(QuoteFaded):
        send_accept(world, accept(world, TAKER, quote_id, 100))
    assert [f.reason for f in get_fades(world.desk)] == [FadeReason.CANCELLED]


def test_cancel_quote_by_nonce_and_ownership(world: World) -> None:
    _, _, q, quote_id = quoted(world)
    c = cancel(M2, quote_id, nonce_=1)
    refused(world, NotOrderOwner, lambda: process_quote_cancel(world.desk, c, signed(c, M2), T))
    by_nonce = cancel(M1, nonce_=q.nonce)
    assert process_quote_cancel(world.desk, by_nonce, signed(by_nonce, M1), T) == (quote_id,)
    assert process_quote_cancel(world.desk, by_nonce, signed(by_nonce, M1), T) == ()


def test_tick_forgets_expired_quotes_and_rfqs(world: World) -> None:
    _, rfq_id, _q, quote_id = quoted(world, expiry=NOW + 5)
    process_tick(world.desk, Timestamp(NOW + 8))
    assert rfq_id in world.desk.rfqs  # a live quote still refers to it
    process_tick(world.desk, Timestamp(NOW + 11))
    assert quote_id not in world.desk.quotes and rfq_id not in world.desk.rfqs
    with pytest.raises(UnknownQuote):
        send_accept(world, accept(world, TAKER, quote_id, 100, expiry=NOW + 100), NOW + 11)


def test_verified_paths_still_check_expiry(world: World) -> None:
    late = rfq(world, TAKER, SPREAD, 100, expiry=NOW - 1)
    with pytest.raises(RFQExpired):
        process_verified_rfq(world.desk, verify_signed(DOMAIN, late, signed(late, TAKER), TAKER), T)
    r, rfq_id, _ = open_rfq(world)
    q = replace(quote(world, M1, r, rfq_id, SPREAD_PRICES), expiry=Timestamp(NOW - 1))
    with pytest.raises(QuoteExpired):
        process_verified_quote(world.desk, verify_signed(DOMAIN, q, signed(q, M1), M1), T)
    a = accept(world, TAKER, Digest(bytes(32)), 1, expiry=NOW - 1)
    with pytest.raises(AcceptExpired):
        process_verified_accept(world.desk, verify_signed(DOMAIN, a, signed(a, TAKER), TAKER), T)
