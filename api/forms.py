"""The API tokens page's form, and the pages' own forms checking what the API is sent: the same rules, the same
words (in English, as every problem the API answers)."""

from django import forms
from django.utils import translation
from django.utils.translation import gettext_lazy as _
from ninja.errors import HttpError

from api.problems import form_detail
from api.tokens import MAX_EXPIRY_DAYS


class TokenForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=100, help_text=_("What the token is for, e.g. “CI deploy job”."))
    expires_days = forms.IntegerField(
        label=_("Expires after (days)"),
        required=False,
        min_value=1,
        max_value=MAX_EXPIRY_DAYS,
        help_text=_("Leave empty for a token that does not expire; you can revoke it at any time."),
    )


def validated(form_class: type[forms.BaseForm], values: dict, place: str, **options) -> forms.BaseForm:
    """A page's form bound to the values of a JSON body (null as an empty field) and validated; a 422 problem naming
    each field as `place.field` when the page would refuse them."""
    form = form_class({name: "" if value is None else value for name, value in values.items()}, **options)
    with translation.override("en"):
        if not form.is_valid():
            raise HttpError(422, form_detail(place, form))
    return form
