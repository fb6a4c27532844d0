"""Reasons and outcomes written down by the dashboard, kept untranslated and translated when read.

A task worker runs in English, and a request in its user's language: a sentence translated when it is written
reads in that language for everyone. So what the dashboard writes down is kept as its message id (marked with
gettext_noop where it is written) and its parameters, and translated in the reader's language when a page shows
it. A stored reason is JSON:

- a string: text from outside the dashboard (the registry's or the bridge's own words), shown as it is;
- {"id": message id, "params": {name: value}}: one of the dashboard's sentences, each parameter a number or a
  stored reason itself (a registry error inside "Not removed: …");
- the same with "plural" and "count": a sentence that depends on a number (ngettext);
- a list of stored reasons, shown one after the other, separated by a space;
- {"parts": [stored reasons], "separator": "; "}: the same with another separator.

The English text is kept beside it (AuditEntry.message, Job.error, the garbage collection's log) for the CSV, the
commands' output and the rows written before reasons were stored, which have only their text.
"""

from django.utils.translation import gettext, ngettext


def reason(message_id: str, **params) -> dict:
    """One of the dashboard's sentences, `message_id` marked with gettext_noop, with its parameters."""
    return {"id": message_id, "params": params}


def counted(singular: str, plural: str, count: int, **params) -> dict:
    """A sentence that depends on `count` (also a parameter). makemessages finds the pair through the keyword
    counted:1,2 (devtools' makemessages)."""
    return {"id": singular, "plural": plural, "count": count, "params": {"count": count, **params}}


def joined(parts: list, separator: str) -> dict:
    return {"parts": parts, "separator": separator}


def shown(stored) -> str:
    """The stored reason in the current language."""
    return render(stored, translated=True)


def english(stored) -> str:
    """The stored reason as written (message ids are English)."""
    return render(stored, translated=False)


def render(stored, translated: bool) -> str:
    if isinstance(stored, str):
        return stored
    if isinstance(stored, list):
        stored = joined(stored, " ")
    if "parts" in stored:
        texts = (render(part, translated) for part in stored["parts"])
        return stored["separator"].join(text for text in texts if text)
    if "plural" in stored:
        one, many, count = stored["id"], stored["plural"], stored["count"]
        message = ngettext(one, many, count) if translated else (one if count == 1 else many)
    else:
        message = gettext(stored["id"]) if translated else stored["id"]
    params = {name: value if as_is(value) else render(value, translated) for name, value in stored["params"].items()}
    return message % params if params else message


def as_is(value) -> bool:
    """Numbers (and a missing one, None) go into the sentence unchanged: %(minutes)d needs a number."""
    return value is None or isinstance(value, (int, float))
