"""Raw SIP probes for the system and security suites: scope guard, transports, client, evidence.

The scenario steps in ``harness/scenarios/steps_system.py`` and ``steps_security.py`` drive these;
everything here works without the scenario machinery::

    from harness.probes import ProbeSession
    with ProbeSession(target, out_dir / "probe-evidence.txt", packets=50) as ps:
        probe = ps.probe("udp")
        ex = probe.request("OPTIONS", probe.server_uri(), from_user="probe")
"""

from harness.contracts.errors import ProbeBudgetError, ProbeConnectError, ProbeScopeError
from harness.probes.client import Exchange, Reply, SipProbe
from harness.probes.probe_evidence import EvidenceLog, mask
from harness.probes.probe_session import ProbeSession
from harness.probes.scope import PacketBudget, ProbeScope
from harness.probes.transport import Channel, open_channel

__all__ = [
    "Channel",
    "EvidenceLog",
    "Exchange",
    "PacketBudget",
    "ProbeBudgetError",
    "ProbeConnectError",
    "ProbeScope",
    "ProbeScopeError",
    "ProbeSession",
    "Reply",
    "SipProbe",
    "mask",
    "open_channel",
]
