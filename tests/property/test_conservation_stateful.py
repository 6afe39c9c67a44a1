"""Conservation to the base unit across the whole settlement lifecycle, on the real contracts.

A hypothesis state machine drives Vault, Settlement, Bonds, ExpiryRegistry, WindowVerifier and an
oracle committee on an in-process EVM: deposits, batches of trades, RFQ spreads, withdrawals and
expiry settlements built by the Python spec, finality, claims, the registry settling expiries from
the committee's TWAP, a fraudulent batch proven and slashed (coordinator re-admitted), a forced
withdrawal nobody serves and the freeze, exits (free collateral, then positions), deposit refunds and
the fee pool; every run ends by emptying the hatch (then the vault holds exactly 0 when both expiries
are priced). After every step:

* the vault's token balance = Σ over accounts of the last finalised state not fully exited of their
  exit value (balance plus the exact payoff of positions in priced expiries) less what their exit
  already paid + unclaimed payouts of finalised batches + queued deposits not consumed and not
  refunded + the fee pool unless paid out — and equals ``Vault.outstanding``;
* each Bonds contract holds exactly its stakes, unbonding amounts and insurance fund (slashing
  never mints);
* every exit and positions exit paid exactly what ``clearhouse.settlement.exits`` says, once.
"""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from hypothesis import event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from clearhouse.chain import Contract, InProcessChain
from clearhouse.errors import ContractRevert, SettlementError
from clearhouse.market.instruments import OptionKind
from clearhouse.settlement import (
    DepositOp,
    ListedExpiry,
    Operation,
    SettleExpiryOp,
    TickOp,
    apply_operation,
)
from clearhouse.settlement.exits import compute_exit_claim
from clearhouse.sim.expiry_chain import ExpirySystem, deploy_expiry_system
from clearhouse.sim.settlement_chain import BOND, forge
from clearhouse.sim.settlement_world import (
    E1,
    E2,
    USDC,
    leg,
    order_terms,
    px,
    rfq_fill,
    trade,
    withdrawal,
)
from clearhouse.types import AccountId, Address, Amount, Price, Timestamp

USERS = 4
ROLES = 4
OP = st.tuples(st.sampled_from(["call", "put", "spread", "withdraw"]), st.integers(0, USERS - 1),
               st.integers(0, USERS - 1), st.integers(1, 3))


def _bonds_hold_exactly_what_they_owe(bonds: Contract, token: Contract) -> None:
    owed = int(bonds.call("insurance_fund")) + sum(
        int(bonds.call("total_stake", r)) + int(bonds.call("total_unbonding", r)) for r in range(ROLES))
    assert int(token.call("balanceOf", bonds.address)) == owed


class SettlementLifecycle(RuleBasedStateMachine):
    x: ExpirySystem

    @initialize()
    def deploy(self) -> None:
        self.x = deploy_expiry_system(InProcessChain(), users=USERS)
        s = self.x.s
        for i in range(USERS):  # account id i is user i (the settlement world's keys)
            s.deposit(i, 20_000)
        self.nonce = 10_000
        self.frozen = False
        # a first finalised batch with a short call, a long call and a call spread
        self._post_batch([("call", 1, 2, 2), ("spread", 3, 0, 1)])
        s.finalize_all()

    # --- helpers ---------------------------------------------------------------------------

    def _next_nonce(self) -> int:
        self.nonce += 1
        return self.nonce

    def _candidate(self, kind: str, a: int, b: int, size: int, clock: int) -> Operation | None:
        expiry = E1 if clock < E1.timestamp else E2
        terms = (order_terms(self._next_nonce(), px(40), 100 * size, expiry=clock + 3600),
                 order_terms(self._next_nonce(), px(40), 100 * size, expiry=clock + 3600))
        if kind in ("call", "put") and a != b:
            kinds = {"call": OptionKind.CALL, "put": OptionKind.PUT}
            return trade(a, b, 100 * size, px(40), expiry=expiry, kind=kinds[kind], maker_terms=terms[0],
                         taker_terms=terms[1])
        if kind == "spread" and a != b:
            return rfq_fill(a, b, size, [leg(3000, OptionKind.CALL, 100, True, px(50), expiry=expiry),
                                         leg(3400, OptionKind.CALL, 100, False, px(20), expiry=expiry)],
                            quote_nonce=self._next_nonce(), accept_nonce=self._next_nonce(),
                            quote_expiry=clock + 60, accept_expiry=clock + 60)
        if kind == "withdraw":
            return withdrawal(a, 100 * size, nonce=self._next_nonce(), expiry=clock + 3600)
        return None

    def _settle_ops(self, clock: int) -> list[Operation]:
        """Settle, in the state, every position of an expiry the registry has priced and passed."""
        ops: list[Operation] = []
        for e in (E1, E2):
            if e.expiry_id in self.x.prices and clock >= e.timestamp:
                ops += [SettleExpiryOp(i, e.expiry_id) for i, a in self.x.s.state.accounts.items()
                        if any(p.expiry_id == e.expiry_id for p in a.positions)]
        return ops

    # --- before the freeze -----------------------------------------------------------------

    @rule(user=st.integers(0, USERS - 1), usdc=st.integers(1, 5_000))
    def deposit(self, user: int, usdc: int) -> None:
        """Deposits queue before and after a freeze (after it they can only be refunded)."""
        self.x.s.deposit(user, usdc)

    @rule(choices=st.lists(OP, max_size=4))
    def batch(self, choices: list[tuple[str, int, int, int]]) -> None:
        if self.frozen:
            with pytest.raises(ContractRevert, match="settlement: frozen"):
                self._post_batch(choices)
            return
        self._post_batch(choices)

    def _post_batch(self, choices: Sequence[tuple[str, int, int, int]]) -> None:
        """The spec's batch: queued deposits, a tick to now, settlements, then whichever of the
        drawn operations the spec accepts (a refused one is left out, as a coordinator would)."""
        s = self.x.s
        clock = int(s.chain.now())
        ctx = self.x.ctx(clock)
        ops: list[Operation] = [DepositOp(AccountId(a), Address(o), Amount(m))
                                for a, o, m in s.deposits[s.state.counters.deposit_count:]]
        ops += [TickOp(Timestamp(clock)), *self._settle_ops(clock)]
        state = s.state
        for op in ops:
            state = apply_operation(state, op, ctx)
        for choice in choices:
            op = self._candidate(*choice, clock=clock)
            if op is None:
                continue
            try:
                state = apply_operation(state, op, ctx)
            except SettlementError:
                continue
            ops.append(op)
            event(f"batch: {choice[0]} accepted")
        if any(isinstance(op, SettleExpiryOp) for op in ops):
            event("batch: expiry settled in the state")
        self.x.post(ops, clock)

    @rule()
    def finalize(self) -> None:
        if not self.frozen and len(self.x.s.posted) > int(self.x.s.settlement.call("last_finalized")):
            self.x.s.finalize_all()

    @rule(finalize_first=st.booleans())
    def freeze(self, finalize_first: bool) -> None:
        """A forced withdrawal nobody serves; ``T_force`` later a stranger freezes (pending batches
        are dropped unless finalised first)."""
        if self.frozen:
            with pytest.raises(ContractRevert, match="settlement: frozen"):
                self.x.s.settlement.transact("freeze")
            return
        if finalize_first:
            self.finalize()
        self.x.freeze(requester=USERS - 1)
        self.frozen = True

    @rule(usdc=st.integers(1, 5_000))
    def fraud(self, usdc: int) -> None:
        """The coordinator posts a batch that claims a new deposit but skips it in its data; a
        watcher proves it (`challenge_queues`): the batch is reverted, the whole bond slashed (part to
        the watcher, the rest to insurance), and the admin re-admits the re-bonded coordinator."""
        s = self.x.s
        if self.frozen or len(s.deposits) - s.state.counters.deposit_count > 2:
            return
        s.deposit(0, usdc)
        clock = int(s.chain.now())
        ops: list[Operation] = [DepositOp(AccountId(a), Address(o), Amount(m))
                                for a, o, m in s.deposits[s.state.counters.deposit_count:]]
        honest = s.build([*ops, TickOp(Timestamp(clock))], clock)
        bad = forge(honest, [TickOp(Timestamp(clock))])
        s.post_raw(bad)
        number = len(s.posted)
        watcher = s.chain.accounts[5]
        receipt = s.settlement.transact("challenge_queues", number, bad.header, bad.ops_data, sender=watcher)
        assert receipt.events_named("FraudProven")[0].args["reason"] == "deposit queue"
        s.posted = s.posted[:number - 1]
        s.state = s.posted[-1].result.state
        s.settlement.transact("admit_coordinator", s.coordinator.address)
        s.token.transact("mint", s.coordinator.address, BOND)
        s.token.transact("approve", s.bonds.address, BOND, sender=s.coordinator)
        s.bonds.transact("bond", 0, BOND, sender=s.coordinator)
        event("fraud proven and slashed")

    # --- any time --------------------------------------------------------------------------

    @rule(data=st.data())
    def claim(self, data: st.DataObject) -> None:
        s = self.x.s
        last = int(s.settlement.call("last_finalized"))
        open_ = [(p.result.header.number, i) for p in s.posted[:last] for i in range(len(p.result.payouts))
                 if (p.result.header.number, i) not in s.claimed]
        if open_:
            s.claim(*data.draw(st.sampled_from(open_)))

    @rule(price_usdc=st.integers(1_000, 12_000), cents=st.integers(0, 99))
    def settle_expiry(self, price_usdc: int, cents: int) -> None:
        """The committee reports around the next expiry (E1 before E2) and anyone settles it."""
        if E2.expiry_id in self.x.prices:
            return
        e: ListedExpiry = E1 if E1.expiry_id not in self.x.prices else E2
        if int(self.x.s.chain.now()) >= e.timestamp - 900:  # too late for rounds in its window
            return
        price = price_usdc * USDC + cents * 10_000 + 57  # off the grid
        self.x.post_rounds(e, [price, price + 1_000 * USDC])
        assert self.x.settle_expiry(e) == min(Price(int(self.x.oracle.hub.call(
            "twap", self.x.oracle.committee.feed_id, e.timestamp - 1800, e.timestamp, e.cap))), e.cap)

    # --- after the freeze ------------------------------------------------------------------

    @rule(account=st.integers(0, USERS - 1))
    def exit(self, account: int) -> None:
        x = self.x
        if not self.frozen:
            with pytest.raises(ContractRevert, match="settlement: not frozen"):
                x.s.settlement.transact("exit", bytes(168), account, bytes(37), 0, [])
            return
        if AccountId(account) not in x.s.finalized.accounts:  # frozen before its deposit was final
            return
        if account in x.s.exited:
            try:
                x.s.settlement.transact("exit", *x.exit_args(account))
            except ContractRevert as refused:
                assert refused.reason is not None and "already exited" in refused.reason
                return
            raise AssertionError("a second exit was paid")
        x.exit(account)
        leaf = x.s.finalized.accounts[AccountId(account)]
        event("exit with open positions" if leaf.positions else "exit without positions")
        assert x.paid_free[account] == compute_exit_claim(AccountId(account), leaf, x.ctx()).free

    @rule(account=st.integers(0, USERS - 1))
    def exit_positions(self, account: int) -> None:
        x = self.x
        if AccountId(account) not in x.s.finalized.accounts:
            return
        leaf = x.s.finalized.accounts[AccountId(account)]
        claim = compute_exit_claim(AccountId(account), leaf, x.ctx())
        if account in x.pending and claim.rest is not None:
            x.exit_positions(account)
            assert x.paid_rest[account] == claim.rest
            event("positions exit paid")
            return
        reason = "expiry price unavailable" if account in x.pending else "no positions to exit"
        try:
            x.exit_positions(account)
        except ContractRevert as refused:
            assert refused.reason is not None and reason in refused.reason
            return
        raise AssertionError("exit_positions paid without a claim")

    @rule(data=st.data())
    def refund(self, data: st.DataObject) -> None:
        s = self.x.s
        if not self.frozen:
            with pytest.raises(ContractRevert, match="settlement: not frozen"):
                s.settlement.transact("refund_deposit", 0, *s.deposits[0])
            return
        consumed = s.finalized.counters.deposit_count
        open_ = [i for i in range(consumed, len(s.deposits)) if i not in s.refunded]
        if open_:
            index = data.draw(st.sampled_from(open_))
            s.settlement.transact("refund_deposit", index, *s.deposits[index])
            s.refunded.add(index)

    @rule()
    def exit_fee_pool(self) -> None:
        s = self.x.s
        if not self.frozen or s.fee_pool_exited:
            with pytest.raises(ContractRevert, match=r"settlement: (not frozen|already exited)"):
                s.settlement.transact("exit_fee_pool", s.preimage(s.finalized))
            return
        s.settlement.transact("exit_fee_pool", s.preimage(s.finalized))
        s.fee_pool_exited = True

    @rule(order=st.permutations(range(USERS)), expiries=st.integers(0, 2), price_usdc=st.integers(1_000, 12_000))
    def everyone_exits(self, order: list[int], expiries: int, price_usdc: int) -> None:
        """Every account exits; ``expiries`` more expiries are settled; every account claims its
        positions (paid, or refused for want of a price), in a random order."""
        if not self.frozen:
            return
        for account in order:
            self.exit(account)
        for _ in range(expiries):
            self.settle_expiry(price_usdc, 0)
        for account in order:
            self.exit_positions(account)

    def teardown(self) -> None:
        """End every run through the hatch: freeze if still live, settle both expiries, every
        account exits and claims its positions, every payout, refund and the fee pool is paid —
        conservation after each step, and then the vault holds exactly nothing."""
        if not hasattr(self, "x"):
            return
        x, s = self.x, self.x.s
        if not self.frozen:
            self.freeze(finalize_first=False)
        steps = [lambda: self.everyone_exits(list(range(USERS)), 2, 2_500)]
        steps += [lambda n=n, i=i: s.claim(n, i) for p in s.posted
                  for n, i in [(p.result.header.number, j) for j in range(len(p.result.payouts))]
                  if (n, i) not in s.claimed]
        for step in steps:
            step()
            x.check_conservation()
        for index in range(s.finalized.counters.deposit_count, len(s.deposits)):
            if index not in s.refunded:
                s.settlement.transact("refund_deposit", index, *s.deposits[index])
                s.refunded.add(index)
                x.check_conservation()
        if not s.fee_pool_exited:
            self.exit_fee_pool()
            x.check_conservation()
        if E1.expiry_id in x.prices and E2.expiry_id in x.prices:
            assert not x.pending
            assert s.balance(s.vault.address) == 0
            event("teardown: vault emptied exactly")

    # --- invariants ------------------------------------------------------------------------

    @invariant()
    def vault_holds_exactly_what_it_owes(self) -> None:
        self.x.check_conservation()

    @invariant()
    def bonds_hold_exactly_stakes_and_insurance(self) -> None:
        _bonds_hold_exactly_what_they_owe(self.x.s.bonds, self.x.s.token)
        _bonds_hold_exactly_what_they_owe(self.x.oracle.bonds, self.x.oracle.token)


# Each example deploys ~15 contracts and runs a whole lifecycle (~1-4 s): half the profile's examples
# (ci 30, dev 15, soak 2500).
SettlementLifecycle.TestCase.settings = settings(settings.default, stateful_step_count=20,
                                                 max_examples=max(1, settings.default.max_examples // 2))
TestSettlementLifecycle = SettlementLifecycle.TestCase
