"""Choosing tags to delete on a repository's page: the filter (its rules and its form, which the page shows
through cleanup's template tags) and the selection, kept in the session so that it spans pages."""

from __future__ import annotations

from datetime import datetime, time

from django import forms
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from catalog import queries
from catalog.models import Repository
from cleanup.patterns import PatternError, compile_pattern


def select_tags(
    repository: Repository,
    *,
    pattern=None,
    before: datetime | None = None,
    by: str = "created",
    keep_newest: int | None = None,
) -> list[str]:
    """The plain tags meeting every criterion given: name matching `pattern` (a compiled pattern, found anywhere in
    the name), pushed or created (`by`) before `before`, and not among the `keep_newest` newest by the same time.
    A tag with no known push time goes by its image's creation time (see unknown_push_times). An image whose
    creation time is unknown counts as the oldest for "newest" and is never "older than" a date."""
    rows = queries.plain_tags(repository).values_list("name", "pushed_at", "pushed_known", "manifest__created")
    when = {name: pushed if by == "pushed" and known else created for name, pushed, known, created in rows}
    newest: set[str] = set()
    if keep_newest:
        dated = sorted((stamp, name) for name, stamp in when.items() if stamp is not None)
        undated = sorted(name for name, stamp in when.items() if stamp is None)
        ranked = [name for _, name in reversed(dated)] + undated
        newest = set(ranked[:keep_newest])
    return sorted(
        (
            name
            for name in when
            if (pattern is None or pattern.search(name))
            and (before is None or (when[name] is not None and when[name] < before))
            and name not in newest
        ),
        key=queries.natural_key,
    )


def unknown_push_times(repository: Repository) -> int:
    """How many of the repository's plain tags have no known push time (found before the dashboard watched)."""
    return queries.plain_tags(repository).filter(pushed_known=False).count()


class TagFilterForm(forms.Form):
    """Select tags by filter: every criterion given must hold."""

    pattern = forms.CharField(
        required=False,
        max_length=500,
        label=gettext_lazy("Name matches (regular expression)"),
        widget=forms.TextInput(attrs={"placeholder": "^build-", "autocomplete": "off"}),
    )
    before = forms.DateField(
        required=False, label=gettext_lazy("Older than"), widget=forms.DateInput(attrs={"type": "date"})
    )
    keep_newest = forms.IntegerField(
        required=False,
        min_value=1,
        label=gettext_lazy("All but the newest"),
        widget=forms.NumberInput(attrs={"placeholder": "10"}),
    )
    by = forms.ChoiceField(
        required=False,
        label=gettext_lazy("By"),
        choices=[("created", gettext_lazy("created")), ("pushed", gettext_lazy("pushed"))],
        initial="created",  # known for every image; push times only since the dashboard watched
    )

    def clean_pattern(self):
        try:
            return compile_pattern(self.cleaned_data["pattern"]) if self.cleaned_data["pattern"] else None
        except PatternError as exc:
            raise forms.ValidationError(_("Not a valid regular expression: %(error)s") % {"error": exc}) from None

    def clean(self):
        data = super().clean()
        if self.errors:  # a field's own error says it all: one message, next to that field
            return data
        if not any(data.get(name) for name in ("pattern", "before", "keep_newest")):
            raise forms.ValidationError(_("Give at least one criterion: a name pattern, a date or a number to keep."))
        return data

    def selected(self, repository: Repository) -> list[str]:
        data = self.cleaned_data
        before = data["before"] and timezone.make_aware(datetime.combine(data["before"], time.min))
        return select_tags(
            repository,
            pattern=data["pattern"],
            before=before,
            by=data["by"] or "created",
            keep_newest=data["keep_newest"],
        )


def selection_key(name: str) -> str:
    return f"delete-selection:{name}"


def refused_filter_key(name: str) -> str:
    """Where a refused filter's input waits for the page it goes back to (shown once, with its errors)."""
    return f"delete-filter:{name}"


FILTER_FIELDS = ("pattern", "before", "keep_newest", "by")


def selected_tags(request, name: str) -> list[str]:
    """The tags of repository `name` selected for deletion in this session."""
    return request.session.get(selection_key(name), [])
