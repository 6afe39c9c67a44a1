"""Incentive simulation: honest and adversarial agents over many seeded episodes, paid by the
project's own rules, to see who gains and who loses and whether honesty is the best response.

Each scenario is run twice per seed with the same random draws (common random numbers): once with
every agent honest, once with one agent (or one coalition) deviating. The deviator's payoff in the
two runs is compared: honesty is its best response when the deviation pays less, by a margin.
Payoffs come from the rule packages, never from numbers written here: routing and reputation from
:mod:`clearhouse.incentives.reputation` (``compute_reputation``, ``compute_router``), staker shares
from :mod:`clearhouse.incentives.rewards` (``compute_share``), oracle members' shares by work from
:mod:`clearhouse.incentives.oracle_rewards` (``compute_work_share`` over the observations the
leader's report carries, ``select_observations``), dispute bonds and voter rewards from
:mod:`clearhouse.disputes` (``compute_dispute_payouts``), round-dispute slashing from
:mod:`clearhouse.oracle.disputes` (``compute_dispute_outcome``), stakes, bonds and reward shares from
the default parameters (``clearhouse/presets``, ``clearhouse/sim/oracle_hub.py``). Every token moves
through a :class:`Ledger` that refuses to create or destroy value, so each episode is checked to
balance to the base unit. :func:`check_on_chain` replays the cheap faults on the real contracts
(an equivocation slashed, a griefing dispute refused and its bond lost) and a day of oracle rewards
paid by work through ``OracleRewards``, and compares the amounts.

Run ``python -m clearhouse.sim.incentives`` (``make incentives``): a table on the terminal and
``out/incentives/summary.json``.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Final, Literal, get_args

from eth_account import Account
from rich.console import Console
from rich.table import Table

from clearhouse.chain import InProcessChain
from clearhouse.disputes import DisputeParams
from clearhouse.disputes.arbitration import Reveal, compute_voter_penalty
from clearhouse.disputes.assertions import compute_dispute_payouts
from clearhouse.disputes.bonds import Stake
from clearhouse.incentives.oracle_rewards import compute_work_credits, compute_work_share
from clearhouse.incentives.reputation import (
    Event,
    Fade,
    Fill,
    OracleRound,
    QuoteGiven,
    ReputationParams,
    Routed,
    compute_reputation,
    compute_router,
)
from clearhouse.incentives.rewards import compute_share
from clearhouse.incentives.slashing import (
    Fault,
    SlashingParams,
    Split,
    compute_lost_assertion_split,
    compute_oracle_fault_split,
    compute_voter_penalty_split,
)
from clearhouse.market.trades import Signed
from clearhouse.messages import RFQ, Leg, Side
from clearhouse.messages.keccak import keccak256
from clearhouse.oracle import (
    Committee,
    HubParams,
    SignedObservation,
    compute_feed_id,
    compute_observation,
    compute_report,
    compute_signed_report,
    find_equivocations,
    select_observations,
    sign_observation,
    sign_report,
)
from clearhouse.oracle.disputes import compute_dispute_outcome
from clearhouse.oracle.encoding import compute_transmit_args
from clearhouse.params import Params, load_params
from clearhouse.sim.oracle_hub import (
    DEFAULT_DISPUTES,
    DEFAULT_HUB,
    USDC,
    deploy_oracle_rewards,
    deploy_oracle_system,
)
from clearhouse.sim.settlement_chain import REWARD_BPS
from clearhouse.types import (
    Address,
    Amount,
    BasisPoints,
    Digest,
    Nonce,
    Price,
    Quantity,
    RoundId,
    Seconds,
    SeriesId,
    Timestamp,
)

__all__ = [
    "KNOWN_GAPS",
    "SCENARIOS",
    "Economy",
    "Ledger",
    "ScenarioResult",
    "check_on_chain",
    "check_oracle_rewards_on_chain",
    "compute_slashing_params",
    "run_campaign",
    "run_episode",
    "run_scenario",
]

BPS: Final = 10_000
DAY: Final = 86_400
PARAMS: Final = load_params("devnet")
"""The preset whose windows the slashing parameters take."""
T0: Final = Timestamp(1_800_000_000)
"""Simulated time starts here (any fixed instant: reputation only reads ages)."""
FEED: Final = compute_feed_id("ETH/USDC")
"""The lazy-member scenario's feed."""


OracleRewardRule = Literal["work", "stake", "committee"]
"""The oracle role's reward rules the simulation can apply (``Economy.oracle_rewards``)."""


@dataclass(frozen=True, slots=True)
class Economy:
    """Everything an episode is paid by. Protocol constants come from the defaults; the rest are
    the scenarios' assumptions about the world, in collateral base units (6 decimals) unless said."""

    hub: HubParams = DEFAULT_HUB
    """Oracle stake, slash amount, prover reward, dispute bond (the demo's and tests' defaults)."""
    disputes: DisputeParams = DEFAULT_DISPUTES
    """Arbitration quorum, voter slash and voter reward shares."""
    reputation: ReputationParams = field(default_factory=ReputationParams)
    """Decay, fade and miss priors, maker pause threshold."""
    days: int = 14
    """Length of an episode; reputation is recomputed at the start of each day."""
    rfqs_per_day: int = 24
    """RFQs a day in the maker scenario."""
    rfq_premium: int = 1_000 * USDC
    """Premium of one RFQ's structure (ten condors of about 100 USDC)."""
    maker_edge_bps: int = 200
    """A maker's edge on the premium: the demo's tightest maker quotes 2 % off fair value."""
    move_bps: int = 100
    """Standard deviation of the premium's move between quote and accept (a 20 s quote life at
    ~70 % vol, an option's vega and delta): half the edge."""
    rounds_per_day: int = 24
    """Oracle rounds a day the lazy-member scenario scores (one an hour: a sample of the feed)."""
    observation_cost: int = 2 * USDC
    """What one scored round's observations cost a member (data, signing, bandwidth): 2 USDC."""
    oracle_rewards_per_day: int = 400 * USDC
    """Fees and emissions credited to the oracle role each day (one epoch), shared by ``Rewards``."""
    candidates: int = 5
    """Oracle-role stakers; the committee is the ``committee`` best scored of them."""
    committee: int = 4
    """Committee size ``3f + 1`` with ``f = 1``."""
    window_rounds: int = 60
    """Rounds in a settlement TWAP window (15 minutes at one round every 15 s, as in the demo)."""
    spot: int = 3_000 * USDC
    """Underlying price."""
    wrong_bps: int = 2_500
    """How far the colluders push their round (the demo's 25 %)."""
    attacker_delta: int = 100
    """The attacker's net delta to the settlement price, in whole units of the underlying."""
    watchers: int = 2
    """Independent watchers checking every round."""
    watcher_online_bps: int = 9_000
    """Probability each watcher is online at a given round."""
    arbitrators: int = 5
    """Arbitrators bonded in the arbitrator role."""
    arbitrator_stake: tuple[int, int] = (5_000 * USDC, 50_000 * USDC)
    """Range an arbitrator's stake is drawn from (uniform)."""
    bribe_budget: int = 20_000 * USDC
    """The bribing attacker's budget."""
    griefs_per_episode: int = 3
    """Valid rounds the griefing challenger disputes in an episode."""
    oracle_rewards: OracleRewardRule = "work"
    """How the oracle role's rewards are shared: ``"work"`` pro rata to the observations each member
    contributed to stored reports (``OracleRewards.vy``, docs/decisions/0008), ``"stake"`` pro rata
    to stake among every oracle-role staker (``Rewards.vy``, the rule before 0008), ``"committee"``
    pro rata to stake among the day's committee (a proposal the lazy-member variant measures)."""


# --- accounting ----------------------------------------------------------------------------------


@dataclass
class Ledger:
    """Who paid whom: every movement is a transfer, so the balances always add up to zero and no
    amount is created or destroyed. ``world`` (counterparties outside the episode, the fee payers),
    ``costs`` (what operating burns) and ``insurance`` are accounts like the agents."""

    balances: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    slashed: int = 0
    """Everything taken from stake (must equal rewards paid out of slashes plus insurance)."""
    slash_rewards: int = 0
    credited: int = 0
    """Staker rewards credited (fees, emissions)."""
    paid: int = 0
    """Staker rewards paid (must not exceed ``credited``)."""

    def transfer(self, src: str, dst: str, amount: int) -> None:
        """Move ``amount`` (negative: the other way)."""
        self.balances[src] -= amount
        self.balances[dst] += amount

    def apply_slash(self, who: str, split: Split, prover: str) -> None:
        """A slash of ``who``'s stake split by :mod:`clearhouse.incentives.slashing`: the prover's
        share to ``prover``, the insurance share to the fund, the burned share destroyed (held by
        ``burned``); voters' shares are paid by the caller."""
        self.transfer(who, prover, split.prover)
        self.transfer(who, "insurance", split.insurance)
        self.transfer(who, "burned", split.burned)
        if split.voters:
            raise AssertionError("stake slashes pay no voters (only lost bonds do)")
        self.slashed += split.slashed
        self.slash_rewards += split.prover

    def check(self) -> None:
        """Raise unless nothing was minted: balances sum to zero, slashes split exactly, rewards
        paid never exceed rewards credited."""
        if sum(self.balances.values()) != 0:
            raise AssertionError(f"ledger does not balance: {sum(self.balances.values())}")
        if self.slash_rewards > self.slashed:
            raise AssertionError("slashing paid more than it took")
        if self.paid > self.credited:
            raise AssertionError("rewards paid exceed rewards credited")
        if self.balances.get("insurance", 0) + self.balances.get("burned", 0) != self.slashed - self.slash_rewards:
            raise AssertionError("insurance fund differs from slashed minus rewards")


def compute_slashing_params(econ: Economy, params: Params = PARAMS) -> SlashingParams:
    """The slashing parameters of the default deployment: the preset's windows, the settlement's
    challenger reward and unbonding delay (``clearhouse/sim/settlement_chain.py``), the oracle's and
    the arbitration's constants from ``econ``."""
    return SlashingParams(coordinator_reward_bps=BasisPoints(REWARD_BPS), challenge_window=params.challenge_window,
                          force_withdrawal_delay=params.force_withdrawal_delay, timelock=params.timelock,
                          settlement_unbonding_delay=Seconds(7 * DAY), hub=econ.hub, disputes=econ.disputes)


def _addr(label: str) -> Address:
    return Address(Account.from_key(keccak256(label.encode())).address)


# --- scenarios -----------------------------------------------------------------------------------


def _rfq(taker: Address, rfq_id: Digest) -> Signed[RFQ]:
    """An RFQ as the router sees it: only its id and taker matter for routing."""
    leg = Leg(SeriesId(bytes(32)), 1, True)
    message = RFQ(taker, (leg,), Quantity(1_000), Side.BUY, Nonce(0), T0)
    return Signed(message, b"", rfq_id)


def _fading_maker(econ: Economy, rng: random.Random, deviate: bool, threshold_bps: int,
                  ledger: Ledger) -> dict[str, Any]:
    """Three makers answer RFQs routed by reputation; the taker accepts a random quote (all quote
    the same edge) and moves on after a fade. The deviator cancels an accepted quote when the
    premium moved against it by more than ``threshold_bps`` of its edge (0: any adverse move; 10000:
    only when the fill would lose money). Routing is recomputed daily from the event log."""
    makers = {name: _addr(f"maker {name}") for name in ("deviator", "maker b", "maker c")}
    taker = _addr("taker")
    events: list[Event] = []
    edge = econ.rfq_premium * econ.maker_edge_bps // BPS
    sigma = econ.rfq_premium * econ.move_bps // BPS
    fades = fills = 0
    for day in range(econ.days):
        now = Timestamp(T0 + day * DAY)
        router = compute_router(compute_reputation(events, now, econ.reputation), econ.reputation)
        for i in range(econ.rfqs_per_day):
            at = Timestamp(now + i * (DAY // econ.rfqs_per_day))
            rfq_id = Digest(keccak256(f"{rng.random()}".encode()))
            move = round(rng.gauss(0, sigma))  # > 0: the premium moved against the maker
            order = list(makers)
            rng.shuffle(order)
            routed = set(router(_rfq(taker, rfq_id), list(makers.values())))
            latency = {name: 150 + rng.randrange(100) for name in order}  # drawn for all: same draws either way
            for name in order:
                if makers[name] not in routed:
                    continue
                events.append(Routed(makers[name], rfq_id, at))
                events.append(QuoteGiven(makers[name], rfq_id, latency[name], at))
            for name in order:
                if makers[name] not in routed:
                    continue
                if deviate and name == "deviator" and move * BPS > edge * threshold_bps:
                    events.append(Fade(makers[name], rfq_id, at))
                    fades += 1
                    continue
                events.append(Fill(makers[name], rfq_id, at))
                ledger.transfer("world", name, edge - move)
                if name == "deviator":
                    fills += 1
                break
    final = compute_reputation(events, Timestamp(T0 + econ.days * DAY), econ.reputation)
    score = final.makers.get(makers["deviator"])
    return {"deviator_fades": fades, "deviator_fills": fills,
            "deviator_score_ppm": score.score_ppm if score else None,
            "deviator_paused": bool(score and score.paused)}


def _oracle_share(econ: Economy, name: str, committee: Sequence[str], stake: Mapping[str, int],
                  work: Mapping[str, int]) -> int:
    """``name``'s share of one day's oracle rewards under ``econ.oracle_rewards`` (base units)."""
    rewards = econ.oracle_rewards_per_day
    if econ.oracle_rewards == "work":
        return compute_work_share(work[name], sum(work.values()), rewards)
    paid = committee if econ.oracle_rewards == "committee" else list(stake)
    return compute_share(stake[name], sum(stake[m] for m in paid), rewards) if name in paid else 0


def _lazy_oracle(econ: Economy, rng: random.Random, deviate: bool, ledger: Ledger) -> dict[str, Any]:
    """Five equal oracle stakers; each day the ``committee`` best scored serve (reputation used for
    committee selection, DESIGN §10), paying for every observation. The day's oracle rewards (one
    epoch) are shared by ``econ.oracle_rewards``: by default ``OracleRewards``' rule, pro rata to
    the observations each member contributed that day; or pro rata to stake among every
    oracle-role staker (``Rewards``), or among the day's committee. The deviator skips half its
    rounds."""
    names = ["deviator", *(f"member {i}" for i in range(1, econ.candidates))]
    members = {n: _addr(f"oracle {n}") for n in names}
    by_address = {a: n for n, a in members.items()}
    stake = {n: int(econ.hub.min_stake) for n in names}
    events: list[Event] = []
    served = 0
    # a member never scored ranks as one with no rounds: only the miss prior counts against it
    p = econ.reputation
    new_member = (p.miss_prior_rounds - p.miss_prior_missed) * 1_000_000 // p.miss_prior_rounds
    for day in range(econ.days):
        now = Timestamp(T0 + day * DAY)
        rep = compute_reputation(events, now, econ.reputation)
        order = sorted(names, key=lambda n: (-(rep.oracles[members[n]].score_ppm if members[n] in rep.oracles
                                              else new_member), n))
        committee = order[:econ.committee]
        served += "deviator" in committee
        work = dict.fromkeys(names, 0)
        seated = Committee(FEED, tuple(members[n] for n in committee), (econ.committee - 1) // 3, day + 1)
        for r in range(econ.rounds_per_day):
            at = Timestamp(now + r * (DAY // econ.rounds_per_day))
            median = econ.spot + round(rng.gauss(0, econ.spot // 1_000))
            observed = []
            for n in committee:
                skip, noise = rng.random(), round(rng.gauss(0, median // 20_000))  # drawn either way
                price = None if deviate and n == "deviator" and skip < 0.5 else median + noise
                events.append(OracleRound(members[n], day * econ.rounds_per_day + r, price, median, at))
                if price is not None:
                    ledger.transfer(n, "costs", econ.observation_cost)
                    observed.append(SignedObservation(compute_observation(
                        FEED, RoundId(r), Price(price), at, Seconds(60)), b"", members[n]))
            # the leader's report carries the 2f+1 observations around the median: each earns one unit
            for o in select_observations(seated, observed):
                work[by_address[o.signer]] += 1
        ledger.transfer("world", "rewards", econ.oracle_rewards_per_day)
        ledger.credited += econ.oracle_rewards_per_day
        for n in names:
            share = _oracle_share(econ, n, committee, stake, work)
            ledger.transfer("rewards", n, share)
            ledger.paid += share
    final = compute_reputation(events, Timestamp(T0 + econ.days * DAY), econ.reputation)
    score = final.oracles.get(members["deviator"])
    return {"deviator_days_on_committee": served, "deviator_score_ppm": score.score_ppm if score else None}


def _arbitrators(econ: Economy, rng: random.Random) -> dict[str, int]:
    low, high = econ.arbitrator_stake
    return {f"arbitrator {i}": rng.randrange(low, high + 1) for i in range(econ.arbitrators)}


def _settle_dispute(econ: Economy, ledger: Ledger, *, disputer: str, defender: str,
                    votes: Mapping[str, tuple[int, bool]], accused: Sequence[str]) -> bool:
    """A round dispute arbitrated by ``votes`` (name → (weight, vote: the round is wrong)). Moves the bonds, voter rewards, voter penalties and slashes by the rules; returns
    whether the round was ruled wrong."""
    bond = int(econ.hub.dispute_bond)
    ledger.transfer(disputer, "escrow", bond)
    ledger.transfer(defender, "escrow", bond)
    reveals = [Reveal(_addr(n), Amount(w), v) for n, (w, v) in votes.items()]
    total_weight = Amount(sum(w for w, _ in votes.values()))
    payouts = compute_dispute_payouts(Amount(bond), econ.disputes.voter_reward_bps, reveals, total_weight,
                                      econ.disputes.quorum_bps)
    by_addr = {_addr(n): n for n in votes}
    ledger.transfer("escrow", disputer, payouts.asserter)  # OracleDisputes asserts on the disputer's behalf
    ledger.transfer("escrow", defender, payouts.disputer)
    for voter, reward in payouts.voter_rewards.items():
        ledger.transfer("escrow", by_addr[voter], reward)
    if sum(payouts.voter_rewards.values()) != payouts.voter_pool:
        raise AssertionError("voter rewards do not add up to the voter pool")
    slashing = compute_slashing_params(econ)
    if payouts.verdict is not None and payouts.voter_pool != compute_lost_assertion_split(slashing, Amount(bond)).voters:
        raise AssertionError("Assertions and the slashing rules disagree on the voters' pool")
    for n, (w, v) in votes.items():
        if payouts.verdict is not None and v is not payouts.truthful:
            ledger.apply_slash(n, compute_voter_penalty_split(slashing, Fault.ARBITRATOR_LOSING_SIDE, Amount(w),
                                                              Amount(w)), "insurance")
    stake = {_addr(n): Stake(econ.hub.min_stake, Amount(0)) for n in accused}
    outcome = compute_dispute_outcome(payouts, stake, econ.hub)
    for n in accused:
        if _addr(n) in outcome.slashes:
            split = compute_oracle_fault_split(slashing, Fault.WRONG_ROUND_ARBITRATED, econ.hub.min_stake)
            if outcome.slashes[_addr(n)].slashed != split.slashed:
                raise AssertionError("OracleDisputes and the slashing rules disagree on a slash")
            ledger.apply_slash(n, split, disputer)
    return outcome.invalid


def _wrong_round(econ: Economy, rng: random.Random, ledger: Ledger, *, bribe: bool) -> dict[str, Any]:
    """``f + 1`` colluding members sign one round ``wrong_bps`` high while holding ``attacker_delta``.
    Watchers online dispute it; a colluder defends; arbitrators vote (honestly, unless bribed: the
    attacker buys the cheapest majority of the arbitration weight its budget allows, paying each
    arbitrator its loss if the bribe fails: the voter penalty plus its forgone reward). A round
    ruled wrong is skipped by the TWAP and its signers are slashed; a round that stands moves the
    TWAP by ``wrong/window_rounds`` and pays the attacker's position."""
    colluders = ["colluder 1", "colluder 2"]
    arbs = _arbitrators(econ, rng)
    total = sum(arbs.values())
    seen = any([rng.random() * BPS < econ.watcher_online_bps for _ in range(econ.watchers)])
    bribed: list[str] = []
    spent = 0
    if bribe and seen:
        bond = int(econ.hub.dispute_bond)
        pool = bond * econ.disputes.voter_reward_bps // BPS
        price = {n: compute_voter_penalty(Amount(w), econ.disputes.voter_slash_bps) + pool * w // total
                 for n, w in arbs.items()}
        weight = 0
        for n in sorted(arbs, key=lambda n: -arbs[n]):  # fewest voters: largest first
            if weight * 2 > total or spent + price[n] > econ.bribe_budget:
                break
            bribed.append(n)
            spent += price[n] + 1
            weight += arbs[n]
        if weight * 2 <= total:
            bribed, spent = [], 0  # a bribe that cannot buy a majority is not offered
        for n in bribed:
            ledger.transfer("attacker", n, price[n] + 1)
    invalid = False
    if seen:
        votes = {n: (w, n not in bribed) for n, w in arbs.items()}
        invalid = _settle_dispute(econ, ledger, disputer="watcher", defender=colluders[0],
                                  votes=votes, accused=colluders)
    if not invalid:
        shift = econ.spot * econ.wrong_bps // BPS // econ.window_rounds
        ledger.transfer("world", "attacker", econ.attacker_delta * shift)
    return {"disputed": seen, "ruled_wrong": invalid, "bribed": len(bribed), "bribes_paid": spent,
            "bribed_weight_bps": sum(arbs[n] for n in bribed) * BPS // total}


def _colluding_minority(econ: Economy, rng: random.Random, deviate: bool, ledger: Ledger) -> dict[str, Any]:
    """The coalition (two colluders and the position they hold, ``attacker``) deviates by signing a
    wrong round; honest, it signs the market and gains nothing from the oracle."""
    if not deviate:
        _arbitrators(econ, rng)
        [rng.random() for _ in range(econ.watchers)]
        return {}
    return _wrong_round(econ, rng, ledger, bribe=False)


def _bribing_attacker(econ: Economy, rng: random.Random, deviate: bool, ledger: Ledger) -> dict[str, Any]:
    """As the colluding minority, with a budget to bribe arbitrators into upholding the round."""
    if not deviate:
        _arbitrators(econ, rng)
        [rng.random() for _ in range(econ.watchers)]
        return {}
    return _wrong_round(econ, rng, ledger, bribe=True)


def _griefing_challenger(econ: Economy, rng: random.Random, deviate: bool, ledger: Ledger) -> dict[str, Any]:
    """The deviator disputes valid rounds: each time a member defends, arbitrators vote that the
    round stands, the griefer's bond goes to the defender and the voters. Honest, it disputes
    nothing (every round is right)."""
    if not deviate:
        for _ in range(econ.griefs_per_episode):
            _arbitrators(econ, rng)
        return {}
    for _ in range(econ.griefs_per_episode):
        votes = {n: (w, False) for n, w in _arbitrators(econ, rng).items()}
        _settle_dispute(econ, ledger, disputer="deviator", defender="member 1",
                        votes=votes, accused=["member 1"])
    return {"griefs": econ.griefs_per_episode}


Runner = Callable[[Economy, random.Random, bool, Ledger], dict[str, Any]]


@dataclass(frozen=True, slots=True)
class Scenario:
    """One adversarial strategy against its honest counterpart."""

    name: str
    description: str
    deviator: tuple[str, ...]
    """Ledger accounts whose summed payoff is the deviating agent's (a coalition for attacks)."""
    run: Runner


SCENARIOS: Final = (
    Scenario("fading maker", "cancels accepted quotes after any adverse move (last look)",
             ("deviator",), lambda e, r, d, led: _fading_maker(e, r, d, 0, led)),
    Scenario("fading maker (losses only)", "cancels only accepted quotes that would lose money",
             ("deviator",), lambda e, r, d, led: _fading_maker(e, r, d, BPS, led)),
    Scenario("lazy oracle member", "skips half its observations to save their cost",
             ("deviator",), _lazy_oracle),
    Scenario("lazy oracle member (rewards to the committee)",
             "the same, if oracle rewards went by stake to the day's committee (a proposal, not the rule)",
             ("deviator",), lambda e, r, d, led: _lazy_oracle(replace(e, oracle_rewards="committee"), r, d, led)),
    Scenario("colluding minority", "f+1 members sign a round 25 % high while holding a position",
             ("colluder 1", "colluder 2", "attacker"), _colluding_minority),
    Scenario("bribing attacker", "the colluders also bribe arbitrators from a budget",
             ("colluder 1", "colluder 2", "attacker"), _bribing_attacker),
    Scenario("griefing challenger", "disputes valid oracle rounds (bond at stake)",
             ("deviator",), _griefing_challenger),
)


KNOWN_GAPS: Final[frozenset[str]] = frozenset()
"""Deviations the default rules do not deter (measured, see docs/protocol.md "Incentive
simulation"): none now. The lazy oracle member was one until oracle rewards followed work
(docs/decisions/0008); the maker that fades only its losing fills was one until each fade paused
the maker for a day (``ReputationParams.fade_cooldown_days``). The bounded test asserts these stay
gaps until the rules change, and that every other deviation is deterred."""


def run_episode(scenario: Scenario, seed: int, deviate: bool, econ: Economy = Economy()
                ) -> tuple[dict[str, int], dict[str, Any]]:
    """One episode: every account's payoff (base units) and the scenario's observations. Checks
    the ledger (nothing minted) before returning."""
    ledger = Ledger()
    info = scenario.run(econ, random.Random(seed), deviate, ledger)
    ledger.check()
    return dict(ledger.balances), info


@dataclass
class ScenarioResult:
    """A scenario over many episodes."""

    name: str
    description: str
    episodes: int
    honest: list[int]
    """The deviator's payoff per episode when honest."""
    deviant: list[int]
    """The deviator's payoff per episode when deviating (same seeds)."""
    payoffs: dict[str, list[int]]
    """Every account's payoff per episode in the deviating runs: who gained, who lost."""
    info: list[dict[str, Any]]

    @property
    def margin(self) -> int:
        """Mean honest payoff minus mean deviant payoff (positive: honesty pays more)."""
        return (sum(self.honest) - sum(self.deviant)) // self.episodes

    @property
    def honest_wins(self) -> int:
        """Episodes in which the deviation paid strictly less than honesty."""
        return sum(h > d for h, d in zip(self.honest, self.deviant, strict=True))

    @property
    def honest_not_worse(self) -> int:
        """Episodes in which the deviation paid no more than honesty (a tie is an episode where
        the deviation never had occasion to act: a fader that was never filled at a loss)."""
        return sum(h >= d for h, d in zip(self.honest, self.deviant, strict=True))

    @property
    def best_response(self) -> bool:
        """Honesty is the best response: the deviation pays less on average by at least 1 USDC and
        no more than honesty in at least 90 % of episodes."""
        return self.margin >= USDC and self.honest_not_worse * 10 >= self.episodes * 9

    def to_json(self) -> dict[str, Any]:
        def stats(values: Sequence[int]) -> dict[str, float]:
            return {"mean": statistics.fmean(values) / USDC,
                    "stdev": (statistics.stdev(values) if len(values) > 1 else 0.0) / USDC,
                    "min": min(values) / USDC, "max": max(values) / USDC}
        counts: dict[str, float] = defaultdict(float)
        for item in self.info:
            for k, v in item.items():
                if isinstance(v, bool | int):
                    counts[k] += int(v)
        return {"name": self.name, "description": self.description, "episodes": self.episodes,
                "deviator_honest": stats(self.honest), "deviator_deviant": stats(self.deviant),
                "margin_usdc": self.margin / USDC, "honest_wins": self.honest_wins,
                "honest_not_worse": self.honest_not_worse,
                "best_response": self.best_response,
                "payoffs": {k: stats(v) for k, v in sorted(self.payoffs.items())},
                "observed_mean": {k: v / self.episodes for k, v in sorted(counts.items())}}


def run_scenario(scenario: Scenario, episodes: int, seed: int = 0, econ: Economy = Economy()) -> ScenarioResult:
    """``episodes`` seeded episodes of ``scenario``, honest and deviating with the same seeds."""
    honest: list[int] = []
    deviant: list[int] = []
    payoffs: dict[str, list[int]] = defaultdict(list)
    info = []
    for i in range(episodes):
        s = seed * 1_000_003 + i
        h, _ = run_episode(scenario, s, False, econ)
        d, observed = run_episode(scenario, s, True, econ)
        honest.append(sum(h.get(a, 0) for a in scenario.deviator))
        deviant.append(sum(d.get(a, 0) for a in scenario.deviator))
        for account in set(payoffs) | set(d):
            payoffs[account].append(d.get(account, 0))
        info.append(observed)
    for values in payoffs.values():  # accounts that appeared late: zero before
        values[:0] = [0] * (episodes - len(values))
    return ScenarioResult(scenario.name, scenario.description, episodes, honest, deviant, dict(payoffs), info)


def run_campaign(episodes: int, seed: int = 0, econ: Economy = Economy(),
                 scenarios: Sequence[Scenario] = SCENARIOS) -> list[ScenarioResult]:
    """Every scenario over ``episodes`` episodes."""
    return [run_scenario(s, episodes, seed, econ) for s in scenarios]


# --- the real contracts --------------------------------------------------------------------------


def check_on_chain(econ: Economy = Economy()) -> dict[str, Any]:
    """The cheap faults on the real contracts (in-process EVM): a member that equivocates is slashed
    and the prover paid exactly what :mod:`clearhouse.incentives.slashing` says; a griefing dispute of a valid
    optimistic round is defended, arbitrated and lost, and the griefer's bond is gone while the
    defender and voters receive what :func:`compute_dispute_payouts` says."""
    chain = InProcessChain()
    s = deploy_oracle_system(chain, 1, params=econ.hub, disputes=econ.disputes)
    griefer, prover = chain.accounts[5], chain.accounts[4]
    arbitrators = list(chain.accounts[6:9])
    for a in arbitrators:
        s.bond_arbitrator(a, 10_000 * USDC)
    chain.time_travel(1)
    now = s.now()

    member = s.committee.members[3]
    observations = [sign_observation(s.domain, compute_observation(s.committee.feed_id, RoundId(1), Price(p), now,
                                                                   Seconds(60)), s.keys[3])
                    for p in (econ.spot, econ.spot + 1)]
    (proof,) = find_equivocations(observations)
    event = s.prove(proof, sender=prover).events_named("Slashed")[0].args
    expected = compute_oracle_fault_split(compute_slashing_params(econ), Fault.ORACLE_EQUIVOCATION, s.stake)
    equivocation = {"member": member, "slashed": int(event["slashed"]), "reward": int(event["reward"]),
                    "insurance": int(event["insurance"]), "matches_model": (
                        int(event["slashed"]), int(event["reward"]), int(event["insurance"]))
                    == (expected.slashed, expected.prover, expected.insurance)}

    poster = s.keys[0]
    s.post(poster, 1, econ.spot)
    before = int(s.token.call("balanceOf", griefer.address))
    assertion = s.dispute(0, None, griefer)
    defender = s.account(s.keys[1])
    dispute_id = s.counter(assertion, defender)
    s.vote(dispute_id, dict.fromkeys(arbitrators, False), b"grief")
    resolved = s.resolve(0, sender=arbitrators[0]).events_named("DisputeResolved")[0].args
    bond = int(s.params.dispute_bond)
    owed = int(s.disputes.call("owed", griefer.address))
    after = int(s.token.call("balanceOf", griefer.address)) + owed
    weights = [Reveal(Address(a.address), Amount(int(s.bonds.call("stake_of", a.address, 2))), False)
               for a in arbitrators]
    payouts = compute_dispute_payouts(Amount(bond), s.dispute_params.voter_reward_bps, weights,
                                      Amount(sum(r.weight for r in weights)), s.dispute_params.quorum_bps)
    griefing = {"bond": bond, "griefer_lost": before + bond - after, "round_stands": not bool(resolved["invalid"]),
                "defender_payout": int(payouts.disputer), "voter_pool": int(payouts.voter_pool),
                "matches_model": before + bond - after == bond and payouts.asserter == 0
                and not bool(resolved["invalid"])}
    chain.close()
    return {"equivocation": equivocation, "griefing_dispute": griefing,
            "oracle_rewards": check_oracle_rewards_on_chain(econ)}


def check_oracle_rewards_on_chain(econ: Economy = Economy(), rounds: int = 4) -> dict[str, Any]:
    """Oracle rewards by work on the real contracts: a committee of four stores ``rounds`` reports
    through ``OracleRewards`` (each leader's report carries the ``2f+1`` observations around the
    median, :func:`select_observations`, so with all four present the highest, member 2's, is
    left out); member 3 is lazy and skips every other round. A day's
    oracle rewards are notified and, once claimable, each member's claim is compared with
    :func:`compute_work_share` of the work the Python rules credit (:func:`compute_work_credits`)."""
    chain = InProcessChain()
    s = deploy_oracle_system(chain, 1, params=econ.hub, disputes=econ.disputes)
    relay = deploy_oracle_rewards(s)
    committee, members = s.committee, s.committee.members
    work = dict.fromkeys(members, 0)
    for r in range(1, rounds + 1):
        chain.time_travel(econ.hub.min_round_interval + 2)
        now = s.now()
        present = range(4) if r % 2 else range(3)  # member 3 observes every other round
        observed = [sign_observation(s.domain, compute_observation(committee.feed_id, RoundId(r),
                                                                   Price(econ.spot + 100 * (2, 0, 3, 1)[i]), now,
                                                                   Seconds(60)),
                                     s.keys[i]) for i in present]
        report = compute_report(committee, RoundId(r), select_observations(committee, observed))
        carried = [members.index(o.member) for o in report.observations]
        signed = compute_signed_report(report, {members[i]: sign_report(s.domain, report, s.keys[i])
                                                for i in carried[:committee.f + 1]})
        args = compute_transmit_args(s.domain, committee, signed)
        relay.transact("transmit", *args.to_abi())
        for member in compute_work_credits(args.observers, len(report.observations), members):
            work[member] += 1
    funder = chain.accounts[1]
    s.fund(funder.address, econ.oracle_rewards_per_day, relay, funder)
    relay.transact("notify", econ.oracle_rewards_per_day, sender=funder)
    chain.time_travel(int(relay.call("EPOCH")) + int(relay.call("CLAIM_DELAY")))
    total = sum(work.values())
    paid, expected = [], []
    for i, member in enumerate(members):
        before = int(s.token.call("balanceOf", member))
        relay.transact("claim", sender=s.account(s.keys[i]))
        paid.append(int(s.token.call("balanceOf", member)) - before)
        expected.append(compute_work_share(work[member], total, econ.oracle_rewards_per_day))
    on_chain_work = [int(relay.call("work", 0, m)) for m in members]
    chain.close()
    return {"work": on_chain_work, "paid": paid, "kept": econ.oracle_rewards_per_day - sum(paid),
            "matches_model": paid == expected and on_chain_work == [work[m] for m in members]}


# --- report --------------------------------------------------------------------------------------


def _usdc(value: float) -> str:
    return f"{value:+,.2f}"


def render_table(results: Sequence[ScenarioResult]) -> Table:
    """The deviator's payoff honest vs deviating and the margin, per scenario."""
    table = Table(title="incentives: the deviator's payoff, honest vs deviating (USDC per episode, mean ± stdev)",
                  title_justify="left")
    for col in ("scenario", "honest", "deviating", "margin", "honest better"):
        table.add_column(col, overflow="fold")
    for r in results:
        j = r.to_json()
        h, d = j["deviator_honest"], j["deviator_deviant"]
        table.add_row(r.name, f"{_usdc(h['mean'])} ± {h['stdev']:,.0f}",
                      f"{_usdc(d['mean'])} ± {d['stdev']:,.0f}", _usdc(j["margin_usdc"]),
                      f"{'yes' if r.best_response else 'NO'} ({r.honest_wins} better, "
                      f"{r.honest_not_worse} not worse /{r.episodes})")
    return table


def render_payoffs(results: Sequence[ScenarioResult]) -> Table:
    """Who gained and who lost in the deviating runs (USDC per episode, mean ± stdev)."""
    table = Table(title="incentives: who gained and who lost when the deviator deviates", title_justify="left")
    for col in ("scenario", "account", "mean", "stdev", "min", "max"):
        table.add_column(col, justify="left" if col in ("scenario", "account") else "right")
    for r in results:
        first = True
        for account, v in sorted(r.to_json()["payoffs"].items(), key=lambda kv: -kv[1]["mean"]):
            if max(abs(v["min"]), abs(v["max"])) < 0.005:
                continue
            table.add_row(r.name if first else "", account, _usdc(v["mean"]), f"{v['stdev']:,.2f}",
                          _usdc(v["min"]), _usdc(v["max"]))
            first = False
    return table


def write_summary(results: Sequence[ScenarioResult], on_chain: Mapping[str, Any], out_dir: Path,
                  episodes: int, seed: int, seconds: float) -> Path:
    """``out_dir/summary.json``: every scenario's statistics and the on-chain checks."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "summary.json"
    path.write_text(json.dumps({"episodes": episodes, "seed": seed, "seconds": round(seconds, 2),
                                "honest_is_best_response": all(r.best_response for r in results),
                                "not_deterred": [r.name for r in results if not r.best_response],
                                "scenarios": [r.to_json() for r in results], "on_chain": on_chain},
                               indent=2, default=str) + "\n")
    return path


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m clearhouse.sim.incentives [--episodes N] [--seed S] [--out DIR]``."""
    parser = argparse.ArgumentParser(prog="python -m clearhouse.sim.incentives", description=__doc__)
    parser.add_argument("--episodes", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("out/incentives"))
    parser.add_argument("--oracle-rewards", choices=get_args(OracleRewardRule), default="work",
                        help="oracle reward rule (default work, OracleRewards.vy; stake: the rule before 0008)")
    args = parser.parse_args(argv)
    if args.episodes < 2:
        parser.error("--episodes must be at least 2")
    console = Console()
    started = time.monotonic()
    results = []
    for scenario in SCENARIOS:
        results.append(run_scenario(scenario, args.episodes, args.seed,
                                    Economy(oracle_rewards=args.oracle_rewards)))
        console.print(f"[{time.monotonic() - started:6.1f}s] {scenario.name}: {args.episodes} episodes",
                      markup=False, highlight=False)
    on_chain = check_on_chain()
    console.print(render_payoffs(results))
    console.print(render_table(results))
    eq, grief = on_chain["equivocation"], on_chain["griefing_dispute"]
    console.print(f"on-chain: equivocation slashed {eq['slashed'] / USDC:,.2f} (prover {eq['reward'] / USDC:,.2f}), "
                  f"as modelled: {eq['matches_model']}; griefing dispute refused, bond lost "
                  f"{grief['griefer_lost'] / USDC:,.2f}, as modelled: {grief['matches_model']}",
                  markup=False, highlight=False)
    work = on_chain["oracle_rewards"]
    console.print(f"on-chain: oracle rewards by work {work['work']} paid "
                  f"{', '.join(f'{p / USDC:,.2f}' for p in work['paid'])} (member 3 lazy), "
                  f"as modelled: {work['matches_model']}", markup=False, highlight=False)
    path = write_summary(results, on_chain, args.out, args.episodes, args.seed, time.monotonic() - started)
    console.print(f"summary written to {path}", markup=False, highlight=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
