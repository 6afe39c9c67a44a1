"""Mutation campaign: valid batches built by the spec from random trade / deposit / withdrawal /
cancel / forced-withdrawal streams are posted to the real ``Settlement`` (in-process EVM); each
valid batch withstands every challenge entry point (0 successful challenges), then a mutated next
batch of one kind is posted and the watcher (chain data only) must prove it and get the
coordinator slashed — 100 % — or, for the two kinds the contracts stop without a proof, the
posting is refused (wrong previous root) or the watcher freezes the system (unserved forced
withdrawal past ``T_force``).

Counts per kind are written to ``out/mutation_campaign.json`` and printed.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clearhouse.chain import InProcessChain
from clearhouse.errors import ContractRevert, SettlementError
from clearhouse.messages import Side
from clearhouse.node.watcher import Watcher
from clearhouse.settlement import (
    CORE_SIZES,
    DepositOp,
    ForcedWithdrawalOp,
    Operation,
    OpType,
    SettlementState,
    TickOp,
    WindowData,
    apply_batch,
    apply_operation,
    compute_commitment_root,
    compute_free_collateral,
    compute_genesis_state,
    compute_ops_hash,
    compute_window_hash,
    compute_window_witness,
    compute_windows,
    encode_core,
    encode_header,
    encode_ops_data,
)
from clearhouse.settlement.header import compute_header_hash
from clearhouse.settlement.watcher import (
    FaultKind,
    compute_payout_order,
    compute_payouts_of,
    encode_preimage,
)
from clearhouse.settlement.witness import encode_operation_witness
from clearhouse.sim.settlement_chain import (
    BOND,
    T_FORCE,
    USDC,
    Posted,
    SettlementSystem,
    deploy,
    forge,
)
from clearhouse.sim.settlement_world import (
    ADDRESSES,
    NOW,
    cancel,
    make_ctx,
    order_terms,
    px,
    trade,
    withdrawal,
)
from clearhouse.types import AccountId, Address, Amount, Digest, Price, Timestamp

USERS = 4
COORD = 0
PROVEN = ("checkpoint_root", "final_root", "skipped_deposit", "reordered_deposit", "altered_trade",
          "overfill", "expired_order", "cancelled_order", "bad_signature", "wrong_payouts", "extra_signature",
          "long_window", "malformed_field")
"""Kinds a single proof shows wrong: the watcher must prove and slash every one."""
KINDS = (*PROVEN, "prev_root", "unserved_forced")
EXPECTED = {"skipped_deposit": FaultKind.QUEUES, "reordered_deposit": FaultKind.QUEUES,
            "wrong_payouts": FaultKind.PAYOUTS, "extra_signature": FaultKind.QUEUES,
            "long_window": FaultKind.QUEUES}
"""The proof each kind needs (the others: the execution proof)."""
TRADE_SIDE_OFFSET = 58
"""Where a trade's core holds the maker's side (``docs/protocol.md``; ``lib/stf.vy`` ``_check_fields``)."""
COUNTS: Counter[str] = Counter()
REPORT = Path(__file__).resolve().parents[2] / "out" / "mutation_campaign.json"


@dataclass
class World:
    chain: InProcessChain
    base: SettlementSystem
    snapshot: Any


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    chain = InProcessChain()
    base = deploy(chain, users=USERS)
    yield World(chain, base, chain.snapshot())
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    REPORT.write_text(json.dumps(dict(sorted(COUNTS.items())), indent=2) + "\n")
    print("\nmutation campaign:", dict(sorted(COUNTS.items())))


def _fresh(w: World) -> tuple[SettlementSystem, Watcher]:
    w.chain.revert_to(w.snapshot)
    b = w.base
    s = SettlementSystem(b.chain, b.token, b.bonds, b.vault, b.settlement, b.users, b.verifier, k=b.k)
    return s, Watcher(s.chain, s.settlement, s.vault, s.verifier, make_ctx, s.chain.accounts[5])


# --- random valid streams --------------------------------------------------------------------


class Nonces:
    """Fresh nonces, so random operations do not collide by accident."""

    def __init__(self) -> None:
        self.next = 10_000

    def __call__(self) -> int:
        self.next += 1
        return self.next


@st.composite
def _stream(draw: st.DrawFn) -> list[tuple[Any, ...]]:
    """Abstract actions: ("trade", maker, taker, qty, price_cents, side), ("withdraw", acct, usdc),
    ("cancel", acct), ("deposit", user, usdc), ("forced", user, usdc)."""
    acct = st.integers(0, USERS - 1)
    action = st.one_of(
        st.tuples(st.just("trade"), acct, acct, st.integers(1, 40),
                  st.integers(1, 200).map(lambda c: c * 50), st.booleans()),
        st.tuples(st.just("withdraw"), acct, st.integers(1, 500)),
        st.tuples(st.just("cancel"), acct),
        st.tuples(st.just("deposit"), acct, st.integers(1, 2_000)),
        st.tuples(st.just("forced"), acct, st.integers(1, 500)),
    )
    return draw(st.lists(action, min_size=2, max_size=10))


def _valid_ops(s: SettlementSystem, state: SettlementState, actions: list[tuple[Any, ...]],
               nonces: Nonces) -> list[Operation]:
    """The actions as operations, keeping those the STF accepts in order (vault actions are sent
    to the chain first, so the queue entries exist)."""
    ctx = make_ctx(NOW)
    ops: list[Operation] = []
    for a in actions:
        op: Operation
        if a[0] == "trade":
            _, maker, taker, qty, cents, buy = a
            op = trade(maker, taker, qty, Price(cents * 10_000), maker_side=Side.BUY if buy else Side.SELL,
                       nonces=(nonces(), nonces()))
        elif a[0] == "withdraw":
            op = withdrawal(a[1], a[2], nonce=nonces())
        elif a[0] == "cancel":
            op = cancel(a[1], nonces())
        elif a[0] == "deposit":
            s.deposit(a[1], a[2])
            op = DepositOp(AccountId(a[1]), ADDRESSES[a[1]], Amount(a[2] * USDC))
        else:
            s.vault.transact("request_forced_withdrawal", a[2] * USDC, sender=s.users[a[1]])
            account = state.accounts.get(AccountId(a[1]))
            free = compute_free_collateral(account, ctx) if account is not None else 0
            op = ForcedWithdrawalOp(AccountId(a[1]), Address(s.users[a[1]].address), Amount(a[2] * USDC),
                                    Amount(min(a[2] * USDC, free)))
        try:
            state = apply_operation(state, op, ctx)
        except SettlementError:
            if isinstance(op, (DepositOp, ForcedWithdrawalOp)):
                raise  # queue entries are always valid when built right
            continue
        ops.append(op)
    return ops


def _assert_unchallengeable(s: SettlementSystem, n: int) -> None:
    """Every challenge entry point reverts on valid batch ``n``."""
    posted = s.posted[n - 1]
    who = s.chain.accounts[6]
    with pytest.raises(ContractRevert, match="settlement: no queue fault"):
        s.settlement.transact("challenge_queues", n, posted.header, posted.ops_data, sender=who)
    order = compute_payout_order(posted.result.header.number, compute_payouts_of(posted.result.operations))
    with pytest.raises(ContractRevert, match="settlement: payouts are correct"):
        s.settlement.transact("challenge_payouts", n, posted.header, posted.ops_data, list(order), sender=who)
    assert s.verifier is not None
    k = s.k
    ops = posted.result.operations
    windows = compute_windows(ops, k)
    prev = s.posted[n - 2].result.state if n > 1 else compute_genesis_state()
    ctx = replace(make_ctx(posted.result.header.timestamp), checkpoint_interval=k)
    for j, window in enumerate(windows):
        start = apply_batch(prev, ops[:j * k], ctx, k).state if j else prev
        witness = compute_window_witness(start, ops[j * k:(j + 1) * k], ctx)
        with pytest.raises(ContractRevert, match="verifier: window is correct"):
            s.verifier.transact("challenge_execution", n, posted.header, j, window.core, window.auth,
                                [compute_window_hash(w) for w in windows], encode_preimage(witness.checkpoint),
                                [encode_operation_witness(o) for o in witness.operations], sender=who)
    COUNTS["valid_batch_challenges_refused"] += 2 + len(windows)


# --- mutations ---------------------------------------------------------------------------------


def _replace(honest: Posted, at: int, *ops: Operation) -> Posted:
    """``honest`` with its operations from ``at`` replaced by ``ops`` (same count, same header)."""
    new = list(honest.result.operations)
    new[at:at + len(ops)] = ops
    return forge(honest, new)


def _mutate(kind: str, honest: Posted, slot: int, variant: int, nonces: Nonces) -> Posted:
    """A batch of ``kind`` made from ``honest`` (whose ops from ``slot`` on are ticks)."""
    h = honest.result.header
    fake = Digest(b"\x5a" * 32)
    maker, taker = 1, 2
    if kind == "checkpoint_root":
        header = replace(h, checkpoint_roots=(fake, *h.checkpoint_roots[1:]))
        return Posted(replace(honest.result, header=header), encode_header(header), honest.ops_data)
    if kind == "final_root":
        state = replace(h.state, accounts_root=fake)
        header = replace(h, state=state, checkpoint_roots=(*h.checkpoint_roots[:-1], compute_commitment_root(state)))
        return Posted(replace(honest.result, header=header), encode_header(header), honest.ops_data)
    if kind == "wrong_payouts":
        header = replace(h, withdrawal_count=h.withdrawal_count + 1, withdrawals_root=fake)
        return Posted(replace(honest.result, header=header), encode_header(header), honest.ops_data)
    if kind in ("skipped_deposit", "reordered_deposit"):
        deposits = [i for i, op in enumerate(honest.result.operations) if isinstance(op, DepositOp)]
        first, second = deposits[-2], deposits[-1]
        ops = list(honest.result.operations)
        if kind == "reordered_deposit":
            ops[first], ops[second] = ops[second], ops[first]
        else:
            ops[first] = TickOp(Timestamp(NOW))
        return forge(honest, ops)
    if kind in ("extra_signature", "long_window"):  # 65 signature bytes too many; K + 1 operations
        windows = list(compute_windows(honest.result.operations, h.checkpoint_interval))
        if kind == "extra_signature":
            windows[0] = WindowData(windows[0].core, windows[0].auth + b"\x01" * 65)
        else:
            moved = windows[1].core[:CORE_SIZES[OpType.TICK]]  # window 1 starts with a tick
            windows[0] = WindowData(windows[0].core + moved, windows[0].auth)
            windows[1] = WindowData(windows[1].core[len(moved):], windows[1].auth)
        header = replace(h, ops_hash=compute_ops_hash(windows))
        return Posted(replace(honest.result, header=header), encode_header(header), encode_ops_data(windows))
    if kind == "altered_trade":
        signed = trade(maker, taker, 20, px(3), nonces=(nonces(), nonces()))
        altered = [replace(signed, price=Price(px(4))), replace(signed, quantity=signed.quantity + 10),
                   replace(signed, maker_side=Side.BUY)][variant % 3]
        return _replace(honest, slot, altered)
    if kind == "overfill":
        signed = trade(maker, taker, 20, px(3), nonces=(nonces(), nonces()))
        return _replace(honest, slot, signed, signed)
    if kind == "expired_order":
        terms = order_terms(nonces(), px(3), 20, expiry=NOW - 1)
        return _replace(honest, slot, trade(maker, taker, 20, px(3), maker_terms=terms,
                                            nonces=(0, nonces())))
    if kind == "cancelled_order":
        n_maker = nonces()
        return _replace(honest, slot, cancel(maker, n_maker), trade(maker, taker, 20, px(3),
                                                                    nonces=(n_maker, nonces())))
    if kind == "malformed_field":  # a trade whose side byte no decoder accepts (7); the rest walks
        posted = _replace(honest, slot, trade(maker, taker, 20, px(3), nonces=(nonces(), nonces())))
        k = h.checkpoint_interval
        windows = list(compute_windows(posted.result.operations, k))
        j = slot // k
        offset = sum(len(encode_core(op)) for op in posted.result.operations[j * k:slot])
        core = bytearray(windows[j].core)
        core[offset + TRADE_SIDE_OFFSET] = 7 + variant % 3
        windows[j] = WindowData(bytes(core), windows[j].auth)
        header = replace(posted.result.header, ops_hash=compute_ops_hash(windows))
        return Posted(replace(posted.result, header=header), encode_header(header), encode_ops_data(windows))
    if kind == "bad_signature":
        return _replace(honest, slot, trade(maker, taker, 20, px(3), nonces=(nonces(), nonces()),
                                            maker_signer=3))
    raise AssertionError(kind)


# --- the campaign --------------------------------------------------------------------------------


def _run(w: World, kind: str, actions: list[tuple[Any, ...]], amounts: list[int], ticks: int) -> None:
    s, watcher = _fresh(w)
    nonces = Nonces()
    for i, usdc in enumerate(amounts):
        s.deposit(i, usdc)
    s.post([DepositOp(AccountId(i), ADDRESSES[i], Amount(a * USDC)) for i, a in enumerate(amounts)]
           + [TickOp(Timestamp(NOW))])
    ops = _valid_ops(s, s.state, actions, nonces)
    COUNTS.update(f"valid ops: {type(op).__name__}" for op in ops)
    if ops:
        s.post(ops)
    for n in range(1, len(s.posted) + 1):
        _assert_unchallengeable(s, n)
    assert watcher.on_tick() == [] and watcher.verified == len(s.posted)
    last = len(s.posted)

    # the next batch: two queued deposits (the queue kinds skip or swap them; they also fund the
    # two traders of the trade kinds, so the STF refuses what the kind is about), then ticks to overwrite
    s.deposit(1, 5_000)
    s.deposit(2, 4_000)
    if kind == "unserved_forced":
        s.vault.transact("request_forced_withdrawal", 7 * USDC, sender=s.users[2])
    queued = [DepositOp(AccountId(i), ADDRESSES[i], Amount(a))
              for i, _, a in s.deposits[s.state.counters.deposit_count:]]
    honest = s.build([*queued, *[TickOp(Timestamp(NOW))] * (ticks + s.k + 2)])  # at least two windows
    if kind == "prev_root":
        bad_header = replace(honest.result.header, prev_root=Digest(b"\x01" * 32))
        with pytest.raises(ContractRevert, match="settlement: wrong prev root"):
            s.settlement.transact("post_batch", encode_header(bad_header), honest.ops_data, sender=s.coordinator)
        assert s.settlement.call("last_batch") == last
        COUNTS["prev_root: refused at posting"] += 1
        return
    if kind == "unserved_forced":
        s.post_raw(honest)  # valid, but it does not serve the queued forced withdrawal
        assert watcher.on_tick() == []
        s.chain.time_travel(T_FORCE)
        watcher.on_tick()
        assert watcher.froze and s.settlement.call("frozen")
        COUNTS["unserved_forced: frozen by the watcher"] += 1
        return
    slot = len(queued) + ticks % 2
    bad = _mutate(kind, honest, slot, ticks, nonces)
    assert compute_header_hash(bad.result.header) != compute_header_hash(honest.result.header) \
        or bad.ops_data != honest.ops_data
    s.post_raw(bad)
    if kind != "final_root":  # (a successor of a wrong root would start from the root it claimed)
        s.post([TickOp(Timestamp(NOW))])  # a successor, reverted with it
    [challenge] = watcher.on_tick()
    assert challenge.succeeded, challenge
    assert challenge.number == last + 1 and challenge.kind is EXPECTED.get(kind, FaultKind.EXECUTION)
    assert challenge.slashed == BOND and s.token.call("balanceOf", watcher.account.address) == challenge.reward
    assert s.settlement.call("last_batch") == last and s.settlement.call("paused")
    COUNTS[f"{kind}: proven and slashed"] += 1
    if EXPECTED.get(kind) is FaultKind.QUEUES:
        COUNTS[f"{kind}: {challenge.reason}"] += 1
    if challenge.reason.startswith("operation"):  # the STF's refusal, by error class
        COUNTS[f"{kind}: refused by the STF with {challenge.reason.split(':')[1].strip()}"] += 1


@pytest.mark.parametrize("kind", KINDS)
@settings(max_examples=3)
@given(actions=_stream(), amounts=st.lists(st.integers(500, 20_000), min_size=USERS, max_size=USERS),
       ticks=st.integers(0, 5))
def test_every_mutation_is_caught(world: World, kind: str, actions: list[tuple[Any, ...]],
                                  amounts: list[int], ticks: int) -> None:
    _run(world, kind, actions, amounts, ticks)


@pytest.mark.slow
@pytest.mark.parametrize("kind", KINDS)
@settings(max_examples=40)
@given(actions=_stream(), amounts=st.lists(st.integers(500, 20_000), min_size=USERS, max_size=USERS),
       ticks=st.integers(0, 5))
def test_every_mutation_is_caught_at_length(world: World, kind: str, actions: list[tuple[Any, ...]],
                                            amounts: list[int], ticks: int) -> None:
    _run(world, kind, actions, amounts, ticks)

