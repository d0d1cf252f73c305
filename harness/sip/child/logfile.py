"""The party's pjsua log, written a line at a time.

pjsua's own log file goes through stdio (pjlib's ANSI file I/O): its buffer reaches the disk only 8 KB
at a time, so a step that reads the SIP log mid-call (the forged BYE needs the dialog's tags and
CSeq) found the 200 OK and ACK missing for seconds, and an aborted child lost its last lines. This
writer takes every log entry from pjsua2 (which hands a writer what it would print on the console: the
child sets the console level to the log level) and writes it at once; entries at or below the party's
console level also go to stderr (the party's ``.log``), as pjsua's console output did.
"""

from __future__ import annotations

import sys
from typing import Any

from harness.sip.child.pjsua import pj

__all__ = ["LineLog"]


class LineLog(pj.LogWriter):
    def __init__(self, path: str, console_level: int):
        super().__init__()
        self.fh = open(path, "a", encoding="utf-8", errors="replace", buffering=1)  # noqa: SIM115 (lives with the child)
        self.console_level = console_level

    def write(self, entry: Any) -> None:
        msg = str(entry.msg)
        line = msg if msg.endswith("\n") else msg + "\n"
        self.fh.write(line)
        self.fh.flush()
        if int(entry.level) <= self.console_level:
            sys.stderr.write(line)
            sys.stderr.flush()

    def close(self) -> None:
        self.fh.close()
