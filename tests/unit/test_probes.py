"""Probe machinery from literal SIP text: scope guard, budget, framing, evidence masking, the
svwar-style comparison, header leakage, weak passwords, SDP, malformed probes, dialog helpers."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from harness.contracts.errors import InputError, ProbeBudgetError, ProbeScopeError
from harness.contracts.sdp import parse_sdp
from harness.contracts.sipmsg import SipParseError, parse
from harness.contracts.target import Target
from harness.probes.client import Exchange, Reply
from harness.probes.enumeration import Sample, compare, missing_users, sample_of
from harness.probes.leakage import version_leaks
from harness.probes.malformed import PROBES, Addressing
from harness.probes.passwords import weakness
from harness.probes.probe_evidence import EvidenceLog, mask
from harness.probes.probe_uac import auth_header, route_set, sdp_offer
from harness.probes.readiness import ping_budget
from harness.probes.sanity import date_skew
from harness.probes.scope import PacketBudget, ProbeScope
from harness.probes.timing import percentile, summarize
from harness.probes.transport import split_stream


def target(host: str = "127.0.0.1") -> Target:
    return Target.from_mapping({"name": "t", "pbx": {"host": host, "port": 5060, "domain": "pbx.test"},
                                "accounts": {"caller": {"username": "1001", "password": "s3cret-pw"}}}, "<test>")


CHALLENGE_401 = (
    "SIP/2.0 401 Unauthorized\r\n"
    "Via: SIP/2.0/UDP 127.0.0.1:5555;branch=z9hG4bK1;rport=5555\r\n"
    "From: <sip:{user}@pbx.test>;tag=a\r\nTo: <sip:{user}@pbx.test>;tag={totag}\r\n"
    "Call-ID: {cid}\r\nCSeq: 1 REGISTER\r\n"
    'WWW-Authenticate: Digest realm="pbx.test", nonce="{nonce}", qop="auth"\r\n'
    "Server: harness-lab-pbx\r\nContent-Length: 0\r\n\r\n")
NOT_FOUND_404 = (
    "SIP/2.0 404 User Not Found\r\n"
    "Via: SIP/2.0/UDP 127.0.0.1:5555;branch=z9hG4bK1;rport=5555\r\n"
    "From: <sip:{user}@pbx.test>;tag=a\r\nTo: <sip:{user}@pbx.test>;tag={totag}\r\n"
    "Call-ID: {cid}\r\nCSeq: 1 REGISTER\r\nServer: harness-lab-pbx\r\nContent-Length: 0\r\n\r\n")


def exchange(text: str, ms: float, ref: int = 1, **fmt: str) -> Exchange:
    raw = text.format(**{"user": "1001", "totag": "t" + str(ref), "cid": f"c{ref}", "nonce": f"n{ref}", **fmt})
    ex = Exchange(ref=ref, request=b"REGISTER ...")
    ex.replies.append(Reply(ms, parse(raw.encode()), raw.encode()))
    return ex


# ---- scope and budget -------------------------------------------------------------------------------------
def test_scope_allows_loopback_and_the_target_only() -> None:
    scope = ProbeScope.for_target(target("192.0.2.10"))
    assert scope.check("192.0.2.10") == "192.0.2.10"
    assert scope.check("127.0.0.1") == "127.0.0.1" and scope.check("127.44.0.9") == "127.44.0.9"
    with pytest.raises(ProbeScopeError, match=r"refusing to probe 198\.51\.100\.7"):
        scope.check("198.51.100.7")
    with pytest.raises(ProbeScopeError):
        scope.check("pbx.example.com")  # a name is never a destination: only resolved addresses are
    assert issubclass(ProbeScopeError, InputError)  # exit code 2
    assert not scope.is_loopback and scope.isolated_source() is None


def test_loopback_target_gets_isolated_sources() -> None:
    scope = ProbeScope.for_target(target())
    assert scope.is_loopback
    sources = {scope.isolated_source() for _ in range(20)}
    assert all(s is not None and s.startswith("127.") and s != "127.0.0.1" for s in sources)
    assert len(sources) > 1


def test_unresolvable_target_is_an_input_error(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_dns(*args: object, **kwargs: object) -> None:  # no resolver is asked: tests stay on loopback
        raise socket.gaierror(-2, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", no_dns)
    with pytest.raises(ProbeScopeError, match="does not resolve"):
        ProbeScope.for_target(target("pbx.invalid"))


def test_the_lab_scope_is_its_own_address_and_loopback() -> None:
    for ip in ("127.0.0.1", "10.233.4.2"):
        scope = ProbeScope.for_lab(ip)
        assert scope.check(ip) == ip and scope.check("127.0.0.1") == "127.0.0.1"
        with pytest.raises(ProbeScopeError):
            scope.check("10.233.4.6")  # another lab's address is not this lab
    for bad in ("lab.local", "8.8.8.8"):
        with pytest.raises(ProbeScopeError):
            ProbeScope.for_lab(bad)


def test_a_readiness_ping_is_bounded_by_its_timeout() -> None:
    assert ping_budget(0.3).limit == 7 and ping_budget(2.0).limit == 41 and ping_budget(0.0).limit == 2


def test_budget_refuses_the_packet_past_its_limit() -> None:
    b = PacketBudget(2)
    b.spend()
    b.spend()
    assert b.left == 0
    with pytest.raises(ProbeBudgetError, match="budget of 2"):
        b.spend()


# ---- stream framing -----------------------------------------------------------------------------------------
def test_split_stream_frames_by_content_length() -> None:
    one = b"SIP/2.0 200 OK\r\nCall-ID: a\r\nContent-Length: 4\r\n\r\nbody"
    two = b"SIP/2.0 100 Trying\r\nl: 0\r\n\r\n"
    msg, rest = split_stream(b"\r\n\r\n" + one + two[:10])
    assert msg == one and rest == two[:10]
    assert split_stream(rest) == (None, rest)
    msg, rest = split_stream(two)
    assert msg == two and rest == b""
    assert split_stream(b"SIP/2.0 200 OK\r\nContent-Length: 10\r\n\r\nshort")[0] is None


# ---- evidence -----------------------------------------------------------------------------------------------
def test_mask_hides_passwords_and_digest_responses() -> None:
    text = ('Authorization: Digest username="1001", realm="r", nonce="n1", uri="sip:r", '
            'response="6629fae49393a05397450978507c4ef1", qop=auth, nc=00000001, cnonce="0a4f113b"\r\n'
            "X-Note: the password is s3cret-pw\r\n")
    out = mask(text, ["s3cret-pw"])
    assert "6629fae4" not in out and "0a4f113b" not in out and "s3cret-pw" not in out
    # one masker for all evidence (harness.contracts.siplog): the nonce is masked here as in the SIP logs
    assert 'response="***"' in out and 'nonce="***"' in out and 'username="1001"' in out


def test_mask_hides_srtp_keys() -> None:
    sdp = ("m=audio 4000 RTP/SAVP 0\r\n"
           "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz|2^20|1:4\r\n"
           "a=crypto:2 AES_CM_128_HMAC_SHA1_32 inline:NzB4d1BINUAvLEw6UzF3WSJ+PSdFcGdUJShpX1Zj\r\n"
           "a=key-mgmt:mikey AQAFgM0XflABAAAAAAAAAAAAAAsAyONQ6gAAAAAJAAAAAAA=\r\n")
    out = mask(sdp)
    assert "WVNfX19z" not in out and "NzB4d1BI" not in out and "AQAFgM0X" not in out
    assert "inline:***|2^20|1:4" in out and "a=key-mgmt:mikey ***" in out and "m=audio 4000 RTP/SAVP 0" in out


def test_evidence_log_numbers_exchanges_and_masks(tmp_path: Path) -> None:
    log = EvidenceLog(tmp_path / "ev.txt", secrets=["s3cret-pw"])
    ref = log.tx("udp", ("127.0.0.1", 5555), ("127.0.0.1", 5060), b"REGISTER sip:x SIP/2.0\r\nX: s3cret-pw\r\n\r\n",
                 "first")
    log.rx("udp", ("127.0.0.1", 5060), ("127.0.0.1", 5555), b"SIP/2.0 401 Unauthorized\r\n\r\n", ref)
    big = log.tx("udp", ("127.0.0.1", 5555), ("127.0.0.1", 5060), b"\x00\xff" + b"A" * 10000)
    text = (tmp_path / "ev.txt").read_text()
    assert ref == 1 and big == 2
    assert "=== #1 TX UDP 127.0.0.1:5555 -> 127.0.0.1:5060" in text and "--- #1 RX UDP" in text
    assert "s3cret-pw" not in text and "X: ***" in text
    assert "\\x00" in text and "more bytes not shown, 10002 in all" in text


# ---- enumeration --------------------------------------------------------------------------------------------
def test_identical_answers_do_not_leak() -> None:
    samples = [sample_of(u, u < "5", exchange(CHALLENGE_401, 0.3 + i * 0.01, i, user=u))
               for i, u in enumerate(["1001", "8123", "1002", "8456"])]
    assert compare(samples) == []


def test_code_reason_headers_and_challenge_leaks_are_named() -> None:
    samples = [sample_of("1001", True, exchange(CHALLENGE_401, 0.3, 1)),
               sample_of("1002", True, exchange(CHALLENGE_401, 0.3, 2, user="1002")),
               sample_of("8123", False, exchange(NOT_FOUND_404, 0.3, 3, user="8123")),
               sample_of("8456", False, exchange(NOT_FOUND_404, 0.3, 4, user="8456"))]
    leaks = {lk.signal: lk for lk in compare(samples)}
    assert set(leaks) == {"code", "reason", "headers", "challenge"}
    assert leaks["code"].detail == "code: existing users get 401, missing users get 404"
    assert "www-authenticate" in leaks["headers"].existing


def test_timing_leaks_only_when_groups_separate_by_more_than_the_margin() -> None:
    def group(times: list[float], exists: bool, base: int) -> list:
        return [sample_of(f"u{base + i}", exists, exchange(CHALLENGE_401, t, base + i)) for i, t in enumerate(times)]

    slow_existing = group([12.0, 13.0, 12.5], True, 0) + group([0.4, 0.5, 0.45], False, 10)
    assert [lk.signal for lk in compare(slow_existing, timing_ms=5.0)] == ["timing"]
    overlapping = group([0.4, 9.0, 0.5], True, 0) + group([0.45, 0.6, 8.0], False, 10)
    assert compare(overlapping, timing_ms=5.0) == []
    assert compare(slow_existing, timing_ms=50.0) == []


def silent_sample(user: str, exists: bool, ref: int) -> Sample:
    return sample_of(user, exists, Exchange(ref=ref, request=b"REGISTER ..."))  # no answer came


def test_silence_for_one_group_is_a_leak_and_the_rest_compares_answers() -> None:
    real = [sample_of(u, True, exchange(CHALLENGE_401, 0.3, i, user=u)) for i, u in enumerate(["1001", "1002"])]
    dropped = [silent_sample(u, False, 10 + i) for i, u in enumerate(["8123", "8456"])]
    leaks = compare(real + dropped)
    assert [lk.signal for lk in leaks] == ["silence"]
    assert leaks[0].detail == ("silence: existing users get an answer (401), "
                               "missing users get no answer (2 of 2)")
    # silence the other way round leaks as well
    assert [lk.signal for lk in compare([silent_sample("1001", True, 1), silent_sample("1002", True, 2),
                                         *[sample_of(u, False, exchange(NOT_FOUND_404, 0.3, 5 + i, user=u))
                                           for i, u in enumerate(["8123", "8456"])]])] == ["silence"]


def test_silence_in_both_groups_is_no_leak_and_answers_still_compare() -> None:
    same = [sample_of("1001", True, exchange(CHALLENGE_401, 0.3, 1)), silent_sample("1002", True, 2),
            sample_of("8123", False, exchange(CHALLENGE_401, 0.3, 3, user="8123")), silent_sample("8456", False, 4)]
    assert compare(same) == []
    partly = [sample_of("1001", True, exchange(CHALLENGE_401, 0.3, 1)),
              sample_of("1002", True, exchange(CHALLENGE_401, 0.3, 2, user="1002")),
              sample_of("8123", False, exchange(NOT_FOUND_404, 0.3, 3, user="8123")), silent_sample("8456", False, 4)]
    assert [lk.signal for lk in compare(partly)][:2] == ["code", "reason"]


def test_the_enumeration_step_sets_aside_only_silence_that_hits_both_groups_at_the_end() -> None:
    from harness.scenarios.steps_security_enumeration import blocked_tail

    ans = [sample_of("1001", True, exchange(CHALLENGE_401, 0.3, 1)),
           sample_of("8123", False, exchange(CHALLENGE_401, 0.3, 2, user="8123"))]
    assert blocked_tail([*ans, silent_sample("1002", True, 3), silent_sample("8456", False, 4)]) == 2
    assert blocked_tail([*ans, silent_sample("8456", False, 4)]) == 0
    assert blocked_tail([*ans, silent_sample("1002", True, 3)]) == 0
    assert blocked_tail(ans) == 0


def test_missing_users_look_like_existing_ones_but_are_not_known() -> None:
    users = missing_users(["1001", "1002"], {"1001", "1002", "8000"}, 3)
    assert len(users) == 3 and len(set(users)) == 3
    assert all(u.isdigit() and len(u) == 4 and u not in {"1001", "1002", "8000"} for u in users)


# ---- header leakage, passwords, SDP, clock, percentiles ----------------------------------------------------
def test_version_leaks() -> None:
    leaks = version_leaks([("Server", "Asterisk PBX 16.2.1"), ("User-Agent", "FPBX-15.0.17(16.13.0)"),
                           ("Server", "harness-lab-pbx"), ("Organization", "ACME"), ("Via", "SIP/2.0/UDP 1.2.3.4")])
    assert [(lk.header, lk.product, lk.version, lk.severity) for lk in leaks] == [
        ("Server", "Asterisk", "16.2.1", "medium"), ("User-Agent", "FPBX", "15.0.17", "medium")]
    assert [lk.severity for lk in version_leaks([("Server", "FreeSWITCH")])] == ["low"]


@pytest.mark.parametrize(("user", "password", "why"), [
    ("2001", "2001", "equals the username"), ("2001", "1234", "in the common-password list"),
    ("2001", "20012001", "in the common-password list"), ("2001", "84736251", "only 8 digits"),
    ("2001", "aaaaaaaaaaaa", "repeats one or two characters"), ("2001", "Xy7#q", "shorter than 10 characters"),
    ("2001", "lab-agent1-pw", None)])
def test_weak_passwords(user: str, password: str, why: str | None) -> None:
    assert weakness(user, password) == why


def test_sdp_media_tells_srtp_from_plain() -> None:
    secure = parse_sdp(sdp_offer("127.0.0.1", 4000, srtp=True))
    plain = parse_sdp(sdp_offer("127.0.0.1", 4000))
    assert secure[0].srtp and secure[0].proto == "RTP/SAVP" and secure[0].crypto_suites == ("AES_CM_128_HMAC_SHA1_80",)
    assert not plain[0].srtp and plain[0].port == 4000
    rejected = parse_sdp(b"v=0\r\nm=audio 0 RTP/SAVP 0\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:x\r\n")
    assert not rejected[0].srtp  # port 0: the stream was refused
    assert parse_sdp(b"m=audio notaport RTP/AVP 0\r\n") == []


def test_date_skew_and_percentiles() -> None:
    assert date_skew("Mon, 01 Jan 2024 00:00:05 GMT", 1704067200.0) == 5.0
    assert date_skew("Mon, 01 Jan 2024 00:00:00 GMT", 1704067230.0) == -30.0
    assert date_skew("yesterday", 0.0) is None
    assert percentile([5.0, 1.0, 3.0], 50) == 3.0 and percentile([1.0, 2.0, 3.0, 4.0], 95) == 3.85
    assert percentile([], 50) is None
    assert summarize([2.0, 1.0])["p50_ms"] == 1.5


# ---- malformed probes ---------------------------------------------------------------------------------------
def test_malformed_probes_are_what_they_say() -> None:
    a = Addressing("127.0.0.1", 5555, "UDP", "127.0.0.1", 5060, "pbx.test")
    built = {p.name: p.build(a) for p in PROBES}
    assert len(built) == len(PROBES) >= 10
    assert b"\r\nVia:" not in built["missing_via"] and b"Call-ID" not in built["missing_call_id"]
    assert b"Content-Length: 4294967296" in built["huge_content_length"]
    assert b"Content-Length: -1" in built["negative_content_length"]
    assert 59000 <= len(built["oversized"]) <= 65000
    assert built["via_flood"].count(b"\r\nVia: ") == 201
    assert built["broken_sdp"].startswith(b"INVITE ") and b"999.999.999.999" in built["broken_sdp"]
    with pytest.raises(SipParseError):
        parse(built["bad_header_line"])  # a header line without a colon is malformed, as intended
    tcp = Addressing("127.0.0.1", 5555, "TCP", "127.0.0.1", 5060, "pbx.test", max_datagram=200000)
    assert b"SIP/2.0/TCP 127.0.0.1:5555" in next(p for p in PROBES if p.name == "missing_call_id").build(tcp)


# ---- dialog helpers ---------------------------------------------------------------------------------------
OK_200 = (b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:5555;branch=z9hG4bK1\r\n"
          b"Record-Route: <sip:127.0.0.1:5060;lr;ftag=a>, <sip:10.0.0.1;lr>\r\n"
          b"Record-Route: <sip:10.0.0.2;lr>\r\n"
          b"From: <sip:1001@pbx.test>;tag=a\r\nTo: <sip:2001@pbx.test>;tag=b\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\n"
          b"Contact: <sip:2001@127.0.0.1:40000>\r\nContent-Length: 0\r\n\r\n")


def test_route_set_is_the_record_route_reversed_and_split() -> None:
    assert route_set(parse(OK_200)) == ["<sip:10.0.0.2;lr>", "<sip:10.0.0.1;lr>", "<sip:127.0.0.1:5060;lr;ftag=a>"]


def test_auth_header_pairs_the_challenge_with_the_answer_header() -> None:
    www = parse(CHALLENGE_401.format(user="1", totag="t", cid="c", nonce="n").encode())
    assert auth_header(www) == ("Authorization", 'Digest realm="pbx.test", nonce="n", qop="auth"')
    proxy = parse(b"SIP/2.0 407 Proxy Authentication Required\r\n"
                  b'Proxy-Authenticate: Digest realm="r", nonce="x"\r\n\r\n')
    assert auth_header(proxy) == ("Proxy-Authorization", 'Digest realm="r", nonce="x"')
    assert auth_header(parse(OK_200)) is None and auth_header(None) is None
