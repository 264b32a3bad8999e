"""Headless Chromium driven over the DevTools protocol on a pipe (`--remote-debugging-pipe`: requests on fd 3,
answers on fd 4, NUL-separated JSON), so no websocket client and no port are needed.

`render(url)` loads a page and returns its DOM's text and HTML, a PNG screenshot and every console message,
uncaught exception and browser log entry (`Runtime.consoleAPICalled`, `Runtime.exceptionThrown`,
`Log.entryAdded`: CSP violations, failed loads, …) seen from before navigation until the load event."""
from __future__ import annotations

import base64
import fcntl
import json
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field

FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--remote-debugging-pipe", "--hide-scrollbars", "--mute-audio")


def chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


@dataclass
class Rendered:
    text: str
    html: str
    screenshot: bytes
    console: list[dict] = field(default_factory=list)      # {"source", "level", "text"}
    values: dict = field(default_factory=dict)             # what extra expressions evaluated to
    pdf: bytes = b""                                       # the page printed (Page.printToPDF), when asked


class Browser:
    def __init__(self, binary: str, width: int = 1280, height: int = 900, timeout: float = 60.0):
        self.profile = tempfile.mkdtemp(prefix="rkdeploy-chromium-")
        self.timeout = timeout
        to_child_r, self._to_child = os.pipe()
        self._from_child, from_child_w = os.pipe()
        # above 4 in this process, so that the child's dup2 onto 3 and 4 cannot overwrite one with the other
        child_r, child_w = (fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10) for fd in (to_child_r, from_child_w))
        os.close(to_child_r)
        os.close(from_child_w)

        def fds():          # the protocol's fds in the child: 3 (commands in), 4 (answers out)
            os.dup2(child_r, 3)
            os.dup2(child_w, 4)

        try:
            self.proc = subprocess.Popen([binary, *FLAGS, f"--user-data-dir={self.profile}",
                                          f"--window-size={width},{height}", "about:blank"],
                                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                         close_fds=False, preexec_fn=fds)
            # close_fds=False: it would close 3 and 4 after preexec_fn; every other fd of this process is
            # close-on-exec already (Python's default), so chromium inherits only 0-4
        finally:
            os.close(child_r)
            os.close(child_w)
        self._buf = b""
        self._id = 0
        self.events: list[dict] = []

    def _read(self, deadline: float) -> dict:
        import select
        while b"\0" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("chromium did not answer in time")
            ready, _, _ = select.select([self._from_child], [], [], left)
            if ready:
                chunk = os.read(self._from_child, 1 << 20)
                if not chunk:
                    raise RuntimeError("chromium closed the DevTools pipe: "
                                       + (self.proc.stderr.read(4000).decode(errors="replace") if self.proc.poll()
                                          is not None else ""))
                self._buf += chunk
        message, self._buf = self._buf.split(b"\0", 1)
        return json.loads(message)

    def send(self, method: str, params: dict | None = None, session: str | None = None) -> dict:
        self._id += 1
        request = {"id": self._id, "method": method, "params": params or {}}
        if session:
            request["sessionId"] = session
        os.write(self._to_child, json.dumps(request).encode() + b"\0")
        deadline = time.monotonic() + self.timeout
        while True:
            message = self._read(deadline)
            if message.get("id") == self._id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})
            self.events.append(message)

    def wait_for(self, method: str, session: str) -> dict:
        deadline = time.monotonic() + self.timeout
        for event in self.events:
            if event.get("method") == method and event.get("sessionId") == session:
                return event
        while True:
            message = self._read(deadline)
            self.events.append(message)
            if message.get("method") == method and message.get("sessionId") == session:
                return message

    def render(self, url: str, expressions: dict[str, str] | None = None, *, dark: bool = False,
               pdf: bool = False) -> Rendered:
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Log"):
            self.send(f"{domain}.enable", session=session)
        self.send("Emulation.setEmulatedMedia", {"features": [
            {"name": "prefers-color-scheme", "value": "dark" if dark else "light"}]}, session=session)
        self.events.clear()
        self.send("Page.navigate", {"url": url}, session=session)
        self.wait_for("Page.loadEventFired", session)
        evaluate = lambda expr: self.send("Runtime.evaluate", {"expression": expr, "returnByValue": True},  # noqa: E731
                                          session=session).get("result", {}).get("value")
        text = evaluate("document.body.innerText")
        html = evaluate("document.documentElement.outerHTML")
        values = {name: evaluate(expr) for name, expr in (expressions or {}).items()}
        shot = self.send("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True}, session=session)
        printed = base64.b64decode(self.send("Page.printToPDF", {}, session=session)["data"]) if pdf else b""
        time.sleep(0.2)                       # late console messages (after load) still arrive
        self.send("Runtime.evaluate", {"expression": "1"}, session=session)
        console = []
        for event in self.events:
            if event.get("sessionId") != session:
                continue
            params = event.get("params", {})
            if event.get("method") == "Runtime.consoleAPICalled":
                console.append({"source": "console", "level": params.get("type"),
                                "text": " ".join(str(a.get("value", a.get("description", ""))) for a in params.get("args", []))})
            elif event.get("method") == "Runtime.exceptionThrown":
                details = params.get("exceptionDetails", {})
                console.append({"source": "exception", "level": "error",
                                "text": details.get("exception", {}).get("description") or details.get("text", "")})
            elif event.get("method") == "Log.entryAdded":
                entry = params.get("entry", {})
                console.append({"source": entry.get("source"), "level": entry.get("level"), "text": entry.get("text")})
        self.send("Target.closeTarget", {"targetId": target})
        return Rendered(text or "", html or "", base64.b64decode(shot["data"]), console, values, printed)

    def close(self) -> None:
        try:
            self.send("Browser.close")
        except Exception:  # noqa: BLE001 - it may be gone already
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        for fd in (self._to_child, self._from_child):
            try:
                os.close(fd)
            except OSError:
                pass
        if self.proc.stderr:
            self.proc.stderr.close()
        shutil.rmtree(self.profile, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
