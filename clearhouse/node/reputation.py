"""Reputation inputs from the chain, and ``clearhouse reputation recompute``.

The node's own log holds the maker events (routed, quoted, filled, faded: ``Coordinator.
reputation_log``, published at ``GET /v1/events``); everything else is read from the contracts by
:func:`get_chain_events`, so anyone with an RPC endpoint derives the same list:

- ``Settlement``: each ``BatchFinalized`` is a finalised batch, each ``FraudProven`` a reverted
  one, of the batch's poster (``BatchPosted``), and an upheld challenge of the prover; all dated by
  the batch header's timestamp (read from the posting transaction).
- ``Settlement`` and ``Vault``: the coordinator's uptime slots (:func:`get_settlement_activity`,
  :func:`~clearhouse.incentives.reputation.compute_uptime_slots`): up when it posted a batch or
  nothing waited, down when a queued deposit or forced withdrawal waited past ``max_post_delay``
  without a batch; they depend on ``now``, so recomputing uses the node's.
- ``OracleHub``: each ``NewRound`` posted by ``transmit`` gives every member of the committee in
  the call an :class:`OracleRound`: its observed price, or a miss if the report carries none of
  its observations; the median is the report's price, the date its timestamp.

:func:`recompute` rebuilds the scores from both at the block and time the node's
``GET /v1/reputation`` reports, and :func:`compute_differences` lists every entry that differs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import httpx
from eth_abi import decode as abi_decode
from eth_utils import function_abi_to_4byte_selector, to_checksum_address

from clearhouse.chain import Chain, Contract
from clearhouse.chain.base import _abi_type
from clearhouse.errors import ChainUnavailable, InsufficientCandidates, InvalidBatch, MalformedEvent
from clearhouse.incentives.reputation import (
    BatchOutcome,
    ChallengeOutcome,
    Event,
    OracleRound,
    ReputationParams,
    SettlementActivity,
    compute_committee,
    compute_reputation,
    compute_reputation_json,
    compute_uptime_slots,
    decode_event,
)
from clearhouse.settlement.watcher import decode_header, decode_posting
from clearhouse.types import Address, Timestamp

__all__ = [
    "DEFAULT_PARAMS",
    "EVENTS_PAGE",
    "compute_differences",
    "compute_reputation_report",
    "decode_transmit",
    "format_reputation_table",
    "get_chain_events",
    "get_next_committee",
    "get_next_committees",
    "get_published_events",
    "get_settlement_activity",
    "recompute",
]

EVENTS_PAGE = 1000
"""Events per ``GET /v1/events`` page (the endpoint's maximum)."""

DEFAULT_PARAMS = ReputationParams()
"""The formulas' default constants (what the node runs with unless configured otherwise)."""

_POSITION_MASK = 31
"""Low bits of an ``observers`` byte: the observer's position in the committee (``OracleHub``)."""


# --- chain ---------------------------------------------------------------------------------------


def decode_transmit(hub: Contract, calldata: bytes) -> tuple[int, int, int, dict[Address, int | None]] | None:
    """``(round, median, timestamp, {member: price or None})`` of a ``transmit`` call's input, or
    ``None`` if ``calldata`` is not one (a round posted some other way)."""
    abi = next(i for i in hub.artifact.abi if i.get("type") == "function" and i["name"] == "transmit")
    if calldata[:4] != function_abi_to_4byte_selector(abi):  # type: ignore[arg-type]
        return None
    report, config, observers = abi_decode([_abi_type(i) for i in abi["inputs"]], calldata[4:])
    _, round_id, median, timestamp, observations = report
    # The hub's ``Config`` carries members as words (``uint256``); the hub checked they are addresses.
    members = [Address(to_checksum_address(f"0x{int(m):040x}")) for m in config[2]]
    prices: dict[Address, int | None] = dict.fromkeys(members)
    for j, (packed, _, _) in enumerate(observations):
        position = (observers >> (8 * j)) & _POSITION_MASK
        prices[members[position]] = packed >> 128
    return int(round_id), int(median), int(timestamp), prices


def _settlement_events(chain: Chain, settlement: Contract, to_block: int | None) -> list[Event]:
    poster: dict[int, Address] = {}
    dated: dict[int, Timestamp] = {}
    out: list[Event] = []
    for entry, event in chain.get_events(settlement.address, 0, to_block):
        n = int(event.args.get("number", 0))
        if event.name == "BatchPosted":
            poster[n] = Address(event.args["poster"])
            try:
                dated[n] = decode_header(decode_posting(chain.get_transaction_input(entry.tx_hash))[0]).timestamp
            except InvalidBatch:  # posted through another contract: no header to date it by
                dated[n] = Timestamp(0)
        elif event.name == "BatchFinalized" and n in poster:
            out.append(BatchOutcome(poster[n], n, True, dated[n]))
        elif event.name == "FraudProven" and n in poster:
            out.append(BatchOutcome(poster[n], n, False, dated[n]))
            out.append(ChallengeOutcome(Address(event.args["challenger"]), True, dated[n]))
    return out


def get_settlement_activity(chain: Chain, settlement: Contract, to_block: int | None = None) -> SettlementActivity:
    """What ``Settlement`` and its ``Vault`` show of the coordinator's liveness up to ``to_block``:
    who held the post when, every batch posting with the queue entries its header consumed, every
    deposit and forced withdrawal queued, the emergency pauses, all dated by block timestamps."""
    holders: list[tuple[Timestamp, Address | None]] = []
    posts: list[tuple[Timestamp, Address, int, int]] = []
    pauses: list[tuple[Timestamp, Timestamp]] = []
    times: dict[int, Timestamp] = {}

    def dated(block: int) -> Timestamp:  # one read per block (over JSON-RPC: one request)
        if block not in times:
            times[block] = chain.get_block_timestamp(block)
        return times[block]

    for entry, event in chain.get_events(settlement.address, 0, to_block):
        if event.name not in ("BatchPosted", "CoordinatorAdmitted", "FraudProven", "Frozen", "Paused"):
            continue
        at = dated(entry.block_number)
        if event.name == "BatchPosted":
            poster = Address(event.args["poster"])
            try:
                counters = decode_header(decode_posting(chain.get_transaction_input(entry.tx_hash))[0]
                                         ).state.counters
                consumed = (counters.deposit_count, counters.forced_count)
            except InvalidBatch:  # posted through another contract: the queues as they were
                consumed = (posts[-1][2], posts[-1][3]) if posts else (0, 0)
            posts.append((at, poster, *consumed))
            holders.append((at, poster))
        elif event.name == "CoordinatorAdmitted":
            holders.append((at, Address(event.args["coordinator"])))
        elif event.name == "Paused":
            pauses.append((Timestamp(int(event.args["start"])), Timestamp(int(event.args["end"]))))
        else:  # a proven fraud pauses posting until an admission; a freeze ends it
            holders.append((at, None))
    vault = chain.at("Vault", settlement.call("vault"))
    queued: dict[str, list[Timestamp]] = {"Deposited": [], "ForcedWithdrawalRequested": []}
    for entry, event in chain.get_events(vault.address, 0, to_block):
        if event.name in queued:
            queued[event.name].append(dated(entry.block_number))
    return SettlementActivity(holders, posts, queued["Deposited"], queued["ForcedWithdrawalRequested"], pauses,
                              int(settlement.call("max_post_delay")))


def _oracle_events(chain: Chain, hub: Contract, to_block: int | None) -> list[Event]:
    out: list[Event] = []
    for entry, event in chain.get_events(hub.address, 0, to_block):
        if event.name != "NewRound":
            continue
        decoded = decode_transmit(hub, chain.get_transaction_input(entry.tx_hash))
        if decoded is None:
            continue
        round_id, median, timestamp, prices = decoded
        out.extend(OracleRound(member, round_id, price, median, Timestamp(timestamp))
                   for member, price in prices.items())
    return out


def get_chain_events(chain: Chain, settlement: Contract | None, hub: Contract | None,
                     to_block: int | None = None, now: Timestamp | None = None,
                     params: ReputationParams = DEFAULT_PARAMS) -> list[Event]:
    """Every reputation event the contracts hold up to ``to_block`` (default: the latest); with
    ``now``, also the coordinator's uptime slots that ended by then (:func:`compute_uptime_slots`
    over :func:`get_settlement_activity`)."""
    out = _settlement_events(chain, settlement, to_block) if settlement is not None else []
    if settlement is not None and now is not None:
        out += compute_uptime_slots(get_settlement_activity(chain, settlement, to_block), now, params)
    return out + (_oracle_events(chain, hub, to_block) if hub is not None else [])


def get_next_committee(chain: Chain, hub: Contract, bonds: Contract, candidates: Sequence[Address], f: int,
                       params: ReputationParams = DEFAULT_PARAMS) -> tuple[Address, ...]:
    """The ``3f+1`` members ``OracleHub.set_committee`` should get: :func:`compute_committee` over
    ``candidates`` that are not banned, with their oracle stake in ``bonds`` now, the hub's
    ``min_stake``, and the oracle scores of the hub's rounds at the chain's time."""
    role = int(hub.call("oracle_role"))
    stakes = {Address(to_checksum_address(c)): int(bonds.call("stake_of", c, role))
              for c in candidates if not hub.call("is_banned", c)}
    reputation = compute_reputation(get_chain_events(chain, None, hub), chain.now(), params)
    return compute_committee(stakes, reputation, 3 * f + 1, min_stake=max(1, int(hub.call("min_stake"))),
                             params=params)


def get_next_committees(chain: Chain, hub: Contract, feeds: Sequence[tuple[str, bytes]],
                        params: ReputationParams = DEFAULT_PARAMS) -> list[dict[str, Any]]:
    """Per feed: its committee now, the one :func:`get_next_committee` picks (same ``f``, the
    candidates every address that ever bonded oracle stake in the hub's ``Bonds`` plus the current
    members), and the governance committee actions that turn one into the other (``remove`` the
    members that lose their seat, then ``add`` the new ones: ``Action(COMMITTEE, address, 0 or
    1)``, applied to the committee pinned at the proposal's creation). ``error`` instead of
    ``next`` when too few candidates are eligible."""
    bonds = chain.at("Bonds", hub.call("bonds"))
    role = int(hub.call("oracle_role"))
    bonded = [Address(e.args["who"]) for _, e in chain.get_events(bonds.address)
              if e.name == "Bonded" and int(e.args["role"]) == role]
    out: list[dict[str, Any]] = []
    for pair, feed_id in feeds:
        members = [Address(to_checksum_address(m)) for m in hub.call("members", feed_id)]
        f = int(hub.call("get_feed", feed_id)[5])
        row: dict[str, Any] = {"pair": pair, "feed_id": "0x" + bytes(feed_id).hex(), "f": f, "members": members}
        try:
            chosen = get_next_committee(chain, hub, bonds, list(dict.fromkeys([*members, *bonded])), f, params)
        except InsufficientCandidates as exc:
            out.append({**row, "next": None, "actions": [], "error": exc.code})
            continue
        actions = [{"kind": "committee", "target": m, "value": 0} for m in members if m not in chosen]
        actions += [{"kind": "committee", "target": m, "value": 1} for m in chosen if m not in members]
        out.append({**row, "next": list(chosen), "actions": actions})
    return out


# --- reports -------------------------------------------------------------------------------------


def compute_reputation_report(events: Sequence[Event], now: Timestamp, block: int, last_seq: int,
                              params: ReputationParams = DEFAULT_PARAMS) -> dict[str, Any]:
    """What ``GET /v1/reputation`` serves: the scores at ``now`` from ``events``, with the block
    the chain was read at and the last published event included (to recompute exactly that)."""
    return {"now": int(now), "block": block, "events": last_seq,
            "scores": compute_reputation_json(compute_reputation(events, now, params))}


def compute_differences(ours: Mapping[str, Any], theirs: Mapping[str, Any]) -> list[str]:
    """Every ``role/subject/field`` whose value differs between two ``scores`` objects."""
    out = []
    for role in sorted({*ours, *theirs}):
        a, b = ours.get(role, {}), theirs.get(role, {})
        for who in sorted({*a, *b}):
            if who not in a or who not in b:
                out.append(f"{role}/{who}: {'missing here' if who not in a else 'missing at the node'}")
                continue
            for name in sorted({*a[who], *b[who]}):
                if a[who].get(name) != b[who].get(name):
                    out.append(f"{role}/{who}/{name}: recomputed {a[who].get(name)!r}, node {b[who].get(name)!r}")
    return out


_COLUMNS: dict[str, tuple[str, ...]] = {
    "makers": ("score_ppm", "fade_rate_ppm", "fill_ratio_ppm", "response_rate_ppm", "latency_ms", "paused"),
    "oracles": ("score_ppm", "miss_rate_ppm", "deviation_ppm"),
    "watchers": ("score_ppm", "valid", "rejected"),
    "coordinators": ("score_ppm", "finalised", "reverted", "uptime_ppm"),
}


def format_reputation_table(scores: Mapping[str, Any]) -> str:
    """The scores as one plain-text table per role."""
    lines = []
    for role, columns in _COLUMNS.items():
        rows = scores.get(role, {})
        lines.append(f"{role} ({len(rows)})")
        if rows:
            lines.append("  " + "  ".join([f"{'address':<42}", *(f"{c:>17}" for c in columns)]))
            for who, row in rows.items():
                lines.append("  " + "  ".join([f"{who:<42}", *(f"{row.get(c)!s:>17}" for c in columns)]))
    return "\n".join(lines)


# --- recompute -------------------------------------------------------------------------------------


def _get_json(client: httpx.Client, path: str, params: Mapping[str, int] | None = None) -> Any:
    try:
        response = client.get(path, params=params)
    except httpx.HTTPError as exc:
        raise ChainUnavailable(f"the node cannot be reached: {exc}", field="node") from None
    if response.status_code != 200:
        raise MalformedEvent(f"{path} answered {response.status_code}", field="node")
    return response.json()


def get_published_events(client: httpx.Client, last_seq: int) -> list[Event]:
    """The node's published events ``1..last_seq``, page by page, checked to be consecutive."""
    events: list[Event] = []
    while len(events) < last_seq:
        page = _get_json(client, "/v1/events", {"after": len(events), "limit": EVENTS_PAGE})["events"]
        if not page:
            raise MalformedEvent(f"the log ends at {len(events)}, before {last_seq}", field="events")
        for item in page[:last_seq - len(events)]:
            if item.get("seq") != len(events) + 1:
                raise MalformedEvent(f"event {item.get('seq')} where {len(events) + 1} was due", field="seq")
            events.append(decode_event({k: v for k, v in item.items() if k != "seq"}))
    return events


def recompute(chain: Chain, settlement: Contract | None, hub: Contract | None, node_url: str, *,
              params: ReputationParams = DEFAULT_PARAMS,
              client_factory: Callable[[str], httpx.Client] | None = None
              ) -> tuple[dict[str, Any], dict[str, Any], list[str]]:
    """``(recomputed report, node's report, differences)``: the scores rebuilt from the node's
    published events and the chain at the node's block and time, against the node's own."""
    make = client_factory or (lambda url: httpx.Client(base_url=url, timeout=30.0))
    with make(node_url) as client:
        theirs = _get_json(client, "/v1/reputation")
        events = get_published_events(client, int(theirs["events"]))
    block, now = int(theirs["block"]), Timestamp(int(theirs["now"]))
    events += get_chain_events(chain, settlement, hub, block, now, params)
    ours = compute_reputation_report(events, now, block, int(theirs["events"]), params)
    return ours, theirs, compute_differences(ours["scores"], theirs["scores"])
