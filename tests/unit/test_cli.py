"""The CLI's input errors: one line naming file and line, exit code 2, never a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from harness.cli import cli

REPO = Path(__file__).resolve().parents[2]


def test_validate_ok() -> None:
    res = CliRunner().invoke(cli, ["validate", str(REPO / "scenarios" / "nightly.yaml")])
    assert res.exit_code == 0, res.output
    assert "ok  connect" in res.output


def test_run_malformed_scenario_exits_2_with_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "broken.yaml"
    bad.write_text("name: broken\nparties:\n  caller: {}\nsteps:\n  - call: {from: caller, to: [x\n")
    proc = subprocess.run([sys.executable, "-m", "harness", "--home", str(tmp_path / "home"), "run", str(bad),
                           "--out", str(tmp_path / "out")], capture_output=True, text=True, timeout=60,
                          cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert f"{bad}:5" in proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    assert len(proc.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "home" / "lab" / "state.json").exists(), "a bad scenario must not start the lab"


def test_run_unknown_account_exits_2(tmp_path: Path) -> None:
    sc = tmp_path / "s.yaml"
    sc.write_text("name: s\nparties:\n  x: {account: nobody}\nsteps:\n  - talk: 1\n")
    proc = subprocess.run([sys.executable, "-m", "harness", "--home", str(tmp_path / "home"), "run", str(sc)],
                          capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert proc.returncode == 2
    assert f"{sc}:3" in proc.stderr and "account 'nobody'" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_missing_target_profile_and_usage_errors(tmp_path: Path) -> None:
    runner = CliRunner()
    from harness.cli import main

    for argv, needle in ((["run", str(REPO / "scenarios" / "connect.yaml"), "--target", str(tmp_path / "no.yaml")],
                          "file not found"),
                         (["run"], "give scenario or suite files, or --only-failed"),
                         (["lab", "up", "--sip-port", "80"], "80 is not in the range")):
        proc = subprocess.run([sys.executable, "-m", "harness", "--home", str(tmp_path / "h"), *argv],
                              capture_output=True, text=True, timeout=60, cwd=tmp_path)
        assert proc.returncode == 2, (argv, proc.stderr)
        assert needle in proc.stderr, (argv, proc.stderr)
        assert "Traceback" not in proc.stderr
    assert runner is not None and main is not None
