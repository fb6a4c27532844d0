"""Not written yet."""

from django.http import Http404


def policy_list(request, **kwargs):
    raise Http404


def policy_edit(request, **kwargs):
    raise Http404


def policy_delete(request, **kwargs):
    raise Http404


def policy_dry_run(request, **kwargs):
    raise Http404


def policy_run(request, **kwargs):
    raise Http404
