"""The CLI's input errors: one line naming file and line, exit code 2, never a traceback. In process: the
entry point ``harness.cli.main`` (which maps errors to exit codes) is called directly."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
from click.testing import CliRunner

from harness.cli import cli, main

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _keep_sigterm() -> object:
    """main() makes SIGTERM unwind like Ctrl-C; give pytest its own handler back afterwards."""
    before = signal.getsignal(signal.SIGTERM)
    yield None
    signal.signal(signal.SIGTERM, before)


def run_main(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as ended:
        main(argv)
    out = capsys.readouterr()
    return int(ended.value.code or 0), out.out, out.err


def test_validate_ok() -> None:
    res = CliRunner().invoke(cli, ["validate", str(REPO / "scenarios" / "nightly.yaml")])
    assert res.exit_code == 0, res.output
    assert "ok  connect" in res.output


def test_run_malformed_scenario_exits_2_with_file_and_line(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    bad = tmp_path / "broken.yaml"
    bad.write_text("name: broken\nparties:\n  caller: {}\nsteps:\n  - call: {from: caller, to: [x\n")
    code, out, err = run_main(["--home", str(tmp_path / "home"), "run", str(bad), "--out", str(tmp_path / "out")],
                              capsys)
    assert code == 2, err
    assert f"{bad}:5" in err
    assert "Traceback" not in err + out
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "home" / "lab" / "state.json").exists(), "a bad scenario must not start the lab"


def test_run_unknown_account_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    sc = tmp_path / "s.yaml"
    sc.write_text("name: s\nparties:\n  x: {account: nobody}\nsteps:\n  - talk: 1\n")
    code, _, err = run_main(["--home", str(tmp_path / "home"), "run", str(sc)], capsys)
    assert code == 2
    assert f"{sc}:3" in err and "account 'nobody'" in err
    assert "Traceback" not in err


def test_missing_target_profile_and_usage_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    for argv, needle in ((["run", str(REPO / "scenarios" / "connect.yaml"), "--target", str(tmp_path / "no.yaml")],
                          "file not found"),
                         (["run"], "give scenario or suite files, or --only-failed"),
                         (["lab", "up", "--sip-port", "80"], "80 is not in the range")):
        code, _, err = run_main(["--home", str(tmp_path / "h"), *argv], capsys)
        assert code == 2, (argv, err)
        assert needle in err, (argv, err)
        assert "Traceback" not in err


def test_a_bad_harness_variable_names_itself(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HARNESS_LAB_SIP_PORT", "fifty")
    code, _, err = run_main(["lab", "status"], capsys)
    assert code == 2 and "HARNESS_LAB_SIP_PORT='fifty' is not a port number" in err


def test_an_internal_error_is_one_line_exit_3_with_the_traceback_kept(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    import tempfile

    from harness.scenarios import session

    def boom(*_a: object, **_k: object) -> None:
        raise ZeroDivisionError("a harness bug")

    monkeypatch.setattr(session, "run_session", boom)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    sc = tmp_path / "s.yaml"
    sc.write_text("name: s\nsteps:\n  - talk: 1\n")
    code, _, err = run_main(["--home", str(tmp_path / "h"), "run", str(sc), "--out", str(tmp_path / "o")], capsys)
    assert code == 3, err
    assert err.startswith("internal error: ZeroDivisionError: a harness bug (a harness bug; traceback in "), err
    kept = Path(err.strip().rsplit("traceback in ", 1)[1].rstrip(")"))
    assert kept.parent == tmp_path and "ZeroDivisionError" in kept.read_text()
    assert len(err.strip().splitlines()) == 1
