"""Headless Chromium driven over the DevTools protocol: screenshots and checks of a rendered report.

Used by ``harness report --screenshot`` and by the tests that open a report the way a reader does:
they need the console errors and every network request the page makes, which only the DevTools
protocol reports. The protocol runs over a WebSocket on loopback; the few frames it needs (masked
text out, text in, ping/pong, close) are done here with the standard library, so the harness takes
no dependency for it.

Chromium is Debian's ``chromium``. It is started with the flags that keep it off the network
(no background networking, component updates, sync, QUIC), a fresh temporary profile, and
``--remote-debugging-port=0``: it picks a free loopback port itself and writes it to
``DevToolsActivePort``, so two test sessions never collide::

    with Browser() as b:
        page = b.open(Path("report.html").resolve().as_uri())
        assert not page.console_errors and page.external_requests() == []
        b.screenshot(Path("front.png"), width=1280, height=1500)
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from harness.contracts.errors import BrowserError

__all__ = ["CHROMIUM_FLAGS", "Browser", "PageLoad", "find_chromium"]

CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-default-apps", "--disable-extensions", "--mute-audio", "--hide-scrollbars",
                  "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0")


def find_chromium() -> str:
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    raise BrowserError("headless Chromium is not installed (Debian package 'chromium'; scripts/setup.sh installs it)")


class _WebSocket:
    """Just enough RFC 6455 for a DevTools connection on loopback."""

    def __init__(self, host: str, port: int, path: str, timeout: float):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        key = base64.b64encode(secrets.token_bytes(16)).decode()
        self.sock.sendall((f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
                           f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n")
                          .encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise BrowserError("DevTools closed the connection during the WebSocket handshake")
            head += chunk
        status = head.split(b"\r\n", 1)[0]
        if b" 101 " not in status:
            raise BrowserError(f"DevTools refused the WebSocket: {status.decode(errors='replace')}")
        self.buf = head.split(b"\r\n\r\n", 1)[1]

    def _read(self, n: int) -> bytes:
        while len(self.buf) < n:
            chunk = self.sock.recv(max(65536, n - len(self.buf)))
            if not chunk:
                raise BrowserError("DevTools closed the connection")
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def _send_frame(self, opcode: int, payload: bytes) -> None:
        mask = secrets.token_bytes(4)
        n = len(payload)
        head = bytes([0x80 | opcode])
        if n < 126:
            head += bytes([0x80 | n])
        elif n < 65536:
            head += bytes([0x80 | 126]) + struct.pack(">H", n)
        else:
            head += bytes([0x80 | 127]) + struct.pack(">Q", n)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.sock.sendall(head + mask + masked)

    def send(self, text: str) -> None:
        self._send_frame(0x1, text.encode("utf-8"))

    def recv(self) -> str:
        parts: list[bytes] = []
        while True:
            b0, b1 = self._read(2)
            opcode, n = b0 & 0x0F, b1 & 0x7F
            if n == 126:
                n = struct.unpack(">H", self._read(2))[0]
            elif n == 127:
                n = struct.unpack(">Q", self._read(8))[0]
            mask = self._read(4) if b1 & 0x80 else b""
            data = self._read(n)
            if mask:
                data = bytes(b ^ mask[i % 4] for i, b in enumerate(data))
            if opcode == 0x9:
                self._send_frame(0xA, data)
                continue
            if opcode == 0x8:
                raise BrowserError("DevTools closed the WebSocket")
            if opcode in (0x0, 0x1, 0x2):
                parts.append(data)
                if b0 & 0x80:
                    return b"".join(parts).decode("utf-8", "replace")

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._send_frame(0x8, b"")
        self.sock.close()


@dataclass
class PageLoad:
    """What happened while a page loaded: console errors, exceptions, and every request it made."""

    url: str
    console_errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)

    def external_requests(self) -> list[str]:
        """Requests for anything but the page itself and ``data:`` URIs (i.e. anything that could go out)."""
        return [u for u in self.requests if u != self.url and not u.startswith("data:")]


class Browser:
    """One headless Chromium with one page, for the length of a ``with`` block."""

    def __init__(self, *, timeout: float = 30.0, chromium: str | None = None):
        self.timeout = timeout
        self.binary = chromium or find_chromium()
        self.proc: subprocess.Popen[bytes] | None = None
        self.profile = ""
        self.ws: _WebSocket | None = None
        self.session = ""
        self._id = 0
        self._events: list[dict[str, Any]] = []

    # ---- lifecycle --------------------------------------------------------------------------------
    def __enter__(self) -> Browser:
        self.profile = tempfile.mkdtemp(prefix="harness-chromium-")
        self.proc = subprocess.Popen([self.binary, *CHROMIUM_FLAGS, f"--user-data-dir={self.profile}", "about:blank"],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            port, path = self._devtools_address()
            self.ws = _WebSocket("127.0.0.1", port, path, self.timeout)
            target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
            self.session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
            for domain in ("Page", "Runtime", "Log", "Network"):
                self.call(f"{domain}.enable", session=True)
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def _devtools_address(self) -> tuple[int, str]:
        marker = Path(self.profile) / "DevToolsActivePort"
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise BrowserError(f"chromium exited at start (code {self.proc.returncode})")
            with contextlib.suppress(OSError, ValueError, IndexError):
                lines = marker.read_text().split("\n")
                if len(lines) >= 2 and lines[1].strip():
                    return int(lines[0]), lines[1].strip()
            time.sleep(0.05)
        raise BrowserError(f"chromium did not open its DevTools port within {self.timeout:.0f} s")

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self.ws is not None:
            with contextlib.suppress(BrowserError, OSError):
                self.call("Browser.close", timeout=3.0)
            self.ws.close()
            self.ws = None
        if self.proc is not None:
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)  # our own process group: chromium and its helpers
                self.proc.wait(timeout=5)
            self.proc = None
        if self.profile:
            shutil.rmtree(self.profile, ignore_errors=True)

    # ---- protocol ---------------------------------------------------------------------------------
    def call(self, method: str, params: dict[str, Any] | None = None, *, session: bool = False,
             timeout: float | None = None) -> dict[str, Any]:
        """Send one command and wait for its answer; events that arrive meanwhile are kept."""
        if self.ws is None:
            raise BrowserError("the browser is not running")
        self._id += 1
        msg: dict[str, Any] = {"id": self._id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = self.session
        self.ws.sock.settimeout(timeout or self.timeout)
        self.ws.send(json.dumps(msg))
        while True:
            try:
                reply = json.loads(self.ws.recv())
            except TimeoutError as exc:
                raise BrowserError(f"DevTools did not answer {method} in time") from exc
            if reply.get("id") == self._id:
                if "error" in reply:
                    raise BrowserError(f"DevTools {method}: {reply['error'].get('message')}")
                return dict(reply.get("result") or {})
            if "method" in reply:
                self._events.append(reply)

    def _pump(self, seconds: float) -> None:
        """Collect events for ``seconds`` (a quiet period after the load event)."""
        assert self.ws is not None
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            self.ws.sock.settimeout(left)
            try:
                self._events.append(json.loads(self.ws.recv()))
            except TimeoutError:
                break

    # ---- pages ------------------------------------------------------------------------------------
    def open(self, url: str, *, settle_s: float = 0.5, width: int = 1280, height: int = 900) -> PageLoad:
        """Load ``url``, wait for its load event and a quiet ``settle_s``; report errors and requests."""
        self.call("Emulation.setDeviceMetricsOverride", {"width": width, "height": height, "deviceScaleFactor": 1,
                                                         "mobile": False}, session=True)
        self._events.clear()
        self.call("Page.navigate", {"url": url}, session=True)
        deadline = time.monotonic() + self.timeout
        while not any(e.get("method") == "Page.loadEventFired" for e in self._events):
            if time.monotonic() > deadline:
                raise BrowserError(f"{url} did not finish loading within {self.timeout:.0f} s")
            self._pump(0.1)
        self._pump(settle_s)
        load = PageLoad(url=url)
        for e in self._events:
            p = e.get("params") or {}
            match e.get("method"):
                case "Network.requestWillBeSent":
                    load.requests.append(str(p.get("request", {}).get("url", "")))
                case "Runtime.exceptionThrown":
                    d = p.get("exceptionDetails") or {}
                    load.console_errors.append(str((d.get("exception") or {}).get("description") or d.get("text")))
                case "Runtime.consoleAPICalled" if p.get("type") in ("error", "assert"):
                    load.console_errors.append(" ".join(str(a.get("value", a.get("description", "")))
                                                        for a in p.get("args") or []))
                case "Log.entryAdded" if (p.get("entry") or {}).get("level") == "error":
                    entry = p["entry"]
                    load.console_errors.append(f"{entry.get('source')}: {entry.get('text')} {entry.get('url') or ''}")
        return load

    def evaluate(self, expression: str) -> Any:
        """The JSON value of a JavaScript expression evaluated in the page."""
        res = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True}, session=True)
        if "exceptionDetails" in res:
            raise BrowserError(f"script failed in the page: {res['exceptionDetails'].get('text')}")
        return (res.get("result") or {}).get("value")

    def screenshot(self, path: Path, *, width: int = 1280, height: int = 1500, selector: str = "") -> Path:
        """A PNG of ``width`` x ``height`` CSS pixels from the top of the page, or of the element ``selector``."""
        self.call("Emulation.setDeviceMetricsOverride", {"width": width, "height": height, "deviceScaleFactor": 1,
                                                         "mobile": False}, session=True)
        top = 0.0
        if selector:
            box = self.evaluate(f"(function(){{var e=document.querySelector({json.dumps(selector)});if(!e)return null;"
                                "var r=e.getBoundingClientRect();return [r.top+window.scrollY,r.height];})()")
            if box is None:
                raise BrowserError(f"no element matches {selector!r}")
            top, height = float(box[0]), int(box[1])
        else:
            self.evaluate("window.scrollTo(0, 0)")  # the clip is in page coordinates: show the top of the page
        self._pump(0.2)
        res = self.call("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": bool(selector),
                                                   "clip": {"x": 0, "y": top, "width": width, "height": height,
                                                            "scale": 1}},
                        session=True)
        path.write_bytes(base64.b64decode(res["data"]))
        return path

    def pdf(self, path: Path) -> Path:
        """The page printed to PDF (A4, backgrounds kept)."""
        res = self.call("Page.printToPDF", {"printBackground": True, "paperWidth": 8.27, "paperHeight": 11.69,
                                            "marginTop": 0.4, "marginBottom": 0.4, "marginLeft": 0.4,
                                            "marginRight": 0.4}, session=True, timeout=120)
        path.write_bytes(base64.b64decode(res["data"]))
        return path
