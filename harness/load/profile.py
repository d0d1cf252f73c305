"""Load profiles: what load to offer, for how long, what each call does, and the SLA that judges it.

A profile is a YAML file (``scenarios/load-*.yaml``); errors name file, line and field::

    name: load-smoke
    mode: rate                     # rate: new transactions per second (open loop) | concurrent: calls up at once
    shape:                         # stages end to end; each is a step of the summary
      - ramp: {from: 2, to: 10, duration_s: 4}
      - step: {levels: [10, 20], duration_s: 4}          # one stage per level
      - spike: {base: 10, peak: 40, duration_s: 6, spike_s: 2, at_s: 2}   # at_s: default centred
      - hold: {value: 10, duration_s: 5}
    arrival: uniform               # rate mode: uniform | poisson inter-arrival times
    start_jitter_s: 1              # concurrent mode: each user starts at a random point in this window
    call:
      to: load                     # a number name of the target, a user, or a sip: URI (lab: load-answer)
      ring_to: load_ring           # what the CANCEL transaction dials (lab: load-ring, never answered)
      account: caller              # optional: From and digest credentials (401/407) of this target account
      hold_s: 1                    # how long an answered call stays up (+- hold_jitter_pct %)
      hold_jitter_pct: 20
      reinvite: false              # a hold re-INVITE (a=sendonly) halfway through each call
      rtp: false                   # pre-encoded G.711 RTP on each call (rtp_audio: a fixture WAV)
      answer_timeout_s: 10         # ringing longer than this is a failed setup (then CANCELled)
      cancel_after_s: 0.5          # the CANCEL transaction's ringing time
      register_expires_s: 60
    mix: {call: 10, options: 1, register: 1, cancel: 1}   # weights of the transaction kinds
    media: {calls_per_step: 1, talk_s: 5, caller: caller, callee: agent1, lanes: 3,
            caller_play: speech/caller.wav, callee_play: speech/agent.wav}
    sla: {setup_p95_ms: 200, success_rate_pct: 99.5, mos_min: 3.5}       # keys: SLA_KEYS
    limits: {max_calls: 2000, max_duration_s: 60, max_in_flight: 20000, rtp_streams: 400}
    timers: {t1_ms: 500, t2_ms: 4000}

``success_rate_pct: 99`` is judged even when ``sla`` does not say. ``limits.max_calls`` bounds every
transaction started (calls, CANCELs, REGISTERs, OPTIONS) across all workers; the shape may not last
longer than ``limits.max_duration_s``. Only the parsing lives here; the run is :mod:`harness.load.run`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.contracts.errors import ScenarioError
from harness.contracts.yamlsrc import Fields, LList, load_yaml
from harness.load.shapes import Stage, Timeline, hold, ramp, spike, steps

__all__ = ["SLA_KEYS", "TRANSACTIONS", "CallSpec", "Limits", "LoadProfile", "MediaSpec", "SlaRule", "load_profile"]

MODES = ("rate", "concurrent")
ARRIVALS = ("uniform", "poisson")
#: transaction kinds a user can issue; their weights are the profile's ``mix``
TRANSACTIONS = ("call", "options", "register", "cancel")


@dataclass(frozen=True)
class SlaRule:
    """One SLA key: which measurement it reads and how it compares."""

    metric: str  # a request name ("call:setup"), or success / rate / mos / loss
    stat: str  # p50 | p95 | p99 | pct | min | max
    op: str
    unit: str


SLA_KEYS: dict[str, SlaRule] = {
    "setup_p50_ms": SlaRule("call:setup", "p50", "<=", "ms"),
    "setup_p95_ms": SlaRule("call:setup", "p95", "<=", "ms"),
    "setup_p99_ms": SlaRule("call:setup", "p99", "<=", "ms"),
    "ringing_p95_ms": SlaRule("call:ringing", "p95", "<=", "ms"),
    "bye_p95_ms": SlaRule("BYE", "p95", "<=", "ms"),
    "register_p95_ms": SlaRule("REGISTER", "p95", "<=", "ms"),
    "options_p95_ms": SlaRule("OPTIONS", "p95", "<=", "ms"),
    "cancel_p95_ms": SlaRule("CANCEL", "p95", "<=", "ms"),
    "success_rate_pct": SlaRule("success", "pct", ">=", "%"),
    "rate_achieved_pct": SlaRule("rate", "pct", ">=", "%"),
    "mos_min": SlaRule("mos", "min", ">=", "MOS"),
    "loss_max_pct": SlaRule("loss", "max", "<=", "%"),
}
#: judged even when the profile does not say: a load run must not lose calls silently
DEFAULT_SLA = {"success_rate_pct": 99.0}


@dataclass(frozen=True)
class CallSpec:
    """What one load call does. ``to``/``ring_to`` are target number names, users or ``sip:`` URIs."""

    to: str = "load"
    ring_to: str = "load_ring"
    account: str | None = None  # a target account: calls and REGISTERs carry its digest credentials
    hold_s: float = 1.0
    hold_jitter_pct: float = 20.0
    reinvite: bool = False  # a hold re-INVITE (a=sendonly) halfway through the call
    rtp: bool = False
    rtp_audio: str | None = None  # resolved fixture path; None: a synthetic signal
    answer_timeout_s: float = 10.0
    cancel_after_s: float = 0.5
    register_expires_s: int = 60


@dataclass(frozen=True)
class MediaSpec:
    """Real calls between two pjsua2 parties during each step, judged by the audio engine."""

    calls_per_step: int = 0
    talk_s: float = 5.0
    caller: str = "caller"
    callee: str = "agent1"
    caller_play: str = ""
    callee_play: str = ""
    lanes: int = 3  # calls in parallel (a pjsua2 process holds 4 at most)


@dataclass(frozen=True)
class Limits:
    """Hard bounds: the run stops by itself at whichever comes first."""

    max_calls: int = 20000
    max_duration_s: float = 600.0
    max_in_flight: int = 20000  # transactions and calls up at once, per worker process
    rtp_streams: int = 400  # RTP streams per worker process (at most 500: more distorts the SIP timing)


@dataclass(frozen=True)
class LoadProfile:
    name: str
    path: str
    mode: str
    stages: tuple[Stage, ...]
    description: str = ""
    call: CallSpec = CallSpec()
    mix: dict[str, int] = field(default_factory=lambda: {"call": 1})
    arrival: str = "uniform"
    start_jitter_s: float = 1.0
    per_user: float = 1.0  # calls/s (rate) or calls (concurrent) one Locust user carries
    media: MediaSpec = MediaSpec()
    sla: dict[str, float] = field(default_factory=dict)
    limits: Limits = Limits()
    t1_s: float = 0.5
    t2_s: float = 4.0
    lines: dict[str, int] = field(default_factory=dict)  # field -> line, for errors found at run time

    @property
    def timeline(self) -> Timeline:
        return Timeline(list(self.stages))

    def error(self, field_name: str, message: str) -> ScenarioError:
        """An input error about ``field_name`` of this profile (for checks against the target)."""
        return ScenarioError(message, self.path, self.lines.get(field_name), field_name)

    def public(self) -> dict[str, Any]:
        return {"name": self.name, "file": self.path, "mode": self.mode, "arrival": self.arrival,
                "stages": [{"label": s.label, "duration_s": s.duration_s, "start": s.start, "end": s.end}
                           for s in self.stages],
                "mix": dict(self.mix), "per_user": self.per_user, "call": {
                    k: v for k, v in self.call.__dict__.items() if k != "rtp_audio"},
                "media": {"calls_per_step": self.media.calls_per_step, "talk_s": self.media.talk_s,
                          "caller": self.media.caller, "callee": self.media.callee},
                "sla": dict(self.sla), "limits": dict(self.limits.__dict__),
                "timers": {"t1_s": self.t1_s, "t2_s": self.t2_s}}


def load_profile(path: Path) -> LoadProfile:
    """Read and validate a load profile; every error names file, line and field."""
    return parse_profile(load_yaml(path, ScenarioError), str(path))


def parse_profile(doc: Any, spath: str) -> LoadProfile:
    f = Fields(doc, spath, ScenarioError, "")
    lines: dict[str, int] = {}
    name = f.req("name", str)
    description = f.opt("description", str, "")
    mode = f.choice("mode", MODES, "rate")
    stages = _shape(f, spath, mode)
    timeline = Timeline(stages)
    call = _call(f, spath, lines)
    mix = _mix(f, spath, call)
    arrival = f.choice("arrival", ARRIVALS, "uniform")
    jitter = _number(f, "start_jitter_s", 1.0, low=0, high=60)
    per_user_default = 1.0 if mode == "concurrent" else max(0.2, round(timeline.peak / 100.0, 2))
    per_user = _number(f, "per_user", per_user_default, low=0.01, high=10000)
    media = _media(f, spath, lines)
    limits = _limits(f, spath)
    sla = _sla(f, spath, media, lines)
    t1, t2 = _timers(f, spath)
    f.done()
    if mode == "concurrent" and call.hold_s <= 0:
        raise ScenarioError("concurrent mode needs calls that stay up: call.hold_s must be > 0",
                            spath, lines.get("call.hold_s"), "call.hold_s")
    if timeline.duration_s > limits.max_duration_s:
        raise ScenarioError(f"the shape lasts {timeline.duration_s:g} s, longer than limits.max_duration_s "
                            f"({limits.max_duration_s:g} s)", spath, f.line_of("shape"), "shape")
    if mode == "concurrent" and mix.get("call", 0) == 0:
        raise ScenarioError("concurrent mode holds calls: mix.call must be > 0", spath, f.line_of("mix"), "mix")
    return LoadProfile(name=name, path=spath, mode=mode, stages=tuple(stages), description=description,
                       call=call, mix=mix, arrival=arrival, start_jitter_s=jitter, per_user=per_user,
                       media=media, sla=sla, limits=limits, t1_s=t1, t2_s=t2, lines=lines)


# ---- sections ---------------------------------------------------------------------------------------
def _number(f: Fields, key: str, default: float | None, **kw: Any) -> Any:
    """``Fields.number`` that also refuses NaN and infinity (YAML's .nan and .inf pass range checks)."""
    value = f.number(key, default, **kw)
    if value is not None and not math.isfinite(value):
        raise f.fail(key, f"must be a finite number, got {value!r}")
    return value


_SHAPE_HELP = "each shape entry is one of ramp: {from, to, duration_s}, step: {levels, duration_s}, " \
              "spike: {base, peak, duration_s, spike_s[, at_s]}, hold: {value, duration_s}"


def _shape(f: Fields, spath: str, mode: str) -> list[Stage]:
    raw = f.req("shape", list)
    if not raw:
        raise f.fail("shape", "needs at least one entry; " + _SHAPE_HELP)
    high = 50000.0 if mode == "rate" else 200000.0
    out: list[Stage] = []
    for i, entry in enumerate(raw):
        line = raw.item_line(i) if isinstance(raw, LList) else None
        where = f"shape[{i}]"
        if not isinstance(entry, dict) or len(entry) != 1:
            raise ScenarioError(_SHAPE_HELP, spath, line, where)
        kind, params = next(iter(entry.items()))
        p = Fields(params, spath, ScenarioError, f"{where}.{kind}", line)
        dur = _number(p, "duration_s", None, low=0.5, high=86400, required=True)
        if kind == "ramp":
            out += ramp(_number(p, "from", None, low=0, high=high, required=True),
                        _number(p, "to", None, low=0, high=high, required=True), dur)
        elif kind == "hold":
            out += hold(_number(p, "value", None, low=0, high=high, required=True), dur)
        elif kind == "step":
            levels = p.req("levels", list)
            if not levels:
                raise p.fail("levels", "needs at least one level")
            vals = []
            for j, v in enumerate(levels):
                if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v <= high:
                    lline = levels.item_line(j) if isinstance(levels, LList) else p.line_of("levels")
                    raise ScenarioError(f"level must be a number in [0, {high:g}], got {v!r}", spath, lline,
                                        f"{where}.step.levels[{j}]")
                vals.append(float(v))
            out += steps(vals, dur)
        elif kind == "spike":
            base = _number(p, "base", None, low=0, high=high, required=True)
            peak = _number(p, "peak", None, low=0, high=high, required=True)
            spike_s = _number(p, "spike_s", None, low=0.5, high=dur, required=True)
            at_s = _number(p, "at_s", None, low=0, high=dur - spike_s)
            out += spike(base, peak, dur, spike_s=spike_s, at_s=at_s)
        else:
            raise ScenarioError(f"unknown shape '{kind}'; {_SHAPE_HELP}", spath, line, where)
        p.done()
    if max(s.peak for s in out) <= 0:
        raise f.fail("shape", "offers no load at all (every value is 0)")
    return out


def _call(f: Fields, spath: str, lines: dict[str, int]) -> CallSpec:
    raw = f.opt("call", dict, None)
    if raw is None:
        return CallSpec()
    c = Fields(raw, spath, ScenarioError, "call", f.line_of("call"))
    for key in ("to", "ring_to", "account", "hold_s", "rtp_audio"):
        line = c.line_of(key)
        if line is not None:
            lines[f"call.{key}"] = line
    to = str(c.opt("to", (str, int), "load"))
    ring_to = str(c.opt("ring_to", (str, int), "load_ring"))
    account = c.opt("account", str, None)
    audio = c.opt("rtp_audio", str, None)
    if audio is not None:
        from harness.contracts.fixture_lookup import resolve_fixture

        audio = resolve_fixture(audio, spath, c.line_of("rtp_audio"), "call.rtp_audio")
    spec = CallSpec(to=to, ring_to=ring_to, account=account,
                    hold_s=_number(c, "hold_s", 1.0, low=0, high=3600),
                    hold_jitter_pct=_number(c, "hold_jitter_pct", 20.0, low=0, high=100),
                    reinvite=c.opt("reinvite", bool, False), rtp=c.opt("rtp", bool, False), rtp_audio=audio,
                    answer_timeout_s=_number(c, "answer_timeout_s", 10.0, low=0.5, high=300),
                    cancel_after_s=_number(c, "cancel_after_s", 0.5, low=0, high=60),
                    register_expires_s=c.integer("register_expires_s", 60, low=10, high=86400))
    c.done()
    return spec


def _mix(f: Fields, spath: str, call: CallSpec) -> dict[str, int]:
    raw = f.opt("mix", dict, None)
    if raw is None:
        return {"call": 1}
    m = Fields(raw, spath, ScenarioError, "mix", f.line_of("mix"))
    mix = {k: int(m.integer(k, 0, low=0, high=1000000)) for k in TRANSACTIONS}
    m.done()
    mix = {k: v for k, v in mix.items() if v > 0}
    if not mix:
        raise f.fail("mix", f"every weight is 0; give at least one of {', '.join(TRANSACTIONS)} a weight")
    if "register" in mix and call.account is None:
        raise ScenarioError("REGISTER needs credentials: set call.account to an account of the target profile",
                            spath, m.line_of("register"), "mix.register")
    return mix


def _media(f: Fields, spath: str, lines: dict[str, int]) -> MediaSpec:
    raw = f.opt("media", dict, None)
    if raw is None:
        return MediaSpec()
    from harness.contracts.fixture_lookup import resolve_fixture

    m = Fields(raw, spath, ScenarioError, "media", f.line_of("media"))
    for key in ("caller", "callee"):
        line = m.line_of(key)
        if line is not None:
            lines[f"media.{key}"] = line
    lines["media"] = f.line_of("media") or 0
    calls = m.integer("calls_per_step", 1, low=0, high=50)
    talk = _number(m, "talk_s", 5.0, low=2, high=120)
    caller_play = resolve_fixture(m.opt("caller_play", str, "speech/caller.wav"), spath,
                                  m.line_of("caller_play"), "media.caller_play")
    callee_play = resolve_fixture(m.opt("callee_play", str, "speech/agent.wav"), spath,
                                  m.line_of("callee_play"), "media.callee_play")
    spec = MediaSpec(calls_per_step=calls, talk_s=talk, caller=m.opt("caller", str, "caller"),
                     callee=m.opt("callee", str, "agent1"), caller_play=caller_play, callee_play=callee_play,
                     lanes=m.integer("lanes", 3, low=1, high=3))
    m.done()
    if spec.caller == spec.callee:
        raise m.fail("callee", "the media caller and callee must be different accounts")
    return spec


def _limits(f: Fields, spath: str) -> Limits:
    raw = f.opt("limits", dict, None)
    if raw is None:
        return Limits()
    li = Fields(raw, spath, ScenarioError, "limits", f.line_of("limits"))
    lim = Limits(max_calls=li.integer("max_calls", Limits.max_calls, low=1, high=100_000_000),
                 max_duration_s=_number(li, "max_duration_s", Limits.max_duration_s, low=1, high=86400),
                 max_in_flight=li.integer("max_in_flight", Limits.max_in_flight, low=1, high=200000),
                 rtp_streams=li.integer("rtp_streams", Limits.rtp_streams, low=0, high=500))
    li.done()
    return lim


def _sla(f: Fields, spath: str, media: MediaSpec, lines: dict[str, int]) -> dict[str, float]:
    raw = f.opt("sla", dict, None)
    sla = dict(DEFAULT_SLA)
    if raw is None:
        return sla
    s = Fields(raw, spath, ScenarioError, "sla", f.line_of("sla"))
    for key, rule in SLA_KEYS.items():
        high = 100.0 if rule.unit == "%" else (5.0 if rule.unit == "MOS" else 600000.0)
        value = _number(s, key, None, low=0, high=high)
        if value is not None:
            sla[key] = float(value)
            lines[f"sla.{key}"] = s.line_of(key) or 0
    s.done()
    for key in ("mos_min", "loss_max_pct"):
        if key in sla and media.calls_per_step == 0:
            raise ScenarioError(f"sla.{key} is judged on media calls: set media.calls_per_step >= 1",
                                spath, lines.get(f"sla.{key}"), f"sla.{key}")
    return sla


def _timers(f: Fields, spath: str) -> tuple[float, float]:
    raw = f.opt("timers", dict, None)
    if raw is None:
        return 0.5, 4.0
    t = Fields(raw, spath, ScenarioError, "timers", f.line_of("timers"))
    t1 = _number(t, "t1_ms", 500, low=10, high=10000) / 1000.0
    t2 = _number(t, "t2_ms", 4000, low=10, high=60000) / 1000.0
    t.done()
    if t2 < t1:
        raise t.fail("t2_ms", "T2 must not be shorter than T1")
    return t1, t2
