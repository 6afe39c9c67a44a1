"""The one exception tree of clearhouse.

Every error the project raises on purpose derives from :class:`ClearhouseError` and, where a
built-in fits, also from that built-in so callers can catch either::

    ClearhouseError
    ├── ConfigError(ValueError)                bad preset / network config
    ├── InvalidMessage(ValueError)             a signed message fails validation
    │   ├── InvalidSignature                   wrong length, v ∉ {27,28}, high s, zero signer
    │   ├── WrongSigner                        recovered signer is not the expected account
    │   ├── ExpiredMessage                     past its expiry
    │   ├── ReplayedMessage                    nonce or message hash already used
    │   └── MalformedMessage                   a field out of range or of the wrong type
    ├── MerkleError(ValueError)
    │   ├── InvalidProof                       a proof does not verify against the root
    │   └── UnknownLeaf(KeyError)              asked for a proof of a leaf not in the tree
    ├── ChainError(RuntimeError)               anything from a chain backend
    │   ├── ContractRevert                     a call or transaction reverted (carries the reason)
    │   ├── ChainUnavailable(ConnectionError)  the node cannot be reached
    │   └── CompileError                       a Vyper source failed to compile
    └── …                                      later packages add their own branches here

Errors carry context as attributes (``field``, ``account``, ``digest``…) and a machine-readable
``code`` so the API can turn any of them into ``{code, field, message}`` without string parsing.
"""

from __future__ import annotations

__all__ = [
    "ChainError",
    "ChainUnavailable",
    "ClearhouseError",
    "CompileError",
    "ConfigError",
    "ContractRevert",
    "ExpiredMessage",
    "InvalidMessage",
    "InvalidProof",
    "InvalidSignature",
    "MalformedMessage",
    "MerkleError",
    "ReplayedMessage",
    "UnknownLeaf",
    "WrongSigner",
]


class ClearhouseError(Exception):
    """Base of every error clearhouse raises on purpose.

    ``code`` is a stable machine-readable identifier; ``field`` names the offending input field
    when there is one; ``context`` holds anything else useful (hashes, accounts, amounts).
    """

    code: str = "error"

    def __init__(self, message: str, *, field: str | None = None, **context: object) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.context = context

    def to_dict(self) -> dict[str, object]:
        """The ``{code, field, message}`` body the API returns for this error."""
        return {"code": self.code, "field": self.field, "message": self.message}


class ConfigError(ClearhouseError, ValueError):
    code = "config_error"


class InvalidMessage(ClearhouseError, ValueError):
    code = "invalid_message"


class InvalidSignature(InvalidMessage):
    code = "invalid_signature"


class WrongSigner(InvalidMessage):
    code = "wrong_signer"


class ExpiredMessage(InvalidMessage):
    code = "expired"


class ReplayedMessage(InvalidMessage):
    code = "replayed"


class MalformedMessage(InvalidMessage):
    code = "malformed_message"


class MerkleError(ClearhouseError, ValueError):
    code = "merkle_error"


class InvalidProof(MerkleError):
    code = "invalid_proof"


class UnknownLeaf(MerkleError, KeyError):
    code = "unknown_leaf"

    def __str__(self) -> str:  # KeyError would otherwise repr() the message
        return self.message


class ChainError(ClearhouseError, RuntimeError):
    code = "chain_error"


class ContractRevert(ChainError):
    """A call or transaction reverted. ``reason`` is the decoded ``Error(string)`` or ``None``."""

    code = "contract_revert"

    def __init__(self, reason: str | None, *, data: bytes = b"", **context: object) -> None:
        super().__init__(f"reverted: {reason}" if reason else "reverted without reason", **context)
        self.reason = reason
        self.data = data


class ChainUnavailable(ChainError, ConnectionError):
    code = "chain_unavailable"


class CompileError(ChainError):
    code = "compile_error"
