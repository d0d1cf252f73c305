"""A SIP party: one pjsua2 endpoint in its own process, driven over a pipe (see ``harness.sip.protocol``).

Run as ``python -m harness.sip.child``; the parent (:class:`harness.sip.party.Party`) speaks JSON lines
on stdin and reads replies and events from stdout. pjsua writes its own logs to fd 1, so the protocol
moves to a private copy of fd 1 and fd 1 is pointed at stderr before pjsua2 is imported: that happens
here, at the top of the process's entry module, before anything of this package is imported.

Everything pjsua2 does runs on this process's main thread (``threadCnt = 0``); the loop alternates
``libHandleEvents`` with reading commands, so callbacks and commands never race.

The wheel's limits (4 calls, 8 accounts, ~55 new calls/s, 32 players) are enforced here, before
pjsua2 is asked: a command that would exceed one gets an error reply instead of an abort.
"""

from __future__ import annotations

import os
import resource
import signal
import sys
import traceback

PROTO_FD = os.dup(1)
os.dup2(2, 1)
# a pjsua2 assertion aborts the process: that is reported from the log, no core file is wanted
resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
# Ctrl-C reaches the whole process group: the harness closes its parties in order, so a party must not
# die half-way on its own (pjsua would be left without libDestroy)
signal.signal(signal.SIGINT, signal.SIG_IGN)

from harness.sip.child.commands import Child  # noqa: E402  (loads pjsua2: must come after the fd shuffle above)


def main() -> None:
    child = Child(PROTO_FD)
    try:
        child.loop()
    except Exception:  # an unexpected bug: report it on the pipe, then exit non-zero
        child.out.append({"event": "fatal", "error": traceback.format_exc()})
        child.flush()
        sys.exit(3)


if __name__ == "__main__":
    main()
