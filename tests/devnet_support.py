"""The devnet on the in-process chain with a coordinator settling on it, for node tests."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from clearhouse.chain import InProcessChain
from clearhouse.node.coordinator import Coordinator
from clearhouse.node.devnet import deploy_devnet
from clearhouse.node.settlement_link import SettlementLink, build_settlement_link
from clearhouse.params import load_params
from clearhouse.sdk.chain import ChainAccess
from clearhouse.sim import market_world as mw
from clearhouse.store import Store, open_store
from clearhouse.types import Amount, Price


def start_devnet_link(db: Path, strikes: Sequence[Price] = ()
                      ) -> tuple[InProcessChain, dict[str, Any], SettlementLink, Store]:
    """``deploy_devnet`` on a fresh in-process chain and a coordinator over SQLite at ``db`` settling
    on it through the deployment description, as ``clearhouse node`` does (the settlement context
    read from the deployment's verifier and registry; ``strikes`` listed on every unexpired expiry;
    replayed, link started). The caller closes the store."""
    chain = InProcessChain()
    deployment = deploy_devnet(chain)
    store = open_store(f"sqlite:///{db}")
    listings, _ = mw.build_listings()
    coordinator = Coordinator(store, mw.DOMAIN, listings, mw.UNIT, chain=chain, params=load_params("devnet"))
    link = build_settlement_link(coordinator, chain, deployment, strikes=strikes)
    coordinator.replay()
    link.start()
    return chain, deployment, link, store


def fund_user(chain: InProcessChain, deployment: dict[str, Any], i: int, usdc: int) -> ChainAccess:
    """User ``i``'s chain side on the devnet, minted and deposited ``usdc`` whole USDC."""
    side = ChainAccess.connect(chain, deployment, mw.KEYS[i])
    side.token.transact("mint", side.address, usdc * mw.USDC)
    side.deposit(side.address, Amount(usdc * mw.USDC))
    return side
