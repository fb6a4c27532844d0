"""A real Chromium (Debian's, driven by Playwright) for the tests that look at pages as a person would.

Playwright's sync API marks an asyncio loop as running in the thread that uses it, for as long as it lives.
Django then refuses ORM calls in that thread (SynchronousOnlyOperation), and pytest-django makes them there
(creating the test database, flushing it after a transactional test). So the browser lives in a thread of
its own and each test hands its browser steps to that thread; the test's thread stays a plain sync thread.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import axe_playwright_python.base
import pytest

CHROMIUM = Path("/usr/bin/chromium")
# axe-core, as the axe-playwright-python wheel ships it: injected as an init script, whatever the page's CSP.
AXE = axe_playwright_python.base.AXE_SCRIPT
SERIOUS = {"critical", "serious"}
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]

# Reports every CSP violation of every page to Python (init scripts run again after each navigation).
REPORT_CSP_VIOLATIONS = """
document.addEventListener("securitypolicyviolation", (event) => {
  window.reportCspViolation(
    `${event.violatedDirective} blocked ${event.blockedURI || "inline code"} at ${event.sourceFile}:${event.lineNumber}`
  );
});
"""


class BrowserThread:
    """A headless Chromium owned by one thread; `run` executes browser steps in that thread."""

    def __init__(self) -> None:
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="playwright")
        self._thread.submit(self._start).result()

    def _start(self) -> None:
        from playwright.sync_api import expect, sync_playwright

        expect.set_options(timeout=10_000)  # as the actions' timeout below: room for a slow CI machine
        self._playwright = sync_playwright().start()
        self.browser = self._playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)

    def _stop(self) -> None:
        self.browser.close()
        self._playwright.stop()

    def run(
        self, steps: Callable, /, cookies: list[dict] = (), scripts: list[str] = (), **context_options
    ) -> list[str]:
        """Run steps(page) on a fresh page; returns the console errors, page errors and CSP violations seen.
        `context_options` go to Playwright's new_context (viewport, color_scheme, java_script_enabled, …);
        `cookies` are set before the first page opens; `scripts` run in every page before its own (as
        Playwright's init scripts do, whatever the page's CSP)."""

        def in_browser_thread() -> list[str]:
            options = {"locale": "en-US", "viewport": {"width": 1280, "height": 900}, **context_options}
            context = self.browser.new_context(**options)
            context.set_default_timeout(10_000)
            if cookies:
                context.add_cookies(list(cookies))
            for script in scripts:
                context.add_init_script(script)
            problems: list[str] = []
            try:
                page = context.new_page()
                page.on(
                    "console",
                    lambda message: (
                        message.type == "error"
                        and problems.append(f"console: {message.text} at {message.location.get('url', '?')}")
                    ),
                )
                page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
                page.expose_function("reportCspViolation", lambda text: problems.append(f"CSP violation: {text}"))
                page.add_init_script(REPORT_CSP_VIOLATIONS)
                steps(page)
            finally:
                context.close()
            return problems

        return self._thread.submit(in_browser_thread).result()

    def close(self) -> None:
        try:
            self._thread.submit(self._stop).result()
        finally:
            self._thread.shutdown()


@pytest.fixture(scope="session")
def chromium():
    """One headless Chromium for the session, launched as this machine requires (never `playwright install`)."""
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing: apt-get install chromium (CI installs it)")
    browser = BrowserThread()
    yield browser
    browser.close()


# Words of English that are not words of Spanish: one of them on a Spanish page is a string left untranslated.
ENGLISH = """
the and of with this that from which will have has are were been tag tags image images delete deleted repository
repositories page size created pushed used free freed storage layer layers collect collection sign users search
refresh copy newest oldest older than you your its not all none only when what why how there here yet back next
previous show shown choose selected selection keep kept run running done failed queued waiting unknown settings
theme system light dark language menu home
"""
ENGLISH_WORDS = frozenset(ENGLISH.split())
PUNCTUATION = ".,:;!?¡¿()[]«»\"'…—–"
# What a page shows but nobody translates: code, digests, names from the registry, the registry's own words.
NOT_TRANSLATED = "code, pre, kbd, samp, script, style, noscript, template, .mono, .digest, [translate=no]"
READ_TEXT = """(skip) => {
  const texts = [document.title];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  while (walker.nextNode()) {
    const parent = walker.currentNode.parentElement;
    if (parent && !parent.closest(skip) && walker.currentNode.textContent.trim()) {
      texts.push(walker.currentNode.textContent.trim());
    }
  }
  for (const element of document.body.querySelectorAll("[title], [placeholder], [aria-label], [alt]")) {
    if (element.closest(skip)) continue;
    for (const name of ["title", "placeholder", "aria-label", "alt"]) {
      if (element.getAttribute(name)) texts.push(element.getAttribute(name));
    }
  }
  return texts;
}"""


def english_on_page(page) -> list[str]:
    """The texts of a (Spanish) page, hidden ones and those read aloud included, that have an English word."""
    found = []
    for text in page.evaluate(READ_TEXT, NOT_TRANSLATED):
        # Words only: "retention_run", "GC_BRIDGE=none" or "no-such-tag" are names, not English.
        words = {word.lower() for word in (token.strip(PUNCTUATION) for token in text.split()) if word.isalpha()}
        if words & ENGLISH_WORDS:
            found.append(" ".join(text.split())[:120])
    return found


def serious_violations(page) -> list[str]:
    """What axe-core (injected into every page by run(scripts=[AXE])) finds, critical and serious only."""
    results = page.evaluate("axe.run({resultTypes: ['violations']})")
    return [
        f"{violation['id']} ({violation['impact']}): {violation['help']} at "
        + "; ".join(
            " ".join(node["target"]) + " " + node.get("failureSummary", "").replace("\n", " ")
            for node in violation["nodes"][:3]
        )
        for violation in results["violations"]
        if violation["impact"] in SERIOUS
    ]
