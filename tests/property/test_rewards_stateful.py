"""Rewards on the EVM against a brute-force reference, exact to the base unit.

A hypothesis state machine bonds and unbonds stakers in ``Bonds``, notifies fees, schedules
emissions, lets time pass and claims from ``Rewards``. The reference replays the same history in
Python: every staker's active stake at every epoch start, each epoch's rewards split by
``⌊stake · rewards / total⌋``. Every claim must equal the reference to the unit, the contract must
hold exactly what was funded and not yet paid, and the shares never exceed what came in.
"""

from __future__ import annotations

import bisect

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from clearhouse.chain.inprocess import InProcessChain
from clearhouse.errors import ContractRevert
from clearhouse.incentives.rewards import compute_epoch, compute_owed

EPOCH = 7 * 86_400
ROLE = 2
STAKERS = 3


class RewardsMachine(RuleBasedStateMachine):
    @initialize()
    def setup(self) -> None:
        chain = self.chain = InProcessChain()
        self.token = chain.deploy("mocks/TestToken", "Test USD", "tUSD")
        self.bonds = chain.deploy("Bonds", self.token.address, 3 * 86_400)
        self.start = chain.now()
        self.rewards = chain.deploy("Rewards", self.token.address, self.bonds.address, self.start, EPOCH)
        self.funder = chain.accounts[1]
        self.stakers = chain.accounts[2:2 + STAKERS]
        # reference: stake history per staker as (time, active stake), rewards per epoch
        self.history: dict[str, list[tuple[int, int]]] = {s.address: [(0, 0)] for s in self.stakers}
        self.credited: dict[int, int] = {}
        self.claimed_through: dict[str, int] = {s.address: 0 for s in self.stakers}
        self.claimed: dict[str, int] = {s.address: 0 for s in self.stakers}
        self.funded = 0

    def _stake_at(self, who: str, t: int) -> int:
        h = self.history[who]
        i = bisect.bisect_right([time for time, _ in h], t) - 1
        return h[i][1]

    def _total_at(self, t: int) -> int:
        return sum(self._stake_at(s.address, t) for s in self.stakers)

    def _record(self, who: str, delta: int) -> None:
        # a change lands at the transaction's timestamp; stake_at(t) reads the end of second t
        now = self.chain.now()
        h = self.history[who]
        current = h[-1][1] + delta
        if h[-1][0] == now:
            h[-1] = (now, current)
        else:
            h.append((now, current))

    def _fund(self, who: object, amount: int) -> None:
        self.token.transact("mint", who.address, amount)  # type: ignore[attr-defined]
        self.token.transact("approve", self.rewards.address, amount, sender=who)

    @rule(i=st.integers(0, STAKERS - 1), amount=st.integers(1, 10**12))
    def bond(self, i: int, amount: int) -> None:
        s = self.stakers[i]
        self.token.transact("mint", s.address, amount)
        self.token.transact("approve", self.bonds.address, amount, sender=s)
        self.bonds.transact("bond", ROLE, amount, sender=s)
        self._record(s.address, amount)

    @rule(i=st.integers(0, STAKERS - 1), share=st.integers(1, 100))
    def unbond(self, i: int, share: int) -> None:
        s = self.stakers[i]
        active = self.history[s.address][-1][1]
        amount = active * share // 100
        if amount == 0:
            return
        self.bonds.transact("request_unbond", ROLE, amount, sender=s)
        self._record(s.address, -amount)

    @rule(amount=st.integers(1, 10**15))
    def notify(self, amount: int) -> None:
        self._fund(self.funder, amount)
        self.rewards.transact("notify", ROLE, amount, sender=self.funder)
        e = compute_epoch(self.chain.now(), self.start, EPOCH)
        self.credited[e] = self.credited.get(e, 0) + amount
        self.funded += amount

    @rule(per_epoch=st.integers(1, 10**12), epochs=st.integers(1, 6))
    def emissions(self, per_epoch: int, epochs: int) -> None:
        self._fund(self.funder, per_epoch * epochs)
        self.rewards.transact("fund_emissions", ROLE, per_epoch, epochs, sender=self.funder)
        first = compute_epoch(self.chain.now(), self.start, EPOCH) + 1
        for e in range(first, first + epochs):
            self.credited[e] = self.credited.get(e, 0) + per_epoch
        self.funded += per_epoch * epochs

    @rule(seconds=st.sampled_from([3_600, 86_400, EPOCH, 3 * EPOCH]))
    def wait(self, seconds: int) -> None:
        self.chain.time_travel(seconds)

    @rule(i=st.integers(0, STAKERS - 1))
    def claim(self, i: int) -> None:
        s = self.stakers[i]
        first = self.claimed_through[s.address]
        last = min(compute_epoch(self.chain.now(), self.start, EPOCH), first + 52)
        expected = compute_owed(lambda t: self._stake_at(s.address, t), self._total_at, self.credited,
                                first, last, self.start, EPOCH)
        before = int(self.token.call("balanceOf", s.address))
        self.rewards.transact("claim", ROLE, sender=s)
        assert int(self.token.call("balanceOf", s.address)) - before == expected
        self.claimed_through[s.address] = last
        self.claimed[s.address] += expected

    @rule()
    def bad_calls_change_nothing(self) -> None:
        paid = int(self.rewards.call("paid"))
        for fn, args in (("notify", (9, 1)), ("fund_emissions", (ROLE, 1, 0)), ("claim", (7,))):
            try:
                self.rewards.transact(fn, *args, sender=self.funder)
            except ContractRevert:
                pass
            else:
                raise AssertionError(f"{fn}{args} was accepted")
        assert int(self.rewards.call("paid")) == paid

    @invariant()
    def holds_exactly_what_is_owed(self) -> None:
        if not hasattr(self, "rewards"):
            return
        paid = sum(self.claimed.values())
        assert int(self.rewards.call("paid")) == paid and int(self.rewards.call("funded")) == self.funded
        assert int(self.token.call("balanceOf", self.rewards.address)) == self.funded - paid
        # never more out than came in, epoch by epoch
        now_epoch = compute_epoch(self.chain.now(), self.start, EPOCH)
        for e, amount in self.credited.items():
            if e < now_epoch:
                t = self.start + e * EPOCH
                shares = sum(self._stake_at(s.address, t) * amount // max(self._total_at(t), 1)
                             for s in self.stakers)
                assert shares <= amount


TestRewards = RewardsMachine.TestCase
TestRewards.settings = settings(max_examples=15, stateful_step_count=25, deadline=None)
