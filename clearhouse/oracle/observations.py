"""Signed oracle observations: make and sign one, check one as a round's leader would, and spot
equivocation (two different observations stated by one member for one feed and round, each by an
``Observation`` signature or by a report signature — a :class:`Statement`).

Observations are the ``Observation`` EIP-712 message of :mod:`clearhouse.messages`, signed in the
OracleHub's domain (``verifyingContract`` = the hub, chain id read live).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from clearhouse.errors import (
    Equivocation,
    ExpiredMessage,
    NotAMember,
    PriceRejected,
    StaleRound,
    WrongConfig,
)
from clearhouse.messages import Domain, Observation, compute_observation_digest, sign_digest
from clearhouse.messages.checks import compute_checksum_address
from clearhouse.messages.fast import REASON_EXPIRED, recover_address_bytes
from clearhouse.oracle.config import MAX_PRICE, Committee, FeedConfig, is_member
from clearhouse.types import Address, Digest, FeedId, Price, RoundId, Seconds, Timestamp

__all__ = [
    "EquivocationProof",
    "SignedObservation",
    "Statement",
    "check_no_equivocation",
    "compute_equivocation_proof",
    "compute_observation",
    "find_equivocations",
    "is_equivocation",
    "is_fresh_observation",
    "process_observation",
    "recover_observer",
    "sign_observation",
]


@dataclass(frozen=True, slots=True)
class SignedObservation:
    """An observation with its signature and the member that signed it."""

    observation: Observation
    """The signed message: feed, round, price, timestamp, expiry."""
    signature: bytes
    """65-byte ``r ‖ s ‖ v`` signature over the observation's EIP-712 digest."""
    signer: Address
    """The member that signed (recovered, or claimed and then checked by :func:`process_observation`)."""


class Statement(Protocol):
    """A member's signed statement of its observation for a (feed, round): a
    :class:`SignedObservation`, or a report signature stating the signer's own entry
    (:class:`~clearhouse.oracle.report.ReportStatement`)."""

    @property
    def observation(self) -> Observation:
        """The observation stated."""
        ...

    @property
    def signature(self) -> bytes:
        """The signature that states it."""
        ...

    @property
    def signer(self) -> Address:
        """The member that made the statement."""
        ...


@dataclass(frozen=True, slots=True)
class EquivocationProof:
    """What ``OracleHub.prove_equivocation`` takes: two conflicting statements of one member."""

    first: Statement
    """One statement of the member for the round."""
    second: Statement
    """A different observation stated by the same member for the same feed and round."""

    @property
    def member(self) -> Address:
        """The member at fault."""
        return self.first.signer


def compute_observation(feed_id: FeedId, round_id: RoundId, price: Price, now: Timestamp,
                        lifetime: Seconds) -> Observation:
    """The observation a member makes at ``now``, valid for ``lifetime`` seconds."""
    return Observation(feed_id=Digest(feed_id), round=round_id, price=price, timestamp=now,
                       expiry=Timestamp(now + lifetime))


def sign_observation(domain: Domain, observation: Observation, private_key: bytes) -> SignedObservation:
    """Sign ``observation`` in the hub's ``domain``.

    A member signs at most one observation per (feed, round): a second, different one is
    equivocation and gets its stake slashed. Keep the first and send it again instead.
    """
    signature = sign_digest(compute_observation_digest(domain, observation), private_key)
    return SignedObservation(observation, signature,
                             recover_observer(domain, observation, signature))


def recover_observer(domain: Domain, observation: Observation, signature: bytes) -> Address:
    """The address that signed ``observation``; raises ``InvalidSignature`` like the contract."""
    return compute_checksum_address(
        recover_address_bytes(compute_observation_digest(domain, observation), signature))


def is_fresh_observation(observation: Observation, now: Timestamp, max_age: Seconds) -> bool:
    """Whether an observation can enter a report stored at ``now`` (not future, not too old, unexpired)."""
    return (observation.timestamp <= now <= observation.timestamp + max_age
            and now <= observation.expiry)


def process_observation(domain: Domain, committee: Committee, feed: FeedConfig,
                        signed: SignedObservation, round_id: RoundId, now: Timestamp) -> Address:
    """Check an observation a leader received for ``round_id``; return its signer.

    The checklist a leader runs before counting it: a price that fits a report (at most
    ``MAX_PRICE``), the committee's feed and this round, unexpired,
    not in the future, not older than ``max_age``, a canonical signature by ``signed.signer`` who
    is an active member. The same facts the contract checks, plus feed and round, which on-chain
    come from the report itself.
    """
    obs = signed.observation
    if obs.price > MAX_PRICE:
        raise PriceRejected("oracle: price out of bounds", field="price", signer=signed.signer)
    if bytes(obs.feed_id) != bytes(committee.feed_id):
        raise WrongConfig("oracle: wrong feed", field="feed_id", signer=signed.signer)
    if obs.round != round_id:
        raise WrongConfig("oracle: wrong round", field="round", signer=signed.signer,
                          round=obs.round, expected=round_id)
    if now > obs.expiry:
        raise ExpiredMessage(REASON_EXPIRED, field="expiry", expiry=obs.expiry, now=now)
    if obs.timestamp > now:
        raise StaleRound("oracle: future timestamp", field="timestamp", signer=signed.signer)
    if obs.timestamp + feed.max_age < now:
        raise StaleRound("oracle: stale observation", field="timestamp", signer=signed.signer)
    signer = recover_observer(domain, obs, signed.signature)
    if signer != signed.signer or not is_member(committee, signer):
        raise NotAMember("oracle: not a member", field="signature", signer=signer)
    return signer


def is_equivocation(a: Statement, b: Statement) -> bool:
    """Two different observations for the same feed and round, stated by the same account."""
    return (a.signer == b.signer and a.observation.feed_id == b.observation.feed_id
            and a.observation.round == b.observation.round and a.observation != b.observation)


def compute_equivocation_proof(a: Statement, b: Statement) -> EquivocationProof:
    """The proof for two conflicting observations; raise :class:`WrongConfig` if they do not conflict."""
    if not is_equivocation(a, b):
        raise WrongConfig("oracle: not an equivocation", field="observation")
    return EquivocationProof(a, b)


def find_equivocations(observations: Iterable[Statement]) -> list[EquivocationProof]:
    """One proof per (signer, feed, round) that has two different stated observations.

    A leader or a watcher runs this over everything it received (observations, and the statements
    of every report it saw: ``compute_report_statements``); each proof found is worth the prover's
    reward on-chain (only the first proof per member and round pays).
    """
    first: dict[tuple[Address, bytes, int], Statement] = {}
    proofs: dict[tuple[Address, bytes, int], EquivocationProof] = {}
    for signed in observations:
        key = (signed.signer, bytes(signed.observation.feed_id), signed.observation.round)
        seen = first.setdefault(key, signed)
        if key not in proofs and is_equivocation(seen, signed):
            proofs[key] = EquivocationProof(seen, signed)
    return list(proofs.values())


def check_no_equivocation(existing: Statement, new: Statement) -> None:
    """Raise :class:`Equivocation` (carrying the proof) if ``new`` conflicts with ``existing``."""
    if is_equivocation(existing, new):
        raise Equivocation("oracle: equivocation", field="observation", member=new.signer,
                           feed_id=bytes(new.observation.feed_id), round=new.observation.round,
                           proof=EquivocationProof(existing, new))
