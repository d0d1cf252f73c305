"""SIP messages in the report: parsed from literal pjsua log text, credentials masked, the ladder merged
from both parties' logs, and everything a SIP peer controls escaped in the HTML."""

from __future__ import annotations

import json
import re
from pathlib import Path

from harness.contracts.siplog import mask_credentials
from harness.report.ladder import SipLog, build_flow, ladder_html, party_log
from harness.report.markup import Markup, el
from harness.report.render import render_report

from .test_report_render import T0, make_run

EVIL_NAME = '"<script>window.__pwned=1</script>"'
EVIL_UA = '<img src=x onerror="window.__pwned=2">'
SECRET_RESPONSE = "4f115a6c631a9525048be33a4b211481"
SECRET_NONCE = "awvkI2sL4vcBYI1SxsuSpiENr0TuGpGG"
SRTP_KEY = "WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz"


def parse_sip_log(text: str, party: str, where: Path) -> SipLog:
    path = where / f"{party}.sip.log"
    path.write_text(text)
    return party_log(path, party)


def _msg(head: str, lines: list[str]) -> str:
    return head + "\n" + "\r\n".join(lines) + "\r\n\r\n--end msg--\n"


CALLER_LOG = (
    "08:31:51.452           pjsua_core.c  SIP UDP socket reachable at 127.0.0.1:32916\n"
    "08:31:51.452      udp0x55b50be5a350  SIP UDP transport started, published address is 127.0.0.1:32916\n"
    + _msg("08:31:51.477           pjsua_core.c  ....TX 959 bytes Request msg INVITE/cseq=37 (tdta0x1) to UDP "
           "127.0.0.1:5060:",
           ["INVITE sip:2001@lab.local SIP/2.0", "Via: SIP/2.0/UDP 127.0.0.1:32916;branch=z9hG4bK1",
            f"From: {EVIL_NAME} <sip:1001@lab.local>;tag=a1", "To: <sip:2001@lab.local>", "Call-ID: call-1",
            "CSeq: 37 INVITE", f"User-Agent: {EVIL_UA}", "Content-Type: application/sdp", "Content-Length: 60", "",
            "v=0", f"a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{SRTP_KEY}|2^20|1:32"])
    + _msg("08:31:51.478           pjsua_core.c  .RX 496 bytes Response msg 407/INVITE/cseq=37 (rdata0x1) from UDP "
           "127.0.0.1:5060:",
           ["SIP/2.0 407 Proxy Authentication Required", "Call-ID: call-1", "CSeq: 37 INVITE",
            f'Proxy-Authenticate: Digest realm="lab.local", nonce="{SECRET_NONCE}", qop="auth"',
            "Server: <b>pbx</b>", "Content-Length: 0"])
    + _msg("08:31:51.479           pjsua_core.c !.......TX 1201 bytes Request msg INVITE/cseq=38 (tdta0x1) to UDP "
           "127.0.0.1:5060:",
           ["INVITE sip:2001@lab.local SIP/2.0", "Call-ID: call-1", "CSeq: 38 INVITE",
            f'Proxy-Authorization: Digest username="1001", realm="lab.local", nonce="{SECRET_NONCE}", '
            f'uri="sip:2001@lab.local", response="{SECRET_RESPONSE}", cnonce="c0ffee", qop=auth, nc=00000001',
            "Content-Length: 0"])
    + _msg("08:31:51.485           pjsua_core.c  .RX 983 bytes Response msg 200/INVITE/cseq=38 (rdata0x1) from UDP "
           "127.0.0.1:5060:",
           ["SIP/2.0 200 OK", "Call-ID: call-1", "CSeq: 38 INVITE", "Content-Type: application/sdp",
            "Content-Length: 10", "", "v=0"])
    + "08:31:51.486            pjsua_acc.c  ....something else pjsua says\n"
)

AGENT_LOG = (
    "08:31:51.452      udp0x1  SIP UDP transport started, published address is 127.0.0.1:33302\n"
    + _msg("08:31:51.482           pjsua_core.c  .RX 1109 bytes Request msg INVITE/cseq=38 (rdata0x2) from UDP "
           "127.0.0.1:5060:",
           ["INVITE sip:2001@127.0.0.1:33302 SIP/2.0", "Call-ID: call-1", "CSeq: 38 INVITE", "Content-Length: 0"])
    + _msg("08:31:51.483           pjsua_core.c  ......TX 1107 bytes Response msg 200/INVITE/cseq=38 (tdta0x2) to UDP "
           "127.0.0.1:5060:",
           ["SIP/2.0 200 OK", "Call-ID: call-1", "CSeq: 38 INVITE", "Content-Length: 0"])
    # a message straight from the caller party (no proxy): the caller's log would have it as TX
    + _msg("08:31:53.000           pjsua_core.c  .RX 300 bytes Request msg OPTIONS/cseq=1 (rdata0x2) from UDP "
           "127.0.0.1:32916:",
           ["OPTIONS sip:2001@127.0.0.1:33302 SIP/2.0", "Call-ID: opt-1", "CSeq: 1 OPTIONS", "Content-Length: 0"])
)


def test_pjsua_log_is_parsed_into_messages(tmp_path: Path) -> None:
    log = parse_sip_log(CALLER_LOG, "caller", tmp_path)
    assert log.local == "127.0.0.1:32916"
    assert [(e.direction, e.label) for e in log.events] == [
        ("TX", "INVITE"), ("RX", "407 Proxy Authentication Required"), ("TX", "INVITE"), ("RX", "200 OK")]
    first = log.events[0]
    assert first.remote == "127.0.0.1:5060" and first.transport == "UDP" and first.call_id == "call-1"
    assert first.has_sdp and not log.events[1].has_sdp and log.events[3].has_sdp
    assert first.clock == "08:31:51.477" and abs(first.t - (8 * 3600 + 31 * 60 + 51.477)) < 1e-6
    assert log.events[3].method == "INVITE" and log.events[3].status == 200


def test_credentials_and_srtp_keys_are_masked(tmp_path: Path) -> None:
    text = "\n".join(e.text for e in parse_sip_log(CALLER_LOG, "caller", tmp_path).events)
    for secret in (SECRET_RESPONSE, SECRET_NONCE, "c0ffee", SRTP_KEY):
        assert secret not in text
    assert 'response="***"' in text and 'nonce="***"' in text and "inline:***|2^20" in text
    assert 'username="1001"' in text and 'realm="lab.local"' in text  # not secret: kept for diagnosis
    assert mask_credentials("Authorization: Basic dXNlcjpwYXNz\r\n") == "Authorization: Basic ***\r\n"
    assert mask_credentials("a=key-mgmt:mikey AQAFgM0XflABAAAA") == "a=key-mgmt:mikey ***"
    assert mask_credentials("Subject: nonce=\"keep me\"") == 'Subject: nonce="keep me"'  # other headers untouched


def test_midnight_is_unwrapped(tmp_path: Path) -> None:
    text = (_msg("23:59:59.900  pjsua_core.c  TX 10 bytes Request msg BYE/cseq=2 (t) to UDP 127.0.0.1:5060:",
                 ["BYE sip:x SIP/2.0", "Call-ID: c", "CSeq: 2 BYE"])
            + _msg("00:00:00.100  pjsua_core.c  RX 10 bytes Response msg 200/BYE/cseq=2 (r) from UDP 127.0.0.1:5060:",
                   ["SIP/2.0 200 OK", "Call-ID: c", "CSeq: 2 BYE"]))
    a, b = parse_sip_log(text, "p", tmp_path).events
    assert abs((b.t - a.t) - 0.2) < 1e-6


def test_unreadable_message_does_not_stop_the_log(tmp_path: Path) -> None:
    text = (_msg("08:00:00.000  pjsua_core.c  RX 5 bytes Request msg ??/cseq=0 (r) from UDP 127.0.0.1:5060:",
                 ["\x00\x01 garbage"])
            + _msg("08:00:01.000  pjsua_core.c  TX 10 bytes Request msg BYE/cseq=2 (t) to UDP 127.0.0.1:5060:",
                   ["BYE sip:x SIP/2.0", "Call-ID: c", "CSeq: 2 BYE"]))
    events = parse_sip_log(text, "p", tmp_path).events
    assert [e.label for e in events][1] == "BYE" and len(events) == 2


def test_ladder_merges_parties_through_the_pbx(tmp_path: Path) -> None:
    logs = [parse_sip_log(CALLER_LOG, "caller", tmp_path), parse_sip_log(AGENT_LOG, "agent", tmp_path)]
    flow = build_flow(logs, "127.0.0.1:5060")
    assert flow.nodes == ["caller", "127.0.0.1:5060", "agent"]
    assert flow.titles["127.0.0.1:5060"][0] == "PBX (target)"
    got = [(a.src, a.dst, a.event.label) for a in flow.arrows]
    assert got == [("caller", "127.0.0.1:5060", "INVITE"),
                   ("127.0.0.1:5060", "caller", "407 Proxy Authentication Required"),
                   ("caller", "127.0.0.1:5060", "INVITE"),
                   ("127.0.0.1:5060", "agent", "INVITE"),
                   ("agent", "127.0.0.1:5060", "200 OK"),
                   ("127.0.0.1:5060", "caller", "200 OK"),
                   # straight from the caller party: kept from the receiver's log, as the sender did not log it
                   ("caller", "agent", "OPTIONS")]
    html = ladder_html(flow, "sc-1")
    assert html.count('class="msg"') == 7 and 'href="#sc-1-m0"' in html and 'id="sc-1-m6"' in html


def test_ladder_keeps_one_copy_of_party_to_party_messages(tmp_path: Path) -> None:
    caller = CALLER_LOG + _msg(
        "08:31:53.000  pjsua_core.c  TX 300 bytes Request msg OPTIONS/cseq=1 (t) to UDP 127.0.0.1:33302:",
        ["OPTIONS sip:2001@127.0.0.1:33302 SIP/2.0", "Call-ID: opt-1", "CSeq: 1 OPTIONS"])
    flow = build_flow([parse_sip_log(caller, "caller", tmp_path), parse_sip_log(AGENT_LOG, "agent", tmp_path)])
    options = [a for a in flow.arrows if a.event.label == "OPTIONS"]
    assert [(a.src, a.dst) for a in options] == [("caller", "agent")]
    assert re.search(r"⋮ 1\.5\d s later", ladder_html(flow, "x"))  # the pause before it is marked


def test_markup_escapes_text_and_attributes() -> None:
    assert el("td", "<script>", title='"x"') == '<td title="&quot;x&quot;">&lt;script&gt;</td>'
    assert el("p", Markup("<b>ok</b>"), "&") == "<p><b>ok</b>&amp;</p>"
    assert el("a", href="#x", data_msg="m1", hidden=True, skip=None) == '<a href="#x" data-msg="m1" hidden></a>'


def test_html_injection_through_sip_headers_is_escaped(tmp_path: Path) -> None:
    run = make_run(tmp_path, "run", T0)
    sdir = run / "connect"
    (sdir / "caller.sip.log").write_text(CALLER_LOG)
    (sdir / "agent.sip.log").write_text(AGENT_LOG)
    data = json.loads((run / "results.json").read_text())
    sc = data["scenarios"][0]
    sc["artifacts"].update({"sip_log:caller": "caller.sip.log", "sip_log:agent": "agent.sip.log",
                            "sip_log:evil": "../../../etc/passwd"})
    # what a PBX can also put into results: a reason phrase in a check detail, an error message
    sc["checks"][0]["detail"] = "403 <script>window.__pwned=3</script>"
    sc["error"] = {"step": "call", "message": "</pre><svg onload=alert(4)>", "log_tail": "<iframe src=//x>"}
    (run / "results.json").write_text(json.dumps(data))

    html = render_report(run).html

    # the only script element is ours, and nothing from the SIP messages became markup
    assert len(re.findall(r"<script", html, re.IGNORECASE)) == 1
    for raw in ("<script>window.__pwned", "<img src=x", "<b>pbx</b>", "<svg onload", "<iframe"):
        assert raw not in html, raw
    for escaped in ("&quot;&lt;script&gt;window.__pwned=1&lt;/script&gt;&quot;",  # display name, in the message
                    "&lt;img src=x onerror=&quot;window.__pwned=2&quot;&gt;",  # User-Agent, in the column head
                    "&lt;b&gt;pbx&lt;/b&gt;", "403 &lt;script&gt;window.__pwned=3&lt;/script&gt;",
                    "&lt;/pre&gt;&lt;svg onload=alert(4)&gt;", "&lt;iframe src=//x&gt;"):
        assert escaped in html, escaped
    for secret in (SECRET_RESPONSE, SECRET_NONCE, SRTP_KEY):
        assert secret not in html
    assert "root:" not in html  # a path in artifacts cannot pull another file in
    assert html.count('class="msg"') == 7  # the ladder was drawn (6 via the PBX + the direct OPTIONS)
