"""Real-time scheduling for the processes that carry media: the harness's parties and the lab's relay.

Why: a party's pjmedia clock thread sends an RTP packet every 20 ms and its jitter buffer plays one
out on the same tick. When other work on the host delays that thread, the party sends a burst after a
gap, the far end's adaptive jitter buffer grows, and the judged audio shows a delay jump and a lower
MOS that the PBX never caused. Measured on a 2-core machine with the unit tests and an audio benchmark
running beside it: the clock of a normal-priority process ran up to 48 ms late (p99 19 ms); under
``SCHED_RR`` the same load left it at p99 1 ms. Telephony servers do the same (``asterisk -p``,
``freeswitch -rp``).

A process under a real-time policy could starve the host if it ever spun: ``RLIMIT_RTTIME`` makes the
kernel send SIGXCPU after ``RTTIME_SOFT_US`` of CPU without a blocking call, and kill it at the hard
limit. A party never computes for that long (it waits in ``libHandleEvents`` and ``select``).

Without the privilege (not root, no CAP_SYS_NICE, no ``rtprio`` limit) the process stays as it is and
says so; the harness's health watch then tells whether the host starved it.
"""

from __future__ import annotations

import contextlib
import os
import resource
import shutil
import subprocess
from dataclasses import dataclass

__all__ = ["RT_PRIORITY", "Priority", "elevate", "realtime_argv"]

#: SCHED_RR priority for media processes (1..99; kernel threads that matter sit at 50 and above)
RT_PRIORITY = 20
RTTIME_SOFT_US = 2_000_000
RTTIME_HARD_US = 4_000_000


@dataclass(frozen=True)
class Priority:
    """What a process got: ``policy`` is ``SCHED_RR`` or ``normal``; ``why`` says why not real-time."""

    policy: str
    priority: int = 0
    why: str = ""

    def describe(self) -> str:
        if self.policy == "SCHED_RR":
            return f"SCHED_RR {self.priority}"
        return f"normal ({self.why})" if self.why else "normal"

    def as_dict(self) -> dict[str, object]:
        return {"policy": self.policy, "priority": self.priority, "why": self.why}


def elevate(wanted: str = "realtime", priority: int = RT_PRIORITY) -> Priority:
    """Put the calling thread under SCHED_RR (threads it creates later inherit it).

    ``wanted`` is ``realtime`` or ``normal`` (the harness's ``HARNESS_MEDIA_PRIORITY``). Never raises.
    """
    if wanted == "normal":
        return Priority("normal", why="HARNESS_MEDIA_PRIORITY=normal")
    if not hasattr(os, "sched_setscheduler"):
        return Priority("normal", why="no real-time scheduling on this OS")
    # the limit is a safety net; without it the policy is still worth having
    with contextlib.suppress(OSError, ValueError, AttributeError):
        resource.setrlimit(resource.RLIMIT_RTTIME, (RTTIME_SOFT_US, RTTIME_HARD_US))
    try:
        os.sched_setscheduler(0, os.SCHED_RR, os.sched_param(priority))
    except PermissionError:
        return Priority("normal", why="not permitted: run as root, or grant CAP_SYS_NICE or an rtprio limit")
    except OSError as exc:
        return Priority("normal", why=f"sched_setscheduler failed: {exc.strerror}")
    return Priority("SCHED_RR", priority)


_CAN_RT: bool | None = None


def realtime_argv(argv: list[str], wanted: str = "realtime", priority: int = RT_PRIORITY) -> list[str]:
    """``argv`` run under SCHED_RR (through util-linux's ``chrt``) when ``wanted`` and permitted, else as is.

    For programs the harness starts but does not write (kamailio, rtpengine): their threads and the
    processes they fork inherit the policy.
    """
    global _CAN_RT
    if wanted != "realtime":
        return argv
    chrt = shutil.which("chrt")
    if chrt is None:
        return argv
    if _CAN_RT is None:
        try:
            _CAN_RT = subprocess.run([chrt, "-r", str(priority), "true"], capture_output=True, timeout=5,
                                     check=False).returncode == 0
        except (OSError, subprocess.SubprocessError):
            _CAN_RT = False
    return [chrt, "-r", str(priority), *argv] if _CAN_RT else argv
