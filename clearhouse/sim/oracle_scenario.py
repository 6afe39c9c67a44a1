"""The oracle part of the demo: a bonded committee prices an expiry window from the seeded simulated
market; one member equivocates and a watcher has it slashed; two members push a wrong round, the
watcher disputes it, arbitrators vote on it and its signers are slashed; the expiry settles at the
committee's TWAP, clamped to the cap. Every figure returned is read from the chain.

The committee is :mod:`clearhouse.oracle.committee` (honest members, in-process); the faults and
the watcher are scripted here around it. Deployment is :func:`clearhouse.sim.oracle_hub.deploy_oracle_system`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, Final

from eth_account.signers.local import LocalAccount

from clearhouse.chain import Chain, Contract, Receipt
from clearhouse.errors import ContractRevert
from clearhouse.oracle import (
    BPS,
    CommitteeSetup,
    FeedState,
    Member,
    NoisySource,
    SignedObservation,
    SignedReport,
    StoredRound,
    compute_observation,
    compute_report,
    compute_signed_report,
    find_equivocations,
    select_observations,
    sign_observation,
    sign_report,
)
from clearhouse.oracle.committee import apply_stored_round, process_tick
from clearhouse.oracle.encoding import compute_report_evidence, compute_transmit_args
from clearhouse.oracle.sources import MarketModel, SimulatedMarket
from clearhouse.sim.oracle_hub import (
    USDC,
    OracleSystem,
    deploy_oracle_rewards,
    deploy_oracle_system,
)
from clearhouse.types import Address, BasisPoints, Price, RoundId, Seconds, Timestamp

__all__ = ["run_oracle_scenario"]

WINDOW: Final = Seconds(900)
"""The expiry's settlement window: its TWAP over the last 15 minutes before expiry."""
TICK: Final = Seconds(15)
"""How often the committee checks its triggers."""
CAP_MULTIPLE: Final = 4
"""The expiry's settlement cap, as a multiple of spot when it was listed."""
CHEAT: Final = 3
"""The member that equivocates (signs two observations for one round)."""
COLLUDERS: Final = (1, 2)
"""The two members (``f+1`` of 4) that sign a wrong round."""
WRONG_BPS: Final = BasisPoints(2_500)
"""How far above the market the colluders' observations are."""
WATCH_BPS: Final = BasisPoints(500)
"""A watcher disputes a stored round this far from its own view of the market."""
ARBITRATOR_STAKE: Final = 10_000 * USDC
ORACLE_REWARDS: Final = 1_000 * USDC
"""The oracle role's fees and emissions for the epoch of the rounds, notified to ``OracleRewards``
(paid to the members by the observations the stored reports carry, decision 0008)."""


@dataclass
class _Run:
    """What the scenario did, by receipt (the summary reads the chain, not this)."""

    reports: dict[int, SignedReport] = field(default_factory=dict)
    """Stored reports by round index (a watcher rebuilds them from calldata)."""
    receipts: list[Receipt] = field(default_factory=list)
    """Every receipt of a proof, a dispute or a resolution."""
    disputed: list[int] = field(default_factory=list)
    """Round indexes the watcher disputed."""
    defences: dict[int, int] = field(default_factory=dict)
    """Arbitration dispute id per disputed round index, when someone defended it."""


def _mark(price: int) -> str:
    return f"{price / USDC:,.2f} USDC"


def _store(s: OracleSystem, relay: Contract, run: _Run, state: FeedState, signed: SignedReport) -> FeedState:
    """Store a round through the ``OracleRewards`` relay (the hub verifies it; the relay credits the
    work of each member whose observation it carries)."""
    relay.transact("transmit", *compute_transmit_args(s.domain, s.committee, signed).to_abi())
    index = int(s.hub.call("round_count", s.committee.feed_id)) - 1
    run.reports[index] = signed
    r = signed.report
    return apply_stored_round(state, StoredRound(r.round, r.price, r.timestamp))


def _equivocate(s: OracleSystem, setup: CommitteeSetup, round_id: RoundId, now: Timestamp,
                watcher: LocalAccount, run: _Run, log: Callable[[str], None]) -> None:
    """The cheat sends the leader one observation and a peer another for the same round; the
    watcher sees both, proves it on-chain and the member is slashed, banned and removed."""
    member = setup.members[CHEAT]
    price = member.source.get_price(now)
    seen: list[SignedObservation] = [
        sign_observation(s.domain, compute_observation(s.committee.feed_id, round_id, Price(p), now,
                                                       setup.observation_lifetime), member.private_key)
        for p in (price, price + price * 30 // BPS)]
    (proof,) = find_equivocations(seen)
    receipt = s.prove(proof, sender=watcher)
    run.receipts.append(receipt)
    event = receipt.events_named("EquivocationProven")[0].args
    log(f"oracle: member {proof.member} signed two observations for round {round_id}; watcher "
        f"{watcher.address} proved it: {_mark(event['slashed'])} slashed, {_mark(event['reward'])} "
        "reward, member banned and removed")


def _collude(s: OracleSystem, setup: CommitteeSetup, state: FeedState, now: Timestamp) -> SignedReport:
    """Members 1 and 2 (``f+1``) report the market 25 % high with one honest observation: their two
    observations are the upper two of three, so the median is theirs; they sign it."""
    round_id = state.next_round
    observations = []
    for i in (0, *COLLUDERS):
        member = setup.members[i]
        price = member.source.get_price(now)
        if i in COLLUDERS:
            price = Price(price + price * WRONG_BPS // BPS)
        observations.append(sign_observation(
            s.domain, compute_observation(s.committee.feed_id, round_id, price, now,
                                          setup.observation_lifetime), member.private_key))
    report = compute_report(setup.committee, round_id, select_observations(setup.committee, observations))
    return compute_signed_report(report, {setup.members[i].address: sign_report(
        s.domain, report, setup.members[i].private_key) for i in COLLUDERS})


def _watch(s: OracleSystem, market: SimulatedMarket, watcher: LocalAccount, run: _Run,
           log: Callable[[str], None]) -> None:
    """The watcher checks the last stored round against its own market view and disputes it
    (with the report's signatures as evidence) if it is more than 5 % off; a colluder defends it."""
    index = int(s.hub.call("round_count", s.committee.feed_id)) - 1
    stored = s.round_state(index)
    fair = market.get_price(stored.timestamp)
    if abs(stored.price - fair) * BPS <= fair * WATCH_BPS:
        return
    assertion = s.dispute(index, compute_report_evidence(s.domain, run.reports[index]), watcher)
    run.disputed.append(index)
    log(f"oracle: round {stored.round} stored at {_mark(stored.price)} while the market was at "
        f"{_mark(fair)}: watcher disputes it (bond {_mark(s.params.dispute_bond)}, assertion {assertion})")
    defender = s.account(s.keys[COLLUDERS[0]])
    run.defences[index] = s.counter(assertion, defender)
    log(f"oracle: signer {defender.address} defends the round with an equal bond: arbitration "
        f"{run.defences[index]} opens")


def _arbitrate(s: OracleSystem, market: SimulatedMarket, arbitrators: list[LocalAccount], run: _Run,
               log: Callable[[str], None]) -> None:
    """Arbitrators check each disputed round against the market, commit, reveal; then anyone resolves."""
    for index in run.disputed:
        stored = s.round_state(index)
        fair = market.get_price(stored.timestamp)
        wrong = abs(stored.price - fair) * BPS > fair * WATCH_BPS
        if index in run.defences:
            s.vote(run.defences[index], dict.fromkeys(arbitrators, wrong), f"round {index}".encode())
            log(f"oracle: {len(arbitrators)} arbitrators committed and revealed "
                f"'{'wrong' if wrong else 'right'}' on round {stored.round}")
        receipt = s.resolve(index, sender=arbitrators[0])
        run.receipts.append(receipt)
        resolved = receipt.events_named("DisputeResolved")[0].args
        slashed = ", ".join(e.args["member"] for e in receipt.events_named("MemberSlashed")) or "nobody"
        log(f"oracle: dispute of round {stored.round} resolved: "
            f"{'invalid' if resolved['invalid'] else 'stands'}; slashed {slashed} "
            f"({_mark(resolved['slashed'])}, {_mark(resolved['reward'])} to the watcher)")


def run_oracle_scenario(chain: Chain, log: Callable[[str], None]) -> dict[str, Any]:
    """Run the oracle scenario on ``chain`` (fresh accounts 5-8 as watcher and arbitrators) and
    return its summary: ``oracle_rounds``, ``equivocations_slashed``, ``disputes_arbitrated``,
    ``settlement_price`` and the figures behind them, all read from the chain."""
    s = deploy_oracle_system(chain, 1)
    relay = deploy_oracle_rewards(s)
    watcher, arbitrators = chain.accounts[5], list(chain.accounts[6:9])
    for arbitrator in arbitrators:
        s.bond_arbitrator(arbitrator, ARBITRATOR_STAKE)
    chain.time_travel(1)
    log(f"oracle: hub {s.hub.address} with {s.committee.n} members (f = {s.committee.f}), each bonded "
        f"{_mark(s.stake)}; disputes through {s.disputes.address}; {len(arbitrators)} arbitrators bonded")

    start = s.now()
    market = SimulatedMarket(MarketModel(initial_price=Price(3_000 * USDC), start=Timestamp(start - 60),
                                         seed=2_026))
    members = tuple(Member(k, NoisySource(market, i, BasisPoints(5))) for i, k in enumerate(s.keys))
    setup = CommitteeSetup(s.domain, s.committee, s.feed, s.params, members, BasisPoints(20), Seconds(60))
    expiry = Timestamp(start + WINDOW)
    cap = Price(CAP_MULTIPLE * market.get_price(start))
    log(f"oracle: expiry at {expiry}, settlement = TWAP of [{expiry - WINDOW}, {expiry}] capped at "
        f"{_mark(cap)}; spot {_mark(market.get_price(start))}")

    run = _Run()
    state = FeedState(next_round=RoundId(1))
    online = set(s.committee.members)
    for tick, now in enumerate(range(start, expiry + 1, TICK)):
        at = Timestamp(now)
        if tick == 20:
            _equivocate(s, setup, state.next_round, at, watcher, run, log)
            online.discard(s.committee.members[CHEAT])
            setup = replace(setup, committee=replace(setup.committee, removed=frozenset(
                {s.committee.members[CHEAT]})))
        if tick == 35 and state.last is not None and at >= state.last.timestamp + s.params.min_round_interval:
            state = _store(s, relay, run, state, _collude(s, setup, state, at))
            _watch(s, market, watcher, run, log)
        else:
            state, outcome = process_tick(setup, state, at, online)
            if outcome is not None and outcome.report is not None:
                state = _store(s, relay, run, state, outcome.report)
                _watch(s, market, watcher, run, log)
        chain.time_travel(TICK)
    count = int(s.hub.call("round_count", s.committee.feed_id))
    log(f"oracle: {count} rounds stored over the window ({len(run.reports)} reports transmitted "
        f"through OracleRewards {relay.address})")
    admin = chain.accounts[0]
    s.fund(admin.address, ORACLE_REWARDS, relay, admin)
    relay.transact("notify", ORACLE_REWARDS, sender=admin)
    epoch = int(relay.call("current_epoch"))
    log(f"oracle: {_mark(ORACLE_REWARDS)} of oracle fees and emissions notified for epoch {epoch}: "
        f"paid by work, {int(relay.call('total_work', epoch))} observations credited")

    chain.time_travel(s.params.dispute_window + 1)
    try:
        s.hub.call("twap", s.committee.feed_id, expiry - WINDOW, expiry, cap)
    except ContractRevert as refused:
        log(f"oracle: settlement refused while the dispute is open ({refused.reason})")
    _arbitrate(s, market, arbitrators, run, log)
    paid = 0
    if s.disputes.call("owed", watcher.address):
        receipt = s.disputes.transact("withdraw", sender=watcher)
        paid = int(receipt.events_named("Withdrawn")[0].args["amount"])
        log(f"oracle: watcher withdraws {_mark(paid)} (its bond back, the defender's less the voters' "
            "share, and its slashing rewards)")
    price = int(s.hub.call("twap", s.committee.feed_id, expiry - WINDOW, expiry, cap))
    log(f"oracle: expiry settles at the committee's TWAP: {_mark(price)} (the wrong round skipped)")
    summary = _summary(s, run, price, cap, expiry)
    summary["watcher_paid"] = paid
    summary["oracle_rewards"] = Address(relay.address)
    summary["reports"] = dict(run.reports)  # each member's observations, for reputation (sim.participants)
    return summary


def _summary(s: OracleSystem, run: _Run, price: int, cap: int, expiry: int) -> dict[str, Any]:
    rounds = s.rounds()
    equivocations = [e for r in run.receipts for e in r.events_named("EquivocationProven")]
    resolutions = [e for r in run.receipts for e in r.events_named("DisputeResolved")]
    arbitrated = [e for e in resolutions
                  if s.assertions.call("get_assertion", e.args["assertion_id"])[7] != 0]
    banned = [m for m in s.committee.members if s.hub.call("is_banned", m)]
    return {
        "oracle_rounds": len(rounds),
        "oracle_rounds_invalid": sum(r.invalid for r in rounds),
        "price_path": [(int(r.timestamp), int(r.price), bool(r.invalid)) for r in rounds],
        "equivocations_slashed": len(equivocations),
        "equivocation_slashed_amount": sum(e.args["slashed"] for e in equivocations),
        "disputes_arbitrated": len(arbitrated),
        "dispute_slashed_amount": sum(e.args["slashed"] for e in resolutions),
        "oracle_members_banned": len(banned),
        "settlement_price": price,
        "settlement_cap": cap,
        "settlement_window": [expiry - WINDOW, expiry],
        "oracle_hub": Address(s.hub.address),
        "oracle_disputes": Address(s.disputes.address),
    }
