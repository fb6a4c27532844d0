from django.contrib.auth.decorators import login_not_required
from django.urls import path
from django.views.i18n import set_language

from browser.views import accounts, health, home, notifications, repositories, storage, sync
from browser.views import search as search_views

urlpatterns = [
    path("", home.home, name="browser-home"),
    path("repositories/", repositories.repository_list, name="browser-repositories"),
    # Repository names contain slashes; no name component can be "-", so "/-/" separates the tag.
    path("repositories/<path:name>/-/<str:tag>/", repositories.tag_detail, name="browser-tag"),
    path("repositories/<path:name>/", repositories.repository_detail, name="browser-repository"),
    path("storage/", storage.storage_overview, name="browser-storage"),
    path("storage/<path:name>/", storage.storage_repository_detail, name="browser-storage-repository"),
    path("search/", search_views.search, name="browser-search"),
    path("users/", accounts.user_list, name="browser-users"),
    path("users/<int:user_id>/role/", accounts.user_role_update, name="browser-user-role"),
    path("login/", accounts.login, name="login"),
    path("logout/", accounts.logout, name="logout"),
    path("language/", login_not_required(set_language), name="set_language"),
    path("health/", health.health, name="browser-health"),
    path("notifications/", notifications.notifications_receive, name="browser-notifications"),
    path("sync/", sync.sync_start, name="browser-sync"),
    path("sync/status/", sync.sync_status, name="browser-sync-status"),
]
