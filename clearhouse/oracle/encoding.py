"""How oracle messages travel to ``OracleHub`` and ``OracleDisputes``: the compact transport encoding.

What members sign is unchanged (the EIP-712 ``Observation`` and ``Report``); only the carriage is
compact, so the contracts read no member from storage and hash nothing twice:

- an observation inside a report is one word ``price << 128 | timestamp << 64 | expiry``;
- a signature is two words ``(r, s)``; its ``v`` travels in its signer's **reference byte**
  ``position | report_signed << 6 | (v - 27) << 7``, where ``position`` is the signer's place in
  the committee (:data:`POSITION_NONE` for a non-member: the contract refuses it) and
  ``report_signed`` (report observations only) says the signature is over the report digest;
- a report observation travels with its member's one signature, named by the member the report
  binds it to;
- reference bytes are packed into one word, byte ``i`` (least significant first) for signature ``i``;
- the committee travels as ``(version, f, members)`` and is checked against the stored config digest.

The encoder never judges: it names each signer's position (recovering it where the message does
not name it), so a bad report reaches the contract and is refused there with the same reason the
rules give.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from clearhouse.errors import InvalidMessage, InvalidSignature, PriceRejected
from clearhouse.messages import Domain, compute_observation_digest
from clearhouse.messages.checks import compute_checksum_address
from clearhouse.messages.fast import recover_address_bytes
from clearhouse.oracle.config import MAX_MEMBERS, MAX_PRICE, Committee
from clearhouse.oracle.disputes import ReportEvidence
from clearhouse.oracle.observations import SignedObservation, Statement
from clearhouse.oracle.report import (
    Report,
    ReportObservation,
    ReportStatement,
    SignedReport,
    compute_observation,
    compute_observations_hash,
    compute_report_digest_of,
)
from clearhouse.oracle.twap import StoredRound
from clearhouse.types import Address, Digest, FeedId, Price, Timestamp

__all__ = [
    "POSITION_NONE",
    "REPORT_SIGNED",
    "ChallengeArgs",
    "CompactSignature",
    "ConfigArgs",
    "DisputeArgs",
    "TransmitArgs",
    "compute_challenge_args",
    "compute_compact_signature",
    "compute_config_args",
    "compute_dispute_args",
    "compute_observation_word",
    "compute_reference_byte",
    "compute_references",
    "compute_report_args",
    "compute_report_evidence",
    "compute_signer_position",
    "compute_signer_references",
    "compute_statement_args",
    "compute_transmit_args",
]

POSITION_NONE: Final = 31
"""The position a signer outside the committee gets: no committee has 32 members."""
REPORT_SIGNED: Final = 1 << 6
"""Reference-byte flag of a report observation whose signature is over the report digest."""
_U64: Final = 2**64


@dataclass(frozen=True, slots=True)
class CompactSignature:
    """A canonical 65-byte signature split for the contracts."""

    r: int
    """The signature's ``r``."""
    s: int
    """The signature's ``s`` (a high ``s`` is kept: the contract refuses it with ``eip712: high s``)."""
    parity: int
    """``v - 27``: 0 or 1."""

    def to_abi(self) -> tuple[int, int]:
        """The ``Signature`` tuple ``(r, s)``."""
        return (self.r, self.s)


@dataclass(frozen=True, slots=True)
class ConfigArgs:
    """The ``Config`` tuple: the committee a message was built under."""

    version: int
    """Its config version."""
    f: int
    """Faults tolerated."""
    members: tuple[Address, ...]
    """The members in committee order (removed ones included)."""

    def to_abi(self) -> tuple[int, int, list[str]]:
        """``(version, f, members)``."""
        return (self.version, self.f, list(self.members))


@dataclass(frozen=True, slots=True)
class TransmitArgs:
    """The arguments of ``OracleHub.transmit`` for one signed report."""

    report: tuple[bytes, int, int, int, list[tuple[int, int, int]]]
    """``(feed_id, round, price, timestamp, [(packed observation, r, s)])``."""
    config: ConfigArgs
    """The committee."""
    observers: int
    """The observations' reference bytes (position, ``REPORT_SIGNED``, parity), packed."""

    def to_abi(self) -> tuple[object, ...]:
        """Positional arguments for ``transmit`` (its ``Config`` carries members as words)."""
        config = (self.config.version, self.config.f, [int(m, 16) for m in self.config.members])
        return (self.report, config, self.observers)


@dataclass(frozen=True, slots=True)
class ChallengeArgs:
    """The arguments of ``OracleDisputes.challenge``."""

    feed_id: FeedId
    """The feed."""
    index: int
    """The optimistic round's position in the hub."""
    config: ConfigArgs
    """The committee it was stored under."""
    observations: tuple[int, ...]
    """Packed observations (``price << 128 | timestamp << 64 | expiry``)."""
    signatures: tuple[CompactSignature, ...]
    """One per observation."""
    observers: int
    """Their reference bytes, packed."""

    def to_abi(self) -> tuple[object, ...]:
        """Positional arguments for ``challenge``."""
        return (bytes(self.feed_id), self.index, self.config.to_abi(), list(self.observations),
                [s.to_abi() for s in self.signatures], self.observers)


@dataclass(frozen=True, slots=True)
class DisputeArgs:
    """The arguments of ``OracleDisputes.dispute_round``."""

    feed_id: FeedId
    """The feed."""
    index: int
    """The round's position in the hub."""
    config: ConfigArgs
    """The committee it was stored under."""
    observations_hash: Digest
    """The ``observationsHash`` of the report that stored it (zero for an optimistic round)."""
    signatures: tuple[CompactSignature, ...]
    """Signatures over that report (none for an optimistic round)."""
    signers: int
    """Their reference bytes, packed."""

    def to_abi(self) -> tuple[object, ...]:
        """Positional arguments for ``dispute_round``."""
        return (bytes(self.feed_id), self.index, self.config.to_abi(), bytes(self.observations_hash),
                [s.to_abi() for s in self.signatures], self.signers)


def compute_compact_signature(signature: bytes) -> CompactSignature:
    """Split a 65-byte ``r ‖ s ‖ v`` signature; raise :class:`InvalidSignature` if it cannot travel
    (wrong length, ``v`` not 27 or 28): such a signature is refused off-chain already."""
    if len(signature) != 65:
        raise InvalidSignature("eip712: bad signature length", field="signature")
    if signature[64] not in (27, 28):
        raise InvalidSignature("eip712: bad v", field="signature")
    return CompactSignature(int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:64], "big"),
                            signature[64] - 27)


def compute_observation_word(price: Price, timestamp: Timestamp, expiry: Timestamp) -> int:
    """``price << 128 | timestamp << 64 | expiry``; raise :class:`PriceRejected` for a price above
    :data:`MAX_PRICE` (no report can carry it: the leader drops it like any invalid observation)."""
    if not 0 <= price <= MAX_PRICE:
        raise PriceRejected("oracle: price out of bounds", field="price", price=price)
    if not (0 <= timestamp < _U64 and 0 <= expiry < _U64):
        raise InvalidMessage("timestamp and expiry are uint64", field="timestamp")
    return (price << 128) | (timestamp << 64) | expiry


def compute_reference_byte(position: int, parity: int, report_signed: bool = False) -> int:
    """``position | report_signed << 6 | parity << 7``: which member signed, over which digest
    (report observations only), and the signature's ``v - 27``."""
    if not (0 <= position <= POSITION_NONE and parity in (0, 1)):
        raise InvalidMessage("position is 0..31 and parity 0 or 1", field="position")
    return position | (REPORT_SIGNED if report_signed else 0) | (parity << 7)


def compute_references(references: Sequence[int]) -> int:
    """Pack reference bytes into one word, byte ``i`` (least significant first) for signature ``i``."""
    if len(references) > MAX_MEMBERS:
        raise InvalidMessage(f"at most {MAX_MEMBERS} signatures", field="signatures")
    return sum(b << (8 * i) for i, b in enumerate(references))


def compute_signer_position(committee: Committee, signer: Address | None) -> int:
    """The committee position of ``signer``, or :data:`POSITION_NONE` (also for ``None``)."""
    return committee.members.index(signer) if signer in committee.members else POSITION_NONE


def _recover(digest: Digest, signature: bytes) -> Address | None:
    try:
        return compute_checksum_address(recover_address_bytes(digest, signature))
    except InvalidMessage:
        return None


def compute_signer_references(committee: Committee, digests: Sequence[Digest],
                              signatures: Sequence[bytes]) -> tuple[tuple[CompactSignature, ...], int]:
    """Compact signatures and their packed reference bytes, ``digests[i]`` signed by ``signatures[i]``."""
    compact = tuple(compute_compact_signature(s) for s in signatures)
    refs = [compute_reference_byte(compute_signer_position(committee, _recover(d, s)), c.parity)
            for d, s, c in zip(digests, signatures, compact, strict=True)]
    return compact, compute_references(refs)


def compute_config_args(committee: Committee) -> ConfigArgs:
    """The ``Config`` of a committee."""
    return ConfigArgs(committee.version, committee.f, committee.members)


def compute_report_args(report: Report, signatures: Sequence[CompactSignature] | None = None
                        ) -> tuple[bytes, int, int, int, list[tuple[int, int, int]]]:
    """The ``Report`` tuple: header and ``(packed observation, r, s)`` per observation (``r`` and
    ``s`` zero without ``signatures``: the report digest does not depend on them)."""
    sigs = signatures if signatures is not None else [CompactSignature(0, 0, 0)] * len(report.observations)
    return (bytes(report.feed_id), int(report.round), int(report.price), int(report.timestamp),
            [(compute_observation_word(o.price, o.timestamp, o.expiry), c.r, c.s)
             for o, c in zip(report.observations, sigs, strict=True)])


def _observation_digest(domain: Domain, report: Report, o: ReportObservation) -> Digest:
    return compute_observation_digest(domain, compute_observation(report.feed_id, report.round, o))


def compute_transmit_args(domain: Domain, committee: Committee, signed: SignedReport) -> TransmitArgs:
    """Everything ``OracleHub.transmit`` takes for ``signed``, built under ``committee`` (the one
    whose digest the report names): each observation's signature, flagged ``REPORT_SIGNED`` when
    it is its member's report signature, named by the position of the member the report binds."""
    report = signed.report
    sigs = tuple(compute_compact_signature(o.signature) for o in report.observations)
    refs = [compute_reference_byte(compute_signer_position(committee, o.member), c.parity, o.signs_report)
            for o, c in zip(report.observations, sigs, strict=True)]
    return TransmitArgs(compute_report_args(report, sigs), compute_config_args(committee),
                        compute_references(refs))


def compute_statement_args(domain: Domain, statement: Statement) -> tuple[object, ...]:
    """The ``Statement`` tuple ``OracleHub.prove_equivocation`` takes: ``(feed, round, observation,
    config digest, price, timestamp, index, digests, members, signature)``, the report fields zero
    and the lists empty for a signed observation."""
    if isinstance(statement, ReportStatement):
        report = statement.report
        return (bytes(report.feed_id), int(report.round), 0, bytes(report.config_digest), int(report.price),
                int(report.timestamp), statement.index,
                [bytes(_observation_digest(domain, report, o)) for o in report.observations],
                [str(o.member) for o in report.observations], statement.signature)
    o = statement.observation
    return (bytes(o.feed_id), int(o.round), compute_observation_word(o.price, o.timestamp, o.expiry),
            bytes(32), 0, 0, 0, [], [], statement.signature)


def compute_report_evidence(domain: Domain, signed: SignedReport) -> ReportEvidence:
    """The evidence a round dispute carries: the report's ``observationsHash`` and signatures
    (a watcher rebuilds ``signed`` from the ``transmit`` calldata)."""
    return ReportEvidence(compute_observations_hash(domain, signed.report), signed.signatures)


def compute_challenge_args(domain: Domain, committee: Committee, index: int, stored: StoredRound,
                           observations: Sequence[SignedObservation]) -> ChallengeArgs:
    """Everything ``OracleDisputes.challenge`` takes to challenge ``stored`` (round ``index``, stored
    under ``committee``) with ``observations``; each is rebuilt with the round's feed and number."""
    digests = [compute_observation_digest(domain, type(o.observation)(
        feed_id=Digest(committee.feed_id), round=stored.round, price=o.observation.price,
        timestamp=o.observation.timestamp, expiry=o.observation.expiry)) for o in observations]
    sigs, observers = compute_signer_references(committee, digests, [o.signature for o in observations])
    words = tuple(compute_observation_word(o.observation.price, o.observation.timestamp,
                                           o.observation.expiry) for o in observations)
    return ChallengeArgs(committee.feed_id, index, compute_config_args(committee), words, sigs, observers)


def compute_dispute_args(domain: Domain, committee: Committee, index: int, stored: StoredRound,
                         evidence: ReportEvidence | None) -> DisputeArgs:
    """Everything ``OracleDisputes.dispute_round`` takes to dispute ``stored`` (round ``index``, stored
    under ``committee``); ``evidence`` is ``None`` for an optimistic round."""
    if evidence is None:
        return DisputeArgs(committee.feed_id, index, compute_config_args(committee), Digest(b"\x00" * 32),
                           (), 0)
    digest = compute_report_digest_of(domain, committee.config_digest, committee.feed_id, stored.round,
                                      stored.price, stored.timestamp, evidence.observations_hash)
    sigs, signers = compute_signer_references(committee, [digest] * len(evidence.signatures),
                                              evidence.signatures)
    return DisputeArgs(committee.feed_id, index, compute_config_args(committee),
                       evidence.observations_hash, sigs, signers)
