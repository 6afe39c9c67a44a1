"""Crash recovery: a batcher node process killed at each failpoint, then restarted.

The node (``python -m clearhouse.node.batcher_proc``) runs against anvil, so the chain outlives
it, and against a real database (SQLite file; PostgreSQL too). The first run is killed at a named
failpoint (``CLEARHOUSE_FAILPOINT``: ``os._exit(137)``, or SIGKILL); the second run, unarmed,
must finish the job. Then: every acknowledged action is in the log exactly once and each of its
items in exactly one batch; batch numbers are contiguous in the outbox and on chain; no number
was ever stored or posted with two different headers; every batch is final; and the final
accounts equal one spec run over all the items, proven against the contract's finalised root.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from clearhouse.chain import RpcChain
from clearhouse.chain.anvil import Anvil
from clearhouse.merkle.sparse import is_included
from clearhouse.messages.keccak import keccak256
from clearhouse.node.batcher import Batcher, BatcherParams, compute_item_key, encode_item
from clearhouse.node.batcher_proc import BatcherContracts
from clearhouse.node.failpoints import ENV_VAR, FAILPOINTS, KILLED_EXIT_CODE
from clearhouse.settlement import build_batch, compute_genesis_state
from clearhouse.settlement.state import ACCOUNT_TREE_DEPTH, compute_account_hash
from clearhouse.sim.batcher_scenario import ACCOUNTS, DEPOSIT_USDC, make_actions, make_series
from clearhouse.sim.settlement_chain import SettlementSystem, deploy
from clearhouse.sim.settlement_world import NOW, make_ctx
from clearhouse.store import open_store
from clearhouse.types import AccountId

pytestmark = pytest.mark.rpc

ROOT = Path(__file__).resolve().parents[2]

# Each failpoint at its first hit and, where the run reaches it more than once, at a later one
# (after earlier batches went all the way), plus one real SIGKILL.
CRASHES = [
    "action.committed@1", "action.committed@6", "items.queued@1", "items.queued@7",
    "batch.built@1", "batch.built@3", "batch.stored@1", "batch.stored@3",
    "batch.posted@1", "batch.posted@3", "batch.included@2", "batch.finalized@1",
    "batch.finalized@4", "batch.stored@2:sigkill",
]
PG_CRASHES = ["action.committed@6", "batch.stored@3", "batch.posted@3", "batch.finalized@1"]


def test_every_failpoint_is_exercised() -> None:
    assert {c.split("@")[0] for c in CRASHES} == set(FAILPOINTS)


@pytest.fixture
def deployment(rpc_chain: RpcChain) -> SettlementSystem:
    s = deploy(rpc_chain)
    for i in range(ACCOUNTS):
        s.deposit(i, DEPOSIT_USDC)
    s.sync_time(NOW + 10)
    return s


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'node.db'}"


@pytest.fixture
def pg_database(postgres_url: str) -> Iterator[str]:
    name = f"crash_{uuid.uuid4().hex[:12]}"
    admin = create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    yield make_url(postgres_url).set(database=name).render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _write_inbox(path: Path, s: SettlementSystem) -> list[dict[str, Any]]:
    lines = [{"key": f"action-{n}", "items": [encode_item(i) for i in items]}
             for n, items in enumerate(make_actions(s.deposits))]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return lines


def _run(db: str, anvil: Anvil, s: SettlementSystem, inbox: Path, crash: str | None
         ) -> tuple[int, list[dict[str, Any]], str]:
    env = {k: v for k, v in os.environ.items() if k != ENV_VAR}
    if crash is not None:
        env[ENV_VAR] = crash
    done = subprocess.run(
        [sys.executable, "-m", "clearhouse.node.batcher_proc", "--db", db, "--chain", anvil.url,
         "--settlement", s.settlement.address, "--inbox", str(inbox), "--max-items", "2",
         "--advance-time"],
        capture_output=True, text=True, env=env, cwd=ROOT, timeout=600, check=False)
    return done.returncode, [json.loads(line) for line in done.stdout.splitlines()], done.stderr


def _crash_and_recover(db: str, anvil: Anvil, s: SettlementSystem, tmp_path: Path, crash: str) -> None:
    inbox = tmp_path / "inbox.jsonl"
    actions = _write_inbox(inbox, s)
    rc, first, err = _run(db, anvil, s, inbox, crash)
    killed = -signal.SIGKILL if crash.endswith(":sigkill") else KILLED_EXIT_CODE
    assert rc == killed, f"the failpoint did not fire (rc={rc}): {err[-3000:]}"
    assert f"failpoint {crash.split('@')[0]}" in err
    rc, second, err = _run(db, anvil, s, inbox, None)
    assert rc == 0, err[-3000:]
    assert second[-1] == {"done": True, "batches": second[-1]["batches"]}
    _check(db, s, actions, first + second)


def _check(db: str, s: SettlementSystem, actions: list[dict[str, Any]], said: list[dict[str, Any]]) -> None:
    store = open_store(db)
    try:
        # every acknowledged action is in the log exactly once; so is every action (all acked now)
        acked = {line["ack"] for line in said if "ack" in line}
        assert acked == {a["key"] for a in actions}
        logged = Counter(json.dumps(a.payload["items"], sort_keys=True) for a in store.iter_actions())
        assert sorted(logged.values()) == [1] * len(actions)
        assert set(logged) == {json.dumps(a["items"], sort_keys=True) for a in actions}
        # each item in exactly one batch, none refused, none pending
        outbox = store.list_batches()
        numbers = [b.number for b in outbox]
        assert numbers == list(range(1, len(outbox) + 1)) and len(outbox) >= 4
        taken = Counter(q.item_key for n in numbers for q in store.list_batch_items(n))
        assert all(q.rejected is None for n in numbers for q in store.list_batch_items(n))
        expected = Counter(compute_item_key(i) for a in actions for i in a["items"])
        assert taken == expected and not store.list_pending_items()
        # one header per number, ever: what was stored and posted is what the chain holds
        for number in numbers:
            hashes = {line["header_hash"] for line in said
                      if line.get("number") == number and line.get("batch") in ("stored", "posted")}
            assert hashes <= {keccak256(outbox[number - 1].header).hex()}
        settlement = s.settlement
        assert int(settlement.call("last_batch")) == int(settlement.call("last_finalized")) == len(outbox)
        posted = [e for _, e in s.chain.get_events(settlement.address) if e.name == "BatchPosted"]
        assert [int(e.args["number"]) for e in posted] == numbers
        for record, event in zip(outbox, posted, strict=True):
            assert bytes(event.args["header_hash"]) == keccak256(record.header)
            assert record.status == "final"
        # the final accounts are one spec run over every item, proven against the chain's root
        batcher = Batcher(store, s.chain, BatcherContracts(settlement, s.coordinator),
                          BatcherParams(make_ctx, make_series()))
        batcher.recover()
        items = [i for items in make_actions(s.deposits) for i in items]
        whole = build_batch(compute_genesis_state(), items, make_ctx(NOW + 10), make_series(), k=4)
        assert dict(batcher.state.accounts) == dict(whole.result.state.accounts)
        root = bytes(settlement.call("batch_root", len(outbox)))
        for account_id in range(ACCOUNTS):
            proof = batcher.get_account_proof(AccountId(account_id))
            assert proof.state_root == root and proof.leaf == whole.result.state.accounts[AccountId(account_id)]
            assert is_included(proof.preimage[:32], account_id, compute_account_hash(proof.leaf),
                               proof.proof, ACCOUNT_TREE_DEPTH)
    finally:
        store.close()


@pytest.mark.parametrize("crash", CRASHES)
def test_killed_at_a_failpoint_and_restarted_on_sqlite(
        crash: str, sqlite_url: str, anvil: Anvil, deployment: SettlementSystem, tmp_path: Path) -> None:
    _crash_and_recover(sqlite_url, anvil, deployment, tmp_path, crash)


@pytest.mark.parametrize("crash", PG_CRASHES)
def test_killed_at_a_failpoint_and_restarted_on_postgres(
        crash: str, pg_database: str, anvil: Anvil, deployment: SettlementSystem, tmp_path: Path) -> None:
    _crash_and_recover(pg_database, anvil, deployment, tmp_path, crash)


def test_an_uninterrupted_run_then_a_rerun_changes_nothing(
        sqlite_url: str, anvil: Anvil, deployment: SettlementSystem, tmp_path: Path) -> None:
    """The control: no crash, then the same inbox again (every action a duplicate, no new batch)."""
    inbox = tmp_path / "inbox.jsonl"
    actions = _write_inbox(inbox, deployment)
    rc, first, err = _run(sqlite_url, anvil, deployment, inbox, None)
    assert rc == 0, err[-3000:]
    rc, second, err = _run(sqlite_url, anvil, deployment, inbox, None)
    assert rc == 0, err[-3000:]
    assert all(line["duplicate"] for line in second if "ack" in line)
    assert not any("batch" in line for line in second)
    assert first[-1] == second[-1]
    _check(sqlite_url, deployment, actions, first + second)
