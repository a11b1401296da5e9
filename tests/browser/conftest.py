"""Fixtures for the real-browser tests: Debian's Chromium driven by the PyPI ``playwright``.

Chromium is the system one (``scripts/install_chromium.sh``), launched with the flags verified in
``shared/notes/browser-tests.md``. When Chromium or Playwright is missing the browser tests are
skipped with the reason, so ``make test`` stays green on a machine without them; with
``RAWWS_BROWSER_TESTS=require`` (``make test-browser``, CI) a missing piece fails instead.

Each page records uncaught script errors and Content-Security-Policy violations; a test fails
if its pages had any. A failing test leaves a screenshot of each of its pages in
``tests/artifacts/failures/``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from .helpers import BOUND_MS

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, Page

CHROMIUM = os.environ.get("RAWWS_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--no-sandbox",  # root on CI machines: the sandbox must be off
    "--disable-gpu",
    "--disable-background-networking",  # else Chromium keeps trying hosts it cannot reach
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
DESKTOP = {"width": 1280, "height": 800}
NARROW = {"width": 390, "height": 844}


def missing_piece() -> str | None:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return ("the Python package playwright is not installed "
                "(make test-browser installs it: pip install -e '.[browser]')")
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        return (f"Chromium not found at {CHROMIUM} "
                "(make test-browser installs it: scripts/install_chromium.sh)")
    return None


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """One Chromium per test module (Playwright is stopped between modules, so it never
    overlaps the event loops of the asyncio tests)."""
    reason = missing_piece()
    if reason is not None:
        if os.environ.get("RAWWS_BROWSER_TESTS") == "require":
            pytest.fail(f"browser tests required but {reason}", pytrace=False)
        pytest.skip(f"browser tests skipped: {reason}")
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=BOUND_MS)
    playwright = sync_playwright().start()
    try:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS,
                                              timeout=60_000)
        try:
            yield chromium
        finally:
            chromium.close()
    finally:
        playwright.stop()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if report.when == "call":
        item.stash[_FAILED] = report.failed
    return report


_FAILED = pytest.StashKey[bool]()


class Pages:
    """Opens pages, each in its own browser context (its own cookies and storage: a separate
    person), and watches them for script errors and CSP violations."""

    def __init__(self, browser: Browser) -> None:
        self.browser = browser
        self.contexts: list[BrowserContext] = []
        self.pages: list[Page] = []
        self.problems: list[str] = []

    def open(self, url: str, *, viewport: dict[str, int] | None = None) -> Page:
        context = self.browser.new_context(viewport=viewport or DESKTOP)
        context.set_default_timeout(BOUND_MS)
        self.contexts.append(context)
        page = context.new_page()
        self.pages.append(page)
        page.on("pageerror", lambda error: self.problems.append(f"page error: {error}"))
        page.on("console", self._console)
        page.goto(url)
        return page

    def _console(self, message: Any) -> None:
        text = message.text
        if re.search(r"Content Security Policy|Refused to (execute|apply|load|connect)", text):
            self.problems.append(f"CSP violation: {text}")

    def close(self, failed: bool, name: str) -> None:
        if failed:
            folder = ARTIFACTS / "failures"
            folder.mkdir(parents=True, exist_ok=True)
            for i, page in enumerate(self.pages):
                if not page.is_closed():
                    try:
                        page.screenshot(path=str(folder / f"{name}-{i}.png"))
                    except Exception as exc:  # a screenshot must never hide the failure
                        print(f"screenshot of page {i} failed: {exc}")
        for context in self.contexts:
            context.close()


@pytest.fixture
def pages(browser: Browser, request: pytest.FixtureRequest) -> Iterator[Pages]:
    opened = Pages(browser)
    yield opened
    failed = request.node.stash.get(_FAILED, False)
    opened.close(failed, re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name))
    if not failed:
        assert not opened.problems, "\n".join(opened.problems)


@pytest.fixture
def artifacts() -> Callable[[str], Path]:
    def path(name: str) -> Path:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        return ARTIFACTS / name
    return path
