"""Every URL answers only the methods it takes, and checks the method before the role: a viewer's request with a
method the page does not take is 405, never 403, and reaches neither the registry nor the database."""

import pytest
from django.urls import URLPattern, get_resolver, reverse

from accounts import roles

SAMPLE_ARGUMENTS = {
    "name": "shop/api",
    "tag": "latest",
    "job_id": 1,
    "run_id": 1,
    "policy_id": 1,
    "user_id": 1,
    "token_id": 1,
    "endpoint_id": 1,
}
URL_NAMES = [pattern.name for pattern in get_resolver().url_patterns if isinstance(pattern, URLPattern)]


def sample_url(name: str) -> str:
    pattern = get_resolver().reverse_dict.getlist(name)[0][0][0][1]
    return reverse(name, kwargs={key: SAMPLE_ARGUMENTS[key] for key in pattern})


def test_every_url_is_checked():
    assert len(URL_NAMES) == len(set(URL_NAMES)) > 30


@pytest.mark.parametrize("name", URL_NAMES)
def test_a_method_the_page_does_not_take_is_405_for_anyone(client_for, name):
    client = client_for(roles.VIEWER)
    assert client.generic("PUT", sample_url(name)).status_code == 405
