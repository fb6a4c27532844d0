"""What the registry client tells its observer about each request, and how the counters label it."""

import pytest
from django.core.cache import cache

from registry import counters, reachability
from registry.client import Exchange, operation_of


@pytest.mark.parametrize(
    ("method", "path", "operation"),
    [
        ("GET", "/v2/", "ping"),
        ("GET", "/v2", "ping"),
        ("GET", "/v2/_catalog", "catalog"),
        ("GET", "/registry/v2/_catalog", "catalog"),
        ("GET", "/v2/shop/api/tags/list", "tags"),
        ("HEAD", "/v2/shop/api/manifests/latest", "manifest"),
        ("DELETE", "/v2/shop/api/manifests/sha256:" + "a" * 64, "manifest"),
        ("PUT", "/v2/tags/list/manifests/v1", "manifest"),  # a repository named tags/list
        ("GET", "/v2/shop/api/blobs/sha256:" + "a" * 64, "blob"),
        ("POST", "/v2/shop/api/blobs/uploads/", "upload"),
        ("PUT", "/v2/shop/api/blobs/uploads/0b7e4c?digest=sha256:" + "a" * 64, "upload"),
        ("GET", "/somewhere/else", "other"),
    ],
)
def test_each_request_is_named_by_what_it_asks(method, path, operation):
    assert operation_of(method, path.partition("?")[0]) == operation


def test_a_request_without_an_answer_is_counted_by_why():
    def timeouts() -> float:
        labels = {"method": "GET", "operation": "catalog", "status": "timeout"}
        return counters.REGISTRY.get_sample_value("registry_ui_registry_requests_total", labels) or 0

    before = timeouts()
    counters.count_request(Exchange("GET", "catalog", None, 15.0, True, "TIMEOUT"))
    assert timeouts() == before + 1


def test_a_token_service_that_fails_does_not_mark_the_registry_unreachable():
    cache.clear()
    reachability.observe(Exchange("GET", "token", None, 0.1, False, "UNREACHABLE"))
    assert reachability.down_since() is None
    reachability.observe(Exchange("GET", "catalog", None, 0.1, True, "UNREACHABLE"))
    assert reachability.down_since() is not None
