from django import forms
from django.contrib.auth.forms import AuthenticationForm
from django.utils.translation import gettext_lazy as _

from accounts import roles, throttle


class LoginForm(AuthenticationForm):
    """Django's login form, refusing to check passwords after too many failures."""

    error_messages = {
        **AuthenticationForm.error_messages,
        "invalid_login": _(
            "That user name and password do not match. Use the ones you use for docker login; both are case-sensitive."
        ),
        "throttled": _("Too many failed sign-in attempts. Wait 15 minutes and try again."),
    }

    def clean(self):
        username = self.cleaned_data.get("username") or ""
        if throttle.login_blocked(self.request, username):
            raise forms.ValidationError(self.error_messages["throttled"], code="throttled")
        try:
            cleaned = super().clean()
        except forms.ValidationError:
            throttle.record_failed_login(self.request, username)
            raise
        throttle.clear_failed_logins(self.request, username)
        return cleaned


class RoleForm(forms.Form):
    role = forms.ChoiceField(choices=list(roles.ROLE_LABELS.items()))
