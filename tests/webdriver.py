"""A minimal W3C WebDriver client over plain HTTP to a local chromedriver, for the headless browser tests.

Debian's ``chromium`` and ``chromium-driver`` packages give ``/usr/bin/chromium`` and
``/usr/bin/chromedriver``; :func:`start_browser` skips the calling test with the install command when
they are missing, and with the reason when an installed Chromium cannot start here.
"""

from __future__ import annotations

import base64
import http.client
import json
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")


class WebDriver:
    """The few W3C WebDriver calls the tests need, over plain HTTP to a local chromedriver.

    Args:
        browser_log: also record the browser's console (``goog:loggingPrefs``), read with :meth:`browser_log`.
    """

    def __init__(self, browser_log: bool = False) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.proc = subprocess.Popen([str(CHROMEDRIVER), f"--port={self.port}"], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)  # fmt: skip
        self.session = ""
        try:
            self._start(browser_log)
        except BaseException:
            self.close()
            raise

    def _start(self, browser_log: bool) -> None:
        deadline = time.monotonic() + 20
        while True:
            try:
                if self.call("GET", "/status")["ready"]:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError("chromedriver did not start")
            time.sleep(0.1)
        args = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--autoplay-policy=no-user-gesture-required", "--allow-file-access-from-files"]  # fmt: skip
        always: dict[str, Any] = {"goog:chromeOptions": {"binary": str(CHROMIUM), "args": args}}
        if browser_log:
            always["goog:loggingPrefs"] = {"browser": "ALL"}
        self.session = self.call("POST", "/session", {"capabilities": {"alwaysMatch": always}})["sessionId"]

    def call(self, method: str, path: str, body: Any = None) -> Any:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            conn.request(method, path, body=json.dumps(body) if body is not None else None,
                         headers={"Content-Type": "application/json"})  # fmt: skip
            data = json.loads(conn.getresponse().read())
        finally:
            conn.close()
        value = data.get("value")
        if isinstance(value, dict) and "error" in value:
            raise RuntimeError(f"webdriver: {value['error']}: {value.get('message', '')[:300]}")
        return value

    def s(self, method: str, path: str, body: Any = None) -> Any:
        return self.call(method, f"/session/{self.session}{path}", body)

    def js(self, script: str) -> Any:
        return self.s("POST", "/execute/sync", {"script": script, "args": []})

    def wait(self, script: str, timeout: float = 20) -> Any:
        deadline = time.monotonic() + timeout
        while not (value := self.js(script)):
            if time.monotonic() > deadline:
                raise TimeoutError(f"timed out waiting for: {script}")
            time.sleep(0.1)
        return value

    def click(self, css: str) -> None:
        found = self.s("POST", "/element", {"using": "css selector", "value": css})
        assert isinstance(found, dict) and len(found) == 1, found
        element = next(iter(found.values()))
        self.s("POST", f"/element/{element}/click", {})

    def key(self, key: str) -> None:
        keys = [{"type": "keyDown", "value": key}, {"type": "keyUp", "value": key}]
        self.s("POST", "/actions", {"actions": [{"type": "key", "id": "keyboard", "actions": keys}]})

    def browser_log(self) -> list[dict[str, Any]]:
        """Console entries since the last call (``level``, ``message``); needs ``browser_log=True``."""
        return self.s("POST", "/se/log", {"type": "browser"})

    def screenshot(self, path: str | Path, width: int = 1200, max_height: int = 8000) -> Path:
        """Save a PNG of the whole page (the window is resized to the page's height, up to ``max_height``)."""
        height = int(self.js("return document.documentElement.scrollHeight"))
        self.s("POST", "/window/rect", {"width": width, "height": min(max(height, 600), max_height)})
        path = Path(path)
        path.write_bytes(base64.b64decode(self.s("GET", "/screenshot")))
        return path

    def close(self) -> None:
        try:
            if self.session:
                self.call("DELETE", f"/session/{self.session}")
        finally:
            self.proc.terminate()
            self.proc.wait(10)


def start_browser(browser_log: bool = False) -> WebDriver:
    """A headless Chromium session, or skip the test saying what is missing or why it cannot start."""
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    if missing:
        pytest.skip(f"headless browser test needs {' and '.join(missing)}: `apt-get install chromium chromium-driver`")
    try:
        return WebDriver(browser_log=browser_log)
    except (OSError, RuntimeError) as err:  # installed but unable to start here (sandbox, missing libraries, ...)
        pytest.skip(f"headless Chromium could not start: {err}")
