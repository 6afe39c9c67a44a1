"""Deploy and drive a bonded oracle committee on a chain: token, Bonds, OracleHub, ``3f+1`` staked
members with deterministic keys, one configured feed.

Used by the contract tests, the oracle benchmark and the demo; the rules themselves live in
:mod:`clearhouse.oracle` and never touch a chain.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from eth_account import Account
from eth_account.signers.local import LocalAccount

from clearhouse.chain import Chain, Contract, Receipt
from clearhouse.messages import Domain
from clearhouse.messages.eip712 import keccak256
from clearhouse.oracle import (
    Committee,
    EquivocationProof,
    FeedConfig,
    HubParams,
    SignedReport,
    StoredRound,
    compute_feed_id,
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
    "DEFAULT_FEED",
    "DEFAULT_HUB",
    "USDC",
    "OracleSystem",
    "compute_member_keys",
    "deploy_oracle_system",
    "observation_abi",
]

PARAMS = load_params("devnet")
"""The protocol parameters the hub's EIP-712 domain name and version come from."""
USDC = 10**6
"""Base units per whole collateral token (6 decimals)."""
WEEK = Seconds(7 * 86_400)
"""Default unbonding delay of the test Bonds registry."""

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
)
"""Rounds at least 8 s apart, 30-minute TWAP windows (≤ 226 rounds), 10k USDC stake, 5k slashed per
equivocation of which 20 % goes to the prover."""


def compute_member_keys(n: int, seed: bytes = b"clearhouse oracle member") -> list[bytes]:
    """``n`` deterministic private keys: ``keccak256(seed ‖ i)`` (dev and test chains only)."""
    return [keccak256(seed + i.to_bytes(4, "big")) for i in range(n)]


@dataclass
class OracleSystem:
    """A deployed hub with one feed and its committee."""

    chain: Chain
    """The chain it lives on."""
    token: Contract
    """The stake token (a test token)."""
    bonds: Contract
    """The Bonds registry; the hub is a slasher for its oracle role."""
    hub: Contract
    """The OracleHub."""
    feed: FeedConfig
    """The feed's configuration."""
    params: HubParams
    """The hub's constants."""
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

    def transmit(self, signed: SignedReport, sender: LocalAccount | None = None) -> Receipt:
        """Send a report to ``OracleHub.transmit``."""
        return self.hub.transact("transmit", signed.report.to_abi(), list(signed.signatures),
                                 sender=sender)

    def prove(self, proof: EquivocationProof, sender: LocalAccount | None = None) -> Receipt:
        """Send an equivocation proof."""
        a, b = proof.first, proof.second
        return self.hub.transact("prove_equivocation", observation_abi(a.observation), a.signature,
                                 observation_abi(b.observation), b.signature, sender=sender)

    def rounds(self) -> list[StoredRound]:
        """Every stored round of the feed, oldest first."""
        count = int(self.hub.call("round_count", self.committee.feed_id))
        return [_round(self.hub.call("round_at", self.committee.feed_id, i)) for i in range(count)]

    def last(self) -> StoredRound | None:
        """The last stored round, or ``None``."""
        latest = _round(self.hub.call("latest", self.committee.feed_id))
        return None if latest.round == 0 and latest.timestamp == 0 else latest

    def now(self) -> Timestamp:
        """The time the next transaction sees."""
        return Timestamp(self.chain.now())


def observation_abi(observation: Any) -> tuple[bytes, int, int, int, int]:
    """An ``Observation`` as the ABI tuple ``prove_equivocation`` takes."""
    return (bytes(observation.feed_id), int(observation.round), int(observation.price),
            int(observation.timestamp), int(observation.expiry))


def _round(values: Sequence[int]) -> StoredRound:
    round_id, price, timestamp = values
    return StoredRound(RoundId(round_id), Price(price), Timestamp(timestamp))


def deploy_oracle_system(
    chain: Chain,
    f: int,
    *,
    pair: str = "ETH/USDC",
    feed: FeedConfig = DEFAULT_FEED,
    params: HubParams = DEFAULT_HUB,
    stake: Amount | None = None,
    unbonding_delay: Seconds = WEEK,
) -> OracleSystem:
    """Deploy token, Bonds and OracleHub; bond ``3f+1`` members; configure one feed and its committee.

    ``accounts[0]`` deploys and administers everything. Members get deterministic keys, some ether
    for gas, and ``stake`` (default ``params.min_stake``) of oracle-role stake.
    """
    admin = chain.accounts[0]
    token = chain.deploy("mocks/TestToken", "Test USD", "tUSD")
    bonds = chain.deploy("Bonds", token.address, unbonding_delay)
    hub = chain.deploy("OracleHub", bonds.address, PARAMS.eip712_name, PARAMS.eip712_version,
                       params.min_stake,
                       params.slash_amount, params.prover_reward_bps, params.min_round_interval,
                       params.max_twap_window)
    role = int(bonds.call("ROLE_ORACLE"))
    bonds.transact("set_slasher", hub.address, role, True)
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
    return OracleSystem(chain, token, bonds, hub, feed, params, committee, keys, bonded)
