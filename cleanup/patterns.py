"""The regular expressions people type (the delete filter's name pattern, retention's keep and protect rules) run on
RE2, whose matching time grows linearly with the name whatever the pattern: `(a+)+$` cannot hold a thread. RE2 has
no look-around and no back-references; a pattern using them is refused with a message saying so."""

from functools import lru_cache

import re2

_OPTIONS = re2.Options()
_OPTIONS.log_errors = False  # a person's typo is answered on the page, not logged as an error


class PatternError(ValueError):
    """A pattern RE2 cannot run; the message is for a person."""


@lru_cache(maxsize=256)
def compile_pattern(pattern: str):
    try:
        return re2.compile(pattern, options=_OPTIONS)
    except re2.error as exc:
        reason = exc.args[0].decode(errors="replace") if exc.args and isinstance(exc.args[0], bytes) else str(exc)
        if "perl operator" in reason or "escape sequence" in reason:
            reason += " (look-ahead, look-behind and back-references are not available: patterns run on RE2)"
        raise PatternError(reason) from None


def searches(pattern: str, text: str) -> bool:
    """Whether the pattern is found anywhere in the text (as re.search)."""
    return compile_pattern(pattern).search(text) is not None
