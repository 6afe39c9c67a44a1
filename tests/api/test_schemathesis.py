"""Schemathesis over the served /openapi.json: positive and negative generation for every
operation, against the real server. Zero 5xx; every 4xx has a code and a field; a refused request
changes neither the market state nor the action log. Bounded for CI (``API_FUZZ_EXAMPLES``)."""

from __future__ import annotations

import os
import uuid
from collections import Counter

import pytest
import schemathesis
from api_node import Node
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode

from clearhouse.sdk import Client
from clearhouse.sim import market_world as mw

EXAMPLES = int(os.environ.get("API_FUZZ_EXAMPLES", "12"))


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE],
                         ids=["positive", "negative"])
def test_fuzz_openapi(node: Node, mode: GenerationMode) -> None:
    c = Client(node.url, mw.KEYS[0])
    c.faucet(1_000 * mw.USDC)
    token = c.sign_in()
    c.close()
    schema = schemathesis.openapi.from_url(node.url + "/openapi.json")
    statuses: Counter[int] = Counter()
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 15
    fuzzed: list[str] = []
    unsatisfiable: list[str] = []

    for operation in operations:
        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(max_examples=EXAMPLES, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        def run(case: schemathesis.Case) -> None:
            before = node.state()
            headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": uuid.uuid4().hex,
                       **(case.headers or {})}
            response = case.call(base_url=node.url, headers=headers, timeout=30)
            statuses[response.status_code] += 1
            assert response.status_code < 500, (case.method, case.path, response.text)
            if response.status_code >= 400:
                body = response.json()
                assert set(body) == {"code", "field", "message"}, body
                assert body["code"] and body["field"], body
                after = node.state()
                if case.path != "/v1/auth/challenge":  # a challenge issued is logged; market untouched
                    assert after == before, (case.method, case.path, body)
                else:
                    assert after[0] == before[0]
        try:
            run()
        except Unsatisfiable:  # nothing to negate (no parameters and no body)
            assert mode is GenerationMode.NEGATIVE, operation.label
            unsatisfiable.append(operation.label)
        else:
            fuzzed.append(operation.label)
    assert len(fuzzed) >= (15 if mode is GenerationMode.POSITIVE else 10), (fuzzed, unsatisfiable)
    assert sum(statuses.values()) >= EXAMPLES
    assert not any(status >= 500 for status in statuses)
    if mode is GenerationMode.NEGATIVE:
        assert sum(n for s, n in statuses.items() if 400 <= s < 500) > 0
