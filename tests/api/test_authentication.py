"""Who may call the API: a working personal token acts with its user's role at the time of the request; anything
else is a 401 problem. A signed-in session works too, with CSRF on unsafe methods."""

from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.test import RequestFactory
from django.utils import timezone
from ninja.errors import HttpError

from accounts import roles
from api.models import ApiToken
from api.security import DashboardSession
from api.tokens import digest
from cleanup.models import DeleteJob, RetentionPolicy
from garbage_collection.models import GcRun
from registry.htpasswd import add_user

pytestmark = pytest.mark.django_db
TAGS = "/api/v1/repositories/shop/api/-/tags"


def assert_unauthorized(answer) -> None:
    assert answer.status_code == 401, answer.content
    assert answer["Content-Type"] == "application/problem+json"
    assert answer["WWW-Authenticate"].startswith("Bearer")
    body = answer.json()
    assert body["status"] == 401 and body["title"] == "Unauthorized" and "Bearer" in body["detail"]


def test_no_token_is_a_401_problem(index, client):
    assert_unauthorized(client.get(TAGS))


@pytest.mark.parametrize("presented", ["rui_not-a-token-of-this-dashboard", "something-else", "", "rui_" + "x" * 300])
def test_a_token_that_is_not_one_is_a_401(index, bearer, presented):
    assert_unauthorized(bearer(presented).get(TAGS))


ACTING = [
    ("post", "/api/v1/deletes"),
    ("get", "/api/v1/deletes/1"),
    ("post", "/api/v1/deletes/1/confirm"),
    ("get", "/api/v1/retention-policies"),
    ("post", "/api/v1/retention-policies"),
    ("get", "/api/v1/retention-policies/1"),
    ("patch", "/api/v1/retention-policies/1"),
    ("delete", "/api/v1/retention-policies/1"),
    ("get", "/api/v1/retention-policies/1/dry-run"),
    ("post", "/api/v1/retention-policies/1/run"),
    ("post", "/api/v1/gc/dry-runs"),
    ("post", "/api/v1/gc/runs/1/collect"),
    ("get", "/api/v1/gc/runs/1"),
    ("get", "/api/v1/gc/runs/1/log"),
    ("post", "/api/v1/sync"),
]


@pytest.mark.parametrize(("method", "path"), ACTING)
def test_every_acting_endpoint_without_a_token_is_a_401_and_does_nothing(client, method, path):
    assert_unauthorized(getattr(client, method)(path, {}, "application/json"))
    assert not (DeleteJob.objects.exists() or RetentionPolicy.objects.exists() or GcRun.objects.exists())


def test_a_basic_header_is_no_token(index, client):
    assert_unauthorized(client.get(TAGS, headers={"Authorization": "Basic YWxpY2U6YWxpY2UtcGFzc3dvcmQ="}))


def test_a_working_token_reads_and_a_revoked_one_no_longer_does(index, token_for, bearer):
    raw = token_for(roles.VIEWER)
    assert bearer(raw).get(TAGS).status_code == 200
    ApiToken.objects.filter(token_hash=digest(raw)).update(revoked=True)
    assert_unauthorized(bearer(raw).get(TAGS))


def test_an_expired_token_is_a_401(index, token_for, bearer):
    raw = token_for(roles.VIEWER, expires_days=1)
    assert bearer(raw).get(TAGS).status_code == 200
    ApiToken.objects.filter(token_hash=digest(raw)).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert_unauthorized(bearer(raw).get(TAGS))


def test_an_inactive_user_s_token_is_a_401(index, token_for, bearer):
    raw = token_for(roles.ADMIN)
    User.objects.filter(username="carol").update(is_active=False)
    assert_unauthorized(bearer(raw).get(TAGS))


def test_a_user_removed_from_the_registry_s_htpasswd_loses_their_tokens(index, token_for, bearer, settings, tmp_path):
    htpasswd = tmp_path / "htpasswd"
    add_user(htpasswd, "dave", "dave-password", cost=4)
    add_user(htpasswd, "erin", "erin-password", cost=4)
    settings.REGISTRY_HTPASSWD_PATH = str(htpasswd)
    raw = token_for(roles.MAINTAINER, username="dave")
    assert bearer(raw).get(TAGS).status_code == 200
    htpasswd.write_text(
        "".join(line + "\n" for line in htpasswd.read_text().splitlines() if not line.startswith("dave:"))
    )
    assert_unauthorized(bearer(raw).get(TAGS))


def test_a_local_superuser_s_token_works_without_an_htpasswd_entry(index, bearer):
    from api.tokens import create_token

    admin = User.objects.create_superuser("root", password="local-password-123")
    _token, raw = create_token(admin, "ops")
    assert bearer(raw).get("/api/v1/audit").status_code == 200


def test_a_token_acts_with_its_user_s_role_at_the_time_of_the_request(index, token_for, bearer):
    raw = token_for(roles.VIEWER)
    assert bearer(raw).get("/api/v1/audit").status_code == 403
    roles.set_role(User.objects.get(username="alice"), roles.MAINTAINER)
    assert bearer(raw).get("/api/v1/audit").status_code == 200


def test_last_used_is_written_at_most_once_a_minute(index, token_for, bearer):
    raw = token_for(roles.VIEWER)
    token = ApiToken.objects.get(token_hash=digest(raw))
    assert token.last_used_at is None
    bearer(raw).get(TAGS)
    token.refresh_from_db()
    assert token.last_used_at is not None
    recent = timezone.now() - timedelta(seconds=30)
    ApiToken.objects.filter(pk=token.pk).update(last_used_at=recent)
    bearer(raw).get(TAGS)
    token.refresh_from_db()
    assert token.last_used_at == recent  # no write within the minute
    ApiToken.objects.filter(pk=token.pk).update(last_used_at=recent - timedelta(minutes=1))
    bearer(raw).get(TAGS)
    token.refresh_from_db()
    assert token.last_used_at > recent


def test_a_bad_token_is_refused_even_beside_a_signed_in_session(index, client_for):
    client = client_for(roles.VIEWER)
    assert client.get(TAGS).status_code == 200
    assert_unauthorized(client.get(TAGS, headers={"Authorization": "Bearer rui_revoked-or-made-up"}))


def test_a_session_s_unsafe_request_needs_its_csrf_token(db):
    user = User.objects.create(username="alice")
    request = RequestFactory(enforce_csrf_checks=True).post("/api/v1/anything")
    request.user, request.session, request.COOKIES["sessionid"] = user, {}, "abc"
    with pytest.raises(HttpError) as refused:
        DashboardSession()(request)
    assert refused.value.status_code == 403
    reading = RequestFactory(enforce_csrf_checks=True).get("/api/v1/anything")
    reading.user, reading.COOKIES["sessionid"] = user, "abc"
    assert DashboardSession()(reading) == user


def test_an_anonymous_request_is_not_sent_to_the_sign_in_page(index, client):
    answer = client.get("/api/v1/repositories", follow=False)
    assert answer.status_code == 401  # not the site-wide redirect to /login/
