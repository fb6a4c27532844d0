"""The color theme a person chose: light, dark, or none (the system's setting). Kept in a cookie rather than the
session, so that the sign-in page has it too; the cookie holds nothing secret."""

from django.utils.translation import pgettext_lazy

COOKIE = "theme"
SYSTEM, LIGHT, DARK = "system", "light", "dark"
CHOICES = [
    (SYSTEM, pgettext_lazy("theme", "System")),
    (LIGHT, pgettext_lazy("theme", "Light")),
    (DARK, pgettext_lazy("theme", "Dark")),
]
MAX_AGE = 365 * 24 * 60 * 60


def theme_of(request) -> str:
    """The remembered choice, or SYSTEM when there is none (or the cookie holds anything else)."""
    value = request.COOKIES.get(COOKIE, "")
    return value if value in (LIGHT, DARK) else SYSTEM
