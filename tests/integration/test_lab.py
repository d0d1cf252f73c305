"""The lab PBX through the CLI: up, status, down; a dead or missing component is reported clearly."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

_BASE = int(os.environ.get("HARNESS_TEST_PORT_BASE", "36000")) + 1000
SIP_PORT = _BASE + 60
ENV_PORTS = {"HARNESS_LAB_SIP_PORT": str(SIP_PORT), "HARNESS_LAB_NG_PORT": str(_BASE + 222),
             "HARNESS_LAB_RTP_MIN": str(_BASE + 300), "HARNESS_LAB_RTP_MAX": str(_BASE + 399)}


def harness(home: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, **ENV_PORTS, **(env or {})}
    return subprocess.run([sys.executable, "-m", "harness", "--home", str(home), *args], capture_output=True,
                          text=True, timeout=60, env=full_env)


def test_lab_up_status_down(tmp_path: Path) -> None:
    up = harness(tmp_path, "lab", "up")
    try:
        assert up.returncode == 0, up.stderr
        assert f"lab up: SIP 127.0.0.1:{SIP_PORT}/udp" in up.stdout
        again = harness(tmp_path, "lab", "up")
        assert again.returncode == 0 and "already running" in again.stdout
        st = harness(tmp_path, "lab", "status", "--json")
        assert st.returncode == 0, st.stdout + st.stderr
        data = json.loads(st.stdout)
        assert data["up"] is True
        assert {c["name"]: c["ready"] for c in data["components"]} == {"rtpengine": True, "kamailio": True,
                                                                       "services": True}
        assert any(a["name"] == "agent1" and a["aor"] == "sip:2001@lab.local" for a in data["accounts"])
        assert "password" not in st.stdout and "lab-agent1-pw" not in st.stdout
        text = harness(tmp_path, "lab", "status")
        assert "kamailio" in text.stdout and "ready" in text.stdout
    finally:
        down = harness(tmp_path, "lab", "down")
    assert down.returncode == 0 and "lab down" in down.stdout
    st = harness(tmp_path, "lab", "status")
    assert st.returncode == 1 and "DOWN" in st.stdout


def test_crashed_component_is_reported(tmp_path: Path) -> None:
    assert harness(tmp_path, "lab", "up").returncode == 0
    try:
        state = json.loads((tmp_path / "lab" / "state.json").read_text())
        os.kill(state["pids"]["rtpengine"], signal.SIGKILL)
        time.sleep(0.2)
        st = harness(tmp_path, "lab", "status")
        assert st.returncode == 1
        assert "rtpengine" in st.stdout and "not running" in st.stdout and "it died; log:" in st.stdout
    finally:
        assert harness(tmp_path, "lab", "down").returncode == 0


def test_missing_binary_is_a_clear_error(tmp_path: Path) -> None:
    res = harness(tmp_path, "lab", "up", env={"PATH": str(tmp_path)})
    assert res.returncode == 3  # the lab did not start: the harness failed, not a PBX
    assert "'rtpengine' is not installed" in res.stderr
    assert "Traceback" not in res.stderr


def test_port_in_use_is_a_clear_error(tmp_path: Path) -> None:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", SIP_PORT))
        res = harness(tmp_path, "lab", "up")
    assert res.returncode == 3
    assert f"127.0.0.1:{SIP_PORT} is in use" in res.stderr
    assert "Traceback" not in res.stderr
