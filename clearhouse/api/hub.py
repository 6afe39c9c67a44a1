"""The WebSocket hub: fans committed events out to subscribers, in per-channel sequence order.

Events are published by the coordinator on its worker thread right after ``store.append_event``;
the hub hops them onto the event loop with ``call_soon_threadsafe``. A subscription with resume
registers and reads its backlog on that same worker thread, so no event can fall between the
backlog and the live stream, and the connection drops anything at or below what it already sent.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from clearhouse.errors import Forbidden, InvalidRequest, NotFound
from clearhouse.node.coordinator import Published

__all__ = ["CHANNELS", "Hub", "Subscriber", "validate_channel"]

CHANNELS = ("trades", "rfqs", "batches", "oracle", "disputes", "governance", "expiries", "listings")
"""Channels without a parameter; ``book:<seriesId>`` and ``quotes:<account>`` take one."""

_BOOK = re.compile(r"^book:0x[0-9a-f]{64}$")
_QUOTES = re.compile(r"^quotes:0x[0-9a-fA-F]{40}$")


def validate_channel(channel: object, account: str | None, series: Callable[[str], bool]) -> str:
    """``channel`` if it exists and the connection may read it (``quotes:`` only its own account)."""
    if not isinstance(channel, str) or len(channel) > 128:
        raise InvalidRequest("channel must be a string", field="channel")
    if channel in CHANNELS:
        return channel
    if _BOOK.match(channel):
        if not series(channel[5:]):
            raise NotFound("no such series", field="channel")
        return channel
    if _QUOTES.match(channel):
        if account is None or channel[7:].lower() != account.lower():
            raise Forbidden("quotes:<account> needs a session of that account", field="channel")
        return f"quotes:{account}"
    raise InvalidRequest(f"unknown channel {channel!r}", field="channel")


@dataclass(eq=False)
class Subscriber:
    """One WebSocket connection's outgoing queue and per-channel high-water marks."""

    queue: asyncio.Queue[dict[str, Any]]
    sent: dict[str, int] = field(default_factory=dict)
    """channel -> highest seq already queued to this connection."""
    overflowed: bool = False
    """Set when the queue filled up: the connection is closed and must resume."""

    def offer(self, channel: str, seq: int, payload: dict[str, Any]) -> None:
        """Queue an event unless already sent; mark the subscriber overflowed if it cannot keep up."""
        if self.overflowed or channel not in self.sent or seq <= self.sent[channel]:
            return
        try:
            self.queue.put_nowait({"type": "event", "channel": channel, "seq": seq, "data": payload})
        except asyncio.QueueFull:
            self.overflowed = True
            self.queue = asyncio.Queue(1)
            self.queue.put_nowait({"type": "overflow"})
            return
        self.sent[channel] = seq


@dataclass
class Hub:
    """Channel -> subscribers; lives on the event loop."""

    loop: asyncio.AbstractEventLoop
    subscribers: dict[str, set[Subscriber]] = field(default_factory=dict)

    def on_events(self, events: Sequence[Published]) -> None:
        """Listener for the coordinator (called on its worker thread with a commit's events):
        one hand-over to the loop per commit."""
        self.loop.call_soon_threadsafe(self._fanout, events)

    def _fanout(self, events: Sequence[Published]) -> None:
        for channel, seq, payload in events:
            for subscriber in list(self.subscribers.get(channel, ())):
                subscriber.offer(channel, seq, payload)

    def subscribe(self, subscriber: Subscriber, channel: str, after: int,
                  backlog: Callable[[str, int], list[Any]]) -> None:
        """Read the backlog after ``after``, then (on the loop, before any later event) register
        ``subscriber`` and queue the backlog. Call on the coordinator's worker thread."""
        events = backlog(channel, after)
        self.loop.call_soon_threadsafe(self._start, subscriber, channel, after, events)

    def _start(self, subscriber: Subscriber, channel: str, after: int, events: list[Any]) -> None:
        self.subscribers.setdefault(channel, set()).add(subscriber)
        subscriber.sent[channel] = max(after, subscriber.sent.get(channel, 0))
        for event in events:
            subscriber.offer(channel, event.seq, event.payload)

    def unsubscribe(self, subscriber: Subscriber, channel: str | None = None) -> None:
        """Stop sending ``channel`` (every channel when ``None``) to ``subscriber``."""
        for name in [channel] if channel is not None else list(self.subscribers):
            self.subscribers.get(name, set()).discard(subscriber)
            subscriber.sent.pop(name, None)
