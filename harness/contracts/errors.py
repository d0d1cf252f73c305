"""One exception tree for the harness, and the exit codes of the CLI.

Every exception the harness raises on purpose is defined here, so this drawing is complete (a unit test
compares it with ``HarnessError``'s subclasses)::

    HarnessError                      any expected failure; the CLI prints it on one line, no traceback
    ├── InputError                    bad input from the user: exit 2
    │   ├── ScenarioError             a scenario or suite file is wrong (names file, line, field)
    │   ├── ProfileError              a target profile is wrong (names file, line, field)
    │   ├── FixtureError              a referenced audio fixture is missing or unreadable
    │   ├── AudioInputError           a WAV given to the audio engine is unusable
    │   ├── ProbeScopeError           a probe would go beyond loopback and the target
    │   ├── StoreError                the findings database cannot be used
    │   ├── UnknownFinding            no finding with that id
    │   └── TransitionError           a finding state change the life cycle does not allow
    ├── LabError                      the embedded lab PBX could not start / is not running (harness side)
    │   └── LabComponentError         one lab child (kamailio, rtpengine, services) is missing or crashed
    ├── PartyError                    a SIP party child failed (harness side)
    │   ├── PartyCrashed              the pjsua2 child died; carries its last log lines
    │   ├── PartyTimeout              an awaited event did not come in time (or the child did not reply)
    │   └── PartyCommandError         the child refused a command (limits, bad call id, pjsua2 error)
    ├── StepFailed                    a step's own check failed: the scenario's next steps are meaningless
    ├── FixtureBuildError             the fixture builder's sources (Debian packages) are missing or failed
    ├── RecordingError                an rtpengine pcap cannot be turned into audio
    ├── RecordingMissing              the PBX's recording did not appear
    ├── CaptureError                  a packet capture cannot be read
    ├── ProbeBudgetError              a probe step tried to exceed its packet bound
    ├── ProbeConnectError             a probe transport could not be opened
    ├── SipFailure                    a load transaction failed (what Locust records)
    └── BrowserError                  headless Chromium is missing or failed

"Harness side" errors (:func:`is_harness_side`) say the harness could not do its job: they are ERROR
verdicts blamed on the harness and, when nothing else failed, exit code 3 instead of 1.
"""

from __future__ import annotations

from enum import IntEnum
from pathlib import Path

__all__ = [
    "AudioInputError",
    "BrowserError",
    "CaptureError",
    "ExitCode",
    "FixtureBuildError",
    "FixtureError",
    "HarnessError",
    "InputError",
    "LabComponentError",
    "LabError",
    "PartyCommandError",
    "PartyCrashed",
    "PartyError",
    "PartyTimeout",
    "ProbeBudgetError",
    "ProbeConnectError",
    "ProbeScopeError",
    "ProfileError",
    "RecordingError",
    "RecordingMissing",
    "ScenarioError",
    "SipFailure",
    "StepFailed",
    "StoreError",
    "TransitionError",
    "UnknownFinding",
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


class AudioInputError(InputError, ValueError):
    """A WAV file cannot be used as audio input; the message names the file and the reason.

    An :class:`InputError` (the CLI prints it on one line and exits 2) and a ValueError.
    """

    def __init__(self, path: str | Path, reason: str):
        self.path, self.reason = str(path), reason
        super().__init__(f"{path}: {reason}")


class ProbeScopeError(InputError):
    """A probe was about to go to an address that is neither loopback nor the configured target."""


class StoreError(InputError):
    """The findings database at ``path`` cannot be used; the message says why and what to do."""

    def __init__(self, path: str, message: str):
        self.path = path
        super().__init__(f"findings database {path} {message}")


class UnknownFinding(InputError):
    def __init__(self, finding_id: int, path: str):
        self.finding_id = finding_id
        super().__init__(f"no finding #{finding_id} in {path} ('harness findings list --status all' lists them)")


class TransitionError(InputError):
    """A finding state change the life cycle does not allow (e.g. 'fixed' on a verified finding)."""


class StepFailed(HarnessError):
    """A step's own check failed in a way that makes the following steps meaningless."""


class FixtureBuildError(HarnessError):
    """A source the fixtures need (sound package, espeak-ng) is missing or failed (exit code 1)."""


class RecordingError(HarnessError):
    """A recording cannot be turned into audio; the message names the file and the reason."""

    def __init__(self, path: Path | str, message: str):
        self.path, self.message = Path(path), message
        super().__init__(f"{path}: {message}")


class RecordingMissing(HarnessError):
    """The PBX's recording did not appear, or could not be read."""


class CaptureError(HarnessError):
    """The file is not a packet capture this harness can read; the message names the file."""

    def __init__(self, path: Path, message: str):
        self.path, self.message = path, message
        super().__init__(f"{path}: {message}")


class ProbeBudgetError(HarnessError):
    """A step tried to send more packets than its bound allows."""


class ProbeConnectError(HarnessError):
    """The transport could not be opened; ``reason`` is short enough for a report cell."""

    def __init__(self, transport: str, where: str, reason: str):
        self.transport, self.where, self.reason = transport, where, reason
        super().__init__(f"{transport.upper()} {where}: {reason}")


class SipFailure(HarnessError):
    """A failed transaction as Locust records it: the SIP status, or ``timeout``."""

    def __init__(self, code: str):
        self.code = code
        super().__init__(f"SIP {code}" if code.isdigit() else code)


class BrowserError(HarnessError):
    """Chromium is missing, did not start, or the DevTools protocol failed."""
