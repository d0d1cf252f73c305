"""SIP load with Locust: a pure-Python gevent SIP UAC, load shapes as data, SLA verdicts, and audio
quality measured on real calls while the load runs.

The only package of the harness that imports locust and gevent, and only when a load run starts
(``import locust`` monkey-patches the process). From the command line::

    harness load scenarios/load-smoke.yaml [--target FILE] [--web] [--workers N] [--out DIR]

From Python::

    from harness.load import load_profile
    profile = load_profile(Path("scenarios/load-smoke.yaml"))   # errors name file:line: field
    profile.timeline.duration_s

One module per concern: profile (the YAML), shapes (the timeline), plan (profile bound to a target),
wire (SIP bytes), timers (RFC 3261 timers), txn (transactions and dialogs), uacbase (sending, and
responses matched to transactions), uac (transaction flows), scheduler (drives the flows),
endpoint (the UDP socket), rtp (G.711 streams), engine (one process's generator), users (Locust
glue), recorder/histogram (measurements), summary (steps and SLA), media (pjsua2 calls under load),
run (one run), worker (a distributed worker process), cli (the command).
"""

from __future__ import annotations

from harness.load.profile import SLA_KEYS, LoadProfile, load_profile
from harness.load.shapes import Stage, Timeline

__all__ = ["SLA_KEYS", "LoadProfile", "Stage", "Timeline", "load_profile"]
