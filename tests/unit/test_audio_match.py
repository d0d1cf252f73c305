"""IVR prompt recognition (:func:`harness.audio.match.find_in_loop`) through a jitter buffer that jumps.

The lab's IVR check records 3 s of what the caller hears and looks for the menu prompt in it. About one
run in twelve, the caller's adaptive jitter buffer grew or shrank by 20-160 ms in mid-window, which
splits a single-lag correlation in two (0.42-0.58 against the 0.6 threshold). The recordings here are
made from the real fixtures: the prompt looped from some point, the jumps cut in, G.711 coded.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from harness.audio import impair as imp
from harness.audio import read_wav, write_wav
from harness.audio.match import SegmentMatch, find_in_loop
from harness.contracts.target import Target
from harness.contracts.verdict import Verdict
from harness.scenarios import load_scenario, steps_ivr_queue
from harness.scenarios.context import CallLeg, RunContext

FIX = Path(__file__).resolve().parents[2] / "audio_fixtures"
REPO = Path(__file__).resolve().parents[2]
RATE = 8000
MIN_MATCH = 0.6  #: expect_prompt's default threshold (scenarios/ivr.yaml uses it)
GOOD = 0.9  #: the prompt through jumps scores at least this
BAD = 0.3  #: other audio scores at most this


def wav(rel: str) -> np.ndarray:
    x, rate = read_wav(FIX / rel)
    assert rate == RATE
    return x


@pytest.fixture(scope="module")
def menu() -> np.ndarray:
    return wav("prompts/ivr-menu.wav")


def heard(src: np.ndarray, at_s: float, jumps: tuple[tuple[float, float], ...] = (), seconds: float = 3.0,
          law: str = "ulaw") -> np.ndarray:
    """What a caller records: ``src`` looped from ``at_s``, with jitter-buffer jumps ``(time in the
    recording s, ms)`` (> 0 inserts silence, < 0 drops audio), through G.711."""
    a = round(at_s * RATE) % len(src)
    x = np.tile(src, 2 + round(seconds * RATE) // len(src))[a:a + round((seconds + 1) * RATE)]
    for t, ms in jumps:  # in time order: each one's time is on the recording's clock
        x = imp.delay_jump(x, RATE, t, ms)
    return imp.g711(x[:round(seconds * RATE)], law)


def loop_distance(a: float, b: float, period: float) -> float:
    d = abs(a - b) % period
    return min(d, period - d)


# ---- the prompt is recognised ----------------------------------------------------------------------

@pytest.mark.parametrize("at_s", [0.0, 1.7, 3.2, 4.5])  # 3.2 and 4.5: the window wraps round the loop
@pytest.mark.parametrize("law", ["ulaw", "alaw"])
def test_the_prompt_through_g711_from_any_point_of_its_loop(menu: np.ndarray, at_s: float, law: str) -> None:
    m = find_in_loop(heard(menu, at_s, law=law), menu, RATE, max_window_s=3.0)
    assert m.score >= 0.95
    assert m.jumps == ()
    assert m.single_lag == pytest.approx(m.score, abs=0.02)
    assert loop_distance(m.offset_s, at_s, len(menu) / RATE) <= 0.002
    assert m.judged_s == pytest.approx(3.0) and m.window_start_s == 0.0


@pytest.mark.parametrize("at_s", [0.0, 1.0, 4.0])
@pytest.mark.parametrize("jump_ms", [100.0, -100.0])
def test_a_jump_in_mid_window_is_followed(menu: np.ndarray, at_s: float, jump_ms: float) -> None:
    rec = heard(menu, at_s, ((1.5, jump_ms),))
    m = find_in_loop(rec, menu, RATE, max_window_s=3.0)
    assert m.score >= GOOD
    assert m.single_lag < 0.8  # the jump splits a single-lag match: the old score, below 0.6 for most
    assert len(m.jumps) == 1
    at, ms = m.jumps[0]
    assert ms == pytest.approx(jump_ms, abs=0.5)
    assert 1.45 <= at <= 1.65  # inserted silence: the change is placed in the middle of it
    assert loop_distance(m.offset_s, at_s, len(menu) / RATE) <= 0.002


def test_a_single_lag_does_not_follow_the_jump(menu: np.ndarray) -> None:
    """The failure seen in the lab: 0.5 against the 0.6 threshold without following the jump."""
    rec = heard(menu, 0.0, ((1.5, 100.0),))
    old = find_in_loop(rec, menu, RATE, max_window_s=3.0, follow_jumps=False)
    assert old.score < MIN_MATCH and old.jumps == () and old.score == old.single_lag
    assert find_in_loop(rec, menu, RATE, max_window_s=3.0).score >= GOOD


@pytest.mark.parametrize("at_s", [0.0, 1.0, 2.5, 4.0])
@pytest.mark.parametrize("jumps", [((1.0, 60.0), (2.0, 80.0)), ((1.0, 100.0), (2.0, -60.0)),
                                   ((0.8, 140.0), (2.2, -40.0))])
def test_two_jumps_are_followed(menu: np.ndarray, at_s: float, jumps: tuple[tuple[float, float], ...]) -> None:
    m = find_in_loop(heard(menu, at_s, jumps), menu, RATE, max_window_s=3.0)
    assert m.score >= GOOD
    # where a jump falls in a pause of the prompt nothing tells its time, only its size
    assert [ms for _, ms in m.jumps] == pytest.approx([ms for _, ms in jumps], abs=0.5)


def test_a_busy_jitter_buffer_dropping_10_ms_frames(menu: np.ndarray) -> None:
    """As recorded in the lab: the caller's buffer shrank by one 10 ms frame every ~0.4 s."""
    rec = imp.g711(np.tile(menu, 2)[round(0.5 * RATE):round(4.5 * RATE)])
    for t in (1.2, 1.55, 2.0, 2.4):
        rec = imp.time_warp(rec, RATE, t, -10.0)
    m = find_in_loop(rec[:3 * RATE], menu, RATE, max_window_s=3.0)
    assert m.score >= GOOD
    assert m.single_lag < MIN_MATCH
    assert sum(ms for _, ms in m.jumps) == pytest.approx(-40.0, abs=0.5)


@pytest.mark.parametrize("at_s", [0.0, 2.5])
def test_a_jump_under_noise(menu: np.ndarray, at_s: float) -> None:
    rec = imp.white_noise(heard(menu, at_s, ((1.5, 100.0),)), -40.0, np.random.default_rng(7))
    m = find_in_loop(rec, menu, RATE, max_window_s=3.0)
    assert m.score >= GOOD
    assert [ms for _, ms in m.jumps] == pytest.approx([100.0], abs=0.5)


def test_the_window_is_the_loudest_part_of_a_longer_recording(menu: np.ndarray) -> None:
    rec = np.concatenate([np.zeros(RATE), heard(menu, 2.0, ((1.2, 100.0),)), np.zeros(RATE // 2)])
    m = find_in_loop(rec, menu, RATE, max_window_s=3.0)
    assert m.score >= GOOD and 0.0 < m.window_start_s <= 1.0
    # times are on the recording's clock: the prompt's 2.0 s is its 1.0 s, so its 0 s is the prompt's 1.0 s
    assert m.offset_s == pytest.approx(1.0, abs=0.002)
    assert m.jumps[0][0] == pytest.approx(1.0 + 1.2, abs=0.15)


# ---- other audio is not ----------------------------------------------------------------------------

OTHERS = ["speech/caller.wav", "speech/agent.wav", "speech/espeak_us_f.wav", "speech/espeak_gb_m.wav",
          "prompts/queue-music.wav", "prompts/ivr-invalid.wav"]


@pytest.mark.parametrize("at_s", [0.0, 1.5, 4.5])
@pytest.mark.parametrize("other", OTHERS)
def test_other_speech_music_or_the_wrong_prompt_do_not_match(menu: np.ndarray, other: str, at_s: float) -> None:
    m = find_in_loop(heard(wav(other), at_s), menu, RATE, max_window_s=3.0)
    assert m.score <= BAD
    assert m.jumps == ()  # nothing in them is evidence of a lag: the path stays where it started


@pytest.mark.parametrize("other", OTHERS)
def test_other_audio_with_a_jump_of_its_own_does_not_match(menu: np.ndarray, other: str) -> None:
    m = find_in_loop(heard(wav(other), 1.0, ((1.5, 100.0),)), menu, RATE, max_window_s=3.0)
    assert m.score <= BAD


@pytest.mark.parametrize("level", [-40.0, -30.0, -20.0])
def test_noise_does_not_match(menu: np.ndarray, level: float) -> None:
    rng = np.random.default_rng(3)
    for rec in (imp.white_noise(np.zeros(3 * RATE), level, rng), imp.pink_noise(np.zeros(3 * RATE), level, rng)):
        m = find_in_loop(imp.g711(rec), menu, RATE, max_window_s=3.0)
        assert abs(m.score) <= BAD


def test_silence_and_too_short_a_recording_match_nothing(menu: np.ndarray) -> None:
    assert find_in_loop(np.zeros(3 * RATE), menu, RATE, max_window_s=3.0) == SegmentMatch(0.0, 0.0, -120.0)
    short = find_in_loop(menu[RATE:RATE + RATE // 8], menu, RATE)
    assert short.score == 0.0 and short.judged_s == 0.0


def test_the_hold_privacy_check_still_tells_music_from_the_holders_voice() -> None:
    """expect_hold_audio looks for the holder's speech in what the held party hears (<= 0.3)."""
    holder = wav("speech/caller.wav")
    for other in ("prompts/queue-music.wav", "speech/agent.wav", "prompts/ivr-menu.wav"):
        assert find_in_loop(heard(wav(other), 0.7), holder, RATE).score <= BAD
    leak = find_in_loop(heard(holder, 4.0, ((1.5, 100.0),)), holder, RATE)
    assert leak.score >= GOOD and leak.single_lag < 0.8


def test_segment_match_keeps_its_three_positional_fields() -> None:
    m = SegmentMatch(0.5, 1.25, -30.0)
    assert (m.score, m.offset_s, m.level_dbov) == (0.5, 1.25, -30.0)
    assert m.jumps == () and m.jumps_text() == "no delay jump"
    two = SegmentMatch(0.99, 0.0, -28.0, ((1.52, 100.0), (2.4, -20.0)))
    assert two.jumps_text() == "2 delay jumps followed (+100 ms at 1.52 s, -20 ms at 2.40 s)"


# ---- the expect_prompt step -------------------------------------------------------------------------

class _Recorder:
    """A party that "records" a prepared signal: the WAV appears at stop_record."""

    def __init__(self, signal: np.ndarray) -> None:
        self.signal = signal
        self.requests: list[str] = []

    def request(self, cmd: str, **kw: Any) -> dict[str, Any]:
        self.requests.append(cmd)
        if cmd == "stop_record":
            write_wav(kw["path"], self.signal, RATE)
        return {}


def test_expect_prompt_names_the_jumps_it_followed(menu: np.ndarray, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    sc = load_scenario(REPO / "scenarios" / "ivr.yaml")
    step = next(e.step for e in sc.steps if e.keyword == "expect_prompt")
    assert isinstance(step, steps_ivr_queue.ExpectPrompt)
    target = Target.from_mapping({"name": "t", "pbx": {"host": "127.0.0.1"}}, "<test>")
    ctx = RunContext(sc, target, tmp_path)
    ctx.calls["main"] = CallLeg("main", "caller", "c1", "sip:ivr@127.0.0.1")
    ctx.parties["caller"] = _Recorder(heard(menu, 1.0, ((1.5, 100.0),)))  # type: ignore[assignment]
    monkeypatch.setattr(steps_ivr_queue.time, "sleep", lambda _s: None)
    step.run(ctx)
    (check,) = ctx.checks
    assert check.name == "prompt:main:ivr-menu" and check.verdict is Verdict.PASS
    assert check.threshold == MIN_MATCH and check.value >= GOOD
    assert "1 delay jump followed (+100 ms at 1.5" in check.detail and "at a single lag" in check.detail
    assert check.metrics["jumps"][0]["jump_ms"] == pytest.approx(100.0, abs=0.5)
    assert check.metrics["single_lag"] < 0.8 and check.metrics["judged_s"] == pytest.approx(3.0)
    assert ctx.artifacts["prompt:ivr-menu"] == "caller-c1-prompt-ivr-menu.wav"


# ---- a voice under music on hold --------------------------------------------------------------------------
def _under(voice: np.ndarray, music: np.ndarray, at_s: float, db: float | None) -> np.ndarray:
    m = np.tile(music, 2)[: 3 * RATE]
    if db is None:
        return m
    v = heard(voice, at_s)[: len(m)]
    return m + v * 10 ** (db / 20) * np.sqrt(np.mean(m * m)) / np.sqrt(np.mean(v * v))


def test_the_holders_voice_ten_db_under_music_is_found_and_measured() -> None:
    """The issue's case: the agent's voice 10 dB under the music correlated only 0.3 with the mix and
    passed; its level is measured instead (-36 dBov here, against the -60 dBov limit)."""
    from harness.audio.match import voice_in_mix

    music, agent = wav("prompts/queue-music.wav"), wav("speech/agent.wav")
    for at_s in (0.0, 1.6, 5.0, 6.9):
        v = voice_in_mix(_under(agent, music, at_s, -10.0), agent, RATE)
        assert v.found and -40.0 <= v.level_dbov <= -32.0, (at_s, v)
        loud = voice_in_mix(_under(agent, music, at_s, 0.0), agent, RATE)
        assert loud.found and abs(loud.level_dbov - loud.mix_level_dbov) < 4.0


def test_music_other_speech_and_prompts_hold_no_voice() -> None:
    from harness.audio.match import voice_in_mix

    agent = wav("speech/agent.wav")
    for other in ("prompts/queue-music.wav", "speech/caller.wav", "prompts/ivr-menu.wav", "prompts/ivr-invalid.wav",
                  "speech/espeak_us_f.wav", "synthetic/tone_1k.wav"):
        for at_s in np.arange(0.0, 7.0, 0.9):
            v = voice_in_mix(heard(wav(other), float(at_s)), agent, RATE)
            assert not v.found and v.level_dbov == -120.0, (other, at_s, v)
    assert not voice_in_mix(np.zeros(3 * RATE), agent, RATE).found
