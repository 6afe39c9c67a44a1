"""Reputation: deterministic scores anyone can recompute from the event log.

Every input is an event with a time; every score is an exact rational computed from the events
weighted by their age, published as integer parts per million (rounded down). Two parties with the
same log and the same ``now`` get the same numbers to the unit, whatever their machine.

Decay: an event ``d`` whole days old counts ``(decay_num / decay_den) ** d`` (default ``9/10`` a
day, a half-life of about 6.6 days). Counts below are these weighted sums.

Formulas (``docs/protocol.md``, "Reputation"):

- maker: ``fade_rate = (fades + 1) / (quotes + 20)`` (smoothed so that one early fade does not
  condemn and a new maker starts at 5 %); ``fill_ratio = fills / quotes``; ``response_rate =
  quotes / routed`` (1 before any routing); ``latency`` the weighted mean response time in ms;
  ``score = (1 - fade_rate) * (1 + response_rate) / 2``. A maker is paused while
  ``fade_rate >= pause_fade_rate``.
- oracle member: ``miss_rate = (missed + 1) / (rounds + 20)``; ``deviation`` the weighted mean of
  ``|price - median| / median`` in parts per million; ``score = (1 - miss_rate) * max(0, 1 -
  deviation / max_deviation)``.
- watcher: ``score = (valid + 1) / (valid + rejected + 2)``.
- coordinator: ``score = (finalised + 1) / (finalised + reverted + 2) * uptime`` with
  ``uptime = (up + 1) / (up + down + 1)`` over its heartbeat checks.

Routing (:func:`compute_router`): a maker is offered an RFQ when the RFQ's id hashed with the
maker's address, read as a number in ``[0, 10**6)``, is below its score in ppm, so a maker with
half the score sees about half the RFQs; paused makers see none; every party computes the same
route.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Final

from clearhouse.errors import ConfigError
from clearhouse.market.rfq import Router
from clearhouse.market.trades import Signed
from clearhouse.messages import RFQ
from clearhouse.messages.keccak import keccak256
from clearhouse.types import Address, Digest, Timestamp

__all__ = [
    "PPM",
    "BatchOutcome",
    "ChallengeOutcome",
    "CoordinatorScore",
    "Fade",
    "Fill",
    "Heartbeat",
    "MakerScore",
    "OracleRound",
    "OracleScore",
    "QuoteGiven",
    "Reputation",
    "ReputationParams",
    "Routed",
    "WatcherScore",
    "compute_decay_weight",
    "compute_new_maker_score",
    "compute_reputation",
    "compute_router",
    "is_routed",
]

PPM: Final = 1_000_000
DAY: Final = 86_400


@dataclass(frozen=True, slots=True)
class ReputationParams:
    """The constants of the formulas above."""

    decay_num: int = 9
    decay_den: int = 10
    """An event loses ``1 - decay_num/decay_den`` of its weight per whole day of age."""
    fade_prior_fades: int = 1
    fade_prior_quotes: int = 20
    pause_fade_rate_ppm: int = 250_000
    """A maker whose smoothed fade rate reaches this is routed nothing."""
    miss_prior_missed: int = 1
    miss_prior_rounds: int = 20
    max_deviation_ppm: int = 20_000
    """Mean deviation from the median at which an oracle member's score reaches zero (2 %)."""

    def __post_init__(self) -> None:
        if not 0 < self.decay_num <= self.decay_den:
            raise ConfigError("decay must be in (0, 1]", field="decay_num")
        if not 0 < self.pause_fade_rate_ppm <= PPM:
            raise ConfigError("pause threshold must be in (0, 1e6] ppm", field="pause_fade_rate_ppm")
        if self.max_deviation_ppm <= 0:
            raise ConfigError("max deviation must be positive", field="max_deviation_ppm")
        if min(self.fade_prior_fades, self.fade_prior_quotes, self.miss_prior_missed,
               self.miss_prior_rounds) < 0 or self.fade_prior_quotes <= self.fade_prior_fades:
            raise ConfigError("priors must be non-negative and below their totals", field="fade_prior_quotes")


# --- events ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Routed:
    """An RFQ was offered to a maker."""

    maker: Address
    rfq_id: Digest
    time: Timestamp


@dataclass(frozen=True, slots=True)
class QuoteGiven:
    """A maker quoted an RFQ ``latency_ms`` after it was offered."""

    maker: Address
    quote_id: Digest
    latency_ms: int
    time: Timestamp


@dataclass(frozen=True, slots=True)
class Fill:
    """A maker's quote was accepted and filled."""

    maker: Address
    quote_id: Digest
    time: Timestamp


@dataclass(frozen=True, slots=True)
class Fade:
    """A maker's quote was accepted and not honoured."""

    maker: Address
    quote_id: Digest
    time: Timestamp


@dataclass(frozen=True, slots=True)
class OracleRound:
    """A member's part in one stored round: its price, or ``None`` if it observed nothing."""

    member: Address
    round: int
    price: int | None
    median: int
    time: Timestamp


@dataclass(frozen=True, slots=True)
class ChallengeOutcome:
    """A watcher's challenge was upheld (``valid``) or refused."""

    watcher: Address
    valid: bool
    time: Timestamp


@dataclass(frozen=True, slots=True)
class BatchOutcome:
    """A coordinator's batch was finalised, or reverted by a proven fraud."""

    coordinator: Address
    number: int
    finalised: bool
    time: Timestamp


@dataclass(frozen=True, slots=True)
class Heartbeat:
    """A liveness check of the coordinator's API: answered (``up``) or not."""

    coordinator: Address
    up: bool
    time: Timestamp


Event = Routed | QuoteGiven | Fill | Fade | OracleRound | ChallengeOutcome | BatchOutcome | Heartbeat


# --- scores ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MakerScore:
    routed: Fraction
    quotes: Fraction
    fills: Fraction
    fades: Fraction
    fade_rate_ppm: int
    fill_ratio_ppm: int
    response_rate_ppm: int
    latency_ms: int
    score_ppm: int
    paused: bool


@dataclass(frozen=True, slots=True)
class OracleScore:
    rounds: Fraction
    missed: Fraction
    miss_rate_ppm: int
    deviation_ppm: int
    score_ppm: int


@dataclass(frozen=True, slots=True)
class WatcherScore:
    valid: Fraction
    rejected: Fraction
    score_ppm: int


@dataclass(frozen=True, slots=True)
class CoordinatorScore:
    finalised: Fraction
    reverted: Fraction
    uptime_ppm: int
    score_ppm: int


@dataclass(frozen=True, slots=True)
class Reputation:
    """Every subject's score at one time."""

    makers: dict[Address, MakerScore]
    oracles: dict[Address, OracleScore]
    watchers: dict[Address, WatcherScore]
    coordinators: dict[Address, CoordinatorScore]


def compute_decay_weight(time: Timestamp, now: Timestamp, params: ReputationParams) -> Fraction:
    """The weight of an event at ``time`` seen at ``now`` (events from the future weigh nothing)."""
    if time > now:
        return Fraction(0)
    days = (now - time) // DAY
    return Fraction(params.decay_num, params.decay_den) ** days


def _ppm(value: Fraction) -> int:
    return int(value * PPM) if value > 0 else 0


def _ratio(num: Fraction, den: Fraction) -> Fraction:
    return num / den if den > 0 else Fraction(0)


def _maker_scores(events: Sequence[tuple[Fraction, Event]], params: ReputationParams) -> dict[Address, MakerScore]:
    routed: dict[Address, Fraction] = defaultdict(Fraction)
    quotes: dict[Address, Fraction] = defaultdict(Fraction)
    fills: dict[Address, Fraction] = defaultdict(Fraction)
    fades: dict[Address, Fraction] = defaultdict(Fraction)
    latency: dict[Address, Fraction] = defaultdict(Fraction)
    for w, e in events:
        if isinstance(e, Routed):
            routed[e.maker] += w
        elif isinstance(e, QuoteGiven):
            quotes[e.maker] += w
            latency[e.maker] += w * e.latency_ms
        elif isinstance(e, Fill):
            fills[e.maker] += w
        elif isinstance(e, Fade):
            fades[e.maker] += w
    out = {}
    for maker in sorted({*routed, *quotes, *fills, *fades}):
        q = quotes[maker]
        fade_rate = (fades[maker] + params.fade_prior_fades) / (q + params.fade_prior_quotes)
        fade_rate = min(fade_rate, Fraction(1))
        # A maker never routed anything has not failed to respond.
        response = min(q / routed[maker], Fraction(1)) if routed[maker] > 0 else Fraction(1)
        score = (1 - fade_rate) * (1 + response) / 2
        out[maker] = MakerScore(
            routed=routed[maker], quotes=q, fills=fills[maker], fades=fades[maker],
            fade_rate_ppm=_ppm(fade_rate), fill_ratio_ppm=_ppm(min(_ratio(fills[maker], q), Fraction(1))),
            response_rate_ppm=_ppm(response), latency_ms=int(_ratio(latency[maker], q)),
            score_ppm=_ppm(score), paused=_ppm(fade_rate) >= params.pause_fade_rate_ppm)
    return out


def _oracle_scores(events: Sequence[tuple[Fraction, Event]], params: ReputationParams) -> dict[Address, OracleScore]:
    rounds: dict[Address, Fraction] = defaultdict(Fraction)
    missed: dict[Address, Fraction] = defaultdict(Fraction)
    deviation: dict[Address, Fraction] = defaultdict(Fraction)
    observed: dict[Address, Fraction] = defaultdict(Fraction)
    for w, e in events:
        if not isinstance(e, OracleRound):
            continue
        rounds[e.member] += w
        if e.price is None:
            missed[e.member] += w
        elif e.median > 0:
            observed[e.member] += w
            deviation[e.member] += w * Fraction(abs(e.price - e.median), e.median)
    out = {}
    for member in sorted(rounds):
        miss_rate = (missed[member] + params.miss_prior_missed) / (rounds[member] + params.miss_prior_rounds)
        miss_rate = min(miss_rate, Fraction(1))
        mean_dev = _ratio(deviation[member], observed[member])
        accuracy = max(Fraction(0), 1 - mean_dev * PPM / params.max_deviation_ppm)
        out[member] = OracleScore(rounds=rounds[member], missed=missed[member], miss_rate_ppm=_ppm(miss_rate),
                                  deviation_ppm=_ppm(mean_dev), score_ppm=_ppm((1 - miss_rate) * accuracy))
    return out


def _watcher_scores(events: Sequence[tuple[Fraction, Event]]) -> dict[Address, WatcherScore]:
    valid: dict[Address, Fraction] = defaultdict(Fraction)
    rejected: dict[Address, Fraction] = defaultdict(Fraction)
    for w, e in events:
        if isinstance(e, ChallengeOutcome):
            (valid if e.valid else rejected)[e.watcher] += w
    return {who: WatcherScore(valid[who], rejected[who],
                              _ppm((valid[who] + 1) / (valid[who] + rejected[who] + 2)))
            for who in sorted({*valid, *rejected})}


def _coordinator_scores(events: Sequence[tuple[Fraction, Event]]) -> dict[Address, CoordinatorScore]:
    final: dict[Address, Fraction] = defaultdict(Fraction)
    reverted: dict[Address, Fraction] = defaultdict(Fraction)
    up: dict[Address, Fraction] = defaultdict(Fraction)
    down: dict[Address, Fraction] = defaultdict(Fraction)
    for w, e in events:
        if isinstance(e, BatchOutcome):
            (final if e.finalised else reverted)[e.coordinator] += w
        elif isinstance(e, Heartbeat):
            (up if e.up else down)[e.coordinator] += w
    out = {}
    for who in sorted({*final, *reverted, *up, *down}):
        uptime = (up[who] + 1) / (up[who] + down[who] + 1)
        record = (final[who] + 1) / (final[who] + reverted[who] + 2)
        out[who] = CoordinatorScore(final[who], reverted[who], _ppm(uptime), _ppm(record * uptime))
    return out


def compute_reputation(events: Iterable[Event], now: Timestamp,
                       params: ReputationParams = ReputationParams()) -> Reputation:
    """Every subject's score at ``now`` from the whole event log (order does not matter)."""
    weighted = [(compute_decay_weight(e.time, now, params), e) for e in events]
    weighted = [(w, e) for w, e in weighted if w > 0]
    return Reputation(makers=_maker_scores(weighted, params), oracles=_oracle_scores(weighted, params),
                      watchers=_watcher_scores(weighted), coordinators=_coordinator_scores(weighted))


def is_routed(rfq_id: Digest, maker: Address, score_ppm: int) -> bool:
    """Whether an RFQ is offered to a maker of this score (deterministic, about ``score`` of the time)."""
    draw = int.from_bytes(keccak256(bytes(rfq_id) + bytes.fromhex(maker[2:])), "big") % PPM
    return draw < score_ppm


def compute_new_maker_score(params: ReputationParams = ReputationParams()) -> int:
    """The score (ppm) of a maker with no history: only the fade prior counts against it."""
    return _ppm(1 - Fraction(params.fade_prior_fades, params.fade_prior_quotes))


def compute_router(reputation: Reputation, params: ReputationParams = ReputationParams()) -> Router:
    """A :class:`~clearhouse.market.rfq.Router` over ``reputation``: paused makers get nothing,
    others by :func:`is_routed`; makers with no history score as :func:`compute_new_maker_score`."""
    new_maker = compute_new_maker_score(params)

    def route(rfq: Signed[RFQ], makers: Sequence[Address], /) -> tuple[Address, ...]:
        chosen = []
        for maker in makers:
            if maker == rfq.message.taker:
                continue
            score = reputation.makers.get(maker)
            if score is not None and score.paused:
                continue
            if is_routed(rfq.digest, maker, new_maker if score is None else score.score_ppm):
                chosen.append(maker)
        return tuple(chosen)

    return route
