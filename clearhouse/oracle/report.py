"""Oracle reports: what the round's leader builds, what members sign, and what ``OracleHub.transmit``
accepts — :func:`process_report` is the spec of ``transmit``, same checks, same order, same reasons.

A report carries ``2f+1`` (or more) member observations of one (feed, round), sorted by price; its
price is their lower median and its timestamp the lower median of their timestamps, so with at
most ``f`` faulty members both lie inside the honest members' range. The report digest (EIP-712 in
the hub's domain) binds every observation to its member::

    Report(bytes32 configDigest,bytes32 feedId,uint64 round,uint256 price,uint64 timestamp,
           bytes32 observationsHash)
    observationsHash = keccak256(digest(obs_1) ‖ … ‖ digest(obs_k) ‖ member_1 ‖ … ‖ member_k)
                       (EIP-712 ``Observation`` digests and 32-byte members, report order)

so a member's signature over it also states its own observation. Each observation travels with one
signature of its member: at least ``f+1`` with a report signature, the others with their
``Observation`` signature — ``2f+1`` signatures in all, one ``ecrecover`` each on-chain. Two
different observations stated by one member for one round, by either kind of signature, are
equivocation (:class:`ReportStatement`, ``OracleHub.prove_equivocation``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Final

from clearhouse.errors import (
    DuplicateSigner,
    ExpiredMessage,
    InsufficientQuorum,
    InvalidMessage,
    InvalidReport,
    NotAMember,
    OracleError,
    PriceRejected,
    StaleRound,
    UnknownFeed,
    WrongConfig,
)
from clearhouse.messages import Domain, Observation, compute_observation_digest, sign_digest
from clearhouse.messages.checks import compute_checksum_address
from clearhouse.messages.fast import REASON_EXPIRED, recover_address_bytes
from clearhouse.messages.keccak import keccak256
from clearhouse.oracle.config import (
    BPS,
    MAX_PRICE,
    MAX_ROUND_GAP,
    Committee,
    FeedConfig,
    HubParams,
    compute_observation_quorum,
    compute_signature_quorum,
    get_member_index,
    is_member,
)
from clearhouse.oracle.observations import SignedObservation
from clearhouse.oracle.twap import StoredRound
from clearhouse.types import Address, Digest, FeedId, Price, RoundId, Timestamp

__all__ = [
    "REPORT_TYPEHASH",
    "Report",
    "ReportObservation",
    "ReportStatement",
    "SignedReport",
    "check_next_round",
    "check_round_number",
    "compute_lower_median",
    "compute_observations_hash",
    "compute_report",
    "compute_report_digest",
    "compute_report_digest_of",
    "compute_report_observation",
    "compute_report_statements",
    "compute_signed_report",
    "is_report_acceptable",
    "process_report",
    "process_report_body",
    "recover_report_signer",
    "recover_statement_signer",
    "select_observations",
    "sign_report",
]

REPORT_TYPE: Final = ("Report(bytes32 configDigest,bytes32 feedId,uint64 round,uint256 price,"
                      "uint64 timestamp,bytes32 observationsHash)")
"""EIP-712 ``encodeType`` of the report members sign."""
REPORT_TYPEHASH: Final = keccak256(REPORT_TYPE.encode())
"""``keccak256(REPORT_TYPE)`` (``OracleHub.REPORT_TYPEHASH``)."""


@dataclass(frozen=True, slots=True)
class ReportObservation:
    """One member's observation as a report carries it: feed and round come from the report."""

    price: Price
    """Observed price (uint256)."""
    timestamp: Timestamp
    """When the member observed it (uint64)."""
    expiry: Timestamp
    """Last second it may enter a stored report (uint64)."""
    member: Address
    """The member that observed it: the report digest binds the observation to it."""
    signature: bytes
    """The member's signature: over the full ``Observation`` digest, or (``signs_report``) over
    the report digest. Neither enters the report digest."""
    signs_report: bool = False
    """Whether ``signature`` is the member's report signature, which attests this, its own
    observation (it then needs no ``Observation`` signature)."""


@dataclass(frozen=True, slots=True)
class Report:
    """A round's report, before or without its signatures."""

    config_digest: Digest
    """The committee configuration the report was built under."""
    feed_id: FeedId
    """The feed."""
    round: RoundId
    """The round (strictly above the last stored one)."""
    price: Price
    """Lower median of the observations' prices."""
    timestamp: Timestamp
    """Lower median of the observations' timestamps: the round's time in the TWAP."""
    observations: tuple[ReportObservation, ...]
    """At least ``2f+1`` observations of distinct members, sorted by price (ties in any order);
    how they travel on-chain is :mod:`clearhouse.oracle.encoding`."""


@dataclass(frozen=True, slots=True)
class SignedReport:
    """A report ready to transmit: at least ``f+1`` of its observations carry their member's
    report signature (:func:`compute_signed_report`)."""

    report: Report
    """The report, its observations each with its member's one signature."""

    @property
    def signatures(self) -> tuple[bytes, ...]:
        """The report signatures, in report order (the evidence a round dispute carries)."""
        return tuple(o.signature for o in self.report.observations if o.signs_report)

    @property
    def signers(self) -> tuple[Address, ...]:
        """The members whose report signatures it carries, in report order."""
        return tuple(o.member for o in self.report.observations if o.signs_report)


@dataclass(frozen=True, slots=True)
class ReportStatement:
    """A member's report signature read as its statement of its own observation: entry ``index``
    of ``report``. Like a :class:`~clearhouse.oracle.observations.SignedObservation` it has a
    ``signer``, an ``observation`` and a ``signature``, so both kinds meet in an equivocation proof."""

    report: Report
    """The report it signed (observation signatures are not needed, only the observations)."""
    index: int
    """The position in ``report.observations`` of the signer's own observation."""
    signature: bytes
    """The member's signature over the report digest."""

    @property
    def signer(self) -> Address:
        """The member the report names for entry ``index`` (on-chain: the recovered signer)."""
        return self.report.observations[self.index].member

    @property
    def observation(self) -> Observation:
        """The observation the signature states for its signer."""
        return compute_observation(self.report.feed_id, self.report.round, self.report.observations[self.index])


def compute_lower_median(values: Sequence[int]) -> int:
    """The lower median ``sorted(values)[(k - 1) // 2]``: always one of the values, no rounding.

    Of ``k >= 2f+1`` values with at most ``f`` faulty, at least ``f+1`` lie at or below it and at
    least ``f+1`` at or above it, so it lies between two honest values.
    """
    if not values:
        raise InsufficientQuorum("oracle: too few observations", field="observations")
    return sorted(values)[(len(values) - 1) // 2]


def compute_observation(report_feed: FeedId, round_id: RoundId, o: ReportObservation) -> Observation:
    """The full ``Observation`` message a report observation stands for."""
    return Observation(feed_id=Digest(report_feed), round=round_id, price=o.price,
                       timestamp=o.timestamp, expiry=o.expiry)


def compute_report_observation(signed: SignedObservation) -> ReportObservation:
    """The compact form of a signed observation inside a report."""
    o = signed.observation
    return ReportObservation(o.price, o.timestamp, o.expiry, signed.signer, signed.signature)


def compute_observations_hash(domain: Domain, report: Report) -> Digest:
    """``keccak256`` of the ``Observation`` digests in report order, then their members (32 bytes
    each, left-padded): the digest binds each observation to its member."""
    digests = b"".join(
        compute_observation_digest(domain, compute_observation(report.feed_id, report.round, o))
        for o in report.observations)
    return keccak256(digests + b"".join(bytes(12) + bytes.fromhex(o.member[2:])
                                        for o in report.observations))


def compute_report_digest(domain: Domain, report: Report) -> Digest:
    """The EIP-712 digest members sign for ``report`` (``OracleHub.report_digest``)."""
    return compute_report_digest_of(domain, report.config_digest, report.feed_id, report.round,
                                    report.price, report.timestamp,
                                    compute_observations_hash(domain, report))


def compute_report_digest_of(domain: Domain, config_digest: Digest, feed_id: FeedId, round_id: RoundId,
                             price: Price, timestamp: Timestamp, observations_hash: Digest) -> Digest:
    """The report digest from its fields and its ``observationsHash``: what a round dispute checks
    the report signatures against, without the observations themselves."""
    struct_hash = keccak256(b"".join((
        REPORT_TYPEHASH,
        bytes(config_digest),
        bytes(feed_id),
        round_id.to_bytes(32, "big"),
        price.to_bytes(32, "big"),
        timestamp.to_bytes(32, "big"),
        bytes(observations_hash),
    )))
    return keccak256(b"\x19\x01" + domain.separator + struct_hash)


def sign_report(domain: Domain, report: Report, private_key: bytes) -> bytes:
    """A member's signature over the report digest.

    An honest member signs only a report it has checked with :func:`process_report_body` (with its
    own view of the last stored round) and whose entry for it is its own observation for the round,
    unchanged: its signature states that observation, and a signature over a report stating another
    is equivocation. So ``f+1`` signatures mean at least one honest check.
    """
    return sign_digest(compute_report_digest(domain, report), private_key)


def recover_report_signer(domain: Domain, report: Report, signature: bytes) -> Address:
    """The address that signed ``report``; raises ``InvalidSignature`` like the contract."""
    return compute_checksum_address(recover_address_bytes(compute_report_digest(domain, report), signature))


def compute_signed_report(report: Report, signatures: Mapping[Address, bytes]) -> SignedReport:
    """``report`` with each member's report signature (``signatures[member]``) in place of its
    observation's signature; raise :class:`InvalidReport` for a signer with no observation in it
    (its signature states nothing and cannot travel)."""
    members = {o.member for o in report.observations}
    for member in signatures:
        if member not in members:
            raise InvalidReport("oracle: report signer has no observation", field="signatures",
                                signer=member)
    return SignedReport(replace(report, observations=tuple(
        replace(o, signature=signatures[o.member], signs_report=True) if o.member in signatures else o
        for o in report.observations)))


def compute_report_statements(signed: SignedReport) -> tuple[ReportStatement, ...]:
    """One statement per report signature of ``signed``: what a watcher checks for equivocation."""
    return tuple(ReportStatement(signed.report, i, o.signature)
                 for i, o in enumerate(signed.report.observations) if o.signs_report)


def recover_statement_signer(domain: Domain, statement: ReportStatement) -> Address:
    """The address that signed the statement's report; raises ``InvalidSignature`` like the contract."""
    return recover_report_signer(domain, statement.report, statement.signature)


def select_observations(committee: Committee, observations: Iterable[SignedObservation]
                        ) -> tuple[SignedObservation, ...]:
    """The observations a leader puts in its report, sorted by price.

    From valid observations (already checked with ``process_observation``), one per active member
    (the first received), sorted by (price, member position); if more than ``2f+1``, the ``2f+1``
    around the lower median: ``[m - f, m + f]``. That window's lower median is the same value as the
    whole set's, and a smaller report costs less gas. Raises :class:`InsufficientQuorum` if fewer
    than ``2f+1`` members answered (more than ``f`` silent).
    """
    one_each: dict[Address, SignedObservation] = {}
    for signed in observations:
        if is_member(committee, signed.signer):
            one_each.setdefault(signed.signer, signed)
    quorum = compute_observation_quorum(committee.f)
    if len(one_each) < quorum:
        raise InsufficientQuorum("oracle: too few observations", field="observations",
                                 received=len(one_each), needed=quorum)
    ranked = sorted(one_each.values(),
                    key=lambda s: (s.observation.price, get_member_index(committee, s.signer)))
    m = (len(ranked) - 1) // 2
    return tuple(ranked[m - committee.f:m + committee.f + 1])


def compute_report(committee: Committee, round_id: RoundId,
                   selected: Sequence[SignedObservation]) -> Report:
    """The report over ``selected`` (sorted by price, e.g. from :func:`select_observations`)."""
    return Report(
        config_digest=committee.config_digest,
        feed_id=committee.feed_id,
        round=round_id,
        price=Price(compute_lower_median([s.observation.price for s in selected])),
        timestamp=Timestamp(compute_lower_median([s.observation.timestamp for s in selected])),
        observations=tuple(compute_report_observation(s) for s in selected),
    )


def process_report(domain: Domain, committee: Committee | None, feed: FeedConfig, hub: HubParams,
                   last: StoredRound | None, signed: SignedReport, now: Timestamp) -> StoredRound:
    """Check a signed report exactly as ``OracleHub.transmit`` does at block time ``now``.

    Returns the round the contract stores; raises the :class:`OracleError` (or signature error)
    whose message is the contract's revert reason for the first failing check.
    """
    report = signed.report
    committee = _check_header(committee, report, last)
    _check_body(domain, committee, feed, hub, last, report, now)
    if len(signed.signatures) < compute_signature_quorum(committee.f):
        raise InsufficientQuorum("oracle: too few signatures", field="signatures")
    digest = compute_report_digest(domain, report)
    for o in report.observations:
        if o.signs_report:
            signer = compute_checksum_address(recover_address_bytes(digest, o.signature))
            if signer != o.member:
                raise NotAMember("oracle: not a member", field="signature", signer=signer)
    return StoredRound(report.round, report.price, report.timestamp)


def process_report_body(domain: Domain, committee: Committee | None, feed: FeedConfig,
                        hub: HubParams, last: StoredRound | None, report: Report,
                        now: Timestamp) -> StoredRound:
    """Every check of :func:`process_report` except the report signatures and their count: what a
    member runs before it signs a leader's report (``now`` = when it expects the report to land).
    Entries marked ``signs_report`` are checked for membership only."""
    committee = _check_header(committee, report, last)
    _check_body(domain, committee, feed, hub, last, report, now)
    return StoredRound(report.round, report.price, report.timestamp)


def _check_header(committee: Committee | None, report: Report, last: StoredRound | None) -> Committee:
    if committee is None or committee.feed_id != report.feed_id:
        raise UnknownFeed("oracle: unknown feed", field="feed_id")
    if report.config_digest != committee.config_digest:
        raise WrongConfig("oracle: wrong config", field="config_digest")
    check_round_number(report.round, last)
    if len(report.observations) < compute_observation_quorum(committee.f):
        raise InsufficientQuorum("oracle: too few observations", field="observations")
    return committee


def check_round_number(round_id: RoundId, last: StoredRound | None) -> None:
    """A new round is newer than the last stored one and at most :data:`MAX_ROUND_GAP` ahead of it
    (of 0 for a feed's first round), and a uint64."""
    if last is not None and round_id <= last.round:
        raise StaleRound("oracle: old round", field="round", round=round_id, last=last.round)
    if round_id > (last.round if last is not None else 0) + MAX_ROUND_GAP or round_id >= 2**64:
        raise StaleRound("oracle: round too far ahead", field="round", round=round_id)


def check_next_round(feed: FeedConfig, hub: HubParams, last: StoredRound | None, price: Price,
                     timestamp: Timestamp) -> None:
    """What any new round (verified or optimistic) must satisfy against the last one and the feed's
    limits: ``min_round_interval`` after it, inside the bounds, within the deviation limit of the
    last round unless that one was found invalid."""
    if last is not None and timestamp < last.timestamp + hub.min_round_interval:
        raise StaleRound("oracle: too soon", field="timestamp")
    _check_price(feed, price, last)


def _check_body(domain: Domain, committee: Committee, feed: FeedConfig, hub: HubParams,
                last: StoredRound | None, report: Report, now: Timestamp) -> None:
    _check_observations(domain, committee, feed, report, now)
    check_next_round(feed, hub, last, report.price, report.timestamp)


def _count_once(committee: Committee, member: Address, signer: Address | None, seen: set[Address]) -> None:
    """``member`` is active and (for an observation signature) its ``signer``, and not seen before."""
    if not is_member(committee, member) or (signer is not None and signer != member):
        raise NotAMember("oracle: not a member", field="signature", signer=signer or member)
    if member in seen:
        raise DuplicateSigner("oracle: duplicate observation", field="signature", signer=member)
    seen.add(member)


def _check_observations(domain: Domain, committee: Committee, feed: FeedConfig, report: Report,
                        now: Timestamp) -> None:
    seen: set[Address] = set()
    previous = 0
    for o in report.observations:
        if o.price > MAX_PRICE:  # cannot travel (128 bits): the leader drops it like any invalid one
            raise PriceRejected("oracle: price out of bounds", field="price", price=o.price)
        if now > o.expiry:
            raise ExpiredMessage(REASON_EXPIRED, field="expiry", expiry=o.expiry, now=now)
        if o.timestamp > now:
            raise StaleRound("oracle: future timestamp", field="timestamp")
        if o.timestamp + feed.max_age < now:
            raise StaleRound("oracle: stale observation", field="timestamp")
        if o.price < previous:
            raise InvalidReport("oracle: observations not sorted", field="observations")
        previous = o.price
        signer: Address | None = None
        if not o.signs_report:  # a report signature is checked once the report digest is known
            digest = compute_observation_digest(domain, compute_observation(report.feed_id, report.round, o))
            signer = compute_checksum_address(recover_address_bytes(digest, o.signature))
        _count_once(committee, o.member, signer, seen)
    m = (len(report.observations) - 1) // 2
    if report.price != report.observations[m].price:
        raise InvalidReport("oracle: wrong median", field="price")
    if report.timestamp != compute_lower_median([o.timestamp for o in report.observations]):
        raise InvalidReport("oracle: wrong timestamp", field="timestamp")


def _check_price(feed: FeedConfig, price: Price, last: StoredRound | None) -> None:
    if not feed.min_price <= price <= feed.max_price:
        raise PriceRejected("oracle: price out of bounds", field="price", price=price)
    if (last is not None and not last.invalid and feed.max_deviation_bps != 0
            and abs(price - last.price) * BPS > last.price * feed.max_deviation_bps):
        raise PriceRejected("oracle: deviation too large", field="price", price=price,
                            previous=last.price)


def is_report_acceptable(domain: Domain, committee: Committee | None, feed: FeedConfig,
                         hub: HubParams, last: StoredRound | None, signed: SignedReport,
                         now: Timestamp) -> bool:
    """Whether :func:`process_report` would accept ``signed`` (signature errors count as refusals)."""
    try:
        process_report(domain, committee, feed, hub, last, signed, now)
    except (OracleError, InvalidMessage):
        return False
    return True
