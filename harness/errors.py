"""One exception tree for the harness, and the exit codes of the CLI.

::

    HarnessError                      any expected failure; the CLI prints it on one line, no traceback
    ├── InputError                    bad input from the user: exit 2
    │   ├── ScenarioError             a scenario or suite file is wrong (names file, line, field)
    │   ├── ProfileError              a target profile is wrong (names file, line, field)
    │   ├── FixtureError              a referenced audio fixture is missing or unreadable
    │   ├── AudioInputError           a WAV given to the audio engine is unusable (harness.audio.wavio)
    │   ├── ProbeScopeError           a probe would go beyond loopback and the target (harness.probes)
    │   ├── StoreError                the findings database cannot be used (harness.findings.errors)
    │   ├── UnknownFinding            no finding with that id
    │   └── TransitionError           a finding state change the life cycle does not allow
    ├── LabError                      the embedded lab PBX could not start / is not running (harness side)
    │   └── LabComponentError         one lab child (kamailio, rtpengine, services) is missing or crashed
    ├── PartyError                    a SIP party child failed (harness side)
    │   ├── PartyCrashed              the pjsua2 child died; carries its last log lines
    │   ├── PartyTimeout              an awaited event did not come in time
    │   └── PartyCommandError         the child refused a command (limits, bad call id, pjsua2 error)
    ├── RecordingError                an rtpengine pcap cannot be read (harness.lab.recording)
    ├── RecordingMissing              the PBX's recording did not appear (harness.scenarios.pbx_recording)
    ├── ProbeBudgetError              a probe step tried to exceed its packet bound
    ├── ProbeConnectError             a probe transport could not be opened
    └── BrowserError                  headless Chromium is missing or failed (harness.report.browser)

Each subsystem defines its own branches next to its code; this drawing is the one map of them.

"Harness side" errors (:func:`is_harness_side`) say the harness could not do its job: they are ERROR
verdicts blamed on the harness and, when nothing else failed, exit code 3 instead of 1.
"""

from __future__ import annotations

from enum import IntEnum

__all__ = [
    "ExitCode",
    "FixtureError",
    "HarnessError",
    "InputError",
    "LabComponentError",
    "LabError",
    "PartyCommandError",
    "PartyCrashed",
    "PartyError",
    "PartyTimeout",
    "ProfileError",
    "ScenarioError",
    "is_harness_side",
]


class ExitCode(IntEnum):
    """Exit codes of every ``harness`` command.

    CI tells a broken PBX (1) from a broken harness (3): 3 means nothing was found wrong with the target,
    but the harness could not judge it (the lab did not start, a party crashed, the harness host was
    overloaded while checks were measured, an internal error). A run with both kinds exits 1.
    """

    OK = 0  #: everything passed
    FAILED = 1  #: at least one FAIL or ERROR verdict about the target (the PBX under test)
    USAGE = 2  #: usage or input error (bad option, malformed scenario/profile, missing file)
    HARNESS = 3  #: only the harness failed: lab start, party crash, host overloaded, internal error
    INTERRUPTED = 130  #: SIGINT/SIGTERM; results so far are kept


class HarnessError(Exception):
    """An expected failure, reported to the user in one line."""

    exit_code: ExitCode = ExitCode.FAILED
    harness_side = False  #: the harness could not do its job (not a finding about the target)


def is_harness_side(exc: BaseException) -> bool:
    """True for errors of the harness itself (lab, party processes), as opposed to the target's."""
    return bool(getattr(exc, "harness_side", False))


class InputError(HarnessError):
    exit_code = ExitCode.USAGE


def _where(path: str | None, line: int | None, field: str | None) -> str:
    loc = path or "<input>"
    if line is not None:
        loc += f":{line}"
    if field:
        loc += f": {field}"
    return loc


class _LocatedInputError(InputError):
    def __init__(self, message: str, path: str | None = None, line: int | None = None, field: str | None = None):
        self.path, self.line, self.field, self.message = path, line, field, message
        super().__init__(f"{_where(path, line, field)}: {message}")


class ScenarioError(_LocatedInputError):
    """A scenario or suite file is malformed."""


class ProfileError(_LocatedInputError):
    """A target profile is malformed."""


class FixtureError(_LocatedInputError):
    """An audio fixture named by a scenario is missing or unreadable."""


class LabError(HarnessError):
    exit_code = ExitCode.HARNESS
    harness_side = True


class LabComponentError(LabError):
    def __init__(self, component: str, message: str, log_tail: str = ""):
        self.component, self.log_tail = component, log_tail
        text = f"{component}: {message}"
        if log_tail:
            text += "\n  last log lines:\n" + "\n".join("    " + ln for ln in log_tail.splitlines())
        super().__init__(text)


class PartyError(HarnessError):
    exit_code = ExitCode.HARNESS
    harness_side = True

    def __init__(self, party: str, message: str, log_tail: str = ""):
        self.party, self.log_tail = party, log_tail
        super().__init__(f"party {party}: {message}")


class PartyCrashed(PartyError):
    pass


class PartyTimeout(PartyError):
    """An awaited event did not come (usually the target's doing: the default), or the child did not
    reply to a command (the harness's: ``harness_side=True``)."""

    exit_code = ExitCode.FAILED
    harness_side = False

    def __init__(self, party: str, message: str, log_tail: str = "", *, harness_side: bool = False):
        super().__init__(party, message, log_tail)
        self.harness_side = harness_side
        if harness_side:
            self.exit_code = ExitCode.HARNESS


class PartyCommandError(PartyError):
    pass
