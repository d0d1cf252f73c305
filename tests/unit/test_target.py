"""Target profiles: parsing, secrets from the environment, and never showing a password."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from harness.contracts.errors import InputError, ProfileError
from harness.contracts.target import Target, load_target
from harness.lab.config import LabConfig, lab_target

REPO = Path(__file__).resolve().parents[2]


def test_profile_with_env_secrets(tmp_path: Path) -> None:
    doc = {"name": "pbx", "pbx": {"host": "127.0.0.1", "port": 5070, "transport": "udp"},
           "accounts": {"caller": {"username": 1001, "password": "${PW_1001}"},
                        "agent1": {"username": "2001", "password_env": "PW_2001"}},
           "numbers": {"queue": 8000}}
    t = Target.from_mapping(doc, "x.yaml", environ={"PW_1001": "s3cret", "PW_2001": "other"})
    assert t.accounts["caller"].password.reveal() == "s3cret"
    assert t.accounts["agent1"].username == "2001"
    assert t.numbers["queue"] == "8000"
    assert "s3cret" not in repr(t) and "other" not in repr(t)
    assert "s3cret" not in str(t.public())


def test_missing_env_secret_names_variable_and_line(tmp_path: Path) -> None:
    p = tmp_path / "t.yaml"
    p.write_text(textwrap.dedent("""
        name: pbx
        pbx: {host: 127.0.0.1}
        accounts:
          caller:
            username: "1001"
            password: ${HARNESS_TEST_UNSET_VAR}
        """).lstrip())
    with pytest.raises(ProfileError) as ei:
        load_target(p)
    assert "HARNESS_TEST_UNSET_VAR" in str(ei.value) and ei.value.line == 6


@pytest.mark.parametrize(("text", "needle"), [
    ("name: p\npbx: {host: h, port: 99999}\n", "out of range"),
    ("name: p\npbx: {host: h, transport: sctp}\n", "must be one of udp, tcp, tls"),
    ("name: p\npbx: {host: h}\nrecordings: {glob: '*.wav'}\n", "needs 'dir' or 'url_template'"),
    ("name: p\npbx: {host: h}\nmedia: {codecs: [PCMU, mp3]}\n", "unknown codec"),
    ("name: p\n", "missing required field 'pbx'"),
])
def test_bad_profiles(tmp_path: Path, text: str, needle: str) -> None:
    p = tmp_path / "t.yaml"
    p.write_text(text)
    with pytest.raises(ProfileError, match=needle):
        load_target(p)


def test_example_profiles_in_docs_parse(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("PBX_PW_1001", "PBX_PW_1002", "PBX_PW_2001", "PBX_PW_2002", "PBX_PW_2003", "PBX_PW_3001"):
        monkeypatch.setenv(var, "x")
    files = sorted((REPO / "docs" / "targets").glob("*.yaml"))
    assert files, "example target profiles are missing"
    for f in files:
        t = load_target(f)
        assert {"caller", "agent1"} <= set(t.accounts)


def test_lab_profile_and_config_validation() -> None:
    t = lab_target(LabConfig(), Path("lab"))
    assert t.is_lab and t.port == 35060 and "agent1" in t.accounts
    with pytest.raises(InputError, match="not a loopback"):
        LabConfig.from_env({"HARNESS_LAB_IP": "10.1.2.3"})
    with pytest.raises(InputError, match="not a port"):
        LabConfig.from_env({"HARNESS_LAB_SIP_PORT": "abc"})
    with pytest.raises(InputError, match="outside the RTP range"):
        LabConfig.from_env({}, sip_port=35400)
