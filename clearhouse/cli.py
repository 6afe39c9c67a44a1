"""The ``clearhouse`` command: a thin entry point over the packages."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from clearhouse import __version__
from clearhouse.errors import ClearhouseError, ConfigError
from clearhouse.types import Price


def _cmd_demo(args: argparse.Namespace) -> int:
    from clearhouse.sim.demo import run_demo

    run_demo(chain_target=args.chain, out_dir=Path(args.out), preset=args.preset)
    return 0


def _cmd_compile(args: argparse.Namespace) -> int:
    from clearhouse.chain.artifacts import CONTRACTS_DIR, load_artifact

    names = args.names or sorted(
        p.relative_to(CONTRACTS_DIR).with_suffix("").as_posix()
        for p in CONTRACTS_DIR.rglob("*.vy") if p.parent.name not in ("lib", "interfaces")
    )
    for name in names:
        art = load_artifact(name)
        print(f"{name:<32} {len(art.bytecode):>6} bytes  {art.source_hash[:12]}")
    return 0


def parse_strikes(text: str, decimals: int) -> list[Price]:
    """``"2800,3000"`` (whole quote units) as prices in quote base units; :class:`ConfigError`
    (field ``list-strikes``) on anything else."""
    strikes = []
    for item in (t.strip() for t in text.split(",") if t.strip()):
        if not item.isdigit() or int(item) == 0 or len(item) > 30:
            raise ConfigError(f"{item!r} is not a strike in whole quote units", field="list-strikes")
        strikes.append(Price(int(item) * 10**decimals))
    return strikes


def _cmd_node(args: argparse.Namespace) -> int:
    """Run node roles in this process until SIGINT/SIGTERM (graceful: requests in flight finish).

    ``coordinator`` serves the API and the dashboard; ``oracle`` (``--member i``) and ``watcher``
    run beside it (or alone) from a ``--deployment`` description such as ``clearhouse devnet``
    writes."""
    import json
    import logging
    import signal
    import threading

    from clearhouse.api.app import ApiLimits
    from clearhouse.api.server import configure_logging, serve
    from clearhouse.chain import connect
    from clearhouse.market.collateral import compute_market_of
    from clearhouse.messages import Domain, compute_domain
    from clearhouse.node.coordinator import Coordinator
    from clearhouse.node.devnet import run_oracle_member, run_watcher
    from clearhouse.node.expiries import load_market
    from clearhouse.node.governance import (
        build_governance_service,
        build_governance_watcher,
        run_governance_loop,
    )
    from clearhouse.node.service import build_node_app
    from clearhouse.node.settlement_link import build_settlement_link, run_link_loop
    from clearhouse.params import load_params
    from clearhouse.sim import market_world
    from clearhouse.sim.settlement_world import make_ctx
    from clearhouse.store import open_store
    from clearhouse.types import Address

    roles = {r.strip() for r in args.roles.split(",") if r.strip()}
    unknown = roles - {"coordinator", "oracle", "watcher"}
    if not roles or unknown:
        raise ConfigError(f"unknown roles {sorted(unknown)}: pick from coordinator, oracle, watcher",
                          field="roles")
    deployment = json.loads(Path(args.deployment).read_text()) if args.deployment else None
    if roles & {"oracle", "watcher"} and deployment is None:
        raise ConfigError("the oracle and watcher roles need --deployment", field="deployment")
    if "oracle" in roles and args.member is None:
        raise ConfigError("the oracle role needs --member", field="member")
    configure_logging(args.log_level)
    log = logging.getLogger("clearhouse.node")
    chain_url = args.chain if args.chain != "inprocess" or deployment is None else deployment["chain"]
    stop = threading.Event()
    threads = []
    if "oracle" in roles:
        assert deployment is not None
        peers = {Address(m): u for m, u in deployment["oracle"]["urls"].items()}
        me = deployment["oracle"]["members"][args.member]
        host, port = peers[me].removeprefix("http://").split(":")
        threads.append(threading.Thread(target=run_oracle_member, name="oracle", daemon=True, args=(
            chain_url, deployment, args.member, peers, host, int(port), stop)))
    if "watcher" in roles:
        threads.append(threading.Thread(target=run_watcher, name="watcher", daemon=True,
                                        args=(chain_url, deployment, stop)))
    for thread in threads:
        thread.start()
    try:
        if "coordinator" not in roles:
            signal.signal(signal.SIGTERM, lambda *_: stop.set())
            while not stop.wait(0.5):
                pass
            return 0
        params = load_params(args.preset)
        chain = connect(chain_url)
        contract = args.verifying_contract or (deployment or {}).get("domain", {}).get(
            "verifying_contract", market_world.DOMAIN.verifying_contract)
        domain: Domain = compute_domain(params, chain.chain_id, contract)
        market = None if deployment is None else load_market(chain, deployment)
        if market is None:  # a sandbox: the simulated world's market, its series listed from the start
            listings, _ = market_world.build_listings()
            market = compute_market_of(listings.values())
        else:  # the deployment's market: its expiries come from the registry, at the first tick
            listings = {}
        store = open_store(args.db)
        coordinator = Coordinator(store, domain, listings, market.rules.contract_unit, chain=chain, params=params,
                                  market=market)
        strikes = parse_strikes(args.list_strikes, market.pair.quote_decimals)
        if not listings and not strikes:
            log.warning("no --list-strikes: the registry's expiries will be listed without series to trade")
        link = None
        if deployment is not None and "coordinator" in deployment:  # settle on the deployment's chain
            if args.faucet:
                raise ConfigError("no faucet on a node that settles on a chain: deposit into the vault",
                                  field="faucet")
            # the context is read from the deployment's window verifier; a deployment without one
            # (the crash-recovery tests' world: nothing on chain judges its batches) uses the
            # simulated world's
            context = None if deployment["settlement"].get("verifier") else make_ctx
            link = build_settlement_link(coordinator, chain, deployment, context, batch_interval=args.batch_interval,
                                         strikes=strikes)
        replayed = coordinator.replay()
        if link is not None:
            link.start()  # the batcher attached, replayed items it lacks queued
            link.on_tick()  # queues read and the outbox reconciled before the first request
        limits = ApiLimits(faucet=args.faucet)
        governance = None if deployment is None else build_governance_service(store, domain, chain, deployment)
        app = build_node_app(coordinator, chain, deployment=deployment, limits=limits,
                             node=f"{args.host}:{args.port}", uri=f"http://{args.host}:{args.port}",
                             tick_seconds=args.tick, link=link, governance=governance)
        if link is not None:
            threads.append(threading.Thread(target=run_link_loop, name="settlement", daemon=True,
                                            args=(link, app.state.api.executor, stop, args.tick)))
            threads[-1].start()
        governance_watcher = None if governance is None or deployment is None else \
            build_governance_watcher(governance, chain, deployment)
        if governance_watcher is not None:  # the forum follows the deployment's Governor: asserted, queued, executed
            threads.append(threading.Thread(target=run_governance_loop, name="governance", daemon=True,
                                            args=(governance_watcher, app.state.api.executor, stop, args.tick)))
            threads[-1].start()
        log.info("coordinator up: %d actions replayed, chain id %d, http://%s:%d (dashboard at /)%s",
                 replayed, domain.chain_id, args.host, args.port,
                 "" if link is None else f", settling on {link.batcher.contracts.settlement.address}")
        try:
            serve(app, args.host, args.port, max_frame_bytes=limits.max_frame_bytes,
                  log_level=args.log_level.lower())
        finally:
            stop.set()
            store.close()
            chain.close()
            log.info("coordinator stopped; store closed")
        return 0
    except KeyboardInterrupt:
        return 0
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=10)


def _cmd_devnet(args: argparse.Namespace) -> int:
    from clearhouse.node.devnet import run_devnet

    return run_devnet(Path(args.out), f=args.f, duration=args.duration)


def _cmd_list_expiry(args: argparse.Namespace) -> int:
    """List an expiry on the deployment's registry; the coordinator lists it at its next tick."""
    import json
    import os

    from eth_account import Account

    from clearhouse.chain import connect
    from clearhouse.market.instruments import format_expiry_code, parse_expiry_code
    from clearhouse.node.expiries import list_registry_expiry, load_quote_decimals

    deployment = json.loads(Path(args.deployment).read_text())
    if not deployment.get("settlement", {}).get("expiry_registry"):
        raise ConfigError("the deployment has no expiry registry", field="deployment")
    expiry = parse_expiry_code(args.expiry.upper())
    if not args.cap.isdigit() or not 0 < int(args.cap) < 10**30:
        raise ConfigError(f"{args.cap!r} is not a cap in whole quote units", field="cap")
    chain = connect(args.chain or deployment["chain"])
    try:
        key = args.key or os.environ.get("CLEARHOUSE_ADMIN_KEY")
        sender = Account.from_key(key) if key else chain.accounts[0]  # a devnet's deployer
        cap = Price(int(args.cap) * 10 ** load_quote_decimals(chain, deployment))
        expiry_id = list_registry_expiry(chain, deployment, expiry, cap, sender)
    finally:
        chain.close()
    print(f"listed {deployment['oracle']['pair'].split('/')[0]}-{format_expiry_code(expiry)} "
          f"(expiry id 0x{bytes(expiry_id).hex()}, cap {args.cap}) from {sender.address}")
    return 0


def _cmd_reputation(args: argparse.Namespace) -> int:
    """Rebuild every score from the chain and the node's published log; exit 2 if they differ."""
    import json

    from clearhouse.chain import connect
    from clearhouse.dashboard.views import load_contracts
    from clearhouse.node.reputation import format_reputation_table, recompute

    deployment = json.loads(Path(args.deployment).read_text())
    chain = connect(args.chain or deployment["chain"])
    try:
        contracts = load_contracts(chain, deployment)
        ours, _, differences = recompute(chain, contracts.settlement, contracts.oracle_hub, args.node)
    finally:
        chain.close()
    if args.json:
        print(json.dumps({**ours, "matches": not differences, "differences": differences}, indent=2))
    else:
        print(f"reputation at block {ours['block']}, time {ours['now']}, {ours['events']} published events")
        print(format_reputation_table(ours["scores"]))
        print("matches the node's /v1/reputation" if not differences else
              "DIFFERS from the node's /v1/reputation:\n  " + "\n  ".join(differences))
    return 2 if differences else 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="clearhouse", description=__doc__)
    parser.add_argument("--version", action="version", version=f"clearhouse {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="run the end-to-end demo and write out/demo/summary.json")
    demo.add_argument("--chain", default="inprocess", help="'inprocess' (default) or a JSON-RPC URL")
    demo.add_argument("--out", default="out/demo", help="where to write summary.json")
    demo.add_argument("--preset", default="devnet", help="protocol parameter preset")
    demo.set_defaults(func=_cmd_demo)

    comp = sub.add_parser("compile", help="compile contracts (cached by source hash)")
    comp.add_argument("names", nargs="*", help="contract names relative to contracts/ (default: all)")
    comp.set_defaults(func=_cmd_compile)

    node = sub.add_parser("node", help="run node roles (coordinator API + dashboard, oracle, watcher)")
    node.add_argument("--roles", default="coordinator",
                      help="comma-separated roles: coordinator, oracle, watcher")
    node.add_argument("--db", default="sqlite:///clearhouse-node.db",
                      help="store URL: sqlite:///path or postgresql+psycopg://...")
    node.add_argument("--chain", default="inprocess", help="'inprocess' or a JSON-RPC URL")
    node.add_argument("--host", default="127.0.0.1")
    node.add_argument("--port", type=int, default=8545 + 1000)
    node.add_argument("--preset", default="devnet", help="protocol parameter preset")
    node.add_argument("--verifying-contract", default=None,
                      help="EIP-712 verifyingContract (the settlement contract's address)")
    node.add_argument("--faucet", action="store_true",
                      help="only without a chain deployment: POST /v1/dev/deposit")
    node.add_argument("--batch-interval", type=int, default=5,
                      help="seconds between two batches when settling on a chain (--deployment)")
    node.add_argument("--tick", type=float, default=1.0,
                      help="seconds between coordinator ticks (expiry purge; logged actions)")
    node.add_argument("--deployment", default=None,
                      help="deployment.json: the coordinator settles on its chain; oracle, watcher roles")
    node.add_argument("--list-strikes", default="",
                      help="strikes (whole quote units, comma-separated) listed as a call and a put on "
                           "every unexpired expiry, those the deployment's registry lists later included")
    node.add_argument("--member", type=int, default=None, help="oracle member index (oracle role)")
    node.add_argument("--log-level", default="INFO")
    node.set_defaults(func=_cmd_node)

    devnet = sub.add_parser("devnet", help="anvil, contracts and every role as processes on 127.0.0.1")
    devnet.add_argument("--out", default="out/devnet", help="deployment.json, databases and logs")
    devnet.add_argument("--f", type=int, default=1, help="oracle faults tolerated (3f+1 members)")
    devnet.add_argument("--duration", type=float, default=None, help="stop after this many seconds")
    devnet.set_defaults(func=_cmd_devnet)

    listing = sub.add_parser("list-expiry", help="list an expiry on the deployment's ExpiryRegistry (its admin); "
                             "the coordinator lists it, with its --list-strikes, at its next tick")
    listing.add_argument("expiry", help="expiry code, e.g. 25JUN27 (08:00 UTC that day)")
    listing.add_argument("--cap", required=True, help="settlement cap, whole quote units per contract")
    listing.add_argument("--deployment", required=True, help="deployment.json")
    listing.add_argument("--chain", default=None, help="JSON-RPC URL (default: the deployment's)")
    listing.add_argument("--key", default=None, help="the registry admin's key (default: $CLEARHOUSE_ADMIN_KEY, "
                         "else the chain's first development account, a devnet's deployer)")
    listing.set_defaults(func=_cmd_list_expiry)

    reputation = sub.add_parser("reputation", help="reputation scores anyone can recompute")
    rsub = reputation.add_subparsers(dest="action", required=True)
    recompute = rsub.add_parser("recompute", help="rebuild the scores from the chain and the node's "
                                "published event log, and compare them with the node's")
    recompute.add_argument("--node", default="http://127.0.0.1:9545", help="the node's API URL")
    recompute.add_argument("--deployment", required=True, help="deployment.json (contract addresses)")
    recompute.add_argument("--chain", default=None, help="JSON-RPC URL (default: the deployment's)")
    recompute.add_argument("--json", action="store_true", help="print JSON instead of tables")
    recompute.set_defaults(func=_cmd_reputation)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except ClearhouseError as exc:
        print(f"clearhouse: error [{exc.code}]: {exc.message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("clearhouse: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
