"""Each functional and operation-flow scenario, broken on purpose at the thing it checks, must FAIL with
a clear reason. (The unbroken scenarios pass in the nightly suite: test_connect.py.)"""

from __future__ import annotations

import dataclasses
import functools
import http.server
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from harness.contracts.results import ScenarioResult
from harness.contracts.siplog import read_messages
from harness.contracts.target import RecordingSource, Target
from harness.lab import LabStack
from harness.scenarios import load_scenario
from harness.scenarios.runner import Runner

from .conftest import REPO

SCENARIOS = REPO / "scenarios"


def run_variant(lab: LabStack, tmp_path: Path, name: str, edit: Callable[[str], str],
                target: Target | None = None) -> ScenarioResult:
    """Run a shipped scenario with one edit (file written next to the original's fixtures' roots)."""
    text = (SCENARIOS / name).read_text()
    changed = edit(text)
    assert changed != text, "the edit did not apply"
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / name
    path.write_text(changed)
    runner = Runner(target or lab.target, tmp_path / "run", lab=lab, log=lambda _m: None)
    return runner.run_all([load_scenario(path)]).scenarios[0]


def failed(res: ScenarioResult) -> dict[str, str]:
    return {c.name: c.detail or str(c.value) for c in res.checks if c.verdict.value != "PASS"}


def test_blind_transfer_fails_when_the_refer_is_refused(lab: LabStack, tmp_path: Path) -> None:
    res = run_variant(lab, tmp_path, "transfer-blind.yaml",
                      lambda t: t.replace("caller: {account: caller, play: speech/caller.wav}",
                                          "caller: {account: caller, play: speech/caller.wav, transfer: reject}"))
    assert res.verdict.value == "FAIL"
    bad = failed(res)
    assert "transfer:main:notify" in bad and "not completed" in bad["transfer:main:notify"]
    assert res.error is not None and "did not complete" in res.error["message"]


def test_attended_transfer_fails_when_the_refer_is_refused(lab: LabStack, tmp_path: Path) -> None:
    res = run_variant(lab, tmp_path, "transfer-attended.yaml",
                      lambda t: t.replace("caller: {account: caller, play: speech/caller.wav}",
                                          "caller: {account: caller, play: speech/caller.wav, transfer: reject}"))
    assert res.verdict.value == "FAIL" and "transfer:main:notify" in failed(res)


def test_failure_path_scenario_fails_when_the_busy_target_answers(lab: LabStack, tmp_path: Path) -> None:
    res = run_variant(lab, tmp_path, "transfer-failures.yaml",
                      lambda t: t.replace("agent_b: {account: agent2, answer: {mode: reject, code: 486}}",
                                          "agent_b: {account: agent2}"))
    assert res.verdict.value == "FAIL"
    bad = failed(res)
    assert "transfer:main:notify" in bad or "transfer:main:outcome" in bad


def test_refused_transfer_scenario_fails_when_the_refer_is_accepted(lab: LabStack, tmp_path: Path) -> None:
    res = run_variant(lab, tmp_path, "transfer-refused.yaml", lambda t: t.replace(", transfer: reject", ""))
    assert res.verdict.value == "FAIL"
    assert "transfer:main:outcome" in failed(res)


def test_recording_missing_fails(lab: LabStack, tmp_path: Path) -> None:
    empty = tmp_path / "no-recordings"
    (empty / "pcaps").mkdir(parents=True)
    target = dataclasses.replace(lab.target, recordings=RecordingSource(dir=empty, format="rtpengine-pcap",
                                                                         wait_s=1.0))
    res = run_variant(lab, tmp_path, "recording.yaml", lambda t: t.replace("talk: 9", "talk: 3"), target)
    assert res.verdict.value == "FAIL"
    assert "no recording for Call-ID" in failed(res)["recording:main:found"]


def test_recording_silent_on_one_side_fails(lab: LabStack, tmp_path: Path) -> None:
    res = run_variant(lab, tmp_path, "recording.yaml", lambda t: t.replace(
        "agent: {account: agent1, play: speech/agent.wav}",
        "agent: {account: agent1, play: synthetic/silence.wav, reference: speech/agent.wav}"))
    assert res.verdict.value == "FAIL"
    bad = failed(res)
    assert "recording:main:agent->caller:audio_present" in bad
    assert "recording:main:caller->agent:audio_present" not in bad


def test_recording_fetched_over_http(lab: LabStack, tmp_path: Path) -> None:
    """The URL-template path a real PBX uses, served here from the lab's own recording."""
    first = run_variant(lab, tmp_path / "a", "recording.yaml", lambda t: t.replace("talk: 9", "talk: 9.0"))
    assert first.verdict.value == "PASS", failed(first)
    served = tmp_path / "served"
    served.mkdir()
    mix = next((tmp_path / "a" / "run").rglob("pbx-main_mix.wav"))
    handler = functools.partial(_Handler, directory=str(served))
    with http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler) as httpd:
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        port = httpd.server_address[1]
        target = dataclasses.replace(lab.target, recordings=RecordingSource(
            url_template=f"http://127.0.0.1:{port}/rec/{{call_id}}.wav", wait_s=15.0))

        def serve_when_ready() -> None:  # publish the file under the new call's id once it is known
            import time

            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                logs = list((tmp_path / "b" / "run").rglob("caller.sip.log"))
                invites = [m for m in read_messages(logs[0], "caller") if m.first_line.startswith("INVITE ")] \
                    if logs else []
                if invites:
                    (served / "rec").mkdir(exist_ok=True)
                    (served / "rec" / f"{invites[0].call_id}.wav").write_bytes(mix.read_bytes())
                    return
                time.sleep(0.2)

        publisher = threading.Thread(target=serve_when_ready, daemon=True)
        publisher.start()
        res = run_variant(lab, tmp_path / "b", "recording.yaml", lambda t: t.replace("talk: 9", "talk: 9.0"),
                          target)
        httpd.shutdown()
    checks = {c.name: c for c in res.checks}
    assert checks["recording:main:found"].verdict.value == "PASS"
    assert "stereo WAV" in checks["recording:main:found"].detail
    assert checks["recording:main:caller->agent:reference_match"].verdict.value == "PASS"


class _Handler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


def test_ivr_wrong_digit_fails(lab: LabStack, tmp_path: Path) -> None:
    res = run_variant(lab, tmp_path, "ivr.yaml", lambda t: t.replace('digits: "2"', 'digits: "1"'))
    assert res.verdict.value == "FAIL"
    assert "no call reached support" in failed(res)["answered_by:main"]
    checks = {c.name: c for c in res.checks}
    assert checks["prompt:main:ivr-menu"].verdict.value == "PASS"


def test_queue_with_no_free_agent_fails(lab: LabStack, tmp_path: Path) -> None:
    res = run_variant(lab, tmp_path, "queue.yaml", lambda t: t.replace(
        "agent2: {account: agent2, play: speech/agent.wav}",
        "agent2: {account: agent2, play: speech/agent.wav, answer: {mode: reject, code: 486}}"))
    assert res.verdict.value == "FAIL"
    assert "answered_by:main" in failed(res)


def test_hold_that_leaks_the_agents_voice_fails(lab: LabStack, tmp_path: Path) -> None:
    res = run_variant(lab, tmp_path, "hold.yaml", lambda t: t.replace(
        "play: speech/agent.wav, loop: true}", "play: speech/agent.wav, loop: true, hold_mute: false}"))
    assert res.verdict.value == "FAIL"
    assert "heard the holder's voice" in failed(res)["hold:main:privacy"]


@pytest.mark.parametrize("name", ["ivr.yaml"])
def test_prompt_not_heard_fails(lab: LabStack, tmp_path: Path, name: str) -> None:
    """Dialling an agent instead of the IVR: the menu prompt is not what the caller hears."""
    res = run_variant(lab, tmp_path, name, lambda t: t.replace(
        "  - call: {from: caller, to: ivr, as: main}",
        "  - call: {from: caller, to: support, as: main}").replace(
        "  - dtmf: {party: caller, call: main, digits: \"2\"}\n"
        "  - expect_answered_by: {party: support, call: main, timeout_s: 10}\n", ""))
    assert res.verdict.value == "FAIL"
    assert "prompt:main:ivr-menu" in failed(res)


def test_echo_test_number_judges_the_callers_own_speech(lab: LabStack, tmp_path: Path) -> None:
    """The lab's echo-test number (9196) sends the caller's speech back: PASS, with the round trip."""
    runner = Runner(lab.target, tmp_path / "run", lab=lab, log=lambda _m: None)
    res = runner.run_all([load_scenario(SCENARIOS / "echo-test.yaml")]).scenarios[0]
    assert res.verdict.value == "PASS", failed(res)
    checks = {c.name: c for c in res.checks}
    delay = checks["audio:echo:caller->caller:delay"]
    assert 0 <= delay.value <= 200 and delay.threshold == 2 * 150.0  # the one-way limit counts twice
    assert checks["audio:echo:caller->caller:reference_match"].value > 0.9


def test_echo_test_fails_when_what_comes_back_is_not_the_callers_speech(lab: LabStack, tmp_path: Path) -> None:
    res = run_variant(lab, tmp_path, "echo-test.yaml", lambda t: t.replace(
        "  caller: {account: caller, play: speech/caller.wav}\n",
        "  caller: {account: caller, play: speech/caller.wav}\n"
        "  agent: {account: agent1, play: speech/agent.wav, answer: auto}\n").replace("to: echo", "to: agent"))
    assert res.verdict.value == "FAIL"
    assert "audio:echo:caller->caller:reference_match" in failed(res)  # the agent's voice, not an echo
