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
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from harness.contracts.errors import LabComponentError, LabError
from harness.contracts.logtail import log_tail
from harness.contracts.target import Target
from harness.lab.config import LabConfig, lab_profile_mapping, lab_target
from harness.lab.netns import Netns, NetnsPlan
from harness.lab.probes import ng_ping, sip_options_ping
from harness.sip.realtime import realtime_argv

__all__ = ["ComponentStatus", "LabStack", "LabStatus"]

COMPONENTS = ("rtpengine", "kamailio", "services")
NETNS_COMPONENTS = ("netem", *COMPONENTS)  #: in namespace mode the line comes first and goes last
#: the executable each component's pid must run (a recycled pid is not our component)
BINARIES = {"rtpengine": "rtpengine", "kamailio": "kamailio", "services": Path(sys.executable).name,
            "netem": Path(sys.executable).name}
INSTALL_HINT = "install it with the README's setup command (scripts/setup.sh)"


def pid_alive(pid: int, binary: str) -> bool:
    """True when ``pid`` runs and is ``binary`` (guards against a recycled pid)."""
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode()
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    if stat.rsplit(")", 1)[-1].split()[0] == "Z":
        return False
    return Path(cmdline).name == binary


def port_free(ip: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.bind((ip, port))
        except OSError:
            return False
    return True


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
            self._await(name, lambda: ng_ping(cfg.ip, cfg.ng_port, 0.3), timeout)
            if self.pids.get("kamailio"):
                _kamailio_rpc(self.dir / "run" / "kamailio_rpc.sock", "rtpengine.enable", "all", 1)
        elif name == "kamailio":
            self._spawn(name, self._kamailio_argv())
            self._await(name, lambda: sip_options_ping(cfg.ip, cfg.sip_port, 0.3), timeout)
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
        _terminate_group(pid, timeout)
        proc = getattr(self, "_procs", {}).pop(name, None)
        if proc is not None:
            proc.wait()

    def _kamailio_argv(self) -> list[str]:
        cfg = self.config
        modules = _kamailio_modules_dir()
        return ["kamailio", "-DD", "-E", "-m", "64", "-M", "8", "-f", str(self.dir / "kamailio.cfg"),
                "-P", str(self.dir / "run" / "kamailio.pid"),
                "-A", f"SIP_IP={cfg.ip}", "-A", f"SIP_PORT={cfg.sip_port}",
                "-A", f'RUNDIR="{self.dir / "run"}"', "-A", f'MODULES_DIR="{modules}"',
                "-A", f'RTPENGINE_SOCK="udp:{cfg.ip}:{cfg.ng_port}"',
                "-A", 'RTPENGINE_FLAGS="replace-origin replace-session-connection ICE=remove'
                      + (' record-call=yes"' if cfg.record else '"')] + (
                ["-A", "WITH_HARDENING", "-A", f"TLS_PORT={cfg.tls_port}",
                 "-A", f'TLS_CFG="{self.dir / "tls.cfg"}"'] if cfg.hardened else [])

    def _write_configs(self) -> None:
        cfg = self.config
        src = resources.files("harness.lab").joinpath("kamailio.cfg").read_text()
        (self.dir / "kamailio.cfg").write_text(src)
        users = self.target.accounts.values()
        # kamailio's htable include: one assignment per user; passwords stay inside the lab dir (0600)
        users_cfg = self.dir / "users.cfg"
        users_cfg.touch(mode=0o600)
        users_cfg.write_text("".join(f'$sht(users=>{a.username}) = "{a.password.reveal()}";\n' for a in users))
        lines = ["[rtpengine]", "table = -1", f"interface = {cfg.ip}", f"listen-ng = {cfg.ip}:{cfg.ng_port}",
                 f"port-min = {cfg.rtp_min}", f"port-max = {cfg.rtp_max}", "timeout = 60",
                 "silent-timeout = 600", "foreground = true", "log-stderr = true", "log-level = 5",
                 "delete-delay = 0"]
        if cfg.record:
            lines += [f"recording-dir = {self.rec_dir}", "recording-method = pcap", "recording-format = eth"]
        (self.dir / "rtpengine.conf").write_text("\n".join(lines) + "\n")
        if cfg.hardened:
            self._write_tls()
        services = self.dir / "services.json"
        services.touch(mode=0o600)
        services.write_text(json.dumps({
            "target": lab_profile_mapping(cfg, self.rec_dir),
            "config": {"prompts_dir": str(self._prompts_dir()), "priority": self.media_priority}}, indent=2))

    def _write_tls(self) -> None:
        """A fresh self-signed certificate for the hardened lab (its own key, 30 days) and kamailio's tls.cfg."""
        if shutil.which("openssl") is None:
            raise LabComponentError("kamailio", f"'openssl' is not installed (TLS certificate); {INSTALL_HINT}")
        if not (Path(_kamailio_modules_dir()) / "tls.so").exists():
            raise LabComponentError("kamailio", "the TLS module is not installed (kamailio-tls-modules); "
                                    + INSTALL_HINT)
        cert, key = self.dir / "cert.pem", self.dir / "key.pem"
        ip = self.config.ip
        try:
            subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "30",
                            "-subj", "/CN=lab.local", "-addext", f"subjectAltName=DNS:lab.local,IP:{ip}",
                            "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True, timeout=60)
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
            raise LabComponentError("kamailio", f"cannot make the lab's TLS certificate: {exc}") from None
        key.chmod(0o600)
        (self.dir / "tls.cfg").write_text(
            "[server:default]\nmethod = TLSv1.2+\nverify_certificate = no\nrequire_certificate = no\n"
            f"private_key = {key}\ncertificate = {cert}\n\n"
            "[client:default]\nmethod = TLSv1.2+\nverify_certificate = no\nrequire_certificate = no\n")

    def _prompts_dir(self) -> Path:
        """The IVR and queue prompts: the project's fixtures, or built into the lab dir if absent."""
        from harness.contracts.fixtures import fixture_roots
        from harness.lab.prompts import PROMPTS, build_prompts

        for root in fixture_roots():
            if all((root / "prompts" / name).is_file() for name in (*PROMPTS, "queue-music.wav")):
                return (root / "prompts").resolve()
        try:
            build_prompts(self.dir / "prompts")
        except RuntimeError as exc:
            raise LabComponentError("services", f"cannot build the IVR prompts: {exc}") from None
        return self.dir / "prompts"

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
            rtt = probe(cfg.ip, port, probe_timeout) if running else None
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
            _terminate_group(pid, timeout)
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
                _terminate_group(pid, 3.0)
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


def _terminate_group(pid: int, timeout: float) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            return
        except PermissionError:
            os.kill(pid, sig)
        deadline = time.monotonic() + (timeout if sig == signal.SIGTERM else 2.0)
        while time.monotonic() < deadline:
            try:
                done, _ = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                done = pid if not _exists(pid) else 0
            if done:
                return
            time.sleep(0.02)


def _exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[0] != "Z"
    except OSError:
        return False


def _kamailio_rpc(sock: Path, method: str, *params: Any) -> None:
    """One kamailio JSON-RPC call over its datagram socket; best effort, bounded to 1 s.

    Used after rtpengine restarts: kamailio disables an rtpengine that stopped answering for a minute,
    and would relay the next calls' media directly instead of through the new one.
    """
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        s.bind(f"\0hl-kamrpc-{os.getpid()}-{time.monotonic_ns()}")
        s.settimeout(1.0)
        with contextlib.suppress(OSError):
            s.sendto(json.dumps({"jsonrpc": "2.0", "method": method, "params": list(params), "id": 1}).encode(),
                     str(sock))
            s.recv(65535)


def _kamailio_modules_dir() -> str:
    for cand in [*sorted(Path("/usr/lib").glob("*/kamailio/modules")), Path("/usr/lib/kamailio/modules")]:
        if (cand / "tm.so").exists():
            return str(cand) + "/"
    raise LabComponentError("kamailio", f"modules directory not found; {INSTALL_HINT}")
