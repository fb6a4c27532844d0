"""Not written yet."""

from django.http import Http404


def audit_log(request, **kwargs):
    raise Http404


def audit_csv(request, **kwargs):
    raise Http404
