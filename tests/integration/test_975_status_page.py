"""The status page for people: a browser (Accept: text/html, or ?format=html)
gets one self-contained HTML page under a strict Content-Security-Policy,
and its Drain / Undrain buttons work from a real headless Chromium, through
the same nonce and same-origin checks as the CLI.

FPMR_STATUS_SCREENSHOT=/path.png also saves the browser's screenshot of the
page with replica a drained (docs/status-page.png is made that way)."""

import os
import re
import shutil
import tempfile
import threading

import pytest

import harness
from conftest import TEST_ROOT_BASE
import webdriver
from releases import flip, make_release
from test_200_steering import start_two
from vhosts import pinned_vhost

STATUS = "/fpm-replica-status"
CHROMIUM_ACCEPT = ("text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,"
                   "image/webp,image/apng,*/*;q=0.8")


def csp_nonce_of(response):
    policy = response.headers["Content-Security-Policy"]
    m = re.fullmatch(r"default-src 'none'; script-src 'nonce-([0-9a-f]{32})'; "
                     r"style-src 'nonce-\1'; connect-src 'self'; img-src 'none'; "
                     r"base-uri 'none'; form-action 'none'; frame-ancestors 'none'", policy)
    assert m, policy
    return m.group(1)


def test_format_and_accept_choose_html_json_stays_the_default(httpd):
    start_two(httpd)
    pages = [httpd.get(STATUS + "?format=html"),
             httpd.get(STATUS, headers={"Accept": "text/html"}),
             httpd.get(STATUS, headers={"Accept": CHROMIUM_ACCEPT})]
    nonces = set()
    for page in pages:
        assert page.status == 200
        assert page.headers["Content-Type"] == "text/html; charset=utf-8"
        assert page.headers["X-Content-Type-Options"] == "nosniff"
        assert page.headers["Cache-Control"] == "no-store"
        assert page.headers["Referrer-Policy"] == "same-origin"
        assert "Accept" in page.headers["Vary"]
        nonce = csp_nonce_of(page)
        assert f'<script nonce="{nonce}">' in page.text and f'<style nonce="{nonce}">' in page.text
        assert f'data-control-nonce="{httpd.status()["nonce"]}"' in page.text
        nonces.add(nonce)
    assert len(nonces) == 3  # a fresh CSP nonce per response
    for headers in ({}, {"Accept": "*/*"}, {"Accept": "application/json"}):
        r = httpd.get(STATUS, headers=headers)
        assert r.headers["Content-Type"] == "application/json", headers
        assert [rep["name"] for rep in r.json()["replicas"]] == ["a", "b"]
    assert httpd.get(STATUS + "?format=json",
                     headers={"Accept": "text/html"}).headers["Content-Type"] == "application/json"
    assert httpd.get(STATUS + "?format=prometheus").headers["Content-Type"].startswith("text/plain")


@pytest.fixture
def browser():
    if not webdriver.available():
        pytest.fail("headless Chromium is needed: apt-get install chromium chromium-driver")
    b = webdriver.Browser()
    try:
        yield b
    finally:
        b.stop()


def admin_of(httpd, name):
    return httpd.replica(name)["admin"]


@pytest.fixture
def app_root():
    """A short path for the application (it shows on the page and in its
    screenshot), beside the test roots."""
    os.makedirs(TEST_ROOT_BASE, exist_ok=True)
    root = tempfile.mkdtemp(prefix="app-", dir=TEST_ROOT_BASE)
    os.chmod(root, 0o755)
    yield root
    shutil.rmtree(root, ignore_errors=True)


def start_pinned(httpd, root):
    """Two replicas serving the release behind ROOT/current (so the page has
    release paths to show)."""
    make_release(root, "r1")
    flip(root, "releases/r1")
    httpd.write_config(pinned_vhost(httpd, root))
    httpd.start_fpm("a")
    httpd.start_fpm("b")
    httpd.start()


def test_buttons_drain_and_undrain_from_a_real_browser(app_root, httpd, browser):
    start_pinned(httpd, app_root)
    for _ in range(6):
        assert httpd.get("/version.php").status == 200  # some requests to count
    browser.get(httpd.url(STATUS))
    assert browser.title() == f"fpm-replica: app.test:{httpd.port}"
    assert browser.text(browser.wait_find("h1 .vhost")) == f"app.test:{httpd.port}"
    for name in ("a", "b"):
        row = browser.wait_find(f'tr[data-replica="{name}"]')
        assert browser.displayed(row)
        assert browser.text(row).startswith(name)

    # The script runs (its CSP nonce matched) and passes the handler's Host,
    # Origin and nonce checks: the click drains a.
    browser.click_when_ready('button[data-action="drain"][data-replica="a"]:not([disabled])')
    harness.wait_for(lambda: admin_of(httpd, "a") == "drained", 10, interval=0.1,
                     what="replica a drained by the page's button")
    assert admin_of(httpd, "b") == "active"
    # After the reload the page says what happened and offers Undrain.
    harness.wait_for(lambda: "drain a: 200" in browser.text(browser.wait_find("#message")), 10,
                     interval=0.1, what="the page to report the drain")
    browser.wait_find('tr[data-replica="a"] .admin-drained')

    screenshot = os.environ.get("FPMR_STATUS_SCREENSHOT")
    if screenshot:
        take_screenshot(httpd, browser, screenshot)

    # Draining b too would leave nothing to serve: the page asks first, and
    # a dismissed question sends nothing.
    browser.click_when_ready('button[data-action="drain"][data-replica="b"]:not([disabled])')
    question = harness.wait_for(browser.alert_text, 10, interval=0.1, what="the page's question")
    assert "last active replica" in question
    browser.dismiss_alert()
    assert admin_of(httpd, "b") == "active"

    browser.click_when_ready('button[data-action="undrain"][data-replica="a"]:not([disabled])')
    harness.wait_for(lambda: admin_of(httpd, "a") == "active", 10, interval=0.1,
                     what="replica a undrained by the page's button")

    violations = [e for e in browser.console_log()
                  if "Content Security Policy" in e.get("message", "")]
    assert violations == [], violations


def take_screenshot(httpd, browser, path):
    """The page as an operator sees it mid-traffic: a drained, b serving a
    slow request (its in-flight bar full)."""
    slow = threading.Thread(target=lambda: httpd.get("/slow.php?ms=2500", timeout=20))
    slow.start()
    try:
        harness.wait_for(lambda: httpd.replica("b")["in_flight"] == 1, 5, what="b busy")
        browser.get(httpd.url(STATUS))
        browser.wait_find('tr[data-replica="b"] meter[value="1"]')
        browser.screenshot(path)
    finally:
        slow.join()
