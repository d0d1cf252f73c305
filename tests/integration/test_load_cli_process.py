"""``harness load`` input errors: one line, exit 2, nothing started; locust stays out of other commands.
Each test runs the harness as its own process (moved from tests/unit/test_load_cli.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _load(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "harness", "--home", str(tmp_path / "home"), "load", *args,
                           "--out", str(tmp_path / "out")], capture_output=True, text=True, timeout=60,
                          cwd=tmp_path)


def _one_line_exit_2(proc: subprocess.CompletedProcess[str], tmp_path: Path) -> str:
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert not (tmp_path / "home" / "lab" / "state.json").exists(), "bad input must not start the lab"
    assert not (tmp_path / "out").exists()
    return proc.stderr.strip()


def test_malformed_profile_names_file_line_and_field(tmp_path: Path) -> None:
    bad = tmp_path / "load-bad.yaml"
    bad.write_text("name: bad\nshape:\n  - ramp: {from: 0, to: 10, duration_s: 0}\n")
    err = _one_line_exit_2(_load(tmp_path, str(bad)), tmp_path)
    assert f"{bad}:3: shape[0].ramp.duration_s:" in err


def test_a_target_off_loopback_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "pbx.yaml"
    target.write_text("name: pbx\npbx: {host: 192.0.2.10, port: 5060}\nnumbers: {load: '5000'}\n")
    err = _one_line_exit_2(_load(tmp_path, str(REPO / "scenarios" / "load-smoke.yaml"), "--target", str(target)),
                           tmp_path)
    assert "192.0.2.10" in err and "loopback" in err


def test_bad_workers_option_is_a_usage_error(tmp_path: Path) -> None:
    proc = _load(tmp_path, str(REPO / "scenarios" / "load-smoke.yaml"), "--workers", "-1")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr


def test_other_commands_do_not_import_locust() -> None:
    code = ("import sys, harness.cli; from click.testing import CliRunner; "
            "r = CliRunner().invoke(harness.cli.cli, ['load', '--help']); assert r.exit_code == 0, r.output; "
            "assert '--workers' in r.output and '--web' in r.output; "
            "assert 'locust' not in sys.modules and 'gevent' not in sys.modules, 'imported too early'")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
