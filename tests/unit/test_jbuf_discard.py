"""The jitter buffer's discard algorithm, set through the pjsua2 wheel's opaque enum pointer
(harness.sip.child.jbuf). Run in a subprocess: the test process loads neither pjsua2 nor a child module."""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from harness.contracts.errors import InputError
from harness.contracts.settings import JB_DISCARDS, Settings

REPO = Path(__file__).resolve().parents[2]

_PROBE = """
import ctypes, json, pjsua2
from harness.sip.child.jbuf import jb_discard_of, set_jb_discard
out = {}
for algo in ("static", "none", "progressive"):
    cfg = pjsua2.EpConfig()
    before = jb_discard_of(cfg.medConfig)
    set_jb_discard(cfg.medConfig, algo)
    out[algo] = [before, jb_discard_of(cfg.medConfig)]
try:
    set_jb_discard(pjsua2.MediaConfig(), "adaptive")
except ValueError as e:
    out["unknown"] = str(e)

class Deaf:  # a binding whose setter ignores what it is given
    def __init__(self):
        self.copies = []
    @property
    def jbDiscardAlgo(self):
        copy = ctypes.c_int(2)
        self.copies.append(copy)
        return ctypes.addressof(copy)
    @jbDiscardAlgo.setter
    def jbDiscardAlgo(self, ref):
        pass
try:
    set_jb_discard(Deaf(), "static")
except RuntimeError as e:
    out["deaf"] = str(e)
print(json.dumps(out))
"""


def _probe() -> dict[str, object]:
    run = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    # SWIG warns of every pointer to the enum it cannot free; the module disowns the ones it takes
    assert "memory leak" not in run.stdout + run.stderr
    out: dict[str, object] = json.loads(run.stdout.strip().splitlines()[-1])
    return out


def test_the_real_binding_takes_each_algorithm_and_reads_it_back() -> None:
    out = _probe()
    # pjsua's default is progressive; each setting is held by the config afterwards
    assert out["static"] == ["progressive", "static"]
    assert out["none"] == ["progressive", "none"]
    assert out["progressive"] == ["progressive", "progressive"]
    # a name it does not know, and a binding that ignores the setting, are errors
    assert "'adaptive'" in str(out["unknown"]) and "static" in str(out["unknown"])
    assert "did not take" in str(out["deaf"])


def test_the_setting_names_the_algorithms_the_child_knows(tmp_path: Path) -> None:
    assert Settings.load(tmp_path, environ={}).jb_discard == "static"
    assert Settings.load(tmp_path, environ={"HARNESS_JB_DISCARD": " Progressive "}).jb_discard == "progressive"
    with pytest.raises(InputError, match="HARNESS_JB_DISCARD='adaptive'"):
        Settings.load(tmp_path, environ={"HARNESS_JB_DISCARD": "adaptive"})
    # the child's table (harness/sip/child/jbuf.py), read without importing a child module here
    table = ast.literal_eval(re.search(r"JB_DISCARD = (\{.*?\})", (REPO / "harness/sip/child/jbuf.py").read_text())[1])
    assert set(table) == set(JB_DISCARDS)
