"""Vault + Settlement deployed on a test chain, driven with batches built by the Python spec.

Shared by the tests and the benchmarks. Users are the settlement
world's keys (``KEYS[i]`` owns account id ``i`` when it deposits ``i``-th); they get ether for gas.
The coordinator is ``chain.accounts[1]``, bonded; the admin is ``chain.accounts[0]``; the guardian
(who may trigger an emergency pause) is ``chain.accounts[9]``. With ``parameter_bounds`` a
``ParameterStore`` governed by ``governor`` is deployed and the verifier reads it: each batch is then
built under the parameter version of its number.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from eth_account import Account
from eth_account.signers.local import LocalAccount

from clearhouse.chain import Chain, Contract, Receipt
from clearhouse.messages import Domain
from clearhouse.messages.domain import compute_domain
from clearhouse.node.parameters import ChainParameters
from clearhouse.settlement import (
    BatchResult,
    Operation,
    SettlementContext,
    SettlementState,
    apply_batch,
    compute_genesis_state,
    compute_parameter_key,
    compute_windows,
    encode_header,
    encode_ops_data,
    get_state_root,
)
from clearhouse.settlement.header import compute_payout_tree
from clearhouse.settlement.state import STATE_ROOT_PREFIX
from clearhouse.sim.settlement_world import DOMAIN, E1, E2, KEYS, NOW, PARAMS, make_ctx
from clearhouse.types import Address, BatchNumber, ChainId

__all__ = ["BOND", "GUARDIAN_INDEX", "MIN_STAKE", "REWARD_BPS", "T_FORCE", "USDC", "WINDOW", "WINDOW_OUTFLOW", "K", "Posted",
           "SettlementSystem", "deploy", "deploy_parameter_store", "deploy_window_verifier", "forge"]

USDC = 10**6
WINDOW = 3600
"""Challenge window ``W`` of the test deployment (seconds)."""
T_FORCE = 2 * 86400
"""``T_force`` of the test deployment (seconds)."""
MIN_STAKE = 1_000 * USDC
BOND = 5_000 * USDC
WINDOW_OUTFLOW = BOND // 2
"""``Vault.outflow_cap`` of the test deployment: claims pay out at most this in any ``WINDOW``
seconds, so the coordinator's bond covers twice what a window can move (``max_window_outflow``)."""
K = 4
"""A small ``K`` so that a few operations make several windows."""
REWARD_BPS = 5_000
MAX_POST_DELAY = 30 * 86400
SMALL_OPS_DATA = 65536
"""``Settlement.SMALL_OPS_DATA``: the largest ``ops_data`` ``post_batch`` takes."""
GUARDIAN_INDEX = 9
"""``chain.accounts`` index of the settlement's guardian (may pause posting)."""


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
    """Payouts paid in full, ``(batch, index)``."""
    claim_paid: dict[tuple[int, int], int] = field(default_factory=dict)
    """What claims paid so far of payouts the window outflow cap split, base units."""
    exited: set[int] = field(default_factory=set)
    refunded: set[int] = field(default_factory=set)
    fee_pool_exited: bool = False
    k: int = K
    """The deployment's checkpoint interval (version 1's)."""
    parameters: ChainParameters = field(default_factory=lambda: ChainParameters(None))
    """The parameter store the verifier reads (none: version 1 only)."""
    domain: Domain = DOMAIN
    """The EIP-712 domain the verifier checks signatures under."""

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

    def context(self, number: int, timestamp: int = NOW, *, version: int | None = None) -> SettlementContext:
        """The settlement world's context at ``timestamp`` under the parameter version of batch
        ``number`` on chain (or under ``version``)."""
        base = make_ctx(timestamp, k=self.k)
        if version is None:
            return self.parameters.get_context(base, number=number)
        return self.parameters.get_context(base, version=version)

    def build(self, ops: Sequence[Operation], timestamp: int = NOW, *, version: int | None = None) -> Posted:
        """Apply ``ops`` as the next batch (not posted), under the parameter version of its number
        (or under ``version``)."""
        number = BatchNumber(len(self.posted) + 1)
        ctx = self.context(number, timestamp, version=version)
        result = apply_batch(self.state, ops, ctx, ctx.checkpoint_interval, number=number)
        return Posted(result, encode_header(result.header),
                      encode_ops_data(compute_windows(result.operations, ctx.checkpoint_interval)))

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
        """Wait out the last batch's window (it closes last) and finalise everything posted."""
        self.sync_time(int(self.settlement.call("batch_meta", len(self.posted))) % 2**64)
        self.settlement.transact("finalize", len(self.posted))
        self.finalized = self.state

    def claim(self, number: int, index: int) -> None:
        """Claim payout ``index`` of batch ``number`` (sent by the admin: anyone may)."""
        result = self.posted[number - 1].result
        tree = compute_payout_tree(result.header.number, result.payouts)
        assert tree is not None
        p = result.payouts[index]
        proof = tree.get_proof(index)
        receipt = self.settlement.transact("claim", number, index, p.recipient, p.amount, list(proof))
        paid = self.claim_paid.pop((number, index), 0) + sum(
            int(e.args["amount"]) for e in receipt.events_named("Claimed"))
        if paid == p.amount:
            self.claimed.add((number, index))
        else:  # the window outflow cap let part of it out: the rest stays claimable
            self.claim_paid[(number, index)] = paid

    def expected_vault_balance(self) -> int:
        """What the vault must hold, from the last finalised state: every balance not yet
        exited, the fee pool unless paid out, every payout of a finalised batch not yet
        claimed, and every deposit the finalised state has not consumed and not refunded."""
        final = self.finalized
        last_final = int(self.settlement.call("last_finalized"))
        balances = sum(a.balance for i, a in final.accounts.items() if i not in self.exited)
        fee_pool = 0 if self.fee_pool_exited else final.counters.fee_pool
        unclaimed = sum(p.amount - self.claim_paid.get((posted.result.header.number, i), 0)
                        for posted in self.posted[:last_final]
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


def deploy_parameter_store(chain: Chain, settlement: Contract, governor: str,
                           bounds: Mapping[str, tuple[int, int]], k: int = K,
                           values: Mapping[str, int] | None = None) -> Contract:
    """A ``ParameterStore`` for ``settlement`` changed only by ``governor``: ``bounds`` (name →
    (minimum, maximum)) must list ``checkpoint_interval``, ``max_positions`` and ``max_fee_bps`` for
    a verifier to read it; ``challenge_window`` and ``t_force``, which the settlement reads, are
    fixed at ``WINDOW`` and ``T_FORCE`` unless listed. Version 1 is ``values``, by default the
    settlement world's context with ``K = k`` (a verifier over the store must be deployed with the
    same ``max_positions`` and ``max_fee_bps``, the settlement with the same ``K``, ``W`` and
    ``T_force``)."""
    ctx = make_ctx(k=k)
    bounds = {"challenge_window": (WINDOW, WINDOW), "t_force": (T_FORCE, T_FORCE), **bounds}
    initial = {"checkpoint_interval": ctx.checkpoint_interval, "max_positions": ctx.max_positions,
               "max_fee_bps": int(ctx.max_fee_bps), "challenge_window": WINDOW, "t_force": T_FORCE,
               **(values or {})}
    names = list(bounds)
    return chain.deploy("ParameterStore", governor, settlement.address,
                        [compute_parameter_key(n) for n in names], [bounds[n][0] for n in names],
                        [bounds[n][1] for n in names], [initial[n] for n in names])


def deploy_window_verifier(chain: Chain, settlement: Contract, store: Contract | None = None,
                           domain: Domain = DOMAIN) -> Contract:
    """A ``WindowVerifier`` (over fresh ``StfTradeRules`` and ``StfRules``) for ``settlement``, with the
    settlement world's context under ``domain`` (default: the settlement world's) and both of its
    expiries listed by the admin, reading ``store``'s parameter versions if given (its version 1
    ``max_positions`` and ``max_fee_bps`` are then the verifier's own), wired in as the
    settlement's execution fraud-proof verifier."""
    ctx = make_ctx()
    max_positions, max_fee_bps = ctx.max_positions, int(ctx.max_fee_bps)
    if store is not None:
        max_positions, max_fee_bps = (int(store.call("get", compute_parameter_key(n), 1))
                                      for n in ("max_positions", "max_fee_bps"))
    trade_rules, rules = chain.deploy("StfTradeRules"), chain.deploy("StfRules")
    verifier = chain.deploy("WindowVerifier", settlement.address, trade_rules.address, rules.address,
                            domain.separator, ctx.contract_unit, max_positions, ctx.max_clock_lag,
                            ctx.fee_account, max_fee_bps,
                            "0x" + "00" * 20 if store is None else store.address)
    for e in (E1, E2):
        verifier.transact("list_expiry", (e.expiry_id, e.underlying_word, e.quote_word, e.timestamp, e.cap,
                                          False, 0))
    settlement.transact("set_window_verifier", verifier.address)
    return verifier


def deploy(chain: Chain, *, users: int = 4, reentrant: bool = False, k: int = K,
           window_verifier: bool = True, parameter_bounds: Mapping[str, tuple[int, int]] | None = None,
           governor: str | None = None, parameter_values: Mapping[str, int] | None = None,
           window_outflow: int = WINDOW_OUTFLOW, max_post_delay: int = MAX_POST_DELAY,
           own_domain: bool = False) -> SettlementSystem:
    """Token, Bonds, Vault and Settlement wired together, the coordinator bonded, users with gas
    (``reentrant``: the vault's token is ``mocks/ReentrantToken``; ``window_verifier``: a real
    ``WindowVerifier`` is wired in, see :func:`deploy_window_verifier`; ``parameter_bounds``: it reads
    a ``ParameterStore`` changed by ``governor`` holding ``parameter_values`` as version 1 — its
    ``checkpoint_interval``, if given, must be ``k`` — see :func:`deploy_parameter_store`;
    ``window_outflow``: the vault's cap on what claims pay out per challenge window; ``own_domain``:
    the verifier checks signatures in the deployment's own EIP-712 domain, whose verifying contract
    is this ``Settlement``, as a real deployment must (no two deployments then accept each other's
    messages), instead of the settlement world's fixed one)."""
    admin, coordinator = chain.accounts[0], chain.accounts[1]
    token = chain.deploy("mocks/TestToken", "Test USD", "tUSD")
    bond_token = token
    if reentrant:
        token = chain.deploy("mocks/ReentrantToken")
    bonds = chain.deploy("Bonds", bond_token.address, 7 * 86400)
    vault = chain.deploy("Vault", token.address, window_outflow, WINDOW)
    checker = chain.deploy("PayoutsChecker")
    settlement = chain.deploy(
        "Settlement", vault.address, bonds.address, get_state_root(compute_genesis_state()),
        coordinator.address, MIN_STAKE, WINDOW, T_FORCE, max_post_delay, k,
        chain.accounts[GUARDIAN_INDEX].address, REWARD_BPS, admin.address, checker.address)
    vault.transact("set_settlement", settlement.address)
    bonds.transact("set_slasher", settlement.address, 0, True)
    bond_token.transact("mint", coordinator.address, BOND)
    bond_token.transact("approve", bonds.address, BOND, sender=coordinator)
    bonds.transact("bond", 0, BOND, sender=coordinator)
    people = [Account.from_key(KEYS[i]) for i in range(users)]
    for person in people:
        chain.transact(person.address, b"", sender=admin, value=10**18)
    store = None
    if parameter_bounds is not None:
        store = deploy_parameter_store(chain, settlement, governor or admin.address, parameter_bounds, k,
                                       parameter_values)
    domain = compute_domain(PARAMS, ChainId(chain.chain_id), Address(settlement.address)) if own_domain else DOMAIN
    verifier = deploy_window_verifier(chain, settlement, store, domain) if window_verifier else None
    return SettlementSystem(chain, token, bonds, vault, settlement, people, verifier, k=k,
                            parameters=ChainParameters(store), domain=domain)


def forge(posted: Posted, ops: Sequence[Operation]) -> Posted:
    """``posted`` with its operations replaced by ``ops`` (same K, same window count) but the same
    claimed new state: what a coordinator that skips or alters queue entries would post."""
    from dataclasses import replace

    from clearhouse.settlement import compute_ops_hash
    windows = compute_windows(ops, posted.result.header.checkpoint_interval)
    header = replace(posted.result.header, op_count=len(ops), ops_hash=compute_ops_hash(windows))
    result = replace(posted.result, header=header, operations=tuple(ops))
    return Posted(result, encode_header(header), encode_ops_data(windows))
