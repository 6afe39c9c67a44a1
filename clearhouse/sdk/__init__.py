"""clearhouse.sdk: the trader and maker client (sync and async), signing locally; its chain side
(custody actions and the light client that checks the node's proofs against the chain)."""

from clearhouse.sdk.chain import ChainAccess, PayoutClaim, VerifiedAccount
from clearhouse.sdk.client import AsyncClient, ChainSide, Client, compute_error

__all__ = ["AsyncClient", "ChainAccess", "ChainSide", "Client", "PayoutClaim", "VerifiedAccount", "compute_error"]
