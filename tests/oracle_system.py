"""Build observations and reports (honest or not) for the OracleHub tests.

Importable from any test (``tests/`` is on ``sys.path`` through the root conftest). Deployment
itself is :func:`clearhouse.sim.oracle_hub.deploy_oracle_system`.
"""

from __future__ import annotations

from collections.abc import Sequence

from clearhouse.errors import ContractRevert, InvalidMessage, OracleError
from clearhouse.oracle import (
    Committee,
    SignedObservation,
    SignedReport,
    StoredRound,
    compute_lower_median,
    compute_member_address,
    compute_observation,
    compute_report_observation,
    compute_signed_report,
    process_report,
    sign_observation,
    sign_report,
)
from clearhouse.oracle.report import Report
from clearhouse.sim.oracle_hub import OracleSystem
from clearhouse.types import Digest, FeedId, Price, RoundId, Seconds, Timestamp

LIFETIME = Seconds(60)


def observe(system: OracleSystem, key: bytes, round_id: int, price: int, *,
            timestamp: int | None = None, expiry: int | None = None,
            feed_id: bytes | None = None) -> SignedObservation:
    """A member's signed observation (now, valid for a minute, unless told otherwise)."""
    now = int(system.now()) if timestamp is None else timestamp
    obs = compute_observation(FeedId(feed_id or system.committee.feed_id), RoundId(round_id),
                              Price(price), Timestamp(now), LIFETIME)
    if expiry is not None:
        obs = type(obs)(feed_id=obs.feed_id, round=obs.round, price=obs.price,
                        timestamp=obs.timestamp, expiry=Timestamp(expiry))
    return sign_observation(system.domain, obs, key)


COMMITTEES: dict[bytes, Committee] = {}
"""Committees reports were built under, by config digest (the transport needs the member list)."""


def other_committee(system: OracleSystem, version: int = 99) -> Committee:
    """The feed's members under a config version the hub never set: its digest is wrong."""
    c = system.committee
    return Committee(feed_id=c.feed_id, members=c.members, f=c.f, version=version)


def build_report(system: OracleSystem, round_id: int, observations: Sequence[SignedObservation],
                 signer_keys: Sequence[bytes], *, sort: bool = True, price: int | None = None,
                 timestamp: int | None = None, committee: Committee | None = None,
                 feed_id: bytes | None = None) -> SignedReport:
    """A report over ``observations`` (sorted by price unless told not to), signed by ``signer_keys``
    (each must have an observation in it: its report signature replaces that observation's).

    Price and timestamp default to the lower medians; override them to build wrong reports, or
    name another ``committee`` (default: the system's) to build one under a wrong config.
    """
    chosen = sorted(observations, key=lambda s: s.observation.price) if sort else list(observations)
    under = committee or system.committee
    COMMITTEES[bytes(under.config_digest)] = under
    report = Report(
        config_digest=Digest(under.config_digest),
        feed_id=FeedId(feed_id or system.committee.feed_id),
        round=RoundId(round_id),
        price=Price(price if price is not None
                    else compute_lower_median([s.observation.price for s in chosen])),
        timestamp=Timestamp(timestamp if timestamp is not None
                            else compute_lower_median([s.observation.timestamp for s in chosen])),
        observations=tuple(compute_report_observation(s) for s in chosen),
    )
    return compute_signed_report(report, {compute_member_address(k): sign_report(system.domain, report, k)
                                          for k in signer_keys})


def honest_report(system: OracleSystem, round_id: int, prices: Sequence[int],
                  signers: int | None = None) -> SignedReport:
    """Members ``0..len(prices)-1`` observe ``prices`` now; the first ``signers`` (default ``f+1``) sign."""
    observations = [observe(system, system.keys[i], round_id, p) for i, p in enumerate(prices)]
    count = system.committee.f + 1 if signers is None else signers
    return build_report(system, round_id, observations, system.keys[:count])


def python_verdict(system: OracleSystem, signed: SignedReport, last: StoredRound | None) -> str | None:
    """The Python rules' reason for refusing ``signed`` at the chain's current time, or ``None``."""
    try:
        process_report(system.domain, system.committee, system.feed, system.params, last, signed,
                       system.now())
    except (OracleError, InvalidMessage) as error:
        return error.message
    return None


def chain_verdict(system: OracleSystem, signed: SignedReport) -> str | None:
    """The contract's revert reason for ``signed``, or ``None`` if it stored the round."""
    try:
        system.transmit(signed, committee=COMMITTEES.get(bytes(signed.report.config_digest)))
    except ContractRevert as error:
        return error.reason
    return None
