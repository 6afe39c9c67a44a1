"""OracleHub.vy: one test per code path (configuration, transmit and each refusal, TWAP, equivocation,
ejection, administration), on both backends; the Python rules (``clearhouse.oracle``) give the same
verdict and the same reason as the contract for every report.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import pytest
from eth_abi import encode as abi_encode
from oracle_system import (
    LIFETIME,
    build_report,
    chain_verdict,
    honest_report,
    observe,
    other_committee,
    python_verdict,
)

from clearhouse.chain import Chain
from clearhouse.errors import ContractRevert, StaleFeed
from clearhouse.messages.eip712 import keccak256
from clearhouse.oracle import (
    FeedConfig,
    ReportObservation,
    ReportStatement,
    SignedObservation,
    SignedReport,
    Statement,
    StoredRound,
    compute_equivocation_proof,
    compute_feed_id,
    compute_report_digest,
    compute_report_statements,
    compute_signed_report,
    compute_twap,
    find_equivocations,
    sign_report,
)
from clearhouse.oracle.encoding import (
    compute_report_args,
    compute_statement_args,
    compute_transmit_args,
)
from clearhouse.oracle.twap import is_history_slot_blocked
from clearhouse.sim.oracle_hub import (
    DEFAULT_FEED,
    DEFAULT_HUB,
    USDC,
    OracleSystem,
    compute_member_keys,
    deploy_oracle_system,
)
from clearhouse.types import BasisPoints, Price, RoundId, Seconds, Timestamp

P = 3_000 * USDC
OUTSIDER = compute_member_keys(1, b"not a member")[0]


@pytest.fixture
def system(chain: Chain) -> OracleSystem:
    """f = 1 (4 members) on ETH/USDC with the default limits."""
    return deploy_oracle_system(chain, 1)


def _store(system: OracleSystem, round_id: int, prices: list[int]) -> StoredRound:
    signed = honest_report(system, round_id, prices)
    system.transmit(signed)
    last = system.last()
    assert last is not None
    return last


def _revert(fn: Callable[[], object]) -> str | None:
    with pytest.raises(ContractRevert) as info:
        fn()
    return info.value.reason


# --- construction and configuration --------------------------------------------------------


def test_constructor_checks_its_parameters(chain: Chain) -> None:
    s = deploy_oracle_system(chain, 1)
    h = 2**16
    args = ["clearhouse", "1", 1, 1, 0, 8, 1800, 600, h]
    zero = "0x" + "00" * 20
    assert _revert(lambda: chain.deploy("OracleHub", zero, *args)) == "oracle: zero bonds"
    bad_reward = [*args[:4], 10_001, *args[5:]]
    assert _revert(lambda: chain.deploy("OracleHub", s.bonds.address, *bad_reward)) == \
        "oracle: reward above 100%"
    assert _revert(lambda: chain.deploy("OracleHub", s.bonds.address, *args[:5], 0, 1800, 600, h)) == \
        "oracle: zero round interval"
    assert _revert(lambda: chain.deploy("OracleHub", s.bonds.address, *args[:5], 8, 0, 600, h)) == \
        "oracle: zero twap window"
    # 255 intervals of 8 s: a 2041 s window could hold 257 rounds, above the loop bound.
    assert _revert(lambda: chain.deploy("OracleHub", s.bonds.address, *args[:5], 8, 255 * 8 + 1,
                                        600, h)) == "oracle: twap window too long for the loop bound"
    for window in (0, 2**32):
        assert _revert(lambda w=window: chain.deploy("OracleHub", s.bonds.address, *args[:7], w, h)) == \
            "oracle: bad dispute window"
    for rounds in (0, 1, 3, 96, 2**33):
        assert _revert(lambda r=rounds: chain.deploy("OracleHub", s.bonds.address, *args[:8], r)) == \
            "oracle: history not a power of two"
    # 2**8 slots of 8 s rounds: 255 * 8 = 2040 s of history, not more than 1800 + 600.
    assert _revert(lambda: chain.deploy("OracleHub", s.bonds.address, *args[:8], 2**8)) == \
        "oracle: history too short"
    assert chain.deploy("OracleHub", s.bonds.address, *args[:8], 2**9).call("history_rounds") == 2**9
    chain.deploy("OracleHub", s.bonds.address, *args[:5], 8, 255 * 8, 2**32 - 1, 2**32)


def test_runtime_code_fits_the_eip170_limit(system: OracleSystem) -> None:
    size = len(system.chain.get_code(system.hub.address))
    assert 20_000 < size <= 24_576, size


def test_public_parameters(system: OracleSystem) -> None:
    hub = system.hub
    assert hub.call("bonds") == system.bonds.address
    assert hub.call("oracle_role") == system.bonds.call("ROLE_ORACLE")
    assert hub.call("admin") == system.chain.accounts[0].address
    assert hub.call("min_stake") == DEFAULT_HUB.min_stake
    assert hub.call("slash_amount") == DEFAULT_HUB.slash_amount
    assert hub.call("prover_reward_bps") == DEFAULT_HUB.prover_reward_bps
    assert hub.call("min_round_interval") == DEFAULT_HUB.min_round_interval
    assert hub.call("max_twap_window") == DEFAULT_HUB.max_twap_window
    assert hub.call("dispute_window") == DEFAULT_HUB.dispute_window
    assert hub.call("dispute_module") == system.disputes.address
    assert hub.call("MAX_MEMBERS") == 31
    assert hub.call("MAX_ROUND_GAP") == 2**16
    assert hub.call("MAX_TWAP_ROUNDS") == 256
    assert hub.call("REPORT_TYPEHASH") == keccak256(
        b"Report(bytes32 configDigest,bytes32 feedId,uint64 round,uint256 price,uint64 timestamp,"
        b"bytes32 observationsHash)")
    assert hub.call("domain_separator") == system.domain.separator


def test_committee_digest_version_and_members_match_the_rules(system: OracleSystem) -> None:
    c = system.committee
    feed = system.hub.call("get_feed", c.feed_id)
    assert feed[5:8] == (1, 1, c.config_digest)
    assert feed[8:] == (0, 0)  # no rounds, nobody removed
    assert system.hub.call("config_digest", c.feed_id, 1) == c.config_digest
    assert system.hub.call("config_digest", c.feed_id, 2) == b"\x00" * 32
    assert c.config_digest == keccak256(abi_encode(
        ["bytes32", "uint256", "uint256", "address[]"], [c.feed_id, 1, 1, list(c.members)]))
    assert system.hub.call("members", c.feed_id) == list(c.members)
    assert all(system.hub.call("is_member", c.feed_id, m) for m in c.members)


def test_configure_feed_is_admin_only_and_checks_bounds(system: OracleSystem) -> None:
    hub, feed = system.hub, compute_feed_id("BTC/USDC")
    other = system.chain.accounts[1]
    assert _revert(lambda: hub.transact("configure_feed", feed, 1, 10, 0, 60, 60, sender=other)) == \
        "oracle: not admin"
    for args, reason in [
        ((11, 10, 0, 60, 60), "oracle: bad price bounds"),
        ((0, 0, 0, 60, 60), "oracle: bad price bounds"),
        ((1, 2**128, 0, 60, 60), "oracle: bad price bounds"),
        ((1, 10, 0, 0, 60), "oracle: bad max age"),
        ((1, 10, 0, DEFAULT_HUB.dispute_window + 1, 60), "oracle: bad max age"),
        ((1, 10, 0, 60, 2**32), "oracle: bad max staleness"),
        ((1, 10, 0, 60, 0), "oracle: bad max staleness"),
        ((0, 10, 100, 60, 60), "oracle: deviation needs a positive min price"),
        ((1, 10, 1_000_001, 60, 60), "oracle: bad deviation"),
    ]:
        assert _revert(lambda a=args: hub.transact("configure_feed", feed, *a)) == reason
    receipt = hub.transact("configure_feed", feed, 1, 10, 100, 60, 70)
    assert receipt.events_named("FeedConfigured")[0].args["max_staleness"] == 70
    assert hub.call("get_feed", feed)[:5] == (1, 10, 100, 60, 70)


def test_set_committee_checks_members(system: OracleSystem) -> None:
    hub, c = system.hub, system.committee
    members = list(c.members)
    other = system.chain.accounts[1]
    unknown = compute_feed_id("NOPE/USDC")
    for args, reason, sender in [
        ((unknown, members, 1), "oracle: unknown feed", None),
        ((c.feed_id, members, 1), "oracle: not admin", other),
        ((c.feed_id, members[:3], 1), "oracle: committee is not 3f+1", None),
        ((c.feed_id, [], 0), "oracle: committee is not 3f+1", None),
        ((c.feed_id, [*members[:3], "0x" + "00" * 20], 1), "oracle: zero member", None),
        ((c.feed_id, [*members[:3], members[0]], 1), "oracle: duplicate member", None),
        ((c.feed_id, [*members[:3], other.address], 1), "oracle: insufficient stake", None),
    ]:
        assert _revert(lambda a=args, s=sender: hub.transact("set_committee", *a, sender=s)) == reason


def test_new_committee_bumps_version_and_drops_old_members(system: OracleSystem) -> None:
    hub, c = system.hub, system.committee
    newcomer = system.chain.accounts[5]
    system.token.transact("mint", newcomer.address, system.stake)
    system.token.transact("approve", system.bonds.address, system.stake, sender=newcomer)
    system.bonds.transact("bond", system.oracle_role, system.stake, sender=newcomer)
    members = [*c.members[1:], newcomer.address]
    receipt = hub.transact("set_committee", c.feed_id, members, 1)
    event = receipt.events_named("CommitteeSet")[0].args
    assert event["version"] == 2
    assert event["config_digest"] == keccak256(abi_encode(
        ["bytes32", "uint256", "uint256", "address[]"], [c.feed_id, 2, 1, members]))
    assert not hub.call("is_member", c.feed_id, c.members[0])
    assert hub.call("is_member", c.feed_id, newcomer.address)
    # a report under the old digest is refused
    assert chain_verdict(system, honest_report(system, 1, [P, P, P])) == "oracle: wrong config"


# --- transmit -------------------------------------------------------------------------------


def test_transmit_stores_the_median_round(system: OracleSystem) -> None:
    prices = [P + 7, P - 3, P + 1]
    signed = honest_report(system, 5, prices)
    assert python_verdict(system, signed, None) is None
    assert system.hub.call("report_digest", signed.report.config_digest,
                           compute_report_args(signed.report),
                           [o.member for o in signed.report.observations]) == \
        compute_report_digest(system.domain, signed.report)
    assert len(signed.signatures) == 2  # 3 observations, 2 of them attested by report signatures
    assert _revert(lambda: system.hub.call("report_digest", signed.report.config_digest,
                                           compute_report_args(signed.report),
                                           [o.member for o in signed.report.observations][:2])) == \
        "oracle: one member per observation"
    receipt = system.transmit(signed, sender=system.chain.accounts[3])
    event = receipt.events_named("NewRound")[0].args
    assert event == {"feed_id": system.committee.feed_id, "round": 5, "price": P + 1,
                     "timestamp": signed.report.timestamp,
                     "transmitter": system.chain.accounts[3].address}
    stored = StoredRound(5, Price(P + 1), signed.report.timestamp)
    assert system.last() == stored
    assert system.rounds() == [stored]
    assert system.hub.call("round", system.committee.feed_id, 5) == (5, P + 1, stored.timestamp)
    assert system.hub.call("fresh_price", system.committee.feed_id) == P + 1


def test_words_carrying_addresses_and_uint64s_are_checked(system: OracleSystem) -> None:
    """``Config.members``, ``Report.round`` and ``Report.timestamp`` travel as unclamped words (they stay in
    calldata): a member with dirty high bits, a round or a timestamp past 2**64 is refused, and nothing is
    stored."""
    signed = honest_report(system, 5, [P, P + 1, P + 2])
    report, (version, f, members), observers = compute_transmit_args(system.domain, system.committee,
                                                                     signed).to_abi()
    assert isinstance(report, tuple) and isinstance(members, list)

    def send(rep: object, config: object) -> str | None:
        return _revert(lambda: system.hub.transact("transmit", rep, config, observers))

    dirty = [members[0] | (1 << 200), *members[1:]]
    assert send(report, (version, f, dirty)) == "oracle: wrong config"
    far = (report[0], 2**64 + 5, *report[2:])
    assert send(far, (version, f, members)) == "oracle: round too far ahead"
    late = (*report[:3], report[3] + 2**64, report[4])
    assert send(late, (version, f, members)) == "oracle: wrong timestamp"  # no observation has it
    assert system.hub.call("round_count", system.committee.feed_id) == 0
    system.hub.transact("transmit", report, (version, f, members), observers)
    assert system.last() == StoredRound(RoundId(5), Price(P + 1), signed.report.timestamp)


def test_rounds_are_found_by_number_with_gaps(system: OracleSystem) -> None:
    stored = []
    for round_id in (2, 3, 7, 20):
        stored.append(_store(system, round_id, [P + round_id] * 3))
        system.chain.time_travel(10)
    feed = system.committee.feed_id
    for r in stored:
        assert system.hub.call("round", feed, r.round) == (r.round, r.price, r.timestamp)
    for missing in (0, 1, 4, 21):
        assert _revert(lambda m=missing: system.hub.call("round", feed, m)) == "oracle: unknown round"
    assert _revert(lambda: system.hub.call("round_at", feed, 4)) == "oracle: unknown round"
    assert system.hub.call("round_count", feed) == 4


def test_more_observations_and_signatures_than_the_quorum_are_fine(system: OracleSystem) -> None:
    signed = honest_report(system, 1, [P + 4, P + 1, P + 3, P + 2], signers=4)
    assert python_verdict(system, signed, None) is None
    system.transmit(signed)
    assert system.last() == StoredRound(1, Price(P + 2), signed.report.timestamp)


Mutation = Callable[[OracleSystem, StoredRound, int], SignedReport]


def _obs(s: OracleSystem, i: int, price: int, **kw: int) -> SignedObservation:
    return observe(s, s.keys[i], 2, price, **kw)


REFUSALS: dict[str, tuple[str, Mutation]] = {
    "unknown feed": ("oracle: unknown feed", lambda s, last, now: build_report(
        s, 2, [_obs(s, i, P) for i in range(3)], s.keys[1:3],
        feed_id=compute_feed_id("BTC/USDC"))),
    "wrong config": ("oracle: wrong config", lambda s, last, now: build_report(
        s, 2, [_obs(s, i, P) for i in range(3)], s.keys[1:3], committee=other_committee(s))),
    "round too far ahead": ("oracle: round too far ahead", lambda s, last, now: honest_report(
        s, 1 + 2**16 + 1, [P, P, P])),
    "old round": ("oracle: old round", lambda s, last, now: honest_report(s, 1, [P, P, P])),
    "too few observations": ("oracle: too few observations",
                             lambda s, last, now: honest_report(s, 2, [P, P])),
    "too few signatures": ("oracle: too few signatures",
                           lambda s, last, now: honest_report(s, 2, [P, P, P], signers=1)),
    "expired observation": ("eip712: expired", lambda s, last, now: build_report(
        s, 2, [_obs(s, 0, P, timestamp=now - 5, expiry=now - 1), _obs(s, 1, P), _obs(s, 2, P)],
        s.keys[1:3])),
    "future timestamp": ("oracle: future timestamp", lambda s, last, now: build_report(
        s, 2, [_obs(s, 0, P, timestamp=now + 100), _obs(s, 1, P), _obs(s, 2, P)], s.keys[1:3])),
    "stale observation": ("oracle: stale observation", lambda s, last, now: build_report(
        s, 2, [_obs(s, 0, P, timestamp=now - 200, expiry=now + 60), _obs(s, 1, P), _obs(s, 2, P)],
        s.keys[1:3])),
    "unsorted": ("oracle: observations not sorted", lambda s, last, now: build_report(
        s, 2, [_obs(s, 0, P + 2), _obs(s, 1, P + 1), _obs(s, 2, P)], s.keys[1:3], sort=False,
        price=P + 1)),
    "observation by a non-member": ("oracle: not a member", lambda s, last, now: build_report(
        s, 2, [observe(s, OUTSIDER, 2, P), _obs(s, 1, P), _obs(s, 2, P)], s.keys[1:3])),
    "observation for another feed": ("oracle: not a member", lambda s, last, now: build_report(
        s, 2, [observe(s, s.keys[0], 2, P, feed_id=compute_feed_id("BTC/USDC")), _obs(s, 1, P),
               _obs(s, 2, P)], s.keys[1:3])),
    "observation for another round": ("oracle: not a member", lambda s, last, now: build_report(
        s, 2, [observe(s, s.keys[0], 3, P), _obs(s, 1, P), _obs(s, 2, P)], s.keys[1:3])),
    "duplicate observation": ("oracle: duplicate observation", lambda s, last, now: build_report(
        s, 2, [_obs(s, 0, P), _obs(s, 0, P + 1), _obs(s, 2, P)], s.keys[2:3])),
    "wrong median": ("oracle: wrong median", lambda s, last, now: build_report(
        s, 2, [_obs(s, i, P + i) for i in range(3)], s.keys[1:3], price=P + 2)),
    "wrong timestamp": ("oracle: wrong timestamp", lambda s, last, now: build_report(
        s, 2, [_obs(s, i, P, timestamp=now - i) for i in range(3)], s.keys[1:3],
        timestamp=now)),
    "too soon": ("oracle: too soon", lambda s, last, now: build_report(
        s, 2, [_obs(s, i, P, timestamp=last.timestamp + 3) for i in range(3)], s.keys[1:3])),
    "price above bounds": ("oracle: price out of bounds",
                           lambda s, last, now: honest_report(s, 2, [DEFAULT_FEED.max_price + 1] * 3)),
    "price below bounds": ("oracle: price out of bounds",
                           lambda s, last, now: honest_report(s, 2, [DEFAULT_FEED.min_price - 1] * 3)),
    "report signed by a non-member": ("oracle: not a member", lambda s, last, now: build_report(
        s, 2, [observe(s, OUTSIDER, 2, P), _obs(s, 1, P), _obs(s, 2, P)], [OUTSIDER, s.keys[1]])),
    "duplicate report signer": ("oracle: duplicate observation", lambda s, last, now: _duplicate_signer(
        honest_report(s, 2, [P, P, P]))),
    "signatures over another report": ("oracle: not a member", lambda s, last, now: _signatures_of(
        honest_report(s, 2, [P, P, P]), honest_report(s, 2, [P, P, P + 1]))),
    "report signature on another member's observation": ("oracle: not a member",
                                                         lambda s, last, now: _misplaced(s)),
    "observation signature flagged as a report signature": ("oracle: not a member",
                                                            lambda s, last, now: _flag_observation(s)),
    "high-s signature": ("eip712: high s", lambda s, last, now: _high_s(honest_report(s, 2, [P, P, P]))),
    "zero r": ("eip712: bad r", lambda s, last, now: _zero_r(honest_report(s, 2, [P, P, P]))),
}


def _zero_r(signed: SignedReport) -> SignedReport:
    first, second = signed.signers
    sig = signed.signatures[1]
    return compute_signed_report(signed.report, {first: signed.signatures[0], second: b"\x00" * 32 + sig[32:]})


def _high_s(signed: SignedReport) -> SignedReport:
    n = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
    sig = signed.signatures[0]
    s = int.from_bytes(sig[32:64], "big")
    flipped = sig[:32] + (n - s).to_bytes(32, "big") + bytes([55 - sig[64]])
    return compute_signed_report(signed.report, {signed.signers[0]: flipped})


def _signatures_of(signed: SignedReport, other: SignedReport) -> SignedReport:
    """``signed`` with the report signatures of ``other`` (a different report) in their places."""
    return compute_signed_report(signed.report, dict(zip(other.signers, other.signatures, strict=True)))


def _duplicate_signer(signed: SignedReport) -> SignedReport:
    """The last observation replaced by a copy of a report-signed one: one member, two entries."""
    o = signed.report.observations
    copy = next(x for x in o if x.signs_report)
    return SignedReport(replace(signed.report, observations=(*o[:2], copy)))


def _misplaced(s: OracleSystem) -> SignedReport:
    """Member 2's report signature on member 1's observation (the digest names member 1 there)."""
    signed = build_report(s, 2, [_obs(s, i, P) for i in range(3)], s.keys[:1])
    return compute_signed_report(signed.report, {
        s.account(s.keys[1]).address: sign_report(s.domain, signed.report, s.keys[2])})


def _flag_observation(s: OracleSystem) -> SignedReport:
    """An observation signature marked as its member's report signature."""
    signed = build_report(s, 2, [_obs(s, i, P) for i in range(3)], s.keys[:1])
    o = next(x for x in signed.report.observations if not x.signs_report)
    return compute_signed_report(signed.report, {o.member: o.signature})


@pytest.mark.parametrize("case", list(REFUSALS), ids=list(REFUSALS))
def test_refusals_have_their_reason_on_chain_and_in_python(system: OracleSystem, case: str) -> None:
    last = _store(system, 1, [P, P, P])
    system.chain.time_travel(10)
    reason, mutate = REFUSALS[case]
    signed = mutate(system, last, int(system.now()))
    assert python_verdict(system, signed, last) == reason
    assert chain_verdict(system, signed) == reason
    assert system.last() == last


def test_deviation_limit(system: OracleSystem) -> None:
    feed = system.committee.feed_id
    system.hub.transact("configure_feed", feed, DEFAULT_FEED.min_price, DEFAULT_FEED.max_price,
                        1_000, DEFAULT_FEED.max_age, DEFAULT_FEED.max_staleness)
    system.feed = FeedConfig(DEFAULT_FEED.min_price, DEFAULT_FEED.max_price, BasisPoints(1_000),
                             DEFAULT_FEED.max_age, DEFAULT_FEED.max_staleness)
    last = _store(system, 1, [P] * 3)
    system.chain.time_travel(10)
    too_far = honest_report(system, 2, [P * 11 // 10 + 1] * 3)
    assert python_verdict(system, too_far, last) == chain_verdict(system, too_far) == \
        "oracle: deviation too large"
    down = honest_report(system, 2, [P * 9 // 10] * 3)  # exactly 10 %: allowed
    assert python_verdict(system, down, last) is None
    system.transmit(down)


def test_fresh_price_reverts_when_stale_or_empty(system: OracleSystem) -> None:
    feed = system.committee.feed_id
    assert system.hub.call("latest", feed) == (0, 0, 0)
    assert _revert(lambda: system.hub.call("fresh_price", feed)) == "oracle: stale"
    _store(system, 1, [P] * 3)
    system.chain.time_travel(DEFAULT_FEED.max_staleness - 30)
    assert system.hub.call("fresh_price", feed) == P
    system.chain.time_travel(60)
    assert _revert(lambda: system.hub.call("fresh_price", feed)) == "oracle: stale"


# --- TWAP -----------------------------------------------------------------------------------


def test_twap_matches_the_python_spec_and_clamps(system: OracleSystem) -> None:
    feed = system.committee.feed_id
    start = int(system.now())
    for round_id, (price, gap) in enumerate([(P, 40), (P + 600, 100), (P - 300, 9), (P + 50, 200)], 1):
        _store(system, round_id, [price] * 3)
        system.chain.time_travel(gap)
    system.chain.time_travel(DEFAULT_HUB.dispute_window)  # every window below is final
    rounds = system.rounds()
    now = int(system.now())
    final = now - DEFAULT_HUB.dispute_window - 1  # the latest final window end
    for window in [(start, rounds[-1].timestamp + 30), (start - 100, final),
                   (rounds[1].timestamp, rounds[2].timestamp), (rounds[1].timestamp + 1, final),
                   (rounds[-1].timestamp, rounds[-1].timestamp)]:
        for cap in (10**15, P):
            expected = compute_twap(rounds, Timestamp(window[0]), Timestamp(window[1]), Price(cap),
                                    Timestamp(now), DEFAULT_FEED, DEFAULT_HUB)
            assert system.hub.call("twap", feed, window[0], window[1], cap) == expected
    # by hand: weights 40, 100, 9 from the first round to the fourth, then 30 s of the fourth
    t = [r.timestamp for r in rounds]
    assert t[1] - t[0] >= 40
    by_hand = (P * (t[1] - t[0]) + (P + 600) * (t[2] - t[1]) + (P - 300) * (t[3] - t[2])
               + (P + 50) * 30) // (t[3] + 30 - t[0])
    assert system.hub.call("twap", feed, t[0], t[3] + 30, 10**15) == by_hand
    assert system.hub.call("twap", feed, t[0], t[3] + 30, P) == P


def test_twap_refuses_stale_empty_and_bad_windows(system: OracleSystem) -> None:
    feed = system.committee.feed_id
    now = int(system.now())
    twap = system.hub
    assert _revert(lambda: twap.call("twap", compute_feed_id("X/Y"), now - 10, now, P)) == \
        "oracle: unknown feed"
    assert _revert(lambda: twap.call("twap", feed, now - 900, now - 800, P)) == \
        "oracle: no rounds in window"
    stored = _store(system, 1, [P] * 3)
    system.chain.time_travel(DEFAULT_FEED.max_staleness + 900)
    now = int(system.now())
    assert _revert(lambda: twap.call("twap", feed, now - 800, now - 750, P)) == "oracle: stale"
    assert _revert(lambda: twap.call("twap", feed, stored.timestamp - 100, stored.timestamp - 1, P)) == \
        "oracle: no rounds in window"
    # fresh at the window's end, but the only round is before the window
    t = stored.timestamp
    assert _revert(lambda: twap.call("twap", feed, t + 10, t + 20, P)) == "oracle: no rounds in window"
    assert twap.call("twap", feed, t, t + 20, P + 1) == P
    assert _revert(lambda: twap.call("twap", feed, t + 20, t + 10, P)) == "oracle: bad window"
    assert _revert(lambda: twap.call("twap", feed, t, t + DEFAULT_HUB.max_twap_window + 1, P)) == \
        "oracle: window too long"
    assert _revert(lambda: twap.call("twap", feed, now - 10, now + 10, P)) == "oracle: window not final"
    assert _revert(lambda: twap.call("twap", feed, now - 700, now - DEFAULT_HUB.dispute_window, P)) == \
        "oracle: window not final"


def test_twap_is_final_only_once_no_late_report_can_land_in_the_window(system: OracleSystem) -> None:
    feed = system.committee.feed_id
    t0 = _store(system, 1, [P] * 3).timestamp
    system.chain.time_travel(20)
    late = [observe(system, system.keys[i], 2, 2 * P, timestamp=t0 + 15) for i in range(3)]
    end = t0 + 16
    system.chain.time_travel(50)  # the window is over, but a report made before `end` can still land
    assert _revert(lambda: system.hub.call("twap", feed, t0, end, 10**15)) == "oracle: window not final"
    system.transmit(build_report(system, 2, late, system.keys[:2]))
    system.chain.time_travel(DEFAULT_HUB.dispute_window)
    assert system.hub.call("twap", feed, t0, end, 10**15) == (P * 15 + 2 * P * 1) // 16


# --- round history: a ring of `history_rounds` slots ------------------------------------------

RING = 32
RING_HUB = replace(DEFAULT_HUB, max_twap_window=Seconds(96), dispute_window=Seconds(120),
                   history_rounds=RING)
"""A 32-slot ring (31 * 8 s = 248 s > 96 s window + 120 s dispute window): small enough to fill."""


def _fill(s: OracleSystem, count: int, first_round: int = 1) -> list[int]:
    """Store ``count`` honest rounds 8 s apart; return each transmit's gas."""
    gas = []
    for i in range(count):
        gas.append(int(s.transmit(honest_report(s, first_round + i, [P, P + 1, P + 2])).gas_used))
        s.chain.time_travel(RING_HUB.min_round_interval)
    return gas


def test_rounds_live_in_a_ring_and_old_ones_are_refused(chain: Chain) -> None:
    s = deploy_oracle_system(chain, 1, params=RING_HUB)
    assert s.hub.call("history_rounds") == RING
    gas = _fill(s, RING + 2)
    feed = s.committee.feed_id
    assert s.hub.call("round_count", feed) == RING + 2
    for index in (0, 1):
        assert _revert(lambda i=index: s.hub.call("round_state", feed, i)) == "oracle: round overwritten"
        assert _revert(lambda i=index: s.hub.call("round_at", feed, i)) == "oracle: round overwritten"
        assert _revert(lambda i=index: s.hub.call("round", feed, i + 1)) == "oracle: unknown round"
    assert _revert(lambda: s.hub.call("round_state", feed, RING + 2)) == "oracle: unknown round"
    for index in range(2, RING + 2):
        assert s.hub.call("round_at", feed, index)[0] == index + 1
        assert s.hub.call("round", feed, index + 1)[0] == index + 1
    assert s.hub.call("latest", feed)[0] == RING + 2
    # The first R rounds fill fresh slots; from round R on each overwrites one: 17,100 gas less
    # (a cold zero-to-nonzero SSTORE is 22,100, a cold nonzero-to-nonzero one 5,000).
    # (Calldata varies by a few dozen gas with the signatures' zero bytes.)
    assert all(fresh - overwrite >= 16_500 for fresh in gas[1:RING] for overwrite in gas[RING:])


def test_twap_refuses_a_window_whose_rounds_were_overwritten(chain: Chain) -> None:
    s = deploy_oracle_system(chain, 1, params=RING_HUB)
    _fill(s, RING + 2)  # indices 0 and 1 overwritten
    history = [StoredRound(r.round, r.price, r.timestamp) for r in
               (s.round_state(i) for i in range(2, RING + 2))]
    interval = RING_HUB.min_round_interval
    t2 = history[0].timestamp  # the oldest readable round's time
    rounds = [StoredRound(RoundId(history[0].round - 2 + k), history[0].price,
                          Timestamp(t2 - (2 - k) * interval)) for k in range(2)] + history
    s.chain.time_travel(RING_HUB.dispute_window + 200)
    now = s.now()
    windows = {
        "needs the round before index 2": (t2 - interval, t2 - interval + 96),
        "starts at the oldest readable round": (t2, t2 + 96),
        "ends before it": (t2 - 90, t2 - 1),
        "readable": (t2 + 1, t2 + 97),
        "readable, later": (t2 + 50, t2 + 146),
    }
    for name, (start, end) in windows.items():
        try:
            python: str | int = compute_twap(rounds, Timestamp(start), Timestamp(end), Price(10**15),
                                             now, s.feed, s.params)
        except StaleFeed as error:
            python = error.message
        try:
            onchain: str | int = int(s.hub.call("twap", s.committee.feed_id, start, end, 10**15))
        except ContractRevert as error:
            onchain = str(error.reason)
        assert python == onchain, name
        expected_refused = name in ("needs the round before index 2", "starts at the oldest readable round",
                                    "ends before it")
        assert (onchain == "oracle: window overwritten") == expected_refused, name


def test_a_disputed_round_is_never_overwritten(chain: Chain) -> None:
    s = deploy_oracle_system(chain, 1, params=RING_HUB)
    _fill(s, 1)
    first = s.round_state(0)
    s.post(s.keys[0], 2, 2 * P)  # index 1: a wrong optimistic round, disputed at once
    s.dispute(1, None, s.chain.accounts[5])
    s.chain.time_travel(RING_HUB.min_round_interval)
    _fill(s, RING - 1, first_round=3)  # indices 2..R: the ring is full, index 1 is next to go
    history = [s.round_state(i) for i in range(1, RING + 1)]
    assert history[0].disputed
    rounds = [first, *history]
    assert is_history_slot_blocked(rounds, s.params)
    blocked = honest_report(s, RING + 2, [P, P + 1, P + 2])
    assert chain_verdict(s, blocked) == "oracle: overwrites a disputed round"
    assert s.hub.call("round_count", s.committee.feed_id) == RING + 1
    # Anyone resolves it once Assertions can settle it (undefended: the round is invalid, the
    # poster slashed and banned); then the ring moves on.
    s.chain.time_travel(RING_HUB.dispute_liveness)
    s.resolve(1)
    state = s.round_state(1)
    assert state.invalid and not state.disputed
    assert not is_history_slot_blocked([*rounds[:1], state, *history[1:]], s.params)
    honest = build_report(s, RING + 2, [observe(s, k, RING + 2, P) for k in s.keys[1:]], s.keys[1:3])
    s.transmit(honest)
    assert s.hub.call("round_count", s.committee.feed_id) == RING + 2
    assert _revert(lambda: s.hub.call("round_state", s.committee.feed_id, 1)) == "oracle: round overwritten"


# --- equivocation ---------------------------------------------------------------------------


def test_equivocation_is_slashed_exactly_once(system: OracleSystem) -> None:
    bonds, role, hub = system.bonds, system.oracle_role, system.hub
    cheat, prover = system.keys[2], system.chain.accounts[7]
    member = system.committee.members[2]
    a = observe(system, cheat, 9, P)
    b = observe(system, cheat, 9, P + 1)
    proof = compute_equivocation_proof(a, b)
    insurance = bonds.call("insurance_fund")
    receipt = system.prove(proof, sender=prover)
    slashed, reward = DEFAULT_HUB.slash_amount, DEFAULT_HUB.slash_amount * 2_000 // 10_000
    assert receipt.events_named("EquivocationProven")[0].args == {
        "feed_id": system.committee.feed_id, "round": 9, "member": member,
        "prover": prover.address, "slashed": slashed, "reward": reward}
    assert receipt.events_named("MemberRemoved")[0].args["banned"] is True
    assert bonds.call("stake_of", member, role) == system.stake - slashed
    assert system.token.call("balanceOf", prover.address) == reward
    assert bonds.call("insurance_fund") == insurance + slashed - reward
    assert hub.call("is_banned", member)
    assert hub.call("is_proven", system.committee.feed_id, 9, member)
    assert not hub.call("is_member", system.committee.feed_id, member)
    # replaying the proof (either order) does nothing more
    assert _revert(lambda: system.prove(proof, sender=prover)) == "oracle: already proven"
    swapped = compute_equivocation_proof(b, a)
    assert _revert(lambda: system.prove(swapped)) == "oracle: already proven"
    assert bonds.call("stake_of", member, role) == system.stake - slashed
    # its observations no longer count, and it cannot be put back
    report = build_report(system, 1, [observe(system, system.keys[i], 1, P) for i in range(3)],
                          system.keys[:2])
    assert chain_verdict(system, report) == "oracle: not a member"
    assert _revert(lambda: hub.transact("set_committee", system.committee.feed_id,
                                        list(system.committee.members), 1)) == "oracle: member banned"


def test_another_round_is_another_offence_and_slashing_clamps(system: OracleSystem) -> None:
    cheat = system.keys[1]
    member = system.committee.members[1]
    system.prove(compute_equivocation_proof(observe(system, cheat, 1, P), observe(system, cheat, 1, P + 1)))
    receipt = system.prove(compute_equivocation_proof(observe(system, cheat, 2, P),
                                                      observe(system, cheat, 2, P + 5)))
    event = receipt.events_named("EquivocationProven")[0].args
    assert event["slashed"] == system.stake - DEFAULT_HUB.slash_amount == 5_000 * USDC
    receipt = system.prove(compute_equivocation_proof(observe(system, cheat, 3, P),
                                                      observe(system, cheat, 3, P + 5)))
    assert receipt.events_named("EquivocationProven")[0].args["slashed"] == 0
    assert system.bonds.call("slashable_of", member, system.oracle_role) == 0


def test_equivocation_proof_checks(system: OracleSystem) -> None:
    k0, k1 = system.keys[0], system.keys[1]
    same = observe(system, k0, 4, P)
    cases = [
        ((same, observe(system, k0, 5, P + 1)), "oracle: not the same round"),
        ((same, observe(system, k0, 4, P, feed_id=compute_feed_id("BTC/USDC"))),
         "oracle: not the same round"),
        ((same, same), "oracle: same observation"),
        ((same, observe(system, k1, 4, P + 1)), "oracle: different signers"),
        ((observe(system, OUTSIDER, 4, P), observe(system, OUTSIDER, 4, P + 1)), "oracle: not a member"),
    ]
    for (a, b), reason in cases:
        assert _revert(lambda a=a, b=b: system.hub.transact(
            "prove_equivocation", *_proof_args(system, a, b))) == reason


def _proof_args(system: OracleSystem, a: Statement, b: Statement) -> tuple[object, ...]:
    return (compute_statement_args(system.domain, a), compute_statement_args(system.domain, b))


def _report_stating(s: OracleSystem, round_id: int, stated: dict[int, int],
                    signers: tuple[int, ...]) -> SignedReport:
    """A report of members 0..2 at ``P`` (one more each in ``stated``) for ``round_id``, in which
    ``signers`` attest their entries by report signatures; an entry in ``stated`` carries no
    observation signature at all (only its member's report signature states it)."""
    now = int(s.now())
    entries = tuple(ReportObservation(Price(stated.get(i, P)), Timestamp(now), Timestamp(now + LIFETIME),
                                      s.committee.members[i],
                                      b"" if i in stated else observe(s, s.keys[i], round_id, P).signature)
                    for i in range(3))
    report = build_report(s, round_id, [observe(s, s.keys[i], round_id, P) for i in range(3)], ()).report
    report = replace(report, observations=tuple(sorted(entries, key=lambda o: o.price)),
                     price=Price(sorted(stated.get(i, P) for i in range(3))[1]))
    return compute_signed_report(report, {s.committee.members[i]: sign_report(s.domain, report, s.keys[i])
                                          for i in signers})


def test_a_report_signature_stating_another_observation_is_equivocation(system: OracleSystem) -> None:
    s = system
    member = s.committee.members[1]
    said = observe(s, s.keys[1], 2, P)  # what member 1 sent one leader
    # ... and a report (valid: it is stored) in which member 1 states P + 1 with its report signature
    signed = _report_stating(s, 2, {1: P + 1}, (1, 2))
    assert python_verdict(s, signed, None) is None
    s.transmit(signed)
    statement = next(x for x in compute_report_statements(signed) if x.signer == member)
    assert statement.observation.price == P + 1
    (proof,) = find_equivocations([said, *compute_report_statements(signed)])
    assert {proof.first, proof.second} == {said, statement}
    receipt = s.prove(proof, sender=s.chain.accounts[6])
    event = receipt.events_named("EquivocationProven")[0].args
    assert (event["member"], event["round"], event["slashed"]) == (member, 2, DEFAULT_HUB.slash_amount)
    assert s.hub.call("is_banned", member) and not s.hub.call("is_member", s.committee.feed_id, member)
    # Slashed once per (feed, round, member), whatever statements prove it again.
    again = observe(s, s.keys[1], 2, P + 7)
    for a, b in [(statement, said), (said, again), (again, statement)]:
        assert _revert(lambda a=a, b=b: s.prove(compute_equivocation_proof(a, b))) == "oracle: already proven"


def test_two_reports_stating_different_observations_are_equivocation(system: OracleSystem) -> None:
    s = system
    first = _report_stating(s, 3, {2: P + 1}, (2, 0))
    second = _report_stating(s, 3, {2: P + 2}, (2, 1))
    statements = [*compute_report_statements(first), *compute_report_statements(second)]
    (proof,) = find_equivocations(statements)
    assert proof.member == s.committee.members[2]
    receipt = s.prove(proof)
    assert receipt.events_named("EquivocationProven")[0].args["member"] == s.committee.members[2]
    # Signing two reports that state the same own observation is no fault: member 0's entries are equal.
    honest_a = build_report(s, 4, [observe(s, s.keys[i], 4, P) for i in (0, 1, 3)], s.keys[:1])
    honest_b = build_report(s, 4, [observe(s, s.keys[i], 4, P) for i in (0, 3, 1)], s.keys[:1])
    a, b = compute_report_statements(honest_a)[0], compute_report_statements(honest_b)[0]
    assert not find_equivocations([a, b])
    assert _revert(lambda: s.hub.transact("prove_equivocation", *_proof_args(s, a, b))) == \
        "oracle: same observation"


def test_report_statement_checks(system: OracleSystem) -> None:
    s = system
    signed = _report_stating(s, 5, {0: P - 1}, (0, 1))
    mine, other = compute_report_statements(signed)
    lone = observe(s, s.keys[0], 5, P)
    # A statement naming another member's entry: the recovered signer is not that entry's member.
    wrong = ReportStatement(mine.report, other.index, mine.signature)
    assert _revert(lambda: s.hub.transact("prove_equivocation", *_proof_args(s, lone, wrong))) == \
        "oracle: not the signer's observation"
    args = list(compute_statement_args(s.domain, mine))
    args[8] = args[8][:-1]  # one member fewer than digests
    assert _revert(lambda: s.hub.transact("prove_equivocation", compute_statement_args(s.domain, lone),
                                          tuple(args))) == "oracle: bad statement"
    args = list(compute_statement_args(s.domain, mine))
    args[4] = 5  # another price: another report digest, another signer
    assert _revert(lambda: s.hub.transact("prove_equivocation", compute_statement_args(s.domain, lone),
                                          tuple(args))) == "oracle: not the signer's observation"
    # Member 1's statement of P is the same observation as member 0's own P (no signer inside it);
    # against member 0's P + 3 it is another member's.
    assert _revert(lambda: s.hub.transact("prove_equivocation", *_proof_args(s, lone, other))) == \
        "oracle: same observation"
    assert _revert(lambda: s.hub.transact("prove_equivocation", *_proof_args(
        s, observe(s, s.keys[0], 5, P + 3), other))) == "oracle: different signers"
    assert s.prove(compute_equivocation_proof(lone, mine)).events_named("EquivocationProven")


def test_equivocation_is_provable_after_expiry_and_removal(system: OracleSystem) -> None:
    k = system.keys[3]
    member = system.account(k)
    a, b = observe(system, k, 6, P), observe(system, k, 6, P + 2)
    # the member starts unbonding and is ejected; its unbonding stake is still slashable
    system.bonds.transact("request_unbond", system.oracle_role, system.stake, sender=member)
    system.hub.transact("eject", system.committee.feed_id, member.address)
    system.chain.time_travel(LIFETIME * 10)
    event = system.prove(compute_equivocation_proof(a, b)).events_named("EquivocationProven")[0]
    assert event.args["slashed"] == DEFAULT_HUB.slash_amount
    assert system.bonds.call("unbonding_of", member.address, system.oracle_role)[0] == \
        system.stake - DEFAULT_HUB.slash_amount


# --- ejection and administration ------------------------------------------------------------


def test_eject_under_staked_or_banned_members_only(system: OracleSystem) -> None:
    hub, feed = system.hub, system.committee.feed_id
    member = system.account(system.keys[0])
    assert _revert(lambda: hub.transact("eject", feed, member.address)) == \
        "oracle: member in good standing"
    assert _revert(lambda: hub.transact("eject", feed, system.chain.accounts[4].address)) == \
        "oracle: not a member"
    system.bonds.transact("request_unbond", system.oracle_role, 1, sender=member)
    receipt = hub.transact("eject", feed, member.address, sender=system.chain.accounts[4])
    assert receipt.events_named("MemberRemoved")[0].args == {
        "feed_id": feed, "member": member.address, "banned": False}
    assert not hub.call("is_member", feed, member.address)
    # f is unchanged: three remaining members still make 2f+1
    signed = build_report(system, 1, [observe(system, system.keys[i], 1, P) for i in (1, 2, 3)],
                          system.keys[1:3])
    system.transmit(signed)


def test_banned_member_is_ejectable_from_other_feeds(system: OracleSystem) -> None:
    hub, c = system.hub, system.committee
    btc = compute_feed_id("BTC/USDC")
    hub.transact("configure_feed", btc, 1, 10**15, 0, 120, 600)
    hub.transact("set_committee", btc, list(c.members), 1)
    k = system.keys[0]
    system.prove(compute_equivocation_proof(observe(system, k, 1, P), observe(system, k, 1, P + 1)))
    assert hub.call("is_member", btc, c.members[0])
    hub.transact("eject", btc, c.members[0], sender=system.chain.accounts[6])
    assert not hub.call("is_member", btc, c.members[0])


def test_admin_setters(system: OracleSystem) -> None:
    hub, other = system.hub, system.chain.accounts[1]
    for fn, args in [("set_slashing", (1, 2)), ("set_min_stake", (5,)), ("transfer_admin", (other.address,)),
                     ("set_dispute_module", (other.address,))]:
        assert _revert(lambda f=fn, a=args: hub.transact(f, *a, sender=other)) == "oracle: not admin"
    assert _revert(lambda: hub.transact("set_slashing", 1, 10_001)) == "oracle: reward above 100%"
    hub.transact("set_slashing", 7, 500)
    assert (hub.call("slash_amount"), hub.call("prover_reward_bps")) == (7, 500)
    hub.transact("set_min_stake", 5)
    assert hub.call("min_stake") == 5
    assert _revert(lambda: hub.transact("transfer_admin", "0x" + "00" * 20)) == "oracle: zero admin"
    hub.transact("transfer_admin", other.address)
    assert hub.call("admin") == other.address
    hub.transact("set_min_stake", 6, sender=other)


def test_slashing_needs_the_hub_registered_in_bonds(system: OracleSystem) -> None:
    system.bonds.transact("set_slasher", system.hub.address, system.oracle_role, False)
    k = system.keys[0]
    proof = compute_equivocation_proof(observe(system, k, 1, P), observe(system, k, 1, P + 1))
    assert _revert(lambda: system.prove(proof)) == "bonds: not a slasher"
    assert not system.hub.call("is_banned", system.committee.members[0])
