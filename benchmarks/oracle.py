"""Gas of the oracle on the in-process chain: a fully verified report per committee size, an
optimistic post and its challenge, equivocation proofs, a round dispute, and the worst-case
settlement TWAP. Figures are receipts' ``gas_used`` (intrinsic + calldata + execution), from the
same chain the tests use.

A report is what an honest leader sends: exactly ``2f+1`` observations, ``f+1`` of them attested by
their members' report signatures and ``f`` by observation signatures (``2f+1`` signatures in all),
measured on a steady-state round: the feed's ring of round slots is full, so the round overwrites
the oldest slot. ``_ring_filling`` is the same round while the ring still has fresh slots (the
feed's first ``history_rounds`` rounds), ``_first_round`` the feed's first round. The ring size does
not change the gas (only which slot is written), so a 32-slot hub stands in for the default
``2**16``. Chronicle's Scribe figures are not measured here: they are its published poke costs
(~81,000 gas at 5 signers, ~320,000 at 50), interpolated linearly between the two.
"""

from __future__ import annotations

from dataclasses import replace

from benchmarks._common import write_result
from clearhouse.chain import InProcessChain
from clearhouse.chain.artifacts import VYPER_VERSION
from clearhouse.oracle import (
    SignedReport,
    compute_equivocation_proof,
    compute_observation,
    compute_report,
    compute_report_observation,
    compute_report_statements,
    compute_signed_report,
    select_observations,
    sign_observation,
    sign_report,
)
from clearhouse.oracle.encoding import compute_dispute_args, compute_report_evidence
from clearhouse.sim.oracle_hub import DEFAULT_HUB, USDC, OracleSystem, deploy_oracle_system
from clearhouse.types import Price, RoundId, Seconds, Timestamp

SIZES = (4, 7, 10, 16, 31)
PRICE = 3_000 * USDC
SCRIBE_5, SCRIBE_50 = 81_000, 320_000
"""Chronicle Scribe's published poke gas at 5 and 50 signers (external reference, not measured)."""
BEFORE = {4: 95_253, 7: 113_093, 10: 130_872, 16: 166_468, 31: 255_380}
"""``report_gas_n{n}`` at commit bfbd456: a fresh history slot per round and ``3f+2`` signatures
(``2f+1`` observation signatures plus ``f+1`` report signatures); same benchmark, same chain."""
BEFORE_8D179CE = {4: 121_251, 7: 150_356, 10: 177_402, 16: 233_621, 31: 375_096}
"""``report_gas_n{n}`` at commit 8d179ce, before the compact transport."""
BEFORE_30E3E83 = {4: 69_479, 7: 83_136, 10: 96_794, 16: 124_134, 31: 192_484}
"""``report_gas_n{n}`` at commit 30e3e83 (working tree), before ``transmit`` kept its arguments in
calldata (inlined, members, round and timestamp carried as unclamped words, so the ABI decoder no longer
copies them into memory) and limited its second pass to the report-signed observations."""
RING = 32
BENCH_HUB = replace(DEFAULT_HUB, max_twap_window=Seconds(96), dispute_window=Seconds(120),
                    history_rounds=RING)
"""The default hub with a 32-slot ring (and a TWAP window and dispute window short enough for it),
so a benchmark can fill the ring and measure the steady state."""


def compute_scribe_gas(signers: int) -> int:
    """Scribe's poke gas at ``signers``, linear between its two published figures."""
    return SCRIBE_5 + (SCRIBE_50 - SCRIBE_5) * (signers - 5) // 45


def _report(s: OracleSystem, round_id: int, observers: int | None = None,
            signers: int | None = None) -> SignedReport:
    """Members observe slightly different prices now; the leader keeps the median 2f+1 (or all);
    the first ``signers`` (default ``f+1``) members with an observation in it sign it."""
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
    keys = dict(zip(s.committee.members, s.keys, strict=True))
    chosen = [o.member for o in report.observations][:signers or f + 1]
    return compute_signed_report(report, {m: sign_report(s.domain, report, keys[m]) for m in chosen})


def _report_gas(n: int) -> dict[str, int]:
    s = deploy_oracle_system(InProcessChain(), (n - 1) // 3, params=BENCH_HUB)
    gas = []
    for round_id in range(1, RING + 3):
        gas.append(s.transmit(_report(s, round_id)))
        s.chain.time_travel(BENCH_HUB.min_round_interval)
    assert s.hub.call("round_count", s.committee.feed_id) == RING + 2
    full = s.transmit(_report(s, RING + 3, observers=n, signers=n))
    steady = gas[RING + 1]  # round RING + 2 overwrites slot 1
    return {f"report_gas_n{n}": steady.gas_used, f"report_gas_n{n}_ring_filling": gas[1].gas_used,
            f"report_gas_n{n}_first_round": gas[0].gas_used,
            f"report_gas_n{n}_all_members": full.gas_used,
            f"report_calldata_bytes_n{n}": steady.calldata_size}


def _optimistic_gas(n: int) -> tuple[int, int]:
    """(post, challenge) gas: a member posts a price twice the market after a verified round;
    2f+1 other members' observations prove it wrong (the challenge slashes and bans the poster)."""
    s = deploy_oracle_system(InProcessChain(), (n - 1) // 3)
    s.transmit(_report(s, 1))
    s.chain.time_travel(DEFAULT_HUB.min_round_interval)
    post = s.post(s.keys[0], 2, 2 * PRICE)
    now = s.now()
    observations = [
        sign_observation(s.domain, compute_observation(s.committee.feed_id, RoundId(2), Price(PRICE), now,
                                                       Seconds(60)), k)
        for k in s.keys[1:2 * s.committee.f + 2]]
    challenge = s.challenge(1, observations, sender=s.chain.accounts[6])
    return int(post.gas_used), int(challenge.gas_used)


def _optimistic_ring_full_gas() -> int:
    """A post once the feed's ring is full: it overwrites the oldest slot like a steady-state report."""
    s = deploy_oracle_system(InProcessChain(), 1, params=BENCH_HUB)
    for round_id in range(1, RING + 1):
        s.post(s.keys[round_id % 4], round_id, PRICE)
        s.chain.time_travel(BENCH_HUB.min_round_interval)
    return int(s.post(s.keys[0], RING + 1, PRICE).gas_used)


def _equivocation_gas() -> tuple[int, int]:
    """(two observations, an observation against a report signature stating another one) at n = 4,
    each the first proof on a fresh system; each includes the Bonds slash and the prover's token
    transfer."""
    s = deploy_oracle_system(InProcessChain(), 1)
    key, now = s.keys[0], s.now()
    a = sign_observation(s.domain, compute_observation(s.committee.feed_id, RoundId(7), Price(PRICE),
                                                       now, Seconds(60)), key)
    b = sign_observation(s.domain, compute_observation(s.committee.feed_id, RoundId(7),
                                                       Price(PRICE + 1), now, Seconds(60)), key)
    pair = int(s.prove(compute_equivocation_proof(a, b)).gas_used)
    s = deploy_oracle_system(InProcessChain(), 1)  # a fresh system: the same cold Bonds state
    signed = _report(s, 8)
    member = signed.signers[0]
    said = sign_observation(s.domain, compute_observation(s.committee.feed_id, RoundId(8), Price(1), now,
                                                          Seconds(60)), dict(zip(s.committee.members, s.keys,
                                                                                 strict=True))[member])
    statement = next(x for x in compute_report_statements(signed) if x.signer == member)
    return pair, int(s.prove(compute_equivocation_proof(said, statement)).gas_used)


def _dispute_gas() -> tuple[int, int]:
    """(dispute_round, resolve_dispute) gas for a verified round of a 4-member committee, the
    dispute undefended (resolution settles the assertion, slashes and bans the two signers)."""
    s = deploy_oracle_system(InProcessChain(), 1)
    signed = _report(s, 1)
    s.transmit(signed)
    disputer = s.chain.accounts[5]
    s.fund(disputer.address, DEFAULT_HUB.dispute_bond, s.disputes, disputer)
    args = compute_dispute_args(s.domain, s.committee, 0, s.round_state(0),
                                compute_report_evidence(s.domain, signed))
    dispute = s.disputes.transact("dispute_round", *args.to_abi(), sender=disputer)
    s.chain.time_travel(DEFAULT_HUB.dispute_liveness)
    resolve = s.resolve(0)
    return int(dispute.gas_used), int(resolve.gas_used)


def _twap_gas() -> tuple[int, int]:
    """Gas of a settlement TWAP over a full window at the densest round spacing (the loop bound)."""
    s = deploy_oracle_system(InProcessChain(), 1)
    interval, window = DEFAULT_HUB.min_round_interval, DEFAULT_HUB.max_twap_window
    rounds = window // interval + 2
    for round_id in range(1, rounds + 1):
        s.transmit(_report(s, round_id))
        s.chain.time_travel(interval)
    end = s.rounds()[-1].timestamp
    s.chain.time_travel(DEFAULT_HUB.dispute_window + 1)  # the window is final
    start = Timestamp(end - window)
    in_window = sum(1 for r in s.rounds() if start <= r.timestamp <= end)
    data = s.hub.encode("twap", s.committee.feed_id, start, end, 10**15)
    receipt = s.chain.transact(s.hub.address, data)  # a view run as a transaction, for its gas
    return int(receipt.gas_used), in_window


def main() -> None:
    metrics: dict[str, int] = {}
    for n in SIZES:
        metrics.update(_report_gas(n))
    metrics["optimistic_post_gas"], metrics["optimistic_challenge_gas_n4"] = _optimistic_gas(4)
    metrics["optimistic_post_gas_n16"], metrics["optimistic_challenge_gas_n16"] = _optimistic_gas(16)
    metrics["optimistic_post_gas_ring_full"] = _optimistic_ring_full_gas()
    metrics["equivocation_proof_gas"], metrics["equivocation_proof_gas_report_statement"] = _equivocation_gas()
    metrics["round_dispute_gas_n4"], metrics["round_dispute_resolve_gas_n4"] = _dispute_gas()
    metrics["settlement_twap_gas_max_window"], metrics["settlement_twap_rounds_max_window"] = _twap_gas()
    for n in SIZES:
        f = (n - 1) // 3
        metrics[f"report_gas_n{n}_before"] = BEFORE[n]
        metrics[f"report_gas_n{n}_before_8d179ce"] = BEFORE_8D179CE[n]
        metrics[f"report_gas_n{n}_before_30e3e83"] = BEFORE_30E3E83[n]
        metrics[f"scribe_gas_at_{n}_signers"] = compute_scribe_gas(n)
        metrics[f"scribe_gas_at_{2 * f + 1}_signers"] = compute_scribe_gas(2 * f + 1)
    contract = [*(f"report_gas_n{n}" for n in SIZES), "optimistic_post_gas", "optimistic_challenge_gas_n16",
                "equivocation_proof_gas"]
    ordered = {k: metrics[k] for k in contract}
    ordered.update({k: v for k, v in metrics.items() if k not in ordered})
    comparison = "; ".join(
        f"n={n}: {metrics[f'report_gas_n{n}']:,} vs Scribe {compute_scribe_gas(n):,} at {n} signers, "
        f"{compute_scribe_gas(2 * ((n - 1) // 3) + 1):,} at {2 * ((n - 1) // 3) + 1} (our signatures)"
        for n in SIZES)
    write_result(
        "oracle", ordered,
        notes=("In-process EVM (prague, vyper " + VYPER_VERSION + "), gas_used from receipts. "
               "report_gas_n{n}: steady-state round, 2f+1 observations of which f+1 carry their "
               "members' report signatures and f their observation signatures (2f+1 ECDSA "
               "signatures, what an honest leader sends), the committee in calldata checked against "
               "its stored digest, signers named by position, signatures as (r, s) with v and the "
               "report-signed flag in the position byte, each observation one word; the round "
               f"overwrites the oldest slot of the feed's ring (a {RING}-slot hub here; gas does not "
               "depend on the ring size, the default is 2**16). _ring_filling: the same round while "
               "the ring has fresh slots (22,100-gas zero-to-nonzero store); _first_round: the feed's "
               "first round; _all_members: all n observations, all n report-signed; _before: the same "
               "figure at commit bfbd456 (a fresh slot per round, 3f+2 signatures); _before_8d179ce: "
               "before the compact transport; _before_30e3e83: before transmit kept its arguments "
               "in calldata (inlined; members, round and timestamp as unclamped words) and cut its "
               "second pass to the report-signed observations. Scribe verifies one aggregated Schnorr signature of "
               "`bar` signers over a single value and overwrites one slot; scribe_gas_at_{b}_signers "
               "is its published cost interpolated (not measured). Comparison: " + comparison + ". "
               "optimistic_post_gas: one member's post (its transaction is its signature, its oracle "
               "stake the bond; the stake is read from Bonds), after a verified round, any n, into a "
               "fresh slot; _ring_full: the same once the ring is full (the slot is overwritten); "
               "optimistic_challenge_gas_n{n}: 2f+1 signed observations proving a post wrong, incl. "
               "the Bonds slash with the challenger's reward transfer and the ban. "
               "round_dispute_gas_n4: dispute_round with f+1 report signatures as evidence, the bond "
               "pulled and posted through Assertions; _resolve: settling the undefended assertion, "
               "claiming its bond and slashing and banning the two signers. "
               "equivocation_proof_gas: two observations; _report_statement: an observation against "
               "a report signature stating another one (n = 4); both include the Bonds slash and the "
               "prover's token transfer. settlement_twap_gas_max_window: twap() over a "
               f"{DEFAULT_HUB.max_twap_window} s window with rounds every "
               f"{DEFAULT_HUB.min_round_interval} s (the loop bound), run as a transaction."),
        evm="in-process (titanoboa/py-evm, prague)",
    )


if __name__ == "__main__":
    main()
