"""One node's HTTP surface: the coordinator's API with the dashboard mounted on it.

The dashboard reads the market through the coordinator's own worker thread (the only thread that
may touch its state) and the chain through the deployment's contracts, if the node was given a
deployment description.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from fastapi import FastAPI, Request
from fastapi import Path as PathParam
from prometheus_client import Gauge

from clearhouse.api.app import ApiLimits, create_app
from clearhouse.chain import Chain
from clearhouse.dashboard import ChainSource, SystemContracts, mount_dashboard
from clearhouse.dashboard.views import load_contracts
from clearhouse.errors import NotFound
from clearhouse.incentives.security import compute_exposures
from clearhouse.market.book import get_resting_orders
from clearhouse.messages.checks import check_address
from clearhouse.node.coordinator import Coordinator
from clearhouse.node.governance import GovernanceService
from clearhouse.node.settlement_link import SettlementLink
from clearhouse.types import Address, Timestamp

__all__ = ["add_proof_route", "add_settlement_health", "build_node_app"]


def _market_overview(coordinator: Coordinator) -> dict[str, Any]:
    """Headline numbers of the market (runs on the coordinator's thread)."""
    return {"cards": [
        {"key": "series", "label": "series listed", "value": len(coordinator.listings)},
        {"key": "resting", "label": "resting orders", "value": len(get_resting_orders(coordinator.book))},
        {"key": "rfqs", "label": "open RFQs", "value": len(coordinator.desk.rfqs)},
        {"key": "accounts", "label": "funded accounts", "value": len(coordinator.portfolios.balances)},
    ]}


def add_proof_route(app: FastAPI, link: SettlementLink | None) -> None:
    """``GET /v1/accounts/{address}/proof``: the account's leaf and Merkle path against the last
    finalised batch root (``compute_proof_json``); 404 ``not_found`` for an address the vault never
    registered or on a node that settles on no chain, 422 for a malformed address."""
    api = app.state.api

    @app.get("/v1/accounts/{address}/proof", tags=["settlement"])
    async def get_account_proof(request: Request,
                                address: Annotated[str, PathParam(pattern=r"^0x[0-9a-fA-F]{40}$")]
                                ) -> dict[str, Any]:
        """The account's state proof against the last finalised state root on chain."""
        api.bucket.take(f"ip:{request.client.host if request.client else '?'}")
        if link is None:
            raise NotFound("this node settles on no chain: no state proofs", field="address")
        owner = Address(check_address(address, "address"))
        proof: dict[str, Any] = await api.run(link.get_account_proof_json, owner)
        return proof


def add_settlement_health(app: FastAPI, link: SettlementLink) -> None:
    """Report the batcher's refusals: ``/health`` ``checks.settlement`` (``degraded`` once an
    acknowledged item was refused by the spec) and the ``clearhouse_settlement_refused_items``
    gauge at ``/metrics`` (alert on any value above 0); and accounts an expiry's payoff could not
    be paid to: ``checks.expiries`` and ``clearhouse_expiry_unsettled_accounts`` (the same)."""
    api, batcher, coordinator = app.state.api, link.batcher, link.coordinator
    api.health_checks["settlement"] = batcher.get_health
    api.health_checks["expiries"] = coordinator.get_expiry_health
    gauge = Gauge("clearhouse_settlement_refused_items",
                  "Acknowledged items the batch builder refused (will not settle), all time",
                  registry=api.registry)
    gauge.set_function(lambda: batcher.refused_total)
    unsettled = Gauge("clearhouse_expiry_unsettled_accounts",
                      "Accounts a settled expiry's payoff could not be paid to (positions left open)",
                      registry=api.registry)
    unsettled.set_function(lambda: sum(len(a) for a in list(coordinator.unsettled.values())))


def build_node_app(coordinator: Coordinator, chain: Chain, *, deployment: Mapping[str, Any] | None = None,
                   limits: ApiLimits | None = None, node: str = "127.0.0.1", uri: str = "http://127.0.0.1",
                   tick_seconds: float | None = None, link: SettlementLink | None = None,
                   governance: GovernanceService | None = None) -> FastAPI:
    """The API over ``coordinator`` plus the dashboard at ``/``; with ``link`` (the coordinator
    settles on a chain) also ``GET /v1/accounts/{address}/proof`` and the batcher's refusals in
    ``/health`` and ``/metrics`` (:func:`add_settlement_health`); with ``governance`` (replayed,
    over the same store) the governance routes and the dashboard's forum."""
    app = create_app(coordinator, limits=limits, node=node, uri=uri, tick_seconds=tick_seconds,
                     governance=governance)
    executor = app.state.api.executor
    add_proof_route(app, link)
    if link is not None:
        add_settlement_health(app, link)
    contracts = load_contracts(chain, deployment) if deployment else SystemContracts()
    source = ChainSource(
        chain, contracts,
        market=lambda: executor.submit(_market_overview, coordinator).result(),
        account=lambda who: executor.submit(coordinator.get_account_json, Address(who)).result(),
        governance=None if governance is None else lambda: executor.submit(governance.list_proposals_json).result(),
        reputation_log=lambda: executor.submit(
            lambda: (tuple(coordinator.reputation_log), len(coordinator.reputation_log))).result(),
        greeks=lambda who, spot: executor.submit(coordinator.get_account_greeks_json, Address(who), spot,
                                                 Timestamp(chain.now())).result(),
        open_interest=lambda: executor.submit(
            lambda: compute_exposures(coordinator.portfolios.positions, coordinator.listings)).result(),
    )
    mount_dashboard(app, source)
    return app
