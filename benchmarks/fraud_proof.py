"""Gas of the on-chain fraud proof (``contracts/lib/stf.vy``): one window of K operations re-executed.

Worst case measured (the larger of two windows): K RFQ fills of 8 legs, or K trades, between two accounts that hold ``max_positions`` positions over two
expiries after each trade (so the exact max-loss check evaluates 16 positions at every critical
price, twice per trade), with fresh nonces (two-key proofs in both trees) and 4096 more accounts
in the accounts tree. Per-operation-type figures are single-operation windows from the settlement vectors'
scenario (they include the fixed cost of a call). Compared with half a 30M block, the budget a
challenge transaction must fit in.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

from benchmarks._common import ROOT, write_result
from clearhouse.chain import Contract, InProcessChain
from clearhouse.market.instruments import OptionKind
from clearhouse.params import load_params
from clearhouse.settlement import (
    Operation,
    RfqFillOp,
    RfqLeg,
    SettlementContext,
    SettlementState,
    TickOp,
    apply_batch,
    apply_operation,
    compute_genesis_state,
    compute_header_hash,
    compute_ops_hash,
    compute_window_hash,
    compute_window_witness,
    compute_windows,
    decode_operations,
    encode_auth,
    encode_core,
    encode_header,
    get_state_root,
)
from clearhouse.settlement.state import encode_counters
from clearhouse.settlement.witness import encode_operation_witness

# The signed-operation builders live with the tests (fixed keys, RFC 6979 signatures).
from clearhouse.sim.settlement_world import (
    E1,
    E2,
    NOW,
    USDC,
    deposit,
    make_ctx,
    px,
    rfq_fill,
    trade,
)
from clearhouse.types import Price, Timestamp

BLOCK_GAS = 30_000_000
BUDGET = BLOCK_GAS // 2
FILLER = 4096
"""Extra accounts in the tree (about 12 non-default siblings per account proof)."""


def _ctx_args(ctx: SettlementContext) -> tuple[Any, ...]:
    return (ctx.domain.separator, ctx.timestamp, ctx.contract_unit, ctx.max_positions,
            ctx.checkpoint_interval, ctx.max_clock_lag, ctx.fee_account, ctx.max_fee_bps,
            [(e.expiry_id, e.underlying_word, e.quote_word, e.timestamp, e.cap, e.settlement_price is not None,
              e.settlement_price or 0) for e in ctx.expiries.values()])


def _args(state: SettlementState, ops: list[Operation], ctx: SettlementContext) -> tuple[Any, ...]:
    w = compute_window_witness(state, ops, ctx)
    k = w.checkpoint.counters
    return (get_state_root(state), _ctx_args(ctx),
            (w.checkpoint.accounts_root, w.checkpoint.consumed_root,
             (k.deposit_count, k.deposit_hash, k.forced_count, k.forced_hash, k.clock, k.fee_pool)),
            b"".join(encode_core(op) for op in ops), b"".join(encode_auth(op) for op in ops),
            [encode_operation_witness(x) for x in w.operations])


def _gas(stf: Contract, state: SettlementState, ops: list[Operation], ctx: SettlementContext) -> int:
    return int(stf.transact("verify_window", *_args(state, ops, ctx), gas=BLOCK_GAS).gas_used)


def _series(j: int) -> tuple[Any, Price, OptionKind]:
    expiry = E1 if j < 8 else E2
    return expiry, Price((2000 + 100 * (j % 8)) * USDC), OptionKind(j % 2)


def _worst_trade_window(k: int, ctx: SettlementContext, max_positions: int, filler: int
                        ) -> tuple[SettlementState, list[Operation]]:
    """K trades between two accounts holding ``max_positions - 1`` positions; ``filler`` more
    accounts (deposits) populate the accounts tree so its proofs carry realistic siblings."""
    setup: list[Operation] = [deposit(i, 10_000_000) for i in range(5)]
    setup += [deposit(i, 1, owner=0) for i in range(6, 6 + filler)] + [TickOp(Timestamp(NOW))]
    nonce = 10
    for j in range(max_positions - 1):
        expiry, strike, kind = _series(j)
        setup.append(trade(1, 2, 100, px(10), expiry=expiry, strike=strike, kind=kind,
                           nonces=(nonce, nonce + 1)))
        nonce += 2
    state = apply_batch(compute_genesis_state(), setup, ctx).state
    expiry, strike, kind = _series(max_positions - 1)
    window = [trade(1, 2, 100, px(10), expiry=expiry, strike=strike, kind=kind,
                    nonces=(nonce + 2 * p, nonce + 2 * p + 1)) for p in range(k)]
    return state, window


def _worst_rfq_window(state: SettlementState, k: int, ctx: SettlementContext, max_positions: int
                      ) -> tuple[SettlementState, list[Operation]]:
    """K RFQ fills of ``max_positions / 2`` legs between accounts 3 and 4, which already hold the
    other half of ``max_positions`` series (every fill ends with full leaves)."""
    half = max_positions // 2
    setup: list[Operation] = []
    for j in range(half):
        expiry, strike, kind = _series(j)
        setup.append(trade(3, 4, 100, px(10), expiry=expiry, strike=strike, kind=kind,
                           nonces=(5000 + 2 * j, 5001 + 2 * j)))
    state = apply_batch(state, setup, ctx).state
    legs = [RfqLeg(e.expiry_id, strike, kind, 1, True, px(10))
            for e, strike, kind in (_series(j) for j in range(half, 2 * half))]
    window = [rfq_fill(3, 4, 100, legs, quote_nonce=7000 + i, accept_nonce=8000 + i) for i in range(k)]
    return state, window


def _per_type(stf: Contract) -> dict[str, int]:
    """Single-operation windows of every type, replayed from the settlement vectors' scenario."""
    vectors = json.loads((ROOT / "tests" / "vectors" / "settlement.json").read_text())
    state = compute_genesis_state()
    out: dict[str, int] = {}
    for batch in vectors["batches"]:
        prices = {bytes.fromhex(e[2:]): int(p) for e, p in batch["context"]["settlementPrices"].items()
                  if p is not None}
        ctx = make_ctx(int(batch["context"]["timestamp"]), prices=prices or None, k=4)
        for vector in batch["operations"]:
            op = decode_operations(bytes.fromhex(vector["core"][2:]), bytes.fromhex(vector["auth"][2:]))[0]
            out[f"gas_single_op_{vector['type'].lower()}"] = max(
                out.get(f"gas_single_op_{vector['type'].lower()}", 0), _gas(stf, state, [op], ctx))
            state = apply_operation(state, op, ctx)
    return out


def _challenge_gas(chain: InProcessChain, state: SettlementState, window: list[Operation],
                   ctx: SettlementContext) -> int:
    """Gas of ``WindowVerifier.challenge_execution`` proving that the last operation of ``window``
    is forged (a swapped signature, found after re-executing everything before it): the whole path,
    header and window checks, re-execution and the report to the settlement."""
    sink = chain.deploy("mocks/SettlementSink")
    trade_rules, rules = chain.deploy("StfTradeRules"), chain.deploy("StfRules")
    verifier = chain.deploy("WindowVerifier", sink.address, trade_rules.address, rules.address,
                            ctx.domain.separator, ctx.contract_unit, ctx.max_positions, ctx.max_clock_lag,
                            ctx.fee_account, ctx.max_fee_bps, "0x" + "00" * 20)
    for e in ctx.expiries.values():
        verifier.transact("list_expiry", (e.expiry_id, e.underlying_word, e.quote_word, e.timestamp, e.cap,
                                          False, 0))
    k = len(window)
    header = apply_batch(state, window, ctx, k).header
    last = window[-1]
    assert isinstance(last, RfqFillOp)
    window = [*window[:-1], replace(last, quote_signature=last.accept_signature)]
    header = replace(header, ops_hash=compute_ops_hash(compute_windows(window, k)))
    sink.transact("set_header_hash", header.number, compute_header_hash(header))
    w = compute_window_witness(state, window, ctx)
    c = w.checkpoint
    receipt = verifier.transact(
        "challenge_execution", header.number, encode_header(header), 0,
        b"".join(encode_core(op) for op in window), b"".join(encode_auth(op) for op in window),
        [compute_window_hash(x) for x in compute_windows(window, k)],
        c.accounts_root + c.consumed_root + encode_counters(c.counters),
        [encode_operation_witness(x) for x in w.operations], gas=BLOCK_GAS)
    return int(receipt.gas_used)


def main() -> None:
    params = load_params("mainnet")
    k = params.checkpoint_interval
    ctx = make_ctx(NOW + 100, k=k)
    chain = InProcessChain()
    trade_rules, rules = chain.deploy("StfTradeRules"), chain.deploy("StfRules")
    stf = chain.deploy("mocks/StfHarness", trade_rules.address, rules.address)

    state, window = _worst_trade_window(k, ctx, params.max_positions, FILLER)
    half = _gas(stf, state, window[:k // 2], ctx)
    worst = _gas(stf, state, window, ctx)
    marginal = (worst - half) // (k - k // 2)
    rfq_state, rfq_window = _worst_rfq_window(state, k, ctx, params.max_positions)
    rfq_worst = _gas(stf, rfq_state, rfq_window, ctx)
    rfq_half = _gas(stf, rfq_state, rfq_window[:k // 2], ctx)
    rfq_marginal = (rfq_worst - rfq_half) // (k - k // 2)
    if rfq_marginal > marginal:
        worst, half, marginal = rfq_worst, rfq_half, rfq_marginal
    fixed = half - marginal * (k // 2)
    challenge_k = _challenge_gas(chain, rfq_state, rfq_window, ctx)
    challenge_half = _challenge_gas(chain, rfq_state, rfq_window[:k // 2], replace(ctx, checkpoint_interval=k // 2))
    metrics: dict[str, Any] = {
        "k": k,
        "fraud_proof_max_gas": worst,
        "fraud_proof_fixed_gas": fixed,
        "fraud_proof_gas_per_worst_op": marginal,
        "half_block_budget": BUDGET,
        "fits_half_block": worst <= BUDGET,
        "max_k_in_half_block": (BUDGET - fixed) // marginal,
        f"fraud_proof_gas_k{k // 2}": half,
        "fraud_proof_trade_window_gas": _gas(stf, state, window, ctx),
        "challenge_execution_gas": challenge_k,
        f"challenge_execution_gas_k{k // 2}": challenge_half,
        "fraud_proof_rfq8_window_gas": rfq_worst,
        **_per_type(stf),
    }
    write_result("fraud_proof", metrics, notes=__doc__ or "", evm="titanoboa (prague)")


if __name__ == "__main__":
    main()
