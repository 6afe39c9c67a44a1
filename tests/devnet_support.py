"""The devnet on the in-process chain with a coordinator settling on it, for node tests."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from clearhouse.chain import InProcessChain
from clearhouse.cli import parse_strikes
from clearhouse.messages import RFQ, Accept, Cancel, Order, Quote, sign
from clearhouse.node.coordinator import Coordinator
from clearhouse.node.devnet import DEVNET_STRIKES, deploy_devnet, load_domain
from clearhouse.node.expiries import load_market
from clearhouse.node.settlement_link import SettlementLink, build_settlement_link
from clearhouse.params import load_params
from clearhouse.sdk.chain import ChainAccess
from clearhouse.sim import market_world as mw
from clearhouse.store import Store, open_store
from clearhouse.types import Address, Amount, Price


def build_devnet_coordinator(chain: InProcessChain, deployment: dict[str, Any], store: Store) -> Coordinator:
    """A coordinator over ``store`` for the deployment's market, nothing listed yet (``replay`` it
    to restart one: the log lists what it listed)."""
    market = load_market(chain, deployment)
    assert market is not None
    return Coordinator(store, load_domain(deployment), {}, market.rules.contract_unit, chain=chain,
                       params=load_params("devnet"), market=market)


def start_devnet_link(db: Path, strikes: Sequence[Price] = tuple(parse_strikes(DEVNET_STRIKES, 6))
                      ) -> tuple[InProcessChain, dict[str, Any], SettlementLink, Store]:
    """``deploy_devnet`` on a fresh in-process chain and a coordinator over SQLite at ``db`` settling
    on it through the deployment description, as ``clearhouse node`` does: the deployment's market,
    nothing listed until the keeper lists the registry's expiries with ``strikes`` (the devnet's by
    default) at the first tick; the settlement context read from the deployment's verifier and
    registry; replayed, link started, ticked once. The caller closes the store."""
    chain = InProcessChain()
    deployment = deploy_devnet(chain)
    store = open_store(f"sqlite:///{db}")
    coordinator = build_devnet_coordinator(chain, deployment, store)
    link = build_settlement_link(coordinator, chain, deployment, strikes=strikes)
    coordinator.replay()
    link.start()
    link.on_tick()
    return chain, deployment, link, store


def fund_user(chain: InProcessChain, deployment: dict[str, Any], i: int, usdc: int) -> ChainAccess:
    """User ``i``'s chain side on the devnet, minted and deposited ``usdc`` whole USDC."""
    side = ChainAccess.connect(chain, deployment, mw.KEYS[i])
    side.token.transact("mint", side.address, usdc * mw.USDC)
    side.deposit(side.address, Amount(usdc * mw.USDC))
    return side


def signed(deployment: dict[str, Any], message: Order | RFQ | Quote | Accept | Cancel, account: str) -> bytes:
    """Simulated ``account``'s signature over ``message`` in the deployment's EIP-712 domain (its
    settlement's: what its coordinator and verifier accept)."""
    return sign(load_domain(deployment), message, mw.KEY_OF[Address(account)])
