"""The batcher builds each batch under the parameter version of its number, waits out an emergency
pause, and rebuilds a stored batch that a parameter change made stale (the chain refuses it) —
real Settlement, ParameterStore and WindowVerifier on the in-process EVM, real SQLite."""

from __future__ import annotations

from pathlib import Path

import pytest

from clearhouse.chain import InProcessChain
from clearhouse.errors import IllegalTransition, UnknownBatch
from clearhouse.node.batcher import Batcher, BatcherParams, get_header_number, get_header_version
from clearhouse.settlement import compute_parameter_key
from clearhouse.settlement.watcher import decode_header
from clearhouse.sim.batcher_scenario import ACCOUNTS, DEPOSIT_USDC, make_actions, make_series
from clearhouse.sim.settlement_chain import GUARDIAN_INDEX, SettlementSystem, deploy
from clearhouse.sim.settlement_world import NOW, make_ctx
from clearhouse.store import Store, open_store

BOUNDS = {"checkpoint_interval": (1, 16), "max_positions": (1, 16), "max_fee_bps": (0, 100)}


@pytest.fixture
def system() -> SettlementSystem:
    chain = InProcessChain()
    s = deploy(chain, parameter_bounds=BOUNDS, governor=chain.accounts[6].address)
    for i in range(ACCOUNTS):
        s.deposit(i, DEPOSIT_USDC)
    s.sync_time(NOW + 10)
    return s



def test_a_change_while_a_batch_waits_rebuilds_it_under_the_new_version(system: SettlementSystem,
                                                                        store: Store) -> None:
    s = system
    b = Batcher(store, s.chain, s, BatcherParams(make_ctx, make_series(), max_items=4))
    b.add_items([item for action in make_actions(s.deposits) for item in action])
    b.on_tick(s.chain.now())
    assert [(r.number, r.status, get_header_version(r.header)) for r in store.list_batches()] == [(1, "included", 1)]
    # the guardian pauses: batch 2 is built under version 1 and waits
    s.settlement.transact("pause", 3600, sender=s.chain.accounts[GUARDIAN_INDEX])
    b.on_tick(s.chain.now())
    waiting = store.get_batch(2)
    assert waiting is not None and waiting.status == "built" and get_header_version(waiting.header) == 1
    assert int(s.settlement.call("last_batch")) == 1
    # meanwhile governance halves K: version 2 applies from batch 2, so the stored batch is stale
    assert s.parameters.store is not None
    s.parameters.store.transact("set", compute_parameter_key("checkpoint_interval"), 2, sender=s.chain.accounts[6])
    s.chain.time_travel(3600)
    # refused ("wrong parameter version"): dropped, its items back in the queue, built again
    b.on_tick(s.chain.now())
    rebuilt = store.get_batch(2)
    assert rebuilt is not None and rebuilt.header != waiting.header and get_header_version(rebuilt.header) == 2
    assert rebuilt.status == "included"
    for _ in range(3):
        b.on_tick(s.chain.now())
    records = store.list_batches()
    assert [(r.number, r.status) for r in records] == [(1, "final"), (2, "included"), (3, "included")]
    assert not store.list_pending_items()
    for r in records[1:]:
        header = decode_header(r.header)
        assert (header.parameter_version, header.checkpoint_interval) == (2, 2)
        assert get_header_number(r.header) == r.number
    # a restart rebuilds every stored batch under the version its header names, byte for byte
    again = Batcher(store, s.chain, s, b.params)
    again.recover()
    assert again.state == b.state
    # only the last batch, and only before the chain has it, can be dropped
    with pytest.raises(IllegalTransition):
        store.drop_batch(3)
    with pytest.raises(IllegalTransition):
        store.drop_batch(2)
    with pytest.raises(UnknownBatch):
        store.drop_batch(4)
    assert [r.number for r in store.list_batches()] == [1, 2, 3]


def test_a_batch_that_waited_out_max_post_delay_behind_a_pause_is_built_again(tmp_path: Path) -> None:
    chain = InProcessChain()
    s = deploy(chain, max_post_delay=1_800)
    for i in range(ACCOUNTS):
        s.deposit(i, DEPOSIT_USDC)
    s.sync_time(NOW + 10)
    store = open_store(f"sqlite:///{tmp_path / 'node.db'}")
    try:
        b = Batcher(store, s.chain, s, BatcherParams(make_ctx, make_series(), max_items=4, batch_interval=1))
        b.add_items([item for action in make_actions(s.deposits) for item in action])
        b.on_tick(s.chain.now())
        assert [(r.number, r.status) for r in store.list_batches()] == [(1, "included")]
        s.settlement.transact("pause", 3_000, sender=s.chain.accounts[GUARDIAN_INDEX])
        for _ in range(3):  # one batch is built and waits; no more pile up behind it
            s.chain.time_travel(60)
            b.on_tick(s.chain.now())
        waiting = store.get_batch(2)
        assert waiting is not None and waiting.status == "built"
        assert [r.number for r in store.list_batches()] == [1, 2]
        # the pause ends after batch 2's header time fell out of max_post_delay: the chain refuses
        # it as too old, so it is dropped and built again with a fresh time instead of failing
        s.chain.time_travel(3_000)
        b.on_tick(s.chain.now())
        rebuilt = store.get_batch(2)
        assert rebuilt is not None and rebuilt.status == "included" and rebuilt.header != waiting.header
        for _ in range(4):
            s.chain.time_travel(60)
            b.on_tick(s.chain.now())
        assert not store.list_pending_items() and b.refused_total == 0
        assert int(s.settlement.call("last_batch")) == len(store.list_batches()) >= 3
    finally:
        store.close()
