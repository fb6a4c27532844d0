"""Signing in with the registry's htpasswd users, roles, throttling, and what is (not) kept."""

import pytest
from django.contrib.auth.models import User
from django.urls import reverse

from accounts import roles
from registry import htpasswd
from registry.htpasswd import add_user
from tests.conftest import USERS

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("registry")]


def sign_in(client, username, password, **extra):
    return client.post(reverse("login"), {"username": username, "password": password}, **extra)


def test_a_registry_user_signs_in_with_the_htpasswd_password(client):
    response = sign_in(client, "alice", USERS["alice"])
    assert response.status_code == 302 and response.url == reverse("browser-home")
    user = User.objects.get(username="alice")
    assert roles.role_of(user) == roles.VIEWER
    assert not user.has_usable_password()


def test_a_wrong_password_is_refused_with_a_message(client):
    response = sign_in(client, "alice", "not-her-password")
    assert response.status_code == 200
    assert "That user name and password do not match" in response.text
    assert "_auth_user_id" not in client.session


def test_an_unknown_user_is_refused(client):
    assert sign_in(client, "mallory", "anything").status_code == 200
    assert not User.objects.filter(username="mallory").exists()


def test_a_password_over_72_bytes_is_refused_without_an_error(client):
    assert sign_in(client, "alice", USERS["alice"] + "x" * 80).status_code == 200


def test_the_password_is_kept_nowhere(client):
    sign_in(client, "alice", USERS["alice"])
    assert USERS["alice"] not in str(dict(client.session))
    assert all(USERS["alice"] not in morsel.value for morsel in client.cookies.values())
    assert not User.objects.get(username="alice").has_usable_password()


def test_users_named_in_dashboard_admins_become_admins(client):
    sign_in(client, "carol", USERS["carol"])
    assert roles.role_of(User.objects.get(username="carol")) == roles.ADMIN


def test_a_role_given_by_an_admin_survives_the_next_sign_in(client):
    sign_in(client, "bob", USERS["bob"])
    roles.set_role(User.objects.get(username="bob"), roles.MAINTAINER)
    client.logout()
    sign_in(client, "bob", USERS["bob"])
    assert roles.role_of(User.objects.get(username="bob")) == roles.MAINTAINER


def test_repeated_failures_for_one_user_are_throttled(client, settings):
    for _ in range(settings.LOGIN_FAILURES_PER_USER):
        sign_in(client, "alice", "wrong")
    response = sign_in(client, "alice", USERS["alice"])
    assert "Too many failed sign-in attempts" in response.text
    assert "_auth_user_id" not in client.session
    # Another user from the same address is not locked out by alice's failures.
    assert sign_in(client, "bob", USERS["bob"]).status_code == 302


def test_repeated_failures_from_one_address_are_throttled(client, settings):
    settings.LOGIN_FAILURES_PER_ADDRESS = 3
    for name in ("x1", "x2", "x3"):
        sign_in(client, name, "wrong")
    assert "Too many failed sign-in attempts" in sign_in(client, "alice", USERS["alice"]).text
    # A different address is not affected.
    assert sign_in(client, "alice", USERS["alice"], REMOTE_ADDR="10.9.9.9").status_code == 302


def test_a_user_added_to_htpasswd_can_sign_in_at_once(client, registry):
    add_user(registry.htpasswd, "dave", "dave-password", cost=4)
    assert sign_in(client, "dave", "dave-password").status_code == 302


def test_a_changed_htpasswd_password_takes_effect_at_once(client, registry):
    add_user(registry.htpasswd, "erin", "first-password", cost=4)
    assert sign_in(client, "erin", "first-password").status_code == 302
    client.logout()
    add_user(registry.htpasswd, "erin", "second-password", cost=4)
    assert sign_in(client, "erin", "first-password").status_code == 200
    assert sign_in(client, "erin", "second-password").status_code == 302


def test_a_user_removed_from_htpasswd_loses_the_session(client, registry):
    add_user(registry.htpasswd, "frank", "frank-password", cost=4)
    sign_in(client, "frank", "frank-password")
    assert client.get(reverse("browser-repositories")).status_code == 200
    lines = [line for line in registry.htpasswd.read_text().splitlines() if not line.startswith("frank:")]
    registry.htpasswd.write_text("\n".join(lines) + "\n")
    assert client.get(reverse("browser-repositories")).status_code == 302
    assert sign_in(client, "frank", "frank-password").status_code == 200


def test_a_password_changed_in_htpasswd_ends_the_users_open_sessions(client, registry):
    add_user(registry.htpasswd, "gina", "first-password", cost=4)
    sign_in(client, "gina", "first-password")
    assert client.get(reverse("browser-repositories")).status_code == 200
    add_user(registry.htpasswd, "gina", "first-password", cost=4)  # the same password, hashed again: a new entry
    assert client.get(reverse("browser-repositories")).status_code == 302
    assert sign_in(client, "gina", "first-password").status_code == 302
    assert client.get(reverse("browser-repositories")).status_code == 200  # the new session stays
    assert client.get(reverse("browser-repositories")).status_code == 200
    assert User.objects.get(username="gina").has_usable_password() is False


def test_an_unknown_name_costs_a_bcrypt_check_like_a_known_one(client, registry, monkeypatch):
    """Sign-in time must not tell which names exist: both check a hash, at the cost the file's users have."""
    checked = []
    real = htpasswd.bcrypt.checkpw
    monkeypatch.setattr(
        htpasswd.bcrypt, "checkpw", lambda password, hashed: checked.append(hashed) or real(password, hashed)
    )
    sign_in(client, "alice", "wrong-password")
    sign_in(client, "nobody-at-all", "wrong-password")
    assert len(checked) == 2
    assert [hashed.split(b"$")[2] for hashed in checked] == [b"04", b"04"]  # the suite's users have cost 4


def test_without_an_htpasswd_file_the_registry_checks_the_password(client, settings):
    settings.REGISTRY_HTPASSWD_PATH = ""
    assert sign_in(client, "alice", "wrong").status_code == 200
    assert sign_in(client, "alice", USERS["alice"]).status_code == 302


def test_a_local_django_superuser_still_signs_in(client):
    User.objects.create_superuser("root", password="local-root-password")
    assert sign_in(client, "root", "local-root-password").status_code == 302
    assert roles.role_of(User.objects.get(username="root")) == roles.ADMIN


@pytest.mark.parametrize(
    "name",
    ["browser-home", "browser-repositories", "browser-users"],
)
def test_every_page_needs_a_sign_in(client, name):
    response = client.get(reverse(name))
    assert response.status_code == 302 and response.url.startswith(reverse("login"))


def test_repository_and_tag_pages_need_a_sign_in(client):
    for url in (reverse("browser-repository", args=["shop/api"]), reverse("browser-tag", args=["shop/api", "latest"])):
        assert client.get(url).status_code == 302


def test_the_health_endpoint_needs_no_sign_in(client):
    assert client.get(reverse("browser-health")).json() == {"status": "ok"}


def test_logging_out_takes_a_post(client):
    sign_in(client, "alice", USERS["alice"])
    assert client.get(reverse("logout")).status_code == 405
    client.post(reverse("logout"))
    assert client.get(reverse("browser-home")).status_code == 302
