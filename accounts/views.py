from django.conf import settings
from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_not_required
from django.contrib.auth.models import User
from django.http import HttpResponse, HttpResponseBadRequest
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts import roles, theme
from accounts.forms import LoginForm, RoleForm

login = login_not_required(
    require_http_methods(["GET", "POST"])(
        auth_views.LoginView.as_view(authentication_form=LoginForm, redirect_authenticated_user=True)
    )
)
logout = auth_views.LogoutView.as_view()


@require_GET
@roles.role_required(roles.ADMIN)
def user_list(request):
    """Everyone who has signed in, with their role; admins change roles here."""
    users = User.objects.order_by("username").prefetch_related("groups")
    rows = [(user, roles.role_of(user), roles.ROLE_LABELS.get(roles.role_of(user), "")) for user in users]
    return render(request, "accounts/users.html", {"rows": rows, "roles": roles.ROLE_LABELS.items()})


@require_POST
@roles.role_required(roles.ADMIN)
def user_role_update(request, user_id):
    user = get_object_or_404(User, pk=user_id)
    form = RoleForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Choose one of the listed roles."))
    elif user == request.user:
        messages.error(request, _("You cannot change your own role; ask another admin."))
    elif user.is_superuser:
        messages.error(request, _("%(user)s is a superuser and always has the admin role.") % {"user": user.username})
    else:
        roles.set_role(user, form.cleaned_data["role"])
        role = roles.ROLE_LABELS[form.cleaned_data["role"]]
        messages.success(request, _("%(user)s is now %(role)s.") % {"user": user.username, "role": role})
    return redirect("browser-users")


@login_not_required
@require_POST
def theme_update(request):
    """Remember the color theme (theme.CHOICES) in a cookie, then go back to the page the form was on. The page's
    script posts it in the background (an htmx-style request) and gets a 204: it has switched the colors already."""
    choice = request.POST.get("theme", "")
    if choice not in dict(theme.CHOICES):
        return HttpResponseBadRequest(_("Choose one of the listed themes."))
    if request.htmx:
        response = HttpResponse(status=204)
    else:
        back = request.POST.get("next", "")
        safe = url_has_allowed_host_and_scheme(back, {request.get_host()}, require_https=request.is_secure())
        response = redirect(back if safe else "browser-home")
    if choice == theme.SYSTEM:
        response.delete_cookie(theme.COOKIE, samesite="Lax")
    else:
        response.set_cookie(
            theme.COOKIE,
            choice,
            max_age=theme.MAX_AGE,
            secure=settings.SESSION_COOKIE_SECURE,
            httponly=True,
            samesite="Lax",
        )
    return response
