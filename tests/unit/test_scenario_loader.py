"""The scenario loader: good files load into the model, bad ones fail naming file, line and field."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from harness.contracts.errors import FixtureError, ScenarioError
from harness.scenarios import load_paths, load_scenario, load_suite

REPO = Path(__file__).resolve().parents[2]


def write(tmp_path: Path, text: str, name: str = "s.yaml") -> Path:
    p = tmp_path / name
    p.write_text(textwrap.dedent(text).lstrip())
    return p


GOOD = """
name: demo
parties:
  caller: {account: caller, play: speech/caller.wav}
  agent: {account: agent1, play: speech/agent.wav, answer: {mode: auto, delay_ms: 500}}
steps:
  - call: {from: caller, to: agent, as: main}
  - talk: 2
  - dtmf: {party: caller, call: main, digits: "12#"}
  - hangup: {party: caller, call: main}
  - expect_setup: {call: main, max_ms: 1500}
  - expect_audio: {call: main}
"""


def test_good_scenario_loads_into_typed_steps(tmp_path: Path) -> None:
    sc = load_scenario(write(tmp_path, GOOD))
    assert sc.name == "demo"
    assert [e.keyword for e in sc.steps] == ["call", "talk", "dtmf", "hangup", "expect_setup", "expect_audio"]
    assert sc.steps[1].step.seconds == 2.0
    assert sc.steps[0].line == 6
    assert sc.parties["agent"].answer.delay_ms == 500
    assert sc.parties["caller"].play is not None and sc.parties["caller"].play.endswith("caller.wav")


def test_shipped_scenarios_load() -> None:
    scenarios = load_paths([REPO / "scenarios" / "nightly.yaml"])
    assert "connect" in [s.name for s in scenarios]


@pytest.mark.parametrize(
    ("text", "line", "needle"),
    [
        ("name: x\nparties: {a: {}}\nsteps:\n  - call: {from: a, to: b\n", 4, "mapping started at line 4"),
        ("name: x\nparties: {a: {}}\nsteps:\n  - dance: {}\n", 4, "unknown step 'dance'"),
        ("name: x\nparties: {a: {}}\nsteps:\n  - call: {from: zed, to: b}\n", 4, "unknown party 'zed'"),
        ("name: x\nparties: {a: {}}\nsteps:\n  - call: {from: a, to: b, colour: red}\n", 4, "unknown field 'colour'"),
        ("name: x\nparties: {a: {}}\nsteps:\n  - talk: {seconds: soon}\n", 4, "must be a number"),
        ("name: x\nparties: {a: {}}\nsteps:\n  - talk: {seconds: -3}\n", 4, "out of range"),
        ("name: x\nparties: {a: {}}\nsteps:\n  - hangup: {party: a, call: nope}\n", 4, "unknown call 'nope'"),
        ("name: x\nparties:\n  a: {answer: maybe}\nsteps:\n  - talk: 1\n", 3, "must be one of"),
        ("parties: {a: {}}\nsteps:\n  - talk: 1\n", 1, "missing required field 'name'"),
        ("name: x\nparties: {a: {}}\nsteps: []\n", 3, "at least one step"),
        ("name: x\nparties: {a: {}}\nsteps:\n  - call: {from: a, to: b}\n    talk: 1\n", 4, "exactly one key"),
        ("name: x\nname: y\nparties: {a: {}}\nsteps:\n  - talk: 1\n", 2, "duplicate key"),
        ("name: x\nparties: {a: {}}\nsteps:\n  - dtmf: {party: a, digits: 12}\n", 4, "unknown call 'main'"),
    ],
)
def test_malformed_scenario_names_file_line_and_problem(tmp_path: Path, text: str, line: int, needle: str) -> None:
    p = write(tmp_path, text)
    with pytest.raises(ScenarioError) as ei:
        load_scenario(p)
    err = ei.value
    assert err.path == str(p)
    assert err.line == line, str(err)
    assert needle in str(err)
    assert str(p) in str(err)


def test_missing_fixture_names_the_field(tmp_path: Path) -> None:
    p = write(tmp_path, "name: x\nparties:\n  a:\n    play: no/such.wav\nsteps:\n  - talk: 1\n")
    with pytest.raises(FixtureError) as ei:
        load_scenario(p)
    assert ei.value.line == 4 and ei.value.field == "parties.a.play"
    assert "no/such.wav" in str(ei.value)


def test_fixture_that_is_not_a_wav_is_refused(tmp_path: Path) -> None:
    (tmp_path / "bad.wav").write_text("not audio")
    p = write(tmp_path, "name: x\nparties:\n  a: {play: bad.wav}\nsteps:\n  - talk: 1\n")
    with pytest.raises(FixtureError, match="not a readable WAV"):
        load_scenario(p)


def test_empty_and_missing_files(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="file not found"):
        load_scenario(tmp_path / "nope.yaml")
    with pytest.raises(ScenarioError, match="empty"):
        load_scenario(write(tmp_path, "\n"))
    with pytest.raises(ScenarioError, match="expected a mapping"):
        load_scenario(write(tmp_path, "- just\n- a list\n"))


def test_suite_expands_and_reports_missing_members(tmp_path: Path) -> None:
    write(tmp_path, GOOD, "a.yaml")
    suite = write(tmp_path, "name: n\nscenarios:\n  - a.yaml\n", "suite.yaml")
    assert [s.name for s in load_suite(suite).scenarios] == ["demo"]
    bad = write(tmp_path, "name: n\nscenarios:\n  - a.yaml\n  - gone.yaml\n", "bad.yaml")
    with pytest.raises(ScenarioError) as ei:
        load_paths([bad])
    assert ei.value.line == 4 and "gone.yaml" in str(ei.value)


PARAMS = """
name: p
params: {talk_s: 2, who: agent}
parties:
  caller: {}
  agent: {}
steps:
  - call: {from: caller, to: "${who}", as: main}
  - talk: ${talk_s}
  - hangup: {party: caller, call: main}
"""


def test_params_substitute_with_their_type_and_suites_override_and_repeat(tmp_path: Path) -> None:
    write(tmp_path, PARAMS, "p.yaml")
    sc = load_scenario(tmp_path / "p.yaml")
    assert sc.steps[1].step.seconds == 2.0 and sc.steps[0].step.to == "agent"
    suite = write(tmp_path, "name: n\nscenarios:\n  - p.yaml\n  - {file: p.yaml, name: long, params: {talk_s: 7},"
                  " repeat: 2}\n", "suite.yaml")
    got = load_paths([suite])
    assert [s.name for s in got] == ["p", "long #1", "long #2"]
    assert got[1].steps[1].step.seconds == 7.0 and got[1].params == {"talk_s": 7}


def test_unknown_params_are_named(tmp_path: Path) -> None:
    write(tmp_path, PARAMS.replace("${talk_s}", "${talk_ms}"), "bad.yaml")
    with pytest.raises(ScenarioError) as ei:
        load_scenario(tmp_path / "bad.yaml")
    assert "unknown parameter 'talk_ms'" in str(ei.value) and ei.value.line == 8
    write(tmp_path, PARAMS, "p.yaml")
    suite = write(tmp_path, "name: n\nscenarios:\n  - {file: p.yaml, params: {volume: 3}}\n", "s.yaml")
    with pytest.raises(ScenarioError) as ei:
        load_paths([suite])
    assert "no parameter 'volume'" in str(ei.value) and ei.value.line == 3


NAMED = """
name: x
parties:
  caller: {account: caller}
  agent: {account: agent1}
  agent_b: {account: agent2}
steps:
  - call: {from: caller, to: agent, as: main}
"""


@pytest.mark.parametrize(
    ("step", "field", "needle"),
    [
        ("- call: {from: caller, to: agent_b, as: 'x:y'}", "steps[1].call.as", "call name 'x:y'"),
        ("- call: {from: caller, to: agent_b, as: 'a->b'}", "steps[1].call.as", "call name 'a->b'"),
        ("- transfer: {party: agent, call: main, to: agent_b, as: 'moved:on'}", "steps[1].transfer.as",
         "call name 'moved:on'"),
        ("- check_audio: {call: main, label: 'after:fault'}", "steps[1].check_audio.label", "label 'after:fault'"),
        ("- expect_connected: {call: main, label: 'up->down'}", "steps[1].expect_connected.label",
         "label 'up->down'"),
    ],
)
def test_a_name_that_would_break_check_names_is_refused(tmp_path: Path, step: str, field: str, needle: str) -> None:
    """Check names join their parts with ':' and a direction's ends with '->': a call name or a label holding
    either is refused at load time, naming file, line and field."""
    p = write(tmp_path, NAMED + "  " + step + "\n")
    with pytest.raises(ScenarioError) as ei:
        load_scenario(p)
    err = ei.value
    assert (err.path, err.line) == (str(p), 8), str(err)
    assert f"{p}:8" in str(err) and field in str(err) and needle in str(err) and "cannot be part of a check name" \
        in str(err)


@pytest.mark.parametrize("party", ["'ag:ent'", "'caller->x'", "' caller'"])
def test_a_party_name_that_would_break_check_names_is_refused(tmp_path: Path, party: str) -> None:
    p = write(tmp_path, f"name: x\nparties:\n  caller: {{}}\n  {party}: {{account: agent1}}\nsteps:\n  - talk: 1\n")
    with pytest.raises(ScenarioError) as ei:
        load_scenario(p)
    err = ei.value
    assert (err.path, err.line) == (str(p), 4), str(err)
    assert "parties." in str(err) and "party name" in str(err) and "cannot be part of a check name" in str(err)


def test_names_fit_for_check_names_load(tmp_path: Path) -> None:
    sc = load_scenario(write(tmp_path, NAMED + "  - check_audio: {call: main, label: after-restart.2 (b)}\n"
                                               "  - call: {from: caller, to: agent_b, as: second_call}\n"))
    assert [e.step.label if e.keyword == "check_audio" else e.step.alias for e in sc.steps] == \
        ["main", "after-restart.2 (b)", "second_call"]


def test_every_shipped_scenario_loads() -> None:
    scenarios = load_paths(sorted(p for p in (REPO / "scenarios").glob("*.yaml") if not p.name.startswith("load-")))
    assert len({s.path for s in scenarios}) >= 20
