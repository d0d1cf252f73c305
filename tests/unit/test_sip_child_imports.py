"""The parent never loads pjsua2: the party child's modules (harness/sip/child/) refuse to load outside
``python -m harness.sip.child``, and nothing the parent imports pulls them in."""

from __future__ import annotations

import importlib
import sys

import pytest


def test_the_parent_side_does_not_load_pjsua2() -> None:
    for name in ("harness.sip", "harness.sip.party", "harness.lab", "harness.lab.services", "harness.lab.recording",
                 "harness.probes", "harness.probes.readiness"):
        importlib.import_module(name)
    assert "pjsua2" not in sys.modules
    assert not [m for m in sys.modules if m.startswith("harness.sip.child.")]


@pytest.mark.parametrize("module", ["pjsua", "process", "call_media", "call", "account", "commands"])
def test_child_modules_refuse_to_load_in_the_parent(module: str) -> None:
    with pytest.raises(ImportError, match="only in a party's child process"):
        importlib.import_module(f"harness.sip.child.{module}")
    assert "pjsua2" not in sys.modules
