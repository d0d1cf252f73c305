"""Rules for what the audio engine measured: noise, dropouts, echo, clipping, level, delay, MOS.

One table maps each audio check to its usual causes and fixes; two rules come first because they
change the story: a received recording shorter than the reference (a scenario problem that looks
like dropouts), and a low MOS that another failing check of the same direction already explains.
"""

from __future__ import annotations

from typing import Any

from harness.findings.evidence import CheckView, Clues
from harness.findings.finding_model import Diagnosis
from harness.findings.rules import found, rule

__all__: list[str] = []  # reached through the registry

#: audio check -> (cause, fix); {v} is the measured value, {t} the threshold, {d} the direction
AUDIO_CHECKS: dict[str, tuple[str, str]] = {
    "noise_floor": ("noise on the line {d}: {v} dBov in the reference's pauses (limit {t} dBov): analogue noise, "
                    "a ground loop or bad cabling at a phone, comfort noise set too loud, or a noisy trunk",
                    "check headsets, cabling and power of the phones, the comfort-noise level of the PBX/gateway, "
                    "and whether the noise comes from a trunk (compare with an internal call)"),
    "snr": ("speech is too close to the noise {d}: SNR {v} dB (needs {t} dB)",
            "lower the noise (see noise_floor) or raise a too-quiet speech level"),
    "dropouts": ("the audio {d} has {v} gaps (limit {t}) without packet loss to explain them: the gaps were in the "
                 "audio before it was sent (sender's device), or the jitter buffer discarded late packets",
                 "check the sending phone/softphone (CPU, audio device), the jitter buffer statistics in the "
                 "evidence, and any transcoding on the PBX"),
    "echo": ("echo {d}: the listener's own voice comes back only {v} dB down (needs {t} dB)",
             "enable or tune echo cancellation on the gateway or phone (its tail must cover the echo delay); check "
             "for acoustic coupling in headsets and for analogue 2-wire/4-wire hybrids"),
    "clipping": ("the audio {d} is clipped ({v} % of samples at the peak, limit {t} %): a gain stage on the path "
                 "is set too hot", "lower the transmit gain at the source, the PBX (rx/tx gain) or the gateway until "
                 "peaks stay below full scale"),
    "gain": ("the level changed by {v} dB on the way {d} (limit {t} dB): a gain setting on the PBX, gateway or "
             "phone", "check the rx/tx gain settings and any AGC on the path"),
    "speech_level": ("the speech {d} is too quiet: {v} dBov (needs {t} dBov)",
                     "raise the gain at the source or the PBX; check microphone placement"),
    "level_stability": ("the level {d} swings by {v} dB through the call (limit {t} dB): an AGC pumping, a loose "
                        "headset connector, or a variable gain stage", "turn off or tune the AGC; check the headset"),
    "delay": ("one-way delay {d} is {v} ms (limit {t} ms): large jitter buffers, transcoding, or a long network "
              "path", "reduce jitter buffer sizes, avoid transcoding, and check the route of the media"),
    "delay_variation": ("the delay {d} jumped by {v} ms during the call (limit {t} ms): the jitter buffer resized "
                        "under jitter, or clocks drift", "look at the jitter figures; a fixed-size jitter buffer or "
                        "a cleaner network path helps"),
    "mos": ("the perceived quality {d} is low: MOS {v} (needs {t})",
            "look at the other audio checks of this direction and at the RTP figures to find what degrades it"),
    "audio_present": ("no audio {d}", "see the SIP log and RTP figures in the evidence"),
    "bandwidth": ("the audio {d} is band-limited (muffled): it reaches only {v} Hz (needs {t} Hz): a transcoding "
                  "step or a narrowband codec on the path (G.729, GSM, a low-pass in a gateway), or a wideband call "
                  "forced to narrowband", "check the codec each leg negotiated (the SDP in the evidence) and any "
                  "transcoding on the PBX or gateway; prefer G.711 or G.722 end to end"),
    "mos_drop": ("the perceived quality {d} fell {v} MOS below what this clip scores through the codec alone "
                 "(limit {t}): something on the path degrades it", "look at the other audio checks of this direction "
                 "and at the RTP figures (loss, jitter, jitter-buffer discards) to find what"),
    "packet_loss": ("{v} % of the RTP packets {d} were lost or arrived too late to play (limit {t} %): concealment "
                    "hides it from the waveform, callers hear it as warble and clipped words",
                    "look at the loss pattern (burst ratio) and jitter in the evidence; check the network path and "
                    "its QoS marking, and the jitter buffer's discards at the receiver"),
}

#: coverage diagnosis code -> (cause, fix); {d} is the direction, {detail} the check's own account
COVERAGE: dict[str, tuple[str, str]] = {
    "media_started_late": ("media started late {d}: the first seconds of the call's speech were never heard "
                           "({detail})", "look at when the PBX starts relaying (early media, a media relay or NAT "
                           "that needs the first packets from both sides, ICE), in the SIP ladder and RTP figures"),
    "media_stopped": ("the audio {d} stopped while the call stayed up ({detail})", "look for a media relay or "
                      "firewall that dropped the stream (RTP timeout, NAT binding expiry) and for a re-INVITE in "
                      "the SIP log"),
    "call_dropped": ("the call {d} dropped, or its recording stopped early ({detail})", "see the call's end in the "
                     "SIP log: who sent the BYE, and why"),
    "recording_started_late": ("the recording {d} started after the reference began ({detail})",
                               "a harness timing problem when the recorder started late: re-run; record longer"),
    "recording_too_short": ("the scenario recorded too little {d} to judge the whole reference ({detail})",
                            "record longer: 'seconds' on check_audio, or a longer talk step"),
    "recording_ended_early": ("the recording {d} ended before the reference did ({detail})",
                              "see the call's end in the SIP log; make the talk step longer than the reference"),
}


@rule("coverage_missing", kinds=("audio", "recording"), order=12)
def coverage_missing(c: Clues) -> Diagnosis | None:
    if c.name.part != "coverage" or c.check.get("verdict") == "PASS":
        return None
    codes = [str(x) for x in (c.check.get("metrics") or {}).get("diagnosis") or []]
    code = next((k for k in COVERAGE if k in codes), None)
    if code is None:
        return None
    where = c.name.subject if c.name.kind == "audio" else f"{c.name.subject} in the PBX's recording"
    cause, fix = COVERAGE[code]
    detail = str(c.check.get("detail") or "")
    return found(cause.format(d=where, detail=detail), fix, f"judged {c.check.get('value')} % of the reference's "
                 f"speech (needs {c.check.get('threshold')} %)", *codes)


@rule("impossible_delay", kinds=("audio", "recording"), order=13)
def impossible_delay(c: Clues) -> Diagnosis | None:
    if c.name.part != "delay" or c.check.get("op") != ">=" or c.check.get("verdict") != "FAIL":
        return None
    return found(f"the received audio {c.name.subject} leads the reference by {-float(c.value or 0):.0f} ms: no "
                 "real path is faster than the sound it carries, so the recording's start was misplaced or the "
                 "reference played was not the one expected", "check that the party plays the reference named in "
                 "the scenario, and re-run; report it if it repeats (a harness timing problem)",
                 str(c.check.get("detail") or ""), confidence="possible")


def _received_shorter(c: Clues) -> tuple[float, float] | None:
    """(received seconds, dropout ms past its end) when most dropouts lie after the received audio ended."""
    audio = c.audio(c.name.audio_key)
    dur, drops = audio.get("duration_s"), audio.get("dropouts")
    if not isinstance(dur, int | float) or not isinstance(drops, list) or not drops:
        return None
    total = sum(float(d.get("duration_ms") or 0.0) for d in drops if isinstance(d, dict))
    after = sum(float(d.get("duration_ms") or 0.0) for d in drops
                if isinstance(d, dict) and float(d.get("start_s") or 0.0) >= dur - 0.1)
    return (float(dur), after) if total and after >= total / 2 else None


@rule("audio_not_measured", kinds=("audio", "recording"), order=3)
def audio_not_measured(c: Clues) -> Diagnosis | None:
    if c.check.get("verdict") != "ERROR" or c.name.direction is None:
        return None
    src, dst = c.name.direction
    detail = str(c.check.get("detail") or "no measurement")
    if not c.name.part:
        return found(f"the audio {src}->{dst} could not be judged at all: {detail}",
                     f"make sure the call was answered and {dst} records it (record: true), and that {src} plays "
                     "a reference", detail, confidence="possible")
    back = c.sibling(c.name.sibling(f"{dst}->{src}", "audio_present"))
    silent_back = back is not None and back.get("verdict") == "FAIL"
    cause = f"{c.name.part} of {src}->{dst} was not measured: {detail}"
    if c.name.part == "echo" and silent_back:
        cause += (f"; {dst} sends no audio (see the finding of audio:{dst}->{src}:audio_present), so there is no "
                  f"signal of {dst} whose echo could come back")
    return found(cause, "this follows from another problem of the call: fix that one first and this goes with it",
                 detail, confidence="likely" if silent_back else "possible")


@rule("reference_longer_than_call", kinds=("audio", "recording"), order=5)
def reference_longer_than_call(c: Clues) -> Diagnosis | None:
    if c.name.part not in ("dropouts", "mos", "level_stability"):
        return None
    short = _received_shorter(c)
    if short is None:
        return None
    dur, after = short
    return found(f"the received audio {c.name.subject} is only {dur:.1f} s long, shorter than the reference it is "
                 f"compared with: {after:.0f} ms of 'dropouts' lie after the call had ended, so this is the "
                 "scenario's timing, not the line",
                 "make the talk step at least as long as the reference audio (plus about a second), or use a "
                 "shorter reference", f"received {dur:.1f} s; {after:.0f} ms of dropouts after its end")


@rule("low_mos_explained", kinds=("audio", "recording"), order=15)
def low_mos_explained(c: Clues) -> Diagnosis | None:
    if c.name.part != "mos" or c.name.direction is None:
        return None
    n = c.name
    others = [(v.part, ch) for ch in c.scenario.get("checks", []) if ch.get("verdict") == "FAIL"
              and (v := CheckView.of(ch)).prefix == n.prefix and v.subject == n.subject
              and v.part not in ("", "mos", "emodel_r")]
    if not others:
        return None
    part, first = others[0]
    cause, fix = _fill(AUDIO_CHECKS.get(part, AUDIO_CHECKS["mos"]), first, n.subject)
    return found(f"MOS {c.value} is low because {cause}", fix,
                 *[f"{o.get('name')} FAIL: {o.get('value')} {o.get('unit') or ''}".strip() for _, o in others])


@rule("audio_quality", kinds=("audio", "recording"), order=60)
def audio_quality(c: Clues) -> Diagnosis | None:
    part = c.name.part
    if part not in AUDIO_CHECKS or c.check.get("verdict") != "FAIL" or c.name.direction is None:
        return None
    where = c.name.subject if c.name.kind == "audio" else f"{c.name.subject} in the PBX's recording"
    cause, fix = _fill(AUDIO_CHECKS[part], c.check, where)
    return found(cause, fix, str(c.check.get("detail") or ""))


def _fill(texts: tuple[str, str], check: dict[str, Any], direction: str) -> tuple[str, str]:
    values = {"v": check.get("value"), "t": check.get("threshold"), "d": direction}
    return texts[0].format(**values), texts[1].format(**values)
