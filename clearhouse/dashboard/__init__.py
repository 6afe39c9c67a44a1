"""The dashboard the node serves: static pages plus read-only views of the chain.

``mount_dashboard(app, source)`` adds ``/`` and ``/dashboard`` (the page), ``/dashboard/static/*``
(its script and style, shipped as package data) and ``GET /v1/views/{overview,oracle,disputes,
stake,trust}`` to a FastAPI app. Market data (series, books, RFQs, trades, batches, accounts) comes
from the node's own API; the views add what only the chain knows.
"""

from clearhouse.dashboard.views import (
    ChainSource,
    DashboardSource,
    SystemContracts,
    mount_dashboard,
)

__all__ = ["ChainSource", "DashboardSource", "SystemContracts", "mount_dashboard"]
