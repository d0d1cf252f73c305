"""The real rtpengine records a call (recording-method pcap, format eth) and the pcap comes back as WAVs.

Starts its own rtpengine on 127.0.0.1 (ports in 45000-45999, a temporary recording dir), drives
offer/answer/delete over the ng protocol, relays 3 s of RTP each way (with RTCP and a DTMF event),
then converts the recording with ``recording_to_wavs``.
"""

from __future__ import annotations

import contextlib
import secrets
import shutil
import socket
import struct
import subprocess
import time
import wave
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from harness.audio.codecs import alaw_encode, ulaw_encode
from harness.lab.recording import find_recordings, read_recording, recording_to_wavs

pytestmark = pytest.mark.integration

HOST = "127.0.0.1"
RATE, FRAME, SECONDS = 8000, 160, 3.0
PORTS = range(45000, 46000)


# ------------------------------------------------------------------------------- ng protocol (bencode)


def bencode(o: Any) -> bytes:
    if isinstance(o, int):
        return b"i%de" % o
    if isinstance(o, str):
        o = o.encode()
    if isinstance(o, bytes):
        return b"%d:%s" % (len(o), o)
    if isinstance(o, list):
        return b"l" + b"".join(bencode(x) for x in o) + b"e"
    if isinstance(o, dict):
        return b"d" + b"".join(bencode(k) + bencode(v) for k, v in sorted(o.items())) + b"e"
    raise TypeError(type(o))


def bdecode(b: bytes, i: int = 0) -> tuple[Any, int]:
    c = b[i : i + 1]
    if c == b"i":
        j = b.index(b"e", i)
        return int(b[i + 1 : j]), j + 1
    if c in (b"l", b"d"):
        i += 1
        items = []
        while b[i : i + 1] != b"e":
            v, i = bdecode(b, i)
            items.append(v)
        if c == b"l":
            return items, i + 1
        return {k.decode(): v for k, v in zip(items[::2], items[1::2], strict=True)}, i + 1
    j = b.index(b":", i)
    n = int(b[i:j])
    return b[j + 1 : j + 1 + n], j + 1 + n


@dataclass
class Rtpengine:
    ng_port: int
    rec_dir: Path
    log: Path
    ports: set[int]  #: UDP ports it owns (ng and the RTP range)

    def command(self, **args: Any) -> dict[str, Any]:
        cookie = secrets.token_hex(4).encode()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(2.0)
            s.sendto(cookie + b" " + bencode(args), (HOST, self.ng_port))
            data, _ = s.recvfrom(65535)
        got_cookie, _, body = data.partition(b" ")
        assert got_cookie == cookie
        reply: dict[str, Any] = bdecode(body)[0]
        assert reply.get("result") in (b"ok", b"pong"), f"rtpengine refused {args['command']}: {reply}"
        return reply


# ------------------------------------------------------------------------------------------- ports


def _udp_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.bind((HOST, port))
        except OSError:
            return False
    return True


def _free_port(avoid: set[int]) -> int:
    for port in PORTS:
        if port not in avoid and _udp_free(port):
            avoid.add(port)
            return port
    pytest.fail("no free UDP port in 45000-45999")


def _free_block(size: int, avoid: set[int]) -> int:
    for start in range(PORTS.stop - size, PORTS.start, -size):  # from the top, away from _free_port's picks
        block = set(range(start, start + size))
        if not block & avoid and all(_udp_free(p) for p in block):
            avoid |= block
            return start
    pytest.fail(f"no {size} free UDP ports in a row in 45000-45999")


@pytest.fixture
def rtpengine(tmp_path: Path) -> Iterator[Rtpengine]:
    binary = shutil.which("rtpengine")
    if binary is None:
        pytest.skip("rtpengine binary not found (Debian package rtpengine-daemon)")
    used: set[int] = set()
    rtp_min = _free_block(40, used)
    ng_port = _free_port(used)
    rec_dir = tmp_path / "rec"
    rec_dir.mkdir()
    log = tmp_path / "rtpengine.log"
    argv = [
        binary, "--config-file=none", "--table=-1", f"--interface={HOST}", f"--listen-ng={HOST}:{ng_port}",
        f"--port-min={rtp_min}", f"--port-max={rtp_min + 39}", "--foreground", "--log-stderr",
        f"--recording-dir={rec_dir}", "--recording-method=pcap", "--recording-format=eth", "--delete-delay=0",
    ]  # fmt: skip
    with log.open("wb") as log_fh:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log_fh, stderr=subprocess.STDOUT)
    try:
        engine = Rtpengine(ng_port, rec_dir, log, used)
        deadline = time.monotonic() + 5.0
        while True:
            if proc.poll() is not None:
                pytest.fail(
                    f"rtpengine exited with {proc.returncode}:\n{log.read_text(errors='replace')[-2000:]}"
                )
            try:
                engine.command(command="ping")
                break
            except (TimeoutError, ConnectionRefusedError):
                if time.monotonic() > deadline:
                    pytest.fail(f"rtpengine did not answer ping:\n{log.read_text(errors='replace')[-2000:]}")
                time.sleep(0.05)
        yield engine
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


# ------------------------------------------------------------------------------------------ the call


def _sdp(port: int, session: int) -> str:
    return (
        f"v=0\r\no=- {session} 1 IN IP4 {HOST}\r\ns=-\r\nc=IN IP4 {HOST}\r\nt=0 0\r\n"
        f"m=audio {port} RTP/AVP 0 8 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n"
        "a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\na=sendrecv\r\n"
    )


def _media_port(sdp: bytes) -> int:
    for line in sdp.decode().splitlines():
        if line.startswith("m=audio "):
            return int(line.split()[1])
    raise AssertionError(f"no audio m-line in {sdp!r}")


def _tone(freq: float) -> np.ndarray:
    return 8000.0 * np.sin(2 * np.pi * freq * np.arange(int(SECONDS * RATE)) / RATE)


def _read_wav(path: Path) -> np.ndarray:
    with wave.open(str(path), "rb") as w:
        assert (w.getframerate(), w.getsampwidth()) == (RATE, 2)
        x = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
        return x.reshape(-1, w.getnchannels())


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    n = min(len(a), len(b))
    return float(np.corrcoef(np.asarray(a[:n], float), np.asarray(b[:n], float))[0, 1])


def _dominant_hz(x: np.ndarray) -> float:
    spec = np.abs(np.fft.rfft(np.asarray(x, float) * np.hanning(len(x))))
    return float(np.argmax(spec) * RATE / len(x))


def test_rtpengine_pcap_recording_to_wavs(rtpengine: Rtpengine, tmp_path: Path) -> None:
    used = set(rtpengine.ports)
    a_port = _free_port(used)
    used.add(a_port + 1)  # its RTCP port
    b_port = _free_port(used)
    call_id = f"itest-{secrets.token_hex(4)}@harness.invalid"
    with contextlib.ExitStack() as stack:
        a = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
        b = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
        a.bind((HOST, a_port))
        b.bind((HOST, b_port))
        a.setblocking(False)
        b.setblocking(False)

        offer = rtpengine.command(
            command="offer", **{"call-id": call_id, "from-tag": "caller-tag", "record call": "yes"},
            sdp=_sdp(a_port, 1), metadata="scenario=itest",
        )  # fmt: skip
        assert offer["recordings"], offer
        to_callee = _media_port(offer["sdp"])  # where B sends
        answer = rtpengine.command(
            command="answer", **{"call-id": call_id, "from-tag": "caller-tag", "to-tag": "callee-tag"},
            sdp=_sdp(b_port, 2),
        )  # fmt: skip
        to_caller = _media_port(answer["sdp"])  # where A sends

        sig_a, sig_b = _tone(440), _tone(1000)
        pay_a, pay_b = ulaw_encode(sig_a).tobytes(), alaw_encode(sig_b).tobytes()
        frames = len(pay_a) // FRAME
        received = {"a": 0, "b": 0}
        b_lag = 10  # B starts talking 0.2 s after A
        t0 = time.monotonic()
        for i in range(frames + b_lag):
            if i < frames:
                if 70 <= i < 75:  # DTMF '1' instead of audio, sharing the sequence numbers (RFC 4733)
                    k = i - 70
                    body = struct.pack("!BBH", 1, 10 | (0x80 if k == 4 else 0), (k + 1) * FRAME)
                    head = struct.pack(
                        "!BBHII", 0x80, 101 | (0x80 if k == 0 else 0), 100 + i, 70 * FRAME, 0xA11CE
                    )
                else:
                    body = pay_a[i * FRAME : (i + 1) * FRAME]
                    head = struct.pack("!BBHII", 0x80, 0, 100 + i, i * FRAME, 0xA11CE)
                a.sendto(head + body, (HOST, to_caller))
                if i % 50 == 0:  # an RTCP receiver report to the RTCP port
                    rr = struct.pack("!BBHI", 0x80, 201, 1, 0xA11CE)
                    a.sendto(rr, (HOST, to_caller + 1))
            if i >= b_lag:
                j = i - b_lag
                head = struct.pack(
                    "!BBHII", 0x80, 8, (65000 + j) & 0xFFFF, (4_294_960_000 + j * FRAME) & 0xFFFFFFFF, 0xB0B
                )
                b.sendto(head + pay_b[j * FRAME : (j + 1) * FRAME], (HOST, to_callee))
            time.sleep(max(0.0, t0 + (i + 1) * 0.02 - time.monotonic()))
            for name, sock in (("a", a), ("b", b)):
                with contextlib.suppress(BlockingIOError):
                    while sock.recv(2048):
                        received[name] += 1
        rtpengine.command(command="delete", **{"call-id": call_id, "from-tag": "caller-tag"})

    # rtpengine relayed the media both ways
    assert received["b"] >= frames * 0.9 and received["a"] >= frames * 0.9, received
    # the metadata file moves from tmp/ to metadata/ once the call is gone; the pcap is complete then
    deadline = time.monotonic() + 5.0
    while not list((rtpengine.rec_dir / "metadata").glob("*.txt")) and time.monotonic() < deadline:
        time.sleep(0.05)

    pcaps = find_recordings(rtpengine.rec_dir, call_id=call_id)
    assert len(pcaps) == 1, list((rtpengine.rec_dir / "pcaps").iterdir())
    rec = read_recording(pcaps[0])
    assert rec.truncated is None and rec.metadata is not None and rec.metadata.complete
    assert rec.metadata.extra == "scenario=itest"
    assert len(rec.streams) == 2  # rtpengine 10.5 records what it receives: one stream per direction
    assert rec.streams[0].payload_types == {0: frames - 5, 101: 5}

    wavs = recording_to_wavs(pcaps[0], tmp_path / "wav", stem="call")
    assert wavs.call_id == call_id and not wavs.truncated
    d1, d2 = wavs.directions
    assert (d1.role, d1.src, d1.dst, d1.codec) == ("caller", (HOST, a_port), (HOST, to_caller), "PCMU")
    assert (d2.role, d2.src, d2.dst, d2.codec) == ("callee", (HOST, b_port), (HOST, to_callee), "PCMA")
    assert d1.lost == d2.lost == 0
    assert wavs.durations == pytest.approx((SECONDS, SECONDS), abs=0.001)
    assert d2.start_s == pytest.approx(0.2, abs=0.03)

    x1, x2 = _read_wav(wavs.dir1)[:, 0], _read_wav(wavs.dir2)[:, 0]
    ref_a = sig_a.copy()
    ref_a[70 * FRAME : 75 * FRAME] = 0  # the DTMF event is silence, not audio
    assert not x1[70 * FRAME : 75 * FRAME].any()
    assert _corr(x1, ref_a) > 0.99 and _dominant_hz(x1) == pytest.approx(440, abs=2)
    assert _corr(x2, sig_b) > 0.99 and _dominant_hz(x2) == pytest.approx(1000, abs=2)
    mix = _read_wav(wavs.mix)
    assert mix.shape[1] == 2
    assert _dominant_hz(mix[:, 0]) == pytest.approx(440, abs=2)
    assert _dominant_hz(mix[:, 1]) == pytest.approx(1000, abs=2)
