"""End to end in a real Chromium (Debian's, driven by Playwright) against the live dashboard: sign in, browse
to a repository, filter, sort and open a tag, with no console error and no Content-Security-Policy violation
on the way. The browser and its thread: tests/browser.py."""

import re

import pytest

from tests.conftest import USERS

pytestmark = pytest.mark.slow
SCREENSHOT = "/tmp/tag_page.png"


def size_in_bytes(text: str) -> float:
    """Undo Django's filesizeformat ("962 bytes", "1.2 KB") well enough to compare sizes."""
    number, unit = text.replace("\xa0", " ").split()
    return float(number) * 1024 ** ["bytes", "KB", "MB", "GB"].index(unit)


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_sign_in_browse_filter_sort_and_open_a_tag(live_server, chromium, registry, registry_fixtures):
    from playwright.sync_api import expect

    host = f"127.0.0.1:{registry.port}"  # REGISTRY_PUBLIC_HOST, as conftest sets it

    def steps(page):
        # Signed out: the dashboard sends us to the login page.
        page.goto(live_server.url)
        expect(page).to_have_url(re.compile(r"/login/\?next=/$"))

        # A wrong password: an error, and still on the login page.
        page.get_by_label("User name").fill("alice")
        page.get_by_label("Password").fill("not-the-password")
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_role("alert")).to_contain_text("That user name and password do not match")
        expect(page).to_have_url(re.compile(r"/login/"))

        # The right one: the home page, with the registry reachable.
        page.get_by_label("Password").fill(USERS["alice"])
        page.get_by_role("button", name="Sign in").click()
        expect(page).to_have_url(f"{live_server.url}/")
        expect(page.get_by_role("heading", name="Registry overview")).to_be_visible()
        expect(page.get_by_text("Reachable", exact=True)).to_be_visible()
        expect(page.locator(".topbar-user")).to_contain_text("alice")

        # The repository list, filtered live by htmx as we type.
        page.get_by_role("navigation", name="Main navigation").get_by_role("link", name="Repositories").click()
        expect(page).to_have_url(f"{live_server.url}/repositories/")
        repositories = page.locator("#repositories")
        expect(repositories.get_by_role("link", name="tools/multi", exact=True)).to_be_visible()
        page.get_by_role("searchbox", name="Filter repositories").press_sequentially("shop")
        expect(repositories.get_by_role("link", name="tools/multi", exact=True)).to_have_count(0)
        expect(repositories.locator("tbody td a")).to_have_text(["shop/api", "shop/web"])
        expect(page).to_have_url(re.compile(r"/repositories/\?q=shop(&|$)"))  # htmx pushed the filtered address

        # The repository, newest first: 1.10.0 and latest are the same image (same created date, so either order).
        repositories.get_by_role("link", name="shop/api", exact=True).click()
        expect(page.get_by_role("heading", name="shop/api", level=1)).to_be_visible()
        tags = page.locator("#tags tbody tr td:first-child a")
        same_image = re.compile(r"^(1\.10\.0|latest)$")
        expect(tags).to_have_text([same_image, same_image, "1.2.0", "1.0.0"])
        rows = page.locator("#tags tbody tr")
        for tag, shared in [("1.10.0", 1), ("latest", 1), ("1.2.0", 0), ("1.0.0", 0)]:
            row = rows.filter(has=page.get_by_role("link", name=tag, exact=True))
            expect(row.locator(".badge", has_text="shared")).to_have_count(shared)
        # Each row copies its own docker pull command (over plain HTTP the page falls back to execCommand).
        copy = rows.filter(has=page.get_by_role("link", name="1.2.0", exact=True)).get_by_role(
            "button", name="Copy pull"
        )
        copy.click()
        expect(copy).to_have_attribute("aria-live", "polite")  # the copy ran and told its outcome
        expect(page.locator("#pull-3, #pull-1, #pull-2, #pull-4").filter(has_text=":1.2.0")).to_have_text(
            f"docker pull {host}/shop/api:1.2.0"
        )

        # Sorting by size swaps the table in place (htmx). First click: largest first, equal sizes by tag reversed.
        size_header = page.locator("#tags th", has_text="Size")
        size_header.get_by_role("link").click()
        expect(size_header).to_have_attribute("aria-sort", "descending")
        expect(tags).to_have_text(["latest", "1.10.0", "1.2.0", "1.0.0"])
        expect(page).to_have_url(re.compile(r"[?&]sort=size&dir=desc"))
        sizes = [size_in_bytes(text) for text in rows.locator("td.num").all_inner_texts()]
        assert sizes == sorted(sizes, reverse=True) and sizes[0] == sizes[1] > sizes[2] > sizes[3], sizes
        # Second click: smallest first.
        size_header.get_by_role("link").click()
        expect(size_header).to_have_attribute("aria-sort", "ascending")
        expect(tags).to_have_text(["1.0.0", "1.2.0", "1.10.0", "latest"])
        expect(page).to_have_url(re.compile(r"[?&]sort=size&dir=asc"))
        assert [size_in_bytes(text) for text in rows.locator("td.num").all_inner_texts()] == sizes[::-1]

        # The tag page: digest, pull commands, labels and layers.
        page.get_by_role("link", name="1.10.0", exact=True).click()
        expect(page.get_by_role("heading", name="shop/api:1.10.0", level=1)).to_be_visible()
        expect(page.get_by_label("Digest", exact=True)).to_have_value(registry_fixtures.api_digest)
        expect(page.get_by_label("Pull by tag")).to_have_value(f"docker pull {host}/shop/api:1.10.0")
        expect(page.get_by_label("Pull by digest")).to_have_value(
            f"docker pull {host}/shop/api@{registry_fixtures.api_digest}"
        )
        labels = page.locator("table").filter(has=page.get_by_role("columnheader", name="Label", exact=True))
        expect(labels.locator("tbody tr")).to_have_text([re.compile(r"org\.opencontainers\.image\.version\s*1\.10\.0")])
        layers = page.locator("table").filter(
            has=page.get_by_role("columnheader", name="Share of the image", exact=True)
        )
        expect(layers.locator("tbody tr")).to_have_count(3)  # the config blob and two layers
        for digest in layers.locator("tbody tr .digest").all():
            expect(digest).to_have_text(re.compile(r"^sha256:[0-9a-f]{64}$"))
        expect(page.get_by_role("link", name="latest", exact=True)).to_be_visible()  # "Also tagged"
        page.screenshot(path=SCREENSHOT, full_page=True)
        # "/" goes to the top bar's search.
        page.locator("body").press("/")
        expect(page.locator("#topbar-search")).to_be_focused()

    problems = chromium.run(steps)
    assert problems == [], "console errors, page errors or CSP violations:\n" + "\n".join(problems)


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_delete_one_tag_then_a_selection_with_confirmation(live_server, chromium, own, django_user_model):
    """A maintainer removes one tag (its sibling stays), then selects two tags by hand, reviews and confirms."""
    from playwright.sync_api import expect

    from accounts import roles
    from catalog import sync
    from devtools.images import push_config_image
    from registry.client import DOCKER_MANIFEST
    from registry.htpasswd import add_user
    from tests.conftest import BASE_TIME, LAYER_TYPE

    local, client, registry = own
    add_user(local.htpasswd, "alice", USERS["alice"], cost=4)
    base = client.upload_blob("team/app", b"base", LAYER_TYPE)
    for n in range(1, 5):
        push_config_image(client, "team/app", f"v{n}", BASE_TIME.replace(day=n), base, {"n": str(n)})
    body = client.request("GET", "/v2/team/app/manifests/v1", headers={"Accept": DOCKER_MANIFEST}).content
    client.put_manifest("team/app", "stable", body, DOCKER_MANIFEST)
    sync.sync_repository(client, registry, "team/app")
    roles.set_role(django_user_model.objects.create(username="alice"), roles.MAINTAINER)

    def steps(page):
        page.goto(f"{live_server.url}/login/?next=/repositories/team/app/-/v1/")
        page.get_by_label("User name").fill("alice")
        page.get_by_label("Password").fill(USERS["alice"])
        page.get_by_role("button", name="Sign in").click()
        page.get_by_role("link", name="Delete…").click()

        # The confirmation names the sibling that shares the image, and offers both choices.
        expect(page.get_by_role("heading", name="Delete team/app:v1", level=1)).to_be_visible()
        expect(page.locator("dl.kv")).to_contain_text("stable")
        expect(page.get_by_role("button", name="Delete the image and its 2 tags")).to_be_visible()
        page.get_by_role("button", name="Remove v1").click()
        expect(page.locator("#job-progress")).to_contain_text("Finished")
        expect(page.locator("#job-results")).to_contain_text("tag removed")

        # A selection by hand: two checkboxes (htmx keeps the count), then one review and one confirmation.
        page.goto(f"{live_server.url}/repositories/team/app/")
        page.get_by_label("Select v2").check()
        expect(page.locator("#selection-bar")).to_contain_text("1 tag selected")
        page.get_by_label("Select v3").check()
        expect(page.locator("#selection-bar")).to_contain_text("2 tags selected")
        page.get_by_role("button", name="Review and delete…").click()
        expect(page.get_by_role("heading", name="2 tags will be deleted")).to_be_visible()
        page.get_by_role("button", name="Delete 2 tags").first.click()
        expect(page.locator("#job-progress")).to_contain_text("Finished")
        expect(page.locator("#job-results tbody tr")).to_have_count(2)
        page.screenshot(path="/tmp/delete_job.png", full_page=True)

    problems = chromium.run(steps)
    assert problems == [], "console errors, page errors or CSP violations:\n" + "\n".join(problems)
    assert sorted(client.tags("team/app")) == ["stable", "v4"]
    assert client.resolve("team/app", "stable") == client.manifest("team/app", "stable").digest
