"""Vault + Settlement deployed on a test chain, driven with batches built by the Python spec.

Shared by the tests and the benchmarks. Users are the settlement
world's keys (``KEYS[i]`` owns account id ``i`` when it deposits ``i``-th); they get ether for gas.
The coordinator is ``chain.accounts[1]``, bonded; the admin is ``chain.accounts[0]``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from eth_account import Account
from eth_account.signers.local import LocalAccount

from clearhouse.chain import Chain, Contract, Receipt
from clearhouse.settlement import (
    BatchResult,
    Operation,
    SettlementState,
    apply_batch,
    compute_genesis_state,
    compute_windows,
    encode_header,
    encode_ops_data,
    get_state_root,
)
from clearhouse.settlement.header import compute_payout_tree
from clearhouse.settlement.state import STATE_ROOT_PREFIX
from clearhouse.sim.settlement_world import E1, E2, KEYS, NOW, make_ctx
from clearhouse.types import BatchNumber

__all__ = ["BOND", "MIN_STAKE", "REWARD_BPS", "T_FORCE", "USDC", "WINDOW", "K", "Posted", "SettlementSystem", "deploy",
           "deploy_window_verifier", "forge"]

USDC = 10**6
WINDOW = 3600
"""Challenge window ``W`` of the test deployment (seconds)."""
T_FORCE = 2 * 86400
"""``T_force`` of the test deployment (seconds)."""
MIN_STAKE = 1_000 * USDC
BOND = 5_000 * USDC
K = 4
"""A small ``K`` so that a few operations make several windows."""
REWARD_BPS = 5_000
MAX_POST_DELAY = 30 * 86400
SMALL_OPS_DATA = 65536
"""``Settlement.SMALL_OPS_DATA``: the largest ``ops_data`` ``post_batch`` takes."""


@dataclass
class Posted:
    """A batch as posted: the spec's result and the bytes sent."""

    result: BatchResult
    header: bytes
    ops_data: bytes


@dataclass
class SettlementSystem:
    """The deployed contracts and the Python state that mirrors the posted batches."""

    chain: Chain
    token: Contract
    bonds: Contract
    vault: Contract
    settlement: Contract
    users: list[LocalAccount]
    verifier: Contract | None = None
    """The ``WindowVerifier`` wired into the settlement (``None``: deployed without one)."""
    state: SettlementState = field(default_factory=compute_genesis_state)
    finalized: SettlementState = field(default_factory=compute_genesis_state)
    posted: list[Posted] = field(default_factory=list)
    deposits: list[tuple[int, str, int]] = field(default_factory=list)
    """Every vault deposit in queue order: (account id, owner, amount)."""
    claimed: set[tuple[int, int]] = field(default_factory=set)
    exited: set[int] = field(default_factory=set)
    refunded: set[int] = field(default_factory=set)
    fee_pool_exited: bool = False
    k: int = K
    """The deployment's checkpoint interval."""

    @property
    def admin(self) -> LocalAccount:
        return self.chain.accounts[0]

    @property
    def coordinator(self) -> LocalAccount:
        return self.chain.accounts[1]

    def balance(self, who: str) -> int:
        return int(self.token.call("balanceOf", who))

    def deposit(self, i: int, usdc: int) -> None:
        """User ``i`` mints, approves and deposits ``usdc`` whole USDC."""
        user = self.users[i]
        self.token.transact("mint", user.address, usdc * USDC)
        self.token.transact("approve", self.vault.address, usdc * USDC, sender=user)
        self.vault.transact("deposit", usdc * USDC, sender=user)
        _, account = self.vault.call("account_of", user.address)
        self.deposits.append((account, user.address, usdc * USDC))

    def sync_time(self, timestamp: int) -> None:
        """Move the chain clock to at least ``timestamp``."""
        now = self.chain.now()
        if now < timestamp:
            self.chain.time_travel(timestamp - now)

    def build(self, ops: Sequence[Operation], timestamp: int = NOW) -> Posted:
        """Apply ``ops`` as the next batch (not posted)."""
        number = BatchNumber(len(self.posted) + 1)
        result = apply_batch(self.state, ops, make_ctx(timestamp), self.k, number=number)
        return Posted(result, encode_header(result.header),
                      encode_ops_data(compute_windows(result.operations, self.k)))

    def post(self, ops: Sequence[Operation], timestamp: int = NOW) -> Posted:
        """Build and post the next batch (as the coordinator); track it."""
        posted = self.build(ops, timestamp)
        self.sync_time(timestamp)
        self.post_raw(posted)
        return posted

    def post_raw(self, posted: Posted) -> Receipt:
        """Post a built batch (``post_large_batch`` above ``SMALL_OPS_DATA`` bytes); track it."""
        entry = "post_batch" if len(posted.ops_data) <= SMALL_OPS_DATA else "post_large_batch"
        receipt = self.settlement.transact(entry, posted.header, posted.ops_data, sender=self.coordinator)
        self.posted.append(posted)
        self.state = posted.result.state
        return receipt

    def finalize_all(self) -> None:
        """Wait out the window and finalise everything posted."""
        self.chain.time_travel(WINDOW)
        self.settlement.transact("finalize", len(self.posted))
        self.finalized = self.state

    def claim(self, number: int, index: int) -> None:
        """Claim payout ``index`` of batch ``number`` (sent by the admin: anyone may)."""
        result = self.posted[number - 1].result
        tree = compute_payout_tree(result.header.number, result.payouts)
        assert tree is not None
        p = result.payouts[index]
        proof = tree.get_proof(index)
        self.settlement.transact("claim", number, index, p.recipient, p.amount, list(proof))
        self.claimed.add((number, index))

    def expected_vault_balance(self) -> int:
        """What the vault must hold, from the last finalised state: every balance not yet
        exited, the fee pool unless paid out, every payout of a finalised batch not yet
        claimed, and every deposit the finalised state has not consumed and not refunded."""
        final = self.finalized
        last_final = int(self.settlement.call("last_finalized"))
        balances = sum(a.balance for i, a in final.accounts.items() if i not in self.exited)
        fee_pool = 0 if self.fee_pool_exited else final.counters.fee_pool
        unclaimed = sum(p.amount for posted in self.posted[:last_final]
                        for i, p in enumerate(posted.result.payouts)
                        if (posted.result.header.number, i) not in self.claimed)
        queued = sum(amount for i, (_, _, amount) in enumerate(self.deposits)
                     if i >= final.counters.deposit_count and i not in self.refunded)
        return balances + fee_pool + unclaimed + queued

    def check_conservation(self) -> None:
        """The vault's token balance equals what it owes, to the base unit."""
        held = self.balance(self.vault.address)
        assert held == self.expected_vault_balance()
        assert held == int(self.vault.call("outstanding"))

    def preimage(self, state: SettlementState) -> bytes:
        """The 168 bytes after ``0x02`` in ``state``'s root preimage."""
        from clearhouse.settlement.state import encode_counters, get_commitment
        c = get_commitment(state)
        data = c.accounts_root + c.consumed_root + encode_counters(c.counters)
        assert len(data) == 168 and get_state_root(state) == _keccak(STATE_ROOT_PREFIX + data)
        return data


def _keccak(data: bytes) -> bytes:
    from clearhouse.messages.keccak import keccak256
    return keccak256(data)


def deploy_window_verifier(chain: Chain, settlement: Contract) -> Contract:
    """A ``WindowVerifier`` (over fresh ``StfRules`` and ``StfTradeRules``) for ``settlement``, with the
    settlement world's context and both of its expiries listed by the admin, wired in as the
    settlement's execution fraud-proof verifier."""
    ctx = make_ctx()
    trade_rules, rules = chain.deploy("StfTradeRules"), chain.deploy("StfRules")
    verifier = chain.deploy("WindowVerifier", settlement.address, trade_rules.address, rules.address,
                            ctx.domain.separator, ctx.contract_unit, ctx.max_positions, ctx.max_clock_lag,
                            ctx.fee_account, ctx.max_fee_bps, ctx.parameter_version)
    for e in (E1, E2):
        verifier.transact("list_expiry", (e.expiry_id, e.underlying_word, e.quote_word, e.timestamp, e.cap,
                                          False, 0))
    settlement.transact("set_window_verifier", verifier.address)
    return verifier


def deploy(chain: Chain, *, users: int = 4, reentrant: bool = False, k: int = K,
           window_verifier: bool = True) -> SettlementSystem:
    """Token, Bonds, Vault and Settlement wired together, the coordinator bonded, users with gas
    (``reentrant``: the vault's token is ``mocks/ReentrantToken``; ``window_verifier``: a real
    ``WindowVerifier`` is wired in, see :func:`deploy_window_verifier`)."""
    admin, coordinator = chain.accounts[0], chain.accounts[1]
    token = chain.deploy("mocks/TestToken", "Test USD", "tUSD")
    bond_token = token
    if reentrant:
        token = chain.deploy("mocks/ReentrantToken")
    bonds = chain.deploy("Bonds", bond_token.address, 7 * 86400)
    vault = chain.deploy("Vault", token.address)
    checker = chain.deploy("PayoutsChecker")
    settlement = chain.deploy(
        "Settlement", vault.address, bonds.address, get_state_root(compute_genesis_state()),
        coordinator.address, MIN_STAKE, WINDOW, T_FORCE, MAX_POST_DELAY, k, 1, REWARD_BPS,
        admin.address, checker.address)
    vault.transact("set_settlement", settlement.address)
    bonds.transact("set_slasher", settlement.address, 0, True)
    bond_token.transact("mint", coordinator.address, BOND)
    bond_token.transact("approve", bonds.address, BOND, sender=coordinator)
    bonds.transact("bond", 0, BOND, sender=coordinator)
    people = [Account.from_key(KEYS[i]) for i in range(users)]
    for person in people:
        chain.transact(person.address, b"", sender=admin, value=10**18)
    verifier = deploy_window_verifier(chain, settlement) if window_verifier else None
    return SettlementSystem(chain, token, bonds, vault, settlement, people, verifier, k=k)


def forge(posted: Posted, ops: Sequence[Operation]) -> Posted:
    """``posted`` with its operations replaced by ``ops`` (same K, same window count) but the same
    claimed new state: what a coordinator that skips or alters queue entries would post."""
    from dataclasses import replace

    from clearhouse.settlement import compute_ops_hash
    windows = compute_windows(ops, posted.result.header.checkpoint_interval)
    header = replace(posted.result.header, op_count=len(ops), ops_hash=compute_ops_hash(windows))
    result = replace(posted.result, header=header, operations=tuple(ops))
    return Posted(result, encode_header(header), encode_ops_data(windows))
