"""A stream of coordinator actions for the batcher tests: deposits, book trades, an RFQ fill, a
cancel and a withdrawal, each action the batch items it produces (signed by the market world's
keys, timed from ``NOW``). Shared by the batcher and crash-recovery tests.
"""

from __future__ import annotations

from collections.abc import Sequence

from clearhouse.market.book import process_order
from clearhouse.market.instruments import Series
from clearhouse.market.rfq import process_accept, process_quote, process_register_maker, process_rfq
from clearhouse.market.trades import Signed
from clearhouse.messages import Cancel, Side, TimeInForce, Withdrawal, compute_cancel_digest, sign
from clearhouse.settlement import CancelRequest, QueuedDeposit, WithdrawalRequest
from clearhouse.settlement.batch import BatchItem
from clearhouse.sim.market_world import (
    ADDRESSES,
    DOMAIN,
    KEYS,
    NOW,
    USDC,
    accept,
    make_world,
    order,
    px,
    quote,
    rfq,
    signed,
)
from clearhouse.types import AccountId, Address, Amount, Digest, Nonce, SeriesId, Timestamp

__all__ = ["ACCOUNTS", "DEPOSIT_USDC", "make_actions", "make_series"]

ACCOUNTS = 4
"""Accounts that deposit (``ADDRESSES[:4]``, vault ids 0..3 in deposit order)."""
DEPOSIT_USDC = 50_000
"""Each account's deposit, whole USDC."""


def make_series() -> dict[SeriesId, Series]:
    """The world's series terms by id (what the batcher needs to price trades)."""
    world = make_world(deposit_usdc=DEPOSIT_USDC, accounts=ACCOUNTS)
    return {sid: listing.series for sid, listing in world.listings.items()}


def make_actions(deposits: Sequence[tuple[int, str, int]]) -> list[list[BatchItem]]:
    """The actions, in order: one per vault deposit (``(account id, owner, amount)`` in queue
    order), three book orders (two fills), an RFQ fill (both legs in one action), a cancel and a
    withdrawal. Times run from ``NOW`` to ``NOW + 7``."""
    world = make_world(deposit_usdc=DEPOSIT_USDC, accounts=ACCOUNTS)
    a = ADDRESSES[:ACCOUNTS]
    actions: list[list[BatchItem]] = [[QueuedDeposit(AccountId(i), Address(o), Amount(m))]
                                      for i, o, m in deposits]
    ask = order(world, a[1], Side.SELL, px(40), 300)
    actions.append(list(process_order(world.book, ask, signed(ask, a[1]), Timestamp(NOW)).trades))
    bid = order(world, a[2], Side.BUY, px(41), 200, TimeInForce.IOC)
    actions.append(list(process_order(world.book, bid, signed(bid, a[2]), Timestamp(NOW + 1)).trades))
    bid2 = order(world, a[3], Side.BUY, px(40), 100)
    actions.append(list(process_order(world.book, bid2, signed(bid2, a[3]), Timestamp(NOW + 2)).trades))
    for maker in a[1:3]:
        process_register_maker(world.desk, maker)
    request = rfq(world, a[3], [(0, 1, True), (2, 1, False)], 300, expiry=NOW + 60)
    rfq_id, _ = process_rfq(world.desk, request, signed(request, a[3]), Timestamp(NOW + 3))
    offer = quote(world, a[1], request, rfq_id, [px(50), px(20)], expiry=NOW + 10)
    quote_id = process_quote(world.desk, offer, signed(offer, a[1]), Timestamp(NOW + 4))
    taken = accept(world, a[3], quote_id, 300)
    actions.append(list(process_accept(world.desk, taken, signed(taken, a[3]), Timestamp(NOW + 5)).trades))
    cancel = Cancel(a[2], Digest(bytes(32)), Nonce(999), Timestamp(NOW + 100))
    actions.append([CancelRequest(Signed(cancel, signed(cancel, a[2]), compute_cancel_digest(DOMAIN, cancel)),
                                  Timestamp(NOW + 6))])
    w = Withdrawal(a[2], a[2], Amount(1000 * USDC), Nonce(998), Timestamp(NOW + 100))
    actions.append([WithdrawalRequest(w, sign(DOMAIN, w, KEYS[2]), Timestamp(NOW + 7))])
    return actions
