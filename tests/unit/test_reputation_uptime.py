"""Coordinator uptime slots (``compute_uptime_slots``): down exactly while queued work waits past
the deadline without a batch, never for a quiet period, not scored while posting is closed."""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction

import pytest

from clearhouse.errors import ConfigError
from clearhouse.incentives.reputation import (
    PPM,
    BatchOutcome,
    Heartbeat,
    ReputationParams,
    SettlementActivity,
    compute_reputation,
    compute_uptime_slots,
)
from clearhouse.sim.market_world import ADDRESSES
from clearhouse.types import Address, Timestamp

S = 3_600
T0 = Timestamp(1_800_000_000 // S * S)
C, D = Address(ADDRESSES[1]), Address(ADDRESSES[2])
WAIT = 1_800  # the settlement's max_post_delay in these tests (below the 1 h default cap)


def _at(slot: int, offset: int = 0) -> Timestamp:
    return Timestamp(T0 + slot * S + offset)


def _activity(posts: list[tuple[int, int, int]], deposits: list[int], forced: list[int] = [],  # noqa: B006
              holders: list[tuple[int, Address | None]] | None = None,
              pauses: list[tuple[int, int]] = []) -> SettlementActivity:  # noqa: B006
    """Posts ``(time, deposits consumed, forced consumed)`` by ``C``; holders default to ``C`` from
    its first post."""
    return SettlementActivity(
        holders=[(Timestamp(t), w) for t, w in holders] if holders is not None else [(Timestamp(posts[0][0]), C)],
        posts=[(Timestamp(t), C, d, f) for t, d, f in posts], deposits=[Timestamp(t) for t in deposits],
        forced=[Timestamp(t) for t in forced], pauses=[(Timestamp(a), Timestamp(b)) for a, b in pauses],
        max_post_delay=WAIT)


def _tally(slots: Sequence[Heartbeat]) -> tuple[int, int]:
    up = sum(1 for s in slots if s.up)
    return up, len(slots) - up


@pytest.mark.parametrize("n", [1, 3, 7])
def test_a_coordinator_that_stops_posting_while_work_waits_loses_exactly_those_slots(n: int) -> None:
    # batch at slot 0; a deposit at the start of slot 1; no batch until slot 1 + n; 4 quiet slots after
    activity = _activity([(_at(0, 10), 0, 0), (_at(1 + n, 5), 1, 0)], [_at(1)])
    slots = compute_uptime_slots(activity, _at(1 + n + 5))
    assert [s.time for s in slots] == [_at(k) for k in range(1 + n + 5)]
    assert [s.up for s in slots] == [True] + [False] * n + [True] * 5
    score = compute_reputation([*slots, BatchOutcome(C, 1, True, _at(0))], _at(1 + n + 5)).coordinators[C]
    assert (score.up, score.down) == (Fraction(6), Fraction(n))  # all within a day: weight 1 each
    assert score.uptime_ppm == 7 * PPM // (6 + n + 1)


def test_a_quiet_period_with_nothing_pending_costs_nothing() -> None:
    activity = _activity([(_at(0, 10), 1, 0)], [_at(0, 1)])  # the only deposit served at once
    slots = compute_uptime_slots(activity, _at(48))
    assert len(slots) == 48 and all(s.up for s in slots)
    assert compute_reputation(slots, _at(48)).coordinators[C].uptime_ppm == PPM


def test_work_within_the_deadline_is_not_down_and_the_deadline_is_the_shorter_one() -> None:
    # deposit late in slot 1: its deadline falls in slot 2, served in slot 3 → only slot 2 down
    activity = _activity([(_at(0), 0, 0), (_at(3, 60), 1, 0)], [_at(1, S - WAIT + 100)])
    assert [s.up for s in compute_uptime_slots(activity, _at(4))] == [True, True, False, True]
    # a 30-day max_post_delay is capped by uptime_max_wait_seconds (1 h): a deposit at slot 1's start
    # unserved by slot 3 makes slot 2 down; without the cap nothing would be
    lax = SettlementActivity(activity.holders, activity.posts, [_at(1)], [], (), 30 * 86_400)
    assert [s.up for s in compute_uptime_slots(lax, _at(4))] == [True, True, False, True]
    assert all(s.up for s in compute_uptime_slots(lax, _at(4), ReputationParams(uptime_max_wait_seconds=40 * 86_400)))


def test_forced_withdrawals_count_as_work() -> None:
    activity = _activity([(_at(0), 0, 0), (_at(4), 0, 1)], [], forced=[_at(1)])
    assert _tally(compute_uptime_slots(activity, _at(5))) == (2, 3)


def test_no_slot_is_scored_while_posting_is_closed() -> None:
    # fraud at slot 2 (nobody holds the post) until D is admitted at slot 5; a pause over slot 7
    holders: list[tuple[int, Address | None]] = [(_at(0), C), (_at(2, 10), None), (_at(5, 10), D)]
    activity = _activity([(_at(0), 0, 0)], [_at(1)], holders=holders, pauses=[(_at(7, 100), _at(7, 200))])
    slots = compute_uptime_slots(activity, _at(9))
    # slot 0 up (posted), 1 down (C), 2-4 nobody, 5-6 and 8 down (D inherits the waiting deposit), 7 paused
    assert [(s.time, s.coordinator, s.up) for s in slots] == [
        (_at(0), C, True), (_at(1), C, False), (_at(5), D, False), (_at(6), D, False), (_at(8), D, False)]


def test_only_ended_slots_and_bad_parameters() -> None:
    activity = _activity([(_at(0), 0, 0)], [])
    assert len(compute_uptime_slots(activity, _at(3, S - 1))) == 3  # slot 3 has not ended
    assert compute_uptime_slots(SettlementActivity([], [], [], []), _at(3)) == []
    with pytest.raises(ConfigError):
        ReputationParams(uptime_slot_seconds=0)
    with pytest.raises(ConfigError):
        ReputationParams(uptime_max_wait_seconds=-1)
    assert compute_reputation(compute_uptime_slots(activity, _at(2)), _at(2)).coordinators[C].up == Fraction(2)
