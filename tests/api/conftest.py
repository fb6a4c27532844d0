"""The API's fixtures: the session registry indexed once for a test module, a registry of a test's own for the acting
endpoints, and clients that send a token (or a session's CSRF token)."""

import pytest
from django.contrib.auth.models import User
from django.test import Client

from accounts import roles
from api import tokens
from catalog import sync
from catalog.models import Blob, Manifest, Registry
from registry.client import RegistryClient
from registry.htpasswd import add_user
from tests.conftest import SERVICE_PASSWORD, SERVICE_USER


@pytest.fixture(scope="module")
def indexed(django_db_setup, django_db_blocker, registry_process, registry_contents):
    """The session registry, indexed once for the module and committed: each test's changes roll back."""
    with django_db_blocker.unblock():
        url = registry_process.url
        row = Registry.objects.create(url=url, name=url)
        run = sync.reconcile(RegistryClient(url, SERVICE_USER, SERVICE_PASSWORD), row)
        assert run.status == "done", run.errors
    yield row
    with django_db_blocker.unblock():
        row.delete()
        Manifest.objects.all().delete()
        Blob.objects.all().delete()


@pytest.fixture
def index(indexed, registry, settings):
    """The indexed registry, fresh for an hour: the API answers from the index without asking the registry."""
    settings.REGISTRY_CACHE_SECONDS = 3600
    return indexed


# The session registry's htpasswd users, one per role (their tokens work as long as the file lists them).
ROLE_USERS = {roles.VIEWER: "alice", roles.MAINTAINER: "bob", roles.ADMIN: "carol"}


@pytest.fixture
def token_for(db):
    """A new token of a registry user with the given role."""

    def make(role: str = roles.VIEWER, username: str | None = None, **options) -> str:
        user, _ = User.objects.get_or_create(username=username or ROLE_USERS[role])
        user.set_unusable_password()  # as a user the registry's htpasswd signs in
        user.save()
        roles.set_role(user, role)
        return tokens.create_token(user, "test", **options)[1]

    return make


@pytest.fixture
def bearer():
    """A client that sends `Authorization: Bearer TOKEN` with every request, as a script does."""

    def make(token: str) -> Client:
        return Client(headers={"Authorization": f"Bearer {token}"})

    return make


@pytest.fixture
def acting(own):
    """A registry of the test's own, for endpoints that change it, whose htpasswd also lists the users of ROLE_USERS
    (a token stops working when its user leaves the file), and dave, a second maintainer: (the registry process, its
    client, its index row)."""
    local, client, registry = own
    for username in [*ROLE_USERS.values(), "dave"]:
        add_user(local.htpasswd, username, f"{username}-password", cost=4)
    return local, client, registry


@pytest.fixture
def csrf_session(db):
    """A signed-in session of `role` that enforces CSRF as a browser's would, and the CSRF token its pages carry."""

    def make(role: str) -> tuple[Client, str]:
        user, _ = User.objects.get_or_create(username=ROLE_USERS[role])
        roles.set_role(user, role)
        browser = Client(enforce_csrf_checks=True)
        browser.force_login(user)
        browser.get("/api-tokens/")  # a page with a form: it sets the CSRF cookie
        return browser, browser.cookies["csrftoken"].value

    return make
