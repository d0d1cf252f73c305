"""Reading SIP messages out of pjsua logs, and masking credentials in evidence."""

from __future__ import annotations

from pathlib import Path

from harness.contracts.siplog import mask_credentials, read_messages, write_call_log

LOG = """08:41:49.826           pjsua_core.c  ..UDP media transport created
08:41:49.827           pjsua_core.c  .......TX 420 bytes Request msg INVITE/cseq=2 (tdta0x1) to UDP 127.0.0.1:39060:
INVITE sip:2001@lab.local SIP/2.0
Call-ID: abc@h
CSeq: 2 INVITE
Proxy-Authorization: Digest username="1001", realm="lab.local", nonce="n1", uri="sip:2001@lab.local", \
response="4d27e104bda2050608b47a2ef8c50136", cnonce="brSk4", qop=auth, nc=00000001
Content-Length: 0

--end msg--
08:41:49.900           pjsua_core.c !.RX 300 bytes Response msg 200/INVITE/cseq=2 (rdata0x2) from UDP 127.0.0.1:39060:
SIP/2.0 200 OK
i: abc@h
CSeq: 2 INVITE

--end msg--
08:41:50.000           pjsua_core.c  .TX 200 bytes Request msg OPTIONS/cseq=9 (tdta0x3) to UDP 127.0.0.1:39060:
OPTIONS sip:x SIP/2.0
Call-ID: other@h

--end msg--
"""


def test_read_messages_and_mask(tmp_path: Path) -> None:
    log = tmp_path / "caller.sip.log"
    log.write_text(LOG)
    msgs = read_messages(log, "caller")
    assert [m.direction for m in msgs] == ["TX", "RX", "TX"]
    assert msgs[0].first_line == "INVITE sip:2001@lab.local SIP/2.0" and msgs[0].call_id == "abc@h"
    assert msgs[1].call_id == "abc@h" and msgs[1].summary == "200/INVITE/cseq=2"
    assert "4d27e104" not in msgs[0].text and 'response="***"' in msgs[0].text and 'username="1001"' in msgs[0].text
    dest = tmp_path / "sip-main.log"
    assert write_call_log(msgs, {"abc@h"}, dest) == 2
    assert "OPTIONS" not in dest.read_text()


def test_mask_keeps_who_and_where_but_no_secret() -> None:
    text = ('WWW-Authenticate: Digest realm="r", nonce="n1234"\nAuthorization: Digest username="u", response=abc, '
            'cnonce=xyz\nVia: SIP/2.0/UDP h;branch=z9hG4bKresponse=1\na=crypto:1 AES_CM_128 inline:SECRETKEY|2^20')
    masked = mask_credentials(text)
    assert 'realm="r"' in masked and 'username="u"' in masked and "branch=z9hG4bKresponse=1" in masked
    for secret in ("n1234", "abc", "xyz", "SECRETKEY"):
        assert secret not in masked
