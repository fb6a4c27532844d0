"""End to end in a real Chromium (Debian's, driven by Playwright) against the live dashboard: sign in, browse
to a repository, filter, sort and open a tag, with no console error and no Content-Security-Policy violation
on the way."""

import re
from pathlib import Path

import pytest

from tests.conftest import USERS

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
SCREENSHOT = Path("/tmp/tag_page.png")

# Reports every CSP violation of every page (the init script runs again after each navigation).
REPORT_CSP_VIOLATIONS = """
document.addEventListener("securitypolicyviolation", (event) => {
  window.reportCspViolation(`${event.violatedDirective} blocked ${event.blockedURI || "inline"} in ${event.sourceFile}:${event.lineNumber}`);
});
"""


@pytest.fixture(scope="session")
def chromium():
    """One headless Chromium for the session, launched as this machine requires (never `playwright install`)."""
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing: apt-get install chromium (CI installs it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(chromium):
    """A fresh browser context and page; `page.problems` collects console errors, page errors and CSP violations."""
    context = chromium.new_context(locale="en-US", viewport={"width": 1280, "height": 900})
    context.set_default_timeout(10_000)
    page = context.new_page()
    problems: list[str] = []
    page.on("console", lambda message: problems.append(f"console: {message.text}") if message.type == "error" else None)
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    page.expose_function("reportCspViolation", lambda text: problems.append(f"CSP violation: {text}"))
    page.add_init_script(REPORT_CSP_VIOLATIONS)
    page.problems = problems
    yield page
    context.close()


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_sign_in_browse_filter_sort_and_open_a_tag(live_server, page, registry, registry_fixtures):
    from playwright.sync_api import expect

    # Signed out: the dashboard sends us to the login page.
    page.goto(live_server.url)
    expect(page).to_have_url(re.compile(r"/login/\?next=/$"))

    # A wrong password: an error, and still on the login page.
    page.get_by_label("User name").fill("alice")
    page.get_by_label("Password").fill("not-the-password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("Please enter a correct")
    expect(page).to_have_url(re.compile(r"/login/"))

    # The right one: the home page, with the registry reachable.
    page.get_by_label("Password").fill(USERS["alice"])
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(f"{live_server.url}/")
    expect(page.get_by_role("heading", name="Registry overview")).to_be_visible()
    expect(page.get_by_text("Reachable", exact=True)).to_be_visible()
    expect(page.locator(".topbar-user")).to_contain_text("alice")

    # The repository list, filtered live by htmx.
    page.get_by_role("navigation", name="Main navigation").get_by_role("link", name="Repositories").click()
    expect(page).to_have_url(f"{live_server.url}/repositories/")
    repositories = page.locator("#repositories")
    expect(repositories.get_by_role("link", name="tools/multi", exact=True)).to_be_visible()
    page.get_by_role("searchbox", name="Filter repositories").fill("shop")
    expect(repositories.get_by_role("link", name="tools/multi", exact=True)).to_have_count(0)
    expect(repositories.locator("tbody td a")).to_have_text(["shop/api", "shop/web"])
    expect(page).to_have_url(re.compile(r"/repositories/\?q=shop$"))  # htmx pushed the filtered URL

    # The repository: tags newest first, two of them the same image.
    repositories.get_by_role("link", name="shop/api", exact=True).click()
    expect(page.get_by_role("heading", name="shop/api", level=1)).to_be_visible()
    tags = page.locator("#tags tbody tr td:first-child a")
    expect(tags).to_have_text(["1.10.0", "latest", "1.2.0", "1.0.0"])
    row_of = {tag: page.locator("#tags tbody tr").filter(has=page.get_by_role("link", name=tag, exact=True))
              for tag in ("1.10.0", "latest", "1.2.0", "1.0.0")}  # fmt: skip
    for tag in ("1.10.0", "latest"):
        expect(row_of[tag].locator(".badge", has_text="shared")).to_be_visible()
    for tag in ("1.2.0", "1.0.0"):
        expect(row_of[tag].locator(".badge", has_text="shared")).to_have_count(0)

    # Sorting by size (largest first) swaps the table in place; equal sizes fall back to the tag name, reversed.
    page.locator("#tags thead").get_by_role("link", name="Size").click()
    expect(page.locator("#tags th", has_text="Size")).to_have_attribute("aria-sort", "descending")
    expect(tags).to_have_text(["latest", "1.10.0", "1.2.0", "1.0.0"])
    expect(page).to_have_url(re.compile(r"sort=size&dir=desc"))

    # The tag page: digest, pull command, labels and layers.
    page.get_by_role("link", name="1.10.0", exact=True).click()
    expect(page.get_by_role("heading", name="shop/api:1.10.0", level=1)).to_be_visible()
    expect(page.get_by_label("Digest", exact=True)).to_have_value(registry_fixtures.api_digest)
    expect(page.get_by_label("Pull by tag")).to_have_value(f"docker pull 127.0.0.1:{registry.port}/shop/api:1.10.0")
    expect(page.get_by_label("Pull by digest")).to_have_value(
        f"docker pull 127.0.0.1:{registry.port}/shop/api@{registry_fixtures.api_digest}"
    )
    labels = page.locator("table").filter(has=page.get_by_role("columnheader", name="Label"))
    expect(labels.locator("tbody tr")).to_have_text([re.compile(r"org\.opencontainers\.image\.version\s*1\.10\.0")])
    layers = page.locator("table").filter(has=page.get_by_role("columnheader", name="Share"))
    expect(layers.locator("tbody tr")).to_have_count(2)
    expect(layers.locator("tbody tr").first.locator(".digest")).to_have_text(re.compile(r"^sha256:[0-9a-f]{64}$"))
    expect(page.locator(".kv").first).to_contain_text("Also tagged")

    page.screenshot(path=str(SCREENSHOT), full_page=True)
    assert page.problems == []
