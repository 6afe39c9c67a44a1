"""Throughput of the chain backends on the same workload: the measurement behind
docs/decisions/0001-in-process-evm.md (titanoboa vs eth-tester/py-evm, with anvil for scale).

Workload per backend: deploy the test token, mint, then N token transfers (transactions) and
M balance reads (calls), all through the same ``Contract`` binding.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from benchmarks._common import rate, write_result
from clearhouse.chain import Chain, InProcessChain, RpcChain
from clearhouse.chain.anvil import Anvil, find_anvil

TXS = 200
CALLS = 1000


def _eth_tester_chain() -> Chain:
    from eth_tester import EthereumTester, PyEVMBackend
    from web3 import EthereumTesterProvider, Web3

    tester = EthereumTester(PyEVMBackend())
    w3 = Web3(EthereumTesterProvider(tester))
    chain = RpcChain.from_web3(w3, "eth-tester")
    for acct in chain.accounts:  # fund anvil's dev accounts from the tester's own
        w3.eth.send_transaction({"from": w3.eth.accounts[0], "to": acct.address, "value": 10**21})
    return chain


def _measure(chain: Chain) -> dict[str, float]:
    alice, bob = chain.accounts[1], chain.accounts[2]
    start = time.perf_counter()
    token = chain.deploy("mocks/TestToken", "Test USD", "tUSD")
    deploy_s = time.perf_counter() - start
    token.transact("mint", alice.address, 10**15)

    def txs() -> int:
        for _ in range(TXS):
            token.transact("transfer", bob.address, 1, sender=alice)
        return TXS

    def calls() -> int:
        for _ in range(CALLS):
            token.call("balanceOf", bob.address)
        return CALLS

    return {"tx_per_s": rate(txs, repeats=3), "call_per_s": rate(calls, repeats=3),
            "deploy_ms": deploy_s * 1000}


def main() -> None:
    backends: dict[str, Callable[[], Chain]] = {"titanoboa": InProcessChain,
                                                "eth_tester": _eth_tester_chain}
    anvil = Anvil() if find_anvil() else None
    if anvil:
        backends["anvil"] = lambda: RpcChain(anvil.url)
    metrics: dict[str, float] = {}
    try:
        for name, make in backends.items():
            for key, value in _measure(make()).items():
                metrics[f"{key}_{name}"] = round(value, 2)
    finally:
        if anvil:
            anvil.stop()
    for other in ("eth_tester", "anvil"):
        if f"tx_per_s_{other}" in metrics:
            metrics[f"ratio_tx_titanoboa_vs_{other}"] = round(
                metrics["tx_per_s_titanoboa"] / metrics[f"tx_per_s_{other}"], 2)
            metrics[f"ratio_call_titanoboa_vs_{other}"] = round(
                metrics["call_per_s_titanoboa"] / metrics[f"call_per_s_{other}"], 2)
    write_result("chain_backends", metrics,
                 notes=f"{TXS} ERC-20 transfers and {CALLS} balanceOf calls per repetition, "
                       "same Contract binding on every backend; medians of 3 after a warm-up.")


if __name__ == "__main__":
    main()
