"""The API tokens page: a signed-in user's own tokens, making one (shown once) and revoking one."""

from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.cache import add_never_cache_headers
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from api import tokens
from api.forms import TokenForm
from api.models import ApiToken


def render_tokens(request, form: TokenForm, new_token: str = "", status: int = 200):
    context = {
        "tokens": ApiToken.objects.filter(user=request.user).order_by("revoked", "-created_at"),
        "form": form,
        "new_token": new_token,
    }
    return render(request, "api/tokens.html", context, status=status)


@require_GET
def token_list(request):
    """The user's tokens (never the tokens themselves: only their prefixes) and the form to make one."""
    return render_tokens(request, TokenForm())


@require_POST
def token_create(request):
    """Make a token and show it on this answer only: it is kept nowhere but as a hash, so the answer is not
    redirected (a redirect would need it stored for the next request) and no cache may keep it."""
    form = TokenForm(request.POST)
    if not form.is_valid():
        return render_tokens(request, form, status=400)
    _token, raw = tokens.create_token(request.user, form.cleaned_data["name"], form.cleaned_data["expires_days"])
    response = render_tokens(request, TokenForm(), new_token=raw)
    add_never_cache_headers(response)
    return response


@require_POST
def token_revoke(request, token_id):
    """Revoke one of the user's own tokens (another user's is a 404: nobody learns which ids exist)."""
    token = get_object_or_404(ApiToken, pk=token_id, user=request.user)
    token.revoked = True
    token.save(update_fields=["revoked"])
    messages.success(request, _("The token “%(name)s” is revoked.") % {"name": token.name})
    return redirect("browser-api-tokens")
