"""Keccak-256 for the fast path: pycryptodome's C core called without its per-hash Python wrapper.

The public ``Crypto.Hash.keccak.new(...).digest()`` spends about 2 µs of Python per call around a
~3 µs C hash; one signature verification hashes three times, so the wrapper alone cost about a tenth
of a verification. The lean binding uses pycryptodome's internal C library handle (pinned version),
reuses its sponge states (absorb, squeeze, reset: three C calls per hash), checks itself against the
public API at import and falls back to the public API if the internals ever change. The reference encoder (:mod:`clearhouse.messages.eip712`) keeps the public API, so the
property tests compare two independent call paths.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any, Final, cast

from Crypto.Hash import keccak as _public

from clearhouse.types import Digest

__all__ = ["LEAN", "keccak256"]

_EMPTY: Final = bytes.fromhex("c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470")


def _public_keccak(data: bytes) -> bytes:
    return _public.new(data=data, digest_bits=256).digest()


def _bind_lean() -> Callable[[bytes], bytes] | None:
    """The lean hash function, or ``None`` if pycryptodome's internals are not the expected ones."""
    try:
        module: Any = importlib.import_module("Crypto.Hash.keccak")
        raw: Any = importlib.import_module("Crypto.Util._raw_api")
        lib = module._raw_keccak_lib
        init, absorb, squeeze, reset = lib.keccak_init, lib.keccak_absorb, lib.keccak_digest, lib.keccak_reset
        void_pointer, size_t, create_buffer = raw.VoidPointer, raw.c_size_t, raw.create_string_buffer
        capacity, rounds, size, padding = raw.c_size_t(64), raw.c_ubyte(24), raw.c_size_t(32), raw.c_ubyte(1)
    except (ImportError, AttributeError):
        return None
    # Sponge states are reused (reset after each hash) instead of allocated and freed per call:
    # three C calls instead of five. A state is taken from the pool for one hash, so threads never
    # share one (list.pop/append are atomic); the pool holds at most one state per concurrent caller.
    pool: list[tuple[Any, Any]] = []
    lengths = [size_t(n) for n in range(1025)]  # the C length argument, built once per length

    def lean(data: bytes) -> bytes:
        try:
            handle, out = pool.pop()
        except IndexError:
            state = void_pointer()
            if init(state.address_of(), capacity, rounds):
                return _public_keccak(data)
            handle, out = state.get(), create_buffer(32)
        n = len(data)
        length = lengths[n] if n <= 1024 else size_t(n)
        if absorb(handle, data, length) or squeeze(handle, out, size, padding) or reset(handle):
            return _public_keccak(data)  # the state is dropped, not returned to the pool
        digest: bytes = out.raw
        pool.append((handle, out))
        return digest

    probe = bytes(range(256)) * 3  # longer than one sponge block (136 bytes)
    try:
        if lean(b"") != _EMPTY or lean(probe) != _public_keccak(probe):
            return None
    except Exception:  # any failure of the internals means: use the public API
        return None
    return lean


_LEAN = _bind_lean()
LEAN: Final = _LEAN is not None
"""Whether the lean binding passed its self-check (else :func:`keccak256` is the public API)."""
# typed as returning a Digest: both implementations return exactly 32 bytes
keccak256: Final[Callable[[bytes], Digest]] = cast(Callable[[bytes], Digest], _LEAN or _public_keccak)
"""Keccak-256 of ``data`` (32 bytes): the one hash every rule module uses outside the reference encoder."""
