"""``clearhouse node`` as a separate process: serves the API and /metrics, logs JSON lines,
shuts down gracefully on SIGTERM, and a restart replays the log."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
from api_node import find_free_port

from clearhouse.sdk import Client
from clearhouse.sim import market_world as mw


def start(db: Path, port: int) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "clearhouse.cli", "node", "--roles", "coordinator",
         "--db", f"sqlite:///{db}", "--chain", "inprocess", "--host", "127.0.0.1",
         "--port", str(port), "--faucet"], stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health").status_code == 200:
                return proc
        except httpx.TransportError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError(proc.stderr.read() if proc.stderr else "node did not start")


def stop(proc: subprocess.Popen[str]) -> list[dict[str, object]]:
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0
    lines = (proc.stderr.read() if proc.stderr else "").splitlines()
    return [json.loads(line) for line in lines if line.startswith("{")]


def test_node_command(tmp_path: Path) -> None:
    port = find_free_port()
    url = f"http://127.0.0.1:{port}"
    proc = start(tmp_path / "node.db", port)
    try:
        with Client(url, mw.KEYS[0]) as c:
            assert c.get_domain().chain_id > 0
            c.faucet(1_000 * mw.USDC)
            c.sign_in()
            assert c.get_account()["balance"] == str(1_000 * mw.USDC)
        assert httpx.get(url + "/v1/account").status_code == 401
        metrics = httpx.get(url + "/metrics").text
        assert 'clearhouse_api_requests_total{route="/v1/account",status="200"} 1.0' in metrics
        assert 'clearhouse_api_requests_total{route="/v1/account",status="401"} 1.0' in metrics
        assert 'clearhouse_api_seconds_count{route="/v1/account"} 2.0' in metrics
        assert httpx.get(url + "/openapi.json").json()["paths"]["/v1/orders"]["post"]
    finally:
        logs = stop(proc)
    assert any("coordinator up" in str(line.get("msg")) for line in logs)
    assert all({"ts", "level", "logger", "msg"} <= set(line) for line in logs)
    assert "store closed" in str(logs[-1]["msg"])  # graceful: the store was closed after serving
    proc = start(tmp_path / "node.db", port)
    try:
        with Client(url, mw.KEYS[0]) as c:
            c.sign_in()
            assert c.get_account()["balance"] == str(1_000 * mw.USDC)  # replayed from the log
    finally:
        stop(proc)
