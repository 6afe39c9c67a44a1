"""Sign-in sessions and per-account rate limits for the API.

Sign-in: ``POST /v1/auth/challenge`` returns a ``SignIn`` message with a fresh ``sessionNonce``;
the account signs it (EIP-712) and ``POST /v1/auth/session`` returns a bearer token, stored only
as its SHA-256 through the store. Challenge nonces and tokens are HMACs of a node secret over the
request's idempotency key, so a retried request with the same key gets the same answer and
nothing is issued twice. A challenge is single use and lives ``challenge_ttl`` seconds.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

from clearhouse.errors import RateLimited, Unauthorized
from clearhouse.messages import Domain, SignIn, verify
from clearhouse.types import Address, Digest, Timestamp

__all__ = ["Challenge", "SessionAuth", "TokenBucket", "compute_token_hash"]


def compute_token_hash(token: str) -> bytes:
    """What the store keeps of a bearer token: its SHA-256."""
    return hashlib.sha256(token.encode()).digest()


class SessionStore(Protocol):
    def create_session(self, account: str, token_hash: bytes, expires_at: int) -> None: ...

    def get_session(self, token_hash: bytes) -> Any: ...


@dataclass(frozen=True, slots=True)
class Challenge:
    """An issued, unused sign-in challenge."""

    account: Address
    """Who may answer it."""
    message: SignIn
    """The exact ``SignIn`` the account must sign."""


@dataclass
class SessionAuth:
    """Challenges in memory (they live minutes), sessions in the store (cached once seen)."""

    store: SessionStore
    domain: Domain
    node: str
    """``SignIn.node``: host (and port) of this node."""
    uri: str
    """``SignIn.uri``: base URI of this node's API."""
    challenge_ttl: int = 300
    """Seconds a challenge may be answered (and the longest a ``SignIn`` may be valid)."""
    session_ttl: int = 86_400
    """Seconds a session lasts."""
    secret: bytes = field(default_factory=lambda: secrets.token_bytes(32))
    """Node secret for challenge nonces and tokens (random per process unless given)."""
    challenges: dict[bytes, Challenge] = field(default_factory=dict)
    """Open challenges by session nonce."""
    answered: dict[bytes, tuple[str, int, str]] = field(default_factory=dict)
    """Answered challenges: session nonce -> (token, expiry, idempotency key), for retries."""
    cache: dict[bytes, tuple[str, int]] = field(default_factory=dict)
    """token hash -> (account, expiry) of sessions seen."""

    def _mac(self, *parts: bytes) -> bytes:
        return hmac.new(self.secret, b"\x00".join(parts), hashlib.sha256).digest()

    def issue_challenge(self, account: Address, key: str, now: int) -> SignIn:
        """The ``SignIn`` for ``account`` (the same for the same idempotency key and time)."""
        self._expire(now)
        nonce = self._mac(b"challenge", account.lower().encode(), key.encode(), str(now).encode())
        message = SignIn(account, self.node, self.uri, Digest(nonce), Timestamp(now),
                         Timestamp(now + self.challenge_ttl))
        if nonce not in self.answered:
            self.challenges[nonce] = Challenge(account, message)
        return message

    def _expire(self, now: int) -> None:
        for nonce in [n for n, c in self.challenges.items() if c.message.expiry < now]:
            del self.challenges[nonce]

    def open_session(self, message: SignIn, signature: bytes, now: int, key: str
                     ) -> tuple[str, int]:
        """Verify a signed challenge and return ``(token, expires_at)``; the token is stored hashed.
        A retry under the same idempotency key gets the same token; any other reuse is refused."""
        nonce = bytes(message.session_nonce)
        if nonce in self.answered:
            token, expires, first_key = self.answered[nonce]
            if first_key != key:
                raise Unauthorized("this challenge was already used", field="message.sessionNonce")
            return token, expires
        challenge = self.challenges.get(nonce)
        if challenge is None or challenge.message != message:
            raise Unauthorized("unknown, used or altered sign-in challenge", field="message.sessionNonce")
        verify(self.domain, message, signature, challenge.account, Timestamp(now))
        token = self._mac(b"token", nonce).hex()
        expires = now + self.session_ttl
        self.store.create_session(challenge.account, compute_token_hash(token), expires)
        del self.challenges[nonce]
        self.answered[nonce] = (token, expires, key)
        self.cache[compute_token_hash(token)] = (challenge.account, expires)
        return token, expires

    def authenticate(self, authorization: str | None, now: int) -> Address:
        """The account of a valid ``Bearer`` token; raises :class:`Unauthorized`."""
        if not authorization or not authorization.startswith("Bearer "):
            raise Unauthorized("a Bearer session token is required", field="Authorization")
        token_hash = compute_token_hash(authorization[7:].strip())
        seen = self.cache.get(token_hash)
        if seen is None:
            record = self.store.get_session(token_hash)
            if record is not None:
                seen = (record.account, int(record.expires_at))
                self.cache[token_hash] = seen
        if seen is None or seen[1] < now:
            raise Unauthorized("unknown or expired session token", field="Authorization")
        return Address(seen[0])


@dataclass
class TokenBucket:
    """Per-key token buckets: ``rate`` requests per second, bursts of ``burst``."""

    rate: float
    burst: int
    buckets: dict[str, tuple[float, float]] = field(default_factory=dict)
    """key -> (tokens, last refill time, monotonic seconds)."""
    max_keys: int = 100_000
    """Buckets kept; full ones are forgotten first when there are more."""

    def take(self, key: str, cost: float = 1.0, now: float | None = None) -> None:
        """Spend ``cost`` tokens of ``key``'s bucket or raise :class:`RateLimited`."""
        t = time.monotonic() if now is None else now
        tokens, last = self.buckets.get(key, (float(self.burst), t))
        tokens = min(float(self.burst), tokens + (t - last) * self.rate)
        if tokens < cost:
            self.buckets[key] = (tokens, t)
            raise RateLimited(f"rate limit: {self.rate:g} requests/s, burst {self.burst}",
                              field="account", retry_after=(cost - tokens) / self.rate)
        self.buckets[key] = (tokens - cost, t)
        if len(self.buckets) > self.max_keys:
            self._prune(t)

    def _prune(self, now: float) -> None:
        for key in [k for k, (tok, last) in self.buckets.items()
                    if tok + (now - last) * self.rate >= self.burst]:
            del self.buckets[key]
