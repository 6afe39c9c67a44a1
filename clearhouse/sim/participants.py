"""The demo's closing table: rewards, slashes and reputation per participant, from what it did.

Every figure is read from the run: trading P&L from the market scenario's ledger at the settlement
price; slashes from ``Bonds``' ``Slashed`` events on both chains; bounties and bonds won or lost
from the slashing and dispute events (``Slashed``, ``OracleDisputes.Withdrawn`` and
``RoundDisputed``, ``Assertions.ClaimDisputed`` and ``ClaimSettled``); arbitrators' voter
rewards from ``Arbitration.reward_of``; oracle members' rewards from ``OracleRewards`` (by work:
the observations the reports the oracle scenario stored through it carry, decision 0008;
``claimable`` once the epoch's claim delay is over, nothing for a banned member); arbitrators'
staker rewards from a ``Rewards`` contract deployed over the oracle system's ``Bonds`` and credited
the demo's emissions for one epoch (``claimable``);
reputation from :func:`clearhouse.incentives.reputation.compute_reputation` over the events the
demo produced (RFQ routing, quotes and fills; each member's observations in the transmitted
reports; upheld challenges; batches finalised or reverted). The demo's accounts play several
roles (the oracle watcher is erin's key, arbitrator 1 frank's): each role is its own row. The
settlement runs on a chain of its own, so its coordinator and watcher are scored separately.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Final

from rich.table import Table

from clearhouse.chain import Chain, Contract
from clearhouse.disputes.bonds import Role
from clearhouse.incentives.oracle_rewards import compute_work_owed
from clearhouse.incentives.reputation import (
    BatchOutcome,
    ChallengeOutcome,
    Event,
    Fill,
    OracleRound,
    QuoteGiven,
    Reputation,
    Routed,
    compute_reputation,
)
from clearhouse.market.trades import Trade
from clearhouse.oracle import SignedReport
from clearhouse.types import Address, Digest, Timestamp

__all__ = ["EMISSION", "Participant", "compute_participants", "get_oracle_rewards", "render_participants"]

USDC: Final = 10**6
EMISSION: Final = 1_000 * USDC
"""Emissions the demo credits to the arbitrator role for one epoch of ``Rewards`` (the oracle role
is paid by work through ``OracleRewards``: ``clearhouse.sim.oracle_scenario.ORACLE_REWARDS``)."""
EPOCH: Final = 3_600
"""The demo's ``Rewards`` epoch: one hour."""


@dataclass(frozen=True, slots=True)
class Participant:
    """One participant's outcome, in collateral base units."""

    name: str
    role: str
    address: Address
    pnl: int | None = None
    """Trading P&L at the settlement price (traders and makers)."""
    earned: int = 0
    """Bounties, bond winnings and voter rewards received, net of bonds lost."""
    rewards: int = 0
    """Rewards claimable: oracle members from ``OracleRewards`` (by work), arbitrators from
    ``Rewards`` (by stake)."""
    work: int | None = None
    """Oracle members: observations ``OracleRewards`` credited them (``WorkRecorded``)."""
    slashed: int = 0
    """Stake taken by ``Bonds.slash``."""
    reputation_ppm: int | None = None
    """The role's reputation score at the end of the demo (parts per million)."""


def _market_events(names: Mapping[str, Address], credits: Mapping[str, int], trades: Sequence[Trade],
                   now: Timestamp) -> list[Event]:
    """The RFQ as reputation sees it: every quoting maker was routed it and quoted (latency is not
    measured in the demo: 0 ms), and the maker of the RFQ's fill filled."""
    rfq = Digest(b"\x00" * 32)
    events: list[Event] = []
    for name in credits:
        events += [Routed(names[name], rfq, now), QuoteGiven(names[name], rfq, 0, now)]
    for maker in dict.fromkeys(t.maker for t in trades if t.maker in {names[n] for n in credits}):
        events.append(Fill(maker, rfq, now))
    return events


def _oracle_events(reports: Mapping[int, SignedReport], invalid: set[int]) -> list[Event]:
    """Each member's part in every transmitted round: its price against the round's median, or a
    miss when the report does not carry its observation (what the chain shows of participation: a
    report carries ``2f+1`` observations). A round ruled wrong is scored against the last valid
    round's price instead."""
    members = sorted({o.member for r in reports.values() for o in r.report.observations})
    events: list[Event] = []
    reference = None
    for index in sorted(reports):
        report = reports[index].report
        median = report.price if index not in invalid or reference is None else reference
        if index not in invalid:
            reference = report.price
        seen = {o.member: o.price for o in report.observations}
        for member in members:
            events.append(OracleRound(member, int(report.round), seen.get(member), int(median), report.timestamp))
    return events


def _deploy_rewards(chain: Chain, bonds: Contract, token: Contract) -> Contract:
    """A ``Rewards`` over ``bonds`` whose epoch 0 began a second ago (its stake snapshot is the
    stake now), credited :data:`EMISSION` for the arbitrator role, then one epoch passed: claimable."""
    admin = chain.accounts[0]
    rewards = chain.deploy("Rewards", token.address, bonds.address, chain.now() - 1, EPOCH)
    token.transact("mint", admin.address, EMISSION)
    token.transact("approve", rewards.address, EMISSION, sender=admin)
    rewards.transact("notify", int(Role.ARBITRATOR), EMISSION, sender=admin)
    chain.time_travel(EPOCH)
    return rewards


def get_oracle_rewards(chain: Chain, relay: Contract) -> tuple[dict[Address, int], dict[Address, int]]:
    """``(work, claimable)`` per member from ``OracleRewards``: the observations its
    ``WorkRecorded`` events credited, and what ``claim`` would pay once every epoch with work is
    past its claim delay (the chain's time is moved on to then if needed). Each claimable amount is
    checked against the Python spec (:func:`compute_work_owed`; nothing for a banned member)."""
    epochs: dict[int, dict[Address, int]] = defaultdict(lambda: defaultdict(int))
    for _, e in chain.get_events(relay.address):
        if e.name == "WorkRecorded":
            for member in e.args["members"]:
                epochs[int(e.args["epoch"])][Address(member)] += 1
    last = max(epochs, default=0) + 1
    ready = int(relay.call("START")) + last * int(relay.call("EPOCH")) + int(relay.call("CLAIM_DELAY"))
    if chain.now() < ready:
        chain.time_travel(ready - chain.now())
    hub = chain.at("OracleHub", relay.call("HUB"))
    work = {m: sum(epochs[e].get(m, 0) for e in epochs) for m in {m for w in epochs.values() for m in w}}
    claimable = {}
    for member in work:
        claimable[member] = int(relay.call("claimable", member)[0])
        owed = 0 if hub.call("is_banned", member) else compute_work_owed(
            {e: w.get(member, 0) for e, w in epochs.items()}, {e: sum(w.values()) for e, w in epochs.items()},
            {e: int(relay.call("rewards", e)) for e in epochs}, 0, last)
        if claimable[member] != owed:
            raise RuntimeError(f"OracleRewards pays {member} {claimable[member]}, the spec {owed}")
    return work, claimable


def compute_participants(chain: Chain, market: Mapping[str, Any], market_accounts: Mapping[str, Address],
                         pnl: Mapping[str, int], oracle: Mapping[str, Any], bonded: Mapping[str, Any],
                         batches: Sequence[Mapping[str, Any]]) -> list[Participant]:
    """Everyone the demo involved, with what they gained, lost and their reputation.

    ``market``, ``oracle``: the market and oracle scenarios' results (``rfq_credits``, ``trades``;
    ``oracle_hub``, ``oracle_disputes``, ``reports``); ``market_accounts``: name → address;
    ``pnl``: name → P&L at settlement; ``bonded`` and ``batches``: the settlement scenario's
    coordinator, watcher and ``Slashed`` events, and its batches. Deploys ``Rewards`` on ``chain``
    and moves its time one epoch on."""
    now = Timestamp(chain.now())
    hub = chain.at("OracleHub", oracle["oracle_hub"])
    disputes = chain.at("OracleDisputes", oracle["oracle_disputes"])
    bonds = chain.at("Bonds", hub.call("bonds"))
    token = chain.at("mocks/TestToken", bonds.call("token"))
    arbitration = chain.at("Arbitration", chain.at("Assertions", disputes.call("assertions")).call("arbitration"))
    # every figure below comes from these contracts' events and views
    bond_events = [e for _, e in chain.get_events(bonds.address)]
    stakers: dict[int, list[Address]] = defaultdict(list)
    for e in bond_events:
        if e.name == "Bonded" and e.args["who"] not in stakers[e.args["role"]]:
            stakers[e.args["role"]].append(Address(e.args["who"]))
    slashed: dict[Address, int] = defaultdict(int)
    earned: dict[Address, int] = defaultdict(int)
    for args in [e.args for e in bond_events if e.name == "Slashed"]:
        slashed[Address(args["who"])] += int(args["slashed"])
        if args["reward_to"] != disputes.address:  # dispute rewards are credited to the disputer there
            earned[Address(args["reward_to"])] += int(args["reward"])
    for _, e in chain.get_events(disputes.address):
        if e.name == "Withdrawn":
            earned[Address(e.args["who"])] += int(e.args["amount"])
        elif e.name == "RoundDisputed":
            earned[Address(e.args["disputer"])] -= int(disputes.call("dispute_bond"))
    assertions = chain.at("Assertions", disputes.call("assertions"))
    bond_of: dict[int, int] = {}
    defender_of: dict[int, Address] = {}
    for _, e in chain.get_events(assertions.address):  # a defender's bond is at stake in Assertions
        if e.name == "ClaimAsserted":
            bond_of[int(e.args["assertion_id"])] = int(e.args["bond"])
        elif e.name == "ClaimDisputed":
            defender_of[int(e.args["assertion_id"])] = Address(e.args["disputer"])
            earned[Address(e.args["disputer"])] -= bond_of[int(e.args["assertion_id"])]
        elif e.name == "ClaimSettled" and int(e.args["assertion_id"]) in defender_of:
            earned[defender_of[int(e.args["assertion_id"])]] += int(e.args["disputer_payout"])
    ids = [int(e.args["dispute_id"]) for _, e in chain.get_events(arbitration.address) if e.name == "DisputeOpened"]
    for voter in stakers[int(Role.ARBITRATOR)]:
        earned[voter] += sum(int(arbitration.call("reward_of", i, voter)) for i in ids)

    invalid = {i for i in oracle["reports"] if hub.call("round_state", hub_feed(hub), i)[6]}
    proofs = [Address(e.args["prover"]) for _, e in chain.get_events(hub.address) if e.name == "EquivocationProven"]
    upheld = [Address(e.args["disputer"]) for _, e in chain.get_events(disputes.address) if e.name == "RoundDisputed"]
    rep = compute_reputation([
        *_market_events(market_accounts, market["rfq_credits"], market["trades"], now),
        *_oracle_events(oracle["reports"], invalid),
        *(ChallengeOutcome(w, True, now) for w in proofs + upheld)], now)
    rewards = _deploy_rewards(chain, bonds, token)
    work, oracle_rewards = get_oracle_rewards(chain, chain.at("OracleRewards", oracle["oracle_rewards"]))
    rows = _rows(market_accounts, pnl, market["rfq_credits"], stakers, proofs + upheld, slashed, earned, rewards,
                 (work, oracle_rewards), rep)
    return rows + _settlement_rows(bonded, batches, now)


def _settlement_rows(bonded: Mapping[str, Any], batches: Sequence[Mapping[str, Any]], now: Timestamp
                     ) -> list[Participant]:
    """The settlement chain's coordinator and watcher (its own chain: its own slashes and log)."""
    coordinator, watcher = Address(bonded["coordinator"]), Address(bonded["watcher"])
    slashes = list(bonded["slashes"])
    rep = compute_reputation([
        *(BatchOutcome(coordinator, int(b["number"]), bool(b["honest"]), now) for b in batches),
        *(ChallengeOutcome(Address(a["reward_to"]), True, now) for a in slashes if a["who"] == coordinator)], now)
    c, w = rep.coordinators.get(coordinator), rep.watchers.get(watcher)
    return [
        Participant("coordinator", "coordinator", coordinator,
                    slashed=sum(int(a["slashed"]) for a in slashes if a["who"] == coordinator),
                    reputation_ppm=c.score_ppm if c else None),
        Participant("settlement watcher", "watcher", watcher,
                    earned=sum(int(a["reward"]) for a in slashes if a["reward_to"] == watcher),
                    reputation_ppm=w.score_ppm if w else None),
    ]


def hub_feed(hub: Contract) -> bytes:
    """The oracle hub's one feed id (the demo configures a single feed)."""
    return bytes(next(e.args["feed_id"] for _, e in hub.chain.get_events(hub.address) if e.name == "FeedConfigured"))


def _rows(market_accounts: Mapping[str, Address], pnl: Mapping[str, int], credits: Mapping[str, int],
          stakers: Mapping[int, list[Address]], oracle_watchers: Sequence[Address],
          slashed: Mapping[Address, int], earned: Mapping[Address, int], rewards: Contract,
          oracle_rewards: tuple[Mapping[Address, int], Mapping[Address, int]], rep: Reputation) -> list[Participant]:
    def claimable(who: Address, role: Role) -> int:
        return int(rewards.call("claimable", who, int(role))[0])

    rows = []
    for name, address in market_accounts.items():
        maker = rep.makers.get(address)
        rows.append(Participant(name, "maker" if name in credits else "trader", address, pnl=pnl.get(name),
                                reputation_ppm=maker.score_ppm if maker else None))
    for i, member in enumerate(stakers[int(Role.ORACLE)], start=1):
        score = rep.oracles.get(member)
        rows.append(Participant(f"oracle {i}", "oracle member", member, earned=earned.get(member, 0),
                                rewards=oracle_rewards[1].get(member, 0), work=oracle_rewards[0].get(member, 0),
                                slashed=slashed.get(member, 0), reputation_ppm=score.score_ppm if score else None))
    for i, arbitrator in enumerate(stakers[int(Role.ARBITRATOR)], start=1):
        rows.append(Participant(f"arbitrator {i}", "arbitrator", arbitrator, earned=earned.get(arbitrator, 0),
                                rewards=claimable(arbitrator, Role.ARBITRATOR), slashed=slashed.get(arbitrator, 0)))
    for i, who in enumerate(dict.fromkeys(oracle_watchers), start=1):
        rows.append(Participant(f"oracle watcher {i}" if i > 1 else "oracle watcher", "watcher", who,
                                earned=earned.get(who, 0), reputation_ppm=rep.watchers[who].score_ppm))
    return rows


def summarize_participants(rows: Sequence[Participant]) -> list[dict[str, Any]]:
    """The rows as JSON (exact integers)."""
    return [asdict(r) for r in rows]


def _amount(value: int | None) -> str:
    return "—" if value is None else f"{value / USDC:+,.2f}" if value else "0"


def render_participants(rows: Sequence[Participant]) -> Table:
    """The closing table: one row per participant."""
    table = Table(title="participants: rewards, slashes and reputation (tUSD)", title_justify="left")
    for col in ("participant", "role", "P&L", "earned", "rewards", "slashed", "reputation"):
        table.add_column(col, justify="left" if col in ("participant", "role") else "right")
    for r in rows:
        rep = "—" if r.reputation_ppm is None else f"{r.reputation_ppm / 10_000:.1f} %"
        table.add_row(r.name, r.role, _amount(r.pnl), _amount(r.earned), _amount(r.rewards),
                      _amount(-r.slashed) if r.slashed else "0", rep)
    return table
