"""The harness watching its own health: host pressure (:mod:`.host`) and the judgement of a window (:mod:`.judge`).

A party's own clocks are measured in its child process (:mod:`harness.sip.health`); the runner puts
both together for every window in which checks were measured, and a check whose window shows a starved
harness becomes ERROR blamed on the harness, never a FAIL that blames the PBX.
"""

from harness.contracts.thresholds import HealthLimits
from harness.health.host import HostMonitor
from harness.health.judge import PartySeries, WindowHealth, assess

__all__ = ["HealthLimits", "HostMonitor", "PartySeries", "WindowHealth", "assess"]
