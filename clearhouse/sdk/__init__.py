"""clearhouse.sdk: the trader and maker client (sync and async), signing locally."""

from clearhouse.sdk.client import AsyncClient, ChainSide, Client, compute_error

__all__ = ["AsyncClient", "ChainSide", "Client", "compute_error"]
