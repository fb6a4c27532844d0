"""What deleting adds to catalog's repository page, which knows nothing of cleanup: the tags selected for
deletion in this session, and the form that selects tags by filter."""

from django import template

from cleanup.selection import TagFilterForm, selected_tags

register = template.Library()


@register.simple_tag(takes_context=True)
def delete_selection(context, repository) -> list[str]:
    """{% delete_selection repository as selection %}: the tags of the repository selected in this session."""
    return selected_tags(context["request"], repository.name)


@register.simple_tag
def tag_filter_form() -> TagFilterForm:
    """{% tag_filter_form as form %}: an empty filter form, its fields rendered by the page."""
    return TagFilterForm()
