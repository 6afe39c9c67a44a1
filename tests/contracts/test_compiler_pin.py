"""The pinned compiler is the one in use, and its `@nonreentrant` lock holds on both backends."""

from __future__ import annotations

import pytest
import vyper

from clearhouse.chain import Chain
from clearhouse.chain.artifacts import VYPER_VERSION
from clearhouse.errors import ContractRevert


def test_compiler_is_the_pinned_version() -> None:
    assert vyper.__version__.startswith(VYPER_VERSION)


@pytest.mark.parametrize("mode", [0, 1], ids=["same-function", "other-guarded-function"])
def test_reentry_into_a_guarded_function_reverts(chain: Chain, mode: int) -> None:
    probe = chain.deploy("mocks/ReentrancyProbe")
    attacker = chain.deploy("mocks/Reenterer")
    attacker.transact("configure", probe.address, mode)
    with pytest.raises(ContractRevert):
        probe.transact("guarded", attacker.address)
    assert probe.call("counter") == 0


def test_unguarded_reentry_goes_through(chain: Chain) -> None:
    """The control: the lock, not the call itself, is what stops re-entry."""
    probe = chain.deploy("mocks/ReentrancyProbe")
    attacker = chain.deploy("mocks/Reenterer")
    attacker.transact("configure", probe.address, 2)
    probe.transact("guarded", attacker.address)
    assert probe.call("counter") == 10001
