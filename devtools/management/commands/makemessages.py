"""Django's makemessages, also finding the singular and plural of cleanup.reasons.counted(), which stores a
sentence that depends on a number untranslated (xgettext knows ngettext, not it)."""

from django.core.management.commands import makemessages


class Command(makemessages.Command):
    xgettext_options = [*makemessages.Command.xgettext_options, "--keyword=counted:1,2"]
