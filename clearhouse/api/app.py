"""The node's REST + WebSocket API over a :class:`~clearhouse.node.coordinator.Coordinator`.

``create_app(coordinator, limits=...)`` builds the FastAPI app. Every coordinator call runs on one
worker thread (the coordinator is single-writer); the event loop only parses, authenticates and
fans out. Every refusal is a 4xx with the body ``{code, field, message}``; a 500 means a bug.
Routes and frames: ``docs/protocol.md`` § API. (No ``from __future__ import annotations`` here: FastAPI
reads the route annotations, some of which are local to ``create_app``.)
"""

import asyncio
import json
import logging
import time
from collections.abc import Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import partial
from typing import Annotated, Any, TypeVar

from fastapi import Depends, FastAPI, Header, Path, Query, Request, WebSocket
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from starlette.websockets import WebSocketDisconnect

from clearhouse.api import schemas as s
from clearhouse.api.auth import SessionAuth, TokenBucket
from clearhouse.api.hub import Hub, Subscriber, validate_channel
from clearhouse.errors import (
    ApiError,
    ClearhouseError,
    DuplicateOrder,
    DuplicateVote,
    Forbidden,
    IdempotencyConflict,
    InvalidRequest,
    MarketPaused,
    MissingIdempotencyKey,
    NotFound,
    PayloadTooLarge,
    QuoteAlreadyFilled,
    QuoteFaded,
    ReplayedMessage,
    StoreError,
    UnknownProposal,
)
from clearhouse.messages import SignIn
from clearhouse.node.coordinator import Ack, Coordinator
from clearhouse.node.governance import GovernanceService, parse_action, parse_delegation
from clearhouse.node.ingest import GroupExecutor
from clearhouse.types import Address, Amount, SeriesId, Timestamp

__all__ = ["ApiLimits", "check_json", "compute_message_field", "compute_status", "create_app"]

log = logging.getLogger("clearhouse.api")
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class ApiLimits:
    """Size and rate limits of one API instance."""

    max_body_bytes: int = 64 * 1024
    """Largest request body accepted (413 above)."""
    max_frame_bytes: int = 64 * 1024
    """Largest WebSocket frame accepted (the connection is closed with 1009 above)."""
    max_json_depth: int = 16
    """Deepest JSON nesting accepted in a body or frame."""
    rate_per_second: float = 50.0
    """Sustained requests per second per account (per client address before sign-in)."""
    burst: int = 100
    """Requests an idle account may make at once."""
    max_subscriptions: int = 64
    """Channels one WebSocket connection may follow."""
    ws_queue: int = 10_000
    """Events queued to one connection before it is dropped as too slow (it can resume)."""
    ws_in_flight: int = 1024
    """Frames of one connection read but not yet answered (signed actions wait for their group
    commit); the connection stops reading beyond this."""
    session_ttl: int = 86_400
    """Seconds a session token lasts."""
    challenge_ttl: int = 300
    """Seconds a sign-in challenge may be answered."""
    faucet: bool = False
    """Devnet only: ``POST /v1/dev/deposit`` credits any account (deposits come from the chain)."""


def compute_status(exc: ClearhouseError) -> int:
    """The HTTP status of a refusal."""
    if isinstance(exc, ApiError):
        return exc.status
    if isinstance(exc, MarketPaused):
        return 423  # Locked: the settlement's emergency pause, ends by itself
    if isinstance(exc, IdempotencyConflict | ReplayedMessage | DuplicateOrder | QuoteAlreadyFilled
                  | QuoteFaded | DuplicateVote):
        return 409
    if isinstance(exc, UnknownProposal):
        return 404
    if isinstance(exc, StoreError):
        return 503
    return 422


def compute_message_field(exc: ClearhouseError, message: Any) -> ClearhouseError:
    """``exc`` with a bare message member name in ``field`` made a path (``price`` ->
    ``message.price``): rules name members, the API names where they are in the body."""
    root = (exc.field or "").split(".")[0].split("[")[0]
    if root and root in type(message).model_fields:
        exc.field = f"message.{exc.field}"
    return exc


def _error(status: int, code: str, field: str | None, message: str,
           headers: Mapping[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"code": code, "field": field, "message": message}, status_code=status,
                        headers=dict(headers or {}))


def _loc(loc: tuple[int | str, ...]) -> str:
    """A pydantic error location as a path: ``message.legs[0].price``; odd keys JSON-quoted."""
    path = ""
    for part in loc[1:] if loc and loc[0] == "body" else loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif part and part.isidentifier():
            path += f".{part}" if path else part
        else:
            path += f"[{json.dumps(part)}]"
    return path if path and not path.startswith("[") else f"body{path}"


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not allowed")


def check_json(raw: bytes, max_depth: int) -> Any:
    """Parse ``raw`` as strict JSON: UTF-8, no NaN/Infinity, no duplicate keys, bounded depth."""
    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in items:
            if key in out:
                raise ValueError(f"duplicate key {key!r}")
            out[key] = value
        return out
    depth = cur = 0
    in_str = esc = False
    shallow = raw.count(b"[") + raw.count(b"{") <= max_depth
    for byte in b"" if shallow else raw:  # bound nesting before the recursive parser sees it
        if in_str:
            esc, in_str = (False, True) if esc else (byte == 0x5C, byte != 0x22)
        elif byte == 0x22:
            in_str = True
        elif byte in (0x5B, 0x7B):
            cur += 1
            depth = max(depth, cur)
            if depth > max_depth:
                raise InvalidRequest(f"JSON nested deeper than {max_depth}", field="body")
        elif byte in (0x5D, 0x7D):
            cur -= 1
    try:
        return json.loads(raw.decode("utf-8"), parse_constant=_refuse_constant,
                          object_pairs_hook=pairs)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise InvalidRequest(f"malformed JSON: {exc}", field="body") from None


class BodyGuard:
    """ASGI middleware: bodies over the limit get 413, non-JSON or NaN/duplicate-key JSON 400/422,
    before FastAPI parses anything."""

    def __init__(self, app: ASGIApp, limits: ApiLimits) -> None:
        self.app = app
        self.limits = limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in ("POST", "PUT", "PATCH"):
            await self.app(scope, receive, send)
            return
        try:
            body = await self._read(scope, receive)
            if body:
                check_json(body, self.limits.max_json_depth)
        except ApiError as exc:
            await _error(exc.status, exc.code, exc.field, exc.message)(scope, receive, send)
            return
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if sent:
                return await receive()
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await self.app(scope, replay, send)

    async def _read(self, scope: Scope, receive: Receive) -> bytes:
        limit = self.limits.max_body_bytes
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > limit):
            raise PayloadTooLarge(f"body above {limit} bytes", field="body")
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise PayloadTooLarge(f"body above {limit} bytes", field="body")
            chunks.append(chunk)
            if not message.get("more_body"):
                break
        body = b"".join(chunks)
        kind = headers.get(b"content-type", b"").split(b";")[0].strip().lower()
        if body and kind != b"application/json":
            raise InvalidRequest("Content-Type must be application/json", field="Content-Type")
        return body


class Api:
    """The state behind one app: the coordinator, its worker thread, auth, limits, the hub."""

    def __init__(self, coordinator: Coordinator, limits: ApiLimits, node: str, uri: str) -> None:
        self.coordinator = coordinator
        self.limits = limits
        self.executor = GroupExecutor(coordinator)
        self.auth = SessionAuth(coordinator.store, coordinator.domain, node, uri,
                                limits.challenge_ttl, limits.session_ttl)
        self.bucket = TokenBucket(limits.rate_per_second, limits.burst)
        self.hub: Hub | None = None
        self.registry = CollectorRegistry()
        self.requests = Counter("clearhouse_api_requests", "API requests by route and status",
                                ["route", "status"], registry=self.registry)
        self.latency = Histogram("clearhouse_api_seconds", "API request latency", ["route"],
                                 registry=self.registry)
        self.frames = Counter("clearhouse_ws_frames", "WebSocket frames received by op", ["op"],
                              registry=self.registry)
        self.health_checks: dict[str, Callable[[], dict[str, Any]]] = {}
        """Named checks ``/health`` reports; one answering ``ok: False`` makes the node ``degraded``
        (read off the worker thread: a check must only read a snapshot)."""

    def now(self) -> int:
        clock = self.coordinator.clock
        return int(clock()) if clock is not None else int(time.time())

    async def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run ``fn`` on the coordinator's worker thread."""
        return await asyncio.get_running_loop().run_in_executor(self.executor,
                                                                partial(fn, *args, **kwargs))

    def start_action(self, fn: Callable[..., Ack], *args: Any, **kwargs: Any) -> asyncio.Future[Ack]:
        """Queue the coordinator handler ``fn`` now (group commit: it shares one transaction with
        the handlers queued beside it); the future resolves once its group is committed."""
        return self.executor.start_action(fn, *args, **kwargs)

    async def run_action(self, fn: Callable[..., Ack], *args: Any, **kwargs: Any) -> Ack:
        """Run the coordinator handler ``fn`` in the next group and return its committed ack."""
        return await self.start_action(fn, *args, **kwargs)

    def series_exists(self, series_hex: str) -> bool:
        try:
            return SeriesId(bytes.fromhex(series_hex[2:])) in self.coordinator.listings
        except ValueError:
            return False


class RequestMetrics:
    """ASGI middleware: count each HTTP request by route and status and time it (plain ASGI:
    Starlette's ``BaseHTTPMiddleware`` costs a task group and a streamed copy of every response)."""

    def __init__(self, app: ASGIApp, api: Api) -> None:
        self.app = app
        self.api = api

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start, status = time.perf_counter(), 500

        async def observed(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)
        try:
            await self.app(scope, receive, observed)
        finally:  # the router put the matched route in the shared scope
            name = getattr(scope.get("route"), "path", "unmatched")
            self.api.requests.labels(name, str(status)).inc()
            self.api.latency.labels(name).observe(time.perf_counter() - start)


def _ack_response(ack: Ack) -> Response:
    if ack.error is not None:
        return JSONResponse(ack.error, status_code=409)
    return JSONResponse({"seq": ack.seq, "kind": ack.kind, "duplicate": ack.duplicate,
                         "result": ack.body})


_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": s.ErrorView, "description": text} for code, text in (
        (400, "malformed request"), (401, "no valid session"), (403, "another account's"),
        (404, "not found"), (409, "conflict or replay"), (413, "too large"),
        (422, "invalid field or refused by a rule"), (423, "market paused (emergency pause)"),
        (429, "rate limited"))}


def create_app(coordinator: Coordinator, *, limits: ApiLimits | None = None,
               node: str = "127.0.0.1", uri: str = "http://127.0.0.1",
               tick_seconds: float | None = None, governance: GovernanceService | None = None) -> FastAPI:
    """The API app over ``coordinator`` (which must have replayed its log already).

    ``tick_seconds`` runs ``coordinator.on_tick(now)`` that often (each tick is a logged action);
    ``None`` leaves ticking to the caller (tests drive time). ``governance`` (replayed, over the
    same store) adds the ``/v1/governance/...`` routes; its events go out on ``governance``."""
    lim = limits or ApiLimits()
    api = Api(coordinator, lim, node, uri)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> Any:
        api.hub = Hub(asyncio.get_running_loop())
        coordinator.listeners.append(api.hub.on_events)
        ticker = asyncio.create_task(_tick_loop(api, tick_seconds)) if tick_seconds else None
        yield
        if ticker is not None:
            ticker.cancel()
        coordinator.listeners.remove(api.hub.on_events)
        api.executor.shutdown(wait=True)

    app = FastAPI(title="clearhouse node API", version="1", lifespan=lifespan, responses=_ERRORS)
    app.state.api = api
    app.add_middleware(BodyGuard, limits=lim)
    app.add_middleware(RequestMetrics, api=api)

    @app.exception_handler(ClearhouseError)
    async def on_clearhouse_error(request: Request, exc: ClearhouseError) -> Response:
        status = compute_status(exc)
        headers = {}
        if status == 429:
            headers["Retry-After"] = str(max(1, int(float(str(exc.context.get("retry_after", 1))) + 1)))
        if status == 503:
            log.error("store failure", exc_info=exc)
        return _error(status, exc.code, exc.field or "body", exc.message, headers)

    @app.exception_handler(RequestValidationError)
    async def on_validation_error(request: Request, exc: RequestValidationError) -> Response:
        first = exc.errors()[0] if exc.errors() else {"loc": ("body",), "msg": "invalid"}
        return _error(422, "invalid_request", _loc(tuple(first.get("loc", ("body",)))),
                      str(first.get("msg", "invalid")))

    @app.exception_handler(StarletteHTTPException)
    async def on_http_error(request: Request, exc: StarletteHTTPException) -> Response:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return _error(exc.status_code, code, "path", str(exc.detail))

    @app.exception_handler(Exception)
    async def on_bug(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return _error(500, "internal_error", None, "internal error")

    # --- dependencies --------------------------------------------------------------------------
    # ``async``: FastAPI runs a plain ``def`` dependency on a thread pool, one thread hop each per
    # request; these are in-memory checks (a session's first use reads it from the store once).

    async def caller(authorization: Annotated[str | None, Header()] = None) -> Address | ApiError:
        """The signed-in account, or why there is none (checked once per request: FastAPI caches a
        dependency that several others share)."""
        try:
            return api.auth.authenticate(authorization, api.now())
        except ApiError as exc:
            return exc

    async def limited(request: Request, account: Annotated[Address | ApiError, Depends(caller)]) -> str:
        """Spend one request of the caller's budget: its account if signed in, else its address."""
        key = account if isinstance(account, str) else f"ip:{request.client.host if request.client else '?'}"
        api.bucket.take(key)
        return key

    async def session(account: Annotated[Address | ApiError, Depends(caller)]) -> Address:
        if isinstance(account, ApiError):
            raise account
        return account

    async def idempotency(idempotency_key: Annotated[str | None, Header()] = None) -> str:
        key = idempotency_key
        if key is None or not 0 < len(key) <= 128 or not key.isascii() or not key.isprintable():
            raise MissingIdempotencyKey("an Idempotency-Key header of 1..128 printable ASCII "
                                        "characters is required", field="Idempotency-Key")
        return key

    Limited = Annotated[str, Depends(limited)]
    Session = Annotated[Address, Depends(session)]
    Key = Annotated[str, Depends(idempotency)]

    def own(account: str, message_account: str, field: str) -> None:
        if account.lower() != message_account.lower():
            raise Forbidden("the message is signed for another account than the session's",
                            field=field)

    # --- public reads --------------------------------------------------------------------------

    @app.get("/v1/domain", tags=["market"])
    async def get_domain(_: Limited) -> dict[str, Any]:
        """The EIP-712 domain every message must be signed in."""
        return coordinator.domain.to_typed_data()

    @app.get("/v1/series", tags=["market"])
    async def list_series(_: Limited) -> list[dict[str, Any]]:
        """Every listed series (ids, names, strikes, caps, ticks)."""
        return await api.run(coordinator.get_series_json)

    @app.get("/v1/expiries", tags=["market"])
    async def list_expiries(_: Limited) -> list[dict[str, Any]]:
        """Every listed expiry with its state: ``trading``, ``expired`` (settlement waits for the
        oracle committee's price) or ``settled`` (``settlementPrice``: what its positions paid)."""
        return await api.run(coordinator.get_expiries_json, Timestamp(api.now()))

    @app.get("/v1/fees", tags=["market"])
    async def get_fees(_: Limited) -> dict[str, Any]:
        """The fee schedule new fills pay: ``makerBps`` / ``takerBps`` of the premium, per side."""
        return await api.run(coordinator.get_fees_json)

    @app.get("/v1/book/{series_id}", tags=["market"])
    async def get_book(series_id: Annotated[str, Path(pattern=r"^0x[0-9a-fA-F]{64}$")],
                       _: Limited) -> dict[str, Any]:
        """Depth per price level of one series: ``bids``/``asks`` as ``[price, quantity]``."""
        sid = SeriesId(bytes.fromhex(series_id[2:]))
        if sid not in coordinator.listings:
            raise NotFound("no such series", field="series_id")
        return await api.run(coordinator.get_book_json, sid, Timestamp(api.now()))

    @app.get("/v1/trades", tags=["market"])
    async def list_trades(_: Limited, after: Annotated[int, Query(ge=0, le=2**62)] = 0,
                          limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> dict[str, Any]:
        """Trades after sequence ``after`` (the ``trades`` channel's numbering)."""
        events = await api.run(coordinator.store.iter_events, "trades", after, limit)
        return {"trades": [{"seq": e.seq, **e.payload} for e in events]}

    @app.get("/v1/rfqs", tags=["rfq"])
    async def list_rfqs(_: Limited, after: Annotated[int, Query(ge=0, le=2**62)] = 0,
                        limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> dict[str, Any]:
        """RFQs after sequence ``after`` (the ``rfqs`` channel's numbering)."""
        events = await api.run(coordinator.store.iter_events, "rfqs", after, limit)
        return {"rfqs": [{"seq": e.seq, **e.payload} for e in events]}

    @app.get("/v1/events", tags=["reputation"])
    async def list_reputation_events(_: Limited, after: Annotated[int, Query(ge=0, le=2**62)] = 0,
                                     limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> dict[str, Any]:
        """The node's published reputation events after sequence ``after`` (routed, quote, fill,
        fade; ``seq`` from 1), and ``last``, the latest seq: the log ``clearhouse reputation
        recompute`` replays."""
        return await api.run(coordinator.get_reputation_events_json, after, limit)

    @app.get("/v1/batches", tags=["settlement"])
    async def list_batches(_: Limited) -> dict[str, Any]:
        """The batch outbox: number, status, state root, transaction hash."""
        batches = await api.run(coordinator.store.list_batches)
        return {"batches": [{"number": b.number, "status": b.status,
                             "stateRoot": "0x" + bytes(b.state_root).hex(),
                             "txHash": None if b.tx_hash is None else "0x" + b.tx_hash.hex()}
                            for b in batches]}

    # --- auth ----------------------------------------------------------------------------------

    @app.post("/v1/auth/challenge", tags=["auth"], response_model=s.ChallengeView)
    async def challenge(body: s.ChallengeRequest, key: Key, _: Limited) -> dict[str, Any]:
        """A ``SignIn`` message to sign with the account's key."""
        account = _checksum(body.account)
        record = await api.run(coordinator.store.append_action, "auth_challenge",
                               account, {"account": account}, key)
        message = await api.run(api.auth.issue_challenge, account, key, int(record.created_at))
        return {"message": message.to_typed_data(coordinator.domain)["message"],
                "typedData": message.to_typed_data(coordinator.domain)}

    @app.post("/v1/auth/session", tags=["auth"], response_model=s.SessionView)
    async def open_session(body: s.SessionRequest, key: Key, _: Limited) -> dict[str, Any]:
        """Exchange a signed challenge for a bearer token."""
        try:
            message = s.to_message(coordinator.domain, body.message)
        except ClearhouseError as exc:
            raise compute_message_field(exc, body.message) from None
        if not isinstance(message, SignIn):
            raise InvalidRequest("not a SignIn", field="message")
        signature = bytes.fromhex(body.signature[2:])
        token, expires = await api.run(api.auth.open_session, message, signature, api.now(), key)
        await api.run(coordinator.store.append_action, "auth_session",
                      message.account, {"sessionNonce": body.message.sessionNonce}, key)
        return {"token": token, "account": message.account, "expiresAt": expires}

    # --- account -------------------------------------------------------------------------------

    @app.get("/v1/account", tags=["account"], response_model=s.AccountView)
    async def get_account(account: Session, _: Limited) -> dict[str, Any]:
        """The session account's balance, positions and exact requirement."""
        return await api.run(coordinator.get_account_json, account)

    @app.post("/v1/dev/deposit", tags=["account"])
    async def faucet(body: s.DepositRequest, key: Key, _: Limited) -> Response:
        """Devnet faucet (off unless the node runs with ``faucet``): credit an account."""
        if not lim.faucet:
            raise NotFound("the faucet is off on this node", field="path")
        amount = int(body.amount)
        if not 0 < amount < 2**128:
            raise InvalidRequest("amount must be 1..2**128-1", field="amount")
        return _ack_response(await api.run_action(coordinator.on_deposit, _checksum(body.account),
                                           Amount(amount), idempotency_key=key))

    # --- signed actions ------------------------------------------------------------------------

    async def submit(kind: str, body: Any, account: Address, key: str) -> Response:
        try:
            message = s.to_message(coordinator.domain, body.message)
            own(account, str(getattr(message, _SIGNER_FIELD[kind])),
                f"message.{_SIGNER_FIELD[kind]}")
            signature = bytes.fromhex(body.signature[2:])
            handler = getattr(coordinator, f"on_{kind}")
            ack = await api.run_action(handler, message, signature, now=api.now(), idempotency_key=key)
        except ClearhouseError as exc:
            raise compute_message_field(exc, body.message) from None
        return _ack_response(ack)

    @app.post("/v1/orders", tags=["book"], response_model=s.AckView)
    async def post_order(body: s.SignedOrder, account: Session, key: Key, _: Limited) -> Response:
        """Submit a signed order: matched at once, the rest rests (GTC, post-only) or closes."""
        return await submit("order", body, account, key)

    @app.post("/v1/cancels", tags=["book"], response_model=s.AckView)
    async def post_cancel(body: s.SignedCancel, account: Session, key: Key, _: Limited) -> Response:
        """Cancel an order or quote by hash and/or burn a nonce."""
        return await submit("cancel", body, account, key)

    @app.post("/v1/rfqs", tags=["rfq"], response_model=s.AckView)
    async def post_rfq(body: s.SignedRFQ, account: Session, key: Key, _: Limited) -> Response:
        """Open a signed RFQ; it is routed to the registered makers."""
        return await submit("rfq", body, account, key)

    @app.post("/v1/quotes", tags=["rfq"], response_model=s.AckView)
    async def post_quote(body: s.SignedQuote, account: Session, key: Key, _: Limited) -> Response:
        """Answer an RFQ with a signed quote (delivered on ``quotes:<taker>``)."""
        return await submit("quote", body, account, key)

    @app.post("/v1/accepts", tags=["rfq"], response_model=s.AckView)
    async def post_accept(body: s.SignedAccept, account: Session, key: Key, _: Limited) -> Response:
        """Accept a quote: every leg fills or none (409 ``quote_faded`` if the maker cannot)."""
        return await submit("accept", body, account, key)

    @app.post("/v1/withdrawals", tags=["account"], response_model=s.AckView)
    async def post_withdrawal(body: s.SignedWithdrawal, account: Session, key: Key, _: Limited
                              ) -> Response:
        """Withdraw free collateral (debited now, paid on-chain by the next batch)."""
        return await submit("withdrawal", body, account, key)

    @app.post("/v1/makers", tags=["rfq"], response_model=s.AckView)
    async def post_maker(body: s.RegisterMakerRequest, account: Session, key: Key, _: Limited
                         ) -> Response:
        """Register the session's account as a maker: it receives RFQs from now on."""
        return _ack_response(await api.run_action(coordinator.on_register_maker, account,
                                           idempotency_key=key))

    if governance is not None:
        _add_governance_routes(app, api, governance, Session, Key, Limited)

    @app.get("/health", include_in_schema=False)
    async def health() -> dict[str, Any]:
        checks = {name: check() for name, check in api.health_checks.items()}
        ok = all(c.get("ok", True) for c in checks.values())
        return {"ok": ok, "status": "ok" if ok else "degraded", "lastSeq": coordinator.last_seq,
                "checks": checks}

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        return Response(generate_latest(api.registry), media_type="text/plain; version=0.0.4")

    @app.websocket("/v1/ws")
    async def websocket(ws: WebSocket) -> None:
        await WsConnection(api, ws).serve()

    return app


def _add_governance_routes(app: FastAPI, api: Api, gov: GovernanceService, Session: Any, Key: Any,
                           Limited: Any) -> None:
    """Forum, votes and delegations (``docs/operator.md`` § Governance API). Runs on the
    coordinator's worker thread; the service's clock is the node's unless it has its own."""
    if gov.clock is None:
        gov.clock = api.now
    if gov.publish is None:
        gov.publish = api.coordinator.publish

    async def submit(kind: str, signer_field: str, body: Any, account: Address, key: str) -> Response:
        try:
            message = s.to_message(gov.domain, body.message)
            if account.lower() != str(getattr(message, signer_field)).lower():
                raise Forbidden("the message is signed for another account than the session's",
                                field=f"message.{signer_field}")
            handler = getattr(gov, f"on_{kind}")
            ack = await api.run(handler, message, bytes.fromhex(body.signature[2:]), idempotency_key=key)
        except ClearhouseError as exc:
            raise compute_message_field(exc, body.message) from None
        return _ack_response(ack)

    @app.post("/v1/governance/proposals", tags=["governance"], response_model=s.AckView)
    async def post_proposal(body: s.ProposalRequest, account: Session, key: Key, _: Limited) -> Response:
        """Open a proposal (a draft; its vote opens after the voting delay, on the stake of the
        second before it was created)."""
        actions = [parse_action(a.model_dump(), i) for i, a in enumerate(body.actions)]
        return _ack_response(await api.run(gov.on_create_proposal, account, body.title, body.body, actions,
                                           idempotency_key=key))

    @app.post("/v1/governance/posts", tags=["governance"], response_model=s.AckView)
    async def post_post(body: s.SignedPost, account: Session, key: Key, _: Limited) -> Response:
        """A signed discussion post under a proposal (``parent`` a post of it, or zero)."""
        return await submit("post", "author", body, account, key)

    @app.post("/v1/governance/votes", tags=["governance"], response_model=s.AckView)
    async def post_vote(body: s.SignedVote, account: Session, key: Key, _: Limited) -> Response:
        """A signed vote (once per voter, inside the voting window, with snapshot power)."""
        return await submit("vote", "voter", body, account, key)

    @app.post("/v1/governance/delegations", tags=["governance"], response_model=s.AckView)
    async def post_delegation(body: s.SignedDelegation, account: Session, key: Key, _: Limited) -> Response:
        """A signed delegation of the session's voting power (``proposalId`` 0: every proposal)."""
        try:
            delegation = parse_delegation(body.message.model_dump())
            if account.lower() != delegation.delegator.lower():
                raise Forbidden("the delegation is signed for another account than the session's",
                                field="message.delegator")
            ack = await api.run(gov.on_delegate, delegation, bytes.fromhex(body.signature[2:]),
                                idempotency_key=key)
        except ClearhouseError as exc:
            raise compute_message_field(exc, body.message) from None
        return _ack_response(ack)

    @app.get("/v1/governance/proposals", tags=["governance"])
    async def list_proposals(_: Limited) -> dict[str, Any]:
        """The latest proposals, newest first: status, voting window, counts."""
        return {"proposals": await api.run(gov.list_proposals_json)}

    @app.get("/v1/governance/proposals/{proposal_id}", tags=["governance"])
    async def get_proposal(proposal_id: Annotated[int, Path(ge=1, le=2**62)], _: Limited) -> dict[str, Any]:
        """One proposal: lifecycle transitions, posts, votes, snapshot, tally and its digest."""
        return await api.run(gov.get_proposal_json, proposal_id)


async def _tick_loop(api: Api, seconds: float) -> None:
    while True:
        await asyncio.sleep(seconds)
        try:
            await api.run(api.coordinator.on_tick, api.now())
        except ClearhouseError:
            log.exception("tick failed")


_SIGNER_FIELD = {"order": "account", "cancel": "account", "rfq": "taker", "quote": "maker",
                 "accept": "taker", "withdrawal": "account"}


def _checksum(address: str) -> Address:
    from clearhouse.messages.checks import check_address

    return Address(check_address(address, "account"))


# --- WebSocket ---------------------------------------------------------------------------------


_WS_SIGNED: dict[str, type[s.StrictModel]] = {"order": s.SignedOrder, "cancel": s.SignedCancel, "rfq": s.SignedRFQ,
              "quote": s.SignedQuote, "accept": s.SignedAccept}


@dataclass(frozen=True, slots=True)
class _Pending:
    """A signed frame handed to the coordinator, answered when its group has committed."""

    rid: object
    future: asyncio.Future[Ack]
    message: Any
    """The frame's message (to name the field a refusal is about)."""


class WsConnection:
    """One WebSocket client: JSON frames ``{"op": ...}`` in, ``{"type": ...}`` frames out.

    Pipelined: a signed frame is parsed, checked and queued to the coordinator, and the next frame
    is read at once, up to ``ws_in_flight`` unanswered; the answers go out in frame order (each
    ack once its group is committed). Other ops wait until every earlier frame is answered."""

    def __init__(self, api: Api, ws: WebSocket) -> None:
        self.api = api
        self.ws = ws
        self.account: Address | None = None
        self.subscriber = Subscriber(asyncio.Queue(api.limits.ws_queue))
        self.replies: asyncio.Queue[_Pending | dict[str, Any]] = asyncio.Queue(api.limits.ws_in_flight)
        self.gone = False

    async def serve(self) -> None:
        await self.ws.accept()
        sender = asyncio.create_task(self._send_loop())
        replier = asyncio.create_task(self._reply_loop())
        try:
            while True:
                text = await self.ws.receive_text()
                if len(text) > self.api.limits.max_frame_bytes:
                    await self._send_error(None, PayloadTooLarge(
                        f"frame above {self.api.limits.max_frame_bytes} bytes", field="frame"))
                    await self.replies.join()
                    await self.ws.close(1009)
                    return
                await self._handle(text)
        except (WebSocketDisconnect, RuntimeError):
            pass
        finally:
            sender.cancel()
            replier.cancel()
            if self.api.hub is not None:
                self.api.hub.unsubscribe(self.subscriber)

    async def _reply_loop(self) -> None:
        """Answer queued frames in order (a closed socket drains the queue unanswered)."""
        while True:
            item = await self.replies.get()
            try:
                frame = item if isinstance(item, dict) else await self._answer(item)
                if not self.gone:
                    await self._send(frame)
            except Exception:  # the socket went away: keep draining so no waiter hangs
                self.gone = True
            finally:
                self.replies.task_done()

    @staticmethod
    async def _answer(pending: _Pending) -> dict[str, Any]:
        try:
            ack = await pending.future
        except ClearhouseError as exc:
            exc = compute_message_field(exc, pending.message)
            return {"type": "error", "id": pending.rid, **exc.to_dict(), "field": exc.field or "frame"}
        except Exception:
            log.exception("unhandled error on a WebSocket action")
            return {"type": "error", "id": pending.rid, "code": "internal_error", "field": "frame",
                    "message": "internal error"}
        if ack.error is not None:
            return {"type": "error", "id": pending.rid, **ack.error}
        return {"type": "ack", "id": pending.rid, "seq": ack.seq, "kind": ack.kind,
                "duplicate": ack.duplicate, "result": ack.body}

    async def _send_loop(self) -> None:
        while True:
            frame = await self.subscriber.queue.get()
            await self.ws.send_text(json.dumps(frame, separators=(",", ":")))
            if frame.get("type") == "overflow":
                await self.ws.close(1013)
                return

    async def _send(self, frame: dict[str, Any]) -> None:
        await self.ws.send_text(json.dumps(frame, separators=(",", ":")))

    async def _send_error(self, rid: object, exc: ClearhouseError) -> None:
        """Answer with an error, after the answers of every earlier frame."""
        await self.replies.put({"type": "error", "id": rid, **exc.to_dict(),
                                "field": exc.field or "frame"})

    async def _handle(self, text: str) -> None:
        rid: object = None
        try:
            frame = check_json(text.encode(), self.api.limits.max_json_depth)
            if not isinstance(frame, dict):
                raise InvalidRequest("a frame is a JSON object", field="frame")
            rid = frame.get("id")
            if rid is not None and (isinstance(rid, bool) or not isinstance(rid, int | str)
                                    or len(str(rid)) > 64):
                raise InvalidRequest("id must be an integer or a short string", field="id")
            op = frame.get("op")
            self.api.frames.labels(str(op) if op in _OPS else "invalid").inc()
            if op not in _OPS:
                raise InvalidRequest(f"op must be one of {', '.join(_OPS)}", field="op")
            self.api.bucket.take(self.account or f"ws:{self.ws.client}")
            if op not in _WS_SIGNED:
                await self.replies.join()  # answered in frame order, and after auth took effect
            await getattr(self, f"_op_{op}")(rid, frame)
        except ValidationError as exc:
            first = exc.errors()[0]
            await self._send_error(rid, InvalidRequest(first["msg"], field=_loc(tuple(first["loc"]))))
        except ClearhouseError as exc:
            await self._send_error(rid, exc)

    def _fields(self, frame: dict[str, Any], allowed: set[str]) -> None:
        unknown = sorted(set(frame) - allowed - {"op", "id"})
        if unknown:
            raise InvalidRequest(f"unknown field {unknown[0]!r}", field=unknown[0])

    async def _op_auth(self, rid: object, frame: dict[str, Any]) -> None:
        self._fields(frame, {"token"})
        token = frame.get("token")
        if not isinstance(token, str) or len(token) > 256:
            raise InvalidRequest("token must be a string", field="token")
        self.account = self.api.auth.authenticate(f"Bearer {token}", self.api.now())
        await self._send({"type": "authed", "id": rid, "account": self.account})

    async def _op_subscribe(self, rid: object, frame: dict[str, Any]) -> None:
        self._fields(frame, {"channel", "after"})
        channel = validate_channel(frame.get("channel"), self.account, self.api.series_exists)
        after = frame.get("after", 0)
        if isinstance(after, bool) or not isinstance(after, int) or not 0 <= after < 2**62:
            raise InvalidRequest("after must be a non-negative integer", field="after")
        if len(self.subscriber.sent) >= self.api.limits.max_subscriptions:
            raise InvalidRequest("too many subscriptions", field="channel")
        hub = self.api.hub
        if hub is None:
            raise NotFound("not serving", field="channel")
        store = self.api.coordinator.store

        def backlog(name: str, since: int) -> list[Any]:
            events: list[Any] = []
            while True:
                page = store.iter_events(name, since, 1000)
                events.extend(page)
                if len(page) < 1000:
                    return events
                since = page[-1].seq
        await self._send({"type": "subscribed", "id": rid, "channel": channel, "after": after})
        await self.api.run(hub.subscribe, self.subscriber, channel, after, backlog)

    async def _op_unsubscribe(self, rid: object, frame: dict[str, Any]) -> None:
        self._fields(frame, {"channel"})
        channel = frame.get("channel")
        if self.api.hub is not None and isinstance(channel, str):
            self.api.hub.unsubscribe(self.subscriber, channel)
        await self._send({"type": "unsubscribed", "id": rid, "channel": channel})

    async def _op_signed(self, kind: str, rid: object, frame: dict[str, Any]) -> None:
        self._fields(frame, {"message", "signature", "idempotencyKey"})
        if self.account is None:
            raise InvalidRequest("send an auth frame first", field="op") from None
        key = frame.get("idempotencyKey")
        if key is not None and (not isinstance(key, str) or not 0 < len(key) <= 128):
            raise MissingIdempotencyKey("idempotencyKey must be 1..128 characters",
                                        field="idempotencyKey")
        body: Any = _WS_SIGNED[kind].model_validate({"message": frame.get("message"),
                                                     "signature": frame.get("signature")})
        try:
            message = s.to_message(self.api.coordinator.domain, body.message)
            signer = getattr(message, _SIGNER_FIELD[kind])
            if str(signer).lower() != self.account.lower():
                raise Forbidden("the message is signed for another account than the session's",
                                field=f"message.{_SIGNER_FIELD[kind]}")
        except ClearhouseError as exc:
            raise compute_message_field(exc, body.message) from None
        handler = getattr(self.api.coordinator, f"on_{kind}")
        future = self.api.start_action(handler, message, bytes.fromhex(body.signature[2:]),
                                       now=self.api.now(), idempotency_key=key)
        await self.replies.put(_Pending(rid, future, body.message))

    async def _op_order(self, rid: object, frame: dict[str, Any]) -> None:
        await self._op_signed("order", rid, frame)

    async def _op_cancel(self, rid: object, frame: dict[str, Any]) -> None:
        await self._op_signed("cancel", rid, frame)

    async def _op_rfq(self, rid: object, frame: dict[str, Any]) -> None:
        await self._op_signed("rfq", rid, frame)

    async def _op_quote(self, rid: object, frame: dict[str, Any]) -> None:
        await self._op_signed("quote", rid, frame)

    async def _op_accept(self, rid: object, frame: dict[str, Any]) -> None:
        await self._op_signed("accept", rid, frame)

    async def _op_ping(self, rid: object, frame: dict[str, Any]) -> None:
        self._fields(frame, set())
        await self._send({"type": "pong", "id": rid})


_OPS = ("auth", "subscribe", "unsubscribe", "order", "cancel", "rfq", "quote", "accept", "ping")
