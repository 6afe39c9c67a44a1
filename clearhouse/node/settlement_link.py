"""The coordinator on a chain: the vault's queues in, batches out, account proofs served.

Each :meth:`SettlementLink.on_tick` reads the vault's ``Deposited`` and
``ForcedWithdrawalRequested`` events and handles every entry not handled yet, in chain order: a
deposit is credited to the coordinator (a logged action keyed by its queue index, so a rescan after
a restart applies nothing twice) and queued for the batcher; a forced withdrawal debits what the
batch will pay (``min(requested, free collateral)``) and is queued the same way. Both are queued
before anything the coordinator accepts later, so the batcher consumes the queues in order. Then
the batcher builds, posts and finalises (``Batcher.on_tick``; its first tick reconciles the outbox
with the chain). Runs on the coordinator's thread: it changes the coordinator's state.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any

from eth_account.signers.local import LocalAccount

from clearhouse.chain import Chain, Contract
from clearhouse.chain.base import Event
from clearhouse.errors import ConfigError, NotFound
from clearhouse.market.collateral import Listing
from clearhouse.market.instruments import Series
from clearhouse.node.batcher import AccountProof, Batcher, BatcherParams
from clearhouse.node.coordinator import Coordinator
from clearhouse.node.expiries import (
    ExpiryKeeper,
    RegistryExpiries,
    compute_registry_context,
    load_deployment_context,
)
from clearhouse.node.failpoints import failpoint
from clearhouse.node.parameters import ChainParameters, PauseMonitor, load_chain_parameters
from clearhouse.settlement import QueuedDeposit, QueuedForcedWithdrawal, SettlementContext
from clearhouse.settlement.state import Position, encode_account
from clearhouse.types import AccountId, Address, Amount, Price, SeriesId, Timestamp

__all__ = ["ChainContracts", "QueueEntry", "SettlementLink", "build_settlement_link", "compute_proof_json",
           "load_chain_contracts", "run_link_loop"]

log = logging.getLogger("clearhouse.node.settlement")


@dataclass(frozen=True, slots=True)
class ChainContracts:
    """What the coordinator needs of a deployment (``Batcher``'s ``SettlementContracts``)."""

    settlement: Contract
    """The ``Settlement`` contract."""
    vault: Contract
    """The ``Vault`` whose queues the batches consume."""
    coordinator: LocalAccount
    """The admitted (bonded) coordinator account that posts and finalises."""


def load_chain_contracts(chain: Chain, deployment: Mapping[str, Any]) -> ChainContracts:
    """The contracts of a deployment description (``clearhouse devnet``'s ``deployment.json``):
    ``settlement.{settlement,vault}`` addresses and ``coordinator.key``; :class:`ConfigError` if
    one is missing or the key is not the contract's coordinator."""
    from eth_account import Account

    try:
        s = deployment["settlement"]
        settlement, vault = chain.at("Settlement", s["settlement"]), chain.at("Vault", s["vault"])
        account: LocalAccount = Account.from_key(deployment["coordinator"]["key"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f"the deployment lacks the coordinator's contracts or key: {exc}",
                          field="deployment") from exc
    expected = str(settlement.call("coordinator"))
    if expected.lower() != account.address.lower():
        raise ConfigError(f"the deployment's coordinator key is {account.address}, the settlement "
                          f"admits {expected}", field="coordinator")
    return ChainContracts(settlement, vault, account)


@dataclass(frozen=True, slots=True)
class QueueEntry:
    """One vault queue entry as its event reports it."""

    kind: str
    """``deposit`` or ``forced``."""
    index: int
    """Position in its queue."""
    account: AccountId
    """The vault's account id of ``owner``."""
    owner: Address
    """Who deposited or requested."""
    amount: Amount
    """Deposited or requested, quote base units."""


def _entry(event: Event) -> QueueEntry | None:
    a = event.args
    if event.name == "Deposited":
        return QueueEntry("deposit", int(a["index"]), AccountId(int(a["account"])), Address(str(a["owner"])),
                          Amount(int(a["amount"])))
    if event.name == "ForcedWithdrawalRequested":
        return QueueEntry("forced", int(a["index"]), AccountId(int(a["account"])), Address(str(a["owner"])),
                          Amount(int(a["requested"])))
    return None


class SettlementLink:
    """The coordinator's chain side: vault queues → coordinator + batcher; batcher ticks; proofs."""

    def __init__(self, coordinator: Coordinator, batcher: Batcher, vault: Contract,
                 parameters: ChainParameters | None = None, keeper: ExpiryKeeper | None = None) -> None:
        self.coordinator, self.batcher, self.vault = coordinator, batcher, vault
        self.chain: Chain = batcher.chain
        self.parameters = parameters or ChainParameters(None)
        """The deployment's governed parameters (the fee schedule is read from them)."""
        self.keeper = keeper
        """Settles the market's expiries from the deployment's ``ExpiryRegistry`` (``None``: none)."""
        self.next_index: dict[str, int] = {"deposit": 0, "forced": 0}
        """The next queue index to handle, per queue."""
        self.ids: dict[Address, AccountId] = {}
        """The vault's account id of every depositor seen (lower-case address keys)."""
        self._cursor = 0
        self._offset: int | None = None

    def start(self) -> int:
        """Attach the batcher to the coordinator; call once, after ``coordinator.replay()``. The
        items replay made (kept in ``coordinator.pending``: no batcher was attached) are queued
        again — the ones already queued are skipped by key, so only those of an action committed
        just before a crash, and never queued, are added (at the end of the queue, where they
        belong). Returns how many were added."""
        items, self.coordinator.pending = list(self.coordinator.pending), []
        added = self.batcher.add_items(items) if items else 0
        self.coordinator.batcher = self.batcher
        return added

    # --- time ----------------------------------------------------------------------------------

    def now(self) -> int:
        """The coordinator's clock, unix seconds: chain time (in-process: exactly the chain's; over
        JSON-RPC: the wall clock shifted to the last block's time, re-read every tick), so nothing
        the coordinator accepts is timed after the block a batch with it is posted in."""
        if self.chain.backend == "inprocess":
            return int(self.chain.now())
        if self._offset is None:
            self._sync_clock()
        return int(time.time()) + int(self._offset or 0)

    def _sync_clock(self) -> None:
        """Re-read the chain's time; the offset only grows, so the clock never runs backwards."""
        if self.chain.backend != "inprocess":
            fresh = int(self.chain.now()) - int(time.time())
            self._offset = fresh if self._offset is None else max(self._offset, fresh)

    # --- the handler ---------------------------------------------------------------------------

    def on_tick(self, now: int | None = None) -> int:
        """Adopt the governed fee schedule, handle new queue entries, settle the expiries that can
        be settled, then tick the batcher; returns the queue entries handled."""
        self._sync_clock()
        self.sync_fees()
        handled = self.sync_queues()
        at = Timestamp(self.now() if now is None else now)
        if self.keeper is not None:
            self.keeper.on_tick(at)
        self.batcher.on_tick(at)
        return handled

    def sync_fees(self) -> None:
        """Match new fills with the fee schedule of the latest parameter version (a fee change
        executed by governance), if the deployment governs fees."""
        fees = self.parameters.get_fee_schedule()
        if fees is not None:
            self.coordinator.on_fee_schedule(fees)

    def sync_queues(self) -> int:
        """Credit / debit and queue every vault entry not handled yet, in chain order (stops at
        a gap in a queue's indices: the rest waits for the next tick)."""
        head = self.chain.block_number()
        events = self.chain.get_events(self.vault.address, self._cursor, head)
        entries = sorted(((e.block_number, e.log_index), q) for e, q in
                         ((entry, _entry(event)) for entry, event in events) if q is not None)
        handled = 0
        for _, entry in entries:
            if entry.index < self.next_index[entry.kind]:
                continue
            if entry.index > self.next_index[entry.kind]:
                break
            self._handle(entry)
            self.next_index[entry.kind] += 1
            handled += 1
        self._cursor = head  # the head block is read again: in-process it may still grow
        return handled

    def _handle(self, entry: QueueEntry) -> None:
        key = f"vault:{entry.kind}:{entry.index}"
        if entry.kind == "deposit":
            self.ids[Address(entry.owner.lower())] = entry.account
            self.coordinator.on_deposit(entry.owner, entry.amount, idempotency_key=key)
            self.batcher.add_items([QueuedDeposit(entry.account, entry.owner, entry.amount, entry.index)])
        else:
            self.coordinator.on_forced_withdrawal(entry.owner, entry.amount, idempotency_key=key)
            self.batcher.add_items([QueuedForcedWithdrawal(entry.account, entry.owner, entry.amount,
                                                           entry.index)])
        failpoint("items.queued")

    # --- proofs --------------------------------------------------------------------------------

    def get_account_proof(self, owner: Address) -> AccountProof:
        """``owner``'s leaf and proof against the last finalised root; :class:`NotFound` if the
        vault never registered it."""
        account_id = self.ids.get(Address(owner.lower()))
        if account_id is None:
            raise NotFound("no vault account for this address", field="address")
        return self.batcher.get_account_proof(account_id)

    def get_account_proof_json(self, owner: Address) -> dict[str, Any]:
        """:meth:`get_account_proof` as the API serves it (:func:`compute_proof_json`)."""
        return compute_proof_json(owner, self.get_account_proof(owner))


def _hex(value: bytes) -> str:
    return "0x" + bytes(value).hex()


def _position_json(p: Position) -> dict[str, Any]:
    return {"expiryId": _hex(p.expiry_id), "strike": str(p.strike), "kind": int(p.kind),
            "quantity": str(p.quantity)}


def compute_proof_json(owner: Address, proof: AccountProof) -> dict[str, Any]:
    """An account proof as JSON: the leaf bytes and the compact Merkle path under the accounts
    root, the root's preimage, the batch it is against, and the leaf decoded (amounts as decimal
    strings). A light client checks all of it against ``Settlement.batch_root(batch)``."""
    leaf = proof.leaf
    return {
        "address": owner, "accountId": int(proof.account_id), "batch": int(proof.number),
        "stateRoot": _hex(proof.state_root), "preimage": _hex(proof.preimage),
        "leaf": None if leaf is None else _hex(encode_account(leaf)),
        "bitmap": hex(proof.proof.bitmap), "siblings": [_hex(s) for s in proof.proof.siblings],
        "balance": "0" if leaf is None else str(leaf.balance),
        "positions": [] if leaf is None else [_position_json(p) for p in leaf.positions],
    }


def run_link_loop(link: SettlementLink, executor: Executor, stop: threading.Event,
                  seconds: float = 1.0, on_error: Callable[[BaseException], None] | None = None) -> None:
    """Tick ``link`` on ``executor`` (the coordinator's worker thread) every ``seconds`` until
    ``stop`` is set; a failed tick is logged and retried at the next one."""
    while not stop.is_set():
        try:
            executor.submit(link.on_tick).result()
        except Exception as exc:  # the link keeps running through one bad tick; the log says why
            if stop.is_set():
                return  # the executor shut down with the server
            log.exception("settlement tick failed")
            if on_error is not None:
                on_error(exc)
        stop.wait(seconds)


def build_settlement_link(coordinator: Coordinator, chain: Chain, deployment: Mapping[str, Any],
                          context: Callable[[Timestamp], SettlementContext] | None = None, *,
                          batch_interval: int = 0, strikes: Sequence[Price] = ()) -> SettlementLink:
    """The link of ``coordinator`` to the deployment's contracts, with a batcher over the
    coordinator's store and listings. ``context`` is the deployment's settlement context; by
    default it is read from the deployment's ``WindowVerifier`` (:func:`load_deployment_context`)
    under the coordinator's domain and parameters. Either way its domain must be the
    coordinator's (the STF checks the same signatures). With an ``settlement.expiry_registry`` in
    the deployment, the context's expiries are the registry's, and an :class:`ExpiryKeeper` lists
    the registry's new expiries of the market (with ``strikes`` as calls and puts on every
    unexpired expiry) and settles the market's passed ones. Sets the coordinator's clock to the
    link's (chain time). Replay the coordinator's log, then call :meth:`SettlementLink.start`."""
    contracts = load_chain_contracts(chain, deployment)
    if context is None:
        verifier = deployment["settlement"].get("verifier")
        if coordinator.params is None or not verifier:
            raise ConfigError("reading the settlement context needs the protocol parameters and the "
                              "deployment's window verifier", field="context")
        context = load_deployment_context(chain, chain.at("WindowVerifier", verifier), coordinator.params,
                                          coordinator.domain)
    keeper = None
    registry = deployment["settlement"].get("expiry_registry")
    if registry:
        if coordinator.market is None:
            raise ConfigError("a coordinator settling expiries needs a market", field="market")
        expiries = RegistryExpiries(chain.at("ExpiryRegistry", registry), coordinator.market.pair.quote_decimals)
        context = compute_registry_context(context, expiries)
        keeper = ExpiryKeeper(coordinator, chain, expiries, contracts.coordinator, strikes)
    probe = context(Timestamp(chain.now()))
    if probe.domain != coordinator.domain:
        raise ConfigError("the settlement context's EIP-712 domain is not the coordinator's",
                          field="domain")
    batcher = Batcher(coordinator.store, chain, contracts,
                      BatcherParams(context, _ListedSeries(coordinator.listings), batch_interval=batch_interval))
    link = SettlementLink(coordinator, batcher, contracts.vault,
                          load_chain_parameters(chain, contracts.settlement), keeper)
    coordinator.clock = link.now
    coordinator.paused = PauseMonitor(contracts.settlement)  # no new trades during an emergency pause
    return link


class _ListedSeries(Mapping[SeriesId, Series]):
    """The series of a listings dict as it stands (series listed later included)."""

    def __init__(self, listings: Mapping[SeriesId, Listing]) -> None:
        self.listings = listings

    def __getitem__(self, series_id: SeriesId) -> Series:
        return self.listings[series_id].series

    def __iter__(self) -> Iterator[SeriesId]:
        return iter(self.listings)

    def __len__(self) -> int:
        return len(self.listings)
