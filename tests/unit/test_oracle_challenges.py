"""clearhouse.oracle.disputes and .encoding without a chain: optimistic posts, challenges, round
disputes and their outcomes, the relations between the dispute parameters, and the compact
transport encoding."""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from clearhouse.disputes import Stake, compute_dispute_payouts, compute_undisputed_payouts
from clearhouse.errors import (
    ClearhouseError,
    InsufficientQuorum,
    InvalidDispute,
    InvalidReport,
    InvalidSignature,
    NotAMember,
    PriceRejected,
    StaleFeed,
    StaleRound,
    UnknownFeed,
)
from clearhouse.messages import Domain, Observation
from clearhouse.messages.eip712 import keccak256
from clearhouse.oracle import (
    MAX_PRICE,
    Committee,
    FeedConfig,
    HubParams,
    ReportEvidence,
    SignedObservation,
    StoredRound,
    compute_dispute_outcome,
    compute_latest_resolution,
    compute_member_address,
    compute_observation,
    compute_observations_hash,
    compute_optimistic_round,
    compute_report,
    compute_round_claim,
    compute_signed_report,
    get_fresh_price,
    is_quorum_disagreement,
    process_challenge,
    process_optimistic_post,
    process_round_dispute,
    select_observations,
    sign_observation,
    sign_report,
)
from clearhouse.oracle.encoding import (
    POSITION_NONE,
    REPORT_SIGNED,
    compute_compact_signature,
    compute_observation_word,
    compute_reference_byte,
    compute_references,
    compute_signer_position,
    compute_transmit_args,
)
from clearhouse.sim.oracle_hub import DEFAULT_DISPUTES, DEFAULT_FEED, DEFAULT_HUB
from clearhouse.types import (
    Address,
    Amount,
    BasisPoints,
    ChainId,
    Digest,
    FeedId,
    Price,
    RoundId,
    Seconds,
    Timestamp,
)

USDC = 10**6
P = Price(3_000 * USDC)
NOW = Timestamp(1_790_000_000)
KEYS = [keccak256(b"member" + bytes([i])) for i in range(7)]
ADDRESSES = [compute_member_address(k) for k in KEYS]
OUTSIDER = keccak256(b"outsider")
FEED = FeedId(keccak256(b"ETH/USDC"))
DOMAIN = Domain("clearhouse", "1", ChainId(31337), Address("0x" + "ab" * 20))
COMMITTEE = Committee(FEED, tuple(ADDRESSES[:4]), 1, 1)
LIMITS = FeedConfig(Price(1), Price(10**15), BasisPoints(0), Seconds(120), Seconds(600))
HUB = HubParams(Seconds(8), Seconds(1800), min_stake=Amount(100), slash_amount=Amount(60),
                prover_reward_bps=BasisPoints(2_000), dispute_window=Seconds(600),
                dispute_bond=Amount(10), dispute_liveness=Seconds(3_600))
LAST = StoredRound(RoundId(4), P, Timestamp(NOW - 30))
POSTED = StoredRound(RoundId(5), Price(2 * P), Timestamp(NOW - 10), optimistic=True, poster=1)


def _obs(key: bytes, price: int, ts: int = NOW, round_id: int = 5) -> SignedObservation:
    return sign_observation(DOMAIN, compute_observation(FEED, RoundId(round_id), Price(price),
                                                        Timestamp(ts), Seconds(60)), key)


def _reason(fn: Callable[[], object]) -> str | None:
    try:
        fn()
    except ClearhouseError as error:
        return error.message
    return None


# --- optimistic posts ----------------------------------------------------------------------


def test_an_optimistic_post_is_a_round_by_one_staked_member() -> None:
    stored = process_optimistic_post(COMMITTEE, LIMITS, HUB, LAST, ADDRESSES[2], Amount(100), RoundId(5),
                                     Price(P + 1), Timestamp(NOW - 5), NOW)
    assert stored == StoredRound(RoundId(5), Price(P + 1), Timestamp(NOW - 5), optimistic=True, poster=2)


@pytest.mark.parametrize(("kwargs", "error", "reason"), [
    ({"committee": None}, UnknownFeed, "oracle: unknown feed"),
    ({"poster": compute_member_address(OUTSIDER)}, NotAMember, "oracle: not a member"),
    ({"committee": dataclasses.replace(COMMITTEE, removed=frozenset({ADDRESSES[2]}))}, NotAMember,
     "oracle: not a member"),
    ({"stake": 99}, NotAMember, "oracle: insufficient stake"),
    ({"round_id": 4}, StaleRound, "oracle: old round"),
    ({"round_id": 4 + 2**16 + 1}, StaleRound, "oracle: round too far ahead"),
    ({"timestamp": NOW + 1}, StaleRound, "oracle: future timestamp"),
    ({"timestamp": NOW - 121}, StaleRound, "oracle: stale observation"),
    ({"timestamp": NOW - 23}, StaleRound, "oracle: too soon"),
    ({"price": 10**15 + 1}, PriceRejected, "oracle: price out of bounds"),
])
def test_optimistic_post_refusals(kwargs: dict[str, object], error: type[Exception], reason: str) -> None:
    args: dict[str, object] = {"committee": COMMITTEE, "poster": ADDRESSES[2], "stake": 100, "round_id": 5,
                               "price": P, "timestamp": NOW - 5}
    args.update(kwargs)
    with pytest.raises(error, match=reason):
        process_optimistic_post(args["committee"], LIMITS, HUB, LAST, args["poster"],  # type: ignore[arg-type]
                                args["stake"], args["round_id"], args["price"],  # type: ignore[arg-type]
                                args["timestamp"], NOW)  # type: ignore[arg-type]


def test_the_deviation_limit_ignores_a_round_found_invalid() -> None:
    feed = dataclasses.replace(LIMITS, max_deviation_bps=BasisPoints(1_000))
    far = Price(2 * P)
    with pytest.raises(PriceRejected, match="deviation too large"):
        process_optimistic_post(COMMITTEE, feed, HUB, LAST, ADDRESSES[2], Amount(100), RoundId(5), far,
                                Timestamp(NOW - 5), NOW)
    invalid = dataclasses.replace(LAST, invalid=True)
    process_optimistic_post(COMMITTEE, feed, HUB, invalid, ADDRESSES[2], Amount(100), RoundId(5), far,
                            Timestamp(NOW - 5), NOW)


# --- challenges ----------------------------------------------------------------------------


def _at(price: int, ts: int) -> Observation:
    return compute_observation(FEED, RoundId(5), Price(price), Timestamp(ts), Seconds(60))


@pytest.mark.parametrize(("observations", "disagree"), [
    ([_at(P, NOW - 10)] * 3, True),  # all below the posted 2P
    ([_at(5 * P, NOW - 10)] * 3, True),  # all above
    ([_at(2 * P, NOW - 5)] * 3, True),  # the price, but all later
    ([_at(2 * P, NOW - 15)] * 3, True),  # all earlier
    ([_at(P, NOW - 10), _at(5 * P, NOW - 10), _at(P, NOW - 10)], False),
    ([_at(P, NOW - 11), _at(P, NOW - 10), _at(P, NOW - 9)], True),  # prices still all below
    ([_at(2 * P, NOW - 11), _at(2 * P, NOW - 10), _at(2 * P, NOW - 9)], False),
])
def test_quorum_disagreement(observations: list[Observation], disagree: bool) -> None:
    assert is_quorum_disagreement(POSTED, observations) is disagree


def test_a_challenge_returns_the_poster() -> None:
    observations = [_obs(KEYS[i], P) for i in (0, 2, 3)]
    assert process_challenge(DOMAIN, COMMITTEE, HUB, POSTED, observations, NOW) == ADDRESSES[1]


@pytest.mark.parametrize(("change", "observations", "reason"), [
    ({"optimistic": False}, [0, 2, 3], "oracle: not optimistic"),
    ({"invalid": True}, [0, 2, 3], "oracle: round invalid"),
    ({"disputed": True}, [0, 2, 3], "oracle: round disputed"),
    ({"timestamp": Timestamp(NOW - 601)}, [0, 2, 3], "oracle: challenge period over"),
    ({}, [0, 2], "oracle: too few observations"),
    ({}, [0, 2, 2], "oracle: duplicate observation"),
    ({}, [0, 2, -1], "oracle: not a member"),
])
def test_challenge_refusals(change: dict[str, object], observations: list[int], reason: str) -> None:
    stored = dataclasses.replace(POSTED, **change)  # type: ignore[arg-type]
    signed = [_obs(OUTSIDER if i < 0 else KEYS[i], P + 10 * abs(i)) for i in observations]
    assert _reason(lambda: process_challenge(DOMAIN, COMMITTEE, HUB, stored, signed, NOW)) == reason


@given(f=st.sampled_from([1, 2]), data=st.data())
def test_an_honest_poster_cannot_be_challenged_without_an_equivocation(f: int, data: st.DataObject) -> None:
    """Each member signs one observation (no equivocation, faulty ones anything); the poster posts
    the lower medians of any 2f+1 of them. No 2f+1 of the same observations disagree with it: f+1
    of its own lie at or below (at or above) each median, and any 2f+1 of 3f+1 include one of them."""
    n = 3 * f + 1
    committee = Committee(FEED, tuple(ADDRESSES[:n]), f, 1)
    prices = data.draw(st.lists(st.integers(1, 10**9), min_size=n, max_size=n))
    times = data.draw(st.lists(st.integers(NOW - 100, NOW), min_size=n, max_size=n))
    signed = [_obs(KEYS[i], prices[i], times[i]) for i in range(n)]
    chosen = data.draw(st.sets(st.integers(0, n - 1), min_size=2 * f + 1, max_size=2 * f + 1))
    posted = compute_optimistic_round(committee, RoundId(5), ADDRESSES[0], [signed[i] for i in chosen])
    for quorum in itertools.combinations(signed, 2 * f + 1):
        assert not is_quorum_disagreement(posted, [o.observation for o in quorum])


def test_observations_of_another_round_prove_nothing() -> None:
    signed = [_obs(KEYS[i], P, round_id=6) for i in (0, 2, 3)]
    with pytest.raises(NotAMember):
        process_challenge(DOMAIN, COMMITTEE, HUB, POSTED, signed, NOW)


def test_removal_after_the_round_does_not_void_evidence() -> None:
    removed = dataclasses.replace(COMMITTEE, removed=frozenset({ADDRESSES[0]}))
    observations = [_obs(KEYS[i], P) for i in (0, 2, 3)]
    assert process_challenge(DOMAIN, removed, HUB, POSTED, observations, NOW) == ADDRESSES[1]


# --- round disputes ------------------------------------------------------------------------


def _verified() -> tuple[StoredRound, ReportEvidence]:
    observations = [_obs(KEYS[i], P + i, ts=NOW - 20, round_id=4) for i in range(3)]
    report = compute_report(COMMITTEE, RoundId(4), select_observations(COMMITTEE, observations))
    signatures = tuple(sign_report(DOMAIN, report, KEYS[i]) for i in (2, 0))
    stored = StoredRound(report.round, report.price, report.timestamp)
    return stored, ReportEvidence(compute_observations_hash(DOMAIN, report), signatures)


def test_a_round_dispute_accuses_the_report_signers_or_the_poster() -> None:
    stored, evidence = _verified()
    assert process_round_dispute(DOMAIN, COMMITTEE, HUB, stored, evidence, False, NOW) == \
        (ADDRESSES[0], ADDRESSES[2])
    assert process_round_dispute(DOMAIN, COMMITTEE, HUB, POSTED, None, False, NOW) == (ADDRESSES[1],)


def test_round_dispute_refusals() -> None:
    stored, evidence = _verified()
    cases: list[tuple[StoredRound, ReportEvidence | None, bool, type[Exception], str]] = [
        (stored, evidence, True, InvalidDispute, "oracle: round already disputed"),
        (dataclasses.replace(stored, invalid=True), evidence, False, InvalidDispute, "oracle: round invalid"),
        (dataclasses.replace(stored, timestamp=Timestamp(NOW - 601)), evidence, False, InvalidDispute,
         "oracle: dispute window over"),
        (stored, None, False, InsufficientQuorum, "oracle: too few signatures"),
        (stored, dataclasses.replace(evidence, signatures=evidence.signatures[:1]), False,
         InsufficientQuorum, "oracle: too few signatures"),
        (stored, dataclasses.replace(evidence, signatures=(evidence.signatures[0],) * 2), False,
         ClearhouseError, "oracle: duplicate signer"),
        (dataclasses.replace(stored, price=Price(P + 7)), evidence, False, NotAMember,
         "oracle: not a member"),
    ]
    for round_, evidence_, disputed, error, reason in cases:
        with pytest.raises(error, match=reason):
            process_round_dispute(DOMAIN, COMMITTEE, HUB, round_, evidence_, disputed, NOW)


def test_a_disputed_or_invalid_last_round_is_no_fresh_price() -> None:
    assert get_fresh_price([LAST], NOW, Seconds(600)) == P
    assert get_fresh_price([POSTED], NOW, Seconds(600)) == 2 * P  # fresh, not final
    for status in ({"disputed": True}, {"invalid": True}):
        with pytest.raises(StaleFeed, match="last round disputed"):
            get_fresh_price([dataclasses.replace(LAST, **status)], NOW, Seconds(600))  # type: ignore[arg-type]


def test_the_round_claim_binds_hub_feed_index_and_content() -> None:
    hub = Address("0x" + "cd" * 20)
    claim = compute_round_claim(hub, FEED, 3, POSTED)
    assert claim != compute_round_claim(Address("0x" + "ce" * 20), FEED, 3, POSTED)
    assert claim != compute_round_claim(hub, FEED, 4, POSTED)
    assert claim != compute_round_claim(hub, FEED, 3, dataclasses.replace(POSTED, price=Price(P)))


@given(stakes=st.lists(st.tuples(st.integers(0, 200), st.integers(0, 200)), min_size=1, max_size=11),
       slash=st.integers(0, 300), bps=st.integers(0, 10_000), bond=st.integers(1, 10**6),
       reward_bps=st.integers(0, 10_000), truthful=st.booleans())
def test_a_dispute_outcome_never_mints(stakes: list[tuple[int, int]], slash: int, bps: int, bond: int,
                                       reward_bps: int, truthful: bool) -> None:
    hub = dataclasses.replace(HUB, slash_amount=Amount(slash), prover_reward_bps=BasisPoints(bps))
    accused = {ADDRESSES[i % 7] + str(i): Stake(Amount(a), Amount(u)) for i, (a, u) in enumerate(stakes)}
    if truthful:
        assertion = compute_undisputed_payouts(Amount(bond))
    else:
        assertion = compute_dispute_payouts(Amount(bond), BasisPoints(reward_bps), [], Amount(1),
                                            BasisPoints(0))
    outcome = compute_dispute_outcome(assertion, accused, hub)  # type: ignore[arg-type]
    assert outcome.invalid is truthful
    assert bool(outcome.slashes) is truthful
    for member, s in outcome.slashes.items():
        before = accused[member]
        assert s.slashed == min(slash, before.slashable)
        assert s.reward == s.slashed * bps // 10_000 <= s.slashed
        assert s.slashed + s.stake_after.slashable == before.slashable
    assert outcome.disputer_credit + outcome.insurance == \
        assertion.asserter + sum(s.slashed for s in outcome.slashes.values())


def test_parameter_relations_of_the_oracle_disputes() -> None:
    """Economic relations (STYLE §5): stake that vouched for a round is still in Bonds when any
    dispute of it resolves; a dispute bond meets Assertions' minimum; a feed's observations are
    never older than the dispute window; the prover's reward is a share of what is slashed."""
    latest = compute_latest_resolution(DEFAULT_HUB, DEFAULT_DISPUTES.commit_period,
                                       DEFAULT_DISPUTES.reveal_period)
    assert DEFAULT_DISPUTES.unbonding_delay > latest
    assert DEFAULT_HUB.dispute_bond >= DEFAULT_DISPUTES.min_bond
    assert DEFAULT_HUB.dispute_liveness >= DEFAULT_DISPUTES.min_liveness
    assert DEFAULT_FEED.max_age <= DEFAULT_HUB.dispute_window
    assert DEFAULT_HUB.prover_reward_bps <= 10_000
    assert DEFAULT_HUB.slash_amount <= DEFAULT_HUB.min_stake  # a member can always pay one fault


# --- transport encoding --------------------------------------------------------------------


def test_compact_signatures_and_reference_bytes() -> None:
    signed = _obs(KEYS[0], P)
    compact = compute_compact_signature(signed.signature)
    assert compact.r.to_bytes(32, "big") + compact.s.to_bytes(32, "big") + bytes([27 + compact.parity]) \
        == signed.signature
    with pytest.raises(InvalidSignature, match="bad signature length"):
        compute_compact_signature(signed.signature[:64])
    with pytest.raises(InvalidSignature, match="bad v"):
        compute_compact_signature(signed.signature[:64] + b"\x01")
    assert compute_reference_byte(30, 1) == 30 | 128
    with pytest.raises(ClearhouseError):
        compute_reference_byte(32, 0)
    assert compute_references([1, 2, 255]) == 1 | 2 << 8 | 255 << 16
    assert compute_signer_position(COMMITTEE, ADDRESSES[3]) == 3
    assert compute_signer_position(COMMITTEE, compute_member_address(OUTSIDER)) == POSITION_NONE
    assert compute_signer_position(COMMITTEE, None) == POSITION_NONE


def test_observation_words() -> None:
    word = compute_observation_word(Price(MAX_PRICE), Timestamp(2**64 - 1), Timestamp(7))
    assert (word >> 128, (word >> 64) & (2**64 - 1), word & (2**64 - 1)) == (MAX_PRICE, 2**64 - 1, 7)
    with pytest.raises(PriceRejected):
        compute_observation_word(Price(MAX_PRICE + 1), NOW, NOW)


def test_transmit_args_name_every_signer_by_position() -> None:
    observations = [_obs(KEYS[i], P + i, round_id=4) for i in (3, 0, 2)]
    report = compute_report(COMMITTEE, RoundId(4), select_observations(COMMITTEE, observations))
    signed = compute_signed_report(report, {ADDRESSES[i]: sign_report(DOMAIN, report, KEYS[i])
                                            for i in (2, 0)})
    args = compute_transmit_args(DOMAIN, COMMITTEE, signed)
    references = [(args.observers >> (8 * j)) & 255 for j in range(3)]
    members = [o.signer for o in sorted(observations, key=lambda o: (o.observation.price,
                                                                     COMMITTEE.members.index(o.signer)))]
    assert [r & 31 for r in references] == [COMMITTEE.members.index(m) for m in members]
    # Members 2 and 0 attest their own observations with their report signatures (flag bit 6).
    assert [bool(r & REPORT_SIGNED) for r in references] == [m in (ADDRESSES[2], ADDRESSES[0])
                                                             for m in members]
    assert args.observers >> 24 == 0
    assert args.config.to_abi() == (1, 1, list(COMMITTEE.members))
    assert args.to_abi()[1] == (1, 1, [int(m, 16) for m in COMMITTEE.members])
    assert [o[0] for o in args.report[4]] == [compute_observation_word(o.price, o.timestamp, o.expiry)
                                              for o in report.observations]
    assert [(o[1], o[2]) for o in args.report[4]] == [
        compute_compact_signature(o.signature).to_abi() for o in signed.report.observations]
    assert Digest(report.config_digest) == COMMITTEE.config_digest
    with pytest.raises(InvalidReport, match="report signer has no observation"):
        compute_signed_report(report, {ADDRESSES[1]: sign_report(DOMAIN, report, KEYS[1])})
