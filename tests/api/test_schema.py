"""The OpenAPI schema is valid and describes every endpoint, what it needs and every problem it may answer."""

import pytest
from openapi_spec_validator import validate

pytestmark = pytest.mark.django_db
READING = [
    ("get", "/api/v1/repositories"),
    ("get", "/api/v1/repositories/{name}"),
    ("get", "/api/v1/repositories/{name}/-/tags"),
    ("get", "/api/v1/repositories/{name}/-/tags/{tag}"),
    ("get", "/api/v1/search"),
    ("get", "/api/v1/storage"),
    ("get", "/api/v1/audit"),
    ("get", "/api/v1/sync"),
    ("get", "/api/v1/deletes/{job_id}"),
    ("get", "/api/v1/retention-policies"),
    ("get", "/api/v1/retention-policies/{policy_id}"),
    ("get", "/api/v1/retention-policies/{policy_id}/dry-run"),
    ("get", "/api/v1/gc/runs/{run_id}"),
    ("get", "/api/v1/gc/runs/{run_id}/log"),
    ("post", "/api/v1/sync"),  # a refresh already running is no conflict: it goes on
]
# What may meet a state that forbids it now (a draft already confirmed, a run already going on): 409.
ACTING = [
    ("post", "/api/v1/deletes"),
    ("post", "/api/v1/deletes/{job_id}/confirm"),
    ("post", "/api/v1/retention-policies"),
    ("patch", "/api/v1/retention-policies/{policy_id}"),
    ("delete", "/api/v1/retention-policies/{policy_id}"),
    ("post", "/api/v1/retention-policies/{policy_id}/run"),
    ("post", "/api/v1/gc/dry-runs"),
    ("post", "/api/v1/gc/runs/{run_id}/collect"),
]
# The admins' webhook endpoints: every method of each path.
WEBHOOKS = [
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
    listed = {(method, path) for path, operations in schema["paths"].items() for method in operations}
    webhooks = {(method, path) for method, path in listed if path in WEBHOOKS}
    assert listed - webhooks == set(READING + ACTING)
    assert {path for _, path in webhooks} == set(WEBHOOKS)
    assert schema["openapi"].startswith("3.")


def test_every_endpoint_needs_a_token_or_a_session_and_documents_its_problems(schema):
    schemes = schema["components"]["securitySchemes"]
    assert {scheme["type"] for scheme in schemes.values()} == {"http", "apiKey"}
    webhooks = [(method, path) for path in WEBHOOKS for method in schema["paths"][path]]
    for method, path in READING + ACTING + webhooks:
        operation = schema["paths"][path][method]
        assert operation["security"], path
        assert {"401", "403", "404", "422", "429"} <= set(operation["responses"]), path
    for method, path in ACTING:
        assert "409" in schema["paths"][path][method]["responses"], path


def test_the_tags_list_documents_its_plain_text_answer(schema):
    content = schema["paths"]["/api/v1/repositories/{name}/-/tags"]["get"]["responses"]["200"]["content"]
    assert {"application/json", "text/plain"} <= set(content)


def test_a_collection_s_log_is_documented_as_text(schema):
    content = schema["paths"]["/api/v1/gc/runs/{run_id}/log"]["get"]["responses"]["200"]["content"]
    assert set(content) == {"text/plain"}
