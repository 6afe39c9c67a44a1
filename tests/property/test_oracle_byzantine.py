"""Guarantee 5 (DESIGN §2): with ``n = 3f+1`` and at most ``f`` faulty members, every price OracleHub
accepts lies inside the honest members' range — whatever the faulty members send (arbitrary or
extreme values, equivocations, stale rounds, other feeds, future timestamps, outsiders' signatures,
entries forged in an honest member's name) and whoever leads the round. An honest member keeps one
rule when it signs a report: its own entry is its own observation (its report signature states it);
otherwise even honest keys sign anything here. Refusals carry their specific reasons; equivocation
(by observation or report signatures) is slashed once; a stale feed blocks settlement.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import pytest
from hypothesis import event, given
from hypothesis import strategies as st
from oracle_system import (
    build_report,
    chain_verdict,
    honest_report,
    observe,
    other_committee,
    python_verdict,
)

from clearhouse.chain import Chain, InProcessChain
from clearhouse.errors import ClearhouseError, ContractRevert
from clearhouse.oracle import (
    CommitteeSetup,
    FeedState,
    Member,
    NoisySource,
    SignedObservation,
    SignedReport,
    compute_equivocation_proof,
    compute_feed_id,
    compute_member_address,
    compute_report,
    compute_report_statements,
    compute_signed_report,
    compute_twap,
    process_observation,
    process_report_body,
    select_observations,
    sign_report,
)
from clearhouse.oracle.committee import apply_stored_round, process_tick
from clearhouse.oracle.report import Report
from clearhouse.oracle.sources import MarketModel, SimulatedMarket
from clearhouse.oracle.twap import StoredRound
from clearhouse.sim.oracle_hub import (
    DEFAULT_FEED,
    DEFAULT_HUB,
    USDC,
    OracleSystem,
    compute_member_keys,
    deploy_oracle_system,
)
from clearhouse.types import BasisPoints, Price, RoundId, Seconds, Timestamp

OUTSIDERS = compute_member_keys(3, b"outsider")
BEHAVIOURS = ("low", "high", "arbitrary", "equivocate", "stale round", "other feed", "future",
              "silent", "old")
LEADERS = ("arbitrary", "honest", "skew high", "skew low")
"""An honest leader, a faulty one pushing the median up or down with valid reports, or a faulty
one sending any subset of what it saw with any claimed price."""
_SYSTEMS: dict[int, OracleSystem] = {}


def _system(f: int) -> OracleSystem:
    """One in-process deployment per ``f``, shared by the examples (each runs inside a snapshot)."""
    if f not in _SYSTEMS:
        _SYSTEMS[f] = deploy_oracle_system(InProcessChain(), f)
    return _SYSTEMS[f]


@dataclass(frozen=True)
class Scenario:
    f: int
    honest_prices: list[int]
    honest_ages: list[int]
    behaviours: list[str]
    faulty_prices: list[int]
    outsiders: int
    leader: str
    picks: list[int]
    claimed_price: str
    honest_signers: int
    forge: bool


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    f = draw(st.sampled_from([1, 3]))
    n = 3 * f + 1
    base = draw(st.integers(500 * USDC, 50_000 * USDC))
    spread = draw(st.integers(0, base // 20))
    honest = draw(st.lists(st.integers(base, base + spread), min_size=n - f, max_size=n - f))
    ages = draw(st.lists(st.integers(0, 30), min_size=n - f, max_size=n - f))
    behaviours = draw(st.lists(st.sampled_from(BEHAVIOURS), min_size=f, max_size=f))
    faulty_prices = draw(st.lists(st.integers(DEFAULT_FEED.min_price, DEFAULT_FEED.max_price),
                                  min_size=f, max_size=f))
    pool = n + f + 3  # every honest and faulty observation, equivocations, outsiders
    picks = draw(st.lists(st.integers(0, pool - 1), min_size=2 * f, max_size=pool, unique=True))
    return Scenario(f, honest, ages, behaviours, faulty_prices, draw(st.integers(0, 2)),
                    draw(st.sampled_from(LEADERS)), picks,
                    draw(st.sampled_from(["median", "max", "min", "faulty"])),
                    draw(st.integers(0, f + 1)), draw(st.booleans()))


def _faulty_observations(s: OracleSystem, sc: Scenario, now: int) -> list[SignedObservation]:
    out: list[SignedObservation] = []
    for j, (behaviour, price) in enumerate(zip(sc.behaviours, sc.faulty_prices, strict=True)):
        key = s.keys[len(sc.honest_prices) + j]
        if behaviour == "low":
            out.append(observe(s, key, 1, DEFAULT_FEED.min_price))
        elif behaviour == "high":
            out.append(observe(s, key, 1, DEFAULT_FEED.max_price))
        elif behaviour == "arbitrary":
            out.append(observe(s, key, 1, price))
        elif behaviour == "equivocate":
            out += [observe(s, key, 1, DEFAULT_FEED.min_price), observe(s, key, 1, DEFAULT_FEED.max_price)]
        elif behaviour == "stale round":
            out.append(observe(s, key, 0, price))
        elif behaviour == "other feed":
            out.append(observe(s, key, 1, price, feed_id=compute_feed_id("BTC/USDC")))
        elif behaviour == "future":
            out.append(observe(s, key, 1, DEFAULT_FEED.max_price, timestamp=now + 90))
        elif behaviour == "old":
            out.append(observe(s, key, 1, DEFAULT_FEED.min_price, timestamp=now - 500,
                               expiry=now + 60))
    return out


def _honest_leader_report(s: OracleSystem, sc: Scenario, honest: list[SignedObservation],
                          faulty: list[SignedObservation], now: int) -> SignedReport:
    """What an honest leader does: keep valid observations, report the median window, get f+1 signatures."""
    valid = []
    for o in honest + faulty:
        try:
            process_observation(s.domain, s.committee, s.feed, o, RoundId(1), Timestamp(now))
        except ClearhouseError:  # the leader drops what fails its checks
            continue
        valid.append(o)
    report = compute_report(s.committee, RoundId(1), select_observations(s.committee, valid))
    process_report_body(s.domain, s.committee, s.feed, s.params, None, report, Timestamp(now))
    # f+1 honest members whose own observations it carries check it and sign (at least f+1 of
    # the 2f+1 are honest).
    entries = {o.member for o in report.observations}
    signers = [k for k in s.keys[:len(sc.honest_prices)] if compute_member_address(k) in entries]
    return _sign(s, report, signers[:s.committee.f + 1])


def _sign(s: OracleSystem, report: Report, keys: list[bytes]) -> SignedReport:
    """``report`` with the report signatures of ``keys`` that have an entry in it."""
    entries = {o.member for o in report.observations}
    return compute_signed_report(report, {compute_member_address(k): sign_report(s.domain, report, k)
                                          for k in keys if compute_member_address(k) in entries})


def _skewing_leader_report(s: OracleSystem, sc: Scenario, honest: list[SignedObservation],
                           faulty: list[SignedObservation], now: int) -> SignedReport:
    """A faulty leader that builds a valid report as skewed as it can: every faulty observation
    that passes the checks (the most extreme one per equivocating member) plus the most extreme
    honest ones, just enough for 2f+1; all faulty members and f+1 honest ones sign."""
    up = sc.leader == "skew high"
    usable: dict[str, SignedObservation] = {}
    for o in sorted(faulty, key=lambda o: o.observation.price, reverse=up):
        try:
            process_observation(s.domain, s.committee, s.feed, o, RoundId(1), Timestamp(now))
        except ClearhouseError:  # the leader drops what fails its checks
            continue
        usable.setdefault(o.signer, o)
    need = 2 * sc.f + 1 - len(usable)
    chosen = [*usable.values(), *sorted(honest, key=lambda o: o.observation.price, reverse=up)[:need]]
    faulty_keys = s.keys[len(sc.honest_prices):]
    unsigned = build_report(s, 1, chosen, [])
    return _sign(s, unsigned.report, [*faulty_keys, *s.keys[:len(sc.honest_prices)]])


def _faulty_leader_report(s: OracleSystem, sc: Scenario, honest: list[SignedObservation],
                          faulty: list[SignedObservation], now: int) -> SignedReport:
    """A faulty leader: any subset of everything it saw (outsiders' observations included), any
    claimed price; all faulty members sign, and so do up to f+1 honest ones."""
    outsiders = [observe(s, k, 1, DEFAULT_FEED.max_price) for k in OUTSIDERS[:sc.outsiders]]
    pool = honest + faulty + outsiders
    chosen = [pool[i] for i in sc.picks if i < len(pool)]
    prices = sorted(o.observation.price for o in chosen) or [DEFAULT_FEED.min_price]
    price = {"median": None, "max": prices[-1], "min": prices[0],
             "faulty": sc.faulty_prices[0]}[sc.claimed_price]
    unsigned = build_report(s, 1, chosen, [], price=price) if chosen else \
        build_report(s, 1, honest[:1], [], price=price)
    report = unsigned.report
    honest_members = {compute_member_address(k) for k in s.keys[:len(sc.honest_prices)]}
    forged = None
    if sc.forge:  # an honest member's entry given another price, still carrying its old signature
        forged = next((i for i, o in enumerate(report.observations) if o.member in honest_members), None)
        if forged is not None:
            entries = list(report.observations)
            entries[forged] = replace(entries[forged], price=Price(sc.faulty_prices[0]))
            report = replace(report, observations=tuple(entries))
    # Honest members sign a report only if their own entry is their own observation; otherwise
    # they sign anything here: safety must not rest on them refusing.
    signers = [*s.keys[len(sc.honest_prices):], *OUTSIDERS[:sc.outsiders], *s.keys[:sc.honest_signers]]
    if forged is not None:
        signers = [k for k in signers if compute_member_address(k) != report.observations[forged].member]
    return _sign(s, report, signers)


@given(sc=scenarios())
def test_every_accepted_price_lies_in_the_honest_range(sc: Scenario) -> None:
    s = _system(sc.f)
    snap = s.chain.snapshot()
    try:
        now = int(s.now())
        honest = [observe(s, s.keys[i], 1, p, timestamp=now - age)
                  for i, (p, age) in enumerate(zip(sc.honest_prices, sc.honest_ages, strict=True))]
        faulty = _faulty_observations(s, sc, now)
        if sc.leader == "honest":
            signed = _honest_leader_report(s, sc, honest, faulty, now)
        elif sc.leader == "arbitrary":
            signed = _faulty_leader_report(s, sc, honest, faulty, now)
        else:
            signed = _skewing_leader_report(s, sc, honest, faulty, now)
        expected = python_verdict(s, signed, None)
        verdict = chain_verdict(s, signed)
        event(f"f={sc.f} {sc.leader} leader: {verdict or 'accepted'}")
        assert verdict == expected
        if sc.leader != "arbitrary":
            assert verdict is None, "a valid report (2f+1 distinct fresh members, f+1 signatures) gets in"
        if verdict is None:
            stored = s.last()
            assert stored is not None
            assert min(sc.honest_prices) <= stored.price <= max(sc.honest_prices)
            assert now - max(sc.honest_ages) <= stored.timestamp <= now
    finally:
        s.chain.revert_to(snap)


# --- deterministic checks on both backends, f = 1 and f = 3 ----------------------------------


@pytest.mark.parametrize("f", [1, 3])
def test_refusals_with_their_reasons(chain: Chain, f: int) -> None:
    s = deploy_oracle_system(chain, f)
    q = 2 * f + 1
    p = 2_000 * USDC
    first = honest_report(s, 1, [p] * q)
    s.transmit(first)
    last = s.last()
    chain.time_travel(10)
    now = int(s.now())
    outsider = compute_member_keys(1, b"outsider")[0]
    obs = [observe(s, s.keys[i], 2, p) for i in range(q)]
    cases: list[tuple[str, SignedReport]] = [
        ("oracle: too few observations", build_report(s, 2, obs[:-1], s.keys[:f + 1])),
        ("oracle: too few signatures", build_report(s, 2, obs, s.keys[:f])),
        ("oracle: duplicate observation", build_report(s, 2, [*obs[:-1], obs[0]], s.keys[:f + 1])),
        ("oracle: duplicate observation",
         build_report(s, 2, [*obs[:-1], observe(s, s.keys[0], 2, p + 1)], s.keys[:f + 1])),
        ("oracle: not a member", build_report(s, 2, [*obs[:-1], observe(s, outsider, 2, p)],
                                              s.keys[:f + 1])),
        ("oracle: not a member", build_report(s, 2, [*obs[:-1], observe(s, outsider, 2, p)],
                                              [*s.keys[:f], outsider])),
        ("oracle: old round", honest_report(s, 1, [p] * q)),
        ("oracle: future timestamp",
         build_report(s, 2, [*obs[:-1], observe(s, s.keys[q - 1], 2, p, timestamp=now + 60)],
                      s.keys[:f + 1])),
        ("oracle: price out of bounds", honest_report(s, 2, [DEFAULT_FEED.max_price + 1] * q)),
        ("oracle: wrong config", build_report(s, 2, obs, s.keys[:f + 1], committee=other_committee(s))),
    ]
    for reason, signed in cases:
        assert python_verdict(s, signed, last) == reason
        assert chain_verdict(s, signed) == reason
    assert s.rounds() == [last]
    s.transmit(build_report(s, 2, obs, s.keys[:f + 1]))


def test_equivocation_slashed_exactly_once_f3(chain: Chain) -> None:
    s = deploy_oracle_system(chain, 3)
    key, member = s.keys[5], s.committee.members[5]
    proof = compute_equivocation_proof(observe(s, key, 4, 1_000 * USDC), observe(s, key, 4, 9 * USDC))
    s.prove(proof, sender=chain.accounts[2])
    with pytest.raises(ContractRevert, match="oracle: already proven"):
        s.prove(proof, sender=chain.accounts[3])
    # a report in which it states a third price is the same offence: not slashed again
    obs = [observe(s, s.keys[i], 4, 1_000 * USDC) for i in range(7) if i != 5]
    report = build_report(s, 4, [*obs, observe(s, key, 4, 5 * USDC)], []).report
    signed = compute_signed_report(report, {member: sign_report(s.domain, report, key)})
    statement = next(x for x in compute_report_statements(signed) if x.signer == member)
    with pytest.raises(ContractRevert, match="oracle: already proven"):
        s.prove(compute_equivocation_proof(proof.first, statement), sender=chain.accounts[3])
    assert s.bonds.call("stake_of", member, s.oracle_role) == s.stake - DEFAULT_HUB.slash_amount
    assert s.token.call("balanceOf", chain.accounts[3].address) == 0
    # the committee still works without it: 2f+1 of the remaining 3f
    others = [i for i in range(10) if i != 5][:7]
    obs = [observe(s, s.keys[i], 5, 1_500 * USDC) for i in others]
    s.transmit(build_report(s, 5, obs, [s.keys[i] for i in others[:4]]))


def test_committee_rounds_on_chain_then_stale_feed_blocks_settlement(chain: Chain) -> None:
    """The in-process committee (f = 3) drives a simulated market onto the chain; the settlement
    TWAP matches the Python spec; once the committee stops, settlement reverts as stale."""
    s = deploy_oracle_system(chain, 3)
    start = int(s.now())
    market = SimulatedMarket(MarketModel(initial_price=Price(3_000 * USDC), start=Timestamp(start - 10),
                                         seed=11))
    members = tuple(Member(k, NoisySource(market, i, BasisPoints(5))) for i, k in enumerate(s.keys))
    setup = CommitteeSetup(s.domain, s.committee, s.feed, s.params, members, BasisPoints(20),
                           Seconds(120))
    silent = {s.committee.members[1], s.committee.members[8]}  # two members offline: f = 3 tolerates it
    online = [m for m in s.committee.members if m not in silent]
    state = FeedState(next_round=RoundId(1))
    for _ in range(40):
        state, outcome = process_tick(setup, state, s.now(), online)
        if outcome is not None and outcome.report is not None:
            s.transmit(outcome.report)
            r = outcome.report.report
            state = apply_stored_round(state, StoredRound(r.round, r.price, r.timestamp))
        chain.time_travel(15)
    rounds = s.rounds()
    assert len(rounds) >= 5
    end = rounds[-1].timestamp + 5
    chain.time_travel(DEFAULT_HUB.dispute_window + 5)
    window = (max(start, end - DEFAULT_HUB.max_twap_window), end)
    cap = Price(10**15)
    expected = compute_twap(rounds, Timestamp(window[0]), Timestamp(window[1]), cap, s.now(),
                            DEFAULT_FEED, DEFAULT_HUB)
    assert s.hub.call("twap", s.committee.feed_id, *window, cap) == expected
    chain.time_travel(DEFAULT_FEED.max_staleness + 60)
    late = int(s.now()) - DEFAULT_HUB.dispute_window - 1
    with pytest.raises(ContractRevert, match="oracle: stale"):
        s.hub.call("twap", s.committee.feed_id, late - 600, late, cap)
