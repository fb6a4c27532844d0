"""Not written yet."""

from django.http import Http404


def tag_delete(request, **kwargs):
    raise Http404


def selection_update(request, **kwargs):
    raise Http404


def selection_preview(request, **kwargs):
    raise Http404


def repository_delete(request, **kwargs):
    raise Http404


def job_detail(request, **kwargs):
    raise Http404


def job_confirm(request, **kwargs):
    raise Http404
