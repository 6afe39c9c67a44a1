"""Stored rounds, staleness, and the settlement TWAP (the spec of ``OracleHub.twap``).

Over the valid rounds stored in ``[start, end]`` (timestamps ``t_1 < … < t_k``), round ``i`` weighs
``t_{i+1} - t_i`` and the last one ``end - t_k``; the TWAP is ``floor(Σ p_i·w_i / Σ w_i)`` (the last
price if every weight is zero), clamped to ``[0, cap]``. Rounds found invalid (a proven challenge or
a decided dispute) are skipped as if never stored: the price before them holds. The TWAP is final
``dispute_window`` seconds after ``end`` (no report can add a round to the window, no round in it can
still be disputed); it refuses while a round in the window is disputed. Settlement reverts if the
feed is stale at ``end`` or no valid round lies in the window; exits never need a price.

The hub keeps only the last ``history_rounds`` rounds (a ring of slots, docs/decisions/0004): a
window whose rounds were overwritten is refused (``window overwritten``), which cannot happen
before ``start + (history_rounds - 1) * min_round_interval``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from clearhouse.errors import StaleFeed
from clearhouse.oracle.config import MAX_TWAP_ROUNDS, FeedConfig, HubParams
from clearhouse.types import Price, RoundId, Seconds, Timestamp

__all__ = [
    "StoredRound",
    "compute_twap",
    "get_fresh_price",
    "get_oldest_readable",
    "is_history_slot_blocked",
    "is_stale",
]


@dataclass(frozen=True, slots=True)
class StoredRound:
    """One round as ``OracleHub`` stores it."""

    round: RoundId
    """Round number (strictly increasing per feed)."""
    price: Price
    """The report's median price."""
    timestamp: Timestamp
    """The report's median observation time (strictly increasing per feed)."""
    optimistic: bool = False
    """Stored by ``post`` (one member's word) rather than a verified report."""
    disputed: bool = False
    """A dispute about it is open: a TWAP over a window holding it waits."""
    invalid: bool = False
    """Found wrong (proven challenge or decided dispute): the TWAP skips it."""
    poster: int = 0
    """Committee position of the member that posted an optimistic round (0 otherwise)."""

    @property
    def is_valid(self) -> bool:
        """Whether it counts for the TWAP (not found wrong)."""
        return not self.invalid


def is_stale(last: StoredRound | None, now: Timestamp, max_staleness: Seconds) -> bool:
    """Whether a feed whose last round is ``last`` is stale at ``now``."""
    return last is None or now > last.timestamp + max_staleness


def get_fresh_price(rounds: Sequence[StoredRound], now: Timestamp, max_staleness: Seconds) -> Price:
    """The last price unless the feed is stale or that round is disputed or invalid
    (``OracleHub.fresh_price``); an optimistic round still open to challenge counts."""
    last = rounds[-1] if rounds else None
    if last is None or is_stale(last, now, max_staleness):
        raise StaleFeed("oracle: stale", field="feed_id")
    if last.disputed or last.invalid:
        raise StaleFeed("oracle: last round disputed", field="feed_id", round=last.round)
    return last.price


def get_oldest_readable(count: int, hub: HubParams) -> int:
    """The index of a feed's oldest readable round when it has stored ``count``: the hub keeps the
    last ``history_rounds`` (``OracleHub.round_state`` reverts ``round overwritten`` below it)."""
    return max(0, count - hub.history_rounds)


def is_history_slot_blocked(rounds: Sequence[StoredRound], hub: HubParams) -> bool:
    """Whether the next round of a feed that stored ``rounds`` (all of them, in order) would
    overwrite a disputed round: ``OracleHub`` refuses it (``overwrites a disputed round``) until that
    dispute is resolved, so a dispute never loses its round."""
    count = len(rounds)
    return count >= hub.history_rounds and rounds[count - hub.history_rounds].disputed


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
                 now: Timestamp, feed: FeedConfig, hub: HubParams) -> Price:
    """The clamped TWAP of ``rounds`` (every round the feed ever stored, in order) over
    ``[start, end]`` at ``now``; only the last ``hub.history_rounds`` are still readable on-chain.

    Raises :class:`StaleFeed` with the contract's reason, checked in the contract's order:
    ``bad window``, ``window too long``, ``window not final`` (``now <= end + dispute_window``: a
    report landing now could still carry a round at or before ``end``, or a round in the window
    still be disputed), ``no rounds in window`` (none at or before ``end``), ``window overwritten``
    (the last round at or before ``end`` is no longer readable), ``stale`` (it is more than
    ``max_staleness`` before ``end``), ``window under dispute`` (walking back from ``end``, a round
    in the window is disputed), ``window overwritten`` (walking back reached the oldest readable
    round and the one before it, overwritten, may lie in the window), ``no rounds in window`` (no
    valid round in it).
    """
    if start > end:
        raise StaleFeed("oracle: bad window", field="start")
    if end - start > hub.max_twap_window:
        raise StaleFeed("oracle: window too long", field="start")
    if now <= end + hub.dispute_window:
        raise StaleFeed("oracle: window not final", field="end")
    oldest = get_oldest_readable(len(rounds), hub)
    hi = max(oldest, _count_at_or_before(rounds, end))
    if hi == 0:
        raise StaleFeed("oracle: no rounds in window", field="start")
    if hi == oldest:
        raise StaleFeed("oracle: window overwritten", field="start")
    if end > rounds[hi - 1].timestamp + feed.max_staleness:
        raise StaleFeed("oracle: stale", field="end")
    weighted = total = 0
    next_time: int = end
    latest: Price | None = None
    for r in reversed(rounds[max(oldest, hi - MAX_TWAP_ROUNDS):hi]):
        if r.timestamp < start:
            break
        if r.disputed:
            raise StaleFeed("oracle: window under dispute", field="start", round=r.round)
        if r.invalid:
            continue
        if latest is None:
            latest = r.price
        weight = next_time - r.timestamp
        weighted += r.price * weight
        total += weight
        next_time = r.timestamp
    else:  # no round before the window was reached: is the one before the oldest needed?
        if oldest != 0 and hi - oldest < MAX_TWAP_ROUNDS:
            raise StaleFeed("oracle: window overwritten", field="start")
    if latest is None:
        raise StaleFeed("oracle: no rounds in window", field="start")
    price = weighted // total if total else latest
    return Price(min(price, cap))
