"""Gas of settlement on anvil (prague): batches of order-book trades posted and finalised, the
calldata floor they are bound by, the largest batch one transaction takes, an exit after a
freeze, and a baseline that settles one trade per transaction with both orders verified on-chain.

Batches are built by the Python spec (``clearhouse.settlement.apply_batch``) from signed trades of
the settlement test world and posted to ``contracts/Settlement.vy`` with ``K = 32``; the happy path
per trade is ``(post gas + finalize gas) / trades``. Figures are receipts' ``gas_used``.
"""

from __future__ import annotations

import statistics

from benchmarks._common import write_result
from clearhouse.chain import RpcChain
from clearhouse.chain.anvil import Anvil
from clearhouse.chain.inprocess import GAS_LIMIT
from clearhouse.errors import ContractRevert
from clearhouse.market.instruments import OptionKind
from clearhouse.merkle.claims import compute_claim_leaf_hash
from clearhouse.messages import Order, Side, TimeInForce, sign
from clearhouse.messages.domain import Domain
from clearhouse.settlement import (
    WITHDRAWAL_LEAF_ENCODING,
    TickOp,
    compute_series_id_of,
    encode_account,
    encode_auth,
    encode_core,
    get_account_proof,
)
from clearhouse.settlement.header import MAX_PAYOUTS
from clearhouse.sim.expiry_chain import measure_worst_exit_gas
from clearhouse.sim.settlement_chain import T_FORCE, WINDOW, Posted, SettlementSystem, deploy
from clearhouse.sim.settlement_world import (
    ADDRESSES,
    E1,
    KEYS,
    NOW,
    STRIKE,
    deposit,
    px,
    trade,
    withdrawal,
)
from clearhouse.types import AccountId, Address, ChainId, Nonce, Quantity, Timestamp

K = 32
SMALL, LARGE = 65536, 400000
"""``Settlement.SMALL_OPS_DATA`` and ``MAX_OPS_DATA``."""
TRADE_BYTES = 351
WITHDRAWAL_BYTES = 122


def _tokens(data: bytes) -> int:
    """EIP-7623 calldata tokens: one per zero byte, four per non-zero byte."""
    zeros = data.count(0)
    return zeros + 4 * (len(data) - zeros)


class _Trades:
    """Signed book trades between accounts 1 and 2, alternating sides, fresh nonces."""

    def __init__(self) -> None:
        self.n = 0

    def take(self, count: int) -> list:  # type: ignore[type-arg]
        ops = []
        for _ in range(count):
            side = Side.SELL if self.n % 2 == 0 else Side.BUY
            ops.append(trade(1, 2, 100, px(50), maker_side=side, nonces=(10_000 + self.n, 10_000 + self.n)))
            self.n += 1
        return ops


def _max_trades() -> int:
    """The most trades whose ops data fits ``post_large_batch``."""
    n = LARGE // TRADE_BYTES
    while n * TRADE_BYTES + 8 * -(-n // K) > LARGE:
        n -= 1
    return n


def _queue_challenge_gas(s: SettlementSystem, posted: Posted) -> int:
    """Gas of `challenge_queues` walking the whole (honest) batch: it ends in a revert
    (`no queue fault`) after all the work a successful proof does, so its receipt is the bound."""
    try:
        s.settlement.transact("challenge_queues", len(s.posted), posted.header, posted.ops_data,
                              gas=GAS_LIMIT - 1_000_000)
    except ContractRevert as exc:
        assert exc.reason == "settlement: no queue fault", exc.reason
        return int(exc.context["gas_used"])  # type: ignore[call-overload]
    raise AssertionError("an honest batch was proven wrong")


def _payout_challenge(s: SettlementSystem) -> tuple[int, int]:
    """Gas of `challenge_payouts` over the batch with the most payouts a valid batch may make
    (`MAX_PAYOUTS` withdrawals of 122 bytes each), ending in `payouts are correct`."""
    n = min(LARGE // (WITHDRAWAL_BYTES + 1), MAX_PAYOUTS)
    posted = s.build([withdrawal(i % 3, 1, nonce=50_000 + i) for i in range(n)])
    s.post_raw(posted)
    result = posted.result
    leaves = [compute_claim_leaf_hash(WITHDRAWAL_LEAF_ENCODING, (result.header.number, i, p.recipient, p.amount))
              for i, p in enumerate(result.payouts)]
    order = sorted(range(len(leaves)), key=lambda i: leaves[i])
    try:
        s.settlement.transact("challenge_payouts", len(s.posted), posted.header, posted.ops_data, order,
                              gas=GAS_LIMIT - 1_000_000)
    except ContractRevert as exc:
        assert exc.reason == "settlement: payouts are correct", exc.reason
        gas = int(exc.context["gas_used"])  # type: ignore[call-overload]
    else:
        raise AssertionError("an honest batch was proven wrong")
    s.chain.time_travel(WINDOW)
    s.settlement.transact("finalize", len(s.posted))
    s.finalized = s.state
    return gas, n


def _batch(s: SettlementSystem, trades: _Trades, n: int,
           metrics: dict[str, float | int] | None = None) -> tuple[int, int, bytes]:
    posted = s.build(trades.take(n))
    receipt = s.post_raw(posted)
    if metrics is not None:
        metrics["queue_challenge_max_gas"] = _queue_challenge_gas(s, posted)
    s.chain.time_travel(WINDOW)
    fin = s.settlement.transact("finalize", len(s.posted))
    s.finalized = s.state
    return receipt.gas_used, fin.gas_used, posted.ops_data


def _baseline(chain: RpcChain, repeats: int = 20) -> int:
    direct = chain.deploy("mocks/DirectSettlement", "clearhouse", "1")
    domain = Domain("clearhouse", "1", ChainId(chain.chain_id), Address(direct.address))
    series = compute_series_id_of(E1, STRIKE, OptionKind.CALL)
    direct.transact("credit", ADDRESSES[2], 10**15)
    gas = []
    expiry = chain.now() + 86400
    for i in range(repeats):
        maker = Order(ADDRESSES[1], series, Side.SELL, px(50), Quantity(100), TimeInForce.GTC, Nonce(i),
                      Timestamp(expiry))
        taker = Order(ADDRESSES[2], series, Side.BUY, px(50), Quantity(100), TimeInForce.GTC, Nonce(i),
                      Timestamp(expiry))
        as_tuple = [(o.account, o.series_id, int(o.side), o.price, o.quantity, int(o.time_in_force),
                     o.nonce, o.expiry) for o in (maker, taker)]
        receipt = direct.transact("settle", as_tuple[0], sign(domain, maker, KEYS[1]), as_tuple[1],
                                  sign(domain, taker, KEYS[2]), 100, px(50))
        gas.append(receipt.gas_used)
    return int(statistics.median(gas[1:]))


def main() -> None:
    node = Anvil()
    try:
        chain = RpcChain(node.url)
        s = deploy(chain, users=3, k=K)
        for i in range(3):
            s.deposit(i, 1_000_000)
        s.sync_time(NOW)
        s.post([deposit(0, 1_000_000), deposit(1, 1_000_000), deposit(2, 1_000_000), TickOp(Timestamp(NOW))])
        trades = _Trades()
        metrics: dict[str, float | int] = {}
        data_1000 = b""
        max_n = _max_trades()
        for n in (10, 100, 1000, max_n):
            post_gas, fin_gas, data = _batch(s, trades, n, metrics if n == max_n else None)
            key = "max" if n == max_n else str(n)
            metrics[f"gas_per_trade_{key}"] = round((post_gas + fin_gas) / n)
            if n == 1000:
                data_1000 = data
            if n == max_n:
                metrics["max_batch_post_gas"] = post_gas
        metrics["max_trades_per_batch"] = max_n
        metrics["bytes_per_trade"] = round(len(data_1000) / 1000, 2)
        floor = 10 * _tokens(data_1000) / 1000
        metrics["calldata_floor_gas_per_trade"] = round(floor)
        metrics["ratio_to_floor_1000"] = round(metrics["gas_per_trade_1000"] / floor, 3)
        # the two streams of one trade (docs/decisions/0012): what posting only the core would cost
        one = trades.take(1)[0]
        metrics["core_floor_gas_per_trade"] = 10 * _tokens(encode_core(one))
        metrics["auth_floor_gas_per_trade"] = 10 * _tokens(encode_auth(one))

        metrics["payout_challenge_max_gas"], metrics["max_payouts_per_batch"] = _payout_challenge(s)

        # exit: a forced withdrawal nobody serves, freeze, account 0 (no positions) exits
        s.vault.transact("request_forced_withdrawal", 1, sender=s.users[0])
        chain.time_travel(T_FORCE)
        s.settlement.transact("freeze")
        final = s.finalized
        proof = get_account_proof(final, AccountId(0))
        receipt = s.settlement.transact("exit", s.preimage(final), 0, encode_account(final.accounts[AccountId(0)]),
                                        proof.bitmap, list(proof.siblings))
        metrics["exit_gas"] = receipt.gas_used
        metrics["block_gas_limit"] = GAS_LIMIT

        baseline = _baseline(chain)
        metrics["baseline_gas_per_trade"] = baseline
        metrics["ratio_baseline_to_batched_1000"] = round(baseline / metrics["gas_per_trade_1000"], 2)
        metrics["exit_gas_worst"], metrics["exit_positions_gas_worst"] = measure_worst_exit_gas(chain)
    finally:
        node.stop()
    write_result("settlement", metrics, notes=(
        "anvil --hardfork prague; K=32; book trades (351 bytes each: 221 core + 130 signatures) between two "
        "accounts; gas_per_trade_N = (post_batch gas + finalize gas) / N, finalised one batch at a time. "
        "Batches above 65,536 bytes of ops data use post_large_batch (ops_data up to 400,000 bytes), whose "
        "static 2x400 KB memory costs ~1.3M gas whatever the batch; max_trades_per_batch is that data cap, "
        "not the block gas limit. calldata_floor_gas_per_trade = 10 gas x EIP-7623 tokens of a trade's "
        "posted bytes; core_/auth_floor_gas_per_trade split it between a trade's core (221 bytes: "
        "what a challenge-response design would still post) and its two signatures (130 bytes). exit_gas: exit of an account without positions after a freeze; exit_gas_worst / "
        "exit_positions_gas_worst: exit (free collateral) and exit_positions (payoff) of an account holding "
        "max_positions (16) series of one expiry, on a fresh deployment with an ExpiryRegistry. baseline: "
        "mocks/DirectSettlement, one trade per tx, both orders verified with lib/eip712.vy. "
        "queue_challenge_max_gas: challenge_queues walking the largest batch; payout_challenge_max_gas: "
        "challenge_payouts rebuilding the claims tree of the batch with the most payouts a valid batch makes "
        "(max_payouts_per_batch withdrawals). "
        "fraud_proof_max_gas belongs to the verifier benchmark."), evm="anvil (prague)")


if __name__ == "__main__":
    main()
