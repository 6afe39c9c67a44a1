"""Shared fixtures: chains on both backends, dev accounts.

``chain`` runs a test once on the in-process EVM and once on anvil over JSON-RPC. anvil is started
once per session on a free 127.0.0.1 port and stopped at the end; each test gets a snapshot that is
reverted afterwards, so tests never see each other's state.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from sqlalchemy.engine import make_url

from clearhouse.chain import Chain, InProcessChain, RpcChain
from clearhouse.chain.anvil import Anvil, find_anvil

settings.register_profile("ci", max_examples=60, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("dev", max_examples=30, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("soak", max_examples=5000, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))


@pytest.fixture(scope="session")
def anvil() -> Iterator[Anvil]:
    """One anvil node for the session (fails in CI if anvil is missing, skips elsewhere)."""
    if find_anvil() is None:
        if os.environ.get("CI"):
            pytest.fail("anvil is not installed: `make test` installs it (tools/js)")
        pytest.skip("anvil not installed (run `make setup-js`)")
    node = Anvil()
    yield node
    node.stop()


@pytest.fixture(scope="session")
def rpc_chain_session(anvil: Anvil) -> Iterator[RpcChain]:
    chain = RpcChain(anvil.url)
    yield chain
    chain.close()


@pytest.fixture
def rpc_chain(rpc_chain_session: RpcChain) -> Iterator[RpcChain]:
    """The session's anvil chain, rolled back after the test."""
    snap = rpc_chain_session.snapshot()
    yield rpc_chain_session
    rpc_chain_session.revert_to(snap)


@pytest.fixture
def inprocess_chain() -> InProcessChain:
    """A fresh private in-process chain."""
    return InProcessChain()


@pytest.fixture(params=["inprocess", "anvil"])
def chain(request: pytest.FixtureRequest) -> Chain:
    """The same test on both backends."""
    if request.param == "anvil":
        return request.getfixturevalue("rpc_chain")  # type: ignore[no-any-return]
    return request.getfixturevalue("inprocess_chain")  # type: ignore[no-any-return]


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--pg-url", default=os.environ.get("CLEARHOUSE_PG_URL"),
                     help="PostgreSQL server for the store tests (default: tools/pg.sh starts one)")


@pytest.fixture(scope="session")
def postgres_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """A PostgreSQL server URL: ``--pg-url``/``CLEARHOUSE_PG_URL``, else a throw-away server that
    ``tools/pg.sh`` starts on 127.0.0.1 for this session and removes at the end (fails in CI if
    PostgreSQL cannot be had, skips elsewhere)."""
    given = request.config.getoption("--pg-url")
    if given:
        yield str(make_url(given).set(drivername="postgresql+psycopg").render_as_string(False))
        return
    root = Path(__file__).resolve().parent.parent
    env = {**os.environ, "CLEARHOUSE_PG_DIR": str(root / ".tools" / "pg" / f"pytest-{os.getpid()}")}
    script = root / "tools" / "pg.sh"
    done = subprocess.run(["bash", str(script), "start"], capture_output=True, text=True, env=env,
                          timeout=600, check=False)
    if done.returncode != 0:
        if os.environ.get("CI") or done.returncode != 3:
            pytest.fail(f"tools/pg.sh start failed ({done.returncode}): {done.stderr[-2000:]}")
        pytest.skip(done.stderr.strip() or "PostgreSQL not available")
    yield done.stdout.strip().splitlines()[-1]
    subprocess.run(["bash", str(script), "stop"], capture_output=True, env=env, timeout=120,
                   check=False)
