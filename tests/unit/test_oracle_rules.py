"""clearhouse.oracle: committees, observations, report aggregation and checks, triggers, TWAP,
sources and the in-process committee, without a chain."""

from __future__ import annotations

import dataclasses
import itertools
import re
from pathlib import Path

import pytest
from eth_abi import encode as abi_encode
from eth_account.messages import encode_typed_data
from hypothesis import given
from hypothesis import strategies as st

from clearhouse.errors import (
    ClearhouseError,
    ConfigError,
    DuplicateSigner,
    Equivocation,
    ExpiredMessage,
    InsufficientQuorum,
    InvalidCommittee,
    InvalidReport,
    NotAMember,
    OracleError,
    PriceRejected,
    SourceUnavailable,
    StaleFeed,
    StaleRound,
    UnknownFeed,
    WrongConfig,
)
from clearhouse.messages import Domain, Observation, compute_observation_digest
from clearhouse.messages.eip712 import keccak256
from clearhouse.oracle import (
    Committee,
    CommitteeSetup,
    ConstantSource,
    CsvReplay,
    FeedConfig,
    FeedState,
    HubParams,
    MarketModel,
    Member,
    NoisySource,
    PriceSource,
    Regime,
    SignedObservation,
    SignedReport,
    SimulatedMarket,
    StoredRound,
    apply_stored_round,
    check_no_equivocation,
    compute_config_digest,
    compute_equivocation_proof,
    compute_lower_median,
    compute_max_silent,
    compute_member_address,
    compute_observation,
    compute_observation_quorum,
    compute_report,
    compute_report_digest,
    compute_signature_quorum,
    compute_signed_report,
    compute_twap,
    find_equivocations,
    get_fresh_price,
    get_leader,
    get_member_index,
    is_deviation_reached,
    is_equivocation,
    is_fresh_observation,
    is_heartbeat_due,
    is_member,
    is_quorum_reachable,
    is_report_acceptable,
    is_report_due,
    is_stale,
    process_observation,
    process_report,
    process_report_body,
    process_tick,
    recover_report_signer,
    run_feed,
    run_round,
    select_observations,
    sign_observation,
    sign_report,
)
from clearhouse.oracle.twap import get_oldest_readable
from clearhouse.types import (
    Address,
    BasisPoints,
    ChainId,
    FeedId,
    Price,
    RoundId,
    Seconds,
    Timestamp,
)

USDC = 10**6
P = Price(3_000 * USDC)
NOW = Timestamp(1_790_000_000)
KEYS = [keccak256(b"member" + bytes([i])) for i in range(31)]
ADDRESSES = [compute_member_address(k) for k in KEYS]
OUTSIDER = keccak256(b"outsider")
FEED = FeedId(keccak256(b"ETH/USDC"))
DOMAIN = Domain("clearhouse", "1", ChainId(31337), Address("0x" + "ab" * 20))
LIMITS = FeedConfig(Price(1), Price(10**15), BasisPoints(0), Seconds(120), Seconds(600))
HUB = HubParams(Seconds(8), Seconds(1800))
TWAP_FEED = FeedConfig(Price(1), Price(10**15), BasisPoints(0), Seconds(20), Seconds(60))
"""Observations at most 20 s old, stale after 60 s."""
TWAP_HUB = HubParams(Seconds(4), Seconds(1000), dispute_window=Seconds(20))
"""A window is final 20 s after its end."""
LONG_HUB = HubParams(Seconds(4_000), Seconds(10**6), dispute_window=Seconds(20))


def _committee(f: int = 1, version: int = 1, removed: frozenset[Address] = frozenset()) -> Committee:
    return Committee(FEED, tuple(ADDRESSES[:3 * f + 1]), f, version, removed)


def _obs(i: int, price: int, round_id: int = 1, ts: int = NOW, key: bytes | None = None,
         feed: bytes = FEED) -> SignedObservation:
    obs = compute_observation(FeedId(feed), RoundId(round_id), Price(price), Timestamp(ts), Seconds(60))
    return sign_observation(DOMAIN, obs, key or KEYS[i])


def _signed(committee: Committee, prices: list[int], signers: int | None = None,
            round_id: int = 1) -> SignedReport:
    selected = select_observations(committee, [_obs(i, p, round_id) for i, p in enumerate(prices)])
    report = compute_report(committee, RoundId(round_id), selected)
    count = committee.f + 1 if signers is None else signers
    return compute_signed_report(report, {ADDRESSES[i]: sign_report(DOMAIN, report, KEYS[i])
                                          for i in range(count)})


# --- errors and configuration ---------------------------------------------------------------


def test_oracle_errors_hang_from_the_one_tree() -> None:
    for cls in (UnknownFeed, InvalidCommittee, WrongConfig, NotAMember, DuplicateSigner,
                InsufficientQuorum, StaleRound, InvalidReport, PriceRejected, Equivocation,
                StaleFeed, SourceUnavailable):
        assert issubclass(cls, OracleError)
        assert issubclass(cls, ClearhouseError) and issubclass(cls, ValueError)
        assert cls("oracle: x").to_dict()["code"] == cls.code != OracleError.code
    assert issubclass(UnknownFeed, KeyError)
    assert str(UnknownFeed("oracle: unknown feed")) == "oracle: unknown feed"


def test_config_digest_is_the_abi_encoding_hash() -> None:
    c = _committee(3, version=7)
    expected = keccak256(abi_encode(["bytes32", "uint256", "uint256", "address[]"],
                                    [FEED, 7, 3, list(c.members)]))
    assert c.config_digest == expected == compute_config_digest(FEED, 7, 3, c.members)
    assert c.n == 10
    assert _committee(1, version=2).config_digest != _committee(1).config_digest


@pytest.mark.parametrize(("members", "f", "reason"), [
    (ADDRESSES[:3], 1, "oracle: committee is not 3f+1"),
    (ADDRESSES[:1], 0, "oracle: committee is not 3f+1"),
    (ADDRESSES[:5], 1, "oracle: committee is not 3f+1"),
    ([*ADDRESSES[:3], ADDRESSES[0]], 1, "oracle: duplicate member"),
    ([*ADDRESSES[:3], "0x" + "00" * 20], 1, "oracle: zero member"),
])
def test_committee_validation(members: list[str], f: int, reason: str) -> None:
    with pytest.raises(InvalidCommittee, match=re.escape(reason)):
        Committee(FEED, tuple(Address(m) for m in members), f, 1)


def test_feed_and_hub_limits_are_checked() -> None:
    with pytest.raises(InvalidCommittee, match="bad price bounds"):
        FeedConfig(Price(5), Price(4), BasisPoints(0), Seconds(1), Seconds(1))
    with pytest.raises(InvalidCommittee, match="bad max age"):
        FeedConfig(Price(1), Price(4), BasisPoints(0), Seconds(0), Seconds(1))
    with pytest.raises(InvalidCommittee, match="positive min price"):
        FeedConfig(Price(0), Price(4), BasisPoints(10), Seconds(1), Seconds(1))
    with pytest.raises(InvalidCommittee, match="loop bound"):
        HubParams(Seconds(8), Seconds(255 * 8 + 1))
    with pytest.raises(InvalidCommittee, match="reward"):
        HubParams(Seconds(8), Seconds(8), prover_reward_bps=BasisPoints(10_001))
    HubParams(Seconds(8), Seconds(255 * 8))
    for rounds in (0, 1, 3, 96, 2**33):
        with pytest.raises(InvalidCommittee, match="history not a power of two"):
            HubParams(Seconds(8), Seconds(1800), dispute_window=Seconds(600), history_rounds=rounds)
    with pytest.raises(InvalidCommittee, match="history too short"):  # 255 * 8 = 2040 <= 1800 + 600
        HubParams(Seconds(8), Seconds(1800), dispute_window=Seconds(600), history_rounds=2**8)
    assert HubParams(Seconds(8), Seconds(1800), dispute_window=Seconds(600),
                     history_rounds=2**9).hub_args("b", "n", "v")[-1] == 2**9


def test_quorums_and_membership() -> None:
    assert [(compute_observation_quorum(f), compute_signature_quorum(f)) for f in (1, 3, 10)] == \
        [(3, 2), (7, 4), (21, 11)]
    c = _committee(1, removed=frozenset({ADDRESSES[2]}))
    assert is_member(c, ADDRESSES[0]) and not is_member(c, ADDRESSES[2])
    assert not is_member(c, ADDRESSES[9])
    assert get_member_index(c, ADDRESSES[3]) == 3
    with pytest.raises(NotAMember):
        get_member_index(c, ADDRESSES[2])


@pytest.mark.parametrize("f", [1, 3, 10])
def test_leader_rotates_and_any_f_plus_1_rounds_have_distinct_leaders(f: int) -> None:
    c = _committee(f)
    leaders = [get_leader(c, RoundId(r)) for r in range(3 * c.n)]
    assert set(leaders[:c.n]) == set(c.members)
    for start in range(2 * c.n):
        assert len(set(leaders[start:start + f + 1])) == f + 1
    assert get_leader(c, RoundId(5)) == get_leader(c, RoundId(5 + c.n))


# --- observations ---------------------------------------------------------------------------


def test_sign_and_check_an_observation() -> None:
    c = _committee()
    signed = _obs(0, P)
    assert signed.signer == ADDRESSES[0]
    assert process_observation(DOMAIN, c, LIMITS, signed, RoundId(1), NOW) == ADDRESSES[0]
    assert is_fresh_observation(signed.observation, NOW, Seconds(120))
    assert not is_fresh_observation(signed.observation, Timestamp(NOW - 1), Seconds(120))


@pytest.mark.parametrize(("signed", "round_id", "now", "error", "reason"), [
    (_obs(0, P, feed=keccak256(b"BTC/USDC")), 1, NOW, WrongConfig, "oracle: wrong feed"),
    (_obs(0, P, round_id=2), 1, NOW, WrongConfig, "oracle: wrong round"),
    (_obs(0, P), 1, NOW + 61, ExpiredMessage, "eip712: expired"),
    (_obs(0, P, ts=NOW + 5), 1, NOW, StaleRound, "oracle: future timestamp"),
    (sign_observation(DOMAIN, Observation(feed_id=FEED, round=1, price=P, timestamp=NOW - 121,  # type: ignore[arg-type]
                                          expiry=NOW + 600), KEYS[0]),  # type: ignore[arg-type]
     1, NOW, StaleRound, "oracle: stale observation"),
    (_obs(0, P, key=OUTSIDER), 1, NOW, NotAMember, "oracle: not a member"),
    (SignedObservation(_obs(0, P).observation, _obs(0, P).signature, ADDRESSES[1]), 1, NOW,
     NotAMember, "oracle: not a member"),
])
def test_observation_refusals(signed: SignedObservation, round_id: int, now: int,
                              error: type[Exception], reason: str) -> None:
    with pytest.raises(error, match=reason):
        process_observation(DOMAIN, _committee(), LIMITS, signed, RoundId(round_id), Timestamp(now))


def test_equivocation_detection() -> None:
    a, b, again = _obs(0, P), _obs(0, P + 1), _obs(0, P)
    assert a == again  # deterministic signatures: re-sending the same observation is harmless
    assert is_equivocation(a, b) and not is_equivocation(a, again)
    assert not is_equivocation(a, _obs(1, P + 1))
    assert not is_equivocation(a, _obs(0, P + 1, round_id=2))
    proof = compute_equivocation_proof(a, b)
    assert proof.member == ADDRESSES[0]
    with pytest.raises(WrongConfig):
        compute_equivocation_proof(a, again)
    with pytest.raises(Equivocation) as info:
        check_no_equivocation(a, b)
    assert info.value.context["proof"] == proof
    check_no_equivocation(a, again)
    seen = [a, _obs(1, P), b, _obs(0, P + 2), _obs(1, P + 3), _obs(2, P, round_id=2)]
    proofs = find_equivocations(seen)
    assert [(p.member, p.second.observation.price) for p in proofs] == \
        [(ADDRESSES[0], P + 1), (ADDRESSES[1], P + 3)]


# --- reports --------------------------------------------------------------------------------


def test_lower_median() -> None:
    assert compute_lower_median([5]) == 5
    assert compute_lower_median([3, 1, 2]) == 2
    assert compute_lower_median([4, 1, 3, 2]) == 2
    with pytest.raises(InsufficientQuorum):
        compute_lower_median([])


@given(f=st.integers(1, 10), data=st.data())
def test_lower_median_of_2f_plus_1_lies_in_the_honest_range(f: int, data: st.DataObject) -> None:
    honest = data.draw(st.lists(st.integers(1, 10**12), min_size=f + 1, max_size=3 * f + 1 - 0))
    faulty = data.draw(st.lists(st.integers(0, 2**128), min_size=0, max_size=f))
    values = honest + faulty
    if len(values) < 2 * f + 1:
        values += honest[: 2 * f + 1 - len(values)]
    assert min(honest) <= compute_lower_median(values) <= max(honest)


def test_selection_keeps_one_per_member_and_the_median_window() -> None:
    c = _committee(3)
    prices = [P + d for d in (9, -4, 0, 7, 3, -8, 5, 1, -1, 2)]
    observations = [_obs(i, p) for i, p in enumerate(prices)]
    extra = [_obs(0, P + 100), _obs(0, P, key=OUTSIDER)]  # a second one from member 0, a stranger
    selected = select_observations(c, observations + extra)
    assert len(selected) == 7
    assert [s.observation.price for s in selected] == sorted(s.observation.price for s in selected)
    assert compute_lower_median([s.observation.price for s in selected]) == compute_lower_median(prices)
    assert ADDRESSES[0] in {s.signer for s in selected} or prices[0] not in \
        [s.observation.price for s in selected]
    with pytest.raises(InsufficientQuorum, match="too few observations"):
        select_observations(c, observations[:6])


def test_report_digest_is_eip712_typed_data() -> None:
    signed = _signed(_committee(), [P, P + 1, P + 2])
    report = signed.report
    from clearhouse.oracle.report import compute_observations_hash
    typed = {
        "types": {
            "EIP712Domain": [{"name": "name", "type": "string"}, {"name": "version", "type": "string"},
                             {"name": "chainId", "type": "uint256"},
                             {"name": "verifyingContract", "type": "address"}],
            "Report": [{"name": "configDigest", "type": "bytes32"}, {"name": "feedId", "type": "bytes32"},
                       {"name": "round", "type": "uint64"}, {"name": "price", "type": "uint256"},
                       {"name": "timestamp", "type": "uint64"},
                       {"name": "observationsHash", "type": "bytes32"}],
        },
        "primaryType": "Report",
        "domain": DOMAIN.to_typed_data(),
        "message": {"configDigest": report.config_digest, "feedId": report.feed_id,
                    "round": report.round, "price": report.price, "timestamp": report.timestamp,
                    "observationsHash": compute_observations_hash(DOMAIN, report)},
    }
    encoded = encode_typed_data(full_message=typed)
    assert keccak256(b"\x19" + encoded.version + encoded.header + encoded.body) == \
        compute_report_digest(DOMAIN, report)
    digests = b"".join(compute_observation_digest(DOMAIN, Observation(
        feed_id=FEED, round=1, price=o.price, timestamp=o.timestamp, expiry=o.expiry))  # type: ignore[arg-type]
        for o in report.observations)
    members = b"".join(bytes.fromhex(o.member[2:]).rjust(32, b"\0") for o in report.observations)
    assert compute_observations_hash(DOMAIN, report) == keccak256(digests + members)
    assert recover_report_signer(DOMAIN, report, signed.signatures[1]) == ADDRESSES[1]
    # Signatures do not enter the digest: the report-signed copy has the same one.
    assert signed.signers == (ADDRESSES[0], ADDRESSES[1])
    unsigned = _signed(_committee(), [P, P + 1, P + 2], signers=0).report
    assert compute_report_digest(DOMAIN, unsigned) == compute_report_digest(DOMAIN, report)
    # The digest binds each observation to its member: naming another member changes it.
    swapped = dataclasses.replace(unsigned, observations=(
        dataclasses.replace(unsigned.observations[0], member=ADDRESSES[3]), *unsigned.observations[1:]))
    assert compute_report_digest(DOMAIN, swapped) != compute_report_digest(DOMAIN, unsigned)


def test_an_honest_report_passes_and_stores_the_medians() -> None:
    c = _committee()
    signed = _signed(c, [P + 5, P - 5, P])
    stored = process_report(DOMAIN, c, LIMITS, HUB, None, signed, NOW)
    assert stored == StoredRound(RoundId(1), P, NOW)
    assert is_report_acceptable(DOMAIN, c, LIMITS, HUB, None, signed, NOW)
    assert process_report_body(DOMAIN, c, LIMITS, HUB, None, signed.report, NOW) == stored


@pytest.mark.parametrize(("case", "error", "reason"), [
    ("no committee", UnknownFeed, "oracle: unknown feed"),
    ("old round", StaleRound, "oracle: old round"),
    ("too soon", StaleRound, "oracle: too soon"),
    ("one signature", InsufficientQuorum, "oracle: too few signatures"),
    ("removed signer", NotAMember, "oracle: not a member"),
    ("signature by another member", NotAMember, "oracle: not a member"),
    ("duplicate member", DuplicateSigner, "oracle: duplicate observation"),
    ("deviation", PriceRejected, "oracle: deviation too large"),
    ("bounds", PriceRejected, "oracle: price out of bounds"),
])
def test_report_refusals(case: str, error: type[Exception], reason: str) -> None:
    c = _committee()
    signed = _signed(c, [P, P, P], round_id=3)
    last: StoredRound | None = StoredRound(RoundId(2), P, Timestamp(NOW - 60))
    limits, committee = LIMITS, c
    if case == "no committee":
        committee = None  # type: ignore[assignment]
    elif case == "old round":
        last = StoredRound(RoundId(3), P, Timestamp(NOW - 60))
    elif case == "too soon":
        last = StoredRound(RoundId(2), P, Timestamp(NOW - 7))
    elif case == "one signature":
        signed = _signed(c, [P, P, P], signers=1, round_id=3)
    elif case == "removed signer":
        committee = _committee(removed=frozenset({ADDRESSES[1]}))
    elif case == "signature by another member":  # member 1's entry carries member 3's report signature
        report = signed.report
        signed = compute_signed_report(report, {ADDRESSES[0]: sign_report(DOMAIN, report, KEYS[0]),
                                                ADDRESSES[1]: sign_report(DOMAIN, report, KEYS[3])})
    elif case == "duplicate member":
        o = signed.report.observations
        signed = SignedReport(dataclasses.replace(signed.report, observations=(o[0], o[1], o[1])))
    elif case == "deviation":
        limits = FeedConfig(Price(1), Price(10**15), BasisPoints(100), Seconds(120), Seconds(600))
        last = StoredRound(RoundId(2), Price(P * 98 // 100), Timestamp(NOW - 60))
    elif case == "bounds":
        limits = FeedConfig(Price(1), Price(P - 1), BasisPoints(0), Seconds(120), Seconds(600))
    with pytest.raises(error, match=reason):
        process_report(DOMAIN, committee, limits, HUB, last, signed, NOW)
    assert not is_report_acceptable(DOMAIN, committee, limits, HUB, last, signed, NOW)


def test_unsorted_and_wrong_medians_are_invalid_reports() -> None:
    c = _committee()
    signed = _signed(c, [P, P + 1, P + 2])
    r = signed.report
    swapped = type(r)(r.config_digest, r.feed_id, r.round, r.price, r.timestamp,
                      (r.observations[1], r.observations[0], r.observations[2]))
    for report, reason in [(swapped, "not sorted"),
                           (type(r)(r.config_digest, r.feed_id, r.round, Price(P), r.timestamp,
                                    r.observations), "wrong median"),
                           (type(r)(r.config_digest, r.feed_id, r.round, r.price,
                                    Timestamp(NOW - 1), r.observations), "wrong timestamp")]:
        with pytest.raises(InvalidReport, match=reason):
            process_report_body(DOMAIN, c, LIMITS, HUB, None, report, NOW)


# --- triggers -------------------------------------------------------------------------------


def test_report_triggers() -> None:
    bps = BasisPoints(50)
    assert is_report_due(None, None, P, NOW, bps, Seconds(300))
    assert not is_report_due(P, NOW, Price(P + P // 1000), Timestamp(NOW + 10), bps, Seconds(300))
    assert is_report_due(P, NOW, Price(P + P // 200), Timestamp(NOW + 10), bps, Seconds(300))
    assert is_report_due(P, NOW, Price(P - P // 200), Timestamp(NOW + 10), bps, Seconds(300))
    assert is_report_due(P, NOW, P, Timestamp(NOW + 300), bps, Seconds(300))
    assert not is_report_due(P, NOW, P, Timestamp(NOW + 299), bps, Seconds(300))
    assert is_deviation_reached(Price(0), Price(1), bps) and not is_deviation_reached(Price(0), Price(0), bps)
    assert is_heartbeat_due(NOW, Timestamp(NOW + 5), Seconds(5))


def test_silent_members_up_to_f() -> None:
    for f in (1, 3, 10):
        assert compute_max_silent(f) == f
        assert is_quorum_reachable(3 * f + 1 - f, f)
        assert not is_quorum_reachable(3 * f + 1 - f - 1, f)


# --- TWAP -----------------------------------------------------------------------------------


def _rounds(points: list[tuple[int, int]]) -> list[StoredRound]:
    return [StoredRound(RoundId(i + 1), Price(p), Timestamp(t)) for i, (t, p) in enumerate(points)]


def test_twap_refuses_windows_whose_rounds_were_overwritten() -> None:
    hub = HubParams(Seconds(4), Seconds(12), dispute_window=Seconds(20), history_rounds=16)
    rounds = _rounds([(100 + 10 * i, 10 + i) for i in range(20)])  # the ring keeps indices 4..19
    assert get_oldest_readable(len(rounds), hub) == 4
    now, cap = Timestamp(1_000), Price(10**9)

    def twap(start: int, end: int) -> int | str:
        try:
            return compute_twap(rounds, Timestamp(start), Timestamp(end), cap, now, TWAP_FEED, hub)
        except StaleFeed as error:
            return error.message

    # The walk reaches index 4 (t = 140) inside the window: index 3 might be in it too, and is gone.
    assert twap(135, 145) == "oracle: window overwritten"
    # The last round at or before the end is index 3 (t = 130): gone.
    assert twap(128, 139) == "oracle: window overwritten"
    # Index 4 lies before the window: the window is whole.
    assert twap(141, 151) == 15
    assert twap(149, 161) == (16 * 1 + 15 * 10) // 11


def test_twap_by_hand() -> None:
    rounds = _rounds([(100, 10), (110, 20), (140, 40)])
    # [100, 160]: 10·10 + 20·30 + 40·20 over 60
    assert compute_twap(rounds, Timestamp(100), Timestamp(160), Price(10**9), Timestamp(200),
                        TWAP_FEED, TWAP_HUB) == (100 + 600 + 800) // 60
    # starting mid-way: weighting starts at the first round in the window
    assert compute_twap(rounds, Timestamp(105), Timestamp(160), Price(10**9), Timestamp(200),
                        TWAP_FEED, TWAP_HUB) == (600 + 800) // 50
    # a single round exactly at the end weighs zero: its price
    assert compute_twap(rounds, Timestamp(140), Timestamp(140), Price(10**9), Timestamp(200),
                        TWAP_FEED, TWAP_HUB) == 40
    # clamped to the cap
    assert compute_twap(rounds, Timestamp(100), Timestamp(160), Price(25), Timestamp(200),
                        TWAP_FEED, TWAP_HUB) == 25
    # later rounds than `end` do not count
    assert compute_twap(rounds, Timestamp(100), Timestamp(120), Price(10**9), Timestamp(200),
                        TWAP_FEED, TWAP_HUB) == (100 + 200) // 20


@pytest.mark.parametrize(("start", "end", "now", "reason"), [
    (150, 140, 200, "oracle: bad window"),
    (100, 1200, 1300, "oracle: window too long"),
    (100, 180, 200, "oracle: window not final"),
    (10, 90, 200, "oracle: no rounds in window"),
    (150, 201, 300, "oracle: stale"),
    (141, 150, 200, "oracle: no rounds in window"),
])
def test_twap_refusals(start: int, end: int, now: int, reason: str) -> None:
    rounds = _rounds([(100, 10), (110, 20), (140, 40)])
    with pytest.raises(StaleFeed, match=reason):
        compute_twap(rounds, Timestamp(start), Timestamp(end), Price(10**9), Timestamp(now),
                     TWAP_FEED, TWAP_HUB)
    with pytest.raises(StaleFeed, match="no rounds in window"):
        compute_twap([], Timestamp(1), Timestamp(2), Price(1), Timestamp(100), TWAP_FEED, TWAP_HUB)


@given(data=st.data())
def test_twap_equals_a_per_second_integral(data: st.DataObject) -> None:
    """The weighted formula against a second, independent reading: the average of the price in
    force at each second of ``[t_first, end)``."""
    gaps = data.draw(st.lists(st.integers(1, 40), min_size=1, max_size=12))
    prices = data.draw(st.lists(st.integers(0, 10**12), min_size=len(gaps), max_size=len(gaps)))
    times = list(itertools.accumulate(gaps, initial=1000))[1:]
    rounds = _rounds(list(zip(times, prices, strict=True)))
    start = data.draw(st.integers(times[0] - 50, times[-1]))
    end = data.draw(st.integers(max(start, times[-1]), times[-1] + 60))
    cap = data.draw(st.integers(0, 2 * 10**12))
    first = next(r.timestamp for r in rounds if r.timestamp >= start)
    in_force = [next(r.price for r in reversed(rounds) if r.timestamp <= s) for s in range(first, end)]
    expected = sum(in_force) // len(in_force) if in_force else rounds[-1].price
    assert compute_twap(rounds, Timestamp(start), Timestamp(end), Price(cap), Timestamp(end + 21),
                        TWAP_FEED, LONG_HUB) == min(expected, cap)


def test_staleness() -> None:
    last = StoredRound(RoundId(1), P, NOW)
    assert is_stale(None, NOW, Seconds(10))
    assert not is_stale(last, Timestamp(NOW + 10), Seconds(10))
    assert is_stale(last, Timestamp(NOW + 11), Seconds(10))
    assert get_fresh_price([last], Timestamp(NOW + 10), Seconds(10)) == P
    with pytest.raises(StaleFeed, match="oracle: stale"):
        get_fresh_price([last], Timestamp(NOW + 11), Seconds(10))
    with pytest.raises(StaleFeed, match="oracle: stale"):
        get_fresh_price([], NOW, Seconds(10))


# --- sources --------------------------------------------------------------------------------


def test_simulated_market_is_deterministic_integer_and_regime_switching() -> None:
    model = MarketModel(initial_price=P, start=NOW, seed=7, step=Seconds(5),
                        regimes=(Regime(0.5, 0.01), Regime(2.0, 0.05)), jump_intensity=50_000.0)
    a, b = SimulatedMarket(model), SimulatedMarket(model)
    path = [a.get_price(Timestamp(NOW + s)) for s in range(0, 20_000, 5)]
    assert path == [b.get_price(Timestamp(NOW + s)) for s in range(0, 20_000, 5)]
    assert all(isinstance(p, int) and p >= 1 for p in path)
    assert path[0] == P and len(set(path)) > 100
    assert a.get_price(Timestamp(NOW + 7)) == a.get_price(Timestamp(NOW + 5))  # holds within a step
    assert {a.get_regime(Timestamp(NOW + s)) for s in range(0, 20_000, 5)} == {0, 1}
    other = SimulatedMarket(MarketModel(initial_price=P, start=NOW, seed=8, step=Seconds(5)))
    assert [other.get_price(Timestamp(NOW + s)) for s in range(0, 2000, 5)] != path[:400]
    # jumps: some one-step moves are far beyond the diffusion's
    moves = [abs(y - x) / x for x, y in itertools.pairwise(path)]
    assert max(moves) > 0.02
    with pytest.raises(SourceUnavailable):
        a.get_price(Timestamp(NOW - 1))
    with pytest.raises(ConfigError):
        MarketModel(initial_price=Price(0), start=NOW, seed=1)
    assert isinstance(a, PriceSource) and isinstance(ConstantSource(P), PriceSource)


def test_csv_replay(tmp_path: Path) -> None:
    path = tmp_path / "eth.csv"
    path.write_text("timestamp,price\n100,3000.5\n160,3001\n\n220,2999.25\n")
    replay = CsvReplay.from_path(path, decimals=6)
    assert replay.get_price(Timestamp(100)) == 3_000_500_000
    assert replay.get_price(Timestamp(219)) == 3_001_000_000
    assert replay.get_price(Timestamp(10**10)) == 2_999_250_000
    with pytest.raises(SourceUnavailable):
        replay.get_price(Timestamp(99))
    assert CsvReplay.from_text("1,5\n2,6").get_price(Timestamp(2)) == 6
    for text, decimals in [("1,5\n1,6", 0), ("1,5\nx,6", 0), ("1,5.5", 0), ("", 0)]:
        with pytest.raises(ConfigError):
            CsvReplay.from_text(text, decimals)


def test_noisy_source_is_deterministic_and_bounded() -> None:
    base = ConstantSource(P)
    a, b = NoisySource(base, 1, BasisPoints(20)), NoisySource(base, 2, BasisPoints(20))
    pa = [a.get_price(Timestamp(NOW + s)) for s in range(200)]
    assert pa == [a.get_price(Timestamp(NOW + s)) for s in range(200)]
    assert pa != [b.get_price(Timestamp(NOW + s)) for s in range(200)]
    assert all(abs(p - P) <= P * 20 // 10_000 for p in pa)


# --- the in-process committee ---------------------------------------------------------------


def _setup(f: int, sources: list[PriceSource] | None = None) -> CommitteeSetup:
    c = _committee(f)
    members = tuple(Member(KEYS[i], sources[i] if sources else NoisySource(ConstantSource(P), i,
                                                                           BasisPoints(10)))
                    for i in range(c.n))
    return CommitteeSetup(DOMAIN, c, LIMITS, HUB, members, BasisPoints(50), Seconds(300))


@pytest.mark.parametrize("f", [1, 3])
def test_a_round_tolerates_f_silent_members_but_not_more(f: int) -> None:
    setup = _setup(f)
    leader = get_leader(setup.committee, RoundId(1))
    others = [a for a in setup.committee.members if a != leader]
    online = [leader, *others[: 2 * f]]
    outcome = run_round(setup, None, RoundId(1), NOW, online)
    assert outcome.report is not None and outcome.failure is None
    assert process_report(DOMAIN, setup.committee, LIMITS, HUB, None, outcome.report, NOW).round == 1
    assert len(outcome.report.signatures) == f + 1 and leader in outcome.report.signers
    for signer, signature in zip(outcome.report.signers, outcome.report.signatures, strict=True):
        assert recover_report_signer(DOMAIN, outcome.report.report, signature) == signer
    short = run_round(setup, None, RoundId(1), NOW, online[:-1])
    assert short.report is None and short.failure == "oracle: too few observations"
    silent_leader = run_round(setup, None, RoundId(1), NOW, others)
    assert silent_leader.report is None and silent_leader.failure == "oracle: leader silent"


def test_ticks_follow_heartbeat_and_deviation() -> None:
    prices = {NOW: P, NOW + 60: P, NOW + 120: Price(P * 101 // 100), NOW + 130: Price(P * 101 // 100)}

    class Step:
        def get_price(self, now: Timestamp) -> Price:
            return prices[max(t for t in prices if t <= now)]

    setup = _setup(1, [Step()] * 4)
    state = FeedState(next_round=RoundId(1))
    state, first = process_tick(setup, state, NOW)
    assert first is not None and first.report is not None
    r = first.report.report
    state = apply_stored_round(state, StoredRound(r.round, r.price, r.timestamp))
    assert process_tick(setup, state, Timestamp(NOW + 5)) == (state, None)     # too soon
    assert process_tick(setup, state, Timestamp(NOW + 60))[1] is None         # no trigger
    state, moved = process_tick(setup, state, Timestamp(NOW + 120))            # 1 % move
    assert moved is not None and moved.report is not None and moved.round == 2
    state = apply_stored_round(state, StoredRound(RoundId(2), moved.report.report.price,
                                                  Timestamp(NOW + 120)))
    assert process_tick(setup, state, Timestamp(NOW + 130))[1] is None
    assert process_tick(setup, state, Timestamp(NOW + 420))[1] is not None     # heartbeat


def test_run_feed_over_a_simulated_market_gives_valid_consecutive_reports() -> None:
    market = SimulatedMarket(MarketModel(initial_price=P, start=NOW, seed=3, step=Seconds(1)))
    sources: list[PriceSource] = [NoisySource(market, i, BasisPoints(5)) for i in range(7)]
    setup = _setup(2, sources)
    state, reports = run_feed(setup, NOW, Timestamp(NOW + 1800), Seconds(10))
    assert len(reports) >= 1800 // 300
    last = None
    for signed in reports:
        stored = process_report(DOMAIN, setup.committee, LIMITS, HUB, last, signed,
                                signed.report.timestamp)
        last = stored
    assert state.last == last
    # with the leaders of some rounds silent, rounds still complete (the next leader takes over)
    up = setup.committee.members[:5]
    _, partial = run_feed(setup, NOW, Timestamp(NOW + 1800), Seconds(10), online=up)
    assert partial and all(get_leader(setup.committee, s.report.round) in up for s in partial)
