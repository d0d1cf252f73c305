"""The lab's config survives state.json: a hardened lab is still hardened (with its CA, TLS port and SRTP
policy) for the commands that come after ``harness lab up --hardened``; an older state.json (no
``hardened``) is a plain lab, and a corrupt one is ignored with a warning, never a crash. No processes, no
sockets: a state file naming pids that do not exist."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from harness.cli import cli
from harness.contracts.target import Target
from harness.lab import LabConfig, LabStack
from harness.lab.config import lab_profile_mapping, lab_target
from harness.probes.probe_session import default_port

HARD = LabConfig(sip_port=37060, ng_port=37222, rtp_min=37300, rtp_max=37899, hardened=True)
DEAD_PIDS = {"rtpengine": 2**22 + 11, "kamailio": 2**22 + 12, "services": 2**22 + 13}  # beyond pid_max


def write_state(lab_dir: Path, state: Any) -> None:
    lab_dir.mkdir(parents=True, exist_ok=True)
    (lab_dir / "state.json").write_text(state if isinstance(state, str) else json.dumps(state))


def old_state(cfg: LabConfig) -> dict[str, Any]:
    """state.json as the version before this change wrote it: no ``hardened`` field."""
    config = cfg.as_dict()
    del config["hardened"]
    return {"config": config, "pids": DEAD_PIDS, "started_at": 1.5e9}


@pytest.mark.parametrize("cfg", [LabConfig(), HARD, LabConfig(record=False),
                                 LabConfig(ip="10.233.0.2", netns=True, hardened=True)])
def test_config_round_trips_through_its_dict(cfg: LabConfig) -> None:
    assert cfg.as_dict()["hardened"] is cfg.hardened
    assert LabConfig.from_dict(json.loads(json.dumps(cfg.as_dict()))) == cfg


def test_hardened_lab_stays_hardened_through_state_json(tmp_path: Path) -> None:
    started = LabStack(tmp_path / "lab", HARD)
    started.dir.mkdir()
    started.pids = dict(DEAD_PIDS)
    started._write_state()  # what start() writes as each component comes up
    assert json.loads((tmp_path / "lab" / "state.json").read_text())["config"]["hardened"] is True

    later = LabStack(tmp_path / "lab")  # a later command: no config given, it reads the state
    assert later.config == HARD and later.pids == DEAD_PIDS and later.state_error is None
    t = later.target
    assert t.tls_ca_file == str(tmp_path / "lab" / "cert.pem")
    assert t.tls_port == HARD.sip_port + 1 and t.srtp == "offered"
    assert default_port(t, "tls") == HARD.sip_port + 1 and default_port(t, "tcp") == HARD.sip_port
    sec = later.status().as_dict()["security"]
    assert sec == {"hardened": True, "transports": ["udp", "tcp", "tls"], "tls_port": HARD.sip_port + 1,
                   "tls_ca_file": str(tmp_path / "lab" / "cert.pem"), "srtp": "offered"}


def test_state_from_an_older_version_is_a_plain_lab(tmp_path: Path) -> None:
    write_state(tmp_path / "lab", old_state(HARD))
    stack = LabStack(tmp_path / "lab")
    assert stack.state_error is None
    assert stack.config == LabConfig(sip_port=37060, ng_port=37222, rtp_min=37300, rtp_max=37899)
    assert stack.pids == DEAD_PIDS and stack.started_at == 1.5e9  # 'harness lab down' still finds its processes
    assert stack.target.tls_ca_file is None and stack.target.srtp is None


@pytest.mark.parametrize(("state", "why"), [
    ('{"config": {"ip": "127.0', "not JSON"),
    ("\udcff".encode("utf-8", "surrogateescape").decode("latin-1"), "not JSON"),
    ("[1, 2]", "not a JSON object"),
    ({"pids": DEAD_PIDS}, "must be a mapping"),
    ({"config": {**HARD.as_dict(), "tls": True}, "pids": {}}, "unknown lab config field(s): tls"),
    ({"config": {**HARD.as_dict(), "sip_port": "37060"}, "pids": {}}, "sip_port='37060' is not int"),
    ({"config": {**HARD.as_dict(), "hardened": "yes"}, "pids": {}}, "hardened='yes' is not bool"),
    ({"config": {**HARD.as_dict(), "sip_port": True}, "pids": {}}, "sip_port=True is not int"),
    ({"config": {**HARD.as_dict(), "ip": "10.1.2.3"}, "pids": {}}, "not a loopback address"),
    ({"config": {**HARD.as_dict(), "rtp_min": 37890}, "pids": {}}, "too small"),
    ({"config": HARD.as_dict(), "pids": [1, 2]}, "pids must map"),
    ({"config": HARD.as_dict(), "pids": {"kamailio": "12"}}, "pids must map"),
    ({"config": HARD.as_dict(), "pids": {}, "started_at": "yesterday"}, "started_at must be a time"),
])
def test_corrupt_state_is_ignored_with_a_reason(tmp_path: Path, state: Any, why: str,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("HARNESS_LAB_IP", "HARNESS_LAB_SIP_PORT", "HARNESS_LAB_HARDENED", "HARNESS_LAB_NETNS"):
        monkeypatch.delenv(var, raising=False)
    write_state(tmp_path / "lab", state)
    stack = LabStack(tmp_path / "lab")
    assert stack.pids == {} and stack.started_at is None
    assert stack.config == LabConfig()  # the environment's (defaults), as if there were no state
    assert stack.state_error is not None and why in stack.state_error and "state.json" in stack.state_error


def test_unreadable_state_path_is_ignored(tmp_path: Path) -> None:
    (tmp_path / "lab" / "state.json").mkdir(parents=True)  # a directory where the file should be
    stack = LabStack(tmp_path / "lab")
    assert stack.pids == {} and stack.state_error is not None


def test_lab_profile_carries_tls_port_ca_and_srtp_and_parses_as_a_profile(tmp_path: Path) -> None:
    m = lab_profile_mapping(HARD, tmp_path / "lab" / "rec")
    assert m["pbx"]["tls_port"] == 37061 and m["pbx"]["tls_ca_file"] == str(tmp_path / "lab" / "cert.pem")
    assert m["media"] == {"srtp": "offered"}
    again = Target.from_mapping(yaml.safe_load(yaml.safe_dump(m)), "<printed>")
    assert (again.tls_port, again.tls_ca_file, again.srtp) == (37061, str(tmp_path / "lab" / "cert.pem"), "offered")
    assert {"tls_port": 37061, "srtp": "offered"}.items() <= again.public().items()
    plain = lab_profile_mapping(LabConfig(), tmp_path / "lab" / "rec")
    assert "tls_port" not in plain["pbx"] and "tls_ca_file" not in plain["pbx"] and "media" not in plain
    t = lab_target(LabConfig(), tmp_path / "lab")
    assert (t.tls_port, t.srtp) == (None, None) and default_port(t, "tls") == 35061


def test_profile_fields_are_checked(tmp_path: Path) -> None:
    from harness.contracts.errors import ProfileError

    base: dict[str, Any] = {"name": "p", "pbx": {"host": "h"}}
    with pytest.raises(ProfileError, match="out of range"):
        Target.from_mapping({**base, "pbx": {"host": "h", "tls_port": 70000}}, "t.yaml")
    with pytest.raises(ProfileError, match="must be one of none, offered, required"):
        Target.from_mapping({**base, "media": {"srtp": "sometimes"}}, "t.yaml")
    t = Target.from_mapping({**base, "pbx": {"host": "h", "port": 5060, "tls_port": 5081}}, "t.yaml")
    assert default_port(t, "tls") == 5081


# ---- the commands, in process (the state names pids that do not run: no sockets are opened) -------------
def invoke(home: Path, *args: str) -> Any:
    return CliRunner().invoke(cli, ["--home", str(home), *args], catch_exceptions=False)


def test_status_and_profile_show_a_hardened_lab(tmp_path: Path) -> None:
    stack = LabStack(tmp_path / "lab", HARD)
    stack.dir.mkdir()
    stack.pids = dict(DEAD_PIDS)
    stack._write_state()
    ca = tmp_path / "lab" / "cert.pem"

    res = invoke(tmp_path, "lab", "status", "--json")
    assert res.exit_code == 1  # its processes are not running
    data = json.loads(res.output)
    assert data["hardened"] is True and data["config"]["hardened"] is True
    assert data["security"]["tls_port"] == 37061 and data["security"]["tls_ca_file"] == str(ca)
    assert data["security"]["srtp"] == "offered"

    res = invoke(tmp_path, "lab", "status")
    assert f"hardened: yes: SIP over UDP and TCP 127.0.0.1:37060, TLS 127.0.0.1:37061 (CA {ca}); SRTP offered" \
           in res.output

    res = invoke(tmp_path, "lab", "profile")
    assert res.exit_code == 0 and res.output.startswith("# the lab PBX, hardened (not running;")
    printed = yaml.safe_load(res.output)
    assert printed["pbx"]["tls_ca_file"] == str(ca) and printed["pbx"]["tls_port"] == 37061
    assert printed["media"]["srtp"] == "offered"


def test_status_of_an_older_or_corrupt_state(tmp_path: Path) -> None:
    write_state(tmp_path / "lab", old_state(HARD))
    res = invoke(tmp_path, "lab", "status", "--json")
    assert res.exit_code == 1 and json.loads(res.output)["hardened"] is False
    write_state(tmp_path / "lab", "{broken")
    res = invoke(tmp_path, "lab", "status")
    assert res.exit_code == 1 and "lab: DOWN" in res.output and "hardened: no" in res.output
    assert "state.json is unreadable and ignored: not JSON" in res.output  # CliRunner mixes in stderr
    res = invoke(tmp_path, "lab", "down")
    assert res.exit_code == 0 and "lab is not running" in res.output and "unreadable" in res.output
