"""Every page, in a real Chromium, as people see it: on a desktop and on two phones, in English and Spanish, light
and dark. Each passes axe-core (no critical or serious violation), none is wider than a 360 px phone, and the
dark-mode switch works, without JavaScript too.

axe-core comes from the axe-playwright-python package (its axe.min.js ships inside the wheel): nothing is
fetched at test time, and Playwright injects it as an init script, without loosening the pages' CSP.

Set PAGE_SCREENSHOTS=/some/folder to keep a screenshot of each page in each state, to look at."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.test import Client
from django.utils import timezone

from accounts import roles
from catalog import sync
from cleanup import reasons
from cleanup import run as cleanup_run
from cleanup.models import AuditEntry, DeleteJob, RetentionPolicy
from cleanup.plan import Choice
from garbage_collection.models import GcRun
from registry import explain
from registry.client import RegistryClient
from tests.browser import AXE, english_on_page, serious_violations
from tests.conftest import SERVICE_PASSWORD, SERVICE_USER
from webhooks import events
from webhooks.models import Delivery, Endpoint

pytestmark = [pytest.mark.slow, pytest.mark.browser, pytest.mark.django_db(transaction=True)]

DESKTOP = {"width": 1440, "height": 900}
PHONE = {"width": 390, "height": 844}
SMALL_PHONE = {"width": 360, "height": 740}
VIEWPORTS = {"desktop": DESKTOP, "phone": PHONE, "small phone": SMALL_PHONE}
THEMES = ["light", "dark"]
NOT_FOUND = "/no/such/page/"
PAGES_SIGNED_OUT = {"sign-in": "/login/"}
SCREENSHOTS = os.environ.get("PAGE_SCREENSHOTS", "")
# Repositories of the session registry the pages show: a plain image, an OCI image, a multi-platform index with
# attestations, a Docker manifest list, and labels full of markup. (The audit log has pages: its entries are rows.)
REPOSITORIES = ["shop/api", "shop/web", "tools/multi", "tools/legacy-list", "evil/xss"]


@dataclass
class Site:
    """The live dashboard, filled: its pages by name, and a signed-in admin's session cookie."""

    url: str
    pages: dict[str, str]
    session: str

    def cookies(self, language: str = "en", theme: str = "") -> list[dict]:
        cookies = [{"name": django_settings.LANGUAGE_COOKIE_NAME, "value": language, "url": self.url}]
        if theme:
            cookies.append({"name": "theme", "value": theme, "url": self.url})
        return cookies

    def sign_in(self, page) -> None:
        session = {"name": django_settings.SESSION_COOKIE_NAME, "value": self.session, "url": self.url}
        page.context.add_cookies([session])


@pytest.fixture
def site(live_server, registry, registry_fixtures, django_user_model, settings) -> Site:
    """The session registry indexed, an admin, and one of everything the admin pages list: a retention policy, a
    draft delete and a finished one with its audit entries, a garbage collection dry run with a long log."""
    settings.REGISTRY_CACHE_SECONDS = 3600  # pages read the index without asking the registry again
    client = RegistryClient(registry.url, SERVICE_USER, SERVICE_PASSWORD)
    index = sync.current_registry()
    for name in REPOSITORIES:
        sync.sync_repository(client, index, name)
    index.last_reconciled_at = timezone.now()
    index.save(update_fields=["last_reconciled_at"])

    admin = django_user_model.objects.create(username="alice", last_login=timezone.now())
    roles.set_role(admin, roles.ADMIN)
    for name, role in [("bob", roles.VIEWER), ("carol-with-a-rather-long-user-name", roles.MAINTAINER)]:
        roles.set_role(django_user_model.objects.create(username=name), role)

    policy = RetentionPolicy.objects.create(registry=index, repositories="shop/*", keep_newest=2, schedule="daily")
    api = registry_fixtures.api_digest
    draft = cleanup_run.create_job(
        index,
        DeleteJob.TAGS,
        [Choice("shop/api", "1.10.0", api), Choice("shop/api", "1.2.0", registry_fixtures.api_old_digest)],
        user="alice",
        address="127.0.0.1",
        repository="shop/api",
        status=DeleteJob.DRAFT,
    )
    done = cleanup_run.create_job(
        index,
        DeleteJob.TAGS,
        [Choice("shop/api", "1.0.0", api), Choice("shop/api", "0.9.0", api)],
        user="alice",
        address="127.0.0.1",
        repository="shop/api",
        status=DeleteJob.DONE,
        done=2,
        failed=1,
        finished_at=timezone.now(),
        bytes_estimate=123_456,
    )
    for tag, outcome, message in [
        ("1.0.0", AuditEntry.DONE, ""),
        ("0.9.0", AuditEntry.FAILED, explain.READ_ONLY),
    ]:
        AuditEntry.objects.create(
            user="alice",
            address="127.0.0.1",
            action=AuditEntry.DELETE_MANIFEST,
            repository="shop/api",
            tags=[tag],
            digest=api,
            outcome=outcome,
            message=message,
            message_reason=reasons.reason(message) if message else None,
            bytes=123_456,
            job=done,
        )
    AuditEntry.objects.bulk_create(
        AuditEntry(
            user="bob", action=AuditEntry.REMOVE_TAG, repository="shop/web", tags=[f"old-{n}"], digest=api, bytes=n
        )
        for n in range(60)
    )
    log = "\n".join(f"shop/api: marking blob sha256:{n:064x} referenced by manifest sha256:{n:064x}" for n in range(40))
    gc_run = GcRun.objects.create(
        registry=index,
        requested_by="alice",
        status=GcRun.DONE,
        finished_at=timezone.now() + timedelta(seconds=3),
        log=log,
        exit_code=0,
        blobs_marked=12,
        blobs_eligible=3,
        manifests_eligible=1,
        bytes_estimate=98_765,
    )

    hook = Endpoint.objects.create(
        name="Team chat", url="https://hooks.example.com/services/T0/B0/x", secret="s" * 40, events=events.EVENT_TYPES
    )
    answered = reasons.reason("Answered %(status)s.", status=502)
    for status, code, why in [("delivered", 200, None), ("retrying", 502, answered)]:
        body = events.tag_pushed("shop/api", "1.10.0", api, 123_456, "alice", "/repositories/shop/api/-/1.10.0/")
        Delivery.objects.create(
            endpoint=hook,
            event_id=body["id"],
            event_type=body["type"],
            payload=body,
            status=status,
            attempts=1,
            response_code=code,
            duration_ms=42,
            error=reasons.english(why) if why else "",
            error_reason=why,
            response_excerpt="upstream " * 30 if why else "ok",
            next_attempt_at=timezone.now() + timedelta(minutes=5) if status == "retrying" else None,
        )

    browser = Client()
    browser.force_login(admin)
    session = browser.cookies[django_settings.SESSION_COOKIE_NAME].value
    api_tags = "/repositories/shop/api/-"
    pages = {
        "home": "/",
        "repositories": "/repositories/",
        "repository": "/repositories/shop/api/",
        "audit, second page": "/audit/?page=2",
        "tag": f"{api_tags}/1.10.0/",
        "multi-platform tag": "/repositories/tools/multi/-/2.0/",
        "tag with markup": "/repositories/evil/xss/-/latest/",
        "search": "/search/?q=shop",
        "storage": "/storage/",
        "storage of a repository": "/storage/shop/api/",
        "tag delete": f"{api_tags}/1.2.0/delete/",
        "repository delete": "/repositories/shop/api/-delete-repository/",
        "delete review": f"/deletes/{draft.pk}/",
        "delete job": f"/deletes/{done.pk}/",
        "retention": "/retention/",
        "retention policy": f"/retention/{policy.pk}/",
        "retention dry run": f"/retention/{policy.pk}/dry-run/",
        "audit": "/audit/",
        "garbage collection": "/gc/",
        "garbage collection run": f"/gc/{gc_run.pk}/",
        "users": "/users/",
        "api tokens": "/api-tokens/",
        "webhooks": "/webhooks/",
        "webhook": f"/webhooks/{hook.pk}/",
        "not found": NOT_FOUND,
        "missing tag": f"{api_tags}/no-such-tag/",
    }
    return Site(url=live_server.url, pages=pages, session=session)


def unexpected(problems: list[str], site: Site) -> list[str]:
    """The problems a browser reported, less the 404 status of the pages that are meant to be missing."""
    missing = [f"status of 404 (Not Found) at {site.url}{site.pages[name]}" for name in ("not found", "missing tag")]
    return [problem for problem in problems if not problem.endswith(tuple(missing))]


def open_page(page, site: Site, name: str) -> None:
    response = page.goto(site.url + PAGES_SIGNED_OUT.get(name, site.pages.get(name, "")))
    expected = 404 if name in ("not found", "missing tag") else 200
    assert response.status == expected, f"{name}: {response.status} at {page.url}"
    if name not in PAGES_SIGNED_OUT:
        assert "/login/" not in page.url, f"{name}: signed out"


def screenshot(page, name: str, state: str) -> None:
    if SCREENSHOTS:
        folder = Path(SCREENSHOTS)
        folder.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(folder / f"{name} - {state}.png".replace("/", "-")), full_page=True)


def phone_options(viewport: dict) -> dict:
    return {"is_mobile": True, "has_touch": True} if viewport["width"] < 800 else {}


@pytest.mark.parametrize("language", ["en", "es"])
def test_every_page_passes_axe_on_desktop_and_phones_light_and_dark(site, chromium, language):
    """No critical or serious axe-core violation on any page, at 1440, 390 and 360 px wide, light and dark. In English
    the theme is the system's; in Spanish it is chosen (the cookie), against the system's opposite setting."""
    found: list[str] = []
    problems: list[str] = []
    chosen = language == "es"
    for theme in THEMES:
        system = ({"light": "dark", "dark": "light"}[theme]) if chosen else theme
        for viewport_name, viewport in VIEWPORTS.items():
            state = f"{language} {viewport_name} {theme}"

            def steps(page, state=state, theme=theme):
                for name in [*PAGES_SIGNED_OUT, *site.pages]:
                    if name == next(iter(site.pages)):
                        site.sign_in(page)
                    open_page(page, site, name)
                    assert background(page) == BACKGROUNDS[theme], f"{name} ({state}) is not {theme}"
                    found.extend(f"{name} ({state}): {line}" for line in serious_violations(page))
                    screenshot(page, name, state)
                if page.viewport_size["width"] < 800:  # the phone's menu, open
                    open_page(page, site, "home")
                    page.locator(".phone-menu summary").click()
                    found.extend(f"menu ({state}): {line}" for line in serious_violations(page))
                    screenshot(page, "menu", state)

            options = {"viewport": viewport, "color_scheme": system, **phone_options(viewport)}
            cookies = site.cookies(language, theme if chosen else "")
            problems += unexpected(chromium.run(steps, cookies=cookies, scripts=[AXE], **options), site)
    assert found == [], "axe-core found:\n" + "\n".join(found)
    assert problems == [], "console errors, page errors or CSP violations:\n" + "\n".join(problems)


def test_no_page_has_an_english_string_in_spanish(site, chromium):
    """Every string a Spanish page shows or reads aloud is Spanish: its words, its titles, its hidden parts (a
    closed disclosure, the phone's menu). Names, digests, code and the registry's own words are not translated."""
    english: list[str] = []

    def steps(page):
        for name in [*PAGES_SIGNED_OUT, *site.pages]:
            if name == next(iter(site.pages)):
                site.sign_in(page)
            open_page(page, site, name)
            english.extend(f"{name}: {text}" for text in english_on_page(page))

    problems = unexpected(chromium.run(steps, cookies=site.cookies("es"), viewport=PHONE), site)
    assert problems == [], problems
    assert english == [], "English on Spanish pages:\n" + "\n".join(english)


@pytest.mark.parametrize("language", ["en", "es"])
def test_no_page_is_wider_than_a_phone_and_the_menu_reaches_every_page(site, chromium, language):
    """At 360 and 390 px nothing scrolls sideways (wide tables scroll inside their own box); the menu button opens a
    menu in which every link and the account's controls are on the screen, none covering another."""
    too_wide: list[str] = []
    menu_problems: list[str] = []

    def inside(box, width: int) -> bool:
        return box is not None and box["x"] >= 0 and box["x"] + box["width"] <= width and box["width"] > 0

    for viewport in [SMALL_PHONE, PHONE]:
        width = viewport["width"]

        def steps(page, width=width):
            for name in [*PAGES_SIGNED_OUT, *site.pages]:
                if name == next(iter(site.pages)):
                    site.sign_in(page)
                open_page(page, site, name)
                scroll_width = page.evaluate("document.documentElement.scrollWidth")
                if scroll_width > width:
                    too_wide.append(f"{name} at {width} px: {scroll_width} px wide")
            # The menu: closed at first, then every destination and control in sight.
            open_page(page, site, "home")
            menu = page.locator(".phone-menu")
            assert not page.locator(".phone-menu-panel").is_visible()
            menu.locator("summary").click()
            links = menu.get_by_role("navigation").get_by_role("link")
            assert links.count() == 10, links.all_inner_texts()
            controls = [*links.all(), *menu.get_by_role("combobox").all(), *menu.get_by_role("button").all()]
            controls.append(menu.locator(".phone-menu-user .badge"))
            boxes = [control.bounding_box() for control in controls]
            menu_problems.extend(
                f"{control} is off-screen at {width} px"
                for control, box in zip(controls, boxes, strict=True)
                if not inside(box, width)
            )
            for n, first in enumerate(boxes):
                for second in boxes[n + 1 :]:
                    if first and second and overlap(first, second):
                        menu_problems.append(f"two controls overlap at {width} px: {first} and {second}")
            page.keyboard.press("Escape")
            assert not page.locator(".phone-menu-panel").is_visible()
            page.screenshot(path=f"/tmp/phone_menu_{language}_{width}.png")

        options = {"viewport": viewport, **phone_options(viewport)}
        problems = unexpected(chromium.run(steps, cookies=site.cookies(language), **options), site)
        assert problems == [], problems
    assert too_wide == [], "wider than the screen:\n" + "\n".join(too_wide)
    assert menu_problems == [], "\n".join(menu_problems)


def overlap(first: dict, second: dict) -> bool:
    return not (
        first["x"] + first["width"] <= second["x"]
        or second["x"] + second["width"] <= first["x"]
        or first["y"] + first["height"] <= second["y"]
        or second["y"] + second["height"] <= first["y"]
    )


DARK_BACKGROUND, LIGHT_BACKGROUND = "rgb(15, 20, 27)", "rgb(241, 243, 246)"
BACKGROUNDS = {"dark": DARK_BACKGROUND, "light": LIGHT_BACKGROUND}


def background(page) -> str:
    return page.evaluate("getComputedStyle(document.body).backgroundColor")


def test_the_theme_switch_works_without_javascript_and_remembers_the_choice(site, chromium):
    """Without JavaScript the switch is a form: Dark is kept across pages and on the sign-in page; System follows
    the system's setting again."""
    from playwright.sync_api import expect

    def steps(page):
        site.sign_in(page)
        open_page(page, site, "repository")
        assert background(page) == LIGHT_BACKGROUND  # the system is light here
        topbar = page.locator(".topbar")
        topbar.get_by_label("Theme").select_option("dark")
        topbar.get_by_role("button", name="Change").last.click()
        expect(page.locator("html")).to_have_attribute("data-theme", "dark")
        assert page.url == site.url + site.pages["repository"]  # back on the same page
        assert background(page) == DARK_BACKGROUND
        open_page(page, site, "audit")
        assert background(page) == DARK_BACKGROUND
        assert topbar.get_by_label("Theme").input_value() == "dark"
        cookie = next(cookie for cookie in page.context.cookies() if cookie["name"] == "theme")
        assert cookie["value"] == "dark" and cookie["httpOnly"] and cookie["expires"] > 0
        page.context.clear_cookies(name=django_settings.SESSION_COOKIE_NAME)
        open_page(page, site, "sign-in")
        assert background(page) == DARK_BACKGROUND
        page.locator(".plain-below").get_by_label("Theme").select_option("system")
        page.locator(".plain-below").get_by_role("button", name="Change").last.click()
        expect(page.locator("html")).not_to_have_attribute("data-theme", re.compile(".*"))
        assert background(page) == LIGHT_BACKGROUND

    problems = chromium.run(steps, cookies=site.cookies(), java_script_enabled=False, color_scheme="light")
    assert problems == [], problems


def test_the_theme_switch_applies_at_once_with_javascript_and_on_the_phone(site, chromium):
    """With JavaScript a choice applies without reloading (the Change button is hidden) and is remembered; on a
    phone the switch is in the menu. The system's dark setting applies when nothing was chosen."""
    from playwright.sync_api import expect

    def steps(page):
        site.sign_in(page)
        open_page(page, site, "storage")
        assert background(page) == DARK_BACKGROUND  # the system is dark here, nothing chosen yet
        page.evaluate("window.notReloaded = true")
        page.locator(".phone-menu summary").click()
        menu = page.locator(".phone-menu-panel")
        expect(menu.get_by_role("button", name="Change")).to_have_count(0)
        with page.expect_response(lambda response: response.url.endswith("/theme/")) as answer:
            menu.get_by_label("Theme").select_option("light")
        assert answer.value.status == 204
        expect(page.locator("html")).to_have_attribute("data-theme", "light")
        assert background(page) == LIGHT_BACKGROUND and page.evaluate("window.notReloaded")
        page.reload()
        expect(page.locator("html")).to_have_attribute("data-theme", "light")
        assert background(page) == LIGHT_BACKGROUND

    options = {"viewport": PHONE, "color_scheme": "dark", **phone_options(PHONE)}
    problems = chromium.run(steps, cookies=site.cookies(), **options)
    assert problems == [], problems
