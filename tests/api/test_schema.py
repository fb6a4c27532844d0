"""The OpenAPI schema is valid and describes every endpoint, what it needs and every problem it may answer."""

import pytest
from openapi_spec_validator import validate

pytestmark = pytest.mark.django_db
ENDPOINTS = [
    "/api/v1/repositories",
    "/api/v1/repositories/{name}",
    "/api/v1/repositories/{name}/-/tags",
    "/api/v1/repositories/{name}/-/tags/{tag}",
    "/api/v1/search",
    "/api/v1/storage",
    "/api/v1/audit",
    "/api/v1/sync",
    "/api/v1/webhooks",
    "/api/v1/webhooks/{endpoint_id}",
    "/api/v1/webhooks/{endpoint_id}/deliveries",
    "/api/v1/webhooks/{endpoint_id}/test",
]


@pytest.fixture
def schema(client) -> dict:
    answer = client.get("/api/v1/openapi.json")  # public, as schema tools fetch it
    assert answer.status_code == 200
    return answer.json()


def test_the_schema_is_valid_openapi_and_lists_every_endpoint(schema):
    validate(schema)
    assert sorted(schema["paths"]) == sorted(ENDPOINTS)
    assert schema["openapi"].startswith("3.")


def test_every_endpoint_needs_a_token_or_a_session_and_documents_its_problems(schema):
    schemes = schema["components"]["securitySchemes"]
    assert {scheme["type"] for scheme in schemes.values()} == {"http", "apiKey"}
    for path in ENDPOINTS:
        for method, operation in schema["paths"][path].items():
            assert operation["security"], (method, path)
            assert {"401", "403", "404", "422", "429"} <= set(operation["responses"]), (method, path)


def test_the_tags_list_documents_its_plain_text_answer(schema):
    content = schema["paths"]["/api/v1/repositories/{name}/-/tags"]["get"]["responses"]["200"]["content"]
    assert {"application/json", "text/plain"} <= set(content)
