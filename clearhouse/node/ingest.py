"""The coordinator's worker thread, with group commit: every call runs on one thread, in
submission order; consecutive action handlers queued while the previous group was committing run
as one group (:meth:`~clearhouse.node.coordinator.Coordinator.run_group`: one transaction, one
fsync), so ingest is not capped by one fsync per action and nothing is acknowledged uncommitted.
An event loop's actions (:meth:`GroupExecutor.start_action`) are answered with one hand-over to
that loop per group, not one per action.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Executor, Future
from dataclasses import dataclass
from typing import Any, Final, TypeVar

from clearhouse.node.coordinator import Ack, Coordinator

__all__ = ["MAX_GROUP", "GroupExecutor"]

MAX_GROUP: Final = 2048
"""Most actions committed in one transaction (bounds the latency of the group's first action)."""

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class _Call:
    fn: Callable[[], Any]
    future: Future[Any] | asyncio.Future[Any]
    """Resolved on the worker thread (``concurrent.futures``) or on its own loop (asyncio)."""
    action: bool
    """A coordinator handler (groupable) rather than a read or another role's step."""

    def start(self) -> bool:
        """Whether to run the call (``False``: its caller cancelled it)."""
        if isinstance(self.future, Future):
            return self.future.set_running_or_notify_cancel()
        return not self.future.cancelled()  # a cancel racing this is caught by _resolve_waiters

    def cancel(self) -> None:
        if isinstance(self.future, Future):
            self.future.cancel()
        else:
            _hand_over(self.future.get_loop(), [(self.future, _CANCELLED)])


_CANCELLED = object()
"""The outcome that cancels a waiter (its call never ran)."""


def _hand_over(loop: asyncio.AbstractEventLoop,
               outcomes: list[tuple[asyncio.Future[Any], object]]) -> None:
    """Resolve asyncio futures on their loop, in one call (a closed loop has no waiters left)."""
    with contextlib.suppress(RuntimeError):
        loop.call_soon_threadsafe(_resolve_waiters, outcomes)


def _resolve_waiters(outcomes: list[tuple[asyncio.Future[Any], object]]) -> None:
    """On the loop: set each result or exception, or cancel (a done future is left as it is)."""
    for waiter, outcome in outcomes:
        if waiter.done():
            continue
        if outcome is _CANCELLED:
            waiter.cancel()
        elif isinstance(outcome, BaseException):
            waiter.set_exception(outcome)
        else:
            waiter.set_result(outcome)


class GroupExecutor(Executor):
    """A one-thread executor for a :class:`Coordinator`: :meth:`submit` runs a call alone (after
    the group before it has committed); :meth:`submit_action` queues a handler returning an
    :class:`Ack` that may share a group with the handlers queued next to it."""

    def __init__(self, coordinator: Coordinator, max_group: int = MAX_GROUP,
                 name: str = "coordinator") -> None:
        self._coordinator = coordinator
        self._max_group = max_group
        self._queue: queue.SimpleQueue[_Call | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._closed = False
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        """Run ``fn(*args, **kwargs)`` alone on the worker thread."""
        future: Future[T] = Future()
        self._put(_Call(lambda: fn(*args, **kwargs), future, action=False))
        return future

    def submit_action(self, fn: Callable[..., Ack], /, *args: Any, **kwargs: Any) -> Future[Ack]:
        """Run the handler ``fn(*args, **kwargs)`` in the next group; its future resolves once
        the group is committed (or with the handler's refusal, or the commit's failure)."""
        future: Future[Ack] = Future()
        self._put(_Call(lambda: fn(*args, **kwargs), future, action=True))
        return future

    def start_action(self, fn: Callable[..., Ack], /, *args: Any, **kwargs: Any
                     ) -> asyncio.Future[Ack]:
        """:meth:`submit_action` for the running event loop: the returned asyncio future
        resolves on that loop, the whole group's in one hand-over."""
        waiter: asyncio.Future[Ack] = asyncio.get_running_loop().create_future()
        self._put(_Call(lambda: fn(*args, **kwargs), waiter, action=True))
        return waiter

    def _put(self, call: _Call) -> None:
        with self._lock:
            if self._closed:
                raise RuntimeError("cannot schedule new calls after shutdown")
            self._queue.put(call)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Stop after the calls already queued (``cancel_futures`` drops them instead)."""
        with self._lock:
            if not self._closed:
                self._closed = True
                if cancel_futures:
                    self._drain_cancel()
                self._queue.put(None)
        if wait and threading.current_thread() is not self._thread:
            self._thread.join()

    def _drain_cancel(self) -> None:
        while True:
            try:
                call = self._queue.get_nowait()
            except queue.Empty:
                return
            if call is not None:
                call.cancel()

    def _loop(self) -> None:
        pending: _Call | None = None
        while True:
            call = pending if pending is not None else self._queue.get()
            pending = None
            if call is None:
                return
            if not call.action:
                self._run_alone(call)
                continue
            group = [call]
            while len(group) < self._max_group:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None or not more.action:
                    pending = more if more is not None else None
                    if more is None:
                        self._run_group(group)
                        return
                    break
                group.append(more)
            self._run_group(group)

    @staticmethod
    def _run_alone(call: _Call) -> None:
        future = call.future
        assert isinstance(future, Future)  # only actions are started from a loop
        if not future.set_running_or_notify_cancel():
            return
        try:
            future.set_result(call.fn())
        except BaseException as exc:  # handed to whoever waits on the future
            future.set_exception(exc)

    def _run_group(self, group: list[_Call]) -> None:
        live = [c for c in group if c.start()]
        try:
            results: list[Any] = self._coordinator.run_group([c.fn for c in live])
        except BaseException as exc:  # a bug in the group machinery: fail every caller
            results = [exc] * len(live)
        loops: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Any], object]]] = {}
        for c, result in zip(live, results, strict=True):
            if isinstance(c.future, Future):
                if isinstance(result, BaseException):
                    c.future.set_exception(result)
                else:
                    c.future.set_result(result)
            else:
                loops.setdefault(c.future.get_loop(), []).append((c.future, result))
        for loop, outcomes in loops.items():
            _hand_over(loop, outcomes)
