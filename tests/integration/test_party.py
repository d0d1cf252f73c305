"""SIP parties against the real lab: registration, calls, DTMF, hold, limits and crashes."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.contracts.errors import PartyCommandError, PartyCrashed
from harness.contracts.target import Secret
from harness.lab import LabStack
from harness.sip import AutoPolicy, Party

from .conftest import FIXTURES


def confirmed(call: str):
    return lambda e: e["event"] == "call_state" and e["call"] == call and e["state"] == "CONFIRMED"


@contextlib.contextmanager
def caller_and_agent(lab: LabStack, tmp_path: Path, agent: AutoPolicy) -> Iterator[tuple[Party, Party]]:
    """Two parties registered on the lab: ``caller`` (1001) and ``agent`` (2001) with its ``agent`` policy."""
    t = lab.target
    with Party("caller", tmp_path) as c, Party("agent", tmp_path) as a:
        a.add_account(t.account("agent1"), t, auto=agent)
        c.add_account(t.account("caller"), t)
        a.wait_registered("agent1")
        c.wait_registered("caller")
        yield c, a


def test_register_ok_and_wrong_password(lab: LabStack, tmp_path: Path) -> None:
    t = lab.target
    with Party("p", tmp_path) as p:
        p.add_account(t.account("caller"), t)
        assert p.wait_registered("caller").code == 200
        bad = dataclasses.replace(t.account("caller2"), password=Secret("wrong"))
        p.add_account(bad, t)
        res = p.wait_registered("caller2")
        assert not res.ok and res.code in (401, 403)
    assert "wrong" not in (tmp_path / "p.sip.log").read_text()


def test_call_dtmf_hold_resume_and_timestamps(lab: LabStack, tmp_path: Path) -> None:
    t = lab.target
    agent = AutoPolicy(mode="answer", delay_ms=300, play=str(FIXTURES / "speech/agent.wav"))
    with caller_and_agent(lab, tmp_path, agent) as (c, a):
        res = c.call("caller", t.aor("2001"), play=str(FIXTURES / "speech/caller.wav"))
        ev = c.wait_event(confirmed(res["call"]), 10, "answer")
        times = ev["times"]
        assert times["t_180"] < times["t_200"]
        assert 250 <= (times["t_200"] - res["t_invite"]) * 1000 < 2000  # the agent rings for 300 ms
        inc = a.wait_event(lambda e: e["event"] == "incoming", 5, "incoming")
        assert inc["sip_call_id"] == ev["sip_call_id"]
        agent_call = inc["call"]
        a.wait_event(confirmed(agent_call), 5, "agent confirmed")

        c.dtmf(res["call"], "5")
        c.dtmf(res["call"], "#")
        a.wait_event(lambda e: e["event"] == "dtmf" and e["digit"] == "#", 5, "DTMF #")
        digits = [e["digit"] for e in a.call_events(agent_call) if e["event"] == "dtmf"]
        assert digits == ["5", "#"]

        c.hold(res["call"])
        a.wait_event(lambda e: e["event"] == "media_state" and e["status"] == "remote_hold", 5, "remote hold")
        mark = a.mark()
        c.resume(res["call"])
        a.wait_event(lambda e: e["event"] == "media_state" and e["status"] == "active", 5, "resumed", mark)

        c.hangup(res["call"])
        a.wait_event(lambda e: e["event"] == "call_state" and e["state"] == "DISCONNECTED", 5, "BYE at agent")
        stats = c.stats(res["call"])
        assert stats["codec"] == "PCMU" and stats["streams"] >= 2  # hold and resume replaced the stream
        assert stats["rx_packets"] > 5 and stats["tx_packets"] > 5


def test_limits_refuse_instead_of_aborting(lab: LabStack, tmp_path: Path) -> None:
    t = lab.target
    with caller_and_agent(lab, tmp_path, AutoPolicy(mode="ring")) as (c, _agent):
        calls = [c.call("caller", t.aor("2001"))["call"] for _ in range(4)]
        with pytest.raises(PartyCommandError, match="call limit reached: 4"):
            c.call("caller", t.aor("2001"))
        for cid in calls:
            c.hangup(cid)
        accounts = [dataclasses.replace(t.account("caller"), name=f"x{i}") for i in range(7)]
        for acc in accounts:
            c.add_account(acc, t, register=False)
        with pytest.raises(PartyCommandError, match="account limit"):
            c.add_account(dataclasses.replace(t.account("caller"), name="ninth"), t, register=False)
        assert c.alive
        assert c.request("ping")["accounts"][0] == "caller"


def test_crashed_child_reports_signal_and_log(lab: LabStack, tmp_path: Path) -> None:
    p = Party("doomed", tmp_path)
    p.start()
    p.add_account(lab.target.account("caller"), lab.target, register=False)
    with pytest.raises(PartyCrashed) as ei:
        p.request("crash", timeout=5)
    assert "SIGABRT" in str(ei.value)
    assert ei.value.log_tail
    with pytest.raises(PartyCrashed):
        p.request("ping")
    p.close()
    assert p.proc is not None and p.proc.poll() is not None


def test_quit_with_a_call_up_exits_cleanly(lab: LabStack, tmp_path: Path) -> None:
    """A party told to quit while its call is up hangs it up and exits 0: no pjsua2 Call object may
    outlive libDestroy (its destructor then fails pjsua's call-id assertion and aborts the process)."""
    t = lab.target
    with caller_and_agent(lab, tmp_path, AutoPolicy(mode="answer")) as (c, a):
        res = c.call("caller", t.aor("2001"), play=str(FIXTURES / "speech/caller.wav"))
        c.wait_event(confirmed(res["call"]), 10, "answer")
        c.close()
        a.wait_event(lambda e: e["event"] == "call_state" and e["state"] == "DISCONNECTED", 5, "BYE at agent")
    for party in (c, a):
        assert party.proc is not None and party.proc.returncode == 0, party.log_tail()
    for log in ("caller.log", "agent.log"):
        assert "Assertion" not in (tmp_path / log).read_text(errors="replace")
