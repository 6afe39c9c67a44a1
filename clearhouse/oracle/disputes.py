"""Optimistic rounds and proving stored rounds wrong: the spec of ``OracleHub.post`` and of
``OracleDisputes`` (``challenge``, ``dispute_round``, ``resolve_dispute``).

- **Optimistic post** (:func:`process_optimistic_post`): one active member states a round's price and
  timestamp, backed by its oracle stake; the same round-number, freshness and price checks as a
  report, no signatures but the transaction's.
- **Challenge** (:func:`process_challenge`): within ``dispute_window`` of an optimistic round's
  timestamp, signed observations of ``2f+1`` distinct members for its (feed, round) that all lie
  strictly above, or all strictly below, its price — or all strictly after, or all strictly before,
  its timestamp (:func:`is_quorum_disagreement`) — invalidate it; the poster is slashed and banned.
  An honest poster reports the lower medians of ``2f+1`` observations: ``f+1`` members observed at
  or below (at or above) each, and they sign one observation per round, so no ``2f+1`` members can
  all sign strictly one side of it unless one of them equivocates (itself slashable).
- **Round dispute** (:func:`process_round_dispute`, :func:`compute_dispute_outcome`): within
  ``dispute_window``, anyone asserts through ``Assertions`` that a round is wrong
  (:func:`compute_round_claim`), with the report signatures as evidence of who vouched for it. The
  assertion's outcome decides: truthful → the round is invalid and the accused are slashed and
  banned; otherwise the round stands for good.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

from eth_utils import to_canonical_address

from clearhouse.disputes import (
    SettlementPayouts,
    SlashOutcome,
    Stake,
    compute_slash,
)
from clearhouse.errors import (
    DuplicateSigner,
    InsufficientQuorum,
    InvalidDispute,
    NotAMember,
    StaleRound,
    UnknownFeed,
)
from clearhouse.messages import Domain, Observation, compute_observation_digest
from clearhouse.messages.checks import compute_checksum_address
from clearhouse.messages.fast import recover_address_bytes
from clearhouse.messages.keccak import keccak256
from clearhouse.oracle.config import (
    BPS,
    Committee,
    FeedConfig,
    HubParams,
    compute_observation_quorum,
    compute_signature_quorum,
    is_member,
)
from clearhouse.oracle.observations import SignedObservation
from clearhouse.oracle.report import (
    check_next_round,
    check_round_number,
    compute_lower_median,
    compute_report_digest_of,
)
from clearhouse.oracle.twap import StoredRound
from clearhouse.types import Address, Amount, Digest, FeedId, Price, RoundId, Seconds, Timestamp

__all__ = [
    "ROUND_CLAIM_TYPE",
    "ROUND_CLAIM_TYPEHASH",
    "DisputeOutcome",
    "ReportEvidence",
    "compute_dispute_outcome",
    "compute_latest_resolution",
    "compute_optimistic_round",
    "compute_round_claim",
    "is_challenge_open",
    "is_quorum_disagreement",
    "process_challenge",
    "process_optimistic_post",
    "process_round_dispute",
]

ROUND_CLAIM_TYPE: Final = ("RoundWrong(address hub,bytes32 feedId,uint256 index,uint64 round,"
                           "uint256 price,uint64 timestamp)")
"""What a round dispute asserts: round ``index`` of ``feedId`` on ``hub``, stored as (round, price,
timestamp), is wrong (``OracleDisputes.ROUND_CLAIM_TYPEHASH``)."""
ROUND_CLAIM_TYPEHASH: Final = keccak256(ROUND_CLAIM_TYPE.encode())
"""``keccak256(ROUND_CLAIM_TYPE)``."""


@dataclass(frozen=True, slots=True)
class ReportEvidence:
    """Who vouched for a verified round: signatures over the report that stored it."""

    observations_hash: Digest
    """That report's ``observationsHash`` (the observations themselves are not needed)."""
    signatures: tuple[bytes, ...]
    """At least ``f+1`` signatures of distinct members over its digest."""


@dataclass(frozen=True, slots=True)
class DisputeOutcome:
    """Every token a resolved round dispute moves, to the wei."""

    invalid: bool
    """Whether the round was found wrong (the assertion settled truthful)."""
    assertion: SettlementPayouts
    """How ``Assertions`` settled the claim (the module is its asserter)."""
    slashes: Mapping[Address, SlashOutcome] = field(default_factory=dict)
    """Each accused member's slash (empty unless the round was found wrong)."""

    @property
    def disputer_credit(self) -> Amount:
        """Credited to the disputer: its share of the bonds plus every slashing reward."""
        return Amount(self.assertion.asserter + sum(s.reward for s in self.slashes.values()))

    @property
    def insurance(self) -> Amount:
        """What the slashes add to ``Bonds``' insurance fund."""
        return Amount(sum(s.insurance for s in self.slashes.values()))


def process_optimistic_post(committee: Committee | None, feed: FeedConfig, hub: HubParams,
                            last: StoredRound | None, poster: Address, poster_stake: Amount,
                            round_id: RoundId, price: Price, timestamp: Timestamp,
                            now: Timestamp) -> StoredRound:
    """Check an optimistic post exactly as ``OracleHub.post`` does; return the round it stores.

    Checks, in order: a committee, an active member with at least ``min_stake`` of active oracle
    stake, round number (newer, not too far ahead), timestamp not in the future and at most
    ``max_age`` old, then :func:`check_next_round` (interval, bounds, deviation).
    """
    if committee is None:
        raise UnknownFeed("oracle: unknown feed", field="feed_id")
    if not is_member(committee, poster):
        raise NotAMember("oracle: not a member", field="poster", signer=poster)
    if poster_stake < hub.min_stake:
        raise NotAMember("oracle: insufficient stake", field="poster", signer=poster)
    check_round_number(round_id, last)
    if timestamp > now:
        raise StaleRound("oracle: future timestamp", field="timestamp")
    if timestamp + feed.max_age < now:
        raise StaleRound("oracle: stale observation", field="timestamp")
    check_next_round(feed, hub, last, price, timestamp)
    return StoredRound(round_id, price, timestamp, optimistic=True,
                       poster=committee.members.index(poster))


def compute_optimistic_round(committee: Committee, round_id: RoundId, poster: Address,
                             selected: Sequence[SignedObservation]) -> StoredRound:
    """What an honest poster posts: the lower medians of the price and of the timestamp of the
    ``2f+1`` (or more) observations it collected for the round, exactly as a report would carry.
    Such a post can never be challenged unless a member equivocates."""
    if len(selected) < compute_observation_quorum(committee.f):
        raise InsufficientQuorum("oracle: too few observations", field="observations")
    return StoredRound(round_id, Price(compute_lower_median([s.observation.price for s in selected])),
                       Timestamp(compute_lower_median([s.observation.timestamp for s in selected])),
                       optimistic=True, poster=committee.members.index(poster))


def is_challenge_open(stored: StoredRound, hub: HubParams, now: Timestamp) -> bool:
    """Whether a round can still be challenged or disputed at ``now``."""
    return now <= stored.timestamp + hub.dispute_window


def is_quorum_disagreement(stored: StoredRound, observations: Sequence[Observation]) -> bool:
    """Whether every observation lies strictly on one side of the round's price, or every one
    strictly on one side of its timestamp."""
    prices = [o.price for o in observations]
    times = [o.timestamp for o in observations]
    return (all(p > stored.price for p in prices) or all(p < stored.price for p in prices)
            or all(t > stored.timestamp for t in times) or all(t < stored.timestamp for t in times))


def _recover(digest: Digest, signature: bytes) -> Address:
    return compute_checksum_address(recover_address_bytes(digest, signature))


def _count_member(committee: Committee, signer: Address, seen: set[Address], duplicate: str) -> None:
    # Membership of the committee the round was stored under: a later removal does not matter.
    if signer not in committee.members:
        raise NotAMember("oracle: not a member", field="signature", signer=signer)
    if signer in seen:
        raise DuplicateSigner(duplicate, field="signature", signer=signer)
    seen.add(signer)


def _check_open(stored: StoredRound, hub: HubParams, now: Timestamp, late: str) -> None:
    if stored.invalid:
        raise InvalidDispute("oracle: round invalid", field="index", round=stored.round)
    if not is_challenge_open(stored, hub, now):
        raise InvalidDispute(late, field="index", round=stored.round)


def process_challenge(domain: Domain, committee: Committee, hub: HubParams, stored: StoredRound,
                      observations: Sequence[SignedObservation], now: Timestamp) -> Address:
    """Check a challenge of ``stored`` exactly as ``OracleDisputes.challenge`` does; return the poster
    it slashes. ``committee`` is the one the round was stored under.

    Checks, in order: optimistic, not invalid, not disputed, within ``dispute_window``; at least
    ``2f+1`` observations; each a canonical signature (over the ``Observation`` rebuilt with the
    round's feed and number) by a member of that committee, no member twice; expiry is not checked
    (evidence, not a report); they disagree with the round (:func:`is_quorum_disagreement`).
    """
    if not stored.optimistic:
        raise InvalidDispute("oracle: not optimistic", field="index", round=stored.round)
    if stored.invalid:
        raise InvalidDispute("oracle: round invalid", field="index", round=stored.round)
    if stored.disputed:
        raise InvalidDispute("oracle: round disputed", field="index", round=stored.round)
    if not is_challenge_open(stored, hub, now):
        raise InvalidDispute("oracle: challenge period over", field="index", round=stored.round)
    if len(observations) < compute_observation_quorum(committee.f):
        raise InsufficientQuorum("oracle: too few observations", field="observations")
    seen: set[Address] = set()
    rebuilt = []
    for signed in observations:
        o = signed.observation
        obs = Observation(feed_id=Digest(committee.feed_id), round=stored.round, price=o.price,
                          timestamp=o.timestamp, expiry=o.expiry)
        _count_member(committee, _recover(compute_observation_digest(domain, obs), signed.signature),
                      seen, "oracle: duplicate observation")
        rebuilt.append(obs)
    if not is_quorum_disagreement(stored, rebuilt):
        raise InvalidDispute("oracle: quorum agrees", field="observations", round=stored.round)
    return committee.members[stored.poster]


def compute_round_claim(hub: Address, feed_id: FeedId, index: int, stored: StoredRound) -> Digest:
    """``keccak256(abi_encode(ROUND_CLAIM_TYPEHASH, hub, feed_id, index, round, price, timestamp))``:
    the claim a dispute of round ``index`` asserts (``OracleDisputes.round_claim``)."""
    return keccak256(b"".join((
        ROUND_CLAIM_TYPEHASH,
        to_canonical_address(hub).rjust(32, b"\x00"),
        bytes(feed_id),
        index.to_bytes(32, "big"),
        stored.round.to_bytes(32, "big"),
        stored.price.to_bytes(32, "big"),
        stored.timestamp.to_bytes(32, "big"),
    )))


def process_round_dispute(domain: Domain, committee: Committee, hub: HubParams, stored: StoredRound,
                          evidence: ReportEvidence | None, already_disputed: bool,
                          now: Timestamp) -> tuple[Address, ...]:
    """Check a round dispute exactly as ``OracleDisputes.dispute_round`` does; return the accused.

    ``committee`` is the one the round was stored under. Checks, in order: never disputed before,
    not invalid, within ``dispute_window``; for a verified round, at least ``f+1`` canonical
    signatures by distinct members of that committee over the report digest of the round's
    (round, price, timestamp) with the evidence's ``observationsHash``. The accused are those
    signers (in committee order), or the poster of an optimistic round.
    """
    if already_disputed:
        raise InvalidDispute("oracle: round already disputed", field="index", round=stored.round)
    _check_open(stored, hub, now, "oracle: dispute window over")
    if stored.optimistic:
        return (committee.members[stored.poster],)
    if evidence is None:
        raise InsufficientQuorum("oracle: too few signatures", field="signatures")
    digest = compute_report_digest_of(domain, committee.config_digest, committee.feed_id, stored.round,
                                      stored.price, stored.timestamp, evidence.observations_hash)
    seen: set[Address] = set()
    for signature in evidence.signatures:
        _count_member(committee, _recover(digest, signature), seen, "oracle: duplicate signer")
    if len(seen) < compute_signature_quorum(committee.f):
        raise InsufficientQuorum("oracle: too few signatures", field="signatures")
    return tuple(m for m in committee.members if m in seen)


def compute_latest_resolution(hub: HubParams, commit_period: Seconds, reveal_period: Seconds) -> Seconds:
    """Seconds after a round's timestamp by which any dispute of it can be resolved: disputed at the
    end of ``dispute_window``, defended at the end of its liveness, then the arbitration's commit and
    reveal phases. ``Bonds.unbonding_delay`` must be longer (``OracleDisputes`` checks it), so the
    stake of whoever vouched for the round is still there when it is slashed."""
    return Seconds(hub.dispute_window + hub.dispute_liveness + commit_period + reveal_period)


def compute_dispute_outcome(assertion: SettlementPayouts, accused: Mapping[Address, Stake],
                            hub: HubParams) -> DisputeOutcome:
    """What ``resolve_dispute`` does once ``Assertions`` settled the claim as ``assertion``.

    Truthful: every accused member (with its stake before, in committee order) is slashed
    ``min(slash_amount, slashable)`` and ``floor(slashed · prover_reward_bps / 10⁴)`` of it is the
    disputer's; the rest goes to the insurance fund. Otherwise nobody is slashed and the round
    stands. Either way the disputer is credited the asserter's payout.
    """
    if not assertion.truthful:
        return DisputeOutcome(False, assertion)
    slashes: dict[Address, SlashOutcome] = {}
    for member, stake in accused.items():
        amount = Amount(min(hub.slash_amount, stake.slashable))
        slashes[member] = compute_slash(stake, amount, Amount(amount * hub.prover_reward_bps // BPS))
    return DisputeOutcome(True, assertion, slashes)
