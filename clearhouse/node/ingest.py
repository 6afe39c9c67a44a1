"""The coordinator's worker thread, with group commit: every call runs on one thread, in
submission order; consecutive action handlers queued while the previous group was committing run
as one group (:meth:`~clearhouse.node.coordinator.Coordinator.run_group`: one transaction, one
fsync), so ingest is not capped by one fsync per action and nothing is acknowledged uncommitted.
"""

from __future__ import annotations

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
    future: Future[Any]
    action: bool
    """A coordinator handler (groupable) rather than a read or another role's step."""


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
        return self._put(lambda: fn(*args, **kwargs), action=False)

    def submit_action(self, fn: Callable[..., Ack], /, *args: Any, **kwargs: Any) -> Future[Ack]:
        """Run the handler ``fn(*args, **kwargs)`` in the next group; its future resolves once
        the group is committed (or with the handler's refusal, or the commit's failure)."""
        return self._put(lambda: fn(*args, **kwargs), action=True)

    def _put(self, fn: Callable[[], Any], action: bool) -> Future[Any]:
        future: Future[Any] = Future()
        with self._lock:
            if self._closed:
                raise RuntimeError("cannot schedule new calls after shutdown")
            self._queue.put(_Call(fn, future, action))
        return future

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
                call.future.cancel()

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
        if not call.future.set_running_or_notify_cancel():
            return
        try:
            call.future.set_result(call.fn())
        except BaseException as exc:  # handed to whoever waits on the future
            call.future.set_exception(exc)

    def _run_group(self, group: list[_Call]) -> None:
        live = [c for c in group if c.future.set_running_or_notify_cancel()]
        try:
            results = self._coordinator.run_group([c.fn for c in live])
        except BaseException as exc:  # a bug in the group machinery: fail every caller
            for c in live:
                c.future.set_exception(exc)
            return
        for c, result in zip(live, results, strict=True):
            if isinstance(result, Exception):
                c.future.set_exception(result)
            else:
                c.future.set_result(result)
