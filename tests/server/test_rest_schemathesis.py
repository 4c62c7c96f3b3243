"""The REST API checked against its own OpenAPI spec with schemathesis, on the live server: for every operation,
generated requests never get a 5xx, and every response conforms to the documented status codes and schemas."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import positive_data_acceptance

pytestmark = pytest.mark.llm


def test_rest_api_conforms(live_server):
    schema = schemathesis.openapi.from_url(f"{live_server.url}/openapi.json")
    schema = schema.configure(base_url=live_server.url) if hasattr(schema, "configure") else schema
    ops = [r.ok() for r in schema.get_all_operations()]
    labels = sorted(op.label for op in ops)
    assert {
        "POST /v1/analyze/text",
        "POST /v1/analyze/face",
        "GET /readyz",
        "POST /v1/chat/completions",
        "DELETE /v1/users/{user_id}",
        "GET /v1/users/{user_id}/export",
    } <= set(labels), labels
    calls = {"n": 0}
    for op in ops:
        # A binary body (an audio file, an image) is "schema-valid" whatever its bytes, and we rightly refuse bytes
        # that do not decode (422): for those operations only, schema-valid does not mean acceptable.
        binary = "application/octet-stream" in op.get_request_payload_content_types()
        # Chat completions: "the last message is a non-empty user message" is a rule JSON Schema cannot state about
        # a list, so a schema-valid body may rightly get its documented 422.
        semantic = op.label == "POST /v1/chat/completions"
        excluded = [positive_data_acceptance] if binary or semantic else None

        @settings(max_examples=40, deadline=None, database=None, suppress_health_check=list(HealthCheck))
        @given(case=op.as_strategy())
        def check(case):
            response = case.call(base_url=live_server.url, timeout=60)
            calls["n"] += 1
            assert response.status_code < 500, (case.method, case.path, response.status_code, response.text[:300])
            case.validate_response(response, excluded_checks=excluded)  # noqa: B023 (run in this iteration)

        check()
    print(f"schemathesis: {len(ops)} operations, {calls['n']} generated requests, no 5xx, all responses conform")
    assert calls["n"] >= 100
