"""Versioned parameters on the EVM: a change through the ``ParameterStore`` applies exactly from its
batch boundary — a batch must name the version of its number (and that version's ``K``) to be
posted, and the real ``WindowVerifier`` judges each batch with its own version's values, so a fraud
proof on the batch before the change still uses the old ones. ``Settlement`` takes a batch's
challenge window from its version and the ``T_force`` of ``freeze`` from the latest."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from clearhouse.chain import Contract
from clearhouse.chain.inprocess import InProcessChain
from clearhouse.errors import ConfigError, ContractRevert, TooManyPositions
from clearhouse.messages.keccak import keccak256
from clearhouse.node.parameters import compute_freeze_deadline, get_pause_window
from clearhouse.settlement import (
    TickOp,
    apply_batch,
    compute_parameter_key,
    compute_windows,
    encode_header,
    encode_ops_data,
)
from clearhouse.settlement.watcher import (
    FaultKind,
    compute_execution_proof,
    decode_header,
    process_batch,
)
from clearhouse.sim.settlement_chain import (
    GUARDIAN_INDEX,
    T_FORCE,
    WINDOW,
    K,
    Posted,
    SettlementSystem,
    deploy,
    deploy_parameter_store,
)
from clearhouse.sim.settlement_world import NOW, STRIKE, USDC, deposit, make_ctx, px, trade
from clearhouse.types import BatchNumber, Price, Timestamp

BOUNDS = {"checkpoint_interval": (1, 16), "max_positions": (1, 16), "max_fee_bps": (0, 100)}
ZERO = "0x" + "00" * 20
DAY = 86_400


def _series_trades(first: int, count: int, nonce: int) -> list[Any]:
    """``count`` fills between accounts 1 and 2, each on its own strike (one new position each)."""
    return [trade(1, 2, 1, px(10), strike=Price(STRIKE + (first + i) * 100 * USDC), nonces=(nonce + i, nonce + 500 + i))
            for i in range(count)]


@pytest.fixture
def governed(inprocess_chain: InProcessChain) -> tuple[SettlementSystem, Any]:
    governor = inprocess_chain.accounts[6]
    s = deploy(inprocess_chain, users=3, parameter_bounds=BOUNDS, governor=governor.address)
    for i in range(3):
        s.deposit(i, 100_000)
    s.post([deposit(i, 100_000) for i in range(3)] + [TickOp(Timestamp(NOW))])
    return s, governor


def _set(s: SettlementSystem, governor: Any, name: str, value: int) -> dict[str, Any]:
    assert s.parameters.store is not None
    receipt = s.parameters.store.transact("set", compute_parameter_key(name), value, sender=governor)
    return dict(receipt.events_named("ParameterChanged")[0].args)


def _challenge(s: SettlementSystem, n: int, posted: Posted, verdict: Any, ctx: Any) -> Any:
    assert s.verifier is not None
    header = decode_header(posted.header)
    proof = compute_execution_proof(verdict, header, posted.ops_data, ctx)
    return s.verifier.transact("challenge_execution", n, posted.header, proof.window, proof.core, proof.auth,
                               list(proof.window_hashes), proof.checkpoint, list(proof.witnesses),
                               sender=s.chain.accounts[7])


def test_a_change_applies_from_its_batch_boundary_and_old_batches_keep_their_version(governed: Any) -> None:
    s, governor = governed
    store = s.parameters.store
    # batch 2 (version 1, max_positions 16): accounts 1 and 2 open three series each
    before = s.post(_series_trades(0, 3, 100))
    assert decode_header(before.header).parameter_version == 1
    # governance lowers max_positions to 2 while batch 2 is the last posted: version 2 from batch 3
    changed = _set(s, governor, "max_positions", 2)
    assert (changed["version"], changed["from_batch"], changed["value"]) == (2, 3, 2)
    assert [store.call("version_at", n) for n in (1, 2, 3, 4)] == [1, 1, 2, 2]
    old_ctx, new_ctx = s.context(2), s.context(3)
    assert (old_ctx.max_positions, old_ctx.parameter_version) == (16, 1)
    assert (new_ctx.max_positions, new_ctx.parameter_version) == (2, 2)

    # a batch still built under version 1 is refused at posting, whatever it holds
    stale = s.build([TickOp(Timestamp(NOW))], version=1)
    with pytest.raises(ContractRevert, match="settlement: wrong parameter version"):
        s.post_raw(stale)
    # under version 2 the spec refuses a fourth series: the coordinator cannot build it honestly
    with pytest.raises(TooManyPositions):
        s.build(_series_trades(3, 1, 200))

    # batch 2 judged with version 2's values looks like fraud, but the chain judges it with version 1
    prev = s.posted[0].result.state
    as_if_new = process_batch(prev, decode_header(before.header), before.ops_data, replace(old_ctx, max_positions=2))
    assert as_if_new.kind is FaultKind.EXECUTION
    assert process_batch(prev, decode_header(before.header), before.ops_data, old_ctx).kind is FaultKind.NONE
    with pytest.raises(ContractRevert, match="verifier: window is correct"):
        _challenge(s, 2, before, as_if_new, old_ctx)

    # batch 3 names version 2 but was executed as if max_positions were still 16: proven fraud
    forged_ctx = replace(new_ctx, max_positions=16)
    result = apply_batch(s.state, _series_trades(3, 1, 200), forged_ctx, K, number=BatchNumber(3))
    forged = Posted(result, encode_header(result.header), encode_ops_data(compute_windows(result.operations, K)))
    s.post_raw(forged)
    verdict = process_batch(s.posted[1].result.state, decode_header(forged.header), forged.ops_data, new_ctx)
    assert verdict.kind is FaultKind.EXECUTION
    receipt = _challenge(s, 3, forged, verdict, new_ctx)
    fraud = receipt.events_named("FraudProven")[0].args
    assert (fraud["number"], fraud["reason"]) == (3, "execution")
    assert s.settlement.call("last_batch") == 2 and store.call("version_at", 3) == 2


def test_a_new_k_is_enforced_from_its_batch(governed: Any) -> None:
    s, governor = governed
    changed = _set(s, governor, "checkpoint_interval", 2)
    assert (changed["version"], changed["from_batch"]) == (2, 2)
    assert s.context(2).checkpoint_interval == 2
    # the old K under the new version: refused
    ctx = replace(s.context(2), checkpoint_interval=K)
    ops = _series_trades(0, 3, 100)
    result = apply_batch(s.state, ops, ctx, K, number=BatchNumber(2))
    old_k = Posted(result, encode_header(result.header), encode_ops_data(compute_windows(result.operations, K)))
    with pytest.raises(ContractRevert, match="settlement: wrong K"):
        s.post_raw(old_k)
    posted = s.post(ops)  # built under version 2: two windows of K = 2
    header = decode_header(posted.header)
    assert (header.parameter_version, header.checkpoint_interval, len(header.checkpoint_roots)) == (2, 2, 2)
    # two changes before the same batch are two versions: a version's values never change
    _set(s, governor, "max_fee_bps", 50)
    _set(s, governor, "max_positions", 8)
    store = s.parameters.store
    assert store is not None
    assert [store.call("version_at", n) for n in (2, 3)] == [2, 4]
    fee, positions = compute_parameter_key("max_fee_bps"), compute_parameter_key("max_positions")
    assert [store.call("get", fee, v) for v in (2, 3, 4)] == [100, 50, 50]
    assert [store.call("get", positions, v) for v in (2, 3, 4)] == [16, 16, 8]
    with pytest.raises(ContractRevert, match="settlement: wrong parameter version"):
        s.post_raw(s.build([TickOp(Timestamp(NOW))], version=3))
    assert decode_header(s.post([TickOp(Timestamp(NOW))]).header).parameter_version == 4


def test_without_a_store_only_version_1_posts(inprocess_chain: InProcessChain) -> None:
    s = deploy(inprocess_chain, users=1)
    s.deposit(0, 100)
    with pytest.raises(ContractRevert, match="settlement: wrong parameter version"):
        s.post_raw(s.build([deposit(0, 100), TickOp(Timestamp(NOW))], version=2))
    with pytest.raises(ConfigError):
        s.build([TickOp(Timestamp(NOW))], version=0)


def _verifier_with(s: SettlementSystem, store: str, **overrides: int) -> Contract:
    ctx = make_ctx()
    args = {"max_positions": ctx.max_positions, "max_fee_bps": int(ctx.max_fee_bps)} | overrides
    rules = s.chain.deploy("StfRules")
    return s.chain.deploy("WindowVerifier", s.settlement.address, rules.address, rules.address,
                          ctx.domain.separator, ctx.contract_unit, args["max_positions"], ctx.max_clock_lag,
                          ctx.fee_account, args["max_fee_bps"], store)


def test_a_verifier_takes_only_a_store_it_can_judge_with(inprocess_chain: InProcessChain) -> None:
    s = deploy(inprocess_chain, users=1, window_verifier=False)
    admin = s.chain.accounts[0].address
    good = deploy_parameter_store(s.chain, s.settlement, admin, BOUNDS)
    assert _verifier_with(s, good.address).call("PARAMETER_STORE") == good.address
    assert _verifier_with(s, ZERO).call("PARAMETER_STORE") == ZERO
    with pytest.raises(ContractRevert, match="verifier: store version 1 differs"):
        _verifier_with(s, good.address, max_positions=8)
    wide = deploy_parameter_store(s.chain, s.settlement, admin, BOUNDS | {"max_positions": (1, 32)})
    with pytest.raises(ContractRevert, match="verifier: store bounds unsupported"):
        _verifier_with(s, wide.address)
    foreign = deploy_parameter_store(s.chain, s.vault, admin, BOUNDS)  # "settles" another contract
    with pytest.raises(ContractRevert, match="verifier: store of another settlement"):
        _verifier_with(s, foreign.address)
    good.transact("set", compute_parameter_key("max_fee_bps"), 10, sender=s.chain.accounts[0])
    with pytest.raises(ContractRevert, match="verifier: store past version 1"):
        _verifier_with(s, good.address)
    missing = deploy_parameter_store(s.chain, s.settlement, admin,
                                     {"checkpoint_interval": (1, 16), "max_fee_bps": (0, 100)})
    with pytest.raises(ContractRevert, match="parameters: unknown key"):
        _verifier_with(s, missing.address)
    assert keccak256(b"max_positions") == compute_parameter_key("max_positions")


WINDOWS = BOUNDS | {"challenge_window": (600, 7_200), "t_force": (DAY, 3 * DAY)}


def _tick(s: SettlementSystem) -> None:
    """Post a batch that only moves the clock to the chain's time."""
    now = s.chain.now()
    s.post([TickOp(Timestamp(now))], timestamp=now)


def _window_end(s: SettlementSystem, n: int) -> int:
    return int(s.settlement.call("batch_meta", n)) % 2**64


@pytest.fixture
def windowed(inprocess_chain: InProcessChain) -> tuple[SettlementSystem, Any]:
    governor = inprocess_chain.accounts[6]
    s = deploy(inprocess_chain, users=3, parameter_bounds=WINDOWS, governor=governor.address)
    for i in range(3):
        s.deposit(i, 100_000)
    return s, governor


def test_a_new_challenge_window_applies_from_its_batch_and_windows_close_in_order(windowed: Any) -> None:
    s, governor = windowed
    s.post([deposit(i, 100_000) for i in range(3)] + [TickOp(Timestamp(NOW))])
    assert _window_end(s, 1) == s.chain.now() + WINDOW
    assert s.parameters.get_windows(s.settlement) == (WINDOW, T_FORCE)
    # W doubles from batch 2: its window is twice as long
    _set(s, governor, "challenge_window", 2 * WINDOW)
    assert s.parameters.get_windows(s.settlement) == (2 * WINDOW, T_FORCE)
    _tick(s)
    second = _window_end(s, 2)
    assert second == s.chain.now() + 2 * WINDOW
    # then shrinks to 10 minutes from batch 3: a window never closes before its predecessor's,
    # so finalising batch 3 cannot cut batch 2's window short
    _set(s, governor, "challenge_window", 600)
    _tick(s)
    assert _window_end(s, 3) == second > s.chain.now() + 600
    s.sync_time(s.chain.now() + WINDOW)
    s.settlement.transact("finalize", 1)  # batch 1 kept version 1's W
    s.sync_time(second - 1)
    with pytest.raises(ContractRevert, match="settlement: challenge window open"):
        s.settlement.transact("finalize", 3)
    s.sync_time(second)
    s.settlement.transact("finalize", 3)
    # batch 4, posted after every earlier window closed, gets exactly version 3's ten minutes
    _tick(s)
    assert _window_end(s, 4) == s.chain.now() + 600


def test_freeze_waits_the_latest_t_force_and_pauses_stay_apart_by_the_largest(windowed: Any) -> None:
    s, governor = windowed
    s.post([deposit(i, 100_000) for i in range(3)] + [TickOp(Timestamp(NOW))])
    # pauses are spaced by the largest T_force any version may take, not version 1's
    assert s.settlement.call("pause_cooldown") == 3 * DAY
    guardian = s.chain.accounts[GUARDIAN_INDEX]
    s.settlement.transact("pause", 60, sender=guardian)
    s.sync_time(int(s.settlement.call("pause_end")) + T_FORCE)
    with pytest.raises(ContractRevert, match="settlement: pause cooldown"):
        s.settlement.transact("pause", 60, sender=guardian)
    s.sync_time(int(s.settlement.call("pause_end")) + 3 * DAY)
    s.settlement.transact("pause", 60, sender=guardian)
    s.sync_time(int(s.settlement.call("pause_end")))
    # a forced withdrawal, then T_force drops to one day: freeze needs one day of waiting, not two
    s.vault.transact("request_forced_withdrawal", 100 * USDC, sender=s.users[2])
    requested = int(s.vault.call("forced_time", 0))
    _set(s, governor, "t_force", DAY)
    t_force = s.parameters.get_windows(s.settlement)[1]
    deadline = compute_freeze_deadline(Timestamp(requested), t_force, get_pause_window(s.settlement))
    assert (t_force, deadline) == (DAY, requested + DAY)
    s.sync_time(deadline - 1)
    with pytest.raises(ContractRevert, match="settlement: forced withdrawal not overdue"):
        s.settlement.transact("freeze", sender=s.chain.accounts[7])
    s.sync_time(deadline)
    s.settlement.transact("freeze", sender=s.chain.accounts[7])
    assert s.settlement.call("frozen")


def test_a_verifier_takes_only_window_bounds_that_keep_t_force_above_w(inprocess_chain: InProcessChain) -> None:
    s = deploy(inprocess_chain, users=1, window_verifier=False)
    admin = s.chain.accounts[0].address
    assert _verifier_with(s, deploy_parameter_store(s.chain, s.settlement, admin, WINDOWS).address)
    for bounds in ({"challenge_window": (0, WINDOW)}, {"t_force": (WINDOW, 3 * DAY)},
                   {"challenge_window": (600, DAY)}):
        store = deploy_parameter_store(s.chain, s.settlement, admin, WINDOWS | bounds)
        with pytest.raises(ContractRevert, match="verifier: bad window bounds"):
            _verifier_with(s, store.address)
    for values in ({"challenge_window": 600}, {"t_force": 3 * DAY}):
        store = deploy_parameter_store(s.chain, s.settlement, admin, WINDOWS, values=values)
        with pytest.raises(ContractRevert, match="verifier: store windows differ"):
            _verifier_with(s, store.address)
