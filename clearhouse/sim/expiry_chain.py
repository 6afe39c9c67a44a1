"""Settlement with its expiry registry and oracle: exits with open positions, on a test chain.

:func:`deploy_expiry_system` deploys what :func:`clearhouse.sim.settlement_chain.deploy` does, an
oracle committee (:func:`clearhouse.sim.oracle_hub.deploy_oracle_system`), an ``ExpiryRegistry``
over its hub with the settlement world's two expiries, and wires it into the ``WindowVerifier``
(``Settlement``'s, or a new one), which reads it from then on. :class:`ExpirySystem` drives freezes, exits and expiry
settlement and says what the vault must hold after each step (the Python spec:
:mod:`clearhouse.settlement.exits`). Shared by the contract tests and the benchmarks.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from clearhouse.chain import Chain, Contract, Receipt
from clearhouse.market.instruments import OptionKind
from clearhouse.oracle import FeedConfig
from clearhouse.settlement import (
    ListedExpiry,
    Operation,
    RfqFillOp,
    SettlementContext,
    TickOp,
    apply_batch,
    compute_windows,
    encode_account,
    encode_header,
    encode_ops_data,
    get_account_proof,
)
from clearhouse.settlement.exits import compute_exit_value
from clearhouse.sim.oracle_hub import DEFAULT_FEED, OracleSystem, deploy_oracle_system
from clearhouse.sim.settlement_chain import T_FORCE, K, Posted, SettlementSystem, deploy
from clearhouse.sim.settlement_world import (
    DOMAIN,
    E1,
    E2,
    NOW,
    USDC,
    deposit,
    leg,
    make_ctx,
    px,
    rfq_fill,
)
from clearhouse.types import AccountId, BatchNumber, ExpiryId, FeedId, Price, Timestamp

__all__ = ["TWAP_WINDOW", "ExpirySystem", "compute_max_positions_fills", "deploy_expiry_registry",
           "deploy_expiry_system", "measure_worst_exit_gas"]

TWAP_WINDOW = 1800
"""Seconds of the TWAP window ending at an expiry (the hub's ``max_twap_window``)."""
WIDE_FEED = FeedConfig(min_price=Price(1), max_price=Price(10**12), max_deviation_bps=DEFAULT_FEED.max_deviation_bps,
                       max_age=DEFAULT_FEED.max_age, max_staleness=DEFAULT_FEED.max_staleness)
"""The oracle feed of the tests: wide bounds so a price above an expiry's cap can be reported."""


@dataclass
class ExpirySystem:
    """A settlement deployment with its expiry registry, oracle and verifier, and what was exited."""

    s: SettlementSystem
    """Vault, Settlement, Bonds and the spec's mirror of the posted batches."""
    oracle: OracleSystem
    """The oracle committee whose TWAP settles expiries."""
    registry: Contract
    """The ``ExpiryRegistry``."""
    verifier: Contract
    """The ``WindowVerifier`` (reads the registry; ``Settlement`` values exits through it)."""
    prices: dict[ExpiryId, Price] = field(default_factory=dict)
    """Settlement prices the registry recorded (clamped to the cap, off the unit grid)."""
    paid_free: dict[int, int] = field(default_factory=dict)
    """Account id → free collateral its ``exit`` paid."""
    pending: set[int] = field(default_factory=set)
    """Exited accounts whose positions are not yet paid."""
    paid_rest: dict[int, int] = field(default_factory=dict)
    """Account id → what its ``exit_positions`` paid."""
    round_id: int = 0
    """The last oracle round posted."""

    @property
    def chain(self) -> Chain:
        return self.s.chain

    def ctx(self, timestamp: int = NOW) -> SettlementContext:
        """The spec's context of a batch at ``timestamp`` with the registry's prices (the settlement
        world's expiries)."""
        return make_ctx(timestamp, prices=self.prices)

    def post(self, ops: Sequence[Operation], timestamp: int) -> Posted:
        """Build the next batch with the registry's prices (so it may settle expiries) and post it
        as the coordinator; ``SettlementSystem`` tracks it."""
        s = self.s
        result = apply_batch(s.state, ops, self.ctx(timestamp), s.k, number=BatchNumber(len(s.posted) + 1))
        posted = Posted(result, encode_header(result.header),
                        encode_ops_data(compute_windows(result.operations, s.k)))
        s.sync_time(timestamp)
        s.post_raw(posted)
        return posted

    def post_rounds(self, expiry: ListedExpiry, prices: Sequence[int], gap: int = 300, *,
                    wait: bool = True) -> None:
        """Members post ``prices`` as consecutive optimistic rounds ``gap`` seconds apart, the last
        one ``gap`` seconds before the expiry; then (``wait``) wait out the hub's dispute window."""
        start = expiry.timestamp - gap * len(prices)
        self.s.sync_time(start)
        for i, price in enumerate(prices):
            self.s.sync_time(start + gap * i)
            self.round_id += 1
            key = self.oracle.keys[self.round_id % len(self.oracle.keys)]
            self.oracle.post(key, self.round_id, price)
        if wait:
            self.s.sync_time(expiry.timestamp + int(self.oracle.params.dispute_window) + 1)

    def settle_expiry(self, expiry: ListedExpiry) -> int:
        """``settle_expiry`` (anyone) and record the price the registry stored."""
        receipt = self.registry.transact("settle_expiry", expiry.expiry_id, sender=self.chain.accounts[6])
        price = int(receipt.events_named("ExpirySettled")[0].args["price"])
        self.prices[expiry.expiry_id] = Price(price)
        return price

    def freeze(self, requester: int = 0) -> None:
        """User ``requester`` asks for a forced withdrawal nobody serves; after ``T_force`` a
        stranger freezes. The spec drops every batch not finalised."""
        self.s.vault.transact("request_forced_withdrawal", 1, sender=self.s.users[requester])
        self.chain.time_travel(T_FORCE)
        self.s.settlement.transact("freeze", sender=self.chain.accounts[7])
        last_final = int(self.s.settlement.call("last_finalized"))
        self.s.posted, self.s.state = self.s.posted[:last_final], self.s.finalized

    def exit_args(self, account: int) -> tuple[bytes, int, bytes, int, list[bytes]]:
        """``exit``'s arguments for ``account`` from the frozen (last finalised) state."""
        final = self.s.finalized
        proof = get_account_proof(final, AccountId(account))
        leaf = encode_account(final.accounts[AccountId(account)])
        return self.s.preimage(final), account, leaf, proof.bitmap, list(proof.siblings)

    def exit(self, account: int) -> Receipt:
        """Exit ``account`` (sent by a stranger: anyone may) and record what it was paid."""
        receipt = self.s.settlement.transact("exit", *self.exit_args(account), sender=self.chain.accounts[8])
        self.paid_free[account] = int(receipt.events_named("Exited")[0].args["amount"])
        self.s.exited.add(account)
        if self.s.finalized.accounts[AccountId(account)].positions:
            self.pending.add(account)
        return receipt

    def exit_positions(self, account: int) -> Receipt:
        """Pay ``account``'s positions (anyone may) and record the amount."""
        leaf = encode_account(self.s.finalized.accounts[AccountId(account)])
        receipt = self.s.settlement.transact("exit_positions", account, leaf, sender=self.chain.accounts[8])
        self.paid_rest[account] = int(receipt.events_named("PositionsExited")[0].args["amount"])
        self.pending.discard(account)
        return receipt

    def expected_vault_balance(self) -> int:
        """What the vault owes, from the frozen state: what ``SettlementSystem`` counts (balances
        of accounts not exited, fee pool, unclaimed payouts, unconsumed deposits) plus, for each
        exited account whose positions are unpaid, its exit value (balance and the payoffs of
        priced expiries) less the free collateral it was paid."""
        ctx = self.ctx()
        owed = sum(compute_exit_value(self.s.finalized.accounts[AccountId(i)], ctx) - self.paid_free[i]
                   for i in self.pending)
        # accounts not exited count at their balance in `SettlementSystem`; their priced payoffs
        # are owed to or by them too
        priced = sum(compute_exit_value(a, ctx) - a.balance for i, a in self.s.finalized.accounts.items()
                     if i not in self.s.exited)
        return self.s.expected_vault_balance() + owed + priced

    def check_conservation(self) -> None:
        """The vault's token balance equals what it owes, to the base unit."""
        held = self.s.balance(self.s.vault.address)
        assert held == self.expected_vault_balance(), (held, self.expected_vault_balance())
        assert held == int(self.s.vault.call("outstanding"))


def deploy_expiry_registry(chain: Chain, hub: Contract, feed_id: FeedId, verifier: Contract,
                           expiries: Sequence[ListedExpiry] = (E1, E2)) -> Contract:
    """An ``ExpiryRegistry`` over ``hub`` (its TWAP window :data:`TWAP_WINDOW`) listing ``expiries``
    on the committee's feed ``feed_id``, wired into ``verifier`` (whose admin-set list it closes:
    list the same expiries there first, or none). The deployer (``chain.accounts[0]``) administers
    it. Without it, ``Settlement.exit`` reverts for any leaf holding positions (decision 0003)."""
    registry = chain.deploy("ExpiryRegistry", hub.address, TWAP_WINDOW, make_ctx().contract_unit)
    for e in expiries:
        registry.transact("list_expiry", e.underlying_word, e.quote_word, e.timestamp, e.cap, feed_id)
    # from now on the verifier judges batches, and Settlement values exits, with the registry
    verifier.transact("set_expiry_registry", registry.address)
    return registry


def deploy_expiry_system(chain: Chain, *, users: int = 4, k: int = K, f: int = 1,
                         expiries: Sequence[ListedExpiry] = (E1, E2)) -> ExpirySystem:
    """Settlement (:func:`~clearhouse.sim.settlement_chain.deploy`), an oracle committee of
    ``3f+1``, the registry listing ``expiries`` on its feed, and the verifier reading it."""
    s = deploy(chain, users=users, k=k)
    oracle = deploy_oracle_system(chain, f, feed=WIDE_FEED)
    ctx = make_ctx()
    verifier = s.verifier
    if verifier is None:
        trade_rules, rules = chain.deploy("StfTradeRules"), chain.deploy("StfRules")
        verifier = chain.deploy("WindowVerifier", s.settlement.address, trade_rules.address, rules.address,
                                DOMAIN.separator, ctx.contract_unit, ctx.max_positions, ctx.max_clock_lag,
                                ctx.fee_account, ctx.max_fee_bps, "0x" + "00" * 20)
        s.settlement.transact("set_window_verifier", verifier.address)
    registry = deploy_expiry_registry(chain, oracle.hub, oracle.committee.feed_id, verifier, expiries)
    return ExpirySystem(s, oracle, registry, verifier)


def compute_max_positions_fills(maker: int, taker: int) -> list[RfqFillOp]:
    """Two 8-leg RFQ fills between ``maker`` and ``taker`` that leave each with 16 positions of
    one expiry (calls and puts at 16 strikes): the largest requirement a leaf can ask for."""
    fills = []
    for n in range(2):
        legs = [leg(2000 + 100 * (8 * n + i), OptionKind.CALL if i % 2 else OptionKind.PUT, 100 * (i + 1),
                    i % 3 == 0, px(10)) for i in range(8)]
        fills.append(rfq_fill(maker, taker, 1, legs, quote_nonce=5000 + n, accept_nonce=6000 + n,
                              rfq_id=bytes([n + 1]) * 32))
    return fills


def measure_worst_exit_gas(chain: Chain) -> tuple[int, int]:
    """Gas of ``exit`` and of ``exit_positions`` for an account holding ``max_positions`` (16)
    series of one expiry, after a freeze, on a fresh deployment: ``(exit, exit_positions)``."""
    x = deploy_expiry_system(chain, users=3)
    for i in range(3):
        x.s.deposit(i, 1_000_000)
    x.s.post([deposit(i, 1_000_000) for i in range(3)] + [TickOp(Timestamp(NOW))])
    x.s.post(compute_max_positions_fills(1, 2))
    x.s.finalize_all()
    x.freeze()
    exit_gas = x.exit(1).gas_used
    x.post_rounds(E1, [3_000 * USDC, 3_100 * USDC])
    x.settle_expiry(E1)
    return int(exit_gas), int(x.exit_positions(1).gas_used)
