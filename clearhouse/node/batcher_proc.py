"""A batcher node as its own process: the harness the crash-recovery tests kill and restart.

``python -m clearhouse.node.batcher_proc --db URL --chain URL --settlement ADDRESS --inbox FILE``
accepts the actions of ``FILE`` (JSON lines ``{"key": idempotency key, "items": [encoded batch
items]}``) in order the way the coordinator does — commit to the action log, queue the items,
acknowledge — ticking the batcher as it goes, then drives every batch to final. It speaks JSON
lines on stdout: ``{"ack": key, "seq": n}`` once an action is durable, ``{"batch": what, "number":
n, "header_hash": hex}`` for each outbox step, ``{"done": …}`` at the end. On start it first
re-queues the items of every logged action (a no-op for those already queued or batched), so a
crash anywhere loses nothing that was acknowledged and applies nothing twice.

It runs the simulated market world's settlement context (``clearhouse.sim``): a devnet and test
tool, not the production node. ``--advance-time`` moves a dev chain's clock past the challenge
window instead of waiting.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eth_account.signers.local import LocalAccount

from clearhouse.chain import Contract, RpcChain
from clearhouse.messages.keccak import keccak256
from clearhouse.node.batcher import Batcher, BatcherParams, decode_item
from clearhouse.node.failpoints import failpoint
from clearhouse.node.parameters import load_chain_parameters
from clearhouse.sim.market_world import build_listings
from clearhouse.sim.settlement_world import make_ctx
from clearhouse.store import BatchRecord, open_store
from clearhouse.types import Timestamp

__all__ = ["ACTION_KIND", "BatcherContracts", "main"]

ACTION_KIND = "batch_items"
"""The action-log kind of an action whose payload is ``{"items": [encoded items]}``."""


@dataclass(frozen=True, slots=True)
class BatcherContracts:
    """The deployment as the batcher sees it."""

    settlement: Contract
    """The Settlement contract."""
    coordinator: LocalAccount
    """The admitted coordinator that posts."""


def _say(**fields: Any) -> None:
    sys.stdout.write(json.dumps(fields, sort_keys=True) + "\n")
    sys.stdout.flush()


def _observe(what: str, record: BatchRecord) -> None:
    _say(batch=what, number=record.number, header_hash=keccak256(record.header).hex())


def _is_settled(batcher: Batcher) -> bool:
    batches = batcher.store.list_batches()
    return not batcher.store.list_pending_items() and all(b.status == "final" for b in batches)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the node until every action of the inbox is acknowledged and every batch is final."""
    parser = argparse.ArgumentParser(prog="python -m clearhouse.node.batcher_proc")
    parser.add_argument("--db", required=True, help="database URL (sqlite:///path or postgresql://…)")
    parser.add_argument("--chain", required=True, help="JSON-RPC URL")
    parser.add_argument("--settlement", required=True, help="Settlement contract address")
    parser.add_argument("--inbox", required=True, type=Path, help="actions, JSON lines")
    parser.add_argument("--coordinator-index", type=int, default=1,
                        help="which dev account posts (the deployment's coordinator)")
    parser.add_argument("--max-items", type=int, default=2)
    parser.add_argument("--tick-every", type=int, default=1, help="actions between two ticks")
    parser.add_argument("--advance-time", action="store_true",
                        help="dev chains: move the clock past the challenge window")
    parser.add_argument("--max-rounds", type=int, default=50)
    args = parser.parse_args(argv)

    store = open_store(args.db)
    chain = RpcChain(args.chain)
    contracts = BatcherContracts(chain.at("Settlement", args.settlement),
                                 chain.accounts[args.coordinator_index])
    listings, _ = build_listings()
    params = BatcherParams(make_ctx, {sid: listing.series for sid, listing in listings.items()},
                           max_items=args.max_items)
    batcher = Batcher(store, chain, contracts, params, observer=_observe)

    for action in store.iter_actions():  # recovery: re-queue what the log holds
        if action.kind == ACTION_KIND:
            batcher.add_items([decode_item(i) for i in action.payload["items"]])
    batcher.on_tick(chain.now())

    lines = [json.loads(line) for line in args.inbox.read_text().splitlines() if line.strip()]
    for n, line in enumerate(lines, start=1):
        record = store.append_action(ACTION_KIND, None, {"items": line["items"]}, line["key"])
        failpoint("action.committed")
        batcher.add_items([decode_item(i) for i in line["items"]])
        failpoint("items.queued")
        _say(ack=line["key"], seq=record.seq, duplicate=record.duplicate)
        if n % args.tick_every == 0:
            batcher.on_tick(chain.now())

    parameters = load_chain_parameters(chain, contracts.settlement)
    for _ in range(args.max_rounds):
        batcher.on_tick(Timestamp(chain.now()))
        if _is_settled(batcher):
            break
        if args.advance_time:
            chain.time_travel(parameters.get_windows(contracts.settlement)[0])
    settled = _is_settled(batcher)
    _say(done=settled, batches=len(store.list_batches()))
    store.close()
    return 0 if settled else 1


if __name__ == "__main__":
    raise SystemExit(main())
