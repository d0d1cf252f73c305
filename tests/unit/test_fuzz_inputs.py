"""Bad input, tried systematically: whatever a scenario, suite or profile file holds, loading it either
works or raises one of the harness's input errors (file, line, field) — never anything else."""

from __future__ import annotations

import string
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.contracts.errors import InputError
from harness.contracts.target import load_target
from harness.scenarios import load_paths

KEYS = ["name", "parties", "steps", "params", "thresholds", "tags", "timeout_s", "description", "scenarios",
        "caller", "agent", "account", "play", "answer", "call", "talk", "hangup", "from", "to", "as", "party",
        "expect", "seconds", "digits", "dtmf", "transfer", "expect_audio", "file", "repeat", "pbx", "host",
        "port", "transport", "accounts", "username", "password", "numbers", "recordings", "dir", "mode",
        "code", "delay_ms", "audio", "min_mos", "setup_time_ms", "${x}", "hold", "check_audio", "media",
        "codecs"]
scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6), st.floats(allow_nan=True),
                    st.text(string.printable, max_size=12), st.sampled_from(KEYS))
documents = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.sampled_from(KEYS), inner, max_size=5)), max_leaves=25)
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _load_both(path: Path) -> None:
    for loader in (lambda: load_paths([path]), lambda: load_target(path)):
        try:
            loader()
        except InputError as exc:
            assert str(path) in str(exc)
            assert "\n" not in str(exc).split(": ", 1)[0]


@FUZZ
@given(doc=documents)
def test_random_structures_give_input_errors_only(tmp_path: Path, doc: object) -> None:
    p = tmp_path / "fuzz.yaml"
    p.write_text(yaml.safe_dump(doc, allow_unicode=True))
    _load_both(p)


BASE = {
    "name": "base", "params": {"t": 2}, "thresholds": {"setup_time_ms": 900, "audio": {"min_mos": 3.6}},
    "parties": {"caller": {"account": "caller", "play": "speech/caller.wav"},
                "agent": {"account": "agent1", "answer": {"mode": "auto", "delay_ms": 10}},
                "other": {"account": "agent2", "transfer": "reject", "answer": "ring"}},
    "steps": [{"call": {"from": "caller", "to": "agent", "as": "main", "expect": "answer", "timeout_s": 5}},
              {"talk": "${t}"}, {"dtmf": {"party": "caller", "call": "main", "digits": "12#"}},
              {"expect_dtmf": {"party": "agent", "call": "main", "digits": "12#"}},
              {"hold": {"party": "agent", "call": "main"}},
              {"expect_hold_audio": {"party": "caller", "call": "main", "seconds": 2}},
              {"resume": {"party": "agent", "call": "main"}},
              {"transfer": {"party": "agent", "call": "main", "to": "other", "expect": "busy", "as": "x"}},
              {"check_audio": {"call": "main", "seconds": 3}},
              {"expect_prompt": {"party": "caller", "call": "main", "prompt": "prompts/ivr-menu.wav"}},
              {"expect_answered_by": {"party": "agent", "call": "main", "skipped": ["other"]}},
              {"hangup": {"party": "caller", "call": "main"}}, {"expect_setup": {"call": "main", "max_ms": 500}},
              {"expect_audio": {"call": "main"}}, {"expect_recording": {"call": "main"}}],
}


def _paths(doc: object, prefix: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    out = [prefix]
    if isinstance(doc, dict):
        for k, v in doc.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            out += _paths(v, (*prefix, i))
    return out


@st.composite
def mutated(draw: st.DrawFn) -> object:
    """The valid BASE scenario with a few of its values replaced, removed, or joined by unknown keys."""
    import copy

    doc: object = copy.deepcopy(BASE)
    for _ in range(draw(st.integers(1, 3))):
        paths = _paths(doc)
        path = draw(st.sampled_from(paths[1:]))
        parent: object = doc
        for key in path[:-1]:
            parent = parent[key]  # type: ignore[index]
        action = draw(st.sampled_from(["replace", "delete", "add"]))
        if action == "replace":
            parent[path[-1]] = draw(documents)  # type: ignore[index]
        elif action == "delete":
            del parent[path[-1]]  # type: ignore[arg-type, attr-defined]
        elif isinstance(parent, dict):
            parent[draw(st.sampled_from(KEYS))] = draw(scalars)
    return doc


def test_base_document_is_valid(tmp_path: Path) -> None:
    p = tmp_path / "base.yaml"
    p.write_text(yaml.safe_dump(BASE))
    (sc,) = load_paths([p])
    assert len(sc.steps) == len(BASE["steps"])  # type: ignore[arg-type]


@FUZZ
@given(doc=mutated())
def test_mutated_scenarios_give_input_errors_only(tmp_path: Path, doc: object) -> None:
    p = tmp_path / "fuzz.yaml"
    p.write_text(yaml.safe_dump(doc, allow_unicode=True))
    _load_both(p)


@FUZZ
@given(text=st.text(string.printable + "äø€\t", max_size=300))
def test_random_text_gives_input_errors_only(tmp_path: Path, text: str) -> None:
    p = tmp_path / "fuzz.yaml"
    p.write_text(text)
    _load_both(p)


@pytest.mark.parametrize("text", [
    "name: x\nparties: {a: {}}\nsteps:\n  - talk: 1e400\n",                     # out-of-range float
    "name: x\nparties: {a: {}}\nsteps:\n  - talk: .nan\n",
    "name: x\nparties: {a: {answer: {mode: reject, code: 99999}}}\nsteps:\n  - talk: 1\n",
    "name: x\nparties: {a: {}}\nsteps:\n  - dtmf: {party: a, digits: \"12x\"}\n",
    "name: x\nparties: {a: {}}\nsteps:\n  - call: {from: a, to: [1, 2]}\n",
    "name: x\nparties: []\nsteps:\n  - talk: 1\n",
    "name: x\nparams: [1]\nsteps:\n  - talk: 1\n",
    "name: x\nparams: {t: 1}\nsteps:\n  - talk: ${t}${t}\n",
    "name: x\nsteps:\n  - talk: !!python/object:os.system {}\n",                 # no code execution
    "name: x\nsteps: &a [*a]\n",                                                   # recursive alias
    "\ufeffname: x\n",
    "name: n\nscenarios: [{file: 7}]\n",
    "name: n\nscenarios: [{file: x.yaml, repeat: 0}]\n",
    "name: p\npbx: {host: h}\naccounts: {a: {username: u}}\n",                    # no password
    "name: p\npbx: {host: h}\nthresholds: {audio: {min_moss: 3}}\n",
])
def test_known_nasty_inputs(tmp_path: Path, text: str) -> None:
    p = tmp_path / "nasty.yaml"
    p.write_text(text)
    _load_both(p)


def test_found_by_fuzzing_a_list_where_a_party_name_belongs(tmp_path: Path) -> None:
    p = tmp_path / "f.yaml"
    p.write_text("name: x\nparties: {a: {}, b: {}}\nsteps:\n  - call: {from: a, to: b}\n"
                 "  - expect_answered_by: {party: b, skipped: [[a]]}\n")
    _load_both(p)
