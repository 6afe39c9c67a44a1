"""Coordinator uptime read from a real ``Settlement`` and ``Vault`` on the in-process chain: a
coordinator that leaves a deposit waiting for ``n`` slots loses exactly ``n`` slots of uptime,
quiet slots cost nothing, and the slots come out of ``get_chain_events`` (what the node serves
and ``clearhouse reputation recompute`` rebuilds) only up to the ``now`` asked for."""

from __future__ import annotations

from fractions import Fraction

import pytest

from clearhouse.chain.inprocess import InProcessChain
from clearhouse.incentives.reputation import Heartbeat, ReputationParams, compute_reputation
from clearhouse.node.reputation import get_chain_events, get_settlement_activity
from clearhouse.settlement.operations import TickOp
from clearhouse.sim.settlement_chain import deploy as deploy_settlement
from clearhouse.sim.settlement_world import deposit
from clearhouse.types import Address, Timestamp

SLOT = ReputationParams().uptime_slot_seconds


@pytest.mark.parametrize("n", [2, 5])
def test_a_deposit_left_waiting_costs_exactly_the_slots_it_waited(n: int) -> None:
    chain = InProcessChain()
    s = deploy_settlement(chain, users=2, max_post_delay=1_800)
    chain.time_travel(SLOT - chain.now() % SLOT + 10)  # 10 s into a slot
    first = chain.now() // SLOT
    s.deposit(0, 1_000)
    s.post([deposit(0, 1_000), TickOp(chain.now())], chain.now())  # slot `first`: posted, queue empty
    chain.time_travel(SLOT)
    s.deposit(1, 1_000)  # 10 s into slot first+1: overdue 30 min later, before the slot ends
    chain.time_travel(n * SLOT)
    s.post([deposit(1, 1_000), TickOp(chain.now())], chain.now())  # slot first+1+n: posted, served
    chain.time_travel(3 * SLOT)
    now = chain.now()
    coordinator = Address(s.coordinator.address)

    activity = get_settlement_activity(chain, s.settlement)
    assert [p[1:] for p in activity.posts] == [(coordinator, 1, 0), (coordinator, 2, 0)]
    assert activity.max_post_delay == 1_800 and len(activity.deposits) == 2
    slots = [e for e in get_chain_events(chain, s.settlement, None, now=now) if isinstance(e, Heartbeat)]
    assert [(e.time // SLOT, e.up) for e in slots] == [
        (first, True), *((first + k, False) for k in range(1, n + 1)), (first + n + 1, True),
        (first + n + 2, True), (first + n + 3, True)]
    score = compute_reputation(slots, now).coordinators[coordinator]
    assert (score.up, score.down) == (Fraction(4), Fraction(n))  # all within a day: weight 1 each
    # without `now` the chain events carry no slots; an earlier `now` only the slots ended by then
    assert not any(isinstance(e, Heartbeat) for e in get_chain_events(chain, s.settlement, None))
    early = get_chain_events(chain, s.settlement, None, now=Timestamp((first + 2) * SLOT))
    assert [(e.time // SLOT, e.up) for e in early if isinstance(e, Heartbeat)] == [(first, True), (first + 1, False)]
    chain.close()
