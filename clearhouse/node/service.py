"""One node's HTTP surface: the coordinator's API with the dashboard mounted on it.

The dashboard reads the market through the coordinator's own worker thread (the only thread that
may touch its state) and the chain through the deployment's contracts, if the node was given a
deployment description.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI

from clearhouse.api.app import ApiLimits, create_app
from clearhouse.chain import Chain
from clearhouse.dashboard import ChainSource, SystemContracts, mount_dashboard
from clearhouse.dashboard.views import load_contracts
from clearhouse.market.book import get_resting_orders
from clearhouse.node.coordinator import Coordinator
from clearhouse.types import Address

__all__ = ["build_node_app"]


def _market_overview(coordinator: Coordinator) -> dict[str, Any]:
    """Headline numbers of the market (runs on the coordinator's thread)."""
    return {"cards": [
        {"key": "series", "label": "series listed", "value": len(coordinator.listings)},
        {"key": "resting", "label": "resting orders", "value": len(get_resting_orders(coordinator.book))},
        {"key": "rfqs", "label": "open RFQs", "value": len(coordinator.desk.rfqs)},
        {"key": "accounts", "label": "funded accounts", "value": len(coordinator.portfolios.balances)},
    ]}


def build_node_app(coordinator: Coordinator, chain: Chain, *, deployment: Mapping[str, Any] | None = None,
                   limits: ApiLimits | None = None, node: str = "127.0.0.1", uri: str = "http://127.0.0.1",
                   tick_seconds: float | None = None) -> FastAPI:
    """The API over ``coordinator`` plus the dashboard at ``/``."""
    app = create_app(coordinator, limits=limits, node=node, uri=uri, tick_seconds=tick_seconds)
    executor = app.state.api.executor
    contracts = load_contracts(chain, deployment) if deployment else SystemContracts()
    source = ChainSource(
        chain, contracts,
        market=lambda: executor.submit(_market_overview, coordinator).result(),
        account=lambda who: executor.submit(coordinator.get_account_json, Address(who)).result(),
    )
    mount_dashboard(app, source)
    return app
