"""The findings subsystem's errors, as branches of the one tree in :mod:`harness.errors`.

::

    InputError (exit 2)
    ├── StoreError          the findings database cannot be used: not SQLite, not ours, newer schema, damaged
    ├── UnknownFinding      no finding with that id
    └── TransitionError     a state change the life cycle does not allow (e.g. 'fixed' on a verified finding)

All three are the user's to act on (move a file away, pick another id, retest instead), hence InputError.
"""

from __future__ import annotations

from harness.errors import InputError

__all__ = ["StoreError", "TransitionError", "UnknownFinding"]


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
    pass
