"""Read-only views of the chain for the dashboard, and the routes that serve them with the page.

Every number is read from the contracts at request time (``ChainSource``); nothing is cached, so
the page shows what a user would find by calling the contracts themselves. Amounts are exact
decimal strings in whole token units (``"5000"``, ``"3021.5"``); times are unix seconds.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path as FilePath
from typing import Annotated, Any, Protocol

from eth_utils import to_checksum_address
from fastapi import APIRouter, FastAPI, Path
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

from clearhouse.chain import Chain, Contract
from clearhouse.dashboard.trust import get_security
from clearhouse.dashboard.trust import to_json as security_json
from clearhouse.disputes.bonds import Role
from clearhouse.governance.proposals import DEFAULT_BOUNDS
from clearhouse.incentives.metrics import (
    compute_hhi,
    compute_nakamoto_coefficient,
    compute_share_bps,
)
from clearhouse.incentives.reputation import Event, compute_routing_share
from clearhouse.incentives.security import Exposure
from clearhouse.messages.keccak import keccak256
from clearhouse.node.parameters import load_chain_parameters
from clearhouse.node.reputation import (
    compute_reputation_report,
    get_chain_events,
    get_next_committees,
)
from clearhouse.params import compute_exit_bound
from clearhouse.types import Seconds, Timestamp, format_units

__all__ = ["STATIC", "ChainSource", "DashboardSource", "SystemContracts", "format_units", "load_contracts",
           "mount_dashboard"]

STATIC = FilePath(__file__).parent / "static"
"""The page, its script and its style."""

MAX_ROUNDS = 200
"""Rounds per feed the oracle view returns (the latest ones)."""
MAX_ASSERTIONS = 50
"""Assertions the disputes view returns (the latest ones)."""

_GOVERNOR_STATES = ("unqueued", "queued", "executed", "cancelled")
"""``Governor.state`` values by number."""

_TRUST = (
    ("trader", "deposits; signs RFQs, quotes, orders, cancels, withdrawals", "no", "nothing"),
    ("coordinator", "sequences and matches, posts batches, serves data and proofs", "yes (slashable)",
     "liveness only, never safety"),
    ("oracle member", "signs price observations; the round leader posts reports", "yes",
     "f+1 of 3f+1 honest for safety"),
    ("watcher", "re-executes every batch from chain data, challenges bad ones", "optional", "1-of-N honest"),
    ("arbitrator", "votes commit-reveal on disputed assertions", "yes", "stake-weighted honest majority"),
    ("voter", "signs governance votes", "voting power from stake", "majority, bounded by timelock + exit"),
)


class DashboardSource(Protocol):
    """What the view routes read; ``ChainSource`` is the real one."""

    def get_overview(self) -> dict[str, Any]: ...
    def get_oracle(self) -> dict[str, Any]: ...
    def get_disputes(self) -> dict[str, Any]: ...
    def get_stake(self) -> dict[str, Any]: ...
    def get_trust(self) -> dict[str, Any]: ...
    def get_account(self, address: str) -> dict[str, Any]: ...
    def get_governance(self) -> dict[str, Any]: ...
    def get_reputation(self) -> dict[str, Any]: ...


@dataclass(frozen=True)
class SystemContracts:
    """The deployed contracts the views read; any may be absent (its view is then empty)."""

    token: Contract | None = None
    """The vault's quote token (its ``decimals`` format every amount)."""
    vault: Contract | None = None
    settlement: Contract | None = None
    bonds: Sequence[Contract] = ()
    """Every stake registry (a deployment may keep one per subsystem); stakes add up."""
    oracle_hub: Contract | None = None
    assertions: Contract | None = None
    feeds: Sequence[tuple[str, bytes]] = ()
    """(pair name, feed id) of each oracle feed to show."""
    governor: Contract | None = None
    """The ``Governor`` (queued proposals and their timelock)."""
    parameters: Contract | None = None
    """The ``ParameterStore`` (versioned parameter changes and the batch each applies from)."""


@dataclass
class ChainSource:
    """Dashboard views computed from the contracts at request time."""

    chain: Chain
    contracts: SystemContracts
    market: Callable[[], Mapping[str, Any]] | None = None
    """The node's own overview (latest batches and trades, open orders…), merged in when given."""
    account: Callable[[str], Mapping[str, Any]] | None = None
    """The node's view of one account (balance, positions, requirement), when it runs a market."""
    governance: Callable[[], Sequence[Mapping[str, Any]]] | None = None
    """The node's forum: proposals with status, votes and tally (``GovernanceService``), newest first."""
    greeks: Callable[[str, int], Mapping[str, Any]] | None = None
    """The node's Greeks of one account at a spot (quote base units), when it runs a market."""
    reputation_log: Callable[[], tuple[Sequence[Event], int]] | None = None
    """The node's published maker events and the last seq, when it runs a market."""
    open_interest: Callable[[], Sequence[Exposure]] | None = None
    """The node's open interest per series (the oracle's profit from corruption), when it runs a market."""
    decimals: int = field(init=False)

    def __post_init__(self) -> None:
        token = self.contracts.token
        self.decimals = int(token.call("decimals")) if token is not None else 6

    def _units(self, value: int) -> str:
        return format_units(int(value), self.decimals)

    # --- stake --------------------------------------------------------------------------------

    def _stakes(self) -> dict[Role, dict[str, int]]:
        """Current stake per role and staker: every address that ever bonded, read back now."""
        out: dict[Role, dict[str, int]] = {role: {} for role in Role}
        for bonds in self.contracts.bonds:
            seen = {(event.args["who"], int(event.args["role"]))
                    for _, event in self.chain.get_events(bonds.address) if event.name == "Bonded"}
            for who, role in sorted(seen):
                stake = int(bonds.call("stake_of", who, role))
                if stake:
                    out[Role(role)][who] = out[Role(role)].get(who, 0) + stake
        return out

    def _insurance(self) -> int:
        return sum(int(b.call("insurance_fund")) for b in self.contracts.bonds)

    def get_stake(self) -> dict[str, Any]:
        roles = []
        for role, stakers in self._stakes().items():
            total = sum(stakers.values())
            ranked = sorted(stakers.items(), key=lambda kv: (-kv[1], kv[0]))
            roles.append({
                "role": role.name.lower(),
                "stakers": len(stakers),
                "total_stake": self._units(total),
                "nakamoto": compute_nakamoto_coefficient(stakers.values(), 5_000),
                "hhi": compute_hhi(stakers.values()),
                "members": [{"address": who, "stake": self._units(stake),
                             "share": f"{compute_share_bps(stake, total) / 100:.2f} %"} for who, stake in ranked],
            })
        return {"roles": roles, "insurance_fund": self._units(self._insurance())}

    # --- oracle -------------------------------------------------------------------------------

    def get_oracle(self) -> dict[str, Any]:
        hub = self.contracts.oracle_hub
        feeds = []
        for pair, feed_id in self.contracts.feeds if hub is not None else ():
            assert hub is not None
            feed = hub.call("get_feed", feed_id)
            count = int(feed[8])
            members = list(hub.call("members", feed_id))
            rounds = []
            for index in self._readable_rounds(count):
                r = hub.call("round_state", feed_id, index)
                rounds.append({"index": index, "round": int(r[0]), "price": self._units(int(r[1])),
                               "timestamp": int(r[2]), "optimistic": bool(r[4]),
                               "disputed": bool(r[5]), "invalid": bool(r[6])})
            valid = [r for r in rounds if not r["invalid"]]
            feeds.append({"pair": pair, "feed_id": "0x" + bytes(feed_id).hex(), "committee_size": len(members),
                          "f": int(feed[5]), "members": members, "rounds": rounds,
                          "latest_price": valid[-1]["price"] if valid else None})
        return {"feeds": feeds}

    # --- disputes -----------------------------------------------------------------------------

    def get_disputes(self) -> dict[str, Any]:
        assertions = self.contracts.assertions
        if assertions is None:
            return {"assertions": []}
        count = int(assertions.call("assertion_count"))
        now = self.chain.now()
        out = []
        for i in range(count, max(0, count - MAX_ASSERTIONS), -1):
            a = assertions.call("get_assertion", i)
            asserter, _, claim, bond, _, expires_at, disputer, dispute_id, settled, truthful = a[:10]
            disputed = disputer != "0x0000000000000000000000000000000000000000"
            phase = "settled" if settled else "arbitration" if disputed else \
                "liveness" if now < int(expires_at) else "settleable"
            out.append({"id": str(i), "claim": "0x" + bytes(claim).hex(), "asserter": asserter,
                        "disputer": disputer if disputed else None, "dispute_id": int(dispute_id),
                        "bond": self._units(int(bond)), "expires_at": int(expires_at), "phase": phase,
                        "outcome": bool(truthful) if settled else None})
        return {"assertions": out}

    # --- reputation ---------------------------------------------------------------------------

    def get_reputation(self) -> dict[str, Any]:
        """Every score at the chain's latest block and time (or the newest published event's, if
        later) from the node's published maker events and the contracts' events (``GET
        /v1/reputation``: ``scores`` is what ``clearhouse reputation recompute`` checks), plus each
        maker's routing share and each subject's stake for the page."""
        market, last = self.reputation_log() if self.reputation_log is not None else ((), 0)
        # The later of chain time and the newest published event: a chain that mines no blocks
        # (in-process) must not leave the node's own events in the future.
        block, now = self.chain.block_number(), max(self.chain.now(), max((e.time for e in market), default=0))
        events = [*market, *get_chain_events(self.chain, self.contracts.settlement, self.contracts.oracle_hub,
                                             block, Timestamp(now))]
        report = compute_reputation_report(events, Timestamp(now), block, last)
        report["routing_share_ppm"] = {who: 0 if row["paused"] else compute_routing_share(row["score_ppm"])
                                       for who, row in report["scores"]["makers"].items()}
        report["stake"] = {role.name.lower(): {who: self._units(v) for who, v in stakers.items()}
                           for role, stakers in self._stakes().items()}
        hub = self.contracts.oracle_hub
        # what a governance proposal to re-seat each feed's committee is built from
        report["next_committee"] = get_next_committees(self.chain, hub, self.contracts.feeds) if hub else []
        return report

    # --- governance ---------------------------------------------------------------------------

    def _parameter_changes(self) -> list[dict[str, Any]]:
        """Every ``ParameterChanged`` (oldest first) with the proposal whose execution made it."""
        store, governor = self.contracts.parameters, self.contracts.governor
        if store is None:
            return []
        names: dict[bytes, str] = {keccak256(name.encode()): name for name in DEFAULT_BOUNDS}
        executed = {entry.tx_hash: int(event.args["proposal_id"])
                    for entry, event in (self.chain.get_events(governor.address) if governor is not None else ())
                    if event.name == "Executed"}
        out = []
        for entry, event in self.chain.get_events(store.address):
            if event.name != "ParameterChanged":
                continue
            key = bytes(event.args["key"])
            out.append({"parameter": names.get(key, "0x" + key.hex()), "value": str(event.args["value"]),
                        "version": int(event.args["version"]), "from_batch": int(event.args["from_batch"]),
                        "proposal": executed.get(entry.tx_hash), "block": entry.block_number})
        return out

    def get_governance(self) -> dict[str, Any]:
        """Proposals (the node's forum merged with the Governor's queue and timelock), the parameter
        changes executed with their version and first batch, and the current parameter values."""
        governor, store, settlement = self.contracts.governor, self.contracts.parameters, self.contracts.settlement
        now = self.chain.now()
        proposals = {int(p["id"]): dict(p) for p in (self.governance() if self.governance is not None else ())}
        if governor is not None:
            for _, event in self.chain.get_events(governor.address):
                if event.name == "Queued":
                    proposals.setdefault(int(event.args["proposal_id"]), {"id": int(event.args["proposal_id"])})
            for pid, p in proposals.items():
                state = _GOVERNOR_STATES[int(governor.call("state", pid))]
                eta = int(governor.call("eta", pid)) if state != "unqueued" else None
                p["onchain"] = {"state": state, "eta": eta,
                                "seconds_left": max(0, eta - now) if eta is not None and state == "queued" else None}
        parameters = []
        if store is not None:
            version = int(store.call("version"))
            for name in DEFAULT_BOUNDS:
                key = keccak256(name.encode())
                bound = store.call("bounds", key)
                if bound[2]:
                    parameters.append({"parameter": name, "value": str(store.call("get", key, version)),
                                       "minimum": str(bound[0]), "maximum": str(bound[1])})
        return {
            "now": now,
            "timelock_seconds": int(governor.call("DELAY")) if governor is not None else None,
            "exit_time_seconds": int(governor.call("EXIT_TIME")) if governor is not None else None,
            "version": int(store.call("version")) if store is not None else None,
            "last_batch": int(settlement.call("last_batch")) if settlement is not None else None,
            "proposals": sorted(proposals.values(), key=lambda p: -int(p["id"])),
            "changes": self._parameter_changes(),
            "parameters": parameters,
        }

    # --- trust and overview -------------------------------------------------------------------

    def get_trust(self) -> dict[str, Any]:
        settlement = self.contracts.settlement
        window, t_force = load_chain_parameters(self.chain, settlement).get_windows(settlement) \
            if settlement is not None else (None, None)
        stakes = self._stakes()
        oracle = self.get_oracle()["feeds"]
        numbers: dict[str, dict[str, Any]] = {actor: {} for actor, *_ in _TRUST}
        if settlement is not None:
            coordinator = settlement.call("coordinator")
            numbers["coordinator"] = {
                "address": coordinator,
                "bond": self._units(stakes[Role.COORDINATOR].get(coordinator, 0)),
                "minimum bond": self._units(int(settlement.call("min_stake"))),
                "batches posted": int(settlement.call("last_batch")),
                "batches final": int(settlement.call("last_finalized")),
                "paused": bool(settlement.call("paused")),
                "frozen": bool(settlement.call("frozen")),
            }
        for feed in oracle:
            n, f = feed["committee_size"], feed["f"]
            numbers["oracle member"][feed["pair"]] = f"n = {n}, f = {f}: {f + 1} honest needed, {2 * f + 1} observations per report"
        oracle_stake = stakes[Role.ORACLE]
        numbers["oracle member"]["total stake"] = self._units(sum(oracle_stake.values()))
        watchers = stakes[Role.WATCHER]
        numbers["watcher"] = {"bonded watchers": len(watchers),
                              "challenge window": f"{window} s" if window is not None else "–"}
        arbitrators = stakes[Role.ARBITRATOR]
        numbers["arbitrator"] = {"stake": self._units(sum(arbitrators.values())),
                                 "Nakamoto coefficient (majority)":
                                     compute_nakamoto_coefficient(arbitrators.values(), 5_000) or "–"}
        governor = self.contracts.governor
        numbers["voter"] = {"governance": "not deployed"} if governor is None else {
            "timelock": f"{int(governor.call('DELAY'))} s", "exit time it must exceed": f"{int(governor.call('EXIT_TIME'))} s"}
        exit_time = int(compute_exit_bound(Seconds(t_force), Seconds(window))) \
            if t_force is not None and window is not None else None
        numbers["trader"] = {"time to exit": f"{exit_time} s" if exit_time is not None else "–"}
        c = self.contracts
        exposures = list(self.open_interest()) if self.open_interest is not None else []
        vault = int(c.token.call("balanceOf", c.vault.address)) if c.token is not None and c.vault is not None else 0
        security = get_security(self.chain, settlement=settlement, vault_balance=vault, oracle_hub=c.oracle_hub,
                                feeds=c.feeds, assertions=c.assertions, stakes=stakes, exposures=exposures)
        return {
            "security": [security_json(row, self._units, exit_time) for row in security],
            "open_interest_known": self.open_interest is not None,
            "exit_time_seconds": exit_time,
            "challenge_window_seconds": window,
            "watchers": len(watchers),
            "actors": [{"actor": actor, "does": does, "bonded": bonded, "trusted_for": trusted,
                        "numbers": numbers[actor]} for actor, does, bonded, trusted in _TRUST],
        }

    def get_account(self, address: str) -> dict[str, Any]:
        """The node's view of an account, amounts in whole units; empty without a market."""
        if self.account is None:
            return {"address": address, "market": False}
        raw = dict(self.account(address))
        spot = self._spot()
        risk = dict(self.greeks(address, spot)) if self.greeks is not None and spot else None
        return {"address": address, "market": True, "balance": self._units(int(raw["balance"])),
                "requirement": self._units(int(raw["requirement"])),
                "free_collateral": self._units(int(raw["balance"]) - int(raw["requirement"])),
                "positions": [{"series_id": sid, "quantity": q} for sid, q in raw["positions"].items()],
                "spot": self._units(spot) if spot else None,
                "greeks": risk["greeks"] if risk else None, "marks": risk["marks"] if risk else []}

    def _readable_rounds(self, count: int) -> range:
        """Indices of a feed's last ``MAX_ROUNDS`` rounds still in the hub's ring (older slots are
        overwritten), of ``count`` rounds stored in all."""
        assert self.contracts.oracle_hub is not None
        readable = min(MAX_ROUNDS, int(self.contracts.oracle_hub.call("history_rounds")))
        return range(max(0, count - readable), count)

    def _spot(self) -> int | None:
        """The first feed's latest valid round price (quote base units), if any."""
        hub = self.contracts.oracle_hub
        if hub is None or not self.contracts.feeds:
            return None
        feed_id = self.contracts.feeds[0][1]
        for index in reversed(self._readable_rounds(int(hub.call("get_feed", feed_id)[8]))):
            r = hub.call("round_state", feed_id, index)
            if not bool(r[6]):
                return int(r[1])
        return None

    def get_overview(self) -> dict[str, Any]:
        c = self.contracts
        cards: list[dict[str, Any]] = []
        if c.token is not None and c.vault is not None:
            cards.append({"key": "vault", "label": "collateral in the vault",
                          "value": self._units(int(c.token.call("balanceOf", c.vault.address)))})
        if c.settlement is not None:
            cards.append({"key": "batches_posted", "label": "batches posted", "value": int(c.settlement.call("last_batch"))})
            cards.append({"key": "batches_final", "label": "batches final", "value": int(c.settlement.call("last_finalized"))})
        for feed in self.get_oracle()["feeds"]:
            cards.append({"key": f"price:{feed['pair']}", "label": f"{feed['pair']} oracle price",
                          "value": feed["latest_price"] or "–"})
        if c.bonds:
            cards.append({"key": "insurance", "label": "insurance fund", "value": self._units(self._insurance())})
        overview: dict[str, Any] = {"cards": cards}
        if self.market is not None:
            market = dict(self.market())
            overview["cards"] = [*market.pop("cards", []), *cards]
            overview.update(market)
        return overview


def load_contracts(chain: Chain, deployment: Mapping[str, Any]) -> SystemContracts:
    """The contracts of a deployment description (``clearhouse devnet``'s ``deployment.json``)."""
    s, o, g = deployment.get("settlement", {}), deployment.get("oracle", {}), deployment.get("governance", {})
    at = chain.at
    return SystemContracts(
        token=at("mocks/TestToken", s["token"]) if "token" in s else None,
        vault=at("Vault", s["vault"]) if "vault" in s else None,
        settlement=at("Settlement", s["settlement"]) if "settlement" in s else None,
        bonds=tuple(at("Bonds", b) for b in dict.fromkeys(x["bonds"] for x in (s, o) if "bonds" in x)),
        oracle_hub=at("OracleHub", o["hub"]) if "hub" in o else None,
        governor=at("Governor", g["governor"]) if "governor" in g else None,
        parameters=at("ParameterStore", g["parameters"]) if "parameters" in g else None,
        assertions=at("Assertions", o["assertions"]) if "assertions" in o else None,
        feeds=((o["pair"], bytes.fromhex(o["feed_id"][2:])),) if "feed_id" in o else (),
    )


def mount_dashboard(app: FastAPI, source: DashboardSource) -> None:
    """Serve the page at ``/`` and ``/dashboard``, its files, and the chain views."""
    app.mount("/dashboard/static", StaticFiles(directory=STATIC), name="dashboard-static")
    router = APIRouter(tags=["dashboard"])
    index = STATIC / "index.html"
    # Sync routes run on a thread pool; the in-process chain is not thread-safe, so views are
    # read one at a time (they are cheap and the page asks for one at a time anyway).
    lock = threading.Lock()

    @router.get("/", include_in_schema=False)
    def root() -> FileResponse:
        return FileResponse(index)

    @router.get("/dashboard", include_in_schema=False)
    def dashboard() -> FileResponse:
        return FileResponse(index)

    @router.get("/v1/views/overview")
    def overview() -> dict[str, Any]:
        """Headline numbers, latest batches and trades."""
        with lock:
            return source.get_overview()

    @router.get("/v1/views/oracle")
    def oracle() -> dict[str, Any]:
        """Each feed's committee and its latest rounds."""
        with lock:
            return source.get_oracle()

    @router.get("/v1/views/disputes")
    def disputes() -> dict[str, Any]:
        """The latest assertions and where each stands."""
        with lock:
            return source.get_disputes()

    @router.get("/v1/views/stake")
    def stake() -> dict[str, Any]:
        """Stake per role: stakers, concentration, members."""
        with lock:
            return source.get_stake()

    @router.get("/v1/views/account/{address}")
    def account(address: Annotated[str, Path(pattern=r"^0x[0-9a-fA-F]{40}$")]) -> dict[str, Any]:
        """Balance, positions and exact collateral requirement of one account (public data)."""
        with lock:
            return source.get_account(to_checksum_address(address))

    @router.get("/v1/views/reputation")
    def reputation_view() -> dict[str, Any]:
        """Makers, oracle members, watchers and coordinators with their scores."""
        with lock:
            return source.get_reputation()

    @router.get("/v1/reputation", tags=["reputation"])
    def reputation() -> dict[str, Any]:
        """The node's current scores (``now``, ``block`` and the last published event ``events``
        say exactly what they were computed from)."""
        with lock:
            return source.get_reputation()

    @router.get("/v1/views/governance")
    def governance() -> dict[str, Any]:
        """Proposals with status, tally and timelock; executed parameter changes by version and batch."""
        with lock:
            return source.get_governance()

    @router.get("/v1/views/trust")
    def trust() -> dict[str, Any]:
        """Who must be honest for what, with the live numbers."""
        with lock:
            return source.get_trust()

    app.include_router(router)
