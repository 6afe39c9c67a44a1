"""Stored rounds, staleness, and the settlement TWAP (the spec of ``OracleHub.twap``).

Over the rounds stored in ``[start, end]`` (timestamps ``t_1 < … < t_k``), round ``i`` weighs
``t_{i+1} - t_i`` and the last one ``end - t_k``; the TWAP is ``floor(Σ p_i·w_i / Σ w_i)`` (the last
price if every weight is zero), clamped to ``[0, cap]``. It is final ``max_age`` seconds after ``end``
(no later report can add a round to the window). Settlement reverts if the feed is stale at ``end``
or no round lies in the window; exits never need a price.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from clearhouse.errors import StaleFeed
from clearhouse.oracle.config import MAX_TWAP_ROUNDS, FeedConfig
from clearhouse.types import Price, RoundId, Seconds, Timestamp

__all__ = ["StoredRound", "compute_twap", "get_fresh_price", "is_stale"]


@dataclass(frozen=True, slots=True)
class StoredRound:
    """One round as ``OracleHub`` stores it."""

    round: RoundId
    """Round number (strictly increasing per feed)."""
    price: Price
    """The report's median price."""
    timestamp: Timestamp
    """The report's median observation time (strictly increasing per feed)."""


def is_stale(last: StoredRound | None, now: Timestamp, max_staleness: Seconds) -> bool:
    """Whether a feed whose last round is ``last`` is stale at ``now``."""
    return last is None or now > last.timestamp + max_staleness


def get_fresh_price(rounds: Sequence[StoredRound], now: Timestamp, max_staleness: Seconds) -> Price:
    """The last price unless the feed is stale (``OracleHub.fresh_price``)."""
    last = rounds[-1] if rounds else None
    if last is None or is_stale(last, now, max_staleness):
        raise StaleFeed("oracle: stale", field="feed_id")
    return last.price


def _count_at_or_before(rounds: Sequence[StoredRound], time: int) -> int:
    lo, hi = 0, len(rounds)
    while lo < hi:
        mid = (lo + hi) // 2
        if rounds[mid].timestamp > time:
            hi = mid
        else:
            lo = mid + 1
    return lo


def compute_twap(rounds: Sequence[StoredRound], start: Timestamp, end: Timestamp, cap: Price,
                 now: Timestamp, feed: FeedConfig, max_window: Seconds) -> Price:
    """The clamped TWAP of ``rounds`` (a feed's stored rounds, in order) over ``[start, end]`` at ``now``.

    Raises :class:`StaleFeed` with the contract's reason, checked in the contract's order:
    ``bad window``, ``window too long``, ``window not final`` (``now <= end + max_age``: a report
    landing now could still carry a round at or before ``end``), ``no rounds in window`` (none at
    or before ``end``), ``stale`` (the last one is more than ``max_staleness`` before ``end``),
    ``no rounds in window`` (the last one is before ``start``).
    """
    if start > end:
        raise StaleFeed("oracle: bad window", field="start")
    if end - start > max_window:
        raise StaleFeed("oracle: window too long", field="start")
    if now <= end + feed.max_age:
        raise StaleFeed("oracle: window not final", field="end")
    hi = _count_at_or_before(rounds, end)
    if hi == 0:
        raise StaleFeed("oracle: no rounds in window", field="start")
    last = rounds[hi - 1]
    if end > last.timestamp + feed.max_staleness:
        raise StaleFeed("oracle: stale", field="end")
    if last.timestamp < start:
        raise StaleFeed("oracle: no rounds in window", field="start")
    weighted = total = 0
    next_time: int = end
    for r in reversed(rounds[max(0, hi - MAX_TWAP_ROUNDS):hi]):
        if r.timestamp < start:
            break
        weight = next_time - r.timestamp
        weighted += r.price * weight
        total += weight
        next_time = r.timestamp
    price = weighted // total if total else last.price
    return Price(min(price, cap))
