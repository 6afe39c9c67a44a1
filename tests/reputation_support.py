"""A small RFQ market for reputation tests: one maker fills, one fades every quote it gives."""

from __future__ import annotations

from clearhouse.node.coordinator import Coordinator
from clearhouse.sim import market_world as mw
from clearhouse.types import Amount, Digest

TAKER, GOOD, FADER = mw.ADDRESSES[0], mw.ADDRESSES[2], mw.ADDRESSES[3]


def play_maker_market(c: Coordinator, now: int, rounds: int = 4) -> None:
    """``rounds`` RFQs a minute apart from ``now``: every routed maker quotes one unit; ``GOOD``'s
    quote is accepted and fills, ``FADER`` withdraws its quote first so the accept fades."""
    w = mw.make_world(accounts=0)
    for account in (TAKER, GOOD, FADER):
        c.on_deposit(account, Amount(5_000 * mw.USDC))
    for maker in (GOOD, FADER):
        c.on_register_maker(maker)
    for i in range(rounds):
        t = now + 60 * i
        request = mw.rfq(w, TAKER, [(0, 1, True)], 2, expiry=t + 60)  # one unit for each maker
        ack = c.on_rfq(request, mw.signed(request, TAKER), now=t)
        rfq_id = Digest(bytes.fromhex(ack.body["rfqId"][2:]))
        for maker in ack.body["makers"]:
            quote = mw.quote(w, maker, request, rfq_id, [mw.px(150)], expiry=t + 30)
            quote_id = Digest(bytes.fromhex(c.on_quote(quote, mw.signed(quote, maker), now=t + 2)
                                            .body["quoteId"][2:]))
            if maker == FADER:
                pull = mw.cancel(maker, quote_id, expiry=t + 60)
                c.on_cancel(pull, mw.signed(pull, maker), now=t + 3)
            accept = mw.accept(w, TAKER, quote_id, 1, expiry=t + 30)
            c.on_accept(accept, mw.signed(accept, TAKER), now=t + 4)
