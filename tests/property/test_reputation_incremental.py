"""The incremental maker tallies (what routes RFQs) equal a full recompute, bit for bit.

Random streams of maker events (any order of times, some in the future, latencies, fades inside
and outside the cool-down) interleaved with reads at random times — mostly forward, by seconds or
days, sometimes backwards — and at every read :func:`get_maker_scores` must equal
``compute_reputation(events so far, now).makers`` field for field (exact fractions), under the
default parameters and under others (faster decay, a longer cool-down).
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from clearhouse.incentives.reputation import (
    Event,
    Fade,
    Fill,
    MakerTally,
    QuoteGiven,
    ReputationParams,
    Routed,
    compute_reputation,
    compute_reputation_json,
    get_maker_scores,
    process_maker_event,
)
from clearhouse.messages.keccak import keccak256
from clearhouse.sim.market_world import ADDRESSES
from clearhouse.types import Address, Digest, Timestamp

DAY = 86_400
T = 1_800_000_000
MAKERS = [Address(a) for a in ADDRESSES[1:4]]
ID = Digest(keccak256(b"rfq"))

offsets = st.one_of(st.integers(-3 * DAY, 3 * DAY), st.integers(-30 * DAY, DAY),
                    st.sampled_from([0, -DAY, -DAY + 1, -DAY - 1, DAY, 2 * DAY]))
events = st.one_of(
    st.builds(lambda m, t: Routed(m, ID, Timestamp(T + t)), st.sampled_from(MAKERS), offsets),
    st.builds(lambda m, t, ms: QuoteGiven(m, ID, ms, Timestamp(T + t)), st.sampled_from(MAKERS), offsets,
              st.integers(0, 5_000)),
    st.builds(lambda m, t: Fill(m, ID, Timestamp(T + t)), st.sampled_from(MAKERS), offsets),
    st.builds(lambda m, t: Fade(m, ID, Timestamp(T + t)), st.sampled_from(MAKERS), offsets),
)
reads = st.one_of(st.integers(0, 600), st.integers(0, 3 * DAY), st.sampled_from([DAY, 1, -1, -DAY, -5 * DAY]))
aligned = st.tuples(st.integers(0, 200), st.integers(0, 3), st.sampled_from([-1, 0, 1]))
"""A read exactly at (or a second off) an event's time plus whole days: where ages change."""
steps = st.lists(st.one_of(st.tuples(st.just("event"), events), st.tuples(st.just("read"), reads),
                           st.tuples(st.just("align"), aligned)), min_size=1, max_size=120)
params = st.sampled_from([ReputationParams(), ReputationParams(decay_num=1, decay_den=2, fade_cooldown_days=3),
                          ReputationParams(fade_cooldown_days=0, decay_num=1, decay_den=1)])


@settings(max_examples=150, deadline=None)
@given(steps, params)
def test_incremental_scores_equal_the_full_recompute(plan: list[tuple[str, object]], p: ReputationParams) -> None:
    tally = MakerTally(p)
    log: list[Event] = []
    now = T
    for kind, value in plan:
        if kind == "event":
            assert not isinstance(value, int)
            process_maker_event(tally, value)  # type: ignore[arg-type]
            log.append(value)  # type: ignore[arg-type]
            continue
        if kind == "align":
            assert isinstance(value, tuple)
            i, days, d = value
            now = log[i % len(log)].time + days * DAY + d if log else now
        else:
            assert isinstance(value, int)
            now += value
        full = compute_reputation(log, Timestamp(now), p)
        incremental = get_maker_scores(tally, Timestamp(now))
        assert incremental == full.makers
        assert list(incremental) == list(full.makers)  # same order: JSON identical too
        assert compute_reputation_json(full)["makers"] == {
            m: compute_reputation_json(full)["makers"][m] for m in incremental}
    final = compute_reputation(log, Timestamp(now + 1), p)
    assert get_maker_scores(tally, Timestamp(now + 1)) == final.makers


def test_reads_before_and_after_every_day_boundary_are_exact() -> None:
    """Events at every phase of the day, read each second around the boundaries they cross."""
    p = ReputationParams()
    tally = MakerTally(p)
    log: list[Event] = []
    for i in range(40):
        maker, at = MAKERS[i % 3], Timestamp(T + 1_000 * i)
        e: Event = (Fade(maker, ID, at) if i % 7 == 0 else QuoteGiven(maker, ID, 10 * i, at) if i % 2
                    else Routed(maker, ID, at))
        process_maker_event(tally, e)
        log.append(e)
    for now in [T + 1_000 * i + DAY + d for i in range(0, 40, 5) for d in (-1, 0, 1)] + [T + 3 * DAY]:
        assert get_maker_scores(tally, Timestamp(now)) == compute_reputation(log, Timestamp(now), p).makers
