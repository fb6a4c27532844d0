import secrets

from django import forms
from django.utils.translation import gettext_lazy as _

from cleanup.reasons import shown
from webhooks import delivery, events
from webhooks.models import Endpoint

SECRET_MIN_LENGTH = 16


class EndpointForm(forms.ModelForm):
    """An endpoint, as the page and the API take it. The secret is write-only: left blank it is generated (a new
    endpoint) or kept (an existing one), and the form never renders it back."""

    secret = forms.CharField(
        label=_("Secret"),
        required=False,
        min_length=SECRET_MIN_LENGTH,
        max_length=200,
        strip=True,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
    )
    events = forms.MultipleChoiceField(
        label=_("Events"),
        choices=[(event_type, label) for event_type, label in events.EVENT_LABELS.items()],
        widget=forms.CheckboxSelectMultiple,
    )

    field_order = ["name", "url", "secret", "events", "active"]

    class Meta:
        model = Endpoint
        fields = ["name", "url", "events", "active"]  # the secret is set by save() only: blank must not overwrite it
        labels = {"name": _("Name"), "url": _("URL"), "active": _("Active")}
        help_texts = {
            "name": _("What it is for, e.g. “Team chat”."),
            "url": _("Where events are posted: your service, or a Slack or Mattermost incoming-webhook URL."),
            "active": _("An inactive endpoint receives nothing but test events."),
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.generated_secret = ""
        keep = _("Leave empty to keep the current secret; it is never shown again.")
        new = _("Leave empty to have one generated (shown once); at least 16 characters if you type one.")
        self.fields["secret"].help_text = keep if self.instance.pk else new

    def clean_url(self) -> str:
        """Refused now rather than at every delivery: a target that is not a public address (see delivery.py)."""
        url = self.cleaned_data["url"]
        try:
            delivery.checked_address(url)
        except delivery.TargetRefused as exc:
            raise forms.ValidationError(shown(exc.why)) from None
        return url

    def save(self, commit: bool = True) -> Endpoint:
        endpoint = super().save(commit=False)
        if self.cleaned_data.get("secret"):
            endpoint.secret = self.cleaned_data["secret"]
        elif not endpoint.secret:
            endpoint.secret = self.generated_secret = secrets.token_urlsafe(32)
        if commit:
            endpoint.save()
        return endpoint
