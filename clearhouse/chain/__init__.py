"""One chain interface with two backends (in-process EVM, JSON-RPC) and the contract bindings.

``connect("inprocess")`` gives a private in-process chain; ``connect("http://…")`` a JSON-RPC one.
"""

from clearhouse.chain.artifacts import Artifact, compile_contract, load_artifact
from clearhouse.chain.base import (
    Chain,
    Contract,
    Event,
    LogEntry,
    Receipt,
    decode_revert,
    dev_accounts,
)
from clearhouse.chain.inprocess import InProcessChain
from clearhouse.chain.rpc import RpcChain

__all__ = [
    "Artifact",
    "Chain",
    "Contract",
    "Event",
    "InProcessChain",
    "LogEntry",
    "Receipt",
    "RpcChain",
    "compile_contract",
    "connect",
    "decode_revert",
    "dev_accounts",
    "load_artifact",
]


def connect(target: str = "inprocess") -> Chain:
    """A chain for ``inprocess`` or an ``http(s)://`` JSON-RPC URL."""
    if target == "inprocess":
        return InProcessChain()
    if target.startswith(("http://", "https://")):
        return RpcChain(target)
    from clearhouse.errors import ConfigError

    raise ConfigError(f"unknown chain {target!r}: use 'inprocess' or an http(s):// URL", field="chain")
