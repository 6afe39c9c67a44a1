"""What a proposal's result looks like on-chain: the ``Governor`` actions its parameter and fee
changes become, their hash, and the claim asserted for the result.

Pure encodings shared by whoever asserts a result, whoever checks an assertion (the node's
governance watcher, a disputer, an arbitrator) and the tests that compare them with
``Governor.compute_actions_hash``::

    action = (ParameterStore, runtime code hash pinned, set(keccak256(name), value) calldata)
    claim  = keccak256(abi.encode(proposalId, keccak256(abi.encode(actions)), tallyDigest))
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from eth_abi import encode as abi_encode
from eth_utils import function_signature_to_4byte_selector

from clearhouse.errors import InvalidProposal
from clearhouse.governance.proposals import Action, ActionKind
from clearhouse.messages.keccak import keccak256

__all__ = [
    "OnchainAction",
    "compute_actions_hash",
    "compute_claim",
    "compute_onchain_action",
    "compute_parameter_key",
]

_SET: Final = function_signature_to_4byte_selector("set(bytes32,uint256)")
_ACTIONS_TYPE: Final = "(address,bytes32,bytes)[]"

OnchainAction = tuple[str, bytes, bytes]
"""``Governor.Action``: (target address, pinned runtime code hash, calldata)."""


def compute_parameter_key(name: str) -> bytes:
    """``ParameterStore`` key of a parameter: ``keccak256(name)``."""
    return keccak256(name.encode())


def compute_onchain_action(action: Action, store: str, code_hash: bytes) -> OnchainAction:
    """A parameter or fee change as ``ParameterStore.set(key, value)`` pinned to ``code_hash``."""
    if action.kind not in (ActionKind.PARAMETER, ActionKind.FEES):
        raise InvalidProposal(f"{action.kind} actions have no on-chain target in this deployment", field="actions")
    data = _SET + abi_encode(["bytes32", "uint256"], [compute_parameter_key(action.target), action.value])
    return (store, code_hash, data)


def compute_actions_hash(actions: Sequence[OnchainAction]) -> bytes:
    """``Governor.compute_actions_hash``: ``keccak256(abi.encode(actions))``."""
    return keccak256(abi_encode([_ACTIONS_TYPE], [list(actions)]))


def compute_claim(proposal_id: int, actions: Sequence[OnchainAction], tally_digest: bytes) -> bytes:
    """The claim asserted for a proposal's result (what ``Governor.queue`` checks)."""
    return keccak256(abi_encode(["uint256", "bytes32", "bytes32"],
                                [proposal_id, compute_actions_hash(actions), tally_digest]))
