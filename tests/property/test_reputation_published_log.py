"""Reputation recomputed from the node's published log equals the node's, on random market logs.

A real coordinator over a real SQLite store runs random RFQ rounds: makers that quote or ignore,
quotes accepted and filled, or withdrawn first so the accept fades, days passing between rounds.
Whoever reads ``GET /v1/events`` (page by page, as JSON) rebuilds exactly the node's scores and
routing at any time; a coordinator restarted from the store rebuilds exactly the same log; and
every RFQ went only to makers that the scores computed from the log before it would route.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clearhouse.errors import InsufficientCollateral
from clearhouse.incentives.reputation import (
    Event,
    Routed,
    compute_reputation,
    compute_reputation_json,
    compute_routing_share,
    decode_event,
    is_routed,
)
from clearhouse.node.coordinator import Coordinator
from clearhouse.sim import market_world as mw
from clearhouse.store import open_store
from clearhouse.types import Address, Amount, Digest, Timestamp

TAKERS = mw.ADDRESSES[:2]
MAKERS = mw.ADDRESSES[2:5]
DAY = 86_400


@dataclass(frozen=True)
class Round:
    taker: int
    acts: tuple[str, ...]
    """Per maker: ``ignore``, ``quote`` (quote only), ``fill`` or ``fade`` (if its quote is taken)."""
    taken: int
    """Which quoting maker's quote the taker accepts (modulo the number of quotes)."""
    wait: int
    """Seconds before this round."""


rounds = st.lists(st.builds(
    Round, st.integers(0, 1), st.tuples(*[st.sampled_from(["ignore", "quote", "fill", "fade", "fade"])] * 3),
    st.integers(0, 2), st.sampled_from([5, 600, DAY, 2 * DAY + 7])), min_size=1, max_size=25)


def _digest(hex_: str) -> Digest:
    return Digest(bytes.fromhex(hex_[2:]))


def _play(c: Coordinator, w: mw.World, plan: list[Round]) -> int:
    """Run ``plan``; returns the time after the last round."""
    now: int = mw.NOW
    for r in plan:
        now += r.wait
        taker = TAKERS[r.taker]
        request = mw.rfq(w, taker, [(3, 1, True)], 1, expiry=now + 60)  # the LATER series: 50 days of rounds fit
        ack = c.on_rfq(request, mw.signed(request, taker), now=now)
        rfq_id = _digest(ack.body["rfqId"])
        quotes: list[tuple[Address, Digest, str]] = []
        for maker in ack.body["makers"]:
            act = r.acts[MAKERS.index(maker)]
            if act == "ignore":
                continue
            quote = mw.quote(w, maker, request, rfq_id, [mw.px(150)], expiry=now + 30)
            try:
                qack = c.on_quote(quote, mw.signed(quote, maker), now=now + 1 + MAKERS.index(maker))
            except InsufficientCollateral:
                continue
            quotes.append((maker, _digest(qack.body["quoteId"]), act))
        if not quotes:
            continue
        maker, quote_id, act = quotes[r.taken % len(quotes)]
        if act == "fade":
            pull = mw.cancel(maker, quote_id, expiry=now + 60)
            c.on_cancel(pull, mw.signed(pull, maker), now=now + 5)
        accept = mw.accept(w, taker, quote_id, 1, expiry=now + 30)
        c.on_accept(accept, mw.signed(accept, taker), now=now + 6)
    return now + 10


def _published(c: Coordinator, page: int) -> list[Event]:
    """The log as a reader gets it: JSON pages of ``get_reputation_events_json`` (``/v1/events``)."""
    out: list[Event] = []
    while True:
        body = json.loads(json.dumps(c.get_reputation_events_json(len(out), page)))
        if not body["events"]:
            assert body["last"] == len(out)
            return out
        assert [e["seq"] for e in body["events"]] == list(range(len(out) + 1, len(out) + 1 + len(body["events"])))
        out += [decode_event({k: v for k, v in e.items() if k != "seq"}) for e in body["events"]]


def _new(db: str) -> Coordinator:
    listings, _ = mw.build_listings()
    c = Coordinator(open_store(db), mw.DOMAIN, listings, mw.UNIT)
    c.replay()
    return c


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rounds, st.integers(1, 7), st.sampled_from([0, DAY, 9 * DAY]))
def test_recomputation_equals_the_nodes(plan: list[Round], page: int, later: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        db = f"sqlite:///{Path(tmp) / 'node.db'}"
        c = _new(db)
        for account in (*TAKERS, *MAKERS):
            c.on_deposit(account, Amount(2_000 * mw.USDC))
        for maker in MAKERS:
            c.on_register_maker(maker)
        end = _play(c, mw.make_world(accounts=0), plan)
        published = _published(c, page)
        assert published == c.reputation_log
        at = Timestamp(end + later)
        node = compute_reputation_json(c.get_maker_reputation(at))
        assert compute_reputation_json(compute_reputation(published, at)) == node
        # routing: every RFQ went to exactly the makers its prior log routes (none paused)
        for i, event in enumerate(published):
            if isinstance(event, Routed) and (i == 0 or not _same_rfq(published[i - 1], event)):
                prior = compute_reputation([e for e in published[:i] if e.time <= event.time], event.time)
                for routed in (e for e in published[i:] if isinstance(e, Routed) and e.rfq_id == event.rfq_id):
                    score = prior.makers.get(routed.maker)
                    assert score is None or not score.paused
                    assert score is None or is_routed(event.rfq_id, routed.maker,
                                                      compute_routing_share(score.score_ppm))
        c.store.close()
        again = _new(db)
        assert again.reputation_log == c.reputation_log
        assert compute_reputation_json(again.get_maker_reputation(at)) == node
        again.store.close()


def _same_rfq(a: object, b: Routed) -> bool:
    return isinstance(a, Routed) and a.rfq_id == b.rfq_id


def test_a_maker_that_keeps_fading_is_paused_by_the_node(tmp_path: Path) -> None:
    c = _new(f"sqlite:///{tmp_path / 'node.db'}")
    for account in (*TAKERS, *MAKERS):
        c.on_deposit(account, Amount(2_000 * mw.USDC))
    for maker in MAKERS:
        c.on_register_maker(maker)
    fader, good = MAKERS[0], MAKERS[1]
    end = _play(c, mw.make_world(accounts=0), [Round(0, ("fade", "fill", "ignore"), 0, 60)] * 20)
    rep = c.get_maker_reputation(Timestamp(end))
    assert rep.makers[fader].paused and not rep.makers[good].paused
    assert rep.makers[fader].fades == 1  # each fade pauses the maker for a day
    routed = [e.maker for e in c.reputation_log if isinstance(e, Routed)]
    assert routed.count(fader) == 1 and routed.count(good) == 20
    # a day after its fade it is routed again
    assert c.get_maker_reputation(Timestamp(end)).makers[fader].paused
    assert not c.get_maker_reputation(Timestamp(end + DAY)).makers[fader].paused
    c.store.close()
