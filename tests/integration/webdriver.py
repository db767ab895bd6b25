"""A headless Chromium driven through chromedriver's W3C WebDriver HTTP API
with urllib alone (no selenium): just what the status page test needs.

chromedriver runs in a session of its own on a free loopback port; the
browser is its child. stop() ends the WebDriver session (which closes the
browser), then stops chromedriver and every process it left behind, each by
the PID recorded while it ran: never by name.
"""

import base64
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

import harness

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
ELEMENT_KEY = "element-6066-11e4-a52e-4f735466cecf"  # the W3C web element reference


class WebDriverError(Exception):
    def __init__(self, status, value):
        self.error = value.get("error", "") if isinstance(value, dict) else ""
        super().__init__(f"WebDriver {status}: {value}")


def available():
    return os.access(CHROMIUM, os.X_OK) and os.access(CHROMEDRIVER, os.X_OK)


def descendants_of(pid):
    """Every live process below `pid`, children first found first."""
    found, queue = [], [pid]
    while queue:
        for child in harness.children_of(queue.pop()):
            found.append(child)
            queue.append(child)
    return found


def is_chromium(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return b"chrom" in f.read()
    except OSError:
        return False


class Browser:
    def __init__(self, width=1400, height=600):
        self.profile = tempfile.mkdtemp(prefix="fpmr-chromium-")
        self.port = harness.free_port()
        self.log = open(os.path.join(self.profile, "chromedriver.log"), "w")
        self.driver = subprocess.Popen(
            [CHROMEDRIVER, f"--port={self.port}", "--allowed-ips=127.0.0.1"],
            stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT,
            start_new_session=True)
        self.session = None
        self.known_pids = set()
        try:
            harness.wait_for(self._driver_ready, 10, interval=0.1, what="chromedriver to answer")
            value = self._call("POST", "/session", {"capabilities": {"alwaysMatch": {
                "browserName": "chrome",
                "goog:loggingPrefs": {"browser": "ALL"},
                "goog:chromeOptions": {
                    "binary": CHROMIUM,
                    # As root in a container: no sandbox; no GPU, no /dev/shm.
                    "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                             "--disable-dev-shm-usage", f"--user-data-dir={self.profile}/profile",
                             f"--window-size={width},{height}", "--no-first-run",
                             "--disable-background-networking", "--disable-extensions"],
                },
            }}}, session=False)
            self.session = value["sessionId"]
            self._record_pids()
        except BaseException:
            self.stop()
            raise

    # --- the protocol --------------------------------------------------------
    def _driver_ready(self):
        if self.driver.poll() is not None:
            raise RuntimeError("chromedriver exited; see " + self.log.name)
        try:
            return self._call("GET", "/status", session=False, timeout=1).get("ready")
        except (OSError, WebDriverError):
            return False

    def _call(self, method, path, body=None, session=True, timeout=15):
        url = f"http://127.0.0.1:{self.port}" + (f"/session/{self.session}" if session else "") + path
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(url, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                return json.loads(resp.read() or b"{}").get("value")
        except urllib.error.HTTPError as e:
            raise WebDriverError(e.code, json.loads(e.read() or b"{}").get("value")) from None

    def _record_pids(self):
        self.known_pids.update(descendants_of(self.driver.pid))

    # --- what the tests use ----------------------------------------------------
    def get(self, url):
        self._call("POST", "/url", {"url": url})
        self._record_pids()

    def title(self):
        return self._call("GET", "/title")

    def execute(self, script, *args):
        return self._call("POST", "/execute/sync", {"script": script, "args": list(args)})

    def find(self, css):
        """The first element matching `css` (its WebDriver id), or None."""
        try:
            return self._call("POST", "/element", {"using": "css selector", "value": css})[ELEMENT_KEY]
        except WebDriverError as e:
            if e.error == "no such element":
                return None
            raise

    def text(self, element):
        return self._call("GET", f"/element/{element}/text")

    def displayed(self, element):
        return self._call("GET", f"/element/{element}/displayed")

    def click(self, element):
        self._call("POST", f"/element/{element}/click", {})

    def wait_find(self, css, timeout=10):
        return harness.wait_for(lambda: self.find(css), timeout, interval=0.1, what=f"element {css}")

    def click_when_ready(self, css, timeout=10):
        """Finds and clicks `css`, again if the page reloaded in between
        (the status page reloads itself every few seconds)."""
        def attempt():
            element = self.find(css)
            if not element:
                return False
            try:
                self.click(element)
                return True
            except WebDriverError as e:
                if e.error in ("stale element reference", "element not interactable",
                               "element click intercepted"):
                    return False
                raise
        harness.wait_for(attempt, timeout, interval=0.1, what=f"a click on {css}")

    def alert_text(self):
        """The text of the open alert or confirm dialog, or None."""
        try:
            return self._call("GET", "/alert/text")
        except WebDriverError as e:
            if e.error == "no such alert":
                return None
            raise

    def dismiss_alert(self):
        self._call("POST", "/alert/dismiss", {})

    def console_log(self):
        """The browser's console entries since the last call (chromedriver's
        log endpoint): CSP violations are reported there."""
        try:
            return self._call("POST", "/se/log", {"type": "browser"}) or []
        except WebDriverError:
            return self._call("POST", "/log", {"type": "browser"}) or []

    def screenshot(self, path):
        with open(path, "wb") as f:
            f.write(base64.b64decode(self._call("GET", "/screenshot")))

    # --- teardown ------------------------------------------------------------
    def stop(self):
        if self.driver.poll() is None:
            self._record_pids()
        if self.session:
            try:
                self._call("DELETE", "", timeout=10)
            except (OSError, WebDriverError):
                pass
            self.session = None
        if self.driver.poll() is None:
            self.driver.send_signal(signal.SIGTERM)
            try:
                self.driver.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.driver.kill()
                self.driver.wait(timeout=5)
        # What the browser left behind (renderers, zygotes), by recorded PID.
        # A recorded PID is killed only while it still is a Chromium process
        # (not one that reused the number).
        for pid in self.known_pids:
            if harness.pid_alive(pid) and is_chromium(pid):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and any(harness.pid_alive(p) and is_chromium(p) for p in self.known_pids):
            time.sleep(0.05)
        self.log.close()
        shutil.rmtree(self.profile, ignore_errors=True)
