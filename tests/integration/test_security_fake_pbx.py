"""The security steps against small fake PBXs made of literal SIP: a UDP socket on 127.0.0.1 in a thread
that answers REGISTER (401 challenge, 403, 200) and INVITE by a policy. No kamailio, no lab: each policy is
one behaviour a real PBX might have, and the step must judge it on evidence:

* brute force: 403 to every wrong password without a ban FAILs; 403 to everything FAILs (the right
  password is refused too); a ban after N PASSes, so do a 403 ban, a locked account and growing delays;
  silence is ERROR; one dropped REGISTER, or a "ban" that still lets the right password in, FAILs;
* toll fraud: only a refusal in the policy counts; a call kept without a final answer (the harness's own
  CANCEL, then 487) FAILs as "not refused within N s"; every dial format is probed;
* enumeration: a PBX that answers real extensions and drops made-up ones FAILs on silence.

They open sockets (hence here and not in tests/unit) but need no lab.
"""

from __future__ import annotations

import hashlib
import re
import socket
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from harness.contracts.sipmsg import SipMessage, parse, parse_challenge
from harness.contracts.target import Target
from harness.contracts.verdict import CheckResult
from harness.scenarios import load_scenario
from harness.scenarios.context import RunContext

REALM = "fake.test"
ACCOUNTS = {"1001": "right-pw-1001-x7", "2001": "right-pw-2001-x7", "1002": "right-pw-1002-x7"}
LOCAL = set(ACCOUNTS)


# ---- the fake PBX ------------------------------------------------------------------------------------------
def answer(req: SipMessage, status: str, extra: str = "") -> bytes:
    """A response echoing the request's transaction headers, as literal SIP text."""
    to = req.header("To") + ("" if ";tag=" in req.header("To") else ";tag=fake1")
    return (f"SIP/2.0 {status}\r\nVia: {req.header('Via')}\r\nFrom: {req.header('From')}\r\nTo: {to}\r\n"
            f"Call-ID: {req.call_id}\r\nCSeq: {req.header('CSeq')}\r\n{extra}Content-Length: 0\r\n\r\n").encode()


def challenge(req: SipMessage) -> bytes:
    nonce = hashlib.md5(f"{req.call_id}{time.monotonic()}".encode()).hexdigest()
    return answer(req, "401 Unauthorized", f'WWW-Authenticate: Digest realm="{REALM}", nonce="{nonce}", '
                                           'algorithm=MD5, qop="auth"\r\n')


def user_of(value: str) -> str:
    m = re.search(r"sip:([^@;>]+)@", value)
    return m.group(1) if m else ""


def password_state(req: SipMessage) -> str:
    """none (no credentials), right or wrong: the digest checked against the account's real password."""
    auth = req.header("Authorization") or req.header("Proxy-Authorization")
    if not auth:
        return "none"
    p = parse_challenge(auth)
    password = ACCOUNTS.get(p.get("username", ""))
    if password is None:
        return "wrong"

    def h(s: str) -> str:
        return hashlib.md5(s.encode()).hexdigest()

    ha1, ha2 = h(f"{p['username']}:{p.get('realm', '')}:{password}"), h(f"{req.method}:{p.get('uri', '')}")
    if p.get("qop"):
        want = h(f"{ha1}:{p['nonce']}:{p['nc']}:{p['cnonce']}:{p['qop']}:{ha2}")
    else:
        want = h(f"{ha1}:{p['nonce']}:{ha2}")
    return "right" if p.get("response") == want else "wrong"


@dataclass
class Reply:
    data: bytes
    delay_s: float = 0.0


Policy = Callable[["FakePbx", SipMessage, str], list[Reply]]


@dataclass
class FakePbx:
    """One UDP socket on 127.0.0.1; each new transaction goes to ``policy(pbx, request, source address)``.
    Retransmissions of a transaction get its answers again (or nothing while they are still delayed)."""

    policy: Policy
    fails_by_source: dict[str, int] = field(default_factory=dict)
    fails_by_user: dict[str, int] = field(default_factory=dict)
    seen: list[tuple[str, str, str]] = field(default_factory=list)  # (source, method, password state)

    def __post_init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self.sent: dict[tuple[str, str, str], list[bytes] | None] = {}
        self.pending_invites: dict[str, SipMessage] = {}
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def _loop(self) -> None:
        while not self.stop.is_set():
            try:
                data, peer = self.sock.recvfrom(65535)
            except OSError:
                continue
            req = parse(data)
            if req.is_response or req.method == "ACK":
                continue
            key = (req.call_id, req.header("CSeq"), req.branch())
            if key in self.sent:  # a retransmission
                for r in self.sent[key] or []:
                    self.sock.sendto(r, peer)
                continue
            self.seen.append((peer[0], req.method, password_state(req)))
            if req.method == "CANCEL":
                self._cancel(req, peer)
                continue
            replies = self.policy(self, req, peer[0])
            self.sent[key] = None if any(r.delay_s for r in replies) else [r.data for r in replies]
            if req.method == "INVITE" and not any(parse(r.data).status >= 200 for r in replies):
                self.pending_invites[req.call_id] = req
            for r in replies:
                if r.delay_s:
                    threading.Timer(r.delay_s, self._send_late, (key, r.data, peer)).start()
                else:
                    self.sock.sendto(r.data, peer)

    def _send_late(self, key: tuple[str, str, str], data: bytes, peer: tuple[str, int]) -> None:
        self.sent[key] = [*(self.sent.get(key) or []), data]
        if not self.stop.is_set():
            self.sock.sendto(data, peer)

    def _cancel(self, req: SipMessage, peer: tuple[str, int]) -> None:
        self.sock.sendto(answer(req, "200 OK"), peer)
        invite = self.pending_invites.pop(req.call_id, None)
        if invite is not None:
            self.sock.sendto(answer(invite, "487 Request Terminated"), peer)

    def close(self) -> None:
        self.stop.set()
        self.thread.join(2)
        self.sock.close()


# ---- policies: REGISTER ------------------------------------------------------------------------------------
def register_policy(on_digest: Callable[[FakePbx, SipMessage, str, str], list[Reply]],
                    on_invite: Policy | None = None) -> Policy:
    """Challenge a REGISTER without credentials; ``on_digest(pbx, req, source, right|wrong)`` answers the rest."""
    def policy(pbx: FakePbx, req: SipMessage, src: str) -> list[Reply]:
        if req.method == "REGISTER":
            state = password_state(req)
            if state == "none":
                return [Reply(challenge(req))]
            return on_digest(pbx, req, src, state)
        if req.method == "INVITE" and on_invite is not None:
            return on_invite(pbx, req, src)
        return [Reply(answer(req, "200 OK"))]
    return policy


def ok_or(req: SipMessage, state: str, wrong: bytes) -> list[Reply]:
    return [Reply(answer(req, "200 OK") if state == "right" else wrong)]


def open_pbx(pbx: FakePbx, req: SipMessage, src: str, state: str) -> list[Reply]:
    return ok_or(req, state, challenge(req))  # a wrong password: challenged again, forever


def wrong_403(pbx: FakePbx, req: SipMessage, src: str, state: str) -> list[Reply]:
    return ok_or(req, state, answer(req, "403 Forbidden"))


def always_403(pbx: FakePbx, req: SipMessage, src: str, state: str) -> list[Reply]:
    return [Reply(answer(req, "403 Forbidden"))]


def count(pbx: FakePbx, req: SipMessage, src: str, state: str) -> None:
    if state == "wrong":
        pbx.fails_by_source[src] = pbx.fails_by_source.get(src, 0) + 1
        user = user_of(req.header("From"))
        pbx.fails_by_user[user] = pbx.fails_by_user.get(user, 0) + 1


def ban_after(n: int, ban_reply: str | None = None) -> Policy:
    """After ``n`` wrong passwords from a source, that source is dropped (or answered ``ban_reply``)."""
    def policy(pbx: FakePbx, req: SipMessage, src: str) -> list[Reply]:
        if pbx.fails_by_source.get(src, 0) >= n:
            return [] if ban_reply is None else [Reply(answer(req, ban_reply))]
        if req.method == "REGISTER" and password_state(req) != "none":
            state = password_state(req)
            count(pbx, req, src, state)
            return ok_or(req, state, answer(req, "403 Forbidden") if ban_reply else challenge(req))
        return [Reply(challenge(req))] if req.method == "REGISTER" else [Reply(answer(req, "200 OK"))]
    return policy


def lockout_after(n: int) -> Policy:
    """After ``n`` wrong passwords for an account, it is locked: even the right password gets 403, from anywhere."""
    def digest(pbx: FakePbx, req: SipMessage, src: str, state: str) -> list[Reply]:
        if pbx.fails_by_user.get(user_of(req.header("From")), 0) >= n:
            return [Reply(answer(req, "403 Account Locked"))]
        count(pbx, req, src, state)
        return ok_or(req, state, challenge(req))
    return register_policy(digest)


def throttle(step_s: float) -> Policy:
    """Every answer to a digest from a source waits ``step_s * 2**(fails-1)`` once it has failed."""
    def digest(pbx: FakePbx, req: SipMessage, src: str, state: str) -> list[Reply]:
        fails = pbx.fails_by_source.get(src, 0)
        delay = step_s * 2 ** (fails - 1) if fails else 0.0
        count(pbx, req, src, state)
        return [Reply(r.data, delay) for r in ok_or(req, state, challenge(req))]
    return register_policy(digest)


def drop_once(at: int) -> Policy:
    """An open PBX that loses the ``at``-th wrong password's answer, once."""
    def digest(pbx: FakePbx, req: SipMessage, src: str, state: str) -> list[Reply]:
        count(pbx, req, src, state)
        if state == "wrong" and pbx.fails_by_source[src] == at:
            return []
        return ok_or(req, state, challenge(req))
    return register_policy(digest)


def drops_wrong_after(n: int) -> Policy:
    """After ``n`` wrong passwords a source's wrong passwords go unanswered, but the right one still gets in."""
    def digest(pbx: FakePbx, req: SipMessage, src: str, state: str) -> list[Reply]:
        if state == "wrong" and pbx.fails_by_source.get(src, 0) >= n:
            return []
        count(pbx, req, src, state)
        return ok_or(req, state, challenge(req))
    return register_policy(digest)


def dies_after(n: int) -> Policy:
    """After ``n`` wrong passwords the PBX stops answering anyone (it went down, it did not ban)."""
    def policy(pbx: FakePbx, req: SipMessage, src: str) -> list[Reply]:
        if sum(pbx.fails_by_source.values()) >= n:
            return []
        return register_policy(open_pbx)(pbx, req, src)

    def counting(pbx: FakePbx, req: SipMessage, src: str) -> list[Reply]:
        if req.method == "REGISTER":
            count(pbx, req, src, password_state(req))
        return policy(pbx, req, src)
    return counting


def silent(pbx: FakePbx, req: SipMessage, src: str) -> list[Reply]:
    return []


# ---- policies: INVITE (toll fraud) -------------------------------------------------------------------------
def invite_policy(external: Callable[[SipMessage, str], list[Reply]]) -> Policy:
    """Local users are challenged (407); a call to a number that is not a local extension goes to ``external``."""
    def on_invite(pbx: FakePbx, req: SipMessage, src: str) -> list[Reply]:
        dialled = user_of(req.uri)
        from_local = user_of(req.header("From")) in LOCAL and "guest.invalid" not in req.header("From")
        if from_local and password_state(req) == "none":
            nonce = hashlib.md5(req.call_id.encode()).hexdigest()
            return [Reply(answer(req, "407 Proxy Authentication Required",
                                 f'Proxy-Authenticate: Digest realm="{REALM}", nonce="{nonce}", qop="auth"\r\n'))]
        if dialled in LOCAL:
            return [Reply(answer(req, "100 Trying")), Reply(answer(req, "486 Busy Here"))]
        return external(req, dialled)
    return register_policy(open_pbx, on_invite)


def refuse_external(req: SipMessage, dialled: str) -> list[Reply]:
    return [Reply(answer(req, "100 Trying")), Reply(answer(req, "403 Forbidden"))]


def trying_forever(req: SipMessage, dialled: str) -> list[Reply]:
    return [Reply(answer(req, "100 Trying"))]  # the trunk never answers; only a CANCEL ends it (487)


def plus_rings(req: SipMessage, dialled: str) -> list[Reply]:
    if dialled.startswith("+"):
        return [Reply(answer(req, "100 Trying")), Reply(answer(req, "180 Ringing"))]
    return [Reply(answer(req, "404 Not Found"))]


def unavailable(req: SipMessage, dialled: str) -> list[Reply]:
    return [Reply(answer(req, "100 Trying")), Reply(answer(req, "480 Temporarily Unavailable"))]


# ---- policies: enumeration ---------------------------------------------------------------------------------
def drops_unknown_users(pbx: FakePbx, req: SipMessage, src: str) -> list[Reply]:
    """Challenges real extensions, stays silent for made-up ones."""
    if user_of(req.header("From")) not in LOCAL:
        return []
    return register_policy(open_pbx)(pbx, req, src)


# ---- running steps against it ------------------------------------------------------------------------------
@pytest.fixture
def fake() -> Iterator[Callable[[Policy], FakePbx]]:
    made: list[FakePbx] = []

    def make(policy: Policy) -> FakePbx:
        made.append(FakePbx(policy))
        return made[-1]

    yield make
    for p in made:
        p.close()


def run_steps(pbx: FakePbx, tmp_path: Path, steps: str, timeout_s: float = 60) -> dict[str, CheckResult]:
    target = Target.from_mapping({
        "name": "fake", "pbx": {"host": "127.0.0.1", "port": pbx.port, "domain": REALM},
        "accounts": {"caller": {"username": "1001", "password": ACCOUNTS["1001"]},
                     "agent1": {"username": "2001", "password": ACCOUNTS["2001"]},
                     "agent2": {"username": "1002", "password": ACCOUNTS["1002"]}}}, "<fake>")
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / "s.yaml"
    path.write_text(f"name: fake\ntimeout_s: {timeout_s}\nsteps:\n"
                    + textwrap.indent(textwrap.dedent(steps).strip(), "  ") + "\n")
    sc = load_scenario(path)
    out = tmp_path / "out"
    out.mkdir()
    lines: list[str] = []
    ctx = RunContext(sc, target, out, lines.append)
    for entry in sc.steps:
        entry.step.run(ctx)
    text = (out / "probes-evidence.txt").read_text()
    for pw in ACCOUNTS.values():  # no password in the evidence or the log
        assert pw not in text and not any(pw in line for line in lines)
    return {c.name: c for c in ctx.checks}


BRUTE = "- brute_force: {account: caller, attempts: 8, timeout_ms: 400}"


def brute(pbx: FakePbx, tmp_path: Path, steps: str = BRUTE) -> CheckResult:
    return run_steps(pbx, tmp_path, steps)["security:brute_force:protection"]


def assert_figures(c: CheckResult) -> None:
    """Every verdict carries what was measured and what it was held to."""
    assert c.threshold and "banned" in c.threshold and "slowed" in c.threshold
    assert c.metrics["category"] == "security" and c.metrics["severity"] == "high"
    if c.verdict.value != "ERROR":
        assert c.value is not None
        assert c.metrics["evidence"]["exchanges"]


# ---- brute force -------------------------------------------------------------------------------------------
def test_403_to_every_wrong_password_without_a_ban_fails(fake: Callable[[Policy], FakePbx], tmp_path: Path) -> None:
    c = brute(fake(register_policy(wrong_403)), tmp_path)
    assert_figures(c)
    assert c.verdict.value == "FAIL" and c.value == "none", c.detail
    assert "#1-8 403 Forbidden" in c.detail and "right password before: 200 OK" in c.detail
    assert "a 403 Forbidden to a wrong password is a refusal, not a ban" in c.detail
    assert "the right password then, from the same source: 200 OK" in c.detail
    assert c.metrics["wrong_codes"] == [403] * 8 and c.metrics["right_after"][0]["code"] == 200
    assert all(ms is not None for ms in c.metrics["wrong_ms"])


def test_403_to_everything_fails_the_right_password_was_refused_too(
        fake: Callable[[Policy], FakePbx], tmp_path: Path) -> None:
    c = brute(fake(register_policy(always_403)), tmp_path)
    assert_figures(c)
    assert c.verdict.value == "FAIL" and c.value == "right password refused (403)", c.detail
    assert "the right password was refused before any wrong one (403 Forbidden)" in c.detail
    assert "no difference between right and wrong passwords" in c.detail


def test_open_pbx_fails(fake: Callable[[Policy], FakePbx], tmp_path: Path) -> None:
    c = brute(fake(register_policy(open_pbx)), tmp_path)
    assert c.verdict.value == "FAIL" and c.value == "none" and "every guess was answered and checked" in c.detail


def test_ban_after_n_passes_with_the_ban_evidence(fake: Callable[[Policy], FakePbx], tmp_path: Path) -> None:
    pbx = fake(ban_after(5))
    c = brute(pbx, tmp_path)
    assert_figures(c)
    assert c.verdict.value == "PASS" and c.value == "blocked after 5 wrong passwords", c.detail
    assert "#1-5 401 Unauthorized" in c.detail and "#6-7 no answer within 0.4 s" in c.detail
    assert "no answer within 0.4 s (x3)" in c.detail and "the source is banned" in c.detail
    assert c.metrics["control"]["code"] == 200 and c.metrics["control"]["source"] != c.metrics["source"]
    assert c.metrics["attempts"] == 7 and c.metrics["blocked_after"] == 5
    assert len(c.metrics["right_after"]) == 3


def test_ban_answered_with_403_passes(fake: Callable[[Policy], FakePbx], tmp_path: Path) -> None:
    c = brute(fake(ban_after(3, "403 Forbidden")), tmp_path)
    assert c.verdict.value == "PASS" and c.value == "blocked within 8 wrong passwords", c.detail
    assert [a["code"] for a in c.metrics["right_after"]] == [403, 403, 403]
    assert c.metrics["control"]["code"] == 200 and "the source is banned" in c.detail


def test_locked_account_passes_and_says_so(fake: Callable[[Policy], FakePbx], tmp_path: Path) -> None:
    c = brute(fake(lockout_after(4)), tmp_path)
    assert c.verdict.value == "PASS" and c.value == "account locked after 4 wrong passwords", c.detail
    assert "the account is locked, not the source" in c.detail and c.metrics["control"]["code"] == 403


def test_silent_pbx_is_an_error(fake: Callable[[Policy], FakePbx], tmp_path: Path) -> None:
    t0 = time.monotonic()
    c = brute(fake(silent), tmp_path)
    assert c.verdict.value == "ERROR" and c.value is None
    assert "the PBX answered none of" in c.detail and "nothing to judge" in c.detail
    assert c.metrics["attempts"] == 0 and time.monotonic() - t0 < 2  # bounded: the right password twice


def test_growing_delays_pass_as_a_throttle(fake: Callable[[Policy], FakePbx], tmp_path: Path) -> None:
    c = brute(fake(throttle(0.05)), tmp_path,
              "- brute_force: {account: caller, attempts: 6, timeout_ms: 3000}")
    assert c.verdict.value == "PASS" and c.value.startswith("slowed x"), c.detail
    ms = c.metrics["wrong_ms"]
    assert ms[-1] > 700 and ms[0] < 50 and c.metrics["added_ms"] >= 100
    assert "answers to wrong passwords went from" in c.detail


def test_one_unanswered_register_is_not_a_ban(fake: Callable[[Policy], FakePbx], tmp_path: Path) -> None:
    c = brute(fake(drop_once(4)), tmp_path)
    assert c.verdict.value == "FAIL" and c.value == "none", c.detail
    assert "#4 no answer within 0.4 s" in c.detail and "#5-8 401" in c.detail
    assert "unanswered REGISTERs in between are not a ban" in c.detail


def test_a_ban_that_lets_the_right_password_in_fails(fake: Callable[[Policy], FakePbx], tmp_path: Path) -> None:
    c = brute(fake(drops_wrong_after(3)), tmp_path)
    assert c.verdict.value == "FAIL" and c.value == "none", c.detail
    assert "#4-5 no answer" in c.detail and "the right password still got in" in c.detail


def test_a_pbx_that_goes_down_is_not_a_ban(fake: Callable[[Policy], FakePbx], tmp_path: Path) -> None:
    c = brute(fake(dies_after(3)), tmp_path)
    assert c.verdict.value == "ERROR", c.detail
    assert "the PBX stopped answering everyone" in c.detail and "control" in c.detail


# ---- toll fraud --------------------------------------------------------------------------------------------
TOLL = "- toll_fraud: {account: caller, timeout_ms: 400}"


def test_toll_fraud_refused_in_every_format_passes(fake: Callable[[Policy], FakePbx], tmp_path: Path) -> None:
    pbx = fake(invite_policy(refuse_external))
    checks = run_steps(pbx, tmp_path, TOLL)
    for name in ("unauthenticated", "open_relay", "authenticated"):
        c = checks[f"security:toll_fraud:{name}"]
        assert c.verdict.value == "PASS" and c.value == "refused", (name, c.detail)
    auth = checks["security:toll_fraud:authenticated"]
    dialled = {f["call"] for f in auth.metrics["formats"]}
    assert dialled == {f"{n}@{REALM}" for n in ("00441632960123", "+441632960123", "011441632960123",
                                                 "900441632960123")}
    assert "407 challenge, then 403 Forbidden" in auth.detail and "403/404/484/488/503/603" in auth.threshold
    invites = [s for s in pbx.seen if s[1] == "INVITE"]
    assert len(invites) <= 4 * 4 + 1  # bounded: formats x (guest, spoofed, challenged + digest) + relay


def test_a_call_kept_without_answer_is_not_refused(fake: Callable[[Policy], FakePbx], tmp_path: Path) -> None:
    t0 = time.monotonic()
    checks = run_steps(fake(invite_policy(trying_forever)), tmp_path, TOLL)
    c = checks["security:toll_fraud:unauthenticated"]
    assert c.verdict.value == "FAIL" and c.value == "not refused", c.detail
    assert "not refused within 0.4 s" in c.detail and "its 487 is no refusal" in c.detail
    assert "7 more calls not probed (an earlier call already took the whole wait: the check has failed)" in c.detail
    assert checks["security:toll_fraud:authenticated"].verdict.value == "FAIL"
    assert time.monotonic() - t0 < 10


def test_every_dial_format_is_probed(fake: Callable[[Policy], FakePbx], tmp_path: Path) -> None:
    checks = run_steps(fake(invite_policy(plus_rings)), tmp_path, TOLL)
    c = checks["security:toll_fraud:authenticated"]
    assert c.verdict.value == "FAIL" and c.value == "routed", c.detail
    kinds = {f["format"]: f["outcome"] for f in c.metrics["formats"]}
    assert kinds == {"00": "refused", "+": "routed", "011": "refused", "9": "refused"}
    assert "+441632960123@fake.test: it rang (407, 100, 180, 487): routed, torn down at once (CANCEL)" in c.detail


def test_refusal_policy_is_the_steps_to_override(fake: Callable[[Policy], FakePbx], tmp_path: Path) -> None:
    pbx = fake(invite_policy(unavailable))
    strict = run_steps(pbx, tmp_path / "a", TOLL)["security:toll_fraud:authenticated"]
    assert strict.verdict.value == "FAIL" and "480 Temporarily Unavailable: not a refusal" in strict.detail
    lenient = run_steps(pbx, tmp_path / "b", "- toll_fraud: {account: caller, timeout_ms: 400, "
                                             "refuse_codes: [403, 404, 480]}")["security:toll_fraud:authenticated"]
    assert lenient.verdict.value == "PASS" and lenient.threshold == "refused (403/404/480)"


def test_toll_fraud_against_silence_is_an_error(fake: Callable[[Policy], FakePbx], tmp_path: Path) -> None:
    checks = run_steps(fake(silent), tmp_path, "- toll_fraud: {account: caller, timeout_ms: 200, formats: ['00']}")
    for c in checks.values():
        assert c.verdict.value == "ERROR" and "no answer at all within" in c.detail, c


# ---- enumeration -------------------------------------------------------------------------------------------
def test_silence_for_made_up_extensions_lets_them_be_enumerated(
        fake: Callable[[Policy], FakePbx], tmp_path: Path) -> None:
    checks = run_steps(fake(drops_unknown_users), tmp_path,
                       "- enumeration: {methods: [REGISTER], users: 3, rounds: 2, timeout_ms: 300}")
    c = checks["security:enumeration:REGISTER"]
    assert c.verdict.value == "FAIL" and c.value == "silence", c.detail
    assert "silence: existing users get an answer (401), missing users get no answer (3 of 3)" in c.detail
    assert "round 2 not run" in c.detail and c.metrics["unanswered"] == 3


def test_the_same_answer_for_everyone_passes(fake: Callable[[Policy], FakePbx], tmp_path: Path) -> None:
    checks = run_steps(fake(register_policy(open_pbx)), tmp_path,
                       "- enumeration: {methods: [REGISTER, REGISTER_AUTH], users: 3, rounds: 2, timeout_ms: 300}")
    for m in ("REGISTER", "REGISTER_AUTH"):
        c = checks[f"security:enumeration:{m}"]
        assert c.verdict.value == "PASS" and c.value == "none", c.detail


def test_a_pbx_that_blocks_the_enumerating_source_passes(fake: Callable[[Policy], FakePbx], tmp_path: Path) -> None:
    checks = run_steps(fake(ban_after(3)), tmp_path,
                       "- enumeration: {methods: [REGISTER_AUTH], users: 3, rounds: 2, timeout_ms: 300}")
    c = checks["security:enumeration:REGISTER_AUTH"]
    assert c.verdict.value == "PASS" and c.value == "blocked" and "it blocks enumeration" in c.detail, c.detail
