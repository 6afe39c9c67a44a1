"""In-process EVM backend: py-evm driven through titanoboa, zero set-up, fast.

titanoboa executes messages, not transactions, so this backend adds the transaction envelope the
real chain applies: sender nonce, warm sender/recipient/precompiles (EIP-2929), intrinsic gas,
refund cap (EIP-3529) and the calldata floor (EIP-7623). ``tests/contracts/test_chain_backends.py``
checks that the gas it reports equals anvil's receipts for the same transactions.
"""

from __future__ import annotations

import itertools
from typing import Any

import boa
from eth_account.signers.local import LocalAccount
from eth_utils import keccak, to_checksum_address

from clearhouse.chain.base import Chain, LogEntry, RawReceipt, decode_revert
from clearhouse.errors import ChainError, ContractRevert
from clearhouse.types import Address, ChainId, Gas, Timestamp

__all__ = ["DEV_CHAIN_ID", "GAS_LIMIT", "InProcessChain", "compute_intrinsic_gas"]

DEV_CHAIN_ID = 31337
"""Same chain id as anvil, so signatures made for one dev chain read the same on the other."""
GAS_LIMIT = 30_000_000
"""Block gas limit of both dev backends (anvil is started with the same)."""
GENESIS_TIMESTAMP = 1_790_000_000
"""A fixed start time (2026-09-21) so in-process runs are reproducible."""
_PRECOMPILES = [i.to_bytes(20, "big") for i in range(1, 0x12)]  # 0x01..0x11 as of Prague


def compute_intrinsic_gas(data: bytes, is_create: bool) -> tuple[int, int]:
    """(intrinsic gas, EIP-7623 floor) of a transaction carrying ``data``."""
    zeros = data.count(0)
    nonzeros = len(data) - zeros
    intrinsic = 21_000 + 4 * zeros + 16 * nonzeros
    if is_create:
        intrinsic += 32_000 + 2 * ((len(data) + 31) // 32)
    floor = 21_000 + 10 * (zeros + 4 * nonzeros)
    return intrinsic, floor


class InProcessChain(Chain):
    """A private dev chain in this process; every instance is independent (no global state)."""

    backend = "inprocess"

    def __init__(self, *, chain_id: int = DEV_CHAIN_ID, timestamp: int = GENESIS_TIMESTAMP) -> None:
        super().__init__()
        self._env = boa.Env()
        self._env.evm.patch.chain_id = chain_id
        self._env.evm.patch.gas_limit = GAS_LIMIT
        self._env.evm.patch.timestamp = timestamp
        self._env.evm.patch.block_number = 1
        self._tx_counter = itertools.count(1)
        self._logs: list[LogEntry] = []  # every successful transaction's logs, for get_logs
        self._inputs: dict[str, bytes] = {}  # calldata by transaction hash
        self._block_times: dict[int, int] = {}  # timestamp of each block a transaction landed in
        for acct in self.accounts:
            self._env.set_balance(acct.address, 10_000 * 10**18)

    @property
    def chain_id(self) -> ChainId:
        return ChainId(int(self._env.evm.patch.chain_id))

    def now(self) -> Timestamp:
        return Timestamp(int(self._env.evm.patch.timestamp))

    def block_number(self) -> int:
        return int(self._env.evm.patch.block_number)

    def time_travel(self, seconds: int) -> None:
        self._env.evm.patch.timestamp += seconds
        self._env.evm.patch.block_number += 1

    def snapshot(self) -> Any:
        # Transactions lock their changes (so SSTORE sees true original values, EIP-2200), which
        # py-evm's journal snapshots cannot undo; a persisted state root can always be returned to.
        db = self._env.evm.vm.state._account_db
        db.persist()
        patch = self._env.evm.patch
        return db.state_root, patch.timestamp, patch.block_number, len(self._logs)

    def revert_to(self, snapshot: Any) -> None:
        root, timestamp, block, logs = snapshot
        del self._logs[logs:]
        db = self._env.evm.vm.state._account_db
        db.persist()  # flush pending changes, then move the root back
        db.state_root = root
        db._account_cache.clear()
        self._env.evm.patch.timestamp = timestamp
        self._env.evm.patch.block_number = block

    def simulate_fork(self, chain_id: int) -> None:
        """Continue the same state under another chain id, as a chain split looks to contracts."""
        self._env.evm.patch.chain_id = chain_id

    def get_balance(self, address: str) -> int:
        return int(self._env.get_balance(address))

    def get_code(self, address: str) -> bytes:
        return bytes(self._env.get_code(address))

    def get_logs(self, address: str, from_block: int = 0, to_block: int | None = None) -> list[LogEntry]:
        wanted = address.lower()
        last = self.block_number() if to_block is None else to_block
        return [e for e in self._logs
                if e.address.lower() == wanted and from_block <= e.block_number <= last]

    def get_block_timestamp(self, block: int) -> Timestamp:
        if block == self.block_number():
            return self.now()
        if block not in self._block_times:
            raise ChainError(f"no transaction landed in block {block}")
        return Timestamp(self._block_times[block])

    def get_transaction_input(self, tx_hash: str) -> bytes:
        data = self._inputs.get(tx_hash.lower())
        if data is None:
            raise ChainError(f"unknown transaction {tx_hash}")
        return data

    def _raw_call(self, to: str, data: bytes, sender: str | None) -> bytes:
        comp = self._env.execute_code(
            to_address=to, sender=sender or self.accounts[0].address, data=data,
            gas=GAS_LIMIT, is_modifying=False, simulate=True,
        )
        if comp.is_error:
            output = bytes(comp.output)
            raise ContractRevert(decode_revert(output), data=output, to=to)
        return bytes(comp.output)

    def _prepare_tx(self, sender: str, to: str | None) -> None:
        # a transaction starts with fresh EIP-2929 access sets, pre-warmed like a real tx
        evm = self._env.evm
        evm.reset_access_counters()
        state = evm.vm.state
        for addr in [bytes.fromhex(sender[2:]), *_PRECOMPILES]:
            state.mark_address_warm(addr)
        if to is not None:
            state.mark_address_warm(bytes.fromhex(to[2:]))

    def _raw_transact(self, to: str | None, data: bytes, sender: LocalAccount, value: int,
                      gas: int | None) -> RawReceipt:
        is_create = to is None
        intrinsic, floor = compute_intrinsic_gas(data, is_create)
        limit = gas if gas is not None else GAS_LIMIT
        if limit < max(intrinsic, floor):
            raise ContractRevert("intrinsic gas too low", to=to)
        self._prepare_tx(sender.address, to)
        created: Address | None = None
        state = self._env.evm.vm.state
        if is_create:
            target, comp = self._env.deploy(sender=sender.address, gas=limit - intrinsic,
                                            value=value, bytecode=data)
            if not comp.is_error:
                created = Address(to_checksum_address(target.canonical_address))
        else:
            assert to is not None
            state.increment_nonce(bytes.fromhex(sender.address[2:]))
            comp = self._env.execute_code(to_address=to, sender=sender.address, gas=limit - intrinsic,
                                          value=value, data=data)
        used = intrinsic + comp.get_gas_used()
        if not comp.is_error:
            used -= min(comp.get_gas_refund(), used // 5)
        used = max(used, floor)
        state.lock_changes()  # end of transaction: current values become the next tx's originals
        logs = () if comp.is_error else tuple(
            (to_checksum_address(addr), tuple(t.to_bytes(32, "big") for t in topics), bytes(d))
            for addr, topics, d in comp.get_log_entries()
        )
        n = next(self._tx_counter)
        tx_hash = "0x" + keccak(n.to_bytes(32, "big") + data[:64]).hex()
        self._inputs[tx_hash] = data
        self._block_times[self.block_number()] = self.now()
        self._logs.extend(LogEntry(Address(a), t, d, self.block_number(), tx_hash, len(self._logs) + i)
                          for i, (a, t, d) in enumerate(logs))
        return RawReceipt(
            tx_hash=tx_hash,
            status=not comp.is_error,
            gas_used=Gas(used),
            logs=logs,
            output=bytes(comp.output),
            contract_address=created,
            block_number=self.block_number(),
        )
