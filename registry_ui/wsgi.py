"""The WSGI entry points: `application` serves everything; `notifications_listener` serves only what the
registry posts (run it as a server of its own, so that a notification never waits behind page requests)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "registry_ui.settings")
application = get_wsgi_application()

LISTENER_PATHS = {"/notifications/", "/health/"}


def notifications_listener(environ, start_response):
    if environ.get("PATH_INFO") not in LISTENER_PATHS:
        start_response("404 Not Found", [("Content-Type", "text/plain; charset=utf-8")])
        return [b"This port takes only the registry's notifications (POST /notifications/).\n"]
    return application(environ, start_response)
