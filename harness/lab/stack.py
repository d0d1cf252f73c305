"""The embedded lab PBX: rtpengine and kamailio as managed children on loopback.

``LabStack.start()`` writes the configs into the lab directory, spawns both daemons in their own
session (so ``harness lab up`` can return while they keep running), and waits for their readiness
probes. ``state.json`` in the lab directory lets a later command find, check and stop them.
Every wait is bounded; a component that is missing, cannot bind, or dies is reported with the
tail of its log.

In namespace mode (``LabConfig.netns``) the daemons run inside the lab's network namespace and a fourth
component, ``netem``, is the impairable line to it (:mod:`harness.lab.netns`); ``stop()`` deletes the
namespace. Fault steps stop, kill and restart single components (:meth:`LabStack.stop_component`,
:meth:`LabStack.start_component`); :meth:`LabStack.check` after each scenario brings back what a fault
step took down on purpose and clears the line, so the next scenario gets a whole lab.

The daemons' command lines and config files are :mod:`harness.lab.daemons`, their processes
:mod:`harness.lab.processes`, and the readiness probes :mod:`harness.probes.readiness` (within the lab's
:class:`~harness.probes.scope.ProbeScope`, :attr:`LabStack.probe_scope`).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.contracts.errors import LabComponentError, LabError
from harness.contracts.logtail import log_tail
from harness.contracts.target import Target
from harness.lab.config import LabConfig, lab_target
from harness.lab.daemons import INSTALL_HINT, kamailio_argv, kamailio_rpc, write_configs
from harness.lab.netns import Netns, NetnsPlan
from harness.lab.processes import pid_alive, port_free, terminate_group
from harness.probes.readiness import ng_ping, sip_options_ping
from harness.probes.scope import ProbeScope
from harness.sip.realtime import realtime_argv

__all__ = ["ComponentStatus", "LabStack", "LabStatus", "pid_alive", "port_free"]

COMPONENTS = ("rtpengine", "kamailio", "services")
NETNS_COMPONENTS = ("netem", *COMPONENTS)  #: in namespace mode the line comes first and goes last
#: the executable each component's pid must run (a recycled pid is not our component)
BINARIES = {"rtpengine": "rtpengine", "kamailio": "kamailio", "services": Path(sys.executable).name,
            "netem": Path(sys.executable).name}

@dataclass
class ComponentStatus:
    name: str
    pid: int | None
    running: bool
    ready: bool
    address: str
    rtt_ms: float | None = None
    log: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "pid": self.pid, "running": self.running, "ready": self.ready,
                "address": self.address, "rtt_ms": self.rtt_ms, "log": self.log}


@dataclass
class LabStatus:
    config: LabConfig
    components: list[ComponentStatus] = field(default_factory=list)
    accounts: list[dict[str, str]] = field(default_factory=list)
    started_at: float | None = None

    @property
    def up(self) -> bool:
        return bool(self.components) and all(c.running and c.ready for c in self.components)

    security: dict[str, Any] = field(default_factory=dict)  #: :meth:`LabConfig.security`: hardened, TLS, SRTP

    def as_dict(self) -> dict[str, Any]:
        return {"up": self.up, "config": self.config.as_dict(), "started_at": self.started_at,
                "hardened": self.config.hardened, "security": self.security,
                "components": [c.as_dict() for c in self.components], "accounts": self.accounts}


class LabStack:
    """Start, check and stop the lab PBX living in ``lab_dir``."""

    def __init__(self, lab_dir: Path, config: LabConfig | None = None, *, media_priority: str = "realtime"):
        self.dir = lab_dir
        #: the lab's processes carry media: SCHED_RR where permitted, as a PBX's would (harness.sip.realtime)
        self.media_priority = media_priority
        self.state_file = lab_dir / "state.json"
        self.state_error: str | None = None  #: why an existing state.json was not trusted (it is then ignored)
        state = self._read_state()
        if config is None:  # the running lab's own config (hardened, netns, ports), else the environment's
            config = LabConfig.from_dict(state["config"]) if state else LabConfig.from_env()
        self.config = config
        self.pids: dict[str, int] = dict(state["pids"]) if state else {}
        self.started_at: float | None = state["started_at"] if state else None
        self.rec_dir = lab_dir / "rec"
        #: the namespace and its line in namespace mode (impairment steps reach it as ``ctx.lab.netns``)
        self.netns = Netns(NetnsPlan.for_address(config.ip), lab_dir) if config.netns else None
        self.faulted: set[str] = set()  #: components a fault step took down on purpose

    # ---- state ------------------------------------------------------------------------------------
    def _read_state(self) -> dict[str, Any] | None:
        """``state.json`` with its config checked (:meth:`LabConfig.from_dict`: one written before a field
        existed is read with that field's default), pids and start time; None when there is no lab here or
        the file cannot be trusted (treated as not running)."""
        try:
            return _parse_state(self.state_file.read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:  # a UnicodeDecodeError too
            self.state_error = f"{self.state_file} is unreadable and ignored: {exc}"
            return None

    def _write_state(self) -> None:
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps({"config": self.config.as_dict(), "pids": self.pids,
                                   "started_at": self.started_at}, indent=2))
        tmp.replace(self.state_file)

    @property
    def target(self) -> Target:
        return lab_target(self.config, self.dir)

    @property
    def probe_scope(self) -> ProbeScope:
        """Where the readiness probes may go: the lab's own address (and loopback)."""
        return ProbeScope.for_lab(self.config.ip)

    def log_path(self, name: str) -> Path:
        return self.dir / f"{name}.log"

    @property
    def components(self) -> tuple[str, ...]:
        return NETNS_COMPONENTS if self.netns is not None else COMPONENTS

    def is_running(self) -> bool:
        return bool(self.pids) and all(pid_alive(self.pids.get(n, -1), BINARIES[n]) for n in self.components)

    # ---- start ------------------------------------------------------------------------------------
    def start(self, timeout: float = 10.0) -> dict[str, float]:
        """Start both components and wait until they answer. Returns readiness times in seconds."""
        if self.is_running():
            raise LabError(f"the lab is already running (pids {self.pids}); 'harness lab down' first")
        self._kill_leftovers()
        for binary in ("rtpengine", "kamailio"):
            if shutil.which(binary) is None:
                raise LabComponentError(binary, f"'{binary}' is not installed; {INSTALL_HINT}")
        cfg = self.config
        for what, port in (("SIP", cfg.sip_port), ("rtpengine control", cfg.ng_port)):
            if self.netns is None and not port_free(cfg.ip, port):  # a namespace of its own is empty
                raise LabError(f"{what} port {cfg.ip}:{port} is in use by another process; "
                               "choose another with 'harness lab up --sip-port/--ng-port' or HARNESS_LAB_* variables")
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / "run").mkdir(exist_ok=True)
        (self.rec_dir / "pcaps").mkdir(parents=True, exist_ok=True)
        self._write_configs()
        timings: dict[str, float] = {}
        self.started_at = time.time()
        try:
            if self.netns is not None:
                self.netns.create()
            for name in self.components:
                timings[f"{name}_ready_s"] = self.start_component(name, timeout)
        except BaseException:
            self.stop()
            raise
        return timings

    def _write_configs(self) -> None:
        """Every daemon's configuration (a variant lab, in the tests, edits them after this)."""
        write_configs(self.dir, self.config, self.rec_dir, self.media_priority)

    def start_component(self, name: str, timeout: float = 10.0) -> float:
        """Spawn one component and wait for its readiness probe; returns the seconds it took."""
        cfg = self.config
        t0 = time.monotonic()
        if name == "netem":
            assert self.netns is not None
            root_fd, ns_fd = self.netns.open_line()
            try:  # the netem process holds the line from now on; the devices live as long as it does
                self._spawn(name, [sys.executable, "-m", "harness.lab.netem", "--fds", f"{root_fd},{ns_fd}",
                                   "--sip-port", str(cfg.sip_port), "--control", str(self.netns.control.path)],
                            pass_fds=(root_fd, ns_fd))
            finally:
                os.close(root_fd)
                os.close(ns_fd)
            control = self.netns.control
            self._await(name, lambda: True if control.ping() else time.sleep(0.05), timeout)
        elif name == "rtpengine":
            self._spawn(name, ["rtpengine", f"--config-file={self.dir / 'rtpengine.conf'}"])
            self._await(name, lambda: ng_ping(cfg.ip, cfg.ng_port, 0.3, scope=self.probe_scope), timeout)
            if self.pids.get("kamailio"):
                kamailio_rpc(self.dir / "run" / "kamailio_rpc.sock", "rtpengine.enable", "all", 1)
        elif name == "kamailio":
            self._spawn(name, kamailio_argv(self.dir, cfg))
            self._await(name, lambda: sip_options_ping(cfg.ip, cfg.sip_port, 0.3, scope=self.probe_scope),
                        timeout)
        else:
            ready = self.dir / "services.ready"
            ready.unlink(missing_ok=True)
            self._spawn(name, [sys.executable, "-m", "harness.lab.services", str(self.dir)])
            self._await(name, lambda: True if ready.exists() else time.sleep(0.05), timeout)
        self.faulted.discard(name)
        return round(time.monotonic() - t0, 3)

    def stop_component(self, name: str, *, kill: bool = False, timeout: float = 5.0) -> None:
        """Stop one component (SIGTERM, or SIGKILL at once with ``kill``): a fault on purpose, which
        :meth:`check` repairs after the scenario."""
        pid = self.pids.get(name)
        self.faulted.add(name)
        if pid is None or not pid_alive(pid, BINARIES[name]):
            return
        if kill:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
        terminate_group(pid, timeout)
        proc = getattr(self, "_procs", {}).pop(name, None)
        if proc is not None:
            proc.wait()

    def _spawn(self, name: str, argv: list[str], pass_fds: tuple[int, ...] = ()) -> None:
        argv = realtime_argv(argv, self.media_priority)
        if self.netns is not None and name != "netem":
            argv = self.netns.exec_argv(argv)
        log = self.log_path(name).open("ab")
        log.write(f"\n--- {time.strftime('%Y-%m-%d %H:%M:%S')} starting {name}\n".encode())
        log.flush()
        try:
            proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    cwd=self.dir, start_new_session=True, pass_fds=pass_fds)
        except OSError as exc:
            raise LabComponentError(name, f"cannot start: {exc}") from None
        finally:
            log.close()
        self.pids[name] = proc.pid
        self._write_state()
        self._procs = getattr(self, "_procs", {})
        self._procs[name] = proc

    def _await(self, name: str, probe: Any, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        proc: subprocess.Popen[bytes] = self._procs[name]
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise LabComponentError(name, f"exited with code {proc.returncode} during start-up",
                                        log_tail(self.log_path(name)))
            if probe() is not None:
                return
        raise LabComponentError(name, f"did not answer its readiness probe within {timeout:.0f} s",
                                log_tail(self.log_path(name)))

    # ---- check / status ---------------------------------------------------------------------------
    def check(self) -> None:
        """Raise LabComponentError if a component that should run has died.

        What a fault step took down on purpose is started again first, and the line's impairments are
        cleared: the scenario that did it has ended, the next one must get a whole lab.
        """
        if not self.pids:
            raise LabError("the lab is not running; start it with 'harness lab up'")
        self.restore()
        for name in self.components:
            pid = self.pids.get(name)
            if pid is None or not pid_alive(pid, BINARIES[name]):
                raise LabComponentError(name, f"is not running (pid {pid})", log_tail(self.log_path(name)))

    def restore(self) -> None:
        """Undo fault steps: clear the line (namespace mode; the readiness probes cross it), then restart
        the components they stopped."""
        if self.netns is not None and self.netns.control.ping():
            self.netns.control.clear()
        for name in [n for n in self.components if n in self.faulted]:
            pid = self.pids.get(name)
            if pid is not None and pid_alive(pid, BINARIES[name]):
                self.stop_component(name)
            self.start_component(name)

    def status(self, probe_timeout: float = 1.0) -> LabStatus:
        cfg = self.config
        st = LabStatus(config=cfg, started_at=self.started_at, security=cfg.security(self.dir))
        for name, port, probe in (("rtpengine", cfg.ng_port, ng_ping), ("kamailio", cfg.sip_port, sip_options_ping)):
            pid = self.pids.get(name)
            running = pid is not None and pid_alive(pid, BINARIES[name])
            rtt = probe(cfg.ip, port, probe_timeout, scope=self.probe_scope) if running else None
            st.components.append(ComponentStatus(
                name, pid, running, rtt is not None, f"{cfg.ip}:{port}/udp",
                round(rtt * 1000, 2) if rtt is not None else None, str(self.log_path(name))))
        pid = self.pids.get("services")
        running = pid is not None and pid_alive(pid, BINARIES["services"])
        target = self.target
        st.components.append(ComponentStatus(
            "services", pid, running, running and (self.dir / "services.ready").exists(),
            f"ivr {target.account('ivr').username}, queue {target.account('queue').username}",
            None, str(self.log_path("services"))))
        if self.netns is not None:
            plan, pid = self.netns.plan, self.pids.get("netem")
            running = pid is not None and pid_alive(pid, BINARIES["netem"])
            st.components.insert(0, ComponentStatus(
                "netem", pid, running, running and self.netns.control.ping(),
                f"line {plan.root_ip} <-> {plan.ns_ip} (namespace {plan.name})", None, str(self.log_path("netem"))))
        st.accounts = [{"name": a.name, "username": a.username, "aor": self.target.aor(a.username)}
                       for a in self.target.accounts.values()]
        return st

    # ---- stop -------------------------------------------------------------------------------------
    def stop(self, timeout: float = 5.0) -> dict[str, float]:
        """Stop both components (SIGTERM, then SIGKILL after ``timeout``). Safe to call twice."""
        state = self._read_state()
        if state is not None:  # another LabStack on this lab dir (a run's fault step) may have restarted one
            self.pids.update({k: v for k, v in state.get("pids", {}).items() if isinstance(v, int)})
        times: dict[str, float] = {}
        for name in reversed(self.components):
            pid = self.pids.pop(name, None)
            if pid is None or not pid_alive(pid, BINARIES[name]):
                continue
            t0 = time.monotonic()
            terminate_group(pid, timeout)
            times[f"{name}_stop_s"] = round(time.monotonic() - t0, 3)
        for proc in getattr(self, "_procs", {}).values():
            if proc.poll() is None:
                proc.kill()
            proc.wait()
        self._procs = {}
        self.started_at = None
        self.faulted.clear()
        if self.netns is not None:
            self.netns.delete()
        if self.state_file.exists():
            self.state_file.unlink()
        return times

    def _kill_leftovers(self) -> None:
        """A previous lab that crashed may have left a half-dead group: stop what the state names."""
        for name, pid in list(self.pids.items()):
            if name in BINARIES and pid_alive(pid, BINARIES[name]):
                terminate_group(pid, 3.0)
        self.pids.clear()


def _parse_state(text: str) -> dict[str, Any]:
    """A ``state.json`` text, checked; ValueError says what is wrong with it."""
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ValueError(f"not JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    LabConfig.from_dict(data.get("config"))
    pids = data.get("pids", {})
    started = data.get("started_at")
    if not isinstance(pids, dict) or not all(isinstance(k, str) and type(v) is int for k, v in pids.items()):
        raise ValueError("pids must map component names to process ids")
    if started is not None and (isinstance(started, bool) or not isinstance(started, (int, float))):
        raise ValueError("started_at must be a time")
    return {**data, "pids": pids, "started_at": started}
