"""The API tokens page: each signed-in user lists, makes (shown once, stored only as a hash) and revokes their own
tokens."""

import re
from datetime import timedelta

import pytest
from django.apps import apps
from django.contrib.auth.models import User
from django.core import serializers
from django.utils import timezone

from accounts import roles
from api.models import ApiToken
from api.tokens import create_token, digest

pytestmark = pytest.mark.django_db
TOKEN_RE = re.compile(r'value="(rui_[A-Za-z0-9_-]{43})"')


def everything_stored() -> str:
    """Every row of every table, as text."""
    return "".join(serializers.serialize("json", model.objects.all()) for model in apps.get_models())


def make(client, **fields):
    return client.post("/api-tokens/new/", {"name": "CI deploy", "expires_days": "", **fields})


def test_a_new_token_is_shown_once_and_stored_only_as_its_hash(client_for):
    client = client_for(roles.VIEWER)
    answer = make(client)
    assert answer.status_code == 200
    assert "shown only this once" in answer.text
    assert "no-store" in answer["Cache-Control"]
    raw = TOKEN_RE.search(answer.text)[1]
    token = ApiToken.objects.get()
    assert token.token_hash == digest(raw) and raw.startswith(token.prefix)
    assert raw not in everything_stored()
    again = client.get("/api-tokens/")
    assert raw not in again.text and f"{token.prefix}…" in again.text and "CI deploy" in again.text


def test_a_token_made_on_the_page_reads_the_api(client_for, client):
    raw = TOKEN_RE.search(make(client_for(roles.VIEWER)).text)[1]
    client.logout()
    assert client.get("/api/v1/sync", headers={"Authorization": f"Bearer {raw}"}).status_code == 200


def test_a_token_can_expire_after_some_days(client_for):
    make(client_for(roles.VIEWER), expires_days="30")
    expires = ApiToken.objects.get().expires_at
    assert timedelta(days=29, hours=23) < expires - timezone.now() <= timedelta(days=30)


@pytest.mark.parametrize(("fields", "message"), [({"name": ""}, "required"), ({"expires_days": "0"}, "greater than")])
def test_a_form_with_a_mistake_says_so_and_makes_nothing(client_for, fields, message):
    answer = make(client_for(roles.VIEWER), **fields)
    assert answer.status_code == 400 and message in answer.text
    assert not ApiToken.objects.exists()


def test_the_page_lists_only_the_user_s_own_tokens(client_for):
    create_token(User.objects.create(username="someone-else"), "theirs")
    client = client_for(roles.ADMIN)
    create_token(User.objects.get(username="admin-user"), "mine", expires_days=3)
    page = client.get("/api-tokens/").text
    assert "mine" in page and "theirs" not in page


def test_revoking_a_token_stops_it_and_says_so(client_for, client):
    client = client_for(roles.VIEWER)
    token, _raw = create_token(User.objects.get(username="viewer-user"), "old laptop")
    answer = client.post(f"/api-tokens/{token.pk}/revoke/", follow=True)
    assert "is revoked" in answer.text and "Revoked" in answer.text
    token.refresh_from_db()
    assert token.revoked


def test_nobody_revokes_another_user_s_token(client_for):
    theirs, _raw = create_token(User.objects.create(username="someone-else"), "theirs")
    assert client_for(roles.ADMIN).post(f"/api-tokens/{theirs.pk}/revoke/").status_code == 404
    theirs.refresh_from_db()
    assert not theirs.revoked


def test_revoking_and_making_take_only_posts(client_for):
    client = client_for(roles.VIEWER)
    token, _raw = create_token(User.objects.get(username="viewer-user"), "x")
    assert client.get(f"/api-tokens/{token.pk}/revoke/").status_code == 405
    assert client.get("/api-tokens/new/").status_code == 405


def test_the_page_needs_a_signed_in_user_and_a_csrf_token(client, django_user_model):
    assert client.get("/api-tokens/")["Location"].startswith("/login/")
    from django.test import Client

    strict = Client(enforce_csrf_checks=True)
    strict.force_login(django_user_model.objects.create(username="alice"))
    assert strict.post("/api-tokens/new/", {"name": "x"}).status_code == 403


def test_the_page_is_in_spanish_for_a_spanish_reader(client_for):
    client = client_for(roles.VIEWER)
    client.cookies["django_language"] = "es"
    page = client.get("/api-tokens/").text
    assert "Tokens de la API" in page and "Revocar" not in page  # no token yet: no revoke button
