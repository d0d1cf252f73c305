"""The harness side of a SIP party: spawns the pjsua2 child and talks to it over the pipe.

::

    with Party("agent", run_dir) as agent:
        agent.add_account(target.account("agent1"), target, auto=AutoAnswer.answer(play=wav, record=out))
        agent.wait_registered("agent1", timeout=5)
        ev = agent.wait_event(lambda e: e["event"] == "incoming", timeout=10, what="an incoming call")

Every wait has a timeout. When the child dies, every pending and later call raises
:class:`PartyCrashed` carrying the exit status and the last lines of its logs.
"""

from __future__ import annotations

import atexit
import contextlib
import itertools
import os
import queue
import random
import signal
import subprocess
import sys
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.contracts.errors import PartyCommandError, PartyCrashed, PartyTimeout
from harness.contracts.logtail import log_tail
from harness.contracts.target import Account, Target
from harness.sip.protocol import LIMITS, decode, encode

__all__ = ["AutoPolicy", "Party", "RegResult"]

Event = dict[str, Any]
_LIVE: weakref.WeakSet[Party] = weakref.WeakSet()


@atexit.register
def _kill_leftovers() -> None:
    for p in list(_LIVE):
        p.kill()


@dataclass
class AutoPolicy:
    """How an account treats incoming calls. ``mode``: answer | reject | ring | manual."""

    mode: str = "manual"
    code: int | None = None
    delay_ms: int = 0
    play: str | None = None
    loop: bool = False
    record: str | None = None
    transfer: str = "accept"  # accept | reject (answer to an incoming REFER)
    transfer_code: int = 603
    hold_mute: bool = True
    hold_music: str | None = None
    echo: bool = False  #: answer as an echo-test number: what the call receives goes back to the caller

    def to_wire(self) -> dict[str, Any]:
        d: dict[str, Any] = {"mode": self.mode, "delay_ms": self.delay_ms, "transfer": self.transfer,
                             "transfer_code": self.transfer_code,
                             "media": {"play": self.play, "loop": self.loop, "record": self.record,
                                       "hold_mute": self.hold_mute, "hold_music": self.hold_music,
                                       "echo": self.echo}}
        if self.code is not None:
            d["code"] = self.code
        return d


@dataclass
class RegResult:
    account: str
    code: int
    reason: str
    elapsed_ms: float
    events: list[Event] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return 200 <= self.code < 300


class Party:
    """One pjsua2 child process. Use as a context manager, or call :meth:`close`."""

    def __init__(self, name: str, workdir: Path, *, local_ip: str = "127.0.0.1", transport: str = "udp",
                 codecs: tuple[str, ...] = ("PCMU", "PCMA"), rtp_port: int | None = None,
                 user_agent: str = "harness-party", priority: str = "realtime"):
        self.name = name
        self.priority = priority  #: "realtime" (SCHED_RR when permitted) or "normal": harness.sip.realtime
        self.workdir = workdir
        self.local_ip, self.transport, self.codecs, self.user_agent = local_ip, transport, codecs, user_agent
        self.rtp_port = rtp_port if rtp_port is not None else random.randrange(50000, 59600, 2)
        self.log_file = workdir / f"{name}.log"
        self.sip_log_file = workdir / f"{name}.sip.log"
        self.history: list[Event] = []
        self.proc: subprocess.Popen[bytes] | None = None
        self._ids = itertools.count(1)
        self._replies: dict[int, queue.SimpleQueue[Event]] = {}
        self._cond = threading.Condition()
        self._dead: str | None = None
        self._reader: threading.Thread | None = None
        self.accounts: dict[str, Account] = {}
        self.sip_address = ""
        self.pid: int | None = None
        self.scheduling: dict[str, Any] = {}  #: what the child got (policy, priority, why not real-time)

    # ---- life cycle -------------------------------------------------------------------------------
    def __enter__(self) -> Party:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self, timeout: float = 10.0) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        log = self.log_file.open("ab")
        try:
            self.proc = subprocess.Popen([sys.executable, "-m", "harness.sip.child"], stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE, stderr=log, cwd=os.getcwd())
        finally:
            log.close()
        _LIVE.add(self)
        self._reader = threading.Thread(target=self._read_loop, name=f"party-{self.name}", daemon=True)
        self._reader.start()
        self.wait_event(lambda e: e["event"] == "hello", timeout, "the child to start")
        res = self.request("init", timeout=timeout, local_ip=self.local_ip, transport=self.transport,
                           codecs=list(self.codecs), rtp_port=self.rtp_port, rtp_range=200,
                           log_file=str(self.sip_log_file), user_agent=self.user_agent, priority=self.priority)
        self.sip_address = res.get("sip_address", "")
        self.pid = res.get("pid")
        self.scheduling = dict(res.get("priority") or {})

    def close(self, timeout: float = 5.0) -> None:
        """Ask the child to hang up, unregister and exit; kill it if it does not within ``timeout``."""
        proc = self.proc
        if proc is None:
            return
        if proc.poll() is None and self._dead is None:
            with contextlib.suppress(PartyCrashed, PartyTimeout):
                self.request("quit", timeout=timeout)
            try:
                assert proc.stdin is not None
                proc.stdin.close()
            except OSError:
                pass
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        else:
            self.kill()
        if self._reader is not None:
            self._reader.join(2.0)
        _LIVE.discard(self)

    def kill(self) -> None:
        proc = self.proc
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.wait()

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None and self._dead is None

    def log_tail(self, lines: int = 15) -> str:
        parts = [log_tail(self.log_file, lines), log_tail(self.sip_log_file, lines)]
        return "\n".join(p for p in parts if p)

    # ---- pipe -------------------------------------------------------------------------------------
    def _read_loop(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        for raw in self.proc.stdout:
            try:
                msg = decode(raw)
            except ValueError:
                continue
            if "event" in msg:
                with self._cond:
                    self.history.append(msg)
                    self._cond.notify_all()
            elif isinstance(msg.get("id"), int) and msg["id"] in self._replies:
                self._replies[msg["id"]].put(msg)
        code = self.proc.wait()
        why = f"was killed by signal {signal.Signals(-code).name}" if code < 0 else f"exited with code {code}"
        fatal = [e.get("error", "") for e in self.history if e["event"] == "fatal"]
        if fatal:
            why += ": " + fatal[-1].strip().splitlines()[-1]
        with self._cond:
            self._dead = why
            self._cond.notify_all()
        for q in self._replies.values():
            q.put({"id": None, "dead": True})

    def _crashed(self, doing: str) -> PartyCrashed:
        return PartyCrashed(self.name, f"the pjsua2 child {self._dead} while {doing}", self.log_tail())

    def request(self, cmd: str, timeout: float = 10.0, **args: Any) -> dict[str, Any]:
        """Send one command and wait for its reply."""
        if self.proc is None:
            raise PartyCommandError(self.name, "not started")
        if self._dead is not None:
            raise self._crashed(f"sending '{cmd}'")
        mid = next(self._ids)
        q: queue.SimpleQueue[Event] = queue.SimpleQueue()
        self._replies[mid] = q
        try:
            assert self.proc.stdin is not None
            self.proc.stdin.write(encode({"id": mid, "cmd": cmd, "args": args}))
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            self._wait_dead(2.0)
            raise self._crashed(f"sending '{cmd}'") from None
        try:
            reply = q.get(timeout=timeout)
        except queue.Empty:
            raise PartyTimeout(self.name, f"no reply to '{cmd}' within {timeout:.1f} s", self.log_tail(),
                               harness_side=True) from None
        finally:
            self._replies.pop(mid, None)
        if reply.get("dead"):
            raise self._crashed(f"running '{cmd}'")
        if not reply.get("ok"):
            raise PartyCommandError(self.name, f"'{cmd}' refused: {reply.get('error')}")
        result: dict[str, Any] = reply.get("result") or {}
        return result

    def _wait_dead(self, timeout: float) -> None:
        with self._cond:
            self._cond.wait_for(lambda: self._dead is not None, timeout)

    # ---- events -----------------------------------------------------------------------------------
    def mark(self) -> int:
        """A position in the event history; pass it as ``since`` to wait only for later events."""
        with self._cond:
            return len(self.history)

    def trim(self, before: int) -> int:
        """Forget the events before position ``before`` (a long-lived party, like the lab's services,
        would otherwise keep every event it ever saw). Marks taken earlier become invalid: returns the
        number of events dropped, which callers subtract from their own positions."""
        with self._cond:
            dropped = max(0, min(before, len(self.history)))
            del self.history[:dropped]
            return dropped

    def sync(self, timeout: float = 5.0) -> None:
        """Wait until every event the child emitted so far is in :attr:`history`.

        The child answers commands in order, after the events it emitted before them, so a reply to
        ``ping`` means the history is caught up. Use it before :meth:`find` for an event that another
        party's event implies already happened (the transferee's REFER before the transferor's final
        NOTIFY): each party's events come through their own pipe and reader thread, so without it the
        other party's event may still be on its way.
        """
        self.request("ping", timeout=timeout)

    def find(self, pred: Callable[[Event], bool], since: int = 0) -> Event | None:
        with self._cond:
            for ev in self.history[since:]:
                if pred(ev):
                    return ev
        return None

    def wait_event(self, pred: Callable[[Event], bool], timeout: float, what: str, since: int = 0) -> Event:
        """The first event from ``since`` on that matches; PartyTimeout naming ``what`` otherwise."""
        deadline = time.monotonic() + timeout
        pos = since
        with self._cond:
            while True:
                for i in range(pos, len(self.history)):
                    if pred(self.history[i]):
                        return self.history[i]
                pos = len(self.history)
                if self._dead is not None:
                    raise self._crashed(f"waiting for {what}")
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise PartyTimeout(self.name, f"timed out after {timeout:.1f} s waiting for {what}")
                self._cond.wait(remaining)

    def call_events(self, call: str) -> list[Event]:
        with self._cond:
            return [e for e in self.history if e.get("call") == call]

    # ---- SIP operations ---------------------------------------------------------------------------
    def add_account(self, account: Account, target: Target, *, register: bool = True,
                    auto: AutoPolicy | None = None, expires: int = 300) -> None:
        if len(self.accounts) >= LIMITS["max_accounts"]:
            raise PartyCommandError(self.name, f"account limit: {LIMITS['max_accounts']} per party process")
        self.request("add_account", name=account.name, id_uri=_with_display(target.aor(account.username),
                                                                            account.display_name),
                     registrar=f"sip:{target.host}:{target.port}" + (
                         f";transport={target.transport}" if target.transport != "udp" else ""),
                     proxies=[target.proxy_uri], register=register, expires=expires,
                     username=account.username, auth_username=account.auth_username, realm=account.realm,
                     password=account.password.reveal(), auto=(auto or AutoPolicy()).to_wire())
        self.accounts[account.name] = account

    def set_auto(self, account: str, auto: AutoPolicy) -> None:
        self.request("set_auto", account=account, auto=auto.to_wire())

    def wait_registered(self, account: str, timeout: float = 5.0, since: int = 0) -> RegResult:
        t0 = time.monotonic()
        ev = self.wait_event(lambda e: e["event"] == "reg_state" and e.get("account") == account
                             and e.get("code", 0) >= 200, timeout, f"the REGISTER result of {account}", since)
        return RegResult(account, int(ev["code"]), str(ev.get("reason", "")),
                         (time.monotonic() - t0) * 1000.0, [ev])

    def unregister(self, account: str) -> None:
        self.request("register", account=account, renew=False)

    def call(self, account: str, uri: str, *, play: str | None = None, record: str | None = None,
             loop: bool = False, headers: dict[str, str] | None = None, hold_mute: bool = True,
             hold_music: str | None = None) -> dict[str, Any]:
        return self.request("call", account=account, uri=uri, headers=headers or {},
                            media={"play": play, "loop": loop, "record": record, "hold_mute": hold_mute,
                                   "hold_music": hold_music})

    def answer(self, call: str, code: int = 200, *, play: str | None = None, record: str | None = None,
               loop: bool = False) -> None:
        args: dict[str, Any] = {"call": call, "code": code}
        if play or record:
            args["media"] = {"play": play, "loop": loop, "record": record}
        self.request("answer", **args)

    def hangup(self, call: str, code: int | None = None) -> None:
        self.request("hangup", call=call, **({"code": code} if code else {}))

    def hold(self, call: str) -> None:
        self.request("hold", call=call)

    def resume(self, call: str) -> None:
        self.request("resume", call=call)

    def dtmf(self, call: str, digits: str, duration_ms: int = 160) -> None:
        self.request("dtmf", call=call, digits=digits, duration_ms=duration_ms)

    def transfer(self, call: str, target_uri: str) -> None:
        self.request("xfer", call=call, target=target_uri)

    def transfer_replaces(self, call: str, other: str) -> None:
        self.request("xfer_replaces", call=call, other=other)

    def stop_record(self, call: str) -> str | None:
        path: str | None = self.request("stop_record", call=call).get("path")
        return path

    def stats(self, call: str) -> dict[str, Any]:
        return self.request("stats", call=call)

    def info(self, call: str) -> dict[str, Any]:
        return self.request("info", call=call)

    def health(self, since: float, until: float | None = None) -> dict[str, Any]:
        """The child's health buckets (wake-up and media clock lateness) between monotonic times."""
        return self.request("health", since=since, **({"until": until} if until is not None else {}))


def _with_display(uri: str, display: str) -> str:
    if not display:
        return uri
    safe = display.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{safe}" <{uri}>'
