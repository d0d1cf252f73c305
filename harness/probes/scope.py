"""Where probes may go, and how many packets they may send.

The system and security suites speak raw SIP at a PBX. Two guards keep them polite:

* :class:`ProbeScope` names the only addresses a probe may send to: the configured target's own
  addresses (for the lab's readiness probes, the lab's own address) and loopback. Anything else is
  refused before a packet leaves (:class:`ProbeScopeError`, an input error: exit 2), so a typo in a
  profile or a redirect in a SIP answer never turns the harness on someone else's server.
* :class:`PacketBudget` caps the packets one step sends; exceeding it is an error, never a silent
  extra burst.

::

    scope = ProbeScope.for_target(target)      # resolves target.host once
    scope.check("127.0.0.1")                   # fine; scope.check("192.0.2.1") raises ProbeScopeError
    ProbeScope.for_lab("10.233.0.2")           # the embedded lab: its loopback or namespace address
    budget = PacketBudget(40)
    budget.spend()                             # 39 left
"""

from __future__ import annotations

import ipaddress
import secrets
import socket
from dataclasses import dataclass, field

from harness.contracts.errors import ProbeBudgetError, ProbeScopeError
from harness.contracts.target import Target

__all__ = ["PacketBudget", "ProbeScope", "is_ip_literal"]


def is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def _is_loopback(addr: str) -> bool:
    try:
        return ipaddress.ip_address(addr.strip("[]")).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class ProbeScope:
    """The target host and the addresses it resolved to; the only destinations a probe may use."""

    host: str
    addresses: tuple[str, ...]

    @classmethod
    def for_target(cls, target: Target) -> ProbeScope:
        """Resolve ``target.host`` (an IP literal needs no lookup); no address is an input error."""
        host = target.host.strip("[]")
        if is_ip_literal(host):
            return cls(target.host, (str(ipaddress.ip_address(host)),))
        try:
            infos = socket.getaddrinfo(host, target.port, proto=socket.IPPROTO_UDP)
        except (socket.gaierror, UnicodeError) as exc:
            raise ProbeScopeError(f"target host {host!r} does not resolve: {exc}") from None
        addrs = tuple(dict.fromkeys(str(info[4][0]) for info in infos))
        if not addrs:
            raise ProbeScopeError(f"target host {host!r} resolves to no address")
        return cls(target.host, addrs)

    @classmethod
    def for_lab(cls, ip: str) -> ProbeScope:
        """The embedded lab at ``ip`` (``LabConfig.ip``, which holds it to loopback or to the lab's namespace
        address in 10.233.0.0/16): its readiness probes go there and to loopback only. A name, or an address
        outside loopback and the private ranges, is refused (ProbeScopeError): the lab runs on this machine."""
        plain = ip.strip("[]")
        try:
            addr = ipaddress.ip_address(plain)
        except ValueError:
            raise ProbeScopeError(f"lab address {ip!r} is not an IP address") from None
        if not (addr.is_loopback or addr.is_private):
            raise ProbeScopeError(f"refusing to probe {ip} as the lab: the lab runs on loopback or in a "
                                  "network namespace of this machine")
        return cls(str(addr), (str(addr),))

    @property
    def is_loopback(self) -> bool:
        return all(_is_loopback(a) for a in self.addresses)

    @property
    def address(self) -> str:
        """The address probes go to (the first one the resolver gave)."""
        return self.addresses[0]

    def check(self, addr: str) -> str:
        """``addr`` itself when a probe may send there; ProbeScopeError otherwise."""
        plain = addr.strip("[]")
        if _is_loopback(plain):
            return plain
        try:
            canonical = str(ipaddress.ip_address(plain))
        except ValueError:
            raise ProbeScopeError(f"probe destination {addr!r} is not an IP address") from None
        if canonical not in self.addresses:
            raise ProbeScopeError(f"refusing to probe {addr}: only loopback and the configured target "
                                  f"{self.host} ({', '.join(self.addresses)}) may be probed")
        return canonical

    def isolated_source(self) -> str | None:
        """A source address of its own for probes that may get their source blocked (brute force).

        On loopback every 127.0.0.0/8 address is local, so a probe can come from 127.x.y.z and a ban
        the PBX puts on that source hits neither the other steps nor other users of the lab. A
        remote target sees the machine's one address: None lets the OS choose.
        """
        if not self.is_loopback or ":" in self.address:
            return None
        a, b, c = secrets.randbelow(200) + 20, secrets.randbelow(250) + 1, secrets.randbelow(250) + 2
        return f"127.{a}.{b}.{c}"


@dataclass
class PacketBudget:
    """At most ``limit`` packets; :meth:`spend` raises ProbeBudgetError past it."""

    limit: int
    sent: int = field(default=0)

    def spend(self, n: int = 1) -> None:
        if self.sent + n > self.limit:
            raise ProbeBudgetError(f"probe packet budget of {self.limit} exhausted")
        self.sent += n

    @property
    def left(self) -> int:
        return self.limit - self.sent
