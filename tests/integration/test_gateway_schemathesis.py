"""Property-based tests of the HTTP API from its own OpenAPI document (schemathesis), against the real process.

Every operation gets generated requests with a tenant's token, both valid (positive) and invalid
(negative) by the document; none may be answered with a 5xx, and every answer must be one the
document declares (status code, content type, body schema). A bounded number of examples per
operation keeps the run under a minute. (Hypothesis drives each operation directly:
schemathesis's pytest loader does not run under this pytest.)
"""

from __future__ import annotations

from collections import Counter

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import (content_type_conformance, not_a_server_error, response_schema_conformance,
                                 status_code_conformance)

from neuromesh.stack.processes import free_port
from test_gateway_support import TOKENS, gateway_process, scrape

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]
EXAMPLES = 25
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@pytest.fixture(scope="module")
def gateway(s3_server, module_bucket, tmp_path_factory):
    directory = tmp_path_factory.mktemp("gateway-fuzz")
    process = gateway_process(directory / "gateway.log", s3_server, module_bucket,
                              f"sqlite:///{directory / 'jobs.db'}", {"simulation": [f"127.0.0.1:{free_port()}"]},
                              NEUROMESH_GATEWAY_MAX_ATTEMPTS="1")
    process.start()
    yield process
    process.stop()


def answered(gateway) -> Counter:
    """HTTP answers of the gateway so far, by status code (its own metrics)."""
    counts: Counter = Counter()
    for key, value in scrape(gateway.http_port).items():
        if key.startswith("neuromesh_gateway_http_requests_total{"):
            counts[key.split("status=")[1].split(",")[0].rstrip("}")] += value
    return counts


def operations(url: str):
    schema = schemathesis.openapi.from_url(f"{url}/v1/openapi.json")
    return [result.ok() for result in schema.get_all_operations()]


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_no_server_errors_and_only_documented_answers(gateway, mode):
    headers = {"Authorization": f"Bearer {TOKENS['lab-a']}"}
    answered_before = answered(gateway)
    failures = []
    ops = operations(gateway.url)
    assert len(ops) >= 12
    for operation in ops:
        @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
                  suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy(generation_mode=mode))
        def exercise(case):
            response = case.call(base_url=gateway.url, headers=headers, timeout=20)
            case.validate_response(response, checks=CHECKS)

        try:
            exercise()
        except Unsatisfiable:
            # An operation without parameters or body has no invalid request to generate.
            if mode == GenerationMode.POSITIVE:
                failures.append(f"{operation.label}: no valid request could be generated")
        except Exception as exc:  # gather every operation's failure, then report them together
            failures.append(f"{operation.label}: {type(exc).__name__}: {str(exc)[:1500]}")
    assert not failures, "\n\n".join(failures)
    statuses = answered(gateway) - answered_before
    assert sum(statuses.values()) >= 5 * len(ops), statuses         # it did send requests
    assert not any(code.startswith("5") for code in statuses), statuses
