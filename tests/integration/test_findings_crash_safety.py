"""Crash safety of the findings store: a run killed -9 mid-write loses nothing it had announced as stored
and leaves no half-written scenario. (Moved from tests/unit/test_findings_sink.py: it starts a process.)"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from harness.findings.findings_sink import FindingsSink
from harness.findings.sqlite import SqliteStore
from tests.unit.test_findings_support import reg_fail, reg_ok, run_result, scenario_result

REPO = Path(__file__).resolve().parents[2]
WRITER = """
import sys, time
from pathlib import Path
from harness.findings.findings_sink import FindingsSink
from harness.findings.sqlite import SqliteStore
from tests.integration.test_findings_crash_safety import feed_forever
feed_forever(FindingsSink(SqliteStore(Path(sys.argv[2]))), Path(sys.argv[1]))
"""


def feed_forever(sink: FindingsSink, out: Path) -> None:
    """A run that never ends: failing scenarios back to back, each announced once stored (so the kill
    lands in the middle of writing one, most of the time)."""
    out.mkdir(parents=True, exist_ok=True)
    run = run_result(out)
    sink.run_started(run)
    for i in range(100000):
        res = scenario_result(f"s{i}", out / f"s{i}.yaml", [reg_ok(), reg_fail(code=400 + i % 100)])
        run.scenarios.append(res)
        sink.scenario_finished(run, res)
        print(i, flush=True)
        time.sleep(0.001)


def test_kill_9_mid_run_loses_nothing_already_written(tmp_path: Path) -> None:
    db = tmp_path / "f.db"
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path / "run"), str(db)], cwd=REPO,
                            stdout=subprocess.PIPE, text=True)
    stored: list[int] = []
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + 60
        while len(stored) < 25 and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            stored.append(int(line))
    finally:
        proc.kill()  # SIGKILL: no cleanup, no commit of anything pending
        proc.wait(10)
    assert len(stored) == 25, "the writer did not get going"
    store = SqliteStore(db)
    assert store.conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    run = store.last_run()
    assert run is not None and run.finished is None, "the killed run never finished"
    names = [s.name for s in store.scenarios(run.id or 0)]
    assert names[:25] == [f"s{i}" for i in stored], "every scenario announced as stored is there, in order"
    findings = {f.key.scenario: f for f in store.findings()}
    for i in stored:
        f = findings[f"s{i}"]
        assert f.sightings[0].value == 400 + i and f.diagnosis is not None
    counts = store.conn.execute("SELECT (SELECT count(*) FROM scenario_results), (SELECT count(*) FROM checks),"
                                " (SELECT count(*) FROM findings)").fetchone()
    n = counts[0]
    assert n >= 25 and tuple(counts) == (n, 2 * n, n), "no half-written scenario"
