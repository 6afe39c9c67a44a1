"""Start and stop a local anvil node (installed project-locally from the npm registry)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

from clearhouse.chain.inprocess import DEV_CHAIN_ID, GAS_LIMIT, GENESIS_TIMESTAMP
from clearhouse.errors import ChainUnavailable

__all__ = ["Anvil", "find_anvil"]

_LOCAL_ANVIL = Path(__file__).resolve().parents[2] / "tools" / "js" / "node_modules" / ".bin" / "anvil"


def find_anvil() -> str | None:
    """Path of the anvil binary: $CLEARHOUSE_ANVIL, the project-local install, or $PATH."""
    candidates = [os.environ.get("CLEARHOUSE_ANVIL"), str(_LOCAL_ANVIL), shutil.which("anvil")]
    return next((c for c in candidates if c and Path(c).is_file()), None)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Anvil:
    """An anvil process on a free 127.0.0.1 port; use as a context manager or call ``stop()``."""

    def __init__(self, *, port: int | None = None, block_time: float | None = None) -> None:
        binary = find_anvil()
        if binary is None:
            raise ChainUnavailable("anvil not found: run `make setup-js` (installs @foundry-rs/anvil)")
        self.port = port or _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        args = [binary, "--host", "127.0.0.1", "--port", str(self.port), "--hardfork", "prague",
                "--chain-id", str(DEV_CHAIN_ID), "--gas-limit", str(GAS_LIMIT),
                "--timestamp", str(GENESIS_TIMESTAMP), "--silent"]
        if block_time:
            args += ["--block-time", str(block_time)]
        self._proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self._wait_ready()

    def _wait_ready(self, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        body = b'{"jsonrpc":"2.0","id":1,"method":"eth_chainId","params":[]}'
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                err = self._proc.stderr.read().decode() if self._proc.stderr else ""
                raise ChainUnavailable(f"anvil exited with {self._proc.returncode}: {err.strip()}")
            try:
                req = urllib.request.Request(self.url, body, {"Content-Type": "application/json"})
                with urllib.request.urlopen(req, timeout=1):
                    return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise ChainUnavailable(f"anvil did not answer on {self.url} within {timeout}s")

    def stop(self) -> None:
        """Terminate the process (and wait for it)."""
        if self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()

    def __enter__(self) -> Anvil:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
