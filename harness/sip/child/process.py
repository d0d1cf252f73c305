"""The child process's machinery: events out on the protocol fd, the command loop, timers, the teardown.

:class:`ChildProcess` holds the process's state (the endpoint, its accounts and calls) and runs the loop
that alternates pjsua2's event handling with reading commands; the commands themselves are methods
``cmd_<name>`` of its subclass (:class:`harness.sip.child.commands.Child`), dispatched by name.
"""

from __future__ import annotations

import contextlib
import gc
import os
import select
import time
from collections.abc import Callable
from typing import Any, Protocol

from harness.sip.child.pjsua import pj
from harness.sip.health import HealthBook, Watchdog
from harness.sip.protocol import decode, encode
from harness.sip.realtime import Priority

__all__ = ["CallSlot", "ChildProcess", "CommandError"]


class CommandError(Exception):
    """A command the child refuses; becomes an ``ok: false`` reply."""


class CallSlot(Protocol):
    """A call as the process keeps it: live (``harness.sip.child.call.PartyCall``) or its facts once ended."""

    cid: str
    done: bool
    last_stats: dict[str, Any]

    def stop_player(self) -> None: ...

    def stop_recorder(self, pump: bool = True) -> str | None: ...

    def stop_probes(self) -> None: ...

    def info_dict(self) -> dict[str, Any]: ...


class ChildProcess:
    def __init__(self, proto_fd: int) -> None:
        self.proto_fd = proto_fd
        self.ep: Any = None
        self.out: list[dict[str, Any]] = []
        self.accounts: dict[str, Any] = {}  #: name -> harness.sip.child.account.Acct
        self.calls: dict[str, CallSlot] = {}
        self.call_seq = 0
        self.timers: list[tuple[float, Callable[[], None]]] = []
        self.new_call_times: list[float] = []
        self.players = 0
        self.running = True
        self.health = HealthBook()
        self.watchdog: Watchdog | None = None
        self.clock_probe: Any = None
        self.priority = Priority("normal")
        # set by ``init``: the SIP transport, the media addresses, and the silent source every recorder gets
        self.transport_id: int = -1
        self.local_ip = "127.0.0.1"
        self.rtp_port = 40000
        self.rtp_range = 100
        self.silence: Any = None
        self.log_writer: Any = None  #: the pjsua log's writer (harness.sip.child.logfile.LineLog)

    # ---- output -----------------------------------------------------------------------------------
    def emit(self, event: str, **fields: Any) -> None:
        fields.setdefault("t", time.monotonic())
        fields["wall"] = time.time()
        self.out.append({"event": event, **fields})

    def flush(self) -> None:
        if self.out:
            data = b"".join(encode(o) for o in self.out)
            self.out.clear()
            view = memoryview(data)
            while view:
                n = os.write(self.proto_fd, view)
                view = view[n:]

    # ---- calls and timers -------------------------------------------------------------------------
    def next_call_id(self) -> str:
        self.call_seq += 1
        return f"c{self.call_seq}"

    def live_calls(self) -> list[CallSlot]:
        return [c for c in self.calls.values() if not c.done]

    def known_call(self, cid: str) -> CallSlot:
        """The call ``cid``, live or ended."""
        c = self.calls.get(cid)
        if c is None:
            raise CommandError(f"no call {cid!r}")
        return c

    def after(self, delay: float, fn: Callable[[], None]) -> None:
        self.timers.append((time.monotonic() + delay, fn))

    def run_timers(self) -> None:
        now = time.monotonic()
        due = [t for t in self.timers if t[0] <= now]
        if due:
            self.timers = [t for t in self.timers if t[0] > now]
            for _, fn in due:
                try:
                    fn()
                except pj.Error as exc:
                    self.emit("warning", message=f"timer action failed: {exc.info()}")

    # ---- main loop --------------------------------------------------------------------------------
    def handle(self, msg: dict[str, Any]) -> None:
        mid = msg.get("id")
        cmd = msg.get("cmd", "")
        fn = getattr(self, f"cmd_{cmd}", None)
        if fn is None:
            self.out.append({"id": mid, "ok": False, "error": f"unknown command {cmd!r}"})
            return
        try:
            result = fn(msg.get("args", {}))
            self.out.append({"id": mid, "ok": True, "result": result})
        except CommandError as exc:
            self.out.append({"id": mid, "ok": False, "error": str(exc)})
        except pj.Error as exc:
            self.out.append({"id": mid, "ok": False, "error": f"pjsua2: {exc.info()}"})
        except (KeyError, TypeError, ValueError) as exc:
            self.out.append({"id": mid, "ok": False, "error": f"bad arguments for {cmd}: {exc!r}"})

    def loop(self) -> None:
        buf = b""
        os.set_blocking(0, False)
        self.out.append({"event": "hello", "pid": os.getpid(), "t": time.monotonic()})
        self.flush()
        while self.running:
            if self.ep is not None:
                self.ep.libHandleEvents(10)
                self.run_timers()
                ready = select.select([0], [], [], 0)[0]
            else:
                ready = select.select([0], [], [], 0.05)[0]
            if ready:
                try:
                    data = os.read(0, 1 << 16)
                except BlockingIOError:
                    data = None
                if data == b"":
                    break  # parent went away: shut down cleanly
                if data:
                    buf += data
                    *lines, buf = buf.split(b"\n")
                    for line in lines:
                        if line.strip():
                            try:
                                msg = decode(line)
                            except ValueError as exc:
                                self.out.append({"id": None, "ok": False, "error": f"bad protocol line: {exc}"})
                                continue
                            self.handle(msg)
            self.flush()
        self.shutdown()

    def pump(self, seconds: float, until: Callable[[], bool] | None = None) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.ep.libHandleEvents(20)
            if until is not None and until():
                return

    def shutdown(self) -> None:
        """FACTS' teardown order; a Call alive after libDestroy aborts the process."""
        if self.ep is None:
            self.flush()
            return
        self.ep.hangupAllCalls()
        self.pump(2.0, lambda: not self.live_calls())
        self.run_timers()  # each DISCONNECTED queued its call's release, which drops the pjsua2 object
        for c in self.calls.values():
            c.stop_player()
            c.stop_recorder(pump=False)
            c.stop_probes()
        self.pump(0.3)
        self.calls.clear()
        for acc in self.accounts.values():
            with contextlib.suppress(pj.Error):
                acc.shutdown()
        self.pump(0.5)
        self.accounts.clear()
        if self.watchdog is not None:
            self.watchdog.stop()
        if self.clock_probe is not None:
            with contextlib.suppress(pj.Error):
                self.silence.stopTransmit(self.clock_probe)
            self.clock_probe = None
        self.silence = None
        # A timer's closure that still holds a Call would free it after libDestroy, and ~Call then fails
        # pjsua's call-id assertion and aborts the process (exit -6 after every run that ended mid-call).
        self.timers.clear()
        gc.collect()
        self.emit("bye")
        self.flush()
        self.ep.libDestroy()
        self.ep = None
        if self.log_writer is not None:  # kept alive until pjsua is gone: libDestroy still logs
            self.log_writer.close()
