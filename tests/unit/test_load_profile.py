"""Load profiles and shapes: timelines from data, errors that name file, line and field, plans bound
to targets (loopback only)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from harness.contracts.errors import InputError, ScenarioError
from harness.contracts.target import Target
from harness.lab.config import LabConfig, lab_target
from harness.load import load_profile
from harness.load.media_sampler import plan_slots
from harness.load.plan import UacPlan, check_loopback, make_plan
from harness.load.shapes import Timeline, hold, ramp, spike, steps, users_for

REPO = Path(__file__).resolve().parents[2]


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "load.yaml"
    p.write_text(textwrap.dedent(text).lstrip())
    return p


def test_shapes_flatten_into_a_timeline() -> None:
    tl = Timeline(ramp(0, 20, 10) + steps([20, 40], 5) + spike(20, 80, 9, spike_s=3) + hold(0, 1))
    assert [s.label for s in tl.stages] == ["ramp 0->20", "step 20", "step 40", "spike base 20", "spike peak 80",
                                             "spike base 20", "hold 0"]
    assert tl.duration_s == 30.0 and tl.peak == 80
    assert tl.value_at(5.0) == 10.0 and tl.value_at(12.0) == 20.0 and tl.value_at(16.0) == 40.0
    assert tl.index_at(23.5) == 4 and tl.value_at(23.5) == 80.0
    assert tl.value_at(-0.1) is None and tl.value_at(30.0) is None and tl.index_at(29.9) == 6
    assert tl.window(1) == (10.0, 15.0)
    assert [s.duration_s for s in spike(5, 10, 6, spike_s=2, at_s=0)] == [2, 4]
    assert users_for(0, 1) == 0 and users_for(0.1, 1) == 1 and users_for(99, 10) == 10


def test_the_smoke_profile_loads() -> None:
    p = load_profile(REPO / "scenarios" / "load-smoke.yaml")
    assert p.name == "load-smoke" and p.mode == "rate" and p.timeline.duration_s <= 20
    assert p.mix["call"] > 0 and p.call.account == "caller"
    assert {"setup_p95_ms", "success_rate_pct", "mos_min"} <= set(p.sla)
    assert p.limits.max_calls <= 5000 and plan_slots(p.media, p.timeline)


def test_defaults_and_concurrent_mode(tmp_path: Path) -> None:
    p = load_profile(write(tmp_path, """
        name: held
        mode: concurrent
        shape:
          - ramp: {from: 0, to: 100, duration_s: 5}
        call: {hold_s: 10}
    """))
    assert p.per_user == 1.0 and p.mix == {"call": 1} and p.sla == {"success_rate_pct": 99.0}
    assert p.call.to == "load" and p.t1_s == 0.5 and p.limits.max_duration_s == 600


@pytest.mark.parametrize(("body", "line", "field", "words"), [
    ("shape: []\n", 2, "shape", "at least one"),
    ("shape:\n  - zigzag: {duration_s: 3}\n", 3, "shape[0]", "unknown shape 'zigzag'"),
    ("shape:\n  - ramp: {from: 0, to: 5}\n", 3, "shape[0].ramp", "duration_s"),
    ("shape:\n  - step: {levels: [1, -2], duration_s: 2}\n", 3, "shape[0].step.levels[1]", "level"),
    ("shape:\n  - hold: {value: 5, duration_s: 9}\nlimits: {max_duration_s: 5}\n", 2, "shape", "longer than"),
    ("shape:\n  - hold: {value: 5, duration_s: 2}\nmix: {call: 1, register: 1}\n", 4, "mix.register",
     "credentials"),
    ("shape:\n  - hold: {value: 5, duration_s: 2}\nsla: {mos_min: 3}\n", 4, "sla.mos_min", "media"),
    ("shape:\n  - hold: {value: 5, duration_s: 2}\nsla: {setup_p95: 3}\n", 4, "sla.setup_p95", "unknown field"),
    ("shape:\n  - hold: {value: 5, duration_s: 2}\ncall: {hold_s: -1}\n", 4, "call.hold_s", "out of range"),
    ("mode: burst\nshape:\n  - hold: {value: 5, duration_s: 2}\n", 2, "mode", "must be one of"),
    ("shape:\n  - hold: {value: 0, duration_s: 2}\n", 2, "shape", "no load"),
])
def test_errors_name_file_line_and_field(tmp_path: Path, body: str, line: int, field: str, words: str) -> None:
    path = write(tmp_path, "name: bad\n" + body)
    with pytest.raises(ScenarioError) as ei:
        load_profile(path)
    e = ei.value
    assert (e.path, e.line, e.field) == (str(path), line, field), str(e)
    assert words in e.message
    assert str(e).startswith(f"{path}:{line}: {field}: ")


def test_plan_binds_lab_numbers_and_credentials(tmp_path: Path) -> None:
    p = load_profile(write(tmp_path, """
        name: p
        shape: [{hold: {value: 5, duration_s: 2}}]
        call: {account: caller}
        mix: {call: 3, cancel: 1, register: 1}
    """))
    lab = lab_target(LabConfig(sip_port=41060), tmp_path)
    plan = make_plan(p, lab)
    assert plan.call_uri == "sip:load-answer@lab.local" and plan.ring_uri == "sip:load-ring@lab.local"
    assert plan.from_user == "1001" and plan.password is not None and plan.port == 41060
    wire = plan.to_wire()
    assert wire["password"] == "lab-caller-pw"  # it travels over the worker pipe only
    again = UacPlan.from_wire(wire)
    assert again == plan and "lab-caller-pw" not in repr(again)
    assert plan.share(3).max_transactions == -(-plan.max_transactions // 3)


def _target(host: str, numbers: dict[str, str] | None = None, transport: str = "udp") -> Target:
    return Target.from_mapping({"name": "pbx", "pbx": {"host": host, "port": 5060, "transport": transport},
                                "accounts": {"caller": {"username": "1001", "password": "x"}},
                                "numbers": numbers or {}}, "pbx.yaml")


def test_plan_refuses_what_it_cannot_do(tmp_path: Path) -> None:
    p = load_profile(write(tmp_path, "name: p\nshape: [{hold: {value: 5, duration_s: 2}}]\n"))
    with pytest.raises(InputError, match="loopback"):
        make_plan(p, _target("192.0.2.10", {"load": "5000"}))
    with pytest.raises(InputError, match="UDP only"):
        make_plan(p, _target("127.0.0.1", {"load": "5000"}, transport="tcp"))
    with pytest.raises(ScenarioError, match="no number 'load'") as ei:
        make_plan(p, _target("127.0.0.1"))
    assert ei.value.field == "call.to"
    assert make_plan(p, _target("127.0.0.5", {"load": "5000"})).call_uri == "sip:5000@127.0.0.5"
    assert check_loopback("localhost", "x") == "127.0.0.1"
    for bad in ("::1", "pbx.example.com", "10.0.0.1"):
        with pytest.raises(InputError):
            check_loopback(bad, "x")


def test_unknown_account_is_named_with_its_line(tmp_path: Path) -> None:
    p = load_profile(write(tmp_path, """
        name: p
        shape: [{hold: {value: 5, duration_s: 20}}]
        media: {calls_per_step: 1, callee: nobody}
    """))
    with pytest.raises(ScenarioError, match="account 'nobody'") as ei:
        make_plan(p, lab_target(LabConfig(), tmp_path))
    assert ei.value.field == "media.callee" and ei.value.line == 3


def test_media_slots_fit_inside_their_steps(tmp_path: Path) -> None:
    p = load_profile(write(tmp_path, """
        name: p
        shape:
          - step: {levels: [5, 10], duration_s: 20}
          - spike: {base: 5, peak: 50, duration_s: 4, spike_s: 2}
        media: {calls_per_step: 4, talk_s: 5, lanes: 2}
    """))
    slots = plan_slots(p.media, p.timeline)
    by_step: dict[int, list[float]] = {}
    for m in slots:
        by_step.setdefault(m.step, []).append(m.offset_s)
    assert sorted(by_step) == [0, 1]  # the spike's stages are too short for a call
    assert len(by_step[0]) == 4
    for i, offsets in by_step.items():
        start, end = p.timeline.window(i)
        assert all(start <= o and o + p.media.talk_s + 2.5 <= end for o in offsets)
