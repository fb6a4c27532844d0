"""What deleting adds to catalog's repository page, which knows nothing of cleanup: the tags selected for
deletion in this session, and the form that selects tags by filter."""

from django import template

from cleanup.models import AuditEntry
from cleanup.selection import TagFilterForm, refused_filter_key, selected_tags

register = template.Library()


@register.simple_tag(takes_context=True)
def delete_selection(context, repository) -> list[str]:
    """{% delete_selection repository as selection %}: the tags of the repository selected in this session."""
    return selected_tags(context["request"], repository.name)


@register.simple_tag(takes_context=True)
def tag_filter_form(context, repository) -> TagFilterForm:
    """{% tag_filter_form repository as form %}: the filter form, its fields rendered by the page: empty, or the
    input it refused a moment ago, with its errors."""
    refused = context["request"].session.pop(refused_filter_key(repository.name), None)
    if refused is None:
        return TagFilterForm()
    form = TagFilterForm(refused)
    form.is_valid()
    return form


HISTORY_LOOKED_AT = 500  # the repository's latest audit entries searched for a tag's name


@register.simple_tag
def tag_history(repository: str, tag: str) -> list[AuditEntry]:
    """{% tag_history repository tag as entries %}: the latest audit entries that name the tag (at most 5)."""
    recent = AuditEntry.objects.filter(repository=repository)[:HISTORY_LOOKED_AT]
    return [entry for entry in recent if tag in (entry.tags or [])][:5]
