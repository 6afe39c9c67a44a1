"""The settlement state: account leaves, consumed-nonce entries, counters, and their commitment.

A :class:`SettlementState` is a value: its leaves, counters and roots never change. Two sparse
Merkle trees commit it — accounts (depth 32, key = account id) and consumed entries (depth 96, key =
``account_id · 2^64 + nonce``) — and ``state_root = keccak(0x02 ‖ accounts_root ‖ consumed_root ‖
counters)``. The trees' node stores are a cache that follows the newest state derived from them:
deriving a state moves the cache forward in place, and asking an older state for a proof rebuilds
its trees from its leaves (slow, but correct). Roots are fields, so they are always at hand.

Byte layouts (``docs/protocol.md`` § Settlement) are fixed-width and big-endian so the Vyper fraud
proof rebuilds every value hash with one ``concat`` and one ``keccak256``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import IntEnum
from typing import ClassVar, Final, Protocol, TypeVar

from clearhouse.errors import MalformedOperation
from clearhouse.market.instruments import OptionKind
from clearhouse.merkle.hashing import ZERO_DIGEST
from clearhouse.merkle.sparse import EMPTY_VALUE, CompactProof, SparseMerkleTree
from clearhouse.messages.checks import compute_checksum_address
from clearhouse.messages.keccak import keccak256
from clearhouse.types import (
    AccountId,
    Address,
    Amount,
    Digest,
    ExpiryId,
    Price,
    Quantity,
    Timestamp,
)

__all__ = [
    "ACCOUNT_TREE_DEPTH",
    "ENTRY_TREE_DEPTH",
    "GENESIS_CLOCK",
    "MAX_ACCOUNT_ID",
    "MAX_NONCE",
    "MAX_UINT128",
    "NONCE_BITS",
    "NO_AMOUNT",
    "POSITION_SIZE",
    "STATE_ROOT_PREFIX",
    "Account",
    "ConsumedEntry",
    "Counters",
    "EntryStatus",
    "LayeredMap",
    "MerkleCache",
    "Position",
    "SettlementState",
    "StateCommitment",
    "StateView",
    "compute_account_hash",
    "compute_commitment_root",
    "compute_deposit_hash",
    "compute_entry_hash",
    "compute_entry_key",
    "compute_forced_hash",
    "compute_genesis_state",
    "compute_next_state",
    "compute_state",
    "decode_account",
    "encode_account",
    "encode_counters",
    "encode_entry",
    "get_account",
    "get_account_proof",
    "get_commitment",
    "get_entry",
    "get_entry_proof",
    "get_live_cache",
    "get_state_root",
]

K = TypeVar("K")
V = TypeVar("V")

ACCOUNT_TREE_DEPTH: Final = 32
"""Depth of the accounts tree: one leaf per 32-bit account id (the vault assigns ids in deposit order)."""
NONCE_BITS: Final = 64
"""Settlement nonces are below ``2^64``: the consumed key is ``account_id · 2^64 + nonce``."""
ENTRY_TREE_DEPTH: Final = ACCOUNT_TREE_DEPTH + NONCE_BITS
"""Depth of the consumed tree (96): exact keys, no hashing, 2.7× cheaper proofs than depth 256."""
MAX_ACCOUNT_ID: Final = (1 << ACCOUNT_TREE_DEPTH) - 1
"""Largest account id (``uint32``)."""
MAX_NONCE: Final = (1 << NONCE_BITS) - 1
"""Largest nonce a settled message may carry."""
MAX_UINT128: Final = (1 << 128) - 1
"""Largest balance, amount, price, strike, fill or fee (they are encoded in 16 bytes)."""
STATE_ROOT_PREFIX: Final = b"\x02"
"""First byte of the state-root preimage (the trees' leaves use ``0x00``, their nodes ``0x01``)."""
POSITION_SIZE: Final = 65
"""Bytes per position in an account leaf: expiry id 32 ‖ strike 16 ‖ kind 1 ‖ quantity 16."""
GENESIS_CLOCK: Final = Timestamp(0)
"""The clock of the genesis state (the first tick sets it)."""
NO_AMOUNT: Final = Amount(0)
"""Zero quote base units."""
_ACCOUNT_HEADER: Final = 37  # owner 20 ‖ balance 16 ‖ count 1


class EntryStatus(IntEnum):
    """What a consumed ``(account, nonce)`` slot records (``uint8``)."""

    ACTIVE = 0
    """An order or quote that has filled ``filled`` units so far and may fill more."""
    USED = 1
    """A one-shot message (accept, withdrawal) that has been applied."""
    CANCELLED = 2
    """The nonce was cancelled: nothing carrying it may apply any more."""


@dataclass(frozen=True, slots=True)
class Position:
    """One open option position: the series terms are in the leaf, so no witness needs them."""

    expiry_id: ExpiryId
    """The expiry (registry key) the series settles on."""
    strike: Price
    """Strike in quote base units per whole contract (a multiple of ``contract_unit``)."""
    kind: OptionKind
    """Call (0) or put (1)."""
    quantity: Quantity
    """Signed contract units: long > 0, short < 0; never 0, ``|q| ≤ 2^95``."""


@dataclass(frozen=True, slots=True)
class Account:
    """One account leaf."""

    owner: Address
    """The address that deposited first under this id; every signature must recover to it."""
    balance: Amount
    """Collateral in quote base units (premiums, fees and settlements included), ``< 2^128``."""
    positions: tuple[Position, ...] = ()
    """Open positions sorted by ``(expiry_id, strike, kind)``, no zero quantity, at most ``max_positions``."""


@dataclass(frozen=True, slots=True)
class ConsumedEntry:
    """What the slot ``(account, nonce)`` holds: the one message that used the nonce, and its fill."""

    digest: Digest
    """EIP-712 digest of the message holding the nonce (the order hash named by a cancel that found the
    slot empty; zero for a cancel by nonce only)."""
    filled: Quantity
    """Cumulative fill of an order (contract units) or quote (structure units); 0 for one-shot messages."""
    status: EntryStatus
    """Active, used or cancelled."""


@dataclass(frozen=True, slots=True)
class Counters:
    """The scalars of the state besides the two trees."""

    deposit_count: int = 0
    """Entries of the vault's deposit queue consumed so far (``uint64``)."""
    deposit_hash: Digest = ZERO_DIGEST
    """Hash chain over the consumed deposits; must equal the vault's chain at ``deposit_count``."""
    forced_count: int = 0
    """Entries of the vault's forced-withdrawal queue consumed so far (``uint64``)."""
    forced_hash: Digest = ZERO_DIGEST
    """Hash chain over the consumed forced withdrawals; must equal the vault's at ``forced_count``."""
    clock: Timestamp = GENESIS_CLOCK
    """Settlement time: messages expire and series stop trading against it; moved only by ticks."""
    fee_pool: Amount = NO_AMOUNT
    """Trading fees collected and not yet swept to the fee account (quote base units)."""


@dataclass(frozen=True, slots=True)
class StateCommitment:
    """The preimage of a state root: what a batch header publishes and a fraud proof opens."""

    accounts_root: Digest
    """Root of the accounts tree."""
    consumed_root: Digest
    """Root of the consumed-entries tree."""
    counters: Counters
    """Queue positions and hashes, clock, fee pool."""


class StateView(Protocol):
    """What an operation reads: account leaves, consumed entries and counters (nothing else)."""

    @property
    def accounts(self) -> Mapping[AccountId, Account]:
        """Account leaves by id (absent = no leaf)."""

    @property
    def entries(self) -> Mapping[int, ConsumedEntry]:
        """Consumed entries by ``compute_entry_key`` (absent = unused nonce)."""

    @property
    def counters(self) -> Counters:
        """Queue positions and hashes, clock, fee pool."""


class LayeredMap(Mapping[K, V]):
    """An immutable mapping made of a small dict of writes over a parent mapping (copy on write).

    ``apply_operation`` derives a state per operation without copying the whole state: each
    derived state adds one layer, and a chain deeper than ``MAX_LAYERS`` is flattened once.
    """

    __slots__ = ("_depth", "_parent", "_writes")
    MAX_LAYERS: ClassVar[int] = 32
    _depth: int
    _parent: Mapping[K, V]
    _writes: dict[K, V]

    def __init__(self, parent: Mapping[K, V], writes: Mapping[K, V]) -> None:
        depth = parent._depth + 1 if isinstance(parent, LayeredMap) else 1
        if depth > self.MAX_LAYERS:
            parent, depth = dict(parent.items()), 1
        self._parent = parent
        self._writes = dict(writes)
        self._depth = depth

    def __getitem__(self, key: K) -> V:
        if key in self._writes:
            return self._writes[key]
        return self._parent[key]

    def __contains__(self, key: object) -> bool:
        return key in self._writes or key in self._parent

    def __iter__(self) -> Iterator[K]:
        yield from self._writes
        yield from (k for k in self._parent if k not in self._writes)

    def __len__(self) -> int:
        return len(self._writes) + sum(1 for k in self._parent if k not in self._writes)


# --- encodings ---------------------------------------------------------------------------------


def _address_bytes(address: str) -> bytes:
    return bytes.fromhex(address[2:])


def encode_account(account: Account) -> bytes:
    """``owner 20 ‖ balance uint128 ‖ count uint8 ‖ count × (expiryId 32 ‖ strike uint128 ‖ kind uint8 ‖ quantity int128)``."""
    parts = [_address_bytes(account.owner), account.balance.to_bytes(16, "big"),
             len(account.positions).to_bytes(1, "big")]
    for p in account.positions:
        parts.append(p.expiry_id + p.strike.to_bytes(16, "big") + bytes((int(p.kind),))
                     + p.quantity.to_bytes(16, "big", signed=True))
    return b"".join(parts)


def decode_account(data: bytes) -> Account:
    """Inverse of :func:`encode_account`; :class:`MalformedOperation` unless the bytes are canonical."""
    if len(data) < _ACCOUNT_HEADER or (len(data) - _ACCOUNT_HEADER) != data[36] * POSITION_SIZE:
        raise MalformedOperation("account leaf length does not match its position count", field="account")
    positions = []
    for offset in range(_ACCOUNT_HEADER, len(data), POSITION_SIZE):
        chunk = data[offset:offset + POSITION_SIZE]
        if chunk[48] > 1:
            raise MalformedOperation("position kind must be 0 or 1", field="kind")
        positions.append(Position(ExpiryId(chunk[:32]), Price(int.from_bytes(chunk[32:48], "big")),
                                  OptionKind(chunk[48]),
                                  Quantity(int.from_bytes(chunk[49:65], "big", signed=True))))
    account = Account(compute_checksum_address(data[:20]), Amount(int.from_bytes(data[20:36], "big")),
                      tuple(positions))
    keys = [(p.expiry_id, p.strike, p.kind) for p in positions]
    if keys != sorted(set(keys)) or any(p.quantity == 0 for p in positions):
        raise MalformedOperation("positions must be sorted, distinct and non-zero", field="positions")
    return account


def compute_account_hash(account: Account | None) -> Digest:
    """The accounts-tree value of a leaf: ``keccak(encode_account)``, or ``EMPTY_VALUE`` for no leaf."""
    if account is None:
        return EMPTY_VALUE
    return Digest(keccak256(encode_account(account)))


def encode_entry(entry: ConsumedEntry) -> bytes:
    """``digest 32 ‖ filled uint128 ‖ status uint8`` (49 bytes)."""
    return entry.digest + entry.filled.to_bytes(16, "big") + bytes((int(entry.status),))


def compute_entry_hash(entry: ConsumedEntry | None) -> Digest:
    """The consumed-tree value of an entry: ``keccak(encode_entry)``, or ``EMPTY_VALUE`` for none."""
    if entry is None:
        return EMPTY_VALUE
    return Digest(keccak256(encode_entry(entry)))


def compute_entry_key(account_id: AccountId, nonce: int) -> int:
    """The consumed-tree key of ``(account, nonce)``: ``account_id · 2^64 + nonce``."""
    return (account_id << NONCE_BITS) | nonce


def encode_counters(counters: Counters) -> bytes:
    """``depositCount uint64 ‖ depositHash ‖ forcedCount uint64 ‖ forcedHash ‖ clock uint64 ‖ feePool uint128``."""
    return b"".join((counters.deposit_count.to_bytes(8, "big"), counters.deposit_hash,
                     counters.forced_count.to_bytes(8, "big"), counters.forced_hash,
                     counters.clock.to_bytes(8, "big"), counters.fee_pool.to_bytes(16, "big")))


def compute_commitment_root(commitment: StateCommitment) -> Digest:
    """``state_root = keccak(0x02 ‖ accounts_root ‖ consumed_root ‖ encode_counters)`` (169-byte preimage)."""
    return Digest(keccak256(STATE_ROOT_PREFIX + commitment.accounts_root + commitment.consumed_root
                            + encode_counters(commitment.counters)))


def compute_deposit_hash(previous: Digest, account_id: AccountId, owner: Address, amount: Amount) -> Digest:
    """Next link of the deposit queue's hash chain: ``keccak(prev ‖ uint32 id ‖ owner ‖ uint128 amount)``."""
    return Digest(keccak256(previous + account_id.to_bytes(4, "big") + _address_bytes(owner)
                            + amount.to_bytes(16, "big")))


def compute_forced_hash(previous: Digest, account_id: AccountId, owner: Address, requested: Amount) -> Digest:
    """Next link of the forced-withdrawal queue: ``keccak(prev ‖ uint32 id ‖ owner ‖ uint128 requested)``."""
    return Digest(keccak256(previous + account_id.to_bytes(4, "big") + _address_bytes(owner)
                            + requested.to_bytes(16, "big")))


# --- the state and its Merkle cache ------------------------------------------------------------


class MerkleCache:
    """The two trees of one state lineage; ``head`` names the state they currently commit."""

    __slots__ = ("accounts", "entries", "head")

    def __init__(self, accounts: SparseMerkleTree, entries: SparseMerkleTree, head: object) -> None:
        self.accounts = accounts
        """The accounts tree (depth 32)."""
        self.entries = entries
        """The consumed-entries tree (depth 96)."""
        self.head = head
        """The token of the state these trees commit; any other state must rebuild its own."""


class _CacheBox:
    """Which cache a state uses (replaced when an older state has to rebuild its trees)."""

    __slots__ = ("cache",)

    def __init__(self, cache: MerkleCache) -> None:
        self.cache = cache


@dataclass(frozen=True, slots=True)
class SettlementState:
    """The whole settlement state at one point: a value (nothing in it ever changes)."""

    accounts: Mapping[AccountId, Account]
    """Account leaves by id."""
    entries: Mapping[int, ConsumedEntry]
    """Consumed entries by ``compute_entry_key``."""
    counters: Counters
    """Queue positions and hashes, clock, fee pool."""
    accounts_root: Digest
    """Root of the accounts tree over :attr:`accounts`."""
    consumed_root: Digest
    """Root of the consumed tree over :attr:`entries`."""
    _box: _CacheBox = field(repr=False, compare=False)
    """The Merkle cache (shared along a lineage; see the module docstring)."""
    _token: object = field(default_factory=object, repr=False, compare=False)
    """Identity of this state for the cache's ``head``."""


def _build_cache(accounts: Mapping[AccountId, Account], entries: Mapping[int, ConsumedEntry]) -> MerkleCache:
    account_tree = SparseMerkleTree(ACCOUNT_TREE_DEPTH)
    account_tree.update_many((k, compute_account_hash(a)) for k, a in accounts.items())
    entry_tree = SparseMerkleTree(ENTRY_TREE_DEPTH)
    entry_tree.update_many((k, compute_entry_hash(e)) for k, e in entries.items())
    return MerkleCache(account_tree, entry_tree, None)


def compute_state(accounts: Mapping[AccountId, Account], entries: Mapping[int, ConsumedEntry],
                  counters: Counters) -> SettlementState:
    """A state from its leaves and counters, with freshly built trees (``O(n · depth)`` hashing)."""
    cache = _build_cache(accounts, entries)
    state = SettlementState(dict(accounts), dict(entries), counters, cache.accounts.root,
                            cache.entries.root, _CacheBox(cache))
    cache.head = state._token
    return state


def compute_genesis_state() -> SettlementState:
    """The empty state every deployment starts from."""
    return compute_state({}, {}, Counters())


def get_live_cache(state: SettlementState) -> MerkleCache:
    """The trees of ``state``: its lineage's cache if it is the head, else rebuilt from its leaves."""
    cache = state._box.cache
    if cache.head is not state._token:
        cache = _build_cache(state.accounts, state.entries)
        cache.head = state._token
        state._box.cache = cache
    return cache


def compute_next_state(base: SettlementState, accounts: Mapping[AccountId, Account],
                       entries: Mapping[int, ConsumedEntry], counters: Counters,
                       written_accounts: Iterable[AccountId], written_entries: Iterable[int]) -> SettlementState:
    """The state after writes to ``base``: ``accounts``/``entries`` are the full new leaf maps and
    ``written_*`` the keys that differ. Moves ``base``'s cache forward (``base`` stays a valid value)."""
    cache = get_live_cache(base)
    cache.accounts.update_many((k, compute_account_hash(accounts.get(k))) for k in written_accounts)
    cache.entries.update_many((k, compute_entry_hash(entries.get(k))) for k in written_entries)
    state = SettlementState(accounts, entries, counters, cache.accounts.root, cache.entries.root,
                            _CacheBox(cache))
    cache.head = state._token
    return state


def get_commitment(state: SettlementState) -> StateCommitment:
    """The state-root preimage of ``state``."""
    return StateCommitment(state.accounts_root, state.consumed_root, state.counters)


def get_state_root(state: SettlementState) -> Digest:
    """The state root of ``state``."""
    return compute_commitment_root(get_commitment(state))


def get_account(view: StateView, account_id: AccountId) -> Account | None:
    """The leaf of ``account_id``, or ``None`` if it never deposited."""
    return view.accounts.get(account_id)


def get_entry(view: StateView, account_id: AccountId, nonce: int) -> ConsumedEntry | None:
    """The consumed entry of ``(account_id, nonce)``, or ``None`` if the nonce is unused."""
    return view.entries.get(compute_entry_key(account_id, nonce))


def get_account_proof(state: SettlementState, account_id: AccountId) -> CompactProof:
    """The compact proof of ``account_id``'s leaf (or its absence) under ``state.accounts_root``:
    what an exit from a finalised root submits."""
    return get_live_cache(state).accounts.get_proof(account_id)


def get_entry_proof(state: SettlementState, account_id: AccountId, nonce: int) -> CompactProof:
    """The compact proof of the ``(account_id, nonce)`` entry under ``state.consumed_root``."""
    return get_live_cache(state).entries.get_proof(compute_entry_key(account_id, nonce))
