"""The coordinator over a real SQLite store: handlers log before they ack, refusals write nothing,
idempotency keys apply once, and replaying the log rebuilds exactly the same state and acks."""

from __future__ import annotations

import pytest
from coordinator_support import make_coordinator

from clearhouse.errors import (
    DuplicateOrder,
    IdempotencyConflict,
    InsufficientCollateral,
    WrongSigner,
)
from clearhouse.market.trades import ZERO_HASH
from clearhouse.messages import Side, TimeInForce, Withdrawal
from clearhouse.node.coordinator import Coordinator
from clearhouse.sim import market_world as mw
from clearhouse.store import Store
from clearhouse.types import Address, Amount, Digest, Nonce, Timestamp

A, B, C, D = mw.ADDRESSES[:4]



def fund(c: Coordinator) -> None:
    for account in (A, B, C, D):
        c.on_deposit(account, Amount(100_000 * mw.USDC))


def run_scenario(c: Coordinator, w: mw.World) -> None:
    """Book trades, a cancel, an RFQ filled, an RFQ quote that fades, a withdrawal, a tick."""
    now = mw.NOW
    fund(c)
    c.on_register_maker(C)
    sell = mw.order(w, A, Side.SELL, mw.px(120), 300)
    c.on_order(sell, mw.signed(sell, A), now=now)
    buy = mw.order(w, B, Side.BUY, mw.px(125), 100, TimeInForce.IOC)
    ack = c.on_order(buy, mw.signed(buy, B), now=now + 1)
    assert len(ack.body["trades"]) == 1 and ack.body["trades"][0]["price"] == str(mw.px(120))
    rest = mw.order(w, A, Side.SELL, mw.px(130), 100)
    rest_ack = c.on_order(rest, mw.signed(rest, A), now=now + 2)
    cancel = mw.cancel(A, Digest(bytes.fromhex(rest_ack.body["orderHash"][2:])))
    assert len(c.on_cancel(cancel, mw.signed(cancel, A), now=now + 3).body["removed"]) == 1
    request = mw.rfq(w, B, [(0, 1, True), (1, 1, False)], 100)
    rfq_id = Digest(bytes.fromhex(c.on_rfq(request, mw.signed(request, B), now=now + 4)
                                  .body["rfqId"][2:]))
    quote = mw.quote(w, C, request, rfq_id, [mw.px(150), mw.px(80)], expiry=now + 30)
    quote_id = Digest(bytes.fromhex(c.on_quote(quote, mw.signed(quote, C), now=now + 5)
                                    .body["quoteId"][2:]))
    accept = mw.accept(w, B, quote_id, 100, expiry=now + 30)
    assert len(c.on_accept(accept, mw.signed(accept, B), now=now + 6).body["trades"]) == 2
    request2 = mw.rfq(w, D, [(2, 1, True)], 100)
    rfq2 = Digest(bytes.fromhex(c.on_rfq(request2, mw.signed(request2, D), now=now + 7)
                                .body["rfqId"][2:]))
    quote2 = mw.quote(w, C, request2, rfq2, [mw.px(40)], expiry=now + 30)
    q2 = Digest(bytes.fromhex(c.on_quote(quote2, mw.signed(quote2, C), now=now + 8).body["quoteId"][2:]))
    pull = mw.cancel(C, q2)
    assert c.on_cancel(pull, mw.signed(pull, C), now=now + 9).body["quotesWithdrawn"]
    accept2 = mw.accept(w, D, q2, 100, expiry=now + 30)
    faded = c.on_accept(accept2, mw.signed(accept2, D), now=now + 10)
    assert faded.error is not None and faded.error["code"] == "quote_faded"
    out = Withdrawal(D, D, Amount(1_000 * mw.USDC), mw.nonce(w), Timestamp(now + 60))
    c.on_withdrawal(out, mw.signed(out, D), now=now + 11)
    c.on_tick(now + 120)


def test_replay_rebuilds_the_same_state(store: Store) -> None:
    c = make_coordinator(store)
    run_scenario(c, mw.make_world(accounts=0))
    assert len(c.trades) == 3 and len(c.desk.fades) == 1 and len(c.pending) == 6  # 3 trades, 2 cancels, 1 withdrawal
    again = make_coordinator(store)
    assert again.get_state_fingerprint() == c.get_state_fingerprint()
    assert again.last_seq == c.last_seq == store.get_last_action_seq()


def test_events_are_numbered_per_channel(store: Store) -> None:
    c = make_coordinator(store)
    run_scenario(c, mw.make_world(accounts=0))
    trades = store.iter_events("trades")
    assert [e.seq for e in trades] == [1, 2, 3]
    assert trades[0].payload == c.get_state_fingerprint()["trades"][0]
    assert store.iter_events(f"quotes:{C}")[0].payload["fade"]["reason"] == "cancelled"


def test_refused_actions_write_nothing(store: Store) -> None:
    c = make_coordinator(store)
    w = mw.make_world(accounts=0)
    c.on_deposit(A, Amount(10 * mw.USDC))
    before, seq = c.get_state_fingerprint(), store.get_last_action_seq()
    sell = mw.order(w, A, Side.SELL, mw.px(120), 10_000)  # naked short of 100 calls: 10 USDC is short
    with pytest.raises(InsufficientCollateral):
        c.on_order(sell, mw.signed(sell, A), now=mw.NOW)
    with pytest.raises(WrongSigner):
        c.on_order(sell, mw.signed(sell, B), now=mw.NOW)
    out = Withdrawal(A, A, Amount(11 * mw.USDC), Nonce(7), Timestamp(mw.NOW + 60))
    with pytest.raises(InsufficientCollateral):
        c.on_withdrawal(out, mw.signed(out, A), now=mw.NOW)
    assert c.get_state_fingerprint() == before and store.get_last_action_seq() == seq


def test_idempotency_key_applies_once(store: Store) -> None:
    c = make_coordinator(store)
    w = mw.make_world(accounts=0)
    fund(c)
    bid = mw.order(w, A, Side.BUY, mw.px(100), 100)
    first = c.on_order(bid, mw.signed(bid, A), now=mw.NOW, idempotency_key="k1")
    again = c.on_order(bid, mw.signed(bid, A), now=mw.NOW + 5, idempotency_key="k1")
    assert again.duplicate and (again.seq, again.body) == (first.seq, first.body)
    with pytest.raises(DuplicateOrder):  # without the key it is refused as a replay
        c.on_order(bid, mw.signed(bid, A), now=mw.NOW)
    other = mw.order(w, A, Side.BUY, mw.px(90), 100)
    with pytest.raises(IdempotencyConflict):
        c.on_order(other, mw.signed(other, A), now=mw.NOW, idempotency_key="k1")
    restarted = make_coordinator(store)  # keys survive a restart
    assert restarted.on_order(bid, mw.signed(bid, A), now=mw.NOW, idempotency_key="k1").seq == first.seq
    assert store.get_last_action_seq() == first.seq
    assert len(restarted.book.resting) == 1


def test_cancel_by_nonce_only(store: Store) -> None:
    c = make_coordinator(store)
    w = mw.make_world(accounts=0)
    fund(c)
    bid = mw.order(w, A, Side.BUY, mw.px(100), 100)
    c.on_order(bid, mw.signed(bid, A), now=mw.NOW)
    cancel = mw.cancel(Address(A), ZERO_HASH, nonce_=int(bid.nonce))
    assert c.on_cancel(cancel, mw.signed(cancel, A), now=mw.NOW).body["removed"][0]["reason"] == "cancelled"
    assert not c.book.resting


def test_tick_purges_and_is_logged_only_when_due(store: Store) -> None:
    c = make_coordinator(store)
    w = mw.make_world(accounts=0)
    fund(c)
    bid = mw.order(w, A, Side.BUY, mw.px(100), 100, expiry=mw.NOW + 10)
    c.on_order(bid, mw.signed(bid, A), now=mw.NOW)
    seq = store.get_last_action_seq()
    assert c.on_tick(mw.NOW + 5).seq == 0 and store.get_last_action_seq() == seq
    purged = c.on_tick(mw.NOW + 11)
    assert purged.seq == seq + 1 and purged.body["expired"][0]["reason"] == "expired"
    assert not c.book.resting and make_coordinator(store).get_state_fingerprint() == c.get_state_fingerprint()


def test_book_events_rebuild_the_depth(store: Store) -> None:
    """Folding the ``book:<series>`` level updates gives exactly the depth snapshot."""
    c = make_coordinator(store)
    w = mw.make_world(accounts=0)
    run_scenario(c, w)
    for i, (account, side, price) in enumerate([(A, Side.SELL, 130), (B, Side.SELL, 130),
                                                (C, Side.BUY, 90), (A, Side.SELL, 125),
                                                (D, Side.BUY, 131), (C, Side.BUY, 95)]):
        o = mw.order(w, account, side, mw.px(price), 100 * (1 + i % 3))
        c.on_order(o, mw.signed(o, account), now=mw.NOW + 20)
    series = mw.build_listings()[1][0]
    levels: dict[str, dict[str, str]] = {"bids": {}, "asks": {}}
    for event in store.iter_events("book:0x" + series.hex()):
        for side in ("bids", "asks"):
            for price, quantity in event.payload[side]:
                levels[side][price] = quantity
    snapshot = c.get_book_json(series, mw.NOW + 20)
    for side, best_first in (("bids", True), ("asks", False)):
        folded = sorted(((int(p), q) for p, q in levels[side].items() if q != "0"),
                        reverse=best_first)
        assert [[str(p), q] for p, q in folded] == snapshot[side]
    assert snapshot["bids"] and snapshot["asks"]
