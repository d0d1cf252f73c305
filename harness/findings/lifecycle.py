"""The life cycle of a finding: which action is allowed in which state, and where it leads.

::

    found ──► open ──note──► analysed ──fixed──► fixed ──retest passes──► verified
               ▲  └────────────fixed────────────▲  │                         │
               └──────────── reopened ◄─────────┴──┴── fails again ──────────┘

A note on a finding that is already fixed or verified is kept in the history without moving it
back. A retest that fails while the finding is still open or analysed is recorded (``retested``)
and leaves the state alone. Pure functions, so every store backend applies the same rules.
"""

from __future__ import annotations

from harness.contracts.errors import TransitionError
from harness.findings.finding_model import Action, State

__all__ = ["next_state", "on_retest", "on_sighting"]


def next_state(state: State | None, action: Action, finding_id: int = 0) -> State:
    """The state after ``action``; TransitionError (one line, exit 2) when it is not allowed."""
    match action:
        case Action.FOUND:
            if state is not None:
                raise TransitionError(f"finding #{finding_id} already exists")
            return State.OPEN
        case Action.NOTED:
            return State.ANALYSED if state in (State.OPEN, State.ANALYSED) else _known(state, finding_id)
        case Action.FIXED:
            if state in (State.OPEN, State.ANALYSED):
                return State.FIXED
            if state is State.FIXED:
                raise TransitionError(f"finding #{finding_id} is already fixed; 'harness retest {finding_id}' "
                                      "checks the fix")
            raise TransitionError(f"finding #{finding_id} is {_name(state)}: only an open or analysed finding "
                                  "can be marked fixed")
        case Action.VERIFIED:
            return State.VERIFIED
        case Action.REOPENED:
            if state in (State.FIXED, State.VERIFIED):
                return State.OPEN
            raise TransitionError(f"finding #{finding_id} is {_name(state)}: only a fixed or verified finding "
                                  "can be reopened")
        case Action.RETESTED:
            return _known(state, finding_id)
    raise TransitionError(f"unknown action {action!r}")


def on_sighting(state: State | None) -> Action | None:
    """What a new failure of the finding's check does: open it, reopen it, or only count it (None)."""
    if state is None:
        return Action.FOUND
    if state in (State.FIXED, State.VERIFIED):
        return Action.REOPENED
    return None


def on_retest(state: State, passed: bool) -> Action:
    """A retest that passes verifies (from any state); one that fails reopens a fixed/verified finding."""
    if passed:
        return Action.RETESTED if state is State.VERIFIED else Action.VERIFIED
    return Action.REOPENED if state in (State.FIXED, State.VERIFIED) else Action.RETESTED


def _known(state: State | None, finding_id: int) -> State:
    if state is None:
        raise TransitionError(f"finding #{finding_id} does not exist yet")
    return state


def _name(state: State | None) -> str:
    return state.value if state is not None else "new"
