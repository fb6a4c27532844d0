"""compose.yaml's init service (registry_ui/first_start.py): a first start makes every file the stack needs; a
later one replaces nothing, adds only what is missing, and stops with a message when what it finds cannot work."""

from __future__ import annotations

import stat

import pytest
import yaml
from django.core.checks.security.base import check_secret_key
from django.test import override_settings

from registry import htpasswd
from registry_ui import first_start


@pytest.fixture
def places(tmp_path):
    return {
        "secrets_dir": tmp_path / "secrets",
        "htpasswd_path": tmp_path / "auth" / "htpasswd",
        "config_path": tmp_path / "etc" / "config.yml",
        "service_account": "dashboard",
        "admin": "admin",
    }


def admin_password(output: str) -> str:
    return output.split("as admin with the password ", 1)[1].split()[0]


def test_a_first_start_makes_the_secrets_the_users_and_the_registry_config(places, capsys):
    first_start.first_start(**places)

    secrets_dir = places["secrets_dir"]
    values = {name: (secrets_dir / name).read_text().strip() for name in first_start.SECRETS}
    assert len(set(values.values())) == 3 and all(len(value) >= 40 for value in values.values())
    for name in first_start.SECRETS:
        assert stat.S_IMODE((secrets_dir / name).stat().st_mode) == 0o400
    with override_settings(SECRET_KEY=values["secret_key"]):
        assert check_secret_key(None) == []  # `check --deploy` finds it long and random enough
    users = htpasswd.parse(places["htpasswd_path"].read_text())
    assert set(users) == {"dashboard", "admin"}
    assert users["dashboard"].startswith(b"$2b$04$")  # cost 4: a random password needs no slow hash
    assert htpasswd.check(str(places["htpasswd_path"]), "dashboard", values["registry_password"])
    output = capsys.readouterr().out
    assert htpasswd.check(str(places["htpasswd_path"]), "admin", admin_password(output))
    config = yaml.safe_load(places["config_path"].read_text())
    assert config["notifications"]["endpoints"][0]["headers"]["Authorization"] == [
        f"Bearer {values['notifications_secret']}"
    ]
    assert config["auth"]["htpasswd"]["path"] == "/auth/htpasswd"
    assert stat.S_IMODE(places["config_path"].stat().st_mode) == 0o600


def test_a_later_start_replaces_nothing_and_prints_no_password(places, capsys):
    first_start.first_start(**places)
    capsys.readouterr()
    files = [*(places["secrets_dir"] / name for name in first_start.SECRETS), places["htpasswd_path"]]
    before = {path: path.read_bytes() for path in [*files, places["config_path"]]}

    first_start.first_start(**places)

    assert {path: path.read_bytes() for path in before} == before
    output = capsys.readouterr().out
    assert "Sign in" not in output and "Nothing to make" in output


def test_a_brought_htpasswd_keeps_its_users_and_gets_the_service_account(places, capsys):
    places["htpasswd_path"].parent.mkdir()
    htpasswd.add_user(places["htpasswd_path"], "alice", "her password", cost=4)

    first_start.first_start(**places)

    users = htpasswd.parse(places["htpasswd_path"].read_text())
    assert set(users) == {"alice", "dashboard"}  # no admin is made in someone's own file
    assert htpasswd.check(str(places["htpasswd_path"]), "alice", "her password")
    password = (places["secrets_dir"] / "registry_password").read_text().strip()
    assert htpasswd.check(str(places["htpasswd_path"]), "dashboard", password)
    assert "Sign in" not in capsys.readouterr().out


def test_a_service_account_that_does_not_match_its_secret_stops_the_start(places):
    places["htpasswd_path"].parent.mkdir()
    htpasswd.add_user(places["htpasswd_path"], "dashboard", "another password", cost=4)
    text = places["htpasswd_path"].read_text()

    with pytest.raises(first_start.FirstStartError, match="does not match the registry_password secret"):
        first_start.first_start(**places)

    assert places["htpasswd_path"].read_text() == text
    assert not places["config_path"].exists()


def test_a_brought_registry_config_is_left_as_it_is_with_a_note_when_it_sends_no_secret(places, capsys):
    places["config_path"].parent.mkdir()
    places["config_path"].write_text("version: 0.1\n")

    first_start.first_start(**places)

    assert places["config_path"].read_text() == "version: 0.1\n"
    assert "does not send the notifications secret" in capsys.readouterr().err


def test_an_empty_secret_stops_the_start_and_says_which(places, monkeypatch, capsys):
    places["secrets_dir"].mkdir()
    (places["secrets_dir"] / "registry_password").write_text("\n")
    for name, value in places.items():
        variable = {"secrets_dir": "SECRETS_DIR", "htpasswd_path": "REGISTRY_HTPASSWD_PATH"}.get(name)
        if variable:
            monkeypatch.setenv(variable, str(value))
    monkeypatch.setenv("REGISTRY_CONFIG_PATH", str(places["config_path"]))

    assert first_start.main() == 1

    assert "registry_password is empty" in capsys.readouterr().err
    assert not places["htpasswd_path"].exists()


def test_with_a_database_host_it_makes_the_database_password_and_the_url_the_dashboard_connects_with(places):
    first_start.first_start(**places, database_host="postgres")

    password = (places["secrets_dir"] / "postgres_password").read_text().strip()
    url = (places["secrets_dir"] / "database_url").read_text().strip()
    assert url == f"postgres://registry_ui:{password}@postgres:5432/registry_ui"
    assert stat.S_IMODE((places["secrets_dir"] / "database_url").stat().st_mode) == 0o400
