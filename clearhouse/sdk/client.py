"""The trader and maker SDK: sign messages locally, talk to a node's REST + WebSocket API.

One implementation: :class:`AsyncClient` (httpx + websockets). :class:`Client` is the same object
driven from a private event loop on a background thread, for synchronous code. Every POST carries
an ``Idempotency-Key`` (a fresh UUID unless given) and is retried with that same key on a transport
failure, so a retry never applies twice. A 4xx comes back as the clearhouse exception whose
``code`` the node sent (``InsufficientCollateral``, ``WrongSigner``…) with its ``field``.

Chain-side actions (deposit, forced withdrawal, withdrawal claim, exit after a freeze, verifying
the account against the chain root with a Merkle proof) go through :class:`ChainSide`; attach one
with ``chain=`` (``clearhouse.sdk.chain.ChainAccess`` is one over ``clearhouse.chain``).
"""

from __future__ import annotations

import asyncio
import inspect
import itertools
import json
import threading
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from typing import Any, Protocol, TypeVar

import httpx
import websockets
from eth_account import Account

import clearhouse.errors as errors
from clearhouse.errors import ApiError, ClearhouseError, ConfigError
from clearhouse.governance.proposals import Action
from clearhouse.governance.votes import Delegation, sign_delegation
from clearhouse.messages import (
    RFQ,
    Accept,
    Cancel,
    Choice,
    Domain,
    Leg,
    Order,
    Post,
    Quote,
    QuoteLeg,
    Side,
    SignIn,
    TimeInForce,
    Vote,
    Withdrawal,
    compute_message_digest,
    parse_typed_data,
    sign,
)
from clearhouse.types import (
    Address,
    Amount,
    ChainId,
    Digest,
    Nonce,
    Price,
    Quantity,
    SeriesId,
    Timestamp,
)

__all__ = ["AsyncClient", "ChainSide", "Client", "compute_error"]

T = TypeVar("T")

_RETRIES = 3


def _all_error_classes() -> dict[str, type[ClearhouseError]]:
    found: dict[str, type[ClearhouseError]] = {}
    for obj in vars(errors).values():
        if isinstance(obj, type) and issubclass(obj, ClearhouseError):
            found.setdefault(obj.code, obj)
    return found


_ERRORS = _all_error_classes()


def compute_error(status: int, body: object) -> ClearhouseError:
    """The exception for a node's error response (by its ``code``; :class:`ApiError` if unknown)."""
    if not isinstance(body, dict):
        body = {"code": "api_error", "field": None, "message": f"HTTP {status}"}
    cls = _ERRORS.get(str(body.get("code")), ApiError)
    exc = cls.__new__(cls)  # some errors take extra constructor arguments: set the common ones
    ClearhouseError.__init__(exc, str(body.get("message")), field=body.get("field"), status=status)
    exc.code = str(body.get("code"))  # keep the node's code even for a subclass we map coarsely
    return exc


def _hex(value: bytes) -> str:
    return "0x" + bytes(value).hex()


def _digest(value: str) -> Digest:
    return Digest(bytes.fromhex(value[2:]))


class ChainSide(Protocol):
    """Extension point: the on-chain half of a trader's life (custody contracts via ``clearhouse.chain``)."""

    def deposit(self, account: Address, amount: Amount) -> Any:
        """Deposit collateral into the vault."""

    def force_withdraw(self, account: Address, amount: Amount) -> Any:
        """Queue a forced withdrawal the coordinator must include (or be frozen)."""

    def claim_withdrawal(self, account: Address, proof: Any) -> Any:
        """Claim a withdrawal paid by a final batch."""

    def exit_after_freeze(self, account: Address, proof: Any) -> Any:
        """Exit with the last final state after the venue froze."""

    def verify_account(self, account: Address, state: Any) -> bool:
        """Check an account's state against the chain's state root with a Merkle proof."""


class AsyncClient:
    """An account's connection to one node; signs with ``private_key`` (never sent)."""

    def __init__(self, base_url: str, private_key: bytes, *, domain: Domain | None = None,
                 chain: ChainSide | None = None, timeout: float = 10.0,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.private_key = bytes(private_key)
        self.account = Address(Account.from_key(self.private_key).address)
        self.domain = domain
        self.chain = chain
        self.token: str | None = None
        self._http = httpx.AsyncClient(base_url=self.base_url, timeout=timeout, transport=transport)
        self._nonces = itertools.count(time.time_ns() // 1000)

    async def close(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # --- transport -----------------------------------------------------------------------------

    def _headers(self, key: str | None = None) -> dict[str, str]:
        headers = {}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        if key is not None:
            headers["Idempotency-Key"] = key
        return headers

    async def _request(self, method: str, path: str, body: Any = None, *,
                       params: dict[str, Any] | None = None, key: str | None = None) -> Any:
        if method == "POST" and key is None:
            key = uuid.uuid4().hex
        for attempt in range(_RETRIES):
            try:
                response = await self._http.request(method, path, json=body, params=params,
                                                    headers=self._headers(key))
                break
            except httpx.TransportError:
                if attempt == _RETRIES - 1:
                    raise
                await asyncio.sleep(0.05 * 2**attempt)  # same key: the node applies it once
        payload = response.json()
        if response.status_code >= 400:
            raise compute_error(response.status_code, payload)
        return payload

    async def get(self, path: str, **params: Any) -> Any:
        """GET ``path`` (a ``/v1/...`` route)."""
        return await self._request("GET", path, params=params or None)

    async def post(self, path: str, body: Any, key: str | None = None) -> Any:
        """POST ``body`` with an idempotency key (fresh unless given)."""
        return await self._request("POST", path, body, key=key)

    # --- session -------------------------------------------------------------------------------

    async def get_domain(self) -> Domain:
        """The node's EIP-712 domain (fetched once; pass ``domain=`` to pin it instead)."""
        if self.domain is None:
            data = await self.get("/v1/domain")
            self.domain = Domain(data["name"], data["version"], ChainId(data["chainId"]),
                                 Address(data["verifyingContract"]))
        return self.domain

    async def sign_in(self) -> str:
        """Sign the node's challenge; keeps and returns the session token."""
        domain = await self.get_domain()
        challenge = await self.post("/v1/auth/challenge", {"account": self.account})
        _, message = parse_typed_data(challenge["typedData"])
        if not isinstance(message, SignIn) or message.account != self.account:
            raise ConfigError("the node sent a challenge for another account", field="account")
        signature = sign(domain, message, self.private_key)
        session = await self.post("/v1/auth/session", {"message": challenge["message"],
                                                        "signature": _hex(signature)})
        self.token = str(session["token"])
        return self.token

    # --- reads ---------------------------------------------------------------------------------

    async def get_series(self) -> list[dict[str, Any]]:
        return list(await self.get("/v1/series"))

    async def get_expiries(self) -> list[dict[str, Any]]:
        """Every listed expiry and its state (``trading``, ``expired``, ``settled`` with its
        ``settlementPrice``)."""
        return list(await self.get("/v1/expiries"))

    async def get_fees(self) -> dict[str, Any]:
        """The fee schedule new fills pay (``makerBps``, ``takerBps``)."""
        return dict(await self.get("/v1/fees"))

    async def get_book(self, series_id: SeriesId) -> dict[str, Any]:
        return dict(await self.get(f"/v1/book/{_hex(series_id)}"))

    async def get_account(self) -> dict[str, Any]:
        """Balance, positions and requirement (decimal strings) of the signed-in account."""
        return dict(await self.get("/v1/account"))

    async def get_trades(self, after: int = 0, limit: int = 100) -> list[dict[str, Any]]:
        return list((await self.get("/v1/trades", after=after, limit=limit))["trades"])

    async def get_rfqs(self, after: int = 0, limit: int = 100) -> list[dict[str, Any]]:
        return list((await self.get("/v1/rfqs", after=after, limit=limit))["rfqs"])

    async def get_batches(self) -> list[dict[str, Any]]:
        return list((await self.get("/v1/batches"))["batches"])

    # --- signing -------------------------------------------------------------------------------

    def next_nonce(self) -> Nonce:
        """A fresh unordered nonce (microsecond-seeded counter: parallel messages never collide)."""
        return Nonce(next(self._nonces))

    async def _submit(self, path: str, message: Any, key: str | None) -> dict[str, Any]:
        domain = await self.get_domain()
        body = {"message": message.to_typed_data(domain)["message"],
                "signature": _hex(sign(domain, message, self.private_key))}
        return dict(await self.post(path, body, key))

    async def digest(self, message: Any) -> Digest:
        """A message's EIP-712 digest (order hash, RFQ id, quote id) in the node's domain."""
        return compute_message_digest(await self.get_domain(), message)

    async def submit_order(self, series_id: SeriesId, side: Side, price: int, quantity: int,
                           time_in_force: TimeInForce = TimeInForce.GTC, *, expires_in: int = 3600,
                           nonce: int | None = None, key: str | None = None) -> dict[str, Any]:
        """Sign and submit a limit order; ``price`` per contract in quote base units."""
        order = Order(self.account, series_id, side, Price(price), Quantity(quantity), time_in_force,
                      Nonce(self.next_nonce() if nonce is None else nonce),
                      Timestamp(int(time.time()) + expires_in))
        return await self._submit("/v1/orders", order, key)

    async def cancel(self, order_hash: Digest | None = None, nonce: int | None = None, *,
                     expires_in: int = 300, key: str | None = None) -> dict[str, Any]:
        """Cancel an order or quote by hash, and/or burn ``nonce`` (a fresh one if not given)."""
        message = Cancel(self.account, order_hash or Digest(bytes(32)),
                         Nonce(self.next_nonce() if nonce is None else nonce),
                         Timestamp(int(time.time()) + expires_in))
        return await self._submit("/v1/cancels", message, key)

    async def submit_rfq(self, legs: Sequence[tuple[SeriesId, int, bool]], size: int,
                         side: Side = Side.HIDDEN, *, expires_in: int = 60, key: str | None = None
                         ) -> dict[str, Any]:
        """Request quotes for a structure: legs as ``(series id, ratio, is_buy)``."""
        rfq = RFQ(self.account, tuple(Leg(s, r, b) for s, r, b in legs), Quantity(size), side,
                  self.next_nonce(), Timestamp(int(time.time()) + expires_in))
        return await self._submit("/v1/rfqs", rfq, key)

    async def submit_quote(self, rfq: dict[str, Any], prices: Sequence[int], side: Side,
                           size: int | None = None, *, expires_in: int = 10, key: str | None = None
                           ) -> dict[str, Any]:
        """Answer an RFQ (as delivered on the ``rfqs`` channel) with one price per leg."""
        request = rfq["rfq"]
        legs = tuple(QuoteLeg(SeriesId(_digest(leg["seriesId"])), int(leg["ratio"]), bool(leg["isBuy"]),
                              Price(p)) for leg, p in zip(request["legs"], prices, strict=True))
        quote = Quote(self.account, Address(request["taker"]), _digest(rfq["rfqId"]), legs, side,
                      Quantity(size or int(request["size"])), self.next_nonce(),
                      Timestamp(int(time.time()) + expires_in))
        return await self._submit("/v1/quotes", quote, key)

    async def accept(self, quote_id: Digest, size: int, *, expires_in: int = 10,
                     key: str | None = None) -> dict[str, Any]:
        """Accept a quote for ``size`` units of the structure (every leg fills or none)."""
        message = Accept(self.account, quote_id, Quantity(size), self.next_nonce(),
                         Timestamp(int(time.time()) + expires_in))
        return await self._submit("/v1/accepts", message, key)

    async def withdraw(self, amount: int, recipient: Address | None = None, *,
                       expires_in: int = 3600, key: str | None = None) -> dict[str, Any]:
        """Request a withdrawal of free collateral (paid on-chain by the next batch)."""
        message = Withdrawal(self.account, recipient or self.account, Amount(amount),
                             self.next_nonce(), Timestamp(int(time.time()) + expires_in))
        return await self._submit("/v1/withdrawals", message, key)

    async def register_maker(self, key: str | None = None) -> dict[str, Any]:
        """Receive RFQs from now on."""
        return dict(await self.post("/v1/makers", {}, key))

    async def faucet(self, amount: int, key: str | None = None) -> dict[str, Any]:
        """Devnet only: credit ``amount`` quote base units to this account."""
        return dict(await self.post("/v1/dev/deposit", {"account": self.account,
                                                        "amount": str(amount)}, key))

    # --- governance ----------------------------------------------------------------------------

    async def create_proposal(self, title: str, body: str, actions: Sequence[Action], *,
                              key: str | None = None) -> dict[str, Any]:
        """Open a proposal with ``actions`` (parameter changes within bounds, membership, fees)."""
        payload = {"title": title, "body": body,
                   "actions": [{"kind": str(a.kind), "target": a.target, "value": str(a.value)} for a in actions]}
        return dict(await self.post("/v1/governance/proposals", payload, key))

    async def forum_post(self, proposal_id: int, text: str, parent: Digest | None = None, *,
                         expires_in: int = 3600, key: str | None = None) -> dict[str, Any]:
        """Sign and publish a discussion post under a proposal (a reply names ``parent``'s id).
        (Named ``forum_post``: :meth:`post` is the raw POST.)"""
        message = Post(self.account, proposal_id, parent or Digest(bytes(32)), text,
                       Timestamp(int(time.time()) + expires_in))
        return await self._submit("/v1/governance/posts", message, key)

    async def vote(self, proposal_id: int, choice: Choice, reason: str = "", *, expires_in: int = 3600,
                   expiry: int | None = None, key: str | None = None) -> dict[str, Any]:
        """Sign and cast a vote (``Choice.FOR``/``AGAINST``/``ABSTAIN``); power is the snapshot's."""
        message = Vote(self.account, proposal_id, Choice(choice), reason,
                       Timestamp(expiry if expiry is not None else int(time.time()) + expires_in))
        return await self._submit("/v1/governance/votes", message, key)

    async def delegate(self, delegate: Address, proposal_id: int = 0, *, expires_in: int = 30 * 86_400,
                       expiry: int | None = None, key: str | None = None) -> dict[str, Any]:
        """Sign a delegation of this account's voting power to ``delegate`` (``proposal_id`` 0:
        every proposal) and send it."""
        domain = await self.get_domain()
        d = Delegation(self.account, Address(delegate), proposal_id,
                       Timestamp(expiry if expiry is not None else int(time.time()) + expires_in))
        body = {"message": {"delegator": d.delegator, "delegate": d.delegate, "proposalId": str(d.proposal_id),
                            "expiry": str(d.expiry)},
                "signature": _hex(sign_delegation(domain, d, self.private_key))}
        return dict(await self.post("/v1/governance/delegations", body, key))

    async def get_proposal(self, proposal_id: int) -> dict[str, Any]:
        """One proposal: status, lifecycle transitions, posts, votes, snapshot, tally and digest."""
        return dict(await self.get(f"/v1/governance/proposals/{int(proposal_id)}"))

    async def list_proposals(self) -> list[dict[str, Any]]:
        """The latest proposals, newest first."""
        return list((await self.get("/v1/governance/proposals"))["proposals"])

    # --- WebSocket -----------------------------------------------------------------------------

    def _ws_url(self) -> str:
        return self.base_url.replace("http://", "ws://").replace("https://", "wss://") + "/v1/ws"

    async def subscribe(self, channels: Sequence[str], after: dict[str, int] | None = None
                        ) -> AsyncIterator[dict[str, Any]]:
        """Events of ``channels`` (``{"channel", "seq", "data"}``), resuming after ``after[channel]``."""
        async with websockets.connect(self._ws_url(), max_size=2**22) as ws:
            if self.token:
                await ws.send(json.dumps({"op": "auth", "token": self.token}))
                await _expect(ws, "authed")
            for channel in channels:
                await ws.send(json.dumps({"op": "subscribe", "channel": channel,
                                          "after": (after or {}).get(channel, 0)}))
                await _expect(ws, "subscribed")
            async for raw in ws:
                frame = json.loads(raw)
                if frame.get("type") == "event":
                    yield frame
                elif frame.get("type") == "error":
                    raise compute_error(400, frame)

    # --- chain side (extension point) ----------------------------------------------------------

    def _chain(self) -> ChainSide:
        if self.chain is None:
            raise ConfigError("no chain side attached: pass chain= to the client", field="chain")
        return self.chain

    async def deposit(self, amount: int) -> Any:
        return await asyncio.to_thread(self._chain().deposit, self.account, Amount(amount))

    async def force_withdraw(self, amount: int) -> Any:
        return await asyncio.to_thread(self._chain().force_withdraw, self.account, Amount(amount))

    async def claim_withdrawal(self, proof: Any = None) -> Any:
        """Pull a finalised payout (``None``: every unclaimed one, found from chain data)."""
        return await asyncio.to_thread(self._chain().claim_withdrawal, self.account, proof)

    async def get_account_proof(self, address: Address | None = None) -> dict[str, Any]:
        """The node's proof of an account (default: this one) against the last final root."""
        return dict(await self.get(f"/v1/accounts/{address or self.account}/proof"))

    async def exit_after_freeze(self, proof: Any = None) -> Any:
        """Exit from the frozen root with ``proof`` (``None``: the node's proof, checked on chain)."""
        proof = proof if proof is not None else await self.get_account_proof()
        return await asyncio.to_thread(self._chain().exit_after_freeze, self.account, proof)

    async def verify_account(self, state: Any = None) -> bool:
        """Check the node's proof of this account (``None``: fetch it) against the chain's root."""
        state = state if state is not None else await self.get_account_proof()
        return await asyncio.to_thread(self._chain().verify_account, self.account, state)


async def _expect(ws: Any, kind: str) -> dict[str, Any]:
    frame: dict[str, Any] = json.loads(await ws.recv())
    if frame.get("type") == "error":
        raise compute_error(400, frame)
    if frame.get("type") != kind:
        raise ApiError(f"expected a {kind!r} frame, got {frame.get('type')!r}", field="frame")
    return frame


async def _await(awaitable: Awaitable[T]) -> T:
    return await awaitable


class Client:
    """:class:`AsyncClient` for synchronous code: the same methods, blocking.

    The async client runs on a private event loop in a daemon thread; ``subscribe`` returns a
    blocking iterator. Call :meth:`close` (or use it as a context manager) when done.
    """

    def __init__(self, base_url: str, private_key: bytes, **kwargs: Any) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True,
                                        name="clearhouse-sdk")
        self._thread.start()
        self._async = self._call(self._make(base_url, private_key, kwargs))

    @staticmethod
    async def _make(base_url: str, private_key: bytes, kwargs: dict[str, Any]) -> AsyncClient:
        return AsyncClient(base_url, private_key, **kwargs)

    def _call(self, coro: Awaitable[T]) -> T:
        return asyncio.run_coroutine_threadsafe(_await(coro), self._loop).result()

    @property
    def account(self) -> Address:
        return self._async.account

    @property
    def token(self) -> str | None:
        return self._async.token

    def next_nonce(self) -> Nonce:
        return self._async.next_nonce()

    def __getattr__(self, name: str) -> Callable[..., Any]:
        target = getattr(self._async, name)
        if not inspect.iscoroutinefunction(target):
            return target  # type: ignore[no-any-return]

        def blocking(*args: Any, **kwargs: Any) -> Any:
            return self._call(target(*args, **kwargs))
        blocking.__doc__ = target.__doc__
        return blocking

    def subscribe(self, channels: Sequence[str], after: dict[str, int] | None = None
                  ) -> Iterator[dict[str, Any]]:
        """Blocking iterator over :meth:`AsyncClient.subscribe`."""
        stream = self._async.subscribe(channels, after)
        try:
            while True:
                try:
                    yield self._call(stream.__anext__())
                except StopAsyncIteration:
                    return
        finally:
            self._call(stream.aclose())  # type: ignore[attr-defined]

    def close(self) -> None:
        self._call(self._async.close())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
