"""Reasons and outcomes written by background work, kept untranslated and translated when read.

A task worker runs in English: a sentence translated when it is written would read English on a Spanish page.
So what the dashboard writes down is kept as its message id (marked with gettext_noop where it is written) and
its parameters, and translated in the reader's language when a page shows it. A stored reason is JSON:

- a string: text from outside the dashboard (the registry's or the bridge's own words), shown as it is;
- {"id": message id, "params": {name: value}}: one of the dashboard's sentences, each parameter a number or a
  stored reason itself (a registry error inside "Not removed: …");
- a list of stored reasons, shown one after the other, separated by a space.

The English text is kept beside it (AuditEntry.message, Job.error, the garbage collection's log) for the CSV, the
commands' output and the rows written before reasons were stored, which have only their text.
"""

from django.utils.translation import gettext


def reason(message_id: str, **params) -> dict:
    """One of the dashboard's sentences, `message_id` marked with gettext_noop, with its parameters."""
    return {"id": message_id, "params": params}


def shown(stored) -> str:
    """The stored reason in the current language."""
    return render(stored, gettext)


def english(stored) -> str:
    """The stored reason as written (message ids are English)."""
    return render(stored, str)


def render(stored, translate) -> str:
    if isinstance(stored, str):
        return stored
    if isinstance(stored, list):
        return " ".join(text for text in (render(part, translate) for part in stored) if text)
    message = translate(stored["id"])
    params = {name: value if as_is(value) else render(value, translate) for name, value in stored["params"].items()}
    return message % params if params else message


def as_is(value) -> bool:
    """Numbers (and a missing one, None) go into the sentence unchanged: %(minutes)d needs a number."""
    return value is None or isinstance(value, (int, float))
