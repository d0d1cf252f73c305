"""A transfer expected to fail PASSes on evidence only: the REFER's outcome (a final NOTIFY, or none where
the target profile documents it) and that the target was offered the call. Parties are faked from the
events a pjsua2 child sends."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from harness.contracts.errors import StepFailed
from harness.contracts.target import Target
from harness.contracts.verdict import Verdict
from harness.scenarios.context import CallLeg, RunContext
from harness.scenarios.scenario_model import Scenario
from harness.scenarios.steps_transfer import Offer, Transfer, _offer_evidence

Event = dict[str, Any]


class FakeParty:
    def __init__(self, events: list[Event]):
        self.history = events

    def sync(self, timeout: float = 5.0) -> None:
        pass

    def find(self, pred: Any, since: int = 0) -> Event | None:
        return next((e for e in self.history[since:] if pred(e)), None)

    def call_events(self, call: str) -> list[Event]:
        return [e for e in self.history if e.get("call") == call]


def state(call: str, st: str, code: int) -> Event:
    return {"event": "call_state", "call": call, "state": st, "code": code}


ACCEPTED = {"event": "xfer_request", "call": "c1", "accepted": True, "new_call": "c2"}


def target(**behaviour: Any) -> Target:
    data: dict[str, Any] = {"name": "pbx", "pbx": {"host": "127.0.0.1"},
                            "accounts": {"caller": {"username": "1001", "password": "x"}}}
    if behaviour:
        data["behaviour"] = behaviour
    return Target.from_mapping(data, "pbx.yaml")


def ctx_with(tmp_path: Path, parties: dict[str, FakeParty], tgt: Target | None = None) -> RunContext:
    ctx = RunContext(Scenario(name="t", path="t.yaml"), tgt or target(), tmp_path)
    ctx.parties.update(parties)  # type: ignore[arg-type]
    return ctx


def test_a_busy_target_that_saw_the_invite_is_offered(tmp_path: Path) -> None:
    transferee = FakeParty([ACCEPTED, state("c2", "DISCONNECTED", 486)])
    agent_b = FakeParty([{"event": "incoming", "call": "c1"}, state("c1", "DISCONNECTED", 486)])
    ctx = ctx_with(tmp_path, {"caller": transferee, "agent_b": agent_b})
    offer = _offer_evidence(ctx, transferee, {"transferee": 0, "target": 0}, "agent_b", cancelled=False)  # type: ignore[arg-type]
    assert offer.offered and offer.final_code == 486
    assert offer.detail == ("agent_b was offered the call (INVITE received and ended it with 486); the transferee's "
                            "INVITE got no ringing and ended with 486")


def test_a_target_that_never_saw_the_invite_was_not_offered(tmp_path: Path) -> None:
    transferee = FakeParty([ACCEPTED])
    ctx = ctx_with(tmp_path, {"caller": transferee, "agent_b": FakeParty([])})
    offer = _offer_evidence(ctx, transferee, {"transferee": 0, "target": 0}, "agent_b", cancelled=True)  # type: ignore[arg-type]
    assert not offer.offered and "agent_b never saw the transferred call's INVITE" in offer.detail


def test_a_number_outside_the_scenario_counts_ringing_but_not_the_harnesss_own_487(tmp_path: Path) -> None:
    rang = FakeParty([ACCEPTED, state("c2", "EARLY", 180), state("c2", "DISCONNECTED", 487)])
    ctx = ctx_with(tmp_path, {"caller": rang})
    offer = _offer_evidence(ctx, rang, {"transferee": 0, "target": 0}, None, cancelled=True)  # type: ignore[arg-type]
    assert offer.offered and offer.final_code is None  # the 487 followed the harness's CANCEL
    assert "rang the target" in offer.detail and "after the harness cancelled it" in offer.detail
    silent = FakeParty([ACCEPTED, state("c2", "DISCONNECTED", 487)])
    offer = _offer_evidence(ctx, silent, {"transferee": 0, "target": 0}, None, cancelled=True)  # type: ignore[arg-type]
    assert not offer.offered and "no sign that the PBX offered the target the call" in offer.detail


def _failed(tmp_path: Path, expect: str, code: int | None, offer: Offer, tgt: Target | None = None,
            refused: bool = False) -> dict[str, tuple[Verdict, Any]]:
    alive = FakeParty([])
    ctx = ctx_with(tmp_path, {"caller": alive, "agent_a": alive}, tgt)
    leg = CallLeg("main", "caller", "c1", "sip:2001@x", callee="agent_a", callee_call="c1")
    step = Transfer("agent_a", "main", "agent_b", None, "x", expect, 3.0)
    step._failed(ctx, leg, alive, "c1", alive, "c1", code, refused, offer)  # type: ignore[arg-type]
    return {c.name.split(":")[-1]: (c.verdict, c.value) for c in ctx.checks}


OFFERED = Offer(True, "agent_b was offered the call", 486)


def test_failed_transfer_checks(tmp_path: Path) -> None:
    got = _failed(tmp_path, "busy", 486, OFFERED)
    assert got == {"outcome": (Verdict.PASS, "final NOTIFY 486"), "offered": (Verdict.PASS, "offered"),
                   "recovered": (Verdict.PASS, "connected")}
    # no NOTIFY at all: FAIL, unless the profile documents a PBX that sends none
    assert _failed(tmp_path, "no_answer", None, OFFERED)["outcome"] == (Verdict.FAIL, "no final NOTIFY")
    documented = _failed(tmp_path, "busy", None, OFFERED, target(failed_transfer_notify="none"))
    assert documented["outcome"][0] is Verdict.PASS
    # the target was never offered the call: the transfer's failure proves nothing
    assert _failed(tmp_path, "busy", 486, Offer(False, "never saw it"))["offered"] == (Verdict.FAIL, "not offered")
    # a refused REFER needs no offer (nothing should have been offered)
    refused = _failed(tmp_path, "rejected", 603, Offer(False, ""), refused=True)
    assert refused["outcome"] == (Verdict.PASS, "REFER refused") and "offered" not in refused
    # a transfer that completed is no failure
    assert _failed(tmp_path, "busy", 200, OFFERED)["outcome"] == (Verdict.FAIL, "final NOTIFY 200")


def test_a_dropped_caller_stops_the_scenario(tmp_path: Path) -> None:
    gone = FakeParty([state("c1", "DISCONNECTED", 200)])
    ctx = ctx_with(tmp_path, {"caller": gone, "agent_a": gone})
    leg = CallLeg("main", "caller", "c1", "sip:2001@x", callee="agent_a", callee_call="c1")
    with pytest.raises(StepFailed, match="dropped the call"):
        Transfer("agent_a", "main", "agent_b", None, "x", "busy", 3.0)._failed(
            ctx, leg, gone, "c1", gone, "c1", 486, False, OFFERED)  # type: ignore[arg-type]
