"""JSON-RPC backend through web3.py: anvil for the devnet and tests, any EVM node in production.

Transactions are EIP-1559, signed locally with the sender's key and sent raw; the revert reason of
a failing transaction is read from gas estimation (or by replaying it as a call).
"""

from __future__ import annotations

from typing import Any

from eth_account.signers.local import LocalAccount
from eth_utils import to_checksum_address
from web3 import HTTPProvider, Web3
from web3.exceptions import ContractLogicError, TimeExhausted, TransactionNotFound, Web3RPCError

from clearhouse.chain.base import Chain, LogEntry, RawReceipt, decode_revert
from clearhouse.errors import ChainError, ChainUnavailable, ContractRevert
from clearhouse.types import Address, ChainId, Gas, Timestamp

__all__ = ["RpcChain"]

_PRIORITY_FEE = 10**9  # 1 gwei tip


def _revert_data(exc: Exception) -> bytes:
    data = getattr(exc, "data", None)
    if isinstance(data, str) and data.startswith("0x"):
        try:
            return bytes.fromhex(data[2:])
        except ValueError:
            return b""
    if isinstance(data, dict):  # some nodes nest it
        inner = data.get("data")
        if isinstance(inner, str) and inner.startswith("0x"):
            return bytes.fromhex(inner[2:])
    return b""


def _as_revert(exc: Exception, to: str | None) -> ContractRevert:
    data = _revert_data(exc)
    reason = decode_revert(data)
    if reason is None:
        text = str(exc)
        reason = text.split("execution reverted: ", 1)[1].strip("'\")") if "execution reverted: " in text else None
    return ContractRevert(reason, data=data, to=to)


class RpcChain(Chain):
    """A chain reached over JSON-RPC (HTTP)."""

    backend = "rpc"

    def __init__(self, url: str, *, timeout: float = 30.0, w3: Web3 | None = None) -> None:
        super().__init__()
        self.url = url
        self.w3 = w3 or Web3(HTTPProvider(url, request_kwargs={"timeout": timeout}))
        self._timeout = timeout
        try:
            self.w3.eth.chain_id  # noqa: B018 - fail fast if unreachable
        except Exception as exc:
            raise ChainUnavailable(f"cannot reach JSON-RPC node at {url}: {exc}", url=url) from exc

    @classmethod
    def from_web3(cls, w3: Web3, label: str) -> RpcChain:
        """Wrap an existing web3 connection (any provider, e.g. eth-tester's in-process one)."""
        return cls(label, w3=w3)

    @property
    def chain_id(self) -> ChainId:
        return ChainId(int(self.w3.eth.chain_id))

    def now(self) -> Timestamp:
        return Timestamp(int(self.w3.eth.get_block("latest")["timestamp"]))

    def block_number(self) -> int:
        return int(self.w3.eth.block_number)

    def _rpc(self, method: str, params: list[Any]) -> Any:
        resp = self.w3.provider.make_request(method, params)  # type: ignore[arg-type]
        if "error" in resp:
            raise ChainError(f"{method} failed: {resp['error']}")
        return resp.get("result")

    def time_travel(self, seconds: int) -> None:
        self._rpc("evm_increaseTime", [seconds])
        self._rpc("evm_mine", [])

    def snapshot(self) -> Any:
        return self._rpc("evm_snapshot", [])

    def revert_to(self, snapshot: Any) -> None:
        if not self._rpc("evm_revert", [snapshot]):
            raise ChainError(f"snapshot {snapshot} not found")

    def get_balance(self, address: str) -> int:
        return int(self.w3.eth.get_balance(to_checksum_address(address)))

    def get_code(self, address: str) -> bytes:
        return bytes(self.w3.eth.get_code(to_checksum_address(address)))

    def get_logs(self, address: str, from_block: int = 0, to_block: int | None = None) -> list[LogEntry]:
        logs = self.w3.eth.get_logs({"address": to_checksum_address(address), "fromBlock": from_block,
                                     "toBlock": "latest" if to_block is None else to_block})
        return [LogEntry(Address(to_checksum_address(log["address"])), tuple(bytes(t) for t in log["topics"]),
                         bytes(log["data"]), int(log["blockNumber"]), "0x" + bytes(log["transactionHash"]).hex(),
                         int(log["logIndex"]))
                for log in logs]

    def get_block_timestamp(self, block: int) -> Timestamp:
        return Timestamp(int(self.w3.eth.get_block(block)["timestamp"]))

    def get_transaction_input(self, tx_hash: str) -> bytes:
        try:
            tx = self.w3.eth.get_transaction(tx_hash)  # type: ignore[arg-type]
        except TransactionNotFound as exc:
            raise ChainError(f"unknown transaction {tx_hash}") from exc
        return bytes(tx["input"])

    def _raw_call(self, to: str, data: bytes, sender: str | None) -> bytes:
        tx = {"to": to_checksum_address(to), "data": data,
              "from": to_checksum_address(sender or self.accounts[0].address)}
        try:
            return bytes(self.w3.eth.call(tx))  # type: ignore[arg-type]
        except (ContractLogicError, Web3RPCError) as exc:
            raise _as_revert(exc, to) from exc

    def _raw_transact(self, to: str | None, data: bytes, sender: LocalAccount, value: int,
                      gas: int | None) -> RawReceipt:
        tx: dict[str, Any] = {"from": sender.address, "data": data, "value": value}
        if to is not None:
            tx["to"] = to_checksum_address(to)
        if gas is None:
            try:
                gas = int(self.w3.eth.estimate_gas(tx))  # type: ignore[arg-type]
            except (ContractLogicError, Web3RPCError) as exc:
                raise _as_revert(exc, to) from exc
            gas = gas + gas // 5 + 10_000  # headroom for the 63/64 rule
        base_fee = int(self.w3.eth.get_block("latest").get("baseFeePerGas", 0))
        tx.update(
            gas=gas, chainId=self.chain_id, type=2,
            nonce=self.w3.eth.get_transaction_count(sender.address, "pending"),
            maxPriorityFeePerGas=_PRIORITY_FEE, maxFeePerGas=2 * base_fee + _PRIORITY_FEE,
        )
        signed = sender.sign_transaction(tx)
        try:
            tx_hash = self.w3.eth.send_raw_transaction(signed.raw_transaction)
            rcpt = self.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=self._timeout)
        except (ContractLogicError, Web3RPCError) as exc:
            raise _as_revert(exc, to) from exc
        except TimeExhausted as exc:
            raise ChainError(f"transaction {signed.hash.hex()} not mined in {self._timeout}s") from exc
        output = b""
        if not rcpt["status"]:  # replay as a call at the parent block to read the reason
            try:
                self.w3.eth.call(tx, rcpt["blockNumber"] - 1)  # type: ignore[arg-type]
            except (ContractLogicError, Web3RPCError) as exc:
                output = _revert_data(exc)
        logs = tuple(
            (to_checksum_address(log["address"]), tuple(bytes(t) for t in log["topics"]), bytes(log["data"]))
            for log in rcpt["logs"]
        )
        created = rcpt.get("contractAddress")
        return RawReceipt(
            tx_hash="0x" + bytes(tx_hash).hex(),
            status=bool(rcpt["status"]),
            gas_used=Gas(int(rcpt["gasUsed"])),
            logs=logs,
            output=output,
            contract_address=Address(to_checksum_address(created)) if created else None,
            block_number=int(rcpt["blockNumber"]),
        )
