"""The oracle role of a node: one committee member, talking to its peers over HTTP.

Each member serves two endpoints to its peers and runs :meth:`OracleMember.on_tick`:

- ``GET /v1/oracle/observation/{round}`` — its signed observation for that round of the feed. A
  member signs at most one observation per round (kept in ``observations``), so asking twice gives
  the same answer and it can never be caught equivocating by its own node.
- ``POST /v1/oracle/report`` — a leader's report for it to sign. It signs only if the report
  carries, as its own, exactly the observation it signed for that round and passes every check
  the hub will make (``process_report_body`` against the round the chain stored last).

Rounds follow the chain: after the last stored round ``r`` at time ``t``, attempt ``k`` (from
``t + min_round_interval``, one every ``round_timeout`` seconds) uses round ``r + 1 + k`` and that
round's leader; a silent leader only costs one attempt (before the first round, attempts rotate
through rounds ``1..n`` by the clock). The leader gathers observations from
everyone who answers, builds the report with the spec (:mod:`clearhouse.oracle.report`), asks
``f + 1`` members whose observations it carries for their report signatures (itself first), and
transmits it. Up to ``f`` silent members are tolerated.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import httpx
from eth_account import Account
from fastapi import APIRouter
from fastapi.responses import JSONResponse

from clearhouse.chain import Chain, Contract
from clearhouse.errors import ClearhouseError, InsufficientQuorum
from clearhouse.messages import Observation
from clearhouse.oracle import (
    SignedObservation,
    StoredRound,
    compute_observation,
    process_observation,
    process_report_body,
    select_observations,
    sign_observation,
    sign_report,
)
from clearhouse.oracle.committee import CommitteeSetup, Member
from clearhouse.oracle.config import get_leader
from clearhouse.oracle.encoding import compute_transmit_args
from clearhouse.oracle.report import (
    Report,
    ReportObservation,
    compute_report,
    compute_report_observation,
    compute_signed_report,
)
from clearhouse.oracle.triggers import is_report_due
from clearhouse.types import Address, Digest, FeedId, Price, RoundId, Timestamp

__all__ = [
    "OracleMember",
    "decode_observation",
    "decode_report",
    "encode_observation",
    "encode_report",
]

log = logging.getLogger("clearhouse.oracle")


# --- wire format -----------------------------------------------------------------------------


def _refuse(status: int, code: str, field: str, message: str) -> JSONResponse:
    """A peer refusal, in the API's ``{code, field, message}`` body."""
    return JSONResponse({"code": code, "field": field, "message": message}, status_code=status)


def encode_observation(signed: SignedObservation) -> dict[str, Any]:
    o = signed.observation
    return {"feedId": "0x" + bytes(o.feed_id).hex(), "round": o.round, "price": str(o.price),
            "timestamp": o.timestamp, "expiry": o.expiry, "signer": signed.signer,
            "signature": "0x" + signed.signature.hex()}


def decode_observation(data: Mapping[str, Any]) -> SignedObservation:
    observation = Observation(Digest(bytes.fromhex(data["feedId"][2:])), RoundId(int(data["round"])),
                              Price(int(data["price"])), Timestamp(int(data["timestamp"])),
                              Timestamp(int(data["expiry"])))
    return SignedObservation(observation, bytes.fromhex(data["signature"][2:]), Address(data["signer"]))


def encode_report(report: Report) -> dict[str, Any]:
    return {"configDigest": "0x" + bytes(report.config_digest).hex(),
            "feedId": "0x" + bytes(report.feed_id).hex(), "round": report.round,
            "price": str(report.price), "timestamp": report.timestamp,
            "observations": [{"price": str(o.price), "timestamp": o.timestamp, "expiry": o.expiry,
                              "member": o.member, "signature": "0x" + o.signature.hex(),
                              "signsReport": o.signs_report} for o in report.observations]}


def decode_report(data: Mapping[str, Any]) -> Report:
    return Report(
        config_digest=Digest(bytes.fromhex(data["configDigest"][2:])),
        feed_id=FeedId(bytes.fromhex(data["feedId"][2:])), round=RoundId(int(data["round"])),
        price=Price(int(data["price"])), timestamp=Timestamp(int(data["timestamp"])),
        observations=tuple(ReportObservation(Price(int(o["price"])), Timestamp(int(o["timestamp"])),
                                             Timestamp(int(o["expiry"])), Address(o["member"]),
                                             bytes.fromhex(o["signature"][2:]), bool(o["signsReport"]))
                           for o in data["observations"]))


# --- the member --------------------------------------------------------------------------------


@dataclass
class OracleMember:
    """One member of one feed's committee, with the hub it reports to and its peers' URLs."""

    chain: Chain
    hub: Contract
    setup: CommitteeSetup
    """The committee; ``setup.members`` holds this member only."""
    peers: Mapping[Address, str]
    """Every member's base URL (this one's included), by address."""
    round_timeout: int = 20
    """Seconds before an attempt whose leader produced nothing gives way to the next round."""
    http_timeout: float = 2.0
    relay: Contract | None = None
    """``OracleRewards`` to transmit through (the hub stores the round and each member whose
    observation it carries earns work, docs/decisions/0008), or ``None``: straight to the hub."""
    observations: dict[int, SignedObservation] = field(default_factory=dict)
    """What this member signed, by round: at most one per round."""
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def me(self) -> Member:
        return self.setup.members[0]

    # --- chain view ------------------------------------------------------------------------

    def get_last_round(self) -> StoredRound | None:
        """The last round the hub stored for the feed (``None`` before the first)."""
        r = self.hub.call("latest", self.setup.committee.feed_id)
        return None if int(r[0]) == 0 else StoredRound(RoundId(int(r[0])), Price(int(r[1])), Timestamp(int(r[2])))

    def get_attempt(self, last: StoredRound | None, now: Timestamp) -> RoundId | None:
        """The round number being attempted at ``now`` (``None``: too soon after the last)."""
        if last is None:
            # No reference time yet: rotate the first round's attempts through the leaders by the clock.
            return RoundId(1 + (now // self.round_timeout) % len(self.setup.committee.members))
        opens = last.timestamp + self.setup.hub.min_round_interval
        if now < opens:
            return None
        return RoundId(last.round + 1 + (now - opens) // self.round_timeout)

    # --- member side -----------------------------------------------------------------------

    def observe(self, round_id: RoundId, now: Timestamp) -> SignedObservation:
        """This member's observation for ``round_id``: signed once, then the same every time."""
        with self.lock:
            signed = self.observations.get(round_id)
            if signed is None:
                observation = compute_observation(self.setup.committee.feed_id, round_id,
                                                   self.me.source.get_price(now), now,
                                                   self.setup.observation_lifetime)
                signed = sign_observation(self.setup.domain, observation, self.me.private_key)
                self.observations[round_id] = signed
            return signed

    def sign(self, report: Report, now: Timestamp) -> bytes:
        """Sign a leader's report if it carries this member's own observation unchanged and the
        hub would accept it; raise :class:`ClearhouseError` otherwise."""
        with self.lock:
            mine = self.observations.get(report.round)
        own = next((o for o in report.observations if o.member == self.me.address), None)
        if mine is None or own is None or replace(own, signature=b"", signs_report=False) != \
                replace(compute_report_observation(mine), signature=b"", signs_report=False):
            raise InsufficientQuorum("oracle: the report does not carry my observation", field="observations")
        process_report_body(self.setup.domain, self.setup.committee, self.setup.feed, self.setup.hub,
                            self.get_last_round(), report, now)
        return sign_report(self.setup.domain, report, self.me.private_key)

    def router(self, clock: Any) -> APIRouter:
        """The peer endpoints; ``clock()`` gives the current chain time."""
        router = APIRouter(prefix="/v1/oracle", tags=["oracle"])

        @router.get("/observation/{round_id}", response_model=None)
        def observation(round_id: int, at: int | None = None) -> dict[str, Any] | JSONResponse:
            """``at``: the leader's time; the observation is stamped no later than it, so clocks a
            second apart do not make it look like it comes from the future."""
            if not 0 < round_id < 2**64:
                return _refuse(400, "invalid_round", "round", "bad round")
            now = int(clock())
            if at is not None and not now - self.setup.feed.max_age < at <= now + self.setup.feed.max_age:
                return _refuse(409, "bad_time", "at", f"leader time {at} is too far from {now}")
            last = self.get_last_round()
            if last is not None and round_id <= last.round:
                return _refuse(409, "old_round", "round",
                               f"round {round_id} is not after the stored {last.round}")
            return encode_observation(self.observe(RoundId(round_id), Timestamp(min(now, at or now))))

        @router.post("/report", response_model=None)
        def report(body: dict[str, Any]) -> dict[str, str] | JSONResponse:
            try:
                parsed = decode_report(body)
            except (KeyError, TypeError, ValueError) as error:
                return _refuse(400, "malformed_report", "report", str(error))
            try:
                signature = self.sign(parsed, Timestamp(clock()))
            except ClearhouseError as error:
                return JSONResponse(error.to_dict(), status_code=422)
            return {"signature": "0x" + signature.hex()}

        return router

    # --- leader side -----------------------------------------------------------------------

    def _fetch_observation(self, client: httpx.Client, peer: Address, round_id: RoundId,
                           now: Timestamp) -> SignedObservation | None:
        if peer == self.me.address:
            return self.observe(round_id, now)
        try:
            response = client.get(f"{self.peers[peer]}/v1/oracle/observation/{round_id}", params={"at": now})
            response.raise_for_status()
            signed = decode_observation(response.json())
            process_observation(self.setup.domain, self.setup.committee, self.setup.feed, signed, round_id, now)
        except (httpx.HTTPError, ClearhouseError, KeyError, ValueError) as error:
            log.info("round %s: no observation from %s (%s)", round_id, peer, error)
            return None
        return signed

    def _fetch_signature(self, client: httpx.Client, peer: Address, report: Report, now: Timestamp) -> bytes | None:
        if peer == self.me.address:
            try:
                return self.sign(report, now)
            except ClearhouseError as error:
                log.warning("round %s: my own report check failed (%s)", report.round, error)
                return None
        try:
            response = client.post(f"{self.peers[peer]}/v1/oracle/report", json=encode_report(report))
            response.raise_for_status()
            return bytes.fromhex(response.json()["signature"][2:])
        except (httpx.HTTPError, KeyError, ValueError) as error:
            log.info("round %s: no report signature from %s (%s)", report.round, peer, error)
            return None

    def on_tick(self, now: Timestamp) -> str | None:
        """Lead the current attempt if it is this member's and a report is due; return the
        transmitted round's transaction hash, or ``None``."""
        last = self.get_last_round()
        round_id = self.get_attempt(last, now)
        committee = self.setup.committee
        if round_id is None or get_leader(committee, round_id) != self.me.address:
            return None
        price = self.me.source.get_price(now)
        if not is_report_due(last.price if last else None, last.timestamp if last else None, price, now,
                             self.setup.deviation_bps, self.setup.heartbeat):
            return None
        with httpx.Client(timeout=self.http_timeout) as client:
            gathered = [s for peer in committee.members
                        if (s := self._fetch_observation(client, peer, round_id, now)) is not None]
            try:
                report = compute_report(committee, round_id, select_observations(committee, gathered))
            except InsufficientQuorum as error:
                log.warning("round %s: %s", round_id, error.message)
                return None
            carried = [o.member for o in report.observations]
            order = sorted(carried, key=lambda m: (m != self.me.address, committee.members.index(m)))
            signatures: dict[Address, bytes] = {}
            for peer in order:
                if len(signatures) == committee.f + 1:
                    break
                signature = self._fetch_signature(client, peer, report, now)
                if signature is not None:
                    signatures[peer] = signature
        if len(signatures) < committee.f + 1:
            log.warning("round %s: %d of %d report signatures", round_id, len(signatures), committee.f + 1)
            return None
        signed = compute_signed_report(report, signatures)
        args = compute_transmit_args(self.setup.domain, committee, signed)
        target = self.hub if self.relay is None else self.relay
        receipt = target.transact("transmit", *args.to_abi(), sender=Account.from_key(self.me.private_key))
        log.info("round %s transmitted at %s: price %s", round_id, now, report.price)
        return receipt.tx_hash
