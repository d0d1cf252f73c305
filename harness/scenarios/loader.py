"""Scenario and suite files -> model. Every error names the file, the line and the field.

A scenario::

    name: connect
    parties:
      caller: {account: caller, play: speech/caller.wav}
      agent:  {account: agent1, play: speech/agent.wav, answer: auto}
    steps:
      - call: {from: caller, to: agent, as: main}
      - talk: {seconds: 8}
      - hangup: {party: caller, call: main}
      - expect_setup: {call: main}
      - expect_audio: {call: main}

A suite lists scenario files (relative to the suite file), with parameters and repeat counts::

    name: nightly
    scenarios:
      - connect.yaml
      - {file: connect.yaml, name: connect-long, params: {talk_s: 30}, repeat: 3}

A scenario declares its parameters with defaults and uses them as ``${name}``::

    params: {talk_s: 9}
    steps:
      - talk: ${talk_s}
"""

from __future__ import annotations

import importlib
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

from harness.contracts.errors import ScenarioError
from harness.contracts.fixture_lookup import resolve_fixture
from harness.contracts.thresholds import validate_thresholds
from harness.contracts.yamlsrc import Fields, LDict, LList, load_yaml
from harness.scenarios.registry import ParseScope, lookup, name_part_problem
from harness.scenarios.scenario_model import ANSWER_MODES, AnswerPolicy, PartySpec, Scenario, StepEntry, Suite

__all__ = ["STEP_MODULES", "load_paths", "load_scenario", "load_suite"]

#: Modules whose import registers step types (@step), one per kind of step; a module missing from a build
#: is skipped (its steps are then unknown to the loader).
STEP_MODULES = tuple(f"harness.scenarios.{m}" for m in (
    "steps_call", "steps_hold", "steps_audio", "steps_transfer", "steps_ivr_queue", "steps_recording",
    "steps_faults", "steps_connected", "steps_rawsip",
    "steps_system", "steps_tls",
    "steps_security", "steps_security_transport", "steps_security_tollfraud", "steps_security_enumeration",
    "steps_security_bruteforce"))


def _register_steps() -> None:
    for module in STEP_MODULES:  # every step module is part of the harness: a missing one is a broken install
        importlib.import_module(module)


_register_steps()


def load_paths(paths: list[Path]) -> list[Scenario]:
    """Scenario files and suite files, in order; suites are expanded. A scenario named twice runs once."""
    out: list[Scenario] = []
    seen: set[tuple[str, str]] = set()
    for p in paths:
        doc = load_yaml(p, ScenarioError)
        items = list(load_suite(p, doc).scenarios) if isinstance(doc, dict) and "scenarios" in doc \
            else [_scenario_from(doc, p)]
        for sc in items:
            if (sc.path, sc.name) not in seen:
                seen.add((sc.path, sc.name))
                out.append(sc)
    return out


def load_suite(path: Path, doc: Any = None) -> Suite:
    doc = load_yaml(path, ScenarioError) if doc is None else doc
    f = Fields(doc, str(path), ScenarioError, "")
    name = f.req("name", str)
    description = f.opt("description", str, "")
    entries = f.req("scenarios", list)
    f.done()
    scenarios = []
    for i, entry in enumerate(entries):
        line = entries.item_line(i) if isinstance(entries, LList) else None
        where = f"scenarios[{i}]"
        params: dict[str, Any] = {}
        repeat, alias = 1, None
        if isinstance(entry, dict):
            ef = Fields(entry, str(path), ScenarioError, where, line)
            file = ef.req("file", str)
            params = dict(ef.opt("params", dict, {}))
            repeat = ef.integer("repeat", 1, low=1, high=1000)
            alias = ef.opt("name", str, None)
            ef.done()
        elif isinstance(entry, str):
            file = entry
        else:
            raise ScenarioError(f"must be a scenario file name or {{file, params, repeat}}, got {entry!r}",
                                str(path), line, where)
        sp = (path.parent / file)
        if not sp.is_file():
            raise ScenarioError(f"scenario file '{file}' not found next to the suite", str(path), line, where)
        sdoc = load_yaml(sp, ScenarioError)
        if isinstance(sdoc, dict) and "scenarios" in sdoc:
            raise ScenarioError(f"'{file}' is a suite; suites cannot include suites", str(path), line, where)
        declared = sdoc.get("params") if isinstance(sdoc, dict) else None
        for key in params:
            if not isinstance(declared, dict) or key not in declared:
                known = ", ".join(declared) if isinstance(declared, dict) and declared else "none"
                raise ScenarioError(f"'{file}' has no parameter '{key}' (parameters: {known})", str(path), line,
                                    f"{where}.params.{key}")
        base = _scenario_from(sdoc, sp, params)
        name = alias or base.name
        for n in range(1, repeat + 1):
            scenarios.append(replace(base, name=f"{name} #{n}" if repeat > 1 else name, params=dict(params)))
    if not scenarios:
        raise ScenarioError("a suite needs at least one scenario", str(path), f.line_of("scenarios"), "scenarios")
    return Suite(name=name, path=str(path), scenarios=tuple(scenarios), description=description)


def load_scenario(path: Path) -> Scenario:
    return _scenario_from(load_yaml(path, ScenarioError), path)


def _scenario_from(doc: Any, path: Path, overrides: dict[str, Any] | None = None) -> Scenario:
    spath = str(path)
    if isinstance(doc, LDict) and "params" in doc:
        doc = _apply_params(doc, spath, overrides or {})
    f = Fields(doc, spath, ScenarioError, "")
    f.opt("params", dict, {})
    name = f.req("name", str)
    description = f.opt("description", str, "")
    tags = f.opt("tags", list, [])
    timeout_s = f.number("timeout_s", 120.0, low=1, high=3600)
    thresholds = f.opt("thresholds", dict, {})
    validate_thresholds(thresholds, spath, ScenarioError)
    parties_raw = f.opt("parties", dict, {})  # probe-only scenarios (system, security) have no parties
    steps_raw = f.req("steps", list)
    f.done()

    def fixture(value: str, line: int | None, fld: str) -> str:
        return resolve_fixture(value, spath, line, fld)

    parties: dict[str, PartySpec] = {}
    for pname, raw in parties_raw.items():
        line = parties_raw.key_line(pname) if isinstance(parties_raw, LDict) else None
        parties[pname] = _party(pname, raw, spath, line, fixture)

    scope = ParseScope(path=spath, parties=parties, fixture_resolver=fixture)
    entries = []
    for i, raw in enumerate(steps_raw):
        line = steps_raw.item_line(i) if isinstance(steps_raw, LList) else None
        where = f"steps[{i}]"
        if isinstance(raw, str):  # a bare keyword: "- hangup_all"
            keyword, params = raw, LDict()
            params.line, params.key_lines = line or 0, {}
        elif isinstance(raw, dict) and len(raw) == 1:
            keyword, params = next(iter(raw.items()))
        else:
            raise ScenarioError("a step is a mapping with exactly one key, the step type "
                                "(e.g. '- call: {from: caller, to: agent}')", spath, line, where)
        cls = lookup(keyword, spath, line, where)
        if params is None:
            params = LDict()
            params.line, params.key_lines = line or 0, {}
        elif not isinstance(params, dict):
            shorthand = getattr(cls, "shorthand", None)
            if shorthand is None:
                raise ScenarioError(f"'{keyword}' takes a mapping of parameters, got {params!r}", spath, line,
                                    f"{where}.{keyword}")
            value, params = params, LDict({shorthand: params})
            params.line, params.key_lines = line or 0, {shorthand: line or 0}
            del value
        sf = Fields(params, spath, ScenarioError, f"{where}.{keyword}", line)
        step = cls.parse(sf, scope)
        sf.done()
        entries.append(StepEntry(keyword=keyword, step=step, index=i, line=line))
    if not entries:
        raise ScenarioError("a scenario needs at least one step", spath, f.line_of("steps"), "steps")
    for i, t in enumerate(tags):
        if not isinstance(t, str):
            raise ScenarioError(f"tag must be a string, got {t!r}", spath, f.line_of("tags"), f"tags[{i}]")
    return Scenario(name=name, path=spath, description=description, parties=parties, steps=tuple(entries),
                    thresholds=dict(thresholds), tags=tuple(tags), timeout_s=timeout_s)


_PARAM = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def _apply_params(doc: LDict, spath: str, overrides: dict[str, Any]) -> LDict:
    """Substitute ``${name}`` from the scenario's ``params`` (defaults) and the suite's overrides.

    A value that is exactly ``${name}`` takes the parameter's own type (``talk: ${talk_s}`` is a
    number); inside a longer string it is text. Lines are kept, so errors still point at the file.
    """
    declared = doc["params"]
    if not isinstance(declared, dict):
        raise ScenarioError("must be a mapping of parameter names to default values", spath,
                            doc.key_line("params"), "params")
    values = {**declared, **overrides}

    def sub(value: Any, line: int | None) -> Any:
        if isinstance(value, LDict):
            out = LDict({k: sub(v, value.key_line(k)) for k, v in value.items()})
            out.line, out.key_lines = value.line, value.key_lines
            return out
        if isinstance(value, LList):
            lst = LList(sub(v, value.item_line(i)) for i, v in enumerate(value))
            lst.line, lst.item_lines = value.line, value.item_lines
            return lst
        if not isinstance(value, str) or "${" not in value:
            return value
        whole = _PARAM.fullmatch(value)
        for m in _PARAM.finditer(value):
            if m.group(1) not in values:
                known = ", ".join(values) or "none"
                raise ScenarioError(f"unknown parameter '{m.group(1)}' (parameters: {known})", spath, line)
        if whole:
            return values[whole.group(1)]
        return _PARAM.sub(lambda m: str(values[m.group(1)]), value)

    out = LDict({k: (v if k == "params" else sub(v, doc.key_line(k))) for k, v in doc.items()})
    out.line, out.key_lines = doc.line, doc.key_lines
    return out




def _party(pname: str, raw: Any, spath: str, line: int | None, fixture: Any) -> PartySpec:
    problem = name_part_problem(pname, "party name")  # a party names checks (register:<party>, audio:<a>-><b>)
    if problem is not None:
        raise ScenarioError(problem, spath, line, f"parties.{pname}")
    pf = Fields(raw if raw is not None else {}, spath, ScenarioError, f"parties.{pname}", line)
    account = pf.opt("account", str, pname)
    play_raw = pf.opt("play", str, None)
    play = fixture(play_raw, pf.line_of("play"), pf.field_name("play")) if play_raw else None
    ref_raw = pf.opt("reference", str, None)
    reference = fixture(ref_raw, pf.line_of("reference"), pf.field_name("reference")) if ref_raw else None
    loop = pf.opt("loop", bool, False)
    record = pf.opt("record", bool, True)
    register = pf.opt("register", bool, True)
    transfer = pf.choice("transfer", ("accept", "reject"), "accept")
    hold_mute = pf.opt("hold_mute", bool, True)
    moh_raw = pf.opt("hold_music", str, None)
    hold_music = fixture(moh_raw, pf.line_of("hold_music"), pf.field_name("hold_music")) if moh_raw else None
    answer_raw = pf.opt("answer", (str, dict), "auto")
    if isinstance(answer_raw, str):
        mode = {"auto": "answer"}.get(answer_raw, answer_raw)
        if mode not in ANSWER_MODES:
            raise pf.fail("answer", f"must be one of auto, {', '.join(ANSWER_MODES)} or a mapping, got {answer_raw!r}")
        answer = AnswerPolicy(mode=mode)
    else:
        af = Fields(answer_raw, spath, ScenarioError, pf.field_name("answer"), pf.line_of("answer"))
        mode = af.choice("mode", ("auto", *ANSWER_MODES), "auto")
        answer = AnswerPolicy(mode={"auto": "answer"}.get(mode, mode),
                              code=af.integer("code", None, low=100, high=699),
                              delay_ms=af.integer("delay_ms", 0, low=0, high=120000))
        af.done()
    pf.done()
    return PartySpec(name=pname, account=account, play=play, reference=reference, loop=loop, record=record,
                     register=register, answer=answer, transfer=transfer, hold_mute=hold_mute,
                     hold_music=hold_music, line=line)
