"""The lab PBX's call-center services: an IVR and an agent queue, played by the harness.

kamailio routes and relays; these services answer the IVR and queue numbers like a PBX would. Each
is a registered SIP party (its own pjsua2 child) that answers, plays prompts, listens for RFC 2833
DTMF, places a call to an agent and bridges the two calls in its conference bridge, the way a B2BUA
PBX (Asterisk, FreeSWITCH) connects a caller to an agent: the caller's call stays up and the agent
receives a new call from the PBX.

- IVR (``ivr``, 7000): plays ``ivr-menu.wav`` in a loop; a digit of the menu connects the caller to that
  extension; any other digit plays ``ivr-invalid.wav`` and the menu again; no digit within
  ``ivr_timeout_s`` ends the call.
- Echo test (``echo``, 9196): answers and sends back what it hears, as a PBX's echo-test number does
  (Asterisk's Echo(), FreeSWITCH's 9196), so a caller's own speech can be judged against what it sent.
- Queue (``queue``, 8000): plays music on hold and rings the agents in order; an agent that answers
  busy (486), rejects, or does not answer within ``ring_timeout_s`` is skipped; an agent the queue has
  already bridged is busy and skipped too. Nobody free: it tries again until ``max_wait_s`` and then
  ends the call with 480.

Run by :class:`harness.lab.stack.LabStack` as ``python -m harness.lab.services LAB_DIR``; it reads
``LAB_DIR/services.json`` and logs to ``LAB_DIR/services.log``. SIGTERM stops it cleanly.
"""

from __future__ import annotations

import contextlib
import json
import logging
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.contracts.errors import HarnessError
from harness.contracts.target import Target
from harness.sip import AutoPolicy, Party

__all__ = ["HEALTH_EVERY_S", "HEALTH_FILE", "HEALTH_REQUEST", "ServiceConfig", "main"]

log = logging.getLogger("harness.lab.services")
Event = dict[str, Any]


@dataclass(frozen=True)
class ServiceConfig:
    prompts_dir: str
    ivr_menu: dict[str, str] = field(default_factory=lambda: {"1": "2001", "2": "2002", "3": "8000"})
    ivr_timeout_s: float = 20.0
    queue_agents: tuple[str, ...] = ("2001", "2002", "2003")
    ring_timeout_s: float = 6.0
    max_wait_s: float = 30.0
    retry_s: float = 2.0
    priority: str = "realtime"  #: the service parties' media scheduling (harness.sip.realtime)

    def prompt(self, name: str) -> str:
        return str(Path(self.prompts_dir) / name)


@dataclass
class Session:
    """One caller being served: the caller's call and, once dialled, the agent's."""

    caller: str
    started: float
    agent: str | None = None
    agent_ext: str | None = None
    bridged: bool = False
    digits: str = ""
    tried: list[str] = field(default_factory=list)
    next_try: float = 0.0
    ring_deadline: float = 0.0


class Service:
    """Common machinery: one party, its events dispatched to sessions."""

    account_name = ""

    def __init__(self, party: Party, target: Target, cfg: ServiceConfig):
        self.party, self.target, self.cfg = party, target, cfg
        self.pos = 0
        self.sessions: dict[str, Session] = {}  # keyed by the caller's call id
        self.by_agent_call: dict[str, str] = {}

    def poll(self) -> None:
        events = self.party.history[self.pos:]
        self.pos += len(events)
        self.pos -= self.party.trim(self.pos)  # a service runs for days: keep no history it has handled
        for ev in events:
            try:
                self.on_event(ev)
            except HarnessError as exc:
                log.warning("%s: %s", self.account_name, exc)
        now = time.monotonic()
        for cid, s in list(self.sessions.items()):
            try:
                self.tick(cid, s, now)
            except HarnessError as exc:
                log.warning("%s: %s", self.account_name, exc)

    def on_event(self, ev: Event) -> None:
        kind, call = ev["event"], str(ev.get("call", ""))
        if kind == "incoming":
            self.sessions[call] = Session(caller=call, started=time.monotonic())
            log.info("%s: incoming call %s from %s", self.account_name, call, ev.get("remote_uri"))
            self.on_incoming(call)
        elif kind == "call_state" and ev.get("state") == "DISCONNECTED":
            self.on_ended(call, int(ev.get("code") or 0))
        elif kind == "call_state" and ev.get("state") == "CONFIRMED" and call in self.by_agent_call:
            self.on_agent_answered(self.by_agent_call[call], call)
        elif kind == "dtmf" and call in self.sessions:
            self.on_digit(call, str(ev.get("digit")))

    def on_incoming(self, call: str) -> None: ...

    def on_digit(self, call: str, digit: str) -> None: ...

    def tick(self, cid: str, s: Session, now: float) -> None: ...

    def on_agent_answered(self, caller: str, agent: str) -> None:
        s = self.sessions.get(caller)
        if s is None:
            self._hangup(agent)
            return
        self.party.request("bridge", call=caller, other=agent)
        s.bridged = True
        log.info("%s: caller %s bridged to %s (call %s)", self.account_name, caller, s.agent_ext, agent)

    def on_agent_failed(self, s: Session, code: int) -> None:
        self.end(s.caller, 480)

    def on_ended(self, call: str, code: int) -> None:
        if call in self.sessions:  # the caller left: release the agent
            s = self.sessions.pop(call)
            if s.agent is not None:
                self.by_agent_call.pop(s.agent, None)
                self._hangup(s.agent)
            return
        caller = self.by_agent_call.pop(call, None)
        if caller is None or caller not in self.sessions:
            return
        s = self.sessions[caller]
        s.agent = None
        if s.bridged:  # the agent hung up after talking: the call is over
            self.end(caller)
        else:
            log.info("%s: agent %s did not take the call (%s)", self.account_name, s.agent_ext, code)
            self.on_agent_failed(s, code)

    def dial_agent(self, s: Session, ext: str) -> None:
        res = self.party.call(self.account_name, self.target.aor(ext))
        s.agent, s.agent_ext = res["call"], ext
        s.tried.append(ext)
        s.ring_deadline = time.monotonic() + self.cfg.ring_timeout_s
        self.by_agent_call[res["call"]] = s.caller
        log.info("%s: ringing %s for caller %s", self.account_name, ext, s.caller)

    def end(self, call: str, code: int | None = None) -> None:
        s = self.sessions.pop(call, None)
        if s is not None and s.agent is not None:
            self.by_agent_call.pop(s.agent, None)
            self._hangup(s.agent)
        self._hangup(call, code)

    def _hangup(self, call: str, code: int | None = None) -> None:
        with contextlib.suppress(HarnessError):  # already gone
            self.party.hangup(call, code)

    def busy_extensions(self) -> set[str]:
        return {s.agent_ext for s in self.sessions.values() if s.agent_ext and s.agent is not None}


class Ivr(Service):
    account_name = "ivr"

    def on_incoming(self, call: str) -> None:
        if len(self.sessions) > 2:  # two calls per session, four per party process
            self.end(call, 486)

    def on_digit(self, call: str, digit: str) -> None:
        s = self.sessions[call]
        if s.agent is not None:
            return  # already connecting: further digits go to the agent
        s.digits += digit
        ext = self.cfg.ivr_menu.get(digit)
        if ext is None:
            log.info("ivr: caller %s pressed %s: not in the menu", call, digit)
            self.party.request("play", call=call, wav=self.cfg.prompt("ivr-invalid.wav"))
            s.next_try = time.monotonic() + 3.3  # then the menu again
            return
        log.info("ivr: caller %s pressed %s -> %s", call, digit, ext)
        self.party.request("stop_play", call=call)
        self.dial_agent(s, ext)

    def on_agent_failed(self, s: Session, code: int) -> None:
        self.party.request("play", call=s.caller, wav=self.cfg.prompt("ivr-invalid.wav"))
        s.next_try = time.monotonic() + 3.3

    def tick(self, cid: str, s: Session, now: float) -> None:
        if s.next_try and now >= s.next_try and s.agent is None:
            s.next_try = 0.0
            self.party.request("play", call=cid, wav=self.cfg.prompt("ivr-menu.wav"), loop=True)
        if s.agent is not None and not s.bridged and now > s.ring_deadline:
            self._hangup(s.agent)
        if not s.bridged and s.agent is None and now - s.started > self.cfg.ivr_timeout_s:
            log.info("ivr: caller %s chose nothing in %.0f s", cid, self.cfg.ivr_timeout_s)
            self.end(cid)


class Echo(Service):
    """Everything is in the answer policy (``AutoPolicy(echo=True)``): the child loops the call's audio."""

    account_name = "echo"

    def on_incoming(self, call: str) -> None:
        if len(self.sessions) > 3:  # four calls per party process
            self.end(call, 486)


class Queue(Service):
    account_name = "queue"

    def on_incoming(self, call: str) -> None:
        if len(self.sessions) > 2:
            self.end(call, 486)
            return
        self.sessions[call].next_try = time.monotonic()

    def on_agent_failed(self, s: Session, code: int) -> None:
        s.next_try = time.monotonic()

    def tick(self, cid: str, s: Session, now: float) -> None:
        if s.bridged:
            return
        if s.agent is not None:
            if now > s.ring_deadline:
                log.info("queue: %s did not answer in %.0f s", s.agent_ext, self.cfg.ring_timeout_s)
                self._hangup(s.agent)
            return
        if not s.next_try or now < s.next_try:
            return
        if now - s.started > self.cfg.max_wait_s:
            log.info("queue: no agent free for caller %s in %.0f s", cid, self.cfg.max_wait_s)
            self.end(cid, 480)
            return
        busy = self.busy_extensions()
        this_round = [a for a in self.cfg.queue_agents if a not in busy and a not in s.tried]
        if not this_round:  # everyone tried: start a new round after a pause
            s.tried.clear()
            s.next_try = now + self.cfg.retry_s
            return
        s.next_try = 0.0
        self.dial_agent(s, this_round[0])


#: the services' parties are harness party processes too: their own health (wake-ups, media clock) is
#: written here for the runner, which judges a window through the lab with them (harness.health)
HEALTH_FILE = "services-health.json"
#: the runner creates this file to have the health written now, not at the next period
HEALTH_REQUEST = "services-health.request"
HEALTH_EVERY_S = 1.0
HEALTH_KEEP_S = 300.0


def export_health(lab_dir: Path, services: list[Service]) -> None:
    out: dict[str, Any] = {}
    for svc in services:
        with contextlib.suppress(HarnessError):
            out[f"lab {svc.account_name}"] = svc.party.health(time.monotonic() - HEALTH_KEEP_S)
    tmp = lab_dir / (HEALTH_FILE + ".tmp")
    tmp.write_text(json.dumps(out, separators=(",", ":")))
    tmp.replace(lab_dir / HEALTH_FILE)


def _take_request(lab_dir: Path) -> bool:
    """Whether the runner asked for the health now (its request file is consumed)."""
    try:
        (lab_dir / HEALTH_REQUEST).unlink()
    except FileNotFoundError:
        return False
    return True


def run(lab_dir: Path) -> int:
    spec = json.loads((lab_dir / "services.json").read_text())
    target = Target.from_mapping(spec["target"], "<lab>", is_lab=True)
    cfg = ServiceConfig(**spec.get("config", {}))
    stop = {"now": False}

    def on_signal(_sig: int, _frame: Any) -> None:
        stop["now"] = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    services: list[Service] = []
    parties: list[Party] = []
    try:
        kinds: tuple[tuple[type[Service], str | None], ...] = (
            (Ivr, "ivr-menu.wav"), (Queue, "queue-music.wav"), (Echo, None))
        for cls, greeting in kinds:
            party = Party(f"lab-{cls.account_name}", lab_dir, user_agent="harness-lab-pbx", priority=cfg.priority)
            parties.append(party)
            party.start()
            party.add_account(target.account(cls.account_name), target, auto=AutoPolicy(
                mode="answer", play=cfg.prompt(greeting) if greeting else None, loop=True, transfer="reject",
                echo=cls is Echo))
            reg = party.wait_registered(cls.account_name, 5.0)
            if not reg.ok:
                log.error("%s could not register: %s %s", cls.account_name, reg.code, reg.reason)
                return 3
            services.append(cls(party, target, cfg))
        (lab_dir / "services.ready").write_text(str(time.time()))
        log.info("services ready: ivr %s, queue %s, echo %s", target.account("ivr").username,
                 target.account("queue").username, target.account("echo").username)
        next_health = 0.0
        while not stop["now"]:
            for svc in services:
                if not svc.party.alive:
                    log.error("%s party died:\n%s", svc.account_name, svc.party.log_tail())
                    return 4
                svc.poll()
            if _take_request(lab_dir) or time.monotonic() >= next_health:
                export_health(lab_dir, services)
                next_health = time.monotonic() + HEALTH_EVERY_S
            time.sleep(0.02)
        return 0
    finally:
        (lab_dir / "services.ready").unlink(missing_ok=True)
        for p in parties:
            p.close(timeout=3.0)


def main() -> None:
    lab_dir = Path(sys.argv[1])
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    sys.exit(run(lab_dir))


if __name__ == "__main__":
    main()
