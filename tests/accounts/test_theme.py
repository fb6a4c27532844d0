"""The color theme: a POST form (CSRF-checked) remembers light, dark or the system's setting in a cookie, and every
page then carries the choice on <html>, where the stylesheet reads it."""

import re

import pytest
from django.test import Client
from django.urls import reverse

from accounts import roles, theme

pytestmark = pytest.mark.django_db


def html_tag(response) -> str:
    return re.search(r"<html[^>]*>", response.text).group(0)


def test_dark_is_remembered_and_every_page_says_so(client_for):
    client = client_for(roles.ADMIN)
    response = client.post(reverse("browser-theme"), {"theme": "dark", "next": "/users/?x=1"})
    assert response.status_code == 302 and response.url == "/users/?x=1"
    cookie = response.cookies[theme.COOKIE]
    assert cookie.value == "dark" and cookie["httponly"] and cookie["samesite"] == "Lax" and cookie["max-age"]
    assert 'data-theme="dark"' in html_tag(client.get(reverse("browser-users")))


def test_system_forgets_the_choice(client_for):
    client = client_for(roles.ADMIN)
    client.post(reverse("browser-theme"), {"theme": "light", "next": "/users/"})
    assert 'data-theme="light"' in html_tag(client.get(reverse("browser-users")))
    response = client.post(reverse("browser-theme"), {"theme": "system", "next": "/users/"})
    assert response.cookies[theme.COOKIE].value == "" and response.cookies[theme.COOKIE]["max-age"] == 0
    assert "data-theme" not in html_tag(client.get(reverse("browser-users")))


def test_the_sign_in_page_has_the_switch_and_follows_the_choice(client):
    page = client.get(reverse("login"))
    assert "data-theme" not in html_tag(page)
    assert 'action="/theme/"' in page.text and '<option value="system" selected>' in page.text
    client.post(reverse("browser-theme"), {"theme": "dark", "next": "/login/"})
    page = client.get(reverse("login"))
    assert 'data-theme="dark"' in html_tag(page) and '<option value="dark" selected>' in page.text


def test_a_background_request_gets_no_page(client):
    response = client.post(reverse("browser-theme"), {"theme": "dark"}, headers={"HX-Request": "true"})
    assert response.status_code == 204 and response.cookies[theme.COOKIE].value == "dark"


def test_the_switch_goes_back_only_to_this_site(client):
    response = client.post(reverse("browser-theme"), {"theme": "dark", "next": "https://elsewhere.example/"})
    assert response.status_code == 302 and response.url == reverse("browser-home")


def test_only_the_listed_themes_a_post_and_a_csrf_token_are_accepted(client):
    response = client.post(reverse("browser-theme"), {"theme": "<script>"})
    assert response.status_code == 400 and theme.COOKIE not in response.cookies
    assert client.get(reverse("browser-theme")).status_code == 405
    strict = Client(enforce_csrf_checks=True)
    assert strict.post(reverse("browser-theme"), {"theme": "dark"}).status_code == 403


def test_a_cookie_holding_anything_else_is_ignored(client):
    client.cookies[theme.COOKIE] = '"><script>alert(1)</script>'
    assert "data-theme" not in html_tag(client.get(reverse("login")))
