"""The one chain interface every other package talks to, and the contract binding on top of it.

A backend (in-process EVM or JSON-RPC) implements four raw primitives: ``_raw_deploy``,
``_raw_call``, ``_raw_transact`` and the clock/snapshot hooks. Everything above that — ABI
encoding, revert decoding, event decoding, overload resolution — lives here once, so both
backends give the same :class:`Contract` with the same behaviour.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils import event_abi_to_log_topic, function_abi_to_4byte_selector, to_checksum_address

from clearhouse.chain.artifacts import Artifact, load_artifact
from clearhouse.errors import ChainError, ContractRevert
from clearhouse.types import Address, ChainId, Gas, Timestamp

__all__ = ["Chain", "Contract", "Event", "LogEntry", "RawReceipt", "Receipt", "decode_revert", "dev_accounts"]

DEV_MNEMONIC = "test test test test test test test test test test test junk"
"""anvil's default mnemonic: the same ten funded accounts on every backend."""

_ERROR_SELECTOR = bytes.fromhex("08c379a0")  # Error(string)
_PANIC_SELECTOR = bytes.fromhex("4e487b71")  # Panic(uint256)


@cache
def dev_accounts(count: int = 10) -> tuple[LocalAccount, ...]:
    """The deterministic funded development accounts (anvil's defaults)."""
    Account.enable_unaudited_hdwallet_features()
    return tuple(
        Account.from_mnemonic(DEV_MNEMONIC, account_path=f"m/44'/60'/0'/0/{i}") for i in range(count)
    )


def decode_revert(data: bytes) -> str | None:
    """The human reason carried by revert data: ``Error(string)``, ``Panic(code)`` or ``None``."""
    if data[:4] == _ERROR_SELECTOR:
        try:
            (reason,) = abi_decode(["string"], data[4:])
            return str(reason)
        except Exception:  # malformed revert payload: report it raw
            return None
    if data[:4] == _PANIC_SELECTOR and len(data) >= 36:
        return f"panic: 0x{int.from_bytes(data[4:36], 'big'):02x}"
    return None


@dataclass(frozen=True, slots=True)
class Event:
    """A decoded contract log."""

    address: Address
    """The emitting contract."""
    name: str
    """The event name from the ABI."""
    args: dict[str, Any]
    """Decoded arguments by name (addresses checksummed, bytesN as bytes)."""


@dataclass(frozen=True, slots=True)
class LogEntry:
    """One log as the chain keeps it, with where it was emitted (for ``Chain.get_logs``)."""

    address: Address
    """The emitting contract (checksummed)."""
    topics: tuple[bytes, ...]
    """Topic words (the first is the event signature's hash)."""
    data: bytes
    """Non-indexed arguments, ABI-encoded."""
    block_number: int
    """Block that included the transaction."""
    tx_hash: str
    """The emitting transaction (``0x``-prefixed hex)."""
    log_index: int
    """Position of the log in its block (in-process: in the chain's whole history)."""


@dataclass(frozen=True, slots=True)
class RawReceipt:
    """What a backend reports for one executed transaction, before ABI decoding."""

    tx_hash: str
    """Transaction hash (the in-process backend makes a unique synthetic one)."""
    status: bool
    """True if the transaction succeeded."""
    gas_used: Gas
    """Total gas charged to the transaction (intrinsic + execution − refund, EIP-7623 floor)."""
    logs: tuple[tuple[str, tuple[bytes, ...], bytes], ...]
    """(address, topics, data) per log, in order."""
    output: bytes = b""
    """Return data, or revert data when ``status`` is false."""
    contract_address: Address | None = None
    """The created contract, for a deployment."""
    block_number: int = 0
    """Block that included the transaction."""


@dataclass(frozen=True, slots=True)
class Receipt:
    """A successful transaction: gas used and decoded events."""

    tx_hash: str
    """Transaction hash."""
    gas_used: Gas
    """Total gas charged to the transaction."""
    events: tuple[Event, ...]
    """Decoded logs of every contract the chain knows the ABI of, in emission order."""
    block_number: int
    """Block that included the transaction."""
    calldata_size: int = 0
    """Bytes of calldata sent (to compare gas against the calldata floor)."""
    raw_logs: tuple[tuple[str, tuple[bytes, ...], bytes], ...] = field(default=(), repr=False)
    """Undecoded logs, for events of unknown contracts."""

    def events_named(self, name: str) -> list[Event]:
        """Events with this name, in order."""
        return [e for e in self.events if e.name == name]


def _abi_type(item: dict[str, Any]) -> str:
    """Canonical ABI type string of one input/output, expanding tuples."""
    t = str(item["type"])
    if t.startswith("tuple"):
        inner = ",".join(_abi_type(c) for c in item["components"])
        return f"({inner}){t[5:]}"
    return t


def _normalize(value: Any, abi_type: str) -> Any:
    """Make decoded values friendly: checksummed addresses, tuples of lists become lists."""
    if abi_type == "address":
        return Address(to_checksum_address(value))
    if abi_type.endswith("]") and isinstance(value, (list, tuple)):
        inner = abi_type[: abi_type.rindex("[")]
        return [_normalize(v, inner) for v in value]
    return value


class Contract:
    """A deployed contract bound to a chain: ``call`` for views, ``transact`` for mutations."""

    def __init__(self, chain: Chain, artifact: Artifact, address: str) -> None:
        self.chain = chain
        self.artifact = artifact
        self.address = Address(to_checksum_address(address))
        self._functions: dict[str, list[dict[str, Any]]] = {}
        for item in artifact.abi:
            if item.get("type") == "function":
                self._functions.setdefault(item["name"], []).append(item)

    def __repr__(self) -> str:
        return f"<{self.artifact.name} at {self.address}>"

    def _resolve(self, fn: str, args: Sequence[Any]) -> dict[str, Any]:
        candidates = [f for f in self._functions.get(fn, []) if len(f["inputs"]) == len(args)]
        if not candidates:
            raise ChainError(f"{self.artifact.name} has no function {fn} taking {len(args)} arguments")
        return candidates[0]

    def encode(self, fn: str, *args: Any) -> bytes:
        """Calldata for ``fn(*args)``."""
        f = self._resolve(fn, args)
        types = [_abi_type(i) for i in f["inputs"]]
        selector = function_abi_to_4byte_selector(f)  # type: ignore[arg-type]
        return selector + abi_encode(types, list(args))

    def _decode_output(self, fn: str, args: Sequence[Any], output: bytes) -> Any:
        f = self._resolve(fn, args)
        types = [_abi_type(o) for o in f["outputs"]]
        if not types:
            return None
        values = [_normalize(v, t) for v, t in zip(abi_decode(types, output), types, strict=True)]
        return values[0] if len(values) == 1 else tuple(values)

    def call(self, fn: str, *args: Any, sender: str | None = None) -> Any:
        """Run ``fn(*args)`` without changing state and return its decoded result."""
        output = self.chain._raw_call(self.address, self.encode(fn, *args), sender)
        return self._decode_output(fn, args, output)

    def transact(
        self, fn: str, *args: Any, sender: str | LocalAccount | None = None, value: int = 0,
        gas: int | None = None,
    ) -> Receipt:
        """Send ``fn(*args)`` as a transaction; raise :class:`ContractRevert` if it reverts."""
        return self.chain.transact(self.address, self.encode(fn, *args), sender=sender, value=value, gas=gas)


class Chain(abc.ABC):
    """An EVM chain: deploy, call, transact, read events, and (on dev chains) move time."""

    backend: str = "abstract"

    def __init__(self) -> None:
        self.accounts: list[LocalAccount] = list(dev_accounts())
        self._abis_by_address: dict[str, Artifact] = {}
        self._event_index: dict[bytes, dict[str, Any]] = {}

    # --- raw primitives a backend implements -------------------------------------------------
    @abc.abstractmethod
    def _raw_call(self, to: str, data: bytes, sender: str | None) -> bytes:
        """Execute a read-only call; raise ContractRevert on revert."""

    @abc.abstractmethod
    def _raw_transact(self, to: str | None, data: bytes, sender: LocalAccount, value: int,
                      gas: int | None) -> RawReceipt:
        """Execute a transaction (``to=None`` deploys ``data``); report it, reverted or not."""

    @property
    @abc.abstractmethod
    def chain_id(self) -> ChainId:
        """The chain id, read live from the chain (never cached across forks)."""

    @abc.abstractmethod
    def now(self) -> Timestamp:
        """Timestamp of the block the next transaction sees."""

    @abc.abstractmethod
    def block_number(self) -> int:
        """Number of the latest block."""

    @abc.abstractmethod
    def time_travel(self, seconds: int) -> None:
        """Advance the chain clock by ``seconds`` (dev chains only)."""

    @abc.abstractmethod
    def snapshot(self) -> Any:
        """Take a state snapshot (dev chains only)."""

    @abc.abstractmethod
    def revert_to(self, snapshot: Any) -> None:
        """Return to a snapshot taken earlier (dev chains only)."""

    @abc.abstractmethod
    def get_balance(self, address: str) -> int:
        """Native balance in wei."""

    @abc.abstractmethod
    def get_code(self, address: str) -> bytes:
        """Runtime bytecode at ``address``."""

    @abc.abstractmethod
    def get_logs(self, address: str, from_block: int = 0, to_block: int | None = None) -> list[LogEntry]:
        """Logs emitted by ``address`` in blocks ``from_block..to_block`` (inclusive; ``None`` =
        latest), in emission order."""

    @abc.abstractmethod
    def get_transaction_input(self, tx_hash: str) -> bytes:
        """The calldata a mined transaction carried (what data-availability readers decode)."""

    def get_block_timestamp(self, block: int) -> Timestamp:
        """The timestamp of block ``block`` (what dates a log: reputation's uptime slots)."""
        raise ChainError(f"{self.backend} cannot read block timestamps")

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release resources (processes, connections)."""

    # --- the shared layer --------------------------------------------------------------------
    def _sender(self, sender: str | LocalAccount | None) -> LocalAccount:
        if sender is None:
            return self.accounts[0]
        if isinstance(sender, LocalAccount):
            return sender
        for acct in self.accounts:
            if acct.address.lower() == str(sender).lower():
                return acct
        raise ChainError(f"no key for sender {sender}: pass a LocalAccount")

    def _register(self, artifact: Artifact, address: str) -> None:
        self._abis_by_address[address.lower()] = artifact
        for item in artifact.abi:
            if item.get("type") == "event":
                self._event_index[event_abi_to_log_topic(item)] = item  # type: ignore[arg-type]

    def deploy(self, artifact: Artifact | str, *args: Any, sender: str | LocalAccount | None = None,
               value: int = 0) -> Contract:
        """Deploy a contract (an :class:`Artifact` or the name of a file in ``contracts/``)."""
        art = load_artifact(artifact) if isinstance(artifact, str) else artifact
        ctor = next((i for i in art.abi if i.get("type") == "constructor"), None)
        types = [_abi_type(i) for i in ctor["inputs"]] if ctor else []
        data = art.bytecode + (abi_encode(types, list(args)) if types else b"")
        raw = self._raw_transact(None, data, self._sender(sender), value, None)
        if not raw.status or raw.contract_address is None:
            raise ContractRevert(decode_revert(raw.output), data=raw.output, contract=art.name)
        self._register(art, raw.contract_address)
        return Contract(self, art, raw.contract_address)

    def at(self, artifact: Artifact | str, address: str) -> Contract:
        """Bind an already-deployed contract."""
        art = load_artifact(artifact) if isinstance(artifact, str) else artifact
        self._register(art, address)
        return Contract(self, art, address)

    def transact(self, to: str, data: bytes, *, sender: str | LocalAccount | None = None,
                 value: int = 0, gas: int | None = None) -> Receipt:
        """Send raw calldata; decode events; raise :class:`ContractRevert` on failure."""
        raw = self._raw_transact(to, data, self._sender(sender), value, gas)
        if not raw.status:
            raise ContractRevert(decode_revert(raw.output), data=raw.output, to=to, gas_used=raw.gas_used)
        return Receipt(
            tx_hash=raw.tx_hash,
            gas_used=raw.gas_used,
            events=tuple(self._decode_logs(raw.logs)),
            block_number=raw.block_number,
            calldata_size=len(data),
            raw_logs=raw.logs,
        )

    def get_events(self, address: str, from_block: int = 0, to_block: int | None = None
                   ) -> list[tuple[LogEntry, Event]]:
        """``get_logs`` decoded with the ABIs this chain knows (logs of unknown events are skipped)."""
        out = []
        for entry in self.get_logs(address, from_block, to_block):
            decoded = self._decode_logs([(entry.address, entry.topics, entry.data)])
            if decoded:
                out.append((entry, decoded[0]))
        return out

    def _decode_logs(self, logs: Sequence[tuple[str, tuple[bytes, ...], bytes]]) -> list[Event]:
        events = []
        for address, topics, data in logs:
            if not topics or topics[0] not in self._event_index:
                continue
            abi = self._event_index[topics[0]]
            indexed = [i for i in abi["inputs"] if i.get("indexed")]
            plain = [i for i in abi["inputs"] if not i.get("indexed")]
            args: dict[str, Any] = {}
            for item, topic in zip(indexed, topics[1:], strict=False):
                t = _abi_type(item)
                # dynamic indexed values are stored as their hash: keep the topic bytes
                is_dynamic = t in ("string", "bytes") or t.endswith("]") or t.startswith("(")
                args[item["name"]] = topic if is_dynamic else _normalize(abi_decode([t], topic)[0], t)
            types = [_abi_type(i) for i in plain]
            for item, value in zip(plain, abi_decode(types, data), strict=True):
                args[item["name"]] = _normalize(value, _abi_type(item))
            events.append(Event(Address(to_checksum_address(address)), abi["name"], args))
        return events
