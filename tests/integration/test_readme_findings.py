"""README.md's find -> analyse -> fix -> retest lines, run as written, against the session's lab standing in
for "my PBX" (``my-pbx.yaml``: the profile ``harness lab profile`` prints):

    harness run scenarios/connect.yaml --target my-pbx.yaml --out reports/tonight
    harness findings list / show 7 / note 7 "..." / fixed 7 --note "..."
    harness retest 7, harness retest --all-fixed, harness run --only-failed, harness report reports/tonight

Tonight's connect run passes; then a log-in check of the desk phones (a scenario of the test's own) fails
for seven of them, and #7 is agent 2001's phone with a stale password, as in the README. The store is the
test's own (``HARNESS_DB``), so the session's other runs do not take its ids.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from harness.lab import LabStack

from .cli_lines import SESSION_PORTS, sh, workdir

#: seven phones log in: six with caller2's account, then agent 2001's (its findings are #1-#6 and #7)
DESKS = """
name: desks
description: The desk phones log in.
parties:
{parties}
  agent: {{account: agent1}}
steps:
  - talk: 0
"""


def test_find_note_fix_retest_as_in_the_readme(lab: LabStack, lab_home: Path, tmp_path: Path) -> None:
    work = workdir(tmp_path / "work")
    db = work / "findings.db"

    def run(line: str, rc: int = 0, timeout: float = 120) -> str:
        proc = sh(line, cwd=work, home=lab_home, ports=SESSION_PORTS, env={"HARNESS_DB": str(db)}, timeout=timeout)
        out = proc.stdout + proc.stderr
        assert proc.returncode == rc and "Traceback" not in out, f"{line}: exit {proc.returncode}\n{out}"
        return out

    profile: dict[str, Any] = yaml.safe_load(run("harness lab profile"))
    profile["name"] = "my-pbx"

    def write_profile(**passwords: str) -> None:
        data = json.loads(json.dumps(profile))
        for account, pw in passwords.items():
            data["accounts"][account]["password"] = pw
        (work / "my-pbx.yaml").write_text(yaml.safe_dump(data, sort_keys=False))

    write_profile()
    out = run("harness run scenarios/connect.yaml --target my-pbx.yaml --out reports/tonight")
    assert "PASS: 1 passed, 0 failed, 0 errors" in out and "results: reports/tonight/results.json" in out
    tonight = json.loads((work / "reports" / "tonight" / "results.json").read_text())
    assert tonight["verdict"] == "PASS" and tonight["target"]["name"] == "my-pbx"
    assert (work / "reports" / "tonight" / "junit.xml").is_file()

    # the desk phones' log-in check: caller2's and agent 2001's passwords are stale
    (work / "desks.yaml").write_text(DESKS.format(parties="\n".join(
        f"  desk{n}: {{account: caller2}}" for n in range(1, 7))))
    write_profile(caller2="stale-1002", agent1="stale-2001")
    run("harness run desks.yaml --target my-pbx.yaml --out reports/desks", rc=1)

    out = run("harness findings list")
    seven = next(ln for ln in out.splitlines() if ln.strip().startswith("7 "))
    assert "open" in seven and "desks / register:agent @ my-pbx" in seven, out
    assert "account 'agent1' (user 2001)" in out
    assert sum(f"desks / register:desk{n} @ my-pbx" in out for n in range(1, 7)) == 6, out
    out = run("harness findings show 7")
    assert out.startswith("finding #7: ") and "state:     open" in out
    assert "rule auth_failure" in out and "401 Unauthorized" in out and "history:" in out
    assert "stale-2001" not in out, "passwords never reach the evidence"

    out = run("""harness findings note 7 "agent 2001's phone had a stale password"   # cause and solution""")
    assert "finding #7 is analysed; note recorded" in out
    write_profile()  # the repair
    out = run('harness findings fixed 7 --note "password reset on the PBX"')
    assert "finding #7 is fixed; check it with 'harness retest 7'" in out
    out = run("harness retest 7")
    assert "finding #7 (desks / register:agent @ my-pbx" in out and "PASSED -> verified" in out
    assert "401 SIP FAIL" in out and "200 SIP PASS" in out
    assert "finding #1 " not in out, "a retest moves only the findings it was asked for"
    shown = run("harness findings show 7")
    assert "state:     verified" in shown and "agent 2001's phone had a stale password" in shown
    assert "password reset on the PBX" in shown

    for n in range(1, 7):  # caller2's password was reset too
        run(f'harness findings fixed {n} --note "caller2 password reset"')
    out = run("harness retest --all-fixed")
    assert sum(f"finding #{n} (desks / register:desk{n} @ my-pbx" in out for n in range(1, 7)) == 6, out
    assert out.count("PASSED -> verified") == 6
    assert "no findings (open, analysed, fixed)" in run("harness findings list")

    # what failed in the last run (the desks) runs again; no --target: against the running lab
    out = run("harness run --only-failed")
    assert "desks" in out and "PASS: 1 passed, 0 failed, 0 errors" in out

    out = run("harness report reports/tonight")
    assert "report: reports/tonight/report.html" in out
    assert "connect" in (work / "reports" / "tonight" / "report.html").read_text()
    assert lab.is_running()
