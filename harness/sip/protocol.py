"""The pipe protocol between the harness and a SIP party child: one JSON object per line.

Parent -> child (commands)::

    {"id": 7, "cmd": "call", "args": {"account": "caller", "uri": "sip:2001@127.0.0.1"}}

Child -> parent (a reply to each command, and events as they happen)::

    {"id": 7, "ok": true, "result": {"call": "c1", "t_invite": 12345.678}}
    {"id": 8, "ok": false, "error": "call limit reached: 4 concurrent calls per party process"}
    {"event": "call_state", "call": "c1", "state": "CONFIRMED", "code": 200, "t": 12345.901}

Times ``t`` are CLOCK_MONOTONIC seconds, taken in the child at the moment pjsua2 reports the event;
the clock is system-wide, so the parent can subtract them from its own readings.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["LIMITS", "decode", "encode"]

#: The pjsua2 wheel's compiled-in limits (see FACTS): exceeding some of them aborts the process,
#: so both the child and the parent refuse before pjsua2 is asked.
LIMITS = {
    "max_calls": 4,
    "max_accounts": 8,
    "max_players": 24,  # 32 in the wheel; keep headroom for recorders/tone generators
    "max_new_calls_per_s": 40.0,  # ~55/s is safe, ~70/s aborts
}


def encode(obj: dict[str, Any]) -> bytes:
    return (json.dumps(obj, separators=(",", ":"), default=str) + "\n").encode()


def decode(line: bytes) -> dict[str, Any]:
    obj = json.loads(line)
    if not isinstance(obj, dict):
        raise ValueError("protocol line is not a JSON object")
    return obj
