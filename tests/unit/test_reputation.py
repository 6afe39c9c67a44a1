"""Reputation scores: the documented formulas, exact decay, order independence, and routing that
sends a fading maker fewer RFQs and pauses it past the threshold (through the real RFQ desk)."""

from __future__ import annotations

import random
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from clearhouse.errors import ConfigError
from clearhouse.incentives.reputation import (
    PPM,
    BatchOutcome,
    ChallengeOutcome,
    Fade,
    Fill,
    Heartbeat,
    OracleRound,
    QuoteGiven,
    ReputationParams,
    Routed,
    compute_decay_weight,
    compute_new_maker_score,
    compute_reputation,
    compute_router,
    is_routed,
)
from clearhouse.market.rfq import process_register_maker, process_rfq
from clearhouse.messages.keccak import keccak256
from clearhouse.sim.market_world import ADDRESSES, NOW, make_world, rfq, signed
from clearhouse.types import Address, Digest, Timestamp

DAY = 86_400
T = Timestamp(1_800_000_000)
GOOD, BAD, TAKER = Address(ADDRESSES[1]), Address(ADDRESSES[2]), Address(ADDRESSES[0])


def _id(i: int) -> Digest:
    return Digest(keccak256(i.to_bytes(8, "big")))


def _maker_log(maker: Address, quotes: int, fades: int, fills: int, *, at: Timestamp = T) -> list[object]:
    log: list[object] = []
    for i in range(quotes):
        log += [Routed(maker, _id(i), at), QuoteGiven(maker, _id(i), 40, at)]
    log += [Fade(maker, _id(i), at) for i in range(fades)]
    log += [Fill(maker, _id(i), at) for i in range(fills)]
    return log


def test_maker_formula() -> None:
    rep = compute_reputation(_maker_log(GOOD, 30, 2, 10), T)  # type: ignore[arg-type]
    s = rep.makers[GOOD]
    fade_rate = Fraction(2 + 1, 30 + 20)
    assert s.fade_rate_ppm == int(fade_rate * PPM) == 60_000
    assert s.fill_ratio_ppm == int(Fraction(10, 30) * PPM)
    assert s.response_rate_ppm == PPM and s.latency_ms == 40
    assert s.score_ppm == int((1 - fade_rate) * PPM) and not s.paused


def test_decay_is_exact_per_whole_day() -> None:
    p = ReputationParams()
    assert compute_decay_weight(T, T, p) == 1
    assert compute_decay_weight(T, Timestamp(T + DAY - 1), p) == 1
    assert compute_decay_weight(T, Timestamp(T + 3 * DAY), p) == Fraction(729, 1000)
    assert compute_decay_weight(Timestamp(T + 1), T, p) == 0
    old = compute_reputation(_maker_log(BAD, 10, 10, 0, at=Timestamp(T - 60 * DAY)), T)  # type: ignore[arg-type]
    fresh = compute_reputation(_maker_log(BAD, 10, 10, 0), T)  # type: ignore[arg-type]
    assert fresh.makers[BAD].paused and not old.makers[BAD].paused  # old fades have faded


def test_other_roles() -> None:
    w, c, o = Address("0x" + "11" * 20), Address("0x" + "22" * 20), Address("0x" + "33" * 20)
    log = [ChallengeOutcome(w, True, T), ChallengeOutcome(w, True, T), ChallengeOutcome(w, False, T),
           BatchOutcome(c, 1, True, T), BatchOutcome(c, 2, False, T), Heartbeat(c, True, T), Heartbeat(c, False, T),
           OracleRound(o, 1, 101, 100, T), OracleRound(o, 2, None, 100, T), OracleRound(o, 3, 100, 100, T)]
    rep = compute_reputation(log, T)  # type: ignore[arg-type]
    assert rep.watchers[w].score_ppm == int(Fraction(3, 5) * PPM)
    uptime = Fraction(2, 3)
    assert rep.coordinators[c].uptime_ppm == int(uptime * PPM)
    assert rep.coordinators[c].score_ppm == int(Fraction(2, 4) * uptime * PPM)
    miss = Fraction(1 + 1, 3 + 20)
    dev = Fraction(1, 100) / 2  # mean over the two observed rounds
    assert rep.oracles[o].deviation_ppm == int(dev * PPM)
    assert rep.oracles[o].score_ppm == int((1 - miss) * (1 - dev * PPM / 20_000) * PPM)


events = st.lists(st.one_of(
    st.builds(Routed, st.sampled_from([GOOD, BAD]), st.just(_id(1)), st.integers(T - 30 * DAY, T)),
    st.builds(QuoteGiven, st.sampled_from([GOOD, BAD]), st.just(_id(1)), st.integers(0, 5000),
              st.integers(T - 30 * DAY, T)),
    st.builds(Fade, st.sampled_from([GOOD, BAD]), st.just(_id(1)), st.integers(T - 30 * DAY, T)),
    st.builds(OracleRound, st.sampled_from([GOOD, BAD]), st.integers(1, 9),
              st.one_of(st.none(), st.integers(1, 10**12)), st.integers(1, 10**12), st.integers(T - 30 * DAY, T)),
), max_size=60)


@given(events, st.randoms())
def test_scores_do_not_depend_on_log_order(log: list[object], rnd: random.Random) -> None:
    shuffled = list(log)
    rnd.shuffle(shuffled)
    assert compute_reputation(log, T) == compute_reputation(shuffled, T)  # type: ignore[arg-type]


def test_routing_is_deterministic_and_proportional() -> None:
    ids = [_id(i) for i in range(4000)]
    share = sum(is_routed(r, GOOD, 250_000) for r in ids) / len(ids)
    assert 0.22 < share < 0.28
    assert [is_routed(r, GOOD, 250_000) for r in ids] == [is_routed(r, GOOD, 250_000) for r in ids]
    assert not any(is_routed(r, GOOD, 0) for r in ids) and all(is_routed(r, GOOD, PPM) for r in ids)


def test_a_fading_maker_is_routed_fewer_rfqs_then_paused() -> None:
    world = make_world()
    for maker in (GOOD, BAD):
        process_register_maker(world.desk, maker)
    log = _maker_log(GOOD, 50, 0, 40) + _maker_log(BAD, 50, 8, 30)
    rep = compute_reputation(log, T)  # type: ignore[arg-type]
    assert rep.makers[BAD].score_ppm < rep.makers[GOOD].score_ppm and not rep.makers[BAD].paused
    world.desk.router = compute_router(rep)
    counts = {GOOD: 0, BAD: 0}
    for _ in range(300):
        request = rfq(world, TAKER, [(0, 1, True)], 1, expiry=NOW + 60)
        _, makers = process_rfq(world.desk, request, signed(request, TAKER), Timestamp(NOW))
        for m in makers:
            counts[m] += 1
    assert counts[BAD] < counts[GOOD]
    paused = compute_reputation(_maker_log(BAD, 50, 20, 0), T)  # type: ignore[arg-type]
    assert paused.makers[BAD].paused
    world.desk.router = compute_router(paused)
    request = rfq(world, TAKER, [(0, 1, True)], 1, expiry=NOW + 60)
    _, makers = process_rfq(world.desk, request, signed(request, TAKER), Timestamp(NOW))
    assert BAD not in makers


def test_new_maker_and_bad_parameters() -> None:
    assert compute_new_maker_score() == 950_000
    with pytest.raises(ConfigError):
        ReputationParams(decay_num=11)
    with pytest.raises(ConfigError):
        ReputationParams(pause_fade_rate_ppm=0)
