"""Order-book throughput and latency: ``python -m benchmarks.matching``.

Workload: a fixed random stream of 10⁶ orders and cancels on two series from 20 funded accounts
(GTC 60 %, IOC 10 %, FOK 5 %, post-only 5 %, cancel by hash 20 %), prices within ±10 ticks of a
mid so that roughly half the orders trade. Signatures are made *before* the timed part (the
coordinator verifies on ingest, in batches across processes; a sample is verified here): the book
is fed pre-verified messages through ``process_verified_order`` / ``process_verified_cancel``.

Three matchers run the same stream in the same process:

* ``book``: the book with the real risk hook (``Portfolios``: the exact max-loss requirement of
  both sides before every fill, kept incrementally, then the ledger update);
* ``book_no_risk``: the same book with a risk hook that accepts everything (pure matching cost);
* ``reference``: a naive matcher that keeps each series' orders in one list and, for every
  incoming order, sorts the crossing orders by price then arrival and walks them (same rules:
  price-time priority, partial fills, GTC/IOC/FOK/post-only, cancel-resting self-trade
  prevention; no risk, no nonces, no fill tracking). Its cost grows with the resting book, so it
  runs on a prefix of the stream.

The two books must produce the same trades on the whole stream, and the reference the same
trades as the book on its prefix (``trades_match_reference``).
"""

from __future__ import annotations

import contextlib
import gc
import os
import random
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from coincurve import PrivateKey
from eth_account import Account

from benchmarks._common import write_result
from clearhouse import _native
from clearhouse.market import book as book_module
from clearhouse.market.book import Book, process_verified_cancel, process_verified_order
from clearhouse.market.collateral import (
    Listing,
    Portfolios,
    PositionDelta,
    process_deposit,
    process_list_series,
)
from clearhouse.market.instruments import (
    Expiry,
    ListingRules,
    Market,
    OptionKind,
    Pair,
    Series,
    compute_expiry_timestamp,
    process_list_expiry,
)
from clearhouse.market.trades import Signed, Trade, compute_book_trade
from clearhouse.messages import (
    Cancel,
    Domain,
    Order,
    Side,
    TimeInForce,
    compute_order_digest,
)
from clearhouse.messages.signing import verify_digest
from clearhouse.types import (
    Address,
    Amount,
    ChainId,
    Digest,
    Nonce,
    Price,
    Quantity,
    SeriesId,
    Timestamp,
)

OPS = 1_000_000
REFERENCE_OPS = 20_000
"""The naive reference scans the whole resting book per order: it runs on this prefix."""
REPEATS = 3
ACCOUNTS = 20
SEED = 20_270_104
USDC = 10**6
TICK = Price(10_000)
MID = Price(150 * USDC)
UNIT = 100
NOW = compute_expiry_timestamp(2027, 1, 4)
EXPIRY = compute_expiry_timestamp(2027, 3, 26)
DOMAIN = Domain("clearhouse", "1", ChainId(31337), Address("0x" + "c0" * 20))
PAIR = Pair("ETH", "USDC", 6)
RULES = ListingRules(strike_step=Price(100 * USDC), premium_tick=TICK, contract_unit=UNIT)

Op = tuple[str, Any]
"""``("order", Signed[Order])`` or ``("cancel", Cancel)``."""


class AcceptAll:
    """A risk hook that accepts every fill and records nothing (pure matching cost); a
    ``MoveRiskHook``, like ``Portfolios``, so both books take the same path."""

    def check_fill(self, account: Address, deltas: Sequence[PositionDelta], cash: int) -> None:
        return None

    def apply_fill(self, account: Address, deltas: Sequence[PositionDelta], cash: int) -> None:
        return None

    def check_move(self, account: Address, series_id: SeriesId, quantity: int, cash: int) -> None:
        return None

    def apply_move(self, account: Address, series_id: SeriesId, quantity: int, cash: int) -> None:
        return None


# --- workload ----------------------------------------------------------------------------------


def _listings() -> tuple[dict[SeriesId, Listing], list[SeriesId]]:
    market = process_list_expiry(Market(PAIR, RULES), Expiry(PAIR, EXPIRY, Price(10_000 * USDC)))
    listings: dict[SeriesId, Listing] = {}
    ids = [process_list_series(listings, market, Series(PAIR, EXPIRY, Price(k * USDC), kind))
           for k, kind in ((3000, OptionKind.CALL), (3000, OptionKind.PUT))]
    return listings, ids


def _sign(key: PrivateKey, digest: bytes) -> bytes:
    """``sign_digest`` with the key object kept (the workload signs 10⁶ orders)."""
    rsv = key.sign_recoverable(digest, hasher=None)
    return rsv[:64] + bytes((rsv[64] + 27,))


def _workload(series: list[SeriesId], n: int = OPS) -> tuple[list[Op], list[Address]]:
    """The op stream, signed (untimed), as pre-verified messages; a sample of the signatures is
    verified."""
    rng = random.Random(SEED)
    keys = [rng.randbytes(32) for _ in range(ACCOUNTS)]
    signers = [PrivateKey(k) for k in keys]
    addresses = [Address(Account.from_key(k).address) for k in keys]
    ops: list[Op] = []
    placed: list[tuple[int, Digest]] = []
    tifs = [TimeInForce.GTC] * 12 + [TimeInForce.IOC] * 2 + [TimeInForce.FOK, TimeInForce.POST_ONLY]
    for nonce in range(n):
        who = rng.randrange(ACCOUNTS)
        if placed and rng.random() < 0.2:
            owner, digest = placed[rng.randrange(len(placed))]
            ops.append(("cancel", Cancel(addresses[owner], digest, Nonce(10**9 + nonce),
                                         Timestamp(NOW + 3600))))
            continue
        side = rng.choice((Side.BUY, Side.SELL))
        offset = rng.randint(-10, 10) * (1 if side is Side.BUY else -1) - 2
        order = Order(addresses[who], rng.choice(series), side, Price(MID + offset * TICK),
                      Quantity(rng.randint(1, 10) * 10), rng.choice(tifs), Nonce(nonce),
                      Timestamp(NOW + 86_400))
        digest = compute_order_digest(DOMAIN, order)
        ops.append(("order", Signed(order, _sign(signers[who], digest), digest)))
        placed.append((who, digest))
    for kind, payload in rng.sample(ops, min(len(ops), 1000)):
        if kind == "order":
            verify_digest(payload.digest, payload.signature, payload.message.account)
    return ops, addresses


# --- the book ----------------------------------------------------------------------------------


def _new_book(listings: dict[SeriesId, Listing], accounts: list[Address], risk: bool) -> Book:
    if not risk:
        return Book(DOMAIN, listings, AcceptAll())
    portfolios = Portfolios(listings, UNIT)
    for account in accounts:
        process_deposit(portfolios, account, Amount(10**9 * USDC))
    return Book(DOMAIN, listings, portfolios)


def _run_book(book: Book, ops: list[Op], trades: list[tuple[Digest, Digest, int, int]] | None
              = None) -> int:
    now = Timestamp(NOW)
    for kind, payload in ops:
        if kind == "cancel":
            process_verified_cancel(book, payload)
            continue
        try:
            result = process_verified_order(book, payload, now)
        except ValueError:  # FOK unfilled, post-only crossing: refused orders are ops too
            continue
        if trades is not None:
            trades.extend((t.maker_auth.digest, t.taker_auth.digest, t.price, t.quantity)
                          for t in result.trades)
    return len(ops)


def _latencies_us(book: Book, ops: list[Op]) -> list[float]:
    now = Timestamp(NOW)
    out = []
    for kind, payload in ops:
        start = time.perf_counter_ns()
        try:
            if kind == "cancel":
                process_verified_cancel(book, payload)
            else:
                process_verified_order(book, payload, now)
        except ValueError:
            pass
        out.append((time.perf_counter_ns() - start) / 1000)
    return out


# --- what a native book would still pay -------------------------------------------------------


class _RecordingRisk:
    """Forwards the risk hook's calls to ``inner`` and records them (method name, arguments)."""

    _HOOK = frozenset({"check_fill", "apply_fill", "check_move", "apply_move"})

    def __init__(self, inner: Portfolios, calls: list[tuple[str, tuple[Any, ...]]]) -> None:
        self.inner, self.calls = inner, calls

    def __getattr__(self, name: str) -> Callable[..., None]:
        if name not in self._HOOK:
            raise AttributeError(name)
        method = getattr(self.inner, name)

        def recorded(*args: Any) -> None:
            self.calls.append((name, args))
            method(*args)
        return recorded


def _boundary_seconds(listings: dict[SeriesId, Listing], accounts: list[Address], ops: list[Op]
                      ) -> tuple[float, float]:
    """CPU seconds of the two parts of a run that are not the book's own logic, each replayed
    alone: every call the book made to the risk ledger (``Portfolios``, on the same funded
    accounts, refusals included), and building every ``Trade`` it returned (fill id included).
    A book with no cost of its own would still spend their sum on this stream."""
    calls: list[tuple[str, tuple[Any, ...]]] = []
    book = _new_book(listings, accounts, True)
    book.risk = _RecordingRisk(book.risk, calls)  # type: ignore[arg-type]
    trades: list[Trade] = []
    now = Timestamp(NOW)
    for kind, payload in ops:
        if kind == "cancel":
            process_verified_cancel(book, payload)
            continue
        with contextlib.suppress(ValueError):
            trades.extend(process_verified_order(book, payload, now).trades)
    ledger = _new_book(listings, accounts, True).risk
    start = time.process_time()
    for name, args in calls:
        with contextlib.suppress(ValueError):
            getattr(ledger, name)(*args)
    risk = time.process_time() - start
    start = time.process_time()
    for t in trades:
        compute_book_trade(cast(Signed[Order], t.taker_auth), cast(Signed[Order], t.maker_auth), Quantity(0),
                           t.quantity, t.premium, t.time, t.maker_fee, t.taker_fee)
    return risk, time.process_time() - start


# --- the naive reference -----------------------------------------------------------------------


@dataclass
class _RefOrder:
    digest: Digest
    account: Address
    side: Side
    price: int
    left: int
    seq: int


@dataclass
class _Reference:
    books: dict[SeriesId, list[_RefOrder]] = field(default_factory=dict)
    seq: int = 0


def _ref_crossing(ref: _Reference, order: Order) -> list[_RefOrder]:
    resting = ref.books.setdefault(order.series_id, [])
    if order.side is Side.BUY:
        found = [r for r in resting if r.side is Side.SELL and r.price <= order.price]
        return sorted(found, key=lambda r: (r.price, r.seq))
    found = [r for r in resting if r.side is Side.BUY and r.price >= order.price]
    return sorted(found, key=lambda r: (-r.price, r.seq))


def _ref_order(ref: _Reference, signed: Signed[Order],
               trades: list[tuple[Digest, Digest, int, int]] | None) -> None:
    order = signed.message
    crossing = _ref_crossing(ref, order)
    resting = ref.books[order.series_id]
    if order.time_in_force is TimeInForce.POST_ONLY and crossing:
        return
    if order.time_in_force is TimeInForce.FOK and sum(
            r.left for r in crossing if r.account != order.account) < order.quantity:
        return
    left: int = order.quantity
    for r in crossing:
        if left == 0:
            break
        if r.account == order.account:
            resting.remove(r)
            continue
        q = min(left, r.left)
        r.left -= q
        left -= q
        if trades is not None:
            trades.append((r.digest, signed.digest, r.price, q))
        if r.left == 0:
            resting.remove(r)
    if left and order.time_in_force in (TimeInForce.GTC, TimeInForce.POST_ONLY):
        ref.seq += 1
        resting.append(_RefOrder(signed.digest, order.account, order.side, order.price, left, ref.seq))


def _ref_cancel(ref: _Reference, cancel: Cancel) -> None:
    for resting in ref.books.values():
        for r in resting:
            if r.digest == cancel.order_hash and r.account == cancel.account:
                resting.remove(r)
                return


def _run_reference(ops: list[Op], trades: list[tuple[Digest, Digest, int, int]] | None = None
                   ) -> int:
    ref = _Reference()
    for kind, payload in ops:
        if kind == "cancel":
            _ref_cancel(ref, payload)
        else:
            _ref_order(ref, payload, trades)
    return len(ops)


# --- main ----------------------------------------------------------------------------------------


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _measure(run: Callable[[], int]) -> tuple[float, float]:
    """Ops per CPU-second and per wall-clock second of one run. The process is single-threaded:
    its CPU time is one core's work, unaffected by other tenants of the shared cores taking turns
    (the wall-clock figure is not)."""
    start, start_cpu = time.perf_counter(), time.process_time()
    n = run()
    return n / (time.process_time() - start_cpu), n / (time.perf_counter() - start)


def _medians(runs: list[tuple[float, float]]) -> tuple[float, float]:
    return statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs)


def main() -> None:
    started = time.monotonic()
    load = os.getloadavg()[0]
    listings, series = _listings()
    ops, accounts = _workload(series)
    workload_s = time.monotonic() - started
    gc.collect()
    gc.freeze()  # the input stream is not the book's state: keep it out of the collector's scans
    book_trades: list[tuple[Digest, Digest, int, int]] = []
    plain_trades: list[tuple[Digest, Digest, int, int]] = []
    final = _new_book(listings, accounts, True)
    _run_book(final, ops, book_trades)  # the warm-up runs double as the trade records
    _run_book(_new_book(listings, accounts, False), ops, plain_trades)
    runs: dict[bool, list[tuple[float, float]]] = {True: [], False: []}
    for _ in range(REPEATS):  # interleaved, so that a change of load hits both alike
        for risk in (True, False):
            def run(risk: bool = risk) -> int:
                return _run_book(_new_book(listings, accounts, risk), ops)
            runs[risk].append(_measure(run))
    book_rate, book_wall = _medians(runs[True])
    no_risk_rate, no_risk_wall = _medians(runs[False])
    latencies = _latencies_us(_new_book(listings, accounts, True), ops)
    risk_s, trades_s = _boundary_seconds(listings, accounts, ops)
    prefix = ops[:REFERENCE_OPS]
    prefix_trades: list[tuple[Digest, Digest, int, int]] = []
    ref_trades: list[tuple[Digest, Digest, int, int]] = []
    _run_book(_new_book(listings, accounts, True), prefix, prefix_trades)
    _run_reference(prefix, ref_trades)
    reference_rate, reference_wall = _medians(
        [_measure(lambda: _run_reference(prefix)) for _ in range(REPEATS)])
    write_result("matching", {
        "book_ops_per_s": round(book_rate),
        "op_latency_p50_us": round(statistics.median(latencies), 2),
        "op_latency_p99_us": round(_percentile(latencies, 0.99), 2),
        "reference_ops_per_s": round(reference_rate),
        "book_ops_per_s_no_risk": round(no_risk_rate),
        "book_ops_per_s_best": round(max(r[0] for r in runs[True])),
        "book_ops_per_s_no_risk_best": round(max(r[0] for r in runs[False])),
        "ratio_book_to_reference": round(book_rate / reference_rate, 2),
        "risk_ledger_us_per_op": round(risk_s * 1e6 / len(ops), 3),
        "trade_objects_us_per_op": round(trades_s * 1e6 / len(ops), 3),
        "book_us_per_op": round(1e6 / book_rate, 3),
        "ops_per_s_without_risk_ledger_and_trades": round(len(ops) / (len(ops) / book_rate - risk_s - trades_s)),
        "ratio_book_no_risk_to_reference": round(no_risk_rate / reference_rate, 2),
        "book_ops_per_s_wall": round(book_wall),
        "book_ops_per_s_no_risk_wall": round(no_risk_wall),
        "reference_ops_per_s_wall": round(reference_wall),
        "ops": len(ops),
        "reference_ops": len(prefix),
        "trades": len(book_trades),
        "resting_orders_at_end": len(final.resting),
        "trades_match_reference": book_trades == plain_trades and prefix_trades == ref_trades,
        "compiled": _native.is_native(book_module),
        "workload_seconds": round(workload_s, 1),
        "load_average_1min_at_start": round(load, 2),
        "total_seconds": round(time.monotonic() - started, 1),
    }, notes=(
        "Book ops on pre-verified messages (signatures made before the timed part, a sample "
        "verified, as the coordinator verifies on ingest with batch verification); an op is an "
        "order (GTC/IOC/FOK/post-only, refusals included) or a cancel by hash; one core, one "
        "process. compiled: the book, the ledger and the max-loss cache (clearhouse._native.MODULES) "
        "ran as the mypyc build of make setup (false: the pure Python fallback, e.g. "
        "CLEARHOUSE_PURE=1). book_ops_per_s and the latencies INCLUDE the exact max-loss check of both "
        "sides before every fill (and of the whole order at its limit price on arrival) and the "
        "ledger update, with clearhouse.market.collateral.Portfolios: the requirement is kept "
        "incrementally per (account, expiry) as exact integer payoffs at the kinks, a check first "
        "tries an exact O(1) sufficient bound (a purchase never lowers the payoff at a kink; a "
        "sale lowers it by at most |q| x the largest intrinsic value) and otherwise evaluates the "
        "kinks of that expiry (accounts here are funded so that the bound settles almost every "
        "check); the book asks the ledger about each account's netted move as plain integers "
        "(MoveRiskHook.check_move / apply_move). book_ops_per_s_no_risk uses an accept-all risk "
        "hook on the same path. Each fill builds a Trade with its keccak fill id "
        "(pycryptodome's C Keccak through ctypes: about a sixth of the time). Goal (issue #3): "
        "200,000 ops/s. risk_ledger_us_per_op and trade_objects_us_per_op: CPU time per op of "
        "replaying alone, on the same stream, every call the book made to the risk ledger and "
        "building every Trade it returned (fill id included): what a book whose own logic cost "
        "nothing would still pay (book_us_per_op is the whole); "
        "ops_per_s_without_risk_ledger_and_trades is the book's rate with those two taken out. "
        "reference_ops_per_s is a naive list-scan matcher (sort the "
        "crossing orders on every op) with the same rules and no risk, nonces or fill tracking, "
        f"run on the first {REFERENCE_OPS:,} ops of the same stream in the same process (on the "
        "whole stream it would take hours: its cost grows with the resting book). "
        f"{OPS:,} ops, {ACCOUNTS} accounts, 2 series, seed {SEED}; rates are medians (*_best: the best) of "
        f"{REPEATS} runs after a warm-up run (the warm-up records the trades compared), in ops "
        "per CPU-second of this single-threaded process (one core's work; the *_wall keys are "
        "the same runs per wall-clock second, lower when other tenants share the two cores: see "
        "load_average_1min_at_start); p50/p99 from one more run timing each op with "
        "perf_counter_ns (wall clock, so descheduling shows in p99). The input stream is frozen "
        "out of the garbage collector (gc.freeze); the book's own objects are collected "
        "normally."))


if __name__ == "__main__":
    main()
