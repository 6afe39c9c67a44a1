"""Gas of the oracle on the in-process chain: a report per committee size, an equivocation proof,
and the worst-case settlement TWAP. Figures are receipts' ``gas_used`` (intrinsic + calldata +
execution), from the same chain the tests use.

A report is what an honest leader sends: exactly ``2f+1`` observations and ``f+1`` signatures,
measured on a steady-state round (the feed already has rounds). The first round of a feed costs
more (one more zero-to-non-zero write) and is reported separately.
"""

from __future__ import annotations

from benchmarks._common import write_result
from clearhouse.chain import InProcessChain
from clearhouse.chain.artifacts import VYPER_VERSION
from clearhouse.oracle import (
    SignedReport,
    compute_equivocation_proof,
    compute_observation,
    compute_report,
    compute_report_observation,
    select_observations,
    sign_observation,
    sign_report,
)
from clearhouse.sim.oracle_hub import DEFAULT_HUB, USDC, OracleSystem, deploy_oracle_system
from clearhouse.types import Price, RoundId, Seconds, Timestamp

SIZES = (4, 7, 10, 16, 31)
PRICE = 3_000 * USDC


def _report(s: OracleSystem, round_id: int, observers: int | None = None,
            signers: int | None = None) -> SignedReport:
    """Members observe slightly different prices now; the leader keeps the median 2f+1 (or all)."""
    f = s.committee.f
    now = s.now()
    count = observers or s.committee.n
    observations = [
        sign_observation(s.domain, compute_observation(s.committee.feed_id, RoundId(round_id),
                                                       Price(PRICE + 1_000 * i), now, Seconds(60)), k)
        for i, k in enumerate(s.keys[:count])]
    if observers is None:
        selected = select_observations(s.committee, observations)
    else:
        selected = tuple(sorted(observations, key=lambda o: o.observation.price))
    report = compute_report(s.committee, RoundId(round_id), selected)
    assert len(report.observations) == len(selected)
    assert all(o == compute_report_observation(x) for o, x in zip(report.observations, selected, strict=True))
    keys = s.keys[:signers or f + 1]
    return SignedReport(report, tuple(sign_report(s.domain, report, k) for k in keys))


def _report_gas(n: int) -> dict[str, int]:
    s = deploy_oracle_system(InProcessChain(), (n - 1) // 3)
    first = s.transmit(_report(s, 1))
    s.chain.time_travel(DEFAULT_HUB.min_round_interval)
    steady = s.transmit(_report(s, 2))
    s.chain.time_travel(DEFAULT_HUB.min_round_interval)
    full = s.transmit(_report(s, 3, observers=n, signers=n))
    return {f"report_gas_n{n}": steady.gas_used, f"report_gas_n{n}_first_round": first.gas_used,
            f"report_gas_n{n}_all_members": full.gas_used,
            f"report_calldata_bytes_n{n}": steady.calldata_size}


def _equivocation_gas() -> int:
    s = deploy_oracle_system(InProcessChain(), 1)
    key, now = s.keys[0], s.now()
    a = sign_observation(s.domain, compute_observation(s.committee.feed_id, RoundId(7), Price(PRICE),
                                                       now, Seconds(60)), key)
    b = sign_observation(s.domain, compute_observation(s.committee.feed_id, RoundId(7),
                                                       Price(PRICE + 1), now, Seconds(60)), key)
    return int(s.prove(compute_equivocation_proof(a, b)).gas_used)


def _twap_gas() -> tuple[int, int]:
    """Gas of a settlement TWAP over a full window at the densest round spacing (the loop bound)."""
    s = deploy_oracle_system(InProcessChain(), 1)
    interval, window = DEFAULT_HUB.min_round_interval, DEFAULT_HUB.max_twap_window
    rounds = window // interval + 2
    for round_id in range(1, rounds + 1):
        s.transmit(_report(s, round_id))
        s.chain.time_travel(interval)
    end = s.rounds()[-1].timestamp
    s.chain.time_travel(s.feed.max_age + 1)  # the window is final
    start = Timestamp(end - window)
    in_window = sum(1 for r in s.rounds() if start <= r.timestamp <= end)
    data = s.hub.encode("twap", s.committee.feed_id, start, end, 10**15)
    receipt = s.chain.transact(s.hub.address, data)  # a view run as a transaction, for its gas
    return int(receipt.gas_used), in_window


def main() -> None:
    metrics: dict[str, int] = {}
    for n in SIZES:
        metrics.update(_report_gas(n))
    metrics["equivocation_proof_gas"] = _equivocation_gas()
    metrics["settlement_twap_gas_max_window"], metrics["settlement_twap_rounds_max_window"] = _twap_gas()
    ordered = {k: metrics[k] for k in [*(f"report_gas_n{n}" for n in SIZES), "equivocation_proof_gas"]}
    ordered.update({k: v for k, v in metrics.items() if k not in ordered})
    write_result(
        "oracle", ordered,
        notes=("In-process EVM (prague, vyper " + VYPER_VERSION + "), gas_used from receipts. "
               "report_gas_n{n}: steady-state round, 2f+1 observations + f+1 report signatures "
               "(what an honest leader sends); _first_round: the feed's first round; _all_members: "
               "all n observations and n signatures. Each observation costs one ecrecover and "
               "~290 calldata bytes. equivocation_proof_gas includes the Bonds slash and the "
               "prover's token transfer. settlement_twap_gas_max_window: twap() over a "
               f"{DEFAULT_HUB.max_twap_window} s window with rounds every "
               f"{DEFAULT_HUB.min_round_interval} s (the loop bound), run as a transaction. "
               "No optimistic-posting path is built, so optimistic_post_gas and "
               "optimistic_challenge_gas_n16 are not reported."),
        evm="in-process (titanoboa/py-evm, prague)",
    )


if __name__ == "__main__":
    main()
