"""Crash recovery of the real node: ``clearhouse node`` killed at each failpoint, then restarted.

The node is the program operators run (``clearhouse node --roles coordinator --db sqlite:///…
--chain <anvil> --deployment …``) as a subprocess, settling on a fresh deployment on anvil (the
chain outlives it). Two SDK clients deposit into the vault on chain, then drive it over HTTP: a
resting ask, a crossing bid (a trade), a withdrawal, a cancel — each with a fixed message and
idempotency key, so a retry is the same request. The first run is armed
(``CLEARHOUSE_FAILPOINT``): it dies at the named step (exit 137, or a real SIGKILL); the client
records which actions were acknowledged. Straight after the crash, every acknowledged action is in
the log exactly once and the one in flight at most once. The node restarts unarmed on the same
database and chain; the client retries what was in flight (same key) and goes on; the batches are
posted, the challenge window passes on anvil's clock and they are finalised. Then: every action is
in the log exactly once and each of its items in exactly one batch; batch numbers are contiguous in
the outbox and on chain; every batch stored before the crash kept its header (no number was ever
built twice with different contents) and each number was posted once, with the outbox's header;
and each trader verifies the node's proof of its account against the finalised root with the
SDK's light client.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest

from clearhouse.api.server import find_free_port
from clearhouse.chain import RpcChain
from clearhouse.chain.anvil import Anvil, find_anvil
from clearhouse.errors import ClearhouseError
from clearhouse.messages import Cancel, Domain, Order, Side, TimeInForce, Withdrawal, sign
from clearhouse.messages.keccak import keccak256
from clearhouse.node.coordinator import ACTION_KINDS
from clearhouse.node.failpoints import ENV_VAR, FAILPOINTS, KILLED_EXIT_CODE
from clearhouse.sdk import ChainAccess, Client
from clearhouse.sim import market_world as mw
from clearhouse.sim.chain_node import compute_deployment
from clearhouse.sim.settlement_chain import WINDOW, SettlementSystem, deploy
from clearhouse.store import open_store
from clearhouse.types import Amount, Digest, Nonce, Price, Quantity, Timestamp

pytestmark = pytest.mark.rpc

ROOT = Path(__file__).resolve().parents[2]
USDC = mw.USDC
DEPOSITS = (50_000 * USDC, 40_000 * USDC)
"""Alice's and Bob's deposits, quote base units (vault queue entries 0 and 1)."""

# Hits, counted from the node's start: action.committed — 1, 2 the deposits (credited on the first
# tick, before the API serves), 3 the ask, 4 the bid, 5 the withdrawal, 6 the cancel;
# items.queued — 1, 2 the deposits, 3 the trade, 4 the withdrawal, 5 the cancel. Batch 1 holds the
# two deposits; the HTTP actions go into batch 2 and later; finalisation follows the time travel.
CRASHES = ["action.committed@4", "items.queued@3", "batch.stored@2:sigkill", "batch.finalized@1"]
"""The default run: the two steps on the coordinator's path, a SIGKILL between storing and posting a
batch, and one after the finalize transaction (12–30 s a case, most of it two node start-ups)."""
SLOW_CRASHES = ["action.committed@1", "action.committed@6", "items.queued@4",
                "batch.built@1", "batch.stored@1", "batch.posted@1", "batch.posted@2",
                "batch.included@2", "batch.finalized@2"]


def test_every_failpoint_is_exercised() -> None:
    assert {c.split("@")[0] for c in CRASHES + SLOW_CRASHES} == set(FAILPOINTS)
    assert any(c.endswith(":sigkill") for c in CRASHES)


@pytest.fixture(scope="module")
def anvil_url() -> Iterator[str]:
    """One anvil for the module; each test deploys a fresh system on it (a block per transaction),
    then mines a block a second while the node runs, and puts it back (:func:`run`)."""
    if find_anvil() is None:
        if os.environ.get("CI"):
            pytest.fail("anvil is not installed: `make test` installs it (tools/js)")
        pytest.skip("anvil not installed (run `make setup-js`)")
    node = Anvil()
    yield node.url
    node.stop()


@dataclass
class Run:
    """One test's world: the deployment, the node process and what the clients were told."""

    url: str
    """anvil's JSON-RPC URL."""
    system: SettlementSystem
    db: str
    deployment_path: Path
    log: Path
    port: int = field(default_factory=find_free_port)
    process: subprocess.Popen[bytes] | None = None
    acked: list[str] = field(default_factory=list)
    """Idempotency keys the node acknowledged (a 2xx answer), in order."""
    in_flight: str | None = None
    """The key of the request the node died answering (if it died in one)."""

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, crash: str | None) -> None:
        env = {k: v for k, v in os.environ.items() if k != ENV_VAR}
        if crash is not None:
            env[ENV_VAR] = crash
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "clearhouse.cli", "node", "--roles", "coordinator", "--db", self.db,
                 "--chain", self.url, "--deployment", str(self.deployment_path), "--host", "127.0.0.1",
                 "--port", str(self.port), "--batch-interval", "1", "--tick", "0.2", "--log-level", "WARNING"],
                stdout=out, stderr=subprocess.STDOUT, env=env, cwd=ROOT)

    def dead(self) -> bool:
        return self.process is None or self.process.poll() is not None

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


class Crashed(Exception):
    """The node process ended (at its failpoint)."""


def _wait(run: Run, what: str, check: Callable[[], bool], timeout: float = 60) -> None:
    """Poll ``check`` until true; :class:`Crashed` as soon as the node is gone."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if run.dead():
            raise Crashed(what)
        try:
            if check():
                return
        except (httpx.HTTPError, ClearhouseError, KeyError, IndexError, sqlite3.Error):
            pass
        time.sleep(0.1)
    raise AssertionError(f"{what} within {timeout:.0f} s:\n{run.log.read_text()[-3000:]}")


def _pending_items(run: Run) -> int:
    """Items queued and not yet in a batch, read from the node's database (read-only)."""
    path = run.db.removeprefix("sqlite:///")
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5) as conn:
        row = conn.execute("SELECT count(*) FROM batch_queue WHERE batch_number IS NULL "
                           "AND rejected IS NULL").fetchone()
    return int(row[0])


def _statuses(run: Run) -> list[str]:
    batches = httpx.get(f"{run.api}/v1/batches", timeout=5).json()["batches"]
    return [str(b["status"]) for b in batches]


@dataclass(frozen=True)
class Step:
    """One HTTP action: who sends it, where, the signed body, and its idempotency key."""

    key: str
    who: int
    path: str
    body: dict[str, Any]


def _steps(domain: Domain, expiry: int) -> list[Step]:
    """The workload, every message fixed up front (a retry must be the very same request)."""
    _, series = mw.build_listings()
    alice, bob = mw.ADDRESSES[0], mw.ADDRESSES[1]
    messages: list[tuple[str, int, str, Any]] = [
        ("ask", 0, "/v1/orders", Order(alice, series[0], Side.SELL, Price(mw.px(120)), Quantity(300),
                                       TimeInForce.GTC, Nonce(1), Timestamp(expiry))),
        ("bid", 1, "/v1/orders", Order(bob, series[0], Side.BUY, Price(mw.px(121)), Quantity(100),
                                       TimeInForce.IOC, Nonce(2), Timestamp(expiry))),
        ("withdrawal", 0, "/v1/withdrawals", Withdrawal(alice, alice, Amount(1_000 * USDC), Nonce(3),
                                                        Timestamp(expiry))),
        ("cancel", 1, "/v1/cancels", Cancel(bob, Digest(bytes(32)), Nonce(4), Timestamp(expiry))),
    ]
    return [Step(key, who, path, {"message": m.to_typed_data(domain)["message"],
                                  "signature": "0x" + sign(domain, m, mw.KEYS[who]).hex()})
            for key, who, path, m in messages]


def _drive(run: Run, clients: list[Client], steps: list[Step]) -> None:
    """Bring the node up, send every step not acknowledged yet, wait until everything is batched,
    posted and (after the challenge window) final. Raises :class:`Crashed` if the node dies."""
    try:
        _drive_steps(run, clients, steps)
    except (httpx.TransportError, httpx.TimeoutException) as exc:  # the node died under a request
        if run.process is not None:
            run.process.wait(timeout=10)
        raise Crashed(run.in_flight or "a read") from exc


def _has_balance(client: Client) -> bool:
    return int(client.get_account()["balance"]) > 0


def _drive_steps(run: Run, clients: list[Client], steps: list[Step]) -> None:
    _wait(run, "the node answers", lambda: httpx.get(f"{run.api}/health", timeout=2).status_code == 200)
    for c in clients:
        c.sign_in()
        _wait(run, "the deposit credited", partial(_has_balance, c))
    _wait(run, "the deposits batched", lambda: _pending_items(run) == 0 and bool(_statuses(run)))
    for step in steps:
        if step.key in run.acked:
            continue
        run.in_flight = step.key
        clients[step.who].post(step.path, step.body, step.key)
        run.acked.append(step.key)
        run.in_flight = None
    _wait(run, "every item batched and posted", lambda: _pending_items(run) == 0 and all(
        s in ("included", "final") for s in _statuses(run)))
    run.system.chain.time_travel(WINDOW + 1)
    _wait(run, "every batch final", lambda: _pending_items(run) == 0 and all(
        s == "final" for s in _statuses(run)))


def _logged_keys(db: str) -> Counter[str]:
    store = open_store(db)
    try:
        return Counter(str(a.payload.get("idempotencyKey")) for a in store.iter_actions()
                       if a.kind in ACTION_KINDS)
    finally:
        store.close()


def _stored_headers(db: str) -> dict[int, bytes]:
    store = open_store(db)
    try:
        return {int(b.number): keccak256(b.header) for b in store.list_batches()}
    finally:
        store.close()


@pytest.fixture
def run(anvil_url: str, tmp_path: Path) -> Iterator[Run]:
    chain = RpcChain(anvil_url)
    system = deploy(chain, users=2)
    deployment = {**compute_deployment(system), "chain": anvil_url}
    path = tmp_path / "deployment.json"
    path.write_text(json.dumps(deployment))
    r = Run(anvil_url, system, f"sqlite:///{tmp_path / 'node.db'}", path, tmp_path / "node.log")
    yield r
    r.stop()
    chain.w3.provider.make_request("evm_setIntervalMining", [0])  # type: ignore[arg-type]
    chain.w3.provider.make_request("evm_setAutomine", [True])  # type: ignore[arg-type]
    chain.close()


def _clients(run: Run) -> list[Client]:
    deployment = json.loads(run.deployment_path.read_text())
    return [Client(run.api, mw.KEYS[i], chain=ChainAccess.connect(run.system.chain, deployment, mw.KEYS[i]))
            for i in (0, 1)]


def _crash_and_recover(run: Run, crash: str) -> None:
    s = run.system
    clients = _clients(run)
    try:
        for c, amount in zip(clients, DEPOSITS, strict=True):  # on chain, before the node starts
            s.token.transact("mint", c.account, amount)
            c.deposit(amount)
        # from now on a block a second, so chain time moves while the node waits to stamp a batch
        # (as on the devnet); the fixture puts anvil back to mining on each transaction
        assert isinstance(s.chain, RpcChain)
        s.chain.w3.provider.make_request("evm_setIntervalMining", [1])  # type: ignore[arg-type]
        steps = _steps(mw.DOMAIN, int(time.time()) + 86_400)

        run.start(crash)
        with pytest.raises(Crashed):
            _drive(run, clients, steps)
        assert run.process is not None
        rc = run.process.wait(timeout=10)
        expected = -signal.SIGKILL if crash.endswith(":sigkill") else KILLED_EXIT_CODE
        log = run.log.read_text()
        assert rc == expected, f"the failpoint did not fire (rc={rc}):\n{log[-3000:]}"
        assert f"failpoint {crash.split('@')[0].split(':')[0]}: killing the process" in log

        # straight after the crash: acknowledged once, in flight at most once
        logged = _logged_keys(run.db)
        assert all(logged[k] == 1 for k in run.acked), (run.acked, logged)
        if run.in_flight is not None:
            assert logged[run.in_flight] <= 1
        before = _stored_headers(run.db)

        run.start(None)  # unarmed, same database and chain; the client retries what was in flight
        _drive(run, clients, steps)
        assert [k for k in run.acked] == [st.key for st in steps]
        _check(run, clients, before)
    finally:
        for c in clients:
            c.close()


def _check(run: Run, clients: list[Client], before: dict[int, bytes]) -> None:
    s = run.system
    outbox = httpx.get(f"{run.api}/v1/batches", timeout=5).json()["batches"]
    proofs = [c.get_account_proof() for c in clients]
    accounts = [c.get_account() for c in clients]
    run.stop()
    assert run.process is not None and run.process.returncode == 0  # a graceful stop this time

    # every action exactly once: the two deposits (keyed by queue index) and the four HTTP actions
    logged = _logged_keys(run.db)
    keys = ["vault:deposit:0", "vault:deposit:1", "ask", "bid", "withdrawal", "cancel"]
    assert {k: logged[k] for k in keys} == dict.fromkeys(keys, 1)
    assert sum(logged.values()) == len(keys)

    store = open_store(run.db)
    try:
        records = store.list_batches()
        numbers = [b.number for b in records]
        assert numbers == list(range(1, len(records) + 1)) and len(records) >= 2
        assert [b["number"] for b in outbox] == numbers
        assert all(b.status == "final" for b in records)
        # each item in exactly one batch, none refused, none left: 2 deposits, the trade's fill,
        # the withdrawal, the cancel
        items = [q for n in numbers for q in store.list_batch_items(n)]
        assert all(q.rejected is None for q in items) and not store.list_pending_items()
        assert len(items) == 5 and max(Counter(q.item_key for q in items).values()) == 1
        headers = {int(b.number): keccak256(b.header) for b in records}
    finally:
        store.close()
    # a batch stored before the crash kept its header; each number was posted once, as stored
    assert all(headers[n] == h for n, h in before.items()), "a batch number was rebuilt differently"
    posted = [e for _, e in s.chain.get_events(s.settlement.address) if e.name == "BatchPosted"]
    assert [int(e.args["number"]) for e in posted] == numbers
    assert [bytes(e.args["header_hash"]) for e in posted] == [headers[n] for n in numbers]
    assert int(s.settlement.call("last_batch")) == int(s.settlement.call("last_finalized")) == len(numbers)

    # both accounts, as the node serves them, proven against the finalised root on chain
    for c, proof, account, held in zip(clients, proofs, accounts, (-100, 100), strict=True):
        assert proof["batch"] == len(numbers)
        assert c.verify_account(proof), f"{c.account}: the proof does not check against the chain"
        assert proof["balance"] == account["balance"]
        assert [int(p["quantity"]) for p in proof["positions"]] == [held], proof["positions"]
    assert int(accounts[0]["balance"]) < DEPOSITS[0] - 1_000 * USDC + 100 * mw.px(121)  # the withdrawal left
    lie = {**proofs[1], "balance": str(int(proofs[1]["balance"]) + 1)}
    assert not clients[1].verify_account(lie)


@pytest.mark.parametrize("crash", CRASHES)
def test_the_node_killed_at_a_failpoint_recovers(crash: str, run: Run) -> None:
    _crash_and_recover(run, crash)


@pytest.mark.slow
@pytest.mark.parametrize("crash", SLOW_CRASHES)
def test_the_node_killed_at_a_later_hit_recovers(crash: str, run: Run) -> None:
    _crash_and_recover(run, crash)
