"""What compose.yaml's `init` service runs before anything else starts: it makes what a first `docker compose up`
lacks, and leaves alone whatever exists (a file someone brought, or one an earlier start made).

  python -m registry_ui.first_start

Made when missing, each in its own volume:
- /run/secrets/secret_key, registry_password (the dashboard's service account), notifications_secret: random,
  readable only by the dashboard's user;
- /auth/htpasswd: the service account (bcrypt cost 4: its password is 32 random bytes, so a slow hash buys nothing
  and would cost the registry a hash per request) and, in a new file only, a first admin (DASHBOARD_ADMINS' first
  name) whose password is printed once, here;
- /etc/docker/registry/config.yml: deploy/registry-config.yml with the notifications secret in its Authorization
  header (the registry cannot read a secret from a file);
- with DATABASE_HOST (compose.scale.yaml): postgres_password, which the postgres image reads at its first start,
  and database_url, the dashboard's DATABASE_URL_FILE made from it.

A service account missing from an existing htpasswd is added to it; a registry_password that the file's entry does
not match stops the start with a message, as does anything else that cannot work. It runs as root, once per start,
so that it can give each file to the user that reads it; the services themselves run as their own users."""

from __future__ import annotations

import os
import secrets
import sys
from pathlib import Path

from registry import htpasswd

APP = Path(__file__).resolve().parent.parent
TEMPLATE = APP / "deploy" / "registry-config.yml"
PLACEHOLDER = "Bearer CHANGE-ME"
DASHBOARD_UID = 10001  # the Dockerfile's user
SERVICE_ACCOUNT_COST = 4
ADMIN_COST = 10
SECRETS = ("secret_key", "registry_password", "notifications_secret")


class FirstStartError(Exception):
    """Something a person must fix before the stack can start; the message says what."""


def write_new(path: Path, text: str, mode: int, owner: int | None) -> None:
    """Create the file with `text`, readable as `mode` says, never replacing one (O_EXCL)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(descriptor, "w") as file:
        file.write(text)
    if owner is not None and os.geteuid() == 0:
        os.chown(path, owner, owner)


def secret(path: Path, owner: int | None, made: list[str]) -> str:
    if not path.exists():
        # 50 random bytes, 67 characters: Django's deployment check asks at least 50 of a SECRET_KEY.
        write_new(path, secrets.token_urlsafe(50) + "\n", 0o400, owner)
        made.append(str(path))
    value = path.read_text().strip()
    if not value:
        raise FirstStartError(f"{path} is empty: put a secret in it, or remove it to have one made.")
    return value


def registry_users(path: Path, service_account: str, password: str, admin: str, made: list[str]) -> str | None:
    """The htpasswd file with the service account; returns the first admin's password when it made the file."""
    admin_password = None
    if not path.exists():
        write_new(path, "", 0o644, None)
        htpasswd.add_user(path, service_account, password, cost=SERVICE_ACCOUNT_COST)
        if admin and admin != service_account:
            admin_password = secrets.token_urlsafe(12)
            htpasswd.add_user(path, admin, admin_password, cost=ADMIN_COST)
        made.append(str(path))
    elif service_account not in htpasswd.parse(path.read_text()):
        if not os.access(path, os.W_OK):
            raise FirstStartError(f"{path} has no entry for {service_account} and cannot be written: add one.")
        htpasswd.add_user(path, service_account, password, cost=SERVICE_ACCOUNT_COST)
        made.append(f"{path} ({service_account} added)")
    elif not htpasswd.check(str(path), service_account, password):
        raise FirstStartError(
            f"{path}'s entry for {service_account} does not match the registry_password secret: give the file "
            f"the secret's password (htpasswd -B), or put the matching password in the secret."
        )
    return admin_password


def registry_config(path: Path, notifications_secret: str, made: list[str]) -> None:
    if path.exists():
        if f"Bearer {notifications_secret}" not in path.read_text():
            print(
                f"Note: {path} does not send the notifications secret; pushes show up at the next reconcile, "
                f"not at once (README, Notifications set-up).",
                file=sys.stderr,
            )
        return
    template = TEMPLATE.read_text()
    if PLACEHOLDER not in template:
        raise FirstStartError(f"{TEMPLATE} has no '{PLACEHOLDER}' for the notifications secret.")
    write_new(path, template.replace(PLACEHOLDER, f"Bearer {notifications_secret}"), 0o600, None)
    made.append(str(path))


def database_url(secrets_dir: Path, host: str, made: list[str]) -> None:
    """PostgreSQL's password and the URL the dashboard connects with (user and database: registry_ui)."""
    password = secret(secrets_dir / "postgres_password", DASHBOARD_UID, made)
    path = secrets_dir / "database_url"
    if not path.exists():
        write_new(path, f"postgres://registry_ui:{password}@{host}:5432/registry_ui\n", 0o400, DASHBOARD_UID)
        made.append(str(path))


def first_start(
    secrets_dir: Path, htpasswd_path: Path, config_path: Path, service_account: str, admin: str, database_host: str = ""
) -> None:
    made: list[str] = []
    values = {name: secret(secrets_dir / name, DASHBOARD_UID, made) for name in SECRETS}
    if database_host:
        database_url(secrets_dir, database_host, made)
    admin_password = registry_users(htpasswd_path, service_account, values["registry_password"], admin, made)
    registry_config(config_path, values["notifications_secret"], made)
    print("Made: " + ", ".join(made) if made else "Nothing to make: every file was there.")
    if admin_password:
        print(
            f"\nSign in to the dashboard as {admin} with the password {admin_password}\n"
            f"It is shown this once. Change it in {htpasswd_path} (htpasswd -B) whenever you like.\n"
        )


def main() -> int:
    admins = [name.strip() for name in os.environ.get("DASHBOARD_ADMINS", "").split(",") if name.strip()]
    try:
        first_start(
            secrets_dir=Path(os.environ.get("SECRETS_DIR", "/run/secrets")),
            htpasswd_path=Path(os.environ.get("REGISTRY_HTPASSWD_PATH", "/auth/htpasswd")),
            config_path=Path(os.environ.get("REGISTRY_CONFIG_PATH", "/etc/docker/registry/config.yml")),
            service_account=os.environ.get("REGISTRY_USERNAME", "dashboard"),
            admin=admins[0] if admins else "",
            database_host=os.environ.get("DATABASE_HOST", ""),
        )
    except (FirstStartError, OSError) as exc:
        print(f"First start: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
