"""JUnit XML for CI (Jenkins, GitLab): one testsuite per scenario, one testcase per check.

Failure text says what was measured against what threshold, so a CI page is readable on its own.
A load run's SLA verdicts (``load.json``) become one more testsuite, ``load``. Built with
ElementTree, which escapes everything taken from SIP messages; characters XML 1.0 cannot carry at
all (control bytes a broken PBX may send) are replaced, so CI's parser never chokes on the file.
"""

from __future__ import annotations

import re
import socket
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

__all__ = ["junit_xml", "write_junit"]

_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _clean(text: Any) -> str:
    return _NOT_XML.sub("\ufffd", str(text))


def _measured(check: dict[str, Any]) -> str:
    unit = f" {check['unit']}" if check.get("unit") else ""
    value = "no measurement" if check.get("value") is None else f"{check['value']}{unit}"
    op = check.get("op") or "vs"
    shown_unit = unit if check.get("op") else ""
    text = f"{check['name']}: measured {value}, threshold {op} {check.get('threshold')}{shown_unit}"
    if check.get("detail"):
        text += f" ({check['detail']})"
    return _clean(text)


def _case(suite: ET.Element, classname: str, check: dict[str, Any]) -> tuple[int, int]:
    """One testcase; returns (failures, errors) it adds."""
    case = ET.SubElement(suite, "testcase", classname=_clean(classname), name=_clean(check["name"]))
    if check.get("verdict") == "PASS":
        return 0, 0
    kind = "failure" if check.get("verdict") == "FAIL" else "error"
    el = ET.SubElement(case, kind, message=_measured(check), type=str(check.get("verdict") or "ERROR"))
    el.text = _measured(check)
    return (1, 0) if kind == "failure" else (0, 1)


def _finish(suite: ET.Element, n_fail: int, n_err: int, totals: dict[str, int]) -> None:
    tests = len(suite.findall("testcase"))
    suite.set("tests", str(tests))
    suite.set("failures", str(n_fail))
    suite.set("errors", str(n_err))
    totals["tests"] += tests
    totals["failures"] += n_fail
    totals["errors"] += n_err


def _stamp(t: Any) -> str | None:
    if isinstance(t, int | float) and not isinstance(t, bool) and t > 0:
        return time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(float(t)))
    return None


def junit_xml(results: dict[str, Any], load: dict[str, Any] | None = None) -> ET.ElementTree:
    """The JUnit tree of a run's ``results.json`` data, plus the SLA verdicts of ``load.json`` if given."""
    root = ET.Element("testsuites", name=_clean(f"harness run {results.get('run_id', '')}"))
    totals = {"tests": 0, "failures": 0, "errors": 0}
    host = socket.gethostname()
    for sc in results.get("scenarios", []):
        checks = sc.get("checks", [])
        suite = ET.SubElement(root, "testsuite", name=_clean(sc["name"]), file=_clean(sc.get("file", "")),
                              time=f"{sc.get('duration_s', 0):.3f}", hostname=host)
        if _stamp(sc.get("started")):
            suite.set("timestamp", str(_stamp(sc.get("started"))))
        n_fail = n_err = 0
        for c in checks:
            f, e = _case(suite, f"harness.{sc['name']}", c)
            n_fail, n_err = n_fail + f, n_err + e
        err = sc.get("error")
        if err:
            case = ET.SubElement(suite, "testcase", classname=_clean(f"harness.{sc['name']}"),
                                 name=_clean(f"step:{err.get('step', 'setup')}"))
            el = ET.SubElement(case, "error", message=_clean(err.get("message", "")), type="ERROR")
            el.text = _clean("\n".join(str(x) for x in (err.get("message"), err.get("log_tail")) if x))
            n_err += 1
        if not checks and not err:
            case = ET.SubElement(suite, "testcase", classname=_clean(f"harness.{sc['name']}"), name="no checks")
            ET.SubElement(case, "error", message="the scenario produced no checks", type="ERROR")
            n_err += 1
        out = [f"artifacts: {sc['out_dir']}/"] if sc.get("out_dir") else []
        for a in sc.get("attempts") or []:  # earlier attempts its starved host left unjudged
            if isinstance(a, dict):
                out.append(f"attempt {a.get('attempt')} not judged ({a.get('verdict')}: the harness's host was "
                           f"overloaded), run again; its artifacts: {a.get('out_dir')}/")
        if out:
            ET.SubElement(suite, "system-out").text = _clean("\n".join(out))
        _finish(suite, n_fail, n_err, totals)
    if load is not None:
        from harness.report.loadrun import load_checks

        suite = ET.SubElement(root, "testsuite", name=_clean(f"load {load.get('profile') or ''}".strip()),
                              hostname=host)
        n_fail = n_err = 0
        checks = load_checks(load)
        for c in checks:
            f, e = _case(suite, "harness.load", c)
            n_fail, n_err = n_fail + f, n_err + e
        if not checks:
            case = ET.SubElement(suite, "testcase", classname="harness.load", name="no SLA verdicts")
            ET.SubElement(case, "error", message="load.json holds no SLA verdicts", type="ERROR")
            n_err += 1
        _finish(suite, n_fail, n_err, totals)
    for k, v in totals.items():
        root.set(k, str(v))
    ET.indent(root)
    return ET.ElementTree(root)


def write_junit(results: dict[str, Any], path: Path, load: dict[str, Any] | None = None) -> None:
    tmp = path.with_name(path.name + ".tmp")
    junit_xml(results, load).write(tmp, encoding="utf-8", xml_declaration=True)
    tmp.replace(path)
