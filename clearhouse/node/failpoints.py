"""Named failpoints: places where a test may kill the node as hard as a power cut would.

``failpoint("batch.built")`` does nothing unless the environment variable ``CLEARHOUSE_FAILPOINT``
(read once, at import) names that point; then the process ends at once with ``os._exit(137)``
(``name:sigkill`` sends itself SIGKILL instead), without unwinding, flushing buffers or closing
the database, so what is on disk is exactly what was committed. ``name@N`` fires at the N-th hit (default the first).
"""

from __future__ import annotations

import os
import signal
import sys
from typing import Final

__all__ = ["ENV_VAR", "FAILPOINTS", "KILLED_EXIT_CODE", "failpoint"]

ENV_VAR: Final = "CLEARHOUSE_FAILPOINT"
KILLED_EXIT_CODE: Final = 137
"""128 + SIGKILL: what a shell reports for a process killed with ``kill -9``."""

FAILPOINTS: Final = (
    "action.committed",    # an action is in the log, its batch items are not queued yet
    "items.queued",        # items queued, the acknowledgement not sent yet
    "batch.built",         # a batch computed in memory, not stored
    "batch.stored",        # a batch in the outbox as built, not posted
    "batch.posted",        # the posting transaction sent and mined, not recorded
    "batch.included",      # inclusion recorded, not finalised
    "batch.finalized",     # the finalize transaction mined, not recorded
)
"""Every step between accepting an action and recording its batch final, in order."""

_hits: dict[str, int] = {}


def _parse(spec: str) -> tuple[str, int, bool] | None:
    if not spec:
        return None
    name, _, mode = spec.partition(":")
    name, _, count = name.partition("@")
    return name, int(count or 1), mode == "sigkill"


_ARMED: Final = _parse(os.environ.get(ENV_VAR, ""))
"""Read once at import: a process is armed (or not) from its start, so an unarmed call costs one
comparison (the coordinator calls :func:`failpoint` on every accepted action)."""


def failpoint(name: str) -> None:
    """End the process here if ``CLEARHOUSE_FAILPOINT`` arms ``name`` (and this is its N-th hit)."""
    armed = _ARMED
    if armed is None or armed[0] != name:
        return
    _hits[name] = _hits.get(name, 0) + 1
    if _hits[name] < armed[1]:
        return
    sys.stderr.write(f"failpoint {name}: killing the process\n")
    sys.stderr.flush()
    if armed[2]:
        os.kill(os.getpid(), signal.SIGKILL)
    os._exit(KILLED_EXIT_CODE)
