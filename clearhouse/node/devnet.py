"""The devnet: anvil, the contracts, and the node roles as separate processes on 127.0.0.1.

``clearhouse devnet`` starts anvil (a block per transaction while deploying, then one a second so
chain time follows the wall clock),
deploys an oracle committee (OracleHub, OracleDisputes, Assertions, Arbitration, ``3f+1`` bonded
members), a Governor (results asserted through the committee's Assertions) and the settlement system
(Vault, Settlement, Bonds, WindowVerifier reading the Governor's ParameterStore and an
ExpiryRegistry on the committee's feed, so exits value open positions), writes the
deployment to ``<out>/deployment.json``, then starts one process per role — the coordinator's API,
each oracle member (its peer endpoints plus its round loop) and a watcher — prints where they
listen, and stops everything on Ctrl-C (or after ``--duration`` seconds).

Devnet only: the deployment file holds the coordinator's, the members' and the watcher's private
keys (anvil's and the simulation's well-known keys), so each process can sign as its role. The
coordinator settles on anvil (``clearhouse.node.settlement_link``): deposits come from the vault,
there is no faucet.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eth_account import Account
from fastapi import FastAPI

from clearhouse.api.server import ServerThread, find_free_port
from clearhouse.chain import Chain, RpcChain
from clearhouse.chain.anvil import Anvil
from clearhouse.governance.proposals import DEFAULT_BOUNDS, compute_longest_exit
from clearhouse.messages import Domain
from clearhouse.node.expiries import (
    RegistryExpiries,
    compute_registry_context,
    load_deployment_context,
    load_quote_decimals,
)
from clearhouse.node.oracle import OracleMember
from clearhouse.node.watcher import Watcher
from clearhouse.oracle.committee import CommitteeSetup, Member
from clearhouse.oracle.config import Committee
from clearhouse.oracle.sources import MarketModel, NoisySource, SimulatedMarket
from clearhouse.sim.expiry_chain import deploy_expiry_registry
from clearhouse.sim.governance_chain import INITIAL_VALUES
from clearhouse.sim.oracle_hub import (
    DEFAULT_FEED,
    DEVNET_HUB,
    PARAMS,
    deploy_oracle_rewards,
    deploy_oracle_system,
)
from clearhouse.sim.settlement_chain import GUARDIAN_INDEX, T_FORCE, WINDOW, K
from clearhouse.sim.settlement_chain import deploy as deploy_settlement
from clearhouse.sim.settlement_world import DOMAIN, make_ctx
from clearhouse.types import Address, BasisPoints, ChainId, FeedId, Price, Seconds, Timestamp

__all__ = ["DEVNET_MARKET", "Devnet", "DevnetProcess", "compute_parameter_values", "deploy_devnet", "load_domain", "load_member",
           "run_devnet", "run_oracle_member", "run_watcher", "start_devnet"]

log = logging.getLogger("clearhouse.devnet")

USDC = 10**6
TICK_SECONDS = 1.0
"""How often each role process ticks."""
DEVNET_STRIKES = "2800,3000,3200"
"""Strikes (USDC) the devnet's coordinator lists as calls and puts on every unexpired expiry,
those listed later on the registry (``clearhouse list-expiry``) included."""
DEVNET_MARKET = {"strike_step": "100", "premium_tick": "0.01"}
"""The devnet's market rules in whole USDC: the simulated world's (``market_world.RULES``), so its
traders' series are the devnet's."""
WATCHER_INDEX = 5
"""anvil dev account the watcher signs with."""


def compute_parameter_values() -> dict[str, int]:
    """Version 1 of the devnet's governed parameters: the settlement's own ``K``, ``W``,
    ``T_force`` and its context's position and fee limits (what the coordinator builds with), the
    rest as in :data:`~clearhouse.sim.governance_chain.INITIAL_VALUES`; every one within bounds."""
    ctx = make_ctx(k=K)
    return {**INITIAL_VALUES, "checkpoint_interval": K, "challenge_window": WINDOW, "t_force": T_FORCE,
            "max_positions": ctx.max_positions, "max_fee_bps": int(ctx.max_fee_bps)}


def deploy_devnet(chain: Chain, f: int = 1, pair: str = "ETH/USDC") -> dict[str, Any]:
    """Deploy an oracle committee, a Governor and the settlement system on ``chain``; return the
    deployment description every role process reads. The Governor's results are asserted through
    the committee's ``Assertions`` (its arbitrators are the oracle ``Bonds``' stakers); its timelock
    exceeds ``T_force + W + MAX_PAUSE`` at their largest governed values; it alone changes the
    ``ParameterStore`` the settlement's window verifier reads (fees, ``W`` and ``T_force`` included);
    the settlement's pause guardian is also the Governor's guardian; an
    ``ExpiryRegistry`` lists the market's expiries on the committee's feed and values exits. Once
    everything is wired the deployer hands the OracleHub and Settlement admin roles to the Governor:
    committee changes and coordinator admission then go through governance only (the guardian can
    still pause)."""
    oracle = deploy_oracle_system(chain, f, pair=pair, params=DEVNET_HUB)
    oracle_rewards = deploy_oracle_rewards(oracle)
    guardian = chain.accounts[GUARDIAN_INDEX]
    exit_time = int(compute_longest_exit())
    timelock = exit_time + 3_600
    governor = chain.deploy("Governor", oracle.assertions.address, timelock, exit_time, guardian.address)
    values = compute_parameter_values()
    settlement = deploy_settlement(chain, users=4, parameter_bounds={
        n: (DEFAULT_BOUNDS[n].minimum, DEFAULT_BOUNDS[n].maximum) for n in values},
        governor=governor.address, parameter_values=values, own_domain=True)
    assert settlement.verifier is not None and settlement.parameters.store is not None
    # the devnet's listed expiries, priced by the committee's feed: exits with positions need it
    registry = deploy_expiry_registry(chain, oracle.hub, oracle.committee.feed_id, settlement.verifier)
    oracle.hub.transact("transfer_admin", governor.address)
    settlement.settlement.transact("transfer_admin", governor.address)
    watcher = chain.accounts[WATCHER_INDEX]
    return {
        "chain_id": chain.chain_id,
        # the coordinator's market: the oracle pair under these rules (``load_market``)
        "market": dict(DEVNET_MARKET),
        # the EIP-712 domain the settlement's verifier checks signatures under
        "domain": {"name": settlement.domain.name, "version": settlement.domain.version,
                   "chain_id": settlement.domain.chain_id, "verifying_contract": settlement.domain.verifying_contract},
        "settlement": {"settlement": settlement.settlement.address, "vault": settlement.vault.address,
                       "bonds": settlement.bonds.address, "token": settlement.token.address,
                       "verifier": settlement.verifier.address, "guardian": guardian.address,
                       "expiry_registry": registry.address},
        "governance": {"governor": governor.address, "parameters": settlement.parameters.store.address,
                       "assertions": oracle.assertions.address, "guardian": guardian.address,
                       "hub": oracle.hub.address, "settlement": settlement.settlement.address,
                       "feed_id": "0x" + bytes(oracle.committee.feed_id).hex(),
                       "timelock": timelock, "exit_time": exit_time},
        "oracle": {"hub": oracle.hub.address, "bonds": oracle.bonds.address, "token": oracle.token.address,
                   "rewards": oracle_rewards.address,
                   "assertions": oracle.assertions.address, "pair": pair,
                   "feed_id": "0x" + bytes(oracle.committee.feed_id).hex(), "f": f,
                   "members": list(oracle.committee.members),
                   # one simulated market for every member (each adds its own small noise)
                   "market_start": chain.now() - 60, "market_seed": 2_026,
                   "keys": ["0x" + bytes(k).hex() for k in oracle.keys]},
        "watcher": {"address": watcher.address, "key": "0x" + bytes(watcher.key).hex()},
        "coordinator": {"address": settlement.coordinator.address,
                        "key": "0x" + bytes(settlement.coordinator.key).hex()},
    }


def load_member(chain: Chain, deployment: dict[str, Any], index: int, peers: dict[Address, str]) -> OracleMember:
    """The :class:`~clearhouse.node.oracle.OracleMember` for member ``index`` of the deployment."""
    o = deployment["oracle"]
    hub = chain.at("OracleHub", o["hub"])
    key = bytes.fromhex(o["keys"][index][2:])
    committee = Committee(feed_id=FeedId(bytes.fromhex(o["feed_id"][2:])),
                          members=tuple(Address(m) for m in o["members"]), f=int(o["f"]), version=1)
    domain = Domain(PARAMS.eip712_name, PARAMS.eip712_version, ChainId(chain.chain_id), Address(hub.address))
    market = SimulatedMarket(MarketModel(initial_price=Price(3_000 * USDC), start=Timestamp(o["market_start"]),
                                         seed=int(o["market_seed"])))
    setup = CommitteeSetup(domain, committee, DEFAULT_FEED, DEVNET_HUB,
                           (Member(key, NoisySource(market, index, BasisPoints(5))),), BasisPoints(20),
                           Seconds(60))
    relay = chain.at("OracleRewards", o["rewards"]) if "rewards" in o else None
    return OracleMember(chain, hub, setup, peers, round_timeout=20, relay=relay)


def load_domain(deployment: dict[str, Any]) -> Domain:
    """The EIP-712 domain of the deployment's settlement (its ``domain`` entry; a deployment
    written before it had one used the simulated world's)."""
    d = deployment.get("domain")
    if d is None:
        return DOMAIN
    return Domain(str(d["name"]), str(d["version"]), ChainId(int(d["chain_id"])), Address(d["verifying_contract"]))


def _loop(tick: Callable[[], object], stop: threading.Event, what: str) -> None:
    while not stop.is_set():
        try:
            tick()
        except Exception:  # a role keeps running through one bad tick; the log says why
            log.exception("%s: tick failed", what)
        stop.wait(TICK_SECONDS)


def run_oracle_member(url: str, deployment: dict[str, Any], index: int, peers: dict[Address, str],
                      host: str, port: int, stop: threading.Event) -> None:
    """Serve member ``index``'s peer endpoints and lead its rounds until ``stop`` is set."""
    chain = RpcChain(url)
    member = load_member(chain, deployment, index, peers)
    app = FastAPI(title=f"clearhouse oracle member {index}")
    # chain time (the latest block's), not the wall clock: an observation must not be newer than
    # the block a gas estimate or the transmission runs against
    app.include_router(member.router(chain.now))
    server = ServerThread.start(app, host, port)
    log.info("oracle member %d (%s) listening on %s", index, member.me.address, server.url)
    try:
        _loop(lambda: member.on_tick(chain.now()), stop, f"oracle member {index}")
    finally:
        server.stop()


def run_watcher(url: str, deployment: dict[str, Any], stop: threading.Event) -> None:
    """Watch the deployment's settlement from chain data until ``stop`` is set."""
    chain = RpcChain(url)
    s = deployment["settlement"]
    account = Account.from_key(deployment["watcher"]["key"])
    context = load_deployment_context(chain, chain.at("WindowVerifier", s["verifier"]), PARAMS,
                                      load_domain(deployment))
    if s.get("expiry_registry"):
        context = compute_registry_context(context, RegistryExpiries(
            chain.at("ExpiryRegistry", s["expiry_registry"]), load_quote_decimals(chain, deployment)))
    watcher = Watcher(chain, chain.at("Settlement", s["settlement"]), chain.at("Vault", s["vault"]),
                      chain.at("WindowVerifier", s["verifier"]), context, account)
    log.info("watcher %s watching settlement %s", account.address, s["settlement"])

    def tick() -> None:
        for challenge in watcher.on_tick():
            log.warning("watcher challenged batch %d: %s (succeeded: %s)", challenge.number, challenge.reason,
                        challenge.succeeded)

    _loop(tick, stop, "watcher")


@dataclass
class DevnetProcess:
    """One started role process."""

    name: str
    url: str
    process: subprocess.Popen[bytes]


@dataclass
class Devnet:
    anvil: Anvil
    out: Path
    processes: list[DevnetProcess] = field(default_factory=list)

    def stop(self) -> None:
        for p in self.processes:
            if p.process.poll() is None:
                p.process.send_signal(signal.SIGINT)
        deadline = time.monotonic() + 15
        for p in self.processes:
            try:
                p.process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.process.kill()
                p.process.wait()
        self.anvil.stop()


def _spawn(name: str, url: str, args: Sequence[str], out: Path) -> DevnetProcess:
    logfile = (out / f"{name}.log").open("ab")
    process = subprocess.Popen([sys.executable, "-m", "clearhouse.cli", *args], stdout=logfile,
                               stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    return DevnetProcess(name, url, process)


def start_devnet(out: Path, f: int = 1, base_port: int = 0, coordinator: bool = True) -> Devnet:
    """Start anvil, deploy, and spawn every role; return the running devnet (call ``stop``)."""
    out.mkdir(parents=True, exist_ok=True)
    anvil = Anvil()
    devnet = Devnet(anvil, out)
    try:
        chain = RpcChain(anvil.url)
        deployment = deploy_devnet(chain, f)
        # deployed: from now on a block a second, so chain time follows the wall clock (observations
        # are stamped with it and must not be ahead of the block that stores them)
        chain.w3.provider.make_request("evm_setIntervalMining", [1])  # type: ignore[arg-type]
        ports = [base_port + i if base_port else find_free_port() for i in range(3 * f + 2)]
        members = deployment["oracle"]["members"]
        deployment["oracle"]["urls"] = {m: f"http://127.0.0.1:{ports[1 + i]}" for i, m in enumerate(members)}
        deployment["chain"] = anvil.url
        path = out / "deployment.json"
        path.write_text(json.dumps(deployment, indent=2) + "\n")
        if coordinator:
            devnet.processes.append(_spawn("coordinator", f"http://127.0.0.1:{ports[0]}", [
                "node", "--roles", "coordinator", "--db", f"sqlite:///{out / 'coordinator.db'}",
                "--chain", anvil.url, "--deployment", str(path), "--list-strikes", DEVNET_STRIKES,
                "--host", "127.0.0.1", "--port", str(ports[0])], out))
        for i in range(len(members)):
            devnet.processes.append(_spawn(f"oracle-{i}", deployment["oracle"]["urls"][members[i]], [
                "node", "--roles", "oracle", "--deployment", str(path), "--member", str(i),
                "--host", "127.0.0.1", "--port", str(ports[1 + i])], out))
        devnet.processes.append(_spawn("watcher", "", ["node", "--roles", "watcher", "--deployment", str(path)], out))
    except BaseException:
        devnet.stop()
        raise
    return devnet


def run_devnet(out: Path, f: int = 1, base_port: int = 0, duration: float | None = None,
               print_line: Callable[[str], None] = print) -> int:
    """``clearhouse devnet``: start, print the URLs, run until Ctrl-C (or ``duration``), stop all."""
    devnet = start_devnet(out, f, base_port)
    print_line(f"anvil          {devnet.anvil.url}")
    for p in devnet.processes:
        print_line(f"{p.name:<14} {p.url or '(no port)'}   log: {out / (p.name + '.log')}")
    print_line(f"deployment     {out / 'deployment.json'}")
    coordinator = next((p for p in devnet.processes if p.name == "coordinator"), None)
    if coordinator is not None:
        print_line(f"dashboard      {coordinator.url}/")
    print_line("Ctrl-C stops everything.")
    try:
        deadline = None if duration is None else time.monotonic() + duration
        while deadline is None or time.monotonic() < deadline:
            dead = [p.name for p in devnet.processes if p.process.poll() is not None]
            if dead:
                print_line(f"stopping: {', '.join(dead)} exited (see its log)")
                return 1
            time.sleep(0.5)
    except KeyboardInterrupt:
        print_line("stopping…")
    finally:
        devnet.stop()
    return 0
