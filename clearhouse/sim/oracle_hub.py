"""Deploy and drive a bonded oracle committee on a chain: token, Bonds, Arbitration, Assertions,
OracleHub and its dispute module OracleDisputes, ``3f+1`` staked members with deterministic keys,
one configured feed.

Used by the contract tests, the oracle benchmark and the demo; the rules themselves live in
:mod:`clearhouse.oracle` and :mod:`clearhouse.disputes` and never touch a chain.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from eth_account import Account
from eth_account.signers.local import LocalAccount

from clearhouse.chain import Chain, Contract, Receipt
from clearhouse.disputes import DisputeParams, Role, compute_vote_commitment
from clearhouse.incentives.oracle_rewards import ORACLE_REWARD_EPOCH, compute_claim_delay
from clearhouse.messages import Domain
from clearhouse.messages.keccak import keccak256
from clearhouse.oracle import (
    Committee,
    EquivocationProof,
    FeedConfig,
    HubParams,
    ReportEvidence,
    SignedObservation,
    SignedReport,
    StoredRound,
    compute_feed_id,
)
from clearhouse.oracle.encoding import (
    compute_challenge_args,
    compute_dispute_args,
    compute_statement_args,
    compute_transmit_args,
)
from clearhouse.params import load_params
from clearhouse.types import (
    Address,
    Amount,
    BasisPoints,
    ChainId,
    Price,
    RoundId,
    Seconds,
    Timestamp,
)

__all__ = [
    "DEFAULT_DISPUTES",
    "DEFAULT_FEED",
    "DEFAULT_HUB",
    "DEVNET_HUB",
    "USDC",
    "OracleSystem",
    "compute_member_keys",
    "deploy_oracle_rewards",
    "deploy_oracle_system",
    "observation_abi",
]

PARAMS = load_params("devnet")
"""The protocol parameters the hub's EIP-712 domain name and version come from."""
USDC = 10**6
"""Base units per whole collateral token (6 decimals)."""
HOUR = Seconds(3_600)
DAY = Seconds(86_400)

DEFAULT_FEED = FeedConfig(
    min_price=Price(1 * USDC),
    max_price=Price(1_000_000 * USDC),
    max_deviation_bps=BasisPoints(0),
    max_age=Seconds(120),
    max_staleness=Seconds(600),
)
"""ETH/USDC-like bounds: 1 to 1,000,000 USDC, observations at most 2 min old, stale after 10 min."""

DEFAULT_HUB = HubParams(
    min_round_interval=Seconds(8),
    max_twap_window=Seconds(1800),
    min_stake=Amount(10_000 * USDC),
    slash_amount=Amount(5_000 * USDC),
    prover_reward_bps=BasisPoints(2_000),
    dispute_window=Seconds(600),
    dispute_bond=Amount(1_000 * USDC),
    dispute_liveness=HOUR,
)
"""Rounds at least 8 s apart, 30-minute TWAP windows (≤ 226 rounds), 10k USDC stake, 5k slashed per
proven fault of which 20 % goes to the prover; rounds disputable for 10 minutes with a 1k USDC bond
and a one-hour liveness."""

DEVNET_HUB = replace(DEFAULT_HUB, min_stake=Amount(200_000 * USDC), slash_amount=Amount(100_000 * USDC))
"""The devnet's hub: 100k USDC slashed per proven fault, so the ``f+1 = 2`` signers of a wrong
report lose 200k, twice the devnet preset's ``max_open_interest`` (100k USDC of price
sensitivity, i.e. about 14 contracts of a 3000 call under a 10,000 cap)."""

DEFAULT_DISPUTES = DisputeParams(
    unbonding_delay=Seconds(7 * DAY),
    commit_period=HOUR,
    reveal_period=HOUR,
    penalty_window=DAY,
    quorum_bps=BasisPoints(2_000),
    voter_slash_bps=BasisPoints(1_000),
    min_bond=Amount(100 * USDC),
    min_liveness=HOUR,
    voter_reward_bps=BasisPoints(2_500),
)
"""Bonds, Arbitration and Assertions of the oracle system: a week's unbonding, one-hour phases."""


def compute_member_keys(n: int, seed: bytes = b"clearhouse oracle member") -> list[bytes]:
    """``n`` deterministic private keys: ``keccak256(seed ‖ i)`` (dev and test chains only)."""
    return [keccak256(seed + i.to_bytes(4, "big")) for i in range(n)]


@dataclass
class OracleSystem:
    """A deployed hub with one feed, its committee and the dispute machinery."""

    chain: Chain
    """The chain it lives on."""
    token: Contract
    """The stake and bond token (a test token)."""
    bonds: Contract
    """The Bonds registry; the hub and the dispute module slash oracle stake, Arbitration voters'."""
    arbitration: Contract
    """Commit-reveal arbitration; Assertions is its requester."""
    assertions: Contract
    """Optimistic assertions; round disputes go through it."""
    hub: Contract
    """The OracleHub."""
    disputes: Contract
    """OracleDisputes, the hub's registered dispute module."""
    feed: FeedConfig
    """The feed's configuration."""
    params: HubParams
    """The hub's constants."""
    dispute_params: DisputeParams
    """The constants of Bonds, Arbitration and Assertions."""
    committee: Committee
    """The feed's current committee."""
    keys: list[bytes]
    """Members' private keys, in committee order."""
    stake: Amount
    """Stake each member bonded."""

    @property
    def domain(self) -> Domain:
        """The hub's EIP-712 domain, with the chain id read live."""
        return Domain(PARAMS.eip712_name, PARAMS.eip712_version, ChainId(self.chain.chain_id),
                      self.hub.address)

    @property
    def oracle_role(self) -> int:
        """Bonds' oracle role id."""
        return int(self.hub.call("oracle_role"))

    def account(self, key: bytes) -> LocalAccount:
        """The account of a member key."""
        account: LocalAccount = Account.from_key(key)
        return account

    def fund(self, who: str, amount: int, spender: Contract, sender: LocalAccount) -> None:
        """Mint ``amount`` to ``who`` and approve ``spender`` for it (``sender`` is ``who``)."""
        self.token.transact("mint", who, amount)
        self.token.transact("approve", spender.address, amount, sender=sender)

    def transmit(self, signed: SignedReport, sender: LocalAccount | None = None,
                 committee: Committee | None = None) -> Receipt:
        """Send a report to ``OracleHub.transmit`` (built under ``committee``, default the current one)."""
        args = compute_transmit_args(self.domain, committee or self.committee, signed)
        return self.hub.transact("transmit", *args.to_abi(), sender=sender)

    def post(self, key: bytes, round_id: int, price: int, timestamp: int | None = None) -> Receipt:
        """An optimistic post by the member holding ``key``."""
        at = int(self.now()) if timestamp is None else timestamp
        return self.hub.transact("post", self.committee.feed_id, round_id, price, at,
                                 sender=self.account(key))

    def prove(self, proof: EquivocationProof, sender: LocalAccount | None = None) -> Receipt:
        """Send an equivocation proof."""
        return self.hub.transact("prove_equivocation", compute_statement_args(self.domain, proof.first),
                                 compute_statement_args(self.domain, proof.second), sender=sender)

    def challenge(self, index: int, observations: Sequence[SignedObservation],
                  sender: LocalAccount | None = None, committee: Committee | None = None) -> Receipt:
        """Challenge optimistic round ``index`` with ``observations``."""
        args = compute_challenge_args(self.domain, committee or self.committee, index,
                                      self.round_state(index), observations)
        return self.disputes.transact("challenge", *args.to_abi(), sender=sender)

    def dispute(self, index: int, evidence: ReportEvidence | None, sender: LocalAccount,
                committee: Committee | None = None) -> int:
        """Fund ``sender`` with the dispute bond, dispute round ``index``; return the assertion id."""
        self.fund(sender.address, self.params.dispute_bond, self.disputes, sender)
        args = compute_dispute_args(self.domain, committee or self.committee, index,
                                    self.round_state(index), evidence)
        receipt = self.disputes.transact("dispute_round", *args.to_abi(), sender=sender)
        return int(receipt.events_named("RoundDisputed")[0].args["assertion_id"])

    def counter(self, assertion_id: int, sender: LocalAccount) -> int:
        """Fund ``sender`` and dispute the assertion in Assertions (defend the round); return the
        arbitration dispute id."""
        self.fund(sender.address, self.params.dispute_bond, self.assertions, sender)
        receipt = self.assertions.transact("dispute", assertion_id, sender=sender)
        return int(receipt.events_named("ClaimDisputed")[0].args["dispute_id"])

    def resolve(self, index: int, sender: LocalAccount | None = None,
                committee: Committee | None = None) -> Receipt:
        """Resolve the dispute of round ``index``."""
        config = (committee or self.committee)
        return self.disputes.transact("resolve_dispute", self.committee.feed_id, index,
                                      (config.version, config.f, list(config.members)), sender=sender)

    def bond_arbitrator(self, who: LocalAccount, amount: int) -> None:
        """Mint, approve and bond arbitrator stake for ``who``."""
        self.fund(who.address, amount, self.bonds, who)
        self.bonds.transact("bond", int(Role.ARBITRATOR), amount, sender=who)

    def vote(self, dispute_id: int, votes: dict[LocalAccount, bool], salt: bytes) -> None:
        """Commit every vote, move to the reveal phase, reveal them all, move past it."""
        for voter, vote in votes.items():
            commitment = compute_vote_commitment(vote, keccak256(salt + voter.address.encode()),
                                                 Address(voter.address))
            self.arbitration.transact("commit", dispute_id, commitment, sender=voter)
        self.chain.time_travel(self.dispute_params.commit_period)
        for voter, vote in votes.items():
            self.arbitration.transact("reveal", dispute_id, voter.address, vote,
                                      keccak256(salt + voter.address.encode()), sender=voter)
        self.chain.time_travel(self.dispute_params.reveal_period)

    def round_state(self, index: int) -> StoredRound:
        """Round ``index`` with its status."""
        values = self.hub.call("round_state", self.committee.feed_id, index)
        round_id, price, timestamp, _version, optimistic, disputed, invalid, poster = values
        return StoredRound(RoundId(round_id), Price(price), Timestamp(timestamp), bool(optimistic),
                           bool(disputed), bool(invalid), int(poster))

    def rounds(self) -> list[StoredRound]:
        """Every stored round of the feed with its status, oldest first (``round_state`` reverts
        ``oracle: round overwritten`` once the feed has stored more than ``history_rounds``)."""
        count = int(self.hub.call("round_count", self.committee.feed_id))
        return [self.round_state(i) for i in range(count)]

    def last(self) -> StoredRound | None:
        """The last stored round with its status, or ``None``."""
        count = int(self.hub.call("round_count", self.committee.feed_id))
        return self.round_state(count - 1) if count else None

    def now(self) -> Timestamp:
        """The time the next transaction sees."""
        return Timestamp(self.chain.now())


def observation_abi(observation: Any) -> tuple[bytes, int, int, int, int]:
    """An ``Observation`` as the ABI tuple ``(feed, round, price, timestamp, expiry)``."""
    return (bytes(observation.feed_id), int(observation.round), int(observation.price),
            int(observation.timestamp), int(observation.expiry))


def deploy_oracle_system(
    chain: Chain,
    f: int,
    *,
    pair: str = "ETH/USDC",
    feed: FeedConfig = DEFAULT_FEED,
    params: HubParams = DEFAULT_HUB,
    stake: Amount | None = None,
    disputes: DisputeParams = DEFAULT_DISPUTES,
) -> OracleSystem:
    """Deploy token, Bonds, Arbitration, Assertions, OracleHub and OracleDisputes and wire them;
    bond ``3f+1`` members; configure one feed and its committee.

    ``accounts[0]`` deploys and administers everything. Members get deterministic keys, some ether
    for gas, and ``stake`` (default ``params.min_stake``) of oracle-role stake.
    """
    admin = chain.accounts[0]
    token = chain.deploy("mocks/TestToken", "Test USD", "tUSD")
    bonds = chain.deploy("Bonds", *disputes.bonds_args(token.address))
    arbitration = chain.deploy("Arbitration", *disputes.arbitration_args(bonds.address))
    assertions = chain.deploy("Assertions", *disputes.assertions_args(arbitration.address))
    hub = chain.deploy("OracleHub", *params.hub_args(bonds.address, PARAMS.eip712_name,
                                                     PARAMS.eip712_version))
    module = chain.deploy("OracleDisputes", *params.disputes_args(hub.address, assertions.address))
    role = int(bonds.call("ROLE_ORACLE"))
    bonds.transact("set_slasher", hub.address, role, True)
    bonds.transact("set_slasher", module.address, role, True)
    bonds.transact("set_slasher", arbitration.address, int(Role.ARBITRATOR), True)
    arbitration.transact("set_requester", assertions.address, True)
    hub.transact("set_dispute_module", module.address)
    bonded = Amount(params.min_stake if stake is None else stake)
    keys = compute_member_keys(3 * f + 1)
    for key in keys:
        member = Account.from_key(key)
        chain.transact(member.address, b"", sender=admin, value=10**18)
        if bonded:
            token.transact("mint", member.address, bonded)
            token.transact("approve", bonds.address, bonded, sender=member)
            bonds.transact("bond", role, bonded, sender=member)
    feed_id = compute_feed_id(pair)
    hub.transact("configure_feed", feed_id, feed.min_price, feed.max_price, feed.max_deviation_bps,
                 feed.max_age, feed.max_staleness)
    members = [Address(Account.from_key(k).address) for k in keys]
    hub.transact("set_committee", feed_id, members, f)
    committee = Committee(feed_id=feed_id, members=tuple(members), f=f, version=1)
    return OracleSystem(chain, token, bonds, arbitration, assertions, hub, module, feed, params, disputes,
                        committee, keys, bonded)


def deploy_oracle_rewards(system: OracleSystem, epoch: int = ORACLE_REWARD_EPOCH) -> Contract:
    """Deploy ``OracleRewards`` (the transmit relay that pays the oracle role by work) over the
    system's hub and token: epochs of ``epoch`` seconds from now, claims delayed by
    :func:`~clearhouse.incentives.oracle_rewards.compute_claim_delay` of the system's parameters."""
    return system.chain.deploy("OracleRewards", system.token.address, system.hub.address, system.now(), epoch,
                               compute_claim_delay(system.params, system.dispute_params))
