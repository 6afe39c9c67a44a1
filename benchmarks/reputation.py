"""Reputation cost per RFQ routing decision: the full recompute against the incremental tallies.

A log of maker events (10 makers, spread over 14 days: routed, quoted, filled, a few fades) of 1k
and 14k events; then 300 routing decisions a few seconds apart, each appending the RFQ's
``Routed`` events as the coordinator does. *before*: ``compute_reputation`` over the whole log
per decision (the node until issue 7); *after*: ``get_maker_scores`` over a :class:`MakerTally`
kept current as events are appended. Both route with ``compute_router``; the routes are checked
to be identical. Writes ``out/bench/reputation.json``.
"""

from __future__ import annotations

import random
import statistics
import time
from types import SimpleNamespace
from typing import Any

from benchmarks._common import write_result
from clearhouse.incentives.reputation import (
    Event,
    Fade,
    Fill,
    MakerTally,
    QuoteGiven,
    Reputation,
    Routed,
    compute_reputation,
    compute_router,
    get_maker_scores,
    process_maker_event,
)
from clearhouse.messages.keccak import keccak256
from clearhouse.types import Address, Digest, Timestamp

DAY = 86_400
T0 = 1_800_000_000
MAKERS = [Address("0x" + keccak256(i.to_bytes(4, "big"))[:20].hex()) for i in range(10)]
DECISIONS = 300


def _log(size: int, rnd: random.Random) -> list[Event]:
    """``size`` maker events over 14 days, in time order."""
    out: list[Event] = []
    span = 14 * DAY
    while len(out) < size:
        t = Timestamp(T0 + span * len(out) // size)
        rfq = Digest(keccak256(len(out).to_bytes(8, "big")))
        maker = rnd.choice(MAKERS)
        out += [Routed(maker, rfq, t), QuoteGiven(maker, rfq, rnd.randrange(5_000), t)]
        out.append(Fade(maker, rfq, t) if rnd.random() < 0.01 else Fill(maker, rfq, t))
    return out[:size]


def _route(router: Any, rfq: Digest) -> tuple[Address, ...]:
    # the router reads only the RFQ's digest and its taker
    signed = SimpleNamespace(digest=rfq, message=SimpleNamespace(taker=Address("0x" + "00" * 20)))
    return tuple(router(signed, MAKERS))


def _measure(size: int) -> dict[str, float]:
    rnd = random.Random(size)
    log = _log(size, rnd)
    tally = MakerTally()
    for e in log:
        process_maker_event(tally, e)
    now = log[-1].time
    get_maker_scores(tally, now)  # the first read ages the whole log once (a node does it at its first RFQ)
    full_ms, incr_ms = [], []
    for i in range(DECISIONS):
        now = Timestamp(now + rnd.randrange(1, 30))
        rfq = Digest(keccak256(b"bench" + i.to_bytes(8, "big")))
        start = time.perf_counter()
        before = _route(compute_router(compute_reputation(log, now)), rfq)
        full_ms.append(1000 * (time.perf_counter() - start))
        start = time.perf_counter()
        scores = Reputation(get_maker_scores(tally, now), {}, {}, {})
        after = _route(compute_router(scores), rfq)
        incr_ms.append(1000 * (time.perf_counter() - start))
        if before != after:
            raise RuntimeError(f"routes differ at decision {i}: {before} vs {after}")
        for maker in after:  # what the coordinator appends after routing
            event = Routed(maker, rfq, now)
            log.append(event)
            process_maker_event(tally, event)
    def p(values: list[float], q: float) -> float:
        return sorted(values)[min(len(values) - 1, int(q * len(values)))]
    return {f"full_recompute_ms_median_{size}": statistics.median(full_ms),
            f"full_recompute_ms_p99_{size}": p(full_ms, 0.99),
            f"incremental_ms_median_{size}": statistics.median(incr_ms),
            f"incremental_ms_p99_{size}": p(incr_ms, 0.99)}


def main() -> None:
    metrics: dict[str, Any] = {}
    for size in (1_000, 14_000):
        metrics.update(_measure(size))
    write_result("reputation", metrics, notes=f"{DECISIONS} routing decisions over {len(MAKERS)} makers; "
                 "each appends its Routed events; routes checked identical")


if __name__ == "__main__":
    main()
