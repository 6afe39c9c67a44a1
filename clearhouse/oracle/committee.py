"""An in-process oracle committee: ``n`` members and a rotating leader running rounds over a source.

The node wraps this (one member per process, messages over HTTP); here everything happens in one
call so tests and the demo can run rounds without a network. State is a frozen :class:`FeedState`
changed only by :func:`process_tick` (a round is due: run it) and :func:`apply_stored_round`
(the chain stored a round). Members behave honestly; tests inject faults around it.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass, field, replace
from typing import Final

from coincurve import PrivateKey

from clearhouse.errors import ClearhouseError, InsufficientQuorum
from clearhouse.messages import Domain
from clearhouse.messages.checks import compute_checksum_address
from clearhouse.messages.keccak import keccak256
from clearhouse.oracle.config import Committee, FeedConfig, HubParams, get_leader, get_member_index
from clearhouse.oracle.observations import (
    SignedObservation,
    compute_observation,
    process_observation,
    sign_observation,
)
from clearhouse.oracle.report import (
    SignedReport,
    compute_report,
    compute_report_observation,
    compute_signed_report,
    process_report_body,
    select_observations,
    sign_report,
)
from clearhouse.oracle.sources import PriceSource
from clearhouse.oracle.triggers import is_report_due
from clearhouse.oracle.twap import StoredRound
from clearhouse.types import Address, BasisPoints, Price, RoundId, Seconds, Timestamp

__all__ = [
    "DEFAULT_OBSERVATION_LIFETIME",
    "CommitteeSetup",
    "FeedState",
    "Member",
    "RoundOutcome",
    "apply_stored_round",
    "compute_member_address",
    "process_tick",
    "run_feed",
    "run_round",
]


DEFAULT_OBSERVATION_LIFETIME: Final = Seconds(60)
"""Seconds an observation stays valid: long enough to reach a report, short enough not to linger."""


def compute_member_address(private_key: bytes) -> Address:
    """The checksummed address of a secp256k1 private key."""
    public = PrivateKey(bytes(private_key)).public_key.format(compressed=False)[1:]
    return compute_checksum_address(keccak256(public)[12:])


@dataclass(frozen=True, slots=True)
class Member:
    """One committee member: its key and where it reads prices."""

    private_key: bytes
    """32-byte secp256k1 key; signs observations and reports."""
    source: PriceSource
    """Its price feed (an exchange adapter, a simulated market, a replay)."""
    address: Address = field(init=False)
    """Derived from the key."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "address", compute_member_address(self.private_key))


@dataclass(frozen=True, slots=True)
class CommitteeSetup:
    """Everything fixed while a committee runs a feed."""

    domain: Domain
    """The OracleHub's EIP-712 domain (chain id read live by whoever builds it)."""
    committee: Committee
    """The feed's committee as configured on the hub."""
    feed: FeedConfig
    """The feed's bounds and freshness limits."""
    hub: HubParams
    """Hub-wide constants (round interval, TWAP window)."""
    members: tuple[Member, ...]
    """Keys and sources of the members this process runs (all of them, in-process)."""
    deviation_bps: BasisPoints
    """Deviation trigger: a round when the leader's price moved this much since the last round."""
    heartbeat: Seconds
    """Heartbeat trigger: a round at least this often (below ``feed.max_staleness``)."""
    observation_lifetime: Seconds = DEFAULT_OBSERVATION_LIFETIME
    """Seconds an observation stays valid after it is made."""


@dataclass(frozen=True, slots=True)
class FeedState:
    """What the committee knows about its feed between rounds."""

    next_round: RoundId
    """The round number the next attempt uses (each attempt uses a new one, successful or not)."""
    last: StoredRound | None = None
    """The last round the chain stored (``None`` before the first)."""


@dataclass(frozen=True, slots=True)
class RoundOutcome:
    """What one round attempt produced."""

    round: RoundId
    """The round number attempted."""
    leader: Address
    """Its leader."""
    observations: tuple[SignedObservation, ...]
    """Every observation the leader received."""
    report: SignedReport | None
    """The report ready to transmit, or ``None`` if the round failed."""
    failure: str | None = None
    """Why the round failed (leader silent, quorum not reached, report refused)."""


def run_round(setup: CommitteeSetup, last: StoredRound | None, round_id: RoundId, now: Timestamp,
              online: Collection[Address] | None = None) -> RoundOutcome:
    """One round at ``now``: online members observe and sign, the leader builds the report, and
    ``f+1`` members whose observations it carries (the leader first, then by position) check it
    and sign it; their report signatures stand in for their observation signatures. ``online``
    (default: everyone) models silent members."""
    up = {m.address: m for m in setup.members
          if online is None or m.address in online}
    leader = get_leader(setup.committee, round_id)
    if leader not in up:
        return RoundOutcome(round_id, leader, (), None, "oracle: leader silent")
    observations = tuple(
        sign_observation(setup.domain,
                         compute_observation(setup.committee.feed_id, round_id, m.source.get_price(now),
                                             now, setup.observation_lifetime),
                         m.private_key)
        for m in up.values())
    valid = [s for s in observations if _is_valid(setup, s, round_id, now)]
    try:
        report = compute_report(setup.committee, round_id,
                                select_observations(setup.committee, valid))
    except InsufficientQuorum as error:
        return RoundOutcome(round_id, leader, observations, None, error.message)
    signatures: dict[Address, bytes] = {}
    own = {o.member: o for o in report.observations}
    signers = sorted((m for m in up.values() if m.address in own),
                     key=lambda m: (m.address != leader, get_member_index(setup.committee, m.address)))
    for member in signers:
        if len(signatures) == setup.committee.f + 1:
            break
        mine = next(s for s in observations if s.signer == member.address)
        if compute_report_observation(mine) != own[member.address]:
            continue  # not its own observation: signing would state another one (equivocation)
        try:
            process_report_body(setup.domain, setup.committee, setup.feed, setup.hub, last, report, now)
        except ClearhouseError as error:
            return RoundOutcome(round_id, leader, observations, None, error.message)
        signatures[member.address] = sign_report(setup.domain, report, member.private_key)
    if len(signatures) < setup.committee.f + 1:
        return RoundOutcome(round_id, leader, observations, None, "oracle: too few signatures")
    return RoundOutcome(round_id, leader, observations, compute_signed_report(report, signatures))


def _is_valid(setup: CommitteeSetup, signed: SignedObservation, round_id: RoundId,
              now: Timestamp) -> bool:
    try:
        process_observation(setup.domain, setup.committee, setup.feed, signed, round_id, now)
    except ClearhouseError:
        return False
    return True


def process_tick(setup: CommitteeSetup, state: FeedState, now: Timestamp,
                 online: Collection[Address] | None = None) -> tuple[FeedState, RoundOutcome | None]:
    """At ``now``: if a round is due (deviation or heartbeat, and ``min_round_interval`` after the
    last), run it; the next attempt then uses the next round number (and so the next leader)."""
    last = state.last
    if last is not None and now < last.timestamp + setup.hub.min_round_interval:
        return state, None
    leader = get_leader(setup.committee, state.next_round)
    source = next((m.source for m in setup.members if m.address == leader), setup.members[0].source)
    price: Price = source.get_price(now)
    if not is_report_due(last.price if last else None, last.timestamp if last else None, price, now,
                         setup.deviation_bps, setup.heartbeat):
        return state, None
    outcome = run_round(setup, last, state.next_round, now, online)
    return replace(state, next_round=RoundId(state.next_round + 1)), outcome


def apply_stored_round(state: FeedState, stored: StoredRound) -> FeedState:
    """The chain stored ``stored``: later rounds must be newer than it."""
    return FeedState(next_round=RoundId(max(state.next_round, stored.round + 1)), last=stored)


def run_feed(setup: CommitteeSetup, start: Timestamp, end: Timestamp, tick: Seconds,
             state: FeedState | None = None,
             online: Iterable[Address] | None = None) -> tuple[FeedState, list[SignedReport]]:
    """Tick from ``start`` to ``end`` (inclusive), treating every report as stored at once.

    The chain-free simulation of a feed: the reports come back in order, ready to transmit.
    """
    state = state or FeedState(next_round=RoundId(1))
    up = None if online is None else frozenset(online)
    reports: list[SignedReport] = []
    for now in range(start, end + 1, tick):
        state, outcome = process_tick(setup, state, Timestamp(now), up)
        if outcome is not None and outcome.report is not None:
            report = outcome.report.report
            reports.append(outcome.report)
            state = apply_stored_round(state, StoredRound(report.round, report.price, report.timestamp))
    return state, reports
