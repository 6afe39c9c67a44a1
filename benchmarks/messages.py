"""Signed-message throughput: fast path vs raw libsecp256k1 recovery vs eth_account, 1 core and all.

Every figure is a median over interleaved rounds (each round measures every path once, so a
neighbour's load hits all paths alike) after a warm-up round. ``python -m benchmarks.messages``.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from typing import Any

from coincurve import PublicKey
from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_utils import keccak

from benchmarks._common import write_result
from clearhouse.messages import (
    BatchItem,
    Domain,
    Order,
    Side,
    TimeInForce,
    compute_order_digest,
    sign,
    verify,
    verify_batch,
)
from clearhouse.messages.keccak import LEAN
from clearhouse.types import Address, ChainId, Timestamp

ROUNDS = 7
N_FAST = 4000
N_ETH_ACCOUNT = 200
N_BATCH = 40_000
NOW = Timestamp(1_790_000_000)
DOMAIN = Domain("clearhouse", "1", ChainId(31337), Address("0x5FbDB2315678afecb367f032d93F642f64180aa3"))
KEYS = [keccak(text=f"bench key {i}") for i in range(8)]
ACCOUNTS = [Account.from_key(k) for k in KEYS]


def _orders(count: int) -> list[tuple[Order, bytes]]:
    out = []
    for i in range(count):
        account = ACCOUNTS[i % len(ACCOUNTS)]
        order = Order(account.address, keccak(i.to_bytes(8, "big")), Side(1 + i % 2), 100_000_000 + i,
                      1 + i % 500, TimeInForce(i % 4), i * 7919, NOW + 3600)
        out.append((order, sign(DOMAIN, order, account.key)))
    return out


def _timed(fn: Callable[[], int]) -> float:
    start = time.perf_counter()
    count = fn()
    return count / (time.perf_counter() - start)


def main() -> None:
    signed = _orders(N_FAST)
    digests = [compute_order_digest(DOMAIN, o) for o, _ in signed]
    recoverable = [s[:64] + bytes((s[64] - 27,)) for _, s in signed]
    typed = [(o.to_typed_data(DOMAIN), s, o.account) for o, s in signed[:N_ETH_ACCOUNT]]
    items = [BatchItem(o, s, o.account) for o, s in _orders(N_BATCH // 10)] * 10
    workers = os.cpu_count() or 1

    def digest_fast() -> int:
        for order, _ in signed:
            compute_order_digest(DOMAIN, order)
        return len(signed)

    def recover_coincurve() -> int:
        for sig, digest in zip(recoverable, digests, strict=True):
            PublicKey.from_signature_and_message(sig, digest, hasher=None)
        return len(digests)

    def verify_fast() -> int:
        for order, sig in signed:
            verify(DOMAIN, order, sig, order.account, NOW)
        return len(signed)

    def verify_eth_account() -> int:
        for typed_data, sig, account in typed:
            signable = encode_typed_data(full_message=typed_data)
            if Account.recover_message(signable, signature=sig) != account:
                raise RuntimeError("eth_account disagrees")
        return len(typed)

    with ProcessPoolExecutor(max_workers=workers) as pool:

        def verify_allcores() -> int:
            verdicts = verify_batch(DOMAIN, items, NOW, workers, executor=pool)
            if not all(v.ok for v in verdicts):
                raise RuntimeError("batch verification rejected a valid message")
            return len(items)

        paths: dict[str, Callable[[], int]] = {
            "digest_per_s_fast_1core": digest_fast,
            "recover_per_s_coincurve_1core": recover_coincurve,
            "verify_per_s_fast_1core": verify_fast,
            "verify_per_s_eth_account_1core": verify_eth_account,
            "verify_per_s_fast_allcores": verify_allcores,
        }
        samples: dict[str, list[float]] = {name: [] for name in paths}
        for round_ in range(ROUNDS + 1):
            for name, fn in paths.items():
                figure = _timed(fn)
                if round_:  # round 0 is the warm-up
                    samples[name].append(figure)
        start = time.perf_counter()
        verify_batch(DOMAIN, items, NOW, workers)  # with its own pool: start-up included
        cold = len(items) / (time.perf_counter() - start)

    ratios = [f / c for f, c in zip(samples["verify_per_s_fast_1core"],
                                    samples["recover_per_s_coincurve_1core"], strict=True)]
    metrics: dict[str, Any] = {name: round(statistics.median(values)) for name, values in samples.items()}
    metrics["ratio_fast_to_coincurve"] = round(statistics.median(ratios), 3)
    metrics["ratio_fast_to_eth_account"] = round(
        metrics["verify_per_s_fast_1core"] / metrics["verify_per_s_eth_account_1core"], 1)
    metrics["verify_per_s_fast_allcores_cold"] = round(cold)
    metrics["allcores_workers"] = workers
    write_result("messages", metrics, notes=(
        f"Order messages. Medians of {ROUNDS} interleaved rounds after one warm-up. "
        "verify_* = expiry + EIP-712 digest + canonical-signature checks + libsecp256k1 recovery "
        "(coincurve) + address derivation + comparison; recover_per_s_coincurve_1core is "
        "PublicKey.from_signature_and_message alone on precomputed digests; ratio_fast_to_coincurve "
        "is the median of per-round ratios. eth_account = encode_typed_data + recover_message from "
        "the typed-data JSON. allcores = verify_batch over a warm process pool of allcores_workers "
        f"processes ({N_BATCH} messages per call; digests in the caller, recovery in the workers); "
        "_cold includes starting the pool. Keccak: pycryptodome C core via the lean binding "
        f"(clearhouse.messages.keccak, active={LEAN})."))


if __name__ == "__main__":
    main()
