"""The four jobs people open the dashboard for, done as they do them: in the real Chromium, on the README's own
demo (`manage.py rundashboard`: its registry, task workers, scheduler and gunicorn), signed in over htpasswd, on a
desktop and on a phone, in English and in Spanish, light and dark.

1. A developer finds which versions of a repository exist and copies a pull command.
2. A maintainer deletes the tags older than a date, keeping the newest N.
3. The admin finds the repository that uses the most space, and the layers that make it big.
4. The admin dry-runs a garbage collection, runs it, and sees the space freed.

Every page on the way must show no console error or CSP violation, and a Spanish page no English string.
Set PAGE_SCREENSHOTS=/some/folder to keep a screenshot of each step."""

from __future__ import annotations

import os
import re
import sqlite3
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from django.template.defaultfilters import filesizeformat
from django.utils import translation

from devtools.images import ImageSpec, push_image
from registry.client import NotFound, RegistryError
from registry.htpasswd import add_user
from tests.browser import AXE, english_on_page, serious_violations
from tests.demo import Demo, post_form, sign_in, start_demo, wait_for_line, wait_until

pytestmark = [pytest.mark.registry, pytest.mark.browser, pytest.mark.slow, pytest.mark.xdist_group("four-jobs")]

SCREENS = {"desktop": {"width": 1440, "height": 900}, "phone": {"width": 390, "height": 844}}
# Each language on each screen, each in a theme: both themes on both screens and in both languages.
WAYS = [
    pytest.param("en", "desktop", "light", id="en-desktop-light"),
    pytest.param("en", "phone", "dark", id="en-phone-dark"),
    pytest.param("es", "desktop", "dark", id="es-desktop-dark"),
    pytest.param("es", "phone", "light", id="es-phone-light"),
]
PASSWORDS = {"dev": "dev-password-1", "maria": "maria-password-1"}
BIG_LAYER_BYTES = 12_000_000
SCREENSHOTS = os.environ.get("PAGE_SCREENSHOTS", "")
# Until every animation that ends has ended (a spinner's never does).
SETTLED = """Promise.all(document.getAnimations()
  .filter((animation) => animation.effect.getTiming().iterations !== Infinity)
  .map((animation) => animation.finished))"""


def t(language: str, text: str) -> str:
    with translation.override(language):
        return translation.gettext(text)


def nt(language: str, singular: str, plural: str, count: int) -> str:
    with translation.override(language):
        return translation.ngettext(singular, plural, count) % {"count": count}


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    running = start_demo(tmp_path_factory.mktemp("demo"))
    try:
        output = wait_for_line(running.process, r"Dashboard: http://", seconds=120)
        running.passwords = {"admin": re.search(r"Sign in as admin with the password (\S+)", output).group(1)}
        htpasswd = running.data_dir / "registry" / "htpasswd"
        for name, password in PASSWORDS.items():
            add_user(htpasswd, name, password, cost=4)
            running.passwords[name] = password
        # Maria's first sign-in makes her account (a viewer); the admin makes her a maintainer on the Users page.
        sign_in(running.base, "maria", PASSWORDS["maria"])
        admin = sign_in(running.base, "admin", running.passwords["admin"])
        maria = user_id(running.data_dir / "db.sqlite3", "maria")
        post_form(admin, running.base, "/users/", f"/users/{maria}/role/", role="maintainer")
        # The repository that uses the most space: one image with a layer bigger than the demo's.
        service = running.service_client()
        push_image(service, "media/videos", "2024.1", ImageSpec(layers=[{"video.bin": os.urandom(BIG_LAYER_BYTES)}]))
        yield running
    finally:
        running.stop()


def user_id(database: Path, username: str) -> int:
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=10) as connection:
        return connection.execute("SELECT id FROM auth_user WHERE username = ?", [username]).fetchone()[0]


class Visit:
    """One person's visit in the browser: signs in, goes by the navigation (the phone's menu on a phone), checks
    each page it reaches and keeps a screenshot of it."""

    def __init__(self, page, demo: Demo, language: str, screen: str, theme: str, job: str) -> None:
        self.page, self.demo, self.language, self.screen, self.job = page, demo, language, screen, job
        self.state = f"{language} {screen} {theme}"
        self.english: list[str] = []
        self.violations: list[str] = []

    def t(self, text: str) -> str:
        return t(self.language, text)

    def sign_in(self, username: str) -> None:
        self.page.goto(self.demo.base + "/")
        assert "/login/" in self.page.url
        self.page.locator("input[name=username]").fill(username)
        self.page.locator("input[name=password]").fill(self.demo.passwords[username])
        self.page.get_by_role("button", name=self.t("Sign in")).click()
        self.page.wait_for_url(self.demo.base + "/")
        self.look("home")

    def go(self, destination: str) -> None:
        """Follow the main navigation's link."""
        if self.screen == "phone":
            self.page.locator(".phone-menu summary").click()
        navigation = self.page.get_by_role("navigation", name=self.t("Main navigation"))
        navigation.get_by_role("link", name=self.t(destination), exact=True).click()
        self.page.wait_for_load_state()

    def look(self, step: str) -> None:
        """What every page on the way must be: as wide as the screen, without a critical or serious axe-core
        violation, and all Spanish in Spanish."""
        # A page settled: loaded (a click may have started a navigation) and done fading in what htmx swapped.
        self.page.wait_for_load_state()
        self.page.evaluate(SETTLED)
        width = self.page.viewport_size["width"]
        assert self.page.evaluate("document.documentElement.scrollWidth") <= width, f"{step} scrolls sideways"
        self.violations += [f"{step}: {line}" for line in serious_violations(self.page)]
        if self.language == "es":
            self.english += [f"{step}: {text}" for text in english_on_page(self.page)]
        if SCREENSHOTS:
            folder = Path(SCREENSHOTS)
            folder.mkdir(parents=True, exist_ok=True)
            self.page.screenshot(path=str(folder / f"{self.job} - {step} - {self.state}.png"), full_page=True)


def walk(chromium, demo: Demo, language: str, screen: str, theme: str, job: str, steps) -> None:
    """Run a visit's steps in a fresh browser; fail on any console error, page error or CSP violation, and on
    axe-core's findings and English found on Spanish pages."""
    visits = []

    def in_browser(page) -> None:
        visits.append(Visit(page, demo, language, screen, theme, job))
        steps(visits[0])

    options = {"viewport": SCREENS[screen], "color_scheme": theme, "locale": {"en": "en-US", "es": "es-ES"}[language]}
    if screen == "phone":
        options |= {"is_mobile": True, "has_touch": True}
    problems = chromium.run(in_browser, permissions=["clipboard-read", "clipboard-write"], scripts=[AXE], **options)
    assert problems == [], problems
    assert visits[0].violations == [], "axe-core found:\n" + "\n".join(visits[0].violations)
    assert visits[0].english == [], "English on Spanish pages:\n" + "\n".join(visits[0].english)


def wait_for_tags(demo: Demo, repository: str, tags: set[str]) -> None:
    """Until the index has the pushed tags (the registry's notifications bring them)."""
    database = demo.data_dir / "db.sqlite3"

    def indexed() -> set[str]:
        with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=10) as connection:
            rows = connection.execute(
                "SELECT t.name FROM catalog_tag t JOIN catalog_repository r ON r.id = t.repository_id WHERE r.name = ?",
                [repository],
            )
            return {row[0] for row in rows}

    wait_until(lambda: indexed() == tags, seconds=30)


@pytest.mark.parametrize(("language", "screen", "theme"), WAYS)
def test_a_developer_finds_the_versions_of_a_repository_and_copies_a_pull_command(
    demo, chromium, language, screen, theme
):
    from playwright.sync_api import expect

    versions = set(demo.service_client().tags("demo/api"))
    wait_for_tags(demo, "demo/api", versions)
    newest = max(versions, key=lambda tag: [int(part) for part in re.findall(r"\d+", tag)] or [0])

    def steps(visit: Visit) -> None:
        page = visit.page
        visit.sign_in("dev")
        visit.go("Repositories")
        visit.look("repositories")
        page.get_by_role("link", name="demo/api", exact=True).click()
        expect(page.get_by_role("heading", level=1)).to_contain_text("demo/api")
        visit.look("repository")
        rows = page.locator("#tags tbody tr")
        shown = {row.locator("td a").first.inner_text().strip() for row in rows.all()}
        assert shown == versions
        row = rows.filter(has=page.get_by_role("link", name=newest, exact=True))
        copy = row.get_by_role("button", name=visit.t("Copy pull"))
        copy.click()
        expect(row.locator(".row-copy")).to_have_text(visit.t("Copied"))  # its name, until it turns back
        pulled = page.evaluate("navigator.clipboard.readText()")
        assert pulled == f"docker pull 127.0.0.1:{demo.registry_port}/demo/api:{newest}"
        visit.look("copied")

    walk(chromium, demo, language, screen, theme, "1 versions", steps)


@pytest.mark.parametrize(("language", "screen", "theme"), WAYS)
def test_a_maintainer_deletes_the_tags_older_than_a_date_keeping_the_newest(demo, chromium, language, screen, theme):
    """Six images created on the 1st to the 6th of January: older than the 6th and all but the newest three
    is the 1st to the 3rd."""
    from playwright.sync_api import expect

    repository = f"team/app-{language}-{screen}"
    service = demo.service_client()
    created = {f"v{day}": datetime(2024, 1, day, 12, tzinfo=UTC) for day in range(1, 7)}
    for tag, when in created.items():
        push_image(service, repository, tag, ImageSpec(layers=[{"app": f"{repository} {tag}"}], created=when))
    wait_for_tags(demo, repository, set(created))

    def steps(visit: Visit) -> None:
        page = visit.page
        visit.sign_in("maria")
        visit.go("Repositories")
        page.get_by_role("link", name=repository, exact=True).click()
        page.get_by_role("link", name=visit.t("Delete old tags…")).click()
        visit.look("filter")
        page.get_by_label(visit.t("Older than")).fill("2024-01-06")
        page.get_by_label(visit.t("All but the newest")).fill("3")
        page.get_by_role("button", name=visit.t("Add matching tags to the selection")).click()
        visit.look("selection")
        page.get_by_role("button", name=visit.t("Review and delete…")).click()
        expect(
            page.get_by_role(
                "heading", name=nt(language, "%(count)s tag will be deleted", "%(count)s tags will be deleted", 3)
            )
        ).to_be_visible()
        visit.look("review")
        page.get_by_role("button", name=nt(language, "Delete %(count)s tag", "Delete %(count)s tags", 3)).first.click()
        expect(page.get_by_text(visit.t("image deleted"), exact=True)).to_have_count(3, timeout=30_000)
        visit.look("done")
        page.get_by_role("link", name=repository).first.click()
        rows = page.locator("#tags tbody tr")
        expect(rows).to_have_count(3)
        visit.look("repository after")

    walk(chromium, demo, language, screen, theme, "2 delete", steps)
    assert set(service.tags(repository)) == {"v4", "v5", "v6"}
    for tag in ("v1", "v2", "v3"):
        with pytest.raises(NotFound):
            service.resolve(repository, tag)


@pytest.mark.parametrize(("language", "screen", "theme"), WAYS)
def test_the_admin_finds_the_largest_repository_and_the_layers_that_make_it_big(
    demo, chromium, language, screen, theme
):
    from playwright.sync_api import expect

    service = demo.service_client()
    big_layer = max(service.manifest("media/videos", "2024.1").layers, key=lambda layer: layer.size)
    wait_for_tags(demo, "media/videos", {"2024.1"})

    def steps(visit: Visit) -> None:
        page = visit.page
        visit.sign_in("admin")
        visit.go("Storage")
        repositories = page.get_by_role("region", name=visit.t("Repositories"))
        first = repositories.locator("tbody tr").first.get_by_role("link")
        expect(first).to_have_text("media/videos", timeout=30_000)  # figures are computed in the background
        visit.look("storage")
        first.click()
        layers = page.get_by_role("region", name=visit.t("Largest layers"))
        largest = layers.locator("tbody tr").first
        expect(largest.locator(".digest")).to_have_attribute("title", big_layer.digest)
        with translation.override(language):
            expect(largest).to_contain_text(filesizeformat(big_layer.size))
        size = largest.locator("td.num").first.bounding_box()  # in sight without scrolling the table, on a phone too
        assert size["x"] + size["width"] <= page.viewport_size["width"], size
        visit.look("largest layers")

    walk(chromium, demo, language, screen, theme, "3 storage", steps)


@pytest.mark.parametrize(("language", "screen", "theme"), WAYS)
def test_the_admin_collects_garbage_in_the_demo_and_sees_the_space_freed(demo, chromium, language, screen, theme):
    from playwright.sync_api import expect

    service = demo.service_client()
    repository = f"junk/{language}-{screen}"
    garbage = push_image(service, repository, "old", ImageSpec(layers=[{"junk.bin": os.urandom(300_000)}]))
    junk_layer = service.manifest(repository, garbage.digest).layers[0]
    wait_for_tags(demo, repository, {"old"})  # the index saw it: it knows its blobs' sizes
    service.delete_manifest(repository, garbage.digest)
    wait_for_tags(demo, repository, set())

    def steps(visit: Visit) -> None:
        page = visit.page
        visit.sign_in("admin")
        visit.go("Garbage collection")
        visit.look("garbage collection")
        page.get_by_role("button", name=visit.t("Start a dry run")).click()
        eligible = page.get_by_role("row").filter(has=page.locator(f".digest[title='{junk_layer.digest}']"))
        expect(eligible).to_be_visible(timeout=60_000)
        with translation.override(language):
            expect(eligible).to_contain_text(filesizeformat(junk_layer.size))
        expect(eligible).to_contain_text(f"{repository}@{garbage.digest[:19]}")  # the deleted image it was part of
        visit.look("dry run")
        page.get_by_role("checkbox", name=re.compile(re.escape(visit.t("Yes")))).check()
        page.get_by_role("button", name=visit.t("Collect now")).click()
        freed = page.locator(".stat", has_text=visit.t("Freed")).locator(".stat-value")
        expect(freed).not_to_have_text("—", timeout=90_000)
        visit.look("collected")
        number, unit = re.match(r"([\d.,]+)\s*(\w+)", freed.inner_text()).groups()
        scale = {"bytes": 1, "KB": 1024, "MB": 1024**2}[unit]
        assert float(number.replace(",", ".")) * scale >= 290_000  # the deleted image's random layer

    walk(chromium, demo, language, screen, theme, "4 collect", steps)
    # The registry takes pushes again.
    deadline = time.monotonic() + 15
    while True:
        try:
            push_image(service, repository, "new", ImageSpec(layers=[{"after": "collection"}]))
            break
        except RegistryError:
            assert time.monotonic() < deadline, "the registry stayed read-only"
            time.sleep(0.5)
