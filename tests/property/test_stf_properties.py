"""Properties of the settlement STF over random operation sequences (hypothesis).

A sequence of random *intents* (deposit, book trade — often reusing a resting order, RFQ fill,
cancel, withdrawal, forced withdrawal, fee sweep, tick, expiry settlement) is turned into signed
operations and applied one by one; many are refused (short collateral, overfills, expired series,
replays…), which is the point. After every operation:

* a refused operation changes nothing (the state, and a batch run's working copy), and the fraud
  proof (``verify_window`` over a witness) refuses it with the same error;
* cash is conserved to the base unit: Σ balances + fee pool + withdrawn + open payoffs at the
  settlement price = deposited;
* every series' positions plus what was settled sum to zero;
* every account covers its exact requirement;
* no order or quote is ever filled beyond its signed size.

Then: applying the accepted operations as batches is deterministic and equals applying them one by
one, across batch boundaries; ``verify_window`` from witnesses equals the full STF's checkpoint for
random windows; the byte encoding round-trips for random operations.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field, replace

from hypothesis import given, settings
from hypothesis import strategies as st

from clearhouse.errors import SettlementError
from clearhouse.market.instruments import OptionKind, compute_intrinsic_value
from clearhouse.messages import Cancel, Side, Withdrawal, sign
from clearhouse.settlement import (
    AcceptTerms,
    CancelOp,
    DepositOp,
    EntryStatus,
    FeeOp,
    ForcedWithdrawalOp,
    Operation,
    OrderTerms,
    QuoteTerms,
    RfqFillOp,
    RfqLeg,
    SettleExpiryOp,
    SettlementContext,
    SettlementState,
    TickOp,
    TradeOp,
    WithdrawalOp,
    apply_batch,
    apply_operation,
    compute_account_requirement,
    compute_free_collateral,
    compute_genesis_state,
    compute_header_hash,
    compute_operation_effect,
    compute_window_witness,
    compute_windows,
    decode_operations,
    decode_window,
    encode_auth,
    encode_core,
    get_state_root,
    verify_window,
)
from clearhouse.settlement.stf import BatchRun, compute_settlement_price
from clearhouse.sim.settlement_world import (
    ADDRESSES,
    DOMAIN,
    E1,
    E2,
    EXPIRY,
    KEYS,
    NOW,
    USDC,
    deposit,
    leg,
    make_ctx,
    order_terms,
    px,
    rfq_fill,
    trade,
)
from clearhouse.types import (
    AccountId,
    Address,
    Amount,
    Digest,
    ExpiryId,
    Nonce,
    Price,
    Timestamp,
)

PROPERTY_SETTINGS = settings(max_examples=25, deadline=None)
ACCOUNTS = 4
SETTLEMENT = 3_150_123_456  # E1's oracle price: 3150.123456 USDC (settles at 3150.1234)
CTX = replace(make_ctx(EXPIRY + 86_400, prices={E1.expiry_id: SETTLEMENT}), max_clock_lag=10**9)
SERIES = [(E1, Price(3000 * USDC), OptionKind.CALL), (E1, Price(3200 * USDC), OptionKind.PUT),
          (E2, Price(3000 * USDC), OptionKind.CALL)]
K = 4

account_ids = st.integers(0, ACCOUNTS - 1)
others = st.integers(1, ACCOUNTS - 1)
trades = st.tuples(st.just("trade"), account_ids, others, st.integers(0, 2),
                   st.sampled_from([Side.BUY, Side.SELL]), st.integers(1, 300), st.integers(1, 150),
                   st.integers(0, 3), st.integers(0, 2))
rfqs = st.tuples(st.just("rfq"), account_ids, others, st.integers(1, 3), st.integers(1, 3),
                 st.booleans(), st.integers(1, 120), st.integers(1, 120))
intents = st.one_of(
    trades, trades, trades, rfqs, rfqs,
    st.tuples(st.just("deposit"), account_ids, st.sampled_from([50, 400, 5_000, 40_000])),
    st.tuples(st.just("cancel"), account_ids, st.integers(0, 3)),
    st.tuples(st.just("withdraw"), account_ids, st.sampled_from([0.1, 0.5, 1.0, 1.5])),
    st.tuples(st.just("forced"), account_ids, st.integers(1, 10**11), st.booleans()),
    st.tuples(st.just("fee"), st.integers(1, 2 * USDC)),
    st.tuples(st.just("tick"), st.sampled_from([1, 3600, 86_400, 10 * 86_400])),
    st.tuples(st.just("settle"), account_ids, st.sampled_from([E1.expiry_id, E1.expiry_id, E2.expiry_id]),
              st.booleans()),
)
"""Intents, trades weighted up. A trade's or RFQ fill's taker is ``(maker + other) % ACCOUNTS`` (never
the maker); a trade's 8th field picks a resting order of the maker to fill again (0 = a new one)."""


@dataclass
class Harness:
    """Turns intents into operations and keeps the books the invariants are checked against."""

    ctx: SettlementContext
    state: SettlementState = field(default_factory=compute_genesis_state)
    next_nonce: dict[int, int] = field(default_factory=lambda: defaultdict(lambda: 1))
    orders: dict[int, list[tuple[int, Side, OrderTerms]]] = field(default_factory=lambda: defaultdict(list))
    deposited: int = 0
    withdrawn: int = 0
    settled: dict[tuple[bytes, int, int], int] = field(default_factory=lambda: defaultdict(int))
    sizes: dict[bytes, int] = field(default_factory=dict)
    fills: dict[bytes, int] = field(default_factory=lambda: defaultdict(int))
    accepted: list[Operation] = field(default_factory=list)
    refused: int = 0

    def nonce(self, account: int) -> int:
        self.next_nonce[account] += 1
        return self.next_nonce[account]

    def make(self, intent: tuple[object, ...]) -> list[Operation]:
        """The operations of one intent (a settlement may first tick the clock to the expiry)."""
        if intent[0] == "settle":
            account, expiry_id, jump = intent[1:]
            listed = self.ctx.expiries[ExpiryId(expiry_id)]
            settle = SettleExpiryOp(AccountId(int(account)), ExpiryId(expiry_id))
            if jump and self.state.counters.clock < listed.timestamp <= self.ctx.timestamp:
                return [TickOp(listed.timestamp), settle]
            return [settle]
        return [self.make_one(intent)]

    def make_one(self, intent: tuple[object, ...]) -> Operation:
        kind = intent[0]
        clock = self.state.counters.clock
        if kind == "deposit":
            return deposit(int(intent[1]), int(intent[2]))
        if kind == "trade":
            _, maker, other, s, side, q, p, reuse, fee = intent
            taker = (int(maker) + int(other)) % ACCOUNTS
            price, life = px(int(p)), max(clock, NOW) + 40 * 86_400
            maker_terms = order_terms(self.nonce(int(maker)), price, int(q) * 2, life)
            old = self.orders[int(maker)]
            if reuse and old:
                s, side, maker_terms = old[int(reuse) % len(old)]
                price = maker_terms.price
            else:
                self.orders[int(maker)].append((int(s), side, maker_terms))
            expiry, strike, option = SERIES[int(s)]
            taker_terms = order_terms(self.nonce(int(taker)), price, int(q), life)
            premium = price * int(q) // 100
            return trade(int(maker), int(taker), int(q), price, maker_side=side, expiry=expiry,
                         strike=strike, kind=option, maker_terms=maker_terms, taker_terms=taker_terms,
                         maker_fee=premium * int(fee) // 200, taker_fee=premium // 100 if fee == 2 else 0,
                         nonces=(maker_terms.nonce, taker_terms.nonce))
        if kind == "rfq":
            _, maker, other, size, ratio, is_buy, p1, p2 = intent
            taker = (int(maker) + int(other)) % ACCOUNTS
            life = max(clock, NOW) + 30
            legs = [leg(3000, OptionKind.CALL, int(ratio), bool(is_buy), px(int(p1))),
                    leg(3200, OptionKind.CALL, 1, not is_buy, px(int(p2)))]
            return rfq_fill(int(maker), int(taker), int(size), legs, quote_nonce=self.nonce(int(maker)),
                            accept_nonce=self.nonce(int(taker)), quote_expiry=life,
                            accept_expiry=life, side=Side.SELL)
        if kind == "cancel":
            account, pick = int(intent[1]), int(intent[2])
            mine = self.orders[account]
            nonce = mine[pick % len(mine)][2].nonce if pick and mine else self.nonce(account)
            message = Cancel(ADDRESSES[account], Digest(bytes(32)), Nonce(nonce), Timestamp(max(clock, NOW) + 60))
            return CancelOp(AccountId(account), Nonce(nonce), Digest(bytes(32)), message.expiry,
                            sign(DOMAIN, message, KEYS[account]))
        if kind == "withdraw":
            account = int(intent[1])
            leaf = self.state.accounts.get(AccountId(account))
            free = compute_free_collateral(leaf, self.ctx) if leaf else USDC
            amount = Amount(max(1, int(free * float(intent[2]))))
            message = Withdrawal(ADDRESSES[account], ADDRESSES[account], amount, Nonce(self.nonce(account)),
                                 Timestamp(max(clock, NOW) + 60))
            return WithdrawalOp(AccountId(account), message.nonce, message.recipient, amount, message.expiry,
                                sign(DOMAIN, message, KEYS[account]))
        if kind == "forced":
            account, requested, wrong = int(intent[1]), int(intent[2]), intent[3]
            leaf = self.state.accounts.get(AccountId(account))
            paid = min(requested, compute_free_collateral(leaf, self.ctx)) if leaf else 0
            return ForcedWithdrawalOp(AccountId(account), ADDRESSES[account], Amount(requested),
                                      Amount(paid + 1 if wrong else paid))
        if kind == "fee":
            return FeeOp(Amount(int(intent[1])))
        return TickOp(Timestamp(min(max(clock, NOW) + int(intent[1]), self.ctx.timestamp)))

    def record(self, op: Operation, before: SettlementState) -> None:
        """Book-keeping for an accepted operation."""
        effect = compute_operation_effect(before, op, self.ctx)
        if isinstance(op, DepositOp):
            self.deposited += op.amount
        if effect.payout is not None:
            self.withdrawn += effect.payout.amount
        if isinstance(op, SettleExpiryOp):
            for p in before.accounts[op.account].positions:
                if p.expiry_id == op.expiry_id:
                    self.settled[(p.expiry_id, p.strike, int(p.kind))] += p.quantity
        if isinstance(op, TradeOp | RfqFillOp):
            sizes = ((op.maker_order.quantity, op.taker_order.quantity) if isinstance(op, TradeOp)
                     else (op.quote.size, None))
            fill = op.quantity if isinstance(op, TradeOp) else op.size
            for (_, entry), size in zip(effect.entries, sizes, strict=True):
                if size is not None:
                    self.sizes[entry.digest] = size
                    self.fills[entry.digest] += fill
        self.accepted.append(op)


def check_invariants(h: Harness) -> None:
    state, ctx = h.state, h.ctx
    price = compute_settlement_price(ctx.expiries[E1.expiry_id], ctx.contract_unit)
    open_payoff, net = 0, defaultdict(int, h.settled)
    for leaf in state.accounts.values():
        assert leaf.balance >= compute_account_requirement(leaf.positions, ctx)
        for p in leaf.positions:
            net[(p.expiry_id, p.strike, int(p.kind))] += p.quantity
            if p.expiry_id == E1.expiry_id:
                scaled = p.quantity * compute_intrinsic_value(p.kind, p.strike, price)
                assert scaled % ctx.contract_unit == 0
                open_payoff += scaled // ctx.contract_unit
    cash = sum(leaf.balance for leaf in state.accounts.values()) + state.counters.fee_pool
    assert cash + h.withdrawn + open_payoff == h.deposited
    assert all(q == 0 for q in net.values()), dict(net)
    for key, entry in state.entries.items():
        if entry.status is not EntryStatus.USED and entry.digest in h.sizes:
            assert entry.filled == h.fills[entry.digest] <= h.sizes[entry.digest], key


def run(sequence: list[tuple[object, ...]]) -> Harness:
    """Apply every intent; check rejection leaves everything unchanged and the invariants hold."""
    h = Harness(CTX)
    mirror = BatchRun(h.state, CTX, 10**6)
    for op in (op for intent in sequence for op in h.make(intent)):
        before = h.state
        snapshot = (dict(mirror.accounts), dict(mirror.entries), mirror.counters)
        try:
            after = apply_operation(before, op, CTX)
        except SettlementError as exc:
            h.refused += 1
            assert get_state_root(before) == get_state_root(h.state)
            try:
                mirror.apply(op)
            except SettlementError as again:
                assert type(again) is type(exc)
            assert (dict(mirror.accounts), dict(mirror.entries), mirror.counters) == snapshot
            witness = compute_window_witness(before, [op], CTX)
            try:
                verify_window(get_state_root(before), [op], witness, CTX)
            except SettlementError as proven:
                assert type(proven) is type(exc)
            else:
                raise AssertionError(f"the fraud proof accepted {type(exc).__name__}")
            continue
        mirror.apply(op)
        h.state = after
        h.record(op, before)
        check_invariants(h)
    mirror.abort()
    return h


sequences = st.lists(intents, min_size=12, max_size=40).map(
    lambda rest: [("deposit", i, 40_000) for i in range(ACCOUNTS)] + [("tick", 1)] + rest)


@PROPERTY_SETTINGS
@given(sequences)
def test_invariants_hold_after_every_operation_and_refusals_change_nothing(sequence: list[tuple[object, ...]]
                                                                          ) -> None:
    h = run(sequence)
    assert h.accepted


@PROPERTY_SETTINGS
@given(sequences, st.integers(1, 3))
def test_batches_are_deterministic_and_agree_across_boundaries(sequence: list[tuple[object, ...]],
                                                               cuts: int) -> None:
    h = run(sequence)
    ops = h.accepted
    one = apply_batch(compute_genesis_state(), ops, CTX, K)
    two = apply_batch(compute_genesis_state(), ops, CTX, K)
    assert compute_header_hash(one.header) == compute_header_hash(two.header)
    assert get_state_root(one.state) == get_state_root(h.state) and one.state == h.state
    state, size = compute_genesis_state(), -(-len(ops) // cuts)
    for start in range(0, len(ops), size):
        state = apply_batch(state, ops[start:start + size], CTX, K).state
    assert state == h.state and get_state_root(state) == get_state_root(h.state)
    for key, entry in state.entries.items():
        if entry.digest in h.sizes and entry.status is not EntryStatus.USED:
            assert entry.filled <= h.sizes[entry.digest], key


@PROPERTY_SETTINGS
@given(sequences, st.data())
def test_verify_window_from_witnesses_equals_the_full_stf(sequence: list[tuple[object, ...]],
                                                          data: st.DataObject) -> None:
    ops = run(sequence).accepted
    result = apply_batch(compute_genesis_state(), ops, CTX, K)
    window = data.draw(st.integers(0, len(result.header.checkpoint_roots) - 1), label="window")
    start = compute_genesis_state() if window == 0 else apply_batch(
        compute_genesis_state(), ops[:window * K], CTX, K).state
    checkpoint = result.header.prev_root if window == 0 else result.header.checkpoint_roots[window - 1]
    assert get_state_root(start) == checkpoint
    chunk = ops[window * K:(window + 1) * K]
    windows = compute_windows(ops, K)
    assert decode_window(windows[window]) == tuple(chunk)
    witness = compute_window_witness(start, chunk, CTX)
    assert verify_window(checkpoint, chunk, witness, CTX) == result.header.checkpoint_roots[window]


# --- encoding ------------------------------------------------------------------------------------

u = st.integers
digests = st.binary(min_size=32, max_size=32)
signatures = st.binary(min_size=65, max_size=65)
addresses = st.sampled_from(ADDRESSES[1:])
order_terms_st = st.builds(OrderTerms, u(0, 2**64 - 1), u(0, 2**128 - 1), u(1, 2**128 - 1),
                           st.integers(0, 3), u(0, 2**64 - 1))
legs_st = st.builds(RfqLeg, digests, u(0, 2**128 - 1), st.sampled_from(list(OptionKind)), u(1, 2**32 - 1),
                    st.booleans(), u(0, 2**128 - 1))
operations = st.one_of(
    st.builds(DepositOp, u(0, 2**32 - 1), addresses, u(1, 2**128 - 1)),
    st.builds(TradeOp, u(0, 2**32 - 1), u(0, 2**32 - 1), digests, u(0, 2**128 - 1),
              st.sampled_from(list(OptionKind)), st.sampled_from([Side.BUY, Side.SELL]), u(1, 2**95),
              u(0, 2**128 - 1), u(0, 2**128 - 1), u(0, 2**128 - 1), order_terms_st, order_terms_st,
              signatures, signatures),
    st.builds(RfqFillOp, u(0, 2**32 - 1), u(0, 2**32 - 1), u(1, 2**128 - 1), u(0, 2**128 - 1),
              u(0, 2**128 - 1),
              st.builds(QuoteTerms, u(0, 2**64 - 1), digests, st.sampled_from([Side.BUY, Side.SELL]),
                        u(1, 2**128 - 1), u(0, 2**64 - 1), st.lists(legs_st, min_size=1, max_size=8).map(tuple)),
              st.builds(AcceptTerms, u(0, 2**64 - 1), u(0, 2**64 - 1)), signatures, signatures),
    st.builds(CancelOp, u(0, 2**32 - 1), u(0, 2**64 - 1), digests, u(0, 2**64 - 1), signatures),
    st.builds(WithdrawalOp, u(0, 2**32 - 1), u(0, 2**64 - 1), addresses, u(1, 2**128 - 1), u(0, 2**64 - 1),
              signatures),
    st.builds(ForcedWithdrawalOp, u(0, 2**32 - 1), addresses, u(1, 2**128 - 1), u(0, 2**128 - 1)),
    st.builds(FeeOp, u(1, 2**128 - 1)),
    st.builds(SettleExpiryOp, u(0, 2**32 - 1), digests),
    st.builds(TickOp, u(0, 2**64 - 1)),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(operations, min_size=1, max_size=12))
def test_encoding_round_trips(ops: list[Operation]) -> None:
    core = b"".join(encode_core(op) for op in ops)
    auth = b"".join(encode_auth(op) for op in ops)
    assert decode_operations(core, auth) == tuple(ops)
    assert tuple(op for w in compute_windows(ops, 5) for op in decode_window(w)) == tuple(ops)


def test_addresses_are_checksummed_once_decoded() -> None:
    op = DepositOp(AccountId(1), Address(ADDRESSES[1].lower()), Amount(1))
    assert decode_operations(encode_core(op)) == (op,) and op.owner == ADDRESSES[1]
