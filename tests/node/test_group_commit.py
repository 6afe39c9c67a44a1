"""Group commit: handlers run together are applied in order and committed in one transaction;
a refusal inside a group touches nothing else, the log order is the application order (replay
rebuilds the same state), nothing leaves before the commit, and a failed commit leaves the state
as the log says. Over a real SQLite store."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import threading
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import pytest
from coordinator_support import make_coordinator

from clearhouse.errors import DuplicateOrder, InsufficientCollateral, StoreError, WrongSigner
from clearhouse.messages import Order, Side
from clearhouse.node.coordinator import Ack, Coordinator
from clearhouse.node.ingest import GroupExecutor
from clearhouse.sim import market_world as mw
from clearhouse.store import Store, open_store
from clearhouse.types import Amount

A, B, C, D = mw.ADDRESSES[:4]
T = TypeVar("T")



def place(c: Coordinator, order: Order, signer: str, key: str | None = None) -> Callable[[], Ack]:
    return lambda: c.on_order(order, mw.signed(order, signer), now=mw.NOW,  # type: ignore[arg-type]
                              idempotency_key=key)


def mixed_group(c: Coordinator, w: mw.World) -> tuple[list[Callable[[], Ack]], list[type | None]]:
    """Resting orders, a cross, and three refusals between them (expected error or ``None``)."""
    a1 = mw.order(w, A, Side.SELL, mw.px(120), 300)
    b1 = mw.order(w, B, Side.BUY, mw.px(125), 100)           # crosses a1
    poor = mw.order(w, D, Side.SELL, mw.px(120), 10_000)    # D holds 10 USDC: refused
    b2 = mw.order(w, B, Side.BUY, mw.px(100), 200)
    calls = [place(c, a1, A), place(c, b1, B), place(c, poor, D), place(c, b2, A),  # wrong signer
             place(c, b2, B), place(c, b2, B),  # the second is a replay of the first
             place(c, mw.order(w, C, Side.BUY, mw.px(99), 100), C, key="k")]
    return calls, [None, None, InsufficientCollateral, WrongSigner, None, DuplicateOrder, None]


class Recorder:
    """A batcher that records what it is handed."""

    def __init__(self, items: list[Any]) -> None:
        self.items = items

    def add_items(self, items: Any, /) -> None:
        self.items.extend(items)


def fund(c: Coordinator) -> None:
    for account in (A, B, C):
        c.on_deposit(account, Amount(100_000 * mw.USDC))
    c.on_deposit(D, Amount(10 * mw.USDC))


def test_a_group_is_one_commit_in_application_order_and_replays_the_same(store: Store) -> None:
    c = make_coordinator(store)
    fund(c)
    seen: list[tuple[str, int]] = []
    c.listeners.append(lambda events: seen.extend((channel, seq) for channel, seq, _ in events))
    first = store.get_last_action_seq()
    calls, expected = mixed_group(c, mw.make_world(accounts=0))
    results = c.run_group(calls)
    for result, error in zip(results, expected, strict=True):
        assert isinstance(result, error) if error else isinstance(result, Ack)
    acks = [r for r in results if isinstance(r, Ack)]
    assert [a.seq for a in acks] == list(range(first + 1, first + 5))  # contiguous, in call order
    assert len(acks[1].body["trades"]) == 1
    logged = list(store.iter_actions(first))
    assert [r.seq for r in logged] == [a.seq for a in acks] and c.last_seq == acks[-1].seq
    assert {r.kind for r in logged} == {"order"} and store.get_last_action_seq() == acks[-1].seq
    # events went out after the commit, numbered; the book channel got one event for the group
    book = [s for ch, s in seen if ch.startswith("book:")]
    assert ("trades", 1) in seen and book == [1]
    assert make_coordinator(store).get_state_fingerprint() == c.get_state_fingerprint()
    # the same calls one by one reach the same state (the book events aside, coalesced above)
    other = open_store(f"sqlite:///{Path(str(store.engine.url.database)).parent / 'seq.db'}")
    try:
        alone = make_coordinator(other)
        fund(alone)
        for call in mixed_group(alone, mw.make_world(accounts=0))[0]:
            with contextlib.suppress(InsufficientCollateral, WrongSigner, DuplicateOrder):
                call()
        assert alone.get_state_fingerprint() == c.get_state_fingerprint()
    finally:
        other.close()


def test_idempotency_keys_inside_a_group(store: Store) -> None:
    c = make_coordinator(store)
    fund(c)
    w = mw.make_world(accounts=0)
    bid = mw.order(w, A, Side.BUY, mw.px(100), 100)
    first, again = c.run_group([place(c, bid, A, key="k1"), place(c, bid, A, key="k1")])
    assert isinstance(first, Ack) and isinstance(again, Ack)
    assert again.duplicate and again.seq == first.seq == store.get_last_action_seq()
    assert c.keys[(A, "k1")][0] == first.seq and make_coordinator(store).keys == c.keys
    later = c.on_order(bid, mw.signed(bid, A), now=mw.NOW, idempotency_key="k1")
    assert later.duplicate and later.seq == first.seq


def test_a_failed_commit_acknowledges_nothing_and_keeps_the_state_of_the_log(store: Store) -> None:
    c = make_coordinator(store)
    fund(c)
    items: list[Any] = []
    c.batcher = Recorder(items)
    seen: list[str] = []
    c.listeners.append(lambda events: seen.extend(channel for channel, _, _ in events))
    before, last = c.get_state_fingerprint(), store.get_last_action_seq()
    # another writer took the idempotency key behind the coordinator's back: the insert collides
    store.append_action("auth_challenge", A, {"other": 1}, "taken")
    w = mw.make_world(accounts=0)
    sell, buy = mw.order(w, A, Side.SELL, mw.px(120), 100), mw.order(w, B, Side.BUY, mw.px(130), 100)
    results = c.run_group([place(c, buy, B), place(c, sell, A, key="taken")])
    assert all(isinstance(r, StoreError) for r in results)
    assert store.get_last_action_seq() == last + 1 and not seen and not items
    assert c.get_state_fingerprint() == before and c.last_seq == last + 1
    assert c.on_order(sell, mw.signed(sell, A), now=mw.NOW, idempotency_key="free").seq == last + 2
    assert c.run_group([place(c, buy, B)])[0].seq == last + 3 and len(items) == 1  # type: ignore[union-attr]


def test_the_executor_groups_queued_handlers_and_keeps_submission_order(store: Store) -> None:
    c = make_coordinator(store)
    fund(c)
    w = mw.make_world(accounts=0)
    orders = [mw.order(w, A, Side.BUY, mw.px(50 + i), 100) for i in range(40)]
    executor = GroupExecutor(c)
    gate = threading.Event()
    try:
        executor.submit(gate.wait)  # hold the worker so the actions queue up behind it
        futures = [executor.submit_action(c.on_order, o, mw.signed(o, A), now=mw.NOW) for o in orders]
        read = executor.submit(lambda: (c.last_seq, store.get_last_action_seq()))
        gate.set()
        acks = [f.result(timeout=30) for f in futures]
        assert [a.seq for a in acks] == list(range(acks[0].seq, acks[0].seq + 40))
        assert read.result(timeout=30) == (acks[-1].seq, acks[-1].seq)  # a read sees committed state
        assert len(store.iter_events("book:0x" + mw.build_listings()[1][0].hex())) == 1  # one group
    finally:
        executor.shutdown()
    with pytest.raises(RuntimeError):
        executor.submit(lambda: None)


def run_on_fresh_loop(main: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """``asyncio.run(main())`` on a thread of its own (an earlier test in the session may have
    left an event loop running on this one, e.g. Playwright's sync API)."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(lambda: asyncio.run(main())).result(timeout=60)


def test_an_event_loops_actions_are_answered_in_one_hand_over_per_group(store: Store) -> None:
    """``start_action`` futures resolve on their loop, the group's together: one
    ``call_soon_threadsafe`` for the group, a refusal as its own exception, and a waiter
    cancelled before its group runs is not run at all."""
    c = make_coordinator(store)
    fund(c)
    w = mw.make_world(accounts=0)
    orders = [mw.order(w, A, Side.BUY, mw.px(50 + i), 100) for i in range(20)]
    forged = mw.order(w, A, Side.BUY, mw.px(49), 100)
    dropped = mw.order(w, A, Side.BUY, mw.px(48), 100)
    executor = GroupExecutor(c)
    gate = threading.Event()

    async def drive() -> tuple[list[Any], int]:
        loop = asyncio.get_running_loop()
        hand_overs = 0
        plain = loop.call_soon_threadsafe

        def counting(*args: Any, **kwargs: Any) -> Any:
            nonlocal hand_overs
            hand_overs += 1
            return plain(*args, **kwargs)
        loop.call_soon_threadsafe = counting  # type: ignore[method-assign]
        executor.submit(gate.wait)
        waiters = [executor.start_action(c.on_order, o, mw.signed(o, A), now=mw.NOW) for o in orders]
        refused = executor.start_action(c.on_order, forged, mw.signed(forged, B), now=mw.NOW)
        cancelled = executor.start_action(c.on_order, dropped, mw.signed(dropped, A), now=mw.NOW)
        cancelled.cancel()
        gate.set()
        results = await asyncio.gather(*waiters, refused, return_exceptions=True)
        assert cancelled.cancelled()
        return results, hand_overs
    try:
        results, hand_overs = run_on_fresh_loop(drive)
    finally:
        executor.shutdown()
    acks, refusal = results[:-1], results[-1]
    assert [a.seq for a in acks] == list(range(acks[0].seq, acks[0].seq + 20))
    assert isinstance(refusal, WrongSigner)
    assert hand_overs == 1
    assert c.last_seq == acks[-1].seq  # the cancelled one was never logged



def test_shutdown_cancels_an_event_loops_queued_actions(store: Store) -> None:
    """``shutdown(cancel_futures=True)`` drops queued actions: their asyncio waiters are
    cancelled on their loop and the actions never run."""
    c = make_coordinator(store)
    fund(c)
    w = mw.make_world(accounts=0)
    o = mw.order(w, A, Side.BUY, mw.px(50), 100)
    executor = GroupExecutor(c)
    gate = threading.Event()
    last = store.get_last_action_seq()

    async def drive() -> bool:
        executor.submit(gate.wait)
        waiter = executor.start_action(c.on_order, o, mw.signed(o, A), now=mw.NOW)
        executor.shutdown(wait=False, cancel_futures=True)
        gate.set()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(waiter, 10)
        return waiter.cancelled()
    assert run_on_fresh_loop(drive)
    executor.shutdown()
    assert store.get_last_action_seq() == last
