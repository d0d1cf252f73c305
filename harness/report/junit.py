"""JUnit XML for CI (Jenkins, GitLab): one testsuite per scenario, one testcase per check.

Failure text says what was measured against what threshold, so a CI page is readable on its own.
Built with ElementTree, which escapes everything taken from SIP messages.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

__all__ = ["junit_xml", "write_junit"]


def _measured(check: dict[str, Any]) -> str:
    unit = f" {check['unit']}" if check.get("unit") else ""
    value = "no measurement" if check.get("value") is None else f"{check['value']}{unit}"
    op = check.get("op") or "vs"
    shown_unit = unit if check.get("op") else ""
    text = f"{check['name']}: measured {value}, threshold {op} {check.get('threshold')}{shown_unit}"
    if check.get("detail"):
        text += f" ({check['detail']})"
    return text


def junit_xml(results: dict[str, Any]) -> ET.ElementTree:
    root = ET.Element("testsuites", name=f"harness run {results.get('run_id', '')}")
    totals = {"tests": 0, "failures": 0, "errors": 0}
    for sc in results.get("scenarios", []):
        checks = sc.get("checks", [])
        suite = ET.SubElement(root, "testsuite", name=sc["name"], file=str(sc.get("file", "")),
                              time=f"{sc.get('duration_s', 0):.3f}")
        n_fail = n_err = 0
        for c in checks:
            case = ET.SubElement(suite, "testcase", classname=f"harness.{sc['name']}", name=c["name"])
            if c["verdict"] == "FAIL":
                n_fail += 1
                el = ET.SubElement(case, "failure", message=_measured(c), type="FAIL")
                el.text = _measured(c)
            elif c["verdict"] == "ERROR":
                n_err += 1
                el = ET.SubElement(case, "error", message=_measured(c), type="ERROR")
                el.text = _measured(c)
        err = sc.get("error")
        if err:
            case = ET.SubElement(suite, "testcase", classname=f"harness.{sc['name']}",
                                 name=f"step:{err.get('step', 'setup')}")
            el = ET.SubElement(case, "error", message=str(err.get("message", "")), type="ERROR")
            el.text = "\n".join(str(x) for x in (err.get("message"), err.get("log_tail")) if x)
            n_err += 1
        if not checks and not err:
            case = ET.SubElement(suite, "testcase", classname=f"harness.{sc['name']}", name="no checks")
            ET.SubElement(case, "error", message="the scenario produced no checks", type="ERROR")
            n_err += 1
        tests = len(suite.findall("testcase"))
        suite.set("tests", str(tests))
        suite.set("failures", str(n_fail))
        suite.set("errors", str(n_err))
        totals["tests"] += tests
        totals["failures"] += n_fail
        totals["errors"] += n_err
    for k, v in totals.items():
        root.set(k, str(v))
    ET.indent(root)
    return ET.ElementTree(root)


def write_junit(results: dict[str, Any], path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    junit_xml(results).write(tmp, encoding="utf-8", xml_declaration=True)
    tmp.replace(path)
