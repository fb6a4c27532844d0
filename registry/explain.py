"""What a person should read about a registry error: a title, and a hint naming the setting to fix."""

from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from registry.client import (
    DeleteDisabled,
    ReadOnly,
    RegistryError,
    RegistryTimeout,
    RegistryUnauthorized,
    RegistryUnreachable,
    UnsupportedManifest,
)


def explain(error: RegistryError) -> tuple[str, str]:
    """A title and a hint naming the setting to fix, for a registry error."""
    if isinstance(error, RegistryUnreachable) and error.code == "TLS":
        return _("The registry's TLS certificate was not accepted"), _(
            "Give the registry's CA with REGISTRY_CA_BUNDLE, or set REGISTRY_VERIFY_TLS=false for a test set-up."
        )
    if isinstance(error, RegistryUnreachable):
        return _("The registry cannot be reached"), _(
            "Check that the registry is running and that REGISTRY_URL points at it."
        )
    if isinstance(error, RegistryTimeout):
        return _("The registry is too slow to answer"), _(
            "The registry may be overloaded. REGISTRY_READ_TIMEOUT sets how long the dashboard waits."
        )
    if isinstance(error, RegistryUnauthorized):
        return _("The registry rejected the dashboard's account"), _(
            "Set REGISTRY_USERNAME and REGISTRY_PASSWORD (or REGISTRY_PASSWORD_FILE) to a user of the "
            "registry's htpasswd file, with read access to every repository."
        )
    if isinstance(error, UnsupportedManifest):
        return _("This image cannot be shown"), ""
    return _("The registry sent an answer the dashboard cannot read"), _(
        "Check that REGISTRY_URL points at a Docker registry (API v2) and not at another service."
    )


DELETE_DISABLED = gettext_noop(
    "Deleting is disabled on this registry. Set storage.delete.enabled: true in its config.yml (or the "
    "environment variable REGISTRY_STORAGE_DELETE_ENABLED=true) and restart it."
)
READ_ONLY = gettext_noop("The registry is in maintenance (read-only mode): nothing can be deleted until it ends.")


def refusal(error: RegistryError) -> str:
    """What a person should know when the registry refuses a delete, and what else happened."""
    note = _(error.note) % error.note_params if error.note else ""
    return f"{explain_refusal(error)} {note}".strip()


def explain_refusal(error: RegistryError) -> str:
    message_id = refusal_id(error)
    return _(message_id) if message_id else error.message


def refusal_id(error: RegistryError) -> str:
    """The untranslated sentence the dashboard has for this refusal, or "" when the registry's words say it."""
    if isinstance(error, DeleteDisabled):
        return DELETE_DISABLED
    if isinstance(error, ReadOnly):
        return READ_ONLY
    return ""
