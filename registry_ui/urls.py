"""Every URL of the dashboard, by area. URL names keep the `browser-` prefix they have always had."""

from django.contrib.auth.decorators import login_not_required
from django.urls import path
from django.views.decorators.http import require_POST
from django.views.i18n import set_language

from accounts import views as accounts
from api import routing
from api.views import docs, tokens, v1
from catalog.views import home, notifications, repositories, search, storage, sync
from cleanup.views import audit, deletion, retention
from garbage_collection import views as gc
from metrics import views as metrics
from registry_ui.views import health
from webhooks import views as webhooks

urlpatterns = [
    # Browsing the index
    path("", home.home, name="browser-home"),
    path("repositories/", repositories.repository_list, name="browser-repositories"),
    # Repository names contain slashes; no name component can be "-", so "/-/" separates the tag.
    path("repositories/<path:name>/-/<str:tag>/", repositories.tag_detail, name="browser-tag"),
    path("repositories/<path:name>/-/<str:tag>/delete/", deletion.tag_delete, name="browser-tag-delete"),
    # No repository name component starts with "-": these cannot be taken for a repository.
    path("repositories/<path:name>/-selection/", deletion.selection_update, name="browser-selection"),
    path("repositories/<path:name>/-delete/", deletion.selection_preview, name="browser-delete-preview"),
    path("repositories/<path:name>/-delete-repository/", deletion.repository_delete, name="browser-repository-delete"),
    path("repositories/<path:name>/-half-deleted/", deletion.half_deleted_finish, name="browser-half-deleted"),
    path("repositories/<path:name>/", repositories.repository_detail, name="browser-repository"),
    path("storage/", storage.storage_overview, name="browser-storage"),
    path("storage/<path:name>/", storage.storage_repository_detail, name="browser-storage-repository"),
    path("search/", search.search, name="browser-search"),
    path("sync/", sync.sync_start, name="browser-sync"),
    path("sync/status/", sync.sync_status, name="browser-sync-status"),
    path("notifications/", notifications.notifications_receive, name="browser-notifications"),
    # Deleting, retention and the audit log
    path("deletes/<int:job_id>/", deletion.job_detail, name="browser-delete-job"),
    path("deletes/<int:job_id>/confirm/", deletion.job_confirm, name="browser-delete-confirm"),
    path("audit/", audit.audit_log, name="browser-audit"),
    path("audit.csv", audit.audit_csv, name="browser-audit-csv"),
    path("retention/", retention.policy_list, name="browser-retention"),
    path("retention/<int:policy_id>/", retention.policy_edit, name="browser-retention-edit"),
    path("retention/<int:policy_id>/delete/", retention.policy_delete, name="browser-retention-delete"),
    path("retention/<int:policy_id>/dry-run/", retention.policy_dry_run, name="browser-retention-dry-run"),
    path("retention/<int:policy_id>/run/", retention.policy_run, name="browser-retention-run"),
    # Garbage collection
    path("gc/", gc.gc_overview, name="browser-gc"),
    path("gc/dry-run/", gc.gc_dry_run, name="browser-gc-dry-run"),
    path("gc/<int:run_id>/", gc.gc_run_detail, name="browser-gc-run"),
    path("gc/<int:run_id>/collect/", gc.gc_collect, name="browser-gc-collect"),
    path("gc/<int:run_id>/log.txt", gc.gc_run_log, name="browser-gc-log"),
    # Outgoing webhooks
    path("webhooks/", webhooks.webhook_list, name="browser-webhooks"),
    path("webhooks/<int:endpoint_id>/", webhooks.webhook_detail, name="browser-webhook"),
    path("webhooks/<int:endpoint_id>/delete/", webhooks.webhook_delete, name="browser-webhook-delete"),
    path("webhooks/<int:endpoint_id>/test/", webhooks.webhook_test, name="browser-webhook-test"),
    # Accounts
    path("users/", accounts.user_list, name="browser-users"),
    path("users/<int:user_id>/role/", accounts.user_role_update, name="browser-user-role"),
    path("login/", accounts.login, name="login"),
    path("logout/", accounts.logout, name="logout"),
    path("language/", login_not_required(require_POST(set_language)), name="set_language"),
    path("theme/", accounts.theme_update, name="browser-theme"),
    path("health/", health, name="browser-health"),
    # The JSON API (api/views/v1.py: /api/v1/…, its schema at /api/v1/openapi.json), its documentation, and the
    # personal tokens scripts use to call it.
    path("api/v1/docs/", docs.api_docs, name="browser-api-docs"),
    path("api/v1/", routing.urls(v1.api)),
    path("api-tokens/", tokens.token_list, name="browser-api-tokens"),
    path("api-tokens/new/", tokens.token_create, name="browser-api-token-create"),
    path("api-tokens/<int:token_id>/revoke/", tokens.token_revoke, name="browser-api-token-revoke"),
    path("metrics", metrics.metrics, name="browser-metrics"),
]
