"""The lab in a network namespace of its own, behind a line whose faults the harness controls.

In namespace mode (``harness lab up --netns``, ``HARNESS_LAB_NETNS=1``, ``LabConfig(netns=True)``)
kamailio, rtpengine and the lab services run inside the namespace ``hlab<N>`` and listen on its
address ``10.233.x.2``; the parties stay in the root namespace and reach the lab from ``10.233.x.1``.
The two ends are TUN devices joined by the lab component ``netem`` (:mod:`harness.lab.netem`), so every
SIP and RTP packet between the parties and the lab crosses a line that can lose, delay, jitter,
reorder, throttle or cut packets on demand::

    ns = Netns(NetnsPlan.for_address("10.233.19.2"), lab_dir)
    ns.create()                          # the namespace (a stale one of the same name is removed first)
    root_fd, ns_fd = ns.open_line()      # TUN pair, addressed and up; hand both to the netem process
    ns.exec_argv(["kamailio", ...])      # run a lab daemon inside
    ns.control.set(Impairment(loss_pct=5), direction="both")
    ns.control.outage(3.0)               # 100 % loss for 3 s, then the impairment before it
    ns.delete()                          # always: LabStack.stop() does it, also after a failed start

The addresses are private and exist only inside this machine: the /30 of a lab is chosen from
10.233.0.0/16 by its SIP port, and nothing is routed beyond the two ends of the line.
"""

from __future__ import annotations

import contextlib
import fcntl
import ipaddress
import json
import os
import secrets
import socket
import struct
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.contracts.errors import LabError
from harness.lab.netem import Impairment

__all__ = ["NETNS_NET", "LineControl", "Netns", "NetnsPlan", "default_address", "is_netns_address"]

NETNS_NET = ipaddress.IPv4Network("10.233.0.0/16")
NAME_PREFIX = "hlab"
_BLOCKS = NETNS_NET.num_addresses // 4
_TUNSETIFF = 0x400454CA
_IFF_TUN, _IFF_NO_PI = 0x0001, 0x1000


def default_address(sip_port: int) -> str:
    """The lab's namespace-side address for a SIP port: one /30 of 10.233.0.0/16 per port."""
    return str(NETNS_NET.network_address + 4 * (sip_port % _BLOCKS) + 2)


def is_netns_address(ip: str) -> bool:
    """True for a namespace-side lab address (``.2`` of a /30 in 10.233.0.0/16)."""
    try:
        addr = ipaddress.IPv4Address(ip)
    except ValueError:
        return False
    return addr in NETNS_NET and int(addr) % 4 == 2


@dataclass(frozen=True)
class NetnsPlan:
    """Names and addresses of one lab's namespace and line, all derived from its address."""

    index: int

    @classmethod
    def for_address(cls, ns_ip: str) -> NetnsPlan:
        if not is_netns_address(ns_ip):
            raise LabError(f"{ns_ip} is not a lab namespace address (the .2 of a /30 in {NETNS_NET})")
        return cls((int(ipaddress.IPv4Address(ns_ip)) - int(NETNS_NET.network_address)) // 4)

    @property
    def name(self) -> str:
        return f"{NAME_PREFIX}{self.index}"

    @property
    def root_if(self) -> str:
        return f"hl{self.index}r"

    @property
    def ns_if(self) -> str:
        return f"hl{self.index}n"

    @property
    def root_ip(self) -> str:
        return str(NETNS_NET.network_address + 4 * self.index + 1)

    @property
    def ns_ip(self) -> str:
        return str(NETNS_NET.network_address + 4 * self.index + 2)


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    try:
        res = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=10)
    except FileNotFoundError:
        raise LabError("'ip' (iproute2) is not installed: the lab's namespace mode needs it") from None
    except subprocess.TimeoutExpired:
        raise LabError(f"'ip {' '.join(args)}' did not finish within 10 s") from None
    if check and res.returncode != 0:
        hint = " (namespace mode needs root, or CAP_NET_ADMIN)" if "ermission" in res.stderr else ""
        raise LabError(f"'ip {' '.join(args)}' failed: {res.stderr.strip()}{hint}")
    return res


class Netns:
    """One lab's namespace and line: create, wire, run inside, delete."""

    def __init__(self, plan: NetnsPlan, lab_dir: Path):
        self.plan = plan
        self.control = LineControl(lab_dir / "run" / "netem.sock")

    def exists(self) -> bool:
        return self.plan.name in _ip("netns", "list", check=False).stdout.split()

    def create(self) -> None:
        if self.exists():
            self.delete()  # left by a lab that crashed: its processes are gone, its name is ours
        _ip("netns", "add", self.plan.name)
        _ip("-n", self.plan.name, "link", "set", "lo", "up")

    def delete(self) -> None:
        """Remove the namespace (safe to call twice, and when it was never created)."""
        res = _ip("netns", "delete", self.plan.name, check=False)
        if res.returncode != 0 and self.exists():
            raise LabError(f"cannot delete namespace {self.plan.name}: {res.stderr.strip()}")

    def open_line(self) -> tuple[int, int]:
        """The TUN pair, addressed and up: (root-side fd, namespace-side fd). Whoever holds the
        descriptors owns the line; the devices vanish when both are closed."""
        p = self.plan
        root_fd = _open_tun(p.root_if)
        try:
            ns_fd = _open_tun(p.ns_if)
        except LabError:
            os.close(root_fd)
            raise
        try:
            _ip("link", "set", p.ns_if, "netns", p.name)
            _ip("addr", "add", p.root_ip, "peer", p.ns_ip, "dev", p.root_if)
            _ip("link", "set", p.root_if, "up")
            _ip("-n", p.name, "addr", "add", p.ns_ip, "peer", p.root_ip, "dev", p.ns_if)
            _ip("-n", p.name, "link", "set", p.ns_if, "up")
        except LabError:
            os.close(root_fd)
            os.close(ns_fd)
            raise
        return root_fd, ns_fd

    def exec_argv(self, argv: list[str]) -> list[str]:
        """``argv`` run inside the namespace (``ip netns exec`` execs it: the pid stays the daemon's)."""
        return ["ip", "netns", "exec", self.plan.name, *argv]


def _open_tun(name: str) -> int:
    try:
        fd = os.open("/dev/net/tun", os.O_RDWR | os.O_CLOEXEC)
    except OSError as exc:
        raise LabError(f"cannot open /dev/net/tun for the lab's line: {exc.strerror}") from None
    try:
        fcntl.ioctl(fd, _TUNSETIFF, struct.pack("16sH", name.encode(), _IFF_TUN | _IFF_NO_PI))
    except OSError as exc:
        os.close(fd)
        raise LabError(f"cannot create TUN device {name}: {exc.strerror} (another lab with the same SIP "
                       "port may hold it)") from None
    return fd


class LineControl:
    """Client of the netem process's control socket. Every request waits at most ``timeout`` s."""

    def __init__(self, path: Path, timeout: float = 2.0):
        self.path, self.timeout = path, timeout

    def request(self, msg: dict[str, Any]) -> dict[str, Any]:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
            s.bind(f"\0hl-netem-{os.getpid()}-{secrets.token_hex(4)}")  # abstract: nothing left on disk
            s.settimeout(self.timeout)
            try:
                s.sendto(json.dumps(msg).encode(), str(self.path))
                reply = json.loads(s.recv(65535))
            except (OSError, ValueError) as exc:
                raise LabError(f"the lab's line (netem) did not answer '{msg.get('cmd')}': {exc}") from None
        if not isinstance(reply, dict) or not reply.get("ok"):
            raise LabError(f"the lab's line refused '{msg.get('cmd')}': "
                           f"{reply.get('error') if isinstance(reply, dict) else reply}")
        return reply

    def set(self, imp: Impairment, direction: str = "both", seed: int | None = None) -> dict[str, Any]:
        return self.request({"cmd": "set", "direction": direction, "impairment": imp.to_dict(), "seed": seed})

    def outage(self, seconds: float, direction: str = "both", media_only: bool = True) -> dict[str, Any]:
        return self.request({"cmd": "outage", "direction": direction, "seconds": seconds,
                             "media_only": media_only})

    def clear(self) -> dict[str, Any]:
        return self.request({"cmd": "clear"})

    def status(self) -> dict[str, Any]:
        return self.request({"cmd": "status"})

    def ping(self) -> bool:
        with contextlib.suppress(LabError):
            self.status()
            return True
        return False
