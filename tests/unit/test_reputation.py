"""Reputation scores: the documented formulas, exact decay, order independence, and routing that
sends a fading maker fewer RFQs and pauses it past the threshold (through the real RFQ desk)."""

from __future__ import annotations

import json
import random
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from clearhouse.errors import ConfigError, InsufficientCandidates, MalformedEvent
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
    compute_committee,
    compute_decay_weight,
    compute_new_maker_score,
    compute_new_oracle_score,
    compute_reputation,
    compute_reputation_json,
    compute_router,
    compute_routing_share,
    decode_event,
    encode_event,
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


NO_COOLDOWN = ReputationParams(fade_cooldown_days=0)
"""The fade-rate rule alone (no pause for a day after each fade)."""


def test_maker_formula() -> None:
    rep = compute_reputation(_maker_log(GOOD, 30, 2, 10), T, NO_COOLDOWN)  # type: ignore[arg-type]
    s = rep.makers[GOOD]
    fade_rate = Fraction(2 + 1, 30 + 20)
    assert s.fade_rate_ppm == int(fade_rate * PPM) == 60_000
    assert s.fill_ratio_ppm == int(Fraction(10, 30) * PPM)
    assert s.response_rate_ppm == PPM and s.latency_ms == 40
    assert s.score_ppm == int((1 - fade_rate) * PPM) and not s.paused


def test_each_fade_pauses_the_maker_for_a_day() -> None:
    log = _maker_log(GOOD, 30, 1, 10)
    assert compute_reputation(log, T).makers[GOOD].paused  # type: ignore[arg-type]
    assert compute_reputation(log, Timestamp(T + DAY - 1)).makers[GOOD].paused  # type: ignore[arg-type]
    assert not compute_reputation(log, Timestamp(T + DAY)).makers[GOOD].paused  # type: ignore[arg-type]
    assert not compute_reputation(log, T, NO_COOLDOWN).makers[GOOD].paused  # type: ignore[arg-type]
    longer = ReputationParams(fade_cooldown_days=3)
    assert compute_reputation(log, Timestamp(T + 2 * DAY), longer).makers[GOOD].paused  # type: ignore[arg-type]
    # a paused maker is routed nothing, whatever its score
    world = make_world()
    process_register_maker(world.desk, GOOD)
    world.desk.router = compute_router(compute_reputation(log, T))  # type: ignore[arg-type]
    request = rfq(world, TAKER, [(0, 1, True)], 1, expiry=NOW + 60)
    assert GOOD not in process_rfq(world.desk, request, signed(request, TAKER), Timestamp(NOW))[1]
    with pytest.raises(ConfigError):
        ReputationParams(fade_cooldown_days=-1)


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
    rep = compute_reputation(log, T, NO_COOLDOWN)  # type: ignore[arg-type]
    assert rep.makers[BAD].score_ppm < rep.makers[GOOD].score_ppm and not rep.makers[BAD].paused
    world.desk.router = compute_router(rep, NO_COOLDOWN)
    counts = {GOOD: 0, BAD: 0}
    for _ in range(300):
        request = rfq(world, TAKER, [(0, 1, True)], 1, expiry=NOW + 60)
        _, makers = process_rfq(world.desk, request, signed(request, TAKER), Timestamp(NOW))
        for m in makers:
            counts[m] += 1
    assert counts[BAD] < counts[GOOD]
    paused = compute_reputation(_maker_log(BAD, 50, 20, 0), T, NO_COOLDOWN)  # type: ignore[arg-type]
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


# --- routing share, committee selection, the published JSON form ------------------------------


def test_routing_share_is_relative_to_a_new_maker() -> None:
    new = compute_new_maker_score()
    assert compute_routing_share(new) == PPM and compute_routing_share(PPM) == PPM
    assert compute_routing_share(new // 2) == PPM // 2
    assert compute_routing_share(123_456) == 129_953  # 129_953.68… rounded down
    assert compute_routing_share(0) == 0


def _oracle_rep(rounds: dict[Address, tuple[int, int]]) -> object:
    """Oracle scores from (observed rounds at 1 % off the median, missed rounds) per member."""
    log: list[object] = []
    for member, (good, missed) in rounds.items():
        log += [OracleRound(member, i, 101, 100, T) for i in range(good)]
        log += [OracleRound(member, good + i, None, 100, T) for i in range(missed)]
    return compute_reputation(log, T)  # type: ignore[arg-type]


def test_committee_by_stake_times_score() -> None:
    a, b, c, d = (Address(ADDRESSES[i]) for i in range(4))
    rep = _oracle_rep({a: (20, 0), b: (0, 20), c: (20, 0)})
    stakes = {a: 100, b: 1_000, c: 100, d: 50}
    # b has ten times the stake but a miss rate of 21/40; d has no rounds (new member score)
    scores = {m: rep.oracles[m].score_ppm for m in (a, b, c)}  # type: ignore[attr-defined]
    weight = {m: stakes[m] * scores.get(m, compute_new_oracle_score()) for m in stakes}
    expected = tuple(sorted(stakes, key=lambda m: (-weight[m], m.lower())))
    assert compute_committee(stakes, rep, 4) == expected  # type: ignore[arg-type]
    assert compute_committee(stakes, rep, 2) == expected[:2]  # type: ignore[arg-type]
    assert compute_committee(stakes, rep, 3, min_stake=100) == tuple(m for m in expected if m != d)  # type: ignore[arg-type]
    assert compute_committee(dict(reversed(stakes.items())), rep, 4) == expected  # type: ignore[arg-type]
    tie = compute_committee({c: 100, a: 100}, rep, 2)  # type: ignore[arg-type]
    assert tie == tuple(sorted((a, c), key=str.lower))


def test_committee_refuses_too_few_candidates() -> None:
    a = Address(ADDRESSES[0])
    rep = _oracle_rep({a: (0, 200)})
    with pytest.raises(InsufficientCandidates):
        compute_committee({a: 100, Address(ADDRESSES[1]): 0}, _oracle_rep({}), 2)  # type: ignore[arg-type]
    with pytest.raises(ConfigError):
        compute_committee({a: 100}, rep, 0)  # type: ignore[arg-type]


any_event = st.one_of(
    events.filter(bool).map(lambda log: log[0]),
    st.builds(Fill, st.sampled_from([GOOD, BAD]), st.just(_id(2)), st.integers(0, T)),
    st.builds(ChallengeOutcome, st.sampled_from([GOOD, BAD]), st.booleans(), st.integers(0, T)),
    st.builds(BatchOutcome, st.sampled_from([GOOD, BAD]), st.integers(1, 10**6), st.booleans(), st.integers(0, T)),
    st.builds(Heartbeat, st.sampled_from([GOOD, BAD]), st.booleans(), st.integers(0, T)),
)


@given(any_event)
def test_events_round_trip_through_json(event: object) -> None:
    body = json.loads(json.dumps(encode_event(event)))  # type: ignore[arg-type]
    assert decode_event(body) == event


@pytest.mark.parametrize("change", [
    {"type": "bribe"}, {"maker": "0x12"}, {"maker": "0x" + "zz" * 20}, {"rfq_id": "0x00"},
    {"time": -1}, {"time": "1"}, {"time": True}, {"latency_ms": 1.5}, {"extra": 1},
])
def test_malformed_events_are_refused(change: dict[str, object]) -> None:
    body = {**encode_event(QuoteGiven(GOOD, _id(1), 40, T)), **change}
    with pytest.raises(MalformedEvent):
        decode_event(body)


def test_reputation_json_is_exact() -> None:
    rep = compute_reputation(_maker_log(GOOD, 3, 1, 1, at=Timestamp(T - DAY)), T)  # type: ignore[arg-type]
    row = compute_reputation_json(rep)["makers"][GOOD]
    assert row["quotes"] == "27/10" and row["fades"] == "9/10" and row["paused"] is False
    assert row["fade_rate_ppm"] == int((Fraction(9, 10) + 1) / (Fraction(27, 10) + 20) * PPM)


maker_events = st.lists(st.one_of(
    st.builds(Routed, st.sampled_from([GOOD, BAD]), st.just(_id(1)), st.integers(T - 30 * DAY, T + DAY)),
    st.builds(QuoteGiven, st.sampled_from([GOOD, BAD]), st.just(_id(1)), st.integers(0, 5000),
              st.integers(T - 30 * DAY, T + DAY)),
    st.builds(Fill, st.sampled_from([GOOD, BAD]), st.just(_id(1)), st.integers(T - 30 * DAY, T + DAY)),
    st.builds(Fade, st.sampled_from([GOOD, BAD]), st.just(_id(1)), st.integers(T - 30 * DAY, T + DAY)),
), max_size=80)


@given(maker_events)
def test_maker_sums_equal_the_per_event_definition(log: list[object]) -> None:
    """The grouped tallies are exactly the sum over events of weight × value."""
    rep = compute_reputation(log, T)  # type: ignore[arg-type]
    p = ReputationParams()
    for maker, score in rep.makers.items():
        def total(kind: type, value: object = None, log: list[object] = log, maker: Address = maker) -> Fraction:
            return sum((compute_decay_weight(e.time, T, p) * (e.latency_ms if value else 1)  # type: ignore[attr-defined]
                        for e in log if type(e) is kind and e.maker == maker), Fraction(0))  # type: ignore[attr-defined]
        assert (score.routed, score.quotes, score.fills, score.fades) == (
            total(Routed), total(QuoteGiven), total(Fill), total(Fade))
        q = total(QuoteGiven)
        assert score.latency_ms == (int(total(QuoteGiven, True) / q) if q else 0)
