import re

from django import forms
from django.utils.translation import gettext_lazy as _

from catalog import schedule
from cleanup.models import RetentionPolicy
from cleanup.patterns import PatternError, compile_pattern


class RetentionPolicyForm(forms.ModelForm):
    """A retention policy's rules; at least one rule must keep something."""

    # Characters of repository names (a-z, 0-9, . _ - /) and the shell pattern's * ? [ ].
    PATTERN_RE = re.compile(r"^[a-z0-9._/*?\[\]-]+$")

    repositories = forms.CharField(
        label=_("Repositories"),
        max_length=255,
        help_text=_(
            "A shell pattern: * matches any characters, slashes included (shop/* matches shop/api and "
            "shop/team/api; * alone matches every repository), ? one character, [abc] one of the listed characters."
        ),
    )
    keep_newest = forms.IntegerField(
        label=_("Keep the newest images"),
        required=False,
        min_value=1,
        error_messages={"min_value": _("Keep at least 1 image, or leave this empty.")},
        help_text=_("How many images to keep; every tag of a kept image is kept."),
    )
    newest_by = forms.ChoiceField(
        label=_("Newest by"),
        choices=[
            (RetentionPolicy.CREATED, _("created time (images without one count as oldest)")),
            (RetentionPolicy.PUSHED, _("push time (known since the dashboard watched; else created time)")),
        ],
        initial=RetentionPolicy.CREATED,
    )
    keep_days = forms.IntegerField(
        label=_("Keep images pushed within (days)"),
        required=False,
        min_value=1,
        error_messages={"min_value": _("Give at least 1 day, or leave this empty.")},
        help_text=_("Every tag of an image pushed within this many days is kept."),
    )
    keep_regex = forms.CharField(
        label=_("Keep tags matching"),
        required=False,
        max_length=500,
        help_text=_(
            "A regular expression, found anywhere in the tag name: use ^…$ to match the whole name, e.g. "
            "^v[0-9]+\\.[0-9]+\\.[0-9]+$."
        ),
    )
    protect_regex = forms.CharField(
        label=_("Never delete tags matching"),
        required=False,
        max_length=500,
        help_text=_("A regular expression (^…$ anchors it); tags it matches are protected whatever the rules say."),
    )
    schedule = forms.ChoiceField(
        label=_("Schedule"),
        choices=schedule.CHOICES,
        initial=schedule.OFF,
        help_text=_("Off: runs only when you press Run now (or from manage.py retention_run)."),
    )

    class Meta:
        model = RetentionPolicy
        fields = ["repositories", "keep_newest", "newest_by", "keep_days", "keep_regex", "protect_regex", "schedule"]

    def clean_repositories(self):
        pattern = self.cleaned_data["repositories"]
        if not self.PATTERN_RE.match(pattern):
            raise forms.ValidationError(
                _(
                    "Use only lowercase letters, digits, . _ - / (as in repository names) and the pattern "
                    "characters * ? [ ]."
                )
            )
        return pattern

    def clean_keep_regex(self):
        return self.compiled("keep_regex")

    def clean_protect_regex(self):
        return self.compiled("protect_regex")

    def compiled(self, name: str) -> str:
        pattern = self.cleaned_data[name]
        try:
            compile_pattern(pattern)
        except PatternError as exc:
            raise forms.ValidationError(
                _("This is not a valid regular expression: %(error)s."), params={"error": exc}
            ) from None
        return pattern

    def clean(self):
        cleaned = super().clean()
        rules = ("keep_newest", "keep_days", "keep_regex")
        # A rule that failed validation has its own message already.
        if not any(cleaned.get(name) or self.has_error(name) for name in rules):
            raise forms.ValidationError(
                _(
                    "Give at least one rule that keeps tags (newest images, days or a tag pattern): a policy "
                    "without one would delete every tag of the repositories it matches."
                ),
                code="no_rule",
            )
        return cleaned
