"""The coordinator role: the market state (book, RFQ desk, collateral ledger) driven by ``on_*``
handlers over a durable action log.

Every handler is validate → ``store.append_action`` (committed) → apply → ``store.append_event``
→ ack. Validation is pure and raises before anything is written; the apply step is the same code
that :meth:`Coordinator.replay` runs over ``store.iter_actions()``, so a restarted coordinator
rebuilds exactly the state (and the acks) it had. Each action's payload carries the ``now`` it was
applied at, so replay never reads a clock. Amounts in acks and events are decimal strings (quote
base units, contract units), hashes and signatures 0x-hex.

Group commit (:meth:`Coordinator.run_group`): handlers called together are validated and applied
in order, then their actions and events are committed in ONE transaction (one fsync); only then
do events go out, items reach the batcher and the callers get their acks. If that commit fails,
the in-memory state is rebuilt from the log, so it never holds what the log does not.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any, Final, Protocol

from clearhouse.errors import (
    ClearhouseError,
    ConfigError,
    ExpiryAlreadySettled,
    FillOrKillUnfilled,
    IdempotencyConflict,
    InvalidInstrument,
    InvalidOrder,
    MarketPaused,
    NotOrderOwner,
    NotYetExpired,
    RiskError,
    StoreError,
    UnknownAccount,
    UnlistedExpiry,
)
from clearhouse.incentives import reputation as reprules
from clearhouse.incentives.reputation import Event, ReputationParams
from clearhouse.market import book as bookrules
from clearhouse.market import rfq as rfqrules
from clearhouse.market.book import Book, MatchPlan, OrderResult, Removal
from clearhouse.market.collateral import (
    Listing,
    Portfolios,
    compute_listing,
    compute_market_of,
    get_balance,
    get_positions,
    get_requirement,
    process_deposit,
    process_settle_expiry,
    process_withdrawal,
    validate_fill,
)
from clearhouse.market.instruments import (
    Expiry,
    Market,
    OptionKind,
    Series,
    format_expiry_code,
    format_series_name,
    process_list_expiry,
)
from clearhouse.market.marks import compute_account_greeks, compute_mark
from clearhouse.market.rfq import RfqDesk, RfqFill
from clearhouse.market.trades import ZERO_HASH, Fade, FeeSchedule, Signed, Trade, verify_signed
from clearhouse.messages import (
    RFQ,
    Accept,
    Cancel,
    Domain,
    Message,
    Order,
    Quote,
    Side,
    TimeInForce,
    Withdrawal,
    compute_message_digest,
    parse_typed_data,
)
from clearhouse.messages.schema import compute_typed_data_types
from clearhouse.messages.signing import check_not_expired
from clearhouse.node.failpoints import failpoint
from clearhouse.risk.maxloss import get_expiry_key
from clearhouse.settlement.batch import CancelRequest, ExpirySettlement, WithdrawalRequest
from clearhouse.settlement.context import ListedExpiry, compute_listed_expiry
from clearhouse.settlement.stf import compute_settlement_price
from clearhouse.store import Store
from clearhouse.types import Address, Amount, Digest, ExpiryId, Price, SeriesId, Timestamp

__all__ = [
    "ACTION_KINDS",
    "Ack",
    "Batcher",
    "Coordinator",
    "Published",
    "compute_trade_json",
    "decode_signed_payload",
    "encode_signed_payload",
]

log = logging.getLogger("clearhouse.node.coordinator")

ACTION_KINDS = ("deposit", "register_maker", "order", "cancel", "rfq", "quote", "accept",
                "withdrawal", "tick", "forced_withdrawal", "fees", "settle_expiry", "list_expiry",
                "list_series")
"""Every kind the coordinator writes to the action log (anything else in the log is skipped)."""

_SIGNED_TYPES: dict[str, type[Any]] = {"order": Order, "cancel": Cancel, "rfq": RFQ, "quote": Quote,
                                        "accept": Accept, "withdrawal": Withdrawal}


class Batcher(Protocol):
    """What the coordinator needs of a batcher: somewhere to hand settlement items."""

    def add_items(self, items: Sequence[Any], /) -> object:
        """Queue ``items`` (settlement ``BatchItem`` values) for the next batch."""


@dataclass(frozen=True, slots=True)
class Ack:
    """What a handler returns once its action is committed and applied."""

    seq: int
    """The action's number in the log (the same on an idempotent replay)."""
    kind: str
    """The action kind (``order``, ``rfq``…)."""
    body: dict[str, Any]
    """JSON-ready result: hashes as 0x-hex, amounts and quantities as decimal strings."""
    error: dict[str, Any] | None = None
    """``{code, field, message}`` when the logged action was refused while applying (a quote that
    faded on accept is the one case: the fade is the record of the refusal)."""
    duplicate: bool = False
    """True when the idempotency key had been seen: nothing was applied again."""


Published = tuple[str, int, dict[str, Any]]
"""A committed event as listeners get it: ``(channel, number on the channel, payload)``."""


def _renumber(ack: Ack, seq: int) -> Ack:
    """``ack`` under its committed ``seq`` (``dataclasses.replace`` without its per-call cost)."""
    return Ack(seq, ack.kind, ack.body, ack.error, ack.duplicate)


# --- JSON views ---------------------------------------------------------------------------------


def _hex(value: bytes) -> str:
    return "0x" + bytes(value).hex()


def encode_signed_payload(domain: Domain, message: Message, signature: bytes, now: Timestamp
                          ) -> dict[str, Any]:
    """The logged form of a signed message: wallet JSON of the message, the signature, ``now``."""
    return {"message": message.to_typed_data(domain)["message"], "signature": _hex(signature),
            "now": int(now)}


def decode_signed_payload(domain: Domain, kind: str, payload: Mapping[str, Any]
                          ) -> tuple[Signed[Any], Timestamp]:
    """A logged signed message back as ``Signed`` (its signature was verified before logging)."""
    name = _SIGNED_TYPES[kind].__name__
    _, message = parse_typed_data({"types": compute_typed_data_types(name), "primaryType": name,
                                   "domain": domain.to_typed_data(), "message": payload["message"]})
    signature = bytes.fromhex(str(payload["signature"])[2:])
    return Signed(message, signature, compute_message_digest(domain, message)), Timestamp(
        int(payload["now"]))


def compute_trade_json(trade: Trade) -> dict[str, Any]:
    """A trade as the API and the ``trades`` channel show it."""
    return {"fillId": _hex(trade.fill_id), "leg": trade.leg, "legs": trade.legs,
            "seriesId": _hex(trade.series_id), "price": str(trade.price),
            "quantity": str(trade.quantity), "premium": str(trade.premium),
            "maker": trade.maker, "taker": trade.taker, "makerSide": int(trade.maker_side),
            "takerSide": int(trade.taker_side), "time": int(trade.time),
            "makerFee": str(trade.maker_fee), "takerFee": str(trade.taker_fee)}


def _removal_json(removal: Removal) -> dict[str, Any]:
    return {"orderHash": _hex(removal.digest), "account": removal.account,
            "reason": str(removal.reason)}


def _series_json(series_id: SeriesId, listing: Listing) -> dict[str, Any]:
    return {"seriesId": _hex(series_id), "name": format_series_name(listing.series),
            "expiry": int(listing.series.expiry), "strike": str(listing.series.strike),
            "kind": int(listing.series.kind), "cap": str(listing.cap),
            "premiumTick": str(listing.rules.premium_tick), "contractUnit": listing.rules.contract_unit}


def _expiry_json(e: ListedExpiry, settled: Price | None, state: str) -> dict[str, Any]:
    return {"expiryId": _hex(e.expiry_id), "expiry": int(e.timestamp),
            "code": f"{e.pair.underlying}-{format_expiry_code(e.timestamp)}",
            "cap": str(e.cap), "state": state, "settlementPrice": None if settled is None else str(settled)}


def _order_json(result: OrderResult) -> dict[str, Any]:
    return {"orderHash": _hex(result.digest), "trades": [compute_trade_json(t) for t in result.trades],
            "removed": [_removal_json(r) for r in result.removed], "resting": str(result.resting),
            "closed": None if result.closed is None else str(result.closed)}


def _fade_json(fade: Fade) -> dict[str, Any]:
    return {"maker": fade.maker, "rfqId": _hex(fade.rfq_id), "quoteId": _hex(fade.quote_id),
            "reason": str(fade.reason), "time": int(fade.time)}


# --- group commit ------------------------------------------------------------------------------


@dataclass(slots=True)
class _Group:
    """What a group applied in memory and has not committed yet."""

    actions: list[tuple[str, str | None, dict[str, Any], str | None]] = field(default_factory=list)
    """``(kind, account, payload, idempotency key)`` in application order (= log order)."""
    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    """``(channel, payload)`` in publication order."""
    items: list[Any] = field(default_factory=list)
    """Settlement items for the batcher."""
    keys: list[tuple[str, str]] = field(default_factory=list)
    """Idempotency keys remembered under a provisional seq."""
    levels: dict[SeriesId, set[tuple[Side, Price]]] = field(default_factory=dict)
    """Book levels the group touched: published once, as they stand at the group's end."""
    levels_now: int = 0
    """Unix seconds: the latest ``now`` of an action that touched a level (expiry cut-off of that event)."""


# --- the coordinator ---------------------------------------------------------------------------


_PAUSABLE: Final = frozenset({"order", "rfq", "quote", "accept"})
"""Actions that can make a new trade: refused while the settlement is paused."""


@dataclass
class Coordinator:
    """The market state plus the handlers that change it. Not thread-safe: one caller at a time
    (the API serialises calls on one worker thread)."""

    store: Store
    """The durable log (``clearhouse.store.Store``)."""
    domain: Domain
    """The deployment's EIP-712 domain (chain id read from the chain by whoever builds this)."""
    listings: dict[SeriesId, Listing]
    """Tradable series: those given here, then those the log lists (``list_series``)."""
    contract_unit: int
    """Quantity units per contract."""
    chain: Any = None
    """The chain backend (deposits come from it later); unused by the market rules."""
    params: Any = None
    """Protocol parameters (``clearhouse.params``), for the roles that need them; with them the
    risk check enforces ``max_open_interest`` (``clearhouse.market.open_interest``)."""
    batcher: Batcher | None = None
    """Receives matched trades, cancels and withdrawals; ``None`` keeps them in ``pending``."""
    clock: Callable[[], int] | None = None
    """Unix seconds for handlers not given ``now`` (tests pass ``now`` explicitly)."""
    portfolios: Portfolios = field(init=False)
    book: Book = field(init=False)
    desk: RfqDesk = field(init=False)
    trades: list[Trade] = field(init=False, default_factory=list)
    """Every trade made, in order."""
    pending: list[Any] = field(init=False, default_factory=list)
    """Settlement items made while no batcher is attached."""
    acks: dict[int, Ack] = field(init=False, default_factory=dict)
    """Ack per action seq (rebuilt by replay): what an idempotent retry returns."""
    keys: dict[tuple[str, str], tuple[int, str, dict[str, Any]]] = field(init=False,
                                                                          default_factory=dict)
    """(account, idempotency key) -> (seq, kind, request fingerprint)."""
    last_seq: int = field(init=False, default=0)
    """The last action seq applied."""
    level_of: dict[Digest, tuple[SeriesId, Side, Price]] = field(init=False, default_factory=dict)
    """Book level of every order hash accepted (to publish the levels a change touched)."""
    listeners: list[Callable[[Sequence[Published]], None]] = field(init=False,
                                                                   default_factory=list)
    """Called with the ``(channel, seq, payload)`` events of each commit, in order, once they are
    committed (the WebSocket hub): one call per group, not per event."""
    reputation_params: ReputationParams = field(default_factory=ReputationParams)
    """The reputation formulas' constants (routing, pause threshold, decay)."""
    reputation_log: list[Event] = field(init=False, default_factory=list)
    """Maker reputation events (routed, quote, fill, fade) in log order: derived while applying
    actions, so replay rebuilds the same list; published at ``GET /v1/events`` (seq = index + 1)."""
    reputation_tally: reprules.MakerTally = field(init=False)
    """The makers' weighted tallies kept current as ``reputation_log`` grows: routing reads scores
    from here in O(makers) instead of recomputing the whole log (equal to the recompute, exactly)."""
    rfq_time: dict[Digest, Timestamp] = field(init=False, default_factory=dict)
    """When each open RFQ was routed (a quote's response latency runs from here)."""
    market: Market | None = None
    """The pair, listing rules and expiries new series are listed under (``on_list_expiry``,
    ``on_list_series``). Default: the market of ``listings`` (its pair, rules and expiries);
    ``None`` with no listings, when nothing can be listed."""
    paused: Callable[[Timestamp], bool] | None = None
    """True while the settlement's emergency pause holds (read from the chain): new orders, RFQs,
    quotes and accepts are refused (``MarketPaused``); cancels and withdrawals go on."""
    group: _Group | None = field(init=False, default=None)
    """The group being applied by :meth:`run_group` (``None``: each action commits alone)."""
    settled: dict[ExpiryId, Price] = field(init=False, default_factory=dict)
    """Expiries whose positions are settled, with the price they settled at (clamped, on the
    ``contract_unit`` grid)."""
    unsettled: dict[ExpiryId, tuple[Address, ...]] = field(init=False, default_factory=dict)
    """Per settled expiry, the accounts its payoff could not be paid to (the balance would go below
    zero; unreachable while the max-loss requirement holds): their positions stay open, and
    ``/health`` reports the node degraded (:meth:`get_expiry_health`)."""
    initial: tuple[dict[SeriesId, Listing], Market | None] = field(init=False)
    """``listings`` and ``market`` as given, before the log's listings (what a rebuild starts from)."""

    def __post_init__(self) -> None:
        if self.market is None and self.listings:
            self.market = compute_market_of(self.listings.values())
        self.initial = (dict(self.listings), self.market)
        self.portfolios = Portfolios(self.listings, self.contract_unit,
                                     max_open_interest=getattr(self.params, "max_open_interest", None))
        nonces: dict[Address, Any] = {}
        self.book = Book(self.domain, self.listings, self.portfolios, nonces)
        self.desk = RfqDesk(self.domain, self.listings, self.portfolios, nonces)
        self.reputation_tally = reprules.MakerTally(self.reputation_params)

    # --- lifecycle -----------------------------------------------------------------------------

    def replay(self) -> int:
        """Rebuild the state from the log (call once on a fresh coordinator); returns actions applied.
        Logged fills passed the open-interest cap of their time: replay does not re-apply it (a
        cap lowered since would otherwise replay a different market), then restores it."""
        count = 0
        ledger = self.portfolios.open_interest
        cap = None if ledger is None else ledger.cap
        if ledger is not None:
            ledger.cap = Amount(2**256)
        try:
            for record in self.store.iter_actions(self.last_seq):
                if record.kind in ACTION_KINDS:
                    self._remember_key(record.account, record.payload, record.seq, record.kind)
                    self.acks[record.seq] = self._apply_logged(record.seq, record.kind, record.account,
                                                               record.payload)
                    count += 1
                self.last_seq = record.seq
        finally:
            if ledger is not None and cap is not None:
                ledger.cap = cap
        return count

    def _now(self, now: int | None) -> Timestamp:
        if now is not None:
            return Timestamp(now)
        if self.clock is None:
            raise RiskError("no clock: pass now", field="now")
        return Timestamp(self.clock())

    # --- idempotency ---------------------------------------------------------------------------

    def _remember_key(self, account: str | None, payload: Mapping[str, Any], seq: int,
                      kind: str) -> None:
        key = payload.get("idempotencyKey")
        if isinstance(key, str):
            self.keys[(account or "", key)] = (seq, kind, dict(payload.get("request", {})))

    def get_idempotent_ack(self, account: str | None, key: str | None, kind: str,
                           request: Mapping[str, Any]) -> Ack | None:
        """The original ack if ``key`` was used by ``account`` for this same request, ``None`` if
        unused; raises :class:`IdempotencyConflict` if it was used for another request."""
        if key is None:
            return None
        seen = self.keys.get((account or "", key))
        if seen is None:
            return None
        seq, seen_kind, seen_request = seen
        if seen_kind != kind or seen_request != dict(request):
            raise IdempotencyConflict(f"idempotency key {key!r} was used with another request",
                                      field="Idempotency-Key", seq=seq)
        ack = self.acks[seq]
        return Ack(ack.seq, ack.kind, ack.body, ack.error, duplicate=True)

    def _commit(self, kind: str, account: str | None, payload: dict[str, Any],
                key: str | None, request: Mapping[str, Any] | None,
                apply: Callable[[], dict[str, Any]] | None = None) -> Ack:
        """Append (committed), apply (``apply`` if given: the live fast path of what replay does
        from the payload), publish, ack. Inside :meth:`run_group`: append to the group (under a
        provisional negative seq), apply, and leave the commit to the group."""
        if key is not None:
            payload = {**payload, "idempotencyKey": key, "request": dict(request or {})}
        if self.group is not None:
            return self._stage(kind, account, payload, key, apply)
        record = self.store.append_action(kind, account, payload, key)
        if record.duplicate:  # logged by an earlier process under this key and already replayed
            ack = self.acks[record.seq]
            return Ack(ack.seq, ack.kind, ack.body, ack.error, duplicate=True)
        failpoint("action.committed")
        self._remember_key(account, record.payload, record.seq, kind)
        ack = self._apply_logged(record.seq, kind, account, record.payload, live=True, apply=apply)
        self.acks[record.seq] = ack
        self.last_seq = record.seq
        return ack

    def _stage(self, kind: str, account: str | None, payload: dict[str, Any], key: str | None,
               apply: Callable[[], dict[str, Any]] | None) -> Ack:
        group = self.group
        if group is None:
            raise StoreError("no group is open", field="group")
        group.actions.append((kind, account, payload, key))
        seq = -len(group.actions)  # provisional: the store numbers the group when it commits
        if isinstance(payload.get("idempotencyKey"), str):
            group.keys.append((account or "", payload["idempotencyKey"]))
        self._remember_key(account, payload, seq, kind)
        ack = self._apply_logged(seq, kind, account, payload, live=True, apply=apply)
        self.acks[seq] = ack
        return ack

    def run_group(self, calls: Sequence[Callable[[], Ack]]) -> list[Ack | Exception]:
        """Run handler calls (``lambda: c.on_order(...)``…) as one group: each is validated and
        applied in order (a refusal raises inside its call, changes nothing and does not touch the
        others), then every accepted action and its events are committed in one transaction.
        Returns, per call, its result (acks with their final ``seq``) or the exception it raised;
        if the commit fails, every accepted call gets a :class:`StoreError` and the state is
        rebuilt from the log. Events, batcher items and acks leave only after the commit."""
        if self.group is not None:
            raise StoreError("run_group is not re-entrant", field="group")
        group = self.group = _Group()
        results: list[Ack | Exception] = []
        try:
            for call in calls:
                try:
                    results.append(call())
                except Exception as exc:  # the caller's answer; the group goes on
                    results.append(exc)
            self._publish_touched(group.levels, Timestamp(group.levels_now))
        except BaseException:
            self.group = None
            self._rebuild()
            raise
        self.group = None
        if not group.actions:
            return results
        try:
            records, numbers = self.store.append_group(group.actions, group.events)
        except Exception as exc:
            self._rebuild()
            failed = StoreError(f"the group commit failed, nothing of it was logged: {exc}",
                                field="body")
            return [failed if isinstance(r, Ack) and r.seq < 0 else r for r in results]
        return self._finish_group(group, [r.seq for r in records], numbers, results)

    def _finish_group(self, group: _Group, seqs: list[int], numbers: list[int],
                      results: list[Ack | Exception]) -> list[Ack | Exception]:
        """Give the committed group its seqs, then fan out events and hand items over."""
        for i, seq in enumerate(seqs):
            self.acks[seq] = _renumber(self.acks.pop(-(i + 1)), seq)
        for name in group.keys:
            provisional, kind, request = self.keys[name]
            if provisional < 0:
                self.keys[name] = (seqs[-provisional - 1], kind, request)
        self.last_seq = seqs[-1]
        failpoint("action.committed")
        if group.items and self.batcher is not None:
            self.batcher.add_items(group.items)
            failpoint("items.queued")
        if group.events:
            events = [(channel, number, payload)
                      for (channel, payload), number in zip(group.events, numbers, strict=True)]
            for listener in self.listeners:
                listener(events)
        return [_renumber(r, seqs[-r.seq - 1]) if isinstance(r, Ack) and r.seq < 0 else r
                for r in results]

    def _rebuild(self) -> None:
        """Drop the in-memory state and replay it from the log (after a failed group commit)."""
        self.listings.clear()  # the same dict, refilled: whoever shares it sees the log's listings
        self.listings.update(self.initial[0])
        fresh = type(self)(**{**{f.name: getattr(self, f.name) for f in fields(self) if f.init},
                              "market": self.initial[1]})
        fresh.replay()
        self.market = fresh.market
        for f in fields(self):
            if not f.init and f.name != "listeners":
                setattr(self, f.name, getattr(fresh, f.name))

    # --- apply (shared by live handlers and replay) --------------------------------------------

    def _apply_logged(self, seq: int, kind: str, account: str | None, payload: Mapping[str, Any],
                      live: bool = False, apply: Callable[[], dict[str, Any]] | None = None) -> Ack:
        try:
            body = apply() if apply is not None else self._apply(kind, account, payload, live)
        except ClearhouseError as exc:  # only a fade gets here: validation ran before logging
            fade = exc.context.get("fade")
            if isinstance(fade, Fade):
                self._log_reputation(reprules.Fade(fade.maker, fade.quote_id, fade.time))
            if live:
                self._publish_error(kind, exc)
            return Ack(seq, kind, {}, exc.to_dict())
        return Ack(seq, kind, body)

    def _apply(self, kind: str, account: str | None, payload: Mapping[str, Any], live: bool
               ) -> dict[str, Any]:
        if kind == "deposit":
            process_deposit(self.portfolios, Address(str(account)), Amount(int(payload["amount"])))
            return {"account": account, "amount": str(payload["amount"])}
        if kind == "forced_withdrawal":
            return self._apply_forced(Address(str(account)), Amount(int(payload["requested"])))
        if kind == "register_maker":
            rfqrules.process_register_maker(self.desk, Address(str(account)))
            return {"maker": account}
        if kind == "tick":
            return self._apply_tick(Timestamp(int(payload["now"])), live)
        if kind == "fees":
            self.book.fees = self.desk.fees = FeeSchedule(int(payload["makerBps"]), int(payload["takerBps"]))
            return self.get_fees_json()
        if kind == "settle_expiry":
            return self._apply_settle_expiry(ExpiryId(bytes.fromhex(str(payload["expiryId"])[2:])),
                                             Price(int(payload["price"])), Timestamp(int(payload["now"])), live)
        if kind == "list_expiry":
            return self._apply_list_expiry(Timestamp(int(payload["expiry"])), Price(int(payload["cap"])), live)
        if kind == "list_series":
            return self._apply_list_series(Timestamp(int(payload["expiry"])), Price(int(payload["strike"])),
                                           OptionKind(int(payload["kind"])), live)
        signed, now = decode_signed_payload(self.domain, kind, payload)
        return self._apply_signed(kind, signed, now, live)

    def _apply_signed(self, kind: str, signed: Signed[Any], now: Timestamp, live: bool,
                      plan: MatchPlan | None = None) -> dict[str, Any]:
        if kind == "order":
            result = (bookrules.process_verified_order(self.book, signed, now) if plan is None
                      else bookrules.apply_match_plan(self.book, signed, plan, now))
            order = signed.message
            self.level_of[signed.digest] = (order.series_id, order.side, order.price)
            self._record_trades(result.trades, live)
            if live:
                self._publish_levels([signed.digest, *(t.maker_auth.digest for t in result.trades),
                                      *(r.digest for r in result.removed)], now)
            return _order_json(result)
        if kind == "cancel":
            return self._apply_cancel(signed, now, live)
        if kind == "rfq":
            self.desk.router = reprules.compute_router(self.get_maker_reputation(now),
                                                       self.reputation_params)
            makers = rfqrules.process_verified_rfq(self.desk, signed, now)
            self.rfq_time[signed.digest] = now
            self._log_reputation(*(reprules.Routed(m, signed.digest, now) for m in makers))
            body = {"rfqId": _hex(signed.digest), "makers": list(makers)}
            if live:
                self._publish("rfqs", {**body, "rfq": signed.message.to_typed_data(self.domain)
                                       ["message"], "signature": _hex(signed.signature)})
            return body
        if kind == "quote":
            quote_id = rfqrules.process_verified_quote(self.desk, signed, now)
            routed_at = self.rfq_time.get(signed.message.rfq_id, now)
            self._log_reputation(reprules.QuoteGiven(signed.message.maker, quote_id,
                                                     1000 * (now - routed_at), now))
            body = {"quoteId": _hex(quote_id), "rfqId": _hex(signed.message.rfq_id)}
            if live:
                event = {**body, "quote": signed.message.to_typed_data(self.domain)["message"],
                         "signature": _hex(signed.signature)}
                self._publish(f"quotes:{signed.message.taker}", event)
            return body
        if kind == "accept":
            fill = rfqrules.process_verified_accept(self.desk, signed, now)
            self._log_reputation(reprules.Fill(fill.trades[0].maker, fill.quote_id, now))
            self._record_trades(fill.trades, live)
            return self._accept_json(fill)
        if kind == "withdrawal":
            message: Withdrawal = signed.message
            process_withdrawal(self.portfolios, message.account, message.amount)
            self._settle([WithdrawalRequest(message, signed.signature, now)], live)
            return {"withdrawalHash": _hex(signed.digest), "amount": str(message.amount)}
        raise InvalidOrder(f"unknown action kind {kind!r}", field="kind")

    def _apply_cancel(self, signed: Signed[Cancel], now: Timestamp, live: bool) -> dict[str, Any]:
        cancel = signed.message
        removed = bookrules.process_verified_cancel(self.book, cancel)
        quotes = rfqrules.process_quote_cancel(self.desk, cancel, signed.signature, now)
        self._settle([CancelRequest(signed, now)], live)
        if live:
            self._publish_levels([r.digest for r in removed], now)
        return {"cancelHash": _hex(signed.digest), "removed": [_removal_json(r) for r in removed],
                "quotesWithdrawn": [_hex(q) for q in quotes]}

    def _apply_tick(self, now: Timestamp, live: bool) -> dict[str, Any]:
        removed = bookrules.process_tick(self.book, now)
        rfqrules.process_tick(self.desk, now)
        for rfq_id in [r for r in self.rfq_time if r not in self.desk.rfqs]:
            del self.rfq_time[rfq_id]
        if live:
            self._publish_levels([r.digest for r in removed], now)
        return {"now": int(now), "expired": [_removal_json(r) for r in removed]}

    def _apply_settle_expiry(self, expiry_id: ExpiryId, price: Price, now: Timestamp, live: bool
                             ) -> dict[str, Any]:
        expiry = self.get_market_expiries()[expiry_id]
        settlement_price = compute_settlement_price(
            ListedExpiry(expiry.pair, expiry.timestamp, expiry.cap, price), self.contract_unit)
        key = (expiry.pair, expiry.timestamp)
        series_ids = {s for s, listing in self.listings.items() if get_expiry_key(listing.series) == key}
        removed = bookrules.process_close_series(self.book, series_ids)
        paid, unsettled = process_settle_expiry(self.portfolios, series_ids, settlement_price)
        self.settled[expiry_id] = settlement_price
        if unsettled:
            self.unsettled[expiry_id] = unsettled
            if live:
                log.error("expiry %d settled at %d, but %d account(s) could not be paid their payoff and keep "
                          "their positions (the ledger let them hold less than their requirement): %s",
                          expiry.timestamp, settlement_price, len(unsettled), ", ".join(unsettled))
        self._settle([ExpirySettlement(account, expiry_id, now) for account in paid], live)
        body = {"expiryId": _hex(expiry_id), "expiry": int(expiry.timestamp), "price": str(price),
                "settlementPrice": str(settlement_price),
                "payoffs": {account: str(payoff) for account, payoff in paid.items()},
                "unsettled": list(unsettled), "removed": [_removal_json(r) for r in removed]}
        if live:
            self._publish_levels([r.digest for r in removed], now)
            self._publish("expiries", body)
        return body

    def _apply_list_expiry(self, timestamp: Timestamp, cap: Price, live: bool) -> dict[str, Any]:
        market = self._require_market()
        self.market = process_list_expiry(market, Expiry(market.pair, timestamp, cap))
        body = {"event": "expiry", **_expiry_json(compute_listed_expiry(self.market.expiries[-1]), None,
                                                       "trading")}
        if live:
            self._publish("listings", body)
        return body

    def _apply_list_series(self, expiry: Timestamp, strike: Price, kind: OptionKind, live: bool
                           ) -> dict[str, Any]:
        market = self._require_market()
        series_id, listing = compute_listing(market, Series(market.pair, expiry, strike, kind))
        self.listings[series_id] = listing
        body = {"event": "series", **_series_json(series_id, listing)}
        if live:
            self._publish("listings", body)
        return body

    def _accept_json(self, fill: RfqFill) -> dict[str, Any]:
        return {"fillId": _hex(fill.fill_id), "rfqId": _hex(fill.rfq_id),
                "quoteId": _hex(fill.quote_id), "trades": [compute_trade_json(t) for t in fill.trades]}

    def _record_trades(self, trades: Sequence[Trade], live: bool) -> None:
        self.trades.extend(trades)
        self._settle(trades, live)
        if live:
            for trade in trades:
                self._publish("trades", compute_trade_json(trade))

    def _settle(self, items: Sequence[Any], live: bool) -> None:
        """Hand settlement items to the batcher (live only: the batcher keeps its own queue)."""
        if not items:
            return
        if self.batcher is None:
            self.pending.extend(items)
        elif live and self.group is not None:
            self.group.items.extend(items)  # handed over once the group is committed
        elif live:
            self.batcher.add_items(list(items))
            failpoint("items.queued")

    # --- events --------------------------------------------------------------------------------

    def _publish(self, channel: str, payload: dict[str, Any]) -> int:
        if self.group is not None:  # committed with the group's actions, numbered then
            self.group.events.append((channel, payload))
            return 0
        seq = self.store.append_event(channel, payload)
        for listener in self.listeners:
            listener([(channel, seq, payload)])
        return seq

    def publish(self, channel: str, payload: dict[str, Any]) -> int:
        """Commit and fan out an event from another role (``batches``, ``oracle``, ``disputes``)."""
        return self._publish(channel, payload)

    def _publish_levels(self, digests: Sequence[Digest], now: Timestamp) -> None:
        """One ``book:<series>`` event per series touched: the new quantity of every level the
        orders ``digests`` sit (or sat) at, best first; ``"0"`` means the level is gone. Costs
        the touched levels only, never the whole book."""
        group = self.group
        touched: dict[SeriesId, set[tuple[Side, Price]]] = {} if group is None else group.levels
        for digest in digests:
            if digest in self.level_of:
                series_id, side, price = self.level_of[digest]
                touched.setdefault(series_id, set()).add((side, price))
        if group is not None:  # one event per series for the whole group, at its end
            group.levels_now = max(group.levels_now, now)
            return
        self._publish_touched(touched, now)

    def _publish_touched(self, touched: dict[SeriesId, set[tuple[Side, Price]]], now: Timestamp
                         ) -> None:
        for series_id, levels in touched.items():
            self._publish(f"book:{_hex(series_id)}", {
                "seriesId": _hex(series_id),
                "bids": self._levels_json(series_id, levels, Side.BUY, now),
                "asks": self._levels_json(series_id, levels, Side.SELL, now)})

    def _levels_json(self, series_id: SeriesId, levels: set[tuple[Side, Price]], side: Side,
                     now: Timestamp) -> list[list[str]]:
        prices = sorted((p for s, p in levels if s is side), reverse=side is Side.BUY)
        quantity = bookrules.get_level_quantity
        return [[str(p), str(quantity(self.book, series_id, side, p, now))] for p in prices]

    def _publish_error(self, kind: str, exc: ClearhouseError) -> None:
        fade = exc.context.get("fade")
        if isinstance(fade, Fade):
            self._publish(f"quotes:{fade.maker}", {"fade": _fade_json(fade)})

    # --- validation before logging -------------------------------------------------------------

    def _verify(self, message: Any, signature: bytes, signer: Address, now: Timestamp
                ) -> Signed[Any]:
        check_not_expired(message.expiry, now)
        return verify_signed(self.domain, message, signature, signer)

    def _validate_cancel(self, cancel: Cancel) -> None:
        """Only the owner may name an order or quote by hash."""
        resting = self.book.resting.get(cancel.order_hash)
        if cancel.order_hash != ZERO_HASH and resting is not None \
                and resting.signed.message.account != cancel.account:
            raise NotOrderOwner("the order belongs to another account", field="orderHash")
        quote = self.desk.quotes.get(cancel.order_hash)
        if quote is not None and quote.message.maker != cancel.account:
            raise NotOrderOwner("the quote belongs to another maker", field="orderHash")

    # --- handlers ------------------------------------------------------------------------------

    def on_deposit(self, account: Address, amount: Amount, *, idempotency_key: str | None = None
                   ) -> Ack:
        """Credit ``amount`` quote base units (> 0) to ``account`` (from the chain's deposit event)."""
        if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
            raise RiskError("a deposit must be a positive integer", field="amount")
        request = {"amount": str(amount)}
        return self.get_idempotent_ack(account, idempotency_key, "deposit", request) or self._commit(
            "deposit", account, {"amount": str(amount)}, idempotency_key, request)

    def on_forced_withdrawal(self, account: Address, requested: Amount, *,
                             idempotency_key: str | None = None) -> Ack:
        """Debit what the batch pays for the vault's forced-withdrawal entry of ``account``:
        ``min(requested, free collateral)`` quote base units (the STF's rule)."""
        if isinstance(requested, bool) or not isinstance(requested, int) or requested <= 0:
            raise RiskError("a forced withdrawal must be a positive integer", field="requested")
        request = {"requested": str(requested)}
        return self.get_idempotent_ack(account, idempotency_key, "forced_withdrawal", request) or \
            self._commit("forced_withdrawal", account, dict(request), idempotency_key, request)

    def _apply_forced(self, account: Address, requested: Amount) -> dict[str, Any]:
        free = max(0, get_balance(self.portfolios, account) - get_requirement(self.portfolios, account))
        paid = min(requested, free)
        if paid:
            self.portfolios.balances[account] -= paid
        return {"account": account, "requested": str(requested), "paid": str(paid)}

    def on_register_maker(self, account: Address, *, idempotency_key: str | None = None) -> Ack:
        """Let ``account`` receive RFQs from now on."""
        return self.get_idempotent_ack(account, idempotency_key, "register_maker", {}) or \
            self._commit("register_maker", account, {}, idempotency_key, {})

    def _on_signed(self, kind: str, message: Any, signature: bytes, signer: Address,
                   now: int | None, key: str | None,
                   validate: Callable[[Signed[Any], Timestamp], MatchPlan | None]) -> Ack:
        t = self._now(now)
        payload = encode_signed_payload(self.domain, message, signature, t)
        request = {"message": payload["message"], "signature": payload["signature"]}
        seen = self.get_idempotent_ack(signer, key, kind, request)
        if seen is not None:
            return seen
        if kind in _PAUSABLE and self.paused is not None and self.paused(t):
            raise MarketPaused(f"settlement is under an emergency pause: no new {kind} until it ends",
                               field="body")
        signed = self._verify(message, signature, signer, t)
        plan = validate(signed, t)
        return self._commit(kind, signer, payload, key, request,
                            lambda: self._apply_signed(kind, signed, t, True, plan))

    def on_order(self, order: Order, signature: bytes, *, now: int | None = None,
                 idempotency_key: str | None = None) -> Ack:
        """Verify, risk-check and match a signed order; refused orders change nothing."""
        return self._on_signed("order", order, signature, order.account, now, idempotency_key,
                               self._validate_order)

    def _validate_order(self, signed: Signed[Order], now: Timestamp) -> MatchPlan:
        """The order's plan, or the refusal ``process_verified_order`` would raise."""
        listing = bookrules.validate_order(self.book, signed, now)
        plan = bookrules.get_match_plan(self.book, signed, listing, now)
        order = signed.message
        if order.time_in_force is TimeInForce.FOK and plan.quantity < order.quantity:
            raise FillOrKillUnfilled(f"only {plan.quantity} of {order.quantity} can fill now",
                                     field="quantity", fillable=plan.quantity)
        if plan.taker_short is not None and not plan.fills:
            raise plan.taker_short
        return plan

    def on_cancel(self, cancel: Cancel, signature: bytes, *, now: int | None = None,
                  idempotency_key: str | None = None) -> Ack:
        """Cancel a resting order or an open quote by hash and/or nonce (the nonce is burnt)."""
        return self._on_signed("cancel", cancel, signature, cancel.account, now, idempotency_key,
                               lambda s, t: self._validate_cancel(s.message))

    def on_rfq(self, rfq: RFQ, signature: bytes, *, now: int | None = None,
               idempotency_key: str | None = None) -> Ack:
        """Open a signed RFQ and route it to the registered makers."""
        return self._on_signed("rfq", rfq, signature, rfq.taker, now, idempotency_key,
                               lambda s, t: rfqrules.validate_rfq(self.desk, s, t))

    def on_quote(self, quote: Quote, signature: bytes, *, now: int | None = None,
                 idempotency_key: str | None = None) -> Ack:
        """Store a maker's signed quote for the RFQ it answers (delivered on ``quotes:<taker>``)."""
        return self._on_signed("quote", quote, signature, quote.maker, now, idempotency_key,
                               lambda s, t: self._validate_quote(s, t))

    def _validate_quote(self, signed: Signed[Quote], now: Timestamp) -> None:
        rfqrules.validate_quote(self.desk, signed, now)

    def on_accept(self, accept: Accept, signature: bytes, *, now: int | None = None,
                  idempotency_key: str | None = None) -> Ack:
        """Fill every leg of the accepted quote atomically; a fade is logged and acked as an error."""
        return self._on_signed("accept", accept, signature, accept.taker, now, idempotency_key,
                               lambda s, t: self._validate_accept(s, t))

    def _validate_accept(self, signed: Signed[Accept], now: Timestamp) -> None:
        rfqrules.validate_accept(self.desk, signed, now)

    def on_withdrawal(self, withdrawal: Withdrawal, signature: bytes, *, now: int | None = None,
                      idempotency_key: str | None = None) -> Ack:
        """Debit free collateral now; the batcher pays it out on-chain."""
        return self._on_signed("withdrawal", withdrawal, signature, withdrawal.account, now,
                               idempotency_key, self._validate_withdrawal)

    def _validate_withdrawal(self, signed: Signed[Any], now: Timestamp) -> None:
        validate_fill(self.portfolios, signed.message.account, (), -signed.message.amount)

    def on_fee_schedule(self, fees: FeeSchedule) -> Ack:
        """Charge ``fees`` on every fill matched from now on; each trade keeps the fees it was
        matched with (logged: replay must charge the same). The node passes the schedule of the
        latest governed parameter version; an unchanged schedule is not logged (``seq`` 0)."""
        if fees == self.book.fees:
            return Ack(0, "fees", self.get_fees_json())
        return self._commit("fees", None, {"makerBps": fees.maker_bps, "takerBps": fees.taker_bps}, None, None)

    def on_settle_expiry(self, expiry_id: ExpiryId, price: int, *, now: int | None = None) -> Ack:
        """Settle every position of a market expiry at the registry's ``price`` (quote base units
        per whole contract; clamped to the cap and rounded down to the ``contract_unit`` grid here,
        as the STF does): payoffs move to balances, the positions close, the expiry's resting
        orders are removed, and one ``ExpirySettlement`` per holder goes to the batcher. Refused
        before the expiry, for an expiry the market does not list, and a second time."""
        t = self._now(now)
        expiry = self.get_market_expiries().get(expiry_id)
        if expiry is None:
            raise UnlistedExpiry(f"expiry 0x{bytes(expiry_id).hex()} is not one of the market's",
                                 field="expiryId")
        if expiry_id in self.settled:
            raise ExpiryAlreadySettled(f"expiry {expiry.timestamp} is settled", field="expiryId")
        if t < expiry.timestamp:
            raise NotYetExpired(f"expiry {expiry.timestamp} is after now ({t})", field="expiryId")
        if isinstance(price, bool) or not isinstance(price, int) or not 0 <= price < 1 << 256:
            raise RiskError("a settlement price must be a uint256", field="price")
        return self._commit("settle_expiry", None, {"expiryId": _hex(expiry_id), "price": str(price), "now": int(t)},
                            None, None)

    def on_list_expiry(self, expiry: int, cap: int, *, now: int | None = None) -> Ack:
        """List an expiry of the market's pair (unix seconds, a day at 08:00 UTC) with its
        settlement ``cap`` (quote base units per whole contract, fixed for the expiry's life; the
        registry's, when the market settles on a chain). Its series are listed one by one
        (:meth:`on_list_series`). Refused for an expiry already listed, one that is not after
        ``now``, and a cap that leaves no room for a strike."""
        t = self._now(now)
        market = self._require_market()
        for name, value, bits in (("expiry", expiry, 64), ("cap", cap, 128)):
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 1 << bits:
                raise InvalidInstrument(f"{name} must be a uint{bits}", field=name)
        process_list_expiry(market, Expiry(market.pair, Timestamp(expiry), Price(cap)))  # raises if unlistable
        if expiry <= t:
            raise InvalidInstrument(f"expiry {expiry} is not after now ({t})", field="expiry")
        return self._commit("list_expiry", None, {"expiry": int(expiry), "cap": str(cap), "now": int(t)},
                            None, None)

    def on_list_series(self, expiry: int, strike: int, kind: OptionKind, *, now: int | None = None) -> Ack:
        """Make the series ``(expiry, strike, kind)`` of the market's pair tradable: its expiry
        listed and after ``now``, its strike on the grid and below the expiry's cap, not listed
        yet (each refused with its own error)."""
        t = self._now(now)
        market = self._require_market()
        if isinstance(strike, bool) or not isinstance(strike, int) or not 0 < strike < 1 << 128:
            raise InvalidInstrument("strike must be a positive uint128", field="strike")
        if kind not in tuple(OptionKind):
            raise InvalidInstrument(f"kind must be one of {[int(k) for k in OptionKind]}", field="kind")
        series = Series(market.pair, Timestamp(expiry), Price(strike), OptionKind(kind))
        series_id, _ = compute_listing(market, series)  # raises: unlisted expiry, off the grid, above the cap
        if series_id in self.listings:
            raise InvalidInstrument(f"{format_series_name(series)} is listed", field="series")
        if expiry <= t:
            raise InvalidInstrument(f"expiry {expiry} is not after now ({t})", field="expiry")
        return self._commit("list_series", None, {"expiry": int(expiry), "strike": str(strike),
                                                  "kind": int(kind), "now": int(t)}, None, None)

    def _require_market(self) -> Market:
        if self.market is None:
            raise ConfigError("this coordinator has no market to list in", field="market")
        return self.market

    def get_market_expiries(self) -> dict[ExpiryId, ListedExpiry]:
        """Every expiry the market lists, as the registry lists it (no price)."""
        expiries = () if self.market is None else (compute_listed_expiry(e) for e in self.market.expiries)
        return {e.expiry_id: e for e in expiries}

    def on_tick(self, now: int) -> Ack:
        """Purge expired orders, quotes and RFQs at ``now`` (logged: replay must purge the same).
        A tick with nothing to purge changes nothing and is not logged (``seq`` 0)."""
        if not self.is_tick_due(Timestamp(now)):
            return Ack(0, "tick", {"now": int(now), "expired": []})
        return self._commit("tick", None, {"now": int(now)}, None, None)

    def is_tick_due(self, now: Timestamp) -> bool:
        """Whether a tick at ``now`` would purge anything (a resting order, quote or RFQ expired)."""
        book_due = bool(self.book.expiries) and self.book.expiries[0][0] < now
        quotes_due = any(q.message.expiry < now for q in self.desk.quotes.values())
        rfqs_due = any(o.signed.message.expiry < now for o in self.desk.rfqs.values())
        return book_due or quotes_due or rfqs_due

    # --- reads ---------------------------------------------------------------------------------

    def get_account_json(self, account: Address) -> dict[str, Any]:
        """Balance, positions and exact requirement of ``account``."""
        positions = get_positions(self.portfolios, account)
        return {"account": account, "balance": str(get_balance(self.portfolios, account)),
                "requirement": str(get_requirement(self.portfolios, account)),
                "positions": {_hex(s): str(q) for s, q in sorted(positions.items())}}

    def get_account_greeks_json(self, account: Address, spot: int, now: Timestamp) -> dict[str, Any]:
        """Value and Greeks of ``account``'s positions, each series marked at its book's implied vol
        (:mod:`clearhouse.market.marks`), at ``spot`` (quote base units per underlying)."""
        held = {self.listings[s].series: q for s, q in get_positions(self.portfolios, account).items()
                if s in self.listings}
        if not held:
            return {"spot": str(spot), "greeks": None, "marks": []}
        decimals = next(iter(held)).pair.quote_decimals
        spot_units, unit = spot / 10**decimals, next(iter(self.listings.values())).rules.contract_unit
        marks = {}
        for series_id, listing in self.listings.items():
            if listing.series in held:
                marks[listing.series] = compute_mark(
                    listing.series, bookrules.get_best_bid(self.book, series_id, now),
                    bookrules.get_best_ask(self.book, series_id, now), spot_units, now)
        greeks = compute_account_greeks(held, marks, spot_units, now, unit)
        return {"spot": str(spot), "greeks": {k: getattr(greeks, k) for k in (
                    "value", "delta", "gamma", "vega", "theta", "rho")},
                "marks": [{"series": format_series_name(s), "vol": m.vol, "source": str(m.source)}
                          for s, m in sorted(marks.items(), key=lambda sm: format_series_name(sm[0]))]}

    def get_book_json(self, series_id: SeriesId, now: Timestamp) -> dict[str, Any]:
        """Depth per price level of both sides of ``series_id``."""
        def levels(side: Side) -> list[list[str]]:
            return [[str(p), str(q)] for p, q in bookrules.get_depth(self.book, series_id, side, now)]
        return {"seriesId": _hex(series_id), "bids": levels(Side.BUY), "asks": levels(Side.SELL)}

    def get_fees_json(self) -> dict[str, Any]:
        """The fee schedule fills are matched with now, basis points of the premium per side."""
        return {"makerBps": self.book.fees.maker_bps, "takerBps": self.book.fees.taker_bps}

    def get_series_json(self) -> list[dict[str, Any]]:
        """Every listed series, by expiry, strike, kind."""
        return [_series_json(sid, listing) for sid, listing in sorted(self.listings.items(), key=lambda item: (
                item[1].series.expiry, item[1].series.strike, item[1].series.kind))]

    def get_expiries_json(self, now: Timestamp) -> list[dict[str, Any]]:
        """Every expiry the market lists, oldest first, with its state at ``now``: ``trading``,
        ``expired`` (waiting for the committee's settlement price) or ``settled`` (with the price
        its positions settled at: clamped to the cap, on the unit grid)."""
        out = []
        for expiry_id, e in sorted(self.get_market_expiries().items(), key=lambda item: item[1].timestamp):
            settled = self.settled.get(expiry_id)
            state = "settled" if settled is not None else "trading" if now < e.timestamp else "expired"
            out.append(_expiry_json(e, settled, state))
        return out

    def get_expiry_health(self) -> dict[str, Any]:
        """``ok`` unless some account could not be paid an expiry's payoff (then ``degraded``: its
        positions stay open and the batch leaves them, as the spec refuses it too), with the
        accounts per expiry."""
        unsettled = dict(self.unsettled)  # a snapshot: read off the worker thread
        count = sum(len(accounts) for accounts in unsettled.values())
        return {"ok": count == 0, "status": "ok" if count == 0 else "degraded", "unsettledAccounts": count,
                "unsettled": {_hex(e): list(accounts) for e, accounts in unsettled.items()}}

    def get_state_fingerprint(self) -> dict[str, Any]:
        """Everything replay must reproduce, as comparable plain data (tests, audits)."""
        return {
            "balances": dict(sorted(self.portfolios.balances.items())),
            "positions": {a: dict(sorted(p.items())) for a, p in sorted(self.portfolios.positions.items())},
            "resting": sorted(_hex(d) for d in self.book.resting),
            "filled": {_hex(d): q for d, q in sorted(self.book.filled.items())},
            "closed": {_hex(d): str(r) for d, r in sorted(self.book.closed.items())},
            "nonces": {a: dict(sorted(b.items())) for a, b in sorted(self.book.nonces.items())},
            "rfqs": sorted(_hex(d) for d in self.desk.rfqs),
            "quotes": {_hex(d): str(s) for d, s in sorted(self.desk.quote_status.items())},
            "makers": list(self.desk.makers),
            "fades": [_fade_json(f) for f in self.desk.fades],
            "fees": self.get_fees_json(),
            "settled": {_hex(e): p for e, p in sorted(self.settled.items())},
            "unsettled": {_hex(e): list(a) for e, a in sorted(self.unsettled.items())},
            "listings": sorted(_hex(s) for s in self.listings),
            "expiries": sorted(_hex(e) for e in self.get_market_expiries()),
            "reputation": [reprules.encode_event(e) for e in self.reputation_log],
            "trades": [compute_trade_json(t) for t in self.trades],
            "acks": {s: (a.body, a.error) for s, a in sorted(self.acks.items())},
        }

    def _log_reputation(self, *events: Event) -> None:
        """Append to the published log and count in the routing tallies."""
        for event in events:
            self.reputation_log.append(event)
            reprules.process_maker_event(self.reputation_tally, event)

    def get_maker_reputation(self, now: Timestamp) -> reprules.Reputation:
        """The makers' scores at ``now`` from the reputation log (what routes RFQs): the
        incremental tallies, equal to ``compute_reputation(reputation_log, now)``."""
        return reprules.Reputation(makers=reprules.get_maker_scores(self.reputation_tally, now),
                                   oracles={}, watchers={}, coordinators={})

    def get_reputation_events_json(self, after: int, limit: int) -> dict[str, Any]:
        """Published reputation events ``after+1 .. after+limit`` and the last seq."""
        page = self.reputation_log[after:after + limit]
        return {"events": [{"seq": after + i + 1, **reprules.encode_event(e)} for i, e in enumerate(page)],
                "last": len(self.reputation_log)}

    def require_account(self, account: Address) -> None:
        """Raise :class:`UnknownAccount` unless ``account`` ever deposited."""
        if account not in self.portfolios.balances:
            raise UnknownAccount("no such account", field="account")
