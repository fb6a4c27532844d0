"""`manage.py create_api_token USERNAME [--name NAME] [--expires-days N]`: the token is the last line printed."""

from io import StringIO

import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command

from api.models import ApiToken
from api.tokens import digest

pytestmark = pytest.mark.django_db


def create(*args) -> list[str]:
    out = StringIO()
    call_command("create_api_token", *args, stdout=out)
    return out.getvalue().splitlines()


def test_the_token_is_the_last_line_and_works(client):
    User.objects.create_superuser("ops", password="local-password-123")
    lines = create("ops", "--name", "nightly report", "--expires-days", "7")
    raw = lines[-1]
    token = ApiToken.objects.get(token_hash=digest(raw))
    assert token.name == "nightly report" and token.expires_at is not None
    assert client.get("/api/v1/sync", headers={"Authorization": f"Bearer {raw}"}).status_code == 200


def test_without_options_the_token_is_named_and_does_not_expire(db):
    User.objects.create(username="alice")
    raw = create("alice")[-1]
    token = ApiToken.objects.get(token_hash=digest(raw))
    assert token.expires_at is None and token.name == "command line"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nobody"], "There is no dashboard user 'nobody'"),
        (["alice", "--expires-days", "0"], "--expires-days must be between"),
        (["alice", "--name", "  "], "--name must be"),
    ],
)
def test_a_wrong_user_or_option_is_a_clear_error_and_makes_nothing(db, args, message):
    User.objects.create(username="alice")
    with pytest.raises(CommandError, match=message):
        create(*args)
    assert not ApiToken.objects.exists()


def test_an_inactive_user_gets_no_token(db):
    User.objects.create(username="alice", is_active=False)
    with pytest.raises(CommandError, match="inactive"):
        create("alice")
