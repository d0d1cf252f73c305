"""Whatever a load profile file holds, loading it either works or raises an input error naming the
file: never anything else (the loader is the edge; the engine gets typed, finite values only)."""

from __future__ import annotations

import math
import string
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.contracts.errors import InputError
from harness.load import load_profile

KEYS = ["name", "mode", "shape", "ramp", "step", "spike", "hold", "from", "to", "duration_s", "levels", "base",
        "peak", "spike_s", "at_s", "value", "call", "account", "hold_s", "reinvite", "rtp", "mix", "options",
        "register", "cancel", "media", "calls_per_step", "talk_s", "sla", "setup_p95_ms", "mos_min", "limits",
        "max_calls", "max_duration_s", "timers", "t1_ms", "t2_ms", "per_user", "arrival", "rate", "concurrent"]
scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6), st.floats(allow_nan=True),
                    st.text(string.printable, max_size=12), st.sampled_from(KEYS))
documents = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.sampled_from(KEYS), inner, max_size=5)), max_leaves=25)
FUZZ = settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
BASE = {"name": "b", "mode": "rate",
        "shape": [{"ramp": {"from": 1, "to": 5, "duration_s": 2}}, {"step": {"levels": [5, 9], "duration_s": 3}},
                  {"spike": {"base": 2, "peak": 9, "duration_s": 4, "spike_s": 1}}],
        "call": {"to": "load", "hold_s": 1, "reinvite": True}, "mix": {"call": 3, "options": 1},
        "sla": {"setup_p95_ms": 100}, "limits": {"max_calls": 100, "max_duration_s": 60},
        "timers": {"t1_ms": 500, "t2_ms": 4000}}


def _load(path: Path) -> None:
    try:
        p = load_profile(path)
    except InputError as exc:
        assert str(path) in str(exc)
        return
    tl = p.timeline  # what loads must be usable
    assert math.isfinite(tl.duration_s) and tl.duration_s <= p.limits.max_duration_s
    assert all(math.isfinite(s.start) and math.isfinite(s.end) for s in p.stages)


@FUZZ
@given(doc=documents)
def test_random_structures_give_input_errors_only(tmp_path: Path, doc: object) -> None:
    p = tmp_path / "load-fuzz.yaml"
    p.write_text(yaml.safe_dump(doc, allow_unicode=True))
    _load(p)


def _paths(d: object, prefix: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    out = [prefix]
    if isinstance(d, dict):
        for k, v in d.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(d, list):
        for i, v in enumerate(d):
            out += _paths(v, (*prefix, i))
    return out


@FUZZ
@given(data=st.data(), value=scalars)
def test_one_mutated_field_gives_input_errors_only(tmp_path: Path, data: st.DataObject, value: object) -> None:
    import copy

    doc = copy.deepcopy(BASE)
    where = data.draw(st.sampled_from(_paths(doc)[1:]))
    node: object = doc
    for key in where[:-1]:
        node = node[key]  # type: ignore[index]
    node[where[-1]] = value  # type: ignore[index]
    p = tmp_path / "load-mutated.yaml"
    p.write_text(yaml.safe_dump(doc, allow_unicode=True))
    _load(p)
