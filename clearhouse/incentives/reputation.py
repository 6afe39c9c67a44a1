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
  ``fade_rate >= pause_fade_rate``, and while its latest fade is less than ``fade_cooldown_days``
  whole days old (default 1: each fade costs a day of RFQ flow).
- oracle member: ``miss_rate = (missed + 1) / (rounds + 20)``; ``deviation`` the weighted mean of
  ``|price - median| / median`` in parts per million; ``score = (1 - miss_rate) * max(0, 1 -
  deviation / max_deviation)``.
- watcher: ``score = (valid + 1) / (valid + rejected + 2)``.
- coordinator: ``score = (finalised + 1) / (finalised + reverted + 2) * uptime`` with
  ``uptime = (up + 1) / (up + down + 1)`` over its hourly uptime slots (:func:`compute_uptime_slots`:
  down when a queued deposit or forced withdrawal waited too long and no batch came, up otherwise).

Routing (:func:`compute_router`): a maker is offered an RFQ when the RFQ's id hashed with the
maker's address, read as a number in ``[0, 10**6)``, is below its routing share in ppm: its score
relative to a new maker's, capped at 1 (:func:`compute_routing_share`). A maker at least as good as
a newcomer sees every RFQ, one at half that score about half of them, a paused one none; every
party computes the same route.

Committee selection (:func:`compute_committee`): candidates ranked by ``stake × oracle score``
(a member with no rounds scores as :func:`compute_new_oracle_score`), ties by address; the first
``size`` take the seats.

Events travel as JSON (:func:`encode_event`, :func:`decode_event`) in the node's published log.
"""

from __future__ import annotations

import heapq
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from fractions import Fraction
from typing import Any, Final

from clearhouse.errors import ConfigError, InsufficientCandidates, MalformedEvent
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
    "Event",
    "Fade",
    "Fill",
    "Heartbeat",
    "MakerScore",
    "MakerTally",
    "OracleRound",
    "OracleScore",
    "QuoteGiven",
    "Reputation",
    "ReputationParams",
    "Routed",
    "SettlementActivity",
    "WatcherScore",
    "compute_committee",
    "compute_decay_weight",
    "compute_new_maker_score",
    "compute_new_oracle_score",
    "compute_reputation",
    "compute_reputation_json",
    "compute_router",
    "compute_routing_share",
    "compute_uptime_slots",
    "decode_event",
    "encode_event",
    "get_maker_scores",
    "is_maker_event",
    "is_overdue",
    "is_routed",
    "process_maker_event",
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
    fade_cooldown_days: int = 1
    """A maker is also routed nothing while its latest fade is less than this many whole days old
    (0: no cool-down): a fade is a free option taken from the taker, and a maker that fades only
    its losing fills keeps a good fade rate, so each fade must cost it the flow it could earn."""
    miss_prior_missed: int = 1
    miss_prior_rounds: int = 20
    max_deviation_ppm: int = 20_000
    """Mean deviation from the median at which an oracle member's score reaches zero (2 %)."""
    uptime_slot_seconds: int = 3_600
    """Length of a coordinator uptime slot (:func:`compute_uptime_slots`), seconds."""
    uptime_max_wait_seconds: int = 3_600
    """Longest a queued deposit or forced withdrawal may wait for a batch before the slot counts as
    down, seconds; the settlement's ``max_post_delay`` if that is shorter (the devnet's is 30
    days: far too lax to measure liveness by)."""

    def __post_init__(self) -> None:
        if not 0 < self.decay_num <= self.decay_den:
            raise ConfigError("decay must be in (0, 1]", field="decay_num")
        if self.fade_cooldown_days < 0:
            raise ConfigError("fade cool-down must be >= 0 days", field="fade_cooldown_days")
        if not 0 < self.pause_fade_rate_ppm <= PPM:
            raise ConfigError("pause threshold must be in (0, 1e6] ppm", field="pause_fade_rate_ppm")
        if self.uptime_slot_seconds <= 0:
            raise ConfigError("uptime slots must be positive", field="uptime_slot_seconds")
        if self.uptime_max_wait_seconds < 0:
            raise ConfigError("the uptime wait must be >= 0 s", field="uptime_max_wait_seconds")
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
    """One uptime slot of a coordinator, dated by the slot's start: up or down
    (:func:`compute_uptime_slots` derives them from the chain)."""

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
    up: Fraction
    """Weighted uptime slots up (posted, or nothing waited past ``max_post_delay``)."""
    down: Fraction
    """Weighted uptime slots down (work waited past ``max_post_delay`` and no batch came)."""
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


def _maker_scores(events: Sequence[tuple[int, Event]], weights: Mapping[int, Fraction],
                  params: ReputationParams) -> dict[Address, MakerScore]:
    # Integer tallies per (maker, age in days) first, one exact product per group after: the same
    # sums as adding each event's weight, without a rational addition per event.
    tally: dict[Address, dict[int, list[int]]] = defaultdict(dict)
    for days, e in events:
        column = _MAKER_COLUMN.get(type(e))
        if column is not None:
            row = tally[e.maker].setdefault(days, [0, 0, 0, 0, 0])  # type: ignore[union-attr]
            row[column] += 1
            if column == 1:
                row[4] += e.latency_ms  # type: ignore[union-attr]
    out = {}
    for maker in sorted(tally):
        sums = [sum((weights[d] * row[i] for d, row in tally[maker].items()), Fraction(0)) for i in range(5)]
        cooling = any(row[3] for d, row in tally[maker].items() if d < params.fade_cooldown_days)
        out[maker] = _maker_score(sums, cooling, params)
    return out


def _maker_score(sums: Sequence[Fraction], cooling: bool, params: ReputationParams) -> MakerScore:
    """A maker's score from its weighted ``routed, quotes, fills, fades, latency`` sums and whether
    a fade younger than the cool-down exists (shared by the full and the incremental paths)."""
    routed, q, fills, fades, latency = sums
    fade_rate = (fades + params.fade_prior_fades) / (q + params.fade_prior_quotes)
    fade_rate = min(fade_rate, Fraction(1))
    # A maker never routed anything has not failed to respond.
    response = min(q / routed, Fraction(1)) if routed > 0 else Fraction(1)
    score = (1 - fade_rate) * (1 + response) / 2
    return MakerScore(
        routed=routed, quotes=q, fills=fills, fades=fades,
        fade_rate_ppm=_ppm(fade_rate), fill_ratio_ppm=_ppm(min(_ratio(fills, q), Fraction(1))),
        response_rate_ppm=_ppm(response), latency_ms=int(_ratio(latency, q)),
        score_ppm=_ppm(score), paused=_ppm(fade_rate) >= params.pause_fade_rate_ppm or cooling)


_MAKER_COLUMN: Final[dict[type[Any], int]] = {Routed: 0, QuoteGiven: 1, Fill: 2, Fade: 3}
"""The maker events and their column in a maker's tally (column 4 sums quote latencies)."""


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
        out[who] = CoordinatorScore(final[who], reverted[who], up[who], down[who], _ppm(uptime),
                                    _ppm(record * uptime))
    return out


def compute_reputation(events: Iterable[Event], now: Timestamp,
                       params: ReputationParams = ReputationParams()) -> Reputation:
    """Every subject's score at ``now`` from the whole event log (order does not matter)."""
    weights: dict[int, Fraction] = {}
    dated: list[tuple[int, Event]] = []
    for e in events:
        if e.time > now:
            continue  # from the future: weighs nothing
        days = (now - e.time) // DAY
        if days not in weights:
            weights[days] = compute_decay_weight(e.time, now, params)
        dated.append((days, e))
    weighted = [(weights[d], e) for d, e in dated if not is_maker_event(e)]
    return Reputation(makers=_maker_scores(dated, weights, params), oracles=_oracle_scores(weighted, params),
                      watchers=_watcher_scores(weighted), coordinators=_coordinator_scores(weighted))


# --- incremental maker tallies -------------------------------------------------------------------


@dataclass(slots=True)
class MakerTally:
    """The makers' weighted sums kept current as events are appended (:func:`process_maker_event`)
    and as time moves on (:func:`get_maker_scores`), so a routing decision costs O(makers), not
    O(log). Exactly the rationals :func:`compute_reputation` adds from the whole log: an event
    enters at its age in whole days and moves one bucket older each time it turns another day
    old; its weight in the sums changes by ``r^new − r^old``. Time going backwards rebuilds."""

    params: ReputationParams = field(default_factory=ReputationParams)
    now: int | None = None
    """The time the buckets are aged to (``None`` before the first read)."""
    log: list[tuple[Address, int, int, int]] = field(default_factory=list)
    """Every maker event as ``(maker, time, column, latency_ms)`` (a rebuild replays it)."""
    ages: dict[Address, dict[int, list[int]]] = field(default_factory=dict)
    """maker → age in whole days → counts per column (column 4: latency sum), events up to ``now``."""
    sums: dict[Address, list[Fraction]] = field(default_factory=dict)
    """maker → the five weighted sums at ``now``."""
    due: list[tuple[int, int, int]] = field(default_factory=list)
    """Heap of ``(time the event's age next changes, log index, current age or -1 if not yet
    happened)``."""
    scores: dict[Address, MakerScore] = field(default_factory=dict)
    """Scores at ``now`` of makers whose sums have not changed since."""
    weights: dict[int, Fraction] = field(default_factory=dict)
    """``(decay_num/decay_den)^age`` by age."""


def _weight(tally: MakerTally, age: int) -> Fraction:
    w = tally.weights.get(age)
    if w is None:
        w = tally.weights[age] = Fraction(tally.params.decay_num, tally.params.decay_den) ** age
    return w


def _place(tally: MakerTally, index: int, old: int, now: int) -> None:
    """Move log entry ``index`` from age ``old`` (-1: not counted yet) to its age at ``now``."""
    maker, time, column, latency = tally.log[index]
    if time > now:
        heapq.heappush(tally.due, (time, index, -1))
        return
    age = (now - time) // DAY
    buckets = tally.ages.setdefault(maker, {})
    sums = tally.sums.setdefault(maker, [Fraction(0)] * 5)
    delta = _weight(tally, age) - (_weight(tally, old) if old >= 0 else 0)
    if old >= 0:
        row = buckets[old]
        row[column] -= 1
        row[4] -= latency
    row = buckets.setdefault(age, [0, 0, 0, 0, 0])
    row[column] += 1
    row[4] += latency
    sums[column] += delta
    if latency:
        sums[4] += delta * latency
    tally.scores.pop(maker, None)
    heapq.heappush(tally.due, (time + (age + 1) * DAY, index, age))


def process_maker_event(tally: MakerTally, event: Event) -> None:
    """Count one appended event (anything but a maker event is ignored)."""
    column = _MAKER_COLUMN.get(type(event))
    if column is None:
        return
    latency = event.latency_ms if isinstance(event, QuoteGiven) else 0
    tally.log.append((event.maker, int(event.time), column, latency))  # type: ignore[union-attr]
    index = len(tally.log) - 1
    if tally.now is None:
        heapq.heappush(tally.due, (int(event.time), index, -1))
    else:
        _place(tally, index, -1, tally.now)


def _age_to(tally: MakerTally, now: int) -> None:
    if tally.now is not None and now < tally.now:  # time went back: start again from the log
        tally.ages.clear()
        tally.sums.clear()
        tally.scores.clear()
        tally.due = [(t, i, -1) for i, (_, t, _, _) in enumerate(tally.log)]
        heapq.heapify(tally.due)
    tally.now = now
    while tally.due and tally.due[0][0] <= now:
        _, index, old = heapq.heappop(tally.due)
        _place(tally, index, old, now)


def get_maker_scores(tally: MakerTally, now: Timestamp) -> dict[Address, MakerScore]:
    """Every maker's score at ``now``: equal, field for field, to ``compute_reputation(events,
    now).makers`` over the events given to :func:`process_maker_event` (makers in address order)."""
    _age_to(tally, int(now))
    cooldown = tally.params.fade_cooldown_days
    out = {}
    for maker in sorted(tally.sums):
        score = tally.scores.get(maker)
        if score is None:
            buckets = tally.ages[maker]
            cooling = any(buckets[d][3] for d in range(cooldown) if d in buckets)
            score = tally.scores[maker] = _maker_score(tally.sums[maker], cooling, tally.params)
        out[maker] = score
    return out


def is_routed(rfq_id: Digest, maker: Address, score_ppm: int) -> bool:
    """Whether an RFQ is offered to a maker of this score (deterministic, about ``score`` of the time)."""
    draw = int.from_bytes(keccak256(bytes(rfq_id) + bytes.fromhex(maker[2:])), "big") % PPM
    return draw < score_ppm


def compute_new_maker_score(params: ReputationParams = ReputationParams()) -> int:
    """The score (ppm) of a maker with no history: only the fade prior counts against it."""
    return _ppm(1 - Fraction(params.fade_prior_fades, params.fade_prior_quotes))


def compute_routing_share(score_ppm: int, params: ReputationParams = ReputationParams()) -> int:
    """The share of RFQs (ppm) offered to a maker of this score: ``score / new maker score``,
    rounded down and capped at 10**6, so routing never punishes a maker for being new."""
    return min(PPM, score_ppm * PPM // compute_new_maker_score(params))


def compute_router(reputation: Reputation, params: ReputationParams = ReputationParams()) -> Router:
    """A :class:`~clearhouse.market.rfq.Router` over ``reputation``: paused makers get nothing,
    others by :func:`is_routed` at :func:`compute_routing_share` of their score; makers with no
    history score as :func:`compute_new_maker_score` (and so see every RFQ)."""
    new_maker = compute_new_maker_score(params)

    def route(rfq: Signed[RFQ], makers: Sequence[Address], /) -> tuple[Address, ...]:
        chosen = []
        for maker in makers:
            if maker == rfq.message.taker:
                continue
            score = reputation.makers.get(maker)
            if score is not None and score.paused:
                continue
            share = compute_routing_share(new_maker if score is None else score.score_ppm, params)
            if is_routed(rfq.digest, maker, share):
                chosen.append(maker)
        return tuple(chosen)

    return route


# --- committee selection -----------------------------------------------------------------------


def compute_new_oracle_score(params: ReputationParams = ReputationParams()) -> int:
    """The score (ppm) of an oracle member with no rounds: only the miss prior counts against it."""
    return _ppm(1 - Fraction(params.miss_prior_missed, params.miss_prior_rounds))


def compute_committee(stakes: Mapping[Address, int], reputation: Reputation, size: int, *,
                      min_stake: int = 1, params: ReputationParams = ReputationParams()
                      ) -> tuple[Address, ...]:
    """The ``size`` oracle seats: candidates with at least ``min_stake`` (token base units) ranked
    by ``stake × score_ppm`` (members without rounds at :func:`compute_new_oracle_score`), highest
    first, ties by lower-case address; a zero score never sits. Deterministic: everyone with the
    same stakes and scores picks the same committee, in rank order."""
    if size < 1:
        raise ConfigError("a committee has at least one seat", field="size")
    new_member = compute_new_oracle_score(params)
    weights = []
    for who, stake in stakes.items():
        score = reputation.oracles[who].score_ppm if who in reputation.oracles else new_member
        if int(stake) >= min_stake and score > 0:
            weights.append((-int(stake) * score, who.lower(), who))
    if len(weights) < size:
        raise InsufficientCandidates(f"{len(weights)} eligible candidates for {size} seats",
                                     field="size", eligible=len(weights))
    return tuple(who for _, _, who in sorted(weights)[:size])


# --- coordinator uptime --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SettlementActivity:
    """What the chain shows of a settlement's liveness (``node/reputation.py`` reads it from
    ``Settlement`` and ``Vault``; every time is a block timestamp, in seconds)."""

    holders: Sequence[tuple[Timestamp, Address | None]]
    """Who may post from when, in chain order: a batch's poster from its posting, an admitted
    coordinator from ``CoordinatorAdmitted``, nobody (``None``) from ``FraudProven`` or ``Frozen``."""
    posts: Sequence[tuple[Timestamp, Address, int, int]]
    """Each ``BatchPosted``: ``(time, poster, deposit queue entries consumed, forced entries consumed)``
    (the header's cumulative counts)."""
    deposits: Sequence[Timestamp]
    """When each deposit queue entry was queued, in queue order."""
    forced: Sequence[Timestamp]
    """When each forced-withdrawal queue entry was queued, in queue order."""
    pauses: Sequence[tuple[Timestamp, Timestamp]] = ()
    """Emergency pauses ``[start, end)``: no batch may be posted."""
    max_post_delay: int = 0
    """Seconds queued work may wait for a batch (``Settlement.max_post_delay``)."""


def is_overdue(queued: Sequence[Timestamp], consumed: int, end: int, max_wait: int) -> bool:
    """Whether the oldest queue entry no batch consumed (index ``consumed``) was queued more than
    ``max_wait`` seconds before ``end``."""
    return consumed < len(queued) and queued[consumed] + max_wait < end


def compute_uptime_slots(activity: SettlementActivity, now: Timestamp,
                         params: ReputationParams = ReputationParams()) -> list[Heartbeat]:
    """One :class:`Heartbeat` per whole ``uptime_slot_seconds`` slot ``[s, e)`` that ended by ``now``,
    from the slot of the first holder on, dated ``s``, for the coordinator holding the post at
    ``e − 1``: **up** if it posted a batch in the slot; otherwise **not scored** if nobody held the
    post or an emergency pause overlapped the slot; otherwise **down** if a deposit or forced
    withdrawal no batch posted before ``e`` consumed was queued more than ``min(max_post_delay,
    uptime_max_wait_seconds)`` before ``e`` (:func:`is_overdue`), else **up** (nothing was
    waiting: a quiet slot costs nothing). A batch reverted later still counts as posted (the
    revert is scored as such) and the entries it consumed as served."""
    if not activity.holders:
        return []
    slot = params.uptime_slot_seconds
    wait = min(activity.max_post_delay, params.uptime_max_wait_seconds)
    holders = sorted(activity.holders, key=lambda h: h[0])  # stable: chain order within a second
    posts = sorted(activity.posts, key=lambda p: p[0])
    out: list[Heartbeat] = []
    deposits = forced = 0
    i = j = 0
    who: Address | None = None
    for start in range(holders[0][0] // slot * slot, now - slot + 1, slot):
        end = start + slot
        posters = set()
        while i < len(posts) and posts[i][0] < end:
            posters.add(posts[i][1])
            deposits, forced = max(deposits, posts[i][2]), max(forced, posts[i][3])
            i += 1
        while j < len(holders) and holders[j][0] < end:
            who = holders[j][1]
            j += 1
        if who is None:
            continue
        if who in posters:
            out.append(Heartbeat(who, True, Timestamp(start)))
        elif not any(p < end and q > start for p, q in activity.pauses):
            late = (is_overdue(activity.deposits, deposits, end, wait)
                    or is_overdue(activity.forced, forced, end, wait))
            out.append(Heartbeat(who, not late, Timestamp(start)))
    return out


# --- JSON --------------------------------------------------------------------------------------

_TYPES: Final[dict[type[Any], str]] = {Routed: "routed", QuoteGiven: "quote", Fill: "fill", Fade: "fade",
                                  OracleRound: "oracle_round", ChallengeOutcome: "challenge",
                                  BatchOutcome: "batch", Heartbeat: "heartbeat"}


def is_maker_event(event: Event) -> bool:
    """Whether ``event`` is about a maker (the node's own log; the rest comes from the chain)."""
    return type(event) in _MAKER_COLUMN


def encode_event(event: Event) -> dict[str, Any]:
    """``event`` as plain JSON: ``type`` plus its fields (bytes as 0x-hex)."""
    body: dict[str, Any] = {"type": _TYPES[type(event)]}
    for f in fields(event):
        value = getattr(event, f.name)
        body[f.name] = "0x" + bytes(value).hex() if isinstance(value, bytes) else value
    return body


def _field(data: Mapping[str, Any], name: str, kind: type) -> Any:
    value = data.get(name)
    if kind is int and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
        raise MalformedEvent(f"{name} must be a non-negative integer", field=name)
    if kind is bool and not isinstance(value, bool):
        raise MalformedEvent(f"{name} must be a boolean", field=name)
    if kind is Address and not (isinstance(value, str) and len(value) == 42 and value.startswith("0x")
                                and all(c in "0123456789abcdefABCDEF" for c in value[2:])):
        raise MalformedEvent(f"{name} must be a 0x address", field=name)
    if kind is Digest:
        if not (isinstance(value, str) and len(value) == 66 and value.startswith("0x")):
            raise MalformedEvent(f"{name} must be a 0x 32-byte hash", field=name)
        try:
            return Digest(bytes.fromhex(value[2:]))
        except ValueError as exc:
            raise MalformedEvent(f"{name} is not hex", field=name) from exc
    return value


def decode_event(data: Mapping[str, Any]) -> Event:
    """The event :func:`encode_event` wrote; :class:`MalformedEvent` for anything else."""
    kind = data.get("type") if isinstance(data, Mapping) else None
    cls = next((c for c, name in _TYPES.items() if name == kind), None)
    if cls is None:
        raise MalformedEvent(f"unknown event type {kind!r}", field="type")
    hints = {"maker": Address, "member": Address, "watcher": Address, "coordinator": Address,
             "rfq_id": Digest, "quote_id": Digest, "latency_ms": int, "time": int, "round": int,
             "median": int, "number": int, "valid": bool, "finalised": bool, "up": bool}
    names = [f.name for f in fields(cls)]
    values = {}
    for name in names:
        if name == "price":
            price = data.get("price")
            if price is not None and (isinstance(price, bool) or not isinstance(price, int) or price < 0):
                raise MalformedEvent("price must be a non-negative integer or null", field="price")
            values[name] = price
        else:
            values[name] = _field(data, name, hints[name])
    extra = set(data) - {"type", *names}
    if extra:
        raise MalformedEvent(f"unknown fields {sorted(extra)}", field=sorted(extra)[0])
    event: Event = cls(**values)
    return event


def compute_reputation_json(reputation: Reputation) -> dict[str, Any]:
    """Every published score as plain JSON (ppm integers; weighted counts as exact ``"p/q"``)."""
    def row(score: Any) -> dict[str, Any]:
        return {f.name: str(v) if isinstance(v, Fraction) else v
                for f in fields(score) for v in (getattr(score, f.name),)}
    return {role: {who: row(score) for who, score in sorted(getattr(reputation, role).items())}
            for role in ("makers", "oracles", "watchers", "coordinators")}
