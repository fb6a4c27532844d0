"""Settings come from the environment and refuse bad values loudly, before anything serves."""

import os
import subprocess
import sys
from pathlib import Path

import pytest


def load_settings(tmp_path, **env) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("REGISTRY_", "DJANGO_", "SECRET_KEY"))}
    code = "import registry_ui.settings as s; print(s.REGISTRY_URL, s.REGISTRY_PASSWORD == 'from-file', s.DEBUG)"
    return subprocess.run(
        [sys.executable, "-c", code],
        env={**clean, "DATA_DIR": str(tmp_path), **env},
        cwd=Path(__file__).resolve().parent.parent,
        capture_output=True,
        text=True,
    )


def test_a_fresh_checkout_needs_no_configuration(tmp_path):
    result = load_settings(tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["http://127.0.0.1:5000", "False", "False"]
    assert (tmp_path / "secret_key").stat().st_mode & 0o077 == 0  # readable by its owner only


def test_secrets_can_come_from_files(tmp_path):
    secret = tmp_path / "password"
    secret.write_text("from-file\n")
    result = load_settings(tmp_path, REGISTRY_PASSWORD_FILE=str(secret))
    assert result.stdout.split()[1] == "True"


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("REGISTRY_URL", "registry:5000", "must be an http:// or https:// URL"),
        ("REGISTRY_VERIFY_TLS", "maybe", "is not a boolean"),
        ("DEBUG", "2", "is not a boolean"),
        ("REGISTRY_READ_TIMEOUT", "soon", "is not a number"),
        ("REGISTRY_READ_TIMEOUT", "0", "must be at least"),
        ("REGISTRY_CA_BUNDLE", "/no/such/ca.pem", "is not a readable file"),
        ("REGISTRY_HTPASSWD_PATH", "/no/such/htpasswd", "is not a readable file"),
        ("REGISTRY_PASSWORD_FILE", "/no/such/secret", "cannot be read"),
        ("CSRF_TRUSTED_ORIGINS", "dashboard.example.com", "needs its scheme"),
    ],
)
def test_bad_values_stop_with_a_message_naming_the_variable(tmp_path, name, value, message):
    result = load_settings(tmp_path, **{name: value})
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr and name in result.stderr and message in result.stderr
