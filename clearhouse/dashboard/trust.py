"""The trust panel's economic-security numbers, read from the contracts and the node's open interest.

Reads stake, slashable amounts, the slashing parameters, the vault's collateral and the live
disputes from the chain at request time, then computes each role's numbers with the pure
functions of :mod:`clearhouse.incentives.security` — the same ones the tests check them against.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from clearhouse.chain import Chain, Contract
from clearhouse.disputes.bonds import Role
from clearhouse.incentives.security import (
    Exposure,
    RoleSecurity,
    compute_arbitration_security,
    compute_coordinator_security,
    compute_oracle_profit,
    compute_oracle_security,
)
from clearhouse.types import Amount, Price

__all__ = ["MAX_SCANNED_ASSERTIONS", "format_ratio", "get_largest_live_dispute", "get_security", "to_json"]

_ZERO_ADDRESS = "0x" + "00" * 20
MAX_SCANNED_ASSERTIONS = 1_000
"""Latest assertions searched for live disputes (a dispute is live for its commit and reveal phases,
hours, so older assertions are settled or settleable long before a thousand newer ones exist)."""


def format_ratio(cost: int, profit: int) -> str | None:
    """``cost / profit`` rounded down to two decimals (``"2.50"``); ``None`` when nothing is at stake."""
    if profit <= 0:
        return None
    hundredths = cost * 100 // profit
    return f"{hundredths // 100}.{hundredths % 100:02d}"


def get_largest_live_dispute(assertions: Contract | None) -> Amount:
    """Both bonds of the largest disputed, unsettled assertion: what one verdict moves."""
    if assertions is None:
        return Amount(0)
    largest = 0
    count = int(assertions.call("assertion_count"))
    for i in range(max(1, count - MAX_SCANNED_ASSERTIONS + 1), count + 1):
        a = assertions.call("get_assertion", i)
        bond, disputer, settled = int(a[3]), a[6], bool(a[8])
        if disputer != _ZERO_ADDRESS and not settled:
            largest = max(largest, 2 * bond)
    return Amount(largest)


def _coordinator(chain: Chain, settlement: Contract, vault_balance: int,
                 stakes: Mapping[str, int]) -> RoleSecurity:
    bonds = chain.at("Bonds", settlement.call("bonds"))
    coordinator = settlement.call("coordinator")
    role = int(Role.COORDINATOR)
    slashable = Amount(int(bonds.call("slashable_of", coordinator, role)))
    # the settlement's own registry counts even when the deployment does not list it
    known = dict(stakes) if coordinator in stakes else {**stakes, coordinator: int(bonds.call("stake_of", coordinator, role))}
    return compute_coordinator_security(known, slashable, Amount(vault_balance))


def _oracle(chain: Chain, hub: Contract, pair: str, feed_id: bytes,
            exposures: Sequence[Exposure]) -> RoleSecurity:
    feed = hub.call("get_feed", feed_id)
    min_price, max_price, f = Price(int(feed[0])), Price(int(feed[1])), int(feed[5])
    bonds = chain.at("Bonds", hub.call("bonds"))
    role = int(hub.call("oracle_role"))
    members = [m for m in hub.call("members", feed_id) if hub.call("is_member", feed_id, m)]
    slashable = {m: int(bonds.call("slashable_of", m, role)) for m in members}
    mine = [e for e in exposures if e.pair in ("", pair)]
    profit = compute_oracle_profit(mine, min_price, max_price)
    return compute_oracle_security(f"oracle {pair}", slashable, f, Amount(int(hub.call("slash_amount"))), profit)


def get_security(chain: Chain, *, settlement: Contract | None, vault_balance: int, oracle_hub: Contract | None,
                 feeds: Sequence[tuple[str, bytes]], assertions: Contract | None,
                 stakes: Mapping[Role, Mapping[str, int]], exposures: Sequence[Exposure]) -> list[RoleSecurity]:
    """Each deployed role's numbers: the coordinator, each oracle feed's committee, arbitrators."""
    out: list[RoleSecurity] = []
    if settlement is not None:
        out.append(_coordinator(chain, settlement, vault_balance, stakes[Role.COORDINATOR]))
    for pair, feed_id in feeds if oracle_hub is not None else ():
        assert oracle_hub is not None
        if int(oracle_hub.call("get_feed", feed_id)[5]) > 0:  # a committee is set
            out.append(_oracle(chain, oracle_hub, pair, feed_id, exposures))
    if assertions is not None:
        out.append(compute_arbitration_security(stakes[Role.ARBITRATOR], get_largest_live_dispute(assertions)))
    return out


def to_json(row: RoleSecurity, units: Callable[[int], str], exit_time: int | None) -> dict[str, Any]:
    """One role's row of ``/v1/views/trust``'s ``security``: amounts in whole token units."""
    return {
        "role": row.role,
        "stake": units(row.stake),
        "stakers": row.stakers,
        "nakamoto": row.nakamoto,
        "hhi": row.hhi,
        "cost_of_corruption": units(row.cost_of_corruption),
        "profit_from_corruption": units(row.profit_from_corruption),
        "ratio": format_ratio(row.cost_of_corruption, row.profit_from_corruption),
        "secure": row.secure,
        "bribery_threshold": units(row.bribery_threshold) if row.bribery_threshold is not None else None,
        "time_to_exit_seconds": exit_time,
    }
