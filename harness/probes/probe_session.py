"""One step's worth of probing: the scope guard, a packet budget, the evidence file and its channels.

::

    with ProbeSession(target, out_dir / "system-evidence.txt", packets=60) as ps:
        probe = ps.probe("tcp")                       # ProbeConnectError when TCP is not offered
        probe.request("OPTIONS", probe.server_uri(), from_user="probe")

With ``isolated=True`` (the security steps) every channel of the session comes from one loopback
address of its own when the target is on loopback, so a PBX that bans a probing source (as it
should, after wrong passwords) bans only that step's probes.

Ports follow the usual convention when the profile names only one: UDP and TCP share the profile's
port, TLS is on the next one (5060 -> 5061) unless the profile names it (``pbx.tls_port``); a profile whose
transport is TLS has UDP/TCP one below.
"""

from __future__ import annotations

import ssl
from pathlib import Path
from types import TracebackType

from harness.contracts.target import Target
from harness.probes.client import SipProbe
from harness.probes.probe_evidence import EvidenceLog
from harness.probes.scope import PacketBudget, ProbeScope
from harness.probes.transport import Channel, open_channel

__all__ = ["ProbeSession", "default_port"]


def default_port(target: Target, transport: str) -> int:
    if transport == target.transport:
        return target.port
    if transport == "tls":
        return target.tls_port or target.port + 1
    if target.transport == "tls":
        return max(1, target.port - 1)
    return target.port


class ProbeSession:
    def __init__(self, target: Target, evidence: EvidenceLog | Path, *, packets: int, timeout: float = 2.0,
                 scope: ProbeScope | None = None, isolated: bool = False):
        self.target, self.timeout = target, timeout
        self.scope = scope or ProbeScope.for_target(target)
        #: the source address of this session's probes: on loopback, with ``isolated``, one of its own
        self.source = self.scope.isolated_source() if isolated else None
        self.budget = PacketBudget(packets)
        self.evidence = evidence if isinstance(evidence, EvidenceLog) else EvidenceLog(
            evidence, secrets=[a.password.reveal() for a in target.accounts.values()])
        self._channels: list[Channel] = []

    def __enter__(self) -> ProbeSession:
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        for ch in self._channels:
            ch.close()
        self._channels.clear()

    @property
    def server_name(self) -> str:
        """The name TLS asks for (SNI) and the certificate must match: the SIP domain, else the host."""
        return self.target.domain or self.target.host

    def probe(self, transport: str | None = None, *, port: int | None = None, source: str | None = None,
              tls: ssl.SSLContext | None = None, user_agent: str = "harness-probe") -> SipProbe:
        """A client on a new channel; raises ProbeConnectError when the transport cannot be opened."""
        tp = transport or self.target.transport
        ch = open_channel(self.scope, self.budget, tp, port or default_port(self.target, tp),
                          source=source or self.source,
                          timeout=self.timeout, tls=tls, server_name=self.server_name)
        self._channels.append(ch)
        return SipProbe(ch, self.target, self.evidence, user_agent=user_agent, timeout=self.timeout)
