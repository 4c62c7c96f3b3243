"""The REST API checked against its own OpenAPI spec with schemathesis, on the live server: no 5xx, responses
conform to the documented schemas, status codes are documented."""
from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

pytestmark = pytest.mark.llm


@pytest.fixture(scope="module")
def api_schema(live_server):
    return schemathesis.openapi.from_url(f"{live_server.url}/openapi.json")


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
def test_rest_api_conforms(case):
    case.call_and_validate()
