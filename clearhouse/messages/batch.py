"""Verify many signed messages at once, spreading signer recovery over worker processes.

The calling process does the cheap part (digests, expiry, signature shape) and streams chunks of
flat ``digest ‖ r ‖ s ‖ recid`` records to the workers, which only run libsecp256k1 recovery and
send back 20-byte addresses. Every message gets a :class:`Verdict`; one bad message never fails the
others. Small batches (or ``processes=1``) stay in the calling process.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from dataclasses import dataclass
from typing import Final

from clearhouse.errors import InvalidMessage, InvalidSignature, WrongSigner
from clearhouse.messages.checks import check_address_bytes
from clearhouse.messages.domain import Domain
from clearhouse.messages.fast import (
    REASON_WRONG_SIGNER,
    REASON_ZERO_SIGNER,
    check_signature,
    compute_message_digest,
    recover_records,
)
from clearhouse.messages.signing import check_not_expired
from clearhouse.messages.structs import Message
from clearhouse.types import Address, Digest, Timestamp

__all__ = ["CHUNK_SIZE", "MIN_PARALLEL_BATCH", "BatchItem", "Verdict", "verify_batch"]

CHUNK_SIZE: Final = 1024
"""Messages per unit of work sent to a worker (≈ 100 KB in, 20 KB out)."""
MIN_PARALLEL_BATCH: Final = 4096
"""Below this many messages, starting worker processes costs more than it saves."""
_NO_SIGNER: Final = bytes(20)


@dataclass(frozen=True, slots=True)
class BatchItem:
    """One message to verify."""

    message: Message
    """The signed message."""
    signature: bytes
    """Its 65-byte ``r ‖ s ‖ v`` signature."""
    signer: Address
    """The account that must have signed it."""


@dataclass(frozen=True, slots=True)
class Verdict:
    """The outcome for one message of a batch."""

    ok: bool
    """True if the message is unexpired and validly signed by the expected signer."""
    code: str | None
    """The error code (``InvalidMessage.code`` of the failed check) or ``None`` when ok."""
    reason: str | None
    """The failed check's reason, e.g. ``"eip712: high s"`` (the contracts' revert string)."""
    digest: Digest
    """The message's EIP-712 digest: its replay key."""


def _rejected(error: InvalidMessage, digest: Digest) -> Verdict:
    return Verdict(False, error.code, error.message, digest)


def verify_batch(
    domain: Domain,
    items: Sequence[BatchItem],
    now: Timestamp,
    processes: int | None = None,
    *,
    executor: Executor | None = None,
    chunk_size: int = CHUNK_SIZE,
) -> list[Verdict]:
    """A :class:`Verdict` per item, in order, with the same checks and reasons as ``verify``.

    ``processes`` defaults to every core (``1`` keeps all work in this process); ``executor``
    reuses a long-lived process pool (a node keeps one) instead of starting one per call;
    ``chunk_size`` messages go to a worker at a time.
    """
    workers = processes or os.cpu_count() or 1
    if workers == 1:
        return _verify(domain, items, now, None, chunk_size)
    if executor is not None:
        return _verify(domain, items, now, executor, chunk_size)
    if len(items) >= MIN_PARALLEL_BATCH:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            return _verify(domain, items, now, pool, chunk_size)
    return _verify(domain, items, now, None, chunk_size)


def _verify(domain: Domain, items: Sequence[BatchItem], now: Timestamp,
            executor: Executor | None, chunk_size: int) -> list[Verdict]:
    verdicts: list[Verdict | None] = [None] * len(items)
    digests: list[Digest] = []
    pending: list[tuple[int, bytes]] = []  # (item index, expected signer)
    records: list[bytes] = []
    futures: list[Future[bytes] | bytes] = []
    for index, item in enumerate(items):
        digest = compute_message_digest(domain, item.message)
        digests.append(digest)
        try:
            check_not_expired(item.message.expiry, now)
            expected = check_address_bytes(item.signer, "signer")  # same order as verify()
            recoverable = check_signature(item.signature)
        except InvalidMessage as error:
            verdicts[index] = _rejected(error, digest)
            continue
        pending.append((index, expected))
        records.append(digest + recoverable)
        if len(records) == chunk_size:
            futures.append(_submit(executor, b"".join(records)))
            records = []
    if records:
        futures.append(_submit(executor, b"".join(records)))
    recovered = b"".join(f if isinstance(f, bytes) else f.result() for f in futures)
    for position, (index, expected) in enumerate(pending):
        signer = recovered[20 * position:20 * position + 20]
        verdicts[index] = _judge(signer, expected, digests[index])
    return [v for v in verdicts if v is not None]


def _submit(executor: Executor | None, blob: bytes) -> Future[bytes] | bytes:
    return recover_records(blob) if executor is None else executor.submit(recover_records, blob)


def _judge(signer: bytes, expected: bytes, digest: Digest) -> Verdict:
    if signer == _NO_SIGNER:
        return _rejected(InvalidSignature(REASON_ZERO_SIGNER, field="signature"), digest)
    if signer != expected:
        return _rejected(WrongSigner(REASON_WRONG_SIGNER, field="signature"), digest)
    return Verdict(True, None, None, digest)
