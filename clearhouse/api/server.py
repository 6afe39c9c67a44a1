"""Running the API: uvicorn in the foreground (the ``clearhouse node`` command, graceful shutdown
on SIGINT/SIGTERM) or in a background thread (tests, benchmarks), and JSON log lines."""

from __future__ import annotations

import gc
import json
import logging
import signal
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any

import uvicorn
from fastapi import FastAPI

__all__ = ["JsonLogFormatter", "ServerThread", "configure_logging", "find_free_port",
           "freeze_startup_heap", "serve"]


class JsonLogFormatter(logging.Formatter):
    """One JSON object per line: ``ts``, ``level``, ``logger``, ``msg`` (+ ``exc`` on errors)."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {"ts": round(record.created, 3), "level": record.levelname,
                                "logger": record.name, "msg": record.getMessage()}
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return json.dumps(line, separators=(",", ":"))


def configure_logging(level: str = "INFO") -> None:
    """Structured logs on stderr for clearhouse and uvicorn."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonLogFormatter())
    for name in ("clearhouse", "uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers = [handler]
        logger.setLevel(level)
        logger.propagate = False


def find_free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def freeze_startup_heap() -> None:
    """Collect the garbage once, then put every object alive now (the imported libraries, the
    replayed state) out of the cyclic garbage collector's reach (``gc.freeze``). Otherwise each
    full collection rescans that whole heap, and under order ingest they cost about a quarter of
    the node's CPU (``python -m benchmarks api``). For a process serving one node for its life:
    what is frozen is never collected as a cycle, so tests that start many apps do not freeze."""
    gc.collect()
    gc.freeze()


def _config(app: FastAPI, host: str, port: int, max_frame_bytes: int, log_level: str
            ) -> uvicorn.Config:
    # No permessage-deflate: frames are small JSON, and compressing every ack and event costs
    # more CPU on both ends than it saves on 127.0.0.1 or a LAN.
    return uvicorn.Config(app, host=host, port=port, log_level=log_level, lifespan="on",
                          ws_max_size=max_frame_bytes * 2, ws_per_message_deflate=False, log_config=None,
                          timeout_graceful_shutdown=10)


def serve(app: FastAPI, host: str, port: int, *, max_frame_bytes: int = 64 * 1024,
          log_level: str = "info") -> None:
    """Serve until SIGINT/SIGTERM; in-flight requests finish (10 s grace), then the lifespan
    shuts the coordinator's worker down and this returns (so the caller can close the store).

    uvicorn re-raises the signal it caught once it has shut down; the no-op handlers installed
    here receive it instead of the default handler that would end the process early. The
    startup heap is frozen first (:func:`freeze_startup_heap`)."""
    freeze_startup_heap()
    caught: list[int] = []
    previous = {sig: signal.signal(sig, lambda signum, _frame: caught.append(signum))
                for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        uvicorn.Server(_config(app, host, port, max_frame_bytes, log_level)).run()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    logging.getLogger("clearhouse.api").info("server stopped (signals: %s)", caught or "none")


@dataclass
class ServerThread:
    """uvicorn on a background thread; :meth:`stop` asks it to exit and joins."""

    server: uvicorn.Server
    thread: threading.Thread
    url: str

    @classmethod
    def start(cls, app: FastAPI, host: str = "127.0.0.1", port: int | None = None, *,
              max_frame_bytes: int = 64 * 1024, timeout: float = 10.0,
              freeze_heap: bool = False) -> ServerThread:
        """Serve ``app`` on a thread; ``freeze_heap`` freezes the startup heap first, as
        :func:`serve` does (for a process that is the node, such as a benchmark's)."""
        if freeze_heap:
            freeze_startup_heap()
        port = port or find_free_port(host)
        server = uvicorn.Server(_config(app, host, port, max_frame_bytes, "warning"))
        thread = threading.Thread(target=server.run, daemon=True, name="uvicorn")
        thread.start()
        deadline = time.monotonic() + timeout
        while not server.started:
            if time.monotonic() > deadline or not thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.01)
        return cls(server, thread, f"http://{host}:{port}")

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)
