"""Roles: admins manage them; nobody else sees or changes them."""

import pytest
from django.contrib.auth.models import User
from django.urls import reverse

from accounts import roles

pytestmark = pytest.mark.django_db


@pytest.fixture
def bob(db):
    user = User.objects.create(username="bob")
    roles.set_role(user, roles.VIEWER)
    return user


def test_an_admin_sees_users_and_roles(client_for, bob):
    response = client_for(roles.ADMIN).get(reverse("browser-users"))
    assert response.status_code == 200
    assert "bob" in response.text
    assert 'href="/users/"' in response.text  # the sidebar link


@pytest.mark.parametrize("role", [roles.VIEWER, roles.MAINTAINER])
def test_others_get_403_and_no_link(client_for, role, bob):
    client = client_for(role)
    assert client.get(reverse("browser-users")).status_code == 403
    assert 'href="/users/"' not in client.get(reverse("browser-repositories")).text
    response = client.post(reverse("browser-user-role", args=[bob.pk]), {"role": roles.ADMIN})
    assert response.status_code == 403
    assert roles.role_of(bob) == roles.VIEWER


def test_an_admin_changes_a_role(client_for, bob):
    response = client_for(roles.ADMIN).post(reverse("browser-user-role", args=[bob.pk]), {"role": roles.MAINTAINER})
    assert response.status_code == 302
    assert roles.role_of(bob) == roles.MAINTAINER


def test_an_unknown_role_changes_nothing(client_for, bob):
    client = client_for(roles.ADMIN)
    response = client.post(reverse("browser-user-role", args=[bob.pk]), {"role": "root"}, follow=True)
    assert "Choose one of the listed roles" in response.text
    assert roles.role_of(bob) == roles.VIEWER


def test_an_admin_cannot_demote_themselves(client_for):
    client = client_for(roles.ADMIN, username="ann")
    ann = User.objects.get(username="ann")
    response = client.post(reverse("browser-user-role", args=[ann.pk]), {"role": roles.VIEWER}, follow=True)
    assert "cannot change your own role" in response.text
    assert roles.role_of(ann) == roles.ADMIN


def test_changing_a_role_takes_a_post(client_for, bob):
    assert client_for(roles.ADMIN).get(reverse("browser-user-role", args=[bob.pk])).status_code == 405


def test_changing_a_role_needs_the_csrf_token(bob, db):
    from django.test import Client

    admin = User.objects.create(username="admin-csrf")
    roles.set_role(admin, roles.ADMIN)
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin)
    assert client.post(reverse("browser-user-role", args=[bob.pk]), {"role": roles.ADMIN}).status_code == 403
    assert roles.role_of(bob) == roles.VIEWER


def test_anonymous_users_are_sent_to_sign_in(client, bob):
    response = client.post(reverse("browser-user-role", args=[bob.pk]), {"role": roles.ADMIN})
    assert response.status_code == 302 and response.url.startswith(reverse("login"))
