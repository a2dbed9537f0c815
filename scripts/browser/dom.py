#!/usr/bin/env python3
"""Loads a page in headless Chromium and prints its DOM once each condition holds.

Usage: dom.py URL CONDITION [CONDITION ...]

Each CONDITION is a JavaScript expression evaluated in the page until it is true (at most
20 s each, else exit 1). When one holds, the DOM is printed as one JSON string on a line of
its own; before waiting for the next condition a line is read from stdin, so the caller can
change something between two looks at the page (api/tests/api/browser.rs). With LB_SCREENSHOT
set to a path, a PNG of the page (1280x900) is written there once the last condition holds.

Chromium is driven over the DevTools protocol on a pipe (--remote-debugging-pipe: fd 3 in,
fd 4 out, messages ended by NUL), with the standard library alone. Unlike --dump-dom with a
virtual time budget, this works with pages that hold a stream open (EventSource): a pending
request would keep virtual time from ever running out.
"""

import base64
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

DEADLINE_S = 20


class Browser:
    def __init__(self, chromium):
        self.profile = tempfile.mkdtemp(prefix="lb-chromium-")
        to_child_r, self.to_child = os.pipe()
        self.from_child, from_child_w = os.pipe()

        def fds():
            os.dup2(to_child_r, 3)
            os.dup2(from_child_w, 4)

        self.proc = subprocess.Popen(
            [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
             "--remote-debugging-pipe", f"--user-data-dir={self.profile}", "about:blank"],
            preexec_fn=fds, pass_fds=(3, 4), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(to_child_r)
        os.close(from_child_w)
        self.buffer = b""
        self.next_id = 0

    def call(self, method, params=None, session=None):
        self.next_id += 1
        message = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self.to_child, json.dumps(message).encode() + b"\0")
        while True:
            while b"\0" not in self.buffer:
                chunk = os.read(self.from_child, 1 << 16)
                if not chunk:
                    raise RuntimeError("chromium closed the DevTools pipe")
                self.buffer += chunk
            raw, self.buffer = self.buffer.split(b"\0", 1)
            reply = json.loads(raw)
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})

    def close(self):
        try:
            self.call("Browser.close")
        except (RuntimeError, OSError):
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        shutil.rmtree(self.profile, ignore_errors=True)


def main():
    url, conditions = sys.argv[1], sys.argv[2:]
    browser = Browser(os.environ.get("LB_CHROMIUM", "chromium"))
    try:
        target = browser.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = browser.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        browser.call("Page.navigate", {"url": url}, session)
        for i, condition in enumerate(conditions):
            if i > 0:
                sys.stdin.readline()
            deadline = time.monotonic() + DEADLINE_S
            while True:
                held = browser.call("Runtime.evaluate",
                                    {"expression": f"Boolean({condition})", "returnByValue": True}, session)
                if held.get("result", {}).get("value") is True:
                    break
                if time.monotonic() > deadline:
                    dom = browser.call("Runtime.evaluate", {"expression": "document.documentElement.outerHTML",
                                                            "returnByValue": True}, session)
                    print(f"never held within {DEADLINE_S} s: {condition}\n{dom['result'].get('value')}",
                          file=sys.stderr)
                    return 1
                time.sleep(0.05)
            dom = browser.call("Runtime.evaluate",
                               {"expression": "document.documentElement.outerHTML", "returnByValue": True}, session)
            print(json.dumps(dom["result"]["value"]), flush=True)
        if os.environ.get("LB_SCREENSHOT"):
            browser.call("Emulation.setDeviceMetricsOverride",
                         {"width": 1280, "height": 900, "deviceScaleFactor": 1, "mobile": False}, session)
            shot = browser.call("Page.captureScreenshot", {"format": "png"}, session)
            with open(os.environ["LB_SCREENSHOT"], "wb") as f:
                f.write(base64.b64decode(shot["data"]))
        return 0
    finally:
        browser.close()


if __name__ == "__main__":
    sys.exit(main())
